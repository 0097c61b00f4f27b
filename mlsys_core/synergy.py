"""The survey's seven cross-paper claims, each as a pure experiment over two papers' systems.

The only module that imports more than one paper's subpackage. Notebook 05 tabulates and plots what
these functions return and hands the claim measurements to the registry (`mlsys_core.claims.synergy`):

1. `data_parallel_vs_fedsgd` / `fedsgd_equivalence`: synchronous data parallelism on a mesh (Paper 1)
   against FedAvg with full participation and one local step (Paper 3), per seed.
2. `dispatch` / `round_batches` / `federated_rounds` / `data_parallel_rounds` / `cast_as_fl`: the
   digits dealt out to devices (IID or Dirichlet) and trained by FedAvg rounds, with everyone or with
   the devices the FL protocol commits (`protocol_participants`), against data parallelism;
   `dispatch_cost`: the dispatch round's bytes and time next to a training round's (both cost models).
3. `bf16_saving_tpu` / `bf16_saving_edge` / `bf16_pod_vs_phone` / `bf16_vs_phone_link`: what bfloat16
   communication buys a pod and a phone, over the pod's link bandwidth, utilisation and the phones'
   link speeds; `fedavg_delta_dtype` / `bf16_accuracy_gap`: what bf16 deltas cost FedAvg's accuracy.
4. `federated_accuracy` / `evaluation_on_devices`: a federated evaluation round against the pod's
   distributed evaluation; `bn_on_devices`: batch-norm statistics over device groups on non-IID data.
5. `FaultConfig` / `quorum_commit` / `restart_from_checkpoint` / `goodput_grid` /
   `masked_wus_training` / `loss_vs_failure_rate`: replica failures in WUS training, committed
   FL-style with the survivors or restarted from a checkpoint; `straggler_goodput`: a reporting
   deadline against waiting for every replica.
6. `nvm_optimizer_state` / `bandana_effective_bandwidth`: Bandana's NVM (Paper 2) holding a pod's
   optimizer state, each layout against its own step, at Bandana's measured effective bandwidth.
7. `tictac_vs_bandwidth` / `tictac_pod` / `tictac_phone_percentiles`: TicTac's gain (Paper 4) on
   pod links (the pod's transfer/compute balance, `pod_cluster`) and on the FL population's phone
   downlinks.

`explore_bf16` / `explore_faults` / `explore_nvm` / `explore_tictac` compute one point of the notebook's
explorers; `mlsys_core.synergy_plots` draws all of it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import numpy as np

from mlsys_core import backend, validate
from mlsys_core.bandana import NVMDevice, memory_cost_usd
from mlsys_core.bandana.nvm import MemoryCost, MemoryPrices
from mlsys_core.fl import fedavg
from mlsys_core.fl.population import PopulationConfig, make_population
from mlsys_core.sharding import cost_model
from mlsys_core.tictac import experiments as tictac_experiments
from mlsys_core.tictac.simulate import Cluster

POD_CHIPS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)  # the pod sizes bf16_pod_vs_phone evaluates



def _workload(workload: str) -> cost_model.Workload:
    return cost_model.WORKLOADS[validate.choice("workload", workload, tuple(cost_model.WORKLOADS))]


class FedSGDMatch(NamedTuple):
    """Data parallelism on a mesh against FedSGD on the same data: how far apart their parameters end."""

    max_abs_diff: float  # largest |mesh - FedSGD| over all parameters
    max_param_change: float  # largest |trained - initial|: how far training moved them at all
    relative_diff: float  # max_abs_diff / max_param_change
    accuracy_mesh: float  # on all the digits
    accuracy_fedsgd: float


def data_parallel_vs_fedsgd(devices: int = backend.MESH_DEVICES, steps: int = 10, per_device_batch: int = 16,
                            learning_rate: float = 0.1, seed: int = 0) -> FedSGDMatch:
    """Train the digits MLP `steps` times both ways on identical data; compare the parameters.

    Data parallel: one SGD step per global batch, gradients all-reduced over a `devices`-wide mesh.
    FedSGD: each device is a client holding its slice of that batch, runs one local SGD step on it,
    and the server averages the deltas weighted by example counts. Equal client sizes make the two
    the same update; the returned `max_abs_diff` is float32 rounding only, and `relative_diff` is it
    over `max_param_change` (how far training moved the parameters at all).
    """
    import jax
    import jax.numpy as jnp
    import optax

    from mlsys_core.data import load_digits
    from mlsys_core.sharding.strategies import Trainer, data_mesh, train

    devices = validate.integer("devices", devices, 1)
    steps = validate.integer("steps", steps, 1)
    per_device_batch = validate.integer("per_device_batch", per_device_batch, 1)
    validate.positive("learning_rate", learning_rate)
    seed = validate.seed("seed", seed)
    x, y = load_digits()
    global_batch = devices * per_device_batch
    if steps * global_batch > len(x):
        raise ValueError(f"steps * devices * per_device_batch must be <= {len(x)} digits, got {steps * global_batch}")
    order = np.random.default_rng(seed).permutation(len(x))[: steps * global_batch].reshape(steps, global_batch)
    batches = [(x[i], y[i]) for i in order]

    model = fedavg.ModelConfig(learning_rate=learning_rate, batch_size=per_device_batch, epochs=1)
    params = fedavg.init_params(jax.random.key(seed), model)

    def loss(p, batch):
        bx, by = batch
        return fedavg.masked_loss(p, bx, by, jnp.ones(by.shape[0]))

    trainer = Trainer(loss, optax.sgd(learning_rate), data_mesh(devices), strategy="replicated")
    state, _ = train(trainer, params, batches)
    mesh_params = trainer.full_params(state)

    fl_params = params
    for bx, by in batches:
        clients = fedavg.ClientData(bx.reshape(devices, per_device_batch, -1), by.reshape(devices, per_device_batch),
                                    np.ones((devices, per_device_batch), np.float32),
                                    np.full(devices, per_device_batch, np.float32))
        fl_params = fedavg.vmap_round(fl_params, clients, clients.num_examples, model)

    diffs = jax.tree.leaves(jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), mesh_params, fl_params))
    moved = jax.tree.leaves(jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)), fl_params, params))
    max_diff, max_moved = float(max(diffs)), float(max(moved))
    return FedSGDMatch(max_diff, max_moved, max_diff / max_moved, float(fedavg.accuracy(mesh_params, x, y)),
                       float(fedavg.accuracy(fl_params, x, y)))


def fedsgd_equivalence(seeds=range(5), devices: int = backend.MESH_DEVICES, steps: int = 10,
                       per_device_batch: int = 16) -> np.ndarray:
    """(len(seeds),) `relative_diff` of `data_parallel_vs_fedsgd` per seed (data order and initial weights)."""
    return np.array([data_parallel_vs_fedsgd(devices, steps, per_device_batch, seed=s).relative_diff
                     for s in validate.seeds("seeds", seeds)])


def bf16_saving(compute_s, comm_s):
    """Fraction of a step saved by halving the bytes on the wire (f32 -> bf16), without overlap."""
    compute_s, comm_s = np.asarray(compute_s, float), np.asarray(comm_s, float)
    for name, value in (("compute_s", compute_s), ("comm_s", comm_s)):
        if not np.all(value >= 0):
            raise ValueError(f"{name} must be >= 0 (seconds), got {value!r}")
    if np.any(compute_s + comm_s == 0):
        raise ValueError("compute_s + comm_s must be > 0: a step of no time saves no fraction of it")
    return 0.5 * comm_s / (compute_s + comm_s)


class Bf16Saving(NamedTuple):
    """What halving the bytes on the wire saves: per chip count of a pod, or per phone's session."""

    compute_s: np.ndarray
    comm_s: np.ndarray  # in float32
    saving: np.ndarray  # fraction of the step or session, `bf16_saving(compute_s, comm_s)`
    chips: np.ndarray | None = None  # the pod sizes (None: phones)


