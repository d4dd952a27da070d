"""Delivering outbox rows: claim with a lease, send with the idempotency key, mark sent or back off.

At least once to the wire; duplicates carry the same key (the Message-ID of an e-mail, the
Idempotency-Key of a webhook), so receivers drop them: exactly once in effect.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import time
from datetime import timedelta
from email.message import Message
from email.utils import formatdate
from functools import lru_cache
from typing import Any

import requests
from celery import shared_task
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.core.mail.message import RFC5322_EMAIL_LINE_LENGTH_LIMIT as MAX_LINE
from django.core.mail.message import BadHeaderError, sanitize_address
from django.db import connection as database
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone

from incidents import timeline
from incidents.models import TimelineEntry

from .headers import folded, one_line, subject_line
from .models import Notification
from .notify import Enqueued, dead_alert_recipients, queue, queue_message

logger = logging.getLogger(__name__)
State = Notification.State
DEAD_ALERT_EVENT = "notification_dead"
# Mail whose body is a credential (a password-reset link): kept only while it may still have to be sent, so
# that nobody who can read the outbox (the admin) can use it afterwards.
SECRET_BODY_EVENTS = frozenset({"password_reset"})


def _lease() -> timedelta:
    return timedelta(seconds=settings.NOTIFICATION_LEASE_SECONDS)


def claimable() -> Q:
    """The rows a delivery may claim: pending and due, or sending with a lease that ran out (its worker died)."""
    return Q(state=State.PENDING, next_attempt_at__lte=Now()) | Q(state=State.SENDING, lease_until__lt=Now())


def claim(notification_id: int) -> Notification | None:
    """Take the row for sending, unless someone holds a live lease or it is not due. Commits at once."""
    with transaction.atomic():
        row = (
            # Only the outbox row is locked: PostgreSQL refuses FOR UPDATE on the nullable side of the
            # outer join to the webhook. Wait for a lock rather than skip it: the row may be held for a moment
            # by the sweep marking it enqueued, and a skipped prompt would leave it pending until the sweep
            # republishes it 30 s later. After the wait the conditions are checked again, so a row another
            # task has just claimed (sending, lease live) is still left alone.
            Notification.objects.select_for_update(of=("self",))
            .filter(pk=notification_id)
            .filter(claimable())
            .select_related("webhook", "incident", "problem")
            .first()
        )
        if row is None:
            return None
        Notification.objects.filter(pk=row.pk).update(
            state=State.SENDING, lease_until=Now() + _lease(), attempts=row.attempts + 1
        )
        row.attempts += 1
        return row


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """HMAC-SHA256 over id.timestamp.body, hex, as `v1=<hex>`."""
    mac = hmac.new(secret.encode(), f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return f"v1={mac.hexdigest()}"


def send(row: Notification, *, connection: Any = None) -> None:
    if row.channel == Notification.Channel.WEBHOOK:
        if row.webhook is None:
            raise RuntimeError("the webhook endpoint was removed")
        body = json.dumps(row.payload, sort_keys=True, separators=(",", ":")).encode()
        timestamp = int(time.time())
        response = requests.post(
            row.webhook.url,
            data=body,
            timeout=settings.WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "IncidentDesk-Webhook/1",
                "X-IncidentDesk-Id": row.key,
                "X-IncidentDesk-Timestamp": str(timestamp),
                "X-IncidentDesk-Signature": sign(row.webhook.secret, row.key, timestamp, body),
                "X-IncidentDesk-Event": row.event,
                "Idempotency-Key": row.key,
            },
        )
        if not 200 <= response.status_code < 300:
            raise RuntimeError(f"HTTP {response.status_code}")
        return
    domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip(">") or "incidentdesk"
    # Normalised again here, not only when queued: a row written before (or around) that rule would
    # otherwise fail with BadHeaderError on every attempt until it is dead.
    message = OutboxMail(
        subject=subject_line(row.subject),
        body=row.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[one_line(row.recipient)],
        headers={
            # The same Message-ID on a resend lets mail systems drop the duplicate; the reference threads replies.
            "Message-ID": f"<{row.key}@{domain}>",
            "X-IncidentDesk-Reference": one_line(_reference(row)),
            "X-IncidentDesk-Event": one_line(row.event),
            "Auto-Submitted": "auto-generated",
        },
        connection=connection,
    )
    if isinstance(connection, SmtpBackend) and connection.connection is not None:
        # A set's open SMTP connection (`deliver_many`) takes the bytes as they are: Django's backend would
        # parse both addresses again for every message (0.1 ms each), that is all it adds.
        data = message.message().as_bytes(linesep="\r\n")
        connection.connection.sendmail(_address(message.from_email), [_address(a) for a in message.to], data)
        return
    message.send(fail_silently=False)


class OutboxMail(EmailMessage):
    """An outbox row's e-mail, whose wire form is written in one pass: what Django's own `message()` would
    carry once parsed (tests/escalation/test_delivery.py compares them), at a fraction of its CPU. Django
    folds and encodes every header through `email.header` twice, 0.6 ms a message here, most of a burst's
    delivery (issue 15). A body with a line too long for SMTP takes Django's way (quoted-printable)."""

    def message(self) -> Any:  # type: ignore[override]  # Django 5.2's takes no policy (the stubs are 6.0's)
        body = str(self.body)
        if any(len(line.encode(errors="surrogateescape")) > MAX_LINE for line in body.splitlines()):
            return super().message()
        headers = [
            ("Content-Type", 'text/plain; charset="utf-8"'),
            ("MIME-Version", "1.0"),
            ("Content-Transfer-Encoding", "7bit" if body.isascii() else "8bit"),
            ("Subject", self.subject),
            ("From", _address(self.from_email)),
            ("To", ", ".join(_address(to) for to in self.to)),
            ("Date", formatdate(localtime=settings.EMAIL_USE_LOCALTIME)),
            *self.extra_headers.items(),
        ]
        if any("\n" in value or "\r" in value for _, value in headers):
            raise BadHeaderError(f"a header value holds a line break: {headers!r}")
        head = "".join(f"{folded(name, value)}\r\n" for name, value in headers)
        text = "\r\n".join(_LINE_END.split(body))
        return Wire(headers, f"{head}\r\n{text}".encode(errors="surrogateescape"))


