"""Paper 2 (Bandana): bad input to the trace, cache, curve, placement, queue and device code raises a clear
TypeError (wrong kind) or ValueError (out of range) naming the parameter, or the file and where in it;
valid input of every accepted kind still gives the results it gave."""

import os
import re

import numpy as np
import pytest

from mlsys_core.bandana import cache as C
from mlsys_core.bandana import evaluation as EV
from mlsys_core.bandana import hypergraph as H
from mlsys_core.bandana import mrc as M
from mlsys_core.bandana import nvm as N
from mlsys_core.bandana import placement as P
from mlsys_core.bandana import queueing as Q
from mlsys_core.bandana import shp as S
from mlsys_core.bandana import tables
from mlsys_core.bandana import thresholds as TH
from mlsys_core.bandana import trace as T
from mlsys_core.bandana import workload as W

TABLES = (tables.EmbeddingTable("post", 64, 16, num_communities=4),
          tables.EmbeddingTable("user", 48, 32, num_communities=4))
CONFIG = W.WorkloadConfig(tables=TABLES, num_requests=300, seed=1)


@pytest.fixture(scope="module")
def small():
    """(trace, block map) of a small synthetic workload."""
    trace = W.generate_trace(CONFIG)
    return trace, P.block_map(TABLES, [P.sequential_placement(t) for t in TABLES])


def _at(path, message: str) -> str:
    """The pattern of an error message that starts with `path`."""
    return f"^{re.escape(str(path))}: {message}"


def _csv(tmp_path, text: str) -> str:
    path = tmp_path / "t.csv"
    path.write_text("request_id,table,vector_id\n" + text)
    return str(path)


def _npz(tmp_path, **arrays) -> str:
    path = str(tmp_path / "t.npz")
    np.savez(path, **arrays)
    return path


# --- trace files: an error names the file and where in it --------------------------------------------


def test_a_float_vector_id_in_an_npz_is_refused_not_truncated(tmp_path):
    path = _npz(tmp_path, request_id=[0, 0, 1], table=["post"] * 3, vector_id=[1.7, 2.2, 3.9])
    with pytest.raises(ValueError, match=_at(path, r"vector_id must hold whole numbers; vector_id\[0\] is 1.7")):
        T.load_trace(path, TABLES)


def test_npz_ids_of_any_integer_type_or_whole_floats_load_as_before(tmp_path):
    want = T.Trace.from_lookups(TABLES, [0, 0, 1], [0, 1, 0], [1, 2, 3])
    for rid, vec in (([0, 0, 1], np.array([1, 2, 3], np.int32)), ([0.0, 0.0, 1.0], [1.0, 2.0, 3.0])):
        back = T.load_trace(_npz(tmp_path, request_id=rid, table=["post", "user", "post"], vector_id=vec), TABLES)
        assert np.array_equal(back.keys, want.keys) and np.array_equal(back.request_ptr, want.request_ptr)
    back = T.load_trace(_npz(tmp_path, request_id=[0, 0, 1], table=np.array([0, 1, 0], np.uint8),
                             vector_id=[1, 2, 3]), TABLES)  # integer table indices
    assert np.array_equal(back.keys, want.keys)


@pytest.mark.parametrize("arrays, kind, named", [
    (dict(request_id=["a"], table=["post"], vector_id=[1]), TypeError, r"request_id must be an array of numbers"),
    (dict(request_id=[0], table=[5], vector_id=[1]), ValueError,
     r"table must hold values in \[0, 1\]; table\[0\] is 5"),
    (dict(request_id=[0], table=[0.5], vector_id=[1]), ValueError, r"table must hold whole numbers; table\[0\] is 0.5"),
    (dict(request_id=[0, 1], table=["post"] * 2, vector_id=[1, 2], time_us=[0.0, np.nan]), ValueError,
     r"time_us must hold finite numbers; time_us\[1\] is nan"),
    (dict(request_id=[0, 1], table=["post"] * 2, vector_id=[1, 2], time_us=[0.0]), ValueError,
     r"time_us must hold one time per lookup \(2\), got shape \(1,\)"),
    (dict(request_id=[0], table=["post"]), ValueError, r"NPZ trace lacks arrays \['vector_id'\]"),
])
def test_a_bad_npz_array_is_named_with_the_file(tmp_path, arrays, kind, named):
    path = _npz(tmp_path, **arrays)
    with pytest.raises(kind, match=_at(path, named)):
        T.load_trace(path, TABLES)


