"""Data-parallel training steps on a device mesh: replicated, weight-update sharding (WUS) and FSDP.

Every strategy runs the forward and backward pass as the same per-device program under
`jax.shard_map` over the `data_axes` of a mesh, with the gradient collectives written out so the
compiled HLO shows them:

- `replicated`: all-reduce (pmean) the gradients; every device runs the full optimizer update.
- `wus` (weight-update sharding, Kumar et al. 2021 / Xu et al. 2020): reduce-scatter (psum_scatter)
  the gradients, update only this device's 1/N shard of weights and optimizer state, all-gather the
  new weights. Same bytes on the wire as an all-reduce; 1/N of the update work and optimizer memory.
- `fsdp`: as `wus`, but the weights also stay sharded between steps and are all-gathered for compute:
  for a `BlockLoss` (a model made of blocks) one block at a time, just before it runs, and again in
  the backward pass where the block is recomputed (`recomputed_block`), so XLA's peak per device falls.

Each strategy is a small object (`Strategy`) in `STRATEGIES`: two layout rules - where parameters live
between steps (`param_spec`) and where gradients, optimizer state and the update live
(`update_spec`) - from which the shared code derives init and the local step (which collectives to
issue: all-gather params that are sharded, reduce gradients to the update layout, all-gather the new
params if they live whole). Adding ZeRO-2 or hybrid sharding is adding an object and `register`-ing it.

Layout, and why every optax transform is exact. A leaf keeps its shape: it is split into N equal
blocks along its first dimension that N divides, or kept whole on every device if none does (a bias
of odd width; its update is then repeated on every device, which is exact but saves no memory). The
optimizer update runs *outside* `shard_map`, on the global view: the gradients, parameters and
optimizer state are ordinary full-shaped `jax.Array`s whose shardings say where the blocks are, and
XLA's SPMD partitioner runs each element-wise op on the local block and turns every cross-element
reduction - global norms (`clip_by_global_norm`), LAMB/LARS trust ratios, `adaptive_grad_clip`,
factored second moments - into a local sum plus an all-reduce. Masks (`optax.masked`, `add_decayed_
weights(mask=...)`) and `multi_transform` labels see the real shapes and tree, so they pick the
same leaves as on one device. The update is therefore the single-device program, up to the order of
float sums. No padding enters the optimizer's view, so nothing depends on padded zeros.

What cannot be made exact, and is refused with a `ValueError` naming it: a transform that calls a
collective over a named mesh axis itself (`lax.psum(x, "data")`, `lax.axis_index`): it assumes it
runs per device inside `shard_map`, and on the global view that axis does not exist. The *batch* is
never padded - that would change the loss - so a batch the data axes cannot divide raises ValueError.

The pieces, imported here so that callers write `strategies.Trainer`, `strategies.STRATEGIES`:

- `layouts`: `Strategy` and its three objects, the `STRATEGIES` registry and `register`, and the
  layout helpers (`shard_dim`, `block_spec`).
- `blockwise`: `BlockLoss`, `recomputed_block` and `block_runner` - per-block gather, remat, prefetch.
- `trainer`: `TrainState`, `Trainer`, `train`, `reference_train` and `data_mesh`.
"""

from .blockwise import BlockLoss, block_runner, call_block_loss, recomputed_block, run_plain
from .layouts import (
    FSDP,
    STRATEGIES,
    Replicated,
    Strategy,
    WeightUpdateSharding,
    all_gather_replicated,
    block_spec,
    pvary,
    register,
    shard_dim,
)
from .trainer import Trainer, TrainState, data_mesh, reference_train, train

__all__ = [
    "FSDP", "STRATEGIES", "BlockLoss", "Replicated", "Strategy", "TrainState", "Trainer", "WeightUpdateSharding",
    "all_gather_replicated", "block_runner", "block_spec", "call_block_loss", "data_mesh", "pvary",
    "recomputed_block", "reference_train", "register", "run_plain", "shard_dim", "train",
]
