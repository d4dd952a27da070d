from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from incidents import lifecycle
from incidents.lifecycle import ALLOWED_FROM, Action, InvalidTransition, StaleVersion
from incidents.models import Incident, TimelineEntry
from tests.factories import (
    CategoryFactory,
    TeamFactory,
    UserFactory,
    agent,
    domain,
    incident_in,
    report,
    responder_of,
)

pytestmark = pytest.mark.django_db
S = Incident.State


def inputs_for(action: Action, incident: Incident) -> dict:
    """Valid inputs for each action of SPEC section 2."""
    it = domain("it_service")
    if action == Action.CLASSIFY:
        team = incident.team or TeamFactory()
        return {"domain": it, "category": CategoryFactory(domain=it), "impact": 1, "urgency": 1, "team": team}
    if action == Action.ESCALATE:
        return {"team": TeamFactory(), "reason": "Needs network specialists"}
    if action == Action.HOLD:
        return {"reason": "awaiting_reporter"}
    if action == Action.RESOLVE:
        return {"summary": "Replaced the switch."}
    if action == Action.REOPEN:
        return {"reason": "Still broken"}
    if action == Action.CLOSE:
        return {"cause": "Bad switch", "measures": "Replaced it", "resolution_code": "fixed"}
    if action == Action.CANCEL:
        return {"reason": "not_an_incident"}
    if action == Action.ASSIGN:
        return {"assignee": agent(incident.team)}
    return {}


def expected_state(action: Action, before: str) -> str:
    return {
        Action.CLASSIFY: S.CLASSIFIED,
        Action.ACKNOWLEDGE: S.RESPONDING if before == S.CLASSIFIED else S.ESCALATED,
        Action.ESCALATE: S.ESCALATED,
        Action.HOLD: S.ON_HOLD,
        Action.RESUME: S.RESPONDING,  # incident_in("on_hold") is held from responding
        Action.RESOLVE: S.RESOLVED,
        Action.REOPEN: S.RESPONDING,
        Action.CLOSE: S.CLOSED,
        Action.CANCEL: S.CANCELLED,
        Action.ASSIGN: before,  # a handover, no state change
    }[action]


CASES = [(state, action) for state in S.values for action in Action]


@pytest.mark.parametrize(("state", "action"), CASES, ids=[f"{s}-{a}" for s, a in CASES])
def test_transition_table(state, action):
    incident = incident_in(state)
    actor = responder_of(incident)
    before_entries = incident.timeline.filter(kind="state_changed").count()
    before_total = incident.timeline.count()
    before_version = incident.version
    function = lifecycle.ACTIONS[action]

    if state in ALLOWED_FROM[action] and action == Action.ASSIGN:
        result = function(incident, actor=actor, **inputs_for(action, incident))
        result.refresh_from_db()
        assert result.state == state
        assert result.version == before_version + 1
        assert result.timeline.filter(kind="state_changed").count() == before_entries
        assert result.timeline.last().kind == TimelineEntry.Kind.ASSIGNED
    elif state in ALLOWED_FROM[action]:
        result = function(incident, actor=actor, **inputs_for(action, incident))
        result.refresh_from_db()
        assert result.state == expected_state(action, state)
        assert result.timeline.filter(kind="state_changed").count() == before_entries + 1
        assert result.version == before_version + 1
        entry = result.timeline.filter(kind="state_changed").last()
        assert entry.kind == TimelineEntry.Kind.STATE_CHANGED
        assert entry.action == action
        assert entry.data["from"] == state
        assert entry.data["to"] == result.state
    else:
        with pytest.raises(InvalidTransition) as refused:
            function(incident, actor=actor, **inputs_for(action, incident))
        incident.refresh_from_db()
        assert incident.state == state
        assert incident.version == before_version
        assert incident.timeline.count() == before_total
        assert refused.value.allowed_actions == [str(a) for a in Action if state in ALLOWED_FROM[a]]
        assert action in str(refused.value)


def test_classify_sets_priority_from_matrix():
    matrix = {
        (1, 1): 1,
        (1, 2): 2,
        (1, 3): 3,
        (2, 1): 2,
        (2, 2): 3,
        (2, 3): 4,
        (3, 1): 3,
        (3, 2): 4,
        (3, 3): 5,
    }
    team = TeamFactory()
    actor = agent(team)
    category = CategoryFactory()
    for (impact, urgency), priority in matrix.items():
        incident = lifecycle.classify_incident(
            report(), actor=actor, domain=domain("it_service"), category=category, impact=impact,
            urgency=urgency, team=team,
        )  # fmt: skip
        assert incident.priority == priority, (impact, urgency)


