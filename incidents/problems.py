"""Problem management (SPEC section 6): records, their state, linked incidents, follow-up actions with
daily reminders, and the recurrence check that proposes a record once.

Every write locks the problem row, checks its version, saves `update_fields` and bumps the version;
linking writes a timeline entry on each incident (incidents.writes). Mails go through the outbox
(incidents.hooks.outbox).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import BooleanField, QuerySet
from django.db.models.expressions import RawSQL
from django.utils import timezone

from . import hooks, timeline, writes
from .errors import ProblemTransitionRefused, StaleProblemVersion
from .models import Category, FollowUpAction, Incident, Problem, Team
from .selectors import desk_user, incidents_handled_by, significant_words
from .timeline import Actor

logger = logging.getLogger(__name__)
PS = Problem.State

# The whole state table of a problem: state -> the states it may move to.
PROBLEM_TRANSITIONS: dict[str, frozenset[str]] = {
    PS.PROPOSED: frozenset({PS.OPEN, PS.CLOSED}),
    PS.OPEN: frozenset({PS.KNOWN_ERROR, PS.RESOLVED, PS.CLOSED}),
    PS.KNOWN_ERROR: frozenset({PS.RESOLVED, PS.CLOSED}),
    PS.RESOLVED: frozenset({PS.OPEN, PS.CLOSED}),
    PS.CLOSED: frozenset(),
}
EDITABLE_FIELDS = ("title", "description", "root_cause", "workaround", "team", "owner", "category")


def _refused(problem: Problem, target: str) -> ProblemTransitionRefused:
    return ProblemTransitionRefused(problem, target, sorted(PROBLEM_TRANSITIONS[problem.state]))


def _responder(actor: Actor) -> None:
    if not desk_user(actor).is_responder:
        raise PermissionDenied("Only responders manage problem records.")


def _lock(problem: Problem, actor: Actor, version: int | None) -> Problem:
    _responder(actor)
    locked = Problem.objects.select_for_update().get(pk=problem.pk)
    if version is not None and version != locked.version:
        raise StaleProblemVersion(locked, version)
    return locked


def _save(problem: Problem, fields: Iterable[str]) -> Problem:
    problem.version += 1
    problem.updated_at = timezone.now()
    problem.save(update_fields=sorted({*fields, "version", "updated_at"}))
    return problem


@transaction.atomic
def create_problem(
    *,
    actor: Actor,
    title: str,
    description: str = "",
    root_cause: str = "",
    workaround: str = "",
    team: Team | None = None,
    owner: Any = None,
    category: Category | None = None,
    incidents: Iterable[Incident] = (),
) -> Problem:
    """Open a problem record (state ``open``) and link the given incidents. Each call creates one."""
    _responder(actor)
    if not title.strip():
        raise ValidationError({"title": ["This field is required."]})
    problem = Problem.objects.create(
        title=title.strip(), description=description, root_cause=root_cause, workaround=workaround,
        team=team, owner=owner, category=category, domain=category.domain if category else None,
    )  # fmt: skip
    _link(problem, list(incidents), actor=actor)
    return problem


@transaction.atomic
def edit_problem(problem: Problem, *, actor: Actor, version: int | None = None, **changes: Any) -> Problem:
    """Change the record's text, team, owner or category. A closed record is frozen; no change, no new version."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValidationError({field: ["This field cannot be edited."] for field in sorted(unknown)})
    problem = _lock(problem, actor, version)
    if problem.state == PS.CLOSED:
        raise _refused(problem, "edited")
    if "title" in changes and not str(changes["title"]).strip():
        raise ValidationError({"title": ["This field is required."]})
    changed = [f for f, v in changes.items() if getattr(problem, f) != v]
    for field in changed:
        setattr(problem, field, changes[field])
    if "category" in changed:
        problem.domain = problem.category.domain if problem.category else None
        changed.append("domain")
    return _save(problem, changed) if changed else problem


