"""Fuzzing the public entry points of every wing: a bad argument gets a TypeError or ValueError that names the
parameter, never a silent result, a hang or a stack trace from deep inside; an argument spelled another valid way
(a NumPy scalar for a Python one, a tuple or an array for a list, whole floats for ids) gets the same result.

Each entry point is declared once below with cheap valid arguments and, for each parameter fuzzed, the kind of
value it takes. Hypothesis draws bad values of that kind (out of range, non-finite, fractional, empty, the wrong
type, ragged or wrongly shaped arrays) for one parameter at a time. An entry that must never run in a test
(`backend.launch` starts processes) is only given bad values. The number of calls made is printed in pytest's
summary (`conftest.pytest_terminal_summary`).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FOREIGN = st.sampled_from([None, "text", b"bytes", {"a": 1}, object()])  # never a number, array or config


def _foreign(optional: bool):
    """FOREIGN, less None where None is allowed."""
    return FOREIGN.filter(lambda v: v is not None) if optional else FOREIGN


def _nest(values: list, ndim: int) -> list:
    """`values` as the last axis of an array of `ndim` dimensions (one entry along the others)."""
    for _ in range(ndim - 1):
        values = [values]
    return values


def _outside(low: float, high: float, low_open: bool = False, high_open: bool = False, whole: bool = False) -> list:
    """The numbers nearest the range [low, high] outside it: an open end itself, else the next whole number (if
    `whole`) or float beyond it."""
    out = []
    if low > -math.inf:
        out.append(low if low_open else int(low) - 1 if whole else math.nextafter(low, -math.inf))
    if high < math.inf:
        out.append(high if high_open else int(high) + 1 if whole else math.nextafter(high, math.inf))
    return out


@dataclasses.dataclass(frozen=True)
class Int:
    """An int in [low, high] (NumPy ints too; never bool, never a float); None too if `optional`."""

    low: float = -math.inf
    high: float = math.inf
    optional: bool = False

    def bad(self):
        out = [_foreign(self.optional), st.booleans(), st.floats(allow_nan=True, allow_infinity=True)]
        if edges := _outside(self.low, self.high, whole=True):
            out.append(st.sampled_from(edges))
        if self.low > -math.inf:
            out.append(st.integers(max_value=int(self.low) - 1).filter(lambda v: v >= -(2**70)))
        if self.high < math.inf:
            out.append(st.integers(min_value=int(self.high) + 1, max_value=2**70))
        return st.one_of(out)

    def same(self, value):
        return st.sampled_from([np.int64(value), np.int32(value)] if abs(value) < 2**31 else [np.int64(value)])


@dataclasses.dataclass(frozen=True)
class Real:
    """A finite number in the range (open ends as given; NumPy floats and ints too); None too if `optional`."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    optional: bool = False

    def bad(self):
        edges = _outside(self.low, self.high, self.low_open, self.high_open)
        out = [_foreign(self.optional), st.booleans(), st.sampled_from([math.nan, math.inf, -math.inf, *edges])]
        if self.low > -math.inf:
            below = st.floats(max_value=self.low, exclude_max=not self.low_open, allow_nan=False)
            out.append(below.filter(lambda v: v < self.low or (self.low_open and v == self.low)))
        if self.high < math.inf:
            above = st.floats(min_value=self.high, exclude_min=not self.high_open, allow_nan=False)
            out.append(above.filter(lambda v: v > self.high or (self.high_open and v == self.high)))
        return st.one_of(out)

    def same(self, value):
        return st.sampled_from([np.float64(value), np.float32(value)] if float(np.float32(value)) == value
                               else [np.float64(value)])


@dataclasses.dataclass(frozen=True)
class Bool:
    """True or False (NumPy bools too); never an int; None too if `optional`."""

    optional: bool = False

    def bad(self):
        return st.one_of(_foreign(self.optional), st.integers(0, 1), st.floats(0, 1))

    def same(self, value):
        return st.just(np.bool_(value))


@dataclasses.dataclass(frozen=True)
class Text:
    """A string (non-empty unless `empty`)."""

    empty: bool = False

    def bad(self):
        blank = [] if self.empty else [st.sampled_from(["", "  "])]
        return st.one_of(FOREIGN.filter(lambda v: not isinstance(v, str)), st.integers(), *blank)

    def same(self, value):
        return st.just(np.str_(value))


@dataclasses.dataclass(frozen=True)
class Ids:
    """An array of whole numbers in [low, high] with `ndim` dimensions (a list, a tuple, an int array, or
    whole floats); non-empty unless `empty`; None too if `optional`."""

    low: float = 0
    high: float = math.inf
    ndim: int = 1
    empty: bool = True
    optional: bool = False

    def bad(self):
        fraction = st.lists(st.integers(0, 3), min_size=1, max_size=5).map(lambda v: [x + 0.5 for x in v])
        wrong_shape = [1, 2] if self.ndim != 1 else [[1, 2], [3, 4]]
        fixed = [["a", "b"], [1, [2, 3]], [0.0, math.nan], [True, False], *([] if self.empty else [[]]),
                 *([v] for v in _outside(self.low, self.high, whole=True))]
        return st.one_of(_foreign(self.optional), st.just(wrong_shape), fraction.map(lambda v: _nest(v, self.ndim)),
                         st.sampled_from([_nest(v, self.ndim) for v in fixed]))

    def same(self, value):
        return st.sampled_from([tuple(value), np.asarray(value, np.int32), np.asarray(value, np.float64)])


@dataclasses.dataclass(frozen=True)
class Reals:
    """An array of finite numbers in the range (open ends as given) with `ndim` dimensions (any if None; a list,
    a tuple, an array); non-empty unless `empty`; None too if `optional`."""

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    ndim: int | None = 1
    empty: bool = True
    optional: bool = False

    def bad(self):
        wrong_shape = [] if self.ndim is None else [[1.0, 2.0] if self.ndim != 1 else [[1.0, 2.0], [3.0, 4.0]]]
        fixed = [["a", "b"], [1.0, [2.0, 3.0]], [1.0, math.nan], [math.inf], [True, False],
                 *([] if self.empty else [[]]), *([v] for v in _outside(self.low, self.high, self.low_open,
                                                                       self.high_open))]
        return st.one_of(_foreign(self.optional), st.sampled_from(wrong_shape + [_nest(v, self.ndim or 1)
                                                                                 for v in fixed]))

    def same(self, value):
        out = [tuple(value), np.asarray(value, np.float64)]
        if np.all(np.asarray(value) == np.round(value)):
            out.append(np.asarray(value, np.int64))
        return st.sampled_from(out)


