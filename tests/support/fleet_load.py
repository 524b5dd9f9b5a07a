r"""Offered load for a fleet of corral "pods" sharing one rate limit, and the arithmetic to judge
what the fleet admitted. Used by tests/integration/test_global_limits.py and
tests/bench/global_limit_accuracy.py.

    schedule(elapsed) -> requests due so far, per pod
         |
    PodLoad (one thread per pod) --every TICK: the requests due, one pipelined batch--> corral
         |   reads every reply with a bounded wait, classifies it:
         |     admitted (anything but -RATELIMITED; corral's upstream errors counted apart too)
         v
    Batch records (send time, reply time, counts) --> FleetRun: totals, windows, wall time

The load is spread evenly over time: a pod that falls behind (a slow reply) sends what it owes
in its next batch, so the total offered follows the schedule whatever the jitter. Standard
library only (runs under /usr/bin/python3).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

from harness import EOF, RespConn, RespError, encode_command

TICK = 0.01
RATELIMITED = "RATELIMITED "
UPSTREAM_ERR = "ERR corral: upstream"


@dataclass
class Batch:
    t_send: float       # just before the batch was written
    t_done: float       # just after its last reply was read
    n: int
    admitted: int = 0   # replies other than -RATELIMITED (upstream errors included)
    limited: int = 0    # -RATELIMITED
    upstream_err: int = 0  # -ERR corral: upstream ... (the request was admitted by the limit)
    other: List = field(default_factory=list)  # error replies of any other kind (samples)
    limited_sample: Optional[str] = None


def due_schedule(total_rate: float, shares: List[float], switch_at: Optional[float] = None,
                 shares_after: Optional[List[float]] = None) -> List[Callable[[float], int]]:
    """Per pod, elapsed seconds -> requests due by then: total_rate split by shares, and from
    switch_at on (when given) by shares_after (the load moving between pods)."""
    out = []
    for i, share in enumerate(shares):
        after = shares_after[i] if shares_after is not None else share

        def due(e, a=share, b=after):
            if switch_at is None or e <= switch_at:
                return int(total_rate * a * e)
            return int(total_rate * (a * switch_at + b * (e - switch_at)))
        out.append(due)
    return out


class PodLoad(threading.Thread):
    """One pod's client: GET of `key` on `port`, as the schedule says, from t0 for duration s.
    Every reply must come within reply_bound seconds of its batch's send (a socket timeout of
    reply_bound; a batch slower than that is recorded in `slow`). Errors end the thread and are
    kept in `error` (never raised in the thread)."""

    def __init__(self, port: int, due: Callable[[float], int], t0: float, duration: float,
                 key: str, reply_bound: float = 2.0, tick: float = TICK):
        super().__init__(daemon=True)
        self.port = port
        self.due = due
        self.t0 = t0
        self.duration = duration
        self.req = encode_command("GET", key)
        self.reply_bound = reply_bound
        self.tick = tick
        self.batches: List[Batch] = []
        self.slow: List[Batch] = []
        self.error: Optional[str] = None
        self.sent = 0

    def run(self):
        try:
            with RespConn(self.port, timeout=self.reply_bound) as conn:
                self._run(conn)
        except Exception as e:  # noqa: BLE001 - reported by the caller
            self.error = f"pod on port {self.port}: {e!r}"

    def _run(self, conn: RespConn):
        k = 0
        while True:
            wake = self.t0 + k * self.tick
            delay = wake - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            elapsed = min(time.monotonic() - self.t0, self.duration)
            n = self.due(elapsed) - self.sent
            if n > 0:
                self._batch(conn, n)
            if elapsed >= self.duration:
                return
            # skip ticks already past (their requests go in the next batch: due() catches up)
            k = max(k + 1, int((time.monotonic() - self.t0) / self.tick))

    def _batch(self, conn: RespConn, n: int):
        b = Batch(t_send=time.monotonic(), t_done=0.0, n=n)
        conn.send_raw(self.req * n)
        self.sent += n
        for _ in range(n):
            r = conn.read_reply()
            if r is EOF:
                raise AssertionError(f"corral closed the connection ({b.admitted + b.limited} "
                                     f"of {n} replies read)")
            if isinstance(r, RespError):
                if r.message.startswith(RATELIMITED):
                    b.limited += 1
                    if b.limited_sample is None:
                        b.limited_sample = r.message
                    continue
                if r.message.startswith(UPSTREAM_ERR):
                    b.upstream_err += 1
                elif len(b.other) < 3:
                    b.other.append(r)
            b.admitted += 1
        b.t_done = time.monotonic()
        self.batches.append(b)
        if b.t_done - b.t_send > self.reply_bound:
            self.slow.append(b)


@dataclass
class FleetRun:
    pods: List[PodLoad]
    t_first: float  # just before the first send of any pod
    t_last: float   # just after the last reply of any pod

    @property
    def wall(self) -> float:
        return self.t_last - self.t_first

    @property
    def send_span(self) -> float:
        """From the first send to the last batch's send: the time over which load was offered
        (wall also counts the last replies' way back, long on a busy machine)."""
        return max(b.t_send for p in self.pods for b in p.batches) - self.t_first

    def batches(self, pod: Optional[int] = None, since: float = float("-inf"),
                until: float = float("inf")) -> List[Batch]:
        """Batches (of one pod, or all) sent in [since, until) (monotonic times)."""
        ps = self.pods if pod is None else [self.pods[pod]]
        return [b for p in ps for b in p.batches if since <= b.t_send < until]

    def count(self, what: str, **kw) -> int:
        return sum(getattr(b, what) for b in self.batches(**kw))

    def problems(self) -> List[str]:
        """Thread errors, batches over their reply bound, and unexpected error replies."""
        out = [p.error for p in self.pods if p.error]
        for i, p in enumerate(self.pods):
            if p.slow:
                worst = max(b.t_done - b.t_send for b in p.slow)
                out.append(f"pod {i}: {len(p.slow)} batches answered after more than "
                           f"{p.reply_bound}s (worst {worst:.2f}s)")
            others = [e for b in p.batches for e in b.other]
            if others:
                out.append(f"pod {i}: unexpected error replies, e.g. {others[:3]}")
        return out


def run_fleet(ports: List[int], dues: List[Callable[[float], int]], duration: float,
              key: str, reply_bound: float = 2.0, start_delay: float = 0.2,
              during: Optional[Callable[[float], None]] = None) -> FleetRun:
    """Runs one PodLoad per port from a common start (now + start_delay) for duration seconds.
    during(t0), when given, runs on this thread while the load runs (faults, probes); the pods
    are joined (bounded) afterwards whatever it raised."""
    t0 = time.monotonic() + start_delay
    pods = [PodLoad(p, d, t0, duration, key, reply_bound) for p, d in zip(ports, dues)]
    for p in pods:
        p.start()
    try:
        if during is not None:
            during(t0)
    finally:
        for p in pods:
            p.join(timeout=duration + start_delay + 4 * reply_bound + 10)
    hung = [i for i, p in enumerate(pods) if p.is_alive()]
    if hung:
        raise AssertionError(f"pods {hung} still running long after the load's end")
    sends = [b.t_send for p in pods for b in p.batches]
    dones = [b.t_done for p in pods for b in p.batches]
    return FleetRun(pods, min(sends, default=t0), max(dones, default=t0))


def gcra_admit(arrivals: List[tuple], rate: float, burst: int) -> int:
    """How many of arrivals ([(time, n)], any order) one GCRA bucket (rate per second, burst)
    admits: the same step as policies::gcraStep, in float seconds."""
    interval = 1.0 / rate
    tol = (burst - 1) * interval
    tat = None
    admitted = 0
    for t, n in sorted(arrivals):
        for _ in range(n):
            cur = t if tat is None else tat
            if cur - tol > t:
                break  # the rest of the batch arrives at the same instant: refused too
            tat = max(cur, t) + interval
            admitted += 1
    return admitted
