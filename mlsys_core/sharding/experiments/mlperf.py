"""Notebook 01, section 3 (Reproduce): the cost model against MLPerf v0.7 - the time to train on 4096
TPU-v3 chips over the assumed link bandwidth, the step time against Google's logged step over the
assumed utilisation, and the data-parallel roofline.

The sweeps of the assumptions that decide a verdict are the claims' own (`claims.sharding`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.claims.sharding import LINK_SWEEP, UTILISATION_SWEEP

from .. import cost_model


def time_to_train_vs_link(workload: str = "ResNet-50", link_gb_per_s=LINK_SWEEP.values, chips: int = 4096,
                          utilisation: float = 0.4, strategy: str = "wus") -> np.ndarray:
    """The cost model's seconds to train a named workload on `chips` TPU-v3-like chips, one value per
    assumed per-chip link bandwidth; torus all-reduce, the workload's own gradient precision.

    Args:
        workload: a name in `cost_model.WORKLOADS`.
        link_gb_per_s: the link bandwidths per chip to try (GB/s; by default the claims' sweep, 70-330).
        chips: chips in the pod (count).
        utilisation: achieved fraction of peak FLOP/s (0-1].
        strategy: the update layout, a name in `cost_model.STRATEGIES`.
    """
    validate.choice("workload", workload, cost_model.WORKLOADS)
    w = cost_model.WORKLOADS[workload]
    out = []
    for bw in link_gb_per_s:
        chip = dataclasses.replace(cost_model.TPU_V3, link_bytes_per_s=validate.positive("link_gb_per_s", bw) * 1e9,
                                   utilisation=utilisation)
        out.append(cost_model.time_to_train_s(w, chip, chips, strategy))
    return np.array(out)


def model_step_ms_vs_utilisation(model: str = "ResNet-50", utilisation=None, link_gb_per_s: float = 70.0,
                                 overlap: bool = False) -> np.ndarray:
    """The cost model's milliseconds per step for a logged benchmark at the logs' chip count and global
    batch, one value per assumed utilisation.

    Args:
        model: a logged benchmark, "ResNet-50" or "BERT".
        utilisation: achieved fractions of peak FLOP/s to try, each in [0, 1] (None: the claims'
            sweep, `claims.sharding.UTILISATION_SWEEP`).
        link_gb_per_s: link bandwidth per chip (GB/s).
        overlap: hide the gradient all-reduce under the compute.
    """
    if utilisation is None:
        utilisation = UTILISATION_SWEEP.values
    logs = cost_model.mlperf_logs(model)
    w = dataclasses.replace(cost_model.WORKLOADS[cost_model.LOGGED_WORKLOADS[model]], global_batch=logs.global_batch)
    bw = validate.positive("link_gb_per_s", link_gb_per_s) * 1e9
    return np.array([1e3 * cost_model.model_step_s(
        w, dataclasses.replace(cost_model.TPU_V3, utilisation=validate.number("utilisation", u, 0.0, 1.0),
                               link_bytes_per_s=bw), logs.chips, overlap) for u in utilisation])


@dataclasses.dataclass(frozen=True)
class Roofline:
    """Per-chip batch below which a TPU-v3 data-parallel step is communication-bound, and where each
    logged workload sits."""

    workloads: tuple[str, ...]  # logged benchmarks, one row each
    link_gb_per_s: tuple[float, ...]  # assumed link bandwidths per chip (GB/s), one column each
    critical: np.ndarray  # [i, j]: the critical per-chip batch of workloads[i] at link_gb_per_s[j]
    per_chip_batch: np.ndarray  # [i]: the logged global batch over the logged chips

    def communication_bound(self) -> np.ndarray:
        """True where the workload's per-chip batch is below the critical batch."""
        return self.per_chip_batch[:, None] < self.critical


def roofline(link_gb_per_s=(70.0, 330.0)) -> Roofline:
    """The JAX Scaling Book's data-parallel roofline for ResNet-50 and BERT at MLPerf v0.7's 4096 chips."""
    names = tuple(cost_model.LOGGED_WORKLOADS)
    crit = np.zeros((len(names), len(link_gb_per_s)))
    batch = np.zeros(len(names))
    for i, name in enumerate(names):
        logs = cost_model.mlperf_logs(name)
        w = cost_model.WORKLOADS[cost_model.LOGGED_WORKLOADS[name]]
        batch[i] = logs.global_batch / logs.chips
        for j, bw in enumerate(link_gb_per_s):
            chip = dataclasses.replace(cost_model.TPU_V3, link_bytes_per_s=validate.positive("link_gb_per_s", bw) * 1e9)
            crit[i, j] = cost_model.critical_batch_per_chip(w, chip, logs.chips)
    return Roofline(names, tuple(link_gb_per_s), crit, batch)
