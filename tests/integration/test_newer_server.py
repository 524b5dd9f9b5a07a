"""Servers newer than corral's command table (Redis 7.0.15): corral learns their commands from
COMMAND at connect and lays them over the table, so policies see the keys of HEXPIRE & co;
global.unknown_commands decides about commands nobody knows (docs/policies.md). corral-only.

    test --> corral --> FakeRedis (tests/support/fake_redis.py): a real 7.0.15 COMMAND reply
                        with Redis 7.2-8.0 commands and a module's appended, answered to COMMAND
    test --> corral --> redis-server 7.0.15: nothing learnt, nothing changes

What reached the upstream is read from the fake's own record of requests, never inferred.
"""

import re

import pytest

from fake_redis import NEWER_COMMANDS, FakeRedis, recorded_command_reply
from harness import RedisServer, RespError, corral_config, wait_until

USERS = [{"name": "users", "match": "user:<id:int>"}]
HEXPIRE_ARGS = ("100", "FIELDS", "1", "f")


@pytest.fixture(scope="module")
def newer_reply():
    """The recorded reply: a live 7.0.15's COMMAND with the newer commands appended."""
    with RedisServer() as r:
        return recorded_command_reply(r.port)


@pytest.fixture
def fake(newer_reply):
    with FakeRedis(newer_reply) as f:
        yield f


def wait_learnt(c, n):
    wait_until(lambda: c.metrics().get("corral_commands_learnt") == n, 10,
               what=f"corral_commands_learnt == {n}")


def test_learnt_commands_meet_the_key_policies(fake, corral_factory):
    c = corral_factory(corral_config(fake.port, workers=2, policies=USERS,
                                     **{"global": {"unmatched_keys": "reject"}}))
    # Every newer command is learnt (none of 7.0.15's: they are the table's own).
    wait_learnt(c, len(NEWER_COMMANDS))
    assert "upstream commands learnt" in c.stderr_text()
    with c.client() as cl:
        # The case: a key no policy covers, refused as any 7.0 command's would be.
        r = cl.cmd("HEXPIRE", "other:1", *HEXPIRE_ARGS)
        assert r == RespError("KEYNAME key 'other:1' matches no policy "
                              "(global.unmatched_keys: reject)"), r
        assert cl.cmd("GET", "other:1") == r  # the same answer as a 7.0 command on that key
        assert fake.requests_named("HEXPIRE") == []
        # A key a policy covers goes through, with the server's reply.
        assert cl.cmd("HEXPIRE", "user:1", *HEXPIRE_ARGS) == [1]
        assert fake.requests_named("HEXPIRE") == [[b"HEXPIRE", b"user:1", b"100", b"FIELDS",
                                                   b"1", b"f"]]
        # Naming rules of the covering policy apply too.
        r = cl.cmd("HTTL", "user:abc", "FIELDS", "1", "f")
        assert r == RespError("KEYNAME users: key 'user:abc' does not match user:<id:int>"), r
        assert cl.cmd("HGETEX", "other:2", "EX", "10", "FIELDS", "1", "f") == \
            RespError("KEYNAME key 'other:2' matches no policy (global.unmatched_keys: reject)")
        assert cl.cmd("HSETEX", "user:2", "FIELDS", "1", "f", "v") == 1
        assert cl.cmd("HGETDEL", "user:3", "FIELDS", "1", "f") == [None]
        # Keys found by a keyword and a count (the module command): each one is checked.
        r = cl.cmd("MODX.MGET", "opt", "KEYS", "2", "user:1", "other:9")
        assert r == RespError("KEYNAME key 'other:9' matches no policy "
                              "(global.unmatched_keys: reject)"), r
        assert cl.cmd("modx.mget", "opt", "keys", "2", "user:1", "user:2") == [None]
        # A learnt blocking command would hold a shared connection: refused, never sent.
        r = cl.cmd("MODX.BPOP", "user:1", "0")
        assert isinstance(r, RespError) and r.startswith("ERR corral: MODX.BPOP is not "
                                                         "supported through corral"), r
        assert fake.requests_named("MODX.BPOP") == []
    sent = [r[:2] for r in fake.received]
    assert sent == [[b"HEXPIRE", b"user:1"], [b"HSETEX", b"user:2"], [b"HGETDEL", b"user:3"],
                    [b"modx.mget", b"opt"]]
    # One COMMAND per process, not per worker or connection.
    assert fake.command_requests == 1
    m = c.metrics()
    assert m['corral_command_requests_total{command="(learnt)"}'] >= 5


