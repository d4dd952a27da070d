"""Who is told, and what: the notification outbox, written in the same transaction as the decision."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone

from incidents import timeline
from incidents.models import Incident, Team
from incidents.selectors import desk_user

from .headers import subject_line
from .models import Notification, Schedule, WebhookEndpoint
from .oncall import on_call_user

User = get_user_model()


@dataclass(frozen=True)
class Recipient:
    channel: str
    address: str
    user_id: int | None = None
    webhook_id: int | None = None
    # The reference and a link only (a person who may not see the incident's restricted domain).
    content_free: bool = False


# Within one sweep, people and team memberships are read once, not once per incident: a burst of 1,000
# breaches for one team costs a handful of queries for "who", not thousands. Outside `memo()` nothing is kept.
_memo: ContextVar[dict[Any, Any] | None] = ContextVar("notify_memo", default=None)


@contextmanager
def memo() -> Iterator[None]:
    token = _memo.set({})
    try:
        yield
    finally:
        _memo.reset(token)


def _users(ids: list[int]) -> list[Any]:
    """Active users with an e-mail address, in the order of `ids`."""
    cache = _memo.get()
    if cache is None:
        cache = {}  # outside a sweep: read, and keep nothing
    missing = [i for i in dict.fromkeys(ids) if ("user", i) not in cache]
    if missing:
        found = {u.pk: u for u in User.objects.filter(pk__in=missing, is_active=True).exclude(email="")}
        cache.update({("user", i): found.get(i) for i in missing})
    return [cache["user", i] for i in dict.fromkeys(ids) if cache["user", i] is not None]


def _member_ids(team: Team) -> list[int]:
    cache = _memo.get()
    if cache is None:
        cache = {}
    if ("team", team.pk) not in cache:
        cache["team", team.pk] = list(team.memberships.order_by("pk").values_list("user_id", flat=True))
    return list(cache["team", team.pk])


def _entitled(incident: Incident, users: list[Any]) -> list[Any]:
    """Only people who may see the incident get its content (restricted domains, SPEC section 1)."""
    return [u for u in users if desk_user(u).handles(incident)]


def team_recipients(incident: Incident, team: Team | None) -> list[Recipient]:
    if team is None:
        return []
    members = _entitled(incident, _users(_member_ids(team)))
    found = [Recipient("email", u.email, user_id=u.pk) for u in members]
    if team.email:
        found.append(Recipient("email", team.email))
    return found


def manager_recipients(incident: Incident, team: Team | None) -> list[Recipient]:
    if team is None or team.manager_id is None:
        return []
    return [Recipient("email", u.email, user_id=u.pk) for u in _entitled(incident, _users([team.manager_id]))]


def manager_alert_recipients(incident: Incident, team: Team | None) -> list[Recipient]:
    """The team's manager for an operational alert (nobody qualified on call): with content when they may
    see it as a responder, else content-free, the reference and a link, since the gap is theirs to fill."""
    if team is None or team.manager_id is None:
        return []
    return [
        Recipient("email", u.email, user_id=u.pk, content_free=not desk_user(u).as_responder(incident))
        for u in _users([team.manager_id])
    ]


def step_recipients(incident: Incident, step: dict[str, Any], *, now: datetime) -> list[Recipient]:
    """The recipients of one escalation step, in the order of the policy's actions."""
    found: list[Recipient] = []
    if step.get("notify_team"):
        found += team_recipients(incident, Team.objects.filter(pk=step["notify_team"]).first())
    if step.get("notify_user"):
        found += [
            Recipient("email", u.email, user_id=u.pk)
            for u in _entitled(incident, _users([step["notify_user"]]))
        ]
    if step.get("notify_schedule"):
        schedule = Schedule.objects.filter(pk=step["notify_schedule"]).first()
        person = on_call_user(schedule, at=now, incident=incident) if schedule else None
        if person is not None:
            found += [Recipient("email", u.email, user_id=u.pk) for u in _entitled(incident, [person])]
    if step.get("notify_email"):
        found.append(Recipient("email", step["notify_email"]))
    if step.get("notify_webhook"):
        hook = WebhookEndpoint.objects.filter(pk=step["notify_webhook"], active=True).first()
        if hook is not None:
            found.append(Recipient("webhook", hook.url, webhook_id=hook.pk))
    if step.get("notify_manager"):
        found += manager_recipients(incident, incident.team)
    return found


