"""HLO collectives parser, the cost model and the plots (fast: no training)."""

import dataclasses

import matplotlib
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_core.sharding import cost_model, experiments, inspection, plots

matplotlib.use("Agg")

HLO = """
  %all-reduce = (f32[30]{0}, f32[64,30]{1,0}) all-reduce(%a, %b), channel_id=1, replica_groups={{0,1,2,3,4,5,6,7}}, to_apply=%add
  %reduce_scatter.1 = bf16[240]{0} reduce-scatter(%c), channel_id=2, replica_groups=[2,4]<=[8], dimensions={0}
  %ag-start = (f32[16]{0}, f32[128]{0}) all-gather-start(%d), channel_id=3, replica_groups={{0,1,2,3,4,5,6,7}}, dimensions={0}
  %ag-done = f32[128]{0} all-gather-done(%ag-start)
  %add.3 = f32[128]{0} add(%x, %y)
"""  # noqa: E501 - HLO lines as XLA prints them


def test_collectives_parses_tuples_async_and_iota_groups():
    rows = inspection.collectives(HLO)
    assert [(r.kind, r.dtype, r.shape, r.bytes, r.group_size) for r in rows] == [
        ("all-reduce", "f32", (30,), 120, 8),
        ("all-reduce", "f32", (64, 30), 7680, 8),
        ("reduce-scatter", "bf16", (240,), 480, 4),
        ("all-gather", "f32", (128,), 512, 8),
    ]
    assert inspection.bytes_by_kind(rows) == {"all-reduce": 7800, "reduce-scatter": 480, "all-gather": 512}


def test_collectives_reads_fp8_and_complex_dtypes_whole():
    rows = inspection.collectives(
        "  %ar = f8e4m3fn[64]{0} all-reduce(%a), replica_groups={{0,1}}, to_apply=%add\n"
        "  %ag = c64[8]{0} all-gather(%b), replica_groups={{0,1}}, dimensions={0}\n"
    )
    assert [(r.dtype, r.bytes) for r in rows] == [("f8e4m3fn", 64), ("c64", 64)]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 64), shard=st.integers(1, 10_000))
def test_reduce_scatter_plus_all_gather_move_what_an_all_reduce_moves(n, shard):
    full = 4 * n * shard
    ar = inspection.Collective("all-reduce", "f32", (n * shard,), full, n)
    rs = inspection.Collective("reduce-scatter", "f32", (shard,), 4 * shard, n)
    ag = inspection.Collective("all-gather", "f32", (n * shard,), full, n)
    assert rs.wire_bytes + ag.wire_bytes == pytest.approx(ar.wire_bytes)


def test_wus_removes_the_update_share_and_compute_shrinks_with_chips():
    w, chip = cost_model.BERT_LARGE, cost_model.TPU_V3
    rep = [cost_model.step_time(w, chip, n) for n in (64, 4096)]
    wus = cost_model.step_time(w, chip, 4096, "wus")
    assert rep[1].compute_s == pytest.approx(rep[0].compute_s / 64)
    assert rep[1].update_s == rep[0].update_s and wus.update_s == pytest.approx(rep[1].update_s / 4096)
    assert rep[1].update_s / rep[1].total_s > rep[0].update_s / rep[0].total_s  # the update's share grows


@settings(max_examples=20, deadline=None)
@given(chips=st.sampled_from([2, 4, 16, 64, 256, 1024, 4096]), nbytes=st.floats(1e3, 1e10))
def test_torus_allreduce_never_slower_than_ring(chips, nbytes):
    chip = cost_model.TPU_V3
    ring = cost_model.allreduce_s(nbytes, chips, chip, "ring")
    assert cost_model.allreduce_s(nbytes, chips, chip, "torus") <= ring * (1 + 1e-12)
    assert cost_model.allreduce_s(nbytes, 1, chip) == 0.0


def test_torus_of_any_chip_count_uses_every_chip():
    # 6 chips: a 3 x 2 torus - ring of 3 on all the data, then ring of 2 on a third of it.
    chip, nbytes = cost_model.TPU_V3, 1e8
    bw, alpha = chip.link_bytes_per_s, chip.link_latency_s
    expected = 2 * (2 / 3) * nbytes / bw + 4 * alpha + 2 * (1 / 2) * nbytes / 3 / bw + 2 * alpha
    assert cost_model.allreduce_s(nbytes, 6, chip) == pytest.approx(expected)
    # a prime count has no 2-D factorisation: the torus is a ring
    assert cost_model.allreduce_s(nbytes, 7, chip) == pytest.approx(cost_model.allreduce_s(nbytes, 7, chip, "ring"))


