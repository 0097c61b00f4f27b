"""Parameter-to-server placement: round robin (TensorFlow's default) and size-balanced greedy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_core.tictac import placement


def test_round_robin_is_r_mod_p_and_the_registry_holds_both_objects():
    np.testing.assert_array_equal(placement.place(np.ones(7), 3, "round_robin"), [0, 1, 2, 0, 1, 2, 0])
    assert set(placement.PLACEMENTS) == {"round_robin", "size_balanced"}
    assert all(p.name == name for name, p in placement.PLACEMENTS.items())
    with pytest.raises(ValueError, match="placement"):
        placement.place(np.ones(3), 2, "random")
    with pytest.raises(ValueError, match="servers"):
        placement.place(np.ones(3), 0)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(1.0, 1e7), min_size=1, max_size=60), st.integers(1, 6))
def test_greedy_spread_is_at_most_the_largest_tensor_and_never_worse_than_round_robin(sizes, servers):
    """List scheduling largest-first: the most and least loaded servers differ by at most one tensor,
    and its heaviest server holds no more than round robin's (LPT is within 4/3 of optimal)."""
    sizes = np.asarray(sizes)
    load = placement.server_bytes(sizes, servers, "size_balanced")
    assert load.sum() == pytest.approx(sizes.sum())
    if sizes.size >= servers:
        assert load.max() - load.min() <= sizes.max() * (1 + 1e-9)
    assert load.max() <= 4 / 3 * placement.server_bytes(sizes, servers, "round_robin").max() * (1 + 1e-9)


def test_size_balanced_splits_a_skewed_model_evenly():
    sizes = np.array([8.0, 1.0, 8.0, 1.0, 8.0, 1.0, 8.0, 1.0])
    np.testing.assert_allclose(placement.server_bytes(sizes, 2, "round_robin"), [32.0, 4.0])
    np.testing.assert_allclose(placement.server_bytes(sizes, 2, "size_balanced"), [18.0, 18.0])


def test_placement_refuses_negative_or_non_finite_sizes():
    with pytest.raises(ValueError, match=r"recv_bytes must hold values >= 0; recv_bytes\[1\] is -5.0"):
        placement.place([10.0, -5.0, 3.0], 2, "size_balanced")
    with pytest.raises(ValueError, match=r"recv_bytes must hold finite numbers; recv_bytes\[0\] is nan"):
        placement.server_bytes([float("nan"), 1.0], 2)
