"""Paper 3: actors, messages on the simulated clock, fault injection, leases and the two-actor alternative."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlsys_core.fl.actors import ActorSystem, Message, count, hops_per_report
from mlsys_core.fl.faults import ACTOR_KINDS, Fault, LockService, Topology, actor_counts, control_plane
from mlsys_core.fl.population import HOUR_S, PopulationConfig, make_population
from mlsys_core.fl.protocol import simulate
from mlsys_core.fl.rounds import RoundConfig
from mlsys_core.fl.steering import SteeringConfig

POP = make_population(PopulationConfig(num_devices=20_000), seed=4)
CFG = RoundConfig(goal_count=60, min_reports=45)
T0 = 1800.0
LIFECYCLE = ("crash", "lock_request", "lock_granted", "lock_refused", "respawn", "lease_expired", "lost")


def _run(topology=Topology(), faults=(), hours=1.0, check=None, pop=POP, config=CFG):
    system = ActorSystem(topology, faults)
    executor = system.run_round
    if check is not None:
        def executor(r, open_s, close_s, sessions, config):
            res = system.run_round(r, open_s, close_s, sessions, config)
            check(system, r, sessions, res, config)
            return res
    return system, simulate(pop, config, SteeringConfig(), hours * HOUR_S, 2, executor=executor, traced_devices=0)


def _invariants(system, r, sessions, res, config):
    """A committed aggregate holds exactly the accepted updates: none lost, none counted twice. Read from
    the partial aggregates the Master (merged: the Coordinator) received in this round's messages."""
    assert np.isfinite(res.end_s) and np.isfinite(res.resume_s)
    assert not np.any(res.accepted & res.lost)
    assert np.all(np.isfinite(sessions.report_s[res.accepted]))
    assert res.committed == (res.accepted.sum() >= config.min_reports)
    if res.committed:
        master = "coordinator[0]" if system.topo.merged else "master_aggregator[0]"
        parts = [m.devices for m in system.trace if m.round == r and m.kind == "partial" and m.delivered
                 and m.receiver == master]
        held = np.concatenate(parts)
        assert len(held) == len(np.unique(held))  # none twice
        assert np.array_equal(np.sort(held), np.sort(sessions.ids[res.accepted]))  # none lost, none extra
        assert sum(system.last_partial_counts) == res.accepted.sum()
        assert np.all(sessions.report_s[res.accepted] <= res.end_s + 1.0)


def _one_coordinator_at_a_time(plan) -> None:
    """Coordinator incarnations never overlap; each runs only inside its own lease; leases never overlap;
    every Coordinator crash is followed by exactly one respawn (by a Selector holding the lock)."""
    for (_, _, end), (_, start, _) in zip(plan.coordinators, plan.coordinators[1:]):
        assert end < start
    leases = {lease.owner: lease for lease in plan.leases}
    for owner, start, end in plan.coordinators:
        assert leases[owner].granted_s <= start and (end < leases[owner].expires_s or end == np.inf)
    for a, b in zip(plan.leases, plan.leases[1:]):
        assert a.expires_s <= b.granted_s
    crashes = [e for e in plan.events if e[3] == "crash" and e[2] == "coordinator[0]"]
    respawns = [e for e in plan.events if e[3] == "respawn" and e[2] == "coordinator[0]"]
    grants = [e for e in plan.events if e[3] == "lock_granted"]
    assert len(crashes) == len(respawns) == len(grants) == len(plan.coordinators) - 1
    assert all(e[1].startswith("selector[") for e in respawns)


def _recovers(plan) -> None:
    """Every crashed actor comes back in finite time."""
    for intervals in plan.down.values():
        for crash, back in intervals:
            assert np.isfinite(back) and back >= crash


def _fault(kind_time_index, topology):
    """A drawn fault, its index folded into the actors `topology` has of its kind (faults name real actors)."""
    kind, time_s, index = kind_time_index
    return Fault(kind, time_s, index % actor_counts(topology)[topology.role(kind)])


FAULT = st.tuples(st.sampled_from(ACTOR_KINDS), st.floats(0, 600), st.integers(0, 5))
ALL_AT_ONCE = st.tuples(st.floats(0, 600), st.floats(-30, 30)).map(  # every Selector, then (or before) the Coordinator
    lambda a: tuple(("selector", a[0], i) for i in range(6)) + (("coordinator", max(a[0] + a[1], 0.0), 0),))