def test_empty_truncated_or_foreign_npz_files_say_so_with_their_path(tmp_path):
    good = _npz(tmp_path, request_id=np.arange(200), table=np.zeros(200, int), vector_id=np.arange(200) % 64)
    raw = open(good, "rb").read()
    path = str(tmp_path / "bad.npz")
    np.save(tmp_path / "bare.npy", np.arange(3))
    bare = open(tmp_path / "bare.npy", "rb").read()
    for data, why in ((b"", "EOFError"), (raw[: len(raw) // 2], "BadZipFile"), (raw[:-40], "BadZipFile"),
                      (b"not a zip file at all", "ValueError")):
        open(path, "wb").write(data)
        with pytest.raises(ValueError, match=_at(path, rf"not a readable NPZ archive \({why}")):
            T.load_trace(path, TABLES)
    open(path, "wb").write(bare)
    with pytest.raises(ValueError, match=_at(path, r"not an NPZ archive: it holds one bare array")):
        T.load_trace(path, TABLES)
    np.savez(path, request_id=[0], table=np.array(["post"], dtype=object), vector_id=[1])
    with pytest.raises(ValueError, match=_at(path, r"array 'table' cannot be read \(ValueError: Object arrays")):
        T.load_trace(path, TABLES)


@pytest.mark.parametrize("rows, named", [
    # a row of the wrong length
    ("0,post,1\n1,post\n2,post,3\n", r"line 3: 2 fields, the header has 3 \(request_id,table,vector_id\)"),
    ("0,post,1\n\n", r"line 3: 0 fields, the header has 3"),
    ("0,post,1\n1,post,2,9\n", r"line 3: 4 fields, the header has 3"),
    # a cell that is not a whole number: its column is named
    ("0,post,1\n1,post,2.5\n", r"line 3: vector_id must hold whole numbers, got '2.5'"),
    ("0,post,1\n1.0,post,2\n", r"line 3: request_id must hold whole numbers, got '1.0'"),
    ("0,post,x\n", r"line 2: vector_id must hold whole numbers, got 'x'"),
    ("0,post,1\n1,post,99999999999999999999\n", r"line 3: vector_id must hold whole numbers, got '9+'"),
    # a value out of range
    ("0,post,1\n1,photos,2\n", r"line 3: unknown table 'photos'; known tables are \['post', 'user'\]"),
    ("0,post,1\n1,post,64\n", r"line 3: vector_id 64 is outside table 'post' \(ids 0..63\)"),
    ("0,post,1\n0,user,-1\n", r"line 3: vector_id -1 is outside table 'user' \(ids 0..47\)"),
    ("3,post,1\n3,post,2\n1,post,2\n", r"line 4: request_id 1 follows 3: request ids must be in time order"),
])
def test_a_bad_csv_row_names_its_line(tmp_path, rows, named):
    path = _csv(tmp_path, rows)
    with pytest.raises(ValueError, match=_at(path, named)):
        T.load_trace(path, TABLES)


@pytest.mark.parametrize("rows, named", [
    ("0,post,1,0\n1,post,2,nan\n", r"line 3: time_us is nan: arrival times must be finite"),
    ("0,post,1,5\n1,post,2,inf\n", r"line 3: time_us is inf"),
    ("0,post,1,5\n1,post,2,soon\n", r"line 3: time_us must hold numbers, got 'soon'"),
    ("0,post,1,5\n1,post,2,7\n1,post,3,8\n", r"line 4: request id 1 has lookups at different times"),
    ("0,post,1,5\n1,post,2,7\n2,post,3,6\n",
     r"line 4: time_us goes back in time at request 2 \(id 2\): 6 us after 7 us"),
])
def test_bad_csv_times_name_their_line(tmp_path, rows, named):
    path = tmp_path / "t.csv"
    path.write_text("request_id,table,vector_id,time_us\n" + rows)
    with pytest.raises(ValueError, match=_at(path, named)):
        T.load_trace(path, TABLES)


def test_a_csv_that_is_not_utf8_text_names_the_file(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"request_id,table,vector_id\n0,post,\xff\xfe\n")
    with pytest.raises(ValueError, match=_at(path, "'utf-8' codec can't decode")):
        T.load_trace(path, TABLES)


def test_tables_must_be_distinct_embedding_tables(tmp_path):
    path = _csv(tmp_path, "0,post,1\n")
    with pytest.raises(TypeError, match=r"tables\[1\] must be EmbeddingTable, got 'user'"):
        T.load_trace(path, (TABLES[0], "user"))
    with pytest.raises(ValueError, match=r"table names must be distinct, got \['post', 'post'\]"):
        T.Trace.from_lookups((TABLES[0], TABLES[0]), [0], [0], [1])
    with pytest.raises(ValueError, match="tables must hold at least one EmbeddingTable"):
        T.load_oracle_general(path, ())
    with pytest.raises(TypeError, match="tables must be a sequence of EmbeddingTable, got 3"):
        T.Trace.from_lookups(3, [0], [0], [1])


# --- libCacheSim oracleGeneral files ---------------------------------------------------------------------


def _records(tmp_path, obj_id, obj_size, clock=None) -> str:
    rec = np.zeros(len(obj_id), dtype=T.ORACLE_GENERAL)
    rec["clock_time"] = np.arange(len(obj_id)) if clock is None else clock
    rec["obj_id"] = obj_id
    rec["obj_size"] = obj_size
    rec["next_access_vtime"] = -1
    path = str(tmp_path / "t.oracleGeneral.bin")
    rec.tofile(path)
    return path


def test_oracle_general_records_of_size_zero_are_skipped_as_libcachesim_skips_them(tmp_path):
    path = _records(tmp_path, [1, 2, 1, 3, 1, 2], [1, 0, 1, 0, 1, 1])
    assert T.read_oracle_general(path).tolist() == [1, 1, 1, 2]
    trace = T.load_oracle_general(path, TABLES)
    assert trace.keys.tolist() == [1, 1, 1, 2] and trace.time_us.tolist() == [0.0, 2e6, 4e6, 5e6]
    path = _records(tmp_path, [1, 2, 10**9], [1, 0, 1])  # a bad key's record is its place in the file
    with pytest.raises(ValueError, match=_at(path, "key 1000000000 at record 2 is outside the tables' 112 keys")):
        T.load_oracle_general(path, TABLES)
    path = _records(tmp_path, [1, 2], [0, 0])
    for read in (T.read_oracle_general, lambda p: T.load_oracle_general(p, TABLES)):
        with pytest.raises(ValueError, match=_at(path, "the trace is empty: all 2 records have obj_size 0")):
            read(path)


def test_oracle_general_size_zero_skipping_agrees_with_libcachesim(tmp_path):
    lcs = pytest.importorskip("libcachesim", reason="the peer needs the `bench` extra")
    sizes = np.random.default_rng(0).integers(0, 3, 400)
    keys = np.random.default_rng(1).zipf(1.3, 400) % 50
    path = _records(tmp_path, keys, sizes)
    seen = [req.obj_id for req in lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE)]
    assert seen == T.read_oracle_general(path).tolist() == keys[sizes > 0].tolist()


def test_oracle_general_files_of_no_whole_record_or_clock_going_back_name_the_file(tmp_path):
    path = tmp_path / "t.bin"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=_at(path, "the trace is empty \\(0 bytes\\)")):
        T.read_oracle_general(path)
    path.write_bytes(b"\0" * 30)
    with pytest.raises(ValueError, match=_at(path, "30 bytes is not a whole number of 24-byte records")):
        T.load_oracle_general(path, TABLES)
    bad = _records(tmp_path, [1, 2, 3], [1, 1, 1], clock=[4, 9, 2])
    with pytest.raises(ValueError, match=_at(bad, "record 2: time_us goes back in time at request 2")):
        T.load_oracle_general(bad, TABLES)


