#!/usr/bin/python3
r"""What the stampede benchmark's drivers share: raw RESP clients, the origin's control routes,
corral processes, percentiles and tables, and BenchBase (the corral config and start/stop).

    stampede.py (storms, hot, stale) ─┐
    storm5xx.py (5xx storm)          ─┴─> common.py ─> tests/support/harness.py (ready file)

Standard library only (Debian's /usr/bin/python3). Every wait is bounded; every corral started
here is stopped by its own pid (SIGTERM, then SIGKILL), also when the driver gets SIGTERM, and
gets SIGTERM from the kernel if the driver dies without cleaning up (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import json
import math
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "support"))
from harness import read_ready_file  # noqa: E402  (corral's --ready-file, as the tests read it)

# global.fill_secret of the generated configs (distributed single-flight needs one).
FILL_SECRET = "stampede-bench-fill-secret-0123456789"

# ---------------------------------------------------------------------------------------------
# RESP


def resp(*args: Any) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RespError(str):
    """An error reply (its text without the '-')."""


NIL = None
_INCOMPLETE = object()


def parse_reply(buf: bytearray, pos: int) -> Any:
    """(value, next pos) of the reply at buf[pos:], or _INCOMPLETE. Values: bytes (bulk), None
    (nil), str (simple), RespError, int, list."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        return _INCOMPLETE
    t = buf[pos]
    line = bytes(buf[pos + 1:end])
    if t == 0x2B:  # +
        return line.decode(), end + 2
    if t == 0x2D:  # -
        return RespError(line.decode("utf-8", "replace")), end + 2
    if t == 0x3A:  # :
        return int(line), end + 2
    if t == 0x24:  # $
        n = int(line)
        if n < 0:
            return NIL, end + 2
        if len(buf) < end + 2 + n + 2:
            return _INCOMPLETE
        return bytes(buf[end + 2:end + 2 + n]), end + 4 + n
    if t == 0x2A:  # *
        n = int(line)
        if n < 0:
            return NIL, end + 2
        items, p = [], end + 2
        for _ in range(n):
            r = parse_reply(buf, p)
            if r is _INCOMPLETE:
                return _INCOMPLETE
            items.append(r[0])
            p = r[1]
        return items, p
    raise ValueError(f"bad RESP type byte {t!r} in {bytes(buf[pos:pos + 40])!r}")


class RespClient(asyncio.Protocol):
    """One connection. send() queues a future per request; replies resolve them in order with
    (perf_counter at arrival, value). A cancelled future still takes its reply when it comes, so
    the stream stays in step after a client-side timeout."""

    def __init__(self) -> None:
        self.transport: Optional[asyncio.Transport] = None
        self.buf = bytearray()
        self.pending: collections.deque = collections.deque()
        self.closed = False

    def connection_made(self, transport) -> None:  # noqa: ANN001 (asyncio's signature)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()  # first thing: arrival time, before any parsing
        self.buf += data
        pos = 0
        while self.pending and pos < len(self.buf):
            r = parse_reply(self.buf, pos)
            if r is _INCOMPLETE:
                break
            val, pos = r
            fut = self.pending.popleft()
            if not fut.done():
                fut.set_result((now, val))
        del self.buf[:pos]

    def connection_lost(self, exc: Optional[Exception]) -> None:
        self.closed = True
        while self.pending:
            fut = self.pending.popleft()
            if not fut.done():
                fut.set_exception(ConnectionError(f"connection closed ({exc})"))

    def send(self, data: bytes) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        if self.closed:
            fut.set_exception(ConnectionError("connection closed"))
            return fut
        self.pending.append(fut)
        self.transport.write(data)
        return fut

    async def cmd(self, *args: Any, timeout: float = 5.0) -> Any:
        _, val = await asyncio.wait_for(self.send(resp(*args)), timeout)
        return val

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def connect(port: int, timeout: float = 5.0) -> RespClient:
    loop = asyncio.get_running_loop()
    _, proto = await asyncio.wait_for(
        loop.create_connection(RespClient, "127.0.0.1", port), timeout)
    return proto


