"""The escalation engine with the real thing: its own redis-server, `celery worker` and `celery beat` child
processes, an SMTP server (aiosmtpd) and a webhook receiver, on PostgreSQL. Faults are real: processes are
SIGKILLed by PID.

Second-level deadlines from minute-level policies: SLA targets count from `received_at`, so an incident
"received" 45 s ago with a 1-minute response target has its 85 % warning due 6 s from now; ladder steps
triggered at 1 % of a 10-minute target are due 6 s after reception. Every timing bound asserted here is
generous (GENEROUS); the figures (p50/p99/max lateness) come from bench/escalation_lateness.py, which runs
the same scenarios (the functions `run_*` below) at a larger size.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import re
import secrets
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from math import ceil
from typing import Any

import pytest
from django.db import connection, transaction
from django.db.models import Count, F, Q
from django.test import override_settings
from rest_framework.test import APIClient

from escalation.engine import REPUBLISH_AFTER, db_now, sweep
from escalation.models import (
    EngineHeartbeat,
    EscalationPolicy,
    EscalationStep,
    IncidentEscalation,
    Notification,
    SlaClock,
    SlaPolicy,
    Timer,
    WebhookEndpoint,
)
from incidents import lifecycle, services
from incidents.models import Domain, Incident, Membership, Team, TimelineEntry
from tests.conftest import require_service
from tests.escalation.processes import (
    Stack,
    arrivals,
    database_url,
    describe,
    have_aiosmtpd,
    have_redis_server,
    lateness,
    wait_until,
)
from tests.escalation.receiver import Receiver
from tests.factories import CategoryFactory, TeamFactory, UserFactory, sla_policy

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True, serialized_rollback=True)]

GENEROUS = 30.0  # seconds: the only timing bound asserted (never early is exact)
SETTLE = 120.0  # seconds to wait for a scenario to settle before failing with the children's logs


# --- The world: a desk, its ladder, incidents ---------------------------------------------------------------


class Desk:
    """A team (with a desk address), an agent and a manager, a category and a webhook endpoint."""

    def __init__(self, slug: str, hook_url: str, *, quiet: bool = False) -> None:
        self.domain = Domain.objects.get(slug="it_service")
        self.category = CategoryFactory(domain=self.domain, slug=f"{slug}-systems")
        self.team = TeamFactory(slug=slug, email=f"{slug}@example.org")
        # quiet: only the desk address is told (the bulk runs), the agent has no address and no manager.
        self.agent = UserFactory(username=f"{slug}-agent", email="" if quiet else f"{slug}-agent@example.org")
        Membership.objects.create(team=self.team, user=self.agent)
        self.boss = None
        if not quiet:
            self.boss = UserFactory(username=f"{slug}-boss", email=f"{slug}-boss@example.org")
            Membership.objects.create(team=self.team, user=self.boss)
            Team.objects.filter(pk=self.team.pk).update(manager=self.boss)
        self.hook = WebhookEndpoint.objects.create(slug=f"{slug}-hook", name=f"{slug} hook", url=hook_url)

    def everyone(self) -> set[tuple[str, str]]:
        people = {("email", self.team.email), ("email", self.agent.email)}
        return people | ({("email", self.boss.email)} if self.boss else set())

    def raise_incident(
        self,
        *,
        received_ago: float = 0.0,
        received_at: datetime | None = None,
        impact: int = 1,
        urgency: int = 1,
        title: str = "Payment API answers 502",
    ) -> Incident:
        """Reported through the service, received `received_ago` s ago (backdated before classifying, so
        the SLA clocks start then), classified by the desk's agent."""
        incident = services.create_incident(
            title=title, reporter_email="reporter@example.org", domain=self.domain
        )
        if received_at is not None:
            Incident.objects.filter(pk=incident.pk).update(received_at=received_at)
        elif received_ago:
            Incident.objects.filter(pk=incident.pk).update(
                received_at=F("received_at") - timedelta(seconds=received_ago)
            )
        # These scenarios count escalation mail only: the same incident raised hundreds of times would
        # (rightly) propose a problem record to the team, a notification of another feature.
        with override_settings(RECURRENCE_THRESHOLD=10**9):
            return lifecycle.classify_incident(
                incident, actor=self.agent, domain=self.domain, category=self.category, impact=impact,
                urgency=urgency, team=self.team,
            )  # fmt: skip


def ladder(slug: str, *steps: dict[str, Any], team: Team | None = None) -> EscalationPolicy:
    policy = EscalationPolicy.objects.create(slug=slug, name=slug, team=team)
    for position, step in enumerate(steps, start=1):
        EscalationStep.objects.create(policy=policy, position=position, **step)
    return policy


def label(row: Notification) -> str:
    """sla_warning, sla_breach, escalated, or stepN for the Nth step of a ladder."""
    if row.event != "escalation_step":
        return row.event
    match = re.search(r"step (\d+)", row.payload["detail"])
    assert match, row.payload
    return f"step{match.group(1)}"


def told(incident_ids: list[int]) -> dict[str, set[tuple[str, str]]]:
    """Event label -> the (channel, recipient) pairs the outbox holds for it."""
    found: dict[str, set[tuple[str, str]]] = {}
    for row in Notification.objects.filter(incident_id__in=incident_ids):
        found.setdefault(label(row), set()).add((row.channel, row.recipient))
    return found


def settled(stack: Stack, incident_ids: list[int], *, rows: int = 0, fired: int = 0) -> bool:
    """No timer of these incidents due and undecided, at least `fired` fired timers and `rows` outbox rows,
    every row sent and on the wire."""
    timers = Timer.objects.filter(incident_id__in=incident_ids)
    if timers.filter(state=Timer.State.PENDING, due_at__lte=db_now()).exists():
        return False
    if timers.filter(state=Timer.State.FIRED).count() < fired:
        return False
    # Counted by the database first: polled every 0.2 s in a burst of 20,000 rows, reading them all each
    # time would load the process whose SMTP server and receiver time the arrivals.
    outbox = Notification.objects.filter(incident_id__in=incident_ids)
    counts = outbox.aggregate(total=Count("pk"), unsent=Count("pk", filter=~Q(state=Notification.State.SENT)))
    if counts["total"] < rows or counts["unsent"]:
        return False
    seen = arrivals(stack)
    return all(key in seen for key in outbox.values_list("key", flat=True))


