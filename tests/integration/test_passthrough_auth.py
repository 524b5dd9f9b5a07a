"""The app's own credentials (issue 10): auth mode passthrough. Redis checks each AUTH, and the
client's commands run on connections logged in as that user, so Redis's ACLs decide. corral-only.

ACL users are made on the harness's redis-server with ACL SETUSER; the reference replies are
those the same redis-server gives to a direct connection (compared side by side).
"""

import os
import random
import re
import string
import time

import pytest
import redis

from harness import EOF, RedisServer, RespConn, RespError, corral_config, parse_client_list, \
    wait_until

# corral answers "-ERR corral: commands as the app's own Redis user are not supported with
# upstream.cluster yet" (proxy/net/client_cluster.cc).
pytestmark = pytest.mark.cluster_unsupported("auth passthrough (commands as the app's own Redis "
                                             "user)")

APP_PW = "app-pw-5e1f"
OTHER_PW = "other-pw-9c2a"
NEW_PW = "app-pw-rotated-77b"
REQUIREPASS = "default-pw-41d0"
SECRETS = (APP_PW, OTHER_PW, NEW_PW, REQUIREPASS)

WRONGPASS = RespError("WRONGPASS invalid username-password pair or user is disabled.")

# app may touch app:* keys and chan:* channels, with these commands only.
APP_ACL = ["on", ">" + APP_PW, "~app:*", "resetchannels", "&chan:*", "-@all", "+get", "+set",
           "+incr", "+multi", "+exec", "+discard", "+watch", "+unwatch", "+blpop", "+lpush",
           "+acl|whoami", "+subscribe", "+unsubscribe", "+ping", "+select", "+client|setname"]
OTHER_ACL = ["on", ">" + OTHER_PW, "~other:*", "+@all"]


@pytest.fixture
def acl_redis(redis_server):
    redis_server.cmd("ACL", "SETUSER", "app", *APP_ACL)
    redis_server.cmd("ACL", "SETUSER", "other", *OTHER_ACL)
    return redis_server


def _corral(factory, redis_server, upstream=None, **passthrough):
    cfg = corral_config(redis_server.port, upstream=upstream or {})
    cfg["log"] = {"level": "debug"}  # everything corral could log, checked for secrets
    if passthrough:
        cfg["auth"] = {"passthrough": passthrough}
    return factory(cfg)


def _direct(redis_server) -> RespConn:
    return RespConn(redis_server.port)


def _login(conn, user, pw):
    r = conn.cmd("AUTH", user, pw)
    assert r == "OK", r
    return conn


def _metric(c, name) -> float:
    return c.metrics()[name]


def _run(conn, cmds):
    return [conn.cmd(*args) for args in cmds]


def _users_by_addr(redis_server) -> dict:
    return {c["addr"]: c["user"] for c in redis_server.client_list()}


def _assert_no_secrets(c, *texts):
    blobs = [c.stderr_text(), c.http_get("/metrics")[1]] + [
        t if isinstance(t, str) else repr(t) for t in texts]
    for s in SECRETS:
        for b in blobs:
            assert s not in b, f"secret {s!r} found in {b[:300]!r}"


# ---------------------------------------------------------------------------------------------
# Redis's ACLs decide, exactly as for a direct client


ACL_SEQUENCE = [
    ("ACL", "WHOAMI"),
    ("SET", "app:1", "v"),
    ("GET", "app:1"),
    ("GET", "other:1"),               # key outside ~app:*
    ("SET", "other:1", "x"),
    ("DEL", "app:1"),                 # command outside the set
    ("CONFIG", "GET", "maxmemory"),   # an admin command
    ("INCR", "app:n"),
    ("MULTI",),                       # a transaction on a dedicated connection, as app
    ("INCR", "app:n"),
    ("GET", "other:2"),               # refused while queueing: EXEC aborts
    ("EXEC",),
    ("MULTI",),
    ("ACL", "WHOAMI"),
    ("INCR", "app:n"),
    ("EXEC",),
    ("BLPOP", "other:q", "0.05"),     # a blocking command on a key it may not touch
    ("BLPOP", "app:q", "0.05"),
    ("CLIENT", "LIST"),               # corral's own answers ask Redis's ACL first
    ("CLIENT", "KILL", "ID", "1"),
    ("MULTI",),
    ("CLIENT", "KILL", "ID", "1"),    # refused while queueing: EXEC aborts
    ("EXEC",),
    ("LPUSH", "app:q", "x"),          # not in the set
    ("SUBSCRIBE", "other-chan"),      # a channel outside &chan:*
    ("SUBSCRIBE", "chan:a"),
]


