"""Any trace through the whole pipeline: Experiment.from_trace on CSV, NPZ and oracleGeneral files."""

import numpy as np
import pytest

from mlsys_core.bandana import experiments as E
from mlsys_core.bandana import trace as T
from mlsys_core.bandana import workload as W

CONFIG = W.WorkloadConfig(tables=W.default_tables(0.05), num_requests=2000, seed=3)


@pytest.fixture(scope="module")
def synthetic():
    return E.Experiment.from_config(CONFIG)


def _same(a, b):
    return (np.array_equal(a.past.keys, b.past.keys) and np.array_equal(a.future.keys, b.future.keys)
            and np.array_equal(a.future.request_ptr, b.future.request_ptr)
            and np.array_equal(a.past_counts, b.past_counts))


def test_a_csv_trace_runs_through_placement_cache_minicaches_and_the_queue(synthetic, tmp_path):
    path = tmp_path / "user_trace.csv"
    T.save_trace(W.generate_trace(CONFIG), path)
    assert path.read_text().startswith("request_id,table,vector_id\n")
    exp = E.Experiment.from_trace(path, CONFIG.tables, past_fraction=0.5)
    assert exp.config is None and exp.tables == CONFIG.tables and _same(exp, synthetic)
    placements = {m: E.learn_placements(exp.past, m, 0) for m in ("sequential", "shp")}
    rows = E.compare_placements(exp, placements, 0.1, seed=0)
    ref = E.compare_placements(synthetic, {m: E.learn_placements(synthetic.past, m, 0) for m in placements}, 0.1)
    for m in placements:
        assert rows[m]["t"] == ref[m]["t"] and rows[m]["blocks_read"] == ref[m]["blocks_read"]
    assert rows["shp"]["blocks_read"] < rows["sequential"]["blocks_read"]
    q = E.queue_profile(exp.simulate(exp.blocks(placements["shp"]), 0.1, rows["shp"]["t"]), (0.3, 0.8))
    assert q.shape == (2, 3) and np.all(q[1] > q[0])


def test_npz_and_oracle_general_files_give_the_same_experiment(synthetic, tmp_path):
    trace = W.generate_trace(CONFIG)
    T.save_trace(trace, tmp_path / "t.npz")
    assert _same(E.Experiment.from_trace(tmp_path / "t.npz", CONFIG.tables), synthetic)
    rec = np.zeros(trace.num_lookups, dtype=T.ORACLE_GENERAL)  # a request per clock_time
    rec["clock_time"] = trace.request_ids() * 10
    rec["obj_id"] = trace.keys
    rec["obj_size"] = 1
    rec["next_access_vtime"] = T.next_access(trace.keys)
    rec.tofile(tmp_path / "t.oracleGeneral.bin")
    exp = E.Experiment.from_trace(str(tmp_path / "t.oracleGeneral.bin"), CONFIG.tables)
    assert _same(exp, synthetic)
    assert E.Experiment.from_trace(trace).tables == CONFIG.tables  # a Trace brings its tables


def test_from_trace_rejects_what_it_cannot_run(tmp_path):
    trace = W.generate_trace(CONFIG)
    with pytest.raises(ValueError, match="tables must be given"):
        E.Experiment.from_trace(tmp_path / "x.csv")
    with pytest.raises(TypeError, match="trace must be a Trace or the path"):
        E.Experiment.from_trace(42, CONFIG.tables)
    with pytest.raises(ValueError, match="past_fraction must be in"):
        E.Experiment.from_trace(trace, past_fraction=1.0)
    T.write_oracle_general(tmp_path / "big.bin", np.array([0, 1, 10**9]))
    with pytest.raises(ValueError, match="key 1000000000 at record 2 is outside"):
        E.Experiment.from_trace(tmp_path / "big.bin", CONFIG.tables)
