"""Policies v1 through corral and a real redis-server (docs/policies.md):
naming (-KEYNAME), TTL governance (visible with PTTL on Redis itself), rate limits
(-RATELIMITED), command rules (-DENIED), audit mode, /metrics and /policies. corral-only."""

import json
import os
import subprocess
import threading
import time

import pytest

from harness import RespConn, RespError, corral_bin, corral_config, to_yaml, wait_until

BASE_POLICIES = """
global:
  unmatched_keys: allow
  commands: {deny: [FLUSHALL, FLUSHDB], audit: [KEYS]}
defaults: {ttl: {jitter: 10%}}
policies:
  - name: user
    match: "user:<id:u64>"
    ttl: {default: 60s, max: 1h}
  - name: sess
    match: "sess:<sid:hex{32,64}>"
    ttl: {default: 30s, min: 10s, max: 2h, require: true, on_violation: reject}
  - name: profile
    match: "profile:<id:u64>"
    ttl: {default: 20s, require: true}
  - name: trial
    match: "trial:<id:u64>"
    mode: audit
    ttl: {default: 5s, require: true, on_violation: reject}
    rate_limits:
      - {name: trial-limit, rate: 1/s, burst: 1}
  - name: api
    match: "api:<tenant:slug>:<id:u64>"
    rate_limits:
      - {name: api-tenant, rate: 5/s, burst: 5, key_by: ["capture:tenant"], commands: [GET]}
      - {name: api-shadow, rate: 1/s, burst: 1, on_limit: shadow}
"""

SESS = "sess:" + "ab" * 16


def config_text(redis_port, policies=BASE_POLICIES, **overrides):
    return to_yaml(corral_config(redis_port, **overrides)) + "\n" + policies


def is_err(r, prefix):
    return isinstance(r, RespError) and r.startswith(prefix)


def test_key_naming_errors_and_audit(redis_server, corral_factory):
    c = corral_factory(config_text(redis_server.port))
    with c.client() as cl:
        assert cl.cmd("SET", "user:42", "x") == "OK"
        r = cl.cmd("GET", "user:abc")
        assert r == RespError("KEYNAME user: key 'user:abc' does not match user:<id:u64>"), r
        # every key of a command: the second key of MGET breaks its template
        r = cl.cmd("MGET", "user:42", "sess:nothex")
        assert r == RespError("KEYNAME sess: key 'sess:nothex' does not match "
                              "sess:<sid:hex{32,64}>"), r
        # audit mode: forwarded unchanged
        assert cl.cmd("SET", "trial:x", "1") == "OK"
        assert redis_server.cmd("GET", "trial:x") == b"1"
        # unmatched keys are allowed by this config
        assert cl.cmd("SET", "other", "1") == "OK"
        # the refused request never reached Redis; the pipeline keeps its order
        assert cl.pipeline([("GET", "user:42"), ("GET", "user:x"), ("GET", "user:42")]) == \
            [b"x", RespError("KEYNAME user: key 'user:x' does not match user:<id:u64>"), b"x"]
    m = c.metrics()
    assert m['corral_policy_naming_violations_total{policy="user",action="rejected"}'] == 2
    assert m['corral_policy_naming_violations_total{policy="sess",action="rejected"}'] == 1
    assert m['corral_policy_naming_violations_total{policy="trial",action="audited"}'] == 1
    assert "policy audit client=" in c.stderr_text()
    assert "policy trial (mode audit) would refuse key 'trial:x'" in c.stderr_text()


def test_unmatched_keys_reject(redis_server, corral_factory):
    pol = BASE_POLICIES.replace("unmatched_keys: allow", "unmatched_keys: reject")
    c = corral_factory(config_text(redis_server.port, pol))
    with c.client() as cl:
        r = cl.cmd("SET", "stray", "1")
        assert r == RespError("KEYNAME key 'stray' matches no policy "
                              "(global.unmatched_keys: reject)"), r
        assert cl.cmd("PING") == "PONG"
        assert cl.cmd("DBSIZE") == 0
    assert c.metrics()['corral_unmatched_keys_total{action="rejected"}'] == 1


