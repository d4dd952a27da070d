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
