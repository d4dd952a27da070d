"""Escalation chains: a copy of the policy on the incident, one Timer per due step. Under the incident lock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Max

from incidents import timeline
from incidents.models import Incident

from . import configcache
from .calendars import add_business_seconds
from .models import EscalationPolicy, IncidentEscalation, SlaClock, SlaPolicy, Timer, calendar_spec
from .sla import policy_for


def policy_for_incident(incident: Incident) -> EscalationPolicy | None:
    """The team's own policy, else the one of the SLA policy that matches the incident."""
    if incident.team_id:
        own = EscalationPolicy.objects.filter(team_id=incident.team_id).first()
        if own is not None:
            return own
    sla_policy = policy_for(incident)
    return sla_policy.escalation_policy if sla_policy is not None else None


def running(incident: Incident) -> IncidentEscalation | None:
    return incident.escalations.filter(stopped_at__isnull=True).order_by("-epoch").first()


def start(incident: Incident, *, now: datetime, reason: str) -> IncidentEscalation | None:
    """Copy the policy onto the incident and arm its first step. A running chain is superseded."""
    stop(incident, now=now, reason="superseded")
    policy = policy_for_incident(incident)
    if policy is None:
        return None
    steps = [step.snapshot() for step in policy.steps.order_by("position")]
    if not steps:
        return None
    epoch = (incident.escalations.aggregate(m=Max("epoch"))["m"] or 0) + 1
    chain = IncidentEscalation.objects.create(
        incident=incident, epoch=epoch, policy=policy, steps=steps, started_at=now
    )
    timeline.record_escalation_event(
        incident=incident, event="started", policy=policy.name, reason=reason, epoch=epoch
    )
    _arm_step(chain, index=0, repeat=0, previous_at=now)
    return chain


def _team_policy(team_id: int) -> tuple[EscalationPolicy, list[dict[str, Any]]] | None:
    policy = EscalationPolicy.objects.filter(team_id=team_id).first()
    return (policy, _snapshot(policy)) if policy is not None else None


def _snapshot(policy: EscalationPolicy) -> list[dict[str, Any]]:
    return [step.snapshot() for step in policy.steps.order_by("position")]


def start_fresh(
    incident: Incident, *, now: datetime, reason: str, sla_policy: SlaPolicy | None, clocks: list[SlaClock]
) -> list[Timer]:
    """`start` for an incident opened classified in this transaction (no chain, no timer yet), with the SLA
    policy and the clocks `sla.plan_fresh` made (not read again); the policies and their steps come from
    escalation.configcache. Returns the first step's timer, unsaved, for the caller to write with the clocks'
    timers in one INSERT."""
    team_id = incident.team_id
    found = (
        configcache.cached(("team_policy", team_id), lambda: _team_policy(team_id))
        if team_id is not None
        else None
    )
    if found is None and sla_policy is not None and sla_policy.escalation_policy_id is not None:
        fallback = sla_policy.escalation_policy
        assert fallback is not None  # noqa: S101 (its id is set)
        found = (fallback, configcache.cached(("policy_steps", fallback.pk), lambda: _snapshot(fallback)))
    if found is None or not found[1]:
        return []
    policy, snapshot = found
    steps = [dict(step) for step in snapshot]  # the chain's own copy
    chain = IncidentEscalation.objects.create(
        incident=incident, epoch=1, policy=policy, steps=steps, started_at=now
    )
    timeline.record_escalation_event(
        incident=incident, event="started", policy=policy.name, reason=reason, epoch=chain.epoch
    )
    latest = {clock.kind: clock for clock in clocks}  # cycle 1 of each kind
    index = 0
    while index < len(steps):
        due = _due(chain, steps[index], now, clock=lambda kind: latest.get(kind))
        if due is not None:
            return [_timer(chain, index, 0, 0, due)]
        index += 1
    return []


def stop(incident: Incident, *, now: datetime, reason: str) -> None:
    """Acknowledge, resolve, close or cancel: no later step of the running chain is ever decided."""
    chain = running(incident)
    if chain is None:
        return
    chain.stopped_at = now
    chain.stop_reason = reason
    chain.save(update_fields=["stopped_at", "stop_reason"])
    chain.timers.filter(state=Timer.State.PENDING).update(state=Timer.State.CANCELLED)
    timeline.record_escalation_event(incident=incident, event="stopped", reason=reason, epoch=chain.epoch)


