"""The notebook's measurements and figures: what they measure, over seeds and sweeps, and what the plots draw."""

import matplotlib
import numpy as np
import pytest

from mlsys_core.tictac import compare, experiments, plots, ps
from mlsys_core.tictac.graph import random_graph
from mlsys_core.tictac.simulate import Cluster

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def small_graph():
    return random_graph(20, 60, seed=4, max_bytes=2e5, max_flops=2e6)


def test_timeline_is_consistent_and_drawable():
    tl = experiments.timeline("cnn", "infer", bandwidth_gbps=1.0, workers=2, parameter_servers=2, scheduler="tac")
    assert tl.lower <= tl.makespan <= tl.upper and 0 <= tl.efficiency <= 1
    assert (tl.recv_end > tl.recv_start).all() and (tl.op_end >= tl.op_start).all()
    assert set(tl.recv_server.tolist()) == {0, 1}
    assert tl.speedup >= 1.0  # TAC beats the mean of random orders on this graph
    ax = plots.gantt(tl).axes[0]
    assert "tac" in ax.get_title() and f"{tl.makespan * 1e3:.2f} ms" in ax.get_title()


def test_a_mispredicting_oracle_costs_tac_little_next_to_random_order(small_graph):
    cluster = Cluster(workers=2, bandwidth_gbps=2.0)
    err = experiments.oracle_error(small_graph, cluster, sigmas=(0.0, 1.0), trials=3)
    assert err.mean_loss[0] == 0.0 and err.worst_loss[0] == 0.0  # the exact oracle is the reference
    assert err.random_loss > 0.05  # random order is far slower than TAC here ...
    assert err.worst_loss[1] < err.random_loss  # ... and even a badly misled TAC stays ahead of it
    again = experiments.oracle_error(small_graph, cluster, sigmas=(0.0, 1.0), trials=3)
    np.testing.assert_array_equal(err.mean_loss, again.mean_loss)
    line = plots.oracle_error(err).axes[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(), 100 * err.mean_loss)


def test_pipelining_hides_the_order_and_in_order_execution_never_helps(small_graph):
    alt = experiments.alternatives(small_graph, Cluster(workers=2, bandwidth_gbps=2.0), iterations=4)
    for name in ("random", "tac"):
        assert alt[f"{name}, transfers pipelined"] <= alt[f"{name}, ops reordered as ready"] + 1e-12
        assert alt[f"{name}, ops reordered as ready"] <= alt[f"{name}, ops in program order"] + 1e-12
    assert alt["tac, ops reordered as ready"] < alt["random, ops reordered as ready"]
    bars = plots.bars(alt, "ms").axes[0].patches
    assert [b.get_width() for b in bars] == list(alt.values())


def test_workers_sweep_gain_approaches_one_when_the_link_dominates(small_graph):
    sweep = experiments.workers_sweep(small_graph, Cluster(bandwidth_gbps=2.0), workers=(1, 4, 256), iterations=5)
    assert sweep.tac.shape == (3,)
    assert abs(sweep.tac[-1] - 1.0) < abs(sweep.tac.max() - 1.0)  # 256 workers: compute is a sliver
    lines = plots.workers_sweep(sweep).axes[0].lines
    np.testing.assert_allclose(lines[0].get_ydata(), sweep.tac)