def test_acl_user_gets_exactly_redis_noperm_replies(acl_redis, corral_factory):
    c = _corral(corral_factory, acl_redis)
    with _direct(acl_redis) as d:
        direct = _run(_login(d, "app", APP_PW), ACL_SEQUENCE)
    acl_redis.cmd("FLUSHALL")
    with c.client() as cl:
        proxied = _run(_login(cl, "app", APP_PW), ACL_SEQUENCE)
    assert proxied == direct
    # the sequence did hit Redis's ACLs (the comparison is not between two empty answers)
    noperm = [r for r in direct if isinstance(r, RespError) and r.startswith("NOPERM")]
    assert len(noperm) >= 10, direct
    assert direct[0] == b"app" and direct[12:16] == ["OK", "QUEUED", "QUEUED", [b"app", 2]], direct
    _assert_no_secrets(c)


def test_acl_replies_match_redis_pipelined(acl_redis, corral_factory):
    """The same, pipelined after the AUTH in one write: every command waits for the verdict and
    runs as app."""
    c = _corral(corral_factory, acl_redis)
    cmds = [("AUTH", "app", APP_PW)] + ACL_SEQUENCE[:8]
    with _direct(acl_redis) as d:
        direct = d.pipeline(cmds)
    acl_redis.cmd("FLUSHALL")
    with c.client() as cl:
        proxied = cl.pipeline(cmds)
    assert proxied == direct


def test_two_users_never_share_an_upstream_connection(acl_redis, corral_factory):
    c = _corral(corral_factory, acl_redis, upstream={"pool_size": 2})
    mon = _direct(acl_redis)
    clients = []
    plain = None
    try:
        assert mon.cmd("MONITOR") == "OK"
        for i in range(4):  # two clients per user, interleaved
            user, pw = ("app", APP_PW) if i % 2 == 0 else ("other", OTHER_PW)
            clients.append((user, _login(c.client(), user, pw)))
        plain = c.client()  # never AUTHs: corral's own credentials (the default user here)
        for rnd in range(10):
            for user, cl in clients:
                assert cl.cmd("SET", f"{user}:k{rnd}", user) == "OK"
            assert plain.cmd("SET", f"plain:k{rnd}", "p") == "OK"
        for user, cl in clients:
            assert cl.cmd("ACL", "WHOAMI") == user.encode()
        assert plain.cmd("ACL", "WHOAMI") == b"default"
        users = _users_by_addr(acl_redis)
        seen = {}
        mon.settimeout(2.0)
        deadline = time.monotonic() + 5
        while len(seen) < 50 and time.monotonic() < deadline:
            line = mon.read_reply()
            m = re.match(r"[\d.]+ \[\d+ (\S+)\] \"SET\" \"(\w+):k(\d+)\"", str(line))
            if m:
                seen[(m.group(2), m.group(3), len(seen))] = m.group(1)
        assert len(seen) == 50, seen
        for (prefix, _, _), addr in seen.items():
            want = {"app": "app", "other": "other", "plain": "default"}[prefix]
            assert users.get(addr) == want, (prefix, addr, users)
        app_conns = {a for (p, _, _), a in seen.items() if p == "app"}
        other_conns = {a for (p, _, _), a in seen.items() if p == "other"}
        assert app_conns and other_conns and not (app_conns & other_conns)
    finally:
        mon.close()
        for _, cl in clients:
            cl.close()
        if plain is not None:
            plain.close()


# ---------------------------------------------------------------------------------------------
# Redis's own replies to wrong credentials


WRONG_AUTHS = [
    ("AUTH", "app", "wrong"),
    ("AUTH", "nobody", APP_PW),
    ("AUTH", "some-password"),              # no password configured for the default user
    ("AUTH", "default", "anything"),        # default is nopass: any password logs in
    ("ACL", "WHOAMI"),
    ("AUTH", "a", "b", "c"),
    ("HELLO", "3", "AUTH", "app", "wrong"),
    ("HELLO", "2", "AUTH", "app", APP_PW, "AUTH", "app", "wrong"),  # 7.0: the first one holds
    ("ACL", "WHOAMI"),
]


