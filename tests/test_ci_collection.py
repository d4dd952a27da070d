"""CI's runs that deselect the fuzz tests do not collect the fuzz files at all (tests/conftest.py): collecting
them is work (schemathesis builds the coverage examples of every operation) whose every item would be deselected."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import FUZZ_FILES, _may_select_fuzz, pytest_ignore_collect

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("markexpr", "selects"),
    [
        ("", True),
        ("fuzz", True),
        ("postgres", True),
        ("not postgres", True),
        ("postgres or fuzz", True),
        ("not fuzz or postgres", True),
        ("fuzz and not postgres", True),
        ("not fuzz", False),
        ("not postgres and not fuzz", False),
        ("not (fuzz or postgres)", False),
    ],
)
def test_a_mark_expression_may_select_fuzz_items_or_not(markexpr, selects):
    assert _may_select_fuzz(markexpr) is selects


class _Config:
    """What the hook reads of pytest's config: the root and the -m expression."""

    def __init__(self, markexpr: str) -> None:
        self.rootpath = ROOT
        self.markexpr = markexpr

    def getoption(self, name: str) -> str:
        assert name == "markexpr"
        return self.markexpr


@pytest.mark.parametrize(("markexpr", "ignored"), [("not fuzz", True), ("fuzz", None), ("", None)])
def test_the_fuzz_files_are_left_uncollected_only_by_a_run_that_deselects_fuzz(markexpr, ignored):
    config = _Config(markexpr)
    for name in sorted(FUZZ_FILES):
        assert (ROOT / name).exists(), name
        assert pytest_ignore_collect(ROOT / name, config) is ignored, (name, markexpr)
    other = ROOT / "tests" / "visibility" / "test_policy.py"
    assert pytest_ignore_collect(other, config) is None