@pytest.mark.parametrize("keys, kind, named", [
    ([-1, 2], ValueError, r"keys must hold values >= 0; keys\[0\] is -1"),
    ([1.5, 2], ValueError, r"keys must hold whole numbers; keys\[0\] is 1.5"),
    ([[1, 2]], ValueError, r"keys must have 1 dimension, got shape \(1, 2\)"),
    (["a"], TypeError, r"keys must be an array of numbers"),
    ([], ValueError, r"keys is empty: the trace has nothing to write"),
])
def test_write_oracle_general_refuses_keys_it_cannot_write(tmp_path, keys, kind, named):
    with pytest.raises(kind, match=named):
        T.write_oracle_general(tmp_path / "o.bin", keys)
    assert not (tmp_path / "o.bin").exists()


@pytest.mark.parametrize("size, kind, named", [
    (0, ValueError, "obj_size must be >= 1, got 0"),
    (1.5, TypeError, "obj_size must be an int, got 1.5"),
    (2**32, ValueError, r"obj_size must fit the record's uint32 field \(<= 4294967295\), got 4294967296"),
])
def test_write_oracle_general_refuses_an_object_size_it_would_wrap_or_truncate(tmp_path, size, kind, named):
    with pytest.raises(kind, match=named):
        T.write_oracle_general(tmp_path / "o.bin", [1, 2], obj_size=size)


