"""DP-FedAvg (McMahan et al., ICLR 2018): user-level differential privacy for a FedAvg round.

Each round samples every client independently with probability q (Poisson sampling), clips each
sampled client's whole update pytree to L2 norm C, sums the clipped updates, adds Gaussian noise of
standard deviation z * C to every coordinate of the sum, and divides by the *expected* number of
clients q * N — the paper's fixed-denominator estimator f_f with every user weighted 1. Dividing by
a constant (not by the number actually sampled) keeps one user's influence on the average bounded by
C / (q N), which is what the noise is calibrated to; the estimator is unbiased for the mean of all N
clients' clipped updates.

The privacy loss of T such rounds, (epsilon, delta), comes from Google's `dp-accounting` package:
a `PoissonSampledDpEvent(q, GaussianDpEvent(z))` composed T times, under its RDP accountant or its
PLD accountant. Nothing here evaluates a privacy formula by hand except `moments_accountant_epsilon`,
the RDP-to-(epsilon, delta) tail bound that Abadi et al. (2016) used, kept to compare with their figure.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlsys_core import validate
from mlsys_core.fl.fedavg import ClientData, ModelConfig, client_deltas

if TYPE_CHECKING:
    import dp_accounting

# integer orders: exact in dp-accounting (fractional ones near 1 may fail to converge)
RDP_ORDERS = (*range(2, 65), 80, 96, 128, 192, 256)


def _rdp_accountant() -> dp_accounting.PrivacyAccountant:
    """dp-accounting's RDP accountant over `RDP_ORDERS` (converted to epsilon with its tight bound)."""
    from dp_accounting import rdp

    return rdp.RdpAccountant(orders=list(RDP_ORDERS))


def _pld_accountant() -> dp_accounting.PrivacyAccountant:
    """dp-accounting's privacy-loss-distribution accountant."""
    from dp_accounting import pld

    return pld.PLDAccountant()


ACCOUNTANTS = {"rdp": _rdp_accountant, "pld": _pld_accountant}  # name -> a fresh accountant


@dataclasses.dataclass(frozen=True)
class DPConfig:
    """DP-FedAvg's three knobs: clip norm C (L2, whole update), noise multiplier z, sampling rate q."""

    clip_norm: float = 1.0  # C: L2 bound on a client's whole update
    noise_multiplier: float = 1.0  # z: noise std on the clipped sum is z x C
    sampling_rate: float = 0.1  # q: each client takes part in a round with this probability

    def __post_init__(self) -> None:
        # stored as Python floats, so NumPy scalars do not change the traced dtypes (and recompile)
        object.__setattr__(self, "clip_norm", validate.number("clip_norm", self.clip_norm, 0.0, low_open=True))
        object.__setattr__(self, "noise_multiplier", validate.number("noise_multiplier", self.noise_multiplier, 0.0))
        object.__setattr__(self, "sampling_rate",
                           validate.number("sampling_rate", self.sampling_rate, 0.0, 1.0, low_open=True))

    @property
    def noise_std(self) -> float:
        """Standard deviation of the Gaussian noise added to each coordinate of the clipped sum: z * C."""
        return self.noise_multiplier * self.clip_norm


def _check_tree(name: str, tree: Any) -> None:
    """Check that `tree` is a pytree of arrays of finite numbers, at least one."""
    leaves = jax.tree_util.tree_leaves_with_path(tree)
    if not leaves:
        raise ValueError(f"{name} must be a pytree of arrays of numbers, got {tree!r} (no arrays in it)")
    for path, leaf in leaves:
        validate.reals(f"{name}{jax.tree_util.keystr(path)}", leaf)


def clip_update(update: dict, clip_norm: float) -> dict:
    """Scale one client's update pytree so its global L2 norm is at most `clip_norm` (> 0; unchanged if below)."""
    _check_tree("update", update)
    return _clip_update(update, validate.positive("clip_norm", clip_norm))


