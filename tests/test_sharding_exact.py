"""Every optax transform matches single-device training under replicated, WUS and FSDP.

The optimizer runs on the global view of the tree (see `strategies`), so global norms, trust ratios,
masks and `multi_transform` labels see what they see on one device. 20 steps on 8 devices, 2e-5
absolute on parameters of order 0.1-1 (the tolerance of `test_sharding_strategies`; the rest is the
order of float sums in the reductions). The MLP mixes leaves split along dim 0 and a bias (10,) that
8 does not divide, kept whole.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax import lax

from mlsys_core.sharding import experiments, models, strategies
from mlsys_core.sharding.experiments import equivalence

MODEL = models.MLP((16, 24, 10))
LOSS = models.classifier_loss(MODEL)
ATOL = 2e-5


TRANSFORMS = experiments.EXACT_TRANSFORMS


@pytest.fixture(scope="module")
def run():
    kx, ky, kp = jax.random.split(jax.random.key(3), 3)
    x = np.asarray(jax.random.uniform(kx, (20, 16, 16)))
    y = np.asarray(jax.random.randint(ky, (20, 16), 0, 10))
    return MODEL.init(kp), [(x[i], y[i]) for i in range(20)]


def max_diff(a, b):
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b))
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v)))) for u, v in pairs)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_every_transform_matches_one_device_under_every_strategy(name, run):
    params, batches = run
    opt = TRANSFORMS[name]()
    mesh = strategies.data_mesh(8)
    ref, ref_losses = strategies.reference_train(LOSS, opt, params, batches, mesh.devices.flat[0])
    assert max_diff(ref, params) > 1e-3  # it trains
    for strategy in strategies.STRATEGIES:
        trainer = strategies.Trainer(LOSS, opt, mesh, strategy)
        state, losses = strategies.train(trainer, params, batches)
        assert max_diff(trainer.full_params(state), ref) < ATOL, strategy
        np.testing.assert_allclose(losses, ref_losses, atol=ATOL)


def test_the_transforms_reach_across_leaves():
    """The cases above would pass trivially if clipping never fired or the mask masked nothing."""
    mask = equivalence._ndim_mask(MODEL.init(jax.random.key(0)))
    assert sorted(jax.tree.leaves(mask)) == [False, False, True, True]
    grads = jax.tree.map(jnp.ones_like, MODEL.init(jax.random.key(0)))
    clipped, _ = optax.clip_by_global_norm(0.05).update(grads, optax.EmptyState())
    assert float(optax.tree.norm(clipped)) == pytest.approx(0.05, rel=1e-5)


def test_a_transform_that_runs_its_own_collective_is_refused():
    def psum_grads():
        def update_fn(updates, state, params=None):
            return jax.tree.map(lambda u: lax.psum(u, "data"), updates), state

        return optax.GradientTransformation(optax.init_empty_state, update_fn)

    params = MODEL.init(jax.random.key(0))
    trainer = strategies.Trainer(LOSS, optax.chain(psum_grads(), optax.sgd(0.1)), strategies.data_mesh(8), "wus")
    with pytest.raises(ValueError, match=r"'.*psum_grads'.*cannot be made exact under 'wus'"):
        trainer.init(params)


def test_wus_keeps_one_eighth_of_the_optimizer_state():
    params = MODEL.init(jax.random.key(0))
    states = {s: strategies.Trainer(LOSS, optax.adam(1e-2), strategies.data_mesh(8), s).init(params)
              for s in ("replicated", "wus")}

    def first_device_bytes(tree):
        return sum(leaf.addressable_shards[0].data.nbytes for leaf in jax.tree.leaves(tree))

    whole_bias = 4 * 10  # the (10,) bias stays whole: its Adam moments are not split
    n = models.parameter_count(params)
    assert first_device_bytes(states["replicated"].opt_state) == 2 * 4 * n + 4
    assert first_device_bytes(states["wus"].opt_state) == 2 * (4 * (n - 10) // 8 + whole_bias) + 4


@pytest.mark.slow
def test_transform_exactness_counts_the_matches_and_validates():
    r = experiments.transform_exactness(("sgd", "lamb"), steps=2, devices=4)
    assert r.max_diff.shape == (2, 3) and r.matched() == 2
    assert r.matched(atol=0.0) == 0  # a bound no float training meets: the count can fall
    with pytest.raises(ValueError, match="transform must be one of"):
        experiments.transform_exactness(("adagrad",))
