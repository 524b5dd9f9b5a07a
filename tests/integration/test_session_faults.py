"""A client's session when its dedicated upstream connection fails, and when one client's request
could fail everyone: the faults of the session code (issue items 1, 2, 3 and 8). corral-only.

What a client of Redis itself sees is the reference: when the server goes away, its state goes
with it visibly (the connection closes); a transaction never runs half inside and half outside
MULTI, and an EXEC whose WATCH was lost never succeeds.
"""

import os
import signal
import time

import pytest

from cluster_upstream import REDIS_PROCESS
from harness import (EOF, RedisServer, RespConn, RespError, corral_config, encode_command,
                     try_cmd, wait_until)

BUSY_SCRIPT = "local t=redis.call('TIME') while true do end"
NESTED_200 = "local t={} local c=t for i=1,200 do c[1]={} c=c[1] end return t"
# The same after 300 ms of busy waiting: requests other clients send meanwhile are in flight on
# the shared connection, behind it, when its reply arrives (no timing luck involved).
SLOW_NESTED_200 = ("local s=redis.call('TIME') local t0=s[1]*1000000+s[2] "
                   "repeat local n=redis.call('TIME') until n[1]*1000000+n[2]-t0 > 300000 "
                   + NESTED_200)


def _corral(redis_server, corral_factory, **upstream):
    up = {"command_timeout": "2s", "pool_size": 1, **upstream}
    return corral_factory(corral_config(redis_server.port, upstream=up))


def _metric(c, name):
    return c.metrics()[name]


def _kill_upstream_conns(redis_server, pred) -> list:
    """CLIENT KILL (from a direct connection) of every connection of redis for which pred(fields)
    holds; returns the killed ids. The direct connection itself is never killed."""
    killed = []
    for f in redis_server.client_list():
        if f["cmd"] != "client|list" and pred(f):  # not the connection asking
            if redis_server.kill_client(f) == 1:
                killed.append(f["id"])
    return killed


def _assert_no_silent_transaction(replies, queued: int):
    """replies of a pipelined [MULTI, <queued commands>..., EXEC] whose WATCH or MULTI state was
    lost upstream. Allowed: the connection closed (EOF from some point on), or each queued
    command answered QUEUED or an error, and EXEC answered nil or an error. Never a queued
    command's own reply (+OK: run outside the transaction) and never EXEC's result array."""
    multi, cmds, exec_ = replies[0], replies[1:1 + queued], replies[1 + queued]
    assert multi in ("OK", EOF) or isinstance(multi, RespError), replies
    for r in cmds:
        assert r in ("QUEUED", EOF) or isinstance(r, RespError), \
            f"a command sent inside MULTI was answered {r!r} (run outside the transaction?): " \
            f"{replies}"
    assert exec_ is None or exec_ is EOF or isinstance(exec_, RespError), \
        f"EXEC succeeded although the transaction's upstream state was lost: {replies}"


def _pipeline_or_eof(conn, cmds):
    """Pipelined replies; EOF for each reply once the connection is closed."""
    try:
        conn.send_raw(b"".join(encode_command(*c) for c in cmds))
    except OSError:
        return [EOF] * len(cmds)
    out = []
    for _ in cmds:
        r = conn.read_reply() if not out or out[-1] is not EOF else EOF
        out.append(r)
    return out


# ---------------------------------------------------------------------------------------------
# 1. commands that need a dedicated connection while it is down


@pytest.mark.single_node(REDIS_PROCESS)
@pytest.mark.parametrize("third", [("SUBSCRIBE", "ch"), ("HELLO", "3"), ("MONITOR",),
                                   ("CLIENT", "TRACKING", "on")],
                         ids=["subscribe", "hello3", "monitor", "tracking"])
def test_watch_multi_then_pipe_command_while_upstream_down(redis_server, corral_factory, third):
    """Issue item 1: with Redis down, WATCH k, MULTI and then SUBSCRIBE / HELLO 3 / MONITOR /
    CLIENT TRACKING about 0.5 s apart made corral call through a null dedicated connection
    (UBSan: member call on null pointer, client.cc). Each must get an error (or the connection
    closes), and corral must keep serving once Redis is back."""
    c = _corral(redis_server, corral_factory, connect_timeout="300ms")
    with c.client(timeout=5.0) as cl:
        assert cl.cmd("SET", "k", "v") == "OK"
        redis_server.stop()
        replies = []
        for args in (("WATCH", "k"), ("MULTI",), third):
            replies.append(try_cmd(cl, *args))
            time.sleep(0.5)  # the pacing: part of the scenario, not a synchronisation
        assert c.running(), f"corral died: {replies}\n{c.stderr_tail()}"
        for args, r in zip((("WATCH", "k"), ("MULTI",), third), replies):
            assert r is EOF or isinstance(r, RespError), (args, r, replies)
    redis_server.start()
    with c.client(timeout=5.0) as cl:
        wait_until(lambda: cl.cmd("SET", "after", "1") == "OK", 10,
                   what="corral serving again after redis restarted")
        assert cl.cmd("GET", "after") == b"1"
    assert c.running(), c.stderr_tail()


