"""Social Hash Partitioner (SHP): place vectors read together into the same block.

The hypergraph (`hypergraph.Hypergraph`) has one vertex per vector and one hyperedge per past request
(the vectors it read). SHP minimises the *probabilistic fanout* of the requests, sum over requests and blocks of
1 - (1-p)^n (n = vectors of the request in the block; p = 1 is plain fanout), by local search on
move gains (Kabiljo et al., VLDB 2017). Moving v from block a to block b changes the cost by

    p * sum_{q containing v} [ (1-p)^{n_qb} - (1-p)^{n_qa - 1} ],

so every vertex's gain follows from one pass over the requests. Two modes:

* recursive bisection (the open-source SHP): split each block range in two, then repeat
  `iterations` rounds of "compute all gains, swap the best pairs across the split"; swaps keep the
  halves balanced, `imbalance` lets a half grow by that fraction (never past its blocks' capacity);
* direct k-way: each vertex's best target block; moves a->b are paired with moves b->a.

Gains are computed in one numba pass over the hyperedges (O(pins) per round): a bisection round
over 1.5 M pins took ~30 ms on a shared 2-core CPU.
"""

from __future__ import annotations

import dataclasses

import numba
import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.hypergraph import Hypergraph, blocks_read
from mlsys_core.bandana.placement import Placement


@dataclasses.dataclass(frozen=True)
class SHPConfig:
    """SHP settings; paper values: 20 iterations per split, imbalance 0.045, move probability 0.8.

    Args:
        p: the probabilistic fanout's p, in (0, 1] (1: plain fanout).
        iterations: rounds per split (bisection) or of moves (k-way), >= 0.
        imbalance: the fraction a half may grow past its share, in [0, 1); only where its blocks have
            room: with every block full it does nothing, with spare slots (`shp_placement(...,
            num_blocks=...)`) it does.
        move_probability: the chance that a chosen move (or pair of moves) is made, in (0, 1].
        mode: "bisection" (recursive, the open-source SHP) or "kway" (direct k-way moves).
        refine_iterations: rounds of direct k-way moves after the bisection, >= 0.
        min_move_fraction: a split stops early once a round moves fewer than this fraction of its
            vertices, in [0, 1).
        max_move_ratio: the vertices one side of a split sends per round, as a fraction of its size
            (Giraph SHP's `social_hash_partitioner.decide.max_move_ratio`, default 0.1), in (0, 1];
            1 removes the cap.
        seed: seeds the search's random choices (int >= 0).
    """

    p: float = 0.5
    iterations: int = 20
    imbalance: float = 0.045
    move_probability: float = 0.8
    mode: str = "bisection"
    refine_iterations: int = 0
    min_move_fraction: float = 0.005
    max_move_ratio: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        validate.number("p", self.p, 0.0, 1.0, low_open=True)
        for field in ("iterations", "refine_iterations"):
            validate.integer(field, getattr(self, field), 0)
        validate.number("imbalance", self.imbalance, 0.0, 1.0, high_open=True)
        validate.number("min_move_fraction", self.min_move_fraction, 0.0, 1.0, high_open=True)
        validate.number("move_probability", self.move_probability, 0.0, 1.0, low_open=True)
        validate.number("max_move_ratio", self.max_move_ratio, 0.0, 1.0, low_open=True)
        validate.choice("mode", self.mode, ("bisection", "kway"))
        validate.seed("seed", self.seed)


@numba.njit(cache=True)
def _side_gains(edge_ptr: np.ndarray, pins: np.ndarray, pin_bucket: np.ndarray, pin_sibling: np.ndarray,
                pin_active: np.ndarray, n: int, num_buckets: int, wpow: np.ndarray) -> np.ndarray:
    """gain[v] / p of moving each vertex to its sibling bucket, from one pass over the edges.

    pin_* are per-pin copies of the vertex arrays (gathered once per round, for locality).
    """
    keep = np.zeros(n)
    join = np.zeros(n)
    cnt = np.zeros(num_buckets, dtype=np.int64)
    for e in range(edge_ptr.size - 1):
        lo = edge_ptr[e]
        hi = edge_ptr[e + 1]
        for i in range(lo, hi):
            cnt[pin_bucket[i]] += 1
        for i in range(lo, hi):
            if pin_active[i]:
                v = pins[i]
                keep[v] += wpow[cnt[pin_bucket[i]] - 1]
                join[v] += wpow[cnt[pin_sibling[i]]]
        for i in range(lo, hi):
            cnt[pin_bucket[i]] = 0
    return keep - join


