r"""Integration-test harness for corral: a real redis-server, the corral binary, a raw RESP client.

    test --> RespConn ---TCP---> Corral (CORRAL_BIN) ---TCP---> RedisServer (redis-server)
                 \_________________________________________________/  (CORRAL_TARGET=redis)

Everything binds to 127.0.0.1 only. Every wait is bounded (deadline loops, socket timeouts):
a hung proxy must fail a test, never hang the suite. Processes started here are stopped by
their own pid in __exit__/close(), never by name.

Only the Python standard library (plus Debian's python3-yaml) is used, so this runs under
/usr/bin/python3 with Debian's pytest.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from typing import Any, Callable, Iterable, Optional

# The repository root is two levels above this file (tests/support/harness.py); the debug
# preset's binary there is the default, so each checkout (or worktree) tests its own build.
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_CORRAL_BIN = os.path.join(REPO_ROOT, "build", "debug", "cmd", "corral", "corral")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"


# ---------------------------------------------------------------------------------------------
# small utilities


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (bind(0), read, close)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def wait_until(cond: Callable[[], Any], timeout: float, interval: float = 0.02,
               what: str = "condition") -> Any:
    """Polls cond() until it returns a truthy value; returns it. Raises AssertionError at the
    deadline with the last value / exception, so a failure says what was being waited for."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = cond()
            if last:
                return last
        except Exception as e:  # the condition may fail while the thing starts up
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")
        time.sleep(interval)


def corral_bin() -> str:
    return os.environ.get("CORRAL_BIN") or DEFAULT_CORRAL_BIN


def target_mode() -> str:
    """'corral' (default) or 'redis' (CORRAL_TARGET=redis: tests that do not depend on corral
    run straight against redis-server, which proves the tests themselves right)."""
    mode = os.environ.get("CORRAL_TARGET", "corral").strip().lower()
    if mode not in ("corral", "redis"):
        raise ValueError(f"CORRAL_TARGET must be 'corral' or 'redis', got {mode!r}")
    return mode


def upstream_mode() -> str:
    """'single' (default) or 'cluster' (CORRAL_UPSTREAM=cluster: the redis_server fixture is a
    Redis Cluster, tests/support/cluster_upstream.py, and corral_config() of its port writes
    upstream.cluster; single-node tests are skipped with their reason, see conftest.py)."""
    mode = os.environ.get("CORRAL_UPSTREAM", "single").strip().lower()
    if mode not in ("single", "cluster"):
        raise ValueError(f"CORRAL_UPSTREAM must be 'single' or 'cluster', got {mode!r}")
    return mode


# port -> seeds ("127.0.0.1:port" of every node) of the clusters standing in for a redis-server
# (CORRAL_UPSTREAM=cluster): corral_config() of such a port writes upstream.cluster.
CLUSTER_UPSTREAMS: dict = {}


def tail(path: str, n: int = 40) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-n:])


def connections_received(probe: "RespConn") -> int:
    """Redis's total_connections_received (INFO stats), read on a connection to that Redis."""
    info = probe.cmd("INFO", "stats")
    assert isinstance(info, bytes), info
    for line in info.decode().splitlines():
        if line.startswith("total_connections_received:"):
            return int(line.split(":", 1)[1])
    raise AssertionError("no total_connections_received in INFO stats")


