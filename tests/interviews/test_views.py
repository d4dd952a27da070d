from __future__ import annotations

import pytest

from tests.factories import UserFactory
from tests.interviews.helpers import SECRETS, lead_of, new_session, session_in

pytestmark = pytest.mark.django_db


def test_the_candidate_page_needs_only_its_link_and_holds_no_case_content(client):
    session = session_in("gather")
    response = client.get(f"/interviews/c/{session.candidate_token}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f"/api/v1/interviews/candidate/{session.candidate_token}/" in html
    for secret in SECRETS:
        assert secret not in html
    assert session.case_version.presentation not in html  # even that comes from the API, once started
    assert client.get("/interviews/c/not-a-token/").status_code == 404


def test_the_console_is_for_the_panel_and_the_report_renders(client):
    session = session_in("closed")
    client.force_login(UserFactory())
    assert client.get(f"/interviews/sessions/{session.pk}/").status_code == 404
    client.force_login(lead_of(session))
    console = client.get(f"/interviews/sessions/{session.pk}/")
    assert console.status_code == 200
    assert b'data-role="lead"' in console.content
    report = client.get(f"/interviews/sessions/{session.pk}/report/")
    assert report.status_code == 200
    assert b"Key-fact recall" in report.content
    listing = client.get("/interviews/")
    assert f"/interviews/sessions/{session.pk}/".encode() in listing.content


def test_anonymous_visitors_are_sent_to_sign_in(client):
    session = new_session()
    response = client.get(f"/interviews/sessions/{session.pk}/")
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]
