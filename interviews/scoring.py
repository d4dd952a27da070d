"""Scores of one session, explained and never an automatic decision (INTERVIEWS.md, "Scores").

The functions at the top are pure: they take plain records and return numbers, so that each can be
checked against a hand-computed example. `score_session` at the bottom reads a session and calls them.

Definitions
-----------
Facts. A fact's weight is 3 for a key fact, 1 for a supporting fact and 0 for noise and red herrings.
A fact's credit is 1 once revealed in full, 0.5 when revealed only in part, else 0.
- coverage = sum(weight * credit) / sum(weight)
- key_recall = sum(credit of key facts) / number of key facts
- time to a key fact = seconds of running clock (pauses excluded) from the start of phase 2 to its
  first reveal (0 when it was revealed before phase 2)
- questions_per_key_fact = questions asked / key facts revealed (at any level)
- question_yield = questions that revealed a key or supporting fact / questions asked
- red_herring_questions = questions that revealed a red herring

Problems. Only mapped problems count (`unmapped` says how many wait for a rater). A candidate problem
matched to an expected problem is a hit weighing the expected problem's weight, once per expected
problem (a second statement of the same problem is a duplicate and counts for nothing); a novel but
valid problem is a hit of weight 1 and is flagged for case review; an invalid one is a miss of weight 1.
- precision = hit weight / (hit weight + miss weight)
- recall = weight of the expected problems matched / weight of all expected problems
- f1 = 2 * precision * recall / (precision + recall)
A matched problem is unsupported (an assumption) when a fact its expected problem requires had not been
revealed when it was stated; a novel problem is unsupported when it cites no revealed fact.

Solutions. The relevant model solutions are those that address an expected problem the candidate found.
- recall = weight of the relevant model solutions the candidate proposed / weight of all relevant ones
- rank_tau = Kendall's tau-b between the candidate's ranks and the model ranks of the model solutions
  the candidate proposed (each model solution once, at its best candidate rank)
- harmful_penalty = sum of the penalties of the distinct harmful actions proposed

Rubric. Per rater and dimension the level; per dimension the raters' mean beside the consensus; overall
the weighted means of both.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

IMPORTANCE_WEIGHT = {"key": 3.0, "supporting": 1.0, "noise": 0.0, "red_herring": 0.0}
LEVEL_CREDIT = {"full": 1.0, "partial": 0.5}


# --------------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactInfo:
    key: str
    importance: str


@dataclass(frozen=True)
class RevealInfo:
    fact: str
    level: str
    at: datetime
    question: int | None = None


@dataclass(frozen=True)
class QuestionInfo:
    id: int
    at: datetime
    late: bool = False


@dataclass(frozen=True)
class ExpectedInfo:
    key: str
    weight: float
    required_facts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class StatedProblem:
    id: int
    verdict: str  # unmapped, matched, novel_valid, invalid
    at: datetime
    matched: str | None = None
    cited: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ModelInfo:
    key: str
    rank: int
    weight: float
    addresses: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ProposedSolution:
    id: int
    rank: int
    verdict: str  # unmapped, matched, harmful, other
    model: str | None = None
    harmful: str | None = None


@dataclass(frozen=True)
class RatingInfo:
    rater: str
    dimension: str
    level: int


# --------------------------------------------------------------------------------------------------
# Time
# --------------------------------------------------------------------------------------------------


def active_seconds(
    start: datetime, end: datetime, pauses: Iterable[tuple[datetime, datetime | None]]
) -> float:
    """Seconds from start to end with the paused intervals taken out (an open pause runs to `end`)."""
    if end <= start:
        return 0.0
    total = (end - start).total_seconds()
    for paused_from, paused_to in pauses:
        lo = max(start, paused_from)
        hi = min(end, paused_to or end)
        if hi > lo:
            total -= (hi - lo).total_seconds()
    return total


# --------------------------------------------------------------------------------------------------
# Facts
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FactScores:
    coverage: float | None
    key_recall: float | None
    key_facts: int
    key_facts_found: int
    time_to_key_fact: dict[str, float | None]
    questions: int
    late_questions: int
    questions_per_key_fact: float | None
    question_yield: float | None
    red_herring_questions: int
    credit: dict[str, float] = field(default_factory=dict)


def fact_scores(
    facts: Sequence[FactInfo],
    reveals: Sequence[RevealInfo],
    questions: Sequence[QuestionInfo],
    *,
    gather_started_at: datetime | None,
    pauses: Sequence[tuple[datetime, datetime | None]] = (),
) -> FactScores:
    importance = {f.key: f.importance for f in facts}
    credit = {f.key: 0.0 for f in facts}
    first_seen: dict[str, datetime] = {}
    for r in reveals:
        credit[r.fact] = max(credit.get(r.fact, 0.0), LEVEL_CREDIT[r.level])
        if r.fact not in first_seen or r.at < first_seen[r.fact]:
            first_seen[r.fact] = r.at
    total_weight = sum(IMPORTANCE_WEIGHT[f.importance] for f in facts)
    coverage = (
        sum(IMPORTANCE_WEIGHT[f.importance] * credit[f.key] for f in facts) / total_weight
        if total_weight
        else None
    )
    keys = [f.key for f in facts if f.importance == "key"]
    key_recall = sum(credit[k] for k in keys) / len(keys) if keys else None
    found = [k for k in keys if k in first_seen]
    times: dict[str, float | None] = {}
    for k in keys:
        if k not in first_seen or gather_started_at is None:
            times[k] = None
        else:
            times[k] = active_seconds(gather_started_at, first_seen[k], pauses)
    useful = {
        r.question
        for r in reveals
        if r.question is not None and importance.get(r.fact) in ("key", "supporting")
    }
    herring = {
        r.question for r in reveals if r.question is not None and importance.get(r.fact) == "red_herring"
    }
    n = len(questions)
    return FactScores(
        coverage=coverage,
        key_recall=key_recall,
        key_facts=len(keys),
        key_facts_found=len(found),
        time_to_key_fact=times,
        questions=n,
        late_questions=sum(1 for q in questions if q.late),
        questions_per_key_fact=n / len(found) if found else None,
        question_yield=len(useful & {q.id for q in questions}) / n if n else None,
        red_herring_questions=len(herring & {q.id for q in questions}),
        credit=credit,
    )


# --------------------------------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProblemScores:
    precision: float | None
    recall: float | None
    f1: float | None
    matched: list[str]
    novel: list[int]
    invalid: list[int]
    duplicates: list[int]
    unsupported: list[int]
    unmapped: int


def f1_score(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def problem_scores(
    expected: Sequence[ExpectedInfo], stated: Sequence[StatedProblem], reveals: Sequence[RevealInfo]
) -> ProblemScores:
    weights = {e.key: e.weight for e in expected}
    required = {e.key: e.required_facts for e in expected}
    matched: list[str] = []
    novel: list[int] = []
    invalid: list[int] = []
    duplicates: list[int] = []
    unsupported: list[int] = []
    unmapped = 0
    for p in sorted(stated, key=lambda p: (p.at, p.id)):
        revealed_then = {r.fact for r in reveals if r.at <= p.at}
        if p.verdict == "matched" and p.matched in weights:
            if p.matched in matched:
                duplicates.append(p.id)
                continue
            matched.append(p.matched)
            if not required[p.matched] <= revealed_then:
                unsupported.append(p.id)
        elif p.verdict == "novel_valid":
            novel.append(p.id)
            if not p.cited & revealed_then:
                unsupported.append(p.id)
        elif p.verdict == "invalid":
            invalid.append(p.id)
        else:
            unmapped += 1
    hits = sum(weights[k] for k in matched) + len(novel)
    misses = float(len(invalid))
    precision = hits / (hits + misses) if hits + misses else None
    total = sum(weights.values())
    recall = sum(weights[k] for k in matched) / total if total else None
    return ProblemScores(
        precision=precision,
        recall=recall,
        f1=f1_score(precision, recall),
        matched=matched,
        novel=novel,
        invalid=invalid,
        duplicates=duplicates,
        unsupported=unsupported,
        unmapped=unmapped,
    )


# --------------------------------------------------------------------------------------------------
# Solutions
# --------------------------------------------------------------------------------------------------


def kendall_tau_b(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Kendall's tau-b (ties corrected), as scipy.stats.kendalltau computes it; None when undefined."""
    n = len(x)
    if n != len(y) or n < 2:
        return None
    concordant = discordant = tied_x = tied_y = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx = (x[i] > x[j]) - (x[i] < x[j])
            dy = (y[i] > y[j]) - (y[i] < y[j])
            if dx == 0:
                tied_x += 1
            if dy == 0:
                tied_y += 1
            if dx and dy:
                if dx == dy:
                    concordant += 1
                else:
                    discordant += 1
    pairs = n * (n - 1) // 2
    denominator = math.sqrt((pairs - tied_x) * (pairs - tied_y))
    return (concordant - discordant) / denominator if denominator else None


