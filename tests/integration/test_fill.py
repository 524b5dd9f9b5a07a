"""Cache-aside fills through the real corral binary, a real redis-server and a real HTTP origin
(tests/support/sample_origin.py), against docs/policies.md (fill, negative, stampede,
freshness) and policies/fill.h: miss -> origin -> value stored with a jittered TTL; single-flight
(off, local, distributed over 3 corrals); negative entries; on_error nil/error; corral's
reserved key prefix; stale-set protection; audit mode; stale-while-revalidate and
stale-if-error; max_value_bytes; pipelines; clients that leave mid-fill. corral-only.

Every wait is bounded (wait_until, socket timeouts); everything listens on 127.0.0.1."""

import json
import random
import socket
import struct
import threading
import time

import pytest

import harness
from cluster_upstream import SELECT_DB
from fill_keys import lease_key, negative_key
from harness import EOF, RespConn, RespError, corral_config, to_yaml, wait_until
from sample_origin import SampleOrigin

# global.fill_secret of every config here: the internal keys' names are digests under it.
SECRET = "integration-fill-secret-0123456789"

USER = {"name": "user", "match": "user:<id:u64>", "ttl": {"default": "60s"},
        "fill": {"origin": "users", "path": "/v1/users/<id>"}, "negative": {"ttl": "5s"},
        "stampede": {"single_flight": "local"}}


@pytest.fixture
def origin():
    with SampleOrigin() as o:
        yield o


def fill_config(redis_port, origin_url, policies, timeout="500ms", **overrides):
    """corral_config() plus origins `users` and `items` (both the same SampleOrigin)."""
    cfg = corral_config(redis_port, **overrides)
    cfg.setdefault("global", {})["fill_secret"] = SECRET
    cfg["origins"] = {"users": {"base_url": origin_url, "timeout": timeout},
                      "items": {"base_url": origin_url, "timeout": timeout}}
    cfg["policies"] = policies
    return to_yaml(cfg) + "\n"


def policy(**changes):
    """USER with top-level fields replaced (nested dicts replaced whole)."""
    p = json.loads(json.dumps(USER))
    p.update(changes)
    return p


def item_policy(name="item", prefix="item", **changes):
    """A slug-keyed policy on origin `items` (ids "missing..." -> 404, "fail..." -> 503)."""
    p = {"name": name, "match": f"{prefix}:<id:slug>", "ttl": {"default": "60s"},
         "fill": {"origin": "items", "path": "/v1/items/<id>"}}
    p.update(changes)
    return p


def fill_event(c, pol, event):
    return c.metrics().get(f'corral_fill_events_total{{policy="{pol}",event="{event}"}}', 0)


def body(value):
    """The origin's JSON body (as stored by corral: the exact bytes the origin sent)."""
    assert isinstance(value, bytes), value
    assert value.endswith(b"}\n"), value
    return json.loads(value)


def internal_keys(redis_server):
    return sorted(redis_server.cmd("KEYS", "__corral:*"))


def send_all_then_read(port, n, cmd, timeout=5.0):
    """n connections; each sends cmd at (nearly) the same moment; returns every reply."""
    conns = [RespConn(port, timeout=timeout) for _ in range(n)]
    try:
        for cl in conns:
            cl.send_cmd(*cmd)
        return [cl.read_reply() for cl in conns]
    finally:
        for cl in conns:
            cl.close()


# ---------------------------------------------------------------------------------------------
# 1. miss -> fill -> value; then a hit


@pytest.mark.parametrize("single_flight", ["local", "distributed"])
def test_miss_fills_stores_with_ttl_then_hits(redis_server, corral_factory, origin,
                                              single_flight):
    c = corral_factory(fill_config(redis_server.port, origin.url,
                                   [policy(stampede={"single_flight": single_flight})]))
    with c.client() as cl:
        v = cl.cmd("GET", "user:1")
        doc = body(v)
        assert doc["id"] == "1" and doc["n"] == 1, doc
        assert redis_server.cmd("GET", "user:1") == v
        pttl = redis_server.cmd("PTTL", "user:1")
        assert 54000 - 200 <= pttl <= 60000, pttl
        assert origin.calls("/v1/users/1") == 1
        assert internal_keys(redis_server) == []
        # a hit: Redis answers, the origin is not asked again
        assert cl.cmd("GET", "user:1") == v
        assert cl.cmd("GET", "user:1") == v
        assert origin.calls() == 1
    m = c.metrics()
    assert m['corral_fill_events_total{policy="user",event="fills"}'] == 1
    assert m['corral_fill_events_total{policy="user",event="fill_errors"}'] == 0
    if single_flight == "distributed":
        assert m['corral_fill_events_total{policy="user",event="lease_wins"}'] == 1
    assert m['corral_fill_origin_duration_seconds_count{policy="user"}'] == 1
    # Redis's answer is what is counted (the keyspace hit ratio): the filled miss is a miss
    assert m['corral_policy_reads_total{policy="user",result="hit"}'] == 2
    assert m['corral_policy_reads_total{policy="user",result="miss"}'] == 1


def test_fill_path_is_percent_encoded_and_captures_substituted(redis_server, corral_factory,
                                                              origin):
    pol = item_policy(match="item:<cat:slug>:<id:seg>",
                      fill={"origin": "items", "path": "/v1/items/<cat>/<id>"})
    c = corral_factory(fill_config(redis_server.port, origin.url, [pol]))
    with c.client() as cl:
        v = cl.cmd("GET", "item:books:a b/c")
        assert body(v)["id"] == "a b/c", v
    # the capture is percent-encoded (RFC 3986 unreserved bytes kept), so "/" stays in one
    # path segment
    assert origin.stats()["paths"] == {"/v1/items/books/a%20b%2Fc": 1}


