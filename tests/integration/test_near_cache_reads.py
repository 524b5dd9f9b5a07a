"""The near cache's reads beyond GET (proxy/nearcache/near_reads.h) against a real redis-server:
MGET, EXISTS, STRLEN, HGETALL, HGET, HMGET, HLEN and HEXISTS give the bytes Redis gives, in RESP2
and RESP3, are answered from memory once their keys are held, and never return a value Redis has
said changed. Also the byte caps (the policy's and global.near_cache.max_bytes, both applied on
reload) and the per-policy metrics."""
import signal
import time

import pytest

from harness import RespConn, corral_config, wait_until
from raw_resp import RawConn
from test_near_cache import _corral, _metric

pytestmark = pytest.mark.single_node("the near cache tracks one Redis; none with a cluster yet")

# Reads in the order a client would send them: GET and HGETALL first fill the cache, then the
# reads answered from what they filled. Keys: hot:1 "v1", hot:2 "" (an empty string), hot:10 a
# hash, hot:404 absent, cold:1 outside the near cache.
READS = [
    ("GET", "hot:1"), ("GET", "hot:2"), ("GET", "hot:404"),
    ("MGET", "hot:1", "hot:404", "hot:2"), ("MGET", "hot:1", "hot:2", "hot:1"),
    ("MGET", "hot:1", "cold:1"),
    ("EXISTS", "hot:1", "hot:2", "hot:1"), ("EXISTS", "hot:1", "hot:404"),
    ("STRLEN", "hot:1"), ("STRLEN", "hot:2"), ("STRLEN", "hot:404"),
    ("HGETALL", "hot:10"), ("HGETALL", "hot:404"),
    ("HGET", "hot:10", "f1"), ("HGET", "hot:10", "nope"),
    ("HMGET", "hot:10", "f2", "nope", "f1"),
    ("HLEN", "hot:10"), ("HEXISTS", "hot:10", "f1"), ("HEXISTS", "hot:10", "bc"),
    ("GET", "hot:10"), ("HGET", "hot:1", "f"), ("HGETALL", "hot:1"), ("STRLEN", "hot:10"),
]
# Answered from memory once the first round has filled the cache (every key held, right type).
FROM_MEMORY = [
    ("MGET", "hot:1", "hot:2", "hot:1"), ("EXISTS", "hot:1", "hot:2", "hot:1"),
    ("STRLEN", "hot:1"), ("STRLEN", "hot:2"), ("HGETALL", "hot:10"), ("HGET", "hot:10", "f1"),
    ("HGET", "hot:10", "nope"), ("HMGET", "hot:10", "f2", "nope", "f1"), ("HLEN", "hot:10"),
    ("HEXISTS", "hot:10", "f1"), ("GET", "hot:1"),
]


def _setup(port):
    with RespConn(port) as r:
        assert r.cmd("DEL", "hot:1", "hot:2", "hot:10", "hot:404", "cold:1") >= 0
        assert r.cmd("SET", "hot:1", "v1") == "OK"
        assert r.cmd("SET", "hot:2", "") == "OK"
        assert r.cmd("SET", "cold:1", "c") == "OK"
        assert r.cmd("HSET", "hot:10", "f1", "a", "f2", "bc") == 2


def _calls(port) -> dict:
    with RespConn(port) as r:
        info = r.cmd("INFO", "commandstats").decode()
    out = {}
    for line in info.splitlines():
        if line.startswith("cmdstat_"):
            name, _, rest = line[len("cmdstat_"):].partition(":")
            out[name] = int(rest.split("calls=")[1].split(",")[0])
    return out


@pytest.mark.parametrize("proto", [2, 3])
def test_reads_give_redis_s_bytes_and_repeat_from_memory(redis_server, corral_factory, proto):
    c = _corral(redis_server, corral_factory)
    _setup(redis_server.port)
    with RawConn(redis_server.port) as direct, RawConn(c.port) as near:
        if proto == 3:
            assert direct.cmd("HELLO", "3").startswith(b"%")
            assert near.cmd("HELLO", "3").startswith(b"%")
        want = [direct.cmd(*r) for r in READS]
        for rnd in range(3):  # a miss, then (for most) from memory
            got = [near.cmd(*r) for r in READS]
            for r, w, g in zip(READS, want, got):
                assert g == w, (rnd, r, w, g)
        before = _calls(redis_server.port)
        for _ in range(20):
            for r in FROM_MEMORY:
                assert near.cmd(*r) == direct.cmd(*r), r
        after = _calls(redis_server.port)
    # Redis ran FROM_MEMORY once per round for `direct` only: 20 per command, none for corral.
    for name in {r[0].lower() for r in FROM_MEMORY}:
        n = sum(1 for r in FROM_MEMORY if r[0].lower() == name)
        assert after.get(name, 0) - before.get(name, 0) == 20 * n, name


