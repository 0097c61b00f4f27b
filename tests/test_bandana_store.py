"""The block store's file format and writer: every header fault is a StoreError, writes are atomic, ids are checked."""

import errno
import multiprocessing
import os
import re
import signal
import struct
import time
import zlib

import numpy as np
import pytest

from mlsys_core.bandana import placement as P
from mlsys_core.bandana import store as ST
from mlsys_core.bandana import tables
from mlsys_core.bandana import workload as W

# byte ranges of the header fields, and the words a StoreError about damage there may name
FIELDS = [
    (0, 8, ("magic",)),
    (8, 12, ("version",)),
    (12, 16, ("block size",)),
    (16, 32, ("counts", "header checksum")),
    (32, 36, ("dim", "block capacity", "header checksum")),
    (36, 40, ("block capacity", "counts", "header checksum")),
    (40, 56, ("dtype", "header checksum")),
    (56, 64, ("header checksum",)),
]


@pytest.fixture
def stored(tmp_path):
    table = tables.EmbeddingTable("t", 300, 16, num_communities=10)
    values = W.table_vectors(table, 0)
    path = tmp_path / "t.bandana"
    ST.write_store(path, table, values, P.random_placement(table, 0))
    return path, values


def _open_and_read(path, num_vectors):
    with ST.BlockStore(path) as s:
        return s.lookup(np.arange(num_vectors))


def _reads_back(path, values) -> bool:
    return np.array_equal(_open_and_read(path, len(values)), values)


def _reseal(raw: bytearray) -> None:
    """Write a correct header CRC32 over the (edited) header fields."""
    raw[ST._FIELDS.size : ST._HEADER_BYTES] = struct.pack("<I", zlib.crc32(bytes(raw[: ST._FIELDS.size])))


def _set(raw: bytearray, offset: int, fmt: str, value) -> None:
    raw[offset : offset + struct.calcsize(fmt)] = struct.pack(fmt, value)


# --- the header -----------------------------------------------------------------------------------


def test_the_header_holds_the_fields_and_their_checksum(stored):
    path, values = stored
    raw = path.read_bytes()
    magic, version, block_bytes, nb, nv, dim, cap, dtype, _ = ST._FIELDS.unpack_from(raw)
    assert (magic, version, block_bytes, nv, dim, cap) == (ST.MAGIC, 2, 4096, 300, 16, 64)
    assert dtype.rstrip(b"\0") == b"<f4" and nb == 5
    assert raw[60:64] == struct.pack("<I", zlib.crc32(raw[:60])) and not raw[64:4096].strip(b"\0")
    assert len(raw) == 4096 + 8192 + 5 * 4096
    assert _reads_back(path, values)


@pytest.mark.parametrize("start,stop,names", FIELDS)
def test_every_bit_flip_of_a_header_field_is_a_store_error_naming_it(stored, start, stop, names):
    path, values = stored
    with open(path, "r+b") as f:
        for byte in range(start, stop):
            original = os.pread(f.fileno(), 1, byte)[0]
            for bit in range(8):
                os.pwrite(f.fileno(), bytes([original ^ (1 << bit)]), byte)
                with pytest.raises(ST.StoreError) as e:
                    _open_and_read(path, len(values))
                assert str(e.value).startswith(f"{path}: ") and any(n in str(e.value) for n in names), (byte, bit)
            os.pwrite(f.fileno(), bytes([original]), byte)
    assert _reads_back(path, values)


def test_every_padding_byte_of_the_header_is_checked(stored):
    path, values = stored
    with open(path, "r+b") as f:
        for byte in range(ST._HEADER_BYTES, 4096):
            os.pwrite(f.fileno(), bytes([1 << byte % 8]), byte)
            with pytest.raises(ST.StoreError, match=f"header padding is not zero at byte {byte} "):
                ST.BlockStore(path)
            os.pwrite(f.fileno(), b"\0", byte)
    assert _reads_back(path, values)


@pytest.mark.parametrize("dim,match", [(8, "header checksum"), (15, "header checksum"), (17, "block capacity"),
                                       (32, "block capacity"), (0, "dim is 0"), (2000, "dim is 2000")])