def test_fill_path_dot_segments_from_keys_are_encoded(redis_server, corral_factory, origin):
    """Defect 12a: a key "acct:.." must not make corral fetch /v1/users/../profile (another
    resource, which it would then cache under the key). The dots of a dot-segment that a key
    brings are percent-encoded; the origin receives a name, not a move."""
    pol = item_policy(name="acct", match="acct:<id:slug>",
                      fill={"origin": "items", "path": "/v1/users/<id>/profile"})
    c = corral_factory(fill_config(redis_server.port, origin.url, [pol]))
    with c.client() as cl:
        assert body(cl.cmd("GET", "acct:.."))["id"] == "profile"
        assert body(cl.cmd("GET", "acct:."))["id"] == "profile"
        assert body(cl.cmd("GET", "acct:..."))["id"] == "profile"
    assert origin.stats()["paths"] == {"/v1/users/%2E%2E/profile": 1,
                                       "/v1/users/%2E/profile": 1,
                                       "/v1/users/.../profile": 1}


# ---------------------------------------------------------------------------------------------
# 2, 3. single-flight local and off


def test_single_flight_local_200_clients_one_origin_call(redis_server, corral_factory, origin):
    origin.set(latency_ms=100)
    c = corral_factory(fill_config(redis_server.port, origin.url, [USER]))
    got = send_all_then_read(c.port, 200, ("GET", "user:7"))
    assert origin.calls() == 1, origin.stats()
    assert origin.calls("/v1/users/7") == 1
    assert len(set(got)) == 1, set(got)
    assert body(got[0])["n"] == 1
    assert redis_server.cmd("GET", "user:7") == got[0]
    m = c.metrics()
    assert m['corral_fill_events_total{policy="user",event="fills"}'] == 1
    # every other client joined the one flight (all 200 GETs arrive well within 100 ms)
    assert m['corral_fill_events_total{policy="user",event="coalesced"}'] == 199
    # Redis answered nil to all 200 (the keyspace hit ratio counts what Redis answered)
    assert m['corral_policy_reads_total{policy="user",result="miss"}'] == 200
    assert m.get('corral_policy_reads_total{policy="user",result="hit"}', 0) == 0


def test_single_flight_off_each_miss_calls_origin(redis_server, corral_factory, origin):
    origin.set(latency_ms=200)
    c = corral_factory(fill_config(redis_server.port, origin.url,
                                   [policy(stampede={"single_flight": "off"})]))
    n = 10
    got = send_all_then_read(c.port, n, ("GET", "user:8"))
    calls = origin.calls("/v1/users/8")
    # all n GETs miss within the origin's 200 ms: one origin call each, none coalesced
    assert calls == n, origin.stats()
    assert sorted(body(v)["n"] for v in got) == list(range(1, n + 1))
    # one value ended up in Redis (the first commit; the others lose their SET NX)
    stored = redis_server.cmd("GET", "user:8")
    assert stored in got
    assert internal_keys(redis_server) == []
    assert fill_event(c, "user", "fills") == n
    assert fill_event(c, "user", "coalesced") == 0
    assert fill_event(c, "user", "not_stored") == n - 1


# ---------------------------------------------------------------------------------------------
# 4. distributed single-flight across 3 corrals


def test_distributed_single_flight_across_three_corrals(redis_server, corral_factory, origin):
    origin.set(latency_ms=100)
    cfg = fill_config(redis_server.port, origin.url,
                      [policy(stampede={"single_flight": "distributed"})])
    corrals = [corral_factory(cfg) for _ in range(3)]
    conns = [RespConn(corrals[i % 3].port, timeout=5) for i in range(60)]
    try:
        for cl in conns:
            cl.send_cmd("GET", "user:42")
        got = [cl.read_reply() for cl in conns]
    finally:
        for cl in conns:
            cl.close()
    assert origin.calls() == 1, origin.stats()
    assert len(set(got)) == 1, set(got)
    assert body(got[0])["id"] == "42"
    assert redis_server.cmd("GET", "user:42") == got[0]
    assert internal_keys(redis_server) == []

    def ev(event):
        return [fill_event(c, "user", event) for c in corrals]

    assert sum(ev("fills")) == 1, ev("fills")
    assert sum(ev("lease_wins")) == 1, ev("lease_wins")
    assert sum(ev("lease_losses")) >= 1, ev("lease_losses")
    assert sum(ev("fill_errors")) == 0 and sum(ev("wait_timeouts")) == 0


# ---------------------------------------------------------------------------------------------
# 5. 404 -> negative entry


def test_not_found_is_remembered_as_negative_entry(redis_server, corral_factory, origin):
    c = corral_factory(fill_config(redis_server.port, origin.url,
                                   [item_policy(negative={"ttl": "5s"})]))
    with c.client() as cl:
        assert cl.cmd("GET", "item:missing-1") is None
        assert origin.calls("/v1/items/missing-1") == 1
        assert redis_server.cmd("EXISTS", "item:missing-1") == 0
        neg = negative_key(SECRET, "item:missing-1")
        assert internal_keys(redis_server) == [neg.encode()]
        pttl = redis_server.cmd("PTTL", neg)
        assert 4000 <= pttl <= 5000, pttl
        # within the window: nil again, and the origin is not asked
        assert cl.cmd("GET", "item:missing-1") is None
        assert cl.cmd("GET", "item:missing-1") is None
        assert origin.calls() == 1
        # a client write of the key wins over the negative entry
        assert cl.cmd("SET", "item:missing-1", "now-here") == "OK"
        assert cl.cmd("GET", "item:missing-1") == b"now-here"
    assert fill_event(c, "item", "negative_hits") == 2
    assert fill_event(c, "item", "fills") == 1


def test_not_found_without_negative_ttl_asks_origin_again(redis_server, corral_factory, origin):
    c = corral_factory(fill_config(redis_server.port, origin.url, [item_policy()]))
    with c.client() as cl:
        assert cl.cmd("GET", "item:missing-2") is None
        assert internal_keys(redis_server) == []
        assert cl.cmd("GET", "item:missing-2") is None
    assert origin.calls("/v1/items/missing-2") == 2
    assert fill_event(c, "item", "negative_hits") == 0


# ---------------------------------------------------------------------------------------------
# 6. origin errors: on_error nil / error


