"""The notebook's experiments as pure functions: each builds, trains or times, and returns numbers.

Every random choice takes a seed; timings are medians after warm-up (`timing.time_steps`).
Meshes take their devices from `backend.mesh_devices` and default to `backend.MESH_DEVICES` of them.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import PartitionSpec as P

from mlsys_core import backend, data, timing, validate
from mlsys_core.claims.sharding import LINK_SWEEP, UTILISATION_SWEEP
from mlsys_core.seeds import DEFAULT_SEEDS

from . import cost_model, inspection, models, optimizers, spmd, strategies


@dataclasses.dataclass(frozen=True)
class ConfigResult:
    """What one (devices, strategy, optimizer, width, dtype) setting costs per device and per step."""

    memory: inspection.MemoryPerDevice
    collective_bytes: dict
    step_ms: float
    params: int


def _ffn_step(model: models.FFNStack, params, host_batch, strategy: str, optimizer: str = "adam",
              devices: int = backend.MESH_DEVICES, grad_dtype=None):
    """The FFN stack's regression step under `strategy`: (trainer, placed state, placed batch, lowered step)."""
    trainer = strategies.Trainer(models.regression_loss(model), optimizers.make(optimizer, 1e-3),
                                 strategies.data_mesh(devices), strategy, grad_dtype=grad_dtype)
    state = trainer.init(params)
    placed = trainer.shard_batch(host_batch)
    return trainer, state, placed, trainer.lower(state, placed)


def measure_config(devices: int = backend.MESH_DEVICES, strategy: str = "wus", optimizer: str = "adam",
                   width: int = 512, grad_dtype: str = "float32", batch: int = 64, repeats: int = 5,
                   seed: int = 0) -> ConfigResult:
    """Memory per device, collectives (as written, so bf16 shows) and median step time of the FFN stack.

    The model is `FFNStack(width, 4 * width, 4 blocks)` with a synthetic regression batch.
    """
    validate.seed("seed", seed)
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


class StrategyRun(NamedTuple):
    """One strategy's training: its trainer, final (sharded) state and the loss of every step."""

    trainer: strategies.Trainer
    state: strategies.TrainState
    losses: list[float]

    @property
    def params(self):
        """The final parameters, gathered whole (whatever the strategy's sharding)."""
        return self.trainer.full_params(self.state)


def compare_strategies(loss_fn, optimizer, params, batches,
                       devices: int = backend.MESH_DEVICES) -> dict[str, StrategyRun]:
    """Train with each strategy on `devices` devices, from the same parameters on the same batches."""
    out = {}
    for name in strategies.STRATEGIES:
        trainer = strategies.Trainer(loss_fn, optimizer, strategies.data_mesh(devices), name)
        out[name] = StrategyRun(trainer, *strategies.train(trainer, params, batches))
    return out


def max_param_diff(a, b) -> float:
    """Largest absolute difference between two parameter pytrees (on any devices: compared on the host)."""
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
               for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def _compiled_strategies(model: models.FFNStack, batch: int, devices: int, seed: int) -> tuple[dict, dict]:
    """Each strategy's FFN step with Adam, compiled once: ({name: (MemoryPerDevice, bytes by kind)},
    {name: (compiled step, state, placed batch)} ready for `timing.time_interleaved`)."""
    params = model.init(jax.random.key(seed))
    host_batch = models.regression_batch(jax.random.key(seed + 1), batch, model.d_model)
    runs, info = {}, {}
    for name in strategies.STRATEGIES:
        trainer, state, placed, lowered = _ffn_step(model, params, host_batch, name, "adam", devices)
        compiled = lowered.compile()
        info[name] = (inspection.memory_per_device(trainer, state, compiled),
                      inspection.bytes_by_kind(inspection.collectives(compiled)))
        runs[name] = (compiled, state, placed)
    return info, runs


class StrategyMeasure(NamedTuple):
    """One strategy's compiled step: memory per device, collective bytes by kind, and its step times."""

    memory: inspection.MemoryPerDevice
    collectives: dict[str, int]
    step_times: timing.StepTiming


def profile_strategies(model: models.FFNStack, batch: int = 64, devices: int = backend.MESH_DEVICES, repeats: int = 5,
                       seed: int = 0) -> dict[str, StrategyMeasure]:
    """Each strategy for `model` with Adam, compiled once and measured.

    The strategies' steps are timed interleaved (`timing.time_interleaved`), so a busy moment on a
    shared machine does not favour one of them.
    """
    validate.instance("model", model, models.FFNStack, "a models.FFNStack")
    validate.seed("seed", seed)
    info, runs = _compiled_strategies(model, batch, devices, seed)
    timings = timing.time_interleaved(runs, repeats=repeats)
    return {name: StrategyMeasure(*info[name], timings[name]) for name in strategies.STRATEGIES}


