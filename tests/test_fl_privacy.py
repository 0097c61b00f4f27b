"""Paper 3's privacy experiments (`mlsys_core.fl.privacy`): the telemetry attack and DP-FedAvg, at toy sizes."""

import numpy as np

from mlsys_core.fl import privacy as P
from mlsys_core.fl.population import PopulationConfig, make_population
from mlsys_core.fl.protocol import RoundConfig, SteeringConfig, simulate

POP = make_population(PopulationConfig(num_devices=20_000), seed=6)
CFG = RoundConfig(goal_count=50, min_reports=40)


def test_schedule_leak_and_its_sweep_over_jitter():
    res = simulate(POP, CFG, SteeringConfig(), 24 * 3600.0, 0, traced_devices=300)
    ids, _, codes = res.log.arrays()
    victims = np.unique(ids)[:20]
    leak = P.schedule_leak(res, POP, victims)
    assert leak["error_h"].shape == (20,) and np.all(leak["error_h"] <= 12)
    assert np.median(leak["error_h"]) < 1.0  # the attack recovers the window (a random guess: ~6 h off)
    share, n = P.leak_share(res, POP)
    assert n > 0 and share > 0.9
    sweep = P.schedule_leak_sweep(PopulationConfig(num_devices=5000), RoundConfig(goal_count=30), (0.0, 3.0),
                                  seeds=(0, 1), traced_devices=500)
    assert [s.shape for s in sweep] == [(2,), (2,)]
    assert sweep[0].min() > 0.9 and sweep[1].max() < 0.6  # a delayed first check-in hides the bedtime


def test_dp_fedavg_sweep_shapes_epsilon_order_and_that_privacy_costs_accuracy():
    from mlsys_core.fl.fedavg import ModelConfig

    out = P.dp_fedavg_sweep((0.5, 8.0), seeds=(0,), num_clients=40, examples_per_client=10, rounds=3,
                            sampling_rate=0.5, model=ModelConfig(batch_size=10, epochs=1))
    assert out.accuracy.shape == (2, 1) and out.non_private.shape == (1,)
    assert out.epsilon[0] > out.epsilon[1] > 0  # more noise, less privacy spent
    assert out.accuracy[1, 0] <= out.non_private[0] + 0.05  # heavy noise does not help
