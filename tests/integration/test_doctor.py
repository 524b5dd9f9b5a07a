"""corral doctor against real redis-servers with seeded problems, and corral health against a
running corral. Each doctor case is run twice (text and --json) and judged by its exit code
and by the finding it must name; corral-only (the subcommands are corral's)."""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile

import pytest

from harness import Corral, RedisServer, corral_bin, corral_config, free_port, to_yaml, wait_until

PASSWORD = "s3cret-Pw-9f4e"  # never to appear in doctor's output
WRONG = "wr0ng-Pw-77ab"

# A cache policy (a default TTL, required) and a durable one (no fill, no TTL rules).
CACHE = {"name": "users", "match": "user:<id:u64>", "ttl": {"default": "1h", "require": True}}
DURABLE = {"name": "jobs", "match": "jobs:<queue>"}


@pytest.fixture
def servers(corral_only):
    """servers(**kw) -> a started RedisServer; every one is killed at teardown."""
    started = []

    def make(**kw):
        s = RedisServer(**kw)
        started.append(s)
        return s

    yield make
    for s in started:
        s.close()


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="corral-it-doctor-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def write_config(workdir, port, policies=(), **upstream):
    cfg = {"upstream": {"primary": f"127.0.0.1:{port}", **upstream},
           "policies": list(policies) if policies else []}
    path = os.path.join(workdir, "corral.yaml")
    with open(path, "w") as f:
        f.write(to_yaml(cfg) + "\n")
    return path


def run(*args, timeout=60.0, env=None):
    p = subprocess.run([corral_bin(), *args], capture_output=True, timeout=timeout,
                       stdin=subprocess.DEVNULL, env=env)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def doctor(*args, env=None):
    """Runs doctor in text and in JSON; both exit codes must agree. Returns (code, text, obj)."""
    code, text, err = run("doctor", *args, env=env)
    jcode, jtext, jerr = run("doctor", *args, "--json", env=env)
    assert code == jcode, (code, jcode, text, jtext)
    assert jtext.count("\n") == 1, jtext
    obj = json.loads(jtext)
    assert obj["summary"]["exit_code"] == code, obj
    return code, text + err, obj


def findings(obj, check, policy=None):
    return [f for f in obj["findings"]
            if f["check"] == check and (policy is None or f["policy"] == policy)]


def one(obj, check, policy=None):
    got = findings(obj, check, policy)
    assert len(got) == 1, (check, policy, obj["findings"])
    return got[0]


def healthy_redis(servers, **kw):
    s = servers(**kw)
    s.cmd("CONFIG", "SET", "maxmemory", str(64 << 20))
    s.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    return s


def test_healthy_setup_exits_0(servers, workdir):
    r = healthy_redis(servers)
    for i in range(20):
        assert r.cmd("SET", f"user:{i}", "v", "EX", "3600") == "OK"
    code, text, obj = doctor("--config", write_config(workdir, r.port, [CACHE]))
    assert code == 0, text
    assert obj["summary"]["status"] == "healthy"
    assert obj["summary"]["warning"] == 0 and obj["summary"]["error"] == 0, obj
    assert obj["facts"]["version"].startswith("7."), obj
    assert obj["facts"]["mode"] == "standalone", obj
    assert "20 keys scanned" in one(obj, "keyspace_sample")["seen"], obj
    assert "summary: 0 error(s), 0 warning(s)" in text and "healthy (exit 0)" in text, text
    for check in ("server", "maxmemory", "eviction_policy", "memory_use", "latency", "slowlog",
                  "evictions", "hit_ratio", "fragmentation"):
        assert one(obj, check)["severity"] == "ok", check


def test_no_maxmemory_is_an_error(servers, workdir):
    r = servers()
    code, text, obj = doctor("--config", write_config(workdir, r.port, [CACHE]))
    assert code == 2, text
    f = one(obj, "maxmemory")
    assert f["severity"] == "error" and "maxmemory 0" in f["seen"] and f["action"], f
    assert "[error]   maxmemory" in text, text
    # Setting it clears the error (the check reads the server, not a constant).
    r.cmd("CONFIG", "SET", "maxmemory", str(64 << 20))
    r.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    code, text, obj = doctor("--config", write_config(workdir, r.port, [CACHE]))
    assert code == 0 and one(obj, "maxmemory")["severity"] == "ok", text