@dataclasses.dataclass(frozen=True)
class Seq:
    """A sequence of `item`s (a list, a tuple or an array), non-empty unless `empty`."""

    item: Any
    empty: bool = False

    def bad(self):
        return st.one_of(FOREIGN, st.integers(), self.item.bad().map(lambda v: [v]),
                         *([] if self.empty else [st.just([])]))

    def same(self, value):
        return st.sampled_from([tuple(value), list(value), np.asarray(value)])


@dataclasses.dataclass(frozen=True)
class Tree:
    """A pytree (here a dict) of arrays of finite numbers, at least one."""

    def bad(self):
        return st.sampled_from([None, "text", object(), {}, {"w": ["a"]}, {"w": [1.0, math.nan]}, {"w": [math.inf]}])

    def same(self, value):
        return st.sampled_from([{k: np.asarray(v).tolist() for k, v in value.items()},
                                {k: np.asarray(v, np.float64) for k, v in value.items()}])


@dataclasses.dataclass(frozen=True)
class Instance:
    """An object of one type (a config, a trace, a population); None too if `optional`."""

    optional: bool = False

    def bad(self):
        return st.one_of(_foreign(self.optional), st.integers(), st.floats())

    def same(self, value):
        return st.just(value)


@dataclasses.dataclass(frozen=True)
class Choice:
    """One of a few names (or numbers: NumPy ints spell them too)."""

    options: tuple  # or a registry dict: its keys

    def bad(self):
        names = tuple(self.options)  # a tuple compares by equality, so an unhashable value is simply absent
        return st.one_of(st.text(max_size=12), st.integers(), FOREIGN).filter(lambda v: v not in names)

    def same(self, value):
        return st.just(np.int64(value) if isinstance(value, int) and not isinstance(value, bool) else value)


@dataclasses.dataclass(frozen=True, repr=False)
class Entry:
    """A public entry point: `call(**valid)` is cheap and works (on a fresh copy of `valid` each time, so a
    generator starts from the same state); `params` are the parameters fuzzed; `digest` keeps the part of a
    result that does not depend on timing; `spellings=False` leaves the entry out of the test that calls it
    with valid arguments."""

    name: str
    call: Callable[..., Any]
    valid: dict
    params: dict  # parameter -> kind (Int, Real, Bool, Text, Ids, Reals, Seq, Tree, Instance, Choice)
    digest: Callable[[Any], Any] = lambda result: result
    spellings: bool = True

    def __call__(self, **changed):
        return self.call(**(copy.deepcopy(self.valid) | changed))

    def __repr__(self):
        return self.name


POSITIVE = Real(0, low_open=True)
NON_NEGATIVE = Real(0)
FRACTION = Real(0, 1)
SEED = Int(0)


# ---- sharding ------------------------------------------------------------------------------------

def _sharding() -> list[Entry]:
    from mlsys_core.sharding import cost_model as cm
    from mlsys_core.sharding import experiments

    chip, work = cm.TPU_V3, cm.BERT_LARGE
    chips, topology, strategy = Int(1, cm.MAX_CHIPS), Choice(tuple(cm.TOPOLOGIES)), Choice(cm.STRATEGIES)
    run = {"workload": work, "chip": chip, "chips": 64, "topology": "torus"}
    run_params = {"workload": Instance(), "chip": Instance(), "chips": chips, "topology": topology}
    shared = {"compute_s": 1.0, "update_s": 0.5, "devices": 4, "strategy": "replicated", "comm_s": 0.25}
    shared_params = {"compute_s": NON_NEGATIVE, "update_s": NON_NEGATIVE, "devices": Int(1),
                     "strategy": Choice(("replicated", "wus", "fsdp")), "comm_s": NON_NEGATIVE}
    return [
        Entry("sharding.cost_model.Chip", cm.Chip,
              {"name": "chip", "peak_flops": 1e14, "hbm_bytes_per_s": 1e12, "link_bytes_per_s": 7e10,
               "link_latency_s": 1e-6, "utilisation": 0.5},
              {"name": Text(), "peak_flops": POSITIVE, "hbm_bytes_per_s": POSITIVE, "link_bytes_per_s": POSITIVE,
               "link_latency_s": POSITIVE, "utilisation": Real(0, 1, low_open=True)}),
        Entry("sharding.cost_model.Workload", cm.Workload,
              {"name": "w", "params": 1e8, "train_flops_per_example": 1e11, "global_batch": 1024,
               "examples_to_train": 1e7, "update_bytes_per_param": 20.0, "grad_bytes_per_param": 2.0},
              {"name": Text(), "params": POSITIVE, "train_flops_per_example": POSITIVE, "global_batch": Int(1),
               "examples_to_train": POSITIVE, "update_bytes_per_param": POSITIVE, "grad_bytes_per_param": POSITIVE}),
        Entry("sharding.cost_model.torus_shape", cm.torus_shape, {"chips": 96}, {"chips": chips}),
        Entry("sharding.cost_model.allreduce_s", cm.allreduce_s,
              {"nbytes": 1e9, "chips": 64, "chip": chip, "topology": "ring"},
              {"nbytes": NON_NEGATIVE, "chips": chips, "chip": Instance(), "topology": topology}),
        Entry("sharding.cost_model.step_time", cm.step_time, run | {"strategy": "wus"},
              run_params | {"strategy": strategy}),
        Entry("sharding.cost_model.time_to_train_s", cm.time_to_train_s, run | {"strategy": "replicated"},
              run_params | {"strategy": strategy}),
        Entry("sharding.cost_model.model_step_s", cm.model_step_s, run | {"overlap": True, "strategy": "wus"},
              run_params | {"overlap": Bool(), "strategy": strategy}),
        Entry("sharding.cost_model.critical_batch_per_chip", cm.critical_batch_per_chip, run, run_params),
        Entry("sharding.cost_model.scaling_curve", cm.scaling_curve, run | {"chips": [16, 256, 4096]},
              run_params | {"chips": Ids(1, cm.MAX_CHIPS)}),
        Entry("sharding.experiments.explore_scaling", experiments.explore_scaling,
              {"workload": "ResNet-50", "utilisation": 0.5, "link_gb_per_s": 100.0, "grad_bits": 32, "max_chips": 512},
              {"workload": Choice(tuple(cm.WORKLOADS)), "utilisation": Real(0, 1, low_open=True),
               "link_gb_per_s": POSITIVE, "grad_bits": Choice((16, 32)), "max_chips": Int(16, cm.MAX_CHIPS)}),
        Entry("sharding.cost_model.shared_host_step_s", cm.shared_host_step_s, shared, shared_params),
        Entry("sharding.cost_model.side_by_side_step_s", cm.side_by_side_step_s, shared, shared_params),
        Entry("sharding.cost_model.mlperf_logs", cm.mlperf_logs, {"model": "BERT"},
              {"model": Choice(tuple(cm.LOGGED_WORKLOADS))}),
        Entry("sharding.cost_model.sensitivity", cm.sensitivity,
              {"model": "ResNet-50", "link_gb_per_s": (70.0, 330.0), "utilisation": (0.5,), "overlap": (True,)},
              {"model": Choice(tuple(cm.LOGGED_WORKLOADS)), "link_gb_per_s": Seq(POSITIVE),
               "utilisation": Seq(Real(0, 1, low_open=True)), "overlap": Seq(Bool())}),
    ]


