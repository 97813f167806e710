"""Hold many connections to in.mpathd as an unprivileged user (fault_matrix.py's fd_exhaustion).

Started as root inside the lab's host namespace, it raises its own descriptor
limit, drops to uid and gid 65534 (``nobody``) with no supplementary groups,
then opens ``--tcp-count`` connections to the metrics port ``--tcp HOST:PORT``
(each sends the start of an HTTP request head, never its end: a slow scraper)
and ``--unix-count`` connections to the control socket ``--unix PATH`` (each
sends the start of a request line, never its newline).  It prints one JSON
line saying how many it opened and how many the daemon had already closed,
then sends one more byte on every open connection each ``--trickle`` seconds
until its stdin closes or it is terminated.

``python conn_hog.py --tcp 127.0.0.1:9105 --tcp-count 3000 --unix SOCK --unix-count 200``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import socket
import sys
import time

NOBODY = 65534
CONNECT_TIMEOUT = 1.0
"""Seconds one connect may take (a full listen backlog makes SYNs wait)."""


def drop_privileges(descriptors: int) -> None:
    """Raise the descriptor limit (needs root), then become nobody for good."""
    resource.setrlimit(resource.RLIMIT_NOFILE, (descriptors, descriptors))
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def open_many(
    family: int, address: object, count: int, first: bytes
) -> tuple[list[socket.socket], int]:
    """``count`` connections to ``address``, each sent ``first``; (open sockets, failures)."""
    opened: list[socket.socket] = []
    failures = 0
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(CONNECT_TIMEOUT)
        try:
            sock.connect(address)  # type: ignore[arg-type]
            sock.sendall(first)
        except OSError:
            failures += 1
            sock.close()
            continue
        sock.setblocking(False)
        opened.append(sock)
    return opened, failures


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the daemon has closed (or reset) this connection (``sock`` is non-blocking)."""
    while True:  # a refusal line may come before the end of the stream
        try:
            if sock.recv(4096) == b"":
                return True
        except BlockingIOError:
            return False
        except OSError:
            return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tcp", help="HOST:PORT of the metrics server")
    parser.add_argument("--tcp-count", type=int, default=0)
    parser.add_argument("--unix", help="path of the control socket")
    parser.add_argument("--unix-count", type=int, default=0)
    parser.add_argument("--trickle", type=float, default=1.0)
    args = parser.parse_args()
    drop_privileges(args.tcp_count + args.unix_count + 64)
    began = time.monotonic()
    tcp: list[socket.socket] = []
    tcp_failed = 0
    if args.tcp:
        host, _, port = args.tcp.rpartition(":")
        tcp, tcp_failed = open_many(
            socket.AF_INET, (host, int(port)), args.tcp_count, b"GET /metrics HTTP/1.1\r\nHo"
        )
    unix: list[socket.socket] = []
    unix_failed = 0
    if args.unix:
        unix, unix_failed = open_many(
            socket.AF_UNIX, args.unix, args.unix_count, b'{"v": 1, "op": "snap'
        )
    report = {
        "uid": os.getuid(),
        "tcp_opened": len(tcp),
        "tcp_failed": tcp_failed,
        "tcp_closed_by_daemon": sum(closed_by_peer(s) for s in tcp),
        "unix_opened": len(unix),
        "unix_failed": unix_failed,
        "unix_closed_by_daemon": sum(closed_by_peer(s) for s in unix),
        "open_s": round(time.monotonic() - began, 2),
    }
    print(json.dumps(report), flush=True)
    live = tcp + unix
    while True:
        readable, _, _ = select.select([sys.stdin], [], [], args.trickle)
        if readable and not os.read(sys.stdin.fileno(), 1):
            return 0  # the orchestrator closed our stdin: done
        kept = []
        for sock in live:
            try:
                sock.send(b"x")
            except BlockingIOError:
                kept.append(sock)
            except OSError:
                sock.close()
            else:
                kept.append(sock)
        live = kept


if __name__ == "__main__":
    sys.exit(main())
