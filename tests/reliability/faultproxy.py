"""A fault-injecting TCP proxy on loopback, between the kiosk and the hub.

Each accepted connection carries one request (answers are rewritten to `Connection: close`)
and gets a mode from `plan(n)`.

Modes: pass, drop (close at once), reset (read the request, then RST), stall (read the
request, say nothing for `stall_s`), truncate (forward, send half the answer, close),
http500, http429 (with Retry-After), lost_answer (forward: the hub commits; the answer is
thrown away and the connection closed).
"""
from __future__ import annotations

import collections
import socket
import struct
import threading
import time

MODES = ("pass", "drop", "reset", "stall", "truncate", "http500", "http429", "lost_answer")


def read_request(sock: socket.socket, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def read_response(sock: socket.socket, timeout: float = 30.0) -> bytes:
    return read_request(sock, timeout)  # same framing: headers + Content-Length body


def close_after(response: bytes) -> bytes:
    """One request per connection, so every request meets its own fault."""
    head, sep, body = response.partition(b"\r\n\r\n")
    lines = [l for l in head.split(b"\r\n") if not l.lower().startswith(b"connection:")]
    return b"\r\n".join(lines + [b"Connection: close"]) + sep + body


def canned(status: int, reason: str, extra: str = "") -> bytes:
    body = b'{"type":"https://nfc-kiosk.dev/problems/overloaded","title":"injected fault","status":%d}' % status
    return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/problem+json\r\n{extra}"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body


class FaultProxy:
    def __init__(self, upstream: tuple[str, int], plan, stall_s: float = 3.0, retry_after: int = 1) -> None:
        self.upstream = upstream
        self.plan = plan
        self.stall_s = stall_s
        self.retry_after = retry_after
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.counts: collections.Counter = collections.Counter()
        self.connections = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FaultProxy":
        t = threading.Thread(target=self._accept, daemon=True, name="faultproxy")
        t.start()
        self._threads.append(t)
        return self

    def stop(self) -> None:
        self._stop.set()
        try:
            self.listener.close()
        except OSError:
            pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                n = self.connections
                self.connections += 1
            mode = self.plan(n)
            self.counts[mode] += 1
            threading.Thread(target=self._serve, args=(client, mode), daemon=True).start()

    def _serve(self, client: socket.socket, mode: str) -> None:
        upstream = None
        try:
            if mode == "drop":
                return
            request = read_request(client)
            if not request:
                return
            if mode == "reset":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            if mode == "stall":
                self._stop.wait(self.stall_s)
                return
            if mode == "http500":
                client.sendall(canned(500, "Internal Server Error"))
                return
            if mode == "http429":
                client.sendall(canned(429, "Too Many Requests", f"Retry-After: {self.retry_after}\r\n"))
                return
            upstream = socket.create_connection(self.upstream, timeout=30)
            upstream.sendall(request)
            response = read_response(upstream)
            if mode == "pass":
                client.sendall(close_after(response))
            elif mode == "truncate":
                client.sendall(response[: max(1, len(response) // 2)])
            # lost_answer: the hub did the work; the kiosk never hears of it
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                if s is not None:
                    try:
                        s.close()
                    except OSError:
                        pass


class Scripted:
    """A plan: a seeded random choice of modes, or a fixed list for the first connections."""

    def __init__(self, rng, weights: dict[str, float] | None = None, first: list[str] | None = None) -> None:
        self.rng = rng
        self.weights = weights or {"pass": 1.0}
        self.first = list(first or [])
        self.lock = threading.Lock()
        self.enabled = True

    def __call__(self, n: int) -> str:
        with self.lock:
            if n < len(self.first):
                return self.first[n]
            if not self.enabled:
                return "pass"
            modes, weights = zip(*self.weights.items())
            return self.rng.choices(modes, weights)[0]


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
