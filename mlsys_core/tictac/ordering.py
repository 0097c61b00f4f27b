"""Transfer orders: TicTac's TIC and TAC heuristics and the baselines they are measured against.

Definitions (the TicTac paper's, after the authors' code). R is the set of outstanding recvs; for a compute op,
deps = the recvs it needs (transitively). With a time oracle `time(.)`:
  M(op)  = sum of time(r) over deps(op) ∩ R          (communication still blocking op)
  P(r)   = sum of time(op) over ops with deps ∩ R = {r}   (compute that r alone unblocks)
  M⁺(r)  = min M(op) over ops with |deps ∩ R| > 1 and r ∈ deps   (cheapest op r helps to unblock);
           +inf when no such op exists — a recv whose consumers each need only that recv (or an
           unused recv), as in the authors' code (`Mp = math.inf` in xldrx/tictac's common.py).
TIC uses time(recv) = 1, time(compute) = 0 and sorts recvs by M⁺ (ties by recv index).
TAC repeatedly takes the head of the order "A before B iff min(P_B, M_A) < min(P_A, M_B)" — Johnson's
two-machine rule with M(r) = time(r) — ties by smaller M⁺, then recv index; it removes the head
from R and updates the properties incrementally (numba kernel): a step costs a pass over the recvs
(and over the distinct dependency sets only to break a tie) instead of a full recomputation.
`tac_recompute` is that full recomputation at every step, for timing the naive algorithm.

`SCHEDULERS` holds the policies as objects (random, layer, reverse, TIC, TAC); `schedule(graph, name, ...)`
checks the name and asks that object for its orders. Adding a policy is adding an object to `SCHEDULERS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numba
import numpy as np
import numpy.typing as npt

from mlsys_core import validate
from mlsys_core.tictac.graph import OpGraph, popcount


@dataclasses.dataclass(frozen=True)
class TimeOracle:
    """Analytic op times: a transfer takes latency + bytes / bandwidth, an op flops / rate + overhead."""

    bandwidth_gbps: float = 1.0  # Gbit/s, the link
    latency_us: float = 50.0  # us per transfer
    gflops: float = 10.0  # GFLOP/s, a worker's compute rate
    op_overhead_us: float = 2.0  # us per compute op

    def __post_init__(self) -> None:
        for name in ("bandwidth_gbps", "gflops"):
            validate.positive(name, getattr(self, name))
        for name in ("latency_us", "op_overhead_us"):
            validate.number(name, getattr(self, name), 0.0)

    def recv_seconds(self, graph: OpGraph, share: int = 1) -> np.ndarray:
        """(n_recv,) seconds per transfer when `share` flows split the link equally."""
        return self.latency_us * 1e-6 + graph.recv_bytes * 8.0 * share / (self.bandwidth_gbps * 1e9)

    def compute_seconds(self, graph: OpGraph) -> np.ndarray:
        """(n_compute,) seconds per compute op."""
        return graph.compute_flops / (self.gflops * 1e9) + self.op_overhead_us * 1e-6


@numba.njit(cache=True)
def _popcount(x: np.uint64) -> np.uint64:
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@numba.njit(cache=True)
def _lowest_bit(x: np.uint64) -> np.int64:
    """Index of the lowest set bit of a nonzero uint64."""
    return np.int64(_popcount((x & (~x + np.uint64(1))) - np.uint64(1)))


@numba.njit(cache=True, inline="always")
def _bit(r: int) -> np.uint64:
    """Mask of bit r within its 64-bit word (word r >> 6)."""
    return np.uint64(1) << np.uint64(r & 63)


@numba.njit(cache=True)
def _membership(sets: np.ndarray, n_recv: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR recv -> indices of the dependency sets containing it."""
    n_sets, words = sets.shape
    counts = np.zeros(n_recv + 1, dtype=np.int64)
    for s in range(n_sets):
        for w in range(words):
            x = sets[s, w]
            while x != 0:
                b = _lowest_bit(x)
                counts[w * 64 + b + 1] += 1
                x &= x - np.uint64(1)
    ptr = np.cumsum(counts)
    fill = ptr[:-1].copy()
    idx = np.empty(ptr[-1], dtype=np.int64)
    for s in range(n_sets):
        for w in range(words):
            x = sets[s, w]
            while x != 0:
                r = w * 64 + _lowest_bit(x)
                idx[fill[r]] = s
                fill[r] += 1
                x &= x - np.uint64(1)
    return ptr, idx