# ---- bandana -------------------------------------------------------------------------------------

FILES = tempfile.TemporaryDirectory()  # what the entries write; removed when the session ends


def _write_oracle_general(keys, obj_size):
    """`trace.write_oracle_general` to a file of FILES; the bytes it wrote."""
    from mlsys_core.bandana import trace

    path = Path(FILES.name) / "oracle.bin"
    trace.write_oracle_general(path, keys, obj_size)
    return path.read_bytes()


@functools.cache
def _store_path(table) -> Path:
    """A store of `table`'s vectors in FILES, written once."""
    from mlsys_core.bandana import placement, store, workload

    path = Path(FILES.name) / "store.bin"
    store.write_store(path, table, workload.table_vectors(table, 0), placement.random_placement(table, 0))
    return path


def _store_lookup(table, vector_ids, direct):
    """`BlockStore.lookup` on a small store of `table`."""
    from mlsys_core.bandana import store

    with store.BlockStore(_store_path(table), direct=direct) as s:
        return s.lookup(vector_ids)


def _bandana() -> list[Entry]:
    from mlsys_core.bandana import (
        cache,
        evaluation,
        hypergraph,
        mrc,
        nvm,
        placement,
        queueing,
        shp,
        tables,
        trace,
        workload,
    )
    from mlsys_core.bandana import experiments as bandana_experiments

    table = tables.EmbeddingTable("post", 256, 16, num_communities=8)
    config = workload.WorkloadConfig((table,), 40, 0)
    lookups = workload.generate_trace(config)
    blocks = placement.block_map((table,), (placement.random_placement(table, 0),))
    keys, sizes = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3], [1.0, 2.5, 4.0]
    key_ids, cache_sizes = Ids(0, empty=False), Reals(0, ndim=1, empty=False)
    arrival = queueing.poisson_arrivals_us(6, 1e5, 0).tolist()
    return [
        Entry("bandana.tables.EmbeddingTable", tables.EmbeddingTable,
              {"name": "t", "num_vectors": 256, "dim": 16, "dtype": "float32", "lookups_per_request": 2.0,
               "num_communities": 8, "community_zipf": 0.9, "vector_zipf": 1.1, "affinity": 0.5,
               "semantic_noise": 1.0},
              {"name": Text(), "num_vectors": Int(8), "dim": Int(1, 1024), "dtype": Text(),
               "lookups_per_request": POSITIVE, "num_communities": Int(1, 256), "community_zipf": NON_NEGATIVE,
               "vector_zipf": NON_NEGATIVE, "affinity": FRACTION, "semantic_noise": NON_NEGATIVE}),
        Entry("bandana.workload.WorkloadConfig", workload.WorkloadConfig,
              {"tables": (table,), "num_requests": 40, "seed": 3},
              {"tables": Instance(), "num_requests": Int(1), "seed": SEED}),
        Entry("bandana.workload.generate_trace", workload.generate_trace, {"config": config}, {"config": Instance()},
              lambda t: (t.request_ptr, t.table, t.vector)),
        Entry("bandana.trace.keys_array", trace.keys_array, {"name": "keys", "keys": keys}, {"keys": Ids(0)}),
        Entry("bandana.trace.next_access", trace.next_access, {"keys": keys}, {"keys": Ids(0)}),
        Entry("bandana.trace.write_oracle_general", _write_oracle_general, {"keys": keys, "obj_size": 7},
              {"keys": key_ids, "obj_size": Int(1, 2**32 - 1)}),
        Entry("bandana.mrc.stack_distances", mrc.stack_distances, {"keys": keys}, {"keys": key_ids}),
        Entry("bandana.mrc.hit_rate_curve", mrc.hit_rate_curve, {"keys": keys, "cache_sizes": sizes},
              {"keys": key_ids, "cache_sizes": cache_sizes}),
        Entry("bandana.mrc.shards_hit_rate_curve", mrc.shards_hit_rate_curve,
              {"keys": keys, "cache_sizes": sizes, "rate": 0.5, "seed": 1, "adjust": False},
              {"keys": key_ids, "cache_sizes": cache_sizes, "rate": Real(0, 1, low_open=True), "seed": SEED,
               "adjust": Bool()}),
        Entry("bandana.mrc.shards_fixed_hit_rate_curve", mrc.shards_fixed_hit_rate_curve,
              {"keys": keys, "cache_sizes": sizes, "s_max": 4, "seed": 1, "initial_rate": 0.5, "adjust": True},
              {"keys": key_ids, "cache_sizes": cache_sizes, "s_max": Int(1), "seed": SEED,
               "initial_rate": Real(0, 1, low_open=True), "adjust": Bool()}),
        Entry("bandana.cache.lru_misses", cache.lru_misses, {"keys": keys, "capacity_objects": 2},
              {"keys": key_ids, "capacity_objects": Int(0)}),
        Entry("bandana.cache.CacheConfig", cache.CacheConfig, {"capacity_bytes": 8192, "admission_threshold": 1},
              {"capacity_bytes": Int(0), "admission_threshold": Int(0)}),
        Entry("bandana.cache.simulate_cache", cache.simulate_cache,
              {"trace": lookups, "blocks": blocks, "config": cache.CacheConfig(8192, 1), "past_counts": [1] * 256},
              {"trace": Instance(), "blocks": Instance(), "config": Instance(), "past_counts": Ids(0, optional=True)}),
        Entry("bandana.placement.Placement", placement.Placement, {"block_of": [0, 1, 0, 2, 1], "block_capacity": 2},
              {"block_of": Ids(0, empty=False), "block_capacity": Int(2)}),
        Entry("bandana.placement.random_placement", placement.random_placement, {"table": table, "seed": 2},
              {"table": Instance(), "seed": SEED}),
        Entry("bandana.shp.SHPConfig", shp.SHPConfig,
              {"p": 0.5, "iterations": 3, "imbalance": 0.05, "move_probability": 0.8, "mode": "kway",
               "refine_iterations": 1, "min_move_fraction": 0.01, "max_move_ratio": 0.2, "seed": 1},
              {"p": Real(0, 1, low_open=True), "iterations": Int(0), "imbalance": Real(0, 1, high_open=True),
               "move_probability": Real(0, 1, low_open=True), "mode": Choice(("bisection", "kway")),
               "refine_iterations": Int(0), "min_move_fraction": Real(0, 1, high_open=True),
               "max_move_ratio": Real(0, 1, low_open=True), "seed": SEED}),
        Entry("bandana.hypergraph.Hypergraph", hypergraph.Hypergraph,
              {"num_vertices": 5, "edge_ptr": [0, 2, 5], "pins": [0, 1, 2, 3, 4]},
              {"num_vertices": Int(5), "edge_ptr": Ids(0, 5, empty=False), "pins": Ids(0, 4)}),
        Entry("bandana.shp.shp_placement", shp.shp_placement,
              {"graph": hypergraph.Hypergraph.from_trace(lookups), "capacity": 64,
               "config": shp.SHPConfig(iterations=2), "start": None, "num_blocks": 5},
              {"graph": Instance(), "capacity": Int(52), "config": Instance(), "start": Instance(optional=True),
               "num_blocks": Int(4, optional=True)},
              lambda p: p.block_of),
        Entry("bandana.evaluation.learn_placements", evaluation.learn_placements,
              {"past": lookups, "placement": "random", "seed": 1},
              {"past": Instance(), "placement": Choice(tuple(evaluation.PLACEMENTS)), "seed": SEED},
              lambda placements: [p.block_of for p in placements]),
        Entry("bandana.experiments.explore_cache", bandana_experiments.explore_cache,
              {"cache_fraction": 0.1, "threshold": 2, "placement": "sequential", "sampling_rate": 0.5,
               "post_lookups_per_request": 4.0, "seed": 0},
              {"cache_fraction": Real(0, 1, low_open=True), "threshold": Int(0),
               "placement": Choice(tuple(evaluation.PLACEMENTS)), "sampling_rate": Real(0, 1, low_open=True),
               "post_lookups_per_request": POSITIVE, "seed": SEED}),
        Entry("bandana.queueing.simulate_queue", queueing.simulate_queue,
              {"arrival_us": arrival, "reads_per_request": [1, 2, 0, 1, 3, 1], "device": nvm.NVMDevice(),
               "service": queueing.ServiceTimes(), "hits_per_request": [0, 1, 2, 0, 0, 1], "seed": 1,
               "max_queue_depth": 4},
              {"arrival_us": Reals(empty=False), "reads_per_request": Ids(0), "device": Instance(),
               "service": Instance(), "hits_per_request": Ids(0, optional=True), "seed": SEED,
               "max_queue_depth": Int(1, optional=True)}),
        Entry("bandana.queueing.poisson_arrivals_us", queueing.poisson_arrivals_us,
              {"num_requests": 8, "rate_per_s": 1e5, "seed": 1},
              {"num_requests": Int(1), "rate_per_s": POSITIVE, "seed": SEED}),
        Entry("bandana.queueing.mm1_check", queueing.mm1_check,
              {"utilisation": 0.5, "num_requests": 100, "service_rate": 1e5, "seed": 1},
              {"utilisation": Real(0, 1, low_open=True, high_open=True), "num_requests": Int(1),
               "service_rate": POSITIVE, "seed": SEED}),
        Entry("bandana.nvm.NVMDevice", nvm.NVMDevice,
              {"qd1_iops": 1e5, "peak_iops": 5e5, "peak_queue_depth": 8, "capacity_bytes": 10**11,
               "rated_drive_writes_per_day": 30.0, "dram_lookup_latency_us": 0.1},
              {"qd1_iops": Real(0, 5e5, low_open=True), "peak_iops": Real(1e5), "peak_queue_depth": Int(1),
               "capacity_bytes": Int(1), "rated_drive_writes_per_day": POSITIVE,
               "dram_lookup_latency_us": NON_NEGATIVE}),
        Entry("bandana.nvm.endurance", nvm.endurance,
              {"table_bytes": [1e11, 4e11], "refreshes_per_day": [2.0, 1.0], "device": nvm.NVMDevice(),
               "fill_fraction": 0.9},
              {"table_bytes": Reals(0, low_open=True, empty=False), "refreshes_per_day": Reals(0, empty=False),
               "device": Instance(), "fill_fraction": Real(0, 1, low_open=True)}),
        Entry("bandana.nvm.memory_cost_usd", nvm.memory_cost_usd,
              {"model_bytes": 1e12, "dram_cache_bytes": 1e11, "prices": nvm.MemoryPrices()},
              {"model_bytes": POSITIVE, "dram_cache_bytes": NON_NEGATIVE, "prices": Instance()}),
        Entry("bandana.store.BlockStore.lookup", _store_lookup,
              {"table": table, "vector_ids": [0, 9, 255, 9], "direct": False},
              {"vector_ids": Ids(0, 255), "direct": Bool()}),
    ]


