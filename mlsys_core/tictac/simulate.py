"""A parameter-server iteration simulator: P servers send every parameter to W workers, who compute,
and in training push every gradient back.

Placement: each recv lives on the server its `Cluster.placement` picks (`placement.PLACEMENTS`:
round-robin `r % P`, TensorFlow's default, or size-balanced greedy). Links: every server link and
every worker's card is full duplex — pulls (server -> worker) and pushes (worker -> server) travel
in opposite directions and never slow each other. Each flow gets a fixed, equal share: a server's
link divided by its W workers, a worker's card (`nic_gbps`, if set) divided by its P servers, so a
flow runs at min(bandwidth / W, nic / P) and a worker's inbound (and outbound) rate never exceeds
its card. Shares are not redistributed while a flow is idle (a static model, like the time oracle).
One transfer takes latency + bytes / rate; each server sends a worker its recvs back to back in that
worker's order. A worker runs a compute op as soon as its inputs are ready — `parallel_ops` at a
time, earliest-ready first (or strictly in program order with `executor="in_order"`).

Training (a graph with `gradient_op`): when the op producing a gradient finishes, the worker pushes
it to the parameter's server (same bytes as the pull, first ready first sent on each uplink). The PS
is synchronous: a parameter's update is done when every worker's gradient has arrived (the update
itself takes no time), and the next iteration's pull of that parameter waits for it. An iteration
ends when the slowest worker's last transfer (pull, compute or push) does. Inference stays
pull-only. Pull-only arrival times are vectorised over iterations x workers in NumPy; the list
scheduling, and training's pull-compute-push loop, are numba kernels.
"""

from __future__ import annotations

import dataclasses

import numba
import numpy as np

from mlsys_core import validate
from mlsys_core.tictac.graph import OpGraph
from mlsys_core.tictac.ordering import TimeOracle
from mlsys_core.tictac.placement import PLACEMENTS, place

EXECUTORS = ("dynamic", "in_order")


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The simulated cluster. `bandwidth_gbps` is each server link's rate per direction, `nic_gbps`
    each worker card's (None: no cap); `placement` names a `placement.PLACEMENTS` entry; `jitter`
    is the sigma of log-normal noise on each transfer's time."""

    workers: int = 4
    parameter_servers: int = 1
    bandwidth_gbps: float = 1.0
    latency_us: float = 50.0
    gflops: float = 10.0
    op_overhead_us: float = 2.0
    parallel_ops: int = 1
    jitter: float = 0.0
    nic_gbps: float | None = None
    placement: str = "round_robin"

    def __post_init__(self):
        for name in ("workers", "parameter_servers", "parallel_ops"):
            validate.integer(name, getattr(self, name), low=1)
        validate.number("jitter", self.jitter, 0.0, 5.0, high_open=True)
        if self.nic_gbps is not None:
            validate.positive("nic_gbps", self.nic_gbps)
        validate.choice("placement", self.placement, PLACEMENTS)
        validate.positive("bandwidth_gbps", self.bandwidth_gbps)
        self.oracle()  # validates the rates and latencies

    @property
    def flow_gbps(self) -> float:
        """Rate of one server -> worker flow: min(bandwidth / W, nic / P)."""
        share = self.bandwidth_gbps / self.workers
        return share if self.nic_gbps is None else min(share, self.nic_gbps / self.parameter_servers)

    def oracle(self) -> TimeOracle:
        """The analytic time oracle of this cluster (TAC's default): its bandwidth, shared by the
        W workers, gives each flow `flow_gbps` (the card's cap folded in)."""
        return TimeOracle(self.flow_gbps * self.workers, self.latency_us, self.gflops, self.op_overhead_us)

    def recv_seconds(self, graph: OpGraph) -> np.ndarray:
        """(n_recv,) seconds of one transfer to (or from) one worker at the flow rate."""
        return self.oracle().recv_seconds(graph, share=self.workers)

    def servers(self, graph: OpGraph) -> np.ndarray:
        """(n_recv,) the server of each recv under this cluster's placement."""
        return place(graph.recv_bytes, self.parameter_servers, self.placement)


