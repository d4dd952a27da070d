"""The Alertmanager adapter: fingerprint as dedup_key, firing triggers, resolved resolves."""

from __future__ import annotations

import pytest

from incidents.models import Incident
from intake.models import AlertGroup

from .conftest import make_integration

pytestmark = pytest.mark.django_db


def webhook(*alerts, status="firing"):
    return {
        "version": "4",
        "groupKey": '{}:{alertname="DiskFull"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "incidentdesk",
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.org:9093",
        "alerts": list(alerts),
    }


def alert(fingerprint="a1b2c3d4e5f60718", status="firing", severity="critical", instance="db1:9100"):
    return {
        "status": status,
        "labels": {"alertname": "DiskFull", "instance": instance, "severity": severity},
        "annotations": {"summary": f"Disk almost full on {instance}"},
        "startsAt": "2026-03-02T09:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.org/graph?g0.expr=...",
        "fingerprint": fingerprint,
    }


def post(api, key, body):
    return api.post(f"/api/v1/events/alertmanager/?routing_key={key}", body, format="json")


def test_firing_alerts_open_one_incident_per_fingerprint(api):
    _, key = make_integration(classified=True)

    response = post(api, key, webhook(alert("f1"), alert("f2", instance="db2:9100", severity="warning")))

    assert response.status_code == 202
    results = response.json()["results"]
    assert [r["event_action"] for r in results] == ["trigger", "trigger"]
    first, second = (Incident.objects.get(pk=Incident.pk_from_reference(r["incident"])) for r in results)
    assert first.title == "Disk almost full on db1:9100"
    assert (first.priority, second.priority) == (1, 3)
    assert set(AlertGroup.objects.values_list("dedup_key", flat=True)) == {"f1", "f2"}


def test_repeated_notifications_add_alerts_and_resolved_resolves(api):
    _, key = make_integration(classified=True)
    post(api, key, webhook(alert()))
    post(api, key, webhook(alert()))

    response = post(api, key, webhook(alert(status="resolved"), status="resolved"))

    assert response.json()["results"][0]["event_action"] == "resolve"
    incident = Incident.objects.get()
    assert incident.state == Incident.State.RESOLVED
    assert incident.resolution_summary.startswith("Cleared by Mon-1 at ")  # not the alert's summary
    assert AlertGroup.objects.get().alert_count == 1  # one firing, notified twice


def test_a_resolve_of_a_received_incident_is_held_per_alert_and_the_rest_go_on(api):
    _, key = make_integration()  # incomplete mapping: incidents stay received
    post(api, key, webhook(alert("f1")))

    response = post(api, key, webhook(alert("f1", status="resolved"), alert("f2"), status="firing"))

    assert response.status_code == 202
    held, opened = response.json()["results"]
    assert held["incident"] is not None
    assert "held" in held["message"]
    assert opened["incident"] is not None
    assert AlertGroup.objects.get(dedup_key="f1").held_action == "resolve"


def test_unknown_severity_maps_to_error(api):
    _, key = make_integration()

    post(api, key, webhook(alert(severity="disaster")))

    assert (Incident.objects.get().impact, Incident.objects.get().urgency) == (2, 1)


def test_missing_routing_key_is_400_and_wrong_key_404(api):
    make_integration()

    missing = api.post("/api/v1/events/alertmanager/", webhook(alert()), format="json")
    wrong = post(api, "nope", webhook(alert()))

    assert missing.status_code == 400
    assert "routing_key" in missing.json()
    assert wrong.status_code == 404


@pytest.mark.parametrize(
    ("alerts", "field"),
    [([], "alerts"), ([{"status": "firing"}], "alerts"), ([{**alert(), "status": "pending"}], "alerts")],
)
def test_malformed_alertmanager_body_is_400_naming_the_field(api, alerts, field):
    _, key = make_integration()

    response = post(api, key, webhook(*alerts))

    assert response.status_code == 400
    assert field in response.json()
    assert not Incident.objects.exists()
