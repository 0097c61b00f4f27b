"""An NVM device model (Intel Optane P4800X figures), NVM endurance under table refreshes, memory cost.

The device turns block reads into time. A request issues its block reads together, so they run at
queue depth n; by Little's law each takes n / IOPS(n) and so does the batch. IOPS rises with queue
depth from the QD1 figure to the peak (interpolated in log2 of the depth) and stays there; batches
deeper than the peak depth run in waves. Spec figures (Intel Optane SSD DC P4800X product brief): 4 KB
random read 108K IOPS at QD1 (8.9 us mean latency), 585K IOPS at QD16 (2.23 GB/s), 30 drive writes per day
over 375 GB.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from mlsys_core import validate
from mlsys_core.bandana.tables import BLOCK_BYTES


@dataclasses.dataclass(frozen=True)
class NVMDevice:
    """Block-device model of an NVM SSD; defaults: Optane P4800X (measured 4 KB random reads).

    Args:
        qd1_iops: 4 KB random reads per second at queue depth 1.
        peak_iops: 4 KB random reads per second at `peak_queue_depth` and beyond (>= qd1_iops).
        peak_queue_depth: the queue depth where IOPS stops rising (int >= 1).
        capacity_bytes: the drive's bytes.
        rated_drive_writes_per_day: the endurance rating, whole-drive writes a day.
        dram_lookup_latency_us: a cached vector's latency (us; assumption: one DRAM access path).
    """

    qd1_iops: float = 108_000.0
    peak_iops: float = 585_000.0
    peak_queue_depth: int = 16
    capacity_bytes: int = 375 * 10**9
    rated_drive_writes_per_day: float = 30.0
    dram_lookup_latency_us: float = 0.1

    def __post_init__(self) -> None:
        for field in ("qd1_iops", "peak_iops", "rated_drive_writes_per_day"):
            validate.positive(field, getattr(self, field))
        if self.peak_iops < self.qd1_iops:
            raise ValueError(f"peak_iops ({self.peak_iops}) must be >= qd1_iops ({self.qd1_iops})")
        validate.integer("peak_queue_depth", self.peak_queue_depth, 1)
        validate.integer("capacity_bytes", self.capacity_bytes, 1)
        validate.number("dram_lookup_latency_us", self.dram_lookup_latency_us, 0.0)

    def iops(self, queue_depth: npt.ArrayLike) -> np.ndarray:
        """4 KB random-read IOPS at each queue depth (finite, >= 1)."""
        qd = validate.reals("queue_depth", queue_depth, 1.0)
        if self.peak_queue_depth == 1:
            return np.full(qd.shape, self.peak_iops)
        frac = np.clip(np.log2(qd) / np.log2(self.peak_queue_depth), 0.0, 1.0)
        return self.qd1_iops * (self.peak_iops / self.qd1_iops) ** frac

    def batch_latency_us(self, num_blocks: npt.ArrayLike) -> np.ndarray:
        """Time to read `num_blocks` blocks (finite, >= 0) issued together (0 for none), in microseconds."""
        n = validate.reals("num_blocks", num_blocks, 0.0)
        depth = np.clip(n, 1, self.peak_queue_depth)
        return np.where(n > 0, n / self.iops(depth) * 1e6, 0.0)

    def request_latency_us(self, blocks_read: npt.ArrayLike, lookups_hit: npt.ArrayLike) -> np.ndarray:
        """Per-request latency: the NVM batch plus DRAM time for cached vectors (counts >= 0)."""
        blocks = validate.reals("blocks_read", blocks_read, 0.0)
        hits = validate.reals("lookups_hit", lookups_hit, 0.0)
        if hits.shape not in ((), blocks.shape):
            raise ValueError(f"lookups_hit must be one count or one per request (shape {blocks.shape}), "
                             f"got shape {hits.shape}")
        return self.batch_latency_us(blocks) + self.dram_lookup_latency_us * hits

    @property
    def peak_read_bytes_per_s(self) -> float:
        """Bytes per second of 4 KB blocks at peak IOPS."""
        return self.peak_iops * BLOCK_BYTES

    def effective_bandwidth_bytes_per_s(self, useful_fraction: float) -> float:
        """Useful bytes per second when the device reads 4 KB blocks at peak and `useful_fraction` (in
        [0, 1]) is used."""
        return validate.probability("useful_fraction", useful_fraction) * self.peak_read_bytes_per_s


def latency_percentiles(
    latency_us: npt.ArrayLike, percentiles: npt.ArrayLike = (50.0, 99.0, 99.9)
) -> dict[float, float]:
    """{percentile: latency in us}; `percentiles` in [0, 100]."""
    latency_us = validate.reals("latency_us", latency_us)
    if latency_us.size == 0:
        raise ValueError("latency_us is empty")
    percentiles = validate.reals("percentiles", percentiles, 0.0, 100.0, ndim=1)
    return {float(p): float(np.percentile(latency_us, p)) for p in percentiles}


def skewed_refresh_rates(num_tables: int, mean_per_day: float = 15.0, cv: float = 0.5, seed: int = 0) -> np.ndarray:
    """(num_tables,) refreshes per day of each table, lognormal.

    Args:
        num_tables: tables (int >= 1).
        mean_per_day: the mean refreshes per day (> 0).
        cv: the coefficient of variation (>= 0); 0 gives every table the mean (the paper's 10-20
            refreshes a day, uniformly).
        seed: the draw's seed (int >= 0).
    """
    validate.integer("num_tables", num_tables, 1)
    validate.positive("mean_per_day", mean_per_day)
    validate.number("cv", cv, 0.0)
    seed = validate.seed("seed", seed)
    if cv == 0:
        return np.full(num_tables, float(mean_per_day))
    sigma2 = np.log1p(cv**2)
    rng = np.random.default_rng(seed)
    return mean_per_day * np.exp(rng.normal(-sigma2 / 2, np.sqrt(sigma2), num_tables))


@dataclasses.dataclass(frozen=True, eq=False)
class EnduranceReport:
    """Per-drive writes per day against the rated budget."""

    drive_writes_per_day: np.ndarray  # (num_drives,) bytes written a day, in drive capacities
    budget: float  # the rated drive writes per day

    @property
    def fraction_over_budget(self) -> float:
        """The share of drives written more than the budget."""
        return float(np.mean(self.drive_writes_per_day > self.budget))

    @property
    def worst(self) -> float:
        """The most-written drive's writes per day."""
        return float(self.drive_writes_per_day.max())


