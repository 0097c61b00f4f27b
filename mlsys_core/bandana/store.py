"""A real file-backed block store: one table written block by block, read with `os.pread` in 4 KB blocks.

File layout (little-endian):
  [0, 4096)            header: magic, version, sizes, dtype, CRC32 of the metadata
  [4096, data_offset)  metadata: CRC32 of each block (u4), then each vector's block (i8) and slot (i8),
                       padded to a multiple of 4096
  [data_offset, ...)   the blocks, 4096 bytes each: a block's vectors in slot order, zero padded

Every block read is checked against its CRC32; a corrupted block, a truncated file or a damaged
header raises `StoreError` naming the block (or the part of the file) at fault.

`BlockStore(path, direct=True)` reads the blocks with O_DIRECT, past the page cache, as a device
would be read: `os.preadv` into a page-aligned `mmap` buffer (O_DIRECT refuses unaligned buffers:
plain `os.pread` fails with EINVAL). Where the filesystem refuses O_DIRECT (tmpfs, some network
filesystems) it falls back to buffered reads with a `DirectIOWarning` that says so; `store.direct`
tells which mode is in use. `read_latencies` times random block reads from 1-16 threads (queue
depth), `measure_direct_reads` makes the per-queue-depth measurement the queueing model is fed.
"""

from __future__ import annotations

import datetime
import mmap
import os
import platform
import struct
import threading
import time
import warnings
import zlib

import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.placement import Placement
from mlsys_core.bandana.workload import BLOCK_BYTES, EmbeddingTable

MAGIC = b"BANDANA\x01"
_HEADER = struct.Struct("<8sIIQQII16sI")  # magic, version, block bytes, blocks, vectors, dim, capacity, dtype, meta crc


class StoreError(ValueError):
    """The store file is damaged: a checksum mismatch, a truncated file or a bad header."""


class DirectIOWarning(UserWarning):
    """O_DIRECT was asked for but the filesystem refused it; reads go through the page cache."""


