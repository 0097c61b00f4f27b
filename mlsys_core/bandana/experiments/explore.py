"""Section 4 of notebook 02, Explore: one point of the cache design space on the small workload.

`explore_cache` computes what the widget shows for one setting of its controls (its defaults are the
widget's opening setting); `plots.explore_cache` draws it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.evaluation import PLACEMENTS, small_workload
from mlsys_core.bandana.experiments.reproduce import threshold_table
from mlsys_core.bandana.experiments.system import TAIL_UTILISATION, queue_profile

EXPLORE_FRACTIONS = (0.02, 0.05, 0.1, 0.2, 0.4)  # post-table cache sizes of the hit-rate curves


@dataclasses.dataclass(frozen=True, eq=False)
class DesignPoint:
    """The widget's view of one point of the design space (the post table's cache)."""

    fractions: np.ndarray  # cache sizes of the hit-rate curves, fraction of the post table's bytes
    full: np.ndarray  # hit rate at each of `fractions`, full simulation
    mini: np.ndarray  # hit rate at each of `fractions`, mini-cache estimate at `rate`
    hit_rate: float  # at the chosen cache size (whole workload)
    effective_bandwidth: float  # useful / read bytes at the chosen cache size (whole workload)
    utilisation: float  # of the device's peak IOPS, for `latency_us`
    latency_us: dict[float, float]  # percentile -> request latency (us), queueing model
    post_share: float  # of the requests' lookups
    placement: str  # the placement method (a key of evaluation.PLACEMENTS)
    threshold: int  # the admission threshold t, every table
    rate: float  # the mini-caches' SHARDS sampling rate


def explore_cache(cache_fraction: float = 0.2, threshold: int = 0, placement: str = "sequential",
                  sampling_rate: float = 0.05, post_lookups_per_request: float = 21.0, seed: int = 0) -> DesignPoint:
    """One point of the design space on the small workload (`evaluation.small_workload`): the full
    simulation of the post table's cache and its mini-cache estimate at `sampling_rate`, plus hit rate,
    effective bandwidth and request latency through the queueing device model at `TAIL_UTILISATION`
    of its peak IOPS.

    Args:
        cache_fraction: the DRAM cache, as a fraction of all table bytes, in (0, 1].
        threshold: the admission threshold t (past lookups; `cache.NO_PREFETCH` admits none), every table.
        placement: the placement method, a key of `evaluation.PLACEMENTS`.
        sampling_rate: the mini-caches' SHARDS sampling rate, in (0, 1].
        post_lookups_per_request: the post table's mean lookups per request (the user table keeps 1).
        seed: the workload's, placement's and sampling hash's seed (int >= 0).
    """
    cache_fraction = validate.probability("cache_fraction", cache_fraction, open_low=True)
    threshold = validate.integer("threshold", threshold, 0)
    validate.choice("placement", placement, PLACEMENTS)
    sampling_rate = validate.number("sampling_rate", sampling_rate, 0.0, 1.0, low_open=True)
    seed = validate.seed("seed", seed)
    run = small_workload(post_lookups_per_request, placement, seed)
    exp, blocks = run.experiment, run.blocks
    fractions = np.array(EXPLORE_FRACTIONS)
    full = threshold_table(exp, blocks, "post", [threshold], fractions)
    mini = threshold_table(exp, blocks, "post", [threshold], fractions, rate=sampling_rate, seed=seed)
    res = exp.simulate(blocks, cache_fraction, threshold)
    post_share = float(np.mean(exp.future.table == 0))
    latency = dict(zip((50.0, 99.0, 99.9), queue_profile(res, (TAIL_UTILISATION,), seed=seed)[0].tolist()))
    return DesignPoint(fractions, full.hit_rates[0], mini.hit_rates[0], res.hit_rate, res.effective_bandwidth,
                       TAIL_UTILISATION, latency, post_share, placement, threshold, sampling_rate)
