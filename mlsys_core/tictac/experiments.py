"""The notebook's measurements as pure, seeded functions (each returns plain numbers / arrays).

They combine `models`/`jaxgraph` (real graphs), `ordering` (TIC, TAC, baselines) and `simulate`
(the parameter-server model); `plots` draws their results.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import numpy as np

from mlsys_core.tictac import jaxgraph, models, ordering
from mlsys_core.tictac.graph import OpGraph
from mlsys_core.tictac.simulate import Cluster, SimResult, simulate


@functools.lru_cache(maxsize=32)
def model_graph(model: str, mode: str, depth: int = 4, width: int = 16, batch_size: int = 32) -> OpGraph:
    """The OpGraph of a bundled model's forward (`infer`) or forward+backward (`train`) program."""
    fn, params, inputs = models.program(model, mode, 0, depth, width, batch_size)
    return jaxgraph.to_graph(jaxgraph.trace(fn, params, *inputs), name=f"{model} {mode}")


def compare(graph: OpGraph, cluster: Cluster, schedulers=ordering.SCHEDULERS, iterations: int = 20,
            seed: int = 0, **sim) -> dict[str, SimResult]:
    """Simulate every scheduler on the same cluster and noise seed."""
    return {name: simulate(graph, ordering.schedule(graph, name, cluster.oracle(), cluster.workers, iterations, seed),
                           cluster, seed=seed, **sim) for name in schedulers}


def speedup(results: dict[str, SimResult], baseline: str = "random") -> dict[str, float]:
    """Throughput of each scheduler over the baseline's (1.2 = 20% more iterations per second)."""
    base = results[baseline].iteration_time.mean()
    return {name: float(base / r.iteration_time.mean()) for name, r in results.items()}


def speedup_table(cluster: Cluster, iterations: int = 20, seed: int = 0) -> list[dict]:
    """Per bundled model and mode: speedups of every scheduler over random, headroom S, mean E (random, TAC)."""
    rows = []
    for model in models.MODELS:
        for mode in models.MODES:
            res = compare(model_graph(model, mode), cluster, iterations=iterations, seed=seed)
            rows.append({"model": model, "mode": mode, **speedup(res),
                         "S": float(res["tac"].headroom.mean()),
                         "E_random": float(res["random"].efficiency.mean()),
                         "E_tac": float(res["tac"].efficiency.mean())})
    return rows


def straggler(graph: OpGraph, cluster: Cluster, iterations: int = 50, seed: int = 0) -> dict[str, float]:
    """Mean straggler spread (slowest - fastest worker) per scheduler, in seconds."""
    res = compare(graph, cluster, ("random", "tic", "tac"), iterations, seed)
    return {name: float(r.straggler.mean()) for name, r in res.items()}


def workers_sweep(graph: OpGraph, cluster: Cluster, workers=(1, 2, 4, 8, 16, 32), iterations: int = 20,
                  seed: int = 0) -> dict[str, np.ndarray]:
    """Speedup of TIC and TAC over random as the number of workers sharing the PS links grows."""
    out = {"workers": np.array(workers), "tic": [], "tac": [], "layer": []}
    for w in workers:
        gains = speedup(compare(graph, dataclasses.replace(cluster, workers=w), ("random", "layer", "tic", "tac"),
                                iterations, seed))
        for name in ("tic", "tac", "layer"):
            out[name].append(gains[name])
    return {k: np.asarray(v) for k, v in out.items()}


def oracle_error(graph: OpGraph, cluster: Cluster, sigmas=(0.0, 0.25, 0.5, 1.0, 2.0), trials: int = 20,
                 seed: int = 0) -> dict[str, np.ndarray]:
    """TAC planned with a wrong time oracle (every op and transfer time times log-normal noise of
    sigma), run on the true times: mean and worst slowdown against TAC with the exact oracle, and
    the slowdown of plain random order for reference."""
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
    return {"sigma": np.asarray(sigmas), "mean_loss": np.asarray(mean), "worst_loss": np.asarray(worst),
            "random_loss": float(rnd.iteration_time.mean() / exact - 1)}


def heuristic_cost(blocks=(8, 32, 96), repeats: int = 3) -> dict[str, np.ndarray]:
    """Wall time of TIC and TAC (best of `repeats`) on ResNet-style training graphs of growing depth."""
    rows = {"recvs": [], "ops": [], "tic_s": [], "tac_s": []}
    oracle = Cluster().oracle()
    for depth in blocks:
        g = model_graph("resnet", "train", depth=depth, width=4, batch_size=4)
        t, c = oracle.recv_seconds(g), oracle.compute_seconds(g)
        for key, fn in (("tic_s", lambda: ordering.tic(g)), ("tac_s", lambda: ordering.tac(g, t, c))):
            best = np.inf
            for _ in range(repeats):
                start = time.perf_counter()
                fn()
                best = min(best, time.perf_counter() - start)
            rows[key].append(best)
        rows["recvs"].append(g.n_recv)
        rows["ops"].append(g.n_compute)
    return {k: np.asarray(v) for k, v in rows.items()}


def alternatives(graph: OpGraph, cluster: Cluster, iterations: int = 20, seed: int = 0) -> dict[str, float]:
    """Mean iteration time of the survey's alternatives next to TicTac's: ops in fixed program order
    vs reordered as inputs arrive, and the next iteration's transfers pipelined behind this one's."""
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
    graph = model_graph(model, mode)
    cluster = Cluster(workers=workers, parameter_servers=parameter_servers, bandwidth_gbps=bandwidth_gbps)
    orders = ordering.schedule(graph, scheduler, cluster.oracle(), workers, 1, seed)
    res = simulate(graph, orders, cluster, seed)
    rnd = simulate(graph, ordering.schedule(graph, "random", cluster.oracle(), workers, 10, seed), cluster, seed)
    arrival = res.arrival[0, 0]
    duration = cluster.recv_seconds(graph)
    return Timeline(graph, scheduler, arrival - duration, arrival, np.arange(graph.n_recv) % parameter_servers,
                    np.argsort(ordering.layer_order(graph)),
                    res.start[0, 0], res.finish[0, 0], float(res.iteration_time[0]), float(res.lower[0, 0]),
                    float(res.upper[0, 0]), float(res.efficiency[0, 0]),
                    float(rnd.iteration_time.mean() / res.iteration_time[0]))
