"""The near cache (near_cache.h) in front of a primary with a replica and in front of a Sentinel
set: fills and tracking stay on the primary, and a failover empties the cache and moves its
tracking connection to the new primary. corral-only; every server is started here.

    replicas: read_from replica sends plain GETs to the replica, a near key's fill to the primary
    Sentinel: hits -> SENTINEL FAILOVER -> the cache is empty (the new primary is asked once),
              a write on the new primary is seen at once, repeats are hits again there
    ROLE:     a sentinel naming the replica: the tracking connection never reads it
"""
import pytest

from harness import RespConn, RespError, corral_config, wait_until
from sentinels import MASTER, FakeSentinel, SentinelSet
from test_sentinel import primary_and_replica, sentinel_config  # noqa: F401 (a fixture)

NEAR = [{"name": "hot", "match": "hot:<id:u64>", "near_cache": {"max_age": "30s"}},
        {"name": "cold", "match": "cold:<id:u64>"}]


def _gets(server) -> int:
    """GETs the server has run (INFO commandstats), whoever sent them."""
    stat = server.info("commandstats").get("cmdstat_get")
    return int(stat.split("calls=")[1].split(",")[0]) if stat else 0


def _wait_cached(conn, server, key, want):
    """GET key until `server` runs no GET for it: the fill is stored once its PTTL is answered,
    which may come in a read after the GET's reply."""
    def hit():
        g = _gets(server)
        assert conn.cmd("GET", key) == want
        return _gets(server) == g
    wait_until(hit, 2, interval=0.005, what=f"{key} answered from memory")


def test_replicas_fills_and_tracking_stay_on_the_primary(primary_and_replica, corral_factory):
    primary, replica = primary_and_replica
    assert primary.cmd("SET", "hot:1", "primary") == "OK"
    assert primary.cmd("SET", "cold:1", "primary") == "OK"
    wait_until(lambda: replica.cmd("GET", "cold:1") == b"primary", 5, what="replicated")
    # The replica answers with a value of its own, so a reply says which server gave it.
    assert replica.cmd("CONFIG", "SET", "replica-read-only", "no") == "OK"
    assert replica.cmd("SET", "hot:1", "replica") == "OK"
    assert replica.cmd("SET", "cold:1", "replica") == "OK"
    cfg = corral_config(primary.port, upstream={"replicas": [f"127.0.0.1:{replica.port}"],
                                                "read_from": "replica"})
    cfg["policies"] = NEAR
    c = corral_factory(cfg)
    with c.client() as conn:
        wait_until(lambda: conn.cmd("GET", "cold:1") == b"replica", 5,
                   what="plain reads served by the replica")
        p0, r0 = _gets(primary), _gets(replica)
        assert conn.cmd("GET", "hot:1") == b"primary"  # the fill: on the primary
        assert (_gets(primary), _gets(replica)) == (p0 + 1, r0)
        _wait_cached(conn, primary, "hot:1", b"primary")
        p0 = _gets(primary)
        for _ in range(30):
            assert conn.cmd("GET", "hot:1") == b"primary"
        assert (_gets(primary), _gets(replica)) == (p0, r0), "repeats reached Redis"
        # The invalidation comes from the primary (its tracking table holds the key).
        assert primary.cmd("SET", "hot:1", "primary2") == "OK"
        wait_until(lambda: conn.cmd("GET", "hot:1") == b"primary2", 2, interval=0.005,
                   what="the primary's invalidation")
        assert conn.cmd("GET", "cold:1") == b"replica"  # plain reads still go to the replica
    # (The worker publishes its near counters on its tick.)
    wait_until(lambda: c.metrics()["corral_near_hits_total"] >= 30 and
               c.metrics()["corral_near_invalidations_total"] >= 1, 2, what="near metrics")


def _near_sentinel_corral(addresses, corral_factory):
    cfg = sentinel_config(addresses)
    cfg["workers"] = 1  # one near cache: commandstats count its fills exactly
    cfg["policies"] = NEAR
    return corral_factory(cfg)


def _switched_to(c, port) -> bool:
    return any("upstream primary switched" in ln and ln.rstrip().endswith(f"to=127.0.0.1:{port}")
               for ln in c.stderr_text().splitlines())


def _retry_get(conn, key, want, timeout=10.0):
    """GET key through corral until it is `want` (corral's unavailable errors in between, while
    the primary switches, are fine: never another value)."""
    def ok():
        r = conn.cmd("GET", key)
        assert r == want or isinstance(r, RespError), f"GET {key}: {r!r} (want {want!r})"
        return r == want
    wait_until(ok, timeout, interval=0.02, what=f"GET {key} == {want!r}")


