"""The notebook's measurements as pure, seeded functions (each returns numbers, arrays or a frozen result).

They combine `models`/`jaxgraph` (real graphs), `ordering` (TIC, TAC, baselines) and `simulate`
(the parameter-server model); `plots` draws their results. The seed of a measurement seeds the
random transfer orders and, where a cluster has `jitter`, the transfer-time noise; the functions that
feed the claims registry take a tuple of `seeds` and return one value per seed.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time

import numpy as np

from mlsys_core import validate
from mlsys_core.tictac import jaxgraph, models, ordering, partition, placement
from mlsys_core.tictac.graph import OpGraph, layered_graph
from mlsys_core.tictac.simulate import Cluster, IterationResult, simulate

SEEDS = (0, 1, 2, 3, 4)
BANDWIDTHS_GBPS = (0.3, 1.0, 3.0, 10.0)  # the link bandwidths the gain claims are measured over
JITTERS = (0.1, 0.3, 0.5)  # the transfer-noise levels the straggler claim is measured over
CHAIN_MODELS = ("mlp", "cnn", "resnet")  # no parallel branches: each layer's parameters feed the next layer only



@functools.lru_cache(maxsize=32)
def model_graph(model: str, mode: str, depth: int = 4, width: int = 16, batch_size: int = 32) -> OpGraph:
    """The OpGraph of a bundled model's forward (`infer`) or forward+backward (`train`) program; a
    training graph knows which op produces each gradient (outputs 1.. of `value_and_grad`), so the
    simulator pushes it back."""
    fn, params, inputs = models.program(model, mode, 0, depth, width, batch_size)
    program = jaxgraph.trace(fn, params, *inputs)
    grads = range(1, 1 + len(program.param_vars)) if mode == "train" else None
    return jaxgraph.to_graph(program, name=f"{model} {mode}", gradient_outputs=grads)


def _check_graph_cluster(graph: OpGraph, cluster: Cluster) -> None:
    validate.instance("graph", graph, OpGraph, "a graph.OpGraph")
    validate.instance("cluster", cluster, Cluster, "a simulate.Cluster")


def compare(graph: OpGraph, cluster: Cluster, schedulers=ordering.SCHEDULERS, iterations: int = 20,
            seed: int = 0, **sim) -> dict[str, IterationResult]:
    """Simulate every scheduler on the same cluster and noise seed."""
    _check_graph_cluster(graph, cluster)
    validate.instance("schedulers", schedulers, (tuple, list), "a tuple of scheduler names")
    validate.seed("seed", seed)
    return {name: simulate(graph, ordering.schedule(graph, name, cluster.oracle(), cluster.workers, iterations, seed),
                           cluster, seed=seed, **sim) for name in schedulers}


def speedup(results: dict[str, IterationResult], baseline: str = "random") -> dict[str, float]:
    """Throughput of each scheduler over the baseline's (1.2 = 20% more iterations per second)."""
    base = results[baseline].iteration_time.mean()
    return {name: float(base / r.iteration_time.mean()) for name, r in results.items()}


@dataclasses.dataclass(frozen=True)
class SpeedupRow:
    """One bundled model and mode: every scheduler's throughput over random order, the headroom S of
    perfect overlap, and the mean scheduling efficiency E of random order and of TAC."""

    model: str
    mode: str
    speedup: dict[str, float]  # scheduler -> throughput / random's
    headroom: float
    efficiency_random: float
    efficiency_tac: float


def speedup_table(cluster: Cluster, iterations: int = 20, seed: int = 0) -> list[SpeedupRow]:
    """Per bundled model and mode: speedups of every scheduler over random, headroom S, mean E (random, TAC)."""
    validate.seed("seed", seed)
    rows = []
    for model in models.MODELS:
        for mode in models.MODES:
            res = compare(model_graph(model, mode), cluster, iterations=iterations, seed=seed)
            rows.append(SpeedupRow(model, mode, speedup(res), float(res["tac"].headroom.mean()),
                                   float(res["random"].efficiency.mean()), float(res["tac"].efficiency.mean())))
    return rows


