"""Demo configuration of the SLA and escalation engine, for `seed_demo` (idempotent)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from escalation.models import (
    BusinessCalendar,
    EscalationPolicy,
    EscalationStep,
    Schedule,
    ScheduleMember,
    SlaPolicy,
    SlaTarget,
)
from incidents.models import Category, Domain, Qualification, Team

# (priority, response minutes, resolution minutes, business hours?)
SLA_MATRIX = [
    (1, 15, 4 * 60, False),
    (2, 30, 8 * 60, False),
    (3, 4 * 60, 3 * 600, True),
    (4, 8 * 60, 5 * 600, True),
    (5, 2 * 600, 10 * 600, True),
]
MEDICAL_REPORTING = [  # SPEC section 3: the reporting deadline by patient-impact level
    ("report-48h", "Safety report within 48 h", 48 * 60, ["0", "1"]),
    ("report-24h", "Safety report within 24 h", 24 * 60, ["2", "3a"]),
    ("report-1h", "Safety report within 1 h", 60, ["3b", "4a", "4b", "5"]),
]


def seed(users: dict[str, Any], teams: dict[str, Team]) -> int:
    """Create the demo calendar, SLA policies, escalation ladder, on-call schedule and qualification.
    Returns how many objects were created (0 on a second run)."""
    created = 0
    office, new = BusinessCalendar.objects.get_or_create(
        slug="office-berlin",
        defaults={
            "name": "Berlin office hours",
            "time_zone": "Europe/Berlin",
            "weekly_hours": {str(day): [["08:00", "18:00"]] for day in range(5)},
            "holiday_country": "DE",
            "holiday_subdivision": "BE",
        },
    )
    created += new
    desk = teams["service-desk"]
    ladder, new = EscalationPolicy.objects.get_or_create(
        slug="service-desk-ladder", defaults={"name": "Service desk ladder", "team": desk}
    )
    created += new
    schedule, new = Schedule.objects.get_or_create(
        slug="service-desk-primary",
        defaults={
            "team": desk,
            "name": "Service desk primary",
            "time_zone": "Europe/Berlin",
            "start": datetime(2026, 1, 5, 8, 0, tzinfo=ZoneInfo("Europe/Berlin")),
            "shift_length": timedelta(hours=12),
        },
    )
    created += new
    if new:
        for position, username in enumerate(["agent", "manager", "privacy"]):
            if username in users:
                ScheduleMember.objects.create(schedule=schedule, user=users[username], position=position)
        # The person on call first, the whole team when three quarters of the response time are gone, the
        # manager at the breach (and twice more).
        EscalationStep.objects.create(
            policy=ladder, position=1, trigger="unacknowledged", delay_minutes=10, notify_schedule=schedule
        )
        EscalationStep.objects.create(
            policy=ladder, position=2, trigger="sla_share", sla_kind="response", share_percent=75, notify_team=desk
        )  # fmt: skip
        EscalationStep.objects.create(
            policy=ladder, position=3, trigger="sla_share", sla_kind="response", share_percent=100, notify_manager=True,
            repeat_count=2, repeat_minutes=30,
        )  # fmt: skip
    for priority, response, resolution, business in SLA_MATRIX:
        _, new = SlaPolicy.objects.get_or_create(
            name=f"P{priority} standard",
            defaults={
                "priority": priority, "response_minutes": response, "resolution_minutes": resolution,
                "calendar": office if business else None, "escalation_policy": ladder,
            },
        )  # fmt: skip
        created += new
    security = Domain.objects.get(slug="security")
    for priority in (1, 2, 3):
        policy, new = SlaPolicy.objects.get_or_create(
            name=f"Security P{priority}",
            defaults={
                "priority": priority,
                "domain": security,
                "response_minutes": 15 * priority,
                "resolution_minutes": 8 * 60 * priority,
            },
        )
        created += new
        if new:  # GDPR art. 33: notify the supervisory authority within 72 hours of a personal-data breach
            SlaTarget.objects.create(
                policy=policy, slug="dpa-preliminary", name="Preliminary report to the data-protection authority",
                minutes=72 * 60, category_prefix="data-breach",
            )  # fmt: skip
    medical = Domain.objects.get(slug="medical")
    policy, new = SlaPolicy.objects.get_or_create(
        name="Medical (any priority)",
        defaults={"domain": medical, "response_minutes": 30, "resolution_minutes": 24 * 60},
    )
    created += new
    if new:
        for slug, name, minutes, levels in MEDICAL_REPORTING:
            SlaTarget.objects.create(policy=policy, slug=slug, name=name, minutes=minutes, harm_levels=levels)
    licence, new = Qualification.objects.get_or_create(
        slug="nursing-licence", defaults={"name": "Nursing licence"}
    )
    created += new
    if new:
        if "nurse" in users:
            licence.holders.add(users["nurse"])
        Category.objects.filter(domain=medical, path__startswith="medication").update(
            required_qualification=licence
        )
    return created