@pytest.mark.parametrize("requirepass", [False, True], ids=["nopass", "requirepass"])
def test_wrong_credentials_get_redis_replies(corral_factory, requirepass):
    with RedisServer(password=REQUIREPASS if requirepass else None) as r:
        with RespConn(r.port) as admin:
            if requirepass:
                assert admin.cmd("AUTH", REQUIREPASS) == "OK"
            assert admin.cmd("ACL", "SETUSER", "app", *APP_ACL) == "OK"
        if requirepass:
            # A direct client starts logged out: so does one of corral with unauthenticated:
            # refuse (with upstream, it would start on corral's own credentials instead).
            c = _corral(corral_factory, r, upstream={"password": REQUIREPASS},
                        unauthenticated="refuse")
        else:
            c = _corral(corral_factory, r)
        cmds = list(WRONG_AUTHS)
        if requirepass:
            cmds = [("AUTH", "wrong-default")] + cmds + [("AUTH", REQUIREPASS), ("ACL", "WHOAMI")]
        with RespConn(r.port) as d:
            direct = _run(d, cmds)
        with c.client() as cl:
            proxied = _run(cl, cmds)
        assert proxied == direct, list(zip(cmds, direct, proxied))
        assert any(isinstance(x, RespError) and x.startswith("ERR AUTH <password>")
                   for x in direct) != requirepass
        _assert_no_secrets(c, proxied)


def test_refuse_unauthenticated_like_requirepass(acl_redis, corral_factory):
    c = _corral(corral_factory, acl_redis, unauthenticated="refuse")
    with c.client() as cl:
        assert cl.cmd("GET", "app:1") == RespError("NOAUTH Authentication required.")
        assert cl.cmd("PING") == "PONG"  # health checks, as with auth.users
        assert cl.cmd("AUTH", "app", "wrong") == WRONGPASS
        assert cl.cmd("GET", "app:1") == RespError("NOAUTH Authentication required.")
        assert cl.cmd("AUTH", "app", APP_PW) == "OK"
        assert cl.cmd("ACL", "WHOAMI") == b"app"
        assert cl.cmd("RESET") == "RESET"  # logs out
        assert cl.cmd("GET", "app:1") == RespError("NOAUTH Authentication required.")
        r = cl.cmd("HELLO", "3", "AUTH", "other", OTHER_PW)
        assert isinstance(r, dict) and r[b"proto"] == 3, r
        assert cl.cmd("ACL", "WHOAMI") == b"other"


# ---------------------------------------------------------------------------------------------
# HELLO, dedicated connections, RESET, SELECT


def test_hello3_auth_runs_as_the_user_on_its_dedicated_connection(acl_redis, corral_factory):
    c = _corral(corral_factory, acl_redis)
    with c.client() as cl:
        r = cl.cmd("HELLO", "3", "AUTH", "app", APP_PW, "SETNAME", "web")
        assert isinstance(r, dict) and r[b"proto"] == 3, r
        assert cl.cmd("ACL", "WHOAMI") == b"app"
        assert cl.cmd("GET", "other:1") == RespError(
            "NOPERM this user has no permissions to access one of the keys used as arguments")
        assert cl.cmd("SET", "app:h", "1") == "OK"
        resp3 = [x for x in acl_redis.client_list() if x.get("resp") == "3"]
        assert [x["user"] for x in resp3] == ["app"], resp3
        # logging in as another user on that connection: Redis is told, ACLs follow
        assert cl.cmd("AUTH", "other", "wrong") == WRONGPASS
        assert cl.cmd("ACL", "WHOAMI") == b"app"
        assert cl.cmd("AUTH", "other", OTHER_PW) == "OK"
        assert cl.cmd("ACL", "WHOAMI") == b"other"
        assert cl.cmd("GET", "app:h") == RespError(
            "NOPERM this user has no permissions to access one of the keys used as arguments")
        assert [x["user"] for x in acl_redis.client_list() if x.get("resp") == "3"] == ["other"]