# ---------------------------------------------------------------------------------------------
# 2. WATCH / MULTI state lost with the dedicated connection


def test_watch_lost_by_client_kill_never_lets_exec_succeed(redis_server, corral_factory):
    """Issue item 2: the dedicated connection of a WATCHing client is killed (CLIENT KILL from a
    direct connection: the one whose last command is watch); another client then writes the
    key. Redis's own client would see its connection close; through corral EXEC must fail (nil,
    EXECABORT or an error) or the connection must close: never +OK/[...] over the other write."""
    c = _corral(redis_server, corral_factory)
    with c.client() as a, c.client() as b:
        assert a.cmd("SET", "w:k", "0") == "OK"
        assert a.cmd("WATCH", "w:k") == "OK"
        killed = _kill_upstream_conns(redis_server, lambda f: f["cmd"] == "watch")
        assert len(killed) == 1, redis_server.client_list()
        time.sleep(0.3)  # corral sees the EOF (scenario timing; any value gives the same outcome)
        assert b.cmd("SET", "w:k", "other") == "OK"
        replies = _pipeline_or_eof(a, [("MULTI",), ("SET", "w:k", "mine"), ("EXEC",)])
        _assert_no_silent_transaction(replies, 1)
    assert redis_server.cmd("GET", "w:k") == b"other"


def test_watch_then_get_after_client_kill_never_lets_exec_succeed(redis_server, corral_factory):
    """The same with a read between WATCH and MULTI (the usual check-and-set): whatever the GET
    gets, the transaction that follows must not succeed over the other client's write."""
    c = _corral(redis_server, corral_factory)
    with c.client() as a, c.client() as b:
        assert a.cmd("SET", "w:k", "0") == "OK"
        assert a.cmd("WATCH", "w:k") == "OK"
        assert len(_kill_upstream_conns(redis_server, lambda f: f["cmd"] == "watch")) == 1
        time.sleep(0.3)
        assert b.cmd("SET", "w:k", "other") == "OK"
        try_cmd(a, "GET", "w:k")
        replies = _pipeline_or_eof(a, [("MULTI",), ("SET", "w:k", "mine"), ("EXEC",)])
        _assert_no_silent_transaction(replies, 1)
    assert redis_server.cmd("GET", "w:k") == b"other"


@pytest.mark.single_node(REDIS_PROCESS)
def test_watch_lost_by_redis_restart_never_lets_exec_succeed(redis_server, corral_factory):
    """Issue item 2 with a Redis restart between WATCH and EXEC: the restarted Redis knows
    nothing of the WATCH; another client writes the key once Redis is back."""
    c = _corral(redis_server, corral_factory, connect_timeout="300ms")
    with c.client(timeout=5.0) as a, c.client(timeout=5.0) as b:
        assert a.cmd("SET", "w:k", "0") == "OK"
        assert a.cmd("WATCH", "w:k") == "OK"
        redis_server.restart()
        wait_until(lambda: b.cmd("SET", "w:k", "other") == "OK", 10,
                   what="the other client's write through corral after the restart")
        replies = _pipeline_or_eof(a, [("MULTI",), ("SET", "w:k", "mine"), ("EXEC",)])
        _assert_no_silent_transaction(replies, 1)
    assert redis_server.cmd("GET", "w:k") == b"other"


def test_multi_never_split_by_client_kill(redis_server, corral_factory):
    """Issue item 2: MULTI; SET a (QUEUED); the dedicated connection is killed; SET b must not be
    run outside the transaction (+OK) and EXEC must not succeed: neither key may be written."""
    c = _corral(redis_server, corral_factory)
    with c.client() as a:
        assert a.cmd("MULTI") == "OK"
        assert a.cmd("SET", "tx:a", "1") == "QUEUED"
        # the connection in MULTI has flag x in CLIENT LIST
        assert len(_kill_upstream_conns(redis_server, lambda f: "x" in f["flags"])) == 1
        time.sleep(0.3)
        r_set = try_cmd(a, "SET", "tx:b", "2")
        r_exec = try_cmd(a, "EXEC") if r_set is not EOF else EOF
        _assert_no_silent_transaction(["OK", "QUEUED", r_set, r_exec], 2)
    assert redis_server.cmd("MGET", "tx:a", "tx:b") == [None, None]


