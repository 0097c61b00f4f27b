"""Paper 3 benchmark, in one run:

1. One FedAvg round of 1,000 clients (MLP 64-32-10, 32 digits each drawn with a Dir(0.5) class mix,
   2 local epochs of batch 16, lr 0.1): the suite's vmapped round vs a per-client jit loop (FedJAX's
   default style), and vs the same round in Flower's simulation engine (flwr, legacy `start_simulation`
   on Ray, NumPy clients that train the same MLP with the same steps in NumPy). The aggregated models
   must agree within FLOWER_ATOL (float32 JAX vs float64 NumPy arithmetic).
2. One simulated day of a 1 M- and a 10 M-device population with rounds of goal 1,000 (protocol, actors,
   faults, telemetry, plans; no training), and with `--goal-10k` a 10 M day of goal 10,000.

Ends with `RESULT fl vmap_speedup=<loop/vmap> clients_per_s=<vmapped> flower_speedup=<Flower round / ours>
day_1m_seconds=<wall> day_10m_seconds=<wall>`. `--devices` sets other day sizes (the keys follow them, e.g.
`day_20k_seconds`); `--no-flower` leaves Flower out (and its key), for a machine without the bench extra.
"""

import argparse
import os
import resource
import time

import numpy as np

from mlsys_core import backend

FLOWER_ATOL = 1e-5  # max |Flower's aggregate - ours| per parameter


def time_call(fn, repeats: int) -> float:
    """Fewest wall seconds of `fn()` (which blocks until its result is ready) over `repeats` runs, after
    one warm-up: on a shared 2-core machine the least-disturbed run, not the other jobs' load."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def round_setup(num_clients: int, examples: int):
    import jax

    from mlsys_core.data import load_digits
    from mlsys_core.fl import fedavg as F

    x, y = load_digits()
    model = F.ModelConfig(batch_size=16, epochs=2)
    data = F.pad_clients(x, y, F.resample_clients(y, num_clients, examples, 0.5, seed=0), model.batch_size)
    params = F.init_params(jax.random.key(0), model)
    return model, data, params


def bench_rounds(model, data, params, repeats: int):
    import jax

    from mlsys_core.fl import fedavg as F

    num_clients, examples = data.x.shape[:2]
    w = data.num_examples
    steps = examples // model.batch_size * model.epochs
    print(f"{num_clients} clients x {examples} examples, {steps} local SGD steps each, MLP 64-32-10")
    on_device = jax.device_put(data)
    t_vmap = time_call(lambda: jax.block_until_ready(F.vmap_round(params, on_device, w, model)), repeats)
    t_loop = time_call(lambda: jax.block_until_ready(F.loop_round(params, on_device, w, model)), max(3, repeats // 2))
    print(f"  vmap round: {t_vmap * 1e3:.1f} ms   per-client jit loop: {t_loop * 1e3:.1f} ms")
    return t_vmap, t_loop, F.vmap_round(params, on_device, w, model)


# -- the same client in NumPy, for Flower ---------------------------------------------------------------

NAMES = ("w1", "b1", "w2", "b2")


def numpy_client_update(params: list, x: np.ndarray, y: np.ndarray, lr: float, batch: int, epochs: int) -> list:
    """`fedavg.client_update` in NumPy (float64): SGD on mean softmax cross-entropy of tanh(x W1 + b1) W2 + b2."""
    w1, b1, w2, b2 = (p.astype(np.float64) for p in params)
    for _ in range(epochs):
        for lo in range(0, len(y), batch):
            xb, yb = x[lo:lo + batch].astype(np.float64), y[lo:lo + batch]
            h = np.tanh(xb @ w1 + b1)
            z = h @ w2 + b2
            p = np.exp(z - z.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            p[np.arange(len(yb)), yb] -= 1.0
            dz = p / len(yb)
            dh = (dz @ w2.T) * (1.0 - h * h)
            w2, b2 = w2 - lr * (h.T @ dz), b2 - lr * dz.sum(0)
            w1, b1 = w1 - lr * (xb.T @ dh), b1 - lr * dh.sum(0)
    return [w1, b1, w2, b2]


def _fixed_ray_agent_ports() -> None:
    """Give Ray's dashboard/metrics agents fixed free ports: on a loaded machine the raylet otherwise dies
    waiting 15 s for the agents' port files (ray-project/ray#65983)."""
    import socket

    from ray._private import parameter

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    init = parameter.RayParams.__init__

    def patched(self, *args, **kwargs):
        for name in ("metrics_agent_port", "metrics_export_port", "dashboard_agent_listen_port",
                     "runtime_env_agent_port"):
            kwargs[name] = kwargs.get(name) or free_port()
        init(self, *args, **kwargs)

    parameter.RayParams.__init__ = patched


