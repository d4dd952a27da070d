"""Incident state transitions. Nothing else assigns Incident.state.

Each action locks the incident row, checks the version and the transition table, changes the
incident, bumps its version and writes one timeline entry in the same transaction. Side effects
(notifications) are queued after commit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from . import hooks, notifications, timeline, writes
from .errors import InvalidTransition, StaleVersion
from .hooks import Event
from .models import Category, Domain, Incident, QualificationHolder, Team
from .problems import check_recurrence_after_commit
from .selectors import content_may_flow, desk_user, incidents_visible_to
from .timeline import Actor
from .transitions import ALLOWED_FROM, REPORTER_ACTIONS, TRANSITIONS, Action, action_between, actions_from

logger = logging.getLogger(__name__)
State = Incident.State

# Priority from impact (rows) and urgency (columns), SPEC section 3.
PRIORITY_MATRIX: dict[tuple[int, int], int] = {
    (1, 1): 1, (1, 2): 2, (1, 3): 3,
    (2, 1): 2, (2, 2): 3, (2, 3): 4,
    (3, 1): 3, (3, 2): 4, (3, 3): 5,
}  # fmt: skip


def priority_for(impact: int, urgency: int) -> int:
    return PRIORITY_MATRIX[(impact, urgency)]


def allowed_actions(incident: Incident, user: Actor = None) -> list[str]:
    """The actions the user may take on the incident now (all of them by state when no user is given)."""
    actions = actions_from(incident.state)
    if user is None:
        return [str(a) for a in actions]
    me = desk_user(user)
    if me.as_responder(incident):
        return [str(a) for a in actions]
    if incident.reporter_id is not None and incident.reporter_id == me.user_id:
        return [str(a) for a in actions if a in REPORTER_ACTIONS]
    return []


def _lock(incident: Incident, action: str, actor: Actor, version: int | None) -> Incident:
    locked = writes.lock(incident, version=version)
    if action not in Action.__members__.values() or locked.state not in TRANSITIONS[Action(action)].sources:
        raise InvalidTransition(locked, action, allowed_actions(locked))
    if actor is not None:
        # The same predicate as every read: an actor never acts on what they may not see.
        if not incidents_visible_to(actor).filter(pk=locked.pk).exists():
            raise PermissionDenied("You may not see this incident.")
        if action not in allowed_actions(locked, actor):
            raise PermissionDenied(f"You may not {action} this incident.")
    return locked


def _commit(
    incident: Incident,
    *,
    actor: Actor,
    action: Action,
    fields: Sequence[str],
    data: dict[str, Any],
    now: datetime,
    held_from: str = "",
) -> Incident:
    """Move the locked incident to the state the table gives for `action` and write it (writes.save)."""
    old_state = incident.state
    incident.state = TRANSITIONS[action].target_from(old_state, held_from=held_from)
    return writes.save(
        incident,
        fields=[*fields, "state"],
        now=now,
        record=lambda row, at: timeline.record_state_changed(
            incident=row, actor=actor, action=action, old=old_state, new=row.state, data=data, at=at
        ),
    )


def _notify_reporter(incident: Incident, event: str) -> None:
    """The reporter's mail goes into the outbox in this transaction (see incidents.notifications)."""
    notifications.notify_reporter(incident, event)


def _shared(parent: Incident, child: Incident, text: str, what: str) -> str:
    """The parent's `text` for a child, if the child's audience may see the parent (selectors.content_may_flow,
    asked now, so a reclassification of either side counts); else a content-free line and a timeline note."""
    if content_may_flow(parent, child):
        return text
    timeline.record_major_incident(
        incident=child, event="content_withheld", parent=parent.reference, field=what,
        reason="the major incident's domain is restricted",
    )  # fmt: skip
    return f"Recorded on the major incident {parent.reference}, whose record is restricted to its domain."


