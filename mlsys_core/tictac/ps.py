"""A real parameter server over loopback TCP: ordered, rate-limited transfers to JAX workers.

`run(PSConfig(...), schedulers)` makes this process the parameter server. It starts `workers`
worker processes (`python -m mlsys_core.tictac.ps`, 127.0.0.1 only), and for every scheduler and
iteration sends each worker every parameter's real bytes, in that scheduler's order, through one
shared link paced to `bandwidth_gbps` (chunks interleaved across workers, like flows sharing a NIC).
Each worker traces the same model, and runs its primitives eagerly as soon as their inputs have
arrived (earliest in program order first). It checks each transfer's CRC-32, records the order in
which parameters arrived, and reports its compute time and the sum of its outputs. The server checks
orders, checksums and outputs against its own jitted reference. Everything is bounded by
`timeout_s`; workers exit when told to stop or when the server goes away.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import heapq
import os
import select
import socket
import struct
import subprocess
import sys
import time
import zlib

import numpy as np

from mlsys_core import validate

HEADER = struct.Struct("!BIIQI")  # kind, iteration, param index, payload bytes, crc32
REPORT = struct.Struct("!IIdd")  # iteration, bad crcs, worker seconds, output sum
BEGIN, PARAM, STOP = 1, 2, 3


@dataclasses.dataclass(frozen=True)
class PSConfig:
    """One real-server experiment: model graph, cluster size, emulated link and run length."""

    model: str = "cnn"
    mode: str = "train"
    workers: int = 2
    bandwidth_gbps: float = 1.0
    iterations: int = 4
    warmup: int = 2
    seed: int = 0
    depth: int = 4
    width: int = 16
    batch_size: int = 32
    chunk_bytes: int = 16384
    timeout_s: float = 120.0

    def __post_init__(self):
        from mlsys_core.tictac.models import MODELS, MODES

        validate.choice("model", self.model, MODELS)
        validate.choice("mode", self.mode, MODES)
        for name in ("workers", "iterations", "depth", "width", "batch_size", "chunk_bytes"):
            validate.integer(name, getattr(self, name), low=1)
        validate.integer("warmup", self.warmup, low=0)
        validate.integer("seed", self.seed, low=0)
        validate.number("bandwidth_gbps", self.bandwidth_gbps, 0.0, 100.0, low_open=True)
        validate.positive("timeout_s", self.timeout_s)


@dataclasses.dataclass(frozen=True)
class Trial:
    """One scheduler's run: `iteration_s` (warmup + iterations,) wall time per iteration at the
    server, `worker_s` (n, workers) each worker's time from begin to its last op; checks."""

    scheduler: str
    iteration_s: np.ndarray
    worker_s: np.ndarray
    warmup: int
    orders_ok: bool
    crc_errors: int
    outputs_ok: bool
    bytes_sent: int

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


def _read_exact(stream, n: int) -> bytes:
    data = stream.read(n)
    if data is None or len(data) < n:
        raise ConnectionError("connection closed mid-message")
    return data


# ----------------------------------------------------------------------------------------- worker


class _Inbox:
    """The worker's side of the socket, single-threaded: between two ops it takes whatever bytes
    have arrived (without waiting), and it blocks only when no op can run. Parses whole messages and
    checks each payload's CRC-32."""

    def __init__(self, sock: socket.socket):
        self.sock, self.buffer, self.messages = sock, bytearray(), collections.deque()

    def poll(self, block: bool) -> None:
        if not block and not select.select([self.sock], [], [], 0)[0]:
            return
        data = self.sock.recv(1 << 20)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buffer += data
        while len(self.buffer) >= HEADER.size:
            kind, it, index, nbytes, crc = HEADER.unpack_from(self.buffer)
            end = HEADER.size + nbytes
            if len(self.buffer) < end:
                break
            payload = bytes(self.buffer[HEADER.size:end])
            del self.buffer[:end]
            self.messages.append((kind, it, index, payload, zlib.crc32(payload) == crc))

    def next(self):
        """The next message, waiting for it (bounded by the socket's timeout)."""
        while not self.messages:
            self.poll(block=True)
        return self.messages.popleft()