@dataclass(frozen=True)
class SolutionScores:
    recall: float | None
    rank_tau: float | None
    harmful_penalty: float
    proposed_models: list[str]
    harmful: list[str]
    unmapped: int


def solution_scores(
    models: Sequence[ModelInfo],
    penalties: dict[str, float],
    proposed: Sequence[ProposedSolution],
    *,
    found_problems: Iterable[str],
) -> SolutionScores:
    found = set(found_problems)
    by_key = {m.key: m for m in models}
    best_rank: dict[str, int] = {}
    harmful: list[str] = []
    unmapped = 0
    for s in sorted(proposed, key=lambda s: (s.rank, s.id)):
        if s.verdict == "matched" and s.model in by_key:
            best_rank.setdefault(s.model, s.rank)
        elif s.verdict == "harmful" and s.harmful in penalties:
            if s.harmful not in harmful:
                harmful.append(s.harmful)
        elif s.verdict == "unmapped":
            unmapped += 1
    relevant = [m for m in models if m.addresses & found]
    total = sum(m.weight for m in relevant)
    recall = sum(m.weight for m in relevant if m.key in best_rank) / total if total else None
    keys = list(best_rank)
    tau = kendall_tau_b([best_rank[k] for k in keys], [by_key[k].rank for k in keys])
    return SolutionScores(
        recall=recall,
        rank_tau=tau,
        harmful_penalty=sum(penalties[h] for h in harmful),
        proposed_models=keys,
        harmful=harmful,
        unmapped=unmapped,
    )


