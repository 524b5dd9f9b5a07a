"""Real Node.js clients through the target: ioredis and node-redis (npm `redis` v4) sessions.

Each script in node/ (connect with the library's own startup, strings/hashes/expiry/scan, a
pipeline of 100, MULTI/EXEC and WATCH, BLPOP with a late producer, EVAL/EVALSHA, SELECT 3) runs
as `node SCRIPT PORT` and must exit 0. Runs against corral or (CORRAL_TARGET=redis) straight
against redis-server.

node and npm come from scripts/deps.sh test; a missing one is a failure, not a skip. The npm
packages are pinned in node/package.json + package-lock.json and installed with `npm ci` when
node/node_modules is missing or does not hold the pinned versions (support/node_packages.py).
"""

import os
import subprocess

import pytest

from node_packages import node_with_packages, output

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
SCRIPTS = ["ioredis_session.js", "node_redis_session.js"]
SCRIPT_TIMEOUT = 60
MIN_NODE_MAJOR = 18


@pytest.fixture(scope="module")
def node():
    """Path of `node` (first on PATH), with the pinned npm packages installed."""
    return node_with_packages(NODE_DIR, MIN_NODE_MAJOR, "the Node client tests (ioredis, redis)")


def _dbsize(redis_server, db: int) -> int:
    with redis_server.client() as c:
        assert c.cmd("SELECT", db) == "OK"
        return c.cmd("DBSIZE")


@pytest.mark.single_node("the scripts run a two-key EVAL whose keys are on two cluster nodes "
                          "and a db 3 client")
@pytest.mark.parametrize("script", SCRIPTS)
def test_node_client_session(node, target, script):
    argv = [node, os.path.join(NODE_DIR, script), str(target.port)]
    try:
        p = subprocess.run(argv, cwd=NODE_DIR, capture_output=True, timeout=SCRIPT_TIMEOUT,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{' '.join(argv)} still running after {SCRIPT_TIMEOUT}s\n"
                    + output(e.stdout, e.stderr), pytrace=False)
    out = output(p.stdout, p.stderr)
    print(out)  # shown by pytest for a failed test, or always with -s
    assert p.returncode == 0, f"{' '.join(argv)} exited with {p.returncode}\n{out}"
    assert b"checks passed" in p.stdout.splitlines()[-1], out
    # the session deletes what it wrote, in db 0 and in db 3
    assert (_dbsize(target.redis, 0), _dbsize(target.redis, 3)) == (0, 0)
