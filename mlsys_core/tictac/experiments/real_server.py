"""Notebook 04, section 3, "The real loopback parameter server": speedups from `ps.run` / `ps.runs` results.

The schedulers of a real-server run take turns iteration by iteration, so each iteration's ratio
compares runs made moments apart; the iterations of one run share its processes and their state, so
the independent unit is the run: `run_gains` gives one value per fresh-process run (the claim
`tictac.real_ps_gain`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.tictac import ps

REAL_PS = ps.PSConfig(model="resnet", mode="infer", workers=2, servers=2, bandwidth_gbps=1.0, width=64,
                      batch_size=2, iterations=4, warmup=2, seed=0)  # the claim's setting
REAL_RUNS = 5  # fresh-process runs of the claim


def real_ps_runs(bandwidth_gbps: float = 1.0, n_runs: int = REAL_RUNS, config: ps.PSConfig = REAL_PS) -> ps.Runs:
    """`n_runs` fresh-process runs of random order and TAC, interleaved, on the real loopback parameter
    server at `config` with each server's link paced to `bandwidth_gbps` (run k has seed config.seed + k).

    Args:
        bandwidth_gbps: Gbit/s, each server's link, shared equally by its workers (> 0).
        n_runs: fresh-process runs (>= 1).
        config: the rest of the setting.
    """
    validate.positive("bandwidth_gbps", bandwidth_gbps)
    return ps.runs(dataclasses.replace(config, bandwidth_gbps=float(bandwidth_gbps)), ("random", "tac"), n_runs)


def interleaved_speedups(trials: dict, baseline: str = "random", scheduler: str = "tac") -> np.ndarray:
    """Per-iteration ratios baseline time / scheduler time after warm-up, from one `ps.run` result
    ({scheduler: `ps.Trial`}) whose schedulers took turns iteration by iteration."""
    base, other = trials[baseline], trials[scheduler]
    if base.warmup != other.warmup or base.iteration_s.shape != other.iteration_s.shape:
        raise ValueError(f"{baseline} and {scheduler} trials must come from one interleaved run")
    return base.iteration_s[base.warmup:] / other.iteration_s[other.warmup:]


def run_gains(real_runs, baseline: str = "random", scheduler: str = "tac") -> np.ndarray:
    """(runs,) one value per run of a `ps.Runs`: the geometric mean of its `interleaved_speedups`."""
    return np.array([float(np.exp(np.log(interleaved_speedups(t, baseline, scheduler)).mean()))
                     for t in real_runs.trials])
