"""Session state transitions and the server-held clock. Nothing else assigns Session.state.

The phases run present -> gather -> extract -> solve -> evaluate -> rating -> consensus -> closed; a
timed phase can be paused (the clock stops) and any open session can be made void. Only the lead
interviewer moves a session. Each action locks the session row, checks the version and the transition
table, changes the session, bumps its version and writes one log entry in the same transaction.

Deadlines live in the database: `phase_deadline` is the end of the current phase's time box (with the
candidate's extra time), moved later by every pause. Clients count down to it; leaving a phase after its
deadline records the overrun on the phase's `PhaseRecord` and in the log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from incidents.errors import InvalidTransition, StaleVersion

from . import log
from .models import ConsensusRating, PhaseRecord, Rating, Session, SessionMember, SessionPause

State = Session.State
WARNING_SHARE = 0.8


class Action(StrEnum):
    START = "start"
    ADVANCE = "advance"
    PAUSE = "pause"
    RESUME = "resume"
    CLOSE = "close"
    VOID = "void"


TIMED = frozenset({State.PRESENT, State.GATHER, State.EXTRACT, State.SOLVE, State.EVALUATE})
OPEN = frozenset({State.SCHEDULED, *TIMED, State.RATING, State.CONSENSUS, State.PAUSED})

# The whole transition table: action -> the states it may start from.
ALLOWED_FROM: dict[Action, frozenset[str]] = {
    Action.START: frozenset({State.SCHEDULED}),
    Action.ADVANCE: frozenset({*TIMED, State.RATING}),
    Action.PAUSE: TIMED,
    Action.RESUME: frozenset({State.PAUSED}),
    Action.CLOSE: frozenset({State.CONSENSUS}),
    Action.VOID: OPEN,
}

NEXT_STATE: dict[str, str] = {
    State.PRESENT: State.GATHER,
    State.GATHER: State.EXTRACT,
    State.EXTRACT: State.SOLVE,
    State.SOLVE: State.EVALUATE,
    State.EVALUATE: State.RATING,
    State.RATING: State.CONSENSUS,
}


class InvalidSessionTransition(InvalidTransition):
    """The action is not allowed in the session's state (answers 409 `invalid_transition`)."""

    def __init__(self, session: Session, action: str, allowed: list[str]) -> None:
        self.action = action
        self.state = session.state
        self.allowed_actions = allowed
        Exception.__init__(
            self,
            f"Cannot {action} a session that is {session.state}. "
            + (
                f"Allowed actions: {', '.join(allowed)}."
                if allowed
                else "No action is allowed in this state."
            ),
        )


class StaleSessionVersion(StaleVersion):
    """Someone else changed the session since the caller read it (answers 409 `stale_version`)."""

    def __init__(self, session: Session, version: int) -> None:
        self.current_version = session.version
        Exception.__init__(
            self,
            f"The session was changed by someone else (you sent version {version}, it is now at "
            f"version {session.version}). Reload it and try again.",
        )


class SessionClosedForInput(InvalidSessionTransition):
    """Input (a question, a reveal, a problem, a rating) that the session's state does not accept."""

    def __init__(self, session: Session, what: str, accepted_in: frozenset[str]) -> None:
        self.action = what
        self.state = session.state
        self.allowed_actions = allowed_actions(session)
        Exception.__init__(
            self,
            f"A session that is {session.state} does not take {what}; it does in: "
            f"{', '.join(s for s in Session.State.values if s in accepted_in)}.",
        )


def allowed_actions(session: Session, user: Any = None) -> list[str]:
    """The actions that the session's state allows; none for anyone but the lead when a user is given."""
    if user is not None and not is_lead(session, user):
        return []
    return [str(a) for a in Action if session.state in ALLOWED_FROM[a]]


def is_lead(session: Session, user: Any) -> bool:
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    return SessionMember.objects.filter(
        session=session, user_id=user.pk, role=SessionMember.Role.LEAD
    ).exists()


