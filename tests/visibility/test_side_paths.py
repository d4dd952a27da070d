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
