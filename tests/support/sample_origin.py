#!/usr/bin/env python3
r"""A small HTTP origin for corral's fills: for integration tests (import it) and for demos.

    corral --GET /v1/users/42--> sample_origin --> 200 {"id": "42", "n": 1, "at": 1700000000.1}
           --GET /v1/users/missing-7-->          404
           --GET /v1/users/fail-3-->             503

Routes (GET unless noted):
    /v1/docs/<id>         200 with a fixed body of doc_bytes (4096) bytes, ETag "<id>-1" and
                          Cache-Control: max-age=<doc_max_age> (2); a request whose
                          If-None-Match names that ETag gets 304 without a body (the
                          conditional refreshes of ttl.from_origin). Counted like the rest.
    /v1/<anything>/<id>   200 JSON {"id": <id>, "n": <calls of this path>, "at": <unix time>};
                          ids starting with "missing" -> 404, with "fail" -> 503.
                          Every request here is counted (per path, as sent: still
                          percent-encoded), then sleeps latency_ms, then may fail (503) when
                          fail is on or a draw under fail_rate says so.
    /_stats               {"calls": total, "paths": {path: n}, "bytes": body bytes of
                          the /v1 routes' 200 answers, "not_modified": 304s sent, "config": {...}}
    /_reset   (GET, POST) zero the counts
    /_config?latency_ms=50&fail=0|1&fail_rate=0.1&doc_bytes=4096&doc_max_age=2
                          change behaviour at runtime; returns it
    anything else         404, not counted

By hand:
    python3 tests/support/sample_origin.py --port 8080 [--latency-ms 50] [--fail-rate 0]

In a test:
    with SampleOrigin() as origin:           # 127.0.0.1, a free port: origin.port, origin.url
        ... point corral at origin.url ...
        assert origin.calls("/v1/users/42") == 1
        origin.set(latency_ms=500)           # make it slow; origin.set(fail=True): make it fail

Standard library only (runs under Debian's /usr/bin/python3). HTTP/1.1 with keep-alive, as a
real origin, one daemon thread per connection; stop() closes open connections too, so it is
bounded and clients see the origin go away.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Optional
from urllib.parse import parse_qs, unquote

__all__ = ["SampleOrigin"]


class _State:
    """Counts and behaviour, shared by every handler thread (guarded by lock)."""

    def __init__(self, latency_ms: float, fail_rate: float) -> None:
        self.lock = threading.Lock()
        self.total = 0
        self.paths: Dict[str, int] = {}
        self.latency_ms = float(latency_ms)
        self.fail = False
        self.fail_rate = float(fail_rate)
        self.bytes = 0
        self.not_modified = 0
        self.doc_bytes = 4096
        self.doc_max_age = 2

    def sent(self, n: int, not_modified: bool = False) -> None:
        with self.lock:
            self.bytes += n
            self.not_modified += 1 if not_modified else 0

    def count(self, path: str) -> int:
        with self.lock:
            self.total += 1
            n = self.paths.get(path, 0) + 1
            self.paths[path] = n
            return n

    def config(self) -> Dict[str, Any]:
        with self.lock:
            return {"latency_ms": self.latency_ms, "fail": self.fail, "fail_rate": self.fail_rate,
                    "doc_bytes": self.doc_bytes, "doc_max_age": self.doc_max_age}

    def stats(self) -> Dict[str, Any]:
        with self.lock:
            return {"calls": self.total, "paths": dict(self.paths), "bytes": self.bytes,
                    "not_modified": self.not_modified}

    def reset(self) -> None:
        with self.lock:
            self.total = 0
            self.paths.clear()
            self.bytes = 0
            self.not_modified = 0

    def set(self, latency_ms: Optional[float] = None, fail: Optional[bool] = None,
            fail_rate: Optional[float] = None, doc_bytes: Optional[int] = None,
            doc_max_age: Optional[int] = None) -> None:
        with self.lock:
            if doc_bytes is not None:
                self.doc_bytes = max(0, int(doc_bytes))
            if doc_max_age is not None:
                self.doc_max_age = max(0, int(doc_max_age))
            if latency_ms is not None:
                self.latency_ms = max(0.0, float(latency_ms))
            if fail is not None:
                self.fail = bool(fail)
            if fail_rate is not None:
                self.fail_rate = min(1.0, max(0.0, float(fail_rate)))


class _Server(ThreadingHTTPServer):
    daemon_threads = True        # a stuck handler never keeps the process alive
    allow_reuse_address = True   # restart on the same port at once (TIME_WAIT)
    request_queue_size = 1024    # listen backlog: bursts of ~1,000 new connections

    def __init__(self, addr: tuple, state: _State, quiet: bool) -> None:
        self.state = state
        self.quiet = quiet
        self.open_conns: set = set()
        self.conns_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def close_open_connections(self) -> None:
        with self.conns_lock:
            conns = list(self.open_conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive; every reply carries Content-Length
    server_version = "corral-sample-origin/1"
    timeout = 30                    # an idle keep-alive connection frees its thread after this
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.conns_lock:
            self.server.open_conns.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.conns_lock:
                self.server.open_conns.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        if not self.server.quiet:
            super().log_message(format, *args)

    def _reply(self, code: int, body: Any, counted: bool = False) -> None:
        data = (json.dumps(body) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if counted:
            self.server.state.sent(len(data))

    def _doc(self, item: str, cfg: Dict[str, Any]) -> None:
        """/v1/docs/<id>: a body that never changes, with a validator (see the module doc)."""
        etag = f'"{item}-1"'
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Cache-Control", f"max-age={cfg['doc_max_age']}")
            self.end_headers()
            self.server.state.sent(0, not_modified=True)
            return
        data = (item.encode() * (cfg["doc_bytes"] // max(1, len(item)) + 1))[:cfg["doc_bytes"]]
        self.send_response(200)
        self.send_header("ETag", etag)
        self.send_header("Cache-Control", f"max-age={cfg['doc_max_age']}")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.server.state.sent(len(data))

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path, _, query = self.path.partition("?")
        state = self.server.state
        if path == "/_stats":
            return self._reply(200, {**state.stats(), "config": state.config()})
        if path == "/_reset":
            state.reset()
            return self._reply(200, {"ok": True})
        if path == "/_config":
            q = parse_qs(query)
            try:
                state.set(latency_ms=float(q["latency_ms"][0]) if "latency_ms" in q else None,
                          fail=q["fail"][0] not in ("0", "false", "") if "fail" in q else None,
                          fail_rate=float(q["fail_rate"][0]) if "fail_rate" in q else None,
                          doc_bytes=int(q["doc_bytes"][0]) if "doc_bytes" in q else None,
                          doc_max_age=int(q["doc_max_age"][0]) if "doc_max_age" in q else None)
            except ValueError as e:
                return self._reply(400, {"error": str(e)})
            return self._reply(200, state.config())

        parts = path.split("/")  # "", "v1", <anything...>, <id>
        if len(parts) < 4 or parts[1] != "v1" or parts[-1] == "":
            return self._reply(404, {"error": "no such route", "path": path})
        n = state.count(path)
        cfg = state.config()
        if cfg["latency_ms"] > 0:
            time.sleep(cfg["latency_ms"] / 1000.0)
        item = unquote(parts[-1])
        if parts[2] == "docs" and len(parts) == 4:
            return self._doc(item, cfg)
        if item.startswith("missing"):
            return self._reply(404, {"error": "not found", "id": item})
        if item.startswith("fail") or cfg["fail"] or (
                cfg["fail_rate"] > 0 and random.random() < cfg["fail_rate"]):
            return self._reply(503, {"error": "unavailable", "id": item})
        return self._reply(200, {"id": item, "n": n, "at": round(time.time(), 3)}, counted=True)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.partition("?")[0] == "/_reset":
            self.server.state.reset()
            return self._reply(200, {"ok": True})
        return self._reply(405, {"error": "only GET, and POST /_reset"})


class SampleOrigin:
    """The origin in a background thread. Binds host:port (port 0: a free one, see .port).

    Use as a context manager, or start()/stop(). stop() is bounded: it stops accepting, closes
    open connections and waits at most `timeout` seconds for the server thread.
    """

    def __init__(self, port: int = 0, latency_ms: float = 0, fail_rate: float = 0.0,
                 host: str = "127.0.0.1", quiet: bool = True,
                 tls_cert: Optional[str] = None, tls_key: Optional[str] = None) -> None:
        """tls_cert, tls_key: serve https with this certificate."""
        self.host = host
        self._tls = (tls_cert, tls_key) if tls_cert else None
        self.port = port
        self._state = _State(latency_ms, fail_rate)
        self._quiet = quiet
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    @property
    def url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self.host}:{self.port}"

    def start(self) -> "SampleOrigin":
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), self._state, self._quiet)
        self.port = self._server.server_address[1]
        if self._tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self._tls)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"sample-origin:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        # shutdown() waits for serve_forever to notice; it is running (started in start()),
        # and polls every 50 ms.
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout)

    def __enter__(self) -> "SampleOrigin":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def calls(self, path: Optional[str] = None) -> int:
        """Requests counted so far: all of them, or those of one path (as sent)."""
        stats = self._state.stats()
        return stats["calls"] if path is None else stats["paths"].get(path, 0)

    def stats(self) -> Dict[str, Any]:
        return self._state.stats()

    def reset(self) -> None:
        self._state.reset()

    def set(self, latency_ms: Optional[float] = None, fail: Optional[bool] = None,
            fail_rate: Optional[float] = None) -> None:
        """Changes behaviour for the next requests; None leaves a setting as it is."""
        self._state.set(latency_ms=latency_ms, fail=fail, fail_rate=fail_rate)


def main(argv: Optional[list] = None) -> int:
    p = argparse.ArgumentParser(description="Sample HTTP origin for corral fills.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    p.add_argument("--latency-ms", type=float, default=0, help="sleep before each reply")
    p.add_argument("--fail-rate", type=float, default=0, help="share of 503s, 0..1")
    p.add_argument("--quiet", action="store_true", help="no access log")
    args = p.parse_args(argv)

    origin = SampleOrigin(port=args.port, latency_ms=args.latency_ms, fail_rate=args.fail_rate,
                          host=args.host, quiet=args.quiet).start()
    print(f"sample origin listening on {origin.url} "
          f"(latency {args.latency_ms:g} ms, fail rate {args.fail_rate:g})", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    origin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
