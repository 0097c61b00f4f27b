"""Learn on the past, measure on the future: the placement methods, the trace split, the cache run.

- `PLACEMENTS`: the swappable placement methods (sequential, random, k-means, SHP), each an object
  whose `learn(past, table, seed)` gives one table's `Placement` from the past's requests;
  `learn_placements` places every table by one of them. Adding a method is adding an object.
- `Experiment`: a trace split in time, as in the paper: placements and admission counts come from
  the past, every metric is measured on the future (`Experiment.simulate` runs the DRAM cache).
- `small_workload` / `effective_bandwidth`: notebook 02's small workload (25% scale, 20,000
  requests) with one placement learned, and the effective bandwidth of its cache (the explorer and
  the cross-paper synergy read it).
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from typing import ClassVar

import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.cache import CacheConfig, CacheResult, simulate_cache
from mlsys_core.bandana.hypergraph import Hypergraph
from mlsys_core.bandana.placement import (
    BlockMap,
    Placement,
    block_map,
    kmeans_placement,
    random_placement,
    sequential_placement,
)
from mlsys_core.bandana.queueing import Arrivals, PoissonArrivals, TraceArrivals
from mlsys_core.bandana.shp import SHPConfig, shp_placement
from mlsys_core.bandana.tables import EmbeddingTable, default_tables
from mlsys_core.bandana.trace import Trace
from mlsys_core.bandana.workload import WorkloadConfig, generate_trace, table_vectors

# --- the placement methods -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sequential:
    """Vectors in id order (`placement.sequential_placement`): the baseline; it reads neither the past
    nor the seed."""

    name: ClassVar[str] = "sequential"  # its key in PLACEMENTS

    def learn(self, past: Trace, table: EmbeddingTable, seed: int) -> Placement:
        """The id-order placement of `table`."""
        return sequential_placement(table)


@dataclasses.dataclass(frozen=True)
class Random:
    """Vectors in a random order drawn from the seed (`placement.random_placement`)."""

    name: ClassVar[str] = "random"  # its key in PLACEMENTS

    def learn(self, past: Trace, table: EmbeddingTable, seed: int) -> Placement:
        """A random placement of `table` drawn from `seed`."""
        return random_placement(table, seed)


@dataclasses.dataclass(frozen=True)
class KMeans:
    """The paper's unsupervised "semantic" placement: k-means on the vector values
    (`placement.kmeans_placement`); the values are the table's own (`workload.table_vectors`)."""

    name: ClassVar[str] = "kmeans"  # its key in PLACEMENTS

    def learn(self, past: Trace, table: EmbeddingTable, seed: int) -> Placement:
        """k-means on `table`'s values drawn from `seed`, clustered with `seed`."""
        return kmeans_placement(table, table_vectors(table, seed), seed)


@dataclasses.dataclass(frozen=True)
class SHP:
    """The Social Hash Partitioner learned on the past's requests of the table (`shp.shp_placement`
    with `config`); a table the past never reads keeps id order."""

    name: ClassVar[str] = "shp"  # its key in PLACEMENTS
    config: SHPConfig = SHPConfig()  # the search's settings; its own `seed` seeds the search

    def learn(self, past: Trace, table: EmbeddingTable, seed: int) -> Placement:
        """SHP on the hypergraph of `table`'s past lookups (`seed` is unused: `config.seed` seeds SHP)."""
        if not np.any(past.table == past.table_index(table.name)):
            return sequential_placement(table)
        return shp_placement(Hypergraph.from_trace(past, table.name), table.block_capacity, self.config)


PLACEMENTS = {p.name: p for p in (Sequential(), Random(), KMeans(), SHP())}


def learn_placements(past: Trace, placement: str, seed: int = 0) -> tuple[Placement, ...]:
    """One placement per table of `past` (in its order) by the method named `placement` (a key of
    PLACEMENTS), learned on `past` with `seed` (int >= 0)."""
    validate.instance("past", past, Trace)
    validate.choice("placement", placement, PLACEMENTS)
    seed = validate.seed("seed", seed)
    return tuple(PLACEMENTS[placement].learn(past, t, seed) for t in past.tables)


