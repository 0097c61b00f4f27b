"""Paper 2 (Bandana): workloads, traces, caches, hit-rate curves, placement, SHP, NVM model, block store."""

from collections import OrderedDict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_core.bandana import cache as C
from mlsys_core.bandana import evaluation as EV
from mlsys_core.bandana import experiments as E
from mlsys_core.bandana import hypergraph as H
from mlsys_core.bandana import mrc as M
from mlsys_core.bandana import nvm as N
from mlsys_core.bandana import placement as P
from mlsys_core.bandana import shp as S
from mlsys_core.bandana import store as ST
from mlsys_core.bandana import tables
from mlsys_core.bandana import trace as T
from mlsys_core.bandana import workload as W

SMALL = W.WorkloadConfig(tables=tables.default_tables(0.05), num_requests=3000, seed=1)


@pytest.fixture(scope="module")
def small_trace():
    return W.generate_trace(SMALL)


def reference_lru_misses(keys, capacity):
    cache, misses = OrderedDict(), 0
    for k in keys:
        if k in cache:
            cache.move_to_end(k)
            continue
        misses += 1
        if capacity:
            if len(cache) == capacity:
                cache.popitem(last=False)
            cache[k] = True
    return misses


# --- workload and traces -------------------------------------------------------------------------


def test_default_tables_follow_the_two_table_classes(small_trace):
    post, user = small_trace.tables
    share = np.mean(small_trace.table == 0)
    assert 0.92 < share < 0.97  # post tables take ~95% of lookups
    assert user.table_bytes / (user.table_bytes + post.table_bytes) == pytest.approx(0.75, abs=0.01)
    assert user.bytes_per_vector > post.bytes_per_vector
    assert post.block_capacity == 4096 // post.bytes_per_vector


def test_generator_is_reproducible_and_seed_dependent():
    a, b = W.generate_trace(SMALL), W.generate_trace(SMALL)
    c = W.generate_trace(W.WorkloadConfig(tables=SMALL.tables, num_requests=3000, seed=2))
    assert np.array_equal(a.keys, b.keys) and np.array_equal(a.request_ptr, b.request_ptr)
    assert not np.array_equal(a.keys[:500], c.keys[:500])


def test_requests_read_each_vector_once(small_trace):
    rid = small_trace.request_ids()
    pairs = rid * (small_trace.table_offsets[-1] + 1) + small_trace.keys
    assert np.unique(pairs).size == pairs.size


def test_split_is_time_ordered(small_trace):
    past, future = small_trace.split(0.5)
    assert past.num_lookups + future.num_lookups == small_trace.num_lookups
    assert np.array_equal(np.concatenate([past.keys, future.keys]), small_trace.keys)


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_trace_file_round_trip(tmp_path, small_trace, suffix):
    path = tmp_path / f"trace{suffix}"
    T.save_trace(small_trace, path)
    back = T.load_trace(path, small_trace.tables)
    assert np.array_equal(back.keys, small_trace.keys)
    assert np.array_equal(back.request_ptr, small_trace.request_ptr)


def test_oracle_general_layout_and_next_access(tmp_path):
    keys = np.array([5, 7, 5, 9, 7, 5], dtype=np.uint64)
    path = tmp_path / "t.oracleGeneral.bin"
    T.write_oracle_general(path, keys)
    raw = path.read_bytes()
    assert len(raw) == 24 * keys.size
    assert int.from_bytes(raw[4:12], "little") == 5 and int.from_bytes(raw[12:16], "little") == 1
    rec = np.fromfile(path, dtype=T.ORACLE_GENERAL)
    assert rec["next_access_vtime"].tolist() == [2, 4, 5, -1, -1, -1]
    assert np.array_equal(T.read_oracle_general(path), keys)


# --- bad input ----------------------------------------------------------------------------------


def test_vector_larger_than_a_block_is_rejected():
    with pytest.raises(ValueError, match="larger than a 4096-byte block"):
        tables.EmbeddingTable("big", 10, 2048, "float32")


