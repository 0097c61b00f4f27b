"""Paper 4's measure functions and the fixes behind them: compute noise in the simulator (seeded, the same
draws for every scheduler), the naive recompute-every-step TAC, one value per fresh-process run on the real
server, and a stated aggregate over the models instead of the best one."""

import dataclasses

import numpy as np
import pytest

from mlsys_core import claims
from mlsys_core.seeds import DEFAULT_SEEDS
from mlsys_core.tictac import compare, experiments, measures, ordering, ps
from mlsys_core.tictac.graph import layered_graph, random_graph
from mlsys_core.tictac.simulate import Cluster, op_seconds, simulate

NOTEBOOK_CLUSTER = Cluster(workers=4, parameter_servers=1, bandwidth_gbps=1.0)  # notebook 04's `cluster`


@pytest.fixture(scope="module")
def graph():
    return random_graph(12, 40, seed=3, max_bytes=2e5, max_flops=2e6)


# ---- compute noise ----------------------------------------------------------------------------------

def test_compute_noise_stretches_each_op_by_its_own_seeded_log_normal_factor(graph):
    noisy = Cluster(workers=3, compute_noise=0.3)
    exact = op_seconds(graph, Cluster(workers=3), (4, 3))
    draws = op_seconds(graph, noisy, (4, 3), seed=7)
    assert draws.shape == (4, 3, graph.n_compute)
    factors = draws / exact
    assert np.std(np.log(factors)) == pytest.approx(0.3, rel=0.15)
    assert not np.allclose(factors[0, 0], factors[0, 1]) and not np.allclose(factors[0, 0], factors[1, 0])
    np.testing.assert_array_equal(draws, op_seconds(graph, noisy, (4, 3), seed=7))  # seeded
    assert not np.array_equal(draws, op_seconds(graph, noisy, (4, 3), seed=8))
    # the simulator runs every op for exactly its drawn time
    order = ordering.schedule(graph, "tac", noisy.oracle(), 3, 4)
    res = simulate(graph, order, noisy, seed=7)
    np.testing.assert_allclose(res.finish - res.start, draws)


def test_both_schedulers_see_the_same_compute_noise_so_only_the_order_differs(graph):
    noisy = Cluster(workers=3, compute_noise=0.3, jitter=0.2)
    res = compare.compare(graph, noisy, ("layer", "tac"), iterations=6, seed=2)
    np.testing.assert_allclose(res["layer"].finish - res["layer"].start, res["tac"].finish - res["tac"].start)
    # the transfer noise keeps its own stream: adding compute noise leaves the arrivals of a pull-only run as they were
    quiet = dataclasses.replace(noisy, compute_noise=0.0)
    orders = ordering.schedule(graph, "random", quiet.oracle(), 3, 6, seed=1)
    np.testing.assert_array_equal(simulate(graph, orders, noisy, seed=2).arrival,
                                  simulate(graph, orders, quiet, seed=2).arrival)


def test_without_compute_noise_a_fixed_order_has_no_stragglers_and_with_it_it_does(graph):
    exact = compare.compare(graph, Cluster(workers=4), ("tac",), iterations=5, seed=0)["tac"]
    noisy = compare.compare(graph, Cluster(workers=4, compute_noise=0.2), ("tac",), iterations=5, seed=0)["tac"]
    assert (exact.straggler == 0).all() and (noisy.straggler > 0).all()
    assert noisy.comp == pytest.approx(exact.comp)  # `comp` stays the noise-free compute makespan
    assert not np.allclose(noisy.upper, exact.upper)  # the bounds use each worker-iteration's own compute
    with pytest.raises(ValueError, match="compute_noise"):
        Cluster(compute_noise=-0.1)


def test_order_study_gives_both_fixed_orders_the_same_noise():
    noisy = Cluster(workers=1, compute_noise=0.3)
    study = experiments.order_study(n_dags=6, cluster=noisy)
    exact = experiments.order_study(n_dags=6)
    np.testing.assert_array_equal(study.best_s, exact.best_s)  # the brute force is the noise-free reference
    for k, seed in enumerate(study.seeds):
        g = layered_graph(6, 4, 3, seed)
        same = (ordering.layer_order(g) == ordering.tac(g, noisy.recv_seconds(g), noisy.oracle().compute_seconds(g)))
        if same.all():  # one order, one noise: the same time
            assert study.ratio()[k] == pytest.approx(1.0)


# ---- naive TAC --------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_recomputing_tac_at_every_step_gives_the_incremental_order(seed):
    g = random_graph(15, 50, seed=seed, max_bytes=2e5, max_flops=2e6)
    t, c = np.random.default_rng(seed).uniform(1e-4, 1e-3, (2, 50))
    np.testing.assert_array_equal(ordering.tac_recompute(g, t[:15], c), ordering.tac(g, t[:15], c))


