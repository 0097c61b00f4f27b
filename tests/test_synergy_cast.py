"""Data-centre training cast as FL, and evaluation / batch norm on devices (survey synergies 2 and 4)."""

import jax
import numpy as np
import pytest

from mlsys_core.fl import fedavg
from mlsys_core.synergy import cast_as_fl, on_devices


def test_cast_as_fl_with_one_local_step_and_everyone_equals_data_parallel():
    shards, data = cast_as_fl.dispatch("iid", 8, seed=2)
    idx = cast_as_fl.round_batches(shards, 4, local_steps=1, batch=8, seed=2)
    fl = cast_as_fl.federated_rounds(idx, data, [len(s) for s in shards], batch=8, seed=2)
    dp = cast_as_fl.data_parallel_rounds(idx, data, batch=8, seed=2)
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(jax.tree.leaves(fl.params), jax.tree.leaves(dp.params)))
    assert diff < 1e-6
    np.testing.assert_allclose(fl.accuracy, dp.accuracy, atol=1 / 360)  # at most one test digit flips
    # five local steps per round is FedAvg proper: no longer the data-parallel update
    five = cast_as_fl.federated_rounds(cast_as_fl.round_batches(shards, 4, 5, 8, 2), data, [len(s) for s in shards],
                                       batch=8, seed=2)
    assert max(float(np.max(np.abs(a - b))) for a, b in
               zip(jax.tree.leaves(five.params), jax.tree.leaves(fl.params))) > 1e-2


def test_dispatch_and_round_batches_keep_each_device_on_its_own_data():
    shards, (x, y, xt, yt) = cast_as_fl.dispatch("dirichlet", 20, alpha=0.1, seed=0)
    assert sorted(np.concatenate(shards).tolist()) == list(range(len(x)))  # every example dealt exactly once
    idx = cast_as_fl.round_batches(shards, 3, local_steps=2, batch=4, seed=0)
    assert idx.shape == (3, 20, 8)
    for k, shard in enumerate(shards):
        assert (idx[:, k] == -1).all() if len(shard) == 0 else np.isin(idx[:, k], shard).all()
    iid, _ = cast_as_fl.dispatch("iid", 8, seed=0)
    assert {len(s) for s in iid} == {len(x) // 8}  # equal shards: FedAvg's weights are then equal too
    with pytest.raises(ValueError, match="split"):
        cast_as_fl.dispatch("by-user")
    with pytest.raises(ValueError, match="split"):
        on_devices.evaluation_on_devices(split="by-user")


def test_federated_evaluation_with_everyone_is_the_pods_accuracy():
    shards, (x, y, xt, yt) = cast_as_fl.dispatch("iid", 8, seed=0)
    run = cast_as_fl.federated_rounds(cast_as_fl.round_batches(shards, 3, 1, 16, 0), (x, y, xt, yt),
                                      [len(s) for s in shards])
    test_shards = fedavg.dirichlet_split(yt, 10, 0.3, 0)
    full = on_devices.federated_accuracy(run.params, xt, yt, test_shards)
    assert full == pytest.approx(float(fedavg.accuracy(run.params, xt, yt)), abs=1e-6)
    some = [0, 3]
    rows = np.concatenate([test_shards[i] for i in some])
    assert on_devices.federated_accuracy(run.params, xt, yt, test_shards, some) == pytest.approx(
        float(fedavg.accuracy(run.params, xt[rows], yt[rows])), abs=1e-6)


def test_protocol_participants_are_committed_rounds_of_known_devices():
    ids = cast_as_fl.protocol_participants(devices=40, goal_count=5, rounds=6, seed=1)
    assert len(ids) == 6 and all(5 <= len(r) <= 40 and r.max() < 40 for r in ids)
    assert len({tuple(sorted(r)) for r in ids}) > 1  # partial participation: not the same devices every round


def test_rounds_to_reach_counts_from_the_first_round():
    assert cast_as_fl.rounds_to_reach([0.1, 0.5, 0.7, 0.9], 0.7) == 2.0
    assert cast_as_fl.rounds_to_reach([0.1, 0.5], 0.7) == float("inf")


def test_dispatch_costs_less_than_a_round_once_shards_are_smaller_than_the_model():
    r = cast_as_fl.dispatch_cost(devices=(8, 100, 400))
    assert np.all(np.diff(r.phone_ratio) < 0) and np.all(np.diff(r.dispatch_bytes) < 0)
    assert r.phone_ratio[0] > 1 > r.phone_ratio[1]  # 47 KB shards vs a 19 KB round; 3.7 KB vs 19 KB
    np.testing.assert_allclose(r.phone_ratio, r.phone_dispatch_s / r.phone_round_s)
    assert np.all(r.pod_ratio < r.phone_ratio)  # the pod's 330 GB/s links make dispatch cheap
