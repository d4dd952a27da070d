from __future__ import annotations

import pytest
from django.contrib.admin.sites import site
from django.core.management import call_command
from django.urls import reverse

from interviews.models import Candidate, CaseVersion
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    return client


def test_every_interview_model_has_a_working_changelist_search_and_change_page(admin_client):
    call_command("seed_interviews", verbosity=0)
    for model, model_admin in site._registry.items():
        if model._meta.app_label != "interviews":
            continue
        name = f"admin:interviews_{model._meta.model_name}"
        assert admin_client.get(reverse(f"{name}_changelist")).status_code == 200, model
        if model_admin.search_fields:
            assert admin_client.get(reverse(f"{name}_changelist"), {"q": "login"}).status_code == 200, model
        first = model.objects.first()
        assert first is not None, model
        assert admin_client.get(reverse(f"{name}_change", args=[first.pk])).status_code == 200, model


def test_a_published_case_version_is_read_only_in_the_admin(admin_client):
    call_command("seed_interviews", verbosity=0)
    version = CaseVersion.objects.filter(status="published").first()
    response = admin_client.post(
        reverse("admin:interviews_caseversion_change", args=[version.pk]), {"title": "x"}
    )
    assert response.status_code == 403
    version.refresh_from_db()
    assert version.title != "x"


def test_the_erase_action_keeps_the_candidate_row_and_erases_their_data(admin_client):
    call_command("seed_interviews", verbosity=0)
    candidate = Candidate.objects.get(email="sam.sample@example.org")
    response = admin_client.post(
        reverse("admin:interviews_candidate_changelist"),
        {"action": "erase", "_selected_action": [candidate.pk]},
    )
    assert response.status_code == 302
    candidate.refresh_from_db()
    assert candidate.erased_at is not None
    assert candidate.email == ""
