"""A burst of breaches costs a bounded number of queries per timer: who is told is read once per sweep."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from escalation.engine import sweep
from escalation.models import Notification, SlaClock, Timer
from incidents.models import Membership, TimelineEntry
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


@pytest.mark.postgres  # SQLite caps the variables of one statement, so Django splits a large bulk INSERT there
def test_a_batch_of_sla_timers_costs_the_same_statements_whatever_its_size():
    """Set-wise: one claim per kind, one UPDATE of the clocks, one INSERT of timeline entries and of outbox
    rows... per batch. 6 timers and 60 timers cost the same number of statements."""
    sla_policy(priority=1, response=10, resolution=600, warn=50)
    team = TeamFactory(manager=UserFactory(email="boss@example.org"))
    breaching(team, 3, T0)
    breaching(team, 30, T0 + dt.timedelta(minutes=20))
    sweep(now=T0 + dt.timedelta(minutes=1))  # nothing due: writes the heartbeat, prompts the creations' mail
    # Each sweep decides one group's response warning (T0+5, T0+25) and breach (T0+10, T0+30); the team's
    # members and their reach are read once per sweep (their number, not the batch's, sets those queries).
    fired_small, small = queries_to_sweep(T0 + dt.timedelta(minutes=11))
    fired_large, large = queries_to_sweep(T0 + dt.timedelta(minutes=31))
    assert (fired_small, fired_large) == (6, 60)
    assert small == large, (small, large)
    assert Timer.objects.filter(state="fired").count() == 66


def test_breaches_are_decided_before_warnings_that_fell_due_earlier():
    """A burst of warnings due first does not hold back a breach: the first batch takes the breaches."""
    sla_policy(priority=1, response=10, resolution=600, warn=50)
    team = TeamFactory()
    breaching(team, 4, T0)  # response breaches at T0+10
    breaching(team, 12, T0 + dt.timedelta(minutes=4))  # response warnings at T0+9, breaches at T0+14
    result = sweep(now=T0 + dt.timedelta(minutes=12), limit=4, budget_seconds=0)  # one batch of 4
    assert result.fired == 4
    fired = Timer.objects.filter(state="fired")
    assert set(fired.values_list("kind", flat=True)) == {"sla_breach"}
    assert (
        Timer.objects.filter(
            state="pending", kind="sla_warning", due_at__lte=T0 + dt.timedelta(minutes=12)
        ).count()
        == 16
    )
    # Their notifications are the urgent ones, prompted on the urgent queue.
    urgent = Notification.objects.filter(pk__in=result.urgent)
    assert len(result.urgent) >= 4
    assert set(urgent.values_list("event", flat=True)) == {"sla_breach"}
    result = sweep(now=T0 + dt.timedelta(minutes=12))  # the rest: the warnings, each once
    assert result.fired == 16
    assert Timer.objects.filter(state="fired", kind="sla_warning").count() == 16


@pytest.mark.postgres
# serialized_rollback as the process tests that follow it: a flush without it re-creates the content types,
# which their restore of the serialized database then meets as duplicates (a setup error in the next test).
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_two_sweepers_at_once_decide_every_timer_exactly_once():
    sla_policy(priority=1, response=10, resolution=600, warn=50)
    team = TeamFactory(manager=UserFactory(email="boss@example.org"))
    breaching(team, 40, T0)
    now = T0 + dt.timedelta(minutes=11)
    start = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def sweeper() -> None:
        try:
            start.wait()
            results.append(sweep(now=now, limit=7).fired)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sum(results) == 80  # 40 warnings and 40 breaches, each decided by one of the two
    assert Timer.objects.filter(state="fired").count() == 80
    entries = TimelineEntry.objects.filter(kind="sla", action__in=["warning", "breached"])
    assert entries.count() == 80
    assert SlaClock.objects.filter(breached_at__isnull=False).count() == 40
    assert Notification.objects.filter(event="sla_breach").values("key").distinct().count() == (
        Notification.objects.filter(event="sla_breach").count()
    )


def test_an_sla_claim_reads_the_columns_the_decision_uses_and_nothing_twice():
    """Deciding SLA timers loads the incident's columns that the decision, its mail and its webhook payloads
    read (not the incident's text, nor a password): the domain, team, category and assignee once per batch.
    A column left out would be loaded on access, one query per timer: 4 timers and 16 cost the same."""
    from escalation import webhooks
    from escalation.models import WebhookEndpoint
    from incidents.models import Incident
    from tests.factories import agent

    sla_policy(priority=1, response=10, resolution=600, warn=50)
    team = TeamFactory(manager=UserFactory(email="boss@example.org"), domains=["it_service"])
    owner, assignee = agent(team), agent(team)
    for n, owned in enumerate(({"owner_team": team}, {"owner_user": owner})):
        WebhookEndpoint.objects.create(
            slug=f"hook-{n}", name="Listener", url=f"http://127.0.0.1:9/{n}",
            events=["incident.sla_warning", "incident.sla_breached"], **owned,
        )  # fmt: skip
    breaching(team, 2, T0)
    breaching(team, 8, T0 + dt.timedelta(minutes=20))
    Incident.objects.update(assignee=assignee)
    sweep(now=T0 + dt.timedelta(minutes=1))  # nothing due: the creations' mail
    with CaptureQueriesContext(connection) as ctx:
        fired_small = sweep(now=T0 + dt.timedelta(minutes=11)).fired  # the first two's warning and breach
    fired_large, large = queries_to_sweep(T0 + dt.timedelta(minutes=31))
    assert (fired_small, fired_large) == (4, 16)
    assert len(ctx.captured_queries) == large, [q["sql"][:70] for q in ctx.captured_queries]
    claims = [
        q["sql"] for q in ctx.captured_queries
        if q["sql"].startswith('SELECT "escalation_timer"') and "'escalation_step'" not in q["sql"]
    ]  # fmt: skip
    assert len(claims) == 2, claims  # the breaches', then the warnings'
    assert not [sql for sql in claims if "description" in sql or "password" in sql], claims
    # What the webhooks were sent is what the whole incident gives.
    for row in Notification.objects.filter(channel="webhook"):
        incident = Incident.objects.get(pk=row.incident_id)
        assert row.payload["incident"] == webhooks.incident_payload(incident)
    assert Notification.objects.filter(channel="webhook").count() == 2 * 2 * 10
    assert Timer.objects.filter(state="fired").count() == 20
