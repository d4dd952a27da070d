from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters as filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet, Subquery
from django_filters.fields import IsoDateTimeField
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field

from incidents.models import Domain, Incident, Team
from incidents.selectors import SLA_CLOCK_STATES, TARGET_STATES, desk_user, search_incidents, sla_q, target_q

User = get_user_model()


# PostgreSQL takes offsets up to ±15:59; real ones span -12:00 to +14:00. Python accepts up to ±23:59, and such
# a value reached the database as a 500.
MAX_UTC_OFFSET = timedelta(hours=15)


class BoundedIsoDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time whose offset is within ±15 h and which stays a valid date-time in UTC."""

    def to_python(self, value: Any) -> datetime | None:
        parsed = super().to_python(value)
        if parsed is None or parsed.utcoffset() is None:
            return parsed
        offset = parsed.utcoffset()
        if offset is not None and abs(offset) > MAX_UTC_OFFSET:
            raise forms.ValidationError("The time-zone offset must be within ±15:00.", code="invalid")
        try:
            parsed.astimezone(UTC)
        except OverflowError as error:
            raise forms.ValidationError("Out of range.", code="invalid") from error
        return parsed


class BoundedIsoDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = BoundedIsoDateTimeField


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.NumberFilter):
    """A row's id: a whole number within the database's bigint (a larger one was a 500, a fraction matched)."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class IncidentFilter(filters.FilterSet):
    # distinct=False: these filters add no join that could repeat a row, and DISTINCT over wide rows is slow.
    state = filters.MultipleChoiceFilter(choices=Incident.State.choices, distinct=False)
    priority = filters.MultipleChoiceFilter(
        choices=[(p, str(p)) for p in range(1, 6)], distinct=False, method="filter_priority"
    )
    domain = filters.CharFilter(method="filter_domain")
    category = filters.CharFilter(
        method="filter_category", help_text="A category path; includes its subcategories."
    )
    team = filters.CharFilter(method="filter_team")
    assignee = filters.CharFilter(method="filter_assignee", help_text="A username, or `none` for unassigned.")
    reporter = filters.CharFilter(method="filter_reporter", help_text="A username or an e-mail address.")
    sla = filters.ChoiceFilter(
        choices=[(s, s) for s in SLA_CLOCK_STATES],
        method="filter_sla",
        help_text="Incidents with a response or resolution clock in this state; `none`: without a target.",
    )
    target = filters.ChoiceFilter(
        choices=[(s, s) for s in TARGET_STATES],
        method="filter_target",
        help_text="Incidents with a reporting target (a regulatory deadline) in this state.",
    )
    created_after = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = BoundedIsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    received_after = BoundedIsoDateTimeFilter(field_name="received_at", lookup_expr="gte")
    received_before = BoundedIsoDateTimeFilter(field_name="received_at", lookup_expr="lt")
    q = filters.CharFilter(method="filter_q", max_length=200, help_text="Text search, or a reference.")
    # Narrows the incidents the caller sees (the view's visibility applies first): never reveals others.
    import_run = IdFilter(
        field_name="import_run_id",
        help_text="Incidents brought in by this import run (its summary: `/desk/imports/<id>/`).",
    )

    class Meta:
        model = Incident
        fields: list[str] = []

    # Slugs and usernames resolve to ids in a scalar subquery (an InitPlan), so that the incident indexes on
    # (team, state, -id) and (assignee, state, -id) serve the filter; a join on the slug would not.
    def filter_domain(self, qs: QuerySet[Incident], name: str, value: str) -> QuerySet[Incident]:
        return qs.filter(domain_id=Subquery(Domain.objects.filter(slug=value).values("pk")[:1]))

    def filter_team(self, qs: QuerySet[Incident], name: str, value: str) -> QuerySet[Incident]:
        return qs.filter(team_id=Subquery(Team.objects.filter(slug=value).values("pk")[:1]))

    def filter_priority(self, qs: QuerySet[Incident], name: str, value: list[str]) -> QuerySet[Incident]:
        wanted = sorted({int(v) for v in value})
        if not wanted:
            return qs
        if wanted == list(range(wanted[0], wanted[-1] + 1)):
            # A contiguous set as a range: PostgreSQL walks the priority index in order (an IN list it cannot).
            return qs.filter(priority__gte=wanted[0], priority__lte=wanted[-1])
        return qs.filter(priority__in=wanted)

    def filter_category(self, qs: QuerySet[Incident], name: str, value: str) -> QuerySet[Incident]:
        path = value.strip("/")
        return qs.filter(Q(category__path=path) | Q(category__path__startswith=f"{path}/"))

    def filter_assignee(self, qs: QuerySet[Incident], name: str, value: str) -> QuerySet[Incident]:
        if value == "none":
            return qs.filter(assignee__isnull=True)
        return qs.filter(assignee_id=Subquery(User.objects.filter(username=value).values("pk")[:1]))

    def filter_reporter(self, qs: QuerySet[Incident], name: str, value: str) -> QuerySet[Incident]:
        match = Q(reporter__username=value) | Q(reporter_email__iexact=value)
        me = desk_user(self.request.user if self.request else None)
        if not me.sees_confidential:
            # Filtering by reporter must not reveal who reported a confidential incident.
            match &= Q(confidential=False) | Q(reporter_id=me.user_id)
        return qs.filter(match)

    def filter_sla(self, qs: QuerySet[Incident], name: str, value: str) -> QuerySet[Incident]:
        return qs.filter(sla_q(value))

    def filter_target(self, qs: QuerySet[Incident], name: str, value: str) -> QuerySet[Incident]:
        return qs.filter(target_q(value))

    def filter_q(self, qs: QuerySet[Incident], name: str, value: Any) -> QuerySet[Incident]:
        return search_incidents(qs, value)