def bf16_saving_tpu(workload: str = "BERT-large", chips=(16, 256, 1024, 4096), *, link_gb_per_s: float = 70.0,
                    utilisation: float = 0.4) -> Bf16Saving:
    """bf16 gradients on a TPU-v3 pod (Paper 1's cost model, WUS): step saving at each chip count.

    `link_gb_per_s` (per chip) and `utilisation` (achieved fraction of peak FLOP/s) are the cost
    model's assumptions; compute falls as 1/chips at a fixed global batch, the all-reduce does not.
    """
    base = _workload(workload)
    link_bytes_per_s = validate.positive("link_gb_per_s", link_gb_per_s) * 1e9
    utilisation = validate.number("utilisation", utilisation, 0.0, 1.0, low_open=True)
    chip = dataclasses.replace(cost_model.TPU_V3, link_bytes_per_s=link_bytes_per_s, utilisation=utilisation)
    f32 = dataclasses.replace(base, grad_bytes_per_param=4.0)
    chips = tuple(validate.integer("chips", c, 1) for c in chips)
    rows = [cost_model.step_time(f32, chip, c, "wus") for c in chips]
    compute = np.array([r.compute_s + r.update_s for r in rows])
    comm = np.array([r.allreduce_s for r in rows])
    return Bf16Saving(compute, comm, bf16_saving(compute, comm), np.asarray(chips))


def bf16_saving_edge(model_params: float = 1.4e6, epochs: int = 1, devices: int = 100_000,
                     seed: int = 0, link_factor: float = 1.0) -> Bf16Saving:
    """bf16 model and update transfers for an FL population (Paper 3): per-device session saving.

    A session downloads the model, trains `epochs` passes over its examples, uploads the update; its
    times come from the population's drawn speeds and bandwidths (medians 5 examples/s, 2 MB/s down,
    1 MB/s up, `PopulationConfig`'s defaults, both link medians times `link_factor`). Default size:
    Gboard's 1.4 M parameters.
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

    link_gb_per_s: np.ndarray
    utilisation: np.ndarray
    chips: np.ndarray
    pod_saving: np.ndarray
    phone_median_saving: np.ndarray
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
                      devices: int = 100_000, seeds=range(5)) -> Bf16PodVsPhone:
    """bf16's saving for a TPU-v3 pod (every `POD_CHIPS` size) at each link bandwidth x utilisation,
    against the median phone of `len(seeds)` drawn FL populations (`bf16_saving_edge`)."""
    bws = tuple(validate.positive("link_gb_per_s", b) for b in link_gb_per_s)
    utils = tuple(validate.number("utilisation", u, 0.0, 1.0, low_open=True) for u in utilisation)
    validate.choice("pod_chips", pod_chips, POD_CHIPS)
    if not bws or not utils:
        raise ValueError(f"link_gb_per_s and utilisation need >= 1 value each, got {bws!r} and {utils!r}")
    pod = np.array([[bf16_saving_tpu(workload, POD_CHIPS, link_gb_per_s=b, utilisation=u).saving for u in utils]
                    for b in bws])
    phone = np.array([np.median(bf16_saving_edge(model_params, 1, devices, s).saving)
                      for s in validate.seeds("seeds", seeds)])
    return Bf16PodVsPhone(np.array(bws), np.array(utils), np.array(POD_CHIPS), pod, phone, int(pod_chips))


def bf16_vs_phone_link(link_factors=(0.25, 0.5, 1.0, 2.0, 4.0), pod_link_gb_per_s: float = 70.0,
                       utilisation: float = 0.4, pod_chips: int = 4096, workload: str = "BERT-large",
                       model_params: float = 1.4e6, devices: int = 100_000, seeds=range(5)) -> np.ndarray:
    """(len(link_factors), len(seeds)) median phone's bf16 saving minus the `pod_chips` pod's, in
    percentage points, when the phones' link medians are scaled by each factor (> 0: FL gains more)."""
    validate.choice("pod_chips", pod_chips, POD_CHIPS)
    pod = bf16_saving_tpu(workload, (pod_chips,), link_gb_per_s=pod_link_gb_per_s, utilisation=utilisation)
    seeds = validate.seeds("seeds", seeds)
    phone = np.array([[np.median(bf16_saving_edge(model_params, 1, devices, s, link_factor=f).saving)
                       for s in seeds] for f in link_factors])
    return 100 * (phone - pod.saving[0])


def fedavg_delta_dtype(dtype: str = "bfloat16", rounds: int = 30, clients_per_round: int = 20,
                       num_clients: int = 100, alpha: float = 0.5, seed: int = 0) -> np.ndarray:
    """Test accuracy per round of FedAvg on non-IID digits when client deltas travel as `dtype`.

    Clients compute in float32; only the uploaded delta is rounded to `dtype` (what bf16 on the
    wire does). The same seed gives the same clients and selection for every dtype.
    """
    import jax
    import jax.numpy as jnp

    from mlsys_core.data import load_digits

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

    seeds: np.ndarray
    float32: np.ndarray  # (seeds, rounds)
    rounded: np.ndarray  # (seeds, rounds)
    dtype: str

    @property
    def final_gap(self) -> np.ndarray:
        """(seeds,) float32 minus rounded accuracy after the last round (> 0: rounding cost accuracy)."""
        return self.float32[:, -1] - self.rounded[:, -1]


def bf16_accuracy_gap(seeds=range(5), dtype: str = "bfloat16", rounds: int = 30, **fedavg_kwargs) -> DtypeAccuracy:
    """`fedavg_delta_dtype` in float32 and in `dtype` for each seed (same clients and selection per seed)."""
    seeds = validate.seeds("seeds", seeds)
    f32 = np.array([fedavg_delta_dtype("float32", rounds, seed=s, **fedavg_kwargs) for s in seeds])
    low = np.array([fedavg_delta_dtype(dtype, rounds, seed=s, **fedavg_kwargs) for s in seeds])
    return DtypeAccuracy(np.array(seeds), f32, low, dtype)


def bandana_effective_bandwidth(placement: str = "shp", cache_fraction: float = 0.1, threshold: int = 2,
                                post_lookups_per_request: float = 4.0, seed: int = 0) -> float:
    """Useful / read bytes that Bandana measures for embedding lookups (notebook 02's small workload).

    Calls `bandana.experiments.explore`: vectors placed in 4 KB blocks by `placement`, a DRAM cache of
    `cache_fraction` of the table bytes with admission threshold `threshold`, the future half of the
    trace through it. This is the share of each block read from NVM that the lookups actually use.
    """
    validate.seed("seed", seed)
    from mlsys_core.bandana import experiments as bandana_experiments

    return float(bandana_experiments.explore(cache_fraction, threshold, placement, 0.25, post_lookups_per_request,
                                             seed).effective_bandwidth)


class NVMLayout(NamedTuple):
    """One layout's optimizer state on the NVM drive beside each chip."""

    state_bytes_per_chip: float
    nvm_stream_s: float  # read + write of that state each step, no overlap
    step_compute_s: float  # the layout's own step (Paper 1's cost model)
    step_s: float
    slowdown: float  # (step + stream) / step
    memory_bill_saving: float  # fraction of the pod's memory cost moved from DRAM prices to NVM's


class NVMOptimizerState(NamedTuple):
    """The optimizer state on NVM, replicated and weight-update sharded, and the survey's whole-memory sum."""

    replicated: NVMLayout
    wus: NVMLayout
    cost: MemoryCost  # every chip's HBM priced as DRAM against as NVM
    useful_fraction: float  # of each 4 KB block read that the state's reads use
    stream_bytes_per_s: float  # the drive's useful bytes per second at that fraction
    chips: int