def test_negative_threshold_is_rejected():
    with pytest.raises(ValueError, match="admission_threshold"):
        C.CacheConfig(1000, -1)


def test_empty_trace_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        T.Trace.from_lookups(SMALL.tables, [], [], [])
    path = tmp_path / "empty.csv"
    path.write_text("request_id,table,vector_id\n")
    with pytest.raises(ValueError, match="empty"):
        T.load_trace(path, SMALL.tables)
    with pytest.raises(ValueError, match="empty"):
        C.lru_misses(np.array([], dtype=np.int64), 4)


def test_unknown_table_is_rejected(tmp_path, small_trace):
    path = tmp_path / "t.csv"
    path.write_text("request_id,table,vector_id\n0,post,1\n1,photos,2\n")
    with pytest.raises(ValueError, match="unknown table 'photos'"):
        T.load_trace(path, SMALL.tables)
    with pytest.raises(ValueError, match="unknown table"):
        small_trace.only_table("photos")


def test_out_of_order_and_out_of_range_lookups_are_rejected():
    with pytest.raises(ValueError, match="time order"):
        T.Trace.from_lookups(SMALL.tables, [1, 0], [0, 0], [1, 2])
    with pytest.raises(ValueError, match="outside table"):
        T.Trace.from_lookups(SMALL.tables, [0], [0], [10**9])


@pytest.mark.parametrize("rate", [0.0, -0.1, 1.5])
def test_sampling_rate_outside_unit_interval_is_rejected(rate):
    with pytest.raises(ValueError, match=r"^rate must be in \(0, 1\]"):
        M.shards_hit_rate_curve(np.arange(10), [1, 2], rate)
    with pytest.raises(ValueError, match=r"^initial_rate must be in \(0, 1\]"):
        M.shards_fixed_hit_rate_curve(np.arange(10), [1, 2], 4, initial_rate=rate)


@pytest.mark.parametrize("curve", [M.shards_hit_rate_curve, M.shards_fixed_hit_rate_curve])
def test_an_empty_key_array_is_refused_naming_keys(curve):
    with pytest.raises(ValueError, match="^keys is empty"):
        curve([], [1, 2], 1)


def test_integer_fields_accept_numpy_ints_and_reject_floats_and_bools():
    table = tables.EmbeddingTable("t", np.int64(64), np.int32(16), num_communities=np.int64(4))
    W.WorkloadConfig(tables=(table,), num_requests=np.int64(10), seed=np.int32(3))
    S.SHPConfig(iterations=np.int64(3), refine_iterations=np.int16(1), seed=np.int64(2))
    C.CacheConfig(np.int64(4096), np.int64(2))
    P.Placement(np.arange(4), np.int64(2))
    assert C.lru_misses(np.array([1, 2, 1]), np.int64(1)) == 3
    with pytest.raises(TypeError, match="num_requests must be an int, got 10.0"):
        W.WorkloadConfig(num_requests=10.0)
    with pytest.raises(TypeError, match="iterations must be an int, got True"):
        S.SHPConfig(iterations=True)
    with pytest.raises(TypeError, match="capacity_bytes must be an int"):
        C.CacheConfig(4096.0)
    with pytest.raises(ValueError, match=r"affinity must be in \[0, 1\], got 1.5"):
        tables.EmbeddingTable("t", 64, 16, num_communities=4, affinity=1.5)
    with pytest.raises(ValueError, match=r"num_communities must be <= num_vectors \(64\), got 65"):
        tables.EmbeddingTable("t", 64, 16, num_communities=65)
    with pytest.raises(TypeError, match="dtype must be a string, got None"):
        tables.EmbeddingTable("t", 64, 16, dtype=None, num_communities=4)  # np.dtype(None) would be float64


def test_configs_validate_fields():
    with pytest.raises(ValueError, match="p must be"):
        S.SHPConfig(p=0.0)
    with pytest.raises(ValueError, match="mode"):
        S.SHPConfig(mode="spectral")
    with pytest.raises(ValueError, match="num_requests"):
        W.WorkloadConfig(num_requests=0)
    with pytest.raises(ValueError, match="placement must be one of"):
        EV.learn_placements(W.generate_trace(SMALL), "hilbert")