# --------------------------------------------------------------------------------------------------
# Rubric
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RubricScores:
    per_rater: dict[str, dict[str, int]]
    rater_overall: dict[str, float | None]
    panel_mean: dict[str, float | None]
    spread: dict[str, int]
    consensus: dict[str, int]
    overall_mean: float | None
    overall_consensus: float | None


def _weighted(levels: dict[str, float | int | None], weights: dict[str, float]) -> float | None:
    """The weighted mean over every dimension; None while any dimension has no level."""
    values = [levels.get(k) for k in weights]
    if not weights or any(v is None for v in values):
        return None
    return sum(float(v or 0) * w for v, w in zip(values, weights.values(), strict=True)) / sum(
        weights.values()
    )


def rubric_scores(
    weights: dict[str, float], ratings: Sequence[RatingInfo], consensus: dict[str, int]
) -> RubricScores:
    per_rater: dict[str, dict[str, int]] = {}
    for r in ratings:
        per_rater.setdefault(r.rater, {})[r.dimension] = r.level
    panel_mean: dict[str, float | None] = {}
    spread: dict[str, int] = {}
    for key in weights:
        levels = [r.level for r in ratings if r.dimension == key]
        panel_mean[key] = sum(levels) / len(levels) if levels else None
        spread[key] = max(levels) - min(levels) if levels else 0
    return RubricScores(
        per_rater=per_rater,
        rater_overall={rater: _weighted(dict(levels), weights) for rater, levels in per_rater.items()},
        panel_mean=panel_mean,
        spread=spread,
        consensus=dict(consensus),
        overall_mean=_weighted(panel_mean, weights),
        overall_consensus=_weighted(dict(consensus), weights),
    )


# --------------------------------------------------------------------------------------------------
# A session
# --------------------------------------------------------------------------------------------------


def _f(value: Decimal | float) -> float:
    return float(value)


