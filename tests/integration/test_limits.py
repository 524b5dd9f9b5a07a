"""Test 8: hostile or greedy clients: malformed RESP, oversize requests, max_clients, and a
client that pipelines without reading (memory must stay bounded by configuration).

The malformed-RESP tests are Redis behaviour and also run with CORRAL_TARGET=redis; the rest are
corral-only. (Against redis-server, which has no output limit for normal clients, the
pipelining-without-reading flood grows redis to ~400 MB: the bound below would catch a proxy
that buffers like that.)
"""

import socket
import threading
import time

import pytest

from harness import EOF, RespConn, RespError, corral_config, encode_command, wait_until


@pytest.mark.parametrize("garbage", [
    b"*abc\r\n",
    b"*1\r\n+x\r\n",
    b"*1\r\n$abc\r\n",
    b"*2\r\n$3\r\nGET\r\n$-5\r\n",
])
def test_malformed_resp_gets_protocol_error_then_close(target, garbage):
    with target.client(timeout=5.0) as c:
        assert c.cmd("PING") == "PONG"
        c.send_raw(garbage)
        r = c.read_reply()
        assert isinstance(r, RespError) and r.startswith("ERR Protocol error"), r
        assert c.read_reply() is EOF
    # corral itself is fine
    with target.client() as c:
        assert c.cmd("PING") == "PONG"


def test_malformed_after_good_requests_keeps_earlier_replies(target):
    with target.client() as c:
        c.send_raw(encode_command("SET", "pm", "1") + encode_command("GET", "pm") + b"*abc\r\n")
        assert c.read_reply() == "OK"
        assert c.read_reply() == b"1"
        r = c.read_reply()
        assert isinstance(r, RespError) and r.startswith("ERR Protocol error"), r
        assert c.read_reply() is EOF


def test_oversize_request_is_refused_and_connection_stays(redis_server, corral_factory):
    c = corral_factory(corral_config(redis_server.port, limits={"max_request_bytes": "1MiB"}))
    big = b"x" * (2 << 20)
    with c.client(timeout=10.0) as cl:
        assert cl.cmd("SET", "small", b"y" * 1000) == "OK"
        cl.send_raw(encode_command("SET", "too-big", big))
        r = cl.read_reply()
        assert r == RespError("ERR corral: request too large"), r
        assert cl.cmd("PING") == "PONG"
        assert cl.cmd("GET", "small") == b"y" * 1000
        assert cl.cmd("EXISTS", "too-big") == 0
        # just under the limit still goes through
        assert cl.cmd("SET", "fits", b"z" * (1000 * 1000)) == "OK"
        assert cl.cmd("STRLEN", "fits") == 1000 * 1000
    assert redis_server.cmd("EXISTS", "too-big") == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_max_clients(redis_server, corral_factory, workers):
    # max_clients is per process (config/config.h), however many workers share the port
    c = corral_factory(corral_config(redis_server.port, workers=workers,
                                     limits={"max_clients": 5}))
    conns = []
    try:
        for _ in range(5):
            cl = c.client(timeout=5.0)
            conns.append(cl)
            assert cl.cmd("PING") == "PONG"
        sixth = RespConn(c.port, timeout=5.0)
        try:
            r = sixth.read_reply()  # the refusal arrives unprompted, like Redis
            assert r == RespError("ERR max number of clients reached"), r
            assert sixth.read_reply() is EOF
        finally:
            sixth.close()
        # the five are unaffected
        for cl in conns:
            assert cl.cmd("PING") == "PONG"
        conns.pop().close()

        def new_one_works():
            with RespConn(c.port, timeout=5.0) as cl:
                return cl.cmd("PING") == "PONG"

        wait_until(new_one_works, 5, interval=0.05, what="a connection after one was closed")
    finally:
        for cl in conns:
            cl.close()


VALUE_SIZE = 10 * 1024
MAX_GETS = 100_000          # 1 GB of replies if nobody pushed back
SEND_PHASE_S = 5.0