def _in_process_round(strategy, make_client, n: int) -> None:
    """One round of Flower's own server loop (`flwr.server.Server.fit_round`: its strategy, client manager
    and thread pool) over in-process client proxies that call each NumPy client's `fit` directly."""
    import flwr
    from flwr.server.client_proxy import ClientProxy

    class InProcess(ClientProxy):
        def __init__(self, cid: str):
            super().__init__(cid)
            self.node_id = int(cid)

        def fit(self, ins, timeout, group_id):
            return make_client(self.cid).fit(ins)

        def get_properties(self, ins, timeout, group_id):
            raise NotImplementedError

        def get_parameters(self, ins, timeout, group_id):
            raise NotImplementedError

        def evaluate(self, ins, timeout, group_id):
            raise NotImplementedError

        def reconnect(self, ins, timeout, group_id):
            raise NotImplementedError

    manager = flwr.server.SimpleClientManager()
    for k in range(n):
        manager.register(InProcess(str(k)))
    server = flwr.server.Server(client_manager=manager, strategy=strategy)
    server.parameters = strategy.initial_parameters
    server.fit_round(1, timeout=None)


def bench_flower(model, data, params, ours, engine: str = "auto") -> tuple[float, float, float, str]:
    """One FedAvg round of every client in Flower. `engine` "ray": Flower's simulation engine (legacy
    `start_simulation`, Ray actors); "in-process": Flower's server loop with in-process clients; "auto": Ray,
    and in-process if Ray cannot start here. Returns (round seconds, seconds including start-up,
    max |Flower - ours|, the engine that ran)."""
    import flwr
    from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays

    n = data.x.shape[0]
    start = [np.asarray(params[k]) for k in NAMES]
    clients = [(data.x[k, : int(data.num_examples[k])], data.y[k, : int(data.num_examples[k])]) for k in range(n)]

    class Client(flwr.client.NumPyClient):
        def __init__(self, k: int):
            self.k = k

        def fit(self, parameters, config):
            x, y = clients[self.k]
            new = numpy_client_update(parameters, x, y, model.learning_rate, model.batch_size, model.epochs)
            return [a.astype(np.float32) for a in new], len(y), {}

    marks = {}

    class Timed(flwr.server.strategy.FedAvg):
        def configure_fit(self, server_round, parameters, client_manager):
            marks["start"] = time.perf_counter()
            return super().configure_fit(server_round, parameters, client_manager)

        def aggregate_fit(self, server_round, results, failures):
            out = super().aggregate_fit(server_round, results, failures)
            marks["end"], marks["params"], marks["results"] = time.perf_counter(), out[0], len(results)
            marks["failures"] = failures
            return out

    def strategy():
        return Timed(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=n, min_available_clients=n,
                     initial_parameters=ndarrays_to_parameters(start))

    make_client = lambda cid: Client(int(cid)).to_client()  # noqa: E731
    ran = engine
    t0 = time.perf_counter()
    if engine in ("auto", "ray"):
        _fixed_ray_agent_ports()
        try:
            flwr.simulation.start_simulation(
                client_fn=make_client, num_clients=n, config=flwr.server.ServerConfig(num_rounds=1),
                strategy=strategy(), client_resources={"num_cpus": 1},
                ray_init_args={"num_cpus": os.cpu_count(), "include_dashboard": False, "log_to_driver": False})
            ran = "ray"
        except Exception as err:  # noqa: BLE001 - Ray's start-up failure is a bare Exception
            if engine == "ray":
                raise
            print(f"  Flower's Ray engine could not start here ({str(err)[:80]}...): Flower's server loop, "
                  "in-process clients")
            ran, marks = "in-process", {}
            t0 = time.perf_counter()
    if ran == "in-process":
        _in_process_round(strategy(), make_client, n)
    total = time.perf_counter() - t0
    if marks.get("params") is None:
        raise RuntimeError(f"Flower's round failed: {marks.get('failures', ['it never ran'])[:1]!r}")
    got = parameters_to_ndarrays(marks["params"])
    gap = max(float(np.abs(g - np.asarray(ours[k])).max()) for g, k in zip(got, NAMES))
    print(f"  Flower ({ran}): {marks['results']} clients fitted, round {marks['end'] - marks['start']:.1f} s "
          f"({total:.1f} s with start-up); max |Flower - ours| = {gap:.1e} (tolerance {FLOWER_ATOL:g})")
    return marks["end"] - marks["start"], total, gap, ran


