"""2-D model parallelism, distributed batch norm and distributed evaluation match one device."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mlsys_core import data
from mlsys_core.sharding import inspection, models, spmd, strategies

# Float32, different reduction orders (the partitioner splits the dot products): ~1e-7 per step,
# Adam can amplify it on tiny gradients, so 2e-5 after 20 steps (observed ~6e-7).
ATOL = 2e-5


@pytest.fixture(scope="module")
def digits():
    x, y = data.load_digits()
    return x, y


def batches(digits, steps=20, size=64):
    x, y = digits
    return [(x[i * size:(i + 1) * size], y[i * size:(i + 1) * size]) for i in range(steps)]


def max_diff(a, b):
    return max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_megatron_2x4_matches_single_device_over_20_steps(digits):
    model = models.MLP((64, 128, 10))
    p0, loss = model.init(jax.random.key(0)), models.classifier_loss(model)
    ref, ref_losses = strategies.reference_train(loss, optax.adam(1e-2), p0, batches(digits))
    mp = spmd.ModelParallel(loss, optax.adam(1e-2), spmd.model_parallel_mesh(2, 4), spmd.megatron_specs(model))
    params, losses = mp.train(p0, batches(digits))
    assert max_diff(params, ref) < ATOL
    np.testing.assert_allclose(losses, ref_losses, atol=ATOL)
    assert params["layer_0"]["w"].sharding.spec == jax.sharding.PartitionSpec(None, "model")
    assert params["layer_0"]["w"].addressable_shards[0].data.shape == (64, 32)  # column shard
    assert params["layer_1"]["w"].addressable_shards[0].data.shape == (32, 10)  # row shard


def test_model_parallel_step_all_reduces_activations(digits):
    model = models.MLP((64, 128, 10))
    mp = spmd.ModelParallel(models.classifier_loss(model), optax.sgd(0.1), spmd.model_parallel_mesh(1, 8),
                            spmd.megatron_specs(model))
    params, opt = mp.init(model.init(jax.random.key(0)))
    rows = inspection.collectives(mp.step_fn(opt).lower(params, opt, mp.shard_batch(batches(digits, 1)[0])).compile())
    # The row-parallel layer's partial logits (batch 64 x 10 classes, f32) are summed over "model".
    assert any(r.kind == "all-reduce" and r.shape == (64, 10) for r in rows)


def test_weight_the_model_axis_cannot_divide_is_rejected():
    model = models.MLP((64, 30, 10))
    mp = spmd.ModelParallel(models.classifier_loss(model), optax.sgd(0.1), spmd.model_parallel_mesh(2, 4),
                            spmd.megatron_specs(model))
    with pytest.raises(ValueError,
                       match=r"weight \['layer_0'\]\['b'\] dimension 0 of size 30 .* \('model',\) of size 4"):
        mp.init(model.init(jax.random.key(0)))


def test_batch_the_data_axis_cannot_divide_is_rejected(digits):
    model = models.MLP((64, 128, 10))
    mp = spmd.ModelParallel(models.classifier_loss(model), optax.sgd(0.1), spmd.model_parallel_mesh(4, 2),
                            spmd.megatron_specs(model))
    with pytest.raises(ValueError, match=r"batch dimension 0 of size 10 .* \('data',\) of size 4"):
        mp.shard_batch((digits[0][:10], digits[1][:10]))


def test_batch_norm_over_all_replicas_equals_one_device_and_small_groups_differ(digits):
    bn = spmd.BatchNormMLP()
    p0 = bn.init(jax.random.key(0))
    ref, _ = strategies.reference_train(bn.loss(None), optax.adam(1e-2), p0, batches(digits, 5))
    diffs = {}
    for g in (1, 8):
        trainer = strategies.Trainer(bn.loss("bn"), optax.adam(1e-2), spmd.bn_mesh(8, g), "wus",
                                     data_axes=("group", "bn"))
        state, _ = strategies.train(trainer, p0, batches(digits, 5))
        diffs[g] = max_diff(trainer.full_params(state), ref)
    assert diffs[8] < ATOL
    assert diffs[1] > 1e-3  # statistics of 8 examples instead of 64: a different model


def test_bn_group_size_must_divide_replicas():
    with pytest.raises(ValueError, match="group_size"):
        spmd.bn_mesh(8, 3)


def test_distributed_accuracy_equals_single_device_with_padding(digits):
    x, y = digits
    model = models.MLP((64, 128, 10))
    params = model.init(jax.random.key(3))
    predict = lambda p, v: jnp.argmax(model.apply(p, v), axis=1)  # noqa: E731
    single = int(jnp.sum(predict(params, x[:1001]) == y[:1001])) / 1001
    dist = spmd.distributed_accuracy(predict, params, x[:1001], y[:1001], strategies.data_mesh(8))
    assert dist == single  # 1001 = 8 * 125 + 1: seven padded examples
