"""A monitoring event that opens an incident opens it classified in one step (incidents.services.
create_classified_incident): the same incident, timeline, clocks, timers, chain and outbox rows as reporting it
and then classifying it (the general path), in a fixed, small number of statements (issue 15's budget: 10)."""

from __future__ import annotations

import datetime as dt
from unittest import mock

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from escalation.models import (
    AutoAssign,
    EscalationPolicy,
    EscalationStep,
    IncidentEscalation,
    Notification,
    SlaClock,
    SlaTarget,
    Timer,
    WebhookEndpoint,
)
from incidents import lifecycle, problems, services
from incidents.models import Incident, Membership, Problem, TimelineEntry
from intake.models import AlertGroup
from tests.factories import TeamFactory, UserFactory, sla_policy

from .conftest import make_integration

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
PAYLOAD = {"summary": "Disk full on db1", "source": "db1", "severity": "critical"}


def configure(team, *, auto_assign: bool = True) -> None:
    """An SLA policy with a reporting target, the team's escalation ladder (one step measured on the response
    clock), a webhook that hears every event, and round-robin assignment among two members."""
    ladder = EscalationPolicy.objects.create(slug=f"ladder-{team.slug}", name="Ladder", team=team)
    EscalationStep.objects.create(
        policy=ladder, position=1, trigger="sla_share", sla_kind="response", share_percent=50
    )
    EscalationStep.objects.create(policy=ladder, position=2, trigger="unacknowledged", delay_minutes=30)
    policy = sla_policy(response=30, resolution=240)
    SlaTarget.objects.create(policy=policy, slug="notify", name="Notify", minutes=60, business_time=False)
    WebhookEndpoint.objects.create(
        slug=f"hook-{team.slug}", name="Chat", url="http://127.0.0.1:9/hook",
        events=["incident.created", "incident.state_changed"], owner_team=team,
    )  # fmt: skip
    if auto_assign:
        for _ in range(2):
            Membership.objects.create(team=team, user=UserFactory())
        AutoAssign.objects.create(team=team, mode=AutoAssign.Mode.ROUND_ROBIN)


def _rel(value, base):
    return (value - base).total_seconds() if isinstance(value, dt.datetime) else value


def picture(incident: Incident) -> dict:
    """Everything opening an incident writes, with ids, keys and instants made relative to the incident."""
    incident = Incident.objects.get(pk=incident.pk)
    base, ref = incident.received_at, incident.reference
    skip = {"id", "tracking_token", "search_vector", "title_trgm"}
    row = {
        f.attname: _rel(getattr(incident, f.attname), base)
        for f in Incident._meta.concrete_fields
        if f.attname not in skip
    }
    clocks = {c.pk: i for i, c in enumerate(SlaClock.objects.filter(incident=incident).order_by("id"))}
    chains = {
        c.pk: i for i, c in enumerate(IncidentEscalation.objects.filter(incident=incident).order_by("id"))
    }
    return {
        "row": row,
        "timeline": [
            (e.kind, e.action, e.public, e.actor_id, _rel(e.at, base), e.data)
            for e in TimelineEntry.objects.filter(incident=incident).order_by("id")
        ],
        "clocks": [
            (
                c.kind,
                c.name,
                c.cycle,
                c.policy_id,
                c.calendar_id,
                c.target_seconds,
                c.warn_seconds,
                c.epoch,
                _rel(c.started_at, base),
                _rel(c.running_since, base),
                _rel(c.due_at, base),
                _rel(c.warn_at, base),
            )
            for c in SlaClock.objects.filter(incident=incident).order_by("id")
        ],
        "timers": [
            (
                t.kind,
                t.state,
                t.step,
                t.repeat,
                _rel(t.due_at, base),
                clocks.get(t.clock_id),
                chains.get(t.escalation_id),
                t.key.split(":")[0],
                t.key.split(":")[2:],
            )
            for t in Timer.objects.filter(incident=incident).order_by("id")
        ],
        "chains": [
            (c.epoch, c.policy_id, c.steps, _rel(c.started_at, base), c.stopped_at)
            for c in IncidentEscalation.objects.filter(incident=incident).order_by("id")
        ],
        "outbox": [
            (
                n.event,
                n.channel,
                n.recipient,
                n.subject.replace(ref, "REF"),
                {
                    **n.payload,
                    "id": None,
                    "occurred_at": None,
                    "incident": {**n.payload["incident"], "reference": None, "url": None},
                },
            )
            for n in Notification.objects.filter(incident=incident).order_by("id")
        ],
    }


