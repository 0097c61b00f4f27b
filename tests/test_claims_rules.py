"""Every branch of every rule: each band, each edge, intervals inside one band and across edges."""

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from mlsys_core.claims import rules as R
from mlsys_core.claims.rules import EXCEEDS, INCONCLUSIVE, NOT_COMPARABLE, NOT_REPRODUCED, PARTLY, REPRODUCED

GAIN = R.at_least(1.2, partly=1.05, exceeds=1.377)


@pytest.mark.parametrize(
    "x, verdict",
    [(0.9, NOT_REPRODUCED), (1.05, PARTLY), (1.1, PARTLY), (1.2, REPRODUCED), (1.3, REPRODUCED),
     (1.377, REPRODUCED), (1.5, EXCEEDS), (math.inf, EXCEEDS)],
)
def test_at_least_bands_and_edges(x, verdict):
    assert GAIN(x) == verdict


def test_at_least_without_exceeds_has_no_ceiling():
    assert R.at_least(2, partly=1)(1e9) == REPRODUCED
    assert R.at_least(2, partly=1)(0.5) == NOT_REPRODUCED


@pytest.mark.parametrize(
    "x, verdict",
    [(0.001, EXCEEDS), (0.01, REPRODUCED), (0.02, REPRODUCED), (0.05, PARTLY), (0.08, PARTLY), (0.2, NOT_REPRODUCED)],
)
def test_at_most_bands_and_edges(x, verdict):
    assert R.at_most(0.02, partly=0.08, exceeds=0.01)(x) == verdict


def test_at_most_without_exceeds():
    rule = R.at_most(0.02, partly=0.08)
    assert rule(-1.0) == REPRODUCED and rule(0.1) == NOT_REPRODUCED


@pytest.mark.parametrize(
    "x, verdict",
    [(1.0, NOT_REPRODUCED), (1.5, PARTLY), (2.0, REPRODUCED), (2.5, REPRODUCED), (3.0, REPRODUCED),
     (3.5, PARTLY), (5.0, NOT_REPRODUCED)],
)
def test_between_is_two_sided(x, verdict):
    assert R.between(2, 3, partly=(1.5, 4))(x) == verdict


@pytest.mark.parametrize(
    "x, verdict", [(0.0, REPRODUCED), (-1e-6, REPRODUCED), (5e-4, PARTLY), (-5e-4, PARTLY), (0.1, NOT_REPRODUCED)]
)
def test_equal_absolute_tolerance(x, verdict):
    assert R.equal(0.0, atol=1e-5, partly_atol=1e-3)(x) == verdict


@pytest.mark.parametrize("x, verdict", [(1.73, REPRODUCED), (1.69, REPRODUCED), (1.5, PARTLY), (2.0, PARTLY),
                                        (1.0, NOT_REPRODUCED), (3.0, NOT_REPRODUCED)])
def test_within_relative_tolerance(x, verdict):
    assert R.within(1.73, rel=0.05, partly_rel=0.2)(x) == verdict


@pytest.mark.parametrize(
    "sign, x, verdict",
    [(1, 1.0, NOT_REPRODUCED), (1, 0.9, NOT_REPRODUCED), (1, 1.05, PARTLY), (1, 1.1, REPRODUCED),
     (-1, 1.0, NOT_REPRODUCED), (-1, 1.1, NOT_REPRODUCED), (-1, 0.95, PARTLY), (-1, 0.9, REPRODUCED)],
)
def test_direction_no_move_is_not_reproduced(sign, x, verdict):
    assert R.direction(sign, min_effect=0.1, reference=1.0)(x) == verdict


def test_qualitative_is_always_not_comparable():
    rule = R.qualitative("production keyboard model, not digits")
    assert rule(0.9) == NOT_COMPARABLE and rule(0.1, 0.2) == NOT_COMPARABLE
    assert "keyboard" in rule.text


