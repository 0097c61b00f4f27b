"""Gradient inversion: what one FedSGD update of the small MLP reveals about a client's digit.

The survey's warning about Paper 3 is that model updates can leak the data they were computed on.
A curious server that holds the model and one client's FedSGD update (the gradient of the loss on the
client's batch, here one 8x8 digit) can search for an input whose gradient matches it: "Deep Leakage
from Gradients" (Zhu et al., NeurIPS 2019), with the label read off the sign of the output-bias
gradient (iDLG, Zhao et al. 2020: for one example, d loss / d b2 = softmax - onehot is negative only
at the true label). The optimisation runs on the input in JAX (Adam, projected onto [0, 1], one jit'd
`lax.scan`); quality is the PSNR of the reconstruction against the true image.

`attack_over_seeds` measures what the defences do: DP clipping + Gaussian noise on the update
(DP-FedAvg's noise, here as seen by whoever receives it), and Secure Aggregation (the server sees only
the sum of `group` clients' updates, so it can only invert the sum).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlsys_core import validate
from mlsys_core.fl.fedavg import ModelConfig, init_params, masked_loss
from mlsys_core.seeds import DEFAULT_SEEDS


def update_of(params: dict, x, y) -> dict:
    """A client's FedSGD update: the gradient of the mean loss on its examples x (B, 64), y (B,)."""
    return jax.grad(masked_loss)(params, x, y, jnp.ones(x.shape[0]))


def infer_label(update: dict) -> int:
    """iDLG: the only negative entry of the output-bias gradient of a one-example update."""
    return int(jnp.argmin(update["b2"]))


def _distance(a: dict, b: dict) -> jax.Array:
    """1 - cosine similarity of two gradient pytrees (Geiping et al. 2020: robust to the update's scale)."""
    dot = sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    na = jnp.sqrt(sum(jnp.vdot(x, x) for x in jax.tree.leaves(a)))
    nb = jnp.sqrt(sum(jnp.vdot(y, y) for y in jax.tree.leaves(b)))
    return 1.0 - dot / (na * nb + 1e-12)


@functools.partial(jax.jit, static_argnames=("steps",))
def reconstruct(params: dict, update: dict, label, key, steps: int = 200,
                learning_rate: float = 0.05) -> tuple[jax.Array, jax.Array]:
    """The input x in [0, 1]^64 whose one-example gradient best matches `update` (cosine distance),
    from a uniform random start; Adam on x, projected back onto [0, 1] after every step.

    Args:
        params: the model the update was computed on.
        update: the observed update (a gradient pytree like `params`).
        label: the label to reconstruct for (e.g. `infer_label(update)`).
        key: PRNG key of the random start.
        steps: Adam steps.
        learning_rate: Adam's step size.

    Returns:
        (x, the distance after each step).
    """
    opt = optax.adam(learning_rate)
    y = jnp.asarray(label)[None]

    def loss(x) -> jax.Array:
        return _distance(update_of(params, x[None], y), update)

    def step(carry, _) -> tuple:
        x, state = carry
        value, g = jax.value_and_grad(loss)(x)
        upd, state = opt.update(g, state, x)
        return (jnp.clip(optax.apply_updates(x, upd), 0.0, 1.0), state), value

    x0 = jax.random.uniform(key, (params["w1"].shape[0],))
    (x, _), curve = jax.lax.scan(step, (x0, opt.init(x0)), None, length=steps)
    return x, curve


