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
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections, transaction
from django.db.models import Count, Func, IntegerField, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from config.dbrouter import reports_alias
from incidents.models import Category, Incident

from . import figures
from .models import DAY_COUNTS, DayFigures, DirtySlot

KEYS = ("day", "domain_id", "team_id", "category_id", "priority")
HISTOGRAMS = ("mtta_bins", "mtta_counts", "mtta_sums", "mttr_bins", "mttr_counts", "mttr_sums")
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
            sql, params = rows_sql(Incident.objects.filter(_received_on(batch)))
            with connections["default"].cursor() as cursor:
                cursor.execute(
                    f"INSERT INTO {DayFigures._meta.db_table} ({', '.join(COLUMNS)}) {sql}", params
                )
                written += cursor.rowcount
    return written


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


def _rows(user: Any, filters: figures.ReportFilters, alias: str) -> tuple[str, tuple[Any, ...]]:
    """The SELECT of the period's day rows: stored ones for whole clean days, computed ones for the rest."""
    first, last = _whole_days(filters)
    if first >= last:
        return rows_sql(figures.cohort(user, filters))
    dirty = sorted(d for d in dirty_days(figures.day_start(first), figures.day_start(last), using=alias))
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
    columns = ", ".join(COLUMNS)
    return (
        f"SELECT {columns} FROM ({stored_sql}) s UNION ALL SELECT {columns} FROM ({live_sql}) l",  # noqa: S608
        stored_params + live_params,
    )


SUMS = ", ".join(f"COALESCE(sum({name}), 0)::bigint AS {name}" for name in DAY_COUNTS)
SUMMARY_SQL = """
WITH r AS MATERIALIZED ({rows}),
b AS (SELECT {bucket} AS bucket, r.* FROM r)
SELECT
    (SELECT row_to_json(t) FROM (SELECT {sums} FROM r) t),
    (SELECT json_agg(t) FROM (
        SELECT x.b, sum(x.c)::bigint AS n, sum(x.s) AS s
        FROM r, unnest(mtta_bins, mtta_counts, mtta_sums) AS x(b, c, s) GROUP BY x.b
    ) t),
    (SELECT json_agg(t ORDER BY t.priority) FROM (
        SELECT priority, sum(response_met)::bigint AS response_met,
            sum(response_breached)::bigint AS response_breached, sum(resolution_met)::bigint AS resolution_met,
            sum(resolution_breached)::bigint AS resolution_breached
        FROM r WHERE priority IS NOT NULL GROUP BY priority
    ) t),
    (SELECT json_agg(t) FROM (SELECT bucket, sum(total)::bigint AS n FROM b GROUP BY bucket) t),
    (SELECT json_agg(t) FROM (
        SELECT bucket, x.b, sum(x.c)::bigint AS n, sum(x.s) AS s
        FROM b, unnest(mttr_bins, mttr_counts, mttr_sums) AS x(b, c, s)
        GROUP BY bucket, x.b
    ) t),
    (SELECT json_agg(t ORDER BY t.n DESC, t.category_id) FROM (
        SELECT category_id, sum(total)::bigint AS n FROM r WHERE category_id IS NOT NULL
        GROUP BY category_id ORDER BY n DESC, category_id LIMIT {top}
    ) t)
"""


def _sorted_histogram(items: Iterable[dict[str, Any]]) -> Histogram:
    return sorted((int(item["b"]), int(item["n"]), float(item["s"])) for item in items if item["n"])


def _durations(count: int, histogram: Histogram) -> dict[str, Any]:
    return {
        "count": count,
        "median_seconds": figures._round(histogram_percentile(histogram, 0.5)),
        "p90_seconds": figures._round(histogram_percentile(histogram, 0.9)),
    }


def summary_parts(user: Any, filters: figures.ReportFilters) -> dict[str, Any] | None:
    """The headline, the SLA by priority, the trend and the top categories of `figures.summary`, from the
    per-day figures, in two queries (the dirty days, then one statement). None where they do not apply
    (not PostgreSQL, or a user who sees nothing): the caller computes from the incidents."""
    alias = reports_alias()
    if connections[alias].vendor != "postgresql":
        return None
    try:
        rows, params = _rows(user, filters, alias)
    except EmptyResultSet:
        return None
    bucket = "r.day" if filters.bucket == "day" else "date_trunc('week', r.day)::date"
    sql = SUMMARY_SQL.format(rows=rows, bucket=bucket, sums=SUMS, top=figures.TOP)
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        totals, histograms, priorities, received, trend_bins, categories = cursor.fetchone()
    row: dict[str, Any] = dict(totals)
    row["csat_average"] = row["score_sum"] / row["rated"] if row["rated"] else None
    # The period's resolution times are its buckets' merged: one pass over the histograms serves both.
    mttr_bins: dict[int, dict[str, Any]] = {}
    for item in trend_bins or []:
        merged = mttr_bins.setdefault(item["b"], {"b": item["b"], "n": 0, "s": 0.0})
        merged["n"] += item["n"]
        merged["s"] += item["s"]
    headline = figures.headline_of(
        row,
        _durations(row["mtta_count"], _sorted_histogram(histograms or [])),
        _durations(row["mttr_count"], _sorted_histogram(mttr_bins.values())),
    )
    counts = {date.fromisoformat(item["bucket"]): item["n"] for item in received or []}
    per_bucket: dict[date, list[dict[str, Any]]] = {}
    for item in trend_bins or []:
        per_bucket.setdefault(date.fromisoformat(item["bucket"]), []).append(item)
    trend = [
        {
            "date": day,
            "received": counts.get(day, 0),
            "mttr_median_seconds": figures._round(
                histogram_percentile(_sorted_histogram(per_bucket.get(day, [])), 0.5)
            ),
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
    }
