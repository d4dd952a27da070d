"""The events endpoint (SPEC section 8): trigger, acknowledge, resolve, and every refusal."""

from __future__ import annotations

import json

import pytest
from django.test import Client, override_settings

from escalation.models import Notification
from incidents import lifecycle
from incidents.models import Incident, TimelineEntry
from intake.models import AlertGroup
from tests.factories import agent, responder_of

from .conftest import make_integration

pytestmark = pytest.mark.django_db
URL = "/api/v1/events/"


def event(api, key, action="trigger", dedup_key="disk-full-db1", **payload):
    body = {"routing_key": key, "event_action": action}
    if dedup_key is not None:
        body["dedup_key"] = dedup_key
    if action == "trigger" or payload:
        body["payload"] = {"summary": "Disk full on db1", "source": "db1", "severity": "critical", **payload}
    return api.post(URL, body, format="json")


def test_trigger_opens_a_received_incident_and_answers_202(api):
    _, key = make_integration()

    response = event(api, key)

    assert response.status_code == 202
    body = response.json()
    incident = Incident.objects.get()
    assert body == {"status": "success", "dedup_key": "disk-full-db1", "incident": incident.reference}
    assert incident.state == Incident.State.RECEIVED
    assert incident.channel == Incident.Channel.MONITORING
    assert incident.title == "Disk full on db1"
    assert incident.reporter.username == "integration-mon-1"
    assert (incident.impact, incident.urgency, incident.priority) == (1, 1, 1)


def test_trigger_with_a_complete_mapping_opens_classified(api):
    integration, key = make_integration(classified=True)

    event(api, key, severity="warning")

    incident = Incident.objects.get()
    assert incident.state == Incident.State.CLASSIFIED
    assert incident.team == integration.team
    assert (incident.impact, incident.urgency, incident.priority) == (2, 2, 3)


def test_repeated_trigger_adds_alerts_to_the_open_incident_without_new_notifications(api):
    _, key = make_integration(classified=True)
    event(api, key)
    notifications = Notification.objects.count()

    for n in range(4):
        assert event(api, key, summary=f"Disk full on db1 ({n})").status_code == 202

    incident = Incident.objects.get()
    group = AlertGroup.objects.get()
    assert group.alert_count == 5
    assert group.last_payload["summary"] == "Disk full on db1 (3)"
    alerts = TimelineEntry.objects.filter(incident=incident, kind="alert")
    assert [a.data["count"] for a in alerts] == [1, 2, 3, 4, 5]
    assert not any(a.public for a in alerts)
    # A hit records its entry in its counting statement: the same entry as the first one's (timeline.record_alert).
    first = alerts[0]
    assert all(
        (a.action, a.actor_id, a.data.keys()) == (first.action, None, first.data.keys()) for a in alerts
    )
    assert alerts[4].data["payload"]["summary"] == "Disk full on db1 (3)"
    assert Notification.objects.count() == notifications


def test_trigger_without_dedup_key_groups_by_source_and_summary(api):
    _, key = make_integration()

    first = event(api, key, dedup_key=None).json()
    second = event(api, key, dedup_key=None).json()
    other = event(api, key, dedup_key=None, summary="CPU hot").json()

    assert first["dedup_key"].startswith("auto-")
    assert first == second
    assert other["incident"] != first["incident"]


def test_derived_key_groups_only_within_the_window(api, time_machine):
    _, key = make_integration(grouping_window_minutes=10)
    time_machine.move_to("2026-03-02 09:00:00Z")
    first = event(api, key, dedup_key=None).json()
    time_machine.move_to("2026-03-02 09:09:00Z")
    assert event(api, key, dedup_key=None).json()["incident"] == first["incident"]

    time_machine.move_to("2026-03-02 09:20:00Z")
    late = event(api, key, dedup_key=None).json()

    assert late["incident"] != first["incident"]
    assert AlertGroup.objects.filter(open=True).count() == 1


def test_trigger_after_the_incident_is_resolved_opens_a_new_one(api):
    _, key = make_integration(classified=True)
    first = Incident.objects.get(pk=Incident.pk_from_reference(event(api, key).json()["incident"]))
    actor = responder_of(first)
    first = lifecycle.acknowledge_incident(first, actor=actor)
    lifecycle.resolve_incident(first, actor=actor, summary="Freed space")

    again = event(api, key).json()

    assert again["incident"] != first.reference
    assert Incident.objects.count() == 2
    assert AlertGroup.objects.filter(open=True).get().incident.reference == again["incident"]


def test_acknowledge_acts_through_the_lifecycle(api):
    _, key = make_integration(classified=True)
    ref = event(api, key).json()["incident"]

    response = event(api, key, action="acknowledge")

    assert response.status_code == 202
    incident = Incident.objects.get()
    assert incident.state == Incident.State.RESPONDING
    assert incident.responded_at is not None
    change = TimelineEntry.objects.get(incident=incident, kind="state_changed", action="acknowledge")
    assert change.actor is None
    assert TimelineEntry.objects.filter(incident=incident, kind="alert", action="acknowledge").exists()
    assert response.json()["incident"] == ref
    assert event(api, key, action="acknowledge").status_code == 202  # twice: nothing more
    assert (
        TimelineEntry.objects.filter(incident=incident, kind="state_changed", action="acknowledge").count()
        == 1
    )


