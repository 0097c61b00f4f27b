"""Bandana side by side with libCacheSim and KaHyPar, in one run on one machine.

1. Plain LRU over one 5 M-request oracleGeneral trace file: ours (numba, from the file) vs
   libCacheSim's `LRU.process_trace`: identical miss counts, and requests per second.
2. The LRU hit-rate curve at 50 cache sizes: our one pass (stack distances) vs libCacheSim once per size.
3. SHP vs KaHyPar (km1, epsilon 0.03) on one hypergraph: 8,192 vectors, 20,000 requests, 32 vectors
   per block: total blocks read (km1 + #requests) and wall time. SHP fills the 256 blocks exactly;
   KaHyPar gets 3% spare blocks (k = ceil(1.03 x 8192 / 32) = 264, still at most 32 vectors a block).
4. SHARDS at R = 0.01 on the 5 M trace: mean absolute error of the hit-rate curve.
5. Effective-bandwidth gain of SHP + cache over sequential placement + cache (default workload).

KaHyPar's PyPI wheel ships no preset, so the benchmark writes its own configuration (below): direct
k-way mode on the km1 objective, Louvain community detection, multilevel coarsening, a pool of
initial-partitioning algorithms, k-way FM refinement (no flow refinement); it is not yet KaHyPar's
own km1_kKaHyPar_sea20.ini (issue 12). Its contraction limit (c-t = 160 per block, as in KaHyPar's
sea20 presets) times k exceeds the 8,192 vertices, so KaHyPar partitions this instance without
coarsening. With k = 256 (every block exactly full: floor(1.03 x 32) = 32) no single-vertex FM move
is legal, which earlier runs of this benchmark did and reported SHP at 0.38 x KaHyPar's blocks read
(not a fair figure); the 3% spare blocks give its moves room, as any partitioner would be given.
SHP's own runs have no spare slots (its bisection fills n / capacity blocks), so this favours KaHyPar.

Run: `python benchmarks/bandana.py` (needs the `bench` extra). Ends with one `RESULT` line.
"""

from __future__ import annotations

import os
import pathlib
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from mlsys_core.bandana import cache as C  # noqa: E402
from mlsys_core.bandana import experiments as E  # noqa: E402
from mlsys_core.bandana import mrc as M  # noqa: E402
from mlsys_core.bandana import placement as P  # noqa: E402
from mlsys_core.bandana import shp as S  # noqa: E402
from mlsys_core.bandana import trace as T  # noqa: E402
from mlsys_core.bandana import workload as W  # noqa: E402

NUM_REQUESTS = 5_000_000
SEED = 0

KAHYPAR_KM1_CONFIG = """\
# Minimal direct k-way km1 configuration for KaHyPar 1.3 (written by benchmarks/bandana.py).
# general: direct k-way partitioning, connectivity-minus-one objective, no V-cycles
mode=direct
objective=km1
seed=0
cmaxnet=1000
vcycles=0
# preprocessing: no min-hash sparsifier; Louvain communities restrict coarsening
p-use-sparsifier=false
p-detect-communities=true
p-detect-communities-in-ip=true
p-reuse-communities=false
p-max-louvain-pass-iterations=100
p-min-eps-improvement=0.0001
p-louvain-edge-weight=hybrid
p-large-he-threshold=1000
p-smallest-maxnet-threshold=50000
p-maxnet-removal-factor=0.01
# coarsening: multilevel heavy-edge matching down to ~160 k vertices
c-type=ml_style
c-s=1
c-t=160
c-rating-score=heavy_edge
c-rating-use-communities=true
c-rating-heavy_node_penalty=no_penalty
c-rating-acceptance-criterion=best_prefer_unmatched
c-fixed-vertex-acceptance-criterion=fixed_vertex_allowed
# initial partitioning: recursive bisection on the coarsest level, pool of 20 runs, 2-way FM
i-mode=recursive
i-technique=multi
i-c-type=ml_style
i-c-s=1
i-c-t=150
i-c-rating-score=heavy_edge
i-c-rating-use-communities=true
i-c-rating-heavy_node_penalty=no_penalty
i-c-rating-acceptance-criterion=best_prefer_unmatched
i-c-fixed-vertex-acceptance-criterion=fixed_vertex_allowed
i-algo=pool
i-runs=20
i-bp-algorithm=worst_fit
i-bp-heuristic-prepacking=false
i-bp-early-restart=true
i-bp-late-restart=true
i-r-type=twoway_fm
i-r-runs=-1
i-r-fm-stop=simple
i-r-fm-stop-i=50
# refinement while uncoarsening: k-way FM on km1 with the adaptive stopping rule
r-type=kway_fm_km1
r-runs=-1
r-fm-stop=adaptive_opt
r-fm-stop-alpha=1
r-fm-stop-i=350
"""


