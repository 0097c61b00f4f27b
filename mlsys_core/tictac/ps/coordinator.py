"""The coordinator: start the servers and workers, hand out parameters and orders, check what comes back.

`run(config, schedulers)` makes this process the coordinator. It starts `servers` server processes
and `workers` worker processes (`python -m mlsys_core.tictac.ps --role=...`, 127.0.0.1 only), hands
each server the real bytes of the parameters it holds (`placement.place`), and for every scheduler and
iteration tells each server the order in which to send its parameters to each worker. Checks: the
receivers' CRC counts, per server the arrival order each worker saw against the schedule
(`orders_match`), and every worker's output against a jitted reference. Processes are stopped by PID at
the end; everything is bounded by `timeout_s`.

`runs(config, schedulers, n_runs)` repeats `run` with fresh processes (seeds seed, seed+1, ...): mean
iteration time per run with warm-up excluded and included, and their spread over runs (`mean_interval`).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import IO

import numpy as np

from mlsys_core import validate
from mlsys_core.tictac.ps.config import PSConfig, to_argv
from mlsys_core.tictac.ps.wire import (
    BEGIN,
    COUNT,
    DONE,
    GO,
    HEADER,
    HELLO,
    HELLO_MSG,
    HELLO_TIMEOUT_S,
    MAGIC,
    PARAM,
    REPORT,
    ROLES,
    SERVER,
    STOP,
    WORKER,
    message,
    peer,
    read_exact,
)


@dataclasses.dataclass(frozen=True)
class Trial:
    """One scheduler's run: wall times, and the checks of every byte and order."""

    scheduler: str  # an `ordering.SCHEDULERS` name
    iteration_s: np.ndarray  # (warmup + iterations,) s, wall time per iteration at the coordinator
    worker_s: np.ndarray  # (warmup + iterations, workers) s, each worker's time from begin to its last op and push
    warmup: int  # leading iterations that are warm-up
    orders_ok: bool  # every server's arrivals in its scheduled order, every iteration and worker
    crc_errors: int  # bad pulls and pushes
    outputs_ok: bool  # every worker's output matched the jitted reference
    bytes_sent: int  # bytes pulled (headers included)
    bytes_pushed: int = 0  # bytes pushed (headers included)

    def mean_s(self, include_warmup: bool = False) -> float:
        """Mean iteration time (s), with or without the first `warmup` iterations."""
        return float(self.iteration_s[0 if include_warmup else self.warmup:].mean())

    def median_s(self) -> float:
        """Median iteration time (s) after warm-up: robust to load spikes from other processes."""
        return float(np.median(self.iteration_s[self.warmup:]))


@dataclasses.dataclass(frozen=True)
class Runs:
    """`n_runs` independent runs (fresh processes, seeds seed..) of `run`."""

    config: PSConfig  # the first run's config (run k has seed config.seed + k)
    trials: tuple[dict[str, Trial], ...]  # run k's `run` result: {scheduler: Trial}

    def per_run_s(self, scheduler: str, include_warmup: bool = False) -> np.ndarray:
        """(runs,) mean iteration time (s) of each run, with or without its warm-up iterations."""
        return np.array([t[scheduler].mean_s(include_warmup) for t in self.trials])

    def speedups(self, baseline: str = "random", scheduler: str = "tac", include_warmup: bool = False) -> np.ndarray:
        """(runs,) baseline's mean time / scheduler's, per run."""
        return self.per_run_s(baseline, include_warmup) / self.per_run_s(scheduler, include_warmup)

    def checks_ok(self) -> bool:
        """Orders as scheduled, no CRC error and correct outputs in every run and scheduler."""
        return all(t.orders_ok and t.crc_errors == 0 and t.outputs_ok for r in self.trials for t in r.values())


