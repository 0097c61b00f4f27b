"""The measurement behind each claim of `mlsys_core.claims.fl`, as a function of its declared assumptions.

One small function per claim, named after it: its keyword arguments are the claim's parameters (defaults: the
parameters' defaults, which are the notebooks' setting), and it returns exactly what notebook 03 or 03b passes to
`report.check` — one value per seed for a seeded claim, else one number. The report calls each with one
assumption moved at a time. The logic lives in `experiments`, `privacy`, `inversion`, `dp` and `secagg_cost`;
these functions only fix the setting. The simulated days and the server-optimizer study are cached (a few
entries), so two claims read off the same run at the same assumptions pay for it once.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from mlsys_core import validate
from mlsys_core.fl import experiments, fedavg, plans, population, training
from mlsys_core.fl.experiments import DayMetrics, RecyclingGain, ServerStudy, SteeringGain
from mlsys_core.fl.faults import Topology
from mlsys_core.fl.fedavg import ModelConfig
from mlsys_core.fl.population import HOUR_S, PopulationConfig
from mlsys_core.fl.rounds import RoundConfig
from mlsys_core.fl.steering import SteeringConfig
from mlsys_core.fl.training import TrainConfig
from mlsys_core.seeds import DEFAULT_SEEDS

# the notebooks' settings, shared by a claim's measure and the cells that show more of the same run
TRAINING_ROUNDS = RoundConfig(goal_count=20, reporting_window_s=60.0, checkpoint_bytes=10_000, update_bytes=10_000)
TRAINING_STEERING = SteeringConfig(cooldown_s=1800.0)  # a small population: devices rest 30 min, not 4 h
FAULT_ROUNDS = RoundConfig(goal_count=100, min_reports=80)
DROP_OUT_HALF_RANGE = 0.02  # a population's drop-out probabilities are uniform in drop_out +- this


def keyboard_plans() -> dict[int, plans.FLPlan]:
    """The versioned FL plans of notebook 03's keyboard task (runtime 1 gets none)."""
    return plans.generate_versioned_plans("keyboard", version=1, device=plans.DevicePlan(), server=plans.ServerPlan())


def population_config(
    num_devices: int, main_zone_share: float = 0.2, window_length_h: float = 7.0, drop_out: float = 0.08
) -> PopulationConfig:
    """A population of `num_devices` with the three assumptions the population claims share: how concentrated
    it is in time (`population.time_zone_mix`), how long a device's nightly window lasts (h), and the centre of
    its drop-out range (+- `DROP_OUT_HALF_RANGE`). The defaults give `PopulationConfig`'s own devices."""
    validate.number("drop_out", drop_out, DROP_OUT_HALF_RANGE, 1.0 - DROP_OUT_HALF_RANGE, high_open=True)
    return PopulationConfig(
        num_devices=num_devices,
        time_zones=population.time_zone_mix(main_zone_share),
        window_length_h=float(window_length_h),
        drop_out_range=(round(drop_out - DROP_OUT_HALF_RANGE, 9), round(drop_out + DROP_OUT_HALF_RANGE, 9)),
    )


# -- notebook 03: the population, the protocol, the actors -------------------------------------------------------


@validate.numeric_arguments
def over_selection(drop_out: float = 0.10, goal_count: float = 100, reporting_window_s: float = 240.0) -> np.ndarray:
    """fl.over_selection: share of 200 independent rounds per seed that commit at 1.3x over-selection when
    every device drops out with probability `drop_out` (50 k devices, every report of the goal needed)."""
    config = RoundConfig(
        goal_count=validate.whole("goal_count", goal_count), reporting_window_s=float(reporting_window_s)
    )
    return experiments.over_selection_over_seeds(
        PopulationConfig(num_devices=50_000), config, factor=1.3, drop_out=drop_out, rounds=200, seeds=DEFAULT_SEEDS
    )


@functools.lru_cache(maxsize=8)
def simulated_days(main_zone_share: float = 0.2, window_length_h: float = 7.0, drop_out: float = 0.08) -> DayMetrics:
    """One simulated day per seed of 200 k devices, rounds of goal 500 under auto pace steering with the
    keyboard's versioned plans (`experiments.day_over_seeds`); cached, since two claims read it."""
    return experiments.day_over_seeds(
        population_config(200_000, main_zone_share, window_length_h, drop_out),
        RoundConfig(goal_count=500),
        seeds=DEFAULT_SEEDS,
        plans=keyboard_plans(),
    )


@validate.numeric_arguments
def session_outcomes(main_zone_share: float = 0.2, window_length_h: float = 7.0, drop_out: float = 0.08) -> np.ndarray:
    """fl.session_outcomes: per seed, the largest gap between our accepted / late / interrupted shares of
    selected devices and the reported 75% / 22% / 2%."""
    return simulated_days(main_zone_share, window_length_h, drop_out).outcome_gap


