"""Paper 1 benchmark: replicated vs weight-update sharding vs FSDP on a mesh of `backend.MESH_DEVICES` (8)
devices, simulated CPU devices on a laptop.

The optimizer-heavy FFN stack (>= 8 M parameters) with Adam and a global batch of 16 - 2 examples per
device, BERT's per-chip batch on 4096 chips in the paper - so the weight update is a large share of a
step. All strategies run in one process on the same mesh; each step time is the median of 9 steps
after warm-up, timed interleaved (one step of each strategy per round) so that load from other work
on the machine falls on all strategies alike. Then the nine optax transforms of
`experiments.EXACT_TRANSFORMS`, each trained 20 steps under every strategy and on one device
(exact_transforms: how many match within 2e-5 under both wus and fsdp), and XLA's peak memory per
device of each strategy (fsdp_peak_ratio: FSDP gathering one block at a time over WUS). Ends with
one RESULT line.
"""

from __future__ import annotations

import argparse
import os

from mlsys_core import backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--batch", type=int, default=16, help="global batch (multiple of the device count)")
    args = parser.parse_args()

    backend.setup(cpu_devices=backend.MESH_DEVICES)
    import jax

    from mlsys_core.sharding import experiments, models

    load = os.getloadavg()[0]
    print(backend.info(), f"(host load average {load:.1f}: other work on this machine slows every strategy)")
    model = models.FFNStack(d_model=512, d_ff=2048, blocks=4)
    n_params = models.parameter_count(jax.eval_shape(model.init, jax.random.key(0)))
    print(f"model: FFNStack 4 x (512 x 2048), {n_params:,} parameters, Adam, global batch {args.batch}")
    profile = experiments.profile_strategies(model, batch=args.batch, devices=backend.MESH_DEVICES,
                                             repeats=args.repeats)
    medians = {name: p.step_times.median_s for name, p in profile.items()}
    memory = {name: p.memory for name, p in profile.items()}
    for name, measure in profile.items():
        m, comm, t = measure.memory, measure.collectives, measure.step_times
        print(
            f"{name:>10}: median {1e3 * t.median_s:8.1f} ms over {len(t.times_s)} steps "
            f"(min {1e3 * min(t.times_s):.1f}, max {1e3 * max(t.times_s):.1f}); per device: "
            f"params {m.params_bytes / 2**20:.1f} MiB, optimizer {m.opt_state_bytes / 2**20:.1f} MiB, "
            f"grads {m.grad_bytes / 2**20:.1f} MiB; "
            f"collectives (MiB) {({k: round(v / 2**20, 2) for k, v in comm.items()})}"
        )
    ratio = memory["wus"].opt_state_bytes / memory["replicated"].opt_state_bytes
    peaks = experiments.memory_comparison(model, batch=args.batch, devices=backend.MESH_DEVICES,
                                          names=("replicated", "wus", "fsdp, gather all", "fsdp, per block"))
    for name, m in zip(peaks.names, peaks.memory):
        print(f"  {name:>17}: XLA per device: inputs {m.arguments_bytes / 2**20:.1f} MiB, temporaries "
              f"{m.temporaries_bytes / 2**20:.1f} MiB, peak {m.peak_bytes / 2**20:.1f} MiB")
    exact = experiments.transform_exactness(devices=backend.MESH_DEVICES)
    for name, row in zip(exact.transforms, exact.max_diff):
        print(f"  {name:>26}: max |param - one device| after 20 steps "
              + ", ".join(f"{s} {d:.1e}" for s, d in zip(exact.strategies, row)))
    print(
        f"RESULT sharding wus_speedup={medians['replicated'] / medians['wus']:.2f} "
        f"fsdp_speedup={medians['replicated'] / medians['fsdp']:.2f} opt_bytes_ratio={ratio:.3f} params={n_params} "
        f"exact_transforms={exact.matched()}/{len(exact.transforms)} "
        f"fsdp_peak_ratio={peaks.peak_ratio('fsdp, per block', 'wus'):.3f}"
    )


if __name__ == "__main__":
    main()
