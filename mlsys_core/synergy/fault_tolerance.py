"""Synergy 5: FL's fault tolerance in a pod ("the fault tolerant system design ... lends well to TPUs").

Time is counted in step times of the healthy pod. A replica that fails during a step loses that
step's gradient. FL's answer (Paper 3) is to commit the round without the device: "quorum" commits
the survivors' average and restores the failed replica's WUS shard from its peer copy
(`recovery_steps`). The data-centre answer is to stop, restart and roll back to the last
checkpoint ("restart"). Both policies see the same failures: slot i, replica r fails when
draws[i, r] < failure_rate, so a higher rate fails a superset of the same replica-steps (quorum's
goodput then never rises with the rate, seed by seed; a restart's rollbacks shift which slots later
steps meet, so its goodput falls with the rate on average over seeds).

- Goodput: `quorum_commit` / `restart_from_checkpoint` (the policies, in `FAULT_POLICIES`), `fault_run`,
  `goodput_grid`; stragglers: `straggler_policy` (a reporting deadline or waiting for all),
  `straggler_goodput`.
- What the model learns: `masked_wus_training` trains the digits MLP with WUS (Paper 1) on exactly the
  steps and replicas a policy committed; `loss_vs_failure_rate` compares the policies' test loss.
- `explore_faults`: one point of notebook 05's explorer.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mlsys_core import backend, validate
from mlsys_core.data import digits_split, epoch_batches
from mlsys_core.fl import fedavg
from mlsys_core.seeds import DEFAULT_SEEDS

if TYPE_CHECKING:  # jax and the Trainer load lazily, on first training
    import jax

    from mlsys_core.sharding.strategies import Trainer

MAX_DRAWS = 10**8  # replica-steps a run may draw (budget_steps x replicas): 800 MB of float64


@dataclasses.dataclass(frozen=True)
class FaultConfig:
    """A pod of data-parallel replicas under failures, all times in healthy step times.

    A failure costs the restart policy the step it hit, `restart_steps` to restart, and the work since
    the last checkpoint; quorum commit pays `recovery_steps` per step with a failure.
    """

    replicas: int = 8  # data-parallel replicas (>= 1)
    failure_rate: float = 0.001  # chance that one replica fails during one step, in [0, 1)
    checkpoint_interval: int = 50  # committed steps between checkpoints (restart policy, >= 1)
    checkpoint_steps: float = 2.0  # step times one checkpoint costs (restart policy)
    restart_steps: float = 20.0  # step times a restart costs (restart policy)
    recovery_steps: float = 1.0  # step times quorum commit spends restoring a failed replica's shard
    budget_steps: float = 2000.0  # step times of wall clock a run lasts; budget_steps x replicas <= MAX_DRAWS

    def __post_init__(self) -> None:
        validate.integer("replicas", self.replicas, 1)
        validate.probability("failure_rate", self.failure_rate, open_high=True)
        validate.integer("checkpoint_interval", self.checkpoint_interval, 1)
        for name in ("checkpoint_steps", "restart_steps", "recovery_steps"):
            validate.number(name, getattr(self, name), 0.0)
        validate.number("budget_steps", self.budget_steps, 1.0)
        if math.ceil(self.budget_steps) * self.replicas > MAX_DRAWS:
            raise ValueError(f"budget_steps x replicas must be <= {MAX_DRAWS:.0e} (one draw per replica-step), "
                             f"got {self.budget_steps:g} x {self.replicas}")


@dataclasses.dataclass(frozen=True)
class FaultPolicyRun:
    """One fault policy's run under failures."""

    policy: str  # a `FAULT_POLICIES` name
    masks: np.ndarray  # (committed steps, replicas), 1 where a replica's gradient entered a committed step
    goodput: float  # those examples over what a pod without failures trains in the same wall clock
    failures: int  # replica-step failures seen


def fault_draws(config: FaultConfig, seed: int) -> np.ndarray:
    """(slots, replicas) uniform draws: the seeded failure events of one run (enough slots for the budget)."""
    validate.instance("config", config, FaultConfig)
    slots = int(np.ceil(config.budget_steps)) + 1
    return np.random.default_rng(validate.seed("seed", seed)).random((slots, config.replicas))


def _check_draws(config: FaultConfig, draws: npt.ArrayLike) -> np.ndarray:
    validate.instance("config", config, FaultConfig)
    draws = validate.reals("draws", draws, 0.0, 1.0, ndim=2)
    if draws.shape[1] != config.replicas:
        raise ValueError(f"draws must have one column per replica ({config.replicas}), got shape {draws.shape}")
    return draws


