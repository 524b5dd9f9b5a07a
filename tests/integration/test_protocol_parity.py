"""Malformed requests get the same reply bytes and the same connection fate from corral as from
redis-server 7.0.15 (defect 13). corral-only: each case goes to a real redis-server and to a
corral in front of another one, and the two answers are compared byte for byte.

The cases cover every branch of Redis's request parser (networking.c: processMultibulkBuffer,
processInlineBuffer, and util.c's string2ll), and so every branch of codec::RequestParser. The
main corral runs with its limits set to Redis's (max_args = INT_MAX, a request limit above
proto-max-bulk-len); test_corral_limits_differ_on_purpose covers where corral's own, smaller
defaults answer differently.
"""

import contextlib
import socket
import threading

import pytest

from harness import RedisServer, corral_config

# The reply bytes and whether the server closed the connection, after `data` was sent and the
# server then stayed quiet for QUIET seconds (or closed).
QUIET = 0.3

PING = b"*1\r\n$4\r\nPING\r\n"

CASES = [
    # --- the count line: string2ll, then <= INT_MAX; <= 0 is skipped
    ("count negative is skipped", b"*-5\r\n" + PING),
    ("count -1 is skipped", b"*-1\r\n" + PING),
    ("count 0 is skipped", b"*0\r\n" + PING),
    ("count INT64_MIN is skipped", b"*-9223372036854775808\r\n" + PING),
    ("count below INT64_MIN", b"*-9223372036854775809\r\n"),
    ("count letters", b"*abc\r\n"),
    ("count empty", b"*\r\n"),
    ("count minus alone", b"*-\r\n"),
    ("count minus zero", b"*-0\r\n"),
    ("count plus sign", b"*+1\r\n"),
    ("count leading zero", b"*01\r\n" + PING),
    ("count trailing space", b"*1 \r\n"),
    ("count 21 characters", b"*000000000000000000001\r\n"),
    ("count over INT_MAX", b"*2147483648\r\n"),
    ("count INT_MAX waits", b"*2147483647\r\n"),
    ("count line ended by CR and any byte", b"*1\rX$4\r\nPING\r\n"),
    ("count line ended by LF only", b"*1\n$4\r\nPING\r\n"),
    ("count line with a NUL never ends", b"*1\x00\r\n" + PING),
    ("count line too long", b"*" + b"1" * 70000),
    ("count line incomplete waits", b"*abc"),
    ("count line of 64 KiB still waits", b"*" + b"1" * 65535),
    ("count over 1024*1024, then not a bulk", b"*1048577\r\nPING\r\n"),
    # --- bulk length lines: the '$' once the line is complete, then string2ll, >= 0, <= 512 MB
    ("element not a bulk", b"*1\r\n:5\r\n"),
    ("element is CR", b"*1\r\n\r\n"),
    ("element is LF", b"*1\r\n\n\r\n"),
    ("second element a simple string", b"*2\r\n$3\r\nGET\r\n+x\r\n"),
    ("element not a bulk, bad number too", b"*1\r\n:abc\r\n"),
    ("element incomplete waits", b"*1\r\n:"),
    ("bulk -1 in a request", b"*1\r\n$-1\r\n"),
    ("bulk negative", b"*2\r\n$3\r\nGET\r\n$-5\r\n"),
    ("bulk minus zero", b"*1\r\n$-0\r\n"),
    ("bulk letters", b"*1\r\n$abc\r\n"),
    ("bulk empty length", b"*1\r\n$\r\n"),
    ("bulk leading zero", b"*1\r\n$04\r\nPING\r\n"),
    ("bulk over proto-max-bulk-len", b"*1\r\n$536870913\r\n"),
    ("bulk at proto-max-bulk-len waits", b"*1\r\n$536870912\r\n"),
    ("bulk line ended by CR and any byte", b"*1\r\n$4\rXPING\r\n"),
    ("bulk line with a NUL never ends", b"*1\r\n$4\x00\r\n" + PING),
    ("element starting with NUL never ends", b"*1\r\n\x00$4\r\nPING\r\n"),
    ("bulk line too long", b"*1\r\n$" + b"1" * 70000),
    ("bulk line too long, no digits", b"*1\r\n$" + b"x" * 70000),
    # --- payloads: the two bytes after one are skipped unchecked
    ("payload followed by any two bytes", b"*1\r\n$4\r\nPINGxx" + PING),
    ("payload followed by LF LF", b"*1\r\n$4\r\nPING\n\n" + PING),
    ("payload followed by nothing yet", b"*1\r\n$4\r\nPING"),
    ("payload of CRLFs", b"*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\r\n\r\n"),
    # --- inline commands
    ("inline empty line is skipped", b"\r\n" + PING),
    ("inline bare LF is skipped", b"\nPING\r\n"),
    ("inline blanks are skipped", b" \t \r\nPING\r\n"),
    ("inline unbalanced double quote", b'GET "abc\r\n'),
    ("inline unbalanced single quote", b"GET 'abc\r\n"),
    ("inline closing quote then a letter", b'GET "a"b\r\n'),
    ("inline escapes", b'ECHO "a\\x41\\n\\t" \'it\\\'s\'\r\n'),
    ("inline with CR CR LF", b"PING\r\r\n"),
    ("inline with a NUL never ends", b"PI\x00NG\r\nPING\r\n"),
    ("inline too long", b"A" * 70000),
    ("inline 60 KB line", b"ECHO " + b"e" * 60000 + b"\r\n"),
    ("inline starting with $", b"$3\r\n"),
    # --- order and fate around an error
    ("good then malformed", PING + b"*abc\r\n" + PING),
    ("malformed then more", b"*1\r\n$x\r\n" + PING),
]


