"""Notebook 01, sections 1 and 4 (the idea; Explore): one point of each of the notebook's two widgets.

`explore_config`: what one (devices, strategy, optimizer, width, gradient dtype) setting of the FFN
stack costs per device and per step, measured. `explore_scaling`: the cost model's time to train and
step-time shares over chip counts under a setting of its assumptions (section 1 draws its default).
Each function's defaults are its widget's opening setting; `plots.explore_<what>` draws the result.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from mlsys_core import backend, timing, validate

from .. import cost_model, inspection, models, optimizers, strategies
from .step_time import ffn_step

GRAD_DTYPES = {"float32": None, "bfloat16": jnp.dtype(jnp.bfloat16)}
"""The gradient dtypes on the wire `explore_config` offers: name -> `Trainer(grad_dtype=...)`."""


@dataclasses.dataclass(frozen=True)
class ConfigResult:
    """What one (devices, strategy, optimizer, width, dtype) setting costs per device and per step."""

    memory: inspection.MemoryPerDevice  # bytes one device holds between steps
    collective_bytes: dict  # {collective kind: result bytes per device}, as written (so bf16 shows)
    step_ms: float  # median milliseconds per step after warm-up
    params: int  # parameters of the model


def explore_config(devices: int = backend.MESH_DEVICES, strategy: str = "wus", optimizer: str = "adam",
                   width: int = 128, grad_dtype: str = "float32", batch: int = 64, repeats: int = 5,
                   seed: int = 0) -> ConfigResult:
    """Memory per device, collectives (as written, so bf16 shows) and median step time of the FFN stack
    `FFNStack(width, 4 * width, 4 blocks)` on a synthetic regression batch.

    Args:
        devices: devices in the 1-D data mesh (count).
        strategy: a name in `strategies.STRATEGIES`.
        optimizer: a name in `optimizers.OPTIMIZERS`, at learning rate 1e-3.
        width: the model width d_model (units; the FFN is 4 x width).
        grad_dtype: the gradients' dtype on the wire, a name in `GRAD_DTYPES`.
        batch: the global batch (examples; a multiple of `devices`).
        repeats: timed steps (after warm-up).
        seed: draws the initial weights (and, with seed + 1, the batch).
    """
    validate.seed("seed", seed)
    validate.choice("strategy", strategy, strategies.STRATEGIES)
    validate.choice("optimizer", optimizer, optimizers.OPTIMIZERS)
    validate.choice("grad_dtype", grad_dtype, GRAD_DTYPES)
    width = validate.integer("width", width, 1)
    model = models.FFNStack(d_model=width, d_ff=4 * width, blocks=4)
    params = model.init(jax.random.key(seed))
    host_batch = models.regression_batch(jax.random.key(seed + 1), batch, width)
    trainer, state, placed, lowered = ffn_step(model, params, host_batch, strategy, optimizer, devices,
                                               GRAD_DTYPES[grad_dtype])
    compiled = lowered.compile()
    memory = inspection.memory_per_device(trainer, state, compiled)
    comm = inspection.bytes_by_kind(inspection.collectives(lowered))
    result, _ = timing.time_steps(compiled, state, placed, repeats=repeats)
    return ConfigResult(memory, comm, 1e3 * result.median_s, models.parameter_count(params))


def explore_scaling(workload: str = "BERT-large", utilisation: float = 0.4, link_gb_per_s: float = 330.0,
                    grad_bits: int = 16, max_chips: int = 4096) -> cost_model.ScalingCurve:
    """`cost_model.scaling_curve` over 16, 32, ... `max_chips` chips for a named workload on TPU-v3
    with the given assumptions.

    Args:
        workload: a name in `cost_model.WORKLOADS`.
        utilisation: achieved fraction of peak FLOP/s, in (0, 1].
        link_gb_per_s: link bandwidth per chip (GB/s).
        grad_bits: bits per gradient value on the wire, 16 or 32.
        max_chips: the largest chip count (16 to `cost_model.MAX_CHIPS`).
    """
    validate.choice("workload", workload, cost_model.WORKLOADS)
    validate.choice("grad_bits", grad_bits, (16, 32))
    validate.integer("max_chips", max_chips, 16, cost_model.MAX_CHIPS)
    link_bytes_per_s = validate.positive("link_gb_per_s", link_gb_per_s) * 1e9
    chip = dataclasses.replace(cost_model.TPU_V3, utilisation=utilisation, link_bytes_per_s=link_bytes_per_s)
    w = dataclasses.replace(cost_model.WORKLOADS[workload], grad_bytes_per_param=grad_bits / 8)
    chips = [2**k for k in range(4, int(math.log2(max_chips)) + 1)]
    return cost_model.scaling_curve(w, chip, chips)
