import numpy as np

from mlsys_core.data import load_digits


def test_digits_shapes_and_ranges():
    x, y = load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32
    assert y.shape == (1797,) and y.dtype == np.int32
    assert 0.0 <= x.min() and x.max() == 1.0
    assert set(np.unique(y)) == set(range(10))
    # roughly balanced classes, as in the UCI set (174..183 per class)
    counts = np.bincount(y)
    assert counts.min() >= 170 and counts.max() <= 185


def test_digits_unflattened():
    x, _ = load_digits(flatten=False)
    assert x.shape == (1797, 8, 8)


def test_flatten_must_be_a_bool():
    import pytest

    with pytest.raises(TypeError, match="flatten must be True or False, got 'no'"):
        load_digits(flatten="no")
