"""Hit-rate curves: exact LRU curves in one pass (stack distances), SHARDS sampling, miniature caches.

A plain LRU cache of C objects hits an access iff its *stack distance* (distinct keys touched since
the key's previous access) is < C, so one pass that computes every stack distance gives the hit rate
of every cache size (Mattson et al.). Distances come from a Fenwick tree over access times that marks
each key's latest access: O(n log n), compiled with numba.

SHARDS (Waldspurger et al., FAST 2015) keeps a key iff hash(key) mod P < T (rate R = T/P), so every
access to a kept key is kept; distances in the sample scale by 1/R. Miniature caches run the Bandana
cache (with prefetch admission) on such a sample, with capacities scaled by R.
"""

from __future__ import annotations

import dataclasses

import numba
import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.cache import CacheConfig, dense_ids, simulate_cache
from mlsys_core.bandana.placement import BlockMap, check_covers
from mlsys_core.bandana.trace import Trace, keys_array


@numba.njit(cache=True)
def _stack_distances(ids, num_keys):
    n = ids.size
    tree = np.zeros(n + 1, dtype=np.int32)  # Fenwick tree over access times (1-based)
    last = np.full(num_keys, -1, dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    distinct = 0
    for i in range(n):
        k = ids[i]
        t = last[k]
        if t < 0:
            out[i] = -1
            distinct += 1
        else:
            s = 0  # marks at times <= t
            j = t + 1
            while j > 0:
                s += tree[j]
                j -= j & (-j)
            out[i] = distinct - s  # keys whose latest access is after t
            j = t + 1
            while j <= n:
                tree[j] -= 1
                j += j & (-j)
        j = i + 1
        while j <= n:
            tree[j] += 1
            j += j & (-j)
        last[k] = i
    return out


def stack_distances(keys) -> np.ndarray:
    """(n,) LRU stack distance of each access (distinct other keys since its last access; -1 if first).
    `keys`: a 1-D array of whole numbers >= 0."""
    ids, k = dense_ids(keys)
    return _stack_distances(ids, k)


def hit_rate_curve(keys, cache_sizes) -> np.ndarray:
    """Plain LRU hit rate for each cache size (objects), all from one pass."""
    sizes = _check_sizes(cache_sizes)
    d = stack_distances(keys)
    return _curve(d[d >= 0], sizes, d.size, 0.0)


def _check_sizes(cache_sizes) -> np.ndarray:
    sizes = validate.reals("cache_sizes", cache_sizes, 0.0, ndim=1)
    if sizes.size == 0:
        raise ValueError("cache_sizes must be a non-empty 1-D list of sizes >= 0, got an empty list")
    return sizes


def _curve(distances: np.ndarray, sizes: np.ndarray, total: float, extra_hits: float) -> np.ndarray:
    """Hit rate at each size: (#distances < size + extra_hits) / total, clipped to [0, 1].

    Between integer sizes the count is interpolated linearly (exact at integer sizes), so scaled
    sample distances do not count a whole lattice bucket early.
    """
    d = np.sort(distances)
    lo = np.floor(sizes)
    below = np.searchsorted(d, lo, side="left")
    below_next = np.searchsorted(d, lo + 1, side="left")
    hits = below + (sizes - lo) * (below_next - below) + extra_hits
    return np.clip(hits / total, 0.0, 1.0)


def _check_rate(name: str, rate: float) -> float:
    """A sampling rate in (0, 1], as a float."""
    return float(validate.number(name, rate, 0.0, 1.0, low_open=True))


def _splitmix64(x: np.ndarray, seed: int) -> np.ndarray:
    z = x.astype(np.uint64) + np.uint64((0x9E3779B97F4A7C15 * (seed + 1)) % 2**64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


SHARDS_MODULUS = 1 << 24


def shards_keep(keys, rate: float, seed: int = 0) -> np.ndarray:
    """(n,) bool: spatial sampling, keep a key iff hash(key) mod P < T with T = round(rate * P)."""
    rate = _check_rate("rate", rate)
    return shards_hashes(keys, seed) < max(1, round(rate * SHARDS_MODULUS))


def shards_hit_rate_curve(keys, cache_sizes, rate: float, seed: int = 0, adjust: bool = True) -> np.ndarray:
    """SHARDS estimate of the plain LRU hit-rate curve from a `rate` sample of the keys.

    Args:
        keys: the accessed keys, in time order (whole numbers >= 0).
        cache_sizes: the cache sizes of the curve (objects).
        rate: the sampling rate R, in (0, 1].
        seed: the sampling hash's seed (int >= 0).
        adjust: SHARDS-adj: the difference between the expected (n * R) and actual sample size is
            credited to the smallest distances, which removes most of the bias of hot keys in or out.
    """
    sizes = _check_sizes(cache_sizes)
    keys = keys_array("keys", keys)
    if keys.size == 0:
        raise ValueError("keys is empty: the trace has no lookup")
    adjust = validate.boolean("adjust", adjust)
    keep = shards_keep(keys, rate, seed)
    sample = keys[keep]
    if sample.size == 0:
        return np.zeros(sizes.size)
    d = stack_distances(sample)
    reuse = d[d >= 0]  # in sample units: a cache of C keys holds about C * R sampled keys
    if adjust:
        expected = keys.size * rate
        return _curve(reuse, sizes * rate, expected, expected - sample.size)
    return _curve(reuse, sizes * rate, sample.size, 0.0)


@dataclasses.dataclass(frozen=True, eq=False)
class MiniCacheGrid:
    """Hit rates of the Bandana cache for each admission threshold (rows) and capacity (columns)."""

    thresholds: np.ndarray  # (rows,) the admission threshold t of each row
    capacities_bytes: np.ndarray  # (columns,) the full cache's capacity of each column (bytes)
    hit_rates: np.ndarray  # (rows, columns)
    rate: float  # the SHARDS sampling rate (1: the full simulation)

    def best_threshold(self) -> np.ndarray:
        """(len(capacities),) the t with the highest hit rate at each capacity."""
        return self.thresholds[np.argmax(self.hit_rates, axis=0)]


def _sampled_blocks(blocks: BlockMap, keep_key: np.ndarray) -> BlockMap:
    """The same layout restricted to sampled keys (other keys never enter a mini-cache)."""
    members = blocks.block_members[keep_key[blocks.block_members]]
    ptr = np.searchsorted(blocks.block_of[members], np.arange(blocks.block_ptr.size)).astype(np.int64)
    return BlockMap(blocks.block_of, ptr, members, blocks.key_bytes)


def cache_grid(trace: Trace, blocks: BlockMap, thresholds, capacities_bytes, rate: float = 1.0, seed: int = 0,
               past_counts: np.ndarray | None = None, unit: str = "block") -> MiniCacheGrid:
    """Simulate the cache for every (t, capacity); with rate < 1 as SHARDS mini-caches.

    A mini-cache sees only the lookups of sampled keys, with capacity R x capacity.

    Args:
        trace: the lookups, in time order.
        blocks: every table's block layout.
        thresholds: the t of each row (ints >= 0).
        capacities_bytes: the cache of each column (bytes, ints >= 0).
        rate: the sampling rate R, in (0, 1] (1: the full simulation).
        seed: the sampling hash's seed (int >= 0).
        past_counts: (num_keys,) access counts that seed admission (`cache.simulate_cache`).
        unit: what the hash samples: "block" keeps whole blocks (a prefetch still brings the block's
            other vectors, so the prefetch effect survives sampling); "vector" keeps single vectors, as
            plain SHARDS does, which leaves a sampled vector with almost no sampled block-mates.
    """
    check_covers(trace, blocks)
    rate = _check_rate("rate", rate)
    seed = validate.seed("seed", seed)
    validate.choice("unit", unit, ("block", "vector"))
    thresholds = validate.integers("thresholds", thresholds, 0)
    caps = validate.integers("capacities_bytes", capacities_bytes, 0)
    if thresholds.size == 0:
        raise ValueError("thresholds must be a non-empty list of ints >= 0, got an empty list")
    if caps.size == 0:
        raise ValueError("capacities_bytes must be a non-empty list of ints >= 0, got an empty list")
    if rate < 1:
        if unit == "block":
            keep_key = shards_keep(np.arange(blocks.block_ptr.size - 1), rate, seed)[blocks.block_of]
        else:
            keep_key = shards_keep(np.arange(blocks.key_bytes.size), rate, seed)
            blocks = _sampled_blocks(blocks, keep_key)
        mask = keep_key[trace.keys]
        if not mask.any():
            raise ValueError(f"sampling rate {rate} keeps no lookup of this trace; raise the rate")
        trace = trace.select(mask)
    out = np.empty((thresholds.size, caps.size))
    for i, t in enumerate(thresholds):
        for j, c in enumerate(caps):
            cfg = CacheConfig(int(round(c * rate)), int(t))
            out[i, j] = simulate_cache(trace, blocks, cfg, past_counts).hit_rate
    return MiniCacheGrid(thresholds, caps, out, rate)


def shards_hashes(keys, seed: int = 0) -> np.ndarray:
    """(n,) SHARDS hash of each key mod P (the value `shards_keep` compares with T); `keys` whole numbers >= 0."""
    keys = keys_array("keys", keys)
    seed = validate.seed("seed", seed)
    with np.errstate(over="ignore"):
        return (_splitmix64(keys, seed) % np.uint64(SHARDS_MODULUS)).astype(np.int64)


@numba.njit(cache=True)
def _heap_push(heap_h, heap_k, size, h, k):
    i = size
    heap_h[i] = h
    heap_k[i] = k
    while i > 0:
        p = (i - 1) // 2
        if heap_h[p] >= heap_h[i]:
            break
        heap_h[p], heap_h[i] = heap_h[i], heap_h[p]
        heap_k[p], heap_k[i] = heap_k[i], heap_k[p]
        i = p
    return size + 1


@numba.njit(cache=True)
def _heap_pop(heap_h, heap_k, size):
    size -= 1
    heap_h[0] = heap_h[size]
    heap_k[0] = heap_k[size]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= size:
            break
        if c + 1 < size and heap_h[c + 1] > heap_h[c]:
            c += 1
        if heap_h[i] >= heap_h[c]:
            break
        heap_h[c], heap_h[i] = heap_h[i], heap_h[c]
        heap_k[c], heap_k[i] = heap_k[i], heap_k[c]
        i = c
    return size


@numba.njit(cache=True)
def _shards_fixed(ids, hashes, num_keys, s_max, t0):
    """Fixed-size SHARDS: track at most s_max keys, lowering the threshold T to the largest tracked
    hash whenever one more would be tracked (evicting the keys at it). Returns, per sampled access,
    its stack distance among the tracked keys (-1 cold), the threshold T at that access, and the
    final T."""
    n = ids.size
    tree = np.zeros(n + 1, dtype=np.int32)
    last = np.full(num_keys, -1, dtype=np.int64)
    heap_h = np.empty(s_max + 2, dtype=np.int64)
    heap_k = np.empty(s_max + 2, dtype=np.int64)
    size = 0
    dist = np.empty(n, dtype=np.int64)
    thr = np.empty(n, dtype=np.int64)
    m = 0  # sampled accesses so far (positions in the Fenwick tree)
    marks = 0
    t = t0
    for i in range(n):
        h = hashes[i]
        if h >= t:
            continue
        k = ids[i]
        p = last[k]
        if p < 0:
            dist[m] = -1
            size = _heap_push(heap_h, heap_k, size, h, k)
            while size > s_max:  # lower T to the largest tracked hash, evict the keys at it
                t = heap_h[0]
                while size > 0 and heap_h[0] == t:
                    ev = heap_k[0]
                    size = _heap_pop(heap_h, heap_k, size)
                    j = last[ev] + 1
                    if last[ev] >= 0:
                        while j <= n:
                            tree[j] -= 1
                            j += j & (-j)
                        marks -= 1
                    last[ev] = -2  # never sampled again: its hash is >= T from now on
            if h >= t:  # the new key itself was evicted
                continue
        else:
            s = 0
            j = p + 1
            while j > 0:
                s += tree[j]
                j -= j & (-j)
            dist[m] = marks - s
            j = p + 1
            while j <= n:
                tree[j] -= 1
                j += j & (-j)
            marks -= 1
        thr[m] = t
        j = m + 1
        while j <= n:
            tree[j] += 1
            j += j & (-j)
        marks += 1
        last[k] = m
        m += 1
    return dist[:m], thr[:m], t


def shards_fixed_hit_rate_curve(keys, cache_sizes, s_max: int, seed: int = 0,
                                initial_rate: float = 1.0, adjust: bool = True) -> np.ndarray:
    """Fixed-size SHARDS (Waldspurger et al., FAST 2015, SHARDS_fixed; libCacheSim's FIX_SIZE).

    At most `s_max` keys are tracked; the sampling rate starts at `initial_rate` and falls each time
    one more key would be tracked, to the largest tracked hash. An access's distance is scaled by
    1 / R at its time; counts taken at a higher rate are scaled by R_final / R_then (the paper's
    histogram rescaling), and the curve is normalised by the rescaled count of all sampled accesses.
    Hit iff scaled distance < C (distinct other keys since the last access), as `hit_rate_curve`.

    Args:
        keys: the accessed keys, in time order (whole numbers >= 0).
        cache_sizes: the cache sizes of the curve (objects).
        s_max: the most keys tracked at once (int >= 1).
        seed: the sampling hash's seed (int >= 0).
        initial_rate: the sampling rate to start from, in (0, 1].
        adjust: SHARDS-adj's correction at the final rate: the curve is normalised by n x R_final and
            the difference to the rescaled count is credited to the smallest distances.
    """
    sizes = _check_sizes(cache_sizes)
    s_max = validate.integer("s_max", s_max, 1)
    rate0 = _check_rate("initial_rate", initial_rate)
    keys = keys_array("keys", keys)
    if keys.size == 0:
        raise ValueError("keys is empty: the trace has no lookup")
    adjust = validate.boolean("adjust", adjust)
    ids, k = dense_ids(keys)
    hashes = shards_hashes(keys, seed)
    t0 = max(1, round(rate0 * SHARDS_MODULUS))
    dist, thr, t_final = _shards_fixed(ids, hashes, k, s_max, t0)
    if dist.size == 0:
        return np.zeros(sizes.size)
    weight = t_final / thr  # R_final / R_then
    reuse = dist >= 0
    scaled = dist[reuse] * (SHARDS_MODULUS / thr[reuse])
    order = np.argsort(scaled)
    cum = np.concatenate([[0.0], np.cumsum(weight[reuse][order])])
    total = weight.sum()
    extra = 0.0
    if adjust:
        expected = keys.size * t_final / SHARDS_MODULUS
        extra, total = expected - total, expected
    s = scaled[order]
    lo = np.floor(sizes)
    below = cum[np.searchsorted(s, lo, side="left")]
    below_next = cum[np.searchsorted(s, lo + 1, side="left")]
    return np.clip((below + (sizes - lo) * (below_next - below) + extra) / total, 0.0, 1.0)
