"""Schedulers side by side: a bundled model's op graph, every scheduler simulated on one cluster, and
throughput ratios.

`model_graph(model, mode)` traces a `models` program into an `OpGraph` (cached: the graphs are reused
across sweeps); `compare(graph, cluster, schedulers)` simulates each scheduler's orders on the same
cluster and noise seed; `speedup(results)` divides each scheduler's throughput by a baseline's. The
notebook's measurements (`experiments`) and the synergy code build on these three.
"""

from __future__ import annotations

import functools

from mlsys_core import validate
from mlsys_core.tictac import jaxgraph, models, ordering
from mlsys_core.tictac.graph import OpGraph
from mlsys_core.tictac.simulate import Cluster, IterationResult, simulate


@functools.lru_cache(maxsize=32)
def model_graph(model: str, mode: str, depth: int = 4, width: int = 16, batch_size: int = 32) -> OpGraph:
    """The OpGraph of a bundled model's forward (`infer`) or forward+backward (`train`) program; a
    training graph knows which op produces each gradient (outputs 1.. of `value_and_grad`), so the
    simulator pushes it back.

    Args:
        model: a `models.MODELS` name.
        mode: "infer" or "train".
        depth: layers / blocks / modules of the model (>= 1).
        width: channel scale of the model (>= 1).
        batch_size: images per batch.
    """
    fn, params, inputs = models.program(model, mode, 0, depth, width, batch_size)
    program = jaxgraph.trace(fn, params, *inputs)
    grads = range(1, 1 + len(program.param_vars)) if mode == "train" else None
    return jaxgraph.to_graph(program, name=f"{model} {mode}", gradient_outputs=grads)


def check_graph_cluster(graph: OpGraph, cluster: Cluster) -> None:
    """TypeError unless `graph` is an `OpGraph` and `cluster` a `simulate.Cluster`."""
    validate.instance("graph", graph, OpGraph, "a graph.OpGraph")
    validate.instance("cluster", cluster, Cluster, "a simulate.Cluster")


def compare(graph: OpGraph, cluster: Cluster, schedulers=tuple(ordering.SCHEDULERS), iterations: int = 20,
            seed: int = 0, **sim) -> dict[str, IterationResult]:
    """Simulate every scheduler on the same cluster and noise seed: {scheduler name: result}.

    Args:
        graph: the op DAG.
        cluster: the simulated cluster (its oracle plans TAC).
        schedulers: `ordering.SCHEDULERS` names, in the order of the result.
        iterations: simulated iterations per scheduler (>= 1).
        seed: seeds the random orders and the transfer noise (int >= 0).
        **sim: passed to `simulate.simulate` (executor, pipelined, push, credit_bytes).
    """
    check_graph_cluster(graph, cluster)
    validate.instance("schedulers", schedulers, (tuple, list), "a tuple of scheduler names")
    validate.seed("seed", seed)
    return {name: simulate(graph, ordering.schedule(graph, name, cluster.oracle(), cluster.workers, iterations, seed),
                           cluster, seed=seed, **sim) for name in schedulers}


def speedup(results: dict[str, IterationResult], baseline: str = "random") -> dict[str, float]:
    """Throughput of each scheduler over the baseline's (1.2 = 20% more iterations per second)."""
    base = results[baseline].iteration_time.mean()
    return {name: float(base / r.iteration_time.mean()) for name, r in results.items()}
