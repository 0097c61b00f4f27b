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

Each strategy is a small object (`Strategy`) in `REGISTRY`: two layout rules - where parameters live
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
"""

from __future__ import annotations

import dataclasses
import functools
import math
import traceback
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from mlsys_core import backend, validate


def pvary(x, axes: tuple[str, ...]):
    """Mark a replicated value as per-device, so its gradient stays local (no implicit psum)."""
    if hasattr(lax, "pcast"):
        return lax.pcast(x, axes, to="varying")
    return lax.pvary(x, axes)  # older JAX


def all_gather_replicated(x, axes: tuple[str, ...], axis: int = 0):
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


# ---- losses made of blocks: what FSDP gathers one at a time ---------------------------------------


def run_plain(name: str, block_fn: Callable, block_params, h):
    """The block runner on one device: just `block_fn(block_params, h)`."""
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

    fn: Callable
    blocks: tuple[str, ...]

    def __post_init__(self):
        validate.callable_("fn", self.fn)
        object.__setattr__(self, "blocks", tuple(self.blocks))
        if not self.blocks or not all(isinstance(b, str) for b in self.blocks):
            raise ValueError(f"blocks must be a non-empty tuple of parameter keys, got {self.blocks!r}")

    def __call__(self, params, batch):
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
    shards just in time where `gather_dims[name]` says (a pytree of the split dimension of each leaf
    of block `name`, -1 where it is kept whole; empty for strategies that keep weights whole).

    A block that is gathered is always recomputed in the backward pass (its weights are gathered
    again there); `remat` recomputes the other blocks too (their activations are not kept). With
    `prefetch`, block i+1's forward gather depends only on block i's input, so a scheduler may issue
    it while block i computes (two blocks' weights whole at once instead of one). Make one runner
    per trace of the loss: it remembers the previous block's input.
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


def _top_key(path) -> Any:
    """The top-level dict key of a leaf's path (None for a non-dict root)."""
    return getattr(path[0], "key", None) if path else None


def _call_block_loss(loss: BlockLoss, gather_dims: dict, options: tuple, params, batch):
    """The loss with a fresh `block_runner` (one per trace: it remembers the previous block's input)."""
    return loss.fn(params, batch, block_runner(gather_dims, *options))


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


