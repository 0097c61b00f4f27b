"""Run the same data-parallel training in several processes joined by `jax.distributed`.

    python -m mlsys_core.sharding.launch --processes 2 --cpu-devices 4 --strategy wus --steps 5

starts 2 local processes with 4 CPU devices each (gloo collectives over loopback), builds one
8-device mesh spanning both, trains the digits MLP and prints one JSON line per process: the losses
and a digest of the final parameters. `run()` is the same training in the current process, so a
test can check that 2 processes x 4 devices give what 1 process x 8 devices gives.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from mlsys_core import backend, validate


def _check(strategy: str, steps: int, optimizer: str, batch: int, seed: int) -> None:
    """`run`'s arguments: `steps` batches of `batch` digits must fit in the 1,797 examples (no example twice)."""
    from mlsys_core import data
    from mlsys_core.sharding import optimizers, strategies

    validate.choice("strategy", strategy, strategies.STRATEGIES)
    validate.choice("optimizer", optimizer, optimizers.OPTIMIZERS)
    examples = len(data.load_digits()[1])
    validate.integer("batch", batch, 1, examples)
    validate.integer("steps", steps, 1, examples // batch)
    validate.seed("seed", seed)


def run(strategy: str = "wus", steps: int = 5, optimizer: str = "adam", batch: int = 64, seed: int = 0) -> dict:
    """Train the digits MLP on every device of every process; return losses and a parameter digest.

    Args:
        strategy: a name in `strategies.STRATEGIES`.
        steps: training steps (each a fresh `batch` of the digits: no example twice).
        optimizer: a name in `optimizers.OPTIMIZERS`, at learning rate 1e-2.
        batch: the global batch (examples; a multiple of the devices of all processes).
        seed: draws the example order and the initial weights.
    """
    import jax
    import numpy as np

    from mlsys_core import data
    from mlsys_core.sharding import models, optimizers, strategies

    _check(strategy, steps, optimizer, batch, seed)
    x, y = data.load_digits()
    order = np.random.default_rng(seed).permutation(len(x))
    batches = [(x[order[i * batch:(i + 1) * batch]], y[order[i * batch:(i + 1) * batch]]) for i in range(steps)]
    model = models.MLP((64, 128, 10))
    trainer = strategies.Trainer(
        models.classifier_loss(model), optimizers.make(optimizer, 1e-2), strategies.data_mesh(jax.device_count()),
        strategy,
    )
    state, losses = strategies.train(trainer, model.init(jax.random.key(seed)), batches)
    leaves = jax.tree.leaves(trainer.full_params(state))
    flat = np.concatenate([np.asarray(leaf.addressable_data(0)).ravel() for leaf in leaves])
    return {
        "process": jax.process_index(), "processes": jax.process_count(), "devices": jax.device_count(),
        "strategy": strategy, "losses": losses, "param_sum": float(flat.sum()),
        "param_sq": float((flat.astype(np.float64) ** 2).sum()), "params_head": flat[:8].tolist(),
    }


def parse(argv=None) -> argparse.Namespace:
    """The command line's options (`argv`, else `sys.argv`)."""
    from mlsys_core.sharding.strategies import STRATEGIES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--cpu-devices", type=int, default=4, help="simulated CPU devices per process")
    parser.add_argument("--strategy", choices=STRATEGIES, default="wus")
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None) -> list[dict]:
    """Parent: launch the processes and print their JSON lines. Child (inside a launch): train."""
    args = parse(argv)
    train_args = {"strategy": args.strategy, "steps": args.steps, "optimizer": args.optimizer, "batch": args.batch,
                  "seed": args.seed}
    if backend.ENV_COORDINATOR in os.environ:
        backend.setup(args.cpu_devices)
        print(json.dumps(run(**train_args)))
        return []
    _check(**train_args)
    argv = sys.argv[1:] if argv is None else list(argv)
    outs = backend.launch(["-m", "mlsys_core.sharding.launch", *argv], args.processes, args.cpu_devices)
    results = [json.loads(out.strip().splitlines()[-1]) for out in outs]  # gloo logs come first
    for r in results:
        print(json.dumps(r))
    return results


if __name__ == "__main__":
    main()
