"""Reporting targets (regulatory deadlines): visible in the API, the filters, the console and the reports,
and met by filing the report."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.test import Client

from escalation.engine import sweep
from escalation.models import ReportFiling, SlaClock, SlaTarget
from incidents import lifecycle, services
from incidents.models import Incident
from reporting import figures
from tests.conftest import client_for
from tests.factories import (
    CategoryFactory,
    TeamFactory,
    agent,
    classified,
    domain,
    privacy_officer,
    sla_policy,
)

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def medical_policy() -> None:
    policy = sla_policy(domain_slug="medical", response=30, resolution=24 * 60)
    SlaTarget.objects.create(
        policy=policy, slug="report-1h", name="Safety report within 1 h", minutes=60,
        final_minutes=7 * 24 * 60, harm_levels=["3b", "4a", "4b", "5"],
    )  # fmt: skip
    SlaTarget.objects.create(
        policy=policy, slug="report-48h", name="Safety report within 48 h", minutes=48 * 60,
        harm_levels=["0", "1"],
    )  # fmt: skip


def medical_incident(harm: str = "3b") -> tuple[Incident, object]:
    team = TeamFactory(domains=["medical"])
    actor = agent(team)
    with time_machine.travel(T0, tick=False):
        incident = services.create_incident(
            title="Wrong dose given", reporter=actor, domain=domain("medical")
        )
        incident = lifecycle.classify_incident(
            incident, actor=actor, domain=domain("medical"), category=CategoryFactory(domain=domain("medical")),
            impact=1, urgency=1, team=team, harm_level=harm,
        )  # fmt: skip
    return incident, actor


def web(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def file_url(incident: Incident) -> str:
    return f"/api/v1/incidents/{incident.reference}/file_report/"


def test_the_incident_shows_its_preliminary_and_final_report_targets():
    medical_policy()
    incident, actor = medical_incident("3b")
    with time_machine.travel(at(10), tick=False):
        body = client_for(actor).get(f"/api/v1/incidents/{incident.reference}/").json()
    assert body["targets"] == [
        {"name": "report-1h", "due_at": "2026-06-01T09:00:00Z", "state": "pending"},
        {"name": "report-1h-final", "due_at": "2026-06-08T08:00:00Z", "state": "pending"},
    ]


def test_a_lower_harm_level_gets_only_its_own_target_and_no_final_one():
    medical_policy()
    incident, actor = medical_incident("1")
    body = client_for(actor).get(f"/api/v1/incidents/{incident.reference}/").json()
    assert [t["name"] for t in body["targets"]] == ["report-48h"]


def test_filing_the_report_meets_the_target_and_says_who_filed_what_in_the_timeline():
    medical_policy()
    incident, actor = medical_incident()
    with time_machine.travel(at(40), tick=False):
        response = client_for(actor).post(
            file_url(incident), {"target": "report-1h", "reference": "CIRS-2026-0042"}, format="json"
        )
    assert response.status_code == 201, response.json()
    assert response.json()["filed_by"] == actor.username
    assert response.json()["reference"] == "CIRS-2026-0042"
    assert SlaClock.objects.get(incident=incident, name="report-1h").status == "met"
    body = client_for(actor).get(f"/api/v1/incidents/{incident.reference}/").json()
    assert [(t["name"], t["state"]) for t in body["targets"]] == [
        ("report-1h", "met"),
        ("report-1h-final", "pending"),
    ]
    entry = incident.timeline.get(kind="sla", action="report_filed")
    assert entry.data["clock"] == "target:report-1h"
    assert entry.data["filed_by"] == actor.username
    assert entry.data["reference"] == "CIRS-2026-0042"
    assert entry.data["state"] == "met"
    # The sweeper never breaches a filed target.
    sweep(now=at(61))
    filed = SlaClock.objects.get(incident=incident, name="report-1h")
    assert filed.status == "met"
    assert not filed.timers.filter(state="fired").exists()


def test_filing_after_the_deadline_is_recorded_as_breached():
    medical_policy()
    incident, actor = medical_incident()
    with time_machine.travel(at(90), tick=False):
        response = client_for(actor).post(
            file_url(incident),
            {"target": "report-1h", "reference": "R-1", "filed_at": at(75).isoformat()},
            format="json",
        )
    assert response.status_code == 201
    clock = SlaClock.objects.get(incident=incident, name="report-1h")
    assert clock.completed_at == at(75)
    assert clock.status == "breached"


def test_filing_twice_with_the_same_reference_changes_nothing_and_another_reference_is_a_conflict():
    medical_policy()
    incident, actor = medical_incident()
    client = client_for(actor)
    payload = {"target": "report-1h", "reference": "R-1"}
    assert client.post(file_url(incident), payload, format="json").status_code == 201
    assert client.post(file_url(incident), payload, format="json").status_code == 201
    assert ReportFiling.objects.filter(incident=incident).count() == 1
    assert incident.timeline.filter(action="report_filed").count() == 1
    other = client.post(file_url(incident), {**payload, "reference": "R-2"}, format="json")
    assert other.status_code == 409


def test_an_unknown_target_or_a_future_filing_is_a_400_naming_the_field():
    medical_policy()
    incident, actor = medical_incident()
    client = client_for(actor)
    response = client.post(file_url(incident), {"target": "nope", "reference": "R"}, format="json")
    assert response.status_code == 400
    assert "target" in response.json()
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat()
    response = client.post(
        file_url(incident), {"target": "report-1h", "reference": "R", "filed_at": future}, format="json"
    )
    assert response.status_code == 400
    assert "filed_at" in response.json()
    response = client.post(file_url(incident), {"target": "report-1h"}, format="json")
    assert response.status_code == 400
    assert "reference" in response.json()


def test_the_privacy_officer_may_file_another_team_may_not_and_outsiders_get_404():
    policy = sla_policy(priority=1, response=30, resolution=240)
    SlaTarget.objects.create(policy=policy, slug="dpa-72h", name="DPA", minutes=72 * 60)
    incident, _ = classified()
    outsider = agent(TeamFactory(domains=["it_service"]))  # sees an it_service incident, not its team
    response = client_for(outsider).post(file_url(incident), {"target": "dpa-72h", "reference": "X"})
    assert response.status_code == 403
    officer = privacy_officer(TeamFactory(domains=["it_service"]))
    response = client_for(officer).post(file_url(incident), {"target": "dpa-72h", "reference": "DPA-1"})
    assert response.status_code == 201
    medical_policy()
    hidden, _ = medical_incident()
    assert (
        client_for(outsider).post(file_url(hidden), {"target": "report-1h", "reference": "X"}).status_code
        == 404
    )


def test_a_report_filed_after_the_incident_was_closed_still_meets_its_target():
    policy = sla_policy(priority=1, response=30, resolution=240)
    SlaTarget.objects.create(policy=policy, slug="dpa-72h", name="DPA", minutes=72 * 60)
    with time_machine.travel(T0, tick=False) as clock:
        incident, actor = classified()
        lifecycle.acknowledge_incident(incident, actor=actor)
        lifecycle.resolve_incident(incident, actor=actor, summary="Done")
        lifecycle.close_incident(incident, actor=actor, cause="c", measures="m", resolution_code="fixed")
        assert (
            client_for(actor).get(f"/api/v1/incidents/{incident.reference}/").json()["targets"][0]["state"]
            == "cancelled"
        )
        clock.move_to(at(24 * 60))
        response = client_for(actor).post(file_url(incident), {"target": "dpa-72h", "reference": "DPA-9"})
    assert response.status_code == 201
    assert SlaClock.objects.get(incident=incident, name="dpa-72h").status == "met"


def test_filters_by_target_state_and_by_sla_none():
    medical_policy()
    filed, actor = medical_incident()
    pending, _ = medical_incident()
    client = client_for(privacy_officer(TeamFactory(domains=["medical"])))
    with time_machine.travel(at(10), tick=False):
        client_for(actor).post(file_url(filed), {"target": "report-1h", "reference": "R"}, format="json")
    refs = lambda **q: {i["reference"] for i in client.get("/api/v1/incidents/", q).json()["results"]}  # noqa: E731
    assert refs(target="met") == {filed.reference}
    assert refs(target="pending") == {filed.reference, pending.reference}  # the final report still runs
    with time_machine.travel(at(61), tick=False):
        sweep(now=at(61))
    assert refs(target="breached") == {pending.reference}
    no_policy, _ = classified()  # an it_service incident that no SLA policy matches
    assert no_policy.reference in refs(sla="none")
    assert filed.reference not in refs(sla="none")
    assert client.get("/api/v1/incidents/", {"target": "bogus"}).status_code == 400


def test_sla_state_is_none_without_a_target_and_documented_in_the_schema():
    incident, actor = classified()
    body = client_for(actor).get(f"/api/v1/incidents/{incident.reference}/").json()
    assert body["sla"] == {"response": "none", "resolution": "none"}
    assert body["targets"] == []
    schema = client_for(actor).get("/api/schema/", {"format": "json"}).json()
    assert "none" in schema["components"]["schemas"]["SlaClockStateEnum"]["enum"]
    target = schema["components"]["schemas"]["Target"]["properties"]
    assert set(target) == {"name", "due_at", "state"}


def test_reports_count_target_compliance_and_leave_no_sla_incidents_out_of_compliance():
    medical_policy()
    on_time, actor = medical_incident()
    medical_incident()  # filed late: never
    with time_machine.travel(at(30), tick=False):
        client_for(actor).post(file_url(on_time), {"target": "report-1h", "reference": "A"}, format="json")
    sweep(now=at(61))
    classified()  # no SLA policy
    qs = Incident.objects.all()
    targets = {row["name"]: row for row in figures.target_compliance(qs)}
    assert targets["report-1h"] == {
        "name": "report-1h",
        "open": 0,
        "met": 1,
        "breached": 1,
        "compliance": 0.5,
    }
    assert targets["report-1h-final"]["open"] == 2
    sla = figures.headline(qs)["sla"]
    assert sla["no_sla"] == {"response": 1, "resolution": 1}
    assert (
        sla["response"]["met"] + sla["response"]["breached"] == 2
    )  # the incident without an SLA is left out


def test_the_console_card_shows_time_left_on_each_target_and_no_sla():
    medical_policy()
    incident, actor = medical_incident()
    with time_machine.travel(at(20), tick=False):
        page = web(actor).get(f"/desk/incidents/{incident.reference}/").content.decode()
    assert "Report: report-1h</dt>" in page
    assert "40\xa0minutes left" in page
    assert "Report: report-1h-final" in page
    plain, other = classified()
    page = web(other).get(f"/desk/incidents/{plain.reference}/").content.decode()
    assert "no SLA" in page


def test_a_page_of_incidents_reads_all_their_targets_in_one_query():
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    medical_policy()
    medical_incident()
    officer = client_for(privacy_officer(TeamFactory(domains=["medical"])))

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            body = officer.get("/api/v1/incidents/", {"page_size": 100}).json()
        assert body["results"]
        assert all(len(row["targets"]) == 2 for row in body["results"])
        return len(ctx.captured_queries)

    count()  # the viewer's roles are read once, on the first request
    few = count()
    for _ in range(6):
        medical_incident()
    assert count() == few


# --- the console's form (escalation.views.incident_file_report) ------------------------------------------


def console_file_url(incident: Incident) -> str:
    return f"/desk/incidents/{incident.reference}/reports/file/"


def test_the_team_files_a_report_from_the_console_and_the_target_is_met():
    medical_policy()
    incident, actor = medical_incident()
    with time_machine.travel(at(20), tick=False):
        page = web(actor).get(f"/desk/incidents/{incident.reference}/").content.decode()
        assert 'action="/desk/incidents/' + incident.reference + '/reports/file/"' in page
        response = web(actor).post(
            console_file_url(incident),
            {
                "file_report-target": "report-1h",
                "file_report-reference": "BfArM-2026-0042",
                "file_report-note": "",
            },
        )
        assert response.status_code == 302
        page = web(actor).get(f"/desk/incidents/{incident.reference}/").content.decode()
    filing = ReportFiling.objects.get(incident=incident)
    assert (filing.target, filing.reference, filing.filed_by, filing.filed_at) == (
        "report-1h", "BfArM-2026-0042", actor, at(20),
    )  # fmt: skip
    assert SlaClock.objects.get(incident=incident, name="report-1h").status == "met"
    assert "BfArM-2026-0042" in page
    assert '<option value="report-1h">' not in page  # filed: no longer offered; the final report still is
    assert '<option value="report-1h-final">' in page


def test_the_privacy_officer_files_from_the_console_and_another_team_may_not():
    policy = sla_policy(priority=1, response=30, resolution=240)
    SlaTarget.objects.create(policy=policy, slug="dpa-72h", name="DPA", minutes=72 * 60)
    incident, _ = classified()
    outsider = agent(TeamFactory(domains=["it_service"]))  # a responder who sees the incident, not its team
    page = web(outsider).get(f"/desk/incidents/{incident.reference}/").content.decode()
    assert "Report: dpa-72h" in page
    assert "File a report" not in page
    response = web(outsider).post(
        console_file_url(incident), {"file_report-target": "dpa-72h", "file_report-reference": "X"}
    )
    assert response.status_code == 403
    assert not ReportFiling.objects.exists()
    officer = privacy_officer(TeamFactory(domains=["it_service"]))
    assert "File a report" in web(officer).get(f"/desk/incidents/{incident.reference}/").content.decode()
    response = web(officer).post(
        console_file_url(incident), {"file_report-target": "dpa-72h", "file_report-reference": "DPA-1"}
    )
    assert response.status_code == 302
    assert ReportFiling.objects.get().filed_by == officer


def test_outsiders_and_non_responders_get_404_from_the_console_form():
    medical_policy()
    incident, _ = medical_incident()
    outsider = agent(TeamFactory(domains=["it_service"]))  # medical is restricted: not theirs to see
    data = {"file_report-target": "report-1h", "file_report-reference": "X"}
    assert web(outsider).post(console_file_url(incident), data).status_code == 404
    from tests.factories import UserFactory

    assert web(UserFactory()).post(console_file_url(incident), data).status_code == 404  # not a responder
    assert not ReportFiling.objects.exists()


def test_the_console_form_names_the_bad_field_and_answers_409_for_another_reference():
    medical_policy()
    incident, actor = medical_incident()
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    response = web(actor).post(
        console_file_url(incident),
        {"file_report-target": "report-1h", "file_report-reference": "R", "file_report-filed_at": future},
    )
    assert response.status_code == 400
    assert "A report cannot be filed in the future." in response.content.decode()
    response = web(actor).post(console_file_url(incident), {"file_report-target": "report-1h"})
    assert response.status_code == 400
    assert 'id="id_file_report-reference"' in response.content.decode()
    ok = {"file_report-target": "report-1h", "file_report-reference": "R-1"}
    assert web(actor).post(console_file_url(incident), ok).status_code == 302
    assert web(actor).post(console_file_url(incident), ok).status_code == 302  # the same again: nothing new
    again = {"file_report-target": "report-1h", "file_report-reference": "R-2"}
    response = web(actor).post(console_file_url(incident), again)
    assert response.status_code == 409
    assert "The report for report-1h was filed already." in response.content.decode()
    assert ReportFiling.objects.get().reference == "R-1"


def test_a_reporter_does_not_read_the_filings_of_their_incident():
    """The filings (who filed, the internal note) are the desk's, as on the console: 404 to the reporter."""
    from tests.factories import UserFactory

    medical_policy()
    incident, actor = medical_incident("3b")
    reporter = UserFactory()
    Incident.objects.filter(pk=incident.pk).update(reporter=reporter)
    incident.refresh_from_db()
    from escalation.filings import file_report

    with time_machine.travel(at(10), tick=False):
        file_report(incident, actor=actor, target="report-1h", reference="AUTH-1", note="internal note")
    assert web(reporter).get(f"/api/v1/incidents/{incident.reference}/").status_code == 200
    assert web(reporter).get(file_url(incident)).status_code == 404
    assert web(actor).get(file_url(incident)).json()[0]["note"] == "internal note"
