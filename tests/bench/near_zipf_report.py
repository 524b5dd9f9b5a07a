#!/usr/bin/env python3
"""Tables of near_zipf_bench.sh's runs (OUT_DIR/zipf.csv, offload.csv, saturated.csv): medians
over rounds, ratios to direct Redis, Redis's share of the GETs, the near cache's hit ratio.

    near_zipf_report.py OUT_DIR
"""
import csv
import os
import statistics
import sys


def rows(out, name):
    path = os.path.join(out, name)
    return list(csv.DictReader(open(path))) if os.path.exists(path) else []


def med(values):
    return statistics.median(values) if values else float("nan")


def zipf_table(runs):
    if not runs:
        return
    names = {"direct": "direct", "corral_plain": "corral, no near cache",
             "near_small": "corral + near (small)", "near": "corral + near (big)"}
    print("Zipf(0.99) over 100,000 keys, GET, c=50 (zipf_get); medians over "
          f"{len({r['round'] for r in runs})} rounds")
    print(f"{'P':>3} {'system':<22} {'ops/s':>10} {'range':>19} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'x direct':>8} {'Redis ran':>9} {'cmds/GET':>8} {'near hits':>9} {'CPU us/GET':>10}")
    for p in ("1", "16"):
        direct = med([float(r["ops_s"]) for r in runs if r["system"] == "direct" and r["P"] == p])
        for s, label in names.items():
            rs = [r for r in runs if r["system"] == s and r["P"] == p]
            if not rs:
                continue
            ops = [float(r["ops_s"]) for r in rs]
            share = med([int(r["redis_gets"]) / int(r["requests"]) for r in rs])
            cmds = med([int(r["redis_calls"]) / int(r["requests"]) for r in rs])
            looked = [r for r in rs if int(r["near_hits"]) + int(r["near_misses"]) > 0]
            hit = med([int(r["near_hits"]) / (int(r["near_hits"]) + int(r["near_misses"]))
                       for r in looked])
            ratio = f"{hit:>8.1%}" if looked else f"{'-':>8}"
            cpu = med([int(r["server_ns"]) / int(r["requests"]) / 1e3 for r in rs
                       if r.get("server_ns")])  # runs before the column existed: nan
            print(f"{p:>3} {label:<22} {med(ops):>10,.0f} {min(ops):>9,.0f}-{max(ops):<9,.0f} "
                  f"{med([float(r['p50_ms']) for r in rs]):>7.3f} "
                  f"{med([float(r['p99_ms']) for r in rs]):>7.3f} {med(ops) / direct:>8.2f} "
                  f"{share:>9.1%} {cmds:>8.2f} {ratio:>9} {cpu:>10.2f}")
    print("Redis ran: Redis's GET calls (INFO commandstats) per GET sent, warm-up included; "
          "cmds/GET: all of Redis's command calls per GET sent (a fill is GET + PTTL); near hits: "
          "hits / (hits + misses) on corral's /metrics over the same run; CPU us/GET: the run time of "
          "Redis's and the corral's threads (schedstat) per GET sent, which other load on the "
          "machine does not inflate the way it does ops/s; all medians.\n")


def offload_table(runs):
    if not runs:
        return
    print("Offload: 4 corrals with near_cache, one Redis, 4 zipf_get (50 connections in all); "
          f"{len({r['round'] for r in runs})} rounds")
    print(f"{'P':>3} {'ops/s (all 4)':>14} {'Redis ran (median)':>19} {'per round':>30}")
    for p in ("1", "16"):
        rs = [r for r in runs if r["P"] == p]
        shares = [int(r["redis_gets"]) / int(r["requests"]) for r in rs]
        each = " ".join(f"{s:.2%}" for s in shares)
        print(f"{p:>3} {med([float(r['ops_s']) for r in rs]):>14,.0f} {med(shares):>19.2%} "
              f"{each:>30}")
    print("Redis ran: Redis's GET calls over the GETs the four loads sent (target: <= 5%).\n")


def saturated_table(runs):
    if not runs:
        return
    print("Hot keys (Zipf over the 1,000 hottest) at a fixed rate, c=10 P=1, Redis quiet or "
          f"saturated by LRANGE noise; medians over {len({r['round'] for r in runs})} rounds")
    print(f"{'Redis':<10} {'system':<16} {'ops/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'p999 ms':>8} "
          f"{'Redis CPU':>9}")
    for load in ("quiet", "saturated"):
        for s, label in (("direct", "direct"), ("app", "corral + near")):
            rs = [r for r in runs if r["load"] == load and r["system"] == s]
            if not rs:
                continue
            f = lambda k: med([float(r[k]) for r in rs])  # noqa: E731
            print(f"{load:<10} {label:<16} {f('ops_s'):>8,.0f} {f('p50_ms'):>7.3f} "
                  f"{f('p99_ms'):>7.3f} {f('p999_ms'):>8.3f} {f('redis_cpu'):>9.2f}")
    print("Redis CPU: cores Redis used during the run (INFO used_cpu_sys + used_cpu_user).\n")


def main():
    out = sys.argv[1]
    zipf_table(rows(out, "zipf.csv"))
    offload_table(rows(out, "offload.csv"))
    saturated_table(rows(out, "saturated.csv"))


if __name__ == "__main__":
    main()
