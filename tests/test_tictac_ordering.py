"""TIC and TAC: definitions, the fast kernel against a direct evaluation, optima on small DAGs."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_core.tictac import ordering
from mlsys_core.tictac.graph import OpGraph, random_graph
from mlsys_core.tictac.simulate import Cluster, simulate


def _tac_direct(g, t, c):
    """TAC straight from the definitions: recompute every property at every step (quadratic)."""
    alive, out = np.ones(g.n_recv, bool), []
    for _ in range(g.n_recv):
        _, p, m_plus = ordering.properties(g, t, c, alive)
        first = alive & (t <= p)
        cand = first & (t == t[first].min()) if first.any() else alive & (p == np.nanmax(p))
        idx = np.flatnonzero(cand)
        head = idx[np.lexsort((idx, m_plus[idx]))[0]]
        out.append(head)
        alive[head] = False
    return np.array(out)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 40), st.integers(1, 60), st.integers(0, 10_000), st.floats(0.01, 100.0))
def test_orders_are_permutations_and_tac_kernel_matches_definitions(n_recv, n_compute, seed, gbps):
    g = random_graph(n_recv, n_compute, seed=seed)
    oracle = ordering.TimeOracle(bandwidth_gbps=gbps)
    for name in ordering.SCHEDULERS:
        orders = ordering.schedule(g, name, oracle, workers=2, iterations=2, seed=seed)
        assert orders.shape == (2, 2, n_recv)
        assert (np.sort(orders, axis=-1) == np.arange(n_recv)).all()
    t, c = oracle.recv_seconds(g), oracle.compute_seconds(g)
    np.testing.assert_array_equal(ordering.tac(g, t, c), _tac_direct(g, t, c))


def test_tic_priority_is_m_plus_with_unit_times():
    g = random_graph(12, 30, seed=3)
    _, _, m_plus = ordering.properties(g, np.ones(g.n_recv), np.zeros(g.n_compute))
    np.testing.assert_array_equal(ordering.tic_priority(g), m_plus)
    assert (np.diff(m_plus[ordering.tic(g)]) >= 0).all()


def test_properties_on_a_hand_built_graph():
    # op4 = f(r0), op5 = f(op4, r1), op6 = f(r2, r3)
    g = OpGraph([1, 1, 1, 1], [1, 1, 1], [0, 4, 1, 2, 3], [4, 5, 5, 6, 6])
    t, c = np.array([1.0, 2.0, 3.0, 4.0]), np.array([10.0, 20.0, 30.0])
    m, p, m_plus = ordering.properties(g, t, c)
    np.testing.assert_array_equal(m, [1, 3, 7])
    np.testing.assert_array_equal(p, [10, 0, 0, 0])
    np.testing.assert_array_equal(m_plus, [3, 3, 7, 7])
    m, p, m_plus = ordering.properties(g, t, c, outstanding=[False, True, True, True])
    np.testing.assert_array_equal(p[1:], [20, 0, 0])


def _best_makespan(g, cluster):
    perms = np.array(list(itertools.permutations(range(g.n_recv))))[:, None, :]
    return simulate(g, perms, cluster).iteration_time.min()


def _makespan(g, name, cluster):
    return simulate(g, ordering.schedule(g, name, cluster.oracle()), cluster).iteration_time[0]


def test_tac_follows_johnsons_rule_on_two_independent_chains():
    # r0 is big and unblocks little compute; r1 is small and unblocks a lot: send r1 first.
    g = OpGraph([1e6, 1e4], [1e6, 1e8], [0, 1], [2, 3])
    cluster = Cluster(workers=1, latency_us=0.0, bandwidth_gbps=1.0, gflops=10.0, op_overhead_us=0.0)
    np.testing.assert_array_equal(ordering.schedule(g, "tac", cluster.oracle())[0, 0], [1, 0])
    assert _makespan(g, "tac", cluster) == pytest.approx(_best_makespan(g, cluster))
    assert _makespan(g, "layer", cluster) > 1.5 * _best_makespan(g, cluster)


def test_tic_and_tac_find_the_optimum_when_one_op_needs_few_recvs():
    # a heavy op needs {r3, r4}; a light one needs {r0, r1, r2}: recv index order is the worst.
    g = OpGraph([1e5] * 5, [1e4, 1e8], [0, 1, 2, 3, 4], [5, 5, 5, 6, 6])
    cluster = Cluster(workers=1, latency_us=0.0, op_overhead_us=0.0)
    best = _best_makespan(g, cluster)
    assert set(ordering.tic(g)[:2]) == {3, 4}
    for name in ("tic", "tac"):
        assert _makespan(g, name, cluster) == pytest.approx(best)
    assert _makespan(g, "layer", cluster) > 1.2 * best


def test_tac_recovers_a_chain_order_hidden_by_recv_ids():
    # layer k needs recv (4 - k) and layer k-1: the recv ids run against the chain.
    n = 5
    src, dst = [], []
    for k in range(n):
        src.append(n - 1 - k), dst.append(n + k)
        if k:
            src.append(n + k - 1), dst.append(n + k)
    g = OpGraph([1e5] * n, [1e6] * n, src, dst)
    cluster = Cluster(workers=1, latency_us=0.0)
    np.testing.assert_array_equal(ordering.tac(g, cluster.recv_seconds(g), cluster.oracle().compute_seconds(g)),
                                  [4, 3, 2, 1, 0])
    assert _makespan(g, "tac", cluster) == pytest.approx(_best_makespan(g, cluster))


def test_tic_and_tac_are_near_the_brute_force_optimum_on_tiny_random_dags():
    """Stated gap: on 40 random 5-recv / 12-op DAGs TAC's makespan is within 25% of the best of all
    120 orders on every DAG and within 5% on average; TIC within 25% and 8%; random order is worse."""
    cluster = Cluster(workers=1, latency_us=0.0)
    gaps = []
    for seed in range(40):
        g = random_graph(5, 12, seed=seed)
        perms = np.array(list(itertools.permutations(range(5))))[:, None, :]
        times = simulate(g, perms, cluster).iteration_time
        best = times.min()
        gaps.append([_makespan(g, "tic", cluster) / best - 1, _makespan(g, "tac", cluster) / best - 1,
                     times.mean() / best - 1])
    gaps = np.array(gaps)
    assert gaps[:, 1].max() < 0.25 and gaps[:, 1].mean() < 0.05
    assert gaps[:, 0].max() < 0.25 and gaps[:, 0].mean() < 0.08
    assert gaps[:, 1].mean() < gaps[:, 2].mean()


def test_random_is_redrawn_per_iteration_and_worker_others_are_fixed():
    g = random_graph(30, 40, seed=1)
    r = ordering.schedule(g, "random", workers=3, iterations=4, seed=7)
    assert len({tuple(o) for o in r.reshape(-1, 30)}) == 12
    np.testing.assert_array_equal(r, ordering.schedule(g, "random", workers=3, iterations=4, seed=7))
    tac = ordering.schedule(g, "tac", workers=3, iterations=4)
    assert (tac == tac[0, 0]).all()
    np.testing.assert_array_equal(ordering.reverse_order(g), ordering.layer_order(g)[::-1])


def test_bad_scheduler_and_oracle_inputs_are_rejected():
    g = random_graph(3, 4)
    with pytest.raises(ValueError, match="scheduler must be one of"):
        ordering.schedule(g, "fifo")
    with pytest.raises(ValueError, match="bandwidth_gbps"):
        ordering.TimeOracle(bandwidth_gbps=0.0)
    with pytest.raises(ValueError, match="bandwidth_gbps"):
        ordering.TimeOracle(bandwidth_gbps=-1.0)
    with pytest.raises(ValueError, match=r"recv_seconds must hold one time per op \(3\), got shape \(2,\)"):
        ordering.tac(g, np.ones(2), np.ones(4))
    with pytest.raises(ValueError, match=r"compute_seconds must hold one time per op \(4\), got shape \(2,\)"):
        ordering.schedule(g, "tac", recv_seconds=np.ones(3), compute_seconds=np.ones(2))
    with pytest.raises(ValueError, match=r"recv_seconds must hold finite numbers; recv_seconds\[1\] is nan"):
        ordering.tac(g, np.array([1.0, np.nan, 1.0]), np.ones(4))
    with pytest.raises(ValueError, match="workers"):
        ordering.schedule(g, "tic", workers=0)
    with pytest.raises(TypeError, match="iterations must be an int, got 1.5"):
        ordering.schedule(g, "tic", iterations=1.5)
    with pytest.raises(ValueError, match=r"op_overhead_us must be >= 0, got -1.0"):
        ordering.TimeOracle(op_overhead_us=-1.0)


def test_m_plus_is_infinite_for_a_recv_whose_consumers_need_only_it():
    """The authors' rule (xldrx/tictac: `Mp = math.inf` unless an op needs r and another outstanding
    recv). op3 needs r0 alone, op4 needs r1 and r2. With M⁺(r0) = time(r0) = 1 (the old deviation)
    r0 would sort first; with +inf, TIC sends r1, r2 first, and TAC, whose Johnson keys tie (all
    P = 0), starts with r1 (M⁺ 2 against r0's +inf); then both left have M⁺ = +inf: index order."""
    g = OpGraph([1e3, 1e3, 1e3], [0.0, 1e6], [0, 1, 2], [3, 4, 4])
    np.testing.assert_array_equal(ordering.tic_priority(g), [np.inf, 2.0, 2.0])
    np.testing.assert_array_equal(ordering.tic(g), [1, 2, 0])
    t, c = np.ones(3), np.zeros(2)
    _, p, m_plus = ordering.properties(g, t, c)
    np.testing.assert_array_equal(m_plus, [np.inf, 2.0, 2.0])
    np.testing.assert_array_equal(p, [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(ordering.tac(g, t, c), [1, 0, 2])
    np.testing.assert_array_equal(ordering.tac(g, t, c), _tac_direct(g, t, c))


def test_schedule_checks_its_graph_oracle_and_seed():
    g = random_graph(3, 4, seed=0)
    with pytest.raises(ValueError, match="seed must be >= 0, got -4"):
        ordering.schedule(g, "random", seed=-4)
    with pytest.raises(TypeError, match="seed must be an int, got 2.0"):
        ordering.schedule(g, "random", seed=2.0)
    with pytest.raises(TypeError, match="oracle must be an ordering.TimeOracle or None, got 10.0"):
        ordering.schedule(g, "tac", oracle=10.0)
    with pytest.raises(TypeError, match="graph must be a graph.OpGraph, got 'cnn'"):
        ordering.schedule("cnn", "tic")


def test_a_scheduler_is_an_object_in_the_registry_and_schedule_asks_it(monkeypatch):
    """Adding a policy is adding an object: `schedule` finds it by name and broadcasts its one order."""
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Backwards(ordering.Scheduler):
        name: str = "backwards"

        def order(self, graph, recv_seconds, compute_seconds):
            return np.arange(graph.n_recv)[::-1].copy()

    assert all(s.name == name for name, s in ordering.SCHEDULERS.items())
    assert [name for name, s in ordering.SCHEDULERS.items() if s.timed] == ["tac"]
    monkeypatch.setitem(ordering.SCHEDULERS, "backwards", Backwards())
    orders = ordering.schedule(random_graph(5, 8, seed=1), "backwards", workers=2, iterations=3)
    assert orders.shape == (3, 2, 5) and (orders == [4, 3, 2, 1, 0]).all()
    with pytest.raises(ValueError, match="scheduler must be one of"):
        ordering.schedule(random_graph(5, 8, seed=1), "forwards")
