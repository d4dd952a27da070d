"""Auto-assignment: a team's newly classified (or escalated-to) incidents get an assignee, in turn or to
the least loaded qualified member, with a timeline entry saying who and why."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count
from django.utils import timezone

from incidents import timeline, writes
from incidents.models import Incident, Membership, QualificationHolder, Team

from . import configcache
from .models import AutoAssign

Mode = AutoAssign.Mode


def candidates(incident: Incident, team: Team, *, now: datetime) -> list[int]:
    """Active members of the team (in membership order) who hold the qualification the category requires."""
    members = list(
        Membership.objects.filter(team=team, user__is_active=True)
        .order_by("pk")
        .values_list("user_id", flat=True)
    )
    needed = (
        incident.category.required_qualification_id if incident.category_id and incident.category else None
    )
    if needed is None:
        return members
    qualified = set(
        QualificationHolder.objects.valid_on(timezone.localdate(now))
        .filter(qualification_id=needed, user_id__in=members)
        .values_list("user_id", flat=True)
    )
    return [pk for pk in members if pk in qualified]


def open_load(user_ids: list[int]) -> dict[int, int]:
    """Open incidents assigned to each person."""
    rows = (
        Incident.objects.filter(assignee_id__in=user_ids, state__in=Incident.OPEN_STATES)
        .values("assignee_id")
        .annotate(n=Count("pk"))
    )
    load = dict.fromkeys(user_ids, 0)
    load.update({row["assignee_id"]: row["n"] for row in rows})
    return load


def auto_assign(incident: Incident, *, now: datetime) -> Any:
    """Assign an unassigned incident by its team's rule (off: nothing). Called by the lifecycle's hooks
    under the incident's lock; an incident that has an assignee is left alone, so calling it twice assigns
    once. Returns the user assigned, or None."""
    if incident.assignee_id is not None or incident.team_id is None:
        return None
    team_id = incident.team_id
    if configcache.active() and not configcache.cached(
        ("auto_assign", team_id),
        lambda: AutoAssign.objects.filter(team_id=team_id).exclude(mode=Mode.OFF).exists(),
    ):
        return None  # no rule, or off (known from the configuration as stamped): nothing to lock
    rule = AutoAssign.objects.select_for_update().filter(team_id=incident.team_id).first()
    if rule is None or rule.mode == Mode.OFF:
        return None
    if incident.team is None:
        return None
    pool = candidates(incident, incident.team, now=now)
    if not pool:
        timeline.record_escalation_event(
            incident=incident, event="auto_assign_skipped", mode=rule.mode,
            reason=f"Nobody in team {incident.team.slug} is qualified for this category.",
        )  # fmt: skip
        return None
    load = open_load(pool)
    # The pool's users in one read (the entry names the assignee and everyone's load), not one read each.
    users = {user.pk: user for user in get_user_model().objects.filter(pk__in=pool)}
    if rule.mode == Mode.ROUND_ROBIN:
        after = pool.index(rule.last_assigned_id) + 1 if rule.last_assigned_id in pool else 0
        chosen = pool[after % len(pool)]
        why = (
            f"Round-robin in team {incident.team.slug}: the next qualified member after "
            f"{_name(rule.last_assigned_id, users)}."
            if rule.last_assigned_id in pool
            else f"Round-robin in team {incident.team.slug}: the first qualified member."
        )
    else:
        chosen = min(pool, key=lambda pk: (load[pk], pool.index(pk)))
        why = (
            f"Least loaded in team {incident.team.slug}: {load[chosen]} open incident(s), "
            f"the fewest of {len(pool)} qualified member(s)."
        )
    rule.last_assigned_id = chosen
    rule.save(update_fields=["last_assigned"])
    incident.assignee = users.get(chosen)
    incident.assignee_id = chosen
    writes.save(
        incident,
        fields=["assignee"],
        now=now,
        record=lambda row, at: timeline.record_escalation_event(
            incident=row,
            event="auto_assigned",
            mode=rule.mode,
            assignee=_name(chosen, users),
            reason=why,
            load={_name(pk, users): n for pk, n in load.items()},
        ),
    )
    return incident.assignee


def _name(user_id: int | None, known: dict[int, Any]) -> str:
    if user_id is None:
        return "nobody"
    if user_id in known:
        return str(known[user_id].get_username())
    user = get_user_model().objects.filter(pk=user_id).only("username").first()
    return user.get_username() if user is not None else "nobody"
