"""Calibration against reference sessions: the API and the screen, with the rater's deviation."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from interviews import calibration, services
from interviews.models import Session
from tests.conftest import client_for
from tests.factories import UserFactory
from tests.interviews.helpers import interviewer, lead_of, rubric_keys, session_in

pytestmark = pytest.mark.django_db
BASE = "/api/v1/interviews/calibration"


def reference_session() -> Session:
    """A closed session whose consensus is 3 on every dimension (see helpers.session_in)."""
    return services.mark_reference(session_in("closed"))


def test_only_a_closed_session_with_a_consensus_becomes_a_reference():
    with pytest.raises(ValidationError):
        services.mark_reference(session_in("rating"))
    session = reference_session()
    assert services.mark_reference(session).is_reference
    assert not services.mark_reference(session, reference=False).is_reference


def test_the_list_shows_reference_sessions_to_library_users_outside_their_panel(django_assert_num_queries):
    sessions = [reference_session() for _ in range(3)]
    session_in("closed")  # not a reference
    rater = interviewer()
    services.rate_for_calibration(
        sessions[0], rater=rater, dimension=rubric_keys()[0], level=4, evidence="asked well"
    )
    api = client_for(rater)

    with django_assert_num_queries(3):  # the permissions (user and group), the page
        body = api.get(f"{BASE}/").json()

    assert [r["id"] for r in body["results"]] == sorted((s.pk for s in sessions), reverse=True)
    assert {r["id"]: r["rated"] for r in body["results"]}[sessions[0].pk] == 1
    assert client_for(lead_of(sessions[0])).get(f"{BASE}/").json()["results"][0]["id"] != sessions[0].pk
    assert client_for(UserFactory()).get(f"{BASE}/").status_code == 403


def test_the_reference_stays_hidden_until_every_dimension_is_rated_then_shows_the_deviation():
    session = reference_session()
    api = client_for(interviewer())
    keys = rubric_keys()

    detail = api.get(f"{BASE}/{session.pk}/").json()
    assert detail["material"]["problems"] == [] or "statement" in detail["material"]["problems"][0]
    text = str(detail)
    for hidden in ("evidence for", "Solid.", "'reference': 3"):
        assert hidden not in text
    levels = [5, 4, 3, 2, 1, 5][: len(keys)]
    for key, level in zip(keys[:-1], levels[:-1], strict=True):
        answer = api.post(
            f"{BASE}/{session.pk}/ratings/", {"dimension": key, "level": level, "evidence": "seen"}
        )
        assert answer.status_code == 201
        assert all(d["reference"] is None for d in answer.json()["result"]["dimensions"])
    last = api.post(
        f"{BASE}/{session.pk}/ratings/", {"dimension": keys[-1], "level": levels[-1], "evidence": "seen"}
    ).json()["result"]

    assert last["complete"] is True
    assert [d["deviation"] for d in last["dimensions"]] == [level - 3 for level in levels]
    deviations = [level - 3 for level in levels]
    assert last["mean_absolute_deviation"] == pytest.approx(
        sum(map(abs, deviations)) / len(deviations), abs=1e-3
    )
    assert last["bias"] == pytest.approx(sum(deviations) / len(deviations), abs=1e-3)


def test_bad_calibration_input_is_refused_naming_the_field():
    session = reference_session()
    api = client_for(interviewer())
    url = f"{BASE}/{session.pk}/ratings/"
    assert "dimension" in api.post(url, {"dimension": "nope", "level": 3, "evidence": "x"}).json()
    assert "level" in api.post(url, {"dimension": rubric_keys()[0], "level": 7, "evidence": "x"}).json()
    assert "evidence" in api.post(url, {"dimension": rubric_keys()[0], "level": 3, "evidence": ""}).json()
    assert api.post(url, {"dimension": rubric_keys()[0], "level": 3}).status_code == 400
    assert api.get(f"{BASE}/{session_in('closed').pk}/").status_code == 404  # not a reference
    assert api.get(f"{BASE}/abc/").status_code == 404
    panel = client_for(lead_of(session))
    assert panel.post(url, {"dimension": rubric_keys()[0], "level": 3, "evidence": "x"}).status_code == 404


def test_the_calibration_screen_rates_and_shows_the_deviation(client):
    session = reference_session()
    rater = interviewer()
    client.force_login(rater)
    assert f"/interviews/calibration/{session.pk}/" in client.get("/interviews/calibration/").content.decode()
    page = f"/interviews/calibration/{session.pk}/"
    assert "hidden" in client.get(page).content.decode()

    refused = client.post(page, {"dimension": rubric_keys()[0], "level": "9", "evidence": "x"})
    assert refused.status_code == 400
    assert "A level from 1 to 5." in refused.content.decode()
    for key in rubric_keys():
        assert client.post(page, {"dimension": key, "level": "4", "evidence": "good"}).status_code == 302

    html = client.get(page).content.decode()
    assert "Mean absolute deviation <strong>1.0</strong>" in html
    assert "bias <strong>1.0</strong>" in html
    assert calibration.result(session, rater)["complete"]
    client.force_login(lead_of(session))
    assert client.get(page).status_code == 404
    client.force_login(UserFactory())
    assert client.get("/interviews/calibration/").status_code == 404


def test_the_calibration_list_page_takes_constant_queries(client, django_assert_num_queries):
    reference_session()
    client.force_login(interviewer())
    client.get("/interviews/calibration/")
    with django_assert_num_queries(5) as few:
        client.get("/interviews/calibration/")
    reference_session()
    reference_session()
    with django_assert_num_queries(len(few)):
        html = client.get("/interviews/calibration/").content.decode()
    assert html.count("/interviews/calibration/") >= 3
