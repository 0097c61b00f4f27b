"""Notebook 03, sections 3 and 5 (fault injection; four actors, or two?): one crash per run, what it cost
and whether the paper's failure semantics held, read from the actor log; and the survey's two-actor
topology against the paper's four. `fault_semantics_over_seeds` gives one value per seed for the claims
registry."""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.fl.actors import ActorSystem, Message, count, hops_per_report
from mlsys_core.fl.faults import Fault, Topology, actor_counts, actor_name
from mlsys_core.fl.population import HOUR_S, Population, PopulationConfig, make_population
from mlsys_core.fl.protocol import simulate
from mlsys_core.fl.rounds import RoundConfig
from mlsys_core.fl.steering import SteeringConfig
from mlsys_core.fl.telemetry import RoundCounters
from mlsys_core.seeds import DEFAULT_SEEDS

FAULT_KINDS = ("aggregator", "selector", "master_aggregator", "coordinator")


@dataclasses.dataclass(frozen=True)
class FaultRun:
    """One simulation with (at most) one injected crash: its per-round counters and its actor log."""

    crash: str  # "none" or the actor kind crashed
    victim: str  # the crashed actor's name, e.g. "aggregator[1]" ("-" for none)
    counters: RoundCounters  # the run's per-round counters
    trace: list[Message]  # the actor log (`ActorSystem.trace`)


def _second_actor(kind: str, at_s: float, topology: Topology) -> Fault:
    """A crash of actor number 1 of `kind`'s role in `topology` (number 0 where the role has one actor)."""
    return Fault(kind, at_s, 1 % actor_counts(topology)[topology.role(kind)])


def fault_runs(pop: Population, config: RoundConfig, topology: Topology, at_s: float, hours: float, seed: int,
               kinds: tuple[str, ...] = FAULT_KINDS) -> dict[str, FaultRun]:
    """A run without faults, then one run per kind in `kinds` crashing actor number 1 of it at `at_s`.

    Args:
        pop: the population.
        config: the round configuration.
        topology: the actors.
        at_s: when the crash happens (simulated s).
        hours: simulated hours per run.
        seed: seeds every run (the same for each).
        kinds: the actor kinds to crash, one run each.

    Returns:
        "none" and each kind -> its run.
    """
    validate.positive("hours", hours)
    validate.seed("seed", seed)
    validate.instance("topology", topology, Topology, "a faults.Topology")
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


@dataclasses.dataclass(frozen=True)
class FaultCost:
    """What one run's crash cost, and who respawned what (read from the actor log)."""

    crash: str  # "none" or the actor kind crashed
    actor: str  # the crashed actor's name
    failed_rounds: int  # rounds that did not commit
    devices_lost: int  # updates lost to the crash
    committed_rounds: int  # rounds that committed
    vs_no_crash: int  # committed rounds minus those of the run without a crash
    respawns: int  # respawn records in the actor log
    respawned_by: str  # the kinds of actor that respawned others, comma-separated ("-": none)
    lock_attempts: int  # requests to the lock service


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
                               hours: float, seeds=DEFAULT_SEEDS) -> np.ndarray:
    """Share of the behaviours in `fault_behaviours` that hold, one value per seed (population and runs).

    Args:
        pop_config: the population (drawn once per seed).
        config: the round configuration.
        topology: the actors.
        at_s: when each crash happens (simulated s).
        hours: simulated hours per run.
        seeds: one population and set of runs (`fault_runs`) each.
    """
    shares = []
    for s in validate.seeds("seeds", seeds):
        held = fault_behaviours(fault_runs(make_population(pop_config, s), config, topology, at_s, hours, s), topology)
        shares.append(float(np.mean(list(held.values()))))
    return np.array(shares)


@dataclasses.dataclass(frozen=True)
class TopologyCost:
    """One actor topology: its messages and hops (from the actor log), commit latency and crash radius."""

    messages_per_round: float  # actor messages per round
    hops_per_report: float  # data-path messages per update that reached the Coordinator
    commit_after_goal_s: float  # from the goal-th report to the Coordinator holding the result
    selector_crash_devices_lost: int  # updates lost when Selector 1 crashes
    selector_crash_failed_rounds: int  # rounds that did not commit in that run
    master_aggregator_crash_devices_lost: int  # updates lost when the Master Aggregator crashes
    master_aggregator_crash_failed_rounds: int  # rounds that did not commit in that run


def topology_comparison(pop: Population, config: RoundConfig, at_s: float, hours: float, seed: int,
                        hop_latency_s: float = 0.05) -> dict[str, TopologyCost]:
    """Four actors vs the survey's two: messages per round and hops per report (both read from the actor
    log), the time from the goal-th report to the Coordinator holding the result, and one crash's blast
    radius (devices lost, rounds failed).

    Args:
        pop: the population.
        config: the round configuration.
        at_s: when each crash happens (simulated s).
        hours: simulated hours per run.
        seed: seeds every run.
        hop_latency_s: one message between actors (s).

    Returns:
        "four actors" and "two actors" -> their costs.
    """
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
