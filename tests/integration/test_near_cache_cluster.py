"""The near cache (near_cache.h) in front of a Redis Cluster (3 primaries, a replica each): one
tracking connection per primary node, fills on the owner of the key's slot, the whole cache
emptied when the slot map changes. corral-only; the cluster is the module's (redis_cluster).

    hits on keys of every shard (commandstats: no GET reaches a node for repeats); a write
    straight to a key's owner invalidates it
    a slot moved by hand (CLUSTER SETSLOT + MIGRATE): the fill that meets MOVED is answered the
    router's way (never a MOVED to the client), nothing stale is read, the whole cache empties
    a primary killed: its tracking connection's loss empties the cache; after the failover the
    promoted replica's keys are cached and tracked there; the old node, back as a replica, gets
    no tracking connection
"""
import itertools
import time

from cluster import key_slot
from harness import RespConn, RespError, wait_until
from test_cluster import cluster_config, wait_routed

NEAR = [{"name": "hot", "match": "hot:<id:u64>", "near_cache": {"max_age": "30s"}}]
_ids = itertools.count(1000)


def _corral(cluster, corral_factory, refresh="60s"):
    """refresh 60s: corral learns a slot's move from the MOVED its own request meets."""
    cfg = cluster_config(cluster)
    cfg["upstream"]["cluster"]["refresh_interval"] = refresh
    cfg["policies"] = NEAR
    c = corral_factory(cfg)
    wait_routed(c)
    return c


def _keys(cluster, per_primary=2) -> dict:
    """{primary port: [fresh hot:<id> keys it owns]}, set to "v0" (keys of earlier tests are
    never reused)."""
    table = cluster.slot_owners()
    out = {p: [] for p in cluster.primaries()}
    while any(len(v) < per_primary for v in out.values()):
        k = f"hot:{next(_ids)}"
        owner = table[key_slot(k)]
        if len(out[owner]) < per_primary:
            out[owner].append(k)
    for ks in out.values():
        for k in ks:
            assert cluster.call("SET", k, "v0") == "OK"
    return out


def _gets(cluster, port) -> int:
    stat = cluster.node(port).info("commandstats").get("cmdstat_get")
    return int(stat.split("calls=")[1].split(",")[0]) if stat else 0


def _all_gets(cluster, ports) -> dict:
    return {p: _gets(cluster, p) for p in ports}


def _retry_get(conn, key, want, timeout=15.0):
    """GET until `want`; corral's errors in between (a node down) are fine, never another
    value, never a redirect."""
    def ok():
        r = conn.cmd("GET", key)
        assert r == want or (isinstance(r, RespError) and r.message.startswith("ERR corral")), \
            f"GET {key}: {r!r} (want {want!r})"
        return r == want
    wait_until(ok, timeout, interval=0.02, what=f"GET {key} == {want!r}")


def _wait_cached(conn, gets, key, want):
    """GET key until Redis runs no GET for it (gets(): the owner's count): the fill is stored
    once its PTTL is answered, which may come in a read after the GET's reply."""
    def hit():
        g = gets()
        assert conn.cmd("GET", key) == want
        return gets() == g
    wait_until(hit, 2, interval=0.005, what=f"{key} answered from memory")


def _tracking_clients(cluster, port) -> list:
    """CLIENT LIST lines of the node's clients with tracking on (flag t)."""
    lines = cluster.cmd(port, "CLIENT", "LIST").decode().splitlines()
    return [ln for ln in lines if "t" in ln.split(" flags=")[1].split(" ")[0]]


def test_hits_on_every_shard_and_writes_to_the_owner_invalidate(redis_cluster, corral_factory):
    c = _corral(redis_cluster, corral_factory)
    keys = _keys(redis_cluster)
    primaries = sorted(keys)
    assert len(primaries) == 3
    with RespConn(c.port) as conn:
        for p, ks in keys.items():
            for k in ks:
                # A fill on its owner's connection, then hits.
                _wait_cached(conn, lambda: _gets(redis_cluster, p), k, b"v0")
        before = _all_gets(redis_cluster, primaries)
        for _ in range(20):
            for ks in keys.values():
                for k in ks:
                    assert conn.cmd("GET", k) == b"v0"
        assert _all_gets(redis_cluster, primaries) == before, "repeats reached Redis"
        for p in primaries:
            assert len(_tracking_clients(redis_cluster, p)) == 1, p  # one per primary
        # A write straight to the owner (not through corral): its invalidation drops the copy.
        for p, ks in keys.items():
            assert redis_cluster.cmd(p, "SET", ks[0], f"new{p}") == "OK"
        for p, ks in keys.items():
            wait_until(lambda: conn.cmd("GET", ks[0]) == f"new{p}".encode(), 2, interval=0.005,
                       what=f"the invalidation from {p}")
        after = _all_gets(redis_cluster, primaries)
        for p in primaries:
            assert after[p] >= before[p] + 1, (p, before, after)  # read again, from the owner
        for ks in keys.values():
            assert conn.cmd("GET", ks[1]) == b"v0"
        assert _all_gets(redis_cluster, primaries) == after, "a neighbour was dropped too"
    wait_until(lambda: c.metrics()["corral_near_hits_total"] >= 120, 2, what="near hits counted")


def _setslot(cluster, port, *args):
    r = cluster.cmd(port, "CLUSTER", "SETSLOT", *args)
    assert r == "OK", (port, args, r)


