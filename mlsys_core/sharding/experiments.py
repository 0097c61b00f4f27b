"""The notebook's experiments as pure functions: each builds, trains or times, and returns numbers.

Every random choice takes a seed; timings are medians after warm-up (`timing.time_steps`).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import PartitionSpec as P

from mlsys_core import data

from . import inspection, models, optimizers, spmd, strategies, timing


def digits_split(seed: int = 0, test_size: int = 360):
    """(x_train, y_train, x_test, y_test) from the UCI digits, split by a seeded permutation."""
    x, y = data.load_digits()
    if isinstance(test_size, bool) or not isinstance(test_size, (int, np.integer)) or not 1 <= test_size < len(x):
        raise ValueError(f"test_size must be an int in 1..{len(x) - 1}, got {test_size!r}")
    order = np.random.default_rng(seed).permutation(len(x))
    train, test = order[:-test_size], order[-test_size:]
    return x[train], y[train], x[test], y[test]


def epoch_batches(x, y, batch: int, steps: int, seed: int = 0):
    """`steps` batches of `batch` examples, reshuffling each pass over (x, y) with `seed`."""
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    rng = np.random.default_rng(seed)
    out, order = [], np.array([], dtype=np.int64)
    while len(out) < steps:
        while len(order) < batch:
            order = np.concatenate([order, rng.permutation(len(x))])
        idx, order = order[:batch], order[batch:]
        out.append((x[idx], y[idx]))
    return out


@dataclasses.dataclass(frozen=True)
class ConfigResult:
    """What one (devices, strategy, optimizer, width, dtype) setting costs per device and per step."""

    memory: inspection.MemoryPerDevice
    collective_bytes: dict
    step_ms: float
    params: int


def _ffn_step(model: models.FFNStack, params, host_batch, strategy: str, optimizer: str = "adam",
              devices: int = 8, grad_dtype=None):
    """The FFN stack's regression step under `strategy`: (trainer, placed state, placed batch, lowered step)."""
    trainer = strategies.Trainer(models.regression_loss(model), optimizers.make(optimizer, 1e-3),
                                 strategies.data_mesh(devices), strategy, grad_dtype=grad_dtype)
    state = trainer.init(params)
    placed = trainer.shard_batch(host_batch)
    return trainer, state, placed, trainer.lower(state, placed)


def measure_config(devices: int = 8, strategy: str = "wus", optimizer: str = "adam", width: int = 512,
                   grad_dtype: str = "float32", batch: int = 64, repeats: int = 5, seed: int = 0) -> ConfigResult:
    """Memory per device, collectives (as written, so bf16 shows) and median step time of the FFN stack.

    The model is `FFNStack(width, 4 * width, 4 blocks)` with a synthetic regression batch.
    """
    model = models.FFNStack(d_model=width, d_ff=4 * width, blocks=4)
    params = model.init(jax.random.key(seed))
    dtype = None if grad_dtype == "float32" else jnp.dtype(grad_dtype)
    host_batch = models.regression_batch(jax.random.key(seed + 1), batch, width)
    trainer, state, placed, lowered = _ffn_step(model, params, host_batch, strategy, optimizer, devices, dtype)
    compiled = lowered.compile()
    memory = inspection.memory_per_device(trainer, state, compiled)
    comm = inspection.bytes_by_kind(inspection.collectives(lowered))
    result, _ = timing.time_steps(compiled, state, placed, repeats=repeats)
    return ConfigResult(memory, comm, 1e3 * result.median_s, models.parameter_count(params))


def compare_strategies(loss_fn, optimizer, params, batches, devices: int = 8) -> dict:
    """Train with each strategy on `devices` devices; {strategy: (trainer, final state, losses)}."""
    out = {}
    for name in strategies.STRATEGIES:
        trainer = strategies.Trainer(loss_fn, optimizer, strategies.data_mesh(devices), name)
        state, losses = strategies.train(trainer, params, batches)
        out[name] = (trainer, state, losses)
    return out


def max_param_diff(a, b) -> float:
    """Largest absolute difference between two parameter pytrees."""
    return max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def profile_strategies(model: models.FFNStack, batch: int = 64, devices: int = 8, repeats: int = 5, seed: int = 0) -> dict:
    """Each strategy for `model` with Adam, compiled once: {strategy: (MemoryPerDevice, bytes by kind, StepTiming)}.

    The strategies' steps are timed interleaved (`timing.time_interleaved`), so a busy moment on a
    shared machine does not favour one of them.
    """
    params = model.init(jax.random.key(seed))
    host_batch = models.regression_batch(jax.random.key(seed + 1), batch, model.d_model)
    runs, info = {}, {}
    for name in strategies.STRATEGIES:
        trainer, state, placed, lowered = _ffn_step(model, params, host_batch, name, "adam", devices)
        compiled = lowered.compile()
        info[name] = (inspection.memory_per_device(trainer, state, compiled),
                      inspection.bytes_by_kind(inspection.collectives(compiled)))
        runs[name] = (compiled, state, placed)
    timings = timing.time_interleaved(runs, repeats=repeats)
    return {name: (*info[name], timings[name]) for name in strategies.STRATEGIES}


