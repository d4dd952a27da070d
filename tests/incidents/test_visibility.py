"""SPEC section 1: one queryset decides who sees what; everything outside it answers 404."""

from __future__ import annotations

import pytest

from incidents.models import Incident
from incidents.selectors import incidents_visible_to
from tests.conftest import client_for
from tests.factories import (
    TeamFactory,
    UserFactory,
    agent,
    incident_in,
    privacy_officer,
    report,
    responder_of,
)

pytestmark = pytest.mark.django_db
S = Incident.State


def refs(client, **params) -> set[str]:
    response = client.get("/api/v1/incidents/", params)
    assert response.status_code == 200
    return {i["reference"] for i in response.json()["results"]}


def test_reporter_a_never_sees_reporter_b():
    alice, bob = UserFactory(), UserFactory()
    mine = report(reporter=alice, title="Printer jam on floor 3")
    theirs = report(reporter=bob, title="Printer jam on floor 4")
    client = client_for(alice)
    assert refs(client) == {mine.reference}
    assert refs(client, q="printer") == {mine.reference}
    assert refs(client, q=theirs.reference) == set()
    assert refs(client, reporter=bob.username) == set()
    for path in ["", "timeline/", "comments/", "attachments/"]:
        assert client.get(f"/api/v1/incidents/{theirs.reference}/{path}").status_code == 404
    assert client.post(f"/api/v1/incidents/{theirs.reference}/comments/", {"body": "hi"}).status_code == 404
    assert client.post(f"/api/v1/incidents/{theirs.reference}/reopen/", {"reason": "x"}).status_code == 404
    assert (
        client.patch(f"/api/v1/incidents/{theirs.reference}/", {"title": "x", "version": 1}).status_code
        == 404
    )
    assert incidents_visible_to(alice).count() == 1


@pytest.mark.parametrize("domain_slug", ["security", "medical"])
def test_restricted_domains_are_invisible_outside_their_teams(domain_slug):
    reporter = UserFactory()
    incident = incident_in(S.RESPONDING, domain_slug=domain_slug, reporter=reporter)
    handler = responder_of(incident)
    it_agent = agent(TeamFactory(domains=["it_service"]))
    outsider = client_for(it_agent)
    assert incident.reference not in refs(outsider)
    assert incident.reference not in refs(outsider, q=incident.reference)
    assert incident.reference not in refs(outsider, domain=domain_slug)
    assert outsider.get(f"/api/v1/incidents/{incident.reference}/").status_code == 404
    assert (
        outsider.post(f"/api/v1/incidents/{incident.reference}/resolve/", {"summary": "x"}).status_code == 404
    )
    assert incidents_visible_to(it_agent).filter(domain__slug=domain_slug).count() == 0

    assert incident.reference in refs(client_for(handler))
    assert incident.reference in refs(client_for(reporter))
    assert incident.reference in refs(client_for(UserFactory(is_superuser=True)))


def test_confidential_reporter_is_hidden_from_responders():
    reporter = UserFactory(username="whistle")
    incident = report(reporter=reporter, confidential=True, title="Data sent to a wrong address")

    incident_in_team = incident  # received incidents are visible to every responder of an open domain
    responder = agent()
    client = client_for(responder)
    body = client.get(f"/api/v1/incidents/{incident_in_team.reference}/").json()
    assert "reporter" not in body
    assert "reporter_email" not in body
    assert refs(client, reporter="whistle") == set()
    assert refs(client, reporter=reporter.email) == set()
    client.post(f"/api/v1/incidents/{incident.reference}/comments/", {"body": "thanks", "public": True})
    client_for(reporter).post(f"/api/v1/incidents/{incident.reference}/comments/", {"body": "more details"})
    timeline = client.get(f"/api/v1/incidents/{incident.reference}/timeline/").json()["results"]
    assert "whistle" not in str(timeline)
    comments = client.get(f"/api/v1/incidents/{incident.reference}/comments/").json()["results"]
    assert "whistle" not in str(comments)
    assert {c["author"] for c in comments} == {"reporter", responder.username}

    officer = client_for(privacy_officer())
    assert officer.get(f"/api/v1/incidents/{incident.reference}/").json()["reporter"] == "whistle"
    assert incident.reference in refs(officer, reporter="whistle")
    assert (
        client_for(reporter).get(f"/api/v1/incidents/{incident.reference}/").json()["reporter"] == "whistle"
    )


def test_reporter_sees_public_entries_only():
    reporter = UserFactory()
    incident = incident_in(S.RESPONDING, reporter=reporter)
    responder = client_for(responder_of(incident))
    responder.post(
        f"/api/v1/incidents/{incident.reference}/comments/", {"body": "internal note", "public": False}
    )
    responder.post(
        f"/api/v1/incidents/{incident.reference}/comments/", {"body": "we are on it", "public": True}
    )
    responder.post(
        f"/api/v1/incidents/{incident.reference}/escalate/",
        {"team": TeamFactory().slug, "reason": "secret vendor"},
    )
    client = client_for(reporter)
    comments = client.get(f"/api/v1/incidents/{incident.reference}/comments/").json()["results"]
    assert [c["body"] for c in comments] == ["we are on it"]
    timeline = client.get(f"/api/v1/incidents/{incident.reference}/timeline/").json()["results"]
    assert all(e["public"] for e in timeline)
    assert "internal note" not in str(timeline)
    assert "secret vendor" not in str(timeline)
    escalation = next(e for e in timeline if e["action"] == "escalate")
    assert set(escalation["data"]) == {"from", "to"}


def test_reporter_comments_are_always_public_and_reporters_cannot_act():
    reporter = UserFactory()
    incident = incident_in(S.RESPONDING, reporter=reporter)
    client = client_for(reporter)
    response = client.post(
        f"/api/v1/incidents/{incident.reference}/comments/", {"body": "hello", "public": False}
    )
    assert response.status_code == 201
    assert response.json()["public"] is True
    assert (
        client.post(f"/api/v1/incidents/{incident.reference}/resolve/", {"summary": "x"}).status_code == 403
    )
    assert client.get(f"/api/v1/incidents/{incident.reference}/").json()["allowed_actions"] == []


def test_may_see_answers_exactly_what_incidents_visible_to_answers():
    """The sweep decides who may be told with `may_see` (no query per incident); it must never differ from
    the one queryset that decides visibility everywhere else."""
    from django.contrib.auth.models import AnonymousUser

    from incidents.selectors import may_see

    reporter = UserFactory()
    incidents = [
        incident_in(S.RESPONDING, domain_slug=slug, reporter=reporter)
        for slug in ["it_service", "security", "medical"]
    ]
    incidents.append(report(reporter=UserFactory(), title="Unclassified, no domain yet"))
    people = [
        reporter,
        UserFactory(),  # a reporter of nothing here
        UserFactory(is_superuser=True),
        agent(TeamFactory(domains=["it_service"])),
        agent(TeamFactory(domains=["it_service", "security"])),
        responder_of(incidents[2]),
        AnonymousUser(),
    ]
    for person in people:
        visible = set(incidents_visible_to(person).values_list("pk", flat=True))
        for incident in Incident.objects.select_related("domain").filter(pk__in=[i.pk for i in incidents]):
            assert may_see(person, incident) == (incident.pk in visible), (person, incident.domain)