def test_64_bit_object_ids_still_round_trip_and_simulate(tmp_path):
    keys = np.array([2**64 - 1, 7, 2**63, 2**64 - 1, 7], dtype=np.uint64)
    T.write_oracle_general(tmp_path / "o.bin", keys, obj_size=3)
    back = T.read_oracle_general(tmp_path / "o.bin")
    assert back.dtype == np.uint64 and np.array_equal(back, keys)
    assert M.stack_distances(back).tolist() == [-1, -1, -1, 2, 2]
    assert C.lru_misses(back, 2) == 5 and C.lru_misses(back, 3) == 3


# --- keys of the cache and curve kernels ---------------------------------------------------------------

KEY_FUNCTIONS = {
    "lru_misses": lambda k: C.lru_misses(k, 2),
    "dense_ids": C.dense_ids,
    "stack_distances": M.stack_distances,
    "hit_rate_curve": lambda k: M.hit_rate_curve(k, [1, 2]),
    "shards_hit_rate_curve": lambda k: M.shards_hit_rate_curve(k, [1, 2], 0.5),
    "shards_fixed_hit_rate_curve": lambda k: M.shards_fixed_hit_rate_curve(k, [1, 2], 10),
    "shards_keep": lambda k: M.shards_keep(k, 0.5),
    "shards_hashes": M.shards_hashes,
    "next_access": T.next_access,
}


@pytest.mark.parametrize("name", KEY_FUNCTIONS)
def test_two_dimensional_keys_are_refused_before_the_kernel(name):
    with pytest.raises(ValueError, match=r"keys must have 1 dimension, got shape \(2, 3\)"):
        KEY_FUNCTIONS[name](np.arange(6).reshape(2, 3))


@pytest.mark.parametrize("name", KEY_FUNCTIONS)
def test_fractional_or_negative_keys_are_refused_not_truncated(name):
    with pytest.raises(ValueError, match=r"keys must hold whole numbers; keys\[1\] is 1.7"):
        KEY_FUNCTIONS[name]([2, 1.7, 2])
    with pytest.raises(ValueError, match=r"keys must hold values >= 0; keys\[2\] is -4"):
        KEY_FUNCTIONS[name]([3, 1, -4])
    with pytest.raises(TypeError, match="keys must be an array of numbers"):
        KEY_FUNCTIONS[name]([True, False])


def test_stack_distances_of_float_ids_are_refused_and_whole_floats_match_ints():
    with pytest.raises(ValueError, match=r"keys must hold whole numbers; keys\[0\] is 1.5"):
        M.stack_distances([1.5, 1.7, 1.5])
    ints = [5, 1, 5, 2, 1, 5]
    assert M.stack_distances(np.array(ints, dtype=np.float64)).tolist() == M.stack_distances(ints).tolist()
    assert M.stack_distances(np.array(ints, dtype=np.int16)).tolist() == [-1, -1, 1, -1, 2, 2]


@pytest.mark.parametrize("sizes, kind, named", [
    ([1.0, np.nan], ValueError, r"cache_sizes must hold finite numbers; cache_sizes\[1\] is nan"),
    ([np.inf], ValueError, r"cache_sizes must hold finite numbers; cache_sizes\[0\] is inf"),
    ([-1], ValueError, r"cache_sizes must hold values >= 0; cache_sizes\[0\] is -1"),
    (["10"], TypeError, "cache_sizes must be an array of numbers"),
    ([], ValueError, "cache_sizes must be a non-empty 1-D list"),
])
def test_curve_sizes_that_would_give_nan_are_refused(sizes, kind, named):
    for curve in (lambda: M.hit_rate_curve([1, 2, 1], sizes), lambda: M.shards_hit_rate_curve([1, 2, 1], sizes, 0.5),
                  lambda: M.shards_fixed_hit_rate_curve([1, 2, 1], sizes, 4)):
        with pytest.raises(kind, match=named):
            curve()


def test_shards_adjust_must_be_a_bool():
    for curve in (lambda: M.shards_hit_rate_curve([1, 2, 1], [1], 0.5, adjust="no"),
                  lambda: M.shards_fixed_hit_rate_curve([1, 2, 1], [1], 4, adjust="no")):
        with pytest.raises(TypeError, match="adjust must be True or False, got 'no'"):
            curve()


# --- seeds ------------------------------------------------------------------------------------------

