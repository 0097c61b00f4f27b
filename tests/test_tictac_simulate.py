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
       st.floats(0.05, 50.0), st.sampled_from(tuple(ordering.SCHEDULERS)))
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
    with pytest.raises(TypeError, match="bandwidth_gbps must be a number, got None"):
        Cluster(bandwidth_gbps=None)  # used to fail dividing None by the workers


# --- training pushes gradients back; links are full duplex; the next pull waits for the update -------------


def _train_graph(seed=3):
    return random_graph(12, 40, seed=seed, max_bytes=3e5, max_flops=3e6, gradients=True)


def test_training_pushes_each_gradient_once_as_its_op_finishes_with_the_bytes_it_pulled():
    g = _train_graph()
    cluster = Cluster(workers=3, parameter_servers=2, bandwidth_gbps=2.0)
    orders = ordering.schedule(g, "random", cluster.oracle(), 3, 4, 0)
    res = simulate(g, orders, cluster)
    np.testing.assert_allclose(res.push_bytes, res.pull_bytes)
    np.testing.assert_allclose(res.pull_bytes, 3 * g.recv_bytes.sum())
    push_s = cluster.recv_seconds(g)
    ready = res.finish[..., g.gradient_op]
    assert (res.push_arrival >= ready + push_s - 1e-12).all()  # no gradient leaves before its op is done
    server = cluster.servers(g)
    for p in range(2):  # one uplink per (worker, server): pushes on it never overlap
        mine = np.sort(res.push_arrival[..., server == p], axis=-1)
        assert (np.diff(mine, axis=-1) >= push_s[server == p].min() - 1e-12).all()
    # synchronous PS: the iteration ends when the last worker's last gradient has arrived
    np.testing.assert_allclose(res.iteration_time, res.push_arrival.max(axis=(1, 2)))
    assert (res.makespan >= res.lower - 1e-12).all() and (res.makespan <= res.upper + 1e-12).all()


def test_inference_is_pull_only_and_push_needs_gradients():
    g = random_graph(12, 40, seed=3, max_bytes=3e5, max_flops=3e6)
    cluster = Cluster(workers=2)
    res = simulate(g, ordering.schedule(g, "tac", cluster.oracle(), 2, 3, 0), cluster)
    assert res.push_arrival.shape == (3, 2, 0) and (res.push_bytes == 0).all() and (res.pull_bytes > 0).all()
    with pytest.raises(ValueError, match="push=True needs a training graph"):
        simulate(g, ordering.schedule(g, "tac", cluster.oracle(), 2, 3, 0), cluster, push=True)


def test_full_duplex_pushes_never_delay_the_pulls_but_lengthen_the_iteration():
    g = _train_graph(4)
    cluster = Cluster(workers=2, parameter_servers=2, bandwidth_gbps=0.5, jitter=0.2)
    orders = ordering.schedule(g, "random", cluster.oracle(), 2, 5, 1)
    pushed = simulate(g, orders, cluster, seed=7)
    pulled = simulate(g, orders, cluster, seed=7, push=False)
    np.testing.assert_allclose(pushed.arrival, arrivals(g, orders, cluster, seed=7))
    np.testing.assert_allclose(pushed.finish, pulled.finish)
    assert (pushed.iteration_time > pulled.iteration_time).all()


def test_pipelined_pulls_of_the_next_iteration_wait_for_every_workers_gradient():
    g = _train_graph(5)
    cluster = Cluster(workers=3, bandwidth_gbps=20.0)  # compute-bound: gradients, not the link, set the pace
    orders = ordering.schedule(g, "tac", cluster.oracle(), 3, 4, 0)
    res = simulate(g, orders, cluster, pipelined=True)
    update = res.push_arrival.max(axis=1)  # (I, n_recv): all W gradients in
    pull_s = cluster.recv_seconds(g)
    assert (res.arrival[1:] >= update[:-1, None, :] + pull_s - 1e-12).all()
    free_running = simulate(g, orders, cluster, pipelined=True, push=False)
    assert (res.arrival[1:] > free_running.arrival[1:] + 1e-9).any()  # the wait binds somewhere


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 20), st.integers(1, 40), st.integers(0, 10_000), st.integers(1, 3), st.integers(1, 3),
       st.booleans())
def test_training_makespan_lies_between_the_bounds_with_pushes(n_recv, n_compute, seed, workers, servers, balanced):
    g = random_graph(n_recv, n_compute, seed=seed, gradients=True)
    cluster = Cluster(workers=workers, parameter_servers=servers, nic_gbps=1.5,
                      placement="size_balanced" if balanced else "round_robin")
    res = simulate(g, ordering.schedule(g, "random", cluster.oracle(), workers, 2, seed), cluster)
    assert (res.makespan >= res.lower - 1e-12).all() and (res.makespan <= res.upper + 1e-12).all()
    assert (res.makespan >= res.push_comm - 1e-12).all()
    np.testing.assert_allclose(res.push_bytes, res.pull_bytes)