# ---- strategies as objects -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Strategy:
    """A data-parallel strategy: where params live between steps and where the update runs.

    Subclasses override the two layout rules; `local_grads` (the per-device part of the step) and
    `finish` (back to the parameter layout) follow from them, so they are shared.
    """

    name: str = "strategy"

    def param_spec(self, shape, n: int, axes: tuple[str, ...]) -> P:
        """Layout of a parameter leaf between steps."""
        raise NotImplementedError

    def update_spec(self, shape, n: int, axes: tuple[str, ...]) -> P:
        """Layout of a gradient / optimizer-state / update leaf of `shape`."""
        raise NotImplementedError

    def local_grads(self, loss_fn, layout, axes, n, cast, params, batch, remat=False, micro_batches=1,
                    per_block_gather=True, prefetch=False):
        """Per device, inside shard_map: gather the params that are split, take this device's loss and
        gradients, reduce the gradients to `update_spec` (reduce-scatter, or all-reduce if whole).

        For a `BlockLoss`, a split leaf of a block is not gathered here but inside its block, just in
        time, forward and backward (`block_runner`; unless `per_block_gather` is False); its gradient
        comes back reduce-scattered; `prefetch` lets block i+1's gather be issued during block i.
        `remat` recomputes each block's activations backward. With
        `micro_batches` k > 1 the local batch is cut into k equal parts whose gradients are summed
        in a `lax.scan` (one part's activations live at a time) and reduced once at the end.
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
            fn = functools.partial(_call_block_loss, loss_fn, gather_dims, (axes, n, cast, remat, prefetch))
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

    def finish(self, mesh, layout, axes, n, new_params):
        """From the update layout back to the parameter layout: all-gather leaves that live whole."""
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

    name: str = "replicated"

    def param_spec(self, shape, n, axes):
        return P()

    def update_spec(self, shape, n, axes):
        return P()


@dataclasses.dataclass(frozen=True)
class WeightUpdateSharding(Strategy):
    """Params whole for compute; gradients reduce-scattered, 1/N of the update and its state per device."""

    name: str = "wus"

    def param_spec(self, shape, n, axes):
        return P()

    def update_spec(self, shape, n, axes):
        return block_spec(shape, n, axes)


@dataclasses.dataclass(frozen=True)
class FSDP(Strategy):
    """As WUS, and the params stay split between steps (all-gathered for the forward pass)."""

    name: str = "fsdp"

    def param_spec(self, shape, n, axes):
        return block_spec(shape, n, axes)

    def update_spec(self, shape, n, axes):
        return block_spec(shape, n, axes)


REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    """Add a strategy object to `REGISTRY` under its name (then `Trainer(strategy=name)` finds it)."""
    validate.instance("strategy", strategy, Strategy, "a strategies.Strategy")
    REGISTRY[strategy.name] = strategy
    return strategy


for _s in (Replicated(), WeightUpdateSharding(), FSDP()):
    register(_s)
STRATEGIES = tuple(REGISTRY)


def _failing_transform(err: BaseException) -> str:
    """The innermost optax-style function (`<maker>.<locals>.update_fn`) in the traceback: its maker's name."""
    names = [getattr(f.f_code, "co_qualname", f.f_code.co_name) for f, _ in traceback.walk_tb(err.__traceback__)]
    makers = []
    for q in names:
        parts = q.split(".<locals>.")
        makers += [parts[i - 1] for i in range(1, len(parts)) if parts[i].split(".")[0] in ("update_fn", "init_fn")]
    return makers[-1] if makers else "the optimizer"


@functools.partial(jax.tree_util.register_dataclass, data_fields=["params", "opt_state"], meta_fields=["layout"])
@dataclasses.dataclass(frozen=True)
class TrainState:
    """Parameters and optimizer state in a strategy's layout; `layout` (static) remembers the shapes.

    Every leaf has its ordinary shape; its sharding says whether each device holds it whole or one of
    N blocks (`Trainer.specs`). `Trainer.full_params` gives the pytree replicated on every device.
    """

    params: Any
    opt_state: Any
    layout: Any  # (treedef, ((shape, dtype name), ...)), hashable


def _layout(params) -> tuple:
    leaves, treedef = jax.tree.flatten(params)
    return treedef, tuple((tuple(x.shape), jnp.dtype(x.dtype).name) for x in leaves)


