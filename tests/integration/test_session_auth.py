"""Client authentication and corral's upstream credentials in every session mode (issue items
4, 5 and 7): the auth gate, CONFIG GET of the upstream password, HELLO ... AUTH, RESET.
corral-only.

Reference replies are those of redis-server 7.0.15 (`requirepass` set, an unauthenticated
client), quoted where used.
"""

import time

import pytest

from harness import EOF, RedisServer, RespError, corral_config

UP_SECRET = "up-secret-42"        # corral's upstream password (redis requirepass)
CLIENT_PW = "client-pw-77"        # the app's password, for corral's auth.users
USERS = {"users": [{"name": "app", "password": CLIENT_PW}]}

NOAUTH = RespError("NOAUTH Authentication required.")
# redis-server 7.0.15, requirepass set, `HELLO 3 SETNAME AUTH SETNAME x` unauthenticated (Redis
# reads AUTH as SETNAME's value, then refuses HELLO itself). Newer Redis versions write
# "HELLO <proto> AUTH"; 7.0 writes "HELLO AUTH".
HELLO_NOAUTH = RespError(
    "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO "
    "AUTH <user> <pass> option can be used to authenticate the client and select the RESP "
    "protocol version at the same time")


def _metric(c, name):
    return c.metrics()[name]


def _upstream_conns(redis_server) -> int:
    """Connections redis has, minus the one asking."""
    return len(redis_server.client_list()) - 1


# ---------------------------------------------------------------------------------------------
# 4. pre-auth: HELLO's SETNAME value "AUTH" is not the AUTH option


def test_hello_setname_named_auth_does_not_pass_the_gate(redis_server, corral_factory):
    """Issue item 4: `HELLO 3 SETNAME AUTH SETNAME x` without a password passed corral's auth
    gate (AUTH read as an option, not as SETNAME's value) and took a dedicated upstream
    connection. Expected: Redis's own NOAUTH HELLO error, no upstream connection, and such
    clients cannot exhaust upstream.max_dedicated."""
    cfg = corral_config(redis_server.port, upstream={"max_dedicated": 2})
    cfg["auth"] = USERS
    c = corral_factory(cfg)
    with c.client() as warm:
        assert warm.cmd("AUTH", "app", CLIENT_PW) == "OK"
        assert warm.cmd("SET", "k", "v") == "OK"  # the shared connection is up
    conns_before = _upstream_conns(redis_server)
    held = []
    try:
        for _ in range(3):
            cl = c.client()
            held.append(cl)
            r = cl.cmd("HELLO", "3", "SETNAME", "AUTH", "SETNAME", "x")
            assert r == HELLO_NOAUTH, r
            assert cl.cmd("GET", "k") == NOAUTH
        assert _metric(c, "corral_dedicated_connections") == 0
        assert _upstream_conns(redis_server) == conns_before, redis_server.client_list()
        # an authenticated client can still block (Redis: nil after the timeout)
        with c.client() as ok:
            assert ok.cmd("AUTH", "app", CLIENT_PW) == "OK"
            assert ok.cmd("BLPOP", "q:free", "0.1") is None
    finally:
        for cl in held:
            cl.close()


# ---------------------------------------------------------------------------------------------
# 5. corral's upstream password never reaches a client


@pytest.fixture
def redis_with_secret(corral_only):
    # masterauth too: CONFIG GET masterauth / * must not show it either (a replica setup uses
    # the same password for both).
    with RedisServer(password=UP_SECRET, extra_args=["--masterauth", UP_SECRET]) as r:
        yield r


CONFIG_GETS = [("CONFIG", "GET", "requirepass"), ("CONFIG", "GET", "masterauth"),
               ("CONFIG", "GET", "*")]

# (name, commands sent first, commands sent after the CONFIG GETs): every mode in which a
# command goes to the client's own upstream connection.
MODES = {
    "multi": ([("MULTI",)], [("EXEC",)]),
    "watch": ([("WATCH", "x")], [("UNWATCH",)]),
    "hello3": ([("HELLO", "3")], []),
    "client_reply_on": ([("CLIENT", "REPLY", "ON")], []),
    "resp2_sub_unsub": ([("SUBSCRIBE", "c"), ("UNSUBSCRIBE", "c")], []),
    "blocking": ([("BLPOP", "q:none", "0.01")], []),
}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("pipelined", [False, True], ids=["one_by_one", "pipelined"])
def test_config_get_never_shows_the_upstream_password(redis_with_secret, corral_factory, mode,
                                                      pipelined):
    """Issue item 5: CONFIG GET requirepass / masterauth / * inside MULTI/EXEC, after WATCH,
    after HELLO 3, after CLIENT REPLY ON and (RESP2) after SUBSCRIBE+UNSUBSCRIBE returned
    corral's upstream password. corral's own upstream credentials must never reach a client."""
    c = corral_factory(corral_config(redis_with_secret.port, upstream={"password": UP_SECRET}))
    before, after = MODES[mode]
    cmds = before + CONFIG_GETS + after
    with c.client() as cl:
        if pipelined:
            replies = cl.pipeline(cmds)
        else:
            replies = []
            for args in cmds:
                replies.append(cl.cmd(*args))
    assert all(r is not EOF for r in replies), replies
    assert UP_SECRET.encode() not in repr(replies).encode(), \
        f"corral's upstream password reached the client ({mode}): {replies!r}"[:2000]


