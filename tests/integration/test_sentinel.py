"""corral in front of a Sentinel set (upstream.sentinel), under load. corral-only.

    20 clients --pipelined INCR/ECHO pairs--> corral (2 workers) --> primary P
                                                    ^  replica R (--replicaof P)
                  3 sentinels (redis-server FILE --sentinel, down-after 1 s) watch P and R

- kill -9 P, and SENTINEL FAILOVER: every request gets one reply (a value or an error) in order,
  no batch waits past command_timeout + 100 ms, writes resume within 4 s of the kill and 0.5 s
  of the first +switch-master any sentinel announces; after SENTINEL FAILOVER the counter equals
  the INCRs acknowledged; the old primary never gets a write from corral once it is not the
  primary (MONITOR); dedicated sessions (MULTI, SUBSCRIBE, BLPOP) end visibly.
- every sentinel down: corral serves the last primary, and /ready, metrics and the log say so.
- no sentinel at startup: /ready 503, requests fail fast with corral's error.
- replica reads follow the list Sentinel reports (a replica it adds, a replica it drops).
- ROLE: a node a sentinel wrongly names as the primary never gets a client's byte.

With CORRAL_SENTINEL_TIMINGS=FILE, each failover appends a JSON line with its timings.
"""

import json
import os
import threading
import time

import pytest

from harness import (EOF, RedisServer, RespConn, RespError, corral_config, encode_command,
                     free_port, try_cmd, wait_until)
from sentinels import MASTER, EventWatcher, FakeSentinel, SentinelSet

COMMAND_TIMEOUT_S = 1.0
CLIENTS = 20
DEPTH = 8  # INCR/ECHO pairs per pipelined batch
WRITES = ("INCR", "SET", "DEL", "INCRBY", "HSET", "LPUSH", "RPUSH", "EXPIRE")


def sentinel_config(addresses, **upstream) -> dict:
    cfg = corral_config(0, workers=2, upstream={
        "command_timeout": f"{int(COMMAND_TIMEOUT_S * 1000)}ms", **upstream})
    del cfg["upstream"]["primary"]
    cfg["upstream"]["sentinel"] = {"master": MASTER, "addresses": list(addresses)}
    return cfg


@pytest.fixture
def primary_and_replica(corral_only):
    primary = RedisServer()
    replica = None
    try:
        replica = RedisServer(replicaof=primary.port)
        replica.wait_link_up()
        yield primary, replica
    finally:
        if replica is not None:
            replica.close()
        primary.close()


@pytest.fixture
def cluster(primary_and_replica):
    """(primary, replica, sentinels), settled: every sentinel knows the others and the replica."""
    primary, replica = primary_and_replica
    with SentinelSet(primary.port) as sentinels:
        sentinels.wait_settled(replicas=1)
        yield primary, replica, sentinels