def _params():
    out = []
    for case in CASES:
        name, data, *marks = case
        out.append(pytest.param(data, id=name, marks=marks))
    return out


def exchange(port: int, data: bytes):
    """(reply bytes, closed by the server) for `data` sent on a fresh connection."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5.0)
    try:
        s.sendall(data)
        s.settimeout(QUIET)
        out = b""
        while True:
            try:
                chunk = s.recv(1 << 16)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk
    finally:
        s.close()


def both(direct_port: int, corral_port: int, data: bytes):
    """Sends to redis and to corral at the same time; returns (redis's answer, corral's)."""
    got = {}
    threads = [threading.Thread(target=lambda k, p: got.__setitem__(k, exchange(p, data)),
                                args=(k, p)) for k, p in (("redis", direct_port),
                                                          ("corral", corral_port))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    return got["redis"], got["corral"]


@pytest.fixture(scope="module")
def pair(cluster_upstream):
    """A redis-server to compare with, and a corral (Redis's limits) in front of another (in
    CORRAL_UPSTREAM=cluster, in front of the shared cluster)."""
    from harness import Corral  # the module fixture cannot use the function-scoped factory

    with RedisServer() as direct, contextlib.ExitStack() as stack:
        behind = cluster_upstream or stack.enter_context(RedisServer())
        if cluster_upstream is not None:
            cluster_upstream.reset()
        c = Corral(corral_config(behind.port, limits={
            "max_args": 2147483647, "max_request_bytes": "1GiB"}))
        try:
            yield direct, c
        finally:
            c.close()


@pytest.mark.usefixtures("corral_only")
@pytest.mark.parametrize("data", _params())
def test_same_reply_and_fate_as_redis(pair, data):
    direct, c = pair
    want, got = both(direct.port, c.port, data)
    assert got == want, f"redis: {want!r}\ncorral: {got!r}"


@pytest.mark.usefixtures("corral_only")
def test_unauthenticated_limits(corral_factory):
    # Redis with requirepass, and corral with client auth on: before AUTH, more than 10
    # elements or a bulk over 16 KiB is a protocol error on both.
    with RedisServer(password="pw") as direct, RedisServer() as behind:
        c = corral_factory(corral_config(behind.port, auth={
            "users": [{"name": "default", "password": "pw"}]}))
        for data in (b"*10\r\n", b"*1\r\n$16384\r\n", b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"):
            want, got = both(direct.port, c.port, data)
            assert got == want, (data, want, got)


@pytest.mark.usefixtures("corral_only")
def test_unauthenticated_limits_are_redis_s(corral_factory):
    with RedisServer(password="pw") as direct, RedisServer() as behind:
        c = corral_factory(corral_config(behind.port, auth={
            "users": [{"name": "default", "password": "pw"}]}))
        for data in (b"*11\r\n", b"*1\r\n$16385\r\n"):
            want, got = both(direct.port, c.port, data)
            assert got == want, (data, want, got)


@pytest.mark.usefixtures("corral_only")
def test_corral_limits_differ_on_purpose(redis_server, corral_factory):
    # corral's own limits for one request (max_args 1 Mi by default, where Redis 7 takes
    # INT_MAX; max_request_bytes, which Redis does not have): past them the request is dropped
    # as it arrives with corral's own error, and the connection stays usable.
    c = corral_factory(corral_config(redis_server.port, limits={"max_request_bytes": "1MiB"}))
    many = b"*1048577\r\n" + b"$1\r\nx\r\n" * 1048577 + PING
    got, closed = exchange(c.port, many)
    assert (got, closed) == (b"-ERR corral: too many arguments (limits.max_args)\r\n+PONG\r\n",
                             False)
    big = b"*2\r\n$4\r\nECHO\r\n$2000000\r\n" + b"e" * 2000000 + b"\r\n" + PING
    got, closed = exchange(c.port, big)
    assert (got, closed) == (b"-ERR corral: request too large\r\n+PONG\r\n", False)