def test_transactions_and_blocking_as_the_user(acl_redis, corral_factory):
    c = _corral(corral_factory, acl_redis)
    with c.client() as cl:
        _login(cl, "app", APP_PW)
        assert cl.cmd("WATCH", "app:w") == "OK"
        assert cl.cmd("MULTI") == "OK"
        assert cl.cmd("ACL", "WHOAMI") == "QUEUED"
        # AUTH inside MULTI: corral cannot follow a change of user inside EXEC; refused
        r = cl.cmd("AUTH", "other", OTHER_PW)
        assert isinstance(r, RespError) and r.startswith("ERR corral: AUTH inside MULTI"), r
        assert cl.cmd("EXEC") == RespError(
            "EXECABORT Transaction discarded because of previous errors.")
        assert cl.cmd("MULTI") == "OK"
        assert cl.cmd("ACL", "WHOAMI") == "QUEUED"
        assert cl.cmd("EXEC") == [b"app"]
        assert cl.cmd("BLPOP", "app:q", "0.05") is None
        assert cl.cmd("ACL", "WHOAMI") == b"app"
        assert cl.cmd("RESET") == "RESET"
        assert cl.cmd("ACL", "WHOAMI") == b"default"  # corral's credentials again
        assert cl.cmd("BLPOP", "other:q", "0.05") is None


def test_redis_py_url_with_user_password_and_db(acl_redis, corral_factory):
    c = _corral(corral_factory, acl_redis)
    r = redis.Redis.from_url(f"redis://app:{APP_PW}@127.0.0.1:{c.port}/3")  # AUTH, then SELECT 3
    try:
        assert r.set("app:py", "1") is True
        assert r.get("app:py") == b"1"
        assert r.execute_command("ACL", "WHOAMI") == b"app"
        with pytest.raises(redis.exceptions.NoPermissionError):
            r.get("other:py")
        with pytest.raises(redis.exceptions.NoPermissionError):
            r.delete("app:py")
    finally:
        r.connection_pool.disconnect()
    with RespConn(acl_redis.port) as d:
        assert d.cmd("SELECT", "3") == "OK"
        assert d.cmd("GET", "app:py") == b"1"
        assert d.cmd("SELECT", "0") == "OK"
        assert d.cmd("EXISTS", "app:py") == 0
    bad = redis.Redis.from_url(f"redis://app:nope@127.0.0.1:{c.port}/0")
    try:
        with pytest.raises(redis.exceptions.ResponseError, match="^WRONGPASS "):
            bad.ping()
    finally:
        bad.connection_pool.disconnect()


# ---------------------------------------------------------------------------------------------
# The cache


def test_password_change_takes_effect_within_the_cache_lifetime(acl_redis, corral_factory):
    ttl = 1.0
    c = _corral(corral_factory, acl_redis, cache_ttl="1s")
    with c.client() as cl:
        _login(cl, "app", APP_PW)
    checks = _metric(c, "corral_auth_checks_total")
    acl_redis.cmd("ACL", "SETUSER", "app", "resetpass", ">" + NEW_PW)
    changed = time.monotonic()
    with c.client() as cl:
        r = cl.cmd("AUTH", "app", APP_PW)
        if time.monotonic() - changed < ttl * 0.8:
            assert r == "OK"  # still the cached verdict
        assert cl.cmd("AUTH", "app", NEW_PW) == "OK"  # asked: Redis says yes
        assert cl.cmd("ACL", "WHOAMI") == b"app"
    assert _metric(c, "corral_auth_cache_hits_total") >= 1

    def refused():
        with c.client() as cl2:
            return cl2.cmd("AUTH", "app", APP_PW) == WRONGPASS

    wait_until(refused, ttl + 1.0, interval=0.1, what="the old password refused")
    assert time.monotonic() - changed <= ttl + 1.0
    assert _metric(c, "corral_auth_checks_total") > checks


def test_no_cache_asks_redis_every_time(acl_redis, corral_factory):
    c = _corral(corral_factory, acl_redis, cache_ttl="0")
    for _ in range(3):
        with c.client() as cl:
            _login(cl, "app", APP_PW)
    assert _metric(c, "corral_auth_checks_total") == 3
    acl_redis.cmd("ACL", "SETUSER", "app", "resetpass", ">" + NEW_PW)
    with c.client() as cl:
        assert cl.cmd("AUTH", "app", APP_PW) == WRONGPASS


# ---------------------------------------------------------------------------------------------
# Bounds


