"""The list and detail endpoints read a fixed number of queries whatever the data."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from incidents.models import Incident
from tests.factories import TeamFactory, UserFactory, agent, incident_in, report

pytestmark = pytest.mark.django_db
S = Incident.State


def make(n: int, reporter) -> None:
    states = [S.RECEIVED, S.CLASSIFIED, S.RESPONDING, S.ESCALATED, S.RESOLVED, S.CLOSED]
    for i in range(n):
        if i % 3 == 0:
            incident_in(states[i % len(states)], reporter=reporter)
        else:
            report(reporter=reporter, confidential=i % 2 == 0)


def client_for(user) -> APIClient:
    """A session login, so that every request loads its user afresh as in production."""
    client = APIClient()
    client.force_login(user)
    return client


def count_queries(client, path: str, **params) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(path, params)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("viewer", ["responder", "reporter"])
def test_list_query_count_is_constant(viewer, django_assert_max_num_queries):
    reporter = UserFactory()
    responder = agent(TeamFactory(domains=["it_service", "security"]))
    client = client_for(responder if viewer == "responder" else reporter)
    make(5, reporter)
    small = count_queries(client, "/api/v1/incidents/", page_size=100)
    make(45, reporter)
    large = count_queries(client, "/api/v1/incidents/", page_size=100)
    assert small == large
    # session, user, roles, permission, one page of incidents, their SLA clocks (the reporting targets)
    with django_assert_max_num_queries(6):
        client.get(
            "/api/v1/incidents/", {"page_size": 100, "state": "received", "q": "vpn", "ordering": "-priority"}
        )


def test_detail_and_timeline_query_counts_are_constant():
    incident = incident_in(S.CLOSED)
    client = client_for(agent(incident.team))
    counts = []
    for extra in (0, 45):
        for i in range(extra):
            client.post(
                f"/api/v1/incidents/{incident.reference}/comments/", {"body": f"c{i}", "public": i % 2 == 0}
            )
        counts.append(
            (
                count_queries(client, f"/api/v1/incidents/{incident.reference}/"),
                count_queries(client, f"/api/v1/incidents/{incident.reference}/timeline/", page_size=100),
                count_queries(client, f"/api/v1/incidents/{incident.reference}/comments/", page_size=100),
            )
        )
    assert counts[0] == counts[1]
    assert max(counts[1]) <= 6  # session, user, roles, permission, incident, entries
