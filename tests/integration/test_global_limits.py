"""Global rate limits (`scope: global`, issue 13): one limit shared by every corral on the same
Redis. Four corral processes ("pods") on one redis-server, each with the same limit, under load
from ../support/fleet_load.py (one thread per pod, a pipelined batch every 10 ms, spread evenly):

- skewed load (70/10/10/10) at 3x the rate, and the same with the load moving between pods
  halfway: the fleet admits at most rate x t + burst and at least 97% of it; each corral's
  /metrics agree with what the clients saw (admitted, rejected), with few takes and
  leased >= admitted;
- Redis SIGKILLed mid-run and restarted on its port, for each `on_unavailable`: no reply waits
  longer than 2 s; during the outage `deny` only refuses, `allow` only admits, `local_share`
  admits about rate/4 per pod; after the restart the limit is global again, at about the rate
  and never over rate x t + burst (plus what on_unavailable decided while corral reconnected);
- a cold bucket's first request is admitted (it waits for one take) and the shared state then
  refuses it on every pod; a limit that never trips admits everything;
- `on_unavailable` without `scope: global` is refused at load.

test_local_limit_single_pod runs the same load against a local limit of one corral: it checks
the harness (and local limits) with the same accuracy bounds. corral-only; about a minute.
"""

import os
import re
import signal
import socket
import time
import uuid

import pytest

from cluster_upstream import REDIS_PROCESS
from fleet_load import due_schedule, run_fleet
from harness import RespConn, RespError, corral_config, run_corral_cli, to_yaml, wait_until

PODS = 4
RATE = 2000      # per second, for the whole fleet
BURST = 200
OFFERED = 3.0    # x RATE
RUN_S = 10.0
SKEW = [0.7, 0.1, 0.1, 0.1]
EVEN = [1.0 / PODS] * PODS
REPLY_BOUND = 2.0  # seconds: every batch of replies within this (and the socket timeout)
LEASE_S = 1.0      # unspent credits are dropped this long after their take (README)
KEY = "gl:item"


def unique(prefix: str) -> str:
    """A limit name of its own: its Redis state (keyed by the name) starts fresh."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def limit(name, rate=f"{RATE}/s", burst=BURST, scope="global", **extra) -> dict:
    return {"name": name, "rate": rate, "burst": burst, "commands": ["GET"], "scope": scope,
            **extra}


def start_pods(factory, redis_port, n=PODS, upstream=None, **overrides):
    """n corrals on one Redis, the same config each."""
    cfg = corral_config(redis_port, upstream=upstream or {}, **overrides)
    return [factory(cfg) for _ in range(n)]


def metric(m: dict, name: str, **labels) -> float:
    """The sample of name with exactly these labels (in any order); 0 when absent (a counter
    not yet created)."""
    want = {k: str(v) for k, v in labels.items()}
    for key, value in m.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', rest))
        if got == want:
            return value
    return 0.0


def total(pods, name, **labels) -> float:
    return sum(metric(p.metrics(), name, **labels) for p in pods)


def takes(m: dict, lim: str) -> float:
    return sum(metric(m, "corral_ratelimit_global_takes_total", limit=lim, result=r)
               for r in ("granted", "empty", "failed"))


def sleep_until(t: float):
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)


def summary(run) -> str:
    per_pod = [run.count("admitted", pod=i) for i in range(len(run.pods))]
    offered = run.count("n")
    return (f"offered {offered} in {run.wall:.2f}s ({offered / run.wall:.0f}/s), admitted "
            f"{sum(per_pod)} {per_pod}, refused {run.count('limited')}")


def check_accuracy(run, rate, burst):
    """Admitted at most rate x t + burst over the wall time (first send to last reply), and at
    least 97% of rate x t + burst over the time load was offered (first to last send): a busy
    machine's slow last replies widen the first and add nothing to admit."""
    assert not run.problems(), run.problems()
    assert run.count("upstream_err") == 0, "upstream errors with Redis up"
    admitted = run.count("admitted")
    bound = rate * run.wall + burst
    floor = 0.97 * (rate * run.send_span + burst)
    print(f"\n{summary(run)}; bound {bound:.0f}, admitted/bound {admitted / bound:.4f}, "
          f"floor {floor:.0f} (sent over {run.send_span:.2f}s)")
    assert admitted <= bound, f"admitted {admitted} > rate x t + burst = {bound:.0f}"
    assert admitted >= floor, f"admitted {admitted} < 97% of rate x send span + burst"
    return admitted


