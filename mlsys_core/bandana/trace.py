"""A trace of embedding lookups, its file formats (CSV / NPZ / libCacheSim oracleGeneral) and loaders.

A `Trace` stores lookups in time order, grouped by request: `request_ptr` (num_requests + 1,) gives
each request's slice of the per-lookup arrays `table` (int32 index into `tables`) and `vector` (int64
id inside its table). A *key* is a vector's global id: the table's offset plus its vector id.
`time_us` (num_requests,) is each request's arrival time in microseconds, non-decreasing, or None for
a trace without timestamps (the synthetic workload's); the queueing model replays it
(`queueing.TraceArrivals`).

Bad input raises `TypeError` (wrong kind) or `ValueError` (out of range) naming the parameter or
column, the value and what is allowed; a loader's message starts with the file and says where in it
the value sits: the line (CSV), the lookup (NPZ: the index into its arrays) or the record (oracleGeneral).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import os
import zipfile
import zlib

import numpy as np

from mlsys_core import validate
from mlsys_core.bandana.tables import EmbeddingTable

# libCacheSim's oracleGeneral record: uint32 clock_time, uint64 obj_id, uint32 obj_size,
# int64 next_access_vtime (-1: never again), packed little-endian, 24 bytes.
ORACLE_GENERAL = np.dtype([("clock_time", "<u4"), ("obj_id", "<u8"), ("obj_size", "<u4"), ("next_access_vtime", "<i8")])
assert ORACLE_GENERAL.itemsize == 24
UINT32_MAX = 2**32 - 1


def _lookup(i: int) -> str:
    return f"lookup {i}"


@dataclasses.dataclass(frozen=True, eq=False)
class Trace:
    """Lookups grouped by request in time order. Build with `Trace.from_lookups` (it validates)."""

    tables: tuple  # (EmbeddingTable, ...) in key order
    request_ptr: np.ndarray  # (num_requests + 1,) where each request's lookups start
    table: np.ndarray  # (num_lookups,) int32 index into `tables` of each lookup
    vector: np.ndarray  # (num_lookups,) int64 vector id inside its table
    time_us: np.ndarray | None = None  # (num_requests,) arrival times (us), or None

    @staticmethod
    def from_lookups(tables, request_id, table, vector, time_us=None) -> Trace:
        """A trace from per-lookup arrays of whole numbers, checked.

        Args:
            tables: (EmbeddingTable, ...) with unique names, in key order.
            request_id: (num_lookups,) each lookup's request, non-decreasing (time order).
            table: (num_lookups,) each lookup's index into `tables`.
            vector: (num_lookups,) each lookup's vector id inside its table.
            time_us: (num_requests,) one arrival time per request (finite, non-decreasing, in
                microseconds), or None.
        """
        return _build(_checked_tables(tables), request_id, table, vector, time_us, _lookup)

    def with_times(self, time_us) -> Trace:
        """This trace with arrival times `time_us` (one per request; None drops them)."""
        return Trace.from_lookups(self.tables, self.request_ids(), self.table, self.vector, time_us)

    @property
    def num_requests(self) -> int:
        """Requests of the trace."""
        return self.request_ptr.size - 1

    @property
    def num_lookups(self) -> int:
        """Lookups of the trace."""
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
        """(num_lookups,) int64 the request of each lookup, 0 to num_requests - 1."""
        return np.repeat(np.arange(self.num_requests, dtype=np.int64), np.diff(self.request_ptr))

    def table_index(self, name: str) -> int:
        """The index into `tables` of the table called `name`."""
        names = [t.name for t in self.tables]
        if validate.string("name", name) not in names:
            raise ValueError(f"unknown table {name!r}: the trace has tables {names}")
        return names.index(name)

    def _times_of(self, request_ids: np.ndarray) -> np.ndarray | None:
        """The arrival times of the requests that `request_ids` (non-decreasing, per lookup) keep."""
        return None if self.time_us is None else self.time_us[request_ids[_request_starts(request_ids)]]

    def select(self, mask) -> Trace:
        """The lookups where `mask` (one bool per lookup) holds; requests left empty vanish, the others
        keep their times."""
        mask = _lookup_mask(mask, self.num_lookups)
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
        validate.number("past_fraction", past_fraction, 0.0, 1.0, low_open=True, high_open=True)
        cut = int(self.request_ptr[int(round(self.num_requests * past_fraction))])
        if cut in (0, self.num_lookups):
            raise ValueError(f"past_fraction {past_fraction} leaves one side empty ({self.num_requests} requests)")
        rid = self.request_ids()
        return (
            Trace.from_lookups(self.tables, rid[:cut], self.table[:cut], self.vector[:cut], self._times_of(rid[:cut])),
            Trace.from_lookups(self.tables, rid[cut:], self.table[cut:], self.vector[cut:], self._times_of(rid[cut:])),
        )


def _checked_tables(tables) -> tuple:
    """`tables` as a non-empty tuple of EmbeddingTable with distinct names."""

    try:
        tables = tuple(tables)
    except TypeError:
        raise TypeError(f"tables must be a sequence of EmbeddingTable, got {tables!r}") from None
    if not tables:
        raise ValueError("tables must hold at least one EmbeddingTable, got none")
    for i, t in enumerate(tables):
        validate.instance(f"tables[{i}]", t, EmbeddingTable)
    names = [t.name for t in tables]
    if len(set(names)) != len(names):
        raise ValueError(f"table names must be distinct, got {names}")
    return tables


def _build(tables: tuple, request_id, table, vector, time_us, at) -> Trace:
    """A checked `Trace`; `at(i)` names lookup i in errors (its line in a file, say)."""
    request_id = validate.integers("request_id", request_id)
    table = validate.integers("table", table, 0, len(tables) - 1).astype(np.int32)
    vector = validate.integers("vector", vector)
    if request_id.size == 0:
        raise ValueError("the trace is empty: a trace needs at least one lookup")
    if not request_id.shape == table.shape == vector.shape:
        raise ValueError(
            f"request_id, table and vector must have one length, got shapes "
            f"{request_id.shape}, {table.shape}, {vector.shape}"
        )
    back = np.flatnonzero(np.diff(request_id) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise ValueError(f"{at(i)}: request_id {request_id[i]} follows {request_id[i - 1]}: request ids must be "
                         f"in time order (non-decreasing)")
    _check_vectors(tables, table, vector, at)
    starts = _request_starts(request_id)
    request_ptr = np.append(starts, request_id.size).astype(np.int64)
    if time_us is not None:
        time_us = _checked_times(time_us, request_id, starts, at)
    return Trace(tables, request_ptr, table, vector, time_us)


def _check_vectors(tables: tuple, table: np.ndarray, vector: np.ndarray, at) -> None:
    """ValueError naming the first lookup whose vector id is outside its table."""
    sizes = np.array([t.num_vectors for t in tables], dtype=np.int64)
    out = (vector < 0) | (vector >= sizes[table])
    if out.any():
        i = int(np.argmax(out))
        t = tables[table[i]]
        raise ValueError(f"{at(i)}: vector_id {vector[i]} is outside table {t.name!r} (ids 0..{t.num_vectors - 1})")


def _lookup_mask(mask, num_lookups: int) -> np.ndarray:
    """`mask` as a (num_lookups,) bool array."""
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise TypeError(f"mask must be an array of bools (one per lookup), got dtype {mask.dtype}")
    if mask.shape != (num_lookups,):
        raise ValueError(f"mask must hold one bool per lookup, shape ({num_lookups},), got shape {mask.shape}")
    return mask


def _request_starts(request_id: np.ndarray) -> np.ndarray:
    """Index of each request's first lookup (a request is a run of equal ids)."""
    first = np.ones(request_id.size, dtype=bool)
    first[1:] = request_id[1:] != request_id[:-1]
    return np.flatnonzero(first)


