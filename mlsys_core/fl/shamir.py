"""Shamir t-of-n secret sharing over GF(2^31 - 1), the sharing Secure Aggregation recovers drop-outs with.

A secret's bytes are read as little-endian 30-bit chunks (each below the prime), and each chunk is the
constant term of its own random polynomial of degree t - 1; the share of party i is every polynomial
evaluated at x = i. Any t shares give the secret back by Lagrange interpolation at 0; t - 1 shares are
uniformly distributed whatever the secret, so they reveal nothing about it. Everything is vectorised over
chunks (and, when reconstructing, over secrets). The random coefficients are an argument: the caller
draws them from its randomness source (`crypto.SystemRandomness` by default), so these functions are pure.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np

PRIME = 2**31 - 1  # a Mersenne prime: a product of two field elements fits in int64
CHUNK_BITS = 30  # a secret is shared as chunks of 30 bits, each on its own polynomial


def chunks_of(nbytes: int) -> int:
    """How many 30-bit chunks hold `nbytes` bytes."""
    return -(-8 * nbytes // CHUNK_BITS)


def secret_to_field(secret: bytes) -> np.ndarray:
    """The bytes of a secret as little-endian 30-bit chunks (int64, each < 2^30 < PRIME)."""
    v = int.from_bytes(secret, "little")
    mask = (1 << CHUNK_BITS) - 1
    return np.array([(v >> (CHUNK_BITS * i)) & mask for i in range(chunks_of(len(secret)))], np.int64)


def field_to_secret(chunks: np.ndarray, nbytes: int) -> bytes:
    """The `nbytes` bytes whose chunks are `chunks` (the inverse of `secret_to_field`)."""
    v = sum(int(c) << (CHUNK_BITS * i) for i, c in enumerate(chunks))
    return (v & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, "little")


def share(chunks: np.ndarray, xs: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """Shares (len(xs), chunks) of the field elements `chunks` at the points `xs` (distinct, nonzero).

    `coefficients` (t - 1, chunks), uniform in [0, PRIME), are the polynomials' other coefficients, so
    any t shares reconstruct and t - 1 reveal nothing."""
    x = np.asarray(xs, np.int64)[:, None] % PRIME
    acc = np.zeros((len(x), len(chunks)), np.int64)
    for c in np.asarray(coefficients, np.int64)[::-1]:  # Horner: acc = acc * x + c
        acc = (acc * x + c) % PRIME
    return (acc * x + np.asarray(chunks, np.int64)) % PRIME


def lagrange_at_zero(xs: Iterable[int]) -> np.ndarray:
    """Lagrange coefficients at 0 for the points `xs` over GF(PRIME) (cached per set of points)."""
    return _lagrange(tuple(int(x) for x in xs))


@functools.lru_cache(maxsize=64)
def _lagrange(xs: tuple[int, ...]) -> np.ndarray:
    out = []
    for i, xi in enumerate(xs):
        num = den = 1
        for j, xj in enumerate(xs):
            if j != i:
                num = num * xj % PRIME
                den = den * (xj - xi) % PRIME
        out.append(num * pow(den, PRIME - 2, PRIME) % PRIME)
    return np.array(out, np.int64)


def reconstruct(xs: Iterable[int], shares: np.ndarray) -> np.ndarray:
    """The secrets from shares (len(xs), ..., chunks) at the points `xs` (Lagrange interpolation at 0)."""
    lam = lagrange_at_zero(xs)
    shares = np.asarray(shares, np.int64)
    terms = (shares * lam.reshape((-1,) + (1,) * (shares.ndim - 1))) % PRIME
    return terms.sum(0) % PRIME