def check_metrics(pods, run, name):
    """/metrics of every pod agree with the clients: admitted and rejected counts equal; takes
    far fewer than admissions (credits come in batches); leased >= admitted + dropped."""
    ms = [p.metrics() for p in pods]
    admitted = run.count("admitted")
    got = sum(metric(m, "corral_ratelimit_requests_total", limit=name, result="admitted")
              for m in ms)
    rejected = sum(metric(m, "corral_ratelimit_requests_total", limit=name, result="rejected")
                   for m in ms)
    n_takes = sum(takes(m, name) for m in ms)
    leased = sum(metric(m, "corral_ratelimit_global_credits_total", limit=name, event="leased")
                 for m in ms)
    dropped = sum(metric(m, "corral_ratelimit_global_credits_total", limit=name,
                         event="dropped") for m in ms)
    failed = sum(metric(m, "corral_ratelimit_global_takes_total", limit=name, result="failed")
                 for m in ms)
    print(f"metrics: admitted {got:.0f} rejected {rejected:.0f} takes {n_takes:.0f} "
          f"(failed {failed:.0f}) leased {leased:.0f} dropped {dropped:.0f}")
    assert got == admitted, f"/metrics admitted {got} != {admitted} seen by the clients"
    assert rejected == run.count("limited"), (rejected, run.count("limited"))
    assert 0 < n_takes * 5 <= admitted, f"{n_takes} takes for {admitted} admissions"
    assert failed == 0, f"{failed} failed takes with Redis up"
    assert leased >= admitted + dropped, (leased, admitted, dropped)
    for i, m in enumerate(ms):
        assert metric(m, "corral_ratelimit_global_sidecars") == len(pods), (i, m)

    # once every lease has ended, each credit leased was spent or dropped
    def credits():
        out = []
        for p in pods:
            m = p.metrics()
            out.append(tuple(metric(m, "corral_ratelimit_global_credits_total", limit=name,
                                    event=e) for e in ("leased", "dropped")) +
                       (metric(m, "corral_ratelimit_requests_total", limit=name,
                               result="admitted"),))
        return out
    deadline = time.monotonic() + 4 * LEASE_S + 2
    while not all(lsd == drp + adm for lsd, drp, adm in credits()):
        assert time.monotonic() < deadline, \
            f"(leased, dropped, admitted) per pod after the leases' end: {credits()}"
        time.sleep(0.1)


def test_local_limit_single_pod(redis_server, corral_factory):
    """The harness against what exists: one corral, a local limit, 3x its rate for 5 s."""
    name = unique("local")
    pod = corral_factory(corral_config(redis_server.port, **{
        "global": {"rate_limits": [limit(name, rate="1000/s", burst=100, scope="local")]}}))
    run = run_fleet([pod.port], due_schedule(3000, [1.0]), 5.0, KEY, REPLY_BOUND)
    admitted = check_accuracy(run, 1000, 100)
    m = pod.metrics()
    assert metric(m, "corral_ratelimit_requests_total", limit=name, result="admitted") == admitted
    assert metric(m, "corral_ratelimit_requests_total", limit=name, result="rejected") == \
        run.count("limited")


@pytest.mark.parametrize("moving", [False, True], ids=["skewed", "moving"])
def test_skewed_load_shares_one_limit(redis_server, corral_factory, moving):
    name = unique("skew")
    pods = start_pods(corral_factory, redis_server.port,
                      **{"global": {"rate_limits": [limit(name)]}})
    if moving:  # the busy pod's load moves to the next pod halfway
        dues = due_schedule(OFFERED * RATE, SKEW, RUN_S / 2, SKEW[-1:] + SKEW[:-1])
    else:
        dues = due_schedule(OFFERED * RATE, SKEW)
    run = run_fleet([p.port for p in pods], dues, RUN_S, KEY, REPLY_BOUND)
    check_accuracy(run, RATE, BURST)
    sample = next(b.limited_sample for b in run.batches() if b.limited_sample)
    assert re.fullmatch(rf"RATELIMITED {re.escape(name)} retry_after_ms=\d+", sample), sample
    check_metrics(pods, run, name)


KILL_AT = 2.5   # s into the run
OUTAGE = 2.0    # s between the kill and the restart
FAULT_RUN_S = 8.0
SETTLE = 0.5  # after the kill: corral knows Redis is down and, at 3x load, has spent what it held


