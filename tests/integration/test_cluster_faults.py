"""corral in front of a Redis Cluster under faults: a primary SIGKILLed while clients hold state
on it (WATCH, MULTI, BLPOP, SUBSCRIBE, SSUBSCRIBE), while pipelines and split MGET/DEL cross the
shards, and clients that leave mid-command while a node is down. corral-only.

The reference is what a direct client of the dead node sees: its connection closes, and with it
whatever the node held for it (a WATCH, a queued transaction, a block, a subscription). Through
corral that state must end visibly too (an error, an unsubscribe, or the connection closed),
never by a silent reconnect that runs an EXEC without its WATCH or leaves a subscriber deaf.
Requests without such state get their reply or an error, in order, never a redirect, never a
reply of another command and never part of a split reply.

One cluster (3 primaries + 3 replicas, node timeout 2 s) serves the module; each test kills one
primary, waits for the cluster's own failover and restarts the dead node (it rejoins as a
replica), so the next test finds 3 + 3 again. Every read has a socket timeout: a hang fails.
"""

import threading
import time

from cluster import key_slot
from harness import EOF, RespConn, RespError, RespTimeout, encode_command, try_cmd, wait_until
from test_cluster import cluster_config, keys_on_each_shard, wait_routed
from test_session_faults import _assert_no_silent_transaction, _pipeline_or_eof

COMMAND_TIMEOUT = 2.0  # corral_config()'s upstream.command_timeout
# The cluster marks a node failed after its node timeout (2 s) and elects the replica: 3.7-4.6 s
# measured (README), more on a loaded machine. RedisCluster.killed() waits as long.
FAILOVER_WITHIN = 20.0
REDIRECTS = ("MOVED", "ASK", "TRYAGAIN")


def _corral(redis_cluster, corral_factory):
    c = corral_factory(cluster_config(redis_cluster))
    wait_routed(c)
    return c


def _key_on(redis_cluster, port, prefix):
    """A key whose slot `port` owns."""
    table = redis_cluster.slot_owners()
    for i in range(100000):
        if table[key_slot(f"{prefix}:{i}")] == port:
            return f"{prefix}:{i}"
    raise AssertionError(f"no key of prefix {prefix!r} on {port}")


def _replica_has(redis_cluster, replica, key, value, timeout=5.0):
    """Until the replica holds key = value (READONLY GET): the write survives a failover."""
    with redis_cluster.client(replica) as r:
        assert r.cmd("READONLY") == "OK"
        wait_until(lambda: r.cmd("GET", key) == value, timeout,
                   what=f"{key}={value!r} replicated to {replica}")


def _is_redirect(reply):
    return isinstance(reply, RespError) and reply.message.split(" ")[0] in REDIRECTS


def _plain_error(reply):
    """An error reply that is not a redirect (corral's own, or the cluster's CLUSTERDOWN)."""
    return isinstance(reply, RespError) and not _is_redirect(reply)


def _same_slot(key, suffix):
    """A key in key's slot (key as the hash tag)."""
    return f"{{{key}}}:{suffix}"


def _wait_writes(c, key, timeout=10.0):
    """Until a new client writes key through corral (the promoted replica is routed to); no
    reply meanwhile is a redirect."""
    redirects = []

    def ok():
        with RespConn(c.port, timeout=5) as conn:
            r = conn.cmd("SET", key, "probe")
        redirects.extend([r] if _is_redirect(r) else [])
        return r == "OK"
    wait_until(ok, timeout, interval=0.05, what=f"a write of {key} through corral")
    assert redirects == [], redirects


def _read_within(conn, seconds):
    """The next reply, or RespTimeout's text when none came within `seconds` (the socket's
    timeout is put back)."""
    old = conn.timeout
    conn.settimeout(seconds)
    try:
        return conn.read_reply()
    except RespTimeout as e:
        return e
    finally:
        conn.settimeout(old)


# ---------------------------------------------------------------------------------------------
# state held on the killed primary