@numba.njit
def _pair_moves(order: np.ndarray, i: int, j: int, n_a: int, n_b: int, gain: np.ndarray, move_probability: float,
                out: np.ndarray, no: int, limit: int) -> tuple[int, int]:
    """Pair opposite movers order[i + m] and order[j + m] (each list best first) while a pair gains,
    at most `limit` pairs. Each pair moves with `move_probability` and is written to out[no:];
    returns (pairs consumed, new no)."""
    m = 0
    while m < n_a and m < n_b and m < limit:
        a = order[i + m]
        b = order[j + m]
        if gain[a] + gain[b] <= 0:
            break
        if np.random.random() < move_probability:
            out[no] = a
            out[no + 1] = b
            no += 2
        m += 1
    return m, no


@numba.njit(cache=True)
def _swap_sides(order: np.ndarray, group_start: np.ndarray, gain: np.ndarray, size0: np.ndarray, size1: np.ndarray,
                max0: np.ndarray, max1: np.ndarray, move_probability: float, max_move_ratio: float) -> np.ndarray:
    """Swap the best pairs across each split; then let unpaired positive movers use the slack.
    Each side sends at most max(1, max_move_ratio x its size) vertices a round.

    `order` lists active vertices grouped by (group, side), best gain first; group_start[2g + s]
    is where (g, s) starts. Returns the vertices to flip.
    """
    flips = np.empty(order.size, dtype=np.int64)
    nf = 0
    for g in range(size0.size):
        i, j, k = group_start[2 * g], group_start[2 * g + 1], group_start[2 * g + 2]
        if i == k:
            continue
        n0 = j - i
        n1 = k - j
        cap0 = max(1, int(max_move_ratio * size0[g]))
        cap1 = max(1, int(max_move_ratio * size1[g]))
        m, nf = _pair_moves(order, i, j, n0, n1, gain, move_probability, flips, nf, min(cap0, cap1))
        s0 = size0[g]
        s1 = size1[g]
        for r in range(m, n0):  # unpaired movers with positive gain into the side with room
            a = order[i + r]
            if gain[a] <= 0 or s1 + 1 > max1[g] or r >= cap0:
                break
            flips[nf] = a
            nf += 1
            s0 -= 1
            s1 += 1
        for r in range(m, n1):
            b = order[j + r]
            if gain[b] <= 0 or s0 + 1 > max0[g] or r >= cap1:
                break
            flips[nf] = b
            nf += 1
            s1 -= 1
            s0 += 1
    return flips[:nf]


