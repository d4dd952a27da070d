"""Reads shared by the API, the console and reporting. Visibility lives here and only here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Permission, User
from django.db import connection
from django.db.models import BooleanField, F, FloatField, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL

from .models import Domain, Incident, IncidentQuerySet, Membership, Problem, SlaStatus, TimelineEntry
from .timeline import Actor

SEARCH_DOCUMENT_SQL = (
    "to_tsvector('english'::regconfig, "
    'COALESCE("incidents_incident"."title", \'\') || \' \' || COALESCE("incidents_incident"."description", \'\'))'
)


@dataclass(frozen=True)
class DeskUser:
    """What one user may see and do, computed once per request."""

    user_id: int | None
    is_superuser: bool
    team_ids: frozenset[int]
    domain_ids: frozenset[int]
    sees_confidential: bool

    @property
    def is_authenticated(self) -> bool:
        return self.user_id is not None

    @property
    def is_responder(self) -> bool:
        """Agents, specialists and managers: members of at least one team (or superusers)."""
        return self.is_superuser or bool(self.team_ids)

    def can_see_reporter(self, incident: Incident) -> bool:
        return not incident.confidential or self.sees_confidential or incident.reporter_id == self.user_id


def desk_user(user: Actor) -> DeskUser:
    """The user's roles and reach, cached on the user object for the rest of the request."""
    cached = getattr(user, "_desk_user", None)
    if cached is not None:
        return cached
    if user is None or not user.is_authenticated:
        result = DeskUser(None, False, frozenset(), frozenset(), False)
    else:
        rows = list(Membership.objects.filter(user_id=user.pk).values_list("team_id", "team__domains"))
        result = DeskUser(
            user_id=user.pk,
            is_superuser=user.is_superuser,
            team_ids=frozenset(team_id for team_id, _ in rows),
            domain_ids=frozenset(domain_id for _, domain_id in rows if domain_id is not None),
            sees_confidential=user.is_superuser or _has_permission(user, "view_confidential_reporter"),
        )
        user._desk_user = result  # type: ignore[attr-defined]  # a per-request memo on the user object
    return result


def _has_permission(user: User, codename: str) -> bool:
    """One query for a direct or group permission of the incidents app (has_perm takes two)."""
    return (
        user.is_active
        and Permission.objects.filter(content_type__app_label="incidents", codename=codename)
        .filter(Q(user=user) | Q(group__user=user))
        .exists()
    )


def incidents_visible_to(user: Actor) -> IncidentQuerySet:
    """Every incident the user may see. Everything else answers 404.

    Reporters see their own incidents. Responders see every incident except those of a restricted
    domain that none of their teams handles. Superusers see everything.
    """
    me = desk_user(user)
    qs = Incident.objects.all()
    if not me.is_authenticated:
        return qs.none()
    if me.is_superuser:
        return qs
    own = Q(reporter_id=me.user_id)
    if not me.is_responder:
        return qs.filter(own)
    # "Not in a restricted domain that none of my teams handles", as a subquery on a tiny table: no join
    # in the WHERE clause, so the planner stays fast and can walk the incident indexes.
    hidden = _hidden_domains(me)
    return qs.filter(own | Q(domain_id__isnull=True) | ~Q(domain_id__in=Subquery(hidden)))


def may_see(user: Actor, incident: Incident) -> bool:
    """`incidents_visible_to` for one incident already in memory (its domain loaded): the same rule without a
    query per incident, for the escalation sweep deciding who may be told about hundreds of incidents."""
    me = desk_user(user)
    if not me.is_authenticated:
        return False
    if me.is_superuser or incident.reporter_id == me.user_id:
        return True
    if not me.is_responder:
        return False
    domain = incident.domain
    return domain is None or not domain.restricted or domain.pk in me.domain_ids


def incident_list(user: Actor) -> IncidentQuerySet:
    """Visible incidents with what a list or detail representation reads, in a fixed number of queries."""
    # Parent, duplicate and problem are shown by id-derived references: no self-joins on the wide table.
    return incidents_visible_to(user).select_related("domain", "category", "team", "assignee", "reporter")


