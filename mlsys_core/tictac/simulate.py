"""A parameter-server iteration simulator: P servers send every parameter to W workers, who compute.

Each recv lives on server `r % P`. A server's link is shared equally by the W workers, so one
transfer to one worker takes latency + bytes / (bandwidth / W); each server sends a worker its
recvs back to back in that worker's order. A worker runs a compute op as soon as its inputs are
ready — `parallel_ops` at a time, earliest-ready first (or strictly in program order with
`executor="in_order"`). An iteration ends when the slowest worker finishes (synchronous training).
Arrival times are vectorised over iterations x workers in NumPy; the per-worker list scheduling is a
numba kernel.
"""

from __future__ import annotations

import dataclasses

import numba
import numpy as np

from mlsys_core import validate
from mlsys_core.tictac.graph import OpGraph
from mlsys_core.tictac.ordering import TimeOracle

EXECUTORS = ("dynamic", "in_order")


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The simulated cluster. `jitter` is the sigma of log-normal noise on each transfer's time."""

    workers: int = 4
    parameter_servers: int = 1
    bandwidth_gbps: float = 1.0
    latency_us: float = 50.0
    gflops: float = 10.0
    op_overhead_us: float = 2.0
    parallel_ops: int = 1
    jitter: float = 0.0

    def __post_init__(self):
        for name in ("workers", "parameter_servers", "parallel_ops"):
            validate.integer(name, getattr(self, name), low=1)
        validate.number("jitter", self.jitter, 0.0, 5.0, high_open=True)
        self.oracle()  # validates bandwidth, rates and latencies

    def oracle(self) -> TimeOracle:
        """The analytic time oracle of this cluster (TAC's default)."""
        return TimeOracle(self.bandwidth_gbps, self.latency_us, self.gflops, self.op_overhead_us)

    def recv_seconds(self, graph: OpGraph) -> np.ndarray:
        """(n_recv,) seconds of one transfer to one worker, the link shared by all workers."""
        return self.oracle().recv_seconds(graph, share=self.workers)


@dataclasses.dataclass(frozen=True)
class SimResult:
    """Per iteration and worker: `arrival` (I, W, n_recv), op `start`/`finish` (I, W, n_compute),
    `makespan` (I, W); per iteration `iteration_time` (I,) = slowest worker and `straggler` (I,) =
    slowest - fastest. `comm` (I, W) last arrival, `comp` compute-only makespan; `lower`/`upper`
    (I, W) the bounds L = max(comm, comp), U = comm + comp; `efficiency` (I, W) = (U - makespan) / (U - L)."""

    arrival: np.ndarray
    start: np.ndarray
    finish: np.ndarray
    makespan: np.ndarray
    iteration_time: np.ndarray
    straggler: np.ndarray
    comm: np.ndarray
    comp: float
    lower: np.ndarray
    upper: np.ndarray
    efficiency: np.ndarray

    @property
    def headroom(self) -> np.ndarray:
        """Speedup headroom S = (U - L) / L per iteration and worker: what perfect overlap could gain."""
        return (self.upper - self.lower) / self.lower

    @property
    def throughput(self) -> float:
        """Iterations per second over the run."""
        return float(self.iteration_time.size / self.iteration_time.sum())


@numba.njit(cache=True, inline="always")
def _before(key_a, id_a, key_b, id_b):
    """Heap order: earlier ready time first, then smaller node id."""
    return key_a < key_b or (key_a == key_b and id_a < id_b)


@numba.njit(cache=True)
def _heap_push(keys, ids, size, key, node):
    i = size
    keys[i] = key
    ids[i] = node
    while i > 0:
        parent = (i - 1) // 2
        if _before(keys[parent], ids[parent], keys[i], ids[i]):
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        ids[parent], ids[i] = ids[i], ids[parent]
        i = parent
    return size + 1


@numba.njit(cache=True)
def _heap_pop(keys, ids, size):
    key, node = keys[0], ids[0]
    size -= 1
    keys[0], ids[0] = keys[size], ids[size]
    i = 0
    while True:
        left, right, small = 2 * i + 1, 2 * i + 2, i
        if left < size and _before(keys[left], ids[left], keys[small], ids[small]):
            small = left
        if right < size and _before(keys[right], ids[right], keys[small], ids[small]):
            small = right
        if small == i:
            break
        keys[small], keys[i] = keys[i], keys[small]
        ids[small], ids[i] = ids[i], ids[small]
        i = small
    return key, node, size


@numba.njit(cache=True, inline="always")
def _free_slot(free):
    """The compute slot that frees up first (lowest index on ties)."""
    m = 0
    for j in range(1, free.size):
        if free[j] < free[m]:
            m = j
    return m


@numba.njit(cache=True)
def _run_worker(arrival, op_time, n_recv, indeg, ptr, idx, slots, free0, start, finish):
    """List-schedule one worker's compute ops, earliest-ready first, given recv arrival times."""
    n = indeg.size
    remaining = indeg.copy()
    ready = np.zeros(n)
    free = np.full(slots, free0)
    keys = np.empty(n)
    ids = np.empty(n, dtype=np.int64)
    size = 0
    for r in range(n_recv):
        for k in range(ptr[r], ptr[r + 1]):
            s = idx[k]
            ready[s] = max(ready[s], arrival[r])
            remaining[s] -= 1
            if remaining[s] == 0:
                size = _heap_push(keys, ids, size, ready[s], s)
    while size > 0:
        key, v, size = _heap_pop(keys, ids, size)
        m = _free_slot(free)
        t0 = max(free[m], key)
        t1 = t0 + op_time[v - n_recv]
        free[m] = t1
        start[v - n_recv] = t0
        finish[v - n_recv] = t1
        for k in range(ptr[v], ptr[v + 1]):
            s = idx[k]
            ready[s] = max(ready[s], t1)
            remaining[s] -= 1
            if remaining[s] == 0:
                size = _heap_push(keys, ids, size, ready[s], s)


