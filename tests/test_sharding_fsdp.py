"""FSDP proper: each block's weights gathered just before it runs, forward and backward; remat and
gradient accumulation; XLA's memory per device read from the compiled step.

Tolerances: the strategies compute the same float32 sums in different orders (an all-reduce, a
reduce-scatter per block, micro-batch partial sums), ~1e-7 relative per step; with SGD on weights of
order 0.1-1 three steps stay below 1e-6.
"""

import jax
import numpy as np
import optax
import pytest

from mlsys_core.sharding import experiments, inspection, models, strategies

MODEL = models.FFNStack(d_model=16, d_ff=32, blocks=3)
LOSS = models.regression_loss(MODEL)


def batches(steps=3, batch=32, seed=1):
    return [tuple(np.asarray(a) for a in models.regression_batch(jax.random.key(seed + i), batch, 16))
            for i in range(steps)]


@pytest.fixture(scope="module")
def params0():
    return MODEL.init(jax.random.key(0))


@pytest.fixture(scope="module")
def reference(params0):
    return strategies.reference_train(LOSS, optax.sgd(0.1), params0, batches())[0]


def trained(params0, strategy, **options):
    trainer = strategies.Trainer(LOSS, optax.sgd(0.1), strategies.data_mesh(8), strategy, **options)
    return trainer.full_params(strategies.train(trainer, params0, batches())[0])


@pytest.mark.parametrize("strategy, options", [
    ("fsdp", {}),
    ("fsdp", {"micro_batches": 4}),
    ("fsdp", {"per_block_gather": False, "remat": True}),
    ("wus", {"remat": True, "micro_batches": 2}),
    ("replicated", {"micro_batches": 4}),
])
def test_per_block_gather_remat_and_accumulation_match_one_device(params0, reference, strategy, options):
    assert experiments.max_param_diff(trained(params0, strategy, **options), reference) < 1e-6


def test_per_block_fsdp_matches_one_device_with_adam_and_bf16_collectives_run(params0):
    adam = optax.adam(1e-2)
    ref, _ = strategies.reference_train(LOSS, adam, params0, batches())
    trainer = strategies.Trainer(LOSS, adam, strategies.data_mesh(8), "fsdp")
    assert experiments.max_param_diff(trainer.full_params(strategies.train(trainer, params0, batches())[0]),
                                      ref) < 2e-5
    import jax.numpy as jnp
    bf16 = strategies.Trainer(LOSS, adam, strategies.data_mesh(8), "fsdp", grad_dtype=jnp.bfloat16)
    state = bf16.init(params0)
    rows = inspection.collectives(bf16.lower(state, bf16.shard_batch(batches()[0])))
    assert any(r.kind == "reduce-scatter" and r.dtype == "bf16" for r in rows)


@pytest.mark.slow
def test_per_block_gather_lowers_fsdp_temporaries_and_gathers_twice():
    """The mechanism: gather-all keeps every block's full weights among the temporaries; per block,
    one block's at a time (temporaries fall by more than half for 4 blocks), at the price of a
    second gather of each block's weights in the backward pass."""
    model = models.FFNStack(d_model=64, d_ff=256, blocks=4)
    comp = experiments.memory_comparison(model, batch=16, names=("wus", "fsdp, gather all", "fsdp, per block"))
    weights = models.parameter_count(jax.eval_shape(model.init, jax.random.key(0))) * 4
    assert comp["fsdp, gather all"].temporaries_bytes >= weights
    assert comp["fsdp, per block"].temporaries_bytes < 0.5 * comp["fsdp, gather all"].temporaries_bytes
    assert comp.peak_ratio("fsdp, per block", "wus") < 0.6
    assert comp["fsdp, per block"].arguments_bytes < comp["wus"].arguments_bytes / 2

    def gathers(**options):
        trainer = strategies.Trainer(models.regression_loss(model), optax.sgd(0.1), strategies.data_mesh(8),
                                     "fsdp", **options)
        state = trainer.init(model.init(jax.random.key(0)))
        hlo = trainer.lower(state, trainer.shard_batch(models.regression_batch(jax.random.key(1), 16, 64)))
        return sum(r.kind == "all-gather" and len(r.shape) == 2 for r in inspection.collectives(hlo.compile()))

    assert gathers(per_block_gather=False) == 8  # each 2-D weight once
    assert gathers() == 16  # forward and again backward


