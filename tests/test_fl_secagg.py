"""Paper 3: Secure Aggregation as in CCS 2017 (two key pairs, encrypted shares, drop-outs at every round).
The attacks of a malicious server are in test_fl_secagg_attacks.py."""

import importlib.util
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_core.fl import crypto, secagg, secagg_cost, shamir, wire

# X25519 and AES come from `cryptography`, a runtime dependency; the protocol tests skip only where it is
# not installed (the accelerator machine).
needs_cryptography = pytest.mark.skipif(importlib.util.find_spec("cryptography") is None,
                                        reason="needs the cryptography package")

N, T, D, BITS = 10, 6, 50, 16
X = np.random.default_rng(0).integers(0, 2**12, size=(N, D))


@given(secret=st.binary(min_size=16, max_size=32), n=st.integers(3, 12), data=st.data())
@settings(max_examples=30, deadline=None)
def test_shamir_any_t_shares_reconstruct_and_t_minus_1_do_not(secret, n, data):
    t = data.draw(st.integers(2, n))
    chunks = shamir.secret_to_field(secret)
    coefficients = crypto.SeededRandomness(n, 0).field((t - 1, len(chunks)))
    shares = shamir.share(chunks, np.arange(1, n + 1), coefficients)
    pick = np.array(data.draw(st.permutations(range(n)))[:t])
    back = shamir.reconstruct(pick + 1, shares[pick])
    assert shamir.field_to_secret(back, len(secret)) == secret
    # t - 1 shares: the interpolation through them is a different polynomial's constant term
    short = shamir.reconstruct(pick[:-1] + 1, shares[pick[:-1]])
    assert not np.array_equal(short, chunks) or t == 1


