"""Claims, declared once in code, and the pure evaluation of a measurement against one.

A `Claim` says what a paper (or the survey) states, the paper's figure and where it comes from, the
unit, the assumptions that decide it, the `rule` that maps a measurement to a verdict, how many seeds
a seeded measurement needs, and — where the claim hangs on an assumption the suite chose — the `Sweep`
of that assumption to measure it over. `evaluate` applies the rule: to a value, to the 95% interval
of per-seed values, and at every point of a sweep; the headline verdict is the one at the sweep's
default, and `holds_over` says over which part of the range each verdict holds.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlsys_core import validate
from mlsys_core.claims import rules
from mlsys_core.seeds import MIN_SEEDS

PAPERS = (
    "Suite check",
    "Paper 1 — TPU concurrency",
    "Paper 2 — Bandana",
    "Paper 3 — FL at scale",
    "Paper 4 — TicTac",
    "Survey — synergies",
)
SOURCES = ("abstract", "paper text", "table", "figure", "survey", "MLPerf log", "unconfirmed secondary source", "suite")
_ID = re.compile(r"^[a-z0-9]+(\.[a-z0-9_]+)+$")


@dataclasses.dataclass(frozen=True)
class Sweep:
    """An assumption the suite picked, and the range a claim is measured over."""

    assumption: str
    unit: str
    values: tuple[float, ...]
    default: float

    def __post_init__(self) -> None:
        validate.string("Sweep.assumption", self.assumption)
        if len(self.values) < 2:
            raise ValueError(f"Sweep.values needs at least 2 points, got {self.values}")
        for v in self.values:
            validate.number("Sweep.values", v)
        if self.default not in self.values:
            raise ValueError(f"Sweep.default must be one of Sweep.values {self.values}, got {self.default!r}")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim the suite checks. `source` is one of SOURCES, optionally followed by ": where"."""

    id: str
    paper: str
    statement: str
    paper_value: str
    source: str
    unit: str
    rule: rules.Rule
    assumptions: tuple[str, ...] = ()
    seeds: int = 0  # >= MIN_SEEDS when the measurement depends on a seed (or is a timing), else 0
    sweep: Sweep | None = None
    fmt: str = ".3g"  # how the measured value prints
    sample: str = "seed"  # what one of the per-sample values is: "seed", or "timed run" for a timing claim
    geometric: bool = False  # average per-sample ratios or times on a log scale (timings: skewed, positive)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID.match(self.id):
            raise ValueError(f"Claim.id must look like 'paper.name' (lower case, dots), got {self.id!r}")
        validate.choice(f"{self.id}: paper", self.paper, PAPERS)
        for name in ("statement", "paper_value", "source"):
            validate.string(f"{self.id}: {name}", getattr(self, name))
        validate.string(f"{self.id}: unit", self.unit, empty=True)
        validate.choice(f"{self.id}: source", self.source.split(":")[0], SOURCES)
        validate.instance(f"{self.id}: rule", self.rule, (rules.Bands, rules.Qualitative), "a rule from claims.rules")
        seeds = validate.integer(f"{self.id}: seeds", self.seeds, 0)
        if 0 < seeds < MIN_SEEDS:
            raise ValueError(f"{self.id}: seeds must be 0 (deterministic) or >= {MIN_SEEDS}, got {seeds}")
        if self.sweep is not None:
            validate.instance(f"{self.id}: sweep", self.sweep, Sweep)
        validate.string(f"{self.id}: sample", self.sample)
        validate.boolean(f"{self.id}: geometric", self.geometric)
        try:
            format(1.0, self.fmt)
        except (TypeError, ValueError):
            raise ValueError(f"{self.id}: fmt must be a float format spec such as '.3g', got {self.fmt!r}") from None


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A measured value: the mean over `seeds` samples (0: a single value) and its 95% interval."""

    value: float
    interval: tuple[float, float] | None
    seeds: int

    @property
    def bounds(self) -> tuple[float, float]:
        return self.interval if self.interval is not None else (self.value, self.value)


@dataclasses.dataclass(frozen=True)
class SweepPoint:
    assumption_value: float
    estimate: Estimate
    verdict: str


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """A claim, what was measured, and the verdict its rule gives."""

    claim: Claim
    estimate: Estimate
    verdict: str
    sweep: tuple[SweepPoint, ...] = ()

    @property
    def holds_over(self) -> str:
        """Which verdict holds over which part of the sweep, e.g. "reproduced for 70-150 GB/s; ..."."""
        swept = self.claim.sweep
        if not self.sweep or swept is None:
            return ""
        unit = f" {swept.unit}" if swept.unit else ""
        runs: list[list] = []
        for p in self.sweep:
            if runs and runs[-1][0] == p.verdict:
                runs[-1][2] = p.assumption_value
            else:
                runs.append([p.verdict, p.assumption_value, p.assumption_value])
        parts = [f"{v} at {a:g}{unit}" if a == b else f"{v} for {a:g}-{b:g}{unit}" for v, a, b in runs]
        return f"{swept.assumption}: " + "; ".join(parts)


def estimate(measured: Any, min_seeds: int, geometric: bool = False, name: str = "measured") -> Estimate:
    """A finite number, or finite per-sample values -> their mean and 95% Student-t interval.

    Args:
        measured: one number, or one value per sample (seed or timed run).
        min_seeds: the samples the claim needs (0: one number is enough).
        geometric: average on a log scale (positive values only).
        name: what an error calls the measurement.

    With `geometric`, the mean and interval are taken on the logarithms of positive values and mapped back:
    the geometric mean of timing ratios, whose spread is skewed by the occasional slow round.
    """
    values = None if isinstance(measured, numbers.Real) else validate.reals(name, measured)
    if values is None or values.ndim == 0:
        x = float(validate.number(name, measured if values is None else values.item()))
        if min_seeds:
            raise ValueError(f"{name} must be per-seed values (>= {min_seeds}) for this claim, got one value {x!r}")
        return Estimate(x, None, 0)
    values = validate.reals(name, values)
    if values.ndim != 1 or values.size < max(min_seeds, 2):
        raise ValueError(
            f"{name} must be a 1-D array of >= {max(min_seeds, 2)} finite per-seed values, got {values.tolist()}"
        )
    if geometric and (values <= 0).any():
        raise ValueError(f"{name} must be positive for a geometric mean, got {values.tolist()}")
    from scipy import stats

    logs = np.log(values) if geometric else values
    n, mean = logs.size, float(logs.mean())
    half = float(stats.t.ppf(0.975, n - 1) * logs.std(ddof=1) / math.sqrt(n))
    back = math.exp if geometric else float
    return Estimate(back(mean), (back(mean - half), back(mean + half)), n)


def evaluate(claim: Claim, measured: Any = None, sweep: Sequence | None = None) -> Evaluation:
    """Apply `claim.rule` to `measured` (a number or per-seed values) or, for a claim with a sweep, to
    `sweep` (one measurement per `claim.sweep.values`; the headline is the one at the default)."""
    if claim.sweep is None:
        if sweep is not None:
            raise ValueError(f"{claim.id} declares no sweep, got sweep={sweep!r}")
        if measured is None:
            raise ValueError(f"{claim.id} needs a measured value")
        est = estimate(measured, claim.seeds, claim.geometric)
        return Evaluation(claim, est, claim.rule(*est.bounds))
    if measured is not None:
        raise ValueError(f"{claim.id} is measured over {claim.sweep.assumption}: pass sweep=, not measured=")
    if sweep is None or len(sweep) != len(claim.sweep.values):
        raise ValueError(
            f"{claim.id}: sweep must hold one measurement per {claim.sweep.assumption} in {claim.sweep.values}, "
            f"got {sweep!r}"
        )
    points = []
    for value, m in zip(claim.sweep.values, sweep, strict=True):
        est = estimate(m, claim.seeds, claim.geometric, f"measured at {claim.sweep.assumption} {value:g}")
        points.append(SweepPoint(value, est, claim.rule(*est.bounds)))
    head = points[claim.sweep.values.index(claim.sweep.default)]
    return Evaluation(claim, head.estimate, head.verdict, tuple(points))


def show(claim: Claim, est: Estimate) -> str:
    """The measured value as the report prints it: mean, its interval, the unit, and the sample count."""
    text = format(est.value, claim.fmt)
    if est.interval is not None:
        lo, hi = est.interval
        text += f" [{format(lo, claim.fmt)}, {format(hi, claim.fmt)}]"
    if claim.unit:
        text += f" {claim.unit}"
    return text + (f" ({est.seeds} {claim.sample}s)" if est.interval is not None else "")
