"""Per-day figures (reporting.models.DayFigures): a report of any period reads a few rows a day, not every
incident of the period. PostgreSQL only; on SQLite (the demo) the report reads the incidents.

How they stay exact (docs/reporting.md, "Per-day figures"):

- Database triggers (migration 0002) write a DirtySlot row for the `received_at` quarter hour of every
  incident that is inserted, updated or deleted, and of every incident whose rating changes, in the same
  transaction. No write path (the write primitive, the importer's bulk inserts, an admin, raw SQL) can
  forget it.
- `refresh()` (beat, every minute; `manage.py rebuild_report_days`) rebuilds each dirty day from the
  incidents with the same expressions the raw report uses, and deletes the dirty rows it read *before*
  reading the incidents: a change that commits meanwhile leaves its own dirty row, so its day is rebuilt
  again. Rebuilding a day twice gives the same rows.
- A report sums the stored rows of the whole, clean days of its period, and computes the rest (the partial
  days at its ends, the dirty days) from the incidents, in the same shape, in the same statement.

Counts and rates are therefore exact. Medians and p90 come from log-histograms (BIN_RATIO): within 1 %.

Beside the day rows, rebuilt with them in the same transaction: WeekHistograms (a week's histograms per domain,
merged, for long reports) and DayIncidents (incidents by received day, ended day, key and problem record: the
backlog and the recurring problems). docs/reporting.md, "Per-day figures", says how each is read exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections, transaction
from django.db.models import Count, Func, IntegerField, Q, QuerySet, Subquery, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from config.dbrouter import reports_alias
from incidents.models import Category, Incident, Problem
from incidents.selectors import problems_visible_to

from . import figures
from .models import DAY_COUNTS, DayFigures, DayIncidents, DirtySlot, WeekHistograms

KEYS = ("day", "domain_id", "team_id", "category_id", "priority")
HISTOGRAMS = ("mtta_bins", "mtta_counts", "mtta_sums", "mttr_bins", "mttr_counts", "mttr_sums")
WEEK_COLUMNS = ("week", "domain_id", *HISTOGRAMS)
INCIDENT_COLUMNS = ("day", "ended_day", *KEYS[1:], "problem_id", "n")
COLUMNS = (*KEYS, *DAY_COUNTS, *HISTOGRAMS)
# A duration d falls in bin floor(log(d) / log(BIN_RATIO)) (durations under SHORTEST count as SHORTEST). A bin
# is read back as the mean of its durations: it lies in the same bin as each of them, so within 1 % of any
# of them; a bin whose durations are all equal gives them exactly.
BIN_RATIO = 1.01
SHORTEST = 0.001
DAYS_PER_STATEMENT = 31  # a rebuild's batch: one INSERT ... SELECT for a month of incidents
REFRESH_LOCK = 0x15C0_0001  # pg advisory lock: one refresh at a time


class Bin(Func):
    """The log-histogram bin of a duration in seconds (see BIN_RATIO)."""

    arity = 1
    template = f"floor(ln(GREATEST(%(expressions)s, {SHORTEST})) / ln({BIN_RATIO}))::smallint"
    output_field = IntegerField()


Histogram = list[tuple[int, int, float]]  # (bin, count, sum of seconds), sorted by bin


def histogram_percentile(histogram: Histogram, fraction: float) -> float | None:
    """percentile_cont over a histogram: the values at the two nearest ranks, each read back as its bin's
    mean, interpolated linearly, as PostgreSQL interpolates the exact values."""
    total = sum(count for _, count, _ in histogram)
    if not total:
        return None
    position = fraction * (total - 1)
    low, high = math.floor(position), math.ceil(position)

    def at(rank: int) -> float:
        seen = 0
        for _, count, seconds in histogram:
            seen += count
            if rank < seen:
                return seconds / count
        raise AssertionError("rank beyond the histogram")

    low_value, high_value = at(low), at(high)
    return low_value + (high_value - low_value) * (position - low)


# --- building rows -------------------------------------------------------------------------------------


def _day() -> TruncDate:
    return TruncDate("received_at", tzinfo=timezone.get_current_timezone())


def _sql(qs: QuerySet[Any]) -> tuple[str, tuple[Any, ...]]:
    sql, params = qs.query.sql_with_params()
    return sql, tuple(params)


def rows_sql(incidents: QuerySet[Incident]) -> tuple[str, tuple[Any, ...]]:
    """A SELECT of DayFigures' COLUMNS computed from `incidents`: one row per day and key. The counts are
    figures.headline_counts, the histograms those of figures.responded and figures.resolved."""
    base = incidents.order_by().annotate(day=_day())
    counts_sql, counts_params = _sql(
        base.values(*KEYS).annotate(**figures.headline_counts()).values(*KEYS, *DAY_COUNTS)
    )
    parts: list[tuple[str, tuple[Any, ...]]] = []
    for condition, seconds in (
        (figures.responded(), figures.mtta_seconds()),
        (figures.resolved(), figures.mttr_seconds()),
    ):
        sql, params = _sql(
            base.filter(condition)
            .annotate(seconds=seconds)
            .annotate(bin=Bin("seconds"))
            .values(*KEYS, "bin")
            .annotate(n=Count("pk"), s=Sum("seconds"))
        )
        parts.append(
            (
                f"SELECT {', '.join(KEYS)}, array_agg(bin ORDER BY bin)::smallint[] AS bins, "  # noqa: S608
                "array_agg(n ORDER BY bin)::integer[] AS counts, array_agg(s ORDER BY bin)::float8[] AS sums "
                f"FROM ({sql}) h GROUP BY {', '.join(KEYS)}",
                params,
            )
        )

    def joined(alias: str) -> str:
        return " AND ".join(
            [f"{alias}.day = c.day"] + [f"COALESCE({alias}.{k}, 0) = COALESCE(c.{k}, 0)" for k in KEYS[1:]]
        )

    histograms = ", ".join(
        f"COALESCE({alias}.{part}, '{{}}') AS {metric}_{part}"
        for alias, metric in (("a", "mtta"), ("r", "mttr"))
        for part in ("bins", "counts", "sums")
    )
    # Names are constants and compiled ORM SQL; values stay parameters.
    sql = (
        f"SELECT {', '.join(f'c.{k}' for k in (*KEYS, *DAY_COUNTS))}, {histograms} "  # noqa: S608
        f"FROM ({counts_sql}) c "
        f"LEFT JOIN ({parts[0][0]}) a ON {joined('a')} "
        f"LEFT JOIN ({parts[1][0]}) r ON {joined('r')}"
    )
    return sql, counts_params + parts[0][1] + parts[1][1]


def incidents_sql(incidents: QuerySet[Incident]) -> tuple[str, tuple[Any, ...]]:
    """A SELECT of DayIncidents' INCIDENT_COLUMNS computed from `incidents`: how many were received on each
    day and left the backlog on each day (figures.ended_at; null while open), by key and problem record."""
    sql, params = _sql(
        incidents.order_by()
        .annotate(day=_day(), ended_day=TruncDate(figures.ended_at(), tzinfo=timezone.get_current_timezone()))
        .values("day", "ended_day", *KEYS[1:], "problem_id")
        .annotate(n=Count("pk"))
    )
    return f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM ({sql}) c", params  # noqa: S608


def _day_range(day: date) -> tuple[datetime, datetime]:
    return figures.day_start(day), figures.day_start(day + timedelta(days=1))


def _received_on(days: Iterable[date]) -> Q:
    condition = Q(pk__in=[])
    for day in days:
        start, end = _day_range(day)
        condition |= Q(received_at__gte=start, received_at__lt=end)
    return condition


def local_day(instant: datetime) -> date:
    return timezone.localtime(instant).date()


# --- keeping them ----------------------------------------------------------------------------------------


def rebuild(days: Iterable[date]) -> int:
    """Replace the DayFigures of `days` with rows computed from the incidents now. Idempotent. Runs in the
    caller's transaction (or its own); returns the number of rows written."""
    days = sorted(set(days))
    written = 0
    with transaction.atomic():
        for first in range(0, len(days), DAYS_PER_STATEMENT):
            batch = days[first : first + DAYS_PER_STATEMENT]
            DayFigures.objects.filter(day__in=batch).delete()
            DayIncidents.objects.filter(day__in=batch).delete()
            sql, params = rows_sql(Incident.objects.filter(_received_on(batch)))
            counts_sql, counts_params = incidents_sql(Incident.objects.filter(_received_on(batch)))
            with connections["default"].cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {DayFigures._meta.db_table} ({', '.join(COLUMNS)}) {sql}", params
                )
                written += cursor.rowcount
                cursor.execute(
                    f"INSERT INTO {DayIncidents._meta.db_table} ({', '.join(INCIDENT_COLUMNS)}) {counts_sql}",
                    counts_params,
                )
        rebuild_weeks({monday(day) for day in days})
    return written


def monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _merged(metric: str, where: str) -> str:
    """A SELECT of each week and domain's `metric` histogram (mtta or mttr) merged from the day rows."""
    return (
        "SELECT week, domain_id, array_agg(b ORDER BY b)::smallint[] AS bins, "  # noqa: S608
        "array_agg(n ORDER BY b)::integer[] AS counts, array_agg(s ORDER BY b)::float8[] AS sums FROM ("
        "SELECT date_trunc('week', d.day)::date AS week, d.domain_id, x.b, sum(x.c) AS n, sum(x.s) AS s "
        f"FROM {DayFigures._meta.db_table} d, unnest(d.{metric}_bins, d.{metric}_counts, d.{metric}_sums) "
        f"AS x(b, c, s) WHERE {where} GROUP BY 1, 2, 3) h GROUP BY week, domain_id"
    )


def rebuild_weeks(weeks: Iterable[date]) -> int:
    """Replace the WeekHistograms of `weeks` (Mondays) with the merged histograms of their DayFigures.
    Idempotent; runs in the caller's transaction (rebuild() calls it after the days)"""
    weeks = sorted(set(weeks))
    if not weeks:
        return 0
    with transaction.atomic(), connections["default"].cursor() as cursor:
        WeekHistograms.objects.filter(week__in=weeks).delete()
        where = "d.day >= %s AND d.day < %s AND date_trunc('week', d.day)::date = ANY(%s::date[])"
        bounds: list[Any] = [weeks[0], weeks[-1] + timedelta(days=7), weeks]
        histograms = ", ".join(
            f"COALESCE({alias}.{part}, '{{}}')" for alias in ("a", "r") for part in ("bins", "counts", "sums")
        )
        joined = "{0}.week = k.week AND {0}.domain_id IS NOT DISTINCT FROM k.domain_id"
        # Names are constants; values stay parameters.
        cursor.execute(
            f"INSERT INTO {WeekHistograms._meta.db_table} ({', '.join(WEEK_COLUMNS)}) "  # noqa: S608
            f"SELECT k.week, k.domain_id, {histograms} FROM ("
            f"SELECT DISTINCT date_trunc('week', d.day)::date AS week, d.domain_id "
            f"FROM {DayFigures._meta.db_table} d WHERE {where}) k "
            f"LEFT JOIN ({_merged('mtta', where)}) a ON {joined.format('a')} "
            f"LEFT JOIN ({_merged('mttr', where)}) r ON {joined.format('r')}",
            bounds * 3,
        )
        return cursor.rowcount


