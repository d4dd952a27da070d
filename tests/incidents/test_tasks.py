from __future__ import annotations

import pytest
from django.core import mail

from incidents import lifecycle
from incidents.models import Incident, TimelineEntry
from incidents.tasks import notify_reporter
from tests.factories import UserFactory, incident_in, responder_of

pytestmark = pytest.mark.django_db


def test_resolving_queues_one_reporter_mail_after_commit(django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr(notify_reporter, "delay", lambda *args: sent.append(args))
    incident = incident_in(Incident.State.RESPONDING, reporter=UserFactory(email="rep@example.org"))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        lifecycle.resolve_incident(incident, actor=responder_of(incident), summary="Cable replaced")
    assert sent == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()
    incident.refresh_from_db()
    assert sent == [(incident.pk, "resolved", incident.version)]


def test_notify_reporter_sends_once_per_event_and_version():
    incident = incident_in(Incident.State.RESOLVED, reporter=UserFactory(email="rep@example.org"))
    notify_reporter(incident.pk, "resolved", incident.version)
    notify_reporter(incident.pk, "resolved", incident.version)  # a redelivered task
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["rep@example.org"]
    assert incident.reference in mail.outbox[0].subject
    assert "Restarted the VPN concentrator." in mail.outbox[0].body
    assert TimelineEntry.objects.filter(incident=incident, kind="notification").count() == 1

    actor = responder_of(incident)
    incident = lifecycle.reopen_incident(incident, actor=actor, reason="again")
    incident = lifecycle.resolve_incident(incident, actor=actor, summary="Second fix")
    notify_reporter(incident.pk, "resolved", incident.version)
    assert len(mail.outbox) == 2


def test_restricted_domain_mail_carries_no_details():
    incident = incident_in(
        Incident.State.RESOLVED, domain_slug="medical", reporter=UserFactory(email="n@example.org")
    )
    notify_reporter(incident.pk, "resolved", incident.version)
    assert "Restarted the VPN" not in mail.outbox[0].body
    assert incident.tracking_token in mail.outbox[0].body


def test_a_broker_outage_never_fails_the_change(django_capture_on_commit_callbacks, monkeypatch):
    def broker_down(*args):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(notify_reporter, "delay", broker_down)
    incident = incident_in(Incident.State.RESPONDING)
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.resolve_incident(incident, actor=responder_of(incident), summary="done")
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED
