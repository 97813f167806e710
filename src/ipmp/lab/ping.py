"""A small ICMP / ICMPv6 echo client, run inside a lab namespace.

``python -m ipmp.lab.ping [-I IF] [-S SOURCE] [-c COUNT] [-i INTERVAL] [-W WAIT]
[--json] DESTINATION`` sends ``COUNT`` echo requests ``INTERVAL`` seconds apart
from a raw socket (root only), optionally bound to an interface and a source
address, then waits ``WAIT`` seconds for late replies.  It counts every
responder separately, so a ping to the all-hosts group (224.0.0.1, ff02::1)
tells which neighbours answered.  The exit status is 0 when anything answered,
1 when nothing did and 2 on a usage or socket error, as ping(8).

The lab needs it because machines that run the lab need not have ``ping``
installed, and because the tests want counts they can parse.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
PAYLOAD = b"ipmp-lab".ljust(56, b".")

_SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)


@dataclass
class PingResult:
    """What a ping run saw.

    ``received`` counts the requests that got at least one reply;
    ``responders`` maps each replying address to the number of requests it
    answered (several for a multicast destination).
    """

    destination: str
    sent: int = 0
    received: int = 0
    responders: dict[str, int] = field(default_factory=dict)

    @property
    def loss(self) -> float:
        """The fraction of requests that got no reply at all."""
        return 1.0 - self.received / self.sent if self.sent else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "destination": self.destination,
            "sent": self.sent,
            "received": self.received,
            "responders": dict(sorted(self.responders.items())),
        }


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _echo(kind: int, ident: int, seq: int, v6: bool) -> bytes:
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if v6:
        return header + PAYLOAD  # the kernel fills in the ICMPv6 checksum
    checksum = _checksum(header + PAYLOAD)
    return struct.pack("!BBHHH", kind, 0, checksum, ident, seq) + PAYLOAD


def _open(
    destination: ipaddress.IPv4Address | ipaddress.IPv6Address,
    ifname: str | None,
    source: str | None,
) -> tuple[socket.socket, tuple[str, int] | tuple[str, int, int, int]]:
    index = socket.if_nametoindex(ifname) if ifname else 0
    if isinstance(destination, ipaddress.IPv4Address):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if destination.is_multicast:
            local = socket.inet_aton(source) if source else bytes(4)
            mreqn = struct.pack("=4s4si", bytes(4), local, index)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, mreqn)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        address4: tuple[str, int] = (str(destination), 0)
        if ifname:
            sock.setsockopt(socket.SOL_SOCKET, _SO_BINDTODEVICE, ifname.encode())
        if source:
            sock.bind((source, 0))
        return sock, address4
    sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    if destination.is_multicast:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
    if ifname:
        sock.setsockopt(socket.SOL_SOCKET, _SO_BINDTODEVICE, ifname.encode())
    scoped = destination.is_link_local or destination.is_multicast
    if source:
        source_scope = index if ipaddress.IPv6Address(source).is_link_local else 0
        sock.bind((source, 0, 0, source_scope))
    return sock, (str(destination), 0, 0, index if scoped else 0)


def ping(
    destination: str,
    *,
    ifname: str | None = None,
    source: str | None = None,
    count: int = 3,
    interval: float = 0.2,
    wait: float = 1.0,
) -> PingResult:
    """Send ``count`` echo requests to ``destination`` and count the replies.

    Raises:
        ValueError: ``destination`` or ``source`` is not an address literal.
        OSError: the socket cannot be opened, bound or sent from.
    """
    target = ipaddress.ip_address(destination.split("%", 1)[0])
    v6 = isinstance(target, ipaddress.IPv6Address)
    request, reply = (
        (ICMP6_ECHO_REQUEST, ICMP6_ECHO_REPLY) if v6 else (ICMP_ECHO_REQUEST, ICMP_ECHO_REPLY)
    )
    ident = int.from_bytes(os.urandom(2), "big")
    result = PingResult(destination=str(target))
    answered: dict[int, set[str]] = {}
    sock, address = _open(target, ifname, source)
    with sock:
        next_send = time.monotonic()
        end = next_send  # set when the last request has gone
        while True:
            now = time.monotonic()
            if result.sent < count and now >= next_send:
                packet = _echo(request, ident, result.sent & 0xFFFF, v6)
                try:
                    sock.sendto(packet, address)
                except OSError as exc:
                    # A down interface loses the request; ping(8) says the same
                    # ("sendmsg: Network is down") and goes on.
                    print(f"ping: sendto: {exc.strerror or exc}", file=sys.stderr)
                result.sent += 1
                next_send += interval
                if result.sent == count:
                    end = time.monotonic() + wait
                continue
            if result.sent >= count and now >= end:
                break
            limit = end if result.sent >= count else next_send
            ready, _, _ = select.select([sock], [], [], max(0.0, limit - now))
            if not ready:
                continue
            data, peer = sock.recvfrom(65535)
            icmp = data if v6 else data[(data[0] & 0x0F) * 4 :]
            if len(icmp) < 8:
                continue
            kind, _code, _sum, got_ident, seq = struct.unpack("!BBHHH", icmp[:8])
            if kind != reply or got_ident != ident or seq >= count:
                continue
            who = str(peer[0]).split("%", 1)[0]
            answered.setdefault(seq, set()).add(who)
            if not target.is_multicast and result.sent >= count and len(answered) == count:
                break  # a unicast peer has answered everything: no need to wait
    result.received = len(answered)
    for responders in answered.values():
        for who in responders:
            result.responders[who] = result.responders.get(who, 0) + 1
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ipmp.lab.ping", description="ICMP echo with per-responder counts"
    )
    parser.add_argument("-I", dest="ifname", help="send out of (and bind to) this interface")
    parser.add_argument("-S", dest="source", help="source address (must be local)")
    parser.add_argument("-c", dest="count", type=int, default=3, help="requests to send")
    parser.add_argument("-i", dest="interval", type=float, default=0.2, help="seconds apart")
    parser.add_argument("-W", dest="wait", type=float, default=1.0, help="wait after the last")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("destination")
    args = parser.parse_args(argv)
    if not 1 <= args.count <= 65536 or args.interval < 0 or args.wait < 0:
        print("ping: expected -c 1..65536, -i >= 0 and -W >= 0", file=sys.stderr)
        return 2
    try:
        result = ping(
            args.destination,
            ifname=args.ifname,
            source=args.source,
            count=args.count,
            interval=args.interval,
            wait=args.wait,
        )
    except (OSError, ValueError) as exc:
        message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"ping: {args.destination}: {message}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(
            f"{result.destination}: {result.sent} sent, {result.received} answered, "
            f"{result.loss:.0%} loss"
        )
        for who, n in sorted(result.responders.items()):
            print(f"  {who}: {n} replies")
    return 0 if result.received else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