def quorum_commit(config: FaultConfig, draws: np.ndarray) -> FaultPolicyRun:
    """Commit every step with the replicas that survived it (FL drops a device the same way)."""
    draws = _check_draws(config, draws)
    alive = draws >= config.failure_rate
    hit = ~alive.all(axis=1)
    finish = np.cumsum(1.0 + config.recovery_steps * hit)
    done = finish <= config.budget_steps
    masks = alive[done & alive.any(axis=1)].astype(np.float32)
    goodput = float(masks.sum() / (config.budget_steps * config.replicas))
    return FaultPolicyRun("quorum", masks, goodput, int((~alive[done]).sum()))


def restart_from_checkpoint(config: FaultConfig, draws: np.ndarray) -> FaultPolicyRun:
    """Stop at a failure, restart, and redo the steps since the last checkpoint (a small state machine:
    one slot of the pod per iteration, far fewer than the vectorised simulators' events)."""
    draws = _check_draws(config, draws)
    any_fail = (draws < config.failure_rate).any(axis=1)
    t, committed, saved, failures = 0.0, 0, 0, 0
    for i in range(len(draws)):
        if any_fail[i]:  # type: ignore[index]  # any(axis=1) of a 2-D array is an array; the stubs allow a bool
            t += 1.0 + config.restart_steps
            if t > config.budget_steps:
                break
            committed, failures = saved, failures + int((draws[i] < config.failure_rate).sum())
            continue
        if t + 1.0 > config.budget_steps:
            break
        t, committed = t + 1.0, committed + 1
        if committed % config.checkpoint_interval == 0:
            t += config.checkpoint_steps
            saved = committed  # a checkpoint cut short by the budget still holds what it wrote before
    masks = np.ones((committed, config.replicas), np.float32)
    return FaultPolicyRun("restart", masks, committed / config.budget_steps, failures)


FAULT_POLICIES = {"quorum": quorum_commit, "restart": restart_from_checkpoint}  # name -> (config, draws) -> run


def fault_run(policy: str, config: FaultConfig, seed: int) -> FaultPolicyRun:
    """One seeded run of `policy` (a `FAULT_POLICIES` name: "quorum" or "restart")."""
    validate.choice("policy", policy, FAULT_POLICIES)
    validate.instance("config", config, FaultConfig)
    validate.seed("seed", seed)
    return FAULT_POLICIES[policy](config, fault_draws(config, seed))


@dataclasses.dataclass(frozen=True)
class FaultGoodput:
    """Goodput of each policy over failure rates x checkpoint intervals x seeds."""

    failure_rates: np.ndarray  # (rates,) chance per replica and step
    checkpoint_intervals: np.ndarray  # (intervals,) committed steps between the restart policy's checkpoints
    quorum: np.ndarray  # (rates, intervals, seeds) quorum commit's goodput
    restart: np.ndarray  # (rates, intervals, seeds) the restart policy's goodput

    def of(self, policy: str) -> np.ndarray:
        """(rates, intervals, seeds) goodput of `policy` (a `FAULT_POLICIES` name)."""
        return getattr(self, validate.choice("policy", policy, FAULT_POLICIES))

    @property
    def quorum_gain(self) -> np.ndarray:
        """(rates, intervals, seeds) quorum's goodput minus restart's, in fractions of a failure-free pod's
        training: a difference, which stays defined where restart's goodput falls to zero (a ratio would not)."""
        return self.quorum - self.restart


def goodput_grid(failure_rates: Sequence[float] | np.ndarray, checkpoint_intervals: Sequence[int] | np.ndarray = (50,),
                 seeds: Iterable[int] = DEFAULT_SEEDS, config: FaultConfig = FaultConfig()) -> FaultGoodput:
    """Goodput of both policies over failure rates x checkpoint intervals x seeds.

    Args:
        failure_rates: chances per replica and step (each in [0, 1)).
        checkpoint_intervals: committed steps between checkpoints (each >= 1).
        seeds: one set of failure draws per seed.
        config: the rest of the pod's setting.
    """
    seeds = validate.seeds("seeds", seeds)
    out = {}
    for policy in FAULT_POLICIES:
        out[policy] = np.array([[[fault_run(policy, dataclasses.replace(config, failure_rate=p,
                                                                        checkpoint_interval=k), s).goodput
                                  for s in seeds] for k in checkpoint_intervals] for p in failure_rates])
    return FaultGoodput(np.asarray(failure_rates, float), np.asarray(checkpoint_intervals), out["quorum"],
                        out["restart"])


