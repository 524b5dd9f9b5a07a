"""The container and host deploy files (issue 14), checked without Docker or a cluster:

    Dockerfile ---------- parsed: apt leaves nothing in a layer, user/group corral 10001:10001,
                          OCI labels from ARGs, HEALTHCHECK `corral health` (no curl), and the
                          runtime packages against what the corral binary links (ldd + dpkg -S)
    deploy/kubernetes/ -- every object validated against the Kubernetes API schemas (npm
                          kubernetes-models, pinned in k8s/package.json, unknown fields refused:
                          k8s/validate.js), the review's properties (restricted Pod Security,
                          admin on loopback + exec probes, emptyDir socket, PDB, drain times),
                          and the ConfigMap's corral.yaml through `corral --check-config`
    deploy/systemd/ ----- `systemd-analyze verify` and the hardening and stop settings
    deploy/README.md ---- names every file under deploy/

Needs node/npm (scripts/deps.sh test) and systemd-analyze (Debian's systemd, present on any
Debian 12 with systemd). corral-only (runs the binary for --check-config and ldd).
"""

import configparser
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from harness import REPO_ROOT, corral_bin, corral_config, free_port
from node_packages import node_with_packages, output

DOCKERFILE = os.path.join(REPO_ROOT, "Dockerfile")
K8S_DIR = os.path.join(REPO_ROOT, "deploy", "kubernetes")
SERVICE = os.path.join(REPO_ROOT, "deploy", "systemd", "corral.service")
K8S_CHECK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "k8s")
SOCKET = "/var/run/corral/corral.sock"
CORRAL_UID = 10001


# ---- Dockerfile ---------------------------------------------------------------------------

def dockerfile_stages() -> list:
    """[(stage name, [(INSTRUCTION, arguments), ...]), ...]: comment lines dropped (also inside a
    continued instruction, as Docker does), continuation lines joined."""
    stages, logical, cur = [], [], ""
    with open(DOCKERFILE) as f:
        for line in f:
            s = line.strip()
            if s.startswith("#") or (not s and not cur):
                continue
            if s.endswith("\\"):
                cur += s[:-1] + " "
                continue
            logical.append(cur + s)
            cur = ""
    for ins in logical:
        word, _, args = ins.partition(" ")
        word = word.upper()
        if word == "FROM":
            m = re.search(r"\bAS\s+(\S+)", args, re.I)
            stages.append((m.group(1) if m else args.split()[0], []))
        stages[-1][1].append((word, " ".join(args.split())))
    return stages


def runtime_stage() -> list:
    return dockerfile_stages()[-1][1]


def runtime_packages() -> list:
    for word, args in runtime_stage():
        if word == "RUN" and "apt-get install" in args:
            after = args.split("apt-get install", 1)[1].split("&&", 1)[0]
            return [w for w in after.split() if not w.startswith("-")]
    raise AssertionError("the runtime stage installs no packages with apt-get install")


def test_dockerfile_leaves_no_apt_lists_or_cache():
    runs = [(stage, args) for stage, ins in dockerfile_stages() for w, args in ins if w == "RUN"]
    apt_runs = [(s, a) for s, a in runs if "apt-get" in a or "deps.sh" in a]
    assert len(apt_runs) >= 2, apt_runs  # the build stage's deps.sh and the runtime install
    for stage, args in apt_runs:
        # Removed in the same RUN: a later RUN cannot shrink the layer that wrote them.
        for needed in ("apt-get clean", "/var/lib/apt/lists/*", "/var/cache/apt"):
            assert needed in args, f"stage {stage}: RUN without {needed!r}: {args}"
        assert "rm -rf" in args, (stage, args)


def test_dockerfile_user_and_group_corral_with_fixed_ids():
    run = " ".join(a for w, a in runtime_stage() if w == "RUN")
    group = re.search(r"groupadd\b([^&]*)", run)
    user = re.search(r"useradd\b([^&]*)", run)
    assert group and user, run
    assert re.search(rf"--gid {CORRAL_UID}\b", group.group(1)) and \
        group.group(1).split()[-1] == "corral", group.group(0)
    assert re.search(rf"--uid {CORRAL_UID}\b", user.group(1)), user.group(0)
    assert re.search(rf"--gid {CORRAL_UID}\b", user.group(1)), user.group(0)
    assert user.group(1).split()[-1] == "corral", user.group(0)
    users = [a for w, a in runtime_stage() if w == "USER"]
    assert users and users[-1] == f"{CORRAL_UID}:{CORRAL_UID}", users


