"""The reporter's confirmation (lifecycle.confirm_resolution) and satisfaction rating (portal and survey link)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from incidents import lifecycle, notifications, services
from incidents.models import Incident, SatisfactionRating, TimelineEntry
from tests.conftest import client_for
from tests.factories import UserFactory, incident_in, responder_of

pytestmark = pytest.mark.django_db
S = Incident.State


def test_confirming_records_the_time_and_a_public_entry_but_does_not_close():
    reporter = UserFactory()
    incident = incident_in(S.RESOLVED, reporter=reporter)
    version = incident.version

    confirmed = lifecycle.confirm_resolution(incident, actor=reporter, version=version)

    assert confirmed.state == S.RESOLVED  # closing needs cause and measures (SPEC section 2)
    assert confirmed.reporter_confirmed_at >= confirmed.resolved_at
    assert confirmed.version == version + 1
    entry = TimelineEntry.objects.get(incident=incident, kind="reporter_confirmed")
    assert entry.public
    assert entry.actor == reporter


def test_confirming_twice_changes_nothing_the_second_time():
    reporter = UserFactory()
    incident = lifecycle.confirm_resolution(incident_in(S.RESOLVED, reporter=reporter), actor=reporter)
    again = lifecycle.confirm_resolution(incident, actor=None)
    assert again.version == incident.version
    assert TimelineEntry.objects.filter(incident=incident, kind="reporter_confirmed").count() == 1


def test_a_new_resolution_after_a_reopen_can_be_confirmed_again():
    reporter = UserFactory()
    incident = lifecycle.confirm_resolution(incident_in(S.RESOLVED, reporter=reporter), actor=reporter)
    actor = responder_of(incident)
    incident = lifecycle.reopen_incident(incident, actor=reporter, reason="broken again")
    incident = lifecycle.resolve_incident(incident, actor=actor, summary="Replaced the card")
    lifecycle.confirm_resolution(incident, actor=reporter)
    assert TimelineEntry.objects.filter(incident=incident, kind="reporter_confirmed").count() == 2


@pytest.mark.parametrize("state", [S.RESPONDING, S.CLOSED])
def test_only_a_resolved_incident_can_be_confirmed(state):
    incident = incident_in(state)
    with pytest.raises(lifecycle.InvalidTransition):
        lifecycle.confirm_resolution(incident, actor=None)


def test_a_stale_version_is_refused():
    incident = incident_in(S.RESOLVED)
    with pytest.raises(lifecycle.StaleVersion):
        lifecycle.confirm_resolution(incident, actor=None, version=incident.version - 1)


def test_another_reporter_may_not_confirm():
    incident = incident_in(S.RESOLVED)
    with pytest.raises(PermissionDenied):
        lifecycle.confirm_resolution(incident, actor=UserFactory())


def test_api_confirm_answers_the_incident_409_and_404():
    reporter = UserFactory()
    incident = incident_in(S.RESOLVED, reporter=reporter)
    url = f"/api/v1/incidents/{incident.reference}/confirm/"
    response = client_for(reporter).post(url, {"version": incident.version}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["reporter_confirmed_at"] is not None
    assert response.json()["state"] == "resolved"
    stale = client_for(reporter).post(url, {"version": 1}, format="json")
    assert stale.status_code == 409
    assert stale.json()["code"] == "stale_version"
    assert client_for(UserFactory()).post(url, {}, format="json").status_code == 404
    other = incident_in(S.RESPONDING, reporter=reporter)
    refused = client_for(reporter).post(f"/api/v1/incidents/{other.reference}/confirm/", {}, format="json")
    assert refused.status_code == 409
    assert refused.json()["code"] == "invalid_transition"
    bad = client_for(reporter).post(url, {"version": "x"}, format="json")
    assert bad.status_code == 400
    assert "version" in bad.json()


def test_portal_confirm_goes_through_the_lifecycle(client):
    incident = incident_in(S.RESOLVED, reporter_email="anon@example.org")
    response = client.post(f"/track/{incident.tracking_token}/confirm/")
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.reporter_confirmed_at is not None
    assert not incident.comments.exists()  # no longer a comment standing in for a confirmation
    page = client.get(f"/track/{incident.tracking_token}/").content.decode()
    assert "You confirmed the fix" in page
    assert "Confirmed that the fix worked." in page


def test_portal_confirm_of_an_open_incident_is_a_conflict(client):
    incident = incident_in(S.RESPONDING, reporter_email="anon@example.org")
    assert client.post(f"/track/{incident.tracking_token}/confirm/").status_code == 409


# --- satisfaction -------------------------------------------------------------------------------------


def test_a_rating_is_recorded_with_its_comment_and_a_timeline_entry():
    incident = incident_in(S.CLOSED)
    services.rate_incident(incident, score=4, comment="Quick and clear")
    services.rate_incident(incident, score=4, comment="Quick and clear")  # the same click again
    rating = SatisfactionRating.objects.get(incident=incident)
    assert (rating.score, rating.comment) == (4, "Quick and clear")
    entries = TimelineEntry.objects.filter(incident=incident, kind="rating")
    assert [e.data["score"] for e in entries] == [4]
    services.rate_incident(incident, score=2)
    assert SatisfactionRating.objects.get(incident=incident).score == 2  # the last rating counts
    assert TimelineEntry.objects.filter(incident=incident, kind="rating").count() == 2


def test_only_a_closed_incident_is_rated_from_1_to_5():
    with pytest.raises(lifecycle.InvalidTransition):
        services.rate_incident(incident_in(S.RESOLVED), score=5)
    with pytest.raises(ValidationError) as error:
        services.rate_incident(incident_in(S.CLOSED), score=6)
    assert "score" in error.value.message_dict


def test_the_survey_link_shows_the_clicked_score_and_records_only_on_post(client):
    incident = incident_in(S.CLOSED)
    url = f"/survey/{notifications.survey_token(incident)}/"
    page = client.get(url, {"score": "5"})  # a mail scanner opening the link
    assert page.status_code == 200
    assert 'value="5" autocomplete="off" checked' in page.content.decode()
    assert not SatisfactionRating.objects.filter(incident=incident).exists()

    done = client.post(url, {"score": "5", "comment": "Thanks!"})
    assert done.status_code == 200
    assert "Thank you for your rating" in done.content.decode()
    rating = SatisfactionRating.objects.get(incident=incident)
    assert (rating.score, rating.comment) == (5, "Thanks!")


def test_the_survey_refuses_bad_tokens_scores_and_open_incidents(client):
    assert client.get("/survey/not-a-signed-token/").status_code == 404
    closed = incident_in(S.CLOSED)
    url = f"/survey/{notifications.survey_token(closed)}/"
    assert client.post(url, {"score": "9"}).status_code == 400
    assert client.post(url, {"score": "\u00b2"}).status_code == 400  # a digit to isdigit(), not to int()
    assert client.post(url, {"score": "abc"}).status_code == 400
    open_one = incident_in(S.RESOLVED)
    assert client.post(f"/survey/{notifications.survey_token(open_one)}/", {"score": "3"}).status_code == 409


def test_portal_rating_takes_a_comment(client):
    incident = incident_in(S.CLOSED, reporter_email="anon@example.org")
    client.post(f"/track/{incident.tracking_token}/rate/", {"score": "3", "comment": "Slow at first"})
    assert SatisfactionRating.objects.get(incident=incident).comment == "Slow at first"
    page = client.get(f"/track/{incident.tracking_token}/").content.decode()
    assert "Rated the service 3 of 5." in page
    assert "Slow at first" in page  # in the reporter's own form, not in anyone else's view


def test_api_rate_by_the_reporter_only():
    reporter = UserFactory()
    incident = incident_in(S.CLOSED, reporter=reporter)
    url = f"/api/v1/incidents/{incident.reference}/rate/"
    response = client_for(reporter).post(url, {"score": 4, "comment": "Good"}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["score"] == 4
    assert "score" in client_for(reporter).post(url, {"score": 6}, format="json").json()
    assert client_for(responder_of(incident)).post(url, {"score": 1}, format="json").status_code == 403
    open_one = incident_in(S.RESOLVED, reporter=reporter)
    refused = client_for(reporter).post(
        f"/api/v1/incidents/{open_one.reference}/rate/", {"score": 3}, format="json"
    )
    assert refused.status_code == 409
