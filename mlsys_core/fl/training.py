"""Federated training on the system: the clients of a round are the devices `protocol.simulate` accepted.

A task is a population of devices, each holding digits drawn with a class mix ~ Dir(alpha) (and a few
local held-out examples for federated evaluation). `protocol.simulate` runs the rounds on the simulated
clock (diurnal availability, reservoir selection, drop-outs, late uploads, actor faults, recycling);
`train_on_simulation` then replays them: in round r the devices of `sim.aggregated.of(r)` (and, with
`recycle_late`, the late ones to buffer) train the current model in one vmapped `jit` call, and the server
optimizer (`fedavg.ServerOptimizer`: FedAvg, FedProx, FedAdam, FedYogi) applies their mean delta, plus
the recycled late deltas with weight examples x 1/sqrt(1 + staleness). Rounds that do not commit change
nothing. Every `eval_every` committed rounds, the round's devices also evaluate the model they downloaded
on their local held-out examples (federated evaluation), beside the central held-out accuracy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from mlsys_core import validate
from mlsys_core.data import load_digits
from mlsys_core.fl.fedavg import (
    ClientData,
    FedAvg,
    ModelConfig,
    ServerOptimizer,
    accuracy,
    client_deltas,
    federated_accuracy,
    init_params,
    pad_clients,
    resample_clients,
    server_init,
    server_update,
    sgd_step,
)
from mlsys_core.fl.population import HOUR_S, PopulationConfig, make_population
from mlsys_core.fl.protocol import FLSimResult, Ragged, simulate
from mlsys_core.fl.rounds import RoundConfig, RoundResult
from mlsys_core.fl.steering import SteeringConfig


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """The federated task: devices, how non-IID (Dirichlet alpha), local data, how long, what evaluates."""

    num_devices: int = 500  # devices in the task's population
    alpha: float = 0.5  # Dirichlet concentration of each device's class mix (small: non-IID)
    examples_per_device: int = 32  # training digits a device holds
    eval_examples_per_device: int = 8  # held-out digits a device evaluates on
    test_fraction: float = 0.25  # share of the digits held out centrally (devices' held-out ones come from it)
    hours: float = 24.0  # simulated hours
    rounds: int | None = None  # stop after this many committed rounds (model versions; None: all)
    eval_every: int = 5  # federated evaluation every this many committed rounds (0: never)

    def __post_init__(self) -> None:
        validate.integer("num_devices", self.num_devices, 1)
        validate.number("alpha", self.alpha, 0.0, low_open=True)
        validate.integer("examples_per_device", self.examples_per_device, 1)
        validate.integer("eval_examples_per_device", self.eval_examples_per_device, 1)
        validate.number("test_fraction", self.test_fraction, 0.0, 0.9, low_open=True)
        validate.number("hours", self.hours, 0.0, low_open=True)
        if self.rounds is not None:
            validate.integer("rounds", self.rounds, 1)
        validate.integer("eval_every", self.eval_every, 0)


CONFIG_KINDS = {"round_config": RoundConfig, "steering": SteeringConfig, "train": TrainConfig, "model": ModelConfig}


def _check_configs(**configs: object) -> None:
    """Each config is of its kind (`CONFIG_KINDS`): a string where a config belongs is a TypeError naming it."""
    for name, value in configs.items():
        kind = CONFIG_KINDS[name]
        validate.instance(name, value, kind, f"a {kind.__module__.rsplit('.', 1)[-1]}.{kind.__name__}")


@dataclasses.dataclass(frozen=True)
class Task:
    """The devices' data (row k is device k) and the central held-out set."""

    train: ClientData  # each device's training digits
    local_eval: ClientData  # each device's held-out digits (federated evaluation)
    test_x: np.ndarray  # (examples, 64) the central held-out digits
    test_y: np.ndarray  # (examples,) their labels


