"""Randomized model test: corral in front of redis A must answer like redis B answers directly.

Several clients run the same seeded random command sequence on both sides, one command at a time;
the replies are compared step by step after normalizing what legitimately differs (HELLO's client
id; the order of set and hash members). Covered: reads/writes on a few keys of each type, SELECT,
MULTI/EXEC/DISCARD/WATCH/UNWATCH (another client's write makes a watched EXEC return nil),
blocking pops with short timeouts and a pop unblocked by another client's push,
(P)SUBSCRIBE/PUBLISH/(P)UNSUBSCRIBE (the message sequence of every subscriber is compared), HELLO
3 / HELLO 2, CLIENT REPLY OFF/ON/SKIP, RESET, PING/ECHO, wrong arity, wrong type.

Upstream kills (in every other sequence): at random steps every client connection of redis A (corral's upstream
connections) and of redis B (the direct clients) is killed with CLIENT KILL TYPE normal/pubsub.
A client of B sees its connection close, so exact comparison cannot continue for clients with
connection state. What must hold through corral is what a Redis client sees on a restart: state
lost visibly, never silently. So after a kill:
  - a client without connection state continues (its B side reconnects and re-SELECTs, as client
    libraries do) and the comparison stays exact;
  - a client in MULTI or WATCH: finishing its transaction must not succeed (queued commands QUEUED
    or an error, EXEC nil or an error, or the connection closed) and nothing may be written;
  - a subscriber: a message published to its channel arrives, or its connection is closed;
  - a RESP3 client: HELLO says proto 3, or its connection is closed;
and then those clients start afresh on both sides.

Seeded: CORRAL_MODEL_SEED=<n> replays a run (the seed is printed with every failure);
CORRAL_MODEL_SEQUENCES / CORRAL_MODEL_STEPS change the size (defaults: 12 x 200, well under
60 s). With CORRAL_TARGET=redis the "proxy" side is redis A itself: the run must then find
nothing, which checks the model (and the kill invariants) against Redis's own behaviour.
"""

import contextlib
import fnmatch
import os
import random
import time

import pytest

import harness
from harness import (EOF, Push, RedisServer, RespConn, RespError, RespTimeout, corral_config,
                     wait_until)

SEED = int(os.environ.get("CORRAL_MODEL_SEED", "20240601"))
SEQUENCES = int(os.environ.get("CORRAL_MODEL_SEQUENCES", "12"))
STEPS = int(os.environ.get("CORRAL_MODEL_STEPS", "200"))
CLIENTS = 3
KILL_P = float(os.environ.get("CORRAL_MODEL_KILL_P", "0.02"))
TRACE = bool(os.environ.get("CORRAL_MODEL_TRACE"))  # print every step

# CORRAL_UPSTREAM=cluster: redis A is the cluster (../support/cluster_upstream.py). Every key
# has one hash tag, so that transactions stay on one node; SELECT is of db 0 only; no kills
# (they CLIENT KILL corral's connections of the one redis A).
CLUSTER = harness.upstream_mode() == "cluster"
TAG = "{m}" if CLUSTER else ""
STR_KEYS = [TAG + "k0", TAG + "k1", TAG + "k2"]
LIST_KEYS = [TAG + "l0", TAG + "l1"]
CHANNELS = ["ch0", "ch1"]
PATTERNS = ["ch*", "ch1*"]
SUB_ALLOWED = {"subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe",
               "sunsubscribe", "ping", "quit", "reset"}


class State:
    """What redis B says one client's connection state is (updated from B's replies)."""

    def __init__(self):
        self.db = 0
        self.multi = False
        self.watching = False
        self.resp3 = False
        self.reply = "on"  # on | off | skip
        self.channels = set()
        self.patterns = set()

    @property
    def subscribed(self):
        return bool(self.channels or self.patterns)

    @property
    def sub_ctx(self):  # RESP2 subscribed context: only (P|S)(UN)SUBSCRIBE, PING, QUIT, RESET
        return self.subscribed and not self.resp3

    @property
    def stateful(self):
        return self.multi or self.watching or self.subscribed or self.resp3 or self.reply != "on"


