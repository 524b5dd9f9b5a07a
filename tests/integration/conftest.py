"""Fixtures for corral's integration tests. See README.md in this folder.

CORRAL_TARGET=corral (default): `target` is a corral in front of a fresh redis-server.
CORRAL_TARGET=redis: `target` is the redis-server itself; tests that need corral are skipped
with a reason saying so (this mode exists to prove the tests right without the proxy).
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))

import harness  # noqa: E402
from cluster import RedisCluster  # noqa: E402
from harness import Corral, RedisServer, RespConn, corral_config  # noqa: E402,F401


class Target:
    """What a mode-agnostic test talks to: a port, and how to open clients on it."""

    def __init__(self, port, redis, corral=None):
        self.port = port
        self.redis = redis      # the RedisServer behind (or itself, in redis mode)
        self.corral = corral    # None in redis mode

    def client(self, timeout=5.0):
        return RespConn(self.port, timeout=timeout)


@pytest.fixture
def redis_server():
    with RedisServer() as r:
        yield r


@pytest.fixture(scope="module")
def redis_cluster():
    """A Redis Cluster of 3 primaries with a replica each (../support/cluster.py), shared by the
    tests of one module: building one takes seconds. A test that kills, fails over or reshards
    leaves it with every node running and wait_ok() passed, so the next one finds it ok."""
    with RedisCluster() as c:
        yield c


@pytest.fixture
def corral_factory():
    """corral_factory(config, **kw) -> a started Corral; every one is SIGTERMed at teardown and
    must exit 0 without a sanitizer report."""
    if harness.target_mode() == "redis":
        pytest.skip("needs the corral binary (CORRAL_TARGET=redis runs only the redis-compatible "
                    "tests)")
    started = []

    def make(config, **kw):
        c = Corral(config, **kw)
        started.append(c)
        return c

    yield make
    errors = []
    for c in started:
        try:
            c.close()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("corral teardown failed:\n" + "\n\n".join(errors), pytrace=False)


@pytest.fixture
def corral_only():
    """Marks a test as needing corral: explicit skip (with reason) in CORRAL_TARGET=redis."""
    if harness.target_mode() == "redis":
        pytest.skip("corral-specific behaviour; not applicable with CORRAL_TARGET=redis")


@pytest.fixture
def target(redis_server, request):
    """A port speaking Redis: corral in front of redis_server, or redis_server itself."""
    if harness.target_mode() == "redis":
        yield Target(redis_server.port, redis_server)
        return
    factory = request.getfixturevalue("corral_factory")
    c = factory(corral_config(redis_server.port))
    yield Target(c.port, redis_server, c)
