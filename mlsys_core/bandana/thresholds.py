"""Choosing the admission threshold t per table, as Bandana does: miniature caches on past traffic.

Every combination of per-table t (len(thresholds) ** tables of them) is scored by one mini-cache, a
SHARDS sample of whole blocks of the past through one LRU of R x the cache's bytes, shared by the
tables as the real cache is (`minicache_thresholds`); the combination of highest sampled hit rate
wins. `oracle_thresholds` scores every combination on the future instead: an upper bound that reads
the answer, never Bandana's rule.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.cache import NO_PREFETCH, CacheConfig, CacheResult, simulate_cache
from mlsys_core.bandana.evaluation import Experiment
from mlsys_core.bandana.mrc import shards_keep
from mlsys_core.bandana.placement import BlockMap
from mlsys_core.bandana.trace import Trace

THRESHOLDS = (0, 1, 2, 4, 8, NO_PREFETCH)  # the t tried per table (NO_PREFETCH: admit no neighbour)
MINI_RATE = 0.25  # SHARDS rate of the mini-caches that choose t (the rate bandana.minicache_t measures)
MAX_COMBINATIONS = 4096  # per-table t combinations searched exhaustively


@dataclasses.dataclass(frozen=True, eq=False)
class ThresholdChoice:
    """Per-table admission thresholds picked from every combination, and what each scored."""

    combinations: np.ndarray  # (n, tables) every combination of per-table t tried
    hit_rates: np.ndarray  # (n,) the hit rate each combination scored
    source: str  # what was simulated to score them

    @property
    def best(self) -> int:
        """Row of the chosen combination (ties: the first, lower t first)."""
        return int(np.argmax(self.hit_rates))

    @property
    def thresholds(self) -> tuple[int, ...]:
        """The chosen t, one per table."""
        return tuple(int(t) for t in self.combinations[self.best])

    @property
    def hit_rate(self) -> float:
        """The hit rate of the chosen combination, as its own simulation scored it."""
        return float(self.hit_rates[self.best])


def _combinations(num_tables: int, thresholds) -> np.ndarray:
    ts = [validate.integer(f"thresholds[{i}]", t, 0) for i, t in enumerate(validate.instance(
        "thresholds", thresholds, (tuple, list, np.ndarray), "a non-empty list of ints >= 0"))]
    if not ts:
        raise ValueError("thresholds must be a non-empty list of ints >= 0, got an empty list")
    if len(ts) ** num_tables > MAX_COMBINATIONS:
        raise ValueError(f"{len(ts)} thresholds over {num_tables} tables make {len(ts) ** num_tables} combinations; "
                         f"at most {MAX_COMBINATIONS} are searched: pass fewer thresholds")
    return np.array(list(itertools.product(ts, repeat=num_tables)), dtype=np.int64).reshape(-1, num_tables)


def minicache_thresholds(past: Trace, blocks: BlockMap, cache_fraction: float, thresholds=THRESHOLDS,
                         rate: float = MINI_RATE, seed: int = 0, warmup_fraction: float = 0.5) -> ThresholdChoice:
    """Per-table t chosen, as Bandana chooses it, by miniature caches on past traffic only.

    The past is cut in time: admission counts come from its first `warmup_fraction`, scaled up to the
    length of the whole past, and the mini-caches replay the rest, just as the future is later scored
    with counts from the whole past (unscaled, the replay's counts would be about half the future's, and
    a t would admit as a t twice as large would in the future). Each combination of per-table t is one
    mini-cache: the lookups of a SHARDS sample of whole blocks (whole blocks, so a prefetch still brings
    its sampled neighbours) through one LRU of rate x `cache_fraction` x all table bytes, shared by the
    tables. Nothing here sees the future.

    Args:
        past: the trace the thresholds learn on.
        blocks: the placement's block layout of every table of `past`.
        cache_fraction: the DRAM cache, as a fraction of all table bytes, in (0, 1].
        thresholds: the t tried per table (ints >= 0).
        rate: the SHARDS sampling rate of the mini-caches, in (0, 1].
        seed: the sampling hash's seed (int >= 0).
        warmup_fraction: the share of the past that only counts lookups, in (0, 1).
    """
    validate.instance("past", past, Trace)
    validate.instance("blocks", blocks, BlockMap)
    fraction = validate.probability("cache_fraction", cache_fraction, open_low=True)
    rate = validate.number("rate", rate, 0.0, 1.0, low_open=True)
    seed = validate.seed("seed", seed)
    warmup = validate.probability("warmup_fraction", warmup_fraction, open_low=True, open_high=True)
    combos = _combinations(len(past.tables), thresholds)
    num_keys = blocks.key_bytes.size
    if int(past.table_offsets[-1]) != num_keys:
        raise ValueError(f"blocks map {num_keys} keys, the past trace's tables hold {int(past.table_offsets[-1])}")
    warm, replay = past.split(warmup)
    counts = np.rint(np.bincount(warm.keys, minlength=num_keys) * (past.num_lookups / warm.num_lookups))
    counts = counts.astype(np.int64)
    if rate < 1:
        keep = shards_keep(np.arange(blocks.block_ptr.size - 1), rate, seed)[blocks.block_of][replay.keys]
        if not keep.any():
            raise ValueError(f"rate {rate} samples no lookup of the past trace (seed {seed}); raise the rate")
        replay = replay.select(keep)
    capacity = int(round(fraction * sum(t.table_bytes for t in past.tables) * rate))
    hits = [simulate_cache(replay, blocks, CacheConfig(capacity, tuple(c)), counts).hit_rate for c in combos]
    return ThresholdChoice(combos, np.array(hits), f"mini-caches (R={rate:g}) on the past")


@dataclasses.dataclass(frozen=True, eq=False)
class OracleThresholds:
    """Per-table t chosen with the answer, and the full simulation of the future at that t."""

    choice: ThresholdChoice  # every combination scored on the future
    run: CacheResult  # the best combination's simulation


def oracle_thresholds(exp: Experiment, blocks: BlockMap, cache_fraction: float,
                      thresholds=THRESHOLDS) -> OracleThresholds:
    """Per-table t "chosen with the answer": every combination fully simulated on the *future* that is
    then scored, the best kept. An upper bound on what any choice of t could reach (not Bandana's rule).

    Args:
        exp: the workload split in time.
        blocks: the placement's block layout of every table.
        cache_fraction: the DRAM cache, as a fraction of all table bytes, in (0, 1].
        thresholds: the t tried per table (ints >= 0).
    """
    validate.instance("exp", exp, Experiment)
    validate.probability("cache_fraction", cache_fraction, open_low=True)
    combos = _combinations(len(exp.future.tables), thresholds)
    runs = [exp.simulate(blocks, cache_fraction, tuple(c)) for c in combos]
    choice = ThresholdChoice(combos, np.array([r.hit_rate for r in runs]),
                             "t chosen with the answer (full simulation of the future)")
    return OracleThresholds(choice, runs[choice.best])