class Client:
    def __init__(self, idx, corral_port, redis_port):
        self.idx = idx
        self.corral_port, self.redis_port = corral_port, redis_port
        self.c = RespConn(corral_port, timeout=5.0)
        self.r = RespConn(redis_port, timeout=5.0)
        self.st = State()

    def reconnect(self, side=None):
        if side in (None, "c"):
            self.c.close()
            self.c = RespConn(self.corral_port, timeout=5.0)
        if side in (None, "r"):
            self.r.close()
            self.r = RespConn(self.redis_port, timeout=5.0)
        if side is None:
            self.st = State()

    def close(self):
        self.c.close()
        self.r.close()


def norm(args, r):
    """Replies made comparable: HELLO's id dropped, unordered collections sorted, push frames
    kept distinct from arrays, RESP3 maps as sorted pairs."""
    name = args[0].upper()
    if isinstance(r, Push):
        return ("push", [norm(("",), x) for x in r])
    if isinstance(r, dict):
        items = {k: v for k, v in r.items() if not (name == "HELLO" and k == b"id")}
        return ("map", sorted((repr(k), repr(norm(("",), v))) for k, v in items.items()))
    if isinstance(r, list):
        if name == "HELLO":
            return norm(args, dict(zip(r[0::2], r[1::2])))
        if name == "HGETALL":
            return ("map", sorted((repr(k), repr(v)) for k, v in zip(r[0::2], r[1::2])))
        if name == "SMEMBERS":
            return sorted(repr(x) for x in r)
        return [norm(("",), x) for x in r]
    return r


def known_cluster_difference(st, args, rc, rr):
    """CORRAL_UPSTREAM=cluster: a difference that is known, named (or None). PUBLISH counts the
    receivers of the node it ran on (Redis Cluster's own rule). Two corral defects: a RESP2
    subscriber's keyed command gets corral's held-node error instead of Redis's error
    (subscribed context, wrong arity: test_pubsub.py::
    test_unsubscribe_without_subscriptions_and_errors), and a MULTI whose first key follows
    another queued command is refused when that key's node is not the first primary
    (test_session_states.py::test_local_commands_inside_multi_answered_at_exec)."""
    if not CLUSTER or len(rc) != 1 or len(rr) != 1:
        return None
    name, c, r = args[0].upper(), rc[0], rr[0]
    if name == "PUBLISH" and isinstance(c, int) and isinstance(r, int):
        return "PUBLISH counts one node's receivers"
    if not isinstance(c, RespError):
        return None
    if st.sub_ctx and isinstance(r, RespError) and \
            c.startswith("ERR corral: this connection is held on cluster node"):
        return "subscriber's keyed command: corral's held-node error"
    if st.multi and r == "QUEUED" and c.startswith("ERR corral: a transaction's first key"):
        return "MULTI: first key after another queued command"  # EXEC differs too: resync
    return None


def norm_all(args, replies):
    return [norm(args, x) for x in replies]


def norm_unsubscribe_all(args, replies):
    """(P)UNSUBSCRIBE without arguments confirms each channel in Redis's dict order, which
    differs between two redis processes: the set of names, and the counts in order."""
    if any(not isinstance(r, list) or len(r) != 3 for r in replies):
        return norm_all(args, replies)
    return (sorted(repr(r[1]) for r in replies), [(r[0], r[2]) for r in replies])


class Front:
    """What the clients under test connect to: corral (in front of redis A) or redis A."""

    def __init__(self, port, corral=None):
        self.port = port
        self.corral = corral

    def running(self):
        return self.corral is None or self.corral.running()


