"""Claims, declared once in code, and the pure evaluation of a measurement against one.

A `Claim` says what a paper (or the survey) states, the paper's figure and where it comes from, its `kind`,
the unit, the `rule` that maps a measurement to a verdict, how many independent runs (seeds) a measurement
needs and how its interval is taken, and the `Assumption`s — settings the suite chose that could decide
the verdict — each with a plausible range and where that range comes from. `measure` names the function
that measures the claim at any setting of its assumptions: the report varies each assumption over its range,
one at a time (`with_sweep`), and says which verdict holds where and the smallest change that flips it
(`Evaluation.flip`).

Intervals suit the quantity (`INTERVALS`): a Student-t interval for an unbounded mean, the same on the
logarithms for ratios and times (mapped back: the geometric mean), and a seeded percentile bootstrap for a
bounded quantity (a fraction, an error, a count), which never leaves the values' range. The unit of
replication is an independent run: a seed, a fresh-process run, a random graph; never the iterations of
one run, which share its state.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
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
KINDS = ("reproduction", "survey test", "sanity check")  # a paper's figure; a survey assertion; true by construction
SAMPLES = ("seed", "hash seed", "run", "timed run", "random graph")  # independent replicates only
INTERVALS = ("t", "log-t", "bootstrap")
BOOTSTRAP_RESAMPLES = 4000
_ID = re.compile(r"^[a-z0-9]+(\.[a-z0-9_]+)+$")
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_MEASURE = re.compile(r"^mlsys_core(\.[a-z0-9_]+)+:[a-z_][a-z0-9_]*$")


@dataclasses.dataclass(frozen=True)
class Assumption:
    """A setting the suite chose that could decide a claim, and the plausible range it is varied over.

    `name` is the keyword the claim's measure function takes; `values` (increasing, the default among them)
    are the points of the range the report measures; `source` says where the range comes from (a paper, a
    vendor's document, a measurement).
    """

    name: str
    label: str
    unit: str
    default: float
    values: tuple[float, ...]
    source: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"Assumption.name must be a Python keyword name, got {self.name!r}")
        for field in ("label", "source"):
            validate.string(f"Assumption {self.name}: {field}", getattr(self, field))
        validate.string(f"Assumption {self.name}: unit", self.unit, empty=True)
        values = tuple(validate.number(f"Assumption {self.name}: values", v) for v in self.values)
        if len(values) < 2 or list(values) != sorted(set(values)):
            raise ValueError(f"Assumption {self.name}: values need >= 2 increasing points, got {self.values}")
        if self.default not in values:
            raise ValueError(f"Assumption {self.name}: default must be one of {values}, got {self.default!r}")

    def text(self, value: float) -> str:
        """`value` with the unit, e.g. "330 GB/s"."""
        return f"{value:g} {self.unit}" if self.unit else f"{value:g}"

    def distance(self, value: float) -> float:
        """How far `value` lies from the default, as a fraction of the declared range (on a log scale when the
        range is positive: 1 to 2 is as far as 2 to 4)."""
        if self.values[0] > 0:
            return abs(math.log(value / self.default)) / math.log(self.values[-1] / self.values[0])
        return abs(value - self.default) / (self.values[-1] - self.values[0])


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim the suite checks. `source` is one of SOURCES, optionally followed by ": where".

    Args (beyond the texts):
        kind: one of KINDS; sanity checks never count as reproductions.
        rule: a rule from `claims.rules`.
        measure: "mlsys_core.<module>:<function>", the function that measures the claim; it takes each
            parameter's `name` as a keyword (defaulting to the parameter's default) and returns what the
            notebook passes to `report.check`.
        parameters: the assumptions that could decide the verdict, varied by the report.
        assumptions: the setting in words (what is fixed and why).
        seeds: >= MIN_SEEDS independent runs when the measurement depends on a seed or a timing, else 0.
        sample: what one run is, one of SAMPLES.
        interval: how the 95% interval is taken, one of INTERVALS.
    """

    id: str
    paper: str
    statement: str
    paper_value: str
    source: str
    unit: str
    rule: rules.Rule
    kind: str = ""
    measure: str = ""
    parameters: tuple[Assumption, ...] = ()
    assumptions: tuple[str, ...] = ()
    seeds: int = 0
    fmt: str = ".3g"  # how the measured value prints
    sample: str = "seed"
    interval: str = "t"

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID.match(self.id):
            raise ValueError(f"Claim.id must look like 'paper.name' (lower case, dots), got {self.id!r}")
        validate.choice(f"{self.id}: paper", self.paper, PAPERS)
        for name in ("statement", "paper_value", "source"):
            validate.string(f"{self.id}: {name}", getattr(self, name))
        validate.string(f"{self.id}: unit", self.unit, empty=True)
        validate.choice(f"{self.id}: source", self.source.split(":")[0], SOURCES)
        validate.instance(f"{self.id}: rule", self.rule, (rules.Bands, rules.Qualitative), "a rule from claims.rules")
        validate.choice(f"{self.id}: kind", self.kind, KINDS)
        if self.measure and not _MEASURE.match(self.measure):
            raise ValueError(f"{self.id}: measure must be 'mlsys_core.<module>:<function>', got {self.measure!r}")
        for p in self.parameters:
            validate.instance(f"{self.id}: parameters", p, Assumption)
        names = [p.name for p in self.parameters]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.id}: parameters must have distinct names, got {names}")
        seeds = validate.integer(f"{self.id}: seeds", self.seeds, 0)
        if 0 < seeds < MIN_SEEDS:
            raise ValueError(f"{self.id}: seeds must be 0 (deterministic) or >= {MIN_SEEDS}, got {seeds}")
        validate.choice(f"{self.id}: sample", self.sample, SAMPLES)
        validate.choice(f"{self.id}: interval", self.interval, INTERVALS)
        try:
            format(1.0, self.fmt)
        except (TypeError, ValueError):
            raise ValueError(f"{self.id}: fmt must be a float format spec such as '.3g', got {self.fmt!r}") from None

    def parameter(self, name: str) -> Assumption:
        """The declared assumption called `name`."""
        for p in self.parameters:
            if p.name == name:
                return p
        names = [p.name for p in self.parameters]
        raise ValueError(f"{self.id}: sweep names {name!r}, the declared parameters are {names}")


