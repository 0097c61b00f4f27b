"""Notebook 04's measurements as pure, seeded functions returning typed results, one module per section.

- `system` (section 2): `timeline`, `push_traffic`, `server_sweep`, `partition_study`.
- `reproduce` (section 3): `speedup_table`, `order_gap`.
- `branching` (section 3, graphs where the order matters): `branching_table`, `order_study`.
- `gains` (section 3, the gain over seeds and bandwidth/compute ratios): `gain_sweep`, `efficiency`,
  `straggler_sweep`, `workers_sweep`, `workers_gain`, `rise_and_fall`.
- `real_server` (section 3, the real loopback parameter server): `real_ps_runs`, `interleaved_speedups`,
  `run_gains`.
- `explore` (section 4): `explore_timeline`, one point of the widget.
- `critique` (section 5): `oracle_error`, `heuristic_cost`, `alternatives`.

They build on `compare` (model graphs, schedulers side by side), `ordering` and `simulate`; `plots` draws
their results. The seed of a measurement seeds the random transfer orders and, where a cluster has
`jitter`, the transfer-time noise; the functions that feed the claims registry take `seeds` and return
one value per seed.
"""

from mlsys_core.tictac.experiments.branching import (
    ORDER_DAGS,
    BranchingRow,
    OrderStudy,
    branching_table,
    order_study,
)
from mlsys_core.tictac.experiments.critique import (
    NAIVE_BLOCKS,
    HeuristicCost,
    OracleError,
    alternatives,
    heuristic_cost,
    oracle_error,
)
from mlsys_core.tictac.experiments.explore import explore_timeline
from mlsys_core.tictac.experiments.gains import (
    BANDWIDTHS_GBPS,
    JITTERS,
    WORKER_COUNTS,
    Efficiency,
    GainSweep,
    StragglerSweep,
    WorkersSweep,
    efficiency,
    gain_sweep,
    rise_and_fall,
    straggler,
    straggler_sweep,
    workers_gain,
    workers_sweep,
)
from mlsys_core.tictac.experiments.real_server import (
    REAL_PS,
    REAL_RUNS,
    interleaved_speedups,
    real_ps_runs,
    run_gains,
)
from mlsys_core.tictac.experiments.reproduce import CHAIN_MODELS, SpeedupRow, order_gap, speedup_table
from mlsys_core.tictac.experiments.system import (
    ORDERS,
    PartitionStudy,
    PushTraffic,
    ServerSweep,
    Timeline,
    partition_study,
    push_traffic,
    server_sweep,
    timeline,
)

__all__ = [
    "BANDWIDTHS_GBPS", "CHAIN_MODELS", "JITTERS", "NAIVE_BLOCKS", "ORDERS", "ORDER_DAGS", "REAL_PS", "REAL_RUNS",
    "WORKER_COUNTS",
    "BranchingRow", "Efficiency", "GainSweep", "HeuristicCost", "OracleError", "OrderStudy", "PartitionStudy",
    "PushTraffic", "ServerSweep", "SpeedupRow", "StragglerSweep", "Timeline", "WorkersSweep",
    "alternatives", "branching_table", "efficiency", "explore_timeline", "gain_sweep", "heuristic_cost",
    "interleaved_speedups", "oracle_error", "order_gap", "order_study", "partition_study", "real_ps_runs", "run_gains",
    "push_traffic", "rise_and_fall", "server_sweep", "speedup_table", "straggler", "straggler_sweep", "timeline",
    "workers_gain", "workers_sweep",
]
