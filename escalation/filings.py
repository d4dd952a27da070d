"""Reports filed with an authority: recording one meets the incident's reporting target of that name."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from incidents import writes
from incidents.errors import InvalidTransition
from incidents.models import Incident
from incidents.selectors import desk_user, incidents_visible_to
from incidents.timeline import Actor

from . import sla
from .models import ReportFiling

# A clock a little ahead of the server's is not a report filed in the future.
CLOCK_SKEW = timedelta(minutes=5)


class AlreadyFiled(InvalidTransition):
    """The target's report was filed before, under another reference (409)."""

    def describe(self, obj: object, action: str, allowed: list[str]) -> str:
        return f"The report for {action} was filed already."


def may_file(incident: Incident, actor: Actor) -> bool:
    """The incident's team and the privacy officer (who sees confidential reporters) file its reports."""
    return desk_user(actor).may_file_reports(incident)


@transaction.atomic
def file_report(
    incident: Incident,
    *,
    actor: Actor,
    target: str,
    reference: str,
    filed_at: datetime | None = None,
    note: str = "",
) -> ReportFiling:
    """Record that the report for the reporting target `target` was filed (by `actor`, at `filed_at`, default
    now, under the authority's `reference`); the target ends met, or breached if it was late.

    Only the incident's team and the privacy officer may; an unknown target is a ValidationError naming
    `target`. Filing the same target again with the same reference returns the first filing and changes
    nothing; with another reference it is refused (AlreadyFiled, a 409).
    """
    if actor is not None and not incidents_visible_to(actor).filter(pk=incident.pk).exists():
        raise PermissionDenied("You may not see this incident.")
    incident = writes.lock(incident)
    if actor is not None and not may_file(incident, actor):
        raise PermissionDenied("Only the incident's team and the privacy officer file its reports.")
    now = timezone.now()
    filed_at = filed_at or now
    clocks = {clock.name: clock for clock in sla.target_clocks(incident)}
    errors: dict[str, list[str]] = {}
    if target not in clocks:
        known = ", ".join(sorted(clocks)) or "none"
        errors["target"] = [f"This incident has no reporting target {target!r} (its targets: {known})."]
    if not reference.strip():
        errors["reference"] = ["This field is required."]
    if filed_at > now + CLOCK_SKEW:
        errors["filed_at"] = ["A report cannot be filed in the future."]
    elif filed_at < incident.received_at:
        errors["filed_at"] = ["A report cannot be filed before the incident was received."]
    if errors:
        raise ValidationError(errors)
    existing = ReportFiling.objects.filter(incident=incident, target=target).first()
    if existing is not None:
        if existing.reference == reference.strip():
            return existing
        raise AlreadyFiled(incident, target, [])
    filing = ReportFiling.objects.create(
        incident=incident, target=target, filed_by=actor if actor is not None and actor.is_authenticated else None,
        filed_at=filed_at, reference=reference.strip(), note=note.strip(),
    )  # fmt: skip
    sla.file_target(
        incident, clocks[target], filed_at=filed_at, reference=filing.reference,
        filed_by=filing.filed_by.get_username() if filing.filed_by is not None else None, note=filing.note,
    )  # fmt: skip
    return filing
