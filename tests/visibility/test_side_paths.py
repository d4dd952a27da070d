"""Issue 11's promises on side paths: webhooks, management commands, timeline data, two roles at once."""

from __future__ import annotations

import pytest

from escalation.models import Notification, WebhookEndpoint
from escalation.webhooks import EVENTS
from incidents import services
from tests.factories import TeamFactory, UserFactory, classified

pytestmark = pytest.mark.django_db


def test_a_confidential_reporters_public_comment_reaches_a_webhook_without_their_name():
    """A webhook owned by a team (whose agents may not know a confidential reporter) gets the comment, not
    who wrote it; a responder's comment keeps its author."""
    team = TeamFactory(domains=["it_service"])
    WebhookEndpoint.objects.create(
        slug="hook-conf", name="Listener", url="http://127.0.0.1:9/hook", events=list(EVENTS), owner_team=team
    )
    whistleblower = UserFactory(username="whistle-9k2", email="whistle-9k2@example.org")
    incident, agent = classified(team=team, reporter=whistleblower, confidential=True)
    services.add_comment(incident, author=whistleblower, body="More detail", public=True)
    services.add_comment(incident, author=agent, body="We are on it", public=True)

    payloads = [
        n.payload for n in Notification.objects.filter(channel="webhook", event="incident.public_comment")
    ]
    assert [p["comment"]["author"] for p in payloads] == [None, agent.get_username()]
    everything = str(list(Notification.objects.filter(channel="webhook").values_list("payload", flat=True)))
    assert "whistle-9k2" not in everything


def test_every_timeline_entry_of_a_confidential_report_hides_the_reporter_from_responders(client):
    """The reporter comments, confirms, reopens and is notified; the desk edits, resolves and closes. No
    entry's data, on the API or the console, names them to an agent who may not know them."""
    from incidents import lifecycle, timeline
    from tests.conftest import client_for

    team = TeamFactory(domains=["it_service"])
    whistleblower = UserFactory(username="whistle-4hz", email="whistle-4hz@example.org")
    incident, agent = classified(team=team, reporter=whistleblower, confidential=True)
    services.add_comment(incident, author=whistleblower, body="It happened again", public=True)
    incident = lifecycle.acknowledge_incident(incident, actor=agent)
    incident = lifecycle.resolve_incident(incident, actor=agent, summary="Fixed")
    incident = lifecycle.reopen_incident(incident, actor=whistleblower, reason="Not fixed")
    incident = lifecycle.resolve_incident(incident, actor=agent, summary="Fixed again")
    incident = lifecycle.confirm_resolution(incident, actor=whistleblower)
    timeline.record_notification(
        incident=incident, channel="email", recipient="whistle-4hz@example.org", event="resolved",
        version=incident.version,
    )  # fmt: skip
    incident = lifecycle.close_incident(
        incident, actor=agent, cause="Disk", measures="Rotate", resolution_code="fixed"
    )
    api = client_for(agent)
    bodies = [
        api.get(f"/api/v1/incidents/{incident.reference}/timeline/").content.decode(),
        api.get(f"/api/v1/incidents/{incident.reference}/comments/").content.decode(),
        api.get(f"/api/v1/incidents/{incident.reference}/").content.decode(),
    ]
    client.force_login(agent)
    bodies.append(client.get(f"/desk/incidents/{incident.reference}/").content.decode())
    kinds = set(incident.timeline.values_list("kind", flat=True))
    assert {"comment", "notification", "created"} <= kinds, kinds
    for body in bodies:
        assert "whistle-4hz" not in body


def test_a_problem_counts_only_the_linked_incidents_the_viewer_sees_after_a_change_of_domain(client):
    """An IT incident linked to an IT problem is reclassified to `security`: IT agents keep the problem
    but no longer see the incident, in its list, its count, on the console or the API."""
    from incidents import lifecycle, problems
    from tests.conftest import client_for
    from tests.factories import CategoryFactory, agent, domain

    it_team = TeamFactory(domains=["it_service"])
    sec_team = TeamFactory(domains=["security"])
    printer, it_agent = classified(team=it_team, title="Printer zq7marker jam")
    other, _ = classified(team=it_team, title="Another printer")
    problem = problems.create_problem(
        actor=it_agent, title="Printers", team=it_team, incidents=[printer, other]
    )
    sec = domain("security")
    lifecycle.classify_incident(
        printer, actor=agent(sec_team), domain=sec, category=CategoryFactory(domain=sec), impact=2, urgency=2,
        team=sec_team,
    )  # fmt: skip

    api = client_for(it_agent).get(f"/api/v1/problems/{problem.pk}/").json()
    assert api["incident_count"] == 1
    client.force_login(it_agent)
    listing = client.get("/desk/problems/", {"state": "all"}).content.decode()
    page = client.get(f"/desk/problems/{problem.pk}/").content.decode()
    assert "zq7marker" not in page
    assert "Linked incidents (1)" in page
    row = listing.split("Printers", 1)[1].split("</tr>", 1)[0]
    assert '<td class="text-end">1</td>' in row
