"""Secure Aggregation (Bonawitz et al., CCS 2017) for one Aggregator's group of devices.

The server learns the sum of the surviving devices' vectors in Z_{2^k} and nothing else about any one of
them, even when devices drop out at any round. Every device holds two X25519 key pairs (RFC 7748, from
the `cryptography` package): (c_pk, c_sk) to encrypt the key shares it sends its peers, (s_pk, s_sk)
to agree on pairwise masks. Four rounds, each of which devices may drop out of:

    0. advertise keys   u -> server: (c_pk_u, s_pk_u); the server broadcasts the list        (U1)
    1. share keys       u draws a self-mask seed b_u and Shamir-shares s_sk_u and b_u t-of-n;
                        the share for v travels through the server encrypted and authenticated
                        with AES-GCM under HKDF(X25519(c_sk_u, c_pk_v)), associated data
                        (sender, receiver, round)                                               (U2)
    2. masked input     y_u = x_u + PRG(b_u) + sum_{v in U2, u<v} PRG(s_uv) - sum_{v in U2, u>v} PRG(s_uv)
                        mod 2^k, PRG = AES-128-CTR keyed by HKDF(X25519(s_sk_u, s_pk_v)); a device
                        names any peer whose ciphertext failed authentication (`InvalidTag`), and
                        the server treats that peer as dropped                                  (U3)
    3. consistency      the server sends U3; each device checks |U3| >= t and acknowledges it   (U4)
    4. unmasking        for every u in U2 \\ U3 a share of s_sk_u, for every u in U3 a share of b_u;
                        a device refuses a request that asks for both for one device, or that
                        disagrees with the U3 it acknowledged                                   (U5)

The server then removes the self masks of U3 and, from the reconstructed s_sk of every dropped
device, its pair masks with U3. Fewer than t devices at any round aborts (reason in the result's
telemetry); before round 4 the server then holds only masked inputs, in round 4 fewer than t shares
of any secret, which reveal nothing about it. t must exceed n/2, so that two disjoint sets of
survivors cannot both unmask (the paper's condition against a server that lies about drop-outs).

Shamir sharing is over GF(2^31 - 1), a secret split into 30-bit chunks shared independently; masks
and sums are vectorised over the d coordinates (one AES-CTR stream per mask, added in place). All
messages are serialised to bytes, so the bytes per device and phase are measured, not computed.
Honest-but-curious server, with the active-adversary pieces that matter here (authenticated shares,
the consistency round, refusing to reveal both secrets of a device); the paper's signatures on
the consistency round and its PKI are left out.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import struct
import time
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from mlsys_core import validate

PRIME = 2**31 - 1  # Shamir's field (a Mersenne prime): products of two elements fit in int64
CHUNK_BITS = 30  # a secret is split into chunks of 30 bits, each shared on its own
KEY_BYTES, SEED_BYTES, NONCE_BYTES, TAG_BYTES, ID_BYTES = 32, 16, 12, 16, 4
PHASES = ("advertise_keys", "share_keys", "masked_input", "consistency_check", "unmasking")
COMPLETES = len(PHASES)  # `dropout_round` value of a device that never drops out


def _chunks_of(nbytes: int) -> int:
    return -(-8 * nbytes // CHUNK_BITS)


KEY_CHUNKS, SEED_CHUNKS = _chunks_of(KEY_BYTES), _chunks_of(SEED_BYTES)


# ---------------------------------------------------------------------------------------------------
# Shamir t-of-n over GF(PRIME), vectorised over chunks (and over secrets when reconstructing)


def secret_to_field(secret: bytes) -> np.ndarray:
    """The bytes of a secret as little-endian 30-bit chunks (int64, each < 2^30 < PRIME)."""
    v = int.from_bytes(secret, "little")
    return np.array([(v >> (CHUNK_BITS * i)) & ((1 << CHUNK_BITS) - 1) for i in range(_chunks_of(len(secret)))],
                    np.int64)


def field_to_secret(chunks: np.ndarray, nbytes: int) -> bytes:
    v = sum(int(c) << (CHUNK_BITS * i) for i, c in enumerate(chunks))
    return (v & ((1 << (8 * nbytes)) - 1)).to_bytes(nbytes, "little")


def shamir_share(chunks: np.ndarray, xs: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
    """Shares (len(xs), chunks) of the field elements `chunks` at the points `xs` (distinct, nonzero):
    a random polynomial of degree t - 1 per chunk with the chunk as constant term; any t shares
    reconstruct, t - 1 reveal nothing."""
    chunks = np.asarray(chunks, np.int64)
    coeffs = rng.integers(0, PRIME, size=(t - 1, len(chunks)), dtype=np.int64)
    x = np.asarray(xs, np.int64)[:, None] % PRIME
    acc = np.zeros((len(x), len(chunks)), np.int64)
    for c in coeffs[::-1]:  # Horner: acc = acc * x + c
        acc = (acc * x + c) % PRIME
    return (acc * x + chunks) % PRIME


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


def shamir_reconstruct(xs: Iterable[int], shares: np.ndarray) -> np.ndarray:
    """The secrets from shares (len(xs), ..., chunks) at points `xs` (Lagrange interpolation at 0)."""
    lam = lagrange_at_zero(xs)
    shares = np.asarray(shares, np.int64)
    terms = (shares * lam.reshape((-1,) + (1,) * (shares.ndim - 1))) % PRIME
    return terms.sum(0) % PRIME


# ---------------------------------------------------------------------------------------------------
# Cryptographic primitives (the `cryptography` package, imported when a group runs)


def keypair(rng: np.random.Generator) -> tuple[bytes, bytes]:
    """(private, public) X25519 key pair from 32 random bytes of `rng` (seeded, so runs repeat)."""
    sk = rng.bytes(KEY_BYTES)
    return sk, public_key(sk)


def public_key(private: bytes) -> bytes:
    """The X25519 public key (RFC 7748) of a 32-byte private key."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()


