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

import numba
import numpy as np

from mlsys_core import validate
from mlsys_core.fl.plans import FLPlan, supported_devices
from mlsys_core.fl.population import DAY_S, Population, next_eligible_s, window_close_s
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


def take_recyclable(buffer: RecycleBuffer, end_s: float, version: int):
    """At a commit closing at `end_s` on model `version`: the late updates that arrived by then.

    Returns `(taken, rest)`: `taken` is a dict of ids, staleness, weight (examples x 1/sqrt(1+s)),
    the round each was trained in, and its index in the buffer; `rest` stays buffered. Each update is
    taken exactly once.
    """
    due = buffer.arrival_s <= end_s
    s = version - buffer.version[due]
    taken = {"ids": buffer.ids[due], "staleness": s, "weight": buffer.examples[due] * staleness_weight(s),
             "round": buffer.round[due], "index": np.flatnonzero(due)}
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


def session_counters(sess: Sessions, res: RoundResult, late: np.ndarray, close_s: float, taken_n: int,
                     config: RoundConfig) -> dict:
    """The reporting half of a round's counters (selected devices, bytes, times)."""
    configured = (~sess.dropped) | (sess.drop_s > close_s + sess.download_s)
    n_acc, n_late = int(res.accepted.sum()), int(late.sum())
    return dict(
        end_s=res.end_s, selected=len(sess.ids), dropped=int((sess.dropped & ~res.lost).sum()),
        lost=int(res.lost.sum()), accepted=n_acc, late=n_late, recycled=taken_n, committed=res.committed,
        reason=res.reason, bytes_down=int(configured.sum()) * (config.plan_bytes + config.checkpoint_bytes),
        bytes_up=(n_acc + (n_late if config.recycle_late else 0)) * config.update_bytes,
        configuration_s=float(np.median(sess.download_s)), reporting_s=res.end_s - close_s,
        wasted_compute_s=0.0 if config.recycle_late else float(sess.compute_s[late].sum()),
        messages=res.messages, resume_s=res.resume_s)


