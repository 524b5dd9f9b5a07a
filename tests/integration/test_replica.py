"""Test 4: read routing with a real replica. corral-only.

The replica gets a key written on it directly (replica-read-only no) so a reply tells us which
server answered: b"replica" from the replica, b"primary" from the primary.
"""

import time

import pytest

from harness import RedisServer, RespError, corral_config, wait_until

pytestmark = pytest.mark.single_node("replicas of the one redis-server (replicaof its port)")


@pytest.fixture
def primary_and_replica(redis_server, corral_only):
    replica = RedisServer(replicaof=redis_server.port)
    try:
        replica.wait_link_up(timeout=10)
        assert redis_server.cmd("SET", "who", "primary") == "OK"
        wait_until(lambda: replica.cmd("GET", "who") == b"primary", 5,
                   what="'who' replicated to the replica")
        assert replica.cmd("CONFIG", "SET", "replica-read-only", "no") == "OK"
        assert replica.cmd("SET", "who", "replica") == "OK"
        assert redis_server.cmd("GET", "who") == b"primary"
        yield redis_server, replica
    finally:
        replica.close()


def _replica_config(primary, replica, read_from):
    return corral_config(primary.port, upstream={
        "replicas": [f"127.0.0.1:{replica.port}"], "read_from": read_from})


def test_read_from_replica_routes_reads_to_replica_and_writes_to_primary(
        primary_and_replica, corral_factory):
    primary, replica = primary_and_replica
    c = corral_factory(_replica_config(primary, replica, "replica"))
    with c.client() as cl:
        # allow corral a bounded moment to find the replica healthy, then it must stick
        wait_until(lambda: cl.cmd("GET", "who") == b"replica", 5,
                   what="GET who served by the replica")
        got = [cl.cmd("GET", "who") for _ in range(20)]
        assert got == [b"replica"] * 20, got
        # writes always go to the primary (the replica would accept them: read-only is off)
        assert cl.cmd("SET", "written", "via-corral") == "OK"
        assert primary.cmd("GET", "written") == b"via-corral"
        assert cl.cmd("INCR", "ctr") == 1
        assert primary.cmd("GET", "ctr") == b"1"
        assert cl.cmd("DEL", "who2") == 0
        assert primary.cmd("DBSIZE") >= 3

        # kill the replica: reads fall back to the primary within a bounded time
        replica.kill()
        t0 = time.monotonic()
        seen = []

        def served_by_primary():
            r = cl.cmd("GET", "who")
            seen.append(r)
            return r == b"primary"

        wait_until(served_by_primary, 10, interval=0.05, what="GET who served by the primary")
        bad = [r for r in seen if not (r in (b"primary", b"replica") or
                                       (isinstance(r, RespError) and r.startswith("ERR corral:")))]
        assert not bad, f"unexpected replies during fail-over: {bad}"
        after = [cl.cmd("GET", "who") for _ in range(20)]
        assert after == [b"primary"] * 20, (after, time.monotonic() - t0)
        assert cl.cmd("SET", "after", "1") == "OK"
        assert primary.cmd("GET", "after") == b"1"


def test_read_from_primary_ignores_replica(primary_and_replica, corral_factory):
    primary, replica = primary_and_replica
    c = corral_factory(_replica_config(primary, replica, "primary"))
    with c.client() as cl:
        got = [cl.cmd("GET", "who") for _ in range(20)]
        assert got == [b"primary"] * 20, got


def test_prefer_replica_uses_replica(primary_and_replica, corral_factory):
    primary, replica = primary_and_replica
    c = corral_factory(_replica_config(primary, replica, "prefer_replica"))
    with c.client() as cl:
        wait_until(lambda: cl.cmd("GET", "who") == b"replica", 5,
                   what="GET who served by the replica")
        assert cl.cmd("SET", "p", "1") == "OK"
        assert primary.cmd("GET", "p") == b"1"


def _marked_replica(primary, marker):
    """A replica of primary whose copy of 'who' is overwritten with marker (writable replica)."""
    r = RedisServer(replicaof=primary.port, extra_args=["--replica-read-only", "no"])
    try:
        r.wait_link_up(timeout=10)
        wait_until(lambda: r.cmd("GET", "who") == b"primary", 5, what="'who' replicated")
        assert r.cmd("SET", "who", marker) == "OK"
        return r
    except BaseException:
        r.close()
        raise


