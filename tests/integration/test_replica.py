"""Test 4: read routing with a real replica. corral-only.

The replica gets a key written on it directly (replica-read-only no) so a reply tells us which
server answered: b"replica" from the replica, b"primary" from the primary.
"""

import time

import pytest

from harness import RedisServer, RespError, corral_config, wait_until


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