def test_ttl_default_clamp_and_reject(redis_server, corral_factory):
    c = corral_factory(config_text(redis_server.port))
    with c.client() as cl:
        # SET without expiry: the default TTL with jitter (10%): within [54s, 60s]
        assert cl.cmd("SET", "user:1", "v") == "OK"
        pttl = redis_server.cmd("PTTL", "user:1")
        assert 54000 - 100 <= pttl <= 60000, pttl
        # SET EX above max: clamped to 1h (jittered down by at most 10%)
        assert cl.cmd("SET", "user:2", "v", "EX", "999999") == "OK"
        pttl = redis_server.cmd("PTTL", "user:2")
        assert 3240000 - 1000 <= pttl <= 3600000, pttl
        # SET with a TTL inside the bounds is left alone
        assert cl.cmd("SET", "user:3", "v", "EX", "100") == "OK"
        assert 99000 <= redis_server.cmd("PTTL", "user:3") <= 100000
        # EXPIRE above max: clamped; the reply is Redis's own
        assert cl.cmd("EXPIRE", "user:3", "86400") == 1
        assert redis_server.cmd("PTTL", "user:3") <= 3600000
        # SETEX and GETEX
        assert cl.cmd("SETEX", "user:4", "86400", "v") == "OK"
        assert redis_server.cmd("PTTL", "user:4") <= 3600000
        assert cl.cmd("GETEX", "user:4", "EX", "86400") == b"v"
        assert redis_server.cmd("PTTL", "user:4") <= 3600000

        # on_violation reject (sess: min 10s, max 2h, require)
        r = cl.cmd("SET", SESS, "v", "EX", "5")
        assert is_err(r, "TTL sess: "), r
        assert redis_server.cmd("EXISTS", SESS) == 0
        r = cl.cmd("SET", SESS, "v")
        assert is_err(r, "TTL sess: "), r
        assert cl.cmd("SET", SESS, "v", "EX", "60") == "OK"
        r = cl.cmd("PERSIST", SESS)
        assert is_err(r, "TTL sess: "), r
        assert redis_server.cmd("PTTL", SESS) > 0

        # audit: counted, unchanged
        assert cl.cmd("SET", "trial:1", "v") == "OK"
        assert redis_server.cmd("PTTL", "trial:1") == -1
    m = c.metrics()
    assert m['corral_policy_ttl_total{policy="user",action="fixed"}'] == 5
    assert m['corral_policy_ttl_total{policy="sess",action="rejected"}'] == 3
    assert m['corral_policy_ttl_total{policy="trial",action="audited"}'] == 1


@pytest.mark.single_node("a MULTI writes profile:9 and profile:8, whose slots are on two "
                          "cluster nodes (CROSSSLOT there)")
def test_type_writes_get_hidden_pexpire(redis_server, corral_factory):
    c = corral_factory(config_text(redis_server.port))
    with c.client() as cl:
        # the client sees exactly its own replies, in order
        got = cl.pipeline([("HSET", "profile:1", "a", "1"), ("SADD", "profile:2", "x"),
                           ("RPUSH", "profile:3", "a", "b"), ("GET", "user:99"),
                           ("HSET", "profile:1", "b", "2")])
        assert got == [1, 1, 2, None, 1], got
        for k in ("profile:1", "profile:2", "profile:3"):
            pttl = redis_server.cmd("PTTL", k)
            assert 18000 - 100 <= pttl <= 20000, (k, pttl)
        # NX: an existing TTL is kept
        assert cl.cmd("EXPIRE", "profile:1", "5") == 1
        assert cl.cmd("HSET", "profile:1", "c", "3") == 1
        assert redis_server.cmd("PTTL", "profile:1") <= 5000
        # inside MULTI the EXEC reply is unchanged; the TTL follows the transaction
        assert cl.cmd("MULTI") == "OK"
        assert cl.cmd("HSET", "profile:9", "f", "v") == "QUEUED"
        assert cl.cmd("SADD", "profile:8", "m") == "QUEUED"
        assert cl.cmd("EXEC") == [1, 1]
        assert cl.cmd("PING") == "PONG"
        assert redis_server.cmd("PTTL", "profile:9") > 0
        assert redis_server.cmd("PTTL", "profile:8") > 0
        # MSET is handled per key
        assert cl.cmd("MSET", "profile:20", "a", "user:20", "b", "other:20", "c") == "OK"
        assert cl.cmd("PING") == "PONG"
        assert redis_server.cmd("PTTL", "profile:20") > 0
        assert redis_server.cmd("PTTL", "user:20") > 0
        assert redis_server.cmd("PTTL", "other:20") == -1