def _cascade_to_children(parent: Incident, action: Action, run: Callable[[Incident], Incident]) -> None:
    """Children of a major incident follow it through their own lifecycle functions (SPEC section 2).

    A child in a state that does not allow the action, or that the actor may not act on, is skipped
    with an internal timeline note; the parent's entry lists which children followed and which did not.
    """
    followed, skipped = [], []
    for child in Incident.objects.filter(parent_id=parent.pk).order_by("pk"):
        try:
            with transaction.atomic():
                run(child)
            followed.append(child.reference)
        except (InvalidTransition, PermissionDenied, ValidationError) as exc:
            skipped.append(child.reference)
            timeline.record_major_incident(
                incident=child, event=f"skipped_{action}", parent=parent.reference, reason=str(exc)
            )
    if followed or skipped:
        timeline.record_major_incident(
            incident=parent, event=f"children_{action}", followed=followed, skipped=skipped
        )


def _require(errors: dict[str, str], **values: Any) -> None:
    for field, value in values.items():
        if value in (None, "") or (isinstance(value, str) and not value.strip()):
            errors[field] = "This field is required."


def _check_team_handles(errors: dict[str, str], team: Team | None, domain: Domain | None, field: str) -> None:
    if (
        team is not None
        and domain is not None
        and domain.restricted
        and not team.domains.filter(pk=domain.pk).exists()
    ):
        errors[field] = f"Team {team.slug} does not handle {domain.slug} incidents."


def _check_member(errors: dict[str, str], assignee: Any, team: Team | None, field: str = "assignee") -> None:
    if (
        assignee is not None
        and team is not None
        and not team.memberships.filter(user_id=assignee.pk).exists()
    ):
        errors[field] = f"{assignee.get_username()} is not a member of team {team.slug}."


def _check_qualified(
    errors: dict[str, str], assignee: Any, category: Category | None, field: str = "assignee"
) -> None:
    """An incident whose category requires a qualification goes only to someone who holds it today."""
    if assignee is None or category is None or category.required_qualification_id is None:
        return
    held = QualificationHolder.objects.valid_on(timezone.localdate()).filter(
        qualification_id=category.required_qualification_id, user_id=assignee.pk
    )
    if not held.exists():
        errors[field] = (
            f"{assignee.get_username()} does not hold the qualification "
            f"{category.required_qualification.slug if category.required_qualification else ''} "
            f"that category {category.path} requires."
        )


def _raise(errors: dict[str, str]) -> None:
    if errors:
        raise ValidationError({field: [message] for field, message in errors.items()})


def classification_errors(
    *, domain: Domain, category: Category, team: Team, harm_level: str = ""
) -> dict[str, str]:
    """What `classify_incident` refuses of a classification without an assignee or a priority override, as
    {field: message} (empty when it would accept it): for a caller that opens an incident classified."""
    errors: dict[str, str] = {}
    if category.domain_id != domain.pk:
        errors["category"] = f"Category {category.path} is not in domain {domain.slug}."
    if domain.requires_harm_level and not harm_level:
        errors["harm_level"] = f"A patient-impact level is required for {domain.slug} incidents."
    _check_team_handles(errors, team, domain, "team")
    return errors