def test_gain_sweep_is_bounded_by_the_headroom_and_varies_with_seed_only_in_the_baseline():
    gs = experiments.gain_sweep("infer", bandwidths_gbps=(1.0, 10.0), seeds=(0, 1, 2), model_names=("mlp", "cnn"))
    assert gs.speedup.shape == (2, 2, 3)
    np.testing.assert_allclose(gs.geomean, np.sqrt(gs.speedup[:, 0] * gs.speedup[:, 1]))  # two models
    assert (gs.geomean < gs.speedup.max(axis=1)).all()  # an aggregate, not the best model
    for b, bw in enumerate((1.0, 10.0)):
        cluster = Cluster(workers=4, bandwidth_gbps=bw)
        for m, model in enumerate(("mlp", "cnn")):
            res = compare.compare(compare.model_graph(model, "infer"), cluster, ("random", "tac"), 20, 0)
            # random order can be no slower than no overlap (U), TAC no faster than perfect overlap (L)
            bound = res["random"].upper.max() / res["tac"].lower.min()
            assert (gs.speedup[b, m] <= bound + 1e-9).all() and (gs.speedup[b, m] > 1.0).all()
            assert gs.speedup[b, m, 0] == pytest.approx(compare.speedup(res)["tac"])
    assert len(set(gs.speedup[0, 1].tolist())) == 3  # each seed draws other random orders
    again = experiments.gain_sweep("infer", bandwidths_gbps=(1.0, 10.0), seeds=(0, 1, 2), model_names=("mlp", "cnn"))
    np.testing.assert_array_equal(gs.speedup, again.speedup)
    ax = plots.gain_sweep([gs], paper={"infer": 1.377}).axes[0]
    np.testing.assert_allclose(ax.containers[0].lines[0].get_ydata(), gs.geomean.mean(axis=1))
    assert [ln.get_ydata()[0] for ln in ax.lines if ln.get_linestyle() == ":"] == [1.377]
    with pytest.raises(ValueError, match="mode"):
        experiments.gain_sweep("serve")
    with pytest.raises(ValueError, match="seeds"):
        experiments.gain_sweep("infer", seeds=())


def test_straggler_metric_is_finite_and_grows_with_jitter(small_graph):
    st = experiments.straggler_sweep(small_graph, jitters=(0.0, 0.1, 0.5), seeds=(0, 1, 2, 3, 4), iterations=20)
    assert st.random_s.shape == st.tac_s.shape == (3, 5)
    # no jitter: a fixed order gives every worker the same iteration, random order does not
    assert (st.tac_s[0] == 0).all() and (st.random_s[0] > 0).all()
    assert np.isfinite(st.relative).all() and (st.relative[0] == 0).all()
    rel = st.relative.mean(axis=1)
    assert rel[0] < rel[1] < rel[2] < 1.0  # noise is a straggler source no order removes
    lines = plots.straggler_sweep(st).axes[0].lines
    np.testing.assert_allclose(lines[1].get_ydata(), 1e3 * st.tac_s.mean(axis=1))
    same = experiments.straggler(small_graph, Cluster(workers=4, bandwidth_gbps=1.0, jitter=0.5), 20, seed=3)
    assert same["tac"] == pytest.approx(st.tac_s[2, 3]) and same["random"] == pytest.approx(st.random_s[2, 3])


def test_rise_and_fall_is_zero_for_a_monotone_curve_and_measures_the_smaller_side():
    assert experiments.rise_and_fall([1.0, 1.2, 1.5]) == 0.0
    assert experiments.rise_and_fall([1.5, 1.2, 1.0]) == 0.0
    assert experiments.rise_and_fall([1.0, 2.0, 1.5]) == pytest.approx(2.0 / 1.5 - 1.0)
    np.testing.assert_allclose(experiments.rise_and_fall([[1.0, 2.0, 1.5], [1.0, 1.1, 1.2]]), [1 / 3, 0.0])
    with pytest.raises(ValueError, match=">= 3 points"):
        experiments.rise_and_fall([1.0, 2.0])


def test_workers_gain_matches_the_single_seed_sweep(small_graph):
    cluster = Cluster(bandwidth_gbps=2.0)
    gains = experiments.workers_gain(small_graph, cluster, workers=(1, 4, 256), seeds=(0, 1), iterations=5)
    assert gains.shape == (2, 3)
    one = experiments.workers_sweep(small_graph, cluster, workers=(1, 4, 256), iterations=5, seed=1)
    np.testing.assert_allclose(gains[1], one.tac)


