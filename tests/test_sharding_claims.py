"""Paper 1's claims: each rule gives "not reproduced" for a measurement the paper's claim would not
survive, and the sweeps say over which link bandwidths a cost-model verdict holds."""

import numpy as np
import pytest

from mlsys_core import claims
from mlsys_core.claims import sharding

IDS = [c.id for c in sharding.CLAIMS]


def verdict(claim_id, measured=None, sweep=None):
    return claims.evaluate(claims.get(claim_id), measured, sweep).verdict


def test_paper_1_declares_its_claims_with_seeds_and_sweeps():
    assert len(IDS) >= 7 and all(i.startswith("sharding.") for i in IDS)
    assert {c.paper for c in sharding.CLAIMS} == {"Paper 1 — TPU concurrency"}
    assert sum(c.seeds >= 5 for c in sharding.CLAIMS) >= 1
    swept = {c.id: c.sweep for c in sharding.CLAIMS if c.sweep}
    links = swept["sharding.resnet50_time_4096"].values
    assert links[0] == 70 and links[-1] == 330


@pytest.mark.parametrize(
    ("claim_id", "good", "bad"),
    [
        ("sharding.wus_matches_replicated", np.zeros(5), np.full(5, 1e-2)),  # 1e-2: another model
        ("sharding.lamb_lars_shard_exact", np.full(5, 3e-7), np.full(5, 1.8e-2)),  # optax.lamb under WUS
        ("sharding.distributed_bn_global", np.full(5, 3e-7), np.full(5, 5e-3)),
        ("sharding.wus_optimizer_state_fraction", 0.125, 1.0),  # replicated moments
        ("sharding.wus_collective_time", np.array([0.95, 1.05, 1.0]), np.array([1.9, 2.1, 2.0])),  # twice the bytes
        ("sharding.wus_speedup", np.array([1.8, 2.0, 1.9]), np.array([0.8, 0.9, 0.85])),
        ("sharding.cost_model_speedup", np.array([0.95, 1.0, 1.05]), np.array([0.3, 0.4, 0.35])),
    ],
)
def test_each_rule_can_fail(claim_id, good, bad):
    assert verdict(claim_id, good) == "reproduced"
    assert verdict(claim_id, bad) == "not reproduced"


def test_seeded_claims_refuse_a_single_value():
    with pytest.raises(ValueError, match="per-seed"):
        verdict("sharding.wus_matches_replicated", 0.0)


def test_a_speedup_that_straddles_no_change_is_only_partly_reproduced():
    assert verdict("sharding.wus_speedup", np.array([0.95, 1.3, 1.1, 1.2])) == "partly reproduced"


def test_cost_model_sweeps_say_where_they_hold():
    bert = claims.evaluate(claims.get("sharding.bert_time_4096"), sweep=[36.6, 33.2, 30.5, 29.2, 28.4, 27.6])
    assert bert.verdict == "not reproduced"  # the default, 70 GB/s
    assert bert.holds_over.endswith("reproduced for 200-330 GB/s")
    with pytest.raises(ValueError, match="sweep"):
        verdict("sharding.resnet50_time_4096", 16.7)
