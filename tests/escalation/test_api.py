from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from rest_framework.test import APIClient

from escalation.engine import sweep
from escalation.models import BusinessCalendar, EscalationPolicy, Schedule, SlaPolicy, WebhookEndpoint
from tests.conftest import client_for
from tests.factories import TeamFactory, UserFactory, agent, classified

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_api() -> APIClient:
    return client_for(UserFactory(is_staff=True, is_superuser=True))


GOOD_CALENDAR = {
    "slug": "berlin", "name": "Berlin", "time_zone": "Europe/Berlin", "holiday_country": "DE",
    "weekly_hours": {"mon": [["09:00", "17:00"]], "1": [[540, 1020]]},
}  # fmt: skip


def test_a_valid_calendar_is_normalised(admin_api):
    response = admin_api.post("/api/v1/calendars/", GOOD_CALENDAR, format="json")
    assert response.status_code == 201, response.json()
    assert BusinessCalendar.objects.get().weekly_hours == {"0": [[540, 1020]], "1": [[540, 1020]]}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"weekly_hours": {"0": [["09:00", "13:00"], ["12:00", "17:00"]]}}, "weekly_hours"),
        ({"weekly_hours": {"0": [["17:00", "09:00"]]}}, "weekly_hours"),
        ({"weekly_hours": {"9": [["09:00", "17:00"]]}}, "weekly_hours"),
        ({"weekly_hours": "always"}, "weekly_hours"),
        ({"holiday_country": "ZZ"}, "holiday_country"),
        ({"extra_holidays": ["2026-13-45"]}, "extra_holidays"),
    ],
)
def test_invalid_calendars_are_refused_naming_the_field(admin_api, change, field):
    response = admin_api.post("/api/v1/calendars/", {**GOOD_CALENDAR, **change}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not BusinessCalendar.objects.exists()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"response_minutes": 0}, "response_minutes"),
        ({"resolution_minutes": -5}, "resolution_minutes"),
        ({"warning_percent": 100}, "warning_percent"),
        ({"priority": 9}, "priority"),
        ({"calendar": "nowhere"}, "calendar"),
        ({"targets": [{"slug": "dpa", "name": "DPA", "minutes": 0}]}, "targets"),
    ],
)
def test_invalid_sla_policies_are_refused_and_nothing_is_half_saved(admin_api, change, field):
    body = {"name": "P1", "priority": 1, "response_minutes": 15, "resolution_minutes": 240, **change}
    response = admin_api.post("/api/v1/sla-policies/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not SlaPolicy.objects.exists()


def test_escalation_policy_with_steps_and_bad_steps(admin_api):
    team = TeamFactory(slug="desk")
    good = {
        "slug": "p1-ladder", "name": "P1 ladder", "team": "desk",
        "steps": [
            {"trigger": "unacknowledged", "delay_minutes": 5, "notify_team": "desk"},
            {"trigger": "sla_share", "sla_kind": "response", "share_percent": 100, "notify_manager": True},
        ],
    }  # fmt: skip
    response = admin_api.post("/api/v1/escalation-policies/", good, format="json")
    assert response.status_code == 201, response.json()
    assert EscalationPolicy.objects.get().steps.count() == 2
    for steps in (
        [{"trigger": "unacknowledged", "notify_team": "desk"}],  # no delay
        [{"trigger": "sla_share", "share_percent": 50}],  # no action
        [{"trigger": "unacknowledged", "delay_minutes": 5, "notify_team": "deleted-team"}],
        [],
    ):
        response = admin_api.post(
            "/api/v1/escalation-policies/", {**good, "slug": "bad", "steps": steps}, format="json"
        )
        assert response.status_code == 400, steps
        assert "steps" in response.json()
    assert EscalationPolicy.objects.count() == 1
    # a team that a policy step points to cannot be deleted from under it
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        team.delete()


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.org/x",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://0.0.0.0/hook",
    ],
)
def test_webhook_urls_to_other_schemes_or_metadata_addresses_are_refused(admin_api, url):
    response = admin_api.post("/api/v1/webhooks/", {"slug": "x", "name": "X", "url": url}, format="json")
    assert response.status_code == 400
    assert "url" in response.json()
    assert not WebhookEndpoint.objects.exists()


def test_webhook_secret_is_shown_once(admin_api):
    response = admin_api.post(
        "/api/v1/webhooks/", {"slug": "ops", "name": "Ops", "url": "http://127.0.0.1:9/hook"}
    )
    assert response.status_code == 201
    assert len(response.json()["secret"]) >= 40
    assert admin_api.get("/api/v1/webhooks/ops/").json()["secret"] is None