def pause(incident: Incident, *, now: datetime) -> None:
    """on_hold: the chain's pending step is withdrawn; `resume` arms it again with the time it had left."""
    chain = running(incident)
    if chain is None or chain.paused_at is not None:
        return
    pending = chain.timers.filter(state=Timer.State.PENDING).order_by("due_at").first()
    chain.paused_at = now
    chain.save(update_fields=["paused_at"])
    if pending is not None:
        chain.timers.filter(state=Timer.State.PENDING).update(state=Timer.State.CANCELLED)
        _remember(chain, pending, now)


def _remember(chain: IncidentEscalation, pending: Timer, now: datetime) -> None:
    """Record where the chain stood; the append-only timeline is where `resume` reads it back."""
    timeline.record_escalation_event(
        incident=chain.incident, event="paused", epoch=chain.epoch, step=pending.step, repeat=pending.repeat,
        left=max(0.0, (pending.due_at - now).total_seconds()),
    )  # fmt: skip


def resume(incident: Incident, *, now: datetime) -> None:
    chain = running(incident)
    if chain is None or chain.paused_at is None:
        return
    entry = (
        incident.timeline.filter(kind="escalation", action="paused", data__epoch=chain.epoch)
        .order_by("-id")
        .first()
    )
    chain.paused_at = None
    chain.save(update_fields=["paused_at"])
    if entry is None:
        return
    data = entry.data
    step = chain.steps[data["step"]]
    if step["trigger"] == "sla_share":
        _arm_step(chain, index=data["step"], repeat=data["repeat"], previous_at=now)
    else:
        _create_timer(chain, data["step"], data["repeat"], now + timedelta(seconds=data["left"]))


def _clock(incident: Incident, kind: str) -> SlaClock | None:
    return incident.sla_clocks.filter(kind=kind).select_related("calendar").order_by("-cycle").first()


def _due(
    chain: IncidentEscalation,
    step: dict[str, Any],
    previous_at: datetime,
    clock: Callable[[str], SlaClock | None] | None = None,
) -> datetime | None:
    """When the step is due; `clock(kind)` gives the clock an SLA share measures (default: read it)."""
    if step["trigger"] == "unacknowledged":
        return previous_at + timedelta(minutes=step["delay_minutes"])
    clock_of = clock if clock is not None else (lambda kind: _clock(chain.incident, kind))
    measured = clock_of(step["sla_kind"])
    if measured is None or measured.running_since is None or not measured.is_running:
        return None  # nothing to measure (no policy, already met, or paused: resume arms it)
    share_seconds = measured.target_seconds * step["share_percent"] // 100
    return add_business_seconds(
        calendar_spec(measured.calendar),
        measured.running_since,
        max(0, share_seconds - measured.consumed_seconds),
    )


def _create_timer(chain: IncidentEscalation, index: int, repeat: int, due: datetime) -> Timer:
    timer = _timer(chain, index, repeat, chain.timers.count(), due)
    timer.save()
    return timer


def _timer(chain: IncidentEscalation, index: int, repeat: int, generation: int, due: datetime) -> Timer:
    return Timer(
        key=f"esc:{chain.pk}:{index}:{repeat}:{generation}",
        incident_id=chain.incident_id,
        kind=Timer.Kind.ESCALATION_STEP,
        escalation=chain,
        step=index,
        repeat=repeat,
        due_at=due,
    )


def _arm_step(chain: IncidentEscalation, *, index: int, repeat: int, previous_at: datetime) -> None:
    """Arm step `index` (or the first later step that can be measured)."""
    while index < len(chain.steps):
        due = _due(chain, chain.steps[index], previous_at)
        if due is not None:
            _create_timer(chain, index, repeat, due)
            return
        index, repeat = index + 1, 0


def next_after(chain: IncidentEscalation, timer: Timer, *, now: datetime) -> None:
    """After a step fired: its repeat, or the next step."""
    step = chain.steps[timer.step or 0]
    if timer.repeat < (step.get("repeat_count") or 0):
        _create_timer(
            chain, timer.step or 0, timer.repeat + 1, now + timedelta(minutes=step["repeat_minutes"])
        )
    else:
        _arm_step(chain, index=(timer.step or 0) + 1, repeat=0, previous_at=now)
