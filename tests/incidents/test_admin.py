from __future__ import annotations

from datetime import date

import pytest
from django.contrib.admin.sites import site
from django.urls import reverse

from incidents import problems, services
from incidents.models import FollowUpAction, Incident, Problem, TimelineEntry
from tests.factories import UserFactory, agent, incident_in, responder_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    client.force_login(UserFactory(is_superuser=True, is_staff=True))
    return client


def test_every_model_has_a_working_changelist_with_search_and_filters(admin_client):
    incident_in(Incident.State.CLOSED)
    for model, model_admin in site._registry.items():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert admin_client.get(url).status_code == 200, url
        if model_admin.search_fields:
            assert admin_client.get(url, {"q": "vpn"}).status_code == 200, url
        first = model.objects.first()
        if first is not None:
            change = reverse(
                f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[first.pk]
            )
            assert admin_client.get(change).status_code == 200, change


def test_a_closed_incident_is_read_only_in_the_admin(admin_client):
    incident = incident_in(Incident.State.CLOSED)
    url = reverse("admin:incidents_incident_change", args=[incident.pk])
    response = admin_client.post(url, {"title": "changed in admin"})
    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.title != "changed in admin"


def change_form_data(response) -> dict:
    """What the admin's change form posts back as it was rendered: its fields, and its inlines' forms."""

    def value(v):
        if v is None or v is False:
            return None
        return "on" if v is True else getattr(v, "pk", v)

    data = {}
    form = response.context["adminform"].form
    for name, field in form.fields.items():
        data[name] = value(form.initial.get(name, field.initial))
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for key, v in formset.management_form.initial.items():
            data[f"{formset.prefix}-{key}"] = v
        for sub in formset.forms:
            for name in sub.fields:
                data[f"{sub.prefix}-{name}"] = value(sub.initial.get(name))
    return {k: v for k, v in data.items() if v is not None}


def test_an_admin_edit_goes_through_the_service_with_a_timeline_entry_and_a_new_version(admin_client):
    incident = incident_in(Incident.State.RESPONDING)
    url = reverse("admin:incidents_incident_change", args=[incident.pk])
    data = change_form_data(admin_client.get(url))
    data["description"] = "Now with **bold** text"

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    before = incident.version
    incident.refresh_from_db()
    assert incident.version == before + 1
    assert incident.description_html == "<p>Now with <strong>bold</strong> text</p>"
    entry = incident.timeline.filter(kind=TimelineEntry.Kind.FIELDS_CHANGED).get()
    assert entry.actor.is_superuser
    assert set(entry.data["changes"]) == {"description"}


def test_a_stale_admin_form_is_refused_and_loses_nothing(admin_client):
    incident = incident_in(Incident.State.RESPONDING)
    url = reverse("admin:incidents_incident_change", args=[incident.pk])
    data = change_form_data(admin_client.get(url))  # the admin opens the form ...
    agent_edit = services.edit_incident(  # ... an agent changes the title meanwhile ...
        incident, actor=responder_of(incident), version=incident.version, title="Agent's title"
    )
    data["description"] = "Admin's description"  # ... and the admin saves the page they read

    response = admin_client.post(url, data)

    assert response.status_code == 200  # the form again, with the refusal
    assert "changed by someone else" in response.content.decode()
    incident.refresh_from_db()
    assert incident.title == "Agent's title"
    assert incident.description != "Admin's description"
    assert incident.version == agent_edit.version


def test_lifecycle_fields_are_read_only_in_the_admin(admin_client):
    incident = incident_in(Incident.State.RESPONDING)
    url = reverse("admin:incidents_incident_change", args=[incident.pk])
    form = admin_client.get(url).context["adminform"].form
    for field in ("state", "resolved_at", "closed_at", "team", "assignee", "priority", "version", "parent"):
        assert field not in form.fields, field
    data = change_form_data(admin_client.get(url))
    admin_client.post(url, {**data, "state": "closed", "closed_at_0": "2025-01-01", "closed_at_1": "10:00"})
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESPONDING
    assert incident.closed_at is None


def test_the_admin_deletes_no_problem_the_api_would_refuse(admin_client):
    actor = agent()
    problem = problems.create_problem(actor=actor, title="Flaky VPN", incidents=[incident_in("responding")])
    problems.add_follow_up(
        problem, actor=actor, title="Replace firmware", owner=actor, due_date=date(2030, 1, 1)
    )
    url = reverse("admin:incidents_problem_delete", args=[problem.pk])

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 403
    assert Problem.objects.filter(pk=problem.pk).exists()
    assert FollowUpAction.objects.filter(problem=problem).count() == 1
    assert Incident.objects.filter(problem=problem).count() == 1


def test_an_admin_delete_of_a_problem_unlinks_its_incidents_through_the_domain(admin_client):
    actor = agent()
    incident = incident_in("responding")
    problem = problems.create_problem(actor=actor, title="Opened by mistake", incidents=[incident])
    version = Incident.objects.get(pk=incident.pk).version

    response = admin_client.post(
        reverse("admin:incidents_problem_delete", args=[problem.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not Problem.objects.filter(pk=problem.pk).exists()
    incident.refresh_from_db()
    assert incident.problem_id is None
    assert incident.version == version + 1
    assert incident.timeline.filter(kind=TimelineEntry.Kind.PROBLEM, data__event="unlinked").exists()


def test_a_stale_admin_problem_form_is_refused(admin_client):
    actor = agent()
    problem = problems.create_problem(actor=actor, title="Flaky VPN")
    url = reverse("admin:incidents_problem_change", args=[problem.pk])
    data = change_form_data(admin_client.get(url))
    problems.edit_problem(problem, actor=actor, version=problem.version, root_cause="Firmware")
    data["workaround"] = "Reconnect"

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert "changed by someone else" in response.content.decode()
    problem.refresh_from_db()
    assert (problem.root_cause, problem.workaround) == ("Firmware", "")


def test_an_admin_problem_edit_goes_through_the_domain(admin_client):
    actor = agent()
    problem = problems.create_problem(actor=actor, title="Flaky VPN")
    url = reverse("admin:incidents_problem_change", args=[problem.pk])
    data = change_form_data(admin_client.get(url))
    data["root_cause"] = "Firmware leak"

    response = admin_client.post(url, data)

    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    before = problem.version
    problem.refresh_from_db()
    assert (problem.root_cause, problem.version) == ("Firmware leak", before + 1)
