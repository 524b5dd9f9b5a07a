r"""A Redis Cluster that looks like one RedisServer to the integration tests (CORRAL_UPSTREAM=cluster).

    test --> redis_server fixture = ClusterUpstream --> RedisCluster (3 primaries, no replicas)
               .port         the first primary's port, registered with the harness so that
                             corral_config(port) writes upstream.cluster {seeds} (harness.py)
               .cmd/.client  ClusterConn: each command goes to the owner of its first key and
                             follows -MOVED/-ASK, as a cluster client would; FLUSHALL, DBSIZE,
                             KEYS, SCRIPT LOAD/FLUSH, CONFIG SET, ACL SETUSER... run on every
                             primary and are merged; MGET/MSET/DEL/EXISTS/UNLINK/TOUCH across
                             slots are split by slot (after -CROSSSLOT) and merged
               .info         INFO of every primary: integer fields summed (connections,
                             blocked_clients, ...), keyspace counts summed, the rest the first's
               .reset()      between tests: FLUSHALL, SCRIPT/FUNCTION FLUSH, CONFIG RESETSTAT,
                             extra ACL users deleted, on every primary

Operations that exist only for one server (restart, kill, stop, pid, SELECT of another db)
fail loudly here: a test that needs them is single-node by nature and is marked
`pytest.mark.single_node(reason)` (see conftest.py), never silently run against one node.
"""

from __future__ import annotations

import collections
from typing import Optional

from cluster import RedisCluster, key_slot, parse_redirect
from harness import RespConn, RespError, parse_client_list

# Commands run on every primary, and how their replies are merged.
_SAME = "same"      # every node must answer the same; that answer (or the first error)
_SUM = "sum"        # integers added (DBSIZE)
_CONCAT = "concat"  # arrays joined (KEYS)
_LINES = "lines"    # bulk texts joined line by line (CLIENT LIST)

_FAN_OUT = {
    ("FLUSHALL",): _SAME, ("FLUSHDB",): _SAME, ("DBSIZE",): _SUM, ("KEYS",): _CONCAT,
    ("SCRIPT", "FLUSH"): _SAME, ("SCRIPT", "LOAD"): _SAME, ("SCRIPT", "EXISTS"): _SAME,
    ("FUNCTION", "FLUSH"): _SAME, ("FUNCTION", "LOAD"): _SAME, ("FUNCTION", "DELETE"): _SAME,
    ("CONFIG", "SET"): _SAME, ("CONFIG", "RESETSTAT"): _SAME,
    ("ACL", "SETUSER"): _SAME, ("ACL", "DELUSER"): _SAME,
    ("CLIENT", "LIST"): _LINES, ("CLIENT", "PAUSE"): _SAME, ("CLIENT", "UNPAUSE"): _SAME,
}

# Keyless commands: answered by the first primary (deterministic, so connection state such as
# CLIENT SETNAME stays on one node).
_KEYLESS = {"PING", "ECHO", "CLIENT", "CONFIG", "INFO", "SCRIPT", "FUNCTION", "DEBUG", "ACL",
            "SLOWLOG", "COMMAND", "HELLO", "AUTH", "TIME", "LASTSAVE", "MEMORY", "LATENCY",
            "RANDOMKEY", "SCAN", "WAIT", "ROLE", "CLUSTER", "READONLY", "READWRITE", "MULTI",
            "EXEC", "DISCARD", "UNWATCH", "RESET", "QUIT", "SELECT"}

_SPLIT = {"MGET": 1, "DEL": 1, "UNLINK": 1, "EXISTS": 1, "TOUCH": 1, "MSET": 2}


def _text(a) -> str:
    return a.decode() if isinstance(a, bytes) else str(a)


def first_key(args) -> Optional[object]:
    """The key a command is routed by (a guess; -MOVED corrects it), None for keyless ones."""
    name = _text(args[0]).upper()
    if name in _KEYLESS or len(args) < 2:
        return None
    if name in ("EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO", "FCALL", "FCALL_RO"):
        return args[3] if len(args) > 3 and _text(args[2]) not in ("0", "") else None
    if name in ("XREAD", "XREADGROUP"):
        upper = [_text(a).upper() for a in args]
        if "STREAMS" in upper:
            i = upper.index("STREAMS")
            return args[i + 1] if i + 1 < len(args) else None
        return None
    if name in ("OBJECT", "XINFO", "XGROUP") and len(args) > 2:
        return args[2]
    return args[1]


