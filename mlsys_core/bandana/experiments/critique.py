"""Section 5 of notebook 02, The survey's critique: NVM endurance under skewed refresh rates, and a
pod's memory bill on NVM behind a DRAM cache over the DRAM / NVM price ratio.

(The latency-tail critique reads `system.queue_profile` and `study.latency_tails`.)
"""

from __future__ import annotations

import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.nvm import MemoryPrices, NVMDevice, endurance, memory_cost_usd, skewed_refresh_rates
from mlsys_core.seeds import DEFAULT_SEEDS


def drives_over_budget(
    cv: float,
    seeds=DEFAULT_SEEDS,
    num_tables: int = 200,
    mean_per_day: float = 15.0,
    table_gb=(50.0, 300.0),
    device: NVMDevice = NVMDevice(),
) -> np.ndarray:
    """(len(seeds),) fraction of drives written more than the rated drive-writes-per-day, when tables
    of uniform random size fill the drives and are refreshed at lognormal rates. Seed s draws both.

    Args:
        cv: the coefficient of variation of the tables' refreshes per day (>= 0).
        seeds: one draw of sizes and rates each (ints >= 0).
        num_tables: tables laid over the drives (int >= 1).
        mean_per_day: the mean refreshes per day of a table.
        table_gb: (low, high) table size in GB, drawn uniformly.
        device: the NVM drive (capacity and rated drive writes per day).
    """
    validate.integer("num_tables", num_tables, 1)
    lo, hi = (validate.positive("table_gb", g) for g in table_gb)
    out = []
    for s in validate.seeds("seeds", seeds):
        sizes = np.random.default_rng(s).uniform(lo * 1e9, hi * 1e9, num_tables)
        out.append(
            endurance(sizes, skewed_refresh_rates(num_tables, mean_per_day, cv, seed=s), device).fraction_over_budget
        )
    return np.array(out)


def pod_cost_factor(
    price_ratio: float,
    cache_fraction: float = 0.1,
    chips: int = 1000,
    bytes_per_chip: float = 32e9,
    dram_usd_per_gb: float = MemoryPrices().dram_usd_per_gb,
) -> float:
    """How many times cheaper a pod's memory gets on NVM with a DRAM cache: all-DRAM cost /
    (NVM + DRAM cache) cost.

    Args:
        price_ratio: DRAM's price per GB over NVM's (> 0).
        cache_fraction: the DRAM cache, as a fraction of the pod's memory bytes, in [0, 1].
        chips: the pod's chips (int >= 1).
        bytes_per_chip: memory bytes per chip.
        dram_usd_per_gb: DRAM's price, US$ per GB.
    """
    ratio = validate.positive("price_ratio", price_ratio)
    prices = MemoryPrices(dram_usd_per_gb, dram_usd_per_gb / ratio)
    total = validate.integer("chips", chips, 1) * validate.positive("bytes_per_chip", bytes_per_chip)
    cost = memory_cost_usd(total, validate.probability("cache_fraction", cache_fraction) * total, prices)
    return cost.all_dram_usd / cost.nvm_plus_cache_usd
