"""The real loopback parameter server: every byte intact, in the requested order, outputs correct."""

import pytest

from mlsys_core.tictac import ps


def test_real_server_delivers_all_bytes_intact_and_in_order():
    config = ps.PSConfig(model="mlp", mode="infer", workers=2, iterations=1, warmup=1, depth=1, width=2,
                         batch_size=4, bandwidth_gbps=2.0, timeout_s=120.0)
    trials = ps.run(config, schedulers=("random", "tac"))
    n_bytes = (64 * 32 + 32 + 32 * 10 + 10) * 4  # w, b of the hidden and the head layer, float32
    for name, trial in trials.items():
        assert trial.orders_ok, name
        assert trial.crc_errors == 0
        assert trial.outputs_ok
        assert trial.iteration_s.shape == (2,) and (trial.iteration_s > 0).all()
        assert trial.worker_s.shape == (2, 2)
        # 2 iterations x 2 workers x (payload + a 21-byte header per parameter)
        assert trial.bytes_sent == 2 * 2 * (n_bytes + 4 * ps.HEADER.size)


def test_bad_real_server_config_is_rejected():
    with pytest.raises(ValueError, match="bandwidth_gbps"):
        ps.PSConfig(bandwidth_gbps=0)
    with pytest.raises(ValueError, match="model"):
        ps.PSConfig(model="gpt")
    with pytest.raises(ValueError, match="scheduler"):
        ps.run(ps.PSConfig(), schedulers=("fifo",))


def test_real_server_config_checks_kinds():
    with pytest.raises(TypeError, match="workers must be an int, got 2.5"):
        ps.PSConfig(workers=2.5)
    with pytest.raises(ValueError, match=r"warmup must be >= 0, got -1"):
        ps.PSConfig(warmup=-1)
    with pytest.raises(ValueError, match=r"bandwidth_gbps must be in \(0, 100\], got 200"):
        ps.PSConfig(bandwidth_gbps=200)
