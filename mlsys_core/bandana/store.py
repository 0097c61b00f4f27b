"""A real file-backed block store: one table written block by block, read with `os.pread` in 4 KB blocks.

File layout (little-endian, format version 2):
  [0, 4096)            header: magic, format version, block size, block and vector counts, dim, block
                       capacity, dtype (a NumPy type string such as "<f4", NUL padded), the metadata's CRC32,
                       then the CRC32 of all those fields; zero padded
  [4096, data_offset)  metadata: CRC32 of each block (u4), then each vector's block (i8) and slot (i8),
                       padded to a multiple of 4096
  [data_offset, ...)   the blocks, 4096 bytes each: a block's vectors in slot order, zero padded; the file
                       ends with the last block

Opening checks every header field against its bounds, then the header's CRC32, the zero padding, the file
length (exactly what the counts give: no missing and no extra bytes) and the metadata's CRC32, all before
anything sized by the header is read; every block read is checked against its CRC32. Any fault raises
`StoreError` naming the file and the field (or block) at fault. Files of format version 1 are refused.

`write_store` never writes over the store in place: it writes a hidden `.<name>.tmp-<pid>-<hex>` file in the
same directory, fsyncs it, renames it onto the target with `os.replace` (atomic) and fsyncs the directory.
A reader, or a writer killed at any moment, sees the old store or the new one whole; on an error the
temporary file is removed (a killed writer may leave it behind, never under the store's name).

`BlockStore(path, direct=True)` reads the blocks with O_DIRECT, past the page cache, as a device
would be read: `os.preadv` into a page-aligned `mmap` buffer (O_DIRECT refuses unaligned buffers:
plain `os.pread` fails with EINVAL). Where the filesystem refuses O_DIRECT (tmpfs, some network
filesystems) it falls back to buffered reads with a `DirectIOWarning` that says so; `store.direct`
tells which mode is in use. `read_latencies` times random block reads from 1-16 threads (queue
depth), `measure_direct_reads` makes the per-queue-depth measurement the queueing model is fed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import mmap
import os
import platform
import secrets
import struct
import threading
import time
import warnings
import zlib

import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.placement import Placement
from mlsys_core.bandana.tables import BLOCK_BYTES, EmbeddingTable

MAGIC = b"BANDANA\x01"
VERSION = 2
_FIELDS = struct.Struct("<8sIIQQII16sI")  # magic, version, block bytes, blocks, vectors, dim, capacity, dtype, meta crc
_HEADER_BYTES = _FIELDS.size + 4  # the fields, then the CRC32 of the fields
# integers, float16/32/64 and complex64/128 in either byte order (not longdouble: its layout differs by platform)
_DTYPES = {
    np.dtype(code).newbyteorder(order).str.encode(): np.dtype(code).newbyteorder(order)
    for code in "bBhHiIlLqQefdFD"
    for order in "<>"
}


class StoreError(ValueError):
    """The store file is damaged: a bad header field, a checksum mismatch, or a file too short or too long."""


class DirectIOWarning(UserWarning):
    """O_DIRECT was asked for but the filesystem refused it; reads go through the page cache."""


@dataclasses.dataclass(frozen=True)
class _Header:
    """The header's fields (the magic, version and block size are constants)."""

    num_blocks: int
    num_vectors: int
    dim: int  # values per vector
    block_capacity: int  # vectors per block
    dtype: np.dtype  # of the values
    meta_crc: int  # CRC32 of the metadata