def timed(fn, repeats: int = 1):
    """(result of the last call, best wall time in seconds)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def libcachesim_lru_misses(path: str, capacity: int, num_requests: int) -> int:
    import libcachesim as lcs

    reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE)
    miss_ratio, _ = lcs.LRU(capacity).process_trace(reader)
    return int(round(miss_ratio * num_requests))


def make_trace_file(directory: str) -> tuple[str, np.ndarray]:
    """5 M lookups of the default workload (scaled up) as an oracleGeneral file."""
    tables = W.default_tables(4.0)
    per_request = sum(t.lookups_per_request for t in tables)
    config = W.WorkloadConfig(tables=tables, num_requests=int(NUM_REQUESTS / per_request * 1.4), seed=SEED)
    keys = W.generate_trace(config).keys[:NUM_REQUESTS]
    if keys.size < NUM_REQUESTS:
        raise RuntimeError(f"generated only {keys.size} lookups")
    path = os.path.join(directory, "bandana.oracleGeneral.bin")
    T.write_oracle_general(path, keys)
    return path, keys


def lru_comparison(path: str, num_keys: int) -> tuple[int, float]:
    capacity = num_keys // 10
    C.lru_misses(np.arange(10), 2)  # compile outside the timing
    ours, t_ours = timed(lambda: C.lru_misses(T.read_oracle_general(path), capacity), repeats=3)
    theirs, t_theirs = timed(lambda: libcachesim_lru_misses(path, capacity, NUM_REQUESTS), repeats=3)
    print(f"[1] LRU, {capacity} objects, {NUM_REQUESTS:,} requests: misses ours {ours:,} libCacheSim {theirs:,}")
    print(f"    ours {NUM_REQUESTS / t_ours / 1e6:.1f} M req/s ({t_ours:.2f} s, file read included), "
          f"libCacheSim {NUM_REQUESTS / t_theirs / 1e6:.1f} M req/s ({t_theirs:.2f} s)")
    return int(ours == theirs), t_theirs / t_ours


def mrc_comparison(path: str, sizes: np.ndarray) -> tuple[float, np.ndarray]:
    M.hit_rate_curve(np.arange(10), [1])  # compile
    ours, t_ours = timed(lambda: M.hit_rate_curve(T.read_oracle_general(path), sizes))
    start = time.perf_counter()
    theirs = np.array([1 - libcachesim_lru_misses(path, int(c), NUM_REQUESTS) / NUM_REQUESTS for c in sizes])
    t_theirs = time.perf_counter() - start
    print(f"[2] hit-rate curve at {sizes.size} sizes: one pass {t_ours:.2f} s, libCacheSim per size {t_theirs:.1f} s; "
          f"max |difference| {np.abs(ours - theirs).max():.2e}")
    return t_theirs / t_ours, ours


def kahypar_blocks_read(graph: S.Hypergraph, k: int, epsilon: float, config_path: str) -> tuple[np.ndarray, int]:
    import kahypar

    hg = kahypar.Hypergraph(graph.num_vertices, graph.num_edges, graph.edge_ptr.tolist(), graph.pins.tolist(), k,
                            [1] * graph.num_edges, [1] * graph.num_vertices)
    ctx = kahypar.Context()
    ctx.loadINIconfiguration(config_path)
    ctx.setK(k)
    ctx.setEpsilon(epsilon)
    ctx.setSeed(SEED)
    ctx.suppressOutput(True)
    kahypar.partition(hg, ctx)
    parts = np.array([hg.blockID(v) for v in range(graph.num_vertices)], dtype=np.int64)
    return parts, int(kahypar.connectivityMinusOne(hg)) + graph.num_edges


def shp_comparison(directory: str) -> tuple[float, float]:
    table = W.EmbeddingTable("bench", 8192, 32, lookups_per_request=25.0, num_communities=256)
    trace = W.generate_trace(W.WorkloadConfig(tables=(table,), num_requests=20_000, seed=SEED))
    graph = S.Hypergraph.from_trace(trace)
    k = -(-int(np.ceil(1.03 * graph.num_vertices)) // table.block_capacity)  # 3% spare blocks for KaHyPar
    start = P.random_placement(table, SEED)
    S.shp_placement(graph, table.block_capacity, S.SHPConfig(iterations=1), start)  # compile
    ours, t_ours = timed(lambda: S.shp_placement(graph, table.block_capacity, S.SHPConfig(seed=SEED), start))
    config_path = os.path.join(directory, "km1_direct_kway.ini")
    pathlib.Path(config_path).write_text(KAHYPAR_KM1_CONFIG)
    (parts, kahypar_blocks), t_kahypar = timed(lambda: kahypar_blocks_read(graph, k, 0.03, config_path))
    ours_blocks = S.blocks_read(graph, ours)
    check = S.blocks_read(graph, P.Placement(parts, int(np.bincount(parts).max())))
    print(f"[3] hypergraph {graph.num_vertices} vectors, {graph.num_edges} requests, {graph.pins.size} pins; "
          f"SHP {table.num_blocks} full blocks, KaHyPar k={k} (3% spare, c-t 160 x k = {160 * k:,} > "
          f"{graph.num_vertices:,} vertices: no coarsening):")
    print(f"    "
          f"blocks read random {S.blocks_read(graph, start):,}, SHP {ours_blocks:,} in {t_ours:.2f} s, "
          f"KaHyPar {kahypar_blocks:,} (recounted {check:,}, fullest block {np.bincount(parts).max()}) "
          f"in {t_kahypar:.1f} s")
    return ours_blocks / kahypar_blocks, t_kahypar / t_ours


def shards_comparison(keys: np.ndarray, sizes: np.ndarray, exact: np.ndarray, seeds=(0, 1, 2, 3)) -> float:
    """MAE of SHARDS (R = 0.01) against the exact curve, averaged over several hash seeds (which keys
    fall in a 1% sample varies a lot on a skewed trace)."""
    maes = []
    for seed in seeds:
        est, t = timed(lambda seed=seed: M.shards_hit_rate_curve(keys, sizes, 0.01, seed=seed))
        maes.append(float(np.abs(est - exact).mean()))
        print(f"[4] SHARDS R=0.01 hash seed {seed}: MAE {maes[-1]:.4f}, "
              f"max error {np.abs(est - exact).max():.4f} ({t:.2f} s)")
    print(f"    mean MAE over {len(seeds)} hash seeds: {np.mean(maes):.4f}")
    return float(np.mean(maes))


def bandwidth_comparison(cache_fraction: float = 0.1) -> float:
    exp = E.Experiment.from_config(W.WorkloadConfig(seed=SEED))
    placements = {m: E.learn_placements(exp.past, m, SEED) for m in ("sequential", "shp")}
    rows = E.compare_placements(exp, placements, cache_fraction, seed=SEED, oracle=True)

    def label(ts):
        return "(" + ", ".join("inf" if t == C.NO_PREFETCH else str(t) for t in ts) + ")"

    for name, r in rows.items():
        print(f"[5] {name:10s} fanout {r['fanout']:.2f}  eff. bandwidth no cache {r['eb_no_cache']:.4f}  "
              f"cache {cache_fraction:.0%} per-table t from past mini-caches {label(r['t'])} hit {r['hit_rate']:.3f} "
              f"eff. bandwidth {r['eb_cache']:.4f}  blocks read {r['blocks_read']:,}; t chosen with the answer "
              f"{label(r['oracle_t'])} hit {r['oracle_hit_rate']:.3f} eff. bandwidth {r['oracle_eb_cache']:.4f}")
    s, q = rows["shp"], rows["sequential"]
    print(f"    gain no cache {s['eb_no_cache'] / q['eb_no_cache']:.2f}x; "
          f"with cache (t from the past) {s['eb_cache'] / q['eb_cache']:.2f}x "
          f"(blocks read {q['blocks_read'] / s['blocks_read']:.2f}x fewer); "
          f"with t chosen with the answer {s['oracle_eb_cache'] / q['oracle_eb_cache']:.2f}x")
    return s["eb_cache"] / q["eb_cache"]


def main() -> None:
    print(f"machine: {os.cpu_count()} CPUs (shared with other jobs: timings are indicative)")
    with tempfile.TemporaryDirectory() as directory:
        path, keys = make_trace_file(directory)
        num_keys = int(np.unique(keys).size)
        print(f"trace: {NUM_REQUESTS:,} requests over {num_keys:,} vectors, "
              f"{os.path.getsize(path) / 1e6:.0f} MB oracleGeneral")
        lru_equal, lru_speedup = lru_comparison(path, num_keys)
        sizes = np.unique(np.linspace(0.01, 1.0, 50) * num_keys).astype(np.int64)
        mrc_speedup, exact = mrc_comparison(path, sizes)
        shards_mae = shards_comparison(keys, sizes, exact)
        fanout_ratio, shp_speedup = shp_comparison(directory)
    gain = bandwidth_comparison()
    print(f"RESULT bandana lru_miss_equal={lru_equal} lru_speedup={lru_speedup:.2f} mrc_speedup={mrc_speedup:.1f} "
          f"shp_fanout_ratio={fanout_ratio:.3f} shp_speedup={shp_speedup:.1f} shards_mae={shards_mae:.4f} "
          f"bandwidth_gain={gain:.2f}")


if __name__ == "__main__":
    main()
