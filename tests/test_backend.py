import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import pytest

from mlsys_core import backend


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_setup_gives_eight_cpu_devices():
    info = backend.info()
    assert info.device_count == 8
    assert info.process_count == 1
    assert info.platform == "cpu"
    assert info.jax_version == jax.__version__


def test_setup_again_with_same_value_is_fine():
    backend.setup(cpu_devices=8)
    assert len(jax.devices()) == 8


def test_setup_after_start_with_other_count_says_restart():
    with pytest.raises(RuntimeError, match="Restart the kernel"):
        backend.setup(cpu_devices=4)


@pytest.mark.parametrize("bad", [0, -3])
def test_setup_rejects_fewer_than_one_device(bad):
    with pytest.raises(ValueError, match="cpu_devices"):
        backend.setup(cpu_devices=bad)


@pytest.mark.parametrize("bad", [2.0, "8", True])
def test_setup_rejects_non_int(bad):
    with pytest.raises(TypeError, match="cpu_devices"):
        backend.setup(cpu_devices=bad)


def test_info_is_frozen():
    info = backend.info()
    with pytest.raises(AttributeError):
        info.device_count = 1  # type: ignore[misc]


def test_importing_the_package_starts_no_backend():
    out = run_python(
        """
        import importlib, pkgutil
        import mlsys_core
        for m in pkgutil.walk_packages(mlsys_core.__path__, "mlsys_core."):
            if not m.name.endswith("__main__"):
                importlib.import_module(m.name)
        from jax._src import xla_bridge
        print(xla_bridge.backends_are_initialized())
        """
    )
    assert out.strip() == "False"


def test_module_main_prints_eight_devices():
    result = subprocess.run(
        [sys.executable, "-m", "mlsys_core.backend"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("cpu: 8 x cpu")


PSUM_CHILD = """
import jax, jax.numpy as jnp
from jax.sharding import PartitionSpec as P
from mlsys_core import backend
backend.setup(cpu_devices=2)
mesh = jax.make_mesh((jax.device_count(),), ("i",))
x = jax.make_array_from_process_local_data(
    jax.NamedSharding(mesh, P("i")), jnp.arange(2.0) + 2 * jax.process_index())
total = jax.jit(jax.shard_map(lambda v: jax.lax.psum(v, "i"), mesh=mesh, in_specs=P("i"), out_specs=P()))(x)
print(jax.process_index(), jax.process_count(), jax.device_count(), float(total[0]))
"""


def test_launch_two_processes_psum():
    outs = backend.launch(["-c", PSUM_CHILD], processes=2, cpu_devices=2)
    rows = sorted(tuple(o.splitlines()[-1].split()) for o in outs)  # gloo logs to stdout first
    # 4 devices hold 0, 1, 2, 3: the psum is 6 in both processes.
    assert rows == [("0", "2", "4", "6.0"), ("1", "2", "4", "6.0")]


def test_launch_reports_a_failing_child():
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        backend.launch(["-c", "1/0"], processes=2)


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1, ValueError), (1.5, TypeError)])
def test_launch_rejects_bad_process_count(bad, error):
    with pytest.raises(error, match="processes must be"):
        backend.launch(["-c", "pass"], processes=bad)


@pytest.mark.parametrize("kw, error, field", [
    ({"timeout_s": float("nan")}, ValueError, "timeout_s must be finite"),
    ({"timeout_s": -1.0}, ValueError, "timeout_s must be > 0"),
    ({"timeout_s": "60"}, TypeError, "timeout_s must be a number"),
    ({"cpu_devices": 0}, ValueError, "cpu_devices must be >= 1"),
    ({"processes": 10_000}, ValueError, r"processes must be in \[1, 64\], got 10000"),
    ({"argv": "-c pass"}, TypeError, "argv must be a list of strings"),
    ({"argv": ["-c", 1]}, TypeError, r"argv\[1\] must be a string"),
])
def test_launch_checks_everything_before_starting_any_process(monkeypatch, kw, error, field):
    started = []
    monkeypatch.setattr(backend.subprocess, "Popen", lambda *a, **k: started.append(a))
    with pytest.raises(error, match=field):
        backend.launch(**{"argv": ["-c", "pass"], "processes": 2, **kw})
    assert started == []


def test_a_failing_child_stops_the_others_at_once():
    """Process 1 would sleep a minute; process 0 fails at once, so launch kills 1 and reports 0."""
    import time

    sleeper = "import os, sys, time\nif os.environ['MLSYS_PROCESS_ID'] == '1': time.sleep(60)\nsys.exit('no luck')"
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="process 0 exited 1:\nno luck") as info:
        backend.launch(["-c", sleeper], processes=2, timeout_s=120)
    assert time.monotonic() - start < 30
    assert "process 1" not in str(info.value)


