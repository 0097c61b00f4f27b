"""Section 3 of notebook 02, Reproduce: effective bandwidth by placement, t per table, SHARDS.

`compare_placements` scores placements on one workload; `threshold_table` / `minicache_losses` set the
mini-caches' choice of t against the full simulation, and `minicache_study` measures it on the notebook's
workload (`full_experiment`) over hash seeds; `dram_saved_at_equal_hit_rate` turns two hit-rate curves
into the DRAM saved; `shards_errors` / `shards_fixed_errors` give SHARDS' error over hash seeds. (The
seeded claims on small workloads live in `study`.)
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.evaluation import Experiment, learn_placements
from mlsys_core.bandana.mrc import (
    MiniCacheGrid,
    cache_grid,
    hit_rate_curve,
    shards_fixed_hit_rate_curve,
    shards_hit_rate_curve,
)
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


def minicache_losses(
    exp: Experiment, blocks: BlockMap, full: dict, thresholds, cache_fractions, rate: float, seed: int
) -> np.ndarray:
    """(len(full), len(cache_fractions)) hit rate lost, per table and cache size, by using the t that SHARDS
    mini-caches pick instead of the best t of the full simulation (>= 0: the full simulation's best is best).

    Args:
        exp: the workload split in time.
        blocks: every table's block layout.
        full: {table name: MiniCacheGrid of the full simulation} (`threshold_table` at rate 1).
        thresholds: the t of the grids' rows (ints >= 0, sorted).
        cache_fractions: the grids' cache sizes, as fractions of each table's bytes.
        rate: the mini-caches' SHARDS sampling rate, in (0, 1].
        seed: the sampling hash's seed (int >= 0).
    """
    out = []
    for name, grid in full.items():
        mini = threshold_table(exp, blocks, name, thresholds, cache_fractions, rate=rate, seed=seed)
        rows = np.searchsorted(grid.thresholds, mini.best_threshold())
        if not np.array_equal(grid.thresholds[rows], mini.best_threshold()):
            raise ValueError("full and mini-cache grids must share thresholds (sorted)")
        out.append(grid.hit_rates.max(axis=0) - grid.hit_rates[rows, np.arange(grid.hit_rates.shape[1])])
    return np.array(out)


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


def shards_fixed_errors(keys: np.ndarray, cache_sizes, sampled_keys: int, seeds=DEFAULT_SEEDS) -> np.ndarray:
    """(len(seeds),) mean absolute error of fixed-size SHARDS' hit-rate curve (`mrc.shards_fixed_hit_rate_curve`,
    at most `sampled_keys` keys tracked, one hash seed each) against the exact one-pass curve of an LRU.

    Args:
        keys: the accessed keys, in time order (whole numbers >= 0).
        cache_sizes: the cache sizes of the curves (objects).
        sampled_keys: the most keys SHARDS tracks at once (int >= 1).
        seeds: the sampling hash's seeds (ints >= 0).
    """
    exact = hit_rate_curve(keys, cache_sizes)
    seeds = validate.seeds("seeds", seeds)
    return np.array([np.abs(shards_fixed_hit_rate_curve(keys, cache_sizes, sampled_keys, seed=s) - exact).mean()
                     for s in seeds])


# --- the notebook's full-size workload, shared by its cells and the claims' measures ------------------

FULL_SCALE = 0.5  # the notebook's table sizes (`tables.default_tables(scale)`)
REQUESTS_PER_SCALE = 100_000  # requests of a workload at scale 1 (the notebook's: 50,000 at FULL_SCALE)
MINI_FRACTIONS = (0.02, 0.05, 0.1, 0.2, 0.4)  # per-table cache sizes (fraction of the table's bytes) of t's choice
SHARDS_CURVE = tuple(np.linspace(0.01, 0.5, 40).tolist())  # cache sizes of the SHARDS curves (fraction of keys)


@functools.lru_cache(maxsize=4)
def full_experiment(scale: float = FULL_SCALE, seed: int = 0) -> Experiment:
    """The notebook's workload: the default tables at `scale`, `REQUESTS_PER_SCALE` x `scale` requests from
    `seed`, split in half (memoised: the notebook and the measures share it)."""
    scale = float(validate.positive("scale", scale))
    config = WorkloadConfig(tables=default_tables(scale), num_requests=int(round(REQUESTS_PER_SCALE * scale)),
                            seed=validate.seed("seed", seed))
    return Experiment.from_config(config)


@functools.lru_cache(maxsize=4)
def _shp_grids(scale: float, seed: int) -> tuple[BlockMap, dict]:
    exp = full_experiment(scale, seed)
    blocks = exp.blocks(learn_placements(exp.past, "shp", seed))
    return blocks, {t.name: threshold_table(exp, blocks, t.name, THRESHOLDS, MINI_FRACTIONS) for t in exp.tables}


@functools.lru_cache(maxsize=16)
def _minicache_study(rate: float, scale: float, seeds: tuple, workload_seed: int) -> np.ndarray:
    blocks, full = _shp_grids(scale, workload_seed)
    exp = full_experiment(scale, workload_seed)
    return np.array([minicache_losses(exp, blocks, full, THRESHOLDS, MINI_FRACTIONS, rate, s) for s in seeds])


def minicache_study(rate: float = MINI_RATE, scale: float = FULL_SCALE, seeds=DEFAULT_SEEDS,
                    workload_seed: int = 0) -> np.ndarray:
    """(len(seeds), tables, len(MINI_FRACTIONS)) hit rate lost by the mini-caches' t against the full
    simulation's best, on the notebook's workload at `scale` with SHP placement, one sampling hash seed
    per row (`minicache_losses`; memoised).

    Args:
        rate: the mini-caches' SHARDS sampling rate, in (0, 1].
        scale: the tables' size; requests grow with it (`full_experiment`).
        seeds: the sampling hash's seeds (ints >= 0).
        workload_seed: the workload's and SHP's seed (int >= 0).
    """
    rate = float(validate.number("rate", rate, 0.0, 1.0, low_open=True))
    seeds = tuple(int(s) for s in validate.seeds("seeds", seeds))
    return _minicache_study(rate, float(validate.positive("scale", scale)), seeds,
                            validate.seed("workload_seed", workload_seed))
