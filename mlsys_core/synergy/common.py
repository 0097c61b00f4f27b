"""What several synergies share: the pod's workloads of Paper 1's cost model, by name."""

from __future__ import annotations

from mlsys_core import validate
from mlsys_core.sharding import cost_model


def pod_workload(name: str) -> cost_model.Workload:
    """The cost model's workload called `name` (a `cost_model.WORKLOADS` key; refused as `workload`)."""
    return cost_model.WORKLOADS[validate.choice("workload", name, tuple(cost_model.WORKLOADS))]
