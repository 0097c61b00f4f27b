"""Figures for the TicTac notebook. Each takes results from `experiments` / `ps` and returns the Figure
made by `viz.figure` (not registered with pyplot: a notebook shows it where a cell returns or displays it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mlsys_core import viz

if TYPE_CHECKING:
    from collections.abc import Iterable

    from matplotlib.figure import Figure

    from mlsys_core.tictac.experiments import (
        GainSweep,
        HeuristicCost,
        OracleError,
        OrderStudy,
        PartitionStudy,
        ServerSweep,
        SpeedupRow,
        StragglerSweep,
        Timeline,
        WorkersSweep,
    )
    from mlsys_core.tictac.ps import Trial


def gantt(tl: Timeline) -> Figure:
    """Timeline of one worker: transfers per parameter server (top lanes; colour = layer, dark = first
    used) and compute ops (bottom)."""
    fig, ax = viz.figure(width=8, height=2.8)
    ms = 1e3
    servers = int(tl.recv_server.max()) + 1
    colors = tl.recv_layer / max(1, tl.recv_layer.size - 1)
    import matplotlib

    cmap = matplotlib.colormaps["viridis"]
    for p in range(servers):
        mine = np.flatnonzero(tl.recv_server == p)
        ax.broken_barh([(s * ms, (e - s) * ms) for s, e in zip(tl.recv_start[mine], tl.recv_end[mine])],
                       (servers - p + 0.6, 0.8), facecolors=[cmap(colors[i]) for i in mine], edgecolor="white",
                       linewidth=0.3)
    ax.broken_barh([(s * ms, (e - s) * ms) for s, e in zip(tl.op_start, tl.op_end)], (0.1, 0.8),
                   facecolors="tab:orange", edgecolor="none")
    ax.axvline(tl.lower * ms, color="k", ls=":", lw=1, label="L = max(comm, comp)")
    ax.axvline(tl.upper * ms, color="k", ls="--", lw=1, label="U = comm + comp")
    ax.set_yticks([0.5] + [servers - p + 1 for p in range(servers)],
                  ["compute"] + [f"PS {p} link" for p in range(servers)])
    ax.set_xlabel("time in iteration (ms)")
    ax.set_title(f"{tl.graph.name}, {tl.scheduler}: makespan {tl.makespan * ms:.2f} ms, E = {tl.efficiency:.2f}, "
                 f"{tl.speedup:.2f}x random", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def speedups(rows: list[SpeedupRow], schedulers=("layer", "reverse", "tic", "tac")) -> Figure:
    """Grouped bars: throughput over random order per model and mode (`experiments.SpeedupRow`s)."""
    fig, ax = viz.figure(width=8, height=3)
    labels = [f"{r.model}\n{r.mode}" for r in rows]
    x = np.arange(len(rows))
    width = 0.8 / len(schedulers)
    for k, name in enumerate(schedulers):
        ax.bar(x + (k - (len(schedulers) - 1) / 2) * width, [r.speedup[name] for r in rows], width, label=name)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("throughput / random order")
    ax.legend(fontsize=8, ncols=4)
    return fig


def efficiency_hist(values: dict) -> Figure:
    """Histograms of scheduling efficiency E per scheduler."""
    fig, ax = viz.figure()
    bins = np.linspace(0, 1, 21)
    for name, e in values.items():
        ax.hist(np.ravel(e), bins=bins, alpha=0.6, label=name)
    ax.set_xlabel("scheduling efficiency E")
    ax.set_ylabel("worker-iterations")
    ax.legend(fontsize=8)
    return fig


def workers_sweep(sweep: WorkersSweep) -> Figure:
    """Speedup over random against the number of workers."""
    fig, ax = viz.figure()
    for name in ("tac", "tic", "layer"):
        ax.plot(sweep.workers, getattr(sweep, name), marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xlabel("workers sharing the PS link")
    ax.set_ylabel("throughput / random order")
    ax.legend(fontsize=8)
    return fig


def oracle_error(result: OracleError) -> Figure:
    """TAC's slowdown against the noise in its time oracle."""
    fig, ax = viz.figure()
    ax.plot(result.sigma, 100 * result.mean_loss, marker="o", label="TAC, mean over noisy oracles")
    ax.plot(result.sigma, 100 * result.worst_loss, marker="s", label="TAC, worst")
    ax.axhline(100 * result.random_loss, color="tab:red", ls="--", label="random order")
    ax.set_xlabel("oracle noise sigma (log-normal)")
    ax.set_ylabel("slowdown vs exact oracle (%)")
    ax.legend(fontsize=8)
    return fig


def heuristic_cost(cost: HeuristicCost) -> Figure:
    """Ordering time against graph size: TIC, incremental TAC and the naive TAC (best run each), and the
    naive TAC's extrapolation to the target graph (geometric mean of the runs' fits, range of the runs)."""
    fig, ax = viz.figure()
    ax.loglog(cost.ops, cost.tic_s, marker="o", label="TIC")
    ax.loglog(cost.ops, cost.tac_s, marker="s", label="TAC, incremental")
    ax.loglog(cost.ops, cost.naive_s, marker="^", label="TAC, recomputed every step")
    target = cost.naive_target_s
    middle = float(np.exp(np.log(target).mean()))
    ax.errorbar([cost.target_ops], [middle], yerr=[[middle - target.min()], [target.max() - middle]], marker="^",
                mfc="none", capsize=3, ls="none", color="tab:green", label=f"extrapolated, {cost.target_recvs} recvs")
    ax.loglog([cost.target_ops], [cost.target_tac_runs_s.min()], marker="s", mfc="none", ls="none", color="tab:orange")
    ax.set_xlabel("compute ops in the graph")
    ax.set_ylabel("ordering time (s)")
    ax.legend(fontsize=8)
    return fig


