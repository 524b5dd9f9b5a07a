"""The upstream handshake decides readiness and backoff (defect 11). corral-only.

With a wrong upstream password corral used to reconnect every ~40 ms for ever, with a log line
each time, because its backoff reset as soon as TCP connected, before AUTH failed. Now only a
handshake that succeeds makes a connection ready and resets the backoff; a refused one backs off
exponentially (reconnect_backoff.min..max, jittered), is logged once (then reminded at most every
30 s), is counted, and keeps /ready at 503.
"""

import re
import time

from harness import RedisServer, RespConn, RespError, corral_config, wait_until, connections_received

UNAVAILABLE = re.compile(r"^ERR corral: upstream \S+ unavailable$")
BACKOFF = {"min": "100ms", "max": "2s"}


def upstream_log_lines(c) -> list:
    return [line for line in c.stderr_text().splitlines() if "[upstream]" in line]


def check_refused_handshake_backs_off(c, probe: RespConn, reason: str):
    # Let the first attempts happen, then count connections over ~2 s. With min 100 ms, max 2 s
    # and jitter in [b/2, b], attempts come at least 50, 100, 200, 400, 800 ms apart: at most 6
    # in 2 s (the old behaviour made ~50).
    time.sleep(0.3)
    before = connections_received(probe)
    t0 = time.monotonic()
    time.sleep(2.0)
    attempts = connections_received(probe) - before
    elapsed = time.monotonic() - t0
    assert 1 <= attempts <= 6, f"{attempts} connection attempts in {elapsed:.1f}s"

    # Not ready, and requests fail fast with corral's own error (never Redis's NOAUTH).
    status, body = c.http_get("/ready")
    assert status == 503, (status, body)
    with c.client() as cl:
        r = cl.cmd("GET", "k")
        assert isinstance(r, RespError) and UNAVAILABLE.match(r.message), r

    # Logged once, not once per attempt; counted every time.
    lines = upstream_log_lines(c)
    assert len(lines) == 1, lines
    assert "error" in lines[0] and reason in lines[0], lines[0]
    failures = c.metrics()["corral_upstream_handshake_failures_total"]
    assert 2 <= failures <= 10, failures
    m = c.metrics()
    ready = {k: v for k, v in m.items() if k.startswith("corral_upstream_connections_ready{")}
    assert ready and sum(ready.values()) == 0, ready
    up = [k for k in m if k.startswith('corral_upstream_up{') and 'role="primary"' in k]
    assert len(up) == 1 and m[up[0]] == 0, up


def test_wrong_password_backs_off_and_is_not_ready(corral_factory):
    with RedisServer(password="right") as redis, redis.client() as probe:
        c = corral_factory(corral_config(redis.port, workers=1, upstream={
            "pool_size": 1, "password": "s3cret-but-wrong", "reconnect_backoff": BACKOFF}))
        check_refused_handshake_backs_off(c, probe, "WRONGPASS")
        assert "s3cret" not in c.stderr_text()  # the password is never logged


def test_missing_password_backs_off_and_is_not_ready(corral_factory):
    # Without a password corral sends no AUTH: its PING meets NOAUTH instead.
    with RedisServer(password="right") as redis, redis.client() as probe:
        c = corral_factory(corral_config(redis.port, workers=1, upstream={
            "pool_size": 1, "reconnect_backoff": BACKOFF}))
        check_refused_handshake_backs_off(c, probe, "NOAUTH")


def test_right_password_is_ready(corral_factory):
    with RedisServer(password="right") as redis:
        c = corral_factory(corral_config(redis.port, workers=1, upstream={
            "pool_size": 1, "password": "right", "reconnect_backoff": BACKOFF}))
        wait_until(lambda: c.http_get("/ready")[0] == 200, 5, what="/ready 200")
        with c.client() as cl:
            assert cl.cmd("SET", "k", "v") == "OK"
            assert cl.cmd("GET", "k") == b"v"
        assert c.metrics()["corral_upstream_handshake_failures_total"] == 0
        assert upstream_log_lines(c) == []


def test_recovers_when_the_server_accepts_the_password(corral_factory):
    # The upstream password is not reloadable; the server's is. Once Redis accepts corral's
    # password, the next attempt (within reconnect_backoff.max) makes the connection ready.
    with RedisServer(password="old") as redis, redis.client() as admin:
        c = corral_factory(corral_config(redis.port, workers=1, upstream={
            "pool_size": 1, "password": "new", "reconnect_backoff": BACKOFF}))
        wait_until(lambda: c.metrics()["corral_upstream_handshake_failures_total"] >= 2, 5,
                   what="handshakes refused")
        assert c.http_get("/ready")[0] == 503
        assert admin.cmd("CONFIG", "SET", "requirepass", "new") == "OK"
        wait_until(lambda: c.http_get("/ready")[0] == 200, 5, what="/ready 200 after the fix")
        with c.client() as cl:
            assert cl.cmd("PING") == "PONG"
            assert cl.cmd("SET", "k", "v") == "OK"
        lines = upstream_log_lines(c)
        assert len(lines) == 2, lines  # the failure, then the recovery
        assert "upstream ready" in lines[1] and "after_failures=" in lines[1], lines[1]
