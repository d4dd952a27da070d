"""The lean route of POST /api/v1/events/ (intake.api.views.events_route): the plain trigger skips DRF's request,
negotiation and response, and answers exactly as EventsView (served at /api/v1/events without the slash) does."""

from __future__ import annotations

import json
import time
from unittest import mock

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.test import Client

from incidents.models import Incident
from intake.api.views import EventsView
from intake.models import AlertGroup

from .conftest import make_integration

pytestmark = pytest.mark.django_db
LEAN, DRF = "/api/v1/events/", "/api/v1/events"


def post(client, url, key, dedup_key="db1-disk", **headers):
    body = {
        "routing_key": key, "event_action": "trigger", "dedup_key": dedup_key,
        "payload": {"summary": "Disk full on db1", "source": "db1", "severity": "critical"},
    }  # fmt: skip
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


def answer(response):
    headers = {k: v for k, v in response.headers.items() if k != "Content-Length"}
    return response.status_code, headers, response.content


@pytest.mark.parametrize("classified", [False, True])
def test_the_lean_route_answers_as_events_view(classified):
    _, key = make_integration(classified=classified)
    client = Client()

    # A new incident on each route, then a hit on each route's incident from the other.
    a, b = "a\u2028a", "b-\u00e9"  # DRF's renderer escapes U+2028 and keeps other characters as they are
    opened_drf, opened_lean = post(client, DRF, key, a), post(client, LEAN, key, b)
    hit_lean, hit_drf = post(client, LEAN, key, a), post(client, DRF, key, b)

    assert opened_drf.status_code == 202
    assert answer(hit_lean) == answer(opened_drf)
    assert answer(hit_drf) == answer(opened_lean)
    assert b"a\\u2028a" in hit_lean.content
    assert "b-\u00e9".encode() in opened_lean.content
    assert sorted(AlertGroup.objects.values_list("dedup_key", "alert_count")) == [(a, 2), (b, 2)]


def test_a_plain_trigger_skips_drf_and_anything_else_goes_through_it():
    _, key = make_integration(classified=True)
    client = Client()

    with mock.patch.object(
        EventsView, "dispatch", autospec=True, side_effect=EventsView.dispatch
    ) as dispatch:
        assert post(client, LEAN, key).status_code == 202
        assert post(client, LEAN, key).status_code == 202
        assert dispatch.call_count == 0
        assert post(client, LEAN, key, HTTP_ACCEPT="text/html").status_code == 202  # the browsable API's
        assert post(client, LEAN, key, QUERY_STRING="format=json").status_code == 202
        assert post(client, LEAN, "wrong").status_code == 404
        ack = {"routing_key": key, "event_action": "acknowledge", "dedup_key": "db1-disk"}
        assert client.post(LEAN, json.dumps(ack), content_type="application/json").status_code == 202
        assert client.post(LEAN, b"{", content_type="application/json").status_code == 400
        assert dispatch.call_count == 5
    assert AlertGroup.objects.get().alert_count == 4


def test_the_lean_route_counts_an_event_once_against_the_rate_limit(time_machine):
    time_machine.move_to("2026-12-03 10:00:10+00:00", tick=False)
    integration, key = make_integration(rate_limit_per_minute=2)
    client = Client()

    codes = [post(client, LEAN, key).status_code for _ in range(4)]

    assert codes == [202, 202, 429, 429]
    window = int(time.time() // 60) * 60
    assert cache.get(f"intake-rate:{integration.pk}:{window}") == 4
    assert int(post(client, LEAN, key)["Retry-After"]) == 50


def test_a_domain_error_on_the_lean_route_is_answered_as_events_view_answers_it():
    _, key = make_integration()
    client = Client()
    refused = ValidationError({"title": ["Refused."]})

    with mock.patch("intake.events.handle", side_effect=refused):
        lean, drf = post(client, LEAN, key), post(client, DRF, key)

    assert lean.status_code == 400
    assert answer(lean) == answer(drf)
    assert lean.json() == {"title": ["Refused."]}
    assert not Incident.objects.exists()