# ---- fl ------------------------------------------------------------------------------------------

def _fl() -> list[Entry]:
    import jax

    from mlsys_core.fl import actors, dp, faults, fedavg, population, protocol, secagg, secure_round, telemetry
    from mlsys_core.fl import experiments as fl_experiments
    from mlsys_core.fl import rounds as fl_rounds
    from mlsys_core.fl import steering as fl_steering

    pop = population.make_population(population.PopulationConfig(num_devices=300), 0)
    rounds = fl_rounds.RoundConfig(goal_count=10, min_reports=8, checkpoint_bytes=10_000, update_bytes=10_000)
    steering = fl_steering.SteeringConfig()
    sim = protocol.simulate(pop, rounds, steering, 3600.0, 0, traced_devices=20)
    inputs = np.random.default_rng(0).integers(0, 2**8, size=(4, 6))
    return [
        Entry("fl.population.PopulationConfig", population.PopulationConfig,
              {"num_devices": 300, "time_zones": [[0.0, 1.0], [5.0, 2.0]], "unmetered_fraction": 0.8,
               "window_start_h": 22.0, "window_start_std_h": 1.0, "window_length_h": 6.0, "window_length_std_h": 0.5,
               "drop_out_range": (0.05, 0.1), "examples_median": 100.0, "examples_per_s_median": 4.0,
               "speed_sigma": 0.5, "down_bytes_per_s_median": 1e6, "up_bytes_per_s_median": 5e5,
               "bandwidth_sigma": 0.25, "runtime_versions": [1, 2], "runtime_weights": [0.5, 0.5],
               "checkin_jitter_h": 1.0, "drop_at_window_close": False},
              {"num_devices": Int(1, 50_000_000), "time_zones": Reals(ndim=2, empty=False),
               "unmetered_fraction": FRACTION, "window_start_h": Real(0, 24), "window_start_std_h": Real(0, 24),
               "window_length_h": Real(0, 24, True), "window_length_std_h": Real(0, 24),
               "drop_out_range": Reals(0, 1, high_open=True, empty=False), "examples_median": POSITIVE,
               "examples_per_s_median": POSITIVE, "speed_sigma": Real(0, 24), "down_bytes_per_s_median": POSITIVE,
               "up_bytes_per_s_median": POSITIVE, "bandwidth_sigma": Real(0, 24), "runtime_versions": Ids(0, 127),
               "runtime_weights": Reals(0), "checkin_jitter_h": Real(0, 12), "drop_at_window_close": Bool()}),
        Entry("fl.population.make_population", population.make_population,
              {"config": population.PopulationConfig(num_devices=50), "seed": 1},
              {"config": Instance(), "seed": SEED}),
        Entry("fl.rounds.RoundConfig", fl_rounds.RoundConfig,
              {"goal_count": 10, "over_selection": 1.5, "selection_timeout_s": 60.0, "min_goal_fraction": 0.5,
               "reporting_window_s": 120.0, "min_reports": 8, "checkpoint_bytes": 1000, "plan_bytes": 10,
               "update_bytes": 1000, "epochs": 2, "pipelined": False, "recycle_late": True},
              {"goal_count": Int(8), "over_selection": Real(1, 100), "selection_timeout_s": POSITIVE,
               "min_goal_fraction": Real(0, 1, low_open=True), "reporting_window_s": POSITIVE,
               "min_reports": Int(1, 10, optional=True), "checkpoint_bytes": Int(0), "plan_bytes": Int(0),
               "update_bytes": Int(0), "epochs": Int(1), "pipelined": Bool(), "recycle_late": Bool()}),
        Entry("fl.steering.SteeringConfig", fl_steering.SteeringConfig,
              {"mode": "spread", "retry_s": 30.0, "initial_delay_s": 300.0, "min_delay_s": 20.0, "max_delay_s": 600.0,
               "checkin_headroom": 1.5, "small_population_factor": 2.0, "sync_jitter_s": 5.0, "cooldown_s": 60.0,
               "no_plan_retry_s": 3600.0},
              {"mode": Choice(tuple(fl_steering.STEERING_MODES)), "retry_s": POSITIVE, "initial_delay_s": POSITIVE,
               "min_delay_s": Real(0, 600, True), "max_delay_s": Real(20), "checkin_headroom": POSITIVE,
               "small_population_factor": POSITIVE, "sync_jitter_s": NON_NEGATIVE, "cooldown_s": NON_NEGATIVE,
               "no_plan_retry_s": NON_NEGATIVE}),
        Entry("fl.protocol.simulate", protocol.simulate,
              {"pop": pop, "config": rounds, "steering": steering, "duration_s": 3600.0, "seed": 0, "plans": None,
               "executor": None, "traced_devices": 20, "load_bin_s": 600.0},
              {"pop": Instance(), "config": Instance(), "steering": Instance(), "duration_s": POSITIVE, "seed": SEED,
               "plans": Instance(optional=True), "executor": Instance(optional=True), "traced_devices": Int(0),
               "load_bin_s": POSITIVE},
              lambda r: (r.counters, r.checkins_per_bin, r.version, r.aggregated)),
        Entry("fl.experiments.explore_rounds", fl_experiments.explore_rounds,
              {"num_devices": 2000, "goal_count": 20, "over_selection": 1.3, "drop_out": 0.08, "alpha": 0.5,
               "steering": True, "hours": 0.5, "seed": 0},
              {"num_devices": Int(1, 50_000_000), "goal_count": Int(1), "over_selection": Real(1, 100),
               "drop_out": Real(0, 1, high_open=True), "alpha": POSITIVE, "steering": Bool(), "hours": POSITIVE,
               "seed": SEED},
              lambda r: (r.result.counters, r.class_mix, r.committed_share)),
        Entry("fl.telemetry.aggregate_only", telemetry.aggregate_only,
              {"log": sim.log, "bin_s": 600.0, "horizon_s": 3600.0, "k_min": 2},
              {"log": Instance(), "bin_s": POSITIVE, "horizon_s": POSITIVE, "k_min": Int(1)}),
        Entry("fl.telemetry.session_string", telemetry.session_string, {"log": sim.log, "device": 3},
              {"log": Instance(), "device": Int(0)}),
        Entry("fl.dp.DPConfig", dp.DPConfig, {"clip_norm": 0.5, "noise_multiplier": 1.5, "sampling_rate": 0.25},
              {"clip_norm": POSITIVE, "noise_multiplier": NON_NEGATIVE, "sampling_rate": Real(0, 1, low_open=True)}),
        Entry("fl.dp.clip_update", dp.clip_update, {"update": {"w": np.full(3, 2.0, np.float32)}, "clip_norm": 1.0},
              {"update": Tree(), "clip_norm": POSITIVE}, lambda u: np.asarray(u["w"])),
        Entry("fl.dp.poisson_sample", dp.poisson_sample,
              {"key": jax.random.key(0), "num_clients": 10, "sampling_rate": 0.5},
              {"key": Instance(), "num_clients": Int(0), "sampling_rate": FRACTION}, np.asarray),
        Entry("fl.dp.epsilon", dp.epsilon,
              {"sampling_rate": 0.1, "noise_multiplier": 1.0, "rounds": 10, "delta": 1e-5, "accountant": "rdp"},
              {"sampling_rate": Real(0, 1, low_open=True), "noise_multiplier": NON_NEGATIVE, "rounds": Int(1),
               "delta": Real(0, 1, True, True), "accountant": Choice(tuple(dp.ACCOUNTANTS))}),
        Entry("fl.fedavg.ModelConfig", fedavg.ModelConfig,
              {"num_features": 8, "hidden": 4, "num_classes": 3, "learning_rate": 0.5, "batch_size": 4, "epochs": 2},
              {"num_features": Int(1), "hidden": Int(1), "num_classes": Int(1), "learning_rate": POSITIVE,
               "batch_size": Int(1), "epochs": Int(1)}),
        Entry("fl.fedavg.dirichlet_split", fedavg.dirichlet_split,
              {"labels": [0, 1, 2, 0, 1, 2, 0, 1, -1], "num_clients": 3, "alpha": 0.5, "seed": 1},
              {"labels": Ids(-math.inf), "num_clients": Int(1), "alpha": POSITIVE, "seed": SEED}),
        Entry("fl.fedavg.server_optimizer", fedavg.server_optimizer, {"name": "fedadam", "learning_rate": 0.01},
              {"name": Choice(tuple(fedavg.SERVER_OPTIMIZERS)), "learning_rate": POSITIVE}),
        Entry("fl.faults.Topology", faults.Topology,
              {"num_selectors": 2, "num_aggregators": 3, "merged": False, "hop_latency_s": 0.1,
               "heartbeat_timeout_s": 5.0, "respawn_s": 4.0, "lease_s": 8.0, "lease_renew_s": 2.0},
              {"num_selectors": Int(1), "num_aggregators": Int(1), "merged": Bool(), "hop_latency_s": NON_NEGATIVE,
               "heartbeat_timeout_s": NON_NEGATIVE, "respawn_s": Real(0, 8, high_open=True),
               "lease_s": Real(4, low_open=True), "lease_renew_s": Real(0, 8, True, True)}),
        Entry("fl.faults.Fault", faults.Fault, {"kind": "selector", "time_s": 60.0, "index": 1},
              {"kind": Choice(faults.ACTOR_KINDS), "time_s": NON_NEGATIVE, "index": Int(0)}),
        Entry("fl.actors.ActorSystem", actors.ActorSystem,
              {"topology": faults.Topology(num_aggregators=2), "faults": (faults.Fault("aggregator", 30.0, 1),)},
              {"topology": Instance(), "faults": Instance()}, lambda s: s.plan),
        Entry("fl.secagg.SecAggConfig", secagg.SecAggConfig, {"num_devices": 5, "threshold": 3, "modulus_bits": 16},
              {"num_devices": Int(2), "threshold": Int(3, 5), "modulus_bits": Int(1, 64)}),
        Entry("fl.secagg.secure_aggregate", secagg.secure_aggregate,
              {"inputs": inputs, "threshold": 3, "modulus_bits": 10, "insecure_seed": 0},
              {"threshold": Int(3, 4), "modulus_bits": Int(8, 64), "insecure_seed": Int(0, optional=True)},
              lambda r: (r.total, r.included, r.aborted)),
        Entry("fl.secure_round.quantize", secure_round.quantize,
              {"x": [0.1, -0.3], "clip": 0.5, "bits": 8, "rng": np.random.default_rng(0)},
              {"x": Reals(ndim=None), "clip": POSITIVE, "bits": Int(1, 62), "rng": Instance()}),
        Entry("fl.secure_round.aggregator_groups", secure_round.aggregator_groups,
              {"num_devices": 20, "min_group": 8}, {"num_devices": Int(8), "min_group": Int(2, 20)}),
    ]