@transaction.atomic
def change_state(problem: Problem, *, actor: Actor, state: str, version: int | None = None) -> Problem:
    """Move the problem along PROBLEM_TRANSITIONS; moving to the state it is in changes nothing.

    ``known_error`` needs the root cause and the workaround (and sets the known-error flag for good);
    ``resolved`` needs the root cause; ``closed`` needs every follow-up action done.
    """
    problem = _lock(problem, actor, version)
    if state not in PS.values:
        raise ValidationError({"state": [f"Must be one of: {', '.join(PS.values)}."]})
    if state == problem.state:
        return problem
    if state not in PROBLEM_TRANSITIONS[problem.state]:
        raise _refused(problem, state)
    errors: dict[str, list[str]] = {}
    if state in (PS.KNOWN_ERROR, PS.RESOLVED) and not problem.root_cause.strip():
        errors["root_cause"] = [f"A {state.replace('_', ' ')} problem needs its root cause."]
    if state == PS.KNOWN_ERROR and not problem.workaround.strip():
        errors["workaround"] = ["A known error needs its workaround."]
    if state == PS.CLOSED and problem.follow_ups.filter(done_at__isnull=True).exists():
        errors["state"] = ["Every follow-up action must be done before the problem is closed."]
    if errors:
        raise ValidationError(errors)
    now = timezone.now()
    fields = ["state"]
    problem.state = state
    if state == PS.KNOWN_ERROR:
        problem.known_error = True
        fields.append("known_error")
    if state == PS.RESOLVED:
        problem.resolved_at = now
        fields.append("resolved_at")
    if state == PS.CLOSED:
        problem.closed_at = now
        fields.append("closed_at")
    return _save(problem, fields)


@transaction.atomic
def delete_problem(problem: Problem, *, actor: Actor, version: int | None = None) -> None:
    """Delete a record opened by mistake: only while proposed or open and without follow-up actions
    (those are history worth keeping; close the problem instead). Linked incidents are unlinked first,
    each with a timeline entry."""
    problem = _lock(problem, actor, version)
    if problem.state not in (PS.PROPOSED, PS.OPEN):
        raise _refused(problem, "deleted")
    if problem.follow_ups.exists():
        raise ValidationError({"follow_ups": ["A problem with follow-up actions is closed, not deleted."]})
    if actor is not None:
        linked = Incident.objects.filter(problem_id=problem.pk)
        if linked.exclude(pk__in=incidents_handled_by(actor).values("pk")).exists():
            # Deleting would write to incidents the actor may not see (unlink them, with an entry each).
            raise ValidationError(
                {"incidents": ["Linked to incidents you may not see; their team unlinks them first."]}
            )
    writes.save_many(
        writes.lock_many(Incident.objects.filter(problem_id=problem.pk)),
        values={"problem_id": None},
        record=lambda row, at: timeline.record_problem_event(
            incident=row, actor=actor, event="unlinked", problem=problem.reference
        ),
    )
    problem.delete()


def _link(problem: Problem, incidents: list[Incident], *, actor: Actor, event: str = "linked") -> list[str]:
    """Point incidents at the problem (bumping their version: `problem` is part of the incident)."""
    visible = incidents_handled_by(actor) if actor is not None else Incident.objects.all()
    pks = [i.pk for i in incidents]
    found = set(visible.filter(pk__in=pks).values_list("pk", flat=True))
    missing = [reference for reference, pk in ((i.reference, i.pk) for i in incidents) if pk not in found]
    if missing:
        raise ValidationError({"incidents": [f"No incident {', '.join(missing)}."]})
    rows = writes.save_many(
        writes.lock_many(Incident.objects.filter(pk__in=pks).exclude(problem_id=problem.pk)),
        values={"problem_id": problem.pk},
        record=lambda row, at: timeline.record_problem_event(
            incident=row, actor=actor, event=event, problem=problem.reference, previous=row.problem_id
        ),
    )
    return [row.reference for row in rows]


