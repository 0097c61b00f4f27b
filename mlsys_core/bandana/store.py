"""A real file-backed block store: one table written block by block, read with `os.pread` in 4 KB blocks.

File layout (little-endian):
  [0, 4096)            header: magic, version, sizes, dtype, CRC32 of the metadata
  [4096, data_offset)  metadata: CRC32 of each block (u4), then each vector's block (i8) and slot (i8),
                       padded to a multiple of 4096
  [data_offset, ...)   the blocks, 4096 bytes each: a block's vectors in slot order, zero padded

Every block read is checked against its CRC32; a corrupted block, a truncated file or a damaged
header raises `StoreError` naming the block (or the part of the file) at fault.
"""

from __future__ import annotations

import os
import struct
import zlib

import numpy as np

from mlsys_core.bandana.placement import Placement
from mlsys_core.bandana.workload import BLOCK_BYTES, EmbeddingTable

MAGIC = b"BANDANA\x01"
_HEADER = struct.Struct("<8sIIQQII16sI")  # magic, version, block bytes, blocks, vectors, dim, capacity, dtype, meta crc


class StoreError(ValueError):
    """The store file is damaged: a checksum mismatch, a truncated file or a bad header."""


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


class BlockStore:
    """Read a store file with `os.pread`, one 4 KB block at a time, verifying each block's CRC32."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self._fd = os.open(self.path, os.O_RDONLY)
        try:
            self._open()
        except Exception:
            os.close(self._fd)
            raise
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
        data = os.pread(self._fd, BLOCK_BYTES, self.data_offset + block * BLOCK_BYTES)
        self.blocks_read += 1
        if len(data) != BLOCK_BYTES:
            raise StoreError(f"{self.path}: block {block} is truncated ({len(data)} of {BLOCK_BYTES} bytes)")
        if zlib.crc32(data) != int(self._crc[block]):
            raise StoreError(f"{self.path}: block {block} is corrupted (CRC32 mismatch)")
        return data

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

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
