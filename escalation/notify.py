"""Who is told, and what: the notification outbox, written in the same transaction as the decision."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse

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


def _content(
    incident: Incident, event: str, detail: str, recipient: Recipient
) -> tuple[str, str, dict[str, Any]]:
    # Every recipient here is a responder, a team or an operator address, or a webhook: the desk's page of
    # the incident (a reporter is told through incidents.notifications, with their tracking link).
    link = f"{settings.SITE_URL}{reverse('web:incident', args=[incident.reference])}"
    restricted = incident.domain is not None and incident.domain.restricted
    # Private content of a restricted domain goes only to people entitled to see it (resolved above);
    # an external address or a webhook gets the reference and a link, never the title or the text.
    external = recipient.user_id is None or recipient.content_free
    title = "" if (restricted and external) or recipient.content_free else incident.title
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
    return subject, body, payload


def rows_for(
    incident: Incident, *, event: str, detail: str, cause: str, recipients: list[Recipient]
) -> list[Notification]:
    """The outbox rows (unsaved) for one decision, one per distinct recipient; `cause` (e.g. a timer key)
    makes each key stable, so a decision taken twice creates each notification once."""
    rows = []
    seen: set[tuple[str, str]] = set()
    for recipient in recipients:
        if (recipient.channel, recipient.address) in seen:
            continue
        seen.add((recipient.channel, recipient.address))
        subject, body, payload = _content(incident, event, detail, recipient)
        key = _key(cause, recipient.channel, recipient.address)
        payload["id"] = key
        rows.append(
            Notification(
                key=key,
                incident=incident,
                event=event,
                channel=recipient.channel,
                recipient=recipient.address,
                user_id=recipient.user_id,
                webhook_id=recipient.webhook_id,
                subject=subject_line(subject),
                body=body,
                payload=payload,
            )
        )
    return rows


def insert(rows: list[Notification]) -> list[int]:
    """Write outbox rows (a key already written is left alone) in one statement; returns the ids of those
    of them still to deliver, in the order of `rows` (one more statement)."""
    if not rows:
        return []
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    keys = [row.key for row in rows]
    found = dict(
        Notification.objects.filter(key__in=keys, state=Notification.State.PENDING).values_list("key", "pk")
    )
    return [found[key] for key in dict.fromkeys(keys) if key in found]


def queue(
    incident: Incident, *, event: str, detail: str, cause: str, recipients: list[Recipient]
) -> list[int]:
    """Create one outbox row per recipient; `cause` (e.g. a timer key) makes the key stable, so a
    decision taken twice creates each notification once. Returns the ids of rows to deliver."""
    rows = rows_for(incident, event=event, detail=detail, cause=cause, recipients=recipients)
    if not recipients:
        timeline.record_escalation_event(
            incident=incident, event="nobody_to_notify", detail=detail, cause=cause
        )
    return insert(rows)


def queue_team(incident: Incident, *, team: Team | None, event: str, detail: str, cause: str) -> list[int]:
    """`queue` to the team's entitled members and its address (nobody: a timeline note says so)."""
    return queue(
        incident, event=event, detail=detail, cause=cause, recipients=team_recipients(incident, team)
    )


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

    Call it inside the transaction of the change it reports. `cause` names that change stably (e.g.
    ``reporter:42:resolved:7``): queueing the same cause twice creates one row. Returns the ids of rows
    still to deliver (empty when there is no address or the row already went out).
    """
    if not address:
        return []
    key = _key(cause, "email", address)
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