def flood_without_reading(port, value, rss_fn, max_gets=MAX_GETS):
    """Sends up to max_gets pipelined GETs of key 'bigv' (holding value) without reading, for at
    most SEND_PHASE_S, sampling rss_fn(); then reads every reply back and checks each byte.
    Returns (gets_sent, max_rss_kib, rss_samples)."""
    req = encode_command("GET", "bigv")
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        s.settimeout(0.2)
        chunk = req * 1000
        total_len = len(req) * max_gets
        sent = 0
        max_rss = rss_fn()
        t0 = time.monotonic()
        blocked_since = None
        while sent < total_len and time.monotonic() - t0 < SEND_PHASE_S:
            max_rss = max(max_rss, rss_fn())
            off = sent % len(chunk)
            try:
                sent += s.send(chunk[off:off + min(len(chunk) - off, total_len - sent)])
                blocked_since = None
            except socket.timeout:
                # we are pushed back: keep sampling a little longer, then stop sending
                blocked_since = blocked_since or time.monotonic()
                if time.monotonic() - blocked_since > 1.5:
                    break
        # let whatever corral is doing with what it already read settle, sampling as we go
        settle = time.monotonic() + 1.0
        while time.monotonic() < settle:
            max_rss = max(max_rss, rss_fn())
            time.sleep(0.05)

        # read everything back; finish the partial command from another thread meanwhile
        n_full, rem = divmod(sent, len(req))
        expected = n_full + (1 if rem else 0)
        send_err = []

        def finish():
            try:
                s.settimeout(30)
                if rem:
                    s.sendall(req[rem:])
                s.sendall(encode_command("PING"))
            except OSError as e:
                send_err.append(e)

        th = threading.Thread(target=finish, daemon=True)
        th.start()
        s.settimeout(10)
        reply = b"$%d\r\n" % VALUE_SIZE + value + b"\r\n"
        pattern = reply * ((1 << 20) // len(reply) + 2)
        body = len(reply) * expected
        got = 0
        while got < body:
            data = s.recv(min(1 << 20, body - got))
            assert data, f"EOF after {got} of {body} reply bytes ({expected} replies)"
            off = got % len(reply)
            if pattern[off:off + len(data)] != data:
                raise AssertionError(f"reply stream differs within bytes {got}..{got + len(data)}"
                                     f" (reply #{got // len(reply)})")
            got += len(data)
        tail_bytes = b""
        while len(tail_bytes) < 7:
            data = s.recv(7 - len(tail_bytes))
            assert data, "EOF before the final PONG"
            tail_bytes += data
        assert tail_bytes == b"+PONG\r\n", tail_bytes
        th.join(timeout=30)
        assert not send_err, send_err
        return expected, max_rss
    finally:
        s.close()


def test_client_pipelining_without_reading_is_bounded(redis_server, corral_factory):
    # Per client corral may hold max_pending requests in flight and max_output_bytes of replies.
    max_pending, max_output = 64, 1 << 20
    c = corral_factory(corral_config(redis_server.port, limits={
        "max_pending": max_pending, "max_output_bytes": "1MiB"}))
    value = bytes((i * 7) & 0xFF for i in range(VALUE_SIZE))
    assert redis_server.cmd("SET", "bigv", value) == "OK"
    with c.client() as cl:
        assert cl.cmd("GET", "bigv") == value
    rss0 = c.rss_kib()
    # Bound: baseline + output buffer + pending replies (each may sit in an upstream buffer too),
    # x4 slack for allocator behaviour, + 16 MiB. Unbounded buffering would reach ~1 GB.
    bound_kib = rss0 + 4 * (max_output + max_pending * VALUE_SIZE) // 1024 + 16 * 1024
    gets, max_rss = flood_without_reading(c.port, value, c.rss_kib)
    print(f"\nflood: {gets} GETs unread, corral RSS {rss0} KiB -> max {max_rss} KiB "
          f"(bound {bound_kib} KiB)")
    assert gets > 1000, f"only {gets} GETs were sent"
    assert max_rss < bound_kib, (
        f"corral RSS grew to {max_rss} KiB (baseline {rss0} KiB, bound {bound_kib} KiB) while "
        f"a client sent {gets} GETs of a {VALUE_SIZE}-byte value without reading")
    with c.client() as cl:
        assert cl.cmd("PING") == "PONG"
