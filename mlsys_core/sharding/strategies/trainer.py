"""The training step of every strategy: `Trainer` (init, one jitted step, placement), the loop `train`,
the one-device ground truth `reference_train`, and `data_mesh`.

The step runs the forward and backward pass per device under `jax.shard_map` (the strategy's
`local_grads`), then the optimizer update *outside* it, on the global view: full-shaped arrays whose
shardings say which block each device holds, so XLA's SPMD partitioner turns every cross-element
reduction of the transform into a local sum plus an all-reduce and the update is the single-device
program (see the package docstring). Compiled functions are cached per parameter layout.
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
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from mlsys_core import backend, validate

from .blockwise import BlockLoss
from .layouts import STRATEGIES, Strategy


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

    params: Any  # the parameter pytree, each leaf in the strategy's `param_spec` layout
    opt_state: Any  # the optimizer state, each leaf in the `update_spec` layout
    layout: Any  # (treedef, ((shape, dtype name), ...)), hashable: the static part


def _layout(params) -> tuple:
    leaves, treedef = jax.tree.flatten(params)
    return treedef, tuple((tuple(x.shape), jnp.dtype(x.dtype).name) for x in leaves)


@dataclasses.dataclass(frozen=True)
class Trainer:
    """One data-parallel training step of `loss_fn(params, batch) -> scalar` under `strategy`.

    `optimizer` is any optax transformation; under every strategy it sees the whole tree (see the
    package docstring), so it matches one device. For a `BlockLoss` (a model made of blocks) the
    memory options apply block by block: under `fsdp` each block's weights are gathered just before
    it runs, forward and backward, so one block's weights are whole at a time.

    Args:
        loss_fn: `loss_fn(params, batch) -> scalar` (float32), or a `BlockLoss`.
        optimizer: any optax `GradientTransformation`.
        mesh: the device mesh; the batch is split over its `data_axes`.
        strategy: a name in `STRATEGIES` ("replicated", "wus", "fsdp").
        data_axes: mesh axis names the batch is split over (e.g. ("data",), or ("x", "y") for a 2-D
            mesh used as one data axis).
        grad_dtype: None, or a float dtype (e.g. jnp.bfloat16) the gradients are cast to for the
            collectives only - the paper's bfloat16 communication - and back to float32 for the update.
        remat: recompute each block's activations in the backward pass instead of keeping them
            (needs a `BlockLoss`).
        micro_batches: k, the number of equal parts of each device's batch the gradient is
            accumulated over (the same gradient, up to rounding, with 1/k of the activations alive).
        per_block_gather: under `fsdp`, gather each block's weights inside the block (False: all
            weights gathered before the forward pass, as a plain loss gets them).
        prefetch: let block i+1's gather start while block i computes (FSDP's forward prefetch).
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
        return STRATEGIES[self.strategy]

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
    def put(self, tree, specs) -> Any:
        """Host arrays -> global arrays with the given PartitionSpecs (works across processes)."""

        def one(x, spec):
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, NamedSharding(self.mesh, spec), lambda i: x[i])

        return jax.tree.map(one, tree, specs, is_leaf=lambda s: isinstance(s, P))

    def shard_batch(self, batch) -> Any:
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

    def lower(self, state: TrainState, batch) -> jax.stages.Lowered:
        """The lowered step (call `.compile()` for XLA's optimised HLO, see `inspection.collectives`)."""
        return self.step_fn(state).lower(state, batch)

    def full_params(self, state: TrainState) -> Any:
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

    Returns (the final parameters, the loss of every step).

    Args:
        loss_fn: `loss_fn(params, batch) -> scalar`.
        optimizer: any optax `GradientTransformation`.
        params: the initial parameter pytree.
        batches: an iterable of host batches, one per step.
        device: pins the training there (e.g. a mesh's first device, `mesh.devices.flat[0]`), so it
            is compared with a mesh on the same kind of device (a GPU's float32 matmuls round
            differently from the CPU devices a mesh may fall back to); None: JAX's default device.
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
