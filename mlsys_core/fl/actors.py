"""The server as actors exchanging messages on the simulated clock, with fault injection.

Four actors (the paper): the Coordinator (one per population, registered in a lock service) opens
rounds; Selectors hold devices' connections and forward the selected ones to Aggregators; the
Master Aggregator runs the round and its Aggregators collect the updates. The survey's two-actor
alternative merges Selector+Aggregator and Coordinator+Master Aggregator. Who runs, who crashes when and
who brings them back (`Topology`, `Fault`, `control_plane`, with the paper's failure semantics) is in
`faults`. Messages go between actors, each carrying a whole array of devices, so a round costs
O(Selectors x Aggregators) messages, never one per device. Devices' own traffic is not a message here;
it is the arrays of `rounds.Sessions`.

Every message delivered or dropped, and every lifecycle event (a crash, a request to the lock service
and its answer, a lapsed lease, a respawn, devices lost with the actor that held them), goes into one log of
`Message` records, `ActorSystem.trace`. Counts the notebook reports — respawns, lock attempts, hops
per report — are read from that log (`count`, `hops_per_report`), not from the code that wrote it.
"""

from __future__ import annotations

import dataclasses
import heapq

import numpy as np

from mlsys_core.fl.faults import Fault, Topology, actor_name, check_faults, control_plane
from mlsys_core.fl.rounds import RoundConfig, RoundResult, Sessions, reporting_outcome

DATA_PATH = ("forward", "partial", "result")  # messages that carry devices' connections or updates
NO_DEVICES = np.zeros(0, np.int64)


@dataclasses.dataclass(frozen=True)
class Message:
    """One entry of the actor log: a message (delivered or dropped) or a lifecycle event."""

    time_s: float  # when it was delivered, or the event happened (simulated s)
    round: int  # the round it belongs to
    sender: str  # an actor's name, e.g. "selector[2]", or "fault" / "lock_service"
    receiver: str  # likewise ("-": none, for devices lost)
    kind: str  # e.g. "forward", "partial", "crash", "respawn", "lock_request", "lost"
    devices: np.ndarray  # ids of the devices whose connection or update it carries (empty: control)
    delivered: bool = True  # False: sent to a dead actor, or to its stateless replacement, and dropped


def count(trace: list[Message], kind: str, *, sender: str | None = None, receiver: str | None = None,
          delivered: bool | None = None) -> int:
    """How many records of `kind` the log holds; sender and receiver match a whole name, or every index of
    a role when given without brackets.

    Args:
        trace: the actor log (`ActorSystem.trace`).
        kind: the record kind, e.g. "respawn".
        sender: only records from this actor or role (None: any).
        receiver: only records to this actor or role (None: any).
        delivered: only delivered (True) or dropped (False) messages (None: both).
    """
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
        """Whether actor (role, idx) is running at time `t`."""
        return not any(c <= t < b for c, b in self._intervals(role, idx))

    def up_at(self, role: str, idx: int, t: float) -> float:
        """The earliest time >= t at which actor (role, idx) is running."""
        for c, b in self._intervals(role, idx):
            if c <= t < b:
                t = b
        return t

    def crashed_in(self, role: str, idx: int, t0: float, t1: float) -> float | None:
        """Earliest crash time of actor (role, idx) within (t0, t1], if any.

        Args:
            role: the actor's role, e.g. "aggregator".
            idx: its index.
            t0: the interval's open start (s).
            t1: its closed end (s).
        """
        return next((c for c, _ in self._intervals(role, idx) if t0 < c <= t1), None)

    # -- a round ----------------------------------------------------------------------------
    def run_round(self, r: int, open_s: float, close_s: float, sessions: Sessions, config: RoundConfig) -> RoundResult:
        """Run round `r`'s selection hand-off and reporting as messages between actors (a `protocol.simulate`
        executor).

        Args:
            r: the round's index.
            open_s: when its selection opened (s).
            close_s: when its selection closed and reporting opened (s).
            sessions: the selected devices' sessions.
            config: goal_count, min_reports and the reporting window.
        """
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

        def send(t, sender, role, idx, kind, payload=None, devices=NO_DEVICES) -> None:
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