@numba.njit(cache=True)
def _run_in_order(arrival, op_time, n_recv, topo, pptr, pidx, slots, free0, start, finish):
    """Run compute ops strictly in program (topological) order: no op overtakes a blocked one."""
    free = np.full(slots, free0)
    last_start = free0
    for v in topo:
        if v < n_recv:
            continue
        ready = 0.0
        for k in range(pptr[v], pptr[v + 1]):
            p = pidx[k]
            ready = max(ready, arrival[p] if p < n_recv else finish[p - n_recv])
        m = _free_slot(free)
        t0 = max(free[m], ready, last_start)
        start[v - n_recv] = t0
        finish[v - n_recv] = t0 + op_time[v - n_recv]
        free[m] = t0 + op_time[v - n_recv]
        last_start = t0


@numba.njit(cache=True)
def _run_all(arrival, op_time, n_recv, indeg, ptr, idx, topo, pptr, pidx, slots, in_order, pipelined,
             start, finish):
    n_iter, n_workers, _ = arrival.shape
    for w in range(n_workers):
        free0 = 0.0
        for i in range(n_iter):
            if in_order:
                _run_in_order(arrival[i, w], op_time, n_recv, topo, pptr, pidx, slots, free0,
                              start[i, w], finish[i, w])
            else:
                _run_worker(arrival[i, w], op_time, n_recv, indeg, ptr, idx, slots, free0,
                            start[i, w], finish[i, w])
            if pipelined:
                free0 = finish[i, w].max()


def arrivals(graph: OpGraph, orders: np.ndarray, cluster: Cluster, seed: int = 0,
             pipelined: bool = False) -> np.ndarray:
    """Arrival time (I, W, n_recv) of every recv at every worker, for orders (I, W, n_recv).

    Without pipelining every iteration's transfers start at its barrier (time 0 of the iteration);
    with `pipelined`, each server streams iteration i+1 right after iteration i (absolute times).
    """
    orders = np.asarray(orders)
    if orders.ndim != 3 or orders.shape[1] != cluster.workers or orders.shape[2] != graph.n_recv:
        raise ValueError(f"orders must have shape (iterations, {cluster.workers}, {graph.n_recv}), got {orders.shape}")
    if not (np.sort(orders, axis=-1) == np.arange(graph.n_recv)).all():
        raise ValueError("each order must be a permutation of the recv ids")
    seconds = np.broadcast_to(cluster.recv_seconds(graph), orders.shape)
    if cluster.jitter > 0:
        noise = np.random.default_rng(seed).lognormal(0.0, cluster.jitter, orders.shape)
        seconds = seconds * noise
    in_order_time = np.take_along_axis(seconds, orders, axis=-1)
    server = orders % cluster.parameter_servers
    done = np.zeros(orders.shape)
    for p in range(cluster.parameter_servers):
        mine = server == p
        part = np.where(mine, in_order_time, 0.0)
        if pipelined:
            flat = np.cumsum(np.moveaxis(part, 0, 1).reshape(orders.shape[1], -1), axis=-1)
            cum = np.moveaxis(flat.reshape(orders.shape[1], orders.shape[0], -1), 0, 1)
        else:
            cum = np.cumsum(part, axis=-1)
        done = np.where(mine, cum, done)
    out = np.empty(orders.shape)
    np.put_along_axis(out, orders, done, axis=-1)
    return out


def simulate(graph: OpGraph, orders: np.ndarray, cluster: Cluster, seed: int = 0,
             executor: str = "dynamic", pipelined: bool = False) -> SimResult:
    """Simulate `orders` (I, W, n_recv) on `cluster`; see the module docstring for the model.

    With `pipelined`, transfers of the next iteration stream while this one computes (the survey's
    alternative); times are then per-iteration differences of absolute finish times.
    """
    validate.choice("executor", executor, EXECUTORS)
    validate.boolean("pipelined", pipelined)
    arrival = arrivals(graph, orders, cluster, seed, pipelined)
    op_time = cluster.oracle().compute_seconds(graph)
    ptr, idx = graph.succs
    indeg = np.bincount(graph.dst, minlength=graph.n_nodes).astype(np.int64)
    shape = arrival.shape[:2] + (graph.n_compute,)
    start, finish = np.zeros(shape), np.zeros(shape)
    in_order = executor == "in_order"
    run = (op_time, graph.n_recv, indeg, ptr, idx, graph.topo, *graph.preds, cluster.parallel_ops, in_order)
    _run_all(arrival, *run, pipelined, start, finish)
    end = np.maximum(finish.max(axis=-1), arrival.max(axis=-1))
    if pipelined:
        makespan = np.diff(end, axis=0, prepend=0.0)
        comm = np.diff(arrival.max(axis=-1), axis=0, prepend=0.0)
    else:
        makespan, comm = end, arrival.max(axis=-1)
    solo = np.zeros((1, 1, graph.n_recv))
    s0, f0 = np.zeros((1, 1, graph.n_compute)), np.zeros((1, 1, graph.n_compute))
    _run_all(solo, *run, False, s0, f0)
    comp = float(f0.max())
    lower, upper = np.maximum(comm, comp), comm + comp
    gap = upper - lower
    efficiency = np.clip(np.where(gap > 0, (upper - makespan) / np.where(gap > 0, gap, 1.0), 1.0), 0.0, 1.0)
    iteration_time = makespan.max(axis=1)
    return SimResult(arrival, start, finish, makespan, iteration_time, iteration_time - makespan.min(axis=1),
                     comm, comp, lower, upper, efficiency)
