"""An upstream that accepts connections but refuses corral's credentials (issue item 11).
corral-only.

A wrong upstream password must not turn into a reconnect storm (the issue measured a new
connection, and a log line, every ~37 ms for ever), and /ready must say 503 while Redis answers
NOAUTH: a load balancer must not send clients to a corral that can only answer errors.
"""

import time

import pytest

from harness import RedisServer, RespConn, RespError, corral_config, wait_until

PASSWORD = "right-upstream-pass"
WINDOW = 2.0


@pytest.fixture
def redis_with_password(corral_only):
    with RedisServer(password=PASSWORD) as r:
        yield r


def _connections_received(redis) -> int:
    return int(redis.info("stats")["total_connections_received"])


@pytest.mark.parametrize("password", ["wrong-password-xyz", None], ids=["wrong", "missing"])
def test_bad_upstream_password_backs_off_and_is_not_ready(redis_with_password, corral_factory,
                                                          password):
    # reconnect_backoff max 1s: a backed-off corral makes at most ~2 attempts a second once the
    # backoff has grown (jitter in [max/2, max]), i.e. well under 10 in the 2 s window.
    upstream = {"reconnect_backoff": {"min": "50ms", "max": "1s"}}
    if password:
        upstream["password"] = password
    c = corral_factory(corral_config(redis_with_password.port, upstream=upstream))
    time.sleep(2.0)  # let the backoff grow (scenario timing)
    n0 = _connections_received(redis_with_password)
    log0 = len(c.stderr_text().splitlines())
    time.sleep(WINDOW)
    n1 = _connections_received(redis_with_password)
    log1 = len(c.stderr_text().splitlines())
    # the two INFO connections of this test count once each
    attempts = n1 - n0 - 1
    assert attempts < 10, f"{attempts} upstream connections in {WINDOW}s (reconnect storm)"
    assert log1 - log0 < 10, f"{log1 - log0} log lines in {WINDOW}s:\n{c.stderr_tail(20)}"
    status, body = c.http_get("/ready")
    assert status == 503, f"/ready answered {status} {body!r} while redis refuses corral's auth"
    with c.client() as cl:
        r = cl.cmd("GET", "k")
        assert isinstance(r, RespError), r


def test_unresolvable_upstream_name_fails_fast_and_says_why(corral_factory, corral_only):
    """Host names are looked up without blocking the worker (evdns): a name that does not
    resolve fails requests with corral's error, backs off, and the log says why."""
    cfg = corral_config(1)
    cfg["upstream"]["primary"] = "no-such-host.invalid:6379"
    c = corral_factory(cfg, check_gauges=False)
    with RespConn(c.port) as conn:
        start = time.monotonic()
        reply = conn.cmd("GET", "k")
        assert isinstance(reply, RespError) and "unavailable" in str(reply), reply
        assert time.monotonic() - start < 2.0
        assert conn.cmd("PING") == "PONG"  # the worker is not stuck in a lookup
    wait_until(lambda: "resolve failed" in c.stderr_text(), 5, what="the reason logged")
    assert c.http_get("/ready")[0] == 503
