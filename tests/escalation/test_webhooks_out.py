"""Outgoing webhooks on incident events (escalation.webhooks): what is queued in the outbox, for whom, and
what a real HTTP receiver gets through the real delivery task."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from io import StringIO

import pytest
import time_machine
import yaml
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from escalation.api.webhook_payloads import PAYLOADS
from escalation.engine import sweep
from escalation.models import Notification, WebhookEndpoint
from escalation.tasks import deliver_notification
from escalation.webhooks import EVENTS
from incidents import lifecycle, services
from tests.conftest import client_for
from tests.escalation.receiver import Receiver
from tests.factories import TeamFactory, UserFactory, agent, classified, domain, report, sla_policy

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)


def subscribe(url: str, *, events=EVENTS, **owner) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(
        slug=f"hook-{WebhookEndpoint.objects.count()}", name="Listener", url=url, events=list(events), **owner
    )


def deliver_all() -> list[str]:
    pending = Notification.objects.filter(state="pending", channel="webhook").order_by("pk")
    return [deliver_notification(pk) for pk in pending.values_list("pk", flat=True)]


def fields_of(serializer_class) -> set[str]:
    return set(serializer_class().fields)


def test_subscribed_events_reach_the_receiver_signed_with_the_documented_bodies():
    team = TeamFactory(domains=["it_service"])
    with Receiver() as receiver:
        hook = subscribe(receiver.url, owner_team=team)
        incident, actor = classified(team=team)
        services.add_comment(incident, author=actor, body="Internal: looks like the firmware", public=False)
        services.add_comment(incident, author=actor, body="We are on it.", public=True)
        lifecycle.acknowledge_incident(incident, actor=actor)
        assert set(deliver_all()) == {"sent"}
    events = [(r["json"]["event"], r["json"].get("action")) for r in receiver.requests]
    assert events == [
        ("incident.created", None),
        ("incident.state_changed", "classify"),
        ("incident.public_comment", None),
        ("incident.state_changed", "acknowledge"),
    ]
    for request in receiver.requests:
        body, headers = request["json"], request["headers"]
        assert set(body) == fields_of(PAYLOADS[body["event"]])
        assert set(body["incident"]) == fields_of(PAYLOADS[body["event"]]().fields["incident"].__class__)
        assert body["incident"]["reference"] == incident.reference
        assert headers["X-IncidentDesk-Event"] == body["event"]
        assert headers["Idempotency-Key"] == body["id"] == headers["X-IncidentDesk-Id"]
        mac = hmac.new(
            hook.secret.encode(),
            f"{headers['X-IncidentDesk-Id']}.{headers['X-IncidentDesk-Timestamp']}.".encode()
            + request["body"],
            hashlib.sha256,
        )
        assert headers["X-IncidentDesk-Signature"] == f"v1={mac.hexdigest()}"
    comment = receiver.requests[2]["json"]["comment"]
    assert comment["body"] == "We are on it."
    assert comment["author"] == actor.get_username()
    assert receiver.requests[3]["json"]["state"] == "responding"


def test_only_the_selected_events_are_sent():
    team = TeamFactory(domains=["it_service"])
    hook = subscribe("http://127.0.0.1:9/hook", events=["incident.public_comment"], owner_team=team)
    incident, actor = classified(team=team)
    services.add_comment(incident, author=actor, body="Public", public=True)
    rows = Notification.objects.filter(webhook=hook)
    assert list(rows.values_list("event", flat=True)) == ["incident.public_comment"]


def test_an_inactive_webhook_or_one_without_owner_is_sent_nothing():
    subscribe("http://127.0.0.1:9/a")  # no owner (only the API and the admin refuse it)
    WebhookEndpoint.objects.filter(
        pk=subscribe("http://127.0.0.1:9/b", owner_user=UserFactory(is_superuser=True)).pk
    ).update(active=False)
    report()
    assert not Notification.objects.filter(channel="webhook").exists()


@pytest.mark.parametrize("domain_slug", ["security", "medical"])
def test_a_restricted_incident_outside_the_owner_reach_produces_no_delivery(domain_slug):
    it_team = TeamFactory(domains=["it_service"])
    insiders = TeamFactory(domains=[domain_slug])
    outsider_hook = subscribe("http://127.0.0.1:9/out", owner_user=agent(it_team))
    team_outsider_hook = subscribe("http://127.0.0.1:9/team-out", owner_team=it_team)
    insider_hook = subscribe("http://127.0.0.1:9/in", owner_team=insiders)
    user_insider_hook = subscribe("http://127.0.0.1:9/user-in", owner_user=agent(insiders))
    incident, actor = classified(team=insiders, domain_slug=domain_slug, title="Patient Jane Roe, wrong dose")
    services.add_comment(incident, author=actor, body="Jane Roe is stable", public=True)
    assert not Notification.objects.filter(webhook__in=[outsider_hook, team_outsider_hook]).exists()
    for hook in (insider_hook, user_insider_hook):
        rows = Notification.objects.filter(webhook=hook)
        assert rows.count() == 3
        assert all(row.payload["incident"]["title"] == "Patient Jane Roe, wrong dose" for row in rows)


def test_an_unrestricted_incident_reaches_owners_of_other_teams():
    hook = subscribe(
        "http://127.0.0.1:9/hook",
        events=["incident.created"],
        owner_user=agent(TeamFactory(domains=["security"])),
    )
    report(domain=domain("it_service"))
    assert Notification.objects.filter(webhook=hook).count() == 1


def test_an_event_rolled_back_sends_nothing():
    hook = subscribe("http://127.0.0.1:9/hook", owner_user=UserFactory(is_superuser=True))
    written = []

    def report_then_fail() -> None:
        with transaction.atomic():
            report()
            written.append(Notification.objects.filter(webhook=hook).count())  # by the deciding transaction
            raise RuntimeError("the change fails after the event")

    with pytest.raises(RuntimeError):
        report_then_fail()
    assert written == [1]
    assert not Notification.objects.filter(webhook=hook).exists()


def test_delivery_is_prompted_after_commit(django_capture_on_commit_callbacks):
    hook = subscribe("http://127.0.0.1:9/hook", owner_user=UserFactory(is_superuser=True))
    with django_capture_on_commit_callbacks() as callbacks:
        report()
    assert callbacks  # the prompt waits for the commit
    assert Notification.objects.filter(webhook=hook, state="pending").count() == 1


def test_sla_warning_and_breach_are_sent_once_each_by_the_sweep():
    sla_policy(priority=1, response=20, resolution=240, warn=75)
    team = TeamFactory(domains=["it_service"])
    with Receiver() as receiver:
        subscribe(receiver.url, events=["incident.sla_warning", "incident.sla_breached"], owner_team=team)
        with time_machine.travel(T0, tick=False):
            incident, _ = classified(team=team)
        sweep(now=T0 + dt.timedelta(minutes=16))
        sweep(now=T0 + dt.timedelta(minutes=21))
        sweep(now=T0 + dt.timedelta(minutes=22))  # decided once: nothing new
        assert set(deliver_all()) == {"sent"}
    bodies = [r["json"] for r in receiver.requests]
    assert [(b["event"], b["sla"]["kind"]) for b in bodies] == [
        ("incident.sla_warning", "response"),
        ("incident.sla_breached", "response"),
    ]
    for body in bodies:
        assert set(body) == fields_of(PAYLOADS[body["event"]])
        assert body["incident"]["reference"] == incident.reference


def test_a_failing_receiver_is_retried_with_backoff_under_the_same_key(settings):
    settings.NOTIFICATION_BACKOFF_SECONDS = [0, 0]
    with Receiver() as receiver:
        receiver.fail_with = 503
        subscribe(receiver.url, events=["incident.created"], owner_user=UserFactory(is_superuser=True))
        report()
        (pk,) = Notification.objects.filter(channel="webhook").values_list("pk", flat=True)
        assert deliver_notification(pk) == "retry"
        assert Notification.objects.get(pk=pk).last_error == "RuntimeError: HTTP 503"
        receiver.fail_with = None
        assert deliver_notification(pk) == "sent"
        assert deliver_notification(pk) == "skipped"
    assert [a["status"] for a in receiver.attempts] == [503, 204]
    assert len({a["key"] for a in receiver.attempts}) == 1


# --- the API ------------------------------------------------------------------------------------------


@pytest.fixture
def admin_api():
    return client_for(UserFactory(is_staff=True, is_superuser=True))


def test_an_admin_creates_a_webhook_and_sees_its_secret_once(admin_api):
    team = TeamFactory(slug="ops", domains=["it_service"])
    body = {
        "slug": "crm", "name": "CRM", "url": "http://127.0.0.1:9/hook", "owner_team": team.slug,
        "events": ["incident.created", "incident.sla_breached"],
    }  # fmt: skip
    created = admin_api.post("/api/v1/webhooks/", body, format="json")
    assert created.status_code == 201, created.json()
    secret = created.json()["secret"]
    assert secret
    assert secret == WebhookEndpoint.objects.get(slug="crm").secret
    assert admin_api.get("/api/v1/webhooks/crm/").json()["secret"] is None
    listed = admin_api.get("/api/v1/webhooks/").json()["results"]
    assert [(h["slug"], h["secret"], h["events"], h["owner_team"]) for h in listed] == [
        ("crm", None, ["incident.created", "incident.sla_breached"], "ops")
    ]
    rotated = admin_api.post("/api/v1/webhooks/crm/rotate-secret/")
    assert rotated.status_code == 200
    assert rotated.json()["secret"] not in (None, secret)
    assert WebhookEndpoint.objects.get(slug="crm").secret == rotated.json()["secret"]
    patched = admin_api.patch("/api/v1/webhooks/crm/", {"events": ["incident.state_changed"]}, format="json")
    assert patched.status_code == 200
    assert patched.json()["events"] == ["incident.state_changed"]
    assert admin_api.delete("/api/v1/webhooks/crm/").status_code == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"events": ["incident.deleted"], "owner_user": "boss"}, "events"),
        ({"events": "incident.created", "owner_user": "boss"}, "events"),
        ({"events": ["incident.created"]}, "owner_user"),
        ({"events": ["incident.created"], "owner_user": "nobody"}, "owner_user"),
        ({"events": ["incident.created"], "owner_user": "boss", "owner_team": "ops"}, "owner_team"),
    ],
)
def test_a_bad_subscription_is_a_400_naming_the_field(admin_api, body, field):
    UserFactory(username="boss")
    TeamFactory(slug="ops")
    base = {"slug": "crm", "name": "CRM", "url": "http://127.0.0.1:9/hook"}
    response = admin_api.post("/api/v1/webhooks/", {**base, **body}, format="json")
    assert response.status_code == 400
    assert field in response.json(), response.json()


def test_only_admins_manage_webhooks():
    hook = subscribe("http://127.0.0.1:9/hook", owner_user=UserFactory(is_superuser=True))
    responder = client_for(agent(TeamFactory()))
    assert responder.get("/api/v1/webhooks/").status_code == 403
    assert responder.post(f"/api/v1/webhooks/{hook.slug}/rotate-secret/").status_code == 403


def test_a_breach_burst_reads_the_subscriptions_once_per_sweep():
    sla_policy(priority=1, response=10, resolution=60, warn=50)
    team = TeamFactory(domains=["it_service"])
    subscribe("http://127.0.0.1:9/hook", events=["incident.sla_warning"], owner_team=team)
    subscribe("http://127.0.0.1:9/user", events=["incident.sla_warning"], owner_user=agent(team))
    for at, n in ((T0, 2), (T0 + dt.timedelta(minutes=2), 8)):
        with time_machine.travel(at, tick=False):
            for _ in range(n):
                classified(team=team)

    def queries(now):
        with CaptureQueriesContext(connection) as ctx:
            fired = sweep(now=now).fired
        return fired, len(ctx.captured_queries)

    fired_small, small = queries(T0 + dt.timedelta(minutes=6))
    fired_large, large = queries(T0 + dt.timedelta(minutes=8))
    assert (fired_small, fired_large) == (2, 8)
    # Per warning the webhooks add their outbox insert and the read-back of the ids; the subscriptions,
    # their owners and a team's domains are read once per sweep.
    per_timer = (large - small) / (fired_large - fired_small)
    assert per_timer <= 9, (small, large)
    assert Notification.objects.filter(channel="webhook", event="incident.sla_warning").count() == 20


# --- desk_config ----------------------------------------------------------------------------------------


def desk_config(*args: str) -> str:
    out = StringIO()
    call_command("desk_config", *args, stdout=out)
    return out.getvalue()


def test_desk_config_carries_the_subscription_but_never_the_secret(tmp_path):
    team = TeamFactory(slug="ops", domains=["it_service"])
    subscribe("http://127.0.0.1:9/hook", events=["incident.created"], owner_team=team)
    exported = yaml.safe_load(desk_config("export"))
    (hook,) = exported["webhooks"]
    assert (hook["events"], hook["owner_team"], hook["owner_user"]) == (["incident.created"], "ops", None)
    assert "secret" not in hook
    hook["events"] = ["incident.sla_breached", "incident.created"]
    path = tmp_path / "desk.yaml"
    path.write_text(yaml.safe_dump(exported))
    desk_config("apply", str(path))
    assert WebhookEndpoint.objects.get().events == ["incident.sla_breached", "incident.created"]

    hook["events"] = ["incident.exploded"]
    path.write_text(yaml.safe_dump(exported))
    with pytest.raises(CommandError, match="events"):
        desk_config("apply", str(path))
