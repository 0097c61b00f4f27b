"""The survey's cross-paper claims, each as a pure experiment over two papers' systems.

The only module that imports more than one paper's subpackage. Each function returns plain numbers
(dicts of floats or arrays) for notebook 05 to tabulate and plot:

- `data_parallel_vs_fedsgd`: synchronous data parallelism on a mesh (Paper 1) against FedAvg with
  full participation and one local step (Paper 3) — the survey's "fundamentally equivalent".
- `bf16_saving_tpu` / `bf16_saving_edge` / `fedavg_delta_dtype`: what bfloat16 communication buys a
  TPU pod and an FL device, and what it costs FedAvg's accuracy.
- `nvm_optimizer_state`: Bandana's NVM (Paper 2) holding a pod's optimizer state, replicated vs
  weight-update sharded (Paper 1): cost and the time to stream it each step.
- `tictac_vs_bandwidth`: TicTac's gain (Paper 4) from data-centre links down to edge links (Paper 3).
"""

from __future__ import annotations

import numpy as np

from mlsys_core.bandana import NVMDevice, memory_cost_usd
from mlsys_core.fl import fedavg
from mlsys_core.fl.population import PopulationConfig, make_population
from mlsys_core.sharding import cost_model
from mlsys_core.tictac import experiments as tictac_experiments
from mlsys_core.tictac.simulate import Cluster


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def data_parallel_vs_fedsgd(devices: int = 8, steps: int = 10, per_device_batch: int = 16,
                            learning_rate: float = 0.1, seed: int = 0) -> dict[str, float]:
    """Train the digits MLP `steps` times both ways on identical data; compare the parameters.

    Data parallel: one SGD step per global batch, gradients all-reduced over a `devices`-wide mesh.
    FedSGD: each device is a client holding its slice of that batch, runs one local SGD step on it,
    and the server averages the deltas weighted by example counts. Equal client sizes make the two
    the same update; the returned `max_abs_diff` is float32 rounding only.
    """
    import jax
    import jax.numpy as jnp
    import optax

    from mlsys_core.data import load_digits
    from mlsys_core.sharding.strategies import Trainer, data_mesh, train

    devices, steps, per_device_batch = (_positive_int(n, v) for n, v in
                                        (("devices", devices), ("steps", steps), ("per_device_batch", per_device_batch)))
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
    return {"max_abs_diff": float(max(diffs)), "max_param_change": float(max(moved)),
            "accuracy_mesh": float(fedavg.accuracy(mesh_params, x, y)),
            "accuracy_fedsgd": float(fedavg.accuracy(fl_params, x, y))}


def bf16_saving(compute_s, comm_s):
    """Fraction of a step saved by halving the bytes on the wire (f32 -> bf16), without overlap."""
    compute_s, comm_s = np.asarray(compute_s, float), np.asarray(comm_s, float)
    if np.any(compute_s < 0) or np.any(comm_s < 0):
        raise ValueError("compute_s and comm_s must be >= 0")
    return 0.5 * comm_s / (compute_s + comm_s)


def bf16_saving_tpu(workload: str = "BERT-large", chips=(16, 256, 1024, 4096)) -> dict[str, np.ndarray]:
    """bf16 gradients on a TPU-v3 pod (Paper 1's cost model): step saving at each chip count."""
    if workload not in cost_model.WORKLOADS:
        raise ValueError(f"workload must be one of {tuple(cost_model.WORKLOADS)}, got {workload!r}")
    base = cost_model.WORKLOADS[workload]
    f32 = cost_model.Workload(base.name, base.params, base.train_flops_per_example, base.global_batch,
                              base.examples_to_train, base.update_bytes_per_param, grad_bytes_per_param=4.0)
    rows = [cost_model.step_time(f32, cost_model.TPU_V3, int(c), "wus") for c in chips]
    compute = np.array([r.compute_s + r.update_s for r in rows])
    comm = np.array([r.allreduce_s for r in rows])
    return {"chips": np.asarray(chips), "compute_s": compute, "comm_s": comm, "saving": bf16_saving(compute, comm)}


def bf16_saving_edge(model_params: float = 1.4e6, epochs: int = 1, devices: int = 100_000, seed: int = 0) -> dict[str, np.ndarray]:
    """bf16 model and update transfers for an FL population (Paper 3): per-device session saving.

    A session downloads the model, trains `epochs` passes over its examples, uploads the update; its
    times come from the population's drawn speeds and bandwidths. Default size: Gboard's 1.4 M.
    """
    if not model_params > 0:
        raise ValueError(f"model_params must be > 0, got {model_params!r}")
    pop = make_population(PopulationConfig(num_devices=_positive_int("devices", devices)), seed)
    nbytes = 4.0 * model_params
    compute = _positive_int("epochs", epochs) * pop.num_examples / pop.examples_per_s
    comm = nbytes / pop.down_bytes_per_s + nbytes / pop.up_bytes_per_s
    return {"compute_s": compute, "comm_s": comm, "saving": bf16_saving(compute, comm)}


