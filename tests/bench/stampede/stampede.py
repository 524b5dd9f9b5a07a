#!/usr/bin/python3
r"""The stampede benchmark's driver: starts corrals, drives raw-RESP clients, prints tables.

    run.sh: redis-server (REDIS_PORT) + sample_origin (ORIGIN_PORT) ---> stampede.py
      per scenario: M corrals (workers 1, listen 127.0.0.1:0, port from --ready-file)
                    ^ N asyncio client connections, round-robin over the corrals
      storms:  connect N, PING each; then per storm: origin /_reset, one synchronous loop writes
               "GET <fresh key>" on every connection (the barrier), await every reply (bounded),
               origin /_stats -> calls of that key's path; then a "hit storm" of the now-cached
               key (the client + proxy floor, no origin)
      hot:     ttl 2s jitter 0; 20 looping clients on one key for 3 TTL periods; origin calls
               read at each period boundary; nil replies and GETs over 30 ms counted
      revalidate: (revalidate.py) a hot key refreshed every TTL with and without ETag
               revalidation (ttl.from_origin); origin body bytes per TTL period
      stale:   2 corrals, distributed; per round a fresh key: GET on corral A (a fill), SET on
               corral B at a random moment in the fill window; once both replied and the lease
               is gone, GET straight from Redis: it must hold the writer's value
      storm5xx: storm5xx.py (the origin answers 503 for a while; per origin setup)

It asserts nothing: every table has a "target" column and the run exits 0 unless the benchmark
itself could not run. Raw rows go to OUT_DIR as CSV; each corral's log and /metrics stay there.

Standard library only (Debian's /usr/bin/python3). Every wait is bounded; every corral started
here is stopped by its own pid (SIGTERM, then SIGKILL), also when this process gets SIGTERM, and
gets SIGTERM from the kernel if this process dies without cleaning up (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import os
import random
import signal
import sys
import time
import types
from typing import Any, Dict, List, Tuple

from common import (NIL, BenchBase, RespClient, connect, connect_many, fmt_ms, log, med,
                    pct, resp, stop_all_corrals, table)
from common import FILL_SECRET  # (common also puts tests/support on sys.path)
from fill_keys import lease_key  # internal key names, as corral makes them
import revalidate  # the "revalidate" phase (ETag revalidation vs plain refreshes)
import storm5xx  # the "storm5xx" phase (an origin answering 503; retries, budget, breaker)


class Bench(BenchBase):

    # -- storms -------------------------------------------------------------------------------

    async def storm(self, conns: List[RespClient], key: str) -> Dict[str, Any]:
        """One barrier storm of GET key on every connection. Returns latencies and counts."""
        cmd = resp("GET", key)
        sends: List[float] = []
        futs: List[asyncio.Future] = []
        # The barrier: every connection is open and served; this loop has no await, so all the
        # writes leave in one event-loop turn, as close to "the same instant" as one thread can.
        for c in conns:
            sends.append(time.perf_counter())
            futs.append(c.send(cmd))
        done, pending = await asyncio.wait(futs, timeout=self.a.get_timeout)
        lat: List[float] = []
        got = nil = err = 0
        errors: Dict[str, int] = {}
        for t0, f in zip(sends, futs):
            if f in pending:
                f.cancel()
                continue
            if f.exception() is not None:
                err += 1
                errors[str(f.exception())[:80]] = errors.get(str(f.exception())[:80], 0) + 1
                continue
            now, val = f.result()
            lat.append((now - t0) * 1000.0)
            if isinstance(val, bytes):
                got += 1
            elif val is NIL:
                nil += 1
            else:
                err += 1
                errors[str(val)[:80]] = errors.get(str(val)[:80], 0) + 1
        lat.sort()
        return {"got": got, "nil": nil, "err": err, "timeouts": len(pending), "errors": errors,
                "p50": pct(lat, 50), "p99": pct(lat, 99), "max": lat[-1] if lat else math.nan,
                "spread": (sends[-1] - sends[0]) * 1000.0}

    async def storms(self) -> List[List[Any]]:
        a = self.a
        await self.origin.set_latency(a.latency_ms)
        path_csv = os.path.join(a.out, "storms.csv")
        with open(path_csv, "w", newline="") as f:
            csv.writer(f).writerow(["n", "m", "mode", "storm", "key", "origin_calls",
                                    "origin_calls_total", "got", "nil", "err", "timeouts",
                                    "p50_ms", "p99_ms", "max_ms", "send_spread_ms",
                                    "hit_p50_ms", "hit_p99_ms"])
        rows = []
        for n in a.ns:
            for m in a.ms:
                for mode in a.modes:
                    rows.append(await self.scenario(n, m, mode, path_csv))
        return rows

    async def scenario(self, n: int, m: int, mode: str, path_csv: str) -> List[Any]:
        a = self.a
        what = f"storm N={n} M={m} {mode}"
        procs = await self.start_corrals(m, self.config(mode), f"storm-n{n}-m{m}-{mode}")
        conns: List[RespClient] = []
        results = []
        try:
            conns = await connect_many([p.port for p in procs], n)
            # Warm-up storm, not recorded: opens each corral's origin and Redis connections.
            await self.storm(conns, f"user:{self.keys.fresh()}")
            await asyncio.sleep(a.settle)
            for s in range(1, a.storms + 1):
                kid = self.keys.fresh()
                key, path = f"user:{kid}", f"/v1/users/{kid}"
                await self.origin.reset()
                r = await self.storm(conns, key)
                await asyncio.sleep(a.settle)  # late origin calls (there should be none) count
                st = await self.origin.stats()
                r["calls"] = st["paths"].get(path, 0)
                r["calls_total"] = st["calls"]
                if r["timeouts"] or r["err"]:
                    self.notes.append(f"{what} storm {s}: {r['timeouts']} GETs timed out after "
                                      f"{a.get_timeout}s, {r['err']} errors {r['errors']}")
                # Replace connections whose request timed out or failed: a late reply must not
                # be taken for the next storm's.
                if r["timeouts"] or any(c.closed for c in conns):
                    for c in conns:
                        c.close()
                    conns = await connect_many([p.port for p in procs], n)
                # The same key again, now cached: the floor of client + proxy + Redis latency
                # for N simultaneous GETs on this machine, with no origin involved.
                h = await self.storm(conns, key)
                r["hit_p50"], r["hit_p99"] = h["p50"], h["p99"]
                results.append(r)
                log(f"{what} storm {s}/{a.storms}: origin calls {r['calls']}, "
                    f"got {r['got']}/{n}, p50 {fmt_ms(r['p50'])} p99 {fmt_ms(r['p99'])} "
                    f"max {fmt_ms(r['max'])} ms (hit storm p99 {fmt_ms(h['p99'])} ms)")
                with open(path_csv, "a", newline="") as f:
                    csv.writer(f).writerow([n, m, mode, s, key, r["calls"], r["calls_total"],
                                            r["got"], r["nil"], r["err"], r["timeouts"],
                                            f"{r['p50']:.3f}", f"{r['p99']:.3f}",
                                            f"{r['max']:.3f}", f"{r['spread']:.3f}",
                                            f"{h['p50']:.3f}", f"{h['p99']:.3f}"])
        finally:
            for c in conns:
                c.close()
            await asyncio.sleep(0.05)
            await self.stop_corrals(procs, what)

        target = {"distributed": 1, "local": m, "off": n}[mode]
        calls = [r["calls"] for r in results]
        p99 = med([r["p99"] for r in results])
        got = med([r["got"] for r in results])
        missed = []
        if any(c != target for c in calls):
            missed.append("calls")
        if not p99 < a.latency_ms + 20:
            missed.append("p99")
        if any(r["got"] != n for r in results):
            missed.append("values")
        return [n, m, mode, len(results), f"{med(calls):g}", f"{min(calls)}-{max(calls)}",
                target, fmt_ms(med([r["p50"] for r in results])), fmt_ms(p99),
                fmt_ms(med([r["max"] for r in results])), f"{got:g}/{n}",
                fmt_ms(med([r["hit_p99"] for r in results])),
                fmt_ms(med([r["spread"] for r in results])),
                "met" if not missed else "MISSED: " + ",".join(missed)]

    # -- hot key ------------------------------------------------------------------------------

    async def hot(self) -> List[List[Any]]:
        a = self.a
        await self.origin.set_latency(a.latency_ms)
        variants = [("stale_while_revalidate 2s", f"{{stale_while_revalidate: {a.hot_ttl}s}}"),
                    ("early_refresh xfetch b=1", "{early_refresh: xfetch, early_refresh_beta: 1}")]
        rows = []
        with open(os.path.join(a.out, "hot.csv"), "w", newline="") as f:
            csv.writer(f).writerow(["variant", "gets", "calls_per_period", "nil", "slow", "err",
                                    "p50_ms", "p99_ms", "max_ms", "max_age_ms", "versions"])
        for name, fresh in variants:
            rows.append(await self.hot_variant(name, fresh))
        return rows

    async def hot_variant(self, name: str, freshness: str) -> List[Any]:
        a = self.a
        what = f"hot key {name}"
        ttl_ms = a.hot_ttl * 1000.0
        cfg = self.config("distributed", ttl=f"{a.hot_ttl}s", jitter="0", freshness=freshness)
        procs = await self.start_corrals(a.hot_m, cfg, "hot-" + name.split()[0])
        conns: List[RespClient] = []
        try:
            conns = await connect_many([p.port for p in procs], a.hot_clients)
            kid = self.keys.fresh()
            key, path = f"user:{kid}", f"/v1/users/{kid}"
            await self.origin.reset()
            # Period 1 starts with the key's first fill (a cold miss: not counted as a client-
            # visible miss, it is the one fill any cache needs).
            t_start = time.perf_counter()
            first = await conns[0].cmd("GET", key, timeout=a.get_timeout)
            if not isinstance(first, bytes):
                raise RuntimeError(f"{what}: first GET of {key} answered {first!r}")
            periods = a.hot_periods
            deadline = t_start + periods * ttl_ms / 1000.0
            cumulative: List[int] = []

            async def sample() -> None:
                for k in range(1, periods + 1):
                    await asyncio.sleep(max(0.0, t_start + k * ttl_ms / 1000.0 -
                                            time.perf_counter()))
                    cumulative.append(await self.origin.calls(path))

            lat: List[float] = []
            counts = {"nil": 0, "err": 0}
            max_age = [0.0]
            versions: set = set()
            parsed: Dict[bytes, Tuple[int, float]] = {}
            cmd = resp("GET", key)

            async def reader(c: RespClient) -> None:
                while time.perf_counter() < deadline:
                    t0 = time.perf_counter()
                    try:
                        now, val = await asyncio.wait_for(c.send(cmd), a.get_timeout)
                    except (asyncio.TimeoutError, ConnectionError):
                        counts["err"] += 1
                        lat.append(a.get_timeout * 1000.0)
                        return  # this connection is out of step now
                    lat.append((now - t0) * 1000.0)
                    if isinstance(val, bytes):
                        if val not in parsed:
                            body = json.loads(val)
                            parsed[val] = (int(body["n"]), float(body["at"]))
                        n_, at = parsed[val]
                        versions.add(n_)
                        # Age of the value served: wall clock now minus the origin's "at" (both
                        # this machine's clock).
                        max_age[0] = max(max_age[0], (time.time() - at) * 1000.0)
                    elif val is NIL:
                        counts["nil"] += 1
                    else:
                        counts["err"] += 1

            await asyncio.gather(sample(), *(reader(c) for c in conns))
            await asyncio.sleep(a.settle)
        finally:
            for c in conns:
                c.close()
            await asyncio.sleep(0.05)
            await self.stop_corrals(procs, what)

        per = [cumulative[0]] + [cumulative[i] - cumulative[i - 1] for i in range(1, periods)]
        lat.sort()
        slow = sum(1 for v in lat if v > a.slow_ms)
        mean_calls = sum(per) / periods
        missed = []
        if not 0.5 <= mean_calls <= 1.5:
            missed.append("calls")
        if counts["nil"] or slow or counts["err"]:
            missed.append("misses")
        with open(os.path.join(a.out, "hot.csv"), "a", newline="") as f:
            csv.writer(f).writerow([name, len(lat), " ".join(map(str, per)), counts["nil"], slow,
                                    counts["err"], f"{pct(lat, 50):.3f}", f"{pct(lat, 99):.3f}",
                                    f"{lat[-1]:.3f}", f"{max_age[0]:.0f}", len(versions)])
        log(f"{what}: {len(lat)} GETs, origin calls per period {per}, nil {counts['nil']}, "
            f"slow {slow}, p99 {fmt_ms(pct(lat, 99))} ms")
        return [name, a.hot_m, len(lat), " ".join(map(str, per)), f"{mean_calls:.2f}",
                counts["nil"], slow, counts["err"], fmt_ms(pct(lat, 99)), fmt_ms(lat[-1]),
                f"{max_age[0]:.0f}", len(versions),
                "met" if not missed else "MISSED: " + ",".join(missed)]

    # -- stale sets ---------------------------------------------------------------------------

    async def stale(self) -> List[List[Any]]:
        a = self.a
        await self.origin.set_latency(a.stale_latency_ms)
        rows = [await self.stale_variant("reader A / writer B", 2, a.stale_rounds)]
        if a.stale_control > 0:
            # Controls, fewer rounds: the same race on one corral (revocation of its own
            # flight), and a writer that bypasses corral (no revocation at all: stale values
            # are expected there, which shows the check can see them).
            rows.append(await self.stale_variant("reader A / writer A", 1, a.stale_control))
            rows.append(await self.stale_variant("writer straight to Redis", 1,
                                                 a.stale_control, writer_direct=True))
        await self.origin.set_latency(a.latency_ms)
        return rows

    async def stale_variant(self, name: str, m: int, n_rounds: int,
                            writer_direct: bool = False) -> List[Any]:
        a = self.a
        what = f"stale sets {name}"
        tag = f"stale-m{m}" + ("-direct" if writer_direct else "")
        procs = await self.start_corrals(m, self.config("distributed"), tag)
        redis = reader = writer = None
        rounds: List[Dict[str, Any]] = []
        path_csv = os.path.join(a.out, f"{tag}.csv")
        # The window in which a write can race the fill: the lookup, the origin's latency, the
        # commit. Writes are spread uniformly over it (plus a little past it).
        window_ms = a.stale_latency_ms * 1.25 + 2.0
        try:
            redis = await connect(a.redis_port)
            reader = await connect(procs[0].port)
            writer = redis if writer_direct else await connect(procs[-1].port)
            await self.origin.reset()
            for i in range(n_rounds):
                kid = self.keys.fresh()
                key = f"user:{kid}"
                lease = lease_key(FILL_SECRET, key)
                wval = f"writer-{i}-{random.getrandbits(32):08x}"
                delay_ms = random.uniform(0.0, window_ms)
                t0 = time.perf_counter()
                rf = reader.send(resp("GET", key))
                await asyncio.sleep(delay_ms / 1000.0)
                tw = time.perf_counter()
                wf = writer.send(resp("SET", key, wval))
                done, pending = await asyncio.wait([rf, wf], timeout=a.get_timeout)
                if pending:
                    raise RuntimeError(f"{what}: round {i} ({key}): no reply within "
                                       f"{a.get_timeout}s (reader done={rf.done()}, writer "
                                       f"done={wf.done()})")
                r_at, rval = rf.result()
                w_at, wrep = wf.result()
                if wrep != "OK":
                    raise RuntimeError(f"{what}: SET {key} answered {wrep!r}")
                # The fill is over once its lease is gone (committed, refused, or revoked by
                # the write); a refused or late commit lands within a few ms after that.
                lease_deadline = time.monotonic() + 3.0
                while await redis.cmd("EXISTS", lease) and time.monotonic() < lease_deadline:
                    await asyncio.sleep(0.002)
                lease_left = bool(await redis.cmd("EXISTS", lease))
                await asyncio.sleep(a.stale_grace_ms / 1000.0)
                now_val = await redis.cmd("GET", key)
                if isinstance(rval, bytes) and rval == wval.encode():
                    where = "before"  # the reader's lookup already found the written value
                elif w_at < r_at:
                    where = "during"  # acked while the reader still waited for its fill
                else:
                    where = "after"
                rounds.append({"key": key, "wval": wval, "where": where,
                               "stale": now_val != wval.encode(), "missing": now_val is NIL,
                               "lease_left": lease_left, "delay": delay_ms,
                               "w_at": (tw - t0) * 1000.0,
                               "w_ms": (w_at - tw) * 1000.0, "r_ms": (r_at - t0) * 1000.0,
                               "reader_nil": rval is NIL, "now": now_val})
            # Once more at the end, long after every fill: a late commit shows up here.
            await asyncio.sleep(0.5)
            finals = await asyncio.gather(*(redis.cmd("GET", r["key"]) for r in rounds))
            for r, v in zip(rounds, finals):
                r["stale_end"] = v != r["wval"].encode()
            calls = (await self.origin.stats())["calls"]
        finally:
            for c in {id(c): c for c in (redis, reader, writer)}.values():
                if c is not None:
                    c.close()
            await asyncio.sleep(0.05)
            await self.stop_corrals(procs, what)

        with open(path_csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["key", "where", "write_delay_ms", "write_sent_at_ms", "write_ms",
                        "read_ms", "reader_nil",
                        "lease_left", "stale", "stale_end", "redis_value"])
            for r in rounds:
                w.writerow([r["key"], r["where"], f"{r['delay']:.2f}", f"{r['w_at']:.2f}",
                            f"{r['w_ms']:.2f}",
                            f"{r['r_ms']:.2f}", int(r["reader_nil"]), int(r["lease_left"]),
                            int(r["stale"]), int(r["stale_end"]),
                            (r["now"] or b"").decode("utf-8", "replace")[:80]])
        by = {w_: [r for r in rounds if r["where"] == w_] for w_ in ("before", "during", "after")}
        stale_n = sum(r["stale"] for r in rounds)
        stale_end = sum(r["stale_end"] for r in rounds)
        missing = sum(r["missing"] for r in rounds)
        stale_where = " ".join(f"{w_}:{sum(r['stale_end'] for r in by[w_])}" for w_ in by)
        for r in [r for r in rounds if r["stale_end"] and not writer_direct][:3]:
            self.notes.append(f"{what}: stale {r['key']} write sent at +{r['w_at']:.1f} ms "
                              f"({r['where']} the reader's reply): Redis holds "
                              f"{(r['now'] or b'(nil)')[:60]!r}, writer wrote {r['wval']!r}")
        log(f"{what}: {len(rounds)} rounds, stale {stale_n} (at end {stale_end}), "
            f"by landing {stale_where}")
        if writer_direct:
            verdict = "control: stale expected" if stale_end else "control: CHECK SAW NONE"
        else:
            verdict = "met" if stale_end == 0 and stale_n == 0 else "MISSED: stale values"
        return [name, m, len(rounds),
                "/".join(str(len(by[w_])) for w_ in by), stale_n, stale_end, stale_where,
                missing, sum(r["lease_left"] for r in rounds), calls, verdict]


async def amain(a: argparse.Namespace) -> int:
    b = Bench(a)
    out: List[str] = []
    started = time.monotonic()
    try:
        if "storms" in a.phases:
            rows = await b.storms()
            out.append(
                f"Storms: N simultaneous GETs of one missing key, round-robin over M corrals; "
                f"origin latency {a.latency_ms:g} ms; medians over {a.storms} storms (fresh key "
                f"each).\nTarget: origin calls = 1 (distributed), M (local), N (off) in every "
                f"storm; p99 < {a.latency_ms + 20:g} ms; every client gets the value.\n"
                + table(["N", "M", "single_flight", "storms", "origin calls", "range",
                         "target", "p50 ms", "p99 ms", "max ms", "got value",
                         "hit p99 ms", "send spread ms", "target met"], rows, left=3)
                + ("\noff: origin calls stop at origins.users.max_in_flight (64) per corral; "
                   "the other clients' fills fail at once (overloaded) and they get nil."
                   if any(r[2] == "off" and r[4] == str(64 * r[1]) for r in rows) else ""))
        if "hot" in a.phases:
            rows = await b.hot()
            out.append(
                f"Hot key: {a.hot_clients} clients GET one key in a loop for {a.hot_periods} TTL "
                f"periods (ttl {a.hot_ttl}s, jitter 0, distributed, origin {a.latency_ms:g} ms)."
                f"\nTarget: about one origin call per period (mean 0.5-1.5); no nil replies and "
                f"no GET over {a.slow_ms:g} ms.\n"
                + table(["freshness", "M", "GETs", "calls/period", "mean", "nil",
                         f">{a.slow_ms:g}ms", "errors", "p99 ms", "max ms", "max age ms",
                         "versions", "target met"], rows))
        if "revalidate" in a.phases:
            out.append(await revalidate.phase(b, types.SimpleNamespace(
                connect_many=connect_many, resp=resp, log=log, table=table,
                FILL_SECRET=FILL_SECRET)))
        if "stale" in a.phases:
            rows = await b.stale()
            out.append(
                f"Stale sets: a SET races a fill (GET through corral A) of a fresh key; "
                f"distributed, origin {a.stale_latency_ms:g} ms; afterwards Redis must hold the "
                f"written value.\n"
                f"where = the write landed before the fill's lookup / during the fill / after "
                f"the reader's reply.\nTarget: 0 stale values.\n"
                + table(["writer", "corrals", "rounds", "before/during/after",
                         "stale", "stale at end", "stale by where", "missing", "lease left",
                         "origin calls", "target met"], rows))
        if "storm5xx" in a.phases:
            out.append(await storm5xx.run(b))
    finally:
        stop_all_corrals()
    print()
    print("\n\n".join(out))
    if b.notes:
        print("\nNotes:")
        for n in b.notes:
            print(f"  - {n}")
    print(f"\ndriver time: {time.monotonic() - started:.0f} s; raw data: {a.out}")
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--redis-port", type=int, required=True)
    p.add_argument("--origin-port", type=int, required=True)
    p.add_argument("--corral-bin", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--phases", default="storms hot revalidate stale storm5xx")
    p.add_argument("--storms", type=int, default=5)
    p.add_argument("--ns", default="100 1000")
    p.add_argument("--ms", default="1 4")
    p.add_argument("--modes", default="distributed local off")
    p.add_argument("--latency-ms", type=float, default=50)
    p.add_argument("--get-timeout", type=float, default=5.0)
    p.add_argument("--settle", type=float, default=0.1)
    p.add_argument("--hot-clients", type=int, default=20)
    p.add_argument("--hot-m", type=int, default=2)
    p.add_argument("--hot-ttl", type=int, default=2)
    p.add_argument("--hot-periods", type=int, default=3)
    p.add_argument("--slow-ms", type=float, default=30)
    p.add_argument("--reval-periods", type=int, default=5)
    p.add_argument("--doc-bytes", type=int, default=16384)
    p.add_argument("--stale-rounds", type=int, default=1000)
    p.add_argument("--stale-latency-ms", type=float, default=20)
    p.add_argument("--stale-grace-ms", type=float, default=5)
    p.add_argument("--stale-control", type=int, default=200, help="rounds of each control")
    storm5xx.add_args(p)
    a = p.parse_args()
    a.phases = a.phases.split()
    a.ns = [int(x) for x in a.ns.split()]
    a.ms = [int(x) for x in a.ms.split()]
    a.modes = a.modes.split()
    for mode in a.modes:
        if mode not in ("distributed", "local", "off"):
            p.error(f"unknown single_flight mode {mode!r}")
    os.makedirs(a.out, exist_ok=True)

    loop = asyncio.new_event_loop()
    task = loop.create_task(amain(a))
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        return loop.run_until_complete(task)
    except asyncio.CancelledError:
        log("interrupted")
        return 130
    finally:
        stop_all_corrals()
        loop.close()


if __name__ == "__main__":
    sys.exit(main())