async def connect_many(ports: List[int], n: int, batch: int = 100) -> List[RespClient]:
    """n connections, client i to ports[i % len(ports)], each checked with PING (so the proxy
    has accepted and served it before any barrier). Connects in batches: a burst of 1,000 SYNs
    can overflow a listen backlog, and a dropped SYN costs a 1 s retransmit."""
    conns: List[RespClient] = []
    for start in range(0, n, batch):
        part = await asyncio.gather(*(connect(ports[i % len(ports)])
                                      for i in range(start, min(n, start + batch))))
        conns.extend(part)
    replies = await asyncio.gather(*(c.cmd("PING") for c in conns))
    bad = [r for r in replies if r != "PONG"]
    if bad:
        raise RuntimeError(f"{len(bad)} of {n} connections did not answer PING: {bad[0]!r}")
    return conns


# ---------------------------------------------------------------------------------------------
# HTTP (the origin's /_stats, corral's /metrics), HTTP/1.0 so the server closes: bounded


async def http_get(port: int, path: str, timeout: float = 3.0) -> Tuple[int, bytes]:
    async def go() -> Tuple[int, bytes]:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        try:
            w.write(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            await w.drain()
            data = await r.read()
        finally:
            w.close()
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
        return status, body

    return await asyncio.wait_for(go(), timeout)


class Origin:
    def __init__(self, port: int) -> None:
        self.port = port

    async def _json(self, path: str) -> Dict[str, Any]:
        status, body = await http_get(self.port, path)
        if status != 200:
            raise RuntimeError(f"origin {path} answered {status}: {body[:200]!r}")
        return json.loads(body)

    async def reset(self) -> None:
        await self._json("/_reset")

    async def stats(self) -> Dict[str, Any]:
        return await self._json("/_stats")

    async def calls(self, path: str) -> int:
        return (await self.stats())["paths"].get(path, 0)

    async def set_latency(self, ms: float) -> None:
        await self._json(f"/_config?latency_ms={ms:g}&fail=0&fail_rate=0")

    async def set_fail(self, fail: bool) -> None:
        """fail: every /v1/... request answers 503 (after the latency), until set back."""
        await self._json(f"/_config?fail={int(fail)}")


# ---------------------------------------------------------------------------------------------
# corral processes


def _pdeathsig() -> None:
    """In the child: get SIGTERM if the driver dies without stopping us (Linux only)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class CorralProc:
    """One corral: config and log in out_dir/<name>.*; listen/admin ports from the ready file."""

    live: List["CorralProc"] = []

    def __init__(self, binary: str, out_dir: str, name: str, config: str) -> None:
        self.name = name
        self.config_path = os.path.join(out_dir, f"{name}.yaml")
        self.ready_path = os.path.join(out_dir, f"{name}.ready")
        self.log_path = os.path.join(out_dir, f"{name}.log")
        self.metrics_path = os.path.join(out_dir, f"{name}.metrics")
        with open(self.config_path, "w") as f:
            f.write(config)
        if os.path.exists(self.ready_path):
            os.unlink(self.ready_path)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [binary, "--config", self.config_path, "--ready-file", self.ready_path],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=_pdeathsig)
        CorralProc.live.append(self)
        self.port = 0
        self.admin_port = 0
        self.exit_code: Optional[int] = None

    async def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before "
                                   f"ready (see {self.log_path})")
            ready = read_ready_file(self.ready_path)
            if ready is not None and ready["listen"]:
                self.port = ready["listen"][0]
                self.admin_port = ready["admin"] or 0
                return
            await asyncio.sleep(0.01)
        raise RuntimeError(f"{self.name} not ready after {timeout}s (see {self.log_path})")

    async def save_metrics(self) -> None:
        if not self.admin_port or self.proc.poll() is not None:
            return
        try:
            _, body = await http_get(self.admin_port, "/metrics")
            with open(self.metrics_path, "wb") as f:
                f.write(body)
        except (OSError, asyncio.TimeoutError):
            pass

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.exit_code = self.proc.returncode
        self._log.close()
        if self in CorralProc.live:
            CorralProc.live.remove(self)

    def log_lines(self, *levels: str) -> List[str]:
        try:
            with open(self.log_path, errors="replace") as f:
                return [ln.rstrip() for ln in f if any(f"[{lv}]" in ln for lv in levels)]
        except OSError:
            return []


def stop_all_corrals() -> None:
    for c in list(CorralProc.live):
        try:
            c.stop()
        except Exception:  # noqa: BLE001 - cleanup goes on for the others
            pass


# ---------------------------------------------------------------------------------------------
# helpers


def log(msg: str) -> None:
    print(f"[stampede {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def pct(sorted_vals: List[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list (p in 0..100); nan when empty."""
    if not sorted_vals:
        return math.nan
    k = max(1, math.ceil(p / 100.0 * len(sorted_vals)))
    return sorted_vals[min(k, len(sorted_vals)) - 1]


def med(vals: List[float]) -> float:
    vals = [v for v in vals if not math.isnan(v)]
    return statistics.median(vals) if vals else math.nan


def fmt_ms(v: float) -> str:
    return "-" if math.isnan(v) else f"{v:.1f}"


def table(headers: List[str], rows: List[List[Any]], left: int = 1) -> str:
    """Aligned plain text; the first `left` columns left-aligned, the rest right-aligned."""
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(r: List[str]) -> str:
        return "  ".join(r[i].ljust(widths[i]) if i < left else r[i].rjust(widths[i])
                         for i in range(len(r))).rstrip()

    return "\n".join([fmt(cells[0]), "  ".join("-" * w for w in widths)] +
                     [fmt(r) for r in cells[1:]])


class Keys:
    """Fresh u64 ids (canonical: no leading zero), unique within a run and unlikely to repeat
    across runs against the same Redis."""

    def __init__(self) -> None:
        self.next = random.randrange(10**12, 9 * 10**12)

    def fresh(self) -> int:
        self.next += 1
        return self.next


def parse_metrics(text: str) -> Dict[str, float]:
    """Prometheus text -> {'name{labels}': value} (comments skipped)."""
    out: Dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
    return out


class BenchBase:
    """What every phase needs: settings, the origin, fresh keys, notes for the report, and the
    corrals (config, start, stop with their metrics and warnings kept)."""

    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.origin = Origin(a.origin_port)
        self.keys = Keys()
        self.notes: List[str] = []
        self.n_corrals = 0

    def config(self, mode: str, ttl: str = "60s", jitter: Optional[str] = None,
               freshness: str = "", origin_extra: str = "", fill_extra: str = "") -> str:
        """One fill policy on user:<id:u64>. origin_extra, fill_extra: more `key: value` pairs
        for the origin's and the fill's flow mappings (origin_extra may override
        max_in_flight)."""
        ttl_s = f"{{default: {ttl}" + (f", jitter: {jitter}" if jitter is not None else "") + "}"
        fresh = f"\n    freshness: {freshness}" if freshness else ""
        origin = (f'base_url: "http://127.0.0.1:{self.a.origin_port}", timeout: 1s'
                  + ("" if "max_in_flight" in origin_extra else ", max_in_flight: 64")
                  + (f", {origin_extra}" if origin_extra else ""))
        fill = "origin: users, path: \"/v1/users/<id>\"" + (f", {fill_extra}" if fill_extra
                                                           else "")
        return f"""# generated by tests/bench/stampede
listen: [127.0.0.1:0]
workers: 1
upstream: {{primary: 127.0.0.1:{self.a.redis_port}}}
admin: {{listen: 127.0.0.1:0}}
log: {{level: warn}}
global: {{fill_secret: "{FILL_SECRET}"}}
origins:
  users: {{{origin}}}
policies:
  - name: user
    match: "user:<id:u64>"
    ttl: {ttl_s}
    fill: {{{fill}}}
    stampede: {{single_flight: {mode}}}{fresh}
"""

    async def start_corrals(self, m: int, config: str, tag: str) -> List[CorralProc]:
        procs = []
        for i in range(m):
            self.n_corrals += 1
            procs.append(CorralProc(self.a.corral_bin, self.a.out,
                                    f"corral-{self.n_corrals:03d}-{tag}-{i}", config))
        await asyncio.gather(*(p.wait_ready() for p in procs))
        return procs

    async def stop_corrals(self, procs: List[CorralProc], what: str) -> None:
        await asyncio.gather(*(p.save_metrics() for p in procs))
        for p in procs:
            p.stop()
            if p.exit_code != 0:
                self.notes.append(f"{what}: {p.name} exited with {p.exit_code} "
                                  f"(log: {p.log_path})")
            lines = p.log_lines("warning", "warn", "error", "critical")
            if lines:
                self.notes.append(f"{what}: {p.name} logged {len(lines)} warning/error lines, "
                                  f"first: {lines[0][:160]}")
