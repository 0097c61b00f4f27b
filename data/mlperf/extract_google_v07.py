"""Remake `google_v07_tpu_v3_4096.json` from a copy of mlcommons/training_results_v0.7.

    git clone https://github.com/mlcommons/training_results_v0.7 /tmp/tr07
    python data/mlperf/extract_google_v07.py /tmp/tr07 [commit]

Reads Google's JAX submissions on TPU-v3-8192 (8192 cores = 4096 chips): for each run its
run_start/run_stop, global batch, the blocks (block_start/block_stop: epochs for ResNet-50, steps
for BERT, whose JAX log counts steps in `epoch_num`), every evaluation result and the epoch or step
at which the run reached its target. `commit` is read with git from a clone; give it for a copy
without its git directory.

The step time is read from device-synchronous events. A `block_start`/`block_stop` pair is stamped
by the host, and JAX dispatches asynchronously: the host can run ahead of the chips. An
`eval_accuracy` line carries a number computed on the chips, so the host cannot log it before the
chips have trained up to it. The step time of a run is the median spacing of its evaluation results
over the training steps between them (`step_ms`); `host_step_ms` keeps the block pairs' reading for
comparison, and `evals_after_last_block` counts the evaluation results logged after the last
block_stop (BERT: all of them, the host ran ahead; ResNet-50: none, each block waits for its result).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

RUNS = {"ResNet-50": "Google/results/tpu-v3-8192-JAX/resnet", "BERT": "Google/results/tpu-v3-8192-JAX/bert"}
CHIPS = 4096  # TPUv3-8192: two cores per chip


def _steps_per_count(model: str, first: dict) -> float:
    """Training steps in one unit of the log's epoch count: an epoch of ImageNet, or one BERT step."""
    return first["train_samples"]["value"] / first["global_batch_size"]["value"] if model == "ResNet-50" else 1.0


def parse(path: Path, model: str) -> dict:
    """One result file -> its run's figures (times in ms from run_start)."""
    events = [json.loads(line.split(":::MLLOG ", 1)[1]) for line in path.read_text().splitlines()
              if line.startswith(":::MLLOG")]
    first: dict = {}
    for e in events:
        first.setdefault(e["key"], e)
    t0 = first["run_start"]["time_ms"]
    per = _steps_per_count(model, {k: first[k] for k in ("train_samples", "global_batch_size")})
    starts = [e for e in events if e["key"] == "block_start"]
    stops = [e for e in events if e["key"] == "block_stop"]
    blocks = [(s["metadata"]["first_epoch_num"], s["metadata"]["epoch_count"], t["time_ms"] - s["time_ms"])
              for s, t in zip(starts, stops)]
    evals = [e for e in events if e["key"] == "eval_accuracy"]
    at = [e["metadata"]["epoch_num"] for e in evals]
    ms = [e["time_ms"] - t0 for e in evals]
    spacing = [(b - a) / ((y - x) * per) for a, b, x, y in zip(ms, ms[1:], at, at[1:])]
    host = [b[2] / (b[1] * per) for b in blocks[1:]]
    last_stop = stops[-1]["time_ms"] - t0
    return {
        "run_s": (first["run_stop"]["time_ms"] - t0) / 1e3,
        "global_batch": first["global_batch_size"]["value"],
        "train_samples": first["train_samples"]["value"],
        "blocks": [{"first": b[0], "count": b[1], "ms": b[2]} for b in blocks],
        "evals": [{"at": a, "ms": m, "accuracy": e["value"]} for a, m, e in zip(at, ms, evals)],
        "last_eval_at": at[-1], "last_eval_accuracy": evals[-1]["value"],
        "trained_through": blocks[-1][0] + blocks[-1][1],
        "steps": round(at[-1] * per, 1),  # training steps up to the evaluation that reached the target
        "eval_spacing_ms": round(statistics.median(b - a for a, b in zip(ms, ms[1:])), 1),
        "step_ms": round(statistics.median(spacing), 3),  # device-synchronous: evaluation spacing / steps
        "host_step_ms": round(statistics.median(host), 3),  # block_start/block_stop, host-stamped
        "evals_after_last_block": sum(m > last_stop for m in ms),
    }


def main(root: str, commit: str = "") -> None:
    repo = Path(root)
    if not commit:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
    out = {"source": "https://github.com/mlcommons/training_results_v0.7", "commit": commit, "chips": CHIPS,
           "licence": "Apache License 2.0", "runs": {}}
    for model, folder in RUNS.items():
        files = sorted((repo / folder).glob("result_*.txt"), key=lambda p: int(p.stem.split("_")[1]))
        out["runs"][model] = {f"{folder}/{p.name}": parse(p, model) for p in files}
    Path(__file__).with_name("google_v07_tpu_v3_4096.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