def test_hello_auth_inside_multi_never_reaches_redis(redis_with_secret, corral_factory):
    """Issue item 5: `HELLO 3 AUTH app <pw>` inside MULTI was queued on Redis with the client's
    credentials (MONITOR shows `"HELLO" "3" "AUTH" "(redacted)" "(redacted)"`, and Redis logs a
    failed auth in ACL LOG). The client's credentials are corral's business only."""
    cfg = corral_config(redis_with_secret.port, upstream={"password": UP_SECRET})
    cfg["auth"] = USERS
    c = corral_factory(cfg)
    with redis_with_secret.client() as direct:
        assert direct.cmd("ACL", "LOG", "RESET") == "OK"
    mon = redis_with_secret.client()
    try:
        assert mon.cmd("MONITOR") == "OK"
        with c.client() as cl:
            assert cl.cmd("AUTH", "app", CLIENT_PW) == "OK"
            replies = cl.pipeline([("MULTI",), ("HELLO", "3", "AUTH", "app", CLIENT_PW),
                                   ("EXEC",)])
            assert replies[0] == "OK", replies
        # a marker from a direct connection: MONITOR has shown everything before it
        marker = "corral-test-monitor-marker"
        assert redis_with_secret.cmd("ECHO", marker) == marker.encode()
        lines = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            line = mon.read_reply()
            lines.append(line)
            if isinstance(line, str) and marker in line:
                break
        hello_auth = [ln for ln in lines
                      if isinstance(ln, str) and '"HELLO"' in ln.upper() and '"AUTH"' in ln.upper()]
        assert not hello_auth, f"HELLO with the client's AUTH reached redis: {hello_auth}"
        assert not any(isinstance(ln, str) and CLIENT_PW in ln for ln in lines)
    finally:
        mon.close()
    with redis_with_secret.client() as direct:
        log = direct.cmd("ACL", "LOG")
        assert log == [], f"redis saw an auth attempt with the client's credentials: {log}"


# ---------------------------------------------------------------------------------------------
# 7. RESET


def test_reset_in_resp3_logs_the_client_out(redis_server, corral_factory):
    """Issue item 7: RESET in RESP3 (pipe) mode did not log the client out of corral. Redis 7.0
    with requirepass: after RESET the next command gets `-NOAUTH Authentication required.`;
    after AUTH again it works."""
    cfg = corral_config(redis_server.port)
    cfg["auth"] = USERS
    c = corral_factory(cfg)
    with c.client() as cl:
        r = cl.cmd("HELLO", "3", "AUTH", "app", CLIENT_PW)
        assert isinstance(r, dict) and r[b"proto"] == 3, r
        assert cl.cmd("SET", "k", "v") == "OK"
        assert cl.cmd("RESET") == "RESET"
        assert cl.cmd("GET", "k") == NOAUTH
        assert cl.cmd("AUTH", "app", CLIENT_PW) == "OK"
        assert cl.cmd("GET", "k") == b"v"


@pytest.mark.parametrize("enter", [("HELLO", "3"), ("CLIENT", "REPLY", "ON"),
                                   ("CLIENT", "TRACKING", "on")],
                         ids=["hello3", "client_reply_on", "tracking"])
def test_reset_in_pipe_mode_keeps_corrals_upstream_authenticated(redis_with_secret,
                                                                  corral_factory, enter):
    """Issue item 7: with an upstream password, RESET in pipe mode went to Redis, which
    de-authenticated corral's own upstream connection: the app (which has no password to give)
    then got NOAUTH from Redis. For the app, RESET must behave like on a Redis without a
    password: +RESET, and the next commands work."""
    c = corral_factory(corral_config(redis_with_secret.port, upstream={"password": UP_SECRET}))
    with c.client() as cl:
        r = cl.cmd(*enter)
        assert not isinstance(r, RespError) and r is not EOF, r
        assert cl.cmd("SET", "k", "v") == "OK"
        assert cl.cmd("RESET") == "RESET"
        assert cl.cmd("GET", "k") == b"v"
        assert cl.cmd("SET", "k", "w") == "OK"
        assert cl.cmd("GET", "k") == b"w"


def test_reset_inside_pipelined_multi_discards_the_transaction(redis_server, corral_factory):
    """Issue item 7: MULTI, SET k v, RESET, EXEC in one packet ran the discarded transaction.
    redis-server 7.0.15 answers ['OK', 'QUEUED', 'RESET', '-ERR EXEC without MULTI'] and k stays
    unset."""
    c = corral_factory(corral_config(redis_server.port))
    with c.client() as cl:
        replies = cl.pipeline([("MULTI",), ("SET", "rm:k", "v"), ("RESET",), ("EXEC",),
                               ("GET", "rm:k")])
        assert replies == ["OK", "QUEUED", "RESET", RespError("ERR EXEC without MULTI"), None], \
            replies
    assert redis_server.cmd("EXISTS", "rm:k") == 0


def test_reset_inside_multi_one_by_one(redis_server, corral_factory):
    """The same one command at a time (a regression guard next to the pipelined case)."""
    c = corral_factory(corral_config(redis_server.port))
    with c.client() as cl:
        assert cl.cmd("MULTI") == "OK"
        assert cl.cmd("SET", "rm:k", "v") == "QUEUED"
        assert cl.cmd("RESET") == "RESET"
        assert cl.cmd("EXEC") == RespError("ERR EXEC without MULTI")
        assert cl.cmd("GET", "rm:k") is None