def dirty_days(
    start: datetime | None = None, end: datetime | None = None, *, using: str = "default"
) -> set[date]:
    """The local days with a change the stored figures do not hold (optionally within [start, end))."""
    slots = DirtySlot.objects.using(using)
    if start is not None:
        slots = slots.filter(slot__gte=start)
    if end is not None:
        slots = slots.filter(slot__lt=end)
    return {local_day(slot) for slot in slots.order_by().values_list("slot", flat=True).distinct()}


def refresh(*, max_days: int | None = None) -> int:
    """Rebuild every dirty day (at most `max_days`, oldest first), a batch per transaction. Returns the
    number of days rebuilt. A second run with nothing changed does nothing; two at once take turns."""
    done = 0
    while max_days is None or done < max_days:
        with transaction.atomic():
            with connections["default"].cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [REFRESH_LOCK])
            days = sorted(dirty_days())[:DAYS_PER_STATEMENT]
            if max_days is not None:
                days = days[: max_days - done]
            if not days:
                return done
            # Forget the dirty rows first, then read the incidents: a change committed after this statement
            # keeps its own dirty row (see the module docstring).
            for day in days:
                start, end = _day_range(day)
                DirtySlot.objects.filter(slot__gte=start, slot__lt=end).delete()
            rebuild(days)
            done += len(days)
    return done


