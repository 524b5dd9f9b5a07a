"""Reply order in pipe mode (issue item 6): once a client talks to its own upstream connection
(RESP3 after HELLO 3, or a RESP2 subscriber), the replies corral makes itself (AUTH's OK /
WRONGPASS, NOAUTH, policy refusals) must still come in request order, none lost. corral-only.

Reference: redis-server 7.0.15 with requirepass answers, for the same packets, in request order:
  RESP3: GET k, AUTH pw, AUTH x y, PING  -> v, +OK, -WRONGPASS ..., +PONG
  RESP2 subscribed: PING, AUTH pw, PING x -> [pong, ""], -ERR Can't execute 'auth': only
      (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context,
      [pong, x]
"""

import pytest

from cluster_upstream import SELECT_DB
from harness import RespError, corral_config, to_yaml

PW = "pw-for-app"
USERS = {"users": [{"name": "app", "password": PW}]}
WRONGPASS = RespError("WRONGPASS invalid username-password pair or user is disabled.")
NOAUTH = RespError("NOAUTH Authentication required.")


def _ctx_error(cmd):
    # redis-server 7.0.15, RESP2 client in subscribed mode
    return RespError(f"ERR Can't execute '{cmd}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                     "QUIT / RESET are allowed in this context")


def _auth_corral(redis_server, corral_factory):
    cfg = corral_config(redis_server.port)
    cfg["auth"] = USERS
    return corral_factory(cfg)


def _hello3(cl):
    r = cl.cmd("HELLO", "3", "AUTH", "app", PW)
    assert isinstance(r, dict) and r[b"proto"] == 3, r


@pytest.mark.parametrize("password,expect", [(PW, "OK"), ("bad", WRONGPASS)], ids=["ok", "wrong"])
def test_resp3_auth_reply_in_order(redis_server, corral_factory, password, expect):
    """After HELLO 3: GET k, AUTH ..., PING in one packet. corral answered AUTH at once, so the
    client read AUTH's reply as GET's and GET's as AUTH's."""
    c = _auth_corral(redis_server, corral_factory)
    with c.client() as cl:
        _hello3(cl)
        assert cl.cmd("SET", "k", "v") == "OK"
        got = cl.pipeline([("GET", "k"), ("AUTH", "app", password), ("PING",)])
        assert got == [b"v", expect, "PONG"], got
        # many in one packet, interleaved
        cmds, want = [], []
        for i in range(50):
            cmds += [("INCR", "n"), ("AUTH", "app", PW if i % 2 else "bad"), ("ECHO", f"e{i}")]
            want += [i + 1, "OK" if i % 2 else WRONGPASS, f"e{i}".encode()]
        assert cl.pipeline(cmds) == want


def test_resp3_noauth_after_reset_in_order(redis_server, corral_factory):
    """NOAUTH, corral's own reply, in order with forwarded ones: after HELLO 3, the packet
    GET k, RESET, GET k, AUTH app pw, GET k is answered like Redis with requirepass does:
    v, RESET, NOAUTH, OK, v."""
    c = _auth_corral(redis_server, corral_factory)
    with c.client() as cl:
        _hello3(cl)
        assert cl.cmd("SET", "k", "v") == "OK"
        got = cl.pipeline([("GET", "k"), ("RESET",), ("GET", "k"), ("AUTH", "app", PW),
                           ("GET", "k")])
        assert got == [b"v", "RESET", NOAUTH, "OK", b"v"], got


@pytest.mark.parametrize("password,expect", [(PW, "OK"), ("bad", WRONGPASS)], ids=["ok", "wrong"])
def test_resp2_subscriber_auth_reply_in_order(redis_server, corral_factory, password, expect):
    """A RESP2 subscriber sends PING, AUTH ..., PING x in one packet. Redis refuses AUTH in this
    context (see the module docstring); corral may answer it itself (it owns credentials), but in
    its turn."""
    c = _auth_corral(redis_server, corral_factory)
    with c.client() as cl:
        assert cl.cmd("AUTH", "app", PW) == "OK"
        assert cl.cmd("SUBSCRIBE", "c") == [b"subscribe", b"c", 1]
        got = cl.pipeline([("PING",), ("AUTH", "app", password), ("PING", "x")])
        assert got[0] == [b"pong", b""] and got[2] == [b"pong", b"x"], got
        assert got[1] in (expect, _ctx_error("auth")), got


POLICY = """
global:
  unmatched_keys: reject
policies:
  - name: user
    match: "user:<id:u64>"
"""
STRAY_ERR = RespError("KEYNAME key 'stray' matches no policy (global.unmatched_keys: reject)")


def _policy_corral(redis_server, corral_factory):
    return corral_factory(to_yaml(corral_config(redis_server.port)) + "\n" + POLICY)


def test_unsubscribe_refused_get_ping_in_one_packet(redis_server, corral_factory):
    """A subscriber's UNSUBSCRIBE + a GET the policy refuses + PING in one packet lost a reply
    (the client waited for ever). After the last unsubscribe the client is a plain RESP2 client
    again (Redis: PING answers +PONG), so: the unsubscribe confirmation, corral's KEYNAME error,
    PONG."""
    c = _policy_corral(redis_server, corral_factory)
    with c.client(timeout=3.0) as cl:
        assert cl.cmd("SUBSCRIBE", "c") == [b"subscribe", b"c", 1]
        got = cl.pipeline([("UNSUBSCRIBE",), ("GET", "stray"), ("PING",)])
        assert got == [[b"unsubscribe", b"c", 0], STRAY_ERR, "PONG"], got
        assert cl.cmd("SET", "user:1", "x") == "OK"


def test_subscriber_refused_get_gets_a_get_error(redis_server, corral_factory):
    """While subscribed (RESP2), a GET the policy refuses must be answered with corral's refusal
    or with Redis's own context error for GET: not with an error about a command the client never
    sent (corral sent the refusal as an EVAL, and Redis answered "Can't execute 'eval'")."""
    c = _policy_corral(redis_server, corral_factory)
    with c.client(timeout=3.0) as cl:
        assert cl.cmd("SUBSCRIBE", "c") == [b"subscribe", b"c", 1]
        got = cl.pipeline([("GET", "stray"), ("PING",)])
        assert got[1] == [b"pong", b""], got
        assert got[0] in (STRAY_ERR, _ctx_error("get")), got


def test_resp3_refused_and_forwarded_in_order(redis_server, corral_factory):
    """RESP3: refusals and forwarded replies interleaved keep their order (a guard: this one
    holds on the code the issue was written against)."""
    c = _policy_corral(redis_server, corral_factory)
    with c.client(timeout=3.0) as cl:
        assert cl.cmd("HELLO", "3")[b"proto"] == 3
        assert cl.cmd("SET", "user:1", "one") == "OK"
        got = cl.pipeline([("GET", "stray"), ("PING",), ("GET", "user:1"), ("GET", "user:x"),
                           ("ECHO", "z")])
        assert got == [STRAY_ERR, "PONG", b"one",
                       RespError("KEYNAME user: key 'user:x' does not match user:<id:u64>"),
                       b"z"], got


@pytest.mark.single_node(SELECT_DB)
def test_reset_of_a_subscriber_resets_db_and_name(redis_server, corral_factory):
    """Found by test_model.py: a RESP2 subscriber's RESET goes to its own upstream connection
    and leaves pub/sub mode, but corral kept the db the client had SELECTed (and its CLIENT
    SETNAME name): later commands went to that db. Redis's RESET selects db 0 and clears the
    name (redis-server 7.0.15: after SELECT 2, SUBSCRIBE, RESET, a SET lands in db 0 and CLIENT
    GETNAME is nil)."""
    c = corral_factory(corral_config(redis_server.port))
    with c.client() as cl:
        assert cl.cmd("SELECT", "2") == "OK"
        assert cl.cmd("CLIENT", "SETNAME", "before-reset") == "OK"
        assert cl.cmd("SUBSCRIBE", "c") == [b"subscribe", b"c", 1]
        assert cl.cmd("RESET") == "RESET"
        assert cl.cmd("SET", "reset:k", "v") == "OK"
        name = cl.cmd("CLIENT", "GETNAME")
    with redis_server.client() as d:
        db0 = d.cmd("GET", "reset:k")
    assert (db0, name) == (b"v", None), \
        f"after RESET: value in db 0 {db0!r} (the SET went elsewhere if nil), name {name!r}"
