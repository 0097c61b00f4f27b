"""The launcher: 2 processes x 4 devices under jax.distributed equal 1 process x 8 devices."""

import numpy as np
import pytest

from mlsys_core.sharding import launch


@pytest.mark.slow
def test_two_processes_of_four_devices_equal_one_of_eight():
    results = launch.main(["--processes", "2", "--cpu-devices", "4", "--strategy", "wus", "--steps", "2"])
    single = launch.run(strategy="wus", steps=2)
    assert sorted(r["process"] for r in results) == [0, 1]
    assert {r["devices"] for r in results} == {8} and single["devices"] == 8 and single["processes"] == 1
    for r in results:
        # gloo and the in-process CPU collectives may add in another order: f32 rounding only.
        np.testing.assert_allclose(r["losses"], single["losses"], rtol=1e-5)
        np.testing.assert_allclose(r["params_head"], single["params_head"], atol=1e-6)
        np.testing.assert_allclose([r["param_sum"], r["param_sq"]], [single["param_sum"], single["param_sq"]],
                                   rtol=1e-5)
    assert single["losses"][-1] < single["losses"][0]


def test_bad_training_arguments_are_refused_before_any_process_starts(monkeypatch):
    import pytest

    from mlsys_core import backend

    monkeypatch.setattr(backend, "launch", lambda *a, **k: pytest.fail("launched"))
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        launch.main(["--processes", "2", "--seed", "-1"])
    with pytest.raises(ValueError, match=r"steps must be in \[1, 28\], got 100"):
        launch.main(["--processes", "2", "--steps", "100"])
    with pytest.raises(ValueError, match="optimizer must be one of"):
        launch.run(optimizer="adamw")
