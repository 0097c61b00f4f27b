"""Which parameter server holds which parameter: swappable placement objects in a registry.

- `RoundRobin`: recv r on server r % P, in program order — TensorFlow's `replica_device_setter`
  default, blind to sizes, so one large layer can leave one server with most of the bytes.
- `SizeBalanced`: greedy largest-first onto the least-loaded server (bytes), the load-balancing
  strategy TensorFlow offers beside it; its spread of loads is at most the largest tensor.

A placement maps `recv_bytes` (n_recv,) and a server count to a server id per recv (n_recv,) int64.
Adding a strategy is adding an object to `PLACEMENTS`.
"""

from __future__ import annotations

import dataclasses

import numba
import numpy as np

from mlsys_core import validate


@dataclasses.dataclass(frozen=True)
class RoundRobin:
    """Recv r on server r % P."""

    name: str = "round_robin"

    def assign(self, recv_bytes: np.ndarray, servers: int) -> np.ndarray:
        return np.arange(np.asarray(recv_bytes).size, dtype=np.int64) % servers


@numba.njit(cache=True)
def _greedy(order, sizes, servers):
    load = np.zeros(servers)
    out = np.empty(order.size, dtype=np.int64)
    for r in order:
        p = 0
        for q in range(1, servers):
            if load[q] < load[p]:
                p = q
        out[r] = p
        load[p] += sizes[r]
    return out


@dataclasses.dataclass(frozen=True)
class SizeBalanced:
    """Largest recv first, each onto the server with the fewest bytes so far (ties: lowest id)."""

    name: str = "size_balanced"

    def assign(self, recv_bytes: np.ndarray, servers: int) -> np.ndarray:
        sizes = np.asarray(recv_bytes, dtype=np.float64)
        order = np.argsort(-sizes, kind="stable")
        return _greedy(order, sizes, servers)


PLACEMENTS = {p.name: p for p in (RoundRobin(), SizeBalanced())}


def place(recv_bytes, servers: int, placement: str = "round_robin") -> np.ndarray:
    """Server id (n_recv,) of each recv under the named placement."""
    recv_bytes = validate.reals("recv_bytes", recv_bytes, 0.0, ndim=1)
    validate.integer("servers", servers, low=1)
    validate.choice("placement", placement, PLACEMENTS)
    return PLACEMENTS[placement].assign(recv_bytes, servers)


def server_bytes(recv_bytes, servers: int, placement: str = "round_robin") -> np.ndarray:
    """Bytes each server holds (servers,) under the named placement."""
    return np.bincount(place(recv_bytes, servers, placement), weights=recv_bytes, minlength=servers)
