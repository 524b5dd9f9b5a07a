"""Real Node.js clients through the target: ioredis and node-redis (npm `redis` v4) sessions.

Each script in node/ (connect with the library's own startup, strings/hashes/expiry/scan, a
pipeline of 100, MULTI/EXEC and WATCH, BLPOP with a late producer, EVAL/EVALSHA, SELECT 3) runs
as `node SCRIPT PORT` and must exit 0. Runs against corral or (CORRAL_TARGET=redis) straight
against redis-server.

node and npm come from scripts/deps.sh test; a missing one is a failure, not a skip. The npm
packages are pinned in node/package.json + package-lock.json and installed here with `npm ci`
when node/node_modules is missing or does not hold the pinned versions.
"""

import json
import os
import shutil
import subprocess

import pytest

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "node")
SCRIPTS = ["ioredis_session.js", "node_redis_session.js"]
NPM_CI_TIMEOUT = 300
SCRIPT_TIMEOUT = 60
MIN_NODE_MAJOR = 18


def _output(stdout, stderr) -> str:
    def text(b):
        if b is None:
            return ""
        return b.decode("utf-8", "replace") if isinstance(b, bytes) else b
    return f"--- stdout ---\n{text(stdout)}\n--- stderr ---\n{text(stderr)}"


def _pins_installed() -> bool:
    """node_modules holds exactly the versions package.json pins."""
    with open(os.path.join(NODE_DIR, "package.json")) as f:
        deps = json.load(f)["dependencies"]
    for name, version in deps.items():
        try:
            with open(os.path.join(NODE_DIR, "node_modules", name, "package.json")) as f:
                if json.load(f).get("version") != version:
                    return False
        except (OSError, ValueError):
            return False
    return True


@pytest.fixture(scope="module")
def node():
    """Path of `node` (first on PATH), with the pinned npm packages installed."""
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if not node_bin or not npm_bin:
        pytest.fail(f"node and npm are needed for the Node client tests (node: {node_bin}, npm: "
                    f"{npm_bin}); install them with scripts/deps.sh test", pytrace=False)
    v = subprocess.run([node_bin, "--version"], capture_output=True, text=True, timeout=10)
    major = int(v.stdout.strip().lstrip("v").split(".")[0]) if v.returncode == 0 else 0
    if major < MIN_NODE_MAJOR:
        pytest.fail(f"{node_bin} --version: {v.stdout.strip() or v.stderr.strip()!r}; the pinned "
                    f"ioredis/redis need Node >= {MIN_NODE_MAJOR}", pytrace=False)
    if not _pins_installed():
        try:
            p = subprocess.run([npm_bin, "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                               capture_output=True, timeout=NPM_CI_TIMEOUT,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"npm ci in {NODE_DIR} did not finish within {NPM_CI_TIMEOUT}s\n"
                        + _output(e.stdout, e.stderr), pytrace=False)
        if p.returncode != 0:
            pytest.fail(f"npm ci in {NODE_DIR} exited with {p.returncode}\n"
                        + _output(p.stdout, p.stderr), pytrace=False)
        if not _pins_installed():
            pytest.fail(f"npm ci in {NODE_DIR} ran but node_modules does not hold the versions "
                        "pinned in package.json", pytrace=False)
    return node_bin


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
                    + _output(e.stdout, e.stderr), pytrace=False)
    out = _output(p.stdout, p.stderr)
    print(out)  # shown by pytest for a failed test, or always with -s
    assert p.returncode == 0, f"{' '.join(argv)} exited with {p.returncode}\n{out}"
    assert b"checks passed" in p.stdout.splitlines()[-1], out
    # the session deletes what it wrote, in db 0 and in db 3
    assert (_dbsize(target.redis, 0), _dbsize(target.redis, 3)) == (0, 0)
