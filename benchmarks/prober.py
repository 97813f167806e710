"""An ICMP echo prober for the benchmarks, run inside a lab neighbour namespace.

``python prober.py --interval S --duration S ADDRESS...`` sends one echo
request every ``S`` seconds, cycling over the addresses, from a raw socket,
for ``--duration`` seconds (then waits 0.2 s for late replies).  Every
request carries a 32-bit counter: request ``k`` went to address ``k % N``.
It prints one JSON object: the monotonic send time of every request and, for
every reply, ``[k, receive time]``.  CLOCK_MONOTONIC is the same in every
network namespace, so the caller can compare these times with its own.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import select
import signal
import socket
import struct
import sys
import time

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def packet(ident: int, counter: int) -> bytes:
    payload = struct.pack("!I", counter) + b"ipmp-bench".ljust(12, b".")
    header = struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, 0, ident, counter & 0xFFFF)
    csum = checksum(header + payload)
    return struct.pack("!BBHHH", ICMP_ECHO_REQUEST, 0, csum, ident, counter & 0xFFFF) + payload


def summarise(
    addresses: list[str], sends: list[float], replies: list[tuple[int, float]], since: float
) -> dict[str, object]:
    """Per address: ``[largest gap, its end, last reply]`` over replies from ``since`` on."""
    n = len(addresses)
    per: list[list[float]] = [[] for _ in range(n)]
    for k, t in replies:
        per[k % n].append(t)
    rows: list[list[float | None]] = []
    for times in per:
        times.sort()
        before = [t for t in times if t < since]
        window = ([before[-1]] if before else []) + [t for t in times if t >= since]
        best: list[float | None] = [0.0, None, times[-1] if times else None]
        for a, b in itertools.pairwise(window):
            if b - a > (best[0] or 0.0):
                best = [b - a, b, times[-1]]
        rows.append(best)
    return {
        "addresses": addresses,
        "sent": len(sends),
        "replies": len(replies),
        "first_send": sends[0] if sends else None,
        "last_send": sends[-1] if sends else None,
        "per_address": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interval", type=float, default=0.001)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument(
        "--since",
        type=float,
        default=None,
        help="summarise instead: per address, the largest reply gap from this monotonic time",
    )
    parser.add_argument("addresses", nargs="+")
    args = parser.parse_args(argv)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    ident = os.getpid() & 0xFFFF
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setblocking(False)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    targets = [(a, 0) for a in args.addresses]
    sends: list[float] = []
    replies: list[tuple[int, float]] = []
    start = time.monotonic()
    stop = start + args.duration
    late = stop + 0.2
    next_send = start
    counter = 0
    while True:
        now = time.monotonic()
        if stopping and now < stop:
            stop, late = now, now + 0.2
        if now >= late:
            break
        if now >= next_send and now < stop:
            # No route or no neighbour yet: the request counts as unanswered.
            with contextlib.suppress(OSError):
                sock.sendto(packet(ident, counter), targets[counter % len(targets)])
            sends.append(now)
            counter += 1
            next_send += args.interval
            if next_send < now - 0.05:  # we fell far behind: do not burst
                next_send = now
            continue
        wait = max(0.0, min(next_send if now < stop else late, late) - now)
        readable, _, _ = select.select([sock], [], [], wait)
        if not readable:
            continue
        while True:
            try:
                data = sock.recv(2048)
            except BlockingIOError:
                break
            received = time.monotonic()
            ihl = (data[0] & 0x0F) * 4
            icmp = data[ihl:]
            if len(icmp) < 12 or icmp[0] != ICMP_ECHO_REPLY:
                continue
            (reply_ident,) = struct.unpack("!H", icmp[4:6])
            if reply_ident != ident:
                continue
            (k,) = struct.unpack("!I", icmp[8:12])
            if k < len(sends):
                replies.append((k, received))
    if args.since is not None:
        json.dump(summarise(args.addresses, sends, replies, args.since), sys.stdout)
        return 0
    json.dump(
        {
            "addresses": args.addresses,
            "interval": args.interval,
            "sends": sends,
            "replies": replies,
        },
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