def test_watch_on_a_killed_primary_never_lets_exec_succeed(redis_cluster, corral_factory):
    """WATCH k (dedicated connection to k's owner), SIGKILL of the owner, the promoted replica
    then changes k (another client, through corral), then MULTI / SET / EXEC on the watching
    client: it must get errors or be closed, never an EXEC result that ignored the WATCH; a
    direct client watching on the dead node sees its connection close. A new client writes k
    within 10 s of the promotion."""
    c = _corral(redis_cluster, corral_factory)
    victim = redis_cluster.primaries()[0]
    k = _key_on(redis_cluster, victim, "fw")
    with RespConn(c.port, timeout=10) as a, redis_cluster.client(victim) as direct:
        assert a.cmd("SET", k, "0") == "OK"
        _replica_has(redis_cluster, redis_cluster.replicas_of(victim)[0], k, b"0")
        assert a.cmd("WATCH", k) == "OK"
        assert a.cmd("GET", k) == b"0"
        assert direct.cmd("WATCH", k) == "OK"
        with redis_cluster.killed(victim, FAILOVER_WITHIN) as replica:
            assert direct.read_reply() is EOF  # the reference: the dead node's client is closed
            redis_cluster.wait_primary(replica, FAILOVER_WITHIN)
            promoted_at = time.monotonic()
            _wait_writes(c, _same_slot(k, "probe"))
            assert time.monotonic() - promoted_at <= 10.0
            with RespConn(c.port, timeout=10) as other:
                assert other.cmd("SET", k, "changed") == "OK"
            replies = _pipeline_or_eof(a, [("MULTI",), ("SET", k, "mine"), ("EXEC",)])
            _assert_no_silent_transaction(replies, 1)
            # The session ends visibly: closed once its replies are out (proxy/net/session.h).
            assert replies[-1] is EOF or a.expect_eof(5.0), replies
            assert redis_cluster.cmd(replica, "GET", k) == b"changed"


def test_multi_on_a_killed_primary_never_reports_success(redis_cluster, corral_factory):
    """MULTI + INCR c x3 queued on c's owner, SIGKILL of the owner, then EXEC: not a success
    (EOF, nil or an error). Acknowledged plain INCRs (replicated before the kill, and after the
    failover) are all the counter holds on the promoted replica: the transaction never ran, in
    part or again on the new primary."""
    c = _corral(redis_cluster, corral_factory)
    victim = redis_cluster.primaries()[1]
    ctr = _key_on(redis_cluster, victim, "fm")
    acked = 0
    with RespConn(c.port, timeout=10) as a, RespConn(c.port, timeout=10) as b:
        assert b.cmd("DEL", ctr) in (0, 1)
        for r in b.pipeline([("INCR", ctr)] * 50):
            assert r == acked + 1, r
            acked += 1
        _replica_has(redis_cluster, redis_cluster.replicas_of(victim)[0], ctr, b"%d" % acked)
        assert a.pipeline([("MULTI",), ("INCR", ctr), ("INCR", ctr), ("INCR", ctr)]) == \
            ["OK", "QUEUED", "QUEUED", "QUEUED"]
        with redis_cluster.killed(victim, FAILOVER_WITHIN) as replica:
            t0 = time.monotonic()
            r_exec = try_cmd(a, "EXEC")
            assert time.monotonic() - t0 < COMMAND_TIMEOUT + 1.5, "EXEC's answer took too long"
            _assert_no_silent_transaction(["OK", "QUEUED", "QUEUED", "QUEUED", r_exec], 3)
            assert r_exec is EOF or a.expect_eof(5.0), r_exec
            redis_cluster.wait_primary(replica, FAILOVER_WITHIN)

            replies = []

            def incr():
                replies.append(b.cmd("INCR", ctr))
                return replies[-1] if isinstance(replies[-1], int) else None
            first = wait_until(incr, 10.0, interval=0.05, what="an INCR after the failover")
            assert all(_plain_error(r) for r in replies[:-1]), replies
            acked += 1
            assert first == acked, f"counter {first}, {acked} INCRs acknowledged"
            for r in b.pipeline([("INCR", ctr)] * 20):
                acked += 1
                assert r == acked, r
            assert redis_cluster.cmd(replica, "GET", ctr) == b"%d" % acked


def _node_with_client(redis_cluster, pred, what):
    """The primary holding the one connection whose CLIENT LIST fields satisfy pred."""
    def find():
        found = [p for p in redis_cluster.primaries()
                 for f in redis_cluster.node(p).client_list() if pred(f)]
        return found[0] if len(found) == 1 else None
    return wait_until(find, 5, what=f"the one node with {what}")