class Stats:
    """What one scheduler's iterations measured and verified so far (filled in iteration by iteration)."""

    def __init__(self, n_iter: int, workers: int):
        self.iteration_s, self.worker_s = np.zeros(n_iter), np.zeros((n_iter, workers))
        self.orders_ok, self.crc_errors, self.outputs_ok, self.sent, self.pushed = True, 0, True, 0, 0

    def trial(self, scheduler: str, warmup: int) -> Trial:
        """The finished `Trial`."""
        return Trial(scheduler, self.iteration_s, self.worker_s, warmup, bool(self.orders_ok),
                     int(self.crc_errors), bool(self.outputs_ok), self.sent, self.pushed)


def orders_match(arrived: np.ndarray, scheduled: np.ndarray, server_of: np.ndarray) -> bool:
    """True iff, for every server, the parameters it holds arrived in the order it was told to send
    them (across servers nothing is promised: their links run in parallel)."""
    arrived, scheduled = np.asarray(arrived), np.asarray(scheduled)
    if arrived.shape != scheduled.shape or set(arrived.tolist()) != set(scheduled.tolist()):
        return False
    return all(np.array_equal(arrived[server_of[arrived] == s], scheduled[server_of[scheduled] == s])
               for s in np.unique(server_of))


def mean_interval(values, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean of `values` (>= 2)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"values must hold >= 2 numbers, got {x.tolist()}")
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size))
    return float(x.mean()), float(x.mean() - half), float(x.mean() + half)


# ----------------------------------------------------------------------------------------- processes


@dataclasses.dataclass(frozen=True)
class Child:
    """A server or worker process the coordinator started."""

    name: str  # its role and index ("server 0")
    proc: subprocess.Popen  # the process
    stderr: IO[bytes]  # the temporary file its stderr goes to

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
    """Start `python -m mlsys_core.tictac.ps --role=<role> ...` on the CPU, its stderr to a temporary file."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    stderr = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "mlsys_core.tictac.ps", f"--role={role}", f"--port={port}",
                             f"--ident={ident}", *extra, *to_argv(config)], env=env, stdout=subprocess.DEVNULL,
                            stderr=stderr)
    return Child(f"{role} {ident}", proc, stderr)


def _hello(conn: socket.socket, role: int, count: int, seen) -> tuple[int, int]:
    """A process's first message: (its index, its port). Anything but `HELLO_MSG` with `MAGIC`, `role`
    and a new index below `count` raises ConnectionError naming the peer."""
    who, timeout = peer(conn), conn.gettimeout()
    conn.settimeout(min(HELLO_TIMEOUT_S, timeout))
    try:
        data = read_exact(conn, HELLO_MSG.size)
    except OSError as error:  # ConnectionError, or a timeout
        conn.close()
        raise ConnectionError(f"coordinator: no {HELLO_MSG.size}-byte hello from peer {who} ({error})") from None
    conn.settimeout(timeout)
    magic, kind, got_role, ident, port = HELLO_MSG.unpack(data)
    if magic != MAGIC or kind != HELLO or got_role != role or ident >= count or ident in seen:
        conn.close()
        raise ConnectionError(
            f"coordinator: bad hello from peer {who}: expected magic {MAGIC!r}, kind {HELLO}, role {role} "
            f"({ROLES[role]}) and a new {ROLES[role]} index in 0..{count - 1}, got magic {magic!r}, kind {kind}, "
            f"role {got_role}, index {ident}")
    return ident, port


def _read_from(conn: socket.socket, n: int, who: str) -> bytes:
    try:
        return read_exact(conn, n)
    except OSError as error:
        raise ConnectionError(f"coordinator: reading from {who}: {error}") from None


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


def _failure(children: list[Child], codes: list) -> str:
    """Every child, those that ended by themselves first (`codes`: their return codes before any was stopped)."""
    ended = sorted(range(len(children)), key=lambda i: codes[i] is None)
    return "\n".join("  " + children[i].describe(codes[i]) for i in ended)


# ----------------------------------------------------------------------------------------- the run


@dataclasses.dataclass
class _Session:
    """The coordinator's listener, its children and their connections (filled in as they connect)."""

    config: PSConfig
    deadline: float
    listener: socket.socket
    children: list
    servers: list
    workers: list


