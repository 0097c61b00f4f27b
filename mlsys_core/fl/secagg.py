"""Secure Aggregation (Bonawitz et al., CCS 2017) for one Aggregator's group of devices.

The server learns only the sum of the group's vectors. Each pair of devices agrees on a key
(X25519, RFC 7748) and adds +/- a pseudo-random mask from it (SHAKE-256), so pair masks cancel in the sum; each
device also adds a self mask. Keys and self-mask seeds are Shamir-shared among the group with a
threshold t, so the server can still unmask the sum when devices drop out after sharing:

    1. advertise keys   every device sends its public key             (prepare: drop-outs excluded)
    2. share keys       Shamir shares of its private key and seed      (to every peer, via the server)
    3. masked input     y_u = x_u + PRG(b_u) + sum_v +/-PRG(s_uv)       (commit: these are in the sum)
    4. unmasking        survivors send shares: b_v of survivors, keys of the dropped (>= t suffice)

Arithmetic is modulo 2^modulus_bits (inputs must be non-negative integers whose group sum fits).
Shares travel through the server; we count them as authenticated ciphertexts (+28 bytes) but do
not encrypt them here. The cost is quadratic in the group size, which is why the FL system runs it
per Aggregator over groups of at least k devices. X25519 is written out here in pure Python (the
Montgomery ladder), so this runs where the `cryptography` package is not installed; it is for
teaching, not constant-time.
"""

from __future__ import annotations

import hashlib
import math
from typing import NamedTuple

import numpy as np

from mlsys_core.fl import _checks

PRIME = 2**127 - 1  # Shamir's field
CHUNK_BYTES = 15  # secrets are shared as field elements of 15 bytes each
KEY_BYTES, SEED_BYTES, SHARE_OVERHEAD_BYTES = 32, 16, 28


def shamir_share(secret: int, n: int, t: int, rng: np.random.Generator) -> list[int]:
    """Shares of `secret` (< PRIME) for parties x = 1..n; any `t` of them reconstruct it."""
    coeffs = [secret] + [int.from_bytes(rng.bytes(16), "big") % PRIME for _ in range(t - 1)]
    shares = []
    for x in range(1, n + 1):
        acc = 0
        for c in reversed(coeffs):
            acc = (acc * x + c) % PRIME
        shares.append(acc)
    return shares


def shamir_reconstruct(points: dict[int, int]) -> int:
    """The secret from {x: share} (Lagrange interpolation at 0)."""
    secret = 0
    for xi, yi in points.items():
        num = den = 1
        for xj in points:
            if xj != xi:
                num = num * -xj % PRIME
                den = den * (xi - xj) % PRIME
        secret = (secret + yi * num * pow(den, PRIME - 2, PRIME)) % PRIME
    return secret


def _chunks(secret: bytes) -> list[int]:
    return [int.from_bytes(secret[i: i + CHUNK_BYTES], "big") for i in range(0, len(secret), CHUNK_BYTES)]


def _unchunk(values: list[int], length: int) -> bytes:
    sizes = [min(CHUNK_BYTES, length - i) for i in range(0, length, CHUNK_BYTES)]
    return b"".join(v.to_bytes(s, "big") for v, s in zip(values, sizes))


P25519 = 2**255 - 19
BASE_POINT = (9).to_bytes(32, "little")


def x25519(scalar: bytes, u: bytes) -> bytes:
    """RFC 7748 X25519: scalar multiplication on Curve25519 by the Montgomery ladder."""
    k = bytearray(scalar)
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    k = int.from_bytes(k, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in reversed(range(255)):
        bit = (k >> t) & 1
        if swap ^ bit:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = bit
        a, b, c, d = x2 + z2, x2 - z2, x3 + z3, x3 - z3
        aa, bb, da, cb = a * a, b * b, d * a, c * b
        e = aa - bb
        x3, z3 = (da + cb) ** 2 % P25519, x1 * (da - cb) ** 2 % P25519
        x2, z2 = aa * bb % P25519, e * (aa + 121665 * e) % P25519
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, P25519 - 2, P25519) % P25519).to_bytes(32, "little")


def prg(seed: bytes, d: int) -> np.ndarray:
    """d pseudo-random uint32 words: SHAKE-256 of the seed, an extendable-output function."""
    return np.frombuffer(hashlib.shake_256(seed).digest(4 * d), dtype=np.uint32)


