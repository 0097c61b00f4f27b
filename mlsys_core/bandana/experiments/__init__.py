"""The paper's experiments as pure functions, one module per section of notebook 02.

`system` (2. The system: request latency idle and queued, measured service times), `reproduce`
(3. Reproduce: placements compared, t per table, mini-caches and SHARDS on the notebook's workload),
`study` (the seeded claims, one small workload per affinity and seed), `explore` (4. Explore: one point
of the widget), `critique` (5. The survey's critique: endurance, a pod's memory bill).
Each function takes configurations and seeds and returns numbers, arrays or a typed result, so the
notebook, its widget, the claims' measures and the benchmark share one tested code path. Their public
names are imported here, so a notebook calls `experiments.<name>`.
"""

from mlsys_core.bandana.experiments.critique import drives_over_budget, pod_cost_factor
from mlsys_core.bandana.experiments.explore import EXPLORE_FRACTIONS, DesignPoint, explore_cache
from mlsys_core.bandana.experiments.reproduce import (
    FULL_SCALE,
    MINI_FRACTIONS,
    SHARDS_CURVE,
    PlacementScore,
    compare_placements,
    dram_saved_at_equal_hit_rate,
    full_experiment,
    minicache_losses,
    minicache_study,
    shards_errors,
    shards_fixed_errors,
    threshold_table,
)
from mlsys_core.bandana.experiments.study import (
    STUDY_AFFINITY,
    STUDY_CACHE,
    STUDY_CURVE,
    OracleGains,
    PlacementGains,
    StudyRun,
    blocks_ratios,
    dram_saved,
    kmeans_ratios,
    latency_tails,
    oracle_gains,
    placement_gains,
)
from mlsys_core.bandana.experiments.system import (
    MEASURED_READS,
    TAIL_UTILISATION,
    UTILISATIONS,
    latency_profile,
    measured_service_times,
    queue_profile,
)

__all__ = [
    "EXPLORE_FRACTIONS", "FULL_SCALE", "MEASURED_READS", "MINI_FRACTIONS", "SHARDS_CURVE", "STUDY_AFFINITY",
    "STUDY_CACHE", "STUDY_CURVE", "TAIL_UTILISATION", "UTILISATIONS", "DesignPoint", "OracleGains",
    "PlacementGains", "PlacementScore", "StudyRun", "blocks_ratios", "compare_placements", "dram_saved",
    "dram_saved_at_equal_hit_rate", "drives_over_budget", "explore_cache", "full_experiment", "kmeans_ratios",
    "latency_profile", "latency_tails", "measured_service_times", "minicache_losses", "minicache_study",
    "oracle_gains", "placement_gains", "pod_cost_factor", "queue_profile", "shards_errors", "shards_fixed_errors",
    "threshold_table",
]
