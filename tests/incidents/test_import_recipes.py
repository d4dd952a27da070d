"""The four shipped recipes (docs/import-mappings/) import their example exports with zero errors, and every
figure of the report over them equals the hand computation written next to it.

The example files are written from each tool's public column documentation; no one's real data.
"""

from __future__ import annotations

import gzip
import zipfile
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from incidents.models import ImportRun, Incident, Team
from reporting import figures
from reporting.figures import ReportFilters
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db
S = Incident.State
RECIPES = Path(__file__).resolve().parents[2] / "docs" / "import-mappings"


def run(path, *args):
    out, err = StringIO(), StringIO()
    try:
        call_command("import_incidents", str(path), "--no-progress", *args, stdout=out, stderr=err)
    except CommandError as error:
        return out.getvalue(), err.getvalue(), error
    return out.getvalue(), err.getvalue(), None


def report(**filters):
    admin = UserFactory(username="auditor", is_superuser=True, is_staff=True)
    start, end = datetime(2000, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)
    return figures.summary(admin, ReportFilters(start=start, end=end, **filters))


def at(text: str) -> str:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).isoformat()


def get(external_id: str) -> Incident:
    return Incident.objects.get(external_id=external_id)


def test_servicenow_incident_audit(tmp_path):
    TeamFactory(slug="service-desk")
    TeamFactory(slug="network")
    # compressed, as such exports usually travel
    source = tmp_path / "incident_audit.csv.gz"
    source.write_bytes(gzip.compress((RECIPES / "servicenow-incident-audit.example.csv").read_bytes()))

    out, err, error = run(source, "--mapping", "servicenow-incident-audit")

    assert error is None, err
    assert "skipped" not in err
    assert "Imported 3 incidents (13 timeline entries); 0 already imported; 0 skipped; 2 warnings." in out
    assert "Teams created: group-24." in out
    # INC0000045: New 01:23, Active 01:31, Active 02:00 (an update), Resolved 03:16, Closed; opened_at 01:16
    inc = get("INC0000045")
    assert inc.state == S.CLOSED
    assert inc.received_at.isoformat() == at("2016-02-29T01:16")  # opened_at: the line states it
    assert inc.responded_at.isoformat() == at("2016-02-29T01:31")
    assert inc.resolved_at.isoformat() == at("2016-02-29T03:16")
    assert inc.closed_at.isoformat() == at("2016-03-05T04:00")
    assert (inc.impact, inc.urgency, inc.priority, inc.sla_resolution) == (2, 2, 3, "met")
    assert (inc.team.slug, inc.assignee, inc.assignee_name, inc.reporter_name) == (
        "service-desk", None, "Resolver 89", "Caller 2403",
    )  # fmt: skip
    assert inc.escalation_level == 0
    kinds = list(inc.timeline.order_by("at", "id").values_list("kind", "action"))
    assert kinds == [
        ("created", ""), ("state_changed", ""), ("fields_changed", ""), ("state_changed", "resolve"),
        ("state_changed", "close"),
    ]  # fmt: skip
    # INC0000047: its first row is already Active, but opened_at says when it came in; a hold, a same-state
    # update, a resume (no second response), an unknown state (-100, an update), and ServiceNow's own
    # priority 3 where our matrix (impact 1, urgency 1) says 1.
    inc = get("INC0000047")
    assert inc.state == S.RESOLVED
    assert inc.history_started_late is False
    assert inc.responded_at is None  # the move into Active happened before the export: unknown
    assert (inc.impact, inc.urgency, inc.priority) == (1, 1, 3)
    assert "matrix gives 1" in inc.priority_override_reason
    assert inc.sla_resolution == "breached"
    assert inc.team.slug == "network"
    actions = list(inc.timeline.order_by("at", "id").values_list("action", flat=True))
    assert actions == ["", "hold", "", "resume", "", "resolve"]
    # INC0000051: the export cut its beginning (first row Resolved, opened_at "?")
    inc = get("INC0000051")
    assert inc.history_started_late is True
    assert inc.resolved_at.isoformat() == at("2016-03-01T09:00")  # stated on the line
    assert inc.received_at.isoformat() == at("2016-03-01T09:00")  # only for the cohort; not a 0 h MTTR
    assert (inc.priority, inc.team.slug) == (5, "group-24")

    data = report()
    assert data["counts"]["total"] == 3
    assert data["mtta"] == {"count": 1, "median_seconds": 900.0, "p90_seconds": 900.0}  # 01:16 -> 01:31
    # 7,200 s (045) and 28,800 s (047, 04:40 -> 12:40); p90 = 7200 + 0.9 * 21600
    assert data["mttr"] == {"count": 2, "median_seconds": 18000.0, "p90_seconds": 26640.0}
    assert data["excluded"] == {
        "history_started_late": 1, "resolution_unknown": 0,
        "figures": {"mtta": 0, "mttr": 1, "reopen": 1, "escalation": 1, "first_contact_resolution": 1},
    }  # fmt: skip
    assert data["sla"]["resolution"] == {"met": 2, "breached": 1, "compliance": 0.6667}
    by_priority = {row["priority"]: row["resolution"]["compliance"] for row in data["sla"]["by_priority"]}
    assert by_priority == {3: 0.5, 5: 1.0}
    assert data["rates"]["reopen"] == {"count": 0, "of": 2, "rate": 0.0}
    assert data["rates"]["escalation"] == {"count": 0, "of": 0, "rate": None}  # no classification seen
    assert report(priorities=(3,))["mttr"] == {"count": 2, "median_seconds": 18000.0, "p90_seconds": 26640.0}
    assert report(priorities=(5,))["mttr"]["count"] == 0