@pytest.mark.single_node(REDIS_PROCESS)
@pytest.mark.parametrize("mode", ["deny", "local_share", "allow"])
def test_redis_killed_and_restarted(redis_server, corral_factory, mode):
    name = unique(f"down-{mode}")
    pods = start_pods(corral_factory, redis_server.port,
                      upstream={"command_timeout": "1s", "connect_timeout": "300ms"},
                      **{"global": {"rate_limits": [limit(name, on_unavailable=mode)]}})
    marks = {}

    def unavailable():
        return [metric(p.metrics(), "corral_ratelimit_global_unavailable_total", limit=name)
                for p in pods]

    def granted():
        return [metric(p.metrics(), "corral_ratelimit_global_takes_total", limit=name,
                       result="granted") for p in pods]

    def fault(t0):
        sleep_until(t0 + KILL_AT)
        # N for local_share: every pod counts the 4 live sidecars before Redis goes
        wait_until(lambda: all(metric(p.metrics(), "corral_ratelimit_global_sidecars") == PODS
                               for p in pods), 3.0, what="4 sidecars counted by every pod")
        marks["kill"] = time.monotonic()
        redis_server.kill()  # SIGKILL by pid
        marks["dead"] = time.monotonic()
        sleep_until(marks["dead"] + OUTAGE)
        marks["unavailable"] = unavailable()
        marks["granted"] = granted()
        marks["restart"] = time.monotonic()  # Redis's state is fresh from here on
        redis_server.start()
        marks["up"] = time.monotonic()

    dues = due_schedule(OFFERED * RATE, EVEN)
    run = run_fleet([p.port for p in pods], dues, FAULT_RUN_S, KEY, REPLY_BOUND, during=fault)
    # no hang: every batch answered within REPLY_BOUND, no reply other than a value,
    # -RATELIMITED or corral's upstream error
    assert not run.problems(), run.problems()
    print(f"\n{mode}: {summary(run)}; redis down {marks['restart'] - marks['kill']:.2f}s")

    # before the kill: the limit held with Redis up
    before = run.batches(until=marks["kill"])
    # a batch still in flight when Redis died may get corral's upstream error: not counted
    assert sum(b.upstream_err for b in before if b.t_done < marks["kill"]) == 0
    assert sum(b.admitted for b in before) <= RATE * (marks["kill"] - run.t_first) + BURST

    # the outage: Redis is gone, so whatever the limit admitted got corral's upstream error
    down = run.batches(since=marks["dead"], until=marks["restart"])
    assert all(b.admitted == b.upstream_err for b in down), \
        [b for b in down if b.admitted != b.upstream_err][:3]
    settled = marks["dead"] + SETTLE
    w = marks["restart"] - settled
    late = run.batches(since=settled, until=marks["restart"])
    late_admitted = sum(b.admitted for b in late)
    late_offered = sum(b.n for b in late)
    per_pod = [run.count("admitted", pod=i, since=settled, until=marks["restart"])
               for i in range(PODS)]
    print(f"outage after {SETTLE}s: offered {late_offered}, admitted {late_admitted} {per_pod}")
    if mode == "deny":
        assert late_admitted == 0, f"deny admitted {late_admitted} with Redis down"
        sample = next(b.limited_sample for b in late if b.limited_sample)
        assert re.fullmatch(rf"RATELIMITED {re.escape(name)} retry_after_ms=\d+", sample), sample
    elif mode == "allow":
        assert late_admitted == late_offered, f"allow refused {late_offered - late_admitted}"
    else:
        share = RATE / PODS * w
        for i, got in enumerate(per_pod):
            assert 0.5 * share <= got <= 1.5 * share + BURST / PODS, \
                f"pod {i}: local_share admitted {got} in {w:.2f}s; rate/N x t = {share:.0f}"
    assert all(u > 0 for u in marks["unavailable"]), marks["unavailable"]

    # after the restart: from a fresh state, at most rate x t + burst through Redis, plus the
    # requests on_unavailable decided while corral had not reached the new Redis yet
    after_unavailable = sum(unavailable()) - sum(marks["unavailable"])
    allowance = 0 if mode == "deny" else after_unavailable
    post_admitted = run.count("admitted", since=marks["restart"])
    post_bound = RATE * (run.t_last - marks["restart"]) + BURST + allowance
    print(f"after the restart: admitted {post_admitted}, bound {post_bound:.0f} (on_unavailable "
          f"decided {after_unavailable:.0f} more)")
    assert post_admitted <= post_bound
    # ... and the limit is global again: every pod's takes are granted, at about the rate
    assert all(g > g0 for g, g0 in zip(granted(), marks["granted"])), (granted(), marks)
    steady = marks["up"] + 1.0
    tail = run.batches(since=steady)
    assert sum(b.upstream_err for b in tail) == 0, "upstream errors 1 s after the restart"
    tail_admitted = sum(b.admitted for b in tail)
    expect = RATE * (run.t_last - steady)
    assert 0.85 * expect <= tail_admitted, f"{tail_admitted} admitted in the last " \
        f"{run.t_last - steady:.2f}s, expected about {expect:.0f}"


