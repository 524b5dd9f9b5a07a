"""Test 7: commands corral answers itself, commands it refuses, and errors Redis would give.

The redis-compatible parts also run with CORRAL_TARGET=redis; the `-ERR corral:` refusals and
HELLO 3 -> NOPROTO are corral-only.
"""

import pytest

from harness import EOF, RespError


def test_ping_echo(target):
    with target.client() as c:
        assert c.cmd("PING") == "PONG"
        assert c.cmd("PING", "hello world") == b"hello world"
        assert c.cmd("ECHO", b"x\r\ny\0") == b"x\r\ny\0"
        assert c.cmd("ping") == "PONG"  # case-insensitive
        assert c.pipeline([("PING",), ("ECHO", "a"), ("PING", "b")]) == ["PONG", b"a", b"b"]


def test_hello_2_shape(target):
    with target.client() as c:
        r = c.cmd("HELLO", "2")
        assert isinstance(r, list) and len(r) == 14, r
        keys = r[0::2]
        assert keys == [b"server", b"version", b"proto", b"id", b"mode", b"role", b"modules"], r
        d = dict(zip(keys, r[1::2]))
        assert d[b"proto"] == 2
        assert isinstance(d[b"id"], int) and d[b"id"] > 0
        assert isinstance(d[b"version"], bytes) and d[b"version"]
        assert d[b"mode"] == b"standalone"
        assert d[b"role"] == b"master"
        assert d[b"modules"] == []
        # HELLO without arguments answers in the current protocol, same shape
        r2 = c.cmd("HELLO")
        assert isinstance(r2, list) and r2[0::2] == keys
        assert c.cmd("PING") == "PONG"


def test_client_id_setname_getname_are_per_connection(target):
    with target.client() as a, target.client() as b:
        ida, idb = a.cmd("CLIENT", "ID"), b.cmd("CLIENT", "ID")
        assert isinstance(ida, int) and isinstance(idb, int) and ida != idb, (ida, idb)
        assert a.cmd("CLIENT", "ID") == ida  # stable
        assert a.cmd("CLIENT", "GETNAME") is None
        assert a.cmd("CLIENT", "SETNAME", "alpha") == "OK"
        assert b.cmd("CLIENT", "SETNAME", "beta") == "OK"
        assert a.cmd("CLIENT", "GETNAME") == b"alpha"
        assert b.cmd("CLIENT", "GETNAME") == b"beta"
        r = a.cmd("CLIENT", "SETNAME", "has space")
        assert isinstance(r, RespError) and r.startswith("ERR"), r
        assert a.cmd("CLIENT", "GETNAME") == b"alpha"
        # HELLO reports the same id as CLIENT ID
        h = a.cmd("HELLO", "2")
        assert dict(zip(h[0::2], h[1::2]))[b"id"] == ida


def test_quit_replies_ok_then_closes(target):
    with target.client() as c:
        assert c.cmd("SET", "quit:k", "1") == "OK"
        c.send_raw(b"*1\r\n$4\r\nQUIT\r\n*1\r\n$4\r\nPING\r\n")
        assert c.read_reply() == "OK"
        assert c.read_reply() is EOF
    with target.client() as c:
        assert c.cmd("GET", "quit:k") == b"1"


def test_select_configured_db(target):
    with target.client() as c:
        assert c.cmd("SELECT", "0") == "OK"
        assert c.cmd("PING") == "PONG"


def test_unknown_command_is_redis_error_and_connection_stays(target):
    with target.client() as c:
        r = c.cmd("NOSUCHCMD", "a", "b")
        assert isinstance(r, RespError), r
        assert r.message.startswith("ERR unknown command 'NOSUCHCMD'"), r
        assert "with args beginning with: 'a' 'b'" in r.message, r
        assert c.cmd("PING") == "PONG"
        c.send_raw(b"ALSONOTACOMMAND x\r\n")
        r = c.read_reply()
        assert isinstance(r, RespError) and r.startswith("ERR unknown command"), r
        assert c.cmd("ECHO", "still") == b"still"


@pytest.mark.parametrize("args,name", [
    (("ECHO",), "echo"),
    (("ECHO", "a", "b"), "echo"),
    (("PING", "a", "b"), "ping"),
    (("GET",), "get"),
    (("SET", "k"), "set"),
])
def test_wrong_arity(target, args, name):
    with target.client() as c:
        r = c.cmd(*args)
        assert r == RespError(f"ERR wrong number of arguments for '{name}' command"), r
        assert c.cmd("PING") == "PONG"


def test_hello_3_speaks_resp3_beside_resp2(target, corral_only):
    with target.client() as c3, target.client() as c2:
        r = c3.cmd("HELLO", "3")
        assert isinstance(r, dict) and r[b"proto"] == 3 and r[b"server"] == b"redis", r
        # RESP3 types for this client, RESP2 for the other, on the same corral
        assert c3.cmd("HGETALL", "hello3:none") == {}
        assert c2.cmd("HGETALL", "hello3:none") == []
        assert c3.cmd("SET", "hello3:k", "v") == "OK"
        assert c2.cmd("GET", "hello3:k") == b"v"
        assert c2.cmd("PING") == "PONG"
        # protocol versions Redis does not have
        r = c2.cmd("HELLO", "4")
        assert isinstance(r, RespError) and r.startswith("NOPROTO"), r


# Refused by corral (README: "Commands corral refuses"): replication and cluster handshakes,
# and connection flags that would act on a shared upstream connection. Transactions, blocking
# commands, SELECT, pub/sub, MONITOR and CLIENT TRACKING work: test_state.py, test_pubsub.py.
UNSUPPORTED = [
    ("SYNC",),
    ("PSYNC", "?", "-1"),
    ("REPLCONF", "listening-port", "7000"),
    ("READONLY",),
    ("CLIENT", "NO-EVICT", "on"),
    ("CLIENT", "PAUSE", "10"),
]


@pytest.mark.parametrize("args", UNSUPPORTED, ids=lambda a: " ".join(a))
def test_stateful_commands_refused_clearly(target, corral_only, args):
    with target.client(timeout=3.0) as c:
        r = c.cmd(*args)
        assert isinstance(r, RespError) and r.startswith("ERR corral:"), r
        # the connection works and is not left in a transaction / subscribed / blocked state
        assert c.cmd("SET", "refused:k", "v") == "OK"
        assert c.cmd("GET", "refused:k") == b"v"
        assert c.cmd("PING") == "PONG"


def test_non_blocking_xread_is_forwarded(target):
    with target.client() as c:
        id_ = c.cmd("XADD", "xs", "*", "f", "v")
        assert isinstance(id_, bytes), id_
        r = c.cmd("XREAD", "COUNT", "1", "STREAMS", "xs", "0")
        assert r == [[b"xs", [[id_, [b"f", b"v"]]]]], r
