"""Notebook 03, sections 3 and 5 (server optimizers and federated evaluation; recycle late updates):
FedAvg-family training replayed on the protocol's simulated rounds, compared on the same rounds and data
per seed (`training.simulate_task`, `make_task`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.fl.fedavg import ModelConfig, ServerOptimizer
from mlsys_core.fl.rounds import RoundConfig
from mlsys_core.fl.steering import SteeringConfig
from mlsys_core.fl.training import (
    TrainConfig,
    TrainingRun,
    federated_training,
    make_task,
    rounds_to_accuracy,
    simulate_task,
    train_on_simulation,
)
from mlsys_core.seeds import DEFAULT_SEEDS


@dataclasses.dataclass(frozen=True)
class RecyclingGain:
    """Recycling late updates against discarding them, one value per seed."""

    accuracy_gain: np.ndarray  # final accuracy, recycle - discard
    wasted_compute_min: np.ndarray  # device compute (minutes) that discarding throws away


def recycling_over_seeds(round_config: RoundConfig, model: ModelConfig, task: TrainConfig, seeds=DEFAULT_SEEDS,
                         steering: SteeringConfig = SteeringConfig()) -> RecyclingGain:
    """Discard vs recycle late updates on the same seeds (same simulated sessions): final-accuracy gain of
    recycling and the device compute (minutes) that discarding throws away, one value per seed.

    Args:
        round_config: the round configuration (its `recycle_late` is set each way).
        model: the model and local optimiser.
        task: the federated task (devices, data, hours, rounds).
        seeds: one task and simulation each.
        steering: pace steering.
    """
    gain, wasted = [], []
    for s in validate.seeds("seeds", seeds):
        discard = federated_training(round_config, model, task, seed=s, steering=steering)
        recycle = federated_training(dataclasses.replace(round_config, recycle_late=True), model, task, seed=s,
                                     steering=steering)
        gain.append(float(recycle.accuracy[-1] - discard.accuracy[-1]))
        wasted.append(float(discard.wasted_compute_s.sum() / 60))
    return RecyclingGain(np.array(gain), np.array(wasted))


@dataclasses.dataclass(frozen=True)
class ServerStudy:
    """Server optimizers on the same simulated rounds, per seed."""

    names: tuple[str, ...]  # the optimizers, in the order of the rows below
    target: float  # the central test accuracy the rounds are counted to
    rounds_to_target: np.ndarray  # (optimizers, seeds) committed rounds until it was first reached (inf: never)
    final_accuracy: np.ndarray  # (optimizers, seeds) central test accuracy at the end
    first_seed: dict[str, TrainingRun]  # each optimizer's run on the first seed
    eval_gap: np.ndarray  # (seeds,) mean |federated - central| accuracy over FedAvg's evaluation rounds
    eval_rounds: np.ndarray  # (seeds,) federated evaluation rounds per run

    def speedup(self, name: str, over: str = "FedAvg") -> np.ndarray:
        """Per seed: rounds `over` needs to reach the target / rounds `name` needs (> 1: `name` is faster)."""
        return self.rounds_to_target[self.names.index(over)] / self.rounds_to_target[self.names.index(name)]


def server_optimizer_study(optimizers: dict[str, ServerOptimizer], round_config: RoundConfig,
                           steering: SteeringConfig, task: TrainConfig, model: ModelConfig, target: float,
                           seeds=DEFAULT_SEEDS) -> ServerStudy:
    """Each server optimizer trained on the same protocol simulation and data per seed; FedAvg's runs also
    give the gap between federated and central evaluation.

    Args:
        optimizers: name -> `fedavg.ServerOptimizer`; "FedAvg" among them (the reference).
        round_config: the round configuration.
        steering: pace steering.
        task: the federated task (devices, data, hours, rounds, evaluation period).
        model: the model and local optimiser.
        target: the central test accuracy (a fraction) rounds are counted to.
        seeds: one task and simulation each.
    """
    seeds = validate.seeds("seeds", seeds)
    names = tuple(optimizers)
    reference = names.index(validate.choice("a reference optimizer", "FedAvg", names))
    rounds, final = np.zeros((len(names), len(seeds))), np.zeros((len(names), len(seeds)))
    gap, n_eval, first = [], [], {}
    for j, s in enumerate(seeds):
        data = make_task(task, model, s)
        sim = simulate_task(round_config, steering, task, model, s)
        for i, name in enumerate(names):
            run = train_on_simulation(sim, data, model, optimizers[name], s, round_config, task.rounds, task.eval_every)
            rounds[i, j], final[i, j] = rounds_to_accuracy(run, target), run.accuracy[-1]
            if j == 0:
                first[name] = run
            if i == reference:
                ev = np.isfinite(run.federated_accuracy)
                gap.append(float(np.mean(np.abs(run.federated_accuracy[ev] - run.central_at_eval[ev]))))
                n_eval.append(int(ev.sum()))
    return ServerStudy(names, float(target), rounds, final, first, np.array(gap), np.array(n_eval))