def test_big_value_found_with_its_policy(servers, workdir):
    r = healthy_redis(servers)
    assert r.cmd("SET", "user:7", "x" * (200 * 1024), "EX", "3600") == "OK"
    assert r.cmd("SET", "user:8", "small", "EX", "3600") == "OK"
    code, text, obj = doctor("--config", write_config(workdir, r.port, [CACHE]))
    assert code == 1, text
    f = one(obj, "big_values", "users")
    assert f["severity"] == "warning" and "1 of 2 sampled keys" in f["seen"], f
    # MEMORY USAGE: the allocator's size class of 200 KiB and the key's overhead.
    assert re.search(r"user:7 \(2[0-9]{2}(\.[0-9])? KiB\)", f["seen"]), f
    assert "user:8" not in f["seen"], f
    assert "[warning] big_values (policy users)" in text and "user:7 (2" in text, text
    # The threshold is a flag: above the value's size, nothing is big.
    code, _, obj = doctor("--config", write_config(workdir, r.port, [CACHE]), "--big-value",
                          "1MiB")
    assert code == 0 and not findings(obj, "big_values"), obj


def test_keys_without_required_ttl(servers, workdir):
    r = healthy_redis(servers)
    for i in (1, 2, 3):
        r.cmd("SET", f"user:{i}", "v")  # written around corral: no TTL
    r.cmd("SET", "user:4", "v", "EX", "600")
    code, text, obj = doctor("--config", write_config(workdir, r.port, [CACHE]))
    assert code == 1, text
    f = one(obj, "keys_no_ttl", "users")
    assert f["severity"] == "warning" and "3 of 4 sampled keys have no TTL" in f["seen"], f
    assert "user:4" not in f["seen"], f
    assert "[warning] keys_no_ttl (policy users)" in text, text


def test_key_breaking_template_and_key_matching_no_policy(servers, workdir):
    r = healthy_redis(servers)
    r.cmd("SET", "user:12", "v", "EX", "600")
    r.cmd("SET", "user:abc", "v", "EX", "600")  # user:<id:u64> wants digits
    r.cmd("SET", "other:1", "v", "EX", "600")
    r.cmd("SET", "__corral:lease:{user:1}:0123456789abcdef", "1", "EX", "60")  # corral's own
    code, text, obj = doctor("--config", write_config(workdir, r.port, [CACHE]))
    assert code == 1, text
    f = one(obj, "keys_break_template", "users")
    assert "1 of 2 sampled keys" in f["seen"] and "user:abc" in f["seen"], f
    assert "user:12" not in f["seen"], f
    u = one(obj, "keys_unmatched")
    assert "1 of 3 sampled keys match no policy: other:1" in u["seen"], u
    assert "1 corral-internal keys skipped" in one(obj, "keyspace_sample")["seen"], obj
    assert "keys_break_template (policy users)" in text and "keys_unmatched" in text, text


def test_wrong_eviction_policy(servers, workdir):
    r = servers()
    r.cmd("CONFIG", "SET", "maxmemory", str(64 << 20))  # maxmemory-policy stays noeviction
    code, text, obj = doctor("--config", write_config(workdir, r.port, [CACHE]))
    assert code == 2, text
    f = one(obj, "eviction_policy")
    assert f["severity"] == "error" and "maxmemory-policy noeviction" in f["seen"], f
    assert "users" in f["seen"] and "allkeys-lru" in f["action"], f
    assert "[error]   eviction_policy" in text, text
    # A durable policy beside the cache: allkeys-* would evict its keys.
    r.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    code, _, obj = doctor("--config", write_config(workdir, r.port, [CACHE, DURABLE]))
    f = one(obj, "eviction_policy")
    assert code == 2 and f["severity"] == "error" and "jobs" in f["seen"], f
    # ... and volatile-* with every cache key's TTL required is the right answer.
    r.cmd("CONFIG", "SET", "maxmemory-policy", "volatile-lru")
    code, _, obj = doctor("--config", write_config(workdir, r.port, [CACHE, DURABLE]))
    assert one(obj, "eviction_policy")["severity"] == "ok", obj
    assert code == 0, obj


