"""GET /api/v1/reports/summary/: the figures as JSON, filters validated, responders only, fixed query count."""

from __future__ import annotations

import pytest
import time_machine
from django.db import connection

from tests.conftest import client_for
from tests.factories import UserFactory

from . import desk as d

pytestmark = pytest.mark.django_db
URL = "/api/v1/reports/summary/"


@pytest.fixture
def desk():
    return d.build()


def get(user, params):
    with time_machine.travel(d.AFTER, tick=False):
        return client_for(user).get(URL, params)


def test_summary_answers_every_figure_as_hand_computed(desk):
    response = get(desk.superuser, d.PERIOD)

    assert response.status_code == 200
    data = response.json()
    assert data["period"] == {"from": "2026-03-02T00:00:00Z", "to": "2026-03-09T00:00:00Z", "bucket": "day"}
    assert data["filters"] == {"domain": None, "team": None, "category": None, "priority": []}
    for key, expected in d.EXPECTED.items():
        assert data[key] == expected, key
    assert [p["count"] for p in data["recurring_problems"]] == [2]


def test_filters_combine(desk):
    params = {**d.PERIOD, "domain": "it_service", "category": "network/vpn", "priority": ["1", "2"]}
    data = get(desk.superuser, params).json()
    assert data["counts"]["total"] == 2
    assert data["filters"] == {
        "domain": "it_service",
        "team": None,
        "category": "network/vpn",
        "priority": [1, 2],
    }


def test_datetimes_with_an_offset_are_instants(desk):
    params = {"from": "2026-03-02T10:00:00+01:00", "to": "2026-03-02T12:00:00+01:00"}  # 09:00-11:00 UTC
    data = get(desk.superuser, params).json()
    assert data["counts"]["total"] == 2  # i1 at 09:00 and i2 at 10:00 UTC


def test_default_period_is_the_last_30_days(desk):
    data = get(desk.superuser, {}).json()
    assert data["period"] == {"from": "2026-02-08T12:00:00Z", "to": "2026-03-10T12:00:00Z", "bucket": "day"}
    assert data["counts"]["total"] == 9


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-02-30"}, "from"),
        ({"to": "2026-03-01T25:00"}, "to"),
        ({"from": "0001-01-01"}, "from"),
        ({"to": "9999-12-31"}, "to"),
        ({"from": "2026-03-05", "to": "2026-03-04"}, "to"),
        ({"from": "2000-01-01", "to": "2026-01-01"}, "from"),
        ({"domain": "plumbing"}, "domain"),
        ({"domain": "not a slug!"}, "domain"),
        ({"team": "nobody"}, "team"),
        ({"category": "network/nothing"}, "category"),
        ({"category": "/"}, "category"),
        ({"priority": "7"}, "priority"),
        ({"priority": "high"}, "priority"),
    ],
)
def test_bad_filters_answer_400_naming_the_field(desk, params, field):
    response = get(desk.superuser, params)
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_reporters_may_not_read_reports():
    response = client_for(UserFactory()).get(URL)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_anonymous_may_not_read_reports(api):
    assert api.get(URL).status_code in (401, 403)


def test_query_count_is_fixed(desk, django_assert_num_queries):
    """The user's roles (memberships and permission in one query), the filters' three lookups, then the figures.
    On PostgreSQL 4 queries (the dirty days, one statement over the per-day figures with the recurring problems,
    the top categories' names, the backlog's one) plus the sort memory setting, in a savepoint here (two more);
    SQLite reads the incidents in 8 and the percentiles' ordered durations in three more and sets nothing. One
    more reads the reporting targets' compliance."""
    params = {**d.PERIOD, "domain": "it_service", "team": "desk", "category": "network"}
    figures = 8 if connection.vendor == "postgresql" else 14
    fresh = type(desk.it_agent).objects.get(pk=desk.it_agent.pk)  # no desk roles cached on it yet
    with django_assert_num_queries(1 + 3 + figures):
        response = get(fresh, params)
    assert response.status_code == 200


def test_summary_is_in_the_openapi_schema(api):
    schema = api.get("/api/schema/", {"format": "json"}).json()
    operation = schema["paths"]["/api/v1/reports/summary/"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {
        "from",
        "to",
        "domain",
        "team",
        "category",
        "priority",
    }