def _start_servers(s: _Session, payloads: list[bytes], server_of: np.ndarray) -> list[int]:
    """Start the servers, take their hellos and hand each its parameters; their ports."""
    port = s.listener.getsockname()[1]
    for k in range(s.config.servers):
        s.children.append(_spawn("server", s.config, port, k))
    server_ports = [0] * s.config.servers
    for _ in range(s.config.servers):
        conn = _accept(s.listener, s.deadline, s.children)
        ident, server_ports[ident] = _hello(conn, SERVER, s.config.servers, _connected(s.servers))
        s.servers[ident] = conn
    for k, conn in enumerate(s.servers):
        mine = np.flatnonzero(server_of == k)
        conn.sendall(COUNT.pack(mine.size) + b"".join(message(PARAM, 0, int(i), payloads[i]) for i in mine))
    return server_ports


def _start_workers(s: _Session, server_ports: list[int], server_of: np.ndarray) -> None:
    """Start the workers, take their hellos and tell each where every parameter lives."""
    port = s.listener.getsockname()[1]
    ports = "--server-ports=" + ",".join(map(str, server_ports))
    for w in range(s.config.workers):
        s.children.append(_spawn("worker", s.config, port, w, (ports,)))
    for _ in range(s.config.workers):
        conn = _accept(s.listener, s.deadline, s.children)
        ident, _ = _hello(conn, WORKER, s.config.workers, _connected(s.workers))
        conn.sendall(COUNT.pack(server_of.size) + np.asarray(server_of, dtype=">u4").tobytes())
        s.workers[ident] = conn


def _iteration(it: int, orders: np.ndarray, servers: list, workers: list, server_of: np.ndarray, reference: float,
               stats: Stats) -> None:
    """One iteration: tell every server its sequences, start the workers, collect and verify what comes back.

    Args:
        it: the iteration.
        orders: (workers, n_recv) each worker's order.
        servers: the servers' connections.
        workers: the workers' connections.
        server_of: (n_recv,) the server of each parameter.
        reference: the jitted reference's output sum.
        stats: the scheduler's running totals, updated.
    """
    start = time.perf_counter()
    for k, conn in enumerate(servers):
        seqs = np.stack([order[server_of[order] == k] for order in orders])
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
    for k, conn in enumerate(servers):
        got_it, bad, sent, pushed = DONE.unpack(_read_from(conn, DONE.size, f"server {k}"))
        stats.orders_ok &= got_it == it
        stats.crc_errors += bad
        stats.sent += sent
        stats.pushed += pushed
    stats.iteration_s[it] = time.perf_counter() - start


def _measure(s: _Session, orders: dict, server_of: np.ndarray, reference: float) -> dict[str, Trial]:
    """Every iteration of every scheduler, schedulers interleaved so drifts in machine load hit all alike."""
    n_iter = s.config.warmup + s.config.iterations
    stats = {name: Stats(n_iter, s.config.workers) for name in orders}
    for it in range(n_iter):
        for name, order in orders.items():
            _iteration(it, order[it], s.servers, s.workers, server_of, reference, stats[name])
        if time.monotonic() > s.deadline:
            raise TimeoutError(f"coordinator: the run exceeded timeout_s={s.config.timeout_s}")
    return {name: st.trial(name, s.config.warmup) for name, st in stats.items()}


def _finish(s: _Session) -> None:
    """Tell everyone to stop; RuntimeError naming any process that then failed."""
    for conn in s.servers + s.workers:
        conn.sendall(HEADER.pack(STOP, 0, 0, 0, 0))
    for child in s.children:
        child.proc.wait(timeout=max(1.0, s.deadline - time.monotonic()))
    codes = [child.proc.returncode for child in s.children]
    if any(codes):
        failed = [c.describe(code) for c, code in zip(s.children, codes) if code]
        raise RuntimeError("real parameter server: a process failed:\n  " + "\n  ".join(failed))


