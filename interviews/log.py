"""One small function per kind of session-log entry. The log is append-only.

Entries carry ids, keys and flags, never a candidate's or rater's free text: erasing a candidate's
data must not need to touch the log, and a rating's level stays out of it until consensus.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .models import Session, SessionEvent

Kind = SessionEvent.Kind


def _actor(actor: Any) -> Any:
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def record(
    session: Session,
    *,
    kind: str,
    actor: Any = None,
    by_candidate: bool = False,
    data: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> SessionEvent:
    extra: dict[str, Any] = {"at": at} if at is not None else {}
    return SessionEvent.objects.create(
        session=session, kind=kind, actor=_actor(actor), by_candidate=by_candidate, data=data or {}, **extra
    )


def record_state_changed(
    session: Session, *, actor: Any, action: str, old: str, new: str, at: datetime, **data: Any
) -> SessionEvent:
    return record(
        session,
        kind=Kind.STATE_CHANGED,
        actor=actor,
        at=at,
        data={"action": action, "from": old, "to": new, **data},
    )


def record_overrun(session: Session, *, phase: str, seconds: int, at: datetime) -> SessionEvent:
    return record(session, kind=Kind.OVERRUN, at=at, data={"phase": phase, "seconds": seconds})
