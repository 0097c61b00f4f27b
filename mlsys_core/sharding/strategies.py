"""Data-parallel training steps on a device mesh: replicated, weight-update sharding (WUS) and FSDP.

Every strategy runs the same per-device program under `jax.shard_map` over the `data_axes` of a mesh,
with the collectives written out so the compiled HLO shows them:

- `replicated`: all-reduce (pmean) the gradients; every device runs the full optimizer update.
- `wus` (weight-update sharding, Kumar et al. 2021 / Xu et al. 2020): reduce-scatter (psum_scatter)
  the gradients, update only this device's 1/N shard of weights and optimizer state, all-gather the
  new weights. Same bytes on the wire as an all-reduce; 1/N of the update work and optimizer memory.
- `fsdp`: as `wus`, but the weights also stay sharded between steps and are all-gathered for compute.

Sharding layout: each parameter leaf is flattened and zero-padded to a multiple of N, then split
into N equal chunks. Padding (rather than an error) keeps any layer shape shardable, and it is exact:
padded entries have zero gradient, so SGD/momentum/Adam leave them at zero and they add nothing to the
layer norms of LAMB/LARS (`optimizers`). Optimizer-state leaves with a dimension are per-parameter
and sharded; scalar leaves (step counts) are replicated. The *batch* is never padded - that would
change the loss - so a batch the data axes cannot divide raises ValueError.
"""

from __future__ import annotations

import dataclasses
import functools
import math
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

STRATEGIES = ("replicated", "wus", "fsdp")


def pvary(x, axes: tuple[str, ...]):
    """Mark a replicated value as per-device, so its gradient stays local (no implicit psum)."""
    if hasattr(lax, "pcast"):
        return lax.pcast(x, axes, to="varying")
    return lax.pvary(x, axes)  # older JAX


def all_gather_replicated(x, axes: tuple[str, ...]):
    """Tiled all-gather along dim 0 whose result is typed replicated (it is: every device has it all)."""
    try:
        return lax.all_gather(x, axes, tiled=True, to="invarying")
    except (TypeError, ValueError):  # older JAX spells it all_gather_invariant
        from jax._src.lax.parallel import all_gather_invariant

        return all_gather_invariant(x, axes, tiled=True)