def rebuild_all() -> int:
    """Every day from the first incident to the last, rebuilt; days without incidents emptied. Returns the
    number of days. For a new installation or after the histogram's definition changed."""
    first_last = Incident.objects.order_by().values_list("received_at", flat=True)
    first, last = first_last.order_by("received_at").first(), first_last.order_by("-received_at").first()
    with transaction.atomic():
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [REFRESH_LOCK])
        DirtySlot.objects.all().delete()
        DayFigures.objects.all().delete()
        DayIncidents.objects.all().delete()
        WeekHistograms.objects.all().delete()
        if first is None or last is None:
            return 0
        day, days = local_day(first), []
        while day <= local_day(last):
            days.append(day)
            day += timedelta(days=1)
        rebuild(days)
    return len(days)


# --- reading them ------------------------------------------------------------------------------------------


def _whole_days(filters: figures.ReportFilters) -> tuple[date, date]:
    """The local days entirely inside the period: [first, last)."""
    first = local_day(filters.start)
    if figures.day_start(first) < filters.start:
        first += timedelta(days=1)
    return first, local_day(filters.end)


def usable_weeks(
    filters: figures.ReportFilters, first: date, last: date, dirty: Iterable[date]
) -> list[date]:
    """The weeks whose WeekHistograms a report may read: weekly buckets, nothing finer than a domain to narrow
    by (the roll-up is keyed by domain alone), and all seven days whole days of the period and clean."""
    if filters.bucket != "week" or filters.team or filters.category or filters.priorities:
        return []
    dirty_weeks = {monday(day) for day in dirty}
    week, weeks = monday(first), []
    if week < first:
        week += timedelta(days=7)
    while week + timedelta(days=7) <= last:
        if week not in dirty_weeks:
            weeks.append(week)
        week += timedelta(days=7)
    return weeks


def _rows(
    user: Any, filters: figures.ReportFilters, alias: str, all_dirty: list[date]
) -> tuple[str, tuple[Any, ...], str, tuple[Any, ...]]:
    """The SELECT of the period's day rows (COLUMNS and `in_week`): stored ones for whole clean days, computed
    ones for the rest; and the SELECT of the week roll-ups that stand for the day rows marked `in_week`
    (empty when none may be used; see usable_weeks)."""
    columns = ", ".join(COLUMNS)
    first, last = _whole_days(filters)
    if first >= last:
        sql, params = rows_sql(figures.cohort(user, filters))
        return f"SELECT {columns}, false AS in_week FROM ({sql}) l", params, "", ()  # noqa: S608
    dirty = [day for day in all_dirty if first <= day < last]
    stored = DayFigures.objects.using(alias).filter(
        figures.scope_q(user, filters), day__gte=first, day__lt=last
    )
    if dirty:
        stored = stored.exclude(day__in=dirty)
    # Each part as its own closed range of received_at (not the cohort's range and an OR of exclusions): the
    # planner then estimates the few rows they hold, and joins the ratings by index rather than by hashing all.
    edges = Q(received_at__gte=filters.start, received_at__lt=figures.day_start(first)) | Q(
        received_at__gte=figures.day_start(last), received_at__lt=filters.end
    )
    live = figures.scope(user, filters).filter(edges | _received_on(dirty))
    live_sql, live_params = rows_sql(live)
    stored_sql, stored_params = _sql(stored.order_by().values_list(*COLUMNS))
    weeks = usable_weeks(filters, first, last, dirty)
    week_histograms = ", ".join(
        f"CASE WHEN in_week THEN '{{}}' ELSE {name} END AS {name}" for name in HISTOGRAMS
    )
    weeks_sql, weeks_params = "", ()
    if weeks:
        weeks_sql, weeks_params = _sql(
            WeekHistograms.objects.using(alias)
            .filter(figures.scope_q(user, filters), week__in=weeks)
            .order_by()
            .values_list("week", *HISTOGRAMS)
        )
    return (
        # A day row of a week read from its roll-up keeps its counts, not its histograms.
        f"SELECT {', '.join((*KEYS, *DAY_COUNTS))}, {week_histograms}, in_week FROM ("  # noqa: S608
        f"SELECT *, date_trunc('week', day)::date = ANY(%s::date[]) AS in_week FROM ({stored_sql}) s0) s "
        f"UNION ALL SELECT {columns}, false FROM ({live_sql}) l",
        (weeks, *stored_params, *live_params),
        weeks_sql,
        weeks_params,
    )