def swept_since(moment: datetime, seconds: float = 1.0) -> bool:
    """A sweep began at least `seconds` after `moment` (the heartbeat holds the sweep's database time)."""
    return EngineHeartbeat.objects.filter(
        name="sweeper", beat_at__gte=moment + timedelta(seconds=seconds)
    ).exists()


def sending_keys() -> set[str]:
    return set(Notification.objects.filter(state=Notification.State.SENDING).values_list("key", flat=True))


@dataclass
class Run:
    """What a scenario did: its incidents, its stack, and what it measured on the way."""

    stack: Stack
    incidents: list[int]
    notes: dict[str, Any] = field(default_factory=dict)

    def rows(self) -> list[Notification]:
        return list(Notification.objects.filter(incident_id__in=self.incidents))

    def missing(self) -> set[str]:
        seen = arrivals(self.stack)
        return {row.key for row in self.rows() if row.key not in seen}

    def duplicates(self) -> dict[str, int]:
        return {key: len(times) for key, times in arrivals(self.stack).items() if len(times) > 1}

    def unexpected(self) -> set[str]:
        """Keys on the wire that no outbox row of these incidents holds."""
        return set(arrivals(self.stack)) - {row.key for row in self.rows()}

    def lateness(self, kinds: tuple[str, ...] = ()) -> dict[str, list[float]]:
        return lateness(self.stack, self.incidents, kinds)

    def figures(self, kinds: tuple[str, ...] = ()) -> str:
        late = self.lateness(kinds)
        return f"fired-due {describe(late['fired'])}\n    delivered-due {describe(late['delivered'])}"


def assert_never_early_and_prompt(run: Run, *, bound: float = GENEROUS) -> None:
    """Each fired timer fired at or after its due time (database clock), each message arrived at or after it
    (the receivers' clock on the same machine), and within `bound` seconds."""
    late = run.lateness()
    assert late["fired"], "nothing fired"
    assert min(late["fired"]) >= 0, describe(late["fired"])
    assert min(late["delivered"]) >= 0, describe(late["delivered"])
    assert max(late["delivered"]) <= bound, describe(late["delivered"])


def assert_once_each(run: Run, *, tolerated: frozenset[str] | set[str] = frozenset()) -> None:
    """Every outbox row sent and on the wire; nothing that no row holds; duplicates only among `tolerated`
    (in flight when a sender died), and those at most twice."""
    assert not run.missing(), f"never delivered: {run.missing()}"
    assert not run.unexpected(), f"delivered without an outbox row: {run.unexpected()}"
    duplicates = run.duplicates()
    assert set(duplicates) <= tolerated, f"duplicates {duplicates} beyond the in-flight {tolerated}"
    assert all(n == 2 for n in duplicates.values()), duplicates
    assert {row.state for row in run.rows()} == {"sent"}


# --- Scenarios (also run by bench/escalation_lateness.py) ----------------------------------------------------

P1_SHARES = {"warning": 85, "step1": 92, "breach": 100, "step2": 108, "step3": 116}


def p1_ladder(desk: Desk) -> EscalationPolicy:
    """Three steps around the breach: the team at 92 %, the manager at 108 %, the CIO at 116 %; each also to
    the webhook. With a 1-minute target the events are 4-5 s apart."""
    hook = {"notify_webhook": desk.hook}
    return ladder(
        f"{desk.team.slug}-p1",
        {"trigger": "sla_share", "share_percent": P1_SHARES["step1"], "notify_team": desk.team, **hook},
        {"trigger": "sla_share", "share_percent": P1_SHARES["step2"], "notify_manager": True, **hook},
        {
            "trigger": "sla_share",
            "share_percent": P1_SHARES["step3"],
            "notify_email": "cio@example.org",
            **hook,
        },
    )


def run_ladder(stack: Stack, *, incidents: int = 1) -> Run:
    """Scenario 1: P1 incidents nobody acknowledges: warning, step 1, breach, step 2, step 3."""
    desk = Desk("ops", stack.receiver.url)
    sla_policy(priority=1, response=1, resolution=240, warn=P1_SHARES["warning"], escalation=p1_ladder(desk))
    stack.start()
    # Received 45 s ago with a 60 s response target: the warning is due in 6 s, step 3 in 24.6 s.
    ids = [desk.raise_incident(received_ago=45).pk for _ in range(incidents)]
    wait_until(
        lambda: settled(stack, ids, rows=14 * incidents, fired=5 * incidents),
        SETTLE,
        "the ladder",
        stack.logs,
    )
    mark = db_now()
    wait_until(lambda: swept_since(mark), SETTLE, "two more sweeps", stack.logs)  # room for a duplicate
    return Run(stack, ids, {"desk": desk})


