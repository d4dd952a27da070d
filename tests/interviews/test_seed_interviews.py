from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command

from interviews import calibration, demo, scoring
from interviews.models import Case, CaseVersion, Rating, RetentionPolicy, Session, SessionEvent
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_seed_interviews_loads_three_published_cases_and_two_finished_sessions_once():
    call_command("seed_interviews", verbosity=0)
    counts = (
        Case.objects.count(),
        Session.objects.count(),
        SessionEvent.objects.count(),
        Rating.objects.count(),
        RetentionPolicy.objects.count(),
    )
    call_command("seed_interviews", verbosity=0)

    assert (
        Case.objects.count(),
        Session.objects.count(),
        SessionEvent.objects.count(),
        Rating.objects.count(),
        RetentionPolicy.objects.count(),
    ) == counts
    versions = CaseVersion.objects.filter(status="published")
    assert {v.domain.slug for v in versions} == {"it_service", "security", "medical"}
    assert all(v.approved_by_id not in (v.created_by_id, v.submitted_by_id) for v in versions)
    session = Session.objects.get(candidate__email=demo.SESSION.candidate["email"])
    assert session.state == "closed"
    assert session.members.filter(rates=True).count() == 2
    assert {r.rater.username for r in session.ratings.all()} == {"interviewer", "rater"}
    scores = scoring.score_session(session)
    assert scores.problems.matched == ["pool-size", "peak"]
    assert scores.problems.precision == pytest.approx(4 / 5)  # hits 3 + 1, one invalid
    assert scores.facts.red_herring_questions == 1
    assert scores.solutions.harmful_penalty == 0
    assert scores.rubric.spread["solution_quality"] == 2
    assert session.consensus.get(dimension__key="solution_quality").discussion


def test_the_demo_sessions_timeline_reads_in_minutes():
    call_command("seed_interviews", verbosity=0)
    session = Session.objects.get(candidate__email=demo.SESSION.candidate["email"])

    assert session.closed_at - session.started_at > timedelta(minutes=60)
    gather = session.phases.get(phase="gather")
    questions = list(session.questions.order_by("asked_at"))
    assert [round((q.asked_at - gather.started_at).total_seconds() / 60, 1) for q in questions] == [
        m for m, *_ in demo.SESSION.script
    ]
    scores = scoring.score_session(session)
    assert scores.facts.time_to_key_fact["scope"] == pytest.approx(60)  # revealed half a minute after asking
    assert scores.facts.time_to_key_fact["friday-change"] == pytest.approx(7.5 * 60)
    assert session.phases.get(phase="solve").overrun_seconds == 60  # 11 minutes of a 10-minute box
    events = list(session.events.order_by("at", "id").values_list("at", flat=True))
    assert events == sorted(events)
    assert events[-1] - events[0] > timedelta(minutes=60)


def test_the_medical_near_miss_is_complete_and_its_session_is_a_reference_for_calibration():
    call_command("seed_interviews", verbosity=0)
    version = CaseVersion.objects.get(case__slug="bedside-double-dose", status="published")
    assert version.domain.slug == "medical"
    importances = set(version.facts.values_list("importance", flat=True))
    assert importances == {"key", "supporting", "red_herring", "noise"}
    assert version.problems.count() == 4
    assert version.solutions.count() == 5
    assert version.harmful_actions.count() == 2
    session = Session.objects.get(case_version=version)
    assert session.is_reference
    assert session.candidate.organisation.slug == "medical"
    assert (
        session.candidate.retain_until - session.candidate.created_at.date()
    ).days == demo.MEDICAL_RETENTION_DAYS
    reviewer = type(session.members.first().user).objects.get(username="reviewer")
    assert list(calibration.reference_sessions_for(reviewer)) == [session]
    assert list(calibration.reference_sessions_for(UserFactory())) == []
    assert scoring.score_session(session).problems.recall == pytest.approx(7 / 8)
