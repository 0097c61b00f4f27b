"""One round of the protocol, apart from the clock: its configuration, selection, the selected devices'
sessions, reporting, and the recycling of late updates.

A round: the Selectors keep a reservoir sample of `target` = goal_count x over_selection of the devices
that checked in (`select`) and reject the rest. Selection closes when the reservoir is full, or at the
selection timeout if at least a minimum fraction of the goal arrived (`selection_close_s`; otherwise the
round is abandoned). Selected devices download the plan and checkpoint, train and upload, or drop out
(`sample_sessions`). Reporting ends when `goal_count` updates arrived or the reporting window closes; the
round commits if at least `min_reports` arrived in time (`reporting_outcome`). Uploads after that are late:
rejected and counted, or, with `recycle_late`, kept (`RecycleBuffer`) and applied once in a later committed
round with weight 1/sqrt(1 + staleness) (`take_recyclable`). `protocol.simulate` strings rounds together on
a simulated clock; `commit_share` runs reporting alone, to isolate what over-selection is for.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt

from mlsys_core import validate
from mlsys_core.fl.population import Population, window_close_s


@dataclasses.dataclass(frozen=True)
class RoundConfig:
    """One FL task's round parameters (paper defaults: over-selection 1.3). Sizes in bytes."""

    goal_count: int = 1000  # updates a round aims to aggregate
    over_selection: float = 1.3  # selection keeps goal_count x this many devices
    selection_timeout_s: float = 120.0  # selection closes by then at the latest
    min_goal_fraction: float = 0.8  # at the timeout, the round goes ahead with this share of the goal
    reporting_window_s: float = 240.0  # reporting closes by then at the latest (from selection's close)
    min_reports: int | None = None  # the round commits with this many updates (default: goal_count)
    checkpoint_bytes: int = 5_600_000  # 1.4 M float32 parameters, as in the paper's keyboard model
    plan_bytes: int = 20_000  # the FL plan a device downloads with the checkpoint
    update_bytes: int = 5_600_000  # one device's upload
    epochs: int = 1  # local passes over a device's examples
    pipelined: bool = True  # selection for round n+1 runs while round n reports
    recycle_late: bool = False  # keep late updates for a later round (the survey's proposal), else discard

    def __post_init__(self) -> None:
        validate.integer("goal_count", self.goal_count, 1)
        validate.number("over_selection", self.over_selection, 1.0, 100.0)
        validate.number("selection_timeout_s", self.selection_timeout_s, 0.0, low_open=True)
        validate.number("min_goal_fraction", self.min_goal_fraction, 0.0, 1.0, low_open=True)
        validate.number("reporting_window_s", self.reporting_window_s, 0.0, low_open=True)
        if self.min_reports is None:
            object.__setattr__(self, "min_reports", self.goal_count)
        if validate.integer("min_reports", self.min_reports, 1) > self.goal_count:
            raise ValueError(f"min_reports must be <= goal_count ({self.goal_count}), got {self.min_reports}")
        for name in ("checkpoint_bytes", "plan_bytes", "update_bytes"):
            validate.integer(name, getattr(self, name), 0)
        validate.integer("epochs", self.epochs, 1)
        validate.boolean("pipelined", self.pipelined)
        validate.boolean("recycle_late", self.recycle_late)

    @property
    def target(self) -> int:
        """How many devices selection aims for: goal_count x over_selection, rounded up."""
        return math.ceil(self.goal_count * self.over_selection - 1e-9)

    @property
    def min_selected(self) -> int:
        """At the selection timeout, the round goes ahead only with at least this many devices."""
        return math.ceil(self.goal_count * self.min_goal_fraction - 1e-9)


# -- selection ----------------------------------------------------------------------------------------------

