"""The measurement behind each claim of `mlsys_core.claims.bandana`, as a function of its declared assumptions.

One function per claim, named after it: its keyword arguments are the claim's parameters (`Assumption.name`),
defaulting to their defaults, and it returns exactly what notebook 02 passes to `report.check` — one value
per independent run (workload seed or hash seed), or one number for a deterministic claim. The report calls
them once per non-default value of each parameter the notebook does not sweep, so the notebook takes its
headline from the same calls. The logic lives in `experiments`; the runs they share (SHP placements,
full-simulation grids) are memoised there, so a sweep pays only for what changes.
"""

from __future__ import annotations

import numpy as np

from mlsys_core import validate
from mlsys_core.bandana import experiments
from mlsys_core.bandana.nvm import NVMDevice
from mlsys_core.seeds import DEFAULT_SEEDS


@validate.numeric_arguments
def bandwidth_gain(affinity: float = 0.8, cache_fraction: float = 0.1) -> np.ndarray:
    """(5,) SHP + cache / sequential + cache effective bandwidth, each at the per-table t its mini-caches
    pick on the past; one small workload per seed (`experiments.placement_gains`)."""
    return experiments.placement_gains(affinity, cache_fraction, DEFAULT_SEEDS).with_cache


@validate.numeric_arguments
def blocks_per_request(affinity: float = 0.8) -> np.ndarray:
    """(5,) sequential / SHP post-table blocks read per request, no cache (`experiments.blocks_ratios`)."""
    return experiments.blocks_ratios(affinity, DEFAULT_SEEDS)


@validate.numeric_arguments
def kmeans_vs_shp(affinity: float = 0.8) -> np.ndarray:
    """(5,) k-means / SHP post-table blocks read per request, no cache (`experiments.kmeans_ratios`)."""
    return experiments.kmeans_ratios(affinity, DEFAULT_SEEDS)


@validate.numeric_arguments
def minicache_t(rate: float = 0.25, scale: float = 0.5) -> np.ndarray:
    """(5,) mean hit rate lost, over both tables and `experiments.MINI_FRACTIONS` cache sizes, by the t the
    mini-caches at sampling rate `rate` pick instead of the full simulation's best; one hash seed each, on
    the notebook's workload at `scale` with SHP placement (`experiments.minicache_study`)."""
    return experiments.minicache_study(rate, scale, DEFAULT_SEEDS).mean(axis=(1, 2))


@validate.numeric_arguments
def dram_saved(affinity: float = 0.8, cache_fraction: float = 0.1) -> np.ndarray:
    """(5,) fraction of DRAM SHP + its mini-caches' t saves at the hit rate a plain vector cache
    (sequential, t = inf) reaches with `cache_fraction` of the table bytes (`experiments.dram_saved`)."""
    return experiments.dram_saved(affinity, cache_fraction, DEFAULT_SEEDS)


@validate.numeric_arguments
def shards_mrc_error(sampled_keys: float = 8000) -> np.ndarray:
    """(5,) mean absolute error of fixed-size SHARDS' LRU hit-rate curve, at most `sampled_keys` keys tracked
    (one hash seed each), on the future of the notebook's workload, over 40 cache sizes from 1% to 50% of
    its distinct keys (`experiments.shards_fixed_errors`)."""
    keys = experiments.full_experiment().future.keys
    sizes = np.asarray(experiments.SHARDS_CURVE) * np.unique(keys).size
    return experiments.shards_fixed_errors(keys, sizes, validate.whole("sampled_keys", sampled_keys), DEFAULT_SEEDS)


@validate.numeric_arguments
def latency_tail(utilisation: float = 0.5, service_scv: float = 1.0) -> np.ndarray:
    """(5,) p99.9 / p50 request latency of SHP + cache through the queueing device model at `utilisation`
    of its peak IOPS, service times of squared coefficient of variation `service_scv`
    (`experiments.latency_tails`)."""
    return experiments.latency_tails((utilisation,), service_scv, seeds=DEFAULT_SEEDS)[0]


@validate.numeric_arguments
def drives_over_budget(cv: float = 1.0, mean_per_day: float = 15.0, rated_dwpd: float = 30.0) -> np.ndarray:
    """(5,) fraction of drives written more than `rated_dwpd` drive writes a day, tables refreshed at
    lognormal rates of mean `mean_per_day` and coefficient of variation `cv` (`experiments.drives_over_budget`)."""
    device = NVMDevice(rated_drive_writes_per_day=rated_dwpd)
    return experiments.drives_over_budget(cv, DEFAULT_SEEDS, mean_per_day=mean_per_day, device=device)


@validate.numeric_arguments
def pod_cost(price_ratio: float = 10.0, cache_fraction: float = 0.1) -> float:
    """All-DRAM cost / (NVM + DRAM cache) cost of a 1000-chip x 32 GB pod's memory
    (`experiments.pod_cost_factor`)."""
    return experiments.pod_cost_factor(price_ratio, cache_fraction=cache_fraction, chips=1000, bytes_per_chip=32e9)
