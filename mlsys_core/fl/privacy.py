"""Paper 3's privacy experiments (notebook 03b): the telemetry schedule attack and DP-FedAvg on digits.

Pure, seeded functions; the `..._sweep` ones give one value per seed for the claims registry
(`mlsys_core.claims.fl`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mlsys_core import validate
from mlsys_core.fl import telemetry
from mlsys_core.fl.population import DAY_S, HOUR_S, Population, PopulationConfig, make_population
from mlsys_core.fl.protocol import FLSimResult, simulate
from mlsys_core.fl.rounds import RoundConfig
from mlsys_core.fl.steering import SteeringConfig
from mlsys_core.seeds import DEFAULT_SEEDS

if TYPE_CHECKING:
    from mlsys_core.fl.fedavg import ModelConfig


@dataclasses.dataclass(frozen=True)
class ScheduleLeak:
    """The per-device telemetry attack on some devices (arrays aligned per device, local hours)."""

    true_start_h: np.ndarray  # when each device's nightly window really opens
    inferred_start_h: np.ndarray  # when the attack says it opens
    error_h: np.ndarray  # |inferred - true| on the 24-hour circle


def schedule_leak(res: FLSimResult, pop: Population, devices: np.ndarray) -> ScheduleLeak:
    """Per-device telemetry attack: infer each device's nightly window from its check-in hours."""
    true, guess = [], []
    for d in devices:
        hours = telemetry.device_checkin_times(res.log, int(d)) / HOUR_S + pop.tz_offset_h[d]
        guess.append(telemetry.infer_window(hours)[0])
        true.append(float(pop.window_start_h[d]))
    true, guess = np.array(true), np.array(guess)
    return ScheduleLeak(true, guess, np.abs((guess - true + 12.0) % 24.0 - 12.0))


def leak_share(res: FLSimResult, pop: Population, min_checkins: int = 3, within_h: float = 1.0) -> tuple[float, int]:
    """Share of traced users with >= `min_checkins` check-ins whose bedtime the attack gets within
    `within_h` hours, and how many such users there were.

    Args:
        res: a simulated run whose log traced the users.
        pop: its population.
        min_checkins: only users with at least this many check-ins are attacked.
        within_h: a guess this close (hours) counts as right.
    """
    validate.integer("min_checkins", min_checkins, 1)
    validate.positive("within_h", within_h)
    ids, _, codes = res.log.arrays()
    n = np.bincount(ids[codes == telemetry.CODES.index("-")], minlength=res.log.traced_devices)
    victims = np.flatnonzero(n >= min_checkins)
    if not len(victims):
        return float("nan"), 0
    return float(np.mean(schedule_leak(res, pop, victims).error_h < within_h)), len(victims)


def schedule_leak_sweep(pop_config: PopulationConfig, config: RoundConfig, jitters_h: Sequence[float],
                        seeds=DEFAULT_SEEDS, traced_devices: int = 2000, within_h: float = 1.0) -> list[np.ndarray]:
    """The telemetry attack over check-in jitter: for each mean delay in `jitters_h`, the share of traced
    users whose bedtime is inferred within `within_h`, one value per seed (one simulated day each).

    Args:
        pop_config: the population (its check-in jitter is replaced by each of `jitters_h`).
        config: the round configuration.
        jitters_h: mean delays (hours) between a window opening and the first check-in.
        seeds: one population and day each.
        traced_devices: devices whose telemetry the attacker reads.
        within_h: a guess this close (hours) counts as right.

    Returns:
        per jitter, the share per seed.
    """
    validate.integer("traced_devices", traced_devices, 1)
    validate.positive("within_h", within_h)
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


@dataclasses.dataclass(frozen=True)
class DPSweep:
    """DP-FedAvg on non-IID digits: test accuracy per noise multiplier and seed, and the privacy spent."""

    noise_multipliers: np.ndarray  # (Z,) z
    epsilon: np.ndarray  # (Z,) after all rounds, RDP accountant of dp-accounting, at `delta`
    accuracy: np.ndarray  # (Z, seeds) final test accuracy
    non_private: np.ndarray  # (seeds,) the same rounds with z = 0 and no clipping (C = 1e6)
    delta: float  # the delta of (epsilon, delta)-DP
    rounds: int  # DP-FedAvg rounds per run


