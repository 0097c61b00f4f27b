"""Notebook 04, section 3 (reproduce): every scheduler's throughput on the bundled models, TIC against TAC.

`speedup_table` measures every scheduler over random order per bundled model and mode, with the headroom
S of perfect overlap and the scheduling efficiency E; `order_gap` reads from it how far two fixed orders
lie apart (the claims `tictac.tic_close_to_tac` and `tictac.layer_order_matches_tac`).
"""

from __future__ import annotations

import dataclasses

from mlsys_core import validate
from mlsys_core.tictac import models
from mlsys_core.tictac.compare import compare, model_graph, speedup
from mlsys_core.tictac.simulate import Cluster

CHAIN_MODELS = ("mlp", "cnn", "resnet")  # no parallel branches: each layer's parameters feed the next layer only


@dataclasses.dataclass(frozen=True)
class SpeedupRow:
    """One bundled model and mode: every scheduler against random order, and how much overlap it reaches."""

    model: str  # a `models.MODELS` name
    mode: str  # "infer" or "train"
    speedup: dict[str, float]  # scheduler -> throughput / random's
    headroom: float  # S = (U - L) / L under TAC, mean over iterations and workers
    efficiency_random: float  # mean scheduling efficiency E of random order
    efficiency_tac: float  # mean scheduling efficiency E of TAC


def speedup_table(cluster: Cluster, iterations: int = 20, seed: int = 0) -> list[SpeedupRow]:
    """Per bundled model and mode: speedups of every scheduler over random, headroom S, mean E (random, TAC)."""
    validate.seed("seed", seed)
    rows = []
    for model in models.CLAIM_MODELS:
        for mode in models.MODES:
            res = compare(model_graph(model, mode), cluster, iterations=iterations, seed=seed)
            rows.append(SpeedupRow(model, mode, speedup(res), float(res["tac"].headroom.mean()),
                                   float(res["random"].efficiency.mean()), float(res["tac"].efficiency.mean())))
    return rows


def order_gap(rows: list[SpeedupRow], scheduler: str, reference: str = "tac",
              model_names=models.CLAIM_MODELS) -> float:
    """Largest relative throughput difference |scheduler / reference - 1| over `speedup_table` rows
    of the given models (both are fixed orders, so the random baseline cancels: deterministic).

    Args:
        rows: `speedup_table` rows.
        scheduler: the order compared.
        reference: the order it is compared with.
        model_names: the models whose rows count.
    """
    picked = [r for r in rows if r.model in model_names]
    if not picked:
        raise ValueError(f"model_names must name models in the rows, got {model_names!r}")
    return float(max(abs(r.speedup[scheduler] / r.speedup[reference] - 1.0) for r in picked))
