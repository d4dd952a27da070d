"""Reads shared by the API, the console and reporting. Visibility lives here and only here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Permission
from django.db import connection
from django.db.models import BooleanField, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL

from .models import Domain, Incident, IncidentQuerySet, Membership, SlaStatus, TimelineEntry

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


def desk_user(user: Any) -> DeskUser:
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
        user._desk_user = result
    return result


def _has_permission(user: Any, codename: str) -> bool:
    """One query for a direct or group permission of the incidents app (has_perm takes two)."""
    return (
        user.is_active
        and Permission.objects.filter(content_type__app_label="incidents", codename=codename)
        .filter(Q(user=user) | Q(group__user=user))
        .exists()
    )


def incidents_visible_to(user: Any) -> IncidentQuerySet:
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
    hidden = Domain.objects.filter(restricted=True).exclude(pk__in=sorted(me.domain_ids)).values("pk")
    return qs.filter(own | Q(domain_id__isnull=True) | ~Q(domain_id__in=Subquery(hidden)))


def may_see(user: Any, incident: Incident) -> bool:
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


def incident_list(user: Any) -> IncidentQuerySet:
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


def timeline_for(incident: Incident, user: Any) -> QuerySet[TimelineEntry]:
    """The entries the user may read: all of them for responders, the public ones for the reporter."""
    qs = incident.timeline.select_related("actor", "comment", "attachment")
    if not desk_user(user).is_responder:
        qs = qs.filter(public=True)
    return qs


SLA_CLOCK_STATES = list(SlaStatus.values)


def sla_status(incident: Incident) -> dict[str, str | None]:
    """The response and resolution clocks as the SLA engine keeps them on the incident (null: no target)."""
    return {"response": incident.sla_response or None, "resolution": incident.sla_resolution or None}


def sla_q(status: str) -> Q:
    """Incidents whose response or resolution clock is in `status` (e.g. warning, breached)."""
    return Q(sla_response=status) | Q(sla_resolution=status)


def sla_breached_q() -> Q:
    return sla_q(SlaStatus.BREACHED)