def test_policy_error_inside_multi_aborts_exec(redis_server, corral_factory):
    c = corral_factory(config_text(redis_server.port))
    with c.client() as cl:
        assert cl.cmd("MULTI") == "OK"
        assert cl.cmd("SET", "user:5", "v") == "QUEUED"
        r = cl.cmd("GET", "user:bad")
        assert is_err(r, "KEYNAME user:"), r
        r = cl.cmd("EXEC")
        assert r == RespError("EXECABORT Transaction discarded because of previous errors."), r
        assert redis_server.cmd("EXISTS", "user:5") == 0
        assert cl.cmd("SET", "user:5", "w") == "OK"


def test_rate_limits_by_capture_shadow_and_audit(redis_server, corral_factory):
    c = corral_factory(config_text(redis_server.port))
    with c.client() as cl:
        got = cl.pipeline([("GET", f"api:acme:{i}") for i in range(20)])
        ok = [r for r in got if r is None]
        limited = [r for r in got if is_err(r, "RATELIMITED api-tenant retry_after_ms=")]
        # burst 5 at once; a few more may pass if the 20 requests span > 200 ms
        assert 5 <= len(ok) <= 7, got
        assert len(ok) + len(limited) == 20, got
        ms = int(limited[0].message.rsplit("=", 1)[1])
        assert 1 <= ms <= 200, limited[0]
        # another tenant has its own bucket
        assert cl.cmd("GET", "api:other:1") is None
        # SET is not limited by api-tenant (commands: [GET]); api-shadow never refuses
        assert all(r == "OK" for r in cl.pipeline([("SET", "api:acme:1", "v")] * 5))
        # audit-mode policy: over its limit but never refused
        assert all(r is None for r in cl.pipeline([("GET", "trial:7")] * 5))
    m = c.metrics()
    assert m['corral_ratelimit_requests_total{limit="api-tenant",result="rejected"}'] == \
        len(limited)
    assert m['corral_ratelimit_requests_total{limit="api-tenant",result="admitted"}'] == \
        len(ok) + 1
    # api-shadow sees what api-tenant let through (checks stop at the first refusal)
    assert m['corral_ratelimit_requests_total{limit="api-shadow",result="shadowed"}'] + \
        m['corral_ratelimit_requests_total{limit="api-shadow",result="admitted"}'] == len(ok) + 6
    assert m['corral_ratelimit_requests_total{limit="api-shadow",result="rejected"}'] == 0
    assert m['corral_ratelimit_requests_total{limit="trial-limit",result="shadowed"}'] >= 3


def test_global_rate_limit_by_client_name(redis_server, corral_factory):
    pol = BASE_POLICIES.replace(
        "  commands: {deny: [FLUSHALL, FLUSHDB], audit: [KEYS]}\n",
        "  commands: {deny: [FLUSHALL, FLUSHDB], audit: [KEYS]}\n"
        "  rate_limits:\n"
        "    - {name: per-client, rate: 3/s, burst: 3, key_by: [client], commands: ['@write']}\n")
    c = corral_factory(config_text(redis_server.port, pol))
    with c.client() as a, c.client() as b:
        assert a.cmd("CLIENT", "SETNAME", "app-a") == "OK"
        assert b.cmd("CLIENT", "SETNAME", "app-b") == "OK"
        ra = a.pipeline([("SET", "user:1", "v")] * 6)
        rb = b.pipeline([("SET", "user:2", "v")] * 3)
        assert ra[:3] == ["OK"] * 3 and all(is_err(r, "RATELIMITED per-client") for r in ra[3:]), ra
        assert rb == ["OK"] * 3, rb
        # reads are not in '@write'
        assert a.pipeline([("GET", "user:1")] * 5) == [b"v"] * 5
    # two clients' buckets, dropped once idle (an idle bucket decides like a fresh one)
    assert c.metrics()["corral_ratelimit_buckets"] == 2
    wait_until(lambda: c.metrics()["corral_ratelimit_buckets"] == 0, 5,
               what="idle rate-limit buckets dropped")


