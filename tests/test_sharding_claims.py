"""Paper 1's claims: each rule gives "not reproduced" for a measurement the paper's claim would not
survive, every claim declares its kind, its deciding assumptions and its measure, and the sweeps say
over which link bandwidths a cost-model verdict holds."""

import numpy as np
import pytest

from mlsys_core import claims
from mlsys_core.claims import sharding

IDS = [c.id for c in sharding.CLAIMS]


def verdict(claim_id, measured=None, sweep=None):
    return claims.evaluate(claims.get(claim_id), measured, sweep).verdict


def test_paper_1_declares_its_claims_with_kinds_parameters_and_measures():
    assert len(IDS) >= 7 and all(i.startswith("sharding.") for i in IDS)
    assert {c.paper for c in sharding.CLAIMS} == {"Paper 1 — TPU concurrency"}
    assert sum(c.seeds >= 5 for c in sharding.CLAIMS) >= 1
    for c in sharding.CLAIMS:
        assert c.kind and c.measure.endswith(c.id.split(".")[1]) and c.parameters, c.id
        assert "PAPERS" not in c.source, c.id
    pod = [c for c in sharding.CLAIMS if c.id.endswith("_4096")]
    assert len(pod) == 4
    for c in pod:  # the three pod-side assumptions, and utilisation
        assert {p.name for p in c.parameters} == {"link_gb_per_s", "utilisation", "overlap", "chips"}
    link = claims.get("sharding.resnet50_time_4096").parameter("link_gb_per_s")
    assert link.values[0] == 70 and link.values[-1] == 330 and "cloud.google.com/tpu/docs/v3" in link.source
    timed = [c for c in sharding.CLAIMS if c.sample == "timed run"]
    assert {c.id for c in timed} == {"sharding.wus_speedup", "sharding.wus_collective_time",
                                     "sharding.cost_model_speedup"}
    assert all(c.interval == "log-t" and c.seeds >= 5 for c in timed)


@pytest.mark.parametrize(
    ("claim_id", "good", "bad"),
    [
        ("sharding.wus_matches_replicated", np.zeros(5), np.full(5, 1e-2)),  # 1e-2: another model
        ("sharding.lamb_lars_shard_exact", np.full(5, 3e-7), np.full(5, 1.8e-2)),  # optax.lamb under WUS
        ("sharding.distributed_bn_global", np.full(5, 3e-7), np.full(5, 5e-3)),
        ("sharding.wus_optimizer_state_fraction", 1.0, 8.0),  # replicated moments: N x 1/N
        ("sharding.wus_collective_time", np.array([0.95, 1.05, 1.0, 0.98, 1.02]),
         np.array([1.9, 2.1, 2.0, 2.05, 1.95])),  # twice the bytes
        ("sharding.wus_speedup", np.array([1.8, 2.0, 1.9, 1.85, 1.95]), np.array([0.8, 0.9, 0.85, 0.82, 0.88])),
        ("sharding.cost_model_speedup", np.array([0.95, 1.0, 1.05, 0.98, 1.02]),
         np.array([0.3, 0.4, 0.35, 0.32, 0.38])),
    ],
)
def test_each_rule_can_fail(claim_id, good, bad):
    assert verdict(claim_id, good) == "reproduced"
    assert verdict(claim_id, bad) == "not reproduced"


def test_seeded_claims_refuse_a_single_value():
    with pytest.raises(ValueError, match="per-seed"):
        verdict("sharding.wus_matches_replicated", 0.0)


def test_a_speedup_that_straddles_no_change_is_inconclusive():
    assert verdict("sharding.wus_speedup", np.array([0.95, 1.3, 1.1, 1.2, 1.05])) == "inconclusive"


def test_cost_model_sweeps_say_where_they_hold():
    bert = claims.evaluate(claims.get("sharding.bert_time_4096"), sweep={"link_gb_per_s": [30.3, 25.2, 22.8]})
    assert bert.verdict == "reproduced"  # the default, 330 GB/s
    assert bert.holds_over.endswith("partly reproduced at 70 GB/s; reproduced for 150-330 GB/s")
    assert "70 GB/s" in bert.flip
    with pytest.raises(ValueError, match="sweep"):
        verdict("sharding.resnet50_time_4096", sweep={"bandwidth": [1.0, 2.0, 3.0]})