def nvm_optimizer_state(workload: str = "BERT-large", chips: int = 1024, hbm_bytes_per_chip: float = 32e9,
                        state_bytes_per_param: float = 8.0, useful_fraction: float = 1.0,
                        prices: MemoryPrices = MemoryPrices()) -> NVMOptimizerState:
    """Optimizer state (Adam/LAMB: m and v, 8 B per parameter) on one Optane drive per chip.

    Replicated, every chip reads and writes the whole state each step, and its step is the
    replicated step of Paper 1's cost model; with weight-update sharding only its 1/N shard, against
    the WUS step. The drive delivers `useful_fraction` of its 4 KB-block peak as useful bytes: 1 for
    a dense state streamed whole (every byte of every block is used), Bandana's measured effective
    bandwidth (`bandana_effective_bandwidth`) for a state read row by row like embedding lookups.
    `memory_bill_saving` is the fraction of the pod's memory cost (`hbm_bytes_per_chip` per chip, all
    priced as DRAM) saved by moving that state to NVM; `cost` is the survey's whole-memory
    comparison (`memory_cost_usd`).
    """
    wl, nvm = _workload(workload), NVMDevice()
    chips = validate.integer("chips", chips, 1)
    validate.positive("hbm_bytes_per_chip", hbm_bytes_per_chip)
    validate.positive("state_bytes_per_param", state_bytes_per_param)
    useful_fraction = validate.probability("useful_fraction", useful_fraction, open_low=True)
    rate = nvm.effective_bandwidth_bytes_per_s(useful_fraction)
    cheaper = 1 - prices.nvm_usd_per_gb / prices.dram_usd_per_gb

    def layout(name: str, shards: int) -> NVMLayout:
        step = cost_model.step_time(wl, cost_model.TPU_V3, chips, name)
        state = wl.params * state_bytes_per_param / shards
        stream_s = 2 * state / rate
        return NVMLayout(state, stream_s, step.compute_s, step.total_s, (step.total_s + stream_s) / step.total_s,
                         min(state, hbm_bytes_per_chip) / hbm_bytes_per_chip * cheaper)

    return NVMOptimizerState(layout("replicated", 1), layout("wus", chips),
                             memory_cost_usd(chips * hbm_bytes_per_chip, 0.0, prices), useful_fraction, rate, chips)


class TicTacVsLink(NamedTuple):
    """TAC against random order at each link bandwidth, with the bound it lives under."""

    bandwidth_gbps: np.ndarray
    tac_speedup: np.ndarray  # throughput, TAC / random
    headroom: np.ndarray  # S = (U - L) / L, mean over workers and iterations
    comm_share: np.ndarray  # transfer time / U


def tictac_vs_bandwidth(model: str = "resnet", mode: str = "train", bandwidths_gbps=(10.0, 1.0, 0.1, 0.01),
                        latency_us: float = 50.0, workers: int = 4, iterations: int = 10, seed: int = 0,
                        local_steps: int = 1) -> TicTacVsLink:
    """TAC's throughput over random order as the link slows from data-centre to phone speeds.

    Also returns the headroom S = (U - L) / L of perfect overlap: when transfers dominate, S -> 0,
    so no order can help much: TAC/random <= 1 + S is the bound TicTac's gain lives under. With
    `local_steps` > 1 (FedAvg), a download is followed by that many steps, of which ordering can
    only overlap the first: the speed-up is of the whole (download + steps) session.
    """
    validate.seed("seed", seed)
    local_steps = validate.integer("local_steps", local_steps, 1)
    graph = tictac_experiments.model_graph(model, mode)
    speedup, headroom, comm_share = [], [], []
    for bw in bandwidths_gbps:
        bw = validate.positive("bandwidths_gbps", bw)
        cluster = Cluster(workers=workers, bandwidth_gbps=bw, latency_us=latency_us)
        res = tictac_experiments.compare(graph, cluster, ("random", "tac"), iterations, seed)
        r, tac = res["random"], res["tac"]
        more = (local_steps - 1) * r.comp  # the steps after the first, the same for every order
        speedup.append(float((r.iteration_time.mean() + more) / (tac.iteration_time.mean() + more)))
        headroom.append(float(np.mean((r.upper - r.lower) / r.lower)))
        comm_share.append(float(np.mean(r.comm / r.upper)))
    return TicTacVsLink(np.asarray(bandwidths_gbps, float), np.array(speedup), np.array(headroom),
                        np.array(comm_share))


def tictac_speedup_over_seeds(bandwidths_gbps=(0.004, 0.016, 0.064), seeds=range(5), model: str = "resnet",
                              mode: str = "train", latency_us: float = 50.0, workers: int = 1,
                              iterations: int = 10, local_steps: int = 1) -> np.ndarray:
    """(len(bandwidths_gbps), len(seeds)) TAC/random throughput; a seed draws the random orders.

    Defaults: one phone (`workers=1`) on its own downlink of 4, 16 (the FL population's median) and
    64 Mbit/s.
    """
    return np.array([tictac_vs_bandwidth(model, mode, bandwidths_gbps, latency_us, workers, iterations, s,
                                         local_steps).tac_speedup for s in validate.seeds("seeds", seeds)]).T


def phone_downlink_mbit(percentiles=(10, 25, 50, 75, 90), devices: int = 100_000, seed: int = 0) -> np.ndarray:
    """The FL population's downlink (Mbit/s) at each percentile of its drawn devices (seed `seed`)."""
    for q in percentiles:
        validate.number("percentiles", q, 0.0, 100.0)
    pop = make_population(PopulationConfig(num_devices=validate.integer("devices", devices, 1)),
                          validate.seed("seed", seed))
    return np.percentile(pop.down_bytes_per_s, percentiles) * 8 / 1e6


class PhoneTicTac(NamedTuple):
    """TAC/random and the downlink it ran on, (percentiles, seeds) each."""

    percentiles: np.ndarray
    downlink_mbit: np.ndarray
    tac_speedup: np.ndarray


def tictac_phone_percentiles(percentiles=(10, 25, 50, 75, 90), seeds=range(5), model: str = "resnet",
                             mode: str = "train", iterations: int = 10, local_steps: int = 1,
                             devices: int = 100_000) -> PhoneTicTac:
    """TAC/random for one phone at each percentile of the FL population's downlink.

    Seed s draws the population (so the link at each percentile) and the random orders.
    """
    seeds = validate.seeds("seeds", seeds)
    links = np.array([phone_downlink_mbit(percentiles, devices, s) for s in seeds]).T
    gain = np.array([tictac_vs_bandwidth(model, mode, tuple(links[:, j] / 1e3), 50.0, 1, iterations, s,
                                         local_steps).tac_speedup for j, s in enumerate(seeds)]).T
    return PhoneTicTac(np.asarray(percentiles, float), links, gain)


def pod_cluster(graph, link_gb_per_s: float, workload: str = "BERT-large", chips: int = 4096,
                utilisation: float = 0.4) -> Cluster:
    """A one-worker TicTac cluster whose transfer/compute balance is the pod's (Paper 1's cost model).

    The link runs at the chip's `link_gb_per_s` (x 8 for Gbit/s) with the cost model's 1 us hop; the
    compute rate is set so that the graph's transfers over its compute equal the pod step's
    all-reduce over its compute + update at `chips` chips: the regime ordering works in, carried
    from BERT-large on a pod to the simulator's small graph. An all-reduce is a reduce-scatter and
    an all-gather, so the graph's pulls and its gradient pushes each get half of it.
    """
    validate.positive("link_gb_per_s", link_gb_per_s)
    chip = dataclasses.replace(cost_model.TPU_V3, link_bytes_per_s=link_gb_per_s * 1e9,
                               utilisation=validate.number("utilisation", utilisation, 0.0, 1.0, low_open=True))
    step = cost_model.step_time(_workload(workload), chip, validate.integer("chips", chips, 2), "wus")
    ratio = step.allreduce_s / (step.compute_s + step.update_s)
    probe = Cluster(workers=1, bandwidth_gbps=link_gb_per_s * 8, latency_us=1.0, op_overhead_us=0.0)
    comm = float(probe.recv_seconds(graph).sum())
    gflops = float(np.sum(graph.compute_flops)) / (2 * comm / ratio) / 1e9
    return dataclasses.replace(probe, gflops=gflops)


class PodTicTac(NamedTuple):
    link_gb_per_s: np.ndarray
    tac_speedup: np.ndarray  # (bandwidths, seeds)
    comm_share: np.ndarray  # (bandwidths,)