def load_measure(claim: Claim) -> Callable[..., Any]:
    """The claim's measure function, imported on demand (the registry itself imports no paper's package)."""
    if not claim.measure:
        raise ValueError(f"{claim.id} names no measure function")
    module, function = claim.measure.split(":")
    return getattr(importlib.import_module(module), function)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A measured value: the mean over `seeds` independent runs (0: a single value) and its 95% interval."""

    value: float
    interval: tuple[float, float] | None
    seeds: int
    samples: tuple[float, ...] = ()  # the values it was taken from

    @property
    def measured(self) -> float | list[float]:
        """What was measured, as `estimate` takes it: one number, or the runs' values."""
        return list(self.samples) if self.interval is not None else self.value

    @property
    def bounds(self) -> tuple[float, float]:
        return self.interval if self.interval is not None else (self.value, self.value)


@dataclasses.dataclass(frozen=True)
class SweepPoint:
    """The claim measured at one value of one assumption, the others at their defaults."""

    assumption_value: float
    estimate: Estimate
    verdict: str


@dataclasses.dataclass(frozen=True)
class Sensitivity:
    """One assumption varied over its range: the verdict at each point, and who measured it."""

    assumption: Assumption
    points: tuple[SweepPoint, ...]
    by: str  # "notebook" (its full measurement) or "report" (the report's sweep)

    @property
    def holds_over(self) -> str:
        """Which verdict holds over which part of the range, e.g. "reproduced for 70-150 GB/s; ..."."""
        runs: list[list] = []
        for p in self.points:
            if runs and runs[-1][0] == p.verdict:
                runs[-1][2] = p.assumption_value
            else:
                runs.append([p.verdict, p.assumption_value, p.assumption_value])
        unit = f" {self.assumption.unit}" if self.assumption.unit else ""
        parts = [f"{v} at {a:g}{unit}" if a == b else f"{v} for {a:g}-{b:g}{unit}" for v, a, b in runs]
        return f"{self.assumption.label}: " + "; ".join(parts)


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """A claim, what was measured, the verdict its rule gives, and the verdicts over its assumptions."""

    claim: Claim
    estimate: Estimate
    verdict: str
    sweeps: tuple[Sensitivity, ...] = ()

    @property
    def mean_verdict(self) -> str:
        """The band of the mean alone: shown beside an inconclusive interval."""
        return self.claim.rule.point(self.estimate.value)

    @property
    def sweep(self) -> tuple[SweepPoint, ...]:
        return self.sweeps[0].points if self.sweeps else ()

    @property
    def holds_over(self) -> str:
        return "; ".join(s.holds_over for s in self.sweeps)

    @property
    def depends_on(self) -> tuple[str, ...]:
        """The names of the assumptions somewhere in whose range the verdict changes."""
        return tuple(s.assumption.name for s in self.sweeps if {p.verdict for p in s.points} != {self.verdict})

    @property
    def flip(self) -> str:
        """The smallest change of one declared assumption that changes the verdict, in words."""
        if isinstance(self.claim.rule, rules.Qualitative):
            return "not comparable whatever the assumptions"
        changes = [(s.assumption.distance(p.assumption_value), s.assumption, p)
                   for s in self.sweeps for p in s.points if p.verdict != self.verdict]
        if not changes:
            swept = ", ".join(s.assumption.label for s in self.sweeps)
            return f"robust over all declared ranges ({swept})" if swept else "no assumption swept"
        _, a, p = min(changes, key=lambda c: c[0])
        return f"{p.verdict} at {a.label} = {a.text(p.assumption_value)} (default {a.text(a.default)})"


