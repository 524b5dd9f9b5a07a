"""admin.token_env and admin.ready_when (config/README.md), against real servers. corral-only.

- token_env: /policies answers 401 with `WWW-Authenticate: Bearer` unless the request carries
  `Authorization: Bearer <token>`; /health, /ready and /metrics stay open; the token shows up in
  no log line; a variable that is unset or empty stops corral at startup.
- ready_when: upstream (the default) answers 503 while Redis is away; serving answers 200
  whatever Redis's state (requests get corral's upstream error meanwhile), and 503 once a
  SIGTERM started the drain.
"""

import os
import signal
import subprocess
import time

import pytest

from cluster_upstream import REDIS_PROCESS
from harness import (Corral, RedisServer, RespError, admin_request, corral_bin, corral_config,
                     free_port, wait_until)

TOKEN = "it-token-7f3a9c1e5b"


def request(c: Corral, path: str, headers=None) -> tuple:
    """(status, headers as a dict with lower-case names, body) of GET path on c's admin port."""
    status, hdrs, body = admin_request(c.admin_port, path, headers)
    return status, hdrs, body.decode()


def token_config(redis_port: int) -> dict:
    return corral_config(redis_port, admin={"listen": "127.0.0.1:0",
                                            "token_env": "CORRAL_IT_ADMIN_TOKEN"})


@pytest.mark.single_node(REDIS_PROCESS)
def test_policies_need_the_token(redis_server, corral_factory, monkeypatch):
    monkeypatch.setenv("CORRAL_IT_ADMIN_TOKEN", TOKEN)
    c = corral_factory(token_config(redis_server.port))
    wait_until(lambda: request(c, "/ready")[0] == 200, 5, what="/ready 200 with redis up")

    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                    {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": TOKEN}):
        status, h, body = request(c, "/policies", headers)
        assert status == 401, (headers, status, body)
        assert h.get("www-authenticate", "").startswith("Bearer"), (headers, h)
        assert "policies" not in body or "needs the admin token" in body, body
        assert TOKEN not in body

    status, h, body = request(c, "/policies", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, (status, body)
    assert h["content-type"] == "application/json"
    assert body.startswith("{") and '"policies"' in body, body
    status, _, _ = request(c, "/policies?x=1", {"Authorization": f"bearer  {TOKEN} "})
    assert status == 200

    # The other endpoints need nothing.
    assert request(c, "/health")[:1] == (200,)
    assert request(c, "/ready")[0] == 200
    status, _, body = request(c, "/metrics")
    assert status == 200 and "corral_requests_total" in body
    assert TOKEN not in c.stderr_text()


@pytest.mark.single_node(REDIS_PROCESS)
def test_policies_open_without_a_token(redis_server, corral_factory):
    c = corral_factory(corral_config(redis_server.port))
    status, h, body = request(c, "/policies")
    assert status == 200 and "www-authenticate" not in h, (status, h, body)


@pytest.mark.parametrize("value", [None, ""])
def test_missing_or_empty_token_variable_stops_startup(tmp_path, value):
    env = dict(os.environ)
    env.pop("CORRAL_IT_ADMIN_TOKEN", None)
    if value is not None:
        env["CORRAL_IT_ADMIN_TOKEN"] = value
    cfg = tmp_path / "corral.yaml"
    cfg.write_text(f"upstream: {{primary: 127.0.0.1:{free_port()}}}\n"
                   "admin: {listen: 127.0.0.1:0, token_env: CORRAL_IT_ADMIN_TOKEN}\n")
    p = subprocess.run([corral_bin(), "--config", str(cfg)], env=env, capture_output=True,
                       text=True, timeout=10)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    want = "is empty" if value == "" else "is not set"
    assert f"admin.token_env: environment variable CORRAL_IT_ADMIN_TOKEN {want}" in out, out


def test_check_config_never_prints_the_token(tmp_path):
    env = dict(os.environ, CORRAL_IT_ADMIN_TOKEN=TOKEN)
    cfg = tmp_path / "corral.yaml"
    # An error elsewhere in the admin section: the report names the variable, not its value.
    cfg.write_text(f"upstream: {{primary: 127.0.0.1:{free_port()}}}\n"
                   "admin: {listen: 127.0.0.1:0, token_env: CORRAL_IT_ADMIN_TOKEN, "
                   "ready_when: sometimes}\n")
    p = subprocess.run([corral_bin(), "--check-config", str(cfg)], env=env, capture_output=True,
                       text=True, timeout=10)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert "admin.ready_when: must be one of upstream, serving (got sometimes)" in out, out
    assert TOKEN not in out


def test_ready_when_upstream_follows_redis(corral_factory):
    """The default: 503 while no Redis answers at the primary's address, 200 once one does."""
    port = free_port()
    c = corral_factory(corral_config(port))
    status, _, body = request(c, "/ready")
    assert status == 503, body
    with RedisServer(port=port):
        wait_until(lambda: request(c, "/ready")[0] == 200, 5, what="/ready 200 with redis up")


def test_ready_when_serving_ignores_redis(corral_factory):
    """serving: 200 with no Redis at all; the app gets corral's upstream error meanwhile."""
    port = free_port()
    c = corral_factory(corral_config(port, admin={"listen": "127.0.0.1:0",
                                                  "ready_when": "serving"}))
    time.sleep(0.3)  # a few reconnect attempts (backoff 20-200 ms): Redis is surely seen down
    status, _, body = request(c, "/ready")
    assert status == 200, body
    assert "serving" in body
    with c.client() as cl:
        r = cl.cmd("GET", "k")
        assert isinstance(r, RespError) and r.message.startswith("ERR corral: upstream"), r
    with RedisServer(port=port):
        def ping():
            with c.client() as cl2:
                return cl2.cmd("PING") == "PONG"
        wait_until(ping, 5, what="PING through corral")
        assert request(c, "/ready")[0] == 200


@pytest.mark.single_node(REDIS_PROCESS)
def test_ready_when_serving_turns_503_in_the_drain(redis_server, corral_factory):
    """A GET held in flight (CLIENT PAUSE on Redis) keeps the drain going ~2 s: /ready says 503
    meanwhile, while /health still answers 200."""
    c = corral_factory(corral_config(redis_server.port, shutdown_timeout="3s",
                                     upstream={"command_timeout": "5s"},
                                     admin={"listen": "127.0.0.1:0", "ready_when": "serving"}),
                       check_gauges=False)
    assert request(c, "/ready")[0] == 200
    blocker = c.client(timeout=8)
    try:
        assert blocker.cmd("PING") == "PONG"
        with redis_server.client() as direct:
            assert direct.cmd("CLIENT", "PAUSE", "2000", "ALL") == "OK"
        blocker.send_cmd("GET", "drain:k")
        wait_until(lambda: c.metrics().get("corral_pending_requests", 0) >= 1, 5,
                   what="the GET in flight in corral")
        c.signal(signal.SIGTERM)
        wait_until(lambda: request(c, "/ready")[0] == 503, 1.5, interval=0.05,
                   what="/ready 503 during the drain")
        status, _, body = request(c, "/ready")
        assert c.running() and "draining" in body, body
        assert request(c, "/health")[0] == 200
    finally:
        blocker.close()
    assert c.wait_exit(8) == 0
