"""Figures for notebook 03 (results in, matplotlib Figure out; nothing is computed here)."""

from __future__ import annotations

import numpy as np

from mlsys_core import viz


def diurnal(swing):
    """`experiments.DiurnalSwing` as a curve over the day."""
    fig, ax = viz.figure()
    ax.plot(swing.hours, swing.eligible / 1e3)
    ax.set(xlabel="hour of day (UTC)", ylabel="eligible devices (thousands)",
           title=f"idle + charging + unmetered: {swing.ratio:.1f}x swing")
    return fig


def commit_share(factors: np.ndarray, curves: dict, goal_count: int):
    fig, ax = viz.figure()
    for p, share in curves.items():
        ax.plot(factors, share, marker="o", ms=3, label=f"drop-out {p:.0%}")
    ax.axvline(1.3, color="gray", ls=":", label="paper: 130%")
    ax.set(xlabel="over-selection factor", ylabel="share of rounds that commit", title=f"goal count {goal_count}")
    ax.legend(fontsize=8)
    return fig


def dashboard(hours: np.ndarray, per_hour, checkins_per_s: np.ndarray, bin_s: float):
    """Telemetry dashboard (`experiments.Dashboard`): rounds, device outcomes per hour, and server load."""
    fig, axes = viz.figure(ncols=3, width=4.2)
    axes[0].bar(hours, per_hour.committed, label="committed")
    axes[0].bar(hours, per_hour.abandoned, bottom=per_hour.committed, label="abandoned")
    axes[0].set(xlabel="hour (UTC)", ylabel="rounds per hour")
    axes[0].legend(fontsize=8)
    bottom = np.zeros(len(hours))
    for k in ("accepted", "late", "dropped"):
        axes[1].bar(hours, getattr(per_hour, k) / 1e3, bottom=bottom, label=k)
        bottom += getattr(per_hour, k) / 1e3
    axes[1].set(xlabel="hour (UTC)", ylabel="devices per hour (thousands)")
    axes[1].legend(fontsize=8)
    axes[2].plot(np.arange(len(checkins_per_s)) * bin_s / 3600, checkins_per_s)
    axes[2].set(xlabel="hour (UTC)", ylabel="check-ins per second")
    return fig


def steering(comparison: dict, bin_s: float):
    """Server load per steering mode (`experiments.ServerLoad` by mode)."""
    fig, ax = viz.figure(width=6)
    for mode, r in comparison.items():
        ax.plot(np.arange(len(r.checkins_per_s)) * bin_s / 3600, r.checkins_per_s, lw=1,
                label=f"{mode}: mean {r.mean_per_s:.0f}/s, {r.committed} rounds")
    ax.set(xlabel="hour (UTC)", ylabel="check-ins per second", yscale="log", title="server load vs pace steering")
    ax.legend(fontsize=8)
    return fig


def training(runs: dict):
    """Test accuracy after each committed round, against the model version and the simulated hour
    (`training.TrainingRun`s by label); federated-evaluation reports as dots on the left."""
    fig, axes = viz.figure(ncols=2)
    for label, run in runs.items():
        done = np.asarray(run.committed, bool)
        line, = axes[0].plot(run.version[done], run.accuracy[done], label=label)
        axes[1].plot(run.time_s[done] / 3600.0, run.accuracy[done], label=label)
        ev = np.isfinite(run.federated_accuracy)
        if ev.any():
            axes[0].plot(run.version[ev], run.federated_accuracy[ev], "o", ms=3, color=line.get_color())
    axes[0].set(xlabel="committed rounds (dots: federated evaluation)", ylabel="test accuracy")
    axes[1].set(xlabel="simulated hours", ylabel="test accuracy")
    axes[0].legend(fontsize=8)
    return fig


def schedule_leak(user_hours: np.ndarray, true_window: tuple, inferred_window: tuple, aggregate: np.ndarray,
                  bin_h: float):
    fig, axes = viz.figure(ncols=2)
    ax = axes[0]
    ax.eventplot(np.mod(user_hours, 24.0), lineoffsets=0.5, linelengths=0.6)
    windows = ((true_window, "C2", "true sleep window"), (inferred_window, "C3", "inferred"))
    for (start, length), color, label in windows:
        ends = [(start, min(start + length, 24.0))] + ([(0.0, start + length - 24.0)] if start + length > 24 else [])
        for i, (a, b) in enumerate(ends):
            ax.axvspan(a, b, 0.85 if color == "C2" else 0.0, 1.0 if color == "C2" else 0.15, color=color, alpha=0.5,
                       label=label if i == 0 else None)
    ax.set(xlim=(0, 24), yticks=[], xlabel="local hour", title="one user's check-ins (per-device telemetry)")
    ax.legend(fontsize=8, loc="center right")
    axes[1].bar(np.arange(len(aggregate)) * bin_h, aggregate, width=bin_h)
    axes[1].set(xlabel="hour (UTC)", ylabel="distinct devices checking in", title="aggregate-only telemetry")
    return fig


def explore(explored):
    """The widget's view (`experiments.Explored`): server load, session outcomes, the clients' digit mix."""
    fig, axes = viz.figure(ncols=3, width=4)
    res = explored.result
    c = res.counters
    axes[0].plot(np.arange(len(res.checkins_per_bin)) * res.load_bin_s / 3600, res.checkins_per_bin / res.load_bin_s)
    axes[0].set(xlabel="hour (UTC)", ylabel="check-ins per second", title=f"{len(c)} rounds, "
                f"{explored.committed_share:.0%} committed")
    out = explored.outcomes
    axes[1].bar(list(out._fields), list(out))
    axes[1].set(ylabel="share of selected devices", title="session outcomes")
    axes[2].imshow(explored.class_mix, aspect="auto", cmap="Blues")
    axes[2].set(xlabel="digit class", ylabel="client", title="Dirichlet(alpha) split")
    return fig