class Load:
    """CLIENTS threads, each sending batches of DEPTH pipelined [INCR ctr, ECHO tag] pairs and
    checking each batch as it comes back: every ECHO is its own tag in order (so every reply is
    where it belongs), every INCR is an integer or corral's upstream error, never anything else,
    never EOF. Records per INCR (sent, received, acknowledged) and each batch's wait."""

    def __init__(self, port: int):
        self.port = port
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.incrs: list = []  # (t_send, t_recv, ok)
        self.waits: list = []
        self.errors: dict = {}
        self.failures: list = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(CLIENTS)]
        for t in self.threads:
            t.start()

    def _run(self, idx: int):
        try:
            # The socket's own timeout is a backstop; the bound is checked on each batch.
            conn = RespConn(self.port, timeout=COMMAND_TIMEOUT_S + 3)
            n = 0
            while not self.stop.is_set():
                tags = [f"c{idx}-{n}-{j}".encode() for j in range(DEPTH)]
                batch = b"".join(encode_command("INCR", "ctr") + encode_command("ECHO", t)
                                 for t in tags)
                t0 = time.monotonic()  # before the send: a batch is never dated after it left
                conn.send_raw(batch)
                replies = [conn.read_reply() for _ in range(2 * DEPTH)]
                t1 = time.monotonic()
                rec, failed = [], False
                for j in range(DEPTH):
                    incr, echo = replies[2 * j], replies[2 * j + 1]
                    if echo != tags[j]:
                        raise AssertionError(f"client {idx}: reply out of place: ECHO {tags[j]!r} "
                                             f"answered {echo!r} (batch {replies!r})")
                    if isinstance(incr, int):
                        rec.append((t0, t1, True))
                    elif isinstance(incr, RespError) and incr.startswith("ERR corral: upstream"):
                        rec.append((t0, t1, False))
                        failed = True
                    else:
                        raise AssertionError(f"client {idx}: INCR answered {incr!r}")
                with self.lock:
                    self.incrs.extend(rec)
                    self.waits.append(t1 - t0)
                    for r in replies[::2]:
                        if isinstance(r, RespError):
                            self.errors[r.message] = self.errors.get(r.message, 0) + 1
                n += 1
                if failed:
                    time.sleep(0.005)  # corral fails fast while the primary is away
        except Exception as e:  # noqa: BLE001 - reported by finish()
            with self.lock:
                self.failures.append(f"client {idx}: {e!r}")

    def acked(self) -> int:
        with self.lock:
            return sum(1 for r in self.incrs if r[2])

    def resumed(self, after: float):
        """(first failure at or after `after`, first acknowledged INCR sent after that failure's
        reply): the outage as clients saw it. None while writes have not resumed."""
        with self.lock:
            fails = [r[1] for r in self.incrs if not r[2] and r[1] >= after]
            if not fails:
                return None
            first_fail = min(fails)
            oks = [r[1] for r in self.incrs if r[2] and r[0] >= first_fail]
            return (first_fail, min(oks)) if oks else None

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=COMMAND_TIMEOUT_S + 5)
        assert not any(t.is_alive() for t in self.threads), "a load client hung"
        assert not self.failures, "\n".join(self.failures)
        worst = max(self.waits)
        assert worst <= COMMAND_TIMEOUT_S + 0.1, \
            f"a batch waited {worst:.3f}s (> command_timeout + 100 ms); errors: {self.errors}"
        return worst


def primary_series(port: int) -> str:
    return f'corral_sentinel_primary{{master="{MASTER}",address="127.0.0.1:{port}"}}'


def monitor(port: int) -> RespConn:
    m = RespConn(port, timeout=5)
    assert m.cmd("MONITOR") == "OK"
    return m


def monitor_lines(m: RespConn, quiet: float = 0.3) -> list:
    """The MONITOR lines received so far: (server unix time, client address, command)."""
    m.settimeout(quiet)
    out = []
    while True:
        try:
            line = m.read_reply()
        except AssertionError:  # RespTimeout: nothing more for `quiet` seconds
            return out
        if not isinstance(line, str):
            return out
        ts, _, rest = line.partition(" [")
        addr = rest.split("]", 1)[0].split(" ", 1)[-1]
        cmd = rest.split("] ", 1)[1].split(" ", 1)[0].strip('"').upper() if "] " in rest else ""
        out.append((float(ts), addr, cmd))


def record_timings(kind: str, **t):
    path = os.environ.get("CORRAL_SENTINEL_TIMINGS")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"kind": kind, **{k: round(v, 4) for k, v in t.items()}}) + "\n")


def test_sigkill_primary_under_load(cluster, corral_factory):
    primary, replica, sentinels = cluster
    c = corral_factory(sentinel_config(sentinels.addresses()))
    watcher = EventWatcher(sentinels.ports)
    load = Load(c.port)
    try:
        wait_until(lambda: load.acked() > 200, 5, what="load flowing through corral")
        t_kill = time.monotonic()
        primary.kill()
        t_switch = watcher.wait_for("+switch-master", 10, sentinels)
        resumed = wait_until(lambda: load.resumed(t_kill), 6, what="writes resumed")
        # The old primary comes back as it was (a primary of nothing), MONITORed from its start,
        # while the load goes on: corral must not write to it, even before Sentinel demotes it.
        primary.start()
        mon = monitor(primary.port)
        time.sleep(1.5)
        acked_before_stop = load.acked()
        worst = load.finish()
    finally:
        load.stop.set()
        watcher.close()
    assert sentinels.primary() == replica.port
    lines = monitor_lines(mon)
    mon.close()
    writes = [ln for ln in lines if ln[2] in WRITES and not ln[1].endswith(f":{replica.port}")]
    assert not writes, f"the restarted old primary got writes not from its new master: {writes[:5]}"
    first_fail, first_ok = resumed
    kill_to_resume, switch_to_resume = first_ok - t_kill, first_ok - t_switch
    record_timings("sigkill", kill_to_switch=t_switch - t_kill, kill_to_resume=kill_to_resume,
                   switch_to_resume=switch_to_resume, worst_batch=worst)
    assert kill_to_resume <= 4.0, f"writes resumed {kill_to_resume:.3f}s after the kill"
    assert switch_to_resume <= 0.5, \
        f"writes resumed {switch_to_resume:.3f}s after the first +switch-master"
    assert acked_before_stop > 0 and replica.cmd("GET", "ctr") is not None
    assert "sentinel primary switched" in c.stderr_text()
    m = c.metrics()
    assert m["corral_sentinel_primary_switches_total"] == 1
    assert m[primary_series(replica.port)] == 1

    # The per-upstream series follow the switch: the primary is the promoted node now.
    def primaries():
        return {k: v for k, v in c.metrics().items()
                if k.startswith("corral_upstream_up{") and 'role="primary"' in k}
    wait_until(lambda: primaries() == {
        f'corral_upstream_up{{addr="127.0.0.1:{replica.port}",role="primary"}}': 1},
        5, what="corral_upstream_up naming the promoted primary")


