"""The console's pages of what came in: each import's summary and its incidents, filterable by state."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from incidents.models import ImportRun, Incident
from tests.factories import TeamFactory, UserFactory, agent

pytestmark = pytest.mark.django_db


def t(hour: int) -> str:
    return datetime(2025, 5, 6, hour, tzinfo=UTC).isoformat()


def import_file(tmp_path, *args) -> ImportRun:
    docs = [
        {"external_id": "OPEN-1", "title": "Still open", "domain": "it_service", "assignee": "Resolver 89",
         "reporter": "Caller 2403", "events": [{"at": t(8), "state": "received"}, {"at": t(9), "state": "classified"}]},
        {"external_id": "DONE-1", "title": "Fixed", "domain": "it_service",
         "events": [{"at": t(8), "state": "received"}, {"at": t(9), "state": "resolved"}]},
        {"external_id": "MED-1", "title": "Patient fall", "domain": "medical",
         "events": [{"at": t(8), "state": "resolved"}]},
        {"external_id": "BAD-1", "title": "Bad", "domain": "nowhere", "events": [{"at": t(8), "state": "received"}]},
    ]  # fmt: skip
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in docs))
    err = StringIO()
    with contextlib.suppress(CommandError):  # BAD-1 is skipped on purpose; the run is what is tested
        call_command("import_incidents", str(path), "--no-progress", *args, stdout=StringIO(), stderr=err)
    assert "line 4: domain" in err.getvalue(), err.getvalue()
    return ImportRun.objects.get()


def test_the_import_summary_shows_who_when_counts_warnings_and_mapping(client, tmp_path):
    run = import_file(tmp_path, "--user", UserFactory(username="migrator").username)
    client.force_login(agent(TeamFactory(slug="desk", domains=["it_service"])))

    listing = client.get(reverse("web:imports"))
    page = client.get(reverse("web:import", args=[run.pk]))

    assert listing.status_code == 200
    assert f"#{run.pk} history.jsonl" in listing.content.decode()
    body = page.content.decode()
    assert "migrator" in body
    assert "3 incidents (5 timeline entries)" in body
    assert 'id="count-skipped">1<' in body
    assert 'id="count-warnings">1<' in body  # MED-1 starts late
    assert "line 4: domain: unknown domain &#x27;nowhere&#x27;" in body
    assert "started late" not in body  # MED-1 is in a domain this responder may not see
    assert "(2 you may see)" in body
    assert "OPEN-1" in body
    assert "DONE-1" in body
    assert "MED-1" not in body


def test_the_imported_incidents_filter_by_state_and_keep_the_sources_names(client, tmp_path):
    run = import_file(tmp_path)
    client.force_login(agent(TeamFactory(slug="desk", domains=["it_service"])))

    body = client.get(reverse("web:import", args=[run.pk]), {"state": "resolved"}).content.decode()

    assert "DONE-1" in body
    assert "OPEN-1" not in body
    incident = Incident.objects.get(external_id="OPEN-1")
    detail = client.get(reverse("web:incident", args=[incident.reference])).content.decode()
    assert "Resolver 89 <span" in detail  # the assignee by the source's name, not "unassigned"
    assert "Caller 2403 <span" in detail
    assert f"import #{run.pk}" in detail


def test_import_pages_are_for_responders_only(client, tmp_path):
    run = import_file(tmp_path)
    client.force_login(UserFactory(username="reporter"))

    assert client.get(reverse("web:imports")).status_code == 404
    assert client.get(reverse("web:import", args=[run.pk])).status_code == 404
    client.force_login(agent())
    assert client.get(reverse("web:import", args=[run.pk + 1000])).status_code == 404


def test_a_dry_run_leaves_no_import(tmp_path):
    with pytest.raises(ImportRun.DoesNotExist):
        import_file(tmp_path, "--dry-run")
