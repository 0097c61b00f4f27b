import dataclasses

import numpy as np
import pytest

from mlsys_core.claims import rules
from mlsys_core.claims import synergy as synergy_claims
from mlsys_core.synergy import bf16, fedsgd, nvm, tictac_links


def test_data_parallel_equals_fedsgd_with_one_local_step():
    r = fedsgd.data_parallel_vs_fedsgd(devices=4, steps=3, per_device_batch=8)
    assert r.max_param_change > 1e-3  # training really moved the weights...
    assert r.max_abs_diff < 1e-5  # ...and both ways moved them identically (f32 rounding only)
    assert r.relative_diff == pytest.approx(r.max_abs_diff / r.max_param_change)
    # the per-seed driver returns exactly this measurement for each seed
    per_seed = fedsgd.fedsgd_equivalence(seeds=(0,), devices=4, steps=3, per_device_batch=8)
    assert per_seed.shape == (1,) and per_seed[0] == pytest.approx(r.relative_diff)


def test_data_parallel_vs_fedsgd_rejects_bad_arguments():
    with pytest.raises(ValueError, match="1797"):
        fedsgd.data_parallel_vs_fedsgd(devices=8, steps=100, per_device_batch=16)
    with pytest.raises(TypeError, match="devices"):
        fedsgd.data_parallel_vs_fedsgd(devices=2.5)
    with pytest.raises(ValueError, match="seeds"):
        fedsgd.fedsgd_equivalence(seeds=())


def test_bf16_saving_limits():
    assert bf16.bf16_saving(1.0, 0.0) == 0.0
    assert bf16.bf16_saving(0.0, 1.0) == 0.5
    assert bf16.bf16_saving(1.0, 1.0) == 0.25
    with pytest.raises(ValueError, match="comm_s"):
        bf16.bf16_saving(1.0, -1.0)
    with pytest.raises(ValueError, match="compute_s"):
        bf16.bf16_saving(0.0, 0.0)


def test_bf16_matters_more_as_the_pod_grows():
    r = bf16.bf16_saving_tpu(chips=(16, 256, 4096))
    assert np.all(np.diff(r.saving) > 0)
    with pytest.raises(ValueError, match="workload"):
        bf16.bf16_saving_tpu("GPT-9")


def test_bf16_pod_saving_falls_with_link_bandwidth_and_rises_with_utilisation():
    base = bf16.bf16_saving_tpu(chips=(4096,)).saving[0]  # the cost model's ~330 GB/s per chip
    slow_links = bf16.bf16_saving_tpu(chips=(4096,), link_gb_per_s=70.0).saving[0]
    busy_chips = bf16.bf16_saving_tpu(chips=(4096,), utilisation=0.6).saving[0]
    assert base < slow_links and base < busy_chips  # slower links: more to save; faster compute: comm's share grows
    with pytest.raises(ValueError, match="utilisation"):
        bf16.bf16_saving_tpu(utilisation=1.5)


def test_bf16_saving_edge_is_per_device_and_bounded():
    r = bf16.bf16_saving_edge(devices=1000)
    assert r.saving.shape == (1000,)
    assert np.all((r.saving > 0) & (r.saving < 0.5))
    with pytest.raises(ValueError, match="model_params"):
        bf16.bf16_saving_edge(model_params=0)


def test_bf16_pod_vs_phone_gap_is_phone_minus_pod():
    g = bf16.bf16_pod_vs_phone(link_gb_per_s=(70.0, 330.0), utilisation=(0.3, 0.6), devices=2000, seeds=(0, 1))
    assert g.gap_points.shape == (2, 2, 2)
    pod = bf16.bf16_saving_tpu(chips=(4096,), link_gb_per_s=330.0, utilisation=0.3).saving[0]
    phone = np.median(bf16.bf16_saving_edge(devices=2000, seed=1).saving)
    assert g.gap_points[1, 0, 1] == pytest.approx(100 * (phone - pod))
    np.testing.assert_array_equal(g.gap_over_bandwidth(0.3), g.gap_points[:, 0, :])
    np.testing.assert_array_equal(g.gap_over_utilisation(330.0), g.gap_points[1])
    # faster links shrink the pod's saving, so phones gain more; busier chips do the opposite
    assert np.all(g.gap_points[1] > g.gap_points[0]) and np.all(g.gap_points[:, 1] < g.gap_points[:, 0])
    with pytest.raises(ValueError, match="utilisation"):
        g.gap_over_bandwidth(0.45)
    with pytest.raises(ValueError, match="pod_chips"):
        bf16.bf16_pod_vs_phone(pod_chips=1000)


