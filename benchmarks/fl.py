"""Paper 3 benchmark: (1) one vmapped FedAvg round vs a per-client jit loop (FedJAX's default style)
on the same model, data and local steps, 1,000 clients; (2) one simulated day of a 1 M-device
population with rounds of goal 1,000 (protocol, actors, telemetry, plans; no training).

Ends with `RESULT fl vmap_speedup=<loop/vmap> clients_per_s=<vmapped> day_1m_seconds=<wall>`.
"""

import argparse
import statistics
import time

from mlsys_core import backend


def time_call(fn, repeats: int) -> float:
    """Median wall seconds of `fn()` (which blocks until its result is ready), after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_rounds(num_clients: int, examples: int, repeats: int) -> tuple[float, float]:
    import jax

    from mlsys_core.data import load_digits
    from mlsys_core.fl import fedavg as F

    x, y = load_digits()
    model = F.ModelConfig(batch_size=16, epochs=2)
    data = F.pad_clients(x, y, F.resample_clients(y, num_clients, examples, 0.5, seed=0), model.batch_size)
    params = F.init_params(jax.random.key(0), model)
    w = data.num_examples
    steps = examples // model.batch_size * model.epochs
    print(f"{num_clients} clients x {examples} examples, {steps} local SGD steps each, MLP 64-32-10")
    on_device = jax.device_put(data)
    t_vmap = time_call(lambda: jax.block_until_ready(F.vmap_round(params, on_device, w, model)), repeats)
    t_loop = time_call(lambda: jax.block_until_ready(F.loop_round(params, on_device, w, model)), max(1, repeats // 3))
    print(f"  vmap round: {t_vmap * 1e3:.1f} ms   per-client jit loop: {t_loop * 1e3:.1f} ms")
    return t_loop / t_vmap, num_clients / t_vmap


def bench_day(num_devices: int, goal: int) -> float:
    from mlsys_core.fl import actors, plans, population, protocol

    start = time.perf_counter()
    pop = population.make_population(population.PopulationConfig(num_devices=num_devices), seed=0)
    print(f"population of {num_devices:,} devices drawn in {time.perf_counter() - start:.2f} s")
    fl_plans = plans.generate_versioned_plans("keyboard", 1, plans.DevicePlan(), plans.ServerPlan())
    faults = (actors.Fault("aggregator", 6 * 3600.0, 1), actors.Fault("coordinator", 12 * 3600.0),
              actors.Fault("master_aggregator", 18 * 3600.0))
    system = actors.ActorSystem(actors.Topology(), faults)
    start = time.perf_counter()
    res = protocol.simulate(pop, protocol.RoundConfig(goal_count=goal), protocol.SteeringConfig(),
                            population.DAY_S, seed=0, plans=fl_plans, executor=system.run_round,
                            traced_devices=10_000)
    wall = time.perf_counter() - start
    c = res.counters
    print(f"one simulated day: {len(c)} rounds ({int(c.column('committed').sum())} committed), "
          f"{int(c.column('checkins').sum()):,} check-ins, {int(c.column('accepted').sum()):,} accepted updates, "
          f"{int(c.column('messages').sum()):,} actor messages, {len(res.log.arrays()[0]):,} telemetry events; "
          f"{wall:.1f} s wall")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--devices", type=int, default=1_000_000)
    parser.add_argument("--goal", type=int, default=1000)
    args = parser.parse_args()
    backend.setup(cpu_devices=8)
    print(backend.info())
    speedup, clients_per_s = bench_rounds(args.clients, args.examples, args.repeats)
    day_s = bench_day(args.devices, args.goal)
    print(f"RESULT fl vmap_speedup={speedup:.1f} clients_per_s={clients_per_s:.0f} day_1m_seconds={day_s:.1f}")


if __name__ == "__main__":
    main()
