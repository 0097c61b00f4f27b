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
from mlsys_core.bandana.trace import Trace

BLOCK_BYTES = 4096  # NVM read granularity (bytes)


@dataclasses.dataclass(frozen=True)
class EmbeddingTable:
    """One embedding table of vectors stored in 4 KB blocks, and how requests read it.

    Args:
        name: the table's name (unique in a workload).
        num_vectors: vectors (int >= 1).
        dim: values per vector (int >= 1; a vector must fit a block).
        dtype: the values' NumPy dtype name.
        lookups_per_request: the mean lookups a request makes in this table (Poisson, > 0).
        num_communities: latent communities of vectors read together (1 to num_vectors).
        community_zipf: the Zipf exponent communities are drawn with (>= 0).
        vector_zipf: the Zipf exponent of vectors within a community, and over the whole table (>= 0).
        affinity: the chance a lookup comes from the request's community, else from the whole table
            (Zipf `vector_zipf` over a random ranking), in [0, 1].
        semantic_noise: the spread of vector values around their community's centroid (the k-means
            signal, >= 0).
    """

    name: str
    num_vectors: int
    dim: int
    dtype: str = "float32"
    lookups_per_request: float = 1.0
    num_communities: int = 512
    community_zipf: float = 0.9
    vector_zipf: float = 0.9
    affinity: float = 0.8
    semantic_noise: float = 1.0

    def __post_init__(self):
        validate.string("name", self.name)
        for field in ("num_vectors", "dim", "num_communities"):
            validate.integer(field, getattr(self, field), 1)
        validate.string("dtype", self.dtype)
        try:
            np.dtype(self.dtype)
        except TypeError as e:
            raise ValueError(f"dtype must be a NumPy dtype name, got {self.dtype!r}") from e
        if self.bytes_per_vector > BLOCK_BYTES:
            raise ValueError(
                f"a vector of table {self.name!r} takes {self.bytes_per_vector} bytes "
                f"(dim {self.dim} x {self.dtype}), larger than a {BLOCK_BYTES}-byte block"
            )
        if self.num_communities > self.num_vectors:
            raise ValueError(f"num_communities must be <= num_vectors ({self.num_vectors}), got {self.num_communities}")
        validate.positive("lookups_per_request", self.lookups_per_request)
        for field in ("community_zipf", "vector_zipf", "semantic_noise"):
            validate.number(field, getattr(self, field), 0.0)
        validate.probability("affinity", self.affinity)

    @property
    def bytes_per_vector(self) -> int:
        """Bytes of one vector."""
        return self.dim * np.dtype(self.dtype).itemsize

    @property
    def block_capacity(self) -> int:
        """Vectors per 4 KB block."""
        return BLOCK_BYTES // self.bytes_per_vector

    @property
    def num_blocks(self) -> int:
        """Blocks the table fills, packed full."""
        return -(-self.num_vectors // self.block_capacity)

    @property
    def table_bytes(self) -> int:
        """Bytes of all its vectors."""
        return self.num_vectors * self.bytes_per_vector


def default_tables(scale: float = 1.0) -> tuple[EmbeddingTable, ...]:
    """A post table (64 B vectors, ~95% of lookups) and a user table (128 B vectors, ~75% of bytes)."""
    validate.positive("scale", scale)
    n = max(1024, int(32768 * scale))
    post = EmbeddingTable("post", n, 16, lookups_per_request=19.0, num_communities=max(4, n // 64))
    user = EmbeddingTable(
        "user", 3 * n // 2, 32, lookups_per_request=1.0, num_communities=max(4, 3 * n // 128),
        affinity=0.5,
    )
    return post, user


@dataclasses.dataclass(frozen=True)
class WorkloadConfig:
    """A request stream over `tables`: `num_requests` requests in time order, reproducible from `seed`."""

    tables: tuple[EmbeddingTable, ...] = dataclasses.field(default_factory=default_tables)
    num_requests: int = 100_000
    seed: int = 0

    def __post_init__(self):
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


def _draw(cdf: np.ndarray, rng: np.random.Generator, size) -> np.ndarray:
    """Ranks 0..len(cdf)-1 drawn by inverse CDF (vectorised)."""
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1)


def community_of(table: EmbeddingTable, seed: int) -> np.ndarray:
    """(num_vectors,) int64: each vector's community; communities are scattered over the id space."""
    validate.instance("table", table, EmbeddingTable)
    rng = np.random.default_rng([validate.seed("seed", seed), 1, len(table.name), table.num_vectors])
    return (rng.permutation(table.num_vectors) % table.num_communities).astype(np.int64)


def _table_lookups(table: EmbeddingTable, num_requests: int, seed: int, index: int):
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