def test_sentinel_failover_empties_the_cache_and_tracks_the_new_primary(
        primary_and_replica, corral_factory):
    primary, replica = primary_and_replica
    for k, v in (("hot:1", "a"), ("hot:2", "b")):
        assert primary.cmd("SET", k, v) == "OK"
    wait_until(lambda: replica.cmd("GET", "hot:2") == b"b", 5, what="replicated")
    with SentinelSet(primary.port) as sentinels:
        sentinels.wait_settled(replicas=1)
        c = _near_sentinel_corral(sentinels.addresses(), corral_factory)
        with c.client() as conn:
            _retry_get(conn, "hot:1", b"a")
            _retry_get(conn, "hot:2", b"b")
            _wait_cached(conn, primary, "hot:1", b"a")
            _wait_cached(conn, primary, "hot:2", b"b")
            before = _gets(primary)
            for _ in range(20):
                assert conn.cmd("GET", "hot:1") == b"a"
                assert conn.cmd("GET", "hot:2") == b"b"
            assert _gets(primary) == before, "repeats reached the primary"
            flushes = c.metrics()["corral_near_invalidations_total"]

            assert sentinels.cmd(0, "SENTINEL", "FAILOVER", MASTER) == "OK"
            wait_until(lambda: replica.info("replication").get("role") == "master", 15,
                       what="the replica promoted")
            wait_until(lambda: _switched_to(c, replica.port), 15,
                       what="corral switched primaries")
            # Written on the new primary before corral reads it there: the old value must not
            # come back from memory.
            assert replica.cmd("SET", "hot:1", "a2") == "OK"
            r0 = _gets(replica)
            _retry_get(conn, "hot:1", b"a2")
            # hot:2 did not change, yet the cache was emptied: the new primary is asked once.
            _retry_get(conn, "hot:2", b"b")
            r1 = _gets(replica)
            assert r1 >= r0 + 2, (r0, r1)
            # (Those reads may have gone the plain way while the tracking connection connected.)
            _wait_cached(conn, replica, "hot:1", b"a2")
            _wait_cached(conn, replica, "hot:2", b"b")
            r1 = _gets(replica)
            for _ in range(20):
                assert conn.cmd("GET", "hot:1") == b"a2"
                assert conn.cmd("GET", "hot:2") == b"b"
            assert _gets(replica) == r1, "repeats reached the new primary: its tracking failed"
            # The tracking connection is the new primary's: its invalidations arrive.
            assert replica.cmd("SET", "hot:2", "b2") == "OK"
            wait_until(lambda: conn.cmd("GET", "hot:2") == b"b2", 2, interval=0.005,
                       what="the new primary's invalidation")
        wait_until(lambda: c.metrics()["corral_near_invalidations_total"] >= flushes + 2, 2,
                   what="the switch's invalidations counted")


def test_a_tracking_connection_to_a_node_that_is_not_the_primary_never_fills(
        primary_and_replica, corral_factory):
    """A sentinel names the replica as the primary: the tracking connection checks ROLE like the
    primary's pool, so the replica never runs a GET of corral's, and nothing is answered from
    memory in the meantime (the switch emptied it)."""
    primary, replica = primary_and_replica
    assert primary.cmd("SET", "hot:7", "p") == "OK"
    wait_until(lambda: replica.cmd("GET", "hot:7") == b"p", 5, what="replicated")
    r0 = _gets(replica)  # that GET of ours
    with FakeSentinel(primary.port) as fake:
        c = _near_sentinel_corral([f"127.0.0.1:{fake.port}"], corral_factory)
        with c.client() as conn:
            _retry_get(conn, "hot:7", b"p")
            _wait_cached(conn, primary, "hot:7", b"p")
            assert _gets(replica) == r0
            fake.name(replica.port, announce=True)  # wrong on purpose
            wait_until(lambda: _switched_to(c, replica.port), 5,
                       what="corral followed the (wrong) sentinel")
            replies = [conn.cmd("GET", "hot:7") for _ in range(50)]
            assert all(isinstance(r, RespError) for r in replies), replies[:5]
            assert _gets(replica) == r0, "the replica ran corral's GETs"
            fake.name(primary.port, announce=True)
            _retry_get(conn, "hot:7", b"p")
            _wait_cached(conn, primary, "hot:7", b"p")
            p1 = _gets(primary)
            for _ in range(10):
                assert conn.cmd("GET", "hot:7") == b"p"
            assert _gets(primary) == p1, "cached again on the primary"
        assert _gets(replica) == r0
        assert c.metrics()["corral_upstream_not_primary_total"] >= 1
