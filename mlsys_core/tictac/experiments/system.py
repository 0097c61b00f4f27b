"""Notebook 04, section 2 (the system): one iteration's timeline, gradient push, more servers, partitions.

`timeline` simulates one iteration and returns worker 0's Gantt chart; `push_traffic` what pushing
gradients back costs a training iteration; `server_sweep` adding parameter servers per placement and
worker-card cap; `partition_study` unpartitioned orders against ByteScheduler-style partitions.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.tictac import models, ordering, partition, placement
from mlsys_core.tictac.compare import check_graph_cluster, compare, model_graph
from mlsys_core.tictac.graph import OpGraph
from mlsys_core.tictac.simulate import Cluster, simulate

ORDERS = ("layer", "tic", "tac")  # the fixed orders compared with each other and with the best one


@dataclasses.dataclass(frozen=True)
class Timeline:
    """One worker's iteration for the Gantt chart: its transfers and ops, and the summary numbers."""

    graph: OpGraph  # the simulated graph
    scheduler: str  # the transfer order's scheduler
    recv_start: np.ndarray  # (n_recv,) s, when each transfer started
    recv_end: np.ndarray  # (n_recv,) s, when it arrived
    recv_server: np.ndarray  # (n_recv,) the server each recv came from
    recv_layer: np.ndarray  # (n_recv,) layer rank of each recv (0 = first used)
    op_start: np.ndarray  # (n_compute,) s, when each op started
    op_end: np.ndarray  # (n_compute,) s, when it finished
    makespan: float  # s, the iteration
    lower: float  # s, bound L = max(comm, comp)
    upper: float  # s, bound U = comm + comp
    efficiency: float  # scheduling efficiency E = (U - makespan) / (U - L)
    speedup: float  # x, random order's mean iteration (10 draws) / this one


def timeline(model: str = "resnet", mode: str = "infer", bandwidth_gbps: float = 1.0, workers: int = 4,
             parameter_servers: int = 1, scheduler: str = "tac", seed: int = 0) -> Timeline:
    """Simulate one iteration of `scheduler` and return worker 0's timeline (and its speedup over
    random, averaged over 10 random iterations).

    Args:
        model: a `models.MODELS` name.
        mode: "infer" or "train".
        bandwidth_gbps: Gbit/s, each server link.
        workers: workers sharing each server link.
        parameter_servers: servers.
        scheduler: an `ordering.SCHEDULERS` name.
        seed: seeds the random orders (int >= 0).
    """
    validate.seed("seed", seed)
    validate.choice("model", model, models.MODELS)
    validate.choice("mode", mode, models.MODES)
    validate.choice("scheduler", scheduler, ordering.SCHEDULERS)
    graph = model_graph(model, mode)
    cluster = Cluster(workers=workers, parameter_servers=parameter_servers, bandwidth_gbps=bandwidth_gbps)
    orders = ordering.schedule(graph, scheduler, cluster.oracle(), workers, 1, seed)
    res = simulate(graph, orders, cluster, seed)
    rnd = simulate(graph, ordering.schedule(graph, "random", cluster.oracle(), workers, 10, seed), cluster, seed)
    arrival = res.arrival[0, 0]
    duration = cluster.recv_seconds(graph)
    return Timeline(graph, scheduler, arrival - duration, arrival, cluster.servers(graph),
                    np.argsort(ordering.layer_order(graph)),
                    res.start[0, 0], res.finish[0, 0], float(res.iteration_time[0]), float(res.lower[0, 0]),
                    float(res.upper[0, 0]), float(res.efficiency[0, 0]),
                    float(rnd.iteration_time.mean() / res.iteration_time[0]))


@dataclasses.dataclass(frozen=True)
class PushTraffic:
    """One training graph with and without gradient push, per scheduler."""

    graph: str  # the graph's name
    schedulers: tuple[str, ...]  # the schedulers, in the order of the arrays
    pull_only_s: np.ndarray  # (schedulers,) s, mean iteration pulling only
    push_s: np.ndarray  # (schedulers,) s, mean iteration pulling and pushing
    pull_mb: float  # MB pulled per iteration over all workers
    push_mb: float  # MB pushed per iteration over all workers

    def gain(self, scheduler: str = "tac", baseline: str = "random") -> tuple[float, float]:
        """(pull-only, with push) throughput of `scheduler` over `baseline`."""
        i, j = self.schedulers.index(scheduler), self.schedulers.index(baseline)
        return float(self.pull_only_s[j] / self.pull_only_s[i]), float(self.push_s[j] / self.push_s[i])


def push_traffic(graph: OpGraph, cluster: Cluster, schedulers=("random", "tac"), iterations: int = 20,
                 seed: int = 0) -> PushTraffic:
    """What pushing gradients back costs a training iteration, and what it does to TAC's gain.

    Args:
        graph: a training graph (with gradients).
        cluster: the simulated cluster.
        schedulers: `ordering.SCHEDULERS` names.
        iterations: simulated iterations per scheduler.
        seed: seeds the random orders and the noise (int >= 0).
    """
    check_graph_cluster(graph, cluster)
    validate.seed("seed", seed)
    if not graph.has_gradients:
        raise ValueError(f"graph must be a training graph with gradients, got {graph.name!r}")
    pushed = compare(graph, cluster, schedulers, iterations, seed)
    pulled = compare(graph, cluster, schedulers, iterations, seed, push=False)
    first = pushed[schedulers[0]]
    return PushTraffic(graph.name, tuple(schedulers),
                       np.array([pulled[s].iteration_time.mean() for s in schedulers]),
                       np.array([pushed[s].iteration_time.mean() for s in schedulers]),
                       float(first.pull_bytes.mean() / 1e6), float(first.push_bytes.mean() / 1e6))


