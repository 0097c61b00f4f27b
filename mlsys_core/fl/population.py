"""A device population as arrays: time zones, nightly eligibility windows, speeds, links, drop-out.

A device is *eligible* (idle, charging, on an unmetered network) inside its nightly window in local
time, and only if it has an unmetered network at all. It calls in a `checkin_delay_h` after its window
opens (the phone's job scheduler gets round to it; exponential with mean `checkin_jitter_h`, 0 by
default: it calls in the moment the window opens). A device training when its window closes (the
user wakes and unplugs it) drops out then (`drop_at_window_close`, on by default), on top of its random
drop-out chance. Everything is a NumPy array of length N, so a population of 10 M devices fits in
~300 MB and every query is one vectorised expression.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt

from mlsys_core import validate

HOUR_S = 3600.0
DAY_S = 86400.0

# (UTC offset in hours, share of devices): weighted towards the Americas and Europe, as a phone
# keyboard's users might be. The mix sets the size of the diurnal swing; `time_zone_mix` makes it more
# or less concentrated.
DEFAULT_TIME_ZONES = (
    (-8.0, 0.15), (-6.0, 0.1), (-5.0, 0.2), (-3.0, 0.1), (0.0, 0.06),
    (1.0, 0.14), (3.0, 0.05), (5.5, 0.08), (8.0, 0.07), (9.0, 0.05),
)


def time_zone_mix(main_zone_share: float, zones: tuple[tuple[float, float], ...] = DEFAULT_TIME_ZONES
                  ) -> tuple[tuple[float, float], ...]:
    """`zones` with its largest zone holding `main_zone_share` of the devices and the others scaled to share
    the rest in their old proportions: one number for how concentrated the population is in time (the
    paper's 4x diurnal swing is for a US-centric population, Bonawitz et al. 2019, Sec. 9). At the largest
    zone's own share (0.2 for the default mix) the mix is `zones` unchanged.

    Args:
        main_zone_share: the largest zone's share, in (0, 1).
        zones: (UTC offset h, weight) pairs with at least two zones.
    """
    share = validate.number("main_zone_share", main_zone_share, 0.0, 1.0, low_open=True, high_open=True)
    table = validate.reals("zones", zones, ndim=2)
    if table.shape[0] < 2 or table.shape[1] != 2 or (table[:, 1] < 0).any() or table[:, 1].sum() <= 0:
        raise ValueError(f"zones must be >= 2 (offset_h, weight >= 0) pairs with weights summing to > 0, got {zones!r}")
    weights = table[:, 1] / table[:, 1].sum()
    main = int(np.argmax(weights))
    rest = 1.0 - weights[main]
    if rest <= 0:
        raise ValueError(f"zones must give the zones besides the largest some weight, got {zones!r}")
    if math.isclose(share, weights[main], rel_tol=1e-12):
        return tuple((float(o), float(w)) for o, w in zones)
    scaled = np.where(np.arange(len(weights)) == main, share, weights * (1.0 - share) / rest)
    return tuple((float(o), float(w)) for o, w in zip(table[:, 0], scaled))


@dataclasses.dataclass(frozen=True)
class PopulationConfig:
    """How devices are drawn. Times of day are local hours; rates are per second; sizes in bytes."""

    num_devices: int = 100_000
    time_zones: tuple[tuple[float, float], ...] = DEFAULT_TIME_ZONES
    unmetered_fraction: float = 0.85
    window_start_h: float = 23.0
    window_start_std_h: float = 1.5
    window_length_h: float = 7.0
    window_length_std_h: float = 1.0
    drop_out_range: tuple[float, float] = (0.06, 0.10)
    examples_median: float = 200.0
    examples_per_s_median: float = 5.0
    speed_sigma: float = 0.5
    down_bytes_per_s_median: float = 2e6
    up_bytes_per_s_median: float = 1e6
    bandwidth_sigma: float = 0.6
    runtime_versions: tuple[int, ...] = (1, 2, 3, 4, 5)
    runtime_weights: tuple[float, ...] = (0.03, 0.07, 0.2, 0.3, 0.4)
    checkin_jitter_h: float = 0.0  # mean delay between a window opening and the first check-in
    drop_at_window_close: bool = True  # a session still running when the window closes drops out then

    def __post_init__(self) -> None:
        validate.integer("num_devices", self.num_devices, 1, 50_000_000)
        zones = validate.reals("time_zones", self.time_zones, ndim=2)
        if zones.shape[0] == 0 or zones.shape[1] != 2:
            raise ValueError(f"time_zones must be non-empty (offset_h, weight >= 0) pairs, got {self.time_zones!r}")
        validate.reals("time_zones weights", zones[:, 1], 0.0)
        if zones[:, 1].sum() <= 0:
            raise ValueError(f"time_zones weights must sum to > 0, got {self.time_zones!r}")
        validate.number("unmetered_fraction", self.unmetered_fraction, 0.0, 1.0)
        validate.number("window_start_h", self.window_start_h, 0.0, 24.0)
        validate.number("window_length_h", self.window_length_h, 0.0, 24.0, low_open=True)
        for name in ("window_start_std_h", "window_length_std_h", "speed_sigma", "bandwidth_sigma"):
            validate.number(name, getattr(self, name), 0.0, 24.0)
        drop = validate.reals("drop_out_range", self.drop_out_range, ndim=1)
        if drop.shape != (2,) or not 0.0 <= drop[0] <= drop[1] < 1.0:
            raise ValueError(f"drop_out_range must satisfy 0 <= low <= high < 1, got {self.drop_out_range!r}")
        for name in ("examples_median", "examples_per_s_median", "down_bytes_per_s_median", "up_bytes_per_s_median"):
            validate.number(name, getattr(self, name), 0.0, low_open=True)
        validate.number("checkin_jitter_h", self.checkin_jitter_h, 0.0, 12.0)
        validate.boolean("drop_at_window_close", self.drop_at_window_close)
        versions = validate.integers("runtime_versions", self.runtime_versions, 0, 127)
        weights = validate.reals("runtime_weights", self.runtime_weights, 0.0, ndim=1)
        if len(versions) != len(weights) or not len(versions) or weights.sum() <= 0:
            raise ValueError(
                f"runtime_versions and runtime_weights must be non-empty and equally long, with weights summing "
                f"to > 0, got {self.runtime_versions!r} and {self.runtime_weights!r}"
            )


@dataclasses.dataclass(frozen=True)
class Population:
    """N devices as parallel arrays (all of length `size`)."""

    tz_offset_h: np.ndarray  # float32, UTC offset
    window_start_h: np.ndarray  # float32, local hour the nightly eligible window opens
    window_length_h: np.ndarray  # float32
    unmetered: np.ndarray  # bool, has an unmetered network at all
    drop_out_p: np.ndarray  # float32, chance to drop during a round
    num_examples: np.ndarray  # int32, local training examples
    examples_per_s: np.ndarray  # float32, training speed
    down_bytes_per_s: np.ndarray  # float32
    up_bytes_per_s: np.ndarray  # float32
    runtime_version: np.ndarray  # int8
    checkin_delay_h: np.ndarray  # float32, hours after its window opens before the device calls in
    drops_at_close: np.ndarray  # bool, a session still running when its window closes drops out then

    @property
    def size(self) -> int:
        return len(self.tz_offset_h)


def make_population(config: PopulationConfig, seed: int) -> Population:
    """Draw `config.num_devices` devices with a NumPy generator seeded by `seed`.

    The check-in delays are drawn last (and only when `checkin_jitter_h` > 0), so a population with
    jitter 0 is the same, device for device, as before the delay existed. A delay is capped at 80% of
    the device's window, so every device still calls in on every night.
    """
    validate.instance("config", config, PopulationConfig, "a population.PopulationConfig")
    rng = np.random.default_rng(validate.seed("seed", seed))
    n = config.num_devices
    offsets = np.array([z[0] for z in config.time_zones], np.float32)
    weights = np.array([z[1] for z in config.time_zones], np.float64)
    logn = lambda median, sigma: (median * np.exp(sigma * rng.standard_normal(n))).astype(np.float32)  # noqa: E731
    lo, hi = config.drop_out_range
    rw = np.asarray(config.runtime_weights, np.float64)
    fields = dict(
        tz_offset_h=rng.choice(offsets, size=n, p=weights / weights.sum()),
        window_start_h=np.mod(rng.normal(config.window_start_h, config.window_start_std_h, n), 24.0).astype(np.float32),
        window_length_h=np.clip(rng.normal(config.window_length_h, config.window_length_std_h, n), 0.5, 23.0)
        .astype(np.float32),
        unmetered=rng.random(n) < config.unmetered_fraction,
        drop_out_p=rng.uniform(lo, hi, n).astype(np.float32),
        num_examples=np.maximum(1, logn(config.examples_median, 0.6)).astype(np.int32),
        examples_per_s=logn(config.examples_per_s_median, config.speed_sigma),
        down_bytes_per_s=logn(config.down_bytes_per_s_median, config.bandwidth_sigma),
        up_bytes_per_s=logn(config.up_bytes_per_s_median, config.bandwidth_sigma),
        runtime_version=rng.choice(np.asarray(config.runtime_versions, np.int8), size=n, p=rw / rw.sum()),
    )
    delay = np.zeros(n, np.float32)
    if config.checkin_jitter_h > 0:
        delay = np.minimum(rng.exponential(config.checkin_jitter_h, n), 0.8 * fields["window_length_h"])
    return Population(**fields, checkin_delay_h=delay.astype(np.float32),
                      drops_at_close=np.full(n, config.drop_at_window_close))


def local_hour(pop: Population, t_s: npt.ArrayLike, idx: slice | np.ndarray = slice(None)) -> np.ndarray:
    """Local hour of day in [0, 24) of devices `idx` at simulated UTC time(s) `t_s`."""
    return np.mod(np.asarray(t_s) / HOUR_S + pop.tz_offset_h[idx], 24.0)


def _into_window_h(pop: Population, t_s: npt.ArrayLike, idx: slice | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hours since devices `idx` can call in (window start + check-in delay), and how long they can."""
    delay = pop.checkin_delay_h[idx]
    into = np.mod(local_hour(pop, t_s, idx) - (pop.window_start_h[idx] + delay), 24.0)
    return into, pop.window_length_h[idx] - delay


def is_eligible(pop: Population, t_s: npt.ArrayLike, idx: slice | np.ndarray = slice(None)) -> np.ndarray:
    """Whether devices `idx` are idle, charging, on an unmetered network and past their check-in
    delay at time(s) `t_s`: whether they would call in then."""
    into, length = _into_window_h(pop, t_s, idx)
    return pop.unmetered[idx] & (into < length)


def next_eligible_s(pop: Population, t_s: npt.ArrayLike, idx: slice | np.ndarray = slice(None)) -> np.ndarray:
    """Earliest time >= `t_s` at which devices `idx` are eligible (inf for those never eligible)."""
    t_s = np.asarray(t_s, np.float64)
    into, length = _into_window_h(pop, t_s, idx)
    wait_h = np.where(into < length, 0.0, 24.0 - into + 1e-4)  # +0.36 s: past rounding
    return np.where(pop.unmetered[idx], t_s + wait_h * HOUR_S, np.inf)


def window_close_s(pop: Population, t_s: float, idx: slice | np.ndarray) -> np.ndarray:
    """When the eligibility windows of devices `idx`, open at time `t_s`, close: `t_s` itself for a
    device whose window is already shut, inf for one that does not drop at the close."""
    into = np.mod(local_hour(pop, t_s, idx) - pop.window_start_h[idx], 24.0)
    close = t_s + np.maximum(pop.window_length_h[idx] - into, 0.0) * HOUR_S
    return np.where(pop.drops_at_close[idx], close, np.inf)


def eligible_by_hour(pop: Population, hours_utc: np.ndarray) -> np.ndarray:
    """Number of eligible devices at each UTC hour in `hours_utc` (the diurnal swing)."""
    return np.array([np.count_nonzero(is_eligible(pop, h * HOUR_S)) for h in hours_utc])