@validate.numeric_arguments
def diurnal_swing(main_zone_share: float = 0.2, window_length_h: float = 7.0) -> np.ndarray:
    """fl.diurnal_swing: per seed, accepted updates per hour over the simulated day, peak / trough."""
    return simulated_days(main_zone_share, window_length_h, 0.08).participation_swing


def steering_gain(retry_s: float = 60.0, main_zone_share: float = 0.2) -> SteeringGain:
    """What auto pace steering buys over none, per seed (`experiments.steering_over_seeds`): 100 k devices,
    goal 250, one simulated day; without steering a rejected device retries after about `retry_s`."""
    return experiments.steering_over_seeds(
        population_config(100_000, main_zone_share),
        RoundConfig(goal_count=250),
        hours=24,
        seeds=DEFAULT_SEEDS,
        steering=SteeringConfig(retry_s=float(retry_s)),
    )


@validate.numeric_arguments
def pace_steering(retry_s: float = 60.0, main_zone_share: float = 0.2) -> np.ndarray:
    """fl.pace_steering: per seed, check-ins per committed round without steering over those with auto steering
    (`steering_gain`)."""
    return steering_gain(retry_s, main_zone_share).load_per_round_cut


@validate.numeric_arguments
def fault_semantics(crash_at_h: float = 3.0) -> np.ndarray:
    """fl.fault_semantics: per seed, the share of the paper's nine failure behaviours that hold in the actor
    log, one crash per run `crash_at_h` hours (+ 30 s, inside a round) into 4 h of 50 k devices."""
    return experiments.fault_semantics_over_seeds(
        PopulationConfig(num_devices=50_000),
        FAULT_ROUNDS,
        Topology(),
        crash_at_h * HOUR_S + 30.0,
        hours=4,
        seeds=DEFAULT_SEEDS,
    )


@validate.numeric_arguments
def two_actors(hop_latency_s: float = 0.05) -> float:
    """fl.two_actors: hops per report with four actors minus with two, read from the actor log (50 k devices of
    seed 1, goal 100, 5 simulated hours)."""
    pop = population.make_population(PopulationConfig(num_devices=50_000), seed=1)
    topo = experiments.topology_comparison(
        pop, FAULT_ROUNDS, 3 * HOUR_S + 30.0, hours=5, seed=0, hop_latency_s=hop_latency_s
    )
    return float(topo["four actors"].hops_per_report - topo["two actors"].hops_per_report)


# -- notebook 03: training on the system -------------------------------------------------------------------------


def _digits_task(alpha: float = 0.5) -> tuple[ModelConfig, TrainConfig]:
    """The digits task of notebook 03's training cells: its local model and its 1,000 devices."""
    return (
        ModelConfig(batch_size=8, epochs=3),
        TrainConfig(num_devices=1000, alpha=float(alpha), hours=4.0, rounds=40, eval_every=5),
    )


@validate.numeric_arguments
def fedavg_digits() -> float:
    """fl.fedavg_digits: central test accuracy after 40 committed rounds of FedAvg on the rounds the protocol
    simulated (1,000 devices with Dir(0.5) digit mixes, goal 20, seed 0)."""
    model, task = _digits_task()
    return float(
        training.federated_training(TRAINING_ROUNDS, model, task, seed=0, steering=TRAINING_STEERING).accuracy[-1]
    )


@validate.numeric_arguments
def fedsgd_equals_sgd(num_clients: float = 100) -> float:
    """fl.fedsgd_equals_sgd: max |FedAvg - centralised SGD| over the parameters after one round in which every
    client (Dir(0.5) split of the digits) takes one full-batch step, weighted by example counts."""
    import jax

    from mlsys_core.data import load_digits

    x, y = load_digits()
    parts = fedavg.dirichlet_split(y, validate.whole("num_clients", num_clients), alpha=0.5, seed=0)
    model = ModelConfig(batch_size=8, epochs=3)
    counts = fedavg.pad_clients(x, y, parts, model.batch_size)
    one_step = dataclasses.replace(model, batch_size=counts.x.shape[1], epochs=1)
    params = fedavg.init_params(jax.random.key(0), model)
    fed = fedavg.vmap_round(params, fedavg.pad_clients(x, y, parts, one_step.batch_size), counts.num_examples, one_step)
    cen = fedavg.sgd_step(params, x, y, one_step)
    return max(float(np.abs(np.asarray(fed[k]) - np.asarray(cen[k])).max()) for k in fed)


@functools.lru_cache(maxsize=8)
def server_study(alpha: float = 0.1, server_learning_rate: float = 0.03) -> ServerStudy:
    """FedAvg and FedAdam (server lr `server_learning_rate`) on the same simulated rounds per seed: 1,000
    devices with Dir(`alpha`) digit mixes, goal 20, a 120 s window, 2 local epochs; counted to 80% accuracy.
    FedAvg's runs (and so federated evaluation) do not depend on which other optimizers run beside it."""
    _, task = _digits_task(alpha)
    optimizers = {"FedAvg": fedavg.FedAvg(), "FedAdam": fedavg.FedAdam(learning_rate=float(server_learning_rate))}
    return experiments.server_optimizer_study(
        optimizers,
        dataclasses.replace(TRAINING_ROUNDS, reporting_window_s=120.0),
        TRAINING_STEERING,
        task,
        ModelConfig(epochs=2),
        target=0.8,
        seeds=DEFAULT_SEEDS,
    )


