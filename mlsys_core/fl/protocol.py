"""The round protocol on a simulated clock: `simulate()` runs rounds back to back over a whole population.

A round (`rounds`): eligible devices check in; the Selectors keep a reservoir sample of `target` =
goal_count x over_selection of them and reject the rest, telling each when to come back (pace steering,
`steering`; in this model the rejected hear so when selection closes). Selection closes when the
reservoir is full (or at the selection timeout, if at least a minimum fraction of the goal arrived;
otherwise the round is abandoned). Selected devices download the plan and checkpoint, train, and upload.
Reporting ends when `goal_count` updates arrived or the reporting window closes; the round commits if at
least `min_reports` arrived in time. Uploads after that are late: rejected and counted, or, with
`recycle_late`, kept and applied once in a later committed round with weight 1/sqrt(1 + staleness). With
`pipelined`, selection for round n+1 runs while round n reports.

`simulate()` is a vectorised discrete-event model: a short driver that threads an explicit `SimState`
through one function per round (`round_step`), itself a few small steps (`selection_step`, `steer_step`,
`reservoir_step`, `report_step`, `gap_step`, or `abandon_step`). Inside a round every device is an entry
of a NumPy array (check-ins from the calendar queue of `checkin`, sessions, reports), never a Python
object. The result is typed and columnar (`FLSimResult`); `round_participants` gives each round's
aggregated device ids.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np

from mlsys_core import validate
from mlsys_core.fl.checkin import CheckinQueue, Telemetry, arrivals, devices_view, gather_checkins
from mlsys_core.fl.plans import FLPlan
from mlsys_core.fl.population import DAY_S, Population, next_eligible_s
from mlsys_core.fl.rounds import (
    NO_IDS,
    NO_WEIGHTS,
    RecycleBuffer,
    Recycled,
    RoundConfig,
    RoundResult,
    Sessions,
    run_round_direct,
    sample_sessions,
    select,
    selection_close_s,
    take_recyclable,
)
from mlsys_core.fl.steering import SteeringConfig, SteerState, steer_delays, steer_init, steer_mode, steer_observe
from mlsys_core.fl.telemetry import EventLog, RoundCounters, RoundRecord

# -- a run: its inputs and mutable streams, and the state one round hands the next ---------------------------


@dataclasses.dataclass(frozen=True)
class Run:
    """One `simulate` run's inputs and its mutable streams. The check-in queue (arrays over all N devices),
    the telemetry (load bins, event log) and the random generator are updated in place by the steps, by
    design: copying them each round would cost O(N) a round. All else a round changes is in `SimState`."""

    pop: Population  # the devices
    config: RoundConfig  # the rounds' parameters
    steering: SteeringConfig  # pace steering's parameters
    executor: Callable[..., RoundResult]  # runs reporting: `rounds.run_round_direct` or `ActorSystem.run_round`
    dev: np.ndarray  # `checkin.devices_view` of `pop`
    queue: CheckinQueue  # every device's next check-in
    tel: Telemetry  # load bins and event log
    rng: np.random.Generator  # the run's one generator


@dataclasses.dataclass(frozen=True)
class SimState:
    """What one round hands the next (a new value each step)."""

    round: int  # this round's index
    open_s: float  # when its selection opens
    prev_end_s: float  # when the previous round ended (its resume time: selection closes no earlier)
    prev_close_s: float  # when the previous round closed its selection
    version: int  # the model version (committed rounds so far)
    buffer: RecycleBuffer  # late updates waiting to be recycled
    recycled: int  # late updates applied so far
    steer: SteerState  # the pace-steering state


def start_run(pop: Population, config: RoundConfig, steering: SteeringConfig, duration_s: float, seed: int,
              plans: dict[int, FLPlan] | None = None, executor=None, traced_devices: int = 1000,
              load_bin_s: float = 60.0) -> Run:
    """A run's streams at time 0: every device's first check-in (its next eligible time plus a random
    delay), empty load bins and event log, and the generator seeded with `seed`.

    Args:
        pop: the device population.
        config: the rounds' parameters.
        steering: pace steering's parameters.
        duration_s: simulated time (s).
        seed: seeds the run's generator.
        plans: FL plans by runtime version (None: every device has one).
        executor: runs reporting (None: `rounds.run_round_direct`).
        traced_devices: devices 0 .. traced_devices - 1 have their events logged.
        load_bin_s: width of a server-load bin (s).
    """
    _check_run(pop, config, steering, duration_s, seed, plans, executor, traced_devices, load_bin_s)
    rng = np.random.default_rng(seed)
    queue = CheckinQueue(next_eligible_s(pop, 0.0) + rng.uniform(0.0, steering.initial_delay_s, pop.size),
                         duration_s + DAY_S)
    tel = Telemetry(np.zeros(int(math.ceil(duration_s / load_bin_s)) + 2, np.int64), load_bin_s,
                    EventLog(traced_devices))
    return Run(pop, config, steering, executor or run_round_direct, devices_view(pop, plans), queue, tel, rng)


def _check_run(pop, config, steering, duration_s, seed, plans, executor, traced_devices, load_bin_s) -> None:
    validate.instance("pop", pop, Population, "a population.Population")
    validate.instance("config", config, RoundConfig, "a rounds.RoundConfig")
    validate.instance("steering", steering, SteeringConfig, "a steering.SteeringConfig")
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
    """The next round's state.

    Args:
        s: this round's state.
        open_s: when the next selection opens (s).
        end_s: when this round ended (s).
        close_s: when this round's selection closed (s).
    """
    return dataclasses.replace(s, round=s.round + 1, open_s=open_s, prev_end_s=end_s, prev_close_s=close_s)


# -- what the steps hand each other --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Selection:
    """How a round's selection ended."""

    close_s: float  # when selection closed
    ids: np.ndarray  # the devices the Selectors hold then, in arrival order
    no_plan: int  # devices rejected at check-in for lack of a plan


