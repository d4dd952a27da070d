from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from interviews.models import Session
from tests.conftest import client_for
from tests.factories import UserFactory, incident_in
from tests.interviews.helpers import (
    case_doc,
    interviewer,
    lead_of,
    new_session,
    publisher,
    raters_of,
    rubric_keys,
    session_in,
)

pytestmark = pytest.mark.django_db
BASE = "/api/v1/interviews"


def test_the_case_library_is_for_interviewers_only():
    assert client_for(UserFactory()).get(f"{BASE}/cases/").status_code == 403
    assert client_for(interviewer()).get(f"{BASE}/cases/").status_code == 200


def test_a_case_is_created_edited_reviewed_and_published_through_the_api():
    author, reviewer = interviewer(), publisher()
    api = client_for(author)

    created = api.post(f"{BASE}/cases/", case_doc(), format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["slug"], body["number"], body["status"]) == ("expired-cert", 1, "draft")
    assert body["document"]["facts"][1]["requires"] == ["F1"]
    assert body["allowed_actions"] == ["submit"]

    edited = api.put(f"{BASE}/cases/expired-cert/", case_doc(title="Payments fail at one"), format="json")
    assert edited.status_code == 200
    assert (edited.json()["number"], edited.json()["title"]) == (1, "Payments fail at one")

    assert api.post(f"{BASE}/cases/expired-cert/submit/").json()["status"] == "review"
    assert api.post(f"{BASE}/cases/expired-cert/approve/").status_code == 403  # needs publish permission
    own = client_for(reviewer)
    assert own.post(f"{BASE}/cases/expired-cert/approve/").json()["status"] == "published"

    listing = api.get(f"{BASE}/cases/").json()
    assert [c["slug"] for c in listing["results"]] == ["expired-cert"]
    assert set(listing) >= {"next", "previous", "results"}


def test_the_author_cannot_approve_their_own_case():
    author = publisher()
    api = client_for(author)
    api.post(f"{BASE}/cases/", case_doc(), format="json")
    api.post(f"{BASE}/cases/expired-cert/submit/")
    response = api.post(f"{BASE}/cases/expired-cert/approve/")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


def test_an_invalid_document_answers_400_naming_the_fields():
    response = client_for(interviewer()).post(
        f"{BASE}/cases/", case_doc(title="", rubric="nope"), format="json"
    )
    assert response.status_code == 400
    assert set(response.json()) >= {"title", "rubric"}


def test_a_wrong_case_action_answers_409_with_the_allowed_actions():
    api = client_for(publisher())
    api.post(f"{BASE}/cases/", case_doc(), format="json")
    response = api.post(f"{BASE}/cases/expired-cert/retire/")
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"
    assert response.json()["allowed_actions"] == ["submit"]


def test_editing_a_used_case_makes_a_new_version():
    session = new_session()
    slug = session.case_version.case.slug
    api = client_for(interviewer())
    response = api.put(f"{BASE}/cases/{slug}/", case_doc(title="Changed"), format="json")
    assert response.json()["number"] == 2
    versions = api.get(f"{BASE}/cases/{slug}/versions/").json()
    assert [(v["number"], v["status"], v["frozen"]) for v in versions] == [
        (2, "draft", False),
        (1, "published", True),
    ]
    assert api.get(f"{BASE}/cases/{slug}/", {"version": 1}).json()["title"] == "Payments fail at noon"


def test_a_case_is_drafted_from_a_closed_incident():
    incident = incident_in("closed")
    user = interviewer(is_superuser=True)
    response = client_for(user).post(f"{BASE}/cases/from-incident/", {"incident": incident.reference})
    assert response.status_code == 201, response.json()
    assert response.json()["source_incident"] == incident.reference
    assert response.json()["detector_findings"] == []
    hidden = incident_in("closed", domain_slug="security")
    assert (
        client_for(interviewer())
        .post(f"{BASE}/cases/from-incident/", {"incident": hidden.reference})
        .status_code
        == 404
    )