def current_phase(session: Session) -> str:
    """The phase whose clock applies: the paused phase while paused."""
    return session.paused_from if session.state == State.PAUSED else session.state


@dataclass(frozen=True)
class Clock:
    phase: str
    started_at: datetime | None
    deadline: datetime | None
    budget_seconds: int | None
    elapsed_seconds: int
    remaining_seconds: int | None
    warning: bool
    overrun_seconds: int
    paused: bool

    @property
    def overrun(self) -> bool:
        return self.overrun_seconds > 0


def clock(session: Session, *, now: datetime | None = None) -> Clock:
    """The current phase's clock as the server holds it. Paused: frozen at the moment of the pause."""
    now = now or timezone.now()
    phase = current_phase(session)
    if phase not in TIMED or session.phase_deadline is None or session.phase_started_at is None:
        return Clock(phase, session.phase_started_at, None, None, 0, None, False, 0, False)
    paused = session.state == State.PAUSED
    at = session.paused_at if paused and session.paused_at is not None else now
    budget = session.phase_budget_seconds(phase)
    remaining = int((session.phase_deadline - at).total_seconds())
    elapsed = budget - remaining
    return Clock(
        phase=phase,
        started_at=session.phase_started_at,
        deadline=session.phase_deadline,
        budget_seconds=budget,
        elapsed_seconds=max(0, elapsed),
        remaining_seconds=remaining,
        warning=budget > 0 and elapsed >= WARNING_SHARE * budget,
        overrun_seconds=max(0, -remaining),
        paused=paused,
    )


def _lock(
    session: Session, action: str, actor: Any, version: int | None, from_state: str | None = None
) -> Session:
    locked = Session.objects.select_for_update().select_related("case_version").get(pk=session.pk)
    if version is not None and version != locked.version:
        raise StaleSessionVersion(locked, version)
    if from_state is not None and from_state != locked.state:
        # The console's guard against a double click: the candidate's input changes the version all the
        # time, the state only when a phase changes.
        raise InvalidSessionTransition(locked, action, allowed_actions(locked))
    if action not in Action.__members__.values() or locked.state not in ALLOWED_FROM[Action(action)]:
        raise InvalidSessionTransition(locked, action, allowed_actions(locked))
    if not is_lead(locked, actor):
        raise PermissionDenied("Only the lead interviewer moves the session.")
    return locked


def _open_phase(session: Session, phase: str, now: datetime) -> list[str]:
    if phase not in TIMED:
        session.phase_started_at = now
        session.phase_deadline = None
        return ["phase_started_at", "phase_deadline"]
    budget = session.phase_budget_seconds(phase)
    session.phase_started_at = now
    session.phase_deadline = now + timedelta(seconds=budget)
    PhaseRecord.objects.create(session=session, phase=phase, started_at=now, budget_seconds=budget)
    return ["phase_started_at", "phase_deadline"]


def _close_phase(session: Session, phase: str, now: datetime) -> int:
    """End the current timed phase; returns its overrun in seconds (recorded and logged)."""
    if phase not in TIMED or session.phase_deadline is None:
        return 0
    overrun = max(0, int((now - session.phase_deadline).total_seconds()))
    PhaseRecord.objects.filter(session=session, phase=phase).update(ended_at=now, overrun_seconds=overrun)
    if overrun:
        log.record_overrun(session, phase=phase, seconds=overrun, at=now)
    return overrun


def _commit(
    session: Session,
    *,
    actor: Any,
    action: Action,
    old_state: str,
    fields: list[str],
    now: datetime,
    **data: Any,
) -> Session:
    session.version += 1
    session.updated_at = now
    session.save(update_fields=sorted({*fields, "state", "version", "updated_at"}))
    log.record_state_changed(
        session, actor=actor, action=action, old=old_state, new=session.state, at=now, **data
    )
    return session