def merge_info(texts: list) -> bytes:
    """INFO of several nodes as one: integer fields summed, keyspace keys/expires summed, any
    other field as the first node has it; the first node's sections and order."""
    parsed = []
    for t in texts:
        d = {}
        for line in t.decode().splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                d[k] = v
        parsed.append(d)
    out = []
    for line in texts[0].decode().splitlines():
        if ":" not in line or line.startswith("#"):
            out.append(line)
            continue
        k, v = line.split(":", 1)
        vals = [d.get(k) for d in parsed]
        if all(x is not None and x.lstrip("-").isdigit() for x in vals):
            v = str(sum(int(x) for x in vals))
        elif k.startswith("db") and all(x is not None for x in vals) and "keys=" in v:
            fields = [dict(p.split("=", 1) for p in x.split(",")) for x in vals]
            merged = dict(fields[0])
            for f in ("keys", "expires"):
                merged[f] = str(sum(int(x[f]) for x in fields))
            v = ",".join(f"{a}={b}" for a, b in merged.items())
        out.append(f"{k}:{v}")
    # keyspace lines of dbs that only later nodes have
    seen = {line.split(":", 1)[0] for line in out if ":" in line}
    for d in parsed[1:]:
        for k, v in d.items():
            if k.startswith("db") and "keys=" in v and k not in seen:
                out.append(f"{k}:{v}")
                seen.add(k)
    return ("\r\n".join(out) + "\r\n").encode()


class ClusterConn:
    """A RespConn-alike over the cluster: one lazily opened connection per node, each command
    sent to its key's owner (redirects followed). send_cmd/read_reply keep their order;
    attributes it does not have (buf, pos, _line, read_exact_raw) are the last used node's."""

    def __init__(self, up: "ClusterUpstream", timeout: float = 5.0):
        self.up = up
        self.timeout = timeout
        self._conns: dict = {}
        self._sent: collections.deque = collections.deque()
        self._last: Optional[RespConn] = None

    # -- connections
    def _conn(self, port: int) -> RespConn:
        c = self._conns.get(port)
        if c is None:
            c = RespConn(port, timeout=self.timeout)
            self._conns[port] = c
        self._last = c
        return c

    def _port_for(self, args) -> int:
        k = first_key(args)
        return self.up.default_port() if k is None else self.up.owner(k)

    def close(self):
        for c in self._conns.values():
            c.close()
        self._conns.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def settimeout(self, t: float):
        self.timeout = t
        for c in self._conns.values():
            c.settimeout(t)

    def __getattr__(self, name):
        # buf, pos, _line, read_exact_raw, expect_eof...: the node the last command went to
        if name.startswith("__"):
            raise AttributeError(name)
        last = self.__dict__.get("_last")
        if last is None:
            last = self._conn(self.up.default_port())
        return getattr(last, name)

    # -- commands
    def cmd(self, *args):
        fan = self._fan_out(args)
        if fan is not None:
            return fan
        return self._follow(self._port_for(args), args)

    def _follow(self, port: int, args, first_reply=None):
        """args on port (or its reply already read), following -MOVED / -ASK; -CROSSSLOT of a
        splittable command is split by slot."""
        asking = False
        for _ in range(6):
            if first_reply is not None:
                reply, first_reply = first_reply, None
            else:
                c = self._conn(port)
                reply = c.pipeline([("ASKING",), args])[1] if asking else c.cmd(*args)
            redirect = parse_redirect(reply)
            if redirect is None:
                if isinstance(reply, RespError) and reply.startswith("CROSSSLOT") and \
                        _text(args[0]).upper() in _SPLIT:
                    return self._split(args)
                return reply
            kind, _, port = redirect
            if kind == "MOVED":
                self.up.refresh()
            asking = kind == "ASK"
        raise AssertionError(f"{args[:2]!r}: too many redirects (last {reply!r})")

    def _split(self, args):
        name = _text(args[0]).upper()
        step = _SPLIT[name]
        items = [tuple(args[i:i + step]) for i in range(1, len(args), step)]
        by_slot: dict = {}
        for i, it in enumerate(items):
            by_slot.setdefault(key_slot(it[0]), []).append(i)
        replies = [None] * len(items)
        total = 0
        for idxs in by_slot.values():
            part = (args[0],) + tuple(x for i in idxs for x in items[i])
            r = self._follow(self.up.owner(items[idxs[0]][0]), part)
            if isinstance(r, RespError):
                return r
            if name == "MGET":
                for i, v in zip(idxs, r):
                    replies[i] = v
            elif name != "MSET":
                total += r
        return replies if name == "MGET" else ("OK" if name == "MSET" else total)

    def _fan_out(self, args):
        up = [_text(a).upper() for a in args[:2]]
        how = _FAN_OUT.get(tuple(up[:1])) or _FAN_OUT.get(tuple(up))
        if how is None and up[0] == "INFO":
            return merge_info([self._conn(p).cmd(*args) for p in self.up.primaries()])
        if how is None:
            return None
        replies = [self._conn(p).cmd(*args) for p in self.up.primaries()]
        errors = [r for r in replies if isinstance(r, RespError)]
        if errors:
            return errors[0]
        if how == _SUM:
            return sum(replies)
        if how == _CONCAT:
            return [x for r in replies for x in r]
        if how == _LINES:
            return b"".join(r if r.endswith(b"\n") else r + b"\n" for r in replies)
        if any(r != replies[0] for r in replies):
            raise AssertionError(f"{args[:2]!r}: the primaries answer differently: {replies!r}")
        return replies[0]

    def pipeline(self, cmds) -> list:
        """Each command in turn (redirects and splits need its reply before the next)."""
        return [self.cmd(*c) for c in cmds]

    def send_cmd(self, *args):
        if self._fan_out_kind(args):
            raise AssertionError(f"{args[:2]!r} runs on every primary: use cmd(), not send_cmd()")
        port = self._port_for(args)
        self._conn(port).send_cmd(*args)
        self._sent.append((port, args))

    def read_reply(self):
        if not self._sent:
            return self._conn(self.up.default_port()).read_reply()
        port, args = self._sent.popleft()
        reply = self._conn(port).read_reply()
        return self._follow(port, args, first_reply=reply)

    @staticmethod
    def _fan_out_kind(args):
        up = tuple(_text(a).upper() for a in args[:2])
        return _FAN_OUT.get(up[:1]) or _FAN_OUT.get(up) or (up[0] == "INFO")


