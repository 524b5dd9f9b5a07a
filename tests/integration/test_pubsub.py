"""Pub/sub, MONITOR, CLIENT TRACKING and RESP3 through corral: the client gets its own upstream
connection, used as a pipe for the rest of its life. corral-only."""

import time

import pytest

from cluster_upstream import MONITOR_ONE_NODE, TRACKING_ONE_NODE
from harness import RespConn, RespError, corral_config, wait_until


def _corral(redis_server, corral_factory, **limits):
    cfg = corral_config(redis_server.port, upstream={"pool_size": 1})
    if limits:
        cfg["limits"] = limits
    return corral_factory(cfg)


def _metric(c, name):
    return c.metrics()[name]


def test_channel_pattern_and_shard_subscribers(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    with c.client() as sub, c.client() as psub, c.client() as ssub, c.client() as pub:
        assert sub.cmd("SUBSCRIBE", "news", "alerts") == [b"subscribe", b"news", 1]
        assert sub.read_reply() == [b"subscribe", b"alerts", 2]
        assert psub.cmd("PSUBSCRIBE", "n*") == [b"psubscribe", b"n*", 1]
        assert ssub.cmd("SSUBSCRIBE", "shard") == [b"ssubscribe", b"shard", 1]
        wait_until(lambda: _metric(c, "corral_dedicated_connections") == 3, 3,
                   what="three subscribers on their own connections")
        # the publisher stays on the shared connection
        for i in range(50):
            assert pub.cmd("PUBLISH", "news", f"m{i}") == 2  # sub and psub
        assert pub.cmd("SPUBLISH", "shard", "s0") == 1
        assert pub.cmd("PUBLISH", "alerts", "a0") == 1
        got = [sub.read_reply() for _ in range(51)]
        assert got == [[b"message", b"news", f"m{i}".encode()] for i in range(50)] + \
            [[b"message", b"alerts", b"a0"]]
        assert [psub.read_reply() for _ in range(50)] == \
            [[b"pmessage", b"n*", b"news", f"m{i}".encode()] for i in range(50)]
        assert ssub.read_reply() == [b"smessage", b"shard", b"s0"]
        # PING in subscribed mode is Redis's pub/sub form; unsubscribe confirmations in order
        assert sub.cmd("PING") == [b"pong", b""]
        assert sub.cmd("UNSUBSCRIBE") in ([b"unsubscribe", b"news", 1],
                                          [b"unsubscribe", b"alerts", 1])
        assert sub.read_reply()[2] == 0
        # out of pub/sub mode the same connection serves normal commands again
        assert sub.cmd("SET", "after:sub", "1") == "OK"
        assert sub.cmd("GET", "after:sub") == b"1"
        assert psub.cmd("PUNSUBSCRIBE", "n*") == [b"punsubscribe", b"n*", 0]
        assert ssub.cmd("SUNSUBSCRIBE", "shard") == [b"sunsubscribe", b"shard", 0]
        # the last unsubscribe gives each dedicated connection back
        wait_until(lambda: _metric(c, "corral_dedicated_connections") == 0, 3,
                   what="connections released after the last unsubscribe")
        assert psub.cmd("PING") == "PONG"  # plain RESP2 again, on the shared connection
        assert ssub.cmd("GET", "after:sub") == b"1"
        # subscribing again works the same way
        assert sub.cmd("SUBSCRIBE", "again") == [b"subscribe", b"again", 1]
        assert pub.cmd("PUBLISH", "again", "x") == 1
        assert sub.read_reply() == [b"message", b"again", b"x"]


# (limits, bound on RSS growth in KiB): the soft case may queue up to what ~300 ms of
# publishing brings (about 10 MiB here), under a hard limit it never reaches.
@pytest.mark.parametrize("limits,bound_kib", [
    ({"pubsub_hard_bytes": "1MiB"}, 16 * 1024),
    ({"pubsub_soft_bytes": "1MiB", "pubsub_soft_time": "300ms", "pubsub_hard_bytes": "64MiB"},
     48 * 1024),
], ids=["hard", "soft"])
def test_slow_subscriber_is_disconnected_and_memory_stays_bounded(redis_server, corral_factory,
                                                                  limits, bound_kib):
    c = _corral(redis_server, corral_factory, **limits)
    rss0 = c.rss_kib()
    slow = RespConn(c.port, timeout=5.0)
    slow.sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 4096)
    assert slow.cmd("SUBSCRIBE", "firehose") == [b"subscribe", b"firehose", 1]
    payload = "x" * 16384
    peak = rss0
    with RespConn(redis_server.port) as pub:  # publish straight to Redis
        for i in range(2000):  # 32 MiB offered at most, in bounded steps
            pub.send_cmd("PUBLISH", "firehose", payload)
            if i % 100 == 99:
                for _ in range(100):
                    pub.read_reply()
                peak = max(peak, c.rss_kib())
                if _metric(c, "corral_slow_consumers_disconnected_total") >= 1:
                    break
                if "pubsub_soft_time" in limits:
                    time.sleep(0.05)  # above the soft limit for a while, under the hard one
    wait_until(lambda: _metric(c, "corral_slow_consumers_disconnected_total") == 1, 5,
               what="the slow subscriber was cut off")
    assert peak - rss0 < bound_kib, f"RSS grew from {rss0} to {peak} KiB"
    # corral closed the slow client's connection and its upstream connection (reading it to
    # EOF is no proof here: with a 4 KiB receive window the kernel drains it very slowly)
    wait_until(lambda: _metric(c, "corral_clients") == 0, 5, what="the slow client closed")
    wait_until(lambda: _metric(c, "corral_dedicated_connections") == 0, 5,
               what="its dedicated connection closed")
    slow.close()
    with c.client() as ok:
        assert ok.cmd("PING") == "PONG"