@transaction.atomic
def link_incidents(problem: Problem, *, actor: Actor, incidents: Iterable[Incident]) -> list[str]:
    """Link incidents (moving them from another problem if they had one). Already linked: no change.

    Returns the references that changed. An incident the actor may not see is refused as unknown.
    """
    problem = _lock(problem, actor, None)
    if problem.state == PS.CLOSED:
        raise _refused(problem, "linked")
    return _link(problem, list(incidents), actor=actor)


@transaction.atomic
def unlink_incidents(problem: Problem, *, actor: Actor, incidents: Iterable[Incident]) -> list[str]:
    """Unlink incidents from this problem; those not linked to it are left alone."""
    problem = _lock(problem, actor, None)
    pks = [i.pk for i in incidents]
    visible = incidents_handled_by(actor).filter(pk__in=pks, problem_id=problem.pk)
    rows = writes.save_many(
        writes.lock_many(Incident.objects.filter(pk__in=visible.values("pk"))),
        values={"problem_id": None},
        record=lambda row, at: timeline.record_problem_event(
            incident=row, actor=actor, event="unlinked", problem=problem.reference
        ),
    )
    return [row.reference for row in rows]


@transaction.atomic
def add_follow_up(
    problem: Problem, *, actor: Actor, title: str, owner: Any, due_date: date
) -> FollowUpAction:
    """Add an action to a problem that is not closed; its owner is reminded until it is done."""
    problem = _lock(problem, actor, None)
    if problem.state == PS.CLOSED:
        raise _refused(problem, "given a follow-up")
    errors: dict[str, list[str]] = {}
    if not title.strip():
        errors["title"] = ["This field is required."]
    if owner is None:
        errors["owner"] = ["This field is required."]
    elif not _may_see_problem(owner, problem):
        # The reminders carry the problem's and the action's titles to the owner.
        errors["owner"] = [f"{owner.get_username()} may not see {problem.reference}."]
    if due_date is None:
        errors["due_date"] = ["This field is required."]
    if errors:
        raise ValidationError(errors)
    action = FollowUpAction.objects.create(
        problem=problem, title=title.strip(), owner=owner, due_date=due_date
    )
    _save(problem, [])
    return action


@transaction.atomic
def complete_follow_up(action: FollowUpAction, *, actor: Actor) -> FollowUpAction:
    """Mark the action done (reminders stop): a change of its problem, which gets a new version, as when the action
    was added. Done twice: the first time stands."""
    problem = _lock(action.problem, actor, None)
    action = FollowUpAction.objects.select_for_update().get(pk=action.pk)
    if action.done_at is None:
        action.done_at = timezone.now()
        action.save(update_fields=["done_at"])
        _save(problem, [])
    return action


def _may_see_problem(user: Any, problem: Problem) -> bool:
    """Whether a follow-up's owner may read the problem's and the action's titles: any active user for an
    unrestricted problem (an owner need not be a responder), only its domain's teams for a restricted one."""
    return bool(user.is_active) and desk_user(user).reaches_domain(problem)


def _reminder(action: FollowUpAction, today: date) -> tuple[str, str]:
    problem = action.problem
    link = f"{settings.SITE_URL}/desk/problems/{problem.pk}/"
    when = "is overdue since" if action.due_date < today else "is due on"
    subject = f"[{problem.reference}] Follow-up {when} {action.due_date:%Y-%m-%d}: {action.title}"
    body = (
        f'The follow-up action "{action.title}" of problem {problem.reference} ({problem.title}) '
        f"{when} {action.due_date:%Y-%m-%d}.\n\nMark it done when it is: {link}\n"
        "You will be reminded every day until it is done.\n"
    )
    return subject, body


