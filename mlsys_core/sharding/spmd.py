"""SPMD model parallelism on a 2-D mesh, distributed batch norm and distributed evaluation.

- `ModelParallel`: the XLA SPMD partitioner runs an ordinary `jit` step; we only annotate layouts.
  A (data x model) mesh splits the batch over `data` and each MLP weight Megatron-style over
  `model`: even layers by columns (outputs), odd layers by rows (inputs), so a column-parallel layer
  feeds a row-parallel one with no communication between them and one all-reduce after.
- `BatchNormMLP` + `bn_mesh`: batch-norm statistics averaged over groups of `group_size` replicas
  (the paper's distributed batch norm; MLPerf SSD used groups of 16). The mesh is reshaped to
  (replicas / g, g) and the statistics are `pmean`-ed over the inner axis only.
- `distributed_accuracy`: the eval set is sharded over all devices (padded with masked examples,
  as MLPerf pads its eval set), each device counts its correct answers, a `psum` adds them.
"""

from __future__ import annotations

import dataclasses
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

from .models import MLP


def _auto_mesh(shape: tuple[int, ...], names: tuple[str, ...], devices=None) -> Mesh:
    """A mesh of `shape` over `devices`, or over `backend.mesh_devices(prod(shape))` when None."""
    for name, size in zip(names, shape):
        validate.integer(f"mesh axis {name!r} size", size, 1)
    need = math.prod(shape)
    devices = backend.mesh_devices(need) if devices is None else list(devices)
    if need > len(devices):
        raise ValueError(f"mesh shape {shape} for axes {names} needs {need} devices, only {len(devices)} available")
    return Mesh(np.array(devices[:need]).reshape(shape), names, axis_types=(jax.sharding.AxisType.Auto,) * len(shape))


def model_parallel_mesh(data: int, model: int, devices=None) -> Mesh:
    """A (data, model) mesh of data * model devices (`backend.mesh_devices`, or the first of `devices`)."""
    return _auto_mesh((data, model), ("data", "model"), devices)


def megatron_specs(mlp: MLP) -> dict:
    """PartitionSpecs for an MLP's params: even layers column-parallel, odd layers row-parallel."""
    specs = {}
    for i in range(len(mlp.layer_sizes) - 1):
        if i % 2 == 0:
            specs[f"layer_{i}"] = {"w": P(None, "model"), "b": P("model")}
        else:
            specs[f"layer_{i}"] = {"w": P("model", None), "b": P()}
    return specs


def _check_divisible(shape, spec: P, mesh: Mesh, what: str) -> None:
    for dim, (size, axes) in enumerate(zip(shape, tuple(spec) + (None,) * len(shape))):
        if axes is None:
            continue
        names = (axes,) if isinstance(axes, str) else tuple(axes)
        n = math.prod(mesh.shape[a] for a in names)
        if size % n:
            raise ValueError(f"{what} dimension {dim} of size {size} is not divisible by mesh axis {names} of size {n}")


