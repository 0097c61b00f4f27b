"""The round protocol on a simulated clock: selection, configuration, reporting, pace steering.

A round: eligible devices check in; the Selectors keep a reservoir sample of `target` =
goal_count x over_selection of them and reject the rest, telling each when to come back (pace
steering; in this model the rejected hear so when selection closes). Selection closes when the
reservoir is full (or at the selection timeout, if at least a minimum fraction of the goal arrived;
otherwise the round is abandoned). Selected devices download
the plan and checkpoint, train, and upload. Reporting ends when `goal_count` updates arrived or the
reporting window closes; the round commits if at least `min_reports` arrived in time. Uploads after
that are late: rejected and counted, or, with `recycle_late`, kept and applied once in a later
committed round with weight 1/sqrt(1 + staleness). With `pipelined`, selection for round n+1 runs
while round n reports.

`simulate()` is a vectorised discrete-event model: it steps round by round, and inside a round
handles all devices as NumPy arrays (check-ins, sessions, reports), never one device at a time.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from mlsys_core import validate
from mlsys_core.fl.plans import FLPlan, supported_devices
from mlsys_core.fl.population import DAY_S, Population, is_eligible, next_eligible_s
from mlsys_core.fl.telemetry import EventLog, RoundCounters

STEERING_MODES = ("none", "spread", "synchronise", "auto")


@dataclasses.dataclass(frozen=True)
class RoundConfig:
    """One FL task's round parameters (paper defaults: over-selection 1.3). Sizes in bytes."""

    goal_count: int = 1000
    over_selection: float = 1.3
    selection_timeout_s: float = 120.0
    min_goal_fraction: float = 0.8
    reporting_window_s: float = 240.0
    min_reports: int | None = None  # default: goal_count
    checkpoint_bytes: int = 5_600_000  # 1.4 M float32 parameters, as in the paper's keyboard model
    plan_bytes: int = 20_000
    update_bytes: int = 5_600_000
    epochs: int = 1
    pipelined: bool = True
    recycle_late: bool = False

    def __post_init__(self):
        validate.integer("goal_count", self.goal_count, 1)
        validate.number("over_selection", self.over_selection, 1.0, 100.0)
        validate.number("selection_timeout_s", self.selection_timeout_s, 0.0, low_open=True)
        validate.number("min_goal_fraction", self.min_goal_fraction, 0.0, 1.0, low_open=True)
        validate.number("reporting_window_s", self.reporting_window_s, 0.0, low_open=True)
        if self.min_reports is None:
            object.__setattr__(self, "min_reports", self.goal_count)
        validate.integer("min_reports", self.min_reports, 1, self.goal_count)
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


@dataclasses.dataclass(frozen=True)
class SteeringConfig:
    """Pace steering: when a rejected or finished device is told to come back.

    "none": retry after about `retry_s` (a thundering herd). "spread" (large populations): random
    delays whose mean adapts so check-ins arrive at `checkin_headroom` x the rate rounds need.
    "synchronise" (small populations): everyone returns just before the next selection closes.
    "auto": synchronise when the estimated active population is below `small_population_factor` x
    target, else spread.
    """

    mode: str = "auto"
    retry_s: float = 60.0
    initial_delay_s: float = 600.0
    min_delay_s: float = 30.0
    max_delay_s: float = 1800.0
    checkin_headroom: float = 2.0
    small_population_factor: float = 3.0
    sync_jitter_s: float = 10.0
    cooldown_s: float = 4 * 3600.0
    no_plan_retry_s: float = DAY_S

    def __post_init__(self):
        validate.choice("mode", self.mode, STEERING_MODES)
        for name in ("retry_s", "initial_delay_s", "min_delay_s", "checkin_headroom", "small_population_factor"):
            validate.number(name, getattr(self, name), 0.0, low_open=True)
        validate.number("max_delay_s", self.max_delay_s, self.min_delay_s)
        for name in ("sync_jitter_s", "cooldown_s", "no_plan_retry_s"):
            validate.number(name, getattr(self, name), 0.0)


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


