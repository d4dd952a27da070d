"""SLA clocks: start, pause, resume, complete, re-target, cancel. Called under the incident's row lock.

A clock counts business seconds of its calendar. While it runs, `consumed_seconds` holds what was used
before `running_since`; its warning and breach are Timer rows that the sweeper decides exactly once.
"""

from __future__ import annotations

from contextvars import ContextVar
from datetime import datetime
from typing import Any

from django.db.models import F, Q

from incidents import timeline
from incidents.inserts import bulk_insert
from incidents.models import Incident, SlaStatus

from . import configcache
from .calendars import add_business_seconds, business_seconds_between
from .models import SlaClock, SlaPolicy, SlaTarget, Timer, calendar_spec

Kind = SlaClock.Kind


def policy_for(incident: Incident) -> SlaPolicy | None:
    """The most specific active policy: domain-specific before any-domain, priority-specific before any."""
    if incident.priority is None:
        return None
    return (
        SlaPolicy.objects.filter(active=True)
        .filter(Q(priority=incident.priority) | Q(priority__isnull=True))
        .filter(Q(domain_id=incident.domain_id) | Q(domain__isnull=True))
        .select_related("calendar", "escalation_policy")
        .order_by(F("domain_id").asc(nulls_last=True), F("priority").asc(nulls_last=True), "id")
        .first()
    )


def open_clocks(incident: Incident) -> list[SlaClock]:
    return list(
        incident.sla_clocks.filter(completed_at__isnull=True, cancelled_at__isnull=True).select_related(
            "calendar"
        )
    )


# While `sla_recompute` replays an incident's history, the replayed steps are not written again.
_replaying: ContextVar[bool] = ContextVar("sla_replaying", default=False)


def _record(incident: Incident, clock: SlaClock, event: str, **data: Any) -> None:
    if not _replaying.get():
        timeline.record_sla_event(
            incident=incident, clock=_label(clock), event=event, cycle=clock.cycle, **data
        )


def _label(clock: SlaClock) -> str:
    return f"{clock.kind}:{clock.name}" if clock.name else str(clock.kind)


def _cancel_timers(clock: SlaClock) -> None:
    clock.timers.filter(state=Timer.State.PENDING).update(state=Timer.State.CANCELLED)


def _set_due(clock: SlaClock) -> None:
    """The due and warning instants of a running clock, from its calendar (nothing is written)."""
    since = clock.running_since
    if since is None:
        return
    spec = calendar_spec(clock.calendar)
    clock.due_at = add_business_seconds(spec, since, max(0, clock.target_seconds - clock.consumed_seconds))
    if clock.warn_seconds is not None:
        clock.warn_at = add_business_seconds(spec, since, max(0, clock.warn_seconds - clock.consumed_seconds))


def _timers(clock: SlaClock) -> list[Timer]:
    """The (unsaved) timers of a running, saved clock that have not fired yet."""
    prefix = f"sla:{clock.pk}:{clock.epoch}"
    timers = []
    if (
        clock.warn_seconds is not None
        and clock.warned_at is None
        and clock.breached_at is None
        and clock.warn_at
    ):
        timers.append(
            Timer(
                key=f"{prefix}:warn", incident_id=clock.incident_id, kind=Timer.Kind.SLA_WARNING, clock=clock,
                due_at=clock.warn_at,
            )
        )  # fmt: skip
    if clock.breached_at is None and clock.due_at is not None:  # (a running clock has its due time)
        timers.append(
            Timer(
                key=f"{prefix}:breach", incident_id=clock.incident_id, kind=Timer.Kind.SLA_BREACH, clock=clock,
                due_at=clock.due_at,
            )
        )  # fmt: skip
    return timers


def _arm(clock: SlaClock) -> None:
    """Compute the due and warning instants of a running clock and create the timers not yet fired."""
    if clock.running_since is None:
        return
    _set_due(clock)
    clock.save()
    for timer in _timers(clock):
        timer.save()