def straggler_step_times(replicas: int = 8, straggler_p: float = 0.03, slow_factor: float = 4.0,
                         jitter: float = 0.1, steps: int = 2000, seed: int = 0) -> np.ndarray:
    """(steps, replicas) step times of each replica, in healthy step times: log-normal jitter, and
    with chance `straggler_p` a replica runs `slow_factor` times slower that step.

    Args:
        replicas: data-parallel replicas (>= 1).
        straggler_p: chance per replica and step of straggling, in [0, 1].
        slow_factor: x a straggler's step time (>= 1).
        jitter: log-normal sigma of every step time (>= 0).
        steps: steps drawn (>= 1).
        seed: draws the times.
    """
    rng = np.random.default_rng(validate.seed("seed", seed))
    validate.probability("straggler_p", straggler_p)
    validate.number("slow_factor", slow_factor, 1.0)
    validate.number("jitter", jitter, 0.0)
    shape = (validate.integer("steps", steps, 1), validate.integer("replicas", replicas, 1))
    times = np.exp(jitter * rng.standard_normal(shape))
    return times * np.where(rng.random(shape) < straggler_p, slow_factor, 1.0)


@dataclasses.dataclass(frozen=True)
class StragglerRun:
    """One straggler policy's run: the steps it finished within the budget."""

    policy: str  # "wait" or "deadline <d>"
    masks: np.ndarray  # (committed steps, replicas), 1 where a replica's gradient made its step
    goodput: float  # those examples over budget x replicas (a pod whose every replica ran at the healthy speed)
    mean_step: float  # healthy step times, the mean committed step


def straggler_policy(times: np.ndarray, deadline: float | None, budget: float | None = None) -> StragglerRun:
    """Wait for all (`deadline` None: the step lasts as long as its slowest replica) or commit at a
    reporting deadline with the replicas that made it (FL's reporting window; at least the fastest
    one, so a step always commits)."""
    times = np.asarray(times, float)
    budget = float(times.shape[0]) if budget is None else validate.positive("budget", budget)
    slowest = times.max(axis=1)
    if deadline is None:
        step, made = slowest, np.ones_like(times, bool)
    else:
        validate.positive("deadline", deadline)
        step = np.maximum(np.minimum(slowest, deadline), times.min(axis=1))
        made = times <= step[:, None]
    done = np.cumsum(step) <= budget
    masks = made[done].astype(np.float32)
    return StragglerRun("wait" if deadline is None else f"deadline {deadline:g}", masks,
                        float(masks.sum() / (budget * times.shape[1])), float(step.mean()))


@dataclasses.dataclass(frozen=True)
class StragglerGoodput:
    """Goodput of waiting for all and of the deadline, per straggler chance and seed."""

    straggler_p: np.ndarray  # (chances,) chance per replica and step of straggling
    wait: np.ndarray  # (chances, seeds) goodput waiting for every replica
    deadline: np.ndarray  # (chances, seeds) goodput committing at the reporting deadline


def straggler_goodput(straggler_ps: Sequence[float] | np.ndarray = (0.01, 0.03, 0.1, 0.3), deadline: float = 1.5,
                      seeds: Iterable[int] = DEFAULT_SEEDS, **times_kwargs: Any) -> StragglerGoodput:
    """Goodput of waiting for all and of a reporting deadline at each straggler chance, per seed.

    Args:
        straggler_ps: chances per replica and step of straggling (each in [0, 1]).
        deadline: healthy step times, the reporting deadline (> 0).
        seeds: one draw of step times per seed.
        **times_kwargs: the rest of `straggler_step_times`'s arguments (replicas, slow_factor, jitter, steps).
    """
    seeds = validate.seeds("seeds", seeds)
    wait, cut = [], []
    for q in straggler_ps:
        runs = [straggler_step_times(straggler_p=q, seed=s, **times_kwargs) for s in seeds]
        wait.append([straggler_policy(t, None).goodput for t in runs])
        cut.append([straggler_policy(t, deadline).goodput for t in runs])
    return StragglerGoodput(np.asarray(straggler_ps, float), np.array(wait), np.array(cut))