SCHEDULES = st.tuples(st.lists(FAULT, max_size=8), st.one_of(st.just(()), ALL_AT_ONCE)).map(lambda p: p[0] + list(p[1]))


@st.composite
def topologies(draw):
    respawn = draw(st.floats(0, 10))
    renew = draw(st.floats(0.5, 5))
    return Topology(num_selectors=draw(st.integers(1, 5)), num_aggregators=draw(st.integers(1, 5)),
                    merged=draw(st.booleans()), heartbeat_timeout_s=draw(st.floats(0, 20)), respawn_s=respawn,
                    lease_renew_s=renew, lease_s=max(respawn, renew) + draw(st.floats(0.1, 30)))


@given(faults=SCHEDULES, topology=topologies())
@settings(max_examples=1000, deadline=None)
def test_actor_layer_always_recovers_with_one_coordinator_at_a_time(faults, topology):
    """The actor/lock layer alone (its own event stream), 1,000 schedules: overlapping crashes of any kinds,
    all Selectors with the Coordinator, leases shorter or longer than the heartbeat timeout."""
    plan = control_plane(topology, [_fault(f, topology) for f in faults])
    _recovers(plan)
    _one_coordinator_at_a_time(plan)
    times = [e[0] for e in plan.events]
    assert times == sorted(times) and np.all(np.isfinite(times))


