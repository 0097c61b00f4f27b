"""Small pure-JAX models as pytrees of arrays: an MLP classifier and an optimizer-heavy FFN stack.

Parameters are plain dicts of `jnp` arrays, so every sharding strategy, optimizer and inspection
tool in this package sees ordinary pytrees. `compute_dtype` casts weights and activations for the
matrix products (bfloat16 compute, as in the paper) while the parameters and the loss stay float32.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from mlsys_core import validate


def _check_sizes(name: str, sizes: tuple[int, ...], minimum: int) -> None:
    if len(sizes) < minimum:
        raise ValueError(f"{name} must hold >= {minimum} sizes, got {sizes!r}")
    for s in sizes:
        validate.integer(f"each of {name}", s, 1)


@dataclasses.dataclass(frozen=True)
class MLP:
    """Fully connected classifier: `layer_sizes` = (inputs, hidden..., classes), ReLU between layers.

    Params: {"layer_i": {"w": (fan_in, fan_out), "b": (fan_out,)}}. The digits model is
    `MLP((64, 128, 10))`.
    """

    layer_sizes: tuple[int, ...] = (64, 128, 10)

    def __post_init__(self):
        _check_sizes("layer_sizes", tuple(self.layer_sizes), 2)

    def init(self, key: jax.Array) -> dict:
        """He-normal weights, zero biases; deterministic in `key`."""
        params = {}
        keys = jax.random.split(key, len(self.layer_sizes) - 1)
        for i, (k, fan_in, fan_out) in enumerate(zip(keys, self.layer_sizes[:-1], self.layer_sizes[1:])):
            w = jax.random.normal(k, (fan_in, fan_out), jnp.float32) * jnp.sqrt(2.0 / fan_in)
            params[f"layer_{i}"] = {"w": w, "b": jnp.zeros((fan_out,), jnp.float32)}
        return params

    def apply(self, params: dict, x: jax.Array, compute_dtype=jnp.float32) -> jax.Array:
        """Logits (batch, classes) in float32 for inputs x (batch, inputs)."""
        n = len(self.layer_sizes) - 1
        h = x.astype(compute_dtype)
        for i in range(n):
            layer = params[f"layer_{i}"]
            h = h @ layer["w"].astype(compute_dtype) + layer["b"].astype(compute_dtype)
            if i < n - 1:
                h = jax.nn.relu(h)
        return h.astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class FFNStack:
    """Optimizer-heavy model: `blocks` residual feed-forward blocks x + W2 relu(W1 x) of width `d_model`.

    Parameters = blocks * 2 * d_model * d_ff (+ biases): 4 blocks of 512 x 2048 are 8.4 M, while a
    small batch keeps the forward/backward cheap, so the weight update is a large share of a step -
    the regime where weight-update sharding pays. The regression target makes the loss a plain MSE.
    """

    d_model: int = 512
    d_ff: int = 2048
    blocks: int = 4

    def __post_init__(self):
        _check_sizes("(d_model, d_ff, blocks)", (self.d_model, self.d_ff, self.blocks), 3)

    def init(self, key: jax.Array) -> dict:
        params = {}
        for i, k in enumerate(jax.random.split(key, self.blocks)):
            k1, k2 = jax.random.split(k)
            params[f"block_{i}"] = {
                "w1": jax.random.normal(k1, (self.d_model, self.d_ff)) * jnp.sqrt(2.0 / self.d_model),
                "b1": jnp.zeros((self.d_ff,)),
                "w2": jax.random.normal(k2, (self.d_ff, self.d_model)) * jnp.sqrt(0.1 / self.d_ff),
                "b2": jnp.zeros((self.d_model,)),
            }
        return params

    def apply(self, params: dict, x: jax.Array, compute_dtype=jnp.float32) -> jax.Array:
        """Outputs (batch, d_model) for inputs (batch, d_model)."""
        h = x.astype(compute_dtype)
        for i in range(self.blocks):
            p = params[f"block_{i}"]
            u = jax.nn.relu(h @ p["w1"].astype(compute_dtype) + p["b1"].astype(compute_dtype))
            h = h + u @ p["w2"].astype(compute_dtype) + p["b2"].astype(compute_dtype)
        return h.astype(jnp.float32)


def parameter_count(params) -> int:
    """Number of scalars in a parameter pytree."""
    return int(sum(leaf.size for leaf in jax.tree.leaves(params)))


def classifier_loss(model: MLP, compute_dtype=jnp.float32):
    """loss(params, (x, y)) -> mean softmax cross-entropy over the batch (float32)."""

    def loss(params, batch):
        x, y = batch
        logits = model.apply(params, x, compute_dtype)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))

    return loss


def regression_loss(model: FFNStack, compute_dtype=jnp.float32):
    """loss(params, (x, target)) -> mean squared error over the batch (float32)."""

    def loss(params, batch):
        x, target = batch
        return jnp.mean((model.apply(params, x, compute_dtype) - target) ** 2)

    return loss


def accuracy(model: MLP, params, x, y) -> jax.Array:
    """Fraction of examples whose arg-max logit is the label."""
    return jnp.mean(jnp.argmax(model.apply(params, x), axis=1) == y)


def regression_batch(key: jax.Array, batch_size: int, d_model: int) -> tuple[jax.Array, jax.Array]:
    """A synthetic (x, target) batch for `FFNStack`: x ~ N(0, 1), target = tanh(x reversed)."""
    x = jax.random.normal(key, (batch_size, d_model))
    return x, jnp.tanh(x[:, ::-1])
