"""The notebook's experiment functions: deterministic data, and the widget's measurement."""

import numpy as np
import pytest

from mlsys_core.sharding import experiments, timing


def test_digits_split_and_batches_are_seeded():
    a, b = experiments.digits_split(seed=3), experiments.digits_split(seed=3)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert len(a[0]) + len(a[2]) == 1797 and len(a[2]) == 360
    batches = experiments.epoch_batches(a[0], a[1], batch=500, steps=4, seed=1)
    assert [len(x) for x, _ in batches] == [500] * 4
    assert len({tuple(map(tuple, x[:2])) for x, _ in batches}) == 4  # reshuffled, not repeated
    again = experiments.epoch_batches(a[0], a[1], batch=500, steps=4, seed=1)
    assert all(np.array_equal(x, y) for (x, _), (y, _) in zip(batches, again))
    assert [len(x) for x, _ in experiments.epoch_batches(a[0], a[1], batch=3000, steps=2)] == [3000] * 2
    with pytest.raises(ValueError, match="test_size must be an int in 1..1796, got 0"):
        experiments.digits_split(test_size=0)
    with pytest.raises(ValueError, match="batch must be an int >= 1"):
        experiments.epoch_batches(a[0], a[1], batch=0, steps=1)


def test_measure_config_reports_sharded_memory_and_bf16_bytes():
    r = experiments.measure_config(devices=4, strategy="wus", width=32, grad_dtype="bfloat16", batch=8, repeats=1)
    assert r.params == 4 * (2 * 32 * 128 + 128 + 32)
    assert r.memory.opt_state_bytes == 2 * 4 * r.params // 4 + 4  # Adam mu, nu on 1/4 each (+ count)
    assert r.collective_bytes["reduce-scatter"] == 2 * r.params // 4  # bf16 shards
    assert r.step_ms > 0


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


def test_calibrate_collectives_times_both_patterns():
    out = experiments.calibrate_collectives(1000, devices=4, repeats=1)
    assert set(out) == {"replicated", "wus"} and all(v > 0 for v in out.values())
