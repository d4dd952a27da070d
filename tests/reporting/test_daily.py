"""The per-day report figures (reporting.daily) against the report computed from the incidents.

The property: for any history (incidents received at any minute, worked through every state, reopened, put on
hold, reclassified to another priority, domain, team or category after the fact, rated, imported in bulk,
moved to another reception time) and any refreshes in between, every figure the per-day path gives equals the
raw computation: counts and rates exactly, medians and p90 within 1 %. In a time zone at +5:30, so that the
days are not UTC's and the quarter-hour slots matter.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from incidents.models import Category, Domain, Incident, Problem, SatisfactionRating, Team
from reporting import daily, figures
from reporting.figures import ReportFilters
from reporting.models import DayFigures, DirtySlot, WeekHistograms
from tests.factories import UserFactory, agent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

ZONE = "Asia/Kolkata"
BASE = datetime(2026, 3, 1, tzinfo=UTC)
SPAN_DAYS = 40
STATES = list(Incident.State.values)


def _close(actual: Any, expected: Any, path: str = "") -> None:
    """Equal, except durations in seconds: within 1 % (and 0.1 s, the figures' rounding)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), path
        assert actual.keys() == expected.keys(), path
        for key in expected:
            _close(actual[key], expected[key], f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), path
        assert len(actual) == len(expected), path
        for index, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _close(a, e, f"{path}[{index}]")
    elif path.endswith("_seconds") and expected is not None:
        assert actual is not None, path
        assert abs(actual - expected) <= 0.01 * abs(expected) + 0.1, (path, actual, expected)
    else:
        assert actual == expected, (path, actual, expected)


def both(user: Any, filters: ReportFilters) -> tuple[dict[str, Any], dict[str, Any]]:
    per_day = figures.summary(user, filters)
    figures.USE_DAY_FIGURES = False
    try:
        raw = figures.summary(user, filters)
    finally:
        figures.USE_DAY_FIGURES = True
    return per_day, raw


class Desk:
    def __init__(self) -> None:
        self.domains = [Domain.objects.get(slug=s) for s in ("it_service", "security", "medical")]
        self.teams = [Team.objects.create(slug=f"daily-{n}", name=f"Daily {n}") for n in range(3)]
        self.teams[0].domains.add(self.domains[0], self.domains[1])
        self.teams[1].domains.add(self.domains[0])
        self.teams[2].domains.add(self.domains[2])
        self.categories = [
            [Category.objects.create(domain=d, slug=f"daily-{n}", name=f"D{n}") for n in range(2)]
            for d in self.domains
        ]
        # Problem records for the recurring problems: one of no domain, one of an open domain, one of the
        # restricted medical domain (hidden from the IT agent even where incidents of open domains link to it).
        self.problems = [
            Problem.objects.create(title="Daily problem"),
            Problem.objects.create(title="Daily IT problem", domain=self.domains[0]),
            Problem.objects.create(title="Daily medical problem", domain=self.domains[2]),
        ]
        self.superuser = UserFactory(is_superuser=True, is_staff=True)
        self.it_agent = agent(self.teams[1])  # medical (restricted) is hidden from them
        self.nurse = agent(self.teams[2])


@pytest.fixture
def desk() -> Desk:
    return Desk()


incident_specs = st.fixed_dictionaries(
    {
        "minute": st.integers(0, SPAN_DAYS * 24 * 60),
        "state": st.sampled_from(STATES),
        "priority": st.one_of(st.none(), st.integers(1, 5)),
        "domain": st.integers(0, 2),
        "team": st.one_of(st.none(), st.integers(0, 2)),
        "category": st.one_of(st.none(), st.integers(0, 1)),
        "classified": st.booleans(),
        "responded": st.one_of(st.none(), st.integers(0, 3 * 24 * 3600)),
        "resolved": st.one_of(st.none(), st.integers(0, 20 * 24 * 3600)),
        "reopens": st.integers(0, 2),
        "escalation": st.integers(0, 2),
        "sla_response": st.sampled_from(["", "pending", "met", "breached", "cleared"]),
        "sla_resolution": st.sampled_from(["", "pending", "met", "breached"]),
        "outcome": st.sampled_from(["", "near_miss", "no_harm", "harm"]),
        "late": st.booleans(),
        "rating": st.one_of(st.none(), st.integers(1, 5)),
        "problem": st.one_of(st.none(), st.integers(0, 2)),
    }
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("refresh")),
        st.tuples(st.just("reopen"), st.integers(0, 99)),
        st.tuples(st.just("hold"), st.integers(0, 99)),
        st.tuples(st.just("resolve"), st.integers(0, 99), st.integers(0, 10 * 24 * 3600)),
        st.tuples(
            st.just("reclassify"),
            st.integers(0, 99),
            st.one_of(st.none(), st.integers(1, 5)),
            st.integers(0, 2),
            st.one_of(st.none(), st.integers(0, 2)),
            st.integers(0, 1),
        ),
        st.tuples(st.just("rate"), st.integers(0, 99), st.one_of(st.none(), st.integers(1, 5))),
        st.tuples(st.just("move"), st.integers(0, 99), st.integers(0, SPAN_DAYS * 24 * 60)),
        st.tuples(st.just("link"), st.integers(0, 99), st.one_of(st.none(), st.integers(0, 2))),
        st.tuples(st.just("end"), st.integers(0, 99), st.integers(-2 * 24 * 3600, 40 * 24 * 3600)),
        st.tuples(st.just("import"), st.lists(incident_specs, min_size=1, max_size=5)),
        st.tuples(st.just("delete"), st.integers(0, 99)),
    ),
    max_size=12,
)
periods = st.one_of(
    # whole local days, as the dashboard asks; over 92 days the buckets are weeks and the week roll-ups count
    st.tuples(st.integers(-2, SPAN_DAYS), st.integers(1, SPAN_DAYS + 3) | st.integers(93, 130)).map(
        lambda p: ("days", p[0] * 24 * 60, p[1] * 24 * 60)
    ),
    # any instant to any instant (partial days at both ends), long enough for weekly buckets too
    st.tuples(st.integers(-3000, SPAN_DAYS * 1440), st.integers(1, 120 * 1440)).map(lambda p: ("any", *p)),
)
filter_sets = st.sampled_from(["none", "domain", "team", "category", "priority"])


