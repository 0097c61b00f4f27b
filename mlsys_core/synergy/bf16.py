"""Synergy 3: does bfloat16 communication help phones more than pods?

Halving the bytes on the wire (f32 -> bf16) saves half the communication share of a step when nothing
overlaps (`bf16_saving`: a phone's session, which downloads, trains and uploads in turn). A pod's saving
comes from Paper 1's cost model, with or without the all-reduce hidden under the compute
(`bf16_saving_tpu`), a phone's from FL's drawn population (`bf16_saving_edge`); `bf16_pod_vs_phone` and
`bf16_gap_points` compare them over the assumptions that decide it. `fedavg_delta_dtype` /
`bf16_accuracy_gap` measure what bf16 deltas cost FedAvg's accuracy. `explore_bf16` is one point of
notebook 05's explorer.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.data import load_digits
from mlsys_core.fl import fedavg
from mlsys_core.fl.population import PopulationConfig, make_population
from mlsys_core.seeds import DEFAULT_SEEDS
from mlsys_core.sharding import cost_model
from mlsys_core.synergy.common import pod_workload

POD_CHIPS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)  # the pod sizes bf16_pod_vs_phone evaluates


def bf16_saving(compute_s, comm_s) -> np.ndarray:
    """Fraction of a step saved by halving the bytes on the wire (f32 -> bf16), without overlap."""
    compute_s, comm_s = np.asarray(compute_s, float), np.asarray(comm_s, float)
    for name, value in (("compute_s", compute_s), ("comm_s", comm_s)):
        if not np.all(value >= 0):
            raise ValueError(f"{name} must be >= 0 (seconds), got {value!r}")
    if np.any(compute_s + comm_s == 0):
        raise ValueError("compute_s + comm_s must be > 0: a step of no time saves no fraction of it")
    return 0.5 * comm_s / (compute_s + comm_s)


@dataclasses.dataclass(frozen=True)
class Bf16Saving:
    """What halving the bytes on the wire saves: per chip count of a pod, or per phone's session."""

    compute_s: np.ndarray  # s, compute (and update) of each step or session
    comm_s: np.ndarray  # s, its communication in float32
    saving: np.ndarray  # fraction of the step or session, `bf16_saving(compute_s, comm_s)`
    chips: np.ndarray | None = None  # the pod sizes (None: phones)


def bf16_saving_tpu(workload: str = "BERT-large", chips=(16, 256, 1024, 4096), *, link_gb_per_s: float = 330.0,
                    utilisation: float = 0.4, overlap: bool = False) -> Bf16Saving:
    """bf16 gradients on a TPU-v3 pod (Paper 1's cost model, WUS): step saving at each chip count.

    The saving is 1 - step(bf16 gradients) / step(f32 gradients), both steps from
    `cost_model.model_step_s`: without `overlap` compute + all-reduce + update, with it the all-reduce
    hidden under the compute (then bf16 saves only what the all-reduce sticks out beyond the compute).
    `link_gb_per_s` (per chip) and `utilisation` (achieved fraction of peak FLOP/s) are the cost
    model's assumptions; compute falls as 1/chips at a fixed global batch, the all-reduce does not.

    Args:
        workload: a `cost_model.WORKLOADS` name.
        chips: pod sizes (each >= 1).
        link_gb_per_s: GB/s, each chip's link (> 0).
        utilisation: achieved fraction of peak FLOP/s, in (0, 1].
        overlap: whether the all-reduce hides under the compute.
    """
    base = pod_workload(workload)
    link_bytes_per_s = validate.positive("link_gb_per_s", link_gb_per_s) * 1e9
    utilisation = validate.number("utilisation", utilisation, 0.0, 1.0, low_open=True)
    overlap = validate.boolean("overlap", overlap)
    chip = dataclasses.replace(cost_model.TPU_V3, link_bytes_per_s=link_bytes_per_s, utilisation=utilisation)
    f32 = dataclasses.replace(base, grad_bytes_per_param=4.0)
    low = dataclasses.replace(base, grad_bytes_per_param=2.0)
    chips = tuple(validate.integer("chips", c, 1) for c in chips)
    rows = [cost_model.step_time(f32, chip, c, "wus") for c in chips]
    compute = np.array([r.compute_s + r.update_s for r in rows])
    comm = np.array([r.allreduce_s for r in rows])
    step32 = np.array([cost_model.model_step_s(f32, chip, c, overlap, "wus") for c in chips])
    step16 = np.array([cost_model.model_step_s(low, chip, c, overlap, "wus") for c in chips])
    return Bf16Saving(compute, comm, 1 - step16 / step32, np.asarray(chips))