@dataclasses.dataclass(frozen=True)
class ServerSweep:
    """Mean training iteration time of one scheduler as parameter servers are added, per placement and
    worker-card cap."""

    graph: str  # the graph's name
    scheduler: str  # the scheduler
    servers: np.ndarray  # (servers,) parameter-server counts
    nic_gbps: tuple  # Gbit/s, worker-card caps (None = uncapped)
    placements: tuple[str, ...]  # `placement.PLACEMENTS` names
    iteration_s: np.ndarray  # (placements, nics, servers) s, mean iteration

    def speedup(self) -> np.ndarray:
        """(placements, nics, servers) throughput over one server with the same placement and card."""
        return self.iteration_s[..., :1] / self.iteration_s


def server_sweep(graph: OpGraph, cluster: Cluster, servers=(1, 2, 4, 8, 16), nic_gbps=(None, 1.0),
                 placements=tuple(placement.PLACEMENTS), scheduler: str = "tac", iterations: int = 5,
                 seed: int = 0) -> ServerSweep:
    """Iteration time of `scheduler` on `cluster` with 1.. parameter servers, each placement, each card cap.

    Args:
        graph: the op DAG.
        cluster: the simulated cluster (its servers, card and placement are swept).
        servers: parameter-server counts.
        nic_gbps: Gbit/s, worker-card caps (None: uncapped).
        placements: `placement.PLACEMENTS` names.
        scheduler: an `ordering.SCHEDULERS` name.
        iterations: simulated iterations per point.
        seed: seeds the random orders and the noise (int >= 0).
    """
    check_graph_cluster(graph, cluster)
    validate.seed("seed", seed)
    out = np.empty((len(placements), len(nic_gbps), len(servers)))
    for a, name in enumerate(placements):
        for b, nic in enumerate(nic_gbps):
            for c, p in enumerate(servers):
                cl = dataclasses.replace(cluster, parameter_servers=p, nic_gbps=nic, placement=name)
                res = compare(graph, cl, (scheduler,), iterations, seed)[scheduler]
                out[a, b, c] = res.iteration_time.mean()
    return ServerSweep(graph.name, scheduler, np.asarray(servers), tuple(nic_gbps), tuple(placements), out)


@dataclasses.dataclass(frozen=True)
class PartitionStudy:
    """One iteration's time of each way of sending one graph, per parameter-server count: unpartitioned
    layer / TIC / TAC orders, ByteScheduler (partitions in layer priority) at each credit window (named
    in partitions: "credit 4x" = 4 partitions in flight), and TIC / TAC run on the partitions
    (per-server queues, no window)."""

    graph: str  # the graph's name
    partitions: int  # partitions the graph's tensors were cut into
    recvs: int  # the graph's tensors
    servers: np.ndarray  # (servers,) parameter-server counts
    columns: tuple[str, ...]  # the ways of sending, in the order of the last axis
    iteration_s: np.ndarray  # (servers, len(columns)) s, one iteration

    def best_unpartitioned(self) -> np.ndarray:
        """(servers,) s, the fastest unpartitioned order's time."""
        return self.iteration_s[:, [i for i, c in enumerate(self.columns) if c.startswith("whole")]].min(axis=1)

    def gain(self, column: str) -> np.ndarray:
        """(servers,) best unpartitioned time / `column`'s time (> 1: partitioning wins)."""
        return self.best_unpartitioned() / self.iteration_s[:, self.columns.index(column)]


def partition_study(graph: OpGraph, cluster: Cluster, servers=(1, 2, 4),
                    partition_params: int = partition.PARTITION_PARAMS,
                    credits_params=(partition.PARTITION_PARAMS, partition.CREDIT_PARAMS),
                    bytes_per_param: int = 4) -> PartitionStudy:
    """Unpartitioned orders against ByteScheduler-style partitions (inference: pulls only, one
    noise-free iteration per order, so the figures are deterministic).

    Args:
        graph: the op DAG.
        cluster: the simulated cluster (its server count is swept).
        servers: parameter-server counts.
        partition_params: parameters per partition.
        credits_params: ByteScheduler's credit windows, in parameters.
        bytes_per_param: bytes per parameter.
    """
    check_graph_cluster(graph, cluster)
    pg = partition.partition(graph, partition_params, bytes_per_param)
    columns = ([f"whole, {n}" for n in ORDERS]
               + [f"ByteScheduler, credit {c / partition_params:g}x" for c in credits_params]
               + [f"partitions, {n}" for n in ("tic", "tac")])
    out = np.empty((len(servers), len(columns)))
    for a, p in enumerate(servers):
        cl = dataclasses.replace(cluster, parameter_servers=p)

        def once(g, order, cl=cl, **kw):
            orders = np.broadcast_to(order, (1, cl.workers, g.n_recv))
            return simulate(g, orders, cl, push=False, **kw).iteration_time[0]

        row = [once(graph, ordering.schedule(graph, n, cl.oracle(), cl.workers)[0, 0]) for n in ORDERS]
        row += [once(pg.graph, partition.bytescheduler_order(pg), credit_bytes=c * bytes_per_param)
                for c in credits_params]
        row += [once(pg.graph, ordering.schedule(pg.graph, n, cl.oracle(), cl.workers)[0, 0]) for n in ("tic", "tac")]
        out[a] = row
    return PartitionStudy(graph.name, pg.n_parts, graph.n_recv, np.asarray(servers), tuple(columns), out)
