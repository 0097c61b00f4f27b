"""Fault injection and recovery for the actors: who runs (`Topology`), who crashes when (`Fault`), and who
brings them back (`control_plane`), worked out before any round runs, since it does not depend on devices.

Failure semantics (the paper): an Aggregator or Selector crash loses only its own devices; a Master
Aggregator crash fails the round and the Coordinator restarts it; a dead Coordinator is respawned by
the Selectors, exactly once, because only one of them gets the lock. The lock is a lease the
Coordinator keeps renewing (`LockService`), so a dead holder's lease lapses and the next Selector to ask
wins; a Selector that comes back (the cluster restarts it) while the Coordinator is dead asks too, so the
system recovers from any crash schedule. `actors.ActorSystem` reads liveness from the resulting
`ControlPlan` as it runs each round's messages.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlsys_core import validate

ACTOR_KINDS = ("coordinator", "selector", "master_aggregator", "aggregator")
LOCK = "coordinator"  # the lock service's name for the population's Coordinator


def actor_name(role: str, idx: int) -> str:
    """An actor's name in the log, e.g. "selector[2]"."""
    return f"{role}[{idx}]"


@dataclasses.dataclass(frozen=True)
class Topology:
    """How many actors, whether merged into two kinds, and the timings of hops and recovery."""

    num_selectors: int = 4  # Selectors (each holds the devices whose id is its index mod num_selectors)
    num_aggregators: int = 4  # Aggregators under the Master Aggregator (none when merged)
    merged: bool = False  # the survey's two actors: Selector+Aggregator, Coordinator+Master Aggregator
    hop_latency_s: float = 0.05  # one message between actors (s)
    heartbeat_timeout_s: float = 10.0  # a missing heartbeat is noticed this long after a crash (s)
    respawn_s: float = 5.0  # starting a replacement actor (s)
    lease_s: float = 8.0  # the Coordinator's lock lease: it lapses this long after the last renewal
    lease_renew_s: float = 2.0  # a live Coordinator renews its lease this often

    def __post_init__(self) -> None:
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

    kind: str  # the actor kind, one of ACTOR_KINDS
    time_s: float  # when it crashes (simulated s)
    index: int = 0  # which actor of that kind

    def __post_init__(self) -> None:
        validate.choice("kind", self.kind, ACTOR_KINDS)
        validate.number("time_s", self.time_s, 0.0)
        validate.integer("index", self.index, 0)


class LockService:
    """Leases per name (as Chubby's): `acquire` wins iff nobody holds an unexpired lease on the name; the
    holder keeps it by `renew`ing before it lapses. A crashed holder stops renewing, so its lease lapses
    `lease_s` after its last renewal and the next `acquire` wins; at most one lease on a name is live."""

    def __init__(self, lease_s: float) -> None:
        self.lease_s = validate.number("lease_s", lease_s, 0.0, low_open=True)
        self.holders: dict = {}  # name -> (owner, expires_s)

    def holder(self, name: str, t: float) -> object | None:
        """Who holds an unexpired lease on `name` at time `t` (None: nobody)."""
        owner, expires = self.holders.get(name, (None, -np.inf))
        return owner if t < expires else None

    def expires_s(self, name: str) -> float:
        """When the lease on `name` lapses (-inf: never granted)."""
        return self.holders.get(name, (None, -np.inf))[1]

    def acquire(self, name: str, owner: object, t: float) -> bool:
        """`owner` takes the lease on `name` at `t` if nobody holds an unexpired one; True if it did."""
        if self.holder(name, t) is not None:
            return False
        self.holders[name] = (owner, t + self.lease_s)
        return True

    def renew(self, name: str, owner: object, t: float) -> bool:
        """`owner`, the holder, extends its lease on `name` to `t + lease_s`; False if it is not the holder."""
        if self.holder(name, t) != owner:
            return False
        self.holders[name] = (owner, t + self.lease_s)
        return True

    def keep_alive(self, name: str, owner: object, every_s: float, t: float) -> bool:
        """The holder renewed every `every_s` (< lease_s, so no renewal came too late) from its last
        renewal up to time `t`: the lease now lapses `lease_s` after the last of those renewals.

        Args:
            name: the lock's name.
            owner: the holder.
            every_s: its renewal period (s), in (0, lease_s).
            t: up to when it kept renewing (s).

        Returns:
            False (and nothing changes) if `owner` does not hold the lease or `t` precedes its last renewal.
        """
        validate.number("every_s", every_s, 0.0, self.lease_s, low_open=True, high_open=True)
        own, expires = self.holders.get(name, (None, -np.inf))
        last = expires - self.lease_s
        if own != owner or t < last:
            return False
        self.holders[name] = (owner, last + math.floor((t - last) / every_s) * every_s + self.lease_s)
        return True


@dataclasses.dataclass(frozen=True)
class Lease:
    """One Coordinator incarnation's lease."""

    owner: str  # the incarnation, "coordinator[0]#k"
    granted_s: float  # when the lock service granted it (s)
    expires_s: float  # when it lapsed (s; inf: still held)


@dataclasses.dataclass(frozen=True)
class ControlPlan:
    """What the fault schedule does to the actors, worked out before any round runs (it does not depend
    on devices)."""

    down: dict  # (role, idx) -> list of (crash_s, back_s): each actor's down intervals, sorted, disjoint
    events: list  # lifecycle records in time order: (time_s, sender, receiver, kind)
    coordinators: list  # (owner, up_from_s, up_until_s) per Coordinator incarnation; up_until_s inf if it never crashed
    leases: list  # `Lease` per Coordinator incarnation


def actor_counts(topology: Topology) -> dict[str, int]:
    """How many actors of each role run in `topology` (merged: no Master Aggregator or Aggregators)."""
    roles = {"coordinator": 1, "selector": topology.num_selectors}
    if not topology.merged:
        roles.update(master_aggregator=1, aggregator=topology.num_aggregators)
    return roles


def check_faults(topology: Topology, faults: Sequence[Fault]) -> tuple[Fault, ...]:
    """`faults` as a tuple, each a `Fault` whose index names an actor of `topology` (an Aggregator fault in
    the merged topology crashes that Selector+Aggregator)."""
    validate.instance("topology", topology, Topology, "a faults.Topology")
    validate.instance("faults", faults, (tuple, list), "a tuple of faults.Fault")
    roles = actor_counts(topology)
    for k, f in enumerate(faults):
        validate.instance(f"faults[{k}]", f, Fault, "a faults.Fault")
        role = topology.role(f.kind)
        n = roles[role]
        validate.integer(f"faults[{k}].index ({n} {role}{'' if n == 1 else 's'} in this topology)", f.index, 0, n - 1)
    return tuple(faults)


def control_plane(topology: Topology, faults: Sequence[Fault]) -> ControlPlan:
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
    coordinators: list[list[Any]]  # [owner, up_from_s, up_until_s]
    leases: list[list[Any]]  # [owner, granted_s, expires_s]
    coordinators, leases = [[owner, 0.0, np.inf]], [[owner, 0.0, np.inf]]
    pending: dict = {"coordinator": [], "master_aggregator": []}  # children waiting for their supervisor
    queue: list = []
    seq = 0

    def push(t: float, kind: str, *args: Any) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(queue, (float(t), seq, kind, args))

    for f in faults:
        role = topo.role(f.kind)
        push(f.time_s, "crash", role, f.index)

    def supervisor(role: str) -> str | None:
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
            assert sup is not None  # only Aggregators and the Master Aggregator are supervised
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