def percentiles_sql(source: str, fractions: tuple[float, ...]) -> str:
    """A SELECT of `bucket` and, for each fraction f, `p<i>`: percentile_cont(f) of the merged histogram
    `source` (columns bucket, b, n, s: a bin, its count and its sum of seconds) per bucket, as
    histogram_percentile computes it: the values at the two ranks around f * (n - 1), each read back as its
    bin's mean, interpolated linearly. In the database, so that one row per bucket reaches Python."""
    columns = []
    for index, fraction in enumerate(fractions):
        position = f"({fraction!r} * (total - 1))"

        def at(rank: str) -> str:
            return f"max(s / n) FILTER (WHERE upto - n <= {rank} AND {rank} < upto)"

        low, high = at(f"floor({position})"), at(f"ceil({position})")
        columns.append(f"({low} + ({high} - {low}) * ({position} - floor({position})))::float8 AS p{index}")
    return (
        f"SELECT bucket, {', '.join(columns)} FROM ("  # noqa: S608
        "SELECT bucket, b, n, s, sum(n) OVER (PARTITION BY bucket ORDER BY b) AS upto, "
        f"sum(n) OVER (PARTITION BY bucket) AS total FROM (SELECT bucket, b, n::float8 AS n, s FROM {source}) f "
        "WHERE n > 0"
        ") c GROUP BY bucket, total"
    )


SUMS = ", ".join(f"COALESCE(sum({name}), 0)::bigint AS {name}" for name in DAY_COUNTS)
HISTOGRAM_COLUMNS = ", ".join(HISTOGRAMS)
SUMMARY_SQL = """
WITH r AS MATERIALIZED ({rows}),
h AS (
    SELECT {bucket} AS bucket, {histograms} FROM r WHERE NOT in_week
    {weeks}
),
a AS (
    SELECT 0 AS bucket, x.b, sum(x.c)::bigint AS n, sum(x.s) AS s
    FROM h, unnest(mtta_bins, mtta_counts, mtta_sums) AS x(b, c, s) GROUP BY x.b
),
t AS MATERIALIZED (
    SELECT bucket, x.b, sum(x.c)::bigint AS n, sum(x.s) AS s
    FROM h, unnest(mttr_bins, mttr_counts, mttr_sums) AS x(b, c, s) GROUP BY bucket, x.b
),
m AS (SELECT 0 AS bucket, b, sum(n) AS n, sum(s) AS s FROM t GROUP BY b)
SELECT
    (SELECT row_to_json(t) FROM (SELECT {sums} FROM r) t),
    (SELECT ARRAY[p0, p1] FROM ({mtta}) p),
    (SELECT ARRAY[p0, p1] FROM ({mttr}) p),
    (SELECT json_agg(t ORDER BY t.priority) FROM (
        SELECT priority, sum(response_met)::bigint AS response_met,
            sum(response_breached)::bigint AS response_breached, sum(resolution_met)::bigint AS resolution_met,
            sum(resolution_breached)::bigint AS resolution_breached
        FROM r WHERE priority IS NOT NULL GROUP BY priority
    ) t),
    (SELECT json_agg(t) FROM (SELECT {bucket} AS bucket, sum(total)::bigint AS n FROM r GROUP BY 1) t),
    (SELECT json_agg(t) FROM ({trend}) t),
    (SELECT json_agg(t ORDER BY t.n DESC, t.category_id) FROM (
        SELECT category_id, sum(total)::bigint AS n FROM r WHERE category_id IS NOT NULL
        GROUP BY category_id ORDER BY n DESC, category_id LIMIT {top}
    ) t),
    (SELECT json_agg(t ORDER BY t.count DESC, t.id) FROM ({recurring}) t)
"""


def _durations(count: int, percentiles: list[float] | None) -> dict[str, Any]:
    median, p90 = percentiles or (None, None)
    return {"count": count, "median_seconds": figures._round(median), "p90_seconds": figures._round(p90)}