def remind_follow_ups(*, today: date | None = None) -> int:
    """Queue one reminder per open follow-up action due within FOLLOW_UP_REMIND_DAYS_BEFORE days (or
    overdue), once per action per day: running it twice in a day adds no row (the key names the day).
    Returns the number of reminder rows still waiting for delivery."""
    today = today or timezone.localdate()
    horizon = today + timedelta(days=settings.FOLLOW_UP_REMIND_DAYS_BEFORE)
    actions = (
        FollowUpAction.objects.filter(done_at__isnull=True, due_date__lte=horizon)
        .exclude(problem__state=PS.CLOSED)
        .select_related("owner", "problem__domain")
        .order_by("due_date", "pk")
    )
    queued = 0
    for action in actions.iterator(chunk_size=500):
        if not _may_see_problem(action.owner, action.problem):
            # The owner left the teams of the problem's domain (or the problem moved to a restricted one).
            logger.warning("follow-up %s not reminded: its owner may no longer see its problem", action.pk)
            continue
        subject, body = _reminder(action, today)
        with transaction.atomic():
            outbox = hooks.outbox()
            ids = outbox.queue_message(
                problem=action.problem, event="follow_up_reminder",
                cause=f"follow-up:{action.pk}:{today.isoformat()}", address=action.owner.email,
                subject=subject, body=body, user_id=action.owner_id,
            )  # fmt: skip
            outbox.deliver_after_commit(ids)
        queued += len(ids)
    return queued


# --- recurrence ----------------------------------------------------------------------------------------


# A proposal links at most this many incidents (the oldest of the cluster): a storm of thousands of alerts in
# one category must not make every classification read all of them.
RECURRENCE_LINK_LIMIT = 100
# The text probe compares the title with the newest this many incidents of the domain's window, no more: its
# cost per classification stays the same however many incidents the window holds (an alert storm without
# dedup keys would otherwise make classification quadratic).
RECURRENCE_SCAN_LIMIT = 1000


def _cap() -> int:
    """Enough rows to reach the threshold, never more than ten times the link limit."""
    return min(max(settings.RECURRENCE_THRESHOLD, RECURRENCE_LINK_LIMIT), 10 * RECURRENCE_LINK_LIMIT)


def _candidates(now: datetime) -> QuerySet[Incident]:
    """The incidents a recurrence counts: received within RECURRENCE_WINDOW before `now`, not cancelled, not
    linked to a problem (the partial indexes incident_recurrence_*_idx hold exactly these)."""
    return Incident.objects.filter(
        received_at__gte=now - settings.RECURRENCE_WINDOW, problem__isnull=True
    ).exclude(state=Incident.State.CANCELLED)


def category_reaches_threshold(incident: Incident, *, now: datetime | None = None) -> bool:
    """Whether RECURRENCE_THRESHOLD incidents of the incident's category count now: an index-only probe
    that stops at the threshold, whatever the size of the cluster."""
    if incident.category_id is None:
        return False
    return _category_state(incident.category_id, now or timezone.now())[0]


def _category_state(category_id: int, now: datetime) -> tuple[bool, bool]:
    """(reached, covered): whether RECURRENCE_THRESHOLD incidents of the category count now (the capped probe
    of the newest candidates), and whether a problem not yet closed covers the category, in one statement.

    The statement is the ORM's own SQL of the two querysets, compiled once per threshold (building them took
    more CPU than anything else in a monitoring event's recurrence check); only the values are bound per call.
    """
    sql, sources = _category_state_sql(settings.RECURRENCE_THRESHOLD, connection.vendor)
    since = connection.ops.adapt_datetimefield_value(now - settings.RECURRENCE_WINDOW)
    values = {"since": since, "category": category_id}
    with connection.cursor() as cursor:
        cursor.execute(sql, [values[name] if name else constant for name, constant in sources])
        counted, covered = cursor.fetchone()
    return counted >= settings.RECURRENCE_THRESHOLD, bool(covered)


_SENTINEL_NOW = datetime(1970, 1, 2, 3, 4, 5, 424242, tzinfo=UTC)
_SENTINEL_CATEGORY = -424242


