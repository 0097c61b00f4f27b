"""Paper 3: the notebook's experiment functions and plots, at toy sizes."""

import dataclasses

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

from mlsys_core.fl import experiments as E  # noqa: E402
from mlsys_core.fl import plots  # noqa: E402
from mlsys_core.fl.actors import Message  # noqa: E402
from mlsys_core.fl.faults import Topology  # noqa: E402
from mlsys_core.fl.population import PopulationConfig, make_population  # noqa: E402
from mlsys_core.fl.protocol import simulate  # noqa: E402
from mlsys_core.fl.rounds import RoundConfig  # noqa: E402
from mlsys_core.fl.steering import SteeringConfig  # noqa: E402

POP = make_population(PopulationConfig(num_devices=20_000), seed=6)
CFG = RoundConfig(goal_count=50, min_reports=40)


def _bar_heights(ax) -> np.ndarray:
    return np.array([p.get_height() for p in ax.patches])


def test_diurnal_swing_and_dashboard_series_add_up_and_plot_what_they_hold():
    swing = E.diurnal_swing(POP, step_h=1.0)
    assert len(swing.hours) == 24 and swing.ratio == swing.eligible.max() / swing.eligible.min()
    res = simulate(POP, CFG, SteeringConfig(), 3 * 3600.0, 0)
    series = E.dashboard_series(res)
    assert series.committed.sum() + series.abandoned.sum() == len(res.counters)
    assert series.accepted.sum() == res.counters.column("accepted").sum()
    shares = E.session_outcomes(res)
    assert abs(sum(dataclasses.astuple(shares)) - 1.0) < 1e-9
    fig = plots.dashboard(np.arange(3), series, res.checkins_per_bin, 60.0)
    rounds, devices, load = fig.axes
    heights = _bar_heights(rounds)  # committed bars first, abandoned stacked on them
    assert np.allclose(heights[:3], series.committed) and np.allclose(heights[3:], series.abandoned)
    assert [t.get_text() for t in devices.get_legend().get_texts()] == ["accepted", "late", "dropped"]
    assert np.allclose(_bar_heights(devices)[:3], series.accepted / 1e3)
    assert np.allclose(load.lines[0].get_ydata(), res.checkins_per_bin)
    fig = plots.diurnal(swing)
    line = fig.axes[0].lines[0]
    assert np.allclose(line.get_xdata(), swing.hours) and np.allclose(line.get_ydata(), swing.eligible / 1e3)
    assert f"{swing.ratio:.1f}x" in fig.axes[0].get_title()


def test_commit_share_curves_fall_with_drop_out_and_plot_one_line_each():
    factors = np.array([1.1, 1.2])
    curves = E.commit_share_curves(POP, CFG, factors, (0.0, 0.3), rounds=40, seed=0)
    assert np.all(curves[0.0] >= curves[0.3]) and curves[0.3][0] < curves[0.0][0]
    ax = plots.commit_share(factors, curves, 50).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["drop-out 0%", "drop-out 30%", "paper: 130%"]
    assert np.allclose(ax.lines[1].get_ydata(), curves[0.3]) and np.allclose(ax.lines[2].get_xdata(), 1.3)
    assert ax.get_title() == "goal count 50"


def test_over_selection_over_seeds_rises_with_the_factor_and_falls_with_drop_out():
    pc, every = PopulationConfig(num_devices=5000), RoundConfig(goal_count=50)  # every report needed
    at_13 = E.over_selection_over_seeds(pc, every, 1.3, 0.1, rounds=30, seeds=range(5))
    at_10 = E.over_selection_over_seeds(pc, every, 1.0, 0.1, rounds=30, seeds=range(5))
    heavy = E.over_selection_over_seeds(pc, every, 1.3, 0.4, rounds=30, seeds=range(5))
    assert at_13.shape == (5,) and at_13.min() > 0.8 and at_10.max() < 0.1 and heavy.max() < 0.2
    with pytest.raises(ValueError, match="seeds"):
        E.over_selection_over_seeds(pc, CFG, 1.3, 0.1, rounds=30, seeds=())
    with pytest.raises(ValueError, match="drop_out"):
        E.over_selection_over_seeds(pc, CFG, 1.3, 1.0, rounds=30, seeds=(0,))