# The cost model's terms, as run names in `StrategyProfile.timings` (beside the strategies' steps).
MODEL_TERMS = ("forward_backward", "update", "all_reduce", "reduce_scatter_all_gather")


@dataclasses.dataclass(frozen=True)
class StrategyProfile:
    """Each strategy's memory per device, collective bytes and step times, and the cost model's terms,
    all timed in the same interleaved rounds (`timings`: one `StepTiming` per strategy and per
    `MODEL_TERMS` entry; repeat i of every run comes from round i).

    The terms: forward+backward over the whole batch and one full Adam update, each on one of the
    mesh's devices; the gradient's all-reduce and its reduce-scatter + all-gather on the mesh.
    `shared_host`: the mesh's devices share one host CPU (`backend.shares_one_host`), which selects
    the cost model that `predicted_step_s` uses (`cost_model_name`).
    """

    devices: int
    memory: dict
    collective_bytes: dict
    timings: dict
    shared_host: bool = True

    @property
    def cost_model_name(self) -> str:
        """The model behind `predicted_step_s`: "shared_host_step_s" or "side_by_side_step_s"."""
        return "shared_host_step_s" if self.shared_host else "side_by_side_step_s"

    @property
    def medians_ms(self) -> dict[str, float]:
        """Median milliseconds per step of each strategy."""
        return {s: 1e3 * self.timings[s].median_s for s in strategies.STRATEGIES}

    @property
    def measured_speedups(self) -> np.ndarray:
        """Per-round replicated / WUS step time."""
        return timing.ratios(self.timings["replicated"], self.timings["wus"])

    @property
    def predicted_step_s(self) -> dict[str, float]:
        """Seconds per step of replicated and WUS that the cost model predicts from the medians of the
        terms (all-reduce for replicated, reduce-scatter + all-gather for WUS): `shared_host_step_s`
        when the devices share one host, else `side_by_side_step_s` (devices that run in parallel)."""
        fb, up, ar, rsag = (self.timings[t].median_s for t in MODEL_TERMS)
        model = getattr(cost_model, self.cost_model_name)
        return {"replicated": model(fb, up, self.devices, "replicated", ar),
                "wus": model(fb, up, self.devices, "wus", rsag)}

    @property
    def predicted_speedup(self) -> float:
        """The cost model's replicated / WUS step time."""
        step = self.predicted_step_s
        return step["replicated"] / step["wus"]

    @property
    def measured_over_predicted(self) -> np.ndarray:
        """Per-round measured speed-up over the model's (1 = the model is exact)."""
        return self.measured_speedups / self.predicted_speedup


def profile_with_cost_model(model: models.FFNStack, batch: int = 16, devices: int = backend.MESH_DEVICES,
                            repeats: int = 9, seed: int = 0) -> StrategyProfile:
    """Profile every strategy (as `profile_strategies`) and time the cost model's terms in the same rounds.

    The one-device terms run on the mesh's first device. Whether the mesh's devices share one host's
    cores (simulated CPU devices: their work adds up) or run side by side (real chips) is recorded in
    `StrategyProfile.shared_host` and picks the model `predicted_step_s` uses.
    """
    validate.instance("model", model, models.FFNStack, "a models.FFNStack")
    validate.seed("seed", seed)
    mesh_devices = backend.mesh_devices(devices)
    info, runs = _compiled_strategies(model, batch, devices, seed)
    runs.update(_one_device_runs(model, batch, seed, mesh_devices[0]))
    n_params = models.parameter_count(jax.eval_shape(model.init, jax.random.key(seed)))
    collectives = _collective_runs(n_params, devices)
    runs["all_reduce"], runs["reduce_scatter_all_gather"] = collectives["replicated"], collectives["wus"]
    timings = timing.time_interleaved(runs, repeats=repeats)
    return StrategyProfile(devices, {n: m for n, (m, _) in info.items()}, {n: c for n, (_, c) in info.items()},
                           timings, backend.shares_one_host(mesh_devices))