def _meta_bytes(num_blocks: int, num_vectors: int) -> int:
    raw = 4 * num_blocks + 16 * num_vectors
    return -(-raw // BLOCK_BYTES) * BLOCK_BYTES


def _pack_header(header: _Header) -> bytes:
    """The 4096-byte header block: the fields, their CRC32, zero padding."""
    fields = _FIELDS.pack(MAGIC, VERSION, BLOCK_BYTES, header.num_blocks, header.num_vectors, header.dim,
                          header.block_capacity, header.dtype.str.encode(), header.meta_crc)
    return (fields + struct.pack("<I", zlib.crc32(fields))).ljust(BLOCK_BYTES, b"\0")


def _store_dtype(table: EmbeddingTable) -> np.dtype:
    dtype = np.dtype(table.dtype)
    if dtype.str.encode() not in _DTYPES:
        allowed = ", ".join(sorted(name.decode() for name in _DTYPES))
        raise ValueError(f"table {table.name!r} has dtype {table.dtype!r}; a store holds one of {allowed}")
    return dtype


def _pack_blocks(values: np.ndarray, block_of: np.ndarray, slot: np.ndarray, num_blocks: int) -> np.ndarray:
    """(num_blocks, 4096) uint8: each vector's bytes at its slot of its block, zero padded."""
    blocks = np.zeros((num_blocks, BLOCK_BYTES), dtype=np.uint8)
    vb = values.shape[1] * values.dtype.itemsize
    slots = blocks[:, : BLOCK_BYTES // vb * vb].reshape(num_blocks, BLOCK_BYTES // vb, vb)
    slots[block_of, slot] = values.view(np.uint8).reshape(len(values), vb)
    return blocks


def write_store(path, table: EmbeddingTable, values: np.ndarray, placement: Placement) -> None:
    """Write `values` of `table` to `path`, block by block as `placement` says.

    The store is written under a temporary name beside `path` and renamed onto it once on disk, so
    `path` holds the old store or the new one whole, whatever stops the writer.

    Args:
        path: the store file.
        table: the table (its dtype and dim set the vector bytes).
        values: (num_vectors, dim) the vectors.
        placement: each vector's block (at most the table's block capacity to a block).
    """
    dtype = _store_dtype(table)
    values = np.ascontiguousarray(values, dtype=dtype)
    if values.shape != (table.num_vectors, table.dim):
        raise ValueError(f"values must have shape {(table.num_vectors, table.dim)}, got {values.shape}")
    if placement.block_of.size != table.num_vectors:
        raise ValueError(f"placement covers {placement.block_of.size} vectors, table has {table.num_vectors}")
    if placement.block_capacity > table.block_capacity:
        raise ValueError(
            f"placement packs {placement.block_capacity} vectors per block; a block holds {table.block_capacity}"
        )
    block_of = placement.block_of.astype("<i8")
    slot = placement.slots().astype("<i8")
    nb = placement.num_blocks
    blocks = _pack_blocks(values, block_of, slot, nb)
    crcs = np.array([zlib.crc32(b) for b in blocks], dtype="<u4")
    meta = (crcs.tobytes() + block_of.tobytes() + slot.tobytes()).ljust(_meta_bytes(nb, table.num_vectors), b"\0")
    header = _Header(nb, table.num_vectors, table.dim, placement.block_capacity, dtype, zlib.crc32(meta))
    _replace_atomically(os.fspath(path), [_pack_header(header), meta, *blocks])  # then block by block


def _replace_atomically(path: str, chunks) -> None:
    """Write `chunks` to a new hidden file beside `path`, fsync it, rename it onto `path` and fsync the
    directory. On an error the new file is removed and `path` is left as it was."""
    directory, name = os.path.split(os.path.realpath(path))
    tmp = os.path.join(directory, f".{name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with open(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(directory, name))
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _field(path: str, name: str, value: int, low: int, high: int, why: str = "") -> None:
    if not low <= value <= high:
        raise StoreError(f"{path}: header {name} is {value}, must be in [{low}, {high}]{why}")


def _header_dtype(path: str, raw: bytes) -> np.dtype:
    name = raw.rstrip(b"\0")
    if name not in _DTYPES:
        allowed = ", ".join(sorted(n.decode() for n in _DTYPES))
        raise StoreError(f"{path}: header dtype is {raw!r}, must be one of {allowed} (NUL padded)")
    return _DTYPES[name]


def _parse_header(path: str, head: bytes) -> _Header:
    """The fields of `head` (the file's first block): each checked against its bounds, then all of
    them against the header's CRC32, then the padding; a fault raises `StoreError` naming the field."""
    if len(head) < 12:
        raise StoreError(f"{path}: truncated header ({len(head)} of {BLOCK_BYTES} bytes)")
    if head[:8] != MAGIC:
        raise StoreError(f"{path}: not a Bandana store: header magic is {head[:8]!r}, must be {MAGIC!r}")
    (version,) = struct.unpack_from("<I", head, 8)
    if version == 1:
        raise StoreError(f"{path}: header version is 1, a format without a header checksum that is no longer "
                         f"read; this library reads version {VERSION}: write the store again with write_store")
    if version != VERSION:
        raise StoreError(f"{path}: header version is {version}, must be {VERSION}")
    if len(head) < _HEADER_BYTES:
        raise StoreError(f"{path}: truncated header ({len(head)} of {BLOCK_BYTES} bytes)")
    _, _, block_bytes, nb, nv, dim, cap, dtype_raw, meta_crc = _FIELDS.unpack_from(head)
    _field(path, "block size", block_bytes, BLOCK_BYTES, BLOCK_BYTES)
    dtype = _header_dtype(path, dtype_raw)
    if nb < 1 or nv < 1:
        raise StoreError(f"{path}: header counts are {nb} blocks and {nv} vectors, both must be >= 1")
    fits = f" (a vector must fit a {BLOCK_BYTES}-byte block)"
    _field(path, "dim", dim, 1, BLOCK_BYTES // dtype.itemsize, f" for dtype {dtype.str}{fits}")
    _field(path, "block capacity", cap, 1, BLOCK_BYTES // (dim * dtype.itemsize), f" for dim {dim} x {dtype.str}")
    if nv > nb * cap:
        raise StoreError(f"{path}: header counts: {nv} vectors do not fit in {nb} blocks of {cap}")
    (stored,) = struct.unpack_from("<I", head, _FIELDS.size)
    computed = zlib.crc32(head[: _FIELDS.size])
    if computed != stored:
        raise StoreError(f"{path}: header checksum mismatch (stored {stored:#010x}, the fields give "
                         f"{computed:#010x}): a header field is damaged")
    padding = head[_HEADER_BYTES:]
    if padding.strip(b"\0"):
        at = _HEADER_BYTES + len(padding) - len(padding.lstrip(b"\0"))
        raise StoreError(f"{path}: header padding is not zero at byte {at} (bytes {_HEADER_BYTES}-"
                         f"{BLOCK_BYTES - 1} must be zero)")
    return _Header(nb, nv, dim, cap, dtype, meta_crc)


def _check_length(path: str, header: _Header, size: int) -> None:
    """The file must be exactly as long as the header's counts say: a shorter one names where it ends."""
    data_offset = BLOCK_BYTES + _meta_bytes(header.num_blocks, header.num_vectors)
    expected = data_offset + header.num_blocks * BLOCK_BYTES
    if size < BLOCK_BYTES:
        raise StoreError(f"{path}: truncated header ({size} of {BLOCK_BYTES} bytes)")
    if size < data_offset:
        raise StoreError(f"{path}: truncated metadata ({size} bytes, metadata ends at {data_offset})")
    if size < expected:
        first = (size - data_offset) // BLOCK_BYTES
        raise StoreError(
            f"{path}: truncated at block {first}: file has {size} bytes, {header.num_blocks} blocks need {expected}"
        )
    if size > expected:
        raise StoreError(f"{path}: length is {size} bytes, the header's counts give {expected}: "
                         f"{size - expected} extra bytes after the last block")


def _check_vector_map(path: str, header: _Header, block_of: np.ndarray, slot: np.ndarray) -> None:
    """Every vector's block and slot must lie inside the store (the metadata CRC32 guards them only against damage)."""
    for name, where, high in (("block", block_of, header.num_blocks), ("slot", slot, header.block_capacity)):
        bad = (where < 0) | (where >= high)
        if bad.any():
            v = int(np.argmax(bad))
            raise StoreError(f"{path}: metadata gives vector {v} {name} {int(where[v])}, must be in [0, {high})")


def _open_direct(path: str) -> tuple[int, str]:
    """(fd opened with O_DIRECT and checked by one aligned read, "") or (-1, why it was refused)."""
    if not hasattr(os, "O_DIRECT"):
        return -1, "this platform has no O_DIRECT"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as e:
        return -1, f"open(O_DIRECT) failed: {e.strerror}"
    buf = mmap.mmap(-1, BLOCK_BYTES)
    try:
        os.preadv(fd, [buf], 0)
    except OSError as e:
        os.close(fd)
        return -1, f"an aligned O_DIRECT read failed: {e.strerror}"
    finally:
        buf.close()
    return fd, ""


class BlockStore:
    """Read a store file one 4 KB block at a time, verifying each block's CRC32: with `os.pread`
    (through the page cache), or with `direct=True` by O_DIRECT into an aligned buffer."""

    def __init__(self, path, direct: bool = False):
        """Open `path` and check its header, length and metadata; `direct` asks for O_DIRECT reads."""
        self.path = os.fspath(path)
        want_direct = validate.boolean("direct", direct)
        self._fd = os.open(self.path, os.O_RDONLY)
        self._dfd = -1
        self.direct = False
        self.direct_refused = ""
        try:
            self._open()
            if want_direct:
                self._dfd, self.direct_refused = _open_direct(self.path)
                self.direct = self._dfd >= 0
                if not self.direct:
                    warnings.warn(f"{self.path}: O_DIRECT refused ({self.direct_refused}); reading through the "
                                  f"page cache instead, so read times are not device times", DirectIOWarning,
                                  stacklevel=2)
        except Exception:
            os.close(self._fd)
            raise
        self._buf = mmap.mmap(-1, BLOCK_BYTES) if self.direct else None
        self.blocks_read = 0

    def _open(self):
        size = os.fstat(self._fd).st_size
        header = _parse_header(self.path, os.pread(self._fd, BLOCK_BYTES, 0))
        _check_length(self.path, header, size)
        nb, nv = self.num_blocks, self.num_vectors = header.num_blocks, header.num_vectors
        self.dim, self.block_capacity, self.dtype = header.dim, header.block_capacity, header.dtype
        self.data_offset = BLOCK_BYTES + _meta_bytes(nb, nv)
        meta = os.pread(self._fd, self.data_offset - BLOCK_BYTES, BLOCK_BYTES)
        if zlib.crc32(meta) != header.meta_crc:
            raise StoreError(f"{self.path}: metadata checksum mismatch (block checksums / vector map damaged)")
        m = np.frombuffer(meta, dtype=np.uint8)
        self._crc = m[: 4 * nb].view("<u4")
        self.block_of = m[4 * nb : 4 * nb + 8 * nv].view("<i8")
        self.slot = m[4 * nb + 8 * nv : 4 * nb + 16 * nv].view("<i8")
        _check_vector_map(self.path, header, self.block_of, self.slot)

    def read_block(self, block: int) -> bytes:
        """The 4096 bytes of `block`, after checking its CRC32."""
        block = validate.integer("block", block, 0, self.num_blocks - 1)
        data = self._read_raw(block, self._buf)
        self.blocks_read += 1
        if len(data) != BLOCK_BYTES:
            raise StoreError(f"{self.path}: block {block} is truncated ({len(data)} of {BLOCK_BYTES} bytes)")
        if zlib.crc32(data) != int(self._crc[block]):
            raise StoreError(f"{self.path}: block {block} is corrupted (CRC32 mismatch)")
        return data

    def _read_raw(self, block: int, buf) -> bytes:
        offset = self.data_offset + block * BLOCK_BYTES
        if not self.direct:
            return os.pread(self._fd, BLOCK_BYTES, offset)
        n = os.preadv(self._dfd, [buf], offset)
        return bytes(buf[:n])

    def lookup(self, vector_ids) -> np.ndarray:
        """(n, dim) values of `vector_ids` (n whole numbers in [0, num_vectors)), reading each needed block once."""
        ids = validate.integers("vector_ids", vector_ids, 0, self.num_vectors - 1)
        out = np.empty((ids.size, self.dim), dtype=self.dtype)
        vb = self.dim * self.dtype.itemsize
        uniq, inv = np.unique(self.block_of[ids], return_inverse=True)
        order = np.argsort(inv, kind="stable")  # lookups grouped by block
        bounds = np.searchsorted(inv[order], np.arange(uniq.size + 1))
        for j, b in enumerate(uniq):
            data = np.frombuffer(self.read_block(int(b)), dtype=np.uint8)
            vectors = data[: BLOCK_BYTES // vb * vb].view(self.dtype).reshape(-1, self.dim)  # by slot
            rows = order[bounds[j] : bounds[j + 1]]
            out[rows] = vectors[self.slot[ids[rows]]]
        return out

    def close(self) -> None:
        """Close the file (and its O_DIRECT descriptor); the store cannot be read after."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._dfd >= 0:
            os.close(self._dfd)
            self._dfd = -1
        if self._buf is not None:
            self._buf.close()
            self._buf = None

    def __enter__(self) -> BlockStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_latencies(store: BlockStore, num_reads: int, queue_depth: int = 1, seed: int = 0) -> tuple[np.ndarray, float]:
    """Time random block reads (uniform over the store's blocks), `queue_depth` threads each keeping
    one read outstanding (os.preadv releases the GIL). Returns (per-read latency in us, wall seconds).
    Reads are timed raw (no CRC check inside the timing); the direct mode reads with O_DIRECT, so each
    read reaches the device.

    Args:
        store: the open store.
        num_reads: reads to time (int >= 1).
        queue_depth: reads kept outstanding (int in [1, 64]).
        seed: the blocks' draw (int >= 0).
    """
    validate.instance("store", store, BlockStore)
    num_reads = validate.integer("num_reads", num_reads, 1)
    depth = validate.integer("queue_depth", queue_depth, 1, 64)
    blocks = np.random.default_rng(validate.integer("seed", seed, 0)).integers(0, store.num_blocks, num_reads)
    lat = np.empty(num_reads)
    parts = np.array_split(np.arange(num_reads), depth)
    errors = []

    def worker(idx) -> None:
        buf = mmap.mmap(-1, BLOCK_BYTES) if store.direct else None
        try:
            for i in idx:
                t0 = time.perf_counter_ns()
                data = store._read_raw(int(blocks[i]), buf)
                lat[i] = (time.perf_counter_ns() - t0) / 1e3
                if len(data) != BLOCK_BYTES:
                    raise StoreError(f"{store.path}: block {int(blocks[i])} is truncated ({len(data)} of "
                                     f"{BLOCK_BYTES} bytes)")
        except Exception as e:  # surfaced in the caller's thread
            errors.append(e)
        finally:
            if buf is not None:
                buf.close()

    threads = [threading.Thread(target=worker, args=(p,)) for p in parts]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return lat, wall


@dataclasses.dataclass(frozen=True, eq=False)
class Measurement:
    """Random 4 KB block reads timed at several queue depths (`measure_direct_reads`)."""

    latency_us: dict[int, np.ndarray]  # queue depth -> (num_reads,) latency of each read (us)
    iops: dict[int, float]  # queue depth -> reads per second over the run
    direct: bool  # whether the reads were O_DIRECT (past the page cache)
    where: str  # the machine, its CPUs and system, the file and its filesystem
    when: str  # ISO time (UTC) of the measurement
    refused: str = ""  # why O_DIRECT was refused ("" when it was on)

    @property
    def queue_depths(self) -> list[int]:
        """The queue depths measured, in increasing order."""
        return sorted(self.latency_us)


def measure_direct_reads(directory, queue_depths=(1, 2, 4, 8, 16), num_reads: int = 10_000,
                         file_blocks: int = 32_768, seed: int = 0) -> Measurement:
    """Random 4 KB O_DIRECT reads of a fresh store in `directory`, at each queue depth (the file is
    removed afterwards).

    Args:
        directory: where the store file is written (its filesystem is what gets measured).
        queue_depths: reads kept outstanding, one thread each (ints in [1, 64]).
        num_reads: reads timed at each queue depth (int >= 1).
        file_blocks: the store's 4 KB blocks (128 MB by default).
        seed: the values' and the read order's seed (int >= 0).
    """
    file_blocks = validate.integer("file_blocks", file_blocks, 1)
    seed = validate.seed("seed", seed)
    table = EmbeddingTable("probe", file_blocks * 16, 64, dtype="float32")
    path = os.path.join(os.fspath(directory), "bandana_direct_probe.bandana")
    values = np.random.default_rng(seed).standard_normal((table.num_vectors, table.dim), dtype=np.float32)
    write_store(path, table, values, Placement(np.arange(table.num_vectors) // 16, 16))  # fsynced before any read
    latency, iops = {}, {}
    try:
        with BlockStore(path, direct=True) as s:
            for qd in queue_depths:
                lat, wall = read_latencies(s, num_reads, qd, seed)
                latency[int(qd)], iops[int(qd)] = lat, num_reads / wall
            direct, refused = s.direct, s.direct_refused
    finally:
        os.remove(path)
    where = (f"{platform.node() or 'this machine'}: {os.cpu_count()} CPUs, {platform.system()} "
             f"{platform.release()}, {file_blocks * BLOCK_BYTES / 2**20:.0f} MB file on "
             f"{_filesystem(os.fspath(directory))}, O_DIRECT {'on' if direct else 'refused'}")
    when = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return Measurement(latency, iops, direct, where, when, refused)


def _filesystem(path: str) -> str:
    """The type and device of the filesystem holding `path` ("ext4 on /dev/vda"), from /proc/mounts."""
    path = os.path.realpath(path)
    best = ("", "a filesystem of unknown type")
    try:
        with open("/proc/mounts", encoding="utf-8") as f:
            for line in f:
                dev, mount, kind = line.split()[:3]
                if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best[0]):
                    best = (mount, f"{kind} on {dev}")
    except OSError:
        pass
    return best[1]


def save_measurement(measurement: Measurement, path) -> None:
    """Write a `Measurement` as NPZ (latencies float32 us per queue depth)."""
    m = validate.instance("measurement", measurement, Measurement)
    qds = m.queue_depths
    np.savez_compressed(os.fspath(path), queue_depths=np.array(qds), iops=np.array([m.iops[q] for q in qds]),
                        where=np.array(m.where), when=np.array(m.when), direct=np.array(m.direct),
                        refused=np.array(m.refused),
                        **{f"latency_us_qd{q}": m.latency_us[q].astype(np.float32) for q in qds})


def load_measurement(path) -> Measurement:
    """Read a file written by `save_measurement` back into a `Measurement` (float64 latencies)."""
    with np.load(os.fspath(path), allow_pickle=False) as z:
        qds = [int(q) for q in z["queue_depths"]]
        return Measurement({q: z[f"latency_us_qd{q}"].astype(np.float64) for q in qds},
                           dict(zip(qds, z["iops"].tolist())), bool(z["direct"]), str(z["where"]), str(z["when"]),
                           str(z["refused"]) if "refused" in z.files else "")
