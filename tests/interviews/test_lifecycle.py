from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError

from interviews import lifecycle, services
from interviews.lifecycle import ALLOWED_FROM, Action, InvalidSessionTransition, StaleSessionVersion
from interviews.models import AppendOnlyError, PhaseRecord, Session, SessionEvent, SessionPause
from tests.interviews.helpers import lead_of, new_session, rate_all, raters_of, rubric_keys, session_in

pytestmark = pytest.mark.django_db
S = Session.State
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

INPUTS = {
    Action.PAUSE: {"reason": "fire alarm"},
    Action.VOID: {"reason": "candidate knew the incident"},
    Action.CLOSE: {"recommendation": "yes"},
}


def act(session: Session, action: Action, actor=None, **kwargs):
    return lifecycle.ACTIONS[action](
        session, actor=actor or lead_of(session), **{**INPUTS.get(action, {}), **kwargs}
    )


@pytest.mark.parametrize(
    ("action", "state"), [(a, s) for a in Action for s in S.values if s not in ALLOWED_FROM[a]]
)
def test_every_action_outside_its_states_is_refused_naming_the_allowed_ones(action, state):
    session = session_in(state)
    with pytest.raises(InvalidSessionTransition) as error:
        act(session, action)
    assert error.value.allowed_actions == lifecycle.allowed_actions(session)
    assert state in str(error.value)
    session.refresh_from_db()
    assert session.state == state


def test_a_whole_session_runs_through_every_phase_and_logs_each_change():
    session = session_in("closed")

    changes = [
        (e.data["from"], e.data["to"]) for e in session.events.filter(kind=SessionEvent.Kind.STATE_CHANGED)
    ]
    assert changes == [
        ("scheduled", "present"),
        ("present", "gather"),
        ("gather", "extract"),
        ("extract", "solve"),
        ("solve", "evaluate"),
        ("evaluate", "rating"),
        ("rating", "consensus"),
        ("consensus", "closed"),
    ]
    assert session.closed_at is not None
    assert session.recommendation == "yes"
    assert sorted(PhaseRecord.objects.filter(session=session).values_list("phase", flat=True)) == sorted(
        Session.TIMED_PHASES
    )


def test_only_the_lead_moves_phases():
    session = new_session(raters=1, observers=1)
    rater = raters_of(session)[-1]
    observer = session.members.get(role="observer").user

    for user in (rater, observer):
        with pytest.raises(PermissionDenied):
            lifecycle.start_session(session, actor=user)
    assert lifecycle.allowed_actions(session, rater) == []
    assert lifecycle.allowed_actions(session, lead_of(session)) == ["start", "void"]


def test_a_stale_version_is_refused_so_a_double_click_advances_once():
    session = session_in("present")
    version = session.version
    lifecycle.advance_session(session, actor=lead_of(session), version=version)

    with pytest.raises(StaleSessionVersion):
        lifecycle.advance_session(session, actor=lead_of(session), version=version)
    session.refresh_from_db()
    assert session.state == S.GATHER


def test_from_state_guards_a_double_click_whatever_else_changed():
    session = session_in("gather")
    services.reveal_fact(session, actor=lead_of(session), fact="F1")  # bumps the version
    lifecycle.advance_session(session, actor=lead_of(session), from_state="gather")

    with pytest.raises(InvalidSessionTransition):
        lifecycle.advance_session(session, actor=lead_of(session), from_state="gather")
    session.refresh_from_db()
    assert session.state == S.EXTRACT


def test_the_deadline_is_held_on_the_server_with_the_candidates_extra_time():
    session = new_session(extra_time_percent=50)
    with time_machine.travel(T0, tick=False):
        session = lifecycle.start_session(session, actor=lead_of(session))

    assert session.phase_started_at == T0
    assert session.phase_deadline == T0 + timedelta(seconds=270)  # 3 min + 50 %
    clock = lifecycle.clock(session, now=T0 + timedelta(seconds=60))
    assert (clock.budget_seconds, clock.elapsed_seconds, clock.remaining_seconds) == (270, 60, 210)
    assert not clock.warning
    assert not clock.overrun


def test_the_clock_warns_at_80_percent_and_counts_the_overrun():
    session = new_session()
    with time_machine.travel(T0, tick=False):
        session = session_in("gather", session)  # 900 s

    assert not lifecycle.clock(session, now=T0 + timedelta(seconds=719)).warning
    assert lifecycle.clock(session, now=T0 + timedelta(seconds=720)).warning
    late = lifecycle.clock(session, now=T0 + timedelta(seconds=1000))
    assert late.overrun
    assert late.overrun_seconds == 100
    assert late.remaining_seconds == -100


