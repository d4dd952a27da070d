"""Escalation ladders: steps in order, each once; acknowledge stops them; the policy is copied."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from escalation.engine import sweep
from escalation.models import EscalationPolicy, EscalationStep, Notification, Schedule, ScheduleMember, Timer
from incidents import lifecycle
from incidents.models import Membership, Qualification
from tests.factories import CategoryFactory, TeamFactory, UserFactory, agent, classified, sla_policy

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def ladder(team, *steps: dict) -> EscalationPolicy:
    policy = EscalationPolicy.objects.create(slug=f"ladder-{team.slug}", name="Ladder", team=team)
    for position, step in enumerate(steps, start=1):
        EscalationStep.objects.create(policy=policy, position=position, **step)
    return policy


def recipients(incident, event="escalation_step") -> list[str]:
    return list(
        Notification.objects.filter(incident=incident, event=event)
        .order_by("id")
        .values_list("recipient", flat=True)
    )


def test_steps_fire_in_order_each_once_and_reach_the_right_people():
    team = TeamFactory(email="desk@example.org")
    boss = UserFactory(email="boss@example.org")
    team.manager = boss
    team.save()
    Membership.objects.create(team=team, user=boss)
    ladder(
        team,
        {"trigger": "unacknowledged", "delay_minutes": 5, "notify_team": team},
        {"trigger": "sla_share", "sla_kind": "response", "share_percent": 100, "notify_manager": True},
        {"trigger": "unacknowledged", "delay_minutes": 10, "notify_email": "cio@example.org"},
    )
    sla_policy(priority=1, response=30, resolution=240)
    with time_machine.travel(T0, tick=False):
        incident, _ = classified(team=team)
    assert sweep(now=at(4.9)).fired == 0
    sweep(now=at(5))
    first = recipients(incident)
    assert "desk@example.org" in first
    assert "boss@example.org" in first
    sweep(now=at(29))
    assert len(recipients(incident)) == len(first)
    sweep(now=at(30))  # 100 % of the response target: step 2 (and the breach)
    assert recipients(incident)[len(first) :] == ["boss@example.org"]
    sweep(now=at(39))
    sweep(now=at(40))  # 10 minutes after step 2
    assert recipients(incident)[-1] == "cio@example.org"
    steps = incident.timeline.filter(kind="escalation", action="step").order_by("id")
    assert [e.data["step"] for e in steps] == [1, 2, 3]
    for _ in range(3):
        sweep(now=at(500))
    assert incident.timeline.filter(kind="escalation", action="step").count() == 3


def test_acknowledging_stops_every_later_step():
    team = TeamFactory(email="desk@example.org")
    ladder(
        team,
        {"trigger": "unacknowledged", "delay_minutes": 5, "notify_team": team},
        {"trigger": "unacknowledged", "delay_minutes": 5, "notify_email": "cio@example.org"},
    )
    with time_machine.travel(T0, tick=False) as clock:
        incident, actor = classified(team=team)
        sweep(now=at(5))
        clock.move_to(at(6))
        lifecycle.acknowledge_incident(incident, actor=actor)
    sweep(now=at(60))
    assert "cio@example.org" not in recipients(incident)
    assert Timer.objects.filter(incident=incident, state="pending").count() == 0
    assert (
        incident.timeline.filter(kind="escalation", action="stopped").get().data["reason"] == "acknowledged"
    )


def test_repeats_and_hold_pause_the_chain():
    team = TeamFactory(email="desk@example.org")
    ladder(
        team,
        {
            "trigger": "unacknowledged",
            "delay_minutes": 10,
            "notify_team": team,
            "repeat_count": 2,
            "repeat_minutes": 5,
        },
    )
    with time_machine.travel(T0, tick=False):
        incident, _ = classified(team=team)
    sweep(now=at(10))
    sweep(now=at(15))
    sweep(now=at(20))
    sweep(now=at(60))
    repeats = [
        e.data["repeat"] for e in incident.timeline.filter(kind="escalation", action="step").order_by("id")
    ]
    assert repeats == [0, 1, 2]


def test_steps_respect_the_pause_of_the_clock():
    team = TeamFactory(email="desk@example.org")
    ladder(team, {"trigger": "unacknowledged", "delay_minutes": 10, "notify_team": team})
    with time_machine.travel(T0, tick=False) as clock:
        incident, actor = classified(team=team)
        incident = lifecycle.escalate_incident(incident, actor=actor, team=team, reason="to management")
        clock.move_to(at(4))
        incident = lifecycle.hold_incident(incident, actor=actor, reason="awaiting_reporter")
        assert sweep(now=at(30)).fired == 0
        clock.move_to(at(30))
        lifecycle.resume_incident(incident, actor=actor)
    assert sweep(now=at(35.9)).fired == 0  # 6 minutes were left when it was held
    assert sweep(now=at(36)).fired == 1


def test_editing_the_policy_does_not_change_a_running_escalation():
    team = TeamFactory(email="desk@example.org")
    policy = ladder(
        team, {"trigger": "unacknowledged", "delay_minutes": 5, "notify_email": "first@example.org"}
    )
    with time_machine.travel(T0, tick=False):
        incident, _ = classified(team=team)
    EscalationStep.objects.filter(policy=policy).update(notify_email="changed@example.org")
    sweep(now=at(5))
    assert recipients(incident) == ["first@example.org"]


def test_a_reassign_step_escalates_through_the_lifecycle():
    team = TeamFactory()
    vendor = TeamFactory(email="vendor@example.org")
    ladder(
        team,
        {"trigger": "unacknowledged", "delay_minutes": 5, "reassign_team": vendor, "notify_team": vendor},
    )
    with time_machine.travel(T0, tick=False):
        incident, _ = classified(team=team)
    sweep(now=at(5))
    incident.refresh_from_db()
    assert incident.state == "escalated"
    assert incident.team == vendor
    assert incident.escalation_level == 1
    change = incident.timeline.get(kind="state_changed", action="escalate")
    assert change.data["by_policy"] is True
    assert change.actor is None


def test_on_call_paging_only_qualified_people_and_warning_when_none():
    team = TeamFactory(email="desk@example.org")
    nurse, clerk = UserFactory(email="nurse@example.org"), UserFactory(email="clerk@example.org")
    boss = UserFactory(email="boss@example.org")
    for person in (nurse, clerk, boss):
        Membership.objects.create(team=team, user=person)
    team.manager = boss
    team.save()
    licence = Qualification.objects.create(slug="nursing-licence", name="Nursing licence")
    schedule = Schedule.objects.create(
        team=team, slug="nights", name="Nights", start=T0 - dt.timedelta(hours=1)
    )
    ScheduleMember.objects.create(schedule=schedule, user=clerk, position=0)
    ScheduleMember.objects.create(schedule=schedule, user=nurse, position=1)
    ladder(team, {"trigger": "unacknowledged", "delay_minutes": 1, "notify_schedule": schedule})
    category = CategoryFactory(required_qualification=licence)

    def classify():
        from incidents.models import Domain
        from tests.factories import report

        actor = agent(team)
        return lifecycle.classify_incident(
            report(), actor=actor, domain=Domain.objects.get(slug="it_service"), category=category, impact=1,
            urgency=1, team=team,
        )  # fmt: skip

    with time_machine.travel(T0, tick=False):
        incident = classify()
    sweep(now=at(1))
    assert recipients(incident) == []  # the clerk is on call but has no licence, and nobody holds one
    assert incident.timeline.filter(kind="escalation", action="no_qualified_on_call").exists()
    assert recipients(incident, event="oncall_gap") == ["boss@example.org"]

    licence.holders.add(nurse)
    with time_machine.travel(T0, tick=False):
        second = classify()
    sweep(now=at(1))
    assert recipients(second) == ["nurse@example.org"]  # the next qualified member in rotation order