@numba.njit(cache=True)
def _bisect_level(
    edge_ptr: np.ndarray, pins: np.ndarray, lo: np.ndarray, mid: np.ndarray, side: np.ndarray, active: np.ndarray,
    max0: np.ndarray, max1: np.ndarray, wpow: np.ndarray, iterations: int, move_probability: float, min_flips: int,
    seed: int, max_move_ratio: float,
) -> None:
    """Refine one level of splits in place (`side`): rounds of all gains, then best swaps per group."""
    np.random.seed(seed)
    n = lo.size
    num_groups = max0.size
    bucket = np.empty(n, dtype=np.int64)
    sibling = np.empty(n, dtype=np.int64)
    pin_bucket = np.empty(pins.size, dtype=np.int64)
    pin_sibling = np.empty(pins.size, dtype=np.int64)
    pin_active = np.empty(pins.size, dtype=np.bool_)
    for i in range(pins.size):
        pin_active[i] = active[pins[i]]
    for _ in range(iterations):
        for v in range(n):
            bucket[v] = mid[v] if side[v] == 1 else lo[v]
            sibling[v] = lo[v] if side[v] == 1 else mid[v]
        for i in range(pins.size):
            pin_bucket[i] = bucket[pins[i]]
            pin_sibling[i] = sibling[pins[i]]
        gain = _side_gains(edge_ptr, pins, pin_bucket, pin_sibling, pin_active, n, num_groups, wpow)
        # active vertices by (group, side), best gain first: argsort by gain, then a stable counting sort
        by_gain = np.argsort(-gain, kind="mergesort")
        group_start = np.zeros(2 * num_groups + 1, dtype=np.int64)
        size0 = np.zeros(num_groups, dtype=np.int64)
        size1 = np.zeros(num_groups, dtype=np.int64)
        for v in range(n):
            if side[v] == 1:
                size1[lo[v]] += 1
            else:
                size0[lo[v]] += 1
            if active[v]:
                group_start[2 * lo[v] + side[v] + 1] += 1
        for c in range(2 * num_groups):
            group_start[c + 1] += group_start[c]
        fill = group_start[:-1].copy()
        order = np.empty(group_start[-1], dtype=np.int64)
        for x in range(n):
            v = by_gain[x]
            if active[v]:
                c = 2 * lo[v] + side[v]
                order[fill[c]] = v
                fill[c] += 1
        flips = _swap_sides(order, group_start, gain, size0, size1, max0, max1, move_probability, max_move_ratio)
        for v in flips:
            side[v] ^= 1
        if flips.size < min_flips:
            break


def _powers(graph: Hypergraph, p: float) -> np.ndarray:
    """(1-p)^n for n = 0 .. largest edge size + 1."""
    return (1.0 - p) ** np.arange(int(np.diff(graph.edge_ptr).max(initial=0)) + 2)


def _bisection(graph: Hypergraph, start: Placement, num_blocks: int, capacity: int, config: SHPConfig) -> np.ndarray:
    n = graph.num_vertices
    lo = np.zeros(n, dtype=np.int64)
    hi = np.full(n, num_blocks, dtype=np.int64)
    wpow = _powers(graph, config.p)
    rng = np.random.default_rng(config.seed)
    rank = np.empty(n, dtype=np.int64)  # start: vertices in the order of the starting placement
    rank[np.lexsort((np.arange(n), start.block_of))] = np.arange(n)
    while np.any(hi - lo > 1):
        width = hi - lo
        mid = lo + width // 2
        active = width > 1
        # Initial halves: by rank inside each group, sized in proportion to the blocks of each half.
        order = np.lexsort((rank, lo))
        pos = np.empty(n, dtype=np.int64)
        pos[order] = np.arange(n)
        pos -= np.searchsorted(lo[order], lo)
        n_g = np.bincount(lo, minlength=num_blocks)[lo]
        left_blocks, right_blocks = mid - lo, hi - mid
        target0 = np.clip(
            np.rint(n_g * left_blocks / width).astype(np.int64), n_g - right_blocks * capacity, left_blocks * capacity
        )
        side = np.where(active & (pos >= target0), 1, 0).astype(np.int64)
        max0 = np.zeros(num_blocks, dtype=np.int64)
        max1 = np.zeros(num_blocks, dtype=np.int64)
        max0[lo] = np.minimum(left_blocks * capacity, np.floor(target0 * (1 + config.imbalance)).astype(np.int64))
        max1[lo] = np.minimum(
            right_blocks * capacity, np.floor((n_g - target0) * (1 + config.imbalance)).astype(np.int64)
        )
        _bisect_level(graph.edge_ptr, graph.pins, lo, mid, side, active, max0, max1, wpow, config.iterations,
                      config.move_probability, max(1, int(config.min_move_fraction * active.sum())),
                      int(rng.integers(2**31)), config.max_move_ratio)
        lo = np.where(active & (side == 1), mid, lo)
        hi = np.where(active & (side == 0), mid, hi)
    return lo


