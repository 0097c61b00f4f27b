"""Paper 3 at scale: the check-in queue, the fused eligibility kernel, and the typed columnar result."""

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_core.fl import telemetry as T
from mlsys_core.fl.checkin import CheckinQueue, _argsort_times, _check_in, _mod24, arrival_order, devices_view
from mlsys_core.fl.population import HOUR_S, PopulationConfig, is_eligible, make_population, next_eligible_s
from mlsys_core.fl.protocol import round_participants, simulate
from mlsys_core.fl.rounds import RoundConfig
from mlsys_core.fl.steering import SteeringConfig


@given(times=st.lists(st.floats(0.0, 5000.0) | st.just(np.inf), min_size=1, max_size=60),
       steps=st.lists(st.tuples(st.floats(0.0, 6000.0), st.floats(0.0, 3000.0)), max_size=12))
@settings(max_examples=60, deadline=None)
def test_checkin_queue_pops_exactly_the_due_devices(times, steps):
    """Against a plain array model: each pop returns every device due before the horizon, once."""
    model = np.array(times, np.float64)
    q = CheckinQueue(model.copy(), horizon_s=4000.0)  # times past the horizon sit in the last bucket
    horizon = 0.0
    for advance, back_in in steps:
        horizon += advance
        ids, t = q.pop_due(horizon)
        due = np.flatnonzero(model < horizon)
        assert sorted(ids.tolist()) == due.tolist()
        assert np.array_equal(t[np.argsort(ids)], model[due])
        model[due] = np.inf  # held ...
        q.schedule(due[::2], horizon + back_in)  # ... and half of them come back later
        model[due[::2]] = horizon + back_in


def test_fused_check_in_matches_the_population_functions():
    pop = make_population(PopulationConfig(num_devices=5000, checkin_jitter_h=1.0), seed=4)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, pop.size, 20_000)
    t = rng.uniform(0.0, 2 * 24 * HOUR_S, len(ids))
    ok, nxt, no_plan = _check_in(t, ids, devices_view(pop, None))
    assert np.array_equal(ok, is_eligible(pop, t, ids))
    assert np.array_equal(nxt[~ok], next_eligible_s(pop, t[~ok], ids[~ok]))  # bit for bit
    assert not no_plan.any()
    edges = np.concatenate([np.arange(-48, 96) * 24.0, np.nextafter(np.arange(-48, 96) * 24.0, np.inf),
                            np.nextafter(np.arange(-48, 96) * 24.0, -np.inf), [-1e-17, 1e-300, -1e-300]])
    fused = numba.njit(lambda x: np.array([_mod24(v) for v in x]))(edges)
    assert np.array_equal(fused, np.mod(edges, 24.0))
    assert np.array_equal(np.signbit(fused), np.signbit(np.mod(edges, 24.0)))


def test_participants_are_the_accepted_updates_of_committed_rounds():
    pop = make_population(PopulationConfig(num_devices=4000), seed=2)
    res = simulate(pop, RoundConfig(goal_count=40, min_reports=30), SteeringConfig(), 3 * HOUR_S, seed=1,
                   traced_devices=pop.size)
    p = round_participants(res)
    c = res.counters
    assert len(p) == len(c) and p.committed.any() and np.array_equal(p.close_s, c.close_s)
    ids, t, codes = res.log.arrays()
    up = codes == T.CODES.index("^")
    for r in range(len(p)):
        got = p.ids_of(r)
        if not p.committed[r]:
            assert len(got) == 0
            continue
        assert len(got) == c.accepted[r] and len(np.unique(got)) == len(got)
        in_round = up & (t > p.close_s[r]) & (t <= p.end_s[r] + 1e-9)
        assert set(got.tolist()) <= set(ids[in_round].tolist())  # each uploaded and was accepted in r
    with pytest.raises(ValueError):
        c.accepted[0] = 1  # frozen columns
    with pytest.raises(ValueError, match="column"):
        c.column("nope")


@given(t=st.lists(st.floats(0.0, 1e6) | st.sampled_from([0.0, 60.0, 3600.5]), max_size=300))
@settings(max_examples=60, deadline=None)
def test_radix_argsort_is_numpys_stable_argsort(t):
    t = np.array(t, np.float64)
    assert np.array_equal(_argsort_times(t), np.argsort(t, kind="stable"))


def test_equal_times_are_ordered_by_pass_then_device():
    ids = np.array([9, 3, 7, 1, 5])
    t = np.array([2.0, 1.0, 2.0, 2.0, 0.5])
    passes = np.array([0, 0, 0, 1, 0])
    got_ids, got_t = arrival_order(ids, t, passes)
    assert got_ids.tolist() == [5, 3, 7, 9, 1] and got_t.tolist() == [0.5, 1.0, 2.0, 2.0, 2.0]
