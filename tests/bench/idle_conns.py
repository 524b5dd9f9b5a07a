#!/usr/bin/python3
"""Open N client connections to a RESP server and keep them idle.

Each connection sends PING (as a RESP array) and reads +PONG, so the server has accepted and served it. Then the
script prints "ready N" on stdout and holds every socket open until stdin closes (or a line is
read), so the caller can measure the server's memory with N idle clients.

usage: idle_conns.py HOST PORT N
"""

import socket
import sys


def main() -> int:
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    conns = []
    for i in range(count):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(b"*1\r\n$4\r\nPING\r\n")  # multibulk: twemproxy takes no inline commands
        reply = b""
        while not reply.endswith(b"\r\n"):
            chunk = s.recv(64)
            if not chunk:
                print(f"connection {i}: closed by server after {reply!r}", file=sys.stderr)
                return 1
            reply += chunk
        if reply != b"+PONG\r\n":
            print(f"connection {i}: unexpected reply {reply!r}", file=sys.stderr)
            return 1
        conns.append(s)
    print(f"ready {len(conns)}", flush=True)
    sys.stdin.readline()
    for s in conns:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
