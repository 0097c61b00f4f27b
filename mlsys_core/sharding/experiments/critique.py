"""Notebook 01, section 5 (the survey's critique, tested): model parallelism in the Megatron layout and
its speed on a (data x model) mesh, bfloat16 gradients on the wire, and distributed batch norm - exact
over all replicas, and its accuracy over groups of replicas.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlsys_core import backend, data, timing, validate
from mlsys_core.seeds import DEFAULT_SEEDS

from .. import inspection, models, optimizers, spmd, strategies
from .equivalence import LEARNING_RATES, Agreement, max_param_diff

# ---- the transformer on a (data x model) mesh, Megatron layout ---------------------------------------


@dataclasses.dataclass(frozen=True)
class MegatronCheck:
    """The transformer trained with heads and MLP columns split over `model` (Megatron) against one
    device, and the collectives of its compiled step."""

    mesh_shape: tuple[int, int]  # (data, model) devices
    steps: int  # training steps
    max_diff: float  # largest |parameter difference| from one device after `steps` steps
    activation_all_reduces: int  # all-reduces whose result is an activation (local batch, seq, d_model)
    activation_bytes: int  # their result bytes per device
    weight_all_gathers: int  # all-gathers of weights (none expected)
    collectives: tuple  # every `inspection.Collective` of the compiled step


def megatron_transformer(model: models.Transformer | None = None, mesh_shape=(2, 4), steps: int = 20,
                         batch: int = 16, learning_rate: float = 1e-3, seed: int = 0) -> MegatronCheck:
    """Train `model` with Adam under `spmd.ModelParallel` and its `megatron_specs` on a (data, model) mesh
    and on one device (the mesh's first) from the same init and batches; read the activation
    all-reduces from the compiled step.

    Args:
        model: the transformer (None: `models.Transformer()`).
        mesh_shape: (data, model) devices.
        steps: training steps.
        batch: the global batch (sequences; a multiple of the data devices).
        learning_rate: Adam's learning rate.
        seed: draws the initial weights (and, with seed + 1 + i, batch i).
    """
    validate.seed("seed", seed)
    model = models.Transformer() if model is None else validate.instance("model", model, models.Transformer,
                                                                           "a models.Transformer or None")
    data_n, model_n = (validate.integer("mesh_shape", s, 1) for s in mesh_shape)
    steps = validate.integer("steps", steps, 1)
    loss = models.regression_loss(model)
    params = model.init(jax.random.key(seed))
    batches = [tuple(np.asarray(a) for a in models.transformer_batch(jax.random.key(seed + 1 + i), batch, model))
               for i in range(steps)]
    opt = optax.adam(learning_rate)
    mesh = spmd.model_parallel_mesh(data_n, model_n)
    ref, _ = strategies.reference_train(loss, opt, params, batches, mesh.devices.flat[0])
    mp = spmd.ModelParallel(loss, opt, mesh, model.megatron_specs)
    p, opt_state = mp.init(params)
    step = mp.step_fn(opt_state).lower(p, opt_state, mp.shard_batch(batches[0])).compile()  # one compile
    for b in batches:
        p, opt_state, _ = step(p, opt_state, mp.shard_batch(b))
    final = p
    rows = tuple(inspection.collectives(step))
    act = (batch // data_n, model.seq, model.d_model)
    acts = [r for r in rows if r.kind == "all-reduce" and r.shape == act]
    gathers = sum(r.kind == "all-gather" and len(r.shape) >= 2 for r in rows)
    return MegatronCheck((data_n, model_n), steps, max_param_diff(final, ref), len(acts),
                         sum(r.bytes for r in acts), gathers, rows)


def time_mesh_shapes(shapes, width: int = 512, batch: int = 64, repeats: int = 5,
                     seed: int = 0) -> dict[tuple[int, int], timing.StepTiming]:
    """Step times of the digits-shaped MLP (64, width, 10) with Adam on (data, model) meshes, Megatron
    layout.

    Args:
        shapes: (data, model) mesh shapes to time.
        width: the hidden layer's width (units).
        batch: the global batch (examples; a multiple of every data size).
        repeats: timed steps per shape (after warm-up).
        seed: draws the initial weights and the digits split.
    """
    validate.seed("seed", seed)
    model = models.MLP((64, width, 10))
    params = model.init(jax.random.key(seed))
    x, y = data.digits_split(seed)[:2]
    out = {}
    for shape in shapes:
        mp = spmd.ModelParallel(models.classifier_loss(model), optimizers.make("adam", 1e-3),
                                spmd.model_parallel_mesh(*shape), spmd.megatron_specs(model))
        p, opt = mp.init(params)
        step = mp.step_fn(opt)
        placed = mp.shard_batch((x[:batch], y[:batch]))

        def run(state, b, step=step):
            p, opt = state
            p, opt, loss = step(p, opt, b)
            return (p, opt), loss

        out[tuple(shape)], _ = timing.time_steps(run, (p, opt), placed, repeats=repeats)
    return out


# ---- bfloat16 gradients on the wire ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PrecisionRun:
    """One precision's WUS training of the digits MLP."""

    accuracy: float  # on the test split
    reduce_scatter_bytes: int  # per device, in the program as written
    final_loss: float  # the mean loss of the last step


def bf16_experiment(steps: int = 150, batch: int = 64, seed: int = 0,
                    devices: int = backend.MESH_DEVICES) -> dict[str, PrecisionRun]:
    """Digits MLP with WUS: float32 against bfloat16 compute + bfloat16 gradient collectives
    ("float32", "bfloat16"): test accuracy and the reduce-scatter bytes per device of each program.

    Args:
        steps: training steps.
        batch: the global batch (examples; a multiple of `devices`).
        seed: draws the digits split, the initial weights and the batch order.
        devices: devices in the 1-D data mesh (count).
    """
    validate.seed("seed", seed)
    x, y, xt, yt = data.digits_split(seed)
    model = models.MLP((64, 128, 10))
    params = model.init(jax.random.key(seed))
    batches = data.epoch_batches(x, y, batch, steps, seed)
    out = {}
    for name, dtype in (("float32", None), ("bfloat16", jnp.bfloat16)):
        compute = jnp.float32 if dtype is None else dtype
        trainer = strategies.Trainer(models.classifier_loss(model, compute), optimizers.make("adam", 1e-2),
                                     strategies.data_mesh(devices), "wus", grad_dtype=dtype)
        state, losses = strategies.train(trainer, params, batches)
        rows = inspection.collectives(trainer.lower(state, trainer.shard_batch(batches[0])))
        out[name] = PrecisionRun(float(models.accuracy(model, trainer.full_params(state), xt, yt)),
                                 sum(r.bytes for r in rows if r.kind == "reduce-scatter"), losses[-1])
    return out


# ---- distributed batch norm --------------------------------------------------------------------------


def bn_agreement(seeds=DEFAULT_SEEDS, steps: int = 10, per_replica_batch: int = 4,
                 replicas: int = backend.MESH_DEVICES, optimizer: str = "lars") -> Agreement:
    """Distributed batch norm over all `replicas` (one group) vs batch norm on one device over the
    same global batch: the BN-MLP trained both ways with `optimizer`, max |Δparam| per seed.

    Args:
        seeds: the seeds to train; seed s draws the digits split, the initial weights and the batch order.
        steps: training steps per run.
        per_replica_batch: examples per replica and step.
        replicas: devices in the batch-norm group (count).
        optimizer: a name in `optimizers.OPTIMIZERS`, at its `LEARNING_RATES` rate.
    """
    seeds = validate.seeds("seeds", seeds)
    validate.integer("per_replica_batch", per_replica_batch, 1)
    validate.choice("optimizer", optimizer, optimizers.OPTIMIZERS)
    bn = spmd.BatchNormMLP()
    opt = optimizers.make(optimizer, LEARNING_RATES[optimizer])
    mesh = spmd.bn_mesh(replicas, replicas)
    trainer = strategies.Trainer(bn.loss("bn"), opt, mesh, "wus", data_axes=("group", "bn"))
    one_device_loss = bn.loss(None)
    out = np.zeros((len(seeds), 1))
    for i, seed in enumerate(seeds):
        x, y = data.digits_split(seed)[:2]
        batches = data.epoch_batches(x, y, replicas * per_replica_batch, steps, seed)
        params = bn.init(jax.random.key(seed))
        final = trainer.full_params(strategies.train(trainer, params, batches)[0])
        ref, _ = strategies.reference_train(one_device_loss, opt, params, batches, mesh.devices.flat[0])
        out[i, 0] = max_param_diff(final, ref)
    return Agreement(seeds, (optimizer,), out)


def bn_group_experiment(group_sizes=None, per_replica_batch: int = 4, steps: int = 150, seed: int = 0,
                        replicas: int = backend.MESH_DEVICES) -> dict[int, float]:
    """Test accuracy of the batch-norm MLP vs BN group size, `replicas` of `per_replica_batch` each.

    Small per-replica batches give noisy statistics; averaging them over a group of g replicas is
    the paper's distributed batch norm. Evaluation uses the training set's population statistics.

    Args:
        group_sizes: replicas per batch-norm group, each a divisor of `replicas` (None: every divisor,
            1, 2, 4, 8 for 8 replicas).
        per_replica_batch: examples per replica and step.
        steps: training steps.
        seed: draws the digits split, the initial weights and the batch order.
        replicas: devices (count).
    """
    validate.seed("seed", seed)
    replicas = validate.integer("replicas", replicas, 1)
    if group_sizes is None:
        group_sizes = tuple(g for g in range(1, replicas + 1) if replicas % g == 0)
    x, y, xt, yt = data.digits_split(seed)
    bn = spmd.BatchNormMLP()
    params = bn.init(jax.random.key(seed))
    batches = data.epoch_batches(x, y, replicas * per_replica_batch, steps, seed)
    out = {}
    for g in group_sizes:
        trainer = strategies.Trainer(bn.loss("bn"), optimizers.make("adam", 1e-2), spmd.bn_mesh(replicas, g), "wus",
                                     data_axes=("group", "bn"))
        state, _ = strategies.train(trainer, params, batches)
        p = trainer.full_params(state)
        stats = bn.population_stats(p, x)

        def predict(q, v, stats=stats):
            return jnp.argmax(bn.apply(q, v, stats=stats), axis=1)

        out[g] = spmd.distributed_accuracy(predict, p, xt, yt, strategies.data_mesh(replicas))
    return out
