"""A simulated worker's compute executor: which op runs when, given when each parameter arrived.

Numba kernels over the graph's CSR arrays (`ptr`, `idx`: successors; `pptr`, `pidx`: predecessors).
`run_dynamic` list-schedules ops earliest-ready first on `slots` parallel slots (ties: smaller node
id); `run_in_order` runs them strictly in program (topological) order, so no op overtakes a blocked
one; `run_all` runs either over every iteration and worker. Each writes an op's `start` and `finish`
times in place (compute-op index = node id - n_recv); `free0` is when the worker's slots first free up.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _before(key_a, id_a, key_b, id_b):
    """Heap order: earlier ready time first, then smaller node id."""
    return key_a < key_b or (key_a == key_b and id_a < id_b)


@numba.njit(cache=True)
def _heap_push(keys, ids, size, key, node):
    i = size
    keys[i] = key
    ids[i] = node
    while i > 0:
        parent = (i - 1) // 2
        if _before(keys[parent], ids[parent], keys[i], ids[i]):
            break
        keys[parent], keys[i] = keys[i], keys[parent]
        ids[parent], ids[i] = ids[i], ids[parent]
        i = parent
    return size + 1


@numba.njit(cache=True)
def _heap_pop(keys, ids, size):
    key, node = keys[0], ids[0]
    size -= 1
    keys[0], ids[0] = keys[size], ids[size]
    i = 0
    while True:
        left, right, small = 2 * i + 1, 2 * i + 2, i
        if left < size and _before(keys[left], ids[left], keys[small], ids[small]):
            small = left
        if right < size and _before(keys[right], ids[right], keys[small], ids[small]):
            small = right
        if small == i:
            break
        keys[small], keys[i] = keys[i], keys[small]
        ids[small], ids[i] = ids[i], ids[small]
        i = small
    return key, node, size


@numba.njit(cache=True, inline="always")
def _free_slot(free):
    """The compute slot that frees up first (lowest index on ties)."""
    m = 0
    for j in range(1, free.size):
        if free[j] < free[m]:
            m = j
    return m


@numba.njit(cache=True)
def run_dynamic(arrival, op_time, n_recv, indeg, ptr, idx, slots, free0, start, finish) -> None:
    """List-schedule one worker's compute ops, earliest-ready first, given recv arrival times.

    Args:
        arrival: (n_recv,) s, when each recv arrived.
        op_time: (n_compute,) s per compute op.
        n_recv: recvs in the graph (node ids below it are recvs).
        indeg: (n_nodes,) int64 predecessors per node.
        ptr: (n_nodes + 1,) CSR offsets of the successors.
        idx: successor node ids.
        slots: ops the worker runs at once.
        free0: s, when the slots first free up.
        start: (n_compute,) s, written: when each op starts.
        finish: (n_compute,) s, written: when each op finishes.
    """
    n = indeg.size
    remaining = indeg.copy()
    ready = np.zeros(n)
    free = np.full(slots, free0)
    keys = np.empty(n)
    ids = np.empty(n, dtype=np.int64)
    size = 0
    for r in range(n_recv):
        for k in range(ptr[r], ptr[r + 1]):
            s = idx[k]
            ready[s] = max(ready[s], arrival[r])
            remaining[s] -= 1
            if remaining[s] == 0:
                size = _heap_push(keys, ids, size, ready[s], s)
    while size > 0:
        key, v, size = _heap_pop(keys, ids, size)
        m = _free_slot(free)
        t0 = max(free[m], key)
        t1 = t0 + op_time[v - n_recv]
        free[m] = t1
        start[v - n_recv] = t0
        finish[v - n_recv] = t1
        for k in range(ptr[v], ptr[v + 1]):
            s = idx[k]
            ready[s] = max(ready[s], t1)
            remaining[s] -= 1
            if remaining[s] == 0:
                size = _heap_push(keys, ids, size, ready[s], s)


@numba.njit(cache=True)
def run_in_order(arrival, op_time, n_recv, topo, pptr, pidx, slots, free0, start, finish) -> None:
    """Run compute ops strictly in program (topological) order: no op overtakes a blocked one.

    Args:
        arrival: (n_recv,) s, when each recv arrived.
        op_time: (n_compute,) s per compute op.
        n_recv: recvs in the graph (node ids below it are recvs).
        topo: (n_nodes,) node ids in program order.
        pptr: (n_nodes + 1,) CSR offsets of the predecessors.
        pidx: predecessor node ids.
        slots: ops the worker runs at once.
        free0: s, when the slots first free up.
        start: (n_compute,) s, written: when each op starts.
        finish: (n_compute,) s, written: when each op finishes.
    """
    free = np.full(slots, free0)
    last_start = free0
    for v in topo:
        if v < n_recv:
            continue
        ready = 0.0
        for k in range(pptr[v], pptr[v + 1]):
            p = pidx[k]
            ready = max(ready, arrival[p] if p < n_recv else finish[p - n_recv])
        m = _free_slot(free)
        t0 = max(free[m], ready, last_start)
        start[v - n_recv] = t0
        finish[v - n_recv] = t0 + op_time[v - n_recv]
        free[m] = t0 + op_time[v - n_recv]
        last_start = t0


@numba.njit(cache=True)
def run_one(arrival, op_time, n_recv, indeg, ptr, idx, topo, pptr, pidx, slots, in_order, free0, start,
            finish) -> None:
    """One worker's iteration with the chosen executor: `run_in_order` if `in_order`, else `run_dynamic`;
    the other arguments are theirs (`indeg`, `ptr`, `idx` for the one, `topo`, `pptr`, `pidx` for the other)."""
    if in_order:
        run_in_order(arrival, op_time, n_recv, topo, pptr, pidx, slots, free0, start, finish)
    else:
        run_dynamic(arrival, op_time, n_recv, indeg, ptr, idx, slots, free0, start, finish)


@numba.njit(cache=True)
def run_all(arrival, op_time, n_recv, indeg, ptr, idx, topo, pptr, pidx, slots, in_order, pipelined,
            start, finish) -> None:
    """Every iteration and worker of `arrival` (I, W, n_recv) through `run_one`, writing `start` and `finish`
    (I, W, n_compute); `op_time` (I, W, n_compute) holds each iteration's and worker's op times (compute
    noise differs per worker and iteration). With `pipelined` an iteration's ops start no earlier than the
    worker's previous iteration's last op finished, else every iteration at time 0. The other arguments
    are `run_one`'s."""
    n_iter, n_workers, _ = arrival.shape
    for w in range(n_workers):
        free0 = 0.0
        for i in range(n_iter):
            run_one(arrival[i, w], op_time[i, w], n_recv, indeg, ptr, idx, topo, pptr, pidx, slots, in_order,
                    free0, start[i, w], finish[i, w])
            if pipelined:
                free0 = finish[i, w].max()
