"""Reads shared by the API, the console and reporting. Visibility lives here and only here."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import BooleanField, F, FloatField, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL

from .models import (
    Attachment,
    Domain,
    Incident,
    IncidentQuerySet,
    Membership,
    Problem,
    SlaStatus,
    Team,
    TimelineEntry,
)
from .selects import compiled_list
from .timeline import Actor

SEARCH_DOCUMENT_SQL = (
    "to_tsvector('english'::regconfig, "
    'COALESCE("incidents_incident"."title", \'\') || \' \' || COALESCE("incidents_incident"."description", \'\'))'
)


class SeesAs(StrEnum):
    """How a person sees one incident: as its reporter (public view) or as a responder (full view)."""

    REPORTER = "reporter"
    RESPONDER = "responder"


@dataclass(frozen=True)
class DeskUser:
    """The visibility policy for one user, computed once per request: for any incident, whether they may see
    it (`may_see`) and as whom (`sees_as`). Every read path asks this object or its querysets
    (`incidents_visible_to`, `incidents_handled_by`); nothing else decides visibility.

    A responder sees an incident as a responder only when one of their teams could handle it (unrestricted
    domain, or a restricted domain one of their teams handles); an incident they reported outside that reach
    they see exactly as its reporter does. "Responder somewhere" and "reporter of this one" never add up.
    """

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

    def handles(self, incident: Incident) -> bool:
        """May act and read as a responder on this incident (its domain is loaded, or one of mine)."""
        if self.is_superuser:
            return True
        if not self.team_ids:
            return False
        if incident.domain_id is None or incident.domain_id in self.domain_ids:
            return True
        return not incident.domain.restricted  # type: ignore[union-attr]

    def sees_as(self, incident: Incident) -> SeesAs | None:
        """RESPONDER, REPORTER, or None: outside this user's visibility (answer 404)."""
        if self.handles(incident):
            return SeesAs.RESPONDER
        if self.user_id is not None and incident.reporter_id == self.user_id:
            return SeesAs.REPORTER
        return None

    def may_see(self, incident: Incident) -> bool:
        return self.sees_as(incident) is not None

    def reaches_domain(self, record: Incident | Problem) -> bool:
        """Whether the domain of an incident or a problem record is open to this user: unrestricted, or one of
        their teams' (superusers: every one). Content drawn from an incident (a case drafted from it) and a
        follow-up's reminders follow this, whoever reads them."""
        if self.is_superuser or record.domain_id is None or record.domain_id in self.domain_ids:
            return True
        return not record.domain.restricted  # type: ignore[union-attr]

    def may_file_reports(self, incident: Incident) -> bool:
        """The incident's team and the privacy officer (who sees confidential reporters) file its reports
        with an authority (escalation.filings), in the API and the console alike."""
        return self.is_superuser or self.sees_confidential or incident.team_id in self.team_ids

    def as_responder(self, incident: Incident) -> bool:
        return self.sees_as(incident) is SeesAs.RESPONDER


def desk_user(user: Actor) -> DeskUser:
    """The user's roles and reach, cached on the user object for the rest of the request."""
    cached = getattr(user, "_desk_user", None)
    if cached is not None:
        return cached
    if user is None or not user.is_authenticated:
        return DeskUser(None, False, frozenset(), frozenset(), False)
    # One query for the roles, written out once (roles_sql) rather than built by the ORM: it runs on every
    # request, and compiling the ORM's version of it took more CPU than the rest of an API create.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {roles_sql('%(user)s')}", {"user": user.pk, **ROLES_PARAMS})
        row = cursor.fetchone()
    return remember_roles(user, row)


# The permission that shows a confidential reporter (the privacy officer's), a parameter of roles_sql.
ROLES_PARAMS = {"roles_codename": "view_confidential_reporter"}


def remember_roles(user: Any, row: tuple[Any, Any, Any]) -> DeskUser:
    """The DeskUser of `user` from the three columns of `roles_sql`, memoised on the user object (a
    per-request memo: the user object lives as long as its request)."""
    sees, team_ids, domain_ids = row

    def ids(text: Any) -> frozenset[int]:
        return frozenset(int(part) for part in str(text or "").split(",") if part)

    result = DeskUser(
        user_id=user.pk,
        is_superuser=user.is_superuser,
        team_ids=ids(team_ids),
        domain_ids=ids(domain_ids),
        sees_confidential=user.is_superuser or (user.is_active and bool(sees)),
    )
    user._desk_user = result
    return result


