"""Paper 3: population, round protocol, pace steering, plans and telemetry (NumPy only)."""

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_core.fl import plans as PL
from mlsys_core.fl import protocol as P
from mlsys_core.fl import telemetry as T
from mlsys_core.fl.population import (
    DAY_S,
    HOUR_S,
    PopulationConfig,
    eligible_by_hour,
    is_eligible,
    make_population,
    next_eligible_s,
    window_close_s,
)
from mlsys_core.fl.protocol import simulate
from mlsys_core.fl.rounds import (
    RecycleBuffer,
    RoundConfig,
    commit_share,
    reporting_outcome,
    reservoir_sample,
    sample_sessions,
    staleness_weight,
    take_recyclable,
)
from mlsys_core.fl.steering import STEERING_MODES, SteeringConfig, SteeringMode, SteerState, steer_mode

SMALL = make_population(PopulationConfig(num_devices=20_000), seed=3)


@pytest.mark.parametrize("field, value", [
    ("goal_count", 0), ("over_selection", 0.9), ("min_reports", 11), ("reporting_window_s", -1.0),
    ("selection_timeout_s", -5.0), ("min_goal_fraction", 0.0),
])
def test_bad_round_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        RoundConfig(**{"goal_count": 10, field: value})


def test_round_config_type_errors_and_defaults():
    with pytest.raises(TypeError, match="goal_count"):
        RoundConfig(goal_count=True)
    with pytest.raises(TypeError, match="pipelined"):
        RoundConfig(pipelined=1)
    with pytest.raises(ValueError, match=r"goal_count must be >= 1, got 0"):  # names field, value and range
        RoundConfig(goal_count=0)
    with pytest.raises(ValueError, match=r"over_selection must be in \[1, 100\], got 0.9"):
        RoundConfig(over_selection=0.9)
    cfg = RoundConfig(goal_count=np.int64(100))  # NumPy integers are integers
    assert cfg.min_reports == 100 and cfg.target == 130 and cfg.min_selected == 80


@pytest.mark.parametrize("kwargs, field", [({"mode": "fast"}, "mode"), ({"retry_s": 0.0}, "retry_s"),
                                           ({"max_delay_s": 1.0}, "max_delay_s")])
