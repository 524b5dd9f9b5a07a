"""RESP3 clients (HELLO 3) of corral in front of a Redis Cluster: the nodes have RESP3 connections
of their own, so such a client reaches every shard without holding a connection, gets the reply
types a node gives a RESP3 client (maps, sets, doubles, nulls), and a RESP3 subscriber goes on
using keys of every shard. CLIENT TRACKING stays on the one node its connection is held on (a
documented limit). The cluster (3 primaries + 3 replicas) is tests/support/cluster.py's."""
import pytest

from cluster import key_slot
from harness import RespConn, RespError, wait_until
from raw_resp import RawConn
from test_cluster import corral_cluster, keys_on_each_shard  # noqa: F401 (a fixture)


def dedicated(c):
    return c.metrics()["corral_dedicated_connections"]


def test_resp3_client_gets_node_reply_types_on_every_shard_without_holding(
        redis_cluster, corral_cluster):
    per_shard = keys_on_each_shard(redis_cluster, "r3")
    per_shard = {port: "{" + k + "}" for port, k in per_shard.items()}  # its keys on its shard
    setup = []
    for k in per_shard.values():
        setup += [("DEL", k + ":h", k + ":z", k + ":s"), ("HSET", k + ":h", "f", "v", "g", "w"),
                  ("ZADD", k + ":z", "1.5", "m"), ("SADD", k + ":s", "a")]
    with RespConn(corral_cluster.port) as c:
        for cmd in setup:
            assert not isinstance(c.cmd(*cmd), RespError)
    probes = []
    for k in per_shard.values():
        probes += [("HGETALL", k + ":h"), ("ZSCORE", k + ":z", "m"), ("SMEMBERS", k + ":s"),
                   ("GET", k + ":none"), ("ZRANGE", k + ":z", "0", "-1", "WITHSCORES"),
                   ("HRANDFIELD", k + ":none"), ("TTL", k + ":h")]
    with RawConn(corral_cluster.port) as c:
        assert b"proto" in c.cmd("HELLO", "3")
        got = [c.cmd(*p) for p in probes]
        # Split across slots: nulls and values in key order, as RESP3 nulls.
        mget = c.cmd("MGET", *[k + ":none" for k in per_shard.values()])
        assert dedicated(corral_cluster) == 0, "a RESP3 client holds no connection"
        assert b"resp=3" in c.cmd("CLIENT", "INFO")
        assert c.cmd("RESET") == b"+RESET\r\n"
        assert c.cmd("GET", "r3:none") == b"$-1\r\n"  # RESP2 again
    assert mget == b"*3\r\n_\r\n_\r\n_\r\n"
    want = []
    for port, k in per_shard.items():
        with RawConn(port) as direct:
            direct.cmd("HELLO", "3")
            want += [direct.cmd(*p) for p in probes if p[1].startswith(k + ":")]
    assert got == want
    assert got[0].startswith(b"%2\r\n") and got[1] == b",1.5\r\n" and got[2].startswith(b"~1")
    assert got[3] == b"_\r\n"


def test_resp3_subscriber_uses_every_shard_and_is_released_after(redis_cluster, corral_cluster):
    per_shard = {p: "{" + k + "}" for p, k in keys_on_each_shard(redis_cluster, "r3sub").items()}
    with RespConn(corral_cluster.port) as s, RespConn(corral_cluster.port) as pub:
        assert s.cmd("HELLO", "3")[b"proto"] == 3
        assert list(s.cmd("SUBSCRIBE", "r3ch")) == [b"subscribe", b"r3ch", 1]
        assert dedicated(corral_cluster) == 1
        for n, k in enumerate(per_shard.values()):
            assert s.cmd("SET", k, f"v{n}") == "OK"
            assert s.cmd("GET", k) == f"v{n}".encode()
        # Pipelined: keys of all shards and a keyless command on the subscribed connection,
        # replies in order.
        cmds = [("GET", k) for k in per_shard.values()] + [("PING",)] + \
            [("INCR", k + ":n") for k in per_shard.values()]
        got = s.pipeline(cmds)
        assert got[:3] == [b"v0", b"v1", b"v2"]
        assert list(got[3]) == [b"pong", b""] or got[3] == "PONG"
        assert got[4:] == [1, 1, 1]
        assert pub.cmd("PUBLISH", "r3ch", "hi") >= 0
        assert list(s.read_reply()) == [b"message", b"r3ch", b"hi"]
        assert list(s.cmd("UNSUBSCRIBE", "r3ch")) == [b"unsubscribe", b"r3ch", 0]
        wait_until(lambda: dedicated(corral_cluster) == 0, 5, what="the subscriber's connection "
                   "released after its last unsubscribe")
        assert s.cmd("GET", list(per_shard.values())[2]) == b"v2"
        assert s.cmd("HELLO")[b"proto"] == 3


def test_resp3_transaction_and_blocking_pop_on_any_shard(redis_cluster, corral_cluster):
    per_shard = {p: "{" + k + "}" for p, k in keys_on_each_shard(redis_cluster, "r3tx").items()}
    with RespConn(corral_cluster.port) as c:
        assert c.cmd("HELLO", "3")[b"proto"] == 3
        for n, k in enumerate(per_shard.values()):
            assert c.cmd("MULTI") == "OK"
            assert c.cmd("HSET", k, "f", str(n)) == "QUEUED"
            assert c.cmd("HGETALL", k) == "QUEUED"
            assert c.cmd("EXEC") == [1, {b"f": str(n).encode()}]  # a map: RESP3 inside EXEC
            assert c.cmd("RPUSH", k + ":l", "x") == 1
            assert c.cmd("BLPOP", k + ":l", "1") == [(k + ":l").encode(), b"x"]
            assert c.cmd("BLPOP", k + ":l", "0.05") is None  # RESP3 null on timeout
            assert c.cmd("DEL", k) == 1
        wait_until(lambda: dedicated(corral_cluster) == 0, 5, what="released after EXEC/BLPOP")


def test_tracking_is_held_on_one_node_and_says_so_for_the_others(redis_cluster, corral_cluster):
    per_shard = keys_on_each_shard(redis_cluster, "r3trk")
    with RespConn(corral_cluster.port) as t:
        assert t.cmd("HELLO", "3")[b"proto"] == 3
        assert t.cmd("CLIENT", "TRACKING", "on") == "OK"
        replies = [t.cmd("GET", k) for k in per_shard.values()]
    refused = [r for r in replies if isinstance(r, RespError)]
    assert len(refused) == 2, replies
    assert all("held on cluster node" in r.message for r in refused)
    assert [r for r in replies if not isinstance(r, RespError)] == [None]


@pytest.mark.parametrize("ver", ["2", "3"])
def test_hello_switches_a_shared_client_both_ways(redis_cluster, corral_cluster, ver):
    k = "r3sw:" + ver
    with RawConn(corral_cluster.port) as c:
        c.cmd("HELLO", ver)
        c.cmd("DEL", k)
        assert c.cmd("HSET", k, "f", "v") == b":1\r\n"
        c.cmd("HELLO", "3" if ver == "2" else "2")
        now3 = ver == "2"
        got = c.cmd("HGETALL", k)
        assert got == (b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n" if now3 else
                       b"*2\r\n$1\r\nf\r\n$1\r\nv\r\n")
        assert key_slot(k) >= 0
