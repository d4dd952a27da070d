from __future__ import annotations

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError

from interviews import lifecycle, services, tasks
from interviews.lifecycle import InvalidSessionTransition
from interviews.models import (
    Candidate,
    CandidateProblem,
    ConsensusRating,
    Question,
    Rating,
    Reveal,
    Session,
    SessionEvent,
)
from tests.factories import UserFactory, incident_in
from tests.interviews.helpers import (
    SECRET_FACT_TEXT,
    SECRET_PARTIAL,
    case_doc,
    lead_of,
    new_session,
    published_version,
    rate_all,
    raters_of,
    rubric_keys,
    session_in,
)

pytestmark = pytest.mark.django_db


def test_a_session_freezes_its_case_version_and_needs_a_published_one():
    version = published_version()
    assert not version.is_frozen
    session = new_session(version)
    version.refresh_from_db()
    assert version.is_frozen
    assert session.events.get().kind == SessionEvent.Kind.CREATED

    draft = version.case.versions.create(number=9, title="x", presentation="x", rubric=version.rubric)
    with pytest.raises(ValidationError) as error:
        new_session(draft)
    assert "case_version" in error.value.message_dict


def test_a_candidate_without_consent_cannot_be_interviewed():
    candidate = services.create_candidate(name="No Consent")
    with pytest.raises(ValidationError) as error:
        services.create_session(case_version=published_version(), candidate=candidate, lead=UserFactory())
    assert "consent" in str(error.value.message_dict["candidate"])


def test_questions_are_recorded_by_the_lead_with_their_phase_and_late_ones_flagged():
    session = session_in("gather")
    lead = lead_of(session)
    early = services.record_question(session, actor=lead, text="What do the logs say?")
    session = lifecycle.advance_session(session, actor=lead)
    late = services.record_question(session, actor=lead, text="Who renews certificates?")

    assert (early.phase, early.late) == ("gather", False)
    assert (late.phase, late.late) == ("extract", True)
    with pytest.raises(PermissionDenied):
        services.record_question(session, actor=raters_of(session)[-1], text="Me too?")


def test_no_question_is_taken_while_paused_or_after_the_live_phases():
    for state in ("paused", "rating", "scheduled"):
        session = session_in(state)
        with pytest.raises(InvalidSessionTransition):
            services.record_question(session, actor=lead_of(session), text="Anything?")


def test_a_reveal_is_worded_exactly_as_the_case_and_answers_the_question():
    session = session_in("gather")
    lead = lead_of(session)
    question = services.record_question(session, actor=lead, text="What do the logs say?")
    services.reveal_fact(session, actor=lead, fact="F1", question=question)
    partial = services.reveal_fact(session, actor=lead, fact="F2", level="partial")
    full = services.reveal_fact(session, actor=lead, fact="F2", level="full")

    assert partial.text == SECRET_PARTIAL
    assert full.text == SECRET_FACT_TEXT
    question.refresh_from_db()
    assert question.answer == Question.Answer.REVEALED
    assert [e.data["fact"] for e in session.events.filter(kind="reveal")] == ["F1", "F2", "F2"]


def test_revealing_the_same_fact_twice_changes_nothing():
    session = session_in("gather")
    first = services.reveal_fact(session, actor=lead_of(session), fact="F1")
    again = services.reveal_fact(session, actor=lead_of(session), fact="F1")
    assert first.pk == again.pk
    assert Reveal.objects.filter(session=session).count() == 1


def test_a_fact_waits_for_the_facts_it_requires():
    session = session_in("gather")
    with pytest.raises(ValidationError) as error:
        services.reveal_fact(session, actor=lead_of(session), fact="F2")
    assert "F1" in str(error.value.message_dict["fact"])


def test_a_partial_reveal_needs_a_partial_text_and_facts_come_from_the_sessions_case():
    session = session_in("gather")
    with pytest.raises(ValidationError):
        services.reveal_fact(session, actor=lead_of(session), fact="F1", level="partial")
    with pytest.raises(ValidationError):
        services.reveal_fact(session, actor=lead_of(session), fact="NOPE")


def test_not_available_and_free_answers():
    session = session_in("gather")
    lead = lead_of(session)
    q1 = services.record_question(session, actor=lead, text="Was there a full moon?")
    q2 = services.record_question(session, actor=lead, text="Is the shop big?")
    services.answer_question(session, actor=lead, question=q1, answer="not_available")
    services.answer_question(session, actor=lead, question=q2, answer="free", text="Medium-sized.")
    q1.refresh_from_db()
    q2.refresh_from_db()
    assert (q1.answer, q2.answer, q2.answer_text) == ("not_available", "free", "Medium-sized.")
    with pytest.raises(ValidationError):
        services.answer_question(session, actor=lead, question=q2, answer="free", text=" ")


