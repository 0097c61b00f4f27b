"""The block store read with O_DIRECT: round trip, damage still named by block, the fallback, timing."""

import os
import warnings

import numpy as np
import pytest

from mlsys_core.bandana import placement as P
from mlsys_core.bandana import store as ST
from mlsys_core.bandana import tables
from mlsys_core.bandana import workload as W


def _direct_refused(directory) -> str:
    probe = os.path.join(directory, "probe.bin")
    with open(probe, "wb") as f:
        f.write(b"\0" * 4096)
    fd, why = ST._open_direct(probe)
    if fd >= 0:
        os.close(fd)
    os.remove(probe)
    return why


@pytest.fixture
def stored(tmp_path):
    why = _direct_refused(tmp_path)
    if why:
        pytest.skip(f"the filesystem of {tmp_path} refuses O_DIRECT: {why}")
    table = tables.EmbeddingTable("t", 300, 16, num_communities=10)
    values = W.table_vectors(table, 0)
    pl = P.random_placement(table, 0)
    path = tmp_path / "t.bandana"
    ST.write_store(path, table, values, pl)
    return path, values, pl


def test_direct_round_trip(stored):
    path, values, pl = stored
    ids = np.array([0, 5, 299, 5, 17])
    with warnings.catch_warnings():
        warnings.simplefilter("error", ST.DirectIOWarning)  # no silent fallback here
        with ST.BlockStore(path, direct=True) as s:
            assert s.direct and s.direct_refused == ""
            assert np.array_equal(s.lookup(ids), values[ids])
            assert s.blocks_read == np.unique(pl.block_of[ids]).size
            assert np.array_equal(s.lookup(np.arange(300)), values)
            with ST.BlockStore(path) as buffered:
                assert all(s.read_block(b) == buffered.read_block(b) for b in range(pl.num_blocks))


def test_direct_reads_name_the_corrupted_and_the_truncated_block(stored):
    path, _, pl = stored
    with ST.BlockStore(path, direct=True) as s:
        offset = s.data_offset + 2 * 4096 + 100
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))
    with ST.BlockStore(path, direct=True) as s:
        assert s.direct
        with pytest.raises(ST.StoreError, match="block 2 is corrupted"):
            s.read_block(2)
        s.read_block(1)
        os.truncate(path, s.data_offset + (pl.num_blocks - 1) * 4096 + 100)  # cut inside the last block
        with pytest.raises(ST.StoreError, match=f"block {pl.num_blocks - 1} is truncated"):
            s.read_block(pl.num_blocks - 1)
    with pytest.raises(ST.StoreError, match=f"truncated at block {pl.num_blocks - 1}"):
        ST.BlockStore(path, direct=True)


def test_refused_direct_io_falls_back_with_a_clear_warning(stored, monkeypatch):
    path, values, _ = stored
    monkeypatch.setattr(ST, "_open_direct", lambda p: (-1, "open(O_DIRECT) failed: Invalid argument"))
    with pytest.warns(ST.DirectIOWarning, match="O_DIRECT refused .*Invalid argument.*page cache"):
        s = ST.BlockStore(path, direct=True)
    with s:
        assert not s.direct and "Invalid argument" in s.direct_refused
        assert np.array_equal(s.lookup(np.arange(10)), values[:10])
    with pytest.raises(TypeError, match="direct must be True or False"):
        ST.BlockStore(path, direct=1)


def test_threaded_reader_times_every_read(stored, tmp_path):
    path, _, _ = stored
    with ST.BlockStore(path, direct=True) as s:
        for qd in (1, 4):
            lat, wall = ST.read_latencies(s, 400, queue_depth=qd)
            assert lat.shape == (400,) and np.all(lat > 0) and wall > 0
            assert lat.sum() / qd < wall * 1e6 * 1.5  # the threads overlap, and no read escapes the timing


def test_a_saved_measurement_loads_back(tmp_path):
    if _direct_refused(tmp_path):
        pytest.skip(f"the filesystem of {tmp_path} refuses O_DIRECT")
    m = ST.measure_direct_reads(tmp_path, queue_depths=(1, 2), num_reads=200, file_blocks=64)
    assert m.direct and not os.listdir(tmp_path)  # the probe file is removed
    ST.save_measurement(m, tmp_path / "m.npz")
    back = ST.load_measurement(tmp_path / "m.npz")
    assert back.where == m.where and back.when == m.when and back.direct
    for qd in (1, 2):
        assert np.allclose(back.latency_us[qd], m.latency_us[qd], rtol=1e-6)