# --- LRU, stack distances, SHARDS -----------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=1, max_size=300), st.integers(0, 40))
def test_lru_matches_reference(keys, capacity):
    keys = np.array(keys, dtype=np.int64)
    assert C.lru_misses(keys, capacity) == reference_lru_misses(keys.tolist(), capacity)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 25), min_size=1, max_size=300))
def test_one_pass_curve_matches_lru_at_every_size(keys):
    keys = np.array(keys, dtype=np.int64)
    sizes = np.arange(0, 28)
    curve = M.hit_rate_curve(keys, sizes)
    misses = np.array([C.lru_misses(keys, int(c)) for c in sizes])
    assert np.allclose(curve, 1 - misses / keys.size)


def test_shards_at_full_rate_is_exact_and_error_shrinks_with_rate(small_trace):
    keys = np.tile(small_trace.keys, 3)
    sizes = np.linspace(50, 3000, 12)
    exact = M.hit_rate_curve(keys, sizes)
    assert np.allclose(M.shards_hit_rate_curve(keys, sizes, 1.0), exact)
    err = [np.abs(M.shards_hit_rate_curve(keys, sizes, r, seed=s) - exact).mean()
           for r in (0.02, 0.5) for s in (0, 1, 2)]
    assert np.mean(err[3:]) < np.mean(err[:3])


# --- the Bandana cache -----------------------------------------------------------------------


def one_block_setup():
    """One table of 8 vectors of 512 B: a single block of capacity 8."""
    table = tables.EmbeddingTable("t", 8, 128, num_communities=1)
    return table, P.block_map((table,), (P.sequential_placement(table),))


def run(table, blocks, requests, capacity, t):
    rid = np.repeat(np.arange(len(requests)), [len(r) for r in requests])
    trace = T.Trace.from_lookups((table,), rid, np.zeros(rid.size), np.concatenate(requests))
    return C.simulate_cache(trace, blocks, C.CacheConfig(capacity, t))


def test_threshold_zero_admits_the_whole_block():
    table, blocks = one_block_setup()
    r = run(table, blocks, [[0], [3], [5]], 8 * 512, 0)
    assert r.prefetch_admitted == 7 and r.hits == 2 and r.total_blocks_read == 1
    assert r.prefetch_hits == 2 and r.useful_bytes == 3 * 512


def test_infinite_threshold_admits_no_prefetched_vector():
    table, blocks = one_block_setup()
    r = run(table, blocks, [[0], [3], [5]], 8 * 512, C.NO_PREFETCH)
    assert r.prefetch_admitted == 0 and r.hits == 0 and r.total_blocks_read == 3


def test_threshold_admits_only_vectors_seen_often_enough():
    table, blocks = one_block_setup()
    # a 3-vector cache; 3 is looked up once, then evicted by the miss on 4, whose block read re-admits
    # 3 (count 1 >= t) but none of the never-seen vectors 0, 5, 6, 7
    r = run(table, blocks, [[3], [1], [2], [4], [3]], 3 * 512, 1)
    assert r.prefetch_admitted == 1
    assert r.hits_per_request.tolist() == [0, 0, 0, 0, 1] and r.prefetch_hits == 1


def test_a_request_reads_a_block_once(small_trace):
    blocks = P.block_map(small_trace.tables, [P.sequential_placement(t) for t in small_trace.tables])
    r = C.simulate_cache(small_trace, blocks, C.CacheConfig(0, C.NO_PREFETCH))
    assert np.array_equal(r.blocks_read, P.fanout(small_trace, blocks))
    assert r.hit_rate == 0


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=200), st.integers(0, 30))
def test_unit_blocks_without_prefetch_is_plain_lru(keys, capacity):
    table = tables.EmbeddingTable("u", 41, 1024, num_communities=1)  # 4 KB vectors: one per block
    blocks = P.block_map((table,), (P.sequential_placement(table),))
    trace = T.Trace.from_lookups((table,), np.arange(len(keys)), np.zeros(len(keys)), keys)
    r = C.simulate_cache(trace, blocks, C.CacheConfig(capacity * 4096, 0))
    assert len(keys) - r.hits == reference_lru_misses(keys, capacity)


