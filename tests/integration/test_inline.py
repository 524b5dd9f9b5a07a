"""Test 3: inline commands, mixed with multibulk requests on one connection.

Runs against corral or (CORRAL_TARGET=redis) straight against redis-server.
"""

from harness import encode_command


def test_inline_commands(target):
    with target.client() as c:
        c.send_raw(b"PING\r\n")
        assert c.read_reply() == "PONG"
        c.send_raw(b'SET inline:k "a b"\r\n')
        assert c.read_reply() == "OK"
        c.send_raw(b"GET inline:k\r\n")
        assert c.read_reply() == b"a b"
        # bare LF terminates an inline command too (redis accepts it)
        c.send_raw(b"GET inline:k\n")
        assert c.read_reply() == b"a b"
        # quoting with escapes
        c.send_raw(b'SET inline:q "x\\r\\ny" \r\n')
        assert c.read_reply() == "OK"
        assert c.cmd("GET", "inline:q") == b"x\r\ny"


def test_inline_mixed_with_multibulk_in_one_write(target):
    with target.client() as c:
        data = (b"SET inline:m 1\r\n" + encode_command("INCR", "inline:m") + b"INCR inline:m\r\n"
                + encode_command("GET", "inline:m") + b"PING\r\n" + encode_command("ECHO", "e"))
        c.send_raw(data)
        assert [c.read_reply() for _ in range(6)] == ["OK", 2, 3, b"3", "PONG", b"e"]
        # and the same stream in 3-byte pieces
        c.send_raw(data, chunk=3)
        assert [c.read_reply() for _ in range(6)] == ["OK", 2, 3, b"3", "PONG", b"e"]


def test_empty_inline_lines_are_ignored(target):
    with target.client() as c:
        c.send_raw(b"\r\n\r\nPING\r\n")
        assert c.read_reply() == "PONG"
        assert c.cmd("PING") == "PONG"