SEEDED = {
    "WorkloadConfig": lambda s: W.WorkloadConfig(tables=TABLES, seed=s),
    "community_of": lambda s: W.community_of(TABLES[0], s),
    "table_vectors": lambda s: W.table_vectors(TABLES[0], s),
    "SHPConfig": lambda s: S.SHPConfig(seed=s),
    "random_placement": lambda s: P.random_placement(TABLES[0], s),
    "kmeans_placement": lambda s: P.kmeans_placement(TABLES[0], np.zeros((64, 16)), s),
    "shards_keep": lambda s: M.shards_keep([1, 2], 0.5, s),
    "shards_hashes": lambda s: M.shards_hashes([1, 2], s),
    "shards_hit_rate_curve": lambda s: M.shards_hit_rate_curve([1, 2], [1], 0.5, s),
    "shards_fixed_hit_rate_curve": lambda s: M.shards_fixed_hit_rate_curve([1, 2], [1], 4, s),
    "simulate_queue": lambda s: Q.simulate_queue([0.0], [1], seed=s),
    "poisson_arrivals_us": lambda s: Q.poisson_arrivals_us(3, 1e3, s),
    "PoissonArrivals.times_us": lambda s: Q.PoissonArrivals().times_us(3, 1e3, s),
    "TraceArrivals.times_us": lambda s: Q.TraceArrivals(np.arange(3.0)).times_us(3, 1e3, s),
    "closed_loop_iops": lambda s: Q.closed_loop_iops(num_reads=10, seed=s),
    "latency_vs_utilisation": lambda s: Q.latency_vs_utilisation([1, 1], (0.5,), seed=s),
    "mm1_check": lambda s: Q.mm1_check(num_requests=100, seed=s),
    "skewed_refresh_rates": lambda s: N.skewed_refresh_rates(3, seed=s),
    "learn_placements": lambda s: EV.learn_placements(W.generate_trace(CONFIG), "shp", s),
}


@pytest.mark.parametrize("name", SEEDED)
def test_every_seed_is_an_int_at_least_zero(name):
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        SEEDED[name](-1)
    with pytest.raises(TypeError, match="seed must be an int, got 1.5"):
        SEEDED[name](1.5)
    with pytest.raises(TypeError, match="seed must be an int, got True"):
        SEEDED[name](True)


def test_seeds_of_the_cache_grid_and_the_mini_caches_are_checked(small):
    trace, blocks = small
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        M.cache_grid(trace, blocks, [0], [4096], 0.5, seed=-1)
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        TH.minicache_thresholds(trace, blocks, 0.1, rate=1.0, seed=-1)


# --- traces built in code ------------------------------------------------------------------------------


@pytest.mark.parametrize("args, kind, named", [
    (([0, 0.5], [0, 0], [1, 2]), ValueError, r"request_id must hold whole numbers; request_id\[1\] is 0.5"),
    (([0, 1], [0, 0], [1, 2.5]), ValueError, r"vector must hold whole numbers; vector\[1\] is 2.5"),
    (([0, 1], [0, 2], [1, 2]), ValueError, r"table must hold values in \[0, 1\]; table\[1\] is 2"),
    (([0, 1], [0, 0], [1, 64]), ValueError, r"lookup 1: vector_id 64 is outside table 'post' \(ids 0..63\)"),
    (([4, 1], [0, 0], [1, 2]), ValueError, r"lookup 1: request_id 1 follows 4: request ids must be in time order"),
    ((["0"], [0], [1]), TypeError, r"request_id must be an array of numbers, got dtype <U1"),
])
def test_from_lookups_refuses_ids_it_would_truncate_or_misplace(args, kind, named):
    with pytest.raises(kind, match=named):
        T.Trace.from_lookups(TABLES, *args)


def test_select_takes_one_bool_per_lookup(small):
    trace, _ = small
    with pytest.raises(TypeError, match="mask must be an array of bools .one per lookup., got dtype int64"):
        trace.select(np.arange(3))
    with pytest.raises(ValueError, match=rf"mask must hold one bool per lookup, shape \({trace.num_lookups},\), "
                                         rf"got shape \(3,\)"):
        trace.select(np.ones(3, dtype=bool))
    assert trace.select(trace.table == 1).num_lookups == np.count_nonzero(trace.table == 1)