@dataclasses.dataclass(frozen=True)
class Trainer:
    """One data-parallel training step of `loss_fn(params, batch) -> scalar` under `strategy`.

    `strategy` names an object of `REGISTRY`. `data_axes` name the mesh axes the batch is split over
    (e.g. ("data",), or ("x", "y") for a 2-D mesh used as one data axis). `grad_dtype` (e.g.
    jnp.bfloat16) casts gradients for the collectives only - the paper's bfloat16 communication - and
    back to float32 for the update. `optimizer` is any optax transformation; under every strategy it
    sees the whole tree (see the module docstring), so it matches one device.

    For a `BlockLoss` (a model made of blocks): `remat` recomputes each block's activations in the
    backward pass instead of keeping them; under `fsdp`, `per_block_gather` (default) gathers each
    block's weights just before it runs, forward and backward, so one block's weights are whole at a
    time (False: all weights gathered before the forward pass, as a plain loss gets them);
    `prefetch` lets block i+1's gather start while block i computes (FSDP's forward prefetch).
    `micro_batches` k accumulates the gradient over k equal parts of each device's batch (the same
    gradient, up to rounding, with 1/k of the activations alive at once).
    """

    loss_fn: Callable
    optimizer: optax.GradientTransformation
    mesh: Mesh
    strategy: str = "replicated"
    data_axes: tuple[str, ...] = ("data",)
    grad_dtype: Any = None
    remat: bool = False
    micro_batches: int = 1
    per_block_gather: bool = True
    prefetch: bool = False

    def __post_init__(self):
        validate.choice("strategy", self.strategy, tuple(REGISTRY))
        validate.instance("mesh", self.mesh, Mesh, "a jax.sharding.Mesh")
        axes = (self.data_axes,) if isinstance(self.data_axes, str) else tuple(self.data_axes)
        object.__setattr__(self, "data_axes", axes)
        unknown = [a for a in axes if a not in self.mesh.axis_names]
        if not axes or unknown:
            raise ValueError(f"data_axes must be axes of the mesh {self.mesh.axis_names}, got {axes!r}")
        validate.callable_("loss_fn", self.loss_fn)
        validate.instance("optimizer", self.optimizer, optax.GradientTransformation, "an optax.GradientTransformation")
        if self.grad_dtype is not None and not jnp.issubdtype(self.grad_dtype, jnp.floating):
            raise ValueError(f"grad_dtype must be None or a float dtype, got {self.grad_dtype!r}")
        validate.instance("remat", self.remat, bool, "True or False")
        validate.instance("per_block_gather", self.per_block_gather, bool, "True or False")
        validate.instance("prefetch", self.prefetch, bool, "True or False")
        object.__setattr__(self, "micro_batches", validate.integer("micro_batches", self.micro_batches, 1))
        if self.remat and not isinstance(self.loss_fn, BlockLoss):
            raise ValueError("remat=True needs a loss_fn that is a strategies.BlockLoss (a model made of "
                             f"blocks) to know what to recompute, got {self.loss_fn!r}")

    @property
    def plan(self) -> Strategy:
        """The strategy object."""
        return REGISTRY[self.strategy]

    @property
    def num_shards(self) -> int:
        """N: devices the batch (and, for wus/fsdp, the weight update) is split over."""
        return math.prod(self.mesh.shape[a] for a in self.data_axes)

    # ---- layout -------------------------------------------------------------------------------
    def update_spec(self, shape) -> P:
        """Layout of a gradient / optimizer-state leaf of `shape` under this strategy."""
        return self.plan.update_spec(tuple(shape), self.num_shards, self.data_axes)

    def _params_like(self, layout):
        treedef, leaves = layout
        return jax.tree.unflatten(treedef, [jax.ShapeDtypeStruct(s, d) for s, d in leaves])

    def _opt_shapes(self, layout):
        """Shapes of the optimizer state; ValueError naming a transform that the global view cannot run."""
        params = self._params_like(layout)
        try:
            opt = jax.eval_shape(self.optimizer.init, params)
            jax.eval_shape(self.optimizer.update, params, opt, params)
        except NameError as err:  # an unbound mesh axis: the transform calls a collective itself
            raise ValueError(
                f"optimizer transform {_failing_transform(err)!r} cannot be made exact under {self.strategy!r}: "
                f"it runs a collective over a named mesh axis ({err}), but the update runs on the global view "
                "of the whole tree, where XLA computes every reduction across devices; use the transform "
                "without its own psum/axis_index"
            ) from None
        return opt

    def specs(self, layout) -> tuple:
        """(param specs, optimizer-state specs) as PartitionSpec pytrees for this strategy."""
        key = ("specs", layout)
        if key in self._steps:
            return self._steps[key]
        treedef, leaves = layout
        n, axes = self.num_shards, self.data_axes
        params = jax.tree.unflatten(treedef, [self.plan.param_spec(s, n, axes) for s, _ in leaves])
        opt = jax.tree.map(lambda s: self.update_spec(s.shape), self._opt_shapes(layout))
        self._steps[key] = params, opt
        return params, opt

    def _update_specs(self, layout):
        treedef, leaves = layout
        return jax.tree.unflatten(treedef, [self.update_spec(s) for s, _ in leaves])

    def _shardings(self, specs):
        return jax.tree.map(lambda s: NamedSharding(self.mesh, s), specs, is_leaf=lambda s: isinstance(s, P))

    def _constrain(self, tree, specs):
        return jax.lax.with_sharding_constraint(tree, self._shardings(specs))

    # ---- placement ----------------------------------------------------------------------------
    def put(self, tree, specs):
        """Host arrays -> global arrays with the given PartitionSpecs (works across processes)."""

        def one(x, spec):
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, NamedSharding(self.mesh, spec), lambda i: x[i])

        return jax.tree.map(one, tree, specs, is_leaf=lambda s: isinstance(s, P))

    def shard_batch(self, batch):
        """Split every batch leaf along dim 0 over the data axes; ValueError if N does not divide it."""
        n = self.num_shards * self.micro_batches
        for leaf in jax.tree.leaves(batch):
            if np.ndim(leaf) == 0 or np.shape(leaf)[0] % n:
                raise ValueError(
                    f"batch dimension 0 of size {np.shape(leaf)[0] if np.ndim(leaf) else 'scalar'} is not "
                    f"divisible by mesh axes {self.data_axes} of size {self.num_shards} times "
                    f"micro_batches={self.micro_batches}; use a multiple of {n}"
                )
        return self.put(batch, jax.tree.map(lambda _: P(self.data_axes), batch))

    # ---- init and step ------------------------------------------------------------------------
    def init(self, params) -> TrainState:
        """Place `params` (host or single-device arrays) and build the optimizer state, sharded per strategy."""
        layout = _layout(params)
        full = self.put(params, jax.tree.map(lambda _: P(), params))
        key = ("init", layout)
        if key not in self._steps:  # one compile per layout, however many inits (seeds) follow
            param_specs, opt_specs = self.specs(layout)
            update_specs = self._update_specs(layout)

            def init_fn(p):
                return p, self.optimizer.init(self._constrain(p, update_specs))

            out_shardings = (self._shardings(param_specs), self._shardings(opt_specs))
            self._steps[key] = jax.jit(init_fn, out_shardings=out_shardings)
        p, opt = self._steps[key](full)
        return TrainState(p, opt, layout)

    def _step(self, layout, params, opt_state, batch):
        """The whole step on global arrays: per-device gradients (shard_map), then the update on the
        global view (exact for any transform), then back to the parameter layout."""
        axes, n = self.data_axes, self.num_shards
        param_specs, opt_specs = self.specs(layout)
        update_specs = self._update_specs(layout)
        cast = (lambda g: g.astype(self.grad_dtype)) if self.grad_dtype is not None else (lambda g: g)
        local = functools.partial(self.plan.local_grads, self.loss_fn, layout, axes, n, cast, remat=self.remat,
                                  micro_batches=self.micro_batches, per_block_gather=self.per_block_gather,
                                  prefetch=self.prefetch)
        grads_fn = jax.shard_map(
            local, mesh=self.mesh,
            in_specs=(param_specs, P(axes)), out_specs=(update_specs, P()),
        )
        grads, loss = grads_fn(params, batch)
        blocks = self._constrain(params, update_specs)  # wus: each device slices its block (no traffic)
        updates, opt_state = self.optimizer.update(grads, opt_state, blocks)
        new = self._constrain(optax.apply_updates(blocks, updates), update_specs)
        return self.plan.finish(self.mesh, layout, axes, n, new), self._constrain(opt_state, opt_specs), loss

    @functools.cached_property
    def _steps(self) -> dict:
        """Jitted functions per parameter layout (a cache; the dataclass itself stays frozen)."""
        return {}

    def step_fn(self, state: TrainState) -> Callable:
        """The jitted step `(state, batch) -> (state, loss)` for states shaped like `state`."""
        layout = state.layout
        if layout not in self._steps:
            param_specs, opt_specs = self.specs(layout)

            def step(state, batch):
                p, opt, loss = self._step(state.layout, state.params, state.opt_state, batch)
                return TrainState(p, opt, state.layout), loss

            out = (TrainState(self._shardings(param_specs), self._shardings(opt_specs), layout),
                   NamedSharding(self.mesh, P()))
            self._steps[layout] = jax.jit(step, donate_argnums=0, out_shardings=out)
        return self._steps[layout]

    def step(self, state: TrainState, batch) -> tuple[TrainState, jax.Array]:
        """One training step on a batch already placed by `shard_batch`; returns (new state, mean loss)."""
        return self.step_fn(state)(state, batch)

    def lower(self, state: TrainState, batch):
        """The lowered step (call `.compile()` for XLA's optimised HLO, see `inspect.collectives`)."""
        return self.step_fn(state).lower(state, batch)

    def full_params(self, state: TrainState):
        """Ordinary parameter pytree (original shapes), replicated on every device."""
        if all(s == P() for s in jax.tree.leaves(self.specs(state.layout)[0], is_leaf=lambda s: isinstance(s, P))):
            return state.params
        key = ("full_params", state.layout)
        if key not in self._steps:
            self._steps[key] = jax.jit(lambda ps: ps, out_shardings=NamedSharding(self.mesh, P()))
        return self._steps[key](state.params)