class Sessions(NamedTuple):
    """Per selected device (arrays aligned with `ids`): phase durations, drop-out, report time."""

    ids: np.ndarray
    download_s: np.ndarray
    compute_s: np.ndarray
    upload_s: np.ndarray
    dropped: np.ndarray  # bool
    drop_s: np.ndarray  # absolute time of the drop (inf if not dropped)
    report_s: np.ndarray  # absolute time the upload completes (inf if dropped)


def sample_sessions(rng, pop: Population, ids: np.ndarray, start_s: float, config: RoundConfig,
                    num_examples: np.ndarray | None = None) -> Sessions:
    """Draw the sessions of devices `ids` configured at `start_s`: download, train, upload, or drop out."""
    examples = pop.num_examples[ids] if num_examples is None else num_examples
    download = (config.plan_bytes + config.checkpoint_bytes) / pop.down_bytes_per_s[ids].astype(np.float64)
    compute = config.epochs * examples / pop.examples_per_s[ids].astype(np.float64)
    upload = config.update_bytes / pop.up_bytes_per_s[ids].astype(np.float64)
    total = download + compute + upload
    dropped = rng.random(len(ids)) < pop.drop_out_p[ids]
    drop_s = np.where(dropped, start_s + rng.random(len(ids)) * total, np.inf)
    report_s = np.where(dropped, np.inf, start_s + total)
    return Sessions(ids, download, compute, upload, dropped, drop_s, report_s)


class ReportOutcome(NamedTuple):
    end_s: float  # when reporting closed
    accepted: np.ndarray  # bool per device: its update is in the round's aggregate
    committed: bool


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
    return ReportOutcome(end_s, accepted, bool(np.count_nonzero(accepted) >= config.min_reports))


class RecycleBuffer(NamedTuple):
    """Late updates waiting to be applied: device id, arrival time, model version trained on, examples."""

    ids: np.ndarray
    arrival_s: np.ndarray
    version: np.ndarray
    examples: np.ndarray

    @staticmethod
    def empty() -> RecycleBuffer:
        return RecycleBuffer(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0))

    def add(self, ids, arrival_s, version: int, examples) -> RecycleBuffer:
        n = len(ids)
        return RecycleBuffer(np.concatenate([self.ids, ids]), np.concatenate([self.arrival_s, arrival_s]),
                             np.concatenate([self.version, np.full(n, version, np.int64)]),
                             np.concatenate([self.examples, np.asarray(examples, np.float64)]))


def staleness_weight(staleness) -> np.ndarray:
    """The survey's recycling weight (as in FedBuff): 1 / sqrt(1 + s) for an update s versions old."""
    return 1.0 / np.sqrt(1.0 + np.asarray(staleness, np.float64))


def take_recyclable(buffer: RecycleBuffer, end_s: float, version: int):
    """At a commit closing at `end_s` on model `version`: the late updates that arrived by then.

    Returns `(taken, rest)`: `taken` is a dict of ids, staleness and weight (examples x
    1/sqrt(1+s)); `rest` stays buffered. Each update is taken exactly once.
    """
    due = buffer.arrival_s <= end_s
    s = version - buffer.version[due]
    taken = {"ids": buffer.ids[due], "staleness": s, "weight": buffer.examples[due] * staleness_weight(s),
             "index": np.flatnonzero(due)}
    return taken, RecycleBuffer(*(a[~due] for a in buffer))


class RoundResult(NamedTuple):
    """What a round executor (direct, or the actors of `fl.actors`) decided."""

    end_s: float
    accepted: np.ndarray
    committed: bool
    lost: np.ndarray  # bool per selected device: lost to an actor crash
    resume_s: float  # the earliest time the next round's selection may close
    reason: str  # "committed", "too few reports", or the failure that ended it
    messages: int


