"""`seed_demo`'s history: weeks of desk life played through the real lifecycle and escalation engine.

Transactional (serialized_rollback keeps the migrations' domains): the seeding commits step by step as a real
run does, so the work queued after each commit (notifications delivered at the moving clock, recurrence
proposals) happens too.
"""

from __future__ import annotations

from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from celery.signals import task_prerun
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from demo.history import History
from escalation.models import Notification, Timer
from incidents.models import (
    FollowUpAction,
    Incident,
    Problem,
    SatisfactionRating,
    TimelineEntry,
)
from reporting import figures

User = get_user_model()
Kind = TimelineEntry.Kind
DAYS = 21


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", "--quiet", "--days", str(DAYS), *args, stdout=out)
    return out.getvalue()


def durability() -> str:
    """The seeding connection's commit durability: SQLite's synchronous pragma, PostgreSQL's synchronous_commit."""
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous" if connection.vendor == "sqlite" else "SHOW synchronous_commit")
        return str(cursor.fetchone()[0])


def snapshot() -> dict[str, int]:
    return {
        "incidents": Incident.objects.count(),
        "timeline": TimelineEntry.objects.count(),
        "notifications": Notification.objects.count(),
        "timers": Timer.objects.count(),
        "problems": Problem.objects.count(),
        "follow_ups": FollowUpAction.objects.count(),
        "ratings": SatisfactionRating.objects.count(),
        "versions": sum(Incident.objects.values_list("version", flat=True)),
    }


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_weeks_of_history_show_in_the_reports_and_a_second_run_changes_nothing():
    started = timezone.now()
    before_pragma = durability()
    tasks_run: list[str] = []

    def count_task(sender: Any = None, **kwargs: Any) -> None:
        tasks_run.append(getattr(sender, "name", str(sender)))

    task_prerun.connect(count_task, weak=False)
    try:
        seed()
    finally:
        task_prerun.disconnect(count_task)
    incidents = Incident.objects.all()

    # Fast without faking: every notification went through the real delivery function in this process (the
    # checks below find them sent, with their timeline entries), but no Celery task machinery ran for them;
    # the connection's durability setting, relaxed for the seeding, is back as it was.
    assert tasks_run == []
    assert durability() == before_pragma

    # A few hundred incidents' worth per two months: spread over the period, every domain.
    assert incidents.count() >= 90
    oldest = incidents.order_by("received_at").first()
    assert oldest.received_at <= started - timedelta(days=DAYS - 4)
    for slug in ("it_service", "security", "medical"):
        assert incidents.filter(domain__slug=slug).count() >= 10, slug

    # SLA warnings and breaches decided by the engine's sweep at the moving clock, and escalation steps.
    fired = Timer.objects.filter(state=Timer.State.FIRED)
    assert fired.filter(kind=Timer.Kind.SLA_BREACH).count() >= 5
    assert fired.filter(kind=Timer.Kind.SLA_WARNING).exists()
    assert fired.filter(kind=Timer.Kind.ESCALATION_STEP).exists()
    breaches = TimelineEntry.objects.filter(kind=Kind.SLA, action="breached")
    assert breaches.count() >= 5
    assert all(entry.at < started for entry in breaches)
    assert TimelineEntry.objects.filter(kind=Kind.ESCALATION, action="step").exists()
    assert incidents.filter(Q(sla_response="breached") | Q(sla_resolution="breached")).exists()
    assert incidents.filter(sla_response="met").exists()

    # Escalations by hand, holds, reopens.
    assert incidents.filter(escalation_level__gte=1, closed_at__isnull=False).exists()
    assert TimelineEntry.objects.filter(kind=Kind.STATE_CHANGED, action="hold").exists()
    assert TimelineEntry.objects.filter(kind=Kind.STATE_CHANGED, action="resume").exists()
    assert incidents.filter(reopen_count__gte=1).exists()

    # A major incident whose children followed it to closed through the lifecycle.
    parent = incidents.annotate(n=Count("children")).filter(n__gte=5).get()
    assert parent.state == Incident.State.CLOSED
    assert not parent.children.exclude(state=Incident.State.CLOSED).exists()
    assert TimelineEntry.objects.filter(incident=parent, kind=Kind.MAJOR_INCIDENT).exists()

    # Problems with follow-ups, in several states, linked to incidents.
    states = set(Problem.objects.values_list("state", flat=True))
    assert {Problem.State.CLOSED, Problem.State.KNOWN_ERROR} <= states
    assert FollowUpAction.objects.filter(done_at__isnull=False).exists()
    assert FollowUpAction.objects.filter(done_at__isnull=True).exists()
    assert incidents.filter(problem__isnull=False).count() >= 3

    # Satisfaction ratings, and the reporters' confirmations.
    assert SatisfactionRating.objects.count() >= 10
    assert len(set(SatisfactionRating.objects.values_list("score", flat=True))) >= 3
    assert TimelineEntry.objects.filter(kind=Kind.REPORTER_CONFIRMED).exists()

    # Every notification of the past was delivered at its time; nothing is left for the worker to send.
    assert Notification.objects.filter(state=Notification.State.SENT).count() >= 50
    assert not Notification.objects.exclude(state=Notification.State.SENT).exists()
    assert TimelineEntry.objects.filter(kind=Kind.NOTIFICATION, at__lt=started - timedelta(days=7)).exists()

    # The reports: non-zero MTTA and MTTR, breaches, and a trend over many days.
    admin = User.objects.get(username="admin")
    report = figures.summary(admin, figures.default_filters())
    assert report["mtta"]["median_seconds"] > 0
    assert report["mttr"]["median_seconds"] > report["mtta"]["median_seconds"]
    assert report["sla"]["response"]["breached"] + report["sla"]["resolution"]["breached"] > 0
    assert report["csat"]["count"] > 0
    days_with_arrivals = [day for day in report["trend"] if day["received"]]
    assert len(days_with_arrivals) >= 10
    assert len({day["received"] for day in days_with_arrivals}) >= 3
    assert report["backlog"]["open"] > 0

    # Idempotent: a second run adds, moves and sends nothing.
    before = snapshot()
    output = seed()
    assert snapshot() == before
    assert "0 incidents created" in output


@pytest.mark.django_db
def test_the_plan_is_the_same_for_the_same_end_instant_and_the_wards_report_more_near_misses():
    end = timezone.now().replace(second=0, microsecond=0)

    def plan() -> list:
        history = History(end=end, days=60, users={}, teams={}, categories={})
        history._plan()
        return sorted((at, name, plan) for at, _, name, plan, _ in history.plans)

    first, second = plan(), plan()
    assert [(at, name, p.scenario, p.outcome) for at, name, p in first] == [
        (at, name, p.scenario, p.outcome) for at, name, p in second
    ]
    generated = [p for _, _, p in first]
    assert len(generated) >= 150
    medical = [p for p in generated if p.story.domain == "medical"]
    early = [p for p in medical if p.progress < 0.5]
    late = [p for p in medical if p.progress >= 0.5]
    near_misses = [sum(p.outcome == Incident.Outcome.NEAR_MISS for p in half) for half in (early, late)]
    assert len(late) > len(early)
    assert near_misses[1] > 1.5 * near_misses[0]
