"""The notebook's experiments as pure functions (seeded; results are arrays and NamedTuples, maps by name).

The functions named `..._over_seeds` / `..._sweep` give the numbers the claims registry judges: one
value per seed (a seed draws the population and drives the simulation), so a verdict rests on an
interval, not on one lucky draw.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from mlsys_core import validate
from mlsys_core.fl.actors import (
    ActorSystem,
    Fault,
    Message,
    Topology,
    actor_counts,
    actor_name,
    count,
    hops_per_report,
)
from mlsys_core.fl.fedavg import dirichlet_split
from mlsys_core.fl.population import DAY_S, HOUR_S, Population, PopulationConfig, eligible_by_hour, make_population
from mlsys_core.fl.protocol import FLSimResult, RoundConfig, SteeringConfig, commit_share, simulate
from mlsys_core.fl.telemetry import RoundCounters

PAPER_SESSION_OUTCOMES = {"accepted": 0.75, "late": 0.22, "interrupted": 0.02}  # unconfirmed secondary source



class DiurnalSwing(NamedTuple):
    """Eligible devices over one UTC day."""

    hours: np.ndarray
    eligible: np.ndarray
    ratio: float  # peak / trough


def diurnal_swing(pop: Population, step_h: float = 0.25) -> DiurnalSwing:
    """Eligible devices over one UTC day, every `step_h` hours (in (0, 24]), and the peak / trough ratio."""
    hours = np.arange(0.0, 24.0, validate.number("step_h", step_h, 0.0, 24.0, low_open=True))
    counts = eligible_by_hour(pop, hours)
    return DiurnalSwing(hours, counts, float(counts.max() / max(counts.min(), 1)))


def hourly(res: FLSimResult, column: str) -> np.ndarray:
    """Sum of a per-round counter by the hour the round closed (length: hours simulated)."""
    c = res.counters
    hours = int(np.ceil(res.duration_s / HOUR_S))
    h = np.minimum((c.column("close_s") // HOUR_S).astype(int), hours - 1)
    return np.bincount(h, weights=c.column(column).astype(float), minlength=hours)


class Dashboard(NamedTuple):
    """Per-hour dashboard columns (one value per simulated hour)."""

    committed: np.ndarray  # rounds
    abandoned: np.ndarray  # rounds
    accepted: np.ndarray  # devices
    late: np.ndarray  # devices
    dropped: np.ndarray  # devices


def dashboard_series(res: FLSimResult) -> Dashboard:
    """Per-hour dashboard columns: committed and abandoned rounds, accepted / late / dropped devices."""
    committed = hourly(res, "committed")
    c = res.counters
    h = np.minimum((c.column("close_s") // HOUR_S).astype(int), len(committed) - 1)
    abandoned = np.bincount(h, weights=~c.column("committed").astype(bool), minlength=len(committed)).astype(float)
    return Dashboard(committed, abandoned, *(hourly(res, k) for k in ("accepted", "late", "dropped")))


class SessionOutcomes(NamedTuple):
    """Shares of selected devices by what became of their session."""

    accepted: float  # upload accepted
    late: float  # upload came after the round closed
    dropped: float  # dropped out
    lost: float  # lost to an actor crash


def session_outcomes(res: FLSimResult) -> SessionOutcomes:
    """Shares of selected devices whose upload was accepted, was late, dropped out, or was lost to a crash."""
    c = res.counters
    selected = max(int(c.column("selected").sum()), 1)
    return SessionOutcomes(*(float(c.column(k).sum() / selected) for k in SessionOutcomes._fields))


def over_selection_over_seeds(pop_config: PopulationConfig, config: RoundConfig, factor: float, drop_out: float,
                              rounds: int, seeds: Sequence[int]) -> np.ndarray:
    """Share of `rounds` independent rounds that commit at over-selection `factor` when every device
    drops out with probability `drop_out`, one value per seed (seed: population and sessions)."""
    validate.probability("drop_out", drop_out, open_high=True)
    pop_config = dataclasses.replace(pop_config, drop_out_range=(drop_out, drop_out))
    return np.array([commit_share(make_population(pop_config, s), config, np.array([factor]), rounds, s)[0]
                     for s in validate.seeds("seeds", seeds)])


def commit_share_curves(pop: Population, config: RoundConfig, factors: np.ndarray, drop_outs: tuple[float, ...],
                        rounds: int, seed: int) -> dict:
    """Commit share vs over-selection, one curve per fixed drop-out probability."""
    validate.seed("seed", seed)
    validate.reals("drop_outs", drop_outs, 0.0, 1.0, ndim=1)
    curves = {}
    for p in drop_outs:
        pop_p = dataclasses.replace(pop, drop_out_p=np.full(pop.size, p, np.float32))
        curves[p] = commit_share(pop_p, config, factors, rounds, seed)
    return curves


class DayMetrics(NamedTuple):
    """Per-seed measurements of one simulated day each (arrays of length len(seeds))."""

    accepted: np.ndarray  # share of selected devices whose update was accepted
    late: np.ndarray  # ... whose upload came after the round closed
    interrupted: np.ndarray  # ... that dropped out or were lost to a crash
    outcome_gap: np.ndarray  # largest |ours - paper| over the three shares above
    participation_swing: np.ndarray  # accepted updates per hour, peak / trough
    eligible_swing: np.ndarray  # eligible devices over the day, peak / trough


def day_over_seeds(pop_config: PopulationConfig, config: RoundConfig, seeds: Sequence[int], plans=None,
                   steering: SteeringConfig = SteeringConfig()) -> DayMetrics:
    """One simulated day per seed (population drawn with that seed): session outcomes and diurnal swing."""
    cols: dict[str, list[float]] = {k: [] for k in DayMetrics._fields}
    for s in validate.seeds("seeds", seeds):
        pop = make_population(pop_config, s)
        res = simulate(pop, config, steering, DAY_S, s, plans=plans, traced_devices=0)
        out = session_outcomes(res)
        shares = {"accepted": out.accepted, "late": out.late, "interrupted": out.dropped + out.lost}
        for k, v in shares.items():
            cols[k].append(v)
        cols["outcome_gap"].append(max(abs(shares[k] - PAPER_SESSION_OUTCOMES[k]) for k in shares))
        per_hour = hourly(res, "accepted")
        cols["participation_swing"].append(float(per_hour.max() / max(per_hour.min(), 1.0)))
        cols["eligible_swing"].append(diurnal_swing(pop, step_h=0.5).ratio)
    return DayMetrics(**{k: np.array(v) for k, v in cols.items()})


class ServerLoad(NamedTuple):
    """One steering mode's simulated run: the server's load and the rounds it committed."""

    checkins_per_s: np.ndarray  # per load bin
    mean_per_s: float
    peak_per_s: float
    committed: int


def steering_comparison(pop: Population, config: RoundConfig, hours: float, seed: int,
                        modes: tuple[str, ...] = ("none", "spread", "auto")) -> dict[str, ServerLoad]:
    """Server load (check-ins per second, per load bin) and committed rounds under each steering mode."""
    validate.positive("hours", hours)
    validate.seed("seed", seed)
    out = {}
    for mode in modes:
        res = simulate(pop, config, SteeringConfig(mode=mode), hours * HOUR_S, seed)
        per_s = res.checkins_per_bin / res.load_bin_s
        out[mode] = ServerLoad(per_s, float(per_s.mean()), float(per_s.max()),
                               int(res.counters.column("committed").sum()))
    return out


class SteeringGain(NamedTuple):
    """What "auto" pace steering buys over none, one value per seed."""

    load_per_round_cut: np.ndarray  # check-ins per committed round, none / auto
    committed_ratio: np.ndarray  # committed rounds, auto / none


def steering_over_seeds(pop_config: PopulationConfig, config: RoundConfig, hours: float,
                        seeds: Sequence[int]) -> SteeringGain:
    """Check-ins the server handles per committed round, without steering ("none": retry in about a
    minute) over with "auto" steering, and the committed-round ratio auto / none; one value per seed."""
    cut, rounds = [], []
    for s in validate.seeds("seeds", seeds):
        pop = make_population(pop_config, s)
        per = {}
        for mode in ("none", "auto"):
            res = simulate(pop, config, SteeringConfig(mode=mode), hours * HOUR_S, s, traced_devices=0)
            per[mode] = (float(res.checkins_per_bin.sum()), max(int(res.counters.column("committed").sum()), 1))
        cut.append((per["none"][0] / per["none"][1]) / (per["auto"][0] / per["auto"][1]))
        rounds.append(per["auto"][1] / per["none"][1])
    return SteeringGain(np.array(cut), np.array(rounds))


FAULT_KINDS = ("aggregator", "selector", "master_aggregator", "coordinator")


class FaultRun(NamedTuple):
    """One simulation with (at most) one injected crash: its per-round counters and its actor log."""

    crash: str  # "none" or the actor kind crashed
    victim: str  # the crashed actor's name, e.g. "aggregator[1]" ("-" for none)
    counters: RoundCounters
    trace: list[Message]


def _second_actor(kind: str, at_s: float, topology: Topology) -> Fault:
    """A crash of actor number 1 of `kind`'s role in `topology` (number 0 where the role has one actor)."""
    return Fault(kind, at_s, 1 % actor_counts(topology)[topology.role(kind)])


