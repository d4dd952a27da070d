from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from interviews import cases
from interviews.cases import InvalidCaseTransition
from interviews.models import Case, CaseVersion, Fact, Rubric
from tests.interviews.helpers import case_doc, interviewer, new_session, publisher

pytestmark = pytest.mark.django_db
Status = CaseVersion.Status


def test_a_document_round_trips_and_applying_it_twice_changes_nothing():
    doc = case_doc()
    version, changed = cases.apply_case_document(doc, actor=interviewer())
    again, changed_again = cases.apply_case_document(cases.case_document(version))

    assert changed is True
    assert (again.pk, changed_again) == (version.pk, False)
    assert version.number == 1
    assert version.status == Status.DRAFT
    assert [f.key for f in version.facts.all()] == ["F1", "F2", "F3", "F4", "F5"]
    assert [f.key for f in Fact.objects.get(version=version, key="F2").requires.all()] == ["F1"]
    assert cases.case_document(version)["problems"][0]["required_facts"] == ["F1", "F2"]
    assert cases.case_document(version)["solutions"][0]["addresses"] == ["P1"]


def test_editing_an_unused_draft_changes_it_in_place():
    version, _ = cases.apply_case_document(case_doc())
    edited, changed = cases.apply_case_document(case_doc(title="Payments fail at one"))
    assert changed
    assert edited.pk == version.pk
    assert edited.title == "Payments fail at one"


def test_a_version_in_review_goes_back_to_draft_when_edited():
    author = interviewer()
    version, _ = cases.apply_case_document(case_doc(), actor=author)
    cases.submit_for_review(version, actor=author)
    edited, _ = cases.apply_case_document(case_doc(brief="A new brief."))
    assert edited.pk == version.pk
    assert edited.status == Status.DRAFT
    assert edited.submitted_at is None


def test_a_version_used_by_a_session_is_frozen_and_editing_makes_a_new_version():
    session = new_session()
    used = session.case_version
    slug = used.case.slug

    edited, changed = cases.apply_case_document(case_doc(slug=slug, title="Revised"))

    assert changed
    assert (edited.number, edited.status) == (2, Status.DRAFT)
    used.refresh_from_db()
    assert used.title == "Payments fail at noon"
    assert used.facts.count() == 5  # untouched
    assert session.case_version_id == used.pk


def test_publishing_needs_a_second_person_and_retires_the_previous_version():
    author = interviewer()
    v1, _ = cases.apply_case_document(case_doc(), actor=author)
    cases.submit_for_review(v1, actor=author)
    with pytest.raises(PermissionDenied):
        cases.approve(v1, actor=author)
    reviewer = publisher()
    v1 = cases.approve(v1, actor=reviewer)
    assert (v1.status, v1.approved_by) == (Status.PUBLISHED, reviewer)

    v2 = cases.new_version(v1, actor=author)
    cases.submit_for_review(v2, actor=author)
    cases.approve(v2, actor=reviewer)
    v1.refresh_from_db()
    assert v1.status == Status.RETIRED
    assert Case.objects.get().versions.filter(status=Status.PUBLISHED).get().number == 2


def test_an_incomplete_case_cannot_go_to_review():
    version, _ = cases.apply_case_document(
        case_doc(presentation="Only one sentence.", facts=[], problems=[], solutions=[], harmful_actions=[])
    )
    with pytest.raises(ValidationError) as error:
        cases.submit_for_review(version, actor=interviewer())
    assert set(error.value.message_dict) >= {"presentation", "facts", "problems", "solutions"}


def test_case_transitions_follow_the_table():
    version, _ = cases.apply_case_document(case_doc())
    with pytest.raises(InvalidCaseTransition) as error:
        cases.approve(version, actor=publisher())
    assert error.value.allowed_actions == ["submit"]
    with pytest.raises(InvalidCaseTransition):
        cases.retire(version, actor=publisher())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"slug": "no spaces"}, "slug"),
        ({"title": ""}, "title"),
        ({"domain": "astrology"}, "domain"),
        ({"rubric": "nope"}, "rubric"),
        ({"time_boxes": {"gather": 5}}, "time_boxes.gather"),
        ({"time_boxes": {"lunch": 600}}, "time_boxes"),
        ({"difficulty": 9}, "difficulty"),
    ],
)
def test_invalid_documents_name_the_field(change, field):
    with pytest.raises(ValidationError) as error:
        cases.apply_case_document(case_doc(**change))
    assert field in error.value.message_dict


def test_invalid_facts_problems_and_solutions_name_their_position():
    doc = case_doc()
    doc["facts"][1]["requires"] = ["F9"]
    doc["facts"][2]["importance"] = "crucial"
    doc["facts"].append({"key": "F1", "title": "dup", "text": "dup"})
    doc["problems"][0]["weight"] = 0
    doc["solutions"][0]["addresses"] = ["P7"]
    with pytest.raises(ValidationError) as error:
        cases.apply_case_document(doc)
    assert set(error.value.message_dict) >= {
        "facts[1].requires",
        "facts[2].importance",
        "facts[5].key",
        "problems[0].weight",
        "solutions[0].addresses",
    }


def test_prerequisite_cycles_are_refused():
    doc = case_doc()
    doc["facts"][0]["requires"] = ["F2"]
    with pytest.raises(ValidationError) as error:
        cases.apply_case_document(doc)
    assert "cycle" in str(error.value.message_dict["facts"])


def test_the_default_rubric_has_six_anchored_dimensions():
    rubric = Rubric.objects.get(slug="incident-process")
    dims = list(rubric.dimensions.all())
    assert len(dims) == 6
    assert all(set(d.anchors) == {"1", "2", "3", "4", "5"} for d in dims)


def test_rubric_documents_apply_idempotently():
    doc = cases.rubric_document(Rubric.objects.get(slug="incident-process"))
    doc["slug"] = "short"
    doc["dimensions"] = doc["dimensions"][:2]
    rubric, changed = cases.apply_rubric_document(doc)
    assert changed
    assert rubric.dimensions.count() == 2
    assert cases.apply_rubric_document(doc) == (rubric, False)
    doc["dimensions"][0]["anchors"] = {"1": "only one"}
    with pytest.raises(ValidationError):
        cases.apply_rubric_document(doc)
