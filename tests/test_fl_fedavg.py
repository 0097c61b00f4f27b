"""Paper 3: FedAvg in JAX (vmap over clients), non-IID splits, and protocol-driven training."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlsys_core.data import load_digits
from mlsys_core.fl import fedavg as F
from mlsys_core.fl.protocol import RoundConfig
from mlsys_core.fl.training import TrainConfig, federated_training

X, Y = load_digits()
MODEL = F.ModelConfig()


def _close(a, b, tol=1e-5):
    return all(np.allclose(a[k], b[k], atol=tol, rtol=tol) for k in a)


def test_dirichlet_split_is_a_partition_and_alpha_controls_skew():
    for alpha in (0.1, 100.0):
        parts = F.dirichlet_split(Y, 30, alpha, seed=0)
        flat = np.concatenate(parts)
        assert len(flat) == len(Y) and len(np.unique(flat)) == len(Y)
    classes = lambda a: np.mean([len(np.unique(Y[p])) for p in F.dirichlet_split(Y, 30, a, 0) if len(p)])  # noqa: E731
    assert classes(0.1) < 4 < 9 < classes(100.0)


@pytest.mark.parametrize("alpha", [0.0, -1.0])
def test_bad_alpha_is_rejected(alpha):
    with pytest.raises(ValueError, match="alpha"):
        F.dirichlet_split(Y, 10, alpha, 0)
    with pytest.raises(ValueError, match="alpha"):
        TrainConfig(alpha=alpha)


def test_fedavg_one_step_full_participation_equals_centralised_sgd_on_the_union():
    parts = F.dirichlet_split(Y[:600], 12, 0.5, seed=1)
    longest = max(len(p) for p in parts)
    model = dataclasses.replace(MODEL, batch_size=longest, epochs=1)  # one local step on all local data
    data = F.pad_clients(X[:600], Y[:600], parts, model.batch_size)
    params = F.init_params(jax.random.key(0), model)
    fed = F.vmap_round(params, data, data.num_examples, model)
    central = F.sgd_step(params, jnp.asarray(X[:600]), jnp.asarray(Y[:600]), model)
    assert _close(fed, central)
    assert not _close(fed, params)  # it did move


def test_vmap_loop_and_sharded_executors_agree_and_padding_changes_nothing():
    parts = F.dirichlet_split(Y, 13, 0.5, seed=2)
    data = F.pad_clients(X, Y, parts, MODEL.batch_size)
    params = F.init_params(jax.random.key(1), MODEL)
    w = data.num_examples
    ref = F.vmap_round(params, data, w, MODEL)
    assert _close(ref, F.loop_round(params, data, w, MODEL))
    sdata, sw = F.shard_clients(data, w, jax.devices())  # 13 clients padded to 16 over 8 devices
    assert sdata.x.shape[0] == 16
    assert _close(ref, F.vmap_round(params, sdata, sw, MODEL))
    padded = F.pad_clients(X, Y, parts + [np.zeros(0, np.int64)], MODEL.batch_size)
    assert _close(ref, F.vmap_round(params, padded, padded.num_examples, MODEL))


def test_federated_training_learns_on_non_iid_digits():
    rc = RoundConfig(goal_count=10, reporting_window_s=30.0, checkpoint_bytes=10_000, update_bytes=10_000)
    out = federated_training(rc, dataclasses.replace(MODEL, epochs=2), TrainConfig(num_clients=40, rounds=15), seed=0)
    assert out["accuracy"][-1] > 0.6 > out["accuracy"][0]
    assert np.all(np.diff(out["time_s"]) > 0)


def test_late_updates_are_recycled_only_when_asked():
    rc = RoundConfig(goal_count=10, reporting_window_s=30.0, checkpoint_bytes=10_000, update_bytes=10_000)
    train = TrainConfig(num_clients=40, rounds=8)
    off = federated_training(rc, MODEL, train, seed=3)
    on = federated_training(dataclasses.replace(rc, recycle_late=True), MODEL, train, seed=3)
    assert off["recycled"].sum() == 0 and off["late"].sum() > 0 and off["wasted_compute_s"].sum() > 0
    assert 0 < on["recycled"].sum() <= on["late"].sum() and on["wasted_compute_s"].sum() == 0
    assert on["recycled"][0] == 0  # nothing is late before the first round ends
    assert np.array_equal(off["late"], on["late"])  # same sessions; only what is done with them differs
    assert not np.allclose(off["accuracy"], on["accuracy"])
