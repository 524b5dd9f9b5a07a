#!/usr/bin/env python3
"""What CLIENT TRACKING costs Redis, default mode against BCAST PREFIX key: (issue 12: which
mode corral's near cache should use). A benchmark that prints a table, not a test.

    /usr/bin/python3 tests/bench/tracking_cost.py [--keys 100000] [--hot 1000] [--readers 4]
                                                  [--writes 200000]

Per mode (none, default, bcast), a fresh redis-server (CPU 0; this script and redis-benchmark
on CPU 1) holding --keys keys key:%012d (32 bytes):
  1. --readers RESP3 connections (HELLO 3, then CLIENT TRACKING ON, or ON BCAST PREFIX key:, or
     nothing) each GET the --hot hottest keys and their own 1/readers share of all keys: Redis's
     used_memory after the reads, over the same with no tracking, and INFO's tracking_total_keys,
     _items and _prefixes;
  2. --writes SETs of random keys of the same key space, straight to Redis (redis-benchmark
     -t set -r KEYS -P 16 -c 4), while a thread per reader drains its invalidation pushes:
     Redis's CPU (used_cpu_sys + used_cpu_user) over the writes, up to the last push, and the
     pushes and keys delivered.
Default mode forgets a key for a client once it sent that client an invalidation; the readers do
not read again here, so in step 2 each tracked key is invalidated at most once per reader. BCAST
sends every write of a key: to each reader, whatever it read.
"""
import argparse
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from harness import Push, RedisServer, RespConn, RespTimeout  # noqa: E402


def info(conn, section):
    raw = conn.cmd("INFO", section)
    out = {}
    for line in raw.decode().splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k] = v
    return out


def cpu(conn):
    i = info(conn, "cpu")
    return float(i["used_cpu_sys"]) + float(i["used_cpu_user"])


def fill(port, keys):
    value = "v" * 32
    with RespConn(port, timeout=30) as c:
        for first in range(0, keys, 1000):
            rs = c.pipeline([("SET", f"key:{i:012d}", value)
                             for i in range(first, min(keys, first + 1000))])
            assert all(r == "OK" for r in rs), rs[:3]


class Reader:
    """One RESP3 connection that read its keys and now counts its invalidation pushes."""

    def __init__(self, port, mode):
        self.conn = RespConn(port, timeout=30)
        hello = self.conn.cmd("HELLO", "3")
        assert isinstance(hello, dict), hello
        if mode == "default":
            assert self.conn.cmd("CLIENT", "TRACKING", "ON") == "OK"
        elif mode == "bcast":
            assert self.conn.cmd("CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "key:") == "OK"
        self.pushes = 0
        self.keys = 0
        self.stop = threading.Event()
        self.thread = None

    def read(self, indices):
        indices = list(indices)
        for first in range(0, len(indices), 1000):
            batch = indices[first:first + 1000]
            rs = self.conn.pipeline([("GET", f"key:{i:012d}") for i in batch])
            assert all(isinstance(r, bytes) for r in rs), "a push or nil among the GET replies"

    def drain(self):
        # Until told to stop and then quiet for half a second.
        self.conn.settimeout(0.5)
        while True:
            try:
                m = self.conn.read_reply()
            except RespTimeout:
                if self.stop.is_set():
                    return
                continue
            assert isinstance(m, Push) and m[0] == b"invalidate", m
            self.pushes += 1
            self.keys += len(m[1]) if m[1] is not None else 0

    def start_drain(self):
        self.thread = threading.Thread(target=self.drain)
        self.thread.start()

    def finish(self):
        self.stop.set()
        self.thread.join()
        self.conn.close()


def run_mode(mode, a, cpus):
    r = RedisServer()
    try:
        if cpus:
            os.sched_setaffinity(r.pid, {cpus[0]})
        fill(r.port, a.keys)
        with r.client() as probe:
            mem0 = int(info(probe, "memory")["used_memory"])
            readers = [Reader(r.port, mode) for _ in range(a.readers)]
            share = a.keys // a.readers
            for n, rd in enumerate(readers):
                rd.read(range(a.hot))
                rd.read(range(n * share, (n + 1) * share))
            time.sleep(0.2)
            mem1 = int(info(probe, "memory")["used_memory"])
            stats = info(probe, "stats")
            cpu0 = cpu(probe)
            for rd in readers:
                rd.start_drain()
            t0 = time.monotonic()
            subprocess.run(["redis-benchmark", "-p", str(r.port), "-t", "set", "-r", str(a.keys),
                            "-n", str(a.writes), "-d", "32", "-P", "16", "-c", "4", "-q"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            writes_s = time.monotonic() - t0
            for rd in readers:
                rd.finish()
            cpu1 = cpu(probe)
        return {
            "mode": mode,
            "mem": mem1 - mem0,
            "keys": int(stats.get("tracking_total_keys", 0)),
            "items": int(stats.get("tracking_total_items", 0)),
            "prefixes": int(stats.get("tracking_total_prefixes", 0)),
            "cpu": cpu1 - cpu0,
            "writes_s": writes_s,
            "pushes": sum(rd.pushes for rd in readers),
            "inv_keys": sum(rd.keys for rd in readers),
        }
    finally:
        r.stop()
        r.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--hot", type=int, default=1000)
    ap.add_argument("--readers", type=int, default=4)
    ap.add_argument("--writes", type=int, default=200000)
    a = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[1]})  # this script and redis-benchmark; Redis on cpus[0]
    res = [run_mode(m, a, cpus if len(cpus) >= 2 else []) for m in ("none", "default", "bcast")]
    base = res[0]
    print(f"CLIENT TRACKING cost in Redis: {a.readers} RESP3 readers, each read the {a.hot:,} "
          f"hottest keys and 1/{a.readers} of {a.keys:,}; then {a.writes:,} SETs straight to "
          "Redis (redis-benchmark -P 16 -c 4)")
    print(f"{'mode':<8} {'tracked keys':>12} {'items':>8} {'prefixes':>8} {'memory':>10} "
          f"{'write CPU s':>11} {'us/SET':>7} {'+us/SET':>7} {'pushes':>8} {'keys sent':>9}")
    for x in res:
        mem = x["mem"] - base["mem"]
        print(f"{x['mode']:<8} {x['keys']:>12,} {x['items']:>8,} {x['prefixes']:>8} "
              f"{mem / 1024:>8,.0f}KB {x['cpu']:>11.3f} {x['cpu'] / a.writes * 1e6:>7.2f} "
              f"{(x['cpu'] - base['cpu']) / a.writes * 1e6:>7.2f} {x['pushes']:>8,} "
              f"{x['inv_keys']:>9,}")
    print("memory: used_memory after the reads over the same with no tracking; write CPU: "
          "Redis's used_cpu_sys+user over the writes and the delivery of their invalidations; "
          "+us/SET: over no tracking.")


if __name__ == "__main__":
    main()
