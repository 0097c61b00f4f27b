"""Op DAGs from real JAX programs: trace with `jax.make_jaxpr`, flatten, estimate FLOPs, run eagerly.

`trace(fn, params, *inputs)` flattens the jaxpr of `fn(params, *inputs)` into a `FlatProgram`: one
`FlatEqn` per primitive, with the bodies of nested `jit`, `custom_jvp_call`, `custom_vjp_call`,
`closed_call` and `remat` inlined (control flow such as `scan` stays one op). `to_graph` turns it into
an `OpGraph`: each parameter leaf is a recv op carrying its bytes, each equation that (transitively)
reads a parameter is a compute op with a FLOP estimate. Equations that read only the input batch or
constants need no transfer and can run before any recv arrives, so they are left out of the DAG.
`run_eager` executes the flat program one primitive at a time — the real worker and the measured
time oracle (`measured_seconds`) use it.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from mlsys_core import validate
from mlsys_core.tictac.graph import OpGraph

INLINED = ("jit", "pjit", "custom_jvp_call", "custom_vjp_call", "custom_vjp_call_jaxpr", "closed_call",
           "core_call", "remat2", "checkpoint")
# Memory-bound or bookkeeping primitives: one unit of work per output element.
_REDUCTIONS = ("reduce_sum", "reduce_max", "reduce_min", "reduce_prod", "argmax", "argmin",
               "reduce_and", "reduce_or", "cumsum", "cumprod", "cummax", "reduce_precision")


@dataclasses.dataclass(frozen=True, eq=False)
class FlatEqn:
    """One primitive application. `inputs` holds ("v", var id) or ("c", constant value) pairs."""

    primitive: object  # the JAX primitive
    params: dict  # its parameters
    inputs: tuple  # ("v", var id) or ("c", constant value) per operand
    outputs: tuple[int, ...]  # var ids of its results
    flops: float  # estimated FLOPs (`estimate_flops`)


@dataclasses.dataclass(frozen=True, eq=False)
class FlatProgram:
    """A jaxpr flattened to primitives. `param_vars[i]` is the var id of parameter leaf i."""

    param_vars: tuple[int, ...]  # var id of each parameter leaf
    param_names: tuple[str, ...]  # each leaf's key path
    param_bytes: tuple[int, ...]  # bytes of each leaf
    input_vars: tuple[int, ...]  # var ids of the other inputs' leaves
    eqns: tuple[FlatEqn, ...]  # the primitives in program order
    outputs: tuple  # ("v", var id) or ("c", value) per flat output
    out_tree: object  # the outputs' pytree structure


def _size(aval) -> int:
    return int(math.prod(aval.shape)) if hasattr(aval, "shape") else 1


def estimate_flops(name: str, in_avals, out_avals, params) -> float:
    """FLOPs of one primitive: 2·M·N·K for dot_general, 2·out·(kernel taps × in-channels) for
    convolutions, input size for reductions, output size (one op per element) otherwise.

    Args:
        name: the primitive's name.
        in_avals: the operands' abstract values (shapes).
        out_avals: the results' abstract values.
        params: the primitive's parameters (dimension numbers).
    """
    out = sum(_size(a) for a in out_avals)
    if name == "dot_general":
        (lhs_contract, _), _ = params["dimension_numbers"]
        k = math.prod(in_avals[0].shape[d] for d in lhs_contract)
        return 2.0 * out * k
    if name == "conv_general_dilated":
        rhs = in_avals[1].shape
        out_feature_dim = params["dimension_numbers"].rhs_spec[0]
        return 2.0 * out * math.prod(rhs) / rhs[out_feature_dim]
    if name in _REDUCTIONS:
        return float(_size(in_avals[0]))
    return float(max(out, 1))


def _sub_jaxpr(eqn):
    """(jaxpr, consts) of an inlinable equation's body."""
    sub = eqn.params.get("jaxpr", eqn.params.get("call_jaxpr"))
    if hasattr(sub, "jaxpr"):
        return sub.jaxpr, list(sub.consts)
    return sub, []


def _is_literal(atom) -> bool:
    return type(atom).__name__ == "Literal"


