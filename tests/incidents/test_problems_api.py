"""`/api/v1/problems/` and the console's problem pages."""

from __future__ import annotations

import pytest

from incidents import problems
from incidents.models import FollowUpAction, Incident, Problem
from tests.conftest import client_for
from tests.factories import CategoryFactory, UserFactory, agent, domain, incident_in, responder_of

pytestmark = pytest.mark.django_db
URL = "/api/v1/problems/"


@pytest.fixture
def desk():
    user = agent()
    api = client_for(user)
    api.user = user
    return api


def test_create_read_edit_a_problem_with_linked_incidents(desk):
    incident = incident_in(Incident.State.RESOLVED)
    category = CategoryFactory(name="VPN")
    created = desk.post(
        URL,
        {"title": "VPN drops", "incidents": [incident.reference], "category": category.path,
         "domain": "it_service", "owner": desk.user.username},
        format="json",
    )  # fmt: skip
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["reference"].startswith("PRB-")
    assert body["state"] == "open"
    assert body["incidents"] == [incident.reference]
    assert body["incident_count"] == 1
    assert body["category"] == category.path
    assert body["allowed_states"] == ["closed", "known_error", "resolved"]
    detail = f"{URL}{body['id']}/"
    edited = desk.patch(detail, {"root_cause": "Firmware leak", "version": body["version"]}, format="json")
    assert edited.json()["root_cause"] == "Firmware leak"
    stale = desk.patch(detail, {"root_cause": "x", "version": body["version"]}, format="json")
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_version"
    assert desk.get(f"/api/v1/incidents/{incident.reference}/").json()["problem"] == body["id"]


def test_bad_input_is_a_400_naming_the_field(desk):
    assert "title" in desk.post(URL, {}, format="json").json()
    assert desk.post(URL, {"title": "x", "incidents": ["INC-999999"]}, format="json").json() == {
        "incidents": ["No incident INC-999999."]
    }
    assert "category" in desk.post(URL, {"title": "x", "category": "no/such"}, format="json").json()
    problem = problems.create_problem(actor=desk.user, title="x")
    assert "state" in desk.post(f"{URL}{problem.pk}/state/", {"state": "gone"}, format="json").json()
    assert "owner" in desk.post(
        f"{URL}{problem.pk}/follow-ups/", {"title": "t", "owner": "nobody", "due_date": "2026-07-01"},
        format="json",
    ).json()  # fmt: skip
    assert "due_date" in desk.post(
        f"{URL}{problem.pk}/follow-ups/", {"title": "t", "owner": desk.user.username, "due_date": "soon"},
        format="json",
    ).json()  # fmt: skip