@dataclasses.dataclass(frozen=True)
class Report:
    """The reporting half of a round."""

    result: RoundResult  # the executor's result
    late: np.ndarray  # bool per selected device: its upload came after reporting closed
    recycled: Recycled  # the late updates of earlier rounds applied in this one


@dataclasses.dataclass(frozen=True)
class GapRejections:
    """Without pipelining: devices that called in while the round reported, rejected on the spot."""

    rejected: int  # eligible devices with a plan
    no_plan: int  # devices without a plan for their runtime


@dataclasses.dataclass(frozen=True)
class RoundOutput:
    """What a round adds to the result: its counters, and its per-round id lists (see `FLSimResult`)."""

    counters: RoundRecord  # the round's counters
    aggregated: np.ndarray  # devices whose on-time update is in the aggregate (empty unless committed)
    late: np.ndarray  # devices whose upload came after reporting closed
    recycled_ids: np.ndarray  # late updates of earlier rounds applied in this one
    recycled_round: np.ndarray  # the round each of those was trained in
    recycled_weight: np.ndarray  # and its weight (examples x 1/sqrt(1 + staleness))


# -- the steps of a round --------------------------------------------------------------------------------------

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
    return dataclasses.replace(s, steer=steer), steer_mode(run.steering, run.config, steer)


def abandon_step(run: Run, s: SimState, sel: Selection, mode: str) -> tuple[SimState, RoundOutput]:
    """Selection timed out with fewer than `min_selected` devices: all are rejected, nothing trains, the
    version stays, and the next selection opens at this close.

    Args:
        run: the run's inputs and streams.
        s: the state after steering.
        sel: the selection that timed out.
        mode: the steering mode in force.
    """
    close_s, n = sel.close_s, len(sel.ids)
    run.queue.schedule(sel.ids, close_s + steer_delays(run.rng, run.steering, mode, s.steer, n, s.steer.round_s))
    run.tel.log.add(sel.ids, close_s, "x")
    record = RoundRecord(
        round=s.round, open_s=s.open_s, close_s=close_s, end_s=close_s, checkins=n + sel.no_plan,
        rejected_no_plan=sel.no_plan, steering=mode, version=s.version, selected=0, rejected=n, dropped=0, lost=0,
        accepted=0, late=0, recycled=0, committed=False, reason="selection timeout", bytes_down=0, bytes_up=0,
        selection_s=close_s - s.open_s, configuration_s=0.0, reporting_s=0.0, wasted_compute_s=0.0, messages=0,
        resume_s=close_s)
    return advance(s, close_s, close_s, close_s), RoundOutput(record, NO_IDS, NO_IDS, NO_IDS, NO_IDS, NO_WEIGHTS)


