"""The notebook's experiment functions: deterministic data, and the widget's measurement."""

import jax
import numpy as np
import optax
import pytest

from mlsys_core import data, timing
from mlsys_core.sharding import experiments


def test_digits_split_and_batches_are_seeded():
    a, b = data.digits_split(seed=3), data.digits_split(seed=3)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert len(a[0]) + len(a[2]) == 1797 and len(a[2]) == 360
    batches = data.epoch_batches(a[0], a[1], batch=500, steps=4, seed=1)
    assert [len(x) for x, _ in batches] == [500] * 4
    assert len({tuple(map(tuple, x[:2])) for x, _ in batches}) == 4  # reshuffled, not repeated
    again = data.epoch_batches(a[0], a[1], batch=500, steps=4, seed=1)
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(batches, again))
    assert [len(x) for x, _ in data.epoch_batches(a[0], a[1], batch=3000, steps=2)] == [3000] * 2
    with pytest.raises(ValueError, match=r"test_size must be in \[1, 1796\], got 0"):
        data.digits_split(test_size=0)
    with pytest.raises(ValueError, match="batch must be >= 1"):
        data.epoch_batches(a[0], a[1], batch=0, steps=1)


def test_explore_config_reports_sharded_memory_and_bf16_bytes():
    r = experiments.explore_config(devices=4, strategy="wus", width=32, grad_dtype="bfloat16", batch=8, repeats=1)
    assert r.params == 4 * (2 * 32 * 128 + 128 + 32)
    assert r.memory.opt_state_bytes == 2 * 4 * r.params // 4 + 4  # Adam mu, nu on 1/4 each (+ count)
    assert r.collective_bytes["reduce-scatter"] == 2 * r.params // 4  # bf16 shards
    assert r.step_ms > 0


def test_compare_strategies_trains_every_strategy_from_the_same_start():
    from mlsys_core.sharding import models, strategies

    model = models.MLP((64, 16, 10))
    x, y = data.digits_split(seed=0)[:2]
    batches = data.epoch_batches(x, y, batch=16, steps=3, seed=0)
    params = model.init(jax.random.key(0))
    runs = experiments.compare_strategies(models.classifier_loss(model), optax.sgd(0.1), params, batches, devices=4)
    assert list(runs) == list(strategies.STRATEGIES) and all(len(r.losses) == 3 for r in runs.values())
    for run in runs.values():  # `params` gathers each strategy's sharded state whole
        assert experiments.max_param_diff(run.params, runs["replicated"].params) < 1e-5
    assert runs["wus"].losses[-1] < runs["wus"].losses[0]


def test_bf16_experiment_halves_the_reduce_scatter_bytes():
    runs = experiments.bf16_experiment(steps=3, batch=16, devices=2)
    assert list(runs) == ["float32", "bfloat16"]
    assert runs["bfloat16"].reduce_scatter_bytes * 2 == runs["float32"].reduce_scatter_bytes > 0
    assert all(0.0 <= r.accuracy <= 1.0 and np.isfinite(r.final_loss) for r in runs.values())


def test_time_steps_validates_counts():
    with pytest.raises(ValueError, match="repeats"):
        timing.time_steps(lambda s, b: (s, 0.0), 0, None, repeats=0)


def test_calibrate_one_device_measures_both_terms():
    from mlsys_core.sharding import models

    compute_s, update_s = experiments.calibrate_one_device(models.FFNStack(16, 32, 1), batch=8, repeats=1)
    assert compute_s > 0 and update_s > 0


def test_time_interleaved_runs_every_step_and_threads_each_state():
    calls = []

    def make(name):
        def step(state, batch):
            calls.append(name)
            return state + batch, 0.0
        return step

    out = timing.time_interleaved({"a": (make("a"), 0, 1), "b": (make("b"), 10, 2)}, repeats=3, warmup=1)
    assert [len(t.times_s) for t in out.values()] == [3, 3]
    assert calls[:2] == ["a", "b"] and calls[2:4] == ["b", "a"]  # the order rotates each round
    assert calls.count("a") == calls.count("b") == 4


