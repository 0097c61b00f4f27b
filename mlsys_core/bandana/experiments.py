"""The paper's experiments as pure functions: learn placements on the past, evaluate on the future.

Each function takes configurations and seeds and returns plain numbers / arrays, so notebooks,
widgets and the benchmark share one tested code path.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from mlsys_core.bandana.cache import NO_PREFETCH, CacheConfig, CacheResult, simulate_cache
from mlsys_core.bandana.mrc import cache_grid
from mlsys_core.bandana.nvm import NVMDevice, latency_percentiles
from mlsys_core.bandana.placement import (
    BlockMap, Placement, block_map, effective_bandwidth_no_cache, fanout, kmeans_placement, random_placement,
    sequential_placement,
)
from mlsys_core.bandana.shp import Hypergraph, SHPConfig, shp_placement
from mlsys_core.bandana.trace import Trace
from mlsys_core.bandana.workload import WorkloadConfig, default_tables, generate_trace, table_vectors

PLACEMENTS = ("sequential", "random", "kmeans", "shp")
THRESHOLDS = (0, 1, 2, 4, 8, NO_PREFETCH)


def learn_placements(past: Trace, method: str, seed: int = 0, shp: SHPConfig = SHPConfig()) -> tuple[Placement, ...]:
    """One placement per table of `past`, by `method` (one of PLACEMENTS); SHP learns from `past`."""
    if method not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {method!r}")
    out = []
    for t in past.tables:
        if method == "sequential":
            out.append(sequential_placement(t))
        elif method == "random":
            out.append(random_placement(t, seed))
        elif method == "kmeans":
            out.append(kmeans_placement(t, table_vectors(t, seed), seed))
        else:
            has_lookups = np.any(past.table == past.table_index(t.name))
            out.append(shp_placement(Hypergraph.from_trace(past, t.name), t.block_capacity, shp)
                       if has_lookups else sequential_placement(t))
    return tuple(out)


@dataclasses.dataclass(frozen=True, eq=False)
class Experiment:
    """A workload split in time: placements learn on `past`, every metric is measured on `future`."""

    config: WorkloadConfig
    past: Trace
    future: Trace
    past_counts: np.ndarray  # (num_keys,) lookups of each key in the past (admission counts)

    @staticmethod
    def from_config(config: WorkloadConfig, past_fraction: float = 0.5) -> "Experiment":
        past, future = generate_trace(config).split(past_fraction)
        num_keys = int(past.table_offsets[-1])
        return Experiment(config, past, future, np.bincount(past.keys, minlength=num_keys))

    @property
    def total_bytes(self) -> int:
        return int(sum(t.table_bytes for t in self.config.tables))

    def blocks(self, placements) -> BlockMap:
        return block_map(self.config.tables, placements)

    def simulate(self, blocks: BlockMap, cache_fraction: float, threshold: int) -> CacheResult:
        """The future through a cache of `cache_fraction` of all table bytes with threshold t."""
        if not 0 <= cache_fraction <= 1:
            raise ValueError(f"cache_fraction must be in [0, 1], got {cache_fraction!r}")
        return simulate_cache(self.future, blocks, CacheConfig(int(cache_fraction * self.total_bytes), int(threshold)),
                              self.past_counts)


def compare_placements(exp: Experiment, placements: dict, cache_fraction: float, thresholds=THRESHOLDS) -> dict:
    """Per placement: fanout and effective bandwidth without cache, then with the cache at the t of
    highest hit rate (as Bandana picks t). Returns {name: dict of metrics}."""
    rows = {}
    for name, pl in placements.items():
        bm = exp.blocks(pl)
        runs = [exp.simulate(bm, cache_fraction, t) for t in thresholds]
        best = int(np.argmax([r.hit_rate for r in runs]))
        r = runs[best]
        rows[name] = {
            "fanout": float(fanout(exp.future, bm).mean()),
            "eb_no_cache": effective_bandwidth_no_cache(exp.future, bm),
            "t": int(thresholds[best]),
            "hit_rate": r.hit_rate,
            "eb_cache": r.effective_bandwidth,
            "blocks_read": r.total_blocks_read,
        }
    return rows


def threshold_table(exp: Experiment, blocks: BlockMap, table: str, thresholds, cache_fractions, rate: float = 1.0,
                    seed: int = 0, unit: str = "block"):
    """Hit rates of one table's cache (capacity = fraction of that table's bytes) for every t x size;
    rate < 1 gives the SHARDS mini-cache estimate."""
    i = exp.future.table_index(table)
    t = exp.config.tables[i]
    sub = exp.future.only_table(table)
    lo, hi = exp.future.table_offsets[i], exp.future.table_offsets[i + 1]
    own = blocks.block_of[lo:hi]
    local = block_map((t,), (Placement(own - own.min(), t.block_capacity),))
    caps = (np.asarray(cache_fractions) * t.table_bytes).astype(np.int64)
    return cache_grid(sub, local, thresholds, caps, rate, seed, exp.past_counts[lo:hi], unit)


def dram_saved_at_equal_hit_rate(capacities: np.ndarray, base_hit: np.ndarray, new_hit: np.ndarray, at: int) -> float:
    """1 - (capacity the new system needs to match the base hit rate at capacities[at]) / capacities[at].

    Hit rates are interpolated linearly in capacity; the curves must be sampled at the same capacities.
    """
    target = base_hit[at]
    reach = np.maximum.accumulate(new_hit)  # best hit rate reachable with at most each capacity
    if reach[-1] < target:
        return float("nan")
    need = float(np.interp(target, reach, capacities))
    return 1.0 - need / float(capacities[at])


def latency_profile(result: CacheResult, device: NVMDevice = NVMDevice()) -> dict[float, float]:
    """p50 / p99 / p99.9 request latency (us) of a cache simulation through the device model."""
    return latency_percentiles(device.request_latency_us(result.blocks_read, result.hits_per_request))


@functools.lru_cache(maxsize=8)
def _explore_setup(post_lookups_per_request: float, placement: str, seed: int):
    post, user = default_tables(0.25)
    post = dataclasses.replace(post, lookups_per_request=float(post_lookups_per_request))
    exp = Experiment.from_config(WorkloadConfig(tables=(post, user), num_requests=20_000, seed=seed))
    return exp, exp.blocks(learn_placements(exp.past, placement, seed))


def explore(cache_fraction: float, threshold: int, placement: str, sampling_rate: float,
            post_lookups_per_request: float, seed: int = 0) -> dict:
    """One point of the design space on a small workload (for widgets): the full simulation of the
    post table's cache and its mini-cache estimate at `sampling_rate`, plus bandwidth and latency.
    `post_lookups_per_request` sets the table mix (the user table keeps 1 lookup per request)."""
    exp, blocks = _explore_setup(float(post_lookups_per_request), placement, seed)
    fractions = np.array([0.02, 0.05, 0.1, 0.2, 0.4])
    full = threshold_table(exp, blocks, "post", [threshold], fractions)
    mini = threshold_table(exp, blocks, "post", [threshold], fractions, rate=sampling_rate, seed=seed)
    res = exp.simulate(blocks, cache_fraction, threshold)
    post_share = float(np.mean(exp.future.table == 0))
    return {
        "fractions": fractions, "full": full.hit_rates[0], "mini": mini.hit_rates[0], "hit_rate": res.hit_rate,
        "effective_bandwidth": res.effective_bandwidth, "latency_us": latency_profile(res),
        "post_share": post_share, "placement": placement, "threshold": threshold, "rate": sampling_rate,
    }


def gain_vs_affinity(affinities, cache_fraction: float = 0.1, scale: float = 0.25, num_requests: int = 20_000,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """SHP / sequential effective-bandwidth gain, without and with the cache, as the post table's
    co-access strength (`affinity`: share of lookups from the request's community) varies."""
    no_cache, with_cache = [], []
    for a in affinities:
        post, user = default_tables(scale)
        tables = (dataclasses.replace(post, affinity=float(a)), user)
        exp = Experiment.from_config(WorkloadConfig(tables=tables, num_requests=num_requests, seed=seed))
        rows = compare_placements(exp, {m: learn_placements(exp.past, m, seed) for m in ("sequential", "shp")}, cache_fraction)
        no_cache.append(rows["shp"]["eb_no_cache"] / rows["sequential"]["eb_no_cache"])
        with_cache.append(rows["shp"]["eb_cache"] / rows["sequential"]["eb_cache"])
    return {"affinity": np.asarray(affinities, dtype=float), "no_cache": np.array(no_cache), "with_cache": np.array(with_cache)}
