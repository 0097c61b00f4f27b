"""Notebook 01, section 3 (Reproduce): what a device needs at the peak of a step - FSDP gathering one
block at a time against gathering everything, rematerialisation, gradient accumulation - read from
XLA's buffer assignment of the compiled step, and where FSDP's prefetch puts the weight gathers in
XLA's schedule.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import optax

from mlsys_core import backend, validate

from .. import inspection, models, optimizers, strategies

MEMORY_VARIANTS = {
    "replicated": ("replicated", {}),
    "wus": ("wus", {}),
    "fsdp, gather all": ("fsdp", {"per_block_gather": False}),
    "fsdp, per block": ("fsdp", {}),
    "wus + remat": ("wus", {"remat": True}),
    "wus, 4 micro-batches": ("wus", {"micro_batches": 4}),
    "fsdp, per block, 4 micro-batches": ("fsdp", {"micro_batches": 4}),
}
"""Named (strategy, Trainer options) settings whose XLA memory `memory_comparison` reads."""


@dataclasses.dataclass(frozen=True)
class MemoryComparison:
    """XLA's memory per device of the step under each named setting."""

    names: tuple[str, ...]  # names in `MEMORY_VARIANTS`
    memory: tuple[inspection.XlaMemory, ...]  # memory[i]: the step under names[i], bytes per device

    def __getitem__(self, name: str) -> inspection.XlaMemory:
        return self.memory[self.names.index(validate.choice("name", name, self.names))]

    def peak_ratio(self, name: str, baseline: str = "wus") -> float:
        """Peak bytes per device of `name` over those of `baseline`."""
        return self[name].peak_bytes / self[baseline].peak_bytes


def memory_comparison(model: models.FFNStack, batch: int = 16, devices: int = backend.MESH_DEVICES,
                      names=tuple(MEMORY_VARIANTS)[:4], optimizer: str = "adam",
                      seed: int = 0) -> MemoryComparison:
    """Compile (not run) the model's regression step under each named `MEMORY_VARIANTS` setting and
    read XLA's memory per device: arguments, outputs, temporaries, peak.

    Args:
        model: the FFN stack.
        batch: the global batch (examples; a multiple of `devices` times any micro-batch count).
        devices: devices in the 1-D data mesh (count).
        names: settings, names in `MEMORY_VARIANTS`.
        optimizer: a name in `optimizers.OPTIMIZERS`, at learning rate 1e-3.
        seed: draws the batch (with seed + 1); the weights' values do not enter the memory.
    """
    validate.instance("model", model, models.FFNStack, "a models.FFNStack")
    validate.seed("seed", seed)
    names = tuple(validate.choice("variant", n, tuple(MEMORY_VARIANTS)) for n in names)
    params = jax.eval_shape(model.init, jax.random.key(seed))
    params = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), params)
    host_batch = models.regression_batch(jax.random.key(seed + 1), batch, model.d_model)
    mesh = strategies.data_mesh(devices)
    rows = []
    for name in names:
        strategy, options = MEMORY_VARIANTS[name]
        trainer = strategies.Trainer(models.regression_loss(model), optimizers.make(optimizer, 1e-3), mesh,
                                     strategy, **options)
        state = trainer.init(params)
        rows.append(inspection.xla_memory(trainer.lower(state, trainer.shard_batch(host_batch)).compile()))
    return MemoryComparison(names, tuple(rows))


# ---- overlap: FSDP's forward prefetch in XLA's schedule ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class FsdpSchedule:
    """The forward pass of the FSDP step in XLA's schedule order."""

    prefetch: bool  # whether the step was built with FSDP's forward prefetch
    forward: tuple[tuple[str, int], ...]  # runs of ("gather" | "compute", how many ops) in schedule order
    async_collectives: bool  # the backend split collectives into start/done pairs (overlap is possible)
    temporaries_bytes: int  # XLA's temporaries of the step, bytes per device

    @property
    def gathers_before_first_block(self) -> int:
        """Weight all-gathers issued together before the first block's compute (the first run of
        gathers; the input's own ops may come before it): 2 per block whose weights are whole."""
        return next((n for what, n in self.forward if what == "gather"), 0)


def fsdp_schedule(model: models.FFNStack, prefetch: bool, batch: int = 16,
                  devices: int = backend.MESH_DEVICES) -> FsdpSchedule:
    """Compile the FFN stack's FSDP step (per-block gather, with or without `prefetch`) and read the
    forward pass's order of weight gathers ("gather": all-gathers of 2-D weights) and compute
    ("compute": fusions and matrix products) from the scheduled HLO.

    Args:
        model: the FFN stack.
        prefetch: build the step with FSDP's forward prefetch.
        batch: the global batch (examples; a multiple of `devices`).
        devices: devices in the 1-D data mesh (count).
    """
    validate.instance("model", model, models.FFNStack, "a models.FFNStack")
    trainer = strategies.Trainer(models.regression_loss(model), optax.sgd(0.1), strategies.data_mesh(devices),
                                 "fsdp", prefetch=validate.instance("prefetch", prefetch, bool, "True or False"))
    params = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), jax.eval_shape(model.init, jax.random.key(0)))
    state = trainer.init(params)
    compiled = trainer.lower(state, trainer.shard_batch(models.regression_batch(jax.random.key(1), batch,
                                                                                 model.d_model))).compile()
    rows = [r for r in inspection.schedule(compiled, ops=("all-gather", "dot", "fusion"))
            if not r.backward and len(r.shape) == 2]
    runs: list[list] = []
    for r in rows:
        what = "gather" if r.op.startswith("all-gather") else "compute"
        if runs and runs[-1][0] == what:
            runs[-1][1] += 1
        else:
            runs.append([what, 1])
    return FsdpSchedule(prefetch, tuple((w, n) for w, n in runs), inspection.has_async_collectives(compiled),
                        inspection.xla_memory(compiled).temporaries_bytes)


def shard_fraction(devices: int = backend.MESH_DEVICES, rows: int = 16, columns: int = 8) -> float:
    """Bytes of device 0's shard of a (rows x columns) float32 array split by rows over a 1-D mesh of
    `devices`, over the array's bytes (1/devices when `devices` divides `rows`): the start-here check.

    Args:
        devices: devices in the mesh (count).
        rows: rows of the array, split over the devices (a multiple of `devices`).
        columns: columns, whole on every device.
    """
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    devices = validate.integer("devices", devices, 1)
    rows = validate.integer("rows", rows, 1)
    if rows % devices:
        raise ValueError(f"rows must be a multiple of devices ({devices}), got {rows}")
    mesh = jax.make_mesh((devices,), ("data",), devices=backend.mesh_devices(devices))
    x = jax.device_put(jax.numpy.arange(rows * validate.integer("columns", columns, 1), dtype=jax.numpy.float32)
                       .reshape(rows, columns), NamedSharding(mesh, P("data")))
    return x.addressable_shards[0].data.nbytes / x.nbytes
