"""An ICMP echo prober for the benchmarks, run inside a lab neighbour namespace.

``python prober.py --interval S --duration S ADDRESS...`` sends one echo
request every ``S`` seconds, cycling over the addresses (IPv4 and IPv6, one
raw socket each), for ``--duration`` seconds (then waits 0.2 s for late
replies).  Every request carries a 32-bit counter: request ``k`` went to
address ``k % N``.  It prints one JSON object: the monotonic send time of
every request and, for every reply, ``[k, receive time]``.  CLOCK_MONOTONIC is
the same in every network namespace, so the caller can compare these times
with its own.

With ``--since T`` it prints a summary per address instead (see
``summarise``): when the outage that began at or after ``T`` started and
when the address answered again.

An address written ``NETNS@ADDRESS`` is pinged from another namespace (a
socket made there, ``pyroute2.netns.create_socket``) by the same process, in
the same cycle: the on-link and the off-link outage of one fault are then
measured by one clock and one scheduler, and their difference is the path's.
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

from ipmp.linux.packets import checksum

ICMP_ECHO_REQUEST = 8
ICMP_ECHO_REPLY = 0


ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129


def packet(ident: int, counter: int, v6: bool = False) -> bytes:
    """An echo request; for ICMPv6 the kernel fills in the checksum."""
    payload = struct.pack("!I", counter) + b"ipmp-bench".ljust(12, b".")
    kind = ICMP6_ECHO_REQUEST if v6 else ICMP_ECHO_REQUEST
    header = struct.pack("!BBHHH", kind, 0, 0, ident, counter & 0xFFFF)
    csum = 0 if v6 else checksum(header + payload)
    return struct.pack("!BBHHH", kind, 0, csum, ident, counter & 0xFFFF) + payload


def summarise(
    addresses: list[str], sends: list[float], replies: list[tuple[int, float]], since: float
) -> dict[str, object]:
    """Per address ``[lost_from, back, last, largest_gap, last_lost]`` after ``since``.

    ``lost_from``: the send time of the first request sent at or after
    ``since`` that was never answered (None: none was lost).  ``back``: the
    receive time of the first reply to a request sent after that one (None:
    none came).  Only requests sent after the loss count, so neither a reply
    still in flight nor a later hiccup of this prober can pass for the
    recovery.  ``last_lost``: the send time of the last unanswered request
    before ``back``: the address came back between ``last_lost`` and
    ``back``.  ``last``: the last reply; ``largest_gap``: the largest gap
    between replies from ``since`` on (the reply before it included).
    """
    n = len(addresses)
    answered: dict[int, float] = {}
    for k, t in replies:
        answered.setdefault(k, t)
    rows: list[list[float | None]] = []
    for index in range(n):
        lost: int | None = None
        last_lost: int | None = None
        back: float | None = None
        for k in range(index, len(sends), n):
            if sends[k] < since:
                continue
            if k not in answered:
                lost = k if lost is None else lost
                last_lost = k
            elif lost is not None:
                back = answered[k]
                break
        times = sorted(t for k, t in replies if k % n == index)
        before = [t for t in times if t < since]
        window = ([before[-1]] if before else []) + [t for t in times if t >= since]
        gap = max((b - a for a, b in itertools.pairwise(window)), default=0.0)
        rows.append(
            [
                sends[lost] if lost is not None else None,
                back,
                times[-1] if times else None,
                gap,
                sends[last_lost] if last_lost is not None else None,
            ]
        )
    return {
        "addresses": addresses,
        "sent": len(sends),
        "replies": len(replies),
        "first_send": sends[0] if sends else None,
        "last_send": sends[-1] if sends else None,
        "per_address": rows,
    }


def reply_counter(data: bytes, v6: bool, ident: int) -> int | None:
    """The counter of an echo reply of ours, or None."""
    icmp = data if v6 else data[(data[0] & 0x0F) * 4 :]
    if len(icmp) < 12 or icmp[0] != (ICMP6_ECHO_REPLY if v6 else ICMP_ECHO_REPLY):
        return None
    (reply_ident,) = struct.unpack("!H", icmp[4:6])
    if reply_ident != ident:
        return None
    (k,) = struct.unpack("!I", icmp[8:12])
    return int(k)


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
    parser.add_argument(
        "--raw", action="store_true", help="with --since: also every send and reply time"
    )
    parser.add_argument("addresses", nargs="+")
    args = parser.parse_args(argv)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    ident = os.getpid() & 0xFFFF
    sockets: dict[tuple[str, bool], socket.socket] = {}
    where = [a.rpartition("@")[::2] for a in args.addresses]  # (netns or "", address)
    for netns, v6 in sorted({(ns, ":" in a) for ns, a in where}):
        family = socket.AF_INET6 if v6 else socket.AF_INET
        proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
        if netns:
            from pyroute2 import netns as namespaces

            sock = namespaces.create_socket(netns, family, socket.SOCK_RAW, proto)
        else:
            sock = socket.socket(family, socket.SOCK_RAW, proto)
        sock.setblocking(False)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sockets[(netns, v6)] = sock
    targets = [((ns, ":" in a), (a, 0)) for ns, a in where]
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
            key, target = targets[counter % len(targets)]
            # No route or no neighbour yet: the request counts as unanswered.
            with contextlib.suppress(OSError):
                sockets[key].sendto(packet(ident, counter, key[1]), target)
            sends.append(now)
            counter += 1
            next_send += args.interval
            if next_send < now - 0.05:  # we fell far behind: do not burst
                next_send = now
            continue
        wait = max(0.0, min(next_send if now < stop else late, late) - now)
        readable, _, _ = select.select(list(sockets.values()), [], [], wait)
        for (_netns, v6), sock in sockets.items():
            if sock not in readable:
                continue
            while True:
                try:
                    data = sock.recv(2048)
                except BlockingIOError:
                    break
                k = reply_counter(data, v6, ident)
                if k is not None and k < len(sends):
                    replies.append((k, time.monotonic()))
    if args.since is not None:
        summary = summarise(args.addresses, sends, replies, args.since)
        if args.raw:
            summary.update(sends=sends, replies=replies)
        json.dump(summary, sys.stdout)
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