def fault_runs(pop: Population, config: RoundConfig, topology: Topology, at_s: float, hours: float, seed: int,
               kinds: tuple[str, ...] = FAULT_KINDS) -> dict[str, FaultRun]:
    """A run without faults, then one run per kind in `kinds` crashing actor number 1 of it at `at_s`."""
    validate.positive("hours", hours)
    validate.seed("seed", seed)
    validate.instance("topology", topology, Topology, "an actors.Topology")
    runs = {}
    for kind in (None, *kinds):
        fault = () if kind is None else (_second_actor(kind, at_s, topology),)
        system = ActorSystem(topology, fault)
        res = simulate(pop, config, SteeringConfig(), hours * HOUR_S, seed, executor=system.run_round, traced_devices=0)
        victim = actor_name(topology.role(kind), fault[0].index) if kind else "-"
        runs[kind or "none"] = FaultRun(kind or "none", victim, res.counters, system.trace)
    return runs


def _failed(c: RoundCounters) -> int:
    return int((~c.column("committed").astype(bool)).sum())


def _respawners(trace: list[Message]) -> list[str]:
    return [m.sender for m in trace if m.kind == "respawn"]


class FaultCost(NamedTuple):
    """What one run's crash cost, and who respawned what (read from the actor log)."""

    crash: str  # "none" or the actor kind crashed
    actor: str  # the crashed actor's name
    failed_rounds: int
    devices_lost: int
    committed_rounds: int
    vs_no_crash: int  # committed rounds minus those of the run without a crash
    respawns: int
    respawned_by: str  # the kinds of actor that respawned others, comma-separated ("-": none)
    lock_attempts: int


