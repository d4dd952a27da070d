from __future__ import annotations

from types import SimpleNamespace

import pytest

from interviews.matching import suggest_facts, suggest_problem_matches

FACTS = [
    SimpleNamespace(
        key="F1",
        title="Error in the gateway log",
        triggers=["What do the logs say?"],
        keywords=["log", "logs", "error"],
    ),
    SimpleNamespace(
        key="F2",
        title="Certificate expired",
        triggers=["Did any certificate expire?"],
        keywords=["certificate", "tls", "expire"],
    ),
    SimpleNamespace(key="F4", title="Weather", triggers=[], keywords=["weather"]),
    SimpleNamespace(
        key="F5", title="Database upgrade last week", triggers=[], keywords=["database", "upgrade", "change"]
    ),
]


@pytest.mark.parametrize(
    ("question", "first"),
    [
        ("what do the logs show", "F1"),  # a close trigger and a keyword
        ("Is the TLS certificate still valid?", "F2"),  # two keywords
        ("Were there any changes recently?", "F5"),  # "changes" begins with the keyword "change"
        ("did any certs expire", "F2"),  # fuzzy trigger with a typo-ish variant
    ],
)
def test_the_best_suggestion_for_a_question(question, first):
    suggestions = suggest_facts(question, FACTS)
    assert suggestions[0].key == first
    assert suggestions[0].reasons


def test_filler_words_alone_suggest_nothing():
    assert suggest_facts("who is the CEO", FACTS) == []
    assert suggest_facts("   ", FACTS) == []


def test_problem_statements_match_by_paraphrase():
    problems = [
        SimpleNamespace(
            key="P1",
            statement="The payment gateway's certificate expired.",
            paraphrases=["expired TLS certificate"],
        ),
        SimpleNamespace(key="P2", statement="Nobody owned certificate renewal.", paraphrases=[]),
    ]
    assert suggest_problem_matches("the TLS certificate had expired", problems)[0].key == "P1"
    assert suggest_problem_matches("bananas", problems) == []