def dp_fedavg_sweep(noise_multipliers: Sequence[float], seeds=DEFAULT_SEEDS, num_clients: int = 500,
                    examples_per_client: int = 20, alpha: float = 0.5, rounds: int = 30, sampling_rate: float = 0.2,
                    clip_norm: float = 0.5, delta: float = 1e-4, model: ModelConfig | None = None) -> DPSweep:
    """Final accuracy of DP-FedAvg for each noise multiplier z and of the same rounds without privacy, one
    value per seed. A seed draws the test split, the clients (Dir(alpha) class mixes resampled from the
    digits' train split), the initial model, the client samples and the noise.

    Args:
        noise_multipliers: the z values (>= 0), one row each.
        seeds: one run per z each.
        num_clients: clients in the population.
        examples_per_client: digits each client holds.
        alpha: Dirichlet concentration of the clients' class mix (> 0).
        rounds: DP-FedAvg rounds.
        sampling_rate: Poisson sampling rate q of clients per round.
        clip_norm: L2 clip norm C of a client's update.
        delta: the delta epsilon is reported at.
        model: the model and local optimiser (default: batch 10, 2 local epochs).
    """
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
    return DPSweep(zs, eps, acc[:-1], acc[-1], delta, rounds)


def _device_bins(log: telemetry.EventLog, bin_s: float, nbins: int, max_bins: int | None) -> np.ndarray:
    """(device, bin) pairs with at least one check-in, each device keeping at most its first `max_bins`."""
    ids, t, codes = log.arrays()
    sel = codes == telemetry.CODES.index("-")
    b = np.minimum((t[sel] // bin_s).astype(np.int64), nbins - 1)
    pairs = np.unique(np.stack([ids[sel].astype(np.int64), b]), axis=1) if sel.any() else np.zeros((2, 0), np.int64)
    if max_bins is not None and pairs.size:
        rank = np.arange(pairs.shape[1]) - np.searchsorted(pairs[0], pairs[0])  # pairs sorted by device, bin
        pairs = pairs[:, rank < max_bins]
    return pairs


def private_dashboard(log: telemetry.EventLog, bin_s: float, horizon_s: float, k_min: int,
                      epsilon: float | None = None, max_bins: int = 4, seed: int = 0,
                      exclude: int | None = None) -> np.ndarray:
    """Distinct devices checking in per time bin, from aggregates only.

    Each device counts in at most its first `max_bins` bins, so adding or removing one device changes
    the counts by at most `max_bins` in L1; with `epsilon`, Laplace noise of scale max_bins / epsilon is
    added to every bin (epsilon-DP for the release, its own budget, apart from the model's). Bins whose
    (noisy) count is below `k_min` are then suppressed (0): a minimum cohort size.

    Args:
        log: the telemetry log.
        bin_s: width of a bin (s).
        horizon_s: the time the bins cover (s).
        k_min: bins with fewer devices are suppressed.
        epsilon: the release's privacy budget (None: no noise).
        max_bins: bins a device counts in at most.
        seed: seeds the noise.
        exclude: a device left out (for the differencing attack; None: nobody).

    Returns:
        float counts, one per bin.
    """
    validate.instance("log", log, telemetry.EventLog, "a telemetry.EventLog")
    validate.seed("seed", seed)
    if exclude is not None:
        validate.integer("exclude", exclude, 0)
    validate.integer("k_min", k_min, 1)
    validate.integer("max_bins", max_bins, 1)
    if epsilon is not None:
        validate.positive("epsilon", epsilon)
    nbins = int(np.ceil(validate.positive("horizon_s", horizon_s) / validate.positive("bin_s", bin_s)))
    pairs = _device_bins(log, bin_s, nbins, max_bins)
    if exclude is not None:
        pairs = pairs[:, pairs[0] != exclude]
    counts = np.bincount(pairs[1], minlength=nbins).astype(float)
    if epsilon is not None:
        counts += np.random.default_rng(seed).laplace(0.0, max_bins / epsilon, nbins)
    return np.where(counts >= k_min, counts, 0.0)


def differencing_attack(res: FLSimResult, pop: Population, devices: np.ndarray, k_min: int,
                        epsilon: float | None, max_bins: int = 4, seed: int = 0) -> np.ndarray:
    """The strongest dashboard attacker: it sees the hourly dashboard with and without the target (or
    knows everyone else's data), reads the target's hours as the bins where the count drops by more
    than 1/2, and infers the window from them like the per-device attack.

    Args:
        res: a simulated run whose log traced the targets.
        pop: its population.
        devices: the targets.
        k_min: dashboard bins with fewer devices are suppressed.
        epsilon: the dashboard's privacy budget (None: no noise).
        max_bins: bins a device counts in at most.
        seed: seeds the noise and the guesses where nothing shows.

    Returns:
        the error (hours) of the inferred window start, per device.
    """
    validate.integer("k_min", k_min, 1)
    validate.integer("max_bins", max_bins, 1)
    if epsilon is not None:
        validate.positive("epsilon", epsilon)
    validate.seed("seed", seed)
    validate.instance("pop", pop, Population, "a population.Population")
    devices = validate.integers("devices", devices, 0, pop.size - 1)
    nbins = 24
    pairs = _device_bins(res.log, HOUR_S, nbins, max_bins)
    counts = np.bincount(pairs[1], minlength=nbins).astype(float)
    rng = np.random.default_rng(seed)
    errors = []
    for d in devices:
        own = np.bincount(pairs[1][pairs[0] == d], minlength=nbins)
        with_, without = counts.copy(), counts - own
        if epsilon is not None:
            with_ += rng.laplace(0.0, max_bins / epsilon, nbins)
            without += rng.laplace(0.0, max_bins / epsilon, nbins)
        with_, without = (np.where(c >= k_min, c, 0.0) for c in (with_, without))
        hours = np.flatnonzero(with_ - without > 0.5) + 0.5 + float(pop.tz_offset_h[d])
        guess = telemetry.infer_window(hours)[0] if len(hours) else float(rng.uniform(0, 24))
        errors.append(abs((guess - float(pop.window_start_h[d]) + 12.0) % 24.0 - 12.0))
    return np.array(errors)


@dataclasses.dataclass(frozen=True)
class TelemetryAttack:
    """Share of users whose bedtime an attacker gets within `within_h`, per jitter (rows) and seed."""

    jitters_h: np.ndarray  # mean check-in delays (hours), one row each
    per_device: np.ndarray  # the largest-gap attack on per-device check-in times
    dashboard: np.ndarray  # differencing attack on the hourly aggregate dashboard, minimum cohort only
    private_dashboard: np.ndarray  # ... on the dashboard with Laplace noise at `epsilon`
    prior: np.ndarray  # guessing everyone's population-typical bedtime (no data about the user)
    epsilon: float  # the private dashboard's budget


def telemetry_attack_sweep(pop_config: PopulationConfig, config: RoundConfig, jitters_h: Sequence[float],
                           seeds=DEFAULT_SEEDS, k_min: int = 20, epsilon: float = 1.0, max_bins: int = 4,
                           traced_devices: int = 2000, targets: int = 300, within_h: float = 1.0
                           ) -> TelemetryAttack:
    """Per-device telemetry vs dashboards, over check-in jitter: one simulated day per (jitter, seed);
    targets are the first `targets` traced users with >= 3 check-ins.

    Args:
        pop_config: the population (its check-in jitter is replaced by each of `jitters_h`).
        config: the round configuration.
        jitters_h: mean delays (hours) between a window opening and the first check-in.
        seeds: one population and day per jitter each.
        k_min: dashboard bins with fewer devices are suppressed.
        epsilon: the private dashboard's budget.
        max_bins: bins a device counts in at most on the dashboards.
        traced_devices: devices whose telemetry is logged.
        targets: users attacked per day.
        within_h: a guess this close (hours) counts as right.
    """
    seeds = validate.seeds("seeds", seeds)
    validate.integer("k_min", k_min, 1)
    validate.positive("epsilon", epsilon)
    validate.integer("max_bins", max_bins, 1)
    validate.integer("traced_devices", traced_devices, 1)
    validate.integer("targets", targets, 1)
    validate.positive("within_h", within_h)
    rows = {k: np.zeros((len(jitters_h), len(seeds))) for k in ("per_device", "dashboard", "private", "prior")}
    for i, jitter in enumerate(jitters_h):
        cfg = dataclasses.replace(pop_config, checkin_jitter_h=float(jitter))
        for j, s in enumerate(seeds):
            pop = make_population(cfg, s)
            res = simulate(pop, config, SteeringConfig(), DAY_S, s, traced_devices=traced_devices)
            ids, _, codes = res.log.arrays()
            n = np.bincount(ids[codes == telemetry.CODES.index("-")], minlength=res.log.traced_devices)
            victims = np.flatnonzero(n >= 3)[:targets]
            rows["per_device"][i, j] = np.mean(schedule_leak(res, pop, victims).error_h < within_h)
            rows["dashboard"][i, j] = np.mean(differencing_attack(res, pop, victims, k_min, None, max_bins, s)
                                              < within_h)
            rows["private"][i, j] = np.mean(differencing_attack(res, pop, victims, k_min, epsilon, max_bins, s)
                                            < within_h)
            typical = cfg.window_start_h
            err = np.abs((typical - pop.window_start_h[victims] + 12.0) % 24.0 - 12.0)
            rows["prior"][i, j] = np.mean(err < within_h)
    return TelemetryAttack(np.asarray(jitters_h, float), rows["per_device"], rows["dashboard"], rows["private"],
                           rows["prior"], float(epsilon))