def run_ack_and_hold(stack: Stack) -> Run:
    """Scenario 2: one P1 acknowledged after its first step; one P2, escalated by hand to a vendor team
    (whose own ladder starts), put on hold before anything is due and resumed after its warning was due."""
    desk = Desk("ops", stack.receiver.url)
    vendor = Desk("vendor", stack.receiver.url)
    sla_policy(priority=1, response=1, resolution=240, warn=P1_SHARES["warning"], escalation=p1_ladder(desk))
    sla_policy(priority=2, response=1, resolution=240, warn=85)
    hook = {"notify_webhook": vendor.hook}
    ladder("vendor-own", {"trigger": "sla_share", "share_percent": 110, "notify_email": "duty@example.org", **hook},
           team=vendor.team)  # fmt: skip
    stack.start()

    acked = desk.raise_incident(received_ago=45)
    held = desk.raise_incident(received_ago=42, urgency=2)  # P2: warning in 9 s, breach in 18 s, step in 24 s
    held = lifecycle.escalate_incident(held, actor=desk.agent, team=vendor.team, reason="needs the vendor")
    before = due_times(held)
    held = lifecycle.hold_incident(held, actor=desk.agent, reason=Incident.HoldReason.AWAITING_VENDOR)
    held_at = held.held_at

    def step_one_delivered() -> bool:
        return any(
            r["json"]["incident"]["reference"] == acked.reference and r["json"]["event"] == "escalation_step"
            for r in stack.receiver.requests
        )

    wait_until(step_one_delivered, SETTLE, "step 1 of the acknowledged incident", stack.logs)
    acked = lifecycle.acknowledge_incident(acked, actor=desk.agent)

    # The held incident's warning comes due during the hold: wait until sweeps ran past it, then resume.
    wait_until(lambda: swept_since(before["warning"], 2), SETTLE, "sweeps past the held warning", stack.logs)
    fired_on_hold = Timer.objects.filter(incident=held, state=Timer.State.FIRED).count()
    held = lifecycle.resume_incident(Incident.objects.get(pk=held.pk), actor=desk.agent)
    resumed_at = held.updated_at
    after = due_times(held)

    last_ack_step = acked.received_at + timedelta(seconds=60 * P1_SHARES["step3"] / 100)
    wait_until(lambda: swept_since(last_ack_step, 3), SETTLE, "sweeps past the last acked step", stack.logs)
    wait_until(
        lambda: settled(stack, [held.pk], rows=11, fired=3), SETTLE, "the resumed incident", stack.logs
    )
    return Run(
        stack,
        [acked.pk, held.pk],
        {
            "desk": desk, "vendor": vendor, "acked": acked, "held": held, "before": before, "after": after,
            "held_at": held_at, "resumed_at": resumed_at, "fired_on_hold": fired_on_hold,
        },
    )  # fmt: skip


def due_times(incident: Incident) -> dict[str, datetime]:
    clock = SlaClock.objects.get(incident=incident, kind="response")
    step = Timer.objects.get(incident=incident, kind=Timer.Kind.ESCALATION_STEP, state=Timer.State.PENDING)
    assert clock.warn_at
    assert clock.due_at
    return {"warning": clock.warn_at, "breach": clock.due_at, "step": step.due_at}


def one_step_desk(stack: Stack, *, second_step: bool = False) -> Desk:
    """A ladder due shortly after reception: 1 % (6 s) of a 10-minute response target, to an on-call
    address and the webhook; optionally a second step at 2 % (12 s). The SLA timers are minutes away."""
    desk = Desk("ops", stack.receiver.url)
    notify = {"notify_email": "oncall@example.org", "notify_webhook": desk.hook}
    steps = [{"trigger": "sla_share", "share_percent": 1, **notify}]
    if second_step:
        steps.append({"trigger": "sla_share", "share_percent": 2, **notify})
    sla_policy(priority=1, response=10, resolution=240, escalation=ladder("ops-fast", *steps))
    return desk


def run_worker_kills(stack: Stack, *, incidents: int = 6) -> Run:
    """Scenario 3: SIGKILL the pool children mid-delivery (OOM-like), then the main process and its children
    (restarted after 1 s). The receiver holds each request for 2 s, so deliveries are in flight."""
    desk = one_step_desk(stack)
    stack.receiver.hold_seconds = 2.0
    stack.start()
    worker = stack.workers[-1]
    notes: dict[str, Any] = {"in_flight": set(), "kills": []}

    def in_flight(ids: list[int]) -> bool:
        """A webhook request of these incidents is held open by the receiver right now."""
        keys = set(Notification.objects.filter(incident_id__in=ids).values_list("key", flat=True))
        return any(r["answered_at"] is None and r["key"] in keys for r in stack.receiver.requests)

    batches = []
    for children_only in (True, False):
        ids = [desk.raise_incident().pk for _ in range(incidents)]
        batches.append(ids)
        wait_until(lambda ids=ids: in_flight(ids), SETTLE, "a delivery in flight", stack.logs)
        if children_only:
            pids = worker.children()
            for pid in pids:
                os.kill(pid, signal.SIGKILL)
        else:
            pids = worker.kill()
        killed = time.time()
        caught = sending_keys()
        notes["in_flight"] |= caught
        if not children_only:
            time.sleep(1.0)
            worker = stack.start_worker()
        wait_until(lambda ids=ids: settled(stack, ids, rows=2 * incidents), SETTLE, "redelivery", stack.logs)
        seen = arrivals(stack)
        recovered = max(max(seen[k]) for k in caught if k in seen) if caught else killed
        batch_keys = set(Notification.objects.filter(incident_id__in=ids).values_list("key", flat=True))
        drained = max(max(seen[k]) for k in batch_keys)
        notes["kills"].append(
            {"what": "pool children" if children_only else "main and children", "pids": pids,
             "in_flight": len(caught), "recovery_s": recovered - killed, "drained_s": drained - killed}
        )  # fmt: skip
    return Run(stack, [pk for ids in batches for pk in ids], notes)