def reservoir_sample(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """Algorithm R over a stream of `n` arrivals with a reservoir of `k`: the kept stream positions.

    Arrival i >= k draws j ~ U{0..i} and replaces slot j if j < k. Vectorised: each slot ends up
    holding its last writer (the largest i that drew it), found with one `np.maximum.at`.
    """
    if not 0 <= k <= n:
        raise ValueError(f"reservoir size k must be in [0, n={n}], got {k}")
    slots = np.arange(k)
    if n > k:
        i = np.arange(k, n)
        j = np.floor(rng.random(n - k) * (i + 1)).astype(np.int64)
        hit = j < k
        np.maximum.at(slots, j[hit], i[hit])
    return np.sort(slots)


def select(rng: np.random.Generator, n: int, config: RoundConfig) -> np.ndarray:
    """Which of `n` arrivals (in arrival order) the Selectors keep: a reservoir of up to `target`."""
    keep = np.zeros(n, bool)
    keep[reservoir_sample(rng, n, min(config.target, n))] = True
    return keep


def selection_close_s(t: np.ndarray, open_s: float, prev_end_s: float, config: RoundConfig) -> float:
    """Selection closes when the reservoir fills or at the timeout, never before the previous round ends.

    Args:
        t: check-in times (s) of the devices the Selectors hold, in arrival order.
        open_s: when this round's selection opened (s).
        prev_end_s: when the previous round ended (s).
        config: the round's configuration (`target`, `selection_timeout_s`).
    """
    fill_s = t[config.target - 1] if len(t) >= config.target else np.inf
    return float(max(prev_end_s, min(fill_s, open_s + config.selection_timeout_s)))


# -- sessions and reporting ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Sessions:
    """The selected devices' sessions: per device (arrays aligned with `ids`), phase durations, whether
    and when it dropped out, and when its upload completed."""

    ids: np.ndarray  # device ids
    download_s: np.ndarray  # plan + checkpoint download (s)
    compute_s: np.ndarray  # local training (s)
    upload_s: np.ndarray  # update upload (s)
    dropped: np.ndarray  # bool: dropped out (at random, or when its eligibility window closed)
    drop_s: np.ndarray  # absolute time of the drop (inf if not dropped)
    report_s: np.ndarray  # absolute time the upload completes (inf if dropped)


def sample_sessions(rng: np.random.Generator, pop: Population, ids: np.ndarray, start_s: float,
                    config: RoundConfig, num_examples: np.ndarray | None = None) -> Sessions:
    """Draw the sessions of devices `ids` configured at `start_s`: download, train, upload, or drop out
    (at random with the device's `drop_out_p`, or when its eligibility window closes first).

    Args:
        rng: the run's generator (one draw per device for the drop-out, one per dropped device for when).
        pop: the device population (speeds, bandwidths, examples, drop-out probabilities, windows).
        ids: the selected devices.
        start_s: when selection closed and configuration starts (s).
        config: sizes (bytes) and local epochs.
        num_examples: examples per selected device (default: the population's).
    """
    examples = pop.num_examples[ids] if num_examples is None else num_examples
    download = (config.plan_bytes + config.checkpoint_bytes) / pop.down_bytes_per_s[ids].astype(np.float64)
    compute = config.epochs * examples / pop.examples_per_s[ids].astype(np.float64)
    upload = config.update_bytes / pop.up_bytes_per_s[ids].astype(np.float64)
    total = download + compute + upload
    at_random = rng.random(len(ids)) < pop.drop_out_p[ids]
    drop_s = np.where(at_random, start_s + rng.random(len(ids)) * total, np.inf)
    closes = window_close_s(pop, start_s, ids)
    drop_s = np.minimum(drop_s, np.where(closes < start_s + total, closes, np.inf))
    dropped = np.isfinite(drop_s)
    report_s = np.where(dropped, np.inf, start_s + total)
    return Sessions(ids, download, compute, upload, dropped, drop_s, report_s)


@dataclasses.dataclass(frozen=True)
class ReportOutcome:
    """How reporting ended."""

    end_s: float  # when reporting closed
    accepted: np.ndarray  # bool per device: its update is in the round's aggregate
    committed: bool  # at least `min_reports` updates arrived in time


def reporting_outcome(report_s: np.ndarray, start_s: float, config: RoundConfig) -> ReportOutcome:
    """Close reporting at the goal_count-th report or the window's end; commit iff >= min_reports.

    `report_s` is each device's upload completion time (inf: never reports).
    """
    deadline = start_s + config.reporting_window_s
    arrived = report_s <= deadline
    if np.count_nonzero(arrived) >= config.goal_count:
        first = np.argsort(report_s, kind="stable")[: config.goal_count]
        accepted = np.zeros(len(report_s), bool)
        accepted[first] = True
        end_s = float(report_s[first[-1]])
    else:
        accepted, end_s = arrived, deadline
    assert config.min_reports is not None  # RoundConfig.__post_init__ replaces None by goal_count
    return ReportOutcome(end_s, accepted, bool(np.count_nonzero(accepted) >= config.min_reports))


@dataclasses.dataclass(frozen=True)
class RoundResult:
    """What a round executor (`run_round_direct`, or the actors of `fl.actors`) decided."""

    end_s: float  # when reporting closed
    accepted: np.ndarray  # bool per selected device: its update is in the aggregate
    committed: bool  # the round committed
    lost: np.ndarray  # bool per selected device: lost to an actor crash
    resume_s: float  # the earliest time the next round's selection may close
    reason: str  # "committed", "too few reports", or the failure that ended it
    messages: int  # actor messages the round cost (0 without actors)


def run_round_direct(r: int, open_s: float, close_s: float, sessions: Sessions, config: RoundConfig) -> RoundResult:
    """The protocol without actors or faults (the default executor of `protocol.simulate`).

    Args:
        r: the round's index (unused here; actors log it).
        open_s: when its selection opened (s; unused here).
        close_s: when its selection closed and reporting opened (s).
        sessions: the selected devices' sessions.
        config: goal_count, min_reports and the reporting window.
    """
    out = reporting_outcome(sessions.report_s, close_s, config)
    reason = "committed" if out.committed else "too few reports"
    return RoundResult(out.end_s, out.accepted, out.committed, np.zeros(len(sessions.ids), bool), out.end_s, reason, 0)


# -- late updates -------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RecycleBuffer:
    """Late updates waiting to be applied (arrays aligned per update)."""

    ids: np.ndarray  # device ids
    arrival_s: np.ndarray  # when the upload completed (s)
    version: np.ndarray  # the model version it was trained on
    examples: np.ndarray  # the device's examples (its FedAvg weight)
    round: np.ndarray  # the round it was trained in

    @staticmethod
    def empty() -> RecycleBuffer:
        """A buffer holding nothing."""
        return RecycleBuffer(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0),
                             np.zeros(0, np.int64))

    def add(self, ids: np.ndarray, arrival_s: np.ndarray, version: int, examples: np.ndarray,
            round: int = -1) -> RecycleBuffer:
        """This buffer plus late updates of devices `ids`.

        Args:
            ids: the devices whose upload came late.
            arrival_s: when each upload completed (s).
            version: the model version they trained on.
            examples: each device's examples.
            round: the round they were trained in.
        """
        n = len(ids)
        return RecycleBuffer(np.concatenate([self.ids, ids]), np.concatenate([self.arrival_s, arrival_s]),
                             np.concatenate([self.version, np.full(n, version, np.int64)]),
                             np.concatenate([self.examples, np.asarray(examples, np.float64)]),
                             np.concatenate([self.round, np.full(n, round, np.int64)]))

    def keep(self, mask: np.ndarray) -> RecycleBuffer:
        """The updates where `mask` (bool per update) is True."""
        return RecycleBuffer(self.ids[mask], self.arrival_s[mask], self.version[mask], self.examples[mask],
                             self.round[mask])