def missing_ratings(session: Session) -> dict[str, list[str]]:
    """Username -> the dimension keys that rater has not rated yet."""
    dimensions = list(session.case_version.rubric.dimensions.values_list("pk", "key"))
    done = set(Rating.objects.filter(session=session).values_list("rater_id", "dimension_id"))
    missing: dict[str, list[str]] = {}
    for member in session.members.filter(rates=True).select_related("user"):
        keys = [key for pk, key in dimensions if (member.user_id, pk) not in done]
        if keys:
            missing[member.user.get_username()] = keys
    return missing


@transaction.atomic
def start_session(
    session: Session, *, actor: Any, version: int | None = None, from_state: str | None = None
) -> Session:
    """scheduled -> present: the candidate gets the presentation and the clock starts."""
    session = _lock(session, Action.START, actor, version, from_state)
    now = timezone.now()
    old_state = session.state
    session.state = State.PRESENT
    session.started_at = now
    fields = ["started_at", *_open_phase(session, State.PRESENT, now)]
    return _commit(session, actor=actor, action=Action.START, old_state=old_state, fields=fields, now=now)


@transaction.atomic
def advance_session(
    session: Session, *, actor: Any, version: int | None = None, from_state: str | None = None
) -> Session:
    """Move to the next phase; leaving a timed phase late records its overrun.

    rating -> consensus needs every rater's rating on every dimension. Send `from_state` (or `version`) to
    make a double click advance once: the second call is refused with 409.
    """
    session = _lock(session, Action.ADVANCE, actor, version, from_state)
    old_state = session.state
    new_state = NEXT_STATE[old_state]
    if new_state == State.CONSENSUS:
        missing = missing_ratings(session)
        if missing:
            raise ValidationError(
                {"ratings": [f"{user} has not rated: {', '.join(keys)}." for user, keys in missing.items()]}
            )
    now = timezone.now()
    overrun = _close_phase(session, old_state, now)
    session.state = new_state
    fields = _open_phase(session, new_state, now)
    if new_state == State.RATING:
        session.rating_started_at = now
        fields.append("rating_started_at")
    data = {"overrun_seconds": overrun} if overrun else {}
    return _commit(
        session, actor=actor, action=Action.ADVANCE, old_state=old_state, fields=fields, now=now, **data
    )


@transaction.atomic
def pause_session(
    session: Session, *, actor: Any, reason: str, version: int | None = None, from_state: str | None = None
) -> Session:
    """Stop the clock of a timed phase, with a reason (a fire alarm, a technical problem)."""
    session = _lock(session, Action.PAUSE, actor, version, from_state)
    if not reason or not reason.strip():
        raise ValidationError({"reason": ["A pause needs a reason."]})
    now = timezone.now()
    old_state = session.state
    SessionPause.objects.create(session=session, phase=old_state, started_at=now, reason=reason.strip())
    session.paused_from = old_state
    session.paused_at = now
    session.pause_reason = reason.strip()
    session.state = State.PAUSED
    return _commit(
        session,
        actor=actor,
        action=Action.PAUSE,
        old_state=old_state,
        fields=["paused_from", "paused_at", "pause_reason"],
        now=now,
        reason=reason.strip(),
    )


def _end_pause(session: Session, now: datetime) -> int:
    assert session.paused_at is not None  # noqa: S101 - paused sessions always carry it
    paused = now - session.paused_at
    seconds = int(paused.total_seconds())
    SessionPause.objects.filter(session=session, ended_at__isnull=True).update(ended_at=now)
    if session.phase_deadline is not None:
        session.phase_deadline += paused
    record = PhaseRecord.objects.filter(session=session, phase=session.paused_from).first()
    if record is not None:
        record.paused_seconds += seconds
        record.save(update_fields=["paused_seconds"])
    return seconds