# --- placement and SHP -------------------------------------------------------------------------------


def test_placements_respect_block_capacity(small_trace):
    for method in EV.PLACEMENTS:
        for t, p in zip(small_trace.tables, EV.learn_placements(small_trace, method)):
            assert np.bincount(p.block_of).max() <= t.block_capacity
            assert p.block_of.size == t.num_vectors


def test_placement_rejects_overfull_blocks():
    with pytest.raises(ValueError, match="more than block_capacity"):
        P.Placement(np.zeros(5, dtype=np.int64), 4)
    with pytest.raises(ValueError, match="block_capacity must be >= 1, got 0"):
        P.Placement(np.arange(5, dtype=np.int64), 0)
    for bad in (2.5, "4", True):
        with pytest.raises(TypeError, match="block_capacity must be an int"):
            P.Placement(np.arange(5, dtype=np.int64), bad)


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 10**6), st.sampled_from(["bisection", "kway"]), st.sampled_from([0.5, 1.0]), st.integers(3, 9))
def test_shp_respects_capacity_and_never_reads_more_than_its_start(seed, mode, p, capacity):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(capacity, 120))
    edges = [rng.choice(n, size=int(rng.integers(1, min(n, 8) + 1)), replace=False) for _ in range(60)]
    graph = H.Hypergraph.from_edges(n, edges)
    start = P.Placement(rng.permutation(n) // capacity, capacity)
    out = S.shp_placement(graph, capacity, S.SHPConfig(p=p, mode=mode, iterations=5, seed=seed), start)
    assert np.bincount(out.block_of).max() <= capacity
    assert out.block_of.size == n
    assert H.blocks_read(graph, out) <= H.blocks_read(graph, start)


def test_shp_beats_sequential_on_community_workload(small_trace):
    past, future = small_trace.split(0.5)
    post = small_trace.tables[0]
    shp = S.shp_placement(H.Hypergraph.from_trace(past, "post"), post.block_capacity, S.SHPConfig())
    g = H.Hypergraph.from_trace(future, "post")
    assert H.blocks_read(g, shp) < 0.8 * H.blocks_read(g, P.sequential_placement(post))


def test_probabilistic_fanout_with_p_one_is_fanout():
    graph = H.Hypergraph.from_edges(6, [[0, 1, 2], [3, 4], [0, 5]])
    pl = P.Placement(np.array([0, 0, 1, 1, 2, 2]), 2)
    assert H.blocks_read(graph, pl) == 2 + 2 + 2
    assert H.probabilistic_fanout(graph, pl, 1.0) == pytest.approx(2.0)
    assert H.probabilistic_fanout(graph, pl, 0.5) < 2.0


# --- mini-caches --------------------------------------------------------------------------------------


def test_minicache_error_shrinks_as_rate_grows():
    table = tables.EmbeddingTable("t", 20000, 32, lookups_per_request=6.0, num_communities=600)
    exp = EV.Experiment.from_config(W.WorkloadConfig(tables=(table,), num_requests=20000, seed=3))
    blocks = exp.blocks(EV.learn_placements(exp.past, "sequential"))
    ts, fr = [0, 4, C.NO_PREFETCH], [0.05, 0.2]
    full = E.threshold_table(exp, blocks, "t", ts, fr)
    err = {
        r: np.mean(
            [
                np.abs(E.threshold_table(exp, blocks, "t", ts, fr, rate=r, seed=s).hit_rates - full.hit_rates).mean()
                for s in range(3)
            ]
        )
        for r in (0.05, 0.5)
    }
    assert err[0.5] < err[0.05]
    assert np.allclose(E.threshold_table(exp, blocks, "t", ts, fr, rate=1.0).hit_rates, full.hit_rates)


# --- NVM model, endurance, cost -----------------------------------------------------------------------


def test_device_model_matches_spec_points():
    d = N.NVMDevice()
    assert (
        d.iops(1) == pytest.approx(108_000)
        and d.iops(16) == pytest.approx(585_000)
        and d.iops(64) == pytest.approx(585_000)
    )
    lat = d.batch_latency_us(np.array([0, 1, 4, 16, 64]))
    assert lat[0] == 0 and lat[1] == pytest.approx(1e6 / 108_000)
    assert np.all(np.diff(lat) > 0)
    assert d.peak_read_bytes_per_s == pytest.approx(585_000 * 4096)


def test_endurance_uniform_vs_skewed_rates():
    sizes = np.full(40, 300e9)  # about one table per 375 GB drive
    uniform = N.endurance(sizes, np.full(40, 15.0))
    assert uniform.fraction_over_budget == 0 and uniform.worst == pytest.approx(15 * 0.9, rel=0.02)
    skewed = N.endurance(sizes, N.skewed_refresh_rates(40, 15.0, cv=1.5, seed=0))
    assert skewed.worst > uniform.worst
    hot = np.full(40, 15.0)
    hot[5] = 60.0  # one table refreshed 4x as often puts its drive over the 30 DWPD budget
    assert N.endurance(sizes, hot).fraction_over_budget > 0
    with pytest.raises(ValueError):
        N.endurance(sizes, np.full(39, 15.0))


def test_memory_cost_saving():
    c = N.memory_cost_usd(100e9, 10e9)
    assert c.all_dram_usd == pytest.approx(625.0)
    assert c.nvm_plus_cache_usd == pytest.approx(62.5 + 62.5)


def test_memory_prices_are_stored_as_python_floats():
    """A float32 price used to carry float32 arithmetic into every cost."""
    prices = N.MemoryPrices(np.float32(6.5), np.float32(0.5))
    assert type(prices.dram_usd_per_gb) is float and type(prices.nvm_usd_per_gb) is float
    assert N.memory_cost_usd(1e11, 1e10, prices) == N.memory_cost_usd(1e11, 1e10, N.MemoryPrices(6.5, 0.5))


# --- the real block store ------------------------------------------------------------------------------


@pytest.fixture
def stored(tmp_path):
    table = tables.EmbeddingTable("t", 300, 16, num_communities=10)
    values = W.table_vectors(table, 0)
    pl = P.random_placement(table, 0)
    path = tmp_path / "t.bandana"
    ST.write_store(path, table, values, pl)
    return path, values, pl


def test_store_round_trip_reads_4k_blocks(stored):
    path, values, pl = stored
    ids = np.array([0, 5, 299, 5, 17])
    with ST.BlockStore(path) as s:
        assert np.array_equal(s.lookup(ids), values[ids])
        assert s.blocks_read == np.unique(pl.block_of[ids]).size
        assert np.array_equal(s.lookup(np.arange(300)), values)


def test_store_detects_a_corrupted_block(stored):
    path, _, pl = stored
    with ST.BlockStore(path) as s:
        offset = s.data_offset + 2 * 4096 + 100
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))
    with ST.BlockStore(path) as s:
        with pytest.raises(ST.StoreError, match="block 2 is corrupted"):
            s.read_block(2)
        s.read_block(1)  # other blocks still read fine