def test_bad_steering_config(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SteeringConfig(**kwargs)


@pytest.mark.parametrize("kwargs, field", [({"num_devices": 0}, "num_devices"),
                                           ({"drop_out_range": (0.2, 0.1)}, "drop_out_range"),
                                           ({"unmetered_fraction": 1.5}, "unmetered_fraction")])
def test_bad_population_config(kwargs, field):
    with pytest.raises(ValueError, match=field):
        PopulationConfig(**kwargs)


def test_window_close_switch_must_be_a_bool():
    with pytest.raises(TypeError, match="drop_at_window_close"):
        PopulationConfig(drop_at_window_close="yes")
    assert PopulationConfig(drop_at_window_close=np.False_).drop_at_window_close == np.False_  # NumPy bools too


def test_a_range_bound_by_another_field_names_both():
    with pytest.raises(ValueError, match=r"min_reports must be <= goal_count \(5\), got 8"):
        RoundConfig(goal_count=5, min_reports=8)
    with pytest.raises(ValueError, match=r"max_delay_s must be >= min_delay_s \(700\), got 600.0"):
        SteeringConfig(min_delay_s=700.0, max_delay_s=600.0)


def test_population_eligibility_is_consistent_and_swings_over_the_day():
    t = np.linspace(0, DAY_S, 7)
    for t0 in t:
        nxt = next_eligible_s(SMALL, t0)
        finite = np.isfinite(nxt)
        assert np.all(nxt[finite] >= t0)
        assert np.all(is_eligible(SMALL, nxt[finite], np.flatnonzero(finite)))
        assert not np.any(SMALL.unmetered[~finite])
    counts = eligible_by_hour(SMALL, np.arange(24))
    assert counts.max() / counts.min() > 2.0  # the diurnal swing
    assert np.all((SMALL.drop_out_p >= 0.06) & (SMALL.drop_out_p <= 0.10))


def test_window_close_s_is_where_eligibility_ends():
    t0 = 5 * HOUR_S
    ids = np.flatnonzero(is_eligible(SMALL, t0))
    close = window_close_s(SMALL, t0, ids)
    assert np.all(close > t0)
    assert np.all(is_eligible(SMALL, close - 1.0, ids)) and not np.any(is_eligible(SMALL, close + 1.0, ids))
    shut = np.flatnonzero(SMALL.unmetered & ~is_eligible(SMALL, t0))[:50]
    assert np.all(window_close_s(SMALL, t0, shut) == t0)


@pytest.mark.parametrize("at_close", [True, False])
def test_sessions_drop_out_when_the_window_closes(at_close):
    pop = make_population(PopulationConfig(num_devices=5000, drop_out_range=(0.0, 0.0),
                                           drop_at_window_close=at_close), seed=2)
    t0 = 4 * HOUR_S
    ids = np.flatnonzero(is_eligible(pop, t0))
    cfg = RoundConfig(goal_count=50, epochs=400)  # sessions of hours: many outlast their window
    sess = sample_sessions(np.random.default_rng(0), pop, ids, t0, cfg)
    end = t0 + sess.download_s + sess.compute_s + sess.upload_s
    outlast = window_close_s(dataclasses.replace(pop, drops_at_close=np.ones(pop.size, bool)), t0, ids) < end
    assert 0.05 < outlast.mean() < 0.95
    assert np.array_equal(sess.dropped, outlast & at_close)
    if at_close:
        assert np.array_equal(sess.drop_s[outlast], window_close_s(pop, t0, ids[outlast]))
    assert np.all(np.isfinite(sess.report_s) == ~sess.dropped)


def test_window_close_drops_show_in_a_day_of_rounds():
    base = PopulationConfig(num_devices=20_000, drop_out_range=(0.0, 0.0))
    on, off = (_run(RoundConfig(goal_count=100, epochs=30), hours=24.0,
                    pop=make_population(dataclasses.replace(base, drop_at_window_close=v), 3))
               for v in (True, False))
    assert off.counters.column("dropped").sum() == 0
    assert on.counters.column("dropped").sum() > 0


@given(n=st.integers(0, 300), data=st.data())
@settings(max_examples=60, deadline=None)
def test_reservoir_sample_picks_k_distinct_positions(n, data):
    k = data.draw(st.integers(0, n))
    got = reservoir_sample(np.random.default_rng(n), n, k)
    assert len(got) == k and len(np.unique(got)) == k and np.all((got >= 0) & (got < n))


def test_reservoir_sample_is_uniform():
    rng = np.random.default_rng(0)
    hits = np.zeros(20)
    for _ in range(4000):
        hits[reservoir_sample(rng, 20, 5)] += 1
    assert np.allclose(hits / 4000, 5 / 20, atol=0.03)  # every arrival kept with probability k/n


@given(times=st.lists(st.one_of(st.floats(0, 500), st.just(math.inf)), min_size=1, max_size=60),
       goal=st.integers(1, 40), frac=st.floats(0.05, 1.0), window=st.floats(1.0, 400.0))
@settings(max_examples=150, deadline=None)
def test_round_commits_iff_min_reports_arrive_in_window(times, goal, frac, window):
    cfg = RoundConfig(goal_count=goal, min_reports=max(1, int(goal * frac)), reporting_window_s=window)
    report = np.array(times)
    out = reporting_outcome(report, 0.0, cfg)
    in_window = np.count_nonzero(report <= window)
    assert out.committed == (in_window >= cfg.min_reports)
    assert out.accepted.sum() == min(goal, in_window)
    assert np.all(report[out.accepted] <= out.end_s) and out.end_s <= window
    late = np.isfinite(report) & ~out.accepted
    assert np.all(report[late] >= out.end_s)  # every non-accepted update came at or after the close


@given(arrivals=st.lists(st.floats(0, 1000), max_size=30), commits=st.lists(st.floats(0, 1200), max_size=10))
@settings(max_examples=100, deadline=None)
def test_recycled_updates_are_taken_exactly_once_and_weighted(arrivals, commits):
    n = len(arrivals)
    buf = RecycleBuffer.empty().add(np.arange(n), np.array(arrivals, float), 0, np.full(n, 10.0))
    seen = []
    for version, end in enumerate(sorted(commits), start=1):
        taken, buf = take_recyclable(buf, end, version)
        assert np.all(np.array(arrivals)[taken.ids] <= end)  # never before it arrived
        assert np.allclose(taken.weight, 10.0 / np.sqrt(1.0 + version))
        seen.extend(taken.ids.tolist())
    assert len(seen) == len(set(seen))  # at most once
    last = max(commits, default=-1.0)
    assert set(seen) == {i for i, a in enumerate(arrivals) if a <= last}  # and exactly once if a commit follows
    assert staleness_weight(3) == pytest.approx(0.5)


def _run(config, steering=SteeringConfig(), hours=3.0, pop=SMALL, seed=1, **kw):
    return simulate(pop, config, steering, hours * HOUR_S, seed, traced_devices=pop.size, **kw)


@given(goal=st.integers(5, 60), over=st.floats(1.0, 1.6), window=st.floats(20.0, 200.0),
       pipelined=st.booleans(), recycle=st.booleans(), mode=st.sampled_from(["none", "spread", "synchronise", "auto"]))
@settings(max_examples=12, deadline=None)
def test_simulation_loses_nothing_and_counts_nothing_twice(goal, over, window, pipelined, recycle, mode):
    cfg = RoundConfig(goal_count=goal, over_selection=over, reporting_window_s=window, pipelined=pipelined,
                      recycle_late=recycle, min_reports=max(1, goal // 2))
    pop = make_population(PopulationConfig(num_devices=3000), 5)
    res = _run(cfg, SteeringConfig(mode=mode, retry_s=120.0), hours=1.0, pop=pop)
    c = res.counters
    sel, acc, late, drop, lost = (c.column(k) for k in ("selected", "accepted", "late", "dropped", "lost"))
    assert np.all(sel == acc + late + drop + lost)
    assert np.all(c.column("checkins") == sel + c.column("rejected") + c.column("rejected_no_plan"))
    ids, _, codes = res.log.arrays()
    count = lambda ch: int(np.count_nonzero(codes == T.CODES.index(ch)))  # noqa: E731
    assert count("-") == c.column("checkins").sum()
    assert count("^") == acc.sum()
    assert count("R" if recycle else "L") == late.sum() and count("L" if recycle else "R") == 0
    assert count("!") == (drop + lost).sum()
    committed = c.column("committed")
    assert np.all(committed == (acc >= cfg.min_reports))
    if recycle:
        assert res.recycled + res.pending_recycle == late.sum()
        assert np.all(c.column("recycled")[~committed] == 0)
    else:
        assert res.recycled == 0 and c.column("recycled").sum() == 0


def test_simulation_is_deterministic():
    a = _run(RoundConfig(goal_count=50), hours=1.0)
    b = _run(RoundConfig(goal_count=50), hours=1.0)
    for name, _ in T.ROUND_COUNTERS:
        assert np.array_equal(a.counters.column(name), b.counters.column(name)), name
    assert np.array_equal(a.aggregated.values, b.aggregated.values)


def test_over_selection_raises_the_commit_share():
    share = commit_share(SMALL, RoundConfig(goal_count=50), np.array([1.0, 1.3]), rounds=100, seed=0)
    assert share[0] < 0.2 and share[1] > 0.9


def test_pace_steering_flattens_the_check_in_load():
    cfg = RoundConfig(goal_count=50)
    none = _run(cfg, SteeringConfig(mode="none"), hours=2.0)
    spread = _run(cfg, SteeringConfig(mode="spread"), hours=2.0)
    assert spread.checkins_per_bin[30:].mean() < 0.5 * none.checkins_per_bin[30:].mean()
    # ... while still finding devices for about as many committed rounds
    assert spread.counters.column("committed").sum() >= 0.8 * none.counters.column("committed").sum()


def _rejections_and_returns(res):
    """For every rejection ("x") in the log: its time, and the device's next check-in after it."""
    ids, t, codes = res.log.arrays()
    checkins, rejections = np.flatnonzero(codes == T.CODES.index("-")), np.flatnonzero(codes == T.CODES.index("x"))
    nxt = checkins[np.minimum(np.searchsorted(checkins, rejections, side="right"), len(checkins) - 1)]
    same = (nxt > rejections) & (ids[nxt] == ids[rejections])  # the log is sorted by device, then time
    return t[rejections[same]], t[nxt[same]]


@pytest.mark.parametrize("mode", ["synchronise", "none"])
def test_synchronised_steering_returns_rejected_devices_together(mode):
    jitter = 5.0
    res = _run(RoundConfig(goal_count=50, pipelined=False), SteeringConfig(mode=mode, sync_jitter_s=jitter), hours=1.0)
    assert res.counters.column("committed").mean() > 0.9
    rejected_s, back_s = _rejections_and_returns(res)
    soon = back_s - rejected_s < HOUR_S / 2  # the others fell asleep and call in on a later night
    c = res.counters
    close, resume = c.column("close_s"), c.column("resume_s")
    k = np.maximum(np.searchsorted(close, rejected_s, side="right") - 1, 0)
    during = soon & (rejected_s > close[k]) & (rejected_s < resume[k])  # rejected while round k reported
    assert during.sum() > 100
    late_by = back_s[during] - resume[k[during]]  # after the next selection opened
    if mode == "synchronise":  # back when the next selection opens, within the jitter: a gap's rejects return together
        assert late_by.min() >= 0.0 and late_by.max() <= jitter
    else:  # retry about a minute after their own rejection, whenever the next round opens
        assert late_by.min() < -10 * jitter and late_by.max() > 10 * jitter


def test_steering_modes_are_registry_objects_and_a_new_one_plugs_in(monkeypatch):
    """The mode in force comes from `STEERING_MODES`: "auto" synchronises a small active population and
    spreads a large one, and draws no delays itself; a mode added to the registry runs with nothing else
    changed, its delays the ones the devices keep."""
    cfg, steering = RoundConfig(goal_count=50), SteeringConfig()
    small = SteerState(600.0, 120.0, 2.0 * cfg.target)
    assert steer_mode(steering, cfg, small) == "synchronise"
    assert steer_mode(steering, cfg, dataclasses.replace(small, active=math.inf)) == "spread"
    assert steer_mode(SteeringConfig(mode="none"), cfg, small) == "none"
    with pytest.raises(ValueError, match="'auto' draws no delays"):
        STEERING_MODES["auto"].delays(np.random.default_rng(0), steering, small, 3, 0.0)

    class Fixed(SteeringMode):
        name = "fixed"

        def delays(self, rng, steering, st, n, sync_in_s):
            return np.full(n, 900.0)

    monkeypatch.setitem(STEERING_MODES, "fixed", Fixed())
    res = _run(RoundConfig(goal_count=50, pipelined=False), SteeringConfig(mode="fixed"), hours=1.0)
    assert set(res.counters.column("steering").tolist()) == {"fixed"}
    rejected_s, back_s = _rejections_and_returns(res)
    waited = back_s - rejected_s
    assert len(waited) > 100 and waited.min() >= 900.0 - 1e-6  # never sooner (asleep ones come back later)
    assert np.isclose(waited, 900.0).mean() > 0.9


def test_devices_without_a_plan_are_rejected_with_the_reason():
    plans = PL.generate_versioned_plans("t", 1, PL.DevicePlan(), PL.ServerPlan())
    assert 1 not in plans and set(plans) == {2, 3, 4, 5}  # runtime 1 has no tanh and no lowering for it
    res = _run(RoundConfig(goal_count=50), hours=1.0, plans=plans)
    ids, _, codes = res.log.arrays()
    no_plan = np.unique(ids[codes == T.CODES.index("P")])
    assert len(no_plan) > 0 and np.all(SMALL.runtime_version[no_plan] == 1)
    accepted = np.unique(ids[codes == T.CODES.index("^")])
    assert np.all(SMALL.runtime_version[accepted] != 1)
    assert res.counters.column("rejected_no_plan").sum() == len(ids[codes == T.CODES.index("P")])


def test_plan_lowering_and_validation():
    assert PL.lower(("softmax_xent",), PL.RUNTIME_OPS[2]) == ("softmax", "log", "mul", "sum")
    assert PL.lower(("softmax_xent",), PL.RUNTIME_OPS[1]) == ("max", "sub", "exp", "sum", "div", "log", "mul", "sum")
    assert PL.lower(("fused_sgd",), PL.RUNTIME_OPS[4]) is None
    plans = PL.generate_versioned_plans("t", 7, PL.DevicePlan(ops=("dense", "relu")), PL.ServerPlan())
    assert set(plans) == {1, 2, 3, 4, 5} and plans[1].device.ops == ("matmul", "add", "relu")
    assert plans[3].device.ops == ("dense", "relu") and plans[3].version == 7
    with pytest.raises(ValueError, match="batch_size"):
        PL.DevicePlan(batch_size=0)
    with pytest.raises(ValueError, match="aggregation"):
        PL.ServerPlan(aggregation="median")


def test_session_strings_and_schedule_inference():
    res = _run(RoundConfig(goal_count=100), SteeringConfig(mode="spread", cooldown_s=1800.0), hours=24.0,
               pop=make_population(PopulationConfig(num_devices=3000), 9))
    pop = make_population(PopulationConfig(num_devices=3000), 9)
    ids, _, codes = res.log.arrays()
    busy = np.bincount(ids[codes == T.CODES.index("-")], minlength=3000)
    device = int(np.argmax(busy))
    text = T.session_string(res.log, device)
    assert text.startswith("-") and all(s.startswith("-") for s in text.split(" "))
    assert "-v[]+^" in text.replace(" ", "") or "-v[]+L" in text.replace(" ", "")
    start_h, length_h = T.infer_window(T.device_checkin_times(res.log, device) / HOUR_S + pop.tz_offset_h[device])
    true_start = float(pop.window_start_h[device])
    assert abs((start_h - true_start + 12) % 24 - 12) < 1.0  # the dashboard reveals when this user sleeps
    assert length_h <= pop.window_length_h[device] + 0.1


def test_aggregate_only_telemetry_suppresses_small_bins():
    log = T.EventLog(100)
    log.add(np.array([1, 2, 3, 1]), np.array([10.0, 20.0, 30.0, 40.0]), "-")
    log.add(np.array([4]), np.array([4000.0]), "-")
    counts = T.aggregate_only(log, bin_s=3600.0, horizon_s=7200.0, k_min=2)
    assert counts.tolist() == [3, 0]  # three distinct devices; the lone device at hour 1 is suppressed


def test_an_abandoned_round_rejects_every_device_and_keeps_the_version():
    """The selection-timeout step on its own: too few check-ins in 120 s for a goal of 200."""
    pop = make_population(PopulationConfig(num_devices=2000), 2)
    cfg, steering = RoundConfig(goal_count=200), SteeringConfig(mode="synchronise", sync_jitter_s=10.0)
    run = P.start_run(pop, cfg, steering, HOUR_S, 0, plans=PL.generate_versioned_plans(
        "t", 1, PL.DevicePlan(), PL.ServerPlan()), traced_devices=pop.size)
    start = dataclasses.replace(P.sim_init(steering, cfg), version=3)
    s, out = P.round_step(run, start)
    c = out.counters
    assert c.reason == "selection timeout" and not c.committed and c.selected == c.accepted == 0
    assert c.rejected > 0 and c.rejected_no_plan > 0
    assert c.checkins == c.selected + c.rejected + c.rejected_no_plan
    assert s.version == 3 and s.buffer is start.buffer and s.round == 1
    assert s.open_s == s.prev_end_s == c.close_s == c.end_s == c.resume_s == cfg.selection_timeout_s
    assert all(len(getattr(out, f.name)) == 0 for f in dataclasses.fields(out)[1:])
    ids, t, codes = run.tel.log.arrays()
    rejected = ids[codes == T.CODES.index("x")]
    assert len(rejected) == c.rejected and np.all(t[codes == T.CODES.index("x")] == c.close_s)
    back = c.close_s + s.steer.round_s  # synchronised: back when the next selection would close
    assert not np.isin(rejected, run.queue.pop_due(back)[0]).any()
    assert np.isin(rejected, run.queue.pop_due(back + 10.0)[0]).all()


@pytest.mark.parametrize("args, error, said", [
    (("pop", RoundConfig(), SteeringConfig(), HOUR_S, 0), TypeError, "pop must be a population.Population, got 'pop'"),
    ((SMALL, "goal 100", SteeringConfig(), HOUR_S, 0), TypeError, "config must be a rounds.RoundConfig"),
    ((SMALL, RoundConfig(), "auto", HOUR_S, 0), TypeError, "steering must be a steering.SteeringConfig"),
    ((SMALL, RoundConfig(), SteeringConfig(), -1.0, 0), ValueError, "duration_s must be > 0, got -1.0"),
    ((SMALL, RoundConfig(), SteeringConfig(), HOUR_S, -1), ValueError, "seed must be >= 0, got -1"),
    ((SMALL, RoundConfig(), SteeringConfig(), HOUR_S, 1.5), TypeError, "seed must be an int, got 1.5"),
])
def test_simulate_names_a_bad_argument_before_it_runs(args, error, said):
    with pytest.raises(error, match=said):
        simulate(*args)


def test_simulate_checks_its_keyword_arguments():
    args = (SMALL, RoundConfig(), SteeringConfig(), HOUR_S, 0)
    with pytest.raises(ValueError, match="traced_devices must be >= 0, got -5"):
        simulate(*args, traced_devices=-5)
    with pytest.raises(ValueError, match="load_bin_s must be > 0, got 0.0"):
        simulate(*args, load_bin_s=0.0)
    with pytest.raises(TypeError, match="executor must be callable, got 'actors'"):
        simulate(*args, executor="actors")
    with pytest.raises(TypeError, match="plans must be a dict"):
        simulate(*args, plans=[1, 2])
    plan = PL.generate_versioned_plans("t", 1, PL.DevicePlan(), PL.ServerPlan())[2]
    with pytest.raises(TypeError, match=r"plans key \(a runtime version\) must be an int, got 2.5"):
        simulate(*args, plans={2.5: plan})  # not truncated to runtime 2
    with pytest.raises(TypeError, match=r"plans\[2\] must be a plans.FLPlan, got 'plan'"):
        simulate(*args, plans={2: "plan"})


def test_commit_share_checks_its_factors_rounds_and_seed():
    with pytest.raises(ValueError, match=r"over_selection must hold values in \[1, 100\]; over_selection\[1\] is 0.5"):
        commit_share(SMALL, RoundConfig(goal_count=50), np.array([1.0, 0.5]), rounds=10, seed=0)
    with pytest.raises(ValueError, match="seed must be >= 0, got -2"):
        commit_share(SMALL, RoundConfig(goal_count=50), np.array([1.3]), rounds=10, seed=-2)
    with pytest.raises(TypeError, match="config must be a rounds.RoundConfig"):
        commit_share(SMALL, None, np.array([1.3]), rounds=10, seed=0)


def test_make_population_checks_its_config_and_seed():
    with pytest.raises(TypeError, match="config must be a population.PopulationConfig, got 1000"):
        make_population(1000, 0)
    with pytest.raises(ValueError, match="seed must be >= 0, got -1"):
        make_population(PopulationConfig(num_devices=10), -1)
    with pytest.raises(TypeError, match="seed must be an int, got 0.5"):
        make_population(PopulationConfig(num_devices=10), 0.5)


@pytest.mark.parametrize("kwargs, error, said", [
    ({"time_zones": ((0.0, "half"),)}, TypeError, "time_zones must be an array of numbers"),
    ({"time_zones": ((0.0, 0.5, 1.0),)}, ValueError, "time_zones must be non-empty"),
    ({"time_zones": ((0.0, -1.0), (1.0, 2.0))}, ValueError, r"time_zones weights must hold values >= 0"),
    ({"drop_out_range": (0.1,)}, ValueError, "drop_out_range must satisfy"),
    ({"drop_out_range": ("a", "b")}, TypeError, "drop_out_range must be an array of numbers"),
    ({"runtime_versions": (1, 300), "runtime_weights": (0.5, 0.5)}, ValueError,
     r"runtime_versions must hold values in \[0, 127\]; runtime_versions\[1\] is 300"),
    ({"runtime_versions": (1, 2), "runtime_weights": (-0.5, 1.5)}, ValueError, "runtime_weights must hold values >= 0"),
])
def test_population_config_checks_its_tuples(kwargs, error, said):
    with pytest.raises(error, match=said):
        PopulationConfig(**kwargs)


def test_telemetry_checks_bins_horizon_and_cohort():
    log = T.EventLog(10)
    with pytest.raises(ValueError, match="bin_s must be > 0, got 0.0"):
        T.aggregate_only(log, bin_s=0.0, horizon_s=10.0, k_min=1)
    with pytest.raises(ValueError, match="horizon_s must be > 0, got -1.0"):
        T.aggregate_only(log, bin_s=1.0, horizon_s=-1.0, k_min=1)
    with pytest.raises(ValueError, match="k_min must be >= 1, got 0"):
        T.aggregate_only(log, bin_s=1.0, horizon_s=10.0, k_min=0)
    with pytest.raises(TypeError, match="log must be a telemetry.EventLog"):
        T.aggregate_only("log", bin_s=1.0, horizon_s=10.0, k_min=1)
    with pytest.raises(ValueError, match="traced_devices must be >= 0, got -1"):
        T.EventLog(-1)


@pytest.mark.parametrize("read", [T.session_string, T.device_checkin_times])
def test_per_device_views_check_their_log_and_device(read):
    """A bool device is refused (not read as device 0), and so is None (not failing inside `device + 1`)."""
    log = T.EventLog(10)
    with pytest.raises(TypeError, match="log must be a telemetry.EventLog, got None"):
        read(None, 0)
    with pytest.raises(TypeError, match="device must be an int, got False"):
        read(log, False)
    with pytest.raises(ValueError, match="device must be >= 0, got -1"):
        read(log, -1)


def test_plans_are_generated_only_from_plan_objects():
    with pytest.raises(TypeError, match="device must be a plans.DevicePlan, got 'dense'"):
        PL.generate_versioned_plans("t", 1, "dense", PL.ServerPlan())
    with pytest.raises(ValueError, match="task must be a non-empty string"):
        PL.generate_versioned_plans("", 1, PL.DevicePlan(), PL.ServerPlan())