class Wire(Message):
    """A message whose wire form (`data`, CRLF line ends) is built already: the backends send `as_bytes`,
    and its headers read as on any message."""

    def __init__(self, headers: list[tuple[str, str]], data: bytes) -> None:
        super().__init__()
        for name, value in headers:
            self[name] = value
        self.data = data

    def as_bytes(self, unixfrom: bool = False, policy: Any = None, linesep: str = "\n") -> bytes:
        return self.data.replace(b"\r\n", linesep.encode())

    def as_string(
        self, unixfrom: bool = False, maxheaderlen: int = 0, policy: Any = None, linesep: str = "\n"
    ) -> str:
        return self.as_bytes(linesep=linesep).decode(errors="surrogateescape")


_LINE_END = re.compile(r"\r\n|\r|\n")


@lru_cache(maxsize=4096)
def _address(address: str) -> str:
    """An address as it goes in a header, as Django writes it (display name and IDN encoded). A burst
    goes to the same few people: each is parsed once per process."""
    return sanitize_address(address, "utf-8")


def _reference(row: Notification) -> str:
    if row.incident is not None:
        return row.incident.reference
    return row.problem.reference if row.problem is not None else ""


def deliver(notification_id: int) -> str:
    """Send one outbox row. Running it twice, or after a crash, sends it at least once and marks it once."""
    row = claim(notification_id)
    if row is None:
        return "skipped"
    try:
        send(row)
    except Exception as exc:
        return _failed(row, exc)
    with transaction.atomic():
        updated = Notification.objects.filter(pk=row.pk, state=State.SENDING).update(
            state=State.SENT, sent_at=Now(), lease_until=None, last_error="", **_forget(row)
        )
        if updated and row.incident is not None:
            timeline.record_notification(
                incident=row.incident, channel=row.channel, recipient=row.recipient, event=row.event,
                version=row.incident.version,
            )  # fmt: skip
    return "sent"


