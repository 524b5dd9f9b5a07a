"""Replies from Redis on a shared upstream connection: deep nesting and size limits. corral-only.

Defect 8: a reply nested deeper than corral's old max_reply_depth (a Lua table 200 levels deep)
made corral drop the shared connection as desynchronised, failing other clients' requests.
Defect 9: one reply (a huge GET or MGET) had no bound in corral's memory.

Every test here runs one corral with one worker and one upstream connection, so every client's
requests share that connection, and checks that redis saw no new connection from corral (no
reconnect) while the test ran.
"""

import signal
import threading

import pytest

import harness
from harness import RespConn, RespError, corral_config, wait_until, connections_received

DEEP_EVAL = "local t={} local c=t for i=1,%d do c[1]={} c=c[1] end return t"


def read_raw_reply(conn: RespConn) -> bytes:
    """The raw bytes of one complete reply, framed without recursion (so any depth works):
    count the elements still expected, as corral does."""
    start = conn.pos
    pending = 1
    while pending:
        line = conn._line()  # noqa: SLF001 - the harness's buffered line reader
        assert line is not None, "EOF inside a reply"
        t, rest = line[:1], line[1:]
        if t in (b"$", b"!", b"=") and int(rest) >= 0:
            assert conn.read_exact_raw(int(rest) + 2) is not None, "EOF inside a bulk"
            pending -= 1
        elif t in (b"*", b"~", b">") and int(rest) > 0:
            pending += int(rest) - 1
        elif t == b"%" and int(rest) > 0:
            pending += 2 * int(rest) - 1
        elif t == b"|":
            pending += 2 * int(rest)
        else:
            pending -= 1
    return bytes(conn.buf[start:conn.pos])


def single_connection_corral(redis_server, corral_factory, **limits):
    cfg = corral_config(redis_server.port, workers=1, upstream={"pool_size": 1},
                        limits=limits or {})
    return corral_factory(cfg)


def pipeline_gets(port: int, keys: dict, rounds: int, errors: list, stop: threading.Event):
    """Another client on the same shared upstream connection: batches of GETs, all checked."""
    try:
        with RespConn(port, timeout=10.0) as cl:
            for _ in range(rounds):
                if stop.is_set():
                    return
                names = list(keys)
                replies = cl.pipeline([("GET", k) for k in names])
                for k, r in zip(names, replies):
                    if r != keys[k]:
                        errors.append((k, r))
                        return
    except Exception as e:  # noqa: BLE001 - reported by the test
        errors.append(repr(e))


@pytest.mark.parametrize("depth", [200, 1000, 10000])
def test_deep_reply_keeps_the_shared_connection(redis_server, corral_factory, depth):
    # 200 and 1000 levels are returned whole; at 10000 Redis itself stops at its Lua stack
    # limit and sends ~8000 levels with an error as the innermost element.
    c = single_connection_corral(redis_server, corral_factory)
    keys = {f"k{i}": f"v{i}".encode() for i in range(50)}
    with redis_server.client() as direct, redis_server.client() as probe:
        for k, v in keys.items():
            assert direct.cmd("SET", k, v) == "OK"
        direct.send_cmd("EVAL", DEEP_EVAL % depth, 0)
        want = read_raw_reply(direct)
        assert want.count(b"*1\r\n") >= min(depth, 7000)
        with c.client(timeout=10.0) as warm:  # corral's upstream connections are up
            assert warm.cmd("PING") == "PONG"
            assert warm.cmd("DBSIZE") == 50  # reaches every primary of a cluster upstream too
        before = connections_received(probe)

        errors: list = []
        stop = threading.Event()
        other = threading.Thread(target=pipeline_gets,
                                 args=(c.port, keys, 40, errors, stop), daemon=True)
        other.start()
        try:
            with c.client(timeout=10.0) as cl:
                for _ in range(5):
                    cl.send_cmd("EVAL", DEEP_EVAL % depth, 0)
                    assert read_raw_reply(cl) == want
                    assert cl.cmd("GET", "k1") == b"v1"
        finally:
            other.join(timeout=30)
            stop.set()
        assert not other.is_alive()
        assert errors == []
        # No reconnect: corral kept its one upstream connection.
        assert connections_received(probe) == before
    assert "desync" not in c.stderr_text()


