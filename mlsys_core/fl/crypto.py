"""The cryptographic primitives Secure Aggregation is built from, all from the `cryptography` package
(imported when first used, so the rest of `fl` runs without it).

- key agreement: X25519 (RFC 7748); both ends of a pair derive the same secret;
- signatures: Ed25519 (RFC 8032), the long-term identities of the actively secure protocol;
- key derivation: HKDF-SHA256, one key per purpose;
- authenticated encryption: AES-GCM, with associated data that binds a ciphertext to its session,
  round, sender and receiver;
- a pseudo-random generator: AES-128-CTR over a 16-byte seed, expanded straight into NumPy words.

Randomness comes from a source object. `SystemRandomness` (the operating system's CSPRNG) is the
default everywhere. `SeededRandomness` replays a run from a seed, for reproducible teaching runs, and is
insecure by construction: whoever knows the seed recomputes every key, mask and share of the run.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from mlsys_core import validate
from mlsys_core.fl.shamir import PRIME

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

KEY_BYTES, SIGNATURE_BYTES, NONCE_BYTES = 32, 64, 12


class SystemRandomness:
    """Bytes and field elements from the operating system's CSPRNG (`os.urandom`)."""

    def bytes(self, n: int) -> bytes:
        return os.urandom(n)

    def field(self, shape: tuple[int, ...]) -> np.ndarray:
        """Uniform elements of GF(PRIME): 31-bit draws, the one value equal to PRIME redrawn."""
        size = int(np.prod(shape))
        out = np.empty(0, np.int64)
        while out.size < size:
            draw = np.frombuffer(os.urandom(4 * (size - out.size)), "<u4").astype(np.int64) & PRIME
            out = np.concatenate([out, draw[draw < PRIME]])
        return out.reshape(shape)


class SeededRandomness:
    """INSECURE, for reproducible teaching runs only: NumPy's PCG64 seeded with (seed, stream). Anyone
    who knows the seed recomputes every key, mask and share drawn from it, and two runs with one seed
    use the same masks, so the difference of their masked inputs is the difference of the inputs."""

    def __init__(self, seed: int, stream: int):
        self._rng = np.random.default_rng([validate.seed("seed", seed), validate.seed("stream", stream)])

    def bytes(self, n: int) -> bytes:
        return self._rng.bytes(n)

    def field(self, shape: tuple[int, ...]) -> np.ndarray:
        return self._rng.integers(0, PRIME, size=shape, dtype=np.int64)


def randomness(insecure_seed: int | None, stream: int) -> SystemRandomness | SeededRandomness:
    """The randomness of one party: the system's, or with `insecure_seed` a `SeededRandomness`."""
    return SystemRandomness() if insecure_seed is None else SeededRandomness(insecure_seed, stream)


# --- key agreement and signatures --------------------------------------------------------------


def exchange_keypair(source) -> tuple[bytes, bytes]:
    """(private, public) X25519 key pair from 32 bytes of `source`."""
    sk = source.bytes(KEY_BYTES)
    return sk, private_key(sk).public_key().public_bytes_raw()


def private_key(private: bytes) -> X25519PrivateKey:
    """The X25519 key object of 32 private bytes (building it costs a scalar multiplication)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    return X25519PrivateKey.from_private_bytes(private)


def public_key(private: bytes) -> bytes:
    """The X25519 public key (RFC 7748) of a 32-byte private key."""
    return private_key(private).public_key().public_bytes_raw()


def agree(private, peer_public: bytes) -> bytes:
    """The X25519 shared secret of `private` (bytes or `private_key`) and a peer's public key."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    key = private_key(private) if isinstance(private, bytes) else private
    return key.exchange(X25519PublicKey.from_public_bytes(peer_public))


def signing_keypair(source) -> tuple[bytes, bytes]:
    """(signing, verifying) Ed25519 key pair from 32 bytes of `source`."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    sk = source.bytes(KEY_BYTES)
    return sk, Ed25519PrivateKey.from_private_bytes(sk).public_key().public_bytes_raw()


def sign(signing_key: bytes, message: bytes) -> bytes:
    """The 64-byte Ed25519 signature of `message`."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(signing_key).sign(message)


def verify(verifying_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether `signature` is the Ed25519 signature of `message` under `verifying_key`."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(verifying_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


# --- derivation, encryption, expansion ----------------------------------------------------------


def kdf(secret: bytes, purpose: bytes, length: int = 16) -> bytes:
    """HKDF-SHA256 of a shared secret, one key per purpose."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=b"secagg " + purpose).derive(secret)


def encrypt(key: bytes, plaintext: bytes, associated: bytes, nonce: bytes) -> bytes:
    """AES-GCM: nonce || ciphertext || tag, authenticating `associated` alongside the plaintext.

    Args:
        key: the 16-byte AES key.
        plaintext: what is encrypted.
        associated: what is authenticated alongside, not sent.
        nonce: NONCE_BYTES bytes, never reused under one key.
    """
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated)


def decrypt(key: bytes, blob: bytes, associated: bytes) -> bytes:
    """The plaintext of `encrypt`; raises `cryptography.exceptions.InvalidTag` if the ciphertext or the
    associated data differ in any bit."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], associated)


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