@transaction.atomic
def classify_incident(
    incident: Incident,
    *,
    actor: Actor,
    domain: Domain,
    category: Category,
    impact: int,
    urgency: int,
    team: Team | None = None,
    assignee: Any = None,
    outcome: str = "",
    harm_level: str = "",
    priority: int | None = None,
    priority_reason: str = "",
    version: int | None = None,
) -> Incident:
    """Set domain, category, impact, urgency, priority and the responsible team (by default the category's).

    Allowed from received and classified (reclassification). Classifying again with the same values
    changes nothing. A priority other than the matrix's needs a reason, recorded in the timeline. The
    assignee must be a member of the team and hold the category's required qualification.
    """
    incident = _lock(incident, Action.CLASSIFY, actor, version)
    errors: dict[str, str] = {}
    if team is None and category is not None and category.default_team_id is not None:
        team = category.default_team
    _require(errors, domain=domain, category=category, impact=impact, urgency=urgency)
    if team is None:
        errors["team"] = "This field is required: the category has no default team."
    _raise(errors)
    if team is None:  # for the type checker: _raise refused it above
        raise ValidationError({"team": ["This field is required."]})
    if category.domain_id != domain.pk:
        errors["category"] = f"Category {category.path} is not in domain {domain.slug}."
    if domain.requires_harm_level and not harm_level:
        errors["harm_level"] = f"A patient-impact level is required for {domain.slug} incidents."
    matrix = priority_for(impact, urgency)
    if priority is not None and priority != matrix and not priority_reason.strip():
        errors["priority_reason"] = "Overriding the priority of the matrix needs a reason."
    _check_team_handles(errors, team, domain, "team")
    _check_member(errors, assignee, team)
    _check_qualified(errors, assignee, category)
    _raise(errors)

    final_priority = priority if priority is not None else matrix
    new_values: dict[str, Any] = {
        "domain_id": domain.pk,
        "category_id": category.pk,
        "impact": impact,
        "urgency": urgency,
        "team_id": team.pk,
        "priority": final_priority,
        "priority_override_reason": priority_reason.strip() if final_priority != matrix else "",
    }
    if assignee is not None:
        new_values["assignee_id"] = assignee.pk
    if outcome:
        new_values["outcome"] = outcome
    if harm_level:
        new_values["harm_level"] = harm_level
    changes = {k: [getattr(incident, k), v] for k, v in new_values.items() if getattr(incident, k) != v}
    if incident.state == State.CLASSIFIED and not changes:
        return incident

    now = timezone.now()
    old_state = incident.state
    for field, value in new_values.items():
        setattr(incident, field, value)
    if incident.classified_at is None:
        incident.classified_at = now
    _commit(
        incident,
        actor=actor,
        action=Action.CLASSIFY,
        fields=[*new_values, "classified_at"],
        data={"changes": {k.removesuffix("_id"): v for k, v in changes.items()}},
        now=now,
    )
    if final_priority != matrix and "priority" in changes:
        timeline.record_priority_overridden(
            incident=incident, actor=actor, matrix=matrix, priority=final_priority, reason=priority_reason
        )
    hooks.announce(Event.CLASSIFIED, incident, now=now, first=old_state == State.RECEIVED)
    # The first classification counts the incident even when the reporter had already chosen its category.
    if "category_id" in changes or old_state == State.RECEIVED:
        check_recurrence_after_commit(incident)
    return incident


@transaction.atomic
def acknowledge_incident(
    incident: Incident,
    *,
    actor: Actor,
    assignee: Any = None,
    version: int | None = None,
    response: bool = True,
) -> Incident:
    """Take ownership: classified -> responding; an escalated incident stays escalated.

    The first response time is recorded once. `response=False` is the machine's step on its way to a
    monitoring resolve (intake.events): the state moves, but nobody responded, so `responded_at` stays
    unset (the response clock ends as cleared, escalation.sla.clear_response). Acknowledging an escalated
    incident that was already acknowledged since its last escalation, by the same assignee, changes nothing.
    """
    incident = _lock(incident, Action.ACKNOWLEDGE, actor, version)
    assignee = (
        assignee
        if assignee is not None
        else (actor if actor is not None and actor.is_authenticated else None)
    )
    errors: dict[str, str] = {}
    _check_member(errors, assignee, incident.team)
    _check_qualified(errors, assignee, incident.category)
    _raise(errors)
    if (
        incident.state == State.ESCALATED
        and incident.acknowledged_at is not None
        and incident.escalated_at is not None
        and incident.acknowledged_at >= incident.escalated_at
        and (assignee is None or incident.assignee_id == assignee.pk)
    ):
        return incident

    now = timezone.now()
    fields = ["acknowledged_at"]
    incident.acknowledged_at = now
    if incident.responded_at is None and response:
        incident.responded_at = now
        fields.append("responded_at")
    if assignee is not None:
        incident.assignee_id = assignee.pk
        fields.append("assignee")
    data: dict[str, Any] = {"assignee": assignee.get_username() if assignee is not None else None}
    if not response:
        data["response"] = False  # the timeline and a replay of it know this step was no response
    _commit(
        incident,
        actor=actor,
        action=Action.ACKNOWLEDGE,
        fields=fields,
        data=data,
        now=now,
    )
    hooks.announce(Event.ACKNOWLEDGED, incident, now=now)
    return incident