def test_a_session_is_set_up_run_rated_and_reported_through_the_api():
    lead, rater = interviewer(), interviewer()
    api, rater_api = client_for(lead), client_for(rater)
    api.post(f"{BASE}/cases/", case_doc(), format="json")
    api.post(f"{BASE}/cases/expired-cert/submit/")
    client_for(publisher()).post(f"{BASE}/cases/expired-cert/approve/")
    candidate = api.post(
        f"{BASE}/candidates/", {"name": "Casey", "email": "casey@example.net", "consent": True}
    ).json()
    assert candidate["consent_given_at"] is not None

    created = api.post(
        f"{BASE}/sessions/",
        {"case": "expired-cert", "candidate": candidate["id"], "raters": [rater.username]},
        format="json",
    )
    assert created.status_code == 201, created.json()
    sid = created.json()["id"]
    assert created.json()["state"] == "scheduled"
    assert created.json()["my_role"] == "lead"
    assert created.json()["candidate_url"].startswith(f"{BASE}/candidate/")
    assert rater_api.get(f"{BASE}/sessions/{sid}/").json()["candidate_url"] is None

    def act(name, client=api, **data):
        response = client.post(f"{BASE}/sessions/{sid}/{name}/", data, format="json")
        assert response.status_code in (200, 201), (name, response.json())
        return response.json()

    assert act("start")["clock"]["budget_seconds"] == 180
    act("advance")
    suggestions = api.get(f"{BASE}/sessions/{sid}/suggestions/", {"q": "what do the logs say"}).json()
    assert suggestions[0]["key"] == "F1"
    question = act("questions", text="What do the logs say?")
    act("reveals", fact="F1", question=question["id"])
    act("reveals", fact="F2", level="partial")
    q2 = act("questions", text="Is there a full moon?")
    act(f"questions/{q2['id']}/answer", answer="not_available")
    board = api.get(f"{BASE}/sessions/{sid}/facts/").json()
    assert {f["key"]: f["revealed"] for f in board}["F2"] == ["partial"]
    assert [f["key"] for f in api.get(f"{BASE}/sessions/{sid}/facts/", {"q": "certificate"}).json()] == ["F2"]
    act("notes", flag="good_question", text="went to the logs first", client=rater_api)
    act("advance")
    problem = act("problems", statement="The TLS certificate expired", cited_reveals=[])
    act(f"problems/{problem['id']}/map", verdict="matched", expected="P1", client=rater_api)
    act("advance")
    solution = act("solutions", action="Renew the certificate", reason="Fastest way back")
    act(f"solutions/{solution['id']}/map", verdict="matched", model="S1")
    act("advance")
    act("advance")  # rating
    for key in rubric_keys():
        act("ratings", dimension=key, level=4, evidence="did well", client=api)
        act("ratings", dimension=key, level=3, evidence="good enough", client=rater_api)
    blind = rater_api.get(f"{BASE}/sessions/{sid}/ratings/").json()["results"]
    assert {r["rater"] for r in blind} == {rater.username}
    act("advance")  # consensus
    open_ratings = rater_api.get(f"{BASE}/sessions/{sid}/ratings/").json()["results"]
    assert {r["rater"] for r in open_ratings} == {lead.username, rater.username}
    for key in rubric_keys():
        act("consensus", dimension=key, level=4)
    closed = act("close", recommendation="yes", summary="Methodical.")
    assert closed["state"] == "closed"

    report = api.get(f"{BASE}/sessions/{sid}/report/").json()
    assert report["facts"]["key_recall"] == pytest.approx(0.75)
    assert report["problems"]["matched"] == ["P1"]
    assert report["solutions"]["recall"] == 2 / 3
    assert report["rubric"]["overall_consensus"] == 4.0
    assert report["rubric"]["panel_mean"]["communication"] == 3.5
    assert [i["kind"] for i in report["timeline"]][:3] == ["question", "reveal", "reveal"]
    csv = api.get(f"{BASE}/sessions/{sid}/report/", {"export": "csv"})
    assert csv["Content-Type"].startswith("text/csv")
    assert csv.content.decode().splitlines()[0] == "t_seconds,at,kind,fact,level,late,text"
    log = api.get(f"{BASE}/sessions/{sid}/log/").json()["results"]
    assert log[0]["kind"] == "created"


def test_lifecycle_errors_answer_409_and_only_the_lead_acts():
    session = new_session()
    rater = raters_of(session)[-1]
    wrong = client_for(lead_of(session)).post(f"{BASE}/sessions/{session.pk}/advance/")
    assert wrong.status_code == 409
    assert wrong.json()["allowed_actions"] == ["start", "void"]
    assert client_for(rater).post(f"{BASE}/sessions/{session.pk}/start/").status_code == 403
    stale = client_for(lead_of(session)).post(f"{BASE}/sessions/{session.pk}/start/", {"version": 99})
    assert (stale.status_code, stale.json()["code"]) == (409, "stale_version")


def test_sessions_of_other_panels_answer_404():
    session = new_session()
    stranger = UserFactory()
    assert client_for(stranger).get(f"{BASE}/sessions/{session.pk}/").status_code == 404
    assert client_for(stranger).get(f"{BASE}/sessions/").json()["results"] == []
    manager = UserFactory()
    manager.user_permissions.add(
        Permission.objects.get(codename="view_session", content_type__app_label="interviews")
    )
    assert client_for(manager).get(f"{BASE}/sessions/{session.pk}/").status_code == 200


def test_comparison_case_and_rater_reports():
    version = session_in("closed").case_version
    session_in("closed", new_session(version))
    manager = interviewer()
    api = client_for(manager)
    comparison = api.get(f"{BASE}/reports/comparison/", {"case": version.case.slug}).json()
    assert len(comparison["results"]) == 2
    assert comparison["results"][0]["rubric_consensus_percentile"] == 50.0
    csv = api.get(f"{BASE}/reports/comparison/", {"case": version.case.slug, "export": "csv"})
    assert csv.content.decode().startswith("session,candidate,")
    analytics = api.get(f"{BASE}/reports/cases/", {"case": version.case.slug}).json()
    assert analytics["sessions"] == 2
    assert [f["fact"] for f in analytics["facts"]] == ["F1", "F2", "F3", "F4", "F5"]
    raters = api.get(f"{BASE}/reports/raters/", {"by": "all"}).json()
    assert {d["dimension"] for d in raters["dimensions"]} == set(rubric_keys())
    assert api.get(f"{BASE}/reports/raters/", {"by": "week"}).status_code == 400


def test_erasing_a_candidate_needs_the_delete_permission():
    session = session_in("closed")
    api = client_for(interviewer())
    assert api.post(f"{BASE}/candidates/{session.candidate_id}/erase/").status_code == 403
    admin = interviewer(is_superuser=True)
    response = client_for(admin).post(f"{BASE}/candidates/{session.candidate_id}/erase/")
    assert response.status_code == 200
    assert response.json()["erased_at"] is not None
    assert Session.objects.get(pk=session.pk).candidate_notes == ""
