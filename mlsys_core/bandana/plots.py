"""Figures for the Bandana notebook. Each takes computed results and returns a matplotlib Figure
(`viz.figure`, not held by pyplot: a notebook shows it where a cell returns or displays it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mlsys_core import viz
from mlsys_core.bandana.cache import NO_PREFETCH

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _t_label(t: int) -> str:
    return "t=inf (no prefetch)" if t >= NO_PREFETCH else f"t={t}"


def placements(rows: dict, cache_fraction: float) -> Figure:
    """Bars: effective bandwidth per placement (`experiments.PlacementScore` by name) without and with the
    DRAM cache (t from the mini-caches on the past; also at the t chosen with the answer where scored)."""
    fig, axes = viz.figure(ncols=2, width=4.2)
    names = list(rows)
    x = np.arange(len(names))
    axes[0].bar(x, [rows[n].fanout for n in names], color="tab:gray")
    axes[0].set_title("blocks read per request (no cache)")
    oracle = all(rows[n].oracle_eb_cache is not None for n in names)
    w = 0.27 if oracle else 0.4
    axes[1].bar(x - w / (1 if oracle else 2), [rows[n].eb_no_cache for n in names], w, label="no cache")
    axes[1].bar(x + (0 if oracle else w / 2), [rows[n].eb_cache for n in names], w,
                label=f"cache {cache_fraction:.0%}, t from the past")
    if oracle:
        axes[1].bar(x + w, [rows[n].oracle_eb_cache for n in names], w, label="t chosen with the answer")
    axes[1].set_title("effective bandwidth (useful / read bytes)")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.set_xticks(x, names)
        viz.bar_labels(ax, "{:.3f}" if ax is axes[1] else "{:.1f}")
    return fig


def threshold_curves(grid, fractions, title: str = "") -> Figure:
    """Hit rate against cache size, one line per admission threshold t."""
    fig, ax = viz.figure()
    for t, row in zip(grid.thresholds, grid.hit_rates):
        ax.plot(np.asarray(fractions) * 100, row, marker="o", label=_t_label(int(t)))
    ax.set_xlabel("DRAM cache (% of table bytes)")
    ax.set_ylabel("hit rate")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def minicache_vs_full(fractions, full, minis: dict, show=None) -> Figure:
    """Full-simulation hit rates against mini-cache estimates, one panel per threshold.

    Args:
        fractions: the grids' cache sizes, fractions of the table's bytes.
        full: the full simulation's `mrc.MiniCacheGrid`.
        minis: {sampling rate: the mini-caches' MiniCacheGrid}.
        show: the thresholds to draw (default: all thresholds of `full`).
    """
    show = list(full.thresholds) if show is None else list(show)
    fig, axes = viz.figure(ncols=len(show), width=3.2)
    axes = np.atleast_1d(axes)
    for ax, t in zip(axes, show):
        k = list(full.thresholds).index(t)
        ax.plot(np.asarray(fractions) * 100, full.hit_rates[k], "k-o", label="full")
        for rate, grid in minis.items():
            ax.plot(np.asarray(fractions) * 100, grid.hit_rates[k], "--", marker=".", label=f"R={rate}")
        ax.set_title(_t_label(int(t)), fontsize=9)
        ax.set_xlabel("cache (% of table)")
    axes[0].set_ylabel("hit rate")
    axes[0].legend(fontsize=7)
    return fig


def hit_rate_curves(sizes, curves: dict, xlabel: str = "cache size (vectors)") -> Figure:
    """Hit-rate curves (name -> hit rates at `sizes`)."""
    fig, ax = viz.figure()
    for name, hits in curves.items():
        ax.plot(sizes, hits, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("hit rate")
    ax.legend(fontsize=8)
    return fig


def latency_tails(profiles: dict) -> Figure:
    """Grouped bars of p50 / p99 / p99.9 request latency for each configuration."""
    fig, ax = viz.figure(width=6)
    names = list(profiles)
    pcts = list(next(iter(profiles.values())))
    x = np.arange(len(names))
    w = 0.8 / len(pcts)
    for i, p in enumerate(pcts):
        ax.bar(x + (i - (len(pcts) - 1) / 2) * w, [profiles[n][p] for n in names], w, label=f"p{p:g}")
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("request latency (us)")
    ax.legend(fontsize=8)
    viz.bar_labels(ax, "{:.0f}")
    return fig


def endurance_sweep(cvs, worst, over) -> Figure:
    """Worst drive's writes/day and the share of drives over budget, against the spread of refresh rates."""
    fig, axes = viz.figure(ncols=2, width=4)
    axes[0].plot(cvs, worst, marker="o")
    axes[0].axhline(30, color="tab:red", ls="--", label="rated 30 DWPD")
    axes[0].set_xlabel("coefficient of variation of refreshes/day")
    axes[0].set_ylabel("worst drive (drive writes / day)")
    axes[0].legend(fontsize=8)
    axes[1].plot(cvs, np.asarray(over) * 100, marker="o", color="tab:red")
    axes[1].set_xlabel("coefficient of variation of refreshes/day")
    axes[1].set_ylabel("drives over budget (%)")
    return fig


def cost_vs_bandwidth(cache_fractions, saving, eb) -> Figure:
    """Memory-cost saving of NVM + DRAM cache against the effective bandwidth obtained."""
    fig, ax = viz.figure()
    ax.plot(np.asarray(cache_fractions) * 100, np.asarray(saving) * 100, marker="o", label="cost saved vs all-DRAM (%)")
    ax.set_xlabel("DRAM cache (% of model bytes)")
    ax.set_ylabel("cost saved (%)")
    ax2 = ax.twinx()
    ax2.plot(np.asarray(cache_fractions) * 100, eb, marker="s", color="tab:orange", label="effective bandwidth")
    ax2.set_ylabel("effective bandwidth (useful / read)")
    lines = ax.get_lines() + ax2.get_lines()
    ax.legend(lines, [line.get_label() for line in lines], fontsize=8, loc="lower left")
    return fig


def explore_cache(point) -> Figure:
    """The widget's view of one design point (`experiments.explore_cache`'s `DesignPoint`): full vs
    mini-cache hit-rate curve of the post table, and the point's request latency and numbers."""
    fig, axes = viz.figure(ncols=2, width=4.2)
    x = point.fractions * 100
    axes[0].plot(x, point.full, "k-o", label="full simulation")
    axes[0].plot(x, point.mini, "--s", label=f"mini-cache R={point.rate}")
    axes[0].set_xlabel("post-table cache (% of its bytes)")
    axes[0].set_ylabel("hit rate")
    axes[0].set_title(f"{point.placement}, {_t_label(int(point.threshold))}", fontsize=9)
    axes[0].legend(fontsize=8)
    lat = point.latency_us
    axes[1].bar([f"p{p:g}" for p in lat], list(lat.values()), color="tab:purple")
    axes[1].set_ylabel(f"request latency (us), device {point.utilisation:.0%} busy")
    axes[1].set_title(f"hit {point.hit_rate:.2f}, eff. bw {point.effective_bandwidth:.3f}, "
                      f"post share {point.post_share:.0%}", fontsize=9)
    return fig


def useful_bandwidth(vectors_per_block, curves: dict) -> Figure:
    """Useful GB/s against the vectors of each 4 KB block that a request uses (name -> GB/s)."""
    fig, ax = viz.figure()
    for name, gbps in curves.items():
        ax.plot(vectors_per_block, gbps, marker=".", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("vectors used per 4 KB block read")
    ax.set_ylabel("useful bandwidth (GB/s)")
    ax.legend(fontsize=8)
    return fig


def gain_vs_affinity(gains: dict) -> Figure:
    """SHP's effective-bandwidth gain over sequential placement against the workload's co-access strength:
    `gains` maps each affinity to its `experiments.PlacementGains` (the mean over seeds is drawn)."""
    fig, ax = viz.figure()
    affinities = list(gains)
    ax.plot(affinities, [g.without_cache.mean() for g in gains.values()], marker="o", label="no cache")
    ax.plot(affinities, [g.with_cache.mean() for g in gains.values()], marker="s", label="with cache, t from the past")
    ax.axhspan(2, 3, color="tab:green", alpha=0.15, label="paper: 2-3x")
    ax.set_xlabel("post-table affinity (share of lookups from the request's community)")
    ax.set_ylabel("SHP / sequential effective bandwidth")
    ax.legend(fontsize=8)
    return fig


def latency_vs_utilisation(utilisations, curves: dict, percentiles=(50.0, 99.0, 99.9),
                           at: float | None = None) -> Figure:
    """Request latency percentiles against device utilisation, one panel per percentile and one line
    per configuration.

    Args:
        utilisations: the device loads, fractions of its peak IOPS.
        curves: {name: (len(utilisations), len(percentiles)) request latency (us)}.
        percentiles: the percentiles of the curves' columns.
        at: a utilisation to mark, or None.
    """
    fig, axes = viz.figure(ncols=len(percentiles), width=3.3)
    axes = np.atleast_1d(axes)
    u = np.asarray(utilisations) * 100
    for k, (ax, p) in enumerate(zip(axes, percentiles)):
        for name, lat in curves.items():
            ax.plot(u, np.asarray(lat)[:, k], marker="o", label=name)
        if at is not None:
            ax.axvline(at * 100, color="gray", ls=":", lw=1)
        ax.set_yscale("log")
        ax.set_title(f"p{p:g}", fontsize=9)
        ax.set_xlabel("device utilisation (% of peak IOPS)")
    axes[0].set_ylabel("request latency (us)")
    axes[0].legend(fontsize=7)
    return fig