@transaction.atomic
def escalate_incident(
    incident: Incident,
    *,
    actor: Actor,
    team: Team,
    reason: str,
    assignee: Any = None,
    version: int | None = None,
    by_policy: bool = False,
) -> Incident:
    """Hand the incident to a more specialised team (functional) or to management (hierarchical).

    Raises the escalation level by one each time; the new team takes over and is notified, and the
    assignee is cleared unless one of its members is named. By hand, the new team's escalation chain
    starts; from a policy step (`by_policy`), the running chain goes on.
    """
    incident = _lock(incident, Action.ESCALATE, actor, version)
    errors: dict[str, str] = {}
    _require(errors, team=team, reason=reason)
    _raise(errors)
    _check_team_handles(errors, team, incident.domain, "team")
    _check_member(errors, assignee, team)
    _check_qualified(errors, assignee, incident.category)
    _raise(errors)

    now = timezone.now()
    old_team = incident.team.slug if incident.team else None
    incident.team = team
    incident.assignee = assignee
    incident.escalation_level += 1
    incident.escalated_at = now
    data = {
        "from_team": old_team,
        "team": team.slug,
        "level": incident.escalation_level,
        "reason": reason.strip(),
        "assignee": assignee.get_username() if assignee is not None else None,
    }
    _commit(
        incident,
        actor=actor,
        action=Action.ESCALATE,
        fields=["team", "assignee", "escalation_level", "escalated_at"],
        data={**data, "by_policy": by_policy},
        now=now,
    )
    hooks.announce(Event.ESCALATED, incident, now=now, by_policy=by_policy, reason=reason.strip())
    return incident


def _notify_assignee(incident: Incident, assignee: Any, *, actor: Actor, note: str) -> None:
    """The new assignee is told by e-mail through the outbox, once per version of the incident."""
    who = (
        actor.get_full_name() or actor.get_username() if actor is not None and actor.is_authenticated else ""
    )
    body = (
        f"{who or 'The desk'} assigned {incident.reference} to you: {incident.title}\n"
        + (f"\nNote: {note}\n" if note else "")
        + f"\nOpen it in the console: {settings.SITE_URL}{reverse('web:incident', args=[incident.reference])}\n"
    )
    outbox = hooks.outbox()
    ids = outbox.queue_message(
        incident=incident,
        event="assigned",
        cause=f"assigned:{incident.pk}:{incident.version}",
        address=assignee.email,
        subject=f"[{incident.reference}] Assigned to you: {incident.title}",
        body=body,
        user_id=assignee.pk,
    )
    outbox.deliver_after_commit(ids)