def test_the_candidate_cites_only_revealed_facts_and_late_problems_are_flagged():
    session = session_in("gather")
    lead = lead_of(session)
    reveal = services.reveal_fact(session, actor=lead, fact="F1")
    problem = services.add_candidate_problem(
        session, statement="TLS broke", cited_reveals=[reveal.pk], by_candidate=True
    )
    assert [f.key for f in problem.cited_facts.all()] == ["F1"]
    assert problem.late is False
    with pytest.raises(ValidationError):
        services.add_candidate_problem(
            session, statement="x", cited_reveals=[reveal.pk + 999], by_candidate=True
        )

    session = session_in("solve", session)
    late = services.add_candidate_problem(session, statement="No owner", by_candidate=True)
    assert late.late is True
    event = session.events.filter(kind="problem").last()
    assert event.by_candidate is True
    assert "No owner" not in str(event.data)  # the log holds ids, not the candidate's words


def test_solutions_take_the_next_rank_and_name_only_stated_problems():
    session = session_in("extract")
    problem = services.add_candidate_problem(session, statement="Cert expired", by_candidate=True)
    first = services.add_candidate_solution(
        session, action="Renew it", reason="fast", addresses=[problem.pk], by_candidate=True
    )
    second = services.add_candidate_solution(session, action="Tell customers", by_candidate=True)
    assert (first.rank, second.rank) == (1, 2)
    with pytest.raises(ValidationError):
        services.add_candidate_solution(session, action="x", addresses=[problem.pk + 1000], by_candidate=True)


def test_mapping_a_problem_needs_an_expected_problem_of_the_case():
    session = session_in("extract")
    problem = services.add_candidate_problem(session, statement="Cert expired", by_candidate=True)
    rater = raters_of(session)[-1]

    mapped = services.map_problem(session, actor=rater, problem=problem, verdict="matched", expected="P1")
    assert (mapped.verdict, mapped.matched_problem.key) == ("matched", "P1")
    with pytest.raises(ValidationError):
        services.map_problem(session, actor=rater, problem=problem, verdict="matched", expected="P9")
    with pytest.raises(ValidationError):
        services.map_problem(session, actor=rater, problem=problem, verdict="invalid", expected="P1")
    assert (
        services.map_problem(session, actor=rater, problem=problem, verdict="novel_valid").matched_problem
        is None
    )


def test_a_rating_needs_evidence_and_a_level_from_1_to_5():
    session = session_in("rating")
    rater = raters_of(session)[-1]
    with pytest.raises(ValidationError) as error:
        services.rate(session, rater=rater, dimension="communication", level=3, evidence="  ")
    assert "evidence" in error.value.message_dict
    with pytest.raises(ValidationError):
        services.rate(session, rater=rater, dimension="communication", level=6, evidence="ok")
    with pytest.raises(ValidationError):
        services.rate(session, rater=rater, dimension="nonsense", level=3, evidence="ok")


def test_rating_again_replaces_and_the_level_stays_out_of_the_log():
    session = session_in("rating")
    rater = raters_of(session)[-1]
    services.rate(session, rater=rater, dimension="communication", level=2, evidence="mumbled")
    services.rate(session, rater=rater, dimension="communication", level=4, evidence="clear after all")

    rating = Rating.objects.get(session=session, rater=rater)
    assert (rating.level, rating.evidence) == (4, "clear after all")
    events = list(session.events.filter(kind="rating"))
    assert [e.data for e in events] == [
        {"dimension": "communication", "revised": False},
        {"dimension": "communication", "revised": True},
    ]


def test_observers_neither_rate_nor_note_and_ratings_close_at_consensus():
    session = session_in("rating", observers=1)
    observer = session.members.get(role="observer").user
    with pytest.raises(PermissionDenied):
        services.rate(session, rater=observer, dimension="communication", level=3, evidence="x")
    with pytest.raises(PermissionDenied):
        services.add_note(session, actor=observer, text="hm")
    session = session_in("consensus", session)
    with pytest.raises(InvalidSessionTransition):
        services.rate(session, rater=raters_of(session)[0], dimension="communication", level=3, evidence="x")