def _targets(
    incident: Incident, policy: SlaPolicy, targets: list[SlaTarget] | None = None
) -> list[tuple[str, str, int, Any]]:
    """(kind, name, target seconds, calendar) for every target the policy sets on this incident (`targets`:
    the policy's, when the caller has them)."""
    wanted: list[tuple[str, str, int, Any]] = []
    # A response clock that ended as cleared (a monitoring resolve, no response) is final: a reopen or a
    # new classification does not start another one.
    if incident.responded_at is None and incident.sla_response != SlaStatus.CLEARED:
        wanted.append((Kind.RESPONSE, "", policy.response_minutes * 60, policy.calendar))
    if incident.resolved_at is None:
        wanted.append((Kind.RESOLUTION, "", policy.resolution_minutes * 60, policy.calendar))
    for target in SlaTarget.objects.filter(policy=policy) if targets is None else targets:
        if target.applies_to(incident):
            calendar = policy.calendar if target.business_time else None
            wanted.append((Kind.TARGET, target.slug, target.minutes * 60, calendar))
            if target.final_minutes:
                # The final report runs beside the preliminary one, from the same start.
                wanted.append((Kind.TARGET, target.final_slug, target.final_minutes * 60, calendar))
    return wanted


def target_clocks(incident: Incident) -> list[SlaClock]:
    """The incident's reporting targets, the latest cycle of each name (in due order)."""
    latest: dict[str, SlaClock] = {}
    for clock in incident.sla_clocks.filter(kind=Kind.TARGET).order_by("name", "cycle"):
        latest[clock.name] = clock
    return sorted(latest.values(), key=lambda c: (c.due_at is None, c.due_at, c.name))


def file_target(incident: Incident, clock: SlaClock, *, filed_at: datetime, **data: Any) -> None:
    """A report was filed for this target at `filed_at`: the clock ends met (or breached, if late).

    A target that closing the incident had cancelled is completed all the same: the report still counts.
    The caller holds the incident's lock and has checked the target was not filed before."""
    if clock.completed_at is None and clock.cancelled_at is None:
        _stop(incident, clock, now=filed_at, cancel=False)
    else:
        clock.cancelled_at = None
        clock.completed_at = filed_at
        if clock.due_at is not None and filed_at > clock.due_at and clock.breached_at is None:
            clock.breached_at = clock.due_at
        clock.save()
        _record(incident, clock, clock.status, completed_at=filed_at.isoformat())
    _record(incident, clock, "report_filed", state=clock.status, **data)


