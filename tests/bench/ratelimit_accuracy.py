#!/usr/bin/python3
"""Rate-limit accuracy through a running corral: offered load at 3x a limit's rate for a while,
then admitted vs the bound (rate x time + burst). A benchmark: it prints, it asserts nothing.

usage: ratelimit_accuracy.py PORT [--rate 1000] [--burst 50] [--seconds 10] [--key user:1]

The corral on PORT must have a policy whose limit matches `--key` with that rate and burst
(tests/bench/ratelimit_accuracy.sh starts one). Requests go in batches every 10 ms, spread
evenly; the time the run really took is measured, and the bound uses it.
"""

import argparse
import socket
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--burst", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--key", default="user:1")
    a = ap.parse_args()
    s = socket.create_connection(("127.0.0.1", a.port), timeout=5)
    key = a.key.encode()
    req = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(key), key)
    per_tick = 3 * a.rate // 100  # 3x the rate, in 10 ms ticks
    admitted = limited = other = 0
    buf = b""
    start = time.monotonic()
    tick = 0
    while True:
        now = time.monotonic()
        if now - start >= a.seconds:
            break
        s.sendall(req * per_tick)
        got = 0
        while got < per_tick:
            while b"\r\n" not in buf:
                buf += s.recv(65536)
            line, _, buf = buf.partition(b"\r\n")
            if line.startswith(b"-RATELIMITED"):
                limited += 1
            elif line.startswith(b"$"):
                n = int(line[1:])
                if n >= 0:
                    while len(buf) < n + 2:
                        buf += s.recv(65536)
                    buf = buf[n + 2:]
                admitted += 1
            else:
                other += 1
            got += 1
        tick += 1
        delay = start + tick * 0.01 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.monotonic() - start
    bound = a.rate * elapsed + a.burst
    offered = admitted + limited + other
    print(f"rate {a.rate}/s burst {a.burst}: offered {offered} in {elapsed:.2f} s "
          f"({offered / elapsed:.0f}/s, {offered / elapsed / a.rate:.2f}x the rate)")
    print(f"admitted {admitted}, refused {limited}, other replies {other}")
    print(f"bound rate x time + burst = {bound:.0f}; admitted / bound = {admitted / bound:.4f}"
          f" ({'within' if admitted <= bound else 'OVER'} the bound, "
          f"{'at least' if admitted >= 0.97 * bound else 'below'} 97% of it)")


if __name__ == "__main__":
    main()