@given(faults=SCHEDULES.map(lambda fs: [(k, t * 6, i) for k, t, i in fs]), merged=st.booleans())
@settings(max_examples=60, deadline=None)
def test_fault_schedules_reach_the_horizon_and_never_lose_or_double_count_accepted_updates(faults, merged):
    """The full simulation on 60 schedules (crashes within the first hour of a 1 h run, 20 k devices)."""
    topo = Topology(merged=merged)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no divide-by-zero from an infinite round
        system, res = _run(topo, tuple(_fault(f, topo) for f in faults), check=_invariants)
    c = res.counters
    for col in ("open_s", "close_s", "end_s", "resume_s"):
        assert np.all(np.isfinite(c.column(col)))
    assert max(c.column("resume_s").max(), c.column("close_s").max()) >= HOUR_S  # it ran to the horizon
    outcomes = c.column("accepted") + c.column("late") + c.column("dropped") + c.column("lost")
    assert np.all(c.column("selected") == outcomes)
    _one_coordinator_at_a_time(system.plan)
    logged = [m for m in system.trace if m.kind in ("crash", "respawn") and m.receiver == "coordinator[0]"]
    assert [m.kind for m in logged] == ["crash", "respawn"] * (len(logged) // 2) + ["crash"] * (len(logged) % 2)


def test_coordinator_crash_while_every_selector_is_down_recovers():
    """50 k devices, goal 100, all four Selectors crash at 3 h + 29 s and the
    Coordinator at 3 h + 30 s. The Selectors come back, find no Coordinator, and race for the lock."""
    pop = make_population(PopulationConfig(num_devices=50_000), seed=1)
    cfg = RoundConfig(goal_count=100, min_reports=80)
    t = 3 * HOUR_S
    faults = tuple(Fault("selector", t + 29.0, i) for i in range(4)) + (Fault("coordinator", t + 30.0),)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        system, res = _run(faults=faults, hours=5.0, pop=pop, config=cfg, check=_invariants)
    c = res.counters
    assert np.all(np.isfinite(c.column("end_s"))) and c.column("resume_s").max() >= 5 * HOUR_S
    trace = system.trace
    back = [m.time_s for m in trace if m.kind == "respawn" and m.sender == "cluster"]
    assert len(back) == 4  # the Selectors came back, restarted by the cluster, not by the dead Coordinator
    assert count(trace, "lock_request") == 4 and count(trace, "lock_granted") == 1
    assert count(trace, "lock_refused") == 3
    [request] = {m.time_s for m in trace if m.kind == "lock_request"}
    assert request == max(back) + Topology().heartbeat_timeout_s  # they asked after coming back, not before
    [respawn] = [m for m in trace if m.kind == "respawn" and m.receiver == "coordinator[0]"]
    assert respawn.sender.startswith("selector[") and respawn.time_s == request + Topology().respawn_s
    assert c.column("committed")[c.column("open_s") > respawn.time_s + 600].all()  # rounds commit again


def test_no_faults_matches_the_protocol_alone_but_for_hops():
    _, plain = _run(Topology(hop_latency_s=0.0))
    direct = simulate(POP, CFG, SteeringConfig(), HOUR_S, 2)
    assert plain.counters.column("accepted").tolist() == direct.counters.column("accepted").tolist()
    assert plain.counters.column("committed").all()


def _round_at(res, t):
    c = res.counters
    return c.row(int(np.searchsorted(c.column("end_s"), t)))


def test_aggregator_crash_loses_only_its_devices():
    system, res = _run(faults=(Fault("aggregator", T0, 1),), check=_invariants)
    row = _round_at(res, T0)
    assert 0 < row["lost"] <= -(-row["selected"] // 4)  # at most one Aggregator's share
    assert res.counters.column("lost").sum() == row["lost"]
    [respawn] = [m for m in system.trace if m.kind == "respawn"]
    assert (respawn.time_s, respawn.sender, respawn.receiver) == (T0 + 15.0, "master_aggregator[0]", "aggregator[1]")


def test_master_aggregator_crash_fails_the_round_and_the_coordinator_restarts_it():
    system, res = _run(faults=(Fault("master_aggregator", T0),))
    reasons = res.counters.column("reason")
    failed = np.flatnonzero(reasons == "master_aggregator crashed")
    assert len(failed) >= 1
    assert not res.counters.column("committed")[failed].any()
    assert res.counters.column("committed")[failed.max() + 1:].all()  # later rounds run again
    assert count(system.trace, "respawn", sender="coordinator[0]", receiver="master_aggregator[0]") == 1


def test_a_dead_coordinator_delays_the_masters_respawn_until_it_is_back():
    plan = control_plane(Topology(), [Fault("coordinator", 100.0), Fault("master_aggregator", 101.0)])
    coordinator_back = plan.down[("coordinator", 0)][0][1]
    assert plan.down[("master_aggregator", 0)] == [(101.0, coordinator_back + Topology().respawn_s)]


def test_dead_coordinator_is_respawned_exactly_once():
    system, res = _run(faults=(Fault("coordinator", T0),))
    assert [m.sender[:9] for m in system.trace if m.kind == "respawn"] == ["selector["]
    assert count(system.trace, "lock_request") == 4  # every Selector tried, one got the lock
    assert res.counters.column("committed").all()  # the Master held its result for the new Coordinator


def test_a_lease_longer_than_the_heartbeat_timeout_makes_the_selectors_wait_for_it_to_lapse():
    topo = Topology(heartbeat_timeout_s=10.0, lease_s=30.0, lease_renew_s=4.0)
    plan = control_plane(topo, [Fault("coordinator", 105.0)])
    [lease0, lease1] = plan.leases
    assert lease0.expires_s == 104.0 + 30.0  # last renewal at 104 s (every 4 s from 0), then 30 s
    requests = [e for e in plan.events if e[3] == "lock_request"]
    refused = [e for e in plan.events if e[3] == "lock_refused"]
    granted = [e for e in plan.events if e[3] == "lock_granted"]
    # all four asked at detection and were refused (the old lease still held); they asked again when it
    # lapsed: the first won, the other three were refused, and the new Coordinator was up before they retried
    assert sorted(e[0] for e in refused) == [115.0] * 4 + [134.0] * 3 and len(requests) == 8
    assert len(granted) == 1 and granted[0][0] == lease1.granted_s == 134.0
    assert plan.down[("coordinator", 0)] == [(105.0, 134.0 + topo.respawn_s)]


def test_a_crash_of_the_just_respawned_coordinator_waits_out_its_lease_too():
    topo = Topology()
    plan = control_plane(topo, [Fault("coordinator", 100.0), Fault("coordinator", 116.0)])
    _one_coordinator_at_a_time(plan)
    assert [c for c, _ in plan.down[("coordinator", 0)]] == [100.0, 116.0]
    assert plan.leases[2].granted_s >= plan.leases[1].expires_s


def test_lock_service_leases_expire_and_renew():
    lock = LockService(lease_s=10.0)
    assert lock.acquire("c", "a", 0.0) and not lock.acquire("c", "b", 9.9) and lock.holder("c", 5.0) == "a"
    assert lock.renew("c", "a", 9.0) and lock.holder("c", 18.9) == "a" and not lock.renew("c", "b", 10.0)
    assert lock.holder("c", 19.0) is None and not lock.renew("c", "a", 19.5)  # lapsed: too late to renew
    assert lock.acquire("c", "b", 19.0) and lock.holder("c", 20.0) == "b"
    assert lock.keep_alive("c", "b", 3.0, 100.0) and lock.expires_s("c") == 19.0 + 81.0 + 10.0
    with pytest.raises(ValueError, match="every_s"):
        lock.keep_alive("c", "b", 10.0, 200.0)


def test_validation():
    with pytest.raises(ValueError, match="kind"):
        Fault("router", 1.0)
    with pytest.raises(ValueError, match="num_selectors"):
        Topology(num_selectors=0)
    with pytest.raises(ValueError, match=r"lease_s must be > lease_renew_s \(2\) and > respawn_s \(5\), got 5.0"):
        Topology(respawn_s=5.0, lease_s=5.0)
    with pytest.raises(ValueError, match=r"lease_s must be > lease_renew_s \(9\)"):
        Topology(lease_renew_s=9.0)
    with pytest.raises(ValueError, match="lease_renew_s"):
        Topology(lease_renew_s=0.0)
    with pytest.raises(ValueError, match="lease_s"):
        LockService(0.0)


@pytest.mark.parametrize("topology, fault, said", [
    (Topology(), Fault("selector", 1.0, 99), r"faults\[0\]\.index \(4 selectors in this topology\) must be in "
                                                r"\[0, 3\], got 99"),
    (Topology(num_aggregators=2), Fault("aggregator", 1.0, 2), r"faults\[0\]\.index \(2 aggregators"),
    (Topology(), Fault("coordinator", 1.0, 1), r"faults\[0\]\.index \(1 coordinator in this topology\) must be "
                                                  r"in \[0, 0\], got 1"),
    (Topology(merged=True, num_selectors=3), Fault("aggregator", 1.0, 3), r"\(3 selectors in this topology\)"),
])
def test_a_fault_outside_the_topology_is_refused(topology, fault, said):
    """The schedule meets the topology in the control plane: an index no actor has is an error, not a modulo."""
    with pytest.raises(ValueError, match=said):
        control_plane(topology, [fault])
    with pytest.raises(ValueError, match=said):
        ActorSystem(topology, (fault,))


def test_faults_and_topology_must_be_of_their_kinds():
    with pytest.raises(TypeError, match="faults must be a tuple of faults.Fault, got Fault"):
        ActorSystem(Topology(), Fault("selector", 1.0))
    with pytest.raises(TypeError, match=r"faults\[1\] must be a faults.Fault, got 'selector'"):
        control_plane(Topology(), [Fault("selector", 1.0), "selector"])
    with pytest.raises(TypeError, match="topology must be a faults.Topology, got 'merged'"):
        ActorSystem("merged")


def test_two_actors_send_fewer_messages_but_a_crash_hits_more_devices():
    _, four = _run(Topology(merged=False))
    _, two = _run(Topology(merged=True))
    assert two.counters.column("messages").mean() < four.counters.column("messages").mean()
    _, four_crash = _run(Topology(merged=False), (Fault("selector", T0, 1),))
    _, two_crash = _run(Topology(merged=True), (Fault("selector", T0, 1),))
    assert two_crash.counters.column("lost").sum() > four_crash.counters.column("lost").sum()


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
    assert len([m for m in system.trace if m.kind not in LIFECYCLE]) == res.counters.column("messages").sum()
    assert count(system.trace, "respawn", receiver="coordinator[0]") == 1
    assert count(system.trace, "lock_granted") == 1 and count(system.trace, "lock_refused") == 3
    assert count(system.trace, "lease_expired") == 1
    assert hops_per_report(system.trace) == pytest.approx(3.0, abs=0.05)