def test_state_changes_refused_by_the_table_are_409_with_the_allowed_states(desk):
    problem = problems.create_problem(actor=desk.user, title="x")
    refused = desk.post(f"{URL}{problem.pk}/state/", {"state": "proposed"}, format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "invalid_transition"
    assert refused.json()["allowed_actions"] == ["closed", "known_error", "resolved"]
    missing = desk.post(f"{URL}{problem.pk}/state/", {"state": "known_error"}, format="json")
    assert missing.status_code == 400
    assert set(missing.json()) == {"root_cause", "workaround"}
    done = desk.post(f"{URL}{problem.pk}/state/", {"state": "closed"}, format="json")
    assert done.json()["state"] == "closed"


def test_link_unlink_and_follow_ups(desk):
    problem = problems.create_problem(actor=desk.user, title="x")
    first, second = incident_in(Incident.State.RESPONDING), incident_in(Incident.State.CLOSED)
    refs = [first.reference, second.reference]
    linked = desk.post(f"{URL}{problem.pk}/link/", {"incidents": refs}, format="json").json()
    assert linked["incidents"] == refs
    unlinked = desk.post(f"{URL}{problem.pk}/unlink/", {"incidents": [first.reference]}, format="json").json()
    assert unlinked["incidents"] == [second.reference]
    assert desk.post(f"{URL}{problem.pk}/link/", {"incidents": []}, format="json").status_code == 400

    added = desk.post(
        f"{URL}{problem.pk}/follow-ups/", {"title": "Patch", "owner": desk.user.username, "due_date": "2026-07-01"},
        format="json",
    )  # fmt: skip
    assert added.status_code == 201
    listed = desk.get(f"{URL}{problem.pk}/follow-ups/").json()
    assert [f["title"] for f in listed] == ["Patch"]
    done = desk.post(f"{URL}{problem.pk}/follow-ups/{added.json()['id']}/done/")
    assert done.json()["done_at"] is not None
    assert desk.post(f"{URL}{problem.pk}/follow-ups/999999/done/").status_code == 404


def test_filters(desk):
    incident = incident_in(Incident.State.RESPONDING)
    linked = problems.create_problem(actor=desk.user, title="Mail relay", incidents=[incident])
    other = problems.create_problem(actor=desk.user, title="Printer")
    Problem.objects.filter(pk=other.pk).update(state="known_error", known_error=True)

    def ids(**params):
        return [p["id"] for p in desk.get(URL, params).json()["results"]]

    assert ids(incident=incident.reference) == [linked.pk]
    assert ids(state="known_error") == [other.pk]
    assert ids(known_error="true") == [other.pk]
    assert ids(q="relay") == [linked.pk]
    assert desk.get(URL, {"state": "nope"}).status_code == 400


def test_reporters_are_refused_and_restricted_problems_answer_404_to_other_teams(desk):
    assert client_for(UserFactory()).get(URL).status_code == 403
    medical = CategoryFactory(domain=domain("medical"))
    problem = problems.create_problem(
        actor=UserFactory(is_superuser=True), title="Wrong dose", category=medical
    )
    assert desk.get(f"{URL}{problem.pk}/").status_code == 404
    assert problem.pk not in [p["id"] for p in desk.get(URL).json()["results"]]


def test_the_list_takes_a_constant_number_of_queries(desk, django_assert_num_queries):
    for n in range(3):
        problem = problems.create_problem(actor=desk.user, title=f"p{n}", incidents=[incident_in("received")])
        FollowUpAction.objects.create(problem=problem, title="t", owner=desk.user, due_date="2026-07-01")
    desk.get(URL)  # warm the user's desk roles
    # The page, its visible linked incidents, its follow-ups with owners: whatever the number of rows.
    with django_assert_num_queries(3):
        assert len(desk.get(URL).json()["results"]) == 3
    problems.create_problem(actor=desk.user, title="more", incidents=[incident_in("received")])
    with django_assert_num_queries(3):
        assert len(desk.get(URL).json()["results"]) == 4


# --- console pages -----------------------------------------------------------------------------------


def test_problem_pages_list_show_and_act(client, django_assert_num_queries):
    user = agent()
    incident = incident_in(Incident.State.RESPONDING)
    problem = problems.create_problem(actor=user, title="Mail relay", incidents=[incident], root_cause="Disk")
    action = problems.add_follow_up(
        problem, actor=user, title="Add disk alarm", owner=user, due_date="2026-07-01"
    )
    client.force_login(user)
    problems.create_problem(actor=user, title="Second", incidents=[incident_in(Incident.State.RECEIVED)])
    # Session, user with desk roles (one query) and the rows with their counts: fixed, not one per problem.
    with django_assert_num_queries(3):
        listing = client.get("/desk/problems/")
    assert problem.reference in listing.content.decode()
    page = client.get(f"/desk/problems/{problem.pk}/").content.decode()
    assert incident.reference in page
    assert "Add disk alarm" in page
    client.post(f"/desk/problems/{problem.pk}/follow-ups/{action.pk}/done/")
    action.refresh_from_db()
    assert action.done_at is not None
    # adding the follow-up and marking it done each made a new version of the problem: the page read before is stale
    read = problem.version
    client.post(f"/desk/problems/{problem.pk}/state/", {"state": "resolved", "version": read + 1})
    problem.refresh_from_db()
    assert problem.state == "open"  # refused, with the page's message
    client.post(f"/desk/problems/{problem.pk}/state/", {"state": "resolved", "version": read + 2})
    problem.refresh_from_db()
    assert problem.state == "resolved"
    assert client.get("/desk/problems/999999/").status_code == 404


def test_problem_pages_do_not_exist_for_reporters(client):
    client.force_login(UserFactory())
    assert client.get("/desk/problems/").status_code == 404


def test_the_incident_page_shows_its_problem_and_workaround(client):
    incident = incident_in(Incident.State.RESPONDING)
    user = responder_of(incident)
    problem = problems.create_problem(
        actor=user, title="Relay", incidents=[incident], workaround="Use webmail"
    )
    client.force_login(user)
    page = client.get(f"/desk/incidents/{incident.reference}/").content.decode()
    assert problem.reference in page
    assert "Use webmail" in page


def test_delete_unlinks_and_is_refused_once_the_problem_has_history(desk):
    incident = incident_in(Incident.State.RESPONDING)
    problem = problems.create_problem(actor=desk.user, title="Mistake", incidents=[incident])
    assert desk.delete(f"{URL}{problem.pk}/").status_code == 204
    incident.refresh_from_db()
    assert incident.problem_id is None
    assert not Problem.objects.filter(pk=problem.pk).exists()

    kept = problems.create_problem(actor=desk.user, title="Real")
    problems.add_follow_up(kept, actor=desk.user, title="Patch", owner=desk.user, due_date="2026-07-01")
    assert "follow_ups" in desk.delete(f"{URL}{kept.pk}/").json()
    resolved = problems.create_problem(actor=desk.user, title="Done", root_cause="x")
    problems.change_state(resolved, actor=desk.user, state="resolved")
    assert desk.delete(f"{URL}{resolved.pk}/").status_code == 409