@pytest.mark.single_node(REDIS_PROCESS)
def test_multi_pipelined_around_client_kill_by_redis_restart(redis_server, corral_factory):
    """MULTI and a queued SET, then a Redis restart, then the rest of the transaction."""
    c = _corral(redis_server, corral_factory, connect_timeout="300ms")
    with c.client(timeout=5.0) as a, c.client(timeout=5.0) as b:
        assert a.cmd("MULTI") == "OK"
        assert a.cmd("SET", "tx:a", "1") == "QUEUED"
        redis_server.restart()
        wait_until(lambda: b.cmd("PING", "x") == b"x" and b.cmd("SET", "probe", "1") == "OK", 10,
                   what="corral serving again after the restart")
        r_set = try_cmd(a, "SET", "tx:b", "2")
        r_exec = try_cmd(a, "EXEC") if r_set is not EOF else EOF
        _assert_no_silent_transaction(["OK", "QUEUED", r_set, r_exec], 2)
    assert redis_server.cmd("MGET", "tx:a", "tx:b") == [None, None]


# ---------------------------------------------------------------------------------------------
# 3. leaks: a blocked client that subscribes and leaves


def test_blpop_then_subscribe_then_disconnect_releases_everything(redis_server, corral_factory):
    """Issue item 3: BLPOP k 0 and SUBSCRIBE ch in one packet, then the client leaves. Redis
    itself frees a disconnected blocked client at once. The corral client and its blocked
    upstream connection must go too: else max_dedicated is exhausted for everyone."""
    max_dedicated = 4
    c = _corral(redis_server, corral_factory, max_dedicated=max_dedicated)
    for i in range(max_dedicated + 2):
        cl = c.client()
        cl.send_raw(encode_command("BLPOP", "leak:q", "0") + encode_command("SUBSCRIBE", "ch"))
        time.sleep(0.1)  # the BLPOP reaches Redis (scenario timing)
        cl.close()
    # a new client can still block, with a timeout (Redis: nil after 0.2 s)
    with c.client(timeout=5.0) as cl:
        r = cl.cmd("BLPOP", "free:q", "0.2")
        assert r is None, f"BLPOP with a timeout after the leavers got {r!r}"
    wait_until(lambda: int(redis_server.info("clients")["blocked_clients"]) == 0, 5,
               what="no blocked connection left in redis")
    wait_until(lambda: _metric(c, "corral_clients") == 0 and
               _metric(c, "corral_dedicated_connections") == 0, 5,
               what="corral_clients and corral_dedicated_connections back to 0")
    # nothing consumes a pushed item any more
    with c.client() as p:
        assert p.cmd("RPUSH", "leak:q", "x") == 1
        time.sleep(0.1)
        assert p.cmd("LLEN", "leak:q") == 1


# ---------------------------------------------------------------------------------------------
# 8. one client's request must not fail or block everyone


def test_deeply_nested_reply_fails_only_its_own_request(redis_server, corral_factory):
    """Issue item 8: an EVAL returning tables nested 200 deep (Redis 7.0 answers it: arrays 200
    deep) made corral drop the shared connection, failing the other clients' in-flight requests.
    The EVAL may get Redis's reply or an error of its own; everyone else's requests succeed."""
    c = _corral(redis_server, corral_factory)
    n = 200
    with c.client() as a, c.client() as b:
        assert a.cmd("PING") == "PONG"
        a.send_cmd("EVAL", SLOW_NESTED_200, "0")
        time.sleep(0.1)  # the EVAL is running in redis (it takes 300 ms)
        b.send_raw(b"".join(encode_command("SET", f"nest:{i}", i) for i in range(n)))
        b.send_raw(b"".join(encode_command("INCR", f"nest:{i}") for i in range(n)))
        got = [b.read_reply() for _ in range(2 * n)]
        bad = [(i, r) for i, r in enumerate(got) if r != ("OK" if i < n else i - n + 1)]
        assert not bad, f"other client's requests failed by the nested reply: {bad[:5]}"
        r = a.read_reply()
        depth = 0
        while isinstance(r, list) and r:
            r, depth = r[0], depth + 1
        assert depth == 200 or isinstance(r, RespError), (depth, r)
        assert a.cmd("PING") == "PONG"
        assert a.cmd("GET", "nest:7") == b"8"