def test_sentinel_failover_under_load(cluster, corral_factory):
    primary, replica, sentinels = cluster
    c = corral_factory(sentinel_config(sentinels.addresses()))
    watcher = EventWatcher(sentinels.ports)
    mon = monitor(primary.port)
    # Sessions that hold state on a dedicated connection to the old primary.
    tx, sub, blk = c.client(), c.client(), c.client()
    assert tx.cmd("MULTI") == "OK" and tx.cmd("INCR", "txctr") == "QUEUED"
    assert sub.cmd("SUBSCRIBE", "news") == [b"subscribe", b"news", 1]
    blk.send_cmd("BLPOP", "nothing", "0")
    load = Load(c.port)
    try:
        wait_until(lambda: load.acked() > 200, 5, what="load flowing through corral")
        t_trigger = time.monotonic()
        assert sentinels.cmd(0, "SENTINEL", "FAILOVER", MASTER) == "OK"
        t_switch = watcher.wait_for("+switch-master", 10, sentinels)
        resumed = wait_until(lambda: load.resumed(t_trigger), 6, what="writes resumed")
        time.sleep(0.5)
        worst = load.finish()
    finally:
        load.stop.set()
        watcher.close()
    assert sentinels.primary() == replica.port
    # Nothing acknowledged was lost: every acknowledged INCR is in the new primary's counter,
    # and nothing else is (a write acknowledged by the demoted primary would be missing here).
    assert replica.cmd("GET", "ctr") == str(load.acked()).encode(), load.errors
    # The old primary got no write once the sentinels had switched away from it.
    switch_unix = watcher.first("+switch-master", unix=True)
    lines = monitor_lines(mon)
    mon.close()
    late = [ln for ln in lines if ln[2] in WRITES and ln[0] > switch_unix and
            not ln[1].endswith(f":{replica.port}")]
    assert not late, f"the old primary got writes after +switch-master: {late[:5]}"
    # Dedicated sessions ended visibly: never an EXEC that ran, never a silent rebind.
    exec_reply = try_cmd(tx, "EXEC")
    assert exec_reply is EOF or isinstance(exec_reply, RespError), exec_reply
    got = sub.read_reply()
    assert got is EOF or isinstance(got, RespError), got
    got = blk.read_reply()
    assert got is EOF or isinstance(got, RespError), got
    for conn in (tx, sub, blk):
        conn.close()
    first_fail, first_ok = resumed
    record_timings("failover", trigger_to_switch=t_switch - t_trigger,
                   trigger_to_resume=first_ok - t_trigger, switch_to_resume=first_ok - t_switch,
                   worst_batch=worst)
    assert first_ok - t_switch <= 0.5, \
        f"writes resumed {first_ok - t_switch:.3f}s after the first +switch-master"
    log = c.stderr_text()
    assert "sentinel failover under way, primary fenced" in log
    assert "dedicated upstream connections ended" in log