def test_jira_service_management_csv(tmp_path):
    TeamFactory(slug="service-desk")
    TeamFactory(slug="network")
    agent = UserFactory(username="agent")

    out, err, error = run(
        RECIPES / "jira-service-management.example.csv", "--mapping", "jira-service-management"
    )

    assert error is None, err
    assert "Imported 4 incidents (9 timeline entries); 0 already imported; 0 skipped; 1 warnings." in out
    assert "line 4: team: no team 'Facilities'; left unassigned" in err
    # ITSM-101: Created 09:00, Resolved 13:00, Closed since 05/Mar 10:00 (GMT in London in March)
    inc = get("ITSM-101")
    assert inc.state == S.CLOSED
    assert (inc.received_at.isoformat(), inc.resolved_at.isoformat(), inc.closed_at.isoformat()) == (
        at("2025-03-04T09:00"), at("2025-03-04T13:00"), at("2025-03-05T10:00"),
    )  # fmt: skip
    assert (inc.priority, inc.team.slug, inc.assignee, inc.resolution_code) == (
        2,
        "service-desk",
        agent,
        "fixed",
    )
    assert (inc.reporter, inc.reporter_name, inc.reporter_email) == (
        None,
        "ana@example.org",
        "ana@example.org",
    )
    assert inc.timeline.filter(action="close").exists()
    inc = get("ITSM-102")
    assert (inc.state, inc.priority, inc.assignee_name, inc.team.slug) == (
        S.RESPONDING,
        1,
        "Bo Lind",
        "network",
    )
    assert inc.responded_at.isoformat() == at("2025-03-04T10:30")
    inc = get("ITSM-103")
    assert (inc.state, inc.team) == (S.RESOLVED, None)
    inc = get("ITSM-104")
    assert (inc.state, inc.cancel_reason, inc.resolution_code, inc.priority) == (
        S.CANCELLED,
        "duplicate",
        "",
        4,
    )

    data = report()
    assert data["counts"]["by_state"] | {} == {
        **dict.fromkeys(S.values, 0), "closed": 1, "responding": 1, "resolved": 1, "cancelled": 1,
    }  # fmt: skip
    assert data["mtta"] == {"count": 1, "median_seconds": 1800.0, "p90_seconds": 1800.0}
    assert data["mttr"] == {"count": 2, "median_seconds": 14400.0, "p90_seconds": 14400.0}
    assert data["excluded"]["figures"] == dict.fromkeys(
        ["mtta", "mttr", "reopen", "escalation", "first_contact_resolution"], 0
    )
    assert data["rates"]["reopen"] == {"count": 0, "of": 2, "rate": 0.0}
    assert data["sla"]["resolution"] == {"met": 0, "breached": 0, "compliance": None}


