"""A real parameter server over loopback TCP: P server processes, W JAX workers, ordered pulls and pushes.

`run(PSConfig(...), schedulers)` makes this process the coordinator. It starts `servers` server
processes and `workers` worker processes (`python -m mlsys_core.tictac.ps --role=...`, 127.0.0.1
only), hands each server the real bytes of the parameters it holds (`placement.place`), and for every
scheduler and iteration tells each server the order in which to send its parameters to each worker.

Enforcement (the paper's): a server sends its k-th transfer to a worker only after the worker's
receive loop (one thread per server connection) has acknowledged the (k-1)-th. Links: every
server-worker connection is paced to `bandwidth_gbps / workers` in each direction (a server's link
shared equally by its workers, as in the simulator), the pulls by the server and, in training, the
pushes by the worker. Each worker runs the model's primitives eagerly as soon as their inputs have
arrived; in training it pushes each gradient to its server the moment the op producing it has run.
Checks: every payload carries a CRC-32, checked by its receiver (pulls at the worker, pushes at the
server); workers record the order in which parameters arrived and the coordinator compares, per
server, that order with the schedule (`PSConfig.fault="swap"` makes server 0 send its first two
transfers swapped, so that the check fails); every worker's output is compared with a jitted
reference. Processes are stopped by PID at the end; everything is bounded by `timeout_s`.

`runs(config, schedulers, n_runs)` repeats `run` with fresh processes (seeds seed, seed+1, ...):
mean iteration time per run with warm-up excluded and included, and their spread over runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import os
import queue
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from typing import IO, NamedTuple

import numpy as np

from mlsys_core import validate

HEADER = struct.Struct("!BIIQI")  # kind, iteration, param index, payload bytes, crc32
ACK = struct.Struct("!BII")  # kind, iteration, param index (worker -> server, after a pull arrived)
REPORT = struct.Struct("!IIdd")  # iteration, bad crcs, worker seconds, output sum
DONE = struct.Struct("!IIQQ")  # iteration, bad push crcs, pull bytes sent, push bytes received
HELLO_MSG = struct.Struct("!4sBBII")  # magic, HELLO, role, ident, port (a process -> the coordinator, first)
MAGIC = b"TTPS"
BEGIN, PARAM, STOP, GRAD, ACKED, GO, HELLO = 1, 2, 3, 4, 5, 6, 7
ROLES = {1: "server", 2: "worker"}  # the role byte of a hello
HELLO_TIMEOUT_S = 10.0  # a connected process sends its hello at once; garbage that stalls waits no longer
FAULTS = ("none", "swap")


@dataclasses.dataclass(frozen=True)
class PSConfig:
    """One real-server experiment: model graph, cluster size, emulated links and run length."""

    model: str = "cnn"
    mode: str = "train"
    workers: int = 2
    servers: int = 1
    placement: str = "round_robin"
    bandwidth_gbps: float = 1.0
    iterations: int = 4
    warmup: int = 2
    seed: int = 0
    depth: int = 4
    width: int = 16
    batch_size: int = 32
    chunk_bytes: int = 16384
    timeout_s: float = 120.0
    fault: str = "none"

    def __post_init__(self):
        from mlsys_core.tictac.models import ALL_MODELS, MODES
        from mlsys_core.tictac.placement import PLACEMENTS

        validate.choice("model", self.model, ALL_MODELS)
        validate.choice("mode", self.mode, MODES)
        for name in ("workers", "iterations", "depth", "width", "batch_size", "chunk_bytes"):
            validate.integer(name, getattr(self, name), low=1)
        validate.integer("servers", self.servers, low=1, high=4)
        validate.choice("placement", self.placement, PLACEMENTS)
        validate.integer("warmup", self.warmup, low=0)
        validate.integer("seed", self.seed, low=0)
        validate.number("bandwidth_gbps", self.bandwidth_gbps, 0.0, 100.0, low_open=True)
        validate.positive("timeout_s", self.timeout_s)
        validate.choice("fault", self.fault, FAULTS)


@dataclasses.dataclass(frozen=True)
class Trial:
    """One scheduler's run: `iteration_s` (warmup + iterations,) wall time per iteration at the
    coordinator, `worker_s` (n, workers) each worker's time from begin to its last op and push;
    checks: `orders_ok` (every server's arrivals in its scheduled order, every iteration and worker),
    `crc_errors` (pulls and pushes), `outputs_ok`; `bytes_sent` pulled, `bytes_pushed` pushed."""

    scheduler: str
    iteration_s: np.ndarray
    worker_s: np.ndarray
    warmup: int
    orders_ok: bool
    crc_errors: int
    outputs_ok: bool
    bytes_sent: int
    bytes_pushed: int = 0

    def mean_s(self, include_warmup: bool = False) -> float:
        """Mean iteration time, with or without the first `warmup` iterations."""
        return float(self.iteration_s[0 if include_warmup else self.warmup:].mean())

    def median_s(self) -> float:
        """Median iteration time after warm-up: robust to load spikes from other processes."""
        return float(np.median(self.iteration_s[self.warmup:]))


def _program(config: PSConfig):
    from mlsys_core.tictac import jaxgraph, models

    fn, params, inputs = models.program(config.model, config.mode, config.seed, config.depth,
                                        config.width, config.batch_size)
    return fn, params, inputs, jaxgraph.trace(fn, params, *inputs)


def _read_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += part
    return bytes(buf)


def _read_message(sock: socket.socket):
    kind, it, index, nbytes, crc = HEADER.unpack(_read_exact(sock, HEADER.size))
    payload = _read_exact(sock, nbytes) if nbytes else b""
    return kind, it, index, payload, crc


def _paced_send(sock: socket.socket, data: bytes, gbps: float, chunk: int, lock=None) -> None:
    """Send `data` in chunks, sleeping so that the connection never runs above `gbps`."""
    clock = time.perf_counter()
    per_byte = 8.0 / (gbps * 1e9)
    for start in range(0, len(data), chunk):
        piece = data[start:start + chunk]
        if lock is None:
            sock.sendall(piece)
        else:
            with lock:
                sock.sendall(piece)
        clock += len(piece) * per_byte
        lag = clock - time.perf_counter()
        if lag > 0:
            time.sleep(lag)


def _message(kind: int, it: int, index: int, payload: bytes) -> bytes:
    return HEADER.pack(kind, it, index, len(payload), zlib.crc32(payload)) + payload


def _connect(port: int, timeout: float) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


# ----------------------------------------------------------------------------------------- server


def _read_from_worker(sock: socket.socket):
    """(kind, iteration, index, (payload, crc ok)) of the next ack or pushed gradient."""
    head = _read_exact(sock, ACK.size)
    kind, it, index = ACK.unpack(head)
    if kind == ACKED:
        return kind, it, index, (b"", True)
    nbytes, crc = struct.unpack("!QI", _read_exact(sock, HEADER.size - ACK.size))
    payload = _read_exact(sock, nbytes) if nbytes else b""
    return kind, it, index, (payload, zlib.crc32(payload) == crc)


def server_main(config: PSConfig, port: int, server_id: int) -> None:
    """A parameter server: send each worker its parameters in the scheduled order, one transfer at a
    time (the next after the worker acknowledged the last), paced; take the pushed gradients."""
    control = _connect(port, config.timeout_s)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(config.timeout_s)
    control.sendall(HELLO_MSG.pack(MAGIC, HELLO, 1, server_id, listener.getsockname()[1]))
    (count,) = struct.unpack("!I", _read_exact(control, 4))
    held = {}
    for _ in range(count):
        _, _, index, payload, _ = _read_message(control)
        held[index] = payload
    conns = [None] * config.workers
    for _ in range(config.workers):
        conn, _ = listener.accept()
        conn.settimeout(config.timeout_s)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        (w,) = struct.unpack("!I", _read_exact(conn, 4))
        if w >= config.workers or conns[w] is not None:
            raise ConnectionError(f"server {server_id}: peer {_peer(conn)} said it is worker {w}; expected one of "
                                  f"0..{config.workers - 1} not yet connected")
        conns[w] = conn
    gbps = config.bandwidth_gbps / config.workers
    train = config.mode == "train"
    while True:
        kind, it, _, payload, _ = _read_message(control)
        if kind == STOP:
            break
        seqs = np.frombuffer(payload, dtype=">u4").reshape(config.workers, -1).astype(np.int64)
        results = [None] * config.workers

        def serve(w, seq, it=it, results=results):
            seq = list(seq)
            if config.fault == "swap" and server_id == 0 and len(seq) >= 2:
                seq[0], seq[1] = seq[1], seq[0]
            sent, grads = 0, []
            for index in seq:
                msg = _message(PARAM, it, int(index), held[int(index)])
                _paced_send(conns[w], msg, gbps, config.chunk_bytes)
                sent += len(msg)
                while True:  # the next transfer waits for this one's ack (a push may come first)
                    kind, got_it, got, grad = _read_from_worker(conns[w])
                    if kind != ACKED:
                        grads.append((kind, got_it, got, grad))
                        continue
                    if got_it != it or got != index:
                        raise ConnectionError(f"server {server_id}: ack {got_it, got} for {it, index}")
                    break
            while train and len(grads) < len(seq):
                grads.append(_read_from_worker(conns[w]))
            bad = sum(kind != GRAD or got_it != it or not ok or len(grad) != len(held.get(index, b""))
                      for kind, got_it, index, (grad, ok) in grads)
            results[w] = (bad, sent, sum(HEADER.size + len(g) for _, _, _, (g, _) in grads))

        threads = [threading.Thread(target=serve, args=(w, seqs[w])) for w in range(config.workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if any(r is None for r in results):
            raise ConnectionError(f"server {server_id}: a worker connection failed in iteration {it}")
        control.sendall(DONE.pack(it, sum(r[0] for r in results), sum(r[1] for r in results),
                                  sum(r[2] for r in results)))
    for conn in conns:
        conn.close()
    control.close()


# ----------------------------------------------------------------------------------------- worker


def _receive_loop(sock, lock, inbox, server_id):
    """One server connection: parse each pulled parameter, check its CRC, acknowledge it at once
    (which lets the server send the next), hand it to the compute loop."""
    try:
        while True:
            kind, it, index, payload, crc = _read_message(sock)
            if kind != PARAM:
                break
            with lock:
                sock.sendall(ACK.pack(ACKED, it, index))
            inbox.put((index, payload, zlib.crc32(payload) == crc, server_id))
    except (ConnectionError, OSError):
        pass
    inbox.put(None)


def _push_loop(sock, lock, outbox, gbps, chunk):
    """One server connection: push gradients in the order they were produced, paced."""
    while True:
        item = outbox.get()
        if item is None:
            outbox.task_done()
            return
        _paced_send(sock, item, gbps, chunk, lock)
        outbox.task_done()


def worker_main(config: PSConfig, port: int, worker_id: int, server_ports: list[int]) -> None:
    """A worker: run the model's primitives as soon as the parameters they read have arrived; in
    training push each gradient to its server when the op producing it has run."""
    import jax

    from mlsys_core.tictac import jaxgraph

    _, params, inputs, program = _program(config)
    leaves = jax.tree_util.tree_leaves(params)
    specs = [(np.asarray(leaf).dtype, np.shape(leaf)) for leaf in leaves]
    consumers: dict[int, list[int]] = {}
    needs = np.zeros(len(program.eqns), dtype=np.int64)
    runtime_vars = set(program.param_vars)
    producer = {}
    for i, eqn in enumerate(program.eqns):
        for var in {v for kind, v in eqn.inputs if kind == "v" and v in runtime_vars}:
            consumers.setdefault(var, []).append(i)
            needs[i] += 1
        runtime_vars.update(eqn.outputs)
        for var in eqn.outputs:
            producer[var] = i
    train = config.mode == "train"
    grad_outputs = program.outputs[1:1 + len(leaves)] if train else []
    pushes_after: dict[int, list[int]] = {}  # eqn index -> gradients it completes
    early = []  # gradients not produced by any op (constants)
    for g, (kind, var) in enumerate(grad_outputs):
        if kind == "v" and var in producer:
            pushes_after.setdefault(producer[var], []).append(g)
        else:
            early.append(g)
    no_wait = [i for i in range(len(program.eqns)) if needs[i] == 0]
    data = dict(zip(program.input_vars, jax.tree_util.tree_leaves(inputs)))
    control = _connect(port, config.timeout_s)
    control.sendall(HELLO_MSG.pack(MAGIC, HELLO, 2, worker_id, 0))
    (count,) = struct.unpack("!I", _read_exact(control, 4))
    server_of = np.frombuffer(_read_exact(control, 4 * count), dtype=">u4").astype(np.int64)
    inbox: queue.Queue = queue.Queue()
    socks, locks, outboxes = [], [], []
    gbps = config.bandwidth_gbps / config.workers
    for s, server_port in enumerate(server_ports):
        sock = _connect(server_port, config.timeout_s)
        sock.sendall(struct.pack("!I", worker_id))
        lock = threading.Lock()
        socks.append(sock)
        locks.append(lock)
        threading.Thread(target=_receive_loop, args=(sock, lock, inbox, s), daemon=True).start()
        outbox: queue.Queue = queue.Queue()
        outboxes.append(outbox)
        threading.Thread(target=_push_loop, args=(sock, lock, outbox, gbps, config.chunk_bytes), daemon=True).start()
    while True:
        kind, it, _, _, _ = _read_message(control)
        if kind == STOP:
            break
        start = time.perf_counter()
        values, missing, ready = dict(data), needs.copy(), list(no_wait)
        heapq.heapify(ready)
        order, bad, done = [], 0, 0

        def push(g, it=it, values=values):
            kind, var = grad_outputs[g]
            array = np.ascontiguousarray(np.asarray(values[var] if kind == "v" else var, dtype=specs[g][0]))
            outboxes[server_of[g]].put(_message(GRAD, it, g, array.tobytes()))

        def arrived(var, missing=missing, ready=ready):
            for i in consumers.get(var, ()):
                missing[i] -= 1
                if missing[i] == 0:
                    heapq.heappush(ready, i)

        while done < len(program.eqns) or len(order) < len(leaves):
            try:
                item = inbox.get(block=not ready, timeout=config.timeout_s) if not ready else inbox.get_nowait()
            except queue.Empty:
                if not ready:
                    raise ConnectionError("worker waited too long for a parameter") from None
                item = False
            if item is None:
                raise ConnectionError("a server closed its connection")
            if item:
                index, payload, ok, _ = item
                dtype, shape = specs[index]
                values[program.param_vars[index]] = jax.device_put(np.frombuffer(payload, dtype).reshape(shape))
                order.append(index)
                bad += not ok
                arrived(program.param_vars[index])
                continue
            i = heapq.heappop(ready)
            jaxgraph.run_eqn(program.eqns[i], values)
            done += 1
            for var in program.eqns[i].outputs:
                arrived(var)
            for g in pushes_after.get(i, ()):
                push(g)
        for g in early:
            push(g)
        outs = [values[v] if kind == "v" else v for kind, v in program.outputs]
        jax.block_until_ready(outs)
        for outbox in outboxes:
            outbox.join()
        seconds = time.perf_counter() - start
        total = float(sum(np.asarray(o, dtype=np.float64).sum() for o in outs))
        control.sendall(REPORT.pack(it, bad, seconds, total) + np.asarray(order, dtype=">u4").tobytes())
    for outbox in outboxes:
        outbox.put(None)
    for sock in socks:
        sock.close()
    control.close()


# ----------------------------------------------------------------------------------------- coordinator


def run(config: PSConfig, schedulers=("random", "tic", "tac")) -> dict[str, Trial]:
    """Run each scheduler for `warmup + iterations` iterations, interleaved round-robin.

    The same processes serve every scheduler, so JAX's one-off costs in a fresh worker (the first
    call of each primitive compiles it) land in the first-listed scheduler's first iteration. TAC
    uses a measured time oracle: this machine's eager time of every compute op.
    """
    import jax

    from mlsys_core.tictac import jaxgraph, ordering, placement

    _check_run(config, schedulers)
    fn, params, inputs, program = _program(config)
    graph = jaxgraph.to_graph(program)
    reference = float(sum(np.asarray(o, dtype=np.float64).sum()
                          for o in jax.tree_util.tree_leaves(jax.jit(fn)(params, *inputs))))
    payloads = [np.ascontiguousarray(np.asarray(leaf)).tobytes() for leaf in jax.tree_util.tree_leaves(params)]
    server_of = placement.place(graph.recv_bytes, config.servers, config.placement)
    oracle = ordering.TimeOracle(bandwidth_gbps=config.bandwidth_gbps, latency_us=0.0)
    compute_s = jaxgraph.measured_seconds(program, params, inputs) if "tac" in schedulers else None
    n_iter = config.warmup + config.iterations
    orders = {name: ordering.schedule(graph, name, oracle, config.workers, n_iter, config.seed,
                                      compute_seconds=compute_s) for name in schedulers}
    return _serve(config, orders, payloads, server_of, reference)


def _check_run(config: PSConfig, schedulers) -> None:
    from mlsys_core.tictac import ordering

    validate.instance("config", config, PSConfig, "a ps.PSConfig")
    validate.instance("schedulers", schedulers, (tuple, list), "a tuple of scheduler names")
    if not schedulers:
        raise ValueError(f"schedulers must name at least one scheduler, got {schedulers!r}")
    for name in schedulers:
        validate.choice("scheduler", name, ordering.SCHEDULERS)


def orders_match(arrived: np.ndarray, scheduled: np.ndarray, server_of: np.ndarray) -> bool:
    """True iff, for every server, the parameters it holds arrived in the order it was told to send
    them (across servers nothing is promised: their links run in parallel)."""
    arrived, scheduled = np.asarray(arrived), np.asarray(scheduled)
    if arrived.shape != scheduled.shape or set(arrived.tolist()) != set(scheduled.tolist()):
        return False
    return all(np.array_equal(arrived[server_of[arrived] == s], scheduled[server_of[scheduled] == s])
               for s in np.unique(server_of))


class Child(NamedTuple):
    """A server or worker process the coordinator started: its role and index ("server 0"), the process,
    and the temporary file its stderr goes to."""

    name: str
    proc: subprocess.Popen
    stderr: IO[bytes]

    def stderr_tail(self, lines: int = 8) -> str:
        """The last `lines` lines the process wrote to stderr ("" if none)."""
        self.stderr.seek(0)
        return "\n".join(self.stderr.read().decode(errors="replace").strip().splitlines()[-lines:])

    def describe(self, returncode: int | None) -> str:
        """Its role, PID and how it ended (`returncode`: None while running), with its last stderr lines."""
        if returncode is None:
            end = "was still running; stopped by the coordinator"
        elif returncode < 0:
            end = f"was killed by signal {-returncode} ({signal.strsignal(-returncode)})"
        else:
            end = f"exited with code {returncode}"
        tail = self.stderr_tail()
        text = f"{self.name} (pid {self.proc.pid}) {end}"
        return text + (":\n    " + tail.replace("\n", "\n    ") if tail else "")


def _spawn(role: str, config: PSConfig, port: int, ident: int, extra=()) -> Child:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    args = [f"--{k.replace('_', '-')}={v}" for k, v in dataclasses.asdict(config).items()]
    stderr = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "mlsys_core.tictac.ps", f"--role={role}", f"--port={port}",
                             f"--ident={ident}", *extra, *args], env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    return Child(f"{role} {ident}", proc, stderr)


def _peer(conn: socket.socket) -> str:
    host, port = conn.getpeername()[:2]
    return f"{host}:{port}"


def _hello(conn: socket.socket, role: int, count: int, seen) -> tuple[int, int]:
    """A process's first message: (its index, its port). Anything but `HELLO_MSG` with `MAGIC`, `role`
    and a new index below `count` raises ConnectionError naming the peer."""
    peer, timeout = _peer(conn), conn.gettimeout()
    conn.settimeout(min(HELLO_TIMEOUT_S, timeout))
    try:
        data = _read_exact(conn, HELLO_MSG.size)
    except OSError as error:  # ConnectionError, or a timeout
        conn.close()
        raise ConnectionError(f"coordinator: no {HELLO_MSG.size}-byte hello from peer {peer} ({error})") from None
    conn.settimeout(timeout)
    magic, kind, got_role, ident, port = HELLO_MSG.unpack(data)
    if magic != MAGIC or kind != HELLO or got_role != role or ident >= count or ident in seen:
        conn.close()
        raise ConnectionError(
            f"coordinator: bad hello from peer {peer}: expected magic {MAGIC!r}, kind {HELLO}, role {role} "
            f"({ROLES[role]}) and a new {ROLES[role]} index in 0..{count - 1}, got magic {magic!r}, kind {kind}, "
            f"role {got_role}, index {ident}")
    return ident, port


def _read_from(conn: socket.socket, n: int, who: str) -> bytes:
    try:
        return _read_exact(conn, n)
    except OSError as error:
        raise ConnectionError(f"coordinator: reading from {who}: {error}") from None


def _failure(children: list[Child], codes: list) -> str:
    """Every child, those that ended by themselves first (`codes`: their return codes before any was stopped)."""
    ended = sorted(range(len(children)), key=lambda i: codes[i] is None)
    return "\n".join("  " + children[i].describe(codes[i]) for i in ended)


def _serve(config: PSConfig, orders: dict, payloads, server_of, reference: float) -> dict[str, Trial]:
    deadline = time.monotonic() + config.timeout_s
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    children: list[Child] = []
    servers, workers = [None] * config.servers, [None] * config.workers
    try:
        for s in range(config.servers):
            children.append(_spawn("server", config, port, s))
        server_ports = [0] * config.servers
        for _ in range(config.servers):
            conn = _accept(listener, deadline, children)
            ident, server_ports[ident] = _hello(conn, 1, config.servers, _connected(servers))
            servers[ident] = conn
        for s, conn in enumerate(servers):
            mine = np.flatnonzero(server_of == s)
            conn.sendall(struct.pack("!I", mine.size) + b"".join(_message(PARAM, 0, int(i), payloads[i]) for i in mine))
        ports = "--server-ports=" + ",".join(map(str, server_ports))
        for w in range(config.workers):
            children.append(_spawn("worker", config, port, w, (ports,)))
        for _ in range(config.workers):
            conn = _accept(listener, deadline, children)
            ident, _ = _hello(conn, 2, config.workers, _connected(workers))
            conn.sendall(struct.pack("!I", server_of.size) + np.asarray(server_of, dtype=">u4").tobytes())
            workers[ident] = conn
        n_iter = config.warmup + config.iterations
        stats = {name: Stats(n_iter, config.workers) for name in orders}
        for it in range(n_iter):  # schedulers interleaved, so drifts in machine load hit all alike
            for name, order in orders.items():
                _iteration(it, order[it], servers, workers, server_of, reference, stats[name])
            if time.monotonic() > deadline:
                raise TimeoutError(f"coordinator: the run exceeded timeout_s={config.timeout_s}")
        trials = {name: st.trial(name, config.warmup) for name, st in stats.items()}
        for conn in servers + workers:
            conn.sendall(HEADER.pack(STOP, 0, 0, 0, 0))
        for child in children:
            child.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        codes = [child.proc.returncode for child in children]
        if any(codes):
            failed = [c.describe(code) for c, code in zip(children, codes) if code]
            raise RuntimeError("real parameter server: a process failed:\n  " + "\n  ".join(failed))
        return trials
    except (OSError, subprocess.TimeoutExpired) as error:  # ConnectionError and timeouts are OSErrors
        codes = _settle(children)
        _stop(children)
        raise RuntimeError(f"real parameter server failed ({error}); its processes:\n"
                           f"{_failure(children, codes)}") from None
    finally:
        for conn in servers + workers:
            if conn is not None:
                conn.close()
        listener.close()
        _stop(children)
        for child in children:
            child.stderr.close()


def _connected(conns: list) -> list[int]:
    return [i for i, conn in enumerate(conns) if conn is not None]


def _settle(children: list[Child], grace_s: float = 1.0) -> list:
    """Each child's return code (None: running) after up to `grace_s` for those already ending to exit."""
    end = time.monotonic() + grace_s
    while time.monotonic() < end and any(c.proc.poll() is None for c in children):
        time.sleep(0.05)
    return [c.proc.poll() for c in children]


