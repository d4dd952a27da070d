from __future__ import annotations

import datetime as dt
import email
import hashlib
import hmac
from email import policy

import pytest
import time_machine
from django.core import mail
from django.core.mail import EmailMessage
from hypothesis import given
from hypothesis import settings as examples
from hypothesis import strategies as st

from escalation.delivery import OutboxMail, deliver, sign
from escalation.engine import republish, sweep
from escalation.headers import one_line, subject_line
from escalation.models import EscalationPolicy, EscalationStep, Notification, WebhookEndpoint
from incidents.models import Membership
from tests.escalation.receiver import Receiver
from tests.factories import TeamFactory, UserFactory, classified

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)


def policy_with(team, **step):
    policy = EscalationPolicy.objects.create(slug=f"p-{team.slug}", name="P", team=team)
    EscalationStep.objects.create(
        policy=policy, position=1, trigger="unacknowledged", delay_minutes=1, **step
    )


def due_notifications():
    return list(Notification.objects.filter(state="pending").values_list("pk", flat=True))


def test_email_carries_the_key_as_message_id_and_is_marked_sent_once():
    team = TeamFactory()
    policy_with(team, notify_email="oncall@example.org")
    with time_machine.travel(T0, tick=False):
        incident, _ = classified(team=team)
    sweep(now=T0 + dt.timedelta(minutes=1))
    (pk,) = due_notifications()
    assert deliver(pk) == "sent"
    assert deliver(pk) == "skipped"  # a redelivered task
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    row = Notification.objects.get(pk=pk)
    assert row.key in message.extra_headers["Message-ID"]
    assert message.extra_headers["X-IncidentDesk-Reference"] == incident.reference
    assert incident.reference in message.subject
    assert row.state == "sent"


def test_webhook_is_signed_and_verifiable():
    with Receiver() as receiver:
        hook = WebhookEndpoint.objects.create(slug="ops", name="Ops", url=receiver.url)
        team = TeamFactory()
        policy_with(team, notify_webhook=hook)
        with time_machine.travel(T0, tick=False):
            incident, _ = classified(team=team)
        sweep(now=T0 + dt.timedelta(minutes=1))
        (pk,) = due_notifications()
        assert deliver(pk) == "sent"
    (request,) = receiver.requests
    headers = request["headers"]
    message_id, timestamp = headers["X-IncidentDesk-Id"], headers["X-IncidentDesk-Timestamp"]
    expected = hmac.new(
        hook.secret.encode(), f"{message_id}.{timestamp}.".encode() + request["body"], hashlib.sha256
    )
    assert headers["X-IncidentDesk-Signature"] == f"v1={expected.hexdigest()}"
    assert headers["Idempotency-Key"] == message_id
    assert request["json"]["incident"]["reference"] == incident.reference
    assert sign("other", message_id, int(timestamp), request["body"]) != headers["X-IncidentDesk-Signature"]


def test_a_failing_receiver_is_retried_with_backoff_then_dead(settings):
    settings.NOTIFICATION_BACKOFF_SECONDS = [0, 0]
    with Receiver() as receiver:
        receiver.fail_with = 503
        hook = WebhookEndpoint.objects.create(slug="ops", name="Ops", url=receiver.url)
        team = TeamFactory()
        policy_with(team, notify_webhook=hook)
        with time_machine.travel(T0, tick=False):
            incident, _ = classified(team=team)
        sweep(now=T0 + dt.timedelta(minutes=1))
        (pk,) = due_notifications()
        assert deliver(pk) == "retry"
        row = Notification.objects.get(pk=pk)
        assert (row.state, row.attempts, row.last_error) == ("pending", 1, "RuntimeError: HTTP 503")
        assert pk in republish()  # the sweep prompts it again
        receiver.fail_with = None
        assert deliver(pk) == "sent"
        assert len(receiver.requests) == 1

        receiver.fail_with = 500
        Notification.objects.filter(pk=pk).update(state="pending", attempts=0)
        assert [deliver(pk) for _ in range(3)] == ["retry", "retry", "dead"]
    assert Notification.objects.get(pk=pk).state == "dead"
    assert incident.timeline.filter(kind="escalation", action="notification_dead").exists()


