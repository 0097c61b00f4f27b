"""A trace of embedding lookups, its file formats (CSV / NPZ / libCacheSim oracleGeneral) and loaders.

A `Trace` stores lookups in time order, grouped by request: `request_ptr` (num_requests + 1,) gives
each request's slice of the per-lookup arrays `table` (int32 index into `tables`) and `vector` (int64
id inside its table). A *key* is a vector's global id: the table's offset plus its vector id.
`time_us` (num_requests,) is each request's arrival time in microseconds, non-decreasing, or None for
a trace without timestamps (the synthetic workload's); the queueing model replays it
(`queueing.TraceArrivals`).
"""

from __future__ import annotations

import csv
import dataclasses
import os

import numpy as np

# libCacheSim's oracleGeneral record: uint32 clock_time, uint64 obj_id, uint32 obj_size,
# int64 next_access_vtime (-1: never again), packed little-endian, 24 bytes.
ORACLE_GENERAL = np.dtype([("clock_time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"), ("next_access_vtime", "<i8")])
assert ORACLE_GENERAL.itemsize == 24


@dataclasses.dataclass(frozen=True, eq=False)
class Trace:
    """Lookups grouped by request in time order. Build with `Trace.from_lookups` (it validates)."""

    tables: tuple
    request_ptr: np.ndarray
    table: np.ndarray
    vector: np.ndarray
    time_us: np.ndarray | None = None

    @staticmethod
    def from_lookups(tables, request_id, table, vector, time_us=None) -> Trace:
        """From per-lookup arrays; `request_id` must be non-decreasing (time order). `time_us`, if
        given, holds one arrival time per request (finite, non-decreasing, in microseconds)."""
        tables = tuple(tables)
        request_id = np.asarray(request_id, dtype=np.int64)
        table = np.asarray(table, dtype=np.int32)
        vector = np.asarray(vector, dtype=np.int64)
        if request_id.size == 0:
            raise ValueError("the trace is empty: a trace needs at least one lookup")
        if not (request_id.shape == table.shape == vector.shape) or request_id.ndim != 1:
            raise ValueError(
                f"request_id, table and vector must be 1-D of one length, got shapes "
                f"{request_id.shape}, {table.shape}, {vector.shape}"
            )
        if np.any(np.diff(request_id) < 0):
            i = int(np.argmax(np.diff(request_id) < 0)) + 1
            raise ValueError(f"request ids must be in time order (non-decreasing); lookup {i} goes back")
        if table.min() < 0 or table.max() >= len(tables):
            bad = int(table[(table < 0) | (table >= len(tables))][0])
            raise ValueError(f"unknown table index {bad}: the trace has {len(tables)} tables")
        sizes = np.array([t.num_vectors for t in tables], dtype=np.int64)
        out = (vector < 0) | (vector >= sizes[table])
        if out.any():
            i = int(np.argmax(out))
            raise ValueError(
                f"vector id {int(vector[i])} is outside table {tables[table[i]].name!r} "
                f"(0..{sizes[table[i]] - 1}) at lookup {i}"
            )
        starts = _request_starts(request_id)
        request_ptr = np.append(starts, request_id.size).astype(np.int64)
        if time_us is not None:
            time_us = _checked_times(time_us, request_id[starts])
        return Trace(tables, request_ptr, table, vector, time_us)

    def with_times(self, time_us) -> Trace:
        """This trace with arrival times `time_us` (one per request; None drops them)."""
        return Trace.from_lookups(self.tables, self.request_ids(), self.table, self.vector, time_us)

    @property
    def num_requests(self) -> int:
        return self.request_ptr.size - 1

    @property
    def num_lookups(self) -> int:
        return self.vector.size

    @property
    def table_offsets(self) -> np.ndarray:
        """(len(tables) + 1,) first global key of each table."""
        return np.concatenate([[0], np.cumsum([t.num_vectors for t in self.tables])]).astype(np.int64)

    @property
    def keys(self) -> np.ndarray:
        """(num_lookups,) int64 global key of each lookup."""
        return self.table_offsets[self.table] + self.vector

    def request_ids(self) -> np.ndarray:
        return np.repeat(np.arange(self.num_requests, dtype=np.int64), np.diff(self.request_ptr))

    def table_index(self, name: str) -> int:
        names = [t.name for t in self.tables]
        if name not in names:
            raise ValueError(f"unknown table {name!r}: the trace has tables {names}")
        return names.index(name)

    def _times_of(self, request_ids: np.ndarray) -> np.ndarray | None:
        """The arrival times of the requests that `request_ids` (non-decreasing, per lookup) keep."""
        return None if self.time_us is None else self.time_us[request_ids[_request_starts(request_ids)]]

    def select(self, mask: np.ndarray) -> Trace:
        """The lookups where `mask` holds (requests left empty vanish; the others keep their times)."""
        rid = self.request_ids()[mask]
        return Trace.from_lookups(self.tables, rid, self.table[mask], self.vector[mask], self._times_of(rid))

    def only_table(self, name: str) -> Trace:
        """The lookups of one table, as a one-table trace."""
        i = self.table_index(name)
        mask = self.table == i
        if not mask.any():
            raise ValueError(f"table {name!r} has no lookups in this trace")
        rid = self.request_ids()[mask]
        return Trace.from_lookups((self.tables[i],), rid, np.zeros(rid.size), self.vector[mask], self._times_of(rid))

    def split(self, past_fraction: float = 0.5) -> tuple[Trace, Trace]:
        """(past, future): the first `past_fraction` of requests and the rest (learn on past, test on future)."""
        if not 0 < past_fraction < 1:
            raise ValueError(f"past_fraction must be in (0, 1), got {past_fraction!r}")
        cut = int(self.request_ptr[int(round(self.num_requests * past_fraction))])
        if cut in (0, self.num_lookups):
            raise ValueError(f"past_fraction {past_fraction} leaves one side empty ({self.num_requests} requests)")
        rid = self.request_ids()
        return (
            Trace.from_lookups(self.tables, rid[:cut], self.table[:cut], self.vector[:cut], self._times_of(rid[:cut])),
            Trace.from_lookups(self.tables, rid[cut:], self.table[cut:], self.vector[cut:], self._times_of(rid[cut:])),
        )


