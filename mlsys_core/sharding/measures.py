"""The measurement behind each of Paper 1's claims (and the suite's start-here claim), as a function of the
claim's declared assumptions (`mlsys_core.claims.sharding`, `claims.suite`).

One small function per claim: its keyword arguments are the claim's parameters, with their defaults; it
returns exactly what the notebook passes to `report.check` (a number, or one value per independent run);
it is deterministic given its seeds (the timings are what they are). The report calls it at each
non-default value of each parameter the notebook did not sweep; the notebook's headline comes from the
same call at the defaults. The logic lives in `experiments`; these only pick the setting.
"""

from __future__ import annotations

import jax
import numpy as np

from mlsys_core import validate
from mlsys_core.seeds import DEFAULT_SEEDS

from . import experiments, models

FFN = (384, 1536, 4)  # the optimizer-heavy FFN stack: d_model, d_ff, blocks (4.7 M parameters)


def _pod(model: str, link_gb_per_s: float, utilisation: float, overlap: float, chips: float) -> dict:
    """The cost-model arguments of one pod claim.

    Args:
        model: "ResNet-50" or "BERT".
        link_gb_per_s: link bandwidth per chip (GB/s).
        utilisation: achieved fraction of peak FLOP/s.
        overlap: 1 hides the all-reduce under the compute, 0 does not.
        chips: chips in the pod.
    """
    return {
        "model": model,
        "link_gb_per_s": float(link_gb_per_s),
        "utilisation": float(utilisation),
        "overlap": validate.flag("overlap", overlap),
        "chips": validate.whole("chips", chips),
    }


@validate.numeric_arguments
def resnet50_step_4096(
    link_gb_per_s: float = 330.0, utilisation: float = 0.4, overlap: float = 0.0, chips: float = 4096.0
) -> float:
    """The cost model's ResNet-50 step (ms) at the logged batch 65,536
    (`experiments.model_step_ms`). Args: see `_pod`."""
    return experiments.model_step_ms(**_pod("ResNet-50", link_gb_per_s, utilisation, overlap, chips))


@validate.numeric_arguments
def bert_step_4096(
    link_gb_per_s: float = 330.0, utilisation: float = 0.4, overlap: float = 0.0, chips: float = 4096.0
) -> float:
    """The cost model's BERT step (ms) at the logged batch 8,192
    (`experiments.model_step_ms`). Args: see `_pod`."""
    return experiments.model_step_ms(**_pod("BERT", link_gb_per_s, utilisation, overlap, chips))


@validate.numeric_arguments
def resnet50_time_4096(
    link_gb_per_s: float = 330.0, utilisation: float = 0.4, overlap: float = 0.0, chips: float = 4096.0
) -> float:
    """The cost model's seconds of ResNet-50 training steps to the logged target
    (`experiments.model_time_to_train_s`). Args: see `_pod`."""
    return experiments.model_time_to_train_s(**_pod("ResNet-50", link_gb_per_s, utilisation, overlap, chips))


@validate.numeric_arguments
def bert_time_4096(
    link_gb_per_s: float = 330.0, utilisation: float = 0.4, overlap: float = 0.0, chips: float = 4096.0
) -> float:
    """The cost model's seconds of BERT training steps to the logged target
    (`experiments.model_time_to_train_s`). Args: see `_pod`."""
    return experiments.model_time_to_train_s(**_pod("BERT", link_gb_per_s, utilisation, overlap, chips))


@validate.numeric_arguments
def wus_matches_replicated(devices: float = 8.0) -> np.ndarray:
    """Per seed, max |WUS - replicated| after 20 Adam steps of the digits MLP on `devices` devices."""
    return experiments.strategy_agreement(
        "wus", "replicated", ("adam",), seeds=DEFAULT_SEEDS, steps=20, devices=validate.whole("devices", devices)
    ).worst_per_seed


@validate.numeric_arguments
def lamb_lars_shard_exact(devices: float = 8.0) -> np.ndarray:
    """Per seed, the worse of LAMB and LARS: max |WUS - one device| after 20 steps on `devices` devices."""
    return experiments.strategy_agreement(
        "wus", "single", ("lamb", "lars"), seeds=DEFAULT_SEEDS, steps=20, devices=validate.whole("devices", devices)
    ).worst_per_seed


@validate.numeric_arguments
def every_transform_exact(devices: float = 8.0) -> float:
    """The worst max |Δparam| of nine optax transforms under WUS and FSDP against one device."""
    exact = experiments.transform_exactness(devices=validate.whole("devices", devices), strategy_names=("wus", "fsdp"))
    return float(exact.max_diff.max())


@validate.numeric_arguments
def distributed_bn_global(per_replica_batch: float = 4.0) -> np.ndarray:
    """Per seed, max |BN over 8 replicas - one-device BN| after 10 LARS steps."""
    return experiments.bn_agreement(
        seeds=DEFAULT_SEEDS, steps=10, per_replica_batch=validate.whole("per_replica_batch", per_replica_batch)
    ).worst_per_seed


@validate.numeric_arguments
def wus_optimizer_state_fraction(devices: float = 8.0) -> float:
    """WUS's optimizer-state bytes per device over replicated's, times N (1 = exactly 1/N)."""
    n = validate.whole("devices", devices)
    return experiments.optimizer_state_fraction(models.FFNStack(*FFN), devices=n) * n


@validate.numeric_arguments
def wus_collective_time(d_model: float = 384.0) -> np.ndarray:
    """Per independent run, reduce-scatter + all-gather over all-reduce time of the FFN stack's gradient
    (width `d_model`, 4 blocks) on the 8-device mesh."""
    model = models.FFNStack(validate.whole("d_model", d_model), 4 * validate.whole("d_model", d_model), FFN[2])
    n_params = models.parameter_count(jax.eval_shape(model.init, jax.random.key(0)))
    return experiments.collective_runs(n_params, devices=8, runs=5, repeats=6)


@validate.numeric_arguments
def wus_speedup(per_device_batch: float = 2.0) -> np.ndarray:
    """Per independent timed run, replicated over WUS median step time of the FFN stack with Adam."""
    return experiments.timed_runs(
        models.FFNStack(*FFN),
        per_device_batch=validate.whole("per_device_batch", per_device_batch),
        devices=8,
        seeds=DEFAULT_SEEDS,
        repeats=3,
    ).speedups


@validate.numeric_arguments
def cost_model_speedup(per_device_batch: float = 2.0) -> np.ndarray:
    """Per independent timed run, the measured WUS speed-up over the cost model's prediction from the
    run's own terms (`cost_model.shared_host_step_s` on simulated devices)."""
    return experiments.timed_runs(
        models.FFNStack(*FFN),
        per_device_batch=validate.whole("per_device_batch", per_device_batch),
        devices=8,
        seeds=DEFAULT_SEEDS,
        repeats=3,
        terms=True,
    ).measured_over_predicted


@validate.numeric_arguments
def shard_bytes(devices: float = 8.0) -> float:
    """Bytes of one device's shard of an (16 x 8) float32 array split over `devices` rows, over the
    array's bytes, times N (1 = exactly 1/N)."""
    return experiments.shard_fraction(validate.whole("devices", devices)) * validate.whole("devices", devices)
