"""The server as actors exchanging messages on the simulated clock, with fault injection.

Four actors (the paper): the Coordinator (one per population, registered in a lock service) opens
rounds; Selectors hold devices' connections and forward the selected ones to Aggregators; the
Master Aggregator runs the round and its Aggregators collect the updates. The survey's two-actor
alternative merges Selector+Aggregator and Coordinator+Master Aggregator.

Failure semantics (the paper): an Aggregator or Selector crash loses only its own devices; a Master
Aggregator crash fails the round and the Coordinator restarts it; a dead Coordinator is respawned by
the Selectors, exactly once, because only one of them gets the lock. Messages go between actors,
each carrying a whole array of devices, so a round costs O(Selectors x Aggregators) messages, never
one per device. Devices' own traffic is not a message here; it is the arrays of `Sessions`.

Every message delivered or dropped, and every lifecycle event (a crash, a request to the lock service
and its answer, a respawn, devices lost with the actor that held them), goes into one log of
`Message` records, `ActorSystem.trace`. Counts the notebook reports — respawns, lock attempts, hops
per report — are read from that log (`count`, `hops_per_report`), not from the code that wrote it.
"""

from __future__ import annotations

import dataclasses
import heapq
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

    def __post_init__(self):
        validate.integer("num_selectors", self.num_selectors, 1)
        validate.integer("num_aggregators", self.num_aggregators, 1)
        validate.boolean("merged", self.merged)
        for name in ("hop_latency_s", "heartbeat_timeout_s", "respawn_s"):
            validate.number(name, getattr(self, name), 0.0)

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
    """A lease per name: the first `acquire` of a name wins, every later one is refused."""

    def __init__(self):
        self.holders: dict = {}
        self.attempts = 0

    def acquire(self, name, owner) -> bool:
        self.attempts += 1
        if name in self.holders:
            return False
        self.holders[name] = owner
        return True


class ActorSystem:
    """Runs each round's reporting through the actors; use `run_round` as `simulate(executor=...)`.

    State across rounds: which actors are down until when, the lock service, and counters
    (`respawns`, `messages`, `log` of (time, event) lines).
    """

    def __init__(self, topology: Topology, faults: tuple[Fault, ...] = ()):
        self.topo = topology
        self.faults = sorted(faults, key=lambda f: f.time_s)
        self.lock = LockService()
        self.respawns: list[tuple[float, str, int]] = []
        self.messages = 0
        self.log: list[tuple[float, str]] = []
        self.trace: list[Message] = []  # every message and lifecycle event (see `Message`)
        self._handled: set[int] = set()
        self._down: dict[tuple[str, int], tuple[float, float]] = {}  # actor -> (crashed at, back at)
        self.last_partial_counts: list[int] = []  # devices in each partial aggregate of the last round

    # -- liveness ---------------------------------------------------------------------------
    def _count(self, role: str) -> int:
        return {"coordinator": 1, "master_aggregator": 1, "selector": self.topo.num_selectors,
                "aggregator": self.topo.num_aggregators}[role]

    def _event(self, t: float, r: int, sender: str, receiver: str, kind: str, devices=NO_DEVICES) -> None:
        self.trace.append(Message(float(t), r, sender, receiver, kind, np.asarray(devices, np.int64)))

    def _crash(self, f: Fault, i: int, r: int) -> None:
        """Apply fault `i` once: the actor is down until detected (heartbeat) and respawned."""
        if i in self._handled:
            return
        self._handled.add(i)
        role = self.topo.role(f.kind)
        idx = f.index % self._count(role)
        name = actor_name(role, idx)
        back = f.time_s + self.topo.heartbeat_timeout_s + self.topo.respawn_s
        self._down[(role, idx)] = (f.time_s, back)
        self.log.append((f.time_s, f"{name} crashed"))
        self._event(f.time_s, r, "fault", name, "crash")
        if role == "coordinator":  # the Selectors notice the missing heartbeat and race for the lock
            detect = f.time_s + self.topo.heartbeat_timeout_s
            winners = []
            for s in range(self.topo.num_selectors):
                if not self.alive("selector", s, detect):
                    continue
                self._event(detect, r, actor_name("selector", s), "lock_service", "lock_request")
                won = self.lock.acquire(("coordinator", i), s)
                answer = "lock_granted" if won else "lock_refused"
                self._event(detect, r, "lock_service", actor_name("selector", s), answer)
                if won:
                    winners.append(s)
            if winners:
                self.respawns.append((back, "selector", winners[0]))
                self.log.append((detect, f"selector[{winners[0]}] won the lock and respawns the coordinator"))
                self._event(back, r, actor_name("selector", winners[0]), name, "respawn")
            else:  # every Selector is down: the coordinator waits for one to return
                self._down[(role, idx)] = (f.time_s, np.inf)
        else:  # the Master respawns its Aggregators; the Coordinator respawns Selectors and Masters
            who = "master_aggregator" if role == "aggregator" else "coordinator"
            self.respawns.append((back, who, 0))
            self._event(back, r, actor_name(who, 0), name, "respawn")

    def alive(self, role: str, idx: int, t: float) -> bool:
        down = self._down.get((role, idx))
        return down is None or not (down[0] <= t < down[1])

    def crashed_in(self, role: str, idx: int, t0: float, t1: float) -> float | None:
        """Crash time of actor (role, idx) within (t0, t1], if any."""
        down = self._down.get((role, idx))
        return down[0] if down is not None and t0 < down[0] <= t1 else None

    # -- a round ----------------------------------------------------------------------------
    def run_round(self, r: int, open_s: float, close_s: float, sessions: Sessions, config: RoundConfig) -> RoundResult:
        """Run round `r`'s selection hand-off and reporting as messages between actors."""
        topo, hop = self.topo, self.topo.hop_latency_s
        horizon = close_s + config.reporting_window_s + 4 * hop + topo.heartbeat_timeout_s + topo.respawn_s
        for i, f in enumerate(self.faults):
            if f.time_s <= horizon:
                self._crash(f, i, r)
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
            back = self._down.get((master, 0), (t_crash, t_crash))[1]
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
            down = self._down.get(("coordinator", 0))
            if down is not None and down[0] <= state["done"][0] + hop < down[1]:
                result_at = down[1]
        reason = "committed" if committed else ("too few reports" if not lost.any() else "too few reports after crash")
        return RoundResult(end_s, accepted, committed, lost, max(result_at, end_s), reason, self._take())

    def _take(self) -> int:
        m, self.messages = self.messages, 0
        return m