def test_origin_503_on_error_nil_and_error(redis_server, corral_factory, origin):
    pols = [item_policy(name="item-nil", prefix="itemn"),
            item_policy(name="item-err", prefix="iteme",
                        fill={"origin": "items", "path": "/v1/items/<id>", "on_error": "error"})]
    c = corral_factory(fill_config(redis_server.port, origin.url, pols))
    with c.client() as cl:
        assert cl.cmd("GET", "itemn:fail-1") is None
        r = cl.cmd("GET", "iteme:fail-2")
        assert r == RespError("FILLERR items status 503"), r
        # errors are not remembered: the next miss asks the origin again
        assert cl.cmd("GET", "iteme:fail-2") == RespError("FILLERR items status 503")
        assert cl.cmd("PING") == "PONG"
    assert origin.calls("/v1/items/fail-1") == 1
    assert origin.calls("/v1/items/fail-2") == 2
    assert redis_server.cmd("DBSIZE") == 0  # no value, no negative entry, no lease left
    assert fill_event(c, "item-nil", "fill_errors") == 1
    assert fill_event(c, "item-err", "fill_errors") == 2


def test_origin_timeout_on_error_nil_and_error(redis_server, corral_factory, origin):
    origin.set(latency_ms=600)
    pols = [item_policy(name="item-nil", prefix="itemn"),
            item_policy(name="item-err", prefix="iteme",
                        fill={"origin": "items", "path": "/v1/items/<id>", "on_error": "error"})]
    c = corral_factory(fill_config(redis_server.port, origin.url, pols, timeout="150ms"))
    with c.client() as cl:
        t0 = time.monotonic()
        assert cl.cmd("GET", "itemn:slow-1") is None
        r = cl.cmd("GET", "iteme:slow-2")
        took = time.monotonic() - t0
        assert r == RespError("FILLERR items timeout"), r
        # each ends by the origin timeout (150 ms), not the origin's 600 ms
        assert took < 1.0, took
    assert redis_server.cmd("DBSIZE") == 0
    assert fill_event(c, "item-nil", "fill_errors") == 1
    assert fill_event(c, "item-err", "fill_errors") == 1


# ---------------------------------------------------------------------------------------------
# 7. corral's reserved key prefix


def test_clients_cannot_touch_internal_keys(redis_server, corral_factory, origin):
    c = corral_factory(fill_config(redis_server.port, origin.url,
                                   [policy(stampede={"single_flight": "distributed"})]))
    lease = "__corral:lease:{user:1}"
    neg = "__corral:neg:{user:1}"
    assert redis_server.cmd("SET", lease, "token") == "OK"
    assert redis_server.cmd("SET", neg, "1") == "OK"
    want = RespError(f"KEYNAME key '{lease}' is in corral's reserved prefix __corral:")
    with c.client() as cl:
        assert cl.cmd("GET", lease) == want
        assert cl.cmd("SET", lease, "mine") == want
        assert cl.cmd("DEL", lease) == want
        assert cl.cmd("PEXPIRE", lease, "1") == want
        assert cl.cmd("SET", "__corral:x", "1") == \
            RespError("KEYNAME key '__corral:x' is in corral's reserved prefix __corral:")
        r = cl.cmd("DEL", "user:1", neg)
        assert isinstance(r, RespError) and r.startswith(f"KEYNAME key '{neg}'"), r
        r = cl.cmd("MGET", "plain", lease)
        assert r == want, r
        r = cl.cmd("RENAME", "plain", lease)
        assert r == want, r
        r = cl.cmd("EVAL", "return redis.call('GET', KEYS[1])", "1", lease)
        assert r == want, r
        assert cl.cmd("PING") == "PONG"
    assert redis_server.cmd("GET", lease) == b"token"
    assert redis_server.cmd("PTTL", lease) == -1
    assert redis_server.cmd("GET", neg) == b"1"
    assert redis_server.cmd("DBSIZE") == 2

@pytest.mark.single_node("the script writes keys named in ARGV (not declared as keys); a "
                          "cluster node refuses those of other nodes")
def test_internal_keys_cannot_be_forged_through_scripts(redis_server, corral_factory, origin):
    """Defect 12b: the prefix check sees key arguments only, so EVAL could write any name given
    in ARGV: a lease that never expires (every distributed fill of the key waits, then fails) or
    a negative entry (every fill answers nil). The names corral uses now carry a digest of the
    key under global.fill_secret; a client writing the names it can guess (the old scheme's)
    reaches keys that corral never reads."""
    pol = policy(stampede={"single_flight": "distributed", "wait": "300ms"},
                 fill={"origin": "users", "path": "/v1/users/<id>", "on_error": "error"})
    c = corral_factory(fill_config(redis_server.port, origin.url, [pol]))
    forge = "redis.call('SET', ARGV[1], 'forged'); redis.call('SET', ARGV[2], '1'); return 1"
    with c.client() as cl:
        for n in (70, 71):
            assert cl.cmd("EVAL", forge, "0", f"__corral:lease:{{user:{n}}}",
                          f"__corral:neg:{{user:{n}}}") == 1
        # the forged keys are in Redis, and fills go on as if they were not
        assert redis_server.cmd("GET", "__corral:lease:{user:70}") == b"forged"
        assert body(cl.cmd("GET", "user:70"))["id"] == "70"
        assert body(cl.cmd("GET", "user:71"))["id"] == "71"
    assert origin.calls() == 2
    assert fill_event(c, "user", "lease_wins") == 2
    assert fill_event(c, "user", "negative_hits") == 0
    assert fill_event(c, "user", "wait_timeouts") == 0
    # the names corral used are not the guessable ones
    assert lease_key(SECRET, "user:70") != "__corral:lease:{user:70}"


# ---------------------------------------------------------------------------------------------
# 8. stale-set protection: a client write during a fill wins


def _race(port_a, port_b, key, delay, write):
    """A GETs key (a miss: a fill starts); after `delay` s, B writes it. Returns A's reply."""
    with RespConn(port_a, timeout=5) as a, RespConn(port_b, timeout=5) as b:
        a.send_cmd("GET", key)
        time.sleep(delay)
        r = b.cmd(*write)
        assert r in ("OK", 0, 1), (write, r)
        return a.read_reply()


