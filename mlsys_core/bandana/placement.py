"""Placement of vectors into 4 KB blocks, and the metrics that judge it (fanout, effective bandwidth).

A `Placement` maps each vector of one table to a block holding at most `block_capacity` vectors.
Baselines here: sequential (id order), random, and semantic k-means on the vector values; the
supervised SHP placement lives in `shp.py`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.trace import Trace
from mlsys_core.bandana.workload import BLOCK_BYTES, EmbeddingTable


@dataclasses.dataclass(frozen=True, eq=False)
class Placement:
    """`block_of[v]` is the block of vector v (0..num_blocks-1); no block holds more than `block_capacity`."""

    block_of: np.ndarray
    block_capacity: int

    def __post_init__(self):
        b = np.asarray(self.block_of)
        if b.ndim != 1 or b.size == 0 or not np.issubdtype(b.dtype, np.integer):
            raise ValueError(f"block_of must be a non-empty 1-D int array, got {b.dtype} {b.shape}")
        validate.integer("block_capacity", self.block_capacity, 1)
        if b.min() < 0:
            raise ValueError("block_of must be >= 0")
        fill = np.bincount(b)
        if fill.max() > self.block_capacity:
            raise ValueError(
                f"block {int(fill.argmax())} holds {int(fill.max())} vectors, more than block_capacity "
                f"{self.block_capacity}"
            )

    @property
    def num_blocks(self) -> int:
        return int(self.block_of.max()) + 1

    def slots(self) -> np.ndarray:
        """(num_vectors,) position of each vector inside its block (0..capacity-1), in id order."""
        order = np.argsort(self.block_of, kind="stable")
        starts = np.searchsorted(self.block_of[order], np.arange(self.num_blocks))
        slot = np.empty_like(self.block_of)
        slot[order] = np.arange(order.size) - starts[self.block_of[order]]
        return slot


def _from_order(order: np.ndarray, capacity: int) -> Placement:
    """Fill blocks with vectors in `order`, `capacity` at a time."""
    block_of = np.empty(order.size, dtype=np.int64)
    block_of[order] = np.arange(order.size) // capacity
    return Placement(block_of, capacity)


def sequential_placement(table: EmbeddingTable) -> Placement:
    """Vectors in id order: block i holds ids [i*c, (i+1)*c)."""
    return _from_order(np.arange(table.num_vectors), table.block_capacity)


def random_placement(table: EmbeddingTable, seed: int) -> Placement:
    return _from_order(np.random.default_rng(seed).permutation(table.num_vectors), table.block_capacity)


def kmeans_placement(
    table: EmbeddingTable, values: np.ndarray, seed: int, num_clusters: int | None = None
) -> Placement:
    """Semantic placement: k-means on the vector values, then blocks filled cluster by cluster.

    Within a cluster vectors are ordered by distance to the centroid, so that a block split across
    two clusters takes the outskirts. `num_clusters` defaults to the number of blocks (capped at 1024).
    """
    from sklearn.cluster import MiniBatchKMeans

    values = np.asarray(values, dtype=np.float32)
    if values.shape != (table.num_vectors, table.dim):
        raise ValueError(f"values must have shape {(table.num_vectors, table.dim)}, got {values.shape}")
    k = num_clusters or min(table.num_blocks, 1024)
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=1, batch_size=4096, max_iter=50)
    labels = km.fit_predict(values)
    dist = np.linalg.norm(values - km.cluster_centers_[labels], axis=1)
    return _from_order(np.lexsort((dist, labels)), table.block_capacity)


@dataclasses.dataclass(frozen=True, eq=False)
class BlockMap:
    """Global block layout of all tables: key -> block, and each block's keys (CSR)."""

    block_of: np.ndarray  # (num_keys,) global block of each key
    block_ptr: np.ndarray  # (num_blocks + 1,)
    block_members: np.ndarray  # (num_keys,) keys grouped by block
    key_bytes: np.ndarray  # (num_keys,)


def block_map(tables, placements) -> BlockMap:
    """Combine per-table placements (same order as `tables`) into one global `BlockMap`."""
    tables, placements = tuple(tables), tuple(placements)
    if len(tables) != len(placements):
        raise ValueError(f"need one placement per table: {len(tables)} tables, {len(placements)} placements")
    parts, offset = [], 0
    for t, p in zip(tables, placements):
        if p.block_of.size != t.num_vectors:
            raise ValueError(
                f"placement for table {t.name!r} covers {p.block_of.size} vectors, table has {t.num_vectors}"
            )
        if p.block_capacity > t.block_capacity:
            raise ValueError(
                f"placement for table {t.name!r} packs {p.block_capacity} vectors per block, "
                f"a block holds {t.block_capacity}"
            )
        parts.append(p.block_of + offset)
        offset += p.num_blocks
    block_of = np.concatenate(parts).astype(np.int64)
    members = np.argsort(block_of, kind="stable").astype(np.int64)
    ptr = np.searchsorted(block_of[members], np.arange(offset + 1)).astype(np.int64)
    key_bytes = np.repeat([t.bytes_per_vector for t in tables], [t.num_vectors for t in tables]).astype(np.int64)
    return BlockMap(block_of, ptr, members, key_bytes)


def fanout(trace: Trace, blocks: BlockMap) -> np.ndarray:
    """(num_requests,) distinct blocks each request reads with no cache."""
    blk = blocks.block_of[trace.keys]
    rid = trace.request_ids()
    pairs = np.unique(rid * (int(blocks.block_ptr.size)) + blk)
    return np.bincount(pairs // int(blocks.block_ptr.size), minlength=trace.num_requests)


def effective_bandwidth_no_cache(trace: Trace, blocks: BlockMap) -> float:
    """Useful bytes / bytes read when every request reads its blocks straight from NVM."""
    useful = blocks.key_bytes[trace.keys].sum()
    return float(useful / (fanout(trace, blocks).sum() * BLOCK_BYTES))
