"""`python manage.py seed_demo`: demo data in every state, idempotent, with working demo logins."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.management import call_command

from incidents.models import Category, Comment, Incident, Membership, Team, TimelineEntry

pytestmark = pytest.mark.django_db

User = get_user_model()

DEMO_USERNAMES = [
    "admin", "agent", "specialist", "secagent", "nurse", "manager", "privacy", "reporter", "reporter2",
]  # fmt: skip


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


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
    seed("--quiet")

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
    seed("--quiet")

    medical = Incident.objects.filter(domain__slug="medical", classified_at__isnull=False)
    assert medical.exists()
    assert not medical.filter(harm_level="").exists()


def test_timelines_are_real_and_end_in_the_incident_state():
    seed("--quiet")

    for incident in Incident.objects.all():
        entries = list(incident.timeline.order_by("at", "id"))
        assert entries[0].kind == TimelineEntry.Kind.CREATED, incident.external_id
        changes = [e for e in entries if e.kind == TimelineEntry.Kind.STATE_CHANGED]
        if incident.state == Incident.State.RECEIVED:
            assert changes == [], incident.external_id
        else:
            assert changes, incident.external_id
            assert changes[-1].data["to"] == incident.state, incident.external_id
        # Every change of the row is a version: state changes and comments in the demo (incidents.writes).
        comments = [e for e in entries if e.kind == TimelineEntry.Kind.COMMENT]
        assert incident.version == 1 + len(changes) + len(comments), incident.external_id


def test_teams_and_roles():
    seed("--quiet")

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
    seed("--quiet")
    before = counts()

    output = seed()

    assert counts() == before
    assert "0 incidents created" in output


def test_each_demo_user_logs_in_with_the_printed_password():
    output = seed()

    passwords = printed_passwords(output)
    assert set(passwords) == set(DEMO_USERNAMES)
    for username, password in passwords.items():
        user = authenticate(username=username, password=password)
        assert user is not None, username
        validate_password(password, user)  # long and different enough for the project's validators
    assert "http://127.0.0.1:8000/admin/" in output
    assert "/api/docs/" in output


def test_a_second_run_prints_the_table_again_and_keeps_changed_passwords():
    first = printed_passwords(seed())
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