def clip_updates(updates: dict, clip_norm: float) -> dict:
    """`clip_update` for every client of a stacked pytree (leading axis: clients)."""
    _check_tree("updates", updates)
    return _clip_updates(updates, validate.positive("clip_norm", clip_norm))


def noisy_mean(clipped: dict, included: jax.Array, key: jax.Array, noise_std: float, expected_clients: float) -> dict:
    """(Sum of the included clients' clipped updates + N(0, noise_std^2) per coordinate) / expected_clients.

    Args:
        clipped: the clients' clipped updates, a pytree stacked along a leading clients axis.
        included: (clients,) 0/1 mask of the Poisson sample.
        key: PRNG key of the noise.
        noise_std: the noise's standard deviation on the sum (z x C).
        expected_clients: the fixed denominator q x N.
    """
    validate.number("noise_std", noise_std, 0.0)
    validate.positive("expected_clients", expected_clients)
    return _noisy_mean(clipped, included, key, noise_std, expected_clients)


def poisson_sample(key: jax.Array, num_clients: int, sampling_rate: float) -> jax.Array:
    """Each of `num_clients` clients taking part independently with probability q: a (clients,) 0/1 float mask."""
    validate.integer("num_clients", num_clients, 0)
    validate.probability("sampling_rate", sampling_rate)
    return _poisson_sample(key, num_clients, sampling_rate)


def sample_capacity(num_clients: int, sampling_rate: float) -> int:
    """Room for the Poisson sample in fixed shapes: q N + 6 standard deviations (+ 1), at most N."""
    validate.integer("num_clients", num_clients, 0)
    validate.probability("sampling_rate", sampling_rate)
    mean = sampling_rate * num_clients
    return int(min(num_clients, math.ceil(mean + 6.0 * math.sqrt(mean * (1.0 - sampling_rate)) + 1.0)))


def _clip_update(update: dict, clip_norm: float | jax.Array) -> dict:
    norm = optax.tree.norm(update)
    scale = jnp.minimum(1.0, clip_norm / jnp.maximum(norm, 1e-30))
    return jax.tree.map(lambda u: u * scale, update)


def _clip_updates(updates: dict, clip_norm: float | jax.Array) -> dict:
    return jax.vmap(_clip_update, in_axes=(0, None))(updates, clip_norm)


def _noisy_mean(clipped: dict, included: jax.Array, key: jax.Array, noise_std: float | jax.Array,
                expected_clients: float | jax.Array) -> dict:
    leaves, treedef = jax.tree.flatten(clipped)
    keys = jax.random.split(key, len(leaves))
    out = [(jnp.tensordot(included.astype(x.dtype), x, axes=1) + noise_std * jax.random.normal(k, x.shape[1:], x.dtype))
           / expected_clients for x, k in zip(leaves, keys)]
    return jax.tree.unflatten(treedef, out)


def _poisson_sample(key: jax.Array, num_clients: int, sampling_rate: float | jax.Array) -> jax.Array:
    return jax.random.bernoulli(key, sampling_rate, (num_clients,)).astype(jnp.float32)


def _check_round(data: ClientData, model: ModelConfig, dp: DPConfig, server_learning_rate: float) -> None:
    validate.instance("data", data, ClientData, "a fedavg.ClientData")
    validate.instance("model", model, ModelConfig, "a fedavg.ModelConfig")
    validate.instance("dp", dp, DPConfig, "a dp.DPConfig")
    validate.positive("server_learning_rate", server_learning_rate)