class Run:
    def __init__(self, seed, corral, redis_a, redis_b, kill_p):
        self.seed = seed
        self.kill_p = kill_p
        self.rng = random.Random(seed)
        self.corral, self.a, self.b = corral, redis_a, redis_b
        self.failures = []
        self.known = {}  # known_cluster_difference -> count
        self.step = 0
        self.needs_resync = False
        for r in (redis_a, redis_b):
            r.cmd("FLUSHALL")
        self.clients = [Client(i, corral.port, redis_b.port) for i in range(CLIENTS)]

    def fail(self, what, **detail):
        self.failures.append((self.seed, self.step, what, detail))
        self.needs_resync = True

    def resync(self):
        """After a divergence the data may differ too: both sides start afresh (so one defect
        is reported once, not as a cascade of differences)."""
        for r in (self.a, self.b):
            r.cmd("FLUSHALL")
        for cl in self.clients:
            cl.reconnect()
        self.needs_resync = False

    # -- generation -------------------------------------------------------------------------

    def gen(self, cl):
        rng, st = self.rng, cl.st
        k, l = rng.choice(STR_KEYS), rng.choice(LIST_KEYS)
        pk = f"{TAG}p{cl.idx}"  # this client's own key
        s0, h0 = TAG + "s0", TAG + "h0"
        plain = [
            ("SET", k, str(rng.randint(0, 9))), ("GET", k), ("INCR", k), ("DEL", k),
            ("APPEND", k, "x"), ("EXISTS", k, l), ("LPUSH", l, "a"), ("RPUSH", l, "b"),
            ("LRANGE", l, "0", "-1"), ("LPOP", l), ("SADD", s0, rng.choice("abc")),
            ("SCARD", s0), ("SISMEMBER", s0, rng.choice("abc")),
            ("HSET", h0, rng.choice("fg"), "v"), ("HGETALL", h0),
            ("GET", pk), ("INCR", pk),
            ("GET", l),                       # WRONGTYPE when l is a list
            ("GET",), ("SET", k),             # wrong arity
            ("PING",), ("PING", "hi"), ("ECHO", "e"), ("TYPE", k),
        ]
        if st.reply != "on":
            if st.reply == "off" and rng.random() < 0.3:
                return ("CLIENT", "REPLY", "ON")
            # Without a reply nothing orders this command before another client's next one:
            # only its own key is written (its later reads are ordered on its connection).
            return rng.choice([("SET", pk, str(rng.randint(0, 9))), ("INCR", pk),
                               ("APPEND", pk, "x"), ("LPUSH", pk, "a"), ("GET", k),
                               ("PING",), ("ECHO", "e"), ("GET",)])
        roll = rng.random()
        if st.multi:
            if roll < 0.15:
                return ("EXEC",)
            if roll < 0.22:
                return ("DISCARD",)
            if roll < 0.25:
                return ("WATCH", k)          # an error inside MULTI
            if roll < 0.27:
                return ("MULTI",)            # nested: an error
            if roll < 0.29:
                return ("RESET",)
            if roll < 0.31:
                return ("BLPOP", l, "0.1")    # never blocks inside MULTI
            return rng.choice(plain)
        if st.subscribed:
            if roll < 0.25:
                return ("SUBSCRIBE", rng.choice(CHANNELS))
            if roll < 0.35:
                return ("PSUBSCRIBE", rng.choice(PATTERNS))
            if roll < 0.5:
                return ("UNSUBSCRIBE",) + tuple(rng.sample(CHANNELS, rng.randint(0, 1)))
            if roll < 0.6:
                return ("PUNSUBSCRIBE",) + tuple(rng.sample(PATTERNS, rng.randint(0, 1)))
            if roll < 0.63:
                return ("RESET",)
            if roll < 0.7:
                return ("PING",)
            return rng.choice(plain)  # refused in RESP2 subscribed context, fine in RESP3
        table = [
            (0.06, lambda: ("MULTI",)), (0.10, lambda: ("WATCH", k)), (0.12, lambda: ("UNWATCH",)),
            (0.14, lambda: ("EXEC",)), (0.15, lambda: ("DISCARD",)),
            (0.19, lambda: ("SELECT", "0" if CLUSTER else str(rng.randint(0, 2)))),
            (0.22, lambda: ("BLPOP", l, "0.1")), (0.25, "block_push"),
            (0.29, lambda: ("SUBSCRIBE", rng.choice(CHANNELS))),
            (0.31, lambda: ("PSUBSCRIBE", rng.choice(PATTERNS))),
            (0.36, "publish"),
            (0.39, lambda: ("HELLO", rng.choice("23"))),
            (0.41, lambda: ("CLIENT", "REPLY", "OFF")), (0.43, lambda: ("CLIENT", "REPLY", "SKIP")),
            (0.44, lambda: ("CLIENT", "REPLY", "ON")),
            (0.46, lambda: ("RESET",)),
        ]
        for p, what in table:
            if roll < p:
                return what if isinstance(what, str) else what()
        return rng.choice(plain)

    # -- expectations -----------------------------------------------------------------------

    @staticmethod
    def reply_count(st: State, args) -> int:
        name = args[0].lower()
        sub = (args[0] + " " + args[1]).lower() if len(args) > 1 else name
        if st.reply == "off":
            return 1 if sub == "client reply" and args[2].upper() == "ON" else 0
        if st.reply == "skip":
            return 0
        if sub == "client reply" and len(args) == 3 and args[2].upper() in ("OFF", "SKIP") \
                and not st.sub_ctx and not st.multi:
            return 0
        if st.sub_ctx and name not in SUB_ALLOWED:
            return 1
        if st.multi and name not in ("exec", "discard", "multi", "watch", "reset"):
            return 1  # QUEUED (or an error)
        if name in ("subscribe", "psubscribe"):
            return len(args) - 1
        if name in ("unsubscribe", "punsubscribe"):
            held = st.channels if name == "unsubscribe" else st.patterns
            return len(args) - 1 if len(args) > 1 else max(1, len(held))
        return 1

    @staticmethod
    def apply(st: State, args, replies):
        """Updates st from redis B's replies to args."""
        name = args[0].upper()
        r = replies[0] if replies else None
        was_skip = st.reply == "skip"
        if name == "RESET" and r == "RESET":
            st.__init__()
            return
        if name == "CLIENT" and len(args) == 3 and args[1].upper() == "REPLY" \
                and not st.multi and not st.sub_ctx:
            st.reply = {"ON": "on", "OFF": "off", "SKIP": "skip"}[args[2].upper()]
            return
        if was_skip:
            st.reply = "on"
        if st.multi:
            if name in ("EXEC", "DISCARD"):
                st.multi = st.watching = False
            return
        if name == "MULTI" and r == "OK":
            st.multi = True
        elif name == "WATCH" and r == "OK":
            st.watching = True
        elif name == "UNWATCH" and r == "OK":
            st.watching = False
        elif name in ("EXEC", "DISCARD"):
            st.watching = False
        elif name == "SELECT" and r == "OK":
            st.db = int(args[1])
        elif name == "HELLO" and r is not None and not isinstance(r, RespError) and \
                not st.sub_ctx:
            st.resp3 = args[1] == "3"
        for fr in replies:
            if isinstance(fr, list) and len(fr) == 3 and isinstance(fr[0], bytes):
                kind, target = fr[0], fr[1]
                if kind == b"subscribe":
                    st.channels.add(target.decode())
                elif kind == b"psubscribe":
                    st.patterns.add(target.decode())
                elif kind == b"unsubscribe" and target is not None:
                    st.channels.discard(target.decode())
                elif kind == b"punsubscribe" and target is not None:
                    st.patterns.discard(target.decode())

    # -- running ----------------------------------------------------------------------------

    def read_both(self, cl, n, args):
        got = {}
        for side, conn in (("c", cl.c), ("r", cl.r)):
            out = []
            try:
                for _ in range(n):
                    out.append(conn.read_reply())
            except RespTimeout:
                out.append("<hang>")
            got[side] = out
        return got["c"], got["r"]

    def run_cmd(self, cl, args):
        st = cl.st
        n = self.reply_count(st, args)
        for conn in (cl.c, cl.r):
            try:
                conn.send_cmd(*args)
            except OSError:
                pass
        rc, rr = self.read_both(cl, n, args)
        cmp = norm_all
        if args[0].upper() in ("UNSUBSCRIBE", "PUNSUBSCRIBE") and len(args) == 1:
            cmp = norm_unsubscribe_all
        if TRACE:
            print(f"  [{self.seed}:{self.step}] c{cl.idx} db={st.db} multi={st.multi} "
                  f"w={st.watching} {args} -> corral={rc} redis={rr}")
        differs = cmp(args, rc) != cmp(args, rr)
        known = known_cluster_difference(st, args, rc, rr) if differs else None
        if known is not None:
            self.known[known] = self.known.get(known, 0) + 1
            if known.startswith("MULTI"):
                cl.reconnect()  # the transactions differ from here on: both start afresh
                return None
        elif differs:
            self.fail("reply differs", client=cl.idx, cmd=args, state=vars(st).copy(),
                      corral=rc, redis=rr)
            self.apply(st, args, rr)
            cl.reconnect()  # resynchronize: both sides start afresh
            return None
        self.apply(st, args, rr)
        return rr

    def publish(self, pubs):
        publisher = self.rng.choice(pubs)
        ch = self.rng.choice(CHANNELS)
        msg = f"m{self.step}"
        if self.run_cmd(publisher, ("PUBLISH", ch, msg)) is None:
            return
        for cl in self.clients:
            n = (ch in cl.st.channels) + sum(fnmatch.fnmatchcase(ch, p) for p in cl.st.patterns)
            if n == 0:
                continue
            rc, rr = self.read_both(cl, n, ("MESSAGE",))
            # the channel's subscribers first, then the patterns in Redis's dict order (which
            # differs between two redis processes): compared as a multiset
            if sorted(map(repr, norm_all(("",), rc))) != sorted(map(repr, norm_all(("",), rr))):
                self.fail("messages differ", client=cl.idx, channel=ch, corral=rc, redis=rr)
                cl.reconnect()

    def block_push(self, x):
        """x blocks in BLPOP; a client on the same db pushes; x gets the item."""
        others = [y for y in self.clients if y is not x and y.st.db == x.st.db and
                  not y.st.stateful]
        if not others:
            return
        y = self.rng.choice(others)
        key = self.rng.choice(LIST_KEYS)
        # the list must be empty so that x blocks
        for r in (self.a, self.b):
            with r.client() as d:
                d.cmd("SELECT", x.st.db)
                d.cmd("DEL", key)
        for conn in (x.c, x.r):
            conn.send_cmd("BLPOP", key, "3")
        try:
            for r in (self.a, self.b):
                wait_until(lambda: int(r.info("clients")["blocked_clients"]) >= 1, 3,
                           what="the BLPOP blocked")
        except AssertionError as e:
            self.fail("BLPOP did not block", client=x.idx, error=str(e))
        self.run_cmd(y, ("RPUSH", key, "item"))
        rc, rr = self.read_both(x, 1, ("BLPOP",))
        if rc != rr:
            self.fail("unblocked BLPOP differs", client=x.idx, corral=rc, redis=rr)
            x.reconnect()

    def kill(self):
        time.sleep(0.05)  # a command sent without a reply (CLIENT REPLY OFF) reaches redis
        for r in (self.a, self.b):
            with RespConn(r.port) as d:
                for t in ("normal", "pubsub"):
                    d.cmd("CLIENT", "KILL", "TYPE", t, "SKIPME", "yes")
        time.sleep(0.3)  # corral sees its upstream connections close (scenario timing)
        for db in range(3):  # corral's shared connections of every db are back
            with RespConn(self.corral.port) as p:
                p.cmd("SELECT", db)
                wait_until(lambda: p.cmd("EXISTS", "probe:none") == 0, 5,
                           what=f"corral serving db {db} after the kill")
        for cl in self.clients:
            st = cl.st
            if not st.stateful:
                cl.reconnect("r")
                if st.db:
                    assert cl.r.cmd("SELECT", st.db) == "OK"
                r = self._try(cl.c, "EXISTS", "probe:none")
                if r is EOF:
                    cl.reconnect()  # corral closed it: visible; both sides start afresh
                elif r != 0:
                    self.fail("stateless client broken after a kill", client=cl.idx, reply=r)
                    cl.reconnect()
                continue
            self.probe_lost_state(cl)
            cl.reconnect()
        # nothing a lost transaction queued may have been written (probe:* keys)
        for db in range(3):
            with RespConn(self.a.port) as d:
                d.cmd("SELECT", db)
                leaked = d.cmd("KEYS", "probe:*")
                if leaked:
                    self.fail("a transaction lost by the kill wrote", db=db, keys=leaked)
                    d.cmd("DEL", *leaked)

    @staticmethod
    def _try(conn, *args):
        try:
            conn.send_cmd(*args)
            return conn.read_reply()
        except OSError:
            return EOF
        except RespTimeout:
            return "<hang>"

    def probe_lost_state(self, cl):
        st, c = cl.st, cl.c
        if st.reply != "on":
            return  # nothing observable without replies
        if st.multi or st.watching:
            cmds = ([] if st.multi else [("MULTI",)]) + [("SET", f"probe:{cl.idx}", "1"),
                                                         ("EXEC",)]
            got = [self._try(c, *a) for a in cmds]
            if not st.multi and got[0] not in ("OK", EOF) and not isinstance(got[0], RespError):
                self.fail("MULTI after a kill", client=cl.idx, replies=got)
            queued, exec_ = got[-2], got[-1]
            if not (queued in ("QUEUED", EOF) or isinstance(queued, RespError)) or \
                    not (exec_ in (None, EOF) or isinstance(exec_, RespError)):
                self.fail("transaction state silently lost by a kill", client=cl.idx,
                          state=vars(st).copy(), replies=got)
            return
        if st.subscribed:
            if st.channels:
                ch = sorted(st.channels)[0]
            else:
                ch = "ch1x" if "ch1*" in st.patterns else "chx"
            with RespConn(self.a.port) as d:
                d.cmd("PUBLISH", ch, "probe")
            c.settimeout(1.0)
            r = self._try_read(c)
            c.settimeout(5.0)
            if r == "<hang>":
                self.fail("subscription silently lost by a kill", client=cl.idx,
                          state=vars(st).copy())
            return
        if st.resp3:
            r = self._try(c, "HELLO")
            if r is not EOF and not (isinstance(r, dict) and r.get(b"proto") == 3):
                self.fail("RESP3 silently lost by a kill", client=cl.idx, reply=r)

    @staticmethod
    def _try_read(conn):
        try:
            return conn.read_reply()
        except RespTimeout:
            return "<hang>"

    def run(self, steps):
        for self.step in range(steps):
            if self.needs_resync:
                self.resync()
            if self.rng.random() < self.kill_p:
                if TRACE:
                    print(f"  [{self.seed}:{self.step}] kill")
                self.kill()
                continue
            cl = self.rng.choice(self.clients)
            what = self.gen(cl)
            if what == "publish":
                pubs = [x for x in self.clients if not x.st.subscribed and not x.st.multi
                        and x.st.reply == "on"]
                if pubs:
                    self.publish(pubs)
            elif what == "block_push":
                self.block_push(cl)
            else:
                self.run_cmd(cl, what)
        for cl in self.clients:
            cl.close()