@transaction.atomic
def assign_incident(
    incident: Incident,
    *,
    actor: Actor,
    assignee: Any = None,
    team: Team | None = None,
    note: str = "",
    version: int | None = None,
) -> Incident:
    """Hand the incident to a colleague (a member of its team) or transfer it to another team that handles
    its domain, optionally naming the new assignee there. The state does not change and no escalation is
    counted; the new assignee is notified by e-mail, a new team as a team. Allowed from classified,
    responding, escalated and on hold. Assigning to the assignee and team it already has changes nothing.
    """
    incident = _lock(incident, Action.ASSIGN, actor, version)
    errors: dict[str, str] = {}
    if assignee is None and team is None:
        errors["assignee"] = "Name an assignee, a team, or both."
    _raise(errors)
    new_team = team if team is not None else incident.team
    if (
        team is not None
        and incident.domain is not None
        and not team.domains.filter(pk=incident.domain.pk).exists()
    ):
        errors["team"] = f"Team {team.name} does not handle {incident.domain.name} incidents."
    _check_member(errors, assignee, new_team)
    _check_qualified(errors, assignee, incident.category)
    _raise(errors)
    team_changed = new_team is not None and new_team.pk != incident.team_id
    new_assignee_id = (
        assignee.pk if assignee is not None else (None if team_changed else incident.assignee_id)
    )
    if not team_changed and new_assignee_id == incident.assignee_id:
        return incident

    now = timezone.now()
    old_team, old_assignee = incident.team, incident.assignee
    incident.team = new_team
    incident.assignee_id = new_assignee_id
    data = {
        "from_team": old_team.slug if old_team else None,
        "team": new_team.slug if new_team else None,
        "from_assignee": old_assignee.get_username() if old_assignee else None,
        "assignee": assignee.get_username() if assignee is not None else None,
        "note": note.strip(),
    }
    writes.save(
        incident,
        fields=["team", "assignee"],
        now=now,
        record=lambda row, at: timeline.record_assigned(incident=row, actor=actor, data=data, at=at),
    )
    if assignee is not None:
        _notify_assignee(incident, assignee, actor=actor, note=note.strip())
    if team_changed and new_team is not None:
        outbox = hooks.outbox()
        outbox.deliver_after_commit(
            outbox.queue_team(
                incident,
                team=new_team,
                event="assigned",
                detail=f"transferred to {new_team.name}" + (f": {note.strip()}" if note.strip() else ""),
                cause=f"assigned-team:{incident.pk}:{incident.version}",
            )
        )
    # No lifecycle event: the state, the clocks and the running escalation chain stay as they are.
    return incident


@transaction.atomic
def hold_incident(
    incident: Incident, *, actor: Actor, reason: str, note: str = "", version: int | None = None
) -> Incident:
    """Wait for the reporter or a vendor. SLA clocks pause until the incident is resumed."""
    incident = _lock(incident, Action.HOLD, actor, version)
    if reason not in Incident.HoldReason.values:
        raise ValidationError({"reason": [f"Must be one of: {', '.join(Incident.HoldReason.values)}."]})
    now = timezone.now()
    old_state = incident.state
    incident.held_from = old_state
    incident.hold_reason = reason
    incident.held_at = now
    _commit(
        incident,
        actor=actor,
        action=Action.HOLD,
        fields=["held_from", "hold_reason", "held_at"],
        data={"reason": reason, "note": note.strip()},
        now=now,
    )
    hooks.announce(Event.HELD, incident, now=now, reason=reason)
    return incident


@transaction.atomic
def resume_incident(incident: Incident, *, actor: Actor, version: int | None = None) -> Incident:
    """Return to the state the incident was held from; SLA clocks run again and their deadlines move
    by the paused business time."""
    incident = _lock(incident, Action.RESUME, actor, version)
    now = timezone.now()
    paused = now - incident.held_at if incident.held_at else None
    held_from = incident.held_from
    incident.held_from = ""
    incident.hold_reason = ""
    incident.held_at = None
    data = {"paused_seconds": int(paused.total_seconds()) if paused is not None else 0}
    fields = ["held_from", "hold_reason", "held_at"]
    _commit(
        incident, actor=actor, action=Action.RESUME, fields=fields, data=data, now=now, held_from=held_from
    )
    hooks.announce(Event.RESUMED, incident, now=now)
    return incident


@transaction.atomic
def resolve_incident(
    incident: Incident, *, actor: Actor, summary: str, version: int | None = None
) -> Incident:
    """Service restored or harm contained. The reporter is notified; the auto-close period starts."""
    incident = _lock(incident, Action.RESOLVE, actor, version)
    errors: dict[str, str] = {}
    _require(errors, summary=summary)
    _raise(errors)
    now = timezone.now()
    incident.resolved_at = now
    incident.resolution_summary = summary.strip()
    _commit(
        incident,
        actor=actor,
        action=Action.RESOLVE,
        fields=["resolved_at", "resolution_summary"],
        data={"summary": incident.resolution_summary},
        now=now,
    )
    hooks.announce(Event.RESOLVED, incident, now=now)
    _notify_reporter(incident, "resolved")
    _cascade_to_children(
        incident,
        Action.RESOLVE,
        lambda child: resolve_incident(
            child, actor=actor, summary=_shared(incident, child, incident.resolution_summary, "resolution")
        ),
    )
    return incident