def _row(desk: Desk, spec: dict[str, Any]) -> Incident:
    received = BASE + timedelta(minutes=spec["minute"])
    domain = desk.domains[spec["domain"]]
    state = spec["state"]
    classified = spec["classified"] or state != "received"
    resolved = state in ("resolved", "closed") and spec["resolved"] is not None
    return Incident(
        title="Daily figures",
        description="",
        state=state,
        domain=domain,
        category=desk.categories[spec["domain"]][spec["category"]] if spec["category"] is not None else None,
        team=desk.teams[spec["team"]] if spec["team"] is not None else None,
        priority=spec["priority"],
        tracking_token=secrets.token_urlsafe(16),
        received_at=received,
        classified_at=received + timedelta(minutes=1) if classified else None,
        responded_at=received + timedelta(seconds=spec["responded"])
        if spec["responded"] is not None
        else None,
        resolved_at=received + timedelta(seconds=spec["resolved"]) if resolved else None,
        closed_at=received + timedelta(days=21) if state == "closed" else None,
        cancelled_at=received + timedelta(minutes=5) if state == "cancelled" else None,
        reopen_count=spec["reopens"],
        escalation_level=spec["escalation"],
        sla_response=spec["sla_response"],
        sla_resolution=spec["sla_resolution"],
        outcome=spec["outcome"],
        history_started_late=spec["late"],
        problem=desk.problems[spec["problem"]] if spec.get("problem") is not None else None,
    )


def _add(desk: Desk, specs: list[dict[str, Any]]) -> list[Incident]:
    """Bulk inserts, as the importer writes a history (incidents.importer)."""
    rows = Incident.objects.bulk_create([_row(desk, spec) for spec in specs])
    ratings = [
        SatisfactionRating(incident=row, score=spec["rating"])
        for row, spec in zip(rows, specs, strict=True)
        if spec["rating"] is not None
    ]
    SatisfactionRating.objects.bulk_create(ratings)
    return rows


