"""Telemetry: per-device session strings, per-round counters, and what they reveal.

Each device event is one character, so a session reads like `-v[]+^`:

    -  checked in                 v  plan and checkpoint downloaded
    x  rejected, told when to return   P  rejected: no plan for its runtime
    [  training started           ]  training finished
    +  upload started             ^  upload accepted
    L  upload rejected as late    R  late upload kept for recycling
    !  interrupted (dropped out, or its actor crashed)

Events are stored as three arrays (device, time, code) for the first `traced_devices` device ids
(devices are drawn i.i.d., so that is a random sample), which keeps a 1 M-device day cheap.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mlsys_core import validate

CODES = "-xPv[]+^LR!"
LEGEND = {
    "-": "check-in", "x": "rejected (come back later)", "P": "rejected: no plan for runtime",
    "v": "plan + checkpoint downloaded", "[": "training started", "]": "training finished",
    "+": "upload started", "^": "upload accepted", "L": "upload rejected as late",
    "R": "late upload kept for recycling", "!": "interrupted",
}


class EventLog:
    """Append-only device events of the traced devices; `arrays()` returns them sorted by device, time."""

    def __init__(self, traced_devices: int):
        self.traced_devices = validate.integer("traced_devices", traced_devices, 0)
        self._chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._sorted: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def add(self, ids: np.ndarray, t_s: np.ndarray, code: str) -> None:
        keep = ids < self.traced_devices
        if keep.any():
            t = np.broadcast_to(np.asarray(t_s, np.float64), ids.shape)[keep]
            self._chunks.append((ids[keep].astype(np.int32), t, np.full(t.shape, CODES.index(code), np.uint8)))
            self._sorted = None

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._sorted is None:
            if not self._chunks:
                return np.zeros(0, np.int32), np.zeros(0), np.zeros(0, np.uint8)
            ids, t, c = (np.concatenate(x) for x in zip(*self._chunks))
            order = np.lexsort((t, ids))
            self._sorted = ids[order], t[order], c[order]
        return self._sorted


def _events(log: EventLog, device: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`log.arrays()`, once `log` and `device` (an id >= 0) are checked."""
    validate.instance("log", log, EventLog, "a telemetry.EventLog")
    validate.integer("device", device, 0)
    return log.arrays()


def session_string(log: EventLog, device: int) -> str:
    """The device's events as code characters, one space-separated session per check-in."""
    ids, _, codes = _events(log, device)
    lo, hi = np.searchsorted(ids, [device, device + 1])
    text = "".join(CODES[c] for c in codes[lo:hi])
    return " ".join("-" + s for s in text.split("-") if s) if text.startswith("-") else text


def device_checkin_times(log: EventLog, device: int) -> np.ndarray:
    """Times (s) at which `device` checked in: what a per-device dashboard shows about one user."""
    ids, t, codes = _events(log, device)
    lo, hi = np.searchsorted(ids, [device, device + 1])
    return t[lo:hi][codes[lo:hi] == CODES.index("-")]


def infer_window(hours: np.ndarray) -> tuple[float, float]:
    """Guess a daily window (start_h, length_h) from event hours of day: the complement of the largest gap.

    This is the attack the survey warns about: check-ins happen only while the phone is idle,
    charging and on Wi-Fi, so their hours of day trace the user's sleep.
    """
    h = np.sort(np.mod(np.asarray(hours, np.float64), 24.0))
    if len(h) == 0:
        return float("nan"), 0.0
    gaps = np.diff(np.concatenate([h, h[:1] + 24.0]))
    i = int(np.argmax(gaps))
    start = h[(i + 1) % len(h)]
    return float(start), float(24.0 - gaps[i])


