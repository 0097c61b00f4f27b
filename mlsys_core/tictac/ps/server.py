"""A parameter-server process: hold some parameters, send each worker its share in the scheduled order.

Enforcement (the paper's): the server sends its k-th transfer to a worker only after the worker has
acknowledged the (k-1)-th; each worker connection is paced to `bandwidth_gbps / workers` (the server's
link shared equally). In training it takes every pushed gradient and checks its CRC, iteration and size.
One thread per worker connection serves an iteration; the coordinator hears the totals in `DONE`.
"""

from __future__ import annotations

import socket
import threading

import numpy as np

from mlsys_core.tictac.ps.config import PSConfig
from mlsys_core.tictac.ps.wire import (
    ACKED,
    COUNT,
    DONE,
    GRAD,
    HEADER,
    HELLO,
    HELLO_MSG,
    MAGIC,
    PARAM,
    SERVER,
    STOP,
    connect,
    message,
    paced_send,
    peer,
    read_exact,
    read_from_worker,
    read_message,
)


def _receive_parameters(control: socket.socket) -> dict[int, bytes]:
    """The parameters this server holds, from the coordinator: {parameter index: bytes}."""
    (count,) = COUNT.unpack(read_exact(control, COUNT.size))
    held = {}
    for _ in range(count):
        _, _, index, payload, _ = read_message(control)
        held[index] = payload
    return held


def _accept_workers(listener: socket.socket, config: PSConfig, server_id: int) -> list[socket.socket]:
    """One connection per worker, indexed by the worker index each sends first."""
    conns = [None] * config.workers
    for _ in range(config.workers):
        conn, _ = listener.accept()
        conn.settimeout(config.timeout_s)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        (w,) = COUNT.unpack(read_exact(conn, COUNT.size))
        if w >= config.workers or conns[w] is not None:
            raise ConnectionError(f"server {server_id}: peer {peer(conn)} said it is worker {w}; expected one of "
                                  f"0..{config.workers - 1} not yet connected")
        conns[w] = conn
    return conns


def _send_in_order(conn: socket.socket, seq: list[int], held: dict, it: int, config: PSConfig,
                   server_id: int) -> tuple[int, list]:
    """Send `seq`'s parameters one at a time, each after the last one's ack; (bytes sent, the pushes
    that came in meanwhile)."""
    gbps = config.bandwidth_gbps / config.workers
    sent, grads = 0, []
    for index in seq:
        msg = message(PARAM, it, int(index), held[int(index)])
        paced_send(conn, msg, gbps, config.chunk_bytes)
        sent += len(msg)
        while True:  # the next transfer waits for this one's ack (a push may come first)
            kind, got_it, got, grad = read_from_worker(conn)
            if kind != ACKED:
                grads.append((kind, got_it, got, grad))
                continue
            if got_it != it or got != index:
                raise ConnectionError(f"server {server_id}: ack {got_it, got} for {it, index}")
            break
    return sent, grads


def serve_worker(conn: socket.socket, seq, held: dict, it: int, config: PSConfig, server_id: int) -> tuple:
    """One worker's iteration: its parameters in order `seq`, then (training) the rest of its pushes.

    Returns (bad pushes, bytes sent, bytes pushed): a push is bad if it is no gradient, is of another
    iteration, fails its CRC or has the wrong size.

    Args:
        conn: the worker's connection.
        seq: parameter indices in the scheduled order (this server's only).
        held: this server's parameters, {index: bytes}.
        it: the iteration.
        config: the experiment (pacing, mode, fault).
        server_id: this server's index.
    """
    seq = list(seq)
    if config.fault == "swap" and server_id == 0 and len(seq) >= 2:
        seq[0], seq[1] = seq[1], seq[0]
    sent, grads = _send_in_order(conn, seq, held, it, config, server_id)
    while config.mode == "train" and len(grads) < len(seq):
        grads.append(read_from_worker(conn))
    bad = sum(kind != GRAD or got_it != it or not ok or len(grad) != len(held.get(index, b""))
              for kind, got_it, index, (grad, ok) in grads)
    return bad, sent, sum(HEADER.size + len(g) for _, _, _, (g, _) in grads)


def _serve_iteration(conns: list, seqs: np.ndarray, held: dict, it: int, config: PSConfig, server_id: int) -> list:
    """Every worker's iteration at once, one thread each; their (bad, sent, pushed) totals."""
    results = [None] * len(conns)

    def serve(w):
        results[w] = serve_worker(conns[w], seqs[w], held, it, config, server_id)

    threads = [threading.Thread(target=serve, args=(w,)) for w in range(len(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if any(r is None for r in results):
        raise ConnectionError(f"server {server_id}: a worker connection failed in iteration {it}")
    return results


def server_main(config: PSConfig, port: int, server_id: int) -> None:
    """A parameter server: send each worker its parameters in the scheduled order, one transfer at a
    time (the next after the worker acknowledged the last), paced; take the pushed gradients."""
    control = connect(port, config.timeout_s)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(config.timeout_s)
    control.sendall(HELLO_MSG.pack(MAGIC, HELLO, SERVER, server_id, listener.getsockname()[1]))
    held = _receive_parameters(control)
    conns = _accept_workers(listener, config, server_id)
    while True:
        kind, it, _, payload, _ = read_message(control)
        if kind == STOP:
            break
        seqs = np.frombuffer(payload, dtype=">u4").reshape(config.workers, -1).astype(np.int64)
        results = _serve_iteration(conns, seqs, held, it, config, server_id)
        control.sendall(DONE.pack(it, sum(r[0] for r in results), sum(r[1] for r in results),
                                  sum(r[2] for r in results)))
    for conn in conns:
        conn.close()
    listener.close()
    control.close()