def proc_rss_kib(pid: int, field: str = "VmRSS") -> int:
    """Resident KiB of a process: VmRSS (everything), or RssAnon (its private memory, without
    the pages of the binary and shared libraries it maps)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for pid {pid}")


# ---------------------------------------------------------------------------------------------
# RESP client


class RespError:
    """An error reply (-ERR ...). A value, not an exception, so tests can compare it."""

    __slots__ = ("message",)

    def __init__(self, message: str):
        self.message = message

    def __eq__(self, other):
        return isinstance(other, RespError) and other.message == self.message

    def __hash__(self):
        return hash(("RespError", self.message))

    def startswith(self, prefix: str) -> bool:
        return self.message.startswith(prefix)

    def __repr__(self):
        return f"RespError({self.message!r})"


class _Eof:
    """Sentinel: the server closed the connection."""

    def __repr__(self):
        return "EOF"

    def __bool__(self):
        return False


EOF = _Eof()


class RespTimeout(AssertionError):
    pass


class RespProtocolError(AssertionError):
    pass


class Push(list):
    """A RESP3 push frame (>)."""


def encode_command(*args) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bytes):
            b = a
        elif isinstance(a, (bytearray, memoryview)):
            b = bytes(a)
        elif isinstance(a, int):
            b = str(a).encode()
        else:
            b = str(a).encode()
        out.append(b"$%d\r\n" % len(b))
        out.append(b)
        out.append(b"\r\n")
    return b"".join(out)


class RespConn:
    """A tiny RESP client over one TCP socket with a timeout on every operation.

    read_reply() returns: str for simple strings, bytes for bulk strings, int, list, None (nil),
    RespError for errors, EOF when the peer closed the connection. RESP3 types are decoded too
    (map -> dict, set -> list, double -> float, bool -> bool, push -> Push).
    A timeout raises RespTimeout (an AssertionError) with what was being read.
    """

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0,
                 tls=None, server_hostname: Optional[str] = None):
        """tls: an ssl.SSLContext to speak TLS with (the handshake happens here)."""
        self.port = port
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            try:
                self.sock = tls.wrap_socket(self.sock, server_hostname=server_hostname or host)
            except BaseException:
                self.sock.close()
                raise
        self.sock.settimeout(timeout)
        self.buf = bytearray()
        self.pos = 0
        self.closed_by_peer = False

    # -- lifecycle
    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def settimeout(self, t: float):
        self.timeout = t
        self.sock.settimeout(t)

    # -- writing
    def send_raw(self, data: bytes, chunk: Optional[int] = None):
        if chunk is None:
            self.sock.sendall(data)
            return
        for i in range(0, len(data), chunk):
            self.sock.sendall(data[i:i + chunk])

    def send_cmd(self, *args):
        self.sock.sendall(encode_command(*args))

    def cmd(self, *args):
        self.send_cmd(*args)
        return self.read_reply()

    def pipeline(self, cmds: Iterable[Iterable]) -> list:
        cmds = [tuple(c) for c in cmds]
        self.sock.sendall(b"".join(encode_command(*c) for c in cmds))
        return [self.read_reply() for _ in cmds]

    # -- reading
    def _fill(self) -> bool:
        """Reads more bytes. False on EOF."""
        if self.pos > 65536 and self.pos * 2 > len(self.buf):
            del self.buf[:self.pos]
            self.pos = 0
        try:
            data = self.sock.recv(1 << 20)
        except socket.timeout:
            raise RespTimeout(f"no reply within {self.timeout}s from 127.0.0.1:{self.port} "
                              f"(buffered unread: {bytes(self.buf[self.pos:self.pos + 80])!r})")
        except (ConnectionResetError, ssl.SSLError):
            data = b""  # a TLS peer that closes without close_notify reads as EOF too
        if not data:
            self.closed_by_peer = True
            return False
        self.buf += data
        return True

    def _line(self) -> Optional[bytes]:
        while True:
            i = self.buf.find(b"\r\n", self.pos)
            if i >= 0:
                line = bytes(self.buf[self.pos:i])
                self.pos = i + 2
                return line
            if not self._fill():
                return None

    def _exact(self, n: int) -> Optional[bytes]:
        while len(self.buf) - self.pos < n + 2:
            if not self._fill():
                return None
        data = bytes(self.buf[self.pos:self.pos + n])
        if self.buf[self.pos + n:self.pos + n + 2] != b"\r\n":
            raise RespProtocolError(f"bulk of {n} bytes not followed by CRLF")
        self.pos += n + 2
        return data

    def read_exact_raw(self, n: int) -> Optional[bytes]:
        """n raw bytes (no CRLF expected), or None on EOF."""
        while len(self.buf) - self.pos < n:
            if not self._fill():
                return None
        data = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return data

    def read_reply(self):
        line = self._line()
        if line is None:
            return EOF
        if not line:
            raise RespProtocolError("empty reply line")
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode("utf-8", "replace")
        if t == b"-":
            return RespError(rest.decode("utf-8", "replace"))
        if t == b":":
            return int(rest)
        if t in (b"$", b"="):
            n = int(rest)
            if n < 0:
                return None
            data = self._exact(n)
            if data is None:
                return EOF
            return data[4:] if t == b"=" else data
        if t in (b"*", b"~", b">"):
            n = int(rest)
            if n < 0:
                return None
            items = []
            for _ in range(n):
                v = self.read_reply()
                if v is EOF:
                    return EOF
                items.append(v)
            return Push(items) if t == b">" else items
        if t == b"%":
            n = int(rest)
            d = {}
            for _ in range(n):
                k = self.read_reply()
                v = self.read_reply()
                if k is EOF or v is EOF:
                    return EOF
                d[k if not isinstance(k, list) else tuple(k)] = v
            return d
        if t == b"|":  # attribute: read and drop, then return the real reply
            n = int(rest)
            for _ in range(2 * n):
                if self.read_reply() is EOF:
                    return EOF
            return self.read_reply()
        if t == b"_":
            return None
        if t == b"#":
            return rest == b"t"
        if t == b",":
            return float(rest.decode())
        if t == b"(":
            return int(rest)
        if t == b"!":
            data = self._exact(int(rest))
            return EOF if data is None else RespError(data.decode("utf-8", "replace"))
        raise RespProtocolError(f"unknown reply type in line {line[:80]!r}")

    def expect_eof(self, timeout: float = 2.0) -> bool:
        """True when the peer closes the connection within timeout (after any unread data)."""
        old = self.timeout
        self.settimeout(timeout)
        try:
            while True:
                if len(self.buf) > self.pos:
                    return False
                if not self._fill():
                    return True
        finally:
            self.settimeout(old)


def parse_client_list(raw) -> list:
    """CLIENT LIST / CLIENT INFO text -> one dict per line ({'id': '5', 'addr': ..., ...})."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    out = []
    for line in raw.splitlines():
        fields = {}
        for part in line.split(" "):
            k, sep, v = part.partition("=")
            if sep:
                fields[k] = v
        if fields:
            out.append(fields)
    return out