def test_cost_model_rejects_bad_inputs():
    with pytest.raises(ValueError, match="utilisation"):
        dataclasses.replace(cost_model.TPU_V3, utilisation=1.5)
    with pytest.raises(ValueError, match="params"):
        dataclasses.replace(cost_model.RESNET50, params=0)
    with pytest.raises(ValueError, match="strategy"):
        cost_model.step_time(cost_model.RESNET50, cost_model.TPU_V3, 8, "fsdp")
    with pytest.raises(ValueError, match="topology"):
        cost_model.allreduce_s(1.0, 8, cost_model.TPU_V3, "mesh")
    with pytest.raises(ValueError, match=r"chips must be in \[1, 1048576\], got 0"):
        cost_model.allreduce_s(1.0, 0, cost_model.TPU_V3)
    with pytest.raises(ValueError, match=r"max_chips must be in \[16, 1048576\], got 8"):
        experiments.explore_scaling(max_chips=8)
    with pytest.raises(ValueError, match="workload"):
        experiments.explore_scaling("GPT")


def test_explore_scaling_and_plots_render():
    curve = experiments.explore_scaling("ResNet-50", utilisation=0.5, link_gb_per_s=100.0, grad_bits=32)
    assert curve.chips[0] == 16 and curve.chips[-1] == 4096
    assert all(w <= r for w, r in zip(curve.wus_train_s, curve.replicated_train_s))
    assert np.all(np.diff(curve.replicated_shares["weight update"]) > 0)  # the update's share grows with chips
    mem = inspection.MemoryPerDevice(100, 200, 50)
    figs = [
        plots.scaling(curve, "ResNet-50", (4096, 28.3)),
        plots.memory_per_device({"replicated": mem, "wus": mem}),
        plots.collective_bytes({"replicated": {"all-reduce": 10}, "wus": {"reduce-scatter": 1, "all-gather": 9}}),
        plots.step_times({"a": 1.0, "b": 2.0}),
        plots.accuracy_bars({1: 0.9, 8: 0.95}, "g", "t"),
    ]
    assert all(isinstance(f, matplotlib.figure.Figure) for f in figs)