# ---- tictac --------------------------------------------------------------------------------------

def _tictac() -> list[Entry]:
    from mlsys_core.tictac import graph, models, ordering, partition, placement, ps, simulate

    g = graph.random_graph(5, 8, seed=0)
    cluster = simulate.Cluster(workers=2)
    orders = ordering.schedule(g, "tic", workers=2, iterations=2).tolist()
    return [
        Entry("tictac.graph.OpGraph", graph.OpGraph,
              {"recv_bytes": [10.0, 20.0], "compute_flops": [5.0, 6.0, 7.0], "src": [0, 1, 2, 3],
               "dst": [2, 3, 4, 4], "name": "g", "gradient_op": [2, -1]},
              {"recv_bytes": Reals(0, empty=False), "compute_flops": Reals(0), "src": Ids(0, 4), "dst": Ids(2, 4),
               "name": Text(), "gradient_op": Ids(-1, 2)}),
        Entry("tictac.graph.random_graph", graph.random_graph,
              {"n_recv": 5, "n_compute": 8, "seed": 1, "max_preds": 2, "max_bytes": 1e5, "max_flops": 1e6,
               "gradients": True},
              {"n_recv": Int(1), "n_compute": Int(1), "seed": SEED, "max_preds": Int(1), "max_bytes": POSITIVE,
               "max_flops": POSITIVE, "gradients": Bool()}),
        Entry("tictac.graph.layered_graph", graph.layered_graph,
              {"n_recv": 6, "layers": 3, "max_width": 2, "seed": 1, "bytes_range": (1e3, 1e5),
               "flops_range": (1e4, 1e6)},
              {"n_recv": Int(2), "layers": Int(1), "max_width": Int(1, 6), "seed": SEED,
               "bytes_range": Reals(0, low_open=True, empty=False),
               "flops_range": Reals(0, low_open=True, empty=False)}),
        Entry("tictac.ordering.TimeOracle", ordering.TimeOracle,
              {"bandwidth_gbps": 2.0, "latency_us": 10.0, "gflops": 5.0, "op_overhead_us": 1.0},
              {"bandwidth_gbps": POSITIVE, "latency_us": NON_NEGATIVE, "gflops": POSITIVE,
               "op_overhead_us": NON_NEGATIVE}),
        Entry("tictac.ordering.schedule", ordering.schedule,
              {"graph": g, "scheduler": "tac", "oracle": ordering.TimeOracle(), "workers": 2, "iterations": 2,
               "seed": 1, "recv_seconds": [1.0, 2.0, 0.5, 1.5, 1.0], "compute_seconds": [1.0] * 8},
              {"graph": Instance(), "scheduler": Choice(ordering.SCHEDULERS), "oracle": Instance(optional=True),
               "workers": Int(1), "iterations": Int(1), "seed": SEED, "recv_seconds": Reals(0, optional=True),
               "compute_seconds": Reals(0, optional=True)}),
        Entry("tictac.simulate.Cluster", simulate.Cluster,
              {"workers": 2, "parameter_servers": 2, "bandwidth_gbps": 2.0, "latency_us": 10.0, "gflops": 5.0,
               "op_overhead_us": 1.0, "parallel_ops": 2, "jitter": 0.1, "nic_gbps": 1.0, "placement": "size_balanced"},
              {"workers": Int(1), "parameter_servers": Int(1), "bandwidth_gbps": POSITIVE, "latency_us": NON_NEGATIVE,
               "gflops": POSITIVE, "op_overhead_us": NON_NEGATIVE, "parallel_ops": Int(1),
               "jitter": Real(0, 5, high_open=True), "nic_gbps": Real(0, low_open=True, optional=True),
               "placement": Choice(tuple(placement.PLACEMENTS))}),
        Entry("tictac.simulate.simulate", simulate.simulate,
              {"graph": g, "orders": orders, "cluster": cluster, "seed": 1, "executor": "in_order",
               "pipelined": False, "push": False, "credit_bytes": 1e5},
              {"graph": Instance(), "orders": Ids(0, 4, ndim=3), "cluster": Instance(), "seed": SEED,
               "executor": Choice(simulate.EXECUTORS), "pipelined": Bool(), "push": Bool(optional=True),
               "credit_bytes": Real(0, low_open=True, optional=True)}),
        Entry("tictac.partition.partition", partition.partition,
              {"graph": g, "partition_params": 10_000, "bytes_per_param": 2},
              {"graph": Instance(), "partition_params": Int(1), "bytes_per_param": Int(1)}),
        Entry("tictac.placement.place", placement.place,
              {"recv_bytes": [5.0, 1.0, 3.0, 2.0], "servers": 2, "placement": "size_balanced"},
              {"recv_bytes": Reals(0), "servers": Int(1), "placement": Choice(tuple(placement.PLACEMENTS))}),
        Entry("tictac.ps.PSConfig", ps.PSConfig,
              {"model": "mlp", "mode": "infer", "workers": 2, "servers": 2, "bandwidth_gbps": 0.5, "iterations": 3,
               "warmup": 1, "seed": 1, "depth": 2, "width": 8, "batch_size": 8, "chunk_bytes": 4096, "timeout_s": 30.0,
               "fault": "swap"},
              {"model": Choice(models.ALL_MODELS), "mode": Choice(models.MODES), "workers": Int(1),
               "servers": Int(1, 4), "bandwidth_gbps": Real(0, 100, low_open=True), "iterations": Int(1),
               "warmup": Int(0), "seed": SEED, "depth": Int(1), "width": Int(1), "batch_size": Int(1),
               "chunk_bytes": Int(1), "timeout_s": POSITIVE, "fault": Choice(ps.FAULTS)}),
    ]


