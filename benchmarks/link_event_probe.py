"""In a lab's host namespace: from a link event to the Linux stack's LinkWentDown / LinkCameUp.

Run by link_state.py (``--stack`` phase, no daemon).  The fault is made from
this process with one RTM_SETLINK over a blocking rtnetlink socket: admin
down (IFF_UP cleared), dormant (IFLA_OPERSTATE DORMANT on a link in mode
dormant), or the cable (the switch port's IFF_UP, through a socket in the
switch namespace).  When the acknowledgement is back the kernel has sent the
RTM_NEWLINK (for the cable, the carrier change follows through the kernel's
linkwatch, urgent for a veth); the figure is the time from then to the stack
handing the event to ``notify``, with the event loop otherwise idle.

``python link_event_probe.py IFNAME SWITCH_NS PORT RUNS WAY[,WAY...]``
prints one JSON object: ``{way: {"down_ms": [...], "up_ms": [...]}}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import sys
import time
from typing import Any

from pyroute2 import netns

from ipmp.core.events import LinkCameUp, LinkWentDown
from ipmp.linux.stack import LinuxStack

IFF_UP = 0x1
IFLA_OPERSTATE = 16
IFLA_LINKMODE = 17
IF_OPER_DORMANT, IF_OPER_UP = 5, 6
RTM_SETLINK, NLMSG_ERROR = 19, 2
NLM_F_REQUEST_ACK = 0x1 | 0x4


def setlink(sock: socket.socket, index: int, flags: int, change: int, attrs: bytes = b"") -> None:
    body = struct.pack("=BxHiII", 0, 0, index, flags, change) + attrs
    sock.send(struct.pack("=IHHII", 16 + len(body), RTM_SETLINK, NLM_F_REQUEST_ACK, 1, 0) + body)
    data = sock.recv(65536)
    (code,) = struct.unpack_from("=i", data, 16)
    if code:
        raise OSError(-code, f"RTM_SETLINK on {index}")


def u8(kind: int, value: int) -> bytes:
    return struct.pack("=HHB3x", 5, kind, value)


def netlink(namespace: str | None = None) -> socket.socket:
    if namespace is None:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    else:
        sock = netns.create_socket(namespace, socket.AF_NETLINK, socket.SOCK_RAW, 0)
    sock.bind((0, 0))
    return sock


async def main(ifname: str, switch_ns: str, port: str, runs: int, ways: list[str]) -> None:
    here, switch = netlink(), netlink(switch_ns)
    index, port_index = socket.if_nametoindex(ifname), netns_index(switch_ns, port)
    stack = LinuxStack()
    reported: dict[type, float] = {}
    arrived = asyncio.Event()

    def notify() -> None:
        for event in stack._pending:
            if isinstance(event, LinkWentDown | LinkCameUp) and event.name == ifname:
                reported.setdefault(type(event), time.perf_counter())
                arrived.set()

    stack.notify = notify
    await stack.open()
    setlink(here, index, IFF_UP, IFF_UP)  # judged: brought up once
    await asyncio.sleep(0.5)
    result: dict[str, Any] = {}
    for way in ways:
        if way == "dormant":
            setlink(here, index, IFF_UP, 0, u8(IFLA_LINKMODE, 1))
        downs: list[float] = []
        ups: list[float] = []
        for _ in range(runs):
            for down, times in ((True, downs), (False, ups)):
                reported.clear()
                arrived.clear()
                stack._pending.clear()
                if way == "admin":
                    setlink(here, index, 0 if down else IFF_UP, IFF_UP)
                elif way == "cable":
                    setlink(switch, port_index, 0 if down else IFF_UP, IFF_UP)
                else:
                    state = IF_OPER_DORMANT if down else IF_OPER_UP
                    setlink(here, index, IFF_UP, 0, u8(IFLA_OPERSTATE, state))
                sent = time.perf_counter()
                want = LinkWentDown if down else LinkCameUp
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), 2.0)
                if want in reported:
                    times.append(round((reported[want] - sent) * 1000, 3))
                await asyncio.sleep(0.2)
        if way == "dormant":
            setlink(here, index, IFF_UP, 0, u8(IFLA_LINKMODE, 0))
        result[way] = {"down_ms": downs, "up_ms": ups, "lost": 2 * runs - len(downs) - len(ups)}
    await stack.close()
    print(json.dumps(result))


def netns_index(namespace: str, ifname: str) -> int:
    """The index of ``ifname`` in another namespace (an RTM_GETLINK by name)."""
    sock = netlink(namespace)
    name = ifname.encode() + b"\0"
    attr = struct.pack("=HH", 4 + len(name), 3) + name + b"\0" * (-len(name) % 4)
    body = struct.pack("=BxHiII", 0, 0, 0, 0, 0) + attr
    sock.send(struct.pack("=IHHII", 16 + len(body), 18, 0x1, 1, 0) + body)
    data = sock.recv(65536)
    sock.close()
    kind = struct.unpack_from("=H", data, 4)[0]
    if kind == NLMSG_ERROR:
        raise OSError(f"{ifname}: not in {namespace}")
    return int(struct.unpack_from("=i", data, 20)[0])


if __name__ == "__main__":
    name, switch_ns, port, count, ways = sys.argv[1:6]
    asyncio.run(main(name, switch_ns, port, int(count), ways.split(",")))