def try_cmd(conn: "RespConn", *args):
    """conn.cmd(*args), but EOF when the peer already closed the connection (a send on a closed
    socket raises): for tests in which closing the connection is an acceptable answer."""
    try:
        conn.send_cmd(*args)
    except OSError:
        return EOF
    return conn.read_reply()


# ---------------------------------------------------------------------------------------------
# redis-server


class RedisServer:
    """A throwaway redis-server on a free loopback port, persistence off, in its own temp dir.

    tls_certs (a certs.Certs): `port` is a TLS port and the plain port is off (--port 0
    --tls-port PORT, the `server` certificate, clients not asked for one, replication over TLS);
    client(), cmd() and the start-up PING speak TLS, trusting the `ca`."""

    def __init__(self, port: Optional[int] = None, replicaof: Optional[int] = None,
                 password: Optional[str] = None, extra_args: Optional[list] = None,
                 start: bool = True, tls_certs=None):
        self.port = port or free_port()
        self.replicaof = replicaof
        self.password = password
        self.extra_args = list(extra_args or [])
        self.tls_certs = tls_certs
        self.tls_context: Optional[ssl.SSLContext] = None
        if tls_certs is not None:
            self.tls_context = ssl.create_default_context(cafile=tls_certs.path("ca"))
        self.dir = tempfile.mkdtemp(prefix="corral-it-redis-")
        self.log_path = os.path.join(self.dir, "redis.log")
        self.proc: Optional[subprocess.Popen] = None
        self._log = None
        if start:
            self.start()

    def argv(self) -> list:
        a = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--daemonize", "no", "--dir", self.dir,
             "--enable-debug-command", "yes", "--logfile", "",
             "--repl-diskless-sync-delay", "0"]
        if self.tls_certs is not None:
            c = self.tls_certs
            a[2] = "0"
            a += ["--tls-port", str(self.port), "--tls-cert-file", c.path("server"),
                  "--tls-key-file", c.path("server", "key"), "--tls-ca-cert-file", c.path("ca"),
                  "--tls-auth-clients", "no", "--tls-replication", "yes"]
        if self.replicaof:
            a += ["--replicaof", "127.0.0.1", str(self.replicaof)]
        if self.password:
            a += ["--requirepass", self.password]
            if self.replicaof:
                a += ["--masterauth", self.password]
        return a + self.extra_args

    def start(self, timeout: float = 10.0):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode} on port "
                                     f"{self.port}:\n{tail(self.log_path)}")
            try:
                with self.client(timeout=1.0) as c:
                    last = c.cmd("PING")
                    if last == "PONG":
                        return
            except OSError as e:
                last = e
            time.sleep(0.02)
        raise AssertionError(f"redis-server on port {self.port} not answering PING after "
                             f"{timeout}s (last: {last!r}):\n{tail(self.log_path)}")

    def client(self, timeout: float = 5.0) -> RespConn:
        c = RespConn(self.port, timeout=timeout, tls=self.tls_context)
        if self.password:
            r = c.cmd("AUTH", self.password)
            assert r == "OK", r
        return c

    def cmd(self, *args):
        with self.client() as c:
            return c.cmd(*args)

    def client_list(self) -> list:
        """CLIENT LIST of this server, parsed (the connection asking is in it too)."""
        return parse_client_list(self.cmd("CLIENT", "LIST"))

    def kill_client(self, fields: dict):
        """CLIENT KILL ID of one entry of client_list(); Redis's reply (1: killed)."""
        return self.cmd("CLIENT", "KILL", "ID", fields["id"])

    def ports(self) -> list:
        """The ports corral may connect to for this upstream: this one (a cluster has more)."""
        return [self.port]

    def info(self, section: str = "") -> dict:
        raw = self.cmd("INFO", section) if section else self.cmd("INFO")
        assert isinstance(raw, bytes), raw
        out = {}
        for line in raw.decode().splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out

    def wait_link_up(self, timeout: float = 10.0):
        wait_until(lambda: self.info("replication").get("master_link_status") == "up",
                   timeout, what=f"replica on {self.port} master_link_status:up")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _wait(self, timeout: float):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        if self._log:
            self._log.close()
            self._log = None

    def stop(self, timeout: float = 10.0):
        if self.running():
            self.proc.terminate()
            self._wait(timeout)

    def kill(self):
        """SIGKILL: the upstream vanishes without a goodbye."""
        if self.running():
            self.proc.kill()
            self._wait(5.0)

    def restart(self, timeout: float = 10.0):
        self.stop()
        self.start(timeout=timeout)

    def close(self):
        if self.proc is not None:
            self._dump_commandstats()
            self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _dump_commandstats(self):
        """With CORRAL_IT_CMDSTATS=DIR, keep this server's INFO commandstats (which commands the
        tests made Redis run) in DIR, for tests/integration/commands_exercised.py."""
        out_dir = os.environ.get("CORRAL_IT_CMDSTATS")
        if not out_dir or not self.running():
            return
        try:
            stats = self.cmd("INFO", "commandstats")
        except Exception:  # noqa: BLE001 - a server that cannot answer has nothing to add
            return
        os.makedirs(out_dir, exist_ok=True)
        path = os.path.join(out_dir, f"{os.getpid()}-{self.port}-{time.monotonic_ns()}.txt")
        with open(path, "wb") as f:
            f.write(stats if isinstance(stats, bytes) else str(stats).encode())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------------------------------------