@dataclasses.dataclass(frozen=True)
class IterationResult:
    """Per iteration and worker: `arrival` (I, W, n_recv), op `start`/`finish` (I, W, n_compute),
    `makespan` (I, W); per iteration `iteration_time` (I,) = slowest worker and `straggler` (I,) =
    slowest - fastest. `comm` (I, W) last arrival, `comp` compute-only makespan; `lower`/`upper`
    (I, W) the bounds L = max(comm, comp), U = comm + comp; `efficiency` (I, W) = (U - makespan) / (U - L).
    Training also has `push_arrival` (I, W, n_recv), when each gradient reached its server (last
    axis empty without push), and `push_comm` (I, W), the busiest uplink's total push time, which
    joins the bounds: L = max(comm, comp, push_comm), U = comm + comp + push_comm. `pull_bytes`,
    `push_bytes` (I,) count the bytes the simulated transfers carried, over all workers."""

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
    push_arrival: np.ndarray
    push_comm: np.ndarray
    pull_bytes: np.ndarray
    push_bytes: np.ndarray

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


@numba.njit(cache=True)
def _transfers(seq, server, n_servers, ready, latency, data, card, free, done):
    """Send recvs `seq` (in that order) over one worker's P flows, one per server, sharing its card.

    Each server sends its recvs back to back, recv r no earlier than `ready[r]`; a transfer spends
    `latency[r]` and then `data[r]` seconds at the flow's full rate. With k flows moving data at once,
    each runs at min(1, card / k) of full rate (`card` = the card's rate in flow rates, inf: no cap),
    so shares move to the flows still sending. `free` (P,) when each flow is free, updated; `done[r]`
    the time recv r has fully arrived.
    """
    if card == np.inf:  # every flow at full rate: a max-plus scan per server
        for r in seq:
            p = server[r]
            t = max(free[p], ready[r]) + latency[r] + data[r]
            done[r] = t
            free[p] = t
        return
    count = np.zeros(n_servers + 1, dtype=np.int64)
    for r in seq:
        count[server[r] + 1] += 1
    qptr = np.cumsum(count)
    fill = qptr[:-1].copy()
    queue = np.empty(seq.size, dtype=np.int64)
    for r in seq:
        queue[fill[server[r]]] = r
        fill[server[r]] += 1
    head = qptr[:-1].copy()
    phase = np.full(n_servers, 3)  # 0 waiting to start, 1 latency, 2 data, 3 idle
    until = np.zeros(n_servers)  # phases 0, 1: when the phase ends
    left = np.zeros(n_servers)  # phase 2: full-rate seconds of data still to send
    now = np.inf
    for p in range(n_servers):
        if head[p] < qptr[p + 1]:
            phase[p], until[p] = 0, max(free[p], ready[queue[head[p]]])
            now = min(now, until[p])
    while True:
        moving = 0
        for p in range(n_servers):
            moving += phase[p] == 2
        rate = min(1.0, card / moving) if moving else 0.0
        nxt = np.inf
        for p in range(n_servers):
            if phase[p] == 0 or phase[p] == 1:
                nxt = min(nxt, until[p])
            elif phase[p] == 2:
                nxt = min(nxt, now + left[p] / rate)
        if nxt == np.inf:
            break
        for p in range(n_servers):
            if phase[p] == 2:
                if now + left[p] / rate <= nxt:
                    left[p] = 0.0
                else:
                    left[p] -= rate * (nxt - now)
        now = nxt
        for p in range(n_servers):
            while phase[p] != 3:
                r = queue[head[p]]
                if phase[p] == 0 and until[p] <= now:
                    phase[p], until[p] = 1, now + latency[r]
                elif phase[p] == 1 and until[p] <= now:
                    phase[p], left[p] = 2, data[r]
                elif phase[p] == 2 and left[p] <= 0.0:
                    done[r] = now
                    free[p] = now
                    head[p] += 1
                    if head[p] < qptr[p + 1]:
                        phase[p], until[p] = 0, max(now, ready[queue[head[p]]])
                    else:
                        phase[p] = 3
                else:
                    break


