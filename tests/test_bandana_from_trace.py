"""Any trace through the whole pipeline: Experiment.from_trace on CSV, NPZ and oracleGeneral files."""

import numpy as np
import pytest

from mlsys_core.bandana import evaluation as EV
from mlsys_core.bandana import experiments as E
from mlsys_core.bandana import queueing as Q
from mlsys_core.bandana import tables
from mlsys_core.bandana import thresholds as TH
from mlsys_core.bandana import trace as T
from mlsys_core.bandana import workload as W

CONFIG = W.WorkloadConfig(tables=tables.default_tables(0.05), num_requests=2000, seed=3)


@pytest.fixture(scope="module")
def synthetic():
    return EV.Experiment.from_config(CONFIG)


def _same(a, b):
    return (np.array_equal(a.past.keys, b.past.keys) and np.array_equal(a.future.keys, b.future.keys)
            and np.array_equal(a.future.request_ptr, b.future.request_ptr)
            and np.array_equal(a.past_counts, b.past_counts))


def test_a_csv_trace_runs_through_placement_cache_minicaches_and_the_queue(synthetic, tmp_path):
    path = tmp_path / "user_trace.csv"
    T.save_trace(W.generate_trace(CONFIG), path)
    assert path.read_text().startswith("request_id,table,vector_id\n")
    exp = EV.Experiment.from_trace(path, CONFIG.tables, past_fraction=0.5)
    assert exp.config is None and exp.tables == CONFIG.tables and _same(exp, synthetic)
    placements = {m: EV.learn_placements(exp.past, m, 0) for m in ("sequential", "shp")}
    rows = E.compare_placements(exp, placements, 0.1, seed=0)
    ref = E.compare_placements(synthetic, {m: EV.learn_placements(synthetic.past, m, 0) for m in placements}, 0.1)
    for m in placements:
        assert rows[m].t == ref[m].t and rows[m].blocks_read == ref[m].blocks_read
    assert rows["shp"].blocks_read < rows["sequential"].blocks_read
    q = E.queue_profile(exp.simulate(exp.blocks(placements["shp"]), 0.1, rows["shp"].t), (0.3, 0.8))
    assert q.shape == (2, 3) and np.all(q[1] > q[0])


def test_npz_and_oracle_general_files_give_the_same_experiment(synthetic, tmp_path):
    trace = W.generate_trace(CONFIG)
    T.save_trace(trace, tmp_path / "t.npz")
    assert _same(EV.Experiment.from_trace(tmp_path / "t.npz", CONFIG.tables), synthetic)
    rec = np.zeros(trace.num_lookups, dtype=T.ORACLE_GENERAL)  # a request per clock_time
    rec["clock_time"] = trace.request_ids() * 10
    rec["obj_id"] = trace.keys
    rec["obj_size"] = 1
    rec["next_access_vtime"] = T.next_access(trace.keys)
    rec.tofile(tmp_path / "t.oracleGeneral.bin")
    exp = EV.Experiment.from_trace(str(tmp_path / "t.oracleGeneral.bin"), CONFIG.tables)
    assert _same(exp, synthetic)
    assert EV.Experiment.from_trace(trace).tables == CONFIG.tables  # a Trace brings its tables


def test_from_trace_rejects_what_it_cannot_run(tmp_path):
    trace = W.generate_trace(CONFIG)
    with pytest.raises(ValueError, match="tables must be given"):
        EV.Experiment.from_trace(tmp_path / "x.csv")
    with pytest.raises(TypeError, match="trace must be a Trace or the path"):
        EV.Experiment.from_trace(42, CONFIG.tables)
    with pytest.raises(ValueError, match="past_fraction must be in"):
        EV.Experiment.from_trace(trace, past_fraction=1.0)
    T.write_oracle_general(tmp_path / "big.bin", np.array([0, 1, 10**9]))
    with pytest.raises(ValueError, match="key 1000000000 at record 2 is outside"):
        EV.Experiment.from_trace(tmp_path / "big.bin", CONFIG.tables)


# --- arrival times ----------------------------------------------------------------------------------


def _bursty_times(n: int, seed: int = 1) -> np.ndarray:
    """Lognormal gaps of sigma 2 (us): bursts of near-simultaneous requests between long lulls."""
    return np.cumsum(np.random.default_rng(seed).lognormal(0.0, 2.0, n))


@pytest.fixture(scope="module")
def timed():
    trace = W.generate_trace(CONFIG)
    return trace.with_times(_bursty_times(trace.num_requests))