def bf16_saving_edge(model_params: float = 1.4e6, epochs: int = 1, devices: int = 100_000,
                     seed: int = 0, link_factor: float = 1.0) -> Bf16Saving:
    """bf16 model and update transfers for an FL population (Paper 3): per-device session saving.

    A session downloads the model, trains `epochs` passes over its examples, uploads the update; its
    times come from the population's drawn speeds and bandwidths (medians 5 examples/s, 2 MB/s down,
    1 MB/s up, `PopulationConfig`'s defaults, both link medians times `link_factor`). Default size:
    Gboard's 1.4 M parameters.

    Args:
        model_params: the model's parameters (> 0).
        epochs: local passes over a device's examples (>= 1).
        devices: the population's size (>= 1).
        seed: draws the population.
        link_factor: x both link medians (> 0).
    """
    validate.positive("model_params", model_params)
    validate.seed("seed", seed)
    factor = validate.positive("link_factor", link_factor)
    base = PopulationConfig()
    config = PopulationConfig(num_devices=validate.integer("devices", devices, 1),
                              down_bytes_per_s_median=base.down_bytes_per_s_median * factor,
                              up_bytes_per_s_median=base.up_bytes_per_s_median * factor)
    pop = make_population(config, seed)
    nbytes = 4.0 * model_params
    compute = validate.integer("epochs", epochs, 1) * pop.num_examples / pop.examples_per_s
    comm = nbytes / pop.down_bytes_per_s + nbytes / pop.up_bytes_per_s
    return Bf16Saving(compute, comm, bf16_saving(compute, comm))


@dataclasses.dataclass(frozen=True)
class Bf16PodVsPhone:
    """bf16's saving for pods over a grid of the cost model's assumptions, and for the median phone.

    `pod_saving[b, u, c]`: fraction of a step saved at `link_gb_per_s[b]`, `utilisation[u]`,
    `chips[c]`; `phone_median_saving[s]`: the median device's session saving in seed `s`'s population.
    """

    link_gb_per_s: np.ndarray  # (B,) GB/s, the pod's per-chip link bandwidths
    utilisation: np.ndarray  # (U,) achieved fractions of peak FLOP/s
    chips: np.ndarray  # (C,) the pod sizes, `POD_CHIPS`
    pod_saving: np.ndarray  # (B, U, C) fraction of a pod step saved
    phone_median_saving: np.ndarray  # (seeds,) fraction of the median phone's session saved
    pod_chips: int  # the pod size `gap_points` compares at

    @property
    def gap_points(self) -> np.ndarray:
        """(B, U, seeds) median phone's saving minus the `pod_chips` pod's, in percentage points
        (> 0: FL gains more, the survey's claim)."""
        pod = self.pod_saving[:, :, list(self.chips).index(self.pod_chips)]
        return 100 * (self.phone_median_saving[None, None, :] - pod[:, :, None])

    def gap_over_bandwidth(self, utilisation: float) -> np.ndarray:
        """(B, seeds) `gap_points` along the link bandwidths at one of the grid's utilisations."""
        return self.gap_points[:, self._index("utilisation", self.utilisation, utilisation), :]

    def gap_over_utilisation(self, link_gb_per_s: float) -> np.ndarray:
        """(U, seeds) `gap_points` along the utilisations at one of the grid's link bandwidths."""
        return self.gap_points[self._index("link_gb_per_s", self.link_gb_per_s, link_gb_per_s), :, :]

    @staticmethod
    def _index(name: str, grid: np.ndarray, value: float) -> int:
        return list(grid).index(validate.choice(name, value, tuple(float(g) for g in grid)))

    @property
    def crossover_chips(self) -> np.ndarray:
        """(B, U) the largest evaluated pod that still gains less than the median phone (mean over
        seeds); 0 where even the smallest pod gains more."""
        below = self.pod_saving < self.phone_median_saving.mean()
        last = np.where(below.any(axis=2), below.shape[2] - 1 - np.argmax(below[:, :, ::-1], axis=2), -1)
        return np.where(last >= 0, self.chips[np.maximum(last, 0)], 0)