def fault_table(runs: dict[str, FaultRun]) -> list[FaultCost]:
    """What each crash cost, and who respawned what (read from the actor log), one row per run."""
    base = int(runs["none"].counters.column("committed").sum())
    rows = []
    for name, run in runs.items():
        c = run.counters
        committed = int(c.column("committed").sum())
        rows.append(FaultCost(
            crash=name, actor=run.victim, failed_rounds=_failed(c), devices_lost=int(c.column("lost").sum()),
            committed_rounds=committed, vs_no_crash=committed - base, respawns=count(run.trace, "respawn"),
            respawned_by=", ".join(sorted({w.split("[")[0] for w in _respawners(run.trace)})) or "-",
            lock_attempts=count(run.trace, "lock_request")))
    return rows


def _held_by(trace: list[Message], actor: str, round_: int) -> np.ndarray:
    """Devices actor `actor` held in round `round_`: those in forward messages it sent or received."""
    held = [m.devices for m in trace if m.round == round_ and m.kind == "forward" and actor in (m.sender, m.receiver)]
    return np.concatenate(held) if held else np.zeros(0, np.int64)


def _loses_only_its_devices(run: FaultRun) -> bool:
    """Every device the log records as lost belonged to the crashed actor (held by it that round)."""
    lost = [m for m in run.trace if m.kind == "lost"]
    return all(m.sender == run.victim and np.isin(m.devices, _held_by(run.trace, run.victim, m.round)).all()
               for m in lost)


def _aborted(c: RoundCounters) -> int:
    """Rounds a crash aborted outright (reason "<actor> crashed"), as opposed to rounds that ran short."""
    return int(sum(str(r).endswith("crashed") for r in c.column("reason")))