def test_priority_override_needs_a_reason_and_is_recorded():
    team = TeamFactory()
    actor = agent(team)
    kwargs = {
        "domain": domain("it_service"),
        "category": CategoryFactory(),
        "impact": 3,
        "urgency": 3,
        "team": team,
    }
    incident = report()
    with pytest.raises(ValidationError) as error:
        lifecycle.classify_incident(incident, actor=actor, priority=1, **kwargs)
    assert "priority_reason" in error.value.message_dict

    incident = lifecycle.classify_incident(
        incident, actor=actor, priority=1, priority_reason="CEO's laptop", **kwargs
    )
    assert incident.priority == 1
    override = incident.timeline.get(kind=TimelineEntry.Kind.PRIORITY_OVERRIDDEN)
    assert override.data == {"matrix": 5, "priority": 1, "reason": "CEO's laptop"}


def test_reclassifying_with_the_same_values_changes_nothing():
    incident = incident_in(S.CLASSIFIED)
    actor = responder_of(incident)
    entries, version = incident.timeline.count(), incident.version
    lifecycle.classify_incident(
        incident, actor=actor, domain=incident.domain, category=incident.category, impact=incident.impact,
        urgency=incident.urgency, team=incident.team,
    )  # fmt: skip
    incident.refresh_from_db()
    assert (incident.timeline.count(), incident.version) == (entries, version)


def test_medical_classification_needs_a_harm_level():
    team = TeamFactory(domains=["medical"])
    actor = agent(team)
    medical = domain("medical")
    incident = report(domain=medical)
    with pytest.raises(ValidationError) as error:
        lifecycle.classify_incident(
            incident, actor=actor, domain=medical, category=CategoryFactory(domain=medical), impact=3, urgency=2,
            team=team,
        )  # fmt: skip
    assert "harm_level" in error.value.message_dict


def test_restricted_domain_needs_a_team_that_handles_it():
    it_team = TeamFactory(domains=["it_service"])
    actor = agent(TeamFactory(domains=["security"]))
    security = domain("security")
    incident = report(domain=security)
    with pytest.raises(ValidationError) as error:
        lifecycle.classify_incident(
            incident, actor=actor, domain=security, category=CategoryFactory(domain=security), impact=1, urgency=1,
            team=it_team,
        )  # fmt: skip
    assert "team" in error.value.message_dict


def test_category_must_belong_to_the_domain():
    team = TeamFactory()
    actor = agent(team)
    with pytest.raises(ValidationError) as error:
        lifecycle.classify_incident(
            report(), actor=actor, domain=domain("it_service"), category=CategoryFactory(domain=domain("security")),
            impact=1, urgency=1, team=team,
        )  # fmt: skip
    assert "category" in error.value.message_dict


def test_assignee_must_be_a_member_of_the_team():
    team = TeamFactory()
    actor = agent(team)
    outsider = agent()
    with pytest.raises(ValidationError) as error:
        lifecycle.classify_incident(
            report(), actor=actor, domain=domain("it_service"), category=CategoryFactory(), impact=1, urgency=1,
            team=team, assignee=outsider,
        )  # fmt: skip
    assert "assignee" in error.value.message_dict


def test_acknowledge_records_first_response_once():
    incident = incident_in(S.CLASSIFIED)
    actor = responder_of(incident)
    incident = lifecycle.acknowledge_incident(incident, actor=actor)
    first = incident.responded_at
    assert incident.state == S.RESPONDING
    assert incident.assignee == actor
    incident = lifecycle.escalate_incident(incident, actor=actor, team=TeamFactory(), reason="vendor")
    specialist = responder_of(incident)
    incident = lifecycle.acknowledge_incident(incident, actor=specialist)
    assert incident.state == S.ESCALATED
    assert incident.responded_at == first
    assert incident.assignee == specialist


def test_acknowledging_an_escalated_incident_twice_changes_nothing_the_second_time():
    incident = incident_in(S.ESCALATED)
    specialist = responder_of(incident)
    incident = lifecycle.acknowledge_incident(incident, actor=specialist)
    entries, version = incident.timeline.count(), incident.version
    lifecycle.acknowledge_incident(incident, actor=specialist)
    incident.refresh_from_db()
    assert (incident.timeline.count(), incident.version) == (entries, version)


def test_escalation_raises_the_level_and_hands_over():
    incident = incident_in(S.RESPONDING)
    actor = responder_of(incident)
    vendor = TeamFactory(tier=3)
    incident = lifecycle.escalate_incident(incident, actor=actor, team=vendor, reason="ERP bug")
    incident = lifecycle.escalate_incident(incident, actor=actor, team=TeamFactory(), reason="management")
    assert incident.escalation_level == 2
    assert incident.assignee is None
    assert incident.timeline.filter(action="escalate").first().data["team"] == vendor.slug


