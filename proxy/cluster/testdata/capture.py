#!/usr/bin/python3
"""Captures the Redis Cluster replies that proxy/cluster's tests read (testdata/*.resp).

    proxy/cluster/testdata/capture.py > /tmp/keyslots.txt   # rewrites testdata/*.resp
    CAPTURE_OUT=/tmp/x proxy/cluster/testdata/capture.py    # writes them to /tmp/x instead
    proxy/cluster/testdata/capture.py --one-node            # only one_node_*.resp
    proxy/cluster/testdata/capture.py --info                # only info_*.resp

Starts six redis-servers (cluster-enabled, persistence off) on free loopback ports in a temp
dir, makes a 3-primary/3-replica cluster with redis-cli --cluster create, and saves the raw
bytes of what corral asks or meets: CLUSTER SHARDS and CLUSTER SLOTS in RESP2 and RESP3 (plain,
with announced hostnames, with unknown-endpoint, after a failover), and -MOVED, -ASK, -TRYAGAIN
and -CLUSTERDOWN replies. Prints the CLUSTER KEYSLOT answers for slot_test.cc's reference table.
Every wait is bounded; the servers are stopped by their pid.

--one-node captures what corral imitates with upstream.cluster.expose: CLUSTER SLOTS, SHARDS
and NODES of a one-node cluster that holds every slot (announced ip 127.0.0.1, config epoch
bumped to 1), in RESP2 and RESP3.

--info captures what info_merge_test.cc merges: INFO everything of each primary of a
3-primary cluster holding keys with and without a TTL on every node (avg_ttl measured), commands
and errors that differ per node (info_<n>_resp2.resp), and node 0's INFO in RESP3 (verbatim).
"""

import os
import socket
import subprocess
import sys
import tempfile
import time

# CAPTURE_OUT=DIR writes elsewhere (the tests name ports and ids of the committed capture).
OUT = os.environ.get("CAPTURE_OUT") or os.path.dirname(os.path.abspath(__file__))


