"""Test 10: command timeout and fast failure when the upstream is absent. corral-only."""

import errno
import re
import select
import socket
import time

from harness import RespError, corral_config, encode_command, free_port, wait_until

TIMEOUT_ERR = re.compile(r"^ERR corral: upstream \S+ timeout")
UNAVAILABLE_ERR = re.compile(r"^ERR corral: upstream \S+ unavailable")


def test_command_timeout_then_service_resumes(redis_server, corral_factory):
    c = corral_factory(corral_config(redis_server.port, upstream={"command_timeout": "200ms"}))
    with c.client(timeout=5.0) as cl:
        assert cl.cmd("SET", "t", "1") == "OK"
        t0 = time.monotonic()
        # DEBUG SLEEP 1 plus one request queued behind it on the same connection
        cl.send_raw(encode_command("DEBUG", "SLEEP", "1") + encode_command("GET", "t"))
        r1 = cl.read_reply()
        elapsed = time.monotonic() - t0
        assert isinstance(r1, RespError) and TIMEOUT_ERR.match(r1.message), r1
        assert any(f"127.0.0.1:{p}" in r1.message for p in redis_server.ports()), r1
        assert elapsed < 1.0, f"timeout error took {elapsed:.3f}s (command_timeout 200ms)"
        assert elapsed >= 0.15, f"timeout error came after only {elapsed:.3f}s"
        r2 = cl.read_reply()
        assert r2 == b"1" or (isinstance(r2, RespError) and TIMEOUT_ERR.match(r2.message)), r2
        # the connection and the service come back (redis wakes up after 1 s)
        # DBSIZE: every node of a cluster upstream is awake too (the sleeping one may not own t)
        wait_until(lambda: cl.cmd("GET", "t") == b"1" and isinstance(cl.cmd("DBSIZE"), int), 5,
                   interval=0.05, what="GET and DBSIZE after the timeout")
        assert cl.pipeline([("INCR", "n"), ("INCR", "n"), ("GET", "t")]) == [1, 2, b"1"]
    with c.client() as cl:
        assert cl.cmd("GET", "t") == b"1"


def test_request_after_an_idle_spell_is_no_timeout(redis_server, corral_factory):
    """A connection idle for longer than command_timeout is not "stuck" when a request is queued
    on it: the stall clock starts with the request. (It used to start at the last byte moved,
    so a tick in the same loop turn as the request failed it with a timeout, about one request
    in five here.)"""
    c = corral_factory(corral_config(redis_server.port, upstream={"command_timeout": "100ms"}))
    with c.client() as cl:
        got = []
        for i in range(40):
            time.sleep(0.12)
            got.append(cl.cmd("SET", "k", i))
        assert got == ["OK"] * 40, [r for r in got if r != "OK"]


def test_unavailable_upstream_fails_fast(corral_factory, corral_only):
    dead = free_port()  # nothing listens here
    c = corral_factory(corral_config(dead, upstream={"connect_timeout": "300ms",
                                                     "command_timeout": "500ms"}))
    with c.client(timeout=5.0) as cl:
        for cmd in (("GET", "k"), ("SET", "k", "v"), ("INCR", "n")):
            t0 = time.monotonic()
            r = cl.cmd(*cmd)
            elapsed = time.monotonic() - t0
            assert isinstance(r, RespError) and UNAVAILABLE_ERR.match(r.message), r
            assert f"127.0.0.1:{dead}" in r.message, r
            assert elapsed < 1.0, f"{cmd}: reply took {elapsed:.3f}s"
        # local commands do not need the upstream
        assert cl.cmd("PING") == "PONG"
        # a pipeline of 50 all get their error, in bounded time
        t0 = time.monotonic()
        rs = cl.pipeline([("GET", f"k{i}") for i in range(50)])
        assert all(isinstance(r, RespError) and UNAVAILABLE_ERR.match(r.message) for r in rs), \
            rs[:3]
        assert time.monotonic() - t0 < 2.0


class BlackHole:
    """A loopback port whose connects never complete: a listener with backlog 0 that never
    accepts, its accept queue filled by us, so further SYNs are dropped."""

    def __init__(self):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(0)
        self.port = self.lsock.getsockname()[1]
        self.fillers = []
        for _ in range(8):
            s = socket.socket()
            s.setblocking(False)
            if s.connect_ex(("127.0.0.1", self.port)) not in (0, errno.EINPROGRESS):
                s.close()
                continue
            self.fillers.append(s)
            # did this one complete? if not, the queue is full and SYNs are being dropped
            _, w, _ = select.select([], [s], [], 0.2)
            if not w:
                return
        raise AssertionError("could not fill the accept queue of a backlog-0 listener")

    def close(self):
        for s in self.fillers:
            s.close()
        self.lsock.close()


def test_blackhole_upstream_connect_times_out_fast(corral_factory, corral_only):
    hole = BlackHole()
    try:
        with socket.socket() as probe:  # the premise: a connect here does not complete
            probe.settimeout(0.3)
            try:
                probe.connect(("127.0.0.1", hole.port))
                raise AssertionError("black hole accepted a connection; premise broken")
            except socket.timeout:
                pass
        c = corral_factory(corral_config(hole.port, upstream={"connect_timeout": "300ms",
                                                              "command_timeout": "500ms"}))
        with c.client(timeout=5.0) as cl:
            for _ in range(3):
                t0 = time.monotonic()
                r = cl.cmd("GET", "k")
                elapsed = time.monotonic() - t0
                assert isinstance(r, RespError) and re.match(
                    r"^ERR corral: upstream \S+ (unavailable|timeout)", r.message), r
                assert elapsed < 1.0, f"reply took {elapsed:.3f}s with connect_timeout 300ms"
            assert cl.cmd("PING") == "PONG"
    finally:
        hole.close()