def test_transaction_whose_first_node_dies_before_its_first_key(redis_cluster, corral_factory):
    """MULTI and a keyless ECHO queued on some primary (the transaction has no key yet), SIGKILL
    of that primary, then SET k (k on another, live primary) and EXEC: the MULTI Redis held is
    gone, so EXEC must not succeed (errors or the connection closed) and k is not written."""
    c = _corral(redis_cluster, corral_factory)
    with RespConn(c.port, timeout=10) as a:
        assert a.pipeline([("MULTI",), ("ECHO", "a")]) == ["OK", "QUEUED"]
        victim = _node_with_client(redis_cluster, lambda f: "x" in f["flags"], "a MULTI")
        live = next(p for p in redis_cluster.primaries() if p != victim)
        k = _key_on(redis_cluster, live, "ff")
        redis_cluster.cmd(live, "DEL", k)
        with redis_cluster.killed(victim, FAILOVER_WITHIN):
            time.sleep(0.2)  # corral has seen its connection close
            replies = _pipeline_or_eof(a, [("SET", k, "1"), ("EXEC",)])
            _assert_no_silent_transaction(["OK", "QUEUED"] + replies, 2)
            assert replies[-1] is EOF or a.expect_eof(5.0), replies
            assert redis_cluster.cmd(live, "GET", k) is None


def test_blpop_on_a_killed_primary_errors_and_the_connection_goes_on(redis_cluster,
                                                                     corral_factory):
    """BLPOP q 0 waiting on q's owner, SIGKILL of the owner: an error within command_timeout
    + margin (not a hang, not nil), and the same connection goes on: commands, a BLPOP on
    another shard's key (nil after its timeout, then a pushed value), and after the failover a
    BLPOP on q itself."""
    c = _corral(redis_cluster, corral_factory)
    victim = redis_cluster.primaries()[2]
    q = _key_on(redis_cluster, victim, "fb")
    others = {p: k for p, k in keys_on_each_shard(redis_cluster, "fbo").items() if p != victim}
    other_q = next(iter(others.values()))
    with RespConn(c.port, timeout=10) as a, RespConn(c.port, timeout=10) as pusher, \
            redis_cluster.client(victim, timeout=10) as direct:
        assert a.cmd("DEL", q, other_q) in (0, 1, 2)
        a.send_cmd("BLPOP", q, "0")
        direct.send_cmd("BLPOP", q, "0")
        wait_until(lambda: int(redis_cluster.node(victim).info("clients")["blocked_clients"]) == 2,
                   5, what="both BLPOPs blocked on the owner")
        with redis_cluster.killed(victim, FAILOVER_WITHIN) as replica:
            t0 = time.monotonic()
            r = a.read_reply()
            took = time.monotonic() - t0
            assert _plain_error(r), r
            assert took < COMMAND_TIMEOUT + 1.0, f"BLPOP's error took {took:.2f} s"
            assert direct.read_reply() is EOF  # the reference: the node's own client is closed
            # Blocking again on the dead owner's key (before the failover, as a rule): an error,
            # or nil once its 1 s have passed on the promoted replica; never a hang.
            t0 = time.monotonic()
            r = a.cmd("BLPOP", q, "1")
            took = time.monotonic() - t0
            assert r is None or _plain_error(r), r
            assert took < COMMAND_TIMEOUT + 1.0 + 1.0, f"BLPOP on the dead owner took {took:.2f} s"
            assert a.cmd("PING") == "PONG"
            assert a.cmd("SET", _same_slot(other_q, "s"), "v") == "OK"
            assert a.cmd("GET", _same_slot(other_q, "s")) == b"v"
            t0 = time.monotonic()
            assert a.cmd("BLPOP", other_q, "0.5") is None
            assert 0.4 <= time.monotonic() - t0 < 0.5 + COMMAND_TIMEOUT
            a.send_cmd("BLPOP", other_q, "5")
            time.sleep(0.2)  # the BLPOP reaches its node (a pushed value before it is kept too)
            assert pusher.cmd("RPUSH", other_q, "x") == 1
            assert a.read_reply() == [other_q.encode(), b"x"]
            redis_cluster.wait_primary(replica, FAILOVER_WITHIN)
            _wait_writes(c, _same_slot(q, "probe"))
            a.send_cmd("BLPOP", q, "5")
            time.sleep(0.2)
            assert pusher.cmd("RPUSH", q, "y") == 1
            assert a.read_reply() == [q.encode(), b"y"]
            assert a.cmd("PING") == "PONG"


