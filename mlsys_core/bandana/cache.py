"""The DRAM cache in front of NVM: LRU over vectors with threshold admission of prefetched vectors.

On a miss the vector's whole 4 KB block is read from NVM (once per request, however many of the
request's vectors it holds). The requested vector is admitted; each other vector of the block is
admitted only if it has been looked up at least `admission_threshold` times before (t = 0 admits the
whole block, `NO_PREFETCH` none). The per-request kernel is sequential by nature, so it is compiled
with numba; everything around it is NumPy.
"""

from __future__ import annotations

import dataclasses

import numba
import numpy as np
import numpy.typing as npt

from mlsys_core import validate
from mlsys_core.bandana.placement import BlockMap, check_covers
from mlsys_core.bandana.tables import BLOCK_BYTES
from mlsys_core.bandana.trace import Trace, keys_array

NO_PREFETCH = np.iinfo(np.int64).max  # t = infinity: admit no prefetched vector


@numba.njit(cache=True)
def _dense_ids(keys: np.ndarray) -> tuple[np.ndarray, int]:
    """Keys -> 0..K-1 in order of first appearance (direct-address table when the key range is small)."""
    n = keys.size
    out = np.empty(n, dtype=np.int64)
    hi = 0
    for i in range(n):
        if keys[i] > hi:
            hi = keys[i]
    table = np.full(hi + 1, -1, dtype=np.int64)
    k = 0
    for i in range(n):
        key = keys[i]
        if table[key] < 0:
            table[key] = k
            k += 1
        out[i] = table[key]
    return out, k


def dense_ids(keys: npt.ArrayLike) -> tuple[np.ndarray, int]:
    """(ids, K): keys (a 1-D array of whole numbers >= 0) relabelled 0..K-1 (first appearance order)."""
    keys = np.ascontiguousarray(keys_array("keys", keys))
    if keys.size == 0:
        raise ValueError("the trace is empty: no keys to simulate")
    if int(keys.max()) > 8 * keys.size + (1 << 20):  # sparse ids: relabel by sorting instead
        _, inv = np.unique(keys, return_inverse=True)
        return inv.astype(np.int64), int(inv.max()) + 1
    out, k = _dense_ids(keys.astype(np.int64))
    return out, int(k)


# List helpers shared by both kernels. Plain @njit (LLVM inlines them): timed on 2 M Zipf ids, as fast as
# the hand-inlined code, while inline="always" (numba IR inlining) was ~2.5x slower.
@numba.njit
def _push_front(k: int, prev: np.ndarray, nxt: np.ndarray, head: int, tail: int) -> tuple[int, int]:
    """Link `k` in at the head of the list; returns the new (head, tail)."""
    prev[k] = -1
    nxt[k] = head
    if head >= 0:
        prev[head] = k
    else:
        tail = k
    return k, tail


@numba.njit
def _move_to_front(k: int, prev: np.ndarray, nxt: np.ndarray, head: int, tail: int) -> tuple[int, int]:
    """Unlink cached `k` and push it to the front; returns the new (head, tail)."""
    if k == head:
        return head, tail
    p = prev[k]
    q = nxt[k]
    nxt[p] = q
    if q >= 0:
        prev[q] = p
    else:
        tail = p
    return _push_front(k, prev, nxt, head, tail)


@numba.njit
def _pop_tail(prev: np.ndarray, nxt: np.ndarray, head: int, tail: int) -> tuple[int, int, int]:
    """Unlink the tail (the list must be non-empty); returns (evicted, new head, new tail)."""
    t = tail
    tail = prev[t]
    if tail >= 0:
        nxt[tail] = -1
    else:
        head = -1
    return t, head, tail


@numba.njit(cache=True)
def _lru_misses(ids: np.ndarray, num_keys: int, capacity: int) -> int:
    """Misses of a unit-size LRU holding `capacity` objects (doubly linked list over dense ids)."""
    prev = np.full(num_keys, -1, dtype=np.int64)
    nxt = np.full(num_keys, -1, dtype=np.int64)
    cached = np.zeros(num_keys, dtype=np.bool_)
    head = -1
    tail = -1
    size = 0
    misses = 0
    for i in range(ids.size):
        k = ids[i]
        if cached[k]:
            head, tail = _move_to_front(k, prev, nxt, head, tail)
            continue
        misses += 1
        if capacity == 0:
            continue
        if size == capacity:  # evict the tail
            t, head, tail = _pop_tail(prev, nxt, head, tail)
            cached[t] = False
            size -= 1
        cached[k] = True
        head, tail = _push_front(k, prev, nxt, head, tail)
        size += 1
    return misses