def tictac_pod(link_gb_per_s=(70.0, 100.0, 150.0, 200.0, 250.0, 330.0), seeds=range(5), model: str = "resnet",
               mode: str = "train", iterations: int = 10, workload: str = "BERT-large",
               chips: int = 4096) -> PodTicTac:
    """TAC/random on a `pod_cluster` at each per-chip link bandwidth and seed, with the simulated
    step's transfer share of U (pulls and pushes) at each bandwidth."""
    graph = tictac_experiments.model_graph(model, mode)
    seeds = validate.seeds("seeds", seeds)
    gain, share = [], []
    for bw in link_gb_per_s:
        cluster = pod_cluster(graph, bw, workload, chips)
        row = []
        for s in seeds:
            res = tictac_experiments.compare(graph, cluster, ("random", "tac"), iterations, s)
            row.append(float(res["random"].iteration_time.mean() / res["tac"].iteration_time.mean()))
        gain.append(row)
        r = res["random"]
        share.append(float(np.mean((r.comm + r.push_comm) / r.upper)))
    return PodTicTac(np.asarray(link_gb_per_s, float), np.array(gain), np.array(share))


# --- FL's fault tolerance in a pod (survey: "the fault tolerant system design ... lends well to TPUs") ---
#
# Time is counted in step times of the healthy pod. A replica that fails during a step loses that
# step's gradient. FL's answer (Paper 3) is to commit the round without the device: "quorum" commits
# the survivors' average and restores the failed replica's WUS shard from its peer copy
# (`recovery_steps`). The data-centre answer is to stop, restart and roll back to the last
# checkpoint ("restart"). Both policies see the same failures: slot i, replica r fails when
# draws[i, r] < failure_rate, so a higher rate fails a superset of the same replica-steps (quorum's
# goodput then never rises with the rate, seed by seed; a restart's rollbacks shift which slots later
# steps meet, so its goodput falls with the rate on average over seeds).

FAULT_POLICIES = ("quorum", "restart")
MAX_DRAWS = 10**8  # replica-steps a run may draw (budget_steps x replicas): 800 MB of float64


@dataclasses.dataclass(frozen=True)
class FaultConfig:
    """A pod of `replicas` data-parallel replicas under failures, all times in healthy step times.

    `failure_rate`: chance that one replica fails during one step. `checkpoint_interval` committed
    steps between checkpoints, each costing `checkpoint_steps` (restart policy); a failure costs the
    step it hit, `restart_steps` to restart, and the work since the last checkpoint. Quorum commit
    costs `recovery_steps` per step with a failure (restoring the failed replica's shard). Runs last
    `budget_steps` of wall clock; budget_steps x replicas is at most `MAX_DRAWS`.
    """

    replicas: int = 8
    failure_rate: float = 0.001
    checkpoint_interval: int = 50
    checkpoint_steps: float = 2.0
    restart_steps: float = 20.0
    recovery_steps: float = 1.0
    budget_steps: float = 2000.0

    def __post_init__(self):
        validate.integer("replicas", self.replicas, 1)
        validate.probability("failure_rate", self.failure_rate, open_high=True)
        validate.integer("checkpoint_interval", self.checkpoint_interval, 1)
        for name in ("checkpoint_steps", "restart_steps", "recovery_steps"):
            validate.number(name, getattr(self, name), 0.0)
        validate.number("budget_steps", self.budget_steps, 1.0)
        if math.ceil(self.budget_steps) * self.replicas > MAX_DRAWS:
            raise ValueError(f"budget_steps x replicas must be <= {MAX_DRAWS:.0e} (one draw per replica-step), "
                             f"got {self.budget_steps:g} x {self.replicas}")


@dataclasses.dataclass(frozen=True)
class FaultRun:
    """One policy's run: `masks` (committed steps, replicas), 1 where a replica's gradient entered a
    committed step of the final model; `goodput` = its examples over what a pod without failures
    would have trained in the same wall clock; `failures` replica-step failures seen."""

    policy: str
    masks: np.ndarray
    goodput: float
    failures: int


def fault_draws(config: FaultConfig, seed: int) -> np.ndarray:
    """(slots, replicas) uniform draws: the seeded failure events of one run (enough slots for the budget)."""
    validate.instance("config", config, FaultConfig)
    slots = int(np.ceil(config.budget_steps)) + 1
    return np.random.default_rng(validate.seed("seed", seed)).random((slots, config.replicas))


def _check_draws(config: FaultConfig, draws) -> np.ndarray:
    validate.instance("config", config, FaultConfig)
    draws = validate.reals("draws", draws, 0.0, 1.0, ndim=2)
    if draws.shape[1] != config.replicas:
        raise ValueError(f"draws must have one column per replica ({config.replicas}), got shape {draws.shape}")
    return draws


def quorum_commit(config: FaultConfig, draws: np.ndarray) -> FaultRun:
    """Commit every step with the replicas that survived it (FL drops a device the same way)."""
    draws = _check_draws(config, draws)
    alive = draws >= config.failure_rate
    hit = ~alive.all(axis=1)
    finish = np.cumsum(1.0 + config.recovery_steps * hit)
    done = finish <= config.budget_steps
    masks = alive[done & alive.any(axis=1)].astype(np.float32)
    goodput = float(masks.sum() / (config.budget_steps * config.replicas))
    return FaultRun("quorum", masks, goodput, int((~alive[done]).sum()))


def restart_from_checkpoint(config: FaultConfig, draws: np.ndarray) -> FaultRun:
    """Stop at a failure, restart, and redo the steps since the last checkpoint (a small state machine:
    one slot of the pod per iteration, far fewer than the vectorised simulators' events)."""
    draws = _check_draws(config, draws)
    any_fail = (draws < config.failure_rate).any(axis=1)
    t, committed, saved, failures = 0.0, 0, 0, 0
    for i in range(len(draws)):
        if any_fail[i]:
            t += 1.0 + config.restart_steps
            if t > config.budget_steps:
                break
            committed, failures = saved, failures + int((draws[i] < config.failure_rate).sum())
            continue
        if t + 1.0 > config.budget_steps:
            break
        t, committed = t + 1.0, committed + 1
        if committed % config.checkpoint_interval == 0:
            t += config.checkpoint_steps
            saved = committed  # a checkpoint cut short by the budget still holds what it wrote before
    masks = np.ones((committed, config.replicas), np.float32)
    return FaultRun("restart", masks, committed / config.budget_steps, failures)


def fault_run(policy: str, config: FaultConfig, seed: int) -> FaultRun:
    """One seeded run of `policy` ("quorum" or "restart")."""
    validate.choice("policy", policy, FAULT_POLICIES)
    validate.instance("config", config, FaultConfig)
    validate.seed("seed", seed)
    draws = fault_draws(config, seed)
    return quorum_commit(config, draws) if policy == "quorum" else restart_from_checkpoint(config, draws)


class FaultGoodput(NamedTuple):
    """Goodput of each policy, (failure rates, checkpoint intervals, seeds)."""

    failure_rates: np.ndarray
    checkpoint_intervals: np.ndarray
    quorum: np.ndarray
    restart: np.ndarray

    def of(self, policy: str) -> np.ndarray:
        return getattr(self, validate.choice("policy", policy, FAULT_POLICIES))


def goodput_grid(failure_rates, checkpoint_intervals=(50,), seeds=range(5),
                 config: FaultConfig = FaultConfig()) -> FaultGoodput:
    """Goodput of both policies over failure rates x checkpoint intervals x seeds."""
    seeds = validate.seeds("seeds", seeds)
    out = {}
    for policy in FAULT_POLICIES:
        out[policy] = np.array([[[fault_run(policy, dataclasses.replace(config, failure_rate=p,
                                                                        checkpoint_interval=k), s).goodput
                                  for s in seeds] for k in checkpoint_intervals] for p in failure_rates])
    return FaultGoodput(np.asarray(failure_rates, float), np.asarray(checkpoint_intervals), out["quorum"],
                        out["restart"])