def fault_behaviours(runs: dict[str, FaultRun], topology: Topology = Topology()) -> dict[str, bool]:
    """The paper's failure semantics, each checked on the runs of `fault_runs` (four-actor topology):

    an Aggregator or Selector crash aborts no round — the round it hit still aggregates the other
    actors' updates — and loses only devices that actor held; a Master Aggregator crash fails the round
    and the Coordinator restarts it, after which rounds commit again; a dead Coordinator is respawned
    exactly once, by a Selector, after every live Selector asked the lock service and exactly one got
    the lock, and it aborts no round. (A round an Aggregator crash leaves short of `min_reports` is
    abandoned for too few reports, like any short round: that is the devices lost, not the round.)
    """
    out = {}
    for kind in ("aggregator", "selector"):
        run = runs[kind]
        accepted = dict(zip(run.counters.column("round").tolist(), run.counters.column("accepted").tolist()))
        hit = {m.round for m in run.trace if m.kind == "lost"}
        out[f"{kind} crash aborts no round, its round keeps the others' updates"] = (
            _aborted(run.counters) == 0 and all(accepted.get(r, 0) > 0 for r in hit))
        out[f"{kind} crash loses only its own devices"] = _loses_only_its_devices(run)
    m = runs["master_aggregator"]
    failed = np.flatnonzero(m.counters.column("reason") == "master_aggregator crashed")
    out["master crash fails the round"] = len(failed) >= 1
    out["master restarted by the coordinator, rounds commit again"] = (
        _respawners(m.trace) == ["coordinator[0]"] and len(failed) >= 1
        and bool(m.counters.column("committed")[failed.max() + 1:].any()))
    c = runs["coordinator"]
    requests = count(c.trace, "lock_request")
    out["coordinator respawned exactly once, by a selector"] = (
        count(c.trace, "respawn", receiver="coordinator[0]") == 1
        and all(w.startswith("selector[") for w in _respawners(c.trace)))
    out["every live selector asked the lock, one got it"] = (
        1 <= requests <= topology.num_selectors and count(c.trace, "lock_granted") == 1
        and count(c.trace, "lock_refused") == requests - 1)
    out["coordinator crash aborts no round"] = _aborted(c.counters) == 0
    return out


def fault_semantics_over_seeds(pop_config: PopulationConfig, config: RoundConfig, topology: Topology, at_s: float,
                               hours: float, seeds: Sequence[int]) -> np.ndarray:
    """Share of the behaviours in `fault_behaviours` that hold, one value per seed (population and run)."""
    shares = []
    for s in validate.seeds("seeds", seeds):
        held = fault_behaviours(fault_runs(make_population(pop_config, s), config, topology, at_s, hours, s), topology)
        shares.append(float(np.mean(list(held.values()))))
    return np.array(shares)


class TopologyCost(NamedTuple):
    """One actor topology: its messages and hops (from the actor log), commit latency and crash radius."""

    messages_per_round: float
    hops_per_report: float
    commit_after_goal_s: float  # from the goal-th report to the Coordinator holding the result
    selector_crash_devices_lost: int
    selector_crash_failed_rounds: int
    master_aggregator_crash_devices_lost: int
    master_aggregator_crash_failed_rounds: int


def topology_comparison(pop: Population, config: RoundConfig, at_s: float, hours: float, seed: int,
                        hop_latency_s: float = 0.05) -> dict[str, TopologyCost]:
    """Four actors vs the survey's two: messages per round and hops per report (both read from the actor
    log), the time from the goal-th report to the Coordinator holding the result, and one crash's blast
    radius (devices lost, rounds failed)."""
    validate.positive("hours", hours)
    validate.seed("seed", seed)
    out = {}
    for name, merged in (("four actors", False), ("two actors", True)):
        topo = Topology(merged=merged, hop_latency_s=hop_latency_s)
        system = ActorSystem(topo)
        c = simulate(pop, config, SteeringConfig(), hours * HOUR_S, seed, executor=system.run_round,
                     traced_devices=0).counters
        ok = c.column("committed").astype(bool)
        rounds = max(len({m.round for m in system.trace}), 1)
        crashes = []
        for kind in ("selector", "master_aggregator"):
            f = simulate(pop, config, SteeringConfig(), hours * HOUR_S, seed,
                         executor=ActorSystem(topo, (_second_actor(kind, at_s, topo),)).run_round).counters
            crashes += [int(f.column("lost").sum()), _failed(f)]
        out[name] = TopologyCost(len(system.trace) / rounds, hops_per_report(system.trace),
                                 float((c.column("resume_s") - c.column("end_s"))[ok].mean()), *crashes)
    return out


class RecyclingGain(NamedTuple):
    """Recycling late updates against discarding them, one value per seed."""

    accuracy_gain: np.ndarray  # final accuracy, recycle - discard
    wasted_compute_min: np.ndarray  # device compute that discarding throws away


