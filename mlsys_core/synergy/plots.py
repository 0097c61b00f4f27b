"""Figures for notebook 05, the synergies: results of the synergy modules in, the Figure made by `viz.figure`
out (not registered with pyplot: a notebook shows it where a cell returns or displays it); nothing is computed
here. `explore_<what>` draws the result of the module's `explore_<what>`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mlsys_core import viz

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mlsys_core.synergy.bf16 import Bf16PodVsPhone, Bf16Point, Bf16Saving
    from mlsys_core.synergy.cast_as_fl import CastAsFL
    from mlsys_core.synergy.fault_tolerance import FaultGoodput, FaultLoss, FaultPoint
    from mlsys_core.synergy.nvm import NVMOptimizerState
    from mlsys_core.synergy.tictac_links import TicTacVsLink


def cast_as_fl(cast: CastAsFL) -> Figure:
    """`cast_as_fl.CastAsFL`: test accuracy per round of each FL configuration against data parallelism."""
    fig, ax = viz.figure(width=6)
    ax.plot(cast.reference.mean(axis=0), "k-", lw=2, label="data parallel, 8 devices")
    for name, acc in cast.accuracy.items():
        ax.plot(acc.mean(axis=0), label=f"FL, 100 devices: {name}")
    ax.axhline(cast.reference[:, -1].mean(), color="k", lw=0.6, ls=":")
    ax.set(xlabel="rounds (= data-parallel steps)", ylabel="test accuracy",
           title="digits cast as FL: one local step per round")
    ax.legend(fontsize=7)
    return fig


def bf16_pod_vs_phones(pod: Bf16Saving, phones: Bf16Saving) -> Figure:
    """bf16's saving (`bf16.Bf16Saving`s) on pods of each size against the phones' spread."""
    fig, ax = viz.figure(width=6)
    ax.plot(pod.chips, pod.saving * 100, "o-", label="TPU pod (BERT-large)")
    ax.axhline(np.median(phones.saving) * 100, color="C1", label="phones, median")
    ax.fill_between(pod.chips, np.percentile(phones.saving, 10) * 100, np.percentile(phones.saving, 90) * 100,
                    color="C1", alpha=0.2, label="phones, 10th-90th percentile")
    ax.set(xscale="log", xlabel="chips in the pod", ylabel="time saved by bf16 (%)")
    ax.legend(fontsize=8)
    return fig


def bf16_gap(grid: Bf16PodVsPhone) -> Figure:
    """`bf16.Bf16PodVsPhone`: the median phone's saving minus the pod's over link bandwidth, per utilisation."""
    fig, ax = viz.figure(width=6)
    gap = grid.gap_points.mean(axis=2)
    for j, u in enumerate(grid.utilisation):
        ax.plot(grid.link_gb_per_s, gap[:, j], "o-", label=f"utilisation {u:.1f}")
    ax.axhline(0, color="k", lw=0.8)
    ax.axhspan(0, 2, color="C2", alpha=0.15, label="partly band (0-2 points)")
    ax.set(xlabel="pod link bandwidth per chip (GB/s)", ylabel="phone minus pod saving (points)",
           title=f"bf16: does FL gain more than a {grid.pod_chips}-chip pod?")
    ax.legend(fontsize=7)
    return fig


def explore_bf16(point: Bf16Point) -> Figure:
    """`bf16.Bf16Point`: the phones' savings as a histogram, each pod's as a line."""
    fig, ax = viz.figure(width=6)
    ax.hist(point.phones.saving * 100, bins=60, color="C1", alpha=0.7, label="phones")
    ax.axvline(np.median(point.phones.saving) * 100, color="C1", lw=2, label="median phone")
    for c, s, style in zip(point.pods.chips, point.pods.saving, (":", "--", "-")):
        ax.axvline(s * 100, color="C0", lw=1.5, ls=style, label=f"pod, {c} chips")
    ax.set(xlim=(0, None), xlabel="time saved by bf16 (%)", ylabel="devices",
           title="phones (histogram) vs pods (blue lines)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    return fig


def bn_groups(accuracy: dict, alpha: float) -> Figure:
    """Test accuracy by BN group size (`on_devices.bn_on_devices`, mean and spread over seeds) on devices
    whose digits were split with Dirichlet(`alpha`)."""
    fig, ax = viz.figure(width=5)
    groups = list(accuracy)
    ax.errorbar(groups, [accuracy[g].mean() for g in groups], yerr=[accuracy[g].std() for g in groups], fmt="o-")
    ax.set(xscale="log", xticks=groups, xticklabels=[str(g) for g in groups],
           xlabel="devices whose batch statistics are averaged (g)",
           ylabel=f"test accuracy ({len(accuracy[groups[0]])} seeds)",
           title=f"batch norm on non-IID devices (Dirichlet {alpha:g})")
    return fig


def fault_goodput(goodput: FaultGoodput) -> Figure:
    """`fault_tolerance.FaultGoodput`: quorum commit against restarts at each checkpoint interval, over
    failure chance."""
    fig, ax = viz.figure(width=6)
    ax.plot(goodput.failure_rates, goodput.quorum[:, 0].mean(axis=1), "o-", color="k", label="quorum commit")
    for k, interval in enumerate(goodput.checkpoint_intervals):
        ax.plot(goodput.failure_rates, goodput.restart[:, k].mean(axis=1), "s--",
                label=f"restart, checkpoint every {interval} steps")
    ax.set(xscale="log", xlabel="failure chance per replica and step", ylabel="goodput",
           title="8 replicas: commit with the survivors vs restart")
    ax.legend(fontsize=7)
    return fig


def fault_loss(losses: FaultLoss) -> Figure:
    """`fault_tolerance.FaultLoss`: final test loss of each policy (mean and spread over seeds) over
    failure chance."""
    fig, ax = viz.figure(width=6)
    restart = f"restart, checkpoint every {losses.config.checkpoint_interval} steps"
    for policy, style, label in (("quorum", "o-k", "quorum commit"), ("restart", "s--C1", restart)):
        loss = losses.of(policy)
        ax.errorbar(losses.failure_rates, loss.mean(axis=1), yerr=loss.std(axis=1), fmt=style, label=label)
    ax.set(xscale="log", xlabel="failure chance per replica and step",
           ylabel=f"test loss ({losses.quorum.shape[1]} seeds)",
           title=f"digits MLP, WUS on {losses.config.replicas} devices, {losses.config.budget_steps:g} step times")
    ax.legend(fontsize=7)
    return fig


def explore_faults(point: FaultPoint) -> Figure:
    """`fault_tolerance.FaultPoint`: each policy's goodput (mean and spread over seeds) at one setting."""
    fig, ax = viz.figure(width=5)
    runs = point.goodput
    ax.bar(list(runs), [v.mean() for v in runs.values()], yerr=[v.std() for v in runs.values()], color=["k", "C1"])
    ax.set(ylim=(0, 1.05), ylabel=f"goodput ({len(next(iter(runs.values())))} seeds)",
           title=f"failure chance {point.config.failure_rate:.1e} per replica-step")
    return fig


