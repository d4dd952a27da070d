"""The two 500s of issue 11's schemathesis run, as plain regression tests."""

from __future__ import annotations

import pytest

from tests.conftest import client_for
from tests.factories import UserFactory, agent

pytestmark = pytest.mark.django_db


def test_a_non_numeric_interview_session_id_is_a_404():
    admin = UserFactory(is_superuser=True, is_staff=True)
    client = client_for(admin)
    for path in ("sessions/abc/", "sessions/abc/questions/", "sessions/abc/report/", "candidates/abc/"):
        assert client.get(f"/api/v1/interviews/{path}").status_code == 404, path


@pytest.mark.postgres
def test_created_after_with_an_offset_beyond_15_hours_is_a_400_naming_the_field():
    client = client_for(agent())
    response = client.get("/api/v1/incidents/", {"created_after": "2026-01-01T00:00:00+16:00"})
    assert response.status_code == 400
    assert "created_after" in response.json()