def run_redis_kill(stack: Stack, *, incidents: int = 8, down: float = 10.0) -> Run:
    """Scenario 4: SIGKILL Redis (no persistence: the queued prompts are gone) while deliveries queue, use
    the API while it is down, restart it on the same port."""
    desk = one_step_desk(stack)
    other = TeamFactory(slug="network", email="network@example.org")
    stack.receiver.hold_seconds = 0.5  # a backlog in the broker when it dies
    stack.start()
    ids = [desk.raise_incident().pk for _ in range(incidents)]
    wait_until(lambda: stack.receiver.requests, SETTLE, "the first delivery", stack.logs)
    stack.redis.kill()
    killed = time.time()
    in_flight = sending_keys()
    # Prompts that were in Redis when it died (enqueued, not yet taken): the broker lost them, the sweep
    # republishes them once they are REPUBLISH_AFTER old.
    lost_prompts = Notification.objects.filter(
        incident_id__in=ids, state=Notification.State.PENDING, enqueued_at__isnull=False
    ).count()

    # The web while the broker is down: every call that enqueues something answers, and what it stored stays.
    client = APIClient()
    client.force_authenticate(desk.agent)
    calls: list[tuple[str, int, float]] = []

    def call(what: str, path: str, data: dict[str, Any]) -> Any:
        start = time.monotonic()
        response = client.post(path, data, format="json")
        calls.append((what, response.status_code, time.monotonic() - start))
        return response

    created = call("create", "/api/v1/incidents/", {"title": "Checkout down", "domain": "it_service",
                                                      "impact": 1, "urgency": 1})  # fmt: skip
    reference = created.json().get("reference", "") if created.status_code == 201 else ""
    call("classify", f"/api/v1/incidents/{reference}/classify/", {
        "domain": "it_service", "category": desk.category.path, "impact": 1, "urgency": 1, "team": desk.team.slug,
    })  # fmt: skip
    first, second = (Incident.objects.get(pk=pk) for pk in ids[:2])
    call("acknowledge", f"/api/v1/incidents/{first.reference}/acknowledge/", {})
    call("resolve", f"/api/v1/incidents/{first.reference}/resolve/", {"summary": "Rolled back the release."})
    call("escalate", f"/api/v1/incidents/{second.reference}/escalate/",
         {"team": other.slug, "reason": "network side"})  # fmt: skip
    during = [
        desk.raise_incident().pk for _ in range(incidents // 2)
    ]  # their steps come due while it is down
    api_incident = Incident.objects.filter(title="Checkout down").values_list("pk", flat=True).first()

    time.sleep(max(0.0, killed + down - time.time()))
    stack.redis.start()
    restarted = time.time()
    everything = [*ids, *during, *([api_incident] if api_incident else [])]

    def recovered() -> bool:
        # Celery 5.7 / kombu 5.7 sometimes exit the worker on the lost connection ("Unrecoverable error:
        # AttributeError ... 'hostname'" while restoring unacked messages): restarted as compose would.
        stack.supervise()
        return settled(stack, everything)

    wait_until(recovered, SETTLE, "delivery after Redis is back", stack.logs)
    last = max(t for times in arrivals(stack).values() for t in times)
    return Run(
        stack,
        everything,
        {"calls": calls, "reference": reference, "api_incident": api_incident, "in_flight": in_flight,
         "down_s": restarted - killed, "drained_s": last - restarted, "escalated": second.pk,
         "lost_prompts": lost_prompts, "crashes": list(stack.crashes)},
    )  # fmt: skip


def run_beat_faults(stack: Stack, *, incidents: int = 5, down: float = 10.0) -> Run:
    """Scenario 5: beat SIGKILLed for `down` s while steps come due; then two beats at once."""
    desk = one_step_desk(stack, second_step=True)
    stack.start()
    beat = stack.beats[-1]
    first = [desk.raise_incident().pk for _ in range(incidents)]
    beat.kill()
    killed = time.time()
    time.sleep(max(0.0, killed + down - time.time()))
    fired_while_down = Timer.objects.filter(incident_id__in=first, state=Timer.State.FIRED).count()
    stack.start(workers=0, beats=2)  # back, and a second one: every sweep is sent twice from now on
    second = [desk.raise_incident().pk for _ in range(incidents)]
    everything = first + second
    wait_until(
        lambda: settled(stack, everything, rows=4 * len(everything), fired=2 * len(everything)),
        SETTLE, "all steps", stack.logs,
    )  # fmt: skip
    mark = db_now()
    wait_until(lambda: swept_since(mark, 2), SETTLE, "more sweeps", stack.logs)
    senders = [
        b.log.read_text(errors="replace").count("Sending due task escalation-sweep")
        for b in stack.live(stack.beats)
    ]
    return Run(
        stack,
        everything,
        {"first": first, "second": second, "fired_while_down": fired_while_down, "down_s": down,
         "sweeps_sent_by_live_beats": senders},
    )  # fmt: skip


def run_webhook_down(stack: Stack, *, incidents: int = 2) -> Run:
    """Scenario 6: the webhook answers 503 until each delivery failed 3 times, then 204: retried with the
    back-off (1, 2, 4 s), delivered once. A second endpoint that never recovers ends dead, with an alert."""
    desk = Desk("ops", stack.receiver.url)
    with Receiver() as dead_end:
        dead_end.fail_with = 503
        gone = WebhookEndpoint.objects.create(slug="gone", name="Gone", url=dead_end.url)
        steps = [
            {"trigger": "sla_share", "share_percent": 1, "notify_webhook": desk.hook},
            {"trigger": "sla_share", "share_percent": 1, "notify_webhook": gone},
        ]
        sla_policy(priority=1, response=10, resolution=240, escalation=ladder("ops-hooks", *steps))
        stack.receiver.fail_with = 503
        stack.start()
        ids = [desk.raise_incident().pk for _ in range(incidents)]

        def failed_three_times() -> bool:
            attempts = [a["key"] for a in stack.receiver.attempts]
            return len(set(attempts)) == incidents and all(attempts.count(k) >= 3 for k in set(attempts))

        wait_until(failed_three_times, SETTLE, "three failed attempts each", stack.logs)
        stack.receiver.fail_with = None
        recovered = time.time()
        hooks = Notification.objects.filter(incident_id__in=ids, webhook=desk.hook)
        wait_until(
            lambda: hooks.filter(state="sent").count() == incidents,
            SETTLE,
            "delivery after recovery",
            stack.logs,
        )
        dead = Notification.objects.filter(incident_id__in=ids, webhook=gone)
        wait_until(lambda: dead.filter(state="dead").count() == incidents, SETTLE, "dead letters", stack.logs)
        dead_attempts = list(dead_end.attempts)
    return Run(
        stack,
        ids,
        {"hook": desk.hook, "gone": gone, "recovered": recovered, "attempts": list(stack.receiver.attempts),
         "dead_attempts": dead_attempts},
    )  # fmt: skip


def run_simultaneous_breaches(
    stack: Stack,
    *,
    incidents: int,
    factor: float = 1.2,
    margin: float = 5.0,
    distinct_titles: bool = False,
    bulk: bool = False,
) -> Run:
    """Scenario 7: `incidents` P1 incidents whose response targets breach at one instant (warning at 99 %).

    How long classifying takes is measured first on pilot incidents (then cancelled); the common instant is
    put `factor` times that estimate plus `margin` seconds ahead, with a response target long enough to hold
    it. `overran_s` says how late the last incident was classified after that instant (0: none was).
    `distinct_titles` gives each incident a title of its own (a burst of one title makes classifying
    slower and slower through the recurrence check, which is not what this scenario measures).
    `bulk`: two incidents are reported and classified through the services, the others are written
    set-wise as copies of the first (`copy_incidents`), and the second is checked to have the rows of a copy;
    then the measured part is only the sweep and the deliveries (10,000 through the services take hours
    on a loaded machine)."""
    desk = Desk("bulk", stack.receiver.url, quiet=True)
    policy = sla_policy(priority=1, response=60, resolution=24 * 60, warn=99)
    stack.start()

    def title() -> str:
        return (
            f"{secrets.token_hex(5)} {secrets.token_hex(5)} down"
            if distinct_titles
            else "Payment API answers 502"
        )

    pilots = [desk.raise_incident()]  # warms up, not timed
    start = time.monotonic()
    pilots += [desk.raise_incident() for _ in range(3)]
    per_incident = (time.monotonic() - start) / 3
    for pilot in pilots:
        lifecycle.cancel_incident(pilot, actor=desk.agent, reason=Incident.CancelReason.WITHDRAWN)
    if bulk:
        per_incident = 2 * per_incident / incidents + 1 / 2000  # two through the services, the rest copied
    setup = per_incident * incidents * factor + margin
    minutes = ceil((setup + 10) / 60)
    SlaPolicy.objects.filter(pk=policy.pk).update(response_minutes=minutes)
    breach_at = db_now() + timedelta(seconds=setup)
    received_at = breach_at - timedelta(minutes=minutes)
    started = time.monotonic()
    if bulk:
        template, check = (desk.raise_incident(received_at=received_at, title=title()) for _ in range(2))
        ids = [template.pk, check.pk, *copy_incidents(template, [title() for _ in range(incidents - 2)])]
        assert rows_of(check.pk) == rows_of(ids[2]), "a copy differs from an incident the services wrote"
    else:
        ids = [desk.raise_incident(received_at=received_at, title=title()).pk for _ in range(incidents)]
    created_s = time.monotonic() - started
    overran = max(0.0, (db_now() - breach_at).total_seconds())
    # The database is asked only once the SMTP server holds as many messages as there are rows to send:
    # polling it every 0.2 s with thousands of ids would take the cores the burst is measured on.
    wait_until(
        lambda: len(stack.smtp.messages) >= 2 * incidents
        and settled(stack, ids, rows=2 * incidents, fired=2 * incidents),
        setup + SETTLE + incidents / 5, f"{incidents} breaches", stack.logs,
    )  # fmt: skip
    mark = db_now()
    wait_until(lambda: swept_since(mark, 2), SETTLE, "more sweeps", stack.logs)
    return Run(
        stack,
        ids,
        {"breach_at": breach_at, "created_s": round(created_s, 1), "per_incident_s": round(per_incident, 4),
         "overran_s": round(overran, 1), "bulk": bulk},
    )  # fmt: skip


# What an incident's report and classification wrote, by table, apart from ids, the incident's title and the
# moments of the writes themselves (SLA clocks count from `received_at`, copied as it is).
_WRITTEN_AT = {
    "id",
    "incident_id",
    "title",
    "tracking_token",
    "at",
    "created_at",
    "updated_at",
    "classified_at",
}


def _columns(model: type[Any], *, leave_out: set[str]) -> list[str]:
    return [f.column for f in model._meta.concrete_fields if f.column not in leave_out]


def copy_incidents(template: Incident, titles: list[str]) -> list[int]:
    """Write one incident per title, set-wise, with the rows the services wrote for `template` (reported
    and classified, its SLA clocks started, their timers armed): its incident row, timeline entries, clocks
    and timers, each copied for all the new incidents in one INSERT ... SELECT. The reporting triggers fire
    as for any insert. For a template with SLA timers only (no escalation chain): checked here."""
    timers = Timer.objects.filter(incident_id=template.pk)
    assert timers.exists(), "a template with SLA timers"
    assert not timers.filter(clock__isnull=True).exists(), "SLA timers only"
    assert all(re.fullmatch(r"sla:\d+:\d+:(warn|breach)", t.key) for t in timers)
    incident_cols = ", ".join(_columns(Incident, leave_out={"id", "title", "tracking_token"}))
    entry_cols = ", ".join(_columns(TimelineEntry, leave_out={"id", "incident_id"}))
    clock_cols = ", ".join(_columns(SlaClock, leave_out={"id", "incident_id"}))
    timer_cols = ", ".join(_columns(Timer, leave_out={"id", "key", "incident_id", "clock_id"}))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO incidents_incident (title, tracking_token, {incident_cols}) "  # noqa: S608 (column names from the models)
            f"SELECT t.title, t.token, {incident_cols} FROM incidents_incident, unnest(%s::text[], %s::text[]) WITH ORDINALITY AS t(title, token, n) "
            "WHERE id = %s ORDER BY t.n RETURNING id",
            [titles, [secrets.token_urlsafe(32) for _ in titles], template.pk],  # as Incident.save()
        )  # fmt: skip
        ids = [pk for (pk,) in cursor.fetchall()]
        cursor.execute(
            f"INSERT INTO incidents_timelineentry (incident_id, {entry_cols}) "  # noqa: S608 (column names from the models)
            f"SELECT n.id, {entry_cols} FROM incidents_timelineentry, unnest(%s::bigint[]) AS n(id) "
            "WHERE incident_id = %s ORDER BY n.id, incidents_timelineentry.id",
            [ids, template.pk],
        )  # fmt: skip
        cursor.execute(
            f"INSERT INTO escalation_slaclock (incident_id, {clock_cols}) "  # noqa: S608 (column names from the models)
            f"SELECT n.id, {clock_cols} FROM escalation_slaclock, unnest(%s::bigint[]) AS n(id) "
            "WHERE incident_id = %s ORDER BY n.id, escalation_slaclock.id",
            [ids, template.pk],
        )  # fmt: skip
        qualified = ", ".join(f"t.{column}" for column in timer_cols.split(", "))
        cursor.execute(
            f"INSERT INTO escalation_timer (key, incident_id, clock_id, {timer_cols}) "  # noqa: S608 (column names from the models)
            f"SELECT 'sla:' || c.id || ':' || c.epoch || ':' || split_part(t.key, ':', 4), c.incident_id, c.id, {qualified} "
            "FROM escalation_timer t JOIN escalation_slaclock tc ON tc.id = t.clock_id "
            "JOIN escalation_slaclock c ON c.incident_id = ANY(%s) AND (c.kind, c.name, c.cycle) = (tc.kind, tc.name, tc.cycle) "
            "WHERE t.incident_id = %s ORDER BY c.id, t.id",
            [ids, template.pk],
        )  # fmt: skip
    return ids


