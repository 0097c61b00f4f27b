"""The strategies as objects: where parameters live between steps, where the update runs, and the
per-device part of the step those two layout rules imply.

A `Strategy` states two rules - `param_spec` (a parameter leaf's layout between steps) and
`update_spec` (the layout of its gradient, optimizer state and update) - and derives from them which
collectives the step issues: all-gather the parameters that are split, reduce the gradients to the
update layout (reduce-scatter, or all-reduce for a leaf kept whole), all-gather the new parameters
that live whole. `STRATEGIES` maps each name to its object; `register` adds one (ZeRO-2 or hybrid
sharding would be one more object).

A leaf keeps its shape: it is split into N equal blocks along its first dimension that N divides
(`shard_dim`, `block_spec`), or kept whole on every device if none does.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from mlsys_core import validate

from .blockwise import BlockLoss, call_block_loss


def pvary(x: jax.Array, axes: tuple[str, ...]) -> jax.Array:
    """Mark a replicated value as per-device, so its gradient stays local (no implicit psum)."""
    if hasattr(lax, "pcast"):
        return lax.pcast(x, axes, to="varying")
    return lax.pvary(x, axes)  # older JAX


def all_gather_replicated(x: jax.Array, axes: tuple[str, ...], axis: int = 0) -> jax.Array:
    """Tiled all-gather along `axis` whose result is typed replicated (it is: every device has it all)."""
    try:
        return lax.all_gather(x, axes, axis=axis, tiled=True, to="invarying")
    except (TypeError, ValueError):  # older JAX spells it all_gather_invariant
        from jax._src.lax.parallel import all_gather_invariant

        return all_gather_invariant(x, axes, axis=axis, tiled=True)


def shard_dim(shape: tuple[int, ...], n: int) -> int | None:
    """The dimension a leaf of `shape` is split along over `n` devices: the first one `n` divides
    (leading where possible), or None (kept whole) for scalars and shapes no dimension of which `n` divides."""
    for i, size in enumerate(shape):
        if size >= n and size % n == 0:
            return i
    return None


def block_spec(shape: tuple[int, ...], n: int, axes: tuple[str, ...]) -> P:
    """PartitionSpec splitting `shape` along `shard_dim` over `axes` (P() if it stays whole)."""
    d = shard_dim(tuple(shape), n)
    return P() if d is None else P(*([None] * d), axes)


def _spec_dim(spec: P) -> int | None:
    """The dimension a spec from `block_spec` splits (None for P())."""
    return next((i for i, s in enumerate(spec) if s is not None), None)


def _top_key(path) -> Any:
    """The top-level dict key of a leaf's path (None for a non-dict root)."""
    return getattr(path[0], "key", None) if path else None


