"""FL plans: a device part and a server part, generated in one version per device runtime.

Devices run old runtimes for months, so the server lowers a task's graph once per runtime version:
an op the runtime lacks is replaced by its older equivalent (`LOWERINGS`); if that is impossible the
runtime gets no plan, and its devices are rejected at check-in with the reason in telemetry.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate

# Ops each runtime version can execute (a new runtime adds ops; old ones never lose any).
RUNTIME_OPS = {
    1: frozenset({"matmul", "add", "relu", "exp", "log", "sum", "mul", "sub", "div", "max"}),
    2: frozenset({"matmul", "add", "relu", "exp", "log", "sum", "mul", "sub", "div", "max", "softmax", "tanh"}),
    3: frozenset({"matmul", "add", "relu", "exp", "log", "sum", "mul", "sub", "div", "max", "softmax", "tanh",
                  "dense"}),
    4: frozenset({"matmul", "add", "relu", "exp", "log", "sum", "mul", "sub", "div", "max", "softmax", "tanh",
                  "dense", "softmax_xent"}),
    5: frozenset({"matmul", "add", "relu", "exp", "log", "sum", "mul", "sub", "div", "max", "softmax", "tanh",
                  "dense", "softmax_xent", "fused_sgd"}),
}

# A newer op -> the older ops that compute the same thing ("tanh" and "fused_sgd" have none).
LOWERINGS = {
    "dense": ("matmul", "add"),
    "softmax_xent": ("softmax", "log", "mul", "sum"),
    "softmax": ("max", "sub", "exp", "sum", "div"),
}


@dataclasses.dataclass(frozen=True)
class DevicePlan:
    """What a device runs: the graph's ops, data selection and batching."""

    ops: tuple[str, ...] = ("dense", "tanh", "dense", "softmax_xent")
    batch_size: int = 16
    epochs: int = 1
    learning_rate: float = 0.1

    def __post_init__(self):
        if not self.ops or not all(isinstance(o, str) for o in self.ops):
            raise ValueError(f"ops must be a non-empty tuple of op names, got {self.ops!r}")
        validate.integer("batch_size", self.batch_size, 1)
        validate.integer("epochs", self.epochs, 1)
        validate.number("learning_rate", self.learning_rate, 0.0, low_open=True)


@dataclasses.dataclass(frozen=True)
class ServerPlan:
    """How the server aggregates: FedAvg weighted by example counts; late updates recycled or not."""

    aggregation: str = "fedavg"
    recycle_late: bool = False

    def __post_init__(self):
        validate.choice("aggregation", self.aggregation, ("fedavg",))
        validate.boolean("recycle_late", self.recycle_late)


@dataclasses.dataclass(frozen=True)
class FLPlan:
    task: str
    version: int
    runtime_version: int
    device: DevicePlan
    server: ServerPlan


def lower(ops: tuple[str, ...], supported: frozenset) -> tuple[str, ...] | None:
    """Rewrite `ops` using only `supported` ops (recursively through `LOWERINGS`); None if impossible."""
    out: list[str] = []
    for op in ops:
        if op in supported:
            out.append(op)
        elif op in LOWERINGS:
            sub = lower(LOWERINGS[op], supported)
            if sub is None:
                return None
            out.extend(sub)
        else:
            return None
    return tuple(out)


def generate_versioned_plans(task: str, version: int, device: DevicePlan, server: ServerPlan,
                             runtime_ops: dict[int, frozenset] = RUNTIME_OPS) -> dict[int, FLPlan]:
    """One plan per runtime version that can run the task (after lowering), keyed by runtime version.

    Args:
        task: the task's name.
        version: the plan's version.
        device: the device part (its ops are lowered per runtime).
        server: the server part.
        runtime_ops: runtime version -> the ops it supports.
    """
    validate.string("task", task)
    validate.integer("version", version, 0)
    validate.instance("device", device, DevicePlan, "a plans.DevicePlan")
    validate.instance("server", server, ServerPlan, "a plans.ServerPlan")
    plans = {}
    for runtime, ops in sorted(runtime_ops.items()):
        lowered = lower(device.ops, ops)
        if lowered is not None:
            plans[runtime] = FLPlan(task, version, runtime, dataclasses.replace(device, ops=lowered), server)
    return plans


def supported_devices(plans: dict[int, FLPlan], runtime_version: np.ndarray) -> np.ndarray:
    """Boolean mask: which devices (by runtime version array) have a plan."""
    return np.isin(runtime_version, np.fromiter(plans, dtype=np.int64, count=len(plans)))