def rows_of(incident_id: int) -> dict[str, Any]:
    """The rows an incident has in the tables its report and classification write, comparable across
    incidents (see `_WRITTEN_AT`); timer keys name their clock by kind, not id."""
    clocks = {c.pk: f"{c.kind}:{c.name}:{c.cycle}" for c in SlaClock.objects.filter(incident_id=incident_id)}

    def plain(rows: Any, leave_out: set[str] = _WRITTEN_AT) -> list[dict[str, Any]]:
        return sorted(
            ({k: v for k, v in row.items() if k not in leave_out} for row in rows.values()), key=repr
        )

    timers = plain(Timer.objects.filter(incident_id=incident_id), _WRITTEN_AT | {"clock_id"})
    for timer in timers:
        _, clock, epoch, what = timer["key"].split(":")
        timer["key"] = f"{clocks[int(clock)]}:{epoch}:{what}"
    return {
        "incident": plain(Incident.objects.filter(pk=incident_id)),
        "timeline": plain(TimelineEntry.objects.filter(incident_id=incident_id)),
        "clocks": plain(SlaClock.objects.filter(incident_id=incident_id)),
        "timers": sorted(timers, key=repr),
        "notifications": plain(Notification.objects.filter(incident_id=incident_id)),
        "chains": IncidentEscalation.objects.filter(incident_id=incident_id).count(),
    }


