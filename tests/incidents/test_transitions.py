"""The transition table (incidents.transitions) drives the actions, allowed_actions, the API's routes
and the history replay: each is generated from it here, so a row added there is tested everywhere."""

from __future__ import annotations

import pytest
from django.urls import NoReverseMatch, reverse

from incidents import lifecycle
from incidents.api.views import IncidentViewSet
from incidents.models import Incident
from incidents.transitions import HELD_FROM, TRANSITIONS, UNCHANGED, Action, action_between, actions_from
from tests.conftest import client_for
from tests.factories import incident_in, responder_of
from tests.incidents.test_api import payload_for

pytestmark = pytest.mark.django_db
S = Incident.State

# (action, a state it may start from): every row of the table, every source state.
ROWS = [(action, source) for action, t in TRANSITIONS.items() for source in sorted(t.sources)]


def test_every_state_and_action_is_in_the_table():
    assert set(TRANSITIONS) == set(Action)
    assert set(lifecycle.ACTIONS) == set(TRANSITIONS)
    for t in TRANSITIONS.values():
        assert t.sources <= set(S.values)
        assert t.target in {*S.values, HELD_FROM, UNCHANGED}
        assert t.stays <= t.sources


@pytest.mark.parametrize("state", S.values)
def test_allowed_actions_are_the_tables(state):
    incident = incident_in(state)
    expected = [str(a) for a, t in TRANSITIONS.items() if state in t.sources]
    assert lifecycle.allowed_actions(incident) == expected
    assert lifecycle.allowed_actions(incident, responder_of(incident)) == expected
    assert [str(a) for a in actions_from(state)] == expected


def test_the_api_has_one_route_per_action_of_the_table_and_no_other():
    routes = {a.url_path for a in IncidentViewSet.get_extra_actions()}
    assert {str(a) for a in TRANSITIONS} <= routes
    for action in TRANSITIONS:
        assert reverse(f"api:incident-{action}", kwargs={"reference": "INC-000001"}).endswith(f"/{action}/")
    with pytest.raises(NoReverseMatch):
        reverse("api:incident-teleport", kwargs={"reference": "INC-000001"})


@pytest.mark.parametrize(("action", "source"), ROWS, ids=[f"{a}-from-{s}" for a, s in ROWS])
def test_each_api_route_leads_where_the_table_says(action, source):
    incident = incident_in(source)
    expected = TRANSITIONS[action].target_from(source, held_from=incident.held_from)
    client = client_for(responder_of(incident))
    url = reverse(f"api:incident-{action}", kwargs={"reference": incident.reference})
    response = client.post(url, payload_for(action, incident))
    assert response.status_code == 200, response.json()
    incident.refresh_from_db()
    assert incident.state == expected
    if action == Action.ASSIGN:  # no state change: an "assigned" entry, not a state change
        assert incident.timeline.filter(kind="assigned", action="assign").exists()
        return
    entry = incident.timeline.filter(kind="state_changed").latest("at", "id")
    assert (entry.action, entry.data["from"], entry.data["to"]) == (action, source, expected)


def test_held_from_and_stays_are_what_the_table_models():
    assert TRANSITIONS[Action.RESUME].target_from(S.ON_HOLD, held_from=S.ESCALATED) == S.ESCALATED
    assert TRANSITIONS[Action.ACKNOWLEDGE].target_from(S.ESCALATED) == S.ESCALATED
    assert TRANSITIONS[Action.ACKNOWLEDGE].target_from(S.CLASSIFIED) == S.RESPONDING


@pytest.mark.parametrize(
    ("old", "new", "action"),
    [
        (S.RECEIVED, S.CLASSIFIED, Action.CLASSIFY),
        (S.CLASSIFIED, S.RESPONDING, Action.ACKNOWLEDGE),
        (S.ESCALATED, S.ESCALATED, Action.ESCALATE),  # a new escalation, not an acknowledgement
        (S.ON_HOLD, S.ESCALATED, Action.RESUME),
        (S.ON_HOLD, S.RESPONDING, Action.RESUME),
        (S.ON_HOLD, S.CANCELLED, Action.CANCEL),  # a fixed target wins over "back to where it was"
        (S.RESOLVED, S.RESPONDING, Action.REOPEN),
        (S.RECEIVED, S.RESOLVED, ""),  # another tool allowed it; the desk has no such action
    ],
)
def test_the_replay_names_the_tables_action(old, new, action):
    assert action_between(old, new) == str(action)


@pytest.mark.parametrize(
    ("old", "new", "held_from", "action"),
    [
        (S.ESCALATED, S.ESCALATED, "", ""),  # a same-state row of a history is an update, never an action
        (S.RESPONDING, S.RESPONDING, "", ""),  # nor an assignment
        (S.ON_HOLD, S.ON_HOLD, S.RESPONDING, ""),
        (S.ESCALATED, S.RESPONDING, "", Action.ACKNOWLEDGE),  # the other tool did move it
        (S.ON_HOLD, S.RESPONDING, S.RESPONDING, Action.RESUME),  # back to where the history held it from
        (S.ON_HOLD, S.ESCALATED, S.RESPONDING, ""),  # not where it was held from
        (S.ON_HOLD, S.ESCALATED, "", Action.RESUME),  # the history does not show where it was held from
        (S.ON_HOLD, S.RESOLVED, S.RESPONDING, ""),  # no resume: the desk has no such action
        (S.ON_HOLD, S.CANCELLED, S.RESPONDING, Action.CANCEL),
        (S.RESOLVED, S.RESPONDING, "", Action.REOPEN),
    ],
)
def test_a_history_names_only_moves_and_resumes_to_where_it_was_held_from(old, new, held_from, action):
    assert action_between(old, new, history=True, held_from=held_from) == str(action)