def test_unknown_commands_reject(fake, corral_factory):
    c = corral_factory(corral_config(fake.port, **{"global": {"unknown_commands": "reject"}}))
    wait_learnt(c, len(NEWER_COMMANDS))
    with c.client() as cl:
        r = cl.cmd("NOSUCHCMD", "a", "b")
        assert r == RespError("ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' "
                              "'b' "), r
        r = cl.cmd("OBJECT", "NOSUCH", "k")
        assert r == RespError("ERR unknown subcommand 'NOSUCH'. Try OBJECT HELP."), r
        # CLIENT is corral's own: a newer server's CLIENT subcommands are never learnt. NO-TOUCH
        # (7.2) would flag the shared connection: refused whatever the setting, in 7.0's words.
        r = cl.cmd("CLIENT", "NO-TOUCH", "on")
        assert r == RespError("ERR unknown subcommand 'NO-TOUCH'. Try CLIENT HELP."), r
        r = cl.cmd("CLIENT", "CAPA", "redirect")
        assert r == RespError("ERR unknown subcommand 'CAPA'. Try CLIENT HELP."), r
        assert cl.cmd("CLIENT", "SETINFO", "lib-name", "x") == "OK"  # answered by corral
        # Learnt and built-in commands are not unknown.
        assert cl.cmd("HEXPIRE", "k", *HEXPIRE_ARGS) == [1]
        assert cl.cmd("GET", "k") is None
        assert cl.cmd("PING") == "PONG"
    assert fake.requests_named("NOSUCHCMD") == []
    assert fake.requests_named("OBJECT") == []
    assert fake.requests_named("CLIENT") == []
    assert len(fake.requests_named("HEXPIRE")) == 1
    assert c.metrics()["corral_unknown_commands_rejected_total"] == 3  # NO-TOUCH: refused apart


def test_unknown_commands_forward(fake, corral_factory):
    c = corral_factory(corral_config(fake.port, **{"global": {"unknown_commands": "forward"}}))
    wait_learnt(c, len(NEWER_COMMANDS))
    with c.client() as cl:
        # The server's own answer (the fake's copy of Redis's error), after it saw the request.
        r = cl.cmd("NOSUCHCMD", "a", "b")
        assert r == RespError("ERR unknown command 'NOSUCHCMD', with args beginning with: 'a' "
                              "'b' "), r
    assert fake.requests_named("NOSUCHCMD") == [[b"NOSUCHCMD", b"a", b"b"]]
    assert c.metrics()["corral_unknown_commands_rejected_total"] == 0
    with c.client() as cl:  # refused in either mode: never sent to the shared connection
        r = cl.cmd("CLIENT", "NO-TOUCH", "on")
        assert r == RespError("ERR unknown subcommand 'NO-TOUCH'. Try CLIENT HELP."), r
    assert fake.requests_named("CLIENT") == []


def test_unknown_commands_default_follows_the_policies(fake, corral_factory):
    strict = corral_factory(corral_config(fake.port, **{"global": {"unmatched_keys": "reject"}}))
    enforced = corral_factory(corral_config(fake.port, policies=USERS))
    lax = corral_factory(corral_config(fake.port))
    for c in (strict, enforced, lax):
        wait_learnt(c, len(NEWER_COMMANDS))
    for c, want in ((strict, "reject"), (enforced, "reject"), (lax, "forward")):
        status, body = c.http_get("/policies")
        assert status == 200 and f'"unknown_commands":"{want}"' in body, body
    for c in (strict, enforced):
        with c.client() as cl:
            r = cl.cmd("NOSUCHCMD", "user:1")
            assert isinstance(r, RespError) and r.startswith("ERR unknown command 'NOSUCHCMD'")
    assert fake.requests_named("NOSUCHCMD") == []
    with lax.client() as cl:
        cl.cmd("NOSUCHCMD", "user:1")
    assert fake.requests_named("NOSUCHCMD") == [[b"NOSUCHCMD", b"user:1"]]


