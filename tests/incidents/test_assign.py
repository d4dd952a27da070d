"""`assign` (SPEC section 2): hand an incident to a colleague or another team without changing its state."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse

from escalation.models import Notification
from incidents import lifecycle
from incidents.errors import InvalidTransition
from incidents.models import Incident, TimelineEntry
from tests.conftest import client_for
from tests.factories import TeamFactory, agent, incident_in

pytestmark = pytest.mark.django_db
S = Incident.State


@pytest.mark.parametrize("state", [S.CLASSIFIED, S.RESPONDING, S.ESCALATED, S.ON_HOLD])
def test_assign_to_a_colleague_keeps_the_state_and_counts_no_escalation(state):
    incident = incident_in(state)
    colleague = agent(incident.team, first_name="Rosa", last_name="Ruiz", email="rosa@example.org")
    level, version = incident.escalation_level, incident.version

    incident = lifecycle.assign_incident(incident, actor=incident.assignee or colleague, assignee=colleague)

    incident.refresh_from_db()
    assert incident.state == state
    assert incident.assignee == colleague
    assert incident.escalation_level == level
    assert incident.version == version + 1
    entry = incident.timeline.filter(kind=TimelineEntry.Kind.ASSIGNED).get()
    assert entry.data["assignee"] == colleague.username
    assert not entry.public
    mail = Notification.objects.get(event="assigned", recipient="rosa@example.org")
    assert incident.reference in mail.subject


def test_assigning_twice_changes_nothing():
    incident = incident_in(S.RESPONDING)
    colleague = agent(incident.team)
    lifecycle.assign_incident(incident, actor=colleague, assignee=colleague)
    again = lifecycle.assign_incident(incident, actor=colleague, assignee=colleague)
    assert again.version == Incident.objects.get(pk=incident.pk).version
    assert incident.timeline.filter(kind=TimelineEntry.Kind.ASSIGNED).count() == 1


def test_the_assignee_must_be_a_member_of_the_team():
    incident = incident_in(S.RESPONDING)
    stranger = agent(TeamFactory())
    with pytest.raises(ValidationError) as exc:
        lifecycle.assign_incident(incident, actor=incident.assignee, assignee=stranger)
    assert "assignee" in exc.value.message_dict


def test_transfer_to_a_team_that_handles_the_domain_clears_the_assignee_and_tells_the_team():
    incident = incident_in(S.RESPONDING)
    other = TeamFactory(domains=["it_service"])
    agent(other)
    incident = lifecycle.assign_incident(incident, actor=incident.assignee, team=other, note="their router")
    incident.refresh_from_db()
    assert (incident.team, incident.assignee, incident.state) == (other, None, S.RESPONDING)
    assert Notification.objects.filter(event="assigned", incident=incident).exists()


def test_transfer_to_a_team_that_does_not_handle_the_domain_is_refused():
    incident = incident_in(S.RESPONDING)
    with pytest.raises(ValidationError) as exc:
        lifecycle.assign_incident(incident, actor=incident.assignee, team=TeamFactory(domains=["security"]))
    assert "team" in exc.value.message_dict


@pytest.mark.parametrize("state", [S.RECEIVED, S.RESOLVED, S.CLOSED, S.CANCELLED])
def test_assign_is_refused_outside_its_states(state):
    incident = incident_in(state)
    with pytest.raises(InvalidTransition):
        lifecycle.assign_incident(incident, actor=None, assignee=agent(TeamFactory()))


def test_the_api_assign_route_answers_400_naming_the_field_and_200_when_valid():
    incident = incident_in(S.RESPONDING)
    colleague = agent(incident.team)
    client = client_for(incident.assignee)
    url = reverse("api:incident-assign", kwargs={"reference": incident.reference})
    assert client.post(url, {}).status_code == 400
    bad = client.post(url, {"assignee": agent(TeamFactory()).username})
    assert bad.status_code == 400
    assert "assignee" in str(bad.json())
    ok = client.post(url, {"assignee": colleague.username, "version": incident.version})
    assert ok.status_code == 200, ok.json()
    assert ok.json()["assignee"] == colleague.username
    assert ok.json()["state"] == S.RESPONDING


def test_bulk_assign_hands_over_a_responding_incident():
    incident = incident_in(S.RESPONDING)
    colleague = agent(incident.team)
    web = Client()
    web.force_login(incident.assignee)
    response = web.post(
        "/desk/bulk/", {"bulk_action": "assign", "ids": [incident.pk], "assignee": colleague.pk}
    )
    assert response.status_code == 302
    incident.refresh_from_db()
    assert (incident.assignee, incident.state) == (colleague, S.RESPONDING)
