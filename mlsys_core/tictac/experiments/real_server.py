"""Notebook 04, section 3, "The real loopback parameter server": speedups from `ps.run` / `ps.runs` results.

The schedulers of a real-server run take turns iteration by iteration, so each iteration's ratio
compares runs made moments apart (the claim `tictac.real_ps_gain`).
"""

from __future__ import annotations

import numpy as np


def interleaved_speedups(trials: dict, baseline: str = "random", scheduler: str = "tac") -> np.ndarray:
    """Per-iteration ratios baseline time / scheduler time after warm-up, from one `ps.run` result
    ({scheduler: `ps.Trial`}) whose schedulers took turns iteration by iteration."""
    base, other = trials[baseline], trials[scheduler]
    if base.warmup != other.warmup or base.iteration_s.shape != other.iteration_s.shape:
        raise ValueError(f"{baseline} and {scheduler} trials must come from one interleaved run")
    return base.iteration_s[base.warmup:] / other.iteration_s[other.warmup:]


def pooled_speedups(real_runs, baseline: str = "random", scheduler: str = "tac") -> np.ndarray:
    """`interleaved_speedups` of every run of a `ps.Runs`, concatenated (warm-up of each run dropped)."""
    return np.concatenate([interleaved_speedups(t, baseline, scheduler) for t in real_runs.trials])
