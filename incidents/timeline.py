"""One small function per kind of timeline entry. The timeline is append-only."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, NamedTuple

from django.contrib.auth.models import AnonymousUser, User

from .inserts import bulk_insert
from .models import Attachment, Comment, Incident, TimelineEntry

# Who does something: a signed-in user, an anonymous visitor (a reporter through the private link), or None
# for the desk itself (a sweep, a policy step, an import). The project uses Django's User model.
Actor = User | AnonymousUser | None

# Keys of an entry's data that a reporter may see, by action. Everything else is internal.
PUBLIC_DATA_KEYS: dict[str, set[str]] = {
    "": {"from", "to"},
    "resolve": {"from", "to", "summary"},
    "close": {"from", "to", "cause", "measures", "auto"},
    "reopen": {"from", "to", "reason"},
    "hold": {"from", "to", "reason"},
    "cancel": {"from", "to", "reason"},
}


def _actor(actor: Actor) -> Any:
    return actor if actor is not None and actor.is_authenticated else None


# Entries recorded inside `batch()`, written in one INSERT when it ends.
_batch: ContextVar[list[TimelineEntry] | None] = ContextVar("timeline_batch", default=None)


@contextmanager
def batch() -> Iterator[None]:
    """Collect the entries recorded inside and write them in one INSERT at the end, in the order recorded
    (their ids ascend in that order, as if written one by one). Nothing is written if the block raises.
    Inside an enclosing batch, the entries join it. For a path that never reads back what it recorded
    (opening a classified incident); the entries' `pk` is set only once the batch is written."""
    if _batch.get() is not None:
        yield
        return
    entries: list[TimelineEntry] = []
    token = _batch.set(entries)
    try:
        yield
    finally:
        _batch.reset(token)
    if entries:
        bulk_insert(entries)


def _save(entry: TimelineEntry) -> TimelineEntry:
    pending = _batch.get()
    if pending is None:
        entry.save()
    else:
        pending.append(entry)
    return entry


def _entry(
    incident: Incident, *, kind: str, actor: Actor, at: datetime | None = None, **fields: Any
) -> TimelineEntry:
    extra: dict[str, Any] = {"at": at} if at is not None else {}
    return _save(TimelineEntry(incident=incident, kind=kind, actor=_actor(actor), **extra, **fields))


def record_created(*, incident: Incident, actor: Actor, at: datetime | None = None) -> TimelineEntry:
    return _entry(
        incident,
        kind=TimelineEntry.Kind.CREATED,
        actor=actor,
        at=at,
        public=True,
        data={"to": incident.state, "channel": incident.channel},
    )


