"""Sixty days of desk history, played through the real lifecycle under a moving clock (time-machine).

Every incident is a small process (a generator) that acts through ``incidents.services``,
``incidents.lifecycle``, ``incidents.major`` and ``incidents.problems`` and then says when it acts
next. The processes run in time order; between two actions the clock moves forward and the desk's
periodic jobs run at the instants they would have run: the escalation engine's sweep at every due
timer (so SLA warnings, breaches and escalation steps are decided by the engine, as they happen),
the quiet-period auto-close every hour and the follow-up reminders every morning. Notifications
are delivered through the real delivery function (the one the Celery task runs, called in this process)
the moment their transaction commits, into a mailbox that keeps nothing: they belong to the past and nobody should get them now.

Everything random comes from a generator seeded per incident, so the same end instant gives the same
history, whatever order the processes interleave in.
"""

# ruff: noqa: S311 - a seeded generator, for a demo history that is the same on every run

from __future__ import annotations

import functools
import heapq
import math
import random
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from types import SimpleNamespace
from typing import Any
from unittest import mock
from zoneinfo import ZoneInfo

import holidays
from django.conf import settings
from django.db import connection, transaction
from django.test.utils import override_settings

from escalation import engine
from escalation.models import Notification, Timer
from incidents import lifecycle, major, problems, services
from incidents.models import Category, Domain, FollowUpAction, Incident, Problem, Team

from .catalogue import DEMO_INCIDENTS, DemoIncident, Step
from .stories import (
    ANONYMOUS_REPORTERS,
    NOTES,
    QUESTIONS,
    RATING_COMMENTS,
    REPLIES,
    REPORTER_ANSWERS,
    STORIES,
    Story,
)

BERLIN = ZoneInfo("Europe/Berlin")
HOLIDAYS = holidays.country_holidays("DE", subdiv="BE")
SEED = 2026
S = Incident.State
# Who works where: the responder of each team, and who triages a domain on the desk.
RESPONDER = {
    "service-desk": "agent",
    "network-ops": "specialist",
    "security-ops": "secagent",
    "nursing-safety": "nurse",
}
TRIAGE = {"it_service": "agent", "security": "secagent", "medical": "nurse"}
# Arrivals per day (weekday, weekend); medical grows over the period (see `medical_rate`).
RATES = {"it_service": (2.4, 0.4), "security": (0.6, 0.25)}
# Hour of day -> weight of arrivals (Berlin time).
OFFICE_HOURS = {6: 1, 7: 3, 8: 9, 9: 12, 10: 11, 11: 9, 12: 5, 13: 8, 14: 9, 15: 7, 16: 5, 17: 3, 18: 1, 19: 1, 20: 1, 21: 1}  # fmt: skip
WARD_HOURS = {h: (2 if h < 6 else 5 if h < 15 else 4 if h < 22 else 2) for h in range(24)}
# The last hand-written incident to arrive: its presence means a history ran to its end.
LAST_ARRIVAL = "demo-3"
# How long after the previous step each kind of hand-written step happens.
CURATED_GAPS = {
    "classify": timedelta(minutes=12),
    "acknowledge": timedelta(minutes=9),
    "comment": timedelta(minutes=35),
    "escalate": timedelta(minutes=40),
    "hold": timedelta(minutes=25),
    "resume": timedelta(hours=20),
    "resolve": timedelta(hours=2, minutes=30),
    "reopen": timedelta(hours=16),
    "close": timedelta(hours=20),
    "cancel": timedelta(minutes=30),
}

Process = Generator[datetime, None, None]


class HistoryError(Exception):
    """A step of the history was refused: the demo's script and the desk's rules disagree."""


def is_office(at: datetime) -> bool:
    local = at.astimezone(BERLIN)
    return local.weekday() < 5 and local.date() not in HOLIDAYS and 8 <= local.hour < 18


def office(at: datetime, rng: random.Random) -> datetime:
    """`at` if it falls in office hours (Mon-Fri 08-18 Berlin, public holidays off), else a few minutes
    after the next office morning."""
    if is_office(at):
        return at
    local = at.astimezone(BERLIN)
    day = local.date() if local.hour < 8 else local.date() + timedelta(days=1)
    while day.weekday() >= 5 or day in HOLIDAYS:
        day += timedelta(days=1)
    return datetime.combine(day, time(8), BERLIN) + timedelta(minutes=rng.uniform(3, 50))


def poisson(rng: random.Random, rate: float) -> int:
    """Knuth's method; the rates here are small."""
    limit, count, product = math.exp(-rate), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def medical_rate(progress: float, weekend: bool) -> float:
    """The ward's reporting grows after the speak-up campaign half-way through the period."""
    base = 0.5 + (0.9 * (progress - 0.4) / 0.6 if progress > 0.4 else 0.0)
    return base * (0.8 if weekend else 1.0)


def near_miss_share(progress: float) -> float:
    """More of what the wards report is caught before it reaches the patient: the near-miss trend."""
    return 0.3 + 0.4 * progress