def time_mesh_shapes(shapes, width: int = 512, batch: int = 64, repeats: int = 5, seed: int = 0) -> dict:
    """Median step seconds of the digits-shaped MLP (64, width, 10) on (data, model) meshes."""
    validate.seed("seed", seed)
    model = models.MLP((64, width, 10))
    params = model.init(jax.random.key(seed))
    x, y = data.digits_split(seed)[:2]
    out = {}
    for shape in shapes:
        mp = spmd.ModelParallel(models.classifier_loss(model), optimizers.make("adam", 1e-3),
                                spmd.model_parallel_mesh(*shape), spmd.megatron_specs(model))
        p, opt = mp.init(params)
        step = mp.step_fn(opt)
        placed = mp.shard_batch((x[:batch], y[:batch]))

        def run(state, b, step=step):
            p, opt = state
            p, opt, loss = step(p, opt, b)
            return (p, opt), loss

        out[tuple(shape)], _ = timing.time_steps(run, (p, opt), placed, repeats=repeats)
    return out


class PrecisionRun(NamedTuple):
    """One precision's WUS training of the digits MLP."""

    accuracy: float  # on the test split
    reduce_scatter_bytes: int  # per device, in the program as written
    final_loss: float


def bf16_experiment(steps: int = 150, batch: int = 64, seed: int = 0,
                    devices: int = backend.MESH_DEVICES) -> dict[str, PrecisionRun]:
    """Digits MLP on `devices` devices with WUS: float32 vs bfloat16 compute + bfloat16 gradient collectives
    ("float32", "bfloat16"): test accuracy and the reduce-scatter bytes per device of each program."""
    validate.seed("seed", seed)
    x, y, xt, yt = data.digits_split(seed)
    model = models.MLP((64, 128, 10))
    params = model.init(jax.random.key(seed))
    batches = data.epoch_batches(x, y, batch, steps, seed)
    out = {}
    for name, dtype in (("float32", None), ("bfloat16", jnp.bfloat16)):
        compute = jnp.float32 if dtype is None else dtype
        trainer = strategies.Trainer(models.classifier_loss(model, compute), optimizers.make("adam", 1e-2),
                                     strategies.data_mesh(devices), "wus", grad_dtype=dtype)
        state, losses = strategies.train(trainer, params, batches)
        rows = inspection.collectives(trainer.lower(state, trainer.shard_batch(batches[0])))
        out[name] = PrecisionRun(float(models.accuracy(model, trainer.full_params(state), xt, yt)),
                                 sum(r.bytes for r in rows if r.kind == "reduce-scatter"), losses[-1])
    return out


def bn_group_experiment(group_sizes=None, per_replica_batch: int = 4, steps: int = 150, seed: int = 0,
                        replicas: int = backend.MESH_DEVICES) -> dict:
    """Test accuracy of the batch-norm MLP vs BN group size, `replicas` of `per_replica_batch` each.

    `group_sizes` defaults to every divisor of `replicas` (1, 2, 4, 8 for 8 replicas).

    Small per-replica batches give noisy statistics; averaging them over a group of g replicas is
    the paper's distributed batch norm. Evaluation uses the training set's population statistics.
    """
    validate.seed("seed", seed)
    replicas = validate.integer("replicas", replicas, 1)
    if group_sizes is None:
        group_sizes = tuple(g for g in range(1, replicas + 1) if replicas % g == 0)
    x, y, xt, yt = data.digits_split(seed)
    bn = spmd.BatchNormMLP()
    params = bn.init(jax.random.key(seed))
    batches = data.epoch_batches(x, y, replicas * per_replica_batch, steps, seed)
    out = {}
    for g in group_sizes:
        trainer = strategies.Trainer(bn.loss("bn"), optimizers.make("adam", 1e-2), spmd.bn_mesh(replicas, g), "wus",
                                     data_axes=("group", "bn"))
        state, _ = strategies.train(trainer, params, batches)
        p = trainer.full_params(state)
        stats = bn.population_stats(p, x)
        def predict(q, v, stats=stats):
            return jnp.argmax(bn.apply(q, v, stats=stats), axis=1)

        out[g] = spmd.distributed_accuracy(predict, p, xt, yt, strategies.data_mesh(replicas))
    return out


def _one_device_runs(model: models.FFNStack, batch: int, seed: int, device=None) -> dict:
    """{"forward_backward", "update"}: (step, state, batch) runs on one device (`device`, else JAX's
    default) for `timing`."""
    params = model.init(jax.random.key(seed))
    host_batch = models.regression_batch(jax.random.key(seed + 1), batch, model.d_model)
    if device is not None:
        params, host_batch = jax.device_put((params, host_batch), device)
    optimizer = optax.adam(1e-3)
    grad_fn = jax.jit(jax.grad(models.regression_loss(model)))
    grads = grad_fn(params, host_batch)

    @jax.jit
    def update(params, opt_state):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return {
        "forward_backward": (lambda p, b: (p, grad_fn(p, b)), params, host_batch),
        "update": (lambda s, _: (update(*s), 0.0), (params, optimizer.init(params)), None),
    }