def dp_fedavg_round(params: dict, data: ClientData, key: jax.Array, model: ModelConfig, dp: DPConfig,
                    server_learning_rate: float = 1.0) -> tuple[dict, int]:
    """One DP-FedAvg round over the N clients of `data`: Poisson-sample, train the sampled clients (one
    vmapped call over `sample_capacity` slots), clip, sum, add noise, divide by q N.

    A sample larger than the capacity (probability below 1e-8) raises rather than silently dropping
    clients, which would break the accountant's assumption. The config's numbers are traced, so sweeping
    z or C compiles once.

    Args:
        params: the global model.
        data: the N clients' data (padded, `fedavg.pad_clients`).
        key: PRNG key of the sample and the noise.
        model: the model and local optimiser.
        dp: clip norm, noise multiplier and sampling rate.
        server_learning_rate: the server's step on the noisy mean.

    Returns:
        (new params, number of clients sampled).
    """
    _check_round(data, model, dp, server_learning_rate)
    n = data.x.shape[0]
    cap = sample_capacity(n, dp.sampling_rate)
    params, count = _round(params, data, key, model, cap, dp.clip_norm, dp.noise_std, dp.sampling_rate,
                           server_learning_rate)
    count = int(count)
    if count > cap:
        raise RuntimeError(f"Poisson sample of {count} clients exceeds the capacity {cap}")
    return params, count


@functools.partial(jax.jit, static_argnames=("model", "cap"))
def _round(params: dict, data: ClientData, key: jax.Array, model: ModelConfig, cap: int, clip_norm: float | jax.Array,
           noise_std: float | jax.Array, sampling_rate: float | jax.Array,
           server_learning_rate: float | jax.Array) -> tuple[dict, jax.Array]:
    k_sample, k_noise = jax.random.split(key)
    n = data.x.shape[0]
    included = _poisson_sample(k_sample, n, sampling_rate)
    (idx,) = jnp.nonzero(included, size=cap, fill_value=0)
    valid = (jnp.arange(cap) < included.sum()).astype(jnp.float32)
    sampled = ClientData(*(jnp.asarray(a)[idx] for a in data))
    clipped = _clip_updates(client_deltas(params, sampled, model), clip_norm)
    step = _noisy_mean(clipped, valid, k_noise, noise_std, sampling_rate * n)
    return jax.tree.map(lambda p, d: p + server_learning_rate * d, params, step), included.sum()


def dp_fedavg(params: dict, data: ClientData, key: jax.Array, model: ModelConfig, dp: DPConfig, rounds: int,
              server_learning_rate: float = 1.0) -> tuple[dict, np.ndarray]:
    """`rounds` DP-FedAvg rounds in one compiled `lax.scan` (round r uses the r-th split of `key`); raises
    like `dp_fedavg_round` if a sample overflowed.

    Args:
        params: the initial global model.
        data: the N clients' data (padded, `fedavg.pad_clients`).
        key: PRNG key of every round's sample and noise.
        model: the model and local optimiser.
        dp: clip norm, noise multiplier and sampling rate.
        rounds: how many rounds.
        server_learning_rate: the server's step on the noisy mean.

    Returns:
        (final params, clients sampled per round).
    """
    _check_round(data, model, dp, server_learning_rate)
    validate.integer("rounds", rounds, 1)
    n = data.x.shape[0]
    cap = sample_capacity(n, dp.sampling_rate)
    params, counts = _rounds(params, data, jax.random.split(key, rounds), model, cap, dp.clip_norm, dp.noise_std,
                             dp.sampling_rate, server_learning_rate)
    counts = np.asarray(counts)
    if counts.max() > cap:
        raise RuntimeError(f"Poisson sample of {counts.max()} clients exceeds the capacity {cap}")
    return params, counts


@functools.partial(jax.jit, static_argnames=("model", "cap"))
def _rounds(params: dict, data: ClientData, keys: jax.Array, model: ModelConfig, cap: int, clip_norm: float | jax.Array,
            noise_std: float | jax.Array, sampling_rate: float | jax.Array,
            server_learning_rate: float | jax.Array) -> tuple[dict, jax.Array]:
    def one(p: dict, k: jax.Array) -> tuple[dict, jax.Array]:
        return _round(p, data, k, model, cap, clip_norm, noise_std, sampling_rate, server_learning_rate)

    return jax.lax.scan(one, params, keys)


