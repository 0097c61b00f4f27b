"""The survey's cross-paper claims, each as a pure experiment over two papers' systems.

The only module that imports more than one paper's subpackage. Notebook 05 tabulates and plots what
these functions return and hands the claim measurements to the registry (`mlsys_core.claims.synergy`):

- `data_parallel_vs_fedsgd` / `fedsgd_equivalence`: synchronous data parallelism on a mesh (Paper 1)
  against FedAvg with full participation and one local step (Paper 3), the survey's "fundamentally
  equivalent", on one seed / per seed.
- `bf16_saving_tpu` / `bf16_saving_edge` / `bf16_pod_vs_phone`: what bfloat16 communication buys a
  TPU pod and an FL device, and the pod-minus-phone comparison over the pod's link bandwidth and
  utilisation (assumptions of Paper 1's cost model).
- `fedavg_delta_dtype` / `bf16_accuracy_gap`: what bf16 deltas cost FedAvg's accuracy, per seed.
- `nvm_optimizer_state`: Bandana's NVM (Paper 2) holding a pod's optimizer state, replicated vs
  weight-update sharded (Paper 1): step slowdown and the share of the pod's memory bill it saves.
- `tictac_vs_bandwidth` / `tictac_speedup_over_seeds`: TicTac's gain (Paper 4) from data-centre links
  down to edge links (Paper 3).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import backend, validate
from mlsys_core.bandana import NVMDevice, memory_cost_usd
from mlsys_core.bandana.nvm import MemoryPrices
from mlsys_core.fl import fedavg
from mlsys_core.fl.population import PopulationConfig, make_population
from mlsys_core.sharding import cost_model
from mlsys_core.tictac import experiments as tictac_experiments
from mlsys_core.tictac.simulate import Cluster

POD_CHIPS = (16, 32, 64, 128, 256, 512, 1024, 2048, 4096)  # the pod sizes bf16_pod_vs_phone evaluates



def _workload(workload: str) -> cost_model.Workload:
    return cost_model.WORKLOADS[validate.choice("workload", workload, tuple(cost_model.WORKLOADS))]


def data_parallel_vs_fedsgd(devices: int = backend.MESH_DEVICES, steps: int = 10, per_device_batch: int = 16,
                            learning_rate: float = 0.1, seed: int = 0) -> dict[str, float]:
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
    seed = validate.integer("seed", seed, 0)
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
    return {"max_abs_diff": max_diff, "max_param_change": max_moved, "relative_diff": max_diff / max_moved,
            "accuracy_mesh": float(fedavg.accuracy(mesh_params, x, y)),
            "accuracy_fedsgd": float(fedavg.accuracy(fl_params, x, y))}


def fedsgd_equivalence(seeds=range(5), devices: int = backend.MESH_DEVICES, steps: int = 10,
                       per_device_batch: int = 16) -> np.ndarray:
    """(len(seeds),) `relative_diff` of `data_parallel_vs_fedsgd` per seed (data order and initial weights)."""
    return np.array([data_parallel_vs_fedsgd(devices, steps, per_device_batch, seed=s)["relative_diff"]
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


def bf16_saving_tpu(workload: str = "BERT-large", chips=(16, 256, 1024, 4096), *, link_gb_per_s: float = 70.0,
                    utilisation: float = 0.4) -> dict[str, np.ndarray]:
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
    return {"chips": np.asarray(chips), "compute_s": compute, "comm_s": comm, "saving": bf16_saving(compute, comm)}


def bf16_saving_edge(model_params: float = 1.4e6, epochs: int = 1, devices: int = 100_000,
                     seed: int = 0) -> dict[str, np.ndarray]:
    """bf16 model and update transfers for an FL population (Paper 3): per-device session saving.

    A session downloads the model, trains `epochs` passes over its examples, uploads the update; its
    times come from the population's drawn speeds and bandwidths (medians 5 examples/s, 2 MB/s down,
    1 MB/s up, `PopulationConfig`'s defaults). Default size: Gboard's 1.4 M parameters.
    """
    validate.positive("model_params", model_params)
    validate.integer("seed", seed, 0)
    pop = make_population(PopulationConfig(num_devices=validate.integer("devices", devices, 1)), seed)
    nbytes = 4.0 * model_params
    compute = validate.integer("epochs", epochs, 1) * pop.num_examples / pop.examples_per_s
    comm = nbytes / pop.down_bytes_per_s + nbytes / pop.up_bytes_per_s
    return {"compute_s": compute, "comm_s": comm, "saving": bf16_saving(compute, comm)}


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
    pod = np.array([[bf16_saving_tpu(workload, POD_CHIPS, link_gb_per_s=b, utilisation=u)["saving"] for u in utils]
                    for b in bws])
    phone = np.array([np.median(bf16_saving_edge(model_params, 1, devices, s)["saving"])
                      for s in validate.seeds("seeds", seeds)])
    return Bf16PodVsPhone(np.array(bws), np.array(utils), np.array(POD_CHIPS), pod, phone, int(pod_chips))


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
    seed = validate.integer("seed", seed, 0)
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


def nvm_optimizer_state(workload: str = "BERT-large", chips: int = 1024, hbm_bytes_per_chip: float = 32e9,
                        state_bytes_per_param: float = 8.0,
                        prices: MemoryPrices = MemoryPrices()) -> dict[str, dict[str, float]]:
    """Optimizer state (Adam/LAMB: m and v, 8 B per parameter) on one Optane drive per chip.

    Replicated, every chip reads and writes the whole state each step; with weight-update sharding
    only its 1/N shard. Returns, per layout, bytes per chip, NVM stream time per step (read + write
    at the drive's peak, no overlap) against the step, the step slowdown, and `memory_bill_saving`:
    the fraction of the pod's memory cost (`hbm_bytes_per_chip` per chip, all priced as DRAM) saved
    by moving that state to NVM. `cost` is the survey's whole-memory comparison (`memory_cost_usd`).
    """
    wl, nvm = _workload(workload), NVMDevice()
    chips = validate.integer("chips", chips, 1)
    validate.positive("hbm_bytes_per_chip", hbm_bytes_per_chip)
    validate.positive("state_bytes_per_param", state_bytes_per_param)
    step = cost_model.step_time(wl, cost_model.TPU_V3, chips, "wus")
    cheaper = 1 - prices.nvm_usd_per_gb / prices.dram_usd_per_gb
    out = {}
    for layout, shards in (("replicated", 1), ("wus", chips)):
        state = wl.params * state_bytes_per_param / shards
        stream_s = 2 * state / nvm.peak_read_bytes_per_s
        out[layout] = {"state_bytes_per_chip": state, "nvm_stream_s": stream_s,
                       "step_compute_s": step.compute_s, "step_s": step.total_s,
                       "slowdown": (step.total_s + stream_s) / step.total_s,
                       "memory_bill_saving": min(state, hbm_bytes_per_chip) / hbm_bytes_per_chip * cheaper}
    out["cost"] = memory_cost_usd(chips * hbm_bytes_per_chip, 0.0, prices)
    return out


def tictac_vs_bandwidth(model: str = "resnet", mode: str = "train", bandwidths_gbps=(10.0, 1.0, 0.1, 0.01),
                        latency_us: float = 50.0, workers: int = 4, iterations: int = 10, seed: int = 0,
                        local_steps: int = 1) -> dict[str, np.ndarray]:
    """TAC's throughput over random order as the link slows from data-centre to phone speeds.

    Also returns the headroom S = (U - L) / L of perfect overlap: when transfers dominate, S -> 0,
    so no order can help much: TAC/random <= 1 + S is the bound TicTac's gain lives under. With
    `local_steps` > 1 (FedAvg), a download is followed by that many steps, of which ordering can
    only overlap the first: the speed-up is of the whole (download + steps) session.
    """
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
    return {"bandwidth_gbps": np.asarray(bandwidths_gbps, float), "tac_speedup": np.array(speedup),
            "headroom": np.array(headroom), "comm_share": np.array(comm_share)}


def tictac_speedup_over_seeds(bandwidths_gbps=(0.004, 0.016, 0.064), seeds=range(5), model: str = "resnet",
                              mode: str = "train", latency_us: float = 50.0, workers: int = 1,
                              iterations: int = 10, local_steps: int = 1) -> np.ndarray:
    """(len(bandwidths_gbps), len(seeds)) TAC/random throughput; a seed draws the random orders.

    Defaults: one phone (`workers=1`) on its own downlink of 4, 16 (the FL population's median) and
    64 Mbit/s.
    """
    return np.array([tictac_vs_bandwidth(model, mode, bandwidths_gbps, latency_us, workers, iterations, s,
                                         local_steps)["tac_speedup"] for s in validate.seeds("seeds", seeds)]).T