@transaction.atomic
def resume_session(
    session: Session, *, actor: Any, version: int | None = None, from_state: str | None = None
) -> Session:
    """Back to the paused phase; its deadline moves later by the time spent paused."""
    session = _lock(session, Action.RESUME, actor, version, from_state)
    now = timezone.now()
    old_state = session.state
    seconds = _end_pause(session, now)
    session.state = session.paused_from
    session.paused_from = ""
    session.paused_at = None
    session.pause_reason = ""
    return _commit(
        session,
        actor=actor,
        action=Action.RESUME,
        old_state=old_state,
        fields=["phase_deadline", "paused_from", "paused_at", "pause_reason"],
        now=now,
        paused_seconds=seconds,
    )


@transaction.atomic
def close_session(
    session: Session,
    *,
    actor: Any,
    recommendation: str = "",
    summary: str = "",
    version: int | None = None,
    from_state: str | None = None,
) -> Session:
    """consensus -> closed: needs the consensus level of every dimension and, when hiring, a recommendation.

    A training session's recommendation is `not_applicable`.
    """
    session = _lock(session, Action.CLOSE, actor, version, from_state)
    errors: dict[str, list[str]] = {}
    dimensions = session.case_version.rubric.dimensions.all()
    decided = set(ConsensusRating.objects.filter(session=session).values_list("dimension_id", flat=True))
    undecided = [d.key for d in dimensions if d.pk not in decided]
    if undecided:
        errors["consensus"] = [f"No consensus level yet for: {', '.join(undecided)}."]
    if session.mode == Session.Mode.TRAINING:
        recommendation = recommendation or Session.Recommendation.NOT_APPLICABLE
    if recommendation not in Session.Recommendation.values:
        errors["recommendation"] = [f"Must be one of: {', '.join(Session.Recommendation.values)}."]
    elif session.mode == Session.Mode.HIRING and recommendation == Session.Recommendation.NOT_APPLICABLE:
        errors["recommendation"] = ["A hiring session needs a recommendation."]
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    old_state = session.state
    session.state = State.CLOSED
    session.closed_at = now
    session.recommendation = recommendation
    session.summary = summary.strip()
    return _commit(
        session,
        actor=actor,
        action=Action.CLOSE,
        old_state=old_state,
        fields=["closed_at", "recommendation", "summary"],
        now=now,
        recommendation=recommendation,
    )


@transaction.atomic
def void_session(
    session: Session, *, actor: Any, reason: str, version: int | None = None, from_state: str | None = None
) -> Session:
    """Abandon an open session (the candidate knew the source incident, a no-show). Final."""
    session = _lock(session, Action.VOID, actor, version, from_state)
    if not reason or not reason.strip():
        raise ValidationError({"reason": ["Voiding a session needs a reason."]})
    now = timezone.now()
    old_state = session.state
    fields = ["voided_at", "void_reason", "phase_deadline"]
    if old_state == State.PAUSED:
        _end_pause(session, now)
        PhaseRecord.objects.filter(session=session, phase=session.paused_from).update(ended_at=now)
        session.paused_from = ""
        session.paused_at = None
        fields += ["paused_from", "paused_at"]
    elif old_state in TIMED:
        PhaseRecord.objects.filter(session=session, phase=old_state).update(ended_at=now)
    session.state = State.VOID
    session.voided_at = now
    session.void_reason = reason.strip()
    session.phase_deadline = None
    return _commit(
        session,
        actor=actor,
        action=Action.VOID,
        old_state=old_state,
        fields=fields,
        now=now,
        reason=reason.strip(),
    )


ACTIONS: dict[Action, Callable[..., Session]] = {
    Action.START: start_session,
    Action.ADVANCE: advance_session,
    Action.PAUSE: pause_session,
    Action.RESUME: resume_session,
    Action.CLOSE: close_session,
    Action.VOID: void_session,
}

__all__ = [
    "ACTIONS",
    "ALLOWED_FROM",
    "Action",
    "Clock",
    "InvalidSessionTransition",
    "StaleSessionVersion",
    "allowed_actions",
    "clock",
]