def bf16_pod_vs_phone(link_gb_per_s=(70.0, 100.0, 150.0, 200.0, 250.0, 330.0), utilisation=(0.3, 0.4, 0.5, 0.6),
                      pod_chips: int = 4096, workload: str = "BERT-large", model_params: float = 1.4e6,
                      devices: int = 100_000, seeds=DEFAULT_SEEDS, overlap: bool = False) -> Bf16PodVsPhone:
    """bf16's saving for a TPU-v3 pod (every `POD_CHIPS` size) at each link bandwidth x utilisation,
    against the median phone of `len(seeds)` drawn FL populations (`bf16_saving_edge`).

    Args:
        link_gb_per_s: GB/s, the pod's per-chip link bandwidths (each > 0).
        utilisation: achieved fractions of peak FLOP/s (each in (0, 1]).
        pod_chips: the pod size the gap is taken at (one of `POD_CHIPS`).
        workload: a `cost_model.WORKLOADS` name.
        model_params: the phones' model's parameters (> 0).
        devices: each population's size (>= 1).
        seeds: one population per seed.
        overlap: whether the pod's all-reduce hides under its compute.
    """
    bws = tuple(validate.positive("link_gb_per_s", b) for b in link_gb_per_s)
    utils = tuple(validate.number("utilisation", u, 0.0, 1.0, low_open=True) for u in utilisation)
    validate.choice("pod_chips", pod_chips, POD_CHIPS)
    if not bws or not utils:
        raise ValueError(f"link_gb_per_s and utilisation need >= 1 value each, got {bws!r} and {utils!r}")
    pod = np.array([[bf16_saving_tpu(workload, POD_CHIPS, link_gb_per_s=b, utilisation=u, overlap=overlap).saving
                     for u in utils] for b in bws])
    phone = np.array([np.median(bf16_saving_edge(model_params, 1, devices, s).saving)
                      for s in validate.seeds("seeds", seeds)])
    return Bf16PodVsPhone(np.array(bws), np.array(utils), np.array(POD_CHIPS), pod, phone, int(pod_chips))


def bf16_gap_points(link_gb_per_s: float = 330.0, utilisation: float = 0.4, overlap: bool = False,
                    phone_link_factor: float = 1.0, pod_chips: int = 4096, workload: str = "BERT-large",
                    model_params: float = 1.4e6, devices: int = 100_000, seeds=DEFAULT_SEEDS) -> np.ndarray:
    """(len(seeds),) the median phone's bf16 saving minus the `pod_chips` pod's, in percentage points
    (> 0: FL gains more, the survey's claim); seed s draws the phones' population.

    Args:
        link_gb_per_s: GB/s, the pod's per-chip link (> 0).
        utilisation: the pod's achieved fraction of peak FLOP/s, in (0, 1].
        overlap: whether the pod's all-reduce hides under its compute (a phone's session cannot: it
            needs the model before it trains and the update after).
        phone_link_factor: x the phones' link medians (> 0).
        pod_chips: the pod's size (one of `POD_CHIPS`).
        workload: a `cost_model.WORKLOADS` name.
        model_params: the phones' model's parameters (> 0).
        devices: each population's size (>= 1).
        seeds: one population per seed.
    """
    validate.choice("pod_chips", pod_chips, POD_CHIPS)
    pod = bf16_saving_tpu(workload, (pod_chips,), link_gb_per_s=link_gb_per_s, utilisation=utilisation,
                          overlap=overlap).saving[0]
    phone = np.array([np.median(bf16_saving_edge(model_params, 1, devices, s, link_factor=phone_link_factor).saving)
                      for s in validate.seeds("seeds", seeds)])
    return 100 * (phone - pod)


