"""Notebook 04, section 4 (explore): one point of the timeline widget."""

from __future__ import annotations

from mlsys_core import validate
from mlsys_core.tictac import models, ordering
from mlsys_core.tictac.experiments.system import Timeline, timeline


def explore_timeline(model: str = "resnet", mode: str = "infer", bandwidth_gbps: float = 1.0, workers: int = 4,
                     parameter_servers: int = 1, scheduler: str = "tac") -> Timeline:
    """Worker 0's timeline of one iteration at the widget's setting (seed 0); the defaults are the
    widget's opening setting.

    Args:
        model: a `models.MODELS` name.
        mode: "infer" (forward) or "train" (forward + backward, gradients pushed).
        bandwidth_gbps: Gbit/s, each server link (> 0).
        workers: workers sharing each link (>= 1).
        parameter_servers: servers (>= 1).
        scheduler: an `ordering.SCHEDULERS` name.
    """
    validate.choice("model", model, models.MODELS)
    validate.choice("mode", mode, models.MODES)
    validate.positive("bandwidth_gbps", bandwidth_gbps)
    validate.integer("workers", workers, low=1)
    validate.integer("parameter_servers", parameter_servers, low=1)
    validate.choice("scheduler", scheduler, ordering.SCHEDULERS)
    return timeline(model, mode, bandwidth_gbps, workers, parameter_servers, scheduler, seed=0)
