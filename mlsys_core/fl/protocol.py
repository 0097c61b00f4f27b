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

`simulate()` is a vectorised discrete-event model: it steps round by round, threading an explicit
`SimState` through one function per step (`round_step`), and inside a round handles all devices as
NumPy arrays (check-ins, sessions, reports), never one device at a time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import numba
import numpy as np

from mlsys_core import validate
from mlsys_core.fl.plans import FLPlan, supported_devices
from mlsys_core.fl.population import DAY_S, Population, next_eligible_s, window_close_s
from mlsys_core.fl.telemetry import EventLog, RoundCounters, RoundRecord

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
        if validate.number("max_delay_s", self.max_delay_s) < self.min_delay_s:
            raise ValueError(f"max_delay_s must be >= min_delay_s ({self.min_delay_s:g}), got {self.max_delay_s!r}")
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
    """Draw the sessions of devices `ids` configured at `start_s`: download, train, upload, or drop out
    (at random with the device's `drop_out_p`, or when its eligibility window closes first)."""
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
    """Late updates waiting to be applied: device id, arrival time, model version trained on, examples,
    and the round they were trained in."""

    ids: np.ndarray
    arrival_s: np.ndarray
    version: np.ndarray
    examples: np.ndarray
    round: np.ndarray

    @staticmethod
    def empty() -> RecycleBuffer:
        return RecycleBuffer(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, np.int64), np.zeros(0),
                             np.zeros(0, np.int64))

    def add(self, ids, arrival_s, version: int, examples, round: int = -1) -> RecycleBuffer:
        n = len(ids)
        return RecycleBuffer(np.concatenate([self.ids, ids]), np.concatenate([self.arrival_s, arrival_s]),
                             np.concatenate([self.version, np.full(n, version, np.int64)]),
                             np.concatenate([self.examples, np.asarray(examples, np.float64)]),
                             np.concatenate([self.round, np.full(n, round, np.int64)]))


def staleness_weight(staleness) -> np.ndarray:
    """The survey's recycling weight (as in FedBuff): 1 / sqrt(1 + s) for an update s versions old."""
    return 1.0 / np.sqrt(1.0 + np.asarray(staleness, np.float64))


_NO_IDS, _NO_WEIGHTS = np.zeros(0, np.int64), np.zeros(0)


class Recycled(NamedTuple):
    """Late updates a commit applies: device ids, staleness (versions), weight (examples x 1/sqrt(1+s)),
    the round each was trained in, and its index in the buffer it was taken from."""

    ids: np.ndarray
    staleness: np.ndarray
    weight: np.ndarray
    round: np.ndarray
    index: np.ndarray

    @staticmethod
    def none() -> Recycled:
        return Recycled(_NO_IDS, _NO_IDS, _NO_WEIGHTS, _NO_IDS, _NO_IDS)


def take_recyclable(buffer: RecycleBuffer, end_s: float, version: int) -> tuple[Recycled, RecycleBuffer]:
    """At a commit closing at `end_s` on model `version`: the late updates that arrived by then.

    Returns `(taken, rest)`: `rest` stays buffered. Each update is taken exactly once.
    """
    due = buffer.arrival_s <= end_s
    s = version - buffer.version[due]
    taken = Recycled(buffer.ids[due], s, buffer.examples[due] * staleness_weight(s), buffer.round[due],
                     np.flatnonzero(due))
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


class Ragged(NamedTuple):
    """One list of values per round, stored flat (CSR): round r's are `values[offsets[r]:offsets[r + 1]]`."""

    values: np.ndarray
    offsets: np.ndarray  # (rounds + 1,), int64

    def of(self, r: int) -> np.ndarray:
        return self.values[self.offsets[r]:self.offsets[r + 1]]

    @staticmethod
    def from_parts(parts: list, dtype) -> Ragged:
        values = np.concatenate([np.asarray(p, dtype) for p in parts]) if parts else np.zeros(0, dtype)
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts], dtype=np.int64)]).astype(np.int64)
        values.flags.writeable = offsets.flags.writeable = False
        return Ragged(values, offsets)