@dataclasses.dataclass(frozen=True)
class ModelParallel:
    """A jit step whose params follow `param_specs` on a (data, model) mesh; the partitioner does the rest.

    Args:
        loss_fn: `loss_fn(params, batch) -> scalar`.
        optimizer: an optax `GradientTransformation`.
        mesh: a mesh with a "data" axis (the batch is split over it) and the axes `param_specs` name.
        param_specs: a PartitionSpec per parameter leaf (e.g. `megatron_specs(mlp)`).
    """

    loss_fn: Callable
    optimizer: optax.GradientTransformation
    mesh: Mesh
    param_specs: dict

    def __post_init__(self):
        validate.instance("mesh", self.mesh, Mesh, "a jax.sharding.Mesh")
        validate.callable_("loss_fn", self.loss_fn)
        validate.instance("optimizer", self.optimizer, optax.GradientTransformation, "an optax.GradientTransformation")
        if "data" not in self.mesh.axis_names:
            raise ValueError(f"mesh must have a 'data' axis, got axes {self.mesh.axis_names}")

    def _shardings(self, specs):
        return jax.tree.map(lambda s: NamedSharding(self.mesh, s), specs, is_leaf=lambda s: isinstance(s, P))

    def init(self, params) -> tuple[Any, Any]:
        """(params, opt_state) placed by `param_specs`; ValueError if an axis does not divide a weight."""
        for (path, x), spec in zip(jax.tree_util.tree_leaves_with_path(params), jax.tree.leaves(
                self.param_specs, is_leaf=lambda s: isinstance(s, P))):
            _check_divisible(x.shape, spec, self.mesh, f"weight {jax.tree_util.keystr(path)}")
        params = jax.device_put(params, self._shardings(self.param_specs))
        # per-parameter leaves of the state (Adam's moments) take their parameter's layout, the rest
        # (step counts) are replicated: else the update would all-gather every moment
        replicated = NamedSharding(self.mesh, P())
        shapes = jax.eval_shape(self.optimizer.init, params)
        layouts = optax.tree_map_params(self.optimizer, lambda _, s: s, shapes, self._shardings(self.param_specs),
                                        transform_non_params=lambda _: replicated)
        return params, jax.jit(self.optimizer.init, out_shardings=layouts)(params)

    def shard_batch(self, batch) -> Any:
        """The batch placed with dimension 0 split over "data"; ValueError if the axis does not divide it."""
        specs = jax.tree.map(lambda x: P("data", *([None] * (np.ndim(x) - 1))), batch)
        jax.tree.map(lambda x, s: _check_divisible(np.shape(x), s, self.mesh, "batch"), batch, specs,
                     is_leaf=lambda s: isinstance(s, P))
        return jax.device_put(batch, self._shardings(specs))

    def step_fn(self, opt_state) -> Callable:
        """Jitted `(params, opt_state, batch) -> (params, opt_state, loss)` keeping the layouts fixed."""
        out = (self._shardings(self.param_specs), jax.tree.map(lambda x: x.sharding, opt_state),
               NamedSharding(self.mesh, P()))

        def step(params, opt_state, batch):
            loss, grads = jax.value_and_grad(self.loss_fn)(params, batch)
            updates, opt_state = self.optimizer.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state, loss

        return jax.jit(step, out_shardings=out)

    def train(self, params, batches) -> tuple[Any, list[float]]:
        """Run over host batches; returns final params and the losses."""
        params, opt_state = self.init(params)
        step = self.step_fn(opt_state)
        losses = []
        for batch in batches:
            params, opt_state, loss = step(params, opt_state, self.shard_batch(batch))
            losses.append(float(loss))
        return params, losses


