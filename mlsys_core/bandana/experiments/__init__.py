"""The paper's experiments as pure functions, one module per section of notebook 02.

`system` (2. The system: request latency idle and queued, measured service times), `reproduce`
(3. Reproduce: placements compared, t per table, the seeded claims, SHARDS), `explore` (4. Explore:
one point of the widget), `critique` (5. The survey's critique: endurance, a pod's memory bill).
Each function takes configurations and seeds and returns numbers, arrays or a typed result, so the
notebook, its widget and the benchmark share one tested code path. Their public names are imported
here, so a notebook calls `experiments.<name>`.
"""

from mlsys_core.bandana.experiments.critique import drives_over_budget, pod_cost_factor
from mlsys_core.bandana.experiments.explore import EXPLORE_FRACTIONS, DesignPoint, explore_cache
from mlsys_core.bandana.experiments.reproduce import (
    STUDY_CURVE,
    PlacementScore,
    SeedStudy,
    compare_placements,
    dram_saved_at_equal_hit_rate,
    minicache_loss,
    seed_study,
    shards_errors,
    threshold_table,
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
    "EXPLORE_FRACTIONS", "MEASURED_READS", "STUDY_CURVE", "TAIL_UTILISATION", "UTILISATIONS", "DesignPoint",
    "PlacementScore", "SeedStudy", "compare_placements", "dram_saved_at_equal_hit_rate", "drives_over_budget",
    "explore_cache", "latency_profile", "measured_service_times", "minicache_loss", "pod_cost_factor", "queue_profile",
    "seed_study", "shards_errors", "threshold_table",
]
