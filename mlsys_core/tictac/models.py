"""Small networks written in plain JAX, the programs TicTac schedules, all on 8x8 digit images.

`MODELS`: an MLP, a small CNN, a ResNet-style and an Inception-style network (the claims' four).
`BRANCHING_MODELS`: graphs whose parallel branches leave the transfer order a real choice —
`inception_skewed` (per module a 1x1 branch, a 3x3 branch and a deep branch of three 3x3 convs: costs
about 1 : 9 : 47 per pixel), `two_tower` (a dense tower on the flattened pixels — many bytes, little
compute per byte — beside a conv tower — few bytes, much compute — joined by one head) and
`transformer` (encoder blocks on the image's 8 rows as tokens: q/k/v projections in parallel,
4-head attention, a 4x MLP, pre-layer-norm residuals).

`program(model, mode, ...)` returns `(fn, params, inputs)` ready for `jaxgraph.trace`: `mode="infer"`
is the forward pass (logits), `mode="train"` is `jax.value_and_grad` of the cross-entropy loss — the
gradient computation a worker runs per iteration. Parameters are initialised from an explicit seed.
"""

from __future__ import annotations

import numpy as np

from mlsys_core import validate

MODELS = ("mlp", "cnn", "resnet", "inception")
BRANCHING_MODELS = ("inception_skewed", "two_tower", "transformer")
ALL_MODELS = MODELS + BRANCHING_MODELS
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

    `depth`: hidden layers / conv layers / residual blocks / inception modules / layers per tower /
    encoder blocks. NumPy, so that building a model compiles nothing.
    """
    validate.choice("model", model, ALL_MODELS)
    validate.integer("depth", depth, low=1)
    validate.integer("width", width, low=1)
    validate.seed("seed", seed)
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
    if model in BRANCHING_MODELS:
        return _init_branching(rng, model, depth, width)
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
    return _apply_branching(model, params, x)


def _init_branching(rng, model: str, depth: int, width: int) -> dict:
    c = width
    if model == "inception_skewed":
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
    if model == "two_tower":
        sizes = [64] + [16 * width] * depth
        dense = [_dense(rng, a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        chans = [1] + [2 * width] * depth
        convs = [{**_conv(rng, 3, a, b), "b": np.zeros(b, np.float32)} for a, b in zip(chans[:-1], chans[1:])]
        return {"dense_tower": dense, "conv_tower": convs, "head": _dense(rng, sizes[-1] + chans[-1], 10)}
    d = 2 * width
    blocks = [{"ln1": _norm(d), "q": _dense(rng, d, d), "k": _dense(rng, d, d), "v": _dense(rng, d, d),
               "o": _dense(rng, d, d), "ln2": _norm(d), "up": _dense(rng, d, 4 * d),
               "down": _dense(rng, 4 * d, d)} for _ in range(depth)]
    return {"embed": _dense(rng, 8, d), "pos": _normal(rng, (8, d), d), "blocks": blocks,
            "head": _dense(rng, d, 10)}


def layer_norm(x, p, eps=1e-5):
    """Normalise the last axis, then scale and shift."""
    import jax.numpy as jnp

    mean = x.mean(axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) / jnp.sqrt(var + eps) * p["scale"] + p["bias"]


def _apply_branching(model: str, params: dict, x):
    import jax
    import jax.numpy as jnp

    relu = jax.nn.relu
    if model == "inception_skewed":
        h = relu(conv2d(x, params["stem"]["w"]))
        for m in params["modules"]:
            pooled = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 3, 3, 1), (1, 1, 1, 1), "SAME")
            deep = relu(conv2d(h, m["deep_reduce"]["w"]))
            for conv in m["deep"]:
                deep = relu(conv2d(deep, conv["w"]))
            branches = [conv2d(h, m["b1"]["w"]), conv2d(relu(conv2d(h, m["b3_reduce"]["w"])), m["b3"]["w"]),
                        deep, conv2d(pooled, m["pool_proj"]["w"])]
            h = relu(batch_norm(jnp.concatenate(branches, axis=-1), m["bn"]))
        return h.mean(axis=(1, 2)) @ params["head"]["w"] + params["head"]["b"]
    if model == "two_tower":
        a = x.reshape(x.shape[0], -1)
        for layer in params["dense_tower"]:
            a = relu(a @ layer["w"] + layer["b"])
        b = x
        for conv in params["conv_tower"]:
            b = relu(conv2d(b, conv["w"]) + conv["b"])
        joined = jnp.concatenate([a, b.mean(axis=(1, 2))], axis=-1)
        return joined @ params["head"]["w"] + params["head"]["b"]
    if model == "transformer":
        tokens = x.reshape(x.shape[0], 8, 8)  # the image's 8 rows are the tokens
        h = tokens @ params["embed"]["w"] + params["embed"]["b"] + params["pos"]
        heads = 4
        for blk in params["blocks"]:
            y = layer_norm(h, blk["ln1"])
            q, k, v = (y @ blk[n]["w"] + blk[n]["b"] for n in ("q", "k", "v"))
            split = [z.reshape(z.shape[0], 8, heads, -1) for z in (q, k, v)]
            scores = jnp.einsum("bqhd,bkhd->bhqk", split[0], split[1]) / np.sqrt(split[0].shape[-1])
            attn = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), split[2])
            h = h + attn.reshape(h.shape) @ blk["o"]["w"] + blk["o"]["b"]
            y = layer_norm(h, blk["ln2"])
            h = h + relu(y @ blk["up"]["w"] + blk["up"]["b"]) @ blk["down"]["w"] + blk["down"]["b"]
        return h.mean(axis=1) @ params["head"]["w"] + params["head"]["b"]
    validate.choice("model", model, ALL_MODELS)  # raises: every model returned above


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
    idx = np.random.default_rng(validate.seed("seed", seed)).choice(len(x), size=batch_size, replace=False)
    return x[idx].reshape(-1, 8, 8, 1), y[idx]


def program(model: str, mode: str = "infer", seed: int = 0, depth: int = 4, width: int = 16,
            batch_size: int = 32):
    """(fn, params, inputs) for `jaxgraph.trace`: fn(params, x) logits, or fn(params, x, y) the loss and grads."""
    validate.seed("seed", seed)
    import functools

    import jax

    validate.choice("mode", mode, MODES)
    params = init(model, seed=seed, depth=depth, width=width)
    x, y = batch(batch_size, seed)
    if mode == "infer":
        return functools.partial(apply, model), params, (x,)
    return jax.value_and_grad(functools.partial(loss, model)), params, (x, y)
