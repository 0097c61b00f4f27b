"""Pick the machine before JAX starts, describe it, and join JAX's multi-process runtime.

On a TPU or a GPU JAX uses the real chips; `setup()` also splits the host CPU into `cpu_devices`
simulated devices (JAX keeps its CPU backend beside a GPU or TPU), so an 8-device mesh runs on a
laptop and on a one-chip machine alike. JAX fixes the device count when its first backend starts,
so `setup()` must come first.

`mesh_devices(n)` is where every mesh of the suite gets its devices: the default backend's when it
has n of them, else n simulated CPU devices, else a `ValueError` that names both counts.
`MESH_DEVICES` is the suite's one mesh size (8); no other module writes a device count.

`launch()` starts K local processes joined by `jax.distributed` over loopback (gloo collectives);
each child's `setup()` reads the coordinates `launch()` put in its environment and joins.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from mlsys_core import validate

# The suite's mesh size: the default of `setup(cpu_devices=...)`, `mesh_devices()` and every
# experiment's `devices`. The paper's claims are stated for meshes of this size.
MESH_DEVICES = 8

# Set by `launch()` in each child process; read by `setup()`.
ENV_COORDINATOR = "MLSYS_COORDINATOR"
ENV_NUM_PROCESSES = "MLSYS_NUM_PROCESSES"
ENV_PROCESS_ID = "MLSYS_PROCESS_ID"


@dataclasses.dataclass(frozen=True)
class Info:
    """What JAX runs on: `platform` is "cpu", "gpu" or "tpu"; counts are global (all processes).

    `mesh_platform` is where a mesh of `mesh_size` devices lives (`mesh_devices(mesh_size)`): the
    default platform, "cpu" when it falls back to simulated CPU devices, or None when neither has
    enough; `mesh_shares_host` says whether those devices share one host CPU (`shares_one_host`).
    """

    platform: str
    device_kind: str
    device_count: int
    local_device_count: int
    process_count: int
    jax_version: str
    mesh_size: int = MESH_DEVICES
    mesh_platform: str | None = None
    mesh_shares_host: bool = False
    cpu_device_count: int = 0

    def __str__(self) -> str:
        if self.mesh_platform is None:
            mesh = (f"no mesh of {self.mesh_size}: {self.cpu_device_count} CPU device(s), "
                    f"call setup(cpu_devices={self.mesh_size}) in a fresh kernel")
        else:
            where = ("the default devices" if self.mesh_platform == self.platform
                     else f"simulated {self.mesh_platform} devices")
            mesh = (f"meshes of {self.mesh_size} use {where}"
                    f"{' (one shared host)' if self.mesh_shares_host else ''}")
        return (
            f"{self.platform}: {self.device_count} x {self.device_kind} "
            f"({self.local_device_count} local, {self.process_count} process"
            f"{'es' if self.process_count != 1 else ''}), jax {self.jax_version}; {mesh}"
        )


def _backend_started() -> bool:
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()


def setup(cpu_devices: int = MESH_DEVICES) -> None:
    """Configure JAX before it starts: real TPU/GPU chips if present, and `cpu_devices` CPU devices.

    The CPU devices are always configured, beside an accelerator too: `mesh_devices` falls back to
    them when the default backend has fewer devices than a mesh needs.

    Safe to call again with the same value. After JAX has started, a different `cpu_devices` raises
    `RuntimeError`: the device count is fixed for the life of the process (restart the kernel).
    Inside a process started by `launch()`, it also joins the `jax.distributed` runtime.
    """
    cpu_devices = validate.integer("cpu_devices", cpu_devices, 1)
    import jax

    if _backend_started():
        have = len(jax.local_devices(backend="cpu"))
        if have != cpu_devices:
            raise RuntimeError(
                f"JAX already started with {have} CPU device(s); setup(cpu_devices={cpu_devices}) "
                "must run before anything uses JAX. Restart the kernel (or process) and call "
                "mlsys_core.backend.setup() first."
            )
        return
    jax.config.update("jax_num_cpu_devices", cpu_devices)
    if ENV_COORDINATOR in os.environ:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=os.environ[ENV_COORDINATOR],
            num_processes=int(os.environ[ENV_NUM_PROCESSES]),
            process_id=int(os.environ[ENV_PROCESS_ID]),
        )


def mesh_devices(n: int = MESH_DEVICES, *, default: Sequence | None = None, cpu: Sequence | None = None) -> list:
    """The `n` devices a mesh of `n` uses: the first `n` of the default backend (all processes) when it
    has that many, else the first `n` simulated CPU devices (`setup(cpu_devices=...)` configures them
    beside a GPU or TPU), else `ValueError` naming both counts and the call that gives enough.

    So on one GPU or a one-chip TPU an 8-device mesh runs on the host's CPU devices, while
    single-device work (anything not given a mesh) stays on the accelerator. `default` and `cpu`
    replace `jax.devices()` and `jax.devices("cpu")` (tests inject device lists through them).
    """
    n = validate.integer("n", n, 1)
    for name, given in (("default", default), ("cpu", cpu)):
        if given is not None:
            validate.instance(name, given, (list, tuple), "a list of devices or None")
    if default is None:
        import jax

        default = jax.devices()
    default = list(default)
    if len(default) >= n:
        return default[:n]
    if cpu is None:
        import jax

        cpu = jax.devices("cpu")
    cpu = list(cpu)
    if len(cpu) >= n:
        return cpu[:n]
    platform = default[0].platform if default else "none"
    raise ValueError(
        f"a mesh of n={n} devices needs {n} devices: the default backend ({platform}) has {len(default)} "
        f"and the CPU backend has {len(cpu)} simulated device(s). Restart the kernel (or process) and call "
        f"mlsys_core.backend.setup(cpu_devices={n}) before anything uses JAX."
    )


def shares_one_host(devices: Sequence) -> bool:
    """Whether `devices` are simulated CPU devices of one process, so they share one host's cores.

    The shared-host cost model (`sharding.cost_model.shared_host_step_s`) and the claims calibrated
    with it hold only there; real chips, or CPU devices of several processes, run side by side.
    """
    devices = list(devices)
    return (bool(devices) and all(d.platform == "cpu" for d in devices)
            and len({getattr(d, "process_index", 0) for d in devices}) == 1)


def info(mesh_size: int = MESH_DEVICES) -> Info:
    """Describe the backend in use and where a mesh of `mesh_size` lives (starts JAX if needed)."""
    import jax

    mesh_size = validate.integer("mesh_size", mesh_size, 1)
    devices = jax.devices()
    try:
        mesh = mesh_devices(mesh_size)
    except ValueError:
        mesh = []
    return Info(
        platform=devices[0].platform,
        device_kind=devices[0].device_kind,
        device_count=len(devices),
        local_device_count=jax.local_device_count(),
        process_count=jax.process_count(),
        jax_version=jax.__version__,
        mesh_size=mesh_size,
        mesh_platform=mesh[0].platform if mesh else None,
        mesh_shares_host=shares_one_host(mesh),
        cpu_device_count=len(jax.devices("cpu")),
    )


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MAX_PROCESSES = 64  # local processes `launch` starts at most: each is a whole JAX runtime


def launch(
    argv: Sequence[str], processes: int, cpu_devices: int = 2, timeout_s: float = 300.0
) -> list[str]:
    """Run `python *argv` as `processes` local processes joined by `jax.distributed`; return stdouts.

    Each child must call `setup(cpu_devices)` before using JAX (that joins the runtime). Children
    talk over loopback with gloo collectives, so this needs no accelerator. Every argument is checked
    before any process starts. A child that fails makes the whole launch raise `RuntimeError`
    carrying its stderr, as does a launch still running after `timeout_s`; either way every child
    still running is killed and waited for.

    Args:
        argv: the script and its arguments, for `python`.
        processes: how many processes (1 to 64).
        cpu_devices: simulated CPU devices per process.
        timeout_s: seconds the whole launch may take.
    """
    validate.instance("argv", argv, (list, tuple), "a list of strings")
    for i, arg in enumerate(argv):
        validate.string(f"argv[{i}]", arg, empty=True)
    validate.integer("processes", processes, 1, MAX_PROCESSES)
    validate.integer("cpu_devices", cpu_devices, 1)
    validate.positive("timeout_s", timeout_s)
    address = f"127.0.0.1:{free_port()}"
    children, logs = [], []
    try:
        for pid in range(processes):
            env = dict(os.environ)
            env.update({ENV_COORDINATOR: address, ENV_NUM_PROCESSES: str(processes), ENV_PROCESS_ID: str(pid)})
            env["JAX_PLATFORMS"] = "cpu"
            logs.append((tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")))
            children.append(subprocess.Popen([sys.executable, *argv], env=env, stdout=logs[-1][0],
                                             stderr=logs[-1][1]))
        codes = _wait(children, time.monotonic() + timeout_s)
        failures = [f"process {pid} exited {code}:\n{_read(logs[pid][1])[-2000:]}"
                    for pid, code in enumerate(codes) if code not in (None, 0)]
        if failures:
            raise RuntimeError("\n".join(failures))
        if None in codes:
            raise RuntimeError(f"process {codes.index(None)} of {processes} did not finish in {timeout_s} s")
        return [_read(out) for out, _ in logs]
    finally:
        for child in children:  # stopped by PID, whatever happened
            if child.poll() is None:
                child.kill()
            child.wait()
        for files in logs:
            for f in files:
                f.close()


def _wait(children: list, deadline: float) -> list:
    """Poll until every child exited, one exited non-zero, or `deadline`: their return codes (None: running)."""
    while True:
        codes = [child.poll() for child in children]
        if None not in codes or any(codes) or time.monotonic() > deadline:
            return codes
        time.sleep(0.05)


def _read(f) -> str:
    f.seek(0)
    return f.read()


def main() -> None:
    setup()
    print(info())


if __name__ == "__main__":
    main()