def calibrate_one_device(model: models.FFNStack, batch: int = 64, repeats: int = 5,
                         seed: int = 0, device=None) -> tuple[float, float]:
    """Median seconds on one device (`device`, else JAX's default) of (forward+backward over `batch`,
    one full Adam update), interleaved."""
    validate.instance("model", model, models.FFNStack, "a models.FFNStack")
    validate.seed("seed", seed)
    timings = timing.time_interleaved(_one_device_runs(model, batch, seed, device), repeats=repeats)
    return timings["forward_backward"].median_s, timings["update"].median_s


def _collective_runs(n_params: int, devices: int) -> dict:
    """{"replicated": all-reduce, "wus": reduce-scatter + all-gather} of `n_params` f32 as timing runs."""
    validate.integer("n_params", n_params, 1)
    mesh = strategies.data_mesh(devices)
    n = -(-n_params // devices) * devices
    x = jax.device_put(jnp.ones((devices, n), jnp.float32), jax.NamedSharding(mesh, P("data")))
    programs = {
        "replicated": lambda v: lax.psum(v[0], "data")[None],
        "wus": lambda v: lax.all_gather(lax.psum_scatter(v[0], "data", tiled=True), "data", tiled=True)[None],
    }
    runs = {}
    for name, body in programs.items():
        fn = jax.jit(jax.shard_map(body, mesh=mesh, in_specs=P("data"), out_specs=P("data")))
        runs[name] = (lambda s, b, fn=fn: (s, fn(b)), None, x)
    return runs


def calibrate_collectives(n_params: int, devices: int = backend.MESH_DEVICES,
                          repeats: int = 5) -> dict[str, timing.StepTiming]:
    """The gradient collectives for `n_params` float32 values on a `devices` mesh, timed interleaved.

    {"replicated": all-reduce (psum), "wus": reduce-scatter + all-gather}, each a `timing.StepTiming`
    whose repeat i ran in the same round as the other's (`timing.time_interleaved`), so
    `timing.ratios(out["wus"], out["replicated"])` compares the two patterns under the same load.
    These are the communication terms of the cost model, measured on this machine's mesh.
    """
    return timing.time_interleaved(_collective_runs(n_params, devices), repeats=repeats)


# ---- trainings that must agree, over seeds ------------------------------------------------------

LEARNING_RATES = {"sgd": 0.1, "momentum": 0.05, "adam": 1e-2, "lamb": 1e-2, "lars": 1.0}
BASELINES = ("single", *strategies.STRATEGIES)


@dataclasses.dataclass(frozen=True)
class Agreement:
    """How far one training ends from another: `max_diff[i, j]` is the largest |parameter difference|
    after training with seed `seeds[i]` and optimizer `optimizers[j]`."""

    seeds: tuple[int, ...]
    optimizers: tuple[str, ...]
    max_diff: np.ndarray

    @property
    def worst_per_seed(self) -> np.ndarray:
        """The largest difference of each seed over the optimizers: shape (len(seeds),)."""
        return self.max_diff.max(axis=1)


def _digits_run(seed: int, steps: int, batch: int):
    x, y = data.digits_split(seed)[:2]
    return data.epoch_batches(x, y, batch, steps, seed)


def strategy_agreement(strategy: str = "wus", baseline: str = "replicated", optimizer_names=("adam",),
                       seeds=DEFAULT_SEEDS, steps: int = 20, batch: int = 64,
                       devices: int = backend.MESH_DEVICES) -> Agreement:
    """Train the digits MLP (64-128-10) under `strategy` and under `baseline` (another strategy, or
    "single": plain one-device optax on the mesh's first device) from the same init and batches;
    max |Δparam| per seed and optimizer.

    Seed s draws the train/test split, the initial weights and the batch order. Learning rates are
    `LEARNING_RATES`. Each trainer is built once per optimizer and reused over seeds (one compile).
    """
    validate.choice("strategy", strategy, strategies.STRATEGIES)
    validate.choice("baseline", baseline, BASELINES)
    names = tuple(validate.choice("optimizer", o, optimizers.OPTIMIZERS) for o in optimizer_names)
    seeds = validate.seeds("seeds", seeds)
    if not names:
        raise ValueError(f"optimizer_names must be non-empty, got {optimizer_names!r}")
    mlp = models.MLP((64, 128, 10))
    loss = models.classifier_loss(mlp)
    mesh = strategies.data_mesh(devices)
    out = np.zeros((len(seeds), len(names)))
    for j, name in enumerate(names):
        opt = optimizers.make(name, LEARNING_RATES[name])
        trainer = strategies.Trainer(loss, opt, mesh, strategy)
        other = None if baseline == "single" else strategies.Trainer(loss, opt, mesh, baseline)
        for i, seed in enumerate(seeds):
            batches, params = _digits_run(seed, steps, batch), mlp.init(jax.random.key(seed))
            final = trainer.full_params(strategies.train(trainer, params, batches)[0])
            if other is None:
                ref, _ = strategies.reference_train(loss, opt, params, batches, mesh.devices.flat[0])
            else:
                ref = other.full_params(strategies.train(other, params, batches)[0])
            out[i, j] = max_param_diff(final, ref)
    return Agreement(seeds, names, out)


def bn_agreement(seeds=DEFAULT_SEEDS, steps: int = 10, per_replica_batch: int = 4, replicas: int = backend.MESH_DEVICES,
                 optimizer: str = "lars") -> Agreement:
    """Distributed batch norm over all `replicas` (one group) vs batch norm on one device over the
    same global batch: the BN-MLP trained both ways with `optimizer`, max |Δparam| per seed."""
    seeds = validate.seeds("seeds", seeds)
    validate.integer("per_replica_batch", per_replica_batch, 1)
    validate.choice("optimizer", optimizer, optimizers.OPTIMIZERS)
    bn = spmd.BatchNormMLP()
    opt = optimizers.make(optimizer, LEARNING_RATES[optimizer])
    mesh = spmd.bn_mesh(replicas, replicas)
    trainer = strategies.Trainer(bn.loss("bn"), opt, mesh, "wus", data_axes=("group", "bn"))
    one_device_loss = bn.loss(None)
    out = np.zeros((len(seeds), 1))
    for i, seed in enumerate(seeds):
        batches, params = _digits_run(seed, steps, replicas * per_replica_batch), bn.init(jax.random.key(seed))
        final = trainer.full_params(strategies.train(trainer, params, batches)[0])
        ref, _ = strategies.reference_train(one_device_loss, opt, params, batches, mesh.devices.flat[0])
        out[i, 0] = max_param_diff(final, ref)
    return Agreement(seeds, (optimizer,), out)


# ---- the cost model against MLPerf --------------------------------------------------------------


def time_to_train_vs_link(workload: str = "ResNet-50", link_gb_per_s=LINK_SWEEP.values, chips: int = 4096,
                          utilisation: float = 0.4, strategy: str = "wus") -> np.ndarray:
    """The cost model's seconds to train a named workload on `chips` TPU-v3-like chips, one value per
    assumed per-chip link bandwidth (GB/s; by default the claims' sweep, 70-330); torus all-reduce,
    the workload's own gradient precision."""
    validate.choice("workload", workload, cost_model.WORKLOADS)
    w = cost_model.WORKLOADS[workload]
    out = []
    for bw in link_gb_per_s:
        chip = dataclasses.replace(cost_model.TPU_V3, link_bytes_per_s=validate.positive("link_gb_per_s", bw) * 1e9,
                                   utilisation=utilisation)
        out.append(cost_model.time_to_train_s(w, chip, chips, strategy))
    return np.array(out)


# ---- every optax transform, exact under every strategy ----------------------------------------------


def _ndim_mask(params):
    """True for weight matrices, False for biases: the weight-decay mask of BERT/ResNet recipes."""
    return jax.tree.map(lambda x: x.ndim > 1, params)


def _adam_weights_sgd_biases(params):
    return jax.tree.map(lambda x: "adam" if x.ndim > 1 else "sgd", params)


EXACT_TRANSFORMS = {
    "sgd": lambda: optax.sgd(0.1),
    "momentum": lambda: optax.sgd(0.05, momentum=0.9),
    "adam": lambda: optax.adam(1e-2),
    "adamw_ndim_mask": lambda: optax.adamw(1e-2, weight_decay=0.5, mask=_ndim_mask),
    "lamb": lambda: optax.lamb(1e-2),
    "lars": lambda: optax.lars(0.5),
    "clip_by_global_norm+adam": lambda: optax.chain(optax.clip_by_global_norm(0.05), optax.adam(1e-2)),
    "multi_transform": lambda: optax.multi_transform({"adam": optax.adam(1e-2), "sgd": optax.sgd(0.1)},
                                                     _adam_weights_sgd_biases),
    "schedule": lambda: optax.adam(optax.warmup_cosine_decay_schedule(0.0, 2e-2, 5, 20)),
}
"""optax transforms (makers) whose cross-element reductions - global norms, trust ratios, masks,
labels, a step-dependent schedule - a sharded optimizer could get wrong; all are optax's own."""


@dataclasses.dataclass(frozen=True)
class TransformExactness:
    """`max_diff[i, j]`: largest |parameter difference| from one-device training after training with
    `transforms[i]` under `strategies[j]`."""

    transforms: tuple[str, ...]
    strategies: tuple[str, ...]
    max_diff: np.ndarray

    def matched(self, atol: float = 2e-5, under=("wus", "fsdp")) -> int:
        """How many transforms stay within `atol` of one device under every strategy in `under`."""
        cols = [self.strategies.index(s) for s in under]
        return int(np.sum(np.all(self.max_diff[:, cols] < atol, axis=1)))


def transform_exactness(names=tuple(EXACT_TRANSFORMS), steps: int = 20, devices: int = backend.MESH_DEVICES,
                        seed: int = 3, strategy_names=strategies.STRATEGIES) -> TransformExactness:
    """Train a small MLP (16-24-10; the (10,) bias is one no device count > 2 divides) with each named
    transform under each of `strategy_names` and on one device (the mesh's first), from the same init
    and batches."""
    names = tuple(validate.choice("transform", n, tuple(EXACT_TRANSFORMS)) for n in names)
    strategy_names = tuple(validate.choice("strategy", s, strategies.STRATEGIES) for s in strategy_names)
    steps = validate.integer("steps", steps, 1)
    mlp = models.MLP((16, 24, 10))
    loss = models.classifier_loss(mlp)
    kx, ky, kp = jax.random.split(jax.random.key(validate.seed("seed", seed)), 3)
    batch = 2 * devices
    x = np.asarray(jax.random.uniform(kx, (steps, batch, 16)))
    y = np.asarray(jax.random.randint(ky, (steps, batch), 0, 10))
    batches, params = [(x[i], y[i]) for i in range(steps)], mlp.init(kp)
    mesh = strategies.data_mesh(devices)
    out = np.zeros((len(names), len(strategy_names)))
    for i, name in enumerate(names):
        opt = EXACT_TRANSFORMS[name]()
        ref, _ = strategies.reference_train(loss, opt, params, batches, mesh.devices.flat[0])
        for j, s in enumerate(strategy_names):
            trainer = strategies.Trainer(loss, opt, mesh, s)
            out[i, j] = max_param_diff(trainer.full_params(strategies.train(trainer, params, batches)[0]), ref)
    return TransformExactness(names, strategy_names, out)


# ---- memory at the peak: FSDP per block, rematerialisation, gradient accumulation -----------------

MEMORY_VARIANTS = {
    "replicated": ("replicated", {}),
    "wus": ("wus", {}),
    "fsdp, gather all": ("fsdp", {"per_block_gather": False}),
    "fsdp, per block": ("fsdp", {}),
    "wus + remat": ("wus", {"remat": True}),
    "wus, 4 micro-batches": ("wus", {"micro_batches": 4}),
    "fsdp, per block, 4 micro-batches": ("fsdp", {"micro_batches": 4}),
}
"""Named (strategy, Trainer options) settings whose XLA memory `memory_comparison` reads."""


@dataclasses.dataclass(frozen=True)
class MemoryComparison:
    """`memory[i]`: XLA's memory per device (`inspection.XlaMemory`) of the step under `names[i]`."""

    names: tuple[str, ...]
    memory: tuple[inspection.XlaMemory, ...]

    def __getitem__(self, name: str) -> inspection.XlaMemory:
        return self.memory[self.names.index(validate.choice("name", name, self.names))]

    def peak_ratio(self, name: str, baseline: str = "wus") -> float:
        """Peak bytes per device of `name` over those of `baseline`."""
        return self[name].peak_bytes / self[baseline].peak_bytes


def memory_comparison(model: models.FFNStack, batch: int = 16, devices: int = backend.MESH_DEVICES,
                      names=tuple(MEMORY_VARIANTS)[:4], optimizer: str = "adam",
                      seed: int = 0) -> MemoryComparison:
    """Compile (not run) the model's regression step under each named `MEMORY_VARIANTS` setting and
    read XLA's memory per device: arguments, outputs, temporaries, peak."""
    validate.instance("model", model, models.FFNStack, "a models.FFNStack")
    validate.seed("seed", seed)
    names = tuple(validate.choice("variant", n, tuple(MEMORY_VARIANTS)) for n in names)
    params = jax.eval_shape(model.init, jax.random.key(seed))
    params = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), params)
    host_batch = models.regression_batch(jax.random.key(seed + 1), batch, model.d_model)
    mesh = strategies.data_mesh(devices)
    rows = []
    for name in names:
        strategy, options = MEMORY_VARIANTS[name]
        trainer = strategies.Trainer(models.regression_loss(model), optimizers.make(optimizer, 1e-3), mesh,
                                     strategy, **options)
        state = trainer.init(params)
        rows.append(inspection.xla_memory(trainer.lower(state, trainer.shard_batch(host_batch)).compile()))
    return MemoryComparison(names, tuple(rows))