def bench_day(num_devices: int, goal: int) -> float:
    from mlsys_core.fl import actors, plans, population, protocol

    start = time.perf_counter()
    pop = population.make_population(population.PopulationConfig(num_devices=num_devices), seed=0)
    pop_mb = sum(getattr(pop, f).nbytes for f in pop.__dataclass_fields__) / 2**20
    print(f"population of {num_devices:,} devices drawn in {time.perf_counter() - start:.2f} s ({pop_mb:.0f} MB)")
    fl_plans = plans.generate_versioned_plans("keyboard", 1, plans.DevicePlan(), plans.ServerPlan())
    faults = (actors.Fault("aggregator", 6 * 3600.0, 1), actors.Fault("coordinator", 12 * 3600.0),
              actors.Fault("master_aggregator", 18 * 3600.0))
    system = actors.ActorSystem(actors.Topology(), faults)
    start, cpu = time.perf_counter(), time.process_time()
    res = protocol.simulate(pop, protocol.RoundConfig(goal_count=goal), protocol.SteeringConfig(),
                            population.DAY_S, seed=0, plans=fl_plans, executor=system.run_round,
                            traced_devices=10_000)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    c = res.counters
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"one simulated day, goal {goal:,}: {len(c)} rounds ({int(c.committed.sum())} committed), "
          f"{int(c.checkins.sum()):,} check-ins, {int(c.accepted.sum()):,} accepted updates, "
          f"{int(c.messages.sum()):,} actor messages, {len(res.log.arrays()[0]):,} telemetry events; "
          f"{wall:.1f} s wall, {cpu:.1f} s CPU; peak RSS so far {rss:.2f} GB")
    return wall


def size_label(n: int) -> str:
    """1_000_000 -> "1m", 20_000 -> "20k", 500 -> "500": a day's size as its RESULT key writes it."""
    for unit, suffix in ((1_000_000, "m"), (1_000, "k")):
        if n >= unit and n % unit == 0:
            return f"{n // unit}{suffix}"
    return str(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--goal", type=int, default=1000)
    parser.add_argument("--flower-engine", choices=("auto", "ray", "in-process"), default="auto")
    parser.add_argument("--goal-10k", action="store_true", help="also a 10 M-device day with rounds of goal 10,000")
    parser.add_argument("--devices", type=int, nargs="+", default=[1_000_000, 10_000_000],
                        help="population sizes of the simulated days (default: 1 M and 10 M)")
    parser.add_argument("--no-flower", action="store_true", help="leave out the Flower round (no bench extra)")
    args = parser.parse_args()
    if min(args.devices) < 1:
        parser.error(f"--devices must be >= 1 each, got {args.devices}")
    backend.setup(cpu_devices=8)
    print(backend.info())
    model, data, params = round_setup(args.clients, args.examples)
    t_vmap, t_loop, ours = bench_rounds(model, data, params, args.repeats)
    result = f"vmap_speedup={t_loop / t_vmap:.1f} clients_per_s={args.clients / t_vmap:.0f}"
    days = [bench_day(n, args.goal) for n in args.devices]  # the days run before Ray starts its threads here
    if args.goal_10k:
        bench_day(10_000_000, 10_000)
    if not args.no_flower:
        flower_round, _, gap, engine = bench_flower(model, data, params, ours, args.flower_engine)
        if gap > FLOWER_ATOL:
            raise SystemExit(f"Flower's aggregate differs from ours by {gap:.2e} > {FLOWER_ATOL:g}")
        print(f"Flower engine: {engine}")
        result += f" flower_speedup={flower_round / t_vmap:.0f}"
    result += "".join(f" day_{size_label(n)}_seconds={wall:.1f}" for n, wall in zip(args.devices, days))
    print(f"RESULT fl {result}")


if __name__ == "__main__":
    main()