def test_dockerfile_oci_labels_from_args():
    ins = runtime_stage()
    args = {a.split("=", 1)[0] for w, a in ins if w == "ARG"}
    labels = dict(re.findall(r'(org\.opencontainers\.image\.[a-z]+)="([^"]*)"',
                             " ".join(a for w, a in ins if w == "LABEL")))
    for key in ("title", "description", "source", "licenses", "version"):
        assert labels.get(f"org.opencontainers.image.{key}") is not None, (key, labels)
    for key in ("source", "licenses", "version"):
        ref = re.fullmatch(r"\$\{(\w+)\}", labels[f"org.opencontainers.image.{key}"])
        assert ref and ref.group(1) in args, (key, labels, args)
    assert labels["org.opencontainers.image.title"] == "corral"


def test_dockerfile_healthcheck_needs_no_curl():
    ins = runtime_stage()
    checks = [a for w, a in ins if w == "HEALTHCHECK"]
    assert len(checks) == 1, checks
    cmd = checks[0].split(" CMD ", 1)[1]
    assert cmd == "corral health --config /etc/corral/corral.yaml", cmd
    # The config it names is the one the image carries and CMD uses.
    assert any(w == "COPY" and a.endswith(" /etc/corral/corral.yaml") for w, a in ins), ins
    assert "/etc/corral/corral.yaml" in [a for w, a in ins if w == "CMD"][0]
    everything = " ".join(a for _, a in ins)
    assert not re.search(r"\b(curl|wget)\b", everything), "a tool the image should not need"


SANITIZER_RUNTIMES = {"libasan8", "libubsan1", "liblsan0", "libtsan2"}


def test_runtime_packages_cover_what_corral_links():
    """Every shared library the built corral needs comes from a runtime package or from the base
    image's own (libc6, libstdc++6, libgcc-s1: apt needs them, so debian:bookworm-slim has them),
    and every runtime package but the CA store and hiredis (corral doctor) supplies one."""
    base = {"libc6", "libstdc++6", "libgcc-s1"}
    extra_ok = {"ca-certificates": "the CA store for TLS upstreams",
                "libhiredis0.14": "corral doctor's synchronous client"}
    pkgs = runtime_packages()
    assert "libhiredis0.14" in pkgs and "ca-certificates" in pkgs, pkgs
    ldd = subprocess.run(["ldd", corral_bin()], capture_output=True, text=True, timeout=10)
    assert ldd.returncode == 0, ldd.stderr
    libs = re.findall(r"=> (/\S+)", ldd.stdout)
    assert libs, ldd.stdout
    used = set()
    for lib in libs:
        q = subprocess.run(["dpkg", "-S", os.path.realpath(lib)], capture_output=True, text=True,
                           timeout=10)
        if q.returncode != 0:  # /lib -> /usr/lib merged: dpkg knows one spelling
            q = subprocess.run(["dpkg", "-S", lib], capture_output=True, text=True, timeout=10)
        assert q.returncode == 0, f"no package owns {lib}: {q.stderr}"
        owner = q.stdout.split(":", 1)[0].strip()
        if owner in SANITIZER_RUNTIMES:
            # The asan build (clang, no --as-needed) also links libraries the gcc builds drop,
            # such as libevent-2.1 that pkg-config's libevent_openssl names: its link list is
            # not the image's. scripts/test.sh's debug run checks the gcc link list the
            # release image has.
            pytest.skip("a sanitizer build: the debug build's run checks the image's link list")
        assert owner in pkgs or owner in base, f"{lib} comes from {owner}, not in the image"
        used.add(owner)
    for p in pkgs:
        assert p in used or p in extra_ok, f"runtime package {p} supplies nothing corral links"


# ---- Kubernetes ---------------------------------------------------------------------------

def k8s_objects() -> list:
    out = []
    for name in sorted(os.listdir(K8S_DIR)):
        if name.endswith((".yaml", ".yml")):
            with open(os.path.join(K8S_DIR, name)) as f:
                out += [d for d in yaml.safe_load_all(f) if d]
    assert out, f"no manifests in {K8S_DIR}"
    return out


def one(kind: str) -> dict:
    found = [o for o in k8s_objects() if o["kind"] == kind]
    assert len(found) == 1, f"{len(found)} objects of kind {kind}"
    return found[0]


def pod_spec() -> dict:
    return one("Deployment")["spec"]["template"]["spec"]


def container(name: str) -> dict:
    found = [c for c in pod_spec()["containers"] if c["name"] == name]
    assert len(found) == 1, pod_spec()["containers"]
    return found[0]


def corral_yaml() -> dict:
    return yaml.safe_load(one("ConfigMap")["data"]["corral.yaml"])


def seconds(duration: str) -> float:
    m = re.fullmatch(r"(\d+)(ms|s|m)", duration)
    assert m, duration
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60}[m.group(2)]


@pytest.fixture(scope="module")
def node():
    return node_with_packages(K8S_CHECK, 18, "the Kubernetes manifest check (kubernetes-models)")


