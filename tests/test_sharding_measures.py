"""Paper 1's measure functions (`sharding.measures`) and the log figures behind the pod-side claims.

The BERT step the cost-model claims compare with is the device-synchronous one (the spacing of the
evaluation results), not the host's block stamps, which asynchronous dispatch lets run ahead of the chips.
"""

import inspect
import json

import numpy as np
import pytest

from mlsys_core import claims
from mlsys_core.claims import sharding as sharding_claims
from mlsys_core.claims import suite
from mlsys_core.claims.registry import load_measure
from mlsys_core.data import DATA_DIR
from mlsys_core.sharding import cost_model, experiments, measures, models

CLAIMS = (*sharding_claims.CLAIMS, *suite.CLAIMS)
DOC = json.loads((DATA_DIR / cost_model.MLPERF_LOGS).read_text())
CHEAP = ("sharding.resnet50_step_4096", "sharding.bert_step_4096", "sharding.resnet50_time_4096",
         "sharding.bert_time_4096", "sharding.wus_optimizer_state_fraction", "suite.shard_bytes")


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.id)
def test_each_measure_takes_its_claims_parameters_with_their_defaults(claim):
    signature = inspect.signature(load_measure(claim))
    assert list(signature.parameters) == [p.name for p in claim.parameters]
    for p in claim.parameters:
        assert signature.parameters[p.name].default == p.default
        assert p.default in p.values and 2 <= len(p.values) <= 4
    assert claim.kind in claims.registry.KINDS


def test_no_two_claims_share_a_measure():
    names = [c.measure for c in CLAIMS]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("claim_id", CHEAP)
def test_cheap_measures_at_their_defaults_give_what_the_rule_takes(claim_id):
    claim = claims.get(claim_id)
    value = load_measure(claim)()
    assert isinstance(value, float) and np.isfinite(value)
    assert claims.evaluate(claim, value).verdict in ("reproduced", "partly reproduced", "not reproduced")


def test_bert_step_the_claims_use_is_the_device_synchronous_one():
    runs = DOC["runs"]["BERT"]
    assert len(runs) == 10
    for name, run in runs.items():
        # every evaluation result is logged after the last block_stop: the host ran ahead of the chips
        assert run["evals_after_last_block"] == len(run["evals"]) >= 3, name
        # the step from the results' spacing, and run_start to the last result over the steps, agree
        over_run = run["evals"][-1]["ms"] / run["steps"]
        assert run["step_ms"] == pytest.approx(over_run, rel=0.03), name
        assert run["step_ms"] == pytest.approx(run["eval_spacing_ms"] / 62, rel=0.01), name
        assert run["host_step_ms"] < 0.4 * run["step_ms"], name  # the host stamps' ~17 ms is dispatch
    logs = cost_model.mlperf_logs("BERT")
    assert 47 < logs.median_step_ms < 49
    assert logs.median_step_ms == pytest.approx(sharding_claims.LOGGED_STEP_MS["BERT"], abs=1e-3)
    rule = claims.get("sharding.bert_step_4096").rule
    assert rule(logs.median_step_ms) == "reproduced"
    assert rule(float(np.median(logs.host_step_ms))) == "not reproduced"  # the host reading is another step


def test_resnet_blocks_wait_for_their_evaluation_so_both_readings_agree():
    for name, run in DOC["runs"]["ResNet-50"].items():
        assert run["evals_after_last_block"] == 0, name
        assert run["step_ms"] == pytest.approx(run["host_step_ms"], rel=0.01), name
    assert cost_model.mlperf_logs("ResNet-50").median_step_ms == pytest.approx(14.553)


def test_the_time_claims_train_the_steps_the_logs_stopped_at():
    bert = cost_model.mlperf_logs("BERT")
    assert sorted(bert.steps)[:9] == [496.0] * 9 and bert.median_steps == 496  # not the 600 of a schedule
    t = measures.bert_time_4096()
    assert t == pytest.approx(measures.bert_step_4096() * 496 / 1e3)
    resnet = cost_model.mlperf_logs("ResNet-50")
    assert resnet.median_steps == pytest.approx(92 * 1_281_167 / 65_536, rel=1e-3)


def test_pod_measures_move_with_their_assumptions():
    base = measures.bert_step_4096()
    assert measures.bert_step_4096(link_gb_per_s=70.0) > base  # a slower link lengthens the all-reduce
    assert measures.bert_step_4096(overlap=1.0) < base  # hidden under compute
    assert measures.bert_step_4096(utilisation=0.6) < base
    assert measures.bert_step_4096(chips=1024.0) > 3 * base  # same global batch on a quarter of the chips
    assert measures.resnet50_step_4096(chips=1024.0) == pytest.approx(
        experiments.model_step_ms("ResNet-50", chips=1024))


@pytest.mark.parametrize("devices", [2, 4, 8])
def test_sharded_bytes_and_optimizer_state_are_one_nth_for_every_mesh(devices):
    assert measures.shard_bytes(float(devices)) == pytest.approx(1.0)
    fraction = experiments.optimizer_state_fraction(models.FFNStack(16, 32, 1), devices=devices)
    assert fraction * devices == pytest.approx(1.0, abs=0.01)  # Adam's replicated step count: a few bytes
    with pytest.raises(ValueError, match="rows"):
        experiments.shard_fraction(devices, rows=devices + 1)


def test_timed_runs_give_one_value_per_independent_run():
    runs = experiments.timed_runs(models.FFNStack(16, 32, 1), per_device_batch=2, devices=4, seeds=(0, 1),
                                  repeats=1, terms=True)
    assert runs.speedups.shape == (2,) and runs.measured_over_predicted.shape == (2,)
    assert np.all(runs.speedups > 0)
    assert set(runs.profiles[0].timings) == {"replicated", "wus", *experiments.MODEL_TERMS}
    assert runs.profiles[0].timings["wus"] is not runs.profiles[1].timings["wus"]
    assert experiments.collective_runs(1000, devices=4, runs=3, repeats=1).shape == (3,)
    with pytest.raises(ValueError, match="runs"):
        experiments.collective_runs(1000, devices=4, runs=1)
    with pytest.raises(ValueError, match="per_device_batch"):
        experiments.timed_runs(models.FFNStack(16, 32, 1), per_device_batch=0)