def test_remat_and_accumulation_lower_activation_temporaries():
    """A batch large enough that activations dominate: recomputing blocks, or taking 4 micro-batches
    in turn, needs fewer temporary bytes than keeping every activation of the whole batch."""
    model = models.FFNStack(d_model=32, d_ff=128, blocks=4)
    comp = experiments.memory_comparison(model, batch=1024, names=("wus", "wus + remat", "wus, 4 micro-batches"))
    assert comp["wus + remat"].temporaries_bytes < 0.7 * comp["wus"].temporaries_bytes
    assert comp["wus, 4 micro-batches"].temporaries_bytes < 0.7 * comp["wus"].temporaries_bytes


def test_xla_memory_peak_counts_outputs_written_in_place_once():
    m = inspection.XlaMemory(arguments_bytes=100, outputs_bytes=90, alias_bytes=80, temporaries_bytes=7)
    assert m.peak_bytes == 100 + 7 + 10


def test_remat_needs_a_block_loss_and_micro_batches_must_divide_the_local_batch(params0):
    with pytest.raises(ValueError, match="BlockLoss"):
        strategies.Trainer(models.classifier_loss(models.MLP()), optax.sgd(0.1), strategies.data_mesh(8),
                           "fsdp", remat=True)
    with pytest.raises(ValueError, match="micro_batches"):
        strategies.Trainer(LOSS, optax.sgd(0.1), strategies.data_mesh(8), "fsdp", micro_batches=0)
    trainer = strategies.Trainer(LOSS, optax.sgd(0.1), strategies.data_mesh(8), "fsdp", micro_batches=3)
    with pytest.raises(ValueError, match="micro_batches=3"):
        trainer.shard_batch(batches(batch=32)[0])
    with pytest.raises(TypeError, match="remat"):
        strategies.Trainer(LOSS, optax.sgd(0.1), strategies.data_mesh(8), "fsdp", remat=1)
    with pytest.raises(ValueError, match="blocks"):
        strategies.BlockLoss(lambda p, b, run: 0.0, ())


def test_prefetch_issues_the_next_blocks_gather_before_this_block_computes(params0, reference):
    """Without prefetch block 0's two weight gathers come just before it computes; with prefetch
    block 1's too (four). The CPU backend has no async collectives, so this is order, not overlap."""
    model = models.FFNStack(d_model=32, d_ff=64, blocks=3)
    plain, early = (experiments.fsdp_schedule(model, prefetch=p) for p in (False, True))
    assert plain.gathers_before_first_block == 2 and early.gathers_before_first_block == 4
    assert sum(n for what, n in early.forward if what == "gather") == 6  # each 2-D weight once forward
    assert not early.async_collectives  # XLA:CPU: collectives run synchronously
    assert experiments.max_param_diff(trained(params0, "fsdp", prefetch=True), reference) < 1e-6


def test_xla_memory_plot_stacks_inputs_temporaries_and_outputs_not_in_place():
    from mlsys_core.sharding import plots

    mib = 2**20
    comp = experiments.MemoryComparison(("wus", "fsdp, per block"), (
        inspection.XlaMemory(4 * mib, 3 * mib, 3 * mib, 2 * mib),
        inspection.XlaMemory(1 * mib, 2 * mib, 1 * mib, 1 * mib)))
    ax = plots.xla_memory(comp).axes[0]
    heights = [[p.get_height() for p in c.patches] for c in ax.containers]
    assert heights == [[4.0, 1.0], [2.0, 1.0], [0.0, 1.0]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["wus", "fsdp, per block"]
    assert comp.peak_ratio("fsdp, per block") == pytest.approx(3 / 6)
    with pytest.raises(ValueError, match="name"):
        comp["zero-3"]
