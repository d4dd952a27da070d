"""`/api/v1/users/`: admins and user managers provision people; the directory sync upserts idempotently."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from accounts.models import ApiToken
from incidents.models import Membership, Qualification, Team
from tests.conftest import client_for
from tests.factories import TeamFactory, UserFactory, agent, incident_in

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def admin():
    user = UserFactory(username="admin", is_staff=True)
    return client_for(user)


def test_admin_creates_a_person_with_roles_teams_and_qualifications(admin):
    TeamFactory(slug="ops")
    TeamFactory(slug="net", tier=2)
    Qualification.objects.create(slug="nursing", name="Nursing licence")

    response = admin.post(
        "/api/v1/users/",
        {
            "username": "kim", "email": "kim@example.org", "first_name": "Kim", "external_id": "HR-17",
            "roles": ["privacy_officer"], "teams": [{"team": "ops"}, {"team": "net", "manager": True}],
            "qualifications": [{"qualification": "nursing", "valid_until": "2027-06-30"}],
        },
        format="json",
    )  # fmt: skip

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["roles"] == ["privacy_officer"]
    assert body["teams"] == [
        {"team": "net", "manager": True, "tier": 2},
        {"team": "ops", "manager": False, "tier": 1},
    ]
    assert body["qualifications"] == [
        {"qualification": "nursing", "valid_from": None, "valid_until": "2027-06-30"}
    ]
    assert body["external_id"] == "HR-17"
    assert "password" not in body
    kim = User.objects.get(username="kim")
    assert kim.has_perm("incidents.view_confidential_reporter")
    assert Team.objects.get(slug="net").manager == kim
    assert not kim.has_usable_password()


def test_list_filters_by_team_activity_and_text(admin):
    ops = TeamFactory(slug="ops")
    agent(ops, username="alice")
    UserFactory(username="bob", is_active=False)

    assert [u["username"] for u in admin.get("/api/v1/users/", {"team": "ops"}).json()["results"]] == [
        "alice"
    ]
    inactive = admin.get("/api/v1/users/", {"is_active": "false"}).json()["results"]
    assert [u["username"] for u in inactive] == ["bob"]
    assert [u["username"] for u in admin.get("/api/v1/users/", {"q": "ALI"}).json()["results"]] == ["alice"]


def test_list_reads_in_a_fixed_number_of_queries(admin, django_assert_max_num_queries):
    team = TeamFactory()
    for i in range(8):
        agent(team, username=f"p{i}").qualifications.add(
            Qualification.objects.get_or_create(slug="q", name="Q")[0]
        )
    with django_assert_max_num_queries(12):
        response = admin.get("/api/v1/users/", {"page_size": 50})
    assert len(response.json()["results"]) == 9


def test_update_replaces_memberships_and_keeps_join_dates(admin):
    ops, net = TeamFactory(slug="ops"), TeamFactory(slug="net")
    person = agent(ops, username="lee")
    joined = Membership.objects.get(user=person, team=ops).joined_at

    response = admin.patch("/api/v1/users/lee/", {"teams": [{"team": "ops"}, {"team": "net"}]}, format="json")

    assert response.status_code == 200
    assert Membership.objects.get(user=person, team=ops).joined_at == joined
    assert set(person.teams.values_list("slug", flat=True)) == {"ops", "net"}
    entry = LogEntry.objects.get(object_id=str(person.pk))
    assert "teams" in entry.get_change_message()
    assert net.pk


def test_deactivate_keeps_history_revokes_tokens_and_leaves_teams(admin):
    team = TeamFactory()
    person = agent(team, username="max")
    team.manager = person
    team.save()
    incident = incident_in("received", reporter=person)
    ApiToken.issue(person)

    response = admin.post("/api/v1/users/max/deactivate/")
    again = admin.post("/api/v1/users/max/deactivate/")

    assert response.status_code == again.status_code == 200
    person.refresh_from_db()
    assert not person.is_active
    assert not ApiToken.objects.filter(user=person).exists()
    assert not Membership.objects.filter(user=person).exists()
    assert Team.objects.get(pk=team.pk).manager is None
    incident.refresh_from_db()
    assert incident.reporter == person
    assert LogEntry.objects.filter(object_id=str(person.pk)).count() == 1, "the second call is a no-op"
    assert admin.delete("/api/v1/users/max/").status_code == 405


def test_sync_creates_then_is_idempotent_then_updates(admin):
    TeamFactory(slug="ops")
    body = {"external_id": "E-1", "email": "nia@example.org", "first_name": "Nia", "teams": [{"team": "ops"}]}

    created = admin.post("/api/v1/users/sync/", body, format="json")
    same = admin.post("/api/v1/users/sync/", body, format="json")
    renamed = admin.post("/api/v1/users/sync/", {**body, "last_name": "Okoro"}, format="json")

    assert created.status_code == 201
    assert created.json()["username"] == "nia@example.org"
    assert same.status_code == 200
    assert same.json()["changed"] == []
    assert renamed.json()["changed"] == ["last_name"]
    assert User.objects.filter(email="nia@example.org").count() == 1
    assert LogEntry.objects.filter(object_id=str(User.objects.get(email="nia@example.org").pk)).count() == 2


def test_sync_finds_by_external_id_when_the_address_changes(admin):
    admin.post("/api/v1/users/sync/", {"external_id": "E-2", "email": "old@example.org"}, format="json")

    moved = admin.post(
        "/api/v1/users/sync/", {"external_id": "E-2", "email": "new@example.org"}, format="json"
    )

    assert moved.status_code == 200
    assert moved.json()["changed"] == ["email"]
    assert User.objects.get(directory__external_id="E-2").email == "new@example.org"


def test_sync_links_an_existing_person_found_by_email(admin):
    person = UserFactory(username="oli", email="Oli@Example.org")

    linked = admin.post(
        "/api/v1/users/sync/", {"external_id": "E-3", "email": "oli@example.org"}, format="json"
    )

    assert linked.status_code == 200
    assert person.directory.external_id == "E-3"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "x", "email": "not-an-address"}, "email"),
        ({"username": "x y", "email": "x@example.org"}, "username"),
        ({"username": "x", "email": "x@example.org", "roles": ["emperor"]}, "roles"),
        ({"username": "x", "email": "x@example.org", "teams": [{"team": "nope"}]}, "teams"),
        ({"username": "x", "email": "x@example.org", "password": "123"}, "password"),
        ({"username": "admin", "email": "x@example.org"}, "username"),
        ({"username": "x", "email": "ADMIN@example.org"}, "email"),
        (
            {"username": "x", "email": "x@example.org", "qualifications": [{"qualification": "nope"}]},
            "qualifications",
        ),
        (
            {
                "username": "x",
                "email": "x@example.org",
                "qualifications": [
                    {"qualification": "rn", "valid_from": "2027-01-01", "valid_until": "2026-01-01"}
                ],
            },
            "qualifications",
        ),
        ({"username": "x", "email": "x@example.org", "external_id": ["list"]}, "external_id"),
    ],
)
def test_bad_input_names_the_field(admin, body, field):
    Qualification.objects.create(slug="rn", name="RN")
    User.objects.filter(username="admin").update(email="admin@example.org")
    response = admin.post("/api/v1/users/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_sync_without_a_key_is_a_400(admin):
    response = admin.post("/api/v1/users/sync/", {"first_name": "Nobody"}, format="json")
    assert response.status_code == 400
    assert "email" in response.json()


def test_unknown_person_is_404(admin):
    assert admin.get("/api/v1/users/ghost/").status_code == 404
    assert admin.post("/api/v1/users/ghost/deactivate/").status_code == 404
    assert admin.get("/api/v1/users/a%20b/").status_code == 404
    assert admin.delete("/api/v1/users/admin/tokens/abc/").status_code == 404


def test_user_manager_provisions_people_but_grants_no_roles():
    manager = UserFactory(username="sync-bot")
    manager.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="auth", codename__endswith="_user")
    )
    client = client_for(User.objects.get(pk=manager.pk))
    UserFactory(username="boss", is_staff=True)

    assert (
        client.post("/api/v1/users/", {"username": "p", "email": "p@example.org"}, format="json").status_code
        == 201
    )
    grant = client.post(
        "/api/v1/users/", {"username": "q", "email": "q@example.org", "roles": ["admin"]}, format="json"
    )
    assert grant.status_code == 400
    assert "roles" in grant.json()
    assert (
        client.patch("/api/v1/users/boss/", {"password": "Take-over-2026!"}, format="json").status_code == 403
    )


def test_only_a_superuser_changes_a_superuser(admin):
    UserFactory(username="root", is_superuser=True)
    assert admin.post("/api/v1/users/root/deactivate/").status_code == 403


def test_nobody_deactivates_themselves(admin):
    response = admin.post("/api/v1/users/admin/deactivate/")
    assert response.status_code == 400
    assert User.objects.get(username="admin").is_active


def test_an_expired_qualification_no_longer_counts_for_paging(admin):
    """The validity dates given through the API decide who the on-call rotation may page."""
    from datetime import UTC, date, datetime, timedelta

    from escalation.models import Schedule, ScheduleMember
    from escalation.oncall import on_call_user
    from tests.factories import CategoryFactory, report

    team = TeamFactory(slug="ward")
    nurse = agent(team, username="nurse")
    licence = Qualification.objects.create(slug="rn", name="RN")
    category = CategoryFactory(required_qualification=licence)
    incident = report(category=category)
    schedule = Schedule.objects.create(
        slug="ward", name="Ward", team=team, start=datetime(2026, 1, 1, tzinfo=UTC)
    )
    ScheduleMember.objects.create(schedule=schedule, user=nurse, position=1)
    today = date.today()
    response = admin.patch(
        "/api/v1/users/nurse/",
        {"qualifications": [{"qualification": "rn", "valid_until": str(today + timedelta(days=1))}]},
        format="json",
    )
    assert response.status_code == 200, response.json()
    now = datetime.now(UTC)
    assert on_call_user(schedule, at=now, incident=incident) == nurse

    admin.patch(
        "/api/v1/users/nurse/",
        {"qualifications": [{"qualification": "rn", "valid_until": str(today - timedelta(days=1))}]},
        format="json",
    )
    assert on_call_user(schedule, at=now, incident=incident) is None