@functools.partial(jax.tree_util.register_dataclass, data_fields=["params", "opt_state"], meta_fields=["layout"])
@dataclasses.dataclass(frozen=True)
class TrainState:
    """Parameters and optimizer state in a strategy's layout; `layout` (static) remembers the shapes.

    `params` are full arrays (replicated, wus) or flat padded arrays sharded over the data axes
    (fsdp); use `Trainer.full_params` for the ordinary pytree.
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

    `data_axes` name the mesh axes the batch is split over (e.g. ("data",), or ("x", "y") for a
    2-D mesh used as one data axis). `grad_dtype` (e.g. jnp.bfloat16) casts gradients for the
    collectives only - the paper's bfloat16 communication - and back to float32 for the update.
    `optimizer` is any optax transformation; see `optimizers` for which are exact on shards.
    """

    loss_fn: Callable
    optimizer: optax.GradientTransformation
    mesh: Mesh
    strategy: str = "replicated"
    data_axes: tuple[str, ...] = ("data",)
    grad_dtype: Any = None

    def __post_init__(self):
        validate.choice("strategy", self.strategy, STRATEGIES)
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

    @property
    def num_shards(self) -> int:
        """N: devices the batch (and, for wus/fsdp, the weight update) is split over."""
        return math.prod(self.mesh.shape[a] for a in self.data_axes)

    # ---- layout -------------------------------------------------------------------------------
    def _chunk(self, size: int) -> int:
        return -(-size // self.num_shards)

    def _flat(self, x):
        """(…) -> (N * chunk,) zero-padded flat copy."""
        size = x.size
        return jnp.pad(x.reshape(-1), (0, self.num_shards * self._chunk(size) - size))

    def _unflat(self, flat, shape):
        return flat[: math.prod(shape)].reshape(shape)

    def _local_slice(self, x):
        chunk = self._chunk(x.size)
        return lax.dynamic_slice_in_dim(self._flat(x), lax.axis_index(self.data_axes) * chunk, chunk)

    def _opt_specs(self, opt_state_shapes):
        sharded = P(self.data_axes)
        return jax.tree.map(lambda s: sharded if s.ndim >= 1 else P(), opt_state_shapes)

    def _local_opt_shapes(self, layout):
        treedef, leaves = layout
        local = [jax.ShapeDtypeStruct((self._chunk(math.prod(s)),), d) for s, d in leaves]
        return jax.eval_shape(self.optimizer.init, jax.tree.unflatten(treedef, local))

    def specs(self, layout) -> tuple:
        """(param specs, optimizer-state specs) as PartitionSpec pytrees for this strategy."""
        treedef, leaves = layout
        if self.strategy == "replicated":
            params_like = jax.tree.unflatten(treedef, [jax.ShapeDtypeStruct(s, d) for s, d in leaves])
            opt = jax.eval_shape(self.optimizer.init, params_like)
            return jax.tree.unflatten(treedef, [P()] * len(leaves)), jax.tree.map(lambda _: P(), opt)
        param_spec = P(self.data_axes) if self.strategy == "fsdp" else P()
        return jax.tree.unflatten(treedef, [param_spec] * len(leaves)), self._opt_specs(self._local_opt_shapes(layout))

    def _shardings(self, specs):
        return jax.tree.map(lambda s: NamedSharding(self.mesh, s), specs, is_leaf=lambda s: isinstance(s, P))

    # ---- placement ----------------------------------------------------------------------------
    def put(self, tree, specs):
        """Host arrays -> global arrays with the given PartitionSpecs (works across processes)."""

        def one(x, spec):
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, NamedSharding(self.mesh, spec), lambda i: x[i])

        return jax.tree.map(one, tree, specs, is_leaf=lambda s: isinstance(s, P))

    def shard_batch(self, batch):
        """Split every batch leaf along dim 0 over the data axes; ValueError if N does not divide it."""
        n = self.num_shards
        for leaf in jax.tree.leaves(batch):
            if np.ndim(leaf) == 0 or np.shape(leaf)[0] % n:
                raise ValueError(
                    f"batch dimension 0 of size {np.shape(leaf)[0] if np.ndim(leaf) else 'scalar'} is not "
                    f"divisible by mesh axes {self.data_axes} of size {n}; use a multiple of {n}"
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

            def local_init(p):
                if self.strategy == "replicated":
                    return p, self.optimizer.init(p)
                shards = jax.tree.map(self._local_slice, p)
                return (shards if self.strategy == "fsdp" else p), self.optimizer.init(shards)

            fn = jax.shard_map(local_init, mesh=self.mesh, in_specs=(P(),), out_specs=(param_specs, opt_specs))
            out_shardings = (self._shardings(param_specs), self._shardings(opt_specs))
            self._steps[key] = jax.jit(fn, out_shardings=out_shardings)
        p, opt = self._steps[key](full)
        return TrainState(p, opt, layout)

    def _local_step(self, layout, params, opt_state, batch):
        axes, n = self.data_axes, self.num_shards
        treedef, leaves = layout
        cast = (lambda g: g.astype(self.grad_dtype)) if self.grad_dtype is not None else (lambda g: g)
        if self.strategy == "fsdp":
            gathered = [self._unflat(all_gather_replicated(f, axes), s)
                        for f, (s, _) in zip(jax.tree.leaves(params), leaves)]
            full = jax.tree.unflatten(treedef, gathered)
        else:
            full = params
        loss, grads = jax.value_and_grad(self.loss_fn)(pvary(full, axes), batch)
        loss = lax.pmean(loss, axes)
        if self.strategy == "replicated":
            grads = jax.tree.map(lambda g, x: lax.pmean(cast(g), axes).astype(x.dtype), grads, full)
            updates, opt_state = self.optimizer.update(grads, opt_state, full)
            return optax.apply_updates(full, updates), opt_state, loss
        grad_shards = jax.tree.map(
            lambda g, x: (lax.psum_scatter(cast(self._flat(g)), axes, scatter_dimension=0, tiled=True) / n)
            .astype(x.dtype),
            grads, full,
        )
        shards = params if self.strategy == "fsdp" else jax.tree.map(self._local_slice, full)
        updates, opt_state = self.optimizer.update(grad_shards, opt_state, shards)
        new_shards = optax.apply_updates(shards, updates)
        if self.strategy == "fsdp":
            return new_shards, opt_state, loss
        new_full = [self._unflat(all_gather_replicated(f, axes), s)
                    for f, (s, _) in zip(jax.tree.leaves(new_shards), leaves)]
        return jax.tree.unflatten(treedef, new_full), opt_state, loss

    @functools.cached_property
    def _steps(self) -> dict:
        """Jitted functions per parameter layout (a cache; the dataclass itself stays frozen)."""
        return {}

    def step_fn(self, state: TrainState) -> Callable:
        """The jitted step `(state, batch) -> (state, loss)` for states shaped like `state`."""
        layout = state.layout
        if layout not in self._steps:
            param_specs, opt_specs = self.specs(layout)
            body = jax.shard_map(
                functools.partial(self._local_step, layout), mesh=self.mesh,
                in_specs=(param_specs, opt_specs, P(self.data_axes)), out_specs=(param_specs, opt_specs, P()),
            )

            def step(state, batch):
                p, opt, loss = body(state.params, state.opt_state, batch)
                return TrainState(p, opt, state.layout), loss

            self._steps[layout] = jax.jit(step, donate_argnums=0)
        return self._steps[layout]

    def step(self, state: TrainState, batch) -> tuple[TrainState, jax.Array]:
        """One training step on a batch already placed by `shard_batch`; returns (new state, mean loss)."""
        return self.step_fn(state)(state, batch)

    def lower(self, state: TrainState, batch):
        """The lowered step (call `.compile()` for XLA's optimised HLO, see `inspect.collectives`)."""
        return self.step_fn(state).lower(state, batch)

    def full_params(self, state: TrainState):
        """Ordinary parameter pytree (original shapes), replicated on every device."""
        if self.strategy != "fsdp":
            return state.params
        treedef, leaves = state.layout
        key = ("full_params", state.layout)
        if key not in self._steps:
            self._steps[key] = jax.jit(
                lambda ps: [self._unflat(f, s) for f, (s, _) in zip(jax.tree.leaves(ps), leaves)],
                out_shardings=NamedSharding(self.mesh, P()),
            )
        return jax.tree.unflatten(treedef, self._steps[key](state.params))


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
