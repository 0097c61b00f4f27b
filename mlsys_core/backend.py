"""Pick the machine before JAX starts, describe it, and join JAX's multi-process runtime.

On a TPU (Colab's "TPU v2" runtime) or a GPU JAX uses the real chips; on a plain CPU `setup()`
splits the host into `cpu_devices` simulated devices so that an 8-device mesh runs on a laptop.
JAX fixes the device count when its first backend starts, so `setup()` must come first.

`launch()` starts K local processes joined by `jax.distributed` over loopback (gloo collectives);
each child's `setup()` reads the coordinates `launch()` put in its environment and joins.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
from collections.abc import Sequence

from mlsys_core import validate

# Set by `launch()` in each child process; read by `setup()`.
ENV_COORDINATOR = "MLSYS_COORDINATOR"
ENV_NUM_PROCESSES = "MLSYS_NUM_PROCESSES"
ENV_PROCESS_ID = "MLSYS_PROCESS_ID"


@dataclasses.dataclass(frozen=True)
class Info:
    """What JAX runs on: `platform` is "cpu", "gpu" or "tpu"; counts are global (all processes)."""

    platform: str
    device_kind: str
    device_count: int
    local_device_count: int
    process_count: int
    jax_version: str

    def __str__(self) -> str:
        return (
            f"{self.platform}: {self.device_count} x {self.device_kind} "
            f"({self.local_device_count} local, {self.process_count} process"
            f"{'es' if self.process_count != 1 else ''}), jax {self.jax_version}"
        )


def _backend_started() -> bool:
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()


def setup(cpu_devices: int = 8) -> None:
    """Configure JAX before it starts: real TPU/GPU chips if present, else `cpu_devices` CPU devices.

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


def info() -> Info:
    """Describe the backend in use (starts JAX if it has not started yet)."""
    import jax

    devices = jax.devices()
    return Info(
        platform=devices[0].platform,
        device_kind=devices[0].device_kind,
        device_count=len(devices),
        local_device_count=jax.local_device_count(),
        process_count=jax.process_count(),
        jax_version=jax.__version__,
    )


def free_port() -> int:
    """A TCP port on loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(
    argv: Sequence[str], processes: int, cpu_devices: int = 2, timeout_s: float = 300.0
) -> list[str]:
    """Run `python *argv` as `processes` local processes joined by `jax.distributed`; return stdouts.

    Each child must call `setup(cpu_devices)` before using JAX (that joins the runtime). Children
    talk over loopback with gloo collectives, so this needs no accelerator. A child that fails makes
    the whole launch raise `RuntimeError` carrying its stderr.
    """
    validate.integer("processes", processes, 1)
    validate.integer("cpu_devices", cpu_devices, 1)
    address = f"127.0.0.1:{free_port()}"
    children = []
    for pid in range(processes):
        env = dict(os.environ)
        env.update({ENV_COORDINATOR: address, ENV_NUM_PROCESSES: str(processes), ENV_PROCESS_ID: str(pid)})
        env["JAX_PLATFORMS"] = "cpu"
        children.append(
            subprocess.Popen(
                [sys.executable, *argv], env=env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
        )
    outputs, failures = [], []
    for pid, child in enumerate(children):
        try:
            out, err = child.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            for c in children:
                c.kill()
            raise RuntimeError(f"process {pid} of {processes} did not finish in {timeout_s} s") from None
        outputs.append(out)
        if child.returncode != 0:
            failures.append(f"process {pid} exited {child.returncode}:\n{err[-2000:]}")
    if failures:
        raise RuntimeError("\n".join(failures))
    return outputs


def main() -> None:
    setup()
    print(info())


if __name__ == "__main__":
    main()
