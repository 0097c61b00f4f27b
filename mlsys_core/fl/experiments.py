"""The notebook's experiments as pure functions (seeded; results are plain arrays and dicts)."""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core.fl import telemetry
from mlsys_core.fl.actors import ActorSystem, Fault, Topology
from mlsys_core.fl.fedavg import dirichlet_split
from mlsys_core.fl.population import (HOUR_S, Population, PopulationConfig, eligible_by_hour, make_population)
from mlsys_core.fl.protocol import RoundConfig, SimResult, SteeringConfig, commit_share, simulate


def diurnal_swing(pop: Population, step_h: float = 0.25) -> dict:
    """Eligible devices over one UTC day and the peak / trough ratio."""
    hours = np.arange(0.0, 24.0, step_h)
    counts = eligible_by_hour(pop, hours)
    return {"hours": hours, "eligible": counts, "ratio": float(counts.max() / max(counts.min(), 1))}


def hourly(res: SimResult, column: str) -> np.ndarray:
    """Sum of a per-round counter by the hour the round closed (length: hours simulated)."""
    c = res.counters
    hours = int(np.ceil(res.duration_s / HOUR_S))
    h = np.minimum((c.column("close_s") // HOUR_S).astype(int), hours - 1)
    return np.bincount(h, weights=c.column(column).astype(float), minlength=hours)


def dashboard_series(res: SimResult) -> dict:
    """Per-hour dashboard columns: committed and abandoned rounds, accepted / late / dropped devices."""
    out = {k: hourly(res, k) for k in ("committed", "accepted", "late", "dropped")}
    c = res.counters
    hours = len(out["committed"])
    h = np.minimum((c.column("close_s") // HOUR_S).astype(int), hours - 1)
    out["abandoned"] = np.bincount(h, weights=~c.column("committed").astype(bool), minlength=hours).astype(float)
    return out


def session_outcomes(res: SimResult) -> dict:
    """Shares of selected devices whose upload was accepted, was late, dropped out, or was lost to a crash."""
    c = res.counters
    selected = max(int(c.column("selected").sum()), 1)
    return {k: float(c.column(k).sum() / selected) for k in ("accepted", "late", "dropped", "lost")}


def commit_share_curves(pop: Population, config: RoundConfig, factors: np.ndarray, drop_outs: tuple[float, ...],
                        rounds: int, seed: int) -> dict:
    """Commit share vs over-selection, one curve per fixed drop-out probability."""
    curves = {}
    for p in drop_outs:
        pop_p = dataclasses.replace(pop, drop_out_p=np.full(pop.size, p, np.float32))
        curves[p] = commit_share(pop_p, config, factors, rounds, seed)
    return curves


def steering_comparison(pop: Population, config: RoundConfig, hours: float, seed: int,
                        modes: tuple[str, ...] = ("none", "spread", "auto")) -> dict:
    """Server load (check-ins per second, per minute) and committed rounds under each steering mode."""
    out = {}
    for mode in modes:
        res = simulate(pop, config, SteeringConfig(mode=mode), hours * HOUR_S, seed)
        per_s = res.checkins_per_bin / res.load_bin_s
        out[mode] = {"checkins_per_s": per_s, "mean_per_s": float(per_s.mean()), "peak_per_s": float(per_s.max()),
                     "committed": int(res.counters.column("committed").sum())}
    return out


def fault_table(pop: Population, config: RoundConfig, topology: Topology, at_s: float, hours: float, seed: int,
                kinds: tuple[str, ...] = ("aggregator", "selector", "master_aggregator", "coordinator")) -> list[dict]:
    """Crash one actor of each kind at `at_s` (separate runs): what each crash cost."""
    base = simulate(pop, config, SteeringConfig(), hours * HOUR_S, seed,
                    executor=ActorSystem(topology).run_round).counters
    rows = []
    for kind in (None, *kinds):
        system = ActorSystem(topology, () if kind is None else (Fault(kind, at_s, 1),))
        c = simulate(pop, config, SteeringConfig(), hours * HOUR_S, seed, executor=system.run_round).counters
        rows.append({
            "crash": kind or "none", "actor": topology.role(kind) if kind else "-",
            "failed_rounds": int((~c.column("committed").astype(bool)).sum()),
            "devices_lost": int(c.column("lost").sum()),
            "committed_rounds": int(c.column("committed").sum()),
            "vs_no_crash": int(c.column("committed").sum()) - int(base.column("committed").sum()),
            "respawned_by": ", ".join(sorted({who for _, who, _ in system.respawns})) or "-",
            "lock_attempts": system.lock.attempts,
        })
    return rows


def topology_comparison(pop: Population, config: RoundConfig, at_s: float, hours: float, seed: int,
                        hop_latency_s: float = 0.05) -> dict:
    """Four actors vs the survey's two: messages, hops to commit, round latency, and one crash's blast radius."""
    out = {}
    for name, merged in (("four actors", False), ("two actors", True)):
        topo = Topology(merged=merged, hop_latency_s=hop_latency_s)
        c = simulate(pop, config, SteeringConfig(), hours * HOUR_S, seed, executor=ActorSystem(topo).run_round).counters
        ok = c.column("committed").astype(bool)
        row = {"messages_per_round": float(c.column("messages").mean()),
               "hops_report_to_commit": 3 if not merged else 2, "hops_checkin_to_training": 1 if merged else 2,
               "commit_after_goal_s": float((c.column("resume_s") - c.column("end_s"))[ok].mean()) + (0 if merged else hop_latency_s)}
        for kind in ("selector", "master_aggregator"):
            f = simulate(pop, config, SteeringConfig(), hours * HOUR_S, seed,
                         executor=ActorSystem(topo, (Fault(kind, at_s, 1),)).run_round).counters
            row[f"{kind}_crash_devices_lost"] = int(f.column("lost").sum())
            row[f"{kind}_crash_failed_rounds"] = int((~f.column("committed").astype(bool)).sum())
        out[name] = row
    return out


def schedule_leak(res: SimResult, pop: Population, devices: np.ndarray) -> dict:
    """Per-device telemetry attack: infer each device's nightly window from its check-in hours."""
    true, guess = [], []
    for d in devices:
        hours = telemetry.device_checkin_times(res.log, int(d)) / HOUR_S + pop.tz_offset_h[d]
        guess.append(telemetry.infer_window(hours)[0])
        true.append(float(pop.window_start_h[d]))
    true, guess = np.array(true), np.array(guess)
    return {"true_start_h": true, "inferred_start_h": guess, "error_h": np.abs((guess - true + 12.0) % 24.0 - 12.0)}


def explore(num_devices: int = 50_000, goal_count: int = 200, over_selection: float = 1.3, drop_out: float = 0.08,
            alpha: float = 0.5, steering: bool = True, hours: float = 6.0, seed: int = 0) -> dict:
    """The widget's compute: a few simulated hours with these settings, plus the Dirichlet split of digits."""
    from mlsys_core.data import load_digits

    pop = make_population(PopulationConfig(num_devices=num_devices, drop_out_range=(drop_out, drop_out)), seed)
    cfg = RoundConfig(goal_count=goal_count, over_selection=over_selection)
    res = simulate(pop, cfg, SteeringConfig(mode="auto" if steering else "none"), hours * HOUR_S, seed)
    _, y = load_digits()
    parts = dirichlet_split(y, 20, alpha, seed)
    mix = np.array([np.bincount(y[p], minlength=10) for p in parts])
    return {"result": res, "outcomes": session_outcomes(res), "class_mix": mix,
            "committed_share": float(res.counters.column("committed").mean()) if len(res.counters) else 0.0}
