"""What real monitoring clients send and expect (issue 16): resolution text, automatic resolves that are
not a human response, ack and resolve of received incidents, the routing key outside the query string,
URLs with and without the slash, PagerDuty's /v2/enqueue, the event's extra fields, and firings counted
once however often they are delivered."""

from __future__ import annotations

import csv
import logging

import pytest
import time_machine

from incidents import lifecycle
from incidents.models import Incident, TimelineEntry
from intake.logs import RedactRoutingKeys, redact
from intake.models import AlertGroup
from reporting import figures
from tests.factories import agent, sla_policy

from .conftest import make_integration
from .test_alertmanager import alert, webhook

pytestmark = pytest.mark.django_db


def send(api, key, action="trigger", dedup_key="disk-full-db1", url="/api/v1/events/", **payload):
    body = {"routing_key": key, "event_action": action, "dedup_key": dedup_key}
    if action == "trigger" or payload:
        body["payload"] = {"summary": "Disk full on db1", "source": "db1", "severity": "critical", **payload}
    return api.post(url, body, format="json")


def the_incident() -> Incident:
    return Incident.objects.get()


# --- resolution text -----------------------------------------------------------------------------------


def test_an_alertmanager_resolve_says_cleared_by_the_integration_at_its_end_time(api):
    _integration, key = make_integration(classified=True, name="Prometheus")
    api.post(f"/api/v1/events/alertmanager/?routing_key={key}", webhook(alert()), format="json")

    resolved = {**alert(status="resolved"), "endsAt": "2026-03-02T09:42:00Z"}
    api.post(
        f"/api/v1/events/alertmanager/?routing_key={key}", webhook(resolved, status="resolved"), format="json"
    )

    incident = the_incident()
    assert incident.state == Incident.State.RESOLVED
    assert incident.resolution_summary == "Cleared by Prometheus at 2026-03-02 09:42 UTC"
    assert "Disk almost full" not in incident.resolution_summary


def test_an_alertmanager_resolution_annotation_is_the_resolution_text(api):
    _, key = make_integration(classified=True)
    api.post(f"/api/v1/events/alertmanager/?routing_key={key}", webhook(alert()), format="json")

    resolved = alert(status="resolved")
    resolved["annotations"]["resolution"] = "Log rotation freed 30 GB"
    api.post(
        f"/api/v1/events/alertmanager/?routing_key={key}", webhook(resolved, status="resolved"), format="json"
    )

    assert the_incident().resolution_summary == "Log rotation freed 30 GB"


def test_a_resolve_event_without_its_own_text_is_cleared_by_the_integration_now(api):
    _, key = make_integration(classified=True, name="Zabbix")
    send(api, key)

    with time_machine.travel("2026-03-02T10:15:00Z", tick=False):
        send(api, key, action="resolve", dedup_key="disk-full-db1")

    assert the_incident().resolution_summary == "Cleared by Zabbix at 2026-03-02 10:15 UTC"


# --- an automatic resolve is not a human response --------------------------------------------------------


def test_an_automatic_resolve_clears_the_response_clock_and_stays_out_of_mtta(api):
    _, key = make_integration(classified=True)
    sla_policy()
    send(api, key)

    send(api, key, action="resolve")

    incident = the_incident()
    assert incident.state == Incident.State.RESOLVED
    assert incident.sla_response == "cleared"
    assert incident.assignee is None
    headline = figures.headline(Incident.objects.all())
    assert headline["mtta"]["count"] == 0
    assert headline["sla"]["response"]["met"] == 0
    assert headline["sla"]["response_cleared"] == 1


def test_an_automatic_resolve_records_no_response_anywhere(api, client):
    """The response clock ends as cleared without `responded_at`: in the row, the API, the export, the
    console and the timeline; the machine's acknowledge on the way is marked as no response."""
    from tests.factories import UserFactory

    _, key = make_integration(classified=True)
    sla_policy()
    send(api, key)

    send(api, key, action="resolve")

    incident = the_incident()
    assert incident.responded_at is None
    assert incident.sla_response == "cleared"
    ack = TimelineEntry.objects.get(incident=incident, kind="state_changed", action="acknowledge")
    assert ack.data["response"] is False
    admin = UserFactory(is_staff=True, is_superuser=True)
    api.force_authenticate(admin)
    body = api.get(f"/api/v1/incidents/{incident.reference}/").json()
    assert body["responded_at"] is None
    assert body["sla"]["response"] == "cleared"
    client.force_login(admin)
    export = client.get("/desk/export.csv?state=resolved")
    header, row = csv.reader(b"".join(export.streaming_content).decode().splitlines())
    exported = dict(zip(header, row, strict=True))
    assert exported["responded_at"] == ""
    assert exported["sla_response"] == "cleared"
    page = client.get(f"/desk/incidents/{incident.reference}/").content.decode()
    assert "none: the condition cleared before a response" in page
    queue = client.get("/desk/?state=resolved").content.decode()
    assert "Resolution met" in queue  # the resolution clock, as before: a cleared response races nothing