def test_trace_methods_check_their_arguments(small, tmp_path):
    trace, _ = small
    with pytest.raises(TypeError, match="past_fraction must be a number, got '0.5'"):
        trace.split("0.5")
    with pytest.raises(TypeError, match="name must be a string, got 0"):
        trace.only_table(0)
    with pytest.raises(TypeError, match="trace must be Trace, got"):
        T.save_trace(trace.keys, tmp_path / "t.csv")
    with pytest.raises(TypeError, match="config must be WorkloadConfig, got"):
        W.generate_trace(TABLES)


# --- the cache, its block map and placements ----------------------------------------------------------


def test_cache_grid_refuses_thresholds_and_capacities_it_would_truncate(small):
    trace, blocks = small
    with pytest.raises(ValueError, match=r"thresholds must hold whole numbers; thresholds\[1\] is 1.5"):
        M.cache_grid(trace, blocks, [0, 1.5], [4096])
    with pytest.raises(ValueError, match=r"capacities_bytes must hold whole numbers; capacities_bytes\[0\] is 4096.7"):
        M.cache_grid(trace, blocks, [0], [4096.7])
    with pytest.raises(ValueError, match=r"thresholds must hold values >= 0; thresholds\[0\] is -1"):
        M.cache_grid(trace, blocks, [-1], [4096])
    with pytest.raises(TypeError, match="blocks must be BlockMap, got"):
        M.cache_grid(trace, [0, 1], [0], [4096])
    grid = M.cache_grid(trace, blocks, np.array([0.0, 2.0]), [4096, np.int32(8192)])
    assert grid.thresholds.tolist() == [0, 2] and grid.capacities_bytes.tolist() == [4096, 8192]


def test_simulate_cache_refuses_past_counts_it_would_truncate(small):
    trace, blocks = small
    counts = np.ones(blocks.key_bytes.size)
    with pytest.raises(ValueError, match=r"past_counts must hold whole numbers; past_counts\[3\] is 0.5"):
        C.simulate_cache(trace, blocks, C.CacheConfig(4096, 1), np.where(np.arange(counts.size) == 3, 0.5, counts))
    with pytest.raises(ValueError, match=r"past_counts must hold values >= 0; past_counts\[0\] is -1"):
        C.simulate_cache(trace, blocks, C.CacheConfig(4096, 1), -counts)
    with pytest.raises(TypeError, match="config must be CacheConfig, got 4096"):
        C.simulate_cache(trace, blocks, 4096)
    as_float = C.simulate_cache(trace, blocks, C.CacheConfig(4096, 1), counts)
    as_int = C.simulate_cache(trace, blocks, C.CacheConfig(4096, 1), counts.astype(np.int32))
    assert as_float.hits == as_int.hits and np.array_equal(as_float.blocks_read, as_int.blocks_read)


def test_a_block_map_of_other_tables_is_refused_where_it_was_silently_used(small):
    trace, _ = small
    other = P.block_map(TABLES[:1], [P.sequential_placement(TABLES[0])])
    for use in (lambda: P.fanout(trace, other), lambda: P.effective_bandwidth_no_cache(trace, other),
                lambda: C.simulate_cache(trace, other, C.CacheConfig(4096)),
                lambda: M.cache_grid(trace, other, [0], [1])):
        with pytest.raises(ValueError, match="the trace's tables hold 112 keys, the block map 64"):
            use()


def test_a_block_map_the_kernels_would_read_out_of_bounds_is_refused(small):
    _, bm = small
    with pytest.raises(ValueError, match=rf"block_of must hold values in \[0, {bm.block_ptr.size - 2}\]"):
        P.BlockMap(bm.block_of + 1, bm.block_ptr, bm.block_members, bm.key_bytes)
    with pytest.raises(ValueError, match=r"block_members must hold values in \[0, 111\]"):
        P.BlockMap(bm.block_of, bm.block_ptr, bm.block_members + 1, bm.key_bytes)
    with pytest.raises(ValueError, match=r"block_ptr ends at 112, but block_members holds 111 keys"):
        P.BlockMap(bm.block_of, bm.block_ptr, bm.block_members[1:], bm.key_bytes)
    decreasing = rf"block_ptr must be non-decreasing; block_ptr\[2\] is 0 after {bm.block_ptr[1]}"
    with pytest.raises(ValueError, match=decreasing):
        P.BlockMap(bm.block_of, np.r_[bm.block_ptr[:2], 0, bm.block_ptr[3:]], bm.block_members, bm.key_bytes)
    with pytest.raises(ValueError, match=r"key_bytes must hold values >= 1; key_bytes\[0\] is 0"):
        P.BlockMap(bm.block_of, bm.block_ptr, bm.block_members, bm.key_bytes * 0)
    with pytest.raises(ValueError, match=r"key_bytes holds 111 keys, block_of 112"):
        P.BlockMap(bm.block_of, bm.block_ptr, bm.block_members, bm.key_bytes[1:])
    same = P.BlockMap(*(a.astype(np.int32) for a in (bm.block_of, bm.block_ptr, bm.block_members, bm.key_bytes)))
    assert same.block_of.dtype == np.int64 and np.array_equal(same.block_members, bm.block_members)