@numba.njit(cache=True)
def _run_iterations(lat_pull, data_pull, lat_push, data_push, orders, server, n_servers, card, push, grad_op,
                    recv_bytes, op_time, n_recv, indeg, ptr, idx, topo, pptr, pidx, slots, in_order, pipelined,
                    arrival, push_arrival, push_comm, start, finish, pull_bytes, push_bytes):
    """Pull, compute and (with `push`) push, iteration by iteration (see the module docstring).

    `down`/`up` (W, P): when each worker's downlink / uplink flow to each server frees up;
    `ready` (n_recv,): when each parameter's update of the previous iteration is done. Without
    `pipelined` every iteration restarts at a barrier (time 0), by which every update is done.
    `push_comm[i, w]`: how long the worker's pushes would take if every gradient were ready at once.
    """
    n_iter, n_workers, _ = orders.shape
    down = np.zeros((n_workers, n_servers))
    up = np.zeros((n_workers, n_servers))
    ready = np.zeros(n_recv)
    zeros = np.zeros(n_recv)
    free0 = np.zeros(n_workers)
    grad_ready = np.empty(n_recv)
    scratch = np.empty(n_recv)
    for i in range(n_iter):
        if not pipelined:
            down[:] = 0.0
            up[:] = 0.0
            ready[:] = 0.0
            free0[:] = 0.0
        update = np.zeros(n_recv)
        for w in range(n_workers):
            _transfers(orders[i, w], server, n_servers, ready, lat_pull[i, w], data_pull[i, w], card, down[w],
                       arrival[i, w])
            for r in range(n_recv):
                pull_bytes[i] += recv_bytes[r]
            if in_order:
                _run_in_order(arrival[i, w], op_time, n_recv, topo, pptr, pidx, slots, free0[w],
                              start[i, w], finish[i, w])
            else:
                _run_worker(arrival[i, w], op_time, n_recv, indeg, ptr, idx, slots, free0[w],
                            start[i, w], finish[i, w])
            if push:
                for r in range(n_recv):
                    g = grad_op[r]
                    grad_ready[r] = finish[i, w, g] if g >= 0 else free0[w]
                seq = np.argsort(grad_ready, kind="mergesort")
                _transfers(seq, server, n_servers, grad_ready, lat_push[i, w], data_push[i, w], card, up[w],
                           push_arrival[i, w])
                _transfers(seq, server, n_servers, zeros, lat_push[i, w], data_push[i, w], card,
                           np.zeros(n_servers), scratch)
                push_comm[i, w] = scratch.max()
                for r in range(n_recv):
                    push_bytes[i] += recv_bytes[r]
                    update[r] = max(update[r], push_arrival[i, w, r])
            last = free0[w]
            for j in range(finish.shape[2]):
                last = max(last, finish[i, w, j])
            free0[w] = last
        ready[:] = update


@numba.njit(cache=True)
def _credit_transfers(orders, server, n_servers, latency, data, sizes, credit, arrival):
    """Pulls under a credit window (ByteScheduler): each worker takes recvs strictly in its order; the
    next starts when its server's flow is free and the bytes in flight plus its own fit in `credit`
    (or nothing is in flight). A transfer spends latency + data seconds at the flow rate."""
    n_iter, n_workers, n = orders.shape
    fin = np.empty(n)
    size = np.empty(n)
    for i in range(n_iter):
        for w in range(n_workers):
            free = np.zeros(n_servers)
            count = 0  # transfers started so far; those with fin > start are still in flight
            prev = 0.0
            for k in range(n):
                r = orders[i, w, k]
                start = max(free[server[r]], prev)
                while True:
                    inflight, soonest = 0.0, np.inf
                    for j in range(count):
                        if fin[j] > start:
                            inflight += size[j]
                            soonest = min(soonest, fin[j])
                    if inflight == 0.0 or inflight + sizes[r] <= credit:
                        break
                    start = soonest
                end = start + latency[i, w, r] + data[i, w, r]
                arrival[i, w, r] = end
                free[server[r]] = end
                fin[count], size[count] = end, sizes[r]
                count += 1
                prev = start


def _check_inputs(graph: OpGraph, cluster: Cluster, seed: int) -> None:
    validate.instance("graph", graph, OpGraph, "a graph.OpGraph")
    validate.instance("cluster", cluster, Cluster, "a simulate.Cluster")
    validate.seed("seed", seed)