@dataclasses.dataclass(frozen=True)
class FLSimResult:
    """Everything one `simulate` run produced (typed, columnar, built once at the end).

    `counters`: per-round counters (`telemetry.RoundCounters`, frozen arrays). Per round r, as `Ragged`
    lists: `aggregated.of(r)`, the devices whose on-time update is in round r's aggregate (empty unless r
    committed); `late.of(r)`, devices whose upload of round r came after reporting closed; with
    `recycle_late`, `recycled_ids.of(r)` the late updates applied in round r, trained in round
    `recycled_round.of(r)`, with weight `recycled_weight.of(r)` (examples x 1/sqrt(1 + staleness)).
    """

    counters: RoundCounters
    checkins_per_bin: np.ndarray
    load_bin_s: float
    duration_s: float
    log: EventLog
    version: int  # committed rounds (model versions)
    recycled: int  # late updates applied in a later committed round
    pending_recycle: int  # late updates still waiting for a commit when the simulation ended
    aggregated: Ragged
    late: Ragged
    recycled_ids: Ragged
    recycled_round: Ragged
    recycled_weight: Ragged


@dataclasses.dataclass(frozen=True)
class Participants:
    """Who took part in each round of a `simulate` run (see /work/brief/FL_API.md): for round r, its
    selection close `close_s[r]`, reporting close `end_s[r]`, whether it `committed[r]`, and `ids_of(r)`,
    the device ids whose update is in its aggregate (flat: `ids[offsets[r]:offsets[r + 1]]`)."""

    round: np.ndarray
    close_s: np.ndarray
    end_s: np.ndarray
    committed: np.ndarray
    ids: np.ndarray
    offsets: np.ndarray

    def ids_of(self, r: int) -> np.ndarray:
        return self.ids[self.offsets[r]:self.offsets[r + 1]]

    def __len__(self) -> int:
        return len(self.round)


def round_participants(res: FLSimResult) -> Participants:
    """Per round of `res`: close times, commit flag and the aggregated device ids (partial participation)."""
    c = res.counters
    return Participants(c.round, c.close_s, c.end_s, c.committed, res.aggregated.values, res.aggregated.offsets)


# -- pace steering: a small explicit state and pure functions over it ----------------------------------

class SteerState(NamedTuple):
    """Pace-steering state: the adaptive mean come-back delay, the round-duration estimate, and the
    estimated active population (Little's law)."""

    delay_s: float
    round_s: float
    active: float


def steer_init(steering: SteeringConfig, config: RoundConfig) -> SteerState:
    return SteerState(steering.initial_delay_s, config.selection_timeout_s, np.inf)


def steer_mode(steering: SteeringConfig, config: RoundConfig, st: SteerState) -> str:
    """The mode in force: "auto" synchronises a small population, else spreads."""
    if steering.mode != "auto":
        return steering.mode
    return "synchronise" if st.active < steering.small_population_factor * config.target else "spread"


def steer_delays(rng, steering: SteeringConfig, mode: str, st: SteerState, n: int, sync_in_s) -> np.ndarray:
    """Come-back delays for `n` devices; `sync_in_s` (scalar or per device) is when synchronised ones return."""
    if mode == "none":
        return rng.uniform(0.5, 1.5, n) * steering.retry_s
    if mode == "spread":
        return rng.uniform(0.0, 2.0 * st.delay_s, n)
    return np.maximum(sync_in_s, 0.0) + rng.uniform(0.0, steering.sync_jitter_s, n)


def steer_observe(steering: SteeringConfig, config: RoundConfig, st: SteerState, checkins: int, window_s: float,
                  round_s: float) -> SteerState:
    """Little's law: active devices ~ rate x mean delay; steer the rate toward headroom x need."""
    round_est = 0.7 * st.round_s + 0.3 * max(round_s, 1.0)
    rate = checkins / max(window_s, 1.0)
    need = steering.checkin_headroom * config.target / round_est
    gain = float(np.clip(math.sqrt(max(rate, 1e-3) / need), 0.5, 1.5))  # damped: at most x1.5 per round
    delay = float(np.clip(st.delay_s * gain, steering.min_delay_s, steering.max_delay_s))
    return SteerState(delay, round_est, rate * st.delay_s)


# -- the check-in stream: a calendar queue over the devices' next check-in times --------------------------