def straggler(graph: OpGraph, cluster: Cluster, iterations: int = 50, seed: int = 0) -> dict[str, float]:
    """Mean straggler spread (slowest - fastest worker) per scheduler, in seconds."""
    validate.seed("seed", seed)
    res = compare(graph, cluster, ("random", "tic", "tac"), iterations, seed)
    return {name: float(r.straggler.mean()) for name, r in res.items()}


@dataclasses.dataclass(frozen=True)
class WorkersSweep:
    """Throughput over random order of TIC, TAC and layer order, one value per worker count."""

    workers: np.ndarray
    tic: np.ndarray
    tac: np.ndarray
    layer: np.ndarray


def workers_sweep(graph: OpGraph, cluster: Cluster, workers=(1, 2, 4, 8, 16, 32), iterations: int = 20,
                  seed: int = 0) -> WorkersSweep:
    """Speedup of TIC and TAC over random as the number of workers sharing the PS links grows."""
    _check_graph_cluster(graph, cluster)
    validate.seed("seed", seed)
    gains = [speedup(compare(graph, dataclasses.replace(cluster, workers=w), ("random", "layer", "tic", "tac"),
                             iterations, seed)) for w in workers]
    return WorkersSweep(np.array(workers), *(np.array([g[name] for g in gains]) for name in ("tic", "tac", "layer")))


@dataclasses.dataclass(frozen=True)
class OracleError:
    """TAC's slowdown against TAC with the exact oracle (0.02 = 2% slower), per oracle noise sigma."""

    sigma: np.ndarray
    mean_loss: np.ndarray  # over the noisy oracles drawn
    worst_loss: np.ndarray
    random_loss: float  # random transfer order, for reference


def oracle_error(graph: OpGraph, cluster: Cluster, sigmas=(0.0, 0.25, 0.5, 1.0, 2.0), trials: int = 20,
                 seed: int = 0) -> OracleError:
    """TAC planned with a wrong time oracle (every op and transfer time times log-normal noise of
    sigma), run on the true times: mean and worst slowdown against TAC with the exact oracle, and
    the slowdown of plain random order for reference."""
    _check_graph_cluster(graph, cluster)
    validate.seed("seed", seed)
    oracle = cluster.oracle()
    t, c = cluster.recv_seconds(graph), oracle.compute_seconds(graph)

    def run(order):
        return simulate(graph, np.broadcast_to(order, (1, cluster.workers, graph.n_recv)), cluster).iteration_time[0]

    exact = run(ordering.tac(graph, t, c))
    rng = np.random.default_rng(seed)
    mean, worst = [], []
    for sigma in sigmas:
        losses = [run(ordering.tac(graph, t * rng.lognormal(0, sigma, t.size), c * rng.lognormal(0, sigma, c.size)))
                  / exact - 1 for _ in range(trials)]
        mean.append(np.mean(losses))
        worst.append(np.max(losses))
    rnd = simulate(graph, ordering.schedule(graph, "random", oracle, cluster.workers, trials, seed), cluster)
    return OracleError(np.asarray(sigmas), np.asarray(mean), np.asarray(worst),
                       float(rnd.iteration_time.mean() / exact - 1))


@dataclasses.dataclass(frozen=True)
class HeuristicCost:
    """Wall time of TIC and TAC per graph: every run (graphs, repeats) and the best of them."""

    recvs: np.ndarray
    ops: np.ndarray
    tic_runs_s: np.ndarray
    tac_runs_s: np.ndarray

    @property
    def tic_s(self) -> np.ndarray:
        return self.tic_runs_s.min(axis=1)

    @property
    def tac_s(self) -> np.ndarray:
        return self.tac_runs_s.min(axis=1)


def _wall_times(fn, repeats: int) -> list[float]:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return runs