# --- Tests ---------------------------------------------------------------------------------------------------


@pytest.fixture
def receiver():
    with Receiver() as hook:
        yield hook


@pytest.fixture
def make_stack(tmp_path, receiver):
    """Starts Redis and the SMTP server; a test starts its worker(s) and beat(s). Everything is killed at the
    end, before the database is flushed."""
    require_service("redis-server", have_redis_server(), "apt-get install redis-server")
    require_service("aiosmtpd", have_aiosmtpd(), "pip install -e '.[dev]'")
    stacks: list[Stack] = []

    def make(**options: Any) -> Stack:
        stack = Stack(tmp_path, database_url(connection.settings_dict), receiver=receiver, **options)
        stacks.append(stack.__enter__())
        return stack

    yield make
    for stack in stacks:
        stack.close()


def test_an_unacknowledged_p1_tells_the_right_people_in_order_each_once_never_early(make_stack):
    run = run_ladder(make_stack())
    desk: Desk = run.notes["desk"]
    everyone, boss, hook = desk.everyone(), ("email", desk.boss.email), ("webhook", desk.hook.url)
    assert told(run.incidents) == {
        "sla_warning": everyone,
        "step1": everyone | {hook},
        "sla_breach": everyone,  # the team and its manager (who is in it)
        "step2": {boss, hook},
        "step3": {("email", "cio@example.org"), hook},
    }
    assert_once_each(run)
    assert {row.attempts for row in run.rows()} == {1}
    assert_never_early_and_prompt(run)

    # Decided in the order they were due, each exactly once (one fired row per timer, by construction)...
    (incident,) = run.incidents
    timers = list(
        Timer.objects.filter(incident_id=incident, state=Timer.State.FIRED).order_by("fired_at", "id")
    )
    assert [(t.kind, t.step) for t in timers] == [
        ("sla_warning", None), ("escalation_step", 0), ("sla_breach", None), ("escalation_step", 1),
        ("escalation_step", 2),
    ]  # fmt: skip
    assert [t.due_at for t in timers] == sorted(t.due_at for t in timers)
    steps = Incident.objects.get(pk=incident).timeline.filter(kind="escalation", action="step")
    assert [e.data["step"] for e in steps.order_by("id")] == [1, 2, 3]
    # ...and each person got them in that order, by e-mail and by webhook.
    order = ["sla_warning", "step1", "sla_breach", "step2", "step3"]
    seen = arrivals(run.stack)
    by_address: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for row in run.rows():
        by_address.setdefault((row.channel, row.recipient), []).append((min(seen[row.key]), label(row)))
    for address, received in by_address.items():
        labels = [name for _, name in sorted(received)]
        assert labels == sorted(labels, key=order.index), (address, labels)
    # The e-mails went to the row's recipient with the key as Message-ID; the webhooks were signed.
    for message in run.stack.smtp.messages:
        row = Notification.objects.get(key=message["key"])
        assert message["to"] == [row.recipient]
        assert message["event"] == row.event
    for request in run.stack.receiver.requests:
        headers = request["headers"]
        mac = hmac.new(
            desk.hook.secret.encode(),
            f"{headers['X-IncidentDesk-Id']}.{headers['X-IncidentDesk-Timestamp']}.".encode()
            + request["body"],
            hashlib.sha256,
        )
        assert headers["X-IncidentDesk-Signature"] == f"v1={mac.hexdigest()}"
    print(f"ladder: {run.figures()}")