def hours(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(hours=rng.uniform(low, high))


def minutes(rng: random.Random, low: float, high: float) -> timedelta:
    return timedelta(minutes=rng.uniform(low, high))


@dataclass
class Plan:
    """One generated incident: drawn in full before the history runs."""

    key: str
    arrival: datetime
    story: Story
    progress: float  # 0 at the start of the period, 1 at its end
    rng: random.Random
    scenario: str = "standard"
    late: bool = False
    outcome: str = ""
    harm_level: str = ""


@dataclass
class Summary:
    incidents: int = 0
    sweeps: int = 0
    curated: dict[str, int] = field(default_factory=dict)


class History:
    """Plays the demo's history up to `end`. Call `run()` once, on a database without demo incidents."""

    def __init__(
        self,
        *,
        end: datetime,
        days: int,
        users: dict[str, Any],
        teams: dict[str, Team],
        categories: dict[tuple[str, str], Category],
    ) -> None:
        self.end = end
        self.start = end - timedelta(days=days)
        self.days = days
        self.users = users
        self.teams = teams
        self.categories = categories
        self.domains = {d.slug: d for d in Domain.objects.all()}
        self.plans: list[tuple[datetime, int, str, Plan, None]] = []  # the generated incidents, for tests
        self.queue: list[tuple[datetime, int, str, Process | None, Callable[[], Process] | None]] = []
        self.sequence = 0
        self.summary = Summary()
        self.clock: Any = None
        self.now = self.start  # the moving clock's time: it only goes forward
        self.next_hour = self.start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        self.auto_close_due: datetime | None = None  # the first beat the quiet-period job can close anything

    # -- the engine -----------------------------------------------------------------------------------

    def schedule(self, at: datetime, name: str, factory: Callable[[], Process]) -> None:
        self.sequence += 1
        heapq.heappush(self.queue, (at, self.sequence, name, None, factory))

    def run(self) -> Summary:
        try:
            import time_machine  # the `run` extra: demo data only, never the production image
        except ImportError as error:  # pragma: no cover - the dev and run extras have it
            raise HistoryError("seed_demo needs the run extra: pip install '.[run]'") from error
        self._plan()
        with (
            time_machine.travel(self.start, tick=False) as clock,
            # DEBUG off: the local settings' query log would keep every query of the run.
            override_settings(EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend", DEBUG=False),
            _direct_delivery(),
            _seeding_connection(),
        ):
            self.clock = clock
            while self.queue:
                at, seq, name, process, factory = heapq.heappop(self.queue)
                if at > self.end:
                    continue  # what would happen later has not happened yet: the incident stays open
                self._advance(at)
                if process is None and factory is not None:
                    process = factory()
                assert process is not None  # noqa: S101 - one of the two is always set
                try:
                    with transaction.atomic():
                        # A process's last step ends in StopIteration: caught inside, so that it commits.
                        following = next(process, None)
                except Exception as exc:
                    raise HistoryError(f"{name} at {at:%Y-%m-%d %H:%M}: {exc}") from exc
                if following is None:
                    continue
                heapq.heappush(self.queue, (max(following, at), seq, name, process, None))
            self._advance(self.end)
        return self.summary

    def _advance(self, to: datetime) -> None:
        """Move the clock to `to`, running every sweep and hourly job that falls due on the way."""
        while True:
            due = _next_due_timer(to)
            # The sweeper's beat: a due timer is decided within the minute, and never before the present
            # (a timer armed already overdue, e.g. on resuming, is decided at the next beat).
            tick = None
            if due is not None:
                tick = min(max(due.replace(second=0, microsecond=0) + timedelta(minutes=1), self.now), to)
            if self.next_hour <= to and (tick is None or self.next_hour <= tick):
                self._move(self.next_hour)
                self._hourly(self.next_hour)
                self.next_hour += timedelta(hours=1)
                continue
            if tick is None:
                break
            self._move(tick)
            engine.sweep(now=tick)
            self.summary.sweeps += 1
        self._move(to)

    def _move(self, to: datetime) -> None:
        if to > self.now:
            self.now = to
            self.clock.move_to(to)

    def _hourly(self, now: datetime) -> None:
        quiet = settings.INCIDENT_AUTO_CLOSE_AFTER
        # The quiet-period job runs at the first beat where it can close something, as on the real desk, and
        # is left out at the beats where it could not (most of the 1,440 of two months): nothing is due before
        # the oldest resolution still open plus the quiet period, and whatever is resolved later is resolved
        # at the moving clock, so not due before this beat plus the quiet period.
        if self.auto_close_due is None or now >= self.auto_close_due:
            lifecycle.auto_close_resolved(now=now, quiet_period=quiet)
            oldest = (
                Incident.objects.filter(state=S.RESOLVED, resolved_at__isnull=False)
                .order_by("resolved_at")
                .values_list("resolved_at", flat=True)
                .first()
            )
            self.auto_close_due = min(now + quiet, oldest + quiet) if oldest is not None else now + quiet
        local = now.astimezone(BERLIN)
        if local.hour == 7:
            problems.remind_follow_ups(today=local.date())
        if local.hour == 10 and is_office(now):
            self._triage_proposals()

    def _triage_proposals(self) -> None:
        """Each working morning the desk looks at the problem records it proposed on its own: it takes on
        those of a category that keeps coming back and closes the rest as coincidence."""
        for problem in Problem.objects.filter(state=Problem.State.PROPOSED).select_related("category"):
            domain = problem.category.domain.slug if problem.category else "it_service"
            actor = self.users[TRIAGE[domain]]
            with transaction.atomic():
                keep = problem.incidents.count() >= 4 or problem.pk % 2 == 1
                problems.change_state(
                    problem, actor=actor, state=Problem.State.OPEN if keep else Problem.State.CLOSED
                )

    # -- the plan -------------------------------------------------------------------------------------

    def _plan(self) -> None:
        root = random.Random(SEED)
        counter = 0
        by_domain: dict[str, list[Story]] = {}
        for story in STORIES:
            by_domain.setdefault(story.domain, []).append(story)
        first_day = self.start.astimezone(BERLIN).date()
        for offset in range(self.days + 1):
            day = first_day + timedelta(days=offset)
            weekend = day.weekday() >= 5 or day in HOLIDAYS
            progress = offset / max(1, self.days)
            for domain, stories in by_domain.items():
                if domain == "medical":
                    rate, hours_of_day = medical_rate(progress, weekend), WARD_HOURS
                else:
                    rate, hours_of_day = RATES[domain][1 if weekend else 0], OFFICE_HOURS
                for _ in range(poisson(root, rate)):
                    hour = root.choices(list(hours_of_day), weights=list(hours_of_day.values()))[0]
                    arrival = datetime.combine(day, time(hour), BERLIN) + timedelta(
                        minutes=root.uniform(0, 59)
                    )
                    story = root.choices(stories, weights=[s.weight for s in stories])[0]
                    counter += 1
                    if not self.start <= arrival <= self.end - timedelta(minutes=30):
                        continue
                    plan = Plan(
                        key=f"demo-h{counter}",
                        arrival=arrival,
                        story=story,
                        progress=progress,
                        rng=random.Random(f"{SEED}:{counter}"),
                    )
                    self._choose_scenario(plan)
                    self.plans.append((arrival, counter, plan.key, plan, None))
                    self.schedule(arrival, plan.key, functools.partial(self._generated, plan))
        self._plan_curated()
        self._plan_major_incident()
        self._plan_problems()

    @staticmethod
    def _choose_scenario(plan: Plan) -> None:
        rng, story = plan.rng, plan.story
        options: dict[str, float] = {"standard": 55, "hold": 10, "reopen": 7, "duplicate": 5}
        if story.domain == "it_service":
            options |= {"spam": 3, "not_an_incident": 4}
            if story.category.startswith("network"):
                options["desk_then_network"] = 16
            if story.category == "apps/erp":
                options["vendor"] = 30
        elif story.domain == "security":
            options |= {"not_an_incident": 8, "hierarchical": 8}
        else:
            options |= {"hierarchical": 4}
            if story.category.startswith("equipment"):
                options["vendor"] = 25
        plan.scenario = rng.choices(list(options), weights=list(options.values()))[0]
        plan.late = rng.random() < 0.16
        if story.domain == "medical":
            roll = rng.random()
            if roll < near_miss_share(plan.progress):
                plan.outcome, plan.harm_level = Incident.Outcome.NEAR_MISS, "0"
            elif roll < 0.85:
                plan.outcome, plan.harm_level = Incident.Outcome.NO_HARM, "1"
            else:
                plan.outcome, plan.harm_level = Incident.Outcome.HARM, rng.choice(["2", "2", "3a"])
        elif story.domain == "security":
            plan.outcome = rng.choice([Incident.Outcome.NEAR_MISS] * 2 + [Incident.Outcome.NO_HARM])

    # -- helpers for the processes --------------------------------------------------------------------

    def _when(
        self, plan: Plan, after: datetime, delay: timedelta, *, priority: int | None = None
    ) -> datetime:
        """The instant of the next step: IT and security work office hours except for P1 and P2; the wards
        work around the clock."""
        at = after + delay
        if plan.story.domain != "medical" and (priority is None or priority >= 3):
            at = office(at, plan.rng)
        return at

    @staticmethod
    def _now() -> datetime:
        from django.utils import timezone

        return timezone.now()

    def _reporter(self, plan: Plan) -> tuple[Any, str]:
        rng = plan.rng
        roll = rng.random()
        if plan.story.domain == "medical" and roll < 0.35:
            return self.users["nurse"], ""
        if roll < 0.45:
            return self.users["reporter"], ""
        if roll < 0.8:
            return self.users["reporter2"], ""
        return None, rng.choice(ANONYMOUS_REPORTERS)

    # -- a generated incident ------------------------------------------------------------------------------

    def _generated(self, plan: Plan) -> Process:
        rng, story, domain = plan.rng, plan.story, self.domains[plan.story.domain]
        category = self.categories[(story.domain, story.category)]
        reporter, reporter_email = self._reporter(plan)
        outcome, harm = plan.outcome, plan.harm_level
        channel = Incident.Channel.EMAIL if plan.scenario == "spam" else rng.choice(
            [Incident.Channel.WEB] * 5 + [Incident.Channel.EMAIL] * 2 + [Incident.Channel.PHONE]
        )  # fmt: skip
        incident = services.create_incident(
            title="Win a free tablet: claim your prize today" if plan.scenario == "spam" else rng.choice(story.titles),
            description="Click here: hxxp://prize.example.invalid" if plan.scenario == "spam" else rng.choice(story.details),
            reporter=reporter if plan.scenario != "spam" else None,
            reporter_email="promo@example.invalid" if plan.scenario == "spam" else reporter_email,
            domain=domain,
            category=category if rng.random() < 0.6 else None,
            outcome=outcome if story.domain == "medical" else "",
            harm_level=harm if story.domain == "medical" and rng.random() < 0.5 else "",
            confidential=story.domain != "it_service" and rng.random() < 0.25,
            channel=channel,
            external_id=plan.key,
        )  # fmt: skip
        self.summary.incidents += 1
        triage = self.users[TRIAGE[story.domain]]
        yield self._when(plan, incident.received_at, minutes(rng, 4, 35))

        if plan.scenario == "spam":
            lifecycle.cancel_incident(
                incident, actor=triage, reason=Incident.CancelReason.SPAM, note="Spam on the desk's mailbox."
            )
            return
        impact, urgency = rng.choice(story.impact_urgency)
        team_slug = "service-desk" if plan.scenario == "desk_then_network" else None
        team = self.teams[team_slug] if team_slug else category.default_team
        assert team is not None  # noqa: S101 - every demo category has a default team
        incident = lifecycle.classify_incident(
            incident, actor=triage, domain=domain, category=category, impact=impact, urgency=urgency,
            team=team, outcome=outcome, harm_level=harm,
        )  # fmt: skip
        priority = incident.priority
        if plan.scenario in ("duplicate", "not_an_incident"):
            yield self._when(plan, self._now(), minutes(rng, 10, 90), priority=priority)
            original = (
                Incident.objects.filter(category=category, received_at__lt=incident.received_at)
                .exclude(pk=incident.pk)
                .exclude(state=S.CANCELLED)
                .order_by("-received_at")
                .first()
            )
            if plan.scenario == "duplicate" and original is not None:
                lifecycle.cancel_incident(
                    incident, actor=triage, reason=Incident.CancelReason.DUPLICATE,
                    note="Same issue, already reported.", duplicate_of=original,
                )  # fmt: skip
            else:
                lifecycle.cancel_incident(
                    incident, actor=triage, reason=Incident.CancelReason.NOT_AN_INCIDENT,
                    note="A request, not an incident: handled through the service catalogue.",
                )  # fmt: skip
            return

        # First response: quick for P1/P2, within the business day otherwise; now and then far too late.
        response = {1: (4, 14), 2: (8, 28)}.get(
            priority or 5, (5, 40) if story.domain == "medical" else (8, 100)
        )
        delay = minutes(rng, *response)
        if plan.late:
            delay = hours(rng, 0.6, 2) if (priority or 5) <= 2 else hours(rng, 4, 9)
        yield self._when(plan, self._now(), delay, priority=priority)
        responder = self.users[RESPONDER[team.slug]]
        incident = lifecycle.acknowledge_incident(incident, actor=responder)
        if rng.random() < 0.35:
            yield self._now() + minutes(rng, 3, 30)
            services.add_comment(incident, author=responder, body=rng.choice(REPLIES), public=True)
        if rng.random() < 0.2:
            yield self._now() + minutes(rng, 5, 60)
            services.add_comment(incident, author=responder, body=rng.choice(NOTES), public=False)

        if plan.scenario == "desk_then_network":
            yield self._when(plan, self._now(), minutes(rng, 15, 90), priority=priority)
            incident = lifecycle.escalate_incident(
                incident, actor=responder, team=self.teams["network-ops"],
                reason="Not a client problem: the network side needs network operations.",
            )  # fmt: skip
            yield self._when(plan, self._now(), minutes(rng, 10, 120), priority=priority)
            responder = self.users["specialist"]
            incident = lifecycle.acknowledge_incident(incident, actor=responder)
        elif plan.scenario == "vendor":
            yield self._when(plan, self._now(), minutes(rng, 20, 120), priority=priority)
            if story.domain == "it_service":
                incident = lifecycle.escalate_incident(
                    incident, actor=responder, team=self.teams["vendor-erp"],
                    reason="Application defect: the vendor's support takes over; vendor ticket opened.",
                )  # fmt: skip
            yield self._now() + minutes(rng, 10, 40)
            incident = lifecycle.hold_incident(
                incident, actor=responder, reason=Incident.HoldReason.AWAITING_VENDOR,
                note="Waiting for the manufacturer's analysis.",
            )  # fmt: skip
            yield self._when(plan, self._now(), hours(rng, 20, 80), priority=priority)
            incident = lifecycle.resume_incident(incident, actor=responder)
        elif plan.scenario == "hierarchical" and (priority or 5) <= 3:
            yield self._now() + minutes(rng, 10, 60)
            reasons = {
                "security": "Possible spread beyond one host: CISO informed (hierarchical escalation).",
                "medical": "Patient harm: ward manager and patient-safety officer informed.",
            }
            incident = lifecycle.escalate_incident(
                incident, actor=responder, team=team,
                reason=reasons.get(story.domain, "Business impact: the manager is informed."),
            )  # fmt: skip
            yield self._now() + minutes(rng, 5, 40)
            incident = lifecycle.acknowledge_incident(incident, actor=responder)
        elif plan.scenario == "hold" and incident.reporter_id is not None:
            yield self._now() + minutes(rng, 10, 60)
            services.add_comment(incident, author=responder, body=rng.choice(QUESTIONS), public=True)
            incident = lifecycle.hold_incident(
                incident, actor=responder, reason=Incident.HoldReason.AWAITING_REPORTER,
                note="Asked the reporter for details.",
            )  # fmt: skip
            yield self._now() + hours(rng, 3, 40)
            services.add_comment(
                incident, author=incident.reporter, body=rng.choice(REPORTER_ANSWERS), public=True
            )
            yield self._when(plan, self._now(), minutes(rng, 10, 90), priority=priority)
            incident = lifecycle.resume_incident(incident, actor=responder)

        # The fix: hours for P1/P2 and the wards, days for the rest; now and then far beyond the target.
        work = {1: (0.6, 3), 2: (1.5, 7)}.get(priority or 5, (2, 30))
        if story.domain == "medical":
            work = (3, 20)
        delay = hours(rng, *work)
        if plan.late:
            delay = delay * 3
        yield self._when(plan, self._now(), delay, priority=priority)
        summary = rng.choice(story.fixes)
        incident = lifecycle.resolve_incident(incident, actor=responder, summary=summary)

        if plan.scenario == "reopen":
            yield self._now() + hours(rng, 2, 30)
            if Incident.objects.filter(pk=incident.pk, state=S.RESOLVED).exists():
                who = incident.reporter or responder
                incident = lifecycle.reopen_incident(incident, actor=who, reason="It is happening again.")
                yield self._when(plan, self._now(), hours(rng, 1, 8), priority=priority)
                incident = lifecycle.resolve_incident(
                    incident, actor=responder, summary=f"{summary} Checked again with the reporter."
                )
        if incident.reporter_id is not None and rng.random() < 0.4:
            yield self._now() + hours(rng, 0.5, 20)
            if Incident.objects.filter(pk=incident.pk, state=S.RESOLVED).exists():
                incident = lifecycle.confirm_resolution(incident, actor=incident.reporter)
        if rng.random() < 0.7:
            yield self._when(plan, self._now(), hours(rng, 2, 40))
            if Incident.objects.filter(pk=incident.pk, state=S.RESOLVED).exists():
                incident = lifecycle.close_incident(
                    incident, actor=responder, cause=story.cause, measures=story.measures,
                    resolution_code=story.code,
                )  # fmt: skip
        else:  # left to the quiet-period auto-close
            yield self._now() + settings.INCIDENT_AUTO_CLOSE_AFTER + hours(rng, 1, 3)
        if rng.random() < 0.55:
            yield self._now() + hours(rng, 1, 30)
            incident.refresh_from_db()
            if incident.state == S.CLOSED:
                breached = "breached" in (incident.sla_response, incident.sla_resolution)
                score = rng.choice([1, 2, 3, 3, 4]) if breached else rng.choice([3, 4, 4, 5, 5, 5])
                services.rate_incident(incident, score=score, comment=rng.choice(RATING_COMMENTS[score]))

    # -- the hand-written incidents ---------------------------------------------------------------------

    def _plan_curated(self) -> None:
        """The stories of demo.catalogue, in the last days: the open ones within three days, the finished ones
        up to ten days back; a duplicate arrives shortly after the incident it duplicates."""
        arrivals: dict[str, datetime] = {}
        specs = sorted(DEMO_INCIDENTS, key=lambda s: bool(_duplicate_of(s)))
        for spec in specs:
            length = sum((CURATED_GAPS[step.action] for step in spec.steps), timedelta())
            original = _duplicate_of(spec)
            if spec.external_id == LAST_ARRIVAL:
                arrival = self.end - timedelta(minutes=5)
            elif original and original in arrivals:
                arrival = arrivals[original] + timedelta(minutes=15)
            elif spec.expected_state == S.RECEIVED:
                arrival = self.end - timedelta(minutes=20 + 37 * (spec.n % 7))
            elif spec.expected_state in (S.CLOSED, S.CANCELLED):
                arrival = self.end - length - timedelta(hours=12 + 21 * (spec.n % 11))
            else:  # open, or resolved within the quiet period: the last three days
                arrival = self.end - length - timedelta(minutes=30 + 397 * (spec.n % 11))
            arrivals[spec.external_id] = arrival
            self.schedule(arrival, spec.external_id, functools.partial(self._curated, spec, arrival))

    def _curated(self, spec: DemoIncident, arrival: datetime) -> Process:
        domain = self.domains[spec.domain]
        incident = services.create_incident(
            title=spec.title,
            description=spec.description,
            reporter=self.users[spec.reporter] if spec.reporter else None,
            reporter_email=spec.reporter_email,
            domain=domain,
            category=self.categories[(spec.domain, spec.category)] if spec.category else None,
            outcome=spec.outcome,
            harm_level=spec.harm_level,
            confidential=spec.confidential,
            channel=spec.channel,
            external_id=spec.external_id,
        )
        self.summary.incidents += 1
        at = arrival
        for step in spec.steps:
            at += CURATED_GAPS[step.action]
            yield at
            incident.refresh_from_db(fields=["state", "auto_closed"])
            if incident.auto_closed:
                return  # a short quiet period (INCIDENT_AUTO_CLOSE_HOURS) closed it before the story's end
            result = self._run_step(incident, step, spec, domain)
            if isinstance(result, Incident):
                incident = result
            else:  # a comment: the incident row changed underneath
                incident.refresh_from_db()

    def _run_step(self, incident: Incident, step: Step, spec: DemoIncident, domain: Domain) -> Any:
        users, teams, categories = self.users, self.teams, self.categories
        actor, args = users[step.actor], step.args
        match step.action:
            case "classify":
                category = categories[(spec.domain, args["category"])]
                team = teams[args["team"]] if args["team"] else category.default_team
                if team is None:
                    raise HistoryError(f"Category {category} has no default team; name one.")
                return lifecycle.classify_incident(
                    incident, actor=actor, domain=domain, category=category, impact=args["impact"],
                    urgency=args["urgency"], team=team,
                    assignee=users[args["assignee"]] if args["assignee"] else None,
                    outcome=args["outcome"], harm_level=args["harm_level"], priority=args["priority"],
                    priority_reason=args["priority_reason"],
                )  # fmt: skip
            case "acknowledge":
                return lifecycle.acknowledge_incident(incident, actor=actor)
            case "comment":
                return services.add_comment(incident, author=actor, body=args["body"], public=args["public"])
            case "escalate":
                return lifecycle.escalate_incident(
                    incident, actor=actor, team=teams[args["team"]], reason=args["reason"]
                )
            case "hold":
                return lifecycle.hold_incident(
                    incident, actor=actor, reason=args["reason"], note=args["note"]
                )
            case "resume":
                return lifecycle.resume_incident(incident, actor=actor)
            case "resolve":
                return lifecycle.resolve_incident(incident, actor=actor, summary=args["summary"])
            case "reopen":
                return lifecycle.reopen_incident(incident, actor=actor, reason=args["reason"])
            case "close":
                return lifecycle.close_incident(
                    incident, actor=actor, cause=args["cause"], measures=args["measures"],
                    resolution_code=args["resolution_code"],
                )  # fmt: skip
            case "cancel":
                duplicate_of = (
                    Incident.objects.get(external_id=args["duplicate_of"]) if args["duplicate_of"] else None
                )
                return lifecycle.cancel_incident(
                    incident, actor=actor, reason=args["reason"], note=args["note"], duplicate_of=duplicate_of
                )
        raise HistoryError(f"Unknown demo step {step.action!r}")

    # -- the major incident ---------------------------------------------------------------------------

    def _plan_major_incident(self) -> None:
        """An e-mail outage on a working morning about two and a half weeks back: one parent, many reports."""
        day = (self.end - timedelta(days=min(18, self.days * 0.3))).astimezone(BERLIN).date()
        while day.weekday() >= 5 or day in HOLIDAYS:
            day -= timedelta(days=1)
        start = datetime.combine(day, time(9, 4), BERLIN)
        if start < self.start:
            return
        self.schedule(start, "demo-major", lambda: self._major(start))

    def _major(self, start: datetime) -> Process:
        it = self.domains["it_service"]
        email = self.categories[("it_service", "email")]
        desk, agent, manager = self.teams["service-desk"], self.users["agent"], self.users["manager"]
        parent = services.create_incident(
            title="E-mail down for everyone: Outlook cannot connect",
            description="Since about 09:00 nobody in the office can send or receive mail. Outlook says "
            "*Trying to connect...*; the web mail shows an error 500.",
            reporter=self.users["reporter"], domain=it, category=email, channel=Incident.Channel.PHONE,
            external_id="demo-major",
        )  # fmt: skip
        self.summary.incidents += 1
        yield start + timedelta(minutes=3)
        parent = lifecycle.classify_incident(
            parent, actor=agent, domain=it, category=email, impact=1, urgency=1, team=desk
        )
        yield start + timedelta(minutes=6)
        parent = lifecycle.acknowledge_incident(parent, actor=agent)
        reports = (
            ("reporter2", "", "Cannot send any mail"),
            ("", "m.keller@example.net", "Outlook disconnected"),
            ("reporter", "", "Mails stuck in the outbox"),
            ("", "front.desk@example.net", "Web mail shows error 500"),
            ("", "a.novak@example.net", "No new mail since 9 o'clock"),
            ("reporter2", "", "Outlook asks for my password and then fails"),
            ("", "jordan.lee@example.net", "Customers say our mails bounce"),
        )
        for n, (username, address, title) in enumerate(reports, start=1):
            yield start + timedelta(minutes=7 + 6 * n)
            child = services.create_incident(
                title=title, description="Since this morning. Is this known?",
                reporter=self.users[username] if username else None, reporter_email=address,
                domain=it, channel=Incident.Channel.WEB if n % 3 else Incident.Channel.PHONE,
                external_id=f"demo-major-{n}",
            )  # fmt: skip
            self.summary.incidents += 1
            yield self._now() + timedelta(minutes=4)
            child = lifecycle.classify_incident(
                child, actor=agent, domain=it, category=email, impact=3, urgency=1, team=desk
            )
            child = lifecycle.acknowledge_incident(child, actor=agent)
            major.set_parent(child, parent=parent, actor=agent)
        yield start + timedelta(minutes=55)
        services.add_comment(
            parent, author=agent, public=True,
            body="We know: the mail server's storage is full. We are moving mailboxes to free space; "
            "next update at 11:00.",
        )  # fmt: skip
        yield start + timedelta(hours=1, minutes=10)
        services.add_comment(
            parent,
            author=manager,
            public=False,
            body="Vendor support on the bridge; storage expansion ordered.",
        )
        yield start + timedelta(hours=2, minutes=41)
        parent = lifecycle.resolve_incident(
            parent,
            actor=agent,
            summary="Mail store volume extended; mail flows again and the queue is empty.",
        )
        yield start + timedelta(hours=3, minutes=5)
        outage = problems.create_problem(
            actor=manager, title="Mail store volume ran full without warning",
            description="The e-mail outage of the morning: the mail store's volume reached 100 % and the "
            "server stopped accepting mail.",
            team=desk, owner=manager, category=email, incidents=[parent],
        )  # fmt: skip
        yield start + timedelta(days=1, hours=1)
        parent.refresh_from_db()
        if parent.state == S.RESOLVED:  # else a short quiet period closed it already
            parent = lifecycle.close_incident(
                parent, actor=agent,
                cause="The mail store volume filled up: the archiving job had failed silently for three weeks.",
                measures="Volume extended by 2 TB; the archiving job now alerts on failure; capacity alert at 80 %.",
                resolution_code=Incident.ResolutionCode.CONFIGURATION,
            )  # fmt: skip
        outage = problems.edit_problem(
            outage, actor=manager,
            root_cause="The nightly archiving job failed silently after a password change of its service account.",
            workaround="Extend the volume and move large mailboxes to the second store.",
        )  # fmt: skip
        outage = problems.change_state(outage, actor=manager, state=Problem.State.KNOWN_ERROR)
        local = self._now().astimezone(BERLIN).date()
        problems.add_follow_up(
            outage, actor=manager, title="Alert when the archiving job fails", owner=agent,
            due_date=local + timedelta(days=5),
        )  # fmt: skip
        problems.add_follow_up(
            outage, actor=manager, title="Capacity alert at 80 % on every mail store", owner=manager,
            due_date=local + timedelta(days=30),
        )  # fmt: skip
        yield start + timedelta(days=4, hours=2)
        for action in FollowUpAction.objects.filter(problem=outage, title__startswith="Alert when"):
            problems.complete_follow_up(action, actor=agent)
        # The children's reporters rate the outage now and then.
        for n, score in ((1, 3), (3, 4), (5, 2)):
            yield self._now() + timedelta(hours=n)
            child = Incident.objects.get(external_id=f"demo-major-{n}")
            if child.state == S.CLOSED:
                services.rate_incident(
                    child, score=score, comment="" if score > 2 else "Half a day without mail."
                )

    # -- problem records ------------------------------------------------------------------------------

    def _plan_problems(self) -> None:
        vpn_at = office(self.start + timedelta(days=self.days * 0.2), random.Random(SEED))
        self.schedule(vpn_at, "problem-vpn", lambda: self._vpn_problem(vpn_at))
        ward_at = office(self.end - timedelta(days=min(9, self.days * 0.2)), random.Random(SEED + 1))
        self.schedule(ward_at, "problem-dosing", lambda: self._dosing_problem(ward_at))

    def _linkable(self, category: str, domain: str, since: datetime, limit: int) -> list[Incident]:
        return list(
            Incident.objects.filter(
                category=self.categories[(domain, category)], received_at__gte=since, problem__isnull=True
            )
            .exclude(state=S.CANCELLED)
            .order_by("received_at")[:limit]
        )

    def _vpn_problem(self, at: datetime) -> Process:
        """Network operations find the cause of the VPN drops, fix it and close the record."""
        specialist, manager = self.users["specialist"], self.users["manager"]
        vpn = self.categories[("it_service", "network/vpn")]
        problem = problems.create_problem(
            actor=specialist, title="VPN tunnels drop after a gateway failover",
            description="Users lose their VPN tunnel several times a day, always after a failover between "
            "the two gateway nodes.",
            team=self.teams["network-ops"], owner=specialist, category=vpn,
            incidents=self._linkable("network/vpn", "it_service", at - timedelta(days=14), 8),
        )  # fmt: skip
        yield office(at + timedelta(days=1), random.Random(SEED + 2))
        problem = problems.edit_problem(
            problem, actor=specialist,
            root_cause="Gateway node 2 ran with an expired certificate; tunnels failing over to it were dropped.",
            workaround="Pin clients to gateway node 1 through the VPN profile.",
        )  # fmt: skip
        problem = problems.change_state(problem, actor=specialist, state=Problem.State.KNOWN_ERROR)
        today = self._now().astimezone(BERLIN).date()
        renew = problems.add_follow_up(
            problem, actor=specialist, title="Renew and monitor every gateway certificate", owner=specialist,
            due_date=today + timedelta(days=7),
        )  # fmt: skip
        client = problems.add_follow_up(
            problem, actor=specialist, title="Roll out VPN client 6.3 with the failover fix", owner=manager,
            due_date=today + timedelta(days=12),
        )  # fmt: skip
        yield office(self._now() + timedelta(days=4), random.Random(SEED + 3))
        problems.complete_follow_up(renew, actor=specialist)
        problems.link_incidents(
            problem, actor=specialist,
            incidents=self._linkable("network/vpn", "it_service", self._now() - timedelta(days=6), 5),
        )  # fmt: skip
        yield office(self._now() + timedelta(days=6), random.Random(SEED + 4))
        problems.complete_follow_up(client, actor=manager)
        problem = problems.change_state(problem, actor=specialist, state=Problem.State.RESOLVED)
        yield office(self._now() + timedelta(days=4), random.Random(SEED + 5))
        problems.change_state(problem, actor=manager, state=Problem.State.CLOSED)

    def _dosing_problem(self, at: datetime) -> Process:
        """The wards' near misses in dosing point at the e-prescription form: an open problem with work to do."""
        nurse = self.users["nurse"]
        category = self.categories[("medical", "medication/wrong-dose")]
        problem = problems.create_problem(
            actor=nurse, title="Dosing near misses from the e-prescription form",
            description="Most wrong-dose reports of the last weeks were caught at the double-check; the order "
            "itself was wrong each time.",
            team=self.teams["nursing-safety"], owner=nurse, category=category,
            incidents=self._linkable("medication/wrong-dose", "medical", at - timedelta(days=30), 12),
        )  # fmt: skip
        yield at + timedelta(hours=3)
        problems.edit_problem(
            problem,
            actor=nurse,
            root_cause="The form accepts free-text doses and keeps the previous patient's weight.",
        )
        today = self._now().astimezone(BERLIN).date()
        problems.add_follow_up(
            problem, actor=nurse, title="Structured dose field with maximum-dose alerts", owner=nurse,
            due_date=today + timedelta(days=21),
        )  # fmt: skip
        problems.add_follow_up(
            problem, actor=nurse, title="Reset the weight field for every new order", owner=nurse,
            due_date=today + timedelta(days=7),
        )  # fmt: skip


def _duplicate_of(spec: DemoIncident) -> str:
    return next(
        (s.args["duplicate_of"] for s in spec.steps if s.action == "cancel" and s.args["duplicate_of"]), ""
    )


@contextmanager
def _direct_delivery() -> Iterator[None]:
    """Deliver each notification in this process, through the real delivery function, at the instant of the
    clock it is prompted at (after its transaction commits): nothing is left for the worker to send later.

    The outbox's prompts call ``deliver_notification.delay`` (one row) and ``deliver_notifications.apply_async``
    (the sweep's sets); for this run they are ``escalation.delivery.deliver`` and ``deliver_many`` themselves,
    the functions the Celery tasks run (claim, send, mark sent, timeline). Celery's eager mode did the same at
    several times the cost per notification (a task request, signals, a result and a log line each)."""
    from escalation import delivery

    def deliver_set(args: tuple[list[int]], **options: object) -> None:
        delivery.deliver_many(*args)

    # The sweep's prompts share one broker connection (`app.producer_or_acquire()`); here there is none.
    no_broker = SimpleNamespace(producer_or_acquire=nullcontext)
    with (
        mock.patch.object(delivery, "deliver_notification", SimpleNamespace(delay=delivery.deliver)),
        mock.patch.object(
            delivery, "deliver_notifications", SimpleNamespace(apply_async=deliver_set, app=no_broker)
        ),
    ):
        yield


NEXT_DUE_SQL = "SELECT MIN(due_at) FROM {table} WHERE state = %s AND due_at <= %s"


def _next_due_timer(to: datetime) -> datetime | None:
    """The earliest pending escalation timer due by `to`. Asked before every step of the history (some 3,000
    times): one aggregate in SQL, without the ORM's query compilation, which cost ten times the query itself."""
    with connection.cursor() as cursor:
        cursor.execute(
            NEXT_DUE_SQL.format(table=connection.ops.quote_name(Timer._meta.db_table)),
            [Timer.State.PENDING, connection.ops.adapt_datetimefield_value(to)],
        )
        value = cursor.fetchone()[0]
    if value is None:
        return None
    if isinstance(value, str):  # SQLite keeps datetimes as text, in UTC
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@contextmanager
def _seeding_connection() -> Iterator[None]:
    """Commit without waiting for the disk while the history plays, on this connection only.

    The history commits once per step (a few thousand times), so that the work queued after each commit runs
    at the clock it belongs to. A crash part-way leaves an incomplete history either way (seed_demo refuses
    to go on from it); so durability of each step buys nothing here. SQLite: ``PRAGMA synchronous=OFF``;
    PostgreSQL: ``synchronous_commit=off`` (the data stays consistent, at most the last commits are lost on
    a crash of the server). Both are restored afterwards (the connection may be reused). Inside a caller's
    transaction (SQLite refuses the pragma there) nothing changes: that transaction commits once anyway."""
    vendor = connection.vendor
    if vendor == "sqlite" and connection.in_atomic_block:
        # SQLite refuses the change inside a transaction; a caller's transaction commits once anyway.
        vendor = ""
    with connection.cursor() as cursor:
        if vendor == "sqlite":
            cursor.execute("PRAGMA synchronous")
            old = cursor.fetchone()[0]
            cursor.execute("PRAGMA synchronous=OFF")
        elif vendor == "postgresql":
            cursor.execute("SET synchronous_commit TO off")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if vendor == "sqlite":
                cursor.execute(f"PRAGMA synchronous={int(old)}")
            elif vendor == "postgresql":
                cursor.execute("RESET synchronous_commit")


def notification_counts() -> dict[str, int]:
    return {state: Notification.objects.filter(state=state).count() for state in Notification.State.values}


__all__ = ["LAST_ARRIVAL", "History", "HistoryError", "notification_counts"]