def test_backoff_waits_before_the_next_attempt(settings):
    settings.NOTIFICATION_BACKOFF_SECONDS = [3600]
    with Receiver() as receiver:
        receiver.fail_with = 503
        hook = WebhookEndpoint.objects.create(slug="ops", name="Ops", url=receiver.url)
        team = TeamFactory()
        policy_with(team, notify_webhook=hook)
        with time_machine.travel(T0, tick=False):
            classified(team=team)
        sweep(now=T0 + dt.timedelta(minutes=1))
        (pk,) = due_notifications()
        assert deliver(pk) == "retry"
        assert deliver(pk) == "skipped"  # not due for an hour
        assert pk not in republish()


@pytest.mark.parametrize("domain_slug", ["security", "medical"])
def test_restricted_content_never_reaches_outsiders(domain_slug):
    team = TeamFactory(domains=[domain_slug], email="team@example.org")
    insider = UserFactory(email="insider@example.org")
    outsider = UserFactory(email="outsider@example.org")
    Membership.objects.create(team=team, user=insider)
    policy_with(team, notify_team=team, notify_user=outsider, notify_email="external@example.org")
    with time_machine.travel(T0, tick=False):
        incident, _ = classified(
            team=team, domain_slug=domain_slug, title="Patient Jane Roe got the wrong dose"
        )
    sweep(now=T0 + dt.timedelta(minutes=1))
    rows = {n.recipient: n for n in Notification.objects.filter(incident=incident, event="escalation_step")}
    assert "outsider@example.org" not in rows  # cannot see the incident: not told
    assert "Jane Roe" in rows["insider@example.org"].subject
    for address in ("external@example.org", "team@example.org"):
        assert "Jane Roe" not in rows[address].subject + rows[address].body + str(rows[address].payload)
        assert incident.reference in rows[address].subject


def test_a_dead_notification_alerts_the_manager_and_operators_once_and_never_loops(settings):
    """The people who were not told are someone's problem: the team's manager and the desk's operators get
    an alert through the outbox; an alert that dies in turn is logged, not alerted again."""
    settings.NOTIFICATION_BACKOFF_SECONDS = [0]
    settings.ADMINS = [("Ops", "ops@example.org")]
    settings.NOTIFICATION_DEAD_ALERT_EMAILS = ["noc@example.org"]
    manager = UserFactory(email="manager@example.org")
    with Receiver() as receiver:
        receiver.fail_with = 500
        hook = WebhookEndpoint.objects.create(slug="ops", name="Ops", url=receiver.url)
        team = TeamFactory(manager=manager)
        Membership.objects.create(team=team, user=manager)
        policy_with(team, notify_webhook=hook)
        with time_machine.travel(T0, tick=False):
            classified(team=team)
        sweep(now=T0 + dt.timedelta(minutes=1))
        (pk,) = due_notifications()
        assert [deliver(pk) for _ in range(2)] == ["retry", "dead"]
    alerts = Notification.objects.filter(event="notification_dead").order_by("recipient")
    assert [a.recipient for a in alerts] == ["manager@example.org", "noc@example.org", "ops@example.org"]
    assert all(receiver.url in a.body and "500" in a.body for a in alerts)
    # The dead row is decided once: another delivery attempt changes nothing and alerts nobody again.
    assert deliver(pk) == "skipped"
    assert Notification.objects.filter(event="notification_dead").count() == 3

    # An alert that cannot be delivered either ends dead with a log line and no alert about the alert.
    alert = alerts.get(recipient="noc@example.org")
    settings.EMAIL_BACKEND = "tests.escalation.test_delivery.RefusingBackend"
    assert [deliver(alert.pk) for _ in range(2)] == ["retry", "dead"]
    assert Notification.objects.filter(event="notification_dead").count() == 3
    assert deliver(alerts.get(recipient="ops@example.org").pk) == "retry"