def policy_fleet(factory, redis_port, limits: dict):
    """PODS corrals whose policies each carry one limit: {prefix: limit} for keys prefix:<u64>."""
    policies = [{"name": p, "match": f"{p}:<id:u64>", "rate_limits": [lim]}
                for p, lim in limits.items()]
    return start_pods(factory, redis_port, policies=policies,
                      **{"global": {"unmatched_keys": "allow"}})


@pytest.mark.single_node(REDIS_PROCESS)
def test_clients_leaving_while_waiting_for_credits(redis_server, corral_factory):
    """Redis is stopped, so the takes of cold buckets stay out: a client waiting for one is
    decided as unavailable (deny) within the wait bound, clients that leave while they wait
    leave nothing behind, and once Redis resumes the limit admits again."""
    name = unique("leave")
    c, = start_pods(corral_factory, redis_server.port, n=1, **{"global": {"rate_limits": [
        limit(name, rate="100/s", burst=100, key_by=["key"], commands=["SET"],
              on_unavailable="deny")]}})
    with RespConn(c.port) as warm:
        assert warm.cmd("PING") == "PONG"
    os.kill(redis_server.pid, signal.SIGSTOP)
    try:
        for i in range(5):  # each a cold bucket: it waits for its take, then leaves
            s = socket.create_connection(("127.0.0.1", c.port), timeout=2)
            s.sendall(b"*3\r\n$3\r\nSET\r\n$%d\r\nleave:%d\r\n$1\r\nv\r\n"
                      % (len(f"leave:{i}"), i))
            time.sleep(0.02)
            s.close()
        with RespConn(c.port, timeout=REPLY_BOUND) as conn:
            t = time.monotonic()
            r = conn.cmd("SET", "leave:waits", "v")
            waited = time.monotonic() - t
            assert isinstance(r, RespError) and r.message.startswith(f"RATELIMITED {name} "), r
            assert waited < 1.0, waited  # the wait is bounded (100 ms), not Redis's timeout
    finally:
        os.kill(redis_server.pid, signal.SIGCONT)
    def admits():
        with RespConn(c.port, timeout=REPLY_BOUND) as conn:
            return conn.cmd("SET", "leave:after", "v") == "OK"
    wait_until(admits, 5, what="the limit admitting again after Redis resumed")
    m = c.metrics()
    assert metric(m, "corral_ratelimit_global_unavailable_total", limit=name) >= 1
    wait_until(lambda: c.metrics()["corral_clients"] == 0, 5, what="the clients gone")
    wait_until(lambda: c.metrics()["corral_pending_requests"] == 0, 5, what="nothing pending")


def test_cold_bucket_first_request_admitted(redis_server, corral_factory):
    """key_by key, 6/m, burst 1: a new bucket's first request waits for its take and is
    admitted; the bucket is then spent for every pod (one state in Redis per bucket)."""
    name = unique("cold")
    pods = policy_fleet(corral_factory, redis_server.port,
                        {"cold": limit(name, rate="6/m", burst=1, key_by=["key"])})
    conns = [p.client(timeout=REPLY_BOUND) for p in pods]
    try:
        for i in range(PODS):
            key = f"cold:{i}"
            t = time.monotonic()
            r = conns[i].cmd("GET", key)
            assert r is None, f"first GET of a cold bucket on pod {i}: {r!r}"
            assert time.monotonic() - t < REPLY_BOUND
            for j in [i] + [j for j in range(PODS) if j != i]:
                r = conns[j].cmd("GET", key)
                assert isinstance(r, RespError) and re.fullmatch(
                    rf"RATELIMITED {re.escape(name)} retry_after_ms=\d+", r.message), (i, j, r)
                ms = int(r.message.rsplit("=", 1)[1])
                assert 0 < ms <= 10000, r
    finally:
        for c in conns:
            c.close()
    for i, p in enumerate(pods):
        m = p.metrics()
        assert metric(m, "corral_ratelimit_requests_total", limit=name, result="admitted") == 1
        assert takes(m, name) >= 1, i
    # the shared state: one PX-expiring key per bucket, named by the limit and a digest
    keys = sorted(k.decode() for k in redis_server.cmd("KEYS", "__corral:rl:{*"))
    pat = rf"__corral:rl:\{{{re.escape(name)}:[0-9a-f]{{32}}\}}"
    assert len(keys) == PODS and all(re.fullmatch(pat, k) for k in keys), keys
    assert all(redis_server.cmd("PTTL", k) > 0 for k in keys), keys
    assert redis_server.cmd("ZCARD", "__corral:rl:sidecars") == PODS