def search_incidents(qs: QuerySet[Incident], text: str) -> QuerySet[Incident]:
    """Text search over title and description; a reference (INC-000042) matches that incident.

    PostgreSQL uses full-text search backed by a GIN expression index; SQLite falls back to LIKE.
    """
    text = text.strip()
    if not text:
        return qs
    pk = Incident.pk_from_reference(text)
    if pk is not None:
        return qs.filter(pk=pk)
    if connection.vendor == "postgresql":
        # The same expression as the GIN index of migration 0002, so the planner can use it.
        # Constant SQL; the search text is a bound parameter.
        matches = RawSQL(  # noqa: S611
            f"{SEARCH_DOCUMENT_SQL} @@ websearch_to_tsquery('english', %s)", [text], BooleanField()
        )
        return qs.filter(matches)
    return qs.filter(Q(title__icontains=text) | Q(description__icontains=text))


def timeline_for(incident: Incident, user: Actor) -> QuerySet[TimelineEntry]:
    """The entries the user may read: all of them for responders, the public ones for the reporter."""
    qs = incident.timeline.select_related("actor", "comment", "attachment")
    if not desk_user(user).is_responder:
        qs = qs.filter(public=True)
    return qs


# `none`: the clock has no target (no SLA policy matches the incident, or it is not classified yet).
SLA_NONE = "none"
SLA_CLOCK_STATES = [*SlaStatus.values, SLA_NONE]
# A reporting target's state: a clock's, or `cancelled` when the incident ended before the report was filed.
TARGET_STATES = ["pending", "warning", "breached", "met", "cancelled"]


def sla_status(incident: Incident) -> dict[str, str]:
    """The response and resolution clocks as the SLA engine keeps them on the incident (`none`: no target)."""
    return {"response": incident.sla_response or SLA_NONE, "resolution": incident.sla_resolution or SLA_NONE}


def sla_q(status: str) -> Q:
    """Incidents whose response or resolution clock is in `status` (e.g. warning, breached, none)."""
    value = "" if status == SLA_NONE else status
    return Q(sla_response=value) | Q(sla_resolution=value)


def target_q(state: str) -> Q:
    """Incidents with a reporting target (any of its clocks) in `state`."""
    clocks = Q(sla_clocks__kind="target")
    if state == "met":
        clocks &= (
            Q(sla_clocks__completed_at__isnull=False)
            & (Q(sla_clocks__due_at__isnull=True) | Q(sla_clocks__completed_at__lte=F("sla_clocks__due_at")))
            & Q(sla_clocks__breached_at__isnull=True)
        )
    elif state == "breached":
        clocks &= Q(sla_clocks__breached_at__isnull=False) | (
            Q(sla_clocks__completed_at__isnull=False)
            & Q(sla_clocks__completed_at__gt=F("sla_clocks__due_at"))
        )
    else:
        running = Q(sla_clocks__completed_at__isnull=True, sla_clocks__breached_at__isnull=True)
        if state == "cancelled":
            clocks &= running & Q(sla_clocks__cancelled_at__isnull=False)
        else:
            clocks &= (
                running
                & Q(sla_clocks__cancelled_at__isnull=True)
                & Q(sla_clocks__warned_at__isnull=state == "pending")
            )
    return Q(pk__in=Incident.objects.filter(clocks).values("pk"))


def _hidden_domains(me: DeskUser) -> Any:
    return Domain.objects.filter(restricted=True).exclude(pk__in=sorted(me.domain_ids)).values("pk")


def problems_visible_to(user: Actor) -> QuerySet[Problem]:
    """Problem records for responders; one of a restricted domain only for the teams that handle it."""
    me = desk_user(user)
    qs = Problem.objects.all()
    if not me.is_responder:
        return qs.none()
    if me.is_superuser:
        return qs
    return qs.filter(Q(domain_id__isnull=True) | ~Q(domain_id__in=Subquery(_hidden_domains(me))))