def _apply(desk: Desk, incidents: list[Incident], operation: tuple[Any, ...]) -> None:
    kind = operation[0]
    if kind == "refresh":
        daily.refresh()
        return
    if kind == "import":
        incidents.extend(_add(desk, operation[1]))
        return
    if not incidents:
        return
    target = incidents[operation[1] % len(incidents)]
    row = Incident.objects.filter(pk=target.pk)
    if not row.exists():
        return
    current = row.get()
    if kind == "reopen" and current.state in ("resolved", "closed"):
        row.update(
            state="responding", resolved_at=None, closed_at=None, reopen_count=current.reopen_count + 1
        )
    elif kind == "hold":
        row.update(state="on_hold", hold_reason="awaiting_vendor", held_from=current.state)
    elif kind == "resolve":
        row.update(state="resolved", resolved_at=current.received_at + timedelta(seconds=operation[2]))
    elif kind == "reclassify":
        _, _, priority, domain, team, category = operation
        row.update(
            priority=priority,
            domain=desk.domains[domain],
            team=desk.teams[team] if team is not None else None,
            category=desk.categories[domain][category],
            classified_at=current.classified_at or current.received_at,
        )
    elif kind == "rate":
        SatisfactionRating.objects.filter(incident=current).delete()
        if operation[2] is not None:
            SatisfactionRating.objects.create(incident=current, score=operation[2])
    elif kind == "link":
        row.update(problem=desk.problems[operation[2]] if operation[2] is not None else None)
    elif kind == "end":
        # Closed or cancelled at any time, even before its reception (the backlog must still count as the
        # incidents do), and a resolution cleared: the backlog's end is then the close.
        row.update(
            state="closed", resolved_at=None, closed_at=current.received_at + timedelta(seconds=operation[2])
        )
    elif kind == "move":
        row.update(received_at=BASE + timedelta(minutes=operation[2]))
    elif kind == "delete":
        SatisfactionRating.objects.filter(incident=current).delete()
        row.delete()


@contextmanager
def _no_clock() -> Iterator[None]:
    yield


def _filters(desk: Desk, period: tuple[str, int, int], which: str) -> ReportFilters:
    _, first, length = period
    local = timezone.get_current_timezone()
    if period[0] == "days":
        start = timezone.make_aware(datetime(2026, 3, 1), local) + timedelta(minutes=first)
    else:
        start = BASE + timedelta(minutes=first)
    extra: dict[str, Any] = {
        "none": {},
        "domain": {"domain": "it_service"},
        "team": {"team": "daily-1"},
        "category": {"category": "daily-1"},
        "priority": {"priorities": (1, 2)},
    }[which]
    return ReportFilters(start=start, end=start + timedelta(minutes=length), **extra)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    specs=st.lists(incident_specs, max_size=25),
    ops=operations,
    period=periods,
    which=filter_sets,
    refresh_first=st.booleans(),
    now=st.one_of(st.none(), st.integers(0, (SPAN_DAYS + 2) * 24 * 60)),
)
def test_day_figures_equal_the_raw_report_on_random_histories(
    desk, specs, ops, period, which, refresh_first, now
):
    """`now`, when given, is an instant among the incidents: a period that runs past it has its backlog and
    ageing at now, and incidents received later (imported from another clock) count in no backlog."""
    clock = time_machine.travel(BASE + timedelta(minutes=now), tick=False) if now is not None else None
    with timezone.override(ZONE), transaction.atomic(), clock or _no_clock():
        incidents = _add(desk, specs)
        if refresh_first:
            daily.refresh()
        for operation in ops:
            _apply(desk, incidents, operation)
        filters = _filters(desk, period, which)
        for user in (desk.superuser, desk.it_agent, desk.nurse):
            per_day, raw = both(user, filters)
            _close(per_day, raw)
        # A refresh now changes nothing a report says, and a second one does nothing.
        daily.refresh()
        assert daily.refresh() == 0
        assert not DirtySlot.objects.exists()
        for user in (desk.superuser, desk.it_agent):
            per_day, raw = both(user, filters)
            _close(per_day, raw)
        transaction.set_rollback(True)


def test_a_refresh_keeps_the_counts_of_whole_days_and_reads_them_back(desk):
    specs = [
        {"minute": m, "state": "closed", "priority": 1 + m % 5, "domain": m % 3, "team": m % 3, "category": 0,
         "classified": True, "responded": 600 + m, "resolved": 3600 + m, "reopens": 0, "escalation": 0,
         "sla_response": "met", "sla_resolution": "breached", "outcome": "", "late": False, "rating": 5}
        for m in range(0, 10 * 1440, 97)
    ]  # fmt: skip
    with timezone.override(ZONE):
        _add(desk, specs)
        assert DirtySlot.objects.exists()
        days = daily.refresh()
        assert days == 11  # ten days from 05:30 in Kolkata (BASE) touch eleven local days
        assert not DirtySlot.objects.exists()
        stored = DayFigures.objects.count()
        assert daily.refresh() == 0
        assert DayFigures.objects.count() == stored
        filters = _filters(desk, ("days", 1, 7 * 1440), "none")
        per_day, raw = both(desk.superuser, filters)
        _close(per_day, raw)
        assert per_day["counts"]["total"] == sum(
            1 for s in specs if filters.start <= BASE + timedelta(minutes=s["minute"]) < filters.end
        )