def claim_many(ids: list[int]) -> list[Notification]:
    """`claim` for a set of rows: one locking SELECT and one UPDATE, whatever their number. Commits at once.
    Rows are locked in key order (two workers given overlapping sets never deadlock) and, as in `claim`,
    waited for rather than skipped; after the wait the conditions are checked again."""
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(of=("self",))
            .filter(pk__in=ids)
            .filter(claimable())
            .select_related("webhook", "incident", "problem")
            .order_by("pk")
        )
        if rows:
            Notification.objects.filter(pk__in=[row.pk for row in rows]).update(
                state=State.SENDING, lease_until=Now() + _lease(), attempts=F("attempts") + 1
            )
        for row in rows:
            row.attempts += 1
        return rows


def _renew(rows: list[Notification]) -> set[int]:
    """Extend the lease of the rows this worker still holds: sending, lease live, and claimed by this very
    attempt (another claim after an expired lease counts one more attempt). Returns the ids still held."""
    with transaction.atomic():
        live = dict(
            Notification.objects.select_for_update(of=("self",))
            .filter(pk__in=[row.pk for row in rows], state=State.SENDING, lease_until__gt=Now())
            .values_list("pk", "attempts")
        )
        held = {row.pk for row in rows if live.get(row.pk) == row.attempts}
        Notification.objects.filter(pk__in=held).update(lease_until=Now() + _lease())
    return held


def deliver_many(ids: list[int]) -> dict[str, int]:
    """Send a set of outbox rows: claimed together, mail over one SMTP connection, marked sent together (with
    their timeline entries in one INSERT). A failure backs off that row alone, as `deliver` does.

    A slow receiver cannot make the set outlive its lease: at half the lease, the rows sent so far are marked
    and the lease of the rest is extended (only rows this attempt still holds; any other is left alone)."""
    outcome = {"sent": 0, "skipped": 0, "retry": 0, "dead": 0}
    rows = claim_many(ids)
    outcome["skipped"] = len(set(ids)) - len(rows)
    sent: list[Notification] = []
    mail = get_connection() if any(r.channel != Notification.Channel.WEBHOOK for r in rows) else None
    held = {row.pk for row in rows}
    renewed = time.monotonic()
    try:
        if mail is not None:
            mail.open()
        for index, row in enumerate(rows):
            if time.monotonic() - renewed > _lease().total_seconds() / 2:
                outcome["sent"] += _mark_sent(sent)
                sent = []
                held = _renew(rows[index:])
                renewed = time.monotonic()
            if row.pk not in held:
                outcome["skipped"] += 1  # its lease ran out: someone else may hold it now
                continue
            try:
                send(row, connection=mail)
            except Exception as exc:
                outcome[_failed(row, exc)] += 1
                continue
            sent.append(row)
    finally:
        if mail is not None:
            mail.close()
        outcome["sent"] += _mark_sent(sent)
    return outcome


def _mark_sent(sent: list[Notification]) -> int:
    """Mark sent rows (still sending) as sent, with their timeline entries: two statements for the set."""
    if not sent:
        return 0
    with transaction.atomic():
        # One UPDATE ... RETURNING: it locks each row and, once it holds it, checks again that it is still
        # `sending`, so a row that another worker re-claimed and settled meanwhile is neither overwritten nor
        # given a second timeline entry (as the one-row path's UPDATE). A credential's body goes with it.
        marked = _update_sent([row.pk for row in sent])
        TimelineEntry.objects.bulk_create(
            [
                timeline.notification_entry(
                    incident=row.incident,
                    channel=row.channel,
                    recipient=row.recipient,
                    event=row.event,
                    version=row.incident.version,
                )
                for row in sent
                if row.pk in marked and row.incident is not None
            ]
        )
    return len(marked)


