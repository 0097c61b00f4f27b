"""Secure Aggregation (Bonawitz et al., CCS 2017), the actively secure protocol, for one Aggregator's group.

The server learns the sum of the surviving devices' vectors in Z_{2^k} and nothing else about any one of
them, even when devices drop out at any round and even when the server deviates from the protocol. Each
device has a long-term Ed25519 identity in a PKI (the paper's assumption; here a read-only map from
device id to verifying key, built before the session) and, per session, two X25519 key pairs: (c_pk, c_sk)
to encrypt the key shares it sends its peers, (s_pk, s_sk) to agree on pairwise masks. Every message a
device sends names the session (16 random bytes of the server's) and the round: signed by its identity,
or, for the share ciphertexts, as AES-GCM associated data. Five rounds, each of which devices may drop
out of; fewer than t devices at any round aborts:

    0. advertise keys   u -> server: c_pk_u, s_pk_u, signed; the server broadcasts them               (U1)
    1. share keys       u checks every advertisement's signature and its own keys, draws a self-mask
                        seed b_u and Shamir-shares s_sk_u and b_u t-of-n; the share for v travels
                        through the server under AES-GCM keyed by HKDF(X25519(c_sk_u, c_pk_v))          (U2)
    2. masked input     y_u = x_u + PRG(b_u) + sum_{v in U2, u<v} PRG(s_uv) - sum_{v in U2, u>v} PRG(s_uv)
                        mod 2^k, PRG = AES-128-CTR keyed by HKDF(X25519(s_sk_u, s_pk_v)), signed; a
                        device names any peer whose ciphertext failed authentication, and the server
                        treats that peer as dropped; a masked input whose signature fails (a replay from
                        another session or round, say) is discarded                                   (U3)
    3. consistency      the server sends U3; u checks U3 within its U2 and |U3| >= t, and signs U3    (U4)
    4. unmasking        the server forwards the U3 signatures; u checks that at least t of them are
                        valid signatures of its own U3, then sends, signed, its shares of s_sk_v for
                        v in U2 \\ U3 and of b_v for v in U3                                            (U5)

The server then removes the self masks of U3 and, from the reconstructed s_sk of every dropped device,
its pair masks with U3. What keeps a malicious server from one device's input is each device's state:
it takes part in each round once and in order, so it signs one U3 and answers one unmasking request, and
that answer, computed from its own U2 and U3, never holds both secrets of one device. With t > n/2 the
server cannot collect t signatures on two different U3s, so it can never learn both b_u (to unmask y_u)
and s_sk_u (to remove u's pair masks) of any device u. A device that sees a request break these rules
raises `RefusedRequest`; the honest server (`GroupRun`) counts such a device as dropped.

Randomness: by default every key, seed, share coefficient and nonce comes from the operating system
(`crypto.SystemRandomness`). `insecure_seed` replays a run exactly, for teaching; it is insecure, since
anyone who knows the seed recomputes every key and mask (`crypto.SeededRandomness`).
Shamir sharing is over GF(2^31 - 1) (`shamir`); masks and sums are vectorised over the d coordinates
(one AES-CTR stream per mask, added in place). All messages are serialised, so the bytes per device
and round are measured, not computed.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import struct
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Concatenate, NoReturn, ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt

from mlsys_core import validate
from mlsys_core.fl import crypto, shamir, wire
from mlsys_core.fl.crypto import KEY_BYTES, NONCE_BYTES, MaskStream

_P = ParamSpec("_P")
_R = TypeVar("_R")

SEED_BYTES, SESSION_BYTES = 16, 16
PHASES = ("advertise_keys", "share_keys", "masked_input", "consistency_check", "unmasking")
COMPLETES = len(PHASES)  # `dropout_round` value of a device that never drops out
SERVER_STREAM = 2**32  # the server's stream of an insecure seed (devices use their ids)
KEY_CHUNKS, SEED_CHUNKS = shamir.chunks_of(KEY_BYTES), shamir.chunks_of(SEED_BYTES)
SHARE_WIDTH = {0: 4 * KEY_CHUNKS, 1: 4 * SEED_CHUNKS}  # bytes of a share of s_sk (kind 0) and of b (kind 1)


# --- the device ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SecAggConfig:
    """One group: `num_devices` n, threshold t (n/2 < t <= n), inputs in Z_{2^modulus_bits}."""

    num_devices: int  # n, devices in the group
    threshold: int  # t, devices needed at every round (and shares to rebuild a secret)
    modulus_bits: int = 32  # k: inputs and sums live in Z_{2^k}

    def __post_init__(self) -> None:
        n = validate.integer("num_devices", self.num_devices, 2)
        validate.integer("threshold", self.threshold, n // 2 + 1, n)
        validate.integer("modulus_bits", self.modulus_bits, 1, 64)


class RefusedRequest(ValueError):
    """A device refuses a request of the server's: out of order, repeated, or one that would let the server
    learn more than the sum (a forged signature, too few devices, a U3 other than the one it signed)."""


def _timed(method: Callable[Concatenate[Device, _P], _R]) -> Callable[Concatenate[Device, _P], _R]:
    """Add the method's compute time to `self.seconds`."""

    @functools.wraps(method)
    def wrapper(self: Device, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        t0 = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t0

    return wrapper


class Device:
    """One device's side of one session. Its methods take and return serialised messages; it answers
    each round once and in order, and refuses (`RefusedRequest`) any request that breaks the protocol.

    Args:
        uid: its id in the group (0 .. n - 1).
        x: its input, (d,) ints in Z_{2^modulus_bits}.
        config: the group.
        session: the session id every message it signs names.
        signing_key: its long-term Ed25519 identity.
        pki: device id -> verifying key, for every device of the group.
        source: where its keys, seeds and nonces come from (None: the system).
    """

    def __init__(self, uid: int, x: np.ndarray, config: SecAggConfig, session: bytes, signing_key: bytes,
                 pki: Mapping[int, bytes],
                 source: crypto.SystemRandomness | crypto.SeededRandomness | None = None) -> None:
        self.uid, self.x, self.cfg, self.session = uid, x, config, session
        self._signing_key, self.pki = signing_key, pki
        self._random = crypto.SystemRandomness() if source is None else source
        self.seconds = 0.0
        self.done = -1  # the last round this device answered (COMPLETES: it aborted)
        self.complaints: list[int] = []
        self.held: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # peer -> (share of s_sk, share of b)

    def _refuse(self, why: str) -> NoReturn:
        """Abort: refuse this request and every later one of the session."""
        self.done = COMPLETES
        raise RefusedRequest(f"device {self.uid} refuses: {why}")

    def _start(self, round_: int) -> None:
        if self.done == COMPLETES:
            self._refuse(f"a {PHASES[round_]} request after it aborted the session")
        if self.done != round_ - 1:
            at = PHASES[self.done] if self.done >= 0 else "the start"
            self._refuse(f"a {PHASES[round_]} request when it is past {at}; each round is answered once, in order")
        self.done = round_

    @_timed
    def advertise(self) -> bytes:
        """Round 0: the two public keys, signed."""
        self._start(0)
        self.c_sk, self.c_pk = crypto.exchange_keypair(self._random)
        self.s_sk, self.s_pk = crypto.exchange_keypair(self._random)
        return wire.signed(self._signing_key, self.session, 0, self.uid, self.c_pk + self.s_pk)

    def _check_advertisements(self, advertised: Mapping[int, bytes], count: int) -> dict[int, tuple[bytes, bytes]]:
        peers = {}
        for v, msg in advertised.items():
            opened = wire.open_signed(msg, self.session, 0, self.pki)
            if opened is None or opened[0] != v or len(opened[1]) != 2 * KEY_BYTES:
                self._refuse(f"the advertisement of device {v} is not signed by it for this session and round")
            peers[v] = (opened[1][:KEY_BYTES], opened[1][KEY_BYTES:])
        if peers.get(self.uid) != (self.c_pk, self.s_pk):
            self._refuse("its own public keys are missing from the advertised list or altered")
        if count < self.cfg.threshold:
            self._refuse(f"only {count} devices advertised keys, fewer than the threshold {self.cfg.threshold}")
        if len({key for pair in peers.values() for key in pair}) != 2 * len(peers):
            self._refuse("two advertised public keys are equal")
        return peers

    @_timed
    def share_keys(self, advertised: Mapping[int, bytes], receivers: Iterable[int] | None = None) -> dict[int, bytes]:
        """Round 1: shares of s_sk and b_u for every advertised peer, encrypted to it; {receiver: ciphertext}.
        (`receivers`: only those peers' ciphertexts, after checking only their advertisements and its own,
        for measuring one device's messages cheaply.)"""
        self._start(1)
        everyone = sorted(advertised if receivers is None else set(receivers) | {self.uid})
        self.peers = self._check_advertisements({v: advertised[v] for v in everyone}, len(advertised))
        self.u1 = set(advertised)
        self.b = self._random.bytes(SEED_BYTES)
        xs = np.array(everyone, np.int64) + 1
        t = self.cfg.threshold
        s_shares = shamir.share(shamir.secret_to_field(self.s_sk), xs, self._random.field((t - 1, KEY_CHUNKS)))
        b_shares = shamir.share(shamir.secret_to_field(self.b), xs, self._random.field((t - 1, SEED_CHUNKS)))
        c = crypto.private_key(self.c_sk)
        out = {}
        for v, s_share, b_share in zip(everyone, s_shares, b_shares):
            if v == self.uid:
                self.held[v] = (s_share, b_share)
                continue
            key = crypto.kdf(crypto.agree(c, self.peers[v][0]), b"share key")
            plain = struct.pack("<II", self.uid, v) + s_share.astype("<u4").tobytes() + b_share.astype("<u4").tobytes()
            blob = crypto.encrypt(key, plain, wire.share_associated(self.session, self.uid, v),
                                  self._random.bytes(NONCE_BYTES))
            out[v] = struct.pack("<II", self.uid, v) + blob
        return out

    def _receive_share(self, u: int, blob: bytes, c: crypto.X25519PrivateKey) -> bool:
        """Decrypt and keep peer u's shares; False if the ciphertext fails authentication."""
        from cryptography.exceptions import InvalidTag

        if u not in self.peers:
            return False
        key = crypto.kdf(crypto.agree(c, self.peers[u][0]), b"share key")
        try:
            plain = crypto.decrypt(key, blob[8:], wire.share_associated(self.session, u, self.uid))
        except InvalidTag:
            return False
        if struct.unpack_from("<II", plain) != (u, self.uid) or len(plain) != 8 + 4 * (KEY_CHUNKS + SEED_CHUNKS):
            return False
        s = np.frombuffer(plain, "<u4", KEY_CHUNKS, 8).astype(np.int64)
        b = np.frombuffer(plain, "<u4", SEED_CHUNKS, 8 + 4 * KEY_CHUNKS).astype(np.int64)
        self.held[u] = (s, b)
        return True

    @_timed
    def masked_input(self, received: Mapping[int, bytes], stream: MaskStream) -> bytes:
        """Round 2: y_u over the peers whose shares arrived (U2), signed, with the senders whose
        ciphertext failed authentication."""
        self._start(2)
        u2 = sorted(set(received) | {self.uid})
        if not set(u2) <= self.u1 or len(u2) < self.cfg.threshold:
            self._refuse(f"U2 of {len(u2)} devices is not a subset of U1 of at least {self.cfg.threshold}")
        c = crypto.private_key(self.c_sk)
        self.complaints = [u for u, blob in received.items() if not self._receive_share(u, blob, c)]
        self.u2 = u2
        y: np.ndarray = self.x.astype(stream.dtype).copy()
        stream.add(y, crypto.kdf(self.b, b"self mask"), +1)
        s = crypto.private_key(self.s_sk)
        for v in u2:
            if v != self.uid:
                stream.add(y, crypto.kdf(crypto.agree(s, self.peers[v][1]), b"pair mask"), +1 if self.uid < v else -1)
        y &= stream.dtype((1 << self.cfg.modulus_bits) - 1)
        body = wire.pack_bits(y, self.cfg.modulus_bits) + wire.ids(self.complaints)
        return wire.signed(self._signing_key, self.session, 2, self.uid, body)

    @_timed
    def consistency_check(self, u3: Iterable[int]) -> bytes:
        """Round 3: sign U3, if it lies within this device's U2, holds it, and has at least t devices."""
        self._start(3)
        u3 = sorted(set(u3))
        if not set(u3) <= set(self.u2) or self.uid not in u3 or len(u3) < self.cfg.threshold:
            self._refuse(f"U3 {u3} is not a set of at least {self.cfg.threshold} of its U2 {self.u2} including it")
        self.u3 = u3
        return wire.acknowledgement(self._signing_key, self.session, self.uid, u3)

    @_timed
    def unmask(self, acknowledgements: Mapping[int, bytes]) -> bytes:
        """Round 4: given at least t valid signatures of its own U3 by devices of U3, shares of s_sk_v for
        v in U2 \\ U3 and of b_v for v in U3, signed."""
        self._start(4)
        signers = set(acknowledgements)
        if not signers <= set(self.u3) or len(signers) < self.cfg.threshold:
            self._refuse(f"{len(signers)} acknowledgements from {sorted(signers)}: need at least "
                         f"{self.cfg.threshold}, all from its U3 {self.u3}")
        for v, ack in acknowledgements.items():
            opened = wire.open_signed(ack, self.session, 3, self.pki, wire.ids(self.u3))
            if opened is None or opened[0] != v:
                self._refuse(f"device {v}'s acknowledgement is not its signature of the U3 this device signed")
        wanted = [(v, 0) for v in sorted(set(self.u2) - set(self.u3))] + [(v, 1) for v in self.u3]
        body = b"".join(struct.pack("<IB", v, kind) + self.held[v][kind].astype("<u4").tobytes()
                        for v, kind in wanted if v in self.held)
        return wire.signed(self._signing_key, self.session, 4, self.uid, body)


# --- the honest server ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SecAggResult:
    """One group's session, as the honest server ends it."""

    total: np.ndarray | None  # sum over U3 of the inputs mod 2^modulus_bits; None if aborted
    included: np.ndarray  # bool per device: its input is in the sum (U3)
    aborted: str  # "" or the reason the server gave up
    telemetry: list[dict]  # per round: phase, devices heard from, bytes received, devices discarded
    bytes_sent: dict[str, np.ndarray]  # phase -> bytes each device sent (measured from serialised messages)
    server_seconds: float  # server compute (rounds 0-4, reconstruction and unmasking)
    client_seconds: np.ndarray  # per device, compute over all rounds
    server_view: dict[int, bytes]  # masked-input messages the server received


def dropout_rounds(dropout_round: npt.ArrayLike | None, n: int) -> np.ndarray:
    """The round each of n devices stops sending in, checked (None: nobody drops out)."""
    if dropout_round is None:
        return np.full(n, COMPLETES)
    r = validate.integers("dropout_round", dropout_round, 0, COMPLETES)
    if r.shape != (n,):
        raise ValueError(f"dropout_round must be one int in [0, {COMPLETES}] per device (the round it stops "
                         f"sending in; {COMPLETES}: never), shape ({n},); got shape {r.shape}")
    return r


class _Server:
    """The server's bookkeeping: bytes and devices heard per round, the abort reason, compute seconds."""

    def __init__(self, cfg: SecAggConfig) -> None:
        self.cfg = cfg
        self.seconds = 0.0
        self.telemetry: list[dict] = []
        self.bytes_sent = {p: np.zeros(cfg.num_devices, np.int64) for p in PHASES}
        self.aborted = ""

    def heard(self, phase: str, msgs: Mapping[int, bytes | dict], valid: Iterable[int] | None = None) -> bool:
        """Record what arrived in `phase`; False (aborted) if fewer than t of it is `valid` (default: all)."""
        for u, m in msgs.items():
            self.bytes_sent[phase][u] += sum(map(len, m.values())) if isinstance(m, dict) else len(m)
        valid = set(msgs) if valid is None else set(valid)
        self.telemetry.append({"phase": phase, "devices": len(valid), "bytes": int(self.bytes_sent[phase].sum()),
                               "discarded": sorted(set(msgs) - valid)})
        if len(valid) < self.cfg.threshold:
            return self.abort(f"{phase}: {len(valid)} devices answered, fewer than the threshold "
                              f"{self.cfg.threshold}; aborted")
        return True

    def abort(self, why: str) -> bool:
        self.aborted = why
        self.telemetry[-1]["aborted"] = why
        return False


class GroupRun:
    """One session over n devices, played by an honest server: `through_masked_input()` runs rounds 0-2
    (False: aborted), `finish(masked)` the server's side of round 2 and rounds 3-4 from the masked inputs
    that arrived. A device that refuses a request counts as dropped.

    Args:
        inputs: (n, d) non-negative ints < 2^modulus_bits, one row per device.
        cfg: the group.
        dropout_round: per device, the round it stops sending in (None: nobody drops out).
        tamper: (sender, receiver) pairs whose share ciphertext the network flips a byte of.
        insecure_seed: replays every key of the session from a seed (teaching only; None: the system's).
    """

    def __init__(self, inputs: np.ndarray, cfg: SecAggConfig, dropout_round: npt.ArrayLike | None = None,
                 tamper: Iterable[tuple[int, int]] = (), insecure_seed: int | None = None) -> None:
        n = cfg.num_devices
        self.cfg, self.d = cfg, inputs.shape[1]
        self.drop, self.tamper = dropout_rounds(dropout_round, n), set(map(tuple, tamper))
        self.session, self.pki, self.devices = new_session(inputs, cfg, insecure_seed)
        self.server = _Server(cfg)
        self.stream = MaskStream(self.d, wire.word_dtype(cfg.modulus_bits))
        self.masked: dict[int, bytes] = {}
        self.total: np.ndarray | None = None
        self.u3: list[int] = []

    def alive(self, r: int) -> list[int]:
        return [u for u in range(self.cfg.num_devices) if self.drop[u] > r]

    def _ask(self, round_: int, among: Iterable[int], ask: Callable[[Device], _R]) -> dict[int, _R]:
        """{device: answer} of the devices of `among` still there in `round_` that do not refuse `ask`."""
        out = {}
        for u in sorted(set(among) & set(self.alive(round_))):
            try:
                out[u] = ask(self.devices[u])
            except RefusedRequest:
                continue
        return out

    def _opened(self, msgs: Mapping[int, bytes], round_: int, unsent: bytes = b"") -> dict[int, bytes]:
        """{u: body} of the messages validly signed by their sender u for this session and round."""
        t0 = time.perf_counter()
        out = {}
        for u, m in msgs.items():
            opened = wire.open_signed(m, self.session, round_, self.pki, unsent)
            if opened is not None and opened[0] == u:
                out[u] = opened[1]
        self.server.seconds += time.perf_counter() - t0
        return out

    def through_masked_input(self) -> bool:
        """Rounds 0-2; False if the server aborted."""
        s = self.server
        adv = self._ask(0, range(self.cfg.num_devices), lambda dev: dev.advertise())
        keys = self._opened(adv, 0)
        self.advertised = {u: adv[u] for u in keys}
        self.s_pk = {u: keys[u][KEY_BYTES:] for u in keys}  # the mask keys, for round 4
        if not s.heard("advertise_keys", adv, self.advertised):
            return False
        shares = self._ask(1, self.advertised, lambda dev: dev.share_keys(self.advertised))
        if not s.heard("share_keys", shares):
            return False
        t0 = time.perf_counter()
        inbox: dict[int, dict[int, bytes]] = {v: {} for v in shares}
        for u, out in shares.items():
            for v, blob in out.items():
                if v in inbox:
                    inbox[v][u] = blob[:-1] + bytes([blob[-1] ^ 1]) if (u, v) in self.tamper else blob
        s.seconds += time.perf_counter() - t0
        self.u2 = sorted(shares)
        self.masked = self._ask(2, inbox, lambda dev: dev.masked_input(inbox[dev.uid], self.stream))
        return True

    def finish(self, masked: Mapping[int, bytes] | None = None) -> SecAggResult:
        """Rounds 2 (server side) to 4, from the masked inputs that arrived (default: all sent)."""
        s, cfg = self.server, self.cfg
        masked = self.masked if masked is None else dict(masked)
        self.server_view = masked
        nbytes = -(-self.d * cfg.modulus_bits // 8)
        bodies = self._opened({u: m for u, m in masked.items() if u in self.u2}, 2)
        complaints = {u: wire.read_ids(body, nbytes) for u, body in bodies.items()}
        valid = {u: bodies[u] for u, c in complaints.items() if c is not None}
        # `valid` holds only the devices whose complaints parsed, so complaints[u] is a list there
        u3 = sorted(set(valid) - {v for u in valid for v in complaints[u]})  # type: ignore[union-attr]
        if not s.heard("masked_input", masked, u3):
            return self.result()
        acks = self._ask(3, u3, lambda dev: dev.consistency_check(u3))
        signers = sorted(self._opened(acks, 3, wire.ids(u3)))
        if not s.heard("consistency_check", acks, signers):
            return self.result()
        signatures = {u: acks[u] for u in signers}
        answers = self._ask(4, signers, lambda dev: dev.unmask(signatures))
        shares = self._opened(answers, 4)
        if s.heard("unmasking", answers, shares):
            self._unmask(valid, u3, shares, nbytes)
        return self.result()

    def _unmask(self, valid: dict[int, bytes], u3: list[int], bodies: dict[int, bytes], nbytes: int) -> None:
        """Reconstruct the dropped devices' s_sk and the survivors' b from t shares each, then the sum."""
        s, cfg = self.server, self.cfg
        t0 = time.perf_counter()
        got: dict[tuple[int, int], dict[int, np.ndarray]] = {}
        for v, body in bodies.items():
            off = 0
            while off + 5 <= len(body):
                u, kind = struct.unpack_from("<IB", body, off)
                width = SHARE_WIDTH.get(kind, len(body))
                if off + 5 + width > len(body):
                    break
                got.setdefault((u, kind), {})[v] = np.frombuffer(body, "<u4", width // 4, off + 5)
                off += 5 + width
        dropped = sorted(set(self.u2) - set(u3))
        secrets = {}
        for u, kind in [(u, 0) for u in dropped] + [(u, 1) for u in u3]:
            shares = got.get((u, kind), {})
            if len(shares) < cfg.threshold:
                s.seconds += time.perf_counter() - t0
                s.abort(f"unmasking: only {len(shares)} shares of device {u}'s "
                        f"{'mask key' if kind == 0 else 'self-mask seed'}, fewer than the threshold; aborted")
                return
            helpers = sorted(shares)[: cfg.threshold]
            chunks = shamir.reconstruct(np.array(helpers) + 1, np.stack([shares[h] for h in helpers]))
            secrets[u, kind] = shamir.field_to_secret(chunks, KEY_BYTES if kind == 0 else SEED_BYTES)
        total: np.ndarray = np.zeros(self.d, self.stream.dtype)
        for u in u3:
            total += wire.unpack_bits(valid[u][:nbytes], self.d, cfg.modulus_bits, self.stream.dtype)
            self.stream.add(total, crypto.kdf(secrets[u, 1], b"self mask"), -1)
        for u in dropped:
            s_sk = crypto.private_key(secrets[u, 0])
            for v in u3:  # y_v holds +PRG(s_vu) if v < u, else -PRG(s_vu)
                self.stream.add(total, crypto.kdf(crypto.agree(s_sk, self.s_pk[v]), b"pair mask"),
                                -1 if v < u else +1)
        self.total = total & self.stream.dtype((1 << cfg.modulus_bits) - 1)
        self.u3 = u3
        s.seconds += time.perf_counter() - t0

    def result(self) -> SecAggResult:
        s = self.server
        included = np.zeros(self.cfg.num_devices, bool)
        if self.total is not None:
            included[self.u3] = True
        return SecAggResult(self.total, included, s.aborted, s.telemetry, s.bytes_sent, s.seconds,
                            np.array([d.seconds for d in self.devices]), getattr(self, "server_view", {}))

    def fork(self) -> GroupRun:
        """An independent copy of the session as it stands (devices' state included), so a benchmark can
        play the end of one session for several drop-out patterns."""
        return copy.deepcopy(self)


def new_session(inputs: np.ndarray, cfg: SecAggConfig,
                insecure_seed: int | None = None) -> tuple[bytes, dict, list[Device]]:
    """(session id, PKI, devices) for one group: each device's identity registered, a fresh session id."""
    if insecure_seed is not None:
        validate.seed("insecure_seed", insecure_seed)
    session = crypto.randomness(insecure_seed, SERVER_STREAM).bytes(SESSION_BYTES)
    sources = [crypto.randomness(insecure_seed, u) for u in range(cfg.num_devices)]
    identities = [crypto.signing_keypair(src) for src in sources]
    pki = {u: verifying for u, (_, verifying) in enumerate(identities)}
    devices = [Device(u, inputs[u], cfg, session, identities[u][0], pki, sources[u]) for u in range(cfg.num_devices)]
    return session, pki, devices


def secure_aggregate(inputs: np.ndarray, threshold: int, modulus_bits: int, *,
                     dropout_round: npt.ArrayLike | None = None, tamper: Iterable[tuple[int, int]] = (),
                     insecure_seed: int | None = None) -> SecAggResult:
    """Run one session for a group.

    Args:
        inputs: (n, d) non-negative ints < 2^modulus_bits, one row per device.
        threshold: t (n/2 < t <= n).
        modulus_bits: inputs and sums live in Z_{2^modulus_bits}.
        dropout_round: per device, the round it stops sending in (0 advertise ... 4 unmasking; 5 never).
        tamper: (sender, receiver) pairs whose share ciphertext the network flips a byte of.
        insecure_seed: makes the run repeatable and insecure (every key recomputable from it).
    """
    inputs = validate.integers("inputs", inputs, 0, ndim=2)
    cfg = SecAggConfig(len(inputs), threshold, modulus_bits)
    if inputs.size and int(inputs.max()) >= 2**modulus_bits:
        raise ValueError(f"inputs must be < 2^modulus_bits = {2**modulus_bits}, got {int(inputs.max())}")
    tamper = [tuple(validate.integers("tamper", pair, 0, cfg.num_devices - 1)) for pair in tamper]
    run = GroupRun(inputs, cfg, dropout_round, tamper, insecure_seed)
    return run.finish() if run.through_masked_input() else run.result()
