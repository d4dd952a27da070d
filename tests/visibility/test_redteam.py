"""Red-team pass over issue 11's promises: paths no other visibility test walks."""

from __future__ import annotations

import pytest

from incidents import lifecycle, services
from incidents.models import Incident, Membership
from interviews import wizard
from tests.factories import incident_in, responder_of
from tests.interviews.helpers import interviewer

pytestmark = pytest.mark.django_db


def _closed_security_incident() -> Incident:
    incident = incident_in(
        Incident.State.RESOLVED, domain_slug="security", title="Phishing wave kq3marker",
        description="Mail from attacker-kq3 reached payroll.",
    )  # fmt: skip
    responder = responder_of(incident)
    services.add_comment(incident, author=responder, body="Host srv-kq3.corp.internal was hit.", public=False)
    return lifecycle.close_incident(
        incident, actor=responder, cause="No DMARC on kq3 domain.", measures="DMARC enforced.",
        resolution_code="fixed",
    )  # fmt: skip


def test_a_case_drafted_from_a_restricted_incident_stays_with_those_who_see_it_until_published(client):
    """A security responder who keeps the case library drafts a case from a closed security incident. Another
    library user outside security must not read the draft (open findings still carry raw text) nor learn
    the source incident's reference, on the page or the API."""
    from tests.conftest import client_for

    incident = _closed_security_incident()
    author = interviewer(username="sec-author")
    Membership.objects.create(user=author, team=incident.team)
    version, _ = wizard.draft_case_from_incident(incident, actor=type(author).objects.get(pk=author.pk))
    outsider = interviewer(username="lib-outsider")
    slug = version.case.slug

    client.force_login(outsider)
    assert client.get(f"/interviews/cases/{slug}/").status_code == 404
    api = client_for(outsider)
    assert api.get(f"/api/v1/interviews/cases/{slug}/").status_code == 404
    listing = api.get("/api/v1/interviews/cases/").content.decode()
    assert slug not in listing
    assert incident.reference not in listing

    # The author still reads it, with its source.
    client.force_login(author)
    page = client.get(f"/interviews/cases/{slug}/").content.decode()
    assert incident.reference in page


def test_a_published_case_from_a_restricted_incident_does_not_name_its_source_to_the_library(client):
    """Once published (pseudonymised and approved) the case is the library's, but which incident it came
    from stays with those who see that incident."""
    from interviews.models import CaseVersion
    from tests.conftest import client_for

    incident = _closed_security_incident()
    author = interviewer(username="sec-author2")
    Membership.objects.create(user=author, team=incident.team)
    version, _ = wizard.draft_case_from_incident(incident, actor=type(author).objects.get(pk=author.pk))
    # The review itself is tested in tests/interviews; here only what a published version shows.
    CaseVersion.objects.filter(pk=version.pk).update(status=CaseVersion.Status.PUBLISHED)
    outsider = interviewer(username="lib-outsider2")
    slug = version.case.slug

    detail = client_for(outsider).get(f"/api/v1/interviews/cases/{slug}/")
    assert detail.status_code == 200
    assert detail.json()["source_incident"] is None
    client.force_login(outsider)
    page = client.get(f"/interviews/cases/{slug}/")
    assert page.status_code == 200
    assert incident.reference not in page.content.decode()
    assert client_for(author).get(f"/api/v1/interviews/cases/{slug}/").json()["source_incident"] == (
        incident.reference
    )


def test_a_stale_console_parent_form_does_not_undo_another_agents_link(client):
    """Agent A opens the child's page; agent B links it to major incident P1; A, from the old page, links it
    to P2. The form carries the version A read, so A's submit is refused and B's link stays."""
    from incidents import major
    from tests.factories import TeamFactory, classified

    team = TeamFactory(domains=["it_service"])
    child, agent_a = classified(team=team, title="Mail slow")
    first, agent_b = classified(team=team, title="Mail outage")
    second, _ = classified(team=team, title="Network outage")
    client.force_login(agent_a)
    page = client.get(f"/desk/incidents/{child.reference}/").content.decode()
    form = page.split(f'action="/desk/incidents/{child.reference}/parent/"', 1)[1].split("</form>", 1)[0]
    assert f'name="version" value="{child.version}"' in form

    major.set_parent(child, parent=first, actor=agent_b)
    response = client.post(
        f"/desk/incidents/{child.reference}/parent/", {"parent": second.reference, "version": child.version}
    )

    assert response.status_code in (302, 409)
    child.refresh_from_db()
    assert child.parent_id == first.pk