@transaction.atomic
def reopen_incident(incident: Incident, *, actor: Actor, reason: str, version: int | None = None) -> Incident:
    """The fix did not hold: back to responding, a new resolution cycle, reopen count + 1."""
    incident = _lock(incident, Action.REOPEN, actor, version)
    errors: dict[str, str] = {}
    _require(errors, reason=reason)
    _raise(errors)
    now = timezone.now()
    incident.reopen_count += 1
    incident.resolved_at = None
    _commit(
        incident,
        actor=actor,
        action=Action.REOPEN,
        fields=["reopen_count", "resolved_at"],
        data={"reason": reason.strip()},
        now=now,
    )
    hooks.announce(Event.REOPENED, incident, now=now)
    return incident


@transaction.atomic
def close_incident(
    incident: Incident,
    *,
    actor: Actor,
    cause: str,
    measures: str,
    resolution_code: str,
    auto: bool = False,
    version: int | None = None,
) -> Incident:
    """Record cause and measures and freeze the record; the reporter gets the short report.

    ``auto`` marks a close by the quiet-period sweep, whose cause and measures come from the
    resolution summary.
    """
    incident = _lock(incident, Action.CLOSE, actor, version)
    errors: dict[str, str] = {}
    _require(errors, cause=cause, measures=measures, resolution_code=resolution_code)
    if resolution_code and resolution_code not in Incident.ResolutionCode.values:
        errors["resolution_code"] = f"Must be one of: {', '.join(Incident.ResolutionCode.values)}."
    _raise(errors)
    now = timezone.now()
    incident.closed_at = now
    incident.cause = cause.strip()
    incident.measures = measures.strip()
    incident.resolution_code = resolution_code
    incident.auto_closed = auto
    _commit(
        incident,
        actor=actor,
        action=Action.CLOSE,
        fields=["closed_at", "cause", "measures", "resolution_code", "auto_closed"],
        data={
            "cause": incident.cause,
            "measures": incident.measures,
            "resolution_code": resolution_code,
            "auto": auto,
        },
        now=now,
    )
    hooks.announce(Event.CLOSED, incident, now=now)
    _notify_reporter(incident, "closed")
    _cascade_to_children(
        incident,
        Action.CLOSE,
        lambda child: close_incident(
            child, actor=actor, cause=_shared(incident, child, incident.cause, "cause"),
            measures=_shared(incident, child, incident.measures, "measures"), resolution_code=resolution_code,
            auto=auto,
        ),
    )  # fmt: skip
    return incident


@transaction.atomic
def cancel_incident(
    incident: Incident,
    *,
    actor: Actor,
    reason: str,
    duplicate_of: Incident | None = None,
    note: str = "",
    version: int | None = None,
) -> Incident:
    """Duplicate, spam, not an incident or withdrawn: final, timers stop."""
    incident = _lock(incident, Action.CANCEL, actor, version)
    errors: dict[str, str] = {}
    if reason not in Incident.CancelReason.values:
        errors["reason"] = f"Must be one of: {', '.join(Incident.CancelReason.values)}."
    if duplicate_of is not None:
        if reason != Incident.CancelReason.DUPLICATE:
            errors["duplicate_of"] = "Only a duplicate names the surviving incident."
        elif duplicate_of.pk == incident.pk:
            errors["duplicate_of"] = "An incident cannot be a duplicate of itself."
        elif not desk_user(actor).as_responder(duplicate_of):
            # Its reference would stand on this incident before everyone who sees it: only one the actor
            # handles (one they only reported answers as a missing one).
            errors["duplicate_of"] = f"No incident {duplicate_of.reference}."
    _raise(errors)
    now = timezone.now()
    incident.cancelled_at = now
    incident.cancel_reason = reason
    incident.duplicate_of = duplicate_of
    data = {
        "reason": reason,
        "note": note.strip(),
        "duplicate_of": duplicate_of.reference if duplicate_of else None,
    }
    _commit(
        incident,
        actor=actor,
        action=Action.CANCEL,
        fields=["cancelled_at", "cancel_reason", "duplicate_of"],
        data=data,
        now=now,
    )
    hooks.announce(Event.CANCELLED, incident, now=now)
    return incident