def _update_sent(ids: list[int]) -> set[int]:
    """UPDATE ... SET state = 'sent' ... RETURNING id of the rows among `ids` still sending: what
    `.filter(...).update(...)` would write (`sent_at` the database's clock, as `Now()`), and their ids."""
    table = database.ops.quote_name(Notification._meta.db_table)
    now, _ = Notification.objects.none().query.get_compiler(connection=database).compile(Now())
    secret = ", ".join(["%s"] * len(SECRET_BODY_EVENTS))
    keys = ", ".join(["%s"] * len(ids))
    # No value in the text: the model's table, Now() compiled, and placeholders.
    sql = (
        f"UPDATE {table} SET state = %s, sent_at = {now}, lease_until = NULL, last_error = '', "  # noqa: S608
        f"body = CASE WHEN event IN ({secret}) THEN '' ELSE body END WHERE id IN ({keys}) AND state = %s "
        "RETURNING id"
    )
    with database.cursor() as cursor:
        cursor.execute(sql, [State.SENT.value, *sorted(SECRET_BODY_EVENTS), *ids, State.SENDING.value])
        return {pk for (pk,) in cursor.fetchall()}


def _forget(row: Notification) -> dict[str, str]:
    return {"body": ""} if row.event in SECRET_BODY_EVENTS else {}


def _alert_dead(row: Notification, error: str) -> None:
    """Someone must hear that people were not told: an outbox row of its own to the manager and the
    operators, in the transaction that marks the row dead. An alert that dies itself raises no further
    alert (no loop when the mail server is what is down; the timeline and the error log still have it)."""
    if row.event == DEAD_ALERT_EVENT:
        logger.error("dead-notification alert %s to %s is dead too: %s", row.pk, row.recipient, error)
        return
    what = "webhook" if row.channel == Notification.Channel.WEBHOOK else "e-mail"
    told = row.recipient
    if row.incident is not None and row.incident.confidential:
        # A confidential reporter's address reaches privacy officers and superusers only, not this alert.
        from incidents.selectors import redact_reporter

        told = redact_reporter(told, row.incident)
    detail = (
        f"A {what} notification ({row.event}) to {told} could not be delivered after "
        f"{row.attempts} attempts: {error[:300]}"
    )
    cause = f"dead:{row.key}"
    if row.incident is not None:
        ids = queue(
            row.incident, event=DEAD_ALERT_EVENT, detail=detail, cause=cause,
            recipients=dead_alert_recipients(row.incident),
        )  # fmt: skip
    else:  # a reminder about a problem's follow-up: no incident, so only the operators hear of it
        ids = []
        for recipient in dead_alert_recipients(None):
            ids += queue_message(
                event=DEAD_ALERT_EVENT, cause=cause, address=recipient.address, problem=row.problem,
                subject="[IncidentDesk] A notification could not be delivered", body=detail,
            )  # fmt: skip
    deliver_after_commit(ids)


def _failed(row: Notification, exc: Exception) -> str:
    backoff = settings.NOTIFICATION_BACKOFF_SECONDS
    error = f"{type(exc).__name__}: {exc}"[:2000]
    logger.warning(
        "notification %s to %s failed (attempt %s): %s", row.pk, row.recipient, row.attempts, error
    )
    with transaction.atomic():
        if row.attempts >= len(backoff) + 1:
            Notification.objects.filter(pk=row.pk).update(
                state=State.DEAD, lease_until=None, last_error=error, **_forget(row)
            )
            if row.incident is not None:
                timeline.record_escalation_event(
                    incident=row.incident,
                    event="notification_dead",
                    recipient=row.recipient,
                    channel=row.channel,
                    attempts=row.attempts,
                    error=error,
                )
            _alert_dead(row, error)
            return "dead"
        delay = timedelta(seconds=backoff[row.attempts - 1])
        Notification.objects.filter(pk=row.pk).update(
            state=State.PENDING,
            lease_until=None,
            last_error=error,
            next_attempt_at=Now() + delay,
            enqueued_at=None,
        )
    return "retry"