def recycling_over_seeds(round_config: RoundConfig, model, task, seeds: Sequence[int],
                         steering: SteeringConfig = SteeringConfig()) -> RecyclingGain:
    """Discard vs recycle late updates on the same seeds (same simulated sessions): final-accuracy gain of
    recycling and the device compute (minutes) that discarding throws away, one value per seed."""
    from mlsys_core.fl.training import federated_training

    gain, wasted = [], []
    for s in validate.seeds("seeds", seeds):
        discard = federated_training(round_config, model, task, seed=s, steering=steering)
        recycle = federated_training(dataclasses.replace(round_config, recycle_late=True), model, task, seed=s,
                                     steering=steering)
        gain.append(float(recycle.accuracy[-1] - discard.accuracy[-1]))
        wasted.append(float(discard.wasted_compute_s.sum() / 60))
    return RecyclingGain(np.array(gain), np.array(wasted))


class ServerStudy(NamedTuple):
    """Server optimizers on the same simulated rounds, per seed: committed rounds until central accuracy
    first reached `target` (inf: not within the run), final accuracy, and each optimizer's run on the
    first seed; `eval_gap[s]`: mean |federated - central| accuracy over FedAvg's evaluation rounds."""

    names: tuple[str, ...]
    target: float
    rounds_to_target: np.ndarray  # (optimizers, seeds)
    final_accuracy: np.ndarray  # (optimizers, seeds)
    first_seed: dict
    eval_gap: np.ndarray  # (seeds,)
    eval_rounds: np.ndarray  # (seeds,) federated evaluation rounds per run

    def speedup(self, name: str, over: str = "FedAvg") -> np.ndarray:
        """Per seed: rounds `over` needs to reach the target / rounds `name` needs (> 1: `name` is faster)."""
        return self.rounds_to_target[self.names.index(over)] / self.rounds_to_target[self.names.index(name)]


def server_optimizer_study(optimizers: dict, round_config: RoundConfig, steering: SteeringConfig, task, model,
                           seeds: Sequence[int], target: float) -> ServerStudy:
    """Each server optimizer (name -> `fedavg.ServerOptimizer`; "FedAvg" among them) trained on the same
    protocol simulation and data per seed (`training.simulate_task`, `make_task`)."""
    from mlsys_core.fl.training import make_task, rounds_to_accuracy, simulate_task, train_on_simulation

    seeds = validate.seeds("seeds", seeds)
    names = tuple(optimizers)
    validate.choice("a reference optimizer", "FedAvg", names)
    rounds, final = np.zeros((len(names), len(seeds))), np.zeros((len(names), len(seeds)))
    gap, n_eval, first = [], [], {}
    for j, s in enumerate(seeds):
        data = make_task(task, model, s)
        sim = simulate_task(round_config, steering, task, model, s)
        for i, name in enumerate(names):
            run = train_on_simulation(sim, data, model, optimizers[name], s, round_config, task.rounds, task.eval_every)
            rounds[i, j], final[i, j] = rounds_to_accuracy(run, target), run.accuracy[-1]
            if j == 0:
                first[name] = run
            if name == "FedAvg":
                ev = np.isfinite(run.federated_accuracy)
                gap.append(float(np.mean(np.abs(run.federated_accuracy[ev] - run.central_at_eval[ev]))))
                n_eval.append(int(ev.sum()))
    return ServerStudy(names, float(target), rounds, final, first, np.array(gap), np.array(n_eval))


class Explored(NamedTuple):
    """The widget's view: a simulated run, its session outcomes, and the clients' digit mix."""

    result: FLSimResult
    outcomes: SessionOutcomes
    class_mix: np.ndarray  # (clients, 10) digits per class
    committed_share: float  # of the run's rounds


def explore(num_devices: int = 50_000, goal_count: int = 200, over_selection: float = 1.3, drop_out: float = 0.08,
            alpha: float = 0.5, steering: bool = True, hours: float = 6.0, seed: int = 0) -> Explored:
    """The widget's compute: a few simulated hours with these settings, plus the Dirichlet split of digits."""
    from mlsys_core.data import load_digits

    validate.positive("hours", hours)
    validate.seed("seed", seed)
    pop = make_population(PopulationConfig(num_devices=num_devices, drop_out_range=(drop_out, drop_out)), seed)
    cfg = RoundConfig(goal_count=goal_count, over_selection=over_selection)
    res = simulate(pop, cfg, SteeringConfig(mode="auto" if steering else "none"), hours * HOUR_S, seed)
    _, y = load_digits()
    parts = dirichlet_split(y, 20, alpha, seed)
    mix = np.array([np.bincount(y[p], minlength=10) for p in parts])
    return Explored(res, session_outcomes(res), mix,
                    float(res.counters.column("committed").mean()) if len(res.counters) else 0.0)