def _check_orders(graph: OpGraph, orders, cluster: Cluster) -> np.ndarray:
    orders = validate.integers("orders", orders, 0, graph.n_recv - 1, ndim=3)
    if orders.shape[1] != cluster.workers or orders.shape[2] != graph.n_recv:
        raise ValueError(f"orders must have shape (iterations, {cluster.workers}, {graph.n_recv}), got {orders.shape}")
    if not (np.sort(orders, axis=-1) == np.arange(graph.n_recv)).all():
        raise ValueError("each order must be a permutation of the recv ids")
    return orders


def transfer_seconds(graph: OpGraph, cluster: Cluster, shape: tuple, seed: int = 0, draws: int = 1) -> list:
    """`draws` arrays of `shape` (I, W, n_recv): seconds of each recv's transfer per iteration and
    worker, times log-normal noise of sigma `cluster.jitter` (the first draw: pulls, the second: pushes)."""
    _check_inputs(graph, cluster, seed)
    validate.integer("draws", draws, 1)
    seconds = np.broadcast_to(cluster.recv_seconds(graph), shape)
    if cluster.jitter <= 0:
        return [seconds] * draws
    rng = np.random.default_rng(seed)
    return [seconds * rng.lognormal(0.0, cluster.jitter, shape) for _ in range(draws)]


def _latency_and_data(graph: OpGraph, cluster: Cluster, shape: tuple, seed: int, draws: int) -> list:
    """Per draw, (latency, data) seconds (I, W, n_recv) of each transfer at the uncapped flow rate
    bandwidth / W, both times the same noise factor as `transfer_seconds` draws."""
    latency = np.full(graph.n_recv, cluster.latency_us * 1e-6)
    data = graph.recv_bytes * 8.0 * cluster.workers / (cluster.bandwidth_gbps * 1e9)
    noise = [np.ones(shape)] * draws
    if cluster.jitter > 0:
        rng = np.random.default_rng(seed)
        noise = [rng.lognormal(0.0, cluster.jitter, shape) for _ in range(draws)]
    return [(np.ascontiguousarray(latency * z), np.ascontiguousarray(data * z)) for z in noise]