def test_every_sentinel_down_keeps_serving(cluster, corral_factory):
    primary, replica, sentinels = cluster
    c = corral_factory(sentinel_config(sentinels.addresses()))
    with c.client() as cl:
        assert cl.cmd("SET", "k", "before") == "OK"
        # One down is skipped: the others still answer.
        sentinels.kill(0)
        wait_until(lambda: c.metrics()["corral_sentinel_reachable"] == 2, 5,
                   what="corral_sentinel_reachable 2")
        m = c.metrics()
        assert m[f'corral_sentinel_up{{sentinel="127.0.0.1:{sentinels.ports[0]}"}}'] == 0
        assert m[f'corral_sentinel_up{{sentinel="127.0.0.1:{sentinels.ports[1]}"}}'] == 1
        assert c.http_get("/ready") == (200, f"ready; primary 127.0.0.1:{primary.port} (sentinel "
                                             f"master {MASTER}, 2 of 3 sentinels reachable)\n")
        assert cl.cmd("SET", "k", "one-down") == "OK"
        for i in range(1, len(sentinels.ports)):
            sentinels.kill(i)
        wait_until(lambda: c.metrics()["corral_sentinel_reachable"] == 0, 5,
                   what="corral_sentinel_reachable 0")
        status, body = c.http_get("/ready")
        assert status == 200, body
        assert body == ("ready; sentinels unreachable (0 of 3 sentinels reachable): serving the "
                        f"last known primary 127.0.0.1:{primary.port}\n")
        m = c.metrics()
        for p in sentinels.ports:
            assert m[f'corral_sentinel_up{{sentinel="127.0.0.1:{p}"}}'] == 0
        assert m[primary_series(primary.port)] == 1
        for i in range(50):
            assert cl.cmd("SET", "k", i) == "OK"
        assert primary.cmd("GET", "k") == b"49"
        assert "sentinel none reachable" in c.stderr_text()
        # One comes back: it is asked again.
        sentinels.start(0)
        wait_until(lambda: c.metrics()["corral_sentinel_reachable"] == 1, 5,
                   what="corral_sentinel_reachable 1")
        assert c.http_get("/ready")[1].startswith("ready; primary 127.0.0.1:")
        assert cl.cmd("GET", "k") == b"49"


def test_no_sentinel_answers_at_startup(corral_factory, corral_only):
    dead = [f"127.0.0.1:{free_port()}" for _ in range(3)]
    c = corral_factory(sentinel_config(dead))
    status, body = c.http_get("/ready")
    assert status == 503
    assert body == (f"primary unknown: no sentinel has named the primary of {MASTER} yet "
                    "(0 of 3 sentinels reachable)\n")
    with c.client() as cl:
        t0 = time.monotonic()
        assert cl.cmd("SET", "k", "v") == RespError(
            f"ERR corral: upstream sentinel:{MASTER} unavailable")
        assert time.monotonic() - t0 < 0.5  # fails fast, never waits for a primary
        assert cl.cmd("PING") == "PONG"


def test_a_silent_subscription_is_replaced_and_polls_find_the_switch(corral_factory, corral_only):
    """A subscription can die without a sign: one that leaves a PING unanswered is made again,
    and a switch no event announces is found by the next round (poll_interval 1 s)."""
    with RedisServer() as a, RedisServer() as b, FakeSentinel(a.port) as fake:
        c = corral_factory(sentinel_config([f"127.0.0.1:{fake.port}"]))
        with c.client() as cl:
            assert cl.cmd("SET", "k", "a") == "OK"
            wait_until(lambda: fake.subscriptions == 1, 2, what="corral subscribed")
            fake.mute_pings = True
            wait_until(lambda: fake.subscriptions >= 2, 4, what="a new subscription")
            assert "sentinel subscription silent, subscribing again" in c.stderr_text()
            fake.name(b.port)  # no +switch-master
            t0 = time.monotonic()
            wait_until(lambda: cl.cmd("SET", "k", "b") == "OK" and b.cmd("GET", "k") == b"b", 3,
                       interval=0.02, what="writes to the new primary")
            assert time.monotonic() - t0 < 1.5  # one poll_interval, and a margin


def _marked_replica(primary_port: int, marker: str) -> RedisServer:
    r = RedisServer(replicaof=primary_port, extra_args=["--replica-read-only", "no"])
    try:
        r.wait_link_up()
        wait_until(lambda: r.cmd("GET", "who") == b"primary", 5, what="'who' replicated")
        assert r.cmd("SET", "who", marker) == "OK"
        return r
    except BaseException:
        r.close()
        raise


