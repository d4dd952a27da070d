"""The integrations API, for admins: the routing key is shown once, on create and on rotation."""

from __future__ import annotations

import pytest

from incidents.models import Incident
from intake.models import Integration
from tests.conftest import client_for
from tests.factories import CategoryFactory, TeamFactory, UserFactory, agent, domain

from .conftest import make_integration

pytestmark = pytest.mark.django_db
URL = "/api/v1/integrations/"


@pytest.fixture
def admin_api():
    return client_for(UserFactory(is_staff=True))


def test_create_shows_the_key_once_and_stores_only_its_hash(admin_api, api):
    CategoryFactory(domain=domain("it_service"), slug="network")
    team = TeamFactory()

    response = admin_api.post(
        URL,
        {
            "slug": "prom",
            "name": "Prometheus",
            "domain": "it_service",
            "category": "network",
            "team": team.slug,
        },
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    key = body["routing_key"]
    integration = Integration.objects.get(slug="prom")
    assert key not in integration.key_hash
    assert integration.key_prefix == key[:8]
    assert body["category"] == "network"
    assert "routing_key" not in admin_api.get(f"{URL}prom/").json()
    event = {
        "routing_key": key,
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "x", "severity": "info"},
    }
    assert api.post("/api/v1/events/", event, format="json").status_code == 202
    assert Incident.objects.get().state == Incident.State.CLASSIFIED


def test_rotate_key_stops_the_old_key_at_once(admin_api, api):
    _, old = make_integration(slug="prom")

    response = admin_api.post(f"{URL}prom/rotate_key/")

    new = response.json()["routing_key"]
    assert new != old
    event = {"event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "info"}}
    assert api.post("/api/v1/events/", {"routing_key": old, **event}, format="json").status_code == 404
    assert api.post("/api/v1/events/", {"routing_key": new, **event}, format="json").status_code == 202


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slug": "x", "name": "X", "category": "network"}, "category"),
        ({"slug": "x", "name": "X", "domain": "it_service", "category": "nowhere"}, "category"),
        ({"slug": "x", "name": "X", "domain": "atlantis"}, "domain"),
        (
            {"slug": "x", "name": "X", "severity_mapping": {"fatal": {"impact": 1, "urgency": 1}}},
            "severity_mapping",
        ),
        (
            {"slug": "x", "name": "X", "severity_mapping": {"critical": {"impact": 4, "urgency": 1}}},
            "severity_mapping",
        ),
        ({"slug": "x", "name": "X", "domain": "security", "team": "plain"}, "team"),
        ({"name": "X"}, "slug"),
    ],
)
def test_invalid_integration_is_400_naming_the_field(admin_api, body, field):
    TeamFactory(slug="plain")

    response = admin_api.post(URL, body, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_only_admins_may_use_it(api):
    make_integration(slug="prom")
    responder = client_for(agent())

    assert responder.get(URL).status_code == 403
    assert responder.post(f"{URL}prom/rotate_key/").status_code == 403
    assert api.get(URL).status_code == 401


def test_list_costs_a_fixed_number_of_queries(admin_api, django_assert_num_queries):
    for n in range(5):
        make_integration(slug=f"mon-{n}", classified=True)

    with django_assert_num_queries(1):
        response = admin_api.get(URL)

    assert len(response.json()["results"]) == 5
    assert response.json()["results"][0]["domain"] == "it_service"
