r"""The Redis Cluster harness (../support/cluster.py) checked against real redis-server 7.0
clusters, so that corral's cluster tests can trust it: slots and owners, a MOVED-following
writer, a manual failover, a killed primary replaced by its replica, resharding (in the
foreground and in the background) and a cluster on TLS. No corral here: both modes run it.

    test --RespConn / redis-cli--> 3 primaries + 3 replicas (redis_cluster, module scope)
    test --TLS--> 3 + 3 on TLS only (a cluster of its own)
"""

import os
import subprocess
import time

from cluster import RedisCluster, key_slot, parse_redirect
from harness import RespConn


def owners_by_key(cluster, keys):
    out = {}
    for k, port in cluster.owners(keys).items():
        out.setdefault(port, []).append(k)
    return out


def write_replicated(cluster, key, value):
    """SET on the key's primary, then WAIT on that connection until its replica has it."""
    with cluster.client(cluster.owner_of(key)) as c:
        assert c.cmd("SET", key, value) == "OK"
        assert c.cmd("WAIT", 1, 2000) == 1


def test_key_slot_matches_redis(redis_cluster):
    keys = ([f"k:{i}" for i in range(300)] +
            ["{user1000}.following", "{user1000}.followers", "foo{}{bar}", "foo{{bar}}zap",
             "foo{bar}{zap}", "{}", "{", "}", "", "\xe9t\xe9", "a{b"])
    port = redis_cluster.primaries()[0]
    with redis_cluster.client(port) as c:
        replies = c.pipeline([("CLUSTER", "KEYSLOT", k) for k in keys])
    assert [key_slot(k) for k in keys] == replies
    # A hash tag decides alone; an empty one does not count.
    assert key_slot("{user1000}.following") == key_slot("user1000")
    assert key_slot("foo{}{bar}") != key_slot("bar")


def test_keys_written_through_one_node_land_on_owner_of(redis_cluster):
    cluster = redis_cluster
    primaries = cluster.primaries()
    assert len(primaries) == 3 and len(cluster.replicas()) == 3
    assert sum(cluster.slots_of(p) for p in primaries) == 16384
    keys = [f"harness:{i}" for i in range(10000)]
    # Everything goes to one node first; what it does not own comes back -MOVED and is sent on.
    done = cluster.set_many(((k, f"v{i}") for i, k in enumerate(keys)), via_port=primaries[0])
    assert 0 < done["redirected"] < len(keys)
    # Redis's MOVED replies name the slot: our key_slot() agrees with every one.
    assert all(key_slot(k) == slot for k, slot in done["slots"].items())
    # Each key is on the node owner_of() names: a wrong owner would answer -MOVED, not 1.
    by_owner = owners_by_key(cluster, keys)
    assert sorted(by_owner) == primaries
    for port, ks in by_owner.items():
        assert 2500 < len(ks) < 4200, (port, len(ks))  # the slots are split about evenly
        with cluster.client(port) as c:
            replies = c.pipeline([("EXISTS", k) for k in ks])
        assert replies == [1] * len(ks), [r for r in replies if r != 1][:3]
    # The owners are the only holders: the primaries hold 10,000 keys between them.
    assert sum(cluster.cmd(p, "DBSIZE") for p in primaries) >= len(keys)
    # A key asked of a node that does not own it is redirected there, and redis-cli -c follows.
    key = keys[7]
    other = next(p for p in primaries if p != cluster.owner_of(key))
    assert parse_redirect(cluster.cmd(other, "GET", key)) == (
        "MOVED", key_slot(key), cluster.owner_of(key))
    out = subprocess.run(cluster.cli_args() + ["-c", "-p", str(other), "GET", key],
                         capture_output=True, timeout=10)
    assert out.stdout.strip() == b"v7", out
    assert cluster.call("GET", key, port=other) == b"v7"


def test_failover_swaps_roles(redis_cluster):
    cluster = redis_cluster
    cluster.wait_ok()
    old = cluster.primaries()[0]
    new = cluster.replicas_of(old)[0]
    slots = cluster.slots_of(old)
    key = next(k for k, p in cluster.owners(f"failover:{i}" for i in range(100)).items()
               if p == old)
    write_replicated(cluster, key, "before")

    cluster.failover(new)

    assert new in cluster.primaries() and old not in cluster.primaries()
    assert old in cluster.replicas() and new not in cluster.replicas()
    assert cluster.primary_of(old) == new
    assert cluster.slots_of(new) == slots and cluster.slots_of(old) == 0
    # Every running node agrees (wait_ok), and each says so of itself.
    assert cluster.node(new).info("replication")["role"] == "master"
    assert cluster.node(old).info("replication")["role"] == "slave"
    assert cluster.owner_of(key) == new
    assert cluster.call("GET", key) == b"before"


