"""TicTac benchmark: ordering time of TIC and TAC on a deep ResNet-style training graph, and the
simulated speedup of TAC over random order on the bundled models.

The deep graph is traced from real JAX (`value_and_grad` of a 350-block ResNet-style network). TIC and
TAC are timed end to end from the graph's dependency bitsets (best of 3, numba kernels compiled
first); the direct TAC, recomputing every property from its definition at every step, is timed for
a few steps and extrapolated. Speedups: throughput of TAC over random order (re-drawn per iteration
and worker) on a simulated cluster of 4 workers, 1 parameter server, 1 Gbit/s, 10 GFLOP/s, on the
branching models (`models.BRANCHING_MODELS`; training pushes its gradients). Order study: layer
order, TIC and TAC against the brute-force best of all 720 orders on 60 random layered DAGs
(`experiments.order_study`); `tac_over_layer` is the geometric mean of layer time / TAC time over
them, `tac_wins` the DAGs where TAC is strictly faster (losses printed beside).

    python benchmarks/tictac.py [--blocks 350]
"""

from __future__ import annotations

import argparse
import time

from mlsys_core import backend

backend.setup(cpu_devices=8)

import numpy as np  # noqa: E402

from mlsys_core.tictac import experiments, jaxgraph, models, ordering  # noqa: E402
from mlsys_core.tictac import graph as graph_mod  # noqa: E402
from mlsys_core.tictac.simulate import Cluster  # noqa: E402


def best_of(fn, repeats=3):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=350)
    args = parser.parse_args()
    print(backend.info())

    start = time.perf_counter()
    fn, params, inputs = models.program("resnet", "train", depth=args.blocks, width=4, batch_size=4)
    deep = jaxgraph.to_graph(jaxgraph.trace(fn, params, *inputs), name="deep resnet train")
    print(f"traced {deep.name}: {deep.n_recv} recvs, {deep.n_compute} compute ops, "
          f"{deep.src.size} edges in {time.perf_counter() - start:.1f} s")

    small = graph_mod.random_graph(10, 30)  # compile the numba kernels outside the timings
    ordering.tac(small, np.ones(10), np.ones(30)), ordering.tic(small)
    oracle = Cluster(workers=4).oracle()
    t, c = oracle.recv_seconds(deep, share=4), oracle.compute_seconds(deep)
    ptr, idx = deep.preds
    deps_s, _ = best_of(lambda: graph_mod._deps_kernel(deep.n_recv, deep.n_nodes, deep.topo, ptr, idx,
                                                       (deep.n_recv + 63) // 64))
    tic_s, tic_order = best_of(lambda: ordering.tic(deep))
    tac_s, tac_order = best_of(lambda: ordering.tac(deep, t, c))
    sets, _ = ordering.dependency_sets(deep, c)
    print(f"deps bitsets {deps_s * 1e3:.1f} ms (graph build); {sets.shape[0]} distinct dependency sets")
    print(f"TIC {tic_s * 1e3:.1f} ms, TAC {tac_s * 1e3:.1f} ms (incremental kernel)")
    alive = np.ones(deep.n_recv, bool)
    steps = 2
    start = time.perf_counter()
    for r in tac_order[:steps]:
        ordering.properties(deep, t, c, alive)
        alive[r] = False
    direct = (time.perf_counter() - start) / steps * deep.n_recv
    print(f"direct TAC (dense recomputation of all properties each step): ~{direct:.0f} s extrapolated "
          f"from {steps} steps -> kernel is ~{direct / tac_s:.0f}x faster")

    cluster = Cluster(workers=4, parameter_servers=1, bandwidth_gbps=1.0, gflops=10.0)
    print(f"\nsimulated throughput over random order ({cluster.workers} workers, {cluster.bandwidth_gbps} Gbit/s):")
    names = experiments.ORDERS
    print(f"{'model':16s} {'mode':6s} " + " ".join(f"{s:>8s}" for s in names) + "   (time / lower bound L)")
    rows = experiments.branching_table(cluster, iterations=20, seed=0)
    for row in rows:
        print(f"{row.model:16s} {row.mode:6s} " + " ".join(f"{row.speedup[s]:8.3f}" for s in names)
              + "   " + " ".join(f"{row.over_lower[s]:.3f}" for s in names))
    infer = max(row.speedup["tac"] for row in rows if row.mode == "infer")
    train = max(row.speedup["tac"] for row in rows if row.mode == "train")

    start = time.perf_counter()
    study = experiments.order_study(n_dags=60)
    wins, losses = study.wins_losses("layer", "tac")
    print(f"\norder study: {len(study.seeds)} layered DAGs, 720 orders each, {time.perf_counter() - start:.1f} s")
    print("  time / best (geometric mean): " + ", ".join(f"{k} {v:.3f}" for k, v in study.over_best().items()))
    print(f"  TAC vs layer: {wins} wins, {losses} losses, {len(study.seeds) - wins - losses} ties; "
          f"TIC vs layer: {'/'.join(map(str, study.wins_losses('layer', 'tic')))} (wins/losses)")
    print(f"\nRESULT tictac tic_seconds={tic_s:.4f} tac_seconds={tac_s:.4f} recvs={deep.n_recv} "
          f"ops={deep.n_compute} infer_speedup={infer:.3f} train_speedup={train:.3f} "
          f"tac_over_layer={study.geomean('layer', 'tac'):.3f} tac_wins={wins}/{len(study.seeds)}")


if __name__ == "__main__":
    main()