def test_timing_ratios_pair_the_repeats_of_one_round():
    a, b = timing.StepTiming((2.0, 3.0, 8.0)), timing.StepTiming((1.0, 1.5, 2.0))
    np.testing.assert_allclose(timing.ratios(a, b), [2.0, 2.0, 4.0])  # not the ratio of medians (2.0)
    with pytest.raises(ValueError, match="same rounds"):
        timing.ratios(a, timing.StepTiming((1.0,)))
    with pytest.raises(TypeError, match="denominator"):
        timing.ratios(a, [1.0, 2.0, 3.0])


def test_calibrate_collectives_times_both_patterns_in_the_same_rounds():
    out = experiments.calibrate_collectives(1000, devices=4, repeats=3)
    assert set(out) == {"replicated", "wus"}
    assert [len(t.times_s) for t in out.values()] == [3, 3]
    assert timing.ratios(out["wus"], out["replicated"]).shape == (3,)
    with pytest.raises(ValueError, match="n_params"):
        experiments.calibrate_collectives(0, devices=4)


def _profile(times: dict, devices: int = 8) -> experiments.StrategyProfile:
    return experiments.StrategyProfile(devices, {}, {}, {k: timing.StepTiming(v) for k, v in times.items()})


def test_strategy_profile_predicts_from_the_shared_host_model():
    # fb 10 ms, update 5 ms, all-reduce 4 ms, RS+AG 6 ms on 8 devices sharing a host:
    # replicated 10 + 8 * 5 + 4 = 54 ms, WUS 10 + 5 + 6 = 21 ms.
    p = _profile({"replicated": (0.054, 0.108), "wus": (0.021, 0.027), "fsdp": (0.02, 0.02),
                  "forward_backward": (0.010, 0.010), "update": (0.005, 0.005),
                  "all_reduce": (0.004, 0.004), "reduce_scatter_all_gather": (0.006, 0.006)})
    assert p.predicted_step_s["replicated"] == pytest.approx(0.054)
    assert p.predicted_step_s["wus"] == pytest.approx(0.021)
    np.testing.assert_allclose(p.measured_speedups, [54 / 21, 4.0])
    np.testing.assert_allclose(p.measured_over_predicted, [1.0, 4.0 / (54 / 21)])
    assert p.medians_ms["wus"] == pytest.approx(24.0)


def test_strategy_profile_on_real_chips_uses_the_side_by_side_model():
    # the same terms on 8 chips that run in parallel: replicated 10/8 + 5 + 4 = 10.25 ms,
    # WUS 10/8 + 5/8 + 6 = 7.875 ms.
    times = {"replicated": (0.054,), "wus": (0.021,), "fsdp": (0.02,), "forward_backward": (0.010,),
             "update": (0.005,), "all_reduce": (0.004,), "reduce_scatter_all_gather": (0.006,)}
    chips = experiments.StrategyProfile(8, {}, {}, {k: timing.StepTiming(v) for k, v in times.items()},
                                        shared_host=False)
    assert chips.cost_model_name == "side_by_side_step_s" and _profile(times).cost_model_name == "shared_host_step_s"
    assert chips.predicted_step_s["replicated"] == pytest.approx(0.01025)
    assert chips.predicted_step_s["wus"] == pytest.approx(0.007875)


def test_profile_with_cost_model_times_every_run_in_each_round():
    from mlsys_core.sharding import models

    p = experiments.profile_with_cost_model(models.FFNStack(16, 64, 1), batch=8, devices=4, repeats=2)
    assert set(p.timings) == {"replicated", "wus", "fsdp", *experiments.MODEL_TERMS}
    assert {len(t.times_s) for t in p.timings.values()} == {2}
    # Adam's moments: 1/4 of replicated under WUS (plus the replicated 4-byte step count)
    assert p.memory["wus"].opt_state_bytes - 4 == (p.memory["replicated"].opt_state_bytes - 4) // 4
    assert "reduce-scatter" in p.collective_bytes["wus"] and "reduce-scatter" not in p.collective_bytes["replicated"]
    assert p.measured_over_predicted.shape == (2,) and np.isfinite(p.predicted_speedup)
    assert p.shared_host and p.cost_model_name == "shared_host_step_s"  # simulated CPU devices


