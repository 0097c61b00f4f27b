"""Paper 1 benchmark: replicated vs weight-update sharding vs FSDP on 8 simulated CPU devices.

The optimizer-heavy FFN stack (>= 8 M parameters) with Adam and a small batch, so the weight update is
a large share of a step. All strategies run in one process on the same mesh; each step time is the
median of >= 5 steps after warm-up. Ends with one RESULT line.
"""

from __future__ import annotations

import argparse

from mlsys_core import backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=64, help="global batch (multiple of the device count)")
    args = parser.parse_args()

    backend.setup(cpu_devices=8)
    import jax
    import optax

    from mlsys_core.sharding import inspection, models, strategies, timing

    print(backend.info())
    model = models.FFNStack(d_model=512, d_ff=2048, blocks=4)
    params = model.init(jax.random.key(0))
    n_params = models.parameter_count(params)
    batch = models.regression_batch(jax.random.key(1), args.batch, model.d_model)
    mesh = strategies.data_mesh(8)
    print(f"model: FFNStack 4 x (512 x 2048), {n_params:,} parameters, Adam, global batch {args.batch}")

    medians, memory = {}, {}
    for name in strategies.STRATEGIES:
        trainer = strategies.Trainer(models.regression_loss(model), optax.adam(1e-3), mesh, name)
        state = trainer.init(params)
        placed = trainer.shard_batch(batch)
        compiled = trainer.lower(state, placed).compile()
        memory[name] = inspection.memory_per_device(trainer, state, compiled)
        comm = inspection.bytes_by_kind(inspection.collectives(compiled))
        result, _ = timing.time_steps(trainer.step_fn(state), state, placed, repeats=args.repeats)
        medians[name] = result.median_s
        m = memory[name]
        print(
            f"{name:>10}: median {1e3 * result.median_s:8.1f} ms over {len(result.times_s)} steps "
            f"(min {1e3 * min(result.times_s):.1f}, max {1e3 * max(result.times_s):.1f}); per device: "
            f"params {m.params_bytes / 2**20:.1f} MiB, optimizer {m.opt_state_bytes / 2**20:.1f} MiB, "
            f"grads {m.grad_bytes / 2**20:.1f} MiB; collectives {comm}"
        )
    ratio = memory["wus"].opt_state_bytes / memory["replicated"].opt_state_bytes
    print(
        f"RESULT sharding wus_speedup={medians['replicated'] / medians['wus']:.2f} "
        f"fsdp_speedup={medians['replicated'] / medians['fsdp']:.2f} opt_bytes_ratio={ratio:.3f} params={n_params}"
    )


if __name__ == "__main__":
    main()