def _fmt(f):
    seed, step, what, detail = f
    return f"seed={seed} step={step}: {what}: " + \
        ", ".join(f"{k}={v!r}" for k, v in detail.items())[:600]


@pytest.mark.cluster_xfail("Redis Cluster carries PUBLISH between nodes over its bus, later "
                           "than to the publisher's own node's subscribers: a client subscribed "
                           "on another node (its connection held on a WATCHed key's node, say) "
                           "can get a message published just before it subscribed (seed "
                           "20240601 step 48: [message ch1 m33], c2 subscribing while WATCHing), "
                           "or one that was on its way as it unsubscribed (seed 20240605 step "
                           "34); timing-dependent, the same seed passes on other runs")
def test_model_corral_vs_redis(request, cluster_upstream):
    with contextlib.ExitStack() as stack, RedisServer() as redis_b:
        redis_a = cluster_upstream or stack.enter_context(RedisServer())
        if cluster_upstream is not None:
            cluster_upstream.reset()
        if harness.target_mode() == "redis":
            c = Front(redis_a.port)
        else:
            factory = request.getfixturevalue("corral_factory")
            corral = factory(corral_config(redis_a.port, upstream={"command_timeout": "2s"}))
            c = Front(corral.port, corral)
        failures, known = [], {}
        t0 = time.monotonic()
        for i in range(SEQUENCES):
            # every other sequence without kills: exact comparison all along
            run = Run(SEED + i, c, redis_a, redis_b, KILL_P if i % 2 and not CLUSTER else 0.0)
            try:
                run.run(STEPS)
            except Exception as e:  # noqa: BLE001 - a crash of the run is a finding too
                run.fail("run aborted", error=repr(e)[:300])
                for cl in run.clients:
                    cl.close()
            failures += run.failures
            for k, n in run.known.items():
                known[k] = known.get(k, 0) + n
            if not c.running():
                failures.append((SEED + i, run.step, "corral died",
                                 {"stderr": c.corral.stderr_tail()}))
                break
        elapsed = time.monotonic() - t0
        print(f"\nmodel: {SEQUENCES} sequences x {STEPS} steps, base seed {SEED}, "
              f"{len(failures)} failures, {elapsed:.1f}s")
        if known:
            print(f"known differences with a cluster upstream (not failures): {known}")
        for f in failures[:40]:
            print("  " + _fmt(f))
        kinds = {}
        for f in failures:
            kinds[f[2]] = kinds.get(f[2], 0) + 1
        assert not failures, f"{len(failures)} divergences {kinds} (base seed {SEED}; replay one with " \
            f"CORRAL_MODEL_SEED=<seed> CORRAL_MODEL_SEQUENCES=1):\n" + \
            "\n".join(_fmt(f) for f in failures[:15])