def _meta_bytes(num_blocks: int, num_vectors: int) -> int:
    raw = 4 * num_blocks + 16 * num_vectors
    return -(-raw // BLOCK_BYTES) * BLOCK_BYTES


def write_store(path, table: EmbeddingTable, values: np.ndarray, placement: Placement) -> None:
    """Write `values` (num_vectors, dim) of `table` to `path`, block by block as `placement` says."""
    values = np.ascontiguousarray(values, dtype=table.dtype)
    if values.shape != (table.num_vectors, table.dim):
        raise ValueError(f"values must have shape {(table.num_vectors, table.dim)}, got {values.shape}")
    if placement.block_of.size != table.num_vectors:
        raise ValueError(f"placement covers {placement.block_of.size} vectors, table has {table.num_vectors}")
    if placement.block_capacity > table.block_capacity:
        raise ValueError(
            f"placement packs {placement.block_capacity} vectors per block; a block holds {table.block_capacity}"
        )
    block_of = placement.block_of.astype(np.int64)
    slot = placement.slots().astype(np.int64)
    nb = placement.num_blocks
    blocks = np.zeros((nb, BLOCK_BYTES), dtype=np.uint8)
    vb = table.bytes_per_vector
    flat = blocks.reshape(-1)
    pos = block_of * BLOCK_BYTES + slot * vb
    flat[(pos[:, None] + np.arange(vb)).reshape(-1)] = values.view(np.uint8).reshape(-1)
    crcs = np.array([zlib.crc32(b) for b in blocks], dtype="<u4")
    meta = np.zeros(_meta_bytes(nb, table.num_vectors), dtype=np.uint8)
    raw = crcs.tobytes() + block_of.astype("<i8").tobytes() + slot.astype("<i8").tobytes()
    meta[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    header = _HEADER.pack(
        MAGIC,
        1,
        BLOCK_BYTES,
        nb,
        table.num_vectors,
        table.dim,
        placement.block_capacity,
        table.dtype.encode(),
        zlib.crc32(meta.tobytes()),
    )
    with open(path, "wb") as f:
        f.write(header.ljust(BLOCK_BYTES, b"\0"))
        f.write(meta.tobytes())
        for b in range(nb):  # block by block, as a device would be written
            f.write(blocks[b].tobytes())


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
        head = os.pread(self._fd, _HEADER.size, 0)
        if len(head) < _HEADER.size:
            raise StoreError(f"{self.path}: truncated header ({len(head)} of {_HEADER.size} bytes)")
        magic, version, block_bytes, nb, nv, dim, cap, dtype, meta_crc = _HEADER.unpack(head)
        if magic != MAGIC or version != 1 or block_bytes != BLOCK_BYTES:
            raise StoreError(f"{self.path}: not a Bandana store (bad magic, version or block size in the header)")
        self.num_blocks, self.num_vectors, self.dim, self.block_capacity = nb, nv, dim, cap
        self.dtype = np.dtype(dtype.rstrip(b"\0").decode())
        self.data_offset = BLOCK_BYTES + _meta_bytes(nb, nv)
        size = os.fstat(self._fd).st_size
        expected = self.data_offset + nb * BLOCK_BYTES
        if size < self.data_offset:
            raise StoreError(f"{self.path}: truncated metadata ({size} bytes, metadata ends at {self.data_offset})")
        if size < expected:
            first = (size - self.data_offset) // BLOCK_BYTES
            raise StoreError(
                f"{self.path}: truncated at block {first}: file has {size} bytes, {nb} blocks need {expected}"
            )
        meta = os.pread(self._fd, self.data_offset - BLOCK_BYTES, BLOCK_BYTES)
        if zlib.crc32(meta) != meta_crc:
            raise StoreError(f"{self.path}: metadata checksum mismatch (block checksums / vector map damaged)")
        m = np.frombuffer(meta, dtype=np.uint8)
        self._crc = m[: 4 * nb].view("<u4")
        self.block_of = m[4 * nb : 4 * nb + 8 * nv].view("<i8")
        self.slot = m[4 * nb + 8 * nv : 4 * nb + 16 * nv].view("<i8")

    def read_block(self, block: int) -> bytes:
        """The 4096 bytes of `block`, after checking its CRC32."""
        if not 0 <= block < self.num_blocks:
            raise ValueError(f"block must be in [0, {self.num_blocks}), got {block}")
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
        """(n, dim) values of `vector_ids`, reading each needed block once."""
        ids = np.asarray(vector_ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_vectors):
            raise ValueError(f"vector ids must be in [0, {self.num_vectors})")
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
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._dfd >= 0:
            os.close(self._dfd)
            self._dfd = -1
        if self._buf is not None:
            self._buf.close()
            self._buf = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_latencies(store: BlockStore, num_reads: int, queue_depth: int = 1, seed: int = 0) -> tuple[np.ndarray, float]:
    """Time `num_reads` random block reads (uniform over the store's blocks), `queue_depth` threads
    each keeping one read outstanding (os.preadv releases the GIL). Returns (per-read latency in us,
    wall seconds). Reads are timed raw (no CRC check inside the timing); the direct mode reads with
    O_DIRECT, so each read reaches the device."""
    validate.instance("store", store, BlockStore)
    num_reads = validate.integer("num_reads", num_reads, 1)
    depth = validate.integer("queue_depth", queue_depth, 1, 64)
    blocks = np.random.default_rng(validate.integer("seed", seed, 0)).integers(0, store.num_blocks, num_reads)
    lat = np.empty(num_reads)
    parts = np.array_split(np.arange(num_reads), depth)
    errors = []

    def worker(idx):
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


def measure_direct_reads(directory, queue_depths=(1, 2, 4, 8, 16), num_reads: int = 10_000,
                         file_blocks: int = 32_768, seed: int = 0) -> dict:
    """Random 4 KB O_DIRECT reads of a fresh store of `file_blocks` blocks (128 MB by default) in
    `directory`, at each queue depth: {"latency_us": {qd: (num_reads,) array}, "iops": {qd: reads/s},
    "direct": bool, "where": str, "when": ISO time}. The file is removed afterwards."""
    file_blocks = int(file_blocks)
    table = EmbeddingTable("probe", file_blocks * 16, 64, dtype="float32")
    path = os.path.join(os.fspath(directory), "bandana_direct_probe.bandana")
    values = np.random.default_rng(seed).standard_normal((table.num_vectors, table.dim), dtype=np.float32)
    write_store(path, table, values, Placement(np.arange(table.num_vectors) // 16, 16))
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # the write-back done before timing reads
    finally:
        os.close(fd)
    out = {"latency_us": {}, "iops": {}}
    try:
        with BlockStore(path, direct=True) as s:
            for qd in queue_depths:
                lat, wall = read_latencies(s, num_reads, qd, seed)
                out["latency_us"][int(qd)], out["iops"][int(qd)] = lat, num_reads / wall
            out["direct"] = s.direct
            out["refused"] = s.direct_refused
    finally:
        os.remove(path)
    mode = "on" if out["direct"] else "refused"
    out["where"] = (f"{platform.node() or 'this machine'}: {os.cpu_count()} CPUs, {platform.system()} "
                    f"{platform.release()}, {file_blocks * BLOCK_BYTES / 2**20:.0f} MB file on "
                    f"{_filesystem(os.fspath(directory))}, O_DIRECT {mode}")
    out["when"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return out


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


def save_measurement(measurement: dict, path) -> None:
    """Write `measure_direct_reads`'s result as NPZ (latencies float32 us per queue depth)."""
    qds = sorted(measurement["latency_us"])
    np.savez_compressed(os.fspath(path), queue_depths=np.array(qds),
                        iops=np.array([measurement["iops"][q] for q in qds]),
                        where=np.array(measurement["where"]), when=np.array(measurement["when"]),
                        direct=np.array(measurement["direct"]),
                        **{f"latency_us_qd{q}": measurement["latency_us"][q].astype(np.float32) for q in qds})


def load_measurement(path) -> dict:
    """Read a file written by `save_measurement` back into the same dict."""
    with np.load(os.fspath(path), allow_pickle=False) as z:
        qds = [int(q) for q in z["queue_depths"]]
        return {"latency_us": {q: z[f"latency_us_qd{q}"].astype(np.float64) for q in qds},
                "iops": dict(zip(qds, z["iops"].tolist())), "where": str(z["where"]), "when": str(z["when"]),
                "direct": bool(z["direct"])}