def test_strategy_agreement_finds_wus_equal_to_replicated_and_lamb_exact():
    same = experiments.strategy_agreement("wus", "replicated", ("adam",), seeds=(0, 1), steps=3, devices=4)
    assert same.max_diff.shape == (2, 1) and same.worst_per_seed.max() < 2e-5
    exact = experiments.strategy_agreement("wus", "single", ("lamb", "lars"), seeds=(0,), steps=3, devices=4)
    assert exact.optimizers == ("lamb", "lars") and exact.worst_per_seed[0] < 2e-5


def test_strategy_agreement_detects_a_training_that_differs(monkeypatch):
    """A reference that skips the first batch is another training: the measurement must show it."""
    from mlsys_core.sharding import strategies

    reference = strategies.reference_train
    monkeypatch.setattr(strategies, "reference_train",
                        lambda loss, opt, p, b, d=None: reference(loss, opt, p, b[1:], d))
    drift = experiments.strategy_agreement("wus", "single", ("lamb",), seeds=(0,), steps=3, devices=4)
    assert drift.worst_per_seed[0] > 1e-3


def test_strategy_agreement_rejects_bad_arguments():
    with pytest.raises(ValueError, match="baseline must be one of"):
        experiments.strategy_agreement("wus", "zero3")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        experiments.strategy_agreement("wus", "single", ("adagrad",))
    with pytest.raises(ValueError, match="seeds must hold at least one seed"):
        experiments.strategy_agreement("wus", "single", seeds=())


def test_bn_agreement_equals_global_bn_only_over_the_whole_group(monkeypatch):
    from mlsys_core.sharding import spmd

    full = experiments.bn_agreement(seeds=(0, 1), steps=3)
    assert full.max_diff.shape == (2, 1) and full.worst_per_seed.max() < 2e-5
    one_group = spmd.bn_mesh
    monkeypatch.setattr(spmd, "bn_mesh", lambda replicas, g, devices=None: one_group(replicas, 1, devices))
    local = experiments.bn_agreement(seeds=(0,), steps=3)  # statistics of 4 examples each: another model
    assert local.worst_per_seed[0] > 1e-3


def test_time_to_train_vs_link_follows_the_cost_model():
    from mlsys_core.sharding import cost_model

    links = (70.0, 150.0, 330.0)
    bert = experiments.time_to_train_vs_link("BERT", links)
    # the cost model's chip has Cloud TPU's ~330 GB/s per chip, the last link here
    assert bert[-1] == pytest.approx(cost_model.time_to_train_s(cost_model.BERT_LARGE, cost_model.TPU_V3, 4096))
    assert np.all(np.diff(bert) < 0)  # a faster link only shortens the all-reduce
    resnet = experiments.time_to_train_vs_link("ResNet-50", links)
    # ResNet-50's gradient is 13x smaller than BERT's: the link moves its time far less (13 % against 33 %)
    assert resnet[0] / resnet[-1] < 1.2 < 1.3 < bert[0] / bert[-1]
    curve = cost_model.scaling_curve(cost_model.RESNET50, cost_model.TPU_V3, [4096])
    assert resnet[-1] == pytest.approx(curve.wus_train_s[0], rel=1e-4)  # the logs round steps to 0.1
    with pytest.raises(ValueError, match="link_gb_per_s"):
        experiments.time_to_train_vs_link("ResNet-50", (0.0,))
    with pytest.raises(ValueError, match="model"):
        experiments.time_to_train_vs_link("GPT-3")


def test_seeds_and_models_are_checked_before_any_work():
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        data.digits_split(seed=-1)
    with pytest.raises(TypeError, match="seed must be an int, got 0.5"):
        data.epoch_batches(np.zeros((4, 2)), np.zeros(4), 2, 2, seed=0.5)
    with pytest.raises(TypeError, match="model must be a models.FFNStack, got 'ffn'"):
        experiments.profile_strategies("ffn")
    with pytest.raises(TypeError, match="model must be a models.Transformer or None, got 'gpt'"):
        experiments.megatron_transformer("gpt")


def test_synthetic_batches_check_their_sizes_and_model():
    from mlsys_core.sharding import models

    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        models.regression_batch(jax.random.key(0), 0, 8)
    with pytest.raises(TypeError, match="model must be a models.Transformer, got 'bert'"):
        models.transformer_batch(jax.random.key(0), 4, "bert")