def test_resolve_uses_the_summary_as_resolution_and_closes_the_group(api):
    _, key = make_integration(classified=True)
    event(api, key)

    response = event(api, key, action="resolve", summary="Disk usage back to 40 %")

    assert response.status_code == 202
    incident = Incident.objects.get()
    assert incident.state == Incident.State.RESOLVED
    assert incident.resolution_summary == "Disk usage back to 40 %"
    actions = list(
        TimelineEntry.objects.filter(incident=incident, kind="state_changed").values_list("action", flat=True)
    )
    assert actions == ["classify", "acknowledge", "resolve"]
    assert not AlertGroup.objects.filter(open=True).exists()
    again = event(api, key, action="resolve")
    assert again.status_code == 202
    assert again.json()["incident"] is None


def test_resolve_resumes_a_held_incident_first(api):
    _, key = make_integration(classified=True)
    incident = Incident.objects.get(pk=Incident.pk_from_reference(event(api, key).json()["incident"]))
    actor = agent(incident.team)
    lifecycle.acknowledge_incident(incident, actor=actor)
    lifecycle.hold_incident(incident, actor=actor, reason="awaiting_vendor")

    assert event(api, key, action="resolve").status_code == 202

    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED
    assert incident.resolution_summary.startswith(f"Cleared by {incident.reporter.integration.name} at ")
    assert incident.sla_response != "cleared"  # a person had responded


def test_acknowledging_an_unclassified_incident_is_accepted_and_held(api):
    """PagerDuty never refuses an acknowledge: it is kept until a person classifies the incident."""
    _, key = make_integration()
    event(api, key)

    response = event(api, key, action="acknowledge")

    assert response.status_code == 202
    assert "held" in response.json()["message"]
    assert Incident.objects.get().state == Incident.State.RECEIVED
    assert AlertGroup.objects.get().held_action == "acknowledge"


def test_acknowledge_of_an_unknown_key_is_accepted_and_names_no_incident(api):
    _, key = make_integration()

    response = event(api, key, action="acknowledge", dedup_key="never-seen")

    assert response.status_code == 202
    assert response.json()["incident"] is None
    assert "nothing to acknowledge" in response.json()["message"]


def test_wrong_or_inactive_routing_key_is_404_alike(api):
    _, key = make_integration()
    _, inactive = make_integration(active=False)

    wrong = event(api, key + "x")
    off = event(api, inactive)

    assert wrong.status_code == off.status_code == 404
    assert (
        wrong.json() == off.json() == {"detail": "No integration has this routing key.", "code": "not_found"}
    )
    assert not Incident.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"event_action": "trigger", "payload": {"summary": "x", "source": "y", "severity": "info"}},
            "routing_key",
        ),
        ({"routing_key": "k", "event_action": "explode"}, "event_action"),
        ({"routing_key": "k", "event_action": "trigger"}, "payload"),
        ({"routing_key": "k", "event_action": "resolve"}, "dedup_key"),
        (
            {
                "routing_key": "k",
                "event_action": "trigger",
                "payload": {"summary": "x", "source": "y", "severity": "fatal"},
            },
            "payload",
        ),
        (
            {"routing_key": "k", "event_action": "trigger", "payload": {"source": "y", "severity": "info"}},
            "payload",
        ),
        (
            {
                "routing_key": "k",
                "event_action": "trigger",
                "dedup_key": "d" * 300,
                "payload": {"summary": "x", "source": "y", "severity": "info"},
            },
            "dedup_key",
        ),
        ({"routing_key": ["k"], "event_action": "trigger"}, "routing_key"),
    ],
)
def test_malformed_body_is_400_naming_the_field(api, body, field):
    make_integration()

    response = api.post(URL, body, format="json")

    assert response.status_code == 400
    assert field in response.json()


def test_payload_errors_name_the_inner_field(api):
    _, key = make_integration()

    response = api.post(
        URL,
        {
            "routing_key": key,
            "event_action": "trigger",
            "payload": {"summary": "x", "source": "y", "severity": "fatal"},
        },
        format="json",
    )

    assert response.json()["payload"]["severity"]


@pytest.mark.parametrize("raw", [b"[1, 2]", b"not json", b'"text"', b"null"])
def test_a_body_that_is_not_a_json_object_is_400(api, raw):
    response = api.generic("POST", URL, raw, content_type="application/json")

    assert response.status_code == 400


@override_settings(INTAKE_EVENT_MAX_BYTES=2048)
def test_a_body_over_the_size_limit_is_413(api):
    _, key = make_integration()

    response = event(api, key, custom_details={"log": "x" * 4096})

    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert not Incident.objects.exists()


