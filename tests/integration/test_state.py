"""Connection state through corral: MULTI/EXEC/WATCH and blocking commands on a dedicated
upstream connection, and SELECT with per-db shared connections. corral-only (the config
matters: a short command_timeout, one shared connection)."""

import threading
import time

import pytest

from cluster_upstream import SELECT_DB
from harness import RespConn, RespError, corral_config, wait_until


def _corral(redis_server, corral_factory, **upstream):
    # One shared connection; a command_timeout short enough to matter but not so short that a
    # loaded CI machine trips it on plain commands (the BLPOP test sets 100ms itself).
    up = {"command_timeout": "1s", "pool_size": 1, **upstream}
    return corral_factory(corral_config(redis_server.port, upstream=up))


def _dedicated(c):
    return c.metrics()["corral_dedicated_connections"]


def test_multi_exec_discard_and_errors(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    with c.client() as cl:
        assert cl.cmd("EXEC") == RespError("ERR EXEC without MULTI")
        assert cl.cmd("DISCARD") == RespError("ERR DISCARD without MULTI")
        assert cl.pipeline([("SET", "tx:a", "1"), ("MULTI",), ("INCR", "tx:a"), ("PING",),
                            ("GET", "tx:a"), ("EXEC",)]) == \
            ["OK", "OK", "QUEUED", "QUEUED", "QUEUED", [2, "PONG", b"2"]]
        assert cl.cmd("MULTI") == "OK"
        assert cl.cmd("SET", "tx:b", "x") == "QUEUED"
        assert cl.cmd("DISCARD") == "OK"
        assert cl.cmd("GET", "tx:b") is None
        # a syntax error inside MULTI makes EXEC abort, as Redis does
        assert cl.cmd("MULTI") == "OK"
        assert isinstance(cl.cmd("INCR"), RespError)
        r = cl.cmd("EXEC")
        assert isinstance(r, RespError) and r.startswith("EXECABORT"), r
        # the dedicated connection went back once the transaction ended
        wait_until(lambda: _dedicated(c) == 0, 3, what="dedicated connection released")
        assert cl.cmd("GET", "tx:a") == b"2"


def test_watch_aborted_by_concurrent_write(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    with c.client() as a, c.client() as b:
        assert a.cmd("SET", "w:k", "0") == "OK"
        assert a.cmd("WATCH", "w:k") == "OK"
        assert b.cmd("SET", "w:k", "other") == "OK"  # through the shared connection
        assert a.cmd("MULTI") == "OK"
        assert a.cmd("SET", "w:k", "mine") == "QUEUED"
        assert a.cmd("EXEC") is None  # aborted: nil
        assert a.cmd("GET", "w:k") == b"other"
        # an untouched WATCH lets EXEC through
        assert a.cmd("WATCH", "w:k") == "OK"
        assert a.cmd("MULTI") == "OK"
        assert a.cmd("SET", "w:k", "mine") == "QUEUED"
        assert a.cmd("EXEC") == ["OK"]
        assert b.cmd("GET", "w:k") == b"mine"
        # UNWATCH alone ends the state
        assert a.cmd("WATCH", "w:k") == "OK"
        assert _dedicated(c) == 1
        assert a.cmd("UNWATCH") == "OK"
        wait_until(lambda: _dedicated(c) == 0, 3, what="released after UNWATCH")


def test_blpop_outlives_command_timeout(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory, command_timeout="100ms")

    def produce():
        time.sleep(0.2)
        with redis_server.client() as p:
            p.cmd("RPUSH", "q:late", "job")

    t = threading.Thread(target=produce, daemon=True)
    with c.client(timeout=5.0) as cl:
        t.start()
        started = time.monotonic()
        assert cl.cmd("BLPOP", "q:late", "2") == [b"q:late", b"job"]
        assert 0.15 < time.monotonic() - started < 1.5
        # a block that times out is Redis's nil, not a corral timeout
        started = time.monotonic()
        assert cl.cmd("BRPOP", "q:none", "0.3") is None
        assert 0.25 < time.monotonic() - started < 1.5
        assert cl.cmd("XREAD", "BLOCK", "300", "STREAMS", "s:none", "$") is None
        wait_until(lambda: _dedicated(c) == 0, 3, what="released after the blocking replies")
    t.join(5)


def test_blpop_forever_released_by_disconnect(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    cl = c.client(timeout=5.0)
    cl.send_cmd("BLPOP", "q:gone", "0")
    wait_until(lambda: _dedicated(c) == 1, 3, what="a dedicated connection for BLPOP 0")
    wait_until(lambda: int(redis_server.info("clients")["blocked_clients"]) == 1, 3,
               what="redis sees the blocked client")
    cl.close()
    wait_until(lambda: _dedicated(c) == 0, 3, what="released by the client's disconnect")
    wait_until(lambda: int(redis_server.info("clients")["blocked_clients"]) == 0, 3,
               what="redis no longer blocks on the gone client")
    # nothing consumes an item any more
    with c.client() as p:
        assert p.cmd("RPUSH", "q:gone", "x") == 1
        time.sleep(0.1)
        assert p.cmd("LLEN", "q:gone") == 1


def test_fifty_concurrent_blocked_clients(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    n = 50
    conns = [c.client(timeout=10.0) for _ in range(n)]
    try:
        for i, cl in enumerate(conns):
            cl.send_cmd("BLPOP", f"q:many:{i}", "5")
        wait_until(lambda: int(redis_server.info("clients")["blocked_clients"]) == n, 5,
                   what=f"{n} blocked clients in redis")
        # the shared connection keeps serving meanwhile
        with c.client() as other:
            assert other.cmd("PING") == "PONG"
            assert other.cmd("SET", "free", "1") == "OK"
            for i in range(n):
                assert other.cmd("RPUSH", f"q:many:{i}", f"item{i}") == 1
        got = [cl.read_reply() for cl in conns]
        assert got == [[f"q:many:{i}".encode(), f"item{i}".encode()] for i in range(n)]
        wait_until(lambda: _dedicated(c) == 0, 5, what="all dedicated connections released")
    finally:
        for cl in conns:
            cl.close()


def test_max_dedicated_is_enforced(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory, max_dedicated=2)
    a, b, x = (c.client(timeout=5.0) for _ in range(3))
    try:
        a.send_cmd("BLPOP", "q:cap", "5")
        b.send_cmd("BLPOP", "q:cap", "5")
        wait_until(lambda: _dedicated(c) == 2, 3, what="two dedicated connections")
        r = x.cmd("BLPOP", "q:cap", "5")
        assert isinstance(r, RespError) and r.startswith("ERR corral: too many dedicated"), r
        assert x.cmd("PING") == "PONG"
        with c.client() as p:
            assert p.cmd("RPUSH", "q:cap", "1", "2") == 2
        assert {tuple(a.read_reply()), tuple(b.read_reply())} == {(b"q:cap", b"1"),
                                                                  (b"q:cap", b"2")}
    finally:
        for cl in (a, b, x):
            cl.close()


@pytest.mark.single_node(SELECT_DB)
def test_clients_on_different_dbs_never_cross(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)  # pool_size 1: one shared connection per db
    with c.client() as d0, c.client() as d5:
        assert d5.cmd("SELECT", "5") == "OK"
        for round_ in range(20):
            d0.send_cmd("SET", "dbk", f"zero{round_}")
            d5.send_cmd("SET", "dbk", f"five{round_}")
            d0.send_cmd("GET", "dbk")
            d5.send_cmd("GET", "dbk")
            assert [d0.read_reply(), d0.read_reply()] == ["OK", f"zero{round_}".encode()]
            assert [d5.read_reply(), d5.read_reply()] == ["OK", f"five{round_}".encode()]
        with RespConn(redis_server.port) as direct:
            assert direct.cmd("GET", "dbk") == b"zero19"
            assert direct.cmd("SELECT", "5") == "OK"
            assert direct.cmd("GET", "dbk") == b"five19"
        # SELECT pipelined behind writes keeps their order
        assert d0.pipeline([("SET", "ord", "a"), ("SELECT", "6"), ("SET", "ord", "b"),
                            ("SELECT", "0"), ("GET", "ord")]) == ["OK", "OK", "OK", "OK", b"a"]
        assert d0.cmd("SELECT", "16") == RespError("ERR DB index is out of range")
        assert d0.cmd("SELECT", "x") == RespError("ERR value is not an integer or out of range")
        # a transaction runs in the client's db
        assert d5.pipeline([("MULTI",), ("GET", "dbk"), ("EXEC",)]) == \
            ["OK", "QUEUED", [b"five19"]]
        # SELECT inside MULTI is queued like any command; a discarded one changes nothing
        assert d5.pipeline([("MULTI",), ("SELECT", "1"), ("DISCARD",), ("GET", "dbk")]) == \
            ["OK", "QUEUED", "OK", b"five19"]
        # and an executed one switches the db for the rest of the transaction and after it
        assert d5.pipeline([("MULTI",), ("SELECT", "0"), ("GET", "dbk"), ("EXEC",),
                            ("GET", "dbk")]) == \
            ["OK", "QUEUED", "QUEUED", ["OK", b"zero19"], b"zero19"]


def test_disconnect_inside_multi_discards_it(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    cl = c.client()
    assert cl.cmd("MULTI") == "OK"
    assert cl.cmd("SET", "tx:lost", "1") == "QUEUED"
    cl.close()
    wait_until(lambda: _dedicated(c) == 0, 3, what="released by the disconnect")
    with c.client() as p:
        assert p.cmd("GET", "tx:lost") is None
        assert p.cmd("EXEC") == RespError("ERR EXEC without MULTI")


def test_functions_and_read_only_scripts(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    lib = ("#!lua name=corrallib\n"
           "redis.register_function('setk', function(keys, args) "
           "return redis.call('SET', keys[1], args[1]) end)\n"
           "redis.register_function{function_name='getro', callback=function(keys, args) "
           "return redis.call('GET', keys[1]) end, flags={'no-writes'}}")
    with c.client() as cl:
        assert cl.cmd("FUNCTION", "LOAD", "REPLACE", lib) == b"corrallib"
        assert cl.cmd("FCALL", "setk", "1", "fn:k", "v1") == "OK"
        assert cl.cmd("FCALL_RO", "getro", "1", "fn:k") == b"v1"
        assert cl.cmd("EVAL_RO", "return redis.call('GET', KEYS[1])", "1", "fn:k") == b"v1"
        sha = cl.cmd("SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])")
        assert cl.cmd("SCRIPT", "EXISTS", sha) == [1]
        assert cl.cmd("EVALSHA_RO", sha, "1", "fn:k") == b"v1"
        assert cl.cmd("FUNCTION", "DELETE", "corrallib") == "OK"


def test_client_reply_off_and_on(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    with c.client() as cl:
        cl.send_cmd("CLIENT", "REPLY", "OFF")
        cl.send_cmd("SET", "quiet", "1")
        cl.send_cmd("INCR", "quiet")
        assert cl.cmd("CLIENT", "REPLY", "ON") == "OK"  # the first reply since OFF
        assert cl.cmd("GET", "quiet") == b"2"
