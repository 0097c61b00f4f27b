"""FedAvg in JAX: every client of a round trained in one `jit` + `vmap` call.

Per-client work is written once (`client_update`: local SGD epochs over padded, masked batches)
and run by interchangeable executors: `vmap_round` (all clients at once, optionally sharded over
the device mesh along a clients axis) or `loop_round` (a jitted call per client, FedJAX's default
style). Clients are padded to the same number of batches; padded examples carry mask 0 and padded
clients weight 0, so the aggregate is FedAvg weighted by example counts.

The server step is an object (`ServerOptimizer`, registry `SERVER_OPTIMIZERS`): the mean delta, negated, is
the pseudo-gradient fed to an optax transformation (SGD for FedAvg and FedProx, Adam for FedAdam, Yogi for
FedYogi; Reddi et al. 2021); FedProx's proximal term acts in `client_update`. `federated_accuracy` is what an
evaluation round reports: example-weighted accuracy from each device's two counts.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mlsys_core import validate


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A small MLP classifier and its local optimiser."""

    num_features: int = 64  # inputs (an 8x8 digit)
    hidden: int = 32  # units of the tanh hidden layer
    num_classes: int = 10  # outputs
    learning_rate: float = 0.1  # clients' local SGD step
    batch_size: int = 16  # local mini-batch
    epochs: int = 1  # local passes over a client's examples per round

    def __post_init__(self) -> None:
        for name in ("num_features", "hidden", "num_classes", "batch_size", "epochs"):
            validate.integer(name, getattr(self, name), 1)
        validate.number("learning_rate", self.learning_rate, 0.0, low_open=True)


class ClientData(NamedTuple):
    """Clients padded to one shape (S a multiple of the batch size). A NamedTuple because it is a JAX pytree
    that `jit`, `vmap`, device placement and the `jax.lax.scan` loops of `dp.dp_fedavg` take apart and
    rebuild field by field."""

    x: np.ndarray | jax.Array  # (C, S, F) features
    y: np.ndarray | jax.Array  # (C, S) labels
    mask: np.ndarray | jax.Array  # (C, S) 1 for a real example, 0 for padding
    num_examples: np.ndarray | jax.Array  # (C,) real examples per client

    def take(self, idx: int | slice | np.ndarray) -> ClientData:
        """The clients `idx` (an index or mask over the clients axis)."""
        return ClientData(self.x[idx], self.y[idx], self.mask[idx], self.num_examples[idx])


def dirichlet_split(labels: np.ndarray, num_clients: int, alpha: float, seed: int) -> list[np.ndarray]:
    """Split example indices over clients non-IID: each class's examples shared by Dir(alpha) weights.

    Small alpha (0.1) gives clients few classes; large alpha approaches an IID split. Some clients
    may get no example (they then carry weight 0).

    Args:
        labels: (N,) integer class labels.
        num_clients: how many clients.
        alpha: Dirichlet concentration (> 0).
        seed: seeds the split.

    Returns:
        per client, its sorted example indices.
    """
    labels = validate.integers("labels", labels)
    validate.integer("num_clients", num_clients, 1)
    validate.number("alpha", alpha, 0.0, low_open=True)
    rng = np.random.default_rng(validate.seed("seed", seed))
    parts: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        share = rng.dirichlet(np.full(num_clients, alpha))
        cuts = np.round(np.cumsum(share)[:-1] * len(idx)).astype(int)
        for k, piece in enumerate(np.split(idx, cuts)):
            parts[k].append(piece)
    return [np.sort(np.concatenate(p)) for p in parts]


def resample_clients(labels: np.ndarray, num_clients: int, examples_per_client: int, alpha: float,
                     seed: int) -> list[np.ndarray]:
    """Many equal-sized non-IID clients from a small dataset: each draws a class mix ~ Dir(alpha),
    then `examples_per_client` example indices of those classes (with replacement across clients).

    Args:
        labels: (N,) integer class labels.
        num_clients: how many clients.
        examples_per_client: indices drawn per client.
        alpha: Dirichlet concentration of each client's class mix (> 0).
        seed: seeds the mixes and the draws.
    """
    validate.integer("num_clients", num_clients, 1)
    validate.integer("examples_per_client", examples_per_client, 1)
    validate.number("alpha", alpha, 0.0, low_open=True)
    labels = validate.integers("labels", labels)
    rng = np.random.default_rng(validate.seed("seed", seed))
    classes = np.unique(labels)
    by_class = [np.flatnonzero(labels == c) for c in classes]
    mix = rng.dirichlet(np.full(len(classes), alpha), size=num_clients)
    drawn = (mix.cumsum(1)[:, None, :] < rng.random((num_clients, examples_per_client, 1))).sum(-1)
    drawn = np.minimum(drawn, len(classes) - 1)
    return [np.array([rng.choice(by_class[c]) for c in row]) for row in drawn]