def test_another_dim_is_refused(stored, dim, match):
    path, values = stored
    raw = bytearray(path.read_bytes())
    _set(raw, 32, "<I", dim)
    path.write_bytes(bytes(raw))
    with pytest.raises(ST.StoreError, match=match):
        _open_and_read(path, len(values))


@pytest.mark.parametrize("dtype,match", [(b"<i4", "header checksum"), (b"<u4", "header checksum"),
                                         (b">f4", "header checksum"), (b"<f8", "block capacity"),
                                         (b"<f2", "header checksum"), (b"float32", "dtype"), (b"<f4\0x", "dtype"),
                                         (b"|O", "dtype"), (b"\xff\xfe", "dtype"), (b"", "dtype")])
def test_another_dtype_is_refused(stored, dtype, match):
    path, values = stored
    raw = bytearray(path.read_bytes())
    raw[40:56] = dtype.ljust(16, b"\0")
    path.write_bytes(bytes(raw))
    with pytest.raises(ST.StoreError, match=match):
        _open_and_read(path, len(values))


@pytest.mark.parametrize("edits,match", [
    ({16: 2**40}, "truncated metadata"),  # a huge block count is refused by the file length, before any read
    ({16: 2**53, 24: 2**58}, "truncated metadata"),  # room for 2**58 vectors, 64 per block
    ({16: 6}, "truncated at block 5"),
    ({16: 4}, "counts: 300 vectors do not fit in 4 blocks of 64"),
    ({16: 0}, "counts are 0 blocks"),
])
def test_a_resealed_header_with_bad_counts_is_refused_without_a_huge_read(stored, edits, match):
    path, values = stored
    raw = bytearray(path.read_bytes())
    for offset, value in edits.items():
        _set(raw, offset, "<Q", value)
    _reseal(raw)
    path.write_bytes(bytes(raw))
    with pytest.raises(ST.StoreError, match=match):
        _open_and_read(path, len(values))


@pytest.mark.parametrize("offset,value,match", [
    (36, 2**31, r"block capacity is 2147483648, must be in \[1, 64\]"),
    (56, 12345, "metadata checksum mismatch"),
])
def test_a_resealed_header_with_a_bad_field_is_refused(stored, offset, value, match):
    path, _ = stored
    raw = bytearray(path.read_bytes())
    _set(raw, offset, "<I", value)
    _reseal(raw)
    path.write_bytes(bytes(raw))
    with pytest.raises(ST.StoreError, match=match):
        ST.BlockStore(path)


def test_a_vector_map_outside_the_blocks_is_refused_even_with_good_checksums(stored):
    path, values = stored
    raw = bytearray(path.read_bytes())
    nb = 5
    _set(raw, 4096 + 4 * nb + 8 * 7, "<q", 99)  # vector 7's block
    _set(raw, 56, "<I", zlib.crc32(bytes(raw[4096:12288])))
    _reseal(raw)
    path.write_bytes(bytes(raw))
    with pytest.raises(ST.StoreError, match=r"vector 7 block 99, must be in \[0, 5\)"):
        ST.BlockStore(path)


@pytest.mark.parametrize("edit,match", [
    ({0: b"BANDANA\x02"}, r"magic is b'BANDANA\\x02', must be b'BANDANA\\x01'"),
    ({8: struct.pack("<I", 3)}, "header version is 3, must be 2"),
    ({12: struct.pack("<I", 8192)}, r"header block size is 8192, must be in \[4096, 4096\]"),
    ({60: b"\0\0\0\0"}, "header checksum mismatch"),
])
def test_each_fault_names_its_field(stored, edit, match):
    path, _ = stored
    raw = bytearray(path.read_bytes())
    for offset, data in edit.items():
        raw[offset : offset + len(data)] = data
    path.write_bytes(bytes(raw))
    with pytest.raises(ST.StoreError, match=f"^{re.escape(str(path))}: .*{match}"):
        ST.BlockStore(path)


def test_a_version_1_file_is_refused_as_such(stored):
    path, _ = stored
    raw = bytearray(path.read_bytes())
    _set(raw, 8, "<I", 1)
    raw[40:56] = b"float32".ljust(16, b"\0")  # as version 1 wrote it, with no header checksum
    raw[60:64] = b"\0\0\0\0"
    path.write_bytes(bytes(raw))
    with pytest.raises(ST.StoreError, match="version is 1, a format without a header checksum .* reads version 2"):
        ST.BlockStore(path)