def test_server_refusing_command_leaves_newer_commands_unknown(newer_reply, corral_factory):
    """An ACL without COMMAND: nothing is learnt, and under strict policies the newer commands
    are refused as unknown instead of escaping the policies."""
    refusal = b"-NOPERM this user has no permissions to run the 'command' command\r\n"
    with FakeRedis(newer_reply, command_error=refusal) as f:
        c = corral_factory(corral_config(f.port, policies=USERS,
                                         **{"global": {"unmatched_keys": "reject"}}))
        wait_until(lambda: "upstream COMMAND refused" in c.stderr_text(), 10,
                   what="the refusal logged")
        assert "NOPERM" in c.stderr_text()
        with c.client() as cl:
            r = cl.cmd("HEXPIRE", "other:1", *HEXPIRE_ARGS)
            assert isinstance(r, RespError) and r.startswith("ERR unknown command 'HEXPIRE'"), r
            assert cl.cmd("GET", "user:1") is None  # the rest works as before
        assert f.requests_named("HEXPIRE") == []
        assert f.command_requests == 1  # refused for good: not asked again
        assert c.metrics().get("corral_commands_learnt") == 0


def test_connection_lost_under_command_is_asked_again(newer_reply, corral_factory):
    with FakeRedis(newer_reply, drop_on_command=2) as f:
        c = corral_factory(corral_config(f.port, **{"global": {"unmatched_keys": "reject"}}))
        wait_learnt(c, len(NEWER_COMMANDS))
        assert f.command_requests == 3
        with c.client() as cl:
            r = cl.cmd("HEXPIRE", "other:1", *HEXPIRE_ARGS)
            assert r == RespError("KEYNAME key 'other:1' matches no policy "
                                  "(global.unmatched_keys: reject)"), r


@pytest.mark.parametrize("unknown", ["forward", "reject"])
def test_redis_7_0_nothing_changes_for_known_commands(unknown, corral_factory):
    """Against the real redis-server 7.0.15 the overlay is empty, and every reply through corral
    is the one Redis gives directly, unknown commands included, in either mode."""
    with RedisServer() as r:
        c = corral_factory(corral_config(r.port, workers=2,
                                         **{"global": {"unknown_commands": unknown}}))
        wait_until(lambda: re.search(r"upstream commands learnt .* learnt=0 not_learnt=0 "
                                     r"malformed=0", c.stderr_text()), 10,
                   what="COMMAND answered and read")
        assert c.metrics().get("corral_commands_learnt") == 0
        script = [
            ("SET", "k", "v"), ("GET", "k"), ("HSET", "h", "f", "1"), ("HGETALL", "h"),
            ("XADD", "s", "1-1", "f", "v"), ("XREAD", "COUNT", "1", "STREAMS", "s", "0"),
            ("ZADD", "z", "1", "a"), ("ZUNIONSTORE", "d", "1", "z"), ("ZRANGE", "d", "0", "-1"),
            ("EVAL", "return KEYS[1]", "1", "k"), ("OBJECT", "ENCODING", "k"),
            ("OBJECT", "NOSUCH", "k"), ("CONFIG", "NOSUCH"), ("CLIENT", "NOSUCH"),
            ("NOSUCHCMD", "a", "b"), ("GET",), ("HEXPIRE", "h", "100", "FIELDS", "1", "f"),
            ("MULTI",), ("SET", "t", "1"), ("NOSUCHCMD",), ("EXEC",), ("GET", "t"),
        ]
        with r.client() as direct:
            want = [direct.cmd(*args) for args in script]
            direct.cmd("FLUSHALL")
        with c.client() as cl:
            got = [cl.cmd(*args) for args in script]
        for args, w, g in zip(script, want, got):
            assert g == w, (args, w, g)
        assert want[-2] == RespError("EXECABORT Transaction discarded because of previous "
                                     "errors.")
        info = r.info("commandstats")
        assert info["cmdstat_command"].startswith("calls=1,"), info["cmdstat_command"]
        # Known commands are counted under their own names, nothing under the learnt slot.
        m = c.metrics()
        assert m['corral_command_requests_total{command="hset"}'] == 1
        assert 'corral_command_requests_total{command="(learnt)"}' not in m
