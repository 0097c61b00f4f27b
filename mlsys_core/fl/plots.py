"""Figures for notebooks 03 and 03b (results in, the Figure of `viz.figure` out; nothing is computed here)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from mlsys_core import viz

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def diurnal(swing) -> Figure:
    """`experiments.DiurnalSwing` as a curve over the day."""
    fig, ax = viz.figure()
    ax.plot(swing.hours, swing.eligible / 1e3)
    ax.set(xlabel="hour of day (UTC)", ylabel="eligible devices (thousands)",
           title=f"idle + charging + unmetered: {swing.ratio:.1f}x swing")
    return fig


def commit_share(factors: np.ndarray, curves: dict, goal_count: int) -> Figure:
    """Share of rounds that commit against the over-selection factor, one line per drop-out probability
    (`experiments.commit_share_curves`), with the paper's 130% marked."""
    fig, ax = viz.figure()
    for p, share in curves.items():
        ax.plot(factors, share, marker="o", ms=3, label=f"drop-out {p:.0%}")
    ax.axvline(1.3, color="gray", ls=":", label="paper: 130%")
    ax.set(xlabel="over-selection factor", ylabel="share of rounds that commit", title=f"goal count {goal_count}")
    ax.legend(fontsize=8)
    return fig


def dashboard(hours: np.ndarray, per_hour, checkins_per_s: np.ndarray, bin_s: float) -> Figure:
    """Telemetry dashboard: rounds and device outcomes per hour, and the server's load.

    Args:
        hours: the simulated hours (UTC), one bar each.
        per_hour: `experiments.Dashboard`, one value per hour.
        checkins_per_s: check-ins per second, per load bin.
        bin_s: width of a load bin (s).
    """
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


def steering(comparison: dict, bin_s: float) -> Figure:
    """Server load per steering mode (`experiments.ServerLoad` by mode; load bins of `bin_s` seconds)."""
    fig, ax = viz.figure(width=6)
    for mode, r in comparison.items():
        ax.plot(np.arange(len(r.checkins_per_s)) * bin_s / 3600, r.checkins_per_s, lw=1,
                label=f"{mode}: mean {r.mean_per_s:.0f}/s, {r.committed} rounds")
    ax.set(xlabel="hour (UTC)", ylabel="check-ins per second", yscale="log", title="server load vs pace steering")
    ax.legend(fontsize=8)
    return fig


def training(runs: dict) -> Figure:
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


def explore_rounds(explored) -> Figure:
    """The widget's view (`experiments.RoundsExplored`): server load, session outcomes, the clients' digit mix."""
    fig, axes = viz.figure(ncols=3, width=4)
    res = explored.result
    c = res.counters
    axes[0].plot(np.arange(len(res.checkins_per_bin)) * res.load_bin_s / 3600, res.checkins_per_bin / res.load_bin_s)
    axes[0].set(xlabel="hour (UTC)", ylabel="check-ins per second", title=f"{len(c)} rounds, "
                f"{explored.committed_share:.0%} committed")
    out = dataclasses.asdict(explored.outcomes)
    axes[1].bar(list(out), list(out.values()))
    axes[1].set(ylabel="share of selected devices", title="session outcomes")
    axes[2].imshow(explored.class_mix, aspect="auto", cmap="Blues")
    axes[2].set(xlabel="digit class", ylabel="client", title="Dirichlet(alpha) split")
    return fig


# -- notebook 03b ------------------------------------------------------------------------------------------

def schedule_leak(user_hours: np.ndarray, true_window: tuple, inferred_window: tuple, aggregate: np.ndarray,
                  bin_h: float) -> Figure:
    """One user's check-ins with their true and inferred sleep windows (per-device telemetry), beside the
    aggregate-only dashboard.

    Args:
        user_hours: the user's check-in times, in local hours.
        true_window: (start, length) of the user's window, in local hours.
        inferred_window: (start, length) the attack inferred, in local hours.
        aggregate: distinct devices checking in per bin (`telemetry.aggregate_only`).
        bin_h: width of a dashboard bin (hours).
    """
    fig, axes = viz.figure(ncols=2)
    ax = axes[0]
    ax.eventplot(np.mod(user_hours, 24.0), lineoffsets=0.5, linelengths=0.6)
    windows = ((true_window, "C2", "true sleep window", (0.85, 1.0)), (inferred_window, "C3", "inferred", (0.0, 0.15)))
    for (start, length), color, label, (ymin, ymax) in windows:
        ends = [(start, min(start + length, 24.0))] + ([(0.0, start + length - 24.0)] if start + length > 24 else [])
        for i, (a, b) in enumerate(ends):
            ax.axvspan(a, b, ymin, ymax, color=color, alpha=0.5, label=label if i == 0 else None)
    ax.set(xlim=(0, 24), yticks=[], xlabel="local hour", title="one user's check-ins (per-device telemetry)")
    ax.legend(fontsize=8, loc="center right")
    axes[1].bar(np.arange(len(aggregate)) * bin_h, aggregate, width=bin_h)
    axes[1].set(xlabel="hour (UTC)", ylabel="distinct devices checking in", title="aggregate-only telemetry")
    return fig


INVERSION_TITLES = ("in the clear", "DP", "SecAgg sum", "SecAgg + DP")  # short names of the attack's settings


def inversion_gallery(study, examples: int = 2, titles: tuple[str, ...] = INVERSION_TITLES) -> Figure:
    """The true digits of the first `examples` seeds (rows) beside what gradient inversion reconstructed
    in each setting (`inversion.InversionStudy`; columns titled `titles`, in the study's order)."""
    fig, axes = viz.figure(ncols=len(titles) + 1, nrows=examples, width=1.3, height=1.4, squeeze=False)
    for j in range(examples):
        axes[j, 0].imshow(study.truth[j].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
        for i, name in enumerate(titles):
            axes[j, i + 1].imshow(study.reconstructions[i, j].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            axes[0, i + 1].set_title(name, fontsize=8)
    axes[0, 0].set_title("true digit", fontsize=8)
    for ax in axes.flat:
        ax.set(xticks=[], yticks=[])
    return fig


def dp_accuracy(sweep) -> Figure:
    """DP-FedAvg's test accuracy (mean, and the range over seeds) against epsilon, one point per noise
    multiplier, with accuracy without privacy as a line (`privacy.DPSweep`)."""
    fig, ax = viz.figure()
    lo, hi = sweep.accuracy.min(1), sweep.accuracy.max(1)
    mean = sweep.accuracy.mean(1)
    ax.errorbar(sweep.epsilon, mean, yerr=[mean - lo, hi - mean], marker="o", capsize=3,
                label=f"DP-FedAvg ({sweep.accuracy.shape[1]} seeds)")
    for z, e, a in zip(sweep.noise_multipliers, sweep.epsilon, mean):
        ax.annotate(f"z = {z:.0f}", (e, a), textcoords="offset points", xytext=(5, -12), fontsize=8)
    ax.axhline(sweep.non_private.mean(), ls="--", color="grey", label="no privacy")
    ax.set(xscale="log", xlabel=f"epsilon after {sweep.rounds} rounds (delta = {sweep.delta:g})",
           ylabel="test accuracy", title="Accuracy against privacy on non-IID digits")
    ax.set_xticks([1, 2, 4, 8], labels=["1", "2", "4", "8"], minor=False)
    ax.minorticks_off()
    ax.legend(fontsize=8)
    return fig