def _request_starts(request_id: np.ndarray) -> np.ndarray:
    """Index of each request's first lookup (a request is a run of equal ids)."""
    first = np.ones(request_id.size, dtype=bool)
    first[1:] = request_id[1:] != request_id[:-1]
    return np.flatnonzero(first)


def _checked_times(time_us, ids: np.ndarray) -> np.ndarray:
    """`time_us` as float64 (num_requests,), finite and non-decreasing; `ids` name the requests in errors."""
    time_us = np.asarray(time_us, dtype=np.float64)
    if time_us.shape != ids.shape:
        raise ValueError(f"time_us must hold one arrival time per request ({ids.size} requests), "
                         f"got shape {time_us.shape}")
    bad = ~np.isfinite(time_us)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"time_us of request {i} (id {int(ids[i])}) is {time_us[i]}: arrival times must be finite")
    back = np.diff(time_us) < 0
    if back.any():
        i = int(np.argmax(back)) + 1
        raise ValueError(f"time_us goes back in time at request {i} (id {int(ids[i])}): {time_us[i]:g} us after "
                         f"{time_us[i - 1]:g} us; arrival times must be non-decreasing")
    return time_us


def _lookup_times_to_requests(request_id: np.ndarray, time_us: np.ndarray, path: str) -> np.ndarray:
    """Per-lookup times (a file's column) as one time per request; every lookup of a request must share it."""
    starts = _request_starts(request_id)
    first = np.repeat(time_us[starts], np.diff(np.append(starts, request_id.size)))
    differ = (first != time_us) & ~(np.isnan(first) & np.isnan(time_us))
    if differ.any():
        i = int(np.argmax(differ))
        raise ValueError(f"{path}: request id {int(request_id[i])} has lookups at different times "
                         f"({first[i]:g} and {time_us[i]:g} us): a request arrives at one time")
    return time_us[starts]


def save_trace(trace: Trace, path) -> None:
    """Write `trace` as CSV (`request_id,table,vector_id`, table by name, plus `time_us` when the trace
    has times) or NPZ (those arrays, one entry per lookup), by the file suffix."""
    path = os.fspath(path)
    rid = trace.request_ids()
    names = np.array([t.name for t in trace.tables])[trace.table]
    columns = {"request_id": rid, "table": names, "vector_id": trace.vector}
    if trace.time_us is not None:
        columns["time_us"] = trace.time_us[rid]
    if path.endswith(".npz"):
        np.savez_compressed(path, **columns)
    elif path.endswith(".csv"):
        with open(path, "w", newline="", encoding="utf-8") as f:
            f.write(",".join(columns) + "\n")
            np.savetxt(f, np.column_stack([c.astype(str) for c in columns.values()]), fmt="%s", delimiter=",")
    else:
        raise ValueError(f"trace file must end in .csv or .npz, got {path!r}")


COLUMNS = ("request_id", "table", "vector_id")
TIME_COLUMN = "time_us"  # optional 4th column: the request's arrival time (us), on each of its lookups


