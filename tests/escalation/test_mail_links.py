"""Every link in every kind of mail opens a page, for the person the mail went to (200, not 404).

One desk produces each kind of outbox mail through the paths that write it in production; then, for each
row, every URL in its body (and a webhook's payload) is opened with the test client as its recipient:
signed in as the user the row names, or, for a reporter's mail without an account, anonymously.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from escalation import delivery
from escalation.engine import sweep
from escalation.models import EscalationPolicy, EscalationStep, Notification
from incidents import lifecycle, major, problems, services
from reporting import digest
from tests.factories import CategoryFactory, TeamFactory, UserFactory, agent, domain, report

pytestmark = pytest.mark.django_db
T0 = dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC)
URL = re.compile(r"https?://[^\s<>\"')]+")
EVERY_KIND = {
    "escalation_step",  # an escalation step to a team member (engine)
    "problem_proposed",  # a recurring category, to its team
    "follow_up_reminder",  # a problem's follow-up, to its owner
    "reporter_received",  # the receipt with the tracking link
    "reporter_resolved",
    "reporter_closed",  # with the survey links
    "reporter_update",  # a major incident's public update, to a child's reporter
    "weekly_digest",  # to a team manager
    "notification_dead",  # to the manager and the operators
    "password_reset",  # Django's reset, through the outbox too
}


@pytest.fixture
def every_kind_of_mail(settings, client, django_capture_on_commit_callbacks):
    settings.RECURRENCE_THRESHOLD = 2
    settings.NOTIFICATION_BACKOFF_SECONDS = []
    ops = UserFactory(username="ops", is_staff=True, is_superuser=True)
    settings.ADMINS = [("Ops", ops.email)]
    settings.NOTIFICATION_DEAD_ALERT_EMAILS = []
    team = TeamFactory(domains=["it_service"])
    manager = agent(team, username="manager")
    team.manager = manager
    team.save(update_fields=["manager"])
    member = agent(team, username="member")
    policy = EscalationPolicy.objects.create(slug="p", name="P", team=team)
    EscalationStep.objects.create(
        policy=policy, position=1, trigger="unacknowledged", delay_minutes=1, notify_team=team
    )
    category = CategoryFactory(default_team=team)
    reporter = UserFactory(username="reporter")

    def classified(**kwargs):
        incident = report(domain=domain("it_service"), **kwargs)
        return lifecycle.classify_incident(
            incident, actor=member, domain=category.domain, category=category, impact=1, urgency=1, team=team
        )

    with time_machine.travel(T0, tick=False), django_capture_on_commit_callbacks(execute=True):
        incident = classified(reporter=reporter)
        classified(reporter=UserFactory())  # the second of the category: a problem is proposed
    sweep(now=T0 + dt.timedelta(minutes=1))  # unacknowledged: the team is told

    incident = lifecycle.acknowledge_incident(incident, actor=member)
    incident = lifecycle.resolve_incident(incident, actor=member, summary="Restarted it.")
    lifecycle.close_incident(
        incident, actor=member, cause="A bug", measures="Patched", resolution_code="fixed"
    )

    parent = classified(reporter=UserFactory(), title="Everything is down")
    child = classified(reporter=UserFactory(), title="Mail is down")
    major.set_parent(child, parent=parent, actor=member)
    services.add_comment(parent, author=member, body="We are on it.", public=True)

    problem = problems.create_problem(actor=member, title="VPN keeps dropping", team=team)
    problems.add_follow_up(
        problem, actor=member, title="Upgrade firmware", owner=member, due_date=timezone.localdate()
    )
    problems.remind_follow_ups()

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/report/",
            {"title": "Printer", "reporter_email": "anon@example.org", "form_token": _token(client)},
        )

    digest.send_digest(manager, monday=digest.last_week(timezone.now()))
    Client().post("/accounts/password_reset/", {"email": reporter.email})

    doomed = Notification.objects.filter(event="escalation_step", user=member).first()
    settings.EMAIL_BACKEND = "tests.reporting.test_digest.DownBackend"
    assert delivery.deliver(doomed.pk) == "dead"  # the alert to the manager and the operators is queued
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    return list(Notification.objects.select_related("user"))


def _token(client: Client) -> str:
    return re.search(r'name="form_token" value="([^"]+)"', client.get("/report/").content.decode()).group(1)


def _as_recipient(row: Notification) -> Client:
    client = Client()
    user = row.user or get_user_model().objects.filter(email=row.recipient, is_active=True).first()
    if user is not None:
        client.force_login(user)
    else:
        assert row.event.startswith("reporter_"), (
            f"{row.event} to {row.recipient}: a recipient with no account"
        )
    return client


def test_the_desk_writes_every_kind_of_mail(every_kind_of_mail):
    assert {row.event for row in every_kind_of_mail} == EVERY_KIND


def test_every_link_in_every_mail_opens_for_its_recipient(every_kind_of_mail):
    opened = []
    for row in every_kind_of_mail:
        links = URL.findall(row.body) + URL.findall(str(row.payload))
        assert links or (row.event == "notification_dead" and row.incident is None), f"{row.event}: no link"
        client = _as_recipient(row)
        for link in links:
            assert link.startswith(settings.SITE_URL), link
            parts = urlsplit(link)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            response = client.get(path, follow=True)  # the reset link redirects to its form once
            landed = response.redirect_chain[-1][0] if response.redirect_chain else path
            status = response.status_code if not landed.startswith("/accounts/login/") else "login"
            opened.append((row.event, path, status))
    broken = [(event, path, status) for event, path, status in opened if status != 200]
    assert broken == []
    assert {event for event, _, _ in opened} == EVERY_KIND
