"""Remake `google_v07_tpu_v3_4096.json` from a clone of mlcommons/training_results_v0.7.

    git clone https://github.com/mlcommons/training_results_v0.7 /tmp/tr07
    python data/mlperf/extract_google_v07.py /tmp/tr07

Reads Google's JAX submissions on TPU-v3-8192 (8192 cores = 4096 chips): for each run its
run_start/run_stop, global batch, the blocks (block_start/block_stop: epochs for ResNet-50, steps
for BERT, whose JAX log counts steps in `epoch_num`) and the epoch or step at which it stopped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

RUNS = {"ResNet-50": "Google/results/tpu-v3-8192-JAX/resnet", "BERT": "Google/results/tpu-v3-8192-JAX/bert"}
CHIPS = 4096  # TPUv3-8192: two cores per chip


def parse(path: Path) -> dict:
    events = [json.loads(line.split(":::MLLOG ", 1)[1]) for line in path.read_text().splitlines()
              if line.startswith(":::MLLOG")]
    first = {}
    for e in events:
        first.setdefault(e["key"], e)
    starts = [e for e in events if e["key"] == "block_start"]
    stops = [e for e in events if e["key"] == "block_stop"]
    blocks = [(s["metadata"]["first_epoch_num"], s["metadata"]["epoch_count"], t["time_ms"] - s["time_ms"])
              for s, t in zip(starts, stops)]
    evals = [e for e in events if e["key"] == "eval_accuracy"]
    return {
        "run_s": (first["run_stop"]["time_ms"] - first["run_start"]["time_ms"]) / 1e3,
        "global_batch": first["global_batch_size"]["value"],
        "train_samples": first["train_samples"]["value"],
        "blocks": [{"first": b[0], "count": b[1], "ms": b[2]} for b in blocks],
        "last_eval_at": evals[-1]["metadata"]["epoch_num"], "last_eval_accuracy": evals[-1]["value"],
        "trained_through": blocks[-1][0] + blocks[-1][1],
    }


def main(root: str) -> None:
    repo = Path(root)
    commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = {"source": "https://github.com/mlcommons/training_results_v0.7", "commit": commit, "chips": CHIPS,
           "runs": {}}
    for model, folder in RUNS.items():
        files = sorted((repo / folder).glob("result_*.txt"), key=lambda p: int(p.stem.split("_")[1]))
        out["runs"][model] = {f"{folder}/{p.name}": parse(p) for p in files}
    Path(__file__).with_name("google_v07_tpu_v3_4096.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
