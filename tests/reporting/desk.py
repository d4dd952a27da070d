"""A small desk whose figures are computed by hand in docs/reporting.md's terms (see EXPECTED below).

Every incident goes through the lifecycle at a set instant (time-machine), as a desk would: the
timestamps, SLA clocks and statuses are the engine's own, not written by the test.

The period is Monday 2 March 2026 to Sunday 8 March 2026 (UTC), `from=2026-03-02&to=2026-03-08`.

| incident | received | what happens (minutes after received) | in the period |
|---|---|---|---|
| i1 | Mar 2 09:00, P1, network/vpn, no_harm | ack +10, resolve +60, close +120; problem A; rated 5 | yes |
| i2 | Mar 2 10:00, P2, network/vpn | ack +60 (response late), escalate +70 to team net, resolve +340 (late), close +400; problem A; rated 2 | yes |
| i3 | Mar 3 09:00, P3, hardware | ack +20, hold +30, resume +630, resolve +700, reopen +710, resolve +800; problem B | yes |
| i4 | Mar 3 10:00, P3, network/vpn | classified only | yes |
| i5 | Mar 4 09:00, P3, medical/medication, near_miss | classified only (restricted domain) | yes |
| i6 | Mar 5 09:00 | cancelled +15 (spam) | yes |
| i7 | Mar 1 09:00, P3, hardware | classified only | no: open at the start |
| i8 | Feb 28 09:00, P3, hardware | ack +5, resolved Mar 2 12:00 | no: open at the start, ends Mar 2 |
| i9 | Mar 9 10:00, P3, hardware | classified only | no: after the period |

SLA policy for every priority: response 30 min, resolution 240 min, 24x7.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import time_machine

from incidents import lifecycle, services
from incidents.models import Category, Incident, Problem, SatisfactionRating, Team
from tests.factories import CategoryFactory, TeamFactory, UserFactory, agent, domain, sla_policy

START = datetime(2026, 3, 2, tzinfo=UTC)
END = datetime(2026, 3, 9, tzinfo=UTC)  # exclusive: `to=2026-03-08` is the whole of Sunday
AFTER = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)  # "now" when the report is read
PERIOD = {"from": "2026-03-02", "to": "2026-03-08"}


@dataclass
class Desk:
    desk: Team
    net: Team
    nursing: Team
    it_agent: object
    nurse: object
    superuser: object
    incidents: dict[str, Incident]


def _at(when: datetime):
    return time_machine.travel(when, tick=False)


def build() -> Desk:
    with _at(START - timedelta(days=10)):
        sla_policy(response=30, resolution=240)
        desk = TeamFactory(slug="desk", domains=["it_service"])
        net = TeamFactory(slug="net", domains=["it_service"])
        nursing = TeamFactory(slug="nursing", domains=["medical"])
        it_agent, nurse = agent(desk, username="it-agent"), agent(nursing, username="nurse")
        agent(net, username="net-agent")
        superuser = UserFactory(username="boss", is_superuser=True)
        it = domain("it_service")
        network = CategoryFactory(domain=it, slug="network")
        cats = {
            "vpn": CategoryFactory(domain=it, slug="vpn", parent=network),
            "hardware": CategoryFactory(domain=it, slug="hardware"),
            "medication": CategoryFactory(domain=domain("medical"), slug="medication"),
        }
        problem_a, problem_b = (
            Problem.objects.create(title="VPN firmware"),
            Problem.objects.create(title="Disks"),
        )
    incidents: dict[str, Incident] = {}

    def report(name: str, when: datetime, **kwargs) -> Incident:
        with _at(when):
            incidents[name] = services.create_incident(title=name, reporter=UserFactory(), **kwargs)
        return incidents[name]

    def act(name: str, when: datetime, action: str, **kwargs) -> None:
        actor = kwargs.pop(
            "actor", nurse if incidents[name].domain_id == cats["medication"].domain_id else it_agent
        )
        with _at(when):
            incidents[name] = lifecycle.ACTIONS[lifecycle.Action(action)](
                incidents[name], actor=actor, **kwargs
            )

    def classify(name: str, when: datetime, category: Category, impact: int, urgency: int, **kwargs) -> None:
        team = nursing if category.slug == "medication" else desk
        act(name, when, "classify", domain=category.domain, category=category, impact=impact, urgency=urgency,
            team=team, **kwargs)  # fmt: skip

    def minutes(base: datetime, m: int) -> datetime:
        return base + timedelta(minutes=m)

    t1 = datetime(2026, 3, 2, 9, tzinfo=UTC)
    report("i1", t1)
    classify("i1", minutes(t1, 5), cats["vpn"], 1, 1, outcome="no_harm")
    act("i1", minutes(t1, 10), "acknowledge")
    act("i1", minutes(t1, 60), "resolve", summary="Restarted")
    act("i1", minutes(t1, 120), "close", cause="Leak", measures="Upgrade", resolution_code="fixed")

    t2 = datetime(2026, 3, 2, 10, tzinfo=UTC)
    report("i2", t2)
    classify("i2", minutes(t2, 1), cats["vpn"], 1, 2)
    act("i2", minutes(t2, 60), "acknowledge")
    act("i2", minutes(t2, 70), "escalate", team=net, reason="needs network")
    net_agent = net.memberships.get().user
    act("i2", minutes(t2, 340), "resolve", summary="Replaced", actor=net_agent)
    act(
        "i2",
        minutes(t2, 400),
        "close",
        cause="Card",
        measures="Spare",
        resolution_code="fixed",
        actor=net_agent,
    )

    t3 = datetime(2026, 3, 3, 9, tzinfo=UTC)
    report("i3", t3)
    classify("i3", minutes(t3, 1), cats["hardware"], 2, 2)
    act("i3", minutes(t3, 20), "acknowledge")
    act("i3", minutes(t3, 30), "hold", reason="awaiting_vendor")
    act("i3", minutes(t3, 630), "resume")
    act("i3", minutes(t3, 700), "resolve", summary="Disk swapped")
    act("i3", minutes(t3, 710), "reopen", reason="Still failing")
    act("i3", minutes(t3, 800), "resolve", summary="Controller swapped")

    t4 = datetime(2026, 3, 3, 10, tzinfo=UTC)
    report("i4", t4)
    classify("i4", minutes(t4, 2), cats["vpn"], 2, 2)

    t5 = datetime(2026, 3, 4, 9, tzinfo=UTC)
    report("i5", t5, domain=domain("medical"), outcome="near_miss")
    classify("i5", minutes(t5, 3), cats["medication"], 2, 2, harm_level="0")

    t6 = datetime(2026, 3, 5, 9, tzinfo=UTC)
    report("i6", t6)
    act("i6", minutes(t6, 15), "cancel", reason="spam")

    t7 = datetime(2026, 3, 1, 9, tzinfo=UTC)
    report("i7", t7)
    classify("i7", minutes(t7, 1), cats["hardware"], 2, 2)

    t8 = datetime(2026, 2, 28, 9, tzinfo=UTC)
    report("i8", t8)
    classify("i8", minutes(t8, 1), cats["hardware"], 2, 2)
    act("i8", minutes(t8, 5), "acknowledge")
    act("i8", datetime(2026, 3, 2, 12, tzinfo=UTC), "resolve", summary="Fan cleaned")

    t9 = datetime(2026, 3, 9, 10, tzinfo=UTC)
    report("i9", t9)
    classify("i9", minutes(t9, 1), cats["hardware"], 2, 2)

    # Linking to a problem record is not a state change: problem management writes the same column.
    Incident.objects.filter(pk__in=[incidents["i1"].pk, incidents["i2"].pk]).update(problem=problem_a)
    Incident.objects.filter(pk=incidents["i3"].pk).update(problem=problem_b)
    SatisfactionRating.objects.create(incident=incidents["i1"], score=5)
    SatisfactionRating.objects.create(incident=incidents["i2"], score=2)
    return Desk(desk, net, nursing, it_agent, nurse, superuser, incidents)


def _none_if_zero(count: int, of: int) -> dict:
    return {"count": count, "of": of, "rate": round(count / of, 4) if of else None}


# Hand-computed from the table above (the superuser sees all six incidents of the period).
EXPECTED = {
    "counts": {
        "total": 6,
        "by_state": {
            "received": 0,
            "classified": 2,
            "responding": 0,
            "escalated": 0,
            "on_hold": 0,
            "resolved": 1,
            "closed": 2,
            "cancelled": 1,
        },
    },
    # Responses after 10, 60 and 20 min: [600, 1200, 3600] s; p90 at rank 1.8 = 1200 + 0.8 * 2400.
    "mtta": {"count": 3, "median_seconds": 1200.0, "p90_seconds": 3120.0},
    # Received to the last resolution, wall clock, hold included: 60, 340 and 800 min: [3600, 20400, 48000] s.
    "mttr": {"count": 3, "median_seconds": 20400.0, "p90_seconds": 42480.0},
    "sla": {
        # i1 10 min, i3 20 min met; i2 60 min breached; i4, i5 still pending; i6 had no clock.
        "response": {"met": 2, "breached": 1, "compliance": 0.6667},
        # i1 60 min met; i2 340 min breached; i3's second cycle (90 min) met - its first, 100 business
        # minutes (10 h on hold do not count), was met too.
        "resolution": {"met": 2, "breached": 1, "compliance": 0.6667},
        "by_priority": [
            {
                "priority": 1,
                "response": {"met": 1, "breached": 0, "compliance": 1.0},
                "resolution": {"met": 1, "breached": 0, "compliance": 1.0},
            },
            {
                "priority": 2,
                "response": {"met": 0, "breached": 1, "compliance": 0.0},
                "resolution": {"met": 0, "breached": 1, "compliance": 0.0},
            },
            {
                "priority": 3,
                "response": {"met": 1, "breached": 0, "compliance": 1.0},
                "resolution": {"met": 1, "breached": 0, "compliance": 1.0},
            },
        ],
    },
    "rates": {
        "reopen": _none_if_zero(1, 3),  # i3 of i1, i2, i3
        "escalation": _none_if_zero(1, 5),  # i2 of the five classified (i6 never was)
        "first_contact_resolution": _none_if_zero(1, 3),  # i1: resolved, never escalated or reopened
    },
    "near_miss": _none_if_zero(1, 2),  # i5 of i1 (no_harm) and i5
    "csat": {"count": 2, "average": 3.5, "satisfied": 1, "rate": 0.5},
    "trend": [
        {"date": "2026-03-02", "received": 2, "mttr_median_seconds": 12000.0},  # median of 3600 and 20400
        {"date": "2026-03-03", "received": 2, "mttr_median_seconds": 48000.0},
        {"date": "2026-03-04", "received": 1, "mttr_median_seconds": None},
        {"date": "2026-03-05", "received": 1, "mttr_median_seconds": None},
        {"date": "2026-03-06", "received": 0, "mttr_median_seconds": None},
        {"date": "2026-03-07", "received": 0, "mttr_median_seconds": None},
        {"date": "2026-03-08", "received": 0, "mttr_median_seconds": None},
    ],
    "backlog": {
        "as_of": "2026-03-09T00:00:00Z",
        "open": 3,  # i4, i5, i7
        # At Mar 9 00:00: i4 5 d 14 h, i5 4 d 15 h, i7 7 d 15 h old.
        "ageing": [
            {"bucket": "under_1d", "count": 0},
            {"bucket": "1d_3d", "count": 0},
            {"bucket": "3d_7d", "count": 2},
            {"bucket": "7d_30d", "count": 1},
            {"bucket": "over_30d", "count": 0},
        ],
        # Open at the start: i7, i8. Mar 2: +i1 +i2 -i1 -i2 -i8; Mar 3: +i3 +i4 -i3; Mar 4: +i5; Mar 5: +i6 -i6.
        "series": [
            {"date": "2026-03-02", "open": 1},
            {"date": "2026-03-03", "open": 2},
            {"date": "2026-03-04", "open": 3},
            {"date": "2026-03-05", "open": 3},
            {"date": "2026-03-06", "open": 3},
            {"date": "2026-03-07", "open": 3},
            {"date": "2026-03-08", "open": 3},
        ],
    },
    "top_categories": [
        {"domain": "it_service", "category": "network/vpn", "count": 3},
        {"domain": "it_service", "category": "hardware", "count": 1},
        {"domain": "medical", "category": "medication", "count": 1},
    ],
}
