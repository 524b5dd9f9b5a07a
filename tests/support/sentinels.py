r"""Redis Sentinel for the integration tests: a set of `redis-server FILE --sentinel` processes
watching a primary, and a subscriber that timestamps what they announce.

    SentinelSet(primary_port) --generated sentinel.conf each--> 3 sentinels on free loopback ports
    EventWatcher(sentinel ports) --SUBSCRIBE on every sentinel--> [(monotonic, port, channel, text)]

Everything binds to 127.0.0.1; every wait has a deadline; processes are stopped by their own pid.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from typing import Optional

from harness import REDIS_SERVER, RespConn, encode_command, free_port, tail, wait_until

MASTER = "mymaster"


class SentinelSet:
    """n sentinels monitoring 127.0.0.1:primary_port as MASTER with quorum 2.

    down_after_ms and failover_timeout_ms go into each config file (Sentinel's defaults are 30 s
    and 180 s; tests use about a second so a failover takes seconds)."""

    def __init__(self, primary_port: int, n: int = 3, down_after_ms: int = 1000,
                 failover_timeout_ms: int = 3000):
        self.primary_port = primary_port
        self.dir = tempfile.mkdtemp(prefix="corral-it-sentinel-")
        self.ports = [free_port() for _ in range(n)]
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.procs: list = [None] * n
        self._logs: list = [None] * n
        try:
            for i in range(n):
                self._write_config(i)
                self.start(i)
        except BaseException:
            self.close()
            raise

    def _conf(self, i: int) -> str:
        return os.path.join(self.dir, f"sentinel-{self.ports[i]}.conf")

    def log_path(self, i: int) -> str:
        return os.path.join(self.dir, f"sentinel-{self.ports[i]}.log")

    def _write_config(self, i: int):
        with open(self._conf(i), "w") as f:
            f.write(f"port {self.ports[i]}\n"
                    "bind 127.0.0.1\n"
                    "daemonize no\n"
                    f"dir {self.dir}\n"
                    f"logfile {self.log_path(i)}\n"
                    f"sentinel monitor {MASTER} 127.0.0.1 {self.primary_port} 2\n"
                    f"sentinel down-after-milliseconds {MASTER} {self.down_after_ms}\n"
                    f"sentinel failover-timeout {MASTER} {self.failover_timeout_ms}\n"
                    f"sentinel parallel-syncs {MASTER} 1\n")

    def addresses(self) -> list:
        return [f"127.0.0.1:{p}" for p in self.ports]

    def start(self, i: int, timeout: float = 10.0):
        """Starts sentinel i (again: Sentinel rewrote its config file with what it learned)."""
        assert self.procs[i] is None or self.procs[i].poll() is not None, "already running"
        self._logs[i] = open(self.log_path(i) + ".out", "ab")
        self.procs[i] = subprocess.Popen([REDIS_SERVER, self._conf(i), "--sentinel"],
                                         stdout=self._logs[i], stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)

        def pong():
            if self.procs[i].poll() is not None:
                raise AssertionError(f"sentinel exited:\n{tail(self.log_path(i))}")
            with RespConn(self.ports[i], timeout=1.0) as c:
                return c.cmd("PING") == "PONG"

        wait_until(pong, timeout, what=f"sentinel {self.ports[i]} answering PING")

    def kill(self, i: int):
        p = self.procs[i]
        if p is not None and p.poll() is None:
            p.kill()
            p.wait(timeout=5)
        if self._logs[i] is not None:
            self._logs[i].close()
            self._logs[i] = None

    def cmd(self, i: int, *args):
        with RespConn(self.ports[i], timeout=3.0) as c:
            return c.cmd(*args)

    def master_info(self, i: int) -> dict:
        raw = self.cmd(i, "SENTINEL", "MASTER", MASTER)
        assert isinstance(raw, list), raw
        return {raw[k].decode(): raw[k + 1].decode() for k in range(0, len(raw), 2)}

    def wait_settled(self, replicas: int, timeout: float = 15.0):
        """Until every sentinel knows the others (a failover needs a quorum and an election) and
        the replicas, with the replicas' links up."""
        n = len(self.ports)

        def settled():
            for i in range(n):
                m = self.master_info(i)
                if int(m["num-other-sentinels"]) != n - 1 or int(m["num-slaves"]) < replicas:
                    return False
                raw = self.cmd(i, "SENTINEL", "REPLICAS", MASTER)
                ok = 0
                for r in raw:
                    f = {r[k].decode(): r[k + 1].decode() for k in range(0, len(r), 2)}
                    ok += f.get("master-link-status") == "ok" and "s_down" not in f["flags"]
                if ok < replicas:
                    return False
            return True

        wait_until(settled, timeout, interval=0.1, what="sentinels know each other and replicas")

    def primary(self, i: int = 0) -> int:
        addr = self.cmd(i, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
        return int(addr[1])

    def close(self):
        for i in range(len(self.ports)):
            self.kill(i)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _SocketConn(RespConn):
    """RespConn's reader over a socket that is already connected."""

    def __init__(self, sock: socket.socket, port: int, timeout: float = 60.0):
        self.port, self.timeout, self.sock = port, timeout, sock
        self.buf, self.pos, self.closed_by_peer = bytearray(), 0, False
        sock.settimeout(timeout)


class EventWatcher:
    """Subscribes to `channels` on every sentinel in `ports` and records each message as
    (time.monotonic(), time.time(), port, channel, payload). first(channel) is the earliest
    time any of them announced it. Reader threads end with close(), which shuts the sockets."""

    CHANNELS = ("+switch-master", "+try-failover", "+sdown", "+odown", "+new-epoch",
                "+vote-for-leader", "+elected-leader", "+selected-slave", "+promoted-slave",
                "+failover-end", "-failover-abort-not-elected", "-failover-abort-no-good-slave",
                "-failover-abort-slave-timeout")

    def __init__(self, ports: list, channels=CHANNELS):
        self.events: list = []
        self._confirmed = 0
        self._lock = threading.Lock()
        self._socks = []
        self._threads = []
        for p in ports:
            s = socket.create_connection(("127.0.0.1", p), timeout=5)
            s.sendall(encode_command("SUBSCRIBE", *channels))
            self._socks.append(s)
        for p, s in zip(ports, self._socks):
            t = threading.Thread(target=self._read, args=(p, _SocketConn(s, p)), daemon=True)
            t.start()
            self._threads.append(t)
        # every subscription confirmed before the test goes on
        wait_until(lambda: self._confirmed >= len(ports) * len(channels), 5,
                   what="test subscriber confirmed on every sentinel")

    def _read(self, port: int, conn: RespConn):
        while True:
            try:
                msg = conn.read_reply()
            except Exception:  # noqa: BLE001 - closed by close(), or the sentinel died
                return
            if not isinstance(msg, list) or len(msg) != 3:
                return
            now, unix = time.monotonic(), time.time()
            with self._lock:
                if msg[0] == b"subscribe":
                    self._confirmed += 1
                elif msg[0] == b"message":
                    self.events.append((now, unix, port, msg[1].decode(), msg[2].decode()))

    def first(self, channel: str, unix: bool = False) -> Optional[float]:
        with self._lock:
            ts = [e[1 if unix else 0] for e in self.events if e[3] == channel]
        return min(ts) if ts else None

    def wait_for(self, channel: str, timeout: float, sentinels: "SentinelSet" = None) -> float:
        """The first time a sentinel announced channel; on timeout the assertion lists what they
        did announce (and, given the set, the tail of each sentinel's log)."""
        try:
            return wait_until(lambda: self.first(channel), timeout, interval=0.01,
                              what=f"a sentinel announcing {channel}")
        except AssertionError as e:
            with self._lock:
                seen = "\n".join(f"{t:.3f} {p} {c} {m}" for t, _, p, c, m in self.events)
            logs = "" if sentinels is None else "\n".join(
                f"--- sentinel {p} ---\n{tail(sentinels.log_path(i), 25)}"
                for i, p in enumerate(sentinels.ports))
            raise AssertionError(f"{e}\nannounced:\n{seen}\n{logs}") from None

    def close(self):
        for s in self._socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in self._threads:
            t.join(timeout=2)


class FakeSentinel:
    """A stand-in sentinel on a free loopback port: it names 127.0.0.1:<primary_port> (set the
    attribute to change it; config_epoch goes with it), reports no replicas, confirms
    subscriptions and answers PING. `asked` holds the time.monotonic() of each
    GET-MASTER-ADDR-BY-NAME. For what real sentinels cannot be made to do on cue, such as
    naming a replica as the primary."""

    def __init__(self, primary_port: int):
        self.primary_port = primary_port
        self.config_epoch = 1
        self.asked: list = []
        self.subscriptions = 0     # SUBSCRIBE commands received
        self.mute_pings = False    # True: a PING on a subscription is never answered
        self._lock = threading.Lock()
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(16)
        self.port = self._srv.getsockname()[1]
        self._conns: list = []
        self._subscribers: list = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def name(self, primary_port: int, announce: bool = False):
        """Names another primary from now on; announce: also publish +switch-master to the
        subscribers, as a real sentinel does at the end of a failover."""
        with self._lock:
            old, self.primary_port = self.primary_port, primary_port
            self.config_epoch += 1
            subscribers = list(self._subscribers)
        if not announce:
            return
        text = f"{MASTER} 127.0.0.1 {old} 127.0.0.1 {primary_port}".encode()
        msg = b"*3\r\n$7\r\nmessage\r\n$14\r\n+switch-master\r\n$%d\r\n%s\r\n" % (len(text),
                                                                                       text)
        for s in subscribers:
            try:
                s.sendall(msg)
            except OSError:
                pass

    def _accept(self):
        while not self._closed:
            try:
                s, _ = self._srv.accept()
            except OSError:
                return
            with self._lock:
                self._conns.append(s)
            threading.Thread(target=self._serve, args=(s,), daemon=True).start()

    def _answer(self, req: list) -> bytes:
        words = [a.decode() if isinstance(a, bytes) else str(a) for a in req]
        cmd = [w.upper() for w in words[:2]]
        with self._lock:
            port, epoch = self.primary_port, self.config_epoch
        if cmd[:1] in (["PING"], ["AUTH"]):
            return b"+PONG\r\n" if cmd[0] == "PING" else b"+OK\r\n"
        if cmd == ["SENTINEL", "GET-MASTER-ADDR-BY-NAME"]:
            with self._lock:
                self.asked.append(time.monotonic())
            return encode_command("127.0.0.1", port)
        if cmd == ["SENTINEL", "MASTER"]:
            return encode_command("name", MASTER, "ip", "127.0.0.1", "port", port, "flags",
                                  "master", "config-epoch", epoch, "failover-timeout", 5000)
        if cmd == ["SENTINEL", "REPLICAS"]:
            return b"*0\r\n"
        if cmd[:1] == ["SUBSCRIBE"]:
            out = b""
            for i, ch in enumerate(req[1:]):
                out += b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:%d\r\n" % (len(ch), ch, i + 1)
            return out
        return b"-ERR unknown command\r\n"

    def _serve(self, s: socket.socket):
        conn = _SocketConn(s, self.port)
        subscribed = False
        while True:
            try:
                req = conn.read_reply()
            except Exception:  # noqa: BLE001 - the peer went away, or close()
                return
            if not isinstance(req, list) or not req:
                return
            if subscribed and req[0].upper() == b"PING":
                if self.mute_pings:
                    continue
                out = encode_command("pong", "")
            else:
                out = self._answer(req)
            try:
                s.sendall(out)
            except OSError:
                return
            if not subscribed and req[0].upper() == b"SUBSCRIBE":
                subscribed = True
                with self._lock:
                    self._subscribers.append(s)
                    self.subscriptions += 1

    def close(self):
        self._closed = True
        self._srv.close()
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
