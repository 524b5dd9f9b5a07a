"""The admin endpoint (proxy/admin/README.md): /health, /ready, /metrics. corral-only."""

import shutil
import subprocess

import pytest

from cluster_upstream import REDIS_PROCESS
from harness import RespError, corral_config, to_yaml, wait_until


@pytest.mark.single_node(REDIS_PROCESS)
def test_health_ready_and_metrics(redis_server, corral_factory):
    c = corral_factory(corral_config(redis_server.port))
    assert c.http_get("/health") == (200, "ok\n")
    wait_until(lambda: c.http_get("/ready")[0] == 200, 5, what="/ready 200 with redis up")
    assert c.http_get("/nope")[0] == 404
    m0 = c.metrics()
    with c.client() as cl:
        assert cl.pipeline([("SET", "a", "1"), ("GET", "a"), ("PING",), ("ECHO", "x")]) == \
            ["OK", b"1", "PONG", b"x"]
        r = cl.cmd("CLIENT", "NO-EVICT", "on")
        assert isinstance(r, RespError)
        m = c.metrics()
        assert m["corral_clients"] == 1, m
    d = {k: m[k] - m0.get(k, 0) for k in m if k.endswith("_total")}
    assert d["corral_requests_total"] == 5, d
    assert d["corral_requests_forwarded_total"] == 2, d
    assert d["corral_local_replies_total"] >= 2, d
    assert d["corral_refused_commands_total"] == 1, d

    # /ready follows the primary
    redis_server.kill()
    wait_until(lambda: c.http_get("/ready")[0] == 503, 5, what="/ready 503 with redis down")
    assert c.http_get("/health")[0] == 200
    redis_server.start()
    wait_until(lambda: c.http_get("/ready")[0] == 200, 5, what="/ready 200 after restart")


def test_subcommands_counted_apart_in_info_and_metrics(redis_server, corral_factory):
    """Calls per command and per subcommand (client|setname), as Redis's cmdstat lines: INFO's
    Proxy section and /metrics count the same requests from the same table."""
    c = corral_factory(corral_config(redis_server.port))
    with c.client() as cl:
        assert cl.cmd("CLIENT", "SETNAME", "x") == "OK"
        assert cl.cmd("CONFIG", "GET", "maxmemory") == [b"maxmemory", b"0"]
        assert cl.cmd("GET", "k") is None
        r = cl.cmd("CONFIG", "SET", "no-such-option", "1")  # Redis answers an error
        assert isinstance(r, RespError), r
        info = cl.cmd("INFO").decode()
    proxy = info[info.index("# Proxy"):]
    fields = dict(line.split(":", 1) for line in proxy.splitlines()[1:] if ":" in line)
    assert fields["corral_cmdstat_client|setname"] == "calls=1,failed_calls=0", proxy
    assert fields["corral_cmdstat_config|get"] == "calls=1,failed_calls=0", proxy
    assert fields["corral_cmdstat_config|set"] == "calls=1,failed_calls=1", proxy
    assert fields["corral_cmdstat_get"] == "calls=1,failed_calls=0", proxy
    # Containers are not counted themselves, as in Redis.
    assert "corral_cmdstat_client" not in fields and "corral_cmdstat_config" not in fields
    assert int(fields["corral_requests"]) == 5

    m = c.metrics()

    def calls(cmd):
        return m.get(f'corral_command_requests_total{{command="{cmd}"}}')

    def errors(cmd):
        return m.get(f'corral_command_errors_total{{command="{cmd}"}}')

    assert (calls("client|setname"), errors("client|setname")) == (1, 0), m
    assert (calls("config|get"), errors("config|get")) == (1, 0), m
    assert (calls("config|set"), errors("config|set")) == (1, 1), m
    assert (calls("get"), errors("get")) == (1, 0), m
    assert (calls("info"), errors("info")) == (1, 0), m
    assert calls("client") is None and calls("config") is None, m
    assert m["corral_requests_total"] == 5, m


def test_metrics_pass_promtool(redis_server, corral_factory):
    """/metrics is valid exposition text that passes promtool's lint too (names, HELP, TYPE,
    histograms), with the policy registry's families present. Needs promtool (Debian's
    prometheus package, installed by scripts/deps.sh test)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool not found: run scripts/deps.sh test (package prometheus)"
    policies = """
policies:
  - name: user
    match: "user:<id:u64>"
    ttl: {default: 60s}
    rate_limits:
      - {name: user-limit, rate: 100/s, burst: 100}
"""
    c = corral_factory(to_yaml(corral_config(redis_server.port)) + "\n" + policies)
    with c.client() as cl:
        assert cl.pipeline([("SET", "user:1", "v"), ("GET", "user:1"), ("CLIENT", "GETNAME"),
                            ("CONFIG", "GET", "maxmemory")])[:2] == ["OK", b"v"]
    status, body = c.http_get("/metrics")
    assert status == 200
    assert 'corral_command_requests_total{command="client|getname"} 1' in body
    assert 'corral_policy_requests_total{policy="user"}' in body
    p = subprocess.run([promtool, "check", "metrics"], input=body.encode(), capture_output=True,
                       timeout=30)
    assert p.returncode == 0, (p.stdout + p.stderr).decode() + "\n" + body


def test_command_that_waits_is_counted_once(redis_server, corral_factory):
    """MULTI and BLPOP behind a request in flight wait for its reply and are handled again
    then: one call each, in INFO and in /metrics."""
    c = corral_factory(corral_config(redis_server.port))
    with c.client() as cl:
        assert cl.pipeline([("GET", "k"), ("MULTI",), ("SET", "k", "1"), ("EXEC",)]) == \
            [None, "OK", "QUEUED", ["OK"]]
        assert cl.pipeline([("GET", "k"), ("BLPOP", "q", "0.01")]) == [b"1", None]
        text = cl.cmd("INFO", "proxy").decode()
    info = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    for cmd in ("multi", "exec", "set", "blpop"):
        assert info[f"corral_cmdstat_{cmd}"] == "calls=1,failed_calls=0", info
    assert info["corral_cmdstat_get"] == "calls=2,failed_calls=0", info
    m = c.metrics()
    for cmd in ("multi", "exec", "set", "blpop"):
        assert m[f'corral_command_requests_total{{command="{cmd}"}}'] == 1, m