def test_linking_to_an_incident_one_only_reported_says_no_more_than_about_a_missing_one():
    """An IT agent reported a security incident (they see it as its reporter). Naming it as the parent of an
    IT incident must answer as for a nonexistent reference, not tell them it is a child of another (security)
    incident, its state, or that it has children: the reporter's view shows none of that."""
    from tests.conftest import client_for
    from tests.factories import TeamFactory, classified

    it_team, sec_team = TeamFactory(domains=["it_service"]), TeamFactory(domains=["security"])
    child, it_agent = classified(team=it_team, title="Mail slow")
    reported, sec_agent = classified(team=sec_team, reporter=it_agent, domain_slug="security", title="Phish")
    outbreak, _ = classified(team=sec_team, domain_slug="security", title="Phishing campaign")
    from incidents import major

    major.set_parent(reported, parent=outbreak, actor=sec_agent)

    api = client_for(it_agent)
    missing = api.post(
        f"/api/v1/incidents/{child.reference}/parent/",
        {"parent": "INC-999999"},
        content_type="application/json",
    )
    probed = api.post(
        f"/api/v1/incidents/{child.reference}/parent/",
        {"parent": reported.reference},
        content_type="application/json",
    )
    assert missing.status_code == probed.status_code == 400
    assert probed.json()["parent"] == [f"No incident {reported.reference}."]
    assert "child" not in probed.content.decode()


def test_a_duplicate_names_only_a_survivor_the_actor_handles():
    """An IT agent who reported a security incident sees it as its reporter only. Cancelling an IT incident as a
    duplicate of it would put a security reference on an IT incident, before every IT responder and its
    reporter: refused as for a missing one, through the API and the lifecycle alike."""
    from django.core.exceptions import ValidationError

    from tests.conftest import client_for
    from tests.factories import TeamFactory, classified

    it_team, sec_team = TeamFactory(domains=["it_service"]), TeamFactory(domains=["security"])
    dupe, it_agent = classified(team=it_team, title="Odd mail")
    reported, _ = classified(team=sec_team, reporter=it_agent, domain_slug="security", title="Phish")

    response = client_for(it_agent).post(
        f"/api/v1/incidents/{dupe.reference}/cancel/",
        {"reason": "duplicate", "duplicate_of": reported.reference},
        content_type="application/json",
    )
    assert response.status_code == 400, response.content
    assert "duplicate_of" in response.json()
    with pytest.raises(ValidationError):
        lifecycle.cancel_incident(dupe, actor=it_agent, reason="duplicate", duplicate_of=reported)
    dupe.refresh_from_db()
    assert dupe.duplicate_of_id is None
    assert dupe.state != Incident.State.CANCELLED


def test_a_users_webhook_gets_only_incidents_its_owner_handles_with_a_link_that_exists(client):
    """An IT agent owns a webhook and reported a security incident (which they see as its reporter, without
    team, assignee or priority). The webhook's payload is a responder's view: nothing about that incident
    reaches it. About an IT incident it does, and its link opens the incident's page for the owner."""
    from escalation.models import Notification, WebhookEndpoint
    from escalation.webhooks import EVENTS
    from tests.factories import TeamFactory, classified

    it_team, sec_team = TeamFactory(domains=["it_service"]), TeamFactory(domains=["security"])
    mine, it_agent = classified(team=it_team, title="Printer")
    WebhookEndpoint.objects.create(
        slug="hook-own", name="Mine", url="http://127.0.0.1:9/hook", events=list(EVENTS), owner_user=it_agent
    )
    reported, sec_agent = classified(team=sec_team, reporter=it_agent, domain_slug="security", title="Phish")
    lifecycle.acknowledge_incident(reported, actor=sec_agent)
    services.add_comment(reported, author=sec_agent, body="Looking", public=True)
    lifecycle.acknowledge_incident(mine, actor=it_agent)

    hooked = Notification.objects.filter(channel="webhook")
    assert not hooked.filter(incident=reported).exists()
    payload = hooked.get(incident=mine).payload
    url = payload["incident"]["url"]
    client.force_login(it_agent)
    assert client.get("/" + url.split("://", 1)[1].split("/", 1)[1]).status_code == 200


def test_a_follow_up_of_a_restricted_problem_is_owned_and_reminded_only_within_its_domain():
    """A security problem's follow-up cannot be given to an IT agent (the reminder would carry the problem's
    and the action's titles to them); one whose owner later left the security team is not reminded to them."""
    from datetime import date

    from django.core.exceptions import ValidationError

    from escalation.models import Notification
    from incidents import problems
    from tests.factories import TeamFactory, agent, classified

    sec_team, it_team = TeamFactory(domains=["security"]), TeamFactory(domains=["it_service"])
    incident, sec_agent = classified(team=sec_team, domain_slug="security", title="Phish")
    problem = problems.create_problem(
        actor=sec_agent,
        title="Payroll phishing pz4",
        team=sec_team,
        incidents=[incident],
        category=incident.category,
    )
    assert problem.domain is not None
    assert problem.domain.restricted
    it_agent = agent(it_team)

    with pytest.raises(ValidationError) as refused:
        problems.add_follow_up(
            problem, actor=sec_agent, title="Block pz4 sender", owner=it_agent, due_date=date(2026, 1, 1)
        )
    assert "owner" in refused.value.message_dict

    leaver = agent(sec_team)
    problems.add_follow_up(
        problem, actor=sec_agent, title="Block pz4 sender", owner=leaver, due_date=date(2026, 1, 1)
    )
    Membership.objects.filter(user=leaver).delete()
    problems.remind_follow_ups(today=date(2026, 1, 2))
    assert not Notification.objects.filter(event="follow_up_reminder", recipient=leaver.email).exists()
