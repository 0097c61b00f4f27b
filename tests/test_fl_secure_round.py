"""Paper 3: Secure Aggregation inside a FedAvg round: quantised float updates, Aggregator groups, the
Master Aggregator."""

import importlib.util

import numpy as np
import pytest

from mlsys_core.fl import secagg, secure_round

# X25519 and AES come from `cryptography`, a runtime dependency; the protocol tests skip only where it is
# not installed (the accelerator machine).
needs_cryptography = pytest.mark.skipif(importlib.util.find_spec("cryptography") is None,
                                        reason="needs the cryptography package")


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
    cfg = secure_round.SecureRoundConfig(min_group=8, bits=16, clip=clip)
    sec = secure_round.secure_fedavg_mean(deltas, w, cfg, insecure_seed=0)
    plain = fedavg.weighted_mean(deltas, w)
    assert [len(g) for g in sec.groups] == [8, 8, 8] and sec.included.all() and sec.aborted == ["", "", ""]
    errs = [float(np.abs(np.asarray(a) - np.asarray(b)).max()) for a, b in zip(jax.tree.leaves(sec.mean),
                                                                               jax.tree.leaves(plain))]
    assert max(errs) <= cfg.step + 1e-6 and max(errs) > 0  # within one level, and really quantised
    coarse_cfg = secure_round.SecureRoundConfig(8, bits=4, clip=clip)
    coarse = secure_round.secure_fedavg_mean(deltas, w, coarse_cfg, insecure_seed=0)
    coarse_err = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
                     for a, b in zip(jax.tree.leaves(coarse.mean), jax.tree.leaves(plain)))
    assert max(errs) < coarse_err <= coarse_cfg.step + 1e-6
    # drop-outs in one group: the mean is over the devices included
    drops = np.full(24, secagg.COMPLETES)
    drops[[1, 2]] = 2
    part = secure_round.secure_fedavg_mean(deltas, w, cfg, dropout_round=drops)  # keys from the system
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
    q = secure_round.quantize(x, 0.05, 4, rng)
    assert set(np.unique(q)) == {9, 10} and abs(secure_round.dequantize(q.mean(), 0.05, 4) - 0.0123) < 2e-4
    assert [len(g) for g in secure_round.aggregator_groups(30, 8)] == [10, 10, 10]
    assert [len(g) for g in secure_round.aggregator_groups(15, 8)] == [15]
    assert all(len(g) >= 8 for g in secure_round.aggregator_groups(127, 8))


@pytest.mark.parametrize("kw, match", [
    ({"min_group": 1}, "min_group"), ({"threshold_fraction": 0.4}, "threshold_fraction"),
    ({"threshold_fraction": 1.2}, "threshold_fraction"), ({"bits": 0}, "bits"), ({"clip": 0.0}, "clip"),
    ({"clip": -1.0}, "clip"),
])
def test_bad_secure_round_parameters_raise_a_value_error(kw, match):
    with pytest.raises(ValueError, match=match):
        secure_round.SecureRoundConfig(**kw)


def test_fewer_devices_than_one_group_are_refused():
    with pytest.raises(ValueError, match="num_devices"):
        secure_round.aggregator_groups(7, 8)


@pytest.mark.parametrize("kw, error, match", [
    ({"clip": 0.0}, ValueError, "clip must be > 0"), ({"clip": float("nan")}, ValueError, "clip must be finite"),
    ({"bits": 0}, ValueError, "bits must be in"), ({"x": [0.1, float("nan")]}, ValueError, r"x\[1\] is nan"),
    ({"rng": 0}, TypeError, "rng must be Generator"),
])
def test_quantize_refuses_what_would_wrap_to_minus_two_to_the_63(kw, error, match):
    args = {"x": [0.1, -0.2], "clip": 0.5, "bits": 8, "rng": np.random.default_rng(0)} | kw
    with pytest.raises(error, match=match):
        secure_round.quantize(**args)


def test_secure_round_weights_must_be_whole_example_counts():
    deltas = {"w": np.zeros((8, 3), np.float32)}
    with pytest.raises(ValueError, match=r"weights must hold whole numbers; weights\[0\] is 1.5"):
        secure_round.secure_fedavg_mean(deltas, np.full(8, 1.5), secure_round.SecureRoundConfig())

