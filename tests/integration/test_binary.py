"""Test 2: binary-safe keys and values, a 1 MiB value, and requests that arrive in pieces.

Runs against corral or (CORRAL_TARGET=redis) straight against redis-server.
"""

import random

from harness import encode_command

ALL_BYTES = bytes(range(256))


def test_binary_keys_and_values_round_trip(target):
    key = b"bin:" + ALL_BYTES
    value = ALL_BYTES + b"\r\n\0\r\n*1\r\n$3\r\n" + ALL_BYTES[::-1]
    with target.client() as c:
        assert c.cmd("SET", key, value) == "OK"
        assert c.cmd("GET", key) == value
        assert c.cmd("STRLEN", key) == len(value)
        # keys differing only in a \0 / CRLF are distinct keys
        assert c.cmd("SET", b"k\0a", b"1") == "OK"
        assert c.cmd("SET", b"k\r\na", b"2") == "OK"
        assert c.pipeline([("GET", b"k\0a"), ("GET", b"k\r\na"), ("GET", b"k")]) == \
            [b"1", b"2", None]
        # empty key and empty value are legal
        assert c.cmd("SET", b"", b"") == "OK"
        assert c.cmd("GET", b"") == b""
        assert c.cmd("EXISTS", b"") == 1


def test_one_mib_value_round_trip(target):
    rng = random.Random(7)
    value = rng.randbytes(1 << 20)
    assert b"\r\n" in value and b"\0" in value
    with target.client(timeout=10.0) as c:
        assert c.cmd("SET", "big:1m", value) == "OK"
        got = c.cmd("GET", "big:1m")
        assert isinstance(got, bytes) and len(got) == len(value)
        assert got == value
        assert c.cmd("STRLEN", "big:1m") == 1 << 20


def test_request_arriving_one_byte_at_a_time(target):
    value = b"a\r\nb\0c"
    req = encode_command("SET", b"chunk:small\r\n", value) + encode_command("GET", b"chunk:small\r\n")
    with target.client() as c:
        c.send_raw(req, chunk=1)
        assert c.read_reply() == "OK"
        assert c.read_reply() == value
        # an inline command in 1-byte pieces as well
        c.send_raw(b"PING\r\n", chunk=1)
        assert c.read_reply() == "PONG"


def test_big_request_arriving_in_4k_pieces(target):
    rng = random.Random(11)
    value = rng.randbytes(1 << 20)
    req = encode_command("SET", "chunk:big", value)
    with target.client(timeout=10.0) as c:
        c.send_raw(req, chunk=4096)
        assert c.read_reply() == "OK"
        assert c.cmd("GET", "chunk:big") == value
        # the connection still frames correctly after the big one
        assert c.pipeline([("PING",), ("STRLEN", "chunk:big")]) == ["PONG", 1 << 20]