def run_round_direct(r: int, open_s: float, close_s: float, sessions: Sessions, config: RoundConfig) -> RoundResult:
    """The protocol without actors or faults."""
    out = reporting_outcome(sessions.report_s, close_s, config)
    reason = "committed" if out.committed else "too few reports"
    return RoundResult(out.end_s, out.accepted, out.committed, np.zeros(len(sessions.ids), bool), out.end_s, reason, 0)


@dataclasses.dataclass
class SimResult:
    """Everything one simulation produced: counters per round, check-ins per time bin, the event log."""

    counters: RoundCounters
    checkins_per_bin: np.ndarray
    load_bin_s: float
    duration_s: float
    log: EventLog
    version: int  # committed rounds (model versions)
    recycled: int  # late updates applied in a later committed round
    pending_recycle: int  # late updates still waiting for a commit when the simulation ended


class _Steer:
    """Pace-steering state: the adaptive mean delay and the round-duration estimate."""

    def __init__(self, steering: SteeringConfig, config: RoundConfig):
        self.s, self.config = steering, config
        self.delay_s = steering.initial_delay_s
        self.round_s = config.selection_timeout_s
        self.active = np.inf

    def mode(self) -> str:
        if self.s.mode != "auto":
            return self.s.mode
        small = self.active < self.s.small_population_factor * self.config.target
        return "synchronise" if small else "spread"

    def delays(self, rng, n: int, sync_in_s) -> np.ndarray:
        """Come-back delays for `n` devices; `sync_in_s` (scalar or per device) is when synchronised ones return."""
        mode = self.mode()
        if mode == "none":
            return rng.uniform(0.5, 1.5, n) * self.s.retry_s
        if mode == "spread":
            return rng.uniform(0.0, 2.0 * self.delay_s, n)
        return np.maximum(sync_in_s, 0.0) + rng.uniform(0.0, self.s.sync_jitter_s, n)

    def observe(self, checkins: int, window_s: float, round_s: float) -> None:
        """Little's law: active devices ~ rate x mean delay; steer the rate toward headroom x need."""
        self.round_s = 0.7 * self.round_s + 0.3 * max(round_s, 1.0)
        rate = checkins / max(window_s, 1.0)
        self.active = rate * self.delay_s
        need = self.s.checkin_headroom * self.config.target / self.round_s
        gain = float(np.clip(math.sqrt(max(rate, 1e-3) / need), 0.5, 1.5))  # damped: at most x1.5 per round
        self.delay_s = float(np.clip(self.delay_s * gain, self.s.min_delay_s, self.s.max_delay_s))