def _told(reply, kind):
    """A subscriber was told its subscription ended: closed, an error, or an unsubscribe."""
    if reply is EOF or isinstance(reply, RespError):
        return True
    return isinstance(reply, list) and len(reply) == 3 and reply[0] == kind


def test_subscribers_on_a_killed_node_are_told(redis_cluster, corral_factory):
    """SUBSCRIBE ch (RESP2) and SSUBSCRIBE on a shard channel of the same node; SIGKILL of that
    node. Each subscriber is told within command_timeout + margin (closed, an error, or an
    unsubscribe/sunsubscribe). Never deaf: after the failover a PUBLISH / SPUBLISH reaches a
    subscriber still open, or it was told."""
    c = _corral(redis_cluster, corral_factory)
    with RespConn(c.port, timeout=10) as sub, RespConn(c.port, timeout=10) as ssub, \
            RespConn(c.port, timeout=10) as pub:
        assert sub.cmd("SUBSCRIBE", "fs:news") == [b"subscribe", b"fs:news", 1]
        victim = _node_with_client(redis_cluster, lambda f: f["sub"] != "0", "a subscriber")
        sch = _key_on(redis_cluster, victim, "fs:shard")
        assert ssub.cmd("SSUBSCRIBE", sch) == [b"ssubscribe", sch.encode(), 1]
        # Both reach their subscriber before the kill (the wiring works).
        assert pub.cmd("PUBLISH", "fs:news", "before") >= 0  # counts one node's subscribers
        assert pub.cmd("SPUBLISH", sch, "before") == 1
        assert sub.read_reply() == [b"message", b"fs:news", b"before"]
        assert ssub.read_reply() == [b"smessage", sch.encode(), b"before"]
        with redis_cluster.killed(victim, FAILOVER_WITHIN) as replica, \
                RespConn(c.port, timeout=10) as late:
            first = {"sub": _read_within(sub, COMMAND_TIMEOUT + 2.0),
                     "ssub": _read_within(ssub, COMMAND_TIMEOUT + 2.0)}
            # A new SSUBSCRIBE while the owner is dead: an answer within the bound (an error, or
            # the confirmation once the promoted replica serves the slot), never silence.
            t0 = time.monotonic()
            late.send_cmd("SSUBSCRIBE", sch)
            late_reply = _read_within(late, COMMAND_TIMEOUT + 2.0)
            late_took = time.monotonic() - t0
            redis_cluster.wait_primary(replica, FAILOVER_WITHIN)
            _wait_writes(c, _same_slot(sch, "probe"))
            sp = []
            wait_until(lambda: sp.append(pub.cmd("SPUBLISH", sch, "after")) or
                       isinstance(sp[-1], int), 10, what="SPUBLISH after the failover")
            assert all(_plain_error(r) for r in sp[:-1]), sp
            # PUBLISH straight to the promoted replica (the bus carries it everywhere): through
            # corral it would go to the keyless commands' node, which is the dead one here (see
            # test_keyless_commands_avoid_a_dead_primary).
            assert redis_cluster.cmd(replica, "PUBLISH", "fs:news", "after") >= 0
            later = {}
            for name, conn in (("sub", sub), ("ssub", ssub)):
                later[name] = EOF if first[name] is EOF else _read_within(conn, 3.0)
            if late_reply == [b"ssubscribe", sch.encode(), 1]:
                assert _read_within(late, 3.0) == [b"smessage", sch.encode(), b"after"]
            else:
                assert late_reply is EOF or _plain_error(late_reply), late_reply
                assert try_cmd(late, "PING") in ("PONG", EOF)  # still usable, or closed
            assert late_took < COMMAND_TIMEOUT + 1.5, f"SSUBSCRIBE took {late_took:.2f} s"
        seen = f"first after the kill: {first}; after the failover's publish: {later}"
        # Not deaf: told, or the message after the failover arrived.
        assert _told(first["sub"], b"unsubscribe") or \
            later["sub"] == [b"message", b"fs:news", b"after"], seen
        assert _told(first["ssub"], b"sunsubscribe") or \
            later["ssub"] == [b"smessage", sch.encode(), b"after"], seen
        # Told within the bound (the session contract: state lost visibly, not repaired).
        assert _told(first["sub"], b"unsubscribe") and _told(first["ssub"], b"sunsubscribe"), seen


