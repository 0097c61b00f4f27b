"""Notebook 04, section 5 (the survey's critique, tested): a wrong time oracle, the heuristics' own cost,
and the alternatives the survey names (ops in program order, pipelined transfers).
"""

from __future__ import annotations

import dataclasses
import functools
import time

import numpy as np

from mlsys_core import validate
from mlsys_core.tictac import ordering
from mlsys_core.tictac.compare import check_graph_cluster, model_graph
from mlsys_core.tictac.graph import OpGraph
from mlsys_core.tictac.simulate import Cluster, simulate


@dataclasses.dataclass(frozen=True)
class OracleError:
    """TAC's slowdown against TAC with the exact oracle (0.02 = 2% slower), per oracle noise sigma."""

    sigma: np.ndarray  # (sigmas,) log-normal sigma of the oracle's noise
    mean_loss: np.ndarray  # (sigmas,) mean slowdown over the noisy oracles drawn
    worst_loss: np.ndarray  # (sigmas,) worst slowdown over them
    random_loss: float  # random transfer order's slowdown, for reference


def oracle_error(graph: OpGraph, cluster: Cluster, sigmas=(0.0, 0.25, 0.5, 1.0, 2.0), trials: int = 20,
                 seed: int = 0) -> OracleError:
    """TAC planned with a wrong time oracle (every op and transfer time times log-normal noise of
    sigma), run on the true times: mean and worst slowdown against TAC with the exact oracle, and
    the slowdown of plain random order for reference.

    Args:
        graph: the op DAG.
        cluster: the simulated cluster (its oracle is the truth).
        sigmas: log-normal sigmas of the oracle's noise.
        trials: noisy oracles drawn per sigma (and random iterations).
        seed: seeds the noise and the random orders (int >= 0).
    """
    check_graph_cluster(graph, cluster)
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


NAIVE_BLOCKS = (16, 24, 32, 48)  # ResNet-style blocks of the graphs the naive TAC is timed on (~1 s a run)


@dataclasses.dataclass(frozen=True)
class HeuristicCost:
    """Wall time of TIC, the suite's incremental TAC and the naive TAC (properties recomputed at every step)
    per graph, every run; and the naive TAC's time extrapolated, run by run, to a larger target graph."""

    recvs: np.ndarray  # (graphs,) recvs per timed graph
    ops: np.ndarray  # (graphs,) compute ops per timed graph
    tic_runs_s: np.ndarray  # (graphs, repeats) s, TIC's wall time per run
    tac_runs_s: np.ndarray  # (graphs, repeats) s, incremental TAC's wall time per run
    naive_runs_s: np.ndarray  # (graphs, repeats) s, `ordering.tac_recompute`'s wall time per run
    target_recvs: int  # recvs of the target graph
    target_ops: int  # compute ops of the target graph
    target_tac_runs_s: np.ndarray  # (repeats,) s, incremental TAC on the target graph

    @property
    def tic_s(self) -> np.ndarray:
        """(graphs,) s, TIC's best run."""
        return self.tic_runs_s.min(axis=1)

    @property
    def tac_s(self) -> np.ndarray:
        """(graphs,) s, incremental TAC's best run."""
        return self.tac_runs_s.min(axis=1)

    @property
    def naive_s(self) -> np.ndarray:
        """(graphs,) s, the naive TAC's best run."""
        return self.naive_runs_s.min(axis=1)

    def naive_fit(self) -> np.ndarray:
        """(repeats, 2): per timed run, the least-squares line log(time) = a + b log(ops x recvs²) over the
        timed graphs, as (a, b); the naive algorithm's cost model predicts b = 1."""
        x = np.log(self.ops * self.recvs.astype(float) ** 2)
        design = np.stack([np.ones_like(x), x], axis=1)
        return np.linalg.lstsq(design, np.log(self.naive_runs_s), rcond=None)[0].T

    @property
    def naive_target_s(self) -> np.ndarray:
        """(repeats,) s, the naive TAC's time on the target graph, extrapolated from each run's fit."""
        a, b = self.naive_fit().T
        return np.exp(a + b * np.log(self.target_ops * float(self.target_recvs) ** 2))


def _wall_times(fn, repeats: int) -> list[float]:
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return runs


def heuristic_cost(blocks=NAIVE_BLOCKS, target_blocks: int = 96, repeats: int = 5) -> HeuristicCost:
    """Wall time of TIC, incremental TAC and naive TAC on ResNet-style training graphs of growing depth,
    `repeats` runs each (the graphs interleaved within a run), and the naive TAC extrapolated to a graph
    of `target_blocks` blocks (each run's own fit; see `HeuristicCost.naive_fit`).

    Args:
        blocks: the timed graphs' blocks (>= 2 graphs, so that a line can be fitted).
        target_blocks: blocks of the graph the naive time is extrapolated to (>= 1).
        repeats: timed runs (>= 1).
    """
    validate.integer("repeats", repeats, low=1)
    validate.integer("target_blocks", target_blocks, low=1)
    if len(blocks) < 2:
        raise ValueError(f"blocks must name >= 2 graph depths to fit a line, got {blocks!r}")
    oracle = Cluster().oracle()

    def graph(depth):
        return model_graph("resnet", "train", depth=int(depth), width=4, batch_size=4)

    graphs = [graph(depth) for depth in blocks]
    target = graph(target_blocks)
    timed = {"tic": [functools.partial(ordering.tic, g) for g in graphs]}
    for name, fn in (("tac", ordering.tac), ("naive", ordering.tac_recompute)):
        timed[name] = [functools.partial(fn, g, oracle.recv_seconds(g), oracle.compute_seconds(g)) for g in graphs]
    ordering.tac_recompute(graphs[0], oracle.recv_seconds(graphs[0]), oracle.compute_seconds(graphs[0]))  # compile
    runs = {name: np.empty((len(graphs), repeats)) for name in timed}
    for r in range(repeats):
        for name, fns in timed.items():
            for k, fn in enumerate(fns):
                runs[name][k, r] = _wall_times(fn, 1)[0]
    on_target = functools.partial(ordering.tac, target, oracle.recv_seconds(target), oracle.compute_seconds(target))
    return HeuristicCost(np.array([g.n_recv for g in graphs]), np.array([g.n_compute for g in graphs]),
                         runs["tic"], runs["tac"], runs["naive"], target.n_recv, target.n_compute,
                         np.array(_wall_times(on_target, repeats)))


def alternatives(graph: OpGraph, cluster: Cluster, iterations: int = 20, seed: int = 0) -> dict[str, float]:
    """Mean iteration time (s) of the survey's alternatives next to TicTac's: ops in fixed program order
    vs reordered as inputs arrive, and the next iteration's transfers pipelined behind this one's.

    Args:
        graph: the op DAG.
        cluster: the simulated cluster.
        iterations: simulated iterations (the first is left out of the mean).
        seed: seeds the random orders and the noise (int >= 0).
    """
    check_graph_cluster(graph, cluster)
    validate.seed("seed", seed)
    out = {}
    for name in ("random", "tac"):
        orders = ordering.schedule(graph, name, cluster.oracle(), cluster.workers, iterations, seed)
        out[f"{name}, ops in program order"] = simulate(graph, orders, cluster, seed, executor="in_order")
        out[f"{name}, ops reordered as ready"] = simulate(graph, orders, cluster, seed)
        out[f"{name}, transfers pipelined"] = simulate(graph, orders, cluster, seed, pipelined=True)
    return {k: float(r.iteration_time[1:].mean()) for k, r in out.items()}