# corral


def _yaml_scalar(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    s = str(v)
    if re.fullmatch(r"[A-Za-z0-9_./:@\-]+", s) and not re.fullmatch(r"[0-9.]+", s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _yaml_flow(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_yaml_flow(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_yaml_flow(x) for x in v) + "]"
    return _yaml_scalar(v)


def to_yaml(d: Any, indent: int = 0) -> str:
    """A deliberately plain YAML emitter (block maps; lists in flow style)."""
    pad = "  " * indent
    lines = []
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append(f"{pad}{k}:")
            lines.append(to_yaml(v, indent + 1))
        elif isinstance(v, (list, tuple)):
            lines.append(f"{pad}{k}: {_yaml_flow(v)}")
        else:
            lines.append(f"{pad}{k}: {_yaml_scalar(v)}")
    return "\n".join(lines)


def read_ready_file(path: str) -> Optional[dict]:
    """corral's --ready-file once complete: {"listen": [ports], "admin": port or None, and
    "unix": [paths] when it listens on unix sockets}; None
    while it does not exist or is half written. A bound port of 0 is an error (corral must
    report the port it got)."""
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    if not text.endswith("\n"):
        return None
    out: dict = {"listen": [], "admin": None, "text": text}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "listen" and parts[1].startswith("unix:"):
            out.setdefault("unix", []).append(parts[1][len("unix:"):])
            continue
        if len(parts) == 2 and parts[0] in ("listen", "admin"):
            port = int(parts[1].rsplit(":", 1)[1])
            if port == 0:
                raise AssertionError(f"ready file reports port 0, not the bound port: {text!r}")
            if parts[0] == "listen":
                out["listen"].append(port)
            else:
                out["admin"] = port
    return out


def corral_config(upstream_port: int, **overrides) -> dict:
    """A minimal corral config pointing at 127.0.0.1:upstream_port. Keyword overrides replace
    top-level keys; upstream=..., limits=... dicts are merged into the defaults.
    When upstream_port is a cluster's (CLUSTER_UPSTREAMS), upstream.cluster {seeds} stands
    where upstream.primary would."""
    seeds = CLUSTER_UPSTREAMS.get(upstream_port)
    where = {"cluster": {"seeds": list(seeds)}} if seeds else \
        {"primary": f"127.0.0.1:{upstream_port}"}
    cfg: dict = {
        "listen": ["127.0.0.1:0"],
        "workers": 1,
        "upstream": {
            **where,
            "connect_timeout": "500ms",
            "command_timeout": "2s",
            "pool_size": 1,
            "reconnect_backoff": {"min": "20ms", "max": "200ms"},
        },
        "admin": {"listen": "127.0.0.1:0"},
        "log": {"level": "info"},
        "shutdown_timeout": "5s",
    }
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    return cfg


SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "ThreadSanitizer",
                     "UndefinedBehaviorSanitizer", "runtime error:")


def admin_request(port: int, path: str, headers: Optional[dict] = None,
                  timeout: float = 3.0) -> tuple:
    """(status, {lower-case header: value}, body bytes) of an HTTP/1.0 GET of path on
    127.0.0.1:port (bounded by timeout); status 0 when no HTTP answer came."""
    lines = [f"GET {path} HTTP/1.0", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/"):
        return 0, {}, body
    first, *rest = head.decode("latin-1").split("\r\n")
    hdrs = {}
    for h in rest:
        k, _, v = h.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(first.split(" ", 2)[1]), hdrs, body


class Corral:
    """Runs $CORRAL_BIN with a config written to a temp dir; waits for the ready file.

    Teardown (close/__exit__): when the admin endpoint is on (corral_config() turns it on), the
    corral_clients and corral_pending_requests gauges must drop to 0 (bounded wait); then
    SIGTERM, wait, assert exit code 0 and no sanitizer report on stderr (the stderr tail is put
    in the assertion message)."""

    def __init__(self, config, extra_args: Optional[list] = None, ready_timeout: float = 10.0,
                 expect_clean_exit: bool = True, check_gauges: bool = True):
        self.bin = corral_bin()
        if not (os.path.isfile(self.bin) and os.access(self.bin, os.X_OK)):
            raise AssertionError(f"corral binary not found or not executable: {self.bin} "
                                 "(set CORRAL_BIN, or CORRAL_TARGET=redis for the redis-only "
                                 "tests)")
        self.dir = tempfile.mkdtemp(prefix="corral-it-")
        self.config_path = os.path.join(self.dir, "corral.yaml")
        self.ready_path = os.path.join(self.dir, "ready")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.expect_clean_exit = expect_clean_exit
        self.check_gauges = check_gauges
        self.write_config(config)
        self.expect_admin = isinstance(config, dict) and bool(config.get("admin"))
        self._stderr = open(self.stderr_path, "wb")
        argv = [self.bin, "--config", self.config_path, "--ready-file", self.ready_path]
        argv += list(extra_args or [])
        self.proc = subprocess.Popen(argv, stdout=self._stderr, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        self.exit_code: Optional[int] = None
        self.listen_ports: list = []
        self.admin_port: Optional[int] = None
        try:
            self._wait_ready(ready_timeout)
            if self._stands_for_redis_server(config):
                self.wait_cluster_map(ready_timeout)
        except BaseException:
            self._abort()
            raise

    @staticmethod
    def _stands_for_redis_server(config) -> bool:
        """A config of corral_config() for a cluster in the redis_server fixture's place
        (CORRAL_UPSTREAM=cluster), with the admin endpoint to ask."""
        if isinstance(config, str):  # YAML text written from corral_config() (test_fill.py)
            return "admin:" in config and any(
                f"seeds: [{', '.join(s)}]" in config for s in CLUSTER_UPSTREAMS.values())
        if not isinstance(config, dict) or not config.get("admin"):
            return False
        seeds = (config.get("upstream") or {}).get("cluster", {}).get("seeds")
        return bool(seeds) and any(list(s) == list(seeds) for s in CLUSTER_UPSTREAMS.values())

    def wait_cluster_map(self, timeout: float = 10.0):
        """Until corral has a slot map (corral_cluster_topology_changes_total >= 1): before it,
        fan-out commands are refused, so a test in the redis_server fixture's place would see
        errors a single upstream never gives. Asked on /metrics, so no command is counted."""
        wait_until(lambda: self.metrics().get("corral_cluster_topology_changes_total", 0) >= 1,
                   timeout, interval=0.02, what="corral's first cluster slot map")

    def write_config(self, config):
        text = config if isinstance(config, str) else to_yaml(config) + "\n"
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)  # atomic: a SIGHUP never sees half a file

    def _wait_ready(self, timeout: float):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"corral exited with {self.proc.returncode} before ready:\n"
                                     f"{self.stderr_tail()}")
            ready = read_ready_file(self.ready_path)
            if ready is not None:
                text = ready["text"]
                self.listen_ports = ready["listen"]
                self.admin_port = ready["admin"]
                if not self.listen_ports:
                    raise AssertionError(f"ready file has no 'listen HOST:PORT' line: {text!r}")
                if self.expect_admin and not self.admin_port:
                    raise AssertionError(f"admin is configured but the ready file has no "
                                         f"'admin HOST:PORT' line: {text!r}")
                return
            time.sleep(0.01)
        raise AssertionError(f"corral not ready (no {self.ready_path}) after {timeout}s:\n"
                             f"{self.stderr_tail()}")

    @property
    def port(self) -> int:
        return self.listen_ports[0]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_kib(self, field: str = "VmRSS") -> int:
        return proc_rss_kib(self.proc.pid, field)

    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_exit(self, timeout: float) -> int:
        """Exit code (negative = killed by that signal). AssertionError if still running."""
        try:
            self.exit_code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"corral (pid {self.pid}) still running after {timeout}s:\n"
                                 f"{self.stderr_tail()}")
        return self.exit_code

    def client(self, timeout: float = 5.0) -> RespConn:
        return RespConn(self.port, timeout=timeout)

    def http_get(self, path: str, timeout: float = 3.0) -> tuple:
        """(status, body) of GET path on the admin endpoint (HTTP/1.0, bounded)."""
        assert self.admin_port, "admin endpoint not configured (no 'admin' line in ready file)"
        status, _, body = admin_request(self.admin_port, path, timeout=timeout)
        return status, body.decode("utf-8", "replace")

    def metrics(self) -> dict:
        """Prometheus samples from /metrics: {'name' or 'name{labels}': float}."""
        status, body = self.http_get("/metrics")
        assert status == 200, f"/metrics answered {status}: {body[:200]!r}"
        out = {}
        for line in body.splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            try:
                out[name] = float(value)
            except ValueError:
                pass
        return out

    def check_gauges_zero(self, timeout: float = 5.0):
        """STYLE §5: after a test, no client connections and no pending requests remain."""
        names = ("corral_clients", "corral_pending_requests")
        last = {}

        def zero():
            m = self.metrics()
            last.update({n: m.get(n) for n in names})
            return all(m.get(n) == 0 for n in names)

        try:
            wait_until(zero, timeout, interval=0.05, what="client/pending gauges back to 0")
        except AssertionError as e:
            raise AssertionError(f"after the test: {last} (want 0): {e}")

    def stderr_text(self) -> str:
        try:
            self._stderr.flush()
        except (OSError, ValueError):
            pass
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stderr_tail(self, n: int = 40) -> str:
        return f"--- corral stderr ({self.stderr_path}, last {n} lines) ---\n" + \
            tail(self.stderr_path, n)

    def check_no_sanitizer_report(self):
        text = self.stderr_text()
        for m in SANITIZER_MARKERS:
            if m in text:
                raise AssertionError(f"corral stderr contains a sanitizer report ({m}):\n"
                                     f"{self.stderr_tail(80)}")

    def _abort(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        self._stderr.close()

    def close(self):
        """SIGTERM, then the exit code must be 0 and stderr must be free of sanitizer reports."""
        gauge_error = None
        try:
            if self.proc.poll() is None and self.admin_port and self.check_gauges:
                try:
                    self.check_gauges_zero()
                except (AssertionError, OSError) as e:
                    gauge_error = e
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=5)
                    raise AssertionError(f"corral did not exit within 15s of SIGTERM:\n"
                                         f"{self.stderr_tail()}")
            rc = self.proc.returncode
            if self.expect_clean_exit:
                assert rc == 0, f"corral exited with {rc} (expected 0):\n{self.stderr_tail()}"
            self.check_no_sanitizer_report()
            if gauge_error is not None:
                raise AssertionError(f"gauge check failed: {gauge_error}")
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
            try:
                self._stderr.close()
            except OSError:
                pass
            if not os.environ.get("CORRAL_KEEP_TMP"):
                shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_corral_cli(args: list, timeout: float = 10.0) -> subprocess.CompletedProcess:
    """Runs the corral binary with args (e.g. --version, --check-config FILE), bounded."""
    b = corral_bin()
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        raise AssertionError(f"corral binary not found or not executable: {b}")
    return subprocess.run([b] + list(args), capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
