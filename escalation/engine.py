"""The sweeper: decides every due timer exactly once, under row locks, with the database's clock.

Each run locks due timers together with their incidents (FOR NO KEY UPDATE ... SKIP LOCKED), so two
sweepers never decide the same timer and never wait on an acknowledge in progress; an acknowledge
waits for a sweeper that holds its incident, so no step is decided after an acknowledge commits.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Now

from incidents import lifecycle, timeline
from incidents.models import Incident, Team

from . import chains, notify, sla, webhooks
from .delivery import enqueue
from .models import EngineHeartbeat, Notification, Timer

logger = logging.getLogger(__name__)
REPUBLISH_AFTER = timedelta(seconds=30)


@dataclass
class SweepResult:
    fired: int = 0
    cancelled: int = 0
    to_deliver: list[int] = field(default_factory=list)


def db_now() -> datetime:
    """The database's clock, so that no worker's clock decides when a timer is due."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT CURRENT_TIMESTAMP")
        value = cursor.fetchone()[0]
    if isinstance(value, str):  # SQLite answers text in UTC
        value = datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


def sweep(*, limit: int = 100, now: datetime | None = None, budget_seconds: float = 20.0) -> SweepResult:
    """Decide due timers (fire or cancel), then republish undelivered notifications. Safe to run anywhere,
    any number of times, concurrently. `now` is the database's clock unless a test gives one.

    Timers are decided in batches of `limit`, each in its own transaction whose notifications are prompted as
    soon as it commits: in a burst (1,000 breaches at one instant) the first people are told after the first
    batch, not after the last. A run stops after `budget_seconds`; the next beat picks up the rest.
    """
    result = SweepResult()
    started = time.monotonic()
    with notify.memo():
        while True:
            batch = SweepResult()
            decided = _sweep_batch(limit=limit, now=now, result=batch)
            enqueue(batch.to_deliver)
            result.fired += batch.fired
            result.cancelled += batch.cancelled
            result.to_deliver += batch.to_deliver
            if decided < limit or time.monotonic() - started > budget_seconds:
                break
    republished = republish()
    enqueue(republished)
    result.to_deliver += republished
    return result


def _sweep_batch(*, limit: int, now: datetime | None, result: SweepResult) -> int:
    with transaction.atomic():
        now = now or db_now()
        due = list(
            Timer.objects.select_for_update(skip_locked=True, of=("self", "incident"), no_key=True)
            .select_related(
                "incident",
                "incident__domain",
                "incident__team",
                "incident__category",
                "incident__assignee",
                "clock__calendar",
                "escalation",
            )
            .filter(state=Timer.State.PENDING, due_at__lte=now)
            .order_by("due_at")[:limit]
        )
        for timer in due:
            if decide(timer, now=now, result=result):
                result.fired += 1
            else:
                result.cancelled += 1
        EngineHeartbeat.objects.update_or_create(
            name="sweeper", defaults={"beat_at": now, "fired": result.fired}
        )
    return len(due)


def decide(timer: Timer, *, now: datetime, result: SweepResult) -> bool:
    """Fire the timer, or cancel it if its reason is gone. The caller holds the timer and incident locks."""
    incident = timer.incident
    fired = False
    if incident.state not in Incident.FINAL_STATES:
        if timer.kind in (Timer.Kind.SLA_WARNING, Timer.Kind.SLA_BREACH):
            fired = _fire_sla(timer, now=now, result=result)
        else:
            fired = _fire_step(timer, now=now, result=result)
    Timer.objects.filter(pk=timer.pk).update(
        state=Timer.State.FIRED if fired else Timer.State.CANCELLED, fired_at=now if fired else None
    )
    return fired


def _fire_sla(timer: Timer, *, now: datetime, result: SweepResult) -> bool:
    clock = sla.fire(timer, now=now)
    if clock is None:
        return False
    incident = timer.incident
    label = f"{clock.kind}{' ' + clock.name if clock.name else ''}"
    if timer.kind == Timer.Kind.SLA_WARNING:
        used = (clock.warn_seconds or 0) * 100 // clock.target_seconds
        event, detail = "sla_warning", f"SLA warning: {label} target {used}% used"
        recipients = _assignee_or_team(incident)
    else:
        event, detail = "sla_breach", f"SLA breached: {label} target missed"
        recipients = _assignee_or_team(incident) + notify.manager_recipients(incident, incident.team)
    result.to_deliver += notify.queue(
        incident, event=event, detail=detail, cause=timer.key, recipients=recipients
    )
    result.to_deliver += webhooks.on_sla(incident, event=event, clock=clock, cause=timer.key, now=now)
    return True


def _assignee_or_team(incident: Incident) -> list[notify.Recipient]:
    if incident.assignee_id and incident.assignee and incident.assignee.email:
        return [notify.Recipient("email", incident.assignee.email, user_id=incident.assignee_id)]
    return notify.team_recipients(incident, incident.team)


def _fire_step(timer: Timer, *, now: datetime, result: SweepResult) -> bool:
    chain = timer.escalation
    if chain is None or chain.stopped_at is not None or chain.paused_at is not None:
        return False
    incident = timer.incident
    step = chain.steps[timer.step or 0]
    if step.get("reassign_team"):
        _reassign(incident, step["reassign_team"], position=step["position"])
    recipients = notify.step_recipients(incident, step, now=now)
    if step.get("notify_schedule") and not any(r.user_id for r in recipients if r.channel == "email"):
        # Nobody (qualified) is on call: the desk warns the team's manager, in the timeline and by mail.
        timeline.record_escalation_event(
            incident=incident, event="no_qualified_on_call", schedule=step["notify_schedule"]
        )
        result.to_deliver += notify.queue(
            incident, event="oncall_gap", detail="Nobody qualified is on call for this incident",
            cause=f"{timer.key}:gap", recipients=notify.manager_alert_recipients(incident, incident.team),
        )  # fmt: skip
    detail = f"Escalation step {step['position']}" + (f" (repeat {timer.repeat})" if timer.repeat else "")
    result.to_deliver += notify.queue(
        incident, event="escalation_step", detail=detail, cause=timer.key, recipients=recipients
    )
    timeline.record_escalation_event(
        incident=incident, event="step", epoch=chain.epoch, step=step["position"], repeat=timer.repeat,
        due_at=timer.due_at.isoformat(), recipients=[r.address for r in recipients],
    )  # fmt: skip
    chains.next_after(chain, timer, now=now)
    return True


def _reassign(incident: Incident, team_id: int, *, position: int) -> None:
    """Functional escalation through the lifecycle, never by writing state here."""
    team = Team.objects.filter(pk=team_id).first()
    if team is None or incident.state not in lifecycle.TRANSITIONS[lifecycle.Action.ESCALATE].sources:
        return
    lifecycle.escalate_incident(
        incident, actor=None, team=team, reason=f"Escalation policy step {position}", by_policy=True
    )


def republish() -> list[int]:
    """Outbox rows whose prompt was lost (broker down, worker killed): enqueue them again."""
    stale = Q(state=Notification.State.PENDING, next_attempt_at__lte=Now()) & (
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=Now() - REPUBLISH_AFTER)
    )
    expired = Q(state=Notification.State.SENDING, lease_until__lt=Now())
    return list(
        Notification.objects.filter(stale | expired)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:1000]
    )