def test_day_over_seeds_shares_partition_the_selected_and_the_gap_is_the_largest_miss():
    days = E.day_over_seeds(PopulationConfig(num_devices=5000), RoundConfig(goal_count=30), seeds=(0, 1))
    assert np.allclose(days.accepted + days.late + days.interrupted, 1.0)
    paper = E.PAPER_SESSION_OUTCOMES
    gap = np.max([np.abs(days.accepted - paper["accepted"]), np.abs(days.late - paper["late"]),
                  np.abs(days.interrupted - paper["interrupted"])], axis=0)
    assert np.allclose(days.outcome_gap, gap)
    assert np.all(days.eligible_swing > 2.0) and np.all(days.participation_swing > 1.0)
    assert days.accepted[0] != days.accepted[1]  # the seed draws a different population and day


def test_steering_comparison_cuts_load_and_steering_over_seeds_agrees():
    steer = E.steering_comparison(POP, CFG, hours=1.0, seed=0, modes=("none", "spread"))
    assert steer["spread"].mean_per_s < steer["none"].mean_per_s
    ax = plots.steering(steer, 60.0).axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("none: mean") and f"{steer['spread'].committed} rounds" in labels[1]
    assert np.allclose(ax.lines[0].get_ydata(), steer["none"].checkins_per_s)
    out = E.steering_over_seeds(PopulationConfig(num_devices=20_000), CFG, hours=2.0, seeds=(0, 1))
    assert out.load_per_round_cut.shape == (2,) and np.all(out.load_per_round_cut > 1.5)
    assert np.all(out.committed_ratio > 0.7)


def test_fault_table_counts_come_from_the_actor_log_and_all_behaviours_hold():
    runs = E.fault_runs(POP, CFG, Topology(), 1800.0, hours=1.0, seed=0)
    rows = {r.crash: r for r in E.fault_table(runs)}
    assert list(rows) == ["none", *E.FAULT_KINDS]
    assert rows["none"].devices_lost == 0 and rows["none"].respawns == 0
    assert rows["coordinator"].respawned_by == "selector" and rows["coordinator"].respawns == 1
    assert rows["coordinator"].lock_attempts == 4  # every live Selector asked, as the log shows
    assert rows["aggregator"].actor == "aggregator[1]" and rows["aggregator"].respawned_by == "master_aggregator"
    held = E.fault_behaviours(runs)
    assert len(held) == 9 and all(held.values()), held
    shares = E.fault_semantics_over_seeds(PopulationConfig(num_devices=20_000), CFG, Topology(), 1800.0, 1.0, (0, 1))
    assert shares.tolist() == [1.0, 1.0]


def test_fault_behaviours_fail_when_the_log_shows_otherwise():
    runs = E.fault_runs(POP, CFG, Topology(), 1800.0, hours=1.0, seed=0)
    sel = runs["selector"]
    stray = Message(1800.0, sel.trace[-1].round, "selector[2]", "-", "lost", np.array([1, 2]))  # not the victim
    twice = Message(1900.0, 0, "selector[3]", "coordinator[0]", "respawn", np.zeros(0, np.int64))
    broken = dict(runs, selector=dataclasses.replace(sel, trace=[*sel.trace, stray]),
                  coordinator=dataclasses.replace(runs["coordinator"], trace=[*runs["coordinator"].trace, twice]))
    held = E.fault_behaviours(broken)
    assert not held["selector crash loses only its own devices"]
    assert not held["coordinator respawned exactly once, by a selector"]
    assert sum(held.values()) == 7


def test_topology_comparison_reads_hops_from_the_log():
    topo = E.topology_comparison(POP, CFG, 1800.0, hours=1.0, seed=0)
    four, two = topo["four actors"], topo["two actors"]
    assert two.messages_per_round < four.messages_per_round
    assert four.hops_per_report == 3.0 and two.hops_per_report == 1.0  # forward + partial + result vs partial
    assert two.selector_crash_devices_lost > four.selector_crash_devices_lost


