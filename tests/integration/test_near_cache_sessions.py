"""The near cache against hostile clients and a failing upstream: a client that has not
authenticated never reads a cached value; a client that leaves while its read is on the tracking
connection costs nothing; a RESP3 client held on its own connection, with a write queued behind
its near read, gets every reply in order when Redis dies mid-read. corral-only."""
import os
import signal
import socket
import time

import pytest

from harness import RespConn, RespError, corral_config, wait_until
from raw_resp import RawConn
from test_near_cache import _corral, _metric

pytestmark = pytest.mark.single_node("the near cache's session faults need one Redis to stop")


def test_an_unauthenticated_client_never_reads_a_cached_value(redis_server, corral_factory):
    cfg = corral_config(redis_server.port)
    cfg["auth"] = {"users": [{"name": "app", "password": "s3cret"}]}
    cfg["policies"] = [{"name": "hot", "match": "hot:<id:u64>", "near_cache": {"max_age": "10s"}}]
    c = corral_factory(cfg)
    with RespConn(redis_server.port) as r:
        assert r.cmd("SET", "hot:1", "secret") == "OK"
        assert r.cmd("HSET", "hot:2", "f", "v") == 1
    with RespConn(c.port) as app, RespConn(c.port) as stranger:
        assert app.cmd("AUTH", "app", "s3cret") == "OK"
        for _ in range(3):  # held in memory now
            assert app.cmd("GET", "hot:1") == b"secret"
            assert app.cmd("HGETALL", "hot:2") == [b"f", b"v"]
        wait_until(lambda: _metric(c, "corral_near_hits_total") >= 4, 5, what="hits")
        noauth = RespError("NOAUTH Authentication required.")
        for args in (("GET", "hot:1"), ("MGET", "hot:1"), ("HGET", "hot:2", "f"),
                     ("EXISTS", "hot:1"), ("STRLEN", "hot:1"), ("HGETALL", "hot:2")):
            assert stranger.cmd(*args) == noauth, args
        assert stranger.cmd("AUTH", "app", "wrong").message.startswith("WRONGPASS")
        assert stranger.cmd("GET", "hot:1") == noauth


def test_a_client_that_leaves_mid_read_costs_nothing(redis_server, corral_factory):
    """Redis is stopped while clients' near reads (GET, MGET, HGETALL: misses) are on the
    tracking connection; the clients close; Redis resumes. corral answers the next client,
    holds no client, and the reads that came back late are not served as anyone's reply."""
    c = _corral(redis_server, corral_factory)
    with RespConn(redis_server.port) as r:
        assert r.cmd("SET", "hot:20", "a") == "OK"
        assert r.cmd("HSET", "hot:21", "f", "v") == 1
    with RespConn(c.port) as warm:
        assert warm.cmd("GET", "hot:22") is None  # the tracking connection is up
    os.kill(redis_server.pid, signal.SIGSTOP)
    try:
        for args in (("GET", "hot:20"), ("MGET", "hot:20", "hot:23"), ("HGETALL", "hot:21")):
            s = socket.create_connection(("127.0.0.1", c.port), timeout=2)
            s.sendall(("*%d\r\n" % len(args) + "".join(
                "$%d\r\n%s\r\n" % (len(a), a) for a in args)).encode())
            time.sleep(0.05)
            s.close()  # mid-read
        time.sleep(0.2)
    finally:
        os.kill(redis_server.pid, signal.SIGCONT)
    with RespConn(c.port) as conn:
        assert conn.cmd("GET", "hot:20") == b"a"
        assert conn.cmd("HGETALL", "hot:21") == [b"f", b"v"]
        assert conn.cmd("MGET", "hot:20", "hot:23") == [b"a", None]
    wait_until(lambda: _metric(c, "corral_clients") == 0, 5, what="the clients gone")
    wait_until(lambda: _metric(c, "corral_pending_requests") == 0, 5, what="nothing pending")


def _read_until_closed(conn, most):
    got = []
    while len(got) < most:
        try:
            got.append(conn.read())
        except AssertionError:  # closed
            break
    return got


def test_a_held_resp3_client_gets_its_replies_in_order_when_redis_dies_mid_read(
        redis_server, corral_factory):
    """HELLO 3 holds a connection of its own with a single Redis. A near read (a miss: on the
    tracking connection) is followed by a write (which waits for it) and a read of the written
    key; Redis is SIGKILLed while the read is out. What comes back comes in order, never a
    reply to the wrong command (losing its connection closes such a client, as Redis's death
    closes a direct client's); a new client, once Redis is back, gets what Redis gives."""
    c = _corral(redis_server, corral_factory)
    with RespConn(redis_server.port) as r:
        assert r.cmd("SET", "hot:30", "old") == "OK"
    with RawConn(c.port) as conn:
        assert conn.cmd("HELLO", "3").startswith(b"%")
        assert conn.cmd("GET", "hot:31") == b"_\r\n"  # the tracking connection is up
        os.kill(redis_server.pid, signal.SIGSTOP)  # the read stays out until the kill
        conn.sock.sendall(b"*2\r\n$3\r\nGET\r\n$6\r\nhot:30\r\n"
                          b"*3\r\n$3\r\nSET\r\n$6\r\nhot:30\r\n$3\r\nnew\r\n"
                          b"*2\r\n$3\r\nGET\r\n$6\r\nhot:30\r\n")
        time.sleep(0.2)
        redis_server.kill()  # SIGKILL while stopped: every connection to it drops
        got = _read_until_closed(conn, 3)
    assert got, "no reply at all"
    # The first reply is the first GET's: the old value (or an error), never the SET's +OK.
    assert got[0] in (b"$3\r\nold\r\n",) or got[0].startswith((b"-", b"!")), got
    if len(got) >= 2:
        assert got[1] == b"+OK\r\n" or got[1].startswith((b"-", b"!")), got
    if len(got) == 3:
        assert got[2] == b"$3\r\nnew\r\n" or got[2].startswith((b"-", b"!")), got
    redis_server.start()
    deadline = time.monotonic() + 10
    while True:
        with RawConn(c.port) as conn:
            hello = conn.cmd("HELLO", "3")  # an error until corral is connected again
            got = [hello]
            if hello.startswith(b"%"):
                got = conn.pipeline([("GET", "hot:30"), ("SET", "hot:30", "v2"),
                                     ("GET", "hot:30")])
        if not any(g.startswith(b"-") for g in got):
            break
        assert time.monotonic() < deadline, got
        time.sleep(0.1)
    assert got[1:] == [b"+OK\r\n", b"$2\r\nv2\r\n"], got
    assert got[0] in (b"_\r\n", b"$2\r\nv2\r\n"), got  # an earlier round's SET may have run
    assert c.running()
