"""Notebook 01's experiments as pure, seeded functions that build, train or time, and return typed results.

One module per section of the notebook (section 3, Reproduce, in its four parts), in notebook order:

- `explore`: sections 1 and 4 - one point of each widget (`explore_scaling`, `explore_config`).
- `equivalence`: section 3 - WUS trains what replicated and one device train, over seeds, optimizers
  and optax transforms.
- `memory`: section 3 - XLA's memory per device at the peak (FSDP per block, remat, accumulation) and
  FSDP's prefetch in XLA's schedule.
- `step_time`: section 3 - memory, collectives and step time of each strategy, and the cost model's
  terms timed in the same rounds.
- `mlperf`: section 3 - the cost model against MLPerf v0.7's records and logs, and the roofline.
- `critique`: section 5 - Megatron model parallelism, bfloat16 gradients, distributed batch norm.

Their public names are imported here, so a notebook calls `experiments.<name>`. Every random choice
takes a seed; timings are medians after warm-up (`mlsys_core.timing`). Meshes take their devices from
`backend.mesh_devices` and default to `backend.MESH_DEVICES` of them.
"""

from .critique import (
    MegatronCheck,
    PrecisionRun,
    bf16_experiment,
    bn_agreement,
    bn_group_experiment,
    megatron_transformer,
    time_mesh_shapes,
)
from .equivalence import (
    BASELINES,
    EXACT_TRANSFORMS,
    LEARNING_RATES,
    Agreement,
    StrategyRun,
    TransformExactness,
    compare_strategies,
    max_param_diff,
    strategy_agreement,
    transform_exactness,
)
from .explore import GRAD_DTYPES, ConfigResult, explore_config, explore_scaling
from .memory import (
    MEMORY_VARIANTS,
    FsdpSchedule,
    MemoryComparison,
    fsdp_schedule,
    memory_comparison,
    shard_fraction,
)
from .mlperf import (
    Roofline,
    model_step_ms,
    model_time_to_train_s,
    roofline,
    step_ms_vs_chips,
    time_to_train_vs_link,
)
from .step_time import (
    MODEL_TERMS,
    StrategyMeasure,
    StrategyProfile,
    TimedRuns,
    calibrate_collectives,
    calibrate_one_device,
    collective_runs,
    ffn_step,
    optimizer_state_fraction,
    profile_strategies,
    profile_with_cost_model,
    timed_runs,
)

__all__ = [
    "BASELINES", "EXACT_TRANSFORMS", "GRAD_DTYPES", "LEARNING_RATES", "MEMORY_VARIANTS", "MODEL_TERMS",
    "Agreement", "ConfigResult", "FsdpSchedule", "MegatronCheck", "MemoryComparison", "PrecisionRun", "Roofline",
    "StrategyMeasure", "StrategyProfile", "StrategyRun", "TimedRuns", "TransformExactness", "bf16_experiment",
    "bn_agreement", "bn_group_experiment", "calibrate_collectives", "calibrate_one_device", "collective_runs",
    "compare_strategies", "explore_config", "explore_scaling", "ffn_step", "fsdp_schedule", "max_param_diff",
    "megatron_transformer", "memory_comparison", "model_step_ms", "model_time_to_train_s",
    "optimizer_state_fraction", "profile_strategies", "profile_with_cost_model", "roofline", "shard_fraction",
    "step_ms_vs_chips", "strategy_agreement", "time_mesh_shapes", "time_to_train_vs_link", "timed_runs",
    "transform_exactness",
]