@transaction.atomic
def confirm_resolution(incident: Incident, *, actor: Actor, version: int | None = None) -> Incident:
    """The reporter says "this fixed it": recorded as ``reporter_confirmed_at`` and a public timeline entry.

    Allowed only in ``resolved``. It does not close the incident: closing needs the cause and the
    measures (SPEC section 2), which the desk records, or the quiet-period auto-close. ``actor`` is the
    signed-in reporter, a responder recording it for them, or None for the holder of the private link.
    Confirming twice within one resolution changes nothing; after a reopen and a new resolution the
    reporter may confirm again.
    """
    locked = writes.lock(incident, version=version)
    if locked.state != State.RESOLVED:
        raise InvalidTransition(locked, "confirm", allowed_actions(locked, actor))
    if actor is not None and actor.is_authenticated:
        me = desk_user(actor)
        if not incidents_visible_to(actor).filter(pk=locked.pk).exists():
            raise PermissionDenied("You may not see this incident.")
        if not me.as_responder(locked) and locked.reporter_id != me.user_id:
            raise PermissionDenied("Only the reporter or a responder may confirm the resolution.")
    confirmed = locked.reporter_confirmed_at
    if confirmed is not None and locked.resolved_at is not None and confirmed >= locked.resolved_at:
        return locked
    now = timezone.now()
    locked.reporter_confirmed_at = now
    return writes.save(
        locked,
        fields=["reporter_confirmed_at"],
        now=now,
        record=lambda row, at: timeline.record_reporter_confirmed(incident=row, actor=actor, at=at),
    )


ACTIONS: dict[Action, Callable[..., Incident]] = {
    Action.CLASSIFY: classify_incident,
    Action.ACKNOWLEDGE: acknowledge_incident,
    Action.ESCALATE: escalate_incident,
    Action.HOLD: hold_incident,
    Action.RESUME: resume_incident,
    Action.RESOLVE: resolve_incident,
    Action.REOPEN: reopen_incident,
    Action.CLOSE: close_incident,
    Action.CANCEL: cancel_incident,
    Action.ASSIGN: assign_incident,
}


def auto_close_resolved(*, now: datetime, quiet_period: timedelta, limit: int = 500) -> int:
    """Close resolved incidents nobody reopened within the quiet period. Safe to run concurrently."""
    cutoff = now - quiet_period
    closed = 0
    ids = list(
        Incident.objects.filter(state=State.RESOLVED, resolved_at__lte=cutoff)
        .order_by("resolved_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        incident = Incident(pk=pk)
        with transaction.atomic():
            locked = writes.lock(pk)
            if locked.state != State.RESOLVED or locked.resolved_at is None or locked.resolved_at > cutoff:
                continue
            summary = locked.resolution_summary or "Resolved; no further information."
            close_incident(
                incident,
                actor=None,
                cause=f"(from the resolution summary) {summary}",
                measures=f"(from the resolution summary) {summary}",
                resolution_code=Incident.ResolutionCode.OTHER,
                auto=True,
            )
            closed += 1
    return closed


__all__ = [
    "ACTIONS",
    "ALLOWED_FROM",
    "REPORTER_ACTIONS",
    "TRANSITIONS",
    "Action",
    "InvalidTransition",
    "StaleVersion",
    "action_between",
    "allowed_actions",
    "confirm_resolution",
]