# --- the trace split in time ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Experiment:
    """A workload split in time: placements learn on `past`, every metric is measured on `future`.

    Build it with `from_config` (a synthetic workload) or `from_trace` (a user's trace); everything
    downstream reads the tables from `tables`."""

    config: WorkloadConfig | None  # the synthetic workload it was generated from; None for a user's trace
    past: Trace  # the first part of the requests: placements and admission counts learn here
    future: Trace  # the rest: every metric is measured here
    past_counts: np.ndarray  # (num_keys,) lookups of each key in the past (admission counts)

    @staticmethod
    def from_config(config: WorkloadConfig, past_fraction: float = 0.5) -> Experiment:
        """The synthetic workload of `config`, its first `past_fraction` of requests the past."""
        validate.instance("config", config, WorkloadConfig)
        return Experiment._split(config, generate_trace(config), past_fraction)

    @staticmethod
    def from_trace(trace, tables=None, past_fraction: float = 0.5) -> Experiment:
        """A user's trace through the same pipeline as the synthetic one: `trace` is a `Trace`, or the
        path of a CSV / NPZ trace (`trace.load_trace`) or a libCacheSim oracleGeneral file
        (`trace.load_oracle_general`: a request per clock_time, keys split over `tables` in order).
        `tables` (EmbeddingTable, ...) say each table's size and vector bytes; a `Trace` brings its own.
        The first `past_fraction` of the requests is the past."""
        from mlsys_core.bandana.trace import load_oracle_general, load_trace

        if isinstance(trace, Trace):
            if tables is not None and tuple(tables) != trace.tables:
                raise ValueError("tables must be None or the trace's own tables for a Trace")
        else:
            path = validate.instance("trace", trace, (str, pathlib.PurePath),
                                     "a Trace or the path of a .csv / .npz / oracleGeneral trace")
            if tables is None:
                raise ValueError("tables must be given with a trace file: (EmbeddingTable, ...) in key order")
            tables = tuple(tables)
            for i, t in enumerate(tables):
                validate.instance(f"tables[{i}]", t, EmbeddingTable)
            name = str(path)
            trace = load_trace(path, tables) if name.endswith((".csv", ".npz")) else load_oracle_general(path, tables)
        return Experiment._split(None, trace, validate.number("past_fraction", past_fraction, 0.0, 1.0,
                                                              low_open=True, high_open=True))

    @staticmethod
    def _split(config, trace: Trace, past_fraction: float) -> Experiment:
        past, future = trace.split(past_fraction)
        num_keys = int(past.table_offsets[-1])
        return Experiment(config, past, future, np.bincount(past.keys, minlength=num_keys))

    @property
    def tables(self) -> tuple:
        """The trace's tables (EmbeddingTable, ...), in key order."""
        return self.past.tables

    @property
    def total_bytes(self) -> int:
        """Bytes of all tables together."""
        return int(sum(t.table_bytes for t in self.tables))

    def blocks(self, placements) -> BlockMap:
        """The global block layout of one placement per table (`placement.block_map`)."""
        return block_map(self.tables, placements)

    def arrivals(self) -> Arrivals:
        """How the future's requests arrive in the queueing model (`queue_profile`): at the trace's own
        times, gaps scaled to each load, when it has them; else Poisson, its `source` saying so."""
        if self.future.time_us is None:
            return PoissonArrivals("Poisson (the trace has no timestamps)")
        return TraceArrivals.of(self.future)

    def simulate(self, blocks: BlockMap, cache_fraction: float, threshold) -> CacheResult:
        """The future through one cache of `cache_fraction` of all table bytes with threshold t
        (an int for every table, or a tuple with one t per table)."""
        validate.probability("cache_fraction", cache_fraction)
        return simulate_cache(self.future, blocks, CacheConfig(int(cache_fraction * self.total_bytes), threshold),
                              self.past_counts)


# --- notebook 02's small workload ----------------------------------------------------------------

SMALL_SCALE = 0.25  # table sizes of the small workload (`tables.default_tables(scale)`)
SMALL_REQUESTS = 20_000  # its requests, half past and half future


@dataclasses.dataclass(frozen=True, eq=False)
class PlacedWorkload:
    """The small workload with one placement learned on its past."""

    experiment: Experiment  # the workload split in time
    blocks: BlockMap  # every table's blocks under the placement
    placement: str  # the method's name in PLACEMENTS


@functools.lru_cache(maxsize=8)
def _placed(post_lookups_per_request: float, placement: str, seed: int) -> PlacedWorkload:
    post, user = default_tables(SMALL_SCALE)
    post = dataclasses.replace(post, lookups_per_request=post_lookups_per_request)
    exp = Experiment.from_config(WorkloadConfig(tables=(post, user), num_requests=SMALL_REQUESTS, seed=seed))
    return PlacedWorkload(exp, exp.blocks(learn_placements(exp.past, placement, seed)), placement)


def small_workload(post_lookups_per_request: float = 4.0, placement: str = "shp", seed: int = 0) -> PlacedWorkload:
    """Notebook 02's small workload (tables at `SMALL_SCALE`, `SMALL_REQUESTS` requests from `seed`),
    the post table read `post_lookups_per_request` times a request on average (the user table keeps
    one), with the placement named `placement` learned on its past. The last few are kept: a widget
    that moves other controls does not learn the placement again."""
    lookups = validate.positive("post_lookups_per_request", post_lookups_per_request)
    validate.choice("placement", placement, PLACEMENTS)
    return _placed(float(lookups), placement, validate.seed("seed", seed))


def effective_bandwidth(placement: str = "shp", cache_fraction: float = 0.1, threshold: int = 2,
                        post_lookups_per_request: float = 4.0, seed: int = 0) -> float:
    """Useful / read bytes of the small workload's future through a DRAM cache: the share of each
    4 KB block read from NVM that the lookups use before it leaves DRAM.

    Args:
        placement: the placement method, a key of PLACEMENTS.
        cache_fraction: the DRAM cache, as a fraction of all table bytes.
        threshold: the admission threshold t (past lookups) of prefetched vectors, every table.
        post_lookups_per_request: the post table's mean lookups per request.
        seed: the workload's seed, also the placement's.
    """
    run = small_workload(post_lookups_per_request, placement, seed)
    return run.experiment.simulate(run.blocks, cache_fraction, threshold).effective_bandwidth
