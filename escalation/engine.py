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

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Prefetch, Q
from django.db.models.functions import Now
from django.utils import timezone

from incidents import lifecycle, timeline
from incidents.models import Category, Domain, Incident, Team, TimelineEntry

from . import chains, notify, webhooks
from .delivery import enqueue_batches
from .models import EngineHeartbeat, Notification, SlaClock, Timer

logger = logging.getLogger(__name__)
REPUBLISH_AFTER = timedelta(seconds=30)


@dataclass
class SweepResult:
    fired: int = 0
    cancelled: int = 0
    to_deliver: list[int] = field(default_factory=list)
    urgent: list[int] = field(default_factory=list)  # of to_deliver: breaches' and steps' rows


def db_now() -> datetime:
    """The database's clock, so that no worker's clock decides when a timer is due."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT CURRENT_TIMESTAMP")
        value = cursor.fetchone()[0]
    if isinstance(value, str):  # SQLite answers text in UTC
        value = datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value


# What is decided first when several kinds are due at once: a breach (someone must be told now) before a
# policy step, and both before a warning, so that a burst of warnings never delays a breach.
URGENCY = (Timer.Kind.SLA_BREACH, Timer.Kind.ESCALATION_STEP, Timer.Kind.SLA_WARNING)
SLA_KINDS = (Timer.Kind.SLA_BREACH, Timer.Kind.SLA_WARNING)


def sweep(*, limit: int = 500, now: datetime | None = None, budget_seconds: float = 20.0) -> SweepResult:
    """Decide due timers (fire or cancel), then republish undelivered notifications. Safe to run anywhere,
    any number of times, concurrently. `now` is the database's clock unless a test gives one.

    Timers are decided in batches of up to `limit`, each in its own transaction whose notifications are
    prompted as soon as it commits: in a burst (10,000 breaches at one instant) the first people are told
    after the first batch, not after the last. SLA warnings and breaches are decided set-wise, a fixed
    number of statements per batch whatever its size (`_decide_sla`). A run stops after `budget_seconds`;
    the next beat picks up the rest.
    """
    result = SweepResult()
    started = time.monotonic()
    with notify.memo():
        while True:
            batch = SweepResult()
            decided = _sweep_batch(limit=limit, now=now, result=batch)
            urgent = set(batch.urgent)
            # The batch wrote its rows with `enqueued_at` set: no second write of them after the prompt.
            enqueue_batches(batch.urgent, urgent=True, stamped=True)
            enqueue_batches([pk for pk in batch.to_deliver if pk not in urgent], stamped=True)
            result.fired += batch.fired
            result.cancelled += batch.cancelled
            result.to_deliver += batch.to_deliver
            result.urgent += batch.urgent
            if decided < limit or time.monotonic() - started > budget_seconds:
                break
    republished = republish()
    enqueue_batches(republished)
    result.to_deliver += republished
    return result


def _claim(kind: str, *, now: datetime, limit: int) -> list[Timer]:
    """Lock up to `limit` due timers of one kind with their incidents, the earliest first; rows another
    sweeper holds are skipped (it decides them), and an acknowledge in progress is waited for by nobody."""
    due = (
        Timer.objects.select_for_update(skip_locked=True, of=("self", "incident"), no_key=True)
        .filter(state=Timer.State.PENDING, kind=kind, due_at__lte=now)
        .order_by("due_at")
    )
    if kind in SLA_KINDS:
        # An SLA timer is decided from its clock and the columns below (_decide_sla, notify.rows_for,
        # webhooks.incident_payload): not the incident's 55 columns with its text, nor a user's password.
        # The incident's domain, team, category and assignee are the same few rows for a whole burst:
        # read once per batch, one instance each, rather than joined and built again for every timer.
        return list(
            due.select_related("incident", "clock")
            .only(*_SLA_TIMER_COLUMNS)
            .prefetch_related(*_sla_relations())[:limit]
        )
    return list(
        due.select_related(
            "incident",
            "incident__domain",
            "incident__team",
            "incident__category",
            "incident__assignee",
            "clock",
            "escalation",
        )[:limit]
    )


# What deciding an SLA timer reads. A column left out here would cost a query per timer when read (Django
# loads a deferred field on access): tests/escalation/test_sweep_queries.py counts them.
_SLA_TIMER_COLUMNS = (
    "key", "incident", "kind", "clock", "due_at", "state",
    "incident__title", "incident__state", "incident__priority", "incident__version", "incident__domain",
    "incident__category", "incident__team", "incident__assignee", "incident__reporter",
    "incident__confidential", "incident__sla_response", "incident__sla_resolution",
    "clock__kind", "clock__name", "clock__cycle", "clock__epoch", "clock__target_seconds",
    "clock__warn_seconds", "clock__running_since", "clock__due_at", "clock__warned_at", "clock__breached_at",
    "clock__completed_at", "clock__cancelled_at", "clock__cleared_at",
)  # fmt: skip


def _sla_relations() -> list[Prefetch]:
    user = get_user_model()
    return [
        Prefetch("incident__domain", Domain.objects.only("slug", "restricted")),
        Prefetch("incident__team", Team.objects.only("slug", "email", "manager")),
        Prefetch("incident__category", Category.objects.only("path")),
        Prefetch("incident__assignee", user.objects.only(user.USERNAME_FIELD, "email", "is_active")),
    ]


def _sweep_batch(*, limit: int, now: datetime | None, result: SweepResult) -> int:
    with transaction.atomic():
        now = now or db_now()
        decided = 0
        for kind in URGENCY:
            if decided >= limit:
                break
            due = _claim(kind, now=now, limit=limit - decided)
            decided += len(due)
            before = len(result.to_deliver)
            if kind in SLA_KINDS:
                _decide_sla(due, now=now, result=result)
            else:
                for timer in due:
                    if decide(timer, now=now, result=result):
                        result.fired += 1
                    else:
                        result.cancelled += 1
            if kind != Timer.Kind.SLA_WARNING:
                result.urgent += result.to_deliver[before:]
        EngineHeartbeat.objects.update_or_create(
            name="sweeper", defaults={"beat_at": now, "fired": result.fired}
        )
    return decided


def decide(timer: Timer, *, now: datetime, result: SweepResult) -> bool:
    """Fire the timer, or cancel it if its reason is gone. The caller holds the timer and incident locks."""
    if timer.kind in SLA_KINDS:
        one = SweepResult()
        _decide_sla([timer], now=now, result=one)
        result.to_deliver += one.to_deliver
        return bool(one.fired)
    incident = timer.incident
    fired = False
    if incident.state not in Incident.FINAL_STATES:
        fired = _fire_step(timer, now=now, result=result)
    _mark([timer.pk] if fired else [], [] if fired else [timer.pk], now=now)
    return fired


def _mark(fired: list[int], cancelled: list[int], *, now: datetime) -> None:
    if fired:
        Timer.objects.filter(pk__in=fired).update(state=Timer.State.FIRED, fired_at=now)
    if cancelled:
        Timer.objects.filter(pk__in=cancelled).update(state=Timer.State.CANCELLED, fired_at=None)


def _decide_sla(timers: list[Timer], *, now: datetime, result: SweepResult) -> None:
    """Decide SLA timers of one kind set-wise. The caller holds the timers' and incidents' locks.

    A timer fires when its incident is open and its clock still runs in the epoch it was armed for and has
    not been marked yet. When a warning and its breach are both overdue (a sweeper that was down), the breach
    is decided first and the warning after it, each once.
    For the whole set: one UPDATE of the clocks, one or two of the incidents' SLA mirrors, one INSERT of
    timeline entries, one INSERT and one SELECT of outbox rows, and one UPDATE per outcome of the timers.
    """
    if not timers:
        return
    kind = timers[0].kind
    warning = kind == Timer.Kind.SLA_WARNING
    event = "sla_warning" if warning else "sla_breach"
    fired: list[Timer] = []
    cancelled: list[int] = []
    for timer in timers:
        clock = timer.clock
        live = (
            timer.incident.state not in Incident.FINAL_STATES
            and clock is not None
            and clock.is_running
            and clock.epoch == int(timer.key.split(":")[2])
            and (clock.warned_at if warning else clock.breached_at) is None
        )
        if live:
            fired.append(timer)
        else:
            cancelled.append(timer.pk)
    entries: list[TimelineEntry] = []
    rows: list[notify.Outbox | Notification] = []
    mirrors: dict[tuple[str, str], list[int]] = {}
    for timer in fired:
        incident, clock = timer.incident, timer.clock
        if clock is None:  # not reached: a timer without a clock is cancelled above
            continue
        if warning:
            clock.warned_at = now
        else:
            clock.breached_at = now
        entries.append(
            _sla_entry(incident, clock, "warning" if warning else "breached", due_at=timer.due_at, now=now)
        )
        if clock.kind in (SlaClock.Kind.RESPONSE, SlaClock.Kind.RESOLUTION):
            field_name = f"sla_{clock.kind}"
            if getattr(incident, field_name) != clock.status:
                setattr(incident, field_name, clock.status)
                mirrors.setdefault((field_name, clock.status), []).append(incident.pk)
        label = f"{clock.kind}{' ' + clock.name if clock.name else ''}"
        if warning:
            used = (clock.warn_seconds or 0) * 100 // clock.target_seconds
            detail = f"SLA warning: {label} target {used}% used"
            recipients = _assignee_or_team(incident)
        else:
            detail = f"SLA breached: {label} target missed"
            recipients = _assignee_or_team(incident) + notify.manager_recipients(incident, incident.team)
        rows += notify.rows_for(incident, event=event, detail=detail, cause=timer.key, recipients=recipients)
        if not recipients:
            entries.append(
                timeline.escalation_event_entry(
                    incident=incident, event="nobody_to_notify", detail=detail, cause=timer.key
                )
            )
        rows += webhooks.sla_rows(incident, event=event, clock=clock, cause=timer.key, now=now)
    if fired:
        field_name = "warned_at" if warning else "breached_at"
        SlaClock.objects.filter(pk__in=[t.clock_id for t in fired]).update(**{field_name: now})
        for (mirror, status), incident_ids in mirrors.items():
            Incident.objects.filter(pk__in=incident_ids).update(**{mirror: status})
        TimelineEntry.objects.bulk_create(entries)
        # The prompt follows the commit (cleared again if the broker refuses it).
        result.to_deliver += notify.insert(rows, enqueued_at=timezone.now())
    _mark([t.pk for t in fired], cancelled, now=now)
    result.fired += len(fired)
    result.cancelled += len(cancelled)


def _sla_entry(
    incident: Incident, clock: SlaClock, event: str, *, due_at: datetime, now: datetime
) -> TimelineEntry:
    """The clock's own timeline entry, as escalation.sla records it (unsaved: written in bulk)."""
    label = f"{clock.kind}:{clock.name}" if clock.name else str(clock.kind)
    return timeline.sla_event_entry(
        incident=incident, clock=label, event=event, cycle=clock.cycle, due_at=due_at.isoformat(),
        fired_at=now.isoformat(),
    )  # fmt: skip


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
            enqueued_at=timezone.now(),
        )  # fmt: skip
    detail = f"Escalation step {step['position']}" + (f" (repeat {timer.repeat})" if timer.repeat else "")
    result.to_deliver += notify.queue(
        incident, event="escalation_step", detail=detail, cause=timer.key, recipients=recipients,
        enqueued_at=timezone.now(),  # the sweep prompts them after its commit
    )  # fmt: skip
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
