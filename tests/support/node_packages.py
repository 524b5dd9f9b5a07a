"""Node.js and a directory's pinned npm packages, for the tests that run Node scripts
(test_node_clients.py: node/, test_deploy_files.py: k8s/).

node and npm come from scripts/deps.sh test; a missing one is a failure, not a skip. The packages
are pinned in DIR/package.json + package-lock.json and installed with `npm ci` when
DIR/node_modules is missing or does not hold the pinned versions.
"""

import json
import os
import shutil
import subprocess

import pytest

NPM_CI_TIMEOUT = 300


def output(stdout, stderr) -> str:
    def text(b):
        if b is None:
            return ""
        return b.decode("utf-8", "replace") if isinstance(b, bytes) else b
    return f"--- stdout ---\n{text(stdout)}\n--- stderr ---\n{text(stderr)}"


def pins_installed(pkg_dir: str) -> bool:
    """pkg_dir/node_modules holds exactly the versions pkg_dir/package.json pins."""
    with open(os.path.join(pkg_dir, "package.json")) as f:
        deps = json.load(f)["dependencies"]
    for name, version in deps.items():
        try:
            with open(os.path.join(pkg_dir, "node_modules", name, "package.json")) as f:
                if json.load(f).get("version") != version:
                    return False
        except (OSError, ValueError):
            return False
    return True


def node_with_packages(pkg_dir: str, min_major: int, why: str) -> str:
    """Path of `node` (first on PATH), at least version min_major, with pkg_dir's pinned npm
    packages installed; pytest.fail (naming `why`) otherwise."""
    node_bin, npm_bin = shutil.which("node"), shutil.which("npm")
    if not node_bin or not npm_bin:
        pytest.fail(f"node and npm are needed for {why} (node: {node_bin}, npm: {npm_bin}); "
                    "install them with scripts/deps.sh test", pytrace=False)
    v = subprocess.run([node_bin, "--version"], capture_output=True, text=True, timeout=10)
    major = int(v.stdout.strip().lstrip("v").split(".")[0]) if v.returncode == 0 else 0
    if major < min_major:
        pytest.fail(f"{node_bin} --version: {v.stdout.strip() or v.stderr.strip()!r}; {why} "
                    f"needs Node >= {min_major}", pytrace=False)
    if not pins_installed(pkg_dir):
        try:
            p = subprocess.run([npm_bin, "ci", "--no-audit", "--no-fund"], cwd=pkg_dir,
                               capture_output=True, timeout=NPM_CI_TIMEOUT,
                               stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"npm ci in {pkg_dir} did not finish within {NPM_CI_TIMEOUT}s\n"
                        + output(e.stdout, e.stderr), pytrace=False)
        if p.returncode != 0:
            pytest.fail(f"npm ci in {pkg_dir} exited with {p.returncode}\n"
                        + output(p.stdout, p.stderr), pytrace=False)
        if not pins_installed(pkg_dir):
            pytest.fail(f"npm ci in {pkg_dir} ran but node_modules does not hold the versions "
                        "pinned in package.json", pytrace=False)
    return node_bin