def arrivals(graph: OpGraph, orders: np.ndarray, cluster: Cluster, seed: int = 0,
             pipelined: bool = False) -> np.ndarray:
    """Pull-only arrival time (I, W, n_recv) of every recv at every worker, for orders (I, W, n_recv).

    Without pipelining every iteration's transfers start at its barrier (time 0 of the iteration);
    with `pipelined`, each server streams iteration i+1 right after iteration i (absolute times).
    """
    _check_inputs(graph, cluster, seed)
    validate.boolean("pipelined", pipelined)
    orders = _check_orders(graph, orders, cluster)
    (seconds,) = transfer_seconds(graph, cluster, orders.shape, seed)
    in_order_time = np.take_along_axis(seconds, orders, axis=-1)
    server = cluster.servers(graph)[orders]
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
             executor: str = "dynamic", pipelined: bool = False, push: bool | None = None,
             credit_bytes: float | None = None) -> IterationResult:
    """Simulate `orders` (I, W, n_recv) on `cluster`; see the module docstring for the model.

    With `pipelined`, transfers of the next iteration stream while this one computes (the survey's
    alternative); times are then per-iteration differences of absolute finish times. `push`
    (default: whether the graph has gradients) sends each gradient back to its server. With
    `credit_bytes` (ByteScheduler's credit window, pulls only, no card cap, no pipelining) a worker's
    transfers start strictly in its order and only while the bytes in flight, over all servers, fit
    in the credit: a small credit keeps the priority strict, a large one keeps every server busy.
    """
    _check_inputs(graph, cluster, seed)
    validate.choice("executor", executor, EXECUTORS)
    validate.boolean("pipelined", pipelined)
    push = graph.has_gradients if push is None else validate.boolean("push", push)
    if push and not graph.has_gradients:
        raise ValueError(f"push=True needs a training graph with gradient_op, got {graph.name!r} without one")
    if credit_bytes is not None:
        validate.positive("credit_bytes", credit_bytes)
        if push or pipelined or cluster.nic_gbps is not None:
            raise ValueError("credit_bytes models pulls only: needs push=False, pipelined=False and nic_gbps=None, "
                             f"got push={push}, pipelined={pipelined}, nic_gbps={cluster.nic_gbps}")
    op_time = cluster.oracle().compute_seconds(graph)
    ptr, idx = graph.succs
    indeg = np.bincount(graph.dst, minlength=graph.n_nodes).astype(np.int64)
    in_order = executor == "in_order"
    run = (op_time, graph.n_recv, indeg, ptr, idx, graph.topo, *graph.preds, cluster.parallel_ops, in_order)
    if push or cluster.nic_gbps is not None:
        orders = np.ascontiguousarray(_check_orders(graph, orders, cluster), dtype=np.int64)
        (lat_pull, data_pull), (lat_push, data_push) = _latency_and_data(graph, cluster, orders.shape, seed, 2)
        card = np.inf if cluster.nic_gbps is None else cluster.nic_gbps * cluster.workers / cluster.bandwidth_gbps
        shape = orders.shape[:2] + (graph.n_compute,)
        start, finish = np.zeros(shape), np.zeros(shape)
        arrival = np.zeros(orders.shape)
        push_arrival = np.zeros(orders.shape if push else orders.shape[:2] + (0,))
        push_comm = np.zeros(orders.shape[:2])
        pull_bytes, push_bytes = np.zeros(orders.shape[0]), np.zeros(orders.shape[0])
        _run_iterations(lat_pull, data_pull, lat_push, data_push, orders, cluster.servers(graph),
                        cluster.parameter_servers, card, push, graph.gradient_op, graph.recv_bytes, *run, pipelined,
                        arrival, push_arrival, push_comm, start, finish, pull_bytes, push_bytes)
        push_end = push_arrival.max(axis=-1, initial=0.0)
    else:
        if credit_bytes is None:
            arrival = arrivals(graph, orders, cluster, seed, pipelined)
        else:
            orders = np.ascontiguousarray(_check_orders(graph, orders, cluster), dtype=np.int64)
            ((lat, data),) = _latency_and_data(graph, cluster, orders.shape, seed, 1)
            arrival = np.zeros(orders.shape)
            _credit_transfers(orders, cluster.servers(graph), cluster.parameter_servers, lat, data,
                              graph.recv_bytes, float(credit_bytes), arrival)
        shape = arrival.shape[:2] + (graph.n_compute,)
        start, finish = np.zeros(shape), np.zeros(shape)
        _run_all(arrival, *run, pipelined, start, finish)
        push_arrival = np.zeros(arrival.shape[:2] + (0,))
        push_comm = push_end = np.zeros(arrival.shape[:2])
        pull_bytes = graph.recv_bytes[np.asarray(orders)].sum(axis=(1, 2))
        push_bytes = np.zeros(arrival.shape[0])
    end = np.maximum(np.maximum(finish.max(axis=-1, initial=0.0), arrival.max(axis=-1)), push_end)
    if pipelined:
        makespan = np.diff(end, axis=0, prepend=0.0)
        comm = np.diff(arrival.max(axis=-1), axis=0, prepend=0.0)
    else:
        makespan, comm = end, arrival.max(axis=-1)
    solo = np.zeros((1, 1, graph.n_recv))
    s0, f0 = np.zeros((1, 1, graph.n_compute)), np.zeros((1, 1, graph.n_compute))
    _run_all(solo, *run, False, s0, f0)
    comp = float(f0.max(initial=0.0))
    lower, upper = np.maximum(np.maximum(comm, comp), push_comm), comm + comp + push_comm
    gap = upper - lower
    efficiency = np.clip(np.where(gap > 0, (upper - makespan) / np.where(gap > 0, gap, 1.0), 1.0), 0.0, 1.0)
    iteration_time = makespan.max(axis=1)
    return IterationResult(arrival, start, finish, makespan, iteration_time, iteration_time - makespan.min(axis=1),
                     comm, comp, lower, upper, efficiency, push_arrival, push_comm, pull_bytes, push_bytes)
