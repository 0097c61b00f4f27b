"""Notebook 01, section 3 (Reproduce): weight-update sharding computes the same training as replicated
data parallelism and as one device - over seeds, with the paper's LAMB and LARS, and with every optax
transform whose cross-element reductions a sharded optimizer could get wrong.

Equality is judged on the parameters after training: the largest absolute difference of any weight,
compared on the host (`max_param_diff`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import numpy as np
import optax

from mlsys_core import backend, data, validate
from mlsys_core.seeds import DEFAULT_SEEDS

from .. import models, optimizers, strategies


@dataclasses.dataclass(frozen=True)
class StrategyRun:
    """One strategy's training."""

    trainer: strategies.Trainer  # the strategy's trainer (its mesh, optimizer and loss)
    state: strategies.TrainState  # the final state, sharded as the strategy keeps it
    losses: tuple[float, ...]  # the mean loss of every step

    @property
    def params(self) -> Any:
        """The final parameters, gathered whole (whatever the strategy's sharding)."""
        return self.trainer.full_params(self.state)


def compare_strategies(loss_fn, optimizer, params, batches,
                       devices: int = backend.MESH_DEVICES) -> dict[str, StrategyRun]:
    """Train with each strategy on `devices` devices, from the same parameters on the same batches.

    Args:
        loss_fn: `loss_fn(params, batch) -> scalar`.
        optimizer: an optax `GradientTransformation`.
        params: the initial parameter pytree.
        batches: the host batches, one per step.
        devices: devices in the 1-D data mesh (count).
    """
    out = {}
    for name in strategies.STRATEGIES:
        trainer = strategies.Trainer(loss_fn, optimizer, strategies.data_mesh(devices), name)
        state, losses = strategies.train(trainer, params, batches)
        out[name] = StrategyRun(trainer, state, tuple(losses))
    return out


def max_param_diff(a, b) -> float:
    """Largest absolute difference between two parameter pytrees (on any devices: compared on the host)."""
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
               for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


# ---- trainings that must agree, over seeds ------------------------------------------------------

LEARNING_RATES = {"sgd": 0.1, "momentum": 0.05, "adam": 1e-2, "lamb": 1e-2, "lars": 1.0}
BASELINES = ("single", *strategies.STRATEGIES)


@dataclasses.dataclass(frozen=True)
class Agreement:
    """How far one training ends from another, per seed and optimizer."""

    seeds: tuple[int, ...]  # the seeds trained, one row of `max_diff` each
    optimizers: tuple[str, ...]  # the optimizers trained, one column of `max_diff` each
    max_diff: np.ndarray  # [i, j]: largest |parameter difference| after seed i with optimizer j

    @property
    def worst_per_seed(self) -> np.ndarray:
        """The largest difference of each seed over the optimizers: shape (len(seeds),)."""
        return self.max_diff.max(axis=1)


def _digits_run(seed: int, steps: int, batch: int):
    """The digits training batches of `seed`: its train split, reshuffled each epoch."""
    x, y = data.digits_split(seed)[:2]
    return data.epoch_batches(x, y, batch, steps, seed)


def strategy_agreement(strategy: str = "wus", baseline: str = "replicated", optimizer_names=("adam",),
                       seeds=DEFAULT_SEEDS, steps: int = 20, batch: int = 64,
                       devices: int = backend.MESH_DEVICES) -> Agreement:
    """Train the digits MLP (64-128-10) under `strategy` and under `baseline` from the same init and
    batches; max |Δparam| per seed and optimizer.

    Seed s draws the train/test split, the initial weights and the batch order. Learning rates are
    `LEARNING_RATES`. Each trainer is built once per optimizer and reused over seeds (one compile).

    Args:
        strategy: a name in `strategies.STRATEGIES`.
        baseline: another strategy, or "single": plain one-device optax on the mesh's first device.
        optimizer_names: names in `optimizers.OPTIMIZERS` (at least one).
        seeds: the seeds to train.
        steps: training steps per run.
        batch: the global batch (examples; a multiple of `devices`).
        devices: devices in the 1-D data mesh (count).
    """
    validate.choice("strategy", strategy, strategies.STRATEGIES)
    validate.choice("baseline", baseline, BASELINES)
    names = tuple(validate.choice("optimizer", o, optimizers.OPTIMIZERS) for o in optimizer_names)
    seeds = validate.seeds("seeds", seeds)
    if not names:
        raise ValueError(f"optimizer_names must be non-empty, got {optimizer_names!r}")
    mlp = models.MLP((64, 128, 10))
    loss = models.classifier_loss(mlp)
    mesh = strategies.data_mesh(devices)
    out = np.zeros((len(seeds), len(names)))
    for j, name in enumerate(names):
        opt = optimizers.make(name, LEARNING_RATES[name])
        trainer = strategies.Trainer(loss, opt, mesh, strategy)
        other = None if baseline == "single" else strategies.Trainer(loss, opt, mesh, baseline)
        for i, seed in enumerate(seeds):
            batches, params = _digits_run(seed, steps, batch), mlp.init(jax.random.key(seed))
            final = trainer.full_params(strategies.train(trainer, params, batches)[0])
            if other is None:
                ref, _ = strategies.reference_train(loss, opt, params, batches, mesh.devices.flat[0])
            else:
                ref = other.full_params(strategies.train(other, params, batches)[0])
            out[i, j] = max_param_diff(final, ref)
    return Agreement(seeds, names, out)


