"""The report's filters (query parameters) and the shape of the summary, for validation and OpenAPI."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from incidents.models import Category, Domain, Team
from reporting.figures import ReportFilters, day_start

MAX_SPAN = timedelta(days=3661)  # ten years and a day: weekly buckets stay a few hundred
YEARS = range(1900, 3000)


@extend_schema_field(OpenApiTypes.STR)
class DateOrDateTimeField(serializers.Field):
    """A date (YYYY-MM-DD, a whole day in the desk's time zone) or an ISO 8601 date and time."""

    default_error_messages = {
        "invalid": "Enter a date (YYYY-MM-DD) or a date and time (ISO 8601, e.g. 2026-11-01T08:00:00+01:00).",
        "range": "The year must be between 1900 and 2999.",
    }

    def to_internal_value(self, data: Any) -> date | datetime:
        text = str(data).strip()
        try:
            value: date | datetime | None = (
                parse_datetime(text) if "T" in text or " " in text else parse_date(text)
            )
        except ValueError:
            value = None
        if value is None:
            self.fail("invalid")
        assert value is not None  # noqa: S101 (for mypy: fail() raises)
        if value.year not in YEARS:
            self.fail("range")
        if isinstance(value, datetime) and timezone.is_naive(value):
            value = timezone.make_aware(value)
        return value

    def to_representation(self, value: Any) -> str:
        return value.isoformat()


class SummaryQuerySerializer(serializers.Serializer):
    """`from` and `to` (default: the 30 days up to now) and the filters of the incident list."""

    vars()["from"] = DateOrDateTimeField(
        required=False, help_text="Start of the period (inclusive). A date means that day's midnight."
    )
    to = DateOrDateTimeField(
        required=False, help_text="End of the period (exclusive). A date means the whole of that day is in."
    )
    domain = serializers.SlugField(required=False, help_text="A domain slug, e.g. `medical`.")
    team = serializers.SlugField(required=False, help_text="A team slug.")
    category = serializers.CharField(
        required=False, max_length=400, help_text="A category path; includes its subcategories."
    )
    priority = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=5),
        required=False,
        help_text="Repeatable: `priority=1&priority=2`.",
    )

    def validate_domain(self, value: str) -> str:
        if not Domain.objects.filter(slug=value).exists():
            raise serializers.ValidationError(f"Unknown domain {value!r}.")
        return value

    def validate_team(self, value: str) -> str:
        if not Team.objects.filter(slug=value).exists():
            raise serializers.ValidationError(f"Unknown team {value!r}.")
        return value

    def validate_category(self, value: str) -> str:
        path = value.strip().strip("/")
        if not path or not Category.objects.filter(path=path).exists():
            raise serializers.ValidationError(f"Unknown category path {value!r}.")
        return path

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        now = timezone.now()
        start_value, end_value = attrs.get("from"), attrs.get("to")
        end = _instant(end_value, next_day=True) if end_value is not None else now
        start = _instant(start_value) if start_value is not None else end - timedelta(days=30)
        if start >= end:
            raise serializers.ValidationError({"to": ["Must be after `from`."]})
        if end - start > MAX_SPAN:
            raise serializers.ValidationError({"from": ["The period may be at most ten years long."]})
        attrs["filters"] = ReportFilters(
            start=start,
            end=end,
            domain=attrs.get("domain", ""),
            team=attrs.get("team", ""),
            category=attrs.get("category", ""),
            priorities=tuple(sorted(set(attrs.get("priority", [])))),
        )
        return attrs


def _instant(value: date | datetime, *, next_day: bool = False) -> datetime:
    if isinstance(value, datetime):
        return value
    return day_start(value + timedelta(days=1) if next_day else value)


class ReportRatioSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    of = serializers.IntegerField()
    rate = serializers.FloatField(allow_null=True)


class ReportDurationSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Incidents measured.")
    median_seconds = serializers.FloatField(allow_null=True)
    p90_seconds = serializers.FloatField(allow_null=True)