def worker_main(config: PSConfig, port: int, worker_id: int) -> None:
    """A worker: run the model's primitives as soon as the parameters they read have arrived."""
    import jax

    from mlsys_core.tictac import jaxgraph

    _, params, inputs, program = _program(config)
    leaves = jax.tree_util.tree_leaves(params)
    specs = [(np.asarray(leaf).dtype, np.shape(leaf)) for leaf in leaves]
    consumers: dict[int, list[int]] = {}
    needs = np.zeros(len(program.eqns), dtype=np.int64)
    runtime_vars = set(program.param_vars)
    for i, eqn in enumerate(program.eqns):
        for var in {v for kind, v in eqn.inputs if kind == "v" and v in runtime_vars}:
            consumers.setdefault(var, []).append(i)
            needs[i] += 1
        runtime_vars.update(eqn.outputs)
    no_wait = [i for i in range(len(program.eqns)) if needs[i] == 0]  # ascending, so already a heap
    data = dict(zip(program.input_vars, jax.tree_util.tree_leaves(inputs)))
    sock = socket.create_connection(("127.0.0.1", port), timeout=config.timeout_s)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(struct.pack("!I", worker_id))
    inbox = _Inbox(sock)
    while True:
        kind, it, _, _, _ = inbox.next()
        if kind == STOP:
            break
        start = time.perf_counter()
        values, missing, ready = dict(data), needs.copy(), list(no_wait)
        order, bad, done = [], 0, 0

        def arrived(var, missing=missing, ready=ready):
            for i in consumers.get(var, ()):
                missing[i] -= 1
                if missing[i] == 0:
                    heapq.heappush(ready, i)

        while done < len(program.eqns) or len(order) < len(leaves):
            inbox.poll(block=not ready and not inbox.messages)
            while inbox.messages:
                kind, _, index, payload, ok = inbox.messages.popleft()
                dtype, shape = specs[index]
                values[program.param_vars[index]] = jax.device_put(np.frombuffer(payload, dtype).reshape(shape))
                order.append(index)
                bad += not ok
                arrived(program.param_vars[index])
            if ready:
                i = heapq.heappop(ready)
                jaxgraph.run_eqn(program.eqns[i], values)
                done += 1
                for var in program.eqns[i].outputs:
                    arrived(var)
        outs = [values[v] if kind == "v" else v for kind, v in program.outputs]
        jax.block_until_ready(outs)
        seconds = time.perf_counter() - start
        total = float(sum(np.asarray(o, dtype=np.float64).sum() for o in outs))
        sock.sendall(REPORT.pack(it, bad, seconds, total) + np.asarray(order, dtype=">u4").tobytes())
    sock.close()


# ----------------------------------------------------------------------------------------- server


def _send_iteration(conns, streams, it, bandwidth_gbps, chunk):
    """Send every worker its byte stream, chunks interleaved round-robin, paced to the link rate."""
    header = HEADER.pack(BEGIN, it, 0, 0, 0)
    for conn in conns:
        conn.sendall(header)
    clock = time.perf_counter()
    seconds_per_byte = 8.0 / (bandwidth_gbps * 1e9)
    offsets = [0] * len(conns)
    while any(o < len(s) for o, s in zip(offsets, streams)):
        for w, (conn, stream) in enumerate(zip(conns, streams)):
            if offsets[w] >= len(stream):
                continue
            piece = stream[offsets[w]:offsets[w] + chunk]
            conn.sendall(piece)
            offsets[w] += len(piece)
            clock += len(piece) * seconds_per_byte
            lag = clock - time.perf_counter()
            if lag > 0:
                time.sleep(lag)
    return sum(len(s) for s in streams)


def run(config: PSConfig, schedulers=("random", "tic", "tac")) -> dict[str, Trial]:
    """Run each scheduler for `warmup + iterations` iterations, interleaved round-robin.

    The same worker processes serve every scheduler, so JAX's one-off costs in a fresh worker (the
    first call of each primitive compiles it) land in the first-listed scheduler's first iteration.
    TAC uses a measured time oracle: this machine's eager time of every compute op.
    """
    import jax

    from mlsys_core.tictac import jaxgraph, ordering

    for name in schedulers:
        validate.choice("scheduler", name, ordering.SCHEDULERS)
    fn, params, inputs, program = _program(config)
    graph = jaxgraph.to_graph(program)
    reference = float(sum(np.asarray(o, dtype=np.float64).sum()
                          for o in jax.tree_util.tree_leaves(jax.jit(fn)(params, *inputs))))
    payloads = [np.ascontiguousarray(np.asarray(leaf)).tobytes() for leaf in jax.tree_util.tree_leaves(params)]
    messages = [HEADER.pack(PARAM, 0, i, len(p), zlib.crc32(p)) + p for i, p in enumerate(payloads)]
    oracle = ordering.TimeOracle(bandwidth_gbps=config.bandwidth_gbps, latency_us=0.0)
    compute_s = jaxgraph.measured_seconds(program, params, inputs)
    n_iter = config.warmup + config.iterations
    orders = {name: ordering.schedule(graph, name, oracle, config.workers, n_iter, config.seed,
                                      compute_seconds=compute_s) for name in schedulers}
    return _serve(config, orders, messages, reference)