# ---- the cost model's step against MLPerf's logged step ----------------------------------------------


def model_step_ms_vs_utilisation(model: str = "ResNet-50", utilisation=None, link_gb_per_s: float = 70.0,
                                 overlap: bool = False) -> np.ndarray:
    """The cost model's milliseconds per step for a logged benchmark ("ResNet-50" or "BERT") at the
    logs' chip count and global batch, one value per assumed utilisation (by default the claims'
    sweep, `claims.sharding.UTILISATION_SWEEP`)."""
    if utilisation is None:
        utilisation = UTILISATION_SWEEP.values
    logs = cost_model.mlperf_logs(model)
    w = dataclasses.replace(cost_model.WORKLOADS[cost_model.LOGGED_WORKLOADS[model]], global_batch=logs.global_batch)
    bw = validate.positive("link_gb_per_s", link_gb_per_s) * 1e9
    return np.array([1e3 * cost_model.model_step_s(
        w, dataclasses.replace(cost_model.TPU_V3, utilisation=validate.number("utilisation", u, 0.0, 1.0),
                               link_bytes_per_s=bw), logs.chips, overlap) for u in utilisation])


@dataclasses.dataclass(frozen=True)
class Roofline:
    """Per-chip batch below which a TPU-v3 data-parallel step is communication-bound
    (`critical[i, j]` for `workloads[i]` at `link_gb_per_s[j]`), and where each workload sits
    (`per_chip_batch[i]`, the logged global batch over the logged chips)."""

    workloads: tuple[str, ...]
    link_gb_per_s: tuple[float, ...]
    critical: np.ndarray
    per_chip_batch: np.ndarray

    def communication_bound(self) -> np.ndarray:
        """True where the workload's per-chip batch is below the critical batch."""
        return self.per_chip_batch[:, None] < self.critical