def dp_event(sampling_rate: float, noise_multiplier: float, rounds: int) -> dp_accounting.DpEvent:
    """The `dp-accounting` event of `rounds` Poisson-sampled Gaussian rounds."""
    import dp_accounting

    sampling_rate = validate.number("sampling_rate", sampling_rate, 0.0, 1.0, low_open=True)
    noise_multiplier = validate.number("noise_multiplier", noise_multiplier, 0.0)
    rounds = validate.integer("rounds", rounds, 1)
    step = dp_accounting.PoissonSampledDpEvent(sampling_rate, dp_accounting.GaussianDpEvent(noise_multiplier))
    return dp_accounting.SelfComposedDpEvent(step, rounds)


def epsilon(sampling_rate: float, noise_multiplier: float, rounds: int, delta: float, accountant: str = "rdp") -> float:
    """epsilon of (epsilon, delta)-DP after `rounds` rounds, from a `dp-accounting` accountant. z = 0 adds
    no noise: epsilon is infinite.

    Args:
        sampling_rate: q, the Poisson sampling rate per round.
        noise_multiplier: z.
        rounds: T, rounds composed.
        delta: the delta of (epsilon, delta)-DP, in (0, 1).
        accountant: a name in `ACCOUNTANTS` ("rdp" or "pld").
    """
    delta = validate.number("delta", delta, 0.0, 1.0, low_open=True, high_open=True)
    validate.choice("accountant", accountant, ACCOUNTANTS)
    event = dp_event(sampling_rate, noise_multiplier, rounds)
    if noise_multiplier == 0:
        return math.inf
    return float(ACCOUNTANTS[accountant]().compose(event).get_epsilon(delta))


def rdp_curve(sampling_rate: float, noise_multiplier: float, rounds: int,
              orders: Sequence[float] = RDP_ORDERS) -> tuple[np.ndarray, np.ndarray]:
    """Renyi DP of the composed event at each order, from `dp-accounting`'s RDP accountant.

    Args:
        sampling_rate: q, the Poisson sampling rate per round.
        noise_multiplier: z (> 0).
        rounds: T, rounds composed.
        orders: the Renyi orders.

    Returns:
        (orders, RDP at each order).
    """
    from dp_accounting import rdp

    validate.number("noise_multiplier", noise_multiplier, 0.0, low_open=True)
    acc = rdp.RdpAccountant(orders=list(orders)).compose(dp_event(sampling_rate, noise_multiplier, rounds))
    return np.asarray(acc.orders, float), np.asarray(acc.rdp, float)


def moments_accountant_epsilon(sampling_rate: float, noise_multiplier: float, rounds: int, delta: float,
                               max_order: float = RDP_ORDERS[-1]) -> float:
    """Abadi et al. (2016)'s conversion: min over integer orders a <= `max_order` of RDP(a) + log(1/delta) / (a - 1).

    The RDP values (the log moments) come from `dp-accounting`; only the tail bound (Abadi et al.'s Theorem 2,
    Mironov 2017's Proposition 3) is applied here. `dp-accounting` itself converts with a tighter bound
    (Canonne, Kamath and Steinke 2020), so its `epsilon` is smaller; this one is comparable with the 2016 paper.

    Args:
        sampling_rate: q, the sampling rate per step.
        noise_multiplier: z (> 0).
        rounds: T, steps composed.
        delta: the delta of (epsilon, delta)-DP, in (0, 1).
        max_order: the largest order of `RDP_ORDERS` used (>= 2; the 2016 paper used orders up to 32).
    """
    validate.number("delta", delta, 0.0, 1.0, low_open=True, high_open=True)
    validate.number("max_order", max_order, 2.0)
    orders, rdp = rdp_curve(sampling_rate, noise_multiplier, rounds, tuple(a for a in RDP_ORDERS if a <= max_order))
    return float(np.min(rdp + np.log(1.0 / delta) / (orders - 1.0)))
