"""Pace steering: when a rejected or finished device is told to come back.

A mode is an object in the registry `STEERING_MODES`: "none" (retry after about a minute: a thundering
herd), "spread" (large populations: random delays whose mean adapts so check-ins arrive at a multiple of
the rate rounds need), "synchronise" (small populations: everyone returns just before the next selection
closes) and "auto" (synchronise a small population, else spread). The adaptive state (`SteerState`) is
small and explicit; `steer_observe` returns the next one from what a selection saw (Little's law).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from mlsys_core import validate
from mlsys_core.fl.population import DAY_S
from mlsys_core.fl.rounds import RoundConfig


@dataclasses.dataclass(frozen=True)
class SteerState:
    """Pace-steering state, a new value each round."""

    delay_s: float  # the adaptive mean come-back delay ("spread")
    round_s: float  # the estimated time between selection closes
    active: float  # the estimated active population (Little's law; inf before the first round)


class SteeringMode:
    """One way of telling devices when to come back: `in_force` names the mode whose `delays` apply in a
    round (itself, except for "auto"), `delays` draws the come-back delays."""

    name = ""

    def in_force(self, steering: SteeringConfig, config: RoundConfig, st: SteerState) -> str:
        """The mode whose delays apply this round: this one."""
        return self.name

    def delays(self, rng: np.random.Generator, steering: SteeringConfig, st: SteerState, n: int,
               sync_in_s: float | np.ndarray) -> np.ndarray:
        """Come-back delays (s) for `n` devices.

        Args:
            rng: the run's generator.
            steering: the steering configuration.
            st: the steering state.
            n: how many devices.
            sync_in_s: when synchronised devices return (s from now; scalar or per device).
        """
        raise NotImplementedError


class NoSteering(SteeringMode):
    """"none": a device retries after about `retry_s` (uniform in [0.5, 1.5] x retry_s)."""

    name = "none"

    def delays(self, rng: np.random.Generator, steering: SteeringConfig, st: SteerState, n: int,
               sync_in_s: float | np.ndarray) -> np.ndarray:
        return rng.uniform(0.5, 1.5, n) * steering.retry_s


class Spread(SteeringMode):
    """"spread": uniform delays in [0, 2 x the adaptive mean `st.delay_s`]."""

    name = "spread"

    def delays(self, rng: np.random.Generator, steering: SteeringConfig, st: SteerState, n: int,
               sync_in_s: float | np.ndarray) -> np.ndarray:
        return rng.uniform(0.0, 2.0 * st.delay_s, n)


class Synchronise(SteeringMode):
    """"synchronise": back at `sync_in_s` (never before now), plus up to `sync_jitter_s`."""

    name = "synchronise"

    def delays(self, rng: np.random.Generator, steering: SteeringConfig, st: SteerState, n: int,
               sync_in_s: float | np.ndarray) -> np.ndarray:
        return np.maximum(sync_in_s, 0.0) + rng.uniform(0.0, steering.sync_jitter_s, n)


class Auto(SteeringMode):
    """"auto": synchronise while the estimated active population is below `small_population_factor` x
    target, else spread. It draws no delays itself: the mode it picks (`in_force`) does."""

    name = "auto"

    def in_force(self, steering: SteeringConfig, config: RoundConfig, st: SteerState) -> str:
        return "synchronise" if st.active < steering.small_population_factor * config.target else "spread"

    def delays(self, rng: np.random.Generator, steering: SteeringConfig, st: SteerState, n: int,
               sync_in_s: float | np.ndarray) -> np.ndarray:
        raise ValueError("'auto' draws no delays: ask the mode it picks (`in_force`), 'synchronise' or 'spread'")


STEERING_MODES: dict[str, SteeringMode] = {m.name: m for m in (NoSteering(), Spread(), Synchronise(), Auto())}


@dataclasses.dataclass(frozen=True)
class SteeringConfig:
    """Pace steering's parameters: the mode (a name in `STEERING_MODES`) and its timings, in seconds."""

    mode: str = "auto"
    retry_s: float = 60.0  # "none": mean retry delay
    initial_delay_s: float = 600.0  # "spread": the first mean delay; also the spread of first check-ins
    min_delay_s: float = 30.0  # "spread": the mean delay stays in [min_delay_s, max_delay_s]
    max_delay_s: float = 1800.0
    checkin_headroom: float = 2.0  # "spread": aim for this many check-ins per device a round needs
    small_population_factor: float = 3.0  # "auto": synchronise below this many x target active devices
    sync_jitter_s: float = 10.0  # "synchronise": returns spread over this long
    cooldown_s: float = 4 * 3600.0  # a device that took part comes back no sooner
    no_plan_retry_s: float = DAY_S  # a device without a plan for its runtime comes back after this

    def __post_init__(self) -> None:
        validate.choice("mode", self.mode, STEERING_MODES)
        for name in ("retry_s", "initial_delay_s", "min_delay_s", "checkin_headroom", "small_population_factor"):
            validate.number(name, getattr(self, name), 0.0, low_open=True)
        if validate.number("max_delay_s", self.max_delay_s) < self.min_delay_s:
            raise ValueError(f"max_delay_s must be >= min_delay_s ({self.min_delay_s:g}), got {self.max_delay_s!r}")
        for name in ("sync_jitter_s", "cooldown_s", "no_plan_retry_s"):
            validate.number(name, getattr(self, name), 0.0)


def steer_init(steering: SteeringConfig, config: RoundConfig) -> SteerState:
    """The state before the first round: the initial mean delay, a round as long as the selection timeout."""
    return SteerState(steering.initial_delay_s, config.selection_timeout_s, np.inf)


def steer_mode(steering: SteeringConfig, config: RoundConfig, st: SteerState) -> str:
    """The mode in force: the configured one, or the one "auto" picks."""
    return STEERING_MODES[steering.mode].in_force(steering, config, st)


def steer_delays(rng: np.random.Generator, steering: SteeringConfig, mode: str, st: SteerState, n: int,
                 sync_in_s: float | np.ndarray) -> np.ndarray:
    """Come-back delays (s) for `n` devices under `mode` (the mode in force, see `steer_mode`).

    Args:
        rng: the run's generator.
        steering: the steering configuration.
        mode: the mode in force ("none", "spread" or "synchronise").
        st: the steering state.
        n: how many devices.
        sync_in_s: when synchronised devices return (s from now; scalar or per device).
    """
    return STEERING_MODES[mode].delays(rng, steering, st, n, sync_in_s)


def steer_observe(steering: SteeringConfig, config: RoundConfig, st: SteerState, checkins: int, window_s: float,
                  round_s: float) -> SteerState:
    """Little's law: active devices ~ rate x mean delay; steer the rate toward headroom x need.

    Args:
        steering: the steering configuration.
        config: the round configuration (`target`).
        st: the state before this selection.
        checkins: devices that checked in during this selection.
        window_s: how long the selection ran (s).
        round_s: time since the previous selection closed (s).
    """
    round_est = 0.7 * st.round_s + 0.3 * max(round_s, 1.0)
    rate = checkins / max(window_s, 1.0)
    need = steering.checkin_headroom * config.target / round_est
    gain = float(np.clip(math.sqrt(max(rate, 1e-3) / need), 0.5, 1.5))  # damped: at most x1.5 per round
    delay = float(np.clip(st.delay_s * gain, steering.min_delay_s, steering.max_delay_s))
    return SteerState(delay, round_est, rate * st.delay_s)