def _random_batches(rng, n_batches):
    strings = [f"hot:{i}" for i in range(1, 6)] + ["cold:1", "cold:2"]
    hashes = [f"hot:{i}" for i in range(10, 13)]
    batches = []
    for _ in range(n_batches):
        batch = []
        for _ in range(rng.randint(1, 12)):
            k, h = rng.choice(strings), rng.choice(hashes)
            f = rng.choice(["a", "b", "c"])
            batch.append(rng.choice([
                ("GET", k), ("GET", k), ("MGET", k, rng.choice(strings)), ("STRLEN", k),
                ("EXISTS", k, h), ("SET", k, str(rng.randint(0, 99))), ("APPEND", k, "x"),
                ("DEL", k), ("HGETALL", h), ("HGETALL", h), ("HGET", h, f), ("HMGET", h, f, "a"),
                ("HLEN", h), ("HEXISTS", h, f), ("HSET", h, f, str(rng.randint(0, 99))),
                ("HDEL", h, f), ("PING",), ("GET", h), ("HGET", k, f),
            ]))
        batches.append(batch)
    return batches


def _run_batches(port, proto, batches):
    with RawConn(port) as conn:
        if proto == 3:
            assert conn.cmd("HELLO", "3").startswith(b"%")
        out = []
        for batch in batches:
            out.append(conn.pipeline(batch))
        return out


@pytest.mark.parametrize("proto", [2, 3])
def test_random_pipelines_of_reads_and_writes_match_redis(redis_server, corral_factory, proto):
    """Random pipelined batches of near reads, writes of the same keys and other commands: the
    replies through corral (near cache on) equal Redis's own for the same sequence, in order.
    A RESP3 client holds a connection of its own here; its reads still come from memory."""
    import random
    c = _corral(redis_server, corral_factory)
    batches = _random_batches(random.Random(1206 + proto), 300)
    with RespConn(redis_server.port) as r:
        assert r.cmd("FLUSHALL") == "OK"
    got = _run_batches(c.port, proto, batches)
    with RespConn(redis_server.port) as r:
        assert r.cmd("FLUSHALL") == "OK"
    want = _run_batches(redis_server.port, proto, batches)
    for i, (b, w, g) in enumerate(zip(batches, want, got)):
        assert g == w, (i, b, w, g)
    wait_until(lambda: _metric(c, "corral_near_hits_total") > 50, 5, what="near hits")