def _split(
    seed: int, test_fraction: float
) -> tuple[np.random.Generator, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x, y = load_digits()
    order = rng.permutation(len(y))
    n_test = int(len(y) * test_fraction)
    return rng, x, y, order[n_test:], order[:n_test]


def make_task(train: TrainConfig, model: ModelConfig, seed: int) -> Task:
    """Device k's class mix ~ Dir(alpha) (the same mix for its training and its held-out examples)."""
    _check_configs(train=train, model=model)
    validate.seed("seed", seed)
    _, x, y, tr, test = _split(seed, train.test_fraction)
    parts = resample_clients(y[tr], train.num_devices, train.examples_per_device, train.alpha, seed)
    held = resample_clients(y[test], train.num_devices, train.eval_examples_per_device, train.alpha, seed)
    return Task(pad_clients(x[tr], y[tr], parts, model.batch_size),
                pad_clients(x[test], y[test], held, model.batch_size), x[test], y[test])


def simulate_task(round_config: RoundConfig, steering: SteeringConfig, train: TrainConfig, model: ModelConfig,
                  seed: int, population: PopulationConfig | None = None,
                  executor: Callable[..., RoundResult] | None = None) -> FLSimResult:
    """The protocol run the training replays: the task's devices, their sessions as long as local training
    (`epochs` over their examples), for `train.hours` simulated hours.

    Args:
        round_config: the round configuration (its `epochs` become the model's).
        steering: pace steering.
        train: the task (devices, examples per device, hours).
        model: the model and local optimiser (its `epochs`).
        seed: draws the population and drives the simulation.
        population: the population's other parameters (None: the defaults).
        executor: reporting's executor (None: the protocol alone; see `protocol.simulate`).
    """
    validate.seed("seed", seed)
    _check_configs(round_config=round_config, steering=steering, train=train, model=model)
    if population is not None:
        validate.instance("population", population, PopulationConfig, "a population.PopulationConfig or None")
    pop = make_population(dataclasses.replace(population or PopulationConfig(), num_devices=train.num_devices), seed)
    pop = dataclasses.replace(pop, num_examples=np.full(pop.size, train.examples_per_device, np.int32))
    config = dataclasses.replace(round_config, epochs=model.epochs)
    return simulate(pop, config, steering, train.hours * HOUR_S, seed, executor=executor, traced_devices=pop.size)


@jax.jit
def _flat_rows(deltas: dict) -> jax.Array:
    """Each client's delta as one flat row, in `ravel_pytree`'s leaf order (so its unravel applies)."""
    return jnp.concatenate([leaf.reshape(leaf.shape[0], -1) for leaf in jax.tree.leaves(deltas)], axis=1)


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    """A training replayed on a simulation: per round of the simulation (arrays over rounds), and the model."""

    round: np.ndarray  # round index
    time_s: np.ndarray  # when its reporting closed (simulated s)
    committed: np.ndarray  # bool: it committed
    version: np.ndarray  # the model version after it (committed rounds so far)
    aggregated: np.ndarray  # on-time updates in its aggregate (0 unless committed)
    recycled: np.ndarray  # late updates of earlier rounds it applied
    late: np.ndarray  # uploads that came after it closed
    accuracy: np.ndarray  # central held-out accuracy after it
    federated_accuracy: np.ndarray  # on evaluation rounds, what its devices reported (nan elsewhere)
    central_at_eval: np.ndarray  # on evaluation rounds, the central accuracy of the same model (nan elsewhere)
    wasted_compute_s: np.ndarray  # device training time whose update was thrown away (s)
    trained: Ragged  # device ids whose delta entered each round's aggregate on time
    params: dict  # the final model

    @property
    def hours(self) -> np.ndarray:
        """`time_s` in hours."""
        return self.time_s / HOUR_S


def train_on_simulation(sim: FLSimResult, task: Task, model: ModelConfig, server: ServerOptimizer, seed: int,
                        round_config: RoundConfig, max_commits: int | None = None,
                        eval_every: int = 5) -> TrainingRun:
    """Replay `sim`'s rounds as training (see the module docstring), up to `max_commits` committed rounds;
    one vmapped call per round.

    Args:
        sim: the protocol run (`simulate_task`).
        task: the devices' data (`make_task`; device k of `sim` is row k).
        model: the model and local optimiser.
        server: the server optimizer.
        seed: the initial model.
        round_config: the round configuration `sim` ran (its `target` and `recycle_late`).
        max_commits: stop after this many committed rounds (None: replay every round).
        eval_every: federated evaluation every this many committed rounds (0: never).
    """
    validate.instance("server", server, ServerOptimizer)
    validate.instance("sim", sim, FLSimResult, "a protocol.FLSimResult")
    validate.instance("task", task, Task, "a training.Task")
    _check_configs(model=model, round_config=round_config)
    validate.seed("seed", seed)
    if max_commits is not None:
        validate.integer("max_commits", max_commits, 1)
    validate.integer("eval_every", eval_every, 0)
    version = np.cumsum(sim.counters.committed)
    rounds = len(version) if max_commits is None or version[-1] < max_commits else \
        int(np.searchsorted(version, max_commits)) + 1
    params = init_params(jax.random.key(seed), model)
    state = server_init(server, params)
    width = round_config.target  # every call trains `width` clients (padding weight 0): one compile
    recycle = round_config.recycle_late
    stash: dict[tuple[int, int], np.ndarray] = {}  # (round, device) -> flat delta of a late update
    acc, fed, central = np.zeros(rounds), np.full(rounds, np.nan), np.full(rounds, np.nan)
    done = 0
    for r in range(rounds):
        on_time = sim.aggregated.of(r)
        late = sim.late.of(r) if recycle else np.zeros(0, np.int64)
        committed = bool(sim.counters.committed[r])
        if committed and eval_every and done % eval_every == 0:  # the round's devices evaluate what they got
            fed[r] = federated_accuracy(params, task.local_eval.take(on_time))
            central[r] = float(accuracy(params, task.test_x, task.test_y))
        train_ids = np.concatenate([on_time, late])
        flat = np.zeros((0, 0))
        if len(train_ids):
            padded = np.concatenate([train_ids, np.zeros(max(0, width - len(train_ids)), np.int64)])
            deltas = client_deltas(params, task.train.take(padded), model, server.client_mu)
            flat = np.asarray(_flat_rows(deltas))[: len(train_ids)]
        for k, dev in enumerate(late.tolist()):
            stash[(r, dev)] = flat[len(on_time) + k]
        if committed:
            weights = task.train.num_examples[on_time].astype(np.float64)
            rows = [flat[: len(on_time)]]
            rec_ids, rec_round = sim.recycled_ids.of(r), sim.recycled_round.of(r)
            if len(rec_ids):
                rows.append(np.stack([stash.pop((int(rr), int(d))) for rr, d in zip(rec_round, rec_ids)]))
                weights = np.concatenate([weights, sim.recycled_weight.of(r)])
            stack = np.concatenate(rows)
            if weights.sum() > 0:
                unravel = ravel_pytree(params)[1]
                mean = unravel(jnp.asarray((weights @ stack) / weights.sum(), jnp.float32))
                params, state = server_update(server, state, params, mean)
            done += 1
        acc[r] = float(accuracy(params, task.test_x, task.test_y))
    c = sim.counters
    trained = Ragged(sim.aggregated.values[: sim.aggregated.offsets[rounds]], sim.aggregated.offsets[: rounds + 1])
    return TrainingRun(np.arange(rounds), c.end_s[:rounds].copy(), c.committed[:rounds].copy(), version[:rounds],
                       c.accepted[:rounds] * c.committed[:rounds], c.recycled[:rounds].copy(),
                       c.late[:rounds].copy(), acc, fed, central, c.wasted_compute_s[:rounds].copy(), trained,
                       params)


def federated_training(round_config: RoundConfig, model: ModelConfig, train: TrainConfig, seed: int,
                       server: ServerOptimizer = FedAvg(), steering: SteeringConfig = SteeringConfig(),
                       population: PopulationConfig | None = None,
                       executor: Callable[..., RoundResult] | None = None) -> TrainingRun:
    """Train on the system: simulate the task's rounds, then replay them as FedAvg-family training.

    Args:
        round_config: the round configuration.
        model: the model and local optimiser.
        train: the task (devices, data, hours, rounds, evaluation period).
        seed: draws the task and the population, drives the simulation, initialises the model.
        server: the server optimizer.
        steering: pace steering.
        population: the population's other parameters (None: the defaults).
        executor: reporting's executor (None: the protocol alone).
    """
    validate.seed("seed", seed)
    _check_configs(round_config=round_config, model=model, train=train, steering=steering)
    validate.instance("server", server, ServerOptimizer)
    task = make_task(train, model, seed)
    sim = simulate_task(round_config, steering, train, model, seed, population, executor)
    return train_on_simulation(sim, task, model, server, seed, round_config, train.rounds, train.eval_every)


def rounds_to_accuracy(run: TrainingRun, target: float) -> float:
    """How many committed rounds it took central accuracy to reach `target` (inf: never)."""
    validate.instance("run", run, TrainingRun, "a training.TrainingRun")
    validate.number("target", target)
    hit = np.flatnonzero(run.accuracy >= target)
    return float(run.version[hit[0]]) if len(hit) else np.inf


def centralised_accuracy(model: ModelConfig, train: TrainConfig, steps: int, seed: int) -> float:
    """Baseline: the same model trained centrally for `steps` mini-batch SGD steps on the same train split.

    Args:
        model: the model, its learning rate and batch size.
        train: the task (its `test_fraction` sets the split).
        steps: mini-batch SGD steps.
        seed: the split, the initial model and the batches.

    Returns:
        central held-out accuracy.
    """
    _check_configs(model=model, train=train)
    validate.integer("steps", steps, 0)
    validate.seed("seed", seed)
    _, x, y, tr, test = _split(seed, train.test_fraction)
    params = init_params(jax.random.key(seed), model)
    step = jax.jit(sgd_step, static_argnames="model")
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        batch = rng.choice(tr, size=model.batch_size, replace=False)
        params = step(params, x[batch], y[batch], model)
    return float(accuracy(params, x[test], y[test]))