def endurance(
    table_bytes: npt.ArrayLike,
    refreshes_per_day: npt.ArrayLike,
    device: NVMDevice = NVMDevice(),
    fill_fraction: float = 0.9,
) -> EnduranceReport:
    """Drive writes per day when tables (in order) fill drives and each refresh rewrites its whole
    table. A table larger than a drive is striped over several.

    Args:
        table_bytes: (num_tables,) each table's bytes (> 0).
        refreshes_per_day: (num_tables,) each table's refreshes a day (>= 0).
        device: the drive (capacity and rating).
        fill_fraction: the share of each drive filled, in (0, 1].
    """
    sizes = validate.reals("table_bytes", table_bytes, ndim=1)
    rates = validate.reals("refreshes_per_day", refreshes_per_day, 0.0, ndim=1)
    if sizes.shape != rates.shape or sizes.size == 0:
        raise ValueError(f"table_bytes and refreshes_per_day must be of one non-zero length, got shapes "
                         f"{sizes.shape} and {rates.shape}")
    if np.any(sizes <= 0):
        i = int(np.argmax(sizes <= 0))
        raise ValueError(f"table_bytes must hold sizes > 0; table_bytes[{i}] is {float(sizes[i])!r}")
    validate.instance("device", device, NVMDevice)
    validate.number("fill_fraction", fill_fraction, 0.0, 1.0, low_open=True)
    usable = device.capacity_bytes * fill_fraction
    # Lay tables end to end over the drives; a drive's writes are the bytes of each table on it x rate.
    start = np.concatenate([[0.0], np.cumsum(sizes)[:-1]])
    end = start + sizes
    num_drives = int(np.ceil(end[-1] / usable))
    edges = np.arange(num_drives + 1) * usable
    overlap = np.clip(np.minimum(end[None, :], edges[1:, None]) - np.maximum(start[None, :], edges[:-1, None]), 0, None)
    written = overlap @ rates
    return EnduranceReport(written / device.capacity_bytes, device.rated_drive_writes_per_day)


@dataclasses.dataclass(frozen=True)
class MemoryPrices:
    """US$ per GB. Defaults are the survey's figures: ~$6.25/GB DRAM (32,000 GB for ~$200,000) and
    NVM about 10x cheaper per bit."""

    dram_usd_per_gb: float = 6.25  # US$ per GB of DRAM
    nvm_usd_per_gb: float = 0.625  # US$ per GB of NVM

    def __post_init__(self) -> None:
        for name in ("dram_usd_per_gb", "nvm_usd_per_gb"):
            object.__setattr__(self, name, validate.positive(name, getattr(self, name)))


@dataclasses.dataclass(frozen=True)
class MemoryCost:
    """Holding a model all in DRAM against on NVM behind a DRAM cache."""

    all_dram_usd: float  # every byte in DRAM (US$)
    nvm_plus_cache_usd: float  # every byte on NVM, plus the DRAM cache (US$)
    saving: float  # 1 - nvm_plus_cache_usd / all_dram_usd


def memory_cost_usd(
    model_bytes: float, dram_cache_bytes: float, prices: MemoryPrices = MemoryPrices()
) -> MemoryCost:
    """Cost of holding the embeddings all in DRAM vs on NVM with a DRAM cache."""
    validate.positive("model_bytes", model_bytes)
    validate.number("dram_cache_bytes", dram_cache_bytes, 0.0)
    validate.instance("prices", prices, MemoryPrices)
    gb = 1e9
    all_dram = model_bytes / gb * prices.dram_usd_per_gb
    nvm = model_bytes / gb * prices.nvm_usd_per_gb + dram_cache_bytes / gb * prices.dram_usd_per_gb
    return MemoryCost(all_dram, nvm, 1 - nvm / all_dram)
