#!/usr/bin/python3
r"""The stampede benchmark's "storm5xx" phase: an origin that answers 503 to everything, under
many clients missing distinct keys, once per origin setup; then the origin heals.

    per setup: 1 corral (workers 1, origin max_in_flight 1000, fill on_error: error)
      warm-up   origin healthy: one GET per client (opens the origin connections);
                the stale-if-error setup instead fills K keys per client and lets them go stale
      storm     origin /_config?fail=1, /_reset; C clients each send a GET every I ms (one in
                flight each; a slow reply delays the next send) for S seconds:
                a fresh missing key each time (stale-if-error: the client's K stale keys in turn)
      heal      origin /_stats (the storm's origin calls), /_config?fail=0; the clients go on
                for R seconds: the first reply holding a value the origin made after the heal,
                and the last one that did not, measure the recovery
      corral's /metrics: retries, budget exhaustions, breaker openings and rejections

Called by stampede.py (run(bench) with its BenchBase), which prints the returned table.
Standard library only; every wait is bounded, the corral is stopped by its pid.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import random
import time
from typing import Any, Dict, List, Tuple

from common import (NIL, BenchBase, RespClient, RespError, connect_many, fmt_ms, http_get, log,
                    parse_metrics, pct, resp, table)

RETRY = "retry: {attempts: 3, budget: 10%, min_per_second: 3, backoff: 20ms..500ms}"


def setups(open_for_ms: int) -> List[Dict[str, Any]]:
    """The rows: name, origin settings, freshness, whether clients read pre-filled stale keys."""
    breaker = f"breaker: {{failures: 5, open_for: {open_for_ms}ms, half_open_probes: 1}}"
    return [
        {"name": "no retry, no breaker", "origin": "", "stale": False},
        {"name": "retry + budget", "origin": RETRY, "stale": False},
        {"name": "retry + budget + breaker", "origin": f"{RETRY}, {breaker}", "stale": False},
        {"name": "... + stale_if_error (stale keys)", "origin": f"{RETRY}, {breaker}",
         "stale": True},
    ]


def add_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storm5xx-clients", type=int, default=200)
    p.add_argument("--storm5xx-seconds", type=float, default=4.0, help="length of the 5xx storm")
    p.add_argument("--storm5xx-interval-ms", type=float, default=200,
                   help="each client sends a GET this often (one in flight)")
    p.add_argument("--storm5xx-open-for-ms", type=int, default=2000, help="breaker.open_for")
    p.add_argument("--storm5xx-recover-seconds", type=float, default=0,
                   help="how long clients go on after the heal (0: open_for + 2 s)")
    p.add_argument("--storm5xx-stale-keys", type=int, default=5,
                   help="keys per client of the stale-if-error setup")


def kind_of(val: Any) -> str:
    """value / nil / FILLERR <reason> / other <first word>."""
    if isinstance(val, bytes):
        return "value"
    if val is NIL:
        return "nil"
    if isinstance(val, RespError) and val.startswith("FILLERR"):
        parts = val.split(" ", 2)  # FILLERR <origin> <reason>
        return "FILLERR " + (parts[2] if len(parts) > 2 else "?")
    return "other " + str(val).split(" ", 1)[0][:30]


class Storm:
    def __init__(self, bench: BenchBase) -> None:
        self.b = bench
        self.a = bench.a

    async def run(self) -> str:
        a = self.a
        await self.b.origin.set_latency(a.latency_ms)
        with open(os.path.join(a.out, "storm5xx.csv"), "w", newline="") as f:
            csv.writer(f).writerow(
                ["setup", "gets", "origin_calls", "storm_s", "value", "stale_values", "fillerr",
                 "nil", "other", "timeouts", "p50_ms", "p99_ms", "max_ms", "recover_first_ms",
                 "recover_all_ms", "fillerr_reasons", "retries_success", "retries_failure",
                 "retries_out_of_time", "budget_exhausted", "breaker_opened",
                 "breaker_rejected"])
        rows, details = [], []
        try:
            for i, s in enumerate(setups(a.storm5xx_open_for_ms)):
                row, detail = await self.setup(i, s)
                rows.append(row)
                details.append(detail)
        finally:
            await self.b.origin.set_latency(a.latency_ms)  # also ends fail mode
        recover_s = self.recover_seconds()
        return (
            f"5xx storm: the origin answers 503 (after {a.latency_ms:g} ms) to everything for "
            f"{a.storm5xx_seconds:g} s; {a.storm5xx_clients} clients each GET a missing key "
            f"(fresh each time) every {a.storm5xx_interval_ms:g} ms through 1 corral "
            f"(fill on_error: error, origin timeout 1s, max_in_flight 1000); then the origin "
            f"heals and the clients go on for {recover_s:g} s.\n"
            f"retry: {{attempts: 3, budget: 10%, min_per_second: 3, backoff: 20ms..500ms}}; "
            f"breaker: {{failures: 5, open_for: {a.storm5xx_open_for_ms}ms}}. The stale-if-error "
            f"row reads {a.storm5xx_stale_keys} pre-filled keys per client, past their ttl "
            f"(1s) within stale_if_error (60s).\n"
            f"Columns are for the GETs sent during the storm; recover = from the heal to the "
            f"first reply with a value made after it / to the last reply without one.\n"
            f"Target: with the budget, retries <= 10% of the first requests of the last 10 s "
            f"(warm-up included) + 3/s x 10 s, so calls/GET about 1.1-1.2; with the breaker, "
            f"origin calls = failures + the requests in flight when it opened + one probe per "
            f"open_for, p50 far under the origin latency, recovery within open_for + one origin "
            f"latency; with stale_if_error every reply a value.\n"
            + table(["setup", "GETs", "origin calls", "calls/s", "calls/GET", "value",
                     "of them stale", "FILLERR", "nil", "other", "p50 ms", "p99 ms",
                     "recover first/all ms"], rows)
            + "\n" + "\n".join(details))

    def recover_seconds(self) -> float:
        a = self.a
        return a.storm5xx_recover_seconds or a.storm5xx_open_for_ms / 1000.0 + 2.0

    async def setup(self, idx: int, s: Dict[str, Any]) -> Tuple[List[Any], str]:
        a, b = self.a, self.b
        what = f"storm5xx {s['name']}"
        origin_extra = "max_in_flight: 1000" + (f", {s['origin']}" if s["origin"] else "")
        fresh = "{stale_if_error: 60s}" if s["stale"] else ""
        cfg = b.config("local", ttl="1s" if s["stale"] else "60s",
                       jitter="0" if s["stale"] else None, freshness=fresh,
                       origin_extra=origin_extra, fill_extra="on_error: error")
        procs = await b.start_corrals(1, cfg, f"storm5xx-{idx}")
        proc = procs[0]
        conns: List[RespClient] = []
        recs: List[Dict[str, Any]] = []
        metrics: Dict[str, float] = {}
        n = a.storm5xx_clients
        try:
            conns = await connect_many([proc.port], n)
            own_keys: List[List[str]] = [[] for _ in range(n)]
            if s["stale"]:
                for k in range(a.storm5xx_stale_keys):
                    for c_i in range(n):
                        own_keys[c_i].append(f"user:{b.keys.fresh()}")
                    got = await asyncio.gather(*(c.cmd("GET", own_keys[c_i][k], timeout=5.0)
                                                 for c_i, c in enumerate(conns)))
                    bad = [g for g in got if not isinstance(g, bytes)]
                    if bad:
                        raise RuntimeError(f"{what}: pre-fill got {len(bad)} non-values, "
                                           f"first {bad[0]!r}")
                await asyncio.sleep(1.2)  # past ttl.default (1s, jitter 0): all stale now
            else:
                await asyncio.gather(*(c.cmd("GET", f"user:{b.keys.fresh()}", timeout=5.0)
                                       for c in conns))
            await asyncio.sleep(a.settle)
            recs, t_start, t_heal, storm_calls = await self.drive(conns, own_keys, s["stale"])
            _, body = await http_get(proc.admin_port, "/metrics")
            metrics = parse_metrics(body.decode("utf-8", "replace"))
        finally:
            for c in conns:
                c.close()
            await asyncio.sleep(0.05)
            await b.origin.set_fail(False)
            await b.stop_corrals(procs, what)
        return self.summarise(s["name"], recs, t_start, t_heal, storm_calls, metrics)

    async def drive(self, conns: List[RespClient], own_keys: List[List[str]], stale: bool):
        """The storm and the recovery: every GET's send time, reply time and reply."""
        a, b = self.a, self.b
        interval = a.storm5xx_interval_ms / 1000.0
        recs: List[Dict[str, Any]] = []
        await b.origin.set_fail(True)
        await b.origin.reset()
        storm_wall = time.time()
        t_start = time.perf_counter()
        t_heal_plan = t_start + a.storm5xx_seconds
        t_end = t_heal_plan + self.recover_seconds()
        heal: Dict[str, float] = {}

        async def client(i: int, c: RespClient) -> None:
            nxt = t_start + random.uniform(0.0, interval)  # spread the clients over a period
            k = 0
            while nxt < t_end:
                now = time.perf_counter()
                if now < nxt:
                    await asyncio.sleep(nxt - now)
                key = own_keys[i][k % len(own_keys[i])] if stale else f"user:{b.keys.fresh()}"
                k += 1
                t0 = time.perf_counter()
                try:
                    at, val = await asyncio.wait_for(c.send(resp("GET", key)), a.get_timeout)
                except (asyncio.TimeoutError, ConnectionError):
                    recs.append({"t0": t0, "at": math.nan, "kind": "timeout", "fresh": False})
                    return  # this connection is out of step now
                made = 0.0
                if isinstance(val, bytes):
                    try:
                        made = float(json.loads(val)["at"])
                    except (ValueError, KeyError, TypeError):
                        pass
                # A value the origin made during this storm was made after the heal: before
                # it, every origin answer was a 503.
                recs.append({"t0": t0, "at": at, "kind": kind_of(val),
                             "fresh": made >= storm_wall})
                # Open loop while replies are quicker than the interval; a slower reply delays
                # the next send (one GET in flight per client).
                nxt = max(nxt + interval, time.perf_counter())

        async def healer() -> None:
            await asyncio.sleep(max(0.0, t_heal_plan - time.perf_counter()))
            heal["calls"] = (await b.origin.stats())["calls"]
            await b.origin.set_fail(False)
            heal["t"] = time.perf_counter()  # from here on the origin answers 200

        await asyncio.gather(healer(), *(client(i, c) for i, c in enumerate(conns)))
        return recs, t_start, heal["t"], heal["calls"]

    def summarise(self, name: str, recs: List[Dict[str, Any]], t_start: float, t_heal: float,
                  calls: int, metrics: Dict[str, float]) -> Tuple[List[Any], str]:
        a = self.a
        storm = [r for r in recs if r["t0"] < t_heal]
        after = [r for r in recs if r["t0"] >= t_heal]
        storm_s = t_heal - t_start
        kinds: Dict[str, int] = {}
        for r in storm:
            kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
        value = kinds.get("value", 0)
        stale_values = sum(1 for r in storm if r["kind"] == "value" and not r["fresh"])
        fillerr = sum(v for k, v in kinds.items() if k.startswith("FILLERR"))
        nil = kinds.get("nil", 0)
        timeouts = kinds.get("timeout", 0)
        other = len(storm) - value - fillerr - nil
        lat = sorted((r["at"] - r["t0"]) * 1000.0 for r in storm if not math.isnan(r["at"]))
        fresh_at = [r["at"] for r in after if r["fresh"]]
        stale_at = [r["at"] for r in after if not r["fresh"] and not math.isnan(r["at"])]
        first = (min(fresh_at) - t_heal) * 1000.0 if fresh_at else math.nan
        last_bad = (max(stale_at) - t_heal) * 1000.0 if stale_at else 0.0
        recover_all = max(first, last_bad) if fresh_at else math.nan
        reasons = " ".join(f"{k[8:]}:{v}" for k, v in sorted(kinds.items())
                           if k.startswith("FILLERR"))
        m = {lbl: metrics.get(key, 0.0) for lbl, key in [
            ("retries_success", 'corral_origin_retries_total{origin="users",result="success"}'),
            ("retries_failure", 'corral_origin_retries_total{origin="users",result="failure"}'),
            ("retries_out_of_time",
             'corral_origin_retries_total{origin="users",result="out_of_time"}'),
            ("budget_exhausted",
             'corral_origin_retry_budget_exhausted_total{origin="users"}'),
            ("breaker_opened", 'corral_origin_breaker_transitions_total{origin="users",to="open"}'),
            ("breaker_rejected", 'corral_origin_breaker_rejected_total{origin="users"}')]}
        with open(os.path.join(a.out, "storm5xx.csv"), "a", newline="") as f:
            csv.writer(f).writerow(
                [name, len(storm), calls, f"{storm_s:.3f}", value, stale_values, fillerr, nil,
                 other, timeouts, f"{pct(lat, 50):.3f}", f"{pct(lat, 99):.3f}",
                 f"{lat[-1] if lat else math.nan:.3f}", f"{first:.1f}", f"{recover_all:.1f}",
                 reasons] + [f"{v:g}" for v in m.values()])
        log(f"storm5xx {name}: {len(storm)} GETs, origin calls {calls} in {storm_s:.1f} s, "
            f"replies {kinds}, p99 {fmt_ms(pct(lat, 99))} ms, recovered "
            f"{fmt_ms(first)}/{fmt_ms(recover_all)} ms")
        if timeouts:
            self.b.notes.append(f"storm5xx {name}: {timeouts} GETs got no reply within "
                                f"{a.get_timeout}s (their clients stopped)")
        row = [name, len(storm), calls, f"{calls / storm_s:.0f}",
               f"{calls / len(storm):.2f}" if storm else "-", value, stale_values, fillerr, nil,
               other, fmt_ms(pct(lat, 50)), fmt_ms(pct(lat, 99)),
               f"{fmt_ms(first)} / {fmt_ms(recover_all)}"]
        detail = (f"  {name}: FILLERR reasons {reasons or '-'}; retries made "
                  f"{m['retries_success'] + m['retries_failure']:g} (success "
                  f"{m['retries_success']:g}), not made: budget "
                  f"{m['budget_exhausted']:g}, out of time {m['retries_out_of_time']:g}; "
                  f"breaker opened {m['breaker_opened']:g} times, rejected "
                  f"{m['breaker_rejected']:g} fills")
        return row, detail


async def run(bench: BenchBase) -> str:
    """Runs every setup; returns the report block (title, table, per-setup detail lines)."""
    return await Storm(bench).run()


__all__ = ["add_args", "run"]
