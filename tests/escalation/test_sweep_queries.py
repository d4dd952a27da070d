"""A burst of breaches costs a bounded number of queries per timer: who is told is read once per sweep."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from escalation.engine import sweep
from escalation.models import Timer
from incidents.models import Membership
from tests.factories import TeamFactory, UserFactory, classified, sla_policy

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)


def breaching(team, n, at):
    with time_machine.travel(at, tick=False):
        for _ in range(n):
            classified(team=team)


def queries_to_sweep(now) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as ctx:
        result = sweep(now=now)
    return result.fired, len(ctx.captured_queries)


def test_sweep_queries_grow_by_a_fixed_amount_per_timer_not_per_recipient():
    sla_policy(priority=1, response=10, resolution=60, warn=50)
    team = TeamFactory(manager=UserFactory(email="boss@example.org"))
    for _ in range(5):
        Membership.objects.create(team=team, user=UserFactory())
    # Warnings at 50 % of 10 minutes: the first four at T0+5, the next twelve at T0+7 (each classification
    # adds its classifier to the team, so both sweeps see the same, larger team).
    breaching(team, 4, T0)
    breaching(team, 12, T0 + dt.timedelta(minutes=2))
    fired_small, small = queries_to_sweep(T0 + dt.timedelta(minutes=6))
    fired_large, large = queries_to_sweep(T0 + dt.timedelta(minutes=8))
    assert (fired_small, fired_large) == (4, 12)
    per_timer = (large - small) / (fired_large - fired_small)
    # Deciding one warning: the clock, its timeline entry, the outbox rows and the timer itself; the team's
    # five members and their reach are read once per sweep, so the cost does not grow with the team.
    assert per_timer <= 7, (small, large)
    assert Timer.objects.filter(kind="sla_warning", state="fired").count() == 16
