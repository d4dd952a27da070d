"""Every score against a hand-computed example (the arithmetic is in the comments)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import kendalltau

from interviews.scoring import (
    ExpectedInfo,
    FactInfo,
    ModelInfo,
    ProposedSolution,
    QuestionInfo,
    RatingInfo,
    RevealInfo,
    StatedProblem,
    active_seconds,
    fact_scores,
    kendall_tau_b,
    problem_scores,
    rubric_scores,
    solution_scores,
)

G = datetime(2026, 3, 2, 9, 3, tzinfo=UTC)  # the start of phase 2


def at(seconds: float) -> datetime:
    return G + timedelta(seconds=seconds)


FACTS = [
    FactInfo("F1", "key"),
    FactInfo("F2", "key"),
    FactInfo("F3", "supporting"),
    FactInfo("F4", "noise"),
    FactInfo("F5", "red_herring"),
]
QUESTIONS = [
    QuestionInfo(1, at(50)),
    QuestionInfo(2, at(290)),
    QuestionInfo(3, at(390)),
    QuestionInfo(4, at(900), late=True),
]
REVEALS = [
    RevealInfo("F1", "full", at(60), 1),
    RevealInfo("F2", "partial", at(300), 2),
    RevealInfo("F5", "full", at(400), 3),
]
PAUSE = [(at(100), at(160))]


def test_fact_scores_weigh_key_facts_three_times_and_partial_reveals_half():
    scores = fact_scores(FACTS, REVEALS, QUESTIONS, gather_started_at=G, pauses=PAUSE)

    # weights 3 + 3 + 1 + 0 + 0 = 7; credit F1 1, F2 0.5: (3 * 1 + 3 * 0.5) / 7
    assert scores.coverage == pytest.approx(4.5 / 7)
    assert scores.key_recall == pytest.approx(0.75)  # (1 + 0.5) / 2
    assert (scores.key_facts, scores.key_facts_found) == (2, 2)
    # F2 came 300 s after the start of phase 2, 60 s of which were paused.
    assert scores.time_to_key_fact == {"F1": 60.0, "F2": 240.0}
    assert scores.questions == 4
    assert scores.late_questions == 1
    assert scores.questions_per_key_fact == pytest.approx(2.0)  # 4 questions / 2 key facts
    assert scores.question_yield == pytest.approx(0.5)  # questions 1 and 2 revealed key facts
    assert scores.red_herring_questions == 1  # question 3


def test_a_full_reveal_after_a_partial_one_earns_full_credit_and_keeps_the_first_time():
    reveals = [*REVEALS, RevealInfo("F2", "full", at(500), 4)]
    scores = fact_scores(FACTS, reveals, QUESTIONS, gather_started_at=G)

    assert scores.coverage == pytest.approx(6 / 7)
    assert scores.key_recall == 1.0
    assert scores.time_to_key_fact["F2"] == 300.0


def test_no_questions_and_no_reveals_give_zero_coverage_and_undefined_rates():
    scores = fact_scores(FACTS, [], [], gather_started_at=G)

    assert scores.coverage == 0.0
    assert scores.key_recall == 0.0
    assert scores.time_to_key_fact == {"F1": None, "F2": None}
    assert scores.questions_per_key_fact is None
    assert scores.question_yield is None


def test_active_seconds_take_out_pauses_and_an_open_pause_runs_to_the_end():
    assert active_seconds(at(0), at(300), [(at(100), at(160))]) == 240
    assert active_seconds(at(0), at(300), [(at(250), None)]) == 250
    assert active_seconds(at(0), at(300), [(at(-50), at(20)), (at(400), at(500))]) == 280
    assert active_seconds(at(10), at(0), []) == 0


EXPECTED = [ExpectedInfo("P1", 2.0, frozenset({"F1", "F2"})), ExpectedInfo("P2", 1.0, frozenset({"F3"}))]


def test_problem_precision_recall_and_f1_with_duplicates_novel_and_unmapped():
    stated = [
        StatedProblem(10, "matched", at(350), matched="P1"),
        StatedProblem(11, "matched", at(360), matched="P1"),  # a duplicate: counts for nothing
        StatedProblem(12, "novel_valid", at(370), cited=frozenset({"F1"})),
        StatedProblem(13, "invalid", at(380)),
        StatedProblem(14, "unmapped", at(390)),
    ]
    scores = problem_scores(EXPECTED, stated, REVEALS)

    # hits: P1 (weight 2) + one novel (1) = 3; misses: one invalid (1)
    assert scores.precision == pytest.approx(3 / 4)
    assert scores.recall == pytest.approx(2 / 3)  # P1's 2 of 2 + 1
    assert scores.f1 == pytest.approx(2 * 0.75 * (2 / 3) / (0.75 + 2 / 3))  # = 12/17
    assert scores.f1 == pytest.approx(12 / 17)
    assert scores.matched == ["P1"]
    assert (scores.novel, scores.invalid, scores.duplicates, scores.unmapped) == ([12], [13], [11], 1)
    assert scores.unsupported == []


def test_a_problem_stated_before_its_required_facts_were_revealed_is_unsupported():
    stated = [
        StatedProblem(20, "matched", at(200), matched="P1"),  # F2 came at 300
        StatedProblem(21, "matched", at(210), matched="P2"),  # F3 never came
        StatedProblem(22, "novel_valid", at(220)),  # cites nothing
    ]
    scores = problem_scores(EXPECTED, stated, REVEALS)

    assert scores.unsupported == [20, 21, 22]
    assert scores.precision == 1.0  # unsupported is a flag, not a miss
    assert scores.recall == 1.0


def test_no_mapped_problem_leaves_precision_undefined():
    scores = problem_scores(EXPECTED, [StatedProblem(1, "unmapped", at(10))], REVEALS)
    assert (scores.precision, scores.recall, scores.f1) == (None, 0.0, None)


MODELS = [
    ModelInfo("S1", 1, 2.0, frozenset({"P1"})),
    ModelInfo("S2", 2, 1.0, frozenset({"P1"})),
    ModelInfo("S3", 3, 1.0, frozenset({"P2"})),
]
PENALTIES = {"H1": 2.0, "H2": 0.5}


def test_solution_recall_counts_only_solutions_for_problems_found_and_tau_compares_the_order():
    proposed = [
        ProposedSolution(1, 1, "matched", model="S2"),
        ProposedSolution(2, 2, "matched", model="S3"),  # P2 was not found: not in the recall
        ProposedSolution(3, 3, "harmful", harmful="H1"),
        ProposedSolution(4, 4, "harmful", harmful="H1"),  # the same harm once
        ProposedSolution(5, 5, "other"),
        ProposedSolution(6, 6, "unmapped"),
        ProposedSolution(7, 7, "matched", model="S1"),
    ]
    scores = solution_scores(MODELS, PENALTIES, proposed, found_problems=["P1"])

    assert scores.recall == 1.0  # S1 (2) + S2 (1) of the relevant S1, S2 (3)
    # candidate vs model ranks: S2 (1, 2), S3 (2, 3), S1 (7, 1): one concordant pair, two discordant
    assert scores.rank_tau == pytest.approx(-1 / 3)
    assert scores.harmful_penalty == 2.0
    assert scores.harmful == ["H1"]
    assert scores.unmapped == 1


def test_solution_recall_is_weighted_and_undefined_without_problems_found():
    proposed = [ProposedSolution(1, 1, "matched", model="S2")]
    assert solution_scores(MODELS, PENALTIES, proposed, found_problems=["P1"]).recall == pytest.approx(1 / 3)
    assert solution_scores(MODELS, PENALTIES, proposed, found_problems=[]).recall is None
    assert solution_scores(MODELS, PENALTIES, proposed, found_problems=["P1"]).rank_tau is None  # one pair


def test_kendall_tau_b_by_hand():
    assert kendall_tau_b([1, 2, 3], [1, 2, 3]) == 1.0
    assert kendall_tau_b([1, 2, 3], [3, 2, 1]) == -1.0
    # pairs: (1,2) tie in y, (1,3) concordant, (2,3) concordant: (2 - 0) / sqrt(3 * 2)
    assert kendall_tau_b([1, 2, 3], [1, 1, 2]) == pytest.approx(2 / 6**0.5)
    assert kendall_tau_b([1, 1], [1, 2]) is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), min_size=2, max_size=12),
)
def test_kendall_tau_b_matches_scipy(pairs):
    x, y = zip(*pairs, strict=True)
    ours = kendall_tau_b(x, y)
    theirs = kendalltau(x, y).statistic
    if ours is None:
        assert theirs != theirs  # NaN
    else:
        assert ours == pytest.approx(theirs, abs=1e-9)


def test_rubric_per_rater_panel_mean_and_consensus_are_weighted_by_dimension():
    weights = {"a": 1.0, "b": 2.0}
    ratings = [
        RatingInfo("r1", "a", 3),
        RatingInfo("r1", "b", 4),
        RatingInfo("r2", "a", 5),
        RatingInfo("r2", "b", 2),
    ]
    scores = rubric_scores(weights, ratings, {"a": 4, "b": 4})

    assert scores.per_rater == {"r1": {"a": 3, "b": 4}, "r2": {"a": 5, "b": 2}}
    assert scores.rater_overall == {"r1": pytest.approx(11 / 3), "r2": pytest.approx(3.0)}  # (3 + 2*4) / 3
    assert scores.panel_mean == {"a": 4.0, "b": 3.0}
    assert scores.spread == {"a": 2, "b": 2}
    assert scores.overall_mean == pytest.approx(10 / 3)  # (4 + 2*3) / 3
    assert scores.overall_consensus == pytest.approx(4.0)


def test_rubric_overall_is_undefined_while_a_dimension_lacks_a_level():
    scores = rubric_scores({"a": 1.0, "b": 1.0}, [RatingInfo("r1", "a", 3)], {"a": 3})
    assert scores.rater_overall == {"r1": None}
    assert scores.overall_mean is None
    assert scores.overall_consensus is None
