"""The events endpoint's input: the plain trigger's check (plain_trigger) against the serializers it stands in for."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from intake.api.serializers import EventInputSerializer, plain_trigger

TEXTS = st.one_of(
    st.sampled_from(
        ["Disk full", "db1", "über", " padded ", "", "\t", "a\x00b", "\ud800", "x" * 256, "y" * 1025]
    ),
    st.text(max_size=20),
    st.integers() | st.none() | st.booleans(),
)
TIMESTAMPS = st.one_of(
    st.sampled_from(
        [
            "2026-12-01T10:00:00Z",
            "2026-12-01T10:00:00+02:00",
            "2026-12-01T10:00:00",
            "yesterday",
            "",
            "0001-01-01T00:00:00-05:00",
        ]
    ),
    st.datetimes(timezones=st.timezones()).map(lambda at: at.isoformat()),
    st.integers(),
    st.none(),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)
PAYLOADS = st.fixed_dictionaries(
    {"summary": TEXTS, "source": TEXTS, "severity": st.sampled_from(["critical", "info", "fatal", 3, None])},
    optional={
        "component": TEXTS, "group": TEXTS, "class": TEXTS, "timestamp": TIMESTAMPS, "custom_details": JSON,
        "unknown": st.just("x"),
    },
)  # fmt: skip
BODIES = st.fixed_dictionaries(
    {"event_action": st.sampled_from(["trigger", "trigger", "trigger", "resolve", "explode"]), "payload": PAYLOADS},
    optional={"routing_key": TEXTS, "dedup_key": TEXTS, "client": st.just("Grafana")},
)  # fmt: skip


def serializer_gives(body: dict[str, Any]) -> dict[str, Any] | None:
    serializer = EventInputSerializer(data=body)
    if not serializer.is_valid():
        return None
    return {**serializer.validated_data, "payload": dict(serializer.validated_data["payload"])}


@settings(max_examples=500, deadline=None)
@given(BODIES)
def test_a_plain_trigger_is_checked_as_the_serializers_check_it(body):
    plain = plain_trigger(body)

    if plain is not None:
        assert plain == serializer_gives(body)


@pytest.mark.parametrize(
    "payload",
    [
        {"summary": "Disk full", "source": "db1", "severity": "critical"},
        {
            "summary": "Disk full", "source": "db1", "severity": "info", "component": "", "group": "g",
            "class": "c", "timestamp": "2026-12-01T10:00:00+02:00", "custom_details": {"free": "2%"},
        },
    ],
)  # fmt: skip
def test_what_monitoring_tools_send_is_a_plain_trigger(payload):
    body = {"routing_key": "k", "event_action": "trigger", "dedup_key": "d", "payload": payload}

    assert plain_trigger(body) == serializer_gives(body)