def test_crossover_is_the_largest_pod_that_gains_less_than_the_phone():
    g = bf16.bf16_pod_vs_phone(link_gb_per_s=(70.0, 330.0), utilisation=(0.4,), devices=2000, seeds=(0,))
    phone = g.phone_median_saving.mean()
    for b in range(2):
        n = g.crossover_chips[b, 0]
        i = list(g.chips).index(n)
        assert g.pod_saving[b, 0, i] < phone
        if i + 1 < len(g.chips):
            assert g.pod_saving[b, 0, i + 1] >= phone
    assert g.crossover_chips[1, 0] > g.crossover_chips[0, 0]  # 4.7x faster links: bigger pods still gain less


def test_fedavg_with_rounded_deltas_tracks_float32():
    f32 = bf16.fedavg_delta_dtype("float32", rounds=3, clients_per_round=5, num_clients=20)
    f16 = bf16.fedavg_delta_dtype("float16", rounds=3, clients_per_round=5, num_clients=20)
    assert f32.shape == (3,) and np.all((0 <= f32) & (f32 <= 1))
    assert np.max(np.abs(f32 - f16)) <= 0.02
    with pytest.raises(ValueError, match="dtype"):
        bf16.fedavg_delta_dtype("int8")


def test_bf16_accuracy_gap_per_seed():
    r = bf16.bf16_accuracy_gap(seeds=(0, 3), rounds=3, clients_per_round=5, num_clients=20)
    assert r.float32.shape == r.rounded.shape == (2, 3)
    np.testing.assert_allclose(r.float32[1], bf16.fedavg_delta_dtype("float32", 3, 5, 20, seed=3))
    np.testing.assert_allclose(r.final_gap, r.float32[:, -1] - r.rounded[:, -1])
    assert np.all(np.abs(r.final_gap) <= 0.03)
    assert not np.allclose(r.float32[0], r.float32[1])  # the seed changes the split, weights and selection


def test_wus_shrinks_the_optimizer_state_nvm_must_stream():
    r = nvm.nvm_optimizer_state(chips=64)
    assert r.wus.state_bytes_per_chip == pytest.approx(r.replicated.state_bytes_per_chip / 64)
    assert 1.0 < r.wus.slowdown < r.replicated.slowdown
    assert r.cost.nvm_plus_cache_usd < r.cost.all_dram_usd


def test_nvm_memory_bill_saving_is_the_moved_share_times_the_price_cut():
    r = nvm.nvm_optimizer_state(chips=1024, hbm_bytes_per_chip=32e9)
    assert r.wus.memory_bill_saving == pytest.approx(334e6 * 8 / 1024 / 32e9 * 0.9)
    assert r.wus.memory_bill_saving < 1e-3 < r.replicated.memory_bill_saving < 0.9
    with pytest.raises(ValueError, match="chips"):
        nvm.nvm_optimizer_state(chips=0)


def test_tictac_gain_stays_under_the_overlap_headroom_and_peaks_where_links_balance():
    r = tictac_links.tictac_vs_bandwidth("mlp", "infer", bandwidths_gbps=(1000.0, 30.0, 0.01), iterations=3)
    assert r.comm_share[0] < r.comm_share[1] < r.comm_share[2]
    assert np.all(r.tac_speedup <= 1 + r.headroom + 1e-9)  # no order beats perfect overlap
    assert r.headroom[1] > 2 * max(r.headroom[0], r.headroom[2])  # most to gain when comm ~ comp
    assert r.tac_speedup[1] == max(r.tac_speedup)


def test_local_steps_dilute_the_ordering_gain():
    one = tictac_links.tictac_vs_bandwidth("mlp", "infer", bandwidths_gbps=(30.0,), iterations=3).tac_speedup[0]
    five = tictac_links.tictac_vs_bandwidth("mlp", "infer", bandwidths_gbps=(30.0,), iterations=3,
                                            local_steps=5).tac_speedup[0]
    assert 1.0 < five < one
    with pytest.raises(ValueError, match="local_steps"):
        tictac_links.tictac_vs_bandwidth(local_steps=0)