def _checked_times(time_us, request_id: np.ndarray, starts: np.ndarray, at) -> np.ndarray:
    """`time_us` as float64 (num_requests,), finite and non-decreasing; errors name the request, its id
    and (`at`) its first lookup."""
    arr = np.asarray(time_us)
    ids = request_id[starts]
    if arr.shape != ids.shape:
        raise ValueError(f"time_us must hold one arrival time per request ({ids.size} requests), "
                         f"got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        i = int(np.argmin(np.isfinite(arr)))
        raise ValueError(f"{at(starts[i])}: time_us of request {i} (id {ids[i]}) is {arr[i]}: "
                         f"arrival times must be finite")
    time_us = validate.reals("time_us", arr)
    back = np.flatnonzero(np.diff(time_us) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise ValueError(f"{at(starts[i])}: time_us goes back in time at request {i} (id {ids[i]}): "
                         f"{time_us[i]:g} us after {time_us[i - 1]:g} us; arrival times must be non-decreasing")
    return time_us


def _request_times(request_id: np.ndarray, time_us: np.ndarray, at) -> np.ndarray:
    """A file's per-lookup times as one time per request: finite, and shared by all lookups of a request."""
    bad = ~np.isfinite(time_us)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{at(i)}: time_us is {time_us[i]}: arrival times must be finite")
    starts = _request_starts(request_id)
    first = np.repeat(time_us[starts], np.diff(np.append(starts, request_id.size)))
    differ = first != time_us
    if differ.any():
        i = int(np.argmax(differ))
        raise ValueError(f"{at(i)}: request id {request_id[i]} has lookups at different times "
                         f"({first[i]:g} and {time_us[i]:g} us): a request arrives at one time")
    return time_us[starts]


def save_trace(trace: Trace, path) -> None:
    """Write `trace` as CSV (`request_id,table,vector_id`, table by name, plus `time_us` when the trace
    has times) or NPZ (those arrays, one entry per lookup), by the file suffix."""
    validate.instance("trace", trace, Trace)
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


@contextlib.contextmanager
def _naming(path: str):
    """Every TypeError or ValueError raised inside starts with `path`: a loader's errors name the file."""
    try:
        yield
    except TypeError as e:
        raise TypeError(f"{path}: {e}") from None
    except (ValueError, csv.Error) as e:
        raise ValueError(f"{path}: {e}") from None


def load_trace(path, tables) -> Trace:
    """Read a trace file: CSV with header `request_id,table,vector_id` or `request_id,table,vector_id,time_us`,
    or NPZ with those arrays (`time_us` optional), one entry per lookup.

    `table` holds table names (or, in NPZ, integer indices into `tables`); ids are whole numbers
    (a CSV row per line). Rows must be in time order; all lookups of a request carry its one arrival
    time. An empty trace, a row of the wrong length, an id that is not a whole number, an unknown
    table, a vector id outside its table, or times that are not finite numbers, differ within a
    request or go back raise ValueError (TypeError for an NPZ array of the wrong kind) naming the
    file and the line (CSV) or lookup (NPZ).
    """
    path = os.fspath(path)
    tables = _checked_tables(tables)
    if path.endswith(".npz"):
        read, at = _read_npz, _lookup
    elif path.endswith(".csv"):
        read, at = _read_csv, _csv_line
    else:
        raise ValueError(f"trace file must end in .csv or .npz, got {path!r}")
    with _naming(path):
        rid, tab, vec, times = read(path)
        if times is not None:
            times = _request_times(rid, times, at)
        return _build(tables, rid, _table_indices(tab, tables, at), vec, times, at)


def _csv_line(i: int) -> str:
    """The line of data row i (after the header; one row per line)."""
    return f"line {i + 2}"


def _read_csv(path: str) -> tuple:
    """(request_id, table, vector_id, time_us or None) columns of a CSV trace, parsed."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header not in (list(COLUMNS), [*COLUMNS, TIME_COLUMN]):
            raise ValueError(f"CSV header must be {','.join(COLUMNS)} (optionally ,{TIME_COLUMN}), got {header}")
        rows = list(reader)
    if not rows:
        raise ValueError("the trace is empty")
    wrong = next((i for i, row in enumerate(rows) if len(row) != len(header)), None)
    if wrong is not None:
        raise ValueError(f"{_csv_line(wrong)}: {len(rows[wrong])} fields, the header has {len(header)} "
                         f"({','.join(header)})")
    cols = np.array(rows, dtype=str)
    times = _parsed(cols[:, 3], TIME_COLUMN, np.float64) if len(header) == 4 else None
    return _parsed(cols[:, 0], "request_id", np.int64), cols[:, 1], _parsed(cols[:, 2], "vector_id", np.int64), times


def _parsed(column: np.ndarray, name: str, dtype: type) -> np.ndarray:
    """A CSV column's text as `dtype` (np.int64: whole numbers, np.float64: numbers); ValueError naming
    the line of the first cell that is not one."""
    try:
        return column.astype(dtype)
    except (ValueError, OverflowError):
        i = next(i for i, text in enumerate(column) if not _parses(dtype, text))
        what = "whole numbers" if dtype is np.int64 else "numbers"
        raise ValueError(f"{_csv_line(i)}: {name} must hold {what}, got {str(column[i])!r}") from None


def _parses(dtype: type, text: str) -> bool:
    try:
        dtype(text)
    except (ValueError, OverflowError):
        return False
    return True


def _read_npz(path: str) -> tuple:
    """(request_id, table, vector_id, time_us or None) arrays of an NPZ trace, each checked for its kind."""
    arrays = _npz_arrays(path)
    missing = set(COLUMNS) - set(arrays)
    if missing:
        raise ValueError(f"NPZ trace lacks arrays {sorted(missing)}")
    rid = validate.integers("request_id", arrays["request_id"])
    times = arrays.get(TIME_COLUMN)
    if times is not None:
        times = validate.reals(TIME_COLUMN, times, ndim=1)
        if times.shape != rid.shape:
            raise ValueError(f"{TIME_COLUMN} must hold one time per lookup ({rid.size}), got shape {times.shape}")
    return rid, arrays["table"], validate.integers("vector_id", arrays["vector_id"]), times


def _npz_arrays(path: str) -> dict:
    """The trace's arrays in an NPZ archive; ValueError saying why a file is not a readable one."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (EOFError, ValueError, zipfile.BadZipFile) as e:
        raise ValueError(f"not a readable NPZ archive ({type(e).__name__}: {e})") from None
    if isinstance(archive, np.ndarray):
        raise ValueError("not an NPZ archive: it holds one bare array (.npy)")
    with archive:
        return {name: _npz_array(archive, name) for name in archive.files if name in (*COLUMNS, TIME_COLUMN)}


def _npz_array(archive, name: str) -> np.ndarray:
    try:
        return archive[name]
    except (EOFError, ValueError, zipfile.BadZipFile, zlib.error) as e:
        raise ValueError(f"array {name!r} cannot be read ({type(e).__name__}: {e})") from None


def _table_indices(tab: np.ndarray, tables: tuple, at) -> np.ndarray:
    """A file's table column, names or indices into `tables`, as indices; ValueError naming the first
    lookup of an unknown name."""
    if tab.dtype.kind not in "US":
        return validate.integers("table", tab)
    names = [t.name for t in tables]
    uniq, inv = np.unique(tab.astype(str), return_inverse=True)
    known = np.isin(uniq, names)
    if not known.all():
        i = int(np.argmax(~known[inv]))
        raise ValueError(f"{at(i)}: unknown table {str(uniq[inv[i]])!r}; known tables are {names}")
    return np.array([names.index(u) for u in uniq], dtype=np.int32)[inv]


def keys_array(name: str, keys) -> np.ndarray:
    """`keys` checked as a 1-D array of non-negative whole numbers: an unsigned integer array as given
    (oracleGeneral ids use all 64 bits), anything else as int64 (`validate.integers`)."""
    if isinstance(keys, np.ndarray) and keys.dtype.kind == "u" and keys.ndim == 1:
        return keys
    return validate.integers(name, keys, 0)


def next_access(keys) -> np.ndarray:
    """(n,) index of the next access to the same key, -1 if none (vectorised)."""
    keys = keys_array("keys", keys)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    nxt = np.full(keys.size, -1, dtype=np.int64)
    same = sorted_keys[1:] == sorted_keys[:-1]
    nxt[order[:-1][same]] = order[1:][same]
    return nxt


def write_oracle_general(path, keys, obj_size: int = 1) -> None:
    """Write `keys` (whole numbers >= 0) as a libCacheSim oracleGeneral binary trace, one request per key.

    clock_time is the request index; obj_size must be in [1, 2**32 - 1] (a uint32 field, and
    libCacheSim skips size-0 requests).
    """
    keys = keys_array("keys", keys)
    if keys.size == 0:
        raise ValueError("keys is empty: the trace has nothing to write")
    obj_size = validate.integer("obj_size", obj_size, 1)
    if obj_size > UINT32_MAX:
        raise ValueError(f"obj_size must fit the record's uint32 field (<= {UINT32_MAX}), got {obj_size}")
    rec = np.empty(keys.size, dtype=ORACLE_GENERAL)
    rec["clock_time"] = np.arange(keys.size, dtype=np.uint64).astype(np.uint32)
    rec["obj_id"] = keys.astype(np.uint64)
    rec["obj_size"] = obj_size
    rec["next_access_vtime"] = next_access(keys)
    rec.tofile(os.fspath(path))


def _oracle_records(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(index in the file, record) of the records of an oracleGeneral file, but those of obj_size 0:
    libCacheSim's reader skips them (its default, `ignore_size_zero_req`), and so do we."""
    size = os.path.getsize(path)
    if size == 0:
        raise ValueError("the trace is empty (0 bytes)")
    if size % ORACLE_GENERAL.itemsize:
        raise ValueError(f"{size} bytes is not a whole number of {ORACLE_GENERAL.itemsize}-byte records")
    rec = np.fromfile(path, dtype=ORACLE_GENERAL)
    kept = np.flatnonzero(rec["obj_size"] > 0)
    if kept.size == 0:
        raise ValueError(f"the trace is empty: all {rec.size} records have obj_size 0, which libCacheSim skips")
    return kept, rec[kept]


def load_oracle_general(path, tables) -> Trace:
    """A libCacheSim oracleGeneral file as a `Trace`: consecutive records of one clock_time form one
    request, arriving at that clock_time (libCacheSim's unit, seconds: time_us = 1e6 x clock_time);
    obj_id is a global key, split over `tables` in order (table i holds keys
    [offset_i, offset_i + num_vectors_i)). Records of obj_size 0 are skipped, as libCacheSim's reader
    skips them. Raises ValueError naming the file and the first record whose key is outside the
    tables, or whose clock_time goes back."""
    path = os.fspath(path)
    tables = _checked_tables(tables)
    with _naming(path):
        kept, rec = _oracle_records(path)
        offsets = np.concatenate([[0], np.cumsum([t.num_vectors for t in tables])]).astype(np.int64)
        outside = rec["obj_id"] >= np.uint64(offsets[-1])
        if outside.any():
            i = int(np.argmax(outside))
            raise ValueError(f"key {int(rec['obj_id'][i])} at record {kept[i]} is outside the tables' "
                             f"{int(offsets[-1])} keys")
        keys = rec["obj_id"].astype(np.int64)
        clock = rec["clock_time"].astype(np.int64)
        request = np.concatenate([[0], np.cumsum(clock[1:] != clock[:-1])])
        table = np.searchsorted(offsets, keys, side="right") - 1
        starts = _request_starts(request)
        return _build(tables, request, table, keys - offsets[table], clock[starts] * 1e6, lambda i: f"record {kept[i]}")


def read_oracle_general(path) -> np.ndarray:
    """The obj_id column (uint64) of an oracleGeneral binary trace, records of obj_size 0 skipped (as
    libCacheSim's reader skips them)."""
    path = os.fspath(path)
    with _naming(path):
        return _oracle_records(path)[1]["obj_id"]
