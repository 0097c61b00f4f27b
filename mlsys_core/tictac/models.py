"""Small networks written in plain JAX, the programs TicTac schedules, all on 8x8 digit images.

`MODELS` is a registry of model objects, each with `init` (parameters from a NumPy generator) and `apply`
(logits); `loss` and `program` are the same for all of them (`Model`). `CLAIM_MODELS`: an MLP, a small CNN,
a ResNet-style and an Inception-style network (the claims' four). `BRANCHING_MODELS`: graphs whose
parallel branches leave the transfer order a real choice — `inception_skewed` (per module a 1x1 branch,
a 3x3 branch and a deep branch of three 3x3 convs: costs about 1 : 9 : 47 per pixel), `two_tower` (a
dense tower on the flattened pixels — many bytes, little compute per byte — beside a conv tower — few
bytes, much compute — joined by one head) and `transformer` (encoder blocks on the image's 8 rows as
tokens: q/k/v projections in parallel, 4-head attention, a 4x MLP, pre-layer-norm residuals).

`program(model, mode, ...)` returns `(fn, params, inputs)` ready for `jaxgraph.trace`: `mode="infer"`
is the forward pass (logits), `mode="train"` is `jax.value_and_grad` of the cross-entropy loss — the
gradient computation a worker runs per iteration. Parameters are initialised from an explicit seed.
Adding a network is adding a `Model` to `MODELS`.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from mlsys_core import validate

if TYPE_CHECKING:
    import jax

MODES = ("infer", "train")


def _normal(rng, shape, fan_in):
    return (rng.standard_normal(shape) * (2.0 / fan_in) ** 0.5).astype(np.float32)


def _dense(rng, n_in, n_out):
    return {"w": _normal(rng, (n_in, n_out), n_in), "b": np.zeros(n_out, np.float32)}


def _conv(rng, k, c_in, c_out):
    return {"w": _normal(rng, (k, k, c_in, c_out), k * k * c_in)}


def _norm(c):
    return {"scale": np.ones(c, np.float32), "bias": np.zeros(c, np.float32)}


def conv2d(x, w, stride: int = 1) -> jax.Array:
    """NHWC x HWIO 'SAME' convolution -> NHWC array."""
    import jax

    return jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def batch_norm(x, p: dict, eps: float = 1e-5) -> jax.Array:
    """Normalise over batch and space with batch statistics, then scale and shift per channel (NHWC array)."""
    import jax.numpy as jnp

    mean = x.mean(axis=(0, 1, 2))
    var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
    return (x - mean) * (p["scale"] / jnp.sqrt(var + eps)) + p["bias"]


def layer_norm(x, p: dict, eps: float = 1e-5) -> jax.Array:
    """Normalise the last axis, then scale and shift (array of `x`'s shape)."""
    import jax.numpy as jnp

    mean = x.mean(axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps) * p["scale"] + p["bias"]


def _max_pool3(h):
    import jax
    import jax.numpy as jnp

    return jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")


def _head(h, params):
    return h @ params["head"]["w"] + params["head"]["b"]


class Model:
    """What every bundled network shares. A subclass is a frozen dataclass with a `name` and defines
    `init(rng, depth, width)` (float32 NumPy parameters, He-normal) and `apply(params, x)` (logits
    (batch, 10) for images (batch, 8, 8, 1)); `depth` counts hidden layers / conv layers / residual
    blocks / inception modules / layers per tower / encoder blocks, `width` scales the channels."""

    name: str

    def init(self, rng: np.random.Generator, depth: int, width: int) -> dict:
        raise NotImplementedError

    def apply(self, params: dict, x) -> jax.Array:
        raise NotImplementedError

    def loss(self, params: dict, x, y) -> jax.Array:
        """Mean softmax cross-entropy on images `x` with int labels `y` (a scalar array)."""
        import jax
        import jax.numpy as jnp

        logp = jax.nn.log_softmax(self.apply(params, x))
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    def program(self, mode: str, params: dict, x, y) -> tuple:
        """(fn, params, inputs) for `jaxgraph.trace`: fn(params, x) the logits (`infer`), or fn(params, x, y)
        the loss and its gradients (`train`).

        Args:
            mode: "infer" or "train".
            params: the parameters (`init`).
            x: images (batch, 8, 8, 1).
            y: int labels (batch,).
        """
        import jax

        if mode == "infer":
            return self.apply, params, (x,)
        return jax.value_and_grad(self.loss), params, (x, y)


@dataclasses.dataclass(frozen=True)
class MLP(Model):
    """`depth` dense layers of 16·width units, ReLU, a dense head."""

    name: str = "mlp"

    def init(self, rng: np.random.Generator, depth: int, width: int) -> dict:
        sizes = [64] + [16 * width] * depth
        layers = [_dense(rng, a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        return {"layers": layers, "head": _dense(rng, sizes[-1], 10)}

    def apply(self, params: dict, x) -> jax.Array:
        import jax

        h = x.reshape(x.shape[0], -1)
        for layer in params["layers"]:
            h = jax.nn.relu(h @ layer["w"] + layer["b"])
        return _head(h, params)


@dataclasses.dataclass(frozen=True)
class CNN(Model):
    """`depth` 3x3 convs with bias and ReLU (the 2nd and 3rd of stride 2, channels doubling twice), a dense head."""

    name: str = "cnn"

    def init(self, rng: np.random.Generator, depth: int, width: int) -> dict:
        chans = [1] + [width * 2 ** min(i, 2) for i in range(depth)]
        convs = [{**_conv(rng, 3, a, b), "b": np.zeros(b, np.float32)} for a, b in zip(chans[:-1], chans[1:])]
        side = 8 >> sum(1 for i in range(depth) if i in (1, 2))
        return {"convs": convs, "head": _dense(rng, chans[-1] * side * side, 10)}

    def apply(self, params: dict, x) -> jax.Array:
        import jax

        h = x
        for i, conv in enumerate(params["convs"]):
            h = jax.nn.relu(conv2d(h, conv["w"], stride=2 if i in (1, 2) else 1) + conv["b"])
        return _head(h.reshape(h.shape[0], -1), params)


@dataclasses.dataclass(frozen=True)
class ResNet(Model):
    """A conv stem, `depth` residual blocks of two 3x3 convs with batch norm, global pooling, a dense head."""

    name: str = "resnet"

    def init(self, rng: np.random.Generator, depth: int, width: int) -> dict:
        blocks = [{"conv1": _conv(rng, 3, width, width), "bn1": _norm(width),
                   "conv2": _conv(rng, 3, width, width), "bn2": _norm(width)} for _ in range(depth)]
        return {"stem": _conv(rng, 3, 1, width), "stem_bn": _norm(width), "blocks": blocks,
                "head": _dense(rng, width, 10)}

    def apply(self, params: dict, x) -> jax.Array:
        import jax

        relu = jax.nn.relu
        h = relu(batch_norm(conv2d(x, params["stem"]["w"]), params["stem_bn"]))
        for block in params["blocks"]:
            y = relu(batch_norm(conv2d(h, block["conv1"]["w"]), block["bn1"]))
            y = batch_norm(conv2d(y, block["conv2"]["w"]), block["bn2"])
            h = relu(h + y)
        return _head(h.mean(axis=(1, 2)), params)


@dataclasses.dataclass(frozen=True)
class Inception(Model):
    """A conv stem, `depth` modules of four branches (1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1)."""

    name: str = "inception"

    def init(self, rng: np.random.Generator, depth: int, width: int) -> dict:
        c = width
        modules = []
        c_in = c
        for _ in range(depth):
            modules.append({
                "b1": _conv(rng, 1, c_in, c), "b3_reduce": _conv(rng, 1, c_in, c // 2),
                "b3": _conv(rng, 3, c // 2, c), "b5_reduce": _conv(rng, 1, c_in, c // 4),
                "b5": _conv(rng, 5, c // 4, c // 2), "pool_proj": _conv(rng, 1, c_in, c // 2),
                "bn": _norm(3 * c),
            })
            c_in = 3 * c
        return {"stem": _conv(rng, 3, 1, c), "modules": modules, "head": _dense(rng, c_in, 10)}

    def apply(self, params: dict, x) -> jax.Array:
        import jax
        import jax.numpy as jnp

        relu = jax.nn.relu
        h = relu(conv2d(x, params["stem"]["w"]))
        for m in params["modules"]:
            pooled = _max_pool3(h)
            branches = [conv2d(h, m["b1"]["w"]),
                        conv2d(relu(conv2d(h, m["b3_reduce"]["w"])), m["b3"]["w"]),
                        conv2d(relu(conv2d(h, m["b5_reduce"]["w"])), m["b5"]["w"]),
                        conv2d(pooled, m["pool_proj"]["w"])]
            h = relu(batch_norm(jnp.concatenate(branches, axis=-1), m["bn"]))
        return _head(h.mean(axis=(1, 2)), params)


@dataclasses.dataclass(frozen=True)
class InceptionSkewed(Model):
    """Inception modules whose branches differ widely in cost: 1x1, 1x1 -> 3x3, and a deep branch of
    1x1 -> three 3x3 convs, beside the pooled 1x1."""

    name: str = "inception_skewed"

    def init(self, rng: np.random.Generator, depth: int, width: int) -> dict:
        c = width
        q = max(1, c // 4)
        modules, c_in = [], c
        for _ in range(depth):
            modules.append({
                "b1": _conv(rng, 1, c_in, q), "b3_reduce": _conv(rng, 1, c_in, c // 2 or 1),
                "b3": _conv(rng, 3, c // 2 or 1, c), "deep_reduce": _conv(rng, 1, c_in, c),
                "deep": [_conv(rng, 3, c, c) for _ in range(3)], "pool_proj": _conv(rng, 1, c_in, q),
                "bn": _norm(2 * q + 2 * c),
            })
            c_in = 2 * q + 2 * c
        return {"stem": _conv(rng, 3, 1, c), "modules": modules, "head": _dense(rng, c_in, 10)}

    def apply(self, params: dict, x) -> jax.Array:
        import jax
        import jax.numpy as jnp

        relu = jax.nn.relu
        h = relu(conv2d(x, params["stem"]["w"]))
        for m in params["modules"]:
            pooled = _max_pool3(h)
            deep = relu(conv2d(h, m["deep_reduce"]["w"]))
            for conv in m["deep"]:
                deep = relu(conv2d(deep, conv["w"]))
            branches = [conv2d(h, m["b1"]["w"]), conv2d(relu(conv2d(h, m["b3_reduce"]["w"])), m["b3"]["w"]),
                        deep, conv2d(pooled, m["pool_proj"]["w"])]
            h = relu(batch_norm(jnp.concatenate(branches, axis=-1), m["bn"]))
        return _head(h.mean(axis=(1, 2)), params)


@dataclasses.dataclass(frozen=True)
class TwoTower(Model):
    """A dense tower on the flattened pixels beside a conv tower, `depth` layers each, joined by one head."""

    name: str = "two_tower"

    def init(self, rng: np.random.Generator, depth: int, width: int) -> dict:
        sizes = [64] + [16 * width] * depth
        dense = [_dense(rng, a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        chans = [1] + [2 * width] * depth
        convs = [{**_conv(rng, 3, a, b), "b": np.zeros(b, np.float32)} for a, b in zip(chans[:-1], chans[1:])]
        return {"dense_tower": dense, "conv_tower": convs, "head": _dense(rng, sizes[-1] + chans[-1], 10)}

    def apply(self, params: dict, x) -> jax.Array:
        import jax
        import jax.numpy as jnp

        relu = jax.nn.relu
        a = x.reshape(x.shape[0], -1)
        for layer in params["dense_tower"]:
            a = relu(a @ layer["w"] + layer["b"])
        b = x
        for conv in params["conv_tower"]:
            b = relu(conv2d(b, conv["w"]) + conv["b"])
        return _head(jnp.concatenate([a, b.mean(axis=(1, 2))], axis=-1), params)


@dataclasses.dataclass(frozen=True)
class Transformer(Model):
    """`depth` pre-layer-norm encoder blocks (4-head attention, a 4x MLP) on the image's 8 rows as tokens."""

    name: str = "transformer"
    heads: int = 4

    def init(self, rng: np.random.Generator, depth: int, width: int) -> dict:
        d = 2 * width
        blocks = [{"ln1": _norm(d), "q": _dense(rng, d, d), "k": _dense(rng, d, d), "v": _dense(rng, d, d),
                   "o": _dense(rng, d, d), "ln2": _norm(d), "up": _dense(rng, d, 4 * d),
                   "down": _dense(rng, 4 * d, d)} for _ in range(depth)]
        return {"embed": _dense(rng, 8, d), "pos": _normal(rng, (8, d), d), "blocks": blocks,
                "head": _dense(rng, d, 10)}

    def apply(self, params: dict, x) -> jax.Array:
        import jax
        import jax.numpy as jnp

        tokens = x.reshape(x.shape[0], 8, 8)  # the image's 8 rows are the tokens
        h = tokens @ params["embed"]["w"] + params["embed"]["b"] + params["pos"]
        for blk in params["blocks"]:
            y = layer_norm(h, blk["ln1"])
            q, k, v = (y @ blk[n]["w"] + blk[n]["b"] for n in ("q", "k", "v"))
            split = [z.reshape(z.shape[0], 8, self.heads, -1) for z in (q, k, v)]
            scores = jnp.einsum("bqhd,bkhd->bhqk", split[0], split[1]) / np.sqrt(split[0].shape[-1])
            attn = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), split[2])
            h = h + attn.reshape(h.shape) @ blk["o"]["w"] + blk["o"]["b"]
            y = layer_norm(h, blk["ln2"])
            h = h + jax.nn.relu(y @ blk["up"]["w"] + blk["up"]["b"]) @ blk["down"]["w"] + blk["down"]["b"]
        return _head(h.mean(axis=1), params)


MODELS = {m.name: m for m in (MLP(), CNN(), ResNet(), Inception(), InceptionSkewed(), TwoTower(), Transformer())}
CLAIM_MODELS = ("mlp", "cnn", "resnet", "inception")  # the four the throughput claims take the best of
BRANCHING_MODELS = ("inception_skewed", "two_tower", "transformer")  # parallel branches of different costs
ALL_MODELS = tuple(MODELS)  # every model's name, in registry order


def _model(model: str) -> Model:
    return MODELS[validate.choice("model", model, MODELS)]


def init(model: str, seed: int = 0, depth: int = 4, width: int = 16) -> dict:
    """Parameters of `model` (a `MODELS` name) as float32 NumPy arrays (He-normal, from `seed`).

    NumPy, so that building a model compiles nothing.

    Args:
        model: a `MODELS` name.
        seed: seeds the parameters' generator (int >= 0).
        depth: layers / blocks / modules (see `Model`), >= 1.
        width: channel scale, >= 1.
    """
    chosen = _model(model)
    validate.integer("depth", depth, low=1)
    validate.integer("width", width, low=1)
    validate.seed("seed", seed)
    return chosen.init(np.random.default_rng(seed), depth, width)


def apply(model: str, params: dict, x) -> jax.Array:
    """Logits (batch, 10) of `model` for images `x` (batch, 8, 8, 1)."""
    return _model(model).apply(params, x)


def loss(model: str, params: dict, x, y) -> jax.Array:
    """Mean softmax cross-entropy of `model` on images `x` with int labels `y` (a scalar array).

    Args:
        model: a `MODELS` name.
        params: its parameters (`init`).
        x: images (batch, 8, 8, 1).
        y: int labels (batch,).
    """
    return _model(model).loss(params, x, y)


def batch(batch_size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A reproducible batch of real UCI digits: (x (batch, 8, 8, 1) float32, y (batch,) int32)."""
    from mlsys_core.data import load_digits

    x, y = load_digits()
    validate.integer("batch_size", batch_size, 1, len(x))
    idx = np.random.default_rng(validate.seed("seed", seed)).choice(len(x), size=batch_size, replace=False)
    return x[idx].reshape(-1, 8, 8, 1), y[idx]


def program(model: str, mode: str = "infer", seed: int = 0, depth: int = 4, width: int = 16,
            batch_size: int = 32) -> tuple:
    """(fn, params, inputs) for `jaxgraph.trace`: fn(params, x) logits, or fn(params, x, y) the loss and grads.

    Args:
        model: a `MODELS` name.
        mode: "infer" (forward pass) or "train" (`value_and_grad` of the loss).
        seed: seeds the parameters and the batch (int >= 0).
        depth: layers / blocks / modules (see `Model`), >= 1.
        width: channel scale, >= 1.
        batch_size: images in the batch, 1 .. the digits' count.
    """
    validate.seed("seed", seed)
    validate.choice("mode", mode, MODES)
    params = init(model, seed=seed, depth=depth, width=width)
    x, y = batch(batch_size, seed)
    return MODELS[model].program(mode, params, x, y)