def test_truncation_anywhere_is_a_store_error(stored):
    path, values = stored
    raw = path.read_bytes()
    data_offset = 4096 + 8192
    for size in (0, 5, 11, 12, 40, 63, 64, 100, 4095, 4096, 4097, data_offset - 1, data_offset, data_offset + 1,
                 len(raw) - 4096, len(raw) - 1):
        path.write_bytes(raw[:size])
        with pytest.raises(ST.StoreError, match="truncated"):
            _open_and_read(path, len(values))


@pytest.mark.parametrize("extra", [b"\0", b"x", b"\0" * 4096, b"\xff" * 5000])
def test_bytes_after_the_last_block_are_a_store_error(stored, extra):
    path, values = stored
    raw = path.read_bytes()
    path.write_bytes(raw + extra)
    with pytest.raises(ST.StoreError, match=f"length is {len(raw) + len(extra)} bytes.* {len(extra)} extra bytes"):
        ST.BlockStore(path)
    path.write_bytes(raw)
    assert _reads_back(path, values)


@pytest.mark.parametrize("dtype", ["float16", "float64", ">f4", "int8", "uint16", "complex64"])
def test_every_numeric_dtype_round_trips(tmp_path, dtype):
    table = tables.EmbeddingTable("t", 100, 8, dtype=dtype, num_communities=4)
    values = (np.random.default_rng(0).standard_normal((100, 8)) * 50).astype(dtype)
    ST.write_store(tmp_path / "t.bandana", table, values, P.sequential_placement(table))
    with ST.BlockStore(tmp_path / "t.bandana") as s:
        got = s.lookup(np.arange(100))
    assert got.dtype == np.dtype(dtype) and np.array_equal(got, values)


def test_a_dtype_a_store_cannot_hold_is_refused_before_writing(tmp_path):
    table = tables.EmbeddingTable("t", 10, 4, dtype="bool", num_communities=2)
    with pytest.raises(ValueError, match="table 't' has dtype 'bool'; a store holds one of .*<f4"):
        ST.write_store(tmp_path / "t.bandana", table, np.ones((10, 4), bool), P.sequential_placement(table))
    assert not os.listdir(tmp_path)


# --- ids --------------------------------------------------------------------------------------------


def test_lookup_refuses_fractional_and_out_of_range_ids(stored):
    path, values = stored
    with ST.BlockStore(path) as s:
        with pytest.raises(ValueError, match=r"vector_ids must hold whole numbers; vector_ids\[0\] is 1.9"):
            s.lookup([1.9, 2.9])
        with pytest.raises(ValueError, match=r"vector_ids must hold values in \[0, 299\]; vector_ids\[1\] is 300"):
            s.lookup([0, 300])
        with pytest.raises(ValueError, match="vector_ids must have 1 dimension"):
            s.lookup([[1, 2]])
        assert np.array_equal(s.lookup([1.0, 2.0]), values[[1, 2]])
        assert s.lookup([]).shape == (0, 16)


def test_read_block_refuses_a_bad_block_index(stored):
    path, _ = stored
    with ST.BlockStore(path) as s:
        with pytest.raises(TypeError, match="block must be an int, got 1.0"):
            s.read_block(1.0)
        with pytest.raises(ValueError, match=r"block must be in \[0, 4\], got 5"):
            s.read_block(5)
        assert s.read_block(np.int64(4)) == s.read_block(4)


# --- atomic writes ------------------------------------------------------------------------------------


def _other_values(values):
    return values[::-1].copy()


def test_a_write_replaces_the_store_and_leaves_no_temporary_file(stored):
    path, values = stored
    table = tables.EmbeddingTable("t", 300, 16, num_communities=10)
    ST.write_store(path, table, _other_values(values), P.sequential_placement(table))
    assert os.listdir(path.parent) == [path.name]
    assert _reads_back(path, _other_values(values))


def test_a_failed_write_keeps_the_old_store_and_removes_its_temporary_file(stored, monkeypatch):
    path, values = stored
    table = tables.EmbeddingTable("t", 300, 16, num_communities=10)

    def disk_full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ST.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        ST.write_store(path, table, _other_values(values), P.sequential_placement(table))
    monkeypatch.undo()
    assert os.listdir(path.parent) == [path.name]
    assert _reads_back(path, values)
    (path.parent / "d").mkdir()
    with pytest.raises(IsADirectoryError):
        ST.write_store(path.parent / "d", table, values, P.sequential_placement(table))
    assert sorted(os.listdir(path.parent)) == ["d", path.name] and not os.listdir(path.parent / "d")