# ---------------------------------------------------------------------------------------------
# commands without a key while their node is dead


def _keyless_node(redis_cluster, c):
    """The node corral sends commands without a key to: where a SUBSCRIBE's connection goes
    (INFO would not tell: newer corrals send it to every primary)."""
    with RespConn(c.port) as conn:
        assert conn.cmd("SUBSCRIBE", "fk:probe") == [b"subscribe", b"fk:probe", 1]
        return _node_with_client(redis_cluster, lambda f: f["sub"] != "0", "a subscriber")


def _keyless_failures(c, live_key):
    """PUBLISH, CONFIG GET, EVAL without keys, SUBSCRIBE and a MULTI/SET/EXEC on a live shard's key,
    each on a new client: {command: reply} of those that did not get their right reply."""
    bad = {}
    with RespConn(c.port, timeout=10) as conn:
        for args, ok in ((("PUBLISH", "fk:ch", "m"), lambda r: isinstance(r, int)),
                         (("CONFIG", "GET", "maxclients"), lambda r: isinstance(r, list)),
                         (("EVAL", "return 7", "0"), lambda r: r == 7)):
            r = conn.cmd(*args)
            if not ok(r):
                bad[args[0]] = r
        r = conn.pipeline([("MULTI",), ("SET", live_key, "1"), ("EXEC",)])
        if r != ["OK", "QUEUED", ["OK"]]:
            bad["MULTI"] = r
    with RespConn(c.port, timeout=10) as conn:
        r = conn.cmd("SUBSCRIBE", "fk:ch")
        if r != [b"subscribe", b"fk:ch", 1]:
            bad["SUBSCRIBE"] = r
    return bad


def test_keyless_commands_avoid_a_dead_primary(redis_cluster, corral_factory):
    """The node corral gives commands without a key is SIGKILLed. With two primaries up,
    PUBLISH, CONFIG GET, EVAL without keys, SUBSCRIBE and a transaction on a live shard's key
    must keep working: at once (before the cluster has even marked the node failed: corral knows its
    connection is down), and every second for 8 s after the failover, the dead node not
    restarted (it is only at the end)."""
    c = _corral(redis_cluster, corral_factory)
    victim = _keyless_node(redis_cluster, c)
    live = next(p for p in redis_cluster.primaries() if p != victim)
    live_key = _key_on(redis_cluster, live, "fk")
    assert _keyless_failures(c, live_key) == {}
    seen = []
    with redis_cluster.killed(victim, FAILOVER_WITHIN) as replica:
        time.sleep(0.3)  # corral has seen its connections close; the node timeout is 2 s
        seen.append(("dead, before the failover", _keyless_failures(c, live_key)))
        redis_cluster.wait_primary(replica, FAILOVER_WITHIN)
        _wait_writes(c, _key_on(redis_cluster, replica, "fkp"))
        for i in range(8):
            seen.append((f"{i} s after the failover", _keyless_failures(c, live_key)))
            time.sleep(1.0)
    failing = [(when, bad) for when, bad in seen if bad]
    assert failing == [], failing


# ---------------------------------------------------------------------------------------------
# clients leaving while a node is down


