"""The real parameter server's wire format and socket helpers (127.0.0.1 only).

Every message starts with `HEADER` (kind, iteration, parameter index, payload bytes, CRC-32 of the
payload), then the payload. A worker acknowledges each pulled parameter with `ACK` (kind, iteration,
index); a pushed gradient is an `ACK`-shaped head followed by the rest of a `HEADER` and the payload, so
a server reads both from one stream. After each iteration a worker sends the coordinator `REPORT` and
the order its parameters arrived in, a server sends `DONE`. A child's first message to the coordinator
is `HELLO_MSG` with `MAGIC`. `paced_send` keeps a connection at or below a given rate.
"""

from __future__ import annotations

import socket
import struct
import time
import zlib

HEADER = struct.Struct("!BIIQI")  # kind, iteration, param index, payload bytes, crc32
ACK = struct.Struct("!BII")  # kind, iteration, param index (worker -> server, after a pull arrived)
REPORT = struct.Struct("!IIdd")  # iteration, bad crcs, worker seconds, output sum
DONE = struct.Struct("!IIQQ")  # iteration, bad push crcs, pull bytes sent, push bytes received
HELLO_MSG = struct.Struct("!4sBBII")  # magic, HELLO, role, ident, port (a process -> the coordinator, first)
COUNT = struct.Struct("!I")  # a count, or a worker's index (worker -> server, first)
MAGIC = b"TTPS"
BEGIN, PARAM, STOP, GRAD, ACKED, GO, HELLO = 1, 2, 3, 4, 5, 6, 7  # message kinds
SERVER, WORKER = 1, 2  # the role byte of a hello
ROLES = {SERVER: "server", WORKER: "worker"}
HELLO_TIMEOUT_S = 10.0  # a connected process sends its hello at once; garbage that stalls waits no longer


def read_exact(sock: socket.socket, n: int) -> bytes:
    """Exactly `n` bytes from `sock`; ConnectionError if it closes first."""
    buf = bytearray()
    while len(buf) < n:
        part = sock.recv(n - len(buf))
        if not part:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += part
    return bytes(buf)


def read_message(sock: socket.socket) -> tuple[int, int, int, bytes, int]:
    """(kind, iteration, index, payload, crc) of the next `HEADER`-framed message."""
    kind, it, index, nbytes, crc = HEADER.unpack(read_exact(sock, HEADER.size))
    payload = read_exact(sock, nbytes) if nbytes else b""
    return kind, it, index, payload, crc


def read_from_worker(sock: socket.socket) -> tuple[int, int, int, tuple[bytes, bool]]:
    """(kind, iteration, index, (payload, crc ok)) of the next ack or pushed gradient."""
    kind, it, index = ACK.unpack(read_exact(sock, ACK.size))
    if kind == ACKED:
        return kind, it, index, (b"", True)
    nbytes, crc = struct.unpack("!QI", read_exact(sock, HEADER.size - ACK.size))
    payload = read_exact(sock, nbytes) if nbytes else b""
    return kind, it, index, (payload, zlib.crc32(payload) == crc)


def message(kind: int, it: int, index: int, payload: bytes) -> bytes:
    """A `HEADER`-framed message carrying `payload` and its CRC-32.

    Args:
        kind: the message kind (PARAM, GRAD, ...).
        it: the iteration.
        index: the parameter index.
        payload: the bytes carried.
    """
    return HEADER.pack(kind, it, index, len(payload), zlib.crc32(payload)) + payload


def paced_send(sock: socket.socket, data: bytes, gbps: float, chunk: int, lock=None) -> None:
    """Send `data` in chunks, sleeping so that the connection never runs above `gbps`.

    Args:
        sock: the connection.
        data: the bytes to send.
        gbps: Gbit/s, the pace.
        chunk: bytes per send.
        lock: held around each chunk if given (a socket shared with another sender).
    """
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


def connect(port: int, timeout: float) -> socket.socket:
    """A TCP connection to 127.0.0.1:`port` without Nagle's delay, `timeout` seconds per operation."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def peer(conn: socket.socket) -> str:
    """The other end of `conn` as "host:port"."""
    host, port = conn.getpeername()[:2]
    return f"{host}:{port}"
