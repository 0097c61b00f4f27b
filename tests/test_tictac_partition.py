"""ByteScheduler-style partitioning: slices reassemble, the partitioned graph keeps the program, the
credit window trades strict priority for parallel servers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_core.tictac import ordering, partition
from mlsys_core.tictac.graph import OpGraph, random_graph
from mlsys_core.tictac.simulate import Cluster, arrivals, simulate


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=0, max_size=3), st.integers(1, 50),
       st.sampled_from([np.float32, np.int8, np.float64]))
def test_partitions_reassemble_to_the_tensor(shape, size, dtype):
    x = (np.arange(int(np.prod(shape)), dtype=np.float64) * 1.5 - 7).astype(dtype).reshape(shape)
    parts = partition.split(x, size)
    assert all(p.size <= size for p in parts) and sum(p.size for p in parts) == x.size
    back = partition.reassemble(parts, x.shape, x.dtype)
    assert back.dtype == x.dtype and np.array_equal(back, x)
    assert back.tobytes() == x.tobytes()


def test_partitioned_graph_keeps_bytes_ops_and_dependencies():
    g = random_graph(6, 15, seed=4, max_bytes=4e3, gradients=True)
    pg = partition.partition(g, partition_params=300)
    assert pg.graph.n_compute == g.n_compute and pg.n_parts > g.n_recv
    np.testing.assert_allclose(np.bincount(pg.owner, weights=pg.graph.recv_bytes), g.recv_bytes)
    np.testing.assert_array_equal(np.bincount(pg.owner, weights=pg.params), np.ceil(g.recv_bytes / 4))
    assert (pg.params <= 300).all()
    np.testing.assert_array_equal(pg.graph.gradient_op, g.gradient_op[pg.owner])
    # an op needs every partition of exactly the tensors it needed
    def unpack(bits, n):
        return np.unpackbits(bits.view(np.uint8), axis=1, bitorder="little")[:, :n].astype(bool)
    whole = unpack(g.deps[g.n_recv:], g.n_recv)
    parts = unpack(pg.graph.deps[pg.n_parts:], pg.n_parts)
    np.testing.assert_array_equal(parts, whole[:, pg.owner])
    order = partition.bytescheduler_order(pg)
    assert (np.diff(pg.graph.first_use[order]) >= 0).all()
    with pytest.raises(ValueError, match="partition_params"):
        partition.partition(g, partition_params=0)


def test_credit_window_strict_when_small_parallel_when_large():
    g = OpGraph([8e6], [1e3], [0], [1])  # one very large tensor
    pg = partition.partition(g, partition_params=500_000)  # 4 partitions of 2 MB
    cl = Cluster(workers=1, parameter_servers=4, latency_us=0.0, bandwidth_gbps=8.0)
    order = partition.bytescheduler_order(pg)[None, None]
    strict = simulate(pg.graph, order, cl, credit_bytes=2e6).arrival[0, 0]
    np.testing.assert_allclose(np.sort(strict), [2e-3, 4e-3, 6e-3, 8e-3])  # one partition in flight
    wide = simulate(pg.graph, order, cl, credit_bytes=8e6).arrival[0, 0]
    np.testing.assert_allclose(wide, [2e-3] * 4)  # four servers at once
    whole = simulate(g, np.zeros((1, 1, 1), int), cl).iteration_time[0]
    assert simulate(pg.graph, order, cl, credit_bytes=8e6).iteration_time[0] < 0.3 * whole
    # with one server and an unlimited credit the window changes nothing
    one = Cluster(workers=2, parameter_servers=1)
    big = random_graph(8, 20, seed=1)
    orders = ordering.schedule(big, "tac", one.oracle(), 2)
    np.testing.assert_allclose(simulate(big, orders, one, credit_bytes=1e18).arrival, arrivals(big, orders, one))
    with pytest.raises(ValueError, match="credit_bytes models pulls only"):
        simulate(big, orders, Cluster(workers=2, nic_gbps=1.0), credit_bytes=1e6)


def test_partition_refuses_a_string_where_a_graph_belongs():
    with pytest.raises(TypeError, match="graph must be a graph.OpGraph, got 'resnet'"):
        partition.partition("resnet")