def session_records(session: Any) -> dict[str, Any]:
    """The plain records of a session that the scores are computed from."""
    from .models import PhaseRecord

    version = session.case_version
    facts = [FactInfo(f.key, f.importance) for f in version.facts.all()]
    reveals = [
        RevealInfo(r.fact.key, r.level, r.revealed_at, r.question_id)
        for r in session.reveals.select_related("fact").order_by("revealed_at", "id")
    ]
    questions = [QuestionInfo(q.pk, q.asked_at, q.late) for q in session.questions.all()]
    gather = PhaseRecord.objects.filter(session=session, phase="gather").first()
    pauses = list(session.pauses.values_list("started_at", "ended_at"))
    expected = [
        ExpectedInfo(p.key, _f(p.weight), frozenset(f.key for f in p.required_facts.all()))
        for p in version.problems.prefetch_related("required_facts")
    ]
    stated = [
        StatedProblem(
            p.pk,
            p.verdict,
            p.stated_at,
            p.matched_problem.key if p.matched_problem else None,
            frozenset(f.key for f in p.cited_facts.all()),
        )
        for p in session.candidate_problems.select_related("matched_problem").prefetch_related("cited_facts")
    ]
    models = [
        ModelInfo(m.key, m.rank, _f(m.weight), frozenset(p.key for p in m.addresses.all()))
        for m in version.solutions.prefetch_related("addresses")
    ]
    penalties = {h.key: _f(h.penalty) for h in version.harmful_actions.all()}
    proposed = [
        ProposedSolution(
            s.pk,
            s.rank,
            s.verdict,
            s.matched_solution.key if s.matched_solution else None,
            s.harmful_action.key if s.harmful_action else None,
        )
        for s in session.candidate_solutions.select_related("matched_solution", "harmful_action")
    ]
    weights = {d.key: _f(d.weight) for d in version.rubric.dimensions.all()}
    ratings = [
        RatingInfo(r.rater.get_username(), r.dimension.key, r.level)
        for r in session.ratings.select_related("rater", "dimension")
    ]
    consensus = {c.dimension.key: c.level for c in session.consensus.select_related("dimension")}
    return {
        "facts": facts,
        "reveals": reveals,
        "questions": questions,
        "gather_started_at": gather.started_at if gather else None,
        "pauses": pauses,
        "expected": expected,
        "stated": stated,
        "models": models,
        "penalties": penalties,
        "proposed": proposed,
        "weights": weights,
        "ratings": ratings,
        "consensus": consensus,
    }


@dataclass(frozen=True)
class SessionScores:
    facts: FactScores
    problems: ProblemScores
    solutions: SolutionScores
    rubric: RubricScores


def scores_from_records(r: dict[str, Any]) -> SessionScores:
    facts = fact_scores(
        r["facts"], r["reveals"], r["questions"], gather_started_at=r["gather_started_at"], pauses=r["pauses"]
    )
    problems = problem_scores(r["expected"], r["stated"], r["reveals"])
    solutions = solution_scores(r["models"], r["penalties"], r["proposed"], found_problems=problems.matched)
    rubric = rubric_scores(r["weights"], r["ratings"], r["consensus"])
    return SessionScores(facts=facts, problems=problems, solutions=solutions, rubric=rubric)


def score_session(session: Any) -> SessionScores:
    return scores_from_records(session_records(session))


def _by(rows: Iterable[Any], attribute: str) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[getattr(row, attribute)].append(row)
    return grouped


def _version_records(version_ids: set[int], rubric_ids: set[int]) -> dict[str, dict[int, Any]]:
    """The case content of many versions, for `records_of_sessions`: seven queries."""
    from .models import ExpectedProblem, Fact, HarmfulAction, ModelSolution, RubricDimension

    facts = _by(Fact.objects.filter(version_id__in=version_ids), "version_id")
    expected = _by(
        ExpectedProblem.objects.filter(version_id__in=version_ids).prefetch_related("required_facts"),
        "version_id",
    )
    models = _by(
        ModelSolution.objects.filter(version_id__in=version_ids).prefetch_related("addresses"), "version_id"
    )
    harmful = _by(HarmfulAction.objects.filter(version_id__in=version_ids), "version_id")
    dimensions = _by(RubricDimension.objects.filter(rubric_id__in=rubric_ids), "rubric_id")
    return {
        "facts": {v: [FactInfo(f.key, f.importance) for f in rows] for v, rows in facts.items()},
        "expected": {
            v: [
                ExpectedInfo(p.key, _f(p.weight), frozenset(f.key for f in p.required_facts.all()))
                for p in rows
            ]
            for v, rows in expected.items()
        },
        "models": {
            v: [
                ModelInfo(m.key, m.rank, _f(m.weight), frozenset(p.key for p in m.addresses.all()))
                for m in rows
            ]
            for v, rows in models.items()
        },
        "penalties": {v: {h.key: _f(h.penalty) for h in rows} for v, rows in harmful.items()},
        "weights": {r: {d.key: _f(d.weight) for d in rows} for r, rows in dimensions.items()},
    }