def _stop(children: list[Child]) -> None:
    """Kill by PID every child still running, and wait for each."""
    for child in children:
        if child.proc.poll() is None:
            child.proc.kill()
        child.proc.wait()


def _accept(listener: socket.socket, deadline: float, children: list[Child]) -> socket.socket:
    """The next connection; ConnectionError as soon as a child exits before connecting, TimeoutError at the deadline."""
    while True:
        gone = [c for c in children if c.proc.poll() is not None]
        if gone:
            raise ConnectionError(f"coordinator: {gone[0].name} (pid {gone[0].proc.pid}) exited before the run began")
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("coordinator: waited timeout_s for the servers and workers to connect")
        listener.settimeout(min(0.2, left))
        try:
            conn, _ = listener.accept()
            break
        except TimeoutError:
            continue
    conn.settimeout(max(1.0, deadline - time.monotonic()))
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


class Stats:
    """What one scheduler's iterations measured and verified so far."""

    def __init__(self, n_iter: int, workers: int):
        self.iteration_s, self.worker_s = np.zeros(n_iter), np.zeros((n_iter, workers))
        self.orders_ok, self.crc_errors, self.outputs_ok, self.sent, self.pushed = True, 0, True, 0, 0

    def trial(self, scheduler: str, warmup: int) -> Trial:
        return Trial(scheduler, self.iteration_s, self.worker_s, warmup, bool(self.orders_ok),
                     int(self.crc_errors), bool(self.outputs_ok), self.sent, self.pushed)