def test_replica_reads_follow_sentinel(corral_factory, corral_only):
    primary = RedisServer()
    r1 = r2 = sentinels = None
    try:
        assert primary.cmd("SET", "who", "primary") == "OK"
        r1 = _marked_replica(primary.port, "r1")
        sentinels = SentinelSet(primary.port)
        # Sentinel reads a replica's INFO every 10 s; 300 ms makes it see changes in time.
        for i in range(3):
            assert sentinels.cmd(i, "SENTINEL", "DEBUG", "info-period", "300") == "OK"
        sentinels.wait_settled(replicas=1)
        c = corral_factory(sentinel_config(sentinels.addresses(), read_from="replica"))
        with c.client() as cl:
            def reads(n=30):
                return {cl.cmd("GET", "who") for _ in range(n)}

            wait_until(lambda: reads() == {b"r1"}, 5, what="reads served by r1 alone")
            # A replica the config never named: corral reads from it once Sentinel reports it.
            r2 = _marked_replica(primary.port, "r2")
            wait_until(lambda: reads() == {b"r1", b"r2"}, 10, what="reads from r1 and r2")
            # r2 leaves replication (Sentinel reports it as a master now): no more reads from it.
            assert r2.cmd("REPLICAOF", "NO", "ONE") == "OK"
            assert r2.cmd("SET", "who", "r2-alone") == "OK"
            wait_until(lambda: reads() == {b"r1"}, 10, what="reads served by r1 alone again")
            assert cl.cmd("SET", "w", "1") == "OK"
            assert primary.cmd("GET", "w") == b"1"
            assert c.metrics()["corral_sentinel_replicas"] == 1
    finally:
        for x in (sentinels, r2, r1):
            if x is not None:
                x.close()
        primary.close()


def test_a_node_that_is_not_the_primary_gets_no_write(primary_and_replica, corral_factory):
    """A sentinel names a replica as the primary (a stand-in sentinel does it on cue): corral's
    connections to it check ROLE before any client byte is written, fail, back off and ask the
    sentinels again; no write reaches the replica, and clients get corral's error."""
    primary, replica = primary_and_replica
    with FakeSentinel(primary.port) as fake:
        c = corral_factory(sentinel_config([f"127.0.0.1:{fake.port}"]))
        mon = monitor(replica.port)
        stop = threading.Event()
        seen: dict = {}

        def writer():  # pipelined SETs, so some wait behind the retargeted connection's ROLE
            with c.client() as w:
                while not stop.is_set():
                    for r in w.pipeline([("SET", "k", "v")] * 50):
                        key = r if isinstance(r, str) else r.message
                        seen[key] = seen.get(key, 0) + 1

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        try:
            wait_until(lambda: seen.get("OK", 0) > 100, 5, what="writes to the primary")
            asked = len(fake.asked)
            fake.name(replica.port, announce=True)  # wrong on purpose
            unavailable = f"ERR corral: upstream 127.0.0.1:{replica.port} unavailable"
            wait_until(lambda: seen.get(unavailable, 0) > 200, 5, what="writes refused")
            # Each refusal asks the sentinels again: more rounds than the event's one and the
            # 1 s poll's (at most one each in 0.9 s).
            wait_until(lambda: len(fake.asked) >= asked + 3, 0.9,
                       what="rounds of questions after the refusals")
            fake.name(primary.port, announce=True)
            ok = seen.get("OK", 0)
            wait_until(lambda: seen.get("OK", 0) > ok + 100, 5, what="writes to the primary again")
        finally:
            stop.set()
            t.join(timeout=5)
        assert set(seen) <= {"OK", unavailable, f"ERR corral: upstream 127.0.0.1:{primary.port} "
                                                "unavailable"}, seen
        assert c.metrics()["corral_upstream_not_primary_total"] >= 1
        assert "not the primary: ROLE says slave" in c.stderr_text()
        lines = monitor_lines(mon)
        mon.close()
        from_corral = [ln for ln in lines if ln[2] in WRITES and
                       not ln[1].endswith(f":{primary.port}")]
        assert not from_corral, f"the replica got a client's write: {from_corral[:5]}"
        assert any(ln[2] == "ROLE" for ln in lines), lines[:10]
        # A write a replica refuses (READONLY) never reaches MONITOR; commandstats counts it.
        # (Its calls are the SETs replicated from the primary.)
        stat = replica.info("commandstats").get("cmdstat_set", "rejected_calls=0")
        assert "rejected_calls=0," in stat + ",", stat