@shared_task(
    name="escalation.tasks.deliver_notification",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def deliver_notification(notification_id: int) -> str:
    """The Celery task that delivers one outbox row (escalation.tasks re-exports it under its old path)."""
    return deliver(notification_id)


@shared_task(
    name="escalation.tasks.deliver_notifications",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def deliver_notifications(notification_ids: list[int]) -> dict[str, int]:
    """The Celery task that delivers a set of outbox rows (the sweep's prompts, BATCH at a time)."""
    return deliver_many(notification_ids)


# The sweep prompts deliveries in sets of this size: a burst of 10,000 breaches is 200 tasks, not 10,000.
# Each set pays once for its task, its SMTP connection and its claim and mark; a sweep batch of 500 rows
# still makes 10 sets, more than the delivery processes of a small machine.
BATCH = 50
# Breaches and escalation steps go to a queue of their own, which the delivery workers consume beside the
# default one: a backlog of warnings, digests or reporter mail in the default queue never holds them back.
URGENT_QUEUE = "urgent"


def enqueue_batches(ids: list[int], *, urgent: bool = False, stamped: bool = False) -> None:
    """Prompt delivery of many rows, BATCH per task (the sweep). A broker that is down is not an error:
    the rows left unprompted get `enqueued_at` cleared, and the next sweep republishes them. (The sweep
    writes its rows with `enqueued_at` set already, so that a second sweeper running at that moment does
    not republish rows whose prompt is a moment away: `stamped`, and they are not written again after the
    prompt, where the UPDATE would wait on the rows a worker is already delivering.)"""
    ids = list(dict.fromkeys(ids))
    sent: list[int] = []
    options = {"queue": URGENT_QUEUE} if urgent else {}
    try:
        # One producer (one broker connection) for all the prompts, and their arguments shown as they are
        # (Celery would otherwise build a safe repr of each list of ids: most of the cost of a prompt).
        with deliver_notifications.app.producer_or_acquire() as producer:
            for start in range(0, len(ids), BATCH):
                chunk = ids[start : start + BATCH]
                deliver_notifications.apply_async(
                    (chunk,), producer=producer, argsrepr=repr((chunk,)), kwargsrepr="{}", **options
                )
                sent += chunk
    except Exception:
        logger.warning(
            "could not enqueue %s notifications; the sweep will republish them", len(ids) - len(sent)
        )
        unsent = ids[len(sent) :]
        Notification.objects.filter(pk__in=unsent, state=State.PENDING).update(enqueued_at=None)
    if sent and not stamped:
        Notification.objects.filter(pk__in=sent).update(enqueued_at=timezone.now())


def enqueue(ids: list[int], *, stamped: bool = False) -> None:
    """Prompt the delivery tasks; a broker that is down is not an error (the next sweep republishes).
    `stamped`: the rows were written with `enqueued_at` set (notify.Enqueued): nothing is written once they
    are prompted, and the stamp of those left unprompted is cleared, as enqueue_batches does."""
    if not ids:
        return
    unique = list(dict.fromkeys(ids))
    sent = []
    for pk in unique:
        try:
            deliver_notification.delay(pk)
            sent.append(pk)
        except Exception:
            logger.warning("could not enqueue notification %s; the sweep will republish it", pk)
            break
    if stamped:
        if len(sent) < len(unique):
            unsent = unique[len(sent) :]
            Notification.objects.filter(pk__in=unsent, state=State.PENDING).update(enqueued_at=None)
    elif sent:
        Notification.objects.filter(pk__in=sent).update(enqueued_at=timezone.now())


def deliver_after_commit(ids: list[int]) -> None:
    """Prompt delivery once the transaction commits; a dead broker is tolerated (the sweep republishes)."""
    if ids:
        stamped = isinstance(ids, Enqueued)
        transaction.on_commit(lambda: enqueue(ids, stamped=stamped))
