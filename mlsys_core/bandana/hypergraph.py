"""The hypergraph of past requests over one table's vectors, and the fanout a placement gives it.

One vertex per vector and one hyperedge per request (the vectors it read), stored as CSR. A placement
is judged on it by the blocks its requests read (`blocks_read`, the sum of connectivities: KaHyPar's
km1 + #edges) and by the *probabilistic fanout* SHP minimises (`probabilistic_fanout`): sum over
blocks of 1 - (1-p)^n, n the request's vectors in the block (p = 1 is plain fanout).
"""

from __future__ import annotations

import dataclasses

import numba
import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.placement import Placement
from mlsys_core.bandana.trace import Trace


@dataclasses.dataclass(frozen=True, eq=False)
class Hypergraph:
    """Hyperedges (requests) as CSR over vertices (vectors): edge e has pins[edge_ptr[e]:edge_ptr[e+1]]."""

    num_vertices: int  # vectors of the table
    edge_ptr: np.ndarray  # (num_edges + 1,) where each hyperedge's pins start
    pins: np.ndarray  # vertex ids of every hyperedge, one after the other

    def __post_init__(self):
        """Whole-number arrays in range, as int64 (the SHP kernels index with them unchecked)."""
        n = validate.integer("num_vertices", self.num_vertices, 0)
        pins = validate.integers("pins", self.pins, 0)
        if pins.size and pins.max() >= n:
            i = int(np.argmax(pins >= n))
            raise ValueError(f"pins must be vertex ids < num_vertices ({n}); pins[{i}] is {int(pins[i])}")
        ptr = validate.integers("edge_ptr", self.edge_ptr, 0, pins.size)
        if ptr.size == 0 or ptr[0] != 0 or ptr[-1] != pins.size or np.any(np.diff(ptr) < 0):
            raise ValueError(f"edge_ptr must rise from 0 to the {pins.size} pins (num_edges + 1 offsets), "
                             f"got {ptr!r}")
        object.__setattr__(self, "pins", pins)
        object.__setattr__(self, "edge_ptr", ptr)

    @property
    def num_edges(self) -> int:
        """Hyperedges (requests)."""
        return self.edge_ptr.size - 1

    @staticmethod
    def from_trace(trace: Trace, table: str | None = None) -> Hypergraph:
        """The hypergraph of one table's lookups (`table` may be omitted for a one-table trace)."""
        validate.instance("trace", trace, Trace)
        if table is None:
            if len(trace.tables) != 1:
                raise ValueError(f"name the table: the trace has tables {[t.name for t in trace.tables]}")
            table = trace.tables[0].name
        t = trace.only_table(table)
        return Hypergraph(t.tables[0].num_vectors, t.request_ptr, t.vector.astype(np.int64))

    @staticmethod
    def from_edges(num_vertices: int, edges) -> Hypergraph:
        """From a list of vertex-id sequences (whole numbers in [0, num_vertices))."""
        n = validate.integer("num_vertices", num_vertices, 0)
        edges = [validate.integers(f"edges[{i}]", e, 0, n - 1) for i, e in enumerate(edges)]
        sizes = np.array([e.size for e in edges], dtype=np.int64)
        pins = np.concatenate(edges) if edges else np.zeros(0, np.int64)
        return Hypergraph(num_vertices, np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), pins)


@numba.njit(cache=True)
def _connectivity_sum(edge_ptr, pins, block_of, num_blocks, p):
    """(sum over edges of blocks touched, probabilistic fanout with parameter p)."""
    cnt = np.zeros(num_blocks, dtype=np.int64)
    w = 1.0 - p
    total = 0
    prob = 0.0
    for e in range(edge_ptr.size - 1):
        for i in range(edge_ptr[e], edge_ptr[e + 1]):
            b = block_of[pins[i]]
            if cnt[b] == 0:
                total += 1
            cnt[b] += 1
        for i in range(edge_ptr[e], edge_ptr[e + 1]):
            b = block_of[pins[i]]
            if cnt[b] > 0:
                prob += 1.0 - w ** cnt[b]
                cnt[b] = 0
    return total, prob


def _check_pair(graph: Hypergraph, placement: Placement) -> None:
    validate.instance("graph", graph, Hypergraph)
    validate.instance("placement", placement, Placement)
    if placement.block_of.size != graph.num_vertices:
        raise ValueError(f"placement covers {placement.block_of.size} vectors, the hypergraph has "
                         f"{graph.num_vertices}")


def blocks_read(graph: Hypergraph, placement: Placement) -> int:
    """Total blocks the hyperedges read with no cache: sum of connectivities (= km1 + #edges)."""
    _check_pair(graph, placement)
    return int(_connectivity_sum(graph.edge_ptr, graph.pins, placement.block_of, placement.num_blocks, 1.0)[0])


def probabilistic_fanout(graph: Hypergraph, placement: Placement, p: float = 0.5) -> float:
    """Mean over hyperedges of sum_b 1 - (1-p)^{n_b}, p in (0, 1]."""
    _check_pair(graph, placement)
    validate.number("p", p, 0.0, 1.0, low_open=True)
    return float(_connectivity_sum(graph.edge_ptr, graph.pins, placement.block_of, placement.num_blocks, p)[1]) / max(
        graph.num_edges, 1
    )
