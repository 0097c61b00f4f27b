"""Make the invisible visible: which collectives a step runs, and what each device holds in memory.

`collectives` reads HLO text - XLA's optimised program (`jit(f).lower(...).compile()`) or the program
as written (`jit(f).lower(...)`) - and returns one row per collective with its result's dtype, shape
and bytes per device. Compare both for bfloat16: XLA:CPU promotes bf16 reductions to f32 (its
reduction regions are suffixed `_promoted`), TPUs and GPUs keep them in bf16.
"""

from __future__ import annotations

import dataclasses
import math
import re

import jax
import numpy as np
from jax.sharding import PartitionSpec as P

COLLECTIVE_KINDS = ("all-reduce", "reduce-scatter", "all-gather", "all-to-all", "collective-permute")
_DTYPE_BYTES = {"pred": 1, "s8": 1, "u8": 1, "f8e4m3fn": 1, "f8e5m2": 1, "bf16": 2, "f16": 2, "s16": 2,
                "u16": 2, "f32": 4, "s32": 4, "u32": 4, "f64": 8, "s64": 8, "u64": 8, "c64": 8, "c128": 16}
_LINE = re.compile(r"=\s+(\(.*?\)|[a-z0-9]+\[[0-9,]*\]\S*)\s+(" + "|".join(COLLECTIVE_KINDS) + r")(-start)?\(")
_ARRAY = re.compile(r"([a-z][a-z0-9]*)\[([0-9,]*)\]")
_GROUPS = re.compile(r"replica_groups=(?:\{\{([0-9,]*)\}|\[\d+,(\d+)\])")


@dataclasses.dataclass(frozen=True)
class Collective:
    """One collective's result on one device, as the HLO states it."""

    kind: str  # one of COLLECTIVE_KINDS
    dtype: str  # HLO element type ("f32", "bf16", ...)
    shape: tuple[int, ...]  # the result's shape on one device
    bytes: int  # the result's bytes on one device
    group_size: int | None = None  # devices taking part (None if the HLO does not say)

    @property
    def wire_bytes(self) -> float | None:
        """Bytes each device sends with the bandwidth-optimal ring algorithm, from the result size.

        all-reduce 2(n-1)/n x result; reduce-scatter (n-1) x result (its result is one shard);
        all-gather (n-1)/n x result. So reduce-scatter + all-gather move what one all-reduce does.
        """
        n = self.group_size
        if n is None or self.kind not in ("all-reduce", "reduce-scatter", "all-gather"):
            return None
        factor = {"all-reduce": 2 * (n - 1) / n, "reduce-scatter": n - 1, "all-gather": (n - 1) / n}[self.kind]
        return factor * self.bytes


def _hlo_text(program) -> str:
    """The HLO text of a Compiled or Lowered program (a string passes through)."""
    if isinstance(program, str):
        return program
    if isinstance(program, jax.stages.Lowered):
        return program.as_text(dialect="hlo")
    return program.as_text()


