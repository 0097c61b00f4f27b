"""Bandana side by side with libCacheSim and KaHyPar, in one run on one machine.

1. Plain LRU over one 5 M-request oracleGeneral trace file: ours (numba, from the file) vs
   libCacheSim's `LRU.process_trace`: identical miss counts, and requests per second.
2. The LRU hit-rate curve at 50 cache sizes: our one pass (stack distances) vs libCacheSim once per size.
3. SHP vs KaHyPar *as KaHyPar ships it*: its own presets `km1_kKaHyPar_sea20.ini` (direct k-way with
   flow refinement) and, as a second point, `km1_rKaHyPar_sea20.ini` (recursive bisection), from
   kahypar/kahypar's `config/` folder, read unmodified from `--kahypar-presets` (default
   `../shared/data/kahypar` beside the checkout, or $BANDANA_KAHYPAR_PRESETS; only k, epsilon 0.03 and the
   seed are set). They are not in the project's tree (GPL-3.0); where they are absent the section says
   where to get them and runs SHP, random and planted placement only. Instances from the project's
   generator, 32 vectors a block: the earlier one (8,192 vectors, 256 communities of 32, every block
   exactly full: KaHyPar can make no move), the same with 3% spare slots (k = ceil(1.03 n / 32)),
   communities of 20 and of 50 vectors (not matching the block), and a
   65,536-vector instance. Each prints blocks read (km1 + #requests) for random, planted (vectors
   packed community by community), SHP and KaHyPar, with wall times. SHP runs with Giraph's
   max_move_ratio 0.1 and, on spare-slot instances, the same spare blocks (imbalance 0.045 then acts).
   `shp_fanout_ratio` is the worst SHP / kKaHyPar over the spare-slot instances.
4. SHARDS on a trace of >= 1 M distinct keys: SHARDS-adj at rates 0.0005-0.1 and fixed-size SHARDS
   (s_max), MAE against the exact curve over 16 hash seeds (mean and 95% interval). Hit convention:
   an access hits a cache of C objects iff fewer than C distinct other keys were touched since its
   previous access (1-based LRU stack position <= C), libCacheSim's LRU, checked equal in 1. and 2.
5. The queueing device model: M/M/1 check (queue_mm1_error), closed-loop IOPS at QD1 and QD16, and
   this machine's O_DIRECT read latencies per queue depth (10,000 reads each), fed to the model.
6. Effective-bandwidth gain of SHP + cache over sequential placement + cache (default workload),
   each with the per-table t its mini-caches pick on the past.

The KaHyPar presets take minutes per instance here (2-3 min per 8,192-vector instance on 2 shared
cores, 2026-12-02): the 65,536-vector instance runs KaHyPar only with --kahypar-large or
BANDANA_KAHYPAR_LARGE=1 (SHP, random and planted always run on it). The whole run took 26 min of wall
time (6 min of CPU) then. kKaHyPar on the 65,536-vector instance, run alone on 2026-12-02
(`--only shp --instances large --kahypar-large` at nice 10 on the 2-core machine, load average 1-3.7
from other jobs; 22 min of wall time, 17 min of CPU, 6.3 GB peak memory): 160,000 requests, 2,696,798
pins, k = 2,110 blocks; blocks read random 2,687,372, planted 949,566, SHP 990,740 (19.3 s), kKaHyPar
993,913 (1,299 s): SHP / kKaHyPar 0.997, under the worst ratio of the 8,192-vector spare-slot instances
(1.016 in that run), so `shp_fanout_ratio` stays that worst ratio with it.

Run: `python benchmarks/bandana.py` (needs the `bench` extra). Ends with one `RESULT` line. A part alone:
`--only shp --instances large --kahypar-large` (sections: lru = 1. and 2., shp, shards, queue, bandwidth;
instances: full, spare, c20, c50, large); a partial run prints no RESULT line.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from mlsys_core.bandana import cache as C  # noqa: E402
from mlsys_core.bandana import evaluation as EV  # noqa: E402
from mlsys_core.bandana import experiments as E  # noqa: E402
from mlsys_core.bandana import hypergraph as H  # noqa: E402
from mlsys_core.bandana import mrc as M  # noqa: E402
from mlsys_core.bandana import placement as P  # noqa: E402
from mlsys_core.bandana import queueing as Q  # noqa: E402
from mlsys_core.bandana import shp as S  # noqa: E402
from mlsys_core.bandana import store as ST  # noqa: E402
from mlsys_core.bandana import tables  # noqa: E402
from mlsys_core.bandana import thresholds as TH  # noqa: E402
from mlsys_core.bandana import trace as T  # noqa: E402
from mlsys_core.bandana import workload as W  # noqa: E402

NUM_REQUESTS = 5_000_000
SEED = 0

KAHYPAR_DIR = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "kahypar"
KAHYPAR_PRESETS = {"kKaHyPar": "km1_kKaHyPar_sea20.ini", "rKaHyPar": "km1_rKaHyPar_sea20.ini"}
KAHYPAR_COMMIT = "d207276070d176097273f7d4ee94043067eb97f0"  # config/ here equals the copies at 4c79e48


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
    big = tables.default_tables(4.0)
    per_request = sum(t.lookups_per_request for t in big)
    config = W.WorkloadConfig(tables=big, num_requests=int(NUM_REQUESTS / per_request * 1.4), seed=SEED)
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


def kahypar_blocks_read(graph: H.Hypergraph, k: int, epsilon: float, config_path: str) -> tuple[np.ndarray, int]:
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


def planted_placement(table: tables.EmbeddingTable, seed: int) -> P.Placement:
    """The generator's communities packed block by block (a community of 32 fills one block)."""
    order = np.argsort(W.community_of(table, seed), kind="stable")
    block_of = np.empty(table.num_vectors, dtype=np.int64)
    block_of[order] = np.arange(table.num_vectors) // table.block_capacity
    return P.Placement(block_of, table.block_capacity)


