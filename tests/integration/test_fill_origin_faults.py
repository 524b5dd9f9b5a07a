"""Fills against an origin that misbehaves on the wire, below HTTP's status codes: it closes the
connection before answering, closes it halfway through a body, or trickles a body slower than
the origin's timeout. Nothing partial is ever stored or served; retries recover a one-off fault;
every client is answered within the fill's deadline; repeated faults open the breaker, which
then answers at once without calling. corral-only; loopback; every wait bounded."""

import socket
import threading
import time

import pytest

from harness import RespError, corral_config

SECRET = "faults-fill-secret-0123456789abcdef"
BODY = b"full-value-" + b"x" * 100


class WireOrigin:
    """A raw TCP origin. Each accepted request takes the next fault from `faults` (then "ok"):
    ok: a whole 200; close: read the request, close without a byte; half: headers and half the
    body, then close; trickle: headers, then one byte every 100 ms (slower than any timeout
    here). Counts requests."""

    def __init__(self):
        self.lock = threading.Lock()
        self.faults = []
        self.requests = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        conn.settimeout(3)
        with conn:
            buf = b""
            while not self.stop.is_set():  # keep-alive: one request after another
                try:
                    while b"\r\n\r\n" not in buf:
                        chunk = conn.recv(4096)
                        if not chunk:
                            return
                        buf += chunk
                except OSError:
                    return
                buf = buf.split(b"\r\n\r\n", 1)[1]
                with self.lock:
                    self.requests += 1
                    fault = self.faults.pop(0) if self.faults else "ok"
                head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                        + str(len(BODY)).encode() + b"\r\n\r\n")
                try:
                    if fault == "close":
                        return
                    if fault == "half":
                        conn.sendall(head + BODY[:len(BODY) // 2])
                        return
                    if fault == "trickle":
                        conn.sendall(head)
                        for i in range(len(BODY)):
                            if self.stop.wait(0.1):
                                return
                            conn.sendall(BODY[i:i + 1])
                        continue
                    conn.sendall(head + BODY)
                except OSError:
                    return

    def script(self, *faults):
        with self.lock:
            self.faults = list(faults)
            self.requests = 0

    def count(self):
        with self.lock:
            return self.requests

    def close(self):
        self.stop.set()
        self.sock.close()
        self.thread.join(2)


@pytest.fixture
def wire_origin():
    o = WireOrigin()
    try:
        yield o
    finally:
        o.close()


def config(redis_port, origin_url, origin_extra):
    cfg = corral_config(redis_port)
    cfg.setdefault("global", {})["fill_secret"] = SECRET
    cfg["origins"] = {"users": {"base_url": origin_url, "timeout": "600ms", **origin_extra}}
    cfg["policies"] = [{"name": "user", "match": "user:<id:u64>", "ttl": {"default": "60s"},
                        "fill": {"origin": "users", "path": "/v1/users/<id>",
                                 "on_error": "error"},
                        "stampede": {"single_flight": "local"}}]
    return cfg


def timed_get(cl, key):
    t0 = time.monotonic()
    r = cl.cmd("GET", key)
    return r, time.monotonic() - t0


@pytest.mark.parametrize("fault", ["close", "half", "trickle"])
def test_without_retry_a_fault_is_a_fill_error_and_nothing_is_stored(
        redis_server, corral_factory, wire_origin, fault):
    c = corral_factory(config(redis_server.port, wire_origin.url, {}))
    wire_origin.script(fault)
    with c.client(timeout=5) as cl, redis_server.client() as r:
        got, took = timed_get(cl, "user:1")
        assert isinstance(got, RespError) and got.message.startswith("FILLERR users"), got
        assert took < 0.6 + 0.5, f"{fault}: answered after {took:.2f}s (timeout 600ms)"
        assert r.cmd("GET", "user:1") is None, "a partial or failed body was stored"
        assert wire_origin.count() == 1
        # the next miss fills normally: the connection corral held was not reused broken
        got, _ = timed_get(cl, "user:1")
        assert got == BODY
        assert r.cmd("GET", "user:1") == BODY


@pytest.mark.parametrize("fault", ["close", "half", "trickle"])
def test_a_retry_recovers_a_one_off_fault(redis_server, corral_factory, wire_origin, fault):
    c = corral_factory(config(redis_server.port, wire_origin.url, {
        "retry": {"attempts": 3, "per_try_timeout": "250ms"}}))
    wire_origin.script(fault)
    with c.client(timeout=5) as cl, redis_server.client() as r:
        got, took = timed_get(cl, "user:2")
        assert got == BODY, (fault, got)
        assert took < 0.6 + 0.5, f"{fault}: answered after {took:.2f}s"
        assert wire_origin.count() == 2, "one fault, one retry"
        assert r.cmd("GET", "user:2") == BODY


def test_repeated_faults_open_the_breaker_which_answers_without_calling(
        redis_server, corral_factory, wire_origin):
    c = corral_factory(config(redis_server.port, wire_origin.url, {
        "breaker": {"failures": 3, "open_for": "30s"}}))
    wire_origin.script("close", "half", "trickle", "close", "close")
    with c.client(timeout=5) as cl:
        for i in range(3):
            got, _ = timed_get(cl, f"user:{10 + i}")
            assert isinstance(got, RespError), got
        assert wire_origin.count() == 3
        for i in range(10):
            got, took = timed_get(cl, f"user:{20 + i}")
            assert isinstance(got, RespError) and got.message == "FILLERR users open", got
            assert took < 0.2, f"an open breaker took {took:.2f}s"
        assert wire_origin.count() == 3, "the open breaker called the origin"
