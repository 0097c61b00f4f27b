"""Federated training driven by the round protocol: who reports in time decides what is averaged.

Each round selects clients (reservoir sample of the idle ones), draws their sessions (download,
train, upload, drop-out) on the simulated clock, trains *all* selected clients in one vmapped call,
and averages the updates that arrived in the window. Late updates are thrown away (the paper), or
recycled (the survey's proposal): applied once, in the first later committed round, with weight
examples x 1/sqrt(1 + staleness).
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
from jax.flatten_util import ravel_pytree

from mlsys_core import validate
from mlsys_core.data import load_digits
from mlsys_core.fl.fedavg import (
    ModelConfig,
    accuracy,
    client_deltas,
    dirichlet_split,
    init_params,
    pad_clients,
    sgd_step,
)
from mlsys_core.fl.population import PopulationConfig, make_population
from mlsys_core.fl.protocol import (
    RecycleBuffer,
    RoundConfig,
    reporting_outcome,
    reservoir_sample,
    sample_sessions,
    take_recyclable,
)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The federated task: how many clients, how non-IID (Dirichlet alpha), how many rounds."""

    num_clients: int = 100
    alpha: float = 0.5
    rounds: int = 40
    test_fraction: float = 0.25
    server_learning_rate: float = 1.0

    def __post_init__(self):
        validate.integer("num_clients", self.num_clients, 1)
        validate.number("alpha", self.alpha, 0.0, low_open=True)
        validate.integer("rounds", self.rounds, 1)
        validate.number("test_fraction", self.test_fraction, 0.0, 0.9, low_open=True)
        validate.number("server_learning_rate", self.server_learning_rate, 0.0, low_open=True)


def federated_training(round_config: RoundConfig, model: ModelConfig, train: TrainConfig, seed: int,
                       population: PopulationConfig | None = None) -> dict[str, np.ndarray]:
    """Train on digits split over clients by Dir(alpha), round by round on the simulated clock.

    Returns per-round arrays: time_s (end of reporting), accuracy (held-out), committed, accepted,
    late, recycled, wasted_compute_s (device seconds of late updates thrown away).
    """
    round_config = dataclasses.replace(round_config, epochs=model.epochs)  # sessions train as long as the model does
    rng, x, y, tr, test = _split(seed, train.test_fraction)
    parts = dirichlet_split(y[tr], train.num_clients, train.alpha, seed)
    data = pad_clients(x[tr], y[tr], parts, model.batch_size)
    pop = make_population(dataclasses.replace(population or PopulationConfig(), num_devices=train.num_clients), seed)
    params = init_params(jax.random.key(seed), model)
    flat_params, unravel = ravel_pytree(params)  # per-client deltas are kept as flat rows
    target = min(round_config.target, train.num_clients)
    busy_until = np.zeros(train.num_clients)
    buffer, buf_deltas = RecycleBuffer.empty(), np.zeros((0, flat_params.size))
    t, version = 0.0, 0
    cols = {k: [] for k in ("time_s", "accuracy", "committed", "accepted", "late", "recycled", "wasted_compute_s")}
    for _ in range(train.rounds):
        idle = np.flatnonzero(busy_until <= t)
        if len(idle) < round_config.min_selected:  # wait for devices to come back
            t = float(np.sort(busy_until)[round_config.min_selected - 1])
            idle = np.flatnonzero(busy_until <= t)
        sel = rng.permutation(idle)[reservoir_sample(rng, len(idle), min(target, len(idle)))]
        sess = sample_sessions(rng, pop, sel, t, round_config, num_examples=data.num_examples[sel])
        out = reporting_outcome(sess.report_s, t, round_config)
        late = np.isfinite(sess.report_s) & ~out.accepted
        padded = np.concatenate([sel, np.zeros(target - len(sel), np.int64)])
        deltas = np.asarray(jax.vmap(lambda d: ravel_pytree(d)[0])(client_deltas(params, data.take(padded), model)))
        deltas = deltas[: len(sel)]
        weights, stack = data.num_examples[sel] * out.accepted, deltas
        recycled = 0
        if out.committed and round_config.recycle_late:
            taken, buffer_rest = take_recyclable(buffer, out.end_s, version)
            weights = np.concatenate([weights, taken["weight"]])
            stack = np.concatenate([deltas, buf_deltas[taken["index"]]])
            buf_deltas, buffer, recycled = np.delete(buf_deltas, taken["index"], axis=0), buffer_rest, len(taken["ids"])
        if round_config.recycle_late:
            buffer = buffer.add(sel[late], sess.report_s[late], version, data.num_examples[sel[late]])
            buf_deltas = np.concatenate([buf_deltas, deltas[late]])
        if out.committed and weights.sum() > 0:
            step = train.server_learning_rate * (weights @ stack) / weights.sum()
            params = jax.tree.map(lambda p, d: p + d, params, unravel(step))
            version += 1
        busy_until[sel] = np.where(np.isfinite(sess.report_s), sess.report_s, sess.drop_s)
        t = out.end_s
        cols["time_s"].append(t)
        cols["accuracy"].append(float(accuracy(params, x[test], y[test])))
        cols["committed"].append(out.committed)
        cols["accepted"].append(int(out.accepted.sum()))
        cols["late"].append(int(late.sum()))
        cols["recycled"].append(recycled)
        cols["wasted_compute_s"].append(0.0 if round_config.recycle_late else float(sess.compute_s[late].sum()))
    return {k: np.array(v) for k, v in cols.items()}


def _split(seed: int, test_fraction: float):
    rng = np.random.default_rng(seed)
    x, y = load_digits()
    order = rng.permutation(len(y))
    n_test = int(len(y) * test_fraction)
    return rng, x, y, order[n_test:], order[:n_test]


def centralised_accuracy(model: ModelConfig, train: TrainConfig, steps: int, seed: int) -> float:
    """Baseline: the same model trained centrally for `steps` mini-batch SGD steps on the same train split."""
    _, x, y, tr, test = _split(seed, train.test_fraction)
    params = init_params(jax.random.key(seed), model)
    step = jax.jit(sgd_step, static_argnames="model")
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        batch = rng.choice(tr, size=model.batch_size, replace=False)
        params = step(params, x[batch], y[batch], model)
    return float(accuracy(params, x[test], y[test]))
