"""Who is on call, from a schedule's rotation and overrides; only qualified people are paged."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model

from incidents.models import Incident

from .models import Schedule
from .rotation import Override, Rotation, Shift, next_shift, shift_at

User = get_user_model()


def rotation_for(schedule: Schedule) -> Rotation:
    members = tuple(schedule.members.order_by("position").values_list("user_id", flat=True))
    overrides = tuple(Override(o.user_id, o.start, o.end) for o in schedule.overrides.all())
    return Rotation(
        time_zone=schedule.time_zone,
        start=schedule.start,
        shift_length=schedule.shift_length,
        members=members,
        overrides=overrides,
    )


def now_and_next(schedule: Schedule, *, at: datetime) -> tuple[Shift, Shift]:
    rotation = rotation_for(schedule)
    return shift_at(rotation, at), next_shift(rotation, at)


def required_qualification_id(incident: Incident | None) -> int | None:
    if incident is None or incident.category_id is None or incident.category is None:
        return None
    return incident.category.required_qualification_id


def on_call_user(schedule: Schedule, *, at: datetime, incident: Incident | None = None) -> Any:
    """The person to page now: whoever is on call, or, if the incident's category needs a qualification
    they lack, the next qualified member in rotation order. None when nobody qualified is on the schedule."""
    rotation = rotation_for(schedule)
    current = shift_at(rotation, at).user_id
    qualification = required_qualification_id(incident)
    order = list(rotation.members)
    if current is not None and current in order:
        start = order.index(current)
        order = order[start:] + order[:start]
    elif current is not None:
        order = [current, *order]
    if qualification is not None:
        qualified = set(
            User.objects.filter(pk__in=order, qualifications__pk=qualification).values_list("pk", flat=True)
        )
        order = [pk for pk in order if pk in qualified]
    if not order:
        return None
    return User.objects.filter(pk=order[0], is_active=True).first()
