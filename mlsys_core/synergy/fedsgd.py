"""Synergy 1: a pod and a fleet run the same algorithm.

Synchronous data parallelism on a mesh (Paper 1) against FedSGD (Paper 3: FedAvg with every client
reporting and one local step) on the same data: with equal client sizes they are the same update, and
what separates their parameters is float32 rounding.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import backend, validate
from mlsys_core.data import load_digits
from mlsys_core.fl import fedavg
from mlsys_core.seeds import DEFAULT_SEEDS


@dataclasses.dataclass(frozen=True)
class FedSGDMatch:
    """Data parallelism on a mesh against FedSGD on the same data: how far apart their parameters end."""

    max_abs_diff: float  # largest |mesh - FedSGD| over all parameters
    max_param_change: float  # largest |trained - initial|: how far training moved them at all
    relative_diff: float  # max_abs_diff / max_param_change
    accuracy_mesh: float  # the mesh-trained model's accuracy on all the digits
    accuracy_fedsgd: float  # the FedSGD-trained model's accuracy on all the digits


def data_parallel_vs_fedsgd(devices: int = backend.MESH_DEVICES, steps: int = 10, per_device_batch: int = 16,
                            learning_rate: float = 0.1, seed: int = 0) -> FedSGDMatch:
    """Train the digits MLP `steps` times both ways on identical data; compare the parameters.

    Data parallel: one SGD step per global batch, gradients all-reduced over a `devices`-wide mesh.
    FedSGD: each device is a client holding its slice of that batch, runs one local SGD step on it,
    and the server averages the deltas weighted by example counts. Equal client sizes make the two
    the same update; the returned `max_abs_diff` is float32 rounding only, and `relative_diff` is it
    over `max_param_change` (how far training moved the parameters at all).

    Args:
        devices: mesh devices, and FedSGD clients (>= 1).
        steps: SGD steps, and FedSGD rounds (>= 1); steps x devices x per_device_batch <= 1797 digits.
        per_device_batch: examples per device and step (>= 1).
        learning_rate: SGD's step size (> 0).
        seed: draws the data order and the initial weights.
    """
    import jax
    import jax.numpy as jnp
    import optax

    from mlsys_core.sharding.strategies import Trainer, data_mesh, train

    devices = validate.integer("devices", devices, 1)
    steps = validate.integer("steps", steps, 1)
    per_device_batch = validate.integer("per_device_batch", per_device_batch, 1)
    validate.positive("learning_rate", learning_rate)
    seed = validate.seed("seed", seed)
    x, y = load_digits()
    global_batch = devices * per_device_batch
    if steps * global_batch > len(x):
        raise ValueError(f"steps * devices * per_device_batch must be <= {len(x)} digits, got {steps * global_batch}")
    order = np.random.default_rng(seed).permutation(len(x))[: steps * global_batch].reshape(steps, global_batch)
    batches = [(x[i], y[i]) for i in order]

    model = fedavg.ModelConfig(learning_rate=learning_rate, batch_size=per_device_batch, epochs=1)
    params = fedavg.init_params(jax.random.key(seed), model)

    def loss(p, batch):
        bx, by = batch
        return fedavg.masked_loss(p, bx, by, jnp.ones(by.shape[0]))

    trainer = Trainer(loss, optax.sgd(learning_rate), data_mesh(devices), strategy="replicated")
    state, _ = train(trainer, params, batches)
    mesh_params = trainer.full_params(state)

    fl_params = params
    for bx, by in batches:
        clients = fedavg.ClientData(bx.reshape(devices, per_device_batch, -1), by.reshape(devices, per_device_batch),
                                    np.ones((devices, per_device_batch), np.float32),
                                    np.full(devices, per_device_batch, np.float32))
        fl_params = fedavg.vmap_round(fl_params, clients, clients.num_examples, model)

    diffs = jax.tree.leaves(jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), mesh_params, fl_params))
    moved = jax.tree.leaves(jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), fl_params, params))
    max_diff, max_moved = float(max(diffs)), float(max(moved))
    return FedSGDMatch(max_diff, max_moved, max_diff / max_moved, float(fedavg.accuracy(mesh_params, x, y)),
                       float(fedavg.accuracy(fl_params, x, y)))


def fedsgd_equivalence(seeds=DEFAULT_SEEDS, devices: int = backend.MESH_DEVICES, steps: int = 10,
                       per_device_batch: int = 16, learning_rate: float = 0.1) -> np.ndarray:
    """(len(seeds),) `relative_diff` of `data_parallel_vs_fedsgd` per seed (data order and initial weights).

    Args:
        seeds: one run per seed (each >= 0).
        devices: mesh devices, and FedSGD clients (>= 1).
        steps: SGD steps, and FedSGD rounds (>= 1).
        per_device_batch: examples per device and step (>= 1).
        learning_rate: SGD's step size (> 0).
    """
    return np.array([data_parallel_vs_fedsgd(devices, steps, per_device_batch, learning_rate, seed=s).relative_diff
                     for s in validate.seeds("seeds", seeds)])