def test_wrong_password_exit_2_and_never_shown(servers, workdir):
    r = healthy_redis(servers, password=PASSWORD)
    for args in (["--config", write_config(workdir, r.port, [CACHE], password=WRONG)],
                 [f"redis://:{WRONG}@127.0.0.1:{r.port}"],
                 [f"redis://default:{WRONG}@127.0.0.1:{r.port}/0"]):
        code, text, obj = doctor(*args)
        assert code == 2, text
        f = one(obj, "connect")
        assert f["severity"] == "error" and "WRONGPASS" in f["seen"], f
        assert WRONG not in text and WRONG not in json.dumps(obj), text
        assert PASSWORD not in text, text
    # The right password, from the environment as the proxy reads it.
    path = write_config(workdir, r.port, [CACHE], password_env="DOCTOR_IT_PW")
    p = subprocess.run([corral_bin(), "doctor", "--config", path], capture_output=True,
                       timeout=60, env={**os.environ, "DOCTOR_IT_PW": PASSWORD})
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    assert PASSWORD.encode() not in p.stdout + p.stderr


def test_cannot_connect_exit_2_with_reason(corral_only):
    port = free_port()  # nothing listens there
    code, text, obj = doctor(f"redis://127.0.0.1:{port}", "--timeout", "500ms")
    assert code == 2, text
    assert "cannot connect" in one(obj, "connect")["seen"], obj


def test_url_form_with_db_and_password(servers):
    r = healthy_redis(servers, password=PASSWORD)
    with r.client() as c:
        assert c.cmd("SELECT", "2") == "OK"
        assert c.cmd("SET", "blob", "y" * (150 * 1024)) == "OK"
    code, text, obj = doctor(f"redis://:{PASSWORD}@127.0.0.1:{r.port}/2")
    assert code == 1, text
    assert obj["target"] == f"127.0.0.1:{r.port}", obj
    assert obj["facts"]["policies"] == "none (no config)", obj
    assert re.search(r"blob \(1[5-9][0-9](\.[0-9])? KiB\)", one(obj, "big_values")["seen"]), obj
    assert "db 2" in one(obj, "keyspace_sample")["seen"], obj
    assert PASSWORD not in text and PASSWORD not in json.dumps(obj), text
    # db 0 holds nothing: nothing big there.
    code, _, obj = doctor(f"redis://:{PASSWORD}@127.0.0.1:{r.port}")
    assert code == 0 and not findings(obj, "big_values"), obj


def test_sample_runs_on_the_replica(servers, workdir):
    p = healthy_redis(servers)
    rep = servers(replicaof=p.port)
    rep.wait_link_up()
    p.cmd("SET", "user:1", "v")  # no TTL: seen on the replica too
    wait_until(lambda: rep.cmd("EXISTS", "user:1") == 1, 5, what="replicated key")
    path = write_config(workdir, p.port, [CACHE], replicas=[f"127.0.0.1:{rep.port}"])
    code, text, obj = doctor("--config", path)
    assert code == 1, text
    assert f"scanned on 127.0.0.1:{rep.port}" in one(obj, "keyspace_sample")["seen"], obj
    assert one(obj, "keys_no_ttl", "users")["severity"] == "warning", obj
    assert obj["facts"]["role"] == "master", obj


def test_scan_cap_on_keys(servers, workdir):
    r = healthy_redis(servers)
    with r.client() as c:
        c.pipeline([("SET", f"user:{i}", "v", "EX", "600") for i in range(300)])
    code, _, obj = doctor("--config", write_config(workdir, r.port, [CACHE]), "--scan-keys", "50")
    assert code == 0, obj
    seen = one(obj, "keyspace_sample")["seen"]
    assert seen.startswith("50 keys scanned") and "cap of 50 keys" in seen, seen


# ---- corral health --------------------------------------------------------------------------


def health_config(redis_port, admin):
    cfg = corral_config(redis_port)
    if admin is None:
        del cfg["admin"]
    else:
        cfg["admin"] = {"listen": admin}
    return cfg


def test_health_and_ready(servers, corral_factory):
    r = servers()
    port = free_port()
    c = corral_factory(health_config(r.port, f"0.0.0.0:{port}"))  # asked on loopback
    code, out, err = run("health", "--config", c.config_path)
    assert (code, out, err) == (0, "", ""), (code, out, err)
    wait_until(lambda: run("health", "--config", c.config_path, "--ready")[0] == 0, 5,
               what="corral health --ready exit 0")
    r.kill()
    wait_until(lambda: c.http_get("/ready")[0] == 503, 5, what="/ready 503 with redis down")
    code, out, err = run("health", "--config", c.config_path, "--ready", "--timeout", "2s")
    assert code == 1, (code, out, err)
    assert err.startswith("corral health: GET /ready answered 503") and err.count("\n") == 1, err
    code, _, err = run("health", "--config", c.config_path)  # alive, though not ready
    assert code == 0, err
    c.signal(signal.SIGTERM)  # corral_factory's teardown checks the exit code
    assert c.wait_exit(15) == 0
    code, _, err = run("health", "--config", c.config_path, "--timeout", "1s")
    assert code == 1 and "cannot connect" in err, err


