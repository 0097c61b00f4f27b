"""The shared argument checks: wrong kind -> TypeError, out of range -> ValueError, messages name all three."""

import math

import numpy as np
import pytest

from mlsys_core import validate as V


@pytest.mark.parametrize("value", [3, np.int64(3), np.int8(3)])
def test_integer_accepts_python_and_numpy_ints_and_returns_int(value):
    out = V.integer("workers", value, 1, 8)
    assert out == 3 and type(out) is int


@pytest.mark.parametrize("value", [True, 3.0, "3", None, np.float64(3.0)])
def test_integer_refuses_other_kinds(value):
    with pytest.raises(TypeError, match=r"workers must be an int, got"):
        V.integer("workers", value, 1)


@pytest.mark.parametrize(
    "kw, match",
    [({"value": 0, "low": 1}, r"workers must be >= 1, got 0"),
     ({"value": 9, "low": 1, "high": 8}, r"workers must be in \[1, 8\], got 9"),
     ({"value": 9, "high": 8}, r"workers must be <= 8, got 9")],
)
def test_integer_range_messages(kw, match):
    with pytest.raises(ValueError, match=match):
        V.integer("workers", **kw)


def test_number_open_ends_nan_and_inf():
    assert V.number("x", np.float32(0.5), 0, 1) == 0.5
    with pytest.raises(ValueError, match=r"x must be in \(0, 1\], got 0"):
        V.number("x", 0, 0, 1, low_open=True)
    with pytest.raises(ValueError, match=r"x must be < 1, got 1"):
        V.number("x", 1, high=1, high_open=True)
    with pytest.raises(ValueError, match="x must be finite"):
        V.number("x", math.nan)
    with pytest.raises(ValueError, match="x must be finite"):
        V.number("x", math.inf)
    assert V.number("x", math.inf, 0, allow_inf=True) == math.inf
    with pytest.raises(TypeError, match="x must be a number"):
        V.number("x", True)


def test_positive_and_probability():
    assert V.positive("bandwidth_gbps", 0.1) == 0.1
    with pytest.raises(ValueError, match="bandwidth_gbps must be > 0"):
        V.positive("bandwidth_gbps", 0)
    assert V.probability("p", 1) == 1
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        V.probability("p", 1, open_high=True)


def test_boolean_string_choice_instance_callable():
    assert V.boolean("flag", np.bool_(True)) is True
    with pytest.raises(TypeError, match="flag must be True or False, got 1"):
        V.boolean("flag", 1)
    assert V.string("name", "a") == "a"
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        V.string("name", "  ")
    assert V.string("name", "", empty=True) == ""
    with pytest.raises(ValueError, match=r"mode must be one of \('infer', 'train'\), got 'eval'"):
        V.choice("mode", "eval", ("infer", "train"))
    with pytest.raises(ValueError, match="mode must be one of"):
        V.choice("mode", ["unhashable"], {"infer": 1})
    with pytest.raises(TypeError, match="cfg must be dict or list, got 3"):
        V.instance("cfg", 3, (dict, list))
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        V.callable_("loss_fn", 3)


def test_seeds():
    assert V.seeds("seeds", range(3)) == (0, 1, 2)
    assert V.seeds("seeds", np.arange(2)) == (0, 1)
    with pytest.raises(ValueError, match="seeds must hold at least one seed"):
        V.seeds("seeds", ())
    with pytest.raises(ValueError, match="seeds must be >= 0, got -1"):
        V.seeds("seeds", (0, -1))
    with pytest.raises(TypeError, match="seeds must be a sequence of ints"):
        V.seeds("seeds", 5)
    with pytest.raises(TypeError, match="seeds must be a sequence of ints >= 0, got b'ab'"):
        V.seeds("seeds", b"ab")  # bytes iterate as ints


def test_seed_is_a_non_negative_int():
    assert V.seed("seed", np.int32(4)) == 4
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        V.seed("seed", -1)
    with pytest.raises(TypeError, match="seed must be an int, got 1.5"):
        V.seed("seed", 1.5)


def test_integers_refuses_fractions_instead_of_truncating():
    assert V.integers("ids", [1.0, 2.0]).tolist() == [1, 2]
    assert V.integers("ids", np.arange(3, dtype=np.uint8), 0, 2).dtype == np.int64
    with pytest.raises(ValueError, match=r"ids must hold whole numbers; ids\[1\] is 2.2"):
        V.integers("ids", [1.0, 2.2, 3.9])
    with pytest.raises(ValueError, match=r"ids must hold whole numbers; ids\[0\] is nan"):
        V.integers("ids", [np.nan])
    with pytest.raises(ValueError, match=r"ids must hold values >= 0; ids\[2\] is -1"):
        V.integers("ids", [0, 1, -1], 0)
    with pytest.raises(ValueError, match=r"ids must have 1 dimension, got shape \(2, 2\)"):
        V.integers("ids", [[1, 2], [3, 4]])
    with pytest.raises(TypeError, match="ids must be an array of numbers, got dtype <U1"):
        V.integers("ids", ["a"])
    with pytest.raises(TypeError, match="ids must be an array of numbers, got dtype bool"):
        V.integers("ids", [True])
    with pytest.raises(ValueError, match="ids must be an array of numbers"):
        V.integers("ids", [[1], [2, 3]])
    with pytest.raises(ValueError, match="fit in int64"):
        V.integers("ids", np.array([2**64 - 1], np.uint64))


def test_reals_refuses_non_finite_and_out_of_range():
    assert V.reals("x", [[1, 2]], ndim=2).dtype == np.float64
    with pytest.raises(ValueError, match=r"x must hold finite numbers; x\[0, 1\] is inf"):
        V.reals("x", [[1.0, np.inf]])
    with pytest.raises(ValueError, match=r"x must hold values in \[0, 1\]; x\[1\] is 2.0"):
        V.reals("x", [0.5, 2.0], 0, 1)


def test_a_large_whole_bound_is_written_in_full():
    with pytest.raises(ValueError, match=r"obj_size must be in \[1, 4294967295\], got 4294967296"):
        V.integer("obj_size", 2**32, 1, 2**32 - 1)


def test_whole_takes_an_int_or_an_integral_float_and_names_a_fraction():
    assert V.whole("chips", 4096.0) == 4096 and isinstance(V.whole("chips", np.int64(8)), int)
    with pytest.raises(ValueError, match="chips must be a whole number, got 4096.5"):
        V.whole("chips", 4096.5)
    with pytest.raises(TypeError, match="chips must be a number"):
        V.whole("chips", "4096")


def test_flag_takes_a_bool_or_zero_or_one():
    assert V.flag("overlap", 1.0) is True and V.flag("overlap", False) is False
    with pytest.raises(ValueError, match="overlap must be one of"):
        V.flag("overlap", -3.0)


def test_numeric_arguments_refuses_a_non_number_before_the_work_starts():
    calls = []

    @V.numeric_arguments
    def measure(chips: float = 4096.0, link_gb_per_s: float = 330.0) -> float:
        calls.append(chips)
        return chips * link_gb_per_s

    assert measure(chips=2.0) == 660.0 and measure(1.0, 2.0) == 2.0
    with pytest.raises(TypeError, match="link_gb_per_s must be a number, got 'fast'"):
        measure(link_gb_per_s="fast")
    with pytest.raises(ValueError, match="chips must be finite"):
        measure(chips=float("nan"))
    assert calls == [2.0, 1.0]
