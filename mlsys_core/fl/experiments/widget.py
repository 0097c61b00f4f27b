"""Notebook 03, section 4 (explore): one point of the widget, a few simulated hours under the chosen settings
and the clients' digit mix. Its defaults are the widget's opening setting."""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate
from mlsys_core.data import load_digits
from mlsys_core.fl.experiments.day import SessionOutcomes, session_outcomes
from mlsys_core.fl.fedavg import dirichlet_split
from mlsys_core.fl.population import HOUR_S, PopulationConfig, make_population
from mlsys_core.fl.protocol import FLSimResult, simulate
from mlsys_core.fl.rounds import RoundConfig
from mlsys_core.fl.steering import SteeringConfig

EXPLORE_CLIENTS = 20  # clients the digits are split over in the widget's class-mix panel


@dataclasses.dataclass(frozen=True)
class RoundsExplored:
    """The widget's view of one setting."""

    result: FLSimResult  # the simulated run
    outcomes: SessionOutcomes  # what became of the selected devices' sessions
    class_mix: np.ndarray  # (EXPLORE_CLIENTS, 10) digits per class of each client
    committed_share: float  # share of the run's rounds that committed


def explore_rounds(num_devices: int = 50_000, goal_count: int = 200, over_selection: float = 1.3,
                   drop_out: float = 0.08, alpha: float = 0.5, steering: bool = True, hours: float = 6.0,
                   seed: int = 0) -> RoundsExplored:
    """The widget's compute: a few simulated hours with these settings, plus the Dirichlet split of digits.

    Args:
        num_devices: phones in the population.
        goal_count: updates a round needs.
        over_selection: devices selected per update needed (>= 1).
        drop_out: every phone's drop-out probability per session, in [0, 1).
        alpha: Dirichlet concentration of the clients' class mix (> 0; small: non-IID).
        steering: pace steering on ("auto") or off ("none").
        hours: simulated hours.
        seed: draws the population, the run and the split.
    """
    validate.boolean("steering", steering)
    validate.positive("hours", hours)
    validate.seed("seed", seed)
    validate.probability("drop_out", drop_out, open_high=True)
    validate.positive("alpha", alpha)
    pop = make_population(PopulationConfig(num_devices=num_devices, drop_out_range=(drop_out, drop_out)), seed)
    cfg = RoundConfig(goal_count=goal_count, over_selection=over_selection)
    res = simulate(pop, cfg, SteeringConfig(mode="auto" if steering else "none"), hours * HOUR_S, seed)
    _, y = load_digits()
    parts = dirichlet_split(y, EXPLORE_CLIENTS, alpha, seed)
    mix = np.array([np.bincount(y[p], minlength=10) for p in parts])
    return RoundsExplored(res, session_outcomes(res), mix,
                          float(res.counters.column("committed").mean()) if len(res.counters) else 0.0)
