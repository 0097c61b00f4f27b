"""Paper 3's privacy experiments (notebook 03b): the telemetry schedule attack and DP-FedAvg on digits.

Pure, seeded functions; the `..._sweep` ones give one value per seed for the claims registry
(`mlsys_core.claims.fl`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from mlsys_core import validate
from mlsys_core.fl import telemetry
from mlsys_core.fl.population import DAY_S, HOUR_S, Population, PopulationConfig, make_population
from mlsys_core.fl.protocol import RoundConfig, SimResult, SteeringConfig, simulate


def schedule_leak(res: SimResult, pop: Population, devices: np.ndarray) -> dict:
    """Per-device telemetry attack: infer each device's nightly window from its check-in hours."""
    true, guess = [], []
    for d in devices:
        hours = telemetry.device_checkin_times(res.log, int(d)) / HOUR_S + pop.tz_offset_h[d]
        guess.append(telemetry.infer_window(hours)[0])
        true.append(float(pop.window_start_h[d]))
    true, guess = np.array(true), np.array(guess)
    return {"true_start_h": true, "inferred_start_h": guess, "error_h": np.abs((guess - true + 12.0) % 24.0 - 12.0)}


def leak_share(res: SimResult, pop: Population, min_checkins: int = 3, within_h: float = 1.0) -> tuple[float, int]:
    """Share of traced users with >= `min_checkins` check-ins whose bedtime the attack gets within
    `within_h` hours, and how many such users there were."""
    ids, _, codes = res.log.arrays()
    n = np.bincount(ids[codes == telemetry.CODES.index("-")], minlength=res.log.traced_devices)
    victims = np.flatnonzero(n >= min_checkins)
    if not len(victims):
        return float("nan"), 0
    return float(np.mean(schedule_leak(res, pop, victims)["error_h"] < within_h)), len(victims)


def schedule_leak_sweep(pop_config: PopulationConfig, config: RoundConfig, jitters_h: Sequence[float],
                        seeds: Sequence[int], traced_devices: int = 2000, within_h: float = 1.0) -> list[np.ndarray]:
    """The telemetry attack over check-in jitter: for each mean delay in `jitters_h` (hours between a
    window opening and the first check-in), the share of traced users whose bedtime is inferred within
    `within_h`, one value per seed (one simulated day each)."""
    out = []
    for jitter in jitters_h:
        cfg = dataclasses.replace(pop_config, checkin_jitter_h=float(jitter))
        shares = []
        for s in validate.seeds("seeds", seeds):
            pop = make_population(cfg, s)
            res = simulate(pop, config, SteeringConfig(), DAY_S, s, traced_devices=traced_devices)
            shares.append(leak_share(res, pop, within_h=within_h)[0])
        out.append(np.array(shares))
    return out


class DPSweep(NamedTuple):
    """DP-FedAvg on non-IID digits: test accuracy per noise multiplier and seed, and the privacy spent."""

    noise_multipliers: np.ndarray  # (Z,)
    epsilon: np.ndarray  # (Z,) after all rounds, RDP accountant of dp-accounting, at `delta`
    accuracy: np.ndarray  # (Z, seeds) final test accuracy
    non_private: np.ndarray  # (seeds,) the same rounds with z = 0 and no clipping (C = 1e6)
    delta: float


def dp_fedavg_sweep(noise_multipliers: Sequence[float], seeds: Sequence[int], num_clients: int = 500,
                    examples_per_client: int = 20, alpha: float = 0.5, rounds: int = 30, sampling_rate: float = 0.2,
                    clip_norm: float = 0.5, delta: float = 1e-4, model=None) -> DPSweep:
    """Final accuracy of DP-FedAvg for each noise multiplier z (clip `clip_norm`, Poisson rate `sampling_rate`,
    `rounds` rounds) and of the same rounds without privacy, one value per seed. A seed draws the test split,
    the clients (Dir(alpha) class mixes resampled from the digits' train split), the initial model, the
    client samples and the noise."""
    import jax

    from mlsys_core.fl import dp
    from mlsys_core.fl.fedavg import ClientData, ModelConfig, accuracy, init_params, pad_clients, resample_clients
    from mlsys_core.fl.training import _split

    model = model or ModelConfig(batch_size=10, epochs=2)
    zs = np.array([validate.number("noise_multipliers", z, 0.0) for z in noise_multipliers], float)
    configs = [dp.DPConfig(clip_norm, z, sampling_rate) for z in zs] + [dp.DPConfig(1e6, 0.0, sampling_rate)]
    acc = np.zeros((len(configs), len(validate.seeds("seeds", seeds))))
    for j, s in enumerate(validate.seeds("seeds", seeds)):
        _, x, y, tr, test = _split(s, 0.25)
        parts = resample_clients(y[tr], num_clients, examples_per_client, alpha, s)
        data = ClientData(*(jax.numpy.asarray(a) for a in pad_clients(x[tr], y[tr], parts, model.batch_size)))
        for i, cfg in enumerate(configs):
            params, _ = dp.dp_fedavg(init_params(jax.random.key(s), model), data, jax.random.key(10_000 + s), model,
                                     cfg, rounds)
            acc[i, j] = float(accuracy(params, x[test], y[test]))
    eps = np.array([dp.epsilon(sampling_rate, z, rounds, delta) for z in zs])
    return DPSweep(zs, eps, acc[:-1], acc[-1], delta)
