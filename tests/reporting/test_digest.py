"""The weekly digest: last week's figures for each manager's teams, sent once per manager and week."""

from __future__ import annotations

import threading
import time
from datetime import date

import pytest
import time_machine
from django.conf import settings
from django.core import mail
from django.core.mail.backends.base import BaseEmailBackend
from django.db import connection
from django.db.models.functions import Now

from escalation.models import Notification
from escalation.tasks import deliver_notification
from incidents.models import Membership
from reporting import digest, tasks
from reporting.models import DigestSent
from tests.factories import UserFactory

from . import desk as d

pytestmark = pytest.mark.django_db


@pytest.fixture
def desk():
    built = d.build()
    manager = UserFactory(username="morgan", email="morgan@example.org", first_name="Morgan")
    Membership.objects.create(team=built.desk, user=manager)
    for team in (built.desk, built.net):
        team.manager = manager
        team.save(update_fields=["manager"])
    built.manager = manager
    return built


def run():
    """One beat run of the digest task, then the delivery tasks of every outbox row it queued."""
    with time_machine.travel(d.AFTER, tick=False):  # Tuesday 10 March: last week is 2-8 March
        queued = tasks.send_weekly_digests()
    deliver_pending()
    return queued


def deliver_pending() -> list[str]:
    pending = Notification.objects.filter(event="weekly_digest", state="pending", next_attempt_at__lte=Now())
    return [deliver_notification(pk) for pk in pending.values_list("pk", flat=True)]


def test_last_week_is_the_previous_monday_to_sunday():
    assert digest.last_week(d.AFTER) == date(2026, 3, 2)
    assert digest.last_week(d.START) == date(2026, 2, 23)  # on a Monday, the week that just ended


def test_each_manager_gets_the_figures_of_their_teams(desk):
    assert run() == 1

    [message] = mail.outbox
    assert message.to == ["morgan@example.org"]
    assert message.subject == "IncidentDesk weekly report, 02 Mar - 08 Mar 2026"
    desk_part, net_part = message.body.split("== Desk ==")[1].split("== Net ==")
    # Desk: i1, i3, i4 (i2 went to net). Net: i2. Desk's responses: 600 and 1200 s.
    assert "Incidents received: 3 (classified 1, resolved 1, closed 1)" in desk_part
    assert "Time to respond: median 15 min, p90 19 min (2 responded)" in desk_part
    assert "Time to resolve: median 7.2 h, p90 12.1 h (2 resolved)" in desk_part  # 3600 and 48000 s
    assert "Reopened: 1 of 2; escalated: 0 of 3" in desk_part
    assert "Incidents received: 1 (closed 1)" in net_part
    assert "Response SLA: 0 met, 1 breached" in net_part
    assert f"{settings.SITE_URL}/reports/?from=2026-03-02&to=2026-03-08&team=net" in net_part


def test_running_twice_sends_once(desk):
    assert run() == 1
    assert run() == 0
    assert len(mail.outbox) == 1
    assert DigestSent.objects.get().week == date(2026, 3, 2)


def test_a_manager_without_an_address_or_teams_is_skipped(desk):
    desk.manager.email = ""
    desk.manager.save(update_fields=["email"])
    UserFactory(username="teamless", email="t@example.org")
    assert run() == 0
    assert mail.outbox == []


def test_a_digest_is_queued_in_the_outbox_in_the_transaction_that_records_it(
    desk, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks, time_machine.travel(d.AFTER, tick=False):
        assert tasks.send_weekly_digests() == 1
    row = Notification.objects.get(event="weekly_digest")
    assert (row.recipient, row.user, row.state) == ("morgan@example.org", desk.manager, "pending")
    assert len(callbacks) == 1  # delivery is prompted after commit, not inside the transaction
    assert mail.outbox == []


def test_a_mail_server_that_is_down_is_retried_by_the_outbox_and_sends_once(desk, settings):
    settings.EMAIL_BACKEND = "tests.reporting.test_digest.DownBackend"
    settings.NOTIFICATION_BACKOFF_SECONDS = [0]
    assert run() == 1
    assert Notification.objects.get(event="weekly_digest").state == "pending"  # backing off
    assert DigestSent.objects.count() == 1
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert deliver_pending() == ["sent"]
    assert run() == 0
    assert len(mail.outbox) == 1


def test_the_digest_only_counts_what_the_manager_may_see(desk):
    """The nursing team's manager is not a member of it: its medical incident stays out of their digest."""
    desk.nursing.manager = desk.manager
    desk.nursing.save(update_fields=["manager"])
    run()
    nursing_part = mail.outbox[0].body.split("== Nursing ==")[1]
    assert "Incidents received: 0" in nursing_part


def test_beat_runs_the_digest():
    entry = settings.CELERY_BEAT_SCHEDULE["reporting-weekly-digest"]
    assert entry["task"] == tasks.send_weekly_digests.name


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_send_one_digest(monkeypatch):
    """Two workers on the same (manager, week): the second waits on the first's row, then sends nothing."""
    built = d.build()
    manager = UserFactory(username="morgan", email="morgan@example.org")
    built.desk.manager = manager
    built.desk.save(update_fields=["manager"])
    real_figures = digest._figures_for
    started = threading.Event()

    def slow_figures(*args, **kwargs):
        started.set()
        time.sleep(0.5)  # the other run reaches its insert meanwhile
        return real_figures(*args, **kwargs)

    monkeypatch.setattr(digest, "_figures_for", slow_figures)
    results: list[bool] = []

    def run_one() -> None:
        try:
            results.append(digest.send_digest(manager, monday=date(2026, 3, 2)))
        finally:
            connection.close()

    first = threading.Thread(target=run_one)
    first.start()
    assert started.wait(10)
    second = threading.Thread(target=run_one)
    second.start()
    first.join(20)
    second.join(20)

    assert sorted(results) == [False, True]
    assert Notification.objects.filter(event="weekly_digest").count() == 1
    assert DigestSent.objects.count() == 1


class DownBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError("mail server down")
