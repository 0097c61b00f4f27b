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
