"""The admin endpoint (proxy/admin/README.md): /health, /ready, /metrics. corral-only."""

from harness import RespError, corral_config, wait_until


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
