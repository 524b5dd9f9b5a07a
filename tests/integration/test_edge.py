"""Edge cases a proxy gets wrong easily: reply order when local answers, slow forwarded
requests and errors are mixed in one pipeline; nested replies; empty frames; clients that leave
with requests in flight; very many arguments.

Everything here except the CLIENT SETINFO test is Redis behaviour and runs with
CORRAL_TARGET=redis as well.
"""

import socket
import struct
import time

from harness import EOF, RespConn, RespError, encode_command


def test_local_answers_wait_for_earlier_forwarded_replies(target):
    with target.client(timeout=5.0) as c:
        assert c.cmd("SET", "ord:k", "v") == "OK"
        assert c.cmd("CLIENT", "SETNAME", "ord") == "OK"
        replies = c.pipeline([
            ("DEBUG", "SLEEP", "0.2"),      # forwarded, slow
            ("PING",),                      # local
            ("GET", "ord:k"),               # forwarded
            ("CLIENT", "GETNAME"),          # local
            ("ECHO", "e"),                  # local
            ("NOSUCHCMD",),                 # forwarded, error
            ("PING", "p"),                  # local
            ("INCR", "ord:k"),              # forwarded, error (not an integer)
            ("GET", "ord:k"),
        ])
        assert replies[:5] == ["OK", "PONG", b"v", b"ord", b"e"], replies
        assert isinstance(replies[5], RespError) and replies[5].startswith("ERR unknown command")
        assert replies[6] == b"p"
        assert replies[7] == RespError("ERR value is not an integer or out of range"), replies[7]
        assert replies[8] == b"v"


def test_quit_after_slow_request_answers_both(target):
    with target.client(timeout=5.0) as c:
        c.send_raw(encode_command("DEBUG", "SLEEP", "0.2") + encode_command("SET", "q2", "1") +
                   encode_command("QUIT"))
        assert [c.read_reply() for _ in range(3)] == ["OK", "OK", "OK"]
        assert c.read_reply() is EOF
    with target.client() as c:
        assert c.cmd("GET", "q2") == b"1"


def test_nested_and_mixed_replies_are_forwarded_verbatim(target):
    script = ("return {1, {2, {3, false, 'x'}}, redis.error_reply('MYERR inner'), "
              "redis.status_reply('FINE'), {}, ''}")
    with target.client() as c:
        r = c.cmd("EVAL", script, "0")
        assert r == [1, [2, [3, None, b"x"]], RespError("MYERR inner"), "FINE", [], b""], r
        assert c.cmd("ZADD", "z", "1", "a", "2.5", "b") == 2
        assert c.cmd("ZRANGE", "z", "0", "-1", "WITHSCORES") == [b"a", b"1", b"b", b"2.5"]
        assert c.cmd("HGET", "nohash", "f") is None
        assert c.cmd("MGET", "nokey1", "z") == [None, None]
        assert c.cmd("LRANGE", "nolist", "0", "-1") == []
        r = c.cmd("EVAL", "return redis.error_reply('CUSTOM my message')", "0")
        assert r == RespError("CUSTOM my message"), r
        assert c.cmd("PING") == "PONG"


def test_empty_and_null_multibulk_frames_are_ignored(target):
    with target.client() as c:
        c.send_raw(b"*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n")
        assert c.read_reply() == "PONG"
        assert c.cmd("ECHO", "after") == b"after"


def test_many_arguments(target):
    n = 20000
    with target.client(timeout=10.0) as c:
        args = ["MSET"]
        for i in range(n):
            args += [f"many:{i}", f"v{i}"]
        assert c.cmd(*args) == "OK"
        r = c.cmd("MGET", *[f"many:{i}" for i in range(n)])
        assert r == [f"v{i}".encode() for i in range(n)]
        assert c.cmd("DEL", *[f"many:{i}" for i in range(n)]) == n


def test_client_leaving_with_requests_in_flight(target):
    # the client vanishes while its requests are at the upstream; the proxy must drop the
    # replies, not crash, and (checked at teardown) its pending/client gauges return to 0
    for _ in range(3):
        c = target.client()
        c.send_raw(encode_command("DEBUG", "SLEEP", "0.1") +
                   b"".join(encode_command("INCR", "leave:n") for _ in range(100)))
        c.close()
    deadline = time.monotonic() + 5
    with target.client() as c:
        while time.monotonic() < deadline and c.cmd("GET", "leave:n") != b"300":
            time.sleep(0.02)
        assert c.cmd("GET", "leave:n") == b"300"
        assert c.cmd("PING") == "PONG"


def test_client_reset_with_unsent_big_reply(target):
    with target.client(timeout=10.0) as c:
        assert c.cmd("SET", "bigr", b"x" * (4 << 20)) == "OK"
    s = RespConn(target.port)
    s.send_raw(b"".join(encode_command("GET", "bigr") for _ in range(20)))
    s.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    s.close()
    with target.client() as c:
        assert c.cmd("PING") == "PONG"
        assert c.cmd("STRLEN", "bigr") == 4 << 20


def test_hello_2_setname(target):
    with target.client() as c:
        r = c.cmd("HELLO", "2", "SETNAME", "via-hello")
        assert isinstance(r, list) and r[0::2][:3] == [b"server", b"version", b"proto"], r
        assert c.cmd("CLIENT", "GETNAME") == b"via-hello"


def test_client_setinfo_is_local(target, corral_only):
    # Redis 7.2+ clients (redis-py 5) send this on connect; the 7.0 upstream does not know it
    with target.client() as c:
        assert c.cmd("CLIENT", "SETINFO", "LIB-NAME", "corral-it") == "OK"
        assert c.cmd("CLIENT", "SETINFO", "LIB-VER", "1.2.3") == "OK"
        assert c.cmd("PING") == "PONG"
