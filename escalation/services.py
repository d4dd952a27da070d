"""What the incident lifecycle tells the SLA and escalation engine. Called inside the lifecycle's
transaction, under the incident's row lock; each call is safe to repeat."""

from __future__ import annotations

from datetime import datetime

from incidents.models import Incident

from . import chains, notify, sla
from .engine import _enqueue


def on_classified(incident: Incident, *, now: datetime, first: bool) -> None:
    """Clocks start (or re-target after a priority change); the team's escalation chain starts once."""
    sla.start_or_retarget(incident, now=now)
    if first:
        chains.start(incident, now=now, reason="classified")


def on_acknowledged(incident: Incident, *, now: datetime) -> None:
    sla.complete(incident, sla.Kind.RESPONSE, now=now)
    chains.stop(incident, now=now, reason="acknowledged")


def on_public_reply(incident: Incident, *, now: datetime) -> None:
    sla.complete(incident, sla.Kind.RESPONSE, now=now)


def on_escalated(incident: Incident, *, now: datetime, by_policy: bool, reason: str) -> None:
    """The new team is told; a hand escalation starts the new team's chain (a policy step does not)."""
    from django.db import transaction

    ids = notify.queue(
        incident,
        event="escalated",
        detail=f"Escalated to {incident.team.name if incident.team else 'a new team'} (level {incident.escalation_level}): {reason}",
        cause=f"escalated:{incident.pk}:{incident.version}",
        recipients=notify.team_recipients(incident, incident.team),
    )
    transaction.on_commit(lambda: _enqueue(ids))
    if not by_policy:
        chains.start(incident, now=now, reason="escalated")


def on_hold(incident: Incident, *, now: datetime, reason: str) -> None:
    sla.pause(incident, now=now, reason=reason)
    chains.pause(incident, now=now)


def on_resumed(incident: Incident, *, now: datetime) -> None:
    sla.resume(incident, now=now)
    chains.resume(incident, now=now)


def on_resolved(incident: Incident, *, now: datetime) -> None:
    sla.complete(incident, sla.Kind.RESPONSE, now=now)
    sla.complete(incident, sla.Kind.RESOLUTION, now=now)
    chains.stop(incident, now=now, reason="resolved")


def on_reopened(incident: Incident, *, now: datetime) -> None:
    sla.new_resolution_cycle(incident, now=now)


def on_ended(incident: Incident, *, now: datetime, reason: str) -> None:
    """Closed or cancelled: every timer stops."""
    sla.cancel_all(incident, now=now, reason=reason)
    chains.stop(incident, now=now, reason=reason)