def load_trace(path, tables) -> Trace:
    """Read a trace file: CSV with header `request_id,table,vector_id` or `request_id,table,vector_id,time_us`,
    or NPZ with those arrays (`time_us` optional), one entry per lookup.

    `table` holds table names (or integer indices into `tables`). Rows must be in time order; all
    lookups of a request carry its one arrival time. Raises ValueError for an empty trace, an unknown
    table, a vector id outside its table, or times that are not numbers, differ within a request or go back.
    """
    path = os.fspath(path)
    tables = tuple(tables)
    times = None
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as z:
            missing = set(COLUMNS) - set(z.files)
            if missing:
                raise ValueError(f"{path}: NPZ trace lacks arrays {sorted(missing)}")
            rid, tab, vec = z["request_id"], z["table"], z["vector_id"]
            if TIME_COLUMN in z.files:
                times = z[TIME_COLUMN]
    elif path.endswith(".csv"):
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header not in (list(COLUMNS), [*COLUMNS, TIME_COLUMN]):
                raise ValueError(f"{path}: CSV header must be {','.join(COLUMNS)} (optionally ,{TIME_COLUMN}), "
                                 f"got {header}")
            rows = list(reader)
        if not rows:
            raise ValueError(f"{path}: the trace is empty")
        cols = np.array(rows, dtype=str)
        rid, tab, vec = cols[:, 0].astype(np.int64), cols[:, 1], cols[:, 2].astype(np.int64)
        if len(header) == 4:
            times = cols[:, 3]
    else:
        raise ValueError(f"trace file must end in .csv or .npz, got {path!r}")
    if rid.size == 0:
        raise ValueError(f"{path}: the trace is empty")
    if times is not None:
        try:
            times = np.asarray(times).astype(np.float64)
        except ValueError:
            raise ValueError(f"{path}: {TIME_COLUMN} must hold numbers (microseconds)") from None
        times = _lookup_times_to_requests(rid, times, path)
    return Trace.from_lookups(tables, rid, _table_indices(tab, tables), vec, times)


def _table_indices(tab: np.ndarray, tables) -> np.ndarray:
    names = [t.name for t in tables]
    if np.issubdtype(tab.dtype, np.integer):
        return tab.astype(np.int32)
    uniq, inv = np.unique(tab.astype(str), return_inverse=True)
    for u in uniq:
        if u not in names:
            raise ValueError(f"unknown table {str(u)!r}: known tables are {names}")
    return np.array([names.index(u) for u in uniq], dtype=np.int32)[inv]


def next_access(keys: np.ndarray) -> np.ndarray:
    """(n,) index of the next access to the same key, -1 if none (vectorised)."""
    keys = np.asarray(keys)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    nxt = np.full(keys.size, -1, dtype=np.int64)
    same = sorted_keys[1:] == sorted_keys[:-1]
    nxt[order[:-1][same]] = order[1:][same]
    return nxt


def write_oracle_general(path, keys: np.ndarray, obj_size: int = 1) -> None:
    """Write `keys` as a libCacheSim oracleGeneral binary trace (one request per key, unit-size objects).

    clock_time is the request index; obj_size must be >= 1 (libCacheSim skips size-0 requests).
    """
    keys = np.asarray(keys)
    if keys.size == 0:
        raise ValueError("the trace is empty: nothing to write")
    if obj_size < 1:
        raise ValueError(f"obj_size must be >= 1 (libCacheSim skips size-0 requests), got {obj_size}")
    rec = np.empty(keys.size, dtype=ORACLE_GENERAL)
    rec["clock_time"] = np.arange(keys.size, dtype=np.uint64).astype(np.uint32)
    rec["obj_id"] = keys.astype(np.uint64)
    rec["obj_size"] = obj_size
    rec["next_access_vtime"] = next_access(keys)
    rec.tofile(os.fspath(path))


def load_oracle_general(path, tables) -> Trace:
    """A libCacheSim oracleGeneral file as a `Trace`: consecutive records of one clock_time form one
    request, arriving at that clock_time (libCacheSim's unit, seconds: time_us = 1e6 x clock_time);
    obj_id is a global key, split over `tables` in order (table i holds keys
    [offset_i, offset_i + num_vectors_i)). Raises ValueError naming the first key outside them, or a
    request whose clock_time goes back."""
    path = os.fspath(path)
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError(f"{path}: the trace is empty")
    if size % ORACLE_GENERAL.itemsize:
        raise ValueError(f"{path}: {size} bytes is not a whole number of {ORACLE_GENERAL.itemsize}-byte records")
    rec = np.fromfile(path, dtype=ORACLE_GENERAL)
    tables = tuple(tables)
    offsets = np.concatenate([[0], np.cumsum([t.num_vectors for t in tables])]).astype(np.int64)
    keys = rec["obj_id"].astype(np.int64)
    outside = (rec["obj_id"] >= offsets[-1]) | (keys < 0)
    if outside.any():
        i = int(np.argmax(outside))
        raise ValueError(f"{path}: key {int(rec['obj_id'][i])} at record {i} is outside the tables' "
                         f"{int(offsets[-1])} keys")
    clock = rec["clock_time"].astype(np.int64)
    request = np.concatenate([[0], np.cumsum(clock[1:] != clock[:-1])])
    table = np.searchsorted(offsets, keys, side="right") - 1
    starts = _request_starts(request)
    return Trace.from_lookups(tables, request, table, keys - offsets[table], clock[starts] * 1e6)


def read_oracle_general(path) -> np.ndarray:
    """The obj_id column (uint64) of an oracleGeneral binary trace."""
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError(f"{path}: the trace is empty")
    if size % ORACLE_GENERAL.itemsize:
        raise ValueError(f"{path}: {size} bytes is not a whole number of {ORACLE_GENERAL.itemsize}-byte records")
    return np.fromfile(path, dtype=ORACLE_GENERAL)["obj_id"]