# ---- synergy -------------------------------------------------------------------------------------

def _synergy() -> list[Entry]:
    from mlsys_core.synergy import bf16, fault_tolerance, nvm, tictac_links

    return [
        Entry("synergy.bf16.explore_bf16", bf16.explore_bf16,
              {"model_millions": 2.0, "phone_link_factor": 0.5, "pod_link_gb_per_s": 100.0},
              {"model_millions": POSITIVE, "phone_link_factor": POSITIVE, "pod_link_gb_per_s": POSITIVE}),
        Entry("synergy.fault_tolerance.explore_faults", fault_tolerance.explore_faults,
              {"failure_chance_log10": -2.5, "checkpoint_interval": 20, "restart_steps": 10.0, "seeds": (0, 3)},
              {"failure_chance_log10": Real(high=0, high_open=True), "checkpoint_interval": Int(1),
               "restart_steps": NON_NEGATIVE, "seeds": Seq(SEED)}),
        Entry("synergy.nvm.explore_nvm", nvm.explore_nvm, {"dram_usd_per_gb": 5.0, "price_ratio": 8.0, "chips": 256},
              {"dram_usd_per_gb": POSITIVE, "price_ratio": POSITIVE, "chips": Int(1)}),
        Entry("synergy.tictac_links.explore_tictac", tictac_links.explore_tictac,
              {"downlink_mbit": 8.0, "local_steps": 2},
              {"downlink_mbit": POSITIVE, "local_steps": Int(1)}),
        Entry("synergy.fault_tolerance.FaultConfig", fault_tolerance.FaultConfig,
              {"replicas": 4, "failure_rate": 0.01, "checkpoint_interval": 20, "checkpoint_steps": 1.0,
               "restart_steps": 5.0, "recovery_steps": 0.5, "budget_steps": 500.0},
              {"replicas": Int(1, 200_000), "failure_rate": Real(0, 1, high_open=True), "checkpoint_interval": Int(1),
               "checkpoint_steps": NON_NEGATIVE, "restart_steps": NON_NEGATIVE, "recovery_steps": NON_NEGATIVE,
               "budget_steps": Real(1, 2.5e7)}),
        Entry("synergy.fault_tolerance.fault_run", fault_tolerance.fault_run,
              {"policy": "restart", "config": fault_tolerance.FaultConfig(failure_rate=0.01, budget_steps=300.0),
               "seed": 2},
              {"policy": Choice(tuple(fault_tolerance.FAULT_POLICIES)), "config": Instance(), "seed": SEED}),
        Entry("synergy.fault_tolerance.straggler_step_times", fault_tolerance.straggler_step_times,
              {"replicas": 4, "straggler_p": 0.1, "slow_factor": 3.0, "jitter": 0.2, "steps": 50, "seed": 1},
              {"replicas": Int(1), "straggler_p": FRACTION, "slow_factor": Real(1), "jitter": NON_NEGATIVE,
               "steps": Int(1), "seed": SEED}),
    ]


