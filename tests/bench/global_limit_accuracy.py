#!/usr/bin/python3
"""Accuracy of a global rate limit (`scope: global`) shared by a fleet of corrals, against the
ideal and against a static split of the limit over the pods (what Envoy's per-pod local rate
limit does: each of N pods gets rate/N, burst/N). A benchmark: it prints a table, it asserts
nothing.

usage: tests/bench/global_limit_accuracy.py [--corral-bin PATH] [--rate 2000] [--burst 200]
           [--pods 4] [--seconds 10] [--loads 0.5,1,3,moving] [--scopes global,local]

  --corral-bin   the corral binary (else $CORRAL_BIN, else build/debug/cmd/corral/corral)
  --loads        offered load as multiples of the rate, skewed 70/10/10/10 over 4 pods (the
                 busy pod takes 70%, scaled for other pod counts); `moving` is 3x with the busy
                 pod's load moving to the next pod halfway
  --scopes       global: the pods share one limit of rate/burst through Redis;
                 local: each pod has a local limit of rate/N, burst/N (a real static split,
                 measured: it checks the computed column)

It starts its own redis-server and N corrals (workers: 1) on loopback, with one policy per run
(`r<i>:<id>`, its own limit name, so every run starts from a fresh state), and drives them with
tests/support/fleet_load.py: one thread per pod, a pipelined batch of GETs every 10 ms, spread
evenly. Per run:

  ideal     min(offered, rate x t + burst), t the measured wall time
  admitted  replies other than -RATELIMITED
  static    the static split computed on the same arrivals: per pod, a GCRA bucket of rate/N,
            burst/N over that pod's own batches (for a steady pod, min(its offered, rate/N x t
            + burst/N))
  takes     refill round trips to Redis, from the pods' /metrics (global runs)
  dropped   credits taken from Redis but never spent (their lease ended), from /metrics
"""

import argparse
import os
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "support"))

import harness  # noqa: E402
from fleet_load import due_schedule, gcra_admit, run_fleet  # noqa: E402
from harness import Corral, RedisServer, corral_config  # noqa: E402


def skew(pods):
    """70% on the first pod, the rest shared evenly (70/10/10/10 for 4 pods)."""
    if pods == 1:
        return [1.0]
    return [0.7] + [0.3 / (pods - 1)] * (pods - 1)


def global_counts(pods, name):
    """(takes, credits dropped) of limit name, summed over the pods' /metrics."""
    takes = dropped = 0.0
    for p in pods:
        for k, v in p.metrics().items():
            if f'limit="{name}"' not in k:
                continue
            if k.startswith("corral_ratelimit_global_takes_total{"):
                takes += v
            elif k.startswith("corral_ratelimit_global_credits_total{") and 'event="dropped"' in k:
                dropped += v
    return takes, dropped


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corral-bin")
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--pods", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--loads", default="0.5,1,3,moving")
    ap.add_argument("--scopes", default="global,local")
    a = ap.parse_args()
    if a.corral_bin:
        os.environ["CORRAL_BIN"] = a.corral_bin
    loads = a.loads.split(",")
    scopes = a.scopes.split(",")
    n = a.pods

    runs = []  # (load, scope, prefix, limit name)
    policies = []
    tag = uuid.uuid4().hex[:6]
    for load in loads:
        for scope in scopes:
            prefix = f"r{len(runs)}"
            name = f"{scope}-{load}-{tag}".replace(".", "_")
            if scope == "global":
                lim = {"name": name, "rate": f"{a.rate}/s", "burst": a.burst, "scope": "global"}
            else:
                lim = {"name": name, "rate": f"{a.rate / n:g}/s", "burst": max(1, a.burst // n)}
            policies.append({"name": prefix, "match": f"{prefix}:<id:u64>", "rate_limits": [lim]})
            runs.append((load, scope, prefix, name))

    print(f"corral {harness.corral_bin()}; {n} pods, rate {a.rate}/s, burst {a.burst}, "
          f"{a.seconds:g} s per run, load skewed {'/'.join(f'{s * 100:.0f}' for s in skew(n))}")
    hdr = (f"{'load':>6} {'scope':>6} {'offered':>8} {'t(s)':>6} {'ideal':>7} {'admitted':>8} "
           f"{'adm/ideal':>9} {'static':>7} {'stat/ideal':>10} {'takes':>6} {'dropped':>7} "
           f"{'other':>5}")
    rows = []
    pod_rows = []  # admitted / offered per pod
    with RedisServer() as redis:
        cfg = corral_config(redis.port, policies=policies,
                            **{"global": {"unmatched_keys": "allow"}})
        pods = [Corral(cfg) for _ in range(n)]
        try:
            for load, scope, prefix, name in runs:
                if load == "moving":
                    dues = due_schedule(3 * a.rate, skew(n), a.seconds / 2,
                                        skew(n)[-1:] + skew(n)[:-1])
                else:
                    dues = due_schedule(float(load) * a.rate, skew(n))
                run = run_fleet([p.port for p in pods], dues, a.seconds, f"{prefix}:1")
                for problem in run.problems():
                    print(f"  [{load} {scope}] {problem}")
                offered = run.count("n")
                admitted = run.count("admitted")
                ideal = min(offered, a.rate * run.wall + a.burst)
                static = sum(gcra_admit([(b.t_send, b.n) for b in p.batches], a.rate / n,
                                        max(1, a.burst // n)) for p in run.pods)
                if scope == "global":
                    time.sleep(1.0)  # the last leases end: their unspent credits are dropped
                    t, d = (f"{x:.0f}" for x in global_counts(pods, name))
                else:
                    t = d = "-"
                other = run.count("upstream_err") + sum(len(b.other) for b in run.batches())
                rows.append(f"{load:>6} {scope:>6} {offered:>8} {run.wall:>6.2f} {ideal:>7.0f} "
                            f"{admitted:>8} {admitted / ideal:>9.3f} {static:>7} "
                            f"{static / ideal:>10.3f} {t:>6} {d:>7} {other:>5}")
                print(rows[-1] if len(rows) > 1 else hdr + "\n" + rows[-1], flush=True)
                pod_rows.append(f"{load:>6} {scope:>6} " + " ".join(
                    f"{run.count('admitted', pod=i):>6}/{run.count('n', pod=i):<6}"
                    for i in range(n)))
        finally:
            for p in pods:
                p.close()
    print("\n" + hdr + "\n" + "\n".join(rows))
    print("\nadmitted/offered per pod (pod 0 is the busy one; `moving`: pod 1 from halfway)")
    print(f"{'load':>6} {'scope':>6} " + " ".join(f"{'pod ' + str(i):^13}" for i in range(n)))
    print("\n".join(pod_rows))
    print("admitted: what the pods let through (global: one shared limit; local: rate/N per "
          "pod, measured). static: the static split computed on the same arrivals.")


if __name__ == "__main__":
    main()
