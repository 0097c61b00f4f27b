"""The synergy claims' measure functions and the fixes behind them: each claim's measure takes exactly its
declared parameters; bf16's pod saving follows the cost model's overlap flag; NVM's movable memory is what
the drive streams in a step; the partial evaluation's target is the binomial sampling error; quorum commit is
compared by a difference that stays defined where restart's goodput is zero."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest

from mlsys_core import claims
from mlsys_core.claims import rules
from mlsys_core.claims.registry import load_measure
from mlsys_core.claims.synergy import CLAIMS
from mlsys_core.report import sweep
from mlsys_core.sharding import cost_model
from mlsys_core.synergy import bf16, cast_as_fl, fault_tolerance, measures, nvm, on_devices, tictac_links


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.id)
def test_each_claim_names_a_measure_taking_exactly_its_parameters_with_their_defaults(claim):
    assert claim.kind in claims.KINDS
    if not isinstance(claim.rule, rules.Qualitative):
        assert claim.parameters, f"{claim.id} declares no assumption to vary"
    signature = inspect.signature(load_measure(claim))
    assert list(signature.parameters) == [p.name for p in claim.parameters]
    for p in claim.parameters:
        assert signature.parameters[p.name].default == p.default
    assert signature.return_annotation in ("float", "np.ndarray")


def test_the_pod_link_defaults_to_cloud_tpus_documented_330_gb_per_s_everywhere():
    """Cloud TPU's v3 page: 340 TB/s of all-reduce bandwidth per 1,024-chip pod, ~330 GB/s per chip."""
    from mlsys_core.claims import sharding as sharding_claims
    from mlsys_core.claims import synergy as synergy_claims
    from mlsys_core.sharding import experiments as sharding_experiments

    assert cost_model.TPU_V3.link_bytes_per_s == 330e9
    assert synergy_claims.LINK.default == sharding_claims.LINK.default == 330.0
    for c in CLAIMS:
        for p in c.parameters:
            if p.name == "link_gb_per_s":
                assert p.default == 330.0 and p.values == (70.0, 200.0, 330.0) and "v3" in p.source, c.id
    for fn in (bf16.bf16_saving_tpu, bf16.bf16_gap_points, nvm.pod_chip, nvm.nvm_optimizer_state,
               nvm.nvm_movable_memory, sharding_experiments.explore_scaling):
        assert inspect.signature(fn).parameters["link_gb_per_s"].default == 330.0, fn.__name__
    assert inspect.signature(bf16.explore_bf16).parameters["pod_link_gb_per_s"].default == 330.0
    # a caller that relies on the default gets the documented link: same step as passing 330 GB/s explicitly
    assert nvm.pod_chip() == dataclasses.replace(cost_model.TPU_V3, link_bytes_per_s=330e9)
    default = bf16.bf16_saving_tpu(chips=(4096,)).saving[0]
    assert default == bf16.bf16_saving_tpu(chips=(4096,), link_gb_per_s=330.0).saving[0]
    assert default < bf16.bf16_saving_tpu(chips=(4096,), link_gb_per_s=70.0).saving[0]


def test_sanity_checks_are_the_claims_true_by_construction():
    sanity = {c.id for c in CLAIMS if c.kind == "sanity check"}
    assert sanity == {"synergy.dp_equals_fedsgd", "synergy.federated_eval_equals_pod"}


def test_bounded_quantities_take_a_bootstrap_interval():
    for c in CLAIMS:
        if c.unit in ("accuracy", "goodput (share of a failure-free pod)"):
            assert c.interval == "bootstrap", c.id


@pytest.mark.parametrize("name", ["bf16_fl_gains_more", "nvm_optimizer_state_slowdown", "nvm_sparse_state_slowdown",
                                  "nvm_pod_memory_bill", "dispatch_one_round", "quorum_commit_goodput",
                                  "deadline_beats_waiting", "tictac_helps_pods"])
def test_a_cheap_measure_at_its_defaults_gives_what_its_rule_decides(name):
    claim = claims.get(f"synergy.{name}")
    evaluation = claims.evaluate(claim, getattr(measures, name)())
    assert evaluation.verdict in rules.VERDICTS and evaluation.verdict != rules.NOT_COMPARABLE
    assert np.isfinite(evaluation.estimate.value)
    assert (evaluation.estimate.seeds == claim.seeds) or (claim.seeds == 0 and evaluation.estimate.seeds == 0)


def test_over_measures_each_declared_value_in_order():
    out = sweep.over("synergy.nvm_pod_memory_bill", "peak_kiops", "chips")
    assert list(out) == ["peak_kiops", "chips"] and [len(v) for v in out.values()] == [2, 3]
    assert out["peak_kiops"][0] == measures.nvm_pod_memory_bill()
    assert out["peak_kiops"][1] > out["peak_kiops"][0]  # a faster drive holds more without slowing the step


def test_bf16_pod_saving_without_overlap_is_half_the_all_reduce_share():
    r = bf16.bf16_saving_tpu(chips=(256, 4096))
    # the all-reduce's hop latency does not halve with the bytes, so the cost model's saving sits just under
    # (at 330 GB/s per chip a 4096-chip torus's 252 hops of 1 us are ~3 % of its 8 ms f32 all-reduce)
    np.testing.assert_allclose(r.saving, bf16.bf16_saving(r.compute_s, r.comm_s), rtol=0.04)
    assert np.all(r.saving < bf16.bf16_saving(r.compute_s, r.comm_s))