def test_reply_over_max_reply_bytes_is_refused_and_the_connection_stays(redis_server,
                                                                        corral_factory):
    c = single_connection_corral(redis_server, corral_factory, max_reply_bytes="64KiB")
    too_large = RespError("ERR corral: reply too large (limits.max_reply_bytes)")
    # A GET reply of "$65526\r\n" + 65526 bytes + "\r\n" is exactly 64 KiB.
    fits = b"f" * 65526
    over = b"o" * 65527
    keys = {f"k{i}": f"v{i}".encode() for i in range(50)}
    with redis_server.client() as direct, redis_server.client() as probe:
        for k, v in keys.items():
            assert direct.cmd("SET", k, v) == "OK"
        assert direct.cmd("SET", "fits", fits) == "OK"
        assert direct.cmd("SET", "over", over) == "OK"
        assert direct.cmd("SET", "big", b"b" * 300000) == "OK"
        with c.client(timeout=10.0) as warm:
            assert warm.cmd("PING") == "PONG"
            assert warm.cmd("DBSIZE") == 53  # reaches every primary of a cluster upstream too
        # corral's own COMMAND at connect (command_learn.h) has a reply of about 90 KB, over
        # this limit too: it is refused and counted before the test's replies.
        wait_until(lambda: "upstream COMMAND refused" in c.stderr_text(), 10,
                   what="corral's COMMAND at connect answered")
        too_large_before = c.metrics()["corral_upstream_replies_too_large_total"]
        before = connections_received(probe)

        errors: list = []
        stop = threading.Event()
        other = threading.Thread(target=pipeline_gets,
                                 args=(c.port, keys, 100, errors, stop), daemon=True)
        other.start()
        try:
            with c.client(timeout=10.0) as cl:
                for _ in range(5):
                    replies = cl.pipeline([
                        ("GET", "k1"),
                        ("GET", "big"),             # one bulk, known from its header
                        ("GET", "k2"),
                        ("MGET", "k1", "big", "k2"),  # the array crosses the limit midway
                        ("GET", "fits"),            # exactly the limit
                        ("GET", "over"),            # one byte more
                        # long simple lines, dropped as they stream in
                        ("EVAL", "return redis.error_reply(string.rep('e', 100000))", 0),
                        ("EVAL", "return redis.status_reply(string.rep('s', 100000))", 0),
                        ("EVAL", "return redis.status_reply('small')", 0),
                        ("PING",),
                    ])
                    assert replies == [b"v1", too_large, b"v2", too_large, fits, too_large,
                                       too_large, too_large, "small", "PONG"]
        finally:
            other.join(timeout=30)
            stop.set()
        assert not other.is_alive()
        assert errors == []
        assert connections_received(probe) == before
    m = c.metrics()
    assert m["corral_upstream_replies_too_large_total"] == too_large_before + 5 * 5
    assert "desync" not in c.stderr_text()
    # Logged once (then at most every 30 s) per upstream connection, not once per reply. With
    # a cluster upstream corral has one connection per primary and the seed connection that
    # asked COMMAND at connect.
    most = 1 if harness.upstream_mode() == "single" else len(redis_server.primaries()) + 1
    assert 1 <= c.stderr_text().count("upstream reply too large") <= most


def test_huge_reply_memory_stays_bounded(redis_server, corral_factory):
    # 64 MiB from redis through a corral whose limit is 1 MiB: dropped as it arrives.
    c = single_connection_corral(redis_server, corral_factory, max_reply_bytes="1MiB")
    with redis_server.client() as direct:
        assert direct.cmd("SETRANGE", "huge", 64 * 1024 * 1024 - 1, "x") == 64 * 1024 * 1024
    with c.client(timeout=30.0) as cl:
        assert cl.cmd("PING") == "PONG"
        rss_before = c.rss_kib()
        for _ in range(3):
            assert cl.cmd("GET", "huge") == \
                RespError("ERR corral: reply too large (limits.max_reply_bytes)")
            assert cl.cmd("PING") == "PONG"
        grown_kib = c.rss_kib() - rss_before
    assert grown_kib < 16 * 1024, f"corral grew {grown_kib} KiB while dropping 3 x 64 MiB"


def test_max_reply_bytes_is_reloadable(redis_server, corral_factory):
    cfg = corral_config(redis_server.port, workers=1, upstream={"pool_size": 1},
                        limits={"max_reply_bytes": "1MiB"})
    c = corral_factory(cfg)
    with redis_server.client() as direct:
        assert direct.cmd("SET", "v", b"x" * 4096) == "OK"
    with c.client() as cl:
        assert cl.cmd("GET", "v") == b"x" * 4096
        cfg["limits"] = {"max_reply_bytes": "2KiB"}
        c.write_config(cfg)
        c.signal(signal.SIGHUP)
        wait_until(lambda: isinstance(cl.cmd("GET", "v"), RespError), 10,
                   what="the smaller limit applied after SIGHUP")
        assert cl.cmd("GET", "v") == \
            RespError("ERR corral: reply too large (limits.max_reply_bytes)")
        assert cl.cmd("PING") == "PONG"