def pad_clients(x: np.ndarray, y: np.ndarray, parts: list[np.ndarray], batch_size: int) -> ClientData:
    """Stack clients' examples into padded arrays with masks (shapes in `ClientData`).

    Args:
        x: (N, F) every example's features.
        y: (N,) their labels.
        parts: per client, its example indices.
        batch_size: clients are padded to a multiple of it.
    """
    validate.integer("batch_size", batch_size, 1)
    longest = max(1, max(len(p) for p in parts))
    s = -(-longest // batch_size) * batch_size
    c = len(parts)
    xs = np.zeros((c, s, x.shape[1]), np.float32)
    ys = np.zeros((c, s), np.int32)
    mask = np.zeros((c, s), np.float32)
    for k, p in enumerate(parts):
        xs[k, : len(p)], ys[k, : len(p)], mask[k, : len(p)] = x[p], y[p], 1.0
    return ClientData(xs, ys, mask, np.array([len(p) for p in parts], np.float32))


def init_params(key: jax.Array, model: ModelConfig) -> dict:
    """The MLP's initial weights (scaled normal) and zero biases, from PRNG `key`."""
    validate.instance("model", model, ModelConfig, "a fedavg.ModelConfig")
    k1, k2 = jax.random.split(key)
    scale1, scale2 = 1.0 / np.sqrt(model.num_features), 1.0 / np.sqrt(model.hidden)
    return {
        "w1": jax.random.normal(k1, (model.num_features, model.hidden)) * scale1,
        "b1": jnp.zeros(model.hidden),
        "w2": jax.random.normal(k2, (model.hidden, model.num_classes)) * scale2,
        "b2": jnp.zeros(model.num_classes),
    }


def logits_fn(params: dict, x: jax.Array | np.ndarray) -> jax.Array:
    """The MLP's logits for inputs x (..., F)."""
    return jnp.tanh(x @ params["w1"] + params["b1"]) @ params["w2"] + params["b2"]


def masked_loss(params: dict, x: jax.Array | np.ndarray, y: jax.Array | np.ndarray,
                mask: jax.Array | np.ndarray) -> jax.Array:
    """Mean cross-entropy over the real (mask 1) examples; 0 for an all-padding batch.

    Args:
        params: the model.
        x: (B, F) inputs.
        y: (B,) labels.
        mask: (B,) 1 for a real example, 0 for padding.
    """
    losses = optax.softmax_cross_entropy_with_integer_labels(logits_fn(params, x), y)
    return jnp.sum(losses * mask) / jnp.maximum(jnp.sum(mask), 1.0)


def client_update(params: dict, x: jax.Array | np.ndarray, y: jax.Array | np.ndarray, mask: jax.Array | np.ndarray,
                  model: ModelConfig, mu: float = 0.0) -> dict:
    """One client's local training: `epochs` passes of SGD over its batches. Returns the delta.

    All-padding batches give zero gradients, so padding changes nothing. `mu` > 0 adds FedProx's proximal
    term mu/2 ||w - w_global||^2 to the local loss (Li et al. 2020); mu = 0 traces exactly FedAvg's program
    (no term at all), so the two agree bit for bit.

    Args:
        params: the global model the client starts from.
        x: (S, F) its inputs.
        y: (S,) its labels.
        mask: (S,) 1 for a real example, 0 for padding.
        model: learning rate, batch size and epochs.
        mu: FedProx's proximal coefficient (0: FedAvg).
    """
    opt = optax.sgd(model.learning_rate)
    nb = x.shape[0] // model.batch_size
    batches = jax.tree.map(lambda a: a.reshape(nb, model.batch_size, *a.shape[1:]), (x, y, mask))

    def step(carry: tuple, batch: tuple) -> tuple:
        p, state = carry
        grads = jax.grad(masked_loss)(p, *batch)
        if mu:
            grads = jax.tree.map(lambda g, w, w0: g + mu * (w - w0), grads, p, params)
        updates, state = opt.update(grads, state, p)
        return (optax.apply_updates(p, updates), state), None

    def epoch(carry: tuple, _: None) -> tuple:  # a scan over the batches in place: no copy of the data per epoch
        return jax.lax.scan(step, carry, batches)[0], None

    (final, _), _ = jax.lax.scan(epoch, (params, opt.init(params)), length=model.epochs)
    return jax.tree.map(jnp.subtract, final, params)


def weighted_mean(deltas: dict, weights: jax.Array) -> dict:
    """Sum_k w_k delta_k / Sum_k w_k over the leading (clients) axis; zeros if all weights are 0."""
    total = jnp.sum(weights)
    scale = weights / jnp.where(total > 0, total, 1.0)
    return jax.tree.map(lambda d: jnp.tensordot(scale, d, axes=1), deltas)


@functools.partial(jax.jit, static_argnames=("model", "mu"))
def client_deltas(params: dict, data: ClientData, model: ModelConfig, mu: float = 0.0) -> dict:
    """All clients' deltas in one call: `vmap` of `client_update` over the clients axis.

    Args:
        params: the global model.
        data: the clients (padded).
        model: learning rate, batch size and epochs (static: one compile per model).
        mu: FedProx's proximal coefficient (0: FedAvg).
    """
    return jax.vmap(client_update, in_axes=(None, 0, 0, 0, None, None))(params, data.x, data.y, data.mask, model,
                                                                          mu)


@functools.partial(jax.jit, static_argnames="model")
def vmap_round(params: dict, data: ClientData, weights: jax.Array, model: ModelConfig) -> dict:
    """One FedAvg round: train all clients (vmap) and apply the weighted mean of their deltas.

    Args:
        params: the global model.
        data: the clients (padded).
        weights: (C,) each client's weight (its examples; 0 for a padding client).
        model: learning rate, batch size and epochs.
    """
    return jax.tree.map(jnp.add, params, weighted_mean(client_deltas(params, data, model), weights))


_client_update_jit = jax.jit(client_update, static_argnames="model")


def loop_round(params: dict, data: ClientData, weights: np.ndarray, model: ModelConfig) -> dict:
    """The same round as `vmap_round`, one jitted call per client (FedJAX's default executor style).

    Args:
        params: the global model.
        data: the clients (padded).
        weights: (C,) each client's weight (0: skipped).
        model: learning rate, batch size and epochs.
    """
    validate.instance("model", model, ModelConfig, "a fedavg.ModelConfig")
    total = float(np.sum(weights))
    acc = jax.tree.map(jnp.zeros_like, params)
    for k in range(len(weights)):
        if weights[k] == 0:
            continue
        d = _client_update_jit(params, data.x[k], data.y[k], data.mask[k], model)
        acc = jax.tree.map(lambda a, b, w=weights[k] / total: a + w * b, acc, d)
    return jax.tree.map(jnp.add, params, acc)


def shard_clients(data: ClientData, weights: np.ndarray, devices: Sequence[jax.Device]) -> tuple[ClientData, jax.Array]:
    """Place clients along a 'clients' mesh axis over `devices` (padding the client count to a multiple)."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    n = len(devices)
    pad = (-len(weights)) % n
    if pad:
        data = ClientData(*(np.concatenate([a, np.zeros((pad, *a.shape[1:]), a.dtype)]) for a in data))
        weights = np.concatenate([weights, np.zeros(pad, np.float32)])
    sharding = NamedSharding(Mesh(np.array(devices), ("clients",)), PartitionSpec("clients"))
    return ClientData(*(jax.device_put(a, sharding) for a in data)), jax.device_put(weights, sharding)


@jax.jit
def accuracy(params: dict, x: jax.Array | np.ndarray, y: jax.Array | np.ndarray) -> jax.Array:
    """Share of the inputs x (N, F) classified as their labels y (N,)."""
    return jnp.mean(jnp.argmax(logits_fn(params, x), -1) == y)


def sgd_step(params: dict, x: jax.Array | np.ndarray, y: jax.Array | np.ndarray, model: ModelConfig) -> dict:
    """Centralised mini-batch SGD: one optax step on the batch (the FedSGD equivalence check).

    Args:
        params: the model.
        x: (B, F) inputs.
        y: (B,) labels.
        model: the learning rate.
    """
    opt = optax.sgd(model.learning_rate)
    grads = jax.grad(masked_loss)(params, x, y, jnp.ones(len(y)))
    updates, _ = opt.update(grads, opt.init(params), params)
    return optax.apply_updates(params, updates)


@jax.jit
def client_correct(params: dict, data: ClientData) -> tuple[jax.Array, jax.Array]:
    """Federated evaluation on the devices: each client's correct predictions and examples (mask-weighted)."""
    hit = jnp.argmax(logits_fn(params, data.x), -1) == data.y  # (C, S)
    return jnp.sum(hit * data.mask, axis=1), jnp.sum(data.mask, axis=1)


def federated_accuracy(params: dict, data: ClientData) -> float:
    """What a federated evaluation round reports: the example-weighted accuracy over its devices (the
    server sees only each device's two counts, never its examples)."""
    correct, n = client_correct(params, data)
    return float(np.sum(correct) / max(float(np.sum(n)), 1.0))


# -- server optimizers: the server treats the negative mean delta as a gradient (Reddi et al. 2021) --------

@dataclasses.dataclass(frozen=True)
class ServerOptimizer:
    """How the server applies a round's mean client delta. `transform()` is the optax transformation
    fed the pseudo-gradient -mean_delta; `client_mu` is the proximal term clients train with."""

    learning_rate: float = 1.0

    def __post_init__(self) -> None:
        validate.number("learning_rate", self.learning_rate, 0.0, low_open=True)

    @property
    def client_mu(self) -> float:
        return 0.0

    def transform(self) -> optax.GradientTransformation:
        return optax.sgd(self.learning_rate)


@dataclasses.dataclass(frozen=True)
class FedAvg(ServerOptimizer):
    """McMahan et al. 2017: params += learning_rate x mean delta (server SGD; lr 1 is plain averaging)."""


@dataclasses.dataclass(frozen=True)
class FedProx(ServerOptimizer):
    """Li et al. 2020: FedAvg's server step, clients minimise loss + mu/2 ||w - w_global||^2."""

    mu: float = 0.01

    def __post_init__(self) -> None:
        super().__post_init__()
        validate.number("mu", self.mu, 0.0)

    @property
    def client_mu(self) -> float:
        return float(self.mu)


@dataclasses.dataclass(frozen=True)
class FedAdam(ServerOptimizer):
    """Reddi et al. 2021: optax Adam on the pseudo-gradient (their tau is Adam's eps)."""

    learning_rate: float = 0.03
    b1: float = 0.9
    b2: float = 0.99
    eps: float = 1e-3

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("b1", "b2"):
            validate.number(name, getattr(self, name), 0.0, 1.0, high_open=True)
        validate.number("eps", self.eps, 0.0, low_open=True)

    def transform(self) -> optax.GradientTransformation:
        return optax.adam(self.learning_rate, self.b1, self.b2, self.eps)


@dataclasses.dataclass(frozen=True)
class FedYogi(FedAdam):
    """Reddi et al. 2021: optax Yogi on the pseudo-gradient (additive second-moment update)."""

    def transform(self) -> optax.GradientTransformation:
        return optax.yogi(self.learning_rate, self.b1, self.b2, self.eps)


SERVER_OPTIMIZERS: dict[str, type[ServerOptimizer]] = {"fedavg": FedAvg, "fedprox": FedProx, "fedadam": FedAdam,
                                                       "fedyogi": FedYogi}


def server_optimizer(name: str, **kwargs: Any) -> ServerOptimizer:
    """The registered server optimizer `name` (see SERVER_OPTIMIZERS) with its hyperparameters."""
    return SERVER_OPTIMIZERS[validate.choice("name", name, SERVER_OPTIMIZERS)](**kwargs)


def server_init(opt: ServerOptimizer, params: dict) -> optax.OptState:
    """The server optimizer's state for `params` (optax state; empty for SGD)."""
    validate.instance("opt", opt, ServerOptimizer, "a fedavg.ServerOptimizer")
    return opt.transform().init(params)


def server_update(opt: ServerOptimizer, state: optax.OptState, params: dict,
                  mean_delta: dict) -> tuple[dict, optax.OptState]:
    """One server step: feed -mean_delta to the optax transformation.

    Args:
        opt: the server optimizer.
        state: its optax state (`server_init`).
        params: the global model.
        mean_delta: the round's mean client delta, a pytree like `params`.

    Returns:
        (params, state) after the step.
    """
    validate.instance("opt", opt, ServerOptimizer, "a fedavg.ServerOptimizer")
    updates, state = opt.transform().update(jax.tree.map(jnp.negative, mean_delta), state, params)
    return optax.apply_updates(params, updates), state
