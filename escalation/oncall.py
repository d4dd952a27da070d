"""Who is on call, from a schedule's rotation and overrides; only qualified people are paged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from incidents.models import Incident, QualificationHolder, Team

from .models import Schedule
from .rotation import FAR_FUTURE, Override, Rotation, Shift, next_shift, shift_at

User = get_user_model()


def rotation_for(schedule: Schedule) -> Rotation:
    # .all() so that a prefetch (team_oncall) is used; sorted here, whatever order it came in.
    members = tuple(m.user_id for m in sorted(schedule.members.all(), key=attrgetter("position")))
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


@dataclass(frozen=True)
class OnCallShift:
    """One shift of a schedule as people read it: who (None: nobody), when, and whether an override says so."""

    user: Any
    start: datetime
    end: datetime
    override: bool
    reason: str  # the override's reason label ("Holiday cover", "Swap"); empty for a regular shift

    @property
    def ends(self) -> datetime | None:
        """The end, or None when the shift runs for ever (a rotation without members)."""
        return None if self.end == FAR_FUTURE else self.end


@dataclass(frozen=True)
class OnCall:
    schedule: Schedule
    now: OnCallShift
    next: OnCallShift

    @property
    def shifts(self) -> tuple[tuple[str, OnCallShift], tuple[str, OnCallShift]]:
        return (("Now", self.now), ("Next", self.next))


def team_oncall(team: Team, *, at: datetime) -> list[OnCall]:
    """Who is on call now and next in each of the team's schedules, by schedule slug.

    Four queries whatever the number of schedules, members and overrides: the schedules, their members
    and overrides (prefetched, which rotation_for reads), and the people on shift. Read-only.
    """
    schedules = list(team.schedules.prefetch_related("members", "overrides").order_by("slug"))
    shifts = [(schedule, *now_and_next(schedule, at=at)) for schedule in schedules]
    people = User.objects.in_bulk({s.user_id for _, *pair in shifts for s in pair if s.user_id is not None})

    def shown(schedule: Schedule, shift: Shift) -> OnCallShift:
        reason = ""
        if shift.override:
            override = next(
                (
                    o
                    for o in schedule.overrides.all()
                    if o.user_id == shift.user_id and o.start <= shift.start and shift.end <= o.end
                ),
                None,
            )
            reason = override.get_reason_display() if override is not None else ""
        user = people.get(shift.user_id) if shift.user_id is not None else None
        return OnCallShift(user, shift.start, shift.end, shift.override, str(reason))

    return [
        OnCall(schedule, shown(schedule, now), shown(schedule, upcoming))
        for schedule, now, upcoming in shifts
    ]


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
            QualificationHolder.objects.valid_on(timezone.localdate(at))
            .filter(user_id__in=order, qualification_id=qualification)
            .values_list("user_id", flat=True)
        )
        order = [pk for pk in order if pk in qualified]
    if not order:
        return None
    return User.objects.filter(pk=order[0], is_active=True).first()