@pytest.mark.parametrize("suffix", [".csv", ".npz"])
def test_times_survive_a_file_round_trip(timed, tmp_path, suffix):
    path = tmp_path / f"t{suffix}"
    T.save_trace(timed, path)
    if suffix == ".csv":
        assert path.read_text().startswith("request_id,table,vector_id,time_us\n")
    back = T.load_trace(path, CONFIG.tables)
    assert np.array_equal(back.time_us, timed.time_us) and np.array_equal(back.keys, timed.keys)
    T.save_trace(back.with_times(None), path)  # without times: the 3-column file, and None back
    assert T.load_trace(path, CONFIG.tables).time_us is None


def test_oracle_general_clock_time_is_the_request_time_in_seconds(tmp_path):
    rec = np.zeros(5, dtype=T.ORACLE_GENERAL)
    rec["clock_time"] = [3, 3, 4, 9, 9]
    rec["obj_id"] = [0, 1, 2, 0, 3]
    rec["obj_size"] = 1
    rec.tofile(tmp_path / "t.bin")
    trace = T.load_oracle_general(tmp_path / "t.bin", CONFIG.tables)
    assert trace.num_requests == 3 and trace.time_us.tolist() == [3e6, 4e6, 9e6]
    rec["clock_time"] = [3, 3, 4, 2, 9]
    rec.tofile(tmp_path / "t.bin")
    with pytest.raises(ValueError, match="goes back in time at request 2"):
        T.load_oracle_general(tmp_path / "t.bin", CONFIG.tables)


def test_select_only_table_and_split_keep_each_requests_time(timed):
    past, future = timed.split(0.5)
    assert np.array_equal(np.concatenate([past.time_us, future.time_us]), timed.time_us)
    user = timed.only_table("user")
    kept = np.unique(timed.request_ids()[timed.table == timed.table_index("user")])
    assert user.num_requests < timed.num_requests and np.array_equal(user.time_us, timed.time_us[kept])
    odd = timed.select(timed.request_ids() % 2 == 1)
    assert np.array_equal(odd.time_us, timed.time_us[1::2])
    assert W.generate_trace(CONFIG).time_us is None  # the synthetic workload has no timestamps


def test_a_timed_csv_runs_through_the_pipeline_and_the_queue_replays_its_times(timed, tmp_path):
    path = tmp_path / "timed.csv"
    T.save_trace(timed, path)
    exp = EV.Experiment.from_trace(path, CONFIG.tables)
    assert np.array_equal(exp.future.time_us, timed.split(0.5)[1].time_us)
    arrivals = exp.arrivals()
    assert isinstance(arrivals, Q.TraceArrivals) and np.array_equal(arrivals.time_us, exp.future.time_us)
    blocks = exp.blocks(EV.learn_placements(exp.past, "shp", 0))
    choice = TH.minicache_thresholds(exp.past, blocks, 0.1, seed=0)
    run = exp.simulate(blocks, 0.1, choice.thresholds)
    replayed = E.queue_profile(run, (0.3, 0.8), arrivals=arrivals)
    poisson = E.queue_profile(run, (0.3, 0.8))
    assert np.all(replayed[1] > replayed[0])
    assert np.all(replayed[:, 1] > 1.2 * poisson[:, 1])  # the trace's bursts queue more than Poisson's gaps


def test_a_trace_without_times_gets_poisson_and_says_so(synthetic):
    arrivals = synthetic.arrivals()
    assert isinstance(arrivals, Q.PoissonArrivals) and "no timestamps" in arrivals.source
    with pytest.raises(ValueError, match="the trace has no arrival times"):
        Q.TraceArrivals.of(synthetic.future)


def test_bad_times_are_rejected(tmp_path):
    tables = CONFIG.tables
    with pytest.raises(ValueError, match=r"one arrival time per request \(2 requests\), got shape \(3,\)"):
        T.Trace.from_lookups(tables, [0, 0, 1], [0, 0, 0], [1, 2, 3], time_us=[0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"time_us of request 1 \(id 7\) is nan"):
        T.Trace.from_lookups(tables, [0, 7], [0, 0], [1, 2], time_us=[0.0, np.nan])
    with pytest.raises(ValueError, match=r"goes back in time at request 2 \(id 9\): 1 us after 5 us"):
        T.Trace.from_lookups(tables, [0, 4, 9], [0, 0, 0], [1, 2, 3], time_us=[0.0, 5.0, 1.0])
    path = tmp_path / "t.csv"
    path.write_text("request_id,table,vector_id,time_us\n0,post,1,0.5\n0,post,2,0.7\n")
    with pytest.raises(ValueError, match="request id 0 has lookups at different times"):
        T.load_trace(path, tables)
    path.write_text("request_id,table,vector_id,time_us\n0,post,1,soon\n")
    with pytest.raises(ValueError, match="time_us must hold numbers"):
        T.load_trace(path, tables)
    path.write_text("request_id,table,vector_id,when\n0,post,1,0.5\n")
    with pytest.raises(ValueError, match="optionally ,time_us"):
        T.load_trace(path, tables)
