"""Notebook 03, section 3 (pace steering): the server's load under each steering mode, and what "auto"
steering buys over none, one value per seed for the claims registry."""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.fl.population import HOUR_S, Population, PopulationConfig, make_population
from mlsys_core.fl.protocol import simulate
from mlsys_core.fl.rounds import RoundConfig
from mlsys_core.fl.steering import SteeringConfig
from mlsys_core.seeds import DEFAULT_SEEDS


@dataclasses.dataclass(frozen=True)
class ServerLoad:
    """One steering mode's simulated run: the server's load and the rounds it committed."""

    checkins_per_s: np.ndarray  # check-ins per second, per load bin
    mean_per_s: float  # their mean over the run
    peak_per_s: float  # their peak
    committed: int  # committed rounds


def steering_comparison(pop: Population, config: RoundConfig, hours: float, seed: int,
                        modes: tuple[str, ...] = ("none", "spread", "auto")) -> dict[str, ServerLoad]:
    """Server load (check-ins per second, per load bin) and committed rounds under each steering mode.

    Args:
        pop: the population.
        config: the round configuration.
        hours: simulated hours per mode.
        seed: seeds each run (the same for every mode).
        modes: names in `steering.STEERING_MODES`.
    """
    validate.positive("hours", hours)
    validate.seed("seed", seed)
    out = {}
    for mode in modes:
        res = simulate(pop, config, SteeringConfig(mode=mode), hours * HOUR_S, seed)
        per_s = res.checkins_per_bin / res.load_bin_s
        out[mode] = ServerLoad(per_s, float(per_s.mean()), float(per_s.max()),
                               int(res.counters.column("committed").sum()))
    return out


@dataclasses.dataclass(frozen=True)
class SteeringGain:
    """What "auto" pace steering buys over none, one value per seed."""

    load_per_round_cut: np.ndarray  # check-ins per committed round, none / auto
    committed_ratio: np.ndarray  # committed rounds, auto / none


def steering_over_seeds(pop_config: PopulationConfig, config: RoundConfig, hours: float,
                        seeds=DEFAULT_SEEDS, steering: SteeringConfig = SteeringConfig()) -> SteeringGain:
    """Check-ins the server handles per committed round, without steering ("none": a rejected device retries
    after about `steering.retry_s`) over with "auto" steering, and the committed-round ratio auto / none; one
    value per seed.

    Args:
        pop_config: the population (drawn once per seed).
        config: the round configuration.
        hours: simulated hours per run.
        seeds: one population and pair of runs each.
        steering: the timings of both runs (its `mode` is set to "none", then "auto").
    """
    validate.instance("steering", steering, SteeringConfig, "a steering.SteeringConfig")
    cut, rounds = [], []
    for s in validate.seeds("seeds", seeds):
        pop = make_population(pop_config, s)
        per = {}
        for mode in ("none", "auto"):
            res = simulate(pop, config, dataclasses.replace(steering, mode=mode), hours * HOUR_S, s,
                           traced_devices=0)
            per[mode] = (float(res.checkins_per_bin.sum()), max(int(res.counters.column("committed").sum()), 1))
        cut.append((per["none"][0] / per["none"][1]) / (per["auto"][0] / per["auto"][1]))
        rounds.append(per["auto"][1] / per["none"][1])
    return SteeringGain(np.array(cut), np.array(rounds))