# ---- distributed batch norm ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class BatchNormMLP:
    """x -> Linear -> BatchNorm -> ReLU -> Linear. `layer_sizes` = (inputs, hidden, classes).

    Batch statistics are averaged over the mesh axis `bn_axis` (a group of replicas) when given,
    else over the local batch only. `stats` (mean, var) replace batch statistics at evaluation.
    """

    layer_sizes: tuple[int, int, int] = (64, 64, 10)
    eps: float = 1e-5  # added to the variance before its square root

    def __post_init__(self):
        if len(self.layer_sizes) != 3:
            raise ValueError(f"layer_sizes must be 3 sizes (inputs, hidden, classes), got {self.layer_sizes!r}")
        for size in self.layer_sizes:
            validate.integer("each of layer_sizes", size, 1)
        validate.positive("eps", self.eps)

    def init(self, key: jax.Array) -> dict:
        inner = MLP(self.layer_sizes).init(key)
        hidden = self.layer_sizes[1]
        # No bias before batch norm: the normalisation cancels it (its gradient is rounding noise,
        # which Adam would amplify into lr-sized random steps).
        return {"layer_0": {"w": inner["layer_0"]["w"]}, "layer_1": inner["layer_1"],
                "bn": {"scale": jnp.ones((hidden,)), "shift": jnp.zeros((hidden,))}}

    def hidden(self, params, x) -> jax.Array:
        """Pre-normalisation activations (batch, hidden)."""
        return x @ params["layer_0"]["w"]

    def apply(self, params, x, bn_axis: str | None = None, stats=None) -> jax.Array:
        """Logits (batch, classes) for inputs x (batch, inputs).

        Args:
            params: the model's parameters (`init`).
            x: the inputs, (batch, inputs).
            bn_axis: the mesh axis the batch statistics are averaged over (None: the local batch).
            stats: (mean, var) to use instead of batch statistics (evaluation).
        """
        h = self.hidden(params, x)
        if stats is None:
            mean, mean_sq = jnp.mean(h, axis=0), jnp.mean(h * h, axis=0)
            if bn_axis is not None:  # equal local batches: the mean of means is the group mean
                mean, mean_sq = lax.pmean((mean, mean_sq), bn_axis)
            stats = (mean, mean_sq - mean * mean)
        mean, var = stats
        h = (h - mean) * lax.rsqrt(var + self.eps) * params["bn"]["scale"] + params["bn"]["shift"]
        return jax.nn.relu(h) @ params["layer_1"]["w"] + params["layer_1"]["b"]

    def loss(self, bn_axis: str | None = None) -> Callable:
        """loss(params, (x, y)) -> mean cross-entropy with group batch norm over `bn_axis`."""

        def loss(params, batch):
            x, y = batch
            logits = self.apply(params, x, bn_axis)
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))

        return loss

    def population_stats(self, params, x) -> tuple[jax.Array, jax.Array]:
        """(mean, var) of the hidden layer over a whole data set, for evaluation."""
        h = self.hidden(params, x)
        return jnp.mean(h, axis=0), jnp.var(h, axis=0)


def bn_mesh(replicas: int, group_size: int, devices=None) -> Mesh:
    """A (replicas / g, g) mesh with axes ("group", "bn"): batch norm reduces over "bn" only."""
    validate.integer("replicas", replicas, 1)
    validate.integer("group_size", group_size, 1, replicas)
    if replicas % group_size:
        raise ValueError(f"group_size must be a divisor of replicas={replicas}, got {group_size!r}")
    return _auto_mesh((replicas // group_size, group_size), ("group", "bn"), devices)


# ---- distributed evaluation ---------------------------------------------------------------------


def distributed_accuracy(predict: Callable, params, x, y, mesh: Mesh) -> float:
    """Accuracy of `predict(params, x) -> labels` with the eval set sharded over every device of `mesh`.

    The set is padded to a multiple of the device count with masked examples; each device counts
    its correct unmasked answers and a psum adds the counts, so the result equals one-device eval.

    Args:
        predict: `predict(params, x) -> labels`.
        params: the model's parameters (replicated on every device).
        x: the evaluation inputs.
        y: their labels.
        mesh: every device of it takes a share of the set.
    """
    axes = tuple(mesh.axis_names)
    n = mesh.size
    x, y = np.asarray(x), np.asarray(y)
    pad = (-len(x)) % n
    mask = np.concatenate([np.ones(len(x), np.int32), np.zeros(pad, np.int32)])
    x = np.concatenate([x, np.zeros((pad, *x.shape[1:]), x.dtype)])
    y = np.concatenate([y, np.zeros(pad, y.dtype)])

    def count(params, x, y, mask):
        return lax.psum(jnp.sum((predict(params, x) == y) * mask), axes)

    counted = jax.jit(jax.shard_map(count, mesh=mesh, in_specs=(P(), P(axes), P(axes), P(axes)), out_specs=P()))
    data = jax.device_put((x, y, mask), NamedSharding(mesh, P(axes)))
    correct = counted(jax.device_put(params, NamedSharding(mesh, P())), *data)
    return int(correct) / int(mask.sum())