@functools.cache
def roles_sql(user: str) -> str:
    """Three columns for the user whose id is the SQL expression `user` (a parameter, or a column of a
    query that reads the user, as the API's token lookup does): whether they hold the incidents app's
    permission %(roles_codename)s directly or through a group; their teams' ids; the domain ids of their
    teams (both comma-separated, NULL without memberships). The one place the roles are read."""
    membership, team_domains = Membership._meta.db_table, Team.domains.through._meta.db_table
    user_permissions = User.user_permissions.through._meta.db_table
    group_permissions, user_groups = (
        Group.permissions.through._meta.db_table,
        User.groups.through._meta.db_table,
    )
    if connection.vendor == "postgresql":
        teams, domains = "string_agg(m.team_id::text, ',')", "string_agg(td.domain_id::text, ',')"
    else:
        teams, domains = "group_concat(m.team_id, ',')", "group_concat(td.domain_id, ',')"
    return f"""
        EXISTS (
            SELECT 1 FROM {Permission._meta.db_table} p
            JOIN {ContentType._meta.db_table} ct ON ct.id = p.content_type_id
            WHERE ct.app_label = 'incidents' AND p.codename = %(roles_codename)s AND (
                p.id IN (SELECT permission_id FROM {user_permissions} WHERE user_id = {user})
                OR p.id IN (SELECT gp.permission_id FROM {group_permissions} gp
                            JOIN {user_groups} ug ON ug.group_id = gp.group_id
                            WHERE ug.user_id = {user}))
        ),
        (SELECT {teams} FROM {membership} m WHERE m.user_id = {user}),
        (SELECT {domains} FROM {membership} m JOIN {team_domains} td ON td.team_id = m.team_id
         WHERE m.user_id = {user})
    """  # noqa: S608 (the names are the models' tables; the values are parameters)


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


def incidents_handled_by(user: Actor) -> IncidentQuerySet:
    """The incidents the user sees as a responder: the queue, exports, reports, similar incidents, problems
    and bulk actions read these. An incident they only reported (outside their teams' domains) is not here:
    they follow it in their portal, as its reporter."""
    return Incident.objects.filter(handled_domains(user))


def handled_domains(user: Actor) -> Q:
    """The rule of `incidents_handled_by` as a condition on a `domain_id` column, for any table keyed by
    the incident's domain (the reports' per-day figures): the one place the responder's rule is written."""
    me = desk_user(user)
    if me.is_superuser:
        return Q()
    if not me.is_responder:
        return Q(pk__in=[])
    return Q(domain_id__isnull=True) | ~Q(domain_id__in=Subquery(_hidden_domains(me)))


def may_see(user: Actor, incident: Incident) -> bool:
    """`incidents_visible_to` for one incident already in memory (its domain loaded): the same rule without a
    query per incident, for the escalation sweep deciding who may be told about hundreds of incidents."""
    return desk_user(user).may_see(incident)


def content_may_flow(source: Incident, receiver: Incident) -> bool:
    """May content of `source` (a major incident's summary, cause, measures, public updates) be copied onto
    `receiver`? Only when everyone who sees `receiver` may see `source`: a restricted incident's content stays
    in its own domain. Asked each time content would flow, so a reclassification of either side counts."""
    domain = source.domain
    return domain is None or not domain.restricted or receiver.domain_id == domain.pk


def sees_as(user: Actor, incident: Incident) -> SeesAs | None:
    """How `user` sees `incident` (see DeskUser.sees_as)."""
    return desk_user(user).sees_as(incident)


def incident_list(user: Actor) -> IncidentQuerySet:
    """Visible incidents with what a list or detail representation reads, in a fixed number of queries."""
    # Parent, duplicate and problem are shown by id-derived references: no self-joins on the wide table.
    return incidents_visible_to(user).select_related("domain", "category", "team", "assignee", "reporter")


def handled_incident_list(user: Any) -> IncidentQuerySet:
    """`incident_list` for the console: the incidents the user sees as a responder."""
    return incidents_handled_by(user).select_related("domain", "category", "team", "assignee", "reporter")


def handled_incident(user: Actor, reference: str) -> Incident | None:
    """`handled_incident_list(user).by_reference(reference).first()`: the console's incident by its reference,
    when the user sees it as a responder (else None). Its SQL is compiled once per process and reach: the
    reader's visibility is in the key, the reference's number is the statement's parameter."""
    pk = Incident.pk_from_reference(reference)
    if pk is None:
        return None
    me = desk_user(user)
    reach = (me.is_superuser, me.is_responder, tuple(sorted(me.domain_ids)))

    def build(pk: int) -> IncidentQuerySet:
        return handled_incident_list(user).filter(pk=pk)[:1]

    rows = compiled_list(("handled incident", *reach), build, pk)
    return rows[0] if rows else None


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
    """The entries the user may read: all of them for its responders, the public ones for its reporter."""
    qs = incident.timeline.select_related("actor", "comment", "attachment")
    if _public_entries_only(incident, user):
        qs = qs.filter(public=True)
    return qs


