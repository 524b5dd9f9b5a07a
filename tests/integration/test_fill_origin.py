"""Fill requests against a scripted origin: request headers (literal, env, a file re-read when it
changes; secrets never in logs, /policies or errors), retries within a budget, and the circuit
breaker (opens after N failures, fails fast while open, half-open probe, closes), with
stale-if-error while it is open. Against config/README.md (origins.<name>.headers, .retry,
.breaker) and policies/origin_guard.h. corral-only.

Every wait is bounded; everything listens on 127.0.0.1."""

import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import harness
from harness import RespError, corral_config, to_yaml, wait_until

SECRET = "integration-fill-secret-0123456789"
TOKEN = "tok-ENV-3c1f9a77e0"        # secrets: must never show in logs, /policies or errors
FILE_KEY = "key-FILE-one-58b2d4"
FILE_KEY_2 = "key-FILE-two-91ce07"


class ScriptedOrigin:
    """An HTTP origin whose answers the test scripts: `statuses` is a queue of status codes for
    the next requests (then `default_status`); 200 answers carry "v:<path>\\n". Records every
    request's path and headers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []  # (path, {header lower: value})
        self.statuses = []
        self.default_status = 200
        self.delay = 0.0  # seconds before each answer
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (http.server's name)
                with origin.lock:
                    origin.requests.append(
                        (self.path, {k.lower(): v for k, v in self.headers.items()}))
                    status = origin.statuses.pop(0) if origin.statuses else origin.default_status
                    delay = origin.delay
                time.sleep(delay)
                body = f"v:{self.path}\n".encode() if status == 200 else b"down\n"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            request_queue_size = 512  # a storm's connections all at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def calls(self):
        with self.lock:
            return len(self.requests)

    def last_headers(self):
        with self.lock:
            return dict(self.requests[-1][1])

    def script(self, statuses=(), default=None):
        with self.lock:
            self.statuses = list(statuses)
            if default is not None:
                self.default_status = default

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def origin():
    o = ScriptedOrigin()
    try:
        yield o
    finally:
        o.close()


def config(redis_port, origin_url, origin_extra=None, policy_extra=None, **overrides):
    cfg = corral_config(redis_port, **overrides)
    cfg.setdefault("global", {})["fill_secret"] = SECRET
    cfg["origins"] = {"users": {"base_url": origin_url, "timeout": "1s", **(origin_extra or {})}}
    pol = {"name": "user", "match": "user:<id:u64>", "ttl": {"default": "60s"},
           "fill": {"origin": "users", "path": "/v1/users/<id>", "on_error": "error"},
           "stampede": {"single_flight": "local"}}
    pol.update(policy_extra or {})
    cfg["policies"] = [pol]
    return cfg


def stderr_text(c):
    with open(c.stderr_path, "rb") as f:
        return f.read().decode("utf-8", "replace")


def metric(c, name, **labels):
    key = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    return c.metrics().get(key, 0)


# ---------------------------------------------------------------------------------------------
# headers


def test_headers_reach_the_origin_file_reloads_and_secrets_stay_hidden(
        redis_server, corral_factory, origin, tmp_path, monkeypatch):
    monkeypatch.setenv("CORRAL_IT_TOKEN", TOKEN)
    key_file = tmp_path / "api-key"
    key_file.write_text(FILE_KEY + "\n")
    extra = {"headers": {"Authorization": {"env": "CORRAL_IT_TOKEN"},
                         "X-Api-Key": {"file": str(key_file)},
                         "X-Tenant": "acme"}}
    c = corral_factory(config(redis_server.port, origin.url, extra, log={"level": "debug"}))
    with c.client() as cl:
        assert cl.cmd("GET", "user:1") == b"v:/v1/users/1\n"
        h = origin.last_headers()
        assert h["authorization"] == TOKEN
        assert h["x-api-key"] == FILE_KEY
        assert h["x-tenant"] == "acme"
        assert h["user-agent"].startswith("corral/"), h
        assert h["accept"] == "*/*"

        # The file changes (a rotated secret: a new file renamed over the old one): the next
        # request within about a second carries the new value.
        tmp = tmp_path / "api-key.new"
        tmp.write_text(FILE_KEY_2 + "\n")
        os.replace(tmp, key_file)
        seen = []

        def rotated():
            n = len(seen) + 2
            assert cl.cmd("GET", f"user:{n}") == f"v:/v1/users/{n}\n".encode()
            seen.append(origin.last_headers()["x-api-key"])
            return seen[-1] == FILE_KEY_2

        wait_until(rotated, 5, interval=0.2, what="the rotated key file in use")
        # An unusable file (two lines) keeps the last good value and is warned about.
        key_file.write_text("line-one-SECRETX\nline-two-SECRETX\n")
        n = [100]

        def warned():
            n[0] += 1
            assert cl.cmd("GET", f"user:{n[0]}") == f"v:/v1/users/{n[0]}\n".encode()
            return "origin header file unusable" in stderr_text(c)

        wait_until(warned, 5, interval=0.2, what="the warning about the key file")
        assert origin.last_headers()["x-api-key"] == FILE_KEY_2

    status, policies_body = c.http_get("/policies")
    assert status == 200
    log = stderr_text(c)
    for secret in (TOKEN, FILE_KEY, FILE_KEY_2, "SECRETX"):
        assert secret not in log, secret
        assert secret not in policies_body, secret


def test_secret_values_never_in_config_errors(tmp_path):
    if harness.target_mode() == "redis":
        pytest.skip("needs the corral binary")
    path = tmp_path / "c.yaml"
    cfg = corral_config(6379)
    cfg["origins"] = {"users": {"base_url": "http://127.0.0.1:1",
                                "headers": {"Authorization": {"env": "CORRAL_IT_BAD"},
                                            "X-Lit": "ok\u0001" + TOKEN}}}
    path.write_text(to_yaml(cfg) + "\n")
    env = dict(os.environ, CORRAL_IT_BAD="Bearer " + TOKEN + "\nX-Injected: 1")
    p = subprocess.run([harness.corral_bin(), "--check-config", str(path)], env=env,
                       capture_output=True, timeout=30)
    out = (p.stdout + p.stderr).decode("utf-8", "replace")
    assert p.returncode == 1, out
    assert "origins.users.headers.Authorization: value holds a line break" in out, out
    assert "origins.users.headers.X-Lit: value holds a control character" in out, out
    assert TOKEN not in out and "Injected" not in out, out


# ---------------------------------------------------------------------------------------------
# retries


def test_retry_recovers_a_single_transient_5xx(redis_server, corral_factory, origin):
    c = corral_factory(config(redis_server.port, origin.url, {"retry": {"backoff": "5ms..50ms"}}))
    origin.script([503])
    with c.client() as cl:
        assert cl.cmd("GET", "user:7") == b"v:/v1/users/7\n"
    assert origin.calls() == 2
    assert metric(c, "corral_origin_retries_total", origin="users", result="success") == 1
    assert metric(c, "corral_fill_events_total", policy="user", event="fill_errors") == 0


def storm(redis_port, corral_factory, origin, retry, n, breaker=None):
    """n fills of distinct keys while every origin request fails with 503: origin calls."""
    extra = {"retry": retry, "max_in_flight": 1000}
    if breaker:
        extra["breaker"] = breaker
    c = corral_factory(config(redis_port, origin.url, extra))
    origin.script([], default=503)
    before = origin.calls()
    replies = []
    with c.client() as cl:
        for batch in range(0, n, 25):  # 25 fills at once: what the test origin keeps up with
            replies += cl.pipeline([("GET", f"user:{1000 + i}") for i in range(batch, batch + 25)])
    expected = ("FILLERR users status 503", "FILLERR users open") if breaker else \
        ("FILLERR users status 503",)
    odd = [r for r in replies if not (isinstance(r, RespError) and r.message in expected)]
    assert not odd, odd[:3]
    return origin.calls() - before, c


def test_retry_budget_holds_under_a_5xx_storm(redis_server, corral_factory, origin):
    n = 200
    # Without a budget to speak of (99% plus a floor of 1000/s): every fill makes 3 requests.
    unbounded, _ = storm(redis_server.port, corral_factory, origin,
                         {"attempts": 3, "budget": "99%", "min_per_second": 1000,
                          "backoff": "1ms..2ms"}, n)
    assert unbounded == 3 * n
    # The budget: retries <= 10% of the requests of the last 10 s + 1/s x 10.
    bounded, c = storm(redis_server.port, corral_factory, origin,
                       {"attempts": 3, "budget": "10%", "min_per_second": 1,
                        "backoff": "1ms..2ms"}, n)
    print(f"5xx storm, {n} fills: origin calls {unbounded} without a budget, {bounded} with "
          f"budget 10% + 1/s")
    assert n <= bounded <= n + n // 10 + 10
    assert metric(c, "corral_origin_retry_budget_exhausted_total", origin="users") > 0
    # With the breaker as well: after 5 failed requests the rest cost the origin nothing (the
    # requests of the batch in flight when it opened still count).
    broken, c = storm(redis_server.port, corral_factory, origin,
                      {"attempts": 3, "budget": "10%", "min_per_second": 1,
                       "backoff": "1ms..2ms"}, n, breaker={"failures": 5, "open_for": "30s"})
    print(f"... and {broken} with the breaker (failures 5) too")
    assert 5 <= broken <= 5 + 25 * 2
    assert metric(c, "corral_origin_breaker_rejected_total", origin="users") >= n - 25


# ---------------------------------------------------------------------------------------------
# the circuit breaker


def get_timed(port, key):
    with harness.RespConn(port, timeout=5) as cl:
        t0 = time.monotonic()
        r = cl.cmd("GET", key)
        return r, time.monotonic() - t0


def test_breaker_opens_fails_fast_probes_and_closes(redis_server, corral_factory, origin):
    # Two workers share one breaker: the origin sees `failures` requests in all, not per worker.
    c = corral_factory(config(redis_server.port, origin.url,
                              {"breaker": {"failures": 3, "open_for": "600ms"}}, workers=2))
    origin.script([], default=503)
    origin.delay = 0.4  # a slow failing origin: the breaker's answer is much faster
    for i in range(3):
        r, took = get_timed(c.port, f"user:{i}")
        assert r == RespError("FILLERR users status 503"), r
        assert took >= 0.4
    assert origin.calls() == 3
    assert metric(c, "corral_origin_breaker_state", origin="users", state="open") == 1
    # Open: no origin request, an error at once.
    for i in range(20):
        r, took = get_timed(c.port, f"user:{100 + i}")
        assert r == RespError("FILLERR users open"), r
        assert took < 0.2, took
    assert origin.calls() == 3
    origin.delay = 0.0
    assert metric(c, "corral_origin_breaker_rejected_total", origin="users") >= 20
    # After open_for: one probe; it fails, the breaker opens again.
    time.sleep(0.65)
    r, _ = get_timed(c.port, "user:200")
    assert r == RespError("FILLERR users status 503"), r
    assert origin.calls() == 4
    r, _ = get_timed(c.port, "user:201")
    assert r == RespError("FILLERR users open"), r
    # The origin is back: the next probe succeeds and closes it.
    origin.script([], default=200)
    time.sleep(0.65)
    r, _ = get_timed(c.port, "user:300")
    assert r == b"v:/v1/users/300\n", r
    for i in range(5):
        r, _ = get_timed(c.port, f"user:{400 + i}")
        assert r == f"v:/v1/users/{400 + i}\n".encode(), r
    assert origin.calls() == 10
    m = c.metrics()
    assert m['corral_origin_breaker_state{origin="users",state="closed"}'] == 1
    assert m['corral_origin_breaker_transitions_total{origin="users",to="open"}'] == 2
    assert m['corral_origin_breaker_transitions_total{origin="users",to="half_open"}'] == 2
    assert m['corral_origin_breaker_transitions_total{origin="users",to="closed"}'] == 1
    assert m['corral_origin_breaker_seconds_total{origin="users",state="open"}'] >= 1.2
    assert m['corral_origin_breaker_seconds_total{origin="users",state="closed"}'] > 0


def test_stale_if_error_serves_while_the_breaker_is_open(redis_server, corral_factory, origin):
    c = corral_factory(config(
        redis_server.port, origin.url, {"breaker": {"failures": 2, "open_for": "30s"}},
        policy_extra={"ttl": {"default": "1s", "jitter": 0},
                      "freshness": {"stale_if_error": "60s"}}))
    with c.client() as cl:
        assert cl.cmd("GET", "user:1") == b"v:/v1/users/1\n"
        origin.script([], default=503)
        for i in (2, 3):
            assert cl.cmd("GET", f"user:{i}") == RespError("FILLERR users status 503")
        assert metric(c, "corral_origin_breaker_state", origin="users", state="open") == 1
        calls = origin.calls()
        origin.delay = 0.4
        time.sleep(1.1)  # user:1 is past its soft expiry: a GET waits for a refresh ...
        t0 = time.monotonic()
        assert cl.cmd("GET", "user:1") == b"v:/v1/users/1\n"  # ... which the breaker refuses
        assert time.monotonic() - t0 < 0.2
        assert cl.cmd("GET", "user:4") == RespError("FILLERR users open")
    assert origin.calls() == calls
    assert metric(c, "corral_fill_events_total", policy="user", event="stale_served") == 1