def _serve(config: PSConfig, orders: dict, payloads: list[bytes], server_of: np.ndarray,
           reference: float) -> dict[str, Trial]:
    """Run the processes through every scheduler's orders ({name: (iterations, workers, n_recv)})."""
    s = _Session(config, time.monotonic() + config.timeout_s, socket.create_server(("127.0.0.1", 0)), [],
                 [None] * config.servers, [None] * config.workers)
    try:
        server_ports = _start_servers(s, payloads, server_of)
        _start_workers(s, server_ports, server_of)
        trials = _measure(s, orders, server_of, reference)
        _finish(s)
        return trials
    except (OSError, subprocess.TimeoutExpired) as error:  # ConnectionError and timeouts are OSErrors
        codes = _settle(s.children)
        _stop(s.children)
        raise RuntimeError(f"real parameter server failed ({error}); its processes:\n"
                           f"{_failure(s.children, codes)}") from None
    finally:
        for conn in s.servers + s.workers:
            if conn is not None:
                conn.close()
        s.listener.close()
        _stop(s.children)
        for child in s.children:
            child.stderr.close()


def _check_run(config: PSConfig, schedulers) -> None:
    from mlsys_core.tictac import ordering

    validate.instance("config", config, PSConfig, "a ps.PSConfig")
    validate.instance("schedulers", schedulers, (tuple, list), "a tuple of scheduler names")
    if not schedulers:
        raise ValueError(f"schedulers must name at least one scheduler, got {schedulers!r}")
    for name in schedulers:
        validate.choice("scheduler", name, ordering.SCHEDULERS)


def run(config: PSConfig, schedulers=("random", "tic", "tac")) -> dict[str, Trial]:
    """Run each scheduler for `warmup + iterations` iterations, interleaved round-robin.

    The same processes serve every scheduler, so JAX's one-off costs in a fresh worker (the first
    call of each primitive compiles it) land in the first-listed scheduler's first iteration. A
    scheduler that uses a time oracle (TAC) gets a measured one: this machine's eager time of every
    compute op.
    """
    import jax

    from mlsys_core.tictac import jaxgraph, ordering, placement
    from mlsys_core.tictac.ps.worker import traced_program

    _check_run(config, schedulers)
    fn, params, inputs, program = traced_program(config)
    graph = jaxgraph.to_graph(program)
    reference = float(sum(np.asarray(o, dtype=np.float64).sum()
                          for o in jax.tree_util.tree_leaves(jax.jit(fn)(params, *inputs))))
    payloads = [np.ascontiguousarray(np.asarray(leaf)).tobytes() for leaf in jax.tree_util.tree_leaves(params)]
    server_of = placement.place(graph.recv_bytes, config.servers, config.placement)
    oracle = ordering.TimeOracle(bandwidth_gbps=config.bandwidth_gbps, latency_us=0.0)
    timed = any(ordering.SCHEDULERS[name].timed for name in schedulers)
    compute_s = jaxgraph.measured_seconds(program, params, inputs) if timed else None
    n_iter = config.warmup + config.iterations
    orders = {name: ordering.schedule(graph, name, oracle, config.workers, n_iter, config.seed,
                                      compute_seconds=compute_s) for name in schedulers}
    return _serve(config, orders, payloads, server_of, reference)


def runs(config: PSConfig, schedulers=("random", "tac"), n_runs: int = 3) -> Runs:
    """`n_runs` runs of `run`, each with fresh processes and seed config.seed + k."""
    _check_run(config, schedulers)
    validate.integer("n_runs", n_runs, low=1)
    return Runs(config, tuple(run(dataclasses.replace(config, seed=config.seed + k), schedulers)
                              for k in range(n_runs)))