def roofline(link_gb_per_s=(70.0, 330.0)) -> Roofline:
    """The JAX Scaling Book's data-parallel roofline for ResNet-50 and BERT at MLPerf v0.7's 4096 chips."""
    names = tuple(cost_model.LOGGED_WORKLOADS)
    crit = np.zeros((len(names), len(link_gb_per_s)))
    batch = np.zeros(len(names))
    for i, name in enumerate(names):
        logs = cost_model.mlperf_logs(name)
        w = cost_model.WORKLOADS[cost_model.LOGGED_WORKLOADS[name]]
        batch[i] = logs.global_batch / logs.chips
        for j, bw in enumerate(link_gb_per_s):
            chip = dataclasses.replace(cost_model.TPU_V3, link_bytes_per_s=validate.positive("link_gb_per_s", bw) * 1e9)
            crit[i, j] = cost_model.critical_batch_per_chip(w, chip, logs.chips)
    return Roofline(names, tuple(link_gb_per_s), crit, batch)


# ---- the transformer on a (data x model) mesh, Megatron layout ---------------------------------------


@dataclasses.dataclass(frozen=True)
class MegatronCheck:
    """The transformer trained with heads and MLP columns split over `model` (Megatron) on a
    `mesh_shape` (data, model) mesh against one device: `max_diff` after `steps` steps, and the
    compiled step's all-reduces of activations (`activation_all_reduces`: result shape (local batch,
    seq, d_model); `activation_bytes` their bytes per device) and all-gathers of weights (none expected)."""

    mesh_shape: tuple[int, int]
    steps: int
    max_diff: float
    activation_all_reduces: int
    activation_bytes: int
    weight_all_gathers: int
    collectives: tuple


