"""The case-from-incident wizard as screens: the button on a closed incident, the preview, the draft and
the case page where a second person approves it."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from incidents.models import Incident
from interviews import cases, services
from interviews.models import Case, CaseVersion
from tests.factories import UserFactory, incident_in, responder_of
from tests.interviews.helpers import publisher
from tests.interviews.test_wizard import closed_incident_with_a_story

pytestmark = pytest.mark.django_db
AUTHOR_PERMS = ["view_caseversion", "add_caseversion", "change_caseversion", "view_session", "add_session"]


def author_of(incident: Incident):
    """A responder of the incident who may also write cases."""
    user = responder_of(incident)
    user.user_permissions.add(
        *Permission.objects.filter(content_type__app_label="interviews", codename__in=AUTHOR_PERMS)
    )
    return type(user).objects.get(pk=user.pk)


def test_a_closed_incident_page_offers_the_wizard_to_case_authors_only(client):
    incident = closed_incident_with_a_story()
    wizard_url = f"/interviews/from-incident/{incident.reference}/"
    client.force_login(responder_of(incident))
    assert wizard_url not in client.get(f"/desk/incidents/{incident.reference}/").content.decode()

    client.force_login(author_of(incident))
    assert wizard_url in client.get(f"/desk/incidents/{incident.reference}/").content.decode()

    open_incident = incident_in(Incident.State.RESOLVED)
    client.force_login(author_of(open_incident))
    page = client.get(f"/desk/incidents/{open_incident.reference}/").content.decode()
    assert "/interviews/from-incident/" not in page


def test_the_preview_shows_pseudonyms_and_conflicts_and_writes_nothing(client):
    incident = closed_incident_with_a_story()
    author = author_of(incident)
    worker = Incident.objects.get(pk=incident.pk).assignee or author
    services.create_candidate(name="Inside Candidate", user=worker, consent=True)
    services.create_candidate(name="Outside Candidate", email="someone@example.org", consent=True)
    client.force_login(author)

    response = client.get(f"/interviews/from-incident/{incident.reference}/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "T+20 min: Person A saw host-1.example.invalid at 192.0.2.1 drop at T+32 min" in html
    replacements = html.split('id="wizard-replacements"')[1].split("</table>")[0]
    assert "vpn1.corp.internal" in replacements
    assert "host-1.example.invalid" in replacements
    draft = html.split('id="h-draft"')[1]
    for original in ("Alice Miller", "vpn1.corp.internal", "10.1.2.3", "CHG-1234", "alice.m@acme.com"):
        assert original not in draft
    assert "The detectors find nothing more" in html
    conflicts = html.split('id="wizard-conflicts"')[1].split("</section>")[0]
    assert "Inside Candidate" in conflicts
    assert "Outside Candidate" not in conflicts
    assert not Case.objects.exists()


def test_drafting_makes_a_draft_that_a_second_person_must_approve(client):
    incident = closed_incident_with_a_story()
    author = author_of(incident)
    client.force_login(author)

    response = client.post(f"/interviews/from-incident/{incident.reference}/")

    version = CaseVersion.objects.get()
    assert version.status == CaseVersion.Status.DRAFT
    assert version.source_incident_id == incident.pk
    assert response.status_code == 302
    assert response["Location"] == f"/interviews/cases/{version.case.slug}/"
    page = client.get(response["Location"]).content.decode()
    assert "Draft" in page
    assert "A case needs at least one key fact." in page

    doc = cases.case_document(version)
    doc["facts"][0]["importance"] = "key"
    doc["facts"][0]["text"] += " Alice Miller confirmed it."
    cases.apply_case_document(doc, actor=author)
    page = client.get(f"/interviews/cases/{version.case.slug}/").content.decode()
    finding = version.findings.get(status="open")
    assert f"Open finding #{finding.pk}: person &#x27;Alice Miller&#x27; in fact F1" in page
    client.post(f"/interviews/cases/{version.case.slug}/submit/")
    assert CaseVersion.objects.get().status == CaseVersion.Status.REVIEW  # the reviewer decides findings

    author.user_permissions.add(Permission.objects.get(codename="publish_caseversion"))
    client.force_login(type(author).objects.get(pk=author.pk))
    refused = client.post(f"/interviews/cases/{version.case.slug}/approve/", follow=True)
    assert "A second person must approve a case" in refused.content.decode()
    assert CaseVersion.objects.get().status == CaseVersion.Status.REVIEW

    client.force_login(publisher())
    refused = client.post(f"/interviews/cases/{version.case.slug}/approve/", follow=True).content.decode()
    assert "1 finding(s) are open" in refused
    assert CaseVersion.objects.get().status == CaseVersion.Status.REVIEW
    assert f'id="replacement-{finding.pk}"' in refused  # the review form, prefilled with a suggestion

    client.post(
        f"/interviews/cases/{version.case.slug}/findings/{finding.pk}/",
        {"decision": "replace", "replacement": "Person Z"},
    )
    finding.refresh_from_db()
    assert (finding.status, finding.replacement, finding.text) == ("replaced", "Person Z", "")
    client.post(f"/interviews/cases/{version.case.slug}/approve/")
    assert CaseVersion.objects.get().status == CaseVersion.Status.PUBLISHED
    published = client.get(f"/interviews/cases/{version.case.slug}/").content.decode()
    assert "Alice Miller" not in published
    assert "Person Z confirmed it." in published


def test_the_wizard_hides_what_the_user_may_not_see_and_refuses_open_incidents(client):
    incident = closed_incident_with_a_story()
    client.force_login(responder_of(incident))  # no case-library permission
    assert client.get(f"/interviews/from-incident/{incident.reference}/").status_code == 404
    outsider = UserFactory()
    outsider.user_permissions.add(*Permission.objects.filter(codename__in=AUTHOR_PERMS))
    secret = incident_in(Incident.State.CLOSED, domain_slug="security")
    client.force_login(outsider)
    assert client.get(f"/interviews/from-incident/{secret.reference}/").status_code == 404
    assert client.post(f"/interviews/from-incident/{secret.reference}/").status_code == 404
    assert client.get("/interviews/from-incident/INC-nonsense/").status_code == 404

    resolved = incident_in(Incident.State.RESOLVED)
    client.force_login(author_of(resolved))
    response = client.post(f"/interviews/from-incident/{resolved.reference}/")
    assert response.status_code == 409
    assert "Only a closed incident becomes a case" in response.content.decode()
    assert not Case.objects.exists()
    assert client.get("/interviews/cases/no-such-case/").status_code == 404
    assert client.post("/interviews/cases/no-such-case/approve/").status_code == 404