def train(trainer: Trainer, params, batches) -> tuple[TrainState, list[float]]:
    """Run `trainer` over an iterable of host batches; returns the final state and the losses."""
    state = trainer.init(params)
    losses = []
    for batch in batches:
        state, loss = trainer.step(state, trainer.shard_batch(batch))
        # One step in flight at a time: XLA:CPU's simulated devices share a thread pool, and many
        # queued collective programs on a busy host can starve a rendezvous past its timeout.
        losses.append(float(np.asarray(jax.block_until_ready(loss).addressable_data(0))))
    return state, losses


@functools.lru_cache(maxsize=32)
def _reference_step(loss_fn: Callable, optimizer: optax.GradientTransformation) -> Callable:
    """The jitted one-device step for a (loss, optimizer) pair, built once (repeated seeds reuse it)."""

    @jax.jit
    def step(p, opt, batch):
        loss, g = jax.value_and_grad(loss_fn)(p, batch)
        updates, opt = optimizer.update(g, opt, p)
        return optax.apply_updates(p, updates), opt, loss

    return step


def reference_train(loss_fn: Callable, optimizer: optax.GradientTransformation, params,
                    batches, device=None) -> tuple[Any, list[float]]:
    """Plain single-device optax training, the ground truth the strategies must match.

    `device` (e.g. a mesh's first device, `mesh.devices.flat[0]`) pins the training there, so it is
    compared with a mesh on the same kind of device (a GPU's float32 matmuls round differently from
    the CPU devices a mesh may fall back to); by default it runs on JAX's default device.
    """
    if device is not None:
        params, batches = jax.device_put((params, list(batches)), device)
    try:
        step = _reference_step(loss_fn, optimizer)
    except TypeError:  # an unhashable transformation: build its step uncached
        step = _reference_step.__wrapped__(loss_fn, optimizer)
    opt = optimizer.init(params)
    losses = []
    for batch in batches:
        params, opt, loss = step(params, opt, batch)
        losses.append(float(loss))
    return params, losses


def data_mesh(n: int = backend.MESH_DEVICES, devices=None, axis: str = "data") -> Mesh:
    """A 1-D mesh of `n` devices with one `axis`, Auto axis type for shard_map.

    The devices are `backend.mesh_devices(n)` (the default backend's, else simulated CPU devices, else
    a `ValueError` naming the counts), or the first `n` of `devices` when given.
    """
    if devices is None:
        devices = backend.mesh_devices(n)
    else:
        devices = list(devices)
        n = validate.integer("n", n, 1, len(devices))
    return Mesh(np.array(devices[:n]), (axis,), axis_types=(jax.sharding.AxisType.Auto,))
