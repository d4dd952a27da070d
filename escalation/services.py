"""What the incident lifecycle tells the SLA and escalation engine: receivers of the lifecycle's hooks
(incidents.hooks), connected in EscalationConfig.ready(). Called inside the lifecycle's transaction, under
the incident's row lock; each call is safe to repeat."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from incidents import hooks
from incidents.hooks import Event
from incidents.inserts import bulk_insert
from incidents.models import Incident, Team

from . import assignment, chains, notify, oncall, sla
from .delivery import deliver_after_commit


def on_classified(incident: Incident, *, now: datetime, first: bool, fresh: bool = False) -> None:
    """Clocks start (or re-target after a priority change); the team's escalation chain starts once; an
    unassigned incident is assigned by the team's auto-assign rule.

    `fresh`: the incident was opened classified in this transaction (incidents.services.
    create_classified_incident), so nothing of it exists yet: the clocks, the chain and their timers are
    inserted, each table once, without looking for running ones first."""
    if fresh:
        policy, clocks = getattr(incident, "_sla_plan", None) or sla.plan_fresh(incident)
        timers = sla.write_fresh(incident, policy, clocks)
        assignment.auto_assign(incident, now=now)
        timers += chains.start_fresh(incident, now=now, reason="classified", sla_policy=policy, clocks=clocks)
        bulk_insert(timers)
        return
    sla.start_or_retarget(incident, now=now)
    assignment.auto_assign(incident, now=now)
    if first:
        chains.start(incident, now=now, reason="classified")


def on_opening(incident: Incident, *, now: datetime) -> None:
    """Before the row of an incident opened classified is written: its clocks are planned and their due
    times set on it, so that the row is written once with them (`on_classified` with fresh=True inserts them)."""
    incident._sla_plan = sla.plan_fresh(incident)  # type: ignore[attr-defined]


def on_acknowledged(incident: Incident, *, now: datetime) -> None:
    sla.complete(incident, sla.Kind.RESPONSE, now=now)
    chains.stop(incident, now=now, reason="acknowledged")


def on_public_reply(incident: Incident, *, now: datetime) -> None:
    sla.complete(incident, sla.Kind.RESPONSE, now=now)


def on_escalated(incident: Incident, *, now: datetime, by_policy: bool, reason: str) -> None:
    """The new team is told; a hand escalation starts the new team's chain (a policy step does not)."""
    ids = notify.queue(
        incident,
        event="escalated",
        detail=f"Escalated to {incident.team.name if incident.team else 'a new team'} (level {incident.escalation_level}): {reason}",
        cause=f"escalated:{incident.pk}:{incident.version}",
        recipients=notify.team_recipients(incident, incident.team),
    )
    deliver_after_commit(ids)
    assignment.auto_assign(incident, now=now)
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


def on_closed(incident: Incident, *, now: datetime) -> None:
    on_ended(incident, now=now, reason="closed")


def on_cancelled(incident: Incident, *, now: datetime) -> None:
    on_ended(incident, now=now, reason="cancelled")


RECEIVERS: dict[Event, hooks.Receiver] = {
    Event.OPENING: on_opening,
    Event.CLASSIFIED: on_classified,
    Event.ACKNOWLEDGED: on_acknowledged,
    Event.PUBLIC_REPLY: on_public_reply,
    Event.ESCALATED: on_escalated,
    Event.HELD: on_hold,
    Event.RESUMED: on_resumed,
    Event.RESOLVED: on_resolved,
    Event.REOPENED: on_reopened,
    Event.CLOSED: on_closed,
    Event.CANCELLED: on_cancelled,
}


def connect() -> None:
    """Hang the SLA clocks, the escalation chains, the outbox and the on-call view off the incidents app."""
    for event, receiver in RECEIVERS.items():
        hooks.connect(event, receiver)
    hooks.provide_outbox(
        hooks.Outbox(
            queue_message=notify.queue_message,
            queue_team=notify.queue_team,
            deliver_after_commit=deliver_after_commit,
        )
    )
    hooks.connect_team_page(_team_page)


def _team_page(team: Team, at: datetime) -> dict[str, Any]:
    return {"oncall": oncall.team_oncall(team, at=at)}