def test_zendesk_ticket_export(tmp_path):
    TeamFactory(slug="service-desk")
    TeamFactory(slug="network")
    agent = UserFactory(username="agent")
    source = tmp_path / "export-tickets.zip"
    with zipfile.ZipFile(source, "w") as archive:
        archive.write(RECIPES / "zendesk-tickets.example.csv", "export-2025-03-08-tickets.csv")

    out, err, error = run(source, "--mapping", "zendesk-tickets")

    assert error is None, err
    assert "Imported 4 incidents (11 timeline entries); 0 already imported; 0 skipped; 1 warnings." in out
    assert "Teams created: field-ops." in out
    # New York is UTC-5 in early March 2025
    inc = get("2001")
    assert inc.state == S.CLOSED
    assert (inc.received_at.isoformat(), inc.classified_at.isoformat(), inc.resolved_at.isoformat()) == (
        at("2025-03-03T13:00"), at("2025-03-03T13:30"), at("2025-03-03T19:00"),
    )  # fmt: skip
    assert (inc.priority, inc.team.slug, inc.assignee, inc.reporter_name) == (
        2,
        "service-desk",
        agent,
        "ana@example.org",
    )
    inc = get("2002")
    assert (inc.state, inc.priority, inc.reopen_count, inc.assignee_name) == (S.RESOLVED, 1, 1, "Chris Moe")
    inc = get("2003")
    assert (inc.state, inc.held_from, inc.team.slug) == (S.ON_HOLD, S.CLASSIFIED, "field-ops")
    inc = get("2004")
    assert (inc.state, inc.priority, inc.team) == (S.RECEIVED, None, None)

    data = report()
    assert data["mtta"]["count"] == 0
    # 6 h (2001) and 26 h (2002); p90 = 21600 + 0.9 * 72000
    assert data["mttr"] == {"count": 2, "median_seconds": 57600.0, "p90_seconds": 86400.0}
    assert data["rates"]["reopen"] == {"count": 1, "of": 2, "rate": 0.5}  # Zendesk's own Reopens count
    assert data["rates"]["escalation"] == {"count": 0, "of": 3, "rate": 0.0}
    assert data["rates"]["first_contact_resolution"] == {"count": 1, "of": 2, "rate": 0.5}
    assert data["excluded"]["history_started_late"] == 0


def test_generic_process_mining_event_log(tmp_path):
    TeamFactory(slug="service-desk")
    ann = UserFactory(username="ann")
    source = tmp_path / "events.csv.gz"
    source.write_bytes(gzip.compress((RECIPES / "event-log.example.csv").read_bytes()))

    out, err, error = run(source, "--mapping", "event-log")

    assert error is None, err
    assert "Imported 3 incidents (19 timeline entries); 0 already imported; 0 skipped; 1 warnings." in out
    assert "Teams created: soc." in out
    c1 = get("C-1")
    assert (c1.state, c1.title, c1.priority, c1.assignee, c1.reopen_count) == (
        S.CLOSED,
        "Database slow",
        2,
        ann,
        1,
    )
    assert c1.responded_at.isoformat() == at("2025-06-02T08:20")  # not the resume at 10:00, nor the reopen
    assert c1.resolved_at.isoformat() == at("2025-06-02T14:00")  # the fix that held
    actions = list(c1.timeline.order_by("at", "id").values_list("action", flat=True))
    assert actions == [
        "",
        "classify",
        "acknowledge",
        "hold",
        "",
        "resume",
        "",
        "resolve",
        "reopen",
        "resolve",
        "close",
    ]  # the comments are updates
    c2_actions = list(get("C-2").timeline.order_by("at", "id").values_list("kind", "action"))
    assert c2_actions == [
        ("created", ""),
        ("state_changed", "classify"),
        ("state_changed", "escalate"),
        ("fields_changed", ""),
        ("fields_changed", ""),
        ("state_changed", "resolve"),
    ]  # the second Escalate while escalated is an update, not a second escalation
    c2 = get("C-2")
    assert (c2.state, c2.escalation_level, c2.priority, c2.team.slug, c2.assignee_name) == (
        S.RESOLVED, 1, 1, "soc", "sam",
    )  # fmt: skip
    c3 = get("C-3")
    assert (c3.state, c3.title) == (S.CANCELLED, "Duplicate of C-1")

    data = report()
    assert data["mtta"] == {"count": 1, "median_seconds": 1200.0, "p90_seconds": 1200.0}
    # 6 h (C-1, to the last resolution) and 4 h (C-2); p90 = 14400 + 0.9 * 7200
    assert data["mttr"] == {"count": 2, "median_seconds": 18000.0, "p90_seconds": 20880.0}
    assert data["rates"]["reopen"] == {"count": 1, "of": 2, "rate": 0.5}
    assert data["rates"]["escalation"] == {"count": 1, "of": 2, "rate": 0.5}
    assert data["rates"]["first_contact_resolution"] == {"count": 0, "of": 2, "rate": 0.0}
    assert report(priorities=(1,))["mttr"]["median_seconds"] == 14400.0
    assert report(priorities=(2,))["mttr"]["median_seconds"] == 21600.0
    assert ImportRun.objects.get().imported == 3
    assert Team.objects.filter(slug="soc").exists()