@pytest.mark.parametrize(
    "lo, hi, verdict",
    [(1.21, 1.3, REPRODUCED),     # inside one band
     (1.0, 1.04, NOT_REPRODUCED),  # inside the lowest band
     (1.06, 1.1, PARTLY),
     (1.1, 1.3, INCONCLUSIVE),     # straddles the target edge: partly or reproduced, the data cannot say
     (1.0, 1.1, INCONCLUSIVE),     # straddles the partly edge
     (1.3, 1.5, REPRODUCED),       # reproduced and exceeds only: the paper's figure is among the values
     (1.4, 1.6, EXCEEDS),
     (1.0, 1.6, INCONCLUSIVE)],    # spans everything
)
def test_intervals(lo, hi, verdict):
    assert GAIN(lo, hi) == verdict


def test_interval_across_both_sides_of_a_two_sided_band_is_inconclusive():
    assert R.between(2, 3, partly=(1.5, 4))(1.0, 5.0) == INCONCLUSIVE


def test_a_straddling_interval_is_inconclusive_whatever_its_mean_and_point_gives_the_means_band():
    """An interval across the target edge cannot tell the bands apart, even with its mean well inside one."""
    assert GAIN(1.19, 1.35) == INCONCLUSIVE and GAIN.point(1.27) == REPRODUCED
    assert GAIN(1.04, 1.19) == INCONCLUSIVE and GAIN.point(1.06) == PARTLY


def test_the_texts_name_the_thresholds():
    assert GAIN.text == ">= 1.2 (partly >= 1.05, exceeds paper > 1.377)"
    assert "partly within 20%" in R.within(1.73, rel=0.05, partly_rel=0.2).text
    assert R.direction(-1, min_effect=0.1, reference=1).text.startswith("< 1 by >= 0.1")


@pytest.mark.parametrize(
    "make, error",
    [(lambda: R.at_least(1.0, partly=1.0), ValueError),          # empty partly band
     (lambda: R.at_least(1.0, partly=2.0), ValueError),          # partly above target
     (lambda: R.at_least(1.0, partly=0.5, exceeds=0.9), ValueError),
     (lambda: R.at_most(1.0, partly=0.5), ValueError),
     (lambda: R.between(3, 2, partly=(1, 4)), ValueError),
     (lambda: R.equal(0, atol=1e-3, partly_atol=1e-5), ValueError),
     (lambda: R.within(-1.0, rel=0.1, partly_rel=0.2), ValueError),
     (lambda: R.direction(0, min_effect=0.1), ValueError),
     (lambda: R.direction(1, min_effect=0.0), ValueError),
     (lambda: R.at_least("1", partly=0.5), TypeError),
     (lambda: R.at_least(math.nan, partly=0.5), ValueError),
     (lambda: R.qualitative(""), ValueError),
     (lambda: R.Bands((1.0,), (REPRODUCED,), "x"), ValueError),
     (lambda: R.Bands((1.0,), (REPRODUCED, "great"), "x"), ValueError),
     (lambda: R.Bands((2.0, 1.0), (REPRODUCED,) * 3, "x"), ValueError),
     (lambda: R.Bands((1.0,), (REPRODUCED, PARTLY), "x", at_edges=(PARTLY, PARTLY)), ValueError)],
)
def test_bad_rules_are_refused(make, error):
    with pytest.raises(error):
        make()


@pytest.mark.parametrize("lo, hi", [(math.nan, 1.0), (2.0, 1.0)])
def test_bad_measurements_are_refused(lo, hi):
    with pytest.raises(ValueError, match="lo <= hi"):
        GAIN(lo, hi)


def test_numpy_numbers_are_taken():
    assert GAIN(np.float32(1.3)) == REPRODUCED
    assert R.at_least(np.int64(2), partly=np.float64(1.5))(2) == REPRODUCED


@given(st.floats(0.5, 2.0), st.floats(0.0, 0.5))
def test_a_monotone_rule_on_an_interval_follows_its_ends(lo, width):
    """For at_least, an interval's verdict is its ends' verdict when they agree, "reproduced" when they are
    reproduced and exceeds, and "inconclusive" whenever they disagree otherwise."""
    hi = lo + width
    assume(lo not in GAIN.edges and hi not in GAIN.edges)
    ends = {GAIN(lo), GAIN(hi)}
    expected = ends.pop() if len(ends) == 1 else REPRODUCED if ends == {REPRODUCED, EXCEEDS} else INCONCLUSIVE
    assert GAIN(lo, hi) == expected
