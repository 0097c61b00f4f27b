"""The measurement behind each synergy claim, as a function of its declared assumptions.

One function per claim of `mlsys_core.claims.synergy`, named after it: its keyword arguments are the
claim's parameters (defaults: the parameters' defaults), and it returns what notebook 05 hands to
`report.check` for that claim, a number or one value per seed. The report calls them to vary each
assumption over its range; the notebook takes its headlines from the same calls (or from the same
experiment with the same arguments and seeds). The work is done in the synergy's modules; these only
translate a parameter (a float from the claim's declaration) into their arguments.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.seeds import DEFAULT_SEEDS
from mlsys_core.synergy import bf16, cast_as_fl, fault_tolerance, fedsgd, nvm, on_devices, tictac_links

NVM_WORKLOADS = ("BERT-large", "ResNet-50")  # the `model` parameter of nvm_pod_memory_bill: 0, 1
LOSS_CONFIG = fault_tolerance.FaultConfig(
    failure_rate=0.01, checkpoint_interval=10, restart_steps=5.0, budget_steps=80.0
)  # quorum_commit_loss's pod


@validate.numeric_arguments
def dp_equals_fedsgd(learning_rate: float = 0.1) -> np.ndarray:
    """(seeds,) |mesh - FedSGD| over how far training moved the weights, per seed."""
    return fedsgd.fedsgd_equivalence(DEFAULT_SEEDS, learning_rate=learning_rate)


@validate.numeric_arguments
def bf16_fl_gains_more(
    link_gb_per_s: float = 330.0,
    overlap: float = 0.0,
    utilisation: float = 0.4,
    phone_link_factor: float = 1.0,
    chips: float = 4096.0,
) -> np.ndarray:
    """(seeds,) percentage points: the median phone's bf16 saving minus the pod's (BERT-large, WUS)."""
    return bf16.bf16_gap_points(
        link_gb_per_s,
        utilisation,
        validate.flag("overlap", overlap),
        phone_link_factor,
        validate.whole("chips", chips),
        seeds=DEFAULT_SEEDS,
    )


@validate.numeric_arguments
def bf16_deltas_keep_accuracy(alpha: float = 0.5) -> np.ndarray:
    """(seeds,) float32 minus bf16-delta test accuracy after 30 FedAvg rounds."""
    return bf16.bf16_accuracy_gap(DEFAULT_SEEDS, "bfloat16", 30, alpha=alpha).final_gap


@validate.numeric_arguments
def nvm_optimizer_state_slowdown(
    chips: float = 1024.0, link_gb_per_s: float = 330.0, overlap: float = 0.0, peak_kiops: float = 585.0
) -> float:
    """x step time: BERT-large's WUS optimizer-state shard streamed whole from NVM each step."""
    return nvm.nvm_optimizer_state(
        "BERT-large",
        validate.whole("chips", chips),
        link_gb_per_s=link_gb_per_s,
        overlap=validate.flag("overlap", overlap),
        peak_kiops=peak_kiops,
    ).wus.slowdown


@validate.numeric_arguments
def nvm_sparse_state_slowdown(
    cache_fraction: float = 0.1,
    chips: float = 1024.0,
    link_gb_per_s: float = 330.0,
    overlap: float = 0.0,
    peak_kiops: float = 585.0,
) -> float:
    """x step time: the same shard read at Bandana's measured effective bandwidth (SHP, this DRAM cache)."""
    useful = nvm.bandana_effective_bandwidth("shp", cache_fraction)
    return nvm.nvm_optimizer_state(
        "BERT-large",
        validate.whole("chips", chips),
        useful_fraction=useful,
        link_gb_per_s=link_gb_per_s,
        overlap=validate.flag("overlap", overlap),
        peak_kiops=peak_kiops,
    ).wus.slowdown


@validate.numeric_arguments
def nvm_pod_memory_bill(
    peak_kiops: float = 585.0,
    model: float = 0.0,
    chips: float = 1024.0,
    link_gb_per_s: float = 330.0,
    overlap: float = 0.0,
) -> float:
    """% of the pod's memory bill saved by the memory NVM can hold without slowing the step."""
    workload = NVM_WORKLOADS[validate.integer("model", validate.whole("model", model), 0, len(NVM_WORKLOADS) - 1)]
    return (
        100
        * nvm.nvm_movable_memory(
            workload,
            validate.whole("chips", chips),
            link_gb_per_s=link_gb_per_s,
            overlap=validate.flag("overlap", overlap),
            peak_kiops=peak_kiops,
        ).memory_bill_saving
    )


