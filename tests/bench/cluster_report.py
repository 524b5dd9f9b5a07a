#!/usr/bin/env python3
"""Tables of cluster_bench.sh: throughput medians, corral's CPU per request, the ratios of
corral in front of the cluster to corral in front of one Redis and to cluster-aware access, and
the issue's two targets.

throughput.csv rows: round,system,P,test,requests,rps,p50,p99,cpu_ticks,cpu_ns (the CPU columns
are corral's, empty for systems without one)."""
import csv
import os
import statistics
import sys
from collections import defaultdict

SYSTEMS = ["cluster_direct", "corral_cluster", "single", "corral_single"]
TESTS = ["GET", "SET", "MGET", "MGET3"]
CPU_TARGET = 1.10  # corral_cluster CPU per request at most 1.10 x corral_single's
MGET_TARGET = 0.80  # corral_cluster MGET ops/s at least 0.8 x corral_single's


def load(out):
    with open(os.path.join(out, "clock.csv")) as f:
        clk_tck = int(next(csv.reader(f))[1])
    runs = defaultdict(list)  # (P, test, system) -> [dict]
    with open(os.path.join(out, "throughput.csv")) as f:
        for r in csv.reader(f):
            _, system, p, test, n, rps, p50, p99, ticks, ns = r
            run = {"rps": float(rps), "p50": float(p50), "p99": float(p99)}
            if ticks:
                # microseconds of corral CPU per request, from /proc/PID/stat and from schedstat
                run["cpu_stat"] = int(ticks) * 1e6 / clk_tck / int(n)
                run["cpu_sched"] = int(ns) / 1e3 / int(n)
            runs[(int(p), test, system)].append(run)
    return runs


def med(runs, key, field):
    vals = [r[field] for r in runs.get(key, []) if field in r]
    return statistics.median(vals) if vals else None


def ratio(a, b):
    return a / b if a is not None and b else None


def fmt(x, spec):
    return format(x, spec) if x is not None else "-"


def main(out):
    runs = load(out)
    rows = [k for k in runs]
    rows.sort(key=lambda k: (TESTS.index(k[1]), k[0], SYSTEMS.index(k[2])))

    print("Throughput, c=50, 32-byte values, -r 100000 (medians over rounds; MGET: 10 fixed keys "
          "on 3 shards in 10 slots; MGET3: 10 keys under 3 hash tags, one per shard)")
    print("CPU us/req: corral's CPU time per request (utime+stime of /proc/PID/stat; "
          "schedstat: its threads' run time)")
    print(f"{'P':>3} {'test':<5} {'system':<15} {'rounds':>6} {'ops/s':>11} {'range ops/s':>19} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'CPU us/req':>10} {'schedstat':>9}")
    for key in rows:
        p, test, system = key
        rps = [r["rps"] for r in runs[key]]
        print(f"{p:>3} {test:<5} {system:<15} {len(rps):>6} {statistics.median(rps):>11,.0f} "
              f"{f'{min(rps):,.0f}-{max(rps):,.0f}':>19} {med(runs, key, 'p50'):>7.3f} "
              f"{med(runs, key, 'p99'):>7.3f} {fmt(med(runs, key, 'cpu_stat'), '10.2f'):>10} "
              f"{fmt(med(runs, key, 'cpu_sched'), '9.2f'):>9}")
    print()

    cols = [(p, t) for t in TESTS for p in (1, 16)]
    print("Ratios of medians")
    print(f"{'':<40}" + "".join(f"{f'P={p} {t}':>10}" for p, t in cols))
    lines = [
        ("corral_cluster / corral_single  ops/s", "rps", "corral_cluster", "corral_single"),
        ("corral_cluster / corral_single  CPU/req", "cpu_stat", "corral_cluster",
         "corral_single"),
        ("  the same from schedstat", "cpu_sched", "corral_cluster", "corral_single"),
        ("corral_cluster / cluster_direct ops/s", "rps", "corral_cluster", "cluster_direct"),
        ("corral_single / single          ops/s", "rps", "corral_single", "single"),
        ("corral_cluster / single         ops/s", "rps", "corral_cluster", "single"),
    ]
    for label, field, a, b in lines:
        cells = [ratio(med(runs, (p, t, a), field), med(runs, (p, t, b), field)) for p, t in cols]
        print(f"{label:<40}" + "".join(f"{fmt(c, '.2f'):>10}" for c in cells))
    print()

    print("Targets")
    for p in (1, 16):
        for t in ("GET", "SET"):
            c = ratio(med(runs, (p, t, "corral_cluster"), "cpu_stat"),
                      med(runs, (p, t, "corral_single"), "cpu_stat"))
            s = ratio(med(runs, (p, t, "corral_cluster"), "cpu_sched"),
                      med(runs, (p, t, "corral_single"), "cpu_sched"))
            print(f"P={p:<2} {t:<4} CPU per request, cluster / single: {fmt(c, '.2f')} "
                  f"(schedstat {fmt(s, '.2f')}; target at most {CPU_TARGET:.2f}): "
                  f"{verdict(c, lambda x: x <= CPU_TARGET)}")
    for t, what in (("MGET", "10 slots"), ("MGET3", "3 hash tags")):
        for p in (1, 16):
            m = ratio(med(runs, (p, t, "corral_cluster"), "rps"),
                      med(runs, (p, t, "corral_single"), "rps"))
            print(f"P={p:<2} {t:<5} ({what}) ops/s across shards, cluster / single through "
                  f"corral: {fmt(m, '.2f')} (target at least {MGET_TARGET:.2f}): "
                  f"{verdict(m, lambda x: x >= MGET_TARGET)}")
    print()


def verdict(x, ok):
    if x is None:
        return "not measured"
    return "met" if ok(x) else "missed"


if __name__ == "__main__":
    main(sys.argv[1])