def _accumulated_grads(fn: Callable, params, batch, micro_batches: int):
    """(loss, grads) of `fn` over `batch`, averaged over `micro_batches` equal parts taken in turn."""
    if micro_batches == 1:
        return jax.value_and_grad(fn)(params, batch)
    k = micro_batches
    parts = jax.tree.map(lambda x: x.reshape(k, x.shape[0] // k, *x.shape[1:]), batch)
    first = jax.value_and_grad(fn)(params, jax.tree.map(lambda x: x[0], parts))

    def add(acc, part):
        return jax.tree.map(jnp.add, acc, jax.value_and_grad(fn)(params, part)), None

    total, _ = lax.scan(add, first, jax.tree.map(lambda x: x[1:], parts))
    return jax.tree.map(lambda x: x / k, total)


@dataclasses.dataclass(frozen=True)
class Strategy:
    """A data-parallel strategy: where params live between steps and where the update runs.

    Subclasses override the two layout rules; `local_grads` (the per-device part of the step) and
    `finish` (back to the parameter layout) follow from them, so they are shared.
    """

    name: str = "strategy"  # the key it is registered under in `STRATEGIES`

    def param_spec(self, shape, n: int, axes: tuple[str, ...]) -> P:
        """Layout of a parameter leaf between steps."""
        raise NotImplementedError

    def update_spec(self, shape, n: int, axes: tuple[str, ...]) -> P:
        """Layout of a gradient / optimizer-state / update leaf of `shape`."""
        raise NotImplementedError

    def local_grads(self, loss_fn, layout, axes, n, cast, params, batch, remat=False, micro_batches=1,
                    per_block_gather=True, prefetch=False) -> tuple[Any, jax.Array]:
        """Per device, inside shard_map: gather the params that are split, take this device's loss and
        gradients, reduce the gradients to `update_spec` (reduce-scatter, or all-reduce if whole).

        For a `BlockLoss`, a split leaf of a block is not gathered here but inside its block, just in
        time, forward and backward (`block_runner`; unless `per_block_gather` is False); its gradient
        comes back reduce-scattered. Returns (gradients in the update layout, the mean loss).

        Args:
            loss_fn: `loss_fn(params, batch) -> scalar`, or a `BlockLoss`.
            layout: (treedef, ((shape, dtype name), ...)) of the parameters (`TrainState.layout`).
            axes: the mesh axes the batch is split over (names).
            n: devices along `axes` (count).
            cast: applied to each gradient before its collective (the wire dtype).
            params: this device's parameters, in `param_spec` layout.
            batch: this device's part of the batch.
            remat: recompute each block's activations in the backward pass.
            micro_batches: k > 1 cuts the local batch into k equal parts whose gradients are summed in
                a `lax.scan` (one part's activations live at a time) and reduced once at the end.
            per_block_gather: gather a block's split weights inside the block, not before the loss.
            prefetch: let block i+1's gather be issued during block i.
        """
        treedef, leaves = layout
        keyed = jax.tree_util.tree_leaves_with_path(params)
        blocks = set(loss_fn.blocks) if isinstance(loss_fn, BlockLoss) else set()
        dims = [_spec_dim(self.param_spec(shape, n, axes)) for shape, _ in leaves]
        late = [per_block_gather and d is not None and _top_key(path) in blocks for (path, _), d in zip(keyed, dims)]
        ready = [x if lt else pvary(x if d is None else all_gather_replicated(x, axes, d), axes)
                 for (_, x), d, lt in zip(keyed, dims, late)]
        ready = jax.tree.unflatten(treedef, ready)
        if blocks:
            gather_dims = {}
            for (path, _), d, lt in zip(keyed, dims, late):
                gather_dims.setdefault(_top_key(path), []).append(d if lt else -1)
            gather_dims = {k: jax.tree.unflatten(jax.tree.structure(params[k]), v)
                           for k, v in gather_dims.items() if k in blocks and max(v) >= 0}
            fn = functools.partial(call_block_loss, loss_fn, gather_dims, (axes, n, cast, remat, prefetch))
        else:
            fn = loss_fn
        loss, grads = _accumulated_grads(fn, ready, batch, micro_batches)
        out = []
        for g, (shape, dtype), lt in zip(jax.tree.leaves(grads), leaves, late):
            d = _spec_dim(self.update_spec(shape, n, axes))
            if not lt:
                g = cast(g)
                g = lax.pmean(g, axes) if d is None else lax.psum_scatter(g, axes, scatter_dimension=d, tiled=True) / n
            out.append(g.astype(dtype))
        return jax.tree.unflatten(treedef, out), lax.pmean(loss, axes)

    def finish(self, mesh: Mesh, layout, axes, n: int, new_params) -> Any:
        """From the update layout back to the parameter layout: all-gather leaves that live whole.

        Args:
            mesh: the trainer's mesh.
            layout: (treedef, ((shape, dtype name), ...)) of the parameters.
            axes: the mesh axes the update is split over (names).
            n: devices along `axes` (count).
            new_params: the updated parameters, in `update_spec` layout.
        """
        treedef, leaves = layout
        update = [self.update_spec(s, n, axes) for s, _ in leaves]
        param = [self.param_spec(s, n, axes) for s, _ in leaves]
        if update == param:
            return new_params

        def gather(*xs):
            return [x if u == p else all_gather_replicated(x, axes, _spec_dim(u))
                    for x, u, p in zip(xs, update, param)]

        out = jax.shard_map(gather, mesh=mesh, in_specs=tuple(update), out_specs=param)(*jax.tree.leaves(new_params))
        return jax.tree.unflatten(treedef, out)


@dataclasses.dataclass(frozen=True)
class Replicated(Strategy):
    """Everything whole on every device; gradients all-reduced; every device runs the full update."""

    name: str = "replicated"  # its key in `STRATEGIES`

    def param_spec(self, shape, n, axes) -> P:
        return P()

    def update_spec(self, shape, n, axes) -> P:
        return P()


@dataclasses.dataclass(frozen=True)
class WeightUpdateSharding(Strategy):
    """Params whole for compute; gradients reduce-scattered, 1/N of the update and its state per device."""

    name: str = "wus"  # its key in `STRATEGIES`

    def param_spec(self, shape, n, axes) -> P:
        return P()

    def update_spec(self, shape, n, axes) -> P:
        return block_spec(shape, n, axes)


@dataclasses.dataclass(frozen=True)
class FSDP(Strategy):
    """As WUS, and the params stay split between steps (all-gathered for the forward pass)."""

    name: str = "fsdp"  # its key in `STRATEGIES`

    def param_spec(self, shape, n, axes) -> P:
        return block_spec(shape, n, axes)

    def update_spec(self, shape, n, axes) -> P:
        return block_spec(shape, n, axes)


STRATEGIES: dict[str, Strategy] = {}
"""Every strategy by name: "replicated", "wus", "fsdp" (and any `register`-ed after them)."""


def register(strategy: Strategy) -> Strategy:
    """Add a strategy object to `STRATEGIES` under its name (then `Trainer(strategy=name)` finds it)."""
    validate.instance("strategy", strategy, Strategy, "a strategies.Strategy")
    STRATEGIES[strategy.name] = strategy
    return strategy


for _strategy in (Replicated(), WeightUpdateSharding(), FSDP()):
    register(_strategy)
