"""Inputs found by review that once gave a 500: each must be a 4xx (or be ignored), never an error page."""

from __future__ import annotations

import pytest

from tests.conftest import client_for
from tests.factories import agent

pytestmark = pytest.mark.django_db


def test_json_nested_thousands_deep_is_a_400_not_a_500(client):
    body = '{"routing_key": "x", "event_action": "trigger", "payload": ' + "[" * 5000 + "]" * 5000 + "}"
    response = client.post("/api/v1/events/", body, content_type="application/json")
    assert response.status_code == 400
    api = client_for(agent())
    response = api.post("/api/v1/incidents/", body, content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "sort=priority&cursor=1.99999999999999999999999",
        "sort=priority&before=99999999999999999999999.1",
        "sort=priority&cursor=-99999999999999999999.5",
    ],
)
def test_an_out_of_range_queue_cursor_is_ignored(client, query):
    client.force_login(agent())
    assert client.get(f"/desk/?{query}").status_code == 200
