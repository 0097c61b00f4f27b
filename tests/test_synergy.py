import numpy as np
import pytest

from mlsys_core import synergy


def test_data_parallel_equals_fedsgd_with_one_local_step():
    r = synergy.data_parallel_vs_fedsgd(devices=4, steps=3, per_device_batch=8)
    assert r["max_param_change"] > 1e-3  # training really moved the weights...
    assert r["max_abs_diff"] < 1e-5  # ...and both ways moved them identically (f32 rounding only)


def test_data_parallel_vs_fedsgd_rejects_too_many_examples():
    with pytest.raises(ValueError, match="1797"):
        synergy.data_parallel_vs_fedsgd(devices=8, steps=100, per_device_batch=16)


def test_bf16_saving_limits():
    assert synergy.bf16_saving(1.0, 0.0) == 0.0
    assert synergy.bf16_saving(0.0, 1.0) == 0.5
    assert synergy.bf16_saving(1.0, 1.0) == 0.25
    with pytest.raises(ValueError, match="comm_s"):
        synergy.bf16_saving(1.0, -1.0)


def test_bf16_matters_more_as_the_pod_grows():
    r = synergy.bf16_saving_tpu(chips=(16, 256, 4096))
    assert np.all(np.diff(r["saving"]) > 0)
    with pytest.raises(ValueError, match="workload"):
        synergy.bf16_saving_tpu("GPT-9")


def test_bf16_saving_edge_is_per_device_and_bounded():
    r = synergy.bf16_saving_edge(devices=1000)
    assert r["saving"].shape == (1000,)
    assert np.all((r["saving"] > 0) & (r["saving"] < 0.5))
    with pytest.raises(ValueError, match="model_params"):
        synergy.bf16_saving_edge(model_params=0)


def test_fedavg_with_rounded_deltas_tracks_float32():
    f32 = synergy.fedavg_delta_dtype("float32", rounds=3, clients_per_round=5, num_clients=20)
    f16 = synergy.fedavg_delta_dtype("float16", rounds=3, clients_per_round=5, num_clients=20)
    assert f32.shape == (3,) and np.all((0 <= f32) & (f32 <= 1))
    assert np.max(np.abs(f32 - f16)) <= 0.02
    with pytest.raises(ValueError, match="dtype"):
        synergy.fedavg_delta_dtype("int8")


def test_wus_shrinks_the_optimizer_state_nvm_must_stream():
    r = synergy.nvm_optimizer_state(chips=64)
    assert r["wus"]["state_bytes_per_chip"] == pytest.approx(r["replicated"]["state_bytes_per_chip"] / 64)
    assert 1.0 < r["wus"]["slowdown"] < r["replicated"]["slowdown"]
    assert r["cost"]["nvm_plus_cache_usd"] < r["cost"]["all_dram_usd"]


def test_tictac_links_get_transfer_bound_as_bandwidth_drops():
    r = synergy.tictac_vs_bandwidth("mlp", "infer", bandwidths_gbps=(10.0, 0.01), iterations=3)
    assert r["comm_share"][1] > r["comm_share"][0]
    assert np.all(r["tac_speedup"] > 0.9)
    assert np.all(r["headroom"] >= 0)
