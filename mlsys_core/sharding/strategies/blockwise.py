"""Losses made of blocks, and what FSDP does between them: gather a block's weights just in time,
recompute the block in the backward pass (rematerialisation), prefetch the next block's gather.

A model opts in by writing its loss as a `BlockLoss`: every block goes through a runner,
`h = run_block(name, block_fn, params[name], h)`. On one device the runner just calls the block
(`run_plain`); under a strategy `block_runner` wraps each block in `recomputed_block`, whose custom
VJP gathers the block's weight shards forward, keeps only the block's inputs, and in the backward
pass gathers them again, recomputes the block and reduce-scatters its weight gradients.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax

from mlsys_core import validate


def run_plain(name: str, block_fn: Callable, block_params: Any, h: jax.Array) -> jax.Array:
    """The block runner on one device: just `block_fn(block_params, h)`.

    Args:
        name: the block's key in the params (not used here; a strategy's runner gathers by it).
        block_fn: `block_fn(block_params, h) -> h`.
        block_params: the block's parameters.
        h: the block's input activations.
    """
    return block_fn(block_params, h)


@dataclasses.dataclass(frozen=True)
class BlockLoss:
    """A loss whose model is a chain of blocks, so a strategy can act between them.

    `fn(params, batch, run_block) -> scalar` computes the loss and passes every block through
    `h = run_block(name, block_fn, params[name], h)` for each `name` in `blocks` (top-level keys of
    the params dict). Called as `loss(params, batch)` it is the ordinary one-device loss
    (`run_plain`), so `reference_train` and every strategy accept it. Under `fsdp` the trainer's
    runner all-gathers block `name`'s weights just before the block runs, and again in the backward
    pass, where the block is recomputed (`recomputed_block`), so one block's full weights are live at
    a time (FSDP proper); with `Trainer(remat=True)` every block is recomputed in the backward pass.
    """

    fn: Callable  # (params, batch, run_block) -> scalar loss
    blocks: tuple[str, ...]  # the params' top-level keys that are blocks, in the order they run

    def __post_init__(self):
        validate.callable_("fn", self.fn)
        object.__setattr__(self, "blocks", tuple(self.blocks))
        if not self.blocks or not all(isinstance(b, str) for b in self.blocks):
            raise ValueError(f"blocks must be a non-empty tuple of parameter keys, got {self.blocks!r}")

    def __call__(self, params, batch) -> jax.Array:
        return self.fn(params, batch, run_plain)


def _tie(tree, ct):
    """`tree` plus a zero that depends on the cotangent `ct`: the ops that read it can only run once
    the backward pass reaches this block. (XLA:CPU drops `optimization_barrier`, then merges a
    recomputation with the forward op it repeats; a data dependency it cannot merge. It does not fold
    x * 0 for floats, which would be wrong for inf and NaN.)"""
    zero = jnp.ravel(jax.tree.leaves(ct)[0])[0] * 0
    return jax.tree.map(lambda x: x + zero.astype(x.dtype), tree)


def recomputed_block(block_fn: Callable, gather: Callable | None = None,
                     scatter: Callable | None = None) -> Callable:
    """`run(p, h, anchor) = block_fn(gather(p), h)` whose backward pass gathers `p` again and
    recomputes the block.

    Forward: gather the block's weights once `anchor` is there (`h` itself, or with prefetch the
    previous block's input, so the gather can be issued while that block computes), run the block,
    keep only its inputs (`p` as given - for FSDP the shards - and `h`). Backward: gather again once
    the cotangent is there, recompute the block under `jax.vjp`, return (`scatter(dW)`, dh, 0). So
    the full weights and the block's activations live only while the block runs, forward or
    backward: FSDP's per-block gather and rematerialisation in one rule. Without `gather` (weights
    already whole) it is plain rematerialisation: only the activations are recomputed.
    """

    def whole(p, anchor):
        return p if gather is None else gather(_tie(p, anchor))

    @jax.custom_vjp
    def run(p, h, anchor):
        return block_fn(whole(p, anchor), h)

    def fwd(p, h, anchor):
        return block_fn(whole(p, anchor), h), (p, h, jnp.zeros_like(anchor))

    def bwd(res, ct):
        p, h, zero = res
        h = _tie(h, ct)
        _, vjp = jax.vjp(block_fn, whole(p, h), h)
        dw, dh = vjp(ct)
        return (dw if scatter is None else scatter(dw)), dh, zero

    run.defvjp(fwd, bwd)
    return run


def block_runner(gather_dims: dict, axes, n: int, cast: Callable, remat: bool, prefetch: bool = False) -> Callable:
    """A `run_block` for `BlockLoss`: plain, or `recomputed_block`, gathering each block's weight
    shards just in time where `gather_dims` says.

    A block that is gathered is always recomputed in the backward pass (its weights are gathered
    again there); `remat` recomputes the other blocks too (their activations are not kept). With
    `prefetch`, block i+1's forward gather depends only on block i's input, so a scheduler may issue
    it while block i computes (two blocks' weights whole at once instead of one). Make one runner
    per trace of the loss: it remembers the previous block's input.

    Args:
        gather_dims: block name -> a pytree of the split dimension of each of its leaves (-1 where the
            leaf is kept whole); empty for strategies that keep weights whole.
        axes: the mesh axes the shards are split over (names).
        n: how many devices hold one shard each (count).
        cast: applied to a gradient before its reduce-scatter (the wire dtype, e.g. bfloat16).
        remat: recompute every block's activations in the backward pass, gathered or not.
        prefetch: let block i+1's forward gather start while block i computes.
    """
    previous = []

    def run(name, block_fn, block_params, h):
        if name not in gather_dims:
            if not remat:
                return block_fn(block_params, h)
            return recomputed_block(block_fn)(block_params, h, h)
        dims = gather_dims[name]
        anchor = previous[-1] if prefetch and previous and previous[-1].shape == h.shape else h
        previous.append(h)

        def gather(shards):
            return jax.tree.map(lambda x, d: x if d < 0 else lax.all_gather(x, axes, axis=d, tiled=True),
                                shards, dims)

        def scatter(grads):  # cast for the wire as grad_dtype says; the mean over the n devices
            return jax.tree.map(
                lambda g, d: g if d < 0 else
                (lax.psum_scatter(cast(g), axes, scatter_dimension=d, tiled=True) / n).astype(g.dtype),
                grads, dims)

        return recomputed_block(block_fn, gather, scatter)(block_params, h, anchor)

    return run


def call_block_loss(loss: BlockLoss, gather_dims: dict, options: tuple, params, batch) -> jax.Array:
    """`loss` with a fresh `block_runner(gather_dims, *options)` (one per trace: a runner remembers the
    previous block's input).

    Args:
        loss: the loss made of blocks.
        gather_dims: as `block_runner`'s.
        options: `block_runner`'s (axes, n, cast, remat, prefetch).
        params: this device's parameters.
        batch: this device's part of the batch.
    """
    return loss.fn(params, batch, block_runner(gather_dims, *options))