def dependency_sets(graph: OpGraph, compute_seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct deps rows of the compute ops: (sets (U, words) uint64, summed op time (U,))."""
    bits = np.ascontiguousarray(graph.deps[graph.n_recv:])
    rows = bits.view(np.dtype((np.void, bits.shape[1] * 8))).ravel()
    _, first, inverse = np.unique(rows, return_index=True, return_inverse=True)
    weight = np.bincount(inverse.ravel(), weights=compute_seconds, minlength=first.size)
    return bits[first], weight


@numba.njit(cache=True)
def _tic_kernel(bits: np.ndarray, visit: np.ndarray, cnt: np.ndarray, n_recv: int) -> np.ndarray:
    """Visit ops by ascending M (multi-recv ops first); each recv takes the M of the first op holding it."""
    words = bits.shape[1]
    covered = np.zeros(words, dtype=np.uint64)
    mplus = np.full(n_recv, np.inf)
    left = n_recv
    for s in visit:
        if cnt[s] < 2:  # ops needing one recv come last in `visit` and leave M⁺ at +inf
            break
        value = cnt[s]
        for w in range(words):
            fresh = bits[s, w] & ~covered[w]
            covered[w] |= fresh
            while fresh != 0:
                mplus[w * 64 + _lowest_bit(fresh)] = value
                fresh &= fresh - np.uint64(1)
                left -= 1
        if left == 0:
            break
    return mplus


def tic_priority(graph: OpGraph) -> np.ndarray:
    """M⁺ (n_recv,) under TIC's oracle (every transfer 1, every op 0) with all recvs outstanding."""
    bits = graph.deps[graph.n_recv:]
    cnt = popcount(bits)
    visit = np.argsort(np.where(cnt > 1, cnt, graph.n_recv + 1), kind="stable")
    return _tic_kernel(bits, visit, cnt, graph.n_recv)


def tic(graph: OpGraph) -> np.ndarray:
    """TIC order (n_recv,): recvs by ascending M⁺ under unit transfer times, ties by index."""
    return np.lexsort((np.arange(graph.n_recv), tic_priority(graph)))


@numba.njit(cache=True)
def _tac_kernel(
    sets: np.ndarray, weight: np.ndarray, t: np.ndarray, ptr: np.ndarray, idx: np.ndarray
) -> np.ndarray:
    n_sets, words = sets.shape
    n_recv = t.size
    mset = np.zeros(n_sets)
    cnt = np.zeros(n_sets, dtype=np.int64)
    for r in range(n_recv):
        for k in range(ptr[r], ptr[r + 1]):
            mset[idx[k]] += t[r]
            cnt[idx[k]] += 1
    p = np.zeros(n_recv)
    multi = np.zeros(n_recv, dtype=np.int64)
    for r in range(n_recv):
        for k in range(ptr[r], ptr[r + 1]):
            s = idx[k]
            if cnt[s] == 1:
                p[r] += weight[s]
            else:
                multi[r] += 1
    alive = np.ones(n_recv, dtype=np.bool_)
    alive_bits = np.zeros(words, dtype=np.uint64)
    for r in range(n_recv):
        alive_bits[r >> 6] |= _bit(r)
    cand = np.zeros(n_recv, dtype=np.bool_)
    cand_bits = np.zeros(words, dtype=np.uint64)
    win_bits = np.zeros(words, dtype=np.uint64)
    order = np.empty(n_recv, dtype=np.int64)
    for step in range(n_recv):
        # Johnson's rule head: smallest M among {M <= P}, else largest P.
        best1 = np.inf
        best2 = -1.0
        for r in range(n_recv):
            if alive[r]:
                if t[r] <= p[r]:
                    if t[r] < best1:
                        best1 = t[r]
                elif p[r] > best2:
                    best2 = p[r]
        n_cand = 0
        head = -1
        cand_bits[:] = 0
        for r in range(n_recv):
            hit = False
            if alive[r]:
                if best1 < np.inf:
                    hit = t[r] <= p[r] and t[r] == best1
                else:
                    hit = p[r] == best2
            cand[r] = hit
            if hit:
                n_cand += 1
                cand_bits[r >> 6] |= _bit(r)
                if head < 0:
                    head = r
        if n_cand > 1:
            # tie: smallest M⁺ among the candidates, over sets still needing > 1 recv
            best = np.inf
            win_bits[:] = 0
            for s in range(n_sets):
                if cnt[s] > 1 and mset[s] <= best:
                    touch = False
                    for w in range(words):
                        if sets[s, w] & cand_bits[w]:
                            touch = True
                            break
                    if touch:
                        if mset[s] < best:
                            best = mset[s]
                            win_bits[:] = 0
                        for w in range(words):
                            win_bits[w] |= sets[s, w] & cand_bits[w]
            head = -1
            head_value = np.inf
            for r in range(n_recv):
                if cand[r]:
                    value = best if multi[r] > 0 and win_bits[r >> 6] & _bit(r) else np.inf
                    if head < 0 or value < head_value:
                        head = r
                        head_value = value
        order[step] = head
        alive[head] = False
        alive_bits[head >> 6] &= ~_bit(head)
        for k in range(ptr[head], ptr[head + 1]):
            s = idx[k]
            mset[s] -= t[head]
            cnt[s] -= 1
            if cnt[s] == 1:
                for w in range(words):
                    x = sets[s, w] & alive_bits[w]
                    if x != 0:
                        last = w * 64 + _lowest_bit(x)
                        p[last] += weight[s]
                        multi[last] -= 1
                        break
    return order


def _oracle_times(name: str, seconds: npt.ArrayLike, n: int) -> np.ndarray:
    """`seconds` checked as (n,) finite times >= 0, as float64."""
    seconds = validate.reals(name, seconds, 0.0, ndim=1)
    if seconds.size != n:
        raise ValueError(f"{name} must hold one time per op ({n}), got shape {seconds.shape}")
    return seconds


def tac(graph: OpGraph, recv_seconds: np.ndarray, compute_seconds: np.ndarray) -> np.ndarray:
    """TAC order (n_recv,) under the time oracle `recv_seconds` (n_recv,), `compute_seconds` (n_compute,)."""
    t = _oracle_times("recv_seconds", recv_seconds, graph.n_recv)
    c = _oracle_times("compute_seconds", compute_seconds, graph.n_compute)
    sets, weight = dependency_sets(graph, c)
    ptr, idx = _membership(sets, graph.n_recv)
    return _tac_kernel(sets, weight, t, ptr, idx)


@numba.njit(cache=True)
def _tac_recompute_kernel(needs: np.ndarray, t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """TAC with M, P and M⁺ recomputed from scratch over every op (rows of `needs`) before each selection."""
    n_ops, n_recv = needs.shape
    alive = np.ones(n_recv, dtype=np.bool_)
    m_ops = np.zeros(n_ops)
    count = np.zeros(n_ops, dtype=np.int64)
    p = np.zeros(n_recv)
    m_plus = np.zeros(n_recv)
    order = np.empty(n_recv, dtype=np.int64)
    for step in range(n_recv):
        p[:] = 0.0
        m_plus[:] = np.inf
        for o in range(n_ops):  # M(op), outstanding recvs per op, and P(r) from the ops r alone blocks
            m, cnt, last = 0.0, 0, -1
            for r in range(n_recv):
                if needs[o, r] and alive[r]:
                    m += t[r]
                    cnt += 1
                    last = r
            m_ops[o], count[o] = m, cnt
            if cnt == 1:
                p[last] += c[o]
        for o in range(n_ops):  # M⁺(r): the cheapest op needing r and another outstanding recv
            if count[o] > 1:
                for r in range(n_recv):
                    if needs[o, r] and alive[r] and m_ops[o] < m_plus[r]:
                        m_plus[r] = m_ops[o]
        best1, best2 = np.inf, -1.0  # Johnson's head: smallest M among {M <= P}, else largest P
        for r in range(n_recv):
            if alive[r]:
                if t[r] <= p[r]:
                    best1 = min(best1, t[r])
                else:
                    best2 = max(best2, p[r])
        head, head_value = -1, np.inf
        for r in range(n_recv):  # ties: smallest M⁺, then recv index
            short = best1 < np.inf and t[r] <= p[r] and t[r] == best1
            if alive[r] and (short or (best1 == np.inf and p[r] == best2)):
                if head < 0 or m_plus[r] < head_value:
                    head, head_value = r, m_plus[r]
        order[step] = head
        alive[head] = False
    return order


def tac_recompute(graph: OpGraph, recv_seconds: np.ndarray, compute_seconds: np.ndarray) -> np.ndarray:
    """TAC order (n_recv,) computed the naive way: before every selection, M, P and M⁺ are recomputed from
    scratch over every compute op and recv (a numba kernel over the dense (ops, recvs) dependency matrix:
    O(ops x recvs) per step, O(ops x recvs²) in all) — the recompute-every-step algorithm whose cost the
    survey criticises. Same rule and tie-breaks as `tac` (Johnson's head, then smallest M⁺, then recv
    index), so the same order; `tac` is the suite's incremental variant.

    Args:
        graph: the op DAG.
        recv_seconds: (n_recv,) s per transfer.
        compute_seconds: (n_compute,) s per compute op.
    """
    t = _oracle_times("recv_seconds", recv_seconds, graph.n_recv)
    c = _oracle_times("compute_seconds", compute_seconds, graph.n_compute)
    bits = np.unpackbits(graph.deps[graph.n_recv:].view(np.uint8), axis=1, bitorder="little")
    return _tac_recompute_kernel(np.ascontiguousarray(bits[:, : graph.n_recv].astype(np.bool_)), t, c)


def properties(graph: OpGraph, recv_seconds: npt.ArrayLike, compute_seconds: npt.ArrayLike,
               outstanding: npt.ArrayLike | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """M (n_compute,), P (n_recv,) and M⁺ (n_recv,) for the outstanding recvs (bool mask, default all).

    A direct dense evaluation of the definitions (O(ops x recvs)), for teaching and for checking
    the incremental kernel; entries for recvs not outstanding are NaN in P and M⁺.

    Args:
        graph: the op DAG.
        recv_seconds: (n_recv,) s per transfer.
        compute_seconds: (n_compute,) s per compute op.
        outstanding: (n_recv,) bool, the recvs still to send (None: all).
    """
    t = np.asarray(recv_seconds, dtype=np.float64)
    c = np.asarray(compute_seconds, dtype=np.float64)
    alive = np.ones(graph.n_recv, bool) if outstanding is None else np.asarray(outstanding, bool)
    bits = np.unpackbits(graph.deps[graph.n_recv:].view(np.uint8), axis=1, bitorder="little")
    needs = bits[:, : graph.n_recv].astype(bool)
    live = needs & alive
    m_ops = live @ t
    count = live.sum(axis=1)
    p = (live & (count == 1)[:, None]).T @ c
    multi = live & (count > 1)[:, None]
    m_plus = np.where(multi, m_ops[:, None], np.inf).min(axis=0, initial=np.inf)
    p, m_plus = np.where(alive, p, np.nan), np.where(alive, m_plus, np.nan)
    return m_ops, p, m_plus


def layer_order(graph: OpGraph) -> np.ndarray:
    """Recvs by their first consumer in program order (P3 / ByteScheduler-style layer priority)."""
    return np.lexsort((np.arange(graph.n_recv), graph.first_use))


def reverse_order(graph: OpGraph) -> np.ndarray:
    """Layer order reversed (last layer's parameters first)."""
    return layer_order(graph)[::-1].copy()


class Scheduler:
    """A transfer-order policy. `order` gives one order (n_recv,) that every worker follows every
    iteration, and `orders` repeats it; a policy that varies per worker and iteration overrides `orders`.
    `timed`: whether the order depends on the time oracle (a caller may skip measuring one otherwise)."""

    name: str
    timed: bool = False

    def order(self, graph: OpGraph, recv_seconds: np.ndarray, compute_seconds: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def orders(self, graph: OpGraph, recv_seconds: np.ndarray, compute_seconds: np.ndarray, workers: int,
               iterations: int, seed: int) -> np.ndarray:
        """Orders `(iterations, workers, n_recv)`.

        Args:
            graph: the op DAG.
            recv_seconds: (n_recv,) oracle seconds per transfer at the per-worker bandwidth share.
            compute_seconds: (n_compute,) oracle seconds per compute op.
            workers: workers, each with its own order (>= 1).
            iterations: iterations (>= 1).
            seed: seeds a policy that draws its orders (int >= 0).
        """
        return np.broadcast_to(self.order(graph, recv_seconds, compute_seconds), (iterations, workers, graph.n_recv))


@dataclasses.dataclass(frozen=True)
class RandomOrder(Scheduler):
    """Stock TensorFlow: no order is enforced, so a fresh permutation per iteration and per worker."""

    name: str = "random"

    def orders(self, graph: OpGraph, recv_seconds: np.ndarray, compute_seconds: np.ndarray, workers: int,
               iterations: int, seed: int) -> np.ndarray:
        """Orders `(iterations, workers, n_recv)`, each an independent permutation drawn from `seed`.

        Args:
            graph: the op DAG.
            recv_seconds: unused (random order is blind to times).
            compute_seconds: unused.
            workers: workers (>= 1).
            iterations: iterations (>= 1).
            seed: seeds the permutations (int >= 0).
        """
        keys = np.random.default_rng(seed).random((iterations, workers, graph.n_recv))
        return np.argsort(keys, axis=-1)


@dataclasses.dataclass(frozen=True)
class GraphRule(Scheduler):
    """An order read off the graph alone, blind to the oracle: `layer_order`, `reverse_order` or `tic`."""

    name: str
    rule: Callable[[OpGraph], np.ndarray]  # graph -> (n_recv,) recv ids in sending order

    def order(self, graph: OpGraph, recv_seconds: np.ndarray, compute_seconds: np.ndarray) -> np.ndarray:
        return self.rule(graph)


@dataclasses.dataclass(frozen=True)
class TAC(Scheduler):
    """`tac`: Johnson's rule on the oracle's times."""

    name: str = "tac"
    timed: bool = True

    def order(self, graph: OpGraph, recv_seconds: np.ndarray, compute_seconds: np.ndarray) -> np.ndarray:
        return tac(graph, recv_seconds, compute_seconds)


SCHEDULERS = {s.name: s for s in (RandomOrder(), GraphRule("layer", layer_order), GraphRule("reverse", reverse_order),
                                   GraphRule("tic", tic), TAC())}


def schedule(graph: OpGraph, scheduler: str, oracle: TimeOracle | None = None, workers: int = 1,
             iterations: int = 1, seed: int = 0, recv_seconds: np.ndarray | None = None,
             compute_seconds: np.ndarray | None = None) -> np.ndarray:
    """Orders `(iterations, workers, n_recv)` for `scheduler` in SCHEDULERS.

    "random" draws a fresh permutation per iteration and per worker (stock TensorFlow: no order is
    enforced); the others give every worker the same order every iteration. TAC uses the oracle's
    times at the per-worker bandwidth share, unless `recv_seconds` / `compute_seconds` are given
    (e.g. a perturbed or measured oracle).

    Args:
        graph: the op DAG.
        scheduler: a `SCHEDULERS` name.
        oracle: the analytic time oracle (None: `TimeOracle()`).
        workers: workers sharing each server link (>= 1).
        iterations: iterations (>= 1).
        seed: seeds the random orders (int >= 0).
        recv_seconds: (n_recv,) seconds per transfer, replacing the oracle's (None: the oracle's).
        compute_seconds: (n_compute,) seconds per compute op, replacing the oracle's (None: the oracle's).
    """
    validate.instance("graph", graph, OpGraph, "a graph.OpGraph")
    validate.choice("scheduler", scheduler, SCHEDULERS)
    if oracle is not None:
        validate.instance("oracle", oracle, TimeOracle, "an ordering.TimeOracle or None")
    validate.integer("workers", workers, low=1)
    validate.integer("iterations", iterations, low=1)
    validate.seed("seed", seed)
    chosen = SCHEDULERS[scheduler]
    t, c = recv_seconds, compute_seconds
    if chosen.timed:
        oracle = oracle or TimeOracle()
        t = oracle.recv_seconds(graph, share=workers) if t is None else t
        c = oracle.compute_seconds(graph) if c is None else c
    # An untimed scheduler gets None for times it never reads (the oracle is only consulted for a timed one).
    return chosen.orders(graph, t, c, workers, iterations, seed)  # type: ignore[arg-type]