def heuristic_cost(blocks=(8, 32, 96), repeats: int = 3) -> HeuristicCost:
    """Wall time of TIC and TAC on ResNet-style training graphs of growing depth, `repeats` runs each."""
    validate.integer("repeats", repeats, low=1)
    oracle = Cluster().oracle()
    graphs = [model_graph("resnet", "train", depth=depth, width=4, batch_size=4) for depth in blocks]
    tic = [_wall_times(functools.partial(ordering.tic, g), repeats) for g in graphs]
    tac = [_wall_times(functools.partial(ordering.tac, g, oracle.recv_seconds(g), oracle.compute_seconds(g)), repeats)
           for g in graphs]
    return HeuristicCost(np.array([g.n_recv for g in graphs]), np.array([g.n_compute for g in graphs]),
                         np.array(tic), np.array(tac))


def alternatives(graph: OpGraph, cluster: Cluster, iterations: int = 20, seed: int = 0) -> dict[str, float]:
    """Mean iteration time of the survey's alternatives next to TicTac's: ops in fixed program order
    vs reordered as inputs arrive, and the next iteration's transfers pipelined behind this one's."""
    _check_graph_cluster(graph, cluster)
    validate.seed("seed", seed)
    out = {}
    for name in ("random", "tac"):
        orders = ordering.schedule(graph, name, cluster.oracle(), cluster.workers, iterations, seed)
        out[f"{name}, ops in program order"] = simulate(graph, orders, cluster, seed, executor="in_order")
        out[f"{name}, ops reordered as ready"] = simulate(graph, orders, cluster, seed)
        out[f"{name}, transfers pipelined"] = simulate(graph, orders, cluster, seed, pipelined=True)
    return {k: float(r.iteration_time[1:].mean()) for k, r in out.items()}


@dataclasses.dataclass(frozen=True)
class Timeline:
    """One worker's iteration for the Gantt widget: transfer intervals with each recv's server and
    layer rank (0 = first used), op intervals, and the summary numbers."""

    graph: OpGraph
    scheduler: str
    recv_start: np.ndarray
    recv_end: np.ndarray
    recv_server: np.ndarray
    recv_layer: np.ndarray
    op_start: np.ndarray
    op_end: np.ndarray
    makespan: float
    lower: float
    upper: float
    efficiency: float
    speedup: float


def timeline(model: str = "resnet", mode: str = "infer", bandwidth_gbps: float = 1.0, workers: int = 4,
             parameter_servers: int = 1, scheduler: str = "tac", seed: int = 0) -> Timeline:
    """Simulate one iteration of `scheduler` and return worker 0's timeline (and its speedup over
    random, averaged over 10 random iterations)."""
    validate.seed("seed", seed)
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
    """One training graph with and without gradient push, per scheduler (`schedulers`): mean iteration
    time pulling only (`pull_only_s`) and pulling + pushing (`push_s`), and the MB per iteration each
    direction carried over all workers (`pull_mb`, `push_mb`)."""

    graph: str
    schedulers: tuple[str, ...]
    pull_only_s: np.ndarray
    push_s: np.ndarray
    pull_mb: float
    push_mb: float

    def gain(self, scheduler: str = "tac", baseline: str = "random") -> tuple[float, float]:
        """(pull-only, with push) throughput of `scheduler` over `baseline`."""
        i, j = self.schedulers.index(scheduler), self.schedulers.index(baseline)
        return float(self.pull_only_s[j] / self.pull_only_s[i]), float(self.push_s[j] / self.push_s[i])


