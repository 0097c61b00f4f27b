"""Embedding tables and a time-ordered request stream with Zipf popularity and co-access communities.

A request reads a set of vectors from one or more tables. Vectors of a table belong to latent
*communities* (vectors a request tends to read together, e.g. posts of one topic); the ids of a
community are scattered over the id space, so id order (sequential placement) does not reveal them
but the request history (SHP) and, weakly, the vector values (k-means) do. Defaults follow the
survey's two table classes: post tables take ~95% of lookups, user tables hold larger vectors and
~75% of the bytes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.tables import EmbeddingTable, default_tables
from mlsys_core.bandana.trace import Trace


@dataclasses.dataclass(frozen=True)
class WorkloadConfig:
    """A request stream over `tables`: `num_requests` requests in time order, reproducible from `seed`."""

    tables: tuple[EmbeddingTable, ...] = dataclasses.field(default_factory=default_tables)
    num_requests: int = 100_000
    seed: int = 0

    def __post_init__(self) -> None:
        validate.instance("tables", self.tables, tuple, "a tuple of EmbeddingTable")
        if not self.tables:
            raise ValueError(f"tables must be a non-empty tuple of EmbeddingTable, got {self.tables!r}")
        for i, t in enumerate(self.tables):
            validate.instance(f"tables[{i}]", t, EmbeddingTable)
        names = [t.name for t in self.tables]
        if len(set(names)) != len(names):
            raise ValueError(f"table names must be unique, got {names}")
        validate.integer("num_requests", self.num_requests, 1)
        validate.seed("seed", self.seed)


def _zipf_cdf(n: int, exponent: float) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    cdf = np.cumsum(w)
    return cdf / cdf[-1]


def _draw(cdf: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Ranks 0..len(cdf)-1 drawn by inverse CDF (vectorised)."""
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1)


def community_of(table: EmbeddingTable, seed: int) -> np.ndarray:
    """(num_vectors,) int64: each vector's community; communities are scattered over the id space."""
    validate.instance("table", table, EmbeddingTable)
    rng = np.random.default_rng([validate.seed("seed", seed), 1, len(table.name), table.num_vectors])
    return (rng.permutation(table.num_vectors) % table.num_communities).astype(np.int64)


def _table_lookups(table: EmbeddingTable, num_requests: int, seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(request index, vector id) arrays of one table's lookups, requests in time order."""
    rng = np.random.default_rng([seed, 2, index])
    community = community_of(table, seed)
    members = np.argsort(community, kind="stable")  # vectors grouped by community
    sizes = np.bincount(community, minlength=table.num_communities)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    counts = rng.poisson(table.lookups_per_request, num_requests)
    request = np.repeat(np.arange(num_requests, dtype=np.int64), counts)
    n = request.size
    # Each request has one community in this table (a random community ranking, Zipf over it).
    community_rank = rng.permutation(table.num_communities)
    req_community = community_rank[_draw(_zipf_cdf(table.num_communities, table.community_zipf), rng, num_requests)]
    c = req_community[request]
    # Within a community: Zipf over its members (rank r -> r-th member; sizes differ by at most one).
    max_size = int(sizes.max())
    within = _draw(_zipf_cdf(max_size, table.vector_zipf), rng, n)
    within = np.minimum(within, sizes[c] - 1)
    from_community = members[starts[c] + within]
    # Background lookups: Zipf over the whole table under a random ranking.
    ranking = rng.permutation(table.num_vectors)
    background = ranking[_draw(_zipf_cdf(table.num_vectors, table.vector_zipf), rng, n)]
    vector = np.where(rng.random(n) < table.affinity, from_community, background)
    # A request reads a vector once: drop repeats inside a request.
    key = request * table.num_vectors + vector
    _, first = np.unique(key, return_index=True)
    first.sort()
    return request[first], vector[first]


def generate_trace(config: WorkloadConfig) -> Trace:
    """The request stream of `config` as a `Trace` (lookups ordered by request, i.e. by time)."""
    validate.instance("config", config, WorkloadConfig)
    parts = [_table_lookups(t, config.num_requests, config.seed, i) for i, t in enumerate(config.tables)]
    request = np.concatenate([p[0] for p in parts])
    table = np.concatenate([np.full(p[0].size, i, dtype=np.int32) for i, p in enumerate(parts)])
    vector = np.concatenate([p[1] for p in parts])
    order = np.argsort(request, kind="stable")
    return Trace.from_lookups(config.tables, request[order], table[order], vector[order])


def table_vectors(table: EmbeddingTable, seed: int) -> np.ndarray:
    """(num_vectors, dim) vector values: community centroid + `semantic_noise` x Gaussian noise."""
    validate.instance("table", table, EmbeddingTable)
    rng = np.random.default_rng([validate.seed("seed", seed), 3, len(table.name), table.num_vectors])
    centroids = rng.standard_normal((table.num_communities, table.dim))
    noise = rng.standard_normal((table.num_vectors, table.dim))
    values = centroids[community_of(table, seed)] + table.semantic_noise * noise
    return values.astype(table.dtype)
