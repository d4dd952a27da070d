"""Reports: a session, candidates of one case version compared, case analytics and rater analytics.

All are plain dicts (the API returns them as JSON; `rows_csv` turns a list of flat rows into CSV).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Hashable
from dataclasses import asdict
from typing import Any

from . import agreement, scoring, selectors
from .models import (
    CalibrationRating,
    CandidateProblem,
    CaseVersion,
    ConsensusRating,
    Note,
    PhaseRecord,
    Rating,
    Reveal,
    Session,
    SessionPause,
)

State = Session.State


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def session_timeline(session: Session) -> list[dict[str, Any]]:
    """Questions, reveals and answers in time order, with seconds since the session started."""
    start = session.started_at
    items: list[dict[str, Any]] = []
    for q in session.questions.all():
        items.append(
            {
                "at": q.asked_at,
                "kind": "question",
                "id": q.pk,
                "text": q.text,
                "phase": q.phase,
                "late": q.late,
            }
        )
        if q.answer in ("not_available", "free") and q.answered_at:
            items.append({"at": q.answered_at, "kind": q.answer, "question": q.pk, "text": q.answer_text})
    for r in session.reveals.select_related("fact"):
        items.append(
            {
                "at": r.revealed_at,
                "kind": "reveal",
                "fact": r.fact.key,
                "importance": r.fact.importance,
                "level": r.level,
                "question": r.question_id,
                "text": r.text,
            }
        )
    items.sort(key=lambda i: (i["at"], i["kind"] != "question"))
    for item in items:
        item["t_seconds"] = int((item["at"] - start).total_seconds()) if start else None
    return items


def session_report(session: Session, *, viewer: Any) -> dict[str, Any]:
    """The whole report of a session. Before consensus the viewer sees only their own ratings."""
    scores = scoring.score_session(session)
    visible = list(selectors.ratings_visible_to(session, viewer))
    weights = {d.key: float(d.weight) for d in session.case_version.rubric.dimensions.all()}
    consensus = {
        c.dimension.key: c
        for c in ConsensusRating.objects.filter(session=session).select_related("dimension")
    }
    rubric = scoring.rubric_scores(
        weights,
        [scoring.RatingInfo(r.rater.get_username(), r.dimension.key, r.level) for r in visible],
        {k: c.level for k, c in consensus.items()},
    )
    version = session.case_version
    return {
        "session": {
            "id": session.pk,
            "case": version.case.slug,
            "version": version.number,
            "title": version.title,
            "candidate": str(session.candidate),
            "mode": session.mode,
            "state": session.state,
            "started_at": session.started_at,
            "closed_at": session.closed_at,
            "recommendation": session.recommendation,
            "summary": session.summary,
        },
        "phases": list(
            PhaseRecord.objects.filter(session=session).values(
                "phase", "started_at", "ended_at", "budget_seconds", "paused_seconds", "overrun_seconds"
            )
        ),
        "timeline": session_timeline(session),
        "facts": asdict(scores.facts),
        "problems": {
            **asdict(scores.problems),
            "statements": [
                {
                    "id": p.pk,
                    "statement": p.statement,
                    "verdict": p.verdict,
                    "matched": p.matched_problem.key if p.matched_problem else None,
                    "late": p.late,
                }
                for p in session.candidate_problems.select_related("matched_problem")
            ],
        },
        "solutions": {
            **asdict(scores.solutions),
            "proposals": [
                {
                    "id": s.pk,
                    "rank": s.rank,
                    "action": s.action,
                    "reason": s.reason,
                    "verdict": s.verdict,
                    "model": s.matched_solution.key if s.matched_solution else None,
                    "harmful": s.harmful_action.key if s.harmful_action else None,
                }
                for s in session.candidate_solutions.select_related("matched_solution", "harmful_action")
            ],
        },
        "rubric": {
            **asdict(rubric),
            "blind": session.state not in selectors.RATINGS_OPEN_STATES,
            "evidence": [
                {
                    "rater": r.rater.get_username(),
                    "dimension": r.dimension.key,
                    "level": r.level,
                    "evidence": r.evidence,
                }
                for r in visible
            ],
            "discussion": {k: c.discussion for k, c in consensus.items() if c.discussion},
        },
        "notes": [
            {
                "at": n.at,
                "author": n.author.get_username() if n.author else None,
                "flag": n.flag,
                "dimension": n.dimension.key if n.dimension else None,
                "text": n.text,
            }
            for n in Note.objects.filter(session=session).select_related("author", "dimension")
        ],
    }


def session_timeline_csv(session: Session) -> str:
    rows = [
        {
            "t_seconds": i["t_seconds"],
            "at": i["at"].isoformat(),
            "kind": i["kind"],
            "fact": i.get("fact", ""),
            "level": i.get("level", ""),
            "late": i.get("late", ""),
            "text": i.get("text", ""),
        }
        for i in session_timeline(session)
    ]
    return rows_csv(rows, columns=["t_seconds", "at", "kind", "fact", "level", "late", "text"])


def rows_csv(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """Flat rows as CSV; cells that a spreadsheet would run as a formula are quoted with a leading '."""
    columns = columns or (list(rows[0]) if rows else [])
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                k: (f"'{v}" if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r") else v)
                for k, v in row.items()
            }
        )
    return out.getvalue()