class RefusingBackend:
    """An SMTP server that refuses every message (the alert path when mail itself is what is down)."""

    def __init__(self, *args, **kwargs):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("mail server down")


def test_a_dead_mail_without_an_incident_alerts_the_operators(settings):
    """Follow-up reminders of problem records carry no incident: their death still reaches the operators."""
    from escalation.notify import queue_message

    settings.NOTIFICATION_BACKOFF_SECONDS = [0]
    settings.ADMINS = [("Ops", "ops@example.org")]
    (pk,) = queue_message(
        event="follow_up_reminder", cause="follow-up:1:2026-06-01", address="owner@example.org",
        subject="Follow-up due", body="Please finish the follow-up.",
    )  # fmt: skip
    settings.EMAIL_BACKEND = "tests.escalation.test_delivery.RefusingBackend"
    assert [deliver(pk) for _ in range(2)] == ["retry", "dead"]
    (alert,) = Notification.objects.filter(event="notification_dead")
    assert (alert.recipient, alert.incident_id) == ("ops@example.org", None)
    assert "owner@example.org" in alert.body


def test_a_set_of_rows_is_claimed_sent_over_one_connection_and_marked_in_a_fixed_number_of_statements():
    from django.core import mail
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from escalation.delivery import deliver_many
    from escalation.notify import Recipient, queue
    from incidents.models import TimelineEntry
    from tests.factories import classified

    def rows(n):
        incident, _ = classified()
        people = [Recipient("email", f"p{i}-{incident.pk}@example.org") for i in range(n)]
        return queue(
            incident, event="sla_breach", detail="SLA breached", cause=f"t{incident.pk}", recipients=people
        )

    small, large = rows(2), rows(20)
    mail.outbox.clear()
    counts = []
    for ids in (small, large):
        with CaptureQueriesContext(connection) as ctx:
            outcome = deliver_many(ids + ids[:1])  # a prompt repeated: the row is sent once
        assert outcome["sent"] == len(ids)
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1], counts
    assert len(mail.outbox) == 22
    assert set(Notification.objects.filter(pk__in=small + large).values_list("state", flat=True)) == {"sent"}
    assert TimelineEntry.objects.filter(kind="notification", data__event="sla_breach").count() == 22
    assert deliver_many(small) == {"sent": 0, "skipped": 2, "retry": 0, "dead": 0}


ADDRESSES = [
    "oncall@example.org",
    "IncidentDesk <desk@localhost>",
    "Jörg Müller <joerg@bücher.example>",
    "a.very.long.local.part.of.an.address.that.goes.on.and.on@a-long-subdomain.example.org",
]


def parsed(message) -> tuple[list[tuple[str, str]], str]:
    """What a receiving mail system reads: every header but Date (the second it was built), and the text."""
    read = email.message_from_bytes(message.as_bytes(linesep="\r\n"), policy=policy.default)
    return [(k, str(v).strip()) for k, v in read.items() if k != "Date"], read.get_content()


@examples(max_examples=300, deadline=None)
@given(
    subject=st.text(max_size=300),
    body=st.text(st.characters(exclude_categories=["Cs"]), max_size=1500),
    sender=st.sampled_from(ADDRESSES),
    recipient=st.sampled_from(ADDRESSES),
    reference=st.sampled_from(["INC-000042", "PRB-7", ""]),
)
def test_an_outbox_mail_reads_as_djangos_own_message(subject, body, sender, recipient, reference):
    fields = {
        "subject": subject_line(subject),
        "body": body,
        "from_email": sender,
        "to": [one_line(recipient)],
        "headers": {
            "Message-ID": f"<{'k' * 64}@localhost>",
            "X-IncidentDesk-Reference": reference,
            "X-IncidentDesk-Event": "sla_breach",
            "Auto-Submitted": "auto-generated",
        },
    }
    ours, django = OutboxMail(**fields).message(), EmailMessage(**fields).message()
    assert parsed(ours) == parsed(django)
    assert ours["Message-ID"] == django["Message-ID"]
    head, _ = ours.as_bytes(linesep="\r\n").split(b"\r\n\r\n", 1)
    assert head.isascii()  # 7-bit headers, as Django writes them: no mail system needs SMTPUTF8 for them
    assert all(len(line) <= 998 for line in ours.as_bytes(linesep="\r\n").split(b"\r\n"))