def reservoir_step(run: Run, s: SimState, sel: Selection, mode: str) -> tuple[np.ndarray, int]:
    """Keep a reservoir of the held devices (`rounds.select`) and tell the rest when to come back.

    Args:
        run: the run's inputs and streams.
        s: the state after steering.
        sel: the selection.
        mode: the steering mode in force.

    Returns:
        (the selected ids, how many were rejected).
    """
    keep = select(run.rng, len(sel.ids), run.config)
    rejected = sel.ids[~keep]
    delays = steer_delays(run.rng, run.steering, mode, s.steer, len(rejected), 0.8 * s.steer.round_s)
    run.queue.schedule(rejected, sel.close_s + delays)
    run.tel.log.add(rejected, sel.close_s, "x")
    return sel.ids[keep], len(rejected)


def report_step(run: Run, s: SimState, close_s: float, sess: Sessions) -> tuple[SimState, Report]:
    """Run reporting (`run.executor`), recycle late updates, log the sessions, and schedule each selected
    device's next check-in after its cool-down. The new state has the next version if the round committed.

    Args:
        run: the run's inputs and streams.
        s: the state after steering.
        close_s: when selection closed (s).
        sess: the selected devices' sessions.
    """
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
    new = dataclasses.replace(s, version=s.version + int(res.committed), buffer=buffer,
                              recycled=s.recycled + len(taken.ids))
    return new, Report(res, late, taken)


def gap_step(run: Run, s: SimState, mode: str, resume_s: float) -> GapRejections:
    """Without pipelining, devices calling in before `resume_s` (while the round reports) are rejected on the
    spot; synchronised steering tells them to come back when the next selection opens.

    Args:
        run: the run's inputs and streams.
        s: the state after steering.
        mode: the steering mode in force.
        resume_s: when the next selection may close (s).
    """
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
    """The counters of a round that selected devices, built once from its steps' outputs.

    Args:
        s: the state before reporting (so `version` is the model the round trained on).
        sel: the selection.
        mode: the steering mode in force.
        sess: the selected devices' sessions.
        rep: the reporting half.
        rejected: devices the reservoir rejected.
        gap: devices rejected while the round reported (unpipelined).
        config: sizes (bytes) and whether late updates are recycled.
    """
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
    (`rounds.sample_sessions`), report, and (unpipelined) reject the devices calling in meanwhile."""
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
                      chosen[rep.result.accepted] if rep.result.committed else NO_IDS, chosen[rep.late],
                      rep.recycled.ids, rep.recycled.round, rep.recycled.weight)
    return advance(after, sel.close_s if cfg.pipelined else resume_s, resume_s, sel.close_s), out


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


# -- the result ------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Ragged:
    """One list of values per round, stored flat (CSR): round r's are `values[offsets[r]:offsets[r + 1]]`."""

    values: np.ndarray  # every round's values, concatenated (read-only)
    offsets: np.ndarray  # (rounds + 1,), int64 (read-only)

    def of(self, r: int) -> np.ndarray:
        """Round `r`'s values."""
        return self.values[self.offsets[r]:self.offsets[r + 1]]

    @staticmethod
    def from_parts(parts: list, dtype) -> Ragged:
        """One list per round (`parts[r]`), as `dtype`."""
        values = np.concatenate([np.asarray(p, dtype) for p in parts]) if parts else np.zeros(0, dtype)
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts], dtype=np.int64)]).astype(np.int64)
        values.flags.writeable = offsets.flags.writeable = False
        return Ragged(values, offsets)


