"""Per-table admission thresholds: chosen by mini-caches on the past only, bounded by the oracle."""

import numpy as np
import pytest

from mlsys_core.bandana import cache as C
from mlsys_core.bandana import evaluation as EV
from mlsys_core.bandana import experiments as E
from mlsys_core.bandana import tables
from mlsys_core.bandana import thresholds as TH
from mlsys_core.bandana import workload as W

CONFIG = W.WorkloadConfig(tables=tables.default_tables(0.1), num_requests=10_000, seed=1)
INF = C.NO_PREFETCH


@pytest.fixture(scope="module")
def setup():
    exp = EV.Experiment.from_config(CONFIG)
    placements = {m: EV.learn_placements(exp.past, m, 1) for m in ("sequential", "shp")}
    return exp, placements


def test_per_table_threshold_is_applied_per_table(setup):
    exp, placements = setup
    bm = exp.blocks(placements["shp"])
    for t in (0, 4, INF):  # a tuple of equal t is the single t
        assert exp.simulate(bm, 0.1, (t, t)).hits == exp.simulate(bm, 0.1, t).hits
    mixed = exp.simulate(bm, 0.1, (0, INF))  # post prefetches whole blocks, user nothing
    assert mixed.prefetch_admitted not in (exp.simulate(bm, 0.1, 0).prefetch_admitted,
                                           exp.simulate(bm, 0.1, INF).prefetch_admitted)
    assert exp.simulate(bm, 0.1, (INF, 0)).prefetch_admitted < mixed.prefetch_admitted  # post holds most lookups
    with pytest.raises(ValueError, match="admission_threshold has 3 entries, but the trace has 2 tables"):
        exp.simulate(bm, 0.1, (0, 1, 2))


def test_minicache_t_never_reads_the_future(setup):
    exp, placements = setup
    other = W.generate_trace(W.WorkloadConfig(tables=CONFIG.tables, num_requests=10_000, seed=7)).split(0.5)[1]
    swapped = EV.Experiment(CONFIG, exp.past, other, exp.past_counts)  # same past, another future
    a = E.compare_placements(exp, placements, 0.1, seed=1)
    b = E.compare_placements(swapped, placements, 0.1, seed=1)
    for m in placements:
        assert a[m].t == b[m].t  # chosen from the past alone
        assert a[m].hit_rate != b[m].hit_rate  # ... but scored on each future
        assert a[m].hit_rate == exp.simulate(exp.blocks(placements[m]), 0.1, a[m].t).hit_rate


def test_minicache_t_differs_between_tables_and_oracle_bounds_it(setup):
    exp, placements = setup
    rows = E.compare_placements(exp, placements, 0.1, seed=1, oracle=True)
    post_t, user_t = rows["shp"].t
    assert post_t < user_t  # SHP packs the post table's communities: prefetch pays there, far less for users
    for m, r in rows.items():
        assert len(r.t) == len(r.oracle_t) == 2
        assert r.oracle_hit_rate >= r.hit_rate  # the oracle searched the mini-caches' choice too
        every = [exp.simulate(exp.blocks(placements[m]), 0.1, (p, u)).hit_rate
                 for p in TH.THRESHOLDS for u in TH.THRESHOLDS]
        assert r.oracle_hit_rate == max(every)


def test_minicache_choice_scores_every_combination_on_the_sample(setup):
    exp, placements = setup
    bm = exp.blocks(placements["shp"])
    choice = TH.minicache_thresholds(exp.past, bm, 0.1, thresholds=(0, 8, INF), seed=1)
    assert choice.combinations.shape == (9, 2) and choice.hit_rates.shape == (9,)
    assert choice.hit_rate == choice.hit_rates.max()
    assert choice.thresholds == tuple(choice.combinations[np.argmax(choice.hit_rates)])
    # another hash seed samples other blocks: the estimates move
    assert not np.array_equal(TH.minicache_thresholds(exp.past, bm, 0.1, (0, 8, INF), seed=2).hit_rates,
                              choice.hit_rates)


def test_threshold_choice_rejects_bad_arguments(setup):
    exp, placements = setup
    bm = exp.blocks(placements["shp"])
    with pytest.raises(ValueError, match="rate"):
        TH.minicache_thresholds(exp.past, bm, 0.1, rate=0.0)
    with pytest.raises(TypeError, match="rate"):
        TH.minicache_thresholds(exp.past, bm, 0.1, rate="high")
    with pytest.raises(ValueError, match="cache_fraction"):
        TH.minicache_thresholds(exp.past, bm, 0.0)
    with pytest.raises(ValueError, match="warmup_fraction"):
        TH.minicache_thresholds(exp.past, bm, 0.1, warmup_fraction=1.0)
    with pytest.raises(TypeError, match="past must be Trace"):
        TH.minicache_thresholds(exp, bm, 0.1)
    with pytest.raises(ValueError, match="non-empty"):
        TH.minicache_thresholds(exp.past, bm, 0.1, thresholds=[])
    with pytest.raises(ValueError, match=r"thresholds\[1\]"):
        TH.minicache_thresholds(exp.past, bm, 0.1, thresholds=[0, -1])
    with pytest.raises(ValueError, match="combinations"):
        TH.oracle_thresholds(exp, bm, 0.1, thresholds=list(range(65)))
    with pytest.raises(TypeError, match="oracle"):
        E.compare_placements(exp, placements, 0.1, oracle="yes")
    with pytest.raises(ValueError, match="placements must be a non-empty dict"):
        E.compare_placements(exp, {}, 0.1)
    with pytest.raises(ValueError, match=r"admission_threshold\[1\] must be >= 0"):
        C.CacheConfig(1024, (1, -2))
    with pytest.raises(ValueError, match="admission_threshold"):
        C.CacheConfig(1024, ())


def test_placement_bars_draw_the_scores_and_the_oracle_only_when_scored(setup):
    import matplotlib

    matplotlib.use("Agg")
    from mlsys_core.bandana import plots

    exp, placements = setup
    plain = E.compare_placements(exp, placements, 0.1, seed=1)
    assert all(r.oracle_t is None and r.oracle_eb_cache is None for r in plain.values())
    for rows, bars in ((plain, 2), (E.compare_placements(exp, placements, 0.1, seed=1, oracle=True), 3)):
        fanout_ax, bandwidth_ax = plots.placements(rows, 0.1).axes
        assert [p.get_height() for p in fanout_ax.patches] == [r.fanout for r in rows.values()]
        heights = [p.get_height() for p in bandwidth_ax.patches]
        with_cache = heights[len(rows):2 * len(rows)]  # the second group of bars
        assert len(heights) == bars * len(rows) and with_cache == [r.eb_cache for r in rows.values()]


def test_explore_point_and_its_panel():
    import matplotlib

    matplotlib.use("Agg")
    from mlsys_core.bandana import plots

    point = E.explore_cache(0.1, 2, "shp", 0.25, 4.0, seed=0)
    assert point.full.shape == point.mini.shape == point.fractions.shape and 0 < point.post_share < 1
    assert list(point.latency_us) == [50.0, 99.0, 99.9] and point.latency_us[50.0] <= point.latency_us[99.9]
    assert point.utilisation == E.TAIL_UTILISATION
    curves, latency = plots.explore_cache(point).axes
    np.testing.assert_allclose(curves.lines[0].get_ydata(), point.full)
    assert [p.get_height() for p in latency.patches] == list(point.latency_us.values())
    assert f"eff. bw {point.effective_bandwidth:.3f}" in latency.get_title()