def time_mesh_shapes(shapes, width: int = 512, batch: int = 64, repeats: int = 5, seed: int = 0) -> dict:
    """Median step seconds of the digits-shaped MLP (64, width, 10) on (data, model) meshes."""
    model = models.MLP((64, width, 10))
    params = model.init(jax.random.key(seed))
    x, y = digits_split(seed)[:2]
    out = {}
    for shape in shapes:
        mp = spmd.ModelParallel(models.classifier_loss(model), optimizers.make("adam", 1e-3),
                                spmd.model_parallel_mesh(*shape), spmd.megatron_specs(model))
        p, opt = mp.init(params)
        step = mp.step_fn(opt)
        placed = mp.shard_batch((x[:batch], y[:batch]))

        def run(state, b):
            p, opt = state
            p, opt, loss = step(p, opt, b)
            return (p, opt), loss

        out[tuple(shape)], _ = timing.time_steps(run, (p, opt), placed, repeats=repeats)
    return out


def bf16_experiment(steps: int = 150, batch: int = 64, seed: int = 0) -> dict:
    """Digits MLP on 8 devices with WUS: float32 vs bfloat16 compute + bfloat16 gradient collectives.

    Returns test accuracy of each and the reduce-scatter bytes per device of each program as written.
    """
    x, y, xt, yt = digits_split(seed)
    model = models.MLP((64, 128, 10))
    params = model.init(jax.random.key(seed))
    batches = epoch_batches(x, y, batch, steps, seed)
    out = {}
    for name, dtype in (("float32", None), ("bfloat16", jnp.bfloat16)):
        compute = jnp.float32 if dtype is None else dtype
        trainer = strategies.Trainer(models.classifier_loss(model, compute), optimizers.make("adam", 1e-2),
                                     strategies.data_mesh(8), "wus", grad_dtype=dtype)
        state, losses = strategies.train(trainer, params, batches)
        rows = inspection.collectives(trainer.lower(state, trainer.shard_batch(batches[0])))
        out[name] = {
            "accuracy": float(models.accuracy(model, trainer.full_params(state), xt, yt)),
            "reduce_scatter_bytes": sum(r.bytes for r in rows if r.kind == "reduce-scatter"),
            "final_loss": losses[-1],
        }
    return out


def bn_group_experiment(group_sizes=(1, 2, 4, 8), per_replica_batch: int = 4, steps: int = 150, seed: int = 0) -> dict:
    """Test accuracy of the batch-norm MLP vs BN group size, 8 replicas of `per_replica_batch` each.

    Small per-replica batches give noisy statistics; averaging them over a group of g replicas is
    the paper's distributed batch norm. Evaluation uses the training set's population statistics.
    """
    x, y, xt, yt = digits_split(seed)
    bn = spmd.BatchNormMLP()
    params = bn.init(jax.random.key(seed))
    batches = epoch_batches(x, y, 8 * per_replica_batch, steps, seed)
    out = {}
    for g in group_sizes:
        trainer = strategies.Trainer(bn.loss("bn"), optimizers.make("adam", 1e-2), spmd.bn_mesh(8, g), "wus",
                                     data_axes=("group", "bn"))
        state, _ = strategies.train(trainer, params, batches)
        p = trainer.full_params(state)
        stats = bn.population_stats(p, x)
        predict = lambda q, v: jnp.argmax(bn.apply(q, v, stats=stats), axis=1)  # noqa: E731
        out[g] = spmd.distributed_accuracy(predict, p, xt, yt, strategies.data_mesh(8))
    return out


def calibrate_one_device(model: models.FFNStack, batch: int = 64, repeats: int = 5, seed: int = 0) -> tuple[float, float]:
    """Median seconds on one device of (forward+backward over `batch`, one full Adam update)."""
    params = model.init(jax.random.key(seed))
    host_batch = models.regression_batch(jax.random.key(seed + 1), batch, model.d_model)
    optimizer = optax.adam(1e-3)
    grad_fn = jax.jit(jax.grad(models.regression_loss(model)))
    grads = grad_fn(params, host_batch)

    @jax.jit
    def update(params, opt_state):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    fb, _ = timing.time_steps(lambda p, b: (p, grad_fn(p, b)), params, host_batch, repeats=repeats)
    up, _ = timing.time_steps(lambda s, _: (update(*s), 0.0), (params, optimizer.init(params)), None, repeats=repeats)
    return fb.median_s, up.median_s


def calibrate_collectives(n_params: int, devices: int = 8, repeats: int = 5) -> dict:
    """Median seconds of the gradient collectives for `n_params` float32 values on a `devices` mesh.

    {"replicated": all-reduce (psum), "wus": reduce-scatter + all-gather}: the communication terms
    of the cost model, measured on this machine's mesh.
    """
    mesh = strategies.data_mesh(devices)
    n = -(-n_params // devices) * devices
    x = jax.device_put(jnp.ones((devices, n), jnp.float32), jax.NamedSharding(mesh, P("data")))
    programs = {
        "replicated": lambda v: lax.psum(v[0], "data")[None],
        "wus": lambda v: lax.all_gather(lax.psum_scatter(v[0], "data", tiled=True), "data", tiled=True)[None],
    }
    out = {}
    for name, body in programs.items():
        fn = jax.jit(jax.shard_map(body, mesh=mesh, in_specs=P("data"), out_specs=P("data")))
        result, _ = timing.time_steps(lambda s, b: (s, fn(b)), None, x, repeats=repeats)
        out[name] = result.median_s
    return out