def _flatten(jaxpr, consts, env, eqns, counter):
    """Append `jaxpr`'s primitives to `eqns`; `env` maps its Vars to ("v", id) / ("c", value)."""

    def read(atom):
        return ("c", atom.val) if _is_literal(atom) else env[atom]

    for var, value in zip(jaxpr.constvars, consts):
        env[var] = ("c", value)
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name in INLINED and (eqn.params.get("jaxpr") is not None or eqn.params.get("call_jaxpr") is not None):
            body, body_consts = _sub_jaxpr(eqn)
            if len(body.invars) != len(eqn.invars):
                raise ValueError(f"cannot inline {name}: {len(eqn.invars)} operands for {len(body.invars)} inputs")
            inner = dict(zip(body.invars, map(read, eqn.invars)))
            _flatten(body, body_consts, inner, eqns, counter)
            for outer, inner_out in zip(eqn.outvars, body.outvars):
                env[outer] = ("c", inner_out.val) if _is_literal(inner_out) else inner[inner_out]
            continue
        outputs = []
        for var in eqn.outvars:
            counter[0] += 1
            env[var] = ("v", counter[0])
            outputs.append(counter[0])
        if name in ("scan", "while", "cond"):
            flops = _control_flow_flops(eqn)
        else:
            flops = estimate_flops(name, [a.aval for a in eqn.invars], [v.aval for v in eqn.outvars], eqn.params)
        eqns.append(FlatEqn(eqn.primitive, dict(eqn.params), tuple(read(a) for a in eqn.invars),
                            tuple(outputs), flops))


def _control_flow_flops(eqn) -> float:
    """Work of a control-flow op: its bodies' FLOPs (a scan's times its length)."""
    total = 0.0
    for sub in (eqn.params.get("jaxpr"), eqn.params.get("body_jaxpr"), *eqn.params.get("branches", ())):
        if sub is None:
            continue
        body = sub.jaxpr if hasattr(sub, "jaxpr") else sub
        part: list[FlatEqn] = []
        _flatten(body, list(getattr(sub, "consts", [])), {v: ("v", -1) for v in body.invars}, part, [0])
        total += sum(e.flops for e in part)
    return total * eqn.params.get("length", 1)


def trace(fn, params, *inputs) -> FlatProgram:
    """Trace `fn(params, *inputs)` and flatten it to primitives (see the module docstring)."""
    import jax

    validate.callable_("fn", fn)
    leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(params, *inputs)
    jaxpr = closed.jaxpr
    n = len(leaves)
    env, eqns, counter = {}, [], [0]
    ids = []
    for var in jaxpr.invars:
        counter[0] += 1
        env[var] = ("v", counter[0])
        ids.append(counter[0])
    _flatten(jaxpr, list(closed.consts), env, eqns, counter)
    outputs = tuple(("c", a.val) if _is_literal(a) else env[a] for a in jaxpr.outvars)
    return FlatProgram(
        param_vars=tuple(ids[:n]),
        param_names=tuple(jax.tree_util.keystr(path) for path, _ in leaves),
        param_bytes=tuple(int(np.asarray(leaf).nbytes) for _, leaf in leaves),
        input_vars=tuple(ids[n:]),
        eqns=tuple(eqns),
        outputs=outputs,
        out_tree=jax.tree_util.tree_structure(out_shape),
    )


def param_dependent(program: FlatProgram) -> np.ndarray:
    """Boolean mask over `program.eqns`: True where an equation reads a parameter, transitively."""
    tainted = set(program.param_vars)
    mask = np.zeros(len(program.eqns), dtype=bool)
    for i, eqn in enumerate(program.eqns):
        if any(kind == "v" and v in tainted for kind, v in eqn.inputs):
            mask[i] = True
            tainted.update(eqn.outputs)
    return mask


