"""Paper 3: actors, messages on the simulated clock, fault injection and the two-actor alternative."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_core.fl.actors import ACTOR_KINDS, ActorSystem, Fault, LockService, Message, Topology, count, hops_per_report
from mlsys_core.fl.population import HOUR_S, PopulationConfig, make_population
from mlsys_core.fl.protocol import RoundConfig, SteeringConfig, simulate

POP = make_population(PopulationConfig(num_devices=20_000), seed=4)
CFG = RoundConfig(goal_count=60, min_reports=45)
T0 = 1800.0


def _run(topology=Topology(), faults=(), hours=1.0, check=None):
    system = ActorSystem(topology, faults)
    executor = system.run_round
    if check is not None:
        def executor(r, open_s, close_s, sessions, config):
            res = system.run_round(r, open_s, close_s, sessions, config)
            check(system, sessions, res, config)
            return res
    return system, simulate(POP, CFG, SteeringConfig(), hours * HOUR_S, 2, executor=executor)


def _invariants(system, sessions, res, config):
    """A committed aggregate holds exactly the accepted updates: none lost, none counted twice."""
    assert not np.any(res.accepted & res.lost)
    assert np.all(np.isfinite(sessions.report_s[res.accepted]))
    assert res.committed == (res.accepted.sum() >= config.min_reports)
    if res.committed:
        assert sum(system.last_partial_counts) == res.accepted.sum()  # disjoint partial aggregates
        assert np.all(sessions.report_s[res.accepted] <= res.end_s + 1.0)


@given(faults=st.lists(st.tuples(st.sampled_from(ACTOR_KINDS), st.floats(0, 3600), st.integers(0, 5)), max_size=4),
       merged=st.booleans())
@settings(max_examples=15, deadline=None)
def test_fault_schedules_never_lose_or_double_count_accepted_updates(faults, merged):
    system, res = _run(Topology(merged=merged), tuple(Fault(k, t, i) for k, t, i in faults), check=_invariants)
    c = res.counters
    outcomes = c.column("accepted") + c.column("late") + c.column("dropped") + c.column("lost")
    assert np.all(c.column("selected") == outcomes)
    coordinator_faults = sum(1 for k, *_ in faults if Topology(merged=merged).role(k) == "coordinator")
    assert sum(1 for _, who, _ in system.respawns if who == "selector") <= coordinator_faults


def test_no_faults_matches_the_protocol_alone_but_for_hops():
    _, plain = _run(Topology(hop_latency_s=0.0))
    direct = simulate(POP, CFG, SteeringConfig(), HOUR_S, 2)
    assert plain.counters.column("accepted").tolist() == direct.counters.column("accepted").tolist()
    assert plain.counters.column("committed").all()


def _round_at(res, t):
    c = res.counters
    return c.rows[int(np.searchsorted(c.column("end_s"), t))]


def test_aggregator_crash_loses_only_its_devices():
    system, res = _run(faults=(Fault("aggregator", T0, 1),), check=_invariants)
    row = _round_at(res, T0)
    assert 0 < row["lost"] <= -(-row["selected"] // 4)  # at most one Aggregator's share
    assert sum(r["lost"] for r in res.counters.rows) == row["lost"]
    assert system.respawns == [(T0 + 15.0, "master_aggregator", 0)]


def test_master_aggregator_crash_fails_the_round_and_the_coordinator_restarts_it():
    _, res = _run(faults=(Fault("master_aggregator", T0),))
    reasons = res.counters.column("reason")
    failed = np.flatnonzero(reasons == "master_aggregator crashed")
    assert len(failed) >= 1
    assert not res.counters.column("committed")[failed].any()
    assert res.counters.column("committed")[failed.max() + 1:].all()  # later rounds run again


def test_dead_coordinator_is_respawned_exactly_once():
    system, res = _run(faults=(Fault("coordinator", T0),))
    assert [who for _, who, _ in system.respawns] == ["selector"]
    assert system.lock.attempts == 4  # every Selector tried, one got the lock
    assert res.counters.column("committed").all()  # the Master held its result for the new Coordinator


def test_two_actors_send_fewer_messages_but_a_crash_hits_more_devices():
    _, four = _run(Topology(merged=False))
    _, two = _run(Topology(merged=True))
    assert two.counters.column("messages").mean() < four.counters.column("messages").mean()
    _, four_crash = _run(Topology(merged=False), (Fault("selector", T0, 1),))
    _, two_crash = _run(Topology(merged=True), (Fault("selector", T0, 1),))
    assert two_crash.counters.column("lost").sum() > four_crash.counters.column("lost").sum()


def test_lock_service_and_validation():
    lock = LockService()
    assert lock.acquire("c", 1) and not lock.acquire("c", 2) and lock.holders["c"] == 1
    with pytest.raises(ValueError, match="kind"):
        Fault("router", 1.0)
    with pytest.raises(ValueError, match="num_selectors"):
        Topology(num_selectors=0)


def _msg(r, sender, receiver, kind, devices=(), delivered=True):
    return Message(0.0, r, sender, receiver, kind, np.array(devices, np.int64), delivered)


def test_hops_per_report_and_counts_are_read_from_the_log():
    trace = [
        _msg(0, "selector[0]", "aggregator[0]", "forward", [1, 2]),
        _msg(0, "aggregator[0]", "master_aggregator[0]", "reports"),  # control: carries no device
        _msg(0, "aggregator[0]", "master_aggregator[0]", "partial", [1]),
        _msg(0, "master_aggregator[0]", "coordinator[0]", "result", [1]),
        _msg(1, "selector[1]", "coordinator[0]", "partial", [1, 5]),  # a merged-style round: one hop
        _msg(1, "selector[1]", "coordinator[0]", "partial", [9], delivered=False),  # dropped: never arrived
        _msg(1, "selector[0]", "lock_service", "lock_request"),
        _msg(1, "selector[1]", "lock_service", "lock_request"),
    ]
    # round 0: device 1 took 3 hops (device 2 never reached the Coordinator); round 1: devices 1, 5 one each
    assert hops_per_report(trace) == pytest.approx((3 + 1 + 1) / 3)
    assert count(trace, "lock_request") == 2 and count(trace, "lock_request", sender="selector[1]") == 1
    assert count(trace, "partial", receiver="coordinator") == 2 and count(trace, "partial", delivered=False) == 1
    assert np.isnan(hops_per_report(trace[-2:]))


def test_the_log_records_every_message_and_the_coordinator_respawn():
    system, res = _run(faults=(Fault("coordinator", T0),))
    assert len([m for m in system.trace if m.kind not in ("crash", "lock_request", "lock_granted", "lock_refused",
                                                           "respawn", "lost")]) == res.counters.column("messages").sum()
    assert count(system.trace, "respawn", receiver="coordinator[0]") == 1
    assert count(system.trace, "lock_granted") == 1 and count(system.trace, "lock_refused") == 3
    assert hops_per_report(system.trace) == pytest.approx(3.0, abs=0.05)
