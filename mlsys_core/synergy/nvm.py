"""Synergy 6: Bandana's cheap non-volatile memory (Paper 2) for a pod's memory.

The candidate is the optimizer state (Adam's or LAMB's two moments), read and written once per step:
`nvm_optimizer_state` holds each layout (replicated, weight-update sharded) against its own step of
Paper 1's cost model, with the drive delivering a share of its 4 KB-block peak as useful bytes, up to
Bandana's measured effective bandwidth (`bandana_effective_bandwidth`). `nvm_movable_memory` asks the
survey's question the other way round: how much of a chip's memory could live on NVM without slowing the
step, and what share of the memory bill that moves. `explore_nvm` is one point of notebook 05's explorer.
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


def pod_chip(link_gb_per_s: float = 330.0, utilisation: float = 0.4) -> cost_model.Chip:
    """Paper 1's cost model's TPU-v3 chip with this per-chip link (GB/s) and achieved utilisation."""
    return dataclasses.replace(cost_model.TPU_V3, link_bytes_per_s=validate.positive("link_gb_per_s", link_gb_per_s)
                               * 1e9, utilisation=validate.number("utilisation", utilisation, 0.0, 1.0,
                                                                  low_open=True))


def nvm_drive(peak_kiops: float = 585.0) -> NVMDevice:
    """An NVM drive that reads `peak_kiops` thousand 4 KB blocks a second at its peak queue depth (585: the
    Optane P4800X that `bandana.nvm.NVMDevice` models, 2.4 GB/s)."""
    return NVMDevice(peak_iops=validate.number("peak_kiops", peak_kiops, NVMDevice().qd1_iops / 1e3) * 1e3)


def nvm_optimizer_state(workload: str = "BERT-large", chips: int = 1024, hbm_bytes_per_chip: float = 32e9,
                        state_bytes_per_param: float = 8.0, useful_fraction: float = 1.0,
                        prices: MemoryPrices = MemoryPrices(), *, link_gb_per_s: float = 330.0,
                        utilisation: float = 0.4, overlap: bool = False,
                        peak_kiops: float = 585.0) -> NVMOptimizerState:
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
        link_gb_per_s: GB/s, each chip's link in the cost model (> 0).
        utilisation: the cost model's achieved fraction of peak FLOP/s, in (0, 1].
        overlap: whether the step hides its all-reduce under the compute (`cost_model.model_step_s`); the
            NVM stream is never hidden.
        peak_kiops: the drive's peak 4 KB reads per second, in thousands (`nvm_drive`).
    """
    wl, nvm, chip = pod_workload(workload), nvm_drive(peak_kiops), pod_chip(link_gb_per_s, utilisation)
    overlap = validate.boolean("overlap", overlap)
    chips = validate.integer("chips", chips, 1)
    validate.positive("hbm_bytes_per_chip", hbm_bytes_per_chip)
    validate.positive("state_bytes_per_param", state_bytes_per_param)
    useful_fraction = validate.probability("useful_fraction", useful_fraction, open_low=True)
    rate = nvm.effective_bandwidth_bytes_per_s(useful_fraction)
    cheaper = 1 - prices.nvm_usd_per_gb / prices.dram_usd_per_gb

    def layout(name: str, shards: int) -> NVMLayout:
        compute_s = cost_model.step_time(wl, chip, chips, name).compute_s
        step_s = cost_model.model_step_s(wl, chip, chips, overlap, name)
        state = wl.params * state_bytes_per_param / shards
        stream_s = 2 * state / rate
        return NVMLayout(state, stream_s, compute_s, step_s, (step_s + stream_s) / step_s,
                         min(state, hbm_bytes_per_chip) / hbm_bytes_per_chip * cheaper)

    return NVMOptimizerState(layout("replicated", 1), layout("wus", chips),
                             memory_cost_usd(chips * hbm_bytes_per_chip, 0.0, prices), useful_fraction, rate, chips)


@dataclasses.dataclass(frozen=True)
class NVMMovable:
    """How much of a chip's memory the NVM drive beside it can hold without slowing the step."""

    step_s: float  # s, the WUS step (Paper 1's cost model)
    movable_bytes_per_chip: float  # bytes the drive reads and writes back within one step, at most the HBM
    hbm_bytes_per_chip: float  # bytes of memory per chip
    memory_bill_saving: float  # fraction of the pod's memory bill saved by moving them (priced as DRAM)

    @property
    def movable_share(self) -> float:
        """Fraction of a chip's memory that can move to NVM."""
        return self.movable_bytes_per_chip / self.hbm_bytes_per_chip


def nvm_movable_memory(workload: str = "BERT-large", chips: int = 1024, hbm_bytes_per_chip: float = 32e9,
                       prices: MemoryPrices = MemoryPrices(), *, link_gb_per_s: float = 330.0,
                       utilisation: float = 0.4, overlap: bool = False, peak_kiops: float = 585.0) -> NVMMovable:
    """The memory a chip can move to NVM without slowing its step, and the bill that saves (the survey's sum).

    Memory a step uses must cross the drive once each way per step (read, then written back, as the
    optimizer state is); at best the transfers hide entirely behind the step (prefetched, as Bandana
    prefetches blocks), so the drive may take the whole step: it moves `step_s x rate / 2` bytes, at most
    the chip's HBM. The saving is that share of the memory bill times the price cut of NVM against DRAM.
    Memory a step never touches (a cold table) could move freely; a chip's HBM during training holds
    weights, activations and optimizer state, all touched every step.

    Args:
        workload: a `cost_model.WORKLOADS` name.
        chips: the pod's size (>= 1).
        hbm_bytes_per_chip: bytes of memory per chip (> 0).
        prices: USD per GB of DRAM and of NVM.
        link_gb_per_s: GB/s, each chip's link in the cost model (> 0).
        utilisation: the cost model's achieved fraction of peak FLOP/s, in (0, 1].
        overlap: whether the step hides its all-reduce under the compute.
        peak_kiops: the drive's peak 4 KB reads per second, in thousands (`nvm_drive`).
    """
    wl, chip = pod_workload(workload), pod_chip(link_gb_per_s, utilisation)
    chips = validate.integer("chips", chips, 1)
    hbm = validate.positive("hbm_bytes_per_chip", hbm_bytes_per_chip)
    rate = nvm_drive(peak_kiops).effective_bandwidth_bytes_per_s(1.0)
    step_s = cost_model.model_step_s(wl, chip, chips, validate.boolean("overlap", overlap), "wus")
    movable = min(step_s * rate / 2, hbm)
    cheaper = 1 - prices.nvm_usd_per_gb / prices.dram_usd_per_gb
    return NVMMovable(step_s, movable, hbm, movable / hbm * cheaper)


def explore_nvm(dram_usd_per_gb: float = 6.25, price_ratio: float = 10.0, chips: int = 1024) -> NVMOptimizerState:
    """BERT-large's optimizer state on NVM (`nvm_optimizer_state`) at these DRAM prices (USD per GB) and
    DRAM / NVM ratio, on `chips` chips; the defaults are the explorer's opening setting."""
    dram_usd_per_gb = validate.positive("dram_usd_per_gb", dram_usd_per_gb)
    price_ratio = validate.positive("price_ratio", price_ratio)
    return nvm_optimizer_state("BERT-large", chips=chips, prices=MemoryPrices(dram_usd_per_gb,
                                                                              dram_usd_per_gb / price_ratio))
