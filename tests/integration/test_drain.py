"""The SIGTERM drain (shutdown_timeout) seen from clients (issue item 14). corral-only.

During the drain corral finishes what is in flight, but nobody may hang: the listener stops at
once (a new connection is refused, or closed without a reply, promptly), an idle client's next
command is answered or its connection closed promptly, and a client blocked in BLPOP is not kept
past the deadline (corral closes it at once: nothing a blocked pop holds is lost by that).
A GET held in flight by CLIENT PAUSE on Redis keeps the drains below going for ~2.5 s.
"""

import signal
import socket
import time

from harness import EOF, RespConn, corral_config, encode_command, wait_until

DRAIN = 3.0  # shutdown_timeout


def _draining_corral(redis_server, corral_factory):
    """A corral with a request in flight that Redis answers ~2.5 s later (CLIENT PAUSE), so
    that its drain lasts that long."""
    c = corral_factory(corral_config(redis_server.port, shutdown_timeout=f"{int(DRAIN)}s",
                                     upstream={"command_timeout": "5s"}))
    blocker = c.client(timeout=DRAIN + 5)
    assert blocker.cmd("PING") == "PONG"
    with redis_server.client() as direct:  # a cluster upstream: every primary pauses
        assert direct.cmd("CLIENT", "PAUSE", "2500", "ALL") == "OK"
    blocker.send_cmd("GET", "drain:k")
    # The GET must be in flight (read by corral, unanswered) before the drain starts.
    wait_until(lambda: c.metrics().get("corral_pending_requests", 0) >= 1, 5,
               what="the GET in flight in corral")
    return c, blocker


def _new_connection_outcome(port, timeout=1.0) -> str:
    """'refused', 'closed' (EOF/reset without a reply), 'reply:<r>' or 'hang'."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    except (ConnectionRefusedError, ConnectionResetError):
        return "refused"
    except socket.timeout:
        return "hang"
    conn = RespConn.__new__(RespConn)  # wrap the connected socket in the RESP reader
    conn.port, conn.timeout, conn.sock = port, timeout, s
    conn.buf, conn.pos, conn.closed_by_peer = bytearray(), 0, False
    s.settimeout(timeout)
    try:
        s.sendall(encode_command("PING"))
        r = conn.read_reply()
        return "closed" if r is EOF else f"reply:{r!r}"
    except (ConnectionResetError, BrokenPipeError):
        return "closed"
    except AssertionError:  # RespTimeout
        return "hang"
    finally:
        s.close()


def test_listener_stops_at_once(redis_server, corral_factory):
    c, blocker = _draining_corral(redis_server, corral_factory)
    try:
        c.signal(signal.SIGTERM)
        time.sleep(0.2)  # corral handles the signal (scenario timing; the drain lasts 3 s)
        assert c.running(), "the drain should last until the BLPOP's deadline"
        t0 = time.monotonic()
        outcome = _new_connection_outcome(c.port)
        assert outcome in ("refused", "closed"), \
            f"a new connection during the drain: {outcome} after {time.monotonic() - t0:.2f}s"
    finally:
        blocker.close()
        c.wait_exit(DRAIN + 5)
    assert c.exit_code == 0


def test_idle_client_answered_or_closed_promptly(redis_server, corral_factory):
    c, blocker = _draining_corral(redis_server, corral_factory)
    idle = c.client(timeout=1.0)
    try:
        assert idle.cmd("PING") == "PONG"
        c.signal(signal.SIGTERM)
        time.sleep(0.2)
        t0 = time.monotonic()
        try:
            idle.send_cmd("GET", "k")
            r = idle.read_reply()
        except (ConnectionResetError, BrokenPipeError):
            r = EOF
        assert r is EOF or r is None, r
        assert time.monotonic() - t0 < 1.0
    finally:
        idle.close()
        blocker.close()
        c.wait_exit(DRAIN + 5)
    assert c.exit_code == 0


def test_blocked_client_not_kept_past_the_deadline(redis_server, corral_factory):
    c = corral_factory(corral_config(redis_server.port, shutdown_timeout=f"{int(DRAIN)}s"))
    blocker = c.client(timeout=DRAIN + 5)
    blocker.send_cmd("BLPOP", "drain:q", "0")
    wait_until(lambda: int(redis_server.info("clients")["blocked_clients"]) == 1, 5,
               what="the BLPOP blocked in redis")
    try:
        t0 = time.monotonic()
        c.signal(signal.SIGTERM)
        r = blocker.read_reply()  # socket timeout DRAIN + 5: a hang fails here
        elapsed = time.monotonic() - t0
        assert r is EOF or r is None or not isinstance(r, list), r
        assert elapsed < DRAIN + 1.0, f"the BLPOP client was kept {elapsed:.2f}s"
    finally:
        blocker.close()
        c.wait_exit(DRAIN + 5)
    assert c.exit_code == 0
    # Nothing the blocked pop held is lost: the list is untouched and nobody is blocked.
    wait_until(lambda: int(redis_server.info("clients")["blocked_clients"]) == 0, 5,
               what="the BLPOP ended in redis")
