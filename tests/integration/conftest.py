"""Fixtures for corral's integration tests. See README.md in this folder.

CORRAL_TARGET=corral (default): `target` is a corral in front of a fresh redis-server.
CORRAL_TARGET=redis: `target` is the redis-server itself; tests that need corral are skipped
with a reason saying so (this mode exists to prove the tests right without the proxy).

CORRAL_UPSTREAM=cluster: `redis_server` is a Redis Cluster (3 primaries, no replicas, built once
per session, reset before each test) standing in for the redis-server
(../support/cluster_upstream.py), and corral_config(redis_server.port) writes upstream.cluster.
Tests that are single-node by nature carry `@pytest.mark.single_node("why")` and are skipped
with that reason; tests that start servers of their own (no `redis_server`) are skipped as
having no cluster variant; features corral refuses with a cluster carry
`@pytest.mark.cluster_unsupported("what")` (skipped); known corral defects with a cluster
upstream carry `@pytest.mark.cluster_xfail("what")` (xfail there). `-rsxX` lists each with its
reason.
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


def pytest_configure(config):
    config.addinivalue_line("markers", "single_node(reason): the test needs one redis-server "
                            "(SELECT of other dbs, restarts, replicas, exact connection counts...); "
                            "skipped with the reason in CORRAL_UPSTREAM=cluster")
    config.addinivalue_line("markers", "cluster_unsupported(reason): a feature corral refuses "
                            "with upstream.cluster (it says so); skipped in "
                            "CORRAL_UPSTREAM=cluster")
    config.addinivalue_line("markers", "cluster_xfail(reason, strict=False): a known corral "
                            "defect or gap with a cluster upstream; xfail in "
                            "CORRAL_UPSTREAM=cluster. Most depend on which node a slot or a held "
                            "connection is on (the slot map's order varies), so they are not "
                            "strict; strict=True where the failure is certain (a fix then XPASSes, "
                            "which fails: drop the marker)")


def pytest_collection_modifyitems(config, items):
    if harness.upstream_mode() != "cluster":
        return
    for item in items:
        known = item.get_closest_marker("cluster_xfail")
        if known is not None:
            assert known.args and known.args[0], f"{item.nodeid}: cluster_xfail needs a reason"
            item.add_marker(pytest.mark.xfail(reason=f"cluster: {known.args[0]}",
                                              strict=known.kwargs.get("strict", False)))
        unsupported = item.get_closest_marker("cluster_unsupported")
        marker = item.get_closest_marker("single_node")
        if unsupported is not None:
            assert unsupported.args and unsupported.args[0], f"{item.nodeid}: needs a reason"
            item.add_marker(pytest.mark.skip(
                reason=f"not supported with upstream.cluster: {unsupported.args[0]}"))
        elif marker is not None:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            assert reason, f"{item.nodeid}: single_node needs a reason"
            item.add_marker(pytest.mark.skip(reason=f"single node: {reason}"))
        elif "redis_cluster" in item.fixturenames:
            item.add_marker(pytest.mark.skip(
                reason="a cluster test of its own (redis_cluster): run in the default mode"))
        elif "cluster_upstream" not in item.fixturenames:
            item.add_marker(pytest.mark.skip(
                reason="starts servers of its own (no redis_server fixture): no cluster variant"))


@pytest.fixture(scope="session")
def cluster_upstream():
    """CORRAL_UPSTREAM=cluster: the cluster behind every redis_server of the session (a
    ClusterUpstream, ../support/cluster_upstream.py); None in the default mode. A module-scoped
    fixture that starts its own upstream uses it in cluster mode (test_protocol_parity.py)."""
    if harness.upstream_mode() != "cluster":
        yield None
        return
    from cluster_upstream import ClusterUpstream
    with RedisCluster(primaries=3, replicas=0) as c:
        up = ClusterUpstream(c)
        harness.CLUSTER_UPSTREAMS[up.port] = up.seeds()
        try:
            yield up
        finally:
            harness.CLUSTER_UPSTREAMS.pop(up.port, None)


@pytest.fixture
def redis_server(cluster_upstream):
    """A fresh redis-server; in CORRAL_UPSTREAM=cluster the shared cluster, reset."""
    if cluster_upstream is not None:
        cluster_upstream.reset()
        yield cluster_upstream
        return
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
