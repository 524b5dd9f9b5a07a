#!/usr/bin/env python3
"""Tables of tls_bench.sh: throughput medians and ratios, handshakes per second, the storm."""
import csv
import os
import statistics
import sys
from collections import defaultdict


def main(out):
    # Each part is optional (tls_bench.sh's PARTS).
    if os.path.exists(os.path.join(out, "throughput.csv")):
        throughput(out)
    if os.path.exists(os.path.join(out, "handshakes.csv")):
        handshakes(out)
    if os.path.exists(os.path.join(out, "storm.txt")):
        with open(os.path.join(out, "storm.txt")) as f:
            print(f.read(), end="")


def throughput(out):
    rows = defaultdict(list)  # (P, test, system) -> [(rps, p50, p99)]
    with open(os.path.join(out, "throughput.csv")) as f:
        for r in csv.reader(f):
            _, system, _, p, test, rps, p50, p99 = r
            rows[(int(p), test, system)].append((float(rps), float(p50), float(p99)))
    print("Throughput, c=50, 32-byte values (medians; x direct = corral / Redis of the same kind)")
    print(f"{'P':>3} {'test':<4} {'system':<11} {'rounds':>6} {'ops/s':>11} {'p50 ms':>7} "
          f"{'p99 ms':>7} {'x direct':>9}")
    med = {}
    for key in sorted(rows):
        vals = rows[key]
        med[key] = statistics.median(v[0] for v in vals)
    for key in sorted(rows, key=lambda k: (k[0], k[1], ["redis", "corral", "redis_tls",
                                                        "corral_tls"].index(k[2]))):
        p, test, system = key
        vals = rows[key]
        direct = {"corral": "redis", "corral_tls": "redis_tls"}.get(system)
        ratio = f"{med[key] / med[(p, test, direct)]:.2f}" if direct else "-"
        print(f"{p:>3} {test:<4} {system:<11} {len(vals):>6} {med[key]:>11,.0f} "
              f"{statistics.median(v[1] for v in vals):>7.3f} "
              f"{statistics.median(v[2] for v in vals):>7.3f} {ratio:>9}")
    print()
    for p in (1, 16):
        for test in ("GET", "SET"):
            plain = med[(p, test, "corral")] / med[(p, test, "redis")]
            tls = med[(p, test, "corral_tls")] / med[(p, test, "redis_tls")]
            print(f"P={p:<2} {test}: TLS ratio {tls:.2f} vs plain ratio {plain:.2f} "
                  f"(difference {tls - plain:+.2f}; target within 0.05)")
    print()


def handshakes(out):
    hs = defaultdict(list)
    with open(os.path.join(out, "handshakes.csv")) as f:
        for r in csv.reader(f):
            hs[r[1]].append(float(r[2]))
    print("TLS handshakes per second (redis-benchmark --tls -k 0, c=20, one PING per connection)")
    for s in ("redis_tls", "corral_tls"):
        print(f"{s:<11} median {statistics.median(hs[s]):>9,.0f}  rounds {hs[s]}")
    print(f"corral / redis: {statistics.median(hs['corral_tls']) / statistics.median(hs['redis_tls']):.2f}"
          " (target at least 0.8)")
    print()


if __name__ == "__main__":
    main(sys.argv[1])