def free_port():
    """A port p with p and its cluster bus port p + 10000 both free a moment ago."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        if p + 10000 > 65535:
            continue
        b = socket.socket()
        try:
            b.bind(("127.0.0.1", p + 10000))
            return p
        except OSError:
            continue
        finally:
            b.close()


def encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


class Conn:
    """A raw RESP connection that returns each reply's exact bytes."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def _line(self, pos):
        while True:
            i = self.buf.find(b"\r\n", pos)
            if i >= 0:
                return i
            self._more()

    def _more(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("server closed")
        self.buf += d

    def _frame(self, pos):
        """End offset of the element that starts at pos (blocking for more bytes)."""
        while len(self.buf) <= pos:
            self._more()
        t = self.buf[pos:pos + 1]
        eol = self._line(pos)
        head = self.buf[pos + 1:eol]
        if t in b"+-:_#,(":
            return eol + 2
        if t in b"$!=":
            n = int(head)
            if n < 0:
                return eol + 2
            while len(self.buf) < eol + 2 + n + 2:
                self._more()
            return eol + 2 + n + 2
        if t in b"*~>%|":
            n = int(head)
            if t in b"%|":
                n *= 2
            p = eol + 2
            for _ in range(max(n, 0)):
                p = self._frame(p)
            if t == b"|":
                p = self._frame(p)  # the value the attribute annotates
            return p
        raise ValueError("bad type byte %r" % t)

    def call(self, *args):
        self.s.sendall(encode(args))
        end = self._frame(0)
        reply, self.buf = self.buf[:end], self.buf[end:]
        return reply


def save(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def wait(cond, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except (OSError, EOFError):
            pass
        time.sleep(0.1)
    raise SystemExit("timed out waiting for " + what)


KEYS = [b"", b"a", b"foo", b"bar", b"hello", b"key:000001", b"user:1000", b"123456789",
        b"{", b"}", b"{}", b"}{", b"{{a}}", b"{a}}", b"a{b}{c}", b"{user1000}.following",
        b"{user1000}.followers", b"foo{}{bar}", b"foo{{bar}}zap", b"foo{bar}{zap}", b"{}a",
        b"a{}", b"a{", b"a}", b"a{b", b"a}b{c}", b"{a", b"{a}", b"a{a}", b"x{a}y", b"{ab}",
        b"{abc}def", b"}{a}", b"{}{a}", b"{{}}", b"{a}{", b"{{", b"}}", b"\x00", b"\x00\x01\x02",
        b"\xff\xfe", b"{\x00}", b"k\r\nv", b"space key", "\u00fcn\u00efc\u00f8d\u00e9".encode(),
        "emoji \U0001F600".encode(), b"0", b"16384", b"slot:{tag}:1", b"{tag}", b"tag",
        b"x" * 1000]


def cstr(b):
    """A C++ string_view of the bytes (a hex escape is closed before a hex digit follows it)."""
    out = ""
    after_hex = False
    for c in b:
        ch = chr(c)
        if 0x20 <= c < 0x7f:
            if after_hex and ch in "0123456789abcdefABCDEF":
                out += '""'
            out += "\\" + ch if ch in '"\\' else ch
            after_hex = False
        else:
            out += "\\x%02x" % c
            after_hex = True
    return 'std::string_view("%s", %d)' % (out, len(b))


def main():
    tmp = tempfile.mkdtemp(prefix="corral-cluster-capture-")
    ports = []
    procs = []
    try:
        for _ in range(6):
            p = free_port()
            ports.append(p)
            procs.append(subprocess.Popen(
                ["redis-server", "--port", str(p), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", os.path.join(tmp, "nodes-%d.conf" % p),
                 "--cluster-node-timeout", "1500", "--save", "", "--appendonly", "no",
                 "--dir", tmp, "--logfile", os.path.join(tmp, "%d.log" % p)]))
        for p in ports:
            wait(lambda: Conn(p).call("PING") == b"+PONG\r\n", "PING on %d" % p)
        subprocess.run(["redis-cli", "--cluster", "create"] +
                       ["127.0.0.1:%d" % p for p in ports] +
                       ["--cluster-replicas", "1", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, timeout=60)

        def all_ok():
            for p in ports:
                if b"cluster_state:ok" not in Conn(p).call("CLUSTER", "INFO"):
                    return False
            # Every node knows every other one with its replicas synced (SLOTS lists a replica
            # only once it has an offset).
            return all(Conn(p).call("CLUSTER", "SLOTS").count(b"127.0.0.1") == 6 for p in ports)
        wait(all_ok, "cluster_state:ok everywhere")

        c = Conn(ports[0])
        print("// CLUSTER KEYSLOT of redis-server 7.0.15")
        for k in KEYS:
            slot = int(c.call("CLUSTER", "KEYSLOT", k)[1:-2])
            print("    {%s, %d}," % (cstr(k), slot))

        def both(prefix, node=0):
            conn = Conn(ports[node])
            save(prefix + "shards_resp2.resp", conn.call("CLUSTER", "SHARDS"))
            save(prefix + "slots_resp2.resp", conn.call("CLUSTER", "SLOTS"))
            conn.call("HELLO", "3")
            save(prefix + "shards_resp3.resp", conn.call("CLUSTER", "SHARDS"))
            save(prefix + "slots_resp3.resp", conn.call("CLUSTER", "SLOTS"))

        both("")
        save("nodes.resp", c.call("CLUSTER", "NODES"))

        # Redirections, as node 0 writes them. "foo" is in slot 12182, not node 0's.
        save("moved.resp", c.call("GET", "foo"))
        slot = int(c.call("CLUSTER", "KEYSLOT", "{t}")[1:-2])  # 15495
        owner = None
        for p in ports:
            if Conn(p).call("SET", "{t}1", "v") == b"+OK\r\n":
                owner = p
        o = Conn(owner)
        oid = o.call("CLUSTER", "MYID")
        oid = oid[oid.index(b"\n") + 1:-2].decode()
        target = ports[0] if owner != ports[0] else ports[1]
        t = Conn(target)
        tid = t.call("CLUSTER", "MYID")
        tid = tid[tid.index(b"\n") + 1:-2].decode()
        t.call("CLUSTER", "SETSLOT", slot, "IMPORTING", oid)
        o.call("CLUSTER", "SETSLOT", slot, "MIGRATING", tid)
        save("ask.resp", o.call("GET", "{t}2"))
        save("tryagain.resp", o.call("MGET", "{t}1", "{t}2"))
        o.call("CLUSTER", "SETSLOT", slot, "STABLE")
        t.call("CLUSTER", "SETSLOT", slot, "STABLE")

        # unknown-endpoint: the node tells clients to use the address they already have.
        c.call("CONFIG", "SET", "cluster-preferred-endpoint-type", "unknown-endpoint")
        save("moved_unknown_endpoint.resp", c.call("GET", "foo"))
        both("unknown_endpoint_")
        c.call("CONFIG", "SET", "cluster-preferred-endpoint-type", "ip")

        # Announced hostnames, preferred as endpoints.
        for i, p in enumerate(ports):
            Conn(p).call("CONFIG", "SET", "cluster-announce-hostname", "n%d.corral.test" % (i + 1))
        wait(lambda: Conn(ports[0]).call("CLUSTER", "SHARDS").count(b"corral.test") >= 6,
             "hostnames gossiped")
        c.call("CONFIG", "SET", "cluster-preferred-endpoint-type", "hostname")
        save("moved_hostname.resp", c.call("GET", "foo"))
        both("hostname_")
        c.call("CONFIG", "SET", "cluster-preferred-endpoint-type", "ip")

        # CLUSTERDOWN: node 0 forgets who serves slot 12182; gossip soon repairs it.
        c.call("CLUSTER", "DELSLOTS", 12182)
        save("clusterdown.resp", c.call("GET", "foo"))

        # A failover: stop the primary of "foo"'s slot (not node 0) and wait for its replica.
        moved = open(os.path.join(OUT, "moved.resp"), "rb").read()
        victim = int(moved.split(b":")[-1][:-2])
        procs[ports.index(victim)].terminate()
        procs[ports.index(victim)].wait(timeout=10)

        def promoted():
            r = Conn(ports[0]).call("CLUSTER", "SLOTS")
            return b"%d" % victim not in r and Conn(ports[0]).call(
                "CLUSTER", "INFO").find(b"cluster_state:ok") >= 0
        wait(promoted, "failover of %d" % victim)
        both("failover_")
        save("failover_nodes.resp", Conn(ports[0]).call("CLUSTER", "NODES"))
    finally:
        for pr in procs:
            if pr.poll() is None:
                pr.terminate()
        for pr in procs:
            try:
                pr.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pr.kill()
        print("// servers stopped; temp dir " + tmp, file=sys.stderr)


def one_node():
    tmp = tempfile.mkdtemp(prefix="corral-cluster-capture-")
    p = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(p), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
         "--cluster-config-file", os.path.join(tmp, "nodes.conf"), "--cluster-announce-ip",
         "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", tmp,
         "--logfile", os.path.join(tmp, "one.log")])
    try:
        wait(lambda: Conn(p).call("PING") == b"+PONG\r\n", "PING on %d" % p)
        c = Conn(p)
        c.call("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        c.call("CLUSTER", "BUMPEPOCH")
        wait(lambda: b"cluster_state:ok" in Conn(p).call("CLUSTER", "INFO"), "cluster_state:ok")
        for proto in ("2", "3"):
            conn = Conn(p)
            conn.call("HELLO", proto)
            for what in ("SLOTS", "SHARDS", "NODES"):
                save("one_node_%s_resp%s.resp" % (what.lower(), proto), conn.call("CLUSTER", what))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        print("// server stopped; temp dir " + tmp, file=sys.stderr)


def info():
    tmp = tempfile.mkdtemp(prefix="corral-cluster-capture-")
    ports = [free_port() for _ in range(3)]
    procs = []
    try:
        for p in ports:
            procs.append(subprocess.Popen(
                ["redis-server", "--port", str(p), "--bind", "127.0.0.1",
                 "--cluster-enabled", "yes",
                 "--cluster-config-file", os.path.join(tmp, "nodes-%d.conf" % p), "--save", "",
                 "--appendonly", "no", "--dir", tmp, "--logfile", os.path.join(tmp, "%d.log" % p)]))
        for p in ports:
            wait(lambda: Conn(p).call("PING") == b"+PONG\r\n", "PING on %d" % p)
        subprocess.run(["redis-cli", "--cluster", "create"] + ["127.0.0.1:%d" % p for p in ports] +
                       ["--cluster-replicas", "0", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, timeout=60)
        wait(lambda: all(b"cluster_state:ok" in Conn(p).call("CLUSTER", "INFO") for p in ports),
             "cluster_state:ok")
        conns = {p: Conn(p) for p in ports}
        for i in range(300):  # every third key with a TTL; the MOVED errors count as errors too
            args = ["SET", "info:%d" % i, "v"] + (["EX", 1000 + i] if i % 3 == 0 else [])
            r = conns[ports[0]].call(*args)
            if r.startswith(b"-MOVED"):
                r = conns[int(r.split(b":")[-1][:-2])].call(*args)
            assert r == b"+OK\r\n", r
        conns[ports[0]].call("PING")  # commands and errors of one node only
        conns[ports[1]].call("ECHO", "x")
        conns[ports[2]].call("NOSUCHCOMMAND")
        wait(lambda: all(b"avg_ttl=0" not in Conn(p).call("INFO", "keyspace") for p in ports),
             "avg_ttl measured")
        for n, p in enumerate(ports):
            save("info_%d_resp2.resp" % n, Conn(p).call("INFO", "everything"))
        conn = Conn(ports[0])
        conn.call("HELLO", "3")
        save("info_0_resp3.resp", conn.call("INFO"))
    finally:
        for pr in procs:
            pr.terminate()
        for pr in procs:
            try:
                pr.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pr.kill()
        print("// servers stopped; temp dir " + tmp, file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1:] == ["--one-node"]:
        one_node()
    elif sys.argv[1:] == ["--info"]:
        info()
    else:
        main()
