"""A case drafted from a closed medical incident: nothing identifying survives to publication.

The incident is the one issue 16 describes: it names its patient, her date of birth, two phone numbers,
a relative, two staff members, an e-mail address, a host and an IP address. Drafted, submitted and
approved by a second person, the published case must contain none of them; what the detectors are not
sure of is a finding that a reviewer accepts or replaces, one by one, before approval.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile

from incidents import lifecycle as incident_lifecycle
from incidents import services as incident_services
from incidents.models import Incident
from interviews import cases, wizard
from interviews.models import CaseFinding, CaseVersion
from tests.factories import TeamFactory, UserFactory, incident_in, responder_of
from tests.interviews.helpers import interviewer, publisher

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 3, 5, 13, 0, tzinfo=UTC)

PLANTED = [
    "Maria Schulz",  # the patient
    "Schulz",
    "14.03.1957",  # her date of birth
    "0171 2345678",  # her son's mobile
    "040 1234-567",  # the ward's number
    "Thomas Schulz",  # the relative
    "Jonas Weber",  # staff, a desk user (the reporter)
    "Anna Keller",  # staff named only in the text
    "julia.becker@klinikum-nord.de",
    "pacs-01.klinikum-nord.de",
    "10.20.30.40",
    "Julia Becker",
    "2026-004711",  # the case number of the hospital information system
    "Maria_Schulz",  # in an attachment's file name
]


def of_medical_team(user):  # type: ignore[no-untyped-def]
    """`user` in a team handling `medical`: a draft from a medical incident is theirs to read (SPEC section 1)."""
    from incidents.models import Membership

    Membership.objects.create(user=user, team=TeamFactory(domains=["medical"]))
    return type(user).objects.get(pk=user.pk)


def closed_medical_incident() -> Incident:
    with time_machine.travel(T0, tick=False) as traveller:
        reporter = UserFactory(first_name="Jonas", last_name="Weber", username="jweber")
        incident = incident_in(
            Incident.State.RESOLVED,
            domain_slug="medical",
            reporter=reporter,
            title="Sturz von Patientin Maria Schulz auf Station 4B",
            description=(
                "Patientin Maria Schulz (geb. 14.03.1957) wurde um 14:32 von Pfleger Jonas Weber neben dem "
                "Bett gefunden. Dr. Anna Keller untersuchte sie um 14:40. Sie war ansprechbar. Ihr Sohn "
                "Thomas Schulz ist unter 0171 2345678 erreichbar. Die Station hat die 040 1234-567. "
                "Die Aufnahme lief unter Fallnummer 2026-004711."
            ),
        )
        responder = responder_of(incident)
        responder.first_name, responder.last_name = "Sabine", "Krause"
        responder.save()
        traveller.move_to(T0 + timedelta(minutes=50))
        incident_services.add_comment(
            incident,
            author=responder,
            body=(
                "Röntgenbild liegt auf pacs-01.klinikum-nord.de (10.20.30.40). Frau Schulz hat keine Fraktur. "
                "Julia Becker aus dem Qualitätsmanagement (julia.becker@klinikum-nord.de) ist informiert."
            ),
            public=False,
        )
        incident_services.add_attachment(
            incident,
            uploaded_by=responder,
            upload=SimpleUploadedFile("Sturzprotokoll_Maria_Schulz.txt", b"Sturz um 14:32\n"),
        )
        traveller.move_to(T0 + timedelta(minutes=120))
        return incident_lifecycle.close_incident(
            incident,
            actor=responder,
            cause="Das Bettgitter von Frau Schulz war nicht hochgestellt; Sabine Krause fand es unten.",
            measures="Bettgitter-Check in die Übergabe aufgenommen. Dr. Keller schult das Team.",
            resolution_code="fixed",
        )


def everything_published(version: CaseVersion) -> str:
    return "\n".join(text for _where, text in cases.case_texts(version))


def test_the_medical_incident_of_issue_16_publishes_nothing_identifying():
    incident = closed_medical_incident()
    author = UserFactory(is_superuser=True)

    version, open_findings = wizard.draft_case_from_incident(incident, actor=author)

    texts = everything_published(version)
    for original in PLANTED:
        flagged = version.findings.filter(status="open", text__contains=original).exists()
        assert original not in texts or flagged, original
    # One person, one pseudonym, wherever and however they are named.
    patient = version.title.split("Patientin ")[1].split(" auf")[0]
    assert patient.startswith("Person ")
    assert f"Patientin {patient} (geb. [date of birth])" in version.presentation
    assert f"Frau {patient} hat keine Fraktur" in texts
    assert version.problems.get().statement.startswith(f"Das Bettgitter von Frau {patient} war")
    son = version.presentation.split("Ihr Sohn ")[1].split(" ist")[0]
    assert son.startswith("Person ")
    assert son != patient
    doctor = version.presentation.split("Dr. ")[1].split(" untersuchte")[0]
    assert f"Dr. {doctor} schult das Team." in texts
    # Text intact: a title's dot ends no sentence, and nothing is re-joined or split.
    assert "Dr. Anna" not in texts
    assert "T+1 h 32 min" in version.presentation
    assert "T+1 h 40 min" in version.presentation
    assert "host-1.example.invalid (192.0.2.1)" in texts
    assert "person-" in texts  # julia.becker@ is Julia Becker's mailbox
    assert "A txt file was attached." in texts  # not its name, which names the patient

    doc = cases.case_document(version)
    doc["facts"][0]["importance"] = "key"  # the author's part: which facts matter
    version, _ = cases.apply_case_document(doc, actor=author)
    cases.submit_for_review(version, actor=author)
    reviewer = publisher()
    for finding in version.findings.filter(status="open"):
        cases.decide_finding(finding, actor=reviewer, decision="replace")
    assert cases.approve(version, actor=reviewer).status == CaseVersion.Status.PUBLISHED
    published = everything_published(CaseVersion.objects.get(pk=version.pk))
    for original in PLANTED:
        assert original not in published, original
    assert open_findings == [] or all("'" in m for m in open_findings)


def draft_with_findings() -> tuple[CaseVersion, CaseFinding, CaseFinding]:
    incident = closed_medical_incident()
    author = UserFactory(is_superuser=True)
    version, _ = wizard.draft_case_from_incident(incident, actor=author)
    doc = cases.case_document(version)
    doc["facts"][0]["importance"] = "key"
    doc["facts"][0]["text"] += " Rückfragen an Jonas Weber. Die Pumpe Evita V800 lief."
    version, _ = cases.apply_case_document(doc, actor=author)
    weber = version.findings.get(kind="person", text="Jonas Weber")
    evita = version.findings.get(kind="person", text="Evita")
    assert (weber.status, weber.certain, evita.status, evita.certain) == ("open", True, "open", False)
    return version, weber, evita


def test_approval_is_refused_until_each_finding_is_accepted_or_replaced():
    version, weber, evita = draft_with_findings()
    cases.submit_for_review(version, actor=version.created_by)
    reviewer = publisher()

    with pytest.raises(cases.FindingsOpen) as refused:
        cases.approve(version, actor=reviewer)
    assert set(refused.value.findings) == {weber.pk, evita.pk}

    cases.decide_finding(evita, actor=reviewer, decision="accept")
    assert cases.decide_finding(evita, actor=reviewer, decision="accept").status == "accepted"  # no-op
    with pytest.raises(cases.FindingsOpen):
        cases.approve(version, actor=reviewer)

    replaced = cases.decide_finding(weber, actor=reviewer, decision="replace", replacement="Person Q")
    assert (replaced.status, replaced.text, replaced.replacement) == ("replaced", "", "Person Q")
    assert replaced.decided_by == reviewer
    assert version.facts.get(key="F1").text.endswith("Rückfragen an Person Q. Die Pumpe Evita V800 lief.")
    with pytest.raises(cases.FindingRefused):
        cases.decide_finding(replaced, actor=reviewer, decision="accept")

    assert cases.approve(version, actor=reviewer).status == CaseVersion.Status.PUBLISHED
    evita.refresh_from_db()
    with pytest.raises(cases.FindingRefused):
        cases.decide_finding(evita, actor=reviewer, decision="replace")


def test_a_name_put_back_is_offered_the_pseudonym_it_already_has():
    version, weber, evita = draft_with_findings()
    nurse = version.presentation.split("Pfleger ")[1].split(" neben")[0]
    assert nurse.startswith("Person ")
    assert cases.suggested_replacement(weber) == nurse
    assert "Jonas" not in str(version.pseudonym_keys)
    fresh = cases.suggested_replacement(evita)
    assert fresh.startswith("Person ")
    assert fresh not in cases.used_text(version)


def test_a_replacement_that_identifies_someone_is_refused():
    _version, weber, _evita = draft_with_findings()
    with pytest.raises(cases.ValidationError) as error:
        cases.decide_finding(weber, actor=publisher(), decision="replace", replacement="Dr. Hans Meier")
    assert "replacement" in error.value.message_dict


def test_an_accepted_finding_stays_accepted_in_the_next_version_and_an_edited_one_goes_away():
    version, weber, evita = draft_with_findings()
    reviewer = publisher()
    cases.decide_finding(evita, actor=reviewer, decision="accept")
    doc = cases.case_document(version)
    doc["facts"][0]["text"] = doc["facts"][0]["text"].replace(" Rückfragen an Jonas Weber.", "")
    version, _ = cases.apply_case_document(doc, actor=version.created_by)

    assert not version.findings.filter(pk=weber.pk).exists()
    assert version.findings.get(pk=evita.pk).status == "accepted"
    assert cases.refresh_findings(version) == []

    copy = cases.new_version(version, actor=version.created_by)
    carried = copy.findings.get(text="Evita")
    assert (carried.status, carried.decided_by) == ("accepted", reviewer)


def test_findings_through_the_api(client):
    version, weber, evita = draft_with_findings()
    slug = version.case.slug
    url = f"/api/v1/interviews/cases/{slug}/findings/"

    client.force_login(of_medical_team(interviewer()))
    listed = client.get(url).json()
    assert {f["text"]: f["status"] for f in listed} == {"Jonas Weber": "open", "Evita": "open"}
    assert next(f for f in listed if f["text"] == "Jonas Weber")["suggestion"].startswith("Person ")
    forbidden = client.post(
        f"{url}{weber.pk}/decide/", {"decision": "accept"}, content_type="application/json"
    )
    assert forbidden.status_code == 403  # deciding is a reviewer's

    client.force_login(of_medical_team(publisher()))
    bad = client.post(f"{url}{weber.pk}/decide/", {"decision": "ignore"}, content_type="application/json")
    assert bad.status_code == 400
    assert "decision" in bad.json()
    bad = client.post(
        f"{url}{weber.pk}/decide/",
        {"decision": "replace", "replacement": "10.1.1.1"},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert "replacement" in bad.json()
    assert (
        client.post(
            f"{url}999999/decide/", {"decision": "accept"}, content_type="application/json"
        ).status_code
        == 404
    )
    other = cases.apply_case_document({**cases.case_document(version), "slug": "other-case"}, actor=None)[0]
    assert (
        client.post(
            f"/api/v1/interviews/cases/{other.case.slug}/findings/{weber.pk}/decide/",
            {"decision": "accept"},
            content_type="application/json",
        ).status_code
        == 404
    )

    ok = client.post(f"{url}{weber.pk}/decide/", {"decision": "replace"}, content_type="application/json")
    assert ok.status_code == 200
    assert ok.json()["status"] == "replaced"
    ok = client.post(f"{url}{evita.pk}/decide/", {"decision": "accept"}, content_type="application/json")
    assert ok.json()["status"] == "accepted"
    detail = client.get(f"/api/v1/interviews/cases/{slug}/").json()
    assert "pseudonymisation" not in detail["publication_problems"]
    assert {f["status"] for f in detail["findings"]} == {"replaced", "accepted"}

    again = client.post(f"{url}{weber.pk}/decide/", {"decision": "accept"}, content_type="application/json")
    assert again.status_code == 409
    assert again.json()["code"] == "invalid_transition"


def test_approving_with_open_findings_answers_409_through_the_api(client):
    version, _weber, _evita = draft_with_findings()
    cases.submit_for_review(version, actor=version.created_by)
    client.force_login(of_medical_team(publisher()))
    refused = client.post(
        f"/api/v1/interviews/cases/{version.case.slug}/approve/", {}, content_type="application/json"
    )
    assert refused.status_code == 409
    assert "finding(s) are open" in refused.json()["detail"]
    assert CaseVersion.objects.get(pk=version.pk).status == CaseVersion.Status.REVIEW


def test_listing_findings_reads_the_version_once_however_many_there_are(client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    version, _weber, _evita = draft_with_findings()
    client.force_login(of_medical_team(interviewer()))
    url = f"/api/v1/interviews/cases/{version.case.slug}/findings/"
    with CaptureQueriesContext(connection) as few:
        assert len(client.get(url).json()) == 2
    doc = cases.case_document(version)
    doc["facts"][0]["text"] += " Gemeldet von 10.9.9.1, 10.9.9.2, 10.9.9.3 und 10.9.9.4."
    cases.apply_case_document(doc, actor=version.created_by)
    with CaptureQueriesContext(connection) as many:
        assert len(client.get(url).json()) == 6
    assert len(many.captured_queries) == len(few.captured_queries)