def to_graph(program: FlatProgram, name: str = "jax program", gradient_outputs=None) -> OpGraph:
    """The OpGraph of a flat program: recvs = parameter leaves, compute ops = parameter-dependent eqns.

    `gradient_outputs`: positions in the program's flat outputs of each parameter leaf's gradient, in
    leaf order (for `jax.value_and_grad`, outputs 1..n_params); the graph then records the compute op
    that produces each gradient (`OpGraph.gradient_op`), so a simulated worker can push it back.
    """
    validate.instance("program", program, FlatProgram, "a jaxgraph.FlatProgram (from `trace`)")
    n_recv = len(program.param_vars)
    producer = {v: r for r, v in enumerate(program.param_vars)}
    keep = np.flatnonzero(param_dependent(program))
    src, dst = [], []
    for k, i in enumerate(keep):
        node = n_recv + k
        eqn = program.eqns[i]
        preds = {producer[v] for kind, v in eqn.inputs if kind == "v" and v in producer}
        src.extend(preds)
        dst.extend([node] * len(preds))
        for out in eqn.outputs:
            producer[out] = node
    gradient_op = ()
    if gradient_outputs is not None:
        positions = list(gradient_outputs)
        if len(positions) != n_recv or not all(0 <= k < len(program.outputs) for k in positions):
            raise ValueError(f"gradient_outputs must name {n_recv} output positions in [0, {len(program.outputs)}), "
                             f"got {positions!r}")
        node_of = [producer.get(v, -1) if kind == "v" else -1 for kind, v in (program.outputs[k] for k in positions)]
        gradient_op = np.array([node - n_recv if node >= n_recv else -1 for node in node_of], dtype=np.int64)
    return OpGraph(
        recv_bytes=np.array(program.param_bytes, dtype=np.float64),
        compute_flops=np.array([program.eqns[i].flops for i in keep]),
        src=np.array(src, dtype=np.int64),
        dst=np.array(dst, dtype=np.int64),
        recv_names=program.param_names,
        compute_names=tuple(program.eqns[i].primitive.name for i in keep),
        name=name,
        gradient_op=gradient_op,
    )


def run_eqn(eqn: FlatEqn, values: dict) -> None:
    """Apply one primitive eagerly; store its outputs in `values` (var id -> array)."""
    args = [values[v] if kind == "v" else v for kind, v in eqn.inputs]
    out = eqn.primitive.bind(*args, **eqn.primitive.get_bind_params(eqn.params))
    if not eqn.primitive.multiple_results:
        out = [out]
    for var, value in zip(eqn.outputs, out):
        values[var] = value


def run_eager(program: FlatProgram, param_leaves, *inputs, timings: bool = False) -> tuple:
    """Execute the flat program one primitive at a time. Returns (outputs, per-eqn seconds or None).

    Args:
        program: the flat program (`trace`).
        param_leaves: the parameters' leaves, in `program.param_vars` order.
        *inputs: the program's other inputs.
        timings: block on each primitive and time it (s).
    """
    import jax

    values = dict(zip(program.param_vars, param_leaves))
    values.update(zip(program.input_vars, jax.tree_util.tree_leaves(inputs)))
    seconds = np.zeros(len(program.eqns)) if timings else None
    for i, eqn in enumerate(program.eqns):
        start = time.perf_counter()
        run_eqn(eqn, values)
        if timings:
            jax.block_until_ready([values[v] for v in eqn.outputs])
            seconds[i] = time.perf_counter() - start
    outs = [values[v] if kind == "v" else v for kind, v in program.outputs]
    return jax.tree_util.tree_unflatten(program.out_tree, outs), seconds


def measured_seconds(program: FlatProgram, params, inputs, repeats: int = 3) -> np.ndarray:
    """A measured time oracle: per compute op of `to_graph(program)`, the fastest of `repeats` eager
    runs on this machine (after one discarded run that compiles every primitive), in seconds.

    Args:
        program: the flat program (`trace`).
        params: its parameters (a pytree).
        inputs: its other inputs (a tuple).
        repeats: timed runs (>= 1).
    """
    import jax

    validate.instance("program", program, FlatProgram, "a jaxgraph.FlatProgram (from `trace`)")
    validate.integer("repeats", repeats, 1)
    leaves = jax.tree_util.tree_leaves(params)
    runs = np.stack([run_eager(program, leaves, *inputs, timings=True)[1] for _ in range(repeats + 1)][1:])
    return runs.min(axis=0)[param_dependent(program)]