def test_health_without_admin(workdir, corral_only):
    path = os.path.join(workdir, "corral.yaml")
    with open(path, "w") as f:
        f.write(to_yaml(health_config(free_port(), None)) + "\n")
    code, out, err = run("health", "--config", path)
    assert code == 1 and out == "", (code, out, err)
    assert "has no admin.listen" in err and err.count("\n") == 1, err


def test_slowlog_shows_command_and_key_never_values(servers, workdir):
    r = healthy_redis(servers)
    secret_value = "value-that-must-not-show-3e1d"
    r.cmd("CONFIG", "SET", "slowlog-log-slower-than", "0")  # every command is logged
    r.cmd("SET", "user:42", secret_value, "EX", "600")
    r.cmd("HSET", "user:43", "field", secret_value)
    r.cmd("CONFIG", "SET", "slowlog-log-slower-than", "10000")
    code, text, obj = doctor("--config", write_config(workdir, r.port, [CACHE]))
    f = one(obj, "slowlog")
    assert "set user:42" in f["seen"] and "hset user:43" in f["seen"], f
    assert secret_value not in text and secret_value not in json.dumps(obj), text
    assert "field" not in f["seen"], f


def test_sentinel_names_the_primary(servers, workdir):
    from sentinels import MASTER, SentinelSet
    r = healthy_redis(servers)
    r.cmd("SET", "user:1", "v", "EX", "600")
    with SentinelSet(r.port, n=1) as s:
        # The first sentinel listed is down: the next one is asked.
        cfg = {"upstream": {"sentinel": {"master": MASTER,
                                         "addresses": [f"127.0.0.1:{free_port()}",
                                                       *s.addresses()]}},
               "policies": [CACHE]}
        path = os.path.join(workdir, "sentinel.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(cfg) + "\n")
        code, text, obj = doctor("--config", path)
        assert code == 0, text
        assert obj["target"] == f"127.0.0.1:{r.port}", obj
        assert obj["facts"]["mode"] == "standalone (sentinel-managed)", obj
        # A sentinel given as the primary is named for what it is.
        code, text, obj = doctor(f"redis://{s.addresses()[0]}")
        assert code == 2, text
        assert "this is a Sentinel" in one(obj, "server")["seen"], obj


def test_acl_user_without_scan(servers, workdir):
    """An ACL user (upstream.user) that may not SCAN: the sample says so, the rest stands."""
    r = healthy_redis(servers)
    assert r.cmd("ACL", "SETUSER", "doc", "on", f">{PASSWORD}", "~*", "+@all", "-scan") == "OK"
    r.cmd("SET", "user:1", "v")
    path = write_config(workdir, r.port, [CACHE], user="doc", password=PASSWORD)
    code, text, obj = doctor("--config", path)
    assert code == 1, text
    f = one(obj, "keyspace_sample")
    assert f["severity"] == "warning" and "SCAN refused: NOPERM" in f["seen"], f
    assert one(obj, "maxmemory")["severity"] == "ok", obj
    assert not findings(obj, "keys_no_ttl"), obj
    assert PASSWORD not in text, text
    assert "usage: corral doctor" in run("doctor", "--help")[1]


# ---- over TLS (upstream.tls, rediss://) -----------------------------------------------------
# TLS-only redis-servers (--port 0 --tls-port) with certificates from tests/support/certs.py:
# `server` carries DNS:localhost and IP:127.0.0.1, signed by `ca`; `other_ca` signed nothing
# of theirs.


@pytest.fixture(scope="module")
def certs():
    from certs import Certs
    c = Certs()
    yield c
    shutil.rmtree(c.dir, ignore_errors=True)


def no_cert_env(**extra):
    """The environment without OpenSSL's trust-store variables, plus extra."""
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    env.update(extra)
    return env


def test_tls_seeded_states_and_ip_or_name(servers, workdir, certs):
    r = healthy_redis(servers, tls_certs=certs, password=PASSWORD)
    for i in range(10):
        assert r.cmd("SET", f"user:{i}", "v", "EX", "3600") == "OK"
    tls = {"ca_file": certs.path("ca")}
    # rediss:// with a DNS name, and upstream.tls.enabled with an IP address (its IP SAN).
    for primary, extra in ((f"rediss://localhost:{r.port}", {}),
                           (f"127.0.0.1:{r.port}", {"enabled": True})):
        path = write_config(workdir, r.port, [CACHE], primary=primary, password=PASSWORD,
                            tls={**tls, **extra})
        code, text, obj = doctor("--config", path)
        assert code == 0, text
        assert obj["facts"]["tls"].startswith("TLSv1."), obj
        assert "10 keys scanned" in one(obj, "keyspace_sample")["seen"], obj
        assert PASSWORD not in text and PASSWORD not in json.dumps(obj), text
    # A finding over TLS as over TCP: no maxmemory is an error.
    r.cmd("CONFIG", "SET", "maxmemory", "0")
    code, text, obj = doctor("--config", path)
    assert code == 2, text
    assert one(obj, "maxmemory")["severity"] == "error", obj
    # Plain TCP to the TLS port gets no Redis answer: not mistaken for a healthy server.
    code, text, obj = doctor(f"redis://127.0.0.1:{r.port}", "--timeout", "1s")
    assert code == 2, text
    lost = [f for f in obj["findings"] if f["check"] in ("connect", "connection")]
    assert len(lost) == 1 and "is it a TLS port? then rediss://" in lost[0]["seen"], obj


def test_tls_wrong_ca_is_a_verify_error(servers, workdir, certs):
    r = healthy_redis(servers, tls_certs=certs, password=PASSWORD)
    path = write_config(workdir, r.port, [CACHE], primary=f"rediss://:{PASSWORD}@localhost:{r.port}",
                        tls={"ca_file": certs.path("other_ca")})
    code, text, obj = doctor("--config", path)
    assert code == 2, text
    seen = one(obj, "connect")["seen"]
    # Redis sends its CA with the leaf (OpenSSL completes the chain from tls-ca-cert-file), so
    # the reason is a self-signed root doctor does not trust.
    assert f"localhost:{r.port}: TLS handshake failed: certificate verify failed (self-signed " \
           "certificate in certificate chain)" in seen, seen
    assert "upstream.tls.ca_file" in seen, seen
    assert "check upstream.tls" in one(obj, "connect")["action"], obj
    assert PASSWORD not in text and PASSWORD not in json.dumps(obj), text
    # Checks off (insecure): connected, and doctor warns about it.
    path = write_config(workdir, r.port, [CACHE], primary=f"rediss://:{PASSWORD}@localhost:{r.port}",
                        tls={"insecure": True})
    code, text, obj = doctor("--config", path)
    assert code == 1, text
    assert "certificate not checked" in obj["facts"]["tls"], obj
    assert one(obj, "tls")["severity"] == "warning", obj


def test_tls_server_name(servers, workdir, certs):
    r = healthy_redis(servers, tls_certs=certs)
    tls = {"enabled": True, "ca_file": certs.path("ca")}
    # A name the certificate does not carry: refused, and the name is said.
    path = write_config(workdir, r.port, primary=f"127.0.0.1:{r.port}",
                        tls={**tls, "server_name": "other.example"})
    code, text, obj = doctor("--config", path)
    assert code == 2, text
    seen = one(obj, "connect")["seen"]
    assert "certificate verify failed (hostname mismatch)" in seen, seen
    assert "does not name other.example" in seen and "server_name" in seen, seen
    # The name it carries, though the address is an IP: the name is what is checked.
    path = write_config(workdir, r.port, primary=f"127.0.0.1:{r.port}",
                        tls={**tls, "server_name": "localhost"})
    code, text, obj = doctor("--config", path)
    assert code == 0, text


def test_tls_handshake_timeout(corral_only):
    import socket
    silent = socket.socket()  # accepts (the kernel's backlog) and never answers the ClientHello
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)
    try:
        port = silent.getsockname()[1]
        code, text, obj = doctor(f"rediss://127.0.0.1:{port}", "--timeout", "500ms")
        assert code == 2, text
        assert "TLS handshake timed out after 500ms" in one(obj, "connect")["seen"], obj
    finally:
        silent.close()


