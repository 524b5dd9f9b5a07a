#!/usr/bin/python3
"""Print bench.sh's results as plain-text tables.

usage: report.py RESULTS_DIR

Reads from RESULTS_DIR (all written by bench.sh):
  throughput.csv  round,clients,pipeline,system,test,rps,avg,min,p50,p95,p99,max
                  (one row per redis-benchmark test; latencies in ms as redis-benchmark --csv gives)
  instr.csv       system,gets,ir      (callgrind: user-space instructions over `gets` GETs)
  rss.csv         system,conns,rss_before_kib,rss_after_kib
  cpu.csv         round,clients,pipeline,system,requests,server_ns (run time of redis-server's
                  and the proxy's threads over one redis-benchmark run, SET and GET together)
Missing files are skipped. Medians are over rounds; the ratio is a proxy's median ops/s divided
by direct Redis's median ops/s (over TCP) in the same scenario and test; "x corral" divides by
corral's (corral_pol: corral with tests/bench/policies20.yaml; *_unix: through a unix socket).
"""

import csv
import os
import statistics
import sys

SYSTEM_ORDER = ["redis", "redis_unix", "corral", "corral_unix", "corral_pol", "twemproxy"]


def read_csv(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def table(headers, rows, right=None):
    """Format rows as an aligned plain-text table; columns in `right` are right-aligned."""
    right = right if right is not None else set(range(1, len(headers)))
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(r):
        return "  ".join(
            r[i].rjust(widths[i]) if i in right else r[i].ljust(widths[i]) for i in range(len(r))
        ).rstrip()

    out = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    out += [fmt(r) for r in cells[1:]]
    return "\n".join(out)


def system_key(name):
    return (SYSTEM_ORDER.index(name) if name in SYSTEM_ORDER else len(SYSTEM_ORDER), name)


def throughput(rows):
    groups = {}
    for r in rows:
        key = (int(r["clients"]), int(r["pipeline"]), r["test"], r["system"])
        groups.setdefault(key, []).append(r)
    scenarios = sorted({(k[0], k[1]) for k in groups}, key=lambda s: (s[1], s[0]))
    tests = sorted({k[2] for k in groups}, key=lambda t: (t != "GET", t))
    systems = sorted({k[3] for k in groups}, key=system_key)
    out = []
    for clients, pipeline in scenarios:
        for test in tests:
            base = groups.get((clients, pipeline, test, "redis"))
            base_rps = statistics.median(float(r["rps"]) for r in base) if base else None
            cor = groups.get((clients, pipeline, test, "corral"))
            corral_rps = statistics.median(float(r["rps"]) for r in cor) if cor else None
            for system in systems:
                g = groups.get((clients, pipeline, test, system))
                if not g:
                    continue
                rps = statistics.median(float(r["rps"]) for r in g)
                p50 = statistics.median(float(r["p50"]) for r in g)
                p99 = statistics.median(float(r["p99"]) for r in g)
                spread = f"{min(float(r['rps']) for r in g):,.0f}-{max(float(r['rps']) for r in g):,.0f}"
                ratio = f"{rps / base_rps:.2f}" if base_rps else "-"
                vs_corral = (f"{rps / corral_rps:.2f}"
                             if corral_rps and system not in ("redis", "redis_unix") else "-")
                out.append([f"c={clients} P={pipeline}", test, system, len(g), f"{rps:,.0f}",
                            spread, f"{p50:.3f}", f"{p99:.3f}", ratio, vs_corral])
    return table(["scenario", "test", "system", "rounds", "median ops/s", "range ops/s",
                  "p50 ms", "p99 ms", "x redis", "x corral"], out,
                 right={3, 4, 5, 6, 7, 8, 9})


def cpu(rows):
    groups = {}
    for r in rows:
        key = (int(r["clients"]), int(r["pipeline"]), r["system"])
        groups.setdefault(key, []).append(int(r["server_ns"]) / int(r["requests"]))
    scenarios = sorted({(k[0], k[1]) for k in groups}, key=lambda s: (s[1], s[0]))
    systems = sorted({k[2] for k in groups}, key=system_key)
    out = []
    for clients, pipeline in scenarios:
        base = groups.get((clients, pipeline, "redis"))
        base_ns = statistics.median(base) if base else None
        for system in systems:
            g = groups.get((clients, pipeline, system))
            if not g:
                continue
            ns = statistics.median(g)
            ratio = f"{ns / base_ns:.2f}" if base_ns else "-"
            out.append([f"c={clients} P={pipeline}", system, len(g), f"{ns:,.0f}",
                        f"{min(g):,.0f}-{max(g):,.0f}", ratio])
    return table(["scenario", "system", "rounds", "median ns/req", "range ns/req", "x redis"],
                 out, right={2, 3, 4, 5})


def main():
    d = sys.argv[1]
    tp = read_csv(os.path.join(d, "throughput.csv"))
    if tp:
        print("Throughput and latency (median over rounds; client alone on CPU 1, redis-server and")
        print("the proxy under test on CPU 0; x redis = median ops/s / direct Redis median ops/s)")
        print()
        print(throughput(tp))
        print()
    cp = read_csv(os.path.join(d, "cpu.csv"))
    if cp:
        print("Server-side CPU per request (run time of redis-server's and the proxy's threads,")
        print("schedstat, over each run's SETs and GETs; kernel work included, waiting not, so")
        print("it holds up on a busy machine better than ops/s; x redis = / direct Redis (TCP))")
        print()
        print(cpu(cp))
        print()
    ins = read_csv(os.path.join(d, "instr.csv"))
    if ins:
        rows = []
        for r in sorted(ins, key=lambda r: system_key(r["system"])):
            gets, ir = int(r["gets"]), int(r["ir"])
            rows.append([r["system"], f"{gets:,}", f"{ir:,}", f"{ir / gets:,.0f}"])
        print("Proxy instructions per GET (callgrind, user space only, all threads; counted over")
        print("the GETs below after a warm-up; the client is redis-benchmark -c 50 -P 16)")
        print()
        print(table(["proxy", "GETs", "instructions", "instr/GET"], rows))
        print()
    rss = read_csv(os.path.join(d, "rss.csv"))
    if rss:
        rows = []
        for r in sorted(rss, key=lambda r: system_key(r["system"])):
            n, before, after = int(r["conns"]), int(r["rss_before_kib"]), int(r["rss_after_kib"])
            per = f"{(after - before) / n:.1f}" if n else "-"
            rows.append([r["system"], f"{before:,}", f"{n:,}", f"{after:,}", per])
        print("Resident memory (VmRSS, KiB) of a fresh proxy, then with idle clients (each sent")
        print("one PING and got PONG)")
        print()
        print(table(["proxy", "RSS fresh", "idle conns", "RSS with conns", "KiB/conn"], rows))
        print()


if __name__ == "__main__":
    main()
