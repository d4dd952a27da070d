"""Each figure of reporting.figures against the hand-computed values of tests/reporting/desk.py.

These run on SQLite and on PostgreSQL (DATABASE_URL): the two paths (percentile_cont, ordered durations)
must give the same numbers.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.core.serializers.json import DjangoJSONEncoder

from incidents.models import Problem
from reporting import figures
from reporting.figures import ReportFilters, percentile

from . import desk as d

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk():
    return d.build()


def report(user, **filters):
    with time_machine.travel(d.AFTER, tick=False):
        data = figures.summary(user, ReportFilters(start=d.START, end=d.END, **filters))
    # Dates and datetimes as the API writes them, so the expectations read like the JSON.
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder).replace("+00:00", "Z"))


def test_counts_by_state(desk):
    assert report(desk.superuser)["counts"] == d.EXPECTED["counts"]


def test_mtta_median_and_p90(desk):
    assert report(desk.superuser)["mtta"] == d.EXPECTED["mtta"]


def test_mttr_median_and_p90_counts_wall_clock_to_the_last_resolution(desk):
    assert report(desk.superuser)["mttr"] == d.EXPECTED["mttr"]


def test_response_and_resolution_sla_compliance(desk):
    sla = report(desk.superuser)["sla"]
    assert sla["response"] == d.EXPECTED["sla"]["response"]
    assert sla["resolution"] == d.EXPECTED["sla"]["resolution"]


def test_sla_compliance_by_priority(desk):
    assert report(desk.superuser)["sla"]["by_priority"] == d.EXPECTED["sla"]["by_priority"]


def test_reopen_escalation_and_first_contact_resolution_rates(desk):
    assert report(desk.superuser)["rates"] == d.EXPECTED["rates"]


def test_near_miss_ratio(desk):
    assert report(desk.superuser)["near_miss"] == d.EXPECTED["near_miss"]


def test_csat(desk):
    assert report(desk.superuser)["csat"] == d.EXPECTED["csat"]


def test_trend_of_incidents_and_mttr_per_day(desk):
    assert report(desk.superuser)["trend"] == d.EXPECTED["trend"]


def test_backlog_series_and_ageing(desk):
    assert report(desk.superuser)["backlog"] == d.EXPECTED["backlog"]


def test_top_categories(desk):
    assert report(desk.superuser)["top_categories"] == d.EXPECTED["top_categories"]


def test_recurring_problems_need_two_incidents(desk):
    problems = report(desk.superuser)["recurring_problems"]
    assert problems == [
        {
            "id": Problem.objects.get(title="VPN firmware").pk,
            "title": "VPN firmware",
            "known_error": False,
            "count": 2,
        }
    ]


def test_only_visible_incidents_count(desk):
    """The IT agent does not handle the medical domain: i5 is not theirs to count."""
    data = report(desk.it_agent)
    assert data["counts"]["total"] == 5
    assert data["near_miss"] == {"count": 0, "of": 1, "rate": 0.0}
    assert data["backlog"]["open"] == 2
    assert {c["category"] for c in data["top_categories"]} == {"network/vpn", "hardware"}


def test_domain_filter(desk):
    data = report(desk.nurse, domain="medical")
    assert data["counts"]["total"] == 1
    assert data["near_miss"] == {"count": 1, "of": 1, "rate": 1.0}
    assert data["backlog"]["series"][-1] == {"date": "2026-03-08", "open": 1}


def test_team_filter_follows_the_current_team(desk):
    data = report(desk.superuser, team="net")
    assert data["counts"]["total"] == 1  # i2, escalated to net
    assert data["mttr"] == {"count": 1, "median_seconds": 20400.0, "p90_seconds": 20400.0}


def test_category_filter_includes_subcategories(desk):
    data = report(desk.superuser, category="network")
    assert data["counts"]["total"] == 3
    assert data["mtta"] == {"count": 2, "median_seconds": 2100.0, "p90_seconds": 3300.0}


def test_priority_filter(desk):
    data = report(desk.superuser, priorities=(1, 2))
    assert data["counts"]["total"] == 2
    assert data["sla"]["response"] == {"met": 1, "breached": 1, "compliance": 0.5}


def test_an_empty_period_has_no_rates_instead_of_dividing_by_zero(desk):
    with time_machine.travel(d.AFTER, tick=False):
        data = figures.summary(desk.superuser, ReportFilters(start=d.AFTER, end=d.AFTER.replace(day=11)))
    assert data["counts"]["total"] == 0
    assert data["mtta"] == {"count": 0, "median_seconds": None, "p90_seconds": None}
    assert data["rates"]["reopen"] == {"count": 0, "of": 0, "rate": None}
    assert data["csat"]["average"] is None
    # Still open at "now" (Mar 10 12:00, before the period's end): i4, i5, i7 and i9.
    assert data["backlog"]["open"] == 4


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [([], 0.5, None), ([7.0], 0.9, 7.0), ([1.0, 2.0], 0.5, 1.5), ([1.0, 2.0, 3.0, 4.0], 0.9, 3.7)],
)
def test_percentile_interpolates_like_percentile_cont(values, fraction, expected):
    assert percentile(values, fraction) == (pytest.approx(expected) if expected is not None else None)


def test_long_periods_are_bucketed_by_iso_week(desk):
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 15, tzinfo=UTC)  # 104 days, a Thursday
    with time_machine.travel(d.AFTER, tick=False):
        data = figures.summary(desk.superuser, ReportFilters(start=start, end=end))
    assert data["period"]["bucket"] == "week"
    trend = {p["date"]: (p["received"], p["mttr_median_seconds"]) for p in data["trend"] if p["received"]}
    assert data["trend"][0]["date"] == date(2025, 12, 29)  # the Monday of the week holding 1 January
    assert trend == {
        date(2026, 2, 23): (2, 183600.0),  # i7 (Sunday 1 March), i8: resolved 2 d 3 h after it came in
        date(2026, 3, 2): (6, 20400.0),
        date(2026, 3, 9): (1, None),
    }
    series = {p["date"]: p["open"] for p in data["backlog"]["series"]}
    assert series[date(2026, 2, 16)] == 0
    assert series[date(2026, 2, 23)] == 2
    assert series[date(2026, 3, 2)] == 3
    assert series[date(2026, 3, 9)] == 4


def test_recurring_problems_of_a_restricted_domain_stay_hidden_from_outsiders():
    """A security problem may have IT incidents linked to it; its title must not reach IT agents' reports."""
    from incidents.models import Domain, Incident
    from tests.factories import TeamFactory, agent, incident_in

    secret = Problem.objects.create(title="SECRET breach", domain=Domain.objects.get(slug="security"))
    for _ in range(2):
        linked = incident_in(Incident.State.RESPONDING, domain_slug="it_service")
        Incident.objects.filter(pk=linked.pk).update(problem=secret)
    it_agent = agent(TeamFactory(domains=["it_service"]))
    security_agent = agent(TeamFactory(domains=["security"]))
    assert figures.summary(it_agent, figures.default_filters())["recurring_problems"] == []
    seen = figures.summary(security_agent, figures.default_filters())["recurring_problems"]
    assert [p["title"] for p in seen] == ["SECRET breach"]