def megatron_transformer(model: models.Transformer | None = None, mesh_shape=(2, 4), steps: int = 20,
                         batch: int = 16, learning_rate: float = 1e-3, seed: int = 0) -> MegatronCheck:
    """Train `model` (default `models.Transformer()`) with Adam under `spmd.ModelParallel` and its
    `megatron_specs` on a (data, model) mesh and on one device (the mesh's first) from the same init
    and batches; read the activation all-reduces from the compiled step."""
    validate.seed("seed", seed)
    model = models.Transformer() if model is None else validate.instance("model", model, models.Transformer,
                                                                           "a models.Transformer or None")
    data_n, model_n = (validate.integer("mesh_shape", s, 1) for s in mesh_shape)
    steps = validate.integer("steps", steps, 1)
    loss = models.regression_loss(model)
    params = model.init(jax.random.key(seed))
    batches = [tuple(np.asarray(a) for a in models.transformer_batch(jax.random.key(seed + 1 + i), batch, model))
               for i in range(steps)]
    opt = optax.adam(learning_rate)
    mesh = spmd.model_parallel_mesh(data_n, model_n)
    ref, _ = strategies.reference_train(loss, opt, params, batches, mesh.devices.flat[0])
    mp = spmd.ModelParallel(loss, opt, mesh, model.megatron_specs)
    p, opt_state = mp.init(params)
    step = mp.step_fn(opt_state).lower(p, opt_state, mp.shard_batch(batches[0])).compile()  # one compile
    for b in batches:
        p, opt_state, _ = step(p, opt_state, mp.shard_batch(b))
    final = p
    rows = tuple(inspection.collectives(step))
    act = (batch // data_n, model.seq, model.d_model)
    acts = [r for r in rows if r.kind == "all-reduce" and r.shape == act]
    gathers = sum(r.kind == "all-gather" and len(r.shape) >= 2 for r in rows)
    return MegatronCheck((data_n, model_n), steps, max_param_diff(final, ref), len(acts),
                         sum(r.bytes for r in acts), gathers, rows)


# ---- overlap: FSDP's forward prefetch in XLA's schedule ---------------------------------------------


@dataclasses.dataclass(frozen=True)
class FsdpSchedule:
    """The forward pass of the FSDP step in XLA's schedule order, as runs of (what, how many):
    "gather" (all-gathers of 2-D weights) and "compute" (fusions and matrix products). `async_collectives`:
    whether the backend split collectives into start/done pairs, the precondition for overlap in time.
    `temporaries_bytes`: XLA's temporaries of the step."""

    prefetch: bool
    forward: tuple[tuple[str, int], ...]
    async_collectives: bool
    temporaries_bytes: int

    @property
    def gathers_before_first_block(self) -> int:
        """Weight all-gathers issued together before the first block's compute (the first run of
        gathers; the input's own ops may come before it): 2 per block whose weights are whole."""
        return next((n for what, n in self.forward if what == "gather"), 0)


def fsdp_schedule(model: models.FFNStack, prefetch: bool, batch: int = 16,
                  devices: int = backend.MESH_DEVICES) -> FsdpSchedule:
    """Compile the FFN stack's FSDP step (per-block gather, with or without `prefetch`) and read the
    forward pass's order of weight gathers and compute from the scheduled HLO."""
    validate.instance("model", model, models.FFNStack, "a models.FFNStack")
    trainer = strategies.Trainer(models.regression_loss(model), optax.sgd(0.1), strategies.data_mesh(devices),
                                 "fsdp", prefetch=validate.instance("prefetch", prefetch, bool, "True or False"))
    params = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), jax.eval_shape(model.init, jax.random.key(0)))
    state = trainer.init(params)
    compiled = trainer.lower(state, trainer.shard_batch(models.regression_batch(jax.random.key(1), batch,
                                                                                 model.d_model))).compile()
    rows = [r for r in inspection.schedule(compiled, ops=("all-gather", "dot", "fusion"))
            if not r.backward and len(r.shape) == 2]
    runs: list[list] = []
    for r in rows:
        what = "gather" if r.op.startswith("all-gather") else "compute"
        if runs and runs[-1][0] == what:
            runs[-1][1] += 1
        else:
            runs.append([what, 1])
    return FsdpSchedule(prefetch, tuple((w, n) for w, n in runs), inspection.has_async_collectives(compiled),
                        inspection.xla_memory(compiled).temporaries_bytes)
