"""Notebook 01, section 3 (Reproduce): what each strategy holds and moves per device, how long its step
takes, and whether the cost model's terms, timed in the same rounds, explain the measured speed-up.

Timings are medians after warm-up, taken interleaved (`timing.time_interleaved`: one step of every
run per round), so a busy moment on a shared machine does not favour one run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import PartitionSpec as P

from mlsys_core import backend, timing, validate
from mlsys_core.seeds import DEFAULT_SEEDS

from .. import cost_model, inspection, models, optimizers, strategies


def ffn_step(model: models.FFNStack, params, host_batch, strategy: str, optimizer: str = "adam",
             devices: int = backend.MESH_DEVICES, grad_dtype=None) -> tuple:
    """The FFN stack's regression step under `strategy`: (trainer, placed state, placed batch, lowered step).

    Args:
        model: the FFN stack whose regression loss is trained.
        params: its initial parameters (host or single-device arrays).
        host_batch: an (x, target) batch on the host, split over the devices.
        strategy: a name in `strategies.STRATEGIES`.
        optimizer: a name in `optimizers.OPTIMIZERS`, at learning rate 1e-3.
        devices: devices in the 1-D data mesh (count).
        grad_dtype: None, or the float dtype of the gradients on the wire.
    """
    trainer = strategies.Trainer(models.regression_loss(model), optimizers.make(optimizer, 1e-3),
                                 strategies.data_mesh(devices), strategy, grad_dtype=grad_dtype)
    state = trainer.init(params)
    placed = trainer.shard_batch(host_batch)
    return trainer, state, placed, trainer.lower(state, placed)


def _compiled_strategies(model: models.FFNStack, batch: int, devices: int, seed: int) -> tuple[dict, dict]:
    """Each strategy's FFN step with Adam, compiled once: ({name: (MemoryPerDevice, bytes by kind)},
    {name: (compiled step, state, placed batch)} ready for `timing.time_interleaved`)."""
    params = model.init(jax.random.key(seed))
    host_batch = models.regression_batch(jax.random.key(seed + 1), batch, model.d_model)
    runs, info = {}, {}
    for name in strategies.STRATEGIES:
        trainer, state, placed, lowered = ffn_step(model, params, host_batch, name, "adam", devices)
        compiled = lowered.compile()
        info[name] = (inspection.memory_per_device(trainer, state, compiled),
                      inspection.bytes_by_kind(inspection.collectives(compiled)))
        runs[name] = (compiled, state, placed)
    return info, runs


@dataclasses.dataclass(frozen=True)
class StrategyMeasure:
    """One strategy's compiled step, measured."""

    memory: inspection.MemoryPerDevice  # bytes one device holds between steps
    collectives: dict[str, int]  # result bytes per device of each collective kind in the compiled step
    step_times: timing.StepTiming  # wall-clock seconds of its timed steps


def profile_strategies(model: models.FFNStack, batch: int = 64, devices: int = backend.MESH_DEVICES,
                       repeats: int = 5, seed: int = 0) -> dict[str, StrategyMeasure]:
    """Each strategy for `model` with Adam, compiled once and measured.

    The strategies' steps are timed interleaved (`timing.time_interleaved`), so a busy moment on a
    shared machine does not favour one of them.

    Args:
        model: the FFN stack, trained on a synthetic regression batch.
        batch: the global batch (examples; a multiple of `devices`).
        devices: devices in the 1-D data mesh (count).
        repeats: timed steps of each strategy (after warm-up).
        seed: draws the initial weights (and, with seed + 1, the batch).
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
    all timed in the same interleaved rounds (repeat i of every run comes from round i).

    The terms: forward+backward over the whole batch and one full Adam update, each on one of the
    mesh's devices; the gradient's all-reduce and its reduce-scatter + all-gather on the mesh.
    `shared_host` selects the cost model that `predicted_step_s` uses (`cost_model_name`).
    """

    devices: int  # devices in the mesh
    memory: dict  # strategy -> `inspection.MemoryPerDevice`
    collective_bytes: dict  # strategy -> {collective kind: result bytes per device}
    timings: dict  # one `timing.StepTiming` per strategy and per `MODEL_TERMS` entry
    shared_host: bool = True  # the mesh's devices share one host CPU (`backend.shares_one_host`)

    @property
    def cost_model_name(self) -> str:
        """The model behind `predicted_step_s`: "shared_host_step_s" or "side_by_side_step_s"."""
        return "shared_host_step_s" if self.shared_host else "side_by_side_step_s"

    @property
    def medians_ms(self) -> dict[str, float]:
        """Median milliseconds per step of each strategy."""
        return {s: 1e3 * self.timings[s].median_s for s in strategies.STRATEGIES if s in self.timings}

    @property
    def speedup(self) -> float:
        """Replicated over WUS median step time."""
        return self.timings["replicated"].median_s / self.timings["wus"].median_s

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

    Args:
        model: the FFN stack, trained on a synthetic regression batch.
        batch: the global batch (examples; a multiple of `devices`).
        devices: devices in the 1-D data mesh (count).
        repeats: interleaved rounds, one timed step of every run each.
        seed: draws the initial weights (and, with seed + 1, the batch).
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