def test_the_explorers_draw_their_result():
    curve = experiments.explore_scaling("ResNet-50", max_chips=64)
    left, right = plots.explore_scaling(curve).axes[:2]
    assert left.get_title() == "ResNet-50" and list(left.get_lines()[0].get_xdata()) == [16, 32, 64]
    np.testing.assert_allclose(left.get_lines()[1].get_ydata(), curve.wus_train_s)
    mib = 2**20
    point = experiments.ConfigResult(inspection.MemoryPerDevice(2 * mib, 4 * mib, mib),
                                     {"reduce-scatter": mib // 2, "all-gather": mib}, 12.3, 1_500_000)
    memory, comm = plots.explore_config(point).axes[:2]
    assert [p.get_height() for p in memory.patches] == [2.0, 4.0, 1.0]
    assert memory.get_title() == "1.5 M params, step 12 ms"
    assert [t.get_text() for t in comm.get_xticklabels()] == ["reduce-scatter", "all-gather"]
    assert [p.get_height() for p in comm.patches] == [0.5, 1.0]


def test_time_vs_link_draws_each_model_line_beside_its_record():
    fig = plots.time_vs_link([70, 330], {"ResNet-50": [16.7, 14.7], "BERT": [36.6, 27.6]},
                             {"ResNet-50": 28.3, "BERT": 23.6})
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["BERT: cost model"].get_ydata()) == [36.6, 27.6]
    assert list(lines["ResNet-50: MLPerf v0.7"].get_ydata()) == [28.3, 28.3]
    band = ax.patches[0].get_bbox()  # the +-25 % band around the first record
    assert (band.y0, band.y1) == pytest.approx((0.75 * 28.3, 1.25 * 28.3))
    assert "link bandwidth" in ax.get_xlabel()


def test_shared_host_model_repeats_only_the_replicated_update():
    assert cost_model.shared_host_step_s(0.1, 0.05, 8) == pytest.approx(0.5)
    assert cost_model.shared_host_step_s(0.1, 0.05, 8, "wus", comm_s=0.02) == pytest.approx(0.17)
    with pytest.raises(ValueError, match="devices"):
        cost_model.shared_host_step_s(0.1, 0.05, 0)


def test_side_by_side_model_splits_compute_and_only_the_wus_update():
    # 8 chips in parallel: replicated 0.1/8 + 0.05 = 0.0625 s; WUS 0.1/8 + 0.05/8 + 0.02 = 0.03875 s
    assert cost_model.side_by_side_step_s(0.1, 0.05, 8) == pytest.approx(0.0625)
    assert cost_model.side_by_side_step_s(0.1, 0.05, 8, "wus", comm_s=0.02) == pytest.approx(0.03875)
    assert cost_model.side_by_side_step_s(0.1, 0.05, 1) == cost_model.shared_host_step_s(0.1, 0.05, 1)
    with pytest.raises(ValueError, match="strategy"):
        cost_model.side_by_side_step_s(0.1, 0.05, 8, "zero3")


@pytest.mark.parametrize("nbytes", [-5, -1e6, float("nan"), float("inf")])
def test_allreduce_refuses_negative_or_non_finite_bytes(nbytes):
    """A negative or non-finite byte count is refused, not turned into a time."""
    with pytest.raises(ValueError, match="nbytes must"):
        cost_model.allreduce_s(nbytes, 64, cost_model.TPU_V3)


@pytest.mark.parametrize("chips", [1_000_000_007, 2**62])
def test_chip_counts_beyond_the_model_are_refused_at_once(chips):
    """2^20 chips is the model's ceiling: a prime count of 10^9 is refused at once, not searched for divisors."""
    with pytest.raises(ValueError, match=rf"chips must be in \[1, 1048576\], got {chips}"):
        cost_model.allreduce_s(1e6, chips, cost_model.TPU_V3)
    with pytest.raises(ValueError, match=rf"max_chips must be in \[16, 1048576\], got {chips}"):
        experiments.explore_scaling(max_chips=chips)


def test_torus_shape_is_the_divisor_nearest_the_square_root_found_from_below():
    assert cost_model.torus_shape(4096) == (64, 64)
    assert cost_model.torus_shape(6) == (3, 2)
    assert cost_model.torus_shape(cost_model.MAX_CHIPS) == (1024, 1024)
    assert cost_model.torus_shape(1_048_573) == (1_048_573, 1)  # a prime below 2^20: one ring, sqrt(n) steps


def test_a_string_where_a_workload_or_chip_belongs_is_a_type_error():
    with pytest.raises(TypeError, match="workload must be a cost_model.Workload, got 'ResNet-50'"):
        cost_model.step_time("ResNet-50", cost_model.TPU_V3, 64)
    with pytest.raises(TypeError, match="chip must be a cost_model.Chip, got 'TPU-v3'"):
        cost_model.allreduce_s(1e6, 64, "TPU-v3")
    with pytest.raises(TypeError, match="overlap must be True or False"):
        cost_model.model_step_s(cost_model.RESNET50, cost_model.TPU_V3, 64, overlap="yes")
    with pytest.raises(ValueError, match="link_gb_per_s must be > 0, got -70.0"):
        experiments.explore_scaling(link_gb_per_s=-70.0)


def test_configs_check_their_names_and_store_python_numbers():
    with pytest.raises(TypeError, match="name must be a string, got None"):
        dataclasses.replace(cost_model.TPU_V3, name=None)
    with pytest.raises(TypeError, match="global_batch must be an int, got 1.5"):
        dataclasses.replace(cost_model.RESNET50, global_batch=1.5)
    chip = dataclasses.replace(cost_model.TPU_V3, utilisation=np.float32(0.5), peak_flops=np.float64(1e14))
    assert type(chip.utilisation) is float and type(chip.peak_flops) is float


def test_numpy_scalars_and_whole_floats_give_the_same_curves():
    """A float32 link bandwidth runs the model in Python floats, and whole-float chip counts are taken."""
    want = experiments.explore_scaling("ResNet-50", 0.5, 100.0)
    assert experiments.explore_scaling("ResNet-50", np.float32(0.5), np.float32(100.0)) == want
    chips = [16, 256]
    assert (cost_model.scaling_curve(cost_model.RESNET50, cost_model.TPU_V3, np.array(chips, float))
            == cost_model.scaling_curve(cost_model.RESNET50, cost_model.TPU_V3, chips))
    with pytest.raises(TypeError, match="workload must be a cost_model.Workload, got None"):
        cost_model.scaling_curve(None, cost_model.TPU_V3, chips)
    with pytest.raises(ValueError, match=r"chips must hold whole numbers; chips\[0\] is 16.5"):
        cost_model.scaling_curve(cost_model.RESNET50, cost_model.TPU_V3, [16.5])


@pytest.mark.parametrize("kwargs, error, said", [
    ({"link_gb_per_s": 70.0}, TypeError, "link_gb_per_s must be a sequence of values, got 70.0"),
    ({"utilisation": ()}, ValueError, r"utilisation must hold at least one value, got \(\)"),
    ({"utilisation": (0.5, 1.5)}, ValueError, r"utilisation must be in \(0, 1\], got 1.5"),
    ({"overlap": ("yes",)}, TypeError, "overlap must be True or False, got 'yes'"),
])
def test_sensitivity_checks_each_assumption_it_sweeps(kwargs, error, said):
    """A bare number, an empty sweep and a non-bool overlap are each refused, naming the assumption."""
    with pytest.raises(error, match=said):
        cost_model.sensitivity("BERT", **kwargs)