def reset_turn() -> None:
    """The second incident finds the team as the first did: the same member's turn, nobody's load."""
    AutoAssign.objects.update(last_assigned=None)
    Incident.objects.update(assignee=None)


def general_path(integration) -> Incident:
    """What opening took before: report, then classify through the lifecycle."""
    mapping = integration.mapping_for("critical")
    incident = services.create_incident(
        title="Disk full on db1", description="d", reporter=integration.user, domain=integration.domain,
        category=integration.category, impact=mapping[0], urgency=mapping[1], channel=Incident.Channel.MONITORING,
    )  # fmt: skip
    return lifecycle.classify_incident(
        incident, actor=None, domain=integration.domain, category=integration.category, impact=mapping[0],
        urgency=mapping[1], team=integration.team,
    )  # fmt: skip


def one_step(integration) -> Incident:
    mapping = integration.mapping_for("critical")
    return services.create_classified_incident(
        title="Disk full on db1", description="d", reporter=integration.user, domain=integration.domain,
        category=integration.category, impact=mapping[0], urgency=mapping[1], team=integration.team,
        channel=Incident.Channel.MONITORING,
    )  # fmt: skip


@pytest.mark.parametrize("auto_assign", [True, False])
def test_opening_classified_writes_what_reporting_then_classifying_writes(auto_assign):
    integration, _ = make_integration(classified=True)
    configure(integration.team, auto_assign=auto_assign)

    with time_machine.travel(T0, tick=False):
        before = picture(general_path(integration))
    reset_turn()
    with time_machine.travel(T0, tick=False):
        after = picture(one_step(integration))

    assert after == before
    assert before["clocks"]
    assert before["timers"]
    assert before["chains"]
    assert before["outbox"]
    assert (before["row"]["assignee_id"] is not None) == auto_assign


def test_an_event_opens_its_incident_as_the_general_path_does():
    integration, key = make_integration(classified=True)
    configure(integration.team)
    client = APIClient()

    with time_machine.travel(T0, tick=False):
        before = picture(general_path(integration))
    reset_turn()
    with time_machine.travel(T0, tick=False):
        body = {"routing_key": key, "event_action": "trigger", "dedup_key": "d", "payload": PAYLOAD}
        assert client.post("/api/v1/events/", body, format="json").status_code == 202
    incident = AlertGroup.objects.get(dedup_key="d").incident
    after = picture(incident)

    # The event's incident has its own description and one more entry, the alert; all else is the same.
    assert after["timeline"][-1][:2] == ("alert", "trigger")
    after["timeline"].pop()
    for side in (before, after):
        side["row"].pop("description"), side["row"].pop("description_html")
    assert after == before


def test_a_classification_the_lifecycle_would_refuse_leaves_the_incident_received():
    integration, key = make_integration(classified=True)
    integration.domain.restricted = True  # the team does not handle it: classify_incident refuses
    integration.domain.save()
    integration.team.domains.clear()

    body = {"routing_key": key, "event_action": "trigger", "dedup_key": "d", "payload": PAYLOAD}
    assert APIClient().post("/api/v1/events/", body, format="json").status_code == 202

    incident = AlertGroup.objects.get(dedup_key="d").incident
    assert incident.state == Incident.State.RECEIVED
    assert incident.team_id is None
    assert list(incident.timeline.order_by("id").values_list("kind", flat=True)) == ["created", "alert"]


def test_a_new_incident_with_webhooks_and_auto_assignment_takes_a_fixed_number_of_statements():
    integration, key = make_integration(classified=True)
    configure(integration.team)
    client = APIClient()

    def send(dedup_key):
        body = {"routing_key": key, "event_action": "trigger", "dedup_key": dedup_key, "payload": PAYLOAD}
        assert client.post("/api/v1/events/", body, format="json").status_code == 202

    send("warm-up")  # reads the configuration once
    with CaptureQueriesContext(connection) as queries:
        send("new-one")

    sql = [q["sql"] for q in queries.captured_queries]
    incident = AlertGroup.objects.get(dedup_key="new-one").incident
    assert incident.state == Incident.State.CLASSIFIED
    assert incident.assignee_id is not None
    assert SlaClock.objects.filter(incident=incident).count() == 3
    assert Timer.objects.filter(incident=incident).count() == 7  # 3 x (warning, breach) + the first step
    assert Notification.objects.filter(incident=incident, channel="webhook").count() == 2
    # The 10 of the test below, and what this configuration adds: the webhook endpoints and their team's
    # domains, the outbox rows of `created` and of `state_changed` (an INSERT and the ids still to deliver,
    # each), and round-robin assignment (the rule's lock, the members, their load, their names, the rule's
    # turn, the incident's assignee).
    assert len(sql) <= 22, "\n".join(s[:150] for s in sql)