def test_rate_limit_per_integration_gives_429_with_retry_after(api):
    _, key = make_integration(rate_limit_per_minute=3)
    _, other = make_integration()

    codes = [event(api, key).status_code for _ in range(4)]

    assert codes == [202, 202, 202, 429]
    throttled = event(api, key)
    assert throttled.json()["code"] == "throttled"
    assert 0 < int(throttled["Retry-After"]) <= 60
    assert event(api, other).status_code == 202


def test_custom_details_are_kept_in_the_timeline_and_description(api):
    _, key = make_integration()

    event(api, key, custom_details={"free": "2%", "mount": "/var"})

    incident = Incident.objects.get()
    alert = TimelineEntry.objects.get(incident=incident, kind="alert")
    assert alert.data["payload"]["custom_details"] == {"free": "2%", "mount": "/var"}
    assert '"mount": "/var"' in incident.description


def test_the_events_endpoint_needs_no_csrf_or_session():
    _, key = make_integration()
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        URL,
        json.dumps(
            {
                "routing_key": key,
                "event_action": "trigger",
                "payload": {"summary": "s", "source": "x", "severity": "info"},
            }
        ),
        content_type="application/json",
    )

    assert response.status_code == 202


def test_a_dedup_hit_costs_a_fixed_number_of_queries(api, django_assert_num_queries):
    _, key = make_integration(classified=True)
    event(api, key)
    event(api, key)

    # integration; one statement: UPDATE ... alert_count + 1 (no lock round trip) and the alert entry's INSERT,
    # atomic by itself (no transaction). SQLite, without jsonb: integration; savepoint, lock the group, save it,
    # the alert entry, release.
    from django.db import connection

    with django_assert_num_queries(2 if connection.vendor == "postgresql" else 6):
        assert event(api, key).status_code == 202


def test_a_redelivered_firing_costs_one_statement_more_and_is_not_counted(api, django_assert_num_queries):
    _, key = make_integration(classified=True)
    event(api, key, timestamp="2026-12-01T10:00:00Z")
    event(api, key, timestamp="2026-12-01T11:00:00Z")

    # integration; the counting statement (matches nothing: seen), the seen UPDATE (SQLite: integration;
    # savepoint, lock the group, save it, release)
    from django.db import connection

    with django_assert_num_queries(3 if connection.vendor == "postgresql" else 5):
        assert event(api, key, timestamp="2026-12-01T10:00:00Z").status_code == 202

    group = AlertGroup.objects.get()
    assert group.alert_count == 2
    assert group.firings == ["2026-12-01T10:00:00+00:00", "2026-12-01T11:00:00+00:00"]
    assert TimelineEntry.objects.filter(kind="alert").count() == 2


def test_a_new_incident_from_an_event_costs_a_fixed_number_of_queries(api, django_assert_max_num_queries):
    _, key = make_integration(classified=True)
    event(api, key, dedup_key="warm-up")

    # integration (with the configuration stamp); savepoint; the hit UPDATE (nothing; SQLite: the group's
    # lock); the incident, opened classified; the group; every entry in one INSERT; release. No SLA policy or
    # escalation policy applies here, and the configuration that says so is not read again (escalation.
    # configcache); with them, tests/intake/test_open_classified.py.
    with django_assert_max_num_queries(7):
        assert event(api, key, dedup_key="new-one").status_code == 202
    assert Incident.objects.get(alert_groups__dedup_key="new-one").state == Incident.State.CLASSIFIED


def test_the_console_shows_alert_entries_to_responders(api, client):
    _, key = make_integration(classified=True)
    event(api, key)
    event(api, key, summary="Disk full on db1, again")
    incident = Incident.objects.get()
    client.force_login(agent(incident.team))

    page = client.get(f"/desk/incidents/{incident.reference}/").content.decode()

    assert "Monitoring trigger from Mon-1 (#2): " in page  # the timeline in words (incidents.templatetags)
    assert "Disk full on db1, again" in page


def test_resolve_may_carry_just_a_summary(api):
    _, key = make_integration(classified=True)
    event(api, key)

    response = api.post(
        URL,
        {
            "routing_key": key,
            "event_action": "resolve",
            "dedup_key": "disk-full-db1",
            "payload": {"summary": "Freed"},
        },
        format="json",
    )

    assert response.status_code == 202
    assert Incident.objects.get().resolution_summary == "Freed"


def test_a_service_account_never_takes_over_an_existing_user(api):
    from tests.factories import UserFactory

    person = UserFactory(username="integration-mon-1")

    integration, _ = make_integration()

    assert integration.user != person
    assert integration.user.username.startswith("integration-mon-1-")
    person.refresh_from_db()
    assert person.has_usable_password()


@pytest.mark.parametrize(
    ("payload", "field"),
    [({"custom_details": {"log": "a\x00b"}}, "custom_details"), ({"summary": "a\x00b"}, "summary")],
)
def test_nul_characters_are_a_400_not_a_database_error(api, payload, field):
    _, key = make_integration()

    response = event(api, key, **payload)

    assert response.status_code == 400
    assert field in response.json()["payload"]
