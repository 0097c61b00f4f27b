"""Paper 3: the notebook's experiment functions and plots, at toy sizes."""

import matplotlib
import numpy as np

matplotlib.use("Agg")

from mlsys_core.fl import experiments as E  # noqa: E402
from mlsys_core.fl import plots  # noqa: E402
from mlsys_core.fl.actors import Topology  # noqa: E402
from mlsys_core.fl.population import PopulationConfig, make_population  # noqa: E402
from mlsys_core.fl.protocol import RoundConfig, SteeringConfig, simulate  # noqa: E402

POP = make_population(PopulationConfig(num_devices=20_000), seed=6)
CFG = RoundConfig(goal_count=50, min_reports=40)


def test_diurnal_swing_and_dashboard_series_add_up():
    swing = E.diurnal_swing(POP, step_h=1.0)
    assert len(swing["hours"]) == 24 and swing["ratio"] == swing["eligible"].max() / swing["eligible"].min()
    res = simulate(POP, CFG, SteeringConfig(), 3 * 3600.0, 0)
    series = E.dashboard_series(res)
    assert series["committed"].sum() + series["abandoned"].sum() == len(res.counters)
    assert series["accepted"].sum() == res.counters.column("accepted").sum()
    shares = E.session_outcomes(res)
    assert abs(sum(shares.values()) - 1.0) < 1e-9
    assert plots.dashboard(np.arange(3), series, res.checkins_per_bin, 60.0) is not None
    assert plots.diurnal(swing) is not None


def test_commit_share_curves_fall_with_drop_out():
    curves = E.commit_share_curves(POP, CFG, np.array([1.1, 1.2]), (0.0, 0.3), rounds=40, seed=0)
    assert np.all(curves[0.0] >= curves[0.3])
    assert plots.commit_share(np.array([1.1, 1.2]), curves, 50) is not None


def test_steering_comparison_and_fault_table_shapes():
    steer = E.steering_comparison(POP, CFG, hours=1.0, seed=0, modes=("none", "spread"))
    assert steer["spread"]["mean_per_s"] < steer["none"]["mean_per_s"]
    assert plots.steering(steer, 60.0) is not None
    rows = E.fault_table(POP, CFG, Topology(), 1800.0, hours=1.0, seed=0, kinds=("selector", "coordinator"))
    assert [r["crash"] for r in rows] == ["none", "selector", "coordinator"]
    assert rows[0]["devices_lost"] == 0 and rows[2]["respawned_by"] == "selector"
    topo = E.topology_comparison(POP, CFG, 1800.0, hours=1.0, seed=0)
    assert topo["two actors"]["messages_per_round"] < topo["four actors"]["messages_per_round"]


def test_schedule_leak_and_explore():
    res = simulate(POP, CFG, SteeringConfig(), 24 * 3600.0, 0, traced_devices=300)
    ids, _, codes = res.log.arrays()
    victims = np.unique(ids)[:20]
    leak = E.schedule_leak(res, POP, victims)
    assert leak["error_h"].shape == (20,) and np.all(leak["error_h"] <= 12)
    assert np.median(leak["error_h"]) < 1.0  # the attack recovers the window (a random guess: ~6 h off)
    out = E.explore(num_devices=5000, goal_count=50, hours=1.0)
    assert out["class_mix"].shape == (20, 10) and out["class_mix"].sum() == 1797
    assert plots.explore(out) is not None


def test_training_and_leak_plots_draw():
    curve = {"accuracy": np.array([0.2, 0.5, 0.7]), "time_s": np.array([60.0, 120.0, 180.0])}
    assert plots.training({"discard": curve, "recycle": curve}) is not None
    fig = plots.schedule_leak(np.array([22.0, 23.5, 1.0]), (22.0, 7.0), (22.0, 3.0), np.arange(24), 1.0)
    assert len(fig.axes) == 2