def test_store_detects_truncation(stored):
    path, _, pl = stored
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 4096 - 10])
    last = pl.num_blocks - 2
    with pytest.raises(ST.StoreError, match=f"truncated at block {last}"):
        ST.BlockStore(path)
    path.write_bytes(raw[:100])
    with pytest.raises(ST.StoreError, match="truncated"):
        ST.BlockStore(path)


# --- experiments ------------------------------------------------------------------------------------


def test_compare_placements_and_dram_saving(small_trace):
    exp = EV.Experiment.from_config(SMALL)
    rows = E.compare_placements(exp, {m: EV.learn_placements(exp.past, m) for m in ("sequential", "shp")}, 0.1)
    assert rows["shp"].fanout < rows["sequential"].fanout
    assert rows["shp"].eb_no_cache > rows["sequential"].eb_no_cache
    caps = np.array([1.0, 2.0, 4.0])
    assert E.dram_saved_at_equal_hit_rate(
        caps, np.array([0.1, 0.2, 0.4]), np.array([0.2, 0.4, 0.5]), 2
    ) == pytest.approx(0.5)


def test_latency_profile_maps_block_reads_through_the_device_model():
    # 1,000 requests: 995 read one block, 5 (0.5%) read 16 blocks at queue depth 16, none hit DRAM
    blocks = np.ones(1000, dtype=np.int32)
    blocks[::200] = 16
    res = C.CacheResult(1000, 0, 0, 0, 0, blocks, np.zeros(1000, dtype=np.int32))
    lat = E.latency_profile(res, N.NVMDevice())
    assert lat[50.0] == pytest.approx(1e6 / 108_000)  # one read at QD1
    assert lat[99.0] == pytest.approx(1e6 / 108_000)  # the 16-block requests are only 0.5%
    assert lat[99.9] == pytest.approx(16 / 585_000 * 1e6)  # 16 reads at the peak IOPS
    # a cached vector adds DRAM time: the same reads plus 10 hits each cost 10 x 0.1 us more
    res_hits = C.CacheResult(1000, 10_000, 0, 0, 0, blocks, np.full(1000, 10, dtype=np.int32))
    assert E.latency_profile(res_hits)[50.0] == pytest.approx(lat[50.0] + 1.0)