def test_scope_global_limit_is_shared_by_two_corrals(redis_server, corral_factory):
    # One bucket per key for the whole fleet: two corrals on the same Redis (or Cluster) admit
    # the burst between them, not each. Never more; a credit the first corral took in its
    # batch and did not spend is lost to the second (the under-admission of batches).
    pol = BASE_POLICIES.replace(
        "  commands: {deny: [FLUSHALL, FLUSHDB], audit: [KEYS]}\n",
        "  commands: {deny: [FLUSHALL, FLUSHDB], audit: [KEYS]}\n"
        "  rate_limits:\n"
        "    - {name: fleet-writes, rate: 1/10s, burst: 5, key_by: [key], commands: [SET],\n"
        "       scope: global, on_unavailable: deny}\n")
    c1 = corral_factory(config_text(redis_server.port, pol))
    c2 = corral_factory(config_text(redis_server.port, pol))
    with c1.client() as a, c2.client() as b:
        ra = a.pipeline([("SET", "user:77", "a")] * 4)
        rb = b.pipeline([("SET", "user:77", "b")] * 4)
        got = ra + rb
        ok = [r for r in got if r == "OK"]
        refused = [r for r in got if is_err(r, "RATELIMITED fleet-writes retry_after_ms=")]
        assert ra == ["OK"] * 4, ra
        assert 4 <= len(ok) <= 5 and len(refused) == 8 - len(ok), got
        v = a.cmd("GET", "user:77")
        assert v in (b"a", b"b")
        # another key is another bucket; reads are not limited
        assert b.cmd("SET", "user:78", "x") == "OK"
        assert a.pipeline([("GET", "user:77")] * 3) == [v] * 3
    m1, m2 = c1.metrics(), c2.metrics()
    adm = 'corral_ratelimit_requests_total{limit="fleet-writes",result="admitted"}'
    assert m1[adm] + m2[adm] == len(ok) + 1
    leased = 'corral_ratelimit_global_credits_total{limit="fleet-writes",event="leased"}'
    # Redis granted the burst of user:77 and one credit of user:78, no more
    assert len(ok) + 1 <= m1[leased] + m2[leased] <= 6
    assert m1['corral_ratelimit_global_unavailable_total{limit="fleet-writes"}'] == 0
    wait_until(lambda: c1.metrics()["corral_ratelimit_global_sidecars"] == 2, 5,
               what="both corrals counted by the heartbeat")


def test_denied_and_audited_commands(redis_server, corral_factory):
    c = corral_factory(config_text(redis_server.port))
    with c.client() as cl:
        assert cl.cmd("SET", "user:1", "v") == "OK"
        r = cl.cmd("FLUSHALL")
        assert r == RespError("DENIED command 'flushall' is denied by global.commands.deny"), r
        r = cl.cmd("flushdb", "async")
        assert is_err(r, "DENIED command 'flushdb'"), r
        assert cl.cmd("KEYS", "user:*") == [b"user:1"]
        assert redis_server.cmd("DBSIZE") == 1
    m = c.metrics()
    assert m["corral_commands_denied_total"] == 2
    assert m["corral_commands_audited_total"] == 1


def test_resp3_pipe_mode_errors_keep_order(redis_server, corral_factory):
    c = corral_factory(config_text(redis_server.port))
    with c.client() as cl:
        hello = cl.cmd("HELLO", "3")
        assert isinstance(hello, dict), hello
        got = cl.pipeline([("SET", "user:1", "v"), ("GET", "user:nope"), ("GET", "user:1")])
        assert got[0] == "OK" and got[2] == b"v", got
        assert got[1] == RespError("KEYNAME user: key 'user:nope' does not match user:<id:u64>")
        # the SET rewrite applies in pipe mode too
        assert 54000 - 100 <= redis_server.cmd("PTTL", "user:1") <= 60000


def test_hit_miss_and_metrics_match_traffic(redis_server, corral_factory):
    c = corral_factory(config_text(redis_server.port))
    with c.client() as cl:
        cl.cmd("SET", "user:1", "v")
        got = cl.pipeline([("GET", "user:1")] * 3 + [("GET", "user:2")] * 2)
        assert got == [b"v"] * 3 + [None] * 2
    m = c.metrics()
    assert m['corral_policy_reads_total{policy="user",result="hit"}'] == 3
    assert m['corral_policy_reads_total{policy="user",result="miss"}'] == 2
    assert m['corral_policy_requests_total{policy="user"}'] == 6
    assert m['corral_command_requests_total{command="get"}'] == 5
    assert m["corral_request_duration_seconds_count"] >= 6
    assert m['corral_request_duration_seconds_bucket{le="+Inf"}'] == \
        m["corral_request_duration_seconds_count"]
    status, body = c.http_get("/policies")
    assert status == 200
    doc = json.loads(body)
    names = [p["name"] for p in doc["policies"]]
    assert names == ["user", "sess", "profile", "trial", "api"]
    assert doc["policies"][0]["ttl"]["default_ms"] == 60000
    assert doc["policies"][0]["ttl"]["jitter"] == pytest.approx(0.1)
    assert doc["global"]["commands"]["deny"] == ["flushall", "flushdb"]


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