def test_bit_packing_round_trips_at_every_width():
    rng = np.random.default_rng(1)
    for bits in (1, 7, 16, 23, 32, 33, 63):
        v = rng.integers(0, 2**bits, 1001, dtype=np.uint64)
        blob = wire.pack_bits(v, bits)
        assert len(blob) == -(-1001 * bits // 8)
        assert np.array_equal(wire.unpack_bits(blob, 1001, bits, np.uint64), v)


@needs_cryptography
def test_x25519_agrees_on_a_key_and_matches_rfc7748():
    # RFC 7748 section 5.2, first test vector
    scalar = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    assert crypto.agree(scalar, u).hex() == "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    a, b = bytes(range(32)), bytes(range(5, 37))
    pa, pb = crypto.public_key(a), crypto.public_key(b)
    assert crypto.agree(a, pb) == crypto.agree(b, pa) != pa


@needs_cryptography
def test_ed25519_signs_and_matches_rfc8032():
    # RFC 8032 section 7.1, test 2 (one-byte message 0x72)
    sk = bytes.fromhex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb")
    sig = crypto.sign(sk, bytes([0x72]))
    assert sig.hex().startswith("92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da")
    vk = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    assert crypto.verify(vk, sig, bytes([0x72]))
    assert not crypto.verify(vk, sig, bytes([0x73])) and not crypto.verify(vk, bytes(64), bytes([0x72]))


def _drop(round_, count):
    r = np.full(N, secagg.COMPLETES)
    r[np.arange(count) * 3 % N] = round_  # spread over the group, not just the first ids
    return r


@needs_cryptography
@pytest.mark.parametrize("round_", range(5))
def test_exact_sum_with_n_minus_t_drop_outs_at_each_round(round_):
    res = secagg.secure_aggregate(X, T, BITS, dropout_round=_drop(round_, N - T))
    assert res.aborted == "" and res.total is not None
    gone = _drop(round_, N - T) < secagg.COMPLETES
    # a device that sent its masked input (drops at round 3 or 4) is still in the sum
    assert np.array_equal(res.included, ~gone if round_ <= 2 else np.ones(N, bool))
    assert np.array_equal(res.total, X[res.included].sum(0) % 2**BITS)
    assert [r["devices"] for r in res.telemetry][round_] == T


@needs_cryptography
@pytest.mark.parametrize("round_", range(5))
def test_fewer_than_t_at_any_round_aborts_and_reveals_nothing_but_the_abort(round_):
    res = secagg.secure_aggregate(X, T, BITS, dropout_round=_drop(round_, N - T + 1))
    assert res.total is None and not res.included.any()
    assert res.aborted.startswith(secagg.PHASES[round_]) and "threshold" in res.aborted
    assert res.telemetry[-1]["aborted"] == res.aborted and len(res.telemetry) == round_ + 1
    if round_ < 4:  # no share of any secret reached the server
        assert not res.bytes_sent["unmasking"].any()
    else:  # T - 1 devices answered: fewer than t shares of every secret
        assert (res.bytes_sent["unmasking"] > 0).sum() == T - 1


@needs_cryptography
def test_a_flipped_ciphertext_byte_is_rejected_and_its_sender_treated_as_dropped():
    from cryptography.exceptions import InvalidTag

    session = bytes(16)
    key, blob = bytes(16), crypto.encrypt(bytes(16), b"share", wire.share_associated(session, 1, 2), bytes(12))
    assert crypto.decrypt(key, blob, wire.share_associated(session, 1, 2)) == b"share"
    flipped = blob[:20] + bytes([blob[20] ^ 1]) + blob[21:]
    for bad, associated in ((flipped, (session, 1, 2)), (blob, (session, 2, 1)), (blob, (bytes([1]) * 16, 1, 2))):
        with pytest.raises(InvalidTag):  # a byte, the sender, the session
            crypto.decrypt(key, bad, wire.share_associated(*associated))
    res = secagg.secure_aggregate(X, T, BITS, tamper=[(3, 5)])
    assert res.aborted == "" and not res.included[3] and res.included.sum() == N - 1
    assert np.array_equal(res.total, X[res.included].sum(0) % 2**BITS)
    assert res.telemetry[2]["discarded"] == [3]


def test_a_threshold_at_or_below_half_the_group_is_rejected():
    for n, t in ((16, 2), (16, 8), (10, 11)):
        with pytest.raises(ValueError, match="threshold"):
            secagg.SecAggConfig(n, t)
    assert secagg.SecAggConfig(16, 9).threshold == 9
    with pytest.raises(ValueError, match="threshold"):
        secagg.secure_aggregate(X, N // 2, BITS)


@needs_cryptography
def test_one_masked_input_is_independent_of_its_plaintext():
    """Chi-square over 25,600 masked copies of one value (8-bit modulus, 100 per residue): uniform for
    the plaintext 0 and for 200, and the two histograms are indistinguishable."""
    bits, d = 8, 25_600
    hists = []
    for value in (0, 200):
        x = np.zeros((4, d), np.int64)
        x[1] = value
        res = secagg.secure_aggregate(x, 3, bits)
        y = wire.unpack_bits(res.server_view[1][4: 4 + d], d, bits, np.uint32)
        hists.append(np.bincount(y, minlength=2**bits))
        assert np.array_equal(res.total, x.sum(0) % 2**bits)
    expected = d / 2**bits
    for h in hists:  # 255 degrees of freedom: the 0.1% critical value is about 330
        assert ((h - expected) ** 2 / expected).sum() < 330
    a, b = hists
    assert ((a - b) ** 2 / (a + b)).sum() < 330  # two-sample chi-square, same 0.1% level
    plain = np.bincount(np.full(d, 200), minlength=2**bits)  # the plaintext itself is far from uniform
    assert ((plain - expected) ** 2 / expected).sum() > 1e5


@needs_cryptography
def test_bytes_are_measured_from_the_serialised_messages():
    res = secagg.secure_aggregate(X, T, BITS)
    sent, sig = res.bytes_sent, crypto.SIGNATURE_BYTES
    assert np.all(sent["advertise_keys"] == 4 + 2 * 32 + sig)  # id, two public keys, signature
    # id, packed bits, empty complaint list, signature
    assert np.all(sent["masked_input"] == 4 + -(-D * BITS // 8) + 4 + sig)
    assert np.all(sent["share_keys"] == (N - 1) * (8 + 12 + 8 + 4 * (9 + 5) + 16))  # per peer: AES-GCM blob
    assert np.all(sent["consistency_check"] == 4 + sig)  # a signature of U3
    assert np.all(sent["unmasking"] == 4 + N * (5 + 4 * 5) + sig)  # a share of each survivor's seed
    one = secagg_cost.device_bytes(N, D, 12)
    assert one["masked_input"] == 4 + -(-D * (12 + 4) // 8) + 4 + sig and one["share_keys"] == sent["share_keys"][0]
    # 16-bit inputs in a 16 + log2(64) = 22-bit modulus, plus keys and shares
    assert 22 / 16 < secagg_cost.expansion(64, 2**16, 16) < 22 / 16 + 0.1


@pytest.mark.parametrize("inputs", [
    np.zeros(5, np.int64),  # 1-D: not one row per device
    np.full((5, 4), -1),  # negative
    np.full((5, 4), 0.5),  # fractions
    np.full((5, 4), 2**16),  # does not fit the modulus
])
def test_bad_inputs_are_rejected_with_a_clear_message(inputs):
    with pytest.raises(ValueError, match="inputs"):
        secagg.secure_aggregate(inputs, 3, 16)


def test_bad_dropout_rounds_are_rejected():
    with pytest.raises(ValueError, match="dropout_round"):
        secagg.secure_aggregate(X, T, BITS, dropout_round=np.full(N - 1, 5))
    with pytest.raises(ValueError, match="dropout_round"):
        secagg.secure_aggregate(X, T, BITS, dropout_round=np.full(N, 6))
    with pytest.raises(ValueError, match="tamper"):
        secagg.secure_aggregate(X, T, BITS, tamper=[(0, N)])
    with pytest.raises(ValueError, match="insecure_seed must be >= 0"):
        secagg.secure_aggregate(X, T, BITS, insecure_seed=-1)


def _exact_or_aborted(res, x, drops, t, bits):
    """The sum of exactly the devices that sent their masked input, or an abort that reveals no sum;
    an abort exactly when fewer than t devices stay to the end (the devices answering shrink round by round)."""
    if res.total is None:
        assert res.aborted and not res.included.any()
    else:
        assert res.aborted == "" and np.array_equal(res.included, drops > 2)  # sent its masked input
        assert np.array_equal(res.total, x[res.included].sum(0) % 2**bits)
    assert (res.total is None) == ((drops == secagg.COMPLETES).sum() < t)


@needs_cryptography
def test_every_drop_out_pattern_of_three_devices_gives_the_exact_sum_or_an_abort():
    x = np.random.default_rng(3).integers(0, 2**10, size=(3, 8))
    for drops in itertools.product(range(secagg.COMPLETES + 1), repeat=3):
        drops = np.array(drops)
        _exact_or_aborted(secagg.secure_aggregate(x, 2, 14, dropout_round=drops), x, drops, 2, 14)


@needs_cryptography
@given(n=st.integers(3, 7), data=st.data())
@settings(max_examples=40, deadline=None)
def test_any_drop_out_pattern_of_up_to_seven_gives_the_exact_sum_or_an_abort(n, data):
    t = data.draw(st.integers(n // 2 + 1, n))
    drops = np.array(data.draw(st.lists(st.integers(0, secagg.COMPLETES), min_size=n, max_size=n)))
    x = np.random.default_rng(n).integers(0, 2**10, size=(n, 8))
    _exact_or_aborted(secagg.secure_aggregate(x, t, 14, dropout_round=drops), x, drops, t, 14)


@needs_cryptography
def test_an_insecure_seed_replays_a_run_exactly_and_the_default_never_does():
    seeded = [secagg.secure_aggregate(X, T, BITS, insecure_seed=4).server_view for _ in range(2)]
    assert seeded[0] == seeded[1]
    fresh = [secagg.secure_aggregate(X, T, BITS).server_view for _ in range(2)]
    assert all(fresh[0][u] != fresh[1][u] for u in range(N))
