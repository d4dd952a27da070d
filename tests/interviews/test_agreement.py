"""The agreement statistics against hand-computed values and, on random data, the reference libraries
(scikit-learn, pingouin, krippendorff: development-only dependencies)."""

from __future__ import annotations

import math
import warnings

import krippendorff
import numpy as np
import pandas as pd
import pingouin
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sklearn.metrics import cohen_kappa_score

from interviews.agreement import (
    SCALE,
    cohen_kappa_quadratic,
    dimension_agreement,
    icc2,
    krippendorff_alpha_ordinal,
    leniency,
)

level = st.integers(1, 5)


def test_quadratic_kappa_by_hand():
    assert cohen_kappa_quadratic([1, 2, 3], [1, 2, 3]) == 1.0
    # O = [[0,1],[1,0]] on 1..2, rows = cols = [1, 1], n = 2: sum w*O = 2, sum w*E = 2 * (1*1/2) = 1
    assert cohen_kappa_quadratic([1, 2], [2, 1]) == pytest.approx(1 - 2 / 1)
    assert cohen_kappa_quadratic([3, 3], [3, 3]) is None  # no variation: undefined


def test_icc_by_hand():
    # 4 subjects x 2 raters: MSR = 7/2, MSC = 1/2, MSE = 1/6, so MSR - MSE = 10/3;
    # ICC(2,1) = (MSR - MSE) / (MSR + MSE + 2 (MSC - MSE) / 4) = 20/23; ICC(2,k) = (MSR - MSE) / (MSR + (MSC - MSE) / 4) = 40/43
    result = icc2([[1, 2], [3, 3], [4, 5], [2, 2]])
    assert result is not None
    assert result.icc2_1 == pytest.approx(20 / 23)
    assert result.icc2_k == pytest.approx(40 / 43)
    assert icc2([[1, 2]]) is None
    assert icc2([[3, 3], [3, 3]]) is None


def test_krippendorff_alpha_by_hand():
    assert krippendorff_alpha_ordinal([[1, 2, 3], [1, 2, 3]]) == 1.0
    assert krippendorff_alpha_ordinal([[1, None], [1, 2]]) is None  # one pairable unit, one value


def test_leniency_is_the_mean_deviation_from_the_other_raters():
    levels = {
        ("s1", "a"): {"ann": 4, "bob": 2},
        ("s2", "a"): {"ann": 5, "bob": 4, "cy": 3},
        ("s3", "a"): {"ann": 1},
    }
    result = leniency(levels)
    # ann: (4-2) and (5-3.5) -> 1.75; bob: (2-4) and (4-4) -> -1; cy: (3-4.5) -> -1.5
    assert result == {"ann": pytest.approx(1.75), "bob": pytest.approx(-1.0), "cy": pytest.approx(-1.5)}


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(level, level), min_size=1, max_size=30))
def test_quadratic_kappa_matches_scikit_learn(pairs):
    a, b = (list(x) for x in zip(*pairs, strict=True))
    ours = cohen_kappa_quadratic(a, b)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = cohen_kappa_score(a, b, labels=list(SCALE), weights="quadratic")
    if ours is None:
        assert math.isnan(theirs)
    else:
        assert ours == pytest.approx(theirs, abs=1e-9)


matrices = st.integers(3, 10).flatmap(
    lambda n: st.integers(2, 4).flatmap(
        lambda k: st.lists(st.lists(level, min_size=k, max_size=k), min_size=n, max_size=n)
    )
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(matrices)
def test_icc_2_1_and_2_k_match_pingouin(matrix):
    ours = icc2(matrix)
    assume(ours is not None)
    rows = [(s, f"r{j}", x) for s, row in enumerate(matrix) for j, x in enumerate(row)]
    frame = pd.DataFrame(rows, columns=["subject", "rater", "level"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = pingouin.intraclass_corr(data=frame, targets="subject", raters="rater", ratings="level")
    theirs = dict(zip(table["Type"], table["ICC"], strict=True))
    assume(np.isfinite(theirs["ICC(A,1)"]) and np.isfinite(theirs["ICC(A,k)"]))
    assert ours.icc2_1 == pytest.approx(theirs["ICC(A,1)"], abs=1e-9)
    assert ours.icc2_k == pytest.approx(theirs["ICC(A,k)"], abs=1e-9)


reliability = st.integers(2, 4).flatmap(
    lambda raters: st.integers(2, 12).flatmap(
        lambda units: st.lists(
            st.lists(st.one_of(st.none(), level), min_size=units, max_size=units),
            min_size=raters,
            max_size=raters,
        )
    )
)


@settings(max_examples=100, deadline=None)
@given(reliability)
def test_ordinal_alpha_matches_krippendorff(data):
    ours = krippendorff_alpha_ordinal(data)
    array = np.array([[np.nan if v is None else v for v in row] for row in data], dtype=float)
    pairable = sum(1 for u in range(array.shape[1]) if np.sum(~np.isnan(array[:, u])) >= 2)
    assume(pairable >= 1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = krippendorff.alpha(
                reliability_data=array, level_of_measurement="ordinal", value_domain=list(SCALE)
            )
    except (ValueError, ZeroDivisionError):
        theirs = float("nan")
    if ours is None:
        assert not np.isfinite(theirs)
    else:
        assert ours == pytest.approx(theirs, abs=1e-9)


def test_dimension_agreement_uses_the_largest_common_panel_for_icc():
    levels = {
        1: {"ann": 4, "bob": 3},
        2: {"ann": 2, "bob": 2},
        3: {"ann": 5, "bob": 4},
        4: {"ann": 3, "cy": 1},
    }
    result = dimension_agreement("communication", "2026-03", levels)

    assert result.sessions == 4
    assert result.raters == ["ann", "bob", "cy"]
    assert result.icc_panel == ["ann", "bob"]
    assert result.icc is not None
    assert result.icc.subjects == 3
    assert result.kappa["ann~bob"] == pytest.approx(cohen_kappa_quadratic([4, 2, 5], [3, 2, 4]))
    assert result.kappa["ann~cy"] == 0.0  # one shared session: as scikit-learn computes it
    assert set(result.leniency) == {"ann", "bob", "cy"}
    assert result.alpha == pytest.approx(
        krippendorff_alpha_ordinal([[4, 2, 5, 3], [3, 2, 4, None], [None, None, None, 1]])
    )


def test_kappa_is_computed_for_pairs_who_rated_a_session_together_only():
    levels = {1: {"ann": 4, "bob": 3}, 2: {"cy": 2, "dee": 2}, 3: {"ann": 5, "bob": 4}}

    result = dimension_agreement("communication", "2026-03", levels)

    assert set(result.kappa) == {"ann~bob", "cy~dee"}