def test_round_robin_over_two_replicas_and_recovery(redis_server, corral_factory, corral_only):
    primary = redis_server
    assert primary.cmd("SET", "who", "primary") == "OK"
    r1 = _marked_replica(primary, "r1")
    r2 = _marked_replica(primary, "r2")
    try:
        c = corral_factory(corral_config(primary.port, upstream={
            "replicas": [f"127.0.0.1:{r1.port}", f"127.0.0.1:{r2.port}"],
            "read_from": "replica"}))
        with c.client() as cl:
            # both replicas serve reads (round robin); the primary serves none
            seen = set()

            def both_seen():
                seen.add(cl.cmd("GET", "who"))
                return {b"r1", b"r2"} <= seen

            wait_until(both_seen, 5, interval=0.01, what=f"reads from r1 and r2 (seen {seen})")
            got = [cl.cmd("GET", "who") for _ in range(40)]
            assert set(got) == {b"r1", b"r2"}, got
            assert abs(got.count(b"r1") - got.count(b"r2")) <= 4, got

            # r1 dies: reads go to r2 only
            r1.kill()
            wait_until(lambda: [cl.cmd("GET", "who") for _ in range(10)] == [b"r2"] * 10, 10,
                       interval=0.05, what="all reads from r2 after r1 died")
            # r1 comes back on the same port (resynced, re-marked): it serves reads again
            r1.start()
            r1.wait_link_up(timeout=10)
            wait_until(lambda: r1.cmd("GET", "who") == b"primary", 5, what="r1 resynced")
            assert r1.cmd("SET", "who", "r1") == "OK"
            seen.clear()
            wait_until(both_seen, 10, interval=0.05, what=f"r1 serving reads again ({seen})")
    finally:
        r1.close()
        r2.close()


def test_policy_routing_overrides_upstream_read_from(primary_and_replica, corral_factory):
    """routing.read_from of a policy beats upstream.read_from; read_your_writes sends a client's
    reads of a key it just wrote to the primary for the window."""
    primary, replica = primary_and_replica
    for k in ("who:1", "mine:1"):
        assert primary.cmd("SET", k, "primary") == "OK"
        wait_until(lambda k=k: replica.cmd("GET", k) == b"primary", 5, what=f"{k} replicated")
        assert replica.cmd("SET", k, "replica") == "OK"
    cfg = _replica_config(primary, replica, "primary")
    cfg["policies"] = [
        {"name": "who", "match": "who:<id:u64>", "routing": {"read_from": "replica"}},
        {"name": "mine", "match": "mine:<id:u64>",
         "routing": {"read_from": "replica", "read_your_writes": "1s"}},
    ]
    c = corral_factory(cfg)
    with c.client() as cl:
        wait_until(lambda: cl.cmd("GET", "who:1") == b"replica", 5,
                   what="GET who:1 served by the replica (policy read_from)")
        assert cl.cmd("GET", "who") == b"primary"  # no policy: upstream.read_from primary
        assert cl.cmd("GET", "mine:1") == b"replica"
        # Cut replication so each server keeps its own value and a reply says who answered.
        assert replica.cmd("REPLICAOF", "NO", "ONE") == "OK"
        # SET goes to the primary; for 1 s this client's reads of mine:1 follow it there
        assert cl.cmd("SET", "mine:1", "written", "KEEPTTL") == "OK"
        assert primary.cmd("GET", "mine:1") == b"written"
        assert replica.cmd("GET", "mine:1") == b"replica"
        assert [cl.cmd("GET", "mine:1") for _ in range(5)] == [b"written"] * 5
        assert cl.cmd("GET", "who:1") == b"replica"  # other keys: not affected
        with c.client() as other:  # another client wrote nothing: the replica answers
            assert other.cmd("GET", "mine:1") == b"replica"
        time.sleep(1.2)
        assert cl.cmd("GET", "mine:1") == b"replica"  # the window is over