def test_a_new_incident_without_assignment_or_webhooks_takes_ten_statements_and_two_for_recurrence(
    django_capture_on_commit_callbacks,
):
    integration, key = make_integration(classified=True)
    configure(integration.team, auto_assign=False)
    WebhookEndpoint.objects.all().delete()
    client = APIClient()

    def send(dedup_key):
        body = {"routing_key": key, "event_action": "trigger", "dedup_key": dedup_key, "payload": PAYLOAD}
        with django_capture_on_commit_callbacks() as after_commit:
            assert client.post("/api/v1/events/", body, format="json").status_code == 202
        return after_commit

    for callback in send("warm-up"):
        callback()
    with CaptureQueriesContext(connection) as queries:
        after_commit = send("new-one")
    with CaptureQueriesContext(connection) as checks:
        for callback in after_commit:
            callback()

    sql = [q["sql"] for q in queries.captured_queries]
    incident = AlertGroup.objects.get(dedup_key="new-one").incident
    assert SlaClock.objects.filter(incident=incident).count() == 3
    assert IncidentEscalation.objects.filter(incident=incident).count() == 1
    # integration + stamp; savepoint; the hit UPDATE (SQLite: the group's lock); incident; clocks; chain; timers;
    # group; entries; release. Nothing of the configuration is read again.
    assert len(sql) <= 10, sql
    # Once it committed, the recurrence check of its category (incidents.problems.check_recurrence, as after
    # classifying): the category's capped probe with its open problem, then (below the threshold) the capped
    # text probe (SQLite: the candidates' titles, then the matches). The incident is not read again.
    expected = 2 if connection.vendor == "postgresql" else 3
    assert len(checks.captured_queries) == expected, [q["sql"] for q in checks.captured_queries]
    assert "incidents_incident" in checks.captured_queries[0]["sql"]


def test_a_configuration_change_is_seen_by_the_next_event():
    integration, key = make_integration(classified=True)
    configure(integration.team, auto_assign=False)
    client = APIClient()

    def send(dedup_key):
        body = {"routing_key": key, "event_action": "trigger", "dedup_key": dedup_key, "payload": PAYLOAD}
        assert client.post("/api/v1/events/", body, format="json").status_code == 202
        return AlertGroup.objects.get(dedup_key=dedup_key).incident

    first = send("one")
    # A queryset update (no signal, no save()): the database's trigger changes the stamp all the same.
    EscalationPolicy.objects.filter(team=integration.team).update(team=None)
    from escalation.models import SlaPolicy

    SlaPolicy.objects.update(response_minutes=10)
    second = send("two")

    assert IncidentEscalation.objects.filter(incident=first).exists()
    assert not IncidentEscalation.objects.filter(incident=second).exists()
    clock = SlaClock.objects.get(incident=second, kind="response")
    assert clock.target_seconds == 600


def test_the_stamp_changes_with_every_configuration_write_and_not_with_a_turn():
    from escalation.models import ConfigStamp

    integration, _ = make_integration(classified=True)

    def token():
        return ConfigStamp.objects.get(pk=1).token

    start = token()
    rule = AutoAssign.objects.create(team=integration.team, mode=AutoAssign.Mode.ROUND_ROBIN)
    created = token()
    rule.last_assigned = UserFactory()
    rule.save(update_fields=["last_assigned"])  # a round-robin turn, at every assignment
    assert token() == created != start
    rule.mode = AutoAssign.Mode.OFF
    rule.save(update_fields=["mode"])
    assert token() != created


