from __future__ import annotations

from io import StringIO

import pytest
import yaml
from django.core.management import CommandError, call_command

from interviews.models import CaseVersion
from tests.interviews.helpers import case_doc, new_session

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("interview_config", *args, stdout=out)
    return out.getvalue()


def test_export_then_apply_changes_nothing(tmp_path):
    new_session()
    path = tmp_path / "interviews.yaml"
    run("export", str(path))
    data = yaml.safe_load(path.read_text())
    assert [r["slug"] for r in data["rubrics"]] == ["incident-process"]
    assert len(data["cases"]) == 1

    assert run("apply", str(path)) == "Nothing to change.\n"


def test_apply_creates_cases_a_dry_run_changes_nothing_and_used_versions_get_new_ones(tmp_path):
    path = tmp_path / "interviews.yaml"
    path.write_text(yaml.safe_dump({"cases": [case_doc(slug="from-file")]}))

    assert "Would change: case from-file v1" in run("apply", str(path), "--dry-run")
    assert not CaseVersion.objects.exists()
    assert "Changed: case from-file v1 (draft)" in run("apply", str(path))
    assert run("apply", str(path)) == "Nothing to change.\n"


def test_an_invalid_file_names_the_problem(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"cases": [case_doc(title="")]}))
    with pytest.raises(CommandError, match="title"):
        run("apply", str(path))
    path.write_text("teams: []")
    with pytest.raises(CommandError, match="rubrics"):
        run("apply", str(path))