class ReportComplianceSerializer(serializers.Serializer):
    met = serializers.IntegerField()
    breached = serializers.IntegerField()
    compliance = serializers.FloatField(allow_null=True, help_text="met / (met + breached)")


class ReportPriorityComplianceSerializer(serializers.Serializer):
    priority = serializers.IntegerField()
    response = ReportComplianceSerializer()
    resolution = ReportComplianceSerializer()


class ReportSlaSerializer(serializers.Serializer):
    response = ReportComplianceSerializer()
    resolution = ReportComplianceSerializer()
    by_priority = ReportPriorityComplianceSerializer(many=True)


class ReportCountsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_state = serializers.DictField(child=serializers.IntegerField())


class ReportRatesSerializer(serializers.Serializer):
    reopen = ReportRatioSerializer()
    escalation = ReportRatioSerializer()
    first_contact_resolution = ReportRatioSerializer()


class ReportCsatSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    average = serializers.FloatField(allow_null=True)
    satisfied = serializers.IntegerField(help_text="Ratings of 4 or 5.")
    rate = serializers.FloatField(allow_null=True)


class ReportTrendPointSerializer(serializers.Serializer):
    date = serializers.DateField()
    received = serializers.IntegerField()
    mttr_median_seconds = serializers.FloatField(allow_null=True)


class ReportBacklogPointSerializer(serializers.Serializer):
    date = serializers.DateField()
    open = serializers.IntegerField()


class ReportAgeingSerializer(serializers.Serializer):
    bucket = serializers.CharField()
    count = serializers.IntegerField()


class ReportBacklogSerializer(serializers.Serializer):
    as_of = serializers.DateTimeField()
    open = serializers.IntegerField()
    ageing = ReportAgeingSerializer(many=True)
    series = ReportBacklogPointSerializer(many=True)


class ReportCategoryCountSerializer(serializers.Serializer):
    domain = serializers.CharField()
    category = serializers.CharField()
    count = serializers.IntegerField()


class ReportProblemCountSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    title = serializers.CharField()
    known_error = serializers.BooleanField()
    count = serializers.IntegerField()


class ReportPeriodSerializer(serializers.Serializer):
    vars()["from"] = serializers.DateTimeField()
    to = serializers.DateTimeField()
    bucket = serializers.ChoiceField(choices=["day", "week"])


class ReportAppliedFiltersSerializer(serializers.Serializer):
    domain = serializers.CharField(allow_null=True)
    team = serializers.CharField(allow_null=True)
    category = serializers.CharField(allow_null=True)
    priority = serializers.ListField(child=serializers.IntegerField())


class ReportExcludedFiguresSerializer(serializers.Serializer):
    mtta = serializers.IntegerField()
    mttr = serializers.IntegerField()
    reopen = serializers.IntegerField()
    escalation = serializers.IntegerField()
    first_contact_resolution = serializers.IntegerField()


class ReportExcludedSerializer(serializers.Serializer):
    history_started_late = serializers.IntegerField(
        help_text="Imported incidents whose history the export cut at its start: their earlier milestones are "
        "unknown, so durations and rates leave them out."
    )
    resolution_unknown = serializers.IntegerField(
        help_text="Resolved or closed incidents whose imported history never shows when they were resolved."
    )
    figures = ReportExcludedFiguresSerializer(help_text="How many incidents each figure left out.")


class SummarySerializer(serializers.Serializer):
    """Every figure of SPEC section 6; docs/reporting.md defines each."""

    period = ReportPeriodSerializer()
    filters = ReportAppliedFiltersSerializer()
    counts = ReportCountsSerializer()
    mtta = ReportDurationSerializer()
    mttr = ReportDurationSerializer()
    sla = ReportSlaSerializer()
    rates = ReportRatesSerializer()
    near_miss = ReportRatioSerializer()
    excluded = ReportExcludedSerializer()
    csat = ReportCsatSerializer()
    trend = ReportTrendPointSerializer(many=True)
    backlog = ReportBacklogSerializer()
    top_categories = ReportCategoryCountSerializer(many=True)
    recurring_problems = ReportProblemCountSerializer(many=True)