def fedavg_delta_dtype(dtype: str = "bfloat16", rounds: int = 30, clients_per_round: int = 20,
                       num_clients: int = 100, alpha: float = 0.5, seed: int = 0) -> np.ndarray:
    """Test accuracy per round of FedAvg on non-IID digits when client deltas travel as `dtype`.

    Clients compute in float32; only the uploaded delta is rounded to `dtype` (what bf16 on the
    wire does). The same seed gives the same clients and selection for every dtype.

    Args:
        dtype: "float32", "bfloat16" or "float16".
        rounds: FedAvg rounds (>= 1).
        clients_per_round: clients selected each round (>= 1).
        num_clients: clients the training digits are split over (>= 1).
        alpha: Dirichlet concentration of the split (> 0).
        seed: draws the test set, the split, the initial weights and the selection.
    """
    import jax
    import jax.numpy as jnp

    validate.choice("dtype", dtype, ("float32", "bfloat16", "float16"))
    rounds = validate.integer("rounds", rounds, 1)
    num_clients = validate.integer("num_clients", num_clients, 1)
    clients_per_round = validate.integer("clients_per_round", clients_per_round, 1)
    validate.positive("alpha", alpha)
    seed = validate.seed("seed", seed)
    x, y = load_digits()
    test = np.random.default_rng(seed).permutation(len(x))
    test_idx, train_idx = test[:360], test[360:]
    parts = [train_idx[p] for p in fedavg.dirichlet_split(y[train_idx], num_clients, alpha, seed)]
    model = fedavg.ModelConfig()
    data = fedavg.pad_clients(x, y, parts, model.batch_size)
    params = fedavg.init_params(jax.random.key(seed), model)
    rng = np.random.default_rng(seed + 1)
    cast = jnp.dtype(dtype)
    accuracy = []
    for _ in range(rounds):
        chosen = rng.choice(num_clients, size=min(clients_per_round, num_clients), replace=False)
        batch = data.take(chosen)
        deltas = fedavg.client_deltas(params, batch, model)
        deltas = jax.tree.map(lambda d: d.astype(cast).astype(jnp.float32), deltas)
        params = jax.tree.map(jnp.add, params, fedavg.weighted_mean(deltas, jnp.asarray(batch.num_examples)))
        accuracy.append(float(fedavg.accuracy(params, x[test_idx], y[test_idx])))
    return np.array(accuracy)


@dataclasses.dataclass(frozen=True)
class DtypeAccuracy:
    """Test accuracy per seed and round, FedAvg with float32 deltas and with `dtype` deltas."""

    seeds: np.ndarray  # (seeds,) the seeds run
    float32: np.ndarray  # (seeds, rounds) with float32 deltas
    rounded: np.ndarray  # (seeds, rounds) with deltas rounded to `dtype`
    dtype: str  # the deltas' dtype on the wire

    @property
    def final_gap(self) -> np.ndarray:
        """(seeds,) float32 minus rounded accuracy after the last round (> 0: rounding cost accuracy)."""
        return self.float32[:, -1] - self.rounded[:, -1]


def bf16_accuracy_gap(seeds=DEFAULT_SEEDS, dtype: str = "bfloat16", rounds: int = 30,
                      **fedavg_kwargs) -> DtypeAccuracy:
    """`fedavg_delta_dtype` in float32 and in `dtype` for each seed (same clients and selection per seed).

    Args:
        seeds: one pair of runs per seed.
        dtype: the rounded runs' dtype ("bfloat16" or "float16").
        rounds: FedAvg rounds (>= 1).
        **fedavg_kwargs: the rest of `fedavg_delta_dtype`'s arguments (clients_per_round, num_clients, alpha).
    """
    seeds = validate.seeds("seeds", seeds)
    f32 = np.array([fedavg_delta_dtype("float32", rounds, seed=s, **fedavg_kwargs) for s in seeds])
    low = np.array([fedavg_delta_dtype(dtype, rounds, seed=s, **fedavg_kwargs) for s in seeds])
    return DtypeAccuracy(np.array(seeds), f32, low, dtype)


@dataclasses.dataclass(frozen=True)
class Bf16Point:
    """The bf16 explorer's view: phones and pods at one setting."""

    phones: Bf16Saving  # one session saving per device of a drawn population
    pods: Bf16Saving  # per pod size


def explore_bf16(model_millions: float = 1.4, phone_link_factor: float = 1.0,
                 pod_link_gb_per_s: float = 330.0) -> Bf16Point:
    """bf16's saving for 20,000 phones (seed 0) training a `model_millions` M-parameter model on links
    `phone_link_factor` x the population's medians, and for BERT-large on 256 / 1024 / 4096-chip pods;
    the defaults are the explorer's opening setting."""
    model_params = validate.positive("model_millions", model_millions) * 1e6
    phone_link_factor = validate.positive("phone_link_factor", phone_link_factor)
    pod_link_gb_per_s = validate.positive("pod_link_gb_per_s", pod_link_gb_per_s)
    return Bf16Point(bf16_saving_edge(model_params, 1, 20_000, link_factor=phone_link_factor),
                     bf16_saving_tpu("BERT-large", (256, 1024, 4096), link_gb_per_s=pod_link_gb_per_s))