@pytest.mark.cluster_xfail(TRACKING_ONE_NODE)
def test_client_tracking_invalidation_push_in_resp3(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    with c.client() as t, c.client() as w:
        assert t.cmd("HELLO", "3")[b"proto"] == 3
        assert t.cmd("CLIENT", "TRACKING", "on") == "OK"
        assert w.cmd("SET", "tracked:k", "1") == "OK"
        assert t.cmd("GET", "tracked:k") == b"1"
        assert w.cmd("SET", "tracked:k", "2") == "OK"
        push = t.read_reply()
        assert list(push) == [b"invalidate", [b"tracked:k"]], push
        assert t.cmd("GET", "tracked:k") == b"2"


def test_resp3_subscriber_gets_push_messages(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    with c.client() as s3, c.client() as pub:
        assert s3.cmd("HELLO", "3")[b"proto"] == 3
        assert list(s3.cmd("SUBSCRIBE", "r3ch")) == [b"subscribe", b"r3ch", 1]
        assert pub.cmd("PUBLISH", "r3ch", "hi") == 1
        assert list(s3.read_reply()) == [b"message", b"r3ch", b"hi"]
        # RESP3 allows normal commands while subscribed
        assert s3.cmd("GET", "nothing:here") is None


@pytest.mark.single_node(MONITOR_ONE_NODE)
def test_monitor_sees_other_clients(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    with c.client() as mon, c.client() as w:
        assert mon.cmd("MONITOR") == "OK"
        assert w.cmd("SET", "monitored", "v") == "OK"
        seen = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            line = mon.read_reply()
            seen.append(line)
            if isinstance(line, str) and '"monitored"' in line:
                break
        assert any(isinstance(x, str) and '"SET" "monitored" "v"' in x for x in seen), seen
        # QUIT goes to Redis, which answers and closes; corral closes the client after it
        assert mon.cmd("QUIT") == "OK"
        assert mon.expect_eof(3)


def test_unsubscribe_without_subscriptions_and_errors(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    with c.client() as cl:
        r = cl.cmd("UNSUBSCRIBE")
        assert r == [b"unsubscribe", None, 0], r
        # a command Redis refuses in RESP2 subscribed mode gets Redis's own error
        assert cl.cmd("SUBSCRIBE", "x") == [b"subscribe", b"x", 1]
        r = cl.cmd("GET", "k")
        assert isinstance(r, RespError) and "only (P|S)SUBSCRIBE" in str(r), r


@pytest.mark.single_node("CLIENT TRACKING REDIRECT: in a cluster the redirect target must be "
                          "connected to the node that holds the tracked key")
def test_client_tracking_redirect_to_a_subscriber(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    with c.client() as inv, c.client() as app, c.client() as w:
        inv_id = inv.cmd("CLIENT", "ID")
        assert isinstance(inv_id, int)
        assert inv.cmd("SUBSCRIBE", "__redis__:invalidate") == \
            [b"subscribe", b"__redis__:invalidate", 1]
        # the id corral gave the subscriber is translated to its upstream connection's id
        assert app.cmd("CLIENT", "TRACKING", "on", "REDIRECT", str(inv_id)) == "OK"
        assert w.cmd("SET", "redir:k", "1") == "OK"
        assert app.cmd("GET", "redir:k") == b"1"
        assert w.cmd("SET", "redir:k", "2") == "OK"
        assert inv.read_reply() == [b"message", b"__redis__:invalidate", [b"redir:k"]]
        # an id that names no such client gets Redis's own refusal
        with c.client() as other:
            r = other.cmd("CLIENT", "TRACKING", "on", "REDIRECT", "123456789")
            assert isinstance(r, RespError) and "does not exist" in str(r), r
