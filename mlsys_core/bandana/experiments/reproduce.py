"""Section 3 of notebook 02, Reproduce: effective bandwidth by placement, t per table, DRAM saved, SHARDS.

`compare_placements` scores placements on one workload; `seed_study` measures the seeded claims on
one small workload per (affinity, seed); `threshold_table` / `minicache_loss` set the mini-caches'
choice of t against the full simulation; `dram_saved_at_equal_hit_rate` and `shards_errors` give
the DRAM and SHARDS claims.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.cache import NO_PREFETCH
from mlsys_core.bandana.evaluation import PLACEMENTS, Experiment, learn_placements
from mlsys_core.bandana.experiments.system import UTILISATIONS, queue_profile
from mlsys_core.bandana.hypergraph import Hypergraph, blocks_read
from mlsys_core.bandana.mrc import MiniCacheGrid, cache_grid, hit_rate_curve, shards_hit_rate_curve
from mlsys_core.bandana.nvm import NVMDevice
from mlsys_core.bandana.placement import BlockMap, Placement, block_map, effective_bandwidth_no_cache, fanout
from mlsys_core.bandana.tables import default_tables
from mlsys_core.bandana.thresholds import MINI_RATE, THRESHOLDS, minicache_thresholds, oracle_thresholds
from mlsys_core.bandana.workload import WorkloadConfig
from mlsys_core.seeds import DEFAULT_SEEDS


@dataclasses.dataclass(frozen=True)
class PlacementScore:
    """One placement scored on the future trace: without the DRAM cache, then with it at the per-table t
    its mini-caches pick on the past; the `oracle_` fields (None unless asked for) at the t of highest
    future hit rate, the bound a choice of t made with the answer reaches."""

    fanout: float  # blocks read per request, no cache
    eb_no_cache: float  # effective bandwidth without the cache: useful / read bytes
    t: tuple  # the admission threshold per table the mini-caches pick on the past
    hit_rate: float  # of the future's lookups, with the cache at `t`
    eb_cache: float  # effective bandwidth with the cache at `t`
    blocks_read: int  # NVM blocks the future reads with the cache at `t`
    oracle_t: tuple | None = None  # the t per table of highest future hit rate
    oracle_hit_rate: float | None = None  # hit rate at `oracle_t`
    oracle_eb_cache: float | None = None  # effective bandwidth at `oracle_t`
    oracle_blocks_read: int | None = None  # NVM blocks read at `oracle_t`


def compare_placements(exp: Experiment, placements: dict, cache_fraction: float, thresholds=THRESHOLDS,
                       rate: float = MINI_RATE, seed: int = 0, oracle: bool = False) -> dict[str, PlacementScore]:
    """Per placement: fanout and effective bandwidth without cache, then with the cache at the
    per-table t that mini-caches pick on the past (`thresholds.minicache_thresholds`), scored on the
    future; with `oracle`, also at the per-table t of highest future hit rate (`thresholds.oracle_thresholds`).

    Args:
        exp: the workload split in time.
        placements: {name: one Placement per table}, learned on `exp.past`.
        cache_fraction: the DRAM cache, as a fraction of all table bytes, in (0, 1].
        thresholds: the t tried per table (ints >= 0).
        rate: the mini-caches' SHARDS sampling rate, in (0, 1].
        seed: the mini-caches' hash seed (int >= 0).
        oracle: also score the t chosen with the answer.
    """
    validate.instance("exp", exp, Experiment)
    validate.instance("placements", placements, dict, "a non-empty dict {name: placements per table}")
    if not placements:
        raise ValueError("placements must be a non-empty dict {name: placements per table}, got {}")
    validate.probability("cache_fraction", cache_fraction, open_low=True)
    oracle = validate.boolean("oracle", oracle)
    rows = {}
    for name, pl in placements.items():
        bm = exp.blocks(pl)
        choice = minicache_thresholds(exp.past, bm, cache_fraction, thresholds, rate, seed)
        r = exp.simulate(bm, cache_fraction, choice.thresholds)
        bound = {}
        if oracle:
            best = oracle_thresholds(exp, bm, cache_fraction, thresholds)
            bound = {"oracle_t": best.choice.thresholds, "oracle_hit_rate": best.run.hit_rate,
                     "oracle_eb_cache": best.run.effective_bandwidth, "oracle_blocks_read": best.run.total_blocks_read}
        rows[name] = PlacementScore(float(fanout(exp.future, bm).mean()), effective_bandwidth_no_cache(exp.future, bm),
                                    choice.thresholds, r.hit_rate, r.effective_bandwidth, r.total_blocks_read, **bound)
    return rows


def threshold_table(exp: Experiment, blocks: BlockMap, table: str, thresholds, cache_fractions, rate: float = 1.0,
                    seed: int = 0, unit: str = "block") -> MiniCacheGrid:
    """Hit rates of one table's cache (capacity = a fraction of that table's bytes) for every t x size
    (`mrc.cache_grid`); rate < 1 gives the SHARDS mini-cache estimate.

    Args:
        exp: the workload split in time; the table's future lookups are simulated.
        blocks: every table's block layout.
        table: the table's name.
        thresholds: the t of each row (ints >= 0).
        cache_fractions: the cache of each column, as a fraction of the table's bytes.
        rate: the SHARDS sampling rate, in (0, 1] (1: the full simulation).
        seed: the sampling hash's seed (int >= 0).
        unit: what the hash samples, "block" or "vector".
    """
    i = exp.future.table_index(table)
    t = exp.tables[i]
    sub = exp.future.only_table(table)
    lo, hi = exp.future.table_offsets[i], exp.future.table_offsets[i + 1]
    own = blocks.block_of[lo:hi]
    local = block_map((t,), (Placement(own - own.min(), t.block_capacity),))
    caps = (np.asarray(cache_fractions) * t.table_bytes).astype(np.int64)
    return cache_grid(sub, local, thresholds, caps, rate, seed, exp.past_counts[lo:hi], unit)


def minicache_loss(
    exp: Experiment, blocks: BlockMap, full: dict, thresholds, cache_fractions, rate: float, seed: int
) -> float:
    """Worst hit rate lost, over tables and cache sizes, by using the t that SHARDS mini-caches pick
    instead of the best t of the full simulation.

    Args:
        exp: the workload split in time.
        blocks: every table's block layout.
        full: {table name: MiniCacheGrid of the full simulation} (`threshold_table` at rate 1).
        thresholds: the t of the grids' rows (ints >= 0, sorted).
        cache_fractions: the grids' cache sizes, as fractions of each table's bytes.
        rate: the mini-caches' SHARDS sampling rate, in (0, 1].
        seed: the sampling hash's seed (int >= 0).
    """
    worst = 0.0
    for name, grid in full.items():
        mini = threshold_table(exp, blocks, name, thresholds, cache_fractions, rate=rate, seed=seed)
        rows = np.searchsorted(grid.thresholds, mini.best_threshold())
        if not np.array_equal(grid.thresholds[rows], mini.best_threshold()):
            raise ValueError("full and mini-cache grids must share thresholds (sorted)")
        loss = grid.hit_rates.max(axis=0) - grid.hit_rates[rows, np.arange(grid.hit_rates.shape[1])]
        worst = max(worst, float(loss.max()))
    return worst


def dram_saved_at_equal_hit_rate(capacities: np.ndarray, base_hit: np.ndarray, new_hit: np.ndarray, at: int) -> float:
    """1 - (capacity the new system needs to match the base hit rate at capacities[at]) / capacities[at];
    NaN if it never does. Hit rates are interpolated linearly in capacity.

    Args:
        capacities: (n,) cache sizes, increasing (any unit: the result is a fraction).
        base_hit: (n,) the base system's hit rate at each capacity.
        new_hit: (n,) the new system's hit rate at the same capacities.
        at: the index of the capacity whose base hit rate is matched.
    """
    target = base_hit[at]
    reach = np.maximum.accumulate(new_hit)  # best hit rate reachable with at most each capacity
    if reach[-1] < target:
        return float("nan")
    need = float(np.interp(target, reach, capacities))
    return 1.0 - need / float(capacities[at])


def shards_errors(keys: np.ndarray, cache_sizes, rate: float, seeds=DEFAULT_SEEDS) -> np.ndarray:
    """(len(seeds),) mean absolute error of the SHARDS hit-rate curve (one hash seed each) against the
    exact one-pass curve of an LRU.

    Args:
        keys: the accessed keys, in time order (whole numbers >= 0).
        cache_sizes: the cache sizes of the curves (objects).
        rate: the SHARDS sampling rate, in (0, 1].
        seeds: the sampling hash's seeds (ints >= 0).
    """
    exact = hit_rate_curve(keys, cache_sizes)
    seeds = validate.seeds("seeds", seeds)
    return np.array([np.abs(shards_hit_rate_curve(keys, cache_sizes, rate, seed=s) - exact).mean() for s in seeds])


# --- the claims' measurements: over seeds and over the assumptions that decide them ---------------

STUDY_CURVE = (0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2)  # DRAM cache sizes (fraction of table bytes)


@dataclasses.dataclass(frozen=True, eq=False)
class SeedStudy:
    """Per-seed measurements of small workloads (one workload and one placement seed per column).

    The gains are SHP / sequential effective bandwidth, each placement with the DRAM cache at the
    per-table t its mini-caches pick on the past unless said otherwise. The fields after `gain_no_cache`
    are measured only at `default_affinity`.
    """

    affinities: np.ndarray  # (len(affinities),) post-table co-access affinities swept
    seeds: np.ndarray  # (len(seeds),) the workload, placement and mini-cache hash seed of each column
    default_affinity: float  # where the remaining fields are measured
    gain_cache: np.ndarray  # (len(affinities), len(seeds)) with the cache
    gain_no_cache: np.ndarray  # (len(affinities), len(seeds)) without the cache
    gain_oracle: np.ndarray  # (len(seeds),) with both placements at the t chosen with the answer
    hit_rate_lost: np.ndarray  # (len(seeds),) SHP's hit rate at the oracle t minus at the mini-caches' t
    blocks_ratio: np.ndarray  # (len(seeds),) sequential / SHP post-table blocks read per request, no cache
    kmeans_ratio: np.ndarray  # (len(seeds),) k-means / SHP post-table blocks read per request, no cache
    dram_saved: np.ndarray  # (len(seeds),) DRAM SHP + its mini-cache t saves at the hit rate sequential
    #                         placement without prefetching reaches with `cache_fraction`
    tail_ratio: np.ndarray  # (len(tail_utilisations), len(seeds)) p99.9 / p50 request latency of SHP +
    #                         cache, queueing model (Poisson arrivals, exponential service)
    tail_utilisations: np.ndarray  # device loads of `tail_ratio`'s rows, fractions of its peak IOPS

    def tail_at(self, utilisation: float) -> np.ndarray:
        """(len(seeds),) p99.9 / p50 at one of `tail_utilisations`."""
        hit = np.flatnonzero(np.isclose(self.tail_utilisations, utilisation))
        if hit.size == 0:
            raise ValueError(f"utilisation must be one of {self.tail_utilisations.tolist()}, got {utilisation!r}")
        return self.tail_ratio[hit[0]]

    def gains_at(self, affinity: float) -> np.ndarray:
        """(len(seeds),) the with-cache gains at one of `affinities`."""
        hit = np.flatnonzero(np.isclose(self.affinities, affinity))
        if hit.size == 0:
            raise ValueError(f"affinity must be one of {self.affinities.tolist()}, got {affinity!r}")
        return self.gain_cache[hit[0]]


def _study_experiment(affinity: float, seed: int, scale: float, num_requests: int) -> Experiment:
    post, user = default_tables(scale)
    tables = (dataclasses.replace(post, affinity=float(affinity)), user)
    return Experiment.from_config(WorkloadConfig(tables=tables, num_requests=num_requests, seed=int(seed)))


def seed_study(
    seeds=DEFAULT_SEEDS,
    affinities=(0.2, 0.5, 0.8),
    default_affinity: float = 0.8,
    cache_fraction: float = 0.1,
    scale: float = 0.25,
    num_requests: int = 20_000,
    device: NVMDevice = NVMDevice(),
    utilisations=UTILISATIONS,
) -> SeedStudy:
    """The seeded claims of the notebook, measured on one small workload per (affinity, seed).

    Every workload learns placements and per-table t (mini-caches at `MINI_RATE`, hash seed = the
    seed) on its first half and is measured on its second. Only at `default_affinity` are the oracle
    t, k-means, the DRAM curve and the latency tail measured (they cost most).

    Args:
        seeds: the workload, placement and hash seeds (>= 2 ints >= 0).
        affinities: the post table's co-access affinities, each in [0, 1].
        default_affinity: the one of `affinities` where the costlier claims are measured.
        cache_fraction: the DRAM cache, as a fraction of all table bytes, in (0, 1].
        scale: the tables' size (`tables.default_tables`).
        num_requests: requests per workload, half past and half future.
        device: the NVM device of the latency tail.
        utilisations: the device loads of the latency tail, fractions of its peak IOPS in (0, 1).
    """
    seeds = list(validate.seeds("seeds", seeds))
    affinities = [validate.probability("affinities[i]", a) for a in affinities]
    if len(seeds) < 2 or not affinities:
        raise ValueError(f"seed_study needs >= 2 seeds and >= 1 affinity, got {seeds}, {affinities}")
    if default_affinity not in affinities:
        raise ValueError(f"default_affinity must be one of affinities {affinities}, got {default_affinity!r}")
    validate.probability("cache_fraction", cache_fraction, open_low=True)
    gains = np.empty((2, len(affinities), len(seeds)))
    extra = np.empty((5, len(seeds)))
    utilisations = [validate.number("utilisations[i]", u, 0.0, 1.0, low_open=True, high_open=True)
                    for u in utilisations]
    tails = np.empty((len(utilisations), len(seeds)))
    curve = np.asarray(STUDY_CURVE)
    at = int(np.argmin(np.abs(curve - cache_fraction)))
    for i, a in enumerate(affinities):
        for j, seed in enumerate(seeds):
            exp = _study_experiment(a, seed, scale, num_requests)
            placements = {m: learn_placements(exp.past, m, seed) for m in ("sequential", "shp")}
            rows = compare_placements(exp, placements, cache_fraction, seed=seed, oracle=a == default_affinity)
            shp, seq = rows["shp"], rows["sequential"]
            gains[0, i, j] = shp.eb_cache / seq.eb_cache
            gains[1, i, j] = shp.eb_no_cache / seq.eb_no_cache
            if a != default_affinity:
                continue
            extra[0, j] = shp.oracle_eb_cache / seq.oracle_eb_cache
            extra[1, j] = shp.oracle_hit_rate - shp.hit_rate
            post = exp.tables[0]  # k-means for the post table only (the user table's costs most)
            g = Hypergraph.from_trace(exp.future, post.name)
            shp_blocks = blocks_read(g, placements["shp"][0])
            extra[2, j] = blocks_read(g, placements["sequential"][0]) / shp_blocks
            extra[3, j] = blocks_read(g, PLACEMENTS["kmeans"].learn(exp.past, post, seed)) / shp_blocks
            seq_map, shp_map = exp.blocks(placements["sequential"]), exp.blocks(placements["shp"])
            base = np.array([exp.simulate(seq_map, f, NO_PREFETCH).hit_rate for f in curve])
            new = np.array([exp.simulate(shp_map, f, shp.t).hit_rate for f in curve])
            extra[4, j] = dram_saved_at_equal_hit_rate(curve, base, new, at)
            q = queue_profile(exp.simulate(shp_map, cache_fraction, shp.t), utilisations, device, seed=seed)
            tails[:, j] = q[:, 2] / q[:, 0]
    return SeedStudy(
        np.asarray(affinities, dtype=float), np.asarray(seeds), float(default_affinity), gains[0], gains[1], *extra,
        tails, np.asarray(utilisations, dtype=float),
    )
