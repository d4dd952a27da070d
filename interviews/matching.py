"""Suggestions for the interviewer: which facts a question may reach, which expected problem a candidate's
statement may be. Suggestions only: a person always confirms (nothing here reveals or maps anything).

A fact scores by its trigger questions (fuzzy: rapidfuzz's token-set ratio) or its title (partial ratio,
weighed down), counted only when they are close (at least FUZZY_MIN: short questions share filler words
with anything), plus points for each keyword the question contains (a whole word, or a word it begins).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, utils

KEYWORD_POINTS = 40.0
TITLE_FACTOR = 0.8
FUZZY_MIN = 70.0
THRESHOLD = 40.0


@dataclass(frozen=True)
class Suggestion:
    key: str
    score: float
    reasons: tuple[str, ...]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[\w'-]+", text.lower()))


def _keyword_hits(text: str, keywords: Iterable[str]) -> list[str]:
    words = _words(text)
    lowered = text.lower()
    hits = []
    for keyword in keywords:
        k = keyword.lower().strip()
        if k and (
            (" " in k and k in lowered) or k in words or (len(k) >= 5 and any(w.startswith(k) for w in words))
        ):
            hits.append(keyword)
    return hits


def score_fact(
    text: str, *, title: str, triggers: Sequence[str], keywords: Sequence[str]
) -> Suggestion | None:
    if not text.strip():
        return None
    reasons = []
    trigger_score = 0.0
    for trigger in triggers:
        ratio = fuzz.token_set_ratio(text, trigger, processor=utils.default_process)
        if ratio > trigger_score:
            trigger_score = ratio
            best = trigger
    if trigger_score >= FUZZY_MIN:
        reasons.append(f"like “{best}” ({trigger_score:.0f})")
    title_score = fuzz.partial_ratio(text, title, processor=utils.default_process) * TITLE_FACTOR
    hits = _keyword_hits(text, keywords)
    if hits:
        reasons.append("keywords: " + ", ".join(hits))
    fuzzy = max(trigger_score, title_score)
    score = min(100.0, (fuzzy if fuzzy >= FUZZY_MIN else 0.0) + KEYWORD_POINTS * len(hits))
    if score == 0:
        return None
    return Suggestion("", round(score, 1), tuple(reasons))


def suggest_facts(text: str, facts: Iterable[object], *, limit: int = 5) -> list[Suggestion]:
    """The facts a question may reach, best first (those scoring at least THRESHOLD)."""
    found = []
    for fact in facts:
        scored = score_fact(
            text,
            title=getattr(fact, "title", ""),
            triggers=getattr(fact, "triggers", []),
            keywords=getattr(fact, "keywords", []),
        )
        if scored is not None and scored.score >= THRESHOLD:
            found.append(Suggestion(getattr(fact, "key", ""), scored.score, scored.reasons))
    return sorted(found, key=lambda s: (-s.score, s.key))[:limit]


def suggest_problem_matches(
    statement: str, problems: Iterable[object], *, limit: int = 3
) -> list[Suggestion]:
    """The expected problems a candidate's statement may match, by its statement and accepted paraphrases."""
    found = []
    for problem in problems:
        texts = [getattr(problem, "statement", ""), *getattr(problem, "paraphrases", [])]
        score = max(
            (fuzz.token_set_ratio(statement, t, processor=utils.default_process) for t in texts if t),
            default=0,
        )
        if score >= FUZZY_MIN:
            found.append(Suggestion(getattr(problem, "key", ""), round(float(score), 1), ()))
    return sorted(found, key=lambda s: (-s.score, s.key))[:limit]