def test_clients_leaving_mid_command_while_a_node_is_down(redis_cluster, corral_factory):
    """While a primary is dead (before and after the failover), clients leave mid-command: half
    a RESP frame, a pipelined MULTI ... EXEC, a WATCH, a BLPOP, an SSUBSCRIBE, an open MULTI,
    each then closed. corral stays up, a client working on the other shards sees only right
    replies, and afterwards no dedicated connection, client or pending request is left and no
    node has a blocked client."""
    c = _corral(redis_cluster, corral_factory)
    victim = redis_cluster.primaries()[0]
    vk = _key_on(redis_cluster, victim, "fl")
    healthy = [k for p, k in keys_on_each_shard(redis_cluster, "flh").items() if p != victim]
    bad = []
    stop = threading.Event()

    def unaffected():
        i = 0
        with RespConn(c.port, timeout=10) as w:
            while not stop.is_set():
                cmds, want = [], []
                for k in healthy:
                    cmds += [("SET", k, f"{k}-{i}"), ("GET", k), ("ECHO", f"m{i}")]
                    want += ["OK", f"{k}-{i}".encode(), f"m{i}".encode()]
                got = w.pipeline(cmds)
                if got != want:
                    bad.append((want, got))
                i += 1
                time.sleep(0.01)

    leavers = [
        encode_command("SET", vk, "half")[:-7],
        b"".join(encode_command(*x) for x in
                 [("MULTI",), ("SET", vk, "1"), ("INCR", vk), ("EXEC",)]),
        encode_command("WATCH", vk),
        encode_command("BLPOP", vk, "0"),
        encode_command("SSUBSCRIBE", vk),
        encode_command("MULTI") + encode_command("SET", vk, "2"),
        encode_command("WATCH", vk) + encode_command("GET", vk) + encode_command("MULTI")[:5],
    ]
    t = threading.Thread(target=unaffected)
    t.start()
    try:
        with redis_cluster.killed(victim, FAILOVER_WITHIN) as replica:
            for rnd in range(8):  # about 2.5 s: the dead primary before and during the election
                for data in leavers:
                    conn = RespConn(c.port, timeout=5)
                    conn.send_raw(data)
                    if rnd % 2:
                        time.sleep(0.02)  # sometimes corral has read it before the close
                    conn.close()
                time.sleep(0.15)
            assert c.running(), c.stderr_tail()
            redis_cluster.wait_primary(replica, FAILOVER_WITHIN)
            _wait_writes(c, _same_slot(vk, "probe"))
            for data in leavers:  # and once more with the new primary in place
                conn = RespConn(c.port, timeout=5)
                conn.send_raw(data)
                time.sleep(0.05)
                conn.close()
    finally:
        stop.set()
        t.join(30)
    assert not t.is_alive()
    assert bad == [], bad[:2]

    def released():
        m = c.metrics()
        return m["corral_dedicated_connections"] == 0 and m["corral_clients"] == 0 and \
            m["corral_pending_requests"] == 0
    wait_until(released, 10, what="no dedicated connection, client or pending request left")
    for p in redis_cluster.primaries():
        wait_until(lambda: int(redis_cluster.node(p).info("clients")["blocked_clients"]) == 0,
                   5, what=f"no blocked client left on {p}")
    with RespConn(c.port) as conn:
        assert conn.cmd("SET", vk, "after") == "OK"
        assert conn.cmd("GET", vk) == b"after"


# ---------------------------------------------------------------------------------------------
# pipelines and split commands across the kill


def _run_during_kill(redis_cluster, victim, c, load, clients=2):
    """Runs load(conn, stop) on `clients` threads (connections of their own) from before the
    kill of `victim` until 1 s after writes through corral work again; returns what each
    returned."""
    stop = threading.Event()
    results = [None] * clients
    errors = []

    def run(i):
        try:
            with RespConn(c.port, timeout=10) as conn:
                results[i] = load(conn, stop)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        with redis_cluster.killed(victim, FAILOVER_WITHIN) as replica:
            redis_cluster.wait_primary(replica, FAILOVER_WITHIN)
            _wait_writes(c, _key_on(redis_cluster, replica, "probe"))
            time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads), "a load thread hung"
    assert errors == [], errors
    return results


