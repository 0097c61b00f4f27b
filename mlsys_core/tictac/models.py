"""Four small networks written in plain JAX, the programs TicTac schedules: an MLP, a small CNN, a
ResNet-style and an Inception-style network, all on 8x8 digit images.

`program(model, mode, ...)` returns `(fn, params, inputs)` ready for `jaxgraph.trace`: `mode="infer"`
is the forward pass (logits), `mode="train"` is `jax.value_and_grad` of the cross-entropy loss — the
gradient computation a worker runs per iteration. Parameters are initialised from an explicit seed.
"""

from __future__ import annotations

import numpy as np

from mlsys_core import validate

MODELS = ("mlp", "cnn", "resnet", "inception")
MODES = ("infer", "train")


def _normal(rng, shape, fan_in):
    return (rng.standard_normal(shape) * (2.0 / fan_in) ** 0.5).astype(np.float32)


def _dense(rng, n_in, n_out):
    return {"w": _normal(rng, (n_in, n_out), n_in), "b": np.zeros(n_out, np.float32)}


def _conv(rng, k, c_in, c_out):
    return {"w": _normal(rng, (k, k, c_in, c_out), k * k * c_in)}


def _norm(c):
    return {"scale": np.ones(c, np.float32), "bias": np.zeros(c, np.float32)}


def conv2d(x, w, stride=1):
    """NHWC x HWIO 'SAME' convolution."""
    import jax

    return jax.lax.conv_general_dilated(x, w, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


def batch_norm(x, p, eps=1e-5):
    """Normalise over batch and space with batch statistics, then scale and shift per channel."""
    import jax.numpy as jnp

    mean = x.mean(axis=(0, 1, 2))
    var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
    return (x - mean) * (p["scale"] / jnp.sqrt(var + eps)) + p["bias"]


def init(model: str, seed: int = 0, depth: int = 4, width: int = 16) -> dict:
    """Parameters of `model` (one of MODELS) as float32 NumPy arrays (He-normal, from `seed`).

    `depth`: hidden layers / conv layers / residual blocks / inception modules. NumPy, so that
    building a model compiles nothing.
    """
    validate.choice("model", model, MODELS)
    validate.integer("depth", depth, low=1)
    validate.integer("width", width, low=1)
    validate.integer("seed", seed, low=0)
    rng = np.random.default_rng(seed)
    if model == "mlp":
        sizes = [64] + [16 * width] * depth
        layers = [_dense(rng, a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        return {"layers": layers, "head": _dense(rng, sizes[-1], 10)}
    if model == "cnn":
        chans = [1] + [width * 2 ** min(i, 2) for i in range(depth)]
        convs = [{**_conv(rng, 3, a, b), "b": np.zeros(b, np.float32)} for a, b in zip(chans[:-1], chans[1:])]
        side = 8 >> sum(1 for i in range(depth) if i in (1, 2))
        return {"convs": convs, "head": _dense(rng, chans[-1] * side * side, 10)}
    if model == "resnet":
        blocks = [{"conv1": _conv(rng, 3, width, width), "bn1": _norm(width),
                   "conv2": _conv(rng, 3, width, width), "bn2": _norm(width)} for _ in range(depth)]
        return {"stem": _conv(rng, 3, 1, width), "stem_bn": _norm(width), "blocks": blocks,
                "head": _dense(rng, width, 10)}
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


def apply(model: str, params: dict, x):
    """Logits (batch, 10) of `model` for images `x` (batch, 8, 8, 1)."""
    import jax
    import jax.numpy as jnp

    relu = jax.nn.relu
    if model == "mlp":
        h = x.reshape(x.shape[0], -1)
        for layer in params["layers"]:
            h = relu(h @ layer["w"] + layer["b"])
        return h @ params["head"]["w"] + params["head"]["b"]
    if model == "cnn":
        h = x
        for i, conv in enumerate(params["convs"]):
            h = relu(conv2d(h, conv["w"], stride=2 if i in (1, 2) else 1) + conv["b"])
        h = h.reshape(h.shape[0], -1)
        return h @ params["head"]["w"] + params["head"]["b"]
    if model == "resnet":
        h = relu(batch_norm(conv2d(x, params["stem"]["w"]), params["stem_bn"]))
        for block in params["blocks"]:
            y = relu(batch_norm(conv2d(h, block["conv1"]["w"]), block["bn1"]))
            y = batch_norm(conv2d(y, block["conv2"]["w"]), block["bn2"])
            h = relu(h + y)
        return h.mean(axis=(1, 2)) @ params["head"]["w"] + params["head"]["b"]
    if model == "inception":
        h = relu(conv2d(x, params["stem"]["w"]))
        for m in params["modules"]:
            pooled = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")
            branches = [conv2d(h, m["b1"]["w"]),
                        conv2d(relu(conv2d(h, m["b3_reduce"]["w"])), m["b3"]["w"]),
                        conv2d(relu(conv2d(h, m["b5_reduce"]["w"])), m["b5"]["w"]),
                        conv2d(pooled, m["pool_proj"]["w"])]
            h = relu(batch_norm(jnp.concatenate(branches, axis=-1), m["bn"]))
        return h.mean(axis=(1, 2)) @ params["head"]["w"] + params["head"]["b"]
    validate.choice("model", model, MODELS)  # raises: every model returned above


def loss(model: str, params: dict, x, y):
    """Mean softmax cross-entropy of `model` on images `x` with int labels `y`."""
    import jax
    import jax.numpy as jnp

    logp = jax.nn.log_softmax(apply(model, params, x))
    return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))


def batch(batch_size: int = 32, seed: int = 0):
    """A reproducible batch of real UCI digits: (x (batch, 8, 8, 1) float32, y (batch,) int32)."""
    from mlsys_core.data import load_digits

    x, y = load_digits()
    validate.integer("batch_size", batch_size, 1, len(x))
    idx = np.random.default_rng(seed).choice(len(x), size=batch_size, replace=False)
    return x[idx].reshape(-1, 8, 8, 1), y[idx]


def program(model: str, mode: str = "infer", seed: int = 0, depth: int = 4, width: int = 16,
            batch_size: int = 32):
    """(fn, params, inputs) for `jaxgraph.trace`: fn(params, x) logits, or fn(params, x, y) the loss and grads."""
    import functools

    import jax

    validate.choice("mode", mode, MODES)
    params = init(model, seed=seed, depth=depth, width=width)
    x, y = batch(batch_size, seed)
    if mode == "infer":
        return functools.partial(apply, model), params, (x,)
    return jax.value_and_grad(functools.partial(loss, model)), params, (x, y)