def test_hash_and_mget_writes_are_seen(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    _setup(redis_server.port)
    with RespConn(c.port) as conn, RespConn(redis_server.port) as r:
        for _ in range(2):
            assert conn.cmd("HGETALL", "hot:10") == [b"f1", b"a", b"f2", b"bc"]
            assert conn.cmd("MGET", "hot:1", "hot:2") == [b"v1", b""]
        # Straight to Redis: seen once Redis's invalidation arrives (well within a second).
        assert r.cmd("HSET", "hot:10", "f1", "A") == 0
        wait_until(lambda: conn.cmd("HGET", "hot:10", "f1") == b"A", 1, interval=0.001,
                   what="HSET straight to Redis seen")
        assert r.cmd("SET", "hot:2", "w") == "OK"
        wait_until(lambda: conn.cmd("MGET", "hot:1", "hot:2") == [b"v1", b"w"], 1,
                   interval=0.001, what="SET straight to Redis seen by MGET")
        # Through corral: read back at once, every read of the key.
        for i in range(50):
            assert conn.cmd("HGETALL", "hot:10") is not None  # held again
            assert conn.cmd("HSET", "hot:10", "f3", str(i)) in (0, 1)
            assert conn.cmd("HGET", "hot:10", "f3") == str(i).encode()
            assert conn.cmd("HMGET", "hot:10", "f3", "f2") == [str(i).encode(), b"bc"]
            assert conn.cmd("MSET", "hot:1", f"m{i}", "hot:2", f"n{i}") == "OK"
            assert conn.cmd("MGET", "hot:2", "hot:1") == [f"n{i}".encode(), f"m{i}".encode()]
            assert conn.cmd("STRLEN", "hot:1") == len(f"m{i}")
        assert conn.cmd("DEL", "hot:10") == 1
        assert conn.cmd("HLEN", "hot:10") == 0
        assert conn.cmd("EXISTS", "hot:10", "hot:1") == 1
        assert conn.cmd("HGETALL", "hot:10") == []


def _near_bytes(c) -> float:
    return _metric(c, "corral_near_bytes")


def test_global_cap_holds_and_reload_applies_new_caps(redis_server, corral_factory):
    """global.near_cache.max_bytes bounds what the policies hold together; the policy's own
    max_bytes bounds it alone; a reload applies new values to the running stores."""
    cfg = corral_config(redis_server.port, workers=1)
    cfg["global"] = {"near_cache": {"max_bytes": "64KiB"}}
    cfg["policies"] = [{"name": "hot", "match": "hot:<id:u64>",
                        "near_cache": {"max_age": "10s", "max_bytes": "1MiB"}}]
    c = corral_factory(cfg)
    value = "x" * 100
    with RespConn(redis_server.port) as r:
        r.pipeline([("SET", f"hot:{i}", value) for i in range(3000)])

    def full_round(conn):
        for start in range(0, 3000, 100):
            keys = [f"hot:{i}" for i in range(start, start + 100)]
            assert conn.cmd("MGET", *keys) == [value.encode()] * 100
            for k in keys[:20]:
                assert conn.cmd("GET", k) == value.encode()
        time.sleep(0.25)  # the workers' tick brings the gauges up to date
        return _near_bytes(c)

    with RespConn(c.port) as conn:
        held = [full_round(conn) for _ in range(3)]
        assert 32 * 1024 < max(held) <= 64 * 1024, held  # full, and never over
        # A larger shared cap and a smaller policy cap: the policy's own now binds.
        cfg["global"] = {"near_cache": {"max_bytes": "8MiB"}}
        cfg["policies"][0]["near_cache"]["max_bytes"] = "16KiB"
        c.write_config(cfg)
        c.signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while full_round(conn) > 16 * 1024:
            assert time.monotonic() < deadline, "the reload's caps were never applied"
        held = [full_round(conn) for _ in range(2)]
        assert 8 * 1024 < max(held) <= 16 * 1024, held
    m = c.metrics()
    assert m['corral_policy_near_total{policy="hot",event="eviction"}'] > 0
    assert m['corral_policy_near_bytes{policy="hot"}'] <= 16 * 1024


def test_per_policy_metrics_and_the_hit_ratio_in_info(redis_server, corral_factory):
    c = _corral(redis_server, corral_factory)
    _setup(redis_server.port)
    with RespConn(c.port) as conn, RespConn(redis_server.port) as r:
        for _ in range(10):
            assert conn.cmd("GET", "hot:1") == b"v1"  # 1 miss, then 9 hits
        assert r.cmd("SET", "hot:1", "v2") == "OK"
        wait_until(lambda: conn.cmd("GET", "hot:1") == b"v2", 1, interval=0.001,
                   what="invalidation")

        def counted():  # (the workers' tick brings the counters up to date)
            m = c.metrics()
            return (m.get('corral_policy_near_total{policy="hot",event="hit"}', 0) >= 9 and
                    m.get('corral_policy_near_total{policy="hot",event="invalidation"}', 0) >= 1
                    and m.get('corral_policy_near_total{policy="hot",event="miss"}', 0) >= 2
                    and m.get('corral_policy_near_bytes{policy="hot"}', 0) > 0)
        wait_until(counted, 5, what="per-policy near counters: 9 hits, 2 misses (the first read "
                   "and the one after the invalidation), an invalidation, bytes held")
        m = c.metrics()
        hits = m['corral_policy_near_total{policy="hot",event="hit"}']
        misses = m['corral_policy_near_total{policy="hot",event="miss"}']
        assert m['corral_policy_near_hit_ratio{policy="hot"}'] == pytest.approx(
            hits / (hits + misses), abs=0.01)
        assert not any(k.startswith("corral_policy_near_total{policy=\"cold\"") for k in m)
        info = conn.cmd("INFO", "proxy").decode()
        ratio = [ln for ln in info.splitlines() if ln.startswith("corral_near_hit_ratio:")]
        assert ratio, info
        assert 0.5 < float(ratio[0].split(":")[1]) < 1.0


def test_a_fill_policy_with_near_cache(redis_server, corral_factory):
    """A policy with fill and near_cache: a miss is filled from the origin as usual; once Redis
    has the value, reads come from memory; writes through corral or straight to Redis are seen
    as with any near key."""
    from sample_origin import SampleOrigin
    from test_fill import body, fill_config, policy
    with SampleOrigin() as origin:
        cfg = fill_config(redis_server.port, origin.url,
                          [policy(near_cache={"max_age": "10s"})])
        c = corral_factory(cfg)
        with RespConn(c.port) as conn, RespConn(redis_server.port) as r:
            first = conn.cmd("GET", "user:7")
            assert body(first)["id"] == "7"
            assert origin.calls() == 1
            wait_until(lambda: _metric(c, "corral_near_entries") >= 1 or
                       conn.cmd("GET", "user:7") != first, 5, interval=0.01,
                       what="the value read into memory")
            assert conn.cmd("GET", "user:7") == first
            before = _calls(redis_server.port).get("get", 0)
            for _ in range(30):
                assert conn.cmd("GET", "user:7") == first
            assert _calls(redis_server.port).get("get", 0) == before, "not from memory"
            assert origin.calls() == 1
            assert conn.cmd("SET", "user:7", "mine") == "OK"
            assert conn.cmd("GET", "user:7") == b"mine"
            assert r.cmd("SET", "user:7", "direct") == "OK"
            wait_until(lambda: conn.cmd("GET", "user:7") == b"direct", 1, interval=0.001,
                       what="a direct write seen")
            assert r.cmd("DEL", "user:7") == 1
            # Once Redis's invalidation is in (straight to Redis: not at once), filled again.
            wait_until(lambda: conn.cmd("GET", "user:7") != b"direct", 1, interval=0.001,
                       what="the DEL seen")
            assert body(conn.cmd("GET", "user:7"))["id"] == "7"
            assert origin.calls() == 2