def psnr(reconstruction, truth) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    mse = float(np.mean((np.asarray(reconstruction, np.float64) - np.asarray(truth, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def clip_and_noise(update: dict, clip_norm: float, noise_std: float, key) -> dict:
    """The update clipped to L2 norm `clip_norm` (whole pytree) plus Gaussian noise of std `noise_std`.

    Args:
        update: a pytree of arrays.
        clip_norm: the L2 norm it is clipped to (> 0).
        noise_std: standard deviation of the noise added to every coordinate (>= 0).
        key: PRNG key of the noise.
    """
    validate.positive("clip_norm", clip_norm)
    validate.number("noise_std", noise_std, 0.0)
    leaves, treedef = jax.tree.flatten(update)
    norm = jnp.sqrt(sum(jnp.vdot(x, x) for x in leaves))
    scale = jnp.minimum(1.0, clip_norm / (norm + 1e-12))
    keys = jax.random.split(key, len(leaves))
    return jax.tree.unflatten(treedef, [x * scale + noise_std * jax.random.normal(k, x.shape)
                                        for x, k in zip(leaves, keys)])


@dataclasses.dataclass(frozen=True)
class InversionStudy:
    """PSNR (dB) of the reconstructed target digit per setting and seed, and examples for a figure."""

    settings: tuple[str, ...]  # the four settings' names
    psnr: np.ndarray  # (settings, seeds)
    label_correct: np.ndarray  # (settings, seeds) iDLG got the label right
    baseline_psnr: np.ndarray  # (seeds,) the mean training digit as the "reconstruction"
    truth: np.ndarray  # (seeds, 64) the targets
    reconstructions: np.ndarray  # (settings, seeds, 64)


SETTINGS = ("clear", "dp", "secagg", "secagg_dp")  # what the server sees, in `attack_over_seeds`' row order


def _observed(x: np.ndarray, y: np.ndarray, seed: int, group: int, clip_norm: float,
              noise_multiplier: float) -> tuple[dict, np.ndarray, dict]:
    """One seed's case: the model, the target's index among the digits, and what the server sees in each of
    `SETTINGS` (the seed picks the target and the other clients' digits, the model, the noise)."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(len(x), group, replace=False)
    k_init, k_noise, _ = jax.random.split(jax.random.key(seed), 3)
    params = init_params(k_init, ModelConfig())
    updates = [update_of(params, jnp.asarray(x[i][None]), jnp.asarray(y[i][None])) for i in ids]
    target = updates[0]
    summed = jax.tree.map(lambda *u: sum(u), *updates)
    clipped_sum = jax.tree.map(lambda *u: sum(u), *[clip_and_noise(u, clip_norm, 0.0, k_noise) for u in updates])
    seen = {"clear": target, "dp": clip_and_noise(target, clip_norm, noise_multiplier * clip_norm, k_noise),
            "secagg": summed, "secagg_dp": clip_and_noise(clipped_sum, 1e9, noise_multiplier * clip_norm, k_noise)}
    return params, ids, seen


def _check_attack(seeds, group: int, clip_norm: float, noise_multiplier: float, steps: int) -> tuple[int, ...]:
    validate.integer("group", group, 2)
    validate.positive("clip_norm", clip_norm)
    validate.number("noise_multiplier", noise_multiplier, 0.0)
    validate.integer("steps", steps, 1)
    return validate.seeds("seeds", seeds)


def attack_psnr(setting: str, seeds=DEFAULT_SEEDS, group: int = 16, clip_norm: float = 1.0,
                noise_multiplier: float = 1.0, steps: int = 200) -> np.ndarray:
    """PSNR (dB) of the target digit reconstructed from what the server sees in one of `SETTINGS`, one
    value per seed: the same numbers as that row of `attack_over_seeds`, without the other settings' attacks.

    Args:
        setting: one of `SETTINGS`.
        seeds: one target each.
        group: clients in a Secure Aggregation sum (>= 2).
        clip_norm: DP-FedAvg's L2 clip norm C.
        noise_multiplier: DP-FedAvg's z (noise std z x C).
        steps: Adam steps of each reconstruction.
    """
    from mlsys_core.data import load_digits

    validate.choice("setting", setting, SETTINGS)
    seeds = _check_attack(seeds, group, clip_norm, noise_multiplier, steps)
    x, y = load_digits()
    out = np.zeros(len(seeds))
    for j, s in enumerate(seeds):
        params, ids, seen = _observed(x, y, s, group, clip_norm, noise_multiplier)
        upd = seen[setting]
        rec, _ = reconstruct(params, upd, infer_label(upd), jax.random.split(jax.random.key(s), 3)[2], steps=steps)
        out[j] = psnr(rec, x[ids[0]])
    return out


def mean_digit_psnr(seeds=DEFAULT_SEEDS, group: int = 16) -> np.ndarray:
    """PSNR (dB) of the mean training digit against each seed's target: what knowing nothing scores."""
    from mlsys_core.data import load_digits

    validate.integer("group", group, 2)
    x, _ = load_digits()
    targets = [np.random.default_rng(s).choice(len(x), group, replace=False)[0] for s in validate.seeds("seeds", seeds)]
    return np.array([psnr(x.mean(0), x[i]) for i in targets])


def attack_over_seeds(seeds=DEFAULT_SEEDS, group: int = 16, clip_norm: float = 1.0,
                      noise_multiplier: float = 1.0, steps: int = 200) -> InversionStudy:
    """Gradient inversion of one client's digit (one example, FedSGD on the untrained MLP) in four
    settings (`SETTINGS`): the raw update; clipped to `clip_norm` with Gaussian noise of std noise_multiplier *
    clip_norm (DP-FedAvg's noise on one update); the Secure Aggregation sum of `group` clients' raw
    updates (the target's among them); that sum clipped and noised per DP-FedAvg. A seed picks the
    target and the other clients' digits, the model's initialisation, the noise and the start.

    Args:
        seeds: one target each.
        group: clients in a Secure Aggregation sum (>= 2).
        clip_norm: DP-FedAvg's L2 clip norm C.
        noise_multiplier: DP-FedAvg's z (noise std z x C).
        steps: Adam steps of each reconstruction.
    """
    from mlsys_core.data import load_digits

    seeds = _check_attack(seeds, group, clip_norm, noise_multiplier, steps)
    x, y = load_digits()
    names = ("update in the clear", f"DP: clip {clip_norm:g}, noise z = {noise_multiplier:g}",
             f"Secure Aggregation: sum of {group}", f"Secure Aggregation + DP (sum of {group})")
    out = np.zeros((len(names), len(seeds)))
    labels_ok = np.zeros((len(names), len(seeds)), bool)
    recs = np.zeros((len(names), len(seeds), x.shape[1]))
    truth = np.zeros((len(seeds), x.shape[1]))
    baseline = np.zeros(len(seeds))
    mean_digit = x.mean(0)
    for j, s in enumerate(seeds):
        params, ids, seen = _observed(x, y, s, group, clip_norm, noise_multiplier)
        k_start = jax.random.split(jax.random.key(s), 3)[2]
        truth[j] = x[ids[0]]
        baseline[j] = psnr(mean_digit, x[ids[0]])
        for i, setting in enumerate(SETTINGS):
            upd = seen[setting]
            label = infer_label(upd)
            labels_ok[i, j] = label == int(y[ids[0]])
            rec, _ = reconstruct(params, upd, label, k_start, steps=steps)
            recs[i, j] = np.asarray(rec)
            out[i, j] = psnr(rec, x[ids[0]])
    return InversionStudy(names, out, labels_ok, baseline, truth, recs)
