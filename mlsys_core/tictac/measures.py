"""The measurement behind each claim of Paper 4, as a function of its declared assumptions.

One function per claim of `mlsys_core.claims.tictac`, named after the claim; its keyword arguments are the
claim's parameters, defaulting to their defaults, and it returns exactly what notebook 04 passes to
`report.check` (one value per seed, per random graph, per fresh-process run or per timed run, or one
number). At the defaults each function is the notebook's own computation, so the report's sweep points and
the notebook's headline are comparable. The logic lives in `experiments`; these functions only build the
cluster from the parameters and pick the claim's figure from the result.

The report passes every value as a float; counts are converted with `int` here.
"""

from __future__ import annotations

import numpy as np

from mlsys_core import validate
from mlsys_core.seeds import DEFAULT_SEEDS
from mlsys_core.tictac import experiments
from mlsys_core.tictac.compare import model_graph
from mlsys_core.tictac.simulate import Cluster


def cluster(
    parameter_servers: float = 1,
    workers: float = 4,
    op_overhead_us: float = 2.0,
    latency_us: float = 50.0,
    compute_noise: float = 0.0,
    bandwidth_gbps: float = 1.0,
) -> Cluster:
    """The simulated cluster at one point of the claims' parameters (10 GFLOP/s per worker, round-robin
    placement, no card cap, no transfer jitter).

    Args:
        parameter_servers: servers (a whole number >= 1).
        workers: workers sharing each server link (a whole number >= 1).
        op_overhead_us: us added to every compute op.
        latency_us: us per transfer.
        compute_noise: log-normal sigma on every op's time.
        bandwidth_gbps: Gbit/s, each server link.
    """
    return Cluster(
        workers=validate.whole("workers", workers),
        parameter_servers=validate.whole("parameter_servers", parameter_servers),
        bandwidth_gbps=float(bandwidth_gbps),
        latency_us=float(latency_us),
        op_overhead_us=float(op_overhead_us),
        compute_noise=float(compute_noise),
    )


@validate.numeric_arguments
def inference_gain(
    bandwidth_gbps: float = 1.0,
    parameter_servers: float = 1,
    workers: float = 4,
    op_overhead_us: float = 2.0,
    latency_us: float = 50.0,
    compute_noise: float = 0.0,
) -> np.ndarray:
    """(seeds,) TAC's inference throughput over random order, the geometric mean over the four bundled
    models per seed (`experiments.gain_sweep`, 20 iterations). Args: see `cluster`."""
    c = cluster(parameter_servers, workers, op_overhead_us, latency_us, compute_noise)
    return experiments.gain_sweep("infer", (bandwidth_gbps,), DEFAULT_SEEDS, c).geomean[0]


@validate.numeric_arguments
def training_gain(
    bandwidth_gbps: float = 1.0,
    parameter_servers: float = 1,
    workers: float = 4,
    op_overhead_us: float = 2.0,
    latency_us: float = 50.0,
    compute_noise: float = 0.0,
) -> np.ndarray:
    """(seeds,) TAC's training throughput over random order (gradients pushed), the geometric mean over
    the four bundled models per seed. Args: see `cluster`."""
    c = cluster(parameter_servers, workers, op_overhead_us, latency_us, compute_noise)
    return experiments.gain_sweep("train", (bandwidth_gbps,), DEFAULT_SEEDS, c).geomean[0]


@validate.numeric_arguments
def straggler_spread(
    jitter: float = 0.3,
    parameter_servers: float = 1,
    workers: float = 4,
    op_overhead_us: float = 2.0,
    latency_us: float = 50.0,
    compute_noise: float = 0.0,
    bandwidth_gbps: float = 1.0,
) -> np.ndarray:
    """(seeds,) TAC's mean straggler spread as a fraction of random order's, ResNet-style inference, 50
    iterations, transfer noise of sigma `jitter` (`experiments.straggler_sweep`). Args: see `cluster`."""
    c = cluster(parameter_servers, workers, op_overhead_us, latency_us, compute_noise, bandwidth_gbps)
    return experiments.straggler_sweep(model_graph("resnet", "infer"), (jitter,), DEFAULT_SEEDS, c, 50).relative[0]


