"""Notebook 01, section 3 (Reproduce): the cost model against MLPerf v0.7 - its step and its time to train
on 4096 TPU-v3 chips against Google's JAX logs (device-synchronous step, logged steps to the target), over
the assumptions that decide it (link bandwidth, utilisation, overlap, chips), and the data-parallel roofline.

The assumptions' ranges are the claims' own (`claims.sharding`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from mlsys_core import validate
from mlsys_core.claims.sharding import CHIPS, LINK, OVERLAP, UTILISATION

from .. import cost_model


def _pod(model: str, link_gb_per_s: float, utilisation: float, chips: int | None) -> tuple:
    """(logged runs, workload at the logged batch, chip at the assumptions, chip count) of a logged benchmark."""
    logs = cost_model.mlperf_logs(model)
    w = dataclasses.replace(cost_model.WORKLOADS[cost_model.LOGGED_WORKLOADS[model]], global_batch=logs.global_batch)
    link = validate.positive("link_gb_per_s", link_gb_per_s) * 1e9
    chip = dataclasses.replace(cost_model.TPU_V3, link_bytes_per_s=link,
                               utilisation=validate.number("utilisation", utilisation, 0.0, 1.0, low_open=True))
    return logs, w, chip, logs.chips if chips is None else validate.integer("chips", chips, 1, cost_model.MAX_CHIPS)


def model_step_ms(model: str = "ResNet-50", link_gb_per_s: float = LINK.default,
                  utilisation: float = UTILISATION.default, overlap: bool = bool(OVERLAP.default),
                  chips: int | None = None) -> float:
    """The cost model's milliseconds per step (WUS, torus) of a logged benchmark at the logs' global batch.

    Args:
        model: a logged benchmark, "ResNet-50" or "BERT".
        link_gb_per_s: link bandwidth per chip (GB/s).
        utilisation: achieved fraction of peak FLOP/s, in (0, 1].
        overlap: hide the gradient all-reduce under the compute.
        chips: chips in the pod (None: the logs' 4096).
    """
    logs, w, chip, chips = _pod(model, link_gb_per_s, utilisation, chips)
    return 1e3 * cost_model.model_step_s(w, chip, chips, validate.boolean("overlap", overlap))


def model_time_to_train_s(model: str = "ResNet-50", link_gb_per_s: float = LINK.default,
                          utilisation: float = UTILISATION.default, overlap: bool = bool(OVERLAP.default),
                          chips: int | None = None) -> float:
    """The cost model's seconds of training steps to the target: `model_step_ms` times the logs' median
    steps to the target (ResNet-50: 92 epochs; BERT: 496 steps). No start-up or evaluation time, which the
    MLPerf clock includes.

    Args:
        model: a logged benchmark, "ResNet-50" or "BERT".
        link_gb_per_s: link bandwidth per chip (GB/s).
        utilisation: achieved fraction of peak FLOP/s, in (0, 1].
        overlap: hide the gradient all-reduce under the compute.
        chips: chips in the pod (None: the logs' 4096).
    """
    steps = cost_model.mlperf_logs(model).median_steps
    return model_step_ms(model, link_gb_per_s, utilisation, overlap, chips) * steps / 1e3


def time_to_train_vs_link(model: str = "ResNet-50", link_gb_per_s: Sequence[float] = LINK.values) -> np.ndarray:
    """`model_time_to_train_s` of a logged benchmark, one value per link bandwidth (GB/s), the other
    assumptions at the claims' defaults."""
    return np.array([model_time_to_train_s(model, bw) for bw in link_gb_per_s])


def step_ms_vs_chips(model: str = "ResNet-50", chips: Sequence[float] = CHIPS.values) -> np.ndarray:
    """`model_step_ms` of a logged benchmark at the logs' global batch, one value per chip count."""
    return np.array([model_step_ms(model, chips=int(c)) for c in chips])


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