# --- worker NIC cap and placement ---------------------------------------------------------------------------


def test_servers_beyond_the_workers_card_rate_stop_helping():
    g = OpGraph([1e6] * 8, [1.0], list(range(8)), [8] * 8)  # 8 equal tensors, one op
    def comm(servers, nic):
        c = Cluster(workers=1, parameter_servers=servers, bandwidth_gbps=1.0, latency_us=0.0, nic_gbps=nic)
        return simulate(g, np.arange(8)[None, None], c).comm[0, 0]
    # no card limit: every server adds its link
    assert comm(2, None) == pytest.approx(comm(1, None) / 2) and comm(4, None) == pytest.approx(comm(1, None) / 4)
    # a 2 Gbit/s card: two 1 Gbit/s servers fill it, a third and fourth add nothing
    assert comm(2, 2.0) == pytest.approx(comm(1, 2.0) / 2)
    assert comm(4, 2.0) == pytest.approx(comm(2, 2.0)) and comm(8, 2.0) == pytest.approx(comm(2, 2.0))
    assert comm(4, 2.0) == pytest.approx(8e6 * 8 / 2e9)  # the card's rate, exactly
    assert Cluster(workers=4, parameter_servers=4, bandwidth_gbps=10.0, nic_gbps=2.0).flow_gbps == pytest.approx(0.5)


def test_size_balanced_placement_beats_round_robin_when_big_tensors_line_up():
    # every other tensor is large: round robin puts all large ones on server 0
    g = OpGraph([8e6, 1e5] * 4, [1.0], list(range(8)), [8] * 8)
    order = np.arange(8)[None, None]
    rr = simulate(g, order, Cluster(workers=1, parameter_servers=2, latency_us=0.0))
    sb = simulate(g, order, Cluster(workers=1, parameter_servers=2, latency_us=0.0, placement="size_balanced"))
    assert sb.comm[0, 0] < 0.6 * rr.comm[0, 0]
    with pytest.raises(ValueError, match="placement"):
        Cluster(placement="hash")
    with pytest.raises(ValueError, match="nic_gbps"):
        Cluster(nic_gbps=0.0)


def test_a_workers_card_hands_an_idle_flows_share_to_the_flows_still_sending():
    # 1 MB on server 0, 3 MB on server 1, a card as fast as one link: both share it until the 1 MB is in
    # (16 ms at 0.5 Gbit/s), then the 3 MB tensor's last 2 MB get the whole card (16 ms more)
    g = OpGraph([1e6, 3e6], [1.0], [0, 1], [2, 2])
    cluster = Cluster(workers=1, parameter_servers=2, bandwidth_gbps=1.0, latency_us=0.0, nic_gbps=1.0)
    res = simulate(g, np.array([[[0, 1]]]), cluster)
    np.testing.assert_allclose(res.arrival[0, 0], [16e-3, 32e-3])
    uncapped = simulate(g, np.array([[[0, 1]]]), Cluster(workers=1, parameter_servers=2, latency_us=0.0))
    np.testing.assert_allclose(uncapped.arrival[0, 0], [8e-3, 24e-3])


@pytest.mark.parametrize("model", ["cnn", "resnet"])
def test_bundled_training_graphs_push_what_they_pull_and_inference_pushes_nothing(model):
    from mlsys_core.tictac import compare

    cluster = Cluster(workers=2, parameter_servers=2, placement="size_balanced")
    for mode in ("train", "infer"):
        g = compare.model_graph(model, mode)
        res = simulate(g, ordering.schedule(g, "tac", cluster.oracle(), 2, 2, 0), cluster)
        assert (res.pull_bytes == 2 * g.recv_bytes.sum()).all()
        np.testing.assert_array_equal(res.push_bytes, res.pull_bytes if mode == "train" else 0.0)
        assert res.push_arrival.shape[-1] == (g.n_recv if mode == "train" else 0)


def test_simulate_checks_its_graph_cluster_seed_and_orders():
    g = random_graph(3, 4, seed=0)
    order = np.array([[[0, 1, 2]]])
    with pytest.raises(TypeError, match="cluster must be a simulate.Cluster, got '1 Gbit/s'"):
        simulate(g, order, "1 Gbit/s")
    with pytest.raises(TypeError, match="graph must be a graph.OpGraph, got 'resnet'"):
        arrivals("resnet", order, Cluster(workers=1))
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        simulate(g, order, Cluster(workers=1), seed=-1)
    with pytest.raises(ValueError, match=r"orders must hold whole numbers; orders\[0, 0, 1\] is 1.5"):
        simulate(g, np.array([[[0.0, 1.5, 2.0]]]), Cluster(workers=1))
    with pytest.raises(ValueError, match=r"orders must hold values in \[0, 2\]; orders\[0, 0, 2\] is 7"):
        simulate(g, np.array([[[0, 1, 7]]]), Cluster(workers=1))
