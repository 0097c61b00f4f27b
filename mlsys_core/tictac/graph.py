"""The op DAG TicTac schedules: recv ops (parameter transfers, with bytes) and compute ops (with FLOPs).

Nodes `0 .. n_recv-1` are recvs, nodes `n_recv .. n_recv+n_compute-1` are compute ops. Edges point
from producer to consumer. `deps(op)` — the set of recvs an op needs, transitively — is kept as a
bitset: row `i` of `OpGraph.deps` (shape `(n_nodes, words)`, uint64) has bit `r` set iff recv `r`
reaches node `i`. A numba kernel fills it in one pass over a topological order.
"""

from __future__ import annotations

import dataclasses
import functools

import numba
import numpy as np

from mlsys_core import validate


@numba.njit(cache=True)
def _deps_kernel(n_recv, n_nodes, topo, pred_ptr, pred_idx, words):
    bits = np.zeros((n_nodes, words), dtype=np.uint64)
    for r in range(n_recv):
        bits[r, r >> 6] = np.uint64(1) << np.uint64(r & 63)
    for v in topo:
        for k in range(pred_ptr[v], pred_ptr[v + 1]):
            p = pred_idx[k]
            for w in range(words):
                bits[v, w] |= bits[p, w]
    return bits


def _csr(keys: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Group `values` by `keys` in 0..n-1: (indptr (n+1,), values sorted by key, stable)."""
    order = np.argsort(keys, kind="stable")
    indptr = np.zeros(n + 1, dtype=np.int64)
    indptr[1:] = np.cumsum(np.bincount(keys, minlength=n))
    return indptr, values[order].astype(np.int64)


def popcount(bits: np.ndarray) -> np.ndarray:
    """Number of set bits per row of a uint64 bitset matrix `(rows, words)` -> `(rows,)` int64."""
    return np.bitwise_count(bits).sum(axis=-1, dtype=np.int64)


@dataclasses.dataclass(frozen=True, eq=False)
class OpGraph:
    """A validated DAG of `n_recv` recv ops and `len(compute_flops)` compute ops.

    `recv_bytes` (n_recv,) bytes each parameter transfer carries; `compute_flops` (n_compute,)
    estimated work per compute op; `src`, `dst` (n_edges,) node ids; names are for display.
    `gradient_op` (n_recv,) compute-op index (0-based among compute ops) whose finish makes recv r's
    gradient ready, -1 if it is ready at the start; empty for a graph that pushes nothing (inference).
    Raises ValueError on a cycle, on an edge into a recv, or on a compute op that no recv reaches.
    """

    recv_bytes: np.ndarray
    compute_flops: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    recv_names: tuple[str, ...] = ()
    compute_names: tuple[str, ...] = ()
    name: str = "graph"
    gradient_op: np.ndarray = ()

    def __post_init__(self):
        validate.string("name", self.name)
        rb = validate.reals("recv_bytes", self.recv_bytes, 0.0, ndim=1)
        cf = validate.reals("compute_flops", self.compute_flops, 0.0, ndim=1)
        if rb.size == 0:
            raise ValueError("recv_bytes must name at least one recv op, got none")
        n = rb.size + cf.size
        src = validate.integers("src", self.src, 0, n - 1)
        dst = validate.integers("dst", self.dst, 0, n - 1)
        if src.shape != dst.shape:
            raise ValueError(f"src and dst must have the same length, got {src.size} and {dst.size}")
        if np.any(dst < rb.size):
            bad = int(dst[dst < rb.size][0])
            raise ValueError(f"dst must hold compute-op ids >= {rb.size}: an edge points into recv {bad}, and recv "
                             "ops have no inputs")
        grad = validate.integers("gradient_op", self.gradient_op, -1, cf.size - 1)
        if grad.size and grad.size != rb.size:
            raise ValueError(f"gradient_op must hold one compute-op index in [-1, {cf.size}) per recv "
                             f"({rb.size}), got {grad.size} entries in [{grad.min()}, {grad.max()}]")
        for attr, value in (("recv_bytes", rb), ("compute_flops", cf), ("src", src), ("dst", dst),
                            ("gradient_op", grad)):
            value.setflags(write=False)
            object.__setattr__(self, attr, value)
        if self.recv_names and len(self.recv_names) != rb.size:
            raise ValueError(f"recv_names must have {rb.size} entries, got {len(self.recv_names)}")
        if self.compute_names and len(self.compute_names) != cf.size:
            raise ValueError(f"compute_names must have {cf.size} entries, got {len(self.compute_names)}")
        topo = self._topological_order()
        object.__setattr__(self, "topo", topo)
        reached = popcount(self.deps[rb.size:]) > 0
        if not reached.all():
            op = int(np.flatnonzero(~reached)[0])
            label = self.compute_names[op] if self.compute_names else f"compute op {op}"
            raise ValueError(f"{label} (node {rb.size + op}) has no path from any recv op")

    @property
    def n_recv(self) -> int:
        return self.recv_bytes.size

    @property
    def has_gradients(self) -> bool:
        """True for a training graph: every recv has a gradient to push back."""
        return self.gradient_op.size > 0

    @property
    def n_compute(self) -> int:
        return self.compute_flops.size

    @property
    def n_nodes(self) -> int:
        return self.n_recv + self.n_compute

    @functools.cached_property
    def preds(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR of predecessors: (indptr (n_nodes+1,), node ids)."""
        return _csr(self.dst, self.src, self.n_nodes)

    @functools.cached_property
    def succs(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR of successors: (indptr (n_nodes+1,), node ids)."""
        return _csr(self.src, self.dst, self.n_nodes)

    def _topological_order(self) -> np.ndarray:
        """Program order (node ids) when every edge points forward, else Kahn's algorithm over the
        CSR; ValueError naming nodes left on a cycle."""
        if np.all(self.src < self.dst):
            return np.arange(self.n_nodes, dtype=np.int64)
        indeg = np.bincount(self.dst, minlength=self.n_nodes)
        ptr, idx = self.succs
        order = _kahn(indeg.astype(np.int64), ptr, idx)
        if order.size < self.n_nodes:
            left = np.setdiff1d(np.arange(self.n_nodes), order)[:5].tolist()
            raise ValueError(f"graph has a cycle (nodes on or after it include {left})")
        return order

    @functools.cached_property
    def deps(self) -> np.ndarray:
        """Bitset `(n_nodes, ceil(n_recv/64))` uint64: bit r of row i set iff recv r reaches node i."""
        ptr, idx = self.preds
        bits = _deps_kernel(self.n_recv, self.n_nodes, self.topo, ptr, idx, (self.n_recv + 63) // 64)
        bits.setflags(write=False)
        return bits

    @functools.cached_property
    def first_use(self) -> np.ndarray:
        """Per recv, the id of its first consumer in program order (n_nodes if unused): layer order."""
        first = np.full(self.n_recv, self.n_nodes, dtype=np.int64)
        from_recv = self.src < self.n_recv
        np.minimum.at(first, self.src[from_recv], self.dst[from_recv])
        return first


@numba.njit(cache=True)
def _kahn(indeg, ptr, idx):
    n = indeg.size
    order = np.empty(n, dtype=np.int64)
    stack = np.empty(n, dtype=np.int64)
    top = 0
    for v in range(n - 1, -1, -1):
        if indeg[v] == 0:
            stack[top] = v
            top += 1
    k = 0
    while top > 0:
        top -= 1
        v = stack[top]
        order[k] = v
        k += 1
        for j in range(ptr[v], ptr[v + 1]):
            u = idx[j]
            indeg[u] -= 1
            if indeg[u] == 0:
                stack[top] = u
                top += 1
    return order[:k]


def random_graph(n_recv: int, n_compute: int, seed: int = 0, max_preds: int = 3,
                 max_bytes: float = 1e6, max_flops: float = 1e7, gradients: bool = False) -> OpGraph:
    """A random DAG for tests and exercises: op i reads 1..max_preds earlier nodes (at least one),
    so node ids are a topological order and every op is reached from some recv. With `gradients`,
    each recv's gradient comes from a random compute op (drawn last: the rest of the graph is the same).

    Args:
        n_recv: recv ops (>= 1).
        n_compute: compute ops (>= 0).
        seed: seeds the graph (int >= 0).
        max_preds: most inputs per op (>= 1).
        max_bytes: bytes of the largest transfer; each is uniform in [5%, 100%] of it.
        max_flops: FLOPs of the largest op; each is uniform in [5%, 100%] of it.
        gradients: give each recv a gradient-producing op (a training graph).
    """
    validate.integer("n_recv", n_recv, 1)
    validate.integer("n_compute", n_compute, 0)
    validate.integer("max_preds", max_preds, 1)
    validate.positive("max_bytes", max_bytes)
    validate.positive("max_flops", max_flops)
    if validate.boolean("gradients", gradients) and n_compute == 0:
        raise ValueError("gradients=True needs n_compute >= 1 (an op that makes each gradient), got n_compute=0")
    rng = np.random.default_rng(validate.seed("seed", seed))
    src, dst = [], []
    for i in range(n_compute):
        node = n_recv + i
        k = int(rng.integers(1, max_preds + 1))
        preds = np.unique(rng.integers(0, node, size=k))
        src.extend(preds.tolist())
        dst.extend([node] * preds.size)
    recv_bytes = rng.uniform(0.05, 1.0, n_recv) * max_bytes
    compute_flops = rng.uniform(0.05, 1.0, n_compute) * max_flops
    return OpGraph(
        recv_bytes=recv_bytes, compute_flops=compute_flops,
        src=np.array(src, dtype=np.int64), dst=np.array(dst, dtype=np.int64),
        name=f"random({n_recv}, {n_compute}, seed={seed})",
        gradient_op=rng.integers(0, n_compute, n_recv) if gradients else (),
    )


def _log_range(name: str, value) -> np.ndarray:
    """`value` checked as (low, high) with 0 < low <= high, the ends of a log-uniform draw."""
    ends = validate.reals(name, value, ndim=1)
    if ends.shape != (2,) or not 0 < ends[0] <= ends[1]:
        raise ValueError(f"{name} must be (low, high) with 0 < low <= high, got {value!r}")
    return ends


def layered_graph(n_recv: int = 6, layers: int = 4, max_width: int = 3, seed: int = 0,
                  bytes_range: tuple[float, float] = (1e4, 1e6),
                  flops_range: tuple[float, float] = (1e5, 1e8)) -> OpGraph:
    """A random layered DAG, the family on which the transfer order has real choices.

    `layers` layers of 1..`max_width` compute ops (program order: layer by layer); every op after
    the first layer reads 1-2 ops of the layer before; each recv is read by one op (the first-layer
    ops get one each, the rest land on ops drawn uniformly), so branches of one layer wait on
    different recvs. Bytes and FLOPs are log-uniform over `bytes_range` / `flops_range` (two decades
    and three by default), so branches differ widely in cost. Recv ids are shuffled: they say nothing
    about program order.

    Args:
        n_recv: recv ops (>= max_width).
        layers: compute layers (>= 1).
        max_width: most ops per layer (>= 1).
        seed: seeds the graph (int >= 0).
        bytes_range: (low, high) bytes per transfer, log-uniform.
        flops_range: (low, high) FLOPs per op, log-uniform.
    """
    validate.integer("layers", layers, low=1)
    validate.integer("max_width", max_width, low=1)
    validate.seed("seed", seed)
    if validate.integer("n_recv", n_recv, low=1) < max_width:
        raise ValueError(f"n_recv must be >= max_width ({max_width}): each first-layer op reads a recv of its own, "
                         f"got {n_recv}")
    bytes_range, flops_range = _log_range("bytes_range", bytes_range), _log_range("flops_range", flops_range)
    rng = np.random.default_rng(seed)
    widths = rng.integers(1, max_width + 1, layers)
    start = np.concatenate([[0], np.cumsum(widths)])
    n_compute = int(start[-1])
    src, dst = [], []
    for layer in range(1, layers):
        for op in range(start[layer], start[layer + 1]):
            prev = np.arange(start[layer - 1], start[layer])
            k = int(rng.integers(1, min(2, prev.size) + 1))
            for p in rng.choice(prev, size=k, replace=False):
                src.append(n_recv + int(p)), dst.append(n_recv + op)
    owner = np.concatenate([np.arange(widths[0]), rng.integers(0, n_compute, n_recv - widths[0])])
    recv_ids = rng.permutation(n_recv)
    for r, op in zip(recv_ids, owner):
        src.append(int(r)), dst.append(n_recv + int(op))
    log_uniform = lambda lo_hi, n: np.exp(rng.uniform(np.log(lo_hi[0]), np.log(lo_hi[1]), n))  # noqa: E731
    return OpGraph(recv_bytes=log_uniform(bytes_range, n_recv), compute_flops=log_uniform(flops_range, n_compute),
                   src=np.array(src, dtype=np.int64), dst=np.array(dst, dtype=np.int64),
                   name=f"layered({n_recv} recvs, {layers} layers, seed={seed})")