def explore_nvm(state: NVMOptimizerState) -> Figure:
    """`nvm.NVMOptimizerState`: each layout's step with its state on NVM, and the memory bill it saves."""
    fig, axes = viz.figure(width=7, ncols=2)
    layouts = ("replicated", "wus")
    axes[0].bar(layouts, [state.replicated.slowdown, state.wus.slowdown], color=["C1", "C0"])
    axes[0].set(yscale="log", ylabel="step time with NVM state (x)", title=f"{state.chips} chips")
    axes[1].bar(layouts, [100 * state.replicated.memory_bill_saving, 100 * state.wus.memory_bill_saving],
                color=["C1", "C0"])
    axes[1].set(ylabel="memory bill saved (%)",
                title=f"all HBM moved: {state.cost.all_dram_usd:,.0f} -> {state.cost.nvm_plus_cache_usd:,.0f} USD")
    return fig


def tictac_vs_link(result: TicTacVsLink) -> Figure:
    """`tictac_links.TicTacVsLink`: TAC's gain and the headroom bound as the link slows."""
    fig, ax = viz.figure(width=6)
    ax.plot(result.bandwidth_gbps, (result.tac_speedup - 1) * 100, "o-", label="TAC over random")
    ax.plot(result.bandwidth_gbps, result.headroom * 100, "s--", label="headroom S (upper bound)")
    ax.set(xscale="log", xlabel="link bandwidth (Gbit/s)", ylabel="throughput gain (%)")
    ax.invert_xaxis()
    ax.legend(fontsize=8)
    return fig


def explore_tictac(result: TicTacVsLink, claim_gain: float = 1.10) -> Figure:
    """`tictac_links.TicTacVsLink` at one link: TAC over random against perfect overlap, and the claim's line."""
    fig, ax = viz.figure(width=5)
    ax.bar(["TAC over random", "perfect overlap (1 + S)"], [result.tac_speedup[0], 1 + result.headroom[0]],
           color=["C0", "0.7"])
    ax.axhline(claim_gain, color="k", lw=0.8, ls=":", label=f"the claim's {claim_gain - 1:.0%}")
    ax.set(ylim=(0.95, None), ylabel="throughput (x random order)",
           title=f"transfers {result.comm_share[0]:.0%} of U")
    ax.legend(fontsize=7)
    return fig
