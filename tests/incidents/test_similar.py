"""Similar past incidents: trigram and full-text on PostgreSQL, shared words on SQLite; visibility respected."""

from __future__ import annotations

import pytest
from django.db import connection

from incidents.models import Incident
from incidents.selectors import similar_incidents
from tests.conftest import client_for
from tests.factories import UserFactory, agent, incident_in, responder_of

pytestmark = pytest.mark.django_db
S = Incident.State


def refs(found):
    return [i.reference for i in found]


def test_a_resolved_incident_with_the_same_words_is_found_with_how_it_was_resolved():
    past = incident_in(S.CLOSED, title="Printer on floor 3 jams on every job")
    unrelated = incident_in(S.CLOSED, title="Payroll export misses overtime")
    still_open = incident_in(S.RESPONDING, title="Printer on floor 3 jams again")
    current = incident_in(S.RECEIVED, title="Printer floor 3 jams")
    viewer = responder_of(current)
    found = similar_incidents(current, viewer)
    assert refs(found)[0] == past.reference
    assert unrelated.reference not in refs(found)
    assert still_open.reference not in refs(found)  # only past incidents: resolved or closed
    assert current.reference not in refs(found)
    assert found[0].cause == "Memory leak in firmware"


def test_incidents_the_user_may_not_see_are_never_suggested():
    incident_in(S.CLOSED, domain_slug="security", title="Printer floor 3 jams phishing")
    current = incident_in(S.RECEIVED, title="Printer floor 3 jams")
    it_agent = agent()  # a team of it_service only
    assert similar_incidents(current, it_agent) == []
    assert similar_incidents(current, UserFactory()) == []  # a reporter sees none of others'


@pytest.mark.postgres
def test_postgres_finds_a_title_with_a_typo_through_trigrams():
    past = incident_in(S.RESOLVED, title="Outlook disconnects from Exchange")
    current = incident_in(S.RECEIVED, title="Outlok disconects from Exchang")
    found = similar_incidents(current, responder_of(current))
    assert refs(found) == [past.reference]
    assert found[0].similarity > 0.3
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'incident_title_trgm_idx'")
        assert "gin_trgm_ops" in cursor.fetchone()[0]


def test_api_similar_lists_them_and_validates_the_limit():
    past = incident_in(S.CLOSED, title="Printer on floor 3 jams on every job")
    current = incident_in(S.RECEIVED, title="Printer floor 3 jams")
    api = client_for(responder_of(current))
    url = f"/api/v1/incidents/{current.reference}/similar/"
    body = api.get(url).json()
    assert body[0]["reference"] == past.reference
    assert body[0]["measures"] == "Firmware upgraded"
    assert body[0]["resolution_code"] == "fixed"
    assert api.get(url, {"limit": "0"}).json() == {"limit": ["A whole number from 1 to 20."]}
    assert api.get(url, {"limit": "abc"}).status_code == 400
    assert client_for(UserFactory()).get(url).status_code == 404


def test_the_console_incident_page_shows_them(client):
    past = incident_in(S.CLOSED, title="Printer on floor 3 jams on every job")
    current = incident_in(S.RECEIVED, title="Printer floor 3 jams")
    client.force_login(responder_of(current))
    page = client.get(f"/desk/incidents/{current.reference}/").content.decode()
    assert 'id="similar-incidents"' in page
    assert past.reference in page
    assert "Memory leak in firmware" in page


def test_the_similar_endpoint_takes_a_constant_number_of_queries(django_assert_num_queries):
    current = incident_in(S.RECEIVED, title="Printer floor 3 jams")
    api = client_for(responder_of(current))
    url = f"/api/v1/incidents/{current.reference}/similar/"
    incident_in(S.CLOSED, title="Printer on floor 3 jams on every job")
    api.get(url)  # warm the user's desk roles
    with django_assert_num_queries(2):  # the incident, then one ranked query (with its category)
        assert len(api.get(url).json()) == 1
    for n in range(4):
        incident_in(S.CLOSED, title=f"Printer floor 3 jams number {n}")
    with django_assert_num_queries(2):
        assert len(api.get(url).json()) == 5


@pytest.mark.postgres
def test_postgres_ranks_only_the_capped_candidates_of_each_probe(monkeypatch):
    """Each match (trigram, full text) is a probe that stops at SIMILAR_PROBE_CAP rows: a title shared by a
    sixth of a million incidents no longer ranks all of them."""
    from incidents import selectors

    current = incident_in(S.RECEIVED, title="Printer floor 3 jams")
    for n in range(4):
        incident_in(S.CLOSED, title=f"Printer floor 3 jams number {n}")
    viewer = responder_of(current)
    assert len(similar_incidents(current, viewer)) == 4
    monkeypatch.setattr(selectors, "SIMILAR_PROBE_CAP", 1)
    assert 1 <= len(similar_incidents(current, viewer)) <= 2  # one from each probe at most
