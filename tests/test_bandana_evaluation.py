"""The placement methods as objects in a registry, the small workload the explorer and synergy share,
and the typed O_DIRECT measurement."""

import dataclasses
from typing import ClassVar

import numpy as np
import pytest

from mlsys_core.bandana import evaluation as EV
from mlsys_core.bandana import experiments as E
from mlsys_core.bandana import placement as P
from mlsys_core.bandana import shp as S
from mlsys_core.bandana import store as ST
from mlsys_core.bandana import tables
from mlsys_core.bandana import workload as W

SMALL = W.WorkloadConfig(tables=tables.default_tables(0.05), num_requests=600, seed=3)


@pytest.fixture(scope="module")
def past():
    return EV.Experiment.from_config(SMALL).past


def test_every_registered_method_sits_under_its_own_name():
    assert list(EV.PLACEMENTS) == ["sequential", "random", "kmeans", "shp"]
    assert all(method.name == name for name, method in EV.PLACEMENTS.items())


def test_learn_placements_calls_the_named_object_per_table(past):
    for name, build in (("sequential", lambda t, s: P.sequential_placement(t)), ("random", P.random_placement)):
        for t, learned in zip(past.tables, EV.learn_placements(past, name, 5)):
            np.testing.assert_array_equal(learned.block_of, build(t, 5).block_of)


def test_adding_a_method_is_adding_an_object(past, monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class Reversed:
        name: ClassVar[str] = "reversed"

        def learn(self, past, table, seed):
            return P.Placement(np.arange(table.num_vectors)[::-1] // table.block_capacity, table.block_capacity)

    monkeypatch.setitem(EV.PLACEMENTS, "reversed", Reversed())
    first = EV.learn_placements(past, "reversed")[0]
    assert first.block_of[0] == first.num_blocks - 1 and first.block_of[-1] == 0
    with pytest.raises(ValueError, match="placement must be one of"):
        EV.learn_placements(past, "hilbert")


def test_shp_learns_with_its_config_and_keeps_id_order_for_an_unread_table(past):
    post = past.tables[0]
    # direct k-way moves need a partner move with every block full; zero rounds leave the id-order start
    still = EV.SHP(S.SHPConfig(mode="kway", iterations=0)).learn(past, post, 0)
    np.testing.assert_array_equal(still.block_of, P.sequential_placement(post).block_of)
    moved = EV.PLACEMENTS["shp"].learn(past, post, 0)
    assert not np.array_equal(moved.block_of, still.block_of)
    unread = past.select(past.table == 0)  # keeps both tables, reads only the post table
    user = unread.tables[1]
    np.testing.assert_array_equal(EV.PLACEMENTS["shp"].learn(unread, user, 0).block_of,
                                  P.sequential_placement(user).block_of)


def test_the_explorer_and_the_synergy_read_one_effective_bandwidth():
    run = EV.small_workload(4.0, "shp", 0)
    assert EV.small_workload(np.float64(4.0), "shp", np.int64(0)) is run  # learned once, then kept
    point = E.explore_cache(0.1, 2, "shp", 0.5, 4.0, seed=0)
    assert EV.effective_bandwidth("shp", 0.1, 2, 4.0, 0) == point.effective_bandwidth
    assert point.effective_bandwidth == run.experiment.simulate(run.blocks, 0.1, 2).effective_bandwidth
    with pytest.raises(ValueError, match="post_lookups_per_request"):
        EV.small_workload(0.0)


def test_the_explorer_opens_where_its_defaults_say_and_refuses_a_bad_setting():
    point = E.explore_cache()
    assert (point.placement, point.threshold, point.rate) == ("sequential", 0, 0.05)
    with pytest.raises(ValueError, match="threshold must be >= 0"):
        E.explore_cache(threshold=-1)
    with pytest.raises(ValueError, match="placement must be one of"):
        E.explore_cache(placement="hilbert")


def test_a_measurement_saves_and_loads_back_whole(tmp_path):
    m = ST.Measurement({4: np.array([30.0, 50.5]), 1: np.array([10.0, 12.0, 90.0])}, {4: 8e4, 1: 2.5e4}, False,
                       "a machine", "2026-01-01T00:00:00+00:00", "open(O_DIRECT) failed: Invalid argument")
    assert m.queue_depths == [1, 4]
    ST.save_measurement(m, tmp_path / "m.npz")
    back = ST.load_measurement(tmp_path / "m.npz")
    assert (back.where, back.when, back.direct, back.refused) == (m.where, m.when, m.direct, m.refused)
    assert back.iops == m.iops and back.queue_depths == [1, 4]
    for qd in m.queue_depths:
        np.testing.assert_allclose(back.latency_us[qd], m.latency_us[qd], rtol=1e-6)


def test_the_stored_measurement_loads_as_a_typed_result():
    m = ST.load_measurement(E.MEASURED_READS)
    assert m.queue_depths == [1, 2, 4, 8, 16] and m.direct and m.refused == ""
    assert all(m.latency_us[qd].shape == (10_000,) for qd in m.queue_depths)