def percentile_rank(value: float | None, population: list[float]) -> float | None:
    """The share of the population below the value, ties counting half, in percent."""
    if value is None or not population:
        return None
    below = sum(1 for p in population if p < value)
    equal = sum(1 for p in population if p == value)
    return round(100 * (below + 0.5 * equal) / len(population), 1)


def _closed_sessions(version: CaseVersion) -> list[Session]:
    return list(
        Session.objects.filter(case_version=version, state=State.CLOSED)
        .select_related("candidate", "case_version__rubric", "case_version__case")
        .order_by("closed_at", "id")
    )


def comparison(version: CaseVersion) -> list[dict[str, Any]]:
    """One row per closed session of the version, with percentiles of the main scores among them."""
    rows: list[dict[str, Any]] = []
    sessions = _closed_sessions(version)
    scores = scoring.score_sessions(sessions)
    for session in sessions:
        sc = scores[session.pk]
        rows.append(
            {
                "session": session.pk,
                "candidate": str(session.candidate),
                "mode": session.mode,
                "closed_at": session.closed_at.isoformat() if session.closed_at else None,
                "coverage": _round(sc.facts.coverage),
                "key_recall": _round(sc.facts.key_recall),
                "questions": sc.facts.questions,
                "question_yield": _round(sc.facts.question_yield),
                "red_herring_questions": sc.facts.red_herring_questions,
                "problem_precision": _round(sc.problems.precision),
                "problem_recall": _round(sc.problems.recall),
                "problem_f1": _round(sc.problems.f1),
                "solution_recall": _round(sc.solutions.recall),
                "rank_tau": _round(sc.solutions.rank_tau),
                "harmful_penalty": sc.solutions.harmful_penalty,
                "rubric_mean": _round(sc.rubric.overall_mean),
                "rubric_consensus": _round(sc.rubric.overall_consensus),
                "recommendation": session.recommendation,
            }
        )
    for key in ("coverage", "problem_f1", "rubric_consensus"):
        population = [r[key] for r in rows if r[key] is not None]
        for r in rows:
            r[f"{key}_percentile"] = percentile_rank(r[key], population)
    return rows


