"""corral in front of a Redis Cluster (upstream.cluster): the app keeps one plain connection and
corral routes each command by slot, splits multi-key commands across slots, and follows MOVED,
ASK and TRYAGAIN without the app ever seeing one. The cluster (3 primaries + 3 replicas) comes
from tests/support/cluster.py and is shared by the tests of this module; a test that kills,
fails over or reshards leaves it whole again."""
import threading
import time

import pytest

from cluster import key_slot
from harness import RespConn, RespError, corral_config, wait_until


def cluster_config(cluster, **upstream):
    cfg = corral_config(0)
    up = dict(cfg["upstream"])
    del up["primary"]
    up["cluster"] = {"seeds": cluster.seeds()[:2], "refresh_interval": "1s"}
    up.update(upstream)
    cfg["upstream"] = up
    return cfg


@pytest.fixture
def corral_cluster(redis_cluster, corral_factory):
    c = corral_factory(cluster_config(redis_cluster))
    wait_routed(c)
    return c


def wait_routed(c, timeout=10.0):
    """Until a write through corral works (the first map is in)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        with RespConn(c.port) as conn:
            last = conn.cmd("SET", "corral:probe", "1")
            if last == "OK":
                return
        time.sleep(0.05)
    raise AssertionError(f"corral never routed a write: {last!r}")


def keys_across_slots(n, prefix="k"):
    return [f"{prefix}:{i}" for i in range(n)]


def test_keys_land_on_their_owners(redis_cluster, corral_cluster):
    keys = keys_across_slots(10000, "land")
    with RespConn(corral_cluster.port, timeout=30) as c:
        replies = c.pipeline([("SET", k, k.upper()) for k in keys])
    assert replies == ["OK"] * len(keys)
    owners = redis_cluster.owners(keys)
    assert len(set(owners.values())) == 3, "the keys must span every shard"
    # Each key is on the node that owns its slot (asked directly, not through corral).
    by_owner = {}
    for k, port in owners.items():
        by_owner.setdefault(port, []).append(k)
    for port, ks in by_owner.items():
        with redis_cluster.client(port) as direct:
            got = direct.pipeline([("GET", k) for k in ks])
        assert got == [k.upper().encode() for k in ks]


def test_mget_across_shards_keeps_key_order(redis_cluster, corral_cluster):
    keys = keys_across_slots(30, "mget")
    with RespConn(corral_cluster.port) as c:
        assert c.cmd("MSET", *[x for k in keys[::2] for x in (k, "v-" + k)]) == "OK"
        asked = keys + ["mget:missing", keys[3], keys[0]]
        got = c.cmd("MGET", *asked)
    want = [("v-" + k).encode() if k in keys[::2] else None for k in asked]
    assert got == want
    assert len({key_slot(k) for k in asked}) > 3


def test_del_exists_touch_sum_across_shards(redis_cluster, corral_cluster):
    keys = keys_across_slots(12, "sum")
    with RespConn(corral_cluster.port) as c:
        assert c.cmd("MSET", *[x for k in keys for x in (k, "1")]) == "OK"
        assert c.cmd("EXISTS", *keys, keys[0], "sum:none") == 13  # a repeated key counts twice
        assert c.cmd("TOUCH", *keys[:5]) == 5
        assert c.cmd("DEL", *keys[:7], "sum:none") == 7
        assert c.cmd("UNLINK", *keys) == 5
        assert c.cmd("EXISTS", *keys) == 0


def test_hash_tags_keep_keys_together(redis_cluster, corral_cluster):
    with RespConn(corral_cluster.port) as c:
        assert c.cmd("MSET", "{user:7}:a", "1", "{user:7}:b", "2") == "OK"
        # RENAME cannot be split: with one tag it runs, as Redis would.
        assert c.cmd("RENAME", "{user:7}:a", "{user:7}:c") == "OK"
        assert c.cmd("MGET", "{user:7}:b", "{user:7}:c") == [b"2", b"1"]
    owner = redis_cluster.owner_of("{user:7}:b")
    with redis_cluster.client(owner) as direct:
        assert direct.cmd("MGET", "{user:7}:b", "{user:7}:c") == [b"2", b"1"]


@pytest.mark.parametrize("cmd", [
    ("RENAME", "cross:a", "cross:b"),
    ("MSETNX", "cross:a", "1", "cross:b", "2"),
    ("SMOVE", "cross:a", "cross:b", "m"),
    ("LMOVE", "cross:a", "cross:b", "LEFT", "RIGHT"),
    ("SUNIONSTORE", "cross:a", "cross:b"),
])
def test_commands_that_cannot_be_split_get_crossslot(redis_cluster, corral_cluster, cmd):
    assert key_slot("cross:a") != key_slot("cross:b")
    owner = redis_cluster.owner_of("cross:a")
    with redis_cluster.client(owner) as direct:
        want = direct.cmd(*cmd)  # what a cluster node says
    assert isinstance(want, RespError) and want.message.startswith("CROSSSLOT")
    with RespConn(corral_cluster.port) as c:
        got = c.cmd(*cmd)
        assert got == want
        assert c.cmd("PING") == "PONG"  # the connection goes on


def test_pipeline_mixing_split_and_single_commands_keeps_order(redis_cluster, corral_cluster):
    keys = keys_across_slots(20, "pipe")
    cmds = []
    for i, k in enumerate(keys):
        cmds.append(("SET", k, str(i)))
        cmds.append(("MGET", k, keys[(i + 7) % len(keys)]))
        cmds.append(("INCR", "pipe:counter"))
    with RespConn(corral_cluster.port) as c:
        c.cmd("DEL", "pipe:counter")
        got = c.pipeline(cmds)
    expected_counter = 0
    for i, k in enumerate(keys):
        assert got[3 * i] == "OK"
        other = (i + 7) % len(keys)
        assert got[3 * i + 1] == [str(i).encode(), str(other).encode() if other < i else None]
        expected_counter += 1
        assert got[3 * i + 2] == expected_counter


def test_redirects_never_reach_the_app_while_slots_move(redis_cluster, corral_cluster):
    """A reshard of 1,000 slots under pipelined INCRs from 4 clients: no MOVED/ASK/TRYAGAIN
    reaches a client, each counter equals the INCRs acknowledged, and corral asks the cluster
    for its map fewer than 10 times a second."""
    primaries = redis_cluster.primaries()
    src, dst = primaries[0], primaries[1]
    counters = [f"move:{i}" for i in range(400)]
    with RespConn(corral_cluster.port) as c:
        c.cmd("DEL", *counters)
    acked = {k: 0 for k in counters}
    errors = []
    stop = threading.Event()

    def load(part):
        with RespConn(corral_cluster.port, timeout=10) as conn:
            while not stop.is_set():
                replies = conn.pipeline([("INCR", k) for k in part])
                for k, r in zip(part, replies):
                    if isinstance(r, int):
                        acked[k] += 1
                    else:
                        errors.append(r)

    before = corral_cluster.metrics()
    started = time.monotonic()
    threads = [threading.Thread(target=load, args=(counters[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    try:
        redis_cluster.reshard(src, dst, 1000)
    finally:
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join(30)
    elapsed = time.monotonic() - started
    after = corral_cluster.metrics()
    assert not [e for e in errors if e.message.split(" ")[0] in ("MOVED", "ASK", "TRYAGAIN")], \
        errors[:5]
    assert errors == [], errors[:5]
    with RespConn(corral_cluster.port) as c:
        values = c.cmd("MGET", *counters)
    assert [int(v) for v in values] == [acked[k] for k in counters]

    def delta(name):
        return after.get(name, 0) - before.get(name, 0)

    refreshes = delta("corral_cluster_refreshes_total")
    print(f"reshard of 1000 slots: {elapsed:.1f} s, {sum(acked.values())} INCRs acknowledged, "
          f"MOVED followed {delta('corral_cluster_moved_total'):.0f}, ASK "
          f"{delta('corral_cluster_ask_total'):.0f}, TRYAGAIN/CLUSTERDOWN resent "
          f"{delta('corral_cluster_retries_total'):.0f}, refreshes {refreshes:.0f} "
          f"({refreshes / elapsed:.1f}/s)")
    assert delta("corral_cluster_moved_total") + delta("corral_cluster_ask_total") > 0
    assert refreshes / elapsed < 10
    redis_cluster.reshard(dst, src, 1000)  # as it was


def test_failover_under_load_loses_nothing(redis_cluster, corral_cluster):
    """CLUSTER FAILOVER (coordinated) while INCRs run: no error, counters exact."""
    primary = redis_cluster.primaries()[2]
    replica = redis_cluster.replicas_of(primary)[0]
    counters = [f"fo:{i}" for i in range(60)]
    with RespConn(corral_cluster.port) as c:
        c.cmd("DEL", *counters)
    acked = {k: 0 for k in counters}
    errors = []
    stop = threading.Event()

    def load():
        with RespConn(corral_cluster.port, timeout=10) as conn:
            while not stop.is_set():
                for k, r in zip(counters, conn.pipeline([("INCR", k) for k in counters])):
                    if isinstance(r, int):
                        acked[k] += 1
                    else:
                        errors.append(r)

    t = threading.Thread(target=load)
    t.start()
    try:
        time.sleep(0.3)
        redis_cluster.failover(replica)
        time.sleep(0.5)
    finally:
        stop.set()
        t.join(30)
    assert errors == [], errors[:5]
    with RespConn(corral_cluster.port) as c:
        assert [int(v) for v in c.cmd("MGET", *counters)] == [acked[k] for k in counters]
    redis_cluster.failover(primary)  # back as it was


def test_primary_killed_answers_in_order_and_recovers(redis_cluster, corral_cluster):
    """SIGKILL of a primary under load: every request gets its reply or an error, in order and
    within command_timeout + 100 ms; writes to its slots work again within 5 s of the cluster's
    failover, without any MOVED reaching the client."""
    victim = redis_cluster.primaries()[1]
    replica = redis_cluster.replicas_of(victim)[0]
    key = next(f"kill:{i}" for i in range(10000) if redis_cluster.owner_of(f"kill:{i}") == victim)
    slowest = [0.0]
    bad = []
    promoted = []  # when the replica itself says it is a primary
    stop = threading.Event()

    def watch_role():
        # ends on the promotion, not when writes resume: corral may see the new primary before
        # this poll does (a slow machine), and that is no reason to miss it
        with redis_cluster.client(replica) as r:
            while not stop.is_set() and not promoted and time.monotonic() - killed_at < 25:
                if r.cmd("ROLE")[0] == b"master":
                    promoted.append(time.monotonic())
                time.sleep(0.01)

    watcher = threading.Thread(target=watch_role)
    with RespConn(corral_cluster.port, timeout=10) as c:
        redis_cluster.kill(victim)
        killed_at = time.monotonic()
        watcher.start()
        recovered_at = None
        n = 0
        while time.monotonic() - killed_at < 20:
            t0 = time.monotonic()
            got = c.pipeline([("INCR", key), ("PING",)])
            slowest[0] = max(slowest[0], time.monotonic() - t0)
            n += 1
            if got[1] != "PONG":
                bad.append(got)
            if isinstance(got[0], RespError) and got[0].message.split(" ")[0] in ("MOVED", "ASK"):
                bad.append(got)
            if isinstance(got[0], int):
                recovered_at = time.monotonic()
                break
            time.sleep(0.02)
    if recovered_at is None:
        stop.set()
    watcher.join(10)
    try:
        assert bad == []
        assert recovered_at is not None, "writes never resumed"
        assert promoted, "the replica never said it was the primary"
        print(f"replica promoted {promoted[0] - killed_at:.2f} s after the kill; writes through "
              f"corral resumed {recovered_at - killed_at:.2f} s after it "
              f"({recovered_at - promoted[0]:.2f} s after the promotion)")
        # The cluster's own failover takes node-timeout (2 s) plus its election; corral adds the
        # time to see the new map (refreshes while the owner is down: at most 5 per second).
        assert recovered_at - promoted[0] <= 0.5
        if promoted[0] - killed_at <= 4.5:  # the cluster's own part varies (3.7-4.6 s seen)
            assert recovered_at - killed_at <= 5.0
        assert slowest[0] < 2.0 + 0.1 + 0.05  # command_timeout 2s + 100 ms (+ the client's own)
        redis_cluster.wait_primary(replica, 20)
    finally:
        redis_cluster.restart(victim)


def test_keyless_commands_and_info_still_work(corral_cluster):
    with RespConn(corral_cluster.port) as c:
        assert c.cmd("PING") == "PONG"
        assert c.cmd("ECHO", "hi") == b"hi"
        info = c.cmd("INFO", "server")
        assert b"redis_version" in info


def keys_on_each_shard(redis_cluster, prefix):
    """One key per primary: {port: key}."""
    found = {}
    for i in range(10000):
        k = f"{prefix}:{i}"
        found.setdefault(redis_cluster.owner_of(k), k)
        if len(found) == len(redis_cluster.primaries()):
            return found
    raise AssertionError("no key found for some shard")


@pytest.mark.parametrize("pipelined", [True, False])
def test_transactions_run_on_the_owner_of_their_first_key(redis_cluster, corral_cluster, pipelined):
    for port, k in keys_on_each_shard(redis_cluster, "tx").items():
        cmds = [("MULTI",), ("SET", k, "1"), ("INCR", k), ("EXEC",)]
        with RespConn(corral_cluster.port) as c:
            got = c.pipeline(cmds) if pipelined else [c.cmd(*x) for x in cmds]
        assert got == ["OK", "QUEUED", "QUEUED", ["OK", 2]], (port, got)
        with redis_cluster.client(port) as direct:
            assert direct.cmd("GET", k) == b"2"


def test_a_key_of_another_slot_in_a_transaction_aborts_it(redis_cluster, corral_cluster):
    keys = keys_on_each_shard(redis_cluster, "txx")
    ports = sorted(keys)
    a = keys[ports[0]]
    # A key of another slot on the same node: what the node itself answers.
    same_node = next(f"txs:{i}" for i in range(10000)
                     if redis_cluster.owner_of(f"txs:{i}") == ports[0]
                     and key_slot(f"txs:{i}") != key_slot(a))
    tx = [("MULTI",), ("SET", a, "1"), ("SET", same_node, "2"), ("EXEC",)]
    with redis_cluster.client(ports[0]) as direct:
        want = direct.pipeline(tx)
    # Redis 7.0 queues both and refuses the EXEC.
    assert want[:3] == ["OK", "QUEUED", "QUEUED"] and want[3].message.startswith("CROSSSLOT")
    with RespConn(corral_cluster.port) as c:
        assert c.pipeline(tx) == want
        # Another node's key: the node would answer MOVED; corral answers CROSSSLOT and the
        # transaction aborts.
        other = keys[ports[1]]
        got = c.pipeline([("MULTI",), ("SET", a, "1"), ("SET", other, "2"), ("EXEC",)])
        assert got[:2] == ["OK", "QUEUED"]
        assert got[2].message.startswith("CROSSSLOT") and got[3].message.startswith("EXECABORT")
        assert c.cmd("MGET", a, same_node, other) == [None, None, None]
        assert c.cmd("PING") == "PONG"


def test_watch_binds_to_the_watched_keys_owner(redis_cluster, corral_cluster):
    for port, k in keys_on_each_shard(redis_cluster, "watch").items():
        with RespConn(corral_cluster.port) as c, RespConn(corral_cluster.port) as other:
            c.cmd("SET", k, "1")
            assert c.cmd("WATCH", k) == "OK"
            assert c.cmd("GET", k) == b"1"
            assert other.cmd("SET", k, "changed") == "OK"
            assert c.pipeline([("MULTI",), ("SET", k, "mine"), ("EXEC",)]) == ["OK", "QUEUED", None]
            assert c.cmd("GET", k) == b"changed"
            # Unchanged: EXEC runs.
            assert c.cmd("WATCH", k) == "OK"
            assert c.pipeline([("MULTI",), ("SET", k, "mine"), ("EXEC",)]) == \
                ["OK", "QUEUED", ["OK"]]


def test_blocking_pop_waits_on_the_keys_owner(redis_cluster, corral_cluster):
    for port, k in keys_on_each_shard(redis_cluster, "blk").items():
        with RespConn(corral_cluster.port, timeout=10) as waiter, \
                RespConn(corral_cluster.port) as pusher:
            waiter.send_cmd("BLPOP", k, "5")
            time.sleep(0.2)
            assert pusher.cmd("RPUSH", k, "v") == 1
            assert waiter.read_reply() == [k.encode(), b"v"]


def test_publish_reaches_subscribers_across_the_cluster(redis_cluster, corral_cluster):
    with RespConn(corral_cluster.port, timeout=5) as sub, RespConn(corral_cluster.port) as pub:
        assert sub.cmd("SUBSCRIBE", "news") == [b"subscribe", b"news", 1]
        # Published on another node than the subscriber's: the cluster bus carries it.
        for port in redis_cluster.primaries():
            with redis_cluster.client(port) as direct:
                direct.cmd("PUBLISH", "news", f"from {port}")
        assert pub.cmd("PUBLISH", "news", "via corral") >= 0
        got = [sub.read_reply() for _ in range(len(redis_cluster.primaries()) + 1)]
    assert sorted(m[2] for m in got) == sorted(
        [f"from {p}".encode() for p in redis_cluster.primaries()] + [b"via corral"])


def test_keyspace_commands_cover_every_shard(redis_cluster, corral_cluster):
    keys = keys_across_slots(300, "ks")
    with RespConn(corral_cluster.port, timeout=10) as c:
        assert c.cmd("FLUSHALL") == "OK"
        assert c.cmd("MSET", *[x for k in keys for x in (k, "1")]) == "OK"
        assert c.cmd("DBSIZE") == len(keys)
        assert sorted(c.cmd("KEYS", "ks:*")) == sorted(k.encode() for k in keys)
        seen = []
        cursor = b"0"
        for _ in range(1000):
            cursor, batch = c.cmd("SCAN", cursor, "MATCH", "ks:*", "COUNT", "50")
            seen += batch
            if cursor == b"0":
                break
        assert sorted(seen) == sorted(k.encode() for k in keys), "every key exactly once"
        sha = c.cmd("SCRIPT", "LOAD", "return redis.call('GET', KEYS[1])")
        assert c.cmd("EVALSHA", sha, 1, keys[5]) == b"1"  # loaded on the key's owner too
        assert c.cmd("FLUSHALL") == "OK"
        assert c.cmd("DBSIZE") == 0


def test_fills_with_distributed_single_flight_on_every_shard(redis_cluster, corral_factory):
    """Cache-aside fills through two corrals in front of the cluster: per key one origin call,
    the value stored on the key's owner; the lease lives in the key's slot (hash tag)."""
    from sample_origin import SampleOrigin
    with SampleOrigin() as origin:
        origin.set(latency_ms=50)
        cfg = cluster_config(redis_cluster)
        cfg["global"] = {"fill_secret": "cluster-fill-secret-0123456789abcdef"}
        cfg["origins"] = {"users": {"base_url": origin.url, "timeout": "1s"}}
        cfg["policies"] = [{"name": "user", "match": "user:<id:u64>", "ttl": {"default": "60s"},
                            "fill": {"origin": "users", "path": "/v1/users/<id>",
                                     "commands": ["GET", "MGET"]},
                            "stampede": {"single_flight": "distributed"}}]
        corrals = [corral_factory(cfg) for _ in range(2)]
        for c in corrals:
            wait_routed(c)
        ids = {}
        for i in range(1, 10000):
            ids.setdefault(redis_cluster.owner_of(f"user:{i}"), i)
            if len(ids) == 3:
                break
        for port, i in ids.items():
            conns = [RespConn(corrals[n % 2].port, timeout=5) for n in range(20)]
            try:
                for cl in conns:
                    cl.send_cmd("GET", f"user:{i}")
                got = [cl.read_reply() for cl in conns]
            finally:
                for cl in conns:
                    cl.close()
            assert len(set(got)) == 1 and got[0] is not None, got[:3]
            assert origin.calls(f"/v1/users/{i}") == 1, origin.stats()
            with redis_cluster.client(port) as direct:
                assert direct.cmd("GET", f"user:{i}") == got[0]
                assert 50000 <= direct.cmd("PTTL", f"user:{i}") <= 60000
        # MGET across shards: split by slot, merged, then each missing key filled.
        keys = [f"user:{i}" for i in range(20000, 20030)]
        assert len({redis_cluster.owner_of(k) for k in keys}) == 3
        with RespConn(corrals[0].port, timeout=10) as cl:
            got = cl.cmd("MGET", *keys)
            assert all(v is not None for v in got), got
            assert cl.cmd("MGET", *keys) == got  # stored: all hits
        assert sum(origin.calls(f"/v1/users/{k[5:]}") for k in keys) == len(keys)
        for k, v in zip(keys, got):
            with redis_cluster.client(redis_cluster.owner_of(k)) as direct:
                assert direct.cmd("GET", k) == v


def commandstat_calls(info: bytes, name: str) -> int:
    for line in info.decode().splitlines():
        if line.startswith(f"cmdstat_{name}:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


@pytest.mark.parametrize("where", ["config", "policy"])
def test_reads_go_to_replicas_when_asked(redis_cluster, corral_factory, where):
    """read_from: replica (upstream.cluster or a policy's route): GETs are served by the
    replicas of the key's shard (after READONLY); writes still go to the primary."""
    if where == "config":
        cfg = cluster_config(redis_cluster)
        cfg["upstream"]["cluster"]["read_from"] = "replica"
    else:
        cfg = cluster_config(redis_cluster)
        cfg["policies"] = [{"name": "r", "match": "rr:<id:u64>", "routing": {"read_from": "replica"}}]
    c = corral_factory(cfg)
    wait_routed(c)
    keys = [f"rr:{i}" for i in range(60)]
    with RespConn(c.port) as conn:
        assert conn.cmd("MSET", *[x for k in keys for x in (k, "v")]) == "OK"
    time.sleep(1.5)  # replication, and a refresh that sees the replicas online
    nodes = redis_cluster.primaries() + redis_cluster.replicas()
    for port in nodes:
        redis_cluster.cmd(port, "CONFIG", "RESETSTAT")
    with RespConn(c.port) as conn:
        for k in keys:
            assert conn.cmd("GET", k) == b"v"
        assert conn.cmd("SET", keys[0], "w") == "OK"
    gets = {p: commandstat_calls(redis_cluster.cmd(p, "INFO", "commandstats"), "get") for p in nodes}
    assert sum(gets[p] for p in redis_cluster.replicas()) == len(keys), gets
    assert sum(gets[p] for p in redis_cluster.primaries()) == 0, gets
    sets = sum(commandstat_calls(redis_cluster.cmd(p, "INFO", "commandstats"), "set")
               for p in redis_cluster.primaries())
    assert sets == 1


@pytest.mark.parametrize("resp3", [False, True])
def test_expose_presents_corral_as_a_one_node_cluster(redis_cluster, corral_factory, resp3):
    cfg = cluster_config(redis_cluster)
    cfg["upstream"]["cluster"]["expose"] = True
    c = corral_factory(cfg)
    wait_routed(c)
    with RespConn(c.port) as conn:
        if resp3:
            conn.cmd("HELLO", "3")
        slots = conn.cmd("CLUSTER", "SLOTS")
        assert len(slots) == 1 and slots[0][:2] == [0, 16383]
        assert slots[0][2][:2] == [b"127.0.0.1", c.port]
        node_id = slots[0][2][2]
        nodes = conn.cmd("CLUSTER", "NODES")
        text = nodes.decode() if isinstance(nodes, bytes) else str(nodes)
        assert f"127.0.0.1:{c.port}@" in text and "myself,master" in text
        assert node_id.decode() in text
        shards = conn.cmd("CLUSTER", "SHARDS")
        assert len(shards) == 1
        # Everything else still reaches the real cluster.
        assert b"cluster_state:ok" in conn.cmd("CLUSTER", "INFO")
    # Without expose, CLUSTER SLOTS is the cluster's own.
    plain = corral_factory(cluster_config(redis_cluster))
    with RespConn(plain.port) as conn:
        assert len(conn.cmd("CLUSTER", "SLOTS")) >= 3


def test_a_cluster_aware_client_works_through_expose(redis_cluster, corral_factory):
    """redis-py's RedisCluster asks CLUSTER SLOTS, sees corral as the only node, and sends
    everything there; keys still land on their real owners."""
    rediscluster = pytest.importorskip("redis.cluster")
    cfg = cluster_config(redis_cluster)
    cfg["upstream"]["cluster"]["expose"] = True
    c = corral_factory(cfg)
    wait_routed(c)
    rc = rediscluster.RedisCluster(host="127.0.0.1", port=c.port, socket_timeout=5)
    try:
        nodes = rc.get_nodes()
        assert [(n.host, n.port) for n in nodes] == [("127.0.0.1", c.port)]
        keys = [f"aware:{i}" for i in range(200)]
        for k in keys:
            assert rc.set(k, k) is True
        assert rc.mget_nonatomic(keys) == [k.encode() for k in keys]
    finally:
        rc.disconnect_connection_pools()  # close() of redis-py 4.3 leaves them open
        rc.close()
    for k in keys[:20]:
        with redis_cluster.client(redis_cluster.owner_of(k)) as direct:
            assert direct.cmd("GET", k) == k.encode()


def test_tls_cluster(corral_factory):
    """A TLS-only cluster (tls-cluster yes): corral reaches every node over TLS, verifying each
    node's certificate for the address the map gives; a CA that did not sign them is refused."""
    from cluster import RedisCluster
    with RedisCluster(primaries=3, replicas=0, tls=True) as tc:
        cfg = cluster_config(tc)
        cfg["upstream"]["cluster"]["tls"] = True
        cfg["upstream"]["tls"] = {"ca_file": tc.certs.path("ca")}
        c = corral_factory(cfg)
        wait_routed(c)
        keys = keys_across_slots(300, "tls")
        with RespConn(c.port, timeout=10) as conn:
            assert conn.pipeline([("SET", k, k) for k in keys]) == ["OK"] * len(keys)
            assert conn.cmd("MGET", *keys) == [k.encode() for k in keys]
        owners = tc.owners(keys)
        assert len(set(owners.values())) == 3
        for k in keys[:10]:
            with tc.client(owners[k]) as direct:
                assert direct.cmd("GET", k) == k.encode()
        assert c.metrics()["corral_upstream_tls_failures_total"] == 0
        # The wrong CA: nothing is served, and the reason is counted and logged.
        bad = cluster_config(tc)
        bad["upstream"]["cluster"]["tls"] = True
        bad["upstream"]["tls"] = {"ca_file": tc.certs.path("other_ca")}
        b = corral_factory(bad)
        with RespConn(b.port) as conn:
            got = conn.cmd("SET", "tls:x", "1")
        assert isinstance(got, RespError), got
        wait_until(lambda: b.metrics()["corral_upstream_tls_failures_total"] >= 1, 5,
                   what="TLS failure counted")
        assert "certificate verify failed" in b.stderr_text()


def test_shard_channels_go_to_the_channels_owner(redis_cluster, corral_cluster):
    for port, ch in keys_on_each_shard(redis_cluster, "sch").items():
        with RespConn(corral_cluster.port, timeout=5) as sub, \
                RespConn(corral_cluster.port) as pub:
            assert sub.cmd("SSUBSCRIBE", ch) == [b"ssubscribe", ch.encode(), 1]
            assert pub.cmd("SPUBLISH", ch, "hello") == 1  # on the owner: one subscriber
            assert sub.read_reply() == [b"smessage", ch.encode(), b"hello"]


def test_scripts_go_to_the_owner_of_their_keys(redis_cluster, corral_cluster):
    keys = keys_on_each_shard(redis_cluster, "lua")
    ports = sorted(keys)
    script = "redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])"
    with RespConn(corral_cluster.port) as c:
        for port in ports:
            assert c.cmd("EVAL", script, 1, keys[port], "v") == b"v"
        assert c.cmd("EVAL", "return 1", 0) == 1  # no keys: any primary
        got = c.cmd("EVAL", script, 2, keys[ports[0]], keys[ports[1]], "v")
        assert isinstance(got, RespError) and got.message.startswith("CROSSSLOT")
        c.cmd("FUNCTION", "FLUSH")
        lib = "#!lua name=corraltest\nredis.register_function('setget', function(k, a) " \
              "redis.call('SET', k[1], a[1]); return redis.call('GET', k[1]) end)"
        assert c.cmd("FUNCTION", "LOAD", lib) == b"corraltest"  # on every primary
        for port in ports:
            assert c.cmd("FCALL", "setget", 1, keys[port], "f") == b"f"
        assert c.cmd("FUNCTION", "FLUSH") == "OK"


def test_split_commands_keep_pipeline_order_while_slots_move(redis_cluster, corral_cluster):
    """MGET/DEL fragments retried on ASK/MOVED during a reshard still answer in order."""
    primaries = redis_cluster.primaries()
    keys = keys_across_slots(64, "order")
    with RespConn(corral_cluster.port) as c:
        assert c.cmd("MSET", *[x for k in keys for x in (k, k)]) == "OK"
    bad = []
    stop = threading.Event()

    def load():
        with RespConn(corral_cluster.port, timeout=10) as conn:
            while not stop.is_set():
                got = conn.pipeline([("MGET", *keys), ("PING",), ("EXISTS", *keys), ("ECHO", "e")])
                if got != [[k.encode() for k in keys], "PONG", len(keys), b"e"]:
                    bad.append(got)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        redis_cluster.reshard(primaries[2], primaries[0], 500)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert bad == [], bad[:2]
    redis_cluster.reshard(primaries[0], primaries[2], 500)


def test_select_is_refused_as_a_cluster_node_refuses_it(redis_cluster, corral_cluster):
    with redis_cluster.client(redis_cluster.primaries()[0]) as direct:
        want = direct.cmd("SELECT", "2")
    assert isinstance(want, RespError) and "not allowed in cluster mode" in want.message
    with RespConn(corral_cluster.port) as c:
        assert c.cmd("SELECT", "2") == want
        assert c.cmd("SELECT", "0") == "OK"
        assert c.cmd("SET", "sel:x", "1") == "OK"
        assert c.cmd("SELECT", "x") == direct_error_for_not_integer(redis_cluster)


def direct_error_for_not_integer(redis_cluster):
    with redis_cluster.client(redis_cluster.primaries()[0]) as direct:
        return direct.cmd("SELECT", "x")


@pytest.mark.parametrize("pipelined", [True, False])
def test_keyless_commands_before_a_transactions_first_key(redis_cluster, corral_cluster,
                                                          pipelined):
    """MULTI, then keyless commands, then the first key on another node: the transaction moves
    there with what it queued, and EXEC answers every command in order."""
    for port, k in keys_on_each_shard(redis_cluster, "txk").items():
        cmds = [("MULTI",), ("ECHO", "a"), ("PING",), ("CLIENT", "SETNAME", "txn"),
                ("SET", k, "1"), ("INCR", k), ("ECHO", "b"), ("EXEC",)]
        with RespConn(corral_cluster.port) as c:
            got = c.pipeline(cmds) if pipelined else [c.cmd(*x) for x in cmds]
            assert got == ["OK"] + ["QUEUED"] * 6 + [[b"a", "PONG", "OK", "OK", 2, b"b"]], got
            assert c.cmd("CLIENT", "GETNAME") == b"txn"
        with redis_cluster.client(port) as direct:
            assert direct.cmd("GET", k) == b"2"