def _serve(config: PSConfig, orders: dict, messages, reference: float) -> dict[str, Trial]:
    workers = config.workers
    deadline = time.monotonic() + config.timeout_s
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(config.timeout_s)
    port = listener.getsockname()[1]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    args = [f"--{k.replace('_', '-')}={v}" for k, v in dataclasses.asdict(config).items()]
    procs = [subprocess.Popen([sys.executable, "-m", "mlsys_core.tictac.ps", f"--port={port}",
                               f"--worker-id={w}", *args], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for w in range(workers)]
    conns = [None] * workers
    try:
        for _ in range(workers):
            conn, _ = listener.accept()
            conn.settimeout(max(1.0, deadline - time.monotonic()))
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conns[struct.unpack("!I", _read_exact(conn.makefile("rb"), 4))[0]] = conn
        readers = [c.makefile("rb") for c in conns]
        n_iter = config.warmup + config.iterations
        stats = {name: Stats(n_iter, workers) for name in orders}
        for it in range(n_iter):  # schedulers interleaved, so drifts in machine load hit all alike
            for name, order in orders.items():
                _iteration(config, it, order[it], conns, readers, messages, reference, stats[name])
            if time.monotonic() > deadline:
                raise TimeoutError(f"real parameter server exceeded timeout_s={config.timeout_s}")
        trials = {name: st.trial(name, config.warmup) for name, st in stats.items()}
        for conn in conns:
            conn.sendall(HEADER.pack(STOP, 0, 0, 0, 0))
        for proc in procs:
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        failed = [p.stderr.read().decode()[-1500:] for p in procs if p.returncode != 0]
        if failed:
            raise RuntimeError("a worker failed:\n" + failed[0])
        return trials
    except (ConnectionError, OSError) as error:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        details = [p.stderr.read().decode()[-1500:] for p in procs if p.wait() != 0]
        raise RuntimeError(f"real parameter server failed ({error}); worker said:\n{''.join(details[:1])}") from None
    finally:
        for conn in conns:
            if conn is not None:
                conn.close()
        listener.close()
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stderr.close()


class Stats:
    """What one scheduler's iterations measured and verified so far."""

    def __init__(self, n_iter: int, workers: int):
        self.iteration_s, self.worker_s = np.zeros(n_iter), np.zeros((n_iter, workers))
        self.orders_ok, self.crc_errors, self.outputs_ok, self.sent = True, 0, True, 0

    def trial(self, scheduler: str, warmup: int) -> Trial:
        return Trial(scheduler, self.iteration_s, self.worker_s, warmup, bool(self.orders_ok),
                     int(self.crc_errors), bool(self.outputs_ok), self.sent)


def _iteration(config, it, orders, conns, readers, messages, reference, stats: Stats) -> None:
    """Serve one iteration (orders: (workers, n_recv)) to connected workers; verify what comes back."""
    streams = [b"".join(messages[i] for i in order) for order in orders]
    start = time.perf_counter()
    stats.sent += _send_iteration(conns, streams, it, config.bandwidth_gbps, config.chunk_bytes)
    for w, reader in enumerate(readers):
        got_it, bad, seconds, total = REPORT.unpack(_read_exact(reader, REPORT.size))
        got = np.frombuffer(_read_exact(reader, 4 * orders.shape[1]), dtype=">u4")
        stats.orders_ok &= got_it == it and np.array_equal(got, orders[w])
        stats.crc_errors += bad
        stats.outputs_ok &= bool(np.isclose(total, reference, rtol=1e-4, atol=1e-4))
        stats.worker_s[it, w] = seconds
    stats.iteration_s[it] = time.perf_counter() - start


def _parse(argv=None):
    parser = argparse.ArgumentParser(description="TicTac real parameter-server worker")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--worker-id", type=int, required=True)
    for field in dataclasses.fields(PSConfig):
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default))
    ns = parser.parse_args(argv)
    values = {f.name: getattr(ns, f.name) for f in dataclasses.fields(PSConfig) if getattr(ns, f.name) is not None}
    return PSConfig(**values), ns.port, ns.worker_id


if __name__ == "__main__":
    from mlsys_core import backend

    backend.setup(cpu_devices=1)
    worker_main(*_parse())