POLICY_FILE_V1 = """policies:
  - name: item
    match: "item:<id:u64>"
    ttl: {default: 100s}
"""
POLICY_FILE_V2 = """policies:
  - name: item
    match: "item:<id:u64>"
    ttl: {default: 200s, jitter: 0}
  - name: order
    match: "order:<id:u64>"
"""
POLICY_FILE_BROKEN = """policies:
  - name: item
    match: "item:<id:u46>"
"""


def test_policy_file_edit_under_load(redis_server, corral_factory, tmp_path):
    pol_dir = tmp_path / "policies"
    pol_dir.mkdir()
    pol_file = str(pol_dir / "items.yaml")
    write_atomic(pol_file, POLICY_FILE_V1)
    cfg = to_yaml(corral_config(redis_server.port)) + \
        f"\nglobal: {{unmatched_keys: reject}}\npolicy_files: [{pol_dir}]\n"
    c = corral_factory(cfg)

    stop = threading.Event()
    failures = []
    counts = [0, 0]

    def load(idx):
        # Pipelined SET/GET of valid item keys, checked reply by reply, until told to stop.
        with RespConn(c.port, timeout=5) as cl:
            i = 0
            while not stop.is_set() and i < 200000:
                key = f"item:{idx + 1}{i}"
                got = cl.pipeline([("SET", key, "v"), ("GET", key)])
                if got != ["OK", b"v"]:
                    failures.append(got)
                counts[idx] += 1
                i += 1

    threads = [threading.Thread(target=load, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: sum(counts) > 200, 10, what="load running")
        with c.client() as cl:
            assert is_err(cl.cmd("SET", "order:1", "v"), "KEYNAME key 'order:1' matches no")
            write_atomic(pol_file, POLICY_FILE_V2)
            # the new file is picked up (polled every second) without a restart
            wait_until(lambda: cl.cmd("SET", "order:1", "v") == "OK", 10,
                       what="order policy in force")
            cl.cmd("SET", "item:x1", "v")  # (refused: not a u64; just traffic)
            assert cl.cmd("SET", "item:77", "v") == "OK"
            pttl = redis_server.cmd("PTTL", "item:77")
            assert 199000 <= pttl <= 200000, pttl

            # a broken edit is refused; the running policies stay
            before = c.metrics()["corral_config_reload_failures_total"]
            write_atomic(pol_file, POLICY_FILE_BROKEN)
            wait_until(lambda: c.metrics()["corral_config_reload_failures_total"] == before + 1,
                       10, what="reload failure counted")
            assert cl.cmd("SET", "order:2", "v") == "OK"
            assert is_err(cl.cmd("GET", "item:nope"), "KEYNAME item:")
            # SIGHUP with the broken file: refused again, still the old policies
            c.signal(1)
            wait_until(lambda: c.metrics()["corral_config_reload_failures_total"] == before + 2,
                       10, what="SIGHUP reload failure counted")
            assert cl.cmd("SET", "order:3", "v") == "OK"
            time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert failures == [], failures[:3]
    assert sum(counts) > 400
    assert "items.yaml:3:12" in c.stderr_text()


def test_check_config_validates_policies(tmp_path, redis_server):
    bad = tmp_path / "bad.yaml"
    bad.write_text(to_yaml(corral_config(redis_server.port)) + """
policies:
  - name: a
    match: "user:<id:u64>"
  - name: b
    match: "user:<name:seg>"
""")
    r = subprocess.run([corral_bin(), "--check-config", str(bad)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 1, r
    assert f"{bad}:" in r.stderr and "ambiguous" in r.stderr, r.stderr
    good = tmp_path / "good.yaml"
    good.write_text(to_yaml(corral_config(redis_server.port)) + "\n" + BASE_POLICIES)
    r = subprocess.run([corral_bin(), "--check-config", str(good)], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr
