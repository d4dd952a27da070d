"""Major incidents: one parent stands for the same outage reported many times (SPEC section 2).

Children follow their parent: a public update on the parent reaches every child's reporter (through
the outbox), and resolving or closing the parent resolves or closes its children through the
lifecycle (incidents.lifecycle._cascade_to_children). One level only: a parent is never a child.
"""

from __future__ import annotations

from datetime import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from . import notifications, timeline, writes
from .errors import InvalidTransition
from .lifecycle import allowed_actions
from .models import Comment, Incident
from .selectors import content_may_flow, desk_user, incidents_handled_by
from .timeline import Actor


def _check_responder(incident: Incident, actor: Actor) -> None:
    if not desk_user(actor).is_responder:
        raise PermissionDenied("Only responders link incidents to a major incident.")
    if not incidents_handled_by(actor).filter(pk=incident.pk).exists():
        raise PermissionDenied("You may not see this incident.")


@transaction.atomic
def set_parent(
    child: Incident, *, parent: Incident | None, actor: Actor, version: int | None = None
) -> Incident:
    """Make `child` follow the major incident `parent`, or (parent None) stand on its own again.

    Both must be open; the parent may not itself be a child, the child may not have children. Linking
    to the parent it already has changes nothing. Rows are locked parent first, then child.
    """
    locks = sorted({child.pk, *([parent.pk] if parent is not None else [])})
    rows = {row.pk: row for row in writes.lock_many(locks)}
    locked = writes.check_version(rows[child.pk], version)
    _check_responder(locked, actor)
    if locked.is_final:
        raise InvalidTransition(locked, "link", allowed_actions(locked))
    new_parent = rows[parent.pk] if parent is not None else None
    if (new_parent.pk if new_parent else None) == locked.parent_id:
        return locked
    if new_parent is not None:
        _check_parent(locked, new_parent, actor)
    old = Incident.objects.get(pk=locked.parent_id) if locked.parent_id is not None else None
    locked.parent = new_parent

    def record(row: Incident, at: datetime) -> None:
        if new_parent is not None:
            timeline.record_major_incident(
                incident=row, event="linked_to_parent", actor=actor, parent=new_parent.reference
            )
            timeline.record_major_incident(
                incident=new_parent, event="child_linked", actor=actor, child=row.reference
            )
        if old is not None:
            timeline.record_major_incident(
                incident=row, event="unlinked_from_parent", actor=actor, parent=old.reference
            )
            timeline.record_major_incident(
                incident=old, event="child_unlinked", actor=actor, child=row.reference
            )

    return writes.save(locked, fields=["parent"], record=record)


def _check_parent(child: Incident, parent: Incident, actor: Actor) -> None:
    errors = {}
    if parent.pk == child.pk:
        errors["parent"] = "An incident cannot be its own parent."
    elif not incidents_handled_by(actor).filter(pk=parent.pk).exists():
        # First: an incident the actor only reported (or cannot see) says nothing of its state or links.
        errors["parent"] = f"No incident {parent.reference}."
    elif parent.is_final:
        errors["parent"] = f"{parent.reference} is {parent.state}; only an open incident can be a parent."
    elif parent.parent_id is not None:
        errors["parent"] = f"{parent.reference} is itself a child of another incident; link to that one."
    elif Incident.objects.filter(parent_id=child.pk).exists():
        errors["parent"] = f"{child.reference} has children of its own; it cannot become a child."
    elif parent.domain is not None and parent.domain.restricted and parent.domain_id != child.domain_id:
        # Resolving or closing the parent copies its resolution, cause and measures onto the children.
        errors["parent"] = (
            f"{parent.reference} is a {parent.domain.name} incident: only incidents of the same domain can "
            "follow it (its resolution and report would reach people outside the domain)."
        )
    if errors:
        raise ValidationError({k: [v] for k, v in errors.items()})


def forward_public_update(parent: Incident, *, comment: Comment) -> int:
    """A public comment on a major incident reaches every open child's reporter, once per comment, where the
    child's audience may see the parent (selectors.content_may_flow); elsewhere the child gets an internal
    note that an update was withheld. Returns how many children got it.

    Called inside the comment's transaction. Each child gets a public timeline entry pointing at the
    comment (so its portal shows it) and an outbox mail. Internal notes are never forwarded.
    """
    if not comment.public:
        return 0
    children = list(
        Incident.objects.filter(parent_id=parent.pk)
        .open()
        .select_related("domain", "reporter")
        .order_by("pk")
    )
    forwarded = 0
    for child in children:
        if not content_may_flow(parent, child):
            # Asked now: the parent (or the child) may have changed domain since they were linked.
            timeline.record_major_incident(
                incident=child, event="update_withheld", parent=parent.reference,
                reason="the major incident's domain is restricted",
            )  # fmt: skip
            continue
        forwarded += 1
        timeline.record_major_incident(
            incident=child, event="parent_update", public=True, comment=comment, parent=parent.reference
        )
        notifications.notify_child_reporter(child, parent=parent, comment=comment)
    return forwarded