def test_pipelines_across_shards_while_a_primary_dies(redis_cluster, corral_factory):
    """Pipelines of SET k v / GET k / ECHO marker over keys of all three shards while one
    primary is killed: every reply in order; each is its own command's right reply or an error
    (never MOVED/ASK/TRYAGAIN); a GET after an acknowledged SET in the same pipeline returns that
    value; no pipeline takes longer than command_timeout + margin."""
    c = _corral(redis_cluster, corral_factory)
    victim = redis_cluster.primaries()[1]
    keys = list(keys_on_each_shard(redis_cluster, "fp").values())

    def load(conn, stop):
        out = {"rounds": 0, "errors": 0, "bad": [], "slowest": 0.0}
        tag = id(conn)
        i = 0
        while not stop.is_set():
            cmds = []
            for j, k in enumerate(keys):
                v = f"v-{tag}-{i}-{j}"
                key = _same_slot(k, tag)
                cmds += [("SET", key, v), ("GET", key), ("ECHO", f"e-{i}-{j}")]
            t0 = time.monotonic()
            got = conn.pipeline(cmds)
            out["slowest"] = max(out["slowest"], time.monotonic() - t0)
            for j in range(len(keys)):
                s, g, e = got[3 * j:3 * j + 3]
                v = f"v-{tag}-{i}-{j}".encode()
                ok = e == f"e-{i}-{j}".encode()
                ok = ok and (s == "OK" or _plain_error(s))
                if isinstance(g, RespError):
                    ok = ok and not _is_redirect(g)
                    out["errors"] += 1
                elif s == "OK":
                    ok = ok and g == v
                else:  # the SET failed: this key's earlier value (or nothing), or this one
                    ok = ok and (g is None or (isinstance(g, bytes) and
                                               g.startswith(f"v-{tag}-".encode()) and
                                               g.endswith(f"-{j}".encode())))
                if not ok:
                    out["bad"].append((i, j, s, g, e))
            out["rounds"] += 1
            i += 1
        return out

    results = _run_during_kill(redis_cluster, victim, c, load)
    for r in results:
        assert r["bad"] == [], r["bad"][:5]
        assert r["rounds"] > 10, r
        assert r["slowest"] < COMMAND_TIMEOUT + 1.5, r
    print(f"pipelines: {[(r['rounds'], r['errors']) for r in results]} (rounds, errors)")


def test_split_commands_in_flight_when_a_node_dies(redis_cluster, corral_factory):
    """MGET / EXISTS of 30 keys spread over all shards and MSET / DEL / MGET of 30 other keys,
    pipelined while one primary is killed: each reply is whole and right, or one error; never a
    partial array, never a count of part of the keys."""
    c = _corral(redis_cluster, corral_factory)
    victim = redis_cluster.primaries()[2]
    fixed = [f"fx:{i}" for i in range(30)]
    assert len(set(redis_cluster.owners(fixed).values())) == 3
    with RespConn(c.port, timeout=10) as conn:
        assert conn.cmd("MSET", *[x for k in fixed for x in (k, "val-" + k)]) == "OK"
    # The fixed values survive the failover: on the victim's replica before the kill.
    on_victim = [k for k, p in redis_cluster.owners(fixed).items() if p == victim]
    for k in on_victim:
        _replica_has(redis_cluster, redis_cluster.replicas_of(victim)[0], k, b"val-" + k.encode())
    want_fixed = [b"val-" + k.encode() for k in fixed]

    def load(conn, stop):
        out = {"rounds": 0, "errors": 0, "bad": []}
        tmp = [f"ft:{id(conn)}:{i}" for i in range(30)]
        n = len(tmp)
        while not stop.is_set():
            got = conn.pipeline([("MGET", *fixed), ("EXISTS", *fixed),
                                 ("MSET", *[x for k in tmp for x in (k, "t")]), ("DEL", *tmp),
                                 ("MGET", *tmp)])
            mget, exists, mset, dele, mget_tmp = got
            bad = []
            if not (mget == want_fixed or _plain_error(mget)):
                bad.append(("MGET", mget))
            if not (exists == len(fixed) or _plain_error(exists)):
                bad.append(("EXISTS", exists))
            if not (mset == "OK" or _plain_error(mset)):
                bad.append(("MSET", mset))
            # DEL's count: every key after a whole MSET; after a failed one, any part of them.
            if not (_plain_error(dele) or (isinstance(dele, int) and 0 <= dele <= n and
                                           (mset != "OK" or dele == n))):
                bad.append(("DEL", dele))
            # After a whole DEL every key is gone; after a failed one some may remain.
            if not (_plain_error(mget_tmp) or
                    (isinstance(mget_tmp, list) and len(mget_tmp) == n and
                     all(v in (None, b"t") for v in mget_tmp) and
                     (not isinstance(dele, int) or mget_tmp == [None] * n))):
                bad.append(("MGET tmp", mget_tmp))
            out["errors"] += sum(isinstance(r, RespError) for r in got)
            if bad:
                out["bad"].append(bad)
            out["rounds"] += 1
        return out

    results = _run_during_kill(redis_cluster, victim, c, load)
    for r in results:
        assert r["bad"] == [], r["bad"][:3]
        assert r["rounds"] > 10, r
    print(f"split commands: {[(r['rounds'], r['errors']) for r in results]} (rounds, errors)")
    with RespConn(c.port, timeout=10) as conn:
        assert conn.cmd("MGET", *fixed) == want_fixed