def _move_slot(cluster, slot, src, dst, keys=()):
    """Moves a slot from src to dst as redis-cli does: importing, migrating, MIGRATE of each key
    (which deletes it on src), then NODE on every primary."""
    _setslot(cluster, dst, str(slot), "IMPORTING", cluster.node_id(src))
    _setslot(cluster, src, str(slot), "MIGRATING", cluster.node_id(dst))
    for k in keys:
        r = cluster.cmd(src, "MIGRATE", "127.0.0.1", str(dst), k, "0", "5000")
        assert r == "OK", (k, r)
    for p in [src, dst] + [p for p in cluster.primaries() if p not in (src, dst)]:
        _setslot(cluster, p, str(slot), "NODE", cluster.node_id(dst))


def test_a_slot_moved_by_hand_empties_the_cache_and_nothing_stale_is_read(redis_cluster,
                                                                          corral_factory):
    c = _corral(redis_cluster, corral_factory)
    keys = _keys(redis_cluster, per_primary=1)
    src, dst, other = sorted(keys)
    moved, kept = keys[src][0], keys[other][0]
    slot = key_slot(moved)
    with RespConn(c.port) as conn:
        for p, k in ((src, moved), (other, kept)):
            _wait_cached(conn, lambda: _gets(redis_cluster, p), k, b"v0")
        try:
            _move_slot(redis_cluster, slot, src, dst, keys=[moved])
            assert redis_cluster.cmd(dst, "SET", moved, "after-move") == "OK"
            g = _all_gets(redis_cluster, [src, dst, other])
            # corral still names src as the owner: its fill there meets MOVED, and the GET goes
            # the router's way to dst. Never the old value, never a redirect.
            assert conn.cmd("GET", moved) == b"after-move"
            # The map changed: the whole cache is gone, a key of an untouched shard included.
            assert conn.cmd("GET", kept) == b"v0"
            now = _all_gets(redis_cluster, [src, dst, other])
            assert now[other] == g[other] + 1, "a key of another shard was still served: " \
                                               "the cache was not emptied"
            assert now[dst] >= g[dst] + 1, (g, now)  # (src turned the fill away: MOVED)
            # From now on the key is filled and tracked on dst.
            _wait_cached(conn, lambda: _gets(redis_cluster, dst), moved, b"after-move")
            g = _gets(redis_cluster, dst)
            for _ in range(10):
                assert conn.cmd("GET", moved) == b"after-move"
            assert _gets(redis_cluster, dst) == g, "repeats reached the new owner"
            assert redis_cluster.cmd(dst, "SET", moved, "later") == "OK"
            wait_until(lambda: conn.cmd("GET", moved) == b"later", 2, interval=0.005,
                       what="the new owner's invalidation")
        finally:
            # Whole again: the key goes back with its slot.
            if redis_cluster.owner_of_slot(slot) == dst:
                _move_slot(redis_cluster, slot, dst, src, keys=[moved])
            redis_cluster.wait_ok()


def test_a_killed_primary_empties_the_cache_and_its_replica_takes_over(redis_cluster,
                                                                       corral_factory):
    c = _corral(redis_cluster, corral_factory, refresh="1s")
    keys = _keys(redis_cluster, per_primary=1)
    victim, alive = sorted(keys)[0], sorted(keys)[1]
    kv, ka = keys[victim][0], keys[alive][0]
    with RespConn(c.port) as conn:
        for p, k in ((victim, kv), (alive, ka)):
            _wait_cached(conn, lambda: _gets(redis_cluster, p), k, b"v0")
        with redis_cluster.killed(victim) as replica:
            # The tracking connection to the victim is lost: ka, on a live node, is read again.
            a0 = _gets(redis_cluster, alive)

            def reread():
                assert conn.cmd("GET", ka) == b"v0"
                return _gets(redis_cluster, alive) > a0
            wait_until(reread, 3, interval=0.02, what="the cache emptied by the lost connection")
            # Its reconnects fail while it is down; having read nothing since, they empty
            # nothing: ka stays cached (unless the map changed meanwhile, which empties it).
            changes = c.metrics()["corral_cluster_topology_changes_total"]
            _wait_cached(conn, lambda: _gets(redis_cluster, alive), ka, b"v0")
            a1 = _gets(redis_cluster, alive)
            time.sleep(0.4)  # reconnects every 200 ms at most
            assert conn.cmd("GET", ka) == b"v0"
            if c.metrics()["corral_cluster_topology_changes_total"] == changes:
                assert _gets(redis_cluster, alive) == a1, "a failed reconnect emptied the cache"
            redis_cluster.wait_primary(replica, 20)
            _retry_get(conn, kv, b"v0")
            _wait_cached(conn, lambda: _gets(redis_cluster, replica), kv, b"v0")
            r = _gets(redis_cluster, replica)
            for _ in range(10):
                assert conn.cmd("GET", kv) == b"v0"
            assert _gets(redis_cluster, replica) == r, "repeats reached the new primary"
            assert redis_cluster.cmd(replica, "SET", kv, "v1") == "OK"
            wait_until(lambda: conn.cmd("GET", kv) == b"v1", 2, interval=0.005,
                       what="the new primary's invalidation")
        # The old primary is back, as a replica: no tracking connection of corral's goes there
        # (its link was closed when the map stopped naming it a primary).
        assert victim in redis_cluster.replicas()
        assert conn.cmd("GET", kv) == b"v1"
        assert _tracking_clients(redis_cluster, victim) == []
        # ...and none comes later either (a link kept would reconnect within its backoff, at
        # most 200 ms).
        time.sleep(0.5)
        assert _tracking_clients(redis_cluster, victim) == []
