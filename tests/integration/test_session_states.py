"""Session states that corral keeps itself (proxy/net/session.h), each checked against what
redis-server 7.0.15 answers for the same packets. Mode-agnostic tests run against Redis too
(CORRAL_TARGET=redis), which proves the expectations right.

- Inside MULTI, commands corral answers itself are queued (+QUEUED) and answered at EXEC, in
  EXEC's array, in order with Redis's replies.
- MONITOR: the client's own replies stay paired with its requests while monitor lines stream.
- Subscriptions pipelined behind an unsubscribe keep the connection subscribed.
- CLIENT LIST / CLIENT KILL see every worker's clients.
"""

import time

import pytest

from cluster_upstream import MONITOR_ONE_NODE
from harness import RespConn, RespError, corral_config, wait_until


def test_local_commands_inside_multi_answered_at_exec(target):
    with target.client() as cl:
        r = cl.pipeline([("MULTI",), ("CLIENT", "SETNAME", "in-tx"), ("PING",),
                         ("CLIENT", "GETNAME"), ("ECHO", "e"), ("INCR", "tx:n"), ("EXEC",)])
        assert r == ["OK", "QUEUED", "QUEUED", "QUEUED", "QUEUED", "QUEUED",
                     ["OK", "PONG", b"in-tx", b"e", 1]], r
        assert cl.cmd("CLIENT", "GETNAME") == b"in-tx"


def test_discarded_local_commands_change_nothing(target):
    with target.client() as cl:
        r = cl.pipeline([("MULTI",), ("CLIENT", "SETNAME", "never"), ("DISCARD",),
                         ("CLIENT", "GETNAME")])
        assert r == ["OK", "QUEUED", "OK", None], r


def test_watch_abort_drops_queued_local_commands(target):
    with target.client() as cl, target.client() as other:
        assert cl.cmd("WATCH", "tx:w") == "OK"
        assert other.cmd("SET", "tx:w", "1") == "OK"
        r = cl.pipeline([("MULTI",), ("CLIENT", "SETNAME", "aborted"), ("EXEC",),
                         ("CLIENT", "GETNAME")])
        assert r == ["OK", "QUEUED", None, None], r


@pytest.mark.single_node(MONITOR_ONE_NODE)
def test_monitor_keeps_replies_paired(target):
    with target.client() as mon, target.client() as writer:
        assert mon.cmd("MONITOR") == "OK"
        assert writer.cmd("SET", "mon:k", "1") == "OK"
        line = mon.read_reply()
        # corral's own COMMAND (learning the server's commands once ready) may show up first,
        # as any other client's command would.
        while isinstance(line, str) and line.endswith('] "COMMAND"'):
            line = mon.read_reply()
        assert isinstance(line, str) and '"SET" "mon:k" "1"' in line, line
        # A monitor client's own commands are answered in their turn (keyspace commands are
        # refused, as for a replica); monitor lines (its own PING's too) stream around them.
        def next_reply():
            while True:
                r = mon.read_reply()
                if not (isinstance(r, str) and r[:1].isdigit()):
                    return r

        mon.send_cmd("PING")
        assert next_reply() == "PONG"
        mon.send_cmd("GET", "mon:k")
        r = next_reply()
        assert isinstance(r, RespError) and "keyspace" in r.message, r
        mon.send_cmd("ECHO", "after")
        assert next_reply() == b"after"


def test_subscribe_pipelined_behind_the_last_unsubscribe(target):
    with target.client() as sub, target.client() as pub:
        r = sub.pipeline([("SUBSCRIBE", "s1"), ("UNSUBSCRIBE", "s1"), ("SUBSCRIBE", "s2")])
        assert r == [[b"subscribe", b"s1", 1], [b"unsubscribe", b"s1", 0],
                     [b"subscribe", b"s2", 1]], r
        # Still subscribed: the RESP2 context applies and messages arrive.
        assert sub.cmd("PING") == [b"pong", b""]
        assert pub.cmd("PUBLISH", "s2", "hello") == 1
        assert sub.read_reply() == [b"message", b"s2", b"hello"]
        assert sub.cmd("UNSUBSCRIBE") == [b"unsubscribe", b"s2", 0]
        assert sub.cmd("PING") == "PONG"


def test_client_list_and_kill_see_every_worker(redis_server, corral_factory):
    c = corral_factory(corral_config(redis_server.port, workers=2))
    conns = [c.client() for _ in range(8)]
    try:
        ids = []
        for i, cl in enumerate(conns):
            assert cl.cmd("CLIENT", "SETNAME", f"w{i}") == "OK"
            ids.append(cl.cmd("CLIENT", "ID"))
        listed = conns[0].cmd("CLIENT", "LIST").decode()
        names = sorted(f.split("=", 1)[1] for line in listed.splitlines()
                       for f in line.split() if f.startswith("name="))
        assert names == sorted(f"w{i}" for i in range(8)), listed
        # Kill every other client by id, wherever its worker is.
        for victim in ids[1::2]:
            assert conns[0].cmd("CLIENT", "KILL", "ID", victim) == 1
        for i, cl in enumerate(conns):
            if i % 2 == 1:
                cl.settimeout(2.0)
                try:
                    cl.send_cmd("PING")
                    r = cl.read_reply()
                except OSError:
                    r = None
                assert not r, (i, r)
        wait_until(lambda: conns[0].cmd("CLIENT", "LIST").decode().count("id=") == 4, 5,
                   what="four clients left")
        assert conns[2].cmd("PING") == "PONG"
    finally:
        for cl in conns:
            cl.close()