class ClusterUpstream:
    """Stands where a RedisServer stands: `port` (the first primary; corral_config() of it
    writes upstream.cluster), cmd(), client(), info(), client_list(), running(), reset()."""

    password = None
    tls_context = None

    def __init__(self, cluster: RedisCluster):
        self.cluster = cluster
        self._owners: Optional[list] = None
        self._primaries: list = []
        self.refresh()
        self.port = self._primaries[0]

    def seeds(self) -> list:
        return self.cluster.seeds()

    def primaries(self) -> list:
        """The primaries as last asked (refresh()): asking opens a connection, which tests
        counting Redis's connections (connections_received) would see."""
        return self._primaries

    def default_port(self) -> int:
        return self.port

    def refresh(self):
        self._owners = self.cluster.slot_owners()
        self._primaries = self.cluster.primaries()

    def owner(self, key) -> int:
        if self._owners is None:
            self.refresh()
        return self._owners[key_slot(key)]

    def client(self, timeout: float = 5.0) -> ClusterConn:
        return ClusterConn(self, timeout=timeout)

    def cmd(self, *args):
        with self.client() as c:
            return c.cmd(*args)

    def info(self, section: str = "") -> dict:
        raw = self.cmd("INFO", section) if section else self.cmd("INFO")
        out = {}
        for line in raw.decode().splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def client_list(self) -> list:
        """CLIENT LIST of every primary; each entry has "node", the port of its primary."""
        out = []
        for p in self.primaries():
            with RespConn(p) as c:
                for f in parse_client_list(c.cmd("CLIENT", "LIST")):
                    f["node"] = str(p)
                    out.append(f)
        return out

    def kill_client(self, fields: dict):
        """CLIENT KILL ID of one entry of client_list(), on its own node (ids are per node)."""
        with RespConn(int(fields["node"])) as c:
            return c.cmd("CLIENT", "KILL", "ID", fields["id"])

    def ports(self) -> list:
        """The primaries' ports: where corral's upstream connections go."""
        return list(self.primaries())

    def running(self) -> bool:
        return all(self.cluster.running(p) for p in self.cluster.ports)

    def reset(self):
        """What a fresh redis-server would be, as far as tests can tell: no keys, scripts,
        functions, extra ACL users or stats; every node running and the cluster ok."""
        if not self.running():
            raise AssertionError("a node of the shared cluster is down (a test stopped it: "
                                 "mark it single_node)")
        for p in self.primaries():
            with RespConn(p) as c:
                for args in (("FLUSHALL",), ("SCRIPT", "FLUSH"), ("FUNCTION", "FLUSH"),
                             ("CONFIG", "RESETSTAT")):
                    r = c.cmd(*args)
                    assert r == "OK", (p, args, r)
                users = [u for u in c.cmd("ACL", "USERS") if u != b"default"]
                if users:
                    c.cmd("ACL", "DELUSER", *users)
                c.cmd("ACL", "SETUSER", "default", "reset", "on", "nopass", "~*", "&*",
                      "+@all")
                c.cmd("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
                c.cmd("CLIENT", "KILL", "TYPE", "pubsub", "SKIPME", "yes")
        self.refresh()

    def _single(self, what):
        raise AssertionError(f"redis_server.{what}() is a single-node operation; in "
                             "CORRAL_UPSTREAM=cluster mark the test "
                             "@pytest.mark.single_node(reason)")

    def restart(self, *a, **kw):
        self._single("restart")

    def start(self, *a, **kw):
        self._single("start")

    def stop(self, *a, **kw):
        self._single("stop")

    def kill(self, *a, **kw):
        self._single("kill")

    @property
    def pid(self):
        self._single("pid")


# Reasons shared by several tests' markers (conftest.py: single_node, cluster_xfail).
TRACKING_ONE_NODE = ("CLIENT TRACKING through corral tracks the keys of one cluster node (the "
                     "one its connection is held on); keys of the others are refused ('-ERR "
                     "corral: this connection is held on cluster node ...')")
SELECT_DB = "SELECTs a db other than 0; a cluster has db 0 only"
MONITOR_ONE_NODE = "MONITOR through corral watches one cluster node; the command runs on another"
REDIS_PROCESS = "stops, kills, restarts or SIGSTOPs the one redis-server process"