def _bootstrap(values: np.ndarray) -> tuple[float, float]:
    """A seeded 95% percentile-bootstrap interval of the mean (within the values' range by construction)."""
    if np.ptp(values) == 0:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(0)
    means = values[rng.integers(0, values.size, (BOOTSTRAP_RESAMPLES, values.size))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def estimate(measured: Any, min_seeds: int, method: str = "t", name: str = "measured") -> Estimate:
    """A finite number, or finite values of independent runs -> their mean and 95% interval.

    Args:
        measured: one number, or one value per independent run (seed, fresh process, random graph).
        min_seeds: the runs the claim needs (0: one number is enough).
        method: "t" (Student t), "log-t" (Student t on the logarithms of positive values, mapped back: the
            geometric mean of ratios and times), "bootstrap" (seeded percentile bootstrap of the mean, for a
            bounded quantity: the interval stays inside the values' range).
        name: what an error calls the measurement.
    """
    validate.choice("method", method, INTERVALS)
    values = None if isinstance(measured, numbers.Real) else validate.reals(name, measured)
    if values is None or values.ndim == 0:
        x = float(validate.number(name, measured if values is None else values.item()))
        if min_seeds:
            raise ValueError(f"{name} must be per-seed values (>= {min_seeds}) for this claim, got one value {x!r}")
        return Estimate(x, None, 0, (x,))
    if values.ndim != 1 or values.size < max(min_seeds, 2):
        raise ValueError(
            f"{name} must be a 1-D array of >= {max(min_seeds, 2)} finite per-seed values, got {values.tolist()}"
        )
    if method == "log-t" and (values <= 0).any():
        raise ValueError(f"{name} must be positive for a geometric mean, got {values.tolist()}")
    if method == "bootstrap":
        return Estimate(float(values.mean()), _bootstrap(values), values.size, tuple(values.tolist()))
    from scipy import stats

    logs = np.log(values) if method == "log-t" else values
    n, mean = logs.size, float(logs.mean())
    half = float(stats.t.ppf(0.975, n - 1) * logs.std(ddof=1) / math.sqrt(n))
    back = math.exp if method == "log-t" else float
    return Estimate(back(mean), (back(mean - half), back(mean + half)), n, tuple(values.tolist()))


def _sensitivity(claim: Claim, a: Assumption, measured: Sequence, by: str) -> Sensitivity:
    if isinstance(measured, (str, bytes)) or not isinstance(measured, Sequence) or len(measured) != len(a.values):
        raise ValueError(f"{claim.id}: sweep must hold one measurement per {a.name} in {a.values}, got {measured!r}")
    points = []
    for value, m in zip(a.values, measured, strict=True):
        est = estimate(m, claim.seeds, claim.interval, f"measured at {a.name} {value:g}")
        points.append(SweepPoint(value, est, claim.rule(*est.bounds)))
    return Sensitivity(a, tuple(points), by)


def evaluate(claim: Claim, measured: Any = None, sweep: Mapping[str, Sequence] | None = None) -> Evaluation:
    """Apply `claim.rule` to `measured` (a number, or values of independent runs) and, where the notebook
    measured the claim over one or more of its assumptions, to `sweep` ({parameter name: one measurement per
    value}); with a sweep and no `measured`, the headline is the first swept parameter's default point."""
    if sweep is not None and (not isinstance(sweep, Mapping) or not sweep):
        raise ValueError(f"{claim.id}: sweep must map a declared parameter's name to its measurements, got {sweep!r}")
    sweeps = tuple(_sensitivity(claim, claim.parameter(name), m, "notebook") for name, m in (sweep or {}).items())
    if measured is None:
        if not sweeps:
            raise ValueError(f"{claim.id} needs a measured value")
        first = sweeps[0]
        est = first.points[first.assumption.values.index(first.assumption.default)].estimate
    else:
        est = estimate(measured, claim.seeds, claim.interval)
    return Evaluation(claim, est, claim.rule(*est.bounds), sweeps)


def with_sweep(evaluation: Evaluation, name: str, measured: Sequence) -> Evaluation:
    """`evaluation` with one more assumption swept (by the report): one measurement per value of `name`."""
    s = _sensitivity(evaluation.claim, evaluation.claim.parameter(name), measured, "report")
    return dataclasses.replace(evaluation, sweeps=(*evaluation.sweeps, s))


def show(claim: Claim, est: Estimate) -> str:
    """The measured value as the report prints it: mean, its interval, the unit, and the run count."""
    text = format(est.value, claim.fmt)
    if est.interval is not None:
        lo, hi = est.interval
        text += f" [{format(lo, claim.fmt)}, {format(hi, claim.fmt)}]"
    if claim.unit:
        text += f" {claim.unit}"
    return text + (f" ({est.seeds} {claim.sample}s)" if est.interval is not None else "")
