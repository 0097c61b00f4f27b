"""Paper 2 — Bandana: embedding tables on NVM read in 4 KB blocks, placed by SHP, cached in DRAM.

Modules: `workload` (tables, request generator), `trace` (trace files, libCacheSim format),
`placement` (sequential / random / k-means, fanout), `shp` (Social Hash Partitioner), `cache` (LRU
with threshold admission), `mrc` (one-pass hit-rate curves, SHARDS, mini-caches), `nvm` (device
model, endurance, cost), `queueing` (the device as a queue: arrivals, service times), `store` (real
file-backed block store), `experiments` (the paper's experiments as pure functions), `plots`.
NumPy + numba only: importing this never starts JAX.
"""

from mlsys_core.bandana.cache import NO_PREFETCH, CacheConfig, CacheResult, lru_misses, simulate_cache
from mlsys_core.bandana.experiments import (
    PLACEMENTS,
    THRESHOLDS,
    Experiment,
    compare_placements,
    learn_placements,
    minicache_thresholds,
    oracle_thresholds,
)
from mlsys_core.bandana.mrc import cache_grid, hit_rate_curve, shards_hit_rate_curve, stack_distances
from mlsys_core.bandana.nvm import NVMDevice, endurance, memory_cost_usd
from mlsys_core.bandana.placement import Placement, block_map, fanout
from mlsys_core.bandana.queueing import PoissonArrivals, TraceArrivals, simulate_queue
from mlsys_core.bandana.shp import Hypergraph, SHPConfig, shp_placement
from mlsys_core.bandana.store import BlockStore, StoreError, write_store
from mlsys_core.bandana.trace import Trace, load_trace, save_trace
from mlsys_core.bandana.workload import BLOCK_BYTES, EmbeddingTable, WorkloadConfig, default_tables, generate_trace

__all__ = [
    "BLOCK_BYTES", "NO_PREFETCH", "PLACEMENTS", "THRESHOLDS", "BlockStore", "CacheConfig", "CacheResult",
    "EmbeddingTable", "Experiment", "Hypergraph", "NVMDevice", "Placement", "PoissonArrivals", "SHPConfig",
    "StoreError", "Trace", "TraceArrivals",
    "WorkloadConfig", "block_map", "cache_grid", "compare_placements", "default_tables", "endurance", "fanout",
    "generate_trace", "hit_rate_curve", "learn_placements", "load_trace", "lru_misses", "memory_cost_usd",
    "minicache_thresholds", "oracle_thresholds",
    "save_trace", "shards_hit_rate_curve", "shp_placement", "simulate_cache", "simulate_queue", "stack_distances",
    "write_store",
]