def test_tls_client_certificate(servers, workdir, certs):
    r = servers(tls_certs=certs, extra_args=["--tls-auth-clients", "yes"], start=False)
    r.tls_context.load_cert_chain(certs.path("client"), certs.path("client", "key"))
    r.start()
    r.cmd("CONFIG", "SET", "maxmemory", str(64 << 20))
    r.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
    tls = {"ca_file": certs.path("ca")}
    primary = f"rediss://localhost:{r.port}"
    path = write_config(workdir, r.port, [CACHE], primary=primary,
                        tls={**tls, "cert_file": certs.path("client"),
                             "key_file": certs.path("client", "key")})
    code, text, obj = doctor("--config", path)
    assert code == 0, text
    assert obj["facts"]["tls"].startswith("TLSv1."), obj
    # Without the client certificate the server refuses, and doctor says what to set.
    code, text, obj = doctor("--config", write_config(workdir, r.port, [CACHE], primary=primary,
                                                      tls=tls))
    assert code == 2, text
    seen = one(obj, "connect")["seen"]
    assert "certificate required" in seen and "cert_file" in seen, seen


def test_tls_url_form_trusts_the_system_store(servers, certs):
    r = healthy_redis(servers, tls_certs=certs, password=PASSWORD)
    url = f"rediss://:{PASSWORD}@localhost:{r.port}/0"
    # The test CA is in no system store: refused, and the reason given.
    code, text, obj = doctor(url, env=no_cert_env())
    assert code == 2, text
    assert "certificate verify failed" in one(obj, "connect")["seen"], obj
    assert PASSWORD not in text and PASSWORD not in json.dumps(obj), text
    # OpenSSL's SSL_CERT_FILE points the system store at it.
    code, text, obj = doctor(url, env=no_cert_env(SSL_CERT_FILE=certs.path("ca")))
    assert code == 0, text
    assert obj["target"] == f"localhost:{r.port}" and obj["facts"]["tls"].startswith("TLSv1."), obj
    assert PASSWORD not in text, text