def dead_alert_recipients(incident: Incident | None) -> list[Recipient]:
    """Who hears that a notification of this incident is dead: the team's manager (if entitled to see
    it), the desk's administrators (ADMINS) and NOTIFICATION_DEAD_ALERT_EMAILS, which are addresses of the
    desk's own operators, never a webhook."""
    found = manager_recipients(incident, incident.team) if incident is not None else []
    addresses = [admin[1] for admin in settings.ADMINS] + list(settings.NOTIFICATION_DEAD_ALERT_EMAILS)
    found += [Recipient("email", address) for address in addresses if address]
    return found


def _key(*parts: object) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()


class Outbox(NamedTuple):
    """One outbox row to write: what its recipient gets. `payload` is its JSON text (written as it is)."""

    key: str
    incident_id: int | None
    event: str
    channel: str
    recipient: str
    user_id: int | None
    webhook_id: int | None
    subject: str
    body: str
    payload: str


# A reference the URL needs no quoting for (INC-000042): its link is the desk's link template filled in.
_PLAIN_REFERENCE = re.compile(r"[A-Za-z0-9_.~-]+\Z")
_LINK_SLOT = "INC-000000"


def incident_link(reference: str) -> str:
    """The desk's page of the incident. Within a sweep the URL is reversed once, not once per row."""
    cache = _memo.get()
    if cache is None or not _PLAIN_REFERENCE.match(reference):
        return f"{settings.SITE_URL}{reverse('web:incident', args=[reference])}"
    key = ("link", settings.SITE_URL, get_urlconf(), get_script_prefix())
    if key not in cache:
        cache[key] = f"{settings.SITE_URL}{reverse('web:incident', args=[_LINK_SLOT])}".split(_LINK_SLOT)
    head, tail = cache[key]
    return f"{head}{reference}{tail}"


def _message(incident: Incident, event: str, detail: str, title: str, link: str) -> tuple[str, str, str]:
    """The subject, body and payload (JSON text, without its `id`) of one decision about one incident,
    with or without its title: rendered once and shared by every recipient who gets that variant."""
    subject = f"[{incident.reference}] {detail}" + (f": {title}" if title else "")
    body = (
        f"{detail}\n\nIncident {incident.reference}"
        + (f" - {title}" if title else "")
        + f"\nPriority: P{incident.priority}\n{link}\n"
    )
    payload = {
        "event": event,
        "detail": detail,
        "incident": {
            "reference": incident.reference,
            "state": incident.state,
            "priority": incident.priority,
            "domain": incident.domain.slug if incident.domain else None,
            "team": incident.team.slug if incident.team else None,
            "url": link,
            **({"title": title} if title else {}),
        },
    }
    # The recipient's key goes last: the payload is this text up to its closing brace, then `"id": key}`.
    return subject_line(subject), body, json.dumps(payload)[:-1] + ', "id": '