class CheckinQueue:
    """The devices' next check-in times, bucketed by time so that a round touches only the devices due
    before its horizon, never all N.

    Bucket b holds (id, time) pairs due in [b w, (b+1) w); the last bucket holds everything later. Each
    device has at most one entry: it enters when its time is set (`schedule`; inf: never) and leaves
    when popped (`pop_due`); a popped device a Selector holds is in no bucket until scheduled again. The
    state is explicit and owned by one run; it is updated in place (copying N entries a round would be
    the O(N) scan this replaces).
    """

    def __init__(self, next_s: np.ndarray, horizon_s: float):
        self.bucket_s = max(60.0, horizon_s / 20_000)
        self.num_buckets = int(math.ceil(horizon_s / self.bucket_s)) + 1
        self.buckets: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(self.num_buckets)]
        self.head = 0  # buckets below head are empty
        self.schedule(np.arange(len(next_s), dtype=np.int32), next_s)

    def schedule(self, ids: np.ndarray, t_s) -> None:
        """Devices `ids` next check in at `t_s` (scalar or per device; inf: never)."""
        t = np.broadcast_to(np.asarray(t_s, np.float64), ids.shape)
        if not len(ids):
            return
        ids, t, counts = _bucket_sort(ids, t, self.bucket_s, self.head, self.num_buckets)
        ends = np.cumsum(counts)
        for k in np.flatnonzero(counts).tolist():
            lo, hi = ends[k] - counts[k], ends[k]
            self.buckets[k].append((ids[lo:hi], t[lo:hi]))

    def pop_due(self, horizon_s: float) -> tuple[np.ndarray, np.ndarray]:
        """Remove and return the devices due before `horizon_s` and their times (ids int64, unsorted)."""
        last = min(self.num_buckets - 1, max(self.head, int(math.ceil(horizon_s / self.bucket_s)) - 1))
        chunks = [c for b in range(self.head, last + 1) for c in self.buckets[b]]
        for b in range(self.head, last + 1):
            self.buckets[b] = []
        self.head = last  # the last bucket may still hold devices due after the horizon
        if not chunks:
            return np.zeros(0, np.int64), np.zeros(0)
        ids, t = np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks])
        due = t < horizon_s
        self.schedule(ids[~due], t[~due])
        return ids[due].astype(np.int64), t[due]


