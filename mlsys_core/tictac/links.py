"""Transfers over a simulated worker's links: each server streams its recvs back to back, the card shared.

`transfers` sends one worker's recvs (or gradients) in a given order over its P flows, one per server,
each flow at its fixed full rate unless the worker's card caps the sum (then the flows moving data at
once share it equally); `credit_transfers` is ByteScheduler's credit window over pulls. Both are numba
kernels writing arrival times in place.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def transfers(seq, server, n_servers, ready, latency, data, card, free, done) -> None:
    """Send recvs `seq` (in that order) over one worker's P flows, one per server, sharing its card.

    Each server sends its recvs back to back, recv r no earlier than `ready[r]`; a transfer spends
    `latency[r]` and then `data[r]` seconds at the flow's full rate. With k flows moving data at once,
    each runs at min(1, card / k) of full rate (`card` = the card's rate in flow rates, inf: no cap),
    so shares move to the flows still sending. `free` (P,) when each flow is free, updated; `done[r]`
    the time recv r has fully arrived.

    Args:
        seq: (n,) int64 recv ids in sending order.
        server: (n_recv,) the server of each recv.
        n_servers: servers P.
        ready: (n_recv,) s, earliest start of each recv's transfer.
        latency: (n_recv,) s, each transfer's latency.
        data: (n_recv,) s, each transfer's data time at the flow's full rate.
        card: the worker card's rate in flow rates (inf: no cap).
        free: (P,) s, when each flow is free; updated.
        done: (n_recv,) s, written: when each recv fully arrived.
    """
    if card == np.inf:  # every flow at full rate: a max-plus scan per server
        for r in seq:
            p = server[r]
            t = max(free[p], ready[r]) + latency[r] + data[r]
            done[r] = t
            free[p] = t
        return
    count = np.zeros(n_servers + 1, dtype=np.int64)
    for r in seq:
        count[server[r] + 1] += 1
    qptr = np.cumsum(count)
    fill = qptr[:-1].copy()
    queue = np.empty(seq.size, dtype=np.int64)
    for r in seq:
        queue[fill[server[r]]] = r
        fill[server[r]] += 1
    head = qptr[:-1].copy()
    phase = np.full(n_servers, 3)  # 0 waiting to start, 1 latency, 2 data, 3 idle
    until = np.zeros(n_servers)  # phases 0, 1: when the phase ends
    left = np.zeros(n_servers)  # phase 2: full-rate seconds of data still to send
    now = np.inf
    for p in range(n_servers):
        if head[p] < qptr[p + 1]:
            phase[p], until[p] = 0, max(free[p], ready[queue[head[p]]])
            now = min(now, until[p])
    while True:
        moving = 0
        for p in range(n_servers):
            moving += phase[p] == 2
        rate = min(1.0, card / moving) if moving else 0.0
        nxt = np.inf
        for p in range(n_servers):
            if phase[p] == 0 or phase[p] == 1:
                nxt = min(nxt, until[p])
            elif phase[p] == 2:
                nxt = min(nxt, now + left[p] / rate)
        if nxt == np.inf:
            break
        for p in range(n_servers):
            if phase[p] == 2:
                if now + left[p] / rate <= nxt:
                    left[p] = 0.0
                else:
                    left[p] -= rate * (nxt - now)
        now = nxt
        for p in range(n_servers):
            while phase[p] != 3:
                r = queue[head[p]]
                if phase[p] == 0 and until[p] <= now:
                    phase[p], until[p] = 1, now + latency[r]
                elif phase[p] == 1 and until[p] <= now:
                    phase[p], left[p] = 2, data[r]
                elif phase[p] == 2 and left[p] <= 0.0:
                    done[r] = now
                    free[p] = now
                    head[p] += 1
                    if head[p] < qptr[p + 1]:
                        phase[p], until[p] = 0, max(now, ready[queue[head[p]]])
                    else:
                        phase[p] = 3
                else:
                    break


@numba.njit(cache=True)
def credit_transfers(orders, server, n_servers, latency, data, sizes, credit, arrival) -> None:
    """Pulls under a credit window (ByteScheduler): each worker takes recvs strictly in its order; the
    next starts when its server's flow is free and the bytes in flight plus its own fit in `credit`
    (or nothing is in flight). A transfer spends latency + data seconds at the flow rate.

    Args:
        orders: (I, W, n_recv) int64 each worker's order per iteration.
        server: (n_recv,) the server of each recv.
        n_servers: servers P.
        latency: (I, W, n_recv) s, each transfer's latency.
        data: (I, W, n_recv) s, each transfer's data time at the flow rate.
        sizes: (n_recv,) bytes per recv.
        credit: bytes allowed in flight.
        arrival: (I, W, n_recv) s, written: when each recv arrived.
    """
    n_iter, n_workers, n = orders.shape
    fin = np.empty(n)
    size = np.empty(n)
    for i in range(n_iter):
        for w in range(n_workers):
            free = np.zeros(n_servers)
            count = 0  # transfers started so far; those with fin > start are still in flight
            prev = 0.0
            for k in range(n):
                r = orders[i, w, k]
                start = max(free[server[r]], prev)
                while True:
                    inflight, soonest = 0.0, np.inf
                    for j in range(count):
                        if fin[j] > start:
                            inflight += size[j]
                            soonest = min(soonest, fin[j])
                    if inflight == 0.0 or inflight + sizes[r] <= credit:
                        break
                    start = soonest
                end = start + latency[i, w, r] + data[i, w, r]
                arrival[i, w, r] = end
                free[server[r]] = end
                fin[count], size[count] = end, sizes[r]
                count += 1
                prev = start
