"""Small pure-JAX models as pytrees of arrays: an MLP classifier, an optimizer-heavy FFN stack and a
transformer (attention, MLP, LayerNorm, residuals).

Parameters are plain dicts of `jnp` arrays, so every sharding strategy, optimizer and inspection
tool in this package sees ordinary pytrees. `compute_dtype` casts weights and activations for the
matrix products (bfloat16 compute, as in the paper) while the parameters and the loss stay float32.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from mlsys_core import validate

from .strategies import BlockLoss


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

    d_model: int = 512  # width of the residual stream (units)
    d_ff: int = 2048  # width of each block's hidden layer (units)
    blocks: int = 4  # residual blocks, in order

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

    @property
    def block_names(self) -> tuple[str, ...]:
        """The params' top-level keys, one per block, in the order they run."""
        return tuple(f"block_{i}" for i in range(self.blocks))

    @staticmethod
    def block(p: dict, h: jax.Array) -> jax.Array:
        """One residual block h + W2 relu(W1 h + b1) + b2, in h's dtype."""
        dt = h.dtype
        u = jax.nn.relu(h @ p["w1"].astype(dt) + p["b1"].astype(dt))
        return h + u @ p["w2"].astype(dt) + p["b2"].astype(dt)

    def apply(self, params: dict, x: jax.Array, compute_dtype=jnp.float32, run_block=None) -> jax.Array:
        """Outputs (batch, d_model) for inputs (batch, d_model).

        Args:
            params: the model's parameters (`init`).
            x: the inputs, (batch, d_model).
            compute_dtype: the dtype of the matrix products (e.g. bfloat16).
            run_block: `run_block(name, block_fn, params, h)` runs each block (None: call it); a strategy
                passes its own to act between blocks.
        """
        run_block = run_block or (lambda name, fn, p, h: fn(p, h))
        h = x.astype(compute_dtype)
        for name in self.block_names:
            h = run_block(name, self.block, params[name], h)
        return h.astype(jnp.float32)


def parameter_count(params) -> int:
    """Number of scalars in a parameter pytree."""
    return int(sum(leaf.size for leaf in jax.tree.leaves(params)))


def classifier_loss(model: MLP, compute_dtype=jnp.float32) -> Callable:
    """loss(params, (x, y)) -> mean softmax cross-entropy over the batch (float32)."""

    def loss(params, batch):
        x, y = batch
        logits = model.apply(params, x, compute_dtype)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], axis=1))

    return loss


def regression_loss(model: FFNStack | Transformer, compute_dtype=jnp.float32) -> BlockLoss:
    """loss(params, (x, target)) -> mean squared error over the batch (float32), as a `BlockLoss`
    over the model's blocks (so FSDP can gather one block at a time)."""

    def loss(params, batch, run_block):
        x, target = batch
        return jnp.mean((model.apply(params, x, compute_dtype, run_block) - target) ** 2)

    return BlockLoss(loss, model.block_names)


def accuracy(model: MLP, params, x, y) -> jax.Array:
    """Fraction of examples whose arg-max logit is the label.

    Args:
        model: the classifier.
        params: its parameters.
        x: the inputs, (examples, inputs).
        y: the labels, (examples,).
    """
    return jnp.mean(jnp.argmax(model.apply(params, x), axis=1) == y)


def regression_batch(key: jax.Array, batch_size: int, d_model: int) -> tuple[jax.Array, jax.Array]:
    """A synthetic (x, target) batch for `FFNStack`: x ~ N(0, 1), target = tanh(x reversed)."""
    validate.integer("batch_size", batch_size, 1)
    validate.integer("d_model", d_model, 1)
    x = jax.random.normal(key, (batch_size, d_model))
    return x, jnp.tanh(x[:, ::-1])


def layer_norm(x: jax.Array, p: dict, eps: float = 1e-5) -> jax.Array:
    """LayerNorm over the last axis with learned `p["scale"]` and `p["bias"]`."""
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + eps) * p["scale"] + p["bias"]