def test_a_reopened_cleared_incident_starts_no_new_response_clock(api):
    from escalation.models import SlaClock

    _, key = make_integration(classified=True)
    sla_policy()
    send(api, key)
    send(api, key, action="resolve")
    incident = the_incident()

    lifecycle.reopen_incident(incident, actor=agent(incident.team), reason="Disk filled up again")

    incident.refresh_from_db()
    assert incident.responded_at is None
    assert incident.sla_response == "cleared"
    assert SlaClock.objects.filter(incident=incident, kind="response").count() == 1
    assert figures.headline(Incident.objects.all())["mtta"]["count"] == 0


def test_sla_recompute_keeps_a_cleared_response_cleared(api):
    from escalation.recompute import recompute

    _, key = make_integration(classified=True)
    sla_policy()
    send(api, key)
    send(api, key, action="resolve")

    recompute(the_incident())

    incident = the_incident()
    assert incident.sla_response == "cleared"
    assert incident.sla_resolution == "met"
    assert incident.responded_at is None


def test_the_migration_unsets_the_machine_acknowledge_kept_as_a_response_before(api):
    import importlib

    from django.apps import apps

    migration = importlib.import_module("incidents.migrations.0019_cleared_not_responded_i16")
    _, key = make_integration(classified=True)
    sla_policy()
    send(api, key)
    send(api, key, action="resolve")
    cleared = the_incident()
    ack = TimelineEntry.objects.get(incident=cleared, kind="state_changed", action="acknowledge")
    Incident.objects.filter(pk=cleared.pk).update(responded_at=ack.at)  # as the code before wrote it
    send(api, key, dedup_key="cpu-db2")
    human = Incident.objects.exclude(pk=cleared.pk).get()
    lifecycle.acknowledge_incident(human, actor=agent(human.team))
    send(api, key, action="resolve", dedup_key="cpu-db2")

    migration.forwards(apps, None)

    assert Incident.objects.get(pk=cleared.pk).responded_at is None
    assert Incident.objects.get(pk=human.pk).responded_at is not None


def test_a_resolve_after_a_human_response_keeps_the_response(api):
    _, key = make_integration(classified=True)
    sla_policy()
    send(api, key)
    incident = the_incident()
    lifecycle.acknowledge_incident(incident, actor=agent(incident.team))

    send(api, key, action="resolve")

    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED
    assert incident.sla_response == "met"
    assert figures.headline(Incident.objects.all())["mtta"]["count"] == 1


# --- acknowledge and resolve of a received incident -----------------------------------------------------


def classify(incident: Incident) -> Incident:
    from tests.factories import CategoryFactory, TeamFactory, domain

    dom = domain("it_service")
    return lifecycle.classify_incident(
        incident, actor=None, domain=dom, category=CategoryFactory(domain=dom), impact=2, urgency=2,
        team=TeamFactory(domains=["it_service"]),
    )  # fmt: skip


def test_a_resolve_of_a_received_incident_is_held_and_applied_at_classification(
    api, django_capture_on_commit_callbacks
):
    _, key = make_integration()  # no complete mapping: the incident stays received
    send(api, key)

    response = send(api, key, action="resolve", summary="Disk usage back to 40 %")

    assert response.status_code == 202
    assert "held" in response.json()["message"]
    incident = the_incident()
    assert incident.state == Incident.State.RECEIVED
    held = TimelineEntry.objects.get(incident=incident, kind="alert", action="resolve")
    assert held.data["payload"]["held"] is True

    with django_capture_on_commit_callbacks(execute=True):
        classify(incident)

    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED
    assert incident.resolution_summary == "Disk usage back to 40 %"
    assert incident.assignee is None
    assert incident.responded_at is None  # the held resolve is no response either
    assert incident.sla_response == "cleared"
    assert not AlertGroup.objects.filter(open=True).exists()
    assert send(api, key).json()["incident"] != incident.reference  # a new firing opens a new incident


def test_an_acknowledge_of_a_received_incident_is_held_and_applied_at_classification(
    api, django_capture_on_commit_callbacks
):
    _, key = make_integration()
    send(api, key)

    response = send(api, key, action="acknowledge")

    assert response.status_code == 202
    incident = the_incident()
    assert incident.state == Incident.State.RECEIVED
    with django_capture_on_commit_callbacks(execute=True):
        classify(incident)
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESPONDING


def test_an_alertmanager_resolve_of_a_received_incident_is_held_not_lost(
    api, django_capture_on_commit_callbacks
):
    _, key = make_integration()
    api.post(f"/api/v1/events/alertmanager/?routing_key={key}", webhook(alert()), format="json")

    response = api.post(
        f"/api/v1/events/alertmanager/?routing_key={key}", webhook(alert(status="resolved")), format="json"
    )

    assert response.status_code == 202
    assert "held" in response.json()["results"][0]["message"]
    incident = the_incident()
    with django_capture_on_commit_callbacks(execute=True):
        classify(incident)
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED


# --- where the routing key travels, and the URLs ---------------------------------------------------------


def test_the_routing_key_may_travel_as_a_bearer_token_or_a_header(api):
    _, key = make_integration()
    body = {"event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "info"}}

    bearer = api.post("/api/v1/events/", body, format="json", HTTP_AUTHORIZATION=f"Bearer {key}")
    header = api.post("/api/v1/events/", body, format="json", HTTP_X_ROUTING_KEY=key)
    manager = api.post(
        "/api/v1/events/alertmanager", webhook(alert()), format="json", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    missing = api.post("/api/v1/events/", body, format="json")

    assert (bearer.status_code, header.status_code, manager.status_code) == (202, 202, 202)
    assert missing.status_code == 400
    assert "routing_key" in missing.json()
    assert (
        api.post("/api/v1/events/", body, format="json", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    )


@pytest.mark.parametrize(
    "url", ["/api/v1/events", "/api/v1/events/", "/api/v1/events/v2/enqueue", "/api/v1/events/v2/enqueue/"]
)
def test_the_events_endpoint_answers_with_and_without_the_slash_and_at_v2_enqueue(api, url):
    _, key = make_integration()

    response = send(api, key, url=url)

    assert response.status_code == 202, response.content
    assert response.json()["status"] == "success"


@pytest.mark.parametrize("url", ["/api/v1/events/alertmanager", "/api/v1/events/alertmanager/"])
def test_the_alertmanager_route_answers_with_and_without_the_slash(api, url):
    _, key = make_integration()

    assert api.post(f"{url}?routing_key={key}", webhook(alert()), format="json").status_code == 202


def test_routing_keys_are_redacted_from_log_lines():
    line = '"POST /api/v1/events/alertmanager/?routing_key=abcDEF_123-xyz&x=1 HTTP/1.1" 202 10'
    record = logging.LogRecord("django.server", logging.INFO, __file__, 1, "%s", (line,), None)

    assert RedactRoutingKeys().filter(record)

    assert "abcDEF_123-xyz" not in record.getMessage()
    assert "routing_key=[redacted]&x=1" in record.getMessage()
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer [redacted]"


# --- the event's extra fields ---------------------------------------------------------------------------


def test_links_images_client_and_payload_fields_are_kept_and_shown(api, client):
    _, key = make_integration(classified=True)
    body = {
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": "k1",
        "client": "Zabbix",
        "client_url": "https://zabbix.example.org/problems",
        "links": [{"href": "https://wiki.example.org/runbooks/disk", "text": "Runbook"}],
        "images": [{"src": "https://grafana.example.org/render/disk.png", "href": "https://grafana.example.org/d/1", "alt": "Disk graph"}],
        "payload": {
            "summary": "Disk full on db1", "source": "db1", "severity": "critical", "component": "postgres",
            "group": "prod-db", "class": "disk", "timestamp": "2026-03-02T09:00:00.000+0000",
        },
    }  # fmt: skip

    assert api.post("/api/v1/events/", body, format="json").status_code == 202

    incident = the_incident()
    data = TimelineEntry.objects.get(incident=incident, kind="alert").data
    assert data["payload"]["component"] == "postgres"
    assert data["payload"]["class"] == "disk"
    assert data["payload"]["group"] == "prod-db"
    assert data["payload"]["timestamp"] == "2026-03-02T09:00:00+00:00"
    assert data["payload"]["links"] == body["links"]
    assert data["payload"]["images"] == body["images"]
    assert (data["payload"]["client"], data["payload"]["client_url"]) == ("Zabbix", body["client_url"])
    client.force_login(agent(incident.team))
    page = client.get(f"/desk/incidents/{incident.reference}/").content.decode()
    for shown in (
        "https://wiki.example.org/runbooks/disk",
        "Runbook",
        "Disk graph",
        "Zabbix",
        "postgres",
        "prod-db",
    ):
        assert shown in page, shown
    detail = client.get(f"/api/v1/incidents/{incident.reference}/timeline/")
    assert "https://grafana.example.org/render/disk.png" in detail.content.decode()


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"links": [{"href": "javascript:alert(1)", "text": "x"}]}, "links"),
        ({"images": [{"src": "ftp://x/y.png"}]}, "images"),
        ({"client_url": "not a url"}, "client_url"),
        (
            {"payload": {"summary": "s", "source": "x", "severity": "info", "timestamp": "yesterday"}},
            "payload",
        ),
    ],
)
def test_bad_extra_fields_are_a_400_naming_them(api, extra, field):
    _, key = make_integration()
    body = {
        "routing_key": key,
        "event_action": "trigger",
        "payload": {"summary": "s", "source": "x", "severity": "info"},
    }

    response = api.post("/api/v1/events/", {**body, **extra}, format="json")

    assert response.status_code == 400
    assert field in response.json()


