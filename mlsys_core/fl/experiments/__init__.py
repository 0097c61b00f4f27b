"""Notebook 03's experiments as pure, seeded functions, one module per section of the notebook.

`day` (1-3. the population over a day, a simulated day's dashboard, over-selection, session outcomes, the
diurnal swing), `pace_steering` (3. pace steering), `fault_injection` (3. fault injection; 5. four actors, or
two?), `training_runs` (3. server optimizers and federated evaluation; 5. recycle late updates), `widget`
(4. explore: one point of the widget). Each returns numbers, arrays or a typed result; the `..._over_seeds`
functions give one value per seed for the claims registry (`mlsys_core.claims.fl`). Their public names are
imported here, so a notebook calls `experiments.<name>`. Notebook 03b's experiments are `privacy`,
`inversion` and `secagg_attacks`.
"""

from mlsys_core.fl.experiments.day import (
    PAPER_SESSION_OUTCOMES,
    Dashboard,
    DayMetrics,
    DiurnalSwing,
    SessionOutcomes,
    commit_share_curves,
    dashboard_series,
    day_over_seeds,
    diurnal_swing,
    hourly,
    over_selection_over_seeds,
    session_outcomes,
)
from mlsys_core.fl.experiments.fault_injection import (
    FAULT_KINDS,
    FaultCost,
    FaultRun,
    TopologyCost,
    fault_behaviours,
    fault_runs,
    fault_semantics_over_seeds,
    fault_table,
    topology_comparison,
)
from mlsys_core.fl.experiments.pace_steering import ServerLoad, SteeringGain, steering_comparison, steering_over_seeds
from mlsys_core.fl.experiments.training_runs import (
    RecyclingGain,
    ServerStudy,
    recycling_over_seeds,
    server_optimizer_study,
)
from mlsys_core.fl.experiments.widget import EXPLORE_CLIENTS, RoundsExplored, explore_rounds

__all__ = [
    "EXPLORE_CLIENTS", "FAULT_KINDS", "PAPER_SESSION_OUTCOMES", "Dashboard", "DayMetrics", "DiurnalSwing",
    "FaultCost", "FaultRun", "RecyclingGain", "RoundsExplored", "ServerLoad", "ServerStudy", "SessionOutcomes",
    "SteeringGain", "TopologyCost", "commit_share_curves", "dashboard_series", "day_over_seeds", "diurnal_swing",
    "explore_rounds", "fault_behaviours", "fault_runs", "fault_semantics_over_seeds", "fault_table", "hourly",
    "over_selection_over_seeds", "recycling_over_seeds", "server_optimizer_study", "session_outcomes",
    "steering_comparison", "steering_over_seeds", "topology_comparison",
]
