"""Synergy 4: "allowing the edge devices, rather than the server, to perform evaluation and normalization".

Evaluation: a federated round in which each device scores the model on its own shard and reports
(correct, examples) (`federated_accuracy`), against the pod's distributed evaluation on the mesh
(`evaluation_on_devices`). Batch norm: statistics averaged over groups of devices (Paper 1's distributed
batch norm) on non-IID devices (`bn_on_devices`). The digits are dispatched as in synergy 2 (`cast_as_fl`).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from mlsys_core import backend, validate
from mlsys_core.fl import fedavg
from mlsys_core.seeds import DEFAULT_SEEDS
from mlsys_core.synergy.cast_as_fl import SPLITS, dispatch, federated_rounds, protocol_participants, round_batches


def device_counts(correct, shards) -> tuple[np.ndarray, np.ndarray]:
    """What each device reports in a federated evaluation round: (correct answers, examples) on its
    own shard, from the per-example correctness `correct` of the whole set."""
    correct = np.asarray(correct, np.float64)
    return (np.array([correct[s].sum() for s in shards]), np.array([len(s) for s in shards], np.float64))


def federated_accuracy(params, x, y, shards, participants=None) -> float:
    """A federated evaluation round: each participating device (all, or `participants`) counts its
    correct answers on its own shard of (x, y) and reports (correct, examples); the server divides
    the sums. With everyone reporting it is exactly the accuracy over the whole set. (The model is
    run over the whole set in one call; each device's count uses only its own rows.)

    Args:
        params: the FL package's MLP's parameters.
        x: (examples, 64) the evaluation digits.
        y: (examples,) their labels.
        shards: each device's indices into x.
        participants: ids of the reporting devices (None: every device).
    """
    right, count = device_counts(np.asarray(_mlp_labels(params, x)) == np.asarray(y), shards)
    return _pooled(right, count, participants)


def _pooled(right, count, participants=None) -> float:
    ids = slice(None) if participants is None else np.asarray(participants, np.int64)
    total = count[ids].sum()
    if total == 0:
        raise ValueError("federated_accuracy needs at least one reporting device with data")
    return float(right[ids].sum() / total)


@dataclasses.dataclass(frozen=True)
class EvalOnDevices:
    """A model's test accuracy three ways: on the pod, in a federated round with everyone, and in the
    rounds the protocol commits."""

    pod: np.ndarray  # (seeds,) the pod's distributed accuracy (Paper 1, `spmd.distributed_accuracy` on the mesh)
    everyone: np.ndarray  # (seeds,) the federated round with every device
    error: dict  # goal count -> (seeds,) RMS over the committed rounds of the federated estimate - the pod's
    sampling_error: dict  # goal count -> (seeds,) RMS over the same rounds of `binomial_standard_error`

    @property
    def error_over_sampling(self) -> dict:
        """goal count -> (seeds,) `error` over `sampling_error`: 1 when a round's estimate is as good as a
        random sample of as many test digits would give; above 1 when the devices' label skew adds to it."""
        return {g: self.error[g] / self.sampling_error[g] for g in self.error}


def binomial_standard_error(accuracy: float, examples, population: int) -> np.ndarray:
    """Standard error of an accuracy measured on `examples` test digits drawn at random, without replacement,
    from `population` whose accuracy is `accuracy`: sqrt(p (1 - p) / n x (N - n) / (N - 1))."""
    p = validate.probability("accuracy", accuracy)
    population = validate.integer("population", population, 2)
    n = validate.reals("examples", examples, 1.0, population)
    return np.sqrt(p * (1 - p) / n * (population - n) / (population - 1))


def evaluation_on_devices(goal_counts=(4, 10, 20), devices: int = 40, split: str = "dirichlet", alpha: float = 0.5,
                          rounds: int = 20, train_rounds: int = 30, seeds=DEFAULT_SEEDS) -> EvalOnDevices:
    """Train the digits MLP by FedAvg (IID, everyone, `train_rounds`), deal the 360 test digits to
    `devices` (`split`), and evaluate it three ways: the pod's sharded evaluation, a federated round
    with everyone, and federated rounds with the devices the protocol commits (`goal_counts`).

    Args:
        goal_counts: the protocol's updates per round, one error each (each 1 to devices).
        devices: devices the test digits are dealt to (>= 1).
        split: one of `cast_as_fl.SPLITS` ("iid" deals every test digit, in near-equal shards).
        alpha: Dirichlet concentration of the "dirichlet" split (> 0).
        rounds: committed protocol rounds the error is taken over (>= 1).
        train_rounds: FedAvg rounds that train the model (>= 1).
        seeds: one model and one dealing per seed.
    """
    from mlsys_core.sharding import spmd
    from mlsys_core.sharding.strategies import data_mesh

    seeds = validate.seeds("seeds", seeds)
    split = validate.choice("split", split, SPLITS)
    devices = validate.integer("devices", devices, 1)
    pod, everyone, error, sampling = [], [], {g: [] for g in goal_counts}, {g: [] for g in goal_counts}
    mesh = data_mesh(backend.MESH_DEVICES)
    for s in seeds:
        shards, data = dispatch("iid", backend.MESH_DEVICES, seed=s)
        run = federated_rounds(round_batches(shards, train_rounds, 1, 16, s), data, [len(p) for p in shards], seed=s)
        _, _, xt, yt = data
        if split == "iid":
            test_shards = np.array_split(np.random.default_rng(s).permutation(len(xt)), devices)
        else:
            test_shards = fedavg.dirichlet_split(yt, devices, alpha, s)
        exact = spmd.distributed_accuracy(_mlp_labels, run.params, xt, yt, mesh)
        pod.append(exact)
        right, count = device_counts(np.asarray(_mlp_labels(run.params, xt)) == yt, test_shards)
        everyone.append(_pooled(right, count))
        for g in goal_counts:
            committed = protocol_participants(devices, g, rounds, s)
            est = [_pooled(right, count, ids) for ids in committed]
            error[g].append(float(np.sqrt(np.mean((np.array(est) - exact) ** 2))))
            scored = np.array([count[np.asarray(ids, np.int64)].sum() for ids in committed])
            sampling[g].append(float(np.sqrt(np.mean(binomial_standard_error(exact, scored, len(yt)) ** 2))))
    return EvalOnDevices(np.array(pod), np.array(everyone), {g: np.array(v) for g, v in error.items()},
                         {g: np.array(v) for g, v in sampling.items()})


def _mlp_labels(params, x):
    """Predicted labels of the FL package's MLP (one compiled function for every call)."""
    return _jitted_labels()(params, x)


@functools.lru_cache(maxsize=1)
def _jitted_labels():
    import jax
    import jax.numpy as jnp

    return jax.jit(lambda params, x: jnp.argmax(fedavg.logits_fn(params, x), -1))


def _bn_labels(params_and_stats, x):
    """Labels of `spmd.BatchNormMLP` with fixed (population) statistics, evaluated on one device."""
    import jax.numpy as jnp

    from mlsys_core.sharding import spmd

    params, stats = params_and_stats
    return jnp.argmax(spmd.BatchNormMLP().apply(params, x, stats=stats), axis=1)


def bn_on_devices(group_sizes=(1, 2, 4, 8), alpha: float = 0.1, per_device_batch: int = 8, steps: int = 60,
                  seeds=DEFAULT_SEEDS, devices: int = backend.MESH_DEVICES) -> dict[int, np.ndarray]:
    """Batch norm on non-IID devices: each of `devices` draws its batches from its own Dirichlet(alpha)
    shard; batch statistics are averaged over groups of g devices (Paper 1's distributed BN,
    `sharding.spmd.bn_mesh`) or local (g = 1). WUS Adam training of `spmd.BatchNormMLP`; evaluation
    with the training set's population statistics (one federated aggregate), on the 360 test digits.
    Returns {g: (seeds,) accuracy}.

    Args:
        group_sizes: devices whose batch statistics are averaged (each divides `devices`).
        alpha: Dirichlet concentration of the devices' shards (> 0; smaller: fewer classes per device).
        per_device_batch: examples per device and step (>= 1).
        steps: WUS training steps (>= 1).
        seeds: one dealing and one initialisation per seed.
        devices: mesh devices, one shard each.
    """
    import jax

    from mlsys_core.sharding import optimizers, spmd
    from mlsys_core.sharding.strategies import Trainer, train

    seeds = validate.seeds("seeds", seeds)
    bn = spmd.BatchNormMLP()
    out = {g: [] for g in group_sizes}
    trainers = {g: Trainer(bn.loss("bn"), optimizers.make("adam", 1e-2), spmd.bn_mesh(devices, g), "wus",
                           data_axes=("group", "bn")) for g in group_sizes}
    for s in seeds:
        shards, (x, y, xt, yt) = dispatch("dirichlet", devices, alpha, s)
        idx = round_batches(shards, steps, 1, per_device_batch, s)
        if (idx < 0).any():
            raise ValueError("every device needs data for batch norm on devices; raise alpha or change the seed")
        batches = [(x[r.reshape(-1)], y[r.reshape(-1)]) for r in idx]
        params = bn.init(jax.random.key(s))
        for g, trainer in trainers.items():
            state, _ = train(trainer, params, batches)
            p = trainer.full_params(state)
            labels = _bn_labels((p, bn.population_stats(p, x)), xt)
            out[g].append(float(np.mean(np.asarray(labels) == yt)))
    return {g: np.array(v) for g, v in out.items()}
