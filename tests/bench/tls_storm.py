#!/usr/bin/env python3
"""A plain client's latency through corral, alone and while N TLS clients connect to the same
corral (each does a full handshake and one PING). Prints one table. Part of tls_bench.sh.

The plain client sends GETs one at a time (a round trip each) for the whole window; the storm
runs in a separate process (redis-benchmark --tls -k 0), so the client's own CPU use does not
mix with the handshakes' on the client side.
"""
import argparse
import socket
import statistics
import subprocess
import time


def measure(port, seconds, stop_when=None):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lat = []
    req = b"*2\r\n$3\r\nGET\r\n$10\r\nstorm:key0\r\n"
    end = time.monotonic() + seconds
    while time.monotonic() < end and (stop_when is None or stop_when.poll() is None):
        t0 = time.perf_counter()
        s.sendall(req)
        data = b""
        while not data.endswith(b"\r\n"):
            data += s.recv(4096)
        lat.append((time.perf_counter() - t0) * 1000.0)
    s.close()
    return lat


def pct(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100.0))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plain-port", type=int, required=True)
    ap.add_argument("--tls-port", type=int, required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--handshakes", type=int, default=2000)
    ap.add_argument("--baseline-seconds", type=float, default=3.0)
    ap.add_argument("--storm-cpu", default="", help="taskset CPU list for the storm's client")
    ap.add_argument("--storm-nice", type=int, default=0,
                    help="niceness of the storm's client (19: it gets only the CPU left over, "
                         "as if it ran on other machines)")
    a = ap.parse_args()

    base = measure(a.plain_port, a.baseline_seconds)
    pin = ["taskset", "-c", a.storm_cpu] if a.storm_cpu else []
    if a.storm_nice:
        pin = ["nice", "-n", str(a.storm_nice)] + pin
    storm = subprocess.Popen(
        pin + ["redis-benchmark", "-h", "127.0.0.1", "-p", str(a.tls_port), "--tls", "--cacert", a.ca,
         "--sni", "localhost", "-k", "0", "-t", "ping_inline", "-n", str(a.handshakes),
         "-c", "50", "-q"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    during = measure(a.plain_port, 120.0, stop_when=storm)
    storm.wait(60)
    storm_s = time.monotonic() - t0
    print(f"plain client GETs through corral while {a.handshakes} TLS clients connect "
          f"(storm's client niceness {a.storm_nice}; storm took {storm_s:.2f} s, "
          f"{a.handshakes / storm_s:.0f} handshakes/s)")
    print(f"{'window':<10} {'GETs':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, lat in (("alone", base), ("storm", during)):
        print(f"{name:<10} {len(lat):>7} {statistics.median(lat):>8.3f} {pct(lat, 99):>8.3f} "
              f"{max(lat):>8.3f}")
    print(f"p99 ratio storm/alone: {pct(during, 99) / pct(base, 99):.2f} (target < 2)")


if __name__ == "__main__":
    main()