def test_recomputing_tac_matches_on_the_bundled_graphs_including_ties():
    oracle = Cluster().oracle()
    for model in ("cnn", "inception", "two_tower"):
        g = compare.model_graph(model, "train")
        t, c = oracle.recv_seconds(g, share=4), oracle.compute_seconds(g)
        np.testing.assert_array_equal(ordering.tac_recompute(g, t, c), ordering.tac(g, t, c))
    g = random_graph(8, 20, seed=1)
    np.testing.assert_array_equal(ordering.tac_recompute(g, np.ones(8), np.zeros(20)),  # all ties
                                  ordering.tac(g, np.ones(8), np.zeros(20)))
    with pytest.raises(ValueError, match="recv_seconds"):
        ordering.tac_recompute(g, np.ones(7), np.zeros(20))


# ---- the real server's unit is the run ---------------------------------------------------------------

def _trial(name, seconds, warmup=1):
    return ps.Trial(name, np.asarray(seconds, float), np.zeros((len(seconds), 1)), warmup, True, 0, True, 0)


def test_real_server_gives_one_geometric_mean_per_run_not_its_pooled_iterations():
    runs = ps.Runs(ps.PSConfig(), (
        {"random": _trial("random", [9.0, 2.0, 8.0]), "tac": _trial("tac", [1.0, 1.0, 2.0])},
        {"random": _trial("random", [9.0, 1.0, 1.0]), "tac": _trial("tac", [1.0, 1.0, 1.0])},
    ))
    np.testing.assert_allclose(experiments.run_gains(runs), [np.sqrt(2.0 * 4.0), 1.0])
    with pytest.raises(ValueError, match="bandwidth_gbps"):
        measures.real_ps_gain(bandwidth_gbps=0.0)


# ---- the measures at the notebook's defaults ------------------------------------------------------------

def test_the_gains_are_the_models_geometric_mean_per_seed_as_the_notebook_computes_them():
    gains = measures.inference_gain()
    sweep = experiments.gain_sweep("infer", experiments.BANDWIDTHS_GBPS, DEFAULT_SEEDS, NOTEBOOK_CLUSTER)
    np.testing.assert_array_equal(gains, sweep.geomean[experiments.BANDWIDTHS_GBPS.index(1.0)])
    assert gains.shape == (len(DEFAULT_SEEDS),)
    best = sweep.speedup[1].max(axis=0)
    assert (gains < best).all()  # the stated aggregate, not the best model
    assert claims.evaluate(claims.get("tictac.inference_gain"), gains).verdict in claims.rules.VERDICTS


def test_measures_at_the_defaults_are_the_notebooks_numbers():
    rows = experiments.speedup_table(NOTEBOOK_CLUSTER, iterations=20, seed=0)
    assert measures.tic_close_to_tac() == experiments.order_gap(rows, "tic")
    assert measures.layer_order_matches_tac() == experiments.order_gap(rows, "layer",
                                                                       model_names=experiments.CHAIN_MODELS)
    strag = experiments.straggler_sweep(compare.model_graph("resnet", "infer"), experiments.JITTERS, DEFAULT_SEEDS,
                                        NOTEBOOK_CLUSTER, iterations=50)
    np.testing.assert_array_equal(measures.straggler_spread(), strag.relative[experiments.JITTERS.index(0.3)])
    np.testing.assert_array_equal(measures.tac_beats_layer_on_branching(),
                                  experiments.order_study().ratio("layer", "tac"))
    eff = measures.efficiency_gain()
    np.testing.assert_array_equal(eff, experiments.efficiency(NOTEBOOK_CLUSTER, DEFAULT_SEEDS, 20).gain)
    for claim_id, value in (("tictac.tic_close_to_tac", measures.tic_close_to_tac()),
                            ("tictac.efficiency_gain", eff)):
        assert claims.evaluate(claims.get(claim_id), value).verdict in claims.rules.VERDICTS


def test_a_cluster_parameter_moves_the_measure_and_counts_arrive_as_floats():
    assert measures.cluster(parameter_servers=2.0, workers=8.0).workers == 8
    spread = measures.straggler_spread(compute_noise=0.3)
    assert spread.mean() > measures.straggler_spread().mean()  # noise no order removes: TAC's share grows
    assert measures.inference_gain(parameter_servers=2.0).mean() < measures.inference_gain().mean()
    with pytest.raises(ValueError, match="whole number"):
        measures.cluster(workers=2.5)
    with pytest.raises(TypeError, match="workers must be a number"):
        measures.cluster(workers="4")