@validate.numeric_arguments
def gain_rises_then_falls(
    parameter_servers: float = 1,
    op_overhead_us: float = 2.0,
    latency_us: float = 50.0,
    compute_noise: float = 0.0,
    bandwidth_gbps: float = 1.0,
) -> np.ndarray:
    """(seeds,) how far TAC's gain over 1-128 workers rises to its peak and falls after it
    (`experiments.rise_and_fall` of `experiments.workers_gain`), ResNet-style inference. Args: see `cluster`."""
    c = cluster(parameter_servers, 1, op_overhead_us, latency_us, compute_noise, bandwidth_gbps)
    gains = experiments.workers_gain(model_graph("resnet", "infer"), c, experiments.WORKER_COUNTS, DEFAULT_SEEDS)
    return experiments.rise_and_fall(gains)


@validate.numeric_arguments
def tic_close_to_tac(
    parameter_servers: float = 1,
    workers: float = 4,
    op_overhead_us: float = 2.0,
    latency_us: float = 50.0,
    compute_noise: float = 0.0,
    bandwidth_gbps: float = 1.0,
) -> float:
    """The largest relative throughput gap between TIC and TAC over the eight bundled graphs
    (`experiments.order_gap` of `experiments.speedup_table`, 20 iterations, seed 0). Args: see `cluster`."""
    c = cluster(parameter_servers, workers, op_overhead_us, latency_us, compute_noise, bandwidth_gbps)
    return experiments.order_gap(experiments.speedup_table(c, iterations=20, seed=0), "tic")


@validate.numeric_arguments
def layer_order_matches_tac(
    parameter_servers: float = 1,
    workers: float = 4,
    op_overhead_us: float = 2.0,
    latency_us: float = 50.0,
    compute_noise: float = 0.0,
    bandwidth_gbps: float = 1.0,
) -> float:
    """The largest relative throughput gap between layer order and TAC over the chain models' six graphs
    (`experiments.order_gap`, 20 iterations, seed 0). Args: see `cluster`."""
    c = cluster(parameter_servers, workers, op_overhead_us, latency_us, compute_noise, bandwidth_gbps)
    rows = experiments.speedup_table(c, iterations=20, seed=0)
    return experiments.order_gap(rows, "layer", model_names=experiments.CHAIN_MODELS)


@validate.numeric_arguments
def tac_beats_layer_on_branching(
    parameter_servers: float = 1,
    workers: float = 1,
    op_overhead_us: float = 2.0,
    latency_us: float = 50.0,
    compute_noise: float = 0.0,
    bandwidth_gbps: float = 1.0,
) -> np.ndarray:
    """(DAGs,) layer-order time / TAC time on each of the 60 random layered DAGs (`experiments.order_study`,
    inference, 5 iterations per order). Args: see `cluster`."""
    c = cluster(parameter_servers, workers, op_overhead_us, latency_us, compute_noise, bandwidth_gbps)
    return experiments.order_study(cluster=c).ratio("layer", "tac")


@validate.numeric_arguments
def efficiency_gain(
    parameter_servers: float = 1,
    workers: float = 4,
    op_overhead_us: float = 2.0,
    latency_us: float = 50.0,
    compute_noise: float = 0.0,
    bandwidth_gbps: float = 1.0,
) -> np.ndarray:
    """(seeds,) mean scheduling efficiency E of TAC minus random order's over the eight bundled graphs
    (`experiments.efficiency`, 20 iterations). Args: see `cluster`."""
    c = cluster(parameter_servers, workers, op_overhead_us, latency_us, compute_noise, bandwidth_gbps)
    return experiments.efficiency(c, seeds=DEFAULT_SEEDS, iterations=20).gain


@validate.numeric_arguments
def real_ps_gain(bandwidth_gbps: float = 1.0) -> np.ndarray:
    """(runs,) random order's iteration time over TAC's on the real loopback parameter server, the
    geometric mean of each fresh-process run's interleaved ratios (`experiments.real_ps_runs`, 5 runs:
    about a minute of wall time).

    Args:
        bandwidth_gbps: Gbit/s, each server's paced link.
    """
    return experiments.run_gains(experiments.real_ps_runs(bandwidth_gbps))


@validate.numeric_arguments
def heuristic_cost(blocks: float = 96) -> np.ndarray:
    """(timed runs,) s, the naive TAC (properties recomputed at every step) on a ResNet-style training graph
    of `blocks` blocks, extrapolated per timed run from graphs of `experiments.NAIVE_BLOCKS` blocks
    (`experiments.heuristic_cost`, 5 runs).

    Args:
        blocks: ResNet-style blocks of the target graph (a whole number >= 1).
    """
    cost = experiments.heuristic_cost(
        experiments.NAIVE_BLOCKS, target_blocks=validate.whole("blocks", blocks), repeats=5
    )
    return cost.naive_target_s