def aggregate_only(log: EventLog, bin_s: float, horizon_s: float, k_min: int) -> np.ndarray:
    """Mitigation: keep only the number of distinct devices checking in per time bin, no device ids.

    Bins with fewer than `k_min` distinct devices are suppressed (reported as 0), so no bin can
    describe one user.

    Args:
        log: the telemetry log.
        bin_s: width of a bin (s).
        horizon_s: the time the bins cover (s).
        k_min: bins with fewer distinct devices are suppressed.

    Returns:
        an int array of length ceil(horizon_s / bin_s).
    """
    validate.instance("log", log, EventLog, "a telemetry.EventLog")
    validate.positive("bin_s", bin_s)
    validate.positive("horizon_s", horizon_s)
    validate.integer("k_min", k_min, 1)
    ids, t, codes = log.arrays()
    sel = codes == CODES.index("-")
    nbins = int(np.ceil(horizon_s / bin_s))
    b = np.minimum((t[sel] // bin_s).astype(np.int64), nbins - 1)
    pairs = np.unique(np.stack([b, ids[sel].astype(np.int64)]), axis=1) if sel.any() else np.zeros((2, 0), np.int64)
    counts = np.bincount(pairs[0], minlength=nbins)
    return np.where(counts >= k_min, counts, 0)


ROUND_COUNTERS = (  # (field, dtype): one array per field, one entry per round
    ("round", np.int64), ("open_s", np.float64), ("close_s", np.float64), ("end_s", np.float64),
    ("checkins", np.int64), ("rejected_no_plan", np.int64), ("steering", str), ("version", np.int64),
    ("selected", np.int64), ("rejected", np.int64), ("dropped", np.int64), ("lost", np.int64),
    ("accepted", np.int64), ("late", np.int64), ("recycled", np.int64), ("committed", bool), ("reason", str),
    ("bytes_down", np.int64), ("bytes_up", np.int64), ("selection_s", np.float64),
    ("configuration_s", np.float64), ("reporting_s", np.float64), ("wasted_compute_s", np.float64),
    ("messages", np.int64), ("resume_s", np.float64),
)

RoundRecord = dataclasses.make_dataclass(
    "RoundRecord", [(name, {np.int64: int, np.float64: float}.get(dtype, dtype)) for name, dtype in ROUND_COUNTERS],
    frozen=True)
RoundRecord.__module__ = __name__
RoundRecord.__doc__ = """One round's counters, built once: the fields of `ROUND_COUNTERS` (a row of `RoundCounters`;
each field is documented there)."""


@dataclasses.dataclass(frozen=True)
class RoundCounters:
    """Per-round counters as frozen columns: one read-only NumPy array per field, indexed by round.

    Built once at the end of a run (`from_rows`); `column(name)` is the array of field `name`.
    """

    round: np.ndarray  # round index
    open_s: np.ndarray  # when its selection opened (s)
    close_s: np.ndarray  # when its selection closed (s)
    end_s: np.ndarray  # when reporting closed (s)
    checkins: np.ndarray  # devices that checked in during the round
    rejected_no_plan: np.ndarray  # ... of which rejected for lack of a plan for their runtime
    steering: np.ndarray  # pace-steering mode in force
    version: np.ndarray  # model version the round trained on
    selected: np.ndarray  # devices the Selectors kept
    rejected: np.ndarray  # devices told to come back later
    dropped: np.ndarray  # selected devices that dropped out
    lost: np.ndarray  # updates lost to an actor crash
    accepted: np.ndarray  # updates in the round's aggregate
    late: np.ndarray  # uploads that came after reporting closed
    recycled: np.ndarray  # late updates of earlier rounds applied in this one
    committed: np.ndarray  # bool: the round committed
    reason: np.ndarray  # "committed", or why it did not
    bytes_down: np.ndarray  # plan + checkpoint bytes sent to devices
    bytes_up: np.ndarray  # update bytes the server kept (accepted, and late ones recycled)
    selection_s: np.ndarray  # selection's duration (s)
    configuration_s: np.ndarray  # median download time of the selected devices (s)
    reporting_s: np.ndarray  # reporting's duration (s)
    wasted_compute_s: np.ndarray  # device training time whose update was thrown away (s)
    messages: np.ndarray  # actor messages
    resume_s: np.ndarray  # earliest time the next round's selection may close

    def __post_init__(self):
        for name, _ in ROUND_COUNTERS:
            getattr(self, name).flags.writeable = False

    @classmethod
    def from_rows(cls, rows) -> RoundCounters:
        """Columns from per-round records (`RoundRecord`s, or mappings with the fields of `ROUND_COUNTERS`)."""
        rows = [r if isinstance(r, dict) else vars(r) for r in rows]
        return cls(**{name: np.array([r[name] for r in rows], dtype) if rows else np.zeros(0, dtype)
                      for name, dtype in ROUND_COUNTERS})

    def column(self, name: str) -> np.ndarray:
        if name not in self.__dataclass_fields__:
            raise ValueError(f"column must be one of {[n for n, _ in ROUND_COUNTERS]}, got {name!r}")
        return getattr(self, name)

    def row(self, i: int) -> dict:
        """Round `i`'s counters as a dict of Python scalars (for printing)."""
        return {name: getattr(self, name)[i].item() for name, _ in ROUND_COUNTERS}

    def __len__(self) -> int:
        return len(self.round)