# --- the claims' measurements ----------------------------------------------------------------------


TINY = {"seeds": (0, 1), "scale": 0.1, "num_requests": 3000}  # two tiny workloads per affinity


def test_placement_gains_grow_with_co_access():
    strong, none = E.placement_gains(0.8, **TINY), E.placement_gains(0.0, **TINY)
    assert strong.with_cache.shape == strong.without_cache.shape == (2,)
    assert np.all(strong.with_cache > none.with_cache + 0.2)  # communities that SHP can learn
    assert np.all(strong.without_cache > none.without_cache)


def test_study_measurements_at_the_default_point():
    blocks, kmeans = E.blocks_ratios(0.8, **TINY), E.kmeans_ratios(0.8, **TINY)
    saved, oracle = E.dram_saved(0.8, 0.1, **TINY), E.oracle_gains(0.8, 0.1, **TINY)
    assert blocks.shape == kmeans.shape == saved.shape == oracle.gain.shape == (2,)
    assert np.all(oracle.hit_rate_lost >= 0)  # the oracle t is never worse in hit rate than the mini-caches' t
    assert np.all(oracle.hit_rate_lost < 0.05)  # ... and the mini-caches' choice is not far off
    assert np.all(blocks > 1.5)  # SHP reads far fewer post-table blocks than id order
    assert np.all(kmeans > 1.0)  # and fewer than semantic k-means
    assert np.all((saved > 0.2) & (saved < 1.0))
    assert not np.array_equal(blocks[0], blocks[1])  # seeds give different workloads
    tails = E.latency_tails((0.2, 0.9), **TINY)
    assert tails.shape == (2, 2) and np.all(tails > 1.0)


def test_study_rejects_bad_arguments():
    with pytest.raises(ValueError, match="cache_fraction must be one of"):
        E.dram_saved(0.8, 0.07, **TINY)
    with pytest.raises(ValueError, match=">= 2 independent workloads"):
        E.blocks_ratios(0.8, seeds=(0,))
    with pytest.raises(TypeError, match="seeds"):
        E.blocks_ratios(0.8, seeds=(0, 1.5))
    with pytest.raises(ValueError, match="affinity"):
        E.placement_gains(1.5, **TINY)


