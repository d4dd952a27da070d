"""The real tools against the live server: Debian's prometheus-alertmanager fed with amtool, configured with
its webhook alone (URL without the trailing slash, the routing key as a Bearer credential), and PagerDuty's
own Python client (`pagerduty`) behind a test TLS endpoint, with the base URL `.../api/v1/events`."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta

import pagerduty
import pytest

from incidents import lifecycle
from incidents.models import Incident, TimelineEntry
from intake.models import AlertGroup
from tests.conftest import require_service
from tests.factories import CategoryFactory, TeamFactory, domain, sla_policy

from . import real_tools
from .conftest import make_integration

# The live server writes from its own thread while the test polls: SQLite's shared in-memory database
# answers "table is locked" to that, so these run on PostgreSQL, as in production.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture
def alertmanager_binary() -> str:
    binary = real_tools.alertmanager_binary()
    require_service("prometheus-alertmanager", binary is not None, "apt-get install prometheus-alertmanager")
    require_service("amtool", shutil.which("amtool") is not None, "apt-get install prometheus-alertmanager")
    assert binary is not None
    return binary


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_alertmanager_with_its_webhook_alone_opens_resolves_and_counts_firings(
    live_server, alertmanager_binary
):
    integration, key = make_integration(classified=True, name="Prometheus")
    sla_policy()
    manager = real_tools.start_alertmanager(
        alertmanager_binary,
        webhook_url=f"{live_server.url}/api/v1/events/alertmanager",  # typed without the slash
        bearer=key,
        repeat_interval="2s",
    )
    try:
        started = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        labels = ["alertname=DiskFull", "instance=db1:9100", "job=node", "severity=critical"]
        manager.amtool(
            "alert", "add", *labels, "--annotation=summary=Disk almost full on db1",
            f"--start={rfc3339(started)}", "--generator-url=http://prometheus.example.org/graph",
        )  # fmt: skip
        real_tools.wait_for(
            lambda: Incident.objects.exists(), what="Alertmanager's first notification", log=manager.log
        )
        group = AlertGroup.objects.get()
        first_seen = group.last_seen_at
        # repeat_interval 2 s: Alertmanager notifies the same firing again; it is one occurrence.
        real_tools.wait_for(
            lambda: AlertGroup.objects.get().last_seen_at > first_seen,
            what="a repeated notification of the same firing",
            log=manager.log,
        )
        assert AlertGroup.objects.get().alert_count == 1

        incident = Incident.objects.get()
        assert incident.title == "Disk almost full on db1"
        assert incident.state == Incident.State.CLASSIFIED
        assert "http://prometheus.example.org/graph" in incident.description
        ended = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
        manager.amtool(
            "alert", "add", *labels, "--annotation=summary=Disk almost full on db1",
            f"--start={rfc3339(started)}", f"--end={rfc3339(ended)}",
        )  # fmt: skip
        real_tools.wait_for(
            lambda: Incident.objects.get().state == Incident.State.RESOLVED,
            what="Alertmanager's resolved notification",
            log=manager.log,
        )
    finally:
        manager.stop()

    incident = Incident.objects.get()
    assert incident.resolution_summary == f"Cleared by Prometheus at {ended:%Y-%m-%d %H:%M} UTC"
    assert incident.sla_response == "cleared"
    assert incident.assignee is None
    assert not AlertGroup.objects.filter(open=True).exists()
    assert Incident.objects.count() == 1
    assert integration.user_id == incident.reporter_id


@pytest.fixture
def tls_endpoint(live_server, tmp_path):
    require_service("openssl", shutil.which("openssl") is not None, "apt-get install openssl")
    cert, key = real_tools.self_signed_certificate(tmp_path)
    port = int(live_server.url.rsplit(":", 1)[1])
    endpoint = real_tools.TlsEndpoint(port, cert, key).start()
    yield endpoint
    endpoint.stop()


def test_pagerdutys_client_triggers_acknowledges_and_resolves_with_every_field_kept(tls_endpoint):
    _, key = make_integration()  # incomplete mapping: the incident waits in `received` for a person
    client = pagerduty.EventsApiV2Client(
        key,
        base_url=f"https://127.0.0.1:{tls_endpoint.port}/api/v1/events",
        verify=tls_endpoint.client_context(),
    )

    dedup_key = client.trigger(
        "Checkout latency over 2 s",
        "web-3",
        dedup_key="checkout-latency",
        severity="error",
        payload={
            "component": "checkout",
            "group": "shop-prod",
            "class": "latency",
            "timestamp": "2026-03-02T09:00:00Z",
        },
        custom_details={"p95_ms": 2300},
        links=[{"href": "https://wiki.example.org/runbooks/checkout", "text": "Runbook"}],
        images=[{"src": "https://grafana.example.org/render/checkout.png", "alt": "Latency graph"}],
    )
    assert dedup_key == "checkout-latency"
    # PagerDuty never refuses these: on a received incident they are held, not a 409.
    assert client.acknowledge(dedup_key) == dedup_key
    assert client.resolve(dedup_key) == dedup_key

    incident = Incident.objects.get()
    assert incident.state == Incident.State.RECEIVED
    trigger = TimelineEntry.objects.get(incident=incident, kind="alert", action="trigger").data["payload"]
    assert (trigger["component"], trigger["group"], trigger["class"]) == ("checkout", "shop-prod", "latency")
    assert trigger["timestamp"] == "2026-03-02T09:00:00+00:00"
    assert trigger["links"][0]["href"] == "https://wiki.example.org/runbooks/checkout"
    assert trigger["images"][0]["alt"] == "Latency graph"
    assert "Runbook" in incident.description

    dom = domain("it_service")
    lifecycle.classify_incident(
        incident, actor=None, domain=dom, category=CategoryFactory(domain=dom), impact=2, urgency=2,
        team=TeamFactory(domains=["it_service"]),
    )  # fmt: skip

    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED  # the held resolve, applied at classification
    assert incident.resolution_summary.startswith(f"Cleared by {incident.reporter.integration.name} at ")
