"""Notebook 04, section 3, "TAC's gain over five seeds and a range of bandwidth/compute ratios".

Each function feeds the claims registry: one value per seed, over the assumption's range.
`gain_sweep` (TAC over random per link bandwidth, the claims `tictac.inference_gain` and
`tictac.training_gain`: the geometric mean over the models), `efficiency` (scheduling efficiency E,
`tictac.efficiency_gain`),
`straggler_sweep` (the slowest worker's lag per transfer jitter, `tictac.straggler_spread`), and
`workers_sweep` / `workers_gain` / `rise_and_fall` (the gain as workers share the links,
`tictac.gain_rises_then_falls`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.seeds import DEFAULT_SEEDS
from mlsys_core.tictac import models
from mlsys_core.tictac.compare import check_graph_cluster, compare, model_graph, speedup
from mlsys_core.tictac.graph import OpGraph
from mlsys_core.tictac.simulate import Cluster

BANDWIDTHS_GBPS = (0.3, 1.0, 3.0, 10.0)  # the link bandwidths the gain claims are measured over
JITTERS = (0.1, 0.3, 0.5)  # the transfer-noise levels the straggler claim is measured over
WORKER_COUNTS = (1, 2, 4, 8, 16, 32, 64, 128)  # the worker counts the rise-and-fall claim is measured over


@dataclasses.dataclass(frozen=True)
class GainSweep:
    """TAC's throughput over random order for one mode, per link bandwidth, bundled model and seed."""

    mode: str  # "infer" or "train"
    bandwidth_gbps: np.ndarray  # (bandwidths,) Gbit/s
    models: tuple[str, ...]  # `models.MODELS` names
    seeds: tuple[int, ...]  # seeds of the random orders
    speedup: np.ndarray  # (bandwidths, models, seeds) x, TAC's throughput / random order's

    @property
    def geomean(self) -> np.ndarray:
        """(bandwidths, seeds): the geometric mean over the models per seed — the claims' aggregate (the
        paper's "up to" is its best model; the best of ours would pick whichever sits at its balance point)."""
        return np.exp(np.log(self.speedup).mean(axis=1))


def gain_sweep(mode: str, bandwidths_gbps=BANDWIDTHS_GBPS, seeds=DEFAULT_SEEDS, cluster: Cluster | None = None,
               iterations: int = 20, model_names=models.CLAIM_MODELS) -> GainSweep:
    """TAC over random order for every bundled model in `mode`, at each link bandwidth (the workers'
    compute rate fixed by the cluster, so the sweep moves the bandwidth/compute ratio), per seed.

    Args:
        mode: "infer" or "train".
        bandwidths_gbps: Gbit/s, the link bandwidths.
        seeds: seeds of the random orders (and of the noise, if the cluster has any).
        cluster: the simulated cluster whose bandwidth is swept (None: `Cluster()`, 4 workers, 1 server).
        iterations: simulated iterations per point.
        model_names: `models.MODELS` names.
    """
    validate.choice("mode", mode, models.MODES)
    seeds = validate.seeds("seeds", seeds)
    base = Cluster() if cluster is None else validate.instance("cluster", cluster, Cluster, "a simulate.Cluster")
    out = np.empty((len(bandwidths_gbps), len(model_names), len(seeds)))
    for b, bw in enumerate(bandwidths_gbps):
        cluster = dataclasses.replace(base, bandwidth_gbps=bw)
        for m, model in enumerate(model_names):
            graph = model_graph(model, mode)
            for k, seed in enumerate(seeds):
                out[b, m, k] = speedup(compare(graph, cluster, ("random", "tac"), iterations, seed))["tac"]
    return GainSweep(mode, np.asarray(bandwidths_gbps, dtype=float), tuple(model_names), seeds, out)


@dataclasses.dataclass(frozen=True)
class Efficiency:
    """Scheduling efficiency E per graph and seed, mean over workers and iterations."""

    graphs: tuple[str, ...]  # the graphs' names
    seeds: tuple[int, ...]  # seeds of the random orders
    random: np.ndarray  # (graphs, seeds) E of random order
    tac: np.ndarray  # (graphs, seeds) E of TAC
    samples: dict  # scheduler -> every worker-iteration's E over the graphs at the first seed (a histogram)

    @property
    def gain(self) -> np.ndarray:
        """(seeds,) how much TAC raises E over random order, averaged over the graphs."""
        return (self.tac - self.random).mean(axis=0)


def efficiency(cluster: Cluster, seeds=DEFAULT_SEEDS, iterations: int = 20) -> Efficiency:
    """Scheduling efficiency E of random order and TAC on every bundled model and mode."""
    seeds = validate.seeds("seeds", seeds)
    names, rnd, tac, samples = [], [], [], {"random": [], "tac": []}
    for model in models.CLAIM_MODELS:
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