@functools.cache
def _category_state_sql(threshold: int, vendor: str) -> tuple[str, list[tuple[str, Any]]]:
    """_category_state's statement on this database and, for each of its parameters, the name of the value
    bound per call ("since", "category") or "" and the constant the ORM put there."""
    since = connection.ops.adapt_datetimefield_value(_SENTINEL_NOW - settings.RECURRENCE_WINDOW)
    probe = (
        _candidates(_SENTINEL_NOW)
        .filter(category_id=_SENTINEL_CATEGORY)
        .order_by("-received_at")
        .values("received_at")[:threshold]
    )
    open_problem = (
        Problem.objects.filter(category_id=_SENTINEL_CATEGORY).exclude(state=PS.CLOSED).values("pk")
    )
    sources: list[tuple[str, Any]] = []
    parts = []
    for queryset, expected in ((probe, {"since", "category"}), (open_problem, {"category"})):
        part, params = queryset.query.sql_with_params()
        parts.append(part)
        named = [
            ("since", None) if p == since else ("category", None) if p == _SENTINEL_CATEGORY else ("", p)
            for p in params
        ]
        if sorted(name for name, _ in named if name) != sorted(expected):
            raise AssertionError(f"unexpected parameters in the recurrence probe: {params}")
        sources += named
    sql = f"SELECT (SELECT count(*) FROM ({parts[0]}) AS newest), EXISTS ({parts[1]})"  # noqa: S608 (the ORM's own SQL; every value is bound)
    return sql, sources


def recurrence_cluster(incident: Incident, *, now: datetime | None = None) -> list[Incident]:
    """The incidents of the same category received within RECURRENCE_WINDOW before `now`, oldest first,
    not cancelled and not already linked to a problem (at most RECURRENCE_LINK_LIMIT of them)."""
    if incident.category_id is None:
        return []
    return list(
        _candidates(now or timezone.now())
        .filter(category_id=incident.category_id)
        .select_related("category", "team")
        .order_by("received_at", "pk")[: _cap()]
    )


