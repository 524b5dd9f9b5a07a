"""Test 12: upstream authentication. corral-only."""

import time

import pytest

from harness import RedisServer, RespError, corral_config

PASSWORD = "s3cret-upstream-pass"


@pytest.fixture
def redis_with_password(corral_only):
    with RedisServer(password=PASSWORD) as r:
        yield r


def test_upstream_password_works(redis_with_password, corral_factory):
    c = corral_factory(corral_config(redis_with_password.port, upstream={"password": PASSWORD}))
    with c.client() as cl:
        assert cl.cmd("SET", "auth:k", "v") == "OK"
        assert cl.cmd("GET", "auth:k") == b"v"
        assert cl.pipeline([("INCR", "auth:n")] * 100) == list(range(1, 101))
    assert redis_with_password.cmd("GET", "auth:k") == b"v"
    assert PASSWORD not in c.stderr_text(), "the upstream password appears in corral's logs"


@pytest.mark.parametrize("password", ["wrong-password-xyz", None])
def test_wrong_or_missing_password_fails_fast(redis_with_password, corral_factory, password):
    upstream = {"command_timeout": "1s", "connect_timeout": "500ms"}
    if password:
        upstream["password"] = password
    c = corral_factory(corral_config(redis_with_password.port, upstream=upstream))
    with c.client(timeout=5.0) as cl:
        for cmd in (("GET", "auth:k"), ("SET", "auth:k", "x")):
            t0 = time.monotonic()
            r = cl.cmd(*cmd)
            elapsed = time.monotonic() - t0
            assert isinstance(r, RespError), f"{cmd} with a bad upstream password got {r!r}"
            assert elapsed < 2.0, f"{cmd}: error took {elapsed:.3f}s"
            if password:
                assert password not in r.message, "password leaked to the client"
        assert cl.cmd("PING") == "PONG"
    assert redis_with_password.cmd("EXISTS", "auth:k") == 0
    if password:
        assert password not in c.stderr_text(), "the upstream password appears in corral's logs"