def test_auth_flood_opens_no_upstream_connections(acl_redis, corral_factory):
    c = _corral(corral_factory, acl_redis, max_checks=4)
    with c.client() as warm:  # the shared pool and the checking connection are open
        _login(warm, "app", APP_PW)
    base = len(acl_redis.client_list())
    clients = [c.client(timeout=20) for _ in range(40)]
    try:
        rng = random.Random(7)
        for cl in clients:
            pw = ["".join(rng.choices(string.ascii_letters, k=16)) for _ in range(10)]
            cl.send_raw(b"".join(
                f"*3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$16\r\n{p}\r\n*1\r\n$4\r\nPING\r\n".encode()
                for p in pw))
        for cl in clients:
            for _ in range(10):
                assert cl.read_reply() == WRONGPASS
                assert cl.read_reply() == "PONG"
        assert len(acl_redis.client_list()) <= base
        assert _metric(c, "corral_auth_checks_total") >= 400
        # the same credentials from many clients at once: checked a few times, not 40
        before = _metric(c, "corral_auth_checks_total")
        for cl in clients:
            cl.send_cmd("AUTH", "other", OTHER_PW)
        for cl in clients:
            assert cl.read_reply() == "OK"
        assert _metric(c, "corral_auth_checks_total") - before <= 5
    finally:
        for cl in clients:
            cl.close()


def test_user_pools_are_bounded_and_idle_ones_close(acl_redis, corral_factory):
    c = _corral(corral_factory, acl_redis, max_users=1, idle_timeout="200ms")
    a = _login(c.client(), "app", APP_PW)
    assert a.cmd("GET", "app:1") is None
    b = c.client()
    r = b.cmd("AUTH", "other", OTHER_PW)
    assert r == RespError(
        "ERR corral: too many users logged in at once (auth.passthrough.max_users)"), r
    assert b.cmd("ACL", "WHOAMI") == b"default"  # not logged in
    assert _metric(c, "corral_auth_pools_full_total") == 1
    a.close()
    # once app's pool is idle, other takes its place
    wait_until(lambda: _login(c.client(), "other", OTHER_PW), 3.0, what="other logs in")
    assert b.cmd("AUTH", "other", OTHER_PW) == "OK"
    assert b.cmd("ACL", "WHOAMI") == b"other"
    assert _metric(c, "corral_auth_user_pools") == 1
    assert _metric(c, "corral_auth_user_pool_evictions_total") >= 1
    assert "app" not in {x["user"] for x in acl_redis.client_list()}
    b.close()


def test_credentials_never_shown(acl_redis, corral_factory):
    c = _corral(corral_factory, acl_redis)
    with c.client() as cl:
        _login(cl, "app", APP_PW)
        assert cl.cmd("AUTH", "app", OTHER_PW) == WRONGPASS
        assert cl.cmd("CLIENT", "SETNAME", "web") == "OK"
        shown = [cl.cmd("CLIENT", "INFO")]
        with c.client() as other:
            _login(other, "other", OTHER_PW)
            shown.append(other.cmd("CLIENT", "LIST"))
            shown.append(other.cmd("INFO"))
            shown.append(other.cmd("INFO", "everything"))
        listed = parse_client_list(shown[1])
        assert {x["user"] for x in listed} == {"app", "other"}, listed
    shown.append(acl_redis.cmd("CLIENT", "LIST"))
    _assert_no_secrets(c, *shown)


def test_redis_requiring_auth_with_no_credentials_of_corral(corral_factory):
    """A deployment where only the apps hold credentials: corral's own pool cannot log in, yet a
    client that logs in gets shared, dedicated and RESP3 connections as its user."""
    with RedisServer(password=REQUIREPASS) as r:
        with RespConn(r.port) as admin:
            assert admin.cmd("AUTH", REQUIREPASS) == "OK"
            assert admin.cmd("ACL", "SETUSER", "app", *APP_ACL) == "OK"
        c = _corral(corral_factory, r, unauthenticated="refuse")
        with c.client() as cl:
            assert cl.cmd("GET", "app:1") == RespError("NOAUTH Authentication required.")
            _login(cl, "app", APP_PW)
            assert cl.cmd("SET", "app:1", "v") == "OK"
            assert cl.cmd("MULTI") == "OK"
            assert cl.cmd("GET", "app:1") == "QUEUED"
            assert cl.cmd("EXEC") == [b"v"]
            assert cl.cmd("BLPOP", "app:q", "0.05") is None
            r3 = cl.cmd("HELLO", "3")
            assert isinstance(r3, dict) and r3[b"proto"] == 3, r3
            assert cl.cmd("ACL", "WHOAMI") == b"app"
        with c.client() as cl:
            assert cl.cmd("AUTH", REQUIREPASS) == "OK"  # the default user's password
            assert cl.cmd("ACL", "WHOAMI") == b"default"
            assert cl.cmd("GET", "app:1") == b"v"
        _assert_no_secrets(c)