def lru_misses(keys: npt.ArrayLike, capacity_objects: int) -> int:
    """Misses of plain LRU (unit-size objects) over `keys`, a cache of `capacity_objects` objects."""
    capacity_objects = validate.integer("capacity_objects", capacity_objects, 0)
    ids, k = dense_ids(keys)
    return int(_lru_misses(ids, k, capacity_objects))


@numba.njit(cache=True)
def _admission_lru(keys: np.ndarray, request_ptr: np.ndarray, block_of: np.ndarray, block_ptr: np.ndarray,
                   block_members: np.ndarray, key_bytes: np.ndarray, capacity_bytes: np.int64,
                   threshold_of_key: np.ndarray, counts: np.ndarray
                   ) -> tuple[int, int, int, int, np.ndarray, np.ndarray]:
    num_keys = key_bytes.size
    prev = np.full(num_keys, -1, dtype=np.int64)
    nxt = np.full(num_keys, -1, dtype=np.int64)
    cached = np.zeros(num_keys, dtype=np.bool_)
    unused_prefetch = np.zeros(num_keys, dtype=np.bool_)
    last_read = np.full(block_ptr.size - 1, -1, dtype=np.int64)
    num_requests = request_ptr.size - 1
    blocks_read = np.zeros(num_requests, dtype=np.int32)
    hits_per_request = np.zeros(num_requests, dtype=np.int32)
    head = -1
    tail = -1
    used = 0
    hits = 0
    prefetch_hits = 0
    prefetch_admitted = 0
    useful_bytes = 0
    for r in range(num_requests):
        for i in range(request_ptr[r], request_ptr[r + 1]):
            k = keys[i]
            if cached[k]:
                hits += 1
                hits_per_request[r] += 1
                if unused_prefetch[k]:
                    unused_prefetch[k] = False
                    prefetch_hits += 1
                    useful_bytes += key_bytes[k]
                head, tail = _move_to_front(k, prev, nxt, head, tail)
                counts[k] += 1
                continue
            useful_bytes += key_bytes[k]
            b = block_of[k]
            new_read = last_read[b] != r
            if new_read:
                last_read[b] = r
                blocks_read[r] += 1
            # Admit the requested vector first, then (on a fresh read) the block's other vectors.
            for j in range(-1, block_ptr[b + 1] - block_ptr[b]):
                if j < 0:
                    u = k
                else:
                    if not new_read:
                        break
                    u = block_members[block_ptr[b] + j]
                    if u == k or cached[u] or counts[u] < threshold_of_key[u]:
                        continue
                if key_bytes[u] > capacity_bytes:
                    continue
                while used + key_bytes[u] > capacity_bytes:  # evict from the tail
                    t, head, tail = _pop_tail(prev, nxt, head, tail)
                    cached[t] = False
                    unused_prefetch[t] = False
                    used -= key_bytes[t]
                cached[u] = True
                unused_prefetch[u] = j >= 0
                if j >= 0:
                    prefetch_admitted += 1
                head, tail = _push_front(u, prev, nxt, head, tail)
                used += key_bytes[u]
            counts[k] += 1
    return hits, prefetch_hits, prefetch_admitted, useful_bytes, blocks_read, hits_per_request


def _check_threshold(name: str, t: object) -> int:
    t = validate.integer(name, t)
    if t < 0:
        raise ValueError(f"{name} must be >= 0 (0 admits whole blocks; NO_PREFETCH admits none), got {t}")
    return t