@validate.numeric_arguments
def tictac_helps_fl(percentile: float = 50.0, local_steps: float = 1.0, phone_gflops: float = 10.0) -> np.ndarray:
    """(seeds,) TAC over random order for one phone at this percentile of the population's downlink."""
    return tictac_links.tictac_phone_percentiles(
        (percentile,),
        DEFAULT_SEEDS,
        iterations=5,
        local_steps=validate.whole("local_steps", local_steps),
        gflops=phone_gflops,
    ).tac_speedup[0]


@validate.numeric_arguments
def tictac_helps_pods(link_gb_per_s: float = 330.0, chips: float = 4096.0, utilisation: float = 0.4) -> np.ndarray:
    """(seeds,) TAC over random order on a cluster with the pod step's transfer/compute balance."""
    return tictac_links.tictac_pod(
        (link_gb_per_s,), DEFAULT_SEEDS, chips=validate.whole("chips", chips), utilisation=utilisation
    ).tac_speedup[0]


@validate.numeric_arguments
def quorum_commit_goodput(
    failure_rate: float = 1e-3, checkpoint_interval: float = 50.0, restart_steps: float = 20.0, replicas: float = 8.0
) -> np.ndarray:
    """(seeds,) quorum commit's goodput minus restart-from-checkpoint's."""
    config = fault_tolerance.FaultConfig(replicas=validate.whole("replicas", replicas), restart_steps=restart_steps)
    grid = fault_tolerance.goodput_grid(
        (failure_rate,), (validate.whole("checkpoint_interval", checkpoint_interval),), DEFAULT_SEEDS, config
    )
    return grid.quorum_gain[0, 0]


@validate.numeric_arguments
def quorum_commit_loss(failure_rate: float = 0.01, restart_steps: float = 5.0) -> np.ndarray:
    """(seeds,) restart's test loss minus quorum's after 80 step times of WUS training."""
    config = dataclasses.replace(LOSS_CONFIG, restart_steps=restart_steps)
    losses = fault_tolerance.loss_vs_failure_rate((failure_rate,), DEFAULT_SEEDS, config)
    return losses.restart[0] - losses.quorum[0]


@validate.numeric_arguments
def deadline_beats_waiting(
    straggler_p: float = 0.03, deadline: float = 1.5, slow_factor: float = 4.0, replicas: float = 8.0
) -> np.ndarray:
    """(seeds,) goodput with a reporting deadline over goodput waiting for every replica."""
    r = fault_tolerance.straggler_goodput(
        (straggler_p,), deadline, DEFAULT_SEEDS, slow_factor=slow_factor, replicas=validate.whole("replicas", replicas)
    )
    return r.deadline[0] / r.wait[0]


@validate.numeric_arguments
def dispatch_one_round(devices: float = 100.0) -> float:
    """Rounds: the median phone's dispatch over one round's model download and update upload."""
    return float(cast_as_fl.dispatch_cost((validate.whole("devices", devices),)).phone_ratio[0])


@validate.numeric_arguments
def cast_as_fl_rounds(goal_count: float = 10.0, alpha: float = 0.5, drop_out: float = 0.08) -> np.ndarray:
    """(seeds,) rounds to the data-parallel reference's accuracy, plus the dispatch round, over its steps
    (Dirichlet split, the protocol's participants)."""
    name = "Dirichlet, protocol"
    run = cast_as_fl.cast_as_fl(
        (name,),
        devices=100,
        goal_count=validate.whole("goal_count", goal_count),
        rounds=30,
        alpha=alpha,
        seeds=DEFAULT_SEEDS,
        horizon=2,
        drop_out=drop_out,
    )
    return run.extra_rounds_cost[name]


@validate.numeric_arguments
def federated_eval_equals_pod(devices: float = 40.0) -> np.ndarray:
    """(seeds,) |federated round with everyone - the pod's distributed accuracy|."""
    r = on_devices.evaluation_on_devices(
        goal_counts=(), devices=validate.whole("devices", devices), seeds=DEFAULT_SEEDS
    )
    return np.abs(r.everyone - r.pod)


@validate.numeric_arguments
def federated_eval_partial_error(goal_count: float = 10.0, alpha: float = 0.5) -> np.ndarray:
    """(seeds,) RMS error of the protocol's partial rounds over the binomial sampling error of their digits."""
    g = validate.whole("goal_count", goal_count)
    return on_devices.evaluation_on_devices(goal_counts=(g,), alpha=alpha, seeds=DEFAULT_SEEDS).error_over_sampling[g]


@validate.numeric_arguments
def bn_groups_on_devices(alpha: float = 0.1) -> np.ndarray:
    """(seeds,) test accuracy with batch-norm statistics over 8 devices minus with local statistics."""
    bn = on_devices.bn_on_devices(group_sizes=(1, 8), alpha=alpha, seeds=DEFAULT_SEEDS)
    return bn[8] - bn[1]

