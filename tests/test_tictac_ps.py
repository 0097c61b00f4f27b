"""The real loopback parameter server: P servers, every byte intact, pulls and pushes, an order
check that fails when a server sends out of order."""

import numpy as np
import pytest

from mlsys_core.tictac import ps
from mlsys_core.tictac.ps import coordinator, wire

N_BYTES = (64 * 32 + 32 + 32 * 10 + 10) * 4  # w, b of the hidden and the head layer, float32


def _config(**kw):
    base = dict(model="mlp", mode="infer", workers=2, servers=2, iterations=1, warmup=1, depth=1, width=2,
                batch_size=4, bandwidth_gbps=2.0, timeout_s=120.0)
    return ps.PSConfig(**{**base, **kw})


@pytest.mark.slow
def test_two_servers_pull_and_push_all_bytes_intact_and_in_order():
    trials = ps.run(_config(mode="train"), schedulers=("random", "tac"))
    for name, trial in trials.items():
        assert trial.orders_ok, name
        assert trial.crc_errors == 0
        assert trial.outputs_ok
        assert trial.iteration_s.shape == (2,) and (trial.iteration_s > 0).all()
        assert trial.worker_s.shape == (2, 2)
        # 2 iterations x 2 workers x (payload + a 21-byte header per parameter), over both servers;
        # every gradient goes back with the same bytes
        assert trial.bytes_sent == 2 * 2 * (N_BYTES + 4 * wire.HEADER.size)
        assert trial.bytes_pushed == trial.bytes_sent


def test_order_check_fails_when_a_server_sends_out_of_order():
    trials = ps.run(_config(workers=1, warmup=0, fault="swap"), schedulers=("layer",))
    assert not trials["layer"].orders_ok
    assert trials["layer"].crc_errors == 0 and trials["layer"].outputs_ok


def test_orders_match_compares_each_servers_subsequence():
    server_of = np.array([0, 1, 0, 1])
    scheduled = np.array([0, 1, 2, 3])
    assert ps.orders_match(np.array([1, 0, 3, 2]), scheduled, server_of)  # servers interleave freely
    assert not ps.orders_match(np.array([2, 1, 0, 3]), scheduled, server_of)  # server 0 swapped
    assert not ps.orders_match(np.array([0, 1, 2]), scheduled, server_of)
    m, lo, hi = ps.mean_interval([1.0, 2.0, 3.0])
    assert m == 2.0 and lo < 2.0 < hi
    with pytest.raises(ValueError, match="values"):
        ps.mean_interval([1.0])


def test_bad_real_server_config_is_rejected():
    with pytest.raises(ValueError, match="bandwidth_gbps"):
        ps.PSConfig(bandwidth_gbps=0)
    with pytest.raises(ValueError, match="model"):
        ps.PSConfig(model="gpt")
    with pytest.raises(ValueError, match="scheduler"):
        ps.run(ps.PSConfig(), schedulers=("fifo",))
    with pytest.raises(ValueError, match=r"servers must be in \[1, 4\], got 5"):
        ps.PSConfig(servers=5)
    with pytest.raises(ValueError, match="fault"):
        ps.PSConfig(fault="drop")


def test_real_server_config_checks_kinds():
    with pytest.raises(TypeError, match="workers must be an int, got 2.5"):
        ps.PSConfig(workers=2.5)
    with pytest.raises(ValueError, match=r"warmup must be >= 0, got -1"):
        ps.PSConfig(warmup=-1)
    with pytest.raises(ValueError, match=r"bandwidth_gbps must be in \(0, 100\], got 200"):
        ps.PSConfig(bandwidth_gbps=200)


def test_run_refuses_a_string_where_a_config_or_schedulers_belong():
    with pytest.raises(TypeError, match="config must be a ps.PSConfig, got 'cnn'"):
        ps.run("cnn")
    with pytest.raises(TypeError, match="schedulers must be a tuple of scheduler names, got 'tac'"):
        ps.run(_config(), schedulers="tac")
    with pytest.raises(ValueError, match="schedulers must name at least one"):
        ps.runs(_config(), schedulers=())


def _pids_alive(pids):
    import os

    alive = []
    for pid in pids:
        try:
            os.kill(pid, 0)
            alive.append(pid)
        except ProcessLookupError:
            pass
    return alive


@pytest.mark.parametrize("garbage, said", [(b"GET / HTTP/1.0\r\n\r\n", r"bad hello from peer 127\.0\.0\.1:\d+"),
                                           (b"abc", r"no 14-byte hello from peer 127\.0\.0\.1:\d+ "
                                                    r"\(connection closed after 3 of 14 bytes\)")])
def test_garbage_on_the_coordinators_port_is_a_clear_error(monkeypatch, garbage, said):
    """A stray peer connects before the servers: the coordinator names it and stops its real server."""
    import socket

    spawned, stray = [], []

    def garbage_first(role, config, port, ident, extra=()):
        if not stray:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(garbage)
            if len(garbage) < wire.HELLO_MSG.size:
                sock.close()
            stray.append(sock)
        child = real_spawn(role, config, port, ident, extra)
        spawned.append(child.proc.pid)
        return child

    real_spawn = coordinator._spawn
    monkeypatch.setattr(coordinator, "_spawn", garbage_first)
    with pytest.raises(RuntimeError, match=said) as info:
        coordinator._serve(_config(servers=1, workers=1), {}, [b""], np.zeros(1, np.int64), 0.0)
    assert f"server 0 (pid {spawned[0]}) was still running; stopped by the coordinator" in str(info.value)
    assert not _pids_alive(spawned)
    stray[0].close()


def test_a_failed_process_is_named_with_its_pid_exit_code_and_stderr(monkeypatch):
    import subprocess
    import sys
    import tempfile

    def failing(role, config, port, ident, extra=()):
        err = tempfile.TemporaryFile()
        script = "import sys; sys.stderr.write('starting\\nboom: no such model\\n'); sys.exit(3)"
        return coordinator.Child(f"{role} {ident}", subprocess.Popen([sys.executable, "-c", script], stderr=err), err)

    monkeypatch.setattr(coordinator, "_spawn", failing)
    said = r"server 0 \(pid \d+\) exited with code 3:\n    starting\n    boom: no such"
    with pytest.raises(RuntimeError, match=said):
        coordinator._serve(_config(servers=1, workers=1), {}, [b""], np.zeros(1, np.int64), 0.0)