def test_bf16_saves_a_pod_nothing_when_its_all_reduce_hides_under_the_compute():
    r = bf16.bf16_saving_tpu(chips=(4096,), overlap=True)
    assert r.comm_s[0] < r.compute_s[0]  # at the cost model's 330 GB/s the f32 all-reduce fits under the compute
    assert r.saving[0] == 0.0
    gap = bf16.bf16_gap_points(overlap=True, devices=2000, seeds=(0, 1))
    phones = [np.median(bf16.bf16_saving_edge(devices=2000, seed=s).saving) for s in (0, 1)]
    np.testing.assert_allclose(gap, 100 * np.array(phones))
    assert np.all(gap > bf16.bf16_gap_points(overlap=False, devices=2000, seeds=(0, 1)))


def test_bf16_pod_saving_sticks_out_beyond_the_compute_with_overlap_on_slow_links():
    chip = dataclasses.replace(cost_model.TPU_V3, link_bytes_per_s=10e9)
    f32 = dataclasses.replace(cost_model.BERT_LARGE, grad_bytes_per_param=4.0)
    bf = dataclasses.replace(cost_model.BERT_LARGE, grad_bytes_per_param=2.0)
    want = 1 - cost_model.model_step_s(bf, chip, 4096, True) / cost_model.model_step_s(f32, chip, 4096, True)
    got = bf16.bf16_saving_tpu(chips=(4096,), link_gb_per_s=10.0, overlap=True).saving[0]
    assert got == pytest.approx(want) and got > 0


def test_nvm_movable_memory_is_what_the_drive_streams_both_ways_in_one_step():
    m = nvm.nvm_movable_memory(chips=1024)
    rate = nvm.nvm_drive(585.0).effective_bandwidth_bytes_per_s(1.0)
    assert m.movable_bytes_per_chip == pytest.approx(m.step_s * rate / 2)
    assert m.memory_bill_saving == pytest.approx(m.movable_share * 0.9)  # NVM a tenth of DRAM's price
    assert m.movable_share < 0.01  # a couple of hundred MB of a 32 GB chip
    assert nvm.nvm_movable_memory(chips=256).movable_share > m.movable_share  # a longer step hides more
    tiny = nvm.nvm_movable_memory(chips=1024, hbm_bytes_per_chip=1e6)
    assert tiny.movable_bytes_per_chip == 1e6 and tiny.movable_share == 1.0
    with pytest.raises(ValueError, match="peak_kiops"):
        nvm.nvm_drive(10.0)


def test_nvm_slowdown_grows_when_the_step_hides_its_all_reduce():
    plain = nvm.nvm_optimizer_state(chips=1024)
    hidden = nvm.nvm_optimizer_state(chips=1024, overlap=True)
    assert hidden.wus.step_s < plain.wus.step_s and hidden.wus.slowdown > plain.wus.slowdown
    fast = nvm.nvm_optimizer_state(chips=1024, peak_kiops=1500.0)
    assert fast.wus.nvm_stream_s == pytest.approx(plain.wus.nvm_stream_s * 585 / 1500)


def test_binomial_standard_error_matches_random_samples_of_the_test_set():
    rng = np.random.default_rng(0)
    correct = np.zeros(360)
    correct[:252] = 1  # accuracy 0.7
    for n in (9, 90):
        estimates = [correct[rng.choice(360, n, replace=False)].mean() for _ in range(4000)]
        rms = np.sqrt(np.mean((np.array(estimates) - 0.7) ** 2))
        assert on_devices.binomial_standard_error(0.7, n, 360) == pytest.approx(rms, rel=0.05)
    assert on_devices.binomial_standard_error(0.7, 360, 360) == 0.0  # the whole set: no sampling error
    with pytest.raises(ValueError, match="examples"):
        on_devices.binomial_standard_error(0.7, 400, 360)


def test_quorum_gain_stays_defined_where_restart_gets_nothing_done():
    g = fault_tolerance.goodput_grid((0.2,), (50,), seeds=(0, 1, 2))
    assert np.all(g.restart == 0.0)  # a ratio quorum / restart would divide by zero here
    np.testing.assert_array_equal(g.quorum_gain, g.quorum)
    assert np.all(g.quorum_gain > 0)


def test_protocol_participants_simulate_longer_when_drop_outs_fail_rounds():
    ids = cast_as_fl.protocol_participants(devices=100, goal_count=10, rounds=60, seed=1, drop_out=0.3)
    assert len(ids) == 60 and all(len(i) >= 10 for i in ids)
    with pytest.raises(ValueError, match="drop_out"):
        cast_as_fl.protocol_participants(drop_out=0.95)


def test_tictac_phone_compute_rate_and_pod_utilisation_reach_the_simulator():
    slow = tictac_links.tictac_vs_bandwidth("mlp", "train", (0.016,), workers=1, iterations=3, gflops=5.0)
    fast = tictac_links.tictac_vs_bandwidth("mlp", "train", (0.016,), workers=1, iterations=3, gflops=40.0)
    assert fast.comm_share[0] > slow.comm_share[0]  # faster compute leaves the transfers a larger share
    low = tictac_links.tictac_pod((70.0,), seeds=(0,), model="mlp", iterations=3, utilisation=0.3)
    high = tictac_links.tictac_pod((70.0,), seeds=(0,), model="mlp", iterations=3, utilisation=0.6)
    assert high.comm_share[0] > low.comm_share[0]  # a busier chip computes faster: transfers weigh more
