"""The server as actors exchanging messages on the simulated clock, with fault injection.

Four actors (the paper): the Coordinator (one per population, registered in a lock service) opens
rounds; Selectors hold devices' connections and forward the selected ones to Aggregators; the
Master Aggregator runs the round and its Aggregators collect the updates. The survey's two-actor
alternative merges Selector+Aggregator and Coordinator+Master Aggregator.

Failure semantics (the paper): an Aggregator or Selector crash loses only its own devices; a Master
Aggregator crash fails the round and the Coordinator restarts it; a dead Coordinator is respawned by
the Selectors, exactly once, because only one of them gets the lock. The lock is a lease the
Coordinator keeps renewing, so a dead holder's lease lapses and the next Selector to ask wins; a
Selector that comes back (the cluster restarts it) while the Coordinator is dead asks too, so the
system recovers from any crash schedule (`control_plane` works it out). Messages go between actors,
each carrying a whole array of devices, so a round costs O(Selectors x Aggregators) messages, never
one per device. Devices' own traffic is not a message here; it is the arrays of `Sessions`.

Every message delivered or dropped, and every lifecycle event (a crash, a request to the lock service
and its answer, a lapsed lease, a respawn, devices lost with the actor that held them), goes into one log of
`Message` records, `ActorSystem.trace`. Counts the notebook reports — respawns, lock attempts, hops
per report — are read from that log (`count`, `hops_per_report`), not from the code that wrote it.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from typing import NamedTuple

import numpy as np

from mlsys_core import validate
from mlsys_core.fl.protocol import RoundConfig, RoundResult, Sessions, reporting_outcome

ACTOR_KINDS = ("coordinator", "selector", "master_aggregator", "aggregator")
DATA_PATH = ("forward", "partial", "result")  # messages that carry devices' connections or updates
NO_DEVICES = np.zeros(0, np.int64)


class Message(NamedTuple):
    """One entry of the actor log: a message (delivered or dropped) or a lifecycle event.

    `sender` and `receiver` name actors as "selector[2]", or "fault" / "lock_service"; `devices`
    holds the ids of the devices whose connection or update the message carries (empty: control).
    """

    time_s: float
    round: int
    sender: str
    receiver: str
    kind: str
    devices: np.ndarray
    delivered: bool = True


def actor_name(role: str, idx: int) -> str:
    return f"{role}[{idx}]"


def count(trace: list[Message], kind: str, *, sender: str | None = None, receiver: str | None = None,
          delivered: bool | None = None) -> int:
    """How many records of `kind` the log holds (optionally: from `sender`, to `receiver`; sender and
    receiver match a whole name, or every index of a role when given without brackets)."""
    def match(name: str, want: str | None) -> bool:
        return want is None or name == want or ("[" not in want and name.startswith(want + "["))
    return sum(1 for m in trace if m.kind == kind and match(m.sender, sender) and match(m.receiver, receiver)
               and (delivered is None or m.delivered == delivered))


def hops_per_report(trace: list[Message]) -> float:
    """Mean number of delivered actor-to-actor messages that carried a device (its connection or its
    update, kinds in DATA_PATH) in a round, over the devices whose update reached the Coordinator.

    Read from the log alone: a device counts once per round in which a data-path message delivered to
    the Coordinator carried it; its hops are all delivered data-path messages of that round naming it.
    """
    path = [m for m in trace if m.kind in DATA_PATH and m.delivered and len(m.devices)]
    if not path:
        return float("nan")
    rounds = np.concatenate([np.full(len(m.devices), m.round, np.int64) for m in path])
    ids = np.concatenate([np.asarray(m.devices, np.int64) for m in path])
    keys = rounds * (int(ids.max()) + 1) + ids
    at_coordinator = np.concatenate([np.full(len(m.devices), m.receiver == "coordinator[0]") for m in path])
    reached = np.unique(keys[at_coordinator])
    if not len(reached):
        return float("nan")
    uniq, hops = np.unique(keys, return_counts=True)
    return float(hops[np.isin(uniq, reached)].mean())


@dataclasses.dataclass(frozen=True)
class Topology:
    """How many actors, whether merged into two kinds, and the timings of hops and recovery."""

    num_selectors: int = 4
    num_aggregators: int = 4
    merged: bool = False
    hop_latency_s: float = 0.05
    heartbeat_timeout_s: float = 10.0
    respawn_s: float = 5.0
    lease_s: float = 8.0  # the Coordinator's lock lease: it lapses this long after the last renewal
    lease_renew_s: float = 2.0  # a live Coordinator renews its lease this often

    def __post_init__(self):
        validate.integer("num_selectors", self.num_selectors, 1)
        validate.integer("num_aggregators", self.num_aggregators, 1)
        validate.boolean("merged", self.merged)
        for name in ("hop_latency_s", "heartbeat_timeout_s", "respawn_s"):
            validate.number(name, getattr(self, name), 0.0)
        validate.number("lease_renew_s", self.lease_renew_s, 0.0, low_open=True)
        # A lease must outlive a renewal period and a respawn (the new Coordinator renews it on start).
        if validate.number("lease_s", self.lease_s) <= max(self.lease_renew_s, self.respawn_s):
            raise ValueError(f"lease_s must be > lease_renew_s ({self.lease_renew_s:g}) and > respawn_s "
                             f"({self.respawn_s:g}), got {self.lease_s!r}")

    def role(self, kind: str) -> str:
        """The actor that plays `kind`: in the merged topology two kinds share one actor."""
        if not self.merged:
            return kind
        return {"master_aggregator": "coordinator", "aggregator": "selector"}.get(kind, kind)


@dataclasses.dataclass(frozen=True)
class Fault:
    """Crash actor `kind` number `index` at simulated time `time_s`."""

    kind: str
    time_s: float
    index: int = 0

    def __post_init__(self):
        validate.choice("kind", self.kind, ACTOR_KINDS)
        validate.number("time_s", self.time_s, 0.0)
        validate.integer("index", self.index, 0)


class LockService:
    """Leases per name (as Chubby's): `acquire` wins iff nobody holds an unexpired lease on the name; the
    holder keeps it by `renew`ing before it lapses. A crashed holder stops renewing, so its lease lapses
    `lease_s` after its last renewal and the next `acquire` wins; at most one lease on a name is live."""

    def __init__(self, lease_s: float):
        self.lease_s = validate.number("lease_s", lease_s, 0.0, low_open=True)
        self.holders: dict = {}  # name -> (owner, expires_s)

    def holder(self, name, t: float):
        owner, expires = self.holders.get(name, (None, -np.inf))
        return owner if t < expires else None

    def expires_s(self, name) -> float:
        return self.holders.get(name, (None, -np.inf))[1]

    def acquire(self, name, owner, t: float) -> bool:
        if self.holder(name, t) is not None:
            return False
        self.holders[name] = (owner, t + self.lease_s)
        return True

    def renew(self, name, owner, t: float) -> bool:
        if self.holder(name, t) != owner:
            return False
        self.holders[name] = (owner, t + self.lease_s)
        return True

    def keep_alive(self, name, owner, every_s: float, t: float) -> bool:
        """The holder renewed every `every_s` (< lease_s, so no renewal came too late) from its last
        renewal up to time `t`: the lease now lapses `lease_s` after the last of those renewals."""
        validate.number("every_s", every_s, 0.0, self.lease_s, low_open=True, high_open=True)
        own, expires = self.holders.get(name, (None, -np.inf))
        last = expires - self.lease_s
        if own != owner or t < last:
            return False
        self.holders[name] = (owner, last + math.floor((t - last) / every_s) * every_s + self.lease_s)
        return True


class Lease(NamedTuple):
    """One Coordinator's lease: its owner (incarnation "coordinator[0]#k"), granted at, lapsed at (inf: held)."""

    owner: str
    granted_s: float
    expires_s: float


class ControlPlan(NamedTuple):
    """What the fault schedule does to the actors, worked out before any round runs (it does not depend
    on devices): each actor's down intervals [crashed at, back at), the lifecycle records in time order
    (time, sender, receiver, kind), the Coordinator incarnations' up intervals and their leases."""

    down: dict  # (role, idx) -> list of (crash_s, back_s), sorted, disjoint
    events: list  # (time_s, sender, receiver, kind)
    coordinators: list  # (owner, up_from_s, up_until_s): up_until_s inf if it never crashed
    leases: list  # Lease per Coordinator incarnation


LOCK = "coordinator"  # the lock service's name for the population's Coordinator


def actor_counts(topology: Topology) -> dict[str, int]:
    """How many actors of each role run in `topology` (merged: no Master Aggregator or Aggregators)."""
    roles = {"coordinator": 1, "selector": topology.num_selectors}
    if not topology.merged:
        roles.update(master_aggregator=1, aggregator=topology.num_aggregators)
    return roles


def check_faults(topology: Topology, faults) -> tuple[Fault, ...]:
    """`faults` as a tuple, each a `Fault` whose index names an actor of `topology` (an Aggregator fault in
    the merged topology crashes that Selector+Aggregator)."""
    validate.instance("topology", topology, Topology, "an actors.Topology")
    validate.instance("faults", faults, (tuple, list), "a tuple of actors.Fault")
    roles = actor_counts(topology)
    for k, f in enumerate(faults):
        validate.instance(f"faults[{k}]", f, Fault, "an actors.Fault")
        role = topology.role(f.kind)
        n = roles[role]
        validate.integer(f"faults[{k}].index ({n} {role}{'' if n == 1 else 's'} in this topology)", f.index, 0, n - 1)
    return tuple(faults)


def control_plane(topology: Topology, faults) -> ControlPlan:
    """Run the fault schedule through heartbeats, the lock service and respawns, as an event loop.

    A fault crashes its actor if it is running (a fault on a dead actor, or one still being respawned,
    does nothing). Who brings an actor back: the cluster's scheduler restarts a Selector; the Master
    Aggregator respawns its Aggregators and the Coordinator the Master, each `heartbeat_timeout_s` after
    the crash (or when the supervisor is itself back) plus `respawn_s`. The Coordinator is respawned by
    the Selectors: each live one, `heartbeat_timeout_s` after it last heard the Coordinator (or after it
    came back itself, if the Coordinator is dead then), asks the lock service; the winner respawns the
    Coordinator, which renews its lease every `lease_renew_s`. A refused Selector asks again when the
    lease it was refused on lapses, unless the Coordinator is running by then.
    """
    faults = check_faults(topology, faults)
    topo = topology
    H, R = topo.heartbeat_timeout_s, topo.respawn_s
    roles = actor_counts(topo)
    up = {(role, i): True for role, n in roles.items() for i in range(n)}
    down: dict = {key: [] for key in up}
    events: list = []
    lock = LockService(topo.lease_s)
    incarnation = 0
    owner = f"coordinator[0]#{incarnation}"
    lock.acquire(LOCK, owner, 0.0)
    coordinators, leases = [[owner, 0.0, np.inf]], [[owner, 0.0, np.inf]]
    pending: dict = {"coordinator": [], "master_aggregator": []}  # children waiting for their supervisor
    queue: list = []
    seq = 0

    def push(t, kind, *args):
        nonlocal seq
        seq += 1
        heapq.heappush(queue, (float(t), seq, kind, args))

    for f in faults:
        role = topo.role(f.kind)
        push(f.time_s, "crash", role, f.index)

    def supervisor(role):
        return {"aggregator": "master_aggregator", "master_aggregator": "coordinator"}.get(role)

    while queue:
        t, _, kind, args = heapq.heappop(queue)
        if kind == "crash":
            role, idx = args
            if not up[(role, idx)]:
                continue
            up[(role, idx)] = False
            down[(role, idx)].append([t, np.inf])
            events.append((t, "fault", actor_name(role, idx), "crash"))
            if role == "coordinator":
                coordinators[-1][2] = t
                lock.keep_alive(LOCK, coordinators[-1][0], topo.lease_renew_s, t)  # renewed until it died
                leases[-1][2] = lock.expires_s(LOCK)
                events.append((leases[-1][2], "lock_service", "coordinator[0]", "lease_expired"))
                for s in range(topo.num_selectors):
                    if up[("selector", s)]:
                        push(t + H, "detect", s)
            elif role == "selector":
                push(t + H + R, "back", role, idx, "cluster")
            else:
                push(t + H, "supervise", role, idx)
        elif kind == "supervise":  # the supervisor notices the missing heartbeat and respawns the actor
            role, idx = args
            sup = supervisor(role)
            if up[(sup, 0)]:
                push(t + R, "back", role, idx, actor_name(sup, 0))
            else:
                pending[sup].append((role, idx))
        elif kind == "detect":  # Selector s has heard nothing from the Coordinator for a heartbeat timeout
            (s,) = args
            if not up[("selector", s)] or up[("coordinator", 0)]:
                continue
            name = actor_name("selector", s)
            events.append((t, name, "lock_service", "lock_request"))
            new_owner = f"coordinator[0]#{incarnation + 1}"
            if lock.acquire(LOCK, new_owner, t):
                incarnation += 1
                leases.append([new_owner, t, np.inf])
                events.append((t, "lock_service", name, "lock_granted"))
                push(t + R, "back", "coordinator", 0, name)
            else:
                events.append((t, "lock_service", name, "lock_refused"))
                push(max(lock.expires_s(LOCK), t + topo.lease_renew_s), "detect", s)
        elif kind == "back":
            role, idx, by = args
            up[(role, idx)] = True
            down[(role, idx)][-1][1] = t
            events.append((t, by, actor_name(role, idx), "respawn"))
            if role == "coordinator":
                owner = leases[-1][0]
                lock.renew(LOCK, owner, t)  # lease_s > respawn_s: it starts before its lease lapses
                coordinators.append([owner, t, np.inf])
            elif role == "selector" and not up[("coordinator", 0)]:
                push(t + H, "detect", idx)  # it comes back to a dead Coordinator: it will race for the lock
            for child in pending.get(role, ()):
                push(t + R, "back", *child, actor_name(role, 0))
            pending[role] = []
    events.sort(key=lambda e: e[0])
    return ControlPlan({k: [tuple(iv) for iv in v] for k, v in down.items()}, events,
                       [tuple(c) for c in coordinators], [Lease(*x) for x in leases])


class ActorSystem:
    """Runs each round's reporting through the actors; use `run_round` as `simulate(executor=...)`.

    The fault schedule is first worked out by `control_plane` (who is down when, the lock service's
    leases, respawns); rounds then read liveness from it, and its lifecycle records enter `trace` as the
    rounds reach their times. `log` holds the same events as readable (time, line) pairs.
    """

    def __init__(self, topology: Topology, faults: tuple[Fault, ...] = ()):
        self.topo = topology
        self.faults = sorted(check_faults(topology, faults), key=lambda f: f.time_s)
        self.plan = control_plane(topology, self.faults)
        self._down = self.plan.down
        self._pending = list(self.plan.events)  # lifecycle records not yet in the trace
        self.messages = 0
        self.log: list[tuple[float, str]] = []
        self.trace: list[Message] = []  # every message and lifecycle event (see `Message`)
        self.last_partial_counts: list[int] = []  # devices in each partial aggregate of the last round

    # -- liveness ---------------------------------------------------------------------------
    def _event(self, t: float, r: int, sender: str, receiver: str, kind: str, devices=NO_DEVICES) -> None:
        self.trace.append(Message(float(t), r, sender, receiver, kind, np.asarray(devices, np.int64)))

    def _flush(self, until_s: float, r: int) -> None:
        """Move the lifecycle records up to `until_s` into the trace (and the readable log) as round `r`'s."""
        while self._pending and self._pending[0][0] <= until_s:
            t, sender, receiver, kind = self._pending.pop(0)
            self._event(t, r, sender, receiver, kind)
            line = {"crash": f"{receiver} crashed", "respawn": f"{sender} respawned {receiver}",
                    "lock_granted": f"{receiver} won the lock and respawns the coordinator",
                    "lease_expired": "the crashed coordinator's lease lapsed"}.get(kind)
            if line:
                self.log.append((t, line))

    def _intervals(self, role: str, idx: int) -> list:
        return self._down.get((role, idx), [])

    def alive(self, role: str, idx: int, t: float) -> bool:
        return not any(c <= t < b for c, b in self._intervals(role, idx))

    def up_at(self, role: str, idx: int, t: float) -> float:
        """The earliest time >= t at which actor (role, idx) is running."""
        for c, b in self._intervals(role, idx):
            if c <= t < b:
                t = b
        return t

    def crashed_in(self, role: str, idx: int, t0: float, t1: float) -> float | None:
        """Earliest crash time of actor (role, idx) within (t0, t1], if any."""
        return next((c for c, _ in self._intervals(role, idx) if t0 < c <= t1), None)

    # -- a round ----------------------------------------------------------------------------
    def run_round(self, r: int, open_s: float, close_s: float, sessions: Sessions, config: RoundConfig) -> RoundResult:
        """Run round `r`'s selection hand-off and reporting as messages between actors."""
        topo, hop = self.topo, self.topo.hop_latency_s
        horizon = close_s + config.reporting_window_s + 4 * hop + topo.heartbeat_timeout_s + topo.respawn_s
        self._flush(horizon, r)
        n = len(sessions.ids)
        selector = sessions.ids % topo.num_selectors
        # The Master assigns devices to live Aggregators round robin (merged: each device stays on its Selector).
        if topo.merged:
            agg_role, agg = "selector", selector
        else:
            live = [a for a in range(topo.num_aggregators) if self.alive("aggregator", a, close_s)] or [0]
            agg_role, agg = "aggregator", np.asarray(live)[np.arange(n) % len(live)]
        forward = 0.0 if topo.merged else hop  # Selector -> Aggregator hand-off before configuration
        report_s = sessions.report_s + forward
        queue: list = []
        seq = 0
        state = {"lost": np.zeros(n, bool), "partials": {}, "end": None, "done": None, "failed": None}

        def send(t, sender, role, idx, kind, payload=None, devices=NO_DEVICES):
            nonlocal seq
            seq += 1
            self.messages += 1
            heapq.heappush(queue, (t, seq, role, idx, kind, payload, sender, devices))

        master = "coordinator" if topo.merged else "master_aggregator"
        master_name, coordinator = actor_name(master, 0), actor_name("coordinator", 0)
        groups = sorted(set(agg.tolist()))
        # Selection hand-off: a Selector that crashed while holding its devices loses them.
        for s in range(topo.num_selectors):
            crashed = self.crashed_in("selector", s, open_s, close_s + forward) is not None
            if crashed or not self.alive("selector", s, close_s):
                gone = (selector == s) & ~state["lost"]
                state["lost"] |= selector == s
                if gone.any():
                    self._event(close_s, r, actor_name("selector", s), "-", "lost", sessions.ids[gone])
        if not topo.merged:
            send(open_s + hop, coordinator, master, 0, "start")
            for s in range(topo.num_selectors):
                send(open_s + hop, coordinator, "selector", s, "quota")
                for a in groups:
                    held = (selector == s) & (agg == a)
                    if np.any(held):
                        send(close_s + hop, actor_name("selector", s), "aggregator", a, "forward",
                             devices=sessions.ids[held])
        else:
            for s in range(topo.num_selectors):
                send(open_s + hop, coordinator, "selector", s, "quota")
        # Each Aggregator streams its devices' report times to the Master (one message, the reports it
        # will have received before it crashes, if it does).
        for a in groups:
            mine = agg == a
            crash = self.crashed_in(agg_role, a, close_s, horizon)
            until = crash if crash is not None else np.inf
            seen = np.where(mine & ~state["lost"] & (report_s <= until), report_s, np.inf)
            send(close_s + forward + hop, actor_name(agg_role, a), master, 0, "reports", (a, seen))

        reports: dict[int, np.ndarray] = {}
        while queue:
            t, _, role, idx, kind, payload, sender, devices = heapq.heappop(queue)
            since = close_s if role == "aggregator" else open_s  # when this round's state on the actor began
            delivered = self.alive(role, idx, t) and self.crashed_in(role, idx, since, t) is None
            self.trace.append(Message(float(t), r, sender, actor_name(role, idx), kind, devices, delivered))
            if not delivered:
                continue  # a message to a dead actor, or to its stateless replacement, is dropped
            if kind == "reports":
                reports[payload[0]] = payload[1]
                if len(reports) == len(groups):
                    merged_reports = np.min(np.stack(list(reports.values())), axis=0)
                    out = reporting_outcome(merged_reports, close_s + forward, config)
                    state["end"] = out.end_s
                    for a in groups:
                        send(out.end_s + hop, master_name, agg_role, a, "close", out.accepted & (agg == a))
                    send(out.end_s + 2 * hop + topo.heartbeat_timeout_s, master_name, master, 0, "deadline")
            elif kind == "close":
                send(t + hop, actor_name(role, idx), master, 0, "partial", (idx, payload),
                     devices=sessions.ids[payload])
            elif kind == "partial":
                state["partials"][payload[0]] = payload[1]
            # The Master finishes once every partial is in, or at the deadline without the missing ones.
            all_in = kind == "partial" and len(state["partials"]) == len(groups)
            if state["done"] is None and (kind == "deadline" or all_in):
                parts = list(state["partials"].values())
                state["done"] = (t, np.logical_or.reduce(parts) if parts else np.zeros(n, bool))
                if not topo.merged:
                    send(t + hop, master_name, "coordinator", 0, "result", devices=sessions.ids[state["done"][1]])
            elif kind == "result":
                state["result_at"] = t
        end_s = state["end"] if state["end"] is not None else close_s + config.reporting_window_s
        # Whoever never made it into a partial aggregate, but would have, was lost to a crash.
        master_crash = self.crashed_in(master, 0, open_s, end_s + 2 * hop + topo.heartbeat_timeout_s)
        if state["done"] is None or master_crash is not None:
            t_crash = master_crash if master_crash is not None else end_s
            back = self.up_at(master, 0, t_crash)
            self.log.append((t_crash, f"round {r} failed: {master} crashed; restarted"))
            lost = np.isfinite(report_s) | state["lost"]
            self._event(t_crash, r, master_name, "-", "lost", sessions.ids[lost & ~state["lost"]])
            return RoundResult(end_s, np.zeros(n, bool), False, lost, max(back, end_s), f"{master} crashed",
                               self._take())
        accepted = state["done"][1]
        lost = state["lost"].copy()
        for a in groups:  # an Aggregator whose partial never arrived lost all its devices' updates
            if a not in state["partials"]:
                gone = (agg == a) & np.isfinite(report_s) & ~lost
                lost |= gone
                if gone.any():
                    self._event(end_s, r, actor_name(agg_role, a), "-", "lost", sessions.ids[gone])
        self.last_partial_counts = [int(p.sum()) for p in state["partials"].values()]
        committed = bool(accepted.sum() >= config.min_reports)
        result_at = state.get("result_at", state["done"][0])
        if not topo.merged:  # a Master holds its result until a (respawned) Coordinator takes it
            if not self.alive("coordinator", 0, state["done"][0] + hop):
                result_at = self.up_at("coordinator", 0, state["done"][0] + hop)
        reason = "committed" if committed else ("too few reports" if not lost.any() else "too few reports after crash")
        return RoundResult(end_s, accepted, committed, lost, max(result_at, end_s), reason, self._take())

    def _take(self) -> int:
        m, self.messages = self.messages, 0
        return m