def straggler_step_times(replicas: int = 8, straggler_p: float = 0.03, slow_factor: float = 4.0,
                         jitter: float = 0.1, steps: int = 2000, seed: int = 0) -> np.ndarray:
    """(steps, replicas) step times of each replica, in healthy step times: log-normal jitter, and
    with chance `straggler_p` a replica runs `slow_factor` times slower that step."""
    rng = np.random.default_rng(validate.seed("seed", seed))
    validate.probability("straggler_p", straggler_p)
    validate.number("slow_factor", slow_factor, 1.0)
    validate.number("jitter", jitter, 0.0)
    shape = (validate.integer("steps", steps, 1), validate.integer("replicas", replicas, 1))
    times = np.exp(jitter * rng.standard_normal(shape))
    return times * np.where(rng.random(shape) < straggler_p, slow_factor, 1.0)


@dataclasses.dataclass(frozen=True)
class StragglerRun:
    """`masks` (committed steps, replicas) of the steps finished within the budget; `goodput`: their
    examples over `budget` x replicas (a pod whose every replica ran at the healthy speed)."""

    policy: str
    masks: np.ndarray
    goodput: float
    mean_step: float


def straggler_policy(times: np.ndarray, deadline: float | None, budget: float | None = None) -> StragglerRun:
    """Wait for all (`deadline` None: the step lasts as long as its slowest replica) or commit at a
    reporting deadline with the replicas that made it (FL's reporting window; at least the fastest
    one, so a step always commits)."""
    times = np.asarray(times, float)
    budget = float(times.shape[0]) if budget is None else validate.positive("budget", budget)
    slowest = times.max(axis=1)
    if deadline is None:
        step, made = slowest, np.ones_like(times, bool)
    else:
        validate.positive("deadline", deadline)
        step = np.maximum(np.minimum(slowest, deadline), times.min(axis=1))
        made = times <= step[:, None]
    done = np.cumsum(step) <= budget
    masks = made[done].astype(np.float32)
    return StragglerRun("wait" if deadline is None else f"deadline {deadline:g}", masks,
                        float(masks.sum() / (budget * times.shape[1])), float(step.mean()))


class StragglerGoodput(NamedTuple):
    """Goodput of waiting for all and of the deadline, (straggler chances, seeds) each."""

    straggler_p: np.ndarray
    wait: np.ndarray
    deadline: np.ndarray


def straggler_goodput(straggler_ps=(0.01, 0.03, 0.1, 0.3), deadline: float = 1.5, seeds=range(5),
                      **times_kwargs) -> StragglerGoodput:
    """Goodput of waiting for all and of a reporting deadline at each straggler chance, per seed."""
    seeds = validate.seeds("seeds", seeds)
    wait, cut = [], []
    for q in straggler_ps:
        runs = [straggler_step_times(straggler_p=q, seed=s, **times_kwargs) for s in seeds]
        wait.append([straggler_policy(t, None).goodput for t in runs])
        cut.append([straggler_policy(t, deadline).goodput for t in runs])
    return StragglerGoodput(np.asarray(straggler_ps, float), np.array(wait), np.array(cut))


def _example_losses(params, x, y):
    import optax

    return optax.softmax_cross_entropy_with_integer_labels(fedavg.logits_fn(params, x), y)


def _weighted_loss(params, batch):
    """Mean of per-example weight x cross-entropy on this device's (x, y, weight) batch."""
    x, y, w = batch
    return (w * _example_losses(params, x, y)).mean()


def _plain_loss(params, batch):
    x, y = batch
    return _example_losses(params, x, y).mean()


def replica_weights(mask, per_replica_batch: int) -> np.ndarray:
    """Per-example weights of one step: R / (replicas alive) for a surviving replica's examples, 0
    for a failed one's. Each device's mean loss times these, averaged over the R devices (the
    strategy's pmean), is the mean over the survivors: the quorum's gradient."""
    mask = np.asarray(mask, np.float32)
    alive = mask.sum()
    scale = np.where(mask > 0, len(mask) / max(alive, 1.0), 0.0).astype(np.float32)
    return np.repeat(scale, validate.integer("per_replica_batch", per_replica_batch, 1))


@dataclasses.dataclass(frozen=True)
class MaskedTraining:
    """Test loss and accuracy after each committed step (len = steps + 1, the first before training)."""

    test_loss: np.ndarray
    test_accuracy: np.ndarray
    params: dict


@functools.lru_cache(maxsize=8)
def _wus_trainer(replicas: int, learning_rate: float, weighted: bool):
    """One WUS Trainer (Adam) per mesh size and loss, so seeds and policies share its compiled step."""
    import optax

    from mlsys_core.sharding.strategies import Trainer, data_mesh

    return Trainer(_weighted_loss if weighted else _plain_loss, optax.adam(learning_rate), data_mesh(replicas),
                   strategy="wus")


def masked_wus_training(masks, per_replica_batch: int = 8, learning_rate: float = 0.01, seed: int = 0,
                        eval_every: int = 1) -> MaskedTraining:
    """WUS training (Paper 1) of the digits MLP with Adam on a `len(masks[0])`-device mesh, step i on
    batch i with replica r's examples weighted by `replica_weights(masks[i])` (0: skipped).

    All-ones masks are plain WUS training; the batches come from the same seeded order whatever the
    masks, so a restart (which replays batches) and a quorum run differ only in what they commit.
    """
    import jax

    from mlsys_core.data import digits_split, epoch_batches

    masks = np.asarray(masks, np.float32)
    if masks.ndim != 2 or masks.shape[1] < 1:
        raise ValueError(f"masks must be (steps, replicas), got shape {masks.shape}")
    per_replica_batch = validate.integer("per_replica_batch", per_replica_batch, 1)
    eval_every = validate.integer("eval_every", eval_every, 1)
    seed = validate.seed("seed", seed)
    replicas = masks.shape[1]
    x, y, xt, yt = digits_split(seed)
    params = fedavg.init_params(jax.random.key(seed), fedavg.ModelConfig())
    trainer = _wus_trainer(replicas, validate.positive("learning_rate", learning_rate), weighted=True)
    batches = epoch_batches(x, y, replicas * per_replica_batch, max(len(masks), 1), seed)
    state = trainer.init(params)

    def evaluate(p):
        return (float(_plain_loss(p, (xt, yt))), float(fedavg.accuracy(p, xt, yt)))

    curve = [evaluate(params)]
    for i, mask in enumerate(masks):
        if mask.sum() > 0:
            bx, by = batches[i]
            state, loss = trainer.step(state, trainer.shard_batch((bx, by, replica_weights(mask, per_replica_batch))))
            # one step in flight at a time (as `sharding.strategies.train`): queued collectives on a busy
            # host's simulated devices can starve a rendezvous
            jax.block_until_ready(loss)
        if (i + 1) % eval_every == 0 or i + 1 == len(masks):
            curve.append(evaluate(trainer.full_params(state)))
    final = trainer.full_params(state)
    loss, acc = np.array(curve).T
    return MaskedTraining(loss, acc, final)


def plain_wus_training(steps: int, replicas: int = backend.MESH_DEVICES, per_replica_batch: int = 8,
                       learning_rate: float = 0.01, seed: int = 0) -> dict:
    """The same run through `sharding.strategies.train` with the unweighted loss: the reference that
    quorum commit without failures must equal."""
    validate.seed("seed", seed)
    import jax

    from mlsys_core.data import digits_split, epoch_batches
    from mlsys_core.sharding.strategies import train

    x, y, _, _ = digits_split(seed)
    params = fedavg.init_params(jax.random.key(seed), fedavg.ModelConfig())
    trainer = _wus_trainer(replicas, validate.positive("learning_rate", learning_rate), weighted=False)
    state, _ = train(trainer, params, epoch_batches(x, y, replicas * per_replica_batch, steps, seed))
    return trainer.full_params(state)


# --- data-centre training cast as FL (survey: "dispatching data onto edge devices, with only one extra
# round of communication") ---------------------------------------------------------------------------

SPLITS = ("iid", "dirichlet")


