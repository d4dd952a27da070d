"""Chart.js configurations of the interview reports: plain JSON (no functions), passed to the page with
`json_script` and drawn by `static/interviews/charts.js` (the CSP allows no inline script).

Each function takes a report dict of `interviews.reports` and returns {"type", "data", "options"}.
"""

from __future__ import annotations

from typing import Any

PALETTE = ["#0d6efd", "#dc3545", "#198754", "#fd7e14", "#6f42c1", "#20c997", "#6c757d", "#d63384"]


def _dataset(label: str, values: list[Any], index: int, **extra: Any) -> dict[str, Any]:
    colour = PALETTE[index % len(PALETTE)]
    return {"label": label, "data": values, "backgroundColor": colour, "borderColor": colour, **extra}


def _axis(title: str, **extra: Any) -> dict[str, Any]:
    return {"title": {"display": True, "text": title}, **extra}


def comparison(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each candidate's percentile among the version's sessions on coverage, problem F1 and rubric."""
    labels = [f"#{r['session']} {r['candidate']}" for r in rows]
    series = [
        ("Fact coverage", "coverage_percentile"),
        ("Problem F1", "problem_f1_percentile"),
        ("Rubric (consensus)", "rubric_consensus_percentile"),
    ]
    return {
        "type": "bar",
        "data": {
            "labels": labels,
            "datasets": [_dataset(name, [r[key] for r in rows], i) for i, (name, key) in enumerate(series)],
        },
        "options": {"scales": {"y": _axis("percentile", min=0, max=100)}},
    }


def fact_discovery(analytics: dict[str, Any]) -> dict[str, Any]:
    """Per fact: the share of sessions that found it (bars) and the median minutes to find it (line)."""
    facts = analytics["facts"]
    minutes = [round(f["median_seconds"] / 60, 1) if f["median_seconds"] is not None else None for f in facts]
    return {
        "type": "bar",
        "data": {
            "labels": [f"{f['fact']} ({f['importance']})" for f in facts],
            "datasets": [
                _dataset("Discovery rate", [f["discovery_rate"] for f in facts], 0, yAxisID="y"),
                _dataset("Median minutes to find", minutes, 1, type="line", yAxisID="minutes"),
            ],
        },
        "options": {
            "scales": {
                "y": _axis("share of sessions", min=0, max=1),
                "minutes": _axis("minutes", position="right", min=0, grid={"drawOnChartArea": False}),
            }
        },
    }


def separating_problems(analytics: dict[str, Any]) -> dict[str, Any]:
    """Per expected problem: how often strong and weak candidates found it."""
    problems = analytics["problems"]
    return {
        "type": "bar",
        "data": {
            "labels": [p["problem"] for p in problems],
            "datasets": [
                _dataset("Strong candidates", [p["strong_rate"] for p in problems], 2),
                _dataset("Weak candidates", [p["weak_rate"] for p in problems], 1),
            ],
        },
        "options": {"scales": {"y": _axis("share who found it", min=0, max=1)}},
    }


def phase_overruns(analytics: dict[str, Any]) -> dict[str, Any]:
    phases = analytics["phases"]
    return {
        "type": "bar",
        "data": {
            "labels": [p["phase"] for p in phases],
            "datasets": [_dataset("Sessions that overran", [p["overrun_rate"] for p in phases], 3)],
        },
        "options": {"scales": {"y": _axis("share of sessions", min=0, max=1)}},
    }


def agreement_over_time(analytics: dict[str, Any]) -> dict[str, Any]:
    """Krippendorff's alpha per rubric dimension and period: one line per dimension."""
    rows = analytics["dimensions"]
    periods = sorted({r["period"] for r in rows})
    dimensions = sorted({r["dimension"] for r in rows})
    alpha = {(r["dimension"], r["period"]): r["alpha"] for r in rows}
    return {
        "type": "line",
        "data": {
            "labels": periods,
            "datasets": [
                _dataset(d, [alpha.get((d, p)) for p in periods], i, spanGaps=True)
                for i, d in enumerate(dimensions)
            ],
        },
        "options": {"scales": {"y": _axis("Krippendorff's alpha (ordinal)", min=-1, max=1)}},
    }


def leniency(analytics: dict[str, Any]) -> dict[str, Any]:
    """Each rater's mean level above (lenient) or below (severe) the other raters of the same sessions."""
    raters = sorted(analytics["leniency"])
    return {
        "type": "bar",
        "data": {
            "labels": raters,
            "datasets": [_dataset("Leniency (levels)", [analytics["leniency"][r] for r in raters], 4)],
        },
        "options": {"indexAxis": "y", "scales": {"x": _axis("levels above the other raters")}},
    }