def test_visibility_is_kept_by_domain_on_the_stored_days(desk):
    """A responder whose teams do not handle the restricted medical domain does not count its incidents,
    from stored days as from the incidents; the nurse does."""
    base = {"state": "resolved", "priority": 2, "team": None, "category": 0, "classified": True,
            "responded": 60, "resolved": 7200, "reopens": 0, "escalation": 0, "sla_response": "met",
            "sla_resolution": "met", "outcome": "", "late": False, "rating": None}  # fmt: skip
    with timezone.override(ZONE):
        _add(desk, [{**base, "minute": 2 * 1440, "domain": 0}, {**base, "minute": 2 * 1440, "domain": 2}])
        _add(desk, [{**base, "minute": 3 * 1440, "domain": 2, "outcome": "near_miss"}])
        daily.refresh()
        assert not DirtySlot.objects.exists()
        assert DayFigures.objects.filter(domain_id=desk.domains[2].pk).exists()
        filters = _filters(desk, ("days", 0, 7 * 1440), "none")
        seen = {}
        for name, user in (("it", desk.it_agent), ("nurse", desk.nurse), ("super", desk.superuser)):
            per_day, raw = both(user, filters)
            _close(per_day, raw)
            seen[name] = per_day["counts"]["total"]
        assert seen == {"it": 1, "nurse": 3, "super": 3}
        assert figures.summary(desk.nurse, filters)["near_miss"] == {"count": 1, "of": 1, "rate": 1.0}
        assert figures.summary(desk.it_agent, filters)["near_miss"]["of"] == 0


def test_a_change_after_the_refresh_is_counted_before_the_next_one(desk):
    base = {"minute": 1440 + 600, "state": "resolved", "priority": 2, "domain": 0, "team": 0, "category": 0,
            "classified": True, "responded": 60, "resolved": 7200, "reopens": 0, "escalation": 0,
            "sla_response": "met", "sla_resolution": "met", "outcome": "", "late": False, "rating": None}  # fmt: skip
    with timezone.override(ZONE):
        (incident,) = _add(desk, [base])
        daily.refresh()
        filters = _filters(desk, ("days", 0, 5 * 1440), "none")
        assert figures.summary(desk.superuser, filters)["rates"]["reopen"]["count"] == 0
        Incident.objects.filter(pk=incident.pk).update(state="responding", resolved_at=None, reopen_count=1)
        assert DirtySlot.objects.exists()
        data = figures.summary(desk.superuser, filters)
        assert data["rates"]["reopen"] == {"count": 1, "of": 1, "rate": 1.0}
        assert data["mttr"]["count"] == 0
        SatisfactionRating.objects.create(incident=incident, score=4)
        assert figures.summary(desk.superuser, filters)["csat"]["count"] == 1


def test_the_rebuild_command_is_idempotent_and_rebuilds_everything(desk):
    spec = {"minute": 0, "state": "closed", "priority": 3, "domain": 1, "team": 0, "category": 1,
            "classified": True, "responded": 90, "resolved": 5000, "reopens": 1, "escalation": 1,
            "sla_response": "breached", "sla_resolution": "met", "outcome": "", "late": False, "rating": 2}  # fmt: skip
    with timezone.override(ZONE):
        _add(desk, [{**spec, "minute": m} for m in range(0, 5 * 1440, 300)])
        call_command("rebuild_report_days", stdout=StringIO())
        first = sorted(DayFigures.objects.values_list(*daily.COLUMNS))
        call_command("rebuild_report_days", "--all", stdout=StringIO())
        assert sorted(DayFigures.objects.values_list(*daily.COLUMNS)) == first
        call_command("rebuild_report_days", stdout=StringIO())
        assert sorted(DayFigures.objects.values_list(*daily.COLUMNS)) == first
        # A day touched without a change that counts is rebuilt to the same rows, not added to.
        Incident.objects.filter(pk=Incident.objects.order_by("pk").first().pk).update(title="Touched")
        assert DirtySlot.objects.exists()
        call_command("rebuild_report_days", stdout=StringIO())
        assert sorted(DayFigures.objects.values_list(*daily.COLUMNS)) == first
        assert sum(row.total for row in DayFigures.objects.all()) == Incident.objects.count()


