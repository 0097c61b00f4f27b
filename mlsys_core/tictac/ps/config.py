"""One real-server experiment's settings, and how they travel to a child process on its command line.

`PSConfig` is what the coordinator, every server and every worker agree on; `to_argv(config)` spells it as
`--name=value` options and `from_argv(argv)` reads them back (with the process's role, the coordinator's
port, its index and the servers' ports), so a child builds the same config from its command line.
"""

from __future__ import annotations

import argparse
import dataclasses

from mlsys_core import validate

FAULTS = ("none", "swap")  # "swap": server 0 sends its first two transfers swapped, so the order check fails
ROLES = ("server", "worker")


@dataclasses.dataclass(frozen=True)
class PSConfig:
    """One real-server experiment: model graph, cluster size, emulated links and run length."""

    model: str = "cnn"  # a `models.MODELS` name
    mode: str = "train"  # "infer" (pulls only) or "train" (pulls and gradient pushes)
    workers: int = 2  # worker processes
    servers: int = 1  # server processes, 1-4
    placement: str = "round_robin"  # a `placement.PLACEMENTS` name
    bandwidth_gbps: float = 1.0  # Gbit/s, each server's link per direction, shared equally by the workers
    iterations: int = 4  # measured iterations per scheduler
    warmup: int = 2  # iterations run before them per scheduler
    seed: int = 0  # seeds the model, the batch and the random orders
    depth: int = 4  # the model's layers / blocks / modules
    width: int = 16  # the model's channel scale
    batch_size: int = 32  # images per worker and iteration
    chunk_bytes: int = 16384  # bytes per paced send
    timeout_s: float = 120.0  # s, bound on the whole run
    fault: str = "none"  # one of FAULTS

    def __post_init__(self) -> None:
        from mlsys_core.tictac.models import MODELS, MODES
        from mlsys_core.tictac.placement import PLACEMENTS

        validate.choice("model", self.model, MODELS)
        validate.choice("mode", self.mode, MODES)
        for name in ("workers", "iterations", "depth", "width", "batch_size", "chunk_bytes"):
            validate.integer(name, getattr(self, name), low=1)
        validate.integer("servers", self.servers, low=1, high=4)
        validate.choice("placement", self.placement, PLACEMENTS)
        validate.integer("warmup", self.warmup, low=0)
        validate.integer("seed", self.seed, low=0)
        validate.number("bandwidth_gbps", self.bandwidth_gbps, 0.0, 100.0, low_open=True)
        validate.positive("timeout_s", self.timeout_s)
        validate.choice("fault", self.fault, FAULTS)


@dataclasses.dataclass(frozen=True)
class ChildArgs:
    """What a child process reads from its command line."""

    role: str  # "server" or "worker"
    config: PSConfig  # the experiment
    port: int  # the coordinator's port
    ident: int  # the process's index among its role
    server_ports: tuple[int, ...]  # the servers' ports (workers only; empty for a server)


def to_argv(config: PSConfig) -> list[str]:
    """`config` as `--name=value` options, one per field."""
    return [f"--{k.replace('_', '-')}={v}" for k, v in dataclasses.asdict(config).items()]


def from_argv(argv: list[str] | None = None) -> ChildArgs:
    """A child's role, config, coordinator port, index and server ports from its options (default: sys.argv)."""
    parser = argparse.ArgumentParser(prog="python -m mlsys_core.tictac.ps",
                                     description="TicTac real parameter-server process")
    parser.add_argument("--role", choices=ROLES, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ident", type=int, required=True)
    parser.add_argument("--server-ports", default="")
    for field in dataclasses.fields(PSConfig):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default))
    ns = parser.parse_args(argv)
    values = {f.name: getattr(ns, f.name) for f in dataclasses.fields(PSConfig) if getattr(ns, f.name) is not None}
    ports = tuple(int(p) for p in ns.server_ports.split(",") if p)
    return ChildArgs(ns.role, PSConfig(**values), ns.port, ns.ident, ports)