@pytest.mark.parametrize("single_flight", ["off", "local", "distributed"])
@pytest.mark.parametrize("write", ["SET", "DEL"])
def test_client_write_during_fill_wins(redis_server, corral_factory, origin, single_flight,
                                       write):
    origin.set(latency_ms=300)
    c = corral_factory(fill_config(redis_server.port, origin.url,
                                   [policy(stampede={"single_flight": single_flight})]))
    cmd = ("SET", "user:100", "fresh") if write == "SET" else ("DEL", "user:100")
    got = _race(c.port, c.port, "user:100", 0.1, cmd)
    assert body(got)["id"] == "100"  # A got the origin's value
    time.sleep(0.1)
    assert redis_server.cmd("GET", "user:100") == (b"fresh" if write == "SET" else None)
    assert origin.calls() == 1
    assert internal_keys(redis_server) == []
    assert fill_event(c, "user", "not_stored") == 1


def test_client_write_during_fill_wins_race_sweep(redis_server, corral_factory, origin):
    """20 races on 20 keys at once, the write landing anywhere from before the lookup to after
    the commit; SET and DEL; the writer on the same corral or on another one."""
    origin.set(latency_ms=300)
    cfg = fill_config(redis_server.port, origin.url,
                      [policy(stampede={"single_flight": "distributed"})])
    c1, c2 = corral_factory(cfg), corral_factory(cfg)
    rng = random.Random(1234)
    cases = []
    for i in range(20):
        key = f"user:{200 + i}"
        write = ("SET", key, f"fresh-{i}") if i % 4 != 3 else ("DEL", key)
        port_b = c1.port if i % 2 == 0 else c2.port
        cases.append((key, rng.uniform(0.0, 0.36), write, port_b))
    results = [None] * len(cases)
    errors = []

    def run(i, key, delay, write, port_b):
        try:
            results[i] = _race(c1.port, port_b, key, delay, write)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((key, e))

    threads = [threading.Thread(target=run, args=(i, *case)) for i, case in enumerate(cases)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == [], errors
    time.sleep(0.5)  # any fill still in flight has ended (origin 300 ms)
    stale = []
    for (key, delay, write, port_b), got in zip(cases, results):
        assert got is None or isinstance(got, bytes), (key, got)
        stored = redis_server.cmd("GET", key)
        want = write[2].encode() if write[0] == "SET" else None
        if stored != want:
            stale.append((key, round(delay, 3), write[0],
                          "same" if port_b == c1.port else "other", stored))
    assert stale == [], stale
    assert internal_keys(redis_server) == []



# A write of key {k} in several forms: (commands, what Redis must hold after the fill).
WRITE_FORMS = {
    "SET": ([("SET", "{k}", "fresh")], b"fresh"),
    "DEL": ([("DEL", "{k}")], None),
    "UNLINK": ([("UNLINK", "{k}")], None),
    "GETDEL": ([("GETDEL", "{k}")], None),
    "MSET": ([("MSET", "plain:x", "1", "{k}", "fresh")], b"fresh"),
    "SETEX": ([("SETEX", "{k}", "60", "fresh")], b"fresh"),
    "INCR": ([("INCR", "{k}")], b"1"),
    # the source's hash tag is the key: one cluster slot for both
    "RENAME": ([("SET", "{{{k}}}:src", "fresh"), ("RENAME", "{{{k}}}:src", "{k}")], b"fresh"),
    "COPY": ([("SET", "{{{k}}}:src", "fresh"), ("COPY", "{{{k}}}:src", "{k}")], b"fresh"),
    "WATCH": ([("WATCH", "{k}"), ("SET", "{k}", "fresh")], b"fresh"),
    "MULTI": ([("MULTI",), ("SET", "{k}", "fresh"), ("EXEC",)], b"fresh"),
    "HELLO3": ([("HELLO", "3"), ("SET", "{k}", "fresh")], b"fresh"),
    "EVAL": ([("EVAL", "return redis.call('SET', KEYS[1], ARGV[1])", "1", "{k}", "fresh")],
             b"fresh"),
}


def _write_forms_race(redis_server, origin, filler, writers):
    """For each (form, writer corral): a GET of a fresh key through `filler` starts a fill
    (origin 300 ms); 100 ms later the writer writes the key in that form. All at once, on
    different keys. Returns {(form, writer index): what Redis holds, when it is wrong}."""
    origin.set(latency_ms=300)
    results, errors = {}, []

    def run(n, form, w):
        key = f"user:{500 + n}"
        cmds, _ = WRITE_FORMS[form]
        try:
            with RespConn(filler.port, timeout=5) as a, RespConn(writers[w].port, timeout=5) as b:
                a.send_cmd("GET", key)
                time.sleep(0.1)
                for c in cmds:
                    r = b.cmd(*[x.format(k=key) for x in c])
                    assert not isinstance(r, RespError), (form, c, r)
                got = a.read_reply()
                assert got == b"fresh" or body(got)["id"] == key[5:], (form, got)
            results[(form, w)] = key
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append((form, w, e))

    forms = list(WRITE_FORMS)
    cases = [(form, w) for form in forms for w in range(len(writers))]
    threads = [threading.Thread(target=run, args=(n, *case)) for n, case in enumerate(cases)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert errors == [], errors
    time.sleep(0.5)  # every fill has ended
    wrong = {}
    for (form, w), key in results.items():
        got = redis_server.cmd("GET", key)
        if got != WRITE_FORMS[form][1]:
            wrong[(form, w)] = got
    assert internal_keys(redis_server) == []
    return wrong


def test_write_forms_during_fill_win(redis_server, corral_factory, origin):
    """Every form of write, through the filling corral or another one (distributed)."""
    cfg = fill_config(redis_server.port, origin.url,
                      [policy(stampede={"single_flight": "distributed"})])
    c1, c2 = corral_factory(cfg), corral_factory(cfg)
    wrong = _write_forms_race(redis_server, origin, c1, [c1, c2])
    assert wrong == {}


@pytest.mark.parametrize("single_flight,script,want", [
    ("distributed", "return redis.call('SET', KEYS[1], 'fresh')", b"fresh"),
    ("local", "return redis.call('DEL', KEYS[1])", None),
], ids=["distributed-SET", "local-DEL"])
def test_eval_write_during_fill_wins(redis_server, corral_factory, origin, single_flight,
                                     script, want):
    origin.set(latency_ms=300)
    c = corral_factory(fill_config(redis_server.port, origin.url,
                                   [policy(stampede={"single_flight": single_flight})]))
    with c.client() as a, c.client() as b:
        a.send_cmd("GET", "user:120")
        time.sleep(0.1)
        assert not isinstance(b.cmd("EVAL", script, "1", "user:120"), RespError)
        assert body(a.read_reply())["id"] == "120"
    time.sleep(0.4)
    assert redis_server.cmd("GET", "user:120") == want


@pytest.mark.parametrize("form", [
    "MULTI", "HELLO3"])
def test_transaction_or_resp3_write_on_other_corral_during_fill_wins(redis_server,
                                                                     corral_factory, origin,
                                                                     form):
    origin.set(latency_ms=300)
    cfg = fill_config(redis_server.port, origin.url,
                      [policy(stampede={"single_flight": "distributed"})])
    c1, c2 = corral_factory(cfg), corral_factory(cfg)
    with c1.client() as a, c2.client() as b:
        a.send_cmd("GET", "user:121")
        time.sleep(0.1)
        for cmd in WRITE_FORMS[form][0]:
            assert not isinstance(b.cmd(*[x.format(k="user:121") for x in cmd]), RespError)
        assert body(a.read_reply())["id"] == "121"
    time.sleep(0.4)
    assert redis_server.cmd("GET", "user:121") == b"fresh"


def test_client_write_during_background_refresh_wins(redis_server, corral_factory, origin):
    pol = policy(ttl={"default": "1s", "jitter": 0},
                 freshness={"stale_while_revalidate": "5s"})
    c = corral_factory(fill_config(redis_server.port, origin.url, [pol], timeout="1s"))
    with c.client() as cl:
        v1 = cl.cmd("GET", "user:110")
        assert body(v1)["n"] == 1
        origin.set(latency_ms=300)
        time.sleep(1.2)
        assert cl.cmd("GET", "user:110") == v1  # stale; the refresh starts
        time.sleep(0.1)
        assert cl.cmd("SET", "user:110", "fresh") == "OK"
        wait_until(lambda: origin.calls("/v1/users/110") == 2, 2, what="refresh call")
        time.sleep(0.5)  # the refresh has ended
        assert redis_server.cmd("GET", "user:110") == b"fresh"
        assert internal_keys(redis_server) == []
    assert fill_event(c, "user", "refreshes") == 1
    assert fill_event(c, "user", "not_stored") == 1


def test_client_write_under_swr_policy_is_fresh_for_ttl_default(redis_server, corral_factory,
                                                                origin):
    pol = policy(ttl={"default": "10s", "jitter": 0},
                 freshness={"stale_while_revalidate": "30s"})
    c = corral_factory(fill_config(redis_server.port, origin.url, [pol], timeout="1s"))
    with c.client() as cl:
        assert cl.cmd("SET", "user:111", "mine") == "OK"
        assert cl.cmd("GET", "user:111") == b"mine"
        time.sleep(0.3)
        # written 0.3 s ago with a 10 s soft TTL: fresh; no refresh, the write stays
        assert origin.calls() == 0
        assert redis_server.cmd("GET", "user:111") == b"mine"
    assert fill_event(c, "user", "stale_served") == 0



# ---------------------------------------------------------------------------------------------
# leases: names, lifetimes, a stuck lease, an origin at max_in_flight


@pytest.mark.parametrize("key", ["user:60", "cart:{61}:items"])
def test_lease_key_during_distributed_fill(redis_server, corral_factory, origin, key):
    lease = lease_key(SECRET, key)  # "__corral:lease:{<tag>}:<digest>", in the key's slot
    origin.set(latency_ms=300)
    pols = [policy(stampede={"single_flight": "distributed"}),
            policy(name="cart", match="cart:{<id:u64>}:items",
                   fill={"origin": "users", "path": "/v1/carts/<id>"},
                   stampede={"single_flight": "distributed"})]
    c = corral_factory(fill_config(redis_server.port, origin.url, pols))
    with c.client() as cl:
        cl.send_cmd("GET", key)
        wait_until(lambda: internal_keys(redis_server) == [lease.encode()], 0.25,
                   interval=0.01, what=f"lease {lease} while the fill runs")
        pttl = redis_server.cmd("PTTL", lease)
        assert 0 < pttl <= 1000, pttl  # lock_ttl: 2 x origin timeout (500 ms)
        assert redis_server.cmd("CLUSTER", "KEYSLOT", lease) == \
            redis_server.cmd("CLUSTER", "KEYSLOT", key)
        v = cl.read_reply()
        assert isinstance(v, bytes), v
    assert internal_keys(redis_server) == []
    assert redis_server.cmd("GET", key) == v


def test_expired_lease_of_a_dead_corral_is_taken_over(redis_server, corral_factory, origin):
    c = corral_factory(fill_config(redis_server.port, origin.url,
                                   [policy(stampede={"single_flight": "distributed"})]))
    # a lease left by a corral that died mid-fill (lock_ttl 1 s here, 400 ms left)
    assert redis_server.cmd("SET", lease_key(SECRET, "user:62"), "dead-token", "PX", "400") == "OK"
    with c.client() as cl:
        t0 = time.monotonic()
        v = cl.cmd("GET", "user:62")
        took = time.monotonic() - t0
    assert body(v)["id"] == "62", v
    assert 0.3 <= took < 1.5, took  # waited for the lease to expire, then filled itself
    assert origin.calls() == 1
    assert redis_server.cmd("GET", "user:62") == v
    assert internal_keys(redis_server) == []
    assert fill_event(c, "user", "lease_losses") >= 1
    assert fill_event(c, "user", "lease_wins") == 1


def test_lease_wait_timeout_answers_on_error(redis_server, corral_factory, origin):
    pol = policy(stampede={"single_flight": "distributed", "wait": "300ms"},
                 fill={"origin": "users", "path": "/v1/users/<id>", "on_error": "error"})
    c = corral_factory(fill_config(redis_server.port, origin.url, [pol]))
    lease = lease_key(SECRET, "user:63")
    assert redis_server.cmd("SET", lease, "other", "PX", "5000") == "OK"
    with c.client() as cl:
        t0 = time.monotonic()
        r = cl.cmd("GET", "user:63")
        took = time.monotonic() - t0
    assert r == RespError("FILLERR users lease wait timed out"), r
    assert 0.25 <= took < 1.0, took
    assert origin.calls() == 0
    assert redis_server.cmd("GET", lease) == b"other"  # not ours to free
    assert fill_event(c, "user", "wait_timeouts") == 1


def test_origin_max_in_flight_overloaded(redis_server, corral_factory, origin):
    origin.set(latency_ms=300)
    cfg = corral_config(redis_server.port)
    cfg["origins"] = {"users": {"base_url": origin.url, "timeout": "1s", "max_in_flight": 1}}
    cfg["policies"] = [policy(fill={"origin": "users", "path": "/v1/users/<id>",
                                    "on_error": "error"})]
    c = corral_factory(to_yaml(cfg) + "\n")
    with c.client() as a, c.client() as b:
        assert body(a.cmd("GET", "user:64"))["id"] == "64"  # one at a time: fine
        a.send_cmd("GET", "user:65")
        time.sleep(0.05)
        assert b.cmd("GET", "user:66") == RespError("FILLERR users overloaded")
        assert body(a.read_reply())["id"] == "65"
    assert origin.calls("/v1/users/66") == 0
    assert fill_event(c, "user", "fill_errors") == 1


@pytest.mark.single_node(SELECT_DB)
def test_no_fill_outside_the_configured_db(redis_server, corral_factory, origin):
    """Fills run only for clients on the configured db (proxy/net/client.cc); a client on
    another db gets a plain miss, and nothing lands in any db."""
    c = corral_factory(fill_config(redis_server.port, origin.url,
                                   [policy(stampede={"single_flight": "distributed"})]))
    with c.client() as cl:
        assert cl.cmd("SELECT", "3") == "OK"
        assert cl.cmd("GET", "user:70") is None
        assert cl.cmd("SELECT", "0") == "OK"
        v = cl.cmd("GET", "user:71")
        assert body(v)["id"] == "71"
    time.sleep(0.1)
    with redis_server.client() as r:
        assert r.cmd("KEYS", "*") == [b"user:71"]
        assert r.cmd("SELECT", "3") == "OK"
        assert r.cmd("KEYS", "*") == []
    assert origin.stats()["paths"] == {"/v1/users/71": 1}


# ---------------------------------------------------------------------------------------------
# 9. audit mode never fills


def test_audit_mode_counts_would_fill_and_never_fills(redis_server, corral_factory, origin):
    c = corral_factory(fill_config(redis_server.port, origin.url, [policy(mode="audit")]))
    with c.client() as cl:
        assert cl.cmd("GET", "user:3") is None
        assert cl.cmd("PING") == "PONG"
    time.sleep(0.2)
    assert origin.calls() == 0
    assert redis_server.cmd("DBSIZE") == 0
    assert fill_event(c, "user", "would_fill") == 1
    assert fill_event(c, "user", "fills") == 0


# ---------------------------------------------------------------------------------------------
# 10, 11. freshness


def test_stale_while_revalidate_serves_old_value_and_refreshes_once(redis_server,
                                                                    corral_factory, origin):
    origin.set(latency_ms=300)
    pol = policy(ttl={"default": "1s", "jitter": 0},
                 freshness={"stale_while_revalidate": "5s"})
    c = corral_factory(fill_config(redis_server.port, origin.url, [pol], timeout="1s"))
    with c.client() as cl:
        v1 = cl.cmd("GET", "user:11")
        assert body(v1)["n"] == 1
        pttl = redis_server.cmd("PTTL", "user:11")
        assert 5800 <= pttl <= 6000, pttl  # soft ttl 1 s + the 5 s window, no jitter
        time.sleep(1.2)
        t0 = time.monotonic()
        v = cl.cmd("GET", "user:11")
        took = time.monotonic() - t0
        assert v == v1
        assert took < 0.2, took
        # more reads during the refresh: still the old value, and no second refresh
        assert cl.pipeline([("GET", "user:11")] * 5) == [v1] * 5
        wait_until(lambda: body(redis_server.cmd("GET", "user:11"))["n"] == 2, 3,
                   what="refreshed value in Redis")
        time.sleep(0.4)
        assert origin.calls("/v1/users/11") == 2
        v2 = cl.cmd("GET", "user:11")
        assert body(v2)["n"] == 2
        pttl = redis_server.cmd("PTTL", "user:11")
        assert 5000 <= pttl <= 6000, pttl
    assert fill_event(c, "user", "refreshes") == 1
    assert fill_event(c, "user", "stale_served") >= 1


def test_stale_if_error_serves_old_value_when_origin_fails(redis_server, corral_factory,
                                                           origin):
    pol = policy(ttl={"default": "1s", "jitter": 0},
                 fill={"origin": "users", "path": "/v1/users/<id>", "on_error": "error"},
                 freshness={"stale_if_error": "5s"})
    c = corral_factory(fill_config(redis_server.port, origin.url, [pol]))
    with c.client() as cl:
        v1 = cl.cmd("GET", "user:12")
        assert body(v1)["n"] == 1
        origin.set(fail=True)
        time.sleep(1.2)
        assert cl.cmd("GET", "user:12") == v1  # stale, not FILLERR
        assert origin.calls("/v1/users/12") == 2
        assert redis_server.cmd("GET", "user:12") == v1
        # a key never filled has no stale value: the on_error reply
        assert cl.cmd("GET", "user:13") == RespError("FILLERR users status 503")
    assert fill_event(c, "user", "stale_served") >= 1
    assert fill_event(c, "user", "fill_errors") == 2


# ---------------------------------------------------------------------------------------------
# 12. max_value_bytes


def test_values_over_max_value_bytes_are_served_not_stored(redis_server, corral_factory,
                                                           origin):
    pol = item_policy(naming={"max_key_bytes": 4096},
                      fill={"origin": "items", "path": "/v1/items/<id>",
                            "max_value_bytes": "1KiB"},
                      stampede={"single_flight": "distributed"})
    c = corral_factory(fill_config(redis_server.port, origin.url, [pol]))
    big_id = "b" * 1100
    with c.client() as cl:
        v = cl.cmd("GET", f"item:{big_id}")
        assert len(v) > 1024 and body(v)["id"] == big_id
        assert redis_server.cmd("EXISTS", f"item:{big_id}") == 0
        assert internal_keys(redis_server) == []
        # not stored: the next GET asks the origin again (and is not held up by a lease)
        t0 = time.monotonic()
        v2 = cl.cmd("GET", f"item:{big_id}")
        assert time.monotonic() - t0 < 0.5
        assert body(v2)["n"] == 2
        # a small body of the same policy is stored
        small = cl.cmd("GET", "item:small")
        assert redis_server.cmd("GET", "item:small") == small
    assert origin.calls(f"/v1/items/{big_id}") == 2
    assert fill_event(c, "item", "not_stored") == 2


# ---------------------------------------------------------------------------------------------
# 13. pipelines keep their order


def test_pipeline_with_fills_keeps_reply_order(redis_server, corral_factory, origin):
    origin.set(latency_ms=100)
    c = corral_factory(fill_config(redis_server.port, origin.url, [USER]))
    with c.client() as cl:
        got = cl.pipeline([("SET", "plain:a", "va"), ("GET", "user:5"), ("GET", "plain:a"),
                           ("GET", "user:5"), ("GET", "user:6"), ("PING",),
                           ("GET", "user:abc"), ("GET", "user:5"), ("INCR", "plain:n")])
        assert got[0] == "OK" and got[2] == b"va" and got[5] == "PONG" and got[8] == 1, got
        assert got[6] == RespError("KEYNAME user: key 'user:abc' does not match user:<id:u64>")
        assert body(got[1])["id"] == "5" and got[3] == got[1] and got[7] == got[1], got
        assert body(got[4])["id"] == "6"
    assert origin.calls("/v1/users/5") == 1
    assert origin.calls("/v1/users/6") == 1


def test_pipeline_fill_then_write_of_the_same_key(redis_server, corral_factory, origin):
    origin.set(latency_ms=100)
    c = corral_factory(fill_config(redis_server.port, origin.url, [USER]))
    with c.client() as cl:
        got = cl.pipeline([("GET", "user:9"), ("SET", "user:9", "mine"), ("GET", "user:9")])
        # the first GET missed in Redis; its fill's lookup may run after the SET and find
        # the SET's value (fill.h: "value -> every waiter gets it"), else it gets the origin's
        assert got[0] == b"mine" or body(got[0])["id"] == "9", got
        assert got[1:] == ["OK", b"mine"], got
        time.sleep(0.2)
        assert cl.cmd("GET", "user:9") == b"mine"
    assert redis_server.cmd("GET", "user:9") == b"mine"
    assert origin.calls() == (0 if got[0] == b"mine" else 1)


# ---------------------------------------------------------------------------------------------
# 14. a client that leaves while its fill is pending


def test_client_disconnect_during_fill(redis_server, corral_factory, origin):
    origin.set(latency_ms=300)
    c = corral_factory(fill_config(redis_server.port, origin.url, [USER]))
    stayer = c.client()
    leavers = []
    for i in range(10):
        cl = c.client()
        # some leave with more requests queued behind the fill
        cl.send_raw(b"".join(
            [b"*2\r\n$3\r\nGET\r\n$7\r\nuser:50\r\n"] +
            [b"*2\r\n$3\r\nGET\r\n$7\r\nuser:51\r\n", b"*1\r\n$4\r\nPING\r\n"] * (i % 3)))
        leavers.append(cl)
    stayer.send_cmd("GET", "user:50")
    time.sleep(0.1)
    for i, cl in enumerate(leavers):
        # RST on close for half of them (unread data / SO_LINGER 0), FIN for the others
        if i % 2:
            cl.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        cl.close()
    v = stayer.read_reply()
    assert body(v)["id"] == "50"
    stayer.close()
    wait_until(lambda: redis_server.cmd("GET", "user:50") == v, 2, what="filled value stored")
    wait_until(lambda: redis_server.cmd("EXISTS", "user:51") == 1, 2,
               what="user:51 filled though every asker left")
    with c.client() as cl:
        assert cl.cmd("GET", "user:50") == v
        assert body(cl.cmd("GET", "user:51"))["n"] == 1
        assert cl.cmd("PING") == "PONG"
    assert origin.calls("/v1/users/50") == 1
    assert origin.calls("/v1/users/51") == 1
    assert c.running()


def test_distributed_waiter_disconnect(redis_server, corral_factory, origin):
    """A client waiting on another corral's lease leaves; the fill still lands, both corrals
    stay up and their gauges return to 0 (checked at teardown)."""
    origin.set(latency_ms=300)
    cfg = fill_config(redis_server.port, origin.url,
                      [policy(stampede={"single_flight": "distributed"})])
    c1, c2 = corral_factory(cfg), corral_factory(cfg)
    with c1.client() as a:
        a.send_cmd("GET", "user:52")
        time.sleep(0.05)
        b = c2.client()
        try:
            b.send_cmd("GET", "user:52")
            # (lease_losses counts lookups that found the lease: one per poll)
            wait_until(lambda: fill_event(c2, "user", "lease_losses") >= 1, 0.2, interval=0.01,
                       what="c2 lost the lease")
        finally:
            b.close()
        v = a.read_reply()
    assert body(v)["id"] == "52"
    time.sleep(0.1)
    with c2.client() as cl:
        assert cl.cmd("GET", "user:52") == v
    assert origin.calls() == 1
    assert internal_keys(redis_server) == []


# ---------------------------------------------------------------------------------------------
# reload and shutdown with fills in flight


def test_reload_during_fill_finishes_under_old_policy(redis_server, corral_factory, origin):
    origin.set(latency_ms=300)
    c = corral_factory(fill_config(redis_server.port, origin.url, [USER]))
    with c.client() as a, c.client() as b:
        a.send_cmd("GET", "user:80")
        time.sleep(0.05)
        c.write_config(fill_config(redis_server.port, origin.url,
                                   [policy(ttl={"default": "200s", "jitter": 0})]))
        c.signal(1)  # SIGHUP

        def reloaded():
            assert b.cmd("SET", "user:81", "x") == "OK"
            return redis_server.cmd("PTTL", "user:81") > 100000
        wait_until(reloaded, 5, what="new policy in force")
        v = a.read_reply()
        assert body(v)["id"] == "80"
        # the fill that started under the old policy stored with the old TTL
        assert 54000 - 2000 <= redis_server.cmd("PTTL", "user:80") <= 60000
        # a fill under the new policy
        v2 = b.cmd("GET", "user:82")
        assert body(v2)["id"] == "82"
        assert 199000 <= redis_server.cmd("PTTL", "user:82") <= 200000
    assert fill_event(c, "user", "fills") == 2
    assert c.metrics()["corral_config_reload_failures_total"] == 0


def test_reply_after_a_reload_that_renamed_the_origin_fills_from_the_old_one(
        redis_server, corral_factory, origin):
    """A GET decided before a reload but answered by Redis after it fills from the origin of
    the policy that decided it, even when the new config has no origin of that name."""
    c = corral_factory(fill_config(redis_server.port, origin.url, [USER]))
    renamed = corral_config(redis_server.port)
    renamed["origins"] = {"users2": {"base_url": origin.url, "timeout": "500ms"}}
    renamed["policies"] = [policy(fill={"origin": "users2", "path": "/v1/users/<id>"})]
    with c.client() as a, c.client() as b:
        assert a.cmd("PING") == "PONG"
        # Hold every Redis client (corral's connections too) so the GET's reply waits.
        assert redis_server.cmd("CLIENT", "PAUSE", "700", "ALL") == "OK"
        a.send_cmd("GET", "user:83")
        time.sleep(0.1)
        c.write_config(to_yaml(renamed) + "\n")
        c.signal(1)  # SIGHUP: compiled and picked up while Redis is paused
        time.sleep(0.3)
        v = a.read_reply()
        assert body(v)["id"] == "83", v
        assert origin.calls("/v1/users/83") == 1
        assert b.cmd("GET", "user:84") is not None  # the new policy fills too
    assert fill_event(c, "user", "fill_errors") == 0
    assert c.metrics()["corral_config_reload_failures_total"] == 0


def test_sigterm_with_fills_in_flight_exits_cleanly(redis_server, corral_factory, origin):
    origin.set(latency_ms=400)
    c = corral_factory(fill_config(redis_server.port, origin.url, [USER], timeout="1s"))
    conns = [c.client() for _ in range(5)]
    try:
        for i, cl in enumerate(conns):
            cl.send_cmd("GET", f"user:{90 + i % 2}")
        wait_until(lambda: origin.calls() == 2, 1, what="both fills at the origin")
        c.signal(15)  # SIGTERM
        assert c.wait_exit(10) == 0, c.stderr_tail()
        got = [cl.read_reply() for cl in conns]
        # drained: requests in flight finish within shutdown_timeout (5 s)
        assert [body(r)["id"] for r in got] == [str(90 + i % 2) for i in range(5)], got
        assert all(cl.expect_eof(2) for cl in conns)
    finally:
        for cl in conns:
            cl.close()
    c.check_no_sanitizer_report()


# ---------------------------------------------------------------------------------------------
# errors keep Redis's text


def test_wrongtype_error_text_on_freshness_policy(redis_server, corral_factory, origin):
    pols = [USER, policy(name="fresh", match="fresh:<id:u64>",
                         freshness={"stale_while_revalidate": "30s"})]
    c = corral_factory(fill_config(redis_server.port, origin.url, pols))
    assert redis_server.cmd("HSET", "user:1", "f", "v") == 1
    assert redis_server.cmd("HSET", "fresh:1", "f", "v") == 1
    want = RespError("WRONGTYPE Operation against a key holding the wrong kind of value")
    with c.client() as cl:
        assert cl.cmd("GET", "user:1") == want
        assert cl.cmd("GET", "fresh:1") == want
    assert origin.calls() == 0


def test_mget_fills_each_missing_key(redis_server, corral_factory, origin):
    """fill.commands [GET, MGET]: each missing key of an MGET is filled (a few at a time);
    present keys, keys of other policies and keys whose origin says 404 stay as they are."""
    origin.set(latency_ms=20)
    pol = policy(fill={"origin": "users", "path": "/v1/users/<id>", "commands": ["GET", "MGET"]})
    items = {"name": "item", "match": "item:<id:slug>", "ttl": {"default": "60s"},
             "fill": {"origin": "items", "path": "/v1/items/<id>"}}  # GET only
    c = corral_factory(fill_config(redis_server.port, origin.url, [pol, items]))
    assert redis_server.cmd("SET", "user:2", "present") == "OK"
    keys = [f"user:{i}" for i in range(1, 21)]
    with c.client() as cl:
        got = cl.cmd("MGET", "item:a", *keys, "other")
        assert got[0] is None  # item's policy fills on GET only
        assert got[-1] is None  # no policy
        assert got[2] == b"present"
        for k, v in zip(keys, got[1:-1]):
            if k != "user:2":
                assert body(v)["id"] == k[5:], (k, v)
        assert origin.calls() == 19  # user:1..20 but user:2
        assert origin.calls("/v1/items/a") == 0
        # stored: a second MGET is all hits
        assert cl.cmd("MGET", *keys) == got[1:-1]
        assert origin.calls() == 19
        # in a pipeline, order holds
        assert cl.pipeline([("MGET", "user:30", "user:31"), ("PING",), ("GET", "user:30")])[1:] \
            == ["PONG", cl.cmd("GET", "user:30")]
    assert fill_event(c, "user", "fills") == 21