def real_server(trials: dict[str, Trial]) -> Figure:
    """Real loopback iteration times per scheduler, warm-up iterations marked."""
    fig, ax = viz.figure(width=6)
    for name, trial in trials.items():
        ax.plot(np.arange(trial.iteration_s.size), 1e3 * trial.iteration_s, marker="o", label=name)
    first = next(iter(trials.values()))
    ax.axvspan(-0.5, first.warmup - 0.5, color="grey", alpha=0.2, label="warm-up")
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("iteration time (ms)")
    ax.legend(fontsize=8)
    return fig


def bars(values: dict, ylabel: str) -> Figure:
    """Horizontal bars of named values."""
    fig, ax = viz.figure(width=6, height=0.35 * len(values) + 1)
    names = list(values)
    ax.barh(names, [values[n] for n in names], color="tab:blue")
    ax.invert_yaxis()
    ax.set_xlabel(ylabel)
    return fig


def gain_sweep(sweeps: Iterable[GainSweep], paper: dict | None = None) -> Figure:
    """The models' geometric-mean throughput over random order against link bandwidth, one line per
    `experiments.GainSweep` (mean over seeds, bars from the lowest to the highest seed), and the
    paper's "up to" figure per mode (`paper`: {mode: ratio}) as a dotted line."""
    fig, ax = viz.figure()
    for s in sweeps:
        gm = s.geomean
        mean = gm.mean(axis=1)
        line = ax.errorbar(s.bandwidth_gbps, mean, yerr=[mean - gm.min(axis=1), gm.max(axis=1) - mean],
                           marker="o", capsize=3, label=f"{s.mode}, TAC (geometric mean of {len(s.models)} models, "
                           f"{gm.shape[1]} seeds)")
        if paper and s.mode in paper:
            ax.axhline(paper[s.mode], color=line[0].get_color(), ls=":", lw=1,
                       label=f"{s.mode}, paper: up to {paper[s.mode]:.3f}x")
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("link bandwidth (Gbit/s), 10 GFLOP/s per worker")
    ax.set_ylabel("throughput / random order")
    ax.legend(fontsize=7)
    return fig


def straggler_sweep(sweep: StragglerSweep) -> Figure:
    """Straggler spread (ms) of random order and TAC against transfer jitter (mean over seeds)."""
    fig, ax = viz.figure()
    for name, spread in (("random", sweep.random_s), ("tac", sweep.tac_s)):
        ax.plot(sweep.jitter, 1e3 * spread.mean(axis=1), marker="o", label=name)
    ax.set_xlabel("transfer-time jitter (log-normal sigma)")
    ax.set_ylabel("slowest - fastest worker (ms)")
    ax.legend(fontsize=8)
    return fig


def server_sweep(sweep: ServerSweep) -> Figure:
    """Iteration time against the number of parameter servers, one line per placement and card cap."""
    fig, ax = viz.figure(width=6, height=3.2)
    styles = ("-", "--", ":", "-.")
    for a, name in enumerate(sweep.placements):
        for b, nic in enumerate(sweep.nic_gbps):
            card = "no card cap" if nic is None else f"card {nic:g} Gbit/s"
            ax.plot(sweep.servers, 1e3 * sweep.iteration_s[a, b], marker="o", ls=styles[b % len(styles)],
                    color=f"C{a}", label=f"{name}, {card}")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sweep.servers, [str(p) for p in sweep.servers])
    ax.set_xlabel("parameter servers")
    ax.set_ylabel("mean iteration time (ms)")
    ax.set_title(f"{sweep.graph}, {sweep.scheduler}: adding servers, by placement")
    ax.legend(fontsize=8)
    return fig


def order_study(study: OrderStudy) -> Figure:
    """Per random DAG: layer order's and TAC's time over the brute-force best (points above the
    diagonal: TAC is closer to the optimum than layer order)."""
    fig, ax = viz.figure(width=4.6, height=4.0)
    layer, tac = study.order_s[:, study.orders.index("layer")], study.order_s[:, study.orders.index("tac")]
    x, y = tac / study.best_s, layer / study.best_s
    ax.scatter(x, y, s=14, alpha=0.7)
    top = max(x.max(), y.max()) * 1.02
    ax.plot([1, top], [1, top], color="k", lw=0.8, ls=":")
    ax.set_xlabel("TAC time / best order")
    ax.set_ylabel("layer-order time / best order")
    wins, losses = study.wins_losses()
    ax.set_title(f"{len(study.seeds)} layered DAGs: TAC {wins} wins, {losses} losses", fontsize=9)
    return fig


def partition_study(study: PartitionStudy) -> Figure:
    """Iteration time of each way of sending the graph, grouped by parameter-server count."""
    fig, ax = viz.figure(width=8, height=3.0)
    n = len(study.columns)
    width = 0.8 / n
    for k, name in enumerate(study.columns):
        ax.bar(np.arange(study.servers.size) + (k - n / 2 + 0.5) * width, 1e3 * study.iteration_s[:, k], width,
               label=name)
    ax.set_xticks(np.arange(study.servers.size), [f"{p} PS" for p in study.servers])
    ax.set_ylabel("iteration time (ms)")
    ax.set_title(f"{study.graph}: {study.recvs} tensors, {study.partitions} partitions", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    return fig


def explore_timeline(tl: Timeline) -> Figure:
    """The timeline widget's figure: `gantt` of `experiments.explore_timeline`'s result."""
    return gantt(tl)