def collectives(program) -> list[Collective]:
    """Rows (kind, dtype, shape, bytes) for each collective in a Compiled, Lowered or HLO string.

    A combined collective (tuple result) gives one row per array. Async `*-start` ops count once
    (their `*-done` is skipped); for a start op whose tuple holds (operands, results), the results count.
    """
    rows = []
    for line in _hlo_text(program).splitlines():
        m = _LINE.search(line)
        if not m:
            continue
        arrays = [(d, tuple(int(s) for s in dims.split(",") if s)) for d, dims in _ARRAY.findall(m.group(1))]
        if m.group(3) and m.group(2) != "all-reduce" and len(arrays) > 1:
            arrays = arrays[len(arrays) // 2:]
        g = _GROUPS.search(line)
        group = None if g is None else (len(g.group(1).split(",")) if g.group(1) is not None else int(g.group(2)))
        for dtype, shape in arrays:
            rows.append(Collective(m.group(2), dtype, shape, _DTYPE_BYTES.get(dtype, 4) * math.prod(shape), group))
    return rows


def bytes_by_kind(rows: list[Collective]) -> dict[str, int]:
    """Total result bytes per device for each collective kind present."""
    out: dict[str, int] = {}
    for r in rows:
        out[r.kind] = out.get(r.kind, 0) + r.bytes
    return out


@dataclasses.dataclass(frozen=True)
class MemoryPerDevice:
    """Bytes one device holds between steps."""

    params_bytes: int  # its parameters (whole or its shard)
    opt_state_bytes: int  # its optimizer state
    grad_bytes: int  # its gradients after reduction (a full copy, or one block)
    temp_bytes: int | None = None  # XLA's temporary buffers of the step (None if not read)

    @property
    def total_bytes(self) -> int:
        """Parameters, optimizer state and gradients together."""
        return self.params_bytes + self.opt_state_bytes + self.grad_bytes


def _bytes_on_first_device(tree) -> int:
    """Sum over leaves of the bytes of the shard that the first addressable device holds."""
    total = 0
    for leaf in jax.tree.leaves(tree):
        shard = leaf.addressable_shards[0]
        total += math.prod(shard.data.shape) * np.dtype(leaf.dtype).itemsize
    return total


def memory_per_device(trainer, state, compiled=None) -> MemoryPerDevice:
    """Memory per device of a `strategies.Trainer` state, read from the arrays' shards.

    Every device holds the same amount (even shards), so the first device stands for all.
    Gradient bytes are those kept after reduction: a full copy (replicated) or one block (wus,
    fsdp; a leaf that stays whole counts whole). `compiled`, if given, adds XLA's temporary-buffer
    bytes from `memory_analysis()`.
    """
    _, leaves = state.layout
    n = trainer.num_shards
    # A leaf split along a dimension keeps 1/n of it; one no dimension of which n divides stays whole.
    grad = sum(math.prod(s) // (1 if trainer.update_spec(s) == P() else n) * np.dtype(d).itemsize
               for s, d in leaves)
    temp = None
    if compiled is not None and (analysis := compiled.memory_analysis()) is not None:
        temp = int(analysis.temp_size_in_bytes)
    return MemoryPerDevice(_bytes_on_first_device(state.params), _bytes_on_first_device(state.opt_state), grad, temp)


@dataclasses.dataclass(frozen=True)
class XlaMemory:
    """What XLA's buffer assignment gives one device for a compiled program (`memory_analysis()`)."""

    arguments_bytes: int  # the inputs: this device's params, optimizer state and batch
    outputs_bytes: int  # the outputs
    alias_bytes: int  # outputs written into donated inputs' buffers
    temporaries_bytes: int  # all the program allocates while it runs: gathered weights, activations, gradients
    xla_peak_bytes: int | None = None  # XLA's `peak_memory_in_bytes` if reported (XLA:CPU: the arguments)

    @property
    def peak_bytes(self) -> int:
        """Bytes a device needs at once: inputs + temporaries + the outputs not written in place.
        (Temporaries are one allocation for the whole program, so this is what the device must have.)"""
        return self.arguments_bytes + self.temporaries_bytes + self.outputs_bytes - self.alias_bytes


def xla_memory(compiled) -> XlaMemory:
    """`XlaMemory` of a `jax.stages.Compiled` (ValueError if the backend gives no memory analysis)."""
    analysis = compiled.memory_analysis()
    if analysis is None:
        raise ValueError("this backend's compiled program has no memory_analysis()")
    peak = getattr(analysis, "peak_memory_in_bytes", None)
    return XlaMemory(int(analysis.argument_size_in_bytes), int(analysis.output_size_in_bytes),
                     int(analysis.alias_size_in_bytes), int(analysis.temp_size_in_bytes),
                     None if peak is None else int(peak))


@dataclasses.dataclass(frozen=True)
class ScheduledOp:
    """One instruction of a compiled program's entry computation, in the order XLA scheduled it."""

    position: int  # its place in the schedule
    op: str  # "all-gather", "dot", ...; async collectives as "<kind>-start" and "<kind>-done"
    shape: tuple[int, ...]  # the result's shape
    backward: bool  # JAX's op_name says transpose: it belongs to the backward pass


_INSTR = re.compile(r"^\s*(?:ROOT\s+)?%\S+\s+=\s+(\(.*?\)|[a-z0-9]+\[[0-9,]*\]\S*)\s+([a-z-]+)\(")


def schedule(compiled, ops=(*COLLECTIVE_KINDS, "dot")) -> list[ScheduledOp]:
    """The collectives and matrix products of a compiled program's entry computation in XLA's
    schedule order (the printed order of a scheduled module). An async collective shows as its
    `-start` and `-done`: work scheduled between them can overlap the transfer."""
    text = _hlo_text(compiled)
    entry = text[text.index("\nENTRY"):]
    entry = entry[:entry.index("\n}")]
    wanted = set(ops) | {f"{k}-start" for k in ops} | {f"{k}-done" for k in ops}
    rows = []
    for position, line in enumerate(entry.splitlines()[1:]):
        m = _INSTR.match(line)
        if not m or m.group(2) not in wanted:
            continue
        arrays = _ARRAY.findall(m.group(1))
        shape = tuple(int(s) for s in arrays[-1][1].split(",") if s) if arrays else ()
        rows.append(ScheduledOp(position, m.group(2), shape, "transpose(" in line))
    return rows


def has_async_collectives(compiled) -> bool:
    """Whether the backend split any collective into start/done (so compute can run during it)."""
    return any(r.op.endswith("-start") for r in schedule(compiled))