def simulate(pop: Population, config: RoundConfig, steering: SteeringConfig, duration_s: float, seed: int, *,
             plans: dict[int, FLPlan] | None = None, executor=None, traced_devices: int = 1000,
             load_bin_s: float = 60.0) -> FLSimResult:
    """Run rounds back to back for `duration_s` simulated seconds over the whole population.

    Each round: gather check-ins (`gather_checkins`), close selection (`selection_close_s`), keep a
    reservoir (`select`), configure (`sample_sessions`), report (`executor`), recycle late updates
    (`take_recyclable`), steer (`steer_observe`, `steer_delays`). `executor(r, open_s, close_s,
    sessions, config) -> RoundResult` runs reporting (default: the protocol alone;
    `fl.actors.ActorSystem.run_round` adds actors and faults). Devices whose runtime has no plan in
    `plans` are rejected at check-in. Deterministic for a given `seed`.
    """
    validate.number("duration_s", duration_s, 0.0, low_open=True)
    rng = np.random.default_rng(seed)
    executor = executor or run_round_direct
    dev = devices_view(pop, plans)
    queue = CheckinQueue(next_eligible_s(pop, 0.0) + rng.uniform(0.0, steering.initial_delay_s, pop.size),
                         duration_s + DAY_S)
    tel = Telemetry(np.zeros(int(math.ceil(duration_s / load_bin_s)) + 2, np.int64), load_bin_s,
                    EventLog(traced_devices))
    st = steer_init(steering, config)
    buffer, version, recycled = RecycleBuffer.empty(), 0, 0
    rows, aggregated, late_ids, rec_ids, rec_round, rec_weight = [], [], [], [], [], []
    open_s = prev_end = prev_close = 0.0
    r = 0
    while open_s < duration_s:
        ids, t, no_plan = gather_checkins(queue, dev, max(open_s + config.selection_timeout_s, prev_end), steering,
                                          tel)
        close_s = selection_close_s(t, open_s, prev_end, config)
        later = t > close_s
        queue.schedule(ids[later], t[later])  # they arrive during the next selection instead
        ids, t = ids[~later], t[~later]
        tel.checked_in(ids, t)
        st = steer_observe(steering, config, st, len(ids) + no_plan, close_s - open_s, close_s - prev_close)
        mode = steer_mode(steering, config, st)
        row = dict(round=r, open_s=open_s, close_s=close_s, checkins=len(ids) + no_plan, rejected_no_plan=no_plan,
                   steering=mode, version=version, selection_s=close_s - open_s)
        if len(ids) < config.min_selected:  # selection timed out without enough devices
            queue.schedule(ids, close_s + steer_delays(rng, steering, mode, st, len(ids), st.round_s))
            tel.log.add(ids, close_s, "x")
            rows.append(row | dict(end_s=close_s, selected=0, rejected=len(ids), dropped=0, lost=0, accepted=0,
                                   late=0, recycled=0, committed=False, reason="selection timeout", bytes_down=0,
                                   bytes_up=0, configuration_s=0.0, reporting_s=0.0, wasted_compute_s=0.0,
                                   messages=0, resume_s=close_s))
            for parts in (aggregated, late_ids, rec_ids, rec_round, rec_weight):
                parts.append(())
            open_s = prev_end = prev_close = close_s
            r += 1
            continue
        keep = select(rng, len(ids), config)
        rejected, sel = ids[~keep], ids[keep]
        queue.schedule(rejected, close_s + steer_delays(rng, steering, mode, st, len(rejected), 0.8 * st.round_s))
        tel.log.add(rejected, close_s, "x")

        # Configuration and reporting.
        sess = sample_sessions(rng, pop, sel, close_s, config)
        res = executor(r, open_s, close_s, sess, config)
        late = np.isfinite(sess.report_s) & ~res.accepted & ~res.lost
        taken = {"ids": (), "round": (), "weight": ()}
        if config.recycle_late and res.committed:
            taken, buffer = take_recyclable(buffer, res.end_s, version)
        if config.recycle_late:
            buffer = buffer.add(sel[late], sess.report_s[late], version, pop.num_examples[sel[late]], r)
        recycled += len(taken["ids"])
        version += int(res.committed)
        _log_sessions(tel.log, sess, close_s, res, late, config.recycle_late)
        finished = np.where(np.isfinite(sess.report_s), sess.report_s, np.minimum(sess.drop_s, res.end_s))
        queue.schedule(sel, finished + steering.cooldown_s)
        row |= session_counters(sess, res, late, close_s, len(taken["ids"]), config)
        row["rejected"] = len(rejected)
        aggregated.append(sel[res.accepted] if res.committed else ())
        late_ids.append(sel[late])
        rec_ids.append(taken["ids"]), rec_round.append(taken["round"]), rec_weight.append(taken["weight"])
        # Without pipelining, devices calling in while the round reports are rejected on the spot.
        if not config.pipelined:
            gap_rejected = gap_no_plan = 0
            while True:
                ids, t, k, popped = arrivals(queue, dev, res.resume_s, steering, tel, record=True)
                if not popped:
                    break
                order = np.argsort(ids)
                ids, t = ids[order], t[order]
                gap_no_plan += k
                # synchronised: back at the next open
                queue.schedule(ids, t + steer_delays(rng, steering, mode, st, len(ids), res.resume_s - t))
                tel.log.add(ids, t, "x")
                gap_rejected += len(ids)
            row["rejected"] += gap_rejected
            row["checkins"] += gap_rejected + gap_no_plan
            row["rejected_no_plan"] += gap_no_plan
            open_s = res.resume_s
        else:
            open_s = close_s
        rows.append(row)
        prev_end, prev_close = res.resume_s, close_s
        r += 1
    return FLSimResult(RoundCounters.from_rows(rows), tel.load[: int(math.ceil(duration_s / load_bin_s))],
                       load_bin_s, duration_s, tel.log, version, recycled, len(buffer.ids),
                       Ragged.from_parts(aggregated, np.int64), Ragged.from_parts(late_ids, np.int64),
                       Ragged.from_parts(rec_ids, np.int64), Ragged.from_parts(rec_round, np.int64),
                       Ragged.from_parts(rec_weight, np.float64))


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
    validate.integer("rounds", rounds, 1)
    pop = dataclasses.replace(pop, drops_at_close=np.zeros(pop.size, bool))
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