def test_a_write_through_a_symlink_replaces_the_file_it_points_to(stored):
    path, values = stored
    link = path.parent / "link.bandana"
    link.symlink_to(path.name)
    table = tables.EmbeddingTable("t", 300, 16, num_communities=10)
    ST.write_store(link, table, _other_values(values), P.sequential_placement(table))
    assert link.is_symlink() and _reads_back(path, _other_values(values))


KILLS = 60


def _wait_while(p, directory, names: set) -> None:
    """Poll while `p` runs and `directory` holds exactly `names`."""
    while p.is_alive() and set(os.listdir(directory)) == names:
        pass


def _watch(p, directory, name) -> tuple[float, float, float]:
    """Run `p` to its end: seconds until its temporary file appeared, until it was renamed, until `p` ended."""
    start = time.perf_counter()
    p.start()
    _wait_while(p, directory, {name})
    appeared = time.perf_counter() - start
    _wait_while(p, directory, set(os.listdir(directory)))
    renamed = time.perf_counter() - start
    p.join()
    assert p.exitcode == 0
    return appeared, renamed, time.perf_counter() - start


def test_a_writer_killed_at_any_moment_leaves_the_old_store_or_the_new_one(tmp_path):
    """SIGKILL a child writing a 4 MB store over a good one, KILLS times: every other kill at a random moment
    of the child's life, the others at a random moment after its temporary file appears. The target always
    opens and reads back the old store or the new one whole. Children fork from a forkserver that imported
    the store once, so a kill costs milliseconds, not an interpreter start."""
    table = tables.EmbeddingTable("t", 16_384, 64, num_communities=16)
    rng = np.random.default_rng(0)
    versions = [rng.standard_normal((table.num_vectors, table.dim), dtype=np.float32) for _ in range(2)]
    layouts = [P.Placement(rng.permutation(table.num_vectors) // table.block_capacity, table.block_capacity)
               for _ in range(2)]
    path = tmp_path / "t.bandana"
    ST.write_store(path, table, versions[0], layouts[0])
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["mlsys_core.bandana.store"])

    def writer(k):
        return ctx.Process(target=ST.write_store, args=(str(path), table, versions[k], layouts[k]))

    runs = [_watch(writer(0), tmp_path, path.name) for _ in range(4)]  # the first launches the forkserver
    appeared, renamed, ended = np.median(runs[1:], axis=0)
    current, outcomes = 0, {"before the temporary file": 0, "mid-write": 0, "after the rename": 0, "finished": 0}
    for kill in range(KILLS):
        new = 1 - current
        p = writer(new)
        p.start()
        if kill % 2:
            time.sleep(rng.uniform(0, ended))
        else:
            _wait_while(p, tmp_path, {path.name})
            time.sleep(rng.uniform(0, 1.2 * (renamed - appeared)))
        p.kill()
        p.join()
        assert p.exitcode in (0, -signal.SIGKILL)
        temporary = [n for n in os.listdir(tmp_path) if n != path.name]
        assert all(n.startswith(f".{path.name}.tmp-") for n in temporary), temporary
        for n in temporary:
            os.remove(tmp_path / n)
        got = _open_and_read(path, table.num_vectors)
        held = [k for k in (current, new) if np.array_equal(got, versions[k])]
        assert held, "the store holds neither the old values nor the new ones"
        assert not temporary or held == [current], "a write still under way showed through"
        if p.exitcode == 0:
            outcomes["finished"] += 1
        elif temporary:
            outcomes["mid-write"] += 1
        else:
            outcomes["before the temporary file" if held == [current] else "after the rename"] += 1
        current = held[0]
    print(f"{KILLS} kills; a writer's temporary file lives from {appeared * 1e3:.0f} to {renamed * 1e3:.0f} ms, "
          f"the writer ends at {ended * 1e3:.0f} ms:", outcomes)
    assert outcomes["mid-write"] >= 5 and outcomes["finished"] + outcomes["after the rename"] >= 1