def test_leaving_a_phase_late_records_the_overrun_and_on_time_records_none():
    session = new_session()
    with time_machine.travel(T0, tick=False) as traveller:
        session = session_in("gather", session)
        traveller.move_to(T0 + timedelta(seconds=960))
        session = lifecycle.advance_session(session, actor=lead_of(session))
        traveller.move_to(T0 + timedelta(seconds=1000))
        session = lifecycle.advance_session(session, actor=lead_of(session))

    gather = PhaseRecord.objects.get(session=session, phase="gather")
    assert (gather.budget_seconds, gather.overrun_seconds) == (900, 60)
    assert gather.ended_at == T0 + timedelta(seconds=960)
    assert PhaseRecord.objects.get(session=session, phase="extract").overrun_seconds == 0
    overruns = session.events.filter(kind=SessionEvent.Kind.OVERRUN)
    assert [(e.data["phase"], e.data["seconds"]) for e in overruns] == [("gather", 60)]


def test_a_pause_stops_the_clock_and_moves_the_deadline_by_the_paused_time():
    session = new_session()
    with time_machine.travel(T0, tick=False) as traveller:
        session = session_in("gather", session)
        traveller.move_to(T0 + timedelta(seconds=100))
        session = lifecycle.pause_session(session, actor=lead_of(session), reason="fire alarm")
        frozen = lifecycle.clock(session, now=T0 + timedelta(seconds=400))
        traveller.move_to(T0 + timedelta(seconds=400))
        session = lifecycle.resume_session(session, actor=lead_of(session))

    assert frozen.paused
    assert frozen.remaining_seconds == 800
    assert frozen.phase == "gather"
    assert session.state == S.GATHER
    assert session.phase_deadline == T0 + timedelta(seconds=900 + 300)
    assert lifecycle.clock(session, now=T0 + timedelta(seconds=400)).remaining_seconds == 800
    assert PhaseRecord.objects.get(session=session, phase="gather").paused_seconds == 300
    pause = SessionPause.objects.get(session=session)
    assert (pause.reason, pause.started_at, pause.ended_at) == (
        "fire alarm",
        T0 + timedelta(seconds=100),
        T0 + timedelta(seconds=400),
    )


def test_a_pause_needs_a_reason():
    session = session_in("gather")
    with pytest.raises(ValidationError):
        lifecycle.pause_session(session, actor=lead_of(session), reason="  ")


def test_untimed_phases_have_no_deadline():
    session = session_in("rating")
    assert session.phase_deadline is None
    assert lifecycle.clock(session).remaining_seconds is None
    assert session.rating_started_at is not None


def test_consensus_waits_for_every_raters_rating_on_every_dimension():
    session = session_in("rating", raters=1)
    first, second = raters_of(session)
    for key in rubric_keys():
        services.rate(session, rater=first, dimension=key, level=3, evidence="seen")
    services.rate(session, rater=second, dimension=rubric_keys()[0], level=4, evidence="seen")

    with pytest.raises(ValidationError) as error:
        lifecycle.advance_session(session, actor=lead_of(session))
    assert second.username in str(error.value.message_dict["ratings"])
    rate_all(session)
    assert lifecycle.advance_session(session, actor=lead_of(session)).state == S.CONSENSUS


def test_closing_needs_every_consensus_level_and_a_recommendation_when_hiring():
    session = session_in("consensus")
    lead = lead_of(session)
    with pytest.raises(ValidationError) as error:
        lifecycle.close_session(session, actor=lead, recommendation="yes")
    assert "consensus" in error.value.message_dict
    for key in rubric_keys():
        services.record_consensus(session, actor=lead, dimension=key, level=4)
    with pytest.raises(ValidationError) as error:
        lifecycle.close_session(session, actor=lead, recommendation="not_applicable")
    assert "recommendation" in error.value.message_dict
    assert lifecycle.close_session(session, actor=lead, recommendation="strong_yes").state == S.CLOSED


def test_a_training_session_closes_without_a_hiring_recommendation():
    session = session_in("consensus", mode="training")
    for key in rubric_keys():
        services.record_consensus(session, actor=lead_of(session), dimension=key, level=2)
    session = lifecycle.close_session(session, actor=lead_of(session))
    assert session.recommendation == "not_applicable"


def test_voiding_a_paused_session_ends_the_pause_and_is_final():
    session = session_in("paused")
    session = lifecycle.void_session(session, actor=lead_of(session), reason="candidate knew the incident")

    assert session.state == S.VOID
    assert session.voided_at is not None
    assert session.paused_at is None
    assert SessionPause.objects.get(session=session).ended_at is not None
    assert lifecycle.allowed_actions(session) == []


def test_the_session_log_is_append_only():
    session = session_in("gather")
    event = session.events.first()

    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        SessionEvent.objects.filter(session=session).update(kind="note")
    with pytest.raises(AppendOnlyError):
        SessionEvent.objects.filter(session=session).delete()
