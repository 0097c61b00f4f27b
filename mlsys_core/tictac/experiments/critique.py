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


@dataclasses.dataclass(frozen=True)
class HeuristicCost:
    """Wall time of TIC and TAC per graph: every run and the best of them."""

    recvs: np.ndarray  # (graphs,) recvs per graph
    ops: np.ndarray  # (graphs,) compute ops per graph
    tic_runs_s: np.ndarray  # (graphs, repeats) s, TIC's wall time per run
    tac_runs_s: np.ndarray  # (graphs, repeats) s, TAC's wall time per run

    @property
    def tic_s(self) -> np.ndarray:
        """(graphs,) s, TIC's best run."""
        return self.tic_runs_s.min(axis=1)

    @property
    def tac_s(self) -> np.ndarray:
        """(graphs,) s, TAC's best run."""
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
