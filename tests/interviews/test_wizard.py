from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError

from incidents import lifecycle as incident_lifecycle
from incidents import services as incident_services
from incidents.models import Incident
from interviews import cases, wizard
from interviews.models import CaseVersion
from tests.factories import UserFactory, incident_in, responder_of
from tests.interviews.helpers import interviewer, publisher

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 5, 14, 0, tzinfo=UTC)


def closed_incident_with_a_story() -> Incident:
    with time_machine.travel(T0, tick=False) as traveller:
        incident = incident_in(
            Incident.State.RESOLVED, description="The VPN drops. It drops every ten minutes."
        )
        responder = responder_of(incident)
        responder.first_name, responder.last_name = "Alice", "Miller"
        responder.save()
        traveller.move_to(T0 + timedelta(minutes=20))
        incident_services.add_comment(
            incident,
            author=responder,
            body="Alice Miller saw vpn1.corp.internal at 10.1.2.3 drop at 14:32; see CHG-1234, mail alice.m@acme.com.",
            public=False,
        )
        traveller.move_to(T0 + timedelta(minutes=90))
        return incident_lifecycle.close_incident(
            incident,
            actor=responder,
            cause="Memory leak in the firmware of vpn1.corp.internal.",
            measures="Firmware upgraded. Memory alarms added.",
            resolution_code="fixed",
        )


def test_a_closed_incident_becomes_a_pseudonymised_draft_case():
    incident = closed_incident_with_a_story()
    author = interviewer()
    author.is_superuser = True
    author.save()

    version, findings = wizard.draft_case_from_incident(incident, actor=author)

    assert findings == []
    assert version.status == CaseVersion.Status.DRAFT
    assert version.source_incident_id == incident.pk
    assert version.presentation.startswith("VPN drops every ten minutes. The VPN drops.")
    texts = [f.text for f in version.facts.all()]
    comment = next(t for t in texts if "saw" in t)
    assert comment == (
        "T+20 min: Person A saw host-1.example.invalid at 192.0.2.1 drop at T+32 min; see REF-A, "
        "mail mailbox-1@example.invalid."
    )
    assert all(f.offset_minutes is not None for f in version.facts.all())
    problem = version.problems.get()
    assert problem.statement == "Memory leak in the firmware of host-1.example.invalid."
    assert [s.action for s in version.solutions.order_by("rank")] == [
        "Firmware upgraded.",
        "Memory alarms added.",
    ]
    assert "Restarted the VPN concentrator." in version.actual_outcome
    assert set(version.pseudonyms.values()) >= {"person", "host", "ip", "reference", "email"}
    assert "Alice" not in str(version.pseudonyms)


def test_only_a_closed_incident_the_author_may_see_becomes_a_case():
    with pytest.raises(ValidationError):
        wizard.draft_case_from_incident(
            incident_in(Incident.State.RESOLVED), actor=UserFactory(is_superuser=True)
        )
    secret = incident_in(Incident.State.CLOSED, domain_slug="security")
    with pytest.raises(PermissionDenied):
        wizard.draft_case_from_incident(secret, actor=interviewer())


def test_a_drafted_case_is_not_published_while_a_finding_is_open_and_needs_a_second_person():
    incident = closed_incident_with_a_story()
    author = UserFactory(is_superuser=True)
    version, _ = wizard.draft_case_from_incident(incident, actor=author)
    doc = cases.case_document(version)
    doc["facts"][0]["importance"] = "key"
    doc["facts"][0]["text"] += " Alice Miller confirmed it from 10.9.9.9."
    version, _ = cases.apply_case_document(doc, actor=author)
    cases.submit_for_review(version, actor=author)
    reviewer = publisher()

    with pytest.raises(cases.FindingsOpen) as error:
        cases.approve(version, actor=reviewer)
    assert "person 'Alice Miller'" in str(error.value)
    assert "ip '10.9.9.9'" in str(error.value)

    for finding in version.findings.filter(status="open"):
        cases.decide_finding(finding, actor=reviewer, decision="replace")
    version.refresh_from_db()
    assert "Alice" not in version.facts.get(key=doc["facts"][0]["key"]).text
    with pytest.raises(PermissionDenied):
        cases.approve(version, actor=author)
    assert cases.approve(version, actor=reviewer).status == CaseVersion.Status.PUBLISHED


def test_drafting_twice_makes_two_cases():
    incident = closed_incident_with_a_story()
    admin = UserFactory(is_superuser=True)
    first, _ = wizard.draft_case_from_incident(incident, actor=admin)
    second, _ = wizard.draft_case_from_incident(incident, actor=admin)
    assert first.case.slug == f"from-{incident.reference.lower()}"
    assert second.case.slug == f"from-{incident.reference.lower()}-2"
