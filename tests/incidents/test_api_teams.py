"""`/api/v1/teams/` writable by admins: members, domains, manager, escalation policy; 409 when a change would
leave an open incident with a team that no longer handles its domain."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

from escalation.models import EscalationPolicy
from incidents.deskconfig import apply_config
from incidents.models import Membership, Team
from tests.conftest import client_for
from tests.factories import TeamFactory, UserFactory, agent, incident_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin():
    return client_for(UserFactory(username="admin", is_staff=True))


def test_admin_creates_a_team_with_members_manager_and_policy(admin):
    UserFactory(username="ann")
    UserFactory(username="ben")
    EscalationPolicy.objects.create(slug="standard", name="Standard")

    response = admin.post(
        "/api/v1/teams/",
        {"slug": "soc", "name": "SOC", "tier": 2, "domains": ["security"], "members": ["ann", "ben"],
         "manager": "ann", "escalation_policy": "standard"},
        format="json",
    )  # fmt: skip

    assert response.status_code == 201, response.json()
    assert response.json()["escalation_policy"] == "standard"
    assert response.json()["members"] == ["ann", "ben"]
    team = Team.objects.get(slug="soc")
    assert EscalationPolicy.objects.get(slug="standard").team == team
    assert team.manager.username == "ann"


def test_changing_members_keeps_join_dates_and_is_audited(admin):
    team = TeamFactory(slug="ops")
    stays = agent(team, username="stays")
    agent(team, username="goes")
    UserFactory(username="joins")
    joined = Membership.objects.get(team=team, user=stays).joined_at

    response = admin.patch("/api/v1/teams/ops/", {"members": ["stays", "joins"]}, format="json")

    assert response.status_code == 200
    assert response.json()["members"] == ["joins", "stays"]
    assert Membership.objects.get(team=team, user=stays).joined_at == joined
    entry = LogEntry.objects.get(object_id=str(team.pk))
    assert "members" in entry.get_change_message()


def test_an_unchanged_patch_writes_no_audit_row(admin):
    TeamFactory(slug="ops", name="Ops")
    assert admin.patch("/api/v1/teams/ops/", {"name": "Ops"}, format="json").status_code == 200
    assert not LogEntry.objects.exists()


def test_removing_a_domain_with_open_incidents_of_it_is_a_409(admin):
    incident = incident_in("responding", domain_slug="security")
    team = incident.team

    response = admin.patch(f"/api/v1/teams/{team.slug}/", {"domains": ["it_service"]}, format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert incident.reference in response.json()["detail"]
    assert list(team.domains.values_list("slug", flat=True)) == ["security"]
    assert not LogEntry.objects.exists()


def test_removing_a_domain_whose_incidents_are_closed_is_allowed(admin):
    incident = incident_in("closed", domain_slug="security")

    response = admin.patch(f"/api/v1/teams/{incident.team.slug}/", {"domains": ["it_service"]}, format="json")

    assert response.status_code == 200
    assert response.json()["domains"] == ["it_service"]


def test_desk_config_refuses_the_same_domain_removal():
    incident = incident_in("responding", domain_slug="security")
    team = incident.team
    with pytest.raises(ValueError, match="still has open incidents"):
        apply_config(
            {"teams": [{"slug": team.slug, "name": team.name, "tier": 1, "domains": ["it_service"]}]}
        )


def test_a_policy_of_another_team_is_refused(admin):
    other = TeamFactory(slug="other")
    EscalationPolicy.objects.create(slug="theirs", name="Theirs", team=other)
    TeamFactory(slug="ops")

    response = admin.patch("/api/v1/teams/ops/", {"escalation_policy": "theirs"}, format="json")

    assert response.status_code == 400
    assert "escalation_policy" in response.json()


def test_policy_can_be_detached(admin):
    team = TeamFactory(slug="ops")
    EscalationPolicy.objects.create(slug="p", name="P", team=team)
    response = admin.patch("/api/v1/teams/ops/", {"escalation_policy": None}, format="json")
    assert response.json()["escalation_policy"] is None
    assert EscalationPolicy.objects.get(slug="p").team is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slug": "ops", "name": "Dup", "domains": []}, "slug"),
        ({"slug": "new", "name": "New", "domains": ["nope"]}, "domains"),
        ({"slug": "new", "name": "New", "domains": [], "members": ["ghost"]}, "members"),
        ({"slug": "new", "name": "New", "domains": [], "tier": 9}, "tier"),
        ({"slug": "bad slug", "name": "New", "domains": []}, "slug"),
        ({"slug": "new", "name": "New", "domains": [], "escalation_policy": "nope"}, "escalation_policy"),
    ],
)
def test_bad_input_names_the_field(admin, body, field):
    TeamFactory(slug="ops")
    response = admin.post("/api/v1/teams/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_unknown_team_is_404(admin):
    assert admin.patch("/api/v1/teams/nope/", {"name": "x"}, format="json").status_code == 404
    assert admin.get("/api/v1/teams/a%20b/").status_code == 404


def test_list_reads_in_a_fixed_number_of_queries(admin, django_assert_max_num_queries):
    for i in range(6):
        team = TeamFactory(slug=f"t{i}", domains=["it_service", "security"])
        agent(team)
        EscalationPolicy.objects.create(slug=f"p{i}", name=f"P{i}", team=team)
    with django_assert_max_num_queries(8):
        response = admin.get("/api/v1/teams/")
    assert len(response.json()["results"]) == 6
    assert {t["escalation_policy"] for t in response.json()["results"]} == {f"p{i}" for i in range(6)}
