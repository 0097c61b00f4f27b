"""The notebook's measurements and figures: shapes, invariants, determinism."""

import matplotlib
import numpy as np

from mlsys_core.tictac import experiments, plots
from mlsys_core.tictac.graph import random_graph
from mlsys_core.tictac.simulate import Cluster

matplotlib.use("Agg")


def test_timeline_is_consistent_and_drawable():
    tl = experiments.timeline("cnn", "infer", bandwidth_gbps=1.0, workers=2, parameter_servers=2, scheduler="tac")
    assert tl.lower <= tl.makespan <= tl.upper and 0 <= tl.efficiency <= 1
    assert (tl.recv_end > tl.recv_start).all() and (tl.op_end >= tl.op_start).all()
    assert set(tl.recv_server.tolist()) == {0, 1}
    assert tl.speedup >= 1.0  # TAC beats the mean of random orders on this graph
    assert plots.gantt(tl).axes


def test_sweeps_and_critiques_are_deterministic_and_sane():
    g = random_graph(20, 60, seed=4, max_bytes=2e5, max_flops=2e6)
    cluster = Cluster(workers=2, bandwidth_gbps=2.0)
    sweep = experiments.workers_sweep(g, cluster, workers=(1, 4), iterations=5)
    assert sweep["tac"].shape == (2,) and (sweep["tac"] > 0).all()
    err = experiments.oracle_error(g, cluster, sigmas=(0.0, 1.0), trials=3)
    assert err["mean_loss"][0] == 0.0 and (err["worst_loss"] >= err["mean_loss"] - 1e-12).all()
    again = experiments.oracle_error(g, cluster, sigmas=(0.0, 1.0), trials=3)
    np.testing.assert_array_equal(err["mean_loss"], again["mean_loss"])
    alt = experiments.alternatives(g, cluster, iterations=4)
    assert alt["tac, transfers pipelined"] <= alt["tac, ops reordered as ready"] + 1e-12
    spread = experiments.straggler(g, Cluster(workers=3, jitter=0.2), iterations=5)
    assert spread["random"] > 0 and set(spread) == {"random", "tic", "tac"}
    for fig in (plots.workers_sweep(sweep), plots.oracle_error(err), plots.bars(alt, "ms")):
        assert fig.axes