def test_acknowledging_stops_later_steps_and_a_hold_shifts_every_due_time(make_stack):
    run = run_ack_and_hold(make_stack())
    notes = run.notes
    desk, vendor, acked, held = notes["desk"], notes["vendor"], notes["acked"], notes["held"]

    # Acknowledged after step 1 (and before step 3 was due): the response clock is met, nothing is decided,
    # queued or sent after the acknowledgement, and the ladder's pending step was withdrawn.
    ack = acked.acknowledged_at
    assert ack < acked.received_at + timedelta(seconds=60 * P1_SHARES["step3"] / 100)
    assert told([acked.pk])["step1"] == desk.everyone() | {("webhook", desk.hook.url)}
    assert all(t.fired_at < ack for t in Timer.objects.filter(incident=acked, state=Timer.State.FIRED))
    assert not Notification.objects.filter(incident=acked, created_at__gte=ack).exists()
    assert Timer.objects.filter(incident=acked, kind=Timer.Kind.ESCALATION_STEP, state="cancelled").exists()
    pending = Timer.objects.filter(incident=acked, state=Timer.State.PENDING)
    assert not pending.filter(Q(kind=Timer.Kind.ESCALATION_STEP) | Q(clock__kind="response"))
    assert SlaClock.objects.get(incident=acked, kind="response").status == "met"
    stopped = acked.timeline.get(kind="escalation", action="stopped")
    assert stopped.data["reason"] == "acknowledged"
    assert "step3" not in told([acked.pk])

    # Held before anything was due, resumed after its warning was due: nothing fired on hold, and the
    # warning, the breach and the vendor's ladder step all moved by the time it was held.
    assert notes["fired_on_hold"] == 0
    paused = (notes["resumed_at"] - notes["held_at"]).total_seconds()
    assert paused > 5
    for name in ("warning", "breach", "step"):
        moved = (notes["after"][name] - notes["before"][name]).total_seconds()
        assert abs(moved - paused) <= 1.5, (name, moved, paused)
    fired = Timer.objects.filter(incident=held, state=Timer.State.FIRED)
    assert sorted(t.kind for t in fired) == ["escalation_step", "sla_breach", "sla_warning"]
    assert all(t.fired_at >= t.due_at >= notes["resumed_at"] for t in fired)
    assert not Timer.objects.filter(
        incident=held, fired_at__gte=notes["held_at"], fired_at__lt=notes["resumed_at"]
    )
    assert told([held.pk]) == {
        "escalated": vendor.everyone(),
        "sla_warning": vendor.everyone(),
        "sla_breach": vendor.everyone(),
        "step1": {("email", "duty@example.org"), ("webhook", vendor.hook.url)},
    }
    assert_once_each(run)
    late = lateness(run.stack, [held.pk])
    assert min(late["fired"]) >= 0
    assert min(late["delivered"]) >= 0
    assert max(late["delivered"]) <= GENEROUS
    print(f"ack and hold: {run.figures()}")


def test_a_worker_killed_mid_delivery_loses_nothing_and_repeats_only_what_was_in_flight(make_stack):
    run = run_worker_kills(make_stack(lease_seconds=5))
    in_flight = run.notes["in_flight"]
    assert all(kill["in_flight"] >= 1 for kill in run.notes["kills"]), run.notes["kills"]
    assert len(run.rows()) == 2 * len(run.incidents)  # an e-mail and a webhook per incident
    assert_once_each(run, tolerated=in_flight)
    # Deduplicated by key, as receivers do, each notification had its effect once.
    rows = run.rows()
    assert set(run.stack.receiver.effects()) == {r.key for r in rows if r.channel == "webhook"}
    assert set(run.stack.smtp.effects()) == {r.key for r in rows if r.channel == "email"}
    assert Timer.objects.filter(incident_id__in=run.incidents, state="fired").count() == len(run.incidents)
    # Prompts the killed worker had taken but not started wait for the sweep to republish them (30 s).
    assert_never_early_and_prompt(run, bound=REPUBLISH_AFTER.total_seconds() + GENEROUS)
    print(f"worker kills: {run.notes['kills']} duplicates={run.duplicates()}\n    {run.figures()}")


def test_redis_killed_and_restarted_delivers_everything_and_the_web_keeps_working(make_stack):
    run = run_redis_kill(make_stack())
    calls = run.notes["calls"]
    assert [(what, status) for what, status, _ in calls] == [
        ("create", 201), ("classify", 200), ("acknowledge", 200), ("resolve", 200), ("escalate", 200),
    ], calls  # fmt: skip
    assert all(seconds < GENEROUS for _, _, seconds in calls), calls
    api_incident = Incident.objects.get(pk=run.notes["api_incident"])
    assert api_incident.state == "classified"
    assert Timer.objects.filter(incident=api_incident).exists()  # its clocks and ladder were stored
    escalated = Notification.objects.filter(incident_id=run.notes["escalated"], event="escalated")
    assert escalated.exists()  # queued by the web while the broker was down, delivered after
    assert_once_each(run, tolerated=run.notes["in_flight"])
    fired = Timer.objects.filter(incident_id__in=run.incidents, state=Timer.State.FIRED)
    assert all(t.fired_at >= t.due_at for t in fired)
    assert run.notes["drained_s"] <= 60, run.notes  # the sweep republishes what Redis lost (after 30 s)
    print(
        f"redis: crashes {run.notes['crashes']}, down {run.notes['down_s']:.1f} s, "
        f"drained {run.notes['drained_s']:.1f} s after restart, "
        f"api {[(w, s, round(t, 2)) for w, s, t in calls]}\n    {run.figures()}"
    )


