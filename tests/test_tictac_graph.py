"""Op DAGs: validation, dependency bitsets, and graphs traced from real JAX programs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_core.tictac import jaxgraph, models
from mlsys_core.tictac.graph import OpGraph, random_graph


def _graph(src, dst, n_recv=2, n_compute=2):
    return OpGraph(np.ones(n_recv), np.ones(n_compute), np.array(src), np.array(dst))


def test_cycle_is_rejected():
    with pytest.raises(ValueError, match="cycle"):
        _graph([0, 2, 3, 1], [2, 3, 2, 3])


def test_compute_op_without_recv_path_is_rejected():
    # op 3 has no inputs at all
    with pytest.raises(ValueError, match="no path from any recv"):
        _graph([0, 1], [2, 2])


def test_edge_into_recv_and_bad_ids_are_rejected():
    with pytest.raises(ValueError, match="into recv"):
        _graph([2, 0, 1], [0, 2, 3])
    with pytest.raises(ValueError, match=r"src must hold values in \[0, 3\]; src\[1\] is 9"):
        _graph([0, 9], [2, 3])
    with pytest.raises(ValueError, match="recv_bytes"):
        OpGraph(np.array([-1.0]), np.ones(1), np.array([0]), np.array([1]))


@pytest.mark.parametrize("field, bad, error, said", [
    ("src", [0.5, 1], ValueError, r"src must hold whole numbers; src\[0\] is 0.5"),
    ("src", [[0], [1]], ValueError, r"src must have 1 dimension, got shape \(2, 1\)"),
    ("dst", "text", TypeError, "dst must be an array of numbers"),
    ("recv_bytes", None, TypeError, "recv_bytes must be an array of numbers"),
    ("compute_flops", [1.0, np.inf], ValueError, r"compute_flops must hold finite numbers"),
    ("gradient_op", [True, False], TypeError, "gradient_op must be an array of numbers"),
    ("name", None, TypeError, "name must be a string, got None"),
])
def test_graph_arrays_are_checked_by_the_shared_validator(field, bad, error, said):
    """A fractional node id used to be truncated, a bool taken for 0/1 and a 2-D src flattened into a cycle."""
    args = {"recv_bytes": [1.0, 1.0], "compute_flops": [1.0, 1.0], "src": [0, 1], "dst": [2, 3],
            "gradient_op": [0, 1]}
    with pytest.raises(error, match=said):
        OpGraph(**(args | {field: bad}))


def _reach_bruteforce(g):
    reach = np.zeros((g.n_nodes, g.n_recv), bool)
    reach[np.arange(g.n_recv), np.arange(g.n_recv)] = True
    for v in g.topo:
        for s, d in zip(g.src, g.dst):
            if d == v:
                reach[v] |= reach[s]
    return reach


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 70), st.integers(1, 40), st.integers(0, 10_000))
def test_deps_bitsets_match_reachability(n_recv, n_compute, seed):
    g = random_graph(n_recv, n_compute, seed=seed)
    bits = np.unpackbits(g.deps.view(np.uint8), axis=1, bitorder="little")[:, :n_recv].astype(bool)
    np.testing.assert_array_equal(bits, _reach_bruteforce(g))


def test_nested_jit_custom_jvp_custom_vjp_and_remat_are_flattened():
    @jax.custom_vjp
    def clip_grad(x):
        return jnp.sin(x)

    clip_grad.defvjp(lambda x: (jnp.sin(x), x), lambda x, g: (g * jnp.cos(x),))

    def f(p, x):
        h = jax.jit(lambda a, b: jax.nn.relu(a @ b))(x, p["w"])  # jit + custom_jvp (relu)
        h = jax.checkpoint(lambda a: jnp.tanh(a) * p["s"])(h)
        return clip_grad(h).sum()

    p = {"w": jnp.ones((3, 4)), "s": jnp.float32(2.0)}
    x = jnp.arange(6.0).reshape(2, 3) / 6
    for fn in (f, jax.value_and_grad(f)):
        prog = jaxgraph.trace(fn, p, x)
        names = {e.primitive.name for e in prog.eqns}
        assert not names & set(jaxgraph.INLINED), names
        out, _ = jaxgraph.run_eager(prog, jax.tree_util.tree_leaves(p), x)
        jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5), out, fn(p, x))


def test_recvs_are_parameter_leaves_with_bytes_and_dot_flops():
    fn, params, inputs = models.program("mlp", "infer", depth=2, width=4, batch_size=8)
    prog = jaxgraph.trace(fn, params, *inputs)
    g = jaxgraph.to_graph(prog)
    leaves = jax.tree_util.tree_leaves(params)
    assert g.n_recv == len(leaves) == 6
    np.testing.assert_array_equal(g.recv_bytes, [leaf.size * 4 for leaf in leaves])
    dots = [f for f, n in zip(g.compute_flops, g.compute_names) if n == "dot_general"]
    assert sorted(dots) == sorted([2 * 8 * 64 * 64, 2 * 8 * 64 * 64, 2 * 8 * 64 * 10])
    assert all("'" in name for name in g.recv_names)


@pytest.mark.parametrize("model", models.CLAIM_MODELS)
def test_models_trace_to_valid_forward_and_training_graphs(model):
    fn, params, inputs = models.program(model, "train", depth=2, width=8, batch_size=4)
    train = jaxgraph.to_graph(jaxgraph.trace(fn, params, *inputs))
    infer = jaxgraph.to_graph(jaxgraph.trace(*models.program(model, "infer", depth=2, width=8, batch_size=4)[:2],
                                             inputs[0]))
    assert train.n_recv == infer.n_recv == len(jax.tree_util.tree_leaves(params))
    assert train.n_compute > 2 * infer.n_compute  # the backward pass
    assert train.compute_flops.sum() > 2 * infer.compute_flops.sum()
    # every parameter is needed by the loss, so the last ops depend on every recv
    assert (np.bitwise_count(train.deps).sum(axis=1) == train.n_recv).any()


def test_training_program_runs_eagerly_to_jax_value_and_grad():
    fn, params, inputs = models.program("mlp", "train", depth=2, width=4, batch_size=4)
    prog = jaxgraph.trace(fn, params, *inputs)
    (loss, grads), seconds = jaxgraph.run_eager(prog, jax.tree_util.tree_leaves(params), *inputs, timings=True)
    ref_loss, ref_grads = fn(params, *inputs)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-4)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5), grads, ref_grads)
    assert seconds.shape == (len(prog.eqns),) and (seconds > 0).all()


def test_unknown_model_and_mode_are_rejected():
    with pytest.raises(ValueError, match="model must be one of"):
        models.init("vgg")
    with pytest.raises(ValueError, match="mode must be one of"):
        models.program("mlp", "serve")
    with pytest.raises(ValueError, match=r"batch_size must be in \[1, 1797\], got 5000"):
        models.program("mlp", "infer", batch_size=5000)


def test_a_training_graph_names_the_op_that_produces_each_gradient():
    fn, params, inputs = models.program("mlp", "train", depth=3, width=4, batch_size=4)
    prog = jaxgraph.trace(fn, params, *inputs)
    n = len(prog.param_vars)
    g = jaxgraph.to_graph(prog, gradient_outputs=range(1, 1 + n))
    assert g.has_gradients and (g.gradient_op >= 0).all() and np.unique(g.gradient_op).size == n
    keep = np.flatnonzero(jaxgraph.param_dependent(prog))
    values = dict(zip(prog.param_vars, jax.tree_util.tree_leaves(params)))
    values.update(zip(prog.input_vars, jax.tree_util.tree_leaves(inputs)))
    for eqn in prog.eqns:
        jaxgraph.run_eqn(eqn, values)
    _, ref = fn(params, *inputs)
    for r, leaf in enumerate(jax.tree_util.tree_leaves(ref)):
        eqn = prog.eqns[keep[g.gradient_op[r]]]
        out = [v for v in eqn.outputs if ("v", v) == prog.outputs[1 + r]]
        assert len(out) == 1  # the named op writes this gradient ...
        np.testing.assert_allclose(values[out[0]], leaf, rtol=1e-3, atol=1e-6)  # ... and it is the gradient
    # backprop: the first hidden layer's weight gradient comes after the last one's; every gradient needs all recvs
    names = list(g.recv_names)
    assert g.gradient_op[names.index("['layers'][0]['w']")] > g.gradient_op[names.index("['layers'][2]['w']")]
    assert (np.bitwise_count(g.deps[g.n_recv + g.gradient_op]).sum(axis=1) == n).all()
    assert not jaxgraph.to_graph(prog).has_gradients
    with pytest.raises(ValueError, match="gradient_outputs"):
        jaxgraph.to_graph(prog, gradient_outputs=range(2, 2 + n))  # past the last output
    with pytest.raises(ValueError, match="gradient_op"):
        OpGraph([1.0, 1.0], [1.0], [0, 1], [2, 2], gradient_op=[0, 1])


def test_random_graphs_and_model_batches_check_their_seeds_and_sizes():
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        random_graph(3, 4, seed=-1)
    with pytest.raises(ValueError, match="max_preds must be >= 1, got 0"):
        random_graph(3, 4, max_preds=0)
    with pytest.raises(ValueError, match="gradients=True needs n_compute >= 1"):
        random_graph(3, 0, gradients=True)  # used to fail inside rng.integers(0, 0)
    with pytest.raises(TypeError, match="seed must be an int, got 0.5"):
        models.batch(4, seed=0.5)


def test_tracing_checks_its_function_and_program():
    with pytest.raises(TypeError, match="fn must be callable, got 'apply'"):
        jaxgraph.trace("apply", {})
    with pytest.raises(TypeError, match=r"program must be a jaxgraph.FlatProgram \(from `trace`\), got 'mlp'"):
        jaxgraph.to_graph("mlp")
    fn, params, inputs = models.program("mlp", depth=1, width=1, batch_size=2)
    with pytest.raises(ValueError, match="repeats must be >= 1, got 0"):
        jaxgraph.measured_seconds(jaxgraph.trace(fn, params, *inputs), params, inputs, repeats=0)


def test_every_model_is_a_named_object_and_a_new_one_traces_like_the_rest(monkeypatch):
    """`MODELS` maps each name to its object; `program` of a model added to it is traced like the bundled ones."""
    import dataclasses

    assert all(m.name == name for name, m in models.MODELS.items())
    assert set(models.CLAIM_MODELS) | set(models.BRANCHING_MODELS) == set(models.MODELS)

    @dataclasses.dataclass(frozen=True)
    class Linear(models.Model):
        name: str = "linear"

        def init(self, rng, depth, width):
            return {"head": {"w": rng.standard_normal((64, 10)).astype(np.float32), "b": np.zeros(10, np.float32)}}

        def apply(self, params, x):
            return x.reshape(x.shape[0], -1) @ params["head"]["w"] + params["head"]["b"]

    monkeypatch.setitem(models.MODELS, "linear", Linear())
    fn, params, inputs = models.program("linear", "train", batch_size=4)
    g = jaxgraph.to_graph(jaxgraph.trace(fn, params, *inputs), gradient_outputs=(1, 2))
    assert g.n_recv == 2 and g.recv_bytes.tolist() == [40.0, 2560.0]  # b then w: leaves in key order
    assert (g.gradient_op >= 0).all()
