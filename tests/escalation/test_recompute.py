from __future__ import annotations

import datetime as dt
from io import StringIO

import pytest
import time_machine
from django.core.management import CommandError, call_command

from escalation.engine import sweep
from escalation.models import Notification, SlaClock, Timer
from incidents import lifecycle
from tests.factories import classified, sla_policy

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def snapshot(incident):
    return sorted(
        (c.kind, c.cycle, c.due_at, c.warned_at, c.breached_at, c.completed_at, c.consumed_seconds)
        for c in SlaClock.objects.filter(incident=incident)
    )


def test_recompute_rebuilds_the_same_clocks_from_the_timeline():
    sla_policy(priority=1, response=20, resolution=240)
    with time_machine.travel(at(0), tick=False) as clock:
        incident, actor = classified()
        sweep(now=at(16))  # response warning fired
        clock.move_to(at(18))
        incident = lifecycle.acknowledge_incident(incident, actor=actor)
        clock.move_to(at(60))
        incident = lifecycle.hold_incident(incident, actor=actor, reason="awaiting_vendor")
        clock.move_to(at(120))
        incident = lifecycle.resume_incident(incident, actor=actor)
        before = snapshot(incident)
        notifications = Notification.objects.count()
        out = StringIO()
        call_command("sla_recompute", "--incident", incident.reference, stdout=out)
    assert "Recomputed 2 clocks on 1 incidents" in out.getvalue()
    assert snapshot(incident) == before
    assert Notification.objects.count() == notifications  # nothing already sent is sent again
    assert incident.timeline.filter(kind="sla", action="recomputed").count() == 1
    assert sweep(now=at(16.5)).fired == 0  # the warning is not re-fired


def test_recompute_arms_what_is_overdue_and_never_fired():
    sla_policy(priority=1, response=20, resolution=240)
    with time_machine.travel(at(0), tick=False):
        incident, _ = classified()
    Timer.objects.filter(incident=incident).delete()  # as if the timers had been lost
    SlaClock.objects.filter(incident=incident).delete()
    with time_machine.travel(at(30), tick=False):
        call_command("sla_recompute", "--incident", incident.reference, stdout=StringIO())
    assert sweep(now=at(30)).fired == 2  # the warning and the breach, late but exactly once each
    assert sweep(now=at(31)).fired == 0


def test_unknown_reference_is_an_error():
    with pytest.raises(CommandError):
        call_command("sla_recompute", "--incident", "INC-999999", stdout=StringIO())