def start_or_retarget(incident: Incident, *, now: datetime) -> None:
    """Start the clocks the matching policy sets, or re-target running ones after a priority change.

    Calling it again with nothing changed does nothing. Clocks that no policy sets any more are cancelled.
    """
    policy = policy_for(incident)
    current = {(c.kind, c.name): c for c in open_clocks(incident)}
    wanted = _targets(incident, policy) if policy is not None else []
    for kind, name, seconds, calendar in wanted:
        warn = seconds * policy.warning_percent // 100 if policy is not None else None
        clock = current.pop((kind, name), None)
        if clock is None:
            cycle = (
                incident.sla_clocks.filter(kind=kind, name=name)
                .order_by("-cycle")
                .values_list("cycle", flat=True)
                .first()
                or 0
            ) + 1
            started = incident.received_at if cycle == 1 else now
            clock = SlaClock.objects.create(
                incident=incident, kind=kind, name=name, cycle=cycle, policy=policy, calendar=calendar,
                target_seconds=seconds, warn_seconds=warn, started_at=started, running_since=started,
            )  # fmt: skip
            _arm(clock)
            _record(incident, clock, "started", due_at=clock.due_at.isoformat() if clock.due_at else None,
                    target_minutes=seconds // 60, policy=policy.name if policy else None)  # fmt: skip
        elif (clock.target_seconds, clock.warn_seconds, clock.calendar_id) != (
            seconds,
            warn,
            getattr(calendar, "pk", None),
        ):
            old_due = clock.due_at
            _cancel_timers(clock)
            clock.target_seconds, clock.warn_seconds, clock.calendar, clock.policy = (
                seconds,
                warn,
                calendar,
                policy,
            )
            clock.epoch += 1
            clock.save()
            _arm(clock)
            _record(incident, clock, "retargeted", reason=f"priority {incident.priority}",
                    old_due_at=old_due.isoformat() if old_due else None,
                    due_at=clock.due_at.isoformat() if clock.due_at else None)  # fmt: skip
    for clock in current.values():
        if clock.kind != Kind.RESOLUTION or policy is None:
            _stop(incident, clock, now=now, cancel=True, reason="no policy applies any more")
    sync_incident(incident)


def _policy_and_targets(
    priority: int | None, domain_id: int | None
) -> tuple[SlaPolicy | None, list[SlaTarget]]:
    policy = policy_for(Incident(priority=priority, domain_id=domain_id))
    return policy, list(SlaTarget.objects.filter(policy=policy)) if policy is not None else []


def plan_fresh(incident: Incident) -> tuple[SlaPolicy | None, list[SlaClock]]:
    """What `start_or_retarget` starts on an incident opened classified, before its row is written: the
    clocks (unsaved) and, on the incident, their mirror (due times and statuses, as `sync_incident` sets
    them). The policy and its targets come from escalation.configcache. `write_fresh` writes them."""
    policy, targets = configcache.cached(
        ("sla", incident.priority, incident.domain_id),
        lambda: _policy_and_targets(incident.priority, incident.domain_id),
    )
    if policy is None:
        return None, []
    clocks = []
    for kind, name, seconds, calendar in _targets(incident, policy, targets):
        started = incident.received_at
        clock = SlaClock(
            incident=incident, kind=kind, name=name, cycle=1, policy=policy, calendar=calendar,
            target_seconds=seconds, warn_seconds=seconds * policy.warning_percent // 100, started_at=started,
            running_since=started,
        )  # fmt: skip
        _set_due(clock)
        clocks.append(clock)
    latest = {clock.kind: clock for clock in clocks if clock.kind in (Kind.RESPONSE, Kind.RESOLUTION)}
    _mirror(incident, latest, write=False)
    return policy, clocks


def write_fresh(incident: Incident, policy: SlaPolicy | None, clocks: list[SlaClock]) -> list[Timer]:
    """Insert the clocks of `plan_fresh` (one INSERT) once the incident is written, and record them; returns
    their timers, unsaved, for the caller to write with the chain's in one INSERT."""
    if not clocks:
        return []
    for clock in clocks:
        clock.incident = incident
    bulk_insert(clocks)
    for clock in clocks:
        _record(incident, clock, "started", due_at=clock.due_at.isoformat() if clock.due_at else None,
                target_minutes=clock.target_seconds // 60, policy=policy.name if policy else None)  # fmt: skip
    return [timer for clock in clocks for timer in _timers(clock)]


def _stop(incident: Incident, clock: SlaClock, *, now: datetime, cancel: bool, reason: str = "") -> None:
    if clock.running_since is not None:
        clock.consumed_seconds += business_seconds_between(
            calendar_spec(clock.calendar), clock.running_since, now
        )
        clock.running_since = None
    _cancel_timers(clock)
    if cancel:
        clock.cancelled_at = now
        clock.save()
        _record(incident, clock, "cancelled", reason=reason)
        return
    clock.completed_at = now
    if clock.due_at is not None and now > clock.due_at and clock.breached_at is None:
        clock.breached_at = clock.due_at  # late, even if the sweeper had not looked yet
    clock.save()
    _record(incident, clock, clock.status, completed_at=now.isoformat())


def complete(incident: Incident, kind: str, *, now: datetime, name: str = "") -> None:
    """The target was reached (first response, resolution, a report filed): met or breached, final."""
    for clock in open_clocks(incident):
        if clock.kind == kind and clock.name == name:
            _stop(incident, clock, now=now, cancel=False)
    sync_incident(incident)


def clear_response(incident: Incident, *, now: datetime) -> None:
    """The condition cleared by itself before anyone responded (a monitoring resolve): the response clock
    ends as `cleared`, neither met nor breached, and the incident's sla_response says so even where no
    policy set a clock. Nothing happens once a response was made; calling it twice changes nothing."""
    if incident.responded_at is not None:
        return
    for clock in open_clocks(incident):
        if clock.kind == Kind.RESPONSE:
            _stop(incident, clock, now=now, cancel=True, reason="cleared")
            SlaClock.objects.filter(pk=clock.pk).update(cleared_at=now)
    if incident.sla_response != SlaStatus.CLEARED:
        incident.sla_response = SlaStatus.CLEARED
        Incident.objects.filter(pk=incident.pk).update(sla_response=SlaStatus.CLEARED)


def pause(incident: Incident, *, now: datetime, reason: str) -> None:
    """on_hold: running clocks stop counting; their timers are withdrawn until resume."""
    for clock in open_clocks(incident):
        if clock.running_since is None or clock.kind == Kind.TARGET:
            continue  # regulatory deadlines do not pause for a hold
        clock.consumed_seconds += business_seconds_between(
            calendar_spec(clock.calendar), clock.running_since, now
        )
        clock.running_since = None
        clock.paused_at = now
        clock.epoch += 1
        clock.save()
        _cancel_timers(clock)
        _record(incident, clock, "paused", reason=reason, consumed_minutes=clock.consumed_seconds // 60)
    sync_incident(incident)


def resume(incident: Incident, *, now: datetime) -> None:
    """Back from hold: clocks run again from now; due times move by the paused (business) time."""
    for clock in open_clocks(incident):
        if clock.running_since is not None:
            continue
        old_due = clock.due_at
        clock.running_since = now
        clock.paused_at = None
        clock.epoch += 1
        clock.save()
        _arm(clock)
        _record(incident, clock, "resumed", old_due_at=old_due.isoformat() if old_due else None,
                due_at=clock.due_at.isoformat() if clock.due_at else None)  # fmt: skip
    sync_incident(incident)


def cancel_all(incident: Incident, *, now: datetime, reason: str) -> None:
    """Closed or cancelled: every open clock stops (resolved clocks were completed already)."""
    for clock in open_clocks(incident):
        _stop(incident, clock, now=now, cancel=True, reason=reason)
    sync_incident(incident)


def new_resolution_cycle(incident: Incident, *, now: datetime) -> None:
    """A reopen starts a new resolution cycle with the full target, from now."""
    start_or_retarget(incident, now=now)


def sync_incident(incident: Incident) -> None:
    """Mirror the current response and resolution clocks onto the incident (for lists, filters, reports)."""
    latest: dict[str, SlaClock] = {}
    for clock in incident.sla_clocks.filter(kind__in=[Kind.RESPONSE, Kind.RESOLUTION]).order_by("cycle"):
        latest[clock.kind] = clock
    _mirror(incident, latest)


def _mirror(incident: Incident, latest: dict[str, SlaClock], *, write: bool = True) -> None:
    values = {
        "response_due_at": latest[Kind.RESPONSE].due_at if Kind.RESPONSE in latest else None,
        "resolution_due_at": latest[Kind.RESOLUTION].due_at if Kind.RESOLUTION in latest else None,
        "sla_response": latest[Kind.RESPONSE].status
        if Kind.RESPONSE in latest
        else ("cleared" if incident.sla_response == SlaStatus.CLEARED else ""),
        "sla_resolution": latest[Kind.RESOLUTION].status if Kind.RESOLUTION in latest else "",
    }
    changed = [field for field, value in values.items() if getattr(incident, field) != value]
    for field in changed:
        setattr(incident, field, values[field])
    if changed and write:
        Incident.objects.filter(pk=incident.pk).update(**{f: values[f] for f in changed})


__all__ = ["SlaStatus", "clear_response", "complete", "pause", "resume", "start_or_retarget"]
