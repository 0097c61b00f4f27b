"""Paper 2 (Bandana) against its peer libCacheSim (the `bench` extra; not installed on the GPU machine)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_core.bandana import cache as C
from mlsys_core.bandana import mrc as M
from mlsys_core.bandana import trace as T

lcs = pytest.importorskip("libcachesim", reason="peer tests need the `bench` extra")


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(1.05, 2.0), st.integers(1, 800))
def test_libcachesim_reads_our_file_with_identical_lru_misses(tmp_path_factory, seed, zipf, capacity):
    keys = (np.random.default_rng(seed).zipf(zipf, 5000) % 3000).astype(np.uint64)
    path = tmp_path_factory.mktemp("lcs") / "z.oracleGeneral.bin"
    T.write_oracle_general(path, keys)
    reader = lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE)
    miss_ratio, _ = lcs.LRU(capacity).process_trace(reader)
    assert round(miss_ratio * keys.size) == C.lru_misses(keys, capacity)


def test_one_pass_curve_matches_libcachesim_per_size(tmp_path):
    keys = (np.random.default_rng(1).zipf(1.2, 8000) % 2000).astype(np.uint64)
    path = tmp_path / "c.oracleGeneral.bin"
    T.write_oracle_general(path, keys)
    sizes = np.array([1, 10, 100, 500, 1500])
    curve = M.hit_rate_curve(T.read_oracle_general(path), sizes)
    for size, hit in zip(sizes, curve):
        miss_ratio, _ = lcs.LRU(int(size)).process_trace(lcs.TraceReader(str(path), lcs.TraceType.ORACLE_GENERAL_TRACE))
        assert abs((1 - miss_ratio) - hit) < 1e-12