def rows_for(
    incident: Incident, *, event: str, detail: str, cause: str, recipients: list[Recipient]
) -> list[Outbox]:
    """The outbox rows (unwritten) for one decision, one per distinct recipient; `cause` (e.g. a timer key)
    makes each key stable, so a decision taken twice creates each notification once.

    Every recipient here is a responder, a team or an operator address, or a webhook: they get the desk's
    page of the incident (a reporter is told through incidents.notifications, with their tracking link).
    Private content of a restricted domain goes only to people entitled to see it (resolved by whoever
    chose the recipients); an external address or a webhook gets the reference and a link, never the title
    or the text. The text is rendered once per variant (with the title, without), not once per recipient.
    """
    rows = []
    seen: set[tuple[str, str]] = set()
    restricted = incident.domain is not None and incident.domain.restricted
    link = ""
    variants: dict[str, tuple[str, str, str]] = {}
    for recipient in recipients:
        if (recipient.channel, recipient.address) in seen:
            continue
        seen.add((recipient.channel, recipient.address))
        external = recipient.user_id is None or recipient.content_free
        title = "" if (restricted and external) or recipient.content_free else incident.title
        if title not in variants:
            link = link or incident_link(incident.reference)
            variants[title] = _message(incident, event, detail, title, link)
        subject, body, payload = variants[title]
        key = _key(cause, recipient.channel, recipient.address)
        rows.append(
            Outbox(
                key, incident.pk, event, recipient.channel, recipient.address, recipient.user_id,
                recipient.webhook_id, subject, body, f"{payload}{json.dumps(key)}}}",
            )
        )  # fmt: skip
    return rows


def as_outbox(row: Notification) -> Outbox:
    """An unsaved `Notification` (a webhook's row, built with its model) as a row for `insert`."""
    return Outbox(
        row.key, row.incident_id, row.event, row.channel, row.recipient, row.user_id, row.webhook_id,
        row.subject, row.body, json.dumps(row.payload),
    )  # fmt: skip


# One statement for a set of rows (`_insert_unnest`): one array per column, unnested into rows.
_INSERT_UNNEST = """
    WITH new (key, incident_id, event, channel, recipient, user_id, webhook_id, subject, body, payload) AS (
        SELECT * FROM unnest(
            %s::varchar[], %s::bigint[], %s::varchar[], %s::varchar[], %s::varchar[], %s::bigint[],
            %s::bigint[], %s::varchar[], %s::text[], %s::text[]
        )
    ),
    written AS (
        INSERT INTO escalation_notification (
            key, incident_id, event, channel, recipient, user_id, webhook_id, subject, body, payload,
            problem_id, state, attempts, next_attempt_at, lease_until, enqueued_at, sent_at, last_error,
            created_at
        )
        SELECT key, incident_id, event, channel, recipient, user_id, webhook_id, subject, body, payload::jsonb,
               NULL, %s, 0, %s, NULL, %s, NULL, '', %s
        FROM new
        ON CONFLICT (key) DO NOTHING
        RETURNING key, id
    )
    SELECT key, id FROM written
    UNION ALL
    SELECT key, id FROM escalation_notification WHERE key IN (SELECT key FROM new) AND state = %s
"""


def insert(rows: Sequence[Outbox | Notification], *, enqueued_at: datetime | None = None) -> list[int]:
    """Write outbox rows (a key already written is left alone) and return the ids of those of them still to
    deliver, in the order of `rows`. `enqueued_at`: the caller prompts them right after its commit.

    On PostgreSQL this is one statement whatever the number of rows: the rows go in as one array per
    column (UNNEST), the new rows' ids come back from the INSERT and those of keys written before (a
    decision taken twice) from the same statement's snapshot. Elsewhere, `bulk_create` and a SELECT.
    """
    if not rows:
        return []
    found = [row if isinstance(row, Outbox) else as_outbox(row) for row in rows]
    now = timezone.now()
    if connection.vendor == "postgresql":
        ids = dict(_insert_unnest(found, now=now, enqueued_at=enqueued_at))
    else:
        Notification.objects.bulk_create(
            [
                Notification(
                    key=row.key, incident_id=row.incident_id, event=row.event, channel=row.channel,
                    recipient=row.recipient, user_id=row.user_id, webhook_id=row.webhook_id,
                    subject=row.subject, body=row.body, payload=json.loads(row.payload),
                    enqueued_at=enqueued_at, next_attempt_at=now, created_at=now,
                )
                for row in found
            ],
            ignore_conflicts=True,
        )  # fmt: skip
        ids = dict(
            Notification.objects.filter(
                key__in=[row.key for row in found], state=Notification.State.PENDING
            ).values_list("key", "pk")
        )
    return [ids[key] for key in dict.fromkeys(row.key for row in found) if key in ids]