def summary_parts(user: Any, filters: figures.ReportFilters) -> dict[str, Any] | None:
    """The headline, the SLA by priority, the trend and the top categories of `figures.summary`, from the
    per-day figures, with the recurring problems, in two queries (the dirty days, then one statement); and
    "backlog_counts", the backlog's counts in one statement more. None where they do not apply (not
    PostgreSQL, or a user who sees nothing): the caller computes from the incidents."""
    alias = reports_alias()
    if connections[alias].vendor != "postgresql":
        return None
    try:
        all_dirty = sorted(dirty_days(using=alias))
        rows, params, weeks, weeks_params = _rows(user, filters, alias, all_dirty)
        recurring, recurring_params = _recurring_sql(user, filters, alias, all_dirty)
    except EmptyResultSet:
        return None
    bucket = "day" if filters.bucket == "day" else "date_trunc('week', day)::date"
    weeks_part = f"UNION ALL SELECT week, {HISTOGRAM_COLUMNS} FROM ({weeks}) w" if weeks else ""  # noqa: S608
    sql = SUMMARY_SQL.format(
        rows=rows,
        bucket=bucket,
        histograms=HISTOGRAM_COLUMNS,
        weeks=weeks_part,
        sums=SUMS,
        mtta=percentiles_sql("a", (0.5, 0.9)),
        mttr=percentiles_sql("m", (0.5, 0.9)),
        trend=percentiles_sql("t", (0.5,)),
        recurring=recurring,
        top=figures.TOP,
    )
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params + weeks_params + recurring_params)
        totals, mtta, mttr, priorities, received, medians, categories, problems = cursor.fetchone()
    row: dict[str, Any] = dict(totals)
    row["csat_average"] = row["score_sum"] / row["rated"] if row["rated"] else None
    headline = figures.headline_of(
        row, _durations(row["mtta_count"], mtta), _durations(row["mttr_count"], mttr)
    )
    counts = {date.fromisoformat(item["bucket"]): item["n"] for item in received or []}
    median_of = {date.fromisoformat(item["bucket"]): item["p0"] for item in medians or []}
    trend = [
        {
            "date": day,
            "received": counts.get(day, 0),
            "mttr_median_seconds": figures._round(median_of.get(day)),
        }
        for day in figures.bucket_dates(filters)
    ]
    by_priority = [
        {
            "priority": item["priority"],
            "response": figures._compliance(item["response_met"], item["response_breached"]),
            "resolution": figures._compliance(item["resolution_met"], item["resolution_breached"]),
        }
        for item in priorities or []
    ]
    top = categories or []
    names = {
        c.pk: c
        for c in Category.objects.using(alias)
        .filter(pk__in=[item["category_id"] for item in top])
        .select_related("domain")
    }
    top_categories = [
        {
            "domain": names[item["category_id"]].domain.slug,
            "category": names[item["category_id"]].path,
            "count": item["n"],
        }
        for item in top
    ]
    return {
        "headline": headline,
        "by_priority": by_priority,
        "trend": trend,
        "top_categories": top_categories,
        "recurring_problems": problems or [],
        "backlog_counts": lambda as_of: backlog_counts(user, filters, as_of, alias, all_dirty),
    }


def _recurring_sql(
    user: Any, filters: figures.ReportFilters, alias: str, all_dirty: list[date]
) -> tuple[str, tuple[Any, ...]]:
    """A SELECT of figures.recurring_problems' rows (id, title, known_error, count; unordered): the problem
    records of the user's sight linked to two or more incidents of the cohort, counted from DayIncidents for
    the whole clean days of the period and from the incidents for the rest."""
    visible = Q(problem_id__in=Subquery(problems_visible_to(user).values("pk")))
    first, last = _whole_days(filters)
    cohort = figures.cohort(user, filters).filter(visible)
    parts: list[tuple[str, tuple[Any, ...]]] = []
    if first >= last:
        live = cohort
    else:
        dirty = [day for day in all_dirty if first <= day < last]
        stored = DayIncidents.objects.using(alias).filter(
            figures.scope_q(user, filters), visible, day__gte=first, day__lt=last
        )
        if dirty:
            stored = stored.exclude(day__in=dirty)
        parts.append(_sql(stored.order_by().values("problem_id").annotate(c=Sum("n"))))
        edges = Q(received_at__gte=filters.start, received_at__lt=figures.day_start(first)) | Q(
            received_at__gte=figures.day_start(last), received_at__lt=filters.end
        )
        live = figures.scope(user, filters).filter(visible).filter(edges | _received_on(dirty))
    parts.append(_sql(live.order_by().values("problem_id").annotate(c=Count("pk"))))
    union = " UNION ALL ".join(
        f"SELECT problem_id, c FROM ({sql}) p{index}"  # noqa: S608
        for index, (sql, _) in enumerate(parts)
    )
    problem = Problem._meta.db_table
    sql = (
        f"SELECT p.id, p.title, p.known_error, x.count FROM ("  # noqa: S608
        f"SELECT problem_id, sum(c)::bigint AS count FROM ({union}) u GROUP BY problem_id HAVING sum(c) >= 2 "
        f"ORDER BY count DESC, problem_id LIMIT {figures.TOP}) x JOIN {problem} p ON p.id = x.problem_id"
    )
    return sql, tuple(param for _, params in parts for param in params)