def case_analytics(version: CaseVersion) -> dict[str, Any]:
    """Per fact: how often and how fast it is found; per expected problem: how well it separates strong
    from weak candidates (by the consensus rubric score, split at its median); per phase: overruns;
    and the novel problems raters accepted, for case review."""
    sessions = _closed_sessions(version)
    n = len(sessions)
    facts = list(version.facts.all())
    first_reveal: dict[tuple[int, int], Any] = {}
    for r in Reveal.objects.filter(session__in=sessions).order_by("revealed_at"):
        first_reveal.setdefault((r.session_id, r.fact_id), r.revealed_at)
    gather = {
        p.session_id: p.started_at for p in PhaseRecord.objects.filter(session__in=sessions, phase="gather")
    }
    pauses: dict[int, list[Any]] = defaultdict(list)
    for session_id, started, ended in SessionPause.objects.filter(session__in=sessions).values_list(
        "session_id", "started_at", "ended_at"
    ):
        pauses[session_id].append((started, ended))
    fact_rows = []
    for f in facts:
        times = [
            scoring.active_seconds(gather[s.pk], first_reveal[(s.pk, f.pk)], pauses[s.pk])
            for s in sessions
            if (s.pk, f.pk) in first_reveal and s.pk in gather
        ]
        found = sum(1 for s in sessions if (s.pk, f.pk) in first_reveal)
        fact_rows.append(
            {
                "fact": f.key,
                "title": f.title,
                "importance": f.importance,
                "discovery_rate": _round(found / n) if n else None,
                "median_seconds": _round(statistics.median(times), 1) if times else None,
            }
        )
    all_scores = scoring.score_sessions(sessions)
    scored = [(s, all_scores[s.pk]) for s in sessions]
    overall = [sc.rubric.overall_consensus for _, sc in scored if sc.rubric.overall_consensus is not None]
    median = statistics.median(overall) if overall else None
    strong = [sc for _, sc in scored if median is not None and (sc.rubric.overall_consensus or 0) > median]
    weak = [sc for _, sc in scored if median is not None and (sc.rubric.overall_consensus or 0) <= median]
    problem_rows = []
    for p in version.problems.all():
        rate_strong = (
            sum(1 for sc in strong if p.key in sc.problems.matched) / len(strong) if strong else None
        )
        rate_weak = sum(1 for sc in weak if p.key in sc.problems.matched) / len(weak) if weak else None
        found_all = sum(1 for _, sc in scored if p.key in sc.problems.matched)
        problem_rows.append(
            {
                "problem": p.key,
                "statement": p.statement,
                "found_rate": _round(found_all / n) if n else None,
                "strong_rate": _round(rate_strong),
                "weak_rate": _round(rate_weak),
                "separation": _round(rate_strong - rate_weak)
                if rate_strong is not None and rate_weak is not None
                else None,
            }
        )
    phase_rows = []
    by_phase: dict[str, list[PhaseRecord]] = defaultdict(list)
    for record in PhaseRecord.objects.filter(session__in=sessions):
        by_phase[record.phase].append(record)
    for phase in Session.TIMED_PHASES:
        records = by_phase[phase]
        overruns = [r.overrun_seconds for r in records if r.overrun_seconds > 0]
        phase_rows.append(
            {
                "phase": phase,
                "sessions": len(records),
                "overrun_rate": _round(len(overruns) / len(records)) if records else None,
                "median_overrun_seconds": statistics.median(overruns) if overruns else None,
            }
        )
    novel = [
        {"session": p.session_id, "statement": p.statement}
        for p in CandidateProblem.objects.filter(session__in=sessions, verdict="novel_valid").order_by(
            "session_id", "stated_at", "id"
        )
    ]
    return {
        "case": version.case.slug,
        "version": version.number,
        "sessions": n,
        "facts": fact_rows,
        "problems": problem_rows,
        "phases": phase_rows,
        "novel_problems_for_review": novel,
    }


def rater_analytics(*, by: str = "month") -> dict[str, Any]:
    """Agreement per rubric dimension and period, leniency per rater, and calibration results."""
    ratings = Rating.objects.filter(session__state=State.CLOSED, session__is_reference=False).select_related(
        "session", "dimension", "rater"
    )
    dimensions = []
    for d in agreement.agreement_by_dimension(ratings, by=by):
        row = asdict(d)
        row["alpha"] = _round(d.alpha)
        row["kappa"] = {pair: _round(k) for pair, k in d.kappa.items()}
        row["leniency"] = {r: _round(v) for r, v in d.leniency.items()}
        dimensions.append(row)
    by_subject: dict[Hashable, dict[str, float]] = defaultdict(dict)
    for r in ratings:
        by_subject[(r.session_id, r.dimension.key)][r.rater.get_username()] = r.level
    consensus = {
        (c.session_id, c.dimension.key): c.level
        for c in ConsensusRating.objects.filter(session__is_reference=True).select_related("dimension")
    }
    deviations: dict[str, list[int]] = defaultdict(list)
    for c in CalibrationRating.objects.select_related("rater", "dimension"):
        reference = consensus.get((c.session_id, c.dimension.key))
        if reference is not None:
            deviations[c.rater.get_username()].append(c.level - reference)
    calibration = {
        rater: {
            "ratings": len(d),
            "mean_absolute_deviation": _round(sum(abs(x) for x in d) / len(d)),
            "bias": _round(sum(d) / len(d)),
        }
        for rater, d in sorted(deviations.items())
    }
    return {
        "by": by,
        "dimensions": dimensions,
        "leniency": {r: _round(v) for r, v in agreement.leniency(by_subject).items()},
        "calibration": calibration,
    }
