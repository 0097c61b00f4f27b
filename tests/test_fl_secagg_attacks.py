"""Secure Aggregation against a malicious server (CCS 2017's actively secure protocol): each attack is run for
real against honest devices and must fail. A server that ends with t shares of both secrets of a device u
(the mask key s_sk_u and the self-mask seed b_u) recovers x_u from y_u; `recover_input` shows that it would."""

import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_core.fl import crypto, secagg, shamir, wire
from mlsys_core.fl.secagg_attacks import double_unmasking, recover_input, revealed, seed_recovery

pytest.importorskip("cryptography", reason="the protocol runs on the cryptography package")

N, T, D, BITS = 10, 6, 40, 16
X = np.random.default_rng(0).integers(0, 2**12, size=(N, D))


def _session(n=N, t=None, insecure_seed=None):
    """A session of n devices (threshold n // 2 + 1 unless given) played honestly through the masked inputs."""
    run = secagg.GroupRun(X[:n], secagg.SecAggConfig(n, t or n // 2 + 1, BITS), insecure_seed=insecure_seed)
    assert run.through_masked_input()
    return run


def _secret(run, holders, u: int, kind: int) -> bytes:
    """Device u's s_sk (kind 0) or b (kind 1) from the shares `holders` hold."""
    xs = np.array(holders) + 1
    chunks = shamir.reconstruct(xs, np.stack([run.devices[h].held[u][kind] for h in holders]))
    return shamir.field_to_secret(chunks, crypto.KEY_BYTES if kind == 0 else secagg.SEED_BYTES)


@pytest.mark.parametrize("n", [3, 5, 7, 10])
def test_asking_the_same_devices_twice_gets_one_secret_of_the_target_not_both(n):
    run, target, t = _session(n), 0, n // 2 + 1
    helpers = list(range(1, t + 1))
    # had the helpers answered both requests, their shares would give x_target exactly
    both = (_secret(run, helpers, target, 0), _secret(run, helpers, target, 1))
    assert np.array_equal(recover_input(run, target, *both), X[target])
    everyone = list(range(n))
    acks = {u: run.devices[u].consistency_check(everyone) for u in helpers}
    first = set().union(*(revealed(run, run.devices[u].unmask(acks)) for u in helpers))
    assert (target, 1) in first and (target, 0) not in first  # b_target only: target was in U3
    without = [u for u in everyone if u != target]
    for u in helpers:
        with pytest.raises(secagg.RefusedRequest, match="answered once"):
            run.devices[u].unmask(acks)
        with pytest.raises(secagg.RefusedRequest, match="aborted"):
            run.devices[u].consistency_check(without)


def test_a_split_view_of_u3_cannot_gather_t_signatures_for_the_second_view():
    run = _session()
    with_target, without = list(range(N)), list(range(1, N))  # the target is device 0
    a, b = list(range(1, T + 1)), list(range(T + 1, N))  # t devices see U3 with the target, n - t without
    acks_a = {u: run.devices[u].consistency_check(with_target) for u in a}
    acks_b = {u: run.devices[u].consistency_check(without) for u in b}
    with pytest.raises(secagg.RefusedRequest, match="acknowledgements"):  # too few signatures of its U3
        run.devices[b[0]].unmask(acks_b)
    with pytest.raises(secagg.RefusedRequest, match="not its signature of the U3"):  # others signed another U3
        run.devices[b[1]].unmask(acks_a | acks_b)
    with pytest.raises(secagg.RefusedRequest, match="aborted"):  # and a device that refused stays out
        run.devices[b[0]].unmask(acks_a | acks_b)


def test_forged_and_foreign_acknowledgements_are_refused():
    everyone = list(range(N))
    for forge in ("random bytes", "another session", "another device's key"):
        run = _session()
        acks = {u: run.devices[u].consistency_check(everyone) for u in range(N)}
        if forge == "random bytes":
            acks[3] = struct.pack("<I", 3) + bytes(crypto.SIGNATURE_BYTES)
        elif forge == "another session":
            other = _session()
            acks[3] = other.devices[3].consistency_check(everyone)
        else:
            acks[3] = wire.acknowledgement(run.devices[4]._signing_key, run.session, 3, everyone)
        with pytest.raises(secagg.RefusedRequest, match="device 3's acknowledgement"):
            run.devices[0].unmask(acks)


@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_no_sequence_of_requests_gets_t_shares_of_both_secrets_of_any_device(data):
    """A server free to send any U3 to any device, in any order, with any mix of the signatures it has
    collected: for every device it ends with fewer than t shares of its mask key or of its seed."""
    n, t = 7, 4
    run = _session(n, t)
    signed: dict[tuple[int, ...], dict[int, bytes]] = {}  # U3 -> {signer: signature}
    shares: dict[tuple[int, int], set[int]] = {}  # (device, kind) -> devices that revealed a share
    for _ in range(data.draw(st.integers(1, 25), label="requests")):
        u = data.draw(st.integers(0, n - 1), label="device")
        try:
            if data.draw(st.booleans(), label="consistency?"):
                u3 = tuple(sorted({u} | data.draw(st.sets(st.integers(0, n - 1), min_size=t - 1), label="U3")))
                signed.setdefault(u3, {})[u] = run.devices[u].consistency_check(u3)
            else:
                pool = [(v, sig) for sigs in signed.values() for v, sig in sigs.items()]
                picks = data.draw(st.lists(st.sampled_from(pool), max_size=n), label="signatures") if pool else []
                for peer, kind in revealed(run, run.devices[u].unmask(dict(picks))):
                    shares.setdefault((peer, kind), set()).add(u)
        except secagg.RefusedRequest:
            continue
    for x in range(n):
        assert min(len(shares.get((x, 0), ())), len(shares.get((x, 1), ()))) < t


def test_a_replayed_or_misattributed_masked_input_is_discarded_and_the_sum_stays_exact():
    old, new = _session(), _session()
    for forged in (old.masked[3],  # device 3's masked input from another session
                   new.advertised[3],  # its message of another round
                   struct.pack("<I", 3) + new.masked[4][4:],  # device 4's, relabelled
                   new.masked[3][:-1] + bytes([new.masked[3][-1] ^ 1])):  # one bit flipped
        run = new.fork()
        res = run.finish(run.masked | {3: forged})
        assert res.aborted == "" and res.telemetry[2]["discarded"] == [3]
        assert not res.included[3] and res.included.sum() == N - 1
        assert np.array_equal(res.total, X[res.included].sum(0) % 2**BITS)


def test_a_share_ciphertext_replayed_from_another_session_fails_authentication():
    cfg = secagg.SecAggConfig(N, T, BITS)
    runs = [secagg.GroupRun(X, cfg, insecure_seed=1) for _ in range(2)]
    runs[1].session = bytes(secagg.SESSION_BYTES)  # a second session, every key as in the first
    for dev in runs[1].devices:
        dev.session = runs[1].session
    adv = [{u: d.advertise() for u, d in enumerate(r.devices)} for r in runs]
    out = [{u: d.share_keys(a) for u, d in enumerate(r.devices)} for r, a in zip(runs, adv)]
    inbox = {u: out[1][u][0] for u in range(1, N)} | {2: out[0][2][0]}  # device 2's ciphertext replayed
    runs[1].devices[0].masked_input(inbox, runs[1].stream)
    assert runs[1].devices[0].complaints == [2]


def test_substituted_public_keys_are_refused():
    run = secagg.GroupRun(X, secagg.SecAggConfig(N, T, BITS))
    adv = {u: d.advertise() for u, d in enumerate(run.devices)}
    server_keys = crypto.exchange_keypair(crypto.SystemRandomness())[1] * 2
    unsigned = struct.pack("<I", 5) + server_keys + adv[5][-crypto.SIGNATURE_BYTES:]
    with pytest.raises(secagg.RefusedRequest, match="advertisement of device 5 is not signed"):
        run.devices[0].share_keys(adv | {5: unsigned})
    with pytest.raises(secagg.RefusedRequest, match="its own public keys are missing"):
        run.devices[1].share_keys({u: m for u, m in adv.items() if u != 1})


def test_a_device_refuses_to_be_isolated():
    run = secagg.GroupRun(X, secagg.SecAggConfig(N, T, BITS))
    adv = {u: d.advertise() for u, d in enumerate(run.devices)}
    out = {u: d.share_keys(adv) for u, d in enumerate(run.devices)}
    with pytest.raises(secagg.RefusedRequest, match="U2 of 3 devices"):  # y_0 would carry few pair masks
        run.devices[0].masked_input({1: out[1][0], 2: out[2][0]}, run.stream)
    run.devices[1].masked_input({u: out[u][1] for u in range(N) if u != 1}, run.stream)
    with pytest.raises(secagg.RefusedRequest, match="U3"):
        run.devices[1].consistency_check([1, 2, 3])


def test_the_seed_recovery_attack_works_on_an_insecure_seed_only():
    seeded = seed_recovery(X, T, BITS, insecure_seed=3)
    assert seeded.recovered.all()
    assert not seed_recovery(X, T, BITS, insecure_seed=None, guesses=range(50)).recovered.any()
    assert not seed_recovery(X, T, BITS, insecure_seed=51, guesses=range(50)).recovered.any()  # a wrong guess


@pytest.mark.parametrize("n", [3, 5, 7, 10])
def test_the_double_unmasking_experiment_recovers_nothing(n):
    out = double_unmasking(X[:n], n // 2 + 1, BITS, target=1)
    assert out.seed_shares == n // 2 + 1 and out.key_shares == 0 and not out.recovered
    assert len(out.refusals) == n // 2 + 1 and all("answered once" in r or "aborted" in r for r in out.refusals)


def test_a_reused_insecure_seed_leaks_the_difference_of_two_inputs_and_fresh_keys_do_not():
    x2 = (X + 7) % 2**12
    for seed, leaks in ((5, True), (None, False)):
        y = []
        for x in (X, x2):
            res = secagg.secure_aggregate(x, T, BITS, insecure_seed=seed)
            y.append(wire.unpack_bits(res.server_view[0][4: 4 + D * BITS // 8], D, BITS, np.int64))
        assert np.array_equal((y[0] - y[1]) % 2**BITS, (X[0] - x2[0]) % 2**BITS) == leaks
