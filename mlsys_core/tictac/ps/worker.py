"""A worker process: run the model's primitives eagerly as soon as the parameters they read have
arrived, and in training push each gradient to its server the moment the op producing it has run.

Per server connection a receive thread checks each pulled parameter's CRC and acknowledges it at once
(which lets the server send the next), and a push thread sends gradients in the order they were produced,
paced to `bandwidth_gbps / workers`. The compute loop takes arrivals from one queue and runs whichever
primitive is ready (lowest index first). After each iteration the worker reports to the coordinator its
time, its CRC errors, the sum of its outputs and the order its parameters arrived in.
"""

from __future__ import annotations

import dataclasses
import heapq
import queue
import socket
import threading
import time
import zlib

import numpy as np

from mlsys_core.tictac.ps.config import PSConfig
from mlsys_core.tictac.ps.wire import (
    ACK,
    ACKED,
    COUNT,
    GRAD,
    HELLO,
    HELLO_MSG,
    MAGIC,
    PARAM,
    REPORT,
    STOP,
    WORKER,
    connect,
    message,
    paced_send,
    read_exact,
    read_message,
)


def traced_program(config: PSConfig) -> tuple:
    """(fn, params, inputs, flat program) of the config's model, as every process builds it."""
    from mlsys_core.tictac import jaxgraph, models

    fn, params, inputs = models.program(config.model, config.mode, config.seed, config.depth,
                                        config.width, config.batch_size)
    return fn, params, inputs, jaxgraph.trace(fn, params, *inputs)


@dataclasses.dataclass(frozen=True)
class Plan:
    """What the compute loop needs to know of the program, worked out once."""

    program: object  # the `jaxgraph.FlatProgram`
    specs: tuple  # (dtype, shape) of each parameter leaf
    consumers: dict  # var id -> equations that read it (vars a parameter reaches)
    needs: np.ndarray  # (eqns,) how many such vars each equation waits for
    no_wait: tuple  # equations that wait for none
    grad_outputs: tuple  # training: the program outputs that are the gradients, in leaf order
    pushes_after: dict  # equation index -> gradients it completes
    early: tuple  # gradients no equation produces (constants), pushed at the end
    data: dict  # input var id -> the batch


def make_plan(config: PSConfig) -> Plan:
    """The config's model traced, and its dependency bookkeeping (see `Plan`)."""
    import jax

    _, params, inputs, program = traced_program(config)
    leaves = jax.tree_util.tree_leaves(params)
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
    grad_outputs = program.outputs[1:1 + len(leaves)] if config.mode == "train" else ()
    pushes_after: dict[int, list[int]] = {}
    early = []
    for g, (kind, var) in enumerate(grad_outputs):
        if kind == "v" and var in producer:
            pushes_after.setdefault(producer[var], []).append(g)
        else:
            early.append(g)
    return Plan(program, tuple((np.asarray(leaf).dtype, np.shape(leaf)) for leaf in leaves), consumers, needs,
                tuple(i for i in range(len(program.eqns)) if needs[i] == 0), tuple(grad_outputs), pushes_after,
                tuple(early), dict(zip(program.input_vars, jax.tree_util.tree_leaves(inputs))))


def _receive_loop(sock: socket.socket, lock: threading.Lock, inbox: queue.Queue, server_id: int) -> None:
    """One server connection: parse each pulled parameter, check its CRC, acknowledge it at once
    (which lets the server send the next), hand it to the compute loop."""
    try:
        while True:
            kind, it, index, payload, crc = read_message(sock)
            if kind != PARAM:
                break
            with lock:
                sock.sendall(ACK.pack(ACKED, it, index))
            inbox.put((index, payload, zlib.crc32(payload) == crc, server_id))
    except (ConnectionError, OSError):
        pass
    inbox.put(None)


def _push_loop(sock: socket.socket, lock: threading.Lock, outbox: queue.Queue, gbps: float, chunk: int) -> None:
    """One server connection: push gradients in the order they were produced, paced."""
    while True:
        item = outbox.get()
        if item is None:
            outbox.task_done()
            return
        paced_send(sock, item, gbps, chunk, lock)
        outbox.task_done()


class Links:
    """This worker's connections to the servers: one inbox of pulled parameters from all of them, and
    one outbox of gradients per server, each served by its own thread."""

    def __init__(self, config: PSConfig, worker_id: int, server_ports: list[int]):
        self.inbox: queue.Queue = queue.Queue()
        self.socks, self.outboxes = [], []
        gbps = config.bandwidth_gbps / config.workers
        for s, server_port in enumerate(server_ports):
            sock = connect(server_port, config.timeout_s)
            sock.sendall(COUNT.pack(worker_id))
            lock = threading.Lock()
            self.socks.append(sock)
            threading.Thread(target=_receive_loop, args=(sock, lock, self.inbox, s), daemon=True).start()
            outbox: queue.Queue = queue.Queue()
            self.outboxes.append(outbox)
            threading.Thread(target=_push_loop, args=(sock, lock, outbox, gbps, config.chunk_bytes),
                             daemon=True).start()

    def next_arrival(self, busy: bool, timeout_s: float) -> tuple | bool:
        """The next pulled parameter (index, payload, crc ok, server), or False if none has arrived and
        there is compute to do (`busy`); waits up to `timeout_s` otherwise."""
        try:
            item = self.inbox.get_nowait() if busy else self.inbox.get(timeout=timeout_s)
        except queue.Empty:
            if not busy:
                raise ConnectionError("worker waited too long for a parameter") from None
            return False
        if item is None:
            raise ConnectionError("a server closed its connection")
        return item

    def push(self, server: int, data: bytes) -> None:
        """Queue a framed gradient for `server`'s push thread."""
        self.outboxes[server].put(data)

    def drain(self) -> None:
        """Wait until every queued gradient has been sent."""
        for outbox in self.outboxes:
            outbox.join()

    def close(self) -> None:
        """Stop the push threads and close the connections."""
        for outbox in self.outboxes:
            outbox.put(None)
        for sock in self.socks:
            sock.close()