def test_tls_sentinel_names_the_primary(workdir, certs, corral_only):
    from test_sentinel_tls import TlsSentinelSet, tls_args
    p_tls = free_port()
    primary = RedisServer(extra_args=tls_args(certs, p_tls))  # its plain port for our setup
    try:
        primary.cmd("CONFIG", "SET", "maxmemory", str(64 << 20))
        primary.cmd("CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
        with TlsSentinelSet(p_tls, certs, n=1) as sentinels:
            sentinels.wait_settled(replicas=0)
            cfg = {"upstream": {"sentinel": {"master": "mymaster",
                                             "addresses": sentinels.tls_addresses()},
                                "tls": {"enabled": True, "ca_file": certs.path("ca")}},
                   "policies": [CACHE]}
            path = os.path.join(workdir, "sentinel-tls.yaml")
            with open(path, "w") as f:
                f.write(to_yaml(cfg) + "\n")
            code, text, obj = doctor("--config", path)
            assert code == 0, text
            assert obj["target"] == f"127.0.0.1:{p_tls}", obj  # the TLS port, as announced
            assert obj["facts"]["tls"].startswith("TLSv1."), obj
            assert obj["facts"]["mode"] == "standalone (sentinel-managed)", obj
            # The sentinels' TLS ports checked like the rest: another CA is refused there.
            cfg["upstream"]["tls"]["ca_file"] = certs.path("other_ca")
            with open(path, "w") as f:
                f.write(to_yaml(cfg) + "\n")
            code, text, obj = doctor("--config", path)
            assert code == 2, text
            assert "certificate verify failed" in one(obj, "connect")["seen"], obj
    finally:
        primary.close()


def test_tls_cluster_seed(workdir, corral_only):
    """cluster.tls: the first seed that answers is checked over TLS; a seed down is skipped."""
    from cluster import RedisCluster
    with RedisCluster(primaries=3, replicas=0, tls=True) as tc:
        cfg = {"upstream": {"cluster": {"seeds": [f"127.0.0.1:{free_port()}", *tc.seeds()],
                                        "tls": True},
                            "tls": {"ca_file": tc.certs.path("ca")}},
               "policies": [CACHE]}
        path = os.path.join(workdir, "cluster-tls.yaml")
        with open(path, "w") as f:
            f.write(to_yaml(cfg) + "\n")
        code, text, obj = doctor("--config", path, "--no-scan")
        assert obj["target"] == tc.seeds()[0], obj
        assert obj["facts"]["tls"].startswith("TLSv1."), obj
        assert one(obj, "server")["severity"] == "ok", obj
        assert code == 2 and one(obj, "maxmemory")["severity"] == "error", text  # as started