def private_key(private: bytes):
    """The `cryptography` X25519 key object of 32 private bytes (building it costs a scalar multiplication)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    return X25519PrivateKey.from_private_bytes(private)


def agree(private, peer_public: bytes) -> bytes:
    """The X25519 shared secret of `private` (bytes or `private_key`) and a peer's public key: both ends
    derive the same bytes."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    key = private_key(private) if isinstance(private, bytes) else private
    return key.exchange(X25519PublicKey.from_public_bytes(peer_public))


def kdf(secret: bytes, purpose: bytes, length: int = 16) -> bytes:
    """HKDF-SHA256 of a shared secret, one key per purpose."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=b"secagg " + purpose).derive(secret)


def _associated(sender: int, receiver: int, round_: int) -> bytes:
    return struct.pack("<III", sender, receiver, round_)


def encrypt(key: bytes, plaintext: bytes, sender: int, receiver: int, round_: int, nonce: bytes) -> bytes:
    """AES-GCM: nonce || ciphertext || tag, authenticating (sender, receiver, round) as associated data."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return nonce + AESGCM(key).encrypt(nonce, plaintext, _associated(sender, receiver, round_))


def decrypt(key: bytes, blob: bytes, sender: int, receiver: int, round_: int) -> bytes:
    """The plaintext of `encrypt`; raises `cryptography.exceptions.InvalidTag` if anything was changed."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _associated(sender, receiver, round_))


def word_dtype(modulus_bits: int) -> type:
    return np.uint32 if modulus_bits <= 32 else np.uint64


class MaskStream:
    """Expands 16-byte seeds into d words of a PRG (AES-128-CTR) and adds or subtracts them in place."""

    def __init__(self, d: int, dtype: type):
        self.d, self.dtype = d, dtype
        self.nbytes = d * np.dtype(dtype).itemsize
        self._zeros = bytes(self.nbytes)
        self._buf = bytearray(self.nbytes + 16)

    def words(self, seed: bytes) -> np.ndarray:
        """The PRG's first d words for `seed` (a view into a reused buffer: copy to keep)."""
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor().update_into(self._zeros, self._buf)
        return np.frombuffer(self._buf, self.dtype, self.d)

    def add(self, acc: np.ndarray, seed: bytes, sign: int) -> None:
        (np.add if sign > 0 else np.subtract)(acc, self.words(seed), out=acc)


def _bit_layout(bits: int) -> tuple[int, int]:
    """Values per block and 64-bit words per block: a block of m values fills whole words exactly."""
    m = 64 // math.gcd(bits, 64)
    return m, m * bits // 64