def _example_losses(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    import optax

    return optax.softmax_cross_entropy_with_integer_labels(fedavg.logits_fn(params, x), y)


def _weighted_loss(params: dict, batch: tuple) -> jax.Array:
    """Mean of per-example weight x cross-entropy on this device's (x, y, weight) batch."""
    x, y, w = batch
    return (w * _example_losses(params, x, y)).mean()


def _plain_loss(params: dict, batch: tuple) -> jax.Array:
    x, y = batch
    return _example_losses(params, x, y).mean()


def replica_weights(mask: npt.ArrayLike, per_replica_batch: int) -> np.ndarray:
    """Per-example weights of one step: R / (replicas alive) for a surviving replica's examples, 0
    for a failed one's. Each device's mean loss times these, averaged over the R devices (the
    strategy's pmean), is the mean over the survivors: the quorum's gradient."""
    mask = np.asarray(mask, np.float32)
    alive = mask.sum()
    scale = np.where(mask > 0, len(mask) / max(alive, 1.0), 0.0).astype(np.float32)
    return np.repeat(scale, validate.integer("per_replica_batch", per_replica_batch, 1))


@dataclasses.dataclass(frozen=True)
class MaskedTraining:
    """A WUS training that committed given steps and replicas."""

    test_loss: np.ndarray  # (evaluations,) after each evaluated step, the first before training
    test_accuracy: np.ndarray  # (evaluations,) likewise
    params: dict  # the digits MLP's final parameters


@functools.lru_cache(maxsize=8)
def _wus_trainer(replicas: int, learning_rate: float, weighted: bool) -> Trainer:
    """One WUS Trainer (Adam) per mesh size and loss, so seeds and policies share its compiled step."""
    import optax

    from mlsys_core.sharding.strategies import Trainer, data_mesh

    return Trainer(_weighted_loss if weighted else _plain_loss, optax.adam(learning_rate), data_mesh(replicas),
                   strategy="wus")


def masked_wus_training(masks: npt.ArrayLike, per_replica_batch: int = 8, learning_rate: float = 0.01, seed: int = 0,
                        eval_every: int = 1) -> MaskedTraining:
    """WUS training (Paper 1) of the digits MLP with Adam on a `len(masks[0])`-device mesh, step i on
    batch i with replica r's examples weighted by `replica_weights(masks[i])` (0: skipped).

    All-ones masks are plain WUS training; the batches come from the same seeded order whatever the
    masks, so a restart (which replays batches) and a quorum run differ only in what they commit.
    The test loss and accuracy are taken every `eval_every` steps and after the last.

    Args:
        masks: (steps, replicas) what each step committed (a `FaultPolicyRun`'s masks).
        per_replica_batch: examples per replica and step (>= 1).
        learning_rate: Adam's step size (> 0).
        seed: draws the train/test split, the batches and the initial weights.
        eval_every: steps between evaluations (>= 1).
    """
    import jax

    masks = np.asarray(masks, np.float32)
    if masks.ndim != 2 or masks.shape[1] < 1:
        raise ValueError(f"masks must be (steps, replicas), got shape {masks.shape}")
    per_replica_batch = validate.integer("per_replica_batch", per_replica_batch, 1)
    eval_every = validate.integer("eval_every", eval_every, 1)
    seed = validate.seed("seed", seed)
    replicas = masks.shape[1]
    x, y, xt, yt = digits_split(seed)
    params = fedavg.init_params(jax.random.key(seed), fedavg.ModelConfig())
    trainer = _wus_trainer(replicas, validate.positive("learning_rate", learning_rate), weighted=True)
    batches = epoch_batches(x, y, replicas * per_replica_batch, max(len(masks), 1), seed)
    state = trainer.init(params)

    def evaluate(p: dict) -> tuple[float, float]:
        return (float(_plain_loss(p, (xt, yt))), float(fedavg.accuracy(p, xt, yt)))

    curve = [evaluate(params)]
    for i, mask in enumerate(masks):
        if mask.sum() > 0:
            bx, by = batches[i]
            state, loss = trainer.step(state, trainer.shard_batch((bx, by, replica_weights(mask, per_replica_batch))))
            # one step in flight at a time (as `sharding.strategies.train`): queued collectives on a busy
            # host's simulated devices can starve a rendezvous
            jax.block_until_ready(loss)
        if (i + 1) % eval_every == 0 or i + 1 == len(masks):
            curve.append(evaluate(trainer.full_params(state)))
    final = trainer.full_params(state)
    loss, acc = np.array(curve).T
    return MaskedTraining(loss, acc, final)


def plain_wus_training(steps: int, replicas: int = backend.MESH_DEVICES, per_replica_batch: int = 8,
                       learning_rate: float = 0.01, seed: int = 0) -> dict:
    """The same run through `sharding.strategies.train` with the unweighted loss: the reference that
    quorum commit without failures must equal. Returns the final parameters.

    Args:
        steps: WUS steps (>= 1).
        replicas: mesh devices (>= 1).
        per_replica_batch: examples per replica and step (>= 1).
        learning_rate: Adam's step size (> 0).
        seed: draws the train/test split, the batches and the initial weights.
    """
    validate.seed("seed", seed)
    import jax

    from mlsys_core.sharding.strategies import train

    x, y, _, _ = digits_split(seed)
    params = fedavg.init_params(jax.random.key(seed), fedavg.ModelConfig())
    trainer = _wus_trainer(replicas, validate.positive("learning_rate", learning_rate), weighted=False)
    state, _ = train(trainer, params, epoch_batches(x, y, replicas * per_replica_batch, steps, seed))
    return trainer.full_params(state)


@dataclasses.dataclass(frozen=True)
class FaultLoss:
    """Final test loss of each policy per failure rate and seed."""

    failure_rates: np.ndarray  # (rates,) chance per replica and step
    quorum: np.ndarray  # (rates, seeds) quorum commit's final test loss
    restart: np.ndarray  # (rates, seeds) the restart policy's final test loss
    config: FaultConfig  # the pod's setting, at each failure rate

    def of(self, policy: str) -> np.ndarray:
        """(rates, seeds) final test loss of `policy` (a `FAULT_POLICIES` name)."""
        return getattr(self, validate.choice("policy", policy, FAULT_POLICIES))


def loss_vs_failure_rate(failure_rates: Sequence[float] | np.ndarray = (0.001, 0.003, 0.01, 0.03),
                         seeds: Iterable[int] = DEFAULT_SEEDS,
                         config: FaultConfig = FaultConfig(failure_rate=0.01, checkpoint_interval=10,
                                                           restart_steps=5.0, budget_steps=80.0),
                         per_replica_batch: int = 8) -> FaultLoss:
    """Final test loss of each policy after `config.budget_steps` of wall clock at each failure rate
    and seed. A restart trains the first n batches whatever its failures, so one plain run per seed,
    scored after every step, gives its loss at every rate.

    Args:
        failure_rates: chances per replica and step (each in [0, 1)).
        seeds: one set of failure draws and one training per seed.
        config: the rest of the pod's setting.
        per_replica_batch: examples per replica and step (>= 1).
    """
    seeds = validate.seeds("seeds", seeds)
    quorum, restart = [], []
    for s in seeds:
        runs = [fault_run("restart", dataclasses.replace(config, failure_rate=p), s) for p in failure_rates]
        longest = max(len(r.masks) for r in runs)
        plain = masked_wus_training(np.ones((max(longest, 1), config.replicas), np.float32), per_replica_batch,
                                    seed=s)
        restart.append([plain.test_loss[len(r.masks)] for r in runs])
        row = []
        for p in failure_rates:
            masks = fault_run("quorum", dataclasses.replace(config, failure_rate=p), s).masks
            row.append(masked_wus_training(masks, per_replica_batch, seed=s, eval_every=max(len(masks), 1))
                       .test_loss[-1])
        quorum.append(row)
    return FaultLoss(np.asarray(failure_rates, float), np.array(quorum).T, np.array(restart).T, config)


@dataclasses.dataclass(frozen=True)
class FaultPoint:
    """The failure explorer's view: each policy's goodput at one setting."""

    goodput: dict[str, np.ndarray]  # policy -> (seeds,)
    config: FaultConfig  # the setting


def explore_faults(failure_chance_log10: float = -3.0, checkpoint_interval: int = 50,
                   restart_steps: float = 20.0, seeds: Iterable[int] = DEFAULT_SEEDS) -> FaultPoint:
    """Goodput of quorum commit and of restarting from a checkpoint at one failure chance, checkpoint
    interval and restart time, per seed; the defaults are the explorer's opening setting.

    Args:
        failure_chance_log10: log10 of the chance per replica and step (< 0).
        checkpoint_interval: committed steps between the restart policy's checkpoints (>= 1).
        restart_steps: step times a restart costs (>= 0).
        seeds: one set of failure draws per seed.
    """
    log10 = validate.number("failure_chance_log10", failure_chance_log10, high=0.0, high_open=True)
    config = FaultConfig(failure_rate=10.0**log10, checkpoint_interval=checkpoint_interval, restart_steps=restart_steps)
    seeds = validate.seeds("seeds", seeds)
    return FaultPoint({p: np.array([fault_run(p, config, s).goodput for s in seeds]) for p in FAULT_POLICIES},
                      config)
