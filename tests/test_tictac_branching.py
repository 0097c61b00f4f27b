"""Graphs where the transfer order matters: branching JAX models, random layered DAGs, brute force."""

import itertools

import numpy as np
import pytest

from mlsys_core import claims
from mlsys_core.tictac import compare, experiments, jaxgraph, models, ordering
from mlsys_core.tictac.graph import layered_graph
from mlsys_core.tictac.simulate import Cluster, simulate


@pytest.mark.parametrize("model", models.BRANCHING_MODELS)
def test_branching_models_trace_to_graphs_with_parallel_branches(model):
    fn, params, inputs = models.program(model, "train", depth=2, width=8, batch_size=4)
    program = jaxgraph.trace(fn, params, *inputs)
    g = jaxgraph.to_graph(program, gradient_outputs=range(1, 1 + len(program.param_vars)))
    assert g.has_gradients and g.n_recv == len(program.param_vars)
    # parallel branches: two ops that neither reaches the other both need different recvs, so some
    # compute op's dependency set is not a subset or superset of another's
    bits = np.unpackbits(g.deps[g.n_recv:].view(np.uint8), axis=1, bitorder="little")[:, : g.n_recv].astype(bool)
    sets = {tuple(row) for row in bits}
    rows = np.array(sorted(sets))
    sub = (rows[:, None, :] <= rows[None, :, :]).all(-1)
    assert not (sub | sub.T).all()


def test_layered_graph_is_a_valid_layered_dag_with_every_op_fed():
    for seed in range(20):
        g = layered_graph(6, 4, 3, seed=seed)
        assert g.n_recv == 6 and 4 <= g.n_compute <= 12
        assert (np.bincount(g.src[g.src < 6], minlength=6) == 1).all()  # each recv read by one op
        assert (np.diff(g.topo) > 0).all()
    with pytest.raises(ValueError, match=r"n_recv must be >= max_width \(3\).*got 2"):
        layered_graph(2, 4, 3)
    same = layered_graph(flops_range=np.array([1e5, 1e8]))  # an array spells the range too
    assert same.compute_flops.tolist() == layered_graph().compute_flops.tolist()


@pytest.mark.parametrize("bad, error, said", [
    ((0.0, 1e6), ValueError, r"bytes_range must be \(low, high\) with 0 < low <= high, got \(0.0, 1000000.0\)"),
    ((1e6, 1e4), ValueError, r"bytes_range must be \(low, high\) with 0 < low <= high"),
    ((1e4, 1e5, 1e6), ValueError, r"bytes_range must be \(low, high\)"),
    (None, TypeError, "bytes_range must be an array of numbers"),
])
def test_layered_graph_checks_its_log_uniform_ranges(bad, error, said):
    """A zero or negative end used to reach log() and come back as a NaN-size recv or a broadcast error."""
    with pytest.raises(error, match=said):
        layered_graph(bytes_range=bad)


def test_order_study_finds_the_brute_force_optimum_and_counts_wins():
    study = experiments.order_study(n_dags=4)
    assert study.order_s.shape == (4, 3) and (study.order_s >= study.best_s[:, None] - 1e-15).all()
    g = layered_graph(seed=2)
    cluster = Cluster(workers=1)
    perms = np.array(list(itertools.permutations(range(6))))[:, None, :]
    assert study.best_s[2] == pytest.approx(simulate(g, perms, cluster).iteration_time.min())
    wins, losses = study.wins_losses()
    r = study.ratio("layer", "tac")
    assert wins == int((r > 1 + 1e-9).sum()) and losses == int((r < 1 - 1e-9).sum())
    assert study.geomean() == pytest.approx(np.exp(np.log(r).mean()))
    assert all(v >= 1.0 - 1e-12 for v in study.over_best().values())


def test_two_tower_order_beats_layer_order():
    """A fixed, deterministic fact of the bundled two-tower graph: the conv tower's few bytes unblock
    much compute, the dense tower's many bytes little; layer order interleaves them, TAC does not."""
    g = compare.model_graph("two_tower", "infer")
    cluster = Cluster(workers=4)
    t, c = cluster.recv_seconds(g), cluster.oracle().compute_seconds(g)
    orders = np.stack([ordering.layer_order(g), ordering.tac(g, t, c)])[:, None, :].repeat(4, axis=1)
    layer, tac = simulate(g, orders, cluster).iteration_time
    assert tac < 0.9 * layer


def test_branching_claim_rule_can_fail():
    claim = claims.get("tictac.tac_beats_layer_on_branching")
    losing = np.full(50, 0.99) * np.exp(np.linspace(-0.001, 0.001, 50))
    assert claims.evaluate(claim, losing).verdict == "not reproduced"
    winning = np.full(50, 1.05) * np.exp(np.linspace(-0.001, 0.001, 50))
    assert claims.evaluate(claim, winning).verdict == "reproduced"