def message_bytes(n: int, d: int, modulus_bits: int) -> dict[str, int]:
    """Bytes one device sends in each phase, for a group of n surviving devices and d-dim vectors."""
    key_chunks, seed_chunks = len(_chunks(bytes(KEY_BYTES))), len(_chunks(bytes(SEED_BYTES)))
    return {
        "advertise_keys": KEY_BYTES,
        "share_keys": (n - 1) * ((key_chunks + seed_chunks) * 16 + SHARE_OVERHEAD_BYTES),
        "masked_input": math.ceil(d * modulus_bits / 8),
        "unmasking": (n - 1) * seed_chunks * 16,  # one share per peer (seed shares; key shares if dropped)
    }


def expansion(n: int, d: int, input_bits: int) -> float:
    """Communication expansion of SecAgg over sending the input in the clear (modulus sized for n inputs)."""
    modulus_bits = input_bits + math.ceil(math.log2(n))
    return sum(message_bytes(n, d, modulus_bits).values()) / math.ceil(d * input_bits / 8)


class SecAggResult(NamedTuple):
    total: np.ndarray | None  # sum of the survivors' inputs mod 2^modulus_bits; None if aborted
    survivors: np.ndarray  # bool per device: its input is in the sum
    bytes_sent: np.ndarray  # per device, all phases
    pair_masks: int  # pseudo-random vectors generated by devices


def secure_aggregate(inputs: np.ndarray, dropped: np.ndarray, threshold: int, modulus_bits: int,
                     seed: int) -> SecAggResult:
    """Run the four phases for one group. `inputs` (n, d) non-negative ints; `dropped[u]`: device u
    vanishes after sharing keys (before sending its masked input). Aborts if fewer than `threshold`
    survive."""
    n, d = inputs.shape
    _checks.number("threshold", threshold, 2, n, integer=True)
    _checks.number("modulus_bits", modulus_bits, 1, 32, integer=True)
    rng = np.random.default_rng(seed)
    mod_mask = np.uint32((1 << modulus_bits) - 1) if modulus_bits < 32 else np.uint32(0xFFFFFFFF)
    # 1. advertise keys
    private = [rng.bytes(KEY_BYTES) for _ in range(n)]
    public = [x25519(p, BASE_POINT) for p in private]
    # 2. share keys and self-mask seeds (share i of a secret goes to device i)
    self_seed = [rng.bytes(SEED_BYTES) for _ in range(n)]
    key_shares = [[shamir_share(c, n, threshold, rng) for c in _chunks(p)] for p in private]
    seed_shares = [[shamir_share(c, n, threshold, rng) for c in _chunks(b)] for b in self_seed]

    def pair_mask(u_private: bytes, v: int) -> np.ndarray:
        return prg(x25519(u_private, public[v]), d)

    # 3. masked inputs from the devices still there
    survivors = ~np.asarray(dropped, bool)
    masked, pair_masks = {}, 0
    for u in np.flatnonzero(survivors):
        y = inputs[u].astype(np.uint32) + prg(self_seed[u], d)
        for v in range(n):
            if v != u:
                y = y + pair_mask(private[u], v) if u < v else y - pair_mask(private[u], v)
                pair_masks += 1
        masked[u] = y & mod_mask
    sent = message_bytes(n, d, modulus_bits)
    bytes_sent = np.full(n, sent["advertise_keys"] + sent["share_keys"])
    bytes_sent[survivors] += sent["masked_input"] + sent["unmasking"]
    if survivors.sum() < threshold:
        return SecAggResult(None, np.zeros(n, bool), bytes_sent, pair_masks)
    # 4. unmasking: the server reconstructs from the first `threshold` survivors' shares
    helpers = np.flatnonzero(survivors)[:threshold]
    reconstruct = lambda shares, length: _unchunk(  # noqa: E731
        [shamir_reconstruct({int(h) + 1: s[h] for h in helpers}) for s in shares], length)
    total = np.zeros(d, np.uint32)
    for u, y in masked.items():
        total = total + y - prg(reconstruct(seed_shares[u], SEED_BYTES), d)
    for v in np.flatnonzero(~survivors):  # a dropped device's pair masks stay in the survivors' inputs
        v_private = reconstruct(key_shares[v], KEY_BYTES)
        for u in np.flatnonzero(survivors):
            mask = pair_mask(v_private, u)  # s_vu == s_uv
            total = total - mask if u < v else total + mask
    return SecAggResult(total & mod_mask, survivors, bytes_sent, pair_masks)