# ---- every optax transform, exact under every strategy ----------------------------------------------


def _ndim_mask(params):
    """True for weight matrices, False for biases: the weight-decay mask of BERT/ResNet recipes."""
    return jax.tree.map(lambda x: x.ndim > 1, params)


def _adam_weights_sgd_biases(params):
    """`multi_transform` labels: "adam" for weight matrices, "sgd" for biases."""
    return jax.tree.map(lambda x: "adam" if x.ndim > 1 else "sgd", params)


EXACT_TRANSFORMS = {
    "sgd": lambda: optax.sgd(0.1),
    "momentum": lambda: optax.sgd(0.05, momentum=0.9),
    "adam": lambda: optax.adam(1e-2),
    "adamw_ndim_mask": lambda: optax.adamw(1e-2, weight_decay=0.5, mask=_ndim_mask),
    "lamb": lambda: optax.lamb(1e-2),
    "lars": lambda: optax.lars(0.5),
    "clip_by_global_norm+adam": lambda: optax.chain(optax.clip_by_global_norm(0.05), optax.adam(1e-2)),
    "multi_transform": lambda: optax.multi_transform({"adam": optax.adam(1e-2), "sgd": optax.sgd(0.1)},
                                                     _adam_weights_sgd_biases),
    "schedule": lambda: optax.adam(optax.warmup_cosine_decay_schedule(0.0, 2e-2, 5, 20)),
}
"""optax transforms (makers) whose cross-element reductions - global norms, trust ratios, masks,
labels, a step-dependent schedule - a sharded optimizer could get wrong; all are optax's own."""


@dataclasses.dataclass(frozen=True)
class TransformExactness:
    """How far each transform's training under each strategy ends from one-device training."""

    transforms: tuple[str, ...]  # names in `EXACT_TRANSFORMS`, one row of `max_diff` each
    strategies: tuple[str, ...]  # strategy names, one column of `max_diff` each
    max_diff: np.ndarray  # [i, j]: largest |parameter difference| under transforms[i], strategies[j]

    def matched(self, atol: float = 2e-5, under=("wus", "fsdp")) -> int:
        """How many transforms stay within `atol` of one device under every strategy in `under`."""
        cols = [self.strategies.index(s) for s in under]
        return int(np.sum(np.all(self.max_diff[:, cols] < atol, axis=1)))


def transform_exactness(names=tuple(EXACT_TRANSFORMS), steps: int = 20, devices: int = backend.MESH_DEVICES,
                        seed: int = 3, strategy_names=tuple(strategies.STRATEGIES)) -> TransformExactness:
    """Train a small MLP (16-24-10; the (10,) bias is one no device count > 2 divides) with each named
    transform under each of `strategy_names` and on one device (the mesh's first), from the same init
    and batches.

    Args:
        names: transforms, names in `EXACT_TRANSFORMS`.
        steps: training steps per run.
        devices: devices in the 1-D data mesh (count); the batch is 2 examples per device.
        seed: draws the inputs, the labels and the initial weights.
        strategy_names: names in `strategies.STRATEGIES`.
    """
    names = tuple(validate.choice("transform", n, tuple(EXACT_TRANSFORMS)) for n in names)
    strategy_names = tuple(validate.choice("strategy", s, strategies.STRATEGIES) for s in strategy_names)
    steps = validate.integer("steps", steps, 1)
    mlp = models.MLP((16, 24, 10))
    loss = models.classifier_loss(mlp)
    kx, ky, kp = jax.random.split(jax.random.key(validate.seed("seed", seed)), 3)
    batch = 2 * devices
    x = np.asarray(jax.random.uniform(kx, (steps, batch, 16)))
    y = np.asarray(jax.random.randint(ky, (steps, batch), 0, 10))
    batches, params = [(x[i], y[i]) for i in range(steps)], mlp.init(kp)
    mesh = strategies.data_mesh(devices)
    out = np.zeros((len(names), len(strategy_names)))
    for i, name in enumerate(names):
        opt = EXACT_TRANSFORMS[name]()
        ref, _ = strategies.reference_train(loss, opt, params, batches, mesh.devices.flat[0])
        for j, s in enumerate(strategy_names):
            trainer = strategies.Trainer(loss, opt, mesh, s)
            out[i, j] = max_param_diff(trainer.full_params(strategies.train(trainer, params, batches)[0]), ref)
    return TransformExactness(names, strategy_names, out)