def _term_programs(model: models.FFNStack) -> tuple:
    """(optimizer, jitted gradient, jitted Adam update(params, opt_state, grads)) of the one-device terms."""
    optimizer = optax.adam(1e-3)
    grad_fn = jax.jit(jax.grad(models.regression_loss(model)))

    @jax.jit
    def update(params, opt_state, grads):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return optimizer, grad_fn, update


def _one_device_runs(model: models.FFNStack, batch: int, seed: int, device=None, programs=None) -> dict:
    """{"forward_backward", "update"}: (step, state, batch) runs on one device (`device`, else JAX's
    default) for `timing`; `programs` from `_term_programs` (made here when None)."""
    params = model.init(jax.random.key(seed))
    host_batch = models.regression_batch(jax.random.key(seed + 1), batch, model.d_model)
    if device is not None:
        params, host_batch = jax.device_put((params, host_batch), device)
    optimizer, grad_fn, update = programs or _term_programs(model)
    grads = grad_fn(params, host_batch)
    return {
        "forward_backward": (lambda p, b: (p, grad_fn(p, b)), params, host_batch),
        "update": (lambda s, g: (update(*s, g), 0.0), (params, optimizer.init(params)), grads),
    }


def calibrate_one_device(model: models.FFNStack, batch: int = 64, repeats: int = 5,
                         seed: int = 0, device=None) -> tuple[float, float]:
    """Median seconds on one device of (forward+backward over `batch`, one full Adam update), interleaved.

    Args:
        model: the FFN stack.
        batch: examples in the forward+backward pass.
        repeats: timed steps of each term (after warm-up).
        seed: draws the weights (and, with seed + 1, the batch).
        device: where to run (None: JAX's default device).
    """
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


# ---- independent timed runs: the unit of the timing claims ------------------------------------------


@dataclasses.dataclass(frozen=True)
class TimedRuns:
    """Independent timed runs of the FFN stack's step, replicated and WUS (and, with the cost model's terms,
    those too). Run i draws its own weights and batch from `seeds[i]`, places them afresh, warms up and
    times `repeats` interleaved rounds; its value is a ratio of its own medians. The rounds of one run
    share its arrays, caches and moment of load, so they are not independent: the run is the unit. The
    compiled programs are shared by the runs: compiling the same program again gives the same binary.
    """

    seeds: tuple[int, ...]  # one per run
    per_device_batch: int  # examples per device
    profiles: tuple[StrategyProfile, ...]  # one per run, its memory, collective bytes and timings

    @property
    def speedups(self) -> np.ndarray:
        """Per run: replicated over WUS median step time."""
        return np.array([p.speedup for p in self.profiles])

    @property
    def measured_over_predicted(self) -> np.ndarray:
        """Per run: its measured speed-up over the one the cost model predicts from its terms' medians."""
        return np.array([p.speedup / p.predicted_speedup for p in self.profiles])

    @property
    def medians_ms(self) -> dict[str, float]:
        """Median over the runs of each strategy's median milliseconds per step."""
        return {s: float(np.median([p.medians_ms[s] for p in self.profiles])) for s in self.profiles[0].medians_ms}


TIMED_STRATEGIES = ("replicated", "wus")  # the two the timing claims compare