def push_traffic(graph: OpGraph, cluster: Cluster, schedulers=("random", "tac"), iterations: int = 20,
                 seed: int = 0) -> PushTraffic:
    """What pushing gradients back costs a training iteration, and what it does to TAC's gain."""
    _check_graph_cluster(graph, cluster)
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
    """Mean training iteration time (`iteration_s`, (placements, nics, servers)) of one scheduler as
    parameter servers are added, per placement and worker-card cap (`nic_gbps`, None = uncapped)."""

    graph: str
    scheduler: str
    servers: np.ndarray
    nic_gbps: tuple
    placements: tuple[str, ...]
    iteration_s: np.ndarray

    def speedup(self) -> np.ndarray:
        """(placements, nics, servers) throughput over one server with the same placement and card."""
        return self.iteration_s[..., :1] / self.iteration_s


def server_sweep(graph: OpGraph, cluster: Cluster, servers=(1, 2, 4, 8, 16), nic_gbps=(None, 1.0),
                 placements=tuple(placement.PLACEMENTS), scheduler: str = "tac", iterations: int = 5,
                 seed: int = 0) -> ServerSweep:
    """Iteration time of `scheduler` on `cluster` with 1.. parameter servers, each placement, each card cap."""
    _check_graph_cluster(graph, cluster)
    validate.seed("seed", seed)
    out = np.empty((len(placements), len(nic_gbps), len(servers)))
    for a, name in enumerate(placements):
        for b, nic in enumerate(nic_gbps):
            for c, p in enumerate(servers):
                cl = dataclasses.replace(cluster, parameter_servers=p, nic_gbps=nic, placement=name)
                res = compare(graph, cl, (scheduler,), iterations, seed)[scheduler]
                out[a, b, c] = res.iteration_time.mean()
    return ServerSweep(graph.name, scheduler, np.asarray(servers), tuple(nic_gbps), tuple(placements), out)


# --- measurements for the claims registry: one value per seed, over the assumption's range --------------


@dataclasses.dataclass(frozen=True)
class GainSweep:
    """TAC's throughput over random order (`speedup`, (bandwidths, models, seeds)) for one `mode`, per
    link bandwidth, bundled model and seed of the random orders."""

    mode: str
    bandwidth_gbps: np.ndarray
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    speedup: np.ndarray

    @property
    def best(self) -> np.ndarray:
        """(bandwidths, seeds): the best model's speedup per seed — the paper's "up to" figure."""
        return self.speedup.max(axis=1)


def gain_sweep(mode: str, bandwidths_gbps=BANDWIDTHS_GBPS, seeds=SEEDS, workers: int = 4,
               gflops: float = 10.0, iterations: int = 20, model_names=models.MODELS) -> GainSweep:
    """TAC over random order for every bundled model in `mode`, at each link bandwidth (the workers'
    compute rate fixed at `gflops`, so the sweep moves the bandwidth/compute ratio), per seed."""
    validate.choice("mode", mode, models.MODES)
    seeds = validate.seeds("seeds", seeds)
    out = np.empty((len(bandwidths_gbps), len(model_names), len(seeds)))
    for b, bw in enumerate(bandwidths_gbps):
        cluster = Cluster(workers=workers, bandwidth_gbps=bw, gflops=gflops)
        for m, model in enumerate(model_names):
            graph = model_graph(model, mode)
            for k, seed in enumerate(seeds):
                out[b, m, k] = speedup(compare(graph, cluster, ("random", "tac"), iterations, seed))["tac"]
    return GainSweep(mode, np.asarray(bandwidths_gbps, dtype=float), tuple(model_names), seeds, out)


@dataclasses.dataclass(frozen=True)
class StragglerSweep:
    """Mean straggler spread (slowest - fastest worker, seconds) under random order and TAC, per
    transfer-noise level `jitter` and seed: `random_s`, `tac_s` (jitters, seeds)."""

    jitter: np.ndarray
    seeds: tuple[int, ...]
    random_s: np.ndarray
    tac_s: np.ndarray

    @property
    def relative(self) -> np.ndarray:
        """(jitters, seeds): TAC's spread as a fraction of random order's (finite, 0 = no straggling)."""
        return self.tac_s / self.random_s


