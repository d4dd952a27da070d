"""The defects of issue 11 that the visibility policy closes, one test each (each seen failing before)."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from incidents import services, timeline
from incidents.api.serializers import REPORTER_FIELDS
from incidents.models import AuditEvent, Incident
from incidents.problems import create_problem
from incidents.selectors import SeesAs, desk_user
from tests.conftest import client_for
from tests.factories import TeamFactory, UserFactory, agent, classified, privacy_officer

pytestmark = pytest.mark.django_db


def _url(incident: Incident, tail: str = "") -> str:
    return f"/api/v1/incidents/{incident.reference}/{tail}"


@pytest.fixture
def phishing():
    """An IT agent reports a phishing mail as `security`; the security team keeps an internal note on it."""
    it_agent = agent(TeamFactory(domains=["it_service"]))
    sec_team = TeamFactory(domains=["security"])
    incident, sec_responder = classified(reporter=it_agent, domain_slug="security", team=sec_team,
                                         title="Phishing mail zqphish")  # fmt: skip
    services.add_comment(incident, author=sec_responder, body="Internal zqsecret note", public=False)
    return it_agent, sec_responder, Incident.objects.get(pk=incident.pk)


def test_the_policy_answers_may_see_and_sees_as(phishing):
    it_agent, sec_responder, incident = phishing
    incident = Incident.objects.select_related("domain").get(pk=incident.pk)
    assert desk_user(it_agent).sees_as(incident) is SeesAs.REPORTER
    assert desk_user(sec_responder).sees_as(incident) is SeesAs.RESPONDER
    assert desk_user(agent()).sees_as(incident) is None
    assert desk_user(UserFactory()).sees_as(incident) is None


def test_a_responder_who_reports_outside_their_domains_sees_it_as_its_reporter(phishing):
    it_agent, _, incident = phishing
    client = client_for(it_agent)

    body = client.get(_url(incident)).json()
    assert set(body) == REPORTER_FIELDS  # no team, assignee, priority, override reason, domain...
    entries = client.get(_url(incident, "timeline/")).json()["results"]
    assert entries
    assert all(entry["public"] for entry in entries)
    comments = client.get(_url(incident, "comments/")).json()["results"]
    assert all(comment["public"] for comment in comments)
    assert "zqsecret" not in str(entries) + str(comments)


def test_a_responder_who_reports_outside_their_domains_may_not_act_as_its_responder(phishing):
    it_agent, _, incident = phishing
    client = client_for(it_agent)

    response = client.post(_url(incident, "acknowledge/"), {})
    assert response.status_code == 403
    response = client.patch(_url(incident), {"version": incident.version, "title": "Mine now"}, format="json")
    assert response.status_code == 403
    response = client.post(_url(incident, "comments/"), {"body": "hidden?", "public": False}, format="json")
    assert response.status_code == 201
    assert response.json()["public"] is True  # a reporter's comment is public, whoever they are elsewhere


def test_their_own_restricted_report_is_not_in_their_export_or_reports(phishing):
    it_agent, _, _incident = phishing
    client = client_for(it_agent)
    own_it, _ = classified(reporter=UserFactory(), title="Printer zqprinter")

    response = client.get("/api/v1/reports/incidents.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [row["reference"] for row in rows] == [own_it.reference]
    summary = client.get("/api/v1/reports/summary/").json()
    assert summary["counts"]["total"] == 1


def test_the_confidential_reporters_address_reaches_only_privacy_officers():
    whistleblower = UserFactory(email="whistle@example.org")
    incident, responder = classified(reporter=whistleblower, confidential=True)
    timeline.record_notification(
        incident=incident, channel="email", recipient="whistle@example.org", event="received", version=1
    )
    for viewer, sees in ((responder, False), (privacy_officer(), True)):
        body = client_for(viewer).get(_url(incident, "timeline/")).content.decode()
        assert ("whistle@example.org" in body) is sees
        assert ("the reporter" in body) is not sees


def test_the_problems_api_answers_a_restricted_reference_like_a_nonexistent_one():
    sec_incident, sec_responder = classified(domain_slug="security")
    it_incident, it_responder = classified()
    problem = create_problem(actor=sec_responder, title="Shared cause", incidents=[sec_incident])
    create_problem(actor=it_responder, title="Other", incidents=[it_incident])
    problem.incidents.add(it_incident)
    client = client_for(it_responder)

    hidden = client.get("/api/v1/problems/", {"incident": sec_incident.reference}).json()
    missing = client.get("/api/v1/problems/", {"incident": "INC-999999"}).json()
    assert hidden["results"] == missing["results"] == []
    listed = client.get("/api/v1/problems/", {"incident": it_incident.reference}).json()["results"]
    # The shared problem is visible (no restricted domain of its own) but not its security incident.
    assert [(p["title"], p["incidents"], p["incident_count"]) for p in listed] == [
        ("Shared cause", [it_incident.reference], 1)
    ]


# --- audit (Build 8) ------------------------------------------------------------------------------------------


def test_every_view_and_change_of_a_restricted_incident_by_a_responder_is_audited():
    incident, responder = classified(domain_slug="medical")
    client = client_for(responder)

    client.get(_url(incident))
    client.get(_url(incident, "timeline/"))
    client.post(_url(incident, "acknowledge/"), {}, format="json")
    client.get("/api/v1/incidents/")

    rows = list(AuditEvent.objects.filter(incident_id=incident.pk).values_list("user_id", "what", "detail"))
    assert rows == [
        (responder.pk, "view", "GET retrieve"),
        (responder.pk, "view", "GET timeline"),
        (responder.pk, "change", "POST acknowledge"),
        (responder.pk, "view", "GET list"),
    ]


def test_an_it_incident_and_the_reporters_own_view_are_not_audited():
    incident, responder = classified()
    client_for(responder).get(_url(incident))
    sec_incident, _ = classified(domain_slug="security")
    client_for(sec_incident.reporter).get(_url(sec_incident))
    assert not AuditEvent.objects.exists()


def test_auditing_a_page_of_restricted_incidents_is_one_insert():
    team = TeamFactory(domains=["security"])
    responder = agent(team)
    for _ in range(3):
        classified(domain_slug="security", team=team)
    client = client_for(responder)
    with CaptureQueriesContext(connection) as queries:
        client.get("/api/v1/incidents/")
    inserts = [
        q["sql"] for q in queries.captured_queries if "INSERT" in q["sql"] and "auditevent" in q["sql"]
    ]
    assert len(inserts) == 1
    assert AuditEvent.objects.filter(user_id=responder.pk).count() == 3


@pytest.mark.postgres
def test_the_audit_trail_cannot_be_changed_or_deleted_even_in_sql():
    from django.db import DatabaseError, transaction

    incident, responder = classified(domain_slug="security")
    client_for(responder).get(_url(incident))
    row = AuditEvent.objects.get()
    for statement in (
        "UPDATE incidents_auditevent SET username = 'someone-else'",
        "DELETE FROM incidents_auditevent",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cur,
        ):
            cur.execute(statement)
    assert AuditEvent.objects.get().username == row.username


def test_an_export_audits_each_restricted_incident_it_reads():
    team = TeamFactory(domains=["security", "it_service"])
    responder = agent(team)
    secure, _ = classified(domain_slug="security", team=team)
    classified(team=team)
    response = client_for(responder).get("/api/v1/reports/incidents.csv")
    assert len(list(response.streaming_content)) == 3  # header and two rows
    assert list(AuditEvent.objects.values_list("incident_id", "detail")) == [(secure.pk, "GET export")]


def test_deleting_a_visible_problem_does_not_write_to_incidents_the_caller_cannot_see():
    sec_incident, sec_responder = classified(domain_slug="security")
    it_incident, it_responder = classified()
    problem = create_problem(actor=sec_responder, title="Shared cause", incidents=[sec_incident, it_incident])
    entries = sec_incident.timeline.count()
    version = Incident.objects.get(pk=sec_incident.pk).version

    response = client_for(it_responder).delete(f"/api/v1/problems/{problem.pk}/")

    assert response.status_code == 400
    assert "incidents" in response.json()
    sec_incident.refresh_from_db()
    assert (sec_incident.problem_id, sec_incident.version) == (problem.pk, version)
    assert sec_incident.timeline.count() == entries
    assert client_for(sec_responder).delete(f"/api/v1/problems/{problem.pk}/").status_code == 204