def test_order_gap_is_the_largest_relative_difference_over_the_chosen_models():
    rows = [experiments.SpeedupRow("mlp", "infer", {"tic": 1.10, "tac": 1.00, "layer": 1.0}, 0.5, 0.5, 0.6),
            experiments.SpeedupRow("inception", "infer", {"tic": 1.2, "tac": 1.5, "layer": 1.2}, 0.5, 0.5, 0.6)]
    assert experiments.order_gap(rows, "tic") == pytest.approx(0.2)
    assert experiments.order_gap(rows, "tic", model_names=("mlp",)) == pytest.approx(0.1)
    assert experiments.order_gap(rows, "layer", model_names=("mlp",)) == 0.0
    with pytest.raises(ValueError, match="model_names"):
        experiments.order_gap(rows, "tic", model_names=("vgg",))
    ax = plots.speedups(rows, schedulers=("tic", "tac")).axes[0]
    assert [p.get_height() for p in ax.patches] == [1.10, 1.2, 1.00, 1.5]  # TIC's bars, then TAC's
    assert [t.get_text() for t in ax.get_xticklabels()] == ["mlp\ninfer", "inception\ninfer"]


def test_tac_raises_scheduling_efficiency_on_every_bundled_graph():
    eff = experiments.efficiency(Cluster(workers=4), seeds=(0, 1), iterations=5)
    assert len(eff.graphs) == 8 and eff.random.shape == eff.tac.shape == (8, 2)
    assert (eff.tac > eff.random).all()
    np.testing.assert_allclose(eff.gain, (eff.tac - eff.random).mean(axis=0))
    assert eff.samples["tac"].size == 8 * 5 * 4  # graphs x iterations x workers, first seed
    assert ((eff.samples["random"] >= 0) & (eff.samples["random"] <= 1)).all()


def test_interleaved_speedups_pair_each_iteration_after_warmup():
    def trial(name, seconds, warmup=1):
        return ps.Trial(name, np.asarray(seconds), np.zeros((len(seconds), 1)), warmup, True, 0, True, 0)

    trials = {"random": trial("random", [9.0, 2.0, 3.0]), "tac": trial("tac", [1.0, 1.0, 2.0])}
    np.testing.assert_allclose(experiments.interleaved_speedups(trials), [2.0, 1.5])
    with pytest.raises(ValueError, match="interleaved"):
        experiments.interleaved_speedups({"random": trials["random"], "tac": trial("tac", [1.0, 1.0, 2.0], 2)})


def test_heuristic_cost_times_every_variant_and_extrapolates_the_naive_one_per_run():
    cost = experiments.heuristic_cost(blocks=(1, 2, 3), target_blocks=6, repeats=2)
    assert cost.tac_runs_s.shape == cost.tic_runs_s.shape == cost.naive_runs_s.shape == (3, 2)
    np.testing.assert_array_equal(cost.tac_s, cost.tac_runs_s.min(axis=1))
    np.testing.assert_array_equal(cost.naive_s, cost.naive_runs_s.min(axis=1))
    assert (np.diff(cost.ops) > 0).all() and (np.diff(cost.recvs) > 0).all() and cost.target_ops > cost.ops[-1]
    assert cost.target_tac_runs_s.shape == (2,) and cost.naive_target_s.shape == (2,)
    # the extrapolation is each run's own line through its timings, evaluated at the target's size
    a, b = cost.naive_fit()[0]
    work = cost.ops * cost.recvs.astype(float) ** 2
    slope, intercept = np.polyfit(np.log(work), np.log(cost.naive_runs_s[:, 0]), 1)
    assert (a, b) == pytest.approx((intercept, slope))
    assert cost.naive_target_s[0] == pytest.approx(np.exp(a + b * np.log(cost.target_ops * cost.target_recvs ** 2.0)))
    ax = plots.heuristic_cost(cost).axes[0]
    np.testing.assert_allclose(ax.lines[2].get_ydata(), cost.naive_s)
    with pytest.raises(ValueError, match="repeats"):
        experiments.heuristic_cost(blocks=(1, 2), repeats=0)
    with pytest.raises(ValueError, match="blocks"):
        experiments.heuristic_cost(blocks=(1,))