def test_minicache_losses_are_zero_at_full_rate_and_match_the_grids():
    exp = EV.Experiment.from_config(SMALL)
    blocks = exp.blocks(EV.learn_placements(exp.past, "shp"))
    ts, fr = [0, 2, C.NO_PREFETCH], [0.05, 0.2]
    full = {n: E.threshold_table(exp, blocks, n, ts, fr) for n in ("post", "user")}
    assert np.array_equal(E.minicache_losses(exp, blocks, full, ts, fr, 1.0, 0), np.zeros((2, 2)))
    mini = E.threshold_table(exp, blocks, "post", ts, fr, rate=0.2, seed=3)
    rows = [ts.index(t) for t in mini.best_threshold()]
    expected = full["post"].hit_rates.max(axis=0) - full["post"].hit_rates[rows, [0, 1]]
    got = E.minicache_losses(exp, blocks, {"post": full["post"]}, ts, fr, 0.2, 3)
    assert got.shape == (1, 2) and np.allclose(got[0], expected)
    with pytest.raises(ValueError, match="share thresholds"):
        E.minicache_losses(exp, blocks, {"post": full["post"]}, [0, 1, 4], fr, 0.2, 3)


def test_shards_errors_per_seed(small_trace):
    keys = small_trace.keys
    sizes = np.linspace(10, 500, 8)
    assert np.array_equal(E.shards_errors(keys, sizes, 1.0, seeds=range(3)), np.zeros(3))
    low = E.shards_errors(keys, sizes, 0.05, seeds=range(4))
    assert low.shape == (4,) and np.unique(low).size > 1 and low.min() > 0


def test_drives_over_budget_follows_the_rate_spread():
    assert np.array_equal(E.drives_over_budget(0.0, seeds=range(3)), np.zeros(3))  # 15 x 0.9 = 13.5 DWPD
    # 40 x 0.9 = 36 DWPD on every full drive; only the last, partly filled drive may stay under 30
    assert np.all(E.drives_over_budget(0.0, seeds=range(2), mean_per_day=40.0) >= 1 - 1 / 100)
    skewed = E.drives_over_budget(3.0, seeds=range(5))
    assert np.all(skewed > 0) and np.all(skewed < 0.5)


def test_pod_cost_factor():
    assert E.pod_cost_factor(10.0) == pytest.approx(5.0)  # 1 / (1/10 + 0.1)
    assert E.pod_cost_factor(10.0, cache_fraction=0.0) == pytest.approx(10.0)
    assert E.pod_cost_factor(1e6) == pytest.approx(10.0, rel=1e-4)  # a 10% cache caps the saving at 10x
    assert E.pod_cost_factor(2.0) < E.pod_cost_factor(5.0) < E.pod_cost_factor(10.0)
    with pytest.raises(ValueError, match="price_ratio must be > 0"):
        E.pod_cost_factor(0.0)


def test_bandana_claims_are_declared_with_failing_bands():
    from mlsys_core import claims

    ids = [i for i in claims.REGISTRY if i.startswith("bandana.")]
    assert len(ids) >= 8
    gain = claims.get("bandana.bandwidth_gain")
    assert [gain.rule(x) for x in (1.01, 1.7, 2.5, 3.4)] == [
        "not reproduced",
        "partly reproduced",
        "reproduced",
        "exceeds paper",
    ]
    assert claims.get("bandana.pod_cost").rule(5.0) == "partly reproduced"
    assert claims.get("bandana.pod_cost").rule(1.67) == "not reproduced"
    assert claims.get("bandana.latency_tail").rule(1.6) == "not reproduced"
    assert claims.get("bandana.drives_over_budget").rule(0.0) == "not reproduced"
    assert claims.get("bandana.minicache_t").rule(0.1) == "not reproduced"
    assert claims.get("bandana.minicache_t").interval == "bootstrap"
    assert claims.get("bandana.dram_saved").rule(0.1) == "not reproduced"
    assert all(claims.get(i).parameters for i in ids)
    assert gain.parameter("affinity").values == (0.2, 0.5, 0.8)