# --- similar past incidents (recurrence) -----------------------------------------------------------

STOP_WORDS = frozenset((
    "the", "and", "for", "with", "from", "that", "this", "have", "has", "not", "but", "are", "was", "were",
    "been", "into", "when", "after", "again", "every", "since", "our", "your", "their", "there", "cannot",
    "does", "doesnt", "dont",
))  # fmt: skip
WORD_RE = re.compile(r"[^\W_]{4,}", re.UNICODE)


def significant_words(text: str) -> list[str]:
    """Up to 12 distinct lower-case words of 4+ letters that are not stop words, in order."""
    seen = dict.fromkeys(w.lower() for w in WORD_RE.findall(text))
    return [w for w in seen if w not in STOP_WORDS][:12]


def similar_incidents(incident: Incident, user: Actor, limit: int = 5) -> list[Incident]:
    """Past incidents that look like this one, with how they were resolved (SPEC section 6).

    Only resolved or closed incidents the user may see. PostgreSQL: trigram similarity of the titles
    (`%`, answered by the GIN trigram index of migration 0009) or a full-text match of any of the
    title's words against title and description, ranked by trigram similarity plus full-text rank, plus a
    bonus for the same category. SQLite: same category or a shared significant title word, ranked by
    shared words. Each result carries `similarity` (higher is closer).
    """
    base = (
        incidents_visible_to(user)
        .filter(state__in=[Incident.State.RESOLVED, Incident.State.CLOSED])
        .exclude(pk=incident.pk)
        .select_related("category")
    )
    # The title's words only: descriptions share too many everyday words ("since this morning") to rank by.
    words = significant_words(incident.title)
    if connection.vendor == "postgresql":
        return _similar_postgres(base, incident, words, limit)
    return _similar_fallback(base, incident, words, limit)


def _similar_postgres(
    qs: IncidentQuerySet, incident: Incident, words: list[str], limit: int
) -> list[Incident]:
    query = " or ".join(words) or incident.title
    # Constant SQL; the texts are bound parameters. `%` uses the trigram index; @@ uses the full-text one.
    trigram = RawSQL('similarity("incidents_incident"."title", %s)', [incident.title], FloatField())
    rank = RawSQL(  # noqa: S611
        f"ts_rank({SEARCH_DOCUMENT_SQL}, websearch_to_tsquery('english', %s))", [query], FloatField()
    )
    matches = RawSQL(  # noqa: S611
        f'("incidents_incident"."title" %% %s OR {SEARCH_DOCUMENT_SQL} @@ websearch_to_tsquery(\'english\', %s))',
        [incident.title, query],
        BooleanField(),
    )
    same_category = RawSQL(
        'CASE WHEN "incidents_incident"."category_id" = %s THEN 0.2 ELSE 0 END', [incident.category_id or 0],
        FloatField(),
    )  # fmt: skip
    return list(
        qs.filter(matches)
        .annotate(similarity=trigram + rank + same_category)
        .order_by("-similarity", "-id")[:limit]
    )


def _similar_fallback(
    qs: IncidentQuerySet, incident: Incident, words: list[str], limit: int
) -> list[Incident]:
    if not words and incident.category_id is None:
        return []
    shared = Q()
    for word in words:
        shared |= Q(title__icontains=word)
    scope = shared | Q(category_id=incident.category_id) if incident.category_id else shared
    scored = []
    for candidate in qs.filter(scope).order_by("-id")[:200]:
        title_words = set(significant_words(candidate.title))
        score = len(title_words & set(words)) / max(len(words), 1)
        if incident.category_id and candidate.category_id == incident.category_id:
            score += 0.2
        candidate.similarity = round(score, 3)  # type: ignore[attr-defined]
        scored.append(candidate)
    scored.sort(key=lambda c: (-c.similarity, -c.pk))  # type: ignore[attr-defined]
    return scored[:limit]