BACKLOG_SQL = """
WITH u AS MATERIALIZED (
    SELECT (day + time '12:00') AT TIME ZONE %s AS received, (ended_day + time '12:00') AT TIME ZONE %s AS ended,
        {stored_bucket} AS bucket, c AS n
    FROM ({stored}) s
    UNION ALL
    SELECT received_at, ended, bucket::date, 1 FROM ({live}) l
)
SELECT
    (SELECT row_to_json(t) FROM (SELECT {aggregates} FROM u) t),
    (SELECT json_agg(t) FROM (
        SELECT bucket, sum(n)::bigint AS n FROM u WHERE ended < %s GROUP BY bucket
    ) t)
"""


def backlog_counts(
    user: Any, filters: figures.ReportFilters, as_of: datetime, alias: str, all_dirty: list[date]
) -> figures.BacklogCounts:
    """figures.backlog_counts in one statement, from DayIncidents and the incidents.

    A stored row (received on one day, ended on another) stands for its incidents wherever no instant the
    backlog compares with falls inside its days: the row's day then compares with the instant as each of its
    incidents' times does, and so it stands as one time (noon) of each day. Days that hold such an instant,
    and dirty days, are read from the incidents: those received on the days holding the start, the end of
    the backlog and its ageing limits, or on a dirty day; and those ended on the days holding the start, the
    backlog's end or the period's end. Exact, like the raw count."""
    received_edges = [filters.start, as_of] + [
        as_of - timedelta(days=days)
        for _, low, high in figures.AGEING_BUCKETS
        for days in (low, high)
        if days
    ]
    received_days = sorted({local_day(instant) for instant in received_edges} | set(all_dirty))
    ended_days = sorted({local_day(instant) for instant in (filters.start, as_of, filters.end)})
    stored = (
        DayIncidents.objects.using(alias)
        .filter(figures.scope_q(user, filters), day__lt=local_day(as_of))
        .filter(Q(ended_day__isnull=True) | Q(ended_day__gte=local_day(filters.start)))
        .exclude(day__in=received_days)
        .exclude(ended_day__in=ended_days)
        .order_by()
        .values("day", "ended_day")
        .annotate(c=Sum("n"))
        .values_list("day", "ended_day", "c")
    )
    ended = figures.ended_at()
    ended_on = Q(pk__in=[])
    for day in ended_days:
        start, end = _day_range(day)
        ended_on |= Q(ended__gte=start, ended__lt=end)
    live = (
        figures.scope(user, filters)
        .filter(received_at__lt=as_of)
        .annotate(ended=ended)
        .filter(Q(ended__isnull=True) | Q(ended__gte=filters.start))
        .filter(_received_on(received_days) | ended_on)
        .order_by()
        .annotate(bucket=figures._bucket_of(ended, filters.bucket))
        .values_list("received_at", "ended", "bucket")
    )
    open_at_end = "(ended IS NULL OR ended > %s)"
    aggregates = [("at_start", "received < %s", [filters.start]), ("at_end", open_at_end, [as_of])]
    for label, low, high in figures.AGEING_BUCKETS:
        window, values = f"{open_at_end} AND received <= %s", [as_of, as_of - timedelta(days=low)]
        if high is not None:
            window, values = f"{window} AND received > %s", [*values, as_of - timedelta(days=high)]
        aggregates.append((label, window, values))
    stored_sql, stored_params = _sql(stored)
    live_sql, live_params = _sql(live)
    zone = timezone.get_current_timezone_name()
    sql = BACKLOG_SQL.format(
        stored=stored_sql,
        stored_bucket="ended_day" if filters.bucket == "day" else "date_trunc('week', ended_day)::date",
        live=live_sql,
        aggregates=", ".join(
            f'COALESCE(sum(n) FILTER (WHERE {condition}), 0)::bigint AS "{name}"'
            for name, condition, _ in aggregates
        ),
    )
    params = (
        zone,
        zone,
        *stored_params,
        *live_params,
        *(v for _, _, values in aggregates for v in values),
        filters.end,
    )
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        row, endings = cursor.fetchone()
    return dict(row), {date.fromisoformat(item["bucket"]): item["n"] for item in endings or []}