def test_configuration_is_read_by_responders_and_changed_by_admins_only():
    responder = client_for(agent())
    assert responder.get("/api/v1/sla-policies/").status_code == 200
    assert responder.post("/api/v1/sla-policies/", {"name": "x"}).status_code == 403
    assert client_for(UserFactory()).get("/api/v1/sla-policies/").status_code == 403
    assert responder.get("/api/v1/webhooks/").status_code == 403  # secrets and URLs: admins only


def test_oncall_now_and_next(admin_api):
    team = TeamFactory(slug="ops")
    UserFactory(username="alice"), UserFactory(username="bob")
    start = dt.datetime(2026, 6, 1, 7, 0, tzinfo=dt.UTC)  # 09:00 in Berlin
    body = {
        "slug": "ops-primary", "name": "Ops primary", "team": "ops", "time_zone": "Europe/Berlin",
        "start": start.isoformat(), "shift_length": "1 00:00:00", "members": ["alice", "bob"],
        "overrides": [{"user": "bob", "start": "2026-06-03T10:00:00Z", "end": "2026-06-03T19:00:00Z", "reason": "swap"}],
    }  # fmt: skip
    assert admin_api.post("/api/v1/schedules/", body, format="json").status_code == 201
    client = client_for(agent(team))
    with time_machine.travel(dt.datetime(2026, 6, 2, 12, 0, tzinfo=dt.UTC), tick=False):
        (entry,) = client.get("/api/v1/teams/ops/oncall/").json()
    assert entry["schedule"] == "ops-primary"
    assert entry["now"]["user"] == "bob"  # second day of the rotation
    assert entry["next"] == {
        "user": "alice",
        "start": "2026-06-03T07:00:00Z",
        "end": "2026-06-03T10:00:00Z",
        "override": False,
    }
    with time_machine.travel(dt.datetime(2026, 6, 3, 12, 0, tzinfo=dt.UTC), tick=False):
        (entry,) = client.get("/api/v1/teams/ops/oncall/").json()
    assert entry["now"] == {
        "user": "bob",
        "start": "2026-06-03T10:00:00Z",
        "end": "2026-06-03T19:00:00Z",
        "override": True,
    }
    assert entry["next"]["user"] == "alice"  # back to the rotation until Thursday 09:00 Berlin
    assert client.get("/api/v1/teams/nope/oncall/").status_code == 404
    assert Schedule.objects.get().members.count() == 2


def test_bad_schedules_are_refused(admin_api):
    TeamFactory(slug="ops")
    UserFactory(username="alice")
    base = {"slug": "s", "name": "S", "team": "ops", "time_zone": "Europe/Berlin", "start": "2026-06-01T07:00:00Z",
            "shift_length": "08:00:00", "members": ["alice"]}  # fmt: skip
    for change, field in [
        ({"time_zone": "Nowhere/City"}, "time_zone"),
        ({"shift_length": "00:00:00"}, "shift_length"),
        ({"members": []}, "members"),
        ({"members": ["ghost"]}, "members"),
        (
            {
                "overrides": [
                    {"user": "alice", "start": "2026-06-02T00:00:00Z", "end": "2026-06-01T00:00:00Z"}
                ]
            },
            "overrides",
        ),
    ]:
        response = admin_api.post("/api/v1/schedules/", {**base, **change}, format="json")
        assert response.status_code == 400, change
        assert field in response.json(), (change, response.json())
    assert not Schedule.objects.exists()


def test_incident_representation_carries_sla_state(admin_api):
    from tests.factories import sla_policy

    sla_policy(priority=1, response=20, resolution=240)
    t0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)
    with time_machine.travel(t0, tick=False):
        incident, actor = classified()
    sweep(now=t0 + dt.timedelta(minutes=16))
    client = client_for(actor)
    body = client.get(f"/api/v1/incidents/{incident.reference}/").json()
    assert body["sla"] == {"response": "warning", "resolution": "pending"}
    assert body["response_due_at"] == "2026-06-01T08:20:00Z"
    refs = [i["reference"] for i in client.get("/api/v1/incidents/", {"sla": "warning"}).json()["results"]]
    assert refs == [incident.reference]
    sweep(now=t0 + dt.timedelta(minutes=21))
    refs = [i["reference"] for i in client.get("/api/v1/incidents/", {"sla": "breached"}).json()["results"]]
    assert refs == [incident.reference]


def test_health_reports_the_engine(client):
    response = client.get("/health/")
    assert response.status_code == 503  # the sweeper never ran
    assert response.json()["sweeper_last_run_seconds_ago"] is None
    sweep()
    response = client.get("/health/")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "ok"
