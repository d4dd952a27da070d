"""The team page shows on-call times in the schedule's own time zone (a Europe/Berlin rotation hands over at
09:00 Berlin time, and the page says so), whatever the server's time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.test import Client

from escalation.models import Schedule, ScheduleMember
from tests.factories import TeamFactory, agent

pytestmark = pytest.mark.django_db
BERLIN = ZoneInfo("Europe/Berlin")


def test_rotation_times_are_in_the_schedules_time_zone(settings):
    assert settings.TIME_ZONE == "UTC"
    team = TeamFactory(slug="network-ops")
    alice = agent(team, username="alice", first_name="Alice", last_name="Ng")
    bob = agent(team, username="bob", first_name="Bob", last_name="Ray")
    schedule = Schedule.objects.create(
        team=team,
        slug="berlin",
        name="Berlin days",
        time_zone="Europe/Berlin",
        start=dt.datetime(2026, 6, 1, 9, 0, tzinfo=BERLIN),  # 07:00 UTC in summer time
    )
    for position, user in enumerate([alice, bob]):
        ScheduleMember.objects.create(schedule=schedule, user=user, position=position)
    client = Client()
    client.force_login(alice)

    with time_machine.travel(dt.datetime(2026, 6, 2, 12, 0, tzinfo=dt.UTC), tick=False):
        page = client.get(f"/desk/teams/{team.slug}/").content.decode()

    on_call = page[page.index('data-schedule="berlin"') :]
    assert "rotation in Europe/Berlin" in on_call
    now = on_call[on_call.index("oncall-now") : on_call.index("oncall-next")]
    assert "Bob Ray" in now
    assert "until Wed 3 Jun, 09:00 CEST" in now
    following = on_call[on_call.index("oncall-next") :]
    assert "from Wed 3 Jun, 09:00 until Thu 4 Jun, 09:00 CEST" in following
    assert "07:00" not in on_call[: on_call.index("</dl>")]