def validate(node_bin: str, objects: list) -> subprocess.CompletedProcess:
    return subprocess.run([node_bin, os.path.join(K8S_CHECK, "validate.js")],
                          input=json.dumps(objects), capture_output=True, text=True, timeout=60)


def test_manifests_match_the_kubernetes_schemas(node):
    objects = k8s_objects()
    p = validate(node, objects)
    assert p.returncode == 0, output(p.stdout, p.stderr)
    results = json.loads(p.stdout)
    assert [r["kind"] for r in results] == [o["kind"] for o in objects]
    assert all(r["errors"] == [] for r in results), results


def test_the_schema_check_can_fail(node):
    """A wrong type and a misspelt field are both caught (the validator is not a no-op)."""
    objects = k8s_objects()
    dep = next(o for o in objects if o["kind"] == "Deployment")
    dep["spec"]["template"]["spec"]["securityContext"]["seccompProfle"] = {"type": "RuntimeDefault"}
    dep["spec"]["replicas"] = "two"
    p = validate(node, objects)
    assert p.returncode == 1, output(p.stdout, p.stderr)
    errors = next(r for r in json.loads(p.stdout) if r["kind"] == "Deployment")["errors"]
    assert any("replicas must be integer" in e for e in errors), errors
    assert any("seccompProfle: unknown field" in e for e in errors), errors


def test_pod_security_restricted():
    spec = pod_spec()
    sc = spec["securityContext"]
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, sc
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == CORRAL_UID, sc
    assert spec["containers"], spec
    for c in spec["containers"] + spec.get("initContainers", []):
        csc = c.get("securityContext", {})
        assert csc.get("allowPrivilegeEscalation") is False, c["name"]
        assert csc.get("capabilities", {}).get("drop") == ["ALL"], c["name"]
        assert not csc.get("privileged") and "add" not in csc.get("capabilities", {}), c["name"]
        assert csc.get("runAsNonRoot", True) is True and csc.get("runAsUser", CORRAL_UID) != 0
    assert "hostNetwork" not in spec and "hostPID" not in spec


def test_admin_stays_in_the_pod_and_probes_are_exec():
    admin = corral_yaml()["admin"]
    assert admin["listen"].startswith("127.0.0.1:"), admin
    assert admin.get("ready_when", "upstream") in ("upstream", "serving")
    c = container("corral")
    assert not c.get("ports"), "the admin port must not be declared beyond the pod"
    config = "/etc/corral/corral.yaml"
    ready, live = c["readinessProbe"], c["livenessProbe"]
    assert "httpGet" not in ready and "httpGet" not in live
    assert ready["exec"]["command"] == ["corral", "health", "--config", config, "--ready"], ready
    assert live["exec"]["command"] == ["corral", "health", "--config", config], live
    assert c["args"] == ["corral", "--config", config]
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert mounts.get("/etc/corral") == "corral-config"
    assert "prometheus.io/scrape" not in one("Deployment")["spec"]["template"]["metadata"].get(
        "annotations", {}), "nothing can scrape a loopback admin port"


def test_socket_shared_through_an_emptydir():
    assert f"unix:{SOCKET}" in corral_yaml()["listen"]
    sock_dir = os.path.dirname(SOCKET)
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    names = set()
    for c in pod_spec()["containers"]:
        names |= {m["name"] for m in c.get("volumeMounts", []) if m["mountPath"] == sock_dir}
    assert len(names) == 1, names
    (name,) = names
    assert "emptyDir" in volumes[name], volumes[name]
    users = [c["name"] for c in pod_spec()["containers"]
             if any(m["name"] == name and m["mountPath"] == sock_dir and not m.get("readOnly")
                    for m in c.get("volumeMounts", []))]
    assert sorted(users) == ["app", "corral"], users
    # The app uses the socket, not a TCP address.
    assert SOCKET in json.dumps(container("app")), container("app")


def test_disruption_budget_and_drain_times():
    pdb, dep = one("PodDisruptionBudget"), one("Deployment")
    labels = dep["spec"]["template"]["metadata"]["labels"]
    sel = pdb["spec"]["selector"]["matchLabels"]
    assert sel and all(labels.get(k) == v for k, v in sel.items()), (sel, labels)
    assert ("maxUnavailable" in pdb["spec"]) != ("minAvailable" in pdb["spec"])
    assert dep["spec"]["replicas"] >= 2, "a budget over one replica blocks every drain"
    pre = container("corral")["lifecycle"]["preStop"]["exec"]["command"]
    assert pre[0] == "sleep", pre
    pause = float(pre[1])
    shutdown = seconds(corral_yaml()["shutdown_timeout"])
    grace = pod_spec()["terminationGracePeriodSeconds"]
    assert grace > pause + shutdown, (grace, pause, shutdown)