def record_state_changed(
    *,
    incident: Incident,
    actor: Actor,
    action: str,
    old: str,
    new: str,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> TimelineEntry:
    return _entry(
        incident,
        kind=TimelineEntry.Kind.STATE_CHANGED,
        actor=actor,
        at=at,
        action=action,
        public=True,
        data={"from": old, "to": new, **(data or {})},
    )


def record_fields_changed(
    *, incident: Incident, actor: Actor, changes: dict[str, list[Any]], at: datetime | None = None
) -> TimelineEntry:
    return _entry(
        incident, kind=TimelineEntry.Kind.FIELDS_CHANGED, actor=actor, at=at, data={"changes": changes}
    )


def record_assigned(
    *, incident: Incident, actor: Actor, data: dict[str, Any], at: datetime | None = None
) -> TimelineEntry:
    """Handed to a colleague or transferred to another team, without a change of state (internal)."""
    return _entry(incident, kind=TimelineEntry.Kind.ASSIGNED, actor=actor, at=at, action="assign", data=data)


def record_priority_overridden(
    *, incident: Incident, actor: Actor, matrix: int, priority: int, reason: str
) -> TimelineEntry:
    return _entry(
        incident,
        kind=TimelineEntry.Kind.PRIORITY_OVERRIDDEN,
        actor=actor,
        data={"matrix": matrix, "priority": priority, "reason": reason},
    )


def record_comment(*, incident: Incident, comment: Comment) -> TimelineEntry:
    return _entry(
        incident,
        kind=TimelineEntry.Kind.COMMENT,
        actor=comment.author,
        at=comment.created_at,
        public=comment.public,
        comment=comment,
        data={"public": comment.public},
    )


def record_attachment(*, incident: Incident, attachment: Attachment) -> TimelineEntry:
    return _entry(
        incident,
        kind=TimelineEntry.Kind.ATTACHMENT,
        actor=attachment.uploaded_by,
        at=attachment.created_at,
        public=attachment.public,
        attachment=attachment,
        data={"filename": attachment.filename, "size": attachment.size},
    )


def record_notification(
    *, incident: Incident, channel: str, recipient: str, event: str, version: int
) -> TimelineEntry:
    entry = notification_entry(
        incident=incident, channel=channel, recipient=recipient, event=event, version=version
    )
    entry.save()
    return entry


def notification_entry(
    *, incident: Incident, channel: str, recipient: str, event: str, version: int
) -> TimelineEntry:
    """The entry of `record_notification`, unsaved (a delivery of many rows writes theirs in one INSERT)."""
    return TimelineEntry(
        incident=incident,
        kind=TimelineEntry.Kind.NOTIFICATION,
        data={"channel": channel, "recipient": recipient, "event": event, "version": version},
    )


def record_sla_event(*, incident: Incident, clock: str, event: str, **data: Any) -> TimelineEntry:
    """A clock explains itself: started, paused (why), resumed, warning, breached, met, re-targeted."""
    return _save(sla_event_entry(incident=incident, clock=clock, event=event, **data))


def sla_event_entry(*, incident: Incident, clock: str, event: str, **data: Any) -> TimelineEntry:
    """The entry of `record_sla_event`, unsaved (the sweep writes a batch's entries in one INSERT)."""
    return TimelineEntry(
        incident=incident, kind=TimelineEntry.Kind.SLA, actor=None, action=event,
        data={"clock": clock, "event": event, **data},
    )  # fmt: skip


def record_escalation_event(*, incident: Incident, event: str, **data: Any) -> TimelineEntry:
    """An escalation chain started, stopped, or ran a step (who was told, what was reassigned)."""
    return _save(escalation_event_entry(incident=incident, event=event, **data))


def escalation_event_entry(*, incident: Incident, event: str, **data: Any) -> TimelineEntry:
    """The entry of `record_escalation_event`, unsaved (the sweep writes a batch's entries in one INSERT)."""
    return TimelineEntry(
        incident=incident, kind=TimelineEntry.Kind.ESCALATION, actor=None, action=event,
        data={"event": event, **data},
    )  # fmt: skip


def record_reporter_confirmed(*, incident: Incident, actor: Actor, at: datetime) -> TimelineEntry:
    """The reporter said the fix worked (public: the reporter sees their own confirmation)."""
    return _entry(
        incident,
        kind=TimelineEntry.Kind.REPORTER_CONFIRMED,
        actor=actor,
        at=at,
        public=True,
        data={"resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None},
    )


def record_rating(*, incident: Incident, score: int, comment: str) -> TimelineEntry:
    """The reporter rated the service; the comment stays internal (the reporter sees the score)."""
    return _entry(
        incident,
        kind=TimelineEntry.Kind.RATING,
        actor=None,
        public=True,
        data={"score": score, "comment": comment},
    )


def record_problem_event(*, incident: Incident, actor: Actor, event: str, **data: Any) -> TimelineEntry:
    """Linked to or unlinked from a problem record, or part of a recurrence that proposed one."""
    return _entry(
        incident,
        kind=TimelineEntry.Kind.PROBLEM,
        actor=actor,
        action=event[:20],
        data={"event": event, **data},
    )


def record_major_incident(
    *,
    incident: Incident,
    event: str,
    actor: Actor = None,
    public: bool = False,
    comment: Comment | None = None,
    **data: Any,
) -> TimelineEntry:
    """Linked to or unlinked from a parent, an update forwarded from it, or a cascade followed or skipped."""
    return _entry(
        incident,
        kind=TimelineEntry.Kind.MAJOR_INCIDENT,
        actor=actor,
        action=event[:20],
        public=public,
        comment=comment,
        data={"event": event, **data},
    )


def record_alert(
    *, incident: Incident, event: str, integration: str, dedup_key: str, payload: dict[str, Any], count: int
) -> TimelineEntry:
    """A monitoring event about the incident (trigger, acknowledge, resolve): internal, never notified."""
    data = alert_data(event=event, integration=integration, dedup_key=dedup_key, payload=payload, count=count)
    return _entry(incident, kind=TimelineEntry.Kind.ALERT, actor=None, action=event, data=data)


def alert_data(
    *, event: str, integration: str, dedup_key: str, payload: dict[str, Any], count: int
) -> dict[str, Any]:
    """What an alert entry holds (record_alert; intake.events writes a dedup hit's entry in its counting
    statement, with this data)."""
    return {
        "event": event,
        "integration": integration,
        "dedup_key": dedup_key,
        "count": count,
        "payload": payload,
    }


# Imported history (import_incidents): rows, not model instances, written by the importer in one INSERT per
# batch (a TimelineEntry instance each cost more CPU than the rest of an event's import). Each is marked imported.


class ImportedEntry(NamedTuple):
    """An entry of an imported incident, before the incident has an id; the other columns take their
    defaults (no actor, comment or attachment)."""

    kind: str
    at: datetime
    action: str
    public: bool
    data: dict[str, Any]


def imported_created(*, at: datetime, state: str, source: dict[str, Any]) -> ImportedEntry:
    """The first entry of an imported incident: where it came from and the state it started in."""
    data = {"to": state, "channel": Incident.Channel.IMPORT, "imported": True}
    return ImportedEntry(TimelineEntry.Kind.CREATED, at, "", True, {**data, **source})


def imported_state_changed(
    *, at: datetime, action: str, old: str, new: str, changes: dict[str, Any]
) -> ImportedEntry:
    data = {"from": old, "to": new, "imported": True, **({"changes": changes} if changes else {})}
    return ImportedEntry(TimelineEntry.Kind.STATE_CHANGED, at, action, True, data)


def imported_update(*, at: datetime, state: str, changes: dict[str, Any]) -> ImportedEntry:
    """A row of the history in the state the incident was already in: an update, never a transition."""
    data = {"changes": changes, "imported": True, "update": True, "state": state}
    return ImportedEntry(TimelineEntry.Kind.FIELDS_CHANGED, at, "", False, data)


def public_data(entry: TimelineEntry) -> dict[str, Any]:
    """The part of an entry's data a reporter may see."""
    if entry.kind not in (TimelineEntry.Kind.STATE_CHANGED, TimelineEntry.Kind.CREATED):
        return {k: v for k, v in entry.data.items() if k in {"filename", "size", "public", "score"}}
    keys = PUBLIC_DATA_KEYS.get(entry.action, PUBLIC_DATA_KEYS[""])
    return {k: v for k, v in entry.data.items() if k in keys}
