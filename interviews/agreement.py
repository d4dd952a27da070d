"""How well raters agree, computed in the app (the reference libraries are test-only dependencies).

- `cohen_kappa_quadratic`: Cohen's kappa with quadratic weights for two raters on an ordinal scale
  (as `sklearn.metrics.cohen_kappa_score(a, b, labels=scale, weights="quadratic")`).
- `icc2`: ICC(2,1) and ICC(2,k), two-way random effects, absolute agreement (Shrout & Fleiss 1979;
  pingouin's ICC2 and ICC2k) over a complete subjects x raters matrix.
- `krippendorff_alpha_ordinal`: Krippendorff's alpha with the ordinal metric, missing values allowed
  (as `krippendorff.alpha(data, level_of_measurement="ordinal", value_domain=scale)`).
- `leniency`: each rater's mean deviation from the other raters' mean on the same subject.

Each returns None where the statistic is undefined (too few data, or no variation at all).
`agreement_by_dimension` reads closed sessions and reports all of them per rubric dimension and period.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

SCALE = (1, 2, 3, 4, 5)


def cohen_kappa_quadratic(a: Sequence[int], b: Sequence[int], scale: Sequence[int] = SCALE) -> float | None:
    if len(a) != len(b) or not a:
        return None
    index = {value: i for i, value in enumerate(scale)}
    k, n = len(scale), len(a)
    observed = [[0.0] * k for _ in range(k)]
    for x, y in zip(a, b, strict=True):
        observed[index[x]][index[y]] += 1
    rows = [sum(r) for r in observed]
    cols = [sum(observed[i][j] for i in range(k)) for j in range(k)]
    disagreement = expected = 0.0
    for i in range(k):
        for j in range(k):
            weight = (i - j) ** 2
            disagreement += weight * observed[i][j]
            expected += weight * rows[i] * cols[j] / n
    return 1 - disagreement / expected if expected else None


@dataclass(frozen=True)
class Icc:
    icc2_1: float
    icc2_k: float
    subjects: int
    raters: int


def icc2(matrix: Sequence[Sequence[float]]) -> Icc | None:
    """ICC(2,1) and ICC(2,k) of a complete matrix (rows: subjects, columns: raters)."""
    n = len(matrix)
    k = len(matrix[0]) if n else 0
    if n < 2 or k < 2 or any(len(row) != k for row in matrix):
        return None
    grand = sum(sum(row) for row in matrix) / (n * k)
    row_means = [sum(row) / k for row in matrix]
    col_means = [sum(matrix[i][j] for i in range(n)) / n for j in range(k)]
    ss_rows = k * sum((m - grand) ** 2 for m in row_means)
    ss_cols = n * sum((m - grand) ** 2 for m in col_means)
    ss_total = sum((x - grand) ** 2 for row in matrix for x in row)
    ss_error = ss_total - ss_rows - ss_cols
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = ss_error / ((n - 1) * (k - 1))
    single = msr + (k - 1) * mse + k * (msc - mse) / n
    average = msr + (msc - mse) / n
    if abs(single) < 1e-12 or abs(average) < 1e-12:
        return None
    return Icc((msr - mse) / single, (msr - mse) / average, n, k)


def krippendorff_alpha_ordinal(
    data: Sequence[Sequence[int | None]], scale: Sequence[int] = SCALE
) -> float | None:
    """Alpha of a raters x units matrix; None marks a missing value. Units with one value are not pairable."""
    index = {value: i for i, value in enumerate(scale)}
    k = len(scale)
    coincidence = [[0.0] * k for _ in range(k)]
    units = len(data[0]) if data else 0
    for u in range(units):
        values = [row[u] for row in data if row[u] is not None]
        m = len(values)
        if m < 2:
            continue
        for i, j in itertools.permutations(range(m), 2):
            coincidence[index[values[i]]][index[values[j]]] += 1 / (m - 1)  # type: ignore[index]
    marginals = [sum(row) for row in coincidence]
    n = sum(marginals)
    if n <= 1:
        return None

    def delta(c: int, e: int) -> float:
        lo, hi = min(c, e), max(c, e)
        return (sum(marginals[lo : hi + 1]) - (marginals[c] + marginals[e]) / 2) ** 2

    observed = sum(coincidence[c][e] * delta(c, e) for c in range(k) for e in range(k))
    expected = sum(marginals[c] * marginals[e] * delta(c, e) for c in range(k) for e in range(k))
    if expected == 0:
        return None
    return 1 - (n - 1) * observed / expected


def leniency(levels: dict[Hashable, dict[str, float]]) -> dict[str, float]:
    """Each rater's mean of (their level - the mean of the other raters) over the subjects they share.

    `levels` maps a subject (a session and dimension) to {rater: level}. Positive: more lenient.
    """
    deviations: dict[str, list[float]] = defaultdict(list)
    for by_rater in levels.values():
        if len(by_rater) < 2:
            continue
        for rater, level in by_rater.items():
            others = [v for r, v in by_rater.items() if r != rater]
            deviations[rater].append(level - sum(others) / len(others))
    return {rater: sum(d) / len(d) for rater, d in sorted(deviations.items())}


# --------------------------------------------------------------------------------------------------
# From the database
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DimensionAgreement:
    dimension: str
    period: str
    sessions: int
    raters: list[str]
    alpha: float | None
    kappa: dict[str, float | None]
    icc: Icc | None
    icc_panel: list[str]
    leniency: dict[str, float]


def _period(moment: Any, by: str) -> str:
    if by == "all" or moment is None:
        return "all"
    if by == "quarter":
        return f"{moment.year}-Q{(moment.month - 1) // 3 + 1}"
    return f"{moment.year}-{moment.month:02d}"


def dimension_agreement(dimension: str, period: str, levels: dict[int, dict[str, int]]) -> DimensionAgreement:
    """The statistics of one dimension over sessions: {session id: {rater: level}}."""
    raters = sorted({r for by_rater in levels.values() for r in by_rater})
    sessions = sorted(levels)
    alpha = krippendorff_alpha_ordinal([[levels[s].get(r) for s in sessions] for r in raters])
    # Pairs come from the sessions they shared: a pool of many raters (each rating a few sessions) would
    # otherwise cost every pair of raters times every session, for pairs that never met.
    shared_by_pair: dict[tuple[str, str], list[int]] = defaultdict(list)
    for s in sessions:
        for a, b in itertools.combinations(sorted(levels[s]), 2):
            shared_by_pair[(a, b)].append(s)
    kappa: dict[str, float | None] = {
        f"{a}~{b}": cohen_kappa_quadratic([levels[s][a] for s in shared], [levels[s][b] for s in shared])
        for (a, b), shared in sorted(shared_by_pair.items())
    }
    # ICC(2,.) needs one set of raters for every subject: the panel that rated the most sessions together.
    panels: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for s in sessions:
        panels[tuple(sorted(levels[s]))].append(s)
    panel, panel_sessions = max(
        panels.items(), key=lambda item: (len(item[1]), len(item[0])), default=((), [])
    )
    icc = icc2([[float(levels[s][r]) for r in panel] for s in panel_sessions]) if panel else None
    return DimensionAgreement(
        dimension=dimension,
        period=period,
        sessions=len(sessions),
        raters=raters,
        alpha=alpha,
        kappa=kappa,
        icc=icc,
        icc_panel=list(panel) if icc else [],
        leniency=leniency({s: dict(levels[s]) for s in sessions}),
    )


def agreement_by_dimension(ratings: Iterable[Any], *, by: str = "month") -> list[DimensionAgreement]:
    """Per dimension and period (`month`, `quarter` or `all`), from Rating rows of closed sessions."""
    grouped: dict[tuple[str, str], dict[int, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    for r in ratings:
        period = _period(r.session.closed_at or r.session.rating_started_at, by)
        grouped[(r.dimension.key, period)][r.session_id][r.rater.get_username()] = r.level
    return [dimension_agreement(dim, period, levels) for (dim, period), levels in sorted(grouped.items())]
