"""Concurrent triggers of one dedup key on PostgreSQL: a unique index, not luck, keeps one open incident."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from rest_framework.test import APIClient

from incidents.models import Incident, TimelineEntry
from intake.models import AlertGroup

from .conftest import make_integration


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_100_triggers_from_20_threads_give_one_incident_with_100_alerts():
    integration, key = make_integration(rate_limit_per_minute=10_000, classified=True)
    start = threading.Barrier(20)
    body = {
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": "checkout-5xx",
        "payload": {"summary": "Checkout 5xx rate over 5 %", "source": "lb1", "severity": "critical"},
    }

    def send_five(_: int) -> list[int]:
        client = APIClient()
        start.wait()
        try:
            return [client.post("/api/v1/events/", body, format="json").status_code for _ in range(5)]
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = [code for codes in pool.map(send_five, range(20)) for code in codes]

    assert codes == [202] * 100
    assert Incident.objects.count() == 1
    incident = Incident.objects.get()
    group = AlertGroup.objects.get(integration=integration, open=True)
    assert group.incident == incident
    assert group.alert_count == 100
    assert TimelineEntry.objects.filter(incident=incident, kind="alert").count() == 100
    assert incident.state == Incident.State.CLASSIFIED
    assert TimelineEntry.objects.filter(incident=incident, kind="state_changed").count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_distinct_firings_and_their_redeliveries_from_8_threads_count_exactly():
    """Each of 40 firings (its own startsAt) is sent by two threads at once: counted once each, none lost."""
    integration, key = make_integration(rate_limit_per_minute=10_000, classified=True)
    start = threading.Barrier(8)

    def send(worker: int) -> list[int]:
        client = APIClient()
        start.wait()
        codes = []
        try:
            # Workers 2k and 2k+1 send the same ten firings: every firing arrives twice, concurrently.
            for n in range(10):
                firing = (worker // 2) * 10 + n
                body = {
                    "routing_key": key,
                    "event_action": "trigger",
                    "dedup_key": "disk-full",
                    "payload": {
                        "summary": "Disk full", "source": "db1", "severity": "critical",
                        "timestamp": f"2026-12-01T10:{firing:02d}:00Z",
                    },
                }  # fmt: skip
                codes.append(client.post("/api/v1/events/", body, format="json").status_code)
            return codes
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = [code for codes in pool.map(send, range(8)) for code in codes]

    assert codes == [202] * 80
    group = AlertGroup.objects.get(integration=integration, open=True)
    assert group.alert_count == 40
    assert len(group.firings) == 40
    assert len(set(group.firings)) == 40
    assert TimelineEntry.objects.filter(incident=group.incident, kind="alert").count() == 40
    assert Incident.objects.count() == 1


@pytest.mark.django_db
def test_the_database_refuses_a_second_open_group_for_a_key():
    from django.db import IntegrityError, transaction

    integration, _ = make_integration()
    AlertGroup.objects.create(integration=integration, dedup_key="k")
    AlertGroup.objects.create(integration=integration, dedup_key="k", open=False)

    with pytest.raises(IntegrityError), transaction.atomic():
        AlertGroup.objects.create(integration=integration, dedup_key="k")


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_one_message_read_by_eight_readers_at_once_opens_one_incident():
    from intake.inbound import ingest
    from intake.models import InboundEmail

    from .helpers import message

    raw = message("iso_8859_1.eml")
    start = threading.Barrier(8)

    def read(_: int) -> str:
        start.wait()
        try:
            return ingest(raw, source="imap").outcome
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = sorted(pool.map(read, range(8)))

    assert outcomes == ["created"] + ["duplicate"] * 7
    assert Incident.objects.count() == 1
    assert InboundEmail.objects.filter(incident=Incident.objects.get()).count() == 8