def simulate(pop: Population, config: RoundConfig, steering: SteeringConfig, duration_s: float, seed: int, *,
             plans: dict[int, FLPlan] | None = None, executor=None, traced_devices: int = 1000,
             load_bin_s: float = 60.0) -> SimResult:
    """Run rounds back to back for `duration_s` simulated seconds over the whole population.

    `executor(r, open_s, close_s, sessions, config) -> RoundResult` runs reporting (default: the
    protocol alone; `fl.actors.ActorSystem.run_round` adds actors and faults). Devices whose runtime
    has no plan in `plans` are rejected at check-in. Deterministic for a given `seed`.
    """
    validate.number("duration_s", duration_s, 0.0, low_open=True)
    rng = np.random.default_rng(seed)
    executor = executor or run_round_direct
    supported = np.ones(pop.size, bool) if plans is None else supported_devices(plans, pop.runtime_version)
    next_s = next_eligible_s(pop, 0.0) + rng.uniform(0.0, steering.initial_delay_s, pop.size)
    log, counters = EventLog(traced_devices), RoundCounters()
    load = np.zeros(int(math.ceil(duration_s / load_bin_s)) + 2, np.int64)
    steer = _Steer(steering, config)
    buffer, version, recycled = RecycleBuffer.empty(), 0, 0
    open_s = prev_end = prev_close = 0.0
    r = 0

    def checked_in(ids: np.ndarray, t: np.ndarray) -> None:
        np.add.at(load, np.minimum((t // load_bin_s).astype(np.int64), len(load) - 1), 1)
        log.add(ids, t, "-")

    def arrivals(horizon: float, record: bool) -> tuple[np.ndarray, np.ndarray, int]:
        """One pass over devices due to check in before `horizon`; returns eligible ones with a plan.

        Devices without a plan are rejected on the spot; the others are recorded as checked in now
        if `record` (else the caller records them once it knows they arrived in the window).
        """
        cand = np.flatnonzero(next_s < horizon)
        t = next_s[cand]
        ok = is_eligible(pop, t, cand)
        next_s[cand[~ok]] = next_eligible_s(pop, t[~ok], cand[~ok])  # asleep devices do not call in
        ids, t = cand[ok], t[ok]
        no_plan = ~supported[ids]
        checked_in(ids[no_plan], t[no_plan])
        log.add(ids[no_plan], t[no_plan], "P")
        next_s[ids[no_plan]] = t[no_plan] + steering.no_plan_retry_s
        if record:
            checked_in(ids[~no_plan], t[~no_plan])
        return ids[~no_plan], t[~no_plan], int(np.count_nonzero(no_plan))

    while open_s < duration_s:
        # Selection: gather check-ins up to the latest possible close, then find the close.
        horizon = max(open_s + config.selection_timeout_s, prev_end)
        got_ids, got_t, no_plan = [], [], 0
        while np.any(next_s < horizon):
            ids, t, k = arrivals(horizon, record=False)
            next_s[ids] = np.inf  # held by a Selector
            got_ids.append(ids), got_t.append(t)
            no_plan += k
        ids, t = np.concatenate(got_ids or [np.zeros(0, np.int64)]), np.concatenate(got_t or [np.zeros(0)])
        order = np.argsort(t, kind="stable")
        ids, t = ids[order], t[order]
        fill_s = t[config.target - 1] if len(t) >= config.target else np.inf
        close_s = max(prev_end, min(fill_s, open_s + config.selection_timeout_s))
        later = t > close_s
        next_s[ids[later]] = t[later]  # they arrive during the next selection instead
        ids, t = ids[~later], t[~later]
        checked_in(ids, t)
        steer.observe(len(ids) + no_plan, close_s - open_s, close_s - prev_close)
        row = dict(round=r, open_s=open_s, close_s=close_s, checkins=len(ids) + no_plan, rejected_no_plan=no_plan,
                   steering=steer.mode(), version=version)
        if len(ids) < config.min_selected:  # selection timed out without enough devices
            next_s[ids] = close_s + steer.delays(rng, len(ids), steer.round_s)
            log.add(ids, close_s, "x")
            counters.append(**row, end_s=close_s, selected=0, rejected=len(ids), dropped=0, lost=0, accepted=0,
                            late=0, recycled=0, committed=False, reason="selection timeout", bytes_down=0,
                            bytes_up=0, selection_s=close_s - open_s, configuration_s=0.0, reporting_s=0.0,
                            wasted_compute_s=0.0, messages=0, resume_s=close_s)
            open_s = prev_end = prev_close = close_s
            r += 1
            continue
        keep = np.zeros(len(ids), bool)
        keep[reservoir_sample(rng, len(ids), min(config.target, len(ids)))] = True
        rejected = ids[~keep]
        next_s[rejected] = close_s + steer.delays(rng, len(rejected), 0.8 * steer.round_s)
        log.add(rejected, close_s, "x")
        sel = ids[keep]

        # Configuration and reporting.
        sess = sample_sessions(rng, pop, sel, close_s, config)
        res = executor(r, open_s, close_s, sess, config)
        late = np.isfinite(sess.report_s) & ~res.accepted & ~res.lost
        taken_n = 0
        if config.recycle_late and res.committed:
            taken, buffer = take_recyclable(buffer, res.end_s, version)
            taken_n = len(taken["ids"])
        if config.recycle_late:
            buffer = buffer.add(sel[late], sess.report_s[late], version, pop.num_examples[sel[late]])
        recycled += taken_n
        version += int(res.committed)
        _log_sessions(log, sess, close_s, res, late, config.recycle_late)
        finished = np.where(np.isfinite(sess.report_s), sess.report_s, np.minimum(sess.drop_s, res.end_s))
        next_s[sel] = finished + steering.cooldown_s
        configured = (~sess.dropped) | (sess.drop_s > close_s + sess.download_s)
        counters.append(
            **row, end_s=res.end_s, selected=len(sel), rejected=len(rejected),
            dropped=int((sess.dropped & ~res.lost).sum()),
            lost=int(res.lost.sum()), accepted=int(res.accepted.sum()), late=int(late.sum()), recycled=taken_n,
            committed=res.committed, reason=res.reason,
            bytes_down=int(configured.sum()) * (config.plan_bytes + config.checkpoint_bytes),
            bytes_up=(int(res.accepted.sum()) + (int(late.sum()) if config.recycle_late else 0)) * config.update_bytes,
            selection_s=close_s - open_s, configuration_s=float(np.median(sess.download_s)),
            reporting_s=res.end_s - close_s,
            wasted_compute_s=0.0 if config.recycle_late else float(sess.compute_s[late].sum()),
            messages=res.messages, resume_s=res.resume_s,
        )
        # Without pipelining, devices calling in while the round reports are rejected on the spot.
        if not config.pipelined:
            gap_rejected = gap_no_plan = 0
            while np.any(next_s < res.resume_s):
                ids, t, k = arrivals(res.resume_s, record=True)
                gap_no_plan += k
                next_s[ids] = t + steer.delays(rng, len(ids), res.resume_s - t)  # synchronised: back at the next open
                log.add(ids, t, "x")
                gap_rejected += len(ids)
            counters.rows[-1]["rejected"] += gap_rejected
            counters.rows[-1]["checkins"] += gap_rejected + gap_no_plan
            counters.rows[-1]["rejected_no_plan"] += gap_no_plan
            open_s = res.resume_s
        else:
            open_s = close_s
        prev_end, prev_close = res.resume_s, close_s
        r += 1
    return SimResult(counters, load[: int(math.ceil(duration_s / load_bin_s))], load_bin_s, duration_s, log,
                     version, recycled, len(buffer.ids))


def _log_sessions(log: EventLog, s: Sessions, start_s: float, res: RoundResult, late: np.ndarray, recycle: bool):
    """Telemetry events of a round's selected devices, all at once."""
    configured = start_s + s.download_s
    trained = configured + s.compute_s
    for code, at in (("v", configured), ("[", configured), ("]", trained), ("+", trained)):
        alive = (s.drop_s > at) & ~(res.lost & (at > res.end_s))
        log.add(s.ids[alive], at[alive], code)
    log.add(s.ids[res.accepted], s.report_s[res.accepted], "^")
    log.add(s.ids[late], s.report_s[late], "R" if recycle else "L")
    dropped = s.dropped & ~res.lost
    log.add(s.ids[dropped], s.drop_s[dropped], "!")
    log.add(s.ids[res.lost], np.full(int(res.lost.sum()), res.end_s), "!")


def commit_share(pop: Population, config: RoundConfig, over_selection: np.ndarray, rounds: int,
                 seed: int) -> np.ndarray:
    """Share of rounds that commit at each over-selection factor, availability aside.

    Each round selects `target` devices uniformly from the whole population and runs reporting
    alone, isolating what over-selection is for: covering drop-outs and stragglers in the window.
    """
    validate.integer("rounds", rounds, 1)
    rng = np.random.default_rng(seed)
    shares = []
    for factor in np.asarray(over_selection, np.float64):
        cfg = dataclasses.replace(config, over_selection=float(factor))
        ok = 0
        for _ in range(rounds):
            ids = rng.choice(pop.size, size=min(cfg.target, pop.size), replace=False)
            ok += reporting_outcome(sample_sessions(rng, pop, ids, 0.0, cfg).report_s, 0.0, cfg).committed
        shares.append(ok / rounds)
    return np.array(shares)
