"""SLA clocks through the lifecycle, with the sweeper called directly at chosen instants."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from escalation.engine import sweep
from escalation.models import BusinessCalendar, Notification, SlaClock, SlaTarget, Timer
from incidents import lifecycle
from incidents.models import Incident
from tests.factories import classified, sla_policy

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)  # a Monday


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def sla_entries(incident: Incident) -> list[tuple[str, str]]:
    return [(e.data["clock"], e.action) for e in incident.timeline.filter(kind="sla").order_by("id")]


def test_classifying_starts_both_clocks_from_reception():
    sla_policy(priority=1, response=30, resolution=240)
    with time_machine.travel(T0, tick=False) as clock:
        incident, _ = classified()
        clock.shift(dt.timedelta(minutes=5))
    incident.refresh_from_db()
    assert incident.response_due_at == at(30)
    assert incident.resolution_due_at == at(240)
    assert (incident.sla_response, incident.sla_resolution) == ("pending", "pending")
    assert sla_entries(incident) == [("response", "started"), ("resolution", "started")]
    assert Timer.objects.filter(incident=incident, state="pending").count() == 4


def test_warning_then_breach_fire_once_each_and_never_early():
    sla_policy(priority=1, response=20, resolution=240, warn=75)
    with time_machine.travel(T0, tick=False):
        incident, _ = classified()
    assert sweep(now=at(14.9)).fired == 0
    assert sweep(now=at(15)).fired == 1  # 75 % of 20 minutes
    assert sweep(now=at(15.5)).fired == 0
    incident.refresh_from_db()
    assert incident.sla_response == "warning"
    assert sweep(now=at(19.99)).fired == 0
    assert sweep(now=at(20)).fired == 1
    assert sweep(now=at(25)).fired == 0
    incident.refresh_from_db()
    assert incident.sla_response == "breached"
    fired = Timer.objects.filter(incident=incident, state="fired").order_by("due_at")
    assert [t.kind for t in fired] == ["sla_warning", "sla_breach"]
    assert all(t.fired_at >= t.due_at for t in fired)
    events = Notification.objects.filter(incident=incident).values_list("event", flat=True)
    assert sorted(set(events)) == ["sla_breach", "sla_warning"]
    assert ("response", "warning") in sla_entries(incident)
    assert ("response", "breached") in sla_entries(incident)


def test_acknowledging_meets_the_response_clock_and_cancels_its_timers():
    sla_policy(priority=1, response=30, resolution=240)
    with time_machine.travel(at(0), tick=False) as clock:
        incident, actor = classified()
        clock.move_to(at(10))
        incident = lifecycle.acknowledge_incident(incident, actor=actor)
    incident.refresh_from_db()
    assert incident.sla_response == "met"
    assert sweep(now=at(31)).fired == 0  # the response breach never fires
    response = SlaClock.objects.get(incident=incident, kind="response")
    assert response.timers.filter(state="pending").count() == 0
    assert response.status == "met"


def test_acknowledging_late_is_breached_even_before_the_sweeper_looked():
    sla_policy(priority=1, response=30, resolution=240)
    with time_machine.travel(at(0), tick=False) as clock:
        incident, actor = classified()
        clock.move_to(at(45))
        incident = lifecycle.acknowledge_incident(incident, actor=actor)
    incident.refresh_from_db()
    assert incident.sla_response == "breached"


def test_hold_pauses_and_resume_moves_the_deadline_by_the_paused_time():
    sla_policy(priority=1, response=30, resolution=240)
    with time_machine.travel(at(0), tick=False) as clock:
        incident, actor = classified()
        clock.move_to(at(10))
        incident = lifecycle.acknowledge_incident(incident, actor=actor)
        clock.move_to(at(60))
        incident = lifecycle.hold_incident(incident, actor=actor, reason="awaiting_vendor")
        incident.refresh_from_db()
        assert incident.sla_resolution == "paused"
        assert sweep(now=at(300)).fired == 0  # nothing fires while paused
        clock.move_to(at(300))
        incident = lifecycle.resume_incident(incident, actor=actor)
    incident.refresh_from_db()
    assert incident.resolution_due_at == at(240 + 240)  # paused for 4 hours
    assert incident.sla_resolution == "pending"
    assert [a for c, a in sla_entries(incident) if c == "resolution"] == ["started", "paused", "resumed"]
    paused = incident.timeline.get(kind="sla", action="paused")
    assert paused.data["reason"] == "awaiting_vendor"
    assert sweep(now=at(479)).fired == 1  # the warning at 75 % of 240 minutes counted without the pause
    assert sweep(now=at(480)).fired == 1


def test_business_calendar_counts_only_opening_hours():
    berlin = BusinessCalendar.objects.create(
        slug="berlin", name="Berlin office", time_zone="Europe/Berlin",
        weekly_hours={str(d): [["09:00", "17:00"]] for d in range(5)},
    )  # fmt: skip
    sla_policy(priority=1, response=120, resolution=16 * 60, calendar=berlin)
    friday_4pm_berlin = dt.datetime(2026, 6, 5, 14, 0, tzinfo=dt.UTC)
    with time_machine.travel(friday_4pm_berlin, tick=False):
        incident, _ = classified()
    incident.refresh_from_db()
    # one business hour left on Friday, the second on Monday morning: Monday 10:00 Berlin
    assert incident.response_due_at == dt.datetime(2026, 6, 8, 8, 0, tzinfo=dt.UTC)
    assert incident.resolution_due_at == dt.datetime(2026, 6, 9, 14, 0, tzinfo=dt.UTC)  # Tuesday 16:00 Berlin


def test_changing_the_priority_retargets_the_running_clocks():
    sla_policy(priority=1, response=30, resolution=240)
    sla_policy(priority=3, response=240, resolution=24 * 60)
    with time_machine.travel(at(0), tick=False) as clock:
        incident, actor = classified(priority_impact=2, priority_urgency=2)  # P3
        incident.refresh_from_db()
        assert incident.response_due_at == at(240)
        clock.move_to(at(5))
        lifecycle.classify_incident(
            incident, actor=actor, domain=incident.domain, category=incident.category, impact=1, urgency=1,
            team=incident.team,
        )  # fmt: skip
    incident.refresh_from_db()
    assert incident.priority == 1
    assert incident.response_due_at == at(30)
    assert ("response", "retargeted") in sla_entries(incident)
    pending = Timer.objects.filter(incident=incident, state="pending", kind="sla_breach").order_by("due_at")
    assert [t.due_at for t in pending] == [at(30), at(240)]


def test_reopen_starts_a_new_resolution_cycle():
    sla_policy(priority=1, response=30, resolution=240)
    with time_machine.travel(at(0), tick=False) as clock:
        incident, actor = classified()
        incident = lifecycle.acknowledge_incident(incident, actor=actor)
        clock.move_to(at(100))
        incident = lifecycle.resolve_incident(incident, actor=actor, summary="fixed")
        clock.move_to(at(200))
        incident = lifecycle.reopen_incident(incident, actor=actor, reason="broken again")
    cycles = SlaClock.objects.filter(incident=incident, kind="resolution").order_by("cycle")
    assert [(c.cycle, c.status) for c in cycles] == [(1, "met"), (2, "pending")]
    incident.refresh_from_db()
    assert incident.resolution_due_at == at(200 + 240)


def test_closing_or_cancelling_stops_every_timer():
    sla_policy(priority=1, response=30, resolution=240)
    with time_machine.travel(at(0), tick=False):
        incident, actor = classified()
        lifecycle.cancel_incident(incident, actor=actor, reason="duplicate")
    assert Timer.objects.filter(incident=incident, state="pending").count() == 0
    assert sweep(now=at(1000)).fired == 0


def test_regulatory_target_for_personal_data_breaches():
    from tests.factories import CategoryFactory, domain

    policy = sla_policy(priority=1, domain_slug="security", response=15, resolution=240)
    SlaTarget.objects.create(
        policy=policy, slug="dpa-preliminary", name="Preliminary report to the DPA", minutes=72 * 60,
        category_prefix="data-breach",
    )  # fmt: skip
    parent = CategoryFactory(slug="data-breach", domain=domain("security"))
    CategoryFactory(slug="personal-data", parent=parent, domain=domain("security"))
    from incidents import services
    from tests.factories import TeamFactory, agent

    team = TeamFactory(domains=["security"])
    actor = agent(team)
    with time_machine.travel(at(0), tick=False):
        incident = services.create_incident(
            title="Laptop with patient list stolen", reporter=actor, domain=domain("security")
        )
        incident = lifecycle.classify_incident(
            incident, actor=actor, domain=domain("security"), category=parent.children.get(), impact=1, urgency=1,
            team=team,
        )  # fmt: skip
        target = SlaClock.objects.get(incident=incident, kind="target", name="dpa-preliminary")
        assert target.due_at == at(72 * 60)
        lifecycle.acknowledge_incident(incident, actor=actor)
        lifecycle.hold_incident(incident, actor=actor, reason="awaiting_vendor")
    target.refresh_from_db()
    assert target.is_running  # a regulatory deadline does not pause for a hold


def test_a_timer_decided_twice_fires_once():
    sla_policy(priority=1, response=20, resolution=240)
    with time_machine.travel(at(0), tick=False):
        incident, _ = classified()
    timer = Timer.objects.get(incident=incident, kind="sla_breach", clock__kind="response")
    sweep(now=at(21))
    Timer.objects.filter(pk=timer.pk).update(state="pending")  # as if a crash lost the state change
    sweep(now=at(22))
    clock = SlaClock.objects.get(pk=timer.clock_id)
    assert clock.breached_at == at(21)
    assert (
        Notification.objects.filter(incident=incident, event="sla_breach").count()
        == Notification.objects.filter(incident=incident, event="sla_breach").values("key").distinct().count()
    )


def test_a_breach_with_nobody_to_tell_says_so_in_the_timeline():
    from django.contrib.auth import get_user_model

    from incidents.models import Team

    sla_policy(priority=1, response=20, resolution=240, warn=75)
    with time_machine.travel(T0, tick=False):
        incident, _ = classified()
    get_user_model().objects.update(email="")
    Team.objects.update(email="", manager=None)
    assert sweep(now=at(20)).fired == 2  # the overdue warning, then the breach
    notes = incident.timeline.filter(kind="escalation", action="nobody_to_notify").order_by("id")
    assert sorted(n.data["detail"] for n in notes) == [
        "SLA breached: response target missed",
        "SLA warning: response target 75% used",
    ]
    assert all(n.data["event"] == "nobody_to_notify" and n.data["cause"].startswith("sla:") for n in notes)
    assert not Notification.objects.filter(
        incident=incident, event__in=["sla_breach", "sla_warning"]
    ).exists()