# ---- backend, data, report, claims ---------------------------------------------------------------

def _suite() -> list[Entry]:
    from mlsys_core import backend, claims, data, report

    claim = "sharding.wus_optimizer_state_fraction"  # deterministic: one measured value
    return [
        Entry("backend.mesh_devices", backend.mesh_devices, {"n": 2, "default": None, "cpu": None},
              {"n": Int(1), "default": Instance(optional=True), "cpu": Instance(optional=True)}),
        Entry("backend.info", backend.info, {"mesh_size": 2}, {"mesh_size": Int(1)}),
        Entry("backend.launch", backend.launch,
              {"argv": ["-c", "pass"], "processes": 1, "cpu_devices": 1, "timeout_s": 30.0},
              {"argv": Instance(), "processes": Int(1, backend.MAX_PROCESSES), "cpu_devices": Int(1),
               "timeout_s": POSITIVE}, spellings=False),
        Entry("data.load_digits", data.load_digits, {"flatten": False}, {"flatten": Bool()}),
        Entry("claims.get", claims.get, {"claim_id": claim}, {"claim_id": Choice(tuple(claims.REGISTRY))}),
        Entry("report.check", report.check, {"claim_id": claim, "measured": 0.13, "details": "x"},
              {"claim_id": Choice(tuple(claims.REGISTRY)), "measured": Real(), "details": Text(empty=True)},
              lambda r: r.row()),
    ]