def test_placements_and_their_builders_check_their_arguments():
    with pytest.raises(ValueError, match=r"block_of must hold whole numbers; block_of\[1\] is 0.5"):
        P.Placement(np.array([0.0, 0.5]), 2)
    with pytest.raises(ValueError, match=r"block_of must hold values >= 0; block_of\[0\] is -1"):
        P.Placement(np.array([-1, 0]), 2)
    assert P.Placement(np.array([0.0, 1.0, 1.0]), 2).block_of.tolist() == [0, 1, 1]
    with pytest.raises(TypeError, match="table must be EmbeddingTable, got 'post'"):
        P.sequential_placement("post")
    with pytest.raises(TypeError, match=r"placements\[0\] must be Placement, got"):
        P.block_map(TABLES[:1], [np.zeros(64, dtype=np.int64)])
    values = W.table_vectors(TABLES[0], 0).astype(np.float64)
    values[5, 2] = np.nan
    with pytest.raises(ValueError, match=r"values must hold finite numbers; values\[5, 2\] is nan"):
        P.kmeans_placement(TABLES[0], values, 0)
    with pytest.raises(ValueError, match="num_clusters must be in"):
        P.kmeans_placement(TABLES[0], W.table_vectors(TABLES[0], 0), 0, num_clusters=0)