def test_histogram_percentile_is_exact_for_distinct_bins_and_within_one_percent_otherwise():
    assert daily.histogram_percentile([], 0.5) is None
    assert daily.histogram_percentile([(10, 1, 7.0)], 0.9) == 7.0
    # Two values of one bin read back as their mean: within 1 % of either.
    assert daily.histogram_percentile([(700, 2, 1000.0 + 1005.0)], 0.5) == pytest.approx(1002.5)


def test_a_week_with_a_change_is_read_from_its_days_not_from_its_roll_up(desk):
    """WeekHistograms stand for their seven days only while those are clean: after a change to one incident
    of a week, a year's report (weekly buckets) reads that week from its days and the incidents, and its
    medians follow the change at once."""
    spec = {"state": "resolved", "priority": 2, "domain": 0, "team": 0, "category": 0, "classified": True,
            "responded": 60, "reopens": 0, "escalation": 0, "sla_response": "met", "sla_resolution": "met",
            "outcome": "", "late": False, "rating": None}  # fmt: skip
    with timezone.override(ZONE):
        rows = _add(desk, [{**spec, "minute": m, "resolved": 3600} for m in range(0, 30 * 1440, 720)])
        daily.refresh()
        assert WeekHistograms.objects.exists()
        filters = _filters(desk, ("days", -2, 120 * 1440), "none")
        assert filters.bucket == "week"
        week = [row for row in rows if daily.monday(daily.local_day(row.received_at)) == daily.monday(
            daily.local_day(rows[20].received_at))]  # fmt: skip
        Incident.objects.filter(pk__in=[row.pk for row in week]).update(
            resolved_at=F("received_at") + timedelta(hours=50)
        )
        assert DirtySlot.objects.exists()
        per_day, raw = both(desk.superuser, filters)
        _close(per_day, raw)
        changed = [bucket for bucket in per_day["trend"] if bucket["mttr_median_seconds"] == 50 * 3600]
        assert len(changed) == 1


def test_the_backlog_counts_stored_days_once_where_its_instants_fall(desk):
    """The backlog from DayIncidents: incidents received on whole clean days and ended on the days that hold
    the period's start, its end, or in between, at instants on either side of those edges; open ones; and
    one closed before it was received. Every figure equals the count from the incidents, after a refresh
    (all stored) and after a change (its day dirty)."""
    spec = {"state": "closed", "priority": 2, "domain": 0, "team": 0, "category": 0, "classified": True,
            "responded": 60, "resolved": None, "reopens": 0, "escalation": 0, "sla_response": "met",
            "sla_resolution": "met", "outcome": "", "late": False, "rating": None}  # fmt: skip
    with timezone.override(ZONE):
        rows = _add(desk, [{**spec, "minute": m} for m in range(0, 20 * 1440, 180)])
        rows += _add(desk, [{**spec, "minute": m, "state": "responding"} for m in range(0, 20 * 1440, 1000)])
        filters = _filters(desk, ("any", 6 * 1440 + 300, 8 * 1440 + 100), "none")
        for number, row in enumerate(rows[: len(rows) - 29]):
            # ends around the period's start and end: before, at and after each, by minutes and days
            edge = filters.start if number % 2 else filters.end
            ended = edge + timedelta(minutes=(number % 7 - 3) * 97, days=(number % 5) - 2)
            Incident.objects.filter(pk=row.pk).update(closed_at=ended)
        daily.refresh()
        assert DirtySlot.objects.count() == 0
        for user in (desk.superuser, desk.it_agent):
            per_day, raw = both(user, filters)
            _close(per_day["backlog"], raw["backlog"])
        assert raw["backlog"]["series"][0]["open"] > 0
        Incident.objects.filter(pk=rows[40].pk).update(closed_at=filters.end + timedelta(days=3))
        per_day, raw = both(desk.superuser, filters)
        _close(per_day["backlog"], raw["backlog"])