def test_configmap_config_passes_check_config(tmp_path):
    data = one("ConfigMap")["data"]
    # The ConfigMap is mounted at /etc/corral: the same files in a temporary directory.
    for name, text in data.items():
        (tmp_path / name).write_text(text.replace("/etc/corral/", f"{tmp_path}/"))
    p = subprocess.run([corral_bin(), "--check-config", str(tmp_path / "corral.yaml")],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 0, output(p.stdout, p.stderr)
    # And the check is not blind: a broken copy fails.
    (tmp_path / "bad.yaml").write_text(data["corral.yaml"].replace("ready_when: upstream",
                                                                   "ready_when: sometimes"))
    p = subprocess.run([corral_bin(), "--check-config", str(tmp_path / "bad.yaml")],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode == 1 and "admin.ready_when" in p.stdout + p.stderr, p


# ---- corral health, as the image and the probes run it ----------------------------------

def has_health() -> bool:
    p = subprocess.run([corral_bin(), "--help"], capture_output=True, text=True, timeout=10)
    return "corral health" in p.stdout + p.stderr


def test_health_commands_of_image_and_probes(tmp_path, redis_server):
    """The HEALTHCHECK and probe commands against a running corral with the ConfigMap's admin
    settings: 0 while it runs (and, for --ready, while Redis is up), non-zero once it is gone."""
    if not has_health():
        pytest.skip("this build has no `corral health` (the subcommand comes from another "
                    "branch of issue 14)")
    from harness import Corral  # the factory fixture would SIGTERM it again
    cfg = corral_config(redis_server.port)
    cfg["admin"] = {"listen": f"127.0.0.1:{free_port()}",
                    "ready_when": corral_yaml()["admin"].get("ready_when", "upstream")}
    c = Corral(cfg)
    try:
        for argv in (["health"], ["health", "--ready"]):
            p = subprocess.run([corral_bin(), argv[0], "--config", c.config_path] + argv[1:],
                               capture_output=True, text=True, timeout=10)
            assert p.returncode == 0, (argv, output(p.stdout, p.stderr))
    finally:
        c.close()
    p = subprocess.run([corral_bin(), "health", "--config", c.config_path],
                       capture_output=True, text=True, timeout=10)
    assert p.returncode != 0, output(p.stdout, p.stderr)


# ---- systemd ------------------------------------------------------------------------------

def unit() -> configparser.RawConfigParser:
    cp = configparser.RawConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # keys are case-sensitive
    # Repeated keys (SystemCallFilter=) accumulate in systemd; the last one is enough here.
    with open(SERVICE) as f:
        cp.read_string(f.read())
    return cp


def test_systemd_unit_verifies(tmp_path):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.fail("systemd-analyze is needed (Debian's systemd package)", pytrace=False)
    # verify checks that ExecStart's binary exists: point it at the one under test.
    text = open(SERVICE).read().replace("/usr/local/bin/corral", corral_bin())
    copy = tmp_path / "corral.service"
    copy.write_text(text)
    p = subprocess.run([tool, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and not p.stderr.strip(), output(p.stdout, p.stderr)
    # Not blind: an unknown directive is reported.
    copy.write_text(text.replace("PrivateTmp=yes", "PrivateTmp=yes\nProtectSistem=strict"))
    p = subprocess.run([tool, "verify", str(copy)], capture_output=True, text=True, timeout=60)
    assert "ProtectSistem" in p.stderr, output(p.stdout, p.stderr)


def test_systemd_unit_hardening_and_stop():
    s = unit()["Service"]
    assert s["ProtectSystem"] == "strict" and s["NoNewPrivileges"] == "yes"
    assert s["PrivateTmp"] == "yes" and s["ProtectHome"] == "yes"
    assert set(s["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert s["CapabilityBoundingSet"] == "" and s["User"] == "corral"
    assert s["ExecReload"].split() == ["/bin/kill", "-HUP", "$MAINPID"]
    assert s["KillSignal"] == "SIGTERM"
    # TimeoutStopSec beyond the shipped config's shutdown_timeout (the drain).
    with open(os.path.join(REPO_ROOT, "config", "corral.yaml")) as f:
        shutdown = seconds(yaml.safe_load(f).get("shutdown_timeout", "5s"))
    assert seconds(s["TimeoutStopSec"]) > shutdown, (s["TimeoutStopSec"], shutdown)
    assert s["RuntimeDirectory"] == "corral"
    assert "--config /etc/corral/corral.yaml" in s["ExecStart"]


def test_deploy_readme_describes_every_file():
    with open(os.path.join(REPO_ROOT, "deploy", "README.md")) as f:
        readme = f.read()
    deploy = os.path.join(REPO_ROOT, "deploy")
    for dirpath, _, files in os.walk(deploy):
        for name in files:
            rel = os.path.relpath(os.path.join(dirpath, name), deploy)
            if rel == "README.md":
                continue
            assert f"`{rel}`" in readme, f"deploy/README.md does not describe {rel}"