def test_tictac_speedup_over_seeds_is_one_column_per_seed():
    s = tictac_links.tictac_speedup_over_seeds((30.0, 0.01), seeds=(0, 2), model="mlp", mode="infer", iterations=3)
    assert s.shape == (2, 2)
    one = tictac_links.tictac_vs_bandwidth("mlp", "infer", (30.0, 0.01), workers=1, iterations=3, seed=2)
    np.testing.assert_allclose(s[:, 1], one.tac_speedup)


@pytest.mark.parametrize("claim", synergy_claims.CLAIMS, ids=lambda c: c.id)
def test_every_synergy_claim_can_fail(claim):
    """A rule that no plausible measurement can fail is a label, not a check."""
    assert isinstance(claim.rule, rules.Bands)
    assert rules.NOT_REPRODUCED in claim.rule.verdicts and rules.PARTLY in claim.rule.verdicts


def test_each_nvm_layout_is_held_against_its_own_step():
    from mlsys_core.sharding import cost_model

    r = nvm.nvm_optimizer_state(chips=1024)
    for layout in ("replicated", "wus"):
        own = cost_model.step_time(cost_model.BERT_LARGE, cost_model.TPU_V3, 1024, layout).total_s
        assert getattr(r, layout).step_s == pytest.approx(own)
    assert r.replicated.step_s > r.wus.step_s  # the replicated update is N times the WUS one
    sparse = nvm.nvm_optimizer_state(chips=1024, useful_fraction=0.04)
    assert sparse.wus.nvm_stream_s == pytest.approx(r.wus.nvm_stream_s / 0.04)
    with pytest.raises(ValueError, match="useful_fraction"):
        nvm.nvm_optimizer_state(useful_fraction=0.0)


def test_bandanas_measured_effective_bandwidth_is_a_share_of_each_block():
    eb = nvm.bandana_effective_bandwidth()
    assert 0 < eb < 1
    assert eb > nvm.bandana_effective_bandwidth(placement="sequential")  # SHP packs co-read vectors


def test_slower_phone_links_make_bf16_matter_more_for_fl():
    gap = np.array([bf16.bf16_gap_points(phone_link_factor=f, devices=2000, seeds=(0, 1)) for f in (0.25, 1.0, 4.0)])
    assert gap.shape == (3, 2) and np.all(np.diff(gap, axis=0) < 0)
    np.testing.assert_allclose(gap[1], bf16.bf16_pod_vs_phone((330.0,), (0.4,), devices=2000,
                                                              seeds=(0, 1)).gap_points[0, 0])


def test_phone_downlink_percentiles_follow_the_population():
    mbit = tictac_links.phone_downlink_mbit((10, 50, 90), devices=20_000)
    assert np.all(np.diff(mbit) > 0) and mbit[1] == pytest.approx(16.0, rel=0.05)  # 2 MB/s median


def test_the_pod_cluster_carries_the_pods_transfer_to_compute_balance():
    from mlsys_core.sharding import cost_model
    from mlsys_core.tictac import compare as tictac_compare

    graph = tictac_compare.model_graph("mlp", "train")
    for bw in (70.0, 330.0):
        cluster = tictac_links.pod_cluster(graph, bw)
        chip = dataclasses.replace(cost_model.TPU_V3, link_bytes_per_s=bw * 1e9)
        step = cost_model.step_time(cost_model.BERT_LARGE, chip, 4096, "wus")
        comm = 2 * cluster.recv_seconds(graph).sum()
        comp = np.sum(cluster.oracle().compute_seconds(graph))
        assert comm / comp == pytest.approx(step.allreduce_s / (step.compute_s + step.update_s), rel=1e-6)
    r = tictac_links.tictac_pod((70.0, 330.0), seeds=(0,), model="mlp", iterations=3)
    assert r.comm_share[1] < r.comm_share[0]  # faster links: less to overlap
    assert np.all(r.tac_speedup >= 1.0 - 1e-9)