ENTRIES = [*_sharding(), *_bandana(), *_fl(), *_tictac(), *_synergy(), *_suite()]
CALLS: dict[str, int] = {}


@pytest.fixture(autouse=True)
def _count_calls(record_property):
    """Record how many calls a test made, for the summary line."""
    before = sum(CALLS.values())
    yield
    record_property("fuzz_calls", sum(CALLS.values()) - before)


def _raises_naming(entry: Entry, param: str, value) -> None:
    try:
        result = entry(**{param: value})
    except (TypeError, ValueError) as e:
        assert param in str(e), f"{entry.name}({param}={value!r}) raised {type(e).__name__} without naming it: {e}"
    else:
        pytest.fail(f"{entry.name}({param}={value!r}) returned {result!r:.200} instead of refusing it")
    finally:
        CALLS[entry.name] = CALLS.get(entry.name, 0) + 1


@pytest.mark.parametrize("entry", ENTRIES, ids=[e.name for e in ENTRIES])
@given(data=st.data())
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
def test_a_bad_argument_is_refused_naming_its_parameter(entry, data):
    param = data.draw(st.sampled_from(sorted(entry.params)), label="parameter")
    value = data.draw(entry.params[param].bad(), label="value")
    _raises_naming(entry, param, value)


def _comparable(result):
    """A result as nested plain data, for equality across two calls."""
    if dataclasses.is_dataclass(result) and not isinstance(result, type):
        return _comparable(dataclasses.asdict(result))
    if isinstance(result, tuple) and hasattr(result, "_asdict"):
        return _comparable(result._asdict())
    if isinstance(result, dict):
        return {k: _comparable(v) for k, v in result.items()}
    if isinstance(result, (list, tuple)):
        return [_comparable(v) for v in result]
    return result


SPELLED = [e for e in ENTRIES if e.spellings]


@pytest.mark.parametrize("entry", SPELLED, ids=[e.name for e in SPELLED])
@given(data=st.data())
@settings(max_examples=8, deadline=None)
def test_a_valid_argument_spelled_another_way_gives_the_same_result(entry, data):
    param = data.draw(st.sampled_from(sorted(p for p in entry.params if entry.valid[p] is not None)), label="parameter")
    value = data.draw(entry.params[param].same(entry.valid[param]), label="value")
    expected = _comparable(entry.digest(entry()))
    np.testing.assert_equal(_comparable(entry.digest(entry(**{param: copy.deepcopy(value)}))), expected)
    CALLS[entry.name] = CALLS.get(entry.name, 0) + 2
