"""Policies in front of a Redis Cluster while a slot moves: a TTL rule's follow-up (the EXPIRE
corral sends behind an HSET) is turned away by MOVED or ASK with its request and must follow it to
the new owner, in order, or the key would be left without its TTL. The slot is moved by hand
(CLUSTER SETSLOT) so that corral's map is stale for certain; it is moved back after."""
import pytest

from cluster import key_slot
from harness import RespConn
from test_cluster import cluster_config, wait_routed


def _setslot(cluster, port, *args):
    with cluster.client(port) as c:
        r = c.cmd("CLUSTER", "SETSLOT", *args)
    assert r == "OK", (port, args, r)


def _move_slot(cluster, slot, src, dst):
    """Moves an empty slot from src to dst the way redis-cli does (importing, migrating, then
    NODE on every primary)."""
    _setslot(cluster, dst, str(slot), "IMPORTING", cluster.node_id(src))
    _setslot(cluster, src, str(slot), "MIGRATING", cluster.node_id(dst))
    for p in (src, dst):
        _setslot(cluster, p, str(slot), "NODE", cluster.node_id(dst))
    for p in cluster.primaries():
        if p not in (src, dst):
            _setslot(cluster, p, str(slot), "NODE", cluster.node_id(dst))


def _ttl_corral(cluster, corral_factory):
    cfg = cluster_config(cluster)
    cfg["upstream"]["cluster"]["refresh_interval"] = "60s"  # the map stays stale until MOVED
    # ttl.require: a write that can create a key without one (HSET) gets PEXPIRE ... NX behind it.
    cfg["policies"] = [{"name": "tt", "match": "tt:<id:u64>",
                        "ttl": {"default": "60s", "require": True}}]
    c = corral_factory(cfg)
    wait_routed(c)
    return c


@pytest.mark.parametrize("redirect", ["MOVED", "ASK"])
def test_ttl_follow_up_follows_its_request_to_the_new_owner(redis_cluster, corral_factory,
                                                            redirect):
    c = _ttl_corral(redis_cluster, corral_factory)
    key = "tt:4242" if redirect == "MOVED" else "tt:4243"
    slot = key_slot(key)
    src = redis_cluster.owner_of(key)
    dst = next(p for p in redis_cluster.primaries() if p != src)
    redis_cluster.call("DEL", key)
    with RespConn(c.port) as conn:
        assert conn.cmd("HSET", key, "f", "warm") == 1  # corral knows src as the owner
        redis_cluster.call("DEL", key)
        try:
            if redirect == "MOVED":
                _move_slot(redis_cluster, slot, src, dst)
            else:
                # Half way: src still owns the slot but migrates it and has not the key: ASK.
                _setslot(redis_cluster, dst, str(slot), "IMPORTING", redis_cluster.node_id(src))
                _setslot(redis_cluster, src, str(slot), "MIGRATING", redis_cluster.node_id(dst))
            # HSET has no TTL option: the rule's EXPIRE follows it (SET would carry PX itself).
            assert conn.cmd("HSET", key, "f", "v") == 1
            assert conn.cmd("HGET", key, "f") == b"v"
            with redis_cluster.client(dst) as direct:
                if redirect == "ASK":
                    assert direct.pipeline([("ASKING",), ("HGET", key, "f")])[1] == b"v"
                    pttl = direct.pipeline([("ASKING",), ("PTTL", key)])[1]
                else:
                    assert direct.cmd("HGET", key, "f") == b"v"
                    pttl = direct.cmd("PTTL", key)
            assert 50000 <= pttl <= 60000, f"the key lost its TTL on the new owner: {pttl}"
        finally:
            # Whole again: the key goes, the slot goes back to src.
            with redis_cluster.client(dst) as direct:
                direct.pipeline([("ASKING",), ("DEL", key)])
            if redirect == "MOVED":
                _move_slot(redis_cluster, slot, dst, src)
            else:
                for p in (src, dst):
                    _setslot(redis_cluster, p, str(slot), "STABLE")
            redis_cluster.wait_ok()
