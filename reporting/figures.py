"""The report figures of SPEC section 6, computed in the database. docs/reporting.md defines each one.

Every figure reads the incidents the requesting user sees as a responder (incidents.selectors.incidents_handled_by),
narrowed by the filters, and is computed by aggregates and GROUP BYs: no incident is loaded into Python.
The one exception is on SQLite, which has no percentile_cont: there the percentiles read the ordered
durations (one float a row) and interpolate them the same way PostgreSQL does. SQLite is the demo
database; PostgreSQL is the one that holds a million incidents.

The period is a cohort: the incidents *received* in [start, end), as they stand now. Backlog and ageing are
the exception, because they are about time: they count every incident open at an instant, whenever it was
received.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db import connections, transaction
from django.db.models import (
    Aggregate,
    Avg,
    Count,
    DateField,
    F,
    FloatField,
    Func,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce, Trunc
from django.utils import timezone

from config.dbrouter import reports_alias, reports_reads
from escalation.models import SlaClock
from incidents.models import Category, Domain, Incident, Team
from incidents.selectors import handled_domains
from incidents.timeline import Actor

State = Incident.State
# Ageing buckets of the open backlog: (label, from days, to days); the last is open-ended.
AGEING_BUCKETS: list[tuple[str, int, int | None]] = [
    ("under_1d", 0, 1),
    ("1d_3d", 1, 3),
    ("3d_7d", 3, 7),
    ("7d_30d", 7, 30),
    ("over_30d", 30, None),
]
DAILY_UP_TO = timedelta(days=92)  # longer periods are bucketed by ISO week
TOP = 10
# Read the per-day figures (reporting.daily) on PostgreSQL; False computes every figure from the incidents,
# as the tests that compare both do.
USE_DAY_FIGURES = True
SORT_MEMORY = "64MB"  # PostgreSQL work_mem for the report's transaction only


@dataclass(frozen=True)
class ReportFilters:
    """What the report covers. `end` is exclusive; the filters are those of the incident list."""

    start: datetime
    end: datetime
    domain: str = ""
    team: str = ""
    category: str = ""
    priorities: tuple[int, ...] = field(default_factory=tuple)

    @property
    def bucket(self) -> str:
        return "day" if self.end - self.start <= DAILY_UP_TO else "week"


class Seconds(Func):
    """Seconds from the second timestamp to the first, as a float, on PostgreSQL and SQLite."""

    arity = 2
    output_field = FloatField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="EXTRACT(EPOCH FROM (%(expressions)s))::double precision",
            arg_joiner=" - ",
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s)) * 86400.0)",
            arg_joiner=") - julianday(",
        )


class PercentileCont(Aggregate):
    """PostgreSQL's percentile_cont: linear interpolation between the two nearest ranks.

    Given several fractions it answers them all from one sort, as an array.
    """

    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, *fractions: float, **extra: Any) -> None:
        literals = ", ".join(repr(float(f)) for f in fractions)
        fraction = literals if len(fractions) == 1 else f"ARRAY[{literals}]"
        if len(fractions) > 1:
            from django.contrib.postgres.fields import ArrayField

            extra["output_field"] = ArrayField(FloatField())
        super().__init__(expression, fraction=fraction, **extra)


def percentile(ordered: list[float], fraction: float) -> float | None:
    """percentile_cont on a sorted list: the value at rank fraction * (n - 1), interpolated linearly."""
    if not ordered:
        return None
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ended_at() -> Coalesce:
    """When an incident left the backlog: resolved, else closed, else cancelled (null while open)."""
    return Coalesce("resolved_at", "closed_at", "cancelled_at")


def mtta_seconds() -> Seconds:
    return Seconds("responded_at", "received_at")


def mttr_seconds() -> Seconds:
    return Seconds("resolved_at", "received_at")


def scope_q(user: Actor, filters: ReportFilters) -> Q:
    """`scope` as a condition on the columns `domain_id`, `team_id`, `category_id` and `priority`, which the
    incidents and the per-day figures (reporting.daily) share: visibility first, then the filters."""
    condition = handled_domains(user)
    # Slugs resolve to ids in a scalar subquery, as the incident list does, so the indexes serve the filter.
    if filters.domain:
        condition &= Q(domain_id=Subquery(Domain.objects.filter(slug=filters.domain).values("pk")[:1]))
    if filters.team:
        condition &= Q(team_id=Subquery(Team.objects.filter(slug=filters.team).values("pk")[:1]))
    if filters.category:
        path = filters.category.strip("/")
        tree = Category.objects.filter(Q(path=path) | Q(path__startswith=f"{path}/")).values("pk")
        condition &= Q(category_id__in=Subquery(tree))
    if filters.priorities:
        condition &= Q(priority__in=sorted(filters.priorities))
    return condition


def scope(user: Actor, filters: ReportFilters) -> QuerySet[Incident]:
    """The incidents the user may see, narrowed by domain, team, category and priority (not by period)."""
    return Incident.objects.filter(scope_q(user, filters))


def cohort(user: Actor, filters: ReportFilters) -> QuerySet[Incident]:
    """The incidents of the scope received in the period."""
    return scope(user, filters).filter(received_at__gte=filters.start, received_at__lt=filters.end)


def _ratio(count: int, of: int) -> dict[str, Any]:
    return {"count": count, "of": of, "rate": round(count / of, 4) if of else None}


def _compliance(met: int, breached: int) -> dict[str, Any]:
    total = met + breached
    return {"met": met, "breached": breached, "compliance": round(met / total, 4) if total else None}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _postgres() -> bool:
    return connections[reports_alias()].vendor == "postgresql"


def _durations(qs: QuerySet[Incident], seconds: Seconds, present: str) -> dict[str, Any]:
    """Median and p90 of a duration over the rows where `present` is set (SQLite's path; see the module)."""
    ordered = list(
        qs.filter(**{f"{present}__isnull": False})
        .annotate(seconds=seconds)
        .order_by("seconds")
        .values_list("seconds", flat=True)
    )
    return {
        "count": len(ordered),
        "median_seconds": _round(percentile(ordered, 0.5)),
        "p90_seconds": _round(percentile(ordered, 0.9)),
    }


def _percentiles(count: int, values: list[float | None] | None) -> dict[str, Any]:
    median, p90 = values if values is not None else (None, None)
    return {"count": count, "median_seconds": _round(median), "p90_seconds": _round(p90)}


def known() -> Q:
    """Incidents whose history is known from their reception: all but imported ones whose export started
    late (incidents.importer). Their durations and rates are unknown, so they are left out of them."""
    return Q(history_started_late=False)


def resolution_unknown() -> Q:
    """Resolved or closed, but when is unknown (an imported history that never shows the resolution)."""
    return Q(state__in=[State.RESOLVED, State.CLOSED], resolved_at__isnull=True, reopen_count=0)


def responded() -> Q:
    """The incidents MTTA measures. One whose condition cleared before anyone responded (a monitoring
    resolve) has no response time: it stays out of MTTA and is counted apart, as "cleared"."""
    return Q(responded_at__isnull=False) & ~Q(sla_response="cleared") & known()


def resolved() -> Q:
    """The incidents MTTR measures."""
    return Q(resolved_at__isnull=False) & known()


def headline_counts() -> dict[str, Any]:
    """The counts `headline` reads, by name: also the columns of reporting.models.DayFigures (DAY_COUNTS),
    which reporting.daily fills with these very expressions, grouped by day."""
    late = ~known()
    ever_resolved = (Q(resolved_at__isnull=False) | Q(reopen_count__gt=0)) & known()
    return {
        "total": Count("pk"),
        **{f"state_{state}": Count("pk", filter=Q(state=state)) for state in State.values},
        "late": Count("pk", filter=late),
        "resolution_unknown": Count("pk", filter=resolution_unknown() & known()),
        "late_responded": Count("pk", filter=late & Q(responded_at__isnull=False)),
        "late_resolved": Count("pk", filter=late & (Q(resolved_at__isnull=False) | resolution_unknown())),
        "late_ever_resolved": Count(
            "pk", filter=late & (Q(resolved_at__isnull=False) | Q(reopen_count__gt=0) | resolution_unknown())
        ),
        "late_classified": Count("pk", filter=late & ~Q(state=State.RECEIVED)),
        "mtta_count": Count("pk", filter=responded()),
        "mttr_count": Count("pk", filter=resolved()),
        "response_met": Count("pk", filter=Q(sla_response="met")),
        "response_breached": Count("pk", filter=Q(sla_response="breached")),
        "response_cleared": Count("pk", filter=Q(sla_response="cleared")),
        "resolution_met": Count("pk", filter=Q(sla_resolution="met")),
        "resolution_breached": Count("pk", filter=Q(sla_resolution="breached")),
        # SLA state `none`: classified, but no policy set the clock; apart from compliance, counted here.
        "response_none": Count("pk", filter=Q(classified_at__isnull=False, sla_response="")),
        "resolution_none": Count("pk", filter=Q(classified_at__isnull=False, sla_resolution="")),
        "classified": Count("pk", filter=Q(classified_at__isnull=False) & known()),
        "escalated": Count("pk", filter=Q(classified_at__isnull=False, escalation_level__gt=0) & known()),
        "ever_resolved": Count("pk", filter=ever_resolved),
        "reopened": Count("pk", filter=ever_resolved & Q(reopen_count__gt=0)),
        "fcr": Count("pk", filter=resolved() & Q(escalation_level=0, reopen_count=0)),
        "with_outcome": Count("pk", filter=~Q(outcome="")),
        "near_miss": Count("pk", filter=Q(outcome=Incident.Outcome.NEAR_MISS)),
        "rated": Count("rating"),
        "satisfied": Count("rating", filter=Q(rating__score__gte=4)),
        "score_sum": Coalesce(Sum("rating__score"), 0),
    }


def headline(qs: QuerySet[Incident]) -> dict[str, Any]:
    """Counts by state, MTTA, MTTR, SLA compliance, rates, near-miss ratio and CSAT of a cohort: one query
    on PostgreSQL (three on SQLite, whose percentiles read the ordered durations).

    Durations and rates leave out what is unknown (an imported history cut at its start, a resolution
    never shown) and `excluded` says how many incidents each figure left out, and why."""
    aggregates: dict[str, Any] = {**headline_counts(), "csat_average": Avg("rating__score")}
    if _postgres():
        aggregates |= {
            "mtta_p": PercentileCont(mtta_seconds(), 0.5, 0.9, filter=responded()),
            "mttr_p": PercentileCont(mttr_seconds(), 0.5, 0.9, filter=resolved()),
        }
    row = qs.order_by().aggregate(**aggregates)
    if _postgres():
        mtta = _percentiles(row["mtta_count"], row["mtta_p"])
        mttr = _percentiles(row["mttr_count"], row["mttr_p"])
    else:
        mtta = _durations(qs.filter(known()).exclude(sla_response="cleared"), mtta_seconds(), "responded_at")
        mttr = _durations(qs.filter(known()), mttr_seconds(), "resolved_at")
    return headline_of(row, mtta, mttr)


def headline_of(row: dict[str, Any], mtta: dict[str, Any], mttr: dict[str, Any]) -> dict[str, Any]:
    """The headline figures from the counts of `headline_counts` (and `csat_average`) and the durations."""
    average = row["csat_average"]
    return {
        "counts": {"total": row["total"], "by_state": {s: row[f"state_{s}"] for s in State.values}},
        "mtta": mtta,
        "mttr": mttr,
        "sla": {
            "response": _compliance(row["response_met"], row["response_breached"]),
            "resolution": _compliance(row["resolution_met"], row["resolution_breached"]),
            # Cleared by monitoring before anyone responded: no response to judge, so apart from compliance.
            "response_cleared": row["response_cleared"],
            "no_sla": {"response": row["response_none"], "resolution": row["resolution_none"]},
        },
        "rates": {
            "reopen": _ratio(row["reopened"], row["ever_resolved"]),
            "escalation": _ratio(row["escalated"], row["classified"]),
            "first_contact_resolution": _ratio(row["fcr"], row["mttr_count"]),
        },
        "near_miss": _ratio(row["near_miss"], row["with_outcome"]),
        "excluded": {
            "history_started_late": row["late"],
            "resolution_unknown": row["resolution_unknown"],
            "figures": {
                "mtta": row["late_responded"],
                "mttr": row["late_resolved"] + row["resolution_unknown"],
                "reopen": row["late_ever_resolved"] + row["resolution_unknown"],
                "escalation": row["late_classified"],
                "first_contact_resolution": row["late_resolved"] + row["resolution_unknown"],
            },
        },
        "csat": {
            "count": row["rated"],
            "average": round(float(average), 2) if average is not None else None,
            "satisfied": row["satisfied"],
            "rate": round(row["satisfied"] / row["rated"], 4) if row["rated"] else None,
        },
    }


def target_compliance(qs: QuerySet[Incident]) -> list[dict[str, Any]]:
    """Reporting targets (regulatory deadlines) of the cohort, by name: met (filed in time) against breached
    (filed late, or not filed by the due time). Targets still running, or ended unbreached with the incident,
    are not judged."""
    late = Q(breached_at__isnull=False) | Q(completed_at__gt=F("due_at"))
    rows = (
        SlaClock.objects.filter(kind=SlaClock.Kind.TARGET, incident__in=qs.order_by().values("pk"))
        .values("name")
        .annotate(
            breached=Count("pk", filter=late),
            met=Count("pk", filter=Q(completed_at__isnull=False) & ~late),
            open=Count("pk", filter=Q(completed_at__isnull=True, cancelled_at__isnull=True) & ~late),
        )
        .order_by("name")
    )
    return [
        {"name": row["name"], "open": row["open"], **_compliance(row["met"], row["breached"])} for row in rows
    ]


def sla_by_priority(qs: QuerySet[Incident]) -> list[dict[str, Any]]:
    """Response and resolution compliance for each priority of the cohort (unclassified incidents aside)."""
    rows = (
        qs.filter(priority__isnull=False)
        .order_by()
        .values("priority")
        .annotate(
            response_met=Count("pk", filter=Q(sla_response="met")),
            response_breached=Count("pk", filter=Q(sla_response="breached")),
            resolution_met=Count("pk", filter=Q(sla_resolution="met")),
            resolution_breached=Count("pk", filter=Q(sla_resolution="breached")),
        )
        .order_by("priority")
    )
    return [
        {
            "priority": row["priority"],
            "response": _compliance(row["response_met"], row["response_breached"]),
            "resolution": _compliance(row["resolution_met"], row["resolution_breached"]),
        }
        for row in rows
    ]


def _bucket_of(expression: Any, kind: str) -> Trunc:
    return Trunc(expression, kind, output_field=DateField(), tzinfo=timezone.get_current_timezone())


def bucket_dates(filters: ReportFilters) -> list[date]:
    """The first day of every bucket of the period, in the current time zone (as Trunc computes them)."""
    first = timezone.localtime(filters.start).date()
    last = timezone.localtime(filters.end - timedelta(microseconds=1)).date()
    step = timedelta(days=1)
    if filters.bucket == "week":
        first, step = first - timedelta(days=first.weekday()), timedelta(days=7)
    dates = []
    while first <= last:
        dates.append(first)
        first += step
    return dates


def trend(qs: QuerySet[Incident], filters: ReportFilters) -> list[dict[str, Any]]:
    """Incidents received per bucket, and the median time to resolve of those of them resolved."""
    kind = filters.bucket
    resolved = Q(resolved_at__isnull=False) & known()
    rows = qs.order_by().annotate(bucket=_bucket_of("received_at", kind)).values("bucket")
    medians: dict[date, float | None] = {}
    if _postgres():
        rows = rows.annotate(received=Count("pk"), mttr=PercentileCont(mttr_seconds(), 0.5, filter=resolved))
        counts = {row["bucket"]: row["received"] for row in rows}
        medians = {row["bucket"]: row["mttr"] for row in rows}
    else:
        counts = {row["bucket"]: row["received"] for row in rows.annotate(received=Count("pk"))}
        durations: dict[date, list[float]] = {}
        for bucket, seconds in (
            qs.filter(resolved)
            .annotate(bucket=_bucket_of("received_at", kind), seconds=mttr_seconds())
            .order_by("bucket", "seconds")
            .values_list("bucket", "seconds")
        ):
            durations.setdefault(bucket, []).append(seconds)
        medians = {bucket: percentile(values, 0.5) for bucket, values in durations.items()}
    return [
        {"date": day, "received": counts.get(day, 0), "mttr_median_seconds": _round(medians.get(day))}
        for day in bucket_dates(filters)
    ]


def backlog(
    user: Actor,
    filters: ReportFilters,
    received_by_bucket: dict[date, int],
    counts: Callable[[datetime], BacklogCounts | None] | None = None,
) -> dict[str, Any]:
    """Open incidents at the end of each bucket and at the end of the period, and the latter's ages.

    Open at instant t: received before t and not resolved, closed or cancelled by t. The counts, `counts(as_of)`
    (the per-day counts of reporting.daily on PostgreSQL) or else `backlog_counts` (from the incidents), are the
    incidents open at the start, at the end with their ageing, and the endings per bucket; the series is their
    running sum over buckets.
    """
    as_of = min(filters.end, timezone.now())
    counted = counts(as_of) if counts is not None else None
    row, ended = counted if counted is not None else backlog_counts(user, filters, as_of)
    series, running = [], row["at_start"]
    for day in bucket_dates(filters):
        running += received_by_bucket.get(day, 0) - ended.get(day, 0)
        series.append({"date": day, "open": running})
    return {
        "as_of": as_of,
        "open": row["at_end"],
        "ageing": [{"bucket": label, "count": row[label]} for label, _, _ in AGEING_BUCKETS],
        "series": series,
    }


BacklogCounts = tuple[dict[str, int], dict[date, int]]


def backlog_counts(user: Actor, filters: ReportFilters, as_of: datetime) -> BacklogCounts:
    """From the incidents, in two queries: `at_start` (open at the start), `at_end` (open at `as_of`) and the
    AGEING_BUCKETS of the latter by label; and, per bucket, the incidents of the backlog that left it then."""
    alive = (
        scope(user, filters)
        .filter(received_at__lt=as_of)
        .alias(ended=ended_at())
        .filter(Q(ended__isnull=True) | Q(ended__gte=filters.start))
    )
    open_at_end = Q(ended__isnull=True) | Q(ended__gt=as_of)
    ageing: dict[str, Any] = {}
    for label, low, high in AGEING_BUCKETS:
        window = Q(received_at__lte=as_of - timedelta(days=low))
        if high is not None:
            window &= Q(received_at__gt=as_of - timedelta(days=high))
        ageing[label] = Count("pk", filter=open_at_end & window)
    row = alive.order_by().aggregate(
        at_start=Count("pk", filter=Q(received_at__lt=filters.start)), at_end=Count("pk", filter=open_at_end),
        **ageing,
    )  # fmt: skip
    ended = dict(
        alive.filter(ended__lt=filters.end)
        .annotate(bucket=_bucket_of(ended_at(), filters.bucket))
        .order_by()
        .values("bucket")
        .annotate(n=Count("pk"))
        .values_list("bucket", "n")
    )
    return row, ended


def top_categories(qs: QuerySet[Incident]) -> list[dict[str, Any]]:
    """The categories with the most incidents in the cohort (ties by id).

    Grouped by the category id alone, then the ten paths are looked up: joining the category and domain
    tables to every incident of a long period costs more than the grouping itself.
    """
    rows = list(
        qs.filter(category__isnull=False)
        .order_by()
        .values("category_id")
        .annotate(count=Count("pk"))
        .order_by("-count", "category_id")[:TOP]
    )
    names = {
        c.pk: c
        for c in Category.objects.filter(pk__in=[r["category_id"] for r in rows]).select_related("domain")
    }
    return [
        {
            "domain": names[r["category_id"]].domain.slug,
            "category": names[r["category_id"]].path,
            "count": r["count"],
        }
        for r in rows
    ]


def recurring_problems(qs: QuerySet[Incident], user: Actor) -> list[dict[str, Any]]:
    """Problem records linked to two or more incidents of the cohort, most incidents first. Only problems
    the user may see: a restricted domain's problem may have incidents of an open domain linked to it."""
    from incidents.selectors import problems_visible_to

    rows = (
        qs.filter(problem__isnull=False, problem_id__in=problems_visible_to(user).values("pk"))
        .order_by()
        .values("problem_id", "problem__title", "problem__known_error")
        .annotate(count=Count("pk"))
        .filter(count__gte=2)
        .order_by("-count", "problem_id")[:TOP]
    )
    return [
        {"id": r["problem_id"], "title": r["problem__title"], "known_error": r["problem__known_error"],
         "count": r["count"]}
        for r in rows
    ]  # fmt: skip


def summary(user: Actor, filters: ReportFilters) -> dict[str, Any]:
    """Every figure of SPEC section 6 for the user and the filters. A fixed number of queries whatever the
    data (see tests/reporting/test_api.py). One transaction, so that the sort memory setting stays in it.
    Read from the reports database when one is configured (config.dbrouter)."""
    with reports_reads() as alias, transaction.atomic(using=alias):
        if _postgres():
            # The median and p90 sort every duration of the period: in memory rather than on disk.
            with connections[alias].cursor() as cursor:
                cursor.execute(f"SET LOCAL work_mem = '{SORT_MEMORY}'")
        return _summary(user, filters)


def _summary(user: Actor, filters: ReportFilters) -> dict[str, Any]:
    qs = cohort(user, filters)
    parts = _day_figures[0](user, filters) if USE_DAY_FIGURES and _day_figures else None
    if parts is None:
        parts = {
            "headline": headline(qs),
            "by_priority": sla_by_priority(qs),
            "trend": trend(qs, filters),
            "top_categories": top_categories(qs),
        }
    figures, series = parts["headline"], parts["trend"]
    return {
        "period": {"from": filters.start, "to": filters.end, "bucket": filters.bucket},
        "filters": {
            "domain": filters.domain or None,
            "team": filters.team or None,
            "category": filters.category or None,
            "priority": list(filters.priorities),
        },
        **figures,
        "sla": {
            **figures["sla"],
            "by_priority": parts["by_priority"],
            "targets": target_compliance(qs),
        },
        "trend": series,
        "backlog": backlog(
            user, filters, {row["date"]: row["received"] for row in series}, parts.get("backlog_counts")
        ),
        "top_categories": parts["top_categories"],
        "recurring_problems": parts["recurring_problems"]
        if "recurring_problems" in parts
        else recurring_problems(qs, user),
    }


# The per-day figures (reporting.daily builds on this module and registers itself from AppConfig.ready()):
# (user, filters) -> the headline, SLA by priority, trend and top categories, or None to compute them here.
# It may also give "recurring_problems", and "backlog_counts": a function of the backlog's instant `as_of`
# answering what backlog_counts does (or None to count from the incidents).
DayFiguresProvider = Callable[[Actor, ReportFilters], dict[str, Any] | None]
_day_figures: list[DayFiguresProvider] = []


def provide_day_figures(provider: DayFiguresProvider) -> None:
    _day_figures[:] = [provider]


def day_start(day: date) -> datetime:
    """Midnight at the start of `day` in the current time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def default_filters(now: datetime | None = None) -> ReportFilters:
    """The last 30 days."""
    end = now or timezone.now()
    return ReportFilters(start=end - timedelta(days=30), end=end)


__all__ = ["ReportFilters", "default_filters", "percentile", "summary"]
