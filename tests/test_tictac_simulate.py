"""The parameter-server simulator: bounds, efficiency, sharing, stragglers, pipelining."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_core.tictac import ordering
from mlsys_core.tictac.graph import OpGraph, random_graph
from mlsys_core.tictac.simulate import Cluster, arrivals, simulate


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 30), st.integers(1, 50), st.integers(0, 10_000), st.integers(1, 4), st.integers(1, 3),
       st.floats(0.05, 50.0), st.sampled_from(ordering.SCHEDULERS))
def test_makespan_lies_between_the_bounds_and_efficiency_in_unit_interval(n_recv, n_compute, seed, workers, servers,
                                                                            gbps, name):
    g = random_graph(n_recv, n_compute, seed=seed)
    cluster = Cluster(workers=workers, parameter_servers=servers, bandwidth_gbps=gbps)
    res = simulate(g, ordering.schedule(g, name, cluster.oracle(), workers, 2, seed), cluster, seed=seed)
    tol = 1e-12
    assert (res.makespan >= res.lower - tol).all() and (res.makespan <= res.upper + tol).all()
    assert (res.makespan >= res.comm - tol).all() and (res.makespan >= res.comp - tol).all()
    assert ((res.efficiency >= 0) & (res.efficiency <= 1)).all()
    assert np.allclose(res.comp, cluster.oracle().compute_seconds(g).sum())
    # every op starts after its inputs are ready
    ptr, idx = g.preds
    for v in range(g.n_recv, g.n_nodes):
        for p in idx[ptr[v]:ptr[v + 1]]:
            ready = res.arrival[..., p] if p < g.n_recv else res.finish[..., p - g.n_recv]
            assert (res.start[..., v - g.n_recv] >= ready - tol).all()


def test_transfers_share_the_link_and_servers_split_the_recvs():
    g = OpGraph([1e6] * 4, [1.0], [0, 1, 2, 3], [4, 4, 4, 4])
    order = np.arange(4)[None, None].repeat(2, axis=1)
    one = arrivals(g, order, Cluster(workers=2, latency_us=0.0, bandwidth_gbps=8.0))
    np.testing.assert_allclose(one[0, 0], [2e-3, 4e-3, 6e-3, 8e-3])  # 1 MB at 8 Gbit/s shared by 2
    two = arrivals(g, order, Cluster(workers=2, parameter_servers=2, latency_us=0.0, bandwidth_gbps=8.0))
    np.testing.assert_allclose(two[0, 0], [2e-3, 2e-3, 4e-3, 4e-3])


def test_perfect_overlap_gives_efficiency_one_and_serial_gives_zero():
    # r0 -> op2 (long), r1 -> op3: sending r0 first overlaps op2 with r1's transfer.
    g = OpGraph([1e6, 1e6], [1e7, 1.0], [0, 1], [2, 3])
    cluster = Cluster(workers=1, latency_us=0.0, bandwidth_gbps=8.0, gflops=10.0, op_overhead_us=0.0)
    good = simulate(g, np.array([[[0, 1]]]), cluster)
    bad = simulate(g, np.array([[[1, 0]]]), cluster)
    assert good.efficiency[0, 0] == pytest.approx(1.0)
    assert bad.efficiency[0, 0] == pytest.approx(0.0, abs=1e-6)


def test_random_order_straggles_and_tac_does_not_without_jitter():
    g = random_graph(40, 120, seed=5, max_bytes=1e5, max_flops=1e6)
    cluster = Cluster(workers=4, bandwidth_gbps=5.0)
    rnd = simulate(g, ordering.schedule(g, "random", cluster.oracle(), 4, 10, 0), cluster)
    tac = simulate(g, ordering.schedule(g, "tac", cluster.oracle(), 4, 10, 0), cluster)
    assert (tac.straggler == 0).all() and rnd.straggler.mean() > 0
    assert tac.iteration_time.mean() < rnd.iteration_time.mean()
    noisy = Cluster(workers=4, bandwidth_gbps=5.0, jitter=0.3)
    assert simulate(g, ordering.schedule(g, "tac", noisy.oracle(), 4, 10, 0), noisy, seed=1).straggler.mean() > 0


def test_pipelining_and_parallel_ops_never_hurt_on_a_random_dag():
    g = random_graph(30, 80, seed=2, max_bytes=3e5, max_flops=1e7)
    cluster = Cluster(workers=2, bandwidth_gbps=2.0)
    orders = ordering.schedule(g, "random", cluster.oracle(), 2, 6, 0)
    base = simulate(g, orders, cluster)
    piped = simulate(g, orders, cluster, pipelined=True)
    assert piped.iteration_time[1:].mean() <= base.iteration_time.mean() + 1e-12
    in_order = simulate(g, orders, cluster, executor="in_order")
    assert (in_order.makespan >= in_order.lower - 1e-12).all()


def test_bad_cluster_and_orders_are_rejected():
    g = random_graph(3, 4)
    with pytest.raises(ValueError, match="bandwidth_gbps"):
        Cluster(bandwidth_gbps=0)
    with pytest.raises(ValueError, match="workers"):
        Cluster(workers=0)
    with pytest.raises(ValueError, match="permutation"):
        simulate(g, np.zeros((1, 1, 3), dtype=int), Cluster(workers=1))
    with pytest.raises(ValueError, match="shape"):
        simulate(g, np.zeros((1, 2, 3), dtype=int), Cluster(workers=1))
    with pytest.raises(ValueError, match="executor"):
        simulate(g, np.arange(3)[None, None], Cluster(workers=1), executor="lazy")


def test_headroom_is_what_perfect_overlap_gains():
    g = OpGraph([1e6, 1e6], [1e7, 1.0], [0, 1], [2, 3])
    cluster = Cluster(workers=1, latency_us=0.0, bandwidth_gbps=8.0, gflops=10.0, op_overhead_us=0.0)
    res = simulate(g, np.array([[[0, 1]]]), cluster)
    # comm 2 ms, comp 1 ms: U = 3 ms, L = 2 ms, S = 0.5
    assert res.headroom[0, 0] == pytest.approx(0.5)


def test_cluster_checks_kinds_and_ranges_through_the_shared_validator():
    assert Cluster(workers=np.int64(3)).workers == 3  # NumPy ints are ints
    with pytest.raises(TypeError, match=r"workers must be an int, got True"):
        Cluster(workers=True)
    with pytest.raises(TypeError, match=r"parallel_ops must be an int, got 2.0"):
        Cluster(parallel_ops=2.0)
    with pytest.raises(ValueError, match=r"jitter must be in \[0, 5\), got 5.0"):
        Cluster(jitter=5.0)
    with pytest.raises(TypeError, match="latency_us must be a number"):
        Cluster(latency_us="50")
    with pytest.raises(ValueError, match=r"gflops must be > 0, got -1.0"):
        Cluster(gflops=-1.0)
