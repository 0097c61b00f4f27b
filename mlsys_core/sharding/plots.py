"""Figures for notebook 01. Each takes results computed elsewhere and returns the matplotlib Figure
made by `viz.figure` (not held by pyplot: a notebook cell shows it by returning or displaying it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mlsys_core import viz

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MIB = 2**20


def memory_per_device(memory: dict) -> Figure:
    """Stacked bars: parameters / optimizer state / gradients (MiB per device) for each strategy."""
    fig, ax = viz.figure()
    names = list(memory)
    bottom = np.zeros(len(names))
    parts = (("params_bytes", "parameters"), ("opt_state_bytes", "optimizer state"), ("grad_bytes", "gradients"))
    for field, label in parts:
        values = np.array([getattr(memory[n], field) / MIB for n in names])
        ax.bar(names, values, bottom=bottom, label=label)
        bottom += values
    ax.set_ylabel("MiB per device")
    ax.set_title("What each device holds")
    ax.legend(fontsize=8)
    return fig


def collective_bytes(by_strategy: dict) -> Figure:
    """Grouped bars: result bytes per device of each collective kind, per strategy."""
    fig, ax = viz.figure()
    kinds = sorted({k for d in by_strategy.values() for k in d})
    width = 0.8 / max(len(kinds), 1)
    x = np.arange(len(by_strategy))
    for i, kind in enumerate(kinds):
        ax.bar(x + i * width, [by_strategy[s].get(kind, 0) / MIB for s in by_strategy], width, label=kind)
    ax.set_xticks(x + width * (len(kinds) - 1) / 2, list(by_strategy))
    ax.set_ylabel("MiB per device (op results)")
    ax.set_title("Collectives in the compiled step")
    ax.legend(fontsize=8)
    return fig


def step_times(medians_ms: dict, title: str = "Step time (median after warm-up)") -> Figure:
    """Bars of median step milliseconds, labelled."""
    fig, ax = viz.figure()
    ax.bar([str(k) for k in medians_ms], list(medians_ms.values()), color="tab:purple")
    viz.bar_labels(ax, "{:.0f}")
    ax.set_ylabel("ms per step")
    ax.set_title(title)
    return fig


def scaling(curve, workload_name: str, mlperf_point: tuple | None = None) -> Figure:
    """`cost_model.ScalingCurve`: left, time to train vs chips (replicated, WUS, MLPerf point); right, step-time
    shares (replicated)."""
    fig, (left, right) = viz.figure(ncols=2)
    chips = curve.chips
    left.loglog(chips, curve.replicated_train_s, "o-", label="model: replicated update")
    left.loglog(chips, curve.wus_train_s, "s--", label="model: WUS")
    if mlperf_point is not None:
        left.loglog([mlperf_point[0]], [mlperf_point[1]], "r*", markersize=12, label="MLPerf v0.7 (measured)")
    left.set_xlabel("chips")
    left.set_ylabel("time to train (s)")
    left.set_title(workload_name)
    left.legend(fontsize=7)
    parts = curve.replicated_shares
    right.stackplot(chips, *parts.values(), labels=list(parts))
    right.set_xscale("log", base=2)
    right.set_xlabel("chips")
    right.set_ylabel("share of step (replicated)")
    right.set_title("Where the step time goes")
    right.legend(fontsize=7, loc="upper left")
    return fig


def accuracy_bars(accuracies: dict, xlabel: str, title: str) -> Figure:
    """Bars of test accuracy keyed by a setting (e.g. BN group size)."""
    fig, ax = viz.figure()
    ax.bar([str(k) for k in accuracies], [100 * v for v in accuracies.values()], color="tab:green")
    viz.bar_labels(ax, "{:.1f}")
    lo = 100 * min(accuracies.values())
    ax.set_ylim(max(0, lo - 10), 100)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    return fig


def explore_scaling(curve) -> Figure:
    """Widget view of `experiments.explore_scaling`'s `cost_model.ScalingCurve`: `scaling`, titled by the
    workload."""
    return scaling(curve, curve.workload)


def explore_config(result) -> Figure:
    """Widget view of `experiments.explore_config`'s `ConfigResult`: memory per device and collective bytes."""
    fig, (left, right) = viz.figure(ncols=2)
    m = result.memory
    fields = {"params": m.params_bytes, "optimizer": m.opt_state_bytes, "grads": m.grad_bytes}
    left.bar(list(fields), [v / MIB for v in fields.values()], color="tab:blue")
    viz.bar_labels(left, "{:.1f}")
    left.set_ylabel("MiB per device")
    left.set_title(f"{result.params / 1e6:.1f} M params, step {result.step_ms:.0f} ms")
    kinds = result.collective_bytes
    right.bar(list(kinds), [v / MIB for v in kinds.values()], color="tab:orange")
    viz.bar_labels(right, "{:.2f}")
    right.set_ylabel("MiB per device (as written)")
    right.set_title("Collectives")
    right.tick_params(axis="x", labelsize=8)
    return fig


def time_vs_link(link_gb_per_s, predicted_s: dict, record_s: dict, band: float = 0.25) -> Figure:
    """The cost model's time to train vs assumed link bandwidth, one line per workload, beside its
    MLPerf record (dashed) and the record's +-`band` (shaded).

    Args:
        link_gb_per_s: the assumed link bandwidths per chip (GB/s), the x values.
        predicted_s: workload -> the model's seconds to train at each bandwidth.
        record_s: workload -> its MLPerf v0.7 record (seconds).
        band: the shaded fraction around each record (0.25: +-25 %).
    """
    fig, ax = viz.figure()
    for (name, seconds), color in zip(predicted_s.items(), ("tab:blue", "tab:orange", "tab:green")):
        ax.plot(link_gb_per_s, seconds, "o-", color=color, label=f"{name}: cost model")
        ax.axhline(record_s[name], color=color, ls="--", lw=1, label=f"{name}: MLPerf v0.7")
        ax.axhspan(record_s[name] * (1 - band), record_s[name] * (1 + band), color=color, alpha=0.12)
    ax.set_xlabel("assumed link bandwidth per chip (GB/s)")
    ax.set_ylabel("time to train on 4096 chips (s)")
    ax.set_title(f"Cost model vs record (shaded: within {band:.0%})")
    ax.legend(fontsize=7)
    return fig


def xla_memory(comparison) -> Figure:
    """Stacked bars per variant: XLA's arguments / temporaries / outputs not in place (MiB per device)
    - what a device needs at its peak, beside the persistent state of `memory_per_device`."""
    fig, ax = viz.figure()
    names = list(comparison.names)
    rows = comparison.memory
    parts = (("inputs (params, optimizer state, batch)", [m.arguments_bytes for m in rows]),
             ("temporaries (gathered weights, activations, gradients)", [m.temporaries_bytes for m in rows]),
             ("outputs not in place", [m.outputs_bytes - m.alias_bytes for m in rows]))
    bottom = np.zeros(len(names))
    for label, values in parts:
        values = np.array(values) / MIB
        ax.bar(names, values, bottom=bottom, label=label)
        bottom += values
    ax.set_ylabel("MiB per device (XLA buffer assignment)")
    ax.set_title("Peak memory per device")
    ax.tick_params(axis="x", labelrotation=20, labelsize=8)
    ax.legend(fontsize=7)
    return fig