def test_population_check_in_jitter_delays_the_first_check_in_and_zero_changes_nothing():
    base = make_population(PopulationConfig(num_devices=2000), seed=3)
    zero = make_population(PopulationConfig(num_devices=2000, checkin_jitter_h=0.0), seed=3)
    late = make_population(PopulationConfig(num_devices=2000, checkin_jitter_h=1.0), seed=3)
    for f in dataclasses.fields(base):
        assert np.array_equal(getattr(base, f.name), getattr(zero, f.name))
        if f.name != "checkin_delay_h":
            assert np.array_equal(getattr(base, f.name), getattr(late, f.name))
    assert not base.checkin_delay_h.any()
    assert 0.8 < late.checkin_delay_h.mean() < 1.2 and np.all(late.checkin_delay_h <= 0.8 * late.window_length_h)
    from mlsys_core.fl.population import HOUR_S, is_eligible, next_eligible_s

    # A device whose window opens at t = open_s calls in only its delay later.
    d = int(np.flatnonzero(late.unmetered & (late.checkin_delay_h > 0.2))[0])
    open_s = ((late.window_start_h[d] - late.tz_offset_h[d]) % 24.0) * HOUR_S
    assert is_eligible(base, open_s + 1.0, [d])[0] and not is_eligible(late, open_s + 1.0, [d])[0]
    assert next_eligible_s(late, open_s + 1.0, [d])[0] == pytest.approx(open_s + late.checkin_delay_h[d] * HOUR_S,
                                                                      abs=2.0)
    with pytest.raises(ValueError, match="checkin_jitter_h"):
        PopulationConfig(checkin_jitter_h=-1.0)


def test_recycling_over_seeds_saves_the_wasted_compute():
    from mlsys_core.fl.fedavg import ModelConfig
    from mlsys_core.fl.training import TrainConfig

    rc = RoundConfig(goal_count=10, min_reports=8, reporting_window_s=25.0, checkpoint_bytes=10_000,
                     update_bytes=10_000)
    task = TrainConfig(num_devices=300, examples_per_device=16, hours=3.0, rounds=6, eval_every=0)
    out = E.recycling_over_seeds(rc, ModelConfig(batch_size=4), task, seeds=(0, 1),
                                 steering=SteeringConfig(cooldown_s=1800.0))
    assert out.accuracy_gain.shape == (2,) and np.all(np.abs(out.accuracy_gain) < 0.5)
    assert np.all(out.wasted_compute_min > 0)  # discarding threw late work away on both seeds


def test_server_optimizer_study_compares_on_the_same_rounds():
    from mlsys_core.fl import fedavg as F
    from mlsys_core.fl.training import TrainConfig

    rc = RoundConfig(goal_count=10, min_reports=8, reporting_window_s=60.0, checkpoint_bytes=10_000,
                     update_bytes=10_000)
    task = TrainConfig(num_devices=300, alpha=0.1, examples_per_device=16, hours=3.0, rounds=8, eval_every=2)
    opts = {"FedAvg": F.FedAvg(), "FedAdam": F.FedAdam(learning_rate=0.05)}
    st = E.server_optimizer_study(opts, rc, SteeringConfig(cooldown_s=1800.0), task, F.ModelConfig(batch_size=4),
                                  target=0.3, seeds=(0, 1))
    assert st.rounds_to_target.shape == (2, 2) and np.all(st.rounds_to_target >= 1)
    assert np.array_equal(st.speedup("FedAdam"), st.rounds_to_target[0] / st.rounds_to_target[1])
    assert np.all(st.eval_rounds == 4) and np.all((st.eval_gap >= 0) & (st.eval_gap < 0.5))
    assert set(st.first_seed) == {"FedAvg", "FedAdam"} and st.first_seed["FedAvg"].version[-1] == 8
    with pytest.raises(ValueError, match="reference optimizer"):
        E.server_optimizer_study({"FedAdam": F.FedAdam()}, rc, SteeringConfig(), task, F.ModelConfig(), 0.5, (0,))


def test_explore_rounds_and_its_plot():
    out = E.explore_rounds(num_devices=5000, goal_count=50, hours=1.0)
    assert out.class_mix.shape == (E.EXPLORE_CLIENTS, 10) and out.class_mix.sum() == 1797
    fig = plots.explore_rounds(out)
    assert fig.axes[0].get_title().startswith(f"{len(out.result.counters)} rounds")
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["accepted", "late", "dropped", "lost"]
    assert np.allclose(_bar_heights(fig.axes[1]), dataclasses.astuple(out.outcomes))
    assert np.array_equal(fig.axes[2].images[0].get_array(), out.class_mix)