def _public_entries_only(incident: Incident, user: Actor) -> bool:
    return not desk_user(user).as_responder(incident)


def timeline_rows(incident: Incident, user: Actor) -> list[TimelineEntry]:
    """`timeline_for` read at once, its SQL compiled once per process (the console's incident page)."""
    public_only = _public_entries_only(incident, user)

    def build(pk: int) -> QuerySet[TimelineEntry]:
        qs = TimelineEntry.objects.filter(incident_id=pk).select_related("actor", "comment", "attachment")
        return qs.filter(public=True) if public_only else qs

    rows = compiled_list(("timeline", public_only), build, incident.pk)
    for row in rows:
        row.incident = incident  # as incident.timeline sets it: no query when an entry's incident is read
    return rows


def child_incidents(incident: Incident, user: Actor, *, limit: int = 100) -> list[Incident]:
    """The incident's children (of a major incident) the user sees as a responder: id, title, state and
    priority loaded, at most `limit`. Its SQL is compiled once per process and reach."""
    me = desk_user(user)
    reach = (me.is_superuser, me.is_responder, tuple(sorted(me.domain_ids)))

    def build(pk: int) -> IncidentQuerySet:
        return (
            incidents_handled_by(user).filter(parent_id=pk).only("id", "title", "state", "priority")[:limit]
        )

    return compiled_list(("children", limit, *reach), build, incident.pk)


def attachments_of(incident: Incident) -> list[Attachment]:
    """The incident's files (the console's list: a responder's, internal ones included)."""
    rows = compiled_list(("attachments",), lambda pk: Attachment.objects.filter(incident_id=pk), incident.pk)
    for row in rows:
        row.incident = incident
    return rows


def sla_clocks(incident: Incident) -> list[Any]:
    """The incident's SLA clocks and reporting-target clocks (escalation.SlaClock), read at once."""
    clock = Incident._meta.get_field("sla_clocks").related_model
    return compiled_list(("clocks",), lambda pk: clock._default_manager.filter(incident_id=pk), incident.pk)


def entry_data(entry: TimelineEntry, incident: Incident, user: Any) -> dict[str, Any]:
    """The part of an entry's data this user may read.

    The reporter's view keeps the public keys only. A responder's view hides a confidential reporter's
    address (a notification's recipient, any field holding it) unless they may see who reported.
    """
    from . import timeline

    me = desk_user(user)
    if not me.as_responder(incident):
        return timeline.public_data(entry)
    data = entry.data
    if me.can_see_reporter(incident):
        return data
    return redact_reporter(data, incident)


REDACTED_REPORTER = "the reporter"


def reporter_identities(incident: Incident) -> set[str]:
    """The strings that name a confidential incident's reporter (address, username), lower-cased."""
    names = {incident.reporter_email.strip().lower()} if incident.reporter_email else set()
    if incident.reporter_id is not None and incident.reporter is not None:
        reporter = incident.reporter
        names |= {str(v).strip().lower() for v in (reporter.email, reporter.get_username()) if v}
    return names


def redact_reporter(data: Any, incident: Incident) -> Any:
    """`data` with every value that names the confidential reporter replaced by "the reporter"."""
    names = reporter_identities(incident)
    if not names:
        return data

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            if value.strip().lower() in names:
                return REDACTED_REPORTER
            lowered = value.lower()
            for name in names:
                if "@" in name and name in lowered:
                    value = re.sub(re.escape(name), REDACTED_REPORTER, value, flags=re.IGNORECASE)
            return value
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return clean(data)


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


def hidden_domains(user: Actor) -> Any:
    """The restricted domains none of the user's teams handles (none for superusers), as a subquery of pks."""
    me = desk_user(user)
    return Domain.objects.none().values("pk") if me.is_superuser else _hidden_domains(me)


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
        incidents_handled_by(user)
        .filter(state__in=[Incident.State.RESOLVED, Incident.State.CLOSED])
        .exclude(pk=incident.pk)
        .select_related("category")
    )
    # The title's words only: descriptions share too many everyday words ("since this morning") to rank by.
    words = significant_words(incident.title)
    if connection.vendor == "postgresql":
        return _similar_postgres(base, incident, words, limit)
    return _similar_fallback(base, incident, words, limit)


# How many candidates each probe of similar_incidents takes from its index before ranking. A common title matches
# a sixth of the desk (ranking all of them took 3.6 s at 1,000,000 incidents); the probes stop here.
SIMILAR_PROBE_CAP = 200