def test_a_launch_past_its_timeout_stops_every_child(monkeypatch):
    import os

    children = []
    popen = subprocess.Popen
    monkeypatch.setattr(backend.subprocess, "Popen", lambda *a, **k: children.append(popen(*a, **k)) or children[-1])
    with pytest.raises(RuntimeError, match=r"did not finish in 0.5 s"):
        backend.launch(["-c", "import time; time.sleep(60)"], processes=2, timeout_s=0.5)
    for child in children:
        assert child.returncode is not None
        with pytest.raises(ProcessLookupError):
            os.kill(child.pid, 0)


def test_free_port_is_usable():
    import socket

    port = backend.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))


def test_mesh_shards_an_array():
    mesh = jax.make_mesh((8,), ("data",))
    x = jax.device_put(jnp.arange(16.0), jax.NamedSharding(mesh, jax.sharding.PartitionSpec("data")))
    assert len(x.addressable_shards) == 8
    assert x.addressable_shards[0].data.shape == (2,)


class FakeDevice:
    """Stands in for a jax Device: only what `mesh_devices` and `shares_one_host` read."""

    def __init__(self, platform: str, index: int, process_index: int = 0):
        self.platform, self.id, self.process_index = platform, index, process_index

    def __repr__(self):
        return f"{self.platform}:{self.id}"


def fakes(platform: str, n: int, process_index: int = 0) -> list:
    return [FakeDevice(platform, i, process_index) for i in range(n)]


def test_mesh_devices_takes_the_default_backend_when_it_has_enough():
    gpus, cpus = fakes("gpu", 8), fakes("cpu", 8)
    assert backend.mesh_devices(8, default=gpus, cpu=cpus) == gpus
    assert backend.mesh_devices(4, default=gpus, cpu=cpus) == gpus[:4]
    assert not backend.shares_one_host(backend.mesh_devices(8, default=gpus, cpu=cpus))


def test_one_gpu_falls_back_to_the_simulated_cpu_devices():
    gpu, cpus = fakes("gpu", 1), fakes("cpu", 8)
    mesh = backend.mesh_devices(8, default=gpu, cpu=cpus)
    assert mesh == cpus and backend.shares_one_host(mesh)
    # a one-device mesh still takes the accelerator
    assert backend.mesh_devices(1, default=gpu, cpu=cpus) == gpu


def test_too_few_devices_anywhere_names_both_counts_and_the_fix():
    with pytest.raises(ValueError, match=r"n=8 devices needs 8 devices: the default backend \(gpu\) has 1 "
                                         r"and the CPU backend has 2 .*setup\(cpu_devices=8\)"):
        backend.mesh_devices(8, default=fakes("gpu", 1), cpu=fakes("cpu", 2))
    with pytest.raises(ValueError, match=r"\(cpu\) has 1 and the CPU backend has 1 .*Restart the kernel"):
        one = fakes("cpu", 1)
        backend.mesh_devices(2, default=one, cpu=one)


@pytest.mark.parametrize("bad, error", [(0, ValueError), (2.0, TypeError), (True, TypeError)])
def test_mesh_devices_rejects_a_bad_count(bad, error):
    with pytest.raises(error, match="n must be"):
        backend.mesh_devices(bad, default=fakes("cpu", 8), cpu=fakes("cpu", 8))


@pytest.mark.parametrize("name", ["default", "cpu"])
def test_mesh_devices_takes_device_lists_only(name):
    """A string used to pass as a list of its characters, a number to fail inside list()."""
    lists = {"default": fakes("gpu", 1), "cpu": fakes("cpu", 8)}
    for bad in ("text", 8):
        with pytest.raises(TypeError, match=f"{name} must be a list of devices or None, got {bad!r}"):
            backend.mesh_devices(2, **(lists | {name: bad}))


def test_only_cpu_devices_of_one_process_share_a_host():
    assert backend.shares_one_host(fakes("cpu", 8))
    assert not backend.shares_one_host(fakes("tpu", 8))
    assert not backend.shares_one_host(fakes("cpu", 4, 0) + fakes("cpu", 4, 1))
    assert not backend.shares_one_host(fakes("cpu", 4) + fakes("gpu", 1))
    assert not backend.shares_one_host([])


def test_mesh_devices_here_are_the_eight_cpu_devices():
    assert backend.mesh_devices() == jax.devices()
    info = backend.info()
    assert (info.mesh_size, info.mesh_platform, info.mesh_shares_host, info.cpu_device_count) == (8, "cpu", True, 8)
    assert str(info).endswith("meshes of 8 use the default devices (one shared host)")


def test_info_on_one_gpu_says_meshes_use_the_cpu_devices():
    info = backend.Info("gpu", "H200", 1, 1, 1, "0", mesh_platform="cpu", mesh_shares_host=True, cpu_device_count=8)
    assert str(info).endswith("meshes of 8 use simulated cpu devices (one shared host)")
    none = backend.Info("cpu", "cpu", 1, 1, 1, "0", mesh_platform=None, cpu_device_count=1)
    assert "no mesh of 8: 1 CPU device(s), call setup(cpu_devices=8)" in str(none)