def test_hold_and_resume_return_to_the_held_state_and_record_the_pause():
    """Deadlines moving by the paused business time is the SLA engine's: tests/escalation/test_sla.py."""
    import datetime as dt

    import time_machine

    with time_machine.travel(dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC), tick=False) as clock:
        incident = incident_in(S.ESCALATED)
        actor = responder_of(incident)
        incident = lifecycle.hold_incident(incident, actor=actor, reason="awaiting_vendor")
        assert incident.state == S.ON_HOLD
        clock.shift(dt.timedelta(hours=2))
        incident = lifecycle.resume_incident(incident, actor=actor)
    assert incident.state == S.ESCALATED
    assert (incident.held_from, incident.hold_reason, incident.held_at) == ("", "", None)
    assert incident.timeline.filter(action="resume").last().data["paused_seconds"] == 7200


def test_reopen_counts_and_starts_a_new_resolution_cycle():
    incident = incident_in(S.RESOLVED)
    incident = lifecycle.reopen_incident(incident, actor=responder_of(incident), reason="Broken again")
    assert incident.state == S.RESPONDING
    assert incident.reopen_count == 1
    assert incident.resolved_at is None


def test_the_reporter_may_reopen_but_not_classify():
    reporter = UserFactory()
    incident = incident_in(S.RESOLVED, reporter=reporter)
    assert lifecycle.allowed_actions(incident, reporter) == ["reopen"]
    lifecycle.reopen_incident(incident, actor=reporter, reason="Still broken")
    incident = incident_in(S.RECEIVED, reporter=reporter)
    with pytest.raises(PermissionDenied):
        lifecycle.cancel_incident(incident, actor=reporter, reason="spam")


def test_close_requires_cause_measures_and_a_known_code():
    incident = incident_in(S.RESOLVED)
    actor = responder_of(incident)
    with pytest.raises(ValidationError) as error:
        lifecycle.close_incident(incident, actor=actor, cause=" ", measures="", resolution_code="magic")
    assert set(error.value.message_dict) == {"cause", "measures", "resolution_code"}
    incident.refresh_from_db()
    assert incident.state == S.RESOLVED


def test_cancel_as_duplicate_names_the_survivor():
    survivor = incident_in(S.RESPONDING)
    incident = incident_in(S.RECEIVED)
    actor = responder_of(incident)
    with pytest.raises(ValidationError):
        lifecycle.cancel_incident(incident, actor=actor, reason="spam", duplicate_of=survivor)
    incident = lifecycle.cancel_incident(incident, actor=actor, reason="duplicate", duplicate_of=survivor)
    assert incident.duplicate_of == survivor
    assert incident.timeline.last().data["duplicate_of"] == survivor.reference


def test_a_stale_version_is_refused_and_changes_nothing():
    incident = incident_in(S.CLASSIFIED)
    actor = responder_of(incident)
    with pytest.raises(StaleVersion):
        lifecycle.acknowledge_incident(incident, actor=actor, version=incident.version - 1)
    incident.refresh_from_db()
    assert incident.state == S.CLASSIFIED


def test_auto_close_closes_quiet_resolved_incidents_and_marks_them(django_capture_on_commit_callbacks):
    import datetime as dt

    from django.utils import timezone

    quiet = incident_in(S.RESOLVED)
    recent = incident_in(S.RESOLVED)
    Incident.objects.filter(pk=quiet.pk).update(resolved_at=timezone.now() - dt.timedelta(days=4))
    with django_capture_on_commit_callbacks():
        closed = lifecycle.auto_close_resolved(now=timezone.now(), quiet_period=dt.timedelta(days=3))
    assert closed == 1
    quiet.refresh_from_db()
    recent.refresh_from_db()
    assert quiet.state == S.CLOSED
    assert quiet.auto_closed
    assert quiet.cause.startswith("(from the resolution summary)")
    assert recent.state == S.RESOLVED
    assert lifecycle.auto_close_resolved(now=timezone.now(), quiet_period=dt.timedelta(days=3)) == 0


def test_an_actor_never_acts_on_an_incident_outside_their_visibility():
    incident = incident_in(S.RECEIVED, domain_slug="medical")
    it_agent = agent(TeamFactory(domains=["it_service"]))
    with pytest.raises(PermissionDenied):
        lifecycle.cancel_incident(incident, actor=it_agent, reason="spam")
    incident.refresh_from_db()
    assert incident.state == S.RECEIVED


def test_a_frozen_record_takes_no_comment():
    from incidents import services

    incident = incident_in(S.CLOSED)
    with pytest.raises(InvalidTransition):
        services.add_comment(incident, author=responder_of(incident), body="late note", public=False)
