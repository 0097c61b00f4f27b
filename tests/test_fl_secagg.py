"""Paper 3: Secure Aggregation per Aggregator group (pairwise masks, Shamir recovery of drop-outs)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_core.fl import secagg

# X25519 comes from `cryptography`, which the GPU machine lacks: tests that agree on keys skip there.
try:
    import cryptography  # noqa: F401
except ImportError:
    HAVE_CRYPTOGRAPHY = False
else:
    HAVE_CRYPTOGRAPHY = True
needs_cryptography = pytest.mark.skipif(not HAVE_CRYPTOGRAPHY,
                                        reason="X25519 key agreement needs the cryptography package")


@given(secret=st.integers(0, secagg.PRIME - 1), n=st.integers(2, 12), data=st.data())
@settings(max_examples=40, deadline=None)
def test_shamir_any_t_shares_reconstruct(secret, n, data):
    t = data.draw(st.integers(1, n))
    shares = secagg.shamir_share(secret, n, t, np.random.default_rng(n))
    pick = data.draw(st.permutations(range(1, n + 1)))[:t]
    assert secagg.shamir_reconstruct({x: shares[x - 1] for x in pick}) == secret


@needs_cryptography
@given(n=st.integers(3, 10), d=st.integers(1, 40), data=st.data())
@settings(max_examples=15, deadline=None)
def test_server_learns_exactly_the_survivors_sum(n, d, data):
    rng = np.random.default_rng(n * 100 + d)
    inputs = rng.integers(0, 2**12, size=(n, d))
    dropped = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    t = data.draw(st.integers(2, n))
    res = secagg.secure_aggregate(inputs, dropped, threshold=t, modulus_bits=16, seed=1)
    if (~dropped).sum() < t:
        assert res.total is None
    else:
        assert np.array_equal(res.total, inputs[~dropped].sum(0) % 2**16)


@needs_cryptography
def test_x25519_agrees_on_a_key_and_matches_rfc7748():
    # RFC 7748 section 5.2, first test vector
    scalar = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    assert secagg.agree(scalar, u).hex() == "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    a, b = bytes(range(32)), bytes(range(5, 37))
    pa, pb = secagg.public_key(a), secagg.public_key(b)
    assert secagg.agree(a, pb) == secagg.agree(b, pa) != pa


@needs_cryptography
def test_zero_inputs_sum_to_zero_and_bytes_match_the_formula():
    inputs = np.zeros((5, 64), np.int64)
    res = secagg.secure_aggregate(inputs, np.zeros(5, bool), threshold=3, modulus_bits=20, seed=0)
    assert np.array_equal(res.total, np.zeros(64))
    sent = secagg.message_bytes(5, 64, 20)
    assert np.all(res.bytes_sent == sum(sent.values())) and sent["masked_input"] == 160
    assert res.pair_masks == 5 * 4  # quadratic in the group size
    assert 1.6 < secagg.expansion(2**10, 2**20, 16) < 1.9  # the paper reports 1.73x
    with pytest.raises(ValueError, match="threshold"):
        secagg.secure_aggregate(inputs, np.zeros(5, bool), threshold=9, modulus_bits=20, seed=0)


@pytest.mark.parametrize("inputs, dropped", [
    (np.zeros(5, np.int64), np.zeros(5, bool)),  # 1-D: not one row per device
    (np.full((5, 4), -1), np.zeros(5, bool)),  # negative
    (np.zeros((5, 4)), np.zeros(5, bool)),  # floats
    (np.zeros((5, 4), np.int64), np.zeros(4, bool)),  # one drop flag short
])
def test_bad_inputs_are_rejected_with_a_clear_message(inputs, dropped):
    with pytest.raises(ValueError, match="inputs|dropped"):
        secagg.secure_aggregate(inputs, dropped, threshold=3, modulus_bits=16, seed=0)
