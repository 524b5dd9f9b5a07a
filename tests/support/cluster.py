r"""Redis Cluster for the integration tests: N primaries with R replicas each, real redis-server
7.0 processes on free loopback ports, made into a cluster by `redis-cli --cluster create`.

    RedisCluster(primaries=3, replicas=1)
      |-- RedisServer x N*(R+1)   --cluster-enabled yes, nodes-<port>.conf in the cluster's temp
      |                           dir, own bus port (--cluster-port), node timeout 2 s
      |-- redis-cli --cluster create ... --cluster-replicas R --cluster-yes
      '-- wait_ok(): every running node says cluster_state:ok, all of them report one slot map,
                     every replica's link to its primary is up

Nodes are named by their port (with tls=True the TLS port: the plain port is off). What the
cluster looks like right now (primaries, replicas, who owns a slot) is always asked of the
cluster (CLUSTER SHARDS), never remembered, so it stays true across failovers and resharding.
Everything binds to 127.0.0.1; every wait has a deadline; processes are stopped by their own pid.

A fresh cluster without writes reports its replicas with health "loading" in CLUSTER SHARDS
(their replication offset is still 0); they count as replicas here all the same.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from typing import Iterable, Optional

from harness import REDIS_CLI, RedisServer, RespConn, RespError, free_port, wait_until

SLOTS = 16384


def _crc16_table() -> list:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC16 = _crc16_table()


def key_slot(key) -> int:
    """The cluster slot of key: CRC16 (XMODEM) mod 16384 of the key, or of its hash tag (the
    bytes between the first '{' and the first '}' after it, when not empty)."""
    k = key.encode() if isinstance(key, str) else bytes(key)
    start = k.find(b"{")
    if start >= 0:
        end = k.find(b"}", start + 1)
        if end > start + 1:
            k = k[start + 1:end]
    crc = 0
    for b in k:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC16[((crc >> 8) ^ b) & 0xFF]
    return crc % SLOTS


def parse_redirect(reply) -> Optional[tuple]:
    """-MOVED 3999 127.0.0.1:6381 / -ASK ... -> ("MOVED" or "ASK", slot, port); else None."""
    if not isinstance(reply, RespError):
        return None
    parts = reply.message.split()
    if len(parts) != 3 or parts[0] not in ("MOVED", "ASK"):
        return None
    return parts[0], int(parts[1]), int(parts[2].rsplit(":", 1)[1])


def _pairs(flat: list) -> dict:
    """[b'k', v, b'k2', v2] -> {'k': v, 'k2': v2} with bulk values decoded to str."""
    out = {}
    for i in range(0, len(flat) - 1, 2):
        v = flat[i + 1]
        out[flat[i].decode()] = v.decode() if isinstance(v, bytes) else v
    return out


class _NotYet(Exception):
    pass


class RedisCluster:
    """A Redis Cluster of `primaries` shards with `replicas` replicas each (3 + 3 by default).

    tls=True: every node listens on TLS only (--port 0 --tls-port P) with tls-cluster and
    tls-replication on, using certs (a certs.Certs; made in the cluster's temp dir when None);
    client() and redis-cli speak TLS trusting certs' `ca`. extra_args go to every node.
    Use as a context manager (or call close()): every node is stopped by its pid and the temp
    dir removed."""

    def __init__(self, primaries: int = 3, replicas: int = 1, tls: bool = False, certs=None,
                 node_timeout_ms: int = 2000, extra_args: Optional[list] = None,
                 timeout: float = 60.0):
        assert primaries >= 3, "redis-cli --cluster create needs at least 3 primaries"
        self.tls = tls
        self.node_timeout_ms = node_timeout_ms
        self.dir = tempfile.mkdtemp(prefix="corral-it-cluster-")
        self.certs = None
        self.nodes: dict = {}  # port -> RedisServer, in start order
        try:
            if tls:
                if certs is None:
                    from certs import Certs  # openssl: only when TLS is asked for
                    os.mkdir(os.path.join(self.dir, "certs"))
                    certs = Certs(os.path.join(self.dir, "certs"))
                self.certs = certs
            for _ in range(primaries * (replicas + 1)):
                self._start_node(list(extra_args or []))
            self._create(replicas, timeout)
            self.wait_ok(timeout)
        except BaseException:
            self.close()
            raise

    # -- building

    def _start_node(self, extra: list):
        port = free_port()
        # The bus port is chosen, not port + 10000, which may be taken or past 65535.
        bus = free_port()
        for _ in range(10):  # two bind(0)s in a row may give the same port
            if bus != port:
                break
            bus = free_port()
        assert bus != port, "no second free port"
        args = ["--cluster-enabled", "yes",
                "--cluster-config-file", os.path.join(self.dir, f"nodes-{port}.conf"),
                "--cluster-node-timeout", str(self.node_timeout_ms),
                "--cluster-port", str(bus),
                "--save", "", "--appendonly", "no"]
        if self.tls:
            args += ["--tls-cluster", "yes"]
        self.nodes[port] = RedisServer(port=port, extra_args=args + extra,
                                       tls_certs=self.certs if self.tls else None)

    def cli_args(self) -> list:
        """redis-cli and the options it needs to reach these nodes (TLS and its CA)."""
        a = [REDIS_CLI]
        if self.tls:
            a += ["--tls", "--cacert", self.certs.path("ca")]
        return a

    def _create(self, replicas: int, timeout: float):
        argv = self.cli_args() + ["--cluster", "create"] + self.seeds() + [
            "--cluster-replicas", str(replicas), "--cluster-yes"]
        r = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise AssertionError(f"redis-cli --cluster create failed ({r.returncode}):\n"
                                 f"{r.stdout.decode(errors='replace')[-2000:]}\n"
                                 f"{r.stderr.decode(errors='replace')[-2000:]}")

    # -- what the cluster is made of

    @property
    def ports(self) -> list:
        """Every node's port, running or not, in start order."""
        return list(self.nodes)

    def seeds(self) -> list:
        """"127.0.0.1:port" of every node, in start order (for upstream.cluster.seeds; with
        tls=True they are TLS ports, so set upstream.cluster.tls)."""
        return [f"127.0.0.1:{p}" for p in self.nodes]

    def node(self, port: int) -> RedisServer:
        return self.nodes[port]

    def running(self, port: int) -> bool:
        return self.nodes[port].running()

    def client(self, port: int, timeout: float = 5.0) -> RespConn:
        """A raw RESP connection to one node (TLS when the cluster is); no redirects followed."""
        return self.nodes[port].client(timeout=timeout)

    def cmd(self, port: int, *args):
        """One command on one node, on a connection of its own."""
        return self.nodes[port].cmd(*args)

    def ssl_context(self):
        """The client TLS context (trusting certs' `ca`), None without TLS."""
        return next(iter(self.nodes.values())).tls_context

    # -- the live view, from CLUSTER SHARDS

    def _asked(self, port: Optional[int]) -> int:
        if port is not None:
            return port
        for p, n in self.nodes.items():
            if n.running():
                return p
        raise AssertionError("no node of the cluster is running")

    def shards(self, port: Optional[int] = None) -> list:
        """CLUSTER SHARDS as node `port` (default: the first running node) sees it:
        [{"slots": [(first, last), ...], "nodes": [{"id", "port", "role", "health", ...}]}].
        A node's "port" is the one it is reached on (its TLS port with tls=True)."""
        raw = self.cmd(self._asked(port), "CLUSTER", "SHARDS")
        assert isinstance(raw, list), raw
        out = []
        for shard in raw:
            fields = {shard[i].decode(): shard[i + 1] for i in range(0, len(shard) - 1, 2)}
            s = fields["slots"]
            nodes = []
            for n in fields["nodes"]:
                d = _pairs(n)
                d["port"] = d["tls-port"] if self.tls else d["port"]
                nodes.append(d)
            out.append({"slots": [(s[i], s[i + 1]) for i in range(0, len(s), 2)],
                        "nodes": nodes})
        return out

    def _nodes_seen(self, port: Optional[int] = None) -> list:
        """(node, shard) of every node in the view of `port`, failed ones left out."""
        return [(n, s) for s in self.shards(port) for n in s["nodes"] if n["health"] != "fail"]

    def primaries(self, port: Optional[int] = None) -> list:
        """Ports of the primaries that hold slots (not marked failed), sorted."""
        return sorted(n["port"] for n, s in self._nodes_seen(port)
                      if n["role"] == "master" and s["slots"])

    def replicas(self, port: Optional[int] = None) -> list:
        """Ports of the replicas (not marked failed), sorted."""
        return sorted(n["port"] for n, _ in self._nodes_seen(port) if n["role"] == "replica")

    def primary_of(self, replica_port: int) -> int:
        """The port of the primary of the shard replica_port is in."""
        for n, s in self._nodes_seen():
            if n["port"] == replica_port:
                return next(m["port"] for m in s["nodes"] if m["role"] == "master")
        raise AssertionError(f"{replica_port} is not in the cluster's view")

    def replicas_of(self, primary_port: int) -> list:
        for n, s in self._nodes_seen():
            if n["port"] == primary_port:
                return sorted(m["port"] for m in s["nodes"]
                              if m["role"] == "replica" and m["health"] != "fail")
        raise AssertionError(f"{primary_port} is not in the cluster's view")

    def node_id(self, port: int) -> str:
        """The node's own id (CLUSTER MYID)."""
        return self.cmd(port, "CLUSTER", "MYID").decode()

    def slot_map(self, port: Optional[int] = None) -> dict:
        """{slot range (first, last): primary port} as `port` sees it."""
        out = {}
        for s in self.shards(port):
            for r in s["slots"]:
                out[r] = next(n["port"] for n in s["nodes"] if n["role"] == "master")
        return out

    def slots_of(self, primary_port: int) -> int:
        """How many slots primary_port holds."""
        return sum(b - a + 1 for (a, b), p in self.slot_map().items() if p == primary_port)

    def slot_owners(self, port: Optional[int] = None) -> list:
        """One snapshot of the slot map as a table: [primary port (None: unserved)] * 16384."""
        table: list = [None] * SLOTS
        for (a, b), p in self.slot_map(port).items():
            table[a:b + 1] = [p] * (b - a + 1)
        return table

    def owner_of_slot(self, slot: int) -> int:
        owner = self.slot_owners()[slot]
        assert owner is not None, f"slot {slot} is not served"
        return owner

    def owner_of(self, key) -> int:
        """The port of the primary that holds key (by key_slot and the live slot map)."""
        return self.owner_of_slot(key_slot(key))

    def owners(self, keys: Iterable) -> dict:
        """{key: port of its primary} for many keys, from one snapshot of the slot map."""
        table = self.slot_owners()
        return {k: table[key_slot(k)] for k in keys}

    # -- waiting

    def _healthy(self):
        """None when every running node is ok and agrees on one slot map and one set of roles,
        and every running replica's link is up; else why not (for the timeout message)."""
        views = {}
        for p, n in self.nodes.items():
            if not n.running():
                continue
            info = n.cmd("CLUSTER", "INFO").decode()
            if "cluster_state:ok" not in info:
                return f"{p}: not cluster_state:ok"
            view = sorted((tuple(s["slots"]),
                           tuple(sorted((m["port"], m["role"]) for m in s["nodes"]
                                        if m["health"] != "fail")))
                          for s in self.shards(p))
            views[p] = view
            repl = n.info("replication")
            if repl.get("role") == "slave" and repl.get("master_link_status") != "up":
                return f"{p}: replica link not up"
        if not views:
            return "no node running"
        first = next(iter(views.values()))
        for p, v in views.items():
            if v != first:
                return f"{p} sees another map: {v} vs {first}"
        live = {p for p, n in self.nodes.items() if n.running()}
        seen = {port for s in first for port, _ in s[1]}
        if seen != live:
            return f"the cluster's nodes {sorted(seen)} are not the running ones {sorted(live)}"
        return None

    def wait_ok(self, timeout: float = 30.0):
        """Waits until _healthy(): every running node ok, one slot map and one set of roles
        among them (naming exactly the running nodes), every replica linked to its primary."""
        def ok():
            why = self._healthy()
            if why is not None:
                raise _NotYet(why)  # wait_until puts the last one in its timeout message
            return True

        wait_until(ok, timeout, interval=0.1, what="cluster ok and agreed")

    def wait_primary(self, port: int, timeout: float):
        """Waits until node `port` is a primary holding slots in every running node's view."""
        def ok():
            return all(port in self.primaries(p) for p, n in self.nodes.items() if n.running())
        wait_until(ok, timeout, interval=0.05, what=f"{port} primary in every view")

    # -- faults and changes

    def kill(self, port: int):
        """SIGKILL the node (by its pid); it stays in the others' view until they mark it
        failed (node timeout), then its replica is promoted."""
        self.nodes[port].kill()

    @contextlib.contextmanager
    def killed(self, port: int, failover_timeout: float = 20.0):
        """kill(port) of a primary for the length of a with block, which gets its replica's
        port. On the way out, even on failure: that replica is a primary in every view (the
        cluster's own failover), then the dead node is restarted (it rejoins as its replica)
        and wait_ok(), so the cluster is whole again."""
        replica = self.replicas_of(port)[0]
        self.kill(port)
        try:
            yield replica
        finally:
            try:
                self.wait_primary(replica, failover_timeout)
            finally:
                self.restart(port)

    def stop(self, port: int):
        """SIGTERM the node and wait for it to exit."""
        self.nodes[port].stop()

    def restart(self, port: int, wait: bool = True, timeout: float = 30.0):
        """Starts a stopped or killed node again on its port with its nodes.conf (it rejoins
        with its id; a primary that lost its slots meanwhile comes back as a replica); with
        wait, until wait_ok()."""
        n = self.nodes[port]
        if n.running():
            n.stop()
        n.start()
        if wait:
            self.wait_ok(timeout)

    def failover(self, replica_port: int, timeout: float = 20.0, force: bool = False):
        """CLUSTER FAILOVER [FORCE] on the replica; waits until it is a primary in every view
        and the cluster is ok again (its old primary then a replica of it)."""
        args = ["CLUSTER", "FAILOVER"] + (["FORCE"] if force else [])
        r = self.cmd(replica_port, *args)
        assert r == "OK", f"{' '.join(args)} on {replica_port}: {r!r}"
        self.wait_primary(replica_port, timeout)
        self.wait_ok(timeout)

    def reshard(self, from_port: int, to_port: int, slots: int, background: bool = False,
                pipeline: Optional[int] = None, timeout: float = 60.0):
        """Moves `slots` slots (and their keys) from one primary to another with
        `redis-cli --cluster reshard`. background=False: waits for it (it must succeed) and for
        wait_ok(); returns the CompletedProcess. background=True: returns the running Popen
        (stdout and stderr to a log file in the cluster's dir; wait() on it, bounded).
        pipeline: keys per MIGRATE (redis-cli's default is 10; 1 makes a migration slow)."""
        argv = self.cli_args() + [
            "--cluster", "reshard", f"127.0.0.1:{from_port}",
            "--cluster-from", self.node_id(from_port), "--cluster-to", self.node_id(to_port),
            "--cluster-slots", str(slots), "--cluster-yes"]
        if pipeline is not None:
            argv += ["--cluster-pipeline", str(pipeline)]
        if background:
            log = open(os.path.join(self.dir, f"reshard-{time.monotonic_ns()}.log"), "wb")
            try:
                return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL)
            finally:
                log.close()  # the child has its own copy
        r = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise AssertionError(f"redis-cli --cluster reshard failed ({r.returncode}):\n"
                                 f"{r.stdout.decode(errors='replace')[-2000:]}\n"
                                 f"{r.stderr.decode(errors='replace')[-2000:]}")
        self.wait_ok(timeout)
        return r

    # -- a cluster client of our own (redirects followed), for filling and reading data

    def call(self, *args, port: Optional[int] = None, max_redirects: int = 5):
        """Runs one command, sent to `port` (default: the owner of args[1] by the live map) and
        following -MOVED and -ASK (ASKING first) up to max_redirects times. Returns the reply."""
        if port is None:
            port = self.owner_of(args[1]) if len(args) > 1 else self._asked(None)
        asking = False
        for _ in range(max_redirects + 1):
            with self.client(port) as c:
                reply = c.pipeline([("ASKING",), args])[1] if asking else c.cmd(*args)
            redirect = parse_redirect(reply)
            if redirect is None:
                return reply
            kind, _, port = redirect
            asking = kind == "ASK"
        raise AssertionError(f"{args[:2]!r}: more than {max_redirects} redirects (last {reply!r})")

    def set_many(self, items: Iterable, via_port: Optional[int] = None) -> dict:
        """SETs every (key, value), pipelined: all to via_port (default: the first running node),
        then each -MOVED reply again, pipelined to the node it names, until none is left
        (bounded). Returns {"redirected": how many were MOVED, "slots": {key: slot from the
        MOVED reply}} so callers can check key_slot() against Redis."""
        pending = {via_port if via_port is not None else self._asked(None): list(items)}
        redirected = 0
        moved_slots: dict = {}
        for _ in range(5):
            nxt: dict = {}
            for port, batch in pending.items():
                with self.client(port, timeout=30.0) as c:
                    replies = c.pipeline([("SET", k, v) for k, v in batch])
                for (k, v), r in zip(batch, replies):
                    if r == "OK":
                        continue
                    redirect = parse_redirect(r)
                    assert redirect is not None and redirect[0] == "MOVED", f"SET {k!r}: {r!r}"
                    redirected += 1
                    moved_slots[k] = redirect[1]
                    nxt.setdefault(redirect[2], []).append((k, v))
            if not nxt:
                return {"redirected": redirected, "slots": moved_slots}
            pending = nxt
        raise AssertionError(f"keys still redirected after 5 rounds: {list(pending)}")

    # -- cleanup

    def close(self):
        for n in self.nodes.values():
            n.close()  # SIGKILL by pid, own temp dir removed
        if not os.environ.get("CORRAL_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