@numba.njit(cache=True)
def _bucket_sort(ids, t, bucket_s, head, num_buckets):
    """Counting sort of the finite-time (id, t) pairs by bucket floor(t / bucket_s), clipped to
    [head, num_buckets - 1]; pairs with t = inf are dropped. Returns (ids int32, t, counts per bucket)."""
    b = np.empty(len(ids), np.int32)
    counts = np.zeros(num_buckets, np.int64)
    for i in range(len(ids)):
        if np.isfinite(t[i]):
            k = min(max(int(t[i] // bucket_s), head), num_buckets - 1)
            b[i] = k
            counts[k] += 1
        else:
            b[i] = -1
    starts = np.cumsum(counts) - counts
    out_ids = np.empty(counts.sum(), np.int32)
    out_t = np.empty(counts.sum())
    for i in range(len(ids)):
        k = b[i]
        if k >= 0:
            out_ids[starts[k]] = ids[i]
            out_t[starts[k]] = t[i]
            starts[k] += 1
    return out_ids, out_t, counts


@numba.njit(cache=True)
def _argsort_times(t):
    """Stable argsort of times >= 0: an LSD radix sort of (bit pattern, index) pairs (non-negative
    float64s order as their bits read as unsigned integers), 8 bits a pass, passes where every key
    agrees skipped. About 2x numpy's argsort on a round's 10^5 check-ins."""
    n = len(t)
    keys, idx = t.view(np.uint64).copy(), np.arange(n)
    spare_keys, spare_idx = np.empty(n, np.uint64), np.empty(n, np.int64)
    mask = np.uint64(255)
    for shift in range(0, 64, 8):
        sh = np.uint64(shift)
        counts = np.zeros(257, np.int64)
        for i in range(n):
            counts[((keys[i] >> sh) & mask) + 1] += 1
        if counts.max() == n:
            continue
        for k in range(256):
            counts[k + 1] += counts[k]
        for i in range(n):
            k = (keys[i] >> sh) & mask
            j = counts[k]
            spare_idx[j], spare_keys[j] = idx[i], keys[i]
            counts[k] += 1
        idx, spare_idx = spare_idx, idx
        keys, spare_keys = spare_keys, keys
    return idx


@numba.njit(cache=True)
def _mod24(x):
    """`np.mod(x, 24.0)`, bit for bit, without fmod (3x faster here): x - 24 floor(x / 24) is exact
    once the quotient's rounding is undone (the one case: x / 24 rounds up to an integer)."""
    r = x - 24.0 * np.floor(x / 24.0)
    return r + 24.0 if r < 0.0 else r


@numba.njit(cache=True)
def _check_in(t, ids, params):
    """`population.is_eligible` and `next_eligible_s` of devices `ids` at times `t`, fused and in the
    same floating-point operations (so the same answers), plus whether the device has a plan.

    `params` (N, 4) float32 rows, one cache line a device: UTC offset, hour it starts calling in
    (window start + check-in delay), for how long (window length - delay), and flags (1: unmetered
    network, 2: has a plan). Returns (eligible, next eligible time, eligible without a plan)."""
    ok = np.empty(len(ids), np.bool_)
    no_plan = np.empty(len(ids), np.bool_)
    nxt = np.empty(len(ids))
    for i in range(len(ids)):
        d = ids[i]
        flags = int(params[d, 3])
        unmetered = (flags & 1) == 1
        local = _mod24(t[i] / 3600.0 + np.float64(params[d, 0]))
        into = _mod24(local - np.float64(params[d, 1]))
        inside = into < np.float64(params[d, 2])
        ok[i] = unmetered and inside
        no_plan[i] = ok[i] and (flags & 2) == 0
        wait_h = 0.0 if inside else 24.0 - into + 1e-4
        nxt[i] = t[i] + wait_h * 3600.0 if unmetered else np.inf
    return ok, nxt, no_plan


# -- the steps of a round ---------------------------------------------------------------------------------

class Telemetry(NamedTuple):
    """Where check-ins and device events are recorded: check-ins per load bin, and the event log."""

    load: np.ndarray
    load_bin_s: float
    log: EventLog

    def checked_in(self, ids: np.ndarray, t: np.ndarray) -> None:
        b = np.minimum((t // self.load_bin_s).astype(np.int64), len(self.load) - 1)
        np.add(self.load, np.bincount(b, minlength=len(self.load)), out=self.load)
        self.log.add(ids, t, "-")


def devices_view(pop: Population, plans: dict[int, FLPlan] | None) -> np.ndarray:
    """What check-in needs of each device, computed once per run as one (N, 4) float32 row a device (see
    `_check_in`); window start + delay and length - delay in float32, as `population.is_eligible` does."""
    supported = np.ones(pop.size, bool) if plans is None else supported_devices(plans, pop.runtime_version)
    return np.stack([pop.tz_offset_h, pop.window_start_h + pop.checkin_delay_h,
                     pop.window_length_h - pop.checkin_delay_h,
                     pop.unmetered.astype(np.float32) + 2.0 * supported], axis=1).astype(np.float32)


def arrivals(queue: CheckinQueue, dev: np.ndarray, horizon_s: float, steering: SteeringConfig, tel: Telemetry,
             record: bool) -> tuple[np.ndarray, np.ndarray, int, int]:
    """One pass over the devices due to check in before `horizon_s`: the eligible ones with a plan.

    Asleep devices do not call in (they are rescheduled to their next window); devices without a plan
    are rejected on the spot. The others are recorded as checked in now if `record` (else the caller
    records them once it knows they arrived in the window). Returns (ids, times, rejected without plan,
    devices popped from the stream: 0 once none is due before the horizon).
    """
    cand, t = queue.pop_due(horizon_s)
    ok, nxt, no_plan = _check_in(t, cand, dev)
    queue.schedule(cand[~ok], nxt[~ok])
    ids, t, no_plan = cand[ok], t[ok], no_plan[ok]
    tel.checked_in(ids[no_plan], t[no_plan])
    tel.log.add(ids[no_plan], t[no_plan], "P")
    queue.schedule(ids[no_plan], t[no_plan] + steering.no_plan_retry_s)
    if record:
        tel.checked_in(ids[~no_plan], t[~no_plan])
    return ids[~no_plan], t[~no_plan], int(np.count_nonzero(no_plan)), len(cand)


def gather_checkins(queue: CheckinQueue, dev: np.ndarray, horizon_s: float, steering: SteeringConfig,
                    tel: Telemetry) -> tuple[np.ndarray, np.ndarray, int]:
    """Selection's check-ins up to `horizon_s`, held by the Selectors, in arrival order (ids, times, no-plan)."""
    got_ids, got_t, got_pass, no_plan = [], [], [], 0
    while True:
        ids, t, k, popped = arrivals(queue, dev, horizon_s, steering, tel, record=False)
        if not popped:
            break
        no_plan += k
        got_ids.append(ids), got_t.append(t), got_pass.append(np.full(len(ids), len(got_pass), np.int32))
    if not got_ids:
        return np.zeros(0, np.int64), np.zeros(0), no_plan
    ids, t, passes = np.concatenate(got_ids), np.concatenate(got_t), np.concatenate(got_pass)
    return (*arrival_order(ids, t, passes), no_plan)


def arrival_order(ids: np.ndarray, t: np.ndarray, passes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort check-ins by time; equal times (devices freed by the same round end) by pass, then device id."""
    order = _argsort_times(np.ascontiguousarray(t, np.float64))
    ts = t[order]
    tied = np.flatnonzero(ts[1:] == ts[:-1])
    if len(tied):
        pos = np.unique(np.concatenate([tied, tied + 1]))  # runs of equal times keep their place
        sub = order[pos]
        order[pos] = sub[np.lexsort((ids[sub], passes[sub], t[sub]))]
    return ids[order], t[order]


def selection_close_s(t: np.ndarray, open_s: float, prev_end_s: float, config: RoundConfig) -> float:
    """Selection closes when the reservoir fills or at the timeout, never before the previous round ends."""
    fill_s = t[config.target - 1] if len(t) >= config.target else np.inf
    return float(max(prev_end_s, min(fill_s, open_s + config.selection_timeout_s)))


def select(rng, n: int, config: RoundConfig) -> np.ndarray:
    """Which of `n` arrivals (in arrival order) the Selectors keep: a reservoir of up to `target`."""
    keep = np.zeros(n, bool)
    keep[reservoir_sample(rng, n, min(config.target, n))] = True
    return keep


# -- a run: its inputs and mutable streams, the state one round hands the next, and one function per step -----

class Run(NamedTuple):
    """One `simulate` run's inputs and its mutable streams. The check-in queue (arrays over all N devices),
    the telemetry (load bins, event log) and the random generator are updated in place by the steps, by
    design: copying them each round would cost O(N) a round. All else a round changes is in `SimState`."""

    pop: Population
    config: RoundConfig
    steering: SteeringConfig
    executor: Callable[..., RoundResult]
    dev: np.ndarray  # `devices_view`
    queue: CheckinQueue
    tel: Telemetry
    rng: np.random.Generator


class SimState(NamedTuple):
    """What one round hands the next (a new value each step): the round index, when its selection opens,
    when the previous round ended (resume time: selection closes no earlier) and closed its selection, the
    model version (committed rounds), the late updates waiting to be recycled and how many were applied,
    and the pace-steering state."""

    round: int
    open_s: float
    prev_end_s: float
    prev_close_s: float
    version: int
    buffer: RecycleBuffer
    recycled: int
    steer: SteerState


def start_run(pop: Population, config: RoundConfig, steering: SteeringConfig, duration_s: float, seed: int,
              plans: dict[int, FLPlan] | None = None, executor=None, traced_devices: int = 1000,
              load_bin_s: float = 60.0) -> Run:
    """A run's streams at time 0: every device's first check-in (its next eligible time plus a random
    delay), empty load bins and event log, and the generator seeded with `seed` (see `simulate`)."""
    _check_run(pop, config, steering, duration_s, seed, plans, executor, traced_devices, load_bin_s)
    rng = np.random.default_rng(seed)
    queue = CheckinQueue(next_eligible_s(pop, 0.0) + rng.uniform(0.0, steering.initial_delay_s, pop.size),
                         duration_s + DAY_S)
    tel = Telemetry(np.zeros(int(math.ceil(duration_s / load_bin_s)) + 2, np.int64), load_bin_s,
                    EventLog(traced_devices))
    return Run(pop, config, steering, executor or run_round_direct, devices_view(pop, plans), queue, tel, rng)


def _check_run(pop, config, steering, duration_s, seed, plans, executor, traced_devices, load_bin_s) -> None:
    validate.instance("pop", pop, Population, "a population.Population")
    validate.instance("config", config, RoundConfig, "a protocol.RoundConfig")
    validate.instance("steering", steering, SteeringConfig, "a protocol.SteeringConfig")
    validate.positive("duration_s", duration_s)
    validate.seed("seed", seed)
    if plans is not None:
        validate.instance("plans", plans, dict, "a dict of runtime version -> plans.FLPlan, or None")
        for version, plan in plans.items():
            validate.integer("plans key (a runtime version)", version, 0)
            validate.instance(f"plans[{version}]", plan, FLPlan, "a plans.FLPlan")
    if executor is not None:
        validate.callable_("executor", executor)
    validate.integer("traced_devices", traced_devices, 0)
    validate.positive("load_bin_s", load_bin_s)


def sim_init(steering: SteeringConfig, config: RoundConfig) -> SimState:
    """Round 0 opens at time 0 on model version 0, nothing buffered, steering at its initial state."""
    return SimState(0, 0.0, 0.0, 0.0, 0, RecycleBuffer.empty(), 0, steer_init(steering, config))


def advance(s: SimState, open_s: float, end_s: float, close_s: float) -> SimState:
    """The next round: its selection opens at `open_s`; this one ended at `end_s`, closed selection at `close_s`."""
    return s._replace(round=s.round + 1, open_s=open_s, prev_end_s=end_s, prev_close_s=close_s)


class Selection(NamedTuple):
    """When selection closed, the devices the Selectors hold then (arrival order), and how many were
    rejected at check-in for lack of a plan."""

    close_s: float
    ids: np.ndarray
    no_plan: int


class Report(NamedTuple):
    """The reporting half of a round: the executor's result, which uploads came late (bool per selected
    device), and the late updates of earlier rounds applied in this one."""

    result: RoundResult
    late: np.ndarray
    recycled: Recycled


class GapRejections(NamedTuple):
    """Without pipelining: devices that called in while the round reported and were rejected on the spot."""

    rejected: int
    no_plan: int


class RoundOutput(NamedTuple):
    """What a round adds to the result: its counters, and its per-round id lists (see `FLSimResult`)."""

    counters: RoundRecord
    aggregated: np.ndarray
    late: np.ndarray
    recycled_ids: np.ndarray
    recycled_round: np.ndarray
    recycled_weight: np.ndarray


def selection_step(run: Run, s: SimState) -> Selection:
    """Gather check-ins and close selection; check-ins after the close go back to the queue (they arrive
    during the next selection instead), the others are recorded."""
    cfg = run.config
    ids, t, no_plan = gather_checkins(run.queue, run.dev, max(s.open_s + cfg.selection_timeout_s, s.prev_end_s),
                                      run.steering, run.tel)
    close_s = selection_close_s(t, s.open_s, s.prev_end_s, cfg)
    later = t > close_s
    run.queue.schedule(ids[later], t[later])
    ids, t = ids[~later], t[~later]
    run.tel.checked_in(ids, t)
    return Selection(close_s, ids, no_plan)


def steer_step(run: Run, s: SimState, sel: Selection) -> tuple[SimState, str]:
    """Pace steering observes this selection (check-ins over its window, time since the last close) and
    picks the mode in force for the round's come-back delays."""
    steer = steer_observe(run.steering, run.config, s.steer, len(sel.ids) + sel.no_plan, sel.close_s - s.open_s,
                          sel.close_s - s.prev_close_s)
    return s._replace(steer=steer), steer_mode(run.steering, run.config, steer)


def abandon_step(run: Run, s: SimState, sel: Selection, mode: str) -> tuple[SimState, RoundOutput]:
    """Selection timed out with fewer than `min_selected` devices: all are rejected, nothing trains, the
    version stays, and the next selection opens at this close."""
    close_s, n = sel.close_s, len(sel.ids)
    run.queue.schedule(sel.ids, close_s + steer_delays(run.rng, run.steering, mode, s.steer, n, s.steer.round_s))
    run.tel.log.add(sel.ids, close_s, "x")
    record = RoundRecord(
        round=s.round, open_s=s.open_s, close_s=close_s, end_s=close_s, checkins=n + sel.no_plan,
        rejected_no_plan=sel.no_plan, steering=mode, version=s.version, selected=0, rejected=n, dropped=0, lost=0,
        accepted=0, late=0, recycled=0, committed=False, reason="selection timeout", bytes_down=0, bytes_up=0,
        selection_s=close_s - s.open_s, configuration_s=0.0, reporting_s=0.0, wasted_compute_s=0.0, messages=0,
        resume_s=close_s)
    return advance(s, close_s, close_s, close_s), RoundOutput(record, _NO_IDS, _NO_IDS, _NO_IDS, _NO_IDS, _NO_WEIGHTS)


def reservoir_step(run: Run, s: SimState, sel: Selection, mode: str) -> tuple[np.ndarray, int]:
    """Keep a reservoir of the held devices (`select`) and tell the rest when to come back.

    Returns (the selected ids, how many were rejected)."""
    keep = select(run.rng, len(sel.ids), run.config)
    rejected = sel.ids[~keep]
    delays = steer_delays(run.rng, run.steering, mode, s.steer, len(rejected), 0.8 * s.steer.round_s)
    run.queue.schedule(rejected, sel.close_s + delays)
    run.tel.log.add(rejected, sel.close_s, "x")
    return sel.ids[keep], len(rejected)


def report_step(run: Run, s: SimState, close_s: float, sess: Sessions) -> tuple[SimState, Report]:
    """Run reporting (`run.executor`), recycle late updates, log the sessions, and schedule each selected
    device's next check-in after its cool-down. The new state has the next version if the round committed."""
    cfg = run.config
    res = run.executor(s.round, s.open_s, close_s, sess, cfg)
    late = np.isfinite(sess.report_s) & ~res.accepted & ~res.lost
    taken, buffer = Recycled.none(), s.buffer
    if cfg.recycle_late and res.committed:
        taken, buffer = take_recyclable(buffer, res.end_s, s.version)
    if cfg.recycle_late:
        late_ids = sess.ids[late]
        buffer = buffer.add(late_ids, sess.report_s[late], s.version, run.pop.num_examples[late_ids], s.round)
    _log_sessions(run.tel.log, sess, close_s, res, late, cfg.recycle_late)
    finished = np.where(np.isfinite(sess.report_s), sess.report_s, np.minimum(sess.drop_s, res.end_s))
    run.queue.schedule(sess.ids, finished + run.steering.cooldown_s)
    new = s._replace(version=s.version + int(res.committed), buffer=buffer, recycled=s.recycled + len(taken.ids))
    return new, Report(res, late, taken)


def gap_step(run: Run, s: SimState, mode: str, resume_s: float) -> GapRejections:
    """Without pipelining, devices calling in before `resume_s` (while the round reports) are rejected on the
    spot; synchronised steering tells them to come back when the next selection opens."""
    rejected = no_plan = 0
    while True:
        ids, t, k, popped = arrivals(run.queue, run.dev, resume_s, run.steering, run.tel, record=True)
        if not popped:
            return GapRejections(rejected, no_plan)
        order = np.argsort(ids)
        ids, t = ids[order], t[order]
        run.queue.schedule(ids, t + steer_delays(run.rng, run.steering, mode, s.steer, len(ids), resume_s - t))
        run.tel.log.add(ids, t, "x")
        rejected, no_plan = rejected + len(ids), no_plan + k


def round_record(s: SimState, sel: Selection, mode: str, sess: Sessions, rep: Report, rejected: int,
                 gap: GapRejections, config: RoundConfig) -> RoundRecord:
    """The counters of a round that selected devices, built once from its steps' outputs (`s`: the state
    before reporting, so `version` is the model the round trained on)."""
    res, late = rep.result, rep.late
    configured = (~sess.dropped) | (sess.drop_s > sel.close_s + sess.download_s)
    n_acc, n_late = int(res.accepted.sum()), int(late.sum())
    return RoundRecord(
        round=s.round, open_s=s.open_s, close_s=sel.close_s, end_s=res.end_s,
        checkins=len(sel.ids) + sel.no_plan + gap.rejected + gap.no_plan, rejected_no_plan=sel.no_plan + gap.no_plan,
        steering=mode, version=s.version, selected=len(sess.ids), rejected=rejected + gap.rejected,
        dropped=int((sess.dropped & ~res.lost).sum()), lost=int(res.lost.sum()), accepted=n_acc, late=n_late,
        recycled=len(rep.recycled.ids), committed=res.committed, reason=res.reason,
        bytes_down=int(configured.sum()) * (config.plan_bytes + config.checkpoint_bytes),
        bytes_up=(n_acc + (n_late if config.recycle_late else 0)) * config.update_bytes,
        selection_s=sel.close_s - s.open_s, configuration_s=float(np.median(sess.download_s)),
        reporting_s=res.end_s - sel.close_s,
        wasted_compute_s=0.0 if config.recycle_late else float(sess.compute_s[late].sum()),
        messages=res.messages, resume_s=res.resume_s)


def round_step(run: Run, s: SimState) -> tuple[SimState, RoundOutput]:
    """One round: select, steer, then either abandon it (too few devices) or keep a reservoir, configure
    (`sample_sessions`), report, and (unpipelined) reject the devices calling in meanwhile."""
    cfg = run.config
    sel = selection_step(run, s)
    s, mode = steer_step(run, s, sel)
    if len(sel.ids) < cfg.min_selected:
        return abandon_step(run, s, sel, mode)
    chosen, rejected = reservoir_step(run, s, sel, mode)
    sess = sample_sessions(run.rng, run.pop, chosen, sel.close_s, cfg)
    after, rep = report_step(run, s, sel.close_s, sess)
    resume_s = rep.result.resume_s
    gap = GapRejections(0, 0) if cfg.pipelined else gap_step(run, s, mode, resume_s)
    out = RoundOutput(round_record(s, sel, mode, sess, rep, rejected, gap, cfg),
                      chosen[rep.result.accepted] if rep.result.committed else _NO_IDS, chosen[rep.late],
                      rep.recycled.ids, rep.recycled.round, rep.recycled.weight)
    return advance(after, sel.close_s if cfg.pipelined else resume_s, resume_s, sel.close_s), out


def sim_result(run: Run, s: SimState, outs: list[RoundOutput], duration_s: float) -> FLSimResult:
    """The typed, columnar result: counters as frozen columns, per-round id lists as `Ragged`."""
    ragged = {f: Ragged.from_parts([getattr(o, f) for o in outs], np.float64 if f == "recycled_weight" else np.int64)
              for f in RoundOutput._fields[1:]}
    return FLSimResult(RoundCounters.from_rows([o.counters for o in outs]),
                       run.tel.load[: int(math.ceil(duration_s / run.tel.load_bin_s))], run.tel.load_bin_s, duration_s,
                       run.tel.log, s.version, s.recycled, len(s.buffer.ids), **ragged)


def simulate(pop: Population, config: RoundConfig, steering: SteeringConfig, duration_s: float, seed: int, *,
             plans: dict[int, FLPlan] | None = None, executor=None, traced_devices: int = 1000,
             load_bin_s: float = 60.0) -> FLSimResult:
    """Run rounds back to back for `duration_s` simulated seconds over the whole population.

    Threads a `SimState` through `round_step` (select, steer, keep a reservoir, configure, report, recycle)
    once a round, collecting each round's `RoundOutput`. `executor(r, open_s, close_s, sessions, config)
    -> RoundResult` runs reporting (default: the protocol alone; `fl.actors.ActorSystem.run_round` adds
    actors and faults). Devices whose runtime has no plan in `plans` are rejected at check-in.
    Deterministic for a given `seed`.
    """
    run = start_run(pop, config, steering, duration_s, seed, plans, executor, traced_devices, load_bin_s)
    s, outs = sim_init(steering, config), []
    while s.open_s < duration_s:
        s, out = round_step(run, s)
        outs.append(out)
    return sim_result(run, s, outs, duration_s)


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
    alone, isolating what over-selection is for: covering drop-outs and stragglers in the window
    (no device's eligibility window closes on it here).
    """
    validate.instance("pop", pop, Population, "a population.Population")
    validate.instance("config", config, RoundConfig, "a protocol.RoundConfig")
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