def pack_bits(values: np.ndarray, bits: int) -> bytes:
    """d values < 2^bits as a bit string of ceil(d * bits / 8) bytes (little-endian), vectorised by
    blocks of values that fill whole 64-bit words."""
    d = len(values)
    m, wpb = _bit_layout(bits)
    v = np.zeros(-(-d // m) * m, np.uint64)
    v[:d] = values
    v = v.reshape(-1, m)
    out = np.zeros((len(v), wpb + 1), np.uint64)
    for j in range(m):
        w, sh = divmod(j * bits, 64)
        out[:, w] |= v[:, j] << np.uint64(sh)
        if sh + bits > 64:
            out[:, w + 1] |= v[:, j] >> np.uint64(64 - sh)
    return out[:, :wpb].astype("<u8").tobytes()[: -(-d * bits // 8)]


def unpack_bits(blob: bytes, d: int, bits: int, dtype: type) -> np.ndarray:
    """The d values of `pack_bits`, as `dtype`."""
    m, wpb = _bit_layout(bits)
    rows = -(-d // m)
    raw = np.zeros(rows * wpb * 8, np.uint8)
    raw[: len(blob)] = np.frombuffer(blob, np.uint8)
    words = np.zeros((rows, wpb + 1), np.uint64)
    words[:, :wpb] = raw.view("<u8").reshape(rows, wpb)
    out = np.empty((rows, m), np.uint64)
    mask = np.uint64((1 << bits) - 1) if bits < 64 else np.uint64(2**64 - 1)
    for j in range(m):
        w, sh = divmod(j * bits, 64)
        col = words[:, w] >> np.uint64(sh)
        if sh + bits > 64:
            col |= words[:, w + 1] << np.uint64(64 - sh)
        out[:, j] = col & mask
    return out.reshape(-1)[:d].astype(dtype)


def _ids(ids: Iterable[int]) -> bytes:
    ids = list(ids)
    return struct.pack(f"<I{len(ids)}I", len(ids), *ids)


def _read_ids(blob: bytes, offset: int = 0) -> tuple[list[int], int]:
    (n,) = struct.unpack_from("<I", blob, offset)
    return list(struct.unpack_from(f"<{n}I", blob, offset + 4)), offset + 4 + 4 * n


# ---------------------------------------------------------------------------------------------------
# The protocol


@dataclasses.dataclass(frozen=True)
class SecAggConfig:
    """One group: `num_devices` n, threshold t (n/2 < t <= n), inputs in Z_{2^modulus_bits}."""

    num_devices: int
    threshold: int
    modulus_bits: int = 32

    def __post_init__(self):
        n = validate.integer("num_devices", self.num_devices, 2)
        validate.integer("threshold", self.threshold, n // 2 + 1, n)
        validate.integer("modulus_bits", self.modulus_bits, 1, 64)


class RefusedRequest(ValueError):
    """A device refuses the server's unmasking request (it would reveal both secrets of one device)."""


class Device:
    """One device's side of the protocol; its methods take and return serialised messages."""

    def __init__(self, uid: int, x: np.ndarray, config: SecAggConfig, seed: int):
        self.uid, self.x, self.cfg = uid, x, config
        self.rng = np.random.default_rng([seed, uid])
        self.seconds = 0.0
        self.complaints: list[int] = []
        self.u3: list[int] | None = None
        self.held: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # peer -> (share of s_sk, share of b)

    def advertise(self) -> bytes:
        t0 = time.perf_counter()
        self.c_sk, self.c_pk = keypair(self.rng)
        self.s_sk, self.s_pk = keypair(self.rng)
        self._c, self._s = private_key(self.c_sk), private_key(self.s_sk)
        self.seconds += time.perf_counter() - t0
        return struct.pack("<I", self.uid) + self.c_pk + self.s_pk

    def share_keys(self, advertised: dict[int, bytes], receivers: Iterable[int] | None = None) -> dict[int, bytes]:
        """Shares of s_sk and b_u for every advertised peer, encrypted to it; {receiver: ciphertext}.
        (`receivers`: only those peers' ciphertexts, for measuring one device's messages cheaply.)"""
        t0 = time.perf_counter()
        self.peers = {v: (m[4:36], m[36:68]) for v, m in advertised.items()}
        self.b = self.rng.bytes(SEED_BYTES)
        self._share_keys: dict[int, bytes] = {}
        everyone = np.array(sorted(self.peers if receivers is None else set(receivers) | {self.uid}), np.int64)
        s_shares = shamir_share(secret_to_field(self.s_sk), everyone + 1, self.cfg.threshold, self.rng)
        b_shares = shamir_share(secret_to_field(self.b), everyone + 1, self.cfg.threshold, self.rng)
        out = {}
        for v, s_share, b_share in zip(everyone.tolist(), s_shares, b_shares):
            if v == self.uid:
                self.held[v] = (s_share, b_share)
                continue
            key = self._share_keys[v] = kdf(agree(self._c, self.peers[v][0]), b"share key")
            plain = struct.pack("<II", self.uid, v) + s_share.astype("<u4").tobytes() + b_share.astype("<u4").tobytes()
            out[v] = struct.pack("<II", self.uid, v) + encrypt(key, plain, self.uid, v, 1, self.rng.bytes(NONCE_BYTES))
        self.seconds += time.perf_counter() - t0
        return out

    def masked_input(self, received: dict[int, bytes], stream: MaskStream) -> bytes:
        """y_u over the peers whose shares arrived (U2), and the senders whose ciphertext failed."""
        from cryptography.exceptions import InvalidTag

        t0 = time.perf_counter()
        u2 = sorted(set(received) | {self.uid})
        for u, blob in received.items():
            key = self._share_keys.get(u) or kdf(agree(self._c, self.peers[u][0]), b"share key")
            try:
                plain = decrypt(key, blob[8:], u, self.uid, 1)
            except InvalidTag:
                self.complaints.append(u)
                continue
            sender, receiver = struct.unpack_from("<II", plain)
            if (sender, receiver) != (u, self.uid):  # cannot happen past the tag; kept as the paper's check
                self.complaints.append(u)
                continue
            s = np.frombuffer(plain, "<u4", KEY_CHUNKS, 8).astype(np.int64)
            b = np.frombuffer(plain, "<u4", SEED_CHUNKS, 8 + 4 * KEY_CHUNKS).astype(np.int64)
            self.held[u] = (s, b)
        self.u2 = u2
        y = self.x.astype(stream.dtype).copy()
        stream.add(y, kdf(self.b, b"self mask"), +1)
        for v in u2:
            if v != self.uid:
                stream.add(y, kdf(agree(self._s, self.peers[v][1]), b"pair mask"), +1 if self.uid < v else -1)
        y &= stream.dtype((1 << self.cfg.modulus_bits) - 1)
        msg = struct.pack("<I", self.uid) + pack_bits(y, self.cfg.modulus_bits) + _ids(self.complaints)
        self.seconds += time.perf_counter() - t0
        return msg

    def consistency_check(self, u3: list[int]) -> bytes | None:
        """Acknowledge U3 (a digest of it) if it is large enough and inside U2; None aborts."""
        if len(u3) < self.cfg.threshold or not set(u3) <= set(self.u2):
            return None
        self.u3 = sorted(u3)
        return struct.pack("<I", self.uid) + hashlib.sha256(_ids(self.u3)).digest()

    def unmask(self, dropped: list[int], survivors: list[int]) -> bytes:
        """Shares of s_sk for `dropped`, of b for `survivors`; refuses to reveal both for one device."""
        both = set(dropped) & set(survivors)
        if both:
            raise RefusedRequest(f"device {self.uid} refuses: the request asks for both the mask-key share "
                                 f"and the self-mask share of devices {sorted(both)}")
        if self.u3 is None or sorted(survivors) != self.u3 or not set(dropped) <= set(self.u2) - set(self.u3):
            raise RefusedRequest(f"device {self.uid} refuses: the request's survivors differ from the U3 it "
                                 "acknowledged, or it names a dropped device outside U2 \\ U3")
        t0 = time.perf_counter()
        parts = [struct.pack("<I", self.uid)]
        for u, kind in [(u, 0) for u in dropped] + [(u, 1) for u in survivors]:
            if u in self.held:
                parts.append(struct.pack("<IB", u, kind) + self.held[u][kind].astype("<u4").tobytes())
        self.seconds += time.perf_counter() - t0
        return b"".join(parts)


class SecAggResult(NamedTuple):
    total: np.ndarray | None  # sum over U3 of the inputs mod 2^modulus_bits; None if aborted
    included: np.ndarray  # bool per device: its input is in the sum (U3)
    aborted: str  # "" or the reason the server gave up
    telemetry: list[dict]  # per round: phase, devices heard from, bytes received
    bytes_sent: dict[str, np.ndarray]  # phase -> bytes each device sent (measured from serialised messages)
    server_seconds: float  # server compute (rounds 0-4, reconstruction and unmasking)
    client_seconds: np.ndarray  # per device, compute over all rounds
    server_view: dict[int, bytes]  # masked-input messages the server received


def _dropout_rounds(dropout_round, n: int) -> np.ndarray:
    if dropout_round is None:
        return np.full(n, COMPLETES)
    r = np.asarray(dropout_round)
    if r.shape != (n,) or not np.issubdtype(r.dtype, np.integer) or r.min() < 0 or r.max() > COMPLETES:
        raise ValueError(f"dropout_round must be one int in [0, {COMPLETES}] per device (the round it stops "
                         f"sending in; {COMPLETES}: never), shape ({n},); got {r.dtype} {r.shape}")
    return r


class _Server:
    def __init__(self, cfg: SecAggConfig, d: int):
        self.cfg, self.d = cfg, d
        self.seconds = 0.0
        self.telemetry: list[dict] = []
        self.bytes_sent = {p: np.zeros(cfg.num_devices, np.int64) for p in PHASES}
        self.aborted = ""

    def heard(self, phase: str, msgs: dict[int, bytes | dict]) -> bool:
        for u, m in msgs.items():
            self.bytes_sent[phase][u] += sum(map(len, m.values())) if isinstance(m, dict) else len(m)
        n_bytes = int(sum(self.bytes_sent[phase]))
        self.telemetry.append({"phase": phase, "devices": len(msgs), "bytes": n_bytes})
        if len(msgs) < self.cfg.threshold:
            self.aborted = (f"{phase}: {len(msgs)} devices answered, fewer than the threshold "
                            f"{self.cfg.threshold}; aborted")
            self.telemetry[-1]["aborted"] = self.aborted
            return False
        return True


def secure_aggregate(inputs: np.ndarray, threshold: int, modulus_bits: int, seed: int, dropout_round=None,
                     tamper: Iterable[tuple[int, int]] = ()) -> SecAggResult:
    """Run the four rounds for one group. `inputs` (n, d) non-negative ints < 2^modulus_bits;
    `dropout_round[u]` the round device u stops sending in (0 advertise ... 4 unmasking; 5 never);
    `tamper` (sender, receiver) pairs whose share ciphertext the network flips a byte of."""
    inputs = np.asarray(inputs)
    if inputs.ndim != 2 or not np.issubdtype(inputs.dtype, np.integer) or (inputs.size and inputs.min() < 0):
        raise ValueError(f"inputs must be an (n, d) array of non-negative ints, got {inputs.dtype} {inputs.shape}")
    n, d = inputs.shape
    cfg = SecAggConfig(n, threshold, modulus_bits)
    if inputs.size and int(inputs.max()) >= 2**modulus_bits:
        raise ValueError(f"inputs must be < 2^modulus_bits = {2**modulus_bits}, got {int(inputs.max())}")
    drop = _dropout_rounds(dropout_round, n)
    devices = [Device(u, inputs[u], cfg, seed) for u in range(n)]
    run = GroupRun(cfg, d, devices, drop, set(map(tuple, tamper)))
    return run.finish() if run.through_masked_input() else run.result()


class GroupRun:
    """One protocol run over `devices`: `through_masked_input()` plays rounds 0-2 (False: aborted),
    `finish(masked)` the server's side of round 2 and rounds 3-4 from the masked inputs that arrived,
    so a benchmark can replay the end for several drop-out patterns."""

    def __init__(self, cfg, d, devices, drop, tamper):
        self.cfg, self.d, self.devices, self.drop, self.tamper = cfg, d, devices, drop, tamper
        self.server = _Server(cfg, d)
        self.stream = MaskStream(d, word_dtype(cfg.modulus_bits))
        self.masked: dict[int, bytes] = {}
        self.total = None
        self.u3: list[int] = []

    def alive(self, r: int) -> list[int]:
        return [u for u in range(self.cfg.num_devices) if self.drop[u] > r]

    def through_masked_input(self) -> bool:
        """Rounds 0-2; False if the server aborted."""
        s, dev = self.server, self.devices
        adv = self.advertised = {u: dev[u].advertise() for u in self.alive(0)}
        if not s.heard("advertise_keys", adv):
            return False
        shares = {u: dev[u].share_keys(adv) for u in self.alive(1)}
        if not s.heard("share_keys", shares):
            return False
        t0 = time.perf_counter()
        inbox: dict[int, dict[int, bytes]] = {v: {} for v in shares}
        for u, out in shares.items():
            for v, blob in out.items():
                if v in inbox:
                    if (u, v) in self.tamper:
                        blob = blob[:-1] + bytes([blob[-1] ^ 1])
                    inbox[v][u] = blob
        s.seconds += time.perf_counter() - t0
        self.u2 = sorted(shares)
        self.masked = {u: dev[u].masked_input(inbox[u], self.stream) for u in self.alive(2) if u in inbox}
        return True

    def finish(self, masked: dict[int, bytes] | None = None) -> SecAggResult:
        """Rounds 2 (server side) to 4, from the masked inputs that arrived (default: all sent)."""
        s, dev, cfg = self.server, self.devices, self.cfg
        masked = self.masked if masked is None else masked
        self.server_view = masked
        if not s.heard("masked_input", masked):
            return self.result()
        t0 = time.perf_counter()
        mask = word_dtype(cfg.modulus_bits)((1 << cfg.modulus_bits) - 1)
        nbytes = -(-self.d * cfg.modulus_bits // 8)
        complained = set()
        for m in masked.values():
            complained |= set(_read_ids(m, 4 + nbytes)[0])
        u3 = sorted(set(masked) - complained)
        s.seconds += time.perf_counter() - t0
        acks = {}
        for u in u3:
            if self.drop[u] > 3:
                ack = dev[u].consistency_check(u3)
                if ack is not None:
                    acks[u] = ack
        if not s.heard("consistency_check", acks):
            return self.result()
        dropped = sorted(set(self.u2) - set(u3))
        answers = {u: dev[u].unmask(dropped, u3) for u in acks if self.drop[u] > 4}
        if not s.heard("unmasking", answers):
            return self.result()
        t0 = time.perf_counter()
        # collect shares per (device, kind), reconstruct with any t of them
        got: dict[tuple[int, int], dict[int, np.ndarray]] = {}
        for v, blob in answers.items():
            off, width = 4, {0: 4 * KEY_CHUNKS, 1: 4 * SEED_CHUNKS}
            while off < len(blob):
                u, kind = struct.unpack_from("<IB", blob, off)
                got.setdefault((u, kind), {})[v] = np.frombuffer(blob, "<u4", width[kind] // 4, off + 5)
                off += 5 + width[kind]
        secrets = {}
        for (u, kind), shares in got.items():
            if len(shares) < cfg.threshold:
                s.aborted = (f"unmasking: only {len(shares)} shares of device {u}'s "
                             f"{'mask key' if kind == 0 else 'self-mask seed'}, fewer than the threshold; aborted")
                s.telemetry[-1]["aborted"] = s.aborted
                s.seconds += time.perf_counter() - t0
                return self.result()
            helpers = sorted(shares)[: cfg.threshold]
            chunks = shamir_reconstruct(np.array(helpers) + 1, np.stack([shares[h] for h in helpers]))
            secrets[u, kind] = field_to_secret(chunks, KEY_BYTES if kind == 0 else SEED_BYTES)
        missing = [u for u in dropped if (u, 0) not in secrets] + [u for u in u3 if (u, 1) not in secrets]
        if missing:
            s.aborted = f"unmasking: no shares of devices {missing}; aborted"
            s.seconds += time.perf_counter() - t0
            return self.result()
        total = np.zeros(self.d, self.stream.dtype)
        for u in u3:
            total += unpack_bits(masked[u][4: 4 + nbytes], self.d, cfg.modulus_bits, self.stream.dtype)
            self.stream.add(total, kdf(secrets[u, 1], b"self mask"), -1)
        pk = {u: self.advertised[u][36:68] for u in self.u2}  # the mask keys advertised in round 0
        for u in dropped:
            s_sk = private_key(secrets[u, 0])
            for v in u3:  # y_v holds +PRG(s_vu) if v < u, else -PRG(s_vu)
                self.stream.add(total, kdf(agree(s_sk, pk[v]), b"pair mask"), -1 if v < u else +1)
        self.total = total & mask
        self.u3 = u3
        s.seconds += time.perf_counter() - t0
        return self.result()

    def result(self) -> SecAggResult:
        s = self.server
        included = np.zeros(self.cfg.num_devices, bool)
        if self.total is not None:
            included[self.u3] = True
        return SecAggResult(self.total, included, s.aborted, s.telemetry, s.bytes_sent, s.seconds,
                            np.array([d.seconds for d in self.devices]), getattr(self, "server_view", {}))


def device_bytes(num_devices: int, dim: int, input_bits: int, seed: int = 0) -> dict[str, int]:
    """Bytes device 0 sends in each phase of a group of `num_devices` with `dim`-dimensional inputs of
    `input_bits` bits (modulus input_bits + ceil(log2 n), so the sum cannot wrap), measured from its
    serialised messages: its own rounds run for real against peers that advertise real keys and send
    it real encrypted shares; nobody drops out."""
    n = validate.integer("num_devices", num_devices, 2)
    d = validate.integer("dim", dim, 1)
    k = validate.integer("input_bits", input_bits, 1, 63) + math.ceil(math.log2(n))
    cfg = SecAggConfig(n, n // 2 + 1, min(k, 64))
    x = np.random.default_rng(seed).integers(0, 2**input_bits, dim)
    devices = [Device(u, x if u == 0 else x[:0], cfg, seed) for u in range(n)]
    adv = {u: dev.advertise() for u, dev in enumerate(devices)}
    me = devices[0]
    out = me.share_keys(adv)
    sent = {"advertise_keys": len(adv[0]), "share_keys": sum(map(len, out.values()))}
    inbox = {u: devices[u].share_keys(adv, receivers=[0])[0] for u in range(1, n)}
    sent["masked_input"] = len(me.masked_input(inbox, MaskStream(d, word_dtype(cfg.modulus_bits))))
    everyone = list(range(n))
    sent["consistency_check"] = len(me.consistency_check(everyone))
    sent["unmasking"] = len(me.unmask([], everyone))
    return sent


def expansion(num_devices: int, dim: int, input_bits: int, seed: int = 0) -> float:
    """Measured bytes device 0 sends over all phases (`device_bytes`) / bytes of its input in the clear."""
    return sum(device_bytes(num_devices, dim, input_bits, seed).values()) / math.ceil(dim * input_bits / 8)


# ---------------------------------------------------------------------------------------------------
# Inside the FL system: float updates, Aggregator groups, a Master Aggregator


@dataclasses.dataclass(frozen=True)
class SecureRoundConfig:
    """Secure Aggregation inside a FedAvg round, as deployed (Bonawitz et al., SysML 2019, section 6).

    The round's devices are split into Aggregator groups of at least `min_group` devices (the paper's
    k; the remainder is spread over the groups, so each has between min_group and 2 min_group - 1);
    each group runs the protocol with threshold floor(threshold_fraction * n_g) + 1 (> n_g / 2); the
    Master Aggregator adds the groups' sums. Each coordinate of an update is clipped to [-clip, clip]
    and stochastically rounded to one of 2^bits levels (unbiased), then multiplied by the device's
    integer weight (its example count); the weight itself rides along as one more coordinate. The
    modulus is sized so a group's sum cannot wrap.
    """

    min_group: int = 8
    threshold_fraction: float = 0.5
    bits: int = 16
    clip: float = 0.05

    def __post_init__(self):
        validate.integer("min_group", self.min_group, 2)
        validate.number("threshold_fraction", self.threshold_fraction, 0.5, 1.0, high_open=True)
        validate.integer("bits", self.bits, 1, 32)
        object.__setattr__(self, "clip", validate.number("clip", self.clip, 0.0, low_open=True))

    @property
    def step(self) -> float:
        """One quantisation level: the mean of the dequantised updates is within this of the mean of
        the clipped updates, coordinate by coordinate."""
        return 2 * self.clip / (2**self.bits - 1)


def quantize(x: np.ndarray, clip: float, bits: int, rng: np.random.Generator) -> np.ndarray:
    """Clip to [-clip, clip] and round stochastically to levels 0 .. 2^bits - 1: E[level] is exact."""
    scaled = (np.clip(np.asarray(x, np.float64), -clip, clip) + clip) / (2 * clip) * (2**bits - 1)
    low = np.floor(scaled)
    return (low + (rng.random(scaled.shape) < scaled - low)).astype(np.int64)


def dequantize(mean_level: np.ndarray, clip: float, bits: int) -> np.ndarray:
    return np.asarray(mean_level, np.float64) / (2**bits - 1) * 2 * clip - clip


def aggregator_groups(num_devices: int, min_group: int) -> list[np.ndarray]:
    """Device ids split into consecutive groups of at least `min_group` devices each."""
    k = validate.integer("min_group", min_group, 2)
    n = validate.integer("num_devices", num_devices, k)
    return np.array_split(np.arange(n), max(n // k, 1))


class SecureRound(NamedTuple):
    mean: dict  # the weighted mean update (pytree like the deltas), float32
    included: np.ndarray  # bool per device: its update is in the mean
    groups: list[np.ndarray]  # device ids per Aggregator group
    bytes_sent: dict[str, np.ndarray]  # phase -> bytes each device sent, measured
    plain_bytes: int  # bytes of one quantised update in the clear
    aborted: list[str]  # per group: "" or why that group's aggregation aborted


def secure_fedavg_mean(deltas: dict, weights, config: SecureRoundConfig, seed: int,
                       dropout_round=None) -> SecureRound:
    """FedAvg's weighted mean of the clients' deltas (leading axis: clients), computed by Secure
    Aggregation per Aggregator group and summed by the Master Aggregator. Groups that abort contribute
    nothing; the mean is over the devices included."""
    import jax

    leaves, treedef = jax.tree.flatten(deltas)
    flat = np.concatenate([np.asarray(leaf, np.float64).reshape(len(leaf), -1) for leaf in leaves], axis=1)
    w = np.asarray(weights)
    if w.shape != (len(flat),) or not np.all(w == np.round(w)) or w.min() < 0:
        raise ValueError(f"weights must be one non-negative integer (example count) per client, shape "
                         f"({len(flat)},); got {w.shape}")
    w = w.astype(np.int64)
    n, d = flat.shape
    drop = _dropout_rounds(dropout_round, n)
    rng = np.random.default_rng([seed, 1])
    levels = quantize(flat, config.clip, config.bits, rng) * w[:, None]
    payload = np.concatenate([levels, w[:, None]], axis=1)  # the weight rides along
    total = np.zeros(d + 1, np.int64)
    included = np.zeros(n, bool)
    bytes_sent = {p: np.zeros(n, np.int64) for p in PHASES}
    groups, aborted = aggregator_groups(n, config.min_group), []
    for g, ids in enumerate(groups):
        modulus_bits = config.bits + math.ceil(math.log2(int(w[ids].sum()) + 1)) + 1
        t = min(len(ids), int(config.threshold_fraction * len(ids)) + 1)
        res = secure_aggregate(payload[ids], t, modulus_bits, seed=seed * 7919 + g, dropout_round=drop[ids])
        for p in PHASES:
            bytes_sent[p][ids] = res.bytes_sent[p]
        aborted.append(res.aborted)
        if res.total is not None:
            total += res.total.astype(np.int64)  # the Master Aggregator adds the groups' sums
            included[ids] = res.included
    weight = max(int(total[-1]), 1)
    mean = dequantize(total[:-1] / weight, config.clip, config.bits) if total[-1] else np.zeros(d)
    out, start = [], 0
    for leaf in leaves:
        size = int(np.prod(leaf.shape[1:]))
        out.append(mean[start: start + size].reshape(leaf.shape[1:]).astype(np.float32))
        start += size
    return SecureRound(jax.tree.unflatten(treedef, out), included, groups, bytes_sent,
                       math.ceil(d * config.bits / 8), aborted)