def _insert_unnest(
    rows: list[Outbox], *, now: datetime, enqueued_at: datetime | None
) -> list[tuple[str, int]]:
    """The rows' (key, id) written now, and of those among them written before and still pending (the
    statement's snapshot sees only those: the rows it inserts are not read twice)."""
    columns = [list(column) for column in zip(*rows, strict=True)]
    pending = Notification.State.PENDING.value
    with connection.cursor() as cursor:
        cursor.execute(_INSERT_UNNEST, [*columns, pending, now, enqueued_at, now, pending])
        return [(key, pk) for key, pk in cursor.fetchall()]


def queue(
    incident: Incident,
    *,
    event: str,
    detail: str,
    cause: str,
    recipients: list[Recipient],
    enqueued_at: datetime | None = None,
) -> list[int]:
    """Create one outbox row per recipient; `cause` (e.g. a timer key) makes the key stable, so a
    decision taken twice creates each notification once. Returns the ids of rows to deliver.
    `enqueued_at`: set by a caller that prompts them itself right after its commit (the sweep)."""
    rows = rows_for(incident, event=event, detail=detail, cause=cause, recipients=recipients)
    if not recipients:
        timeline.record_escalation_event(
            incident=incident, event="nobody_to_notify", detail=detail, cause=cause
        )
    return insert(rows, enqueued_at=enqueued_at)


def queue_team(incident: Incident, *, team: Team | None, event: str, detail: str, cause: str) -> list[int]:
    """`queue` to the team's entitled members and its address (nobody: a timeline note says so)."""
    return queue(
        incident, event=event, detail=detail, cause=cause, recipients=team_recipients(incident, team)
    )


class Enqueued(list[int]):
    """Ids of outbox rows written with `enqueued_at` set, as the sweep writes its rows: the prompt after
    commit (delivery.deliver_after_commit) writes nothing more when it goes out, and clears the stamp of those
    it could not send (a broker that is down), so the sweep republishes them at once. A row whose prompt is
    lost otherwise (the process died after its commit) is republished once its stamp is REPUBLISH_AFTER old.
    A list made from it (`ids += ...`) is a plain list again, and is stamped after its prompt as before."""


def queue_message(
    *,
    event: str,
    cause: str,
    address: str,
    subject: str,
    body: str,
    incident: Incident | None = None,
    problem: Any = None,
    user_id: int | None = None,
) -> list[int]:
    """One e-mail with its own subject and body (to a reporter, or a follow-up owner) in the outbox.

    Call it inside the transaction of the change it reports, and prompt the ids it returns with
    `deliver_after_commit` (every caller does). `cause` names that change stably (e.g.
    ``reporter:42:resolved:7``): queueing the same cause twice creates one row. Returns the ids of rows
    still to deliver (empty when there is no address or the row already went out); on the one-statement path
    they are `Enqueued`: the row is written with its prompt's stamp (one UPDATE fewer after the commit).
    """
    if not address:
        return []
    key = _key(cause, "email", address)
    if problem is None:  # (an Outbox row has no problem): one statement on PostgreSQL, as every `insert`
        payload = json.dumps({"id": key, "event": event})
        row = Outbox(
            key, incident.pk if incident is not None else None, event, Notification.Channel.EMAIL, address,
            user_id, None, subject_line(subject), body, payload,
        )  # fmt: skip
        return Enqueued(insert([row], enqueued_at=timezone.now()))
    Notification.objects.bulk_create(
        [
            Notification(
                key=key,
                incident=incident,
                problem=problem,
                event=event,
                channel=Notification.Channel.EMAIL,
                recipient=address,
                user_id=user_id,
                subject=subject_line(subject),
                body=body,
                payload={"id": key, "event": event},
            )
        ],
        ignore_conflicts=True,
    )
    return list(
        Notification.objects.filter(key=key, state=Notification.State.PENDING).values_list("pk", flat=True)
    )
