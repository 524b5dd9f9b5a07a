r"""A fake upstream for corral's integration tests: a small RESP2 server that plays a newer Redis.

    corral ---TCP---> FakeRedis (127.0.0.1, a thread per connection)
                        |-- handshake: PING, AUTH, SELECT, INFO server, CONFIG GET databases,
                        |   CLIENT ID/SETNAME, HELLO 2, QUIT: answered like Redis does
                        |-- COMMAND / COMMAND INFO / COMMAND COUNT: a recorded reply (below)
                        `-- anything else: recorded in `received`, answered from a small table
                            (HEXPIRE and friends), or with Redis's unknown-command error for a
                            name the recorded reply does not hold

The recorded COMMAND reply is a real redis-server 7.0.15's own reply (read from one started by
the fixture, so its 240 commands are byte for byte what corral's table was generated from) with
the commands of newer servers appended, as Redis 7.2-8.0 describe them in their
src/commands/*.json (arity, flags, key specs; written out by hand in NEWER_COMMANDS), plus one
fictitious module command whose keys are found by keyword and count. Only the Python standard
library is used. Every socket has a timeout; stop() closes the listener and every connection.
"""

from __future__ import annotations

import socket
import threading
from typing import Optional


def _index_range(pos: int, lastkey: int = 0, step: int = 1, limit: int = 0,
                 flags: tuple = ("RW", "update")) -> dict:
    return {"flags": list(flags),
            "begin_search": {"type": "index", "spec": {"index": pos}},
            "find_keys": {"type": "range",
                          "spec": {"lastkey": lastkey, "keystep": step, "limit": limit}}}


def _command(name, arity, flags, first, last, step, acl, key_specs, subcommands=()):
    return [name, arity, list(flags), first, last, step, list(acl), [], list(key_specs),
            list(subcommands)]


RO = ("RO", "access")
# Newer servers' commands as COMMAND reports them (Redis 7.4 hash-field expiry, Redis 8.0
# HGETEX/HSETEX/HGETDEL, Redis 7.2 WAITAOF and OBJECT's container unchanged).
NEWER_COMMANDS = [
    _command("hexpire", -6, ["write", "denyoom", "fast"], 1, 1, 1, ["@write", "@hash", "@fast"],
             [_index_range(1)]),
    _command("hpexpire", -6, ["write", "denyoom", "fast"], 1, 1, 1, ["@write", "@hash", "@fast"],
             [_index_range(1)]),
    _command("httl", -5, ["readonly", "fast"], 1, 1, 1, ["@read", "@hash", "@fast"],
             [_index_range(1, flags=RO)]),
    _command("hpersist", -5, ["write", "fast"], 1, 1, 1, ["@write", "@hash", "@fast"],
             [_index_range(1)]),
    _command("hgetex", -5, ["write", "fast"], 1, 1, 1, ["@write", "@hash", "@fast"],
             [_index_range(1, flags=("RW", "access", "update"))]),
    _command("hsetex", -6, ["write", "denyoom", "fast"], 1, 1, 1, ["@write", "@hash", "@fast"],
             [_index_range(1, flags=("RW", "update"))]),
    _command("hgetdel", -5, ["write", "fast"], 1, 1, 1, ["@write", "@hash", "@fast"],
             [_index_range(1, flags=("RW", "access", "delete"))]),
    _command("waitaof", 4, ["blocking"], 0, 0, 0, ["@slow", "@connection"], []),
    # Fictitious (a module's): MODX.MGET opt ... KEYS numkeys key [key ...] -- keys found by a
    # keyword search followed by a count, the two key-spec forms the 7.0 table has no command of.
    _command("modx.mget", -4, ["readonly", "movablekeys"], 0, 0, 0, ["@read"],
             [{"flags": list(RO),
               "begin_search": {"type": "keyword", "spec": {"keyword": "KEYS", "startfrom": 1}},
               "find_keys": {"type": "keynum",
                             "spec": {"keynumidx": 0, "firstkey": 1, "keystep": 1}}}]),
    # A blocking module command: corral refuses it (it would hold a shared connection).
    _command("modx.bpop", 3, ["write", "blocking"], 1, 1, 1, ["@write", "@blocking"],
             [_index_range(1)]),
]
NEWER_NAMES = [c[0] for c in NEWER_COMMANDS]


