"""Reporter mail through the escalation outbox: written with the lifecycle change, delivered after commit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from escalation.delivery import deliver
from escalation.engine import REPUBLISH_AFTER, republish
from escalation.models import Notification
from escalation.tasks import deliver_notification
from incidents import lifecycle, notifications
from incidents.models import Incident, TimelineEntry
from tests.factories import UserFactory, incident_in, responder_of

pytestmark = pytest.mark.django_db


def reporter_rows(incident, event):
    return Notification.objects.filter(incident=incident, event=f"reporter_{event}")


def test_resolving_writes_the_reporter_mail_in_the_same_transaction_and_prompts_after_commit(
    django_capture_on_commit_callbacks, monkeypatch
):
    prompted = []
    monkeypatch.setattr(deliver_notification, "delay", lambda pk: prompted.append(pk))
    incident = incident_in(Incident.State.RESPONDING, reporter=UserFactory(email="rep@example.org"))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        lifecycle.resolve_incident(incident, actor=responder_of(incident), summary="Cable replaced")
        (row,) = reporter_rows(incident, "resolved")  # already there, inside the transaction
    assert prompted == []  # nothing leaves before the commit
    for callback in callbacks:
        callback()
    assert prompted == [row.pk]
    assert row.recipient == "rep@example.org"
    assert row.incident_id == incident.pk


def test_a_rolled_back_change_leaves_no_mail():
    incident = incident_in(Incident.State.RESPONDING, reporter=UserFactory(email="rep@example.org"))
    actor = responder_of(incident)

    def resolve_then_fail():
        with transaction.atomic():
            lifecycle.resolve_incident(incident, actor=actor, summary="Cable replaced")
            raise RuntimeError("the request failed after the resolve")

    with pytest.raises(RuntimeError):
        resolve_then_fail()
    assert not reporter_rows(incident, "resolved").exists()


def test_the_resolved_mail_is_sent_once_per_resolution():
    incident = incident_in(Incident.State.RESOLVED, reporter=UserFactory(email="rep@example.org"))
    (row,) = reporter_rows(incident, "resolved")
    assert deliver(row.pk) == "sent"
    assert deliver(row.pk) == "skipped"  # a redelivered prompt
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["rep@example.org"]
    assert incident.reference in message.subject
    assert "Restarted the VPN concentrator." in message.body
    assert incident.tracking_token in message.body
    assert TimelineEntry.objects.filter(incident=incident, kind="notification").count() == 1

    actor = responder_of(incident)
    incident = lifecycle.reopen_incident(incident, actor=actor, reason="again")
    incident = lifecycle.resolve_incident(incident, actor=actor, summary="Second fix")
    assert reporter_rows(incident, "resolved").count() == 2  # a new resolution is a new mail


def test_restricted_domain_mail_says_only_that_something_changed():
    incident = incident_in(
        Incident.State.CLOSED, domain_slug="medical", reporter=UserFactory(email="n@example.org")
    )
    for row in Notification.objects.filter(incident=incident, event__startswith="reporter_"):
        assert "Restarted the VPN" not in row.body
        assert "Memory leak" not in row.body
        assert "Firmware" not in row.body
        assert incident.title not in row.subject
        assert incident.tracking_token in row.body
    assert reporter_rows(incident, "closed").exists()


def test_the_closing_mail_carries_the_report_and_one_click_survey_links():
    incident = incident_in(Incident.State.CLOSED, reporter=UserFactory(email="rep@example.org"))
    (row,) = reporter_rows(incident, "closed")
    assert "Why it happened: Memory leak in firmware" in row.body
    assert "prevents it from happening again: Firmware upgraded" in row.body
    token = notifications.survey_token(incident)
    for score in range(1, 6):
        assert f"/survey/{token}/?score={score}" in row.body
    assert notifications.incident_pk_from_survey_token(token) == incident.pk
    assert notifications.incident_pk_from_survey_token(token[:-2] + "xx") is None  # tampered


def test_an_anonymous_reporter_is_mailed_at_the_address_they_gave():
    incident = incident_in(Incident.State.RESOLVED, reporter_email="anon@example.org")
    assert reporter_rows(incident, "resolved").get().recipient == "anon@example.org"


def test_no_address_no_mail():
    incident = incident_in(Incident.State.RESOLVED, reporter=UserFactory(email=""))
    assert not reporter_rows(incident, "resolved").exists()


def test_a_broker_outage_never_fails_the_change_and_the_sweep_republishes(
    django_capture_on_commit_callbacks, monkeypatch
):
    def broker_down(*args):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(deliver_notification, "delay", broker_down)
    incident = incident_in(Incident.State.RESPONDING, reporter=UserFactory(email="rep@example.org"))
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.resolve_incident(incident, actor=responder_of(incident), summary="done")
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED
    (row,) = reporter_rows(incident, "resolved")
    assert row.state == "pending"
    assert row.enqueued_at is None
    assert row.pk in republish()  # the engine sweep prompts it again


def test_the_receipt_is_written_enqueued_and_its_prompt_writes_nothing_after_commit(
    django_capture_on_commit_callbacks, monkeypatch
):
    prompted = []
    monkeypatch.setattr(deliver_notification, "delay", lambda pk: prompted.append(pk))
    incident = incident_in(Incident.State.RECEIVED, reporter=UserFactory(email="rep@example.org"))
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        notifications.notify_received(incident)
    (row,) = reporter_rows(incident, "received")
    assert row.enqueued_at is not None  # written as the sweep writes its rows: the prompt follows the commit
    assert row.pk not in republish()  # nor does the sweep prompt it meanwhile

    with CaptureQueriesContext(connection) as queries:
        for callback in callbacks:
            callback()

    assert prompted == [row.pk]
    assert not [q for q in queries.captured_queries if "escalation_notification" in q["sql"]]


def test_a_receipt_whose_prompt_was_lost_is_republished_by_the_sweep(
    django_capture_on_commit_callbacks, monkeypatch
):
    def broker_down(*args):
        raise ConnectionError("broker unreachable")

    monkeypatch.setattr(deliver_notification, "delay", broker_down)
    incident = incident_in(Incident.State.RECEIVED, reporter=UserFactory(email="rep@example.org"))
    other = incident_in(Incident.State.RECEIVED, reporter=UserFactory(email="other@example.org"))
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        notifications.notify_received(incident)
    # The process died before its prompt:
    with django_capture_on_commit_callbacks(execute=False), transaction.atomic():
        notifications.notify_received(other)

    (refused,) = reporter_rows(incident, "received")
    assert refused.enqueued_at is None  # the broker refused it: the next sweep prompts it
    assert refused.pk in republish()
    (lost,) = reporter_rows(other, "received")
    assert lost.pk not in republish()
    Notification.objects.filter(pk=lost.pk).update(
        enqueued_at=timezone.now() - REPUBLISH_AFTER - timedelta(seconds=1)
    )
    assert lost.pk in republish()  # once its stamp is older than a prompt takes