def test_limit_that_never_trips_admits_everything(redis_server, corral_factory):
    name = unique("roomy")
    pods = policy_fleet(corral_factory, redis_server.port,
                        {"roomy": limit(name, rate="100000/s", burst=10000)})
    per_pod, batch = 2000, 200
    conns = [p.client(timeout=REPLY_BOUND) for p in pods]
    try:
        for _ in range(per_pod // batch):
            for i, c in enumerate(conns):
                got = c.pipeline([("GET", f"roomy:{i}")] * batch)
                assert got == [None] * batch, [r for r in got if r is not None][:3]
    finally:
        for c in conns:
            c.close()
    ms = [p.metrics() for p in pods]
    n = PODS * per_pod
    assert sum(metric(m, "corral_ratelimit_requests_total", limit=name, result="admitted")
               for m in ms) == n
    assert sum(metric(m, "corral_ratelimit_requests_total", limit=name, result="rejected")
               for m in ms) == 0
    n_takes = sum(takes(m, name) for m in ms)
    assert 0 < n_takes * 10 <= n, f"{n_takes} takes for {n} requests"


def write_config(tmp_path, name, rate_limit_yaml: str, where="global") -> tuple:
    """A config file whose one limit is rate_limit_yaml (flow style), in global.rate_limits or a
    policy; (path, line of the limit)."""
    head = to_yaml(corral_config(6379)) + "\n"
    if where == "global":
        body = f"global:\n  rate_limits:\n    - {rate_limit_yaml}\n"
    else:
        body = ("policies:\n  - name: p\n    match: \"p:<id:u64>\"\n"
                f"    rate_limits:\n      - {rate_limit_yaml}\n")
    text = head + body
    path = tmp_path / name
    path.write_text(text)
    line = text.splitlines().index(next(ln for ln in text.splitlines()
                                        if rate_limit_yaml in ln)) + 1
    return path, line


def check_config(path) -> tuple:
    p = run_corral_cli(["--check-config", str(path)])
    return p.returncode, p.stderr.decode("utf-8", "replace")


@pytest.mark.parametrize("where,scope", [("global", None), ("policy", "local")])
def test_on_unavailable_needs_scope_global(tmp_path, corral_only, where, scope):
    scope_yaml = f", scope: {scope}" if scope else ""
    path, line = write_config(tmp_path, "bad.yaml", "{name: l, rate: 10/s" + scope_yaml +
                              ", on_unavailable: deny}", where)
    rc, err = check_config(path)
    assert rc == 1, (rc, err)
    key = ("global." if where == "global" else "policies[0].") + "rate_limits[0].on_unavailable"
    hits = [ln for ln in err.splitlines() if ln.startswith(f"{path}:{line}:") and key in ln]
    assert hits, err
    assert "scope" in hits[0] and "global" in hits[0], hits[0]
    # corral itself refuses to start with it
    p = run_corral_cli(["--config", str(path), "--ready-file", str(tmp_path / "ready")])
    assert p.returncode != 0, (p.returncode, p.stderr)
    assert not (tmp_path / "ready").exists()


def test_on_unavailable_values(tmp_path, corral_only):
    path, line = write_config(tmp_path, "bad.yaml", "{name: l, rate: 10/s, scope: global, "
                              "on_unavailable: sometimes}")
    rc, err = check_config(path)
    assert rc == 1, (rc, err)
    assert f"{path}:{line}:" in err and "global.rate_limits[0].on_unavailable" in err, err
    assert "sometimes" in err and "local_share" in err, err
    for i, value in enumerate(["local_share", "allow", "deny"]):
        for where in ("global", "policy"):
            path, _ = write_config(tmp_path, f"ok{i}{where}.yaml",
                                   "{name: l, rate: 10/s, scope: global, on_unavailable: "
                                   f"{value}}}", where)
            rc, err = check_config(path)
            assert rc == 0, (value, where, err)