def encode(v, simple: bool = False) -> bytes:
    """RESP2 as Redis writes COMMAND's reply: names and map keys as bulk strings, flags and ACL
    categories as simple strings (simple=True), maps as flat arrays of key, value."""
    if isinstance(v, bool):
        raise TypeError("no booleans in RESP2")
    if isinstance(v, int):
        return b":%d\r\n" % v
    if isinstance(v, str):
        b = v.encode()
        return b"+" + b + b"\r\n" if simple else b"$%d\r\n%s\r\n" % (len(b), b)
    if isinstance(v, dict):
        out = [b"*%d\r\n" % (2 * len(v))]
        for k, x in v.items():
            out.append(encode(k))
            out.append(encode(x, simple=(k == "flags")))
        return b"".join(out)
    if isinstance(v, list):
        return b"*%d\r\n" % len(v) + b"".join(encode(x, simple) for x in v)
    raise TypeError(f"cannot encode {v!r}")


def encode_command_entry(c: list) -> bytes:
    name, arity, flags, first, last, step, acl, tips, specs, subs = c
    return b"".join([b"*10\r\n", encode(name), encode(arity), encode(flags, True), encode(first),
                     encode(last), encode(step), encode(acl, True), encode(tips, True),
                     encode(specs), b"*%d\r\n" % len(subs)] +
                    [encode_command_entry(s) for s in subs])


def _read_reply_raw(sock: socket.socket, buf: bytearray) -> bytes:
    """One whole RESP2 reply's bytes from sock (buf holds what was read ahead)."""
    def need(n):
        while len(buf) < n:
            chunk = sock.recv(1 << 20)
            if not chunk:
                raise ConnectionError("closed")
            buf.extend(chunk)

    def frame(pos: int) -> int:
        while buf.find(b"\r\n", pos) < 0:
            need(len(buf) + 1)
        end = buf.find(b"\r\n", pos)
        t, n = buf[pos:pos + 1], buf[pos + 1:end]
        if t in (b"+", b"-", b":"):
            return end + 2
        if t == b"$":
            size = int(n)
            if size < 0:
                return end + 2
            need(end + 2 + size + 2)
            return end + 2 + size + 2
        if t == b"*":
            p = end + 2
            for _ in range(max(0, int(n))):
                p = frame(p)
            return p
        raise ValueError(f"unexpected reply byte {t!r}")

    end = frame(0)
    out = bytes(buf[:end])
    del buf[:end]
    return out


def recorded_command_reply(redis_port: int) -> bytes:
    """A real server's COMMAND reply with NEWER_COMMANDS appended (what a newer server would
    report: everything 7.0.15 has, and more)."""
    with socket.create_connection(("127.0.0.1", redis_port), timeout=5) as s:
        s.settimeout(5)
        s.sendall(b"*1\r\n$7\r\nCOMMAND\r\n")
        raw = _read_reply_raw(s, bytearray())
    head, _, body = raw.partition(b"\r\n")
    assert head.startswith(b"*"), head
    count = int(head[1:]) + len(NEWER_COMMANDS)
    return b"*%d\r\n" % count + body + b"".join(encode_command_entry(c) for c in NEWER_COMMANDS)