# --- firings, not deliveries ----------------------------------------------------------------------------


def test_alertmanager_redeliveries_of_one_firing_count_once_and_new_firings_count(api):
    _, key = make_integration(classified=True)
    url = f"/api/v1/events/alertmanager/?routing_key={key}"
    for _ in range(3):  # repeat_interval and retries resend the same firing
        api.post(url, webhook(alert()), format="json")
    assert AlertGroup.objects.get().alert_count == 1

    api.post(url, webhook({**alert(), "startsAt": "2026-03-02T11:00:00Z"}), format="json")

    assert AlertGroup.objects.get().alert_count == 2
    assert TimelineEntry.objects.filter(kind="alert", action="trigger").count() == 2


def test_events_with_the_same_timestamp_are_one_firing(api):
    _, key = make_integration(classified=True)
    for _ in range(2):
        send(api, key, timestamp="2026-03-02T09:00:00Z")
    send(api, key, timestamp="2026-03-02T09:05:00Z")
    send(api, key)  # no timestamp: each delivery is an occurrence

    assert AlertGroup.objects.get().alert_count == 3


@pytest.mark.parametrize("name", ["django.server", "intake", "celery"])
def test_every_handler_of_the_log_configuration_redacts_keys(name):
    """LOGGING's handlers (the development server's access log among them) run the redacting filter."""
    logger = logging.getLogger(name)
    handlers = []
    while logger is not None:
        handlers += logger.handlers
        logger = logger.parent if logger.propagate else None
    writers = [
        h for h in handlers if not type(h).__module__.startswith("_pytest") and not isinstance(h, logging.NullHandler)
    ]  # fmt: skip
    assert writers
    for handler in writers:
        record = logging.LogRecord(name, logging.ERROR, __file__, 1, '"%s" %s', ("POST /api/v1/events/?routing_key=s3cr3t-key HTTP/1.1", 202), None)  # fmt: skip
        if handler.filter(record):  # a handler that drops the record (say, DEBUG-only) writes nothing
            assert "s3cr3t-key" not in record.getMessage(), handler


def test_gunicorns_access_log_redacts_the_query_string_and_the_headers(tmp_path):
    """gunicorn reads gunicorn.conf.py from the working directory: the access log uses intake.logs."""
    import runpy
    from datetime import timedelta
    from pathlib import Path
    from types import SimpleNamespace

    from gunicorn.config import Config

    from intake.logs import GunicornLogger

    conf = runpy.run_path(str(Path(__file__).resolve().parents[2] / "gunicorn.conf.py"))
    assert conf["logger_class"] == "intake.logs.GunicornLogger"
    cfg = Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set("access_log_format", "%(r)s %(q)s %({authorization}i)s %({x-routing-key}i)s")
    logger = GunicornLogger(cfg)
    environ = {
        "REQUEST_METHOD": "POST", "RAW_URI": "/api/v1/events/alertmanager?routing_key=k-in-url",
        "SERVER_PROTOCOL": "HTTP/1.1", "QUERY_STRING": "routing_key=k-in-url", "PATH_INFO": "/api/v1/events/alertmanager",
    }  # fmt: skip
    request = SimpleNamespace(
        headers=[("AUTHORIZATION", "Bearer k-in-bearer"), ("X-ROUTING-KEY", "k-in-header")]
    )

    logger.access(
        SimpleNamespace(status="202 Accepted", sent=10, headers=[]), request, environ, timedelta(seconds=0)
    )

    line = (tmp_path / "access.log").read_text()
    assert "routing_key=[redacted]" in line
    for secret in ("k-in-url", "k-in-bearer", "k-in-header"):
        assert secret not in line


def test_the_dashboard_reports_responses_cleared_by_monitoring_apart(api, client):
    from tests.factories import UserFactory

    _, key = make_integration(classified=True)
    sla_policy()
    send(api, key)
    send(api, key, action="resolve")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    html = client.get("/reports/").content.decode()

    assert "0 met, 0 breached, 1 cleared by monitoring" in html