def staleness_weight(staleness: npt.ArrayLike) -> np.ndarray:
    """The survey's recycling weight (as in FedBuff): 1 / sqrt(1 + s) for an update s versions old."""
    return 1.0 / np.sqrt(1.0 + np.asarray(staleness, np.float64))


NO_IDS, NO_WEIGHTS = np.zeros(0, np.int64), np.zeros(0)


@dataclasses.dataclass(frozen=True)
class Recycled:
    """Late updates a commit applies (arrays aligned per update)."""

    ids: np.ndarray  # device ids
    staleness: np.ndarray  # model versions between the one trained on and the one updated
    weight: np.ndarray  # examples x 1/sqrt(1 + staleness)
    round: np.ndarray  # the round each was trained in
    index: np.ndarray  # its index in the buffer it was taken from

    @staticmethod
    def none() -> Recycled:
        """No late update."""
        return Recycled(NO_IDS, NO_IDS, NO_WEIGHTS, NO_IDS, NO_IDS)


def take_recyclable(buffer: RecycleBuffer, end_s: float, version: int) -> tuple[Recycled, RecycleBuffer]:
    """At a commit closing at `end_s` on model `version`: the late updates that arrived by then.

    Returns `(taken, rest)`: `rest` stays buffered. Each update is taken exactly once.
    """
    due = buffer.arrival_s <= end_s
    s = version - buffer.version[due]
    taken = Recycled(buffer.ids[due], s, buffer.examples[due] * staleness_weight(s), buffer.round[due],
                     np.flatnonzero(due))
    return taken, buffer.keep(~due)


# -- over-selection, apart from availability ----------------------------------------------------------------

def commit_share(pop: Population, config: RoundConfig, over_selection: np.ndarray, rounds: int,
                 seed: int) -> np.ndarray:
    """Share of rounds that commit at each over-selection factor, availability aside.

    Each round selects `target` devices uniformly from the whole population and runs reporting
    alone, isolating what over-selection is for: covering drop-outs and stragglers in the window
    (no device's eligibility window closes on it here).

    Args:
        pop: the device population (speeds, bandwidths, drop-out probabilities).
        config: the round configuration; its `over_selection` is replaced by each factor.
        over_selection: the factors (>= 1), one share each.
        rounds: independent rounds per factor.
        seed: seeds the selections and sessions.
    """
    validate.instance("pop", pop, Population, "a population.Population")
    validate.instance("config", config, RoundConfig, "a rounds.RoundConfig")
    factors = validate.reals("over_selection", over_selection, 1.0, 100.0, ndim=1)
    validate.integer("rounds", rounds, 1)
    validate.seed("seed", seed)
    pop = dataclasses.replace(pop, drops_at_close=np.zeros(pop.size, bool))
    rng = np.random.default_rng(seed)
    shares = []
    for factor in factors:
        cfg = dataclasses.replace(config, over_selection=float(factor))
        ok = 0
        for _ in range(rounds):
            ids = rng.choice(pop.size, size=min(cfg.target, pop.size), replace=False)
            ok += reporting_outcome(sample_sessions(rng, pop, ids, 0.0, cfg).report_s, 0.0, cfg).committed
        shares.append(ok / rounds)
    return np.array(shares)
