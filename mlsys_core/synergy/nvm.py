"""Synergy 6: Bandana's cheap non-volatile memory (Paper 2) for a pod's memory.

The candidate is the optimizer state (Adam's or LAMB's two moments), read and written once per step:
`nvm_optimizer_state` holds each layout (replicated, weight-update sharded) against its own step of
Paper 1's cost model, with the drive delivering a share of its 4 KB-block peak as useful bytes, up to
Bandana's measured effective bandwidth (`bandana_effective_bandwidth`). `explore_nvm` is one point of
notebook 05's explorer.
"""

from __future__ import annotations

import dataclasses

from mlsys_core import validate
from mlsys_core.bandana import evaluation as bandana_evaluation
from mlsys_core.bandana.nvm import MemoryCost, MemoryPrices, NVMDevice, memory_cost_usd
from mlsys_core.sharding import cost_model
from mlsys_core.synergy.common import pod_workload


def bandana_effective_bandwidth(placement: str = "shp", cache_fraction: float = 0.1, threshold: int = 2,
                                post_lookups_per_request: float = 4.0, seed: int = 0) -> float:
    """Useful / read bytes that Bandana measures for embedding lookups (notebook 02's small workload).

    Calls `bandana.evaluation.effective_bandwidth`: vectors placed in 4 KB blocks by `placement`, a DRAM
    cache of `cache_fraction` of the table bytes with admission threshold `threshold`, the future half of
    the trace through it. This is the share of each block read from NVM that the lookups actually use.

    Args:
        placement: a `bandana.evaluation.PLACEMENTS` name.
        cache_fraction: the DRAM cache's size, as a fraction of the table bytes.
        threshold: accesses before a prefetched vector is admitted to the cache (>= 0).
        post_lookups_per_request: mean lookups of the post table per request (> 0).
        seed: draws the workload and the placement.
    """
    validate.seed("seed", seed)
    return float(bandana_evaluation.effective_bandwidth(placement, cache_fraction, threshold,
                                                        post_lookups_per_request, seed))


@dataclasses.dataclass(frozen=True)
class NVMLayout:
    """One layout's optimizer state on the NVM drive beside each chip."""

    state_bytes_per_chip: float  # bytes of optimizer state each chip holds
    nvm_stream_s: float  # s, read + write of that state each step, no overlap
    step_compute_s: float  # s, the layout's own step's compute (Paper 1's cost model)
    step_s: float  # s, the layout's own step
    slowdown: float  # x, (step + stream) / step
    memory_bill_saving: float  # fraction of the pod's memory cost moved from DRAM prices to NVM's


@dataclasses.dataclass(frozen=True)
class NVMOptimizerState:
    """The optimizer state on NVM, replicated and weight-update sharded, and the survey's whole-memory sum."""

    replicated: NVMLayout  # every chip holds the whole state
    wus: NVMLayout  # every chip holds its 1/chips shard
    cost: MemoryCost  # every chip's HBM priced as DRAM against as NVM
    useful_fraction: float  # of each 4 KB block read that the state's reads use
    stream_bytes_per_s: float  # bytes/s, the drive's useful bytes at that fraction
    chips: int  # the pod's size


def nvm_optimizer_state(workload: str = "BERT-large", chips: int = 1024, hbm_bytes_per_chip: float = 32e9,
                        state_bytes_per_param: float = 8.0, useful_fraction: float = 1.0,
                        prices: MemoryPrices = MemoryPrices()) -> NVMOptimizerState:
    """Optimizer state (Adam/LAMB: m and v, 8 B per parameter) on one Optane drive per chip.

    Replicated, every chip reads and writes the whole state each step, and its step is the
    replicated step of Paper 1's cost model; with weight-update sharding only its 1/N shard, against
    the WUS step. The drive delivers `useful_fraction` of its 4 KB-block peak as useful bytes: 1 for
    a dense state streamed whole (every byte of every block is used), Bandana's measured effective
    bandwidth (`bandana_effective_bandwidth`) for a state read row by row like embedding lookups.
    `memory_bill_saving` is the fraction of the pod's memory cost (`hbm_bytes_per_chip` per chip, all
    priced as DRAM) saved by moving that state to NVM; `cost` is the survey's whole-memory
    comparison (`memory_cost_usd`).

    Args:
        workload: a `cost_model.WORKLOADS` name.
        chips: the pod's size (>= 1).
        hbm_bytes_per_chip: bytes of memory per chip (> 0).
        state_bytes_per_param: bytes of optimizer state per parameter (> 0).
        useful_fraction: share of each 4 KB block read that is used, in (0, 1].
        prices: USD per GB of DRAM and of NVM.
    """
    wl, nvm = pod_workload(workload), NVMDevice()
    chips = validate.integer("chips", chips, 1)
    validate.positive("hbm_bytes_per_chip", hbm_bytes_per_chip)
    validate.positive("state_bytes_per_param", state_bytes_per_param)
    useful_fraction = validate.probability("useful_fraction", useful_fraction, open_low=True)
    rate = nvm.effective_bandwidth_bytes_per_s(useful_fraction)
    cheaper = 1 - prices.nvm_usd_per_gb / prices.dram_usd_per_gb

    def layout(name: str, shards: int) -> NVMLayout:
        step = cost_model.step_time(wl, cost_model.TPU_V3, chips, name)
        state = wl.params * state_bytes_per_param / shards
        stream_s = 2 * state / rate
        return NVMLayout(state, stream_s, step.compute_s, step.total_s, (step.total_s + stream_s) / step.total_s,
                         min(state, hbm_bytes_per_chip) / hbm_bytes_per_chip * cheaper)

    return NVMOptimizerState(layout("replicated", 1), layout("wus", chips),
                             memory_cost_usd(chips * hbm_bytes_per_chip, 0.0, prices), useful_fraction, rate, chips)


def explore_nvm(dram_usd_per_gb: float = 6.25, price_ratio: float = 10.0, chips: int = 1024) -> NVMOptimizerState:
    """BERT-large's optimizer state on NVM (`nvm_optimizer_state`) at these DRAM prices (USD per GB) and
    DRAM / NVM ratio, on `chips` chips; the defaults are the explorer's opening setting."""
    dram_usd_per_gb = validate.positive("dram_usd_per_gb", dram_usd_per_gb)
    price_ratio = validate.positive("price_ratio", price_ratio)
    return nvm_optimizer_state("BERT-large", chips=chips, prices=MemoryPrices(dram_usd_per_gb,
                                                                              dram_usd_per_gb / price_ratio))