def test_a_set_sent_over_an_open_smtp_connection_reaches_the_server_as_single_sends_do(settings):
    from escalation.delivery import deliver_many
    from escalation.notify import Recipient, queue
    from tests.escalation.processes import SmtpSink

    sink = SmtpSink()
    sink.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    try:
        incident, _ = classified(title="Kühlung ausgefallen in Halle 3")
        people = [Recipient("email", "a@example.org"), Recipient("email", "Jörg <joerg@bücher.example>")]
        one, other = queue(incident, event="sla_breach", detail="SLA breached", cause="c1", recipients=people)
        assert deliver(one) == "sent"  # through Django's backend
        assert deliver_many([other]) == {
            "sent": 1,
            "skipped": 0,
            "retry": 0,
            "dead": 0,
        }  # the open connection
    finally:
        sink.stop()
    single, batched = sink.messages
    assert single["to"] == ["a@example.org"]
    assert batched["to"] == ["joerg@xn--bcher-kva.example"]
    assert batched["subject"] == single["subject"]
    assert batched["reference"] == single["reference"] == incident.reference
    assert {single["key"], batched["key"]} == set(
        Notification.objects.filter(pk__in=[one, other]).values_list("key", flat=True)
    )


def test_a_set_is_marked_sent_in_one_update_that_leaves_a_row_settled_meanwhile_alone(monkeypatch):
    """The set's rows still `sending` are marked sent by one UPDATE ... RETURNING (a credential's body
    cleared by it too), then their timeline entries in one INSERT; a row whose lease another worker took
    and settled while this one sent is neither marked nor given an entry."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from escalation import delivery
    from escalation.notify import Recipient, queue, queue_message
    from incidents.models import TimelineEntry

    incident, _ = classified()
    people = [Recipient("email", f"p{i}@example.org") for i in range(3)]
    ids = queue(incident, event="sla_breach", detail="SLA breached", cause="t1", recipients=people)
    ids += queue_message(
        event="password_reset", cause="reset:1", address="someone@example.org", subject="Reset",
        body="https://desk.example.org/reset/secret-token/",
    )  # fmt: skip
    settled = ids[1]
    real_send = delivery.send

    def send(row, *, connection=None):
        real_send(row, connection=connection)
        if row.pk == settled:  # its lease ran out; another worker claimed it, failed, and backed off
            Notification.objects.filter(pk=row.pk).update(state="pending", lease_until=None)

    monkeypatch.setattr(delivery, "send", send)
    entries = TimelineEntry.objects.filter(kind="notification", incident=incident)
    before = entries.count()
    mail.outbox.clear()
    with CaptureQueriesContext(connection) as ctx:
        outcome = delivery.deliver_many(ids)
    assert outcome == {"sent": 3, "skipped": 0, "retry": 0, "dead": 0}
    assert len(mail.outbox) == 4
    states = dict(Notification.objects.filter(pk__in=ids).values_list("pk", "state"))
    assert states == {pk: "pending" if pk == settled else "sent" for pk in ids}
    assert Notification.objects.get(event="password_reset").body == ""
    assert Notification.objects.get(pk=ids[0]).body != ""
    assert entries.count() == before + 2  # the incident's two rows marked here; the settled one has none
    # The claim's locking SELECT and UPDATE, the other worker's UPDATE (above), then one UPDATE ... RETURNING:
    # no locking SELECT before it, and no UPDATE of the credential's body after it.
    outbox = [q["sql"] for q in ctx.captured_queries if "escalation_notification" in q["sql"]]
    assert len(outbox) == 4, outbox
