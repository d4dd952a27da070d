"""The admin: adding an integration or rotating its key shows the key once, on a page of its own."""

from __future__ import annotations

import re

import pytest

from intake.models import Integration, hash_routing_key
from tests.factories import UserFactory

from .conftest import make_integration

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    return client


def shown_keys(response):
    return re.findall(r'<code class="routing-key">([^<]+)</code>', response.content.decode())


def test_adding_an_integration_shows_its_key_once(admin_client):
    response = admin_client.post(
        "/admin/intake/integration/add/",
        {
            "name": "Zabbix",
            "slug": "zabbix",
            "severity_mapping": '{"critical": {"impact": 1, "urgency": 1}}',
            "grouping_window_minutes": 60,
            "rate_limit_per_minute": 600,
            "active": "on",
            "created_at_0": "2026-03-02",
            "created_at_1": "09:00:00",
        },
    )

    assert response.status_code == 200, response.content[:2000]
    (key,) = shown_keys(response)
    integration = Integration.objects.get(slug="zabbix")
    assert integration.key_hash == hash_routing_key(key)
    assert integration.user.username == "integration-zabbix"
    assert key not in admin_client.get(f"/admin/intake/integration/{integration.pk}/change/").content.decode()


def test_rotate_action_shows_the_new_keys(admin_client):
    first, old = make_integration(slug="a")
    make_integration(slug="b")

    response = admin_client.post(
        "/admin/intake/integration/",
        {"action": "rotate_keys", "_selected_action": [str(i.pk) for i in Integration.objects.all()]},
    )

    keys = shown_keys(response)
    assert len(keys) == 2
    first.refresh_from_db()
    assert first.key_hash != hash_routing_key(old)
    assert first.key_hash in {hash_routing_key(k) for k in keys}


def test_a_refused_message_is_listed_in_the_admin_with_why(admin_client):
    from django.test import override_settings

    from intake.inbound import ingest
    from intake.mail import MessageRefused

    from .helpers import nested_message

    with override_settings(INTAKE_EMAIL_MAX_MIME_DEPTH=3), pytest.raises(MessageRefused):
        ingest(nested_message(4))

    page = admin_client.get("/admin/intake/inboundemail/?outcome__exact=refused").content.decode()
    assert "Nested 4 deep" in page
    assert "over the limit of 3" in page
