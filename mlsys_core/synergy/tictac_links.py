"""Synergy 7: TicTac's transfer ordering (Paper 4) on pod links and on phone links.

TicTac can never beat perfect overlap, so its gain lives under the headroom S = (U - L) / L:
`tictac_vs_bandwidth` sweeps one cluster from data-centre to phone speeds. On a pod, `pod_cluster` gives
the simulator the pod step's transfer/compute balance (Paper 1's cost model) and `tictac_pod` measures
there; on phones, `tictac_phone_percentiles` runs one phone at each percentile of FL's population's
downlinks (`phone_downlink_mbit`). `explore_tictac` is one point of notebook 05's explorer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.fl.population import PopulationConfig, make_population
from mlsys_core.seeds import DEFAULT_SEEDS
from mlsys_core.sharding import cost_model
from mlsys_core.synergy.common import pod_workload
from mlsys_core.tictac import compare as tictac_compare
from mlsys_core.tictac.simulate import Cluster


@dataclasses.dataclass(frozen=True)
class TicTacVsLink:
    """TAC against random order at each link bandwidth, with the bound it lives under."""

    bandwidth_gbps: np.ndarray  # (bandwidths,) Gbit/s, each link
    tac_speedup: np.ndarray  # (bandwidths,) x, throughput of TAC / random order
    headroom: np.ndarray  # (bandwidths,) S = (U - L) / L, mean over workers and iterations
    comm_share: np.ndarray  # (bandwidths,) transfer time / U


def tictac_vs_bandwidth(model: str = "resnet", mode: str = "train", bandwidths_gbps=(10.0, 1.0, 0.1, 0.01),
                        latency_us: float = 50.0, workers: int = 4, iterations: int = 10, seed: int = 0,
                        local_steps: int = 1, gflops: float = 10.0) -> TicTacVsLink:
    """TAC's throughput over random order as the link slows from data-centre to phone speeds.

    Also returns the headroom S = (U - L) / L of perfect overlap: when transfers dominate, S -> 0,
    so no order can help much: TAC/random <= 1 + S is the bound TicTac's gain lives under. With
    `local_steps` > 1 (FedAvg), a download is followed by that many steps, of which ordering can
    only overlap the first: the speed-up is of the whole (download + steps) session.

    Args:
        model: a `tictac.models.MODELS` name.
        mode: "infer" or "train".
        bandwidths_gbps: Gbit/s, each link (each > 0).
        latency_us: us, each transfer's latency.
        workers: workers sharing the parameter server's links (>= 1).
        iterations: iterations simulated per bandwidth (>= 1).
        seed: draws the random orders.
        local_steps: steps per download (>= 1).
        gflops: GFLOP/s, each worker's compute rate (> 0).
    """
    validate.seed("seed", seed)
    local_steps = validate.integer("local_steps", local_steps, 1)
    gflops = validate.positive("gflops", gflops)
    graph = tictac_compare.model_graph(model, mode)
    speedup, headroom, comm_share = [], [], []
    for bw in bandwidths_gbps:
        bw = validate.positive("bandwidths_gbps", bw)
        cluster = Cluster(workers=workers, bandwidth_gbps=bw, latency_us=latency_us, gflops=gflops)
        res = tictac_compare.compare(graph, cluster, ("random", "tac"), iterations, seed)
        r, tac = res["random"], res["tac"]
        more = (local_steps - 1) * r.comp  # the steps after the first, the same for every order
        speedup.append(float((r.iteration_time.mean() + more) / (tac.iteration_time.mean() + more)))
        headroom.append(float(np.mean((r.upper - r.lower) / r.lower)))
        comm_share.append(float(np.mean(r.comm / r.upper)))
    return TicTacVsLink(np.asarray(bandwidths_gbps, float), np.array(speedup), np.array(headroom),
                        np.array(comm_share))


def tictac_speedup_over_seeds(bandwidths_gbps=(0.004, 0.016, 0.064), seeds=DEFAULT_SEEDS, model: str = "resnet",
                              mode: str = "train", latency_us: float = 50.0, workers: int = 1,
                              iterations: int = 10, local_steps: int = 1) -> np.ndarray:
    """(len(bandwidths_gbps), len(seeds)) TAC/random throughput; a seed draws the random orders.

    Defaults: one phone (`workers=1`) on its own downlink of 4, 16 (the FL population's median) and
    64 Mbit/s.

    Args:
        bandwidths_gbps: Gbit/s, each link (each > 0).
        seeds: one set of random orders per seed.
        model: a `tictac.models.MODELS` name.
        mode: "infer" or "train".
        latency_us: us, each transfer's latency.
        workers: workers sharing the links (>= 1).
        iterations: iterations simulated per bandwidth (>= 1).
        local_steps: steps per download (>= 1).
    """
    return np.array([tictac_vs_bandwidth(model, mode, bandwidths_gbps, latency_us, workers, iterations, s,
                                         local_steps).tac_speedup for s in validate.seeds("seeds", seeds)]).T


def phone_downlink_mbit(percentiles=(10, 25, 50, 75, 90), devices: int = 100_000, seed: int = 0) -> np.ndarray:
    """The FL population's downlink (Mbit/s) at each percentile of its drawn devices (seed `seed`)."""
    for q in percentiles:
        validate.number("percentiles", q, 0.0, 100.0)
    pop = make_population(PopulationConfig(num_devices=validate.integer("devices", devices, 1)),
                          validate.seed("seed", seed))
    return np.percentile(pop.down_bytes_per_s, percentiles) * 8 / 1e6


@dataclasses.dataclass(frozen=True)
class PhoneTicTac:
    """TAC/random for one phone at each percentile of the population's downlink, and the link it ran on."""

    percentiles: np.ndarray  # (percentiles,) of the population's downlinks
    downlink_mbit: np.ndarray  # (percentiles, seeds) Mbit/s, the downlink at each percentile
    tac_speedup: np.ndarray  # (percentiles, seeds) x, throughput of TAC / random order


def tictac_phone_percentiles(percentiles=(10, 25, 50, 75, 90), seeds=DEFAULT_SEEDS, model: str = "resnet",
                             mode: str = "train", iterations: int = 10, local_steps: int = 1,
                             devices: int = 100_000, gflops: float = 10.0) -> PhoneTicTac:
    """TAC/random for one phone at each percentile of the FL population's downlink.

    Seed s draws the population (so the link at each percentile) and the random orders.

    Args:
        percentiles: of the population's downlinks (each in [0, 100]).
        seeds: one population and one set of random orders per seed.
        model: a `tictac.models.MODELS` name.
        mode: "infer" or "train".
        iterations: iterations simulated per link (>= 1).
        local_steps: steps per download (>= 1).
        devices: each population's size (>= 1).
        gflops: GFLOP/s, the phone's compute rate (> 0).
    """
    seeds = validate.seeds("seeds", seeds)
    links = np.array([phone_downlink_mbit(percentiles, devices, s) for s in seeds]).T
    gain = np.array([tictac_vs_bandwidth(model, mode, tuple(links[:, j] / 1e3), 50.0, 1, iterations, s,
                                         local_steps, gflops).tac_speedup for j, s in enumerate(seeds)]).T
    return PhoneTicTac(np.asarray(percentiles, float), links, gain)


def pod_cluster(graph, link_gb_per_s: float, workload: str = "BERT-large", chips: int = 4096,
                utilisation: float = 0.4) -> Cluster:
    """A one-worker TicTac cluster whose transfer/compute balance is the pod's (Paper 1's cost model).

    The link runs at the chip's `link_gb_per_s` (x 8 for Gbit/s) with the cost model's 1 us hop; the
    compute rate is set so that the graph's transfers over its compute equal the pod step's
    all-reduce over its compute + update at `chips` chips: the regime ordering works in, carried
    from BERT-large on a pod to the simulator's small graph. An all-reduce is a reduce-scatter and
    an all-gather, so the graph's pulls and its gradient pushes each get half of it.

    Args:
        graph: the op graph to be simulated (`tictac_compare.model_graph`).
        link_gb_per_s: GB/s, each chip's link (> 0).
        workload: a `cost_model.WORKLOADS` name.
        chips: the pod's size (>= 2).
        utilisation: achieved fraction of peak FLOP/s, in (0, 1].
    """
    validate.positive("link_gb_per_s", link_gb_per_s)
    chip = dataclasses.replace(cost_model.TPU_V3, link_bytes_per_s=link_gb_per_s * 1e9,
                               utilisation=validate.number("utilisation", utilisation, 0.0, 1.0, low_open=True))
    step = cost_model.step_time(pod_workload(workload), chip, validate.integer("chips", chips, 2), "wus")
    ratio = step.allreduce_s / (step.compute_s + step.update_s)
    probe = Cluster(workers=1, bandwidth_gbps=link_gb_per_s * 8, latency_us=1.0, op_overhead_us=0.0)
    comm = float(probe.recv_seconds(graph).sum())
    gflops = float(np.sum(graph.compute_flops)) / (2 * comm / ratio) / 1e9
    return dataclasses.replace(probe, gflops=gflops)


@dataclasses.dataclass(frozen=True)
class PodTicTac:
    """TAC/random on a `pod_cluster` at each per-chip link bandwidth."""

    link_gb_per_s: np.ndarray  # (bandwidths,) GB/s, each chip's link
    tac_speedup: np.ndarray  # (bandwidths, seeds) x, throughput of TAC / random order
    comm_share: np.ndarray  # (bandwidths,) the simulated step's transfers (pulls and pushes) / U


def tictac_pod(link_gb_per_s=(70.0, 100.0, 150.0, 200.0, 250.0, 330.0), seeds=DEFAULT_SEEDS, model: str = "resnet",
               mode: str = "train", iterations: int = 10, workload: str = "BERT-large",
               chips: int = 4096, utilisation: float = 0.4) -> PodTicTac:
    """TAC/random on a `pod_cluster` at each per-chip link bandwidth and seed, with the simulated
    step's transfer share of U (pulls and pushes) at each bandwidth.

    Args:
        link_gb_per_s: GB/s, each chip's link (each > 0).
        seeds: one set of random orders per seed.
        model: a `tictac.models.MODELS` name.
        mode: "infer" or "train".
        iterations: iterations simulated per bandwidth and seed (>= 1).
        workload: a `cost_model.WORKLOADS` name.
        chips: the pod's size (>= 2).
        utilisation: the cost model's achieved fraction of peak FLOP/s, in (0, 1].
    """
    graph = tictac_compare.model_graph(model, mode)
    seeds = validate.seeds("seeds", seeds)
    gain, share = [], []
    for bw in link_gb_per_s:
        cluster = pod_cluster(graph, bw, workload, chips, utilisation)
        row = []
        for s in seeds:
            res = tictac_compare.compare(graph, cluster, ("random", "tac"), iterations, s)
            row.append(float(res["random"].iteration_time.mean() / res["tac"].iteration_time.mean()))
        gain.append(row)
        r = res["random"]
        share.append(float(np.mean((r.comm + r.push_comm) / r.upper)))
    return PodTicTac(np.asarray(link_gb_per_s, float), np.array(gain), np.array(share))


def explore_tictac(downlink_mbit: float = 16.0, local_steps: int = 1) -> TicTacVsLink:
    """TAC against random order for one phone (ResNet-style training graph) on a `downlink_mbit` link
    (Mbit/s) with `local_steps` steps per download; the defaults are the explorer's opening setting."""
    return tictac_vs_bandwidth("resnet", "train", (validate.positive("downlink_mbit", downlink_mbit) / 1e3,),
                               workers=1, iterations=5, local_steps=local_steps)
