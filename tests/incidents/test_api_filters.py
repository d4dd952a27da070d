"""Out-of-range date-times on the incident list's filters answer 400 naming the filter, never a 500."""

from __future__ import annotations

import pytest

from tests.conftest import client_for
from tests.factories import TeamFactory, agent, incident_in

pytestmark = pytest.mark.django_db

BAD = [
    ("created_after", "2026-01-01T00:00:00+23:00"),
    ("created_before", "2026-01-01T00:00:00-16:00"),
    ("received_after", "2026-01-01T00:00:00+15:30"),
    ("received_before", "0001-01-01T00:00:00+05:00"),
    ("created_after", "9999-12-31T23:59:59-05:00"),
]


@pytest.mark.parametrize(("name", "value"), BAD)
@pytest.mark.parametrize("path", ["/api/v1/incidents/", "/api/v1/reports/incidents.csv"])
def test_out_of_range_datetimes_are_a_400_naming_the_filter(name, value, path):
    client = client_for(agent(TeamFactory()))
    response = client.get(path, {name: value}, HTTP_ACCEPT="application/json")
    assert response.status_code == 400, response.content
    assert name in response.json()


@pytest.mark.parametrize("value", ["2026-01-01T00:00:00+14:00", "2026-01-01T00:00:00-12:00", "2026-01-01"])
def test_real_offsets_still_filter(value):
    incident = incident_in("received")
    client = client_for(agent(TeamFactory()))
    response = client.get("/api/v1/incidents/", {"created_after": value})
    assert response.status_code == 200
    assert incident.reference in [i["reference"] for i in response.json()["results"]]
