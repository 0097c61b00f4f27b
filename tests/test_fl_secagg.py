"""Paper 3: Secure Aggregation as in CCS 2017 (two key pairs, encrypted shares, drop-outs at every round)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_core.fl import secagg

# X25519 and AES come from `cryptography`; tests that run the protocol skip where it is missing.
try:
    import cryptography  # noqa: F401
except ImportError:
    HAVE_CRYPTOGRAPHY = False
else:
    HAVE_CRYPTOGRAPHY = True
needs_cryptography = pytest.mark.skipif(not HAVE_CRYPTOGRAPHY, reason="needs the cryptography package")

N, T, D, BITS = 10, 6, 50, 16
X = np.random.default_rng(0).integers(0, 2**12, size=(N, D))


@given(secret=st.binary(min_size=16, max_size=32), n=st.integers(3, 12), data=st.data())
@settings(max_examples=30, deadline=None)
def test_shamir_any_t_shares_reconstruct_and_t_minus_1_do_not(secret, n, data):
    t = data.draw(st.integers(2, n))
    chunks = secagg.secret_to_field(secret)
    shares = secagg.shamir_share(chunks, np.arange(1, n + 1), t, np.random.default_rng(n))
    pick = np.array(data.draw(st.permutations(range(n)))[:t])
    back = secagg.shamir_reconstruct(pick + 1, shares[pick])
    assert secagg.field_to_secret(back, len(secret)) == secret
    # t - 1 shares: the interpolation through them is a different polynomial's constant term
    short = secagg.shamir_reconstruct(pick[:-1] + 1, shares[pick[:-1]])
    assert not np.array_equal(short, chunks) or t == 1


def test_bit_packing_round_trips_at_every_width():
    rng = np.random.default_rng(1)
    for bits in (1, 7, 16, 23, 32, 33, 63):
        v = rng.integers(0, 2**bits, 1001, dtype=np.uint64)
        blob = secagg.pack_bits(v, bits)
        assert len(blob) == -(-1001 * bits // 8)
        assert np.array_equal(secagg.unpack_bits(blob, 1001, bits, np.uint64), v)


@needs_cryptography
def test_x25519_agrees_on_a_key_and_matches_rfc7748():
    # RFC 7748 section 5.2, first test vector
    scalar = bytes.fromhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4")
    u = bytes.fromhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c")
    assert secagg.agree(scalar, u).hex() == "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    a, b = bytes(range(32)), bytes(range(5, 37))
    pa, pb = secagg.public_key(a), secagg.public_key(b)
    assert secagg.agree(a, pb) == secagg.agree(b, pa) != pa


def _drop(round_, count):
    r = np.full(N, secagg.COMPLETES)
    r[np.arange(count) * 3 % N] = round_  # spread over the group, not just the first ids
    return r


@needs_cryptography
@pytest.mark.parametrize("round_", range(5))
def test_exact_sum_with_n_minus_t_drop_outs_at_each_round(round_):
    res = secagg.secure_aggregate(X, T, BITS, seed=round_, dropout_round=_drop(round_, N - T))
    assert res.aborted == "" and res.total is not None
    gone = _drop(round_, N - T) < secagg.COMPLETES
    # a device that sent its masked input (drops at round 3 or 4) is still in the sum
    assert np.array_equal(res.included, ~gone if round_ <= 2 else np.ones(N, bool))
    assert np.array_equal(res.total, X[res.included].sum(0) % 2**BITS)
    assert [r["devices"] for r in res.telemetry][round_] == T


@needs_cryptography
@pytest.mark.parametrize("round_", range(5))
def test_fewer_than_t_at_any_round_aborts_and_reveals_nothing_but_the_abort(round_):
    res = secagg.secure_aggregate(X, T, BITS, seed=0, dropout_round=_drop(round_, N - T + 1))
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

    key, blob = bytes(16), secagg.encrypt(bytes(16), b"share", 1, 2, 1, bytes(12))
    assert secagg.decrypt(key, blob, 1, 2, 1) == b"share"
    flipped = blob[:20] + bytes([blob[20] ^ 1]) + blob[21:]
    for bad in ((key, flipped, 1, 2, 1), (key, blob, 2, 1, 1), (key, blob, 1, 2, 2)):  # byte, sender, round
        with pytest.raises(InvalidTag):
            secagg.decrypt(*bad)
    res = secagg.secure_aggregate(X, T, BITS, seed=0, tamper=[(3, 5)])
    assert res.aborted == "" and not res.included[3] and res.included.sum() == N - 1
    assert np.array_equal(res.total, X[res.included].sum(0) % 2**BITS)


@needs_cryptography
def test_a_request_for_both_shares_of_one_device_is_refused():
    cfg = secagg.SecAggConfig(N, T, BITS)
    devices = [secagg.Device(u, X[u], cfg, 0) for u in range(N)]
    run = secagg.GroupRun(cfg, D, devices, np.full(N, secagg.COMPLETES), set())
    assert run.through_masked_input()
    u3 = list(range(1, N))  # device 0's masked input "lost": its mask key may be asked for, not its seed too
    assert devices[4].consistency_check(u3) is not None
    with pytest.raises(secagg.RefusedRequest, match="both"):
        devices[4].unmask([0], u3 + [0])
    with pytest.raises(secagg.RefusedRequest, match="differ"):
        devices[4].unmask([], list(range(N)))  # survivors other than the U3 it acknowledged
    assert devices[4].unmask([0], u3)  # the honest request is answered


def test_a_threshold_at_or_below_half_the_group_is_rejected():
    for n, t in ((16, 2), (16, 8), (10, 11)):
        with pytest.raises(ValueError, match="threshold"):
            secagg.SecAggConfig(n, t)
    assert secagg.SecAggConfig(16, 9).threshold == 9
    with pytest.raises(ValueError, match="threshold"):
        secagg.secure_aggregate(X, N // 2, BITS, seed=0)


@needs_cryptography
def test_one_masked_input_is_independent_of_its_plaintext():
    """Chi-square over 25,600 masked copies of one value (8-bit modulus, 100 per residue): uniform for
    the plaintext 0 and for 200, and the two histograms are indistinguishable."""
    bits, d = 8, 25_600
    hists = []
    for value in (0, 200):
        x = np.zeros((4, d), np.int64)
        x[1] = value
        res = secagg.secure_aggregate(x, 3, bits, seed=7)
        y = secagg.unpack_bits(res.server_view[1][4: 4 + d], d, bits, np.uint32)
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
    res = secagg.secure_aggregate(X, T, BITS, seed=0)
    sent = res.bytes_sent
    assert np.all(sent["advertise_keys"] == 4 + 2 * 32)  # id and two public keys
    assert np.all(sent["masked_input"] == 4 + -(-D * BITS // 8) + 4)  # id, packed bits, empty complaint list
    assert np.all(sent["share_keys"] == (N - 1) * (8 + 12 + 8 + 4 * (9 + 5) + 16))  # per peer: AES-GCM blob
    one = secagg.device_bytes(N, D, 12)
    assert one["masked_input"] == 4 + -(-D * (12 + 4) // 8) + 4 and one["share_keys"] == sent["share_keys"][0]
    # 16-bit inputs in a 16 + log2(64) = 22-bit modulus, plus keys and shares
    assert 22 / 16 < secagg.expansion(64, 2**16, 16) < 22 / 16 + 0.1


@pytest.mark.parametrize("inputs", [
    np.zeros(5, np.int64),  # 1-D: not one row per device
    np.full((5, 4), -1),  # negative
    np.zeros((5, 4)),  # floats
    np.full((5, 4), 2**16),  # does not fit the modulus
])
def test_bad_inputs_are_rejected_with_a_clear_message(inputs):
    with pytest.raises(ValueError, match="inputs"):
        secagg.secure_aggregate(inputs, 3, 16, seed=0)


def test_bad_dropout_rounds_are_rejected():
    with pytest.raises(ValueError, match="dropout_round"):
        secagg.secure_aggregate(X, T, BITS, seed=0, dropout_round=np.full(N - 1, 5))
    with pytest.raises(ValueError, match="dropout_round"):
        secagg.secure_aggregate(X, T, BITS, seed=0, dropout_round=np.full(N, 6))


# --- inside the FL system: quantised float updates, Aggregator groups, Master Aggregator


def _round_deltas(num_clients=24, seed=0):
    import jax

    from mlsys_core.data import load_digits
    from mlsys_core.fl import fedavg

    model = fedavg.ModelConfig(batch_size=8, epochs=1)
    x, y = load_digits()
    data = fedavg.pad_clients(x, y, fedavg.dirichlet_split(y, num_clients, 0.5, seed), model.batch_size)
    params = fedavg.init_params(jax.random.key(seed), model)
    return fedavg.client_deltas(params, data, model), np.asarray(data.num_examples)


@needs_cryptography
def test_the_quantised_secure_round_equals_plain_fedavg_within_the_quantisation_step():
    import jax

    from mlsys_core.fl import fedavg

    deltas, w = _round_deltas()
    clip = 1.01 * max(float(np.abs(leaf).max()) for leaf in jax.tree.leaves(deltas))  # nothing clipped
    cfg = secagg.SecureRoundConfig(min_group=8, bits=16, clip=clip)
    sec = secagg.secure_fedavg_mean(deltas, w, cfg, seed=0)
    plain = fedavg.weighted_mean(deltas, w)
    assert [len(g) for g in sec.groups] == [8, 8, 8] and sec.included.all() and sec.aborted == ["", "", ""]
    errs = [float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(jax.tree.leaves(sec.mean),
                                                                               jax.tree.leaves(plain))]
    assert max(errs) <= cfg.step + 1e-6 and max(errs) > 0  # within one level, and really quantised
    coarse = secagg.secure_fedavg_mean(deltas, w, secagg.SecureRoundConfig(8, bits=4, clip=clip), seed=0)
    coarse_err = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                     for a, b in zip(jax.tree.leaves(coarse.mean), jax.tree.leaves(plain)))
    assert max(errs) < coarse_err <= secagg.SecureRoundConfig(8, bits=4, clip=clip).step + 1e-6
    # drop-outs in one group: the mean is over the devices included
    drops = np.full(24, secagg.COMPLETES)
    drops[[1, 2]] = 2
    part = secagg.secure_fedavg_mean(deltas, w, cfg, seed=0, dropout_round=drops)
    assert part.included.sum() == 22 and not part.included[[1, 2]].any()
    ref = fedavg.weighted_mean(deltas, w * part.included)
    assert all(np.abs(np.asarray(a) - np.asarray(b)).max() <= cfg.step + 1e-6
               for a, b in zip(jax.tree.leaves(part.mean), jax.tree.leaves(ref)))
    # every device's bytes were measured; the masked input carries 2410 weights + 1 count
    d = sum(leaf[0].size for leaf in jax.tree.leaves(deltas)) + 1
    assert np.all(sec.bytes_sent["masked_input"] > -(-d * 16 // 8)) and np.all(sec.bytes_sent["share_keys"] > 0)


def test_stochastic_rounding_is_unbiased_and_groups_are_at_least_k():
    rng = np.random.default_rng(0)
    x = np.full(200_000, 0.0123)
    q = secagg.quantize(x, 0.05, 4, rng)
    assert set(np.unique(q)) == {9, 10} and abs(secagg.dequantize(q.mean(), 0.05, 4) - 0.0123) < 2e-4
    assert [len(g) for g in secagg.aggregator_groups(30, 8)] == [10, 10, 10]
    assert [len(g) for g in secagg.aggregator_groups(15, 8)] == [15]
    assert all(len(g) >= 8 for g in secagg.aggregator_groups(127, 8))


@pytest.mark.parametrize("kw, match", [
    ({"min_group": 1}, "min_group"), ({"threshold_fraction": 0.4}, "threshold_fraction"),
    ({"threshold_fraction": 1.2}, "threshold_fraction"), ({"bits": 0}, "bits"), ({"clip": 0.0}, "clip"),
    ({"clip": -1.0}, "clip"),
])
def test_bad_secure_round_parameters_raise_a_value_error(kw, match):
    with pytest.raises(ValueError, match=match):
        secagg.SecureRoundConfig(**kw)


def test_fewer_devices_than_one_group_are_refused():
    with pytest.raises(ValueError, match="num_devices"):
        secagg.aggregator_groups(7, 8)


@needs_cryptography
@given(n=st.integers(3, 9), data=st.data())
@settings(max_examples=15, deadline=None)
def test_any_drop_out_pattern_gives_the_exact_sum_or_an_abort(n, data):
    t = data.draw(st.integers(n // 2 + 1, n))
    drops = np.array(data.draw(st.lists(st.integers(0, secagg.COMPLETES), min_size=n, max_size=n)))
    x = np.random.default_rng(n).integers(0, 2**10, size=(n, 8))
    res = secagg.secure_aggregate(x, t, 14, seed=n, dropout_round=drops)
    if res.total is None:
        assert res.aborted and not res.included.any()
    else:
        assert res.aborted == "" and np.array_equal(res.included, drops > 2)  # sent its masked input
        assert np.array_equal(res.total, x[res.included].sum(0) % 2**14)