def straggler_sweep(graph: OpGraph, jitters=JITTERS, seeds=SEEDS, workers: int = 4,
                    bandwidth_gbps: float = 1.0, iterations: int = 50) -> StragglerSweep:
    """Straggler spread of random order and TAC at each jitter and seed. Both schedulers see the same
    noise: the seed draws one log-normal factor per (iteration, worker, transfer), applied to that
    transfer whatever its place in the order, so the only difference between them is the order."""
    seeds = validate.seeds("seeds", seeds)
    rnd, tac = np.empty((len(jitters), len(seeds))), np.empty((len(jitters), len(seeds)))
    for j, jitter in enumerate(jitters):
        cluster = Cluster(workers=workers, bandwidth_gbps=bandwidth_gbps, jitter=jitter)
        for k, seed in enumerate(seeds):
            res = compare(graph, cluster, ("random", "tac"), iterations, seed)
            rnd[j, k], tac[j, k] = res["random"].straggler.mean(), res["tac"].straggler.mean()
    return StragglerSweep(np.asarray(jitters, dtype=float), seeds, rnd, tac)


def workers_gain(graph: OpGraph, cluster: Cluster, workers=(1, 2, 4, 8, 16, 32, 64, 128), seeds=SEEDS,
                 iterations: int = 20) -> np.ndarray:
    """(seeds, len(workers)) TAC's speedup over random as more workers share the servers' links."""
    _check_graph_cluster(graph, cluster)
    seeds = validate.seeds("seeds", seeds)
    out = np.empty((len(seeds), len(workers)))
    for i, w in enumerate(workers):
        c = dataclasses.replace(cluster, workers=w)
        for k, seed in enumerate(seeds):
            out[k, i] = speedup(compare(graph, c, ("random", "tac"), iterations, seed))["tac"]
    return out


def rise_and_fall(gains) -> np.ndarray:
    """How far a curve (last axis) rises to its peak and falls after it: min(peak / first, peak / last) - 1.

    0 when the peak sits at either end (a monotone curve), > 0 only when it rises and then falls.
    """
    gains = np.asarray(gains, dtype=float)
    if gains.shape[-1] < 3:
        raise ValueError(f"rise_and_fall needs >= 3 points per curve, got shape {gains.shape}")
    peak = gains.max(axis=-1)
    return np.minimum(peak / gains[..., 0], peak / gains[..., -1]) - 1.0


def order_gap(rows: list[SpeedupRow], scheduler: str, reference: str = "tac", model_names=models.MODELS) -> float:
    """Largest relative throughput difference |scheduler / reference - 1| over `speedup_table` rows
    of the given models (both are fixed orders, so the random baseline cancels: deterministic)."""
    picked = [r for r in rows if r.model in model_names]
    if not picked:
        raise ValueError(f"model_names must name models in the rows, got {model_names!r}")
    return float(max(abs(r.speedup[scheduler] / r.speedup[reference] - 1.0) for r in picked))


@dataclasses.dataclass(frozen=True)
class Efficiency:
    """Scheduling efficiency E per graph (`graphs`) and seed: mean over workers and iterations of
    random order (`random`, (graphs, seeds)) and TAC (`tac`, same shape); `samples` pools every
    worker-iteration's E over the graphs at the first seed, per scheduler (for a histogram)."""

    graphs: tuple[str, ...]
    seeds: tuple[int, ...]
    random: np.ndarray
    tac: np.ndarray
    samples: dict

    @property
    def gain(self) -> np.ndarray:
        """(seeds,) how much TAC raises E over random order, averaged over the graphs."""
        return (self.tac - self.random).mean(axis=0)


