"""No input produces a 500: arbitrary JSON at the events endpoints, arbitrary bytes as mail."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake.inbound import ingest
from intake.mail import parse

from .conftest import make_integration

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
payloads = st.fixed_dictionaries(
    {},
    optional={
        "summary": json_values | st.text(),
        "source": json_values | st.text(),
        "severity": st.sampled_from(["critical", "error", "warning", "info", "fatal"]) | json_values,
        "custom_details": json_values,
    },
)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.django_db
@FUZZ
@given(
    action=st.sampled_from(["trigger", "acknowledge", "resolve"]) | json_values,
    dedup_key=st.none() | st.text(max_size=300) | json_values,
    payload=payloads | json_values,
)
def test_events_never_answer_500(api, action, dedup_key, payload):
    _, key = make_integration(classified=True, rate_limit_per_minute=100_000)
    body = {"routing_key": key, "event_action": action, "payload": payload}
    if dedup_key is not None:
        body["dedup_key"] = dedup_key

    response = api.post("/api/v1/events/", body, format="json")

    assert response.status_code in (202, 400, 409), response.content[:500]


@pytest.mark.django_db
@FUZZ
@given(
    alerts=st.lists(
        st.dictionaries(st.sampled_from(["status", "fingerprint", "labels", "annotations"]), json_values),
        max_size=3,
    )
    | json_values
)
def test_alertmanager_never_answers_500(api, alerts):
    _, key = make_integration(rate_limit_per_minute=100_000)

    response = api.post(f"/api/v1/events/alertmanager/?routing_key={key}", {"alerts": alerts}, format="json")

    assert response.status_code in (202, 400), response.content[:500]


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=2000))
def test_any_bytes_parse_without_an_exception(raw):
    parse(raw, limit=10_000)


HEADERS = st.sampled_from(
    [b"From: a@example.org\r\n", b"From: =?utf-8?b?////?= <x@y.z>\r\n", b"Subject: =?unknown-8bit?q?=FF?=\r\n",
     b"Content-Type: text/plain; charset=x-unknown\r\n", b"Content-Type: multipart/mixed; boundary=b\r\n",
     b"Content-Transfer-Encoding: base64\r\n", b"In-Reply-To: <\x00@x>\r\n", b"Subject: [INC-999999999999]\r\n"]
)  # fmt: skip


@pytest.mark.django_db
@FUZZ
@given(headers=st.lists(HEADERS, max_size=6), body=st.binary(max_size=300))
def test_any_message_is_recorded_never_a_crash(headers, body, attachment_dir):
    record = ingest(b"".join(headers) + b"\r\n" + body)

    assert record.pk is not None