@numba.njit(cache=True)
def _kway_targets(edge_ptr: np.ndarray, pins: np.ndarray, vertex_ptr: np.ndarray, vertex_edges: np.ndarray,
                  block_of: np.ndarray, num_blocks: int, wpow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each vertex's best target block and gain/p (sparse scan of the blocks its edges touch)."""
    n = block_of.size
    # per-edge block counts, sparse
    ecnt = np.zeros(num_blocks, dtype=np.int64)
    eb_ptr = np.zeros(edge_ptr.size, dtype=np.int64)
    eb_block = np.empty(pins.size, dtype=np.int64)
    eb_count = np.empty(pins.size, dtype=np.int64)
    m = 0
    for e in range(edge_ptr.size - 1):
        for i in range(edge_ptr[e], edge_ptr[e + 1]):
            b = block_of[pins[i]]
            if ecnt[b] == 0:
                eb_block[m] = b
                m += 1
            ecnt[b] += 1
        for j in range(eb_ptr[e], m):
            eb_count[j] = ecnt[eb_block[j]]
            ecnt[eb_block[j]] = 0
        eb_ptr[e + 1] = m
    acc = np.zeros(num_blocks)
    seen = np.zeros(num_blocks, dtype=np.bool_)
    touched = np.empty(num_blocks, dtype=np.int64)
    target = np.full(n, -1, dtype=np.int64)
    gain = np.zeros(n)
    for v in range(n):
        a = block_of[v]
        keep = 0.0
        nt = 0
        for x in range(vertex_ptr[v], vertex_ptr[v + 1]):
            e = vertex_edges[x]
            for j in range(eb_ptr[e], eb_ptr[e + 1]):
                b = eb_block[j]
                if b == a:
                    keep += wpow[eb_count[j] - 1]
                else:
                    if not seen[b]:
                        seen[b] = True
                        touched[nt] = b
                        nt += 1
                    acc[b] += wpow[eb_count[j]] - 1.0
        deg = vertex_ptr[v + 1] - vertex_ptr[v]
        best = 0.0
        for t in range(nt):
            b = touched[t]
            g = keep - deg - acc[b]
            if target[v] < 0 or g > best:
                best = g
                target[v] = b
            acc[b] = 0.0
            seen[b] = False
        gain[v] = best if target[v] >= 0 else keep - deg
    return target, gain


@numba.njit
def _fill_free_slots(order: np.ndarray, start: int, stop: int, src: np.ndarray, dst: np.ndarray, gain: np.ndarray,
                     fill: np.ndarray, capacity: int, out: np.ndarray, no: int) -> int:
    """Unpaired movers order[start:stop] (best first) with positive gain take free slots in their
    target blocks (`fill` updated); written to out[no:], returns the new no."""
    for r in range(start, stop):
        a = order[r]
        if gain[a] <= 0 or fill[dst[a]] >= capacity:
            break
        fill[dst[a]] += 1
        fill[src[a]] -= 1
        out[no] = a
        no += 1
    return no


@numba.njit(cache=True)
def _kway_moves(order: np.ndarray, src: np.ndarray, dst: np.ndarray, gain: np.ndarray, fill: np.ndarray, capacity: int,
                move_probability: float, seed: int) -> np.ndarray:
    """Pair moves a->b with b->a (best first); unpaired movers fill free slots. `order` sorts
    candidates by (min(a,b), max(a,b), a > b, -gain)."""
    np.random.seed(seed)
    out = np.empty(order.size, dtype=np.int64)
    no = 0
    i = 0
    n = order.size
    while i < n:
        x = order[i]
        lo_ = min(src[x], dst[x])
        hi_ = max(src[x], dst[x])
        j = i
        while (
            j < n
            and min(src[order[j]], dst[order[j]]) == lo_
            and max(src[order[j]], dst[order[j]]) == hi_
            and src[order[j]] == lo_
        ):
            j += 1
        k = j
        while k < n and min(src[order[k]], dst[order[k]]) == lo_ and max(src[order[k]], dst[order[k]]) == hi_:
            k += 1
        m, no = _pair_moves(order, i, j, j - i, k - j, gain, move_probability, out, no, n)
        no = _fill_free_slots(order, i + m, j, src, dst, gain, fill, capacity, out, no)
        no = _fill_free_slots(order, j + m, k, src, dst, gain, fill, capacity, out, no)
        i = k
    return out[:no]


def _kway(
    graph: Hypergraph, block_of: np.ndarray, num_blocks: int, capacity: int, iterations: int, config: SHPConfig
) -> np.ndarray:
    block_of = block_of.copy()
    wpow = _powers(graph, config.p)
    edge_of_pin = np.repeat(np.arange(graph.num_edges, dtype=np.int64), np.diff(graph.edge_ptr))
    vorder = np.argsort(graph.pins, kind="stable")
    vertex_edges = edge_of_pin[vorder]
    vertex_ptr = np.searchsorted(graph.pins[vorder], np.arange(graph.num_vertices + 1)).astype(np.int64)
    rng = np.random.default_rng([config.seed, 1])
    for _ in range(iterations):
        target, gain = _kway_targets(graph.edge_ptr, graph.pins, vertex_ptr, vertex_edges, block_of, num_blocks, wpow)
        cand = np.flatnonzero((target >= 0) & (target != block_of))
        src, dst = block_of, target
        order = cand[
            np.lexsort(
                (-gain[cand], src[cand] > dst[cand], np.maximum(src[cand], dst[cand]), np.minimum(src[cand], dst[cand]))
            )
        ]
        fill = np.bincount(block_of, minlength=num_blocks).astype(np.int64)
        moves = _kway_moves(order, src, dst, gain, fill, capacity, config.move_probability, int(rng.integers(2**31)))
        if moves.size == 0:
            break
        block_of[moves] = target[moves]
    return block_of


def shp_placement(
    graph: Hypergraph, capacity: int, config: SHPConfig = SHPConfig(), start: Placement | None = None,
    num_blocks: int | None = None,
) -> Placement:
    """SHP placement of `graph.num_vertices` vectors into blocks of `capacity`.

    Spare slots (`num_blocks` above the fewest) make the bisection split vertices in proportion to
    each half's blocks, so blocks start part-full and `imbalance` lets a half take up to that fraction
    more; the full-block placement (which fits the spare blocks too) is also run and the one that
    reads fewer blocks on `graph` kept, so spare slots never make SHP worse. The result never reads
    more blocks on `graph` than `start` does: if local search ends worse, the start is returned.

    Args:
        graph: the past requests over the table's vectors.
        capacity: vectors per block (int >= 1).
        config: the search's settings.
        start: the placement the search starts from (default: id order).
        num_blocks: blocks to fill (default: the fewest, ceil(n / capacity)).
    """
    validate.instance("graph", graph, Hypergraph)
    validate.instance("config", config, SHPConfig)
    capacity = validate.integer("capacity", capacity, 1)
    n = graph.num_vertices
    fewest = -(-n // capacity)
    if num_blocks is None:
        num_blocks = fewest
    elif validate.integer("num_blocks", num_blocks) < fewest:
        raise ValueError(f"num_blocks must be >= {fewest}, the fewest blocks of capacity {capacity} that hold {n} "
                         f"vertices, got {num_blocks}")
    if start is None:
        start = Placement(np.arange(n, dtype=np.int64) // capacity, int(capacity))
    validate.instance("start", start, Placement)
    if start.block_of.size != n:
        raise ValueError(f"start covers {start.block_of.size} vectors, the hypergraph has {n}")
    if config.mode == "bisection":
        block_of = _bisection(graph, start, num_blocks, int(capacity), config)
        block_of = _kway(graph, block_of, num_blocks, int(capacity), config.refine_iterations, config)
    else:
        block_of = _kway(
            graph,
            start.block_of.astype(np.int64),
            max(num_blocks, start.num_blocks),
            int(capacity),
            config.iterations,
            config,
        )
    result = Placement(block_of.astype(np.int64), int(capacity))
    if num_blocks > fewest:  # spare slots: the full-block placement is a candidate too (it fits)
        full = shp_placement(graph, capacity, config, start)
        if blocks_read(graph, full) < blocks_read(graph, result):
            result = full
    return result if blocks_read(graph, result) <= blocks_read(graph, start) else start
