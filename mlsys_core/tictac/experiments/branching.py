"""Notebook 04, section 3, "Graphs where the order matters": fixed orders where branches leave a choice.

`branching_table` runs layer order, TIC and TAC on the branching models; `order_study` compares them with
the brute-force best of all n_recv! orders on random layered DAGs (the claim
`tictac.tac_beats_layer_on_branching`).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from mlsys_core import validate
from mlsys_core.tictac import models, ordering
from mlsys_core.tictac.compare import compare, model_graph, speedup
from mlsys_core.tictac.experiments.system import ORDERS
from mlsys_core.tictac.graph import layered_graph
from mlsys_core.tictac.simulate import Cluster, simulate

ORDER_DAGS = 60  # random layered DAGs in the order study (>= the claim's 50 samples)


@dataclasses.dataclass(frozen=True)
class OrderStudy:
    """Fixed orders against the best of all n_recv! orders on a family of random layered DAGs."""

    orders: tuple[str, ...]  # the fixed orders (e.g. layer, TIC, TAC), in the order of `order_s`'s columns
    seeds: tuple[int, ...]  # the DAGs' seeds
    best_s: np.ndarray  # (DAGs,) s, the brute-force optimum's iteration
    order_s: np.ndarray  # (DAGs, len(orders)) s, each fixed order's iteration

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
                cluster: Cluster | None = None, first_seed: int = 0, iterations: int = 5) -> OrderStudy:
    """Layer order, TIC and TAC against the best of all n_recv! orders on `n_dags` random layered DAGs
    (`graph.layered_graph`, seeds first_seed..), inference on one worker and one server by default
    (1 Gbit/s, 10 GFLOP/s).

    Each fixed order runs `iterations` iterations seeded by its DAG's seed, so with noise (the cluster's
    `jitter`, `compute_noise`) every order sees the same draws; its time is their mean. The brute force
    (every order is one iteration of one simulate call) runs on the noise-free cluster: a reference.

    Args:
        n_dags: DAGs in the family.
        n_recv: recvs per DAG (1-8: the brute force tries n_recv! orders).
        layers: compute layers per DAG.
        max_width: most ops per layer.
        cluster: the simulated cluster (None: one worker, one server).
        first_seed: the first DAG's seed (int >= 0).
        iterations: simulated iterations per fixed order (>= 1).
    """
    validate.seed("first_seed", first_seed)
    validate.integer("n_dags", n_dags, low=1)
    validate.integer("n_recv", n_recv, low=1, high=8)
    validate.integer("iterations", iterations, low=1)
    cluster = Cluster(workers=1) if cluster is None else validate.instance("cluster", cluster, Cluster,
                                                                          "a simulate.Cluster or None")
    exact = dataclasses.replace(cluster, jitter=0.0, compute_noise=0.0)
    perms = np.array(list(itertools.permutations(range(n_recv))))
    seeds = tuple(range(first_seed, first_seed + n_dags))
    best, fixed = np.empty(n_dags), np.empty((n_dags, len(ORDERS)))
    for k, seed in enumerate(seeds):
        g = layered_graph(n_recv, layers, max_width, seed)
        every = np.broadcast_to(perms[:, None, :], (perms.shape[0], cluster.workers, n_recv))
        best[k] = simulate(g, every, exact).iteration_time.min()
        for j, name in enumerate(ORDERS):
            orders = ordering.schedule(g, name, cluster.oracle(), cluster.workers, iterations)
            fixed[k, j] = simulate(g, orders, cluster, seed).iteration_time.mean()
    return OrderStudy(ORDERS, seeds, best, fixed)


@dataclasses.dataclass(frozen=True)
class BranchingRow:
    """One bundled model and mode: for graphs too large for brute force, each fixed order against random
    order and against perfect overlap."""

    model: str  # a `models.MODELS` name
    mode: str  # "infer" or "train"
    recvs: int  # the graph's parameter tensors
    speedup: dict  # fixed order -> throughput over random order
    over_lower: dict  # fixed order -> mean iteration / lower bound L = max(pull, compute, push)


def branching_table(cluster: Cluster, model_names=models.BRANCHING_MODELS, iterations: int = 20,
                    seed: int = 0) -> list[BranchingRow]:
    """Layer order, TIC and TAC on the branching models (training pushes its gradients).

    Args:
        cluster: the simulated cluster.
        model_names: `models.MODELS` names.
        iterations: simulated iterations per scheduler.
        seed: seeds the random orders and the noise (int >= 0).
    """
    validate.seed("seed", seed)
    rows = []
    for model in model_names:
        for mode in models.MODES:
            g = model_graph(model, mode)
            res = compare(g, cluster, ("random",) + ORDERS, iterations, seed)
            rows.append(BranchingRow(model, mode, g.n_recv, {n: v for n, v in speedup(res).items() if n != "random"},
                                     {n: float((res[n].makespan / res[n].lower).mean()) for n in ORDERS}))
    return rows