def straggler(graph: OpGraph, cluster: Cluster, iterations: int = 50, seed: int = 0) -> dict[str, float]:
    """Mean straggler spread (slowest - fastest worker, s) of random order, TIC and TAC.

    Args:
        graph: the op DAG.
        cluster: the simulated cluster (its `jitter` makes the noise).
        iterations: simulated iterations.
        seed: seeds the random orders and the noise (int >= 0).
    """
    validate.seed("seed", seed)
    res = compare(graph, cluster, ("random", "tic", "tac"), iterations, seed)
    return {name: float(r.straggler.mean()) for name, r in res.items()}


@dataclasses.dataclass(frozen=True)
class StragglerSweep:
    """Mean straggler spread (slowest - fastest worker) under random order and TAC, per transfer-noise
    level and seed."""

    jitter: np.ndarray  # (jitters,) log-normal sigma of each transfer's time
    seeds: tuple[int, ...]  # seeds of the orders and the noise
    random_s: np.ndarray  # (jitters, seeds) s, random order's spread
    tac_s: np.ndarray  # (jitters, seeds) s, TAC's spread

    @property
    def relative(self) -> np.ndarray:
        """(jitters, seeds): TAC's spread as a fraction of random order's (finite, 0 = no straggling)."""
        return self.tac_s / self.random_s


def straggler_sweep(graph: OpGraph, jitters=JITTERS, seeds=DEFAULT_SEEDS, cluster: Cluster | None = None,
                    iterations: int = 50) -> StragglerSweep:
    """Straggler spread of random order and TAC at each jitter and seed. Both schedulers see the same
    noise: the seed draws one log-normal factor per (iteration, worker, transfer), applied to that
    transfer whatever its place in the order (and, with the cluster's `compute_noise`, one per op), so
    the only difference between them is the order.

    Args:
        graph: the op DAG.
        jitters: log-normal sigmas of the transfer noise.
        seeds: seeds of the orders and the noise.
        cluster: the simulated cluster whose `jitter` is swept (None: `Cluster()`, 4 workers, 1 Gbit/s).
        iterations: simulated iterations per point.
    """
    seeds = validate.seeds("seeds", seeds)
    base = Cluster() if cluster is None else validate.instance("cluster", cluster, Cluster, "a simulate.Cluster")
    check_graph_cluster(graph, base)
    rnd, tac = np.empty((len(jitters), len(seeds))), np.empty((len(jitters), len(seeds)))
    for j, jitter in enumerate(jitters):
        cluster = dataclasses.replace(base, jitter=jitter)
        for k, seed in enumerate(seeds):
            res = compare(graph, cluster, ("random", "tac"), iterations, seed)
            rnd[j, k], tac[j, k] = res["random"].straggler.mean(), res["tac"].straggler.mean()
    return StragglerSweep(np.asarray(jitters, dtype=float), seeds, rnd, tac)


@dataclasses.dataclass(frozen=True)
class WorkersSweep:
    """Throughput over random order of TIC, TAC and layer order, one value per worker count."""

    workers: np.ndarray  # (counts,) workers sharing the server links
    tic: np.ndarray  # (counts,) x, TIC over random order
    tac: np.ndarray  # (counts,) x, TAC over random order
    layer: np.ndarray  # (counts,) x, layer order over random order


def workers_sweep(graph: OpGraph, cluster: Cluster, workers=(1, 2, 4, 8, 16, 32), iterations: int = 20,
                  seed: int = 0) -> WorkersSweep:
    """Speedup of TIC and TAC over random as the number of workers sharing the PS links grows.

    Args:
        graph: the op DAG.
        cluster: the simulated cluster (its worker count is swept).
        workers: worker counts.
        iterations: simulated iterations per point.
        seed: seeds the random orders and the noise (int >= 0).
    """
    check_graph_cluster(graph, cluster)
    validate.seed("seed", seed)
    gains = [speedup(compare(graph, dataclasses.replace(cluster, workers=w), ("random", "layer", "tic", "tac"),
                             iterations, seed)) for w in workers]
    return WorkersSweep(np.array(workers), *(np.array([g[name] for g in gains]) for name in ("tic", "tac", "layer")))


def workers_gain(graph: OpGraph, cluster: Cluster, workers=WORKER_COUNTS, seeds=DEFAULT_SEEDS,
                 iterations: int = 20) -> np.ndarray:
    """(seeds, len(workers)) TAC's speedup over random as more workers share the servers' links.

    Args:
        graph: the op DAG.
        cluster: the simulated cluster (its worker count is swept).
        workers: worker counts.
        seeds: seeds of the random orders and the noise.
        iterations: simulated iterations per point.
    """
    check_graph_cluster(graph, cluster)
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
