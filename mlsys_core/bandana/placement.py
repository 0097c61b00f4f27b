"""Placement of vectors into 4 KB blocks, and the metrics that judge it (fanout, effective bandwidth).

A `Placement` maps each vector of one table to a block holding at most `block_capacity` vectors.
Baselines here: sequential (id order), random, and semantic k-means on the vector values; the
supervised SHP placement lives in `shp.py`, and the methods as swappable objects in
`evaluation.PLACEMENTS`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.tables import BLOCK_BYTES, EmbeddingTable
from mlsys_core.bandana.trace import Trace


@dataclasses.dataclass(frozen=True, eq=False)
class Placement:
    """`block_of[v]` is the block of vector v (0..num_blocks-1); no block holds more than `block_capacity`."""

    block_of: np.ndarray  # (num_vectors,) the block of each vector
    block_capacity: int  # the most vectors a block holds

    def __post_init__(self):
        b = validate.integers("block_of", self.block_of, 0)
        if b.size == 0:
            raise ValueError("block_of must hold the block of at least one vector, got an empty array")
        object.__setattr__(self, "block_of", b)
        validate.integer("block_capacity", self.block_capacity, 1)
        fill = np.bincount(b)
        if fill.max() > self.block_capacity:
            raise ValueError(
                f"block {int(fill.argmax())} holds {int(fill.max())} vectors, more than block_capacity "
                f"{self.block_capacity}"
            )

    @property
    def num_blocks(self) -> int:
        """Blocks used (the highest block id + 1)."""
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
    validate.instance("table", table, EmbeddingTable)
    return _from_order(np.arange(table.num_vectors), table.block_capacity)


def random_placement(table: EmbeddingTable, seed: int) -> Placement:
    """Vectors in a random order drawn from `seed`."""
    validate.instance("table", table, EmbeddingTable)
    order = np.random.default_rng(validate.seed("seed", seed)).permutation(table.num_vectors)
    return _from_order(order, table.block_capacity)


def kmeans_placement(
    table: EmbeddingTable, values: np.ndarray, seed: int, num_clusters: int | None = None
) -> Placement:
    """Semantic placement: k-means on the vector values, then blocks filled cluster by cluster.

    Within a cluster vectors are ordered by distance to the centroid, so that a block split across
    two clusters takes the outskirts.

    Args:
        table: the table placed.
        values: (num_vectors, dim) the vectors' values.
        seed: k-means' seed (int >= 0).
        num_clusters: clusters, 1 to num_vectors (default: the number of blocks, capped at 1024).
    """
    from sklearn.cluster import MiniBatchKMeans

    validate.instance("table", table, EmbeddingTable)
    values = validate.reals("values", values, ndim=2).astype(np.float32)
    if values.shape != (table.num_vectors, table.dim):
        raise ValueError(f"values must have shape {(table.num_vectors, table.dim)}, got {values.shape}")
    seed = validate.seed("seed", seed)
    if num_clusters is None:
        k = min(table.num_blocks, 1024)
    else:
        k = validate.integer("num_clusters", num_clusters, 1, table.num_vectors)
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=1, batch_size=4096, max_iter=50)
    labels = km.fit_predict(values)
    dist = np.linalg.norm(values - km.cluster_centers_[labels], axis=1)
    return _from_order(np.lexsort((dist, labels)), table.block_capacity)


@dataclasses.dataclass(frozen=True, eq=False)
class BlockMap:
    """Global block layout of all tables: key -> block, and each block's keys (CSR)."""

    block_of: np.ndarray  # (num_keys,) global block of each key
    block_ptr: np.ndarray  # (num_blocks + 1,)
    block_members: np.ndarray  # keys grouped by block (all keys, or a sample's)
    key_bytes: np.ndarray  # (num_keys,)

    def __post_init__(self):
        """Whole-number arrays in range, as int64 (the cache kernels index with them unchecked)."""
        ptr = validate.integers("block_ptr", self.block_ptr, 0)
        if ptr.size == 0:
            raise ValueError("block_ptr must hold num_blocks + 1 offsets, got an empty array")
        back = np.flatnonzero(np.diff(ptr) < 0)
        if back.size:
            i = int(back[0]) + 1
            raise ValueError(f"block_ptr must be non-decreasing; block_ptr[{i}] is {ptr[i]} after {ptr[i - 1]}")
        block_of = validate.integers("block_of", self.block_of, 0, ptr.size - 2)
        members = validate.integers("block_members", self.block_members, 0, block_of.size - 1)
        if members.size != ptr[-1]:
            raise ValueError(f"block_ptr ends at {ptr[-1]}, but block_members holds {members.size} keys")
        key_bytes = validate.integers("key_bytes", self.key_bytes, 1)
        if key_bytes.size != block_of.size:
            raise ValueError(f"key_bytes holds {key_bytes.size} keys, block_of {block_of.size}")
        for name, value in (("block_ptr", ptr), ("block_of", block_of), ("block_members", members),
                            ("key_bytes", key_bytes)):
            object.__setattr__(self, name, value)


def block_map(tables, placements) -> BlockMap:
    """Combine per-table placements (same order as `tables`) into one global `BlockMap`."""
    tables, placements = tuple(tables), tuple(placements)
    if len(tables) != len(placements):
        raise ValueError(f"need one placement per table: {len(tables)} tables, {len(placements)} placements")
    for i, (t, p) in enumerate(zip(tables, placements)):
        validate.instance(f"tables[{i}]", t, EmbeddingTable)
        validate.instance(f"placements[{i}]", p, Placement)
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


def check_covers(trace: Trace, blocks: BlockMap) -> None:
    """TypeError unless `trace` is a Trace and `blocks` a BlockMap; ValueError unless `blocks` lays out
    exactly the keys of the trace's tables."""
    validate.instance("trace", trace, Trace)
    validate.instance("blocks", blocks, BlockMap)
    if blocks.block_of.size != trace.table_offsets[-1]:
        raise ValueError(f"the trace's tables hold {int(trace.table_offsets[-1])} keys, the block map "
                         f"{blocks.block_of.size}")


def fanout(trace: Trace, blocks: BlockMap) -> np.ndarray:
    """(num_requests,) distinct blocks each request reads with no cache."""
    check_covers(trace, blocks)
    blk = blocks.block_of[trace.keys]
    rid = trace.request_ids()
    pairs = np.unique(rid * (int(blocks.block_ptr.size)) + blk)
    return np.bincount(pairs // int(blocks.block_ptr.size), minlength=trace.num_requests)


def effective_bandwidth_no_cache(trace: Trace, blocks: BlockMap) -> float:
    """Useful bytes / bytes read when every request reads its blocks straight from NVM."""
    check_covers(trace, blocks)
    useful = blocks.key_bytes[trace.keys].sum()
    return float(useful / (fanout(trace, blocks).sum() * BLOCK_BYTES))