def test_beat_killed_for_a_while_and_two_beats_at_once_miss_nothing_and_double_nothing(make_stack):
    run = run_beat_faults(make_stack())
    assert run.notes["fired_while_down"] == 0  # no beat, no sweep: the kill was real...
    assert_once_each(run)  # ...and nothing was missed once it was back, nor doubled by two beats
    assert len(run.notes["sweeps_sent_by_live_beats"]) == 2
    assert all(n > 0 for n in run.notes["sweeps_sent_by_live_beats"])
    assert Timer.objects.filter(incident_id__in=run.incidents, state="fired").count() == 2 * len(
        run.incidents
    )
    late = run.lateness()
    assert min(late["fired"]) >= 0
    assert min(late["delivered"]) >= 0
    assert max(late["delivered"]) <= run.notes["down_s"] + GENEROUS
    second = lateness(run.stack, run.notes["second"])
    print(f"beat: after the outage {run.figures()}\n    two beats: {describe(second['delivered'])}")


def test_a_webhook_down_is_retried_with_backoff_and_delivered_once_it_returns(make_stack):
    run = run_webhook_down(make_stack(backoff="1,2,4"))
    hooks = Notification.objects.filter(incident_id__in=run.incidents, webhook=run.notes["hook"])
    for row in hooks:
        attempts = sorted(a["at"] for a in run.notes["attempts"] if a["key"] == row.key)
        statuses = [
            a["status"] for a in sorted(run.notes["attempts"], key=lambda a: a["at"]) if a["key"] == row.key
        ]
        assert statuses == [503, 503, 503, 204], statuses
        gaps = [b - a for a, b in itertools.pairwise(attempts)]
        assert all(gap >= wait for gap, wait in zip(gaps, [1, 2, 4], strict=False)), (
            gaps
        )  # never before the back-off
        assert (row.state, row.attempts) == ("sent", 4)
        assert attempts[-1] >= run.notes["recovered"]
    assert len(run.stack.receiver.requests) == len(run.incidents)  # accepted once each
    assert not run.stack.receiver.duplicates()
    dead = Notification.objects.filter(incident_id__in=run.incidents, webhook=run.notes["gone"])
    for row in dead:
        assert (row.state, row.attempts, row.last_error) == ("dead", 4, "RuntimeError: HTTP 503")
        assert row.incident.timeline.filter(kind="escalation", action="notification_dead").exists()
    assert len(run.notes["dead_attempts"]) == 4 * len(run.incidents)  # 1 + len(back-off), then no more


def test_two_hundred_incidents_breaching_at_once_all_fire_none_twice(make_stack):
    run = run_simultaneous_breaches(make_stack(), incidents=200)
    breaches = Timer.objects.filter(
        incident_id__in=run.incidents, kind=Timer.Kind.SLA_BREACH, clock__kind="response"
    )
    assert breaches.filter(state=Timer.State.FIRED).count() == 200
    assert len({t.due_at for t in breaches}) == 1  # one instant for all
    assert_once_each(run)
    assert len(run.rows()) == 400  # a warning and a breach to the desk address, per incident
    late = run.lateness()
    assert min(late["fired"]) >= 0
    assert min(late["delivered"]) >= 0
    assert max(late["delivered"]) <= 4 * GENEROUS  # a burst: bounded by delivery throughput (see the bench)
    for incident in Incident.objects.filter(pk__in=run.incidents[:20]):
        assert incident.timeline.filter(kind="sla", action="breached").count() == 1
    # Each clock keeps both marks, also where the warning and the breach were decided in one sweep.
    clocks = SlaClock.objects.filter(incident_id__in=run.incidents, kind="response")
    assert all(c.warned_at and c.breached_at and c.warned_at <= c.breached_at for c in clocks)
    print(f"200 breaches: {run.notes}\n    {run.figures(('sla_breach',))}")


def test_incidents_copied_set_wise_have_the_rows_the_services_write_and_breach_alike():
    """The burst bench's setup (`copy_incidents`): a copy of an incident reported and classified through the
    services has the same incident row, timeline, SLA clocks and timers as another one written that way."""
    desk = Desk("copies", "http://127.0.0.1:9/hook", quiet=True)
    sla_policy(priority=1, response=10, resolution=60, warn=50)
    received_at = db_now() - timedelta(
        minutes=20
    )  # response warned at 5, breached at 10; resolution at 30, 60
    template, check = (
        desk.raise_incident(received_at=received_at, title=f"Printer {n} jams") for n in (1, 2)
    )
    copies = copy_incidents(template, ["Scanner jams", "Fax jams", "Plotter jams"])
    assert len(copies) == 3
    expected = rows_of(check.pk)
    assert len(expected["timeline"]) == 4  # reported, classified, two clocks started
    assert len(expected["clocks"]) == 2
    assert len(expected["timers"]) == 4
    for pk in copies:
        assert rows_of(pk) == expected
    assert Incident.objects.get(pk=copies[1]).title == "Fax jams"
    # The sweep decides them as it decides the incidents the services wrote: the response warning and breach.
    result = sweep()
    fired = Timer.objects.filter(state=Timer.State.FIRED)
    assert result.fired == fired.count() == 2 * 5
    assert set(fired.values_list("clock__kind", flat=True)) == {"response"}
    assert {pk: fired.filter(incident_id=pk).count() for pk in copies} == dict.fromkeys(copies, 2)