def records_of_sessions(sessions: Sequence[Any]) -> dict[int, dict[str, Any]]:
    """`session_records` of many sessions at once, in a fixed number of queries (reports and charts
    list many sessions). Each session's `case_version` must be loaded (select_related)."""
    from .models import (
        CandidateProblem,
        CandidateSolution,
        ConsensusRating,
        PhaseRecord,
        Question,
        Rating,
        Reveal,
        SessionPause,
    )

    if not sessions:
        return {}
    ids = [s.pk for s in sessions]
    content = _version_records(
        {s.case_version_id for s in sessions}, {s.case_version.rubric_id for s in sessions}
    )
    reveals = _by(
        Reveal.objects.filter(session_id__in=ids).select_related("fact").order_by("revealed_at", "id"),
        "session_id",
    )
    questions = _by(Question.objects.filter(session_id__in=ids), "session_id")
    gather = {
        p.session_id: p.started_at for p in PhaseRecord.objects.filter(session_id__in=ids, phase="gather")
    }
    pauses = _by(SessionPause.objects.filter(session_id__in=ids), "session_id")
    stated = _by(
        CandidateProblem.objects.filter(session_id__in=ids)
        .select_related("matched_problem")
        .prefetch_related("cited_facts"),
        "session_id",
    )
    proposed = _by(
        CandidateSolution.objects.filter(session_id__in=ids).select_related(
            "matched_solution", "harmful_action"
        ),
        "session_id",
    )
    ratings = _by(
        Rating.objects.filter(session_id__in=ids).select_related("rater", "dimension"), "session_id"
    )
    consensus = _by(
        ConsensusRating.objects.filter(session_id__in=ids).select_related("dimension"), "session_id"
    )
    records = {}
    for s in sessions:
        v = s.case_version_id
        records[s.pk] = {
            "facts": content["facts"].get(v, []),
            "reveals": [
                RevealInfo(r.fact.key, r.level, r.revealed_at, r.question_id) for r in reveals.get(s.pk, [])
            ],
            "questions": [QuestionInfo(q.pk, q.asked_at, q.late) for q in questions.get(s.pk, [])],
            "gather_started_at": gather.get(s.pk),
            "pauses": [(p.started_at, p.ended_at) for p in pauses.get(s.pk, [])],
            "expected": content["expected"].get(v, []),
            "stated": [
                StatedProblem(
                    p.pk,
                    p.verdict,
                    p.stated_at,
                    p.matched_problem.key if p.matched_problem else None,
                    frozenset(f.key for f in p.cited_facts.all()),
                )
                for p in stated.get(s.pk, [])
            ],
            "models": content["models"].get(v, []),
            "penalties": content["penalties"].get(v, {}),
            "proposed": [
                ProposedSolution(
                    p.pk,
                    p.rank,
                    p.verdict,
                    p.matched_solution.key if p.matched_solution else None,
                    p.harmful_action.key if p.harmful_action else None,
                )
                for p in proposed.get(s.pk, [])
            ],
            "weights": content["weights"].get(s.case_version.rubric_id, {}),
            "ratings": [
                RatingInfo(r.rater.get_username(), r.dimension.key, r.level) for r in ratings.get(s.pk, [])
            ],
            "consensus": {c.dimension.key: c.level for c in consensus.get(s.pk, [])},
        }
    return records


def score_sessions(sessions: Sequence[Any]) -> dict[int, SessionScores]:
    """The scores of many sessions, by session id, in a fixed number of queries."""
    return {pk: scores_from_records(r) for pk, r in records_of_sessions(sessions).items()}