def similar_text_cluster(incident: Incident, *, now: datetime | None = None) -> list[Incident]:
    """Incidents of the same domain within RECURRENCE_WINDOW whose titles look like this one's, oldest
    first, not cancelled and not linked to a problem, among the newest RECURRENCE_SCAN_LIMIT of them:
    trigram similarity (`%`) on PostgreSQL; on SQLite, titles sharing at least half of this title's
    significant words (and two at least)."""
    now = now or timezone.now()
    if incident.domain_id is None:
        return []
    window = _candidates(now).filter(domain_id=incident.domain_id)
    if connection.vendor == "postgresql":
        # The newest incidents of the window from the partial (domain, received_at) index, then the trigram
        # match on those alone: the LIMIT inside keeps the planner from matching the whole window first.
        # (The same rows as _candidates(now).filter(domain_id=...), written out to nest the LIMIT; ANY(ARRAY(...))
        # makes the few ids found a list of primary keys to look up, never a join over the table.)
        alike = RawSQL(
            '"incidents_incident"."id" = ANY(ARRAY(SELECT recent.id FROM ('
            "SELECT i.id, i.title, i.received_at FROM incidents_incident i WHERE i.domain_id = %s"
            " AND i.received_at >= %s AND i.problem_id IS NULL AND NOT (i.state = %s)"
            " ORDER BY i.received_at DESC, i.id DESC LIMIT %s"
            ") recent WHERE recent.title %% %s ORDER BY recent.received_at, recent.id LIMIT %s))",
            (
                incident.domain_id, now - settings.RECURRENCE_WINDOW, Incident.State.CANCELLED.value,
                RECURRENCE_SCAN_LIMIT, incident.title, _cap(),
            ),
            BooleanField(),
        )  # fmt: skip
        return list(
            Incident.objects.filter(alike)
            .select_related("category", "team")
            .order_by("received_at", "pk")[: _cap()]
        )
    words = set(significant_words(incident.title))
    if len(words) < 2:
        return []
    needed = max(2, (len(words) + 1) // 2)
    recent_rows = list(
        window.order_by("-received_at", "-pk").values_list("pk", "title")[:RECURRENCE_SCAN_LIMIT]
    )
    pks = [pk for pk, title in recent_rows if len(words & set(significant_words(title))) >= needed]
    return list(
        Incident.objects.filter(pk__in=pks)
        .select_related("category", "team")
        .order_by("received_at", "pk")[: _cap()]
    )


def check_recurrence(incident: Incident, *, now: datetime | None = None) -> Problem | None:
    """Propose a problem record to the category's team when RECURRENCE_THRESHOLD incidents of one
    category, or with similar titles in one domain, arrived within RECURRENCE_WINDOW (SPEC section 6).

    Once: a category with a problem not yet closed gets no second proposal; incidents already linked
    to a problem never count again; and the proposal's unique key (the kind of cluster and its oldest
    incident) stops two concurrent checks from both proposing. Runs after the classification
    committed, in its own transaction, so that of two classifications at once the later one sees the
    other. Returns the new proposal, or None.
    """
    threshold = settings.RECURRENCE_THRESHOLD
    now = now or timezone.now()
    # Each probe is capped and stops at the threshold; once the category has decided (a proposal, or a
    # problem already covering it), the text probe is skipped.
    reached, covered = (
        _category_state(incident.category_id, now) if incident.category_id is not None else (False, False)
    )
    if reached:
        if covered:
            return None
        cluster = recurrence_cluster(incident, now=now)
        if len(cluster) < threshold:
            return None  # linked or cancelled between the probe and now
        category = cluster[0].category
        assert category is not None  # noqa: S101 - the cluster is filtered on the incident's category
        key = f"recurrence:category:{category.pk}:{cluster[0].pk}"
        what = f"of {category.path}"
    else:
        cluster = similar_text_cluster(incident, now=now)
        if len(cluster) < threshold:
            return None
        category = incident.category
        key = f"recurrence:text:{cluster[0].pk}"
        what = f'with titles like "{incident.title[:80]}"'
    title = f"Recurring: {category.name if category else incident.title[:80]} ({len(cluster)} incidents)"
    try:
        with transaction.atomic():
            problem = Problem.objects.create(
                title=title[:200],
                description=f"Proposed by the desk: {len(cluster)} incidents {what} within {settings.RECURRENCE_WINDOW}.",
                state=PS.PROPOSED, category=category, domain_id=incident.domain_id,
                team=(category.default_team if category else None) or incident.team, proposal_key=key,
            )  # fmt: skip
            _link(problem, cluster, actor=None, event="recurrence")
            _notify_proposal(problem, cluster)
    except IntegrityError:
        return None  # another check proposed it a moment ago
    return problem


def _notify_proposal(problem: Problem, cluster: list[Incident]) -> None:
    """Tell the team, through the outbox, on the newest incident of the cluster (it anchors the message)."""
    anchor = cluster[-1]
    refs = ", ".join(i.reference for i in cluster)
    outbox = hooks.outbox()
    ids = outbox.queue_team(
        anchor,
        team=problem.team,
        event="problem_proposed",
        detail=f"Problem record proposed: {problem.reference}, recurring incidents {refs}",
        cause=f"problem-proposed:{problem.pk}",
    )
    outbox.deliver_after_commit(ids)


def check_recurrence_after_commit(incident: Incident, *, fresh: bool = False) -> None:
    """Schedule check_recurrence once the classification commits; its failure never undoes the classification.

    `fresh`: the incident was inserted classified in this transaction and is in hand as written (incidents.
    services.create_classified_incident): it is checked as it is, not read again.
    """

    def run() -> None:
        try:
            check_recurrence(
                incident
                if fresh
                else Incident.objects.select_related("category__default_team", "team").get(pk=incident.pk)
            )
        except Exception:
            logger.exception("recurrence check failed for %s", incident.reference)

    transaction.on_commit(run)