INSTANCES = {  # key: (name, vectors, community size, spare slots, presets)
    "full": ("current (8,192, communities of 32, full blocks)", 8192, 32, False, ("kKaHyPar",)),
    "spare": ("current + 3% spare slots", 8192, 32, True, ("kKaHyPar", "rKaHyPar")),
    "c20": ("communities of 20, 3% spare", 8192, 20, True, ("kKaHyPar",)),
    "c50": ("communities of 50, 3% spare", 8192, 50, True, ("kKaHyPar",)),
    "large": ("65,536 vectors, 3% spare", 65536, 32, True, ("kKaHyPar",)),
}


def shp_comparison(instances=tuple(INSTANCES), large_kahypar: bool = False,
                   presets_dir: pathlib.Path = KAHYPAR_DIR) -> tuple[float, float, int]:
    """(worst SHP / kKaHyPar blocks read over the spare-slot instances run, kKaHyPar / SHP time on the
    current + spare instance, instances KaHyPar ran on); nan where an instance it needs was not run."""
    S.shp_placement(H.Hypergraph.from_edges(64, [[0, 1], [2, 3]]), 4, S.SHPConfig(iterations=1))  # compile
    paths = {name: presets_dir / file for name, file in KAHYPAR_PRESETS.items()}
    have_presets = all(p.is_file() for p in paths.values())
    if have_presets:
        print(f"[3] KaHyPar presets from {presets_dir}: " + ", ".join(KAHYPAR_PRESETS.values()))
    else:
        print(f"[3] KaHyPar presets not found in {presets_dir}: KaHyPar is not run. Get "
              f"config/{{{','.join(KAHYPAR_PRESETS.values())}}} from github.com/kahypar/kahypar at "
              f"{KAHYPAR_COMMIT[:7]} (GPL-3.0) and pass their folder as --kahypar-presets")
    ratios, speedup, ran = [], float("nan"), 0
    for name, n, community, spare, presets in (INSTANCES[key] for key in instances):
        table = tables.EmbeddingTable("bench", n, 32, lookups_per_request=25.0, num_communities=n // community)
        trace = W.generate_trace(W.WorkloadConfig(tables=(table,), num_requests=int(20_000 * n / 8192), seed=SEED))
        graph = H.Hypergraph.from_trace(trace)
        fewest = table.num_blocks
        k = -(-int(np.ceil(1.03 * n)) // table.block_capacity) if spare else fewest
        start = P.random_placement(table, SEED)
        ours, t_ours = timed(lambda g=graph, c=table.block_capacity, s=start, k=k: S.shp_placement(
            g, c, S.SHPConfig(seed=SEED), s, num_blocks=k))
        shp_blocks = H.blocks_read(graph, ours)
        print(f"    {name}: {graph.num_edges:,} requests, {graph.pins.size:,} pins, k={k} blocks "
              f"({k * table.block_capacity - n} spare slots); blocks read random {H.blocks_read(graph, start):,}, "
              f"planted {H.blocks_read(graph, planted_placement(table, SEED)):,}, SHP {shp_blocks:,} ({t_ours:.1f} s)")
        if not have_presets:
            continue
        if n > 8192 and not large_kahypar:
            print("      KaHyPar not run on this instance (minutes per 2,048 vectors here; "
                  "--kahypar-large or BANDANA_KAHYPAR_LARGE=1 runs it)")
            continue
        for preset in presets:
            (parts, kh_blocks), t_kh = timed(lambda preset=preset, g=graph, k=k: kahypar_blocks_read(
                g, k, 0.03, str(paths[preset])))
            fullest = int(np.bincount(parts).max())
            print(f"      {preset}: {kh_blocks:,} ({t_kh:.1f} s, fullest block {fullest}); "
                  f"SHP / {preset} {shp_blocks / kh_blocks:.3f}")
            if preset == "kKaHyPar":
                ran += 1
                if spare:
                    ratios.append(shp_blocks / kh_blocks)
                if spare and n == 8192 and community == 32:
                    speedup = t_kh / t_ours
    return max(ratios, default=float("nan")), speedup, ran


SHARDS_RATES = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1)
SHARDS_SMAX = (2_000, 8_000, 32_000)
SHARDS_SEEDS = range(16)


def interval(values) -> str:
    v = np.asarray(values)
    half = 1.96 * v.std(ddof=1) / np.sqrt(v.size)
    return f"{v.mean():.4f} [{v.mean() - half:.4f}, {v.mean() + half:.4f}]"


def shards_comparison() -> float:
    """SHARDS-adj and fixed-size SHARDS against the exact curve on >= 1 M distinct keys; returns
    the mean MAE of SHARDS-adj at R = 0.01 over 16 hash seeds."""
    rng = np.random.default_rng(SEED)
    universe = 2_500_000
    keys = rng.permutation(universe)[rng.zipf(1.1, 8_000_000) % universe]
    distinct = int(np.unique(keys).size)
    sizes = np.unique(np.linspace(0.01, 1.0, 50) * distinct).astype(np.int64)
    exact, t_exact = timed(lambda: M.hit_rate_curve(keys, sizes))
    print(f"[4] SHARDS on {keys.size:,} accesses over {distinct:,} distinct keys (Zipf 1.1); exact curve "
          f"{t_exact:.1f} s; MAE over {len(SHARDS_SEEDS)} hash seeds, mean [95% interval]:")
    at_001, under = None, {}
    for rate in SHARDS_RATES:
        maes = [float(np.abs(M.shards_hit_rate_curve(keys, sizes, rate, seed=s) - exact).mean())
                for s in SHARDS_SEEDS]
        print(f"    SHARDS-adj R={rate:<6g} (~{rate * distinct:,.0f} keys): {interval(maes)}")
        for bound in (0.01, 0.003):
            if bound not in under and np.mean(maes) < bound:
                under[bound] = rate
        if rate == 0.01:
            at_001 = float(np.mean(maes))
    for s_max in SHARDS_SMAX:
        maes = [float(np.abs(M.shards_fixed_hit_rate_curve(keys, sizes, s_max, seed=s) - exact).mean())
                for s in SHARDS_SEEDS]
        raw = [float(np.abs(M.shards_fixed_hit_rate_curve(keys, sizes, s_max, seed=s, adjust=False) - exact).mean())
               for s in SHARDS_SEEDS[:4]]
        print(f"    fixed-size SHARDS s_max={s_max:,}: adj {interval(maes)}; without adj (4 seeds) {np.mean(raw):.4f}")
    for bound in (0.01, 0.003):
        print(f"    SHARDS-adj mean MAE first under {bound}: "
              + (f"R = {under[bound]:g}" if bound in under else f"not within R <= {SHARDS_RATES[-1]}"))
    return at_001


def queue_comparison(directory: str) -> float:
    """The queueing model's checks and this machine's O_DIRECT latencies; returns queue_mm1_error."""
    errors = []
    for rho in (0.3, 0.5, 0.8):
        r = Q.mm1_check(rho, num_requests=500_000, seed=SEED)
        errors.append(r.error)
        print(f"[5] M/M/1 rho={rho}: mean {r.mean_us:.2f} us (theory {r.mean_theory_us:.2f}), "
              f"p99 {r.p99_us:.1f} us (theory {r.p99_theory_us:.1f}), error {r.error:.2%}")
    for qd in (1, 16):
        print(f"    closed loop QD{qd}: {Q.closed_loop_iops(queue_depth=qd, num_reads=200_000) / 1e3:.1f}K IOPS "
              f"(P4800X figure: {108 if qd == 1 else 585}K)")
    m = ST.measure_direct_reads(directory, num_reads=10_000)
    print(f"    O_DIRECT random 4 KB reads, {m.where}, {m.when}:")
    for qd, lat in m.latency_us.items():
        p50, p99, p999 = np.percentile(lat, [50, 99, 99.9])
        print(f"      QD{qd:<2d} {m.iops[qd] / 1e3:6.1f}K IOPS  p50 {p50:6.0f} us  p99 {p99:6.0f} us  "
              f"p99.9 {p999:6.0f} us")
    service = Q.ServiceTimes.from_latencies(m.latency_us[1], "this run's QD1 O_DIRECT reads")
    exp = EV.Experiment.from_config(W.WorkloadConfig(seed=SEED))
    shp = exp.blocks(EV.learn_placements(exp.past, "shp", SEED))
    t = TH.minicache_thresholds(exp.past, shp, 0.1, seed=SEED).thresholds
    run = exp.simulate(shp, 0.1, t)
    for name, svc in (("exponential", Q.ServiceTimes()), ("measured QD1 shape", service)):
        q = E.queue_profile(run, E.UTILISATIONS, service=svc)
        print(f"    SHP + 10% cache, {name} service: " + ", ".join(
            f"{u:.0%} p50/p99/p99.9 {row[0]:.0f}/{row[1]:.0f}/{row[2]:.0f} us" for u, row in zip(E.UTILISATIONS, q)))
    return max(errors)


def bandwidth_comparison(cache_fraction: float = 0.1) -> float:
    exp = EV.Experiment.from_config(W.WorkloadConfig(seed=SEED))
    placements = {m: EV.learn_placements(exp.past, m, SEED) for m in ("sequential", "shp")}
    rows = E.compare_placements(exp, placements, cache_fraction, seed=SEED, oracle=True)

    def label(ts):
        return "(" + ", ".join("inf" if t == C.NO_PREFETCH else str(t) for t in ts) + ")"

    for name, r in rows.items():
        print(f"[6] {name:10s} fanout {r.fanout:.2f}  eff. bandwidth no cache {r.eb_no_cache:.4f}  "
              f"cache {cache_fraction:.0%} per-table t from past mini-caches {label(r.t)} hit {r.hit_rate:.3f} "
              f"eff. bandwidth {r.eb_cache:.4f}  blocks read {r.blocks_read:,}; t chosen with the answer "
              f"{label(r.oracle_t)} hit {r.oracle_hit_rate:.3f} eff. bandwidth {r.oracle_eb_cache:.4f}")
    s, q = rows["shp"], rows["sequential"]
    print(f"    gain no cache {s.eb_no_cache / q.eb_no_cache:.2f}x; "
          f"with cache (t from the past) {s.eb_cache / q.eb_cache:.2f}x "
          f"(blocks read {q.blocks_read / s.blocks_read:.2f}x fewer); "
          f"with t chosen with the answer {s.oracle_eb_cache / q.oracle_eb_cache:.2f}x")
    return s.eb_cache / q.eb_cache


SECTIONS = ("lru", "shp", "shards", "queue", "bandwidth")  # "lru" runs 1. and 2. (one trace file)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Bandana beside libCacheSim and KaHyPar; a full run ends with RESULT.")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=SECTIONS,
                        help="run only these sections (no RESULT line unless all run)")
    parser.add_argument("--instances", nargs="+", choices=tuple(INSTANCES), default=tuple(INSTANCES),
                        help="section 3's instances")
    parser.add_argument("--kahypar-large", action="store_true",
                        default=os.environ.get("BANDANA_KAHYPAR_LARGE") == "1",
                        help="run KaHyPar on the 65,536-vector instance too (also BANDANA_KAHYPAR_LARGE=1)")
    parser.add_argument("--kahypar-presets", type=pathlib.Path,
                        default=pathlib.Path(os.environ.get("BANDANA_KAHYPAR_PRESETS", KAHYPAR_DIR)),
                        help="folder holding KaHyPar's km1_*_sea20.ini presets (also BANDANA_KAHYPAR_PRESETS)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    print(f"machine: {os.cpu_count()} CPUs (shared with other jobs: timings are indicative)")
    if "lru" in args.only:
        with tempfile.TemporaryDirectory() as directory:
            path, keys = make_trace_file(directory)
            num_keys = int(np.unique(keys).size)
            print(f"trace: {NUM_REQUESTS:,} requests over {num_keys:,} vectors, "
                  f"{os.path.getsize(path) / 1e6:.0f} MB oracleGeneral")
            lru_equal, lru_speedup = lru_comparison(path, num_keys)
            sizes = np.unique(np.linspace(0.01, 1.0, 50) * num_keys).astype(np.int64)
            mrc_speedup, _ = mrc_comparison(path, sizes)
        del keys
    if "shp" in args.only:
        fanout_ratio, shp_speedup, kahypar_ran = shp_comparison(args.instances, args.kahypar_large,
                                                                args.kahypar_presets)
    if "shards" in args.only:
        shards_mae = shards_comparison()
    if "queue" in args.only:
        with tempfile.TemporaryDirectory(dir=pathlib.Path(__file__).resolve().parent) as directory:
            mm1_error = queue_comparison(directory)
    if "bandwidth" in args.only:
        gain = bandwidth_comparison()
    if set(args.only) != set(SECTIONS) or set(args.instances) != set(INSTANCES):
        print("partial run (--only / --instances): no RESULT line")
        return
    print(f"RESULT bandana lru_miss_equal={lru_equal} lru_speedup={lru_speedup:.2f} mrc_speedup={mrc_speedup:.1f} "
          f"shp_fanout_ratio={fanout_ratio:.3f} shp_speedup={shp_speedup:.1f} kahypar_instances={kahypar_ran} "
          f"shards_mae={shards_mae:.4f} queue_mm1_error={mm1_error:.4f} bandwidth_gain={gain:.2f}")


if __name__ == "__main__":
    main()