class _Iteration:
    """One iteration's values and readiness: which equations still wait for inputs, which are ready."""

    def __init__(self, plan: Plan, it: int, links: Links, server_of: np.ndarray):
        self.plan, self.it, self.links, self.server_of = plan, it, links, server_of
        self.values, self.missing, self.ready = dict(plan.data), plan.needs.copy(), list(plan.no_wait)
        heapq.heapify(self.ready)

    def arrived(self, var: int) -> None:
        """`var` has its value: equations waiting only for it become ready."""
        for i in self.plan.consumers.get(var, ()):
            self.missing[i] -= 1
            if self.missing[i] == 0:
                heapq.heappush(self.ready, i)

    def store_param(self, index: int, payload: bytes) -> None:
        """Parameter `index` arrived with `payload`."""
        import jax

        dtype, shape = self.plan.specs[index]
        var = self.plan.program.param_vars[index]
        self.values[var] = jax.device_put(np.frombuffer(payload, dtype).reshape(shape))
        self.arrived(var)

    def run_next(self) -> int:
        """Run the lowest-index ready equation; return its index."""
        from mlsys_core.tictac import jaxgraph

        i = heapq.heappop(self.ready)
        eqn = self.plan.program.eqns[i]
        jaxgraph.run_eqn(eqn, self.values)
        for var in eqn.outputs:
            self.arrived(var)
        return i

    def push(self, g: int) -> None:
        """Send gradient `g` to the server that holds its parameter."""
        kind, var = self.plan.grad_outputs[g]
        array = np.asarray(self.values[var] if kind == "v" else var, dtype=self.plan.specs[g][0])
        self.links.push(self.server_of[g], message(GRAD, self.it, g, np.ascontiguousarray(array).tobytes()))

    def outputs(self) -> list:
        """The program's outputs."""
        return [self.values[v] if kind == "v" else v for kind, v in self.plan.program.outputs]


def run_iteration(plan: Plan, links: Links, server_of: np.ndarray, it: int, timeout_s: float) -> tuple:
    """Compute one iteration as parameters arrive, pushing gradients as they are made.

    Returns (arrival order of the parameters, CRC errors, seconds, sum of the outputs).

    Args:
        plan: the program and its bookkeeping (`make_plan`).
        links: this worker's server connections.
        server_of: (n_params,) the server holding each parameter.
        it: the iteration.
        timeout_s: s, the longest wait for a parameter while nothing else can run.
    """
    import jax

    start = time.perf_counter()
    state = _Iteration(plan, it, links, server_of)
    order, bad, done = [], 0, 0
    while done < len(plan.program.eqns) or len(order) < len(plan.specs):
        item = links.next_arrival(bool(state.ready), timeout_s)
        if item:
            index, payload, ok, _ = item
            state.store_param(index, payload)
            order.append(index)
            bad += not ok
            continue
        for g in plan.pushes_after.get(state.run_next(), ()):
            state.push(g)
        done += 1
    for g in plan.early:
        state.push(g)
    outs = state.outputs()
    jax.block_until_ready(outs)
    links.drain()
    seconds = time.perf_counter() - start
    total = float(sum(np.asarray(o, dtype=np.float64).sum() for o in outs))
    return order, bad, seconds, total


def worker_main(config: PSConfig, port: int, worker_id: int, server_ports: list[int]) -> None:
    """A worker: run the model's primitives as soon as the parameters they read have arrived; in
    training push each gradient to its server when the op producing it has run.

    Args:
        config: the experiment.
        port: the coordinator's port on 127.0.0.1.
        worker_id: this worker's index.
        server_ports: each server's port, by server index.
    """
    plan = make_plan(config)
    control = connect(port, config.timeout_s)
    control.sendall(HELLO_MSG.pack(MAGIC, HELLO, WORKER, worker_id, 0))
    (count,) = COUNT.unpack(read_exact(control, COUNT.size))
    server_of = np.frombuffer(read_exact(control, 4 * count), dtype=">u4").astype(np.int64)
    links = Links(config, worker_id, server_ports)
    while True:
        kind, it, _, _, _ = read_message(control)
        if kind == STOP:
            break
        order, bad, seconds, total = run_iteration(plan, links, server_of, it, config.timeout_s)
        control.sendall(REPORT.pack(it, bad, seconds, total) + np.asarray(order, dtype=">u4").tobytes())
    links.close()
    control.close()
