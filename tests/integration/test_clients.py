"""Test 6: real clients through the target: a redis-cli session and redis-py (Debian's 4.3.4).

Runs against corral or (CORRAL_TARGET=redis) straight against redis-server.
"""

import subprocess

import pytest
import redis

from cluster_upstream import SELECT_DB
from harness import REDIS_CLI


def _cli(port, *args, stdin=None):
    return subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(port), *args],
                          input=stdin, capture_output=True, timeout=10)


def test_redis_cli_session(target):
    session = b"\n".join([
        b"PING",
        b"SET cli:k hello",
        b"GET cli:k",
        b"INCR cli:n",
        b"INCRBY cli:n 41",
        b"RPUSH cli:l a b c",
        b"LRANGE cli:l 0 -1",
        b"GET cli:missing",
        b"ECHO \"two words\"",
        b"DEL cli:k cli:n cli:l",
    ]) + b"\n"
    p = _cli(target.port, stdin=session)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().splitlines() == [
        "PONG", "OK", "hello", "1", "42", "3", "a", "b", "c", "", "two words", "3"], p.stdout
    # one-shot invocations, including an error reply (redis-cli prints it, exits 0 in 7.0)
    p = _cli(target.port, "SET", "cli:x", "1")
    assert (p.returncode, p.stdout) == (0, b"OK\n"), p
    p = _cli(target.port, "LPUSH", "cli:x", "1")
    assert b"WRONGTYPE" in p.stdout + p.stderr, p
    p = _cli(target.port, "--no-raw", "GET", "cli:x")
    assert p.stdout == b'"1"\n', p


def test_redis_py(target):
    r = redis.Redis(host="127.0.0.1", port=target.port, socket_timeout=5,
                    socket_connect_timeout=5)
    try:
        assert r.ping() is True
        assert r.echo("hi there") == b"hi there"
        assert r.set("py:k", "v1") is True
        assert r.get("py:k") == b"v1"
        assert r.incr("py:n") == 1
        assert r.incr("py:n", 9) == 10
        p = r.pipeline(transaction=False)
        p.set("py:a", 1).set("py:b", 2).incr("py:a").get("py:a").mget("py:a", "py:b", "py:none")
        assert p.execute() == [True, True, 2, b"2", [b"2", b"2", None]]
        assert r.mget(["py:k", "py:n", "py:none"]) == [b"v1", b"10", None]
        assert r.hset("py:h", mapping={"f1": "1", "f2": "two"}) == 2
        assert r.hgetall("py:h") == {b"f1": b"1", b"f2": b"two"}
        assert r.expire("py:h", 100) is True
        ttl = r.ttl("py:h")
        assert 95 <= ttl <= 100, ttl
        assert r.ttl("py:k") == -1
        for i in range(120):
            r.set(f"py:scan:{i}", i)
        found = set(r.scan_iter(match="py:scan:*", count=17))
        assert found == {f"py:scan:{i}".encode() for i in range(120)}
        assert r.delete(*found) == 120
        assert r.delete("py:k", "py:none") == 1
        assert r.client_setname("py-client") is True
        assert r.client_getname() in ("py-client", b"py-client")
        # a redis-level error surfaces as a ResponseError and the connection stays usable
        r.set("py:str", "x")
        try:
            r.lpush("py:str", "y")
            raise AssertionError("LPUSH on a string should fail")
        except redis.ResponseError as e:
            assert "WRONGTYPE" in str(e)
        assert r.ping() is True
    finally:
        r.close()
        r.connection_pool.disconnect()  # redis-py 4.3's close() leaves pooled sockets open


def test_redis_py_state(target):
    """redis-py's transactions, WATCH, pub/sub, blocking pop and Lua (both modes)."""
    import threading
    import time

    r = redis.Redis(host="127.0.0.1", port=target.port, socket_timeout=5,
                    socket_connect_timeout=5)
    other = redis.Redis(host="127.0.0.1", port=target.port, socket_timeout=5)
    try:
        # MULTI/EXEC through the pipeline API
        p = r.pipeline(transaction=True)
        p.set("pys:a", 1).incr("pys:a").get("pys:a")
        assert p.execute() == [True, 2, b"2"]
        # WATCH aborted by another connection's write
        with r.pipeline() as p:
            p.watch("pys:w")
            other.set("pys:w", "theirs")
            p.multi()
            p.set("pys:w", "mine")
            try:
                p.execute()
                raised = False
            except redis.WatchError:
                raised = True
        assert raised and r.get("pys:w") == b"theirs"
        # pub/sub: a subscriber sees messages in order, unsubscribe confirms
        ps = r.pubsub()
        ps.subscribe("pys:ch")
        assert ps.get_message(timeout=2)["type"] == "subscribe"
        for i in range(5):
            assert other.publish("pys:ch", f"m{i}") == 1
        got = [ps.get_message(timeout=2)["data"] for _ in range(5)]
        assert got == [f"m{i}".encode() for i in range(5)]
        ps.unsubscribe("pys:ch")
        assert ps.get_message(timeout=2)["type"] == "unsubscribe"
        ps.close()
        # blocking pop with a producer 200 ms later
        def produce():
            time.sleep(0.2)
            other.rpush("pys:q", "job")
        t = threading.Thread(target=produce, daemon=True)
        t.start()
        assert r.blpop(["pys:q"], timeout=3) == (b"pys:q", b"job")
        t.join(3)
        # Lua: a two-key script (one hash tag: one cluster slot), then EVALSHA of a loaded one
        script = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('INCRBY', KEYS[2], ARGV[2])"
        assert r.eval(script, 2, "{pys}:s1", "{pys}:s2", "v", 5) == 5
        sha = r.script_load("return redis.call('GET', KEYS[1])")
        assert r.evalsha(sha, 1, "{pys}:s1") == b"v"
    finally:
        r.delete("pys:a", "pys:w", "pys:q", "{pys}:s1", "{pys}:s2")
        r.close()
        other.close()
        r.connection_pool.disconnect()
        other.connection_pool.disconnect()


@pytest.mark.single_node(SELECT_DB)
def test_redis_py_other_db(target):
    """A db 3 client of redis-py through the same corral (both modes)."""
    r = redis.Redis(host="127.0.0.1", port=target.port, socket_timeout=5)
    r3 = redis.Redis(host="127.0.0.1", port=target.port, db=3, socket_timeout=5)
    try:
        assert r3.set("pys:db", "three") is True
        assert r.get("pys:db") is None
        assert r3.get("pys:db") == b"three"
        r3.delete("pys:db")
    finally:
        r.close()
        r3.close()
        r.connection_pool.disconnect()
        r3.connection_pool.disconnect()
