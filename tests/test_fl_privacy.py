"""Paper 3's privacy experiments (`mlsys_core.fl.privacy`): the telemetry attack and DP-FedAvg, at toy sizes."""

import numpy as np
import pytest

from mlsys_core.fl import privacy as P
from mlsys_core.fl.population import PopulationConfig, make_population
from mlsys_core.fl.protocol import simulate
from mlsys_core.fl.rounds import RoundConfig
from mlsys_core.fl.steering import SteeringConfig

POP = make_population(PopulationConfig(num_devices=20_000), seed=6)
CFG = RoundConfig(goal_count=50, min_reports=40)


def test_schedule_leak_and_its_sweep_over_jitter():
    res = simulate(POP, CFG, SteeringConfig(), 24 * 3600.0, 0, traced_devices=300)
    ids, _, codes = res.log.arrays()
    victims = np.unique(ids)[:20]
    leak = P.schedule_leak(res, POP, victims)
    assert leak.error_h.shape == (20,) and np.all(leak.error_h <= 12)
    assert np.median(leak.error_h) < 1.0  # the attack recovers the window (a random guess: ~6 h off)
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


def test_private_dashboard_caps_each_device_adds_noise_and_suppresses_small_cohorts():
    from mlsys_core.fl import telemetry

    res = simulate(POP, CFG, SteeringConfig(), 24 * 3600.0, 0, traced_devices=500)
    exact = P.private_dashboard(res.log, 3600.0, 24 * 3600.0, k_min=1, max_bins=24)
    assert np.array_equal(exact, telemetry.aggregate_only(res.log, 3600.0, 24 * 3600.0, k_min=1))
    capped = P.private_dashboard(res.log, 3600.0, 24 * 3600.0, k_min=1, max_bins=1)
    ids, _, codes = res.log.arrays()
    assert capped.sum() == len(np.unique(ids[codes == telemetry.CODES.index("-")]))  # one bin per device
    suppressed = P.private_dashboard(res.log, 3600.0, 24 * 3600.0, k_min=30, max_bins=24)
    assert np.all((suppressed == 0) | (suppressed >= 30)) and np.array_equal(suppressed > 0, exact >= 30)
    noise = np.array([P.private_dashboard(res.log, 3600.0, 24 * 3600.0, k_min=1, epsilon=2.0, max_bins=4,
                                          seed=s) for s in range(200)])
    unsuppressed = P.private_dashboard(res.log, 3600.0, 24 * 3600.0, k_min=1, max_bins=4)
    busy = unsuppressed > 40  # noise never pushes these under k_min
    diff = noise[:, busy] - unsuppressed[busy]
    assert abs(diff.mean()) < 0.3 and 0.8 * np.sqrt(2) * 2 < diff.std() < 1.2 * np.sqrt(2) * 2  # Laplace(4 / 2)
    for kw, match in (({"k_min": 0}, "k_min"), ({"k_min": 1, "epsilon": 0.0}, "epsilon"),
                      ({"k_min": 1, "max_bins": 0}, "max_bins")):
        with pytest.raises(ValueError, match=match):
            P.private_dashboard(res.log, 3600.0, 24 * 3600.0, **kw)


def test_differencing_beats_a_minimum_cohort_but_not_dp_noise():
    res = simulate(POP, CFG, SteeringConfig(), 24 * 3600.0, 0, traced_devices=400)
    ids, _, codes = res.log.arrays()
    victims = np.flatnonzero(np.bincount(ids[codes == 0], minlength=400) >= 3)[:80]
    plain = P.differencing_attack(res, POP, victims, k_min=20, epsilon=None)
    noisy = P.differencing_attack(res, POP, victims, k_min=20, epsilon=0.5)
    assert np.mean(plain < 1.0) > 0.8 and np.mean(noisy < 1.0) < 0.3
    sweep = P.telemetry_attack_sweep(PopulationConfig(num_devices=5000), RoundConfig(goal_count=30), (0.0, 3.0),
                                     seeds=(0,), traced_devices=400, targets=60)
    assert sweep.per_device.shape == (2, 1) and sweep.per_device[0, 0] > sweep.per_device[1, 0]
    assert sweep.private_dashboard.max() < 0.3 and 0.3 < sweep.prior.mean() < 0.7


def test_dashboards_check_their_arguments():
    log = simulate(POP, CFG, SteeringConfig(), 3600.0, 0, traced_devices=50).log
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        P.private_dashboard(log, 3600.0, 7200.0, k_min=2, epsilon=1.0, seed=-1)
    with pytest.raises(TypeError, match="log must be a telemetry.EventLog"):
        P.private_dashboard("log", 3600.0, 7200.0, k_min=2)
    res = simulate(POP, CFG, SteeringConfig(), 3600.0, 0, traced_devices=50)
    with pytest.raises(ValueError, match=r"devices must hold values in \[0, 19999\]; devices\[0\] is 20000"):
        P.differencing_attack(res, POP, [20_000], k_min=2, epsilon=None)
    with pytest.raises(ValueError, match="epsilon must be > 0, got 0.0"):
        P.differencing_attack(res, POP, [1], k_min=2, epsilon=0.0)
    with pytest.raises(TypeError, match="seed must be an int, got 0.5"):
        P.differencing_attack(res, POP, [1], k_min=2, epsilon=1.0, seed=0.5)
    with pytest.raises(ValueError, match="within_h must be > 0, got 0.0"):
        P.leak_share(res, POP, within_h=0.0)