def _iteration(it, orders, servers, workers, server_of, reference, stats: Stats) -> None:
    """One iteration (orders: (workers, n_recv)): tell every server its sequences, start the workers,
    collect and verify what comes back."""
    start = time.perf_counter()
    for s, conn in enumerate(servers):
        seqs = np.stack([order[server_of[order] == s] for order in orders])
        payload = np.ascontiguousarray(seqs, dtype=">u4").tobytes()
        conn.sendall(HEADER.pack(GO, it, 0, len(payload), 0) + payload)
    for conn in workers:
        conn.sendall(HEADER.pack(BEGIN, it, 0, 0, 0))
    for w, conn in enumerate(workers):
        got_it, bad, seconds, total = REPORT.unpack(_read_from(conn, REPORT.size, f"worker {w}"))
        got = np.frombuffer(_read_from(conn, 4 * orders.shape[1], f"worker {w}"), dtype=">u4").astype(np.int64)
        stats.orders_ok &= got_it == it and orders_match(got, orders[w], server_of)
        stats.crc_errors += bad
        stats.outputs_ok &= bool(np.isclose(total, reference, rtol=1e-4, atol=1e-4))
        stats.worker_s[it, w] = seconds
    for s, conn in enumerate(servers):
        got_it, bad, sent, pushed = DONE.unpack(_read_from(conn, DONE.size, f"server {s}"))
        stats.orders_ok &= got_it == it
        stats.crc_errors += bad
        stats.sent += sent
        stats.pushed += pushed
    stats.iteration_s[it] = time.perf_counter() - start


