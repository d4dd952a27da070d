"""`python manage.py seed_demo`: demo data in every state, idempotent, with working demo logins.

One seeding (two weeks of history) is shared by the module: it runs inside a transaction that is rolled back
after the last test, and each test runs in a savepoint of its own. The full history, with its after-commit
work (notifications delivered, recurrence proposals), is tested in test_history.py.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.management import call_command
from django.db import transaction

from incidents.models import Category, Comment, Incident, Membership, Team, TimelineEntry

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("seeded")]

User = get_user_model()

DEMO_USERNAMES = [
    "admin", "agent", "specialist", "secagent", "nurse", "manager", "privacy", "reporter", "reporter2",
]  # fmt: skip


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


@pytest.fixture(scope="module")
def seeded(django_db_setup, django_db_blocker):
    """The output of one `seed_demo --days 14` (with the table of users), rolled back after the module."""
    with django_db_blocker.unblock(), transaction.atomic():
        yield seed("--days", "14")
        transaction.set_rollback(True)


def printed_passwords(output: str) -> dict[str, str]:
    """username -> password, read from the table the command prints."""
    passwords = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] in DEMO_USERNAMES:
            passwords[parts[0]] = parts[-1]
    return passwords


def counts() -> dict[str, int]:
    return {
        "incidents": Incident.objects.count(),
        "timeline": TimelineEntry.objects.count(),
        "comments": Comment.objects.count(),
        "users": User.objects.count(),
        "teams": Team.objects.count(),
        "memberships": Membership.objects.count(),
        "categories": Category.objects.count(),
    }


def test_one_run_creates_incidents_in_every_state_over_all_domains():
    incidents = Incident.objects.select_related("domain")
    assert incidents.count() >= 36
    assert set(incidents.values_list("state", flat=True)) == set(Incident.State.values)
    assert all(i.external_id and i.external_id.startswith("demo-") for i in incidents)
    for slug in ("it_service", "security", "medical"):
        assert incidents.filter(domain__slug=slug).count() >= 8, slug
    assert incidents.filter(confidential=True).exists()
    anonymous = incidents.filter(reporter__isnull=True)
    assert anonymous.exists()
    assert all(i.reporter_email for i in anonymous)
    assert Comment.objects.filter(public=True).exists()
    assert Comment.objects.filter(public=False).exists()
    assert incidents.filter(escalation_level__gte=1).exists()
    assert incidents.filter(reopen_count__gte=1).exists()
    assert incidents.filter(state=Incident.State.CANCELLED, duplicate_of__isnull=False).exists()


def test_every_medical_incident_past_reception_has_a_harm_level():
    medical = Incident.objects.filter(domain__slug="medical", classified_at__isnull=False)
    assert medical.exists()
    assert not medical.filter(harm_level="").exists()


def test_timelines_are_real_and_end_in_the_incident_state():
    for incident in Incident.objects.all():
        entries = list(incident.timeline.order_by("at", "id"))
        assert entries[0].kind == TimelineEntry.Kind.CREATED, incident.external_id
        # Written in the order of the moving clock: the entries' times never go back.
        written = list(incident.timeline.order_by("id").values_list("at", flat=True))
        assert all(a <= b for a, b in itertools.pairwise(written)), incident.external_id
        changes = [e for e in entries if e.kind == TimelineEntry.Kind.STATE_CHANGED]
        if incident.state == Incident.State.RECEIVED:
            assert changes == [], incident.external_id
        else:
            assert changes, incident.external_id
            assert changes[-1].data["to"] == incident.state, incident.external_id
        # Every new version of the incident has its entry (incidents.writes): a state change, a comment, the
        # reporter's confirmation, a problem link, or following a major incident.
        bumps = [
            e
            for e in entries
            if e.kind
            in (
                TimelineEntry.Kind.STATE_CHANGED,
                TimelineEntry.Kind.REPORTER_CONFIRMED,
                TimelineEntry.Kind.COMMENT,
            )
            or (e.kind == TimelineEntry.Kind.PROBLEM and e.action in ("linked", "unlinked", "recurrence"))
            or (
                e.kind == TimelineEntry.Kind.MAJOR_INCIDENT
                and e.action in ("linked_to_parent", "unlinked_from_parent")
            )
        ]
        assert incident.version == 1 + len(bumps), incident.external_id


def test_the_history_spreads_over_the_days_asked_for():
    received = sorted(Incident.objects.values_list("received_at", flat=True))
    assert received[-1] - received[0] >= timedelta(days=12)
    assert len({r.date() for r in received}) >= 10


def test_teams_and_roles():
    teams = {t.slug: t for t in Team.objects.select_related("manager").prefetch_related("domains", "members")}
    assert set(teams) >= {"service-desk", "network-ops", "security-ops", "nursing-safety", "vendor-erp"}
    assert teams["service-desk"].tier == 1
    assert teams["network-ops"].tier == 2
    assert teams["vendor-erp"].tier == 3
    assert all(team.manager is not None for team in teams.values())
    assert teams["service-desk"].manager.username == "manager"
    assert teams["network-ops"].manager.username == "manager"
    assert {d.slug for d in teams["security-ops"].domains.all()} == {"security"}
    assert {d.slug for d in teams["nursing-safety"].domains.all()} == {"medical"}
    assert {u.username for u in teams["service-desk"].members.all()} >= {"agent", "manager", "privacy"}

    assert User.objects.get(username="admin").is_superuser
    privacy = User.objects.get(username="privacy")
    assert privacy.has_perm("incidents.view_confidential_reporter")
    assert not User.objects.get(username="agent").has_perm("incidents.view_confidential_reporter")
    for username in ("reporter", "reporter2"):
        reporter = User.objects.get(username=username)
        assert not reporter.is_staff
        assert not reporter.memberships.exists()

    vpn = Category.objects.get(domain__slug="it_service", path="network/vpn")
    assert vpn.parent is not None
    assert vpn.parent.path == "network"
    assert Category.objects.filter(domain__slug="medical", path="equipment/infusion-pump").exists()
    assert not Category.objects.filter(default_team__isnull=True).exists()


def test_a_second_run_creates_nothing():
    before = counts()

    output = seed()

    assert counts() == before
    assert "0 incidents created" in output


def test_each_demo_user_logs_in_with_the_printed_password(seeded):
    output = seeded

    passwords = printed_passwords(output)
    assert set(passwords) == set(DEMO_USERNAMES)
    for username, password in passwords.items():
        user = authenticate(username=username, password=password)
        assert user is not None, username
        validate_password(password, user)  # long and different enough for the project's validators
    assert "http://127.0.0.1:8000/admin/" in output
    assert "/api/docs/" in output


def test_a_second_run_prints_the_table_again_and_keeps_changed_passwords(seeded):
    first = printed_passwords(seeded)
    agent = User.objects.get(username="agent")
    agent.set_password("my-own-new-password-2026")
    agent.save()

    output = seed()

    again = printed_passwords(output)
    assert set(again) == set(DEMO_USERNAMES)
    assert authenticate(username="agent", password="my-own-new-password-2026") is not None
    assert authenticate(username="agent", password=first["agent"]) is None
    assert first["agent"] not in output
    for username in set(DEMO_USERNAMES) - {"agent"}:
        assert again[username] == first[username]
        assert authenticate(username=username, password=again[username]) is not None


def test_quiet_prints_no_table():
    output = seed("--quiet")

    assert printed_passwords(output) == {}
    assert "demo-" not in output
