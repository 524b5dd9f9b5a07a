"""The near cache (policies' near_cache, proxy/net/near_cache.h) against a real redis-server:
GETs of a near policy's keys answered from corral's memory, and never an old value once Redis
has said the key changed (CLIENT TRACKING) or once a write through corral is acknowledged.
corral-only. Replicas, Sentinel and Cluster upstreams: test_near_cache_sentinel.py and
test_near_cache_cluster.py."""
import os
import random
import signal
import time

import pytest

from harness import RespConn, RespError, corral_config, wait_until

pytestmark = pytest.mark.single_node(
    "the tests write to the one redis-server directly; the cluster's own: test_near_cache_cluster")


def _corral(redis_server, corral_factory, workers=1, max_age="10s", **near):
    cfg = corral_config(redis_server.port, workers=workers)
    cfg["policies"] = [{"name": "hot", "match": "hot:<id:u64>",
                        "near_cache": {"max_age": max_age, **near}},
                       {"name": "cold", "match": "cold:<id:u64>"}]
    return corral_factory(cfg)


def _gets(redis_server) -> int:
    with RespConn(redis_server.port) as r:
        info = r.cmd("INFO", "commandstats").decode()
    for line in info.splitlines():
        if line.startswith("cmdstat_get:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def _metric(c, name):
    return c.metrics().get(name, 0.0)


def test_repeated_gets_are_answered_from_memory(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    with RespConn(redis_server.port) as r:
        assert r.cmd("SET", "hot:1", "v1") == "OK"
        assert r.cmd("SET", "cold:1", "c1") == "OK"
    with RespConn(c.port) as conn:
        assert conn.cmd("GET", "hot:1") == b"v1"  # a miss: read on the tracking connection
        before = _gets(redis_server)
        for _ in range(50):
            assert conn.cmd("GET", "hot:1") == b"v1"
        assert _gets(redis_server) == before, "Redis ran GETs the near cache should have answered"
        for _ in range(5):
            assert conn.cmd("GET", "cold:1") == b"c1"  # no near_cache: every one reaches Redis
        assert _gets(redis_server) == before + 5
        assert conn.cmd("GET", "hot:404") is None  # nil is not cached, nor lost
    wait_until(lambda: _metric(c, "corral_near_hits_total") >= 50, 5, what="near hits counted")


def test_a_write_straight_to_redis_is_seen_once_redis_says_so(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    with RespConn(c.port) as conn, RespConn(redis_server.port) as r:
        assert r.cmd("SET", "hot:2", "old") == "OK"
        assert conn.cmd("GET", "hot:2") == b"old"
        assert conn.cmd("GET", "hot:2") == b"old"  # cached
        assert r.cmd("SET", "hot:2", "new") == "OK"
        t0 = time.monotonic()
        wait_until(lambda: conn.cmd("GET", "hot:2") == b"new", 2, interval=0.001,
                   what="the invalidation reached corral")
        assert time.monotonic() - t0 < 1.0
        assert r.cmd("DEL", "hot:2") == 1
        wait_until(lambda: conn.cmd("GET", "hot:2") is None, 2, interval=0.001, what="DEL seen")


def test_a_write_through_corral_is_read_back_at_once(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    with RespConn(c.port) as conn:
        for i in range(200):
            assert conn.cmd("SET", "hot:3", f"v{i}") == "OK"
            assert conn.cmd("GET", "hot:3") == f"v{i}".encode()  # never the value before
            assert conn.cmd("GET", "hot:3") == f"v{i}".encode()


def test_ttl_in_redis_bounds_the_cached_copy(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory, max_age="30s")
    with RespConn(c.port) as conn, RespConn(redis_server.port) as r:
        assert r.cmd("SET", "hot:4", "short", "PX", "400") == "OK"
        assert conn.cmd("GET", "hot:4") == b"short"
        assert conn.cmd("GET", "hot:4") == b"short"
        deadline = time.monotonic() + 3
        while r.cmd("EXISTS", "hot:4") == 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert r.cmd("EXISTS", "hot:4") == 0
        assert conn.cmd("GET", "hot:4") is None  # expired in Redis: never served after


def test_max_age_bounds_a_key_without_ttl(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory, max_age="300ms")
    with RespConn(c.port) as conn:
        assert conn.cmd("GET", "hot:5") is None
    with RespConn(redis_server.port) as r:
        assert r.cmd("SET", "hot:5", "a") == "OK"
    with RespConn(c.port) as conn:
        assert conn.cmd("GET", "hot:5") == b"a"
        before = _gets(redis_server)
        assert conn.cmd("GET", "hot:5") == b"a"
        assert _gets(redis_server) == before
        time.sleep(0.4)
        assert conn.cmd("GET", "hot:5") == b"a"
        assert _gets(redis_server) == before + 1  # past max_age: read again


def test_flushall_and_a_lost_tracking_connection_empty_the_cache(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    with RespConn(c.port) as conn, RespConn(redis_server.port) as r:
        assert r.cmd("SET", "hot:6", "x") == "OK"
        assert conn.cmd("GET", "hot:6") == b"x"
        assert r.cmd("FLUSHALL") == "OK"
        wait_until(lambda: conn.cmd("GET", "hot:6") is None, 2, interval=0.001,
                   what="FLUSHALL's null invalidation")
        assert r.cmd("SET", "hot:6", "y") == "OK"
        assert conn.cmd("GET", "hot:6") == b"y"
        # Kill corral's tracking connection: whatever it missed must not be served.
        clients = r.cmd("CLIENT", "LIST").decode().splitlines()
        tracking = [ln for ln in clients if "t" in ln.split(" flags=")[1].split(" ")[0]]
        assert tracking, clients
        for ln in tracking:
            cid = ln.split("id=")[1].split(" ")[0]
            r.cmd("CLIENT", "KILL", "ID", cid)
        assert r.cmd("SET", "hot:6", "z") == "OK"
        wait_until(lambda: conn.cmd("GET", "hot:6") == b"z", 3, interval=0.01,
                   what="served again from Redis after the tracking connection came back")


def test_coherence_checker_random_writes_direct_and_through_another_corral(
        redis_server, corral_factory):
    """Readers through corral A; writers straight to Redis and through corral B, on random keys.
    After a write is acknowledged, A may serve the old value only until Redis's invalidation
    arrives: each read is checked against the versions written, and once a newer version has
    been read, an older one must never come back (no reordering), and a write is seen within
    the invalidation bound."""
    a = _corral(redis_server, corral_factory, workers=2)
    b = _corral(redis_server, corral_factory)
    rng = random.Random(20261206)
    keys = [f"hot:{100 + i}" for i in range(20)]
    version = {k: 0 for k in keys}
    seen = {k: 0 for k in keys}
    delays = []
    with RespConn(a.port) as reader, RespConn(b.port) as via_b, \
            RespConn(redis_server.port) as direct:
        for k in keys:
            assert direct.cmd("SET", k, "0") == "OK"
        for step in range(600):
            k = rng.choice(keys)
            if rng.random() < 0.3:
                version[k] += 1
                w = direct if rng.random() < 0.5 else via_b
                assert w.cmd("SET", k, str(version[k])) == "OK"
                t0 = time.monotonic()
                while True:  # the write must become visible through A, quickly
                    got = int(reader.cmd("GET", k))
                    assert got <= version[k]
                    assert got >= seen[k], f"step {step}: {k} went back from {seen[k]} to {got}"
                    seen[k] = got
                    if got == version[k]:
                        break
                    assert time.monotonic() - t0 < 1.0, f"{k}: version {version[k]} never seen"
                delays.append(time.monotonic() - t0)
            else:
                got = int(reader.cmd("GET", k))
                assert got >= seen[k], f"step {step}: {k} went back from {seen[k]} to {got}"
                assert got <= version[k]
                seen[k] = got
    assert delays and max(delays) < 1.0
    assert _metric(a, "corral_near_hits_total") > 0


def test_a_client_logged_in_as_its_own_user_never_reads_a_near_copy(redis_server,
                                                                    corral_factory):
    """Passthrough AUTH: Redis's ACL decides what such a client reads, so a copy corral read
    with its own credentials (for another client) is never served to it."""
    redis_server.cmd("ACL", "SETUSER", "narrow", "on", ">narrow-pw-7f1", "~cold:*", "-@all",
                     "+get", "+set", "+ping")
    c = _corral(redis_server, corral_factory)
    with RespConn(redis_server.port) as r:
        assert r.cmd("SET", "hot:7", "secret") == "OK"
    with RespConn(c.port) as anyone, RespConn(c.port) as narrow:
        assert anyone.cmd("GET", "hot:7") == b"secret"
        assert anyone.cmd("GET", "hot:7") == b"secret"  # now held in memory
        assert narrow.cmd("AUTH", "narrow", "narrow-pw-7f1") == "OK"
        got = narrow.cmd("GET", "hot:7")
        assert isinstance(got, RespError) and got.message.startswith("NOPERM"), got
        assert narrow.cmd("GET", "cold:7") is None


def test_pipelined_write_then_read_reads_the_write(redis_server, corral_factory):
    """A GET pipelined behind the client's own write (of that key, of every key, or by a script
    naming no key) must read what Redis has after the write, as with Redis itself."""
    c = _corral(redis_server, corral_factory)
    with RespConn(c.port) as conn:
        for i in range(100):
            conn.cmd("GET", "hot:8")  # held in memory (or being read) when the write comes
            got = conn.pipeline([("SET", "hot:8", f"w{i}"), ("GET", "hot:8"), ("GET", "hot:8")])
            assert got == ["OK", f"w{i}".encode(), f"w{i}".encode()], (i, got)
        assert conn.cmd("GET", "hot:8") == b"w99"
        got = conn.pipeline([("FLUSHALL",), ("GET", "hot:8")])
        assert got == ["OK", None], got
        assert conn.cmd("SET", "hot:8", "s") == "OK"
        assert conn.cmd("GET", "hot:8") == b"s"
        assert conn.cmd("GET", "hot:8") == b"s"
        got = conn.pipeline([("EVAL", "redis.call('SET', 'hot:8', 'lua') return 1", "0"),
                             ("GET", "hot:8")])
        assert got == [1, b"lua"], got


def test_a_transaction_s_write_is_read_back_after_exec(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    with RespConn(c.port) as conn, RespConn(c.port) as other:
        for i in range(50):
            assert other.cmd("GET", "hot:9") in (None, f"t{i - 1}".encode())  # keeps it held
            got = conn.pipeline([("MULTI",), ("SET", "hot:9", f"t{i}"), ("EXEC",)])
            assert got[-1] == ["OK"], got
            assert conn.cmd("GET", "hot:9") == f"t{i}".encode()
            assert conn.cmd("GET", "hot:9") == f"t{i}".encode()


def test_a_silent_tracking_connection_counts_as_lost(redis_server, corral_factory):
    """Redis stops answering (SIGSTOP) while nothing is being read: corral's PING on the tracking
    connection times out (command_timeout 2s here) and the cache is emptied, since any
    invalidation sent meanwhile would be missed."""
    c = _corral(redis_server, corral_factory, max_age="60s")
    with RespConn(redis_server.port) as r:
        assert r.cmd("SET", "hot:10", "x") == "OK"
    with RespConn(c.port) as conn:
        assert conn.cmd("GET", "hot:10") == b"x"
        assert conn.cmd("GET", "hot:10") == b"x"
    wait_until(lambda: _metric(c, "corral_near_entries") == 1, 5, what="one entry held")
    os.kill(redis_server.pid, signal.SIGSTOP)
    try:
        wait_until(lambda: _metric(c, "corral_near_entries") == 0, 8, interval=0.1,
                   what="the cache emptied while Redis was silent")
    finally:
        os.kill(redis_server.pid, signal.SIGCONT)
    with RespConn(c.port) as conn:
        wait_until(lambda: conn.cmd("GET", "hot:10") == b"x", 5, interval=0.05,
                   what="reads again once Redis answers")


def test_a_restarted_redis_never_sees_values_from_before_served(redis_server, corral_factory):
    """Redis is SIGKILLed and started again empty (no persistence here) while corral holds its
    keys: no read through corral returns a value from before, during the outage or after it;
    and what is written to the new Redis is read back. Twice, with writes in between."""
    c = _corral(redis_server, corral_factory, workers=2, max_age="60s")
    keys = [f"hot:{300 + i}" for i in range(20)]
    with RespConn(c.port) as conn:
        for gen in range(2):
            with RespConn(redis_server.port) as r:
                for k in keys:
                    assert r.cmd("SET", k, f"before-{gen}") == "OK"
            for _ in range(3):
                for k in keys:
                    assert conn.cmd("GET", k) == f"before-{gen}".encode()
            assert conn.cmd("MGET", *keys) == [f"before-{gen}".encode()] * len(keys)
            redis_server.kill()
            for k in keys[:5]:  # down: an error, never the copy
                got = conn.cmd("GET", k)
                assert isinstance(got, RespError), (k, got)
            redis_server.start()
            deadline = time.monotonic() + 10
            while True:  # corral reconnects; until then errors, after it nil: never the copy
                got = [conn.cmd("GET", k) for k in keys]
                assert all(g is None or isinstance(g, RespError) for g in got), got
                if all(g is None for g in got):
                    break
                assert time.monotonic() < deadline, got
                time.sleep(0.05)
            assert conn.cmd("MGET", *keys) == [None] * len(keys)
            with RespConn(redis_server.port) as r:
                assert r.cmd("SET", keys[0], f"after-{gen}") == "OK"
            wait_until(lambda: conn.cmd("GET", keys[0]) == f"after-{gen}".encode(), 2,
                       interval=0.005, what="a write to the new Redis read back")