def _unbusy(redis_server):
    """Kills a running script/function straight on Redis (cleanup): until Redis says NOTBUSY."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and redis_server.running():
        try:
            with RespConn(redis_server.port, timeout=3.0) as d:
                r1 = d.cmd("SCRIPT", "KILL")
                r2 = d.cmd("FUNCTION", "KILL")
                if all(isinstance(r, RespError) and r.startswith("NOTBUSY") for r in (r1, r2)):
                    return
        except (OSError, AssertionError):
            pass
        time.sleep(0.1)


def _wait_busy(redis_server):
    """Waits until Redis answers BUSY (the script has run past busy-reply-threshold)."""
    def busy():
        with RespConn(redis_server.port, timeout=5.0) as d:
            r = d.cmd("PING")
            return isinstance(r, RespError) and r.startswith("BUSY")
    wait_until(busy, 8, interval=0.05, what="redis answering BUSY")


@pytest.fixture
def busy_redis(corral_only):
    # busy-reply-threshold (lua-time-limit before 7.0): Redis answers BUSY after 1 s, and only
    # then does SCRIPT KILL / FUNCTION KILL / SHUTDOWN NOSAVE work.
    with RedisServer(extra_args=["--busy-reply-threshold", "1000"]) as r:
        yield r


@pytest.mark.parametrize("kind", ["script", "function"])
def test_script_kill_through_corral_ends_a_busy_script(busy_redis, corral_factory, kind):
    """Issue item 8: a busy script blocks the shared connection; SCRIPT KILL (FUNCTION KILL)
    from another client through corral queued behind it and timed out, so Redis stayed BUSY for
    everyone. Redis 7.0 with busy-reply-threshold 1000: the kill is answered +OK once the
    script has run 1 s, and the script's caller gets
    '-ERR Script killed by user with SCRIPT KILL... script: <sha>, on @user_script:1.'"""
    c = _corral(busy_redis, corral_factory, command_timeout="5s")
    with c.client(timeout=10.0) as a, c.client(timeout=10.0) as b:
        try:
            if kind == "function":
                lib = ("#!lua name=busylib\nredis.register_function('busy', function(keys, args) "
                       "local t=redis.call('TIME') while true do end end)")
                assert a.cmd("FUNCTION", "LOAD", "REPLACE", lib) == b"busylib"
                a.send_cmd("FCALL", "busy", "0")
            else:
                a.send_cmd("EVAL", BUSY_SCRIPT, "0")
            _wait_busy(busy_redis)
            t0 = time.monotonic()
            r = b.cmd("FUNCTION" if kind == "function" else "SCRIPT", "KILL")
            elapsed = time.monotonic() - t0
            assert r == "OK", f"{kind} KILL through corral got {r!r} after {elapsed:.2f}s"
            assert elapsed < 2.0, f"{kind} KILL took {elapsed:.2f}s"
            r = a.read_reply()
            assert isinstance(r, RespError) and r.startswith("ERR Script killed by user"), r
            assert b.cmd("GET", "after:kill") is None
            assert a.cmd("SET", "after:kill", "1") == "OK"
        finally:
            _unbusy(busy_redis)


def test_shutdown_nosave_through_corral_stops_a_busy_redis(busy_redis, corral_factory):
    """SHUTDOWN NOSAVE is, with SCRIPT KILL, what Redis accepts while BUSY: sent through corral
    it must reach Redis, which then exits (a direct client sees its connection close)."""
    c = _corral(busy_redis, corral_factory, command_timeout="5s")
    with c.client(timeout=10.0) as a, c.client(timeout=10.0) as b:
        try:
            a.send_cmd("EVAL", BUSY_SCRIPT, "0")
            _wait_busy(busy_redis)
            t0 = time.monotonic()
            b.send_cmd("SHUTDOWN", "NOSAVE")
            wait_until(lambda: not busy_redis.running(), 8, interval=0.05,
                       what="redis exits after SHUTDOWN NOSAVE through corral")
            assert time.monotonic() - t0 < 2.0, "SHUTDOWN NOSAVE reached redis only late"
            for cl in (a, b):
                r = cl.read_reply()
                assert r is EOF or isinstance(r, RespError), r
        finally:
            _unbusy(busy_redis)
