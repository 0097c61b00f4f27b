"""The byte formats of Secure Aggregation's messages (`secagg`): bit-packed vectors, id lists, and the
signed envelope that binds a device's message to its session and round.

A signed message is uid (u4) || body || Ed25519 signature (64 bytes) of the statement
"secagg" || session || round (u1) || uid (u4) || body || unsent, where `unsent` is what both ends already
know (the U3 a round-3 signature covers). A share ciphertext carries session || round || sender || receiver
as AES-GCM associated data. So a message replayed from another session or round, or by another device,
fails its check.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping

import numpy as np

from mlsys_core.fl import crypto
from mlsys_core.fl.crypto import SIGNATURE_BYTES

ID_BYTES = 4


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
    """The d values of `pack_bits`, as `dtype`.

    Args:
        blob: what `pack_bits` wrote.
        d: how many values.
        bits: bits per value.
        dtype: the integer dtype of the result.
    """
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


def word_dtype(modulus_bits: int) -> type:
    """The unsigned dtype that holds values mod 2^modulus_bits and their sums' wrap-around."""
    return np.uint32 if modulus_bits <= 32 else np.uint64


def ids(ids: Iterable[int]) -> bytes:
    """A list of device ids: its length, then each id (uint32 little-endian)."""
    ids = list(ids)
    return struct.pack(f"<I{len(ids)}I", len(ids), *ids)


def read_ids(blob: bytes, offset: int = 0) -> list[int] | None:
    """The ids `_ids` wrote at `offset`, which must end the blob; None if it is malformed."""
    if len(blob) < offset + 4:
        return None
    (n,) = struct.unpack_from("<I", blob, offset)
    return list(struct.unpack_from(f"<{n}I", blob, offset + 4)) if len(blob) == offset + 4 + 4 * n else None


def statement(session: bytes, round_: int, uid: int, body: bytes) -> bytes:
    """What a device signs: the session, the round, its id and the message's content.

    Args:
        session: the session id.
        round_: the protocol round.
        uid: the device's id.
        body: the message's content.
    """
    return b"secagg" + session + struct.pack("<BI", round_, uid) + body


def signed(signing_key: bytes, session: bytes, round_: int, uid: int, body: bytes, unsent: bytes = b"") -> bytes:
    """uid || body || signature over the statement of body + unsent.

    Args:
        signing_key: the sender's Ed25519 identity.
        session: the session id.
        round_: the protocol round.
        uid: the sender's id.
        body: what is sent.
        unsent: what is signed but not sent (both ends already know it).
    """
    signature = crypto.sign(signing_key, statement(session, round_, uid, body + unsent))
    return struct.pack("<I", uid) + body + signature


def open_signed(msg: bytes, session: bytes, round_: int, pki: Mapping[int, bytes],
                unsent: bytes = b"") -> tuple[int, bytes] | None:
    """(sender, body) of a message made by `signed`, or None if it is malformed or its signature fails.

    Args:
        msg: the message.
        session: the session id it must name.
        round_: the protocol round it must name.
        pki: device id -> verifying key.
        unsent: what the sender signed but did not send.
    """
    if len(msg) < ID_BYTES + SIGNATURE_BYTES:
        return None
    (uid,) = struct.unpack_from("<I", msg)
    body = msg[ID_BYTES:-SIGNATURE_BYTES]
    if uid not in pki or not crypto.verify(pki[uid], msg[-SIGNATURE_BYTES:], statement(session, round_, uid,
                                                                                          body + unsent)):
        return None
    return uid, body


def share_associated(session: bytes, sender: int, receiver: int) -> bytes:
    """The associated data of a share ciphertext: the session, the round (1), sender and receiver."""
    return session + struct.pack("<BII", 1, sender, receiver)


def acknowledgement(signing_key: bytes, session: bytes, uid: int, u3: list[int]) -> bytes:
    """A device's round-3 message: its signature of U3 (U3 itself is not sent back).

    Args:
        signing_key: the device's Ed25519 identity.
        session: the session id.
        uid: the device's id.
        u3: the U3 it signs.
    """
    return signed(signing_key, session, 3, uid, b"", ids(u3))