@dataclasses.dataclass(frozen=True)
class Runs:
    """`n_runs` independent runs (fresh processes, seeds seed..): `trials[k]` is run k's `run` result."""

    config: PSConfig
    trials: tuple

    def per_run_s(self, scheduler: str, include_warmup: bool = False) -> np.ndarray:
        """(runs,) mean iteration time of each run, with or without its warm-up iterations."""
        return np.array([t[scheduler].mean_s(include_warmup) for t in self.trials])

    def speedups(self, baseline: str = "random", scheduler: str = "tac", include_warmup: bool = False) -> np.ndarray:
        """(runs,) baseline's mean time / scheduler's, per run."""
        return self.per_run_s(baseline, include_warmup) / self.per_run_s(scheduler, include_warmup)

    def checks_ok(self) -> bool:
        """Orders as scheduled, no CRC error and correct outputs in every run and scheduler."""
        return all(t.orders_ok and t.crc_errors == 0 and t.outputs_ok for r in self.trials for t in r.values())


def mean_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean of `values` (>= 2)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"values must hold >= 2 numbers, got {x.tolist()}")
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


def runs(config: PSConfig, schedulers=("random", "tac"), n_runs: int = 3) -> Runs:
    """`n_runs` runs of `run`, each with fresh processes and seed config.seed + k."""
    _check_run(config, schedulers)
    validate.integer("n_runs", n_runs, low=1)
    return Runs(config, tuple(run(dataclasses.replace(config, seed=config.seed + k), schedulers)
                              for k in range(n_runs)))


def _parse(argv=None):
    parser = argparse.ArgumentParser(description="TicTac real parameter-server process")
    parser.add_argument("--role", choices=("server", "worker"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ident", type=int, required=True)
    parser.add_argument("--server-ports", default="")
    for field in dataclasses.fields(PSConfig):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default))
    ns = parser.parse_args(argv)
    values = {f.name: getattr(ns, f.name) for f in dataclasses.fields(PSConfig) if getattr(ns, f.name) is not None}
    ports = [int(p) for p in ns.server_ports.split(",") if p]
    return ns.role, PSConfig(**values), ns.port, ns.ident, ports


if __name__ == "__main__":
    role, cfg, coordinator_port, ident, server_ports = _parse()
    if role == "server":
        server_main(cfg, coordinator_port, ident)
    else:
        from mlsys_core import backend

        backend.setup(cpu_devices=1)
        worker_main(cfg, coordinator_port, ident, server_ports)
