"""Assignment: the category's default team, auto-assign per team, qualifications, and the on-call gap
warning that reaches a manager who may not see the domain."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from escalation.engine import sweep
from escalation.models import (
    AutoAssign,
    EscalationPolicy,
    EscalationStep,
    Notification,
    Schedule,
    ScheduleMember,
)
from incidents import lifecycle
from incidents.models import Incident, Membership, Qualification, QualificationHolder
from tests.conftest import client_for
from tests.factories import CategoryFactory, TeamFactory, UserFactory, agent, domain, report

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)


def classify_payload(category, **extra) -> dict:
    return {"domain": category.domain.slug, "category": category.path, "impact": 2, "urgency": 2, **extra}


def url(incident: Incident, action: str) -> str:
    return f"/api/v1/incidents/{incident.reference}/{action}/"


def licensed(user, qualification, **dates) -> None:
    QualificationHolder.objects.create(qualification=qualification, user=user, **dates)


def test_api_classify_defaults_the_team_from_the_category():
    team = TeamFactory()
    category = CategoryFactory(default_team=team)
    incident = report()
    response = client_for(agent(team)).post(
        url(incident, "classify"), classify_payload(category), format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["team"] == team.slug


def test_api_classify_without_team_or_category_default_is_a_400_naming_team():
    team = TeamFactory()
    incident = report()
    response = client_for(agent(team)).post(
        url(incident, "classify"), classify_payload(CategoryFactory()), format="json"
    )
    assert response.status_code == 400
    assert "team" in response.json()


def test_an_unqualified_assignee_is_refused_on_classify_acknowledge_and_escalate():
    team = TeamFactory()
    licence = Qualification.objects.create(slug="nursing-licence", name="Nursing licence")
    category = CategoryFactory(default_team=team, required_qualification=licence)
    clerk, nurse, lapsed = agent(team), agent(team), agent(team)
    licensed(nurse, licence)
    licensed(lapsed, licence, valid_until=dt.date(2020, 1, 1))
    client = client_for(nurse)
    incident = report()
    for who in (clerk, lapsed):
        response = client.post(
            url(incident, "classify"), classify_payload(category, assignee=who.username), format="json"
        )
        assert response.status_code == 400
        assert "assignee" in response.json()
    assert (
        client.post(url(incident, "classify"), classify_payload(category), format="json").status_code == 200
    )
    response = client.post(url(incident, "acknowledge"), {"assignee": clerk.username}, format="json")
    assert response.status_code == 400
    assert "assignee" in response.json()
    # Acknowledging without naming anyone makes the actor the assignee: an unqualified actor is refused too.
    assert client_for(clerk).post(url(incident, "acknowledge"), {}, format="json").status_code == 400
    other = TeamFactory()
    stranger = agent(other)
    response = client.post(
        url(incident, "escalate"),
        {"team": other.slug, "reason": "specialists", "assignee": stranger.username},
        format="json",
    )
    assert response.status_code == 400
    assert "assignee" in response.json()
    response = client.post(url(incident, "acknowledge"), {"assignee": nurse.username}, format="json")
    assert response.status_code == 200
    assert response.json()["assignee"] == nurse.username


def classify(team, category) -> Incident:
    return lifecycle.classify_incident(
        report(), actor=None, domain=domain("it_service"), category=category, impact=2, urgency=2, team=team
    )


def test_auto_assign_off_leaves_incidents_unassigned():
    team = TeamFactory()
    agent(team)
    AutoAssign.objects.create(team=team, mode="off")
    assert classify(team, CategoryFactory()).assignee_id is None


def test_round_robin_takes_qualified_members_in_turn_and_says_why():
    team = TeamFactory()
    licence = Qualification.objects.create(slug="licence", name="Licence")
    category = CategoryFactory(required_qualification=licence)
    first, unqualified, second = agent(team), agent(team), agent(team)
    licensed(first, licence)
    licensed(second, licence)
    AutoAssign.objects.create(team=team, mode="round_robin")
    assigned = [classify(team, category).assignee_id for _ in range(3)]
    assert assigned == [first.pk, second.pk, first.pk]
    assert unqualified.pk not in assigned
    incident = Incident.objects.order_by("-pk").first()
    entry = incident.timeline.get(kind="escalation", action="auto_assigned")
    assert entry.data["assignee"] == first.username
    assert "Round-robin" in entry.data["reason"]
    assert f"after {second.username}" in entry.data["reason"]


def test_least_loaded_picks_the_qualified_member_with_fewest_open_incidents():
    team = TeamFactory()
    busy, idle = agent(team), agent(team)
    category = CategoryFactory()
    for _ in range(2):
        lifecycle.acknowledge_incident(classify(team, category), actor=busy)
    lifecycle.acknowledge_incident(classify(team, category), actor=idle)
    done = classify(team, category)
    lifecycle.acknowledge_incident(done, actor=idle)
    lifecycle.resolve_incident(done, actor=idle, summary="ok")
    lifecycle.close_incident(done, actor=idle, cause="c", measures="m", resolution_code="fixed")
    AutoAssign.objects.create(team=team, mode="least_loaded")
    incident = classify(team, category)
    assert incident.assignee_id == idle.pk  # 1 open against 2; the closed one does not count
    entry = incident.timeline.get(kind="escalation", action="auto_assigned")
    assert entry.data["load"] == {busy.username: 2, idle.username: 1}
    assert "Least loaded" in entry.data["reason"]


def test_nobody_qualified_to_auto_assign_is_noted_and_leaves_it_unassigned():
    team = TeamFactory()
    agent(team)
    category = CategoryFactory(required_qualification=Qualification.objects.create(slug="q", name="Q"))
    AutoAssign.objects.create(team=team, mode="round_robin")
    incident = classify(team, category)
    assert incident.assignee_id is None
    assert incident.timeline.filter(kind="escalation", action="auto_assign_skipped").exists()


def test_escalating_to_an_auto_assign_team_assigns_one_of_its_members():
    desk, specialists = TeamFactory(), TeamFactory()
    actor = agent(desk)
    specialist = agent(specialists)
    AutoAssign.objects.create(team=specialists, mode="least_loaded")
    incident = classify(desk, CategoryFactory())
    incident = lifecycle.escalate_incident(incident, actor=actor, team=specialists, reason="needs them")
    assert incident.assignee_id == specialist.pk


def test_the_on_call_gap_warning_reaches_a_manager_who_may_not_see_the_domain_without_content():
    team = TeamFactory(domains=["medical"])
    clerk = UserFactory(email="clerk@example.org")
    Membership.objects.create(team=team, user=clerk)
    boss = UserFactory(email="boss@example.org")  # manages the team, member of no team handling medical
    team.manager = boss
    team.save()
    licence = Qualification.objects.create(slug="nursing-licence", name="Nursing licence")
    schedule = Schedule.objects.create(
        team=team, slug="nights", name="Nights", start=T0 - dt.timedelta(hours=1)
    )
    ScheduleMember.objects.create(schedule=schedule, user=clerk, position=0)
    policy = EscalationPolicy.objects.create(slug="ladder", name="Ladder", team=team)
    EscalationStep.objects.create(
        policy=policy, position=1, trigger="unacknowledged", delay_minutes=1, notify_schedule=schedule
    )
    category = CategoryFactory(domain=domain("medical"), required_qualification=licence)
    with time_machine.travel(T0, tick=False):
        incident = lifecycle.classify_incident(
            report(domain=domain("medical"), title="Patient Erika Muster fell"), actor=None,
            domain=domain("medical"), category=category, impact=1, urgency=1, team=team, harm_level="1",
        )  # fmt: skip
    sweep(now=T0 + dt.timedelta(minutes=1))
    gap = Notification.objects.get(incident=incident, event="oncall_gap")
    assert gap.recipient == "boss@example.org"
    assert incident.reference in gap.subject
    assert "Erika" not in gap.subject + gap.body + str(gap.payload)
    assert f"/incidents/{incident.reference}/" in gap.body


def test_a_teams_auto_assign_mode_is_read_by_responders_and_set_by_admins():
    team = TeamFactory()
    member = agent(team)
    path = f"/api/v1/teams/{team.slug}/auto-assign/"
    assert client_for(member).get(path).json() == {"mode": "off"}
    assert client_for(member).put(path, {"mode": "round_robin"}, format="json").status_code == 403
    admin = UserFactory(is_staff=True, is_superuser=True)
    response = client_for(admin).put(path, {"mode": "sideways"}, format="json")
    assert response.status_code == 400
    assert "mode" in response.json()
    assert client_for(admin).put(path, {"mode": "least_loaded"}, format="json").status_code == 200
    assert client_for(member).get(path).json() == {"mode": "least_loaded"}
    assert client_for(admin).get("/api/v1/teams/no-such-team/auto-assign/").status_code == 404


def test_assigning_an_unqualified_person_is_refused_with_400_naming_the_assignee():
    """The `assign` action checks the category's qualification as classify, acknowledge and escalate do."""
    team = TeamFactory()
    licence = Qualification.objects.create(slug="nursing-licence", name="Nursing licence")
    category = CategoryFactory(default_team=team, required_qualification=licence)
    clerk, nurse = agent(team), agent(team)
    licensed(nurse, licence)
    client = client_for(nurse)
    incident = report()
    assert (
        client.post(url(incident, "classify"), classify_payload(category), format="json").status_code == 200
    )
    assert client.post(url(incident, "acknowledge"), {}, format="json").status_code == 200
    response = client.post(url(incident, "assign"), {"assignee": clerk.username}, format="json")
    assert response.status_code == 400
    assert "assignee" in response.json()
    incident.refresh_from_db()
    assert incident.assignee_id == nurse.pk