def _proposal(integration) -> tuple:
    """The problem proposed for the integration's category: what it is, whom it told, what it links."""
    problem = Problem.objects.get(category=integration.category)
    linked = problem.incidents.order_by("received_at", "pk")
    told = Notification.objects.filter(event="problem_proposed", incident__in=linked)
    return (
        problem.state,
        problem.proposal_key.split(":")[:2],
        problem.team_id,
        problem.title.replace(integration.category.name, "CATEGORY"),
        [(i.title, i.state) for i in linked],
        sorted(told.values_list("channel", "recipient")),
        [e.data["event"] for e in TimelineEntry.objects.filter(incident__in=linked, kind="problem")],
    )


def test_events_opening_incidents_of_one_category_propose_a_problem_as_classifying_them_does(
    settings, django_capture_on_commit_callbacks
):
    settings.RECURRENCE_THRESHOLD = 3
    settings.RECURRENCE_WINDOW = dt.timedelta(hours=24)
    team = TeamFactory(domains=["it_service"])
    Membership.objects.create(team=team, user=UserFactory(email="member@example.org"))
    by_hand, _ = make_integration(classified=True, team=team)
    by_events, key = make_integration(classified=True, team=team)
    client = APIClient()

    mapping = by_hand.mapping_for("critical")
    for _ in range(3):
        # Reported without a category and classified into it: the lifecycle's check runs (classify_incident
        # checks when the category changes).
        reported = services.create_incident(
            title="Disk full on db1", reporter=by_hand.user, domain=by_hand.domain,
            channel=Incident.Channel.MONITORING,
        )  # fmt: skip
        with django_capture_on_commit_callbacks(execute=True):
            lifecycle.classify_incident(
                reported, actor=None, domain=by_hand.domain, category=by_hand.category, impact=mapping[0],
                urgency=mapping[1], team=team,
            )  # fmt: skip
    for n in range(3):
        body = {"routing_key": key, "event_action": "trigger", "dedup_key": f"d{n}", "payload": PAYLOAD}
        with django_capture_on_commit_callbacks(execute=True):
            assert client.post("/api/v1/events/", body, format="json").status_code == 202

    assert Problem.objects.count() == 2
    expected = _proposal(by_hand)
    assert expected[-1] == ["recurrence"] * 3
    assert ("email", "member@example.org") in expected[-2]
    assert _proposal(by_events) == expected


def test_a_failing_recurrence_check_never_undoes_an_incident_opened_by_an_event(
    monkeypatch, django_capture_on_commit_callbacks
):
    _integration, key = make_integration(classified=True)
    checked = []

    def broken(incident, **kwargs):
        checked.append(incident.pk)
        raise RuntimeError("bug")

    monkeypatch.setattr(problems, "check_recurrence", broken)
    body = {"routing_key": key, "event_action": "trigger", "dedup_key": "d", "payload": PAYLOAD}
    with django_capture_on_commit_callbacks(execute=True):
        assert APIClient().post("/api/v1/events/", body, format="json").status_code == 202

    incident = AlertGroup.objects.get(dedup_key="d").incident
    assert checked == [incident.pk]
    assert incident.state == Incident.State.CLASSIFIED


def test_the_second_event_opening_an_incident_compiles_no_insert():
    from django.db.models.sql.compiler import SQLInsertCompiler

    integration, key = make_integration(classified=True)
    configure(integration.team, auto_assign=False)
    WebhookEndpoint.objects.all().delete()
    client = APIClient()

    def send(dedup_key):
        body = {"routing_key": key, "event_action": "trigger", "dedup_key": dedup_key, "payload": PAYLOAD}
        assert client.post("/api/v1/events/", body, format="json").status_code == 202

    send("warm-up")
    compiled = []
    as_sql = SQLInsertCompiler.as_sql

    def counting(compiler):
        compiled.append(compiler.query.model.__name__)
        return as_sql(compiler)

    with mock.patch.object(SQLInsertCompiler, "as_sql", counting):
        send("new-one")

    incident = AlertGroup.objects.get(dedup_key="new-one").incident
    assert Timer.objects.filter(incident=incident).count() >= 2
    assert incident.timeline.count() >= 2
    # The incident, its chain and alert group (one row each), and on PostgreSQL its clocks, timers and entries
    # (one UNNEST each): every statement compiled before.
    assert not {"Incident", "IncidentEscalation", "AlertGroup"} & set(compiled), compiled
    if connection.vendor == "postgresql":
        assert compiled == [], compiled
