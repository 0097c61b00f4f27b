"""Secure Aggregation inside a FedAvg round, as deployed (Bonawitz et al., SysML 2019, section 6).

The round's devices are split into Aggregator groups of at least k devices; each group runs the
protocol of `secagg` on its own, and the Master Aggregator adds the groups' sums. The protocol sums
integers, so each coordinate of a float update is clipped and stochastically rounded to one of 2^bits
levels (unbiased), then multiplied by the device's integer weight (its example count); the weight itself
rides along as one more coordinate, so the server can divide.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt

from mlsys_core import validate
from mlsys_core.fl.secagg import PHASES, dropout_rounds, secure_aggregate


@dataclasses.dataclass(frozen=True)
class SecureRoundConfig:
    """Groups of at least `min_group` devices (the paper's k; the remainder is spread over the groups, so
    each has between min_group and 2 min_group - 1), each with threshold floor(threshold_fraction * n_g)
    + 1 (> n_g / 2); each coordinate clipped to [-clip, clip] and rounded to one of 2^bits levels. The
    modulus is sized so a group's sum cannot wrap."""

    min_group: int = 8
    threshold_fraction: float = 0.5
    bits: int = 16
    clip: float = 0.05

    def __post_init__(self) -> None:
        validate.integer("min_group", self.min_group, 2)
        validate.number("threshold_fraction", self.threshold_fraction, 0.5, 1.0, high_open=True)
        validate.integer("bits", self.bits, 1, 32)
        object.__setattr__(self, "clip", validate.number("clip", self.clip, 0.0, low_open=True))

    @property
    def step(self) -> float:
        """One quantisation level: the mean of the dequantised updates is within this of the mean of
        the clipped updates, coordinate by coordinate."""
        return 2 * self.clip / (2**self.bits - 1)


def quantize(x: np.ndarray, clip: float, bits: int, rng: np.random.Generator) -> np.ndarray:
    """Clip to [-clip, clip] and round stochastically to levels 0 .. 2^bits - 1: E[level] is exact.

    Args:
        x: the values (any shape).
        clip: the clipping bound (> 0; same unit as `x`).
        bits: bits per level (1 to 62).
        rng: the generator of the rounding.
    """
    x = validate.reals("x", x)
    clip = validate.positive("clip", clip)
    bits = validate.integer("bits", bits, 1, 62)
    validate.instance("rng", rng, np.random.Generator)
    scaled = (np.clip(x, -clip, clip) + clip) / (2 * clip) * (2**bits - 1)
    low = np.floor(scaled)
    return (low + (rng.random(scaled.shape) < scaled - low)).astype(np.int64)


def dequantize(mean_level: np.ndarray, clip: float, bits: int) -> np.ndarray:
    """The value of a (mean) level: the inverse of `quantize`'s scaling."""
    return np.asarray(mean_level, np.float64) / (2**bits - 1) * 2 * clip - clip


def aggregator_groups(num_devices: int, min_group: int) -> list[np.ndarray]:
    """Device ids split into consecutive groups of at least `min_group` devices each."""
    k = validate.integer("min_group", min_group, 2)
    n = validate.integer("num_devices", num_devices, 1)
    if n < k:
        raise ValueError(f"num_devices must be at least min_group = {k} (one whole group), got {n}")
    return np.array_split(np.arange(n), max(n // k, 1))


@dataclasses.dataclass(frozen=True)
class SecureRound:
    """One FedAvg round's mean computed by Secure Aggregation over Aggregator groups."""

    mean: dict  # the weighted mean update (pytree like the deltas), float32
    included: np.ndarray  # bool per device: its update is in the mean
    groups: list[np.ndarray]  # device ids per Aggregator group
    bytes_sent: dict[str, np.ndarray]  # phase -> bytes each device sent, measured
    plain_bytes: int  # bytes of one quantised update in the clear
    aborted: list[str]  # per group: "" or why that group's aggregation aborted


def secure_fedavg_mean(deltas: dict, weights: npt.ArrayLike, config: SecureRoundConfig, *,
                       dropout_round: npt.ArrayLike | None = None,
                       insecure_seed: int | None = None) -> SecureRound:
    """FedAvg's weighted mean of the clients' deltas (leading axis: clients), computed by Secure
    Aggregation per Aggregator group and summed by the Master Aggregator. Groups that abort contribute
    nothing; the mean is over the devices included.

    Args:
        deltas: the clients' deltas, a pytree with a leading clients axis.
        weights: each client's integer weight (its example count).
        config: groups, threshold, bits and clip.
        dropout_round: per client, the Secure Aggregation round it stops sending in (None: nobody drops).
        insecure_seed: replays the rounding and every key (teaching only: see `secagg`; None: secure).
    """
    import jax

    validate.instance("config", config, SecureRoundConfig)
    leaves, treedef = jax.tree.flatten(deltas)
    flat = np.concatenate([np.asarray(leaf, np.float64).reshape(len(leaf), -1) for leaf in leaves], axis=1)
    w = validate.integers("weights", weights, 0)
    if w.shape != (len(flat),):
        raise ValueError(f"weights must be one example count per client, shape ({len(flat)},); got {w.shape}")
    n, d = flat.shape
    drop = dropout_rounds(dropout_round, n)
    rng = np.random.default_rng(None if insecure_seed is None else [validate.seed("insecure_seed", insecure_seed), 1])
    levels = quantize(flat, config.clip, config.bits, rng) * w[:, None]
    payload = np.concatenate([levels, w[:, None]], axis=1)  # the weight rides along
    total = np.zeros(d + 1, np.int64)
    included = np.zeros(n, bool)
    bytes_sent = {p: np.zeros(n, np.int64) for p in PHASES}
    groups, aborted = aggregator_groups(n, config.min_group), []
    for g, ids in enumerate(groups):
        modulus_bits = config.bits + math.ceil(math.log2(int(w[ids].sum()) + 1)) + 1
        t = min(len(ids), int(config.threshold_fraction * len(ids)) + 1)
        res = secure_aggregate(payload[ids], t, modulus_bits, dropout_round=drop[ids],
                               insecure_seed=None if insecure_seed is None else insecure_seed * 7919 + g)
        for p in PHASES:
            bytes_sent[p][ids] = res.bytes_sent[p]
        aborted.append(res.aborted)
        if res.total is not None:
            total += res.total.astype(np.int64)  # the Master Aggregator adds the groups' sums
            included[ids] = res.included
    weight = max(int(total[-1]), 1)
    mean = dequantize(total[:-1] / weight, config.clip, config.bits) if total[-1] else np.zeros(d)
    out, start = [], 0
    for leaf in leaves:
        size = int(np.prod(leaf.shape[1:]))
        out.append(mean[start: start + size].reshape(leaf.shape[1:]).astype(np.float32))
        start += size
    return SecureRound(jax.tree.unflatten(treedef, out), included, groups, bytes_sent,
                       math.ceil(d * config.bits / 8), aborted)