def test_killed_primary_is_replaced_by_its_replica_within_the_node_timeout(redis_cluster):
    cluster = redis_cluster
    cluster.wait_ok()
    victim = cluster.primaries()[1]
    heir = cluster.replicas_of(victim)[0]
    key = next(k for k, p in cluster.owners(f"kill:{i}" for i in range(100)).items()
               if p == victim)
    write_replicated(cluster, key, "kept")

    cluster.kill(victim)
    started = time.monotonic()
    assert not cluster.running(victim)
    # Detection takes the node timeout (2 s); the election a second or so more.
    cluster.wait_primary(heir, timeout=cluster.node_timeout_ms / 1000 + 6)
    took = time.monotonic() - started
    assert took >= cluster.node_timeout_ms / 1000 * 0.9, took  # not promoted before detection
    cluster.wait_ok(timeout=10)
    assert victim not in cluster.primaries() + cluster.replicas()  # marked failed
    assert cluster.call("GET", key) == b"kept"
    assert cluster.owner_of(key) == heir

    # Back again: it rejoins with its id, as a replica of the node that took its slots.
    cluster.restart(victim)
    assert cluster.primary_of(victim) == heir
    assert len(cluster.primaries()) == 3 and len(cluster.replicas()) == 3


def test_reshard_moves_slots_and_their_keys(redis_cluster):
    cluster = redis_cluster
    cluster.wait_ok()
    src, dst = cluster.primaries()[:2]
    before = {p: cluster.slots_of(p) for p in (src, dst)}
    owned_before = {r for r, p in cluster.slot_map().items() if p == src}
    keys = [k for k, p in cluster.owners(f"reshard:{i}" for i in range(16000)).items()
            if p == src]
    cluster.set_many((k, k) for k in keys)

    cluster.reshard(src, dst, 100)

    assert cluster.slots_of(src) == before[src] - 100
    assert cluster.slots_of(dst) == before[dst] + 100
    table = cluster.slot_owners()
    moved = [s for s in range(16384)
             if any(a <= s <= b for a, b in owned_before) and table[s] == dst]
    assert len(moved) == 100
    moved_keys = [k for k in keys if key_slot(k) in set(moved)]
    assert len(moved_keys) > 20, len(moved_keys)
    with cluster.client(dst) as c:  # the keys went with their slots
        assert c.pipeline([("GET", k) for k in moved_keys]) == [k.encode() for k in moved_keys]
    with cluster.client(src) as c:
        r = c.cmd("GET", moved_keys[0])
    assert parse_redirect(r) == ("MOVED", key_slot(moved_keys[0]), dst)

    # In the background, one key per MIGRATE: the Popen is handed back while it runs.
    proc = cluster.reshard(dst, src, 100, background=True, pipeline=1)
    try:
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    cluster.wait_ok()
    assert cluster.slots_of(src) == before[src] and cluster.slots_of(dst) == before[dst]
    assert cluster.call("GET", moved_keys[0]) == moved_keys[0].encode()


def test_tls_cluster_answers_over_tls_only():
    with RedisCluster(tls=True) as cluster:
        assert len(cluster.primaries()) == 3 and len(cluster.replicas()) == 3
        ctx = cluster.ssl_context()
        for port in cluster.ports:
            with RespConn(port, tls=ctx) as c:
                assert c.cmd("PING") == "PONG"
        # Plain RESP on a TLS port gets no PONG: the node speaks TLS only.
        with RespConn(cluster.ports[0], timeout=2.0) as plain:
            plain.send_cmd("PING")
            try:
                reply = plain.read_reply()
            except (AssertionError, OSError) as e:  # a timeout or a reset
                reply = e
        assert reply != "PONG", reply
        # The cluster's own traffic is on TLS too: keys move between nodes and replicas sync.
        done = cluster.set_many((f"tls:{i}", str(i)) for i in range(300))
        assert done["redirected"] > 0
        assert cluster.call("GET", "tls:42") == b"42"
        out = subprocess.run(cluster.cli_args() + ["-c", "-p", str(cluster.ports[0]), "GET",
                                                   "tls:7"], capture_output=True, timeout=10)
        assert out.stdout.strip() == b"7", out
        assert all(s["nodes"][0].get("tls-port") for s in cluster.shards())
    assert not any(cluster.running(p) for p in cluster.ports)
    assert not os.path.exists(cluster.dir)
