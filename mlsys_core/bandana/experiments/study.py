"""The seeded claims of notebook 02 (sections 3 and 5), measured on small workloads, one per (affinity, seed).

Each workload (`STUDY_SCALE` tables, `STUDY_REQUESTS` requests, the post table's co-access `affinity`) learns
sequential and SHP placement on its first half (`_placed`) and is measured on its second; with the DRAM
cache, each placement gets the per-table t its mini-caches pick on the past (`_scored`). Both steps are
memoised, so the notebook's cells and the report's sweeps of `measures` that share a workload share its
SHP run. Every public function returns one value per seed: the unit of replication is an independent
workload.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.cache import NO_PREFETCH
from mlsys_core.bandana.evaluation import PLACEMENTS, Experiment, learn_placements
from mlsys_core.bandana.experiments.reproduce import PlacementScore, compare_placements, dram_saved_at_equal_hit_rate
from mlsys_core.bandana.experiments.system import UTILISATIONS, queue_profile
from mlsys_core.bandana.hypergraph import Hypergraph, blocks_read
from mlsys_core.bandana.nvm import NVMDevice
from mlsys_core.bandana.queueing import ServiceTimes
from mlsys_core.bandana.tables import default_tables
from mlsys_core.bandana.workload import WorkloadConfig
from mlsys_core.seeds import DEFAULT_SEEDS

STUDY_SCALE = 0.25  # table sizes of the small workloads (`tables.default_tables(scale)`)
STUDY_REQUESTS = 20_000  # requests per workload, half past and half future
STUDY_AFFINITY = 0.8  # the post table's co-access affinity where the claims are decided
STUDY_CACHE = 0.1  # the DRAM cache, fraction of all table bytes, where the claims are decided
# DRAM cache sizes (fraction of all table bytes) of the hit-rate curves `dram_saved` interpolates
STUDY_CURVE = (0.0025, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.4)


@dataclasses.dataclass(frozen=True, eq=False)
class StudyRun:
    """One small workload split in time, with sequential and SHP placement learned on its past."""

    experiment: Experiment  # the workload split in time
    placements: dict  # {"sequential" | "shp": one Placement per table}, learned on the past


@dataclasses.dataclass(frozen=True, eq=False)
class PlacementGains:
    """SHP / sequential effective bandwidth per seed, with the DRAM cache (each at its mini-caches' t) and without."""

    with_cache: np.ndarray  # (len(seeds),)
    without_cache: np.ndarray  # (len(seeds),)


@dataclasses.dataclass(frozen=True, eq=False)
class OracleGains:
    """The gain with both placements at the t chosen with the answer, and what the mini-caches' t costs SHP."""

    gain: np.ndarray  # (len(seeds),) SHP / sequential effective bandwidth, both at their oracle t
    hit_rate_lost: np.ndarray  # (len(seeds),) SHP's hit rate at the oracle t minus at the mini-caches' t


@functools.lru_cache(maxsize=64)
def _placed(affinity: float, seed: int, scale: float, num_requests: int) -> StudyRun:
    post, user = default_tables(scale)
    tables = (dataclasses.replace(post, affinity=affinity), user)
    exp = Experiment.from_config(WorkloadConfig(tables=tables, num_requests=num_requests, seed=seed))
    return StudyRun(exp, {m: learn_placements(exp.past, m, seed) for m in ("sequential", "shp")})


@functools.lru_cache(maxsize=128)
def _scored(affinity: float, seed: int, cache_fraction: float, scale: float, num_requests: int,
            oracle: bool) -> dict[str, PlacementScore]:
    run = _placed(affinity, seed, scale, num_requests)
    return compare_placements(run.experiment, run.placements, cache_fraction, seed=seed, oracle=oracle)


def _checked(affinity: float, seeds, scale: float, num_requests: int) -> tuple[float, list[int], float, int]:
    affinity = float(validate.probability("affinity", affinity))
    seeds = [int(s) for s in validate.seeds("seeds", seeds)]
    if len(seeds) < 2:
        raise ValueError(f"seeds must hold >= 2 independent workloads, got {seeds}")
    return affinity, seeds, float(validate.positive("scale", scale)), validate.integer("num_requests", num_requests, 2)


def _cache(cache_fraction: float) -> float:
    return float(validate.probability("cache_fraction", cache_fraction, open_low=True))


def placement_gains(affinity: float = STUDY_AFFINITY, cache_fraction: float = STUDY_CACHE, seeds=DEFAULT_SEEDS,
                    scale: float = STUDY_SCALE, num_requests: int = STUDY_REQUESTS) -> PlacementGains:
    """SHP / sequential effective bandwidth on one small workload per seed, with the cache at the per-table t
    each placement's mini-caches pick on the past, and without the cache.

    Args:
        affinity: the post table's co-access affinity, in [0, 1].
        cache_fraction: the DRAM cache, as a fraction of all table bytes, in (0, 1].
        seeds: the workload, placement and mini-cache hash seeds (>= 2 ints >= 0).
        scale: the tables' size (`tables.default_tables`).
        num_requests: requests per workload, half past and half future.
    """
    affinity, seeds, scale, num_requests = _checked(affinity, seeds, scale, num_requests)
    rows = [_scored(affinity, s, _cache(cache_fraction), scale, num_requests, False) for s in seeds]
    return PlacementGains(np.array([r["shp"].eb_cache / r["sequential"].eb_cache for r in rows]),
                          np.array([r["shp"].eb_no_cache / r["sequential"].eb_no_cache for r in rows]))


def oracle_gains(affinity: float = STUDY_AFFINITY, cache_fraction: float = STUDY_CACHE, seeds=DEFAULT_SEEDS,
                 scale: float = STUDY_SCALE, num_requests: int = STUDY_REQUESTS) -> OracleGains:
    """The gain with each placement at the t chosen with the answer (an upper bound no deployed system
    reaches), and SHP's hit rate lost by the mini-caches' t against it, one small workload per seed.
    Arguments as `placement_gains`."""
    affinity, seeds, scale, num_requests = _checked(affinity, seeds, scale, num_requests)
    rows = [_scored(affinity, s, _cache(cache_fraction), scale, num_requests, True) for s in seeds]
    gain, lost = [], []
    for r in rows:
        shp, seq = r["shp"], r["sequential"]
        assert shp.oracle_eb_cache and seq.oracle_eb_cache and shp.oracle_hit_rate is not None  # oracle=True
        gain.append(shp.oracle_eb_cache / seq.oracle_eb_cache)
        lost.append(shp.oracle_hit_rate - shp.hit_rate)
    return OracleGains(np.array(gain), np.array(lost))


def _post_blocks(run: StudyRun, placement) -> int:
    exp = run.experiment
    return blocks_read(Hypergraph.from_trace(exp.future, exp.tables[0].name), placement)


def blocks_ratios(affinity: float = STUDY_AFFINITY, seeds=DEFAULT_SEEDS, scale: float = STUDY_SCALE,
                  num_requests: int = STUDY_REQUESTS) -> np.ndarray:
    """(len(seeds),) sequential / SHP post-table blocks the future's requests read, no cache, one small
    workload per seed. Arguments as `placement_gains`."""
    affinity, seeds, scale, num_requests = _checked(affinity, seeds, scale, num_requests)
    out = []
    for s in seeds:
        run = _placed(affinity, s, scale, num_requests)
        out.append(_post_blocks(run, run.placements["sequential"][0]) / _post_blocks(run, run.placements["shp"][0]))
    return np.array(out)


def kmeans_ratios(affinity: float = STUDY_AFFINITY, seeds=DEFAULT_SEEDS, scale: float = STUDY_SCALE,
                  num_requests: int = STUDY_REQUESTS) -> np.ndarray:
    """(len(seeds),) k-means / SHP post-table blocks the future's requests read, no cache, one small
    workload per seed (k-means on the post table's values, drawn and clustered with the seed).
    Arguments as `placement_gains`."""
    affinity, seeds, scale, num_requests = _checked(affinity, seeds, scale, num_requests)
    out = []
    for s in seeds:
        run = _placed(affinity, s, scale, num_requests)
        exp = run.experiment
        kmeans = PLACEMENTS["kmeans"].learn(exp.past, exp.tables[0], s)
        out.append(_post_blocks(run, kmeans) / _post_blocks(run, run.placements["shp"][0]))
    return np.array(out)


def dram_saved(affinity: float = STUDY_AFFINITY, cache_fraction: float = STUDY_CACHE, seeds=DEFAULT_SEEDS,
               scale: float = STUDY_SCALE, num_requests: int = STUDY_REQUESTS) -> np.ndarray:
    """(len(seeds),) the DRAM SHP + its mini-caches' t (chosen at `cache_fraction`) saves at the hit rate a
    plain vector cache (sequential placement, t = inf) reaches with `cache_fraction` of the table bytes,
    hit rates interpolated over `STUDY_CURVE`; one small workload per seed.

    Args:
        affinity: the post table's co-access affinity, in [0, 1].
        cache_fraction: the plain cache's size, one of `STUDY_CURVE` below its largest (where SHP beats the
            plain cache even at `STUDY_CURVE[0]`, the saving is the floor 1 - STUDY_CURVE[0] / cache_fraction).
        seeds: the workload, placement and mini-cache hash seeds (>= 2 ints >= 0).
        scale: the tables' size (`tables.default_tables`).
        num_requests: requests per workload, half past and half future.
    """
    affinity, seeds, scale, num_requests = _checked(affinity, seeds, scale, num_requests)
    cache_fraction = _cache(cache_fraction)
    curve = np.asarray(STUDY_CURVE)
    hit = np.flatnonzero(np.isclose(curve[:-1], cache_fraction))
    if hit.size == 0:
        raise ValueError(f"cache_fraction must be one of {STUDY_CURVE[:-1]}, got {cache_fraction!r}")
    out = []
    for s in seeds:
        run, t = _placed(affinity, s, scale, num_requests), _scored(affinity, s, cache_fraction, scale,
                                                                    num_requests, False)["shp"].t
        exp = run.experiment
        seq, shp = exp.blocks(run.placements["sequential"]), exp.blocks(run.placements["shp"])
        base = np.array([exp.simulate(seq, f, NO_PREFETCH).hit_rate for f in curve])
        new = np.array([exp.simulate(shp, f, t).hit_rate for f in curve])
        out.append(dram_saved_at_equal_hit_rate(curve, base, new, int(hit[0])))
    return np.array(out)


def latency_tails(utilisations=UTILISATIONS, service_scv: float = 1.0, affinity: float = STUDY_AFFINITY,
                  cache_fraction: float = STUDY_CACHE, seeds=DEFAULT_SEEDS, scale: float = STUDY_SCALE,
                  num_requests: int = STUDY_REQUESTS, device: NVMDevice = NVMDevice()) -> np.ndarray:
    """(len(utilisations), len(seeds)) p99.9 / p50 request latency of SHP + cache (at its mini-caches' t)
    through the queueing device model (Poisson arrivals), one small workload per seed.

    Args:
        utilisations: the device loads, fractions of its peak IOPS in (0, 1).
        service_scv: the squared coefficient of variation of a read's service time (>= 0: 0 every read
            the same, 1 exponential; `queueing.ServiceTimes.with_scv`).
        affinity: the post table's co-access affinity, in [0, 1].
        cache_fraction: the DRAM cache, as a fraction of all table bytes, in (0, 1].
        seeds: the workload, placement, hash and arrival seeds (>= 2 ints >= 0).
        scale: the tables' size (`tables.default_tables`).
        num_requests: requests per workload, half past and half future.
        device: the NVM device.
    """
    affinity, seeds, scale, num_requests = _checked(affinity, seeds, scale, num_requests)
    cache_fraction, service = _cache(cache_fraction), ServiceTimes.with_scv(service_scv)
    out = []
    for s in seeds:
        run, t = _placed(affinity, s, scale, num_requests), _scored(affinity, s, cache_fraction, scale,
                                                                    num_requests, False)["shp"].t
        exp = run.experiment
        q = queue_profile(exp.simulate(exp.blocks(run.placements["shp"]), cache_fraction, t), utilisations,
                          device, service, seed=s)
        out.append(q[:, 2] / q[:, 0])
    return np.array(out).T