def fedavg_delta_dtype(dtype: str = "bfloat16", rounds: int = 30, clients_per_round: int = 20,
                       num_clients: int = 100, alpha: float = 0.5, seed: int = 0) -> np.ndarray:
    """Test accuracy per round of FedAvg on non-IID digits when client deltas travel as `dtype`.

    Clients compute in float32; only the uploaded delta is rounded to `dtype` (what bf16 on the
    wire does). The same seed gives the same clients and selection for every dtype.
    """
    import jax
    import jax.numpy as jnp

    from mlsys_core.data import load_digits

    if dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"dtype must be 'float32', 'bfloat16' or 'float16', got {dtype!r}")
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
    for _ in range(_positive_int("rounds", rounds)):
        chosen = rng.choice(num_clients, size=min(clients_per_round, num_clients), replace=False)
        batch = data.take(chosen)
        deltas = fedavg.client_deltas(params, batch, model)
        deltas = jax.tree.map(lambda d: d.astype(cast).astype(jnp.float32), deltas)
        params = jax.tree.map(jnp.add, params, fedavg.weighted_mean(deltas, jnp.asarray(batch.num_examples)))
        accuracy.append(float(fedavg.accuracy(params, x[test_idx], y[test_idx])))
    return np.array(accuracy)


def nvm_optimizer_state(workload: str = "BERT-large", chips: int = 1024, hbm_bytes_per_chip: float = 32e9,
                        state_bytes_per_param: float = 8.0) -> dict[str, dict[str, float]]:
    """Optimizer state (Adam/LAMB: m and v, 8 B per parameter) on one Optane drive per chip.

    Replicated, every chip reads and writes the whole state each step; with weight-update sharding
    only its 1/N shard. Returns, per layout, bytes per chip, NVM stream time per step (read + write
    at the drive's peak) against the step's compute, and the pod's memory cost all-HBM-priced-as-DRAM
    vs NVM (the survey's 1000 chips x 32 GB example uses `memory_cost_usd`'s prices).
    """
    if workload not in cost_model.WORKLOADS:
        raise ValueError(f"workload must be one of {tuple(cost_model.WORKLOADS)}, got {workload!r}")
    wl, nvm = cost_model.WORKLOADS[workload], NVMDevice()
    chips = _positive_int("chips", chips)
    step = cost_model.step_time(wl, cost_model.TPU_V3, chips, "wus")
    out = {}
    for layout, shards in (("replicated", 1), ("wus", chips)):
        state = wl.params * state_bytes_per_param / shards
        stream_s = 2 * state / nvm.peak_read_bytes_per_s
        out[layout] = {"state_bytes_per_chip": state, "nvm_stream_s": stream_s,
                       "step_compute_s": step.compute_s, "slowdown": (step.total_s + stream_s) / step.total_s}
    out["cost"] = memory_cost_usd(chips * hbm_bytes_per_chip, 0.0)
    return out


def tictac_vs_bandwidth(model: str = "resnet", mode: str = "train", bandwidths_gbps=(10.0, 1.0, 0.1, 0.01),
                        latency_us: float = 50.0, workers: int = 4, iterations: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    """TAC's throughput over random order as the link slows from data-centre to phone speeds.

    Also returns the headroom S = (U - L) / L of perfect overlap: when transfers dominate, S -> 0,
    so no order can help much — the bound TicTac's gain lives under.
    """
    graph = tictac_experiments.model_graph(model, mode)
    speedup, headroom, comm_share = [], [], []
    for bw in bandwidths_gbps:
        cluster = Cluster(workers=workers, bandwidth_gbps=float(bw), latency_us=latency_us)
        res = tictac_experiments.compare(graph, cluster, ("random", "tac"), iterations, seed)
        speedup.append(tictac_experiments.speedup(res)["tac"])
        r = res["random"]
        headroom.append(float(np.mean((r.upper - r.lower) / r.lower)))
        comm_share.append(float(np.mean(r.comm / r.upper)))
    return {"bandwidth_gbps": np.asarray(bandwidths_gbps, float), "tac_speedup": np.array(speedup),
            "headroom": np.array(headroom), "comm_share": np.array(comm_share)}