class FakeRedis:
    """The fake upstream. `received` lists every request it was sent after the handshake
    commands, as lists of bytes; `command_requests` counts COMMAND requests."""

    HANDSHAKE = {b"PING", b"AUTH", b"SELECT", b"INFO", b"CONFIG", b"CLIENT", b"HELLO", b"QUIT",
                 b"COMMAND"}

    def __init__(self, command_reply: bytes, version: str = "7.4.1",
                 command_error: Optional[bytes] = None, drop_on_command: int = 0):
        self.command_reply = command_reply
        self.command_error = command_error  # e.g. b"-NOPERM ...\r\n" to refuse COMMAND
        self.drop_on_command = drop_on_command  # close the connection instead, this many times
        self.version = version
        self.known = self._names(command_reply)
        self.received: list = []
        self.command_requests = 0
        self._lock = threading.Lock()
        self._conns: list = []
        self._stop = threading.Event()
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.lsock.settimeout(0.2)
        self.port = self.lsock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @staticmethod
    def _names(reply: bytes) -> set:
        """Upper-case top-level command names in a COMMAND reply (a light scan: each entry is
        "*10\r\n$<n>\r\n<name>")."""
        names = set()
        marker = b"*10\r\n$"
        pos = reply.find(marker)
        while pos >= 0:
            line_end = reply.find(b"\r\n", pos + len(marker))
            n = int(reply[pos + len(marker):line_end])
            name = reply[line_end + 2:line_end + 2 + n]
            if b"|" not in name:
                names.add(name.upper())
            pos = reply.find(marker, line_end)
        return names

    def requests_named(self, name: str) -> list:
        with self._lock:
            return [r for r in self.received if r and r[0].upper() == name.upper().encode()]

    # -- server
    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            conn.settimeout(0.5)
            with self._lock:
                self._conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        buf = bytearray()
        try:
            while not self._stop.is_set():
                try:
                    chunk = conn.recv(1 << 16)
                except socket.timeout:
                    continue
                if not chunk:
                    return
                buf.extend(chunk)
                out = []
                while True:
                    req = self._parse(buf)
                    if req is None:
                        break
                    answer = self._answer(req)
                    if answer is None:  # drop the connection, with what was answered so far
                        conn.sendall(b"".join(out))
                        return
                    out.append(answer)
                if out:
                    conn.sendall(b"".join(out))
        except OSError:
            return
        finally:
            conn.close()

    @staticmethod
    def _parse(buf: bytearray) -> Optional[list]:
        """One multibulk request from buf (consumed), or None when incomplete."""
        if not buf:
            return None
        end = buf.find(b"\r\n")
        if end < 0:
            return None
        if buf[:1] != b"*":
            raise ValueError(f"fake redis: not a multibulk request: {bytes(buf[:40])!r}")
        n = int(buf[1:end])
        pos = end + 2
        args = []
        for _ in range(n):
            e = buf.find(b"\r\n", pos)
            if e < 0:
                return None
            size = int(buf[pos + 1:e])
            if len(buf) < e + 2 + size + 2:
                return None
            args.append(bytes(buf[e + 2:e + 2 + size]))
            pos = e + 2 + size + 2
        del buf[:pos]
        return args

    def _answer(self, args: list) -> Optional[bytes]:
        """The reply to one request; None to close the connection instead."""
        name = args[0].upper()
        sub = args[1].upper() if len(args) > 1 else b""
        if name == b"COMMAND":
            with self._lock:
                self.command_requests += 1
                if self.drop_on_command > 0:
                    self.drop_on_command -= 1
                    return None
            if sub == b"COUNT":
                return b":%d\r\n" % len(self.known)
            if self.command_error is not None:
                return self.command_error
            if sub in (b"", b"INFO") and len(args) <= 2:
                return self.command_reply
            return b"-ERR fake redis: only COMMAND and COMMAND INFO without names\r\n"
        if name in (b"PING",):
            return b"+PONG\r\n"
        if name in (b"AUTH", b"SELECT", b"QUIT") or (name == b"CLIENT" and sub == b"SETNAME"):
            return b"+OK\r\n"
        if name == b"INFO":
            text = f"# Server\r\nredis_version:{self.version}\r\nredis_mode:standalone\r\n"
            return b"$%d\r\n%s\r\n" % (len(text), text.encode())
        if name == b"CONFIG" and sub == b"GET":
            return b"*2\r\n$9\r\ndatabases\r\n$2\r\n16\r\n"
        if name == b"CLIENT" and sub == b"ID":
            return b":4242\r\n"
        with self._lock:
            self.received.append(args)
        if name not in self.known:
            rest = b"".join(b"'" + a[:128] + b"' " for a in args[1:])
            return b"-ERR unknown command '%s', with args beginning with: %s\r\n" % (args[0], rest)
        if name in (b"HEXPIRE", b"HPEXPIRE", b"HPERSIST", b"HTTL"):
            return b"*1\r\n:1\r\n"
        if name in (b"HGETEX", b"HGETDEL", b"MODX.MGET"):
            return b"*1\r\n$-1\r\n"
        if name == b"HSETEX":
            return b":1\r\n"
        if name == b"GET":
            return b"$-1\r\n"
        return b"+OK\r\n"

    def stop(self):
        self._stop.set()
        try:
            self.lsock.close()
        except OSError:
            pass
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