def test_training_and_leak_plots_draw_their_inputs():
    from types import SimpleNamespace

    nan = np.nan
    curve = SimpleNamespace(accuracy=np.array([0.2, 0.2, 0.7]), time_s=np.array([3600.0, 7200.0, 10800.0]),
                            committed=np.array([True, False, True]), version=np.array([1, 1, 2]),
                            federated_accuracy=np.array([0.25, nan, nan]))
    other = SimpleNamespace(accuracy=np.array([0.1, 0.4, 0.8]), time_s=np.array([60.0, 120.0, 180.0]),
                            committed=np.ones(3, bool), version=np.array([1, 2, 3]), federated_accuracy=np.full(3, nan))
    by_round, by_time = plots.training({"discard": curve, "recycle": other}).axes
    assert [t.get_text() for t in by_round.get_legend().get_texts()] == ["discard", "recycle"]
    assert np.allclose(by_round.lines[0].get_xdata(), [1, 2]) and np.allclose(by_round.lines[0].get_ydata(), [0.2, 0.7])
    assert np.allclose(by_round.lines[1].get_ydata(), [0.25])  # the federated-evaluation dot
    assert np.allclose(by_round.lines[2].get_ydata(), other.accuracy)
    assert np.allclose(by_time.lines[0].get_xdata(), [1.0, 3.0])  # simulated hours of committed rounds
    fig = plots.schedule_leak(np.array([22.0, 23.5, 1.0]), (22.0, 7.0), (22.0, 3.0), np.arange(24), 1.0)
    user, agg = fig.axes
    assert [t.get_text() for t in user.get_legend().get_texts()] == ["true sleep window", "inferred"]
    assert np.allclose(_bar_heights(agg), np.arange(24))


def test_notebook_03b_plots_draw_the_study_they_are_given():
    from types import SimpleNamespace

    rng = np.random.default_rng(0)
    inv = SimpleNamespace(truth=rng.random((3, 64)), reconstructions=rng.random((4, 3, 64)))
    axes = np.array(plots.inversion_gallery(inv).axes).reshape(2, 5)  # two examples, truth + four settings
    assert [ax.get_title() for ax in axes[0]] == ["true digit", *plots.INVERSION_TITLES]
    assert np.allclose(axes[1, 0].images[0].get_array(), inv.truth[1].reshape(8, 8))
    assert np.allclose(axes[0, 3].images[0].get_array(), inv.reconstructions[2, 0].reshape(8, 8))
    dps = SimpleNamespace(noise_multipliers=np.array([1.0, 2.0]), epsilon=np.array([8.0, 2.0]),
                          accuracy=np.array([[0.8, 0.9, 0.85], [0.6, 0.7, 0.65]]),
                          non_private=np.array([0.9, 0.92, 0.94]), delta=1e-4, rounds=30)
    ax = plots.dp_accuracy(dps).axes[0]
    data_line = ax.containers[0].lines[0]
    assert np.allclose(data_line.get_xdata(), dps.epsilon) and np.allclose(data_line.get_ydata(), [0.85, 0.65])
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == ["DP-FedAvg (3 seeds)", "no privacy"]
    assert np.allclose(ax.lines[-1].get_ydata(), 0.92) and "after 30 rounds" in ax.get_xlabel()


def test_experiments_check_steps_hours_and_seeds():
    with pytest.raises(ValueError, match=r"step_h must be in \(0, 24\], got 0.0"):
        E.diurnal_swing(POP, step_h=0.0)
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        E.steering_comparison(POP, CFG, 1.0, -1)
    with pytest.raises(ValueError, match="hours must be > 0, got 0.0"):
        E.fault_runs(POP, CFG, Topology(), 100.0, 0.0, 0)
    with pytest.raises(ValueError, match=r"drop_outs must hold values in \[0, 1\]; drop_outs\[1\] is 1.5"):
        E.commit_share_curves(POP, CFG, np.array([1.3]), (0.1, 1.5), 5, 0)
    with pytest.raises(TypeError, match="seed must be an int, got 1.5"):
        E.explore_rounds(seed=1.5)
    with pytest.raises(TypeError, match="steering must be True or False, got 'auto'"):
        E.explore_rounds(steering="auto")


def test_fault_runs_crash_an_actor_the_topology_has():
    """The Master and the Coordinator are one each: their 'actor 1' is actor 0, as the log names it."""
    runs = E.fault_runs(POP, CFG, Topology(), 1800.0, 1.0, 0, kinds=("master_aggregator", "selector"))
    assert runs["master_aggregator"].victim == "master_aggregator[0]" and runs["selector"].victim == "selector[1]"