@dataclasses.dataclass(frozen=True)
class CacheConfig:
    """A DRAM cache of `capacity_bytes` with prefetch admission threshold `admission_threshold` (t).

    `admission_threshold` is one t for every table, or a tuple with one t per table of the trace
    (Bandana picks t per table; the tables still share the one LRU and its capacity).
    """

    capacity_bytes: int
    admission_threshold: int | tuple[int, ...] = 0

    def __post_init__(self) -> None:
        validate.integer("capacity_bytes", self.capacity_bytes, 0)
        t = self.admission_threshold
        if isinstance(t, (tuple, list, np.ndarray)):
            if len(t) == 0:
                raise ValueError("admission_threshold must be an int or a non-empty tuple of ints (one per table), "
                                 "got an empty sequence")
            t = tuple(_check_threshold(f"admission_threshold[{i}]", x) for i, x in enumerate(t))
        else:
            t = _check_threshold("admission_threshold", t)
        object.__setattr__(self, "admission_threshold", t)

    def threshold_of_key(self, table_sizes: npt.ArrayLike) -> np.ndarray:
        """(sum(table_sizes),) int64: the t that applies to each key (tables laid out in order)."""
        sizes = validate.integers("table_sizes", table_sizes, 0)
        t = self.admission_threshold
        if isinstance(t, int):
            return np.full(int(sizes.sum()), t, dtype=np.int64)
        if len(t) != sizes.size:
            raise ValueError(f"admission_threshold has {len(t)} entries, but the trace has {sizes.size} tables")
        return np.repeat(np.array(t, dtype=np.int64), sizes)


@dataclasses.dataclass(frozen=True, eq=False)
class CacheResult:
    """What one cache simulation measured."""

    lookups: int  # lookups of the trace
    hits: int  # lookups served from DRAM
    prefetch_hits: int  # hits on vectors a block read admitted without their being asked for
    prefetch_admitted: int  # vectors admitted without their being asked for
    useful_bytes: int  # bytes read from NVM that a lookup used: asked-for vectors and prefetch hits
    blocks_read: np.ndarray  # (num_requests,) NVM blocks each request read
    hits_per_request: np.ndarray  # (num_requests,) lookups of each request served from DRAM

    @property
    def hit_rate(self) -> float:
        """Hits / lookups."""
        return self.hits / self.lookups

    @property
    def total_blocks_read(self) -> int:
        """NVM blocks read by all requests."""
        return int(self.blocks_read.sum())

    @property
    def bytes_read(self) -> int:
        """NVM bytes read by all requests (4 KB per block)."""
        return self.total_blocks_read * BLOCK_BYTES

    @property
    def effective_bandwidth(self) -> float:
        """Useful bytes / bytes read from NVM (1.0 = every byte read is used before it leaves DRAM)."""
        return self.useful_bytes / self.bytes_read if self.bytes_read else float("nan")


def simulate_cache(
    trace: Trace, blocks: BlockMap, config: CacheConfig, past_counts: np.ndarray | None = None
) -> CacheResult:
    """Run `trace` through the cache, request by request (a numba kernel).

    Args:
        trace: the lookups, in time order.
        blocks: every table's block layout (`placement.block_map`).
        config: the cache's capacity and admission threshold(s).
        past_counts: (num_keys,) whole numbers >= 0 that seed the access counts used for admission
            (e.g. counts from the past trace the placement was learned on); by default counting
            starts at zero.
    """
    check_covers(trace, blocks)
    validate.instance("config", config, CacheConfig)
    num_keys = blocks.key_bytes.size
    if past_counts is None:
        counts = np.zeros(num_keys, dtype=np.int64)
    else:
        counts = validate.integers("past_counts", past_counts, 0).copy()  # the kernel adds to it
        if counts.shape != (num_keys,):
            raise ValueError(f"past_counts must have shape ({num_keys},), got {counts.shape}")
    threshold_of_key = config.threshold_of_key([t.num_vectors for t in trace.tables])
    hits, ph, pa, useful, blocks_read, hpr = _admission_lru(
        trace.keys,
        trace.request_ptr,
        blocks.block_of,
        blocks.block_ptr,
        blocks.block_members,
        blocks.key_bytes,
        np.int64(config.capacity_bytes),
        threshold_of_key,
        counts,
    )
    return CacheResult(trace.num_lookups, int(hits), int(ph), int(pa), int(useful), blocks_read, hpr)