@dataclasses.dataclass(frozen=True)
class Transformer:
    """`blocks` pre-LayerNorm transformer blocks of width `d_model` on sequences of `seq` vectors:
    x + MHA(LN(x)), then x + MLP(LN(x)) with `heads` heads and a ReLU MLP of width `d_ff`.

    Params per block: "ln1"/"ln2" {"scale", "bias"} (d_model,); "attn" {"wq", "wk", "wv"}
    (d_model, heads, d_head) and "wo" (heads, d_head, d_model); "mlp" {"w1" (d_model, d_ff), "b1",
    "w2" (d_ff, d_model), "b2"}. Heads and MLP columns are separate axes, so a Megatron layout
    (`megatron_specs`) can split them over a `model` mesh axis. The regression target makes the loss
    a plain MSE (`regression_loss` works on it, as a `BlockLoss`).
    """

    d_model: int = 32  # width of the residual stream (units)
    heads: int = 4  # attention heads (a divisor of d_model)
    d_ff: int = 64  # width of each block's MLP hidden layer (units)
    blocks: int = 2  # transformer blocks, in order
    seq: int = 8  # vectors per sequence

    def __post_init__(self):
        _check_sizes("(d_model, heads, d_ff, blocks, seq)", (self.d_model, self.heads, self.d_ff, self.blocks,
                                                             self.seq), 5)
        if self.d_model % self.heads:
            raise ValueError(f"d_model={self.d_model} must be a multiple of heads={self.heads}")

    @property
    def d_head(self) -> int:
        return self.d_model // self.heads

    @property
    def block_names(self) -> tuple[str, ...]:
        return tuple(f"block_{i}" for i in range(self.blocks))

    def init(self, key: jax.Array) -> dict:
        d, h, k, f = self.d_model, self.heads, self.d_head, self.d_ff
        params = {}
        for name, key_i in zip(self.block_names, jax.random.split(key, self.blocks)):
            kq, kk, kv, ko, k1, k2 = jax.random.split(key_i, 6)
            norm = {"scale": jnp.ones((d,)), "bias": jnp.zeros((d,))}
            params[name] = {
                "ln1": dict(norm), "ln2": dict(norm),
                "attn": {"wq": jax.random.normal(kq, (d, h, k)) / jnp.sqrt(d),
                         "wk": jax.random.normal(kk, (d, h, k)) / jnp.sqrt(d),
                         "wv": jax.random.normal(kv, (d, h, k)) / jnp.sqrt(d),
                         "wo": jax.random.normal(ko, (h, k, d)) * jnp.sqrt(0.5 / d)},
                "mlp": {"w1": jax.random.normal(k1, (d, f)) * jnp.sqrt(2.0 / d), "b1": jnp.zeros((f,)),
                        "w2": jax.random.normal(k2, (f, d)) * jnp.sqrt(0.5 / f), "b2": jnp.zeros((d,))},
            }
        return params

    @staticmethod
    def block(p: dict, x: jax.Array) -> jax.Array:
        """One block on x (batch, seq, d_model): attention over the sequence (no mask), then the MLP."""
        a = p["attn"]
        h = layer_norm(x, p["ln1"])
        q, k, v = (jnp.einsum("bsd,dhk->bhsk", h, a[w]) for w in ("wq", "wk", "wv"))
        att = jax.nn.softmax(jnp.einsum("bhsk,bhtk->bhst", q, k) / jnp.sqrt(q.shape[-1]), axis=-1)
        x = x + jnp.einsum("bhsk,hkd->bsd", jnp.einsum("bhst,bhtk->bhsk", att, v), a["wo"])
        m = p["mlp"]
        h = layer_norm(x, p["ln2"])
        return x + jax.nn.relu(h @ m["w1"] + m["b1"]) @ m["w2"] + m["b2"]

    def apply(self, params: dict, x: jax.Array, compute_dtype=jnp.float32, run_block=None) -> jax.Array:
        """Outputs (batch, seq, d_model) for inputs (batch, seq, d_model).

        Args:
            params: the model's parameters (`init`).
            x: the inputs, (batch, seq, d_model).
            compute_dtype: the dtype of the computation (e.g. bfloat16).
            run_block: as in `FFNStack.apply`.
        """
        run_block = run_block or (lambda name, fn, p, h: fn(p, h))
        h = x.astype(compute_dtype)
        for name in self.block_names:
            h = run_block(name, self.block, params[name], h)
        return h.astype(jnp.float32)

    @property
    def megatron_specs(self) -> dict:
        """Megatron layout over a `model` mesh axis: Q/K/V split by heads (column-parallel), the output
        projection by heads (row-parallel), W1/b1 by columns and W2 by rows; LayerNorms, b2 whole. Each
        half-block needs one all-reduce of its activations (after W_o, after W2), forward and backward."""
        spec = {
            "ln1": {"scale": P(), "bias": P()}, "ln2": {"scale": P(), "bias": P()},
            "attn": {"wq": P(None, "model", None), "wk": P(None, "model", None), "wv": P(None, "model", None),
                     "wo": P("model", None, None)},
            "mlp": {"w1": P(None, "model"), "b1": P("model"), "w2": P("model", None), "b2": P()},
        }
        return {name: spec for name in self.block_names}


def transformer_batch(key: jax.Array, batch_size: int, model: Transformer) -> tuple[jax.Array, jax.Array]:
    """A synthetic (x, target) batch for `Transformer`: x ~ N(0, 1) of (batch, seq, d_model), target =
    tanh of x's running mean over the sequence (so attention has something to learn)."""
    validate.integer("batch_size", batch_size, 1)
    validate.instance("model", model, Transformer, "a models.Transformer")
    x = jax.random.normal(key, (batch_size, model.seq, model.d_model))
    return x, jnp.tanh(jnp.cumsum(x, axis=1) / jnp.arange(1, model.seq + 1)[None, :, None])