def test_consensus_on_a_dimension_where_raters_differ_by_two_needs_the_discussion():
    session = session_in("rating")
    rate_all(session, {"communication": [2, 4], "problem_extraction": [3, 4]})
    session = lifecycle.advance_session(session, actor=lead_of(session))
    lead = lead_of(session)

    with pytest.raises(ValidationError) as error:
        services.record_consensus(session, actor=lead, dimension="communication", level=3)
    assert "differ by 2" in str(error.value.message_dict["discussion"])
    services.record_consensus(
        session, actor=lead, dimension="communication", level=3, discussion="Agreed on 3."
    )
    services.record_consensus(session, actor=lead, dimension="problem_extraction", level=4)
    assert ConsensusRating.objects.filter(session=session).count() == 2
    with pytest.raises(PermissionDenied):
        services.record_consensus(session, actor=raters_of(session)[-1], dimension="communication", level=3)


def test_notes_carry_flags_and_rubric_dimensions():
    session = session_in("gather")
    note = services.add_note(
        session, actor=lead_of(session), flag="chasing_red_herring", text="database again"
    )
    evidence = services.add_note(
        session, actor=raters_of(session)[-1], text="asked for logs first", dimension="information_gathering"
    )
    assert note.flag == "chasing_red_herring"
    assert evidence.dimension.key == "information_gathering"
    with pytest.raises(ValidationError):
        services.add_note(session, actor=lead_of(session))


def test_a_candidate_who_worked_the_source_incident_gets_a_conflict_warning():
    incident = incident_in("closed")
    worker = incident.timeline.exclude(actor=None).first().actor
    version = published_version(case_doc(slug="from-real"))
    version.source_incident = incident
    version.save(update_fields=["source_incident"])

    knows = services.create_candidate(name="Insider", user=worker, consent=True)
    stranger = services.create_candidate(name="Outsider", email="new@example.net", consent=True)
    lead = UserFactory()
    flagged = services.create_session(case_version=version, candidate=knows, lead=lead)
    clean = services.create_session(case_version=version, candidate=stranger, lead=lead)

    assert incident.reference in flagged.conflict_warning
    assert clean.conflict_warning == ""
    by_email = services.create_candidate(name="Reporter", email=incident.reporter.email.upper(), consent=True)
    assert services.create_session(case_version=version, candidate=by_email, lead=lead).conflict_warning


def test_erasing_a_candidate_keeps_anonymous_statistics_and_the_log():
    session = session_in("gather")
    lead = lead_of(session)
    question = services.record_question(session, actor=lead, text="Casey asks about logs")
    services.reveal_fact(session, actor=lead, fact="F1", question=question)
    services.update_notepad(session, text="my private notes")
    session = session_in("extract", session)
    services.add_candidate_problem(session, statement="Casey thinks TLS", by_candidate=True)
    session = session_in("closed", session)
    events = session.events.count()

    candidate = services.erase_candidate(session.candidate, actor=lead)
    again = services.erase_candidate(candidate)

    assert candidate.name.startswith("Erased candidate")
    assert candidate.email == ""
    assert again.erased_at == candidate.erased_at
    session.refresh_from_db()
    assert session.candidate_notes == ""
    assert Question.objects.get(pk=question.pk).text == services.ERASED
    assert CandidateProblem.objects.get(session=session).statement == services.ERASED
    assert Rating.objects.filter(session=session).exclude(evidence=services.ERASED).count() == 0
    # Kept: what was revealed and when, the levels, the log (with one entry for the erasure).
    assert Reveal.objects.filter(session=session).count() == 1
    assert Rating.objects.filter(session=session).count() == 2 * len(rubric_keys())
    assert session.events.count() == events + 1


def test_expired_candidates_are_erased_once_their_sessions_are_over():
    finished = session_in("closed")
    running = session_in("gather")
    Candidate.objects.update(retain_until="2026-01-01")

    with time_machine.travel("2026-06-01"):
        assert tasks.erase_expired_candidates() == 1
        assert services.erase_expired_candidates() == 0
    assert Candidate.objects.get(pk=finished.candidate_id).erased_at is not None
    assert Candidate.objects.get(pk=running.candidate_id).erased_at is None


def test_calibration_ratings_are_taken_on_closed_reference_sessions_by_outsiders():
    session = session_in("closed")
    outsider = UserFactory()
    with pytest.raises(ValidationError):
        services.rate_for_calibration(
            session, rater=outsider, dimension="communication", level=3, evidence="x"
        )
    Session.objects.filter(pk=session.pk).update(is_reference=True)
    session.refresh_from_db()
    rating = services.rate_for_calibration(
        session, rater=outsider, dimension="communication", level=5, evidence="x"
    )
    assert rating.level == 5
    with pytest.raises(PermissionDenied):
        services.rate_for_calibration(
            session, rater=lead_of(session), dimension="communication", level=3, evidence="x"
        )