@validate.numeric_arguments
def adaptive_server_fewer_rounds(server_learning_rate: float = 0.03, alpha: float = 0.1) -> np.ndarray:
    """fl.adaptive_server_fewer_rounds: per seed, committed rounds FedAvg needs to reach 80% / rounds FedAdam
    needs."""
    return server_study(alpha, server_learning_rate).speedup("FedAdam")


@validate.numeric_arguments
def federated_eval_tracks_central(alpha: float = 0.1) -> np.ndarray:
    """fl.federated_eval_tracks_central: per seed, mean |federated - central| accuracy over FedAvg's
    evaluation rounds (every 5th committed round, the round's devices on their own 8 held-out digits)."""
    return server_study(alpha, 0.03).eval_gap


def recycling(reporting_window_s: float = 60.0) -> RecyclingGain:
    """Recycling late updates against discarding them on the same sessions, per seed
    (`experiments.recycling_over_seeds` on notebook 03's digits task, reporting window `reporting_window_s`)."""
    model, task = _digits_task()
    config = dataclasses.replace(TRAINING_ROUNDS, reporting_window_s=float(reporting_window_s))
    return experiments.recycling_over_seeds(config, model, task, seeds=DEFAULT_SEEDS, steering=TRAINING_STEERING)


@validate.numeric_arguments
def recycle_late(reporting_window_s: float = 60.0) -> np.ndarray:
    """fl.recycle_late: per seed, final accuracy recycling late updates minus discarding them (`recycling`)."""
    return recycling(reporting_window_s).accuracy_gain


# -- notebook 03b: privacy ---------------------------------------------------------------------------------------


@validate.numeric_arguments
def secagg_expansion(dim: float = 2**20) -> float:
    """fl.secagg_expansion: bytes one device sends in all rounds of Secure Aggregation over the bytes of its
    16-bit input in the clear, 2^10 devices, `dim` entries."""
    from mlsys_core.fl import secagg_cost

    return secagg_cost.expansion(2**10, validate.whole("dim", dim), 16)


@validate.numeric_arguments
def telemetry_leak(jitter_h: float = 1.0, window_length_h: float = 7.0, main_zone_share: float = 0.2) -> np.ndarray:
    """fl.telemetry_leak: per seed, the share of 300 traced users whose bedtime the largest-gap attack on their
    check-ins gets within 1 h (20 k devices, goal 100, one day; mean check-in delay `jitter_h`)."""
    from mlsys_core.fl import privacy

    pop = dataclasses.replace(
        population_config(20_000, main_zone_share, window_length_h), checkin_jitter_h=float(jitter_h)
    )
    return privacy.telemetry_attack_sweep(
        pop, RoundConfig(goal_count=100), (float(jitter_h),), seeds=DEFAULT_SEEDS
    ).per_device[0]


@validate.numeric_arguments
def dp_accountant_abadi(max_order: float = 256) -> float:
    """fl.dp_accountant_abadi: epsilon of q = 0.01, sigma = 4, 10,000 steps at delta = 1e-5 with the 2016
    moments accountant's tail bound over integer Renyi orders up to `max_order`."""
    from mlsys_core.fl import dp

    return dp.moments_accountant_epsilon(0.01, 4.0, 10_000, 1e-5, max_order=max_order)


@validate.numeric_arguments
def dp_fedavg_utility(noise_multiplier: float = 1.0, clip_norm: float = 0.5) -> np.ndarray:
    """fl.dp_fedavg_utility: per seed, test accuracy without privacy minus with DP-FedAvg at `noise_multiplier`
    and `clip_norm` (500 clients, q = 0.2, 30 rounds)."""
    from mlsys_core.fl import privacy

    dps = privacy.dp_fedavg_sweep((float(noise_multiplier),), seeds=DEFAULT_SEEDS, clip_norm=float(clip_norm))
    return dps.non_private - dps.accuracy[0]


@validate.numeric_arguments
def gradient_inversion_leak(steps: float = 200) -> np.ndarray:
    """fl.gradient_inversion_leak: per seed, PSNR (dB) of the digit reconstructed from one update in the clear
    with `steps` Adam steps."""
    from mlsys_core.fl import inversion

    return inversion.attack_psnr("clear", DEFAULT_SEEDS, steps=validate.whole("steps", steps))


@validate.numeric_arguments
def secagg_hides_update(group: float = 16) -> np.ndarray:
    """fl.secagg_hides_update: per seed, PSNR (dB) of the same attack on the sum of `group` updates minus that
    of the mean training digit."""
    from mlsys_core.fl import inversion

    group = validate.whole("group", group)
    return inversion.attack_psnr("secagg", DEFAULT_SEEDS, group=group) - inversion.mean_digit_psnr(
        DEFAULT_SEEDS, group=group
    )