def efficiency(cluster: Cluster, seeds=SEEDS, iterations: int = 20) -> Efficiency:
    """Scheduling efficiency E of random order and TAC on every bundled model and mode."""
    seeds = validate.seeds("seeds", seeds)
    names, rnd, tac, samples = [], [], [], {"random": [], "tac": []}
    for model in models.MODELS:
        for mode in models.MODES:
            graph = model_graph(model, mode)
            names.append(graph.name)
            per_seed = [compare(graph, cluster, ("random", "tac"), iterations, seed) for seed in seeds]
            rnd.append([r["random"].efficiency.mean() for r in per_seed])
            tac.append([r["tac"].efficiency.mean() for r in per_seed])
            for name in samples:
                samples[name].append(per_seed[0][name].efficiency.ravel())
    return Efficiency(tuple(names), seeds, np.asarray(rnd), np.asarray(tac),
                      {k: np.concatenate(v) for k, v in samples.items()})


def interleaved_speedups(trials: dict, baseline: str = "random", scheduler: str = "tac") -> np.ndarray:
    """Per-iteration ratios baseline time / scheduler time after warm-up, from a real-server run whose
    schedulers took turns iteration by iteration (so each ratio compares runs made moments apart)."""
    base, other = trials[baseline], trials[scheduler]
    if base.warmup != other.warmup or base.iteration_s.shape != other.iteration_s.shape:
        raise ValueError(f"{baseline} and {scheduler} trials must come from one interleaved run")
    return base.iteration_s[base.warmup:] / other.iteration_s[other.warmup:]


# --- graphs where the order matters (issue 15 item 4) -------------------------------------------------------


ORDERS = ("layer", "tic", "tac")  # the fixed orders compared with the best one
ORDER_DAGS = 60  # random layered DAGs in the order study (>= the claim's 50 samples)


@dataclasses.dataclass(frozen=True)
class OrderStudy:
    """Fixed orders against the best of all n_recv! orders on a family of random layered DAGs:
    `best_s` (DAGs,) the brute-force optimum's iteration time, `order_s` (DAGs, len(orders)) each
    fixed order's (`orders`, e.g. layer, TIC, TAC); `seeds` the DAGs' seeds."""

    orders: tuple[str, ...]
    seeds: tuple[int, ...]
    best_s: np.ndarray
    order_s: np.ndarray

    def _col(self, name: str) -> np.ndarray:
        return self.order_s[:, self.orders.index(name)]

    def over_best(self) -> dict[str, float]:
        """Geometric mean of order time / best time per order (1 = always optimal)."""
        return {n: float(np.exp(np.log(self._col(n) / self.best_s).mean())) for n in self.orders}

    def ratio(self, baseline: str = "layer", scheduler: str = "tac") -> np.ndarray:
        """(DAGs,) baseline time / scheduler time: > 1 where the scheduler is faster."""
        return self._col(baseline) / self._col(scheduler)

    def geomean(self, baseline: str = "layer", scheduler: str = "tac") -> float:
        """Geometric mean of `ratio` over the family."""
        return float(np.exp(np.log(self.ratio(baseline, scheduler)).mean()))

    def wins_losses(self, baseline: str = "layer", scheduler: str = "tac", rtol: float = 1e-9) -> tuple[int, int]:
        """(DAGs where the scheduler is strictly faster, DAGs where it is strictly slower)."""
        r = self.ratio(baseline, scheduler)
        return int((r > 1 + rtol).sum()), int((r < 1 - rtol).sum())


