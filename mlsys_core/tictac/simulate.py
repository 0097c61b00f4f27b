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
ends when the slowest worker's last transfer (pull, compute or push) does. Compute noise
(`Cluster.compute_noise`) stretches every op by a log-normal factor, one per (iteration, worker, op),
drawn from the seed alone: two schedulers simulated with the same seed and iterations see the same
draws, so only their orders differ (TAC still plans with the noise-free oracle). Inference stays
pull-only. Pull-only arrival times are vectorised over iterations x workers in NumPy; the list
scheduling (`executor`), the links (`links`) and training's pull-compute-push loop are numba kernels.
`simulate` is a short driver: check the arguments, run the pulls (and pushes), then derive the bounds.
"""

from __future__ import annotations

import dataclasses

import numba
import numpy as np
import numpy.typing as npt

from mlsys_core import validate
from mlsys_core.tictac.executor import run_all, run_one
from mlsys_core.tictac.graph import OpGraph
from mlsys_core.tictac.links import credit_transfers, transfers
from mlsys_core.tictac.ordering import TimeOracle
from mlsys_core.tictac.placement import PLACEMENTS, place

EXECUTORS = ("dynamic", "in_order")


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The simulated cluster. `bandwidth_gbps` is each server link's rate per direction, `nic_gbps`
    each worker card's (None: no cap); `placement` names a `placement.PLACEMENTS` entry; `jitter`
    is the sigma of log-normal noise on each transfer's time, `compute_noise` on each compute op's."""

    workers: int = 4  # workers sharing each server link
    parameter_servers: int = 1  # servers P
    bandwidth_gbps: float = 1.0  # Gbit/s, each server link per direction
    latency_us: float = 50.0  # us per transfer
    gflops: float = 10.0  # GFLOP/s, each worker's compute rate
    op_overhead_us: float = 2.0  # us per compute op
    parallel_ops: int = 1  # ops a worker runs at once
    jitter: float = 0.0  # sigma of log-normal noise on each transfer's time
    compute_noise: float = 0.0  # sigma of log-normal noise on each compute op's time
    nic_gbps: float | None = None  # Gbit/s, each worker card's cap (None: no cap)
    placement: str = "round_robin"  # a `placement.PLACEMENTS` name

    def __post_init__(self) -> None:
        for name in ("workers", "parameter_servers", "parallel_ops"):
            validate.integer(name, getattr(self, name), low=1)
        validate.number("jitter", self.jitter, 0.0, 5.0, high_open=True)
        validate.number("compute_noise", self.compute_noise, 0.0, 5.0, high_open=True)
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
    slowest - fastest. `comm` (I, W) last arrival, `comp` the noise-free compute-only makespan; `lower`/`upper`
    (I, W) the bounds L = max(comm, comp), U = comm + comp (with compute noise, each worker-iteration's own
    compute-only makespan in place of `comp`); `efficiency` (I, W) = (U - makespan) / (U - L).
    Training also has `push_arrival` (I, W, n_recv), when each gradient reached its server (last
    axis empty without push), and `push_comm` (I, W), the busiest uplink's total push time, which
    joins the bounds: L = max(comm, comp, push_comm), U = comm + comp + push_comm. `pull_bytes`,
    `push_bytes` (I,) count the bytes the simulated transfers carried, over all workers."""

    arrival: np.ndarray  # (I, W, n_recv) s, when each recv fully arrived
    start: np.ndarray  # (I, W, n_compute) s, when each op started
    finish: np.ndarray  # (I, W, n_compute) s, when each op finished
    makespan: np.ndarray  # (I, W) s, each worker's iteration
    iteration_time: np.ndarray  # (I,) s, the slowest worker's makespan
    straggler: np.ndarray  # (I,) s, slowest - fastest worker
    comm: np.ndarray  # (I, W) s, last arrival
    comp: float  # s, compute-only makespan without compute noise
    lower: np.ndarray  # (I, W) s, bound L
    upper: np.ndarray  # (I, W) s, bound U
    efficiency: np.ndarray  # (I, W) scheduling efficiency E in [0, 1]
    push_arrival: np.ndarray  # (I, W, n_recv or 0) s, when each gradient reached its server
    push_comm: np.ndarray  # (I, W) s, the busiest uplink's total push time
    pull_bytes: np.ndarray  # (I,) bytes pulled over all workers
    push_bytes: np.ndarray  # (I,) bytes pushed over all workers

    @property
    def headroom(self) -> np.ndarray:
        """Speedup headroom S = (U - L) / L per iteration and worker: what perfect overlap could gain."""
        return (self.upper - self.lower) / self.lower

    @property
    def throughput(self) -> float:
        """Iterations per second over the run."""
        return float(self.iteration_time.size / self.iteration_time.sum())


@numba.njit(cache=True)
def _run_iterations(lat_pull: np.ndarray, data_pull: np.ndarray, lat_push: np.ndarray, data_push: np.ndarray,
                    orders: np.ndarray, server: np.ndarray, n_servers: int, card: float, push: bool,
                    grad_op: np.ndarray, recv_bytes: np.ndarray, op_time: np.ndarray, n_recv: int,
                    indeg: np.ndarray, ptr: np.ndarray, idx: np.ndarray, topo: np.ndarray, pptr: np.ndarray,
                    pidx: np.ndarray, slots: int, in_order: bool, pipelined: bool, arrival: np.ndarray,
                    push_arrival: np.ndarray, push_comm: np.ndarray, start: np.ndarray, finish: np.ndarray,
                    pull_bytes: np.ndarray, push_bytes: np.ndarray) -> None:
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
            transfers(orders[i, w], server, n_servers, ready, lat_pull[i, w], data_pull[i, w], card, down[w],
                      arrival[i, w])
            for r in range(n_recv):
                pull_bytes[i] += recv_bytes[r]
            run_one(arrival[i, w], op_time[i, w], n_recv, indeg, ptr, idx, topo, pptr, pidx, slots, in_order,
                    free0[w], start[i, w], finish[i, w])
            if push:
                for r in range(n_recv):
                    g = grad_op[r]
                    grad_ready[r] = finish[i, w, g] if g >= 0 else free0[w]
                seq = np.argsort(grad_ready, kind="mergesort")
                transfers(seq, server, n_servers, grad_ready, lat_push[i, w], data_push[i, w], card, up[w],
                          push_arrival[i, w])
                transfers(seq, server, n_servers, zeros, lat_push[i, w], data_push[i, w], card,
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


def _check_inputs(graph: OpGraph, cluster: Cluster, seed: int) -> None:
    validate.instance("graph", graph, OpGraph, "a graph.OpGraph")
    validate.instance("cluster", cluster, Cluster, "a simulate.Cluster")
    validate.seed("seed", seed)


def _check_orders(graph: OpGraph, orders: npt.ArrayLike, cluster: Cluster) -> np.ndarray:
    orders = validate.integers("orders", orders, 0, graph.n_recv - 1, ndim=3)
    if orders.shape[1] != cluster.workers or orders.shape[2] != graph.n_recv:
        raise ValueError(f"orders must have shape (iterations, {cluster.workers}, {graph.n_recv}), got {orders.shape}")
    if not (np.sort(orders, axis=-1) == np.arange(graph.n_recv)).all():
        raise ValueError("each order must be a permutation of the recv ids")
    return orders


def transfer_seconds(graph: OpGraph, cluster: Cluster, shape: tuple, seed: int = 0, draws: int = 1) -> list:
    """`draws` arrays of `shape` (I, W, n_recv): seconds of each recv's transfer per iteration and
    worker, times log-normal noise of sigma `cluster.jitter` (the first draw: pulls, the second: pushes).

    Args:
        graph: the op DAG.
        cluster: the simulated cluster.
        shape: (iterations, workers, n_recv).
        seed: seeds the noise (int >= 0).
        draws: independent draws (>= 1).
    """
    _check_inputs(graph, cluster, seed)
    validate.integer("draws", draws, 1)
    seconds = np.broadcast_to(cluster.recv_seconds(graph), shape)
    if cluster.jitter <= 0:
        return [seconds] * draws
    rng = np.random.default_rng(seed)
    return [seconds * rng.lognormal(0.0, cluster.jitter, shape) for _ in range(draws)]


def op_seconds(graph: OpGraph, cluster: Cluster, shape: tuple, seed: int = 0) -> np.ndarray:
    """(I, W, n_compute) seconds of every compute op per iteration and worker: the oracle's time times
    log-normal noise of sigma `cluster.compute_noise`, one factor per (iteration, worker, op), drawn from
    `seed` on a stream of its own (the transfer noise's draws do not move it).

    Args:
        graph: the op DAG.
        cluster: the simulated cluster.
        shape: (iterations, workers).
        seed: seeds the noise (int >= 0).
    """
    _check_inputs(graph, cluster, seed)
    shape = tuple(validate.integer("shape", n, 1) for n in shape) + (graph.n_compute,)
    seconds = cluster.oracle().compute_seconds(graph)
    if cluster.compute_noise <= 0:
        return np.ascontiguousarray(np.broadcast_to(seconds, shape))
    return seconds * np.random.default_rng([1, seed]).lognormal(0.0, cluster.compute_noise, shape)


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

    Args:
        graph: the op DAG.
        orders: (iterations, workers, n_recv) each worker's transfer order per iteration.
        cluster: the simulated cluster.
        seed: seeds the transfer-time noise (int >= 0).
        pipelined: stream iterations back to back.
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


@dataclasses.dataclass(frozen=True)
class _Timing:
    """What one way of running the transfers produced, before the bounds: `arrival` (I, W, n_recv), op
    `start`/`finish` (I, W, n_compute), `push_arrival` (I, W, n_recv or 0), `push_comm` and `push_end`
    (I, W), `pull_bytes` and `push_bytes` (I,)."""

    arrival: np.ndarray
    start: np.ndarray
    finish: np.ndarray
    push_arrival: np.ndarray
    push_comm: np.ndarray
    push_end: np.ndarray
    pull_bytes: np.ndarray
    push_bytes: np.ndarray


def _check_mode(graph: OpGraph, cluster: Cluster, executor_name: str, pipelined: bool, push: bool | None,
                credit_bytes: float | None) -> bool:
    """Check the simulation's switches against each other; return whether gradients are pushed."""
    validate.choice("executor", executor_name, EXECUTORS)
    validate.boolean("pipelined", pipelined)
    push = graph.has_gradients if push is None else validate.boolean("push", push)
    if push and not graph.has_gradients:
        raise ValueError(f"push=True needs a training graph with gradient_op, got {graph.name!r} without one")
    if credit_bytes is not None:
        validate.positive("credit_bytes", credit_bytes)
        if push or pipelined or cluster.nic_gbps is not None:
            raise ValueError("credit_bytes models pulls only: needs push=False, pipelined=False and nic_gbps=None, "
                             f"got push={push}, pipelined={pipelined}, nic_gbps={cluster.nic_gbps}")
    return push


# The executor kernels' arguments, typed so that the kernels' calls with `*run` check.
_ExecutorArgs = tuple[
    np.ndarray, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, bool
]


def _executor_args(graph: OpGraph, cluster: Cluster, executor_name: str, op_time: np.ndarray) -> _ExecutorArgs:
    """The executor kernels' arguments: (op_time (I, W, n_compute), n_recv, indeg, ptr, idx, topo, pptr, pidx,
    slots, in_order)."""
    ptr, idx = graph.succs
    indeg = np.bincount(graph.dst, minlength=graph.n_nodes).astype(np.int64)
    return (op_time, graph.n_recv, indeg, ptr, idx,
            graph.topo,  # type: ignore[attr-defined]  # set in OpGraph.__post_init__, not a declared field
            *graph.preds, cluster.parallel_ops, executor_name == "in_order")


def _coupled(graph: OpGraph, orders: np.ndarray, cluster: Cluster, seed: int, push: bool, pipelined: bool,
             run: _ExecutorArgs) -> _Timing:
    """Pulls, compute and pushes iteration by iteration (a card cap or pushes couple them)."""
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
    return _Timing(arrival, start, finish, push_arrival, push_comm, push_arrival.max(axis=-1, initial=0.0),
                   pull_bytes, push_bytes)


def _pull_only(graph: OpGraph, orders: np.ndarray, cluster: Cluster, seed: int, pipelined: bool,
               credit_bytes: float | None, run: _ExecutorArgs) -> _Timing:
    """Pulls first (vectorised, or under a credit window), then every worker's compute."""
    if credit_bytes is None:
        arrival = arrivals(graph, orders, cluster, seed, pipelined)
    else:
        orders = np.ascontiguousarray(_check_orders(graph, orders, cluster), dtype=np.int64)
        ((lat, data),) = _latency_and_data(graph, cluster, orders.shape, seed, 1)
        arrival = np.zeros(orders.shape)
        credit_transfers(orders, cluster.servers(graph), cluster.parameter_servers, lat, data,
                               graph.recv_bytes, float(credit_bytes), arrival)
    shape = arrival.shape[:2] + (graph.n_compute,)
    start, finish = np.zeros(shape), np.zeros(shape)
    run_all(arrival, *run, pipelined, start, finish)
    push_comm = np.zeros(arrival.shape[:2])
    return _Timing(arrival, start, finish, np.zeros(arrival.shape[:2] + (0,)), push_comm, push_comm,
                   graph.recv_bytes[np.asarray(orders)].sum(axis=(1, 2)), np.zeros(arrival.shape[0]))


def _compute_only(graph: OpGraph, run: _ExecutorArgs) -> np.ndarray:
    """(I, W) the makespan of each iteration's and worker's compute alone (every recv at time 0)."""
    shape = run[0].shape
    solo = np.zeros(shape[:2] + (graph.n_recv,))
    s0, f0 = np.zeros(shape), np.zeros(shape)
    run_all(solo, *run, False, s0, f0)
    return f0.max(axis=-1, initial=0.0)


def _result(timing: _Timing, comp_iw: np.ndarray, comp: float, pipelined: bool) -> IterationResult:
    """Makespans, bounds L and U and efficiency E from the timings (see `IterationResult`)."""
    arrival, finish, push_comm = timing.arrival, timing.finish, timing.push_comm
    end = np.maximum(np.maximum(finish.max(axis=-1, initial=0.0), arrival.max(axis=-1)), timing.push_end)
    if pipelined:
        makespan = np.diff(end, axis=0, prepend=0.0)
        comm = np.diff(arrival.max(axis=-1), axis=0, prepend=0.0)
    else:
        makespan, comm = end, arrival.max(axis=-1)
    lower, upper = np.maximum(np.maximum(comm, comp_iw), push_comm), comm + comp_iw + push_comm
    gap = upper - lower
    efficiency = np.clip(np.where(gap > 0, (upper - makespan) / np.where(gap > 0, gap, 1.0), 1.0), 0.0, 1.0)
    iteration_time = makespan.max(axis=1)
    return IterationResult(arrival, timing.start, finish, makespan, iteration_time,
                           iteration_time - makespan.min(axis=1), comm, comp, lower, upper, efficiency,
                           timing.push_arrival, push_comm, timing.pull_bytes, timing.push_bytes)


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

    Args:
        graph: the op DAG.
        orders: (iterations, workers, n_recv) each worker's transfer order per iteration.
        cluster: the simulated cluster.
        seed: seeds the transfer-time and compute noise (int >= 0; used when `cluster.jitter` or
            `cluster.compute_noise` > 0).
        executor: "dynamic" (ops run as their inputs are ready) or "in_order" (program order).
        pipelined: stream the next iteration's transfers behind this one's.
        push: push gradients back (None: whether the graph has gradients).
        credit_bytes: ByteScheduler's credit window in bytes (None: no window).
    """
    _check_inputs(graph, cluster, seed)
    push = _check_mode(graph, cluster, executor, pipelined, push, credit_bytes)
    orders = _check_orders(graph, orders, cluster)
    run = _executor_args(graph, cluster, executor, op_seconds(graph, cluster, orders.shape[:2], seed))
    if push or cluster.nic_gbps is not None:
        timing = _coupled(graph, orders, cluster, seed, push, pipelined, run)
    else:
        timing = _pull_only(graph, orders, cluster, seed, pipelined, credit_bytes, run)
    exact = dataclasses.replace(cluster, compute_noise=0.0)
    comp = _compute_only(graph, _executor_args(graph, exact, executor, op_seconds(graph, exact, (1, 1), seed)))[0, 0]
    # each worker-iteration's own compute-only makespan differs from the noise-free one only under noise
    comp_iw = _compute_only(graph, run) if cluster.compute_noise > 0 else np.full(orders.shape[:2], comp)
    return _result(timing, comp_iw, float(comp), pipelined)
