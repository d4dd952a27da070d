"""`/api/v1/categories/`: the tree by API (create, rename, move, deactivate), validated like desk_config."""

from __future__ import annotations

import pytest
import yaml
from django.contrib.admin.models import LogEntry
from django.core.management import call_command

from incidents.deskconfig import apply_config
from incidents.models import Category, Incident, Qualification
from tests.conftest import client_for
from tests.factories import CategoryFactory, TeamFactory, UserFactory, agent, domain, report

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin():
    return client_for(UserFactory(username="admin", is_staff=True))


def _create(client, path, **extra):
    body = {"domain": "it_service", "path": path, "name": path.rsplit("/", 1)[-1].title(), **extra}
    response = client.post("/api/v1/categories/", body, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def test_create_a_tree_with_default_team_and_qualification(admin):
    TeamFactory(slug="net")
    Qualification.objects.create(slug="ccna", name="CCNA")
    top = _create(admin, "network", default_team="net")
    vpn = _create(admin, "network/vpn", required_qualification="ccna")

    assert top["parent"] is None
    assert vpn["parent"] == "network"
    assert vpn["required_qualification"] == "ccna"
    assert Category.objects.get(pk=vpn["id"]).parent_id == top["id"]


def test_a_child_needs_its_parent_and_paths_are_unique(admin):
    orphan = admin.post(
        "/api/v1/categories/", {"domain": "it_service", "path": "x/y", "name": "Y"}, format="json"
    )
    assert orphan.status_code == 400
    assert "path" in orphan.json()
    _create(admin, "x")
    again = admin.post(
        "/api/v1/categories/", {"domain": "it_service", "path": "x", "name": "X"}, format="json"
    )
    assert again.status_code == 400
    assert "path" in again.json()


def test_move_updates_every_path_below_and_incidents_keep_their_category(admin):
    _create(admin, "network")
    vpn = _create(admin, "network/vpn")
    _create(admin, "network/vpn/client")
    _create(admin, "remote")
    incident = report(category=Category.objects.get(pk=vpn["id"]))

    moved = admin.patch(f"/api/v1/categories/{vpn['id']}/", {"path": "remote/tunnel"}, format="json")

    assert moved.status_code == 200, moved.json()
    assert moved.json()["path"] == "remote/tunnel"
    paths = set(Category.objects.values_list("path", flat=True))
    assert paths == {"network", "remote", "remote/tunnel", "remote/tunnel/client"}
    incident.refresh_from_db()
    assert incident.category_id == vpn["id"]
    assert incident.category.path == "remote/tunnel"
    entry = LogEntry.objects.filter(object_id=str(vpn["id"]), action_flag=2).get()
    assert "path" in entry.get_change_message()


def test_a_category_cannot_move_under_itself(admin):
    top = _create(admin, "a")
    _create(admin, "a/b")
    response = admin.patch(f"/api/v1/categories/{top['id']}/", {"path": "a/b/a"}, format="json")
    assert response.status_code == 400
    assert "path" in response.json()


def test_rename_changes_only_the_name(admin):
    cat = _create(admin, "printers")
    response = admin.patch(
        f"/api/v1/categories/{cat['id']}/", {"name": "Printers and scanners"}, format="json"
    )
    assert response.json()["name"] == "Printers and scanners"
    assert response.json()["path"] == "printers"


def test_deactivated_category_is_hidden_from_new_reports_and_kept_on_old_ones(admin):
    top = _create(admin, "legacy")
    _create(admin, "legacy/fax")
    old = report(category=Category.objects.get(path="legacy/fax"))
    reporter = client_for(UserFactory())

    assert admin.post(f"/api/v1/categories/{top['id']}/deactivate/").json()["active"] is False

    assert not Category.objects.get(path="legacy/fax").active, "the subtree goes with it"
    refused = reporter.post("/api/v1/incidents/", {"title": "Fax", "category": "legacy/fax"}, format="json")
    assert refused.status_code == 400
    assert "category" in refused.json()
    assert reporter.get("/api/v1/categories/").json()["results"] == []
    old.refresh_from_db()
    assert old.category.path == "legacy/fax"
    responder = client_for(agent(TeamFactory()))
    assert len(responder.get("/api/v1/categories/", {"active": "false"}).json()["results"]) == 2
    # The incident's own (inactive) category may stay when it is edited.
    edit = responder.patch(
        f"/api/v1/incidents/{old.reference}/",
        {"version": old.version, "category": "legacy/fax", "title": "Fax jam"},
        format="json",
    )
    assert edit.status_code == 200, edit.json()


def test_web_report_form_offers_only_active_categories(client):
    CategoryFactory(slug="alive")
    CategoryFactory(slug="gone", active=False)
    it = domain("it_service")
    response = client.get("/report/categories/", {"domain": it.pk})
    assert b"alive" in response.content
    assert b"gone" not in response.content


def test_reactivating_under_an_inactive_parent_is_refused(admin):
    top = _create(admin, "p")
    child = _create(admin, "p/c")
    admin.post(f"/api/v1/categories/{top['id']}/deactivate/")
    response = admin.post(f"/api/v1/categories/{child['id']}/activate/")
    assert response.status_code == 400
    assert "active" in response.json()


def test_domain_of_a_used_category_cannot_change(admin):
    cat = _create(admin, "mixed")
    report(category=Category.objects.get(pk=cat["id"]))
    response = admin.patch(f"/api/v1/categories/{cat['id']}/", {"domain": "security"}, format="json")
    assert response.status_code == 400
    assert "domain" in response.json()


def test_bad_path_params_are_404(admin):
    assert admin.get("/api/v1/categories/abc/").status_code == 404
    assert admin.get("/api/v1/categories/999999/").status_code == 404
    assert admin.post("/api/v1/categories/999999/deactivate/").status_code == 404


def test_desk_config_and_the_api_refuse_the_same_input(admin):
    bad = {"domain": "it_service", "path": "no parent/here", "name": "X"}
    api = admin.post("/api/v1/categories/", bad, format="json")
    with pytest.raises(ValueError, match=r"categories\[0\]\.path"):
        apply_config({"categories": [bad]})
    assert "path" in api.json()


def test_a_file_exported_after_api_calls_applies_as_no_change(admin, tmp_path):
    _create(admin, "network")
    cat = _create(admin, "network/vpn")
    admin.post(f"/api/v1/categories/{cat['id']}/deactivate/")
    path = tmp_path / "desk.yaml"
    call_command("desk_config", "export", str(path))

    data = yaml.safe_load(path.read_text())
    assert {"domain": "it_service", "path": "network/vpn", "name": "Vpn", "default_team": None,
            "required_qualification": None, "active": False} in data["categories"]  # fmt: skip
    assert apply_config(data) == []
    assert Incident.objects.count() == 0


def test_list_reads_in_a_fixed_number_of_queries(admin, django_assert_max_num_queries):
    team = TeamFactory(slug="net")
    for i in range(10):
        CategoryFactory(slug=f"c{i}", default_team=team)
    with django_assert_max_num_queries(5):
        response = admin.get("/api/v1/categories/")
    assert len(response.json()["results"]) == 10
