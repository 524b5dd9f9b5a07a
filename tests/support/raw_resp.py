"""A RESP connection for tests that compare replies byte for byte: each reply's exact frame, in
whatever protocol the server speaks (RESP2 or RESP3), without decoding it."""
import socket


def frame_end(buf: bytes, at: int) -> int:
    """The offset just past the RESP2/RESP3 frame that starts at `at`, or -1 if incomplete."""
    eol = buf.find(b"\r\n", at)
    if eol < 0:
        return -1
    t, rest = buf[at:at + 1], buf[at + 1:eol]
    after = eol + 2
    if t in b"$=!":
        n = int(rest)
        if n < 0:
            return after
        return after + n + 2 if len(buf) >= after + n + 2 else -1
    if t in b"*~>%|":
        n = int(rest)
        count = max(n, 0) * (2 if t in b"%|" else 1)
        for _ in range(count):
            after = frame_end(buf, after)
            if after < 0:
                return -1
        return after
    return after  # + - : _ , # ( simple lines


class RawConn:
    """A RESP connection that returns each reply's exact bytes (types compared as sent)."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()

    def cmd(self, *args) -> bytes:
        return self.pipeline([args])[0]

    def read(self) -> bytes:
        while True:
            end = frame_end(self.buf, 0) if self.buf else -1
            if end > 0:
                frame, self.buf = self.buf[:end], self.buf[end:]
                return frame
            chunk = self.sock.recv(65536)
            assert chunk, "connection closed"
            self.buf += chunk

    def pipeline(self, cmds) -> list:
        """Sends every command at once, then reads one reply for each."""
        out = b""
        for args in cmds:
            out += b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return [self.read() for _ in cmds]
