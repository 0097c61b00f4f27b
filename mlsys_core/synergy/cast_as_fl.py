"""Synergy 2: data-centre training cast as FL, "dispatching data onto edge devices, with only one extra round
of communication".

The digits' training split is dealt out to devices (`dispatch`: IID or Dirichlet), each device trains on
its own shard (`round_batches`) in FedAvg rounds (`federated_rounds`), with everyone or with the devices
that FL's round protocol commits (`protocol_participants`), against synchronous data parallelism on the
mesh over the same examples (`data_parallel_rounds`). `cast_as_fl` counts the rounds each configuration
needs; `dispatch_cost` sets the dispatch round's bytes and time beside a training round's.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import backend, validate
from mlsys_core.data import digits_split
from mlsys_core.fl import fedavg
from mlsys_core.fl.population import PopulationConfig, make_population
from mlsys_core.seeds import DEFAULT_SEEDS
from mlsys_core.sharding import cost_model

SPLITS = ("iid", "dirichlet")  # how `dispatch` deals the digits out


def dispatch(split: str = "iid", devices: int = backend.MESH_DEVICES, alpha: float = 0.5,
             seed: int = 0) -> tuple[list[np.ndarray], tuple]:
    """Deal the digits' training split (`data.digits_split(seed)`) out to `devices`.

    "iid": a seeded permutation cut into equal shards (the remainder, fewer than `devices` examples,
    stays home); "dirichlet": each class shared by Dir(alpha) weights (`fl.fedavg.dirichlet_split`;
    some devices may get nothing). Returns (shards of indices into x, (x, y, x_test, y_test)).

    Args:
        split: one of `SPLITS`.
        devices: devices to deal to (>= 1).
        alpha: Dirichlet concentration (> 0; smaller: fewer classes per device); "dirichlet" only.
        seed: draws the train/test split and the dealing.
    """
    validate.choice("split", split, SPLITS)
    devices = validate.integer("devices", devices, 1)
    seed = validate.seed("seed", seed)
    x, y, xt, yt = digits_split(seed)
    if split == "iid":
        per = len(x) // devices
        shards = np.random.default_rng(seed).permutation(len(x))[: per * devices].reshape(devices, per)
    else:
        shards = fedavg.dirichlet_split(y, devices, validate.positive("alpha", alpha), seed)
    return [np.asarray(s, np.int64) for s in shards], (x, y, xt, yt)


def round_batches(shards, rounds: int, local_steps: int = 1, batch: int = 16, seed: int = 0) -> np.ndarray:
    """(rounds, devices, local_steps * batch) example indices: what each device trains on in each round,
    cycling through its own shard in a seeded order reshuffled every pass (-1 for a device with no data).

    With IID shards and one local step, round r's rows put together are data-parallel step r's
    global batch: the same examples, split over the same devices.

    Args:
        shards: each device's example indices (`dispatch`'s first result).
        rounds: rounds to lay out (>= 1).
        local_steps: local SGD steps per device and round (>= 1).
        batch: examples per local step (>= 1).
        seed: draws each device's order.
    """
    rounds = validate.integer("rounds", rounds, 1)
    per_round = validate.integer("local_steps", local_steps, 1) * validate.integer("batch", batch, 1)
    rng = np.random.default_rng(validate.seed("seed", seed))
    out = np.full((rounds, len(shards), per_round), -1, np.int64)
    for k, shard in enumerate(shards):
        if len(shard) == 0:
            continue
        passes = -(-rounds * per_round // len(shard))
        order = np.concatenate([rng.permutation(shard) for _ in range(passes)])
        out[:, k] = order[: rounds * per_round].reshape(rounds, per_round)
    return out


def protocol_participants(devices: int = 100, goal_count: int = 10, rounds: int = 30, seed: int = 0,
                          model_bytes: int = 9640, drop_out: float = 0.08) -> list[np.ndarray]:
    """Device ids in each of the first `rounds` committed rounds of FL's round protocol (Paper 3).

    The population is notebook 03's, but always eligible (a data centre's own devices: charging,
    idle and unmetered around the clock, no cool-down between rounds), so what remains is the
    protocol's partial participation: over-selection, drop-outs and the reporting deadline.
    Uses `fl.protocol.round_participants`. Raises ValueError if the run commits fewer.

    Args:
        devices: the population's size (>= 1).
        goal_count: updates a round aims to aggregate (1 to devices).
        rounds: committed rounds wanted (>= 1); the protocol runs 300 s of simulated time per round, twice or
            four times that when too few rounds commit.
        seed: draws the population and the protocol's run.
        model_bytes: bytes of the checkpoint downloaded and of the update uploaded.
        drop_out: the devices' mean chance of dropping out of a session, in [0, 0.9]; each device draws its
            own within +-0.02 of it (0.08: the population's default 6-10%).
    """
    from mlsys_core.fl import protocol

    drop_out = validate.number("drop_out", drop_out, 0.0, 0.9)
    drop_range = (max(drop_out - 0.02, 0.0), drop_out + 0.02)
    devices = validate.integer("devices", devices, 1)
    goal_count = validate.integer("goal_count", goal_count, 1, devices)
    rounds = validate.integer("rounds", rounds, 1)
    pop = make_population(PopulationConfig(num_devices=devices, window_length_h=23.5, window_length_std_h=0.0,
                                           unmetered_fraction=1.0, drop_out_range=drop_range),
                          validate.seed("seed", seed))
    config = protocol.RoundConfig(goal_count=goal_count, checkpoint_bytes=model_bytes, update_bytes=model_bytes)
    for horizon in (1, 2, 4):  # rounds that fail (too many drop-outs) cost time: simulate longer if needed
        res = protocol.simulate(pop, config, protocol.SteeringConfig(cooldown_s=0.0), 300.0 * rounds * horizon,
                                seed)
        part = protocol.round_participants(res)
        ids = [part.ids_of(r) for r in np.flatnonzero(part.committed)]
        if len(ids) >= rounds:
            return ids[:rounds]
    raise ValueError(f"the protocol committed {len(ids)} rounds in {1200 * rounds} s, fewer than rounds={rounds}")


@dataclasses.dataclass(frozen=True)
class FLRun:
    """A training over rounds (federated, or data parallel on a mesh): its test accuracy and final parameters."""

    accuracy: np.ndarray  # (rounds + 1,) test accuracy, the first before training
    params: dict  # the digits MLP's final parameters


def federated_rounds(idx: np.ndarray, data: tuple, shard_sizes, participants=None, learning_rate: float = 0.1,
                     batch: int = 16, seed: int = 0) -> FLRun:
    """FedAvg rounds over dispatched data (Paper 3's `vmap_round`): in round r the participating devices
    (all with data, or `participants[r]`) each train on their rows of `idx[r]` and the server averages
    the deltas weighted by shard size. Returns test accuracy before training and after each round, and
    the final parameters.

    Args:
        idx: (rounds, devices, examples per round) indices into x (`round_batches`).
        data: (x, y, x_test, y_test) (`dispatch`'s second result).
        shard_sizes: (devices,) examples each device holds: FedAvg's weights.
        participants: per round, the ids of the devices that take part (None: every device with data).
        learning_rate: local SGD's step size (> 0).
        batch: examples per local step (>= 1).
        seed: draws the initial weights.
    """
    import jax

    x, y, xt, yt = data
    rounds, devices, per_round = idx.shape
    sizes = np.asarray(shard_sizes, np.float32)
    model = fedavg.ModelConfig(learning_rate=validate.positive("learning_rate", learning_rate),
                               batch_size=validate.integer("batch", batch, 1), epochs=1)
    params = fedavg.init_params(jax.random.key(validate.seed("seed", seed)), model)
    acc = [float(fedavg.accuracy(params, xt, yt))]
    has_data = (idx[0] >= 0).all(axis=1)
    for r in range(rounds):
        taking = has_data.copy()
        if participants is not None:
            taking &= np.isin(np.arange(devices), np.asarray(participants[r], np.int64))
        if taking.any():  # every device computes (one compiled shape); only those taking part weigh in
            rows = np.maximum(idx[r], 0)
            clients = fedavg.ClientData(x[rows], y[rows], np.ones(rows.shape, np.float32), sizes)
            params = fedavg.vmap_round(params, clients, sizes * taking, model)
        acc.append(float(fedavg.accuracy(params, xt, yt)))
    return FLRun(np.array(acc), params)


def data_parallel_rounds(idx: np.ndarray, data: tuple, learning_rate: float = 0.1, batch: int = 16,
                         seed: int = 0) -> FLRun:
    """Synchronous data parallelism (Paper 1, replicated SGD on a `devices`-wide mesh) over the same
    indices: step r's global batch is every device's first local batch of round r. Returns test
    accuracy before training and after each step, and the final parameters.

    Args:
        idx: (rounds, devices, examples per round) indices into x (`round_batches` of an IID dispatch).
        data: (x, y, x_test, y_test) (`dispatch`'s second result).
        learning_rate: SGD's step size (> 0).
        batch: examples per device and step (>= 1).
        seed: draws the initial weights.
    """
    import jax
    import optax

    from mlsys_core.sharding.strategies import Trainer, data_mesh

    x, y, xt, yt = data
    rounds, devices, _ = idx.shape
    batch = validate.integer("batch", batch, 1)
    if (idx[:, :, :batch] < 0).any():
        raise ValueError("data_parallel_rounds needs every device to hold data (an IID dispatch)")

    def loss(p, b):
        bx, by = b
        return fedavg.masked_loss(p, bx, by, jax.numpy.ones(by.shape[0]))

    params = fedavg.init_params(jax.random.key(validate.seed("seed", seed)), fedavg.ModelConfig())
    trainer = Trainer(loss, optax.sgd(validate.positive("learning_rate", learning_rate)), data_mesh(devices),
                      strategy="replicated")
    state = trainer.init(params)
    acc = [float(fedavg.accuracy(params, xt, yt))]
    for r in range(rounds):
        rows = idx[r, :, :batch].reshape(-1)
        state, _ = trainer.step(state, trainer.shard_batch((x[rows], y[rows])))
        acc.append(float(fedavg.accuracy(trainer.full_params(state), xt, yt)))
    return FLRun(np.array(acc), trainer.full_params(state))


def rounds_to_reach(accuracy, target: float) -> float:
    """First round (1-based, the 0th entry is before training) whose accuracy reaches `target`; inf if none."""
    hit = np.flatnonzero(np.asarray(accuracy)[1:] >= target)
    return float(hit[0] + 1) if len(hit) else float("inf")


@dataclasses.dataclass(frozen=True)
class CastAsFL:
    """Each FL configuration against the data-parallel reference (FL on IID shards of the mesh size, one
    local step, everyone: the same update as data parallelism, `fedsgd.data_parallel_vs_fedsgd`).

    `extra_rounds_cost` is the rounds a configuration needs to reach the reference's final accuracy,
    plus the dispatch round, over the reference's steps: 1 + 1/steps costs exactly the one extra round;
    a run that never gets there within the horizon counts as horizon + 1 rounds.
    """

    accuracy: dict  # configuration name -> (seeds, rounds + 1) test accuracy, the first before training
    reference: np.ndarray  # (seeds, rounds + 1) the reference's test accuracy
    extra_rounds_cost: dict  # configuration name -> (seeds,) rounds needed + 1, over the reference's steps


CAST_CONFIGS = {  # name -> how the digits are dealt (`SPLITS`) and who takes part ("full" or "protocol")
    "IID, everyone": dict(split="iid", participation="full"),
    "IID, protocol": dict(split="iid", participation="protocol"),
    "Dirichlet, everyone": dict(split="dirichlet", participation="full"),
    "Dirichlet, protocol": dict(split="dirichlet", participation="protocol"),
}


def cast_as_fl(configs=tuple(CAST_CONFIGS), devices: int = 100, goal_count: int = 10, rounds: int = 30,
               local_steps: int = 1, alpha: float = 0.5, seeds=DEFAULT_SEEDS, batch: int = 16,
               horizon: int = 3, drop_out: float = 0.08) -> CastAsFL:
    """Dispatch the digits to `devices` and train with FedAvg rounds in each configuration of
    `CAST_CONFIGS` (split x participation: everyone, or the protocol's committed devices with
    `goal_count`); up to `horizon` x `rounds` rounds to see whether they catch up with the reference
    after `rounds` steps.

    Args:
        configs: `CAST_CONFIGS` names to run.
        devices: devices the digits are dealt to (>= 1).
        goal_count: the protocol's updates per round (1 to devices).
        rounds: the reference's data-parallel steps (>= 1).
        local_steps: local SGD steps per device and round (>= 1).
        alpha: Dirichlet concentration of the "Dirichlet" splits (> 0).
        seeds: one run of every configuration per seed.
        batch: examples per local step (>= 1).
        horizon: the FL runs last horizon x rounds rounds (>= 1).
        drop_out: the protocol's devices' mean drop-out chance (`protocol_participants`).
    """
    seeds = validate.seeds("seeds", seeds)
    rounds = validate.integer("rounds", rounds, 1)
    long = rounds * validate.integer("horizon", horizon, 1)
    acc = {name: [] for name in configs}
    ref = []
    for s in seeds:
        shards, data = dispatch("iid", backend.MESH_DEVICES, seed=s)
        ref.append(federated_rounds(round_batches(shards, rounds, 1, batch, s), data, [len(p) for p in shards],
                                    batch=batch, seed=s).accuracy)
        part = None
        for name in configs:
            cfg = CAST_CONFIGS[validate.choice("configs", name, tuple(CAST_CONFIGS))]
            shards, data = dispatch(cfg["split"], devices, alpha, s)
            if cfg["participation"] == "protocol" and part is None:
                part = protocol_participants(devices, goal_count, long, s, drop_out=drop_out)
            idx = round_batches(shards, long, local_steps, batch, s)
            acc[name].append(federated_rounds(idx, data, [len(p) for p in shards],
                                              part if cfg["participation"] == "protocol" else None, batch=batch,
                                              seed=s).accuracy)
    ref = np.array(ref)
    acc = {k: np.array(v) for k, v in acc.items()}
    # a run that never reaches the reference within the horizon counts as needing one round more (a lower bound)
    need = {k: np.array([min(rounds_to_reach(a, r[-1]), long + 1) for a, r in zip(v, ref)]) for k, v in acc.items()}
    cost = {k: (v + 1) / rounds for k, v in need.items()}
    return CastAsFL(acc, ref, cost)


@dataclasses.dataclass(frozen=True)
class DispatchCost:
    """Per device count: bytes of a shard and of a round, seconds of each on a phone and on a pod."""

    devices: np.ndarray  # (counts,) devices the data is dealt to
    dispatch_bytes: np.ndarray  # (counts,) bytes of one device's shard
    round_bytes: np.ndarray  # (counts,) bytes of one round: the model down and the update up (float32)
    phone_dispatch_s: np.ndarray  # (counts,) s, the shard down the median phone's link
    phone_round_s: np.ndarray  # (counts,) s, one round's transfers on the median phone's links
    pod_dispatch_s: np.ndarray  # (counts,) s, the shard over one TPU-v3 link
    pod_round_s: np.ndarray  # (counts,) s, one step's all-reduce of the gradient on the pod

    @property
    def phone_ratio(self) -> np.ndarray:
        """Dispatch time over one round's transfer time, median phone (rounds)."""
        return self.phone_dispatch_s / self.phone_round_s

    @property
    def pod_ratio(self) -> np.ndarray:
        """Dispatch time over one step's all-reduce, TPU-v3 link."""
        return self.pod_dispatch_s / self.pod_round_s


def dispatch_cost(devices=(8, 40, 100, 400), model_params: int = 2410, examples: int = 1437,
                  bytes_per_example: float = 64 * 4 + 4, seed: int = 0) -> DispatchCost:
    """The dispatch round's bytes and time per device against one training round's, for phones (FL's
    population: the median device's links) and for a pod (Paper 1's cost model: TPU-v3 links).

    Phone: dispatch = shard bytes down; a round = model down + update up (float32). Pod: dispatch =
    shard bytes over one link; a round (step) = the all-reduce of the model's gradient. Defaults:
    the digits (1437 x 64 float32 pixels + a label) and the MLP of the FL package (2410 parameters).

    Args:
        devices: device counts the data is dealt to (each >= 1).
        model_params: the model's parameters (>= 1).
        examples: examples dispatched (>= 1).
        bytes_per_example: bytes of one example (> 0).
        seed: draws the phone population (10,000 devices).
    """
    pop = make_population(PopulationConfig(num_devices=10_000), validate.seed("seed", seed))
    down, up = float(np.median(pop.down_bytes_per_s)), float(np.median(pop.up_bytes_per_s))
    model_bytes = 4.0 * validate.integer("model_params", model_params, 1)
    total = validate.integer("examples", examples, 1) * validate.positive("bytes_per_example", bytes_per_example)
    n = np.array([validate.integer("devices", d, 1) for d in devices], float)
    shard = total / n
    phone_dispatch, phone_round = shard / down, model_bytes / down + model_bytes / up
    chip = cost_model.TPU_V3
    pod_dispatch = shard / chip.link_bytes_per_s
    pod_round = np.array([cost_model.allreduce_s(model_bytes, int(d), chip) for d in n])
    return DispatchCost(n, shard, np.full(n.shape, 2 * model_bytes), phone_dispatch, np.full(n.shape, phone_round),
                        pod_dispatch, pod_round)
