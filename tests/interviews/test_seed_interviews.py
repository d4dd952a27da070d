from __future__ import annotations

import pytest
from django.core.management import call_command

from interviews import scoring
from interviews.models import Case, CaseVersion, Rating, Session, SessionEvent

pytestmark = pytest.mark.django_db


def test_seed_interviews_loads_two_published_cases_and_a_finished_session_once():
    call_command("seed_interviews", verbosity=0)
    counts = (
        Case.objects.count(),
        Session.objects.count(),
        SessionEvent.objects.count(),
        Rating.objects.count(),
    )
    call_command("seed_interviews", verbosity=0)

    assert (
        Case.objects.count(),
        Session.objects.count(),
        SessionEvent.objects.count(),
        Rating.objects.count(),
    ) == counts
    versions = CaseVersion.objects.filter(status="published")
    assert {v.domain.slug for v in versions} == {"it_service", "security"}
    assert all(v.approved_by_id not in (v.created_by_id, v.submitted_by_id) for v in versions)
    session = Session.objects.get()
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