def test_push_traffic_doubles_the_bytes_and_costs_a_comm_bound_graph_time():
    g = random_graph(10, 30, seed=4, max_bytes=2e5, max_flops=2e5, gradients=True)
    pt = experiments.push_traffic(g, Cluster(workers=2, bandwidth_gbps=1.0), iterations=4)
    assert pt.push_mb == pytest.approx(pt.pull_mb) and pt.pull_mb == pytest.approx(2 * g.recv_bytes.sum() / 1e6)
    assert (pt.push_s > pt.pull_only_s).all()  # the pushes cannot all hide under the little compute there is
    pull_gain, push_gain = pt.gain()
    assert pull_gain == pytest.approx(pt.pull_only_s[0] / pt.pull_only_s[1])
    assert push_gain == pytest.approx(pt.push_s[0] / pt.push_s[1])
    with pytest.raises(ValueError, match="training graph"):
        experiments.push_traffic(random_graph(4, 8), Cluster())


def test_server_sweep_compares_placements_and_a_card_cap_and_plots_each_line():
    # two large tensors at even ids: round robin stacks them on server 0 of 2
    from mlsys_core.tictac.graph import OpGraph

    g = OpGraph([4e6, 1e4, 4e6, 1e4], [1e3, 1e3], [0, 1, 2, 3], [4, 4, 5, 5], gradient_op=[1, 1, 1, 1])
    sw = experiments.server_sweep(g, Cluster(workers=1, bandwidth_gbps=1.0, latency_us=0.0),
                                  servers=(1, 2, 4), nic_gbps=(None, 1.0), iterations=1)
    rr, sb = sw.placements.index("round_robin"), sw.placements.index("size_balanced")
    assert sw.iteration_s.shape == (2, 2, 3)
    assert sw.iteration_s[sb, 0, 1] < 0.6 * sw.iteration_s[rr, 0, 1]  # balanced halves the heavy server
    # a card as fast as one server link: more servers cannot beat one (to the op times), uncapped they do
    assert sw.iteration_s[sb, 1, 2] >= 0.999 * sw.iteration_s[sb, 1, 0]
    assert sw.iteration_s[sb, 0, 2] < 0.6 * sw.iteration_s[sb, 0, 0]
    np.testing.assert_allclose(sw.speedup()[..., 0], 1.0)
    lines = plots.server_sweep(sw).axes[0].lines
    assert len(lines) == 4 and lines[1].get_label() == "round_robin, card 1 Gbit/s"
    np.testing.assert_allclose(lines[3].get_ydata(), 1e3 * sw.iteration_s[sb, 1])


def test_experiments_check_graph_cluster_schedulers_and_seeds():
    g = random_graph(3, 4, seed=0)
    with pytest.raises(TypeError, match="schedulers must be a tuple of scheduler names, got 'tac'"):
        compare.compare(g, Cluster(), "tac")
    with pytest.raises(TypeError, match="cluster must be a simulate.Cluster, got 'fast'"):
        experiments.alternatives(g, "fast")
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        experiments.straggler(g, Cluster(), seed=-1)
    with pytest.raises(ValueError, match="first_seed must be >= 0, got -5"):
        experiments.order_study(n_dags=1, first_seed=-5)


def test_the_timeline_explorer_opens_at_the_widgets_setting_and_checks_its_arguments():
    tl = experiments.explore_timeline()
    same = experiments.timeline("resnet", "infer", bandwidth_gbps=1.0, workers=4, parameter_servers=1,
                                scheduler="tac", seed=0)
    np.testing.assert_array_equal(tl.recv_end, same.recv_end)
    assert tl.makespan == same.makespan and tl.scheduler == "tac"
    ax = plots.explore_timeline(tl).axes[0]
    assert ax.get_title().startswith("resnet infer, tac:") and f"{tl.makespan * 1e3:.2f} ms" in ax.get_title()
    with pytest.raises(ValueError, match="scheduler must be one of"):
        experiments.explore_timeline(scheduler="fifo")
    with pytest.raises(ValueError, match="bandwidth_gbps"):
        experiments.explore_timeline(bandwidth_gbps=0.0)
    with pytest.raises(TypeError, match="workers must be an int"):
        experiments.explore_timeline(workers=2.5)
