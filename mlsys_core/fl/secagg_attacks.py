"""A malicious server against Secure Aggregation (`secagg`): the attacks notebook 03b runs, for real, against
honest devices.

A server that holds t shares of both secrets of a device u, its mask key s_sk_u and its self-mask seed b_u,
strips every mask from y_u and reads x_u (`recover_input`). The protocol's defence is that no device reveals
both: each signs one U3 and answers one unmasking request. `double_unmasking` asks the same devices twice,
once with the target in U3 and once without; `seed_recovery` recomputes keys from a guessed seed, which
works only on a run made with an insecure seed.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable

import numpy as np

from mlsys_core import validate
from mlsys_core.fl import crypto, secagg, shamir, wire


def revealed(run: secagg.GroupRun, answer: bytes) -> set[tuple[int, int]]:
    """The (device, kind) secrets a round-4 answer holds a share of (kind 0: s_sk, 1: b), as the server reads
    it; empty if the answer is not validly signed."""
    opened = wire.open_signed(answer, run.session, 4, run.pki)
    if opened is None:
        return set()
    body, out, off = opened[1], set(), 0
    while off + 5 <= len(body):
        u, kind = struct.unpack_from("<IB", body, off)
        out.add((u, kind))
        off += 5 + secagg.SHARE_WIDTH.get(kind, len(body))
    return out


def recover_input(run: secagg.GroupRun, u: int, s_sk: bytes, b: bytes) -> np.ndarray:
    """x_u from the server's view (y_u and the advertised mask keys) and both secrets of device u.

    Args:
        run: the session, through its masked inputs.
        u: the target device.
        s_sk: its mask key (the private X25519 key its pair masks derive from).
        b: its self-mask seed.
    """
    bits, dtype = run.cfg.modulus_bits, run.stream.dtype
    y = wire.unpack_bits(run.masked[u][4: 4 + -(-run.d * bits // 8)], run.d, bits, dtype)
    run.stream.add(y, crypto.kdf(b, b"self mask"), -1)
    for v in run.u2:  # y_u holds +PRG(s_uv) for u < v and -PRG(s_uv) for u > v
        if v != u:
            run.stream.add(y, crypto.kdf(crypto.agree(s_sk, run.s_pk[v]), b"pair mask"), -1 if u < v else +1)
    return y & dtype((1 << bits) - 1)


def _secret(shares: dict[int, np.ndarray], kind: int, threshold: int) -> bytes:
    helpers = sorted(shares)[:threshold]
    chunks = shamir.reconstruct(np.array(helpers) + 1, np.stack([shares[h] for h in helpers]))
    return shamir.field_to_secret(chunks, crypto.KEY_BYTES if kind == 0 else secagg.SEED_BYTES)


@dataclasses.dataclass(frozen=True)
class DoubleUnmasking:
    """What the server got from asking t devices to unmask twice, with the target in U3 and then without."""

    target: int  # the device attacked
    threshold: int  # t, the shares needed of each secret
    seed_shares: int  # shares of the target's self-mask seed b collected
    key_shares: int  # shares of the target's mask key s_sk collected
    refusals: tuple[str, ...]  # what the devices said to the second request
    recovered: bool  # the server read the target's input exactly


def double_unmasking(inputs, threshold: int, modulus_bits: int, target: int = 0,
                     insecure_seed: int | None = None) -> DoubleUnmasking:
    """Run a session honestly through the masked inputs, then the attack on device `target`.

    Args:
        inputs: (n, d) non-negative ints < 2^modulus_bits, one row per device.
        threshold: t (n/2 < t <= n).
        modulus_bits: inputs and sums live in Z_{2^modulus_bits}.
        target: the device attacked.
        insecure_seed: replays every key from a seed (None: the system's randomness).
    """
    inputs = validate.integers("inputs", inputs, 0, ndim=2)
    run = secagg.GroupRun(inputs, secagg.SecAggConfig(len(inputs), threshold, modulus_bits),
                          insecure_seed=insecure_seed)
    target = validate.integer("target", target, 0, len(inputs) - 1)
    if not run.through_masked_input():
        raise ValueError(f"the session aborted before the attack: {run.server.aborted}")
    helpers = [u for u in range(len(inputs)) if u != target][:threshold]
    shares: dict[int, dict[int, np.ndarray]] = {0: {}, 1: {}}
    refusals = []
    for u3 in (range(len(inputs)), [u for u in range(len(inputs)) if u != target]):
        signatures = {}
        for u in helpers:
            try:
                signatures[u] = run.devices[u].consistency_check(u3)
            except secagg.RefusedRequest as e:
                refusals.append(str(e))
        for u in signatures:
            try:
                answer = run.devices[u].unmask(signatures)
            except secagg.RefusedRequest as e:
                refusals.append(str(e))
                continue
            for kind in {k for v, k in revealed(run, answer) if v == target}:
                shares[kind][u] = run.devices[u].held[target][kind]
    recovered = min(map(len, shares.values())) >= threshold and np.array_equal(
        recover_input(run, target, _secret(shares[0], 0, threshold), _secret(shares[1], 1, threshold)),
        inputs[target])
    return DoubleUnmasking(target, threshold, len(shares[1]), len(shares[0]), tuple(refusals), bool(recovered))


@dataclasses.dataclass(frozen=True)
class SeedRecovery:
    """Which devices' inputs a server recovered by recomputing their keys from guessed seeds."""

    insecure_seed: int | None  # the seed the run was made with (None: the system's randomness)
    guesses: tuple[int, ...]  # the seeds the server tried
    recovered: np.ndarray  # bool per device: the server read its input


def seed_recovery(inputs, threshold: int, modulus_bits: int, insecure_seed: int | None,
                  guesses: Iterable[int] = range(20)) -> SeedRecovery:
    """Run a session with `insecure_seed` (None: keys from the system); then, from the server's view alone,
    try each guessed seed: redraw a device's identity, c_sk, s_sk and b in the order a device draws them
    and, where s_sk matches the advertised key, unmask its input.

    Args:
        inputs: (n, d) non-negative ints < 2^modulus_bits, one row per device.
        threshold: t (n/2 < t <= n).
        modulus_bits: inputs and sums live in Z_{2^modulus_bits}.
        insecure_seed: the seed the session's keys come from (None: the system's randomness).
        guesses: the seeds the server tries.
    """
    inputs = validate.integers("inputs", inputs, 0, ndim=2)
    guesses = validate.seeds("guesses", guesses)
    run = secagg.GroupRun(inputs, secagg.SecAggConfig(len(inputs), threshold, modulus_bits),
                          insecure_seed=insecure_seed)
    if not run.through_masked_input():
        raise ValueError(f"the session aborted before the attack: {run.server.aborted}")
    recovered = np.zeros(len(inputs), bool)
    for seed in guesses:
        for u in np.flatnonzero(~recovered):
            source = crypto.SeededRandomness(seed, int(u))
            source.bytes(2 * crypto.KEY_BYTES)  # the identity key and c_sk
            s_sk, b = source.bytes(crypto.KEY_BYTES), source.bytes(secagg.SEED_BYTES)
            if crypto.public_key(s_sk) == run.s_pk[u]:
                recovered[u] = np.array_equal(recover_input(run, int(u), s_sk, b), inputs[u])
    return SeedRecovery(insecure_seed, guesses, recovered)
