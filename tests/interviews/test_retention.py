"""Retention per organisation (a domain of the desk): the period set at consent, and the sweep."""

from __future__ import annotations

from datetime import date

import pytest
import time_machine

from interviews import services, tasks
from interviews.models import Candidate, InterviewSettings, RetentionPolicy
from tests.conftest import client_for
from tests.factories import domain
from tests.interviews.helpers import interviewer

pytestmark = pytest.mark.django_db
RECORDED = "2026-01-10 09:00:00+00:00"


def candidate_of(organisation_slug: str | None, name: str = "Casey") -> Candidate:
    with time_machine.travel(RECORDED, tick=False):
        return services.create_candidate(
            name=name,
            consent=True,
            consent_text="ok",
            organisation=domain(organisation_slug) if organisation_slug else None,
        )


def test_a_candidate_is_kept_for_their_organisations_period_or_the_desk_wide_one():
    RetentionPolicy.objects.create(organisation=domain("medical"), retention_days=90)
    InterviewSettings.objects.update_or_create(pk=1, defaults={"retention_days": 200})

    assert candidate_of("medical").retain_until == date(2026, 4, 10)
    assert candidate_of("it_service").retain_until == date(2026, 7, 29)  # no policy: the desk-wide 200 days
    assert candidate_of(None).retain_until == date(2026, 7, 29)


def test_the_sweep_erases_each_organisations_candidates_after_its_own_period():
    RetentionPolicy.objects.create(organisation=domain("medical"), retention_days=90)
    RetentionPolicy.objects.create(organisation=domain("security"), retention_days=30)
    medical, security, it = candidate_of("medical"), candidate_of("security"), candidate_of("it_service")

    with time_machine.travel("2026-03-01"):
        assert tasks.erase_expired_candidates() == 1  # security only: 30 days
        assert services.erase_expired_candidates() == 0
    with time_machine.travel("2026-05-01"):
        assert services.erase_expired_candidates() == 1  # medical: 90 days
    erased = {c.pk for c in Candidate.objects.filter(erased_at__isnull=False)}
    assert erased == {security.pk, medical.pk}
    assert it.pk not in erased  # the desk-wide 365 days


def test_a_shortened_period_applies_to_candidates_already_recorded():
    policy = RetentionPolicy.objects.create(organisation=domain("medical"), retention_days=90)
    candidate = candidate_of("medical")

    policy.retention_days = 20
    policy.save()

    assert services.erase_expired_candidates(today=date(2026, 1, 29)) == 0  # 19 days
    assert services.erase_expired_candidates(today=date(2026, 2, 5)) == 1  # 26 days > 20
    assert Candidate.objects.get(pk=candidate.pk).erased_at is not None


def test_a_longer_period_does_not_extend_what_a_candidate_consented_to():
    policy = RetentionPolicy.objects.create(organisation=domain("medical"), retention_days=90)
    candidate = candidate_of("medical")

    policy.retention_days = 400
    policy.save()

    assert services.erase_expired_candidates(today=date(2026, 4, 10)) == 0  # the 90th day
    assert services.erase_expired_candidates(today=date(2026, 4, 11)) == 1
    assert Candidate.objects.get(pk=candidate.pk).erased_at is not None
    assert candidate_of("medical", "Later").retain_until == date(2027, 2, 14)  # new candidates: 400 days


def test_the_api_records_the_organisation_and_refuses_an_unknown_one():
    RetentionPolicy.objects.create(organisation=domain("medical"), retention_days=90)
    api = client_for(interviewer())
    created = api.post(
        "/api/v1/interviews/candidates/",
        {"name": "Nia Nurse", "consent": True, "consent_text": "ok", "organisation": "medical"},
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["organisation"] == "medical"
    assert body["retain_until"] == str(Candidate.objects.get(pk=body["id"]).retain_until)
    refused = api.post(
        "/api/v1/interviews/candidates/", {"name": "X", "organisation": "nowhere"}, format="json"
    )
    assert refused.status_code == 400
    assert "organisation" in refused.json()
