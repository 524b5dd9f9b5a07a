"""The app-to-sidecar hop over corral's unix socket listener with the clients and the connection
settings the README shows ("Connecting over a unix socket"): redis-py's unix_socket_path and
ioredis's path (go-redis's Network: "unix" has no Go toolchain here to try it). corral-only.
"""

import os
import shutil
import subprocess
import tempfile

import pytest

from cluster_upstream import REDIS_PROCESS
from harness import corral_config
from node_packages import node_with_packages, output

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")

IOREDIS_SCRIPT = """
const Redis = require("ioredis");
const r = new Redis({ path: process.argv[1], maxRetriesPerRequest: 1 });
(async () => {
  await r.set("unix:ioredis", "v1");
  const v = await r.get("unix:ioredis");
  if (v !== "v1") throw new Error("GET returned " + v);
  console.log("ok " + v);
  r.disconnect();
})().catch((e) => { console.error(e); process.exit(1); });
"""


@pytest.fixture
def unix_corral(redis_server, corral_factory):
    d = tempfile.mkdtemp(prefix="corral-sock-")
    sock = os.path.join(d, "corral.sock")
    c = corral_factory(corral_config(redis_server.port, listen=[f"unix:{sock}", "127.0.0.1:0"]))
    assert os.path.exists(sock)
    yield c, sock, redis_server
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.single_node(REDIS_PROCESS)
def test_redis_py_unix_socket_path(unix_corral):
    redis = pytest.importorskip("redis")
    c, sock, server = unix_corral
    r = redis.Redis(unix_socket_path=sock, socket_timeout=5)
    try:
        assert r.set("unix:py", "v1") is True
        assert r.get("unix:py") == b"v1"
        assert r.client_list()  # answered through corral, not a direct connection
    finally:
        r.close()
    with server.client() as direct:
        assert direct.cmd("GET", "unix:py") == b"v1"
    assert c.metrics()["corral_requests_total"] >= 3


@pytest.mark.single_node(REDIS_PROCESS)
def test_ioredis_path(unix_corral):
    node = node_with_packages(NODE_DIR, 18, "the ioredis unix socket test")
    c, sock, server = unix_corral
    p = subprocess.run([node, "-e", IOREDIS_SCRIPT, sock], cwd=NODE_DIR, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and "ok v1" in p.stdout, output(p.stdout, p.stderr)
    with server.client() as direct:
        assert direct.cmd("GET", "unix:ioredis") == b"v1"
