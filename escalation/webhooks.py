"""Outgoing webhooks on incident events: which endpoints hear of what, and what they are sent.

An endpoint (`WebhookEndpoint`) subscribes to some of `EVENTS` and has an owner, a user or a team. It is
sent an event only about incidents its owner sees as a responder (`DeskUser.as_responder` for a user: not
one they only reported; for a team, the same domain rule its members get from it): a restricted-domain incident outside the owner's reach
produces no delivery at all. Rows are written to the outbox (`Notification`, channel webhook) in the
transaction that decided the event, keyed by (endpoint, cause), and delivered, signed and retried by
`escalation.delivery` like every other webhook.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.urls import reverse

from incidents import hooks
from incidents.hooks import Event
from incidents.models import Comment, Incident
from incidents.selectors import desk_user
from incidents.transitions import TRANSITIONS, Action

from . import configcache, notify
from .delivery import deliver_after_commit
from .models import (
    WEBHOOK_CREATED,
    WEBHOOK_EVENTS,
    WEBHOOK_PUBLIC_COMMENT,
    WEBHOOK_SLA_BREACHED,
    WEBHOOK_SLA_WARNING,
    WEBHOOK_STATE_CHANGED,
    Notification,
    SlaClock,
    WebhookEndpoint,
)

CREATED = WEBHOOK_CREATED
STATE_CHANGED = WEBHOOK_STATE_CHANGED
PUBLIC_COMMENT = WEBHOOK_PUBLIC_COMMENT
SLA_WARNING = WEBHOOK_SLA_WARNING
SLA_BREACHED = WEBHOOK_SLA_BREACHED
EVENTS = WEBHOOK_EVENTS

# The lifecycle's announcements that change the state, with the action that did it.
STATE_ACTIONS: dict[Event, Action] = {
    Event.CLASSIFIED: Action.CLASSIFY,
    Event.ACKNOWLEDGED: Action.ACKNOWLEDGE,
    Event.ESCALATED: Action.ESCALATE,
    Event.HELD: Action.HOLD,
    Event.RESUMED: Action.RESUME,
    Event.RESOLVED: Action.RESOLVE,
    Event.REOPENED: Action.REOPEN,
    Event.CLOSED: Action.CLOSE,
    Event.CANCELLED: Action.CANCEL,
}


@dataclass(frozen=True)
class Subscription:
    hook: WebhookEndpoint
    team_domain_ids: frozenset[int] = frozenset()  # the domains an owner team handles


def owner_may_see(subscription: Subscription, incident: Incident) -> bool:
    """The visibility promise of a subscription: the owner user's own rule, or a team's (it sees what it
    handles, and every incident outside a restricted domain). No owner, or an inactive one: nothing."""
    hook = subscription.hook
    if hook.owner_user is not None:
        # The payload is a responder's view (team, assignee, priority): an incident the owner only reported
        # (outside their teams' domains) they see as its reporter, and it is not sent.
        return hook.owner_user.is_active and desk_user(hook.owner_user).as_responder(incident)
    if hook.owner_team is not None:
        domain = incident.domain
        return domain is None or not domain.restricted or domain.pk in subscription.team_domain_ids
    return False


def subscribers(event: str) -> list[Subscription]:
    """Active endpoints subscribed to `event`, with their owners (and a team's domains) loaded. Within a
    sweep (`notify.memo()`) they are read once, not once per breach."""
    if configcache.active() and event not in configcache.cached(("webhook_events",), _subscribed_events):
        return []  # no active endpoint hears of it (known from the configuration as stamped)
    cache = notify._memo.get()
    if cache is None:
        return _subscribers(event)
    if ("webhooks", None) not in cache:
        # Every active endpoint, read once: the events of one decision (created, then state_changed) or of
        # a sweep's batch each take theirs from it.
        cache["webhooks", None] = _subscribers(None)
    return [found for found in cache["webhooks", None] if event in (found.hook.events or [])]


def _subscribed_events() -> frozenset[str]:
    """The events some active endpoint with an owner subscribes to."""
    endpoints = WebhookEndpoint.objects.filter(active=True).filter(
        Q(owner_user__isnull=False) | Q(owner_team__isnull=False)
    )
    return frozenset(event for events in endpoints.values_list("events", flat=True) for event in events or [])


def _subscribers(event: str | None) -> list[Subscription]:
    hooks_ = (
        WebhookEndpoint.objects.filter(active=True)
        .filter(Q(owner_user__isnull=False) | Q(owner_team__isnull=False))
        .select_related("owner_user", "owner_team")
        .order_by("pk")
    )
    found = []
    for hook in hooks_:
        if event is not None and event not in (hook.events or []):
            continue
        domains: frozenset[int] = frozenset()
        if hook.owner_team is not None:
            domains = frozenset(hook.owner_team.domains.values_list("pk", flat=True))
        found.append(Subscription(hook, domains))
    return found


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def incident_payload(incident: Incident) -> dict[str, Any]:
    return {
        "reference": incident.reference,
        "url": f"{settings.SITE_URL}{reverse('web:incident', kwargs={'reference': incident.reference})}",
        "title": incident.title,
        "state": incident.state,
        "priority": incident.priority,
        "domain": incident.domain.slug if incident.domain else None,
        "category": incident.category.path if incident.category else None,
        "team": incident.team.slug if incident.team else None,
        "assignee": incident.assignee.get_username() if incident.assignee else None,
        "version": incident.version,
    }


def queue_event(
    incident: Incident, *, event: str, cause: str, now: datetime, data: dict[str, Any] | None = None
) -> list[int]:
    """Write one outbox row per subscribed endpoint whose owner may see the incident. Call it inside the
    transaction that decided the event; `cause` names the decision stably, so queueing it twice writes
    each row once. Returns the ids of rows still to deliver."""
    return notify.insert(event_rows(incident, event=event, cause=cause, now=now, data=data))


def event_rows(
    incident: Incident, *, event: str, cause: str, now: datetime, data: dict[str, Any] | None = None
) -> list[Notification]:
    """The outbox rows (unsaved) of `queue_event`, for a caller that writes many decisions' rows at once."""
    rows = []
    for subscription in subscribers(event):
        if not owner_may_see(subscription, incident):
            continue
        hook = subscription.hook
        key = hashlib.sha256(f"subscription:{hook.pk}:{cause}".encode()).hexdigest()
        payload = {
            "id": key,
            "event": event,
            "occurred_at": _iso(now),
            "incident": incident_payload(incident),
            **(data or {}),
        }
        rows.append(
            Notification(
                key=key, incident=incident, event=event, channel=Notification.Channel.WEBHOOK,
                recipient=hook.url[:254], webhook=hook, subject=f"[{incident.reference}] {event}"[:255],
                payload=payload,
            )
        )  # fmt: skip
    return rows


# --- receivers of the lifecycle's announcements (incidents.hooks) -----------------------------------------


def on_created(incident: Incident, *, now: datetime) -> None:
    deliver_after_commit(queue_event(incident, event=CREATED, cause=f"created:{incident.pk}", now=now))


def on_public_comment(incident: Incident, *, now: datetime, comment: Comment) -> None:
    author = comment.author.get_username() if comment.author is not None else None
    if incident.confidential and comment.author_id is not None and comment.author_id == incident.reporter_id:
        # A webhook's receiver is not the privacy officer: a confidential reporter stays unnamed (SPEC 1).
        author = None
    data = {
        "comment": {
            "id": comment.pk, "author": author, "body": comment.body, "created_at": _iso(comment.created_at),
        }
    }  # fmt: skip
    ids = queue_event(incident, event=PUBLIC_COMMENT, cause=f"comment:{comment.pk}", now=now, data=data)
    deliver_after_commit(ids)


def _state_receiver(event: Event) -> hooks.Receiver:
    action = STATE_ACTIONS[event]

    def receiver(incident: Incident, *, now: datetime, **kwargs: Any) -> None:
        if event == Event.CLASSIFIED and not kwargs.get("first"):
            return  # a re-classification: the state stays classified
        if incident.state in TRANSITIONS[action].stays:
            return  # acknowledging an escalated incident leaves it escalated
        ids = queue_event(
            incident, event=STATE_CHANGED, cause=f"state:{incident.pk}:{incident.version}:{action}", now=now,
            data={"action": str(action), "state": incident.state},
        )  # fmt: skip
        deliver_after_commit(ids)

    receiver.__name__ = f"on_{event}_webhooks"
    return receiver


_STATE_RECEIVERS = {event: _state_receiver(event) for event in STATE_ACTIONS}


def sla_rows(
    incident: Incident, *, event: str, clock: SlaClock, cause: str, now: datetime
) -> list[Notification]:
    """Built by the sweep in the transaction that decides an SLA warning or breach (`event` is the
    engine's `sla_warning` or `sla_breach`); the sweep writes them and enqueues the ids after it commits."""
    name = SLA_WARNING if event == "sla_warning" else SLA_BREACHED
    data = {
        "sla": {
            "kind": clock.kind, "name": clock.name, "due_at": _iso(clock.due_at),
            "target_seconds": clock.target_seconds,
        }
    }  # fmt: skip
    return event_rows(incident, event=name, cause=f"webhook:{cause}", now=now, data=data)


def connect() -> None:
    hooks.connect(Event.CREATED, on_created)
    hooks.connect(Event.PUBLIC_COMMENT, on_public_comment)
    for event, receiver in _STATE_RECEIVERS.items():
        hooks.connect(event, receiver)