@dataclasses.dataclass(frozen=True)
class FLSimResult:
    """Everything one `simulate` run produced (typed, columnar, built once at the end). Per round r, as
    `Ragged` lists: `aggregated.of(r)`, `late.of(r)`, and with `recycle_late` the recycled updates."""

    counters: RoundCounters  # per-round counters (`telemetry.RoundCounters`, frozen columns)
    checkins_per_bin: np.ndarray  # check-ins per load bin over the run
    load_bin_s: float  # width of a load bin (s)
    duration_s: float  # simulated time (s)
    log: EventLog  # the traced devices' events
    version: int  # committed rounds (model versions)
    recycled: int  # late updates applied in a later committed round
    pending_recycle: int  # late updates still waiting for a commit when the simulation ended
    aggregated: Ragged  # devices whose on-time update is in round r's aggregate (empty unless r committed)
    late: Ragged  # devices whose upload of round r came after reporting closed
    recycled_ids: Ragged  # late updates applied in round r
    recycled_round: Ragged  # the round each of those was trained in
    recycled_weight: Ragged  # and its weight (examples x 1/sqrt(1 + staleness))


@dataclasses.dataclass(frozen=True)
class Participants:
    """Who took part in each round of a `simulate` run (arrays over rounds); `ids_of(r)` is round r's
    aggregated device ids (flat: `ids[offsets[r]:offsets[r + 1]]`)."""

    round: np.ndarray  # round index
    close_s: np.ndarray  # when its selection closed
    end_s: np.ndarray  # when its reporting closed
    committed: np.ndarray  # whether it committed
    ids: np.ndarray  # aggregated device ids of every round, concatenated
    offsets: np.ndarray  # (rounds + 1,) where each round's ids start

    def ids_of(self, r: int) -> np.ndarray:
        """Round `r`'s aggregated device ids (empty unless it committed)."""
        return self.ids[self.offsets[r]:self.offsets[r + 1]]

    def __len__(self) -> int:
        return len(self.round)


def round_participants(res: FLSimResult) -> Participants:
    """Per round of `res`: close times, commit flag and the aggregated device ids (partial participation)."""
    c = res.counters
    return Participants(c.round, c.close_s, c.end_s, c.committed, res.aggregated.values, res.aggregated.offsets)


def sim_result(run: Run, s: SimState, outs: list[RoundOutput], duration_s: float) -> FLSimResult:
    """The typed, columnar result: counters as frozen columns, per-round id lists as `Ragged`.

    Args:
        run: the run's inputs and streams.
        s: the state after the last round.
        outs: every round's output, in order.
        duration_s: simulated time (s).
    """
    lists = [f.name for f in dataclasses.fields(RoundOutput)][1:]
    ragged = {f: Ragged.from_parts([getattr(o, f) for o in outs], np.float64 if f == "recycled_weight" else np.int64)
              for f in lists}
    return FLSimResult(RoundCounters.from_rows([o.counters for o in outs]),
                       run.tel.load[: int(math.ceil(duration_s / run.tel.load_bin_s))], run.tel.load_bin_s, duration_s,
                       run.tel.log, s.version, s.recycled, len(s.buffer.ids), **ragged)


def simulate(pop: Population, config: RoundConfig, steering: SteeringConfig, duration_s: float, seed: int, *,
             plans: dict[int, FLPlan] | None = None, executor=None, traced_devices: int = 1000,
             load_bin_s: float = 60.0) -> FLSimResult:
    """Run rounds back to back for `duration_s` simulated seconds over the whole population.

    Threads a `SimState` through `round_step` (select, steer, keep a reservoir, configure, report, recycle)
    once a round, collecting each round's `RoundOutput`. Deterministic for a given `seed`.

    Args:
        pop: the device population.
        config: the rounds' parameters (`rounds.RoundConfig`).
        steering: pace steering's parameters (`steering.SteeringConfig`).
        duration_s: simulated time (s); the last round opens before it.
        seed: seeds the first check-ins, selections, sessions and steering delays.
        plans: FL plans by runtime version; devices whose runtime has none are rejected at check-in
            (None: every device has a plan).
        executor: `executor(r, open_s, close_s, sessions, config) -> rounds.RoundResult` runs reporting
            (default: the protocol alone, `rounds.run_round_direct`; `actors.ActorSystem.run_round` adds
            actors and faults).
        traced_devices: devices 0 .. traced_devices - 1 have their events logged.
        load_bin_s: width of a server-load bin (s).
    """
    run = start_run(pop, config, steering, duration_s, seed, plans, executor, traced_devices, load_bin_s)
    s, outs = sim_init(steering, config), []
    while s.open_s < duration_s:
        s, out = round_step(run, s)
        outs.append(out)
    return sim_result(run, s, outs, duration_s)
