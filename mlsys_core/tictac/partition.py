"""ByteScheduler-style tensor partitioning: slice every parameter into partitions, send them by priority.

P3 and ByteScheduler (Peng et al., SOSP 2019) slice large tensors into partitions of about
`partition_params` parameters (ByteScheduler's default: 1 M) so that one huge tensor neither blocks
the link for long nor sits on a single server, and they bound the bytes in flight with a credit
window (`credit_params`, default 4 M parameters: four partitions). Partitions go by priority — the
layer that first uses their tensor, then their offset inside it (layer order over partitions).

`partition(graph)` returns a `PartitionedGraph`: an `OpGraph` whose recvs are the partitions (a
consumer of a tensor reads every partition of it; a training graph's partitions carry their tensor's
gradient op), with `owner` and `offset` mapping each partition back. TIC and TAC run on it unchanged.
`split` / `reassemble` do the same to a real array's bytes. The credit window's effect is simulated by
`simulate.simulate(..., credit_bytes=...)`.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.tictac.graph import OpGraph

PARTITION_PARAMS = 1_000_000  # ByteScheduler's default partition size (parameters)
CREDIT_PARAMS = 4_000_000  # ByteScheduler's default credit window (parameters in flight)


def split(array, partition_params: int = PARTITION_PARAMS) -> list[np.ndarray]:
    """The flattened `array` cut into consecutive slices of at most `partition_params` elements."""
    validate.integer("partition_params", partition_params, low=1)
    flat = np.ascontiguousarray(array).reshape(-1)
    return [flat[i:i + partition_params] for i in range(0, max(flat.size, 1), partition_params)]


def reassemble(parts, shape, dtype=None) -> np.ndarray:
    """The tensor of `shape` from its partitions (in offset order)."""
    flat = np.concatenate([np.asarray(p).reshape(-1) for p in parts])
    return flat.astype(dtype or flat.dtype, copy=False).reshape(shape)


@dataclasses.dataclass(frozen=True, eq=False)
class PartitionedGraph:
    """`graph`: the op DAG with one recv per partition; `owner` (n_parts,) the original recv of each
    partition, `offset` (n_parts,) its first parameter inside that tensor, `params` (n_parts,) its size."""

    graph: OpGraph  # one recv per partition
    owner: np.ndarray  # (n_parts,) the original recv of each partition
    offset: np.ndarray  # (n_parts,) its first parameter inside that tensor
    params: np.ndarray  # (n_parts,) its size in parameters
    source: OpGraph  # the unpartitioned graph

    @property
    def n_parts(self) -> int:
        return self.owner.size


def partition(graph: OpGraph, partition_params: int = PARTITION_PARAMS, bytes_per_param: int = 4) -> PartitionedGraph:
    """Slice each recv of `graph` into ceil(params / partition_params) partitions (at least one)."""
    validate.instance("graph", graph, OpGraph, "a graph.OpGraph")
    validate.integer("partition_params", partition_params, low=1)
    validate.integer("bytes_per_param", bytes_per_param, low=1)
    params = np.ceil(graph.recv_bytes / bytes_per_param).astype(np.int64)
    counts = np.maximum(1, -(-params // partition_params))
    owner = np.repeat(np.arange(graph.n_recv), counts)
    first = np.repeat(np.cumsum(counts) - counts, counts)
    offset = (np.arange(owner.size) - first) * partition_params
    sizes = np.minimum(partition_params, params[owner] - offset)
    sizes = np.where(params[owner] == 0, 0, sizes)
    shift = owner.size - graph.n_recv
    from_recv = graph.src < graph.n_recv
    starts = np.cumsum(counts) - counts
    # a consumer of recv r reads every partition of r; compute-to-compute edges keep their ops
    rep = counts[graph.src[from_recv]]
    part_src = np.repeat(starts[graph.src[from_recv]], rep) + _ranges(rep)
    part_dst = np.repeat(graph.dst[from_recv] + shift, rep)
    src = np.concatenate([part_src, graph.src[~from_recv] + shift])
    dst = np.concatenate([part_dst, graph.dst[~from_recv] + shift])
    names = tuple(f"{graph.recv_names[o]}[{k}]" for o, k in zip(owner, owner_index(counts))) if graph.recv_names else ()
    part_bytes = sizes * (graph.recv_bytes[owner] / np.maximum(params[owner], 1))
    pg = OpGraph(recv_bytes=part_bytes, compute_flops=graph.compute_flops, src=src, dst=dst, recv_names=names,
                 compute_names=graph.compute_names, name=f"{graph.name}, partitions of {partition_params:,} params",
                 gradient_op=graph.gradient_op[owner] if graph.has_gradients else ())
    return PartitionedGraph(pg, owner, offset, sizes, graph)


def _ranges(counts: np.ndarray) -> np.ndarray:
    """Concatenated aranges: [0..c0-1, 0..c1-1, ...]."""
    total = int(counts.sum())
    return np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)


def owner_index(counts: np.ndarray) -> np.ndarray:
    """Per partition, its index inside its tensor (0, 1, ... per owner)."""
    return _ranges(np.asarray(counts, dtype=np.int64))


def bytescheduler_order(pg: PartitionedGraph) -> np.ndarray:
    """ByteScheduler's priority: partitions by the layer that first uses their tensor, then offset."""
    first = pg.graph.first_use
    return np.lexsort((pg.offset, pg.owner, first))
