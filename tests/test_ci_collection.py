"""CI's runs that deselect the fuzz tests do not collect the fuzz files at all (tests/conftest.py): collecting
them is work (schemathesis builds the coverage examples of every operation) whose every item would be deselected."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FUZZ_FILES, _may_select_fuzz

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


def _collect(*args: str) -> str:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    return done.stdout + done.stderr


def test_a_run_without_fuzz_leaves_the_fuzz_files_uncollected_and_a_fuzz_run_collects_them():
    folder = "tests/visibility"  # the hook skips files found in a folder (a file named outright is collected)
    fuzz_files = sorted(name for name in FUZZ_FILES if name.startswith(f"{folder}/"))
    assert fuzz_files
    without = _collect("-m", "not fuzz", folder)
    assert "deselected" not in without, without
    assert not [name for name in fuzz_files if f"{name}::" in without], without
    assert f"{folder}/" in without, without  # the folder's other tests are collected
    with_fuzz = _collect("-m", "fuzz", *fuzz_files)
    assert all(f"{name}::" in with_fuzz for name in fuzz_files), with_fuzz