def order_study(n_dags: int = ORDER_DAGS, n_recv: int = 6, layers: int = 4, max_width: int = 3,
                cluster: Cluster | None = None, first_seed: int = 0) -> OrderStudy:
    """Layer order, TIC and TAC against the best of all n_recv! orders (brute force: every order is
    one iteration of one simulate call) on `n_dags` random layered DAGs (`graph.layered_graph`,
    seeds first_seed..), inference on one worker and one server by default (1 Gbit/s, 10 GFLOP/s)."""
    validate.seed("first_seed", first_seed)
    validate.integer("n_dags", n_dags, low=1)
    validate.integer("n_recv", n_recv, low=1, high=8)
    cluster = Cluster(workers=1) if cluster is None else validate.instance("cluster", cluster, Cluster,
                                                                          "a simulate.Cluster or None")
    perms = np.array(list(itertools.permutations(range(n_recv))))
    seeds = tuple(range(first_seed, first_seed + n_dags))
    best, fixed = np.empty(n_dags), np.empty((n_dags, len(ORDERS)))
    for k, seed in enumerate(seeds):
        g = layered_graph(n_recv, layers, max_width, seed)
        every = np.broadcast_to(perms[:, None, :], (perms.shape[0], cluster.workers, n_recv))
        best[k] = simulate(g, every, cluster).iteration_time.min()
        orders = np.stack([ordering.schedule(g, name, cluster.oracle(), cluster.workers)[0] for name in ORDERS])
        fixed[k] = simulate(g, orders, cluster).iteration_time
    return OrderStudy(ORDERS, seeds, best, fixed)


@dataclasses.dataclass(frozen=True)
class BranchingRow:
    """One bundled model and mode: throughput over random order per fixed order (`speedup`), and
    each order's mean iteration time over the lower bound L = max(pull, compute, push) (`over_lower`)
    — for graphs too large for brute force, how far from perfect overlap an order leaves it."""

    model: str
    mode: str
    recvs: int
    speedup: dict
    over_lower: dict


def branching_table(cluster: Cluster, model_names=models.BRANCHING_MODELS, iterations: int = 20,
                    seed: int = 0) -> list[BranchingRow]:
    """Layer order, TIC and TAC on the branching models (training pushes its gradients)."""
    validate.seed("seed", seed)
    rows = []
    for model in model_names:
        for mode in models.MODES:
            g = model_graph(model, mode)
            res = compare(g, cluster, ("random",) + ORDERS, iterations, seed)
            rows.append(BranchingRow(model, mode, g.n_recv, {n: v for n, v in speedup(res).items() if n != "random"},
                                     {n: float((res[n].makespan / res[n].lower).mean()) for n in ORDERS}))
    return rows


# --- ByteScheduler-style partitioning (issue 15 item 3) -----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PartitionStudy:
    """One iteration's time (`iteration_s`, (servers, len(columns))) of each way of sending one graph,
    per parameter-server count: unpartitioned layer / TIC / TAC orders, ByteScheduler (partitions in
    layer priority) at each credit window (named in partitions: "credit 4x" = 4 partitions in flight),
    and TIC / TAC run on the partitions (per-server queues, no window)."""

    graph: str
    partitions: int
    recvs: int
    servers: np.ndarray
    columns: tuple[str, ...]
    iteration_s: np.ndarray

    def best_unpartitioned(self) -> np.ndarray:
        """(servers,) the fastest unpartitioned order's time."""
        return self.iteration_s[:, [i for i, c in enumerate(self.columns) if c.startswith("whole")]].min(axis=1)

    def gain(self, column: str) -> np.ndarray:
        """(servers,) best unpartitioned time / `column`'s time (> 1: partitioning wins)."""
        return self.best_unpartitioned() / self.iteration_s[:, self.columns.index(column)]


def partition_study(graph: OpGraph, cluster: Cluster, servers=(1, 2, 4),
                    partition_params: int = partition.PARTITION_PARAMS,
                    credits_params=(partition.PARTITION_PARAMS, partition.CREDIT_PARAMS),
                    bytes_per_param: int = 4) -> PartitionStudy:
    """Unpartitioned orders against ByteScheduler-style partitions (inference: pulls only, one
    noise-free iteration per order, so the figures are deterministic)."""
    _check_graph_cluster(graph, cluster)
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


def pooled_speedups(real_runs, baseline: str = "random", scheduler: str = "tac") -> np.ndarray:
    """`interleaved_speedups` of every run of a `ps.Runs`, concatenated (warm-up of each run dropped)."""
    return np.concatenate([interleaved_speedups(t, baseline, scheduler) for t in real_runs.trials])
