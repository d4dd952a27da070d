from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.urls import reverse

from incidents.models import Incident
from tests.factories import UserFactory, incident_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    return client


def test_every_model_has_a_working_changelist_with_search_and_filters(admin_client):
    incident_in(Incident.State.CLOSED)
    for model, model_admin in site._registry.items():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert admin_client.get(url).status_code == 200, url
        if model_admin.search_fields:
            assert admin_client.get(url, {"q": "vpn"}).status_code == 200, url
        first = model.objects.first()
        if first is not None:
            change = reverse(
                f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[first.pk]
            )
            assert admin_client.get(change).status_code == 200, change


def test_a_closed_incident_is_read_only_in_the_admin(admin_client):
    incident = incident_in(Incident.State.CLOSED)
    url = reverse("admin:incidents_incident_change", args=[incident.pk])
    response = admin_client.post(url, {"title": "changed in admin"})
    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.title != "changed in admin"