def dispatch(split: str = "iid", devices: int = backend.MESH_DEVICES, alpha: float = 0.5,
             seed: int = 0) -> tuple[list[np.ndarray], tuple]:
    """Deal the digits' training split (`data.digits_split(seed)`) out to `devices`.

    "iid": a seeded permutation cut into equal shards (the remainder, fewer than `devices` examples,
    stays home); "dirichlet": each class shared by Dir(alpha)
    weights (`fl.fedavg.dirichlet_split`; some devices may get nothing). Returns (shards of indices
    into x, (x, y, x_test, y_test)).
    """
    from mlsys_core.data import digits_split

    validate.choice("split", split, SPLITS)
    devices = validate.integer("devices", devices, 1)
    seed = validate.seed("seed", seed)
    x, y, xt, yt = digits_split(seed)
    if split == "iid":
        per = len(x) // devices
        shards = np.random.default_rng(seed).permutation(len(x))[: per * devices].reshape(devices, per)
    else:
        shards = fedavg.dirichlet_split(y, devices, validate.positive("alpha", alpha), seed)
    return [np.asarray(s, np.int64) for s in shards], (x, y, xt, yt)


def round_batches(shards, rounds: int, local_steps: int = 1, batch: int = 16, seed: int = 0) -> np.ndarray:
    """(rounds, devices, local_steps * batch) example indices: what each device trains on in each round,
    cycling through its own shard in a seeded order reshuffled every pass (-1 for a device with no data).

    With IID shards and one local step, round r's rows put together are data-parallel step r's
    global batch: the same examples, split over the same devices."""
    rounds = validate.integer("rounds", rounds, 1)
    per_round = validate.integer("local_steps", local_steps, 1) * validate.integer("batch", batch, 1)
    rng = np.random.default_rng(validate.seed("seed", seed))
    out = np.full((rounds, len(shards), per_round), -1, np.int64)
    for k, shard in enumerate(shards):
        if len(shard) == 0:
            continue
        passes = -(-rounds * per_round // len(shard))
        order = np.concatenate([rng.permutation(shard) for _ in range(passes)])
        out[:, k] = order[: rounds * per_round].reshape(rounds, per_round)
    return out


def protocol_participants(devices: int = 100, goal_count: int = 10, rounds: int = 30, seed: int = 0,
                          model_bytes: int = 9640) -> list[np.ndarray]:
    """Device ids in each of the first `rounds` committed rounds of FL's round protocol (Paper 3).

    The population is notebook 03's, but always eligible (a data centre's own devices: charging,
    idle and unmetered around the clock, no cool-down between rounds), so what remains is the
    protocol's partial participation: over-selection, drop-outs and the reporting deadline.
    Uses `fl.protocol.round_participants` (FL_API.md). Raises ValueError if the run commits fewer.
    """
    from mlsys_core.fl import protocol

    devices = validate.integer("devices", devices, 1)
    goal_count = validate.integer("goal_count", goal_count, 1, devices)
    rounds = validate.integer("rounds", rounds, 1)
    pop = make_population(PopulationConfig(num_devices=devices, window_length_h=23.5, window_length_std_h=0.0,
                                           unmetered_fraction=1.0), validate.seed("seed", seed))
    config = protocol.RoundConfig(goal_count=goal_count, checkpoint_bytes=model_bytes, update_bytes=model_bytes)
    res = protocol.simulate(pop, config, protocol.SteeringConfig(cooldown_s=0.0), 300.0 * rounds, seed)
    part = protocol.round_participants(res)
    ids = [part.ids_of(r) for r in np.flatnonzero(part.committed)]
    if len(ids) < rounds:
        raise ValueError(f"the protocol committed {len(ids)} rounds, fewer than rounds={rounds}")
    return ids[:rounds]


class FLRun(NamedTuple):
    """A training over rounds (federated, or data parallel on a mesh): its test accuracy and final parameters."""

    accuracy: np.ndarray  # (rounds + 1,) test accuracy, the first before training
    params: dict


def federated_rounds(idx: np.ndarray, data: tuple, shard_sizes, participants=None, learning_rate: float = 0.1,
                     batch: int = 16, seed: int = 0) -> np.ndarray:
    """FedAvg rounds over dispatched data (Paper 3's `vmap_round`): in round r the participating devices
    (all with data, or `participants[r]`) each train on their rows of `idx[r]` and the server averages
    the deltas weighted by shard size. Returns `FLRun`: test accuracy before training and after each
    round, and the final parameters."""
    import jax

    x, y, xt, yt = data
    rounds, devices, per_round = idx.shape
    sizes = np.asarray(shard_sizes, np.float32)
    model = fedavg.ModelConfig(learning_rate=validate.positive("learning_rate", learning_rate),
                               batch_size=validate.integer("batch", batch, 1), epochs=1)
    params = fedavg.init_params(jax.random.key(validate.seed("seed", seed)), model)
    acc = [float(fedavg.accuracy(params, xt, yt))]
    has_data = (idx[0] >= 0).all(axis=1)
    for r in range(rounds):
        taking = has_data.copy()
        if participants is not None:
            taking &= np.isin(np.arange(devices), np.asarray(participants[r], np.int64))
        if taking.any():  # every device computes (one compiled shape); only those taking part weigh in
            rows = np.maximum(idx[r], 0)
            clients = fedavg.ClientData(x[rows], y[rows], np.ones(rows.shape, np.float32), sizes)
            params = fedavg.vmap_round(params, clients, sizes * taking, model)
        acc.append(float(fedavg.accuracy(params, xt, yt)))
    return FLRun(np.array(acc), params)


def data_parallel_rounds(idx: np.ndarray, data: tuple, learning_rate: float = 0.1, batch: int = 16,
                         seed: int = 0) -> FLRun:
    """Synchronous data parallelism (Paper 1, replicated SGD on a `devices`-wide mesh) over the same
    indices: step r's global batch is every device's first local batch of round r. Returns test
    accuracy before training and after each step, and the final parameters."""
    import jax
    import optax

    from mlsys_core.sharding.strategies import Trainer, data_mesh

    x, y, xt, yt = data
    rounds, devices, _ = idx.shape
    batch = validate.integer("batch", batch, 1)
    if (idx[:, :, :batch] < 0).any():
        raise ValueError("data_parallel_rounds needs every device to hold data (an IID dispatch)")

    def loss(p, b):
        bx, by = b
        return fedavg.masked_loss(p, bx, by, jax.numpy.ones(by.shape[0]))

    params = fedavg.init_params(jax.random.key(validate.seed("seed", seed)), fedavg.ModelConfig())
    trainer = Trainer(loss, optax.sgd(validate.positive("learning_rate", learning_rate)), data_mesh(devices),
                      strategy="replicated")
    state = trainer.init(params)
    acc = [float(fedavg.accuracy(params, xt, yt))]
    for r in range(rounds):
        rows = idx[r, :, :batch].reshape(-1)
        state, _ = trainer.step(state, trainer.shard_batch((x[rows], y[rows])))
        acc.append(float(fedavg.accuracy(trainer.full_params(state), xt, yt)))
    return FLRun(np.array(acc), trainer.full_params(state))


def rounds_to_reach(accuracy, target: float) -> float:
    """First round (1-based, the 0th entry is before training) whose accuracy reaches `target`; inf if none."""
    hit = np.flatnonzero(np.asarray(accuracy)[1:] >= target)
    return float(hit[0] + 1) if len(hit) else float("inf")


@dataclasses.dataclass(frozen=True)
class CastAsFL:
    """Test accuracy per seed and round (seeds, rounds + 1) of each FL configuration and of the
    data-parallel reference (FL on IID shards of the mesh size, one local step, everyone: the same
    update as data parallelism, `data_parallel_vs_fedsgd`); `extra_rounds_cost[name]` (seeds,): the
    rounds a configuration needs to reach the reference's final accuracy, plus the dispatch round,
    over the reference's steps (1 + 1/steps: costs exactly the one extra round; a run that never gets
    there within the horizon counts as horizon + 1 rounds)."""

    accuracy: dict
    reference: np.ndarray
    extra_rounds_cost: dict


CAST_CONFIGS = {
    "IID, everyone": dict(split="iid", participation="full"),
    "IID, protocol": dict(split="iid", participation="protocol"),
    "Dirichlet, everyone": dict(split="dirichlet", participation="full"),
    "Dirichlet, protocol": dict(split="dirichlet", participation="protocol"),
}


def cast_as_fl(configs=tuple(CAST_CONFIGS), devices: int = 100, goal_count: int = 10, rounds: int = 30,
               local_steps: int = 1, alpha: float = 0.5, seeds=range(5), batch: int = 16,
               horizon: int = 3) -> CastAsFL:
    """Dispatch the digits to `devices` and train with FedAvg rounds in each configuration of
    `CAST_CONFIGS` (split x participation: everyone, or the protocol's committed devices with
    `goal_count`); up to `horizon` x `rounds` rounds to see whether they catch up with the reference
    after `rounds` steps."""
    seeds = validate.seeds("seeds", seeds)
    rounds = validate.integer("rounds", rounds, 1)
    long = rounds * validate.integer("horizon", horizon, 1)
    acc = {name: [] for name in configs}
    ref = []
    for s in seeds:
        shards, data = dispatch("iid", backend.MESH_DEVICES, seed=s)
        ref.append(federated_rounds(round_batches(shards, rounds, 1, batch, s), data, [len(p) for p in shards],
                                    batch=batch, seed=s).accuracy)
        part = None
        for name in configs:
            cfg = CAST_CONFIGS[validate.choice("configs", name, tuple(CAST_CONFIGS))]
            shards, data = dispatch(cfg["split"], devices, alpha, s)
            if cfg["participation"] == "protocol" and part is None:
                part = protocol_participants(devices, goal_count, long, s)
            idx = round_batches(shards, long, local_steps, batch, s)
            acc[name].append(federated_rounds(idx, data, [len(p) for p in shards],
                                              part if cfg["participation"] == "protocol" else None, batch=batch,
                                              seed=s).accuracy)
    ref = np.array(ref)
    acc = {k: np.array(v) for k, v in acc.items()}
    # a run that never reaches the reference within the horizon counts as needing one round more (a lower bound)
    need = {k: np.array([min(rounds_to_reach(a, r[-1]), long + 1) for a, r in zip(v, ref)]) for k, v in acc.items()}
    cost = {k: (v + 1) / rounds for k, v in need.items()}
    return CastAsFL(acc, ref, cost)


class DispatchCost(NamedTuple):
    """Per device count: bytes of a shard and of a round, seconds of each on a phone and on a pod."""

    devices: np.ndarray
    dispatch_bytes: np.ndarray
    round_bytes: np.ndarray
    phone_dispatch_s: np.ndarray
    phone_round_s: np.ndarray
    pod_dispatch_s: np.ndarray
    pod_round_s: np.ndarray

    @property
    def phone_ratio(self) -> np.ndarray:
        """Dispatch time over one round's transfer time, median phone (rounds)."""
        return self.phone_dispatch_s / self.phone_round_s

    @property
    def pod_ratio(self) -> np.ndarray:
        """Dispatch time over one step's all-reduce, TPU-v3 link."""
        return self.pod_dispatch_s / self.pod_round_s


def dispatch_cost(devices=(8, 40, 100, 400), model_params: int = 2410, examples: int = 1437,
                  bytes_per_example: float = 64 * 4 + 4, seed: int = 0) -> DispatchCost:
    """The dispatch round's bytes and time per device against one training round's, for phones (FL's
    population: the median device's links) and for a pod (Paper 1's cost model: TPU-v3 links).

    Phone: dispatch = shard bytes down; a round = model down + update up (float32). Pod: dispatch =
    shard bytes over one link; a round (step) = the all-reduce of the model's gradient. Defaults:
    the digits (1437 x 64 float32 pixels + a label) and the MLP of the FL package (2410 parameters).
    """
    pop = make_population(PopulationConfig(num_devices=10_000), validate.seed("seed", seed))
    down, up = float(np.median(pop.down_bytes_per_s)), float(np.median(pop.up_bytes_per_s))
    model_bytes = 4.0 * validate.integer("model_params", model_params, 1)
    total = validate.integer("examples", examples, 1) * validate.positive("bytes_per_example", bytes_per_example)
    n = np.array([validate.integer("devices", d, 1) for d in devices], float)
    shard = total / n
    phone_dispatch, phone_round = shard / down, model_bytes / down + model_bytes / up
    chip = cost_model.TPU_V3
    pod_dispatch = shard / chip.link_bytes_per_s
    pod_round = np.array([cost_model.allreduce_s(model_bytes, int(d), chip) for d in n])
    return DispatchCost(n, shard, np.full(n.shape, 2 * model_bytes), phone_dispatch, np.full(n.shape, phone_round),
                        pod_dispatch, pod_round)



# --- evaluation and batch norm on devices (survey: "allowing the edge devices, rather than the server,
# to perform evaluation and normalization") ----------------------------------------------------------


def device_counts(correct, shards) -> tuple[np.ndarray, np.ndarray]:
    """What each device reports in a federated evaluation round: (correct answers, examples) on its
    own shard, from the per-example correctness `correct` of the whole set."""
    correct = np.asarray(correct, np.float64)
    return (np.array([correct[s].sum() for s in shards]), np.array([len(s) for s in shards], np.float64))


def federated_accuracy(params, x, y, shards, participants=None) -> float:
    """A federated evaluation round: each participating device (all, or `participants`) counts its
    correct answers on its own shard of (x, y) and reports (correct, examples); the server divides
    the sums. With everyone reporting it is exactly the accuracy over the whole set. (The model is
    run over the whole set in one call; each device's count uses only its own rows.)"""
    right, count = device_counts(np.asarray(_mlp_labels(params, x)) == np.asarray(y), shards)
    return _pooled(right, count, participants)


def _pooled(right, count, participants=None) -> float:
    ids = slice(None) if participants is None else np.asarray(participants, np.int64)
    total = count[ids].sum()
    if total == 0:
        raise ValueError("federated_accuracy needs at least one reporting device with data")
    return float(right[ids].sum() / total)


@dataclasses.dataclass(frozen=True)
class EvalOnDevices:
    """`pod` (seeds,): the pod's distributed accuracy (Paper 1, `spmd.distributed_accuracy` on the
    mesh); `everyone` (seeds,): the federated round with every device; `error[goal]` (seeds,): RMS
    over the protocol's committed rounds of the federated estimate minus the pod's accuracy."""

    pod: np.ndarray
    everyone: np.ndarray
    error: dict


def evaluation_on_devices(goal_counts=(4, 10, 20), devices: int = 40, split: str = "dirichlet", alpha: float = 0.5,
                          rounds: int = 20, train_rounds: int = 30, seeds=range(5)) -> EvalOnDevices:
    """Train the digits MLP by FedAvg (IID, everyone, `train_rounds`), deal the 360 test digits to
    `devices` (`split`), and evaluate it three ways: the pod's sharded evaluation, a federated round
    with everyone, and federated rounds with the devices the protocol commits (`goal_counts`)."""
    from mlsys_core.sharding import spmd
    from mlsys_core.sharding.strategies import data_mesh

    seeds = validate.seeds("seeds", seeds)
    split = validate.choice("split", split, SPLITS)
    devices = validate.integer("devices", devices, 1)
    pod, everyone, error = [], [], {g: [] for g in goal_counts}
    mesh = data_mesh(backend.MESH_DEVICES)
    for s in seeds:
        shards, data = dispatch("iid", backend.MESH_DEVICES, seed=s)
        run = federated_rounds(round_batches(shards, train_rounds, 1, 16, s), data, [len(p) for p in shards], seed=s)
        _, _, xt, yt = data
        if split == "iid":
            test_shards = np.array_split(np.random.default_rng(s).permutation(len(xt)), devices)
        else:
            test_shards = fedavg.dirichlet_split(yt, devices, alpha, s)
        exact = spmd.distributed_accuracy(_mlp_labels, run.params, xt, yt, mesh)
        pod.append(exact)
        right, count = device_counts(np.asarray(_mlp_labels(run.params, xt)) == yt, test_shards)
        everyone.append(_pooled(right, count))
        for g in goal_counts:
            est = [_pooled(right, count, ids) for ids in protocol_participants(devices, g, rounds, s)]
            error[g].append(float(np.sqrt(np.mean((np.array(est) - exact) ** 2))))
    return EvalOnDevices(np.array(pod), np.array(everyone), {g: np.array(v) for g, v in error.items()})


def _mlp_labels(params, x):
    """Predicted labels of the FL package's MLP (one compiled function for every call)."""
    return _jitted_labels()(params, x)


@functools.lru_cache(maxsize=1)
def _jitted_labels():
    import jax
    import jax.numpy as jnp

    return jax.jit(lambda params, x: jnp.argmax(fedavg.logits_fn(params, x), -1))


def _bn_labels(params_and_stats, x):
    """Labels of `spmd.BatchNormMLP` with fixed (population) statistics, evaluated on one device."""
    import jax.numpy as jnp

    from mlsys_core.sharding import spmd

    params, stats = params_and_stats
    return jnp.argmax(spmd.BatchNormMLP().apply(params, x, stats=stats), axis=1)


def bn_on_devices(group_sizes=(1, 2, 4, 8), alpha: float = 0.1, per_device_batch: int = 8, steps: int = 60,
                  seeds=range(5), devices: int = backend.MESH_DEVICES) -> dict[int, np.ndarray]:
    """Batch norm on non-IID devices: each of `devices` draws its batches from its own Dirichlet(alpha)
    shard; batch statistics are averaged over groups of g devices (Paper 1's distributed BN,
    `sharding.spmd.bn_mesh`) or local (g = 1). WUS Adam training of `spmd.BatchNormMLP`; evaluation
    with the training set's population statistics (one federated aggregate), on the 360 test digits.
    Returns {g: (seeds,) accuracy}."""
    import jax

    from mlsys_core.sharding import optimizers, spmd
    from mlsys_core.sharding.strategies import Trainer, train

    seeds = validate.seeds("seeds", seeds)
    bn = spmd.BatchNormMLP()
    out = {g: [] for g in group_sizes}
    trainers = {g: Trainer(bn.loss("bn"), optimizers.make("adam", 1e-2), spmd.bn_mesh(devices, g), "wus",
                           data_axes=("group", "bn")) for g in group_sizes}
    for s in seeds:
        shards, (x, y, xt, yt) = dispatch("dirichlet", devices, alpha, s)
        idx = round_batches(shards, steps, 1, per_device_batch, s)
        if (idx < 0).any():
            raise ValueError("every device needs data for batch norm on devices; raise alpha or change the seed")
        batches = [(x[r.reshape(-1)], y[r.reshape(-1)]) for r in idx]
        params = bn.init(jax.random.key(s))
        for g, trainer in trainers.items():
            state, _ = train(trainer, params, batches)
            p = trainer.full_params(state)
            labels = _bn_labels((p, bn.population_stats(p, x)), xt)
            out[g].append(float(np.mean(np.asarray(labels) == yt)))
    return {g: np.array(v) for g, v in out.items()}


class FaultLoss(NamedTuple):
    """Final test loss of each policy, (failure rates, seeds), under `config` at each failure rate."""

    failure_rates: np.ndarray
    quorum: np.ndarray
    restart: np.ndarray
    config: FaultConfig

    def of(self, policy: str) -> np.ndarray:
        return getattr(self, validate.choice("policy", policy, FAULT_POLICIES))


def loss_vs_failure_rate(failure_rates=(0.001, 0.003, 0.01, 0.03), seeds=range(5),
                         config: FaultConfig = FaultConfig(failure_rate=0.01, checkpoint_interval=10,
                                                           restart_steps=5.0, budget_steps=80.0),
                         per_replica_batch: int = 8) -> FaultLoss:
    """Final test loss of each policy after `config.budget_steps` of wall clock at each failure rate
    and seed. A restart trains the first n batches whatever its
    failures, so one plain run per seed, scored after every step, gives its loss at every rate."""
    seeds = validate.seeds("seeds", seeds)
    quorum, restart = [], []
    for s in seeds:
        runs = [fault_run("restart", dataclasses.replace(config, failure_rate=p), s) for p in failure_rates]
        longest = max(len(r.masks) for r in runs)
        plain = masked_wus_training(np.ones((max(longest, 1), config.replicas), np.float32), per_replica_batch,
                                    seed=s)
        restart.append([plain.test_loss[len(r.masks)] for r in runs])
        row = []
        for p in failure_rates:
            masks = fault_run("quorum", dataclasses.replace(config, failure_rate=p), s).masks
            row.append(masked_wus_training(masks, per_replica_batch, seed=s, eval_every=max(len(masks), 1))
                       .test_loss[-1])
        quorum.append(row)
    return FaultLoss(np.asarray(failure_rates, float), np.array(quorum).T, np.array(restart).T, config)


# ---- the widgets' compute: one point of each explorer of notebook 05 -------------------------------


class Bf16Point(NamedTuple):
    """The bf16 explorer's view: phones and pods at one setting."""

    phones: Bf16Saving  # one session saving per device of a drawn population
    pods: Bf16Saving  # per pod size


def explore_bf16(model_millions: float = 1.4, phone_link_factor: float = 1.0,
                 pod_link_gb_per_s: float = 70.0) -> Bf16Point:
    """bf16's saving for 20,000 phones (seed 0) training a `model_millions` M-parameter model on links
    `phone_link_factor` x the population's medians, and for BERT-large on 256 / 1024 / 4096-chip pods."""
    model_params = validate.positive("model_millions", model_millions) * 1e6
    phone_link_factor = validate.positive("phone_link_factor", phone_link_factor)
    pod_link_gb_per_s = validate.positive("pod_link_gb_per_s", pod_link_gb_per_s)
    return Bf16Point(bf16_saving_edge(model_params, 1, 20_000, link_factor=phone_link_factor),
                     bf16_saving_tpu("BERT-large", (256, 1024, 4096), link_gb_per_s=pod_link_gb_per_s))


class FaultPoint(NamedTuple):
    """The failure explorer's view: each policy's goodput at one setting."""

    goodput: dict[str, np.ndarray]  # policy -> (seeds,)
    config: FaultConfig


def explore_faults(failure_chance_log10: float = -3.0, checkpoint_interval: int = 50,
                   restart_steps: float = 20.0, seeds=range(5)) -> FaultPoint:
    """Goodput of quorum commit and of restarting from a checkpoint at one failure chance (10 ** the
    argument per replica and step), checkpoint interval and restart time, per seed."""
    log10 = validate.number("failure_chance_log10", failure_chance_log10, high=0.0, high_open=True)
    config = FaultConfig(failure_rate=10.0**log10, checkpoint_interval=checkpoint_interval, restart_steps=restart_steps)
    seeds = validate.seeds("seeds", seeds)
    return FaultPoint({p: np.array([fault_run(p, config, s).goodput for s in seeds]) for p in FAULT_POLICIES},
                      config)


def explore_nvm(dram_usd_per_gb: float = 6.25, price_ratio: float = 10.0, chips: int = 1024) -> NVMOptimizerState:
    """BERT-large's optimizer state on NVM (`nvm_optimizer_state`) at these DRAM prices and DRAM / NVM ratio."""
    dram_usd_per_gb = validate.positive("dram_usd_per_gb", dram_usd_per_gb)
    price_ratio = validate.positive("price_ratio", price_ratio)
    return nvm_optimizer_state("BERT-large", chips=chips, prices=MemoryPrices(dram_usd_per_gb,
                                                                              dram_usd_per_gb / price_ratio))


def explore_tictac(downlink_mbit: float = 16.0, local_steps: int = 1) -> TicTacVsLink:
    """TAC against random order for one phone (ResNet-style training graph) on a `downlink_mbit` link."""
    return tictac_vs_bandwidth("resnet", "train", (validate.positive("downlink_mbit", downlink_mbit) / 1e3,),
                               workers=1, iterations=5, local_steps=local_steps)
