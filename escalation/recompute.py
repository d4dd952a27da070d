"""Rebuild an incident's SLA clocks from its timeline (`manage.py sla_recompute`).

The recorded history (classify, acknowledge, first public reply, a response clock cleared by a monitoring
resolve, hold, resume, resolve, reopen, close, cancel) is replayed through the same clock functions, with the current policies and calendars. Warnings and breaches
that the timeline says already fired keep their time and are not notified again; due events that never
fired stay armed, so the next sweep fires them.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from incidents import timeline
from incidents.models import Incident, TimelineEntry

from . import sla
from .models import SlaClock, Timer


@transaction.atomic
def recompute(incident: Incident, *, now: datetime | None = None) -> int:
    """Returns the number of clocks rebuilt. Running it twice gives the same clocks."""
    incident = Incident.objects.select_for_update().get(pk=incident.pk)
    now = now or timezone.now()
    # The instant the sweeper decided (its database clock), recorded in the entry; else the entry's time.
    fired = {
        (entry.data.get("clock"), entry.data.get("cycle", 1), entry.action): (
            datetime.fromisoformat(entry.data["fired_at"]) if entry.data.get("fired_at") else entry.at
        )
        for entry in incident.timeline.filter(kind=TimelineEntry.Kind.SLA, action__in=["warning", "breached"])
    }
    SlaClock.objects.filter(incident=incident).delete()  # their timers go with them
    responded_at, resolved_at = incident.responded_at, incident.resolved_at
    events: list[tuple[datetime, str]] = []
    for entry in incident.timeline.filter(
        Q(kind=TimelineEntry.Kind.STATE_CHANGED) | Q(kind=TimelineEntry.Kind.SLA, action="cancelled")
    ).order_by("at", "id"):
        if entry.kind == TimelineEntry.Kind.STATE_CHANGED:
            # The machine's acknowledge on its way to a monitoring resolve moved the state, not the clock.
            no_response = entry.action == "acknowledge" and entry.data.get("response") is False
            events.append((entry.at, "move" if no_response else entry.action))
        elif entry.data.get("clock") == str(SlaClock.Kind.RESPONSE) and entry.data.get("reason") == "cleared":
            events.append((entry.at, "clear"))  # the condition cleared before anyone responded
    if responded_at is not None:
        events.append((responded_at, "respond"))
    events.sort(key=lambda event: event[0])
    token = sla._replaying.set(True)
    try:
        incident.responded_at = incident.resolved_at = None
        for at, action in events:
            if at > now:
                break
            _replay(incident, action, at)
    finally:
        sla._replaying.reset(token)
        incident.responded_at, incident.resolved_at = responded_at, resolved_at
    for clock in SlaClock.objects.filter(incident=incident):
        label = f"{clock.kind}:{clock.name}" if clock.name else str(clock.kind)
        for event, field, kind in (
            ("warning", "warned_at", Timer.Kind.SLA_WARNING),
            ("breached", "breached_at", Timer.Kind.SLA_BREACH),
        ):
            when = fired.get((label, clock.cycle, event))
            if when is not None:
                setattr(clock, field, when)
                clock.timers.filter(kind=kind, state=Timer.State.PENDING).update(state=Timer.State.CANCELLED)
        clock.save()
    sla.sync_incident(incident)
    count = SlaClock.objects.filter(incident=incident).count()
    timeline.record_sla_event(incident=incident, clock="all", event="recomputed", clocks=count)
    return count


def _replay(incident: Incident, action: str, at: datetime) -> None:
    if action == "classify":
        sla.start_or_retarget(incident, now=at)
    elif action == "clear":
        sla.clear_response(incident, now=at)
    elif action in {"acknowledge", "respond"}:
        incident.responded_at = incident.responded_at or at
        sla.complete(incident, sla.Kind.RESPONSE, now=at)
    elif action == "hold":
        sla.pause(incident, now=at, reason="hold")
    elif action == "resume":
        sla.resume(incident, now=at)
    elif action == "resolve":
        incident.resolved_at = at
        sla.complete(incident, sla.Kind.RESPONSE, now=at)
        sla.complete(incident, sla.Kind.RESOLUTION, now=at)
    elif action == "reopen":
        incident.resolved_at = None
        sla.new_resolution_cycle(incident, now=at)
    elif action in {"close", "cancel"}:
        sla.cancel_all(incident, now=at, reason=action)
