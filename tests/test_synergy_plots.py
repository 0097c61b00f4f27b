"""Notebook 05's figures draw what the synergy results hold, and its explorers' compute."""

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from mlsys_core.synergy import bf16, cast_as_fl, fault_tolerance, nvm, plots, tictac_links  # noqa: E402


def _heights(ax) -> list[float]:
    return [p.get_height() for p in ax.patches]


def test_cast_and_bn_figures_draw_the_means_over_seeds():
    cast = cast_as_fl.CastAsFL({"IID, everyone": np.array([[0.1, 0.5], [0.3, 0.7]])}, np.array([[0.2, 0.8]]), {})
    ax = plots.cast_as_fl(cast).axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.2, 0.8])  # the reference first
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [0.2, 0.6])
    ax = plots.bn_groups({1: np.array([0.5, 0.7]), 8: np.array([0.9, 0.9])}, alpha=0.1).axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata().astype(float), [0.6, 0.9])
    assert "Dirichlet 0.1" in ax.get_title() and "2 seeds" in ax.get_ylabel()


def test_bf16_figures_and_explorer():
    point = bf16.explore_bf16(model_millions=1.4)
    assert point.phones.saving.shape == (20_000,) and point.pods.chips.tolist() == [256, 1024, 4096]
    assert point.phones.chips is None and np.all(np.diff(point.pods.saving) > 0)  # bigger pods, more comm
    ax = plots.explore_bf16(point).axes[0]
    assert [round(line.get_xdata()[0], 9) for line in ax.lines[1:]] == [round(100 * s, 9) for s in point.pods.saving]
    ax = plots.bf16_pod_vs_phones(point.pods, point.phones).axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), 100 * point.pods.saving)
    grid = bf16.bf16_pod_vs_phone((70.0, 330.0), (0.4,), devices=2000, seeds=(0,))
    ax = plots.bf16_gap(grid).axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), grid.gap_points.mean(axis=2)[:, 0])
    with pytest.raises(ValueError, match="model_millions"):
        bf16.explore_bf16(model_millions=0.0)


def test_fault_figures_and_explorer():
    point = fault_tolerance.explore_faults(-2.0, checkpoint_interval=20, restart_steps=10.0, seeds=(0, 1))
    assert set(point.goodput) == set(fault_tolerance.FAULT_POLICIES)
    assert point.config.failure_rate == pytest.approx(0.01)
    assert all(v.shape == (2,) and np.all((v > 0) & (v <= 1)) for v in point.goodput.values())
    np.testing.assert_allclose(_heights(plots.explore_faults(point).axes[0]),
                               [v.mean() for v in point.goodput.values()])
    goodput = fault_tolerance.goodput_grid((0.001, 0.01), (10, 50), seeds=(0,))
    ax = plots.fault_goodput(goodput).axes[0]
    assert len(ax.lines) == 3 and "every 50 steps" in ax.get_legend().get_texts()[2].get_text()
    losses = fault_tolerance.FaultLoss(np.array([0.001, 0.01]), np.array([[1.0, 1.2], [1.1, 1.3]]),
                                       np.array([[1.0, 1.0], [2.0, 2.0]]),
                                       fault_tolerance.FaultConfig(checkpoint_interval=10))
    ax = plots.fault_loss(losses).axes[0]
    assert "every 10 steps" in ax.get_legend().get_texts()[1].get_text()
    with pytest.raises(ValueError, match="failure_chance_log10"):
        fault_tolerance.explore_faults(0.5)


@pytest.mark.parametrize("explore, kwargs, error, said", [
    (bf16.explore_bf16, {"phone_link_factor": 0.0}, ValueError, r"^phone_link_factor must be > 0, got 0.0"),
    (bf16.explore_bf16, {"pod_link_gb_per_s": None}, TypeError, "^pod_link_gb_per_s must be a number, got None"),
    (fault_tolerance.explore_faults, {"failure_chance_log10": 0.0}, ValueError,
     "^failure_chance_log10 must be < 0, got 0.0"),
    (nvm.explore_nvm, {"dram_usd_per_gb": None}, TypeError, "^dram_usd_per_gb must be a number, got None"),
])
def test_explorers_name_the_argument_they_refuse(explore, kwargs, error, said):
    """An explorer checks its own arguments, so a refusal names the widget's control (not `link_factor` or
    `failure_rate` of a function it calls) and comes before any division by it."""
    with pytest.raises(error, match=said):
        explore(**kwargs)


def test_the_nvm_explorer_computes_in_python_floats():
    """A float32 price gives the same bill as a Python float: the explorer computes in Python floats."""
    assert (nvm.explore_nvm(np.float32(5.0), 8.0, 256).replicated.memory_bill_saving
            == nvm.explore_nvm(5.0, 8.0, 256).replicated.memory_bill_saving)


def test_nvm_and_tictac_explorers_and_figures():
    state = nvm.explore_nvm(dram_usd_per_gb=6.25, price_ratio=10.0, chips=64)
    assert state.chips == 64 and state.cost.nvm_plus_cache_usd == pytest.approx(state.cost.all_dram_usd / 10)
    slowdown, bill = plots.explore_nvm(state).axes
    assert _heights(slowdown) == [state.replicated.slowdown, state.wus.slowdown]
    assert "64 chips" in slowdown.get_title() and "$" not in bill.get_title()  # a "$" pair would be mathtext
    with pytest.raises(ValueError, match="price_ratio"):
        nvm.explore_nvm(price_ratio=0.0)
    link = tictac_links.TicTacVsLink(np.array([1.0, 0.1]), np.array([1.2, 1.05]), np.array([0.5, 0.1]),
                                     np.array([0.4, 0.9]))
    gain = plots.tictac_vs_link(link).axes[0]
    np.testing.assert_allclose(gain.lines[0].get_ydata(), [20.0, 5.0])
    bars = plots.explore_tictac(link).axes[0]
    assert _heights(bars) == [1.2, 1.5] and bars.get_title() == "transfers 40% of U"
    one = tictac_links.explore_tictac(downlink_mbit=16.0)
    assert one.bandwidth_gbps.tolist() == [0.016] and one.tac_speedup[0] <= 1 + one.headroom[0] + 1e-9
