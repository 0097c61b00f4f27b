"""Embedding tables: how many vectors, of what size, how they fill 4 KB blocks, and how requests read them.

A table's reading pattern (lookups per request, co-access communities, Zipf popularity, affinity) drives the
workload generator (`workload`); its sizes drive placement, the cache and the block store.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate

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

    def __post_init__(self) -> None:
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