def test_shp_inputs_the_kernels_would_read_out_of_bounds_are_refused():
    with pytest.raises(ValueError, match=r"edges\[1\] must hold whole numbers; edges\[1\]\[0\] is 2.5"):
        H.Hypergraph.from_edges(5, [[0, 1], [2.5, 3]])
    with pytest.raises(ValueError, match=r"edges\[1\] must hold values in \[0, 4\]; edges\[1\]\[1\] is 7"):
        H.Hypergraph.from_edges(5, [[0, 1], [2, 7]])
    with pytest.raises(ValueError, match="edge_ptr must rise from 0 to the 3 pins"):
        H.Hypergraph(5, np.array([0, 2]), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match=r"pins must be vertex ids < num_vertices \(2\); pins\[2\] is 2"):
        H.Hypergraph(2, np.array([0, 3]), np.array([0, 1, 2]))
    graph = H.Hypergraph.from_edges(5, [[0, 1], [2.0, 3.0], []])
    assert graph.pins.tolist() == [0, 1, 2, 3] and graph.edge_ptr.tolist() == [0, 2, 4, 4]
    short = P.Placement(np.arange(3), 1)
    for use in (lambda: H.blocks_read(graph, short), lambda: H.probabilistic_fanout(graph, short)):
        with pytest.raises(ValueError, match="placement covers 3 vectors, the hypergraph has 5"):
            use()
    with pytest.raises(ValueError, match=r"p must be in \(0, 1\], got 0"):
        H.probabilistic_fanout(graph, P.Placement(np.arange(5), 1), 0)
    with pytest.raises(TypeError, match="graph must be Hypergraph, got"):
        S.shp_placement([[0, 1]], 2)
    with pytest.raises(TypeError, match="start must be Placement, got"):
        S.shp_placement(graph, 2, start=np.arange(5) // 2)


# --- the queue and the device model ----------------------------------------------------------------------


def test_simulate_queue_checks_each_array():
    with pytest.raises(TypeError, match="arrival_us must be an array of numbers"):
        Q.simulate_queue(["0", "1"], [1, 1])
    with pytest.raises(ValueError, match=r"arrival_us must hold finite numbers; arrival_us\[1\] is nan"):
        Q.simulate_queue([0.0, np.nan], [1, 1])
    with pytest.raises(ValueError, match=r"reads_per_request must hold whole numbers; reads_per_request\[0\] is 1.5"):
        Q.simulate_queue([0.0, 1.0], [1.5, 1])
    with pytest.raises(ValueError, match=r"hits_per_request must hold one count per request \(2\), got shape \(1,\)"):
        Q.simulate_queue([0.0, 1.0], [1, 1], hits_per_request=[3])
    with pytest.raises(ValueError, match=r"hits_per_request must hold values >= 0"):
        Q.simulate_queue([0.0, 1.0], [1, 1], hits_per_request=[3, -1])
    whole = Q.simulate_queue([0.0, 1.0], [1.0, 2.0], hits_per_request=[0, 3], seed=2)
    ints = Q.simulate_queue([0, 1], np.array([1, 2], np.int32), hits_per_request=np.array([0, 3], np.int8), seed=2)
    assert np.array_equal(whole.latency_us, ints.latency_us)


def test_queue_helpers_check_their_arguments(small):
    trace, _ = small
    with pytest.raises(ValueError, match=r"samples must hold finite numbers; samples\[1\] is inf"):
        Q.ServiceTimes.from_latencies([1.0, np.inf], "bad")
    with pytest.raises(TypeError, match="source must be a string, got 3"):
        Q.ServiceTimes(source=3)
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        Q.ServiceTimes().draw(-1, np.random.default_rng(0))
    with pytest.raises(TypeError, match="rng must be Generator, got 0"):
        Q.ServiceTimes().draw(3, 0)
    with pytest.raises(TypeError, match="trace must be Trace, got"):
        Q.TraceArrivals.of(trace.keys)
    with pytest.raises(ValueError, match=r"time_us must hold finite numbers; time_us\[1\] is nan"):
        Q.TraceArrivals(np.array([0.0, np.nan, 2.0]))
    with pytest.raises(ValueError, match=r"percentiles must hold values in \[0, 100\]; percentiles\[1\] is 150"):
        Q.latency_vs_utilisation([1, 1], (0.5,), percentiles=(50, 150))
    with pytest.raises(ValueError, match=r"reads_per_request must hold values >= 0"):
        Q.latency_vs_utilisation([1, -1], (0.5,))
    with pytest.raises(TypeError, match="device must be NVMDevice, got"):
        Q.request_rate_for(0.5, 2.0, device="optane")


def test_device_model_refuses_values_that_would_give_nan():
    dev = N.NVMDevice()
    with pytest.raises(ValueError, match=r"queue_depth must hold finite numbers; queue_depth\[0\] is nan"):
        dev.iops([np.nan])
    with pytest.raises(ValueError, match=r"queue_depth must hold values >= 1; queue_depth\[1\] is 0"):
        dev.iops([1, 0])
    with pytest.raises(ValueError, match=r"num_blocks must hold finite numbers"):
        dev.batch_latency_us(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"lookups_hit must be one count or one per request \(shape \(3,\)\), "
                                         r"got shape \(1,\)"):
        dev.request_latency_us([1, 2, 3], [1])
    assert np.allclose(dev.request_latency_us([1, 2], 0), dev.batch_latency_us([1, 2]))
    with pytest.raises(ValueError, match=r"useful_fraction must be in \[0, 1\], got 1.5"):
        dev.effective_bandwidth_bytes_per_s(1.5)
    with pytest.raises(ValueError, match=r"latency_us must hold finite numbers"):
        N.latency_percentiles([1.0, np.nan])
    with pytest.raises(ValueError, match=r"percentiles must hold values in \[0, 100\]"):
        N.latency_percentiles([1.0, 2.0], (50, 101))


def test_endurance_and_cost_refuse_what_would_be_nan_or_the_wrong_kind():
    with pytest.raises(ValueError, match=r"table_bytes must hold finite numbers; table_bytes\[1\] is nan"):
        N.endurance([1e9, np.nan], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"table_bytes must hold sizes > 0; table_bytes\[0\] is 0.0"):
        N.endurance([0.0, 1e9], [1.0, 2.0])
    with pytest.raises(ValueError, match=r"refreshes_per_day must hold values >= 0; refreshes_per_day\[1\] is -2"):
        N.endurance([1e9, 1e9], [1.0, -2.0])
    with pytest.raises(ValueError, match=r"must be of one non-zero length, got shapes \(2,\) and \(1,\)"):
        N.endurance([1e9, 1e9], [1.0])
    with pytest.raises(TypeError, match="device must be NVMDevice, got"):
        N.endurance([1e9], [1.0], device=None)
    with pytest.raises(TypeError, match="prices must be MemoryPrices, got"):
        N.memory_cost_usd(1e12, 1e11, prices=(6.25, 0.625))


def test_the_loaders_messages_start_with_the_path_given(tmp_path):
    path = _csv(tmp_path, "0,post,1\n1,post,2.5\n")
    with pytest.raises(ValueError) as caught:
        T.load_trace(os.path.relpath(path), TABLES)
    assert str(caught.value).startswith(os.path.relpath(path) + ": line 3: vector_id")