def timed_runs(model: models.FFNStack | None = None, per_device_batch: int = 2,
               devices: int = backend.MESH_DEVICES, seeds: Sequence[int] = DEFAULT_SEEDS, repeats: int = 3,
               terms: bool = False) -> TimedRuns:
    """Time replicated and WUS (with `terms`, also the cost model's terms) in independent runs, one per seed.

    Args:
        model: the FFN stack (None: 4 blocks of 384 x 1536, 4.7 M parameters, Adam: optimizer-heavy).
        per_device_batch: examples per device (2: BERT's per-chip batch at 4096 chips).
        devices: devices in the 1-D data mesh (count).
        seeds: one per run; each draws the run's weights and batch.
        repeats: interleaved rounds timed in each run, after its warm-up.
        terms: also time forward+backward and one Adam update on one device, and the gradient's
            all-reduce and reduce-scatter + all-gather, in the same rounds (for `measured_over_predicted`).
    """
    model = models.FFNStack(384, 1536, 4) if model is None else model
    validate.instance("model", model, models.FFNStack, "a models.FFNStack")
    per_device_batch = validate.integer("per_device_batch", per_device_batch, 1)
    seeds = validate.seeds("seeds", seeds)
    batch = per_device_batch * devices
    mesh_devices = backend.mesh_devices(devices)
    params = model.init(jax.random.key(seeds[0]))
    host_batch = models.regression_batch(jax.random.key(seeds[0] + 1), batch, model.d_model)
    programs, memory, comm = {}, {}, {}
    for name in TIMED_STRATEGIES:
        trainer, state, placed, lowered = ffn_step(model, params, host_batch, name, "adam", devices)
        compiled = lowered.compile()
        programs[name] = (trainer, compiled)
        memory[name] = inspection.memory_per_device(trainer, state, compiled)
        comm[name] = inspection.bytes_by_kind(inspection.collectives(compiled))
    if terms:
        term_programs = _term_programs(model)
        n_params = models.parameter_count(params)
        collectives = _collective_runs(n_params, devices)
    profiles = []
    for seed in seeds:
        params = model.init(jax.random.key(seed))
        host_batch = models.regression_batch(jax.random.key(seed + 1), batch, model.d_model)
        runs = {name: (compiled, trainer.init(params), trainer.shard_batch(host_batch))
                for name, (trainer, compiled) in programs.items()}
        if terms:
            runs.update(_one_device_runs(model, batch, seed, mesh_devices[0], term_programs))
            runs["all_reduce"], runs["reduce_scatter_all_gather"] = collectives["replicated"], collectives["wus"]
        timings = timing.time_interleaved(runs, repeats=repeats, warmup=1)
        profiles.append(StrategyProfile(devices, memory, comm, timings, backend.shares_one_host(mesh_devices)))
    return TimedRuns(seeds, per_device_batch, tuple(profiles))


def collective_runs(n_params: int, devices: int = backend.MESH_DEVICES, runs: int = 5,
                    repeats: int = 6) -> np.ndarray:
    """Per independent run: median reduce-scatter + all-gather time over median all-reduce time of
    `n_params` float32 values on a `devices` mesh. Each run warms up afresh and times `repeats` interleaved
    rounds; the compiled collectives are shared by the runs (the same binary).

    Args:
        n_params: values in the gradient (count).
        devices: devices in the 1-D data mesh (count).
        runs: independent runs (>= 2).
        repeats: interleaved rounds timed in each run.
    """
    runs = validate.integer("runs", runs, 2)
    programs = _collective_runs(n_params, devices)
    out = []
    for _ in range(runs):
        t = timing.time_interleaved(programs, repeats=repeats, warmup=1)
        out.append(t["wus"].median_s / t["replicated"].median_s)
    return np.array(out)


def optimizer_state_fraction(model: models.FFNStack | None = None, devices: int = backend.MESH_DEVICES,
                             optimizer: str = "adam", seed: int = 0) -> float:
    """Optimizer-state bytes device 0 holds between steps under WUS over those under replicated training
    (1/N when every leaf divides by N), read from the arrays' shards; nothing is compiled.

    Args:
        model: the FFN stack (None: 4 blocks of 384 x 1536, 4.7 M parameters).
        devices: devices in the 1-D data mesh (count, N).
        optimizer: a name in `optimizers.OPTIMIZERS`.
        seed: draws the initial weights.
    """
    model = models.FFNStack(384, 1536, 4) if model is None else model
    validate.instance("model", model, models.FFNStack, "a models.FFNStack")
    params = model.init(jax.random.key(validate.seed("seed", seed)))
    held = {}
    for name in ("wus", "replicated"):
        trainer = strategies.Trainer(models.regression_loss(model), optimizers.make(optimizer, 1e-3),
                                     strategies.data_mesh(devices), name)
        held[name] = inspection.memory_per_device(trainer, trainer.init(params)).opt_state_bytes
    return held["wus"] / held["replicated"]