def _similar_postgres(
    qs: IncidentQuerySet, incident: Incident, words: list[str], limit: int
) -> list[Incident]:
    query = " or ".join(words) or incident.title
    # Constant SQL; the texts are bound parameters. `%` uses the trigram index; @@ uses the full-text one.
    trigram = RawSQL('similarity("incidents_incident"."title", %s)', [incident.title], FloatField())
    rank = RawSQL(  # noqa: S611
        f"ts_rank({SEARCH_DOCUMENT_SQL}, websearch_to_tsquery('english', %s))", [query], FloatField()
    )
    probes = [
        RawSQL('"incidents_incident"."title" %% %s', [incident.title], BooleanField()),
        RawSQL(f"{SEARCH_DOCUMENT_SQL} @@ websearch_to_tsquery('english', %s)", [query], BooleanField()),  # noqa: S611
    ]
    # Each match is a capped probe in the reader's visibility; only the few candidates found are ranked. The
    # MATERIALIZED CTEs are planned for all their rows (the index for a rare title: with the LIMIT in view the
    # planner walked the whole table for one) and read lazily, so that each scan stops at the cap.
    # ANY(ARRAY(...)) makes the candidates a list of primary keys to look up, never a join over the table.
    try:
        compiled = [qs.filter(match).order_by().values("pk").query.sql_with_params() for match in probes]
    except EmptyResultSet:  # the reader sees no incident as a responder
        return []
    (trigram_sql, trigram_params), (words_sql, words_params) = compiled
    probe_sql = (
        f"WITH trigram AS MATERIALIZED ({trigram_sql}), words AS MATERIALIZED ({words_sql})"  # noqa: S608 - Django's SQL
        " (SELECT * FROM trigram LIMIT %s) UNION (SELECT * FROM words LIMIT %s)"
    )
    candidates = RawSQL(  # noqa: S611 - Django's own compiled SQL; the texts stay bound parameters
        f'"incidents_incident"."id" = ANY(ARRAY({probe_sql}))',
        [*trigram_params, *words_params, SIMILAR_PROBE_CAP, SIMILAR_PROBE_CAP],
        BooleanField(),
    )
    same_category = RawSQL(
        'CASE WHEN "incidents_incident"."category_id" = %s THEN 0.2 ELSE 0 END', [incident.category_id or 0],
        FloatField(),
    )  # fmt: skip
    return list(
        qs.filter(candidates)
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


def similar_reread(pks: list[int], user: Actor) -> list[Incident]:
    """The ranked similar incidents `pks` read again as they are now (the incident page's panel reuses a
    ranking, never the rows): those still resolved or closed and handled by `user`, with their title, state,
    resolution summary, cause and category path. Its SQL is compiled once per process, reach and count."""
    me = desk_user(user)
    reach = (me.is_superuser, me.is_responder, tuple(sorted(me.domain_ids)))

    def build(*ids: int) -> IncidentQuerySet:
        return (
            incidents_handled_by(user)
            .filter(pk__in=list(ids), state__in=[Incident.State.RESOLVED, Incident.State.CLOSED])
            .select_related("category")
            .only("title", "state", "resolution_summary", "cause", "category__path")
        )

    return compiled_list(("similar", *reach), build, *pks)


def reporting_targets(incident: Incident, *, clocks: list[Any] | None = None) -> list[dict[str, Any]]:
    """The reporting targets (regulatory deadlines) of an incident: the latest cycle of each, by due time
    (name, due_at, state, and the clock itself). Reads `clocks` when given (`sla_clocks`), else the prefetched
    `sla_clocks` when a list prefetched them."""
    latest: dict[str, Any] = {}
    every = incident.sla_clocks.all() if clocks is None else clocks
    for clock in sorted(every, key=lambda c: (c.name, c.cycle)):
        if clock.kind == "target":
            latest[clock.name] = clock
    return [
        {"name": clock.name, "due_at": clock.due_at, "state": clock.status or "cancelled", "clock": clock}
        for clock in sorted(latest.values(), key=lambda c: (c.due_at is None, c.due_at, c.name))
    ]


def unfiled_targets(incident: Incident, *, targets: list[dict[str, Any]] | None = None) -> list[str]:
    """The names of the incident's reporting targets (`targets` when given: `reporting_targets`) whose report
    nobody filed yet (late ones included)."""
    filed = set(incident.report_filings.values_list("target", flat=True))
    targets = reporting_targets(incident) if targets is None else targets
    return [target["name"] for target in targets if target["name"] not in filed]
