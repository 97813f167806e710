"""Other writers: address and policy-rule changes that the daemon did not make.

``ip addr``, a DHCP client, NetworkManager or systemd-networkd may add or
delete addresses on the interfaces in.mpathd manages.  This module watches
the kernel's address, link and IPv4 rule groups on one raw netlink socket
and tells the daemon's own changes from everybody else's:

* every change the stack makes is announced first (``OwnChanges.expect``) and
  its echo from the kernel is claimed, so the daemon's own moves never look
  foreign;
* what is left is judged against what the stack holds once its queued work is
  done (``judge``): an address the stack holds that left the kernel, or a copy
  of an address on an interface where the stack does not hold it.

Parsing reads the fixed headers and a few attributes by hand, as
``route_watch`` does: a mass failover echoes thousands of address messages.
Message layouts: rtnetlink(7), <linux/if_addr.h>, <linux/fib_rules.h>.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ipmp.core.types import Family

RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV4_RULE = 0x80
RTMGRP_IPV6_IFADDR = 0x100
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_NEWADDR = 20
RTM_DELADDR = 21
RTM_NEWRULE = 32
RTM_DELRULE = 33
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
FRA_SRC = 2
FRA_PRIORITY = 6
FRA_TABLE = 15
IFF_UP = 0x1

EXPECT_TTL = 30.0
"""Seconds an announced own change waits for its echo before it is forgotten."""

_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
_IFINFOMSG = struct.Struct("=BBHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_FIB_RULE_HDR = struct.Struct("=BBBBBBBBI")
_RTATTR = struct.Struct("=HH")


@dataclass(frozen=True)
class LinkState:
    """An interface's administrative state (RTM_NEWLINK), or its end (RTM_DELLINK)."""

    index: int
    up: bool
    gone: bool = False


@dataclass(frozen=True)
class AddressEvent:
    """An address appeared (``new``) or left interface ``index``."""

    new: bool
    family: Family
    index: int
    address: str
    prefixlen: int
    label: str = ""


@dataclass(frozen=True)
class RuleEvent:
    """An IPv4 policy rule appeared (``new``) or went away."""

    new: bool
    priority: int
    table: int
    source: str


@dataclass(frozen=True)
class Overrun:
    """The socket overflowed: changes were lost, the kernel must be read again."""


Change = LinkState | AddressEvent | RuleEvent | Overrun


def _attributes(data: bytes, start: int, end: int) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    offset = start
    while offset + _RTATTR.size <= end:
        length, kind = _RTATTR.unpack_from(data, offset)
        if length < _RTATTR.size or offset + length > end:
            break
        out[kind & 0x3FFF] = data[offset + _RTATTR.size : offset + length]
        offset += (length + 3) & ~3
    return out


def _ip(family: int, raw: bytes | None) -> str:
    if raw is None:
        return ""
    if family == socket.AF_INET and len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if family == socket.AF_INET6 and len(raw) == 16:
        return str(ipaddress.IPv6Address(raw))
    return ""


def parse(data: bytes) -> list[Change]:
    """The link, address and rule changes in one netlink datagram, in order."""
    out: list[Change] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, _seq, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size or offset + length > len(data):
            break
        body, end = offset + _HEADER.size, offset + length
        if kind in (RTM_NEWLINK, RTM_DELLINK) and body + _IFINFOMSG.size <= end:
            _family, _pad, _type, index, flags, _change = _IFINFOMSG.unpack_from(data, body)
            out.append(LinkState(index, bool(flags & IFF_UP), kind == RTM_DELLINK))
        elif kind in (RTM_NEWADDR, RTM_DELADDR) and body + _IFADDRMSG.size <= end:
            family, prefixlen, _f, _scope, index = _IFADDRMSG.unpack_from(data, body)
            if family in (socket.AF_INET, socket.AF_INET6):
                attrs = _attributes(data, body + _IFADDRMSG.size, end)
                # IFA_LOCAL is the address itself; IFA_ADDRESS is the peer of a
                # point-to-point IPv4 address, and the only one for IPv6.
                address = _ip(family, attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS))
                label = attrs.get(IFA_LABEL, b"").split(b"\0", 1)[0].decode(errors="replace")
                if address:
                    fam: Family = "inet" if family == socket.AF_INET else "inet6"
                    out.append(
                        AddressEvent(kind == RTM_NEWADDR, fam, index, address, prefixlen, label)
                    )
        elif kind in (RTM_NEWRULE, RTM_DELRULE) and body + _FIB_RULE_HDR.size <= end:
            header = _FIB_RULE_HDR.unpack_from(data, body)
            family, table = header[0], header[4]
            attrs = _attributes(data, body + _FIB_RULE_HDR.size, end)
            if FRA_TABLE in attrs and len(attrs[FRA_TABLE]) == 4:
                (table,) = struct.unpack("=I", attrs[FRA_TABLE])
            priority = 0
            if FRA_PRIORITY in attrs and len(attrs[FRA_PRIORITY]) == 4:
                (priority,) = struct.unpack("=I", attrs[FRA_PRIORITY])
            source = _ip(family, attrs.get(FRA_SRC))
            out.append(RuleEvent(kind == RTM_NEWRULE, priority, table, source))
        offset += (length + 3) & ~3
    return out


def _judged(data: bytes) -> bool:
    """Whether a datagram holds an address or rule message (the headers only)."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if kind in _JUDGED:
            return True
        if length < _HEADER.size:
            break
        offset += (length + 3) & ~3
    return False


_JUDGED = frozenset((RTM_NEWADDR, RTM_DELADDR, RTM_NEWRULE, RTM_DELRULE))
_Key = tuple[bool, Family, str, int]


@dataclass
class OwnChanges:
    """The daemon's own address changes, announced before they are made.

    The kernel echoes each change to every listener; an echo that matches an
    announcement is the daemon's own.  An announcement whose change makes no
    echo (the kernel refused it, or the address was already so) is withdrawn,
    and any still unclaimed after ``EXPECT_TTL`` seconds is forgotten.
    """

    _expected: dict[_Key, list[float]] = field(default_factory=dict)

    def expect(self, new: bool, family: Family, address: str, index: int, now: float) -> None:
        self._expected.setdefault((new, family, address, index), []).append(now)

    def withdraw(self, new: bool, family: Family, address: str, index: int) -> None:
        key = (new, family, address, index)
        times = self._expected.get(key)
        if times:
            times.pop()
            if not times:
                del self._expected[key]

    def claim(self, change: AddressEvent, now: float) -> bool:
        """True (and the announcement is used up) when ``change`` is an own change's echo."""
        key = (change.new, change.family, change.address, change.index)
        times = self._expected.get(key)
        while times and now - times[0] > EXPECT_TTL:
            times.pop(0)
        if not times:
            self._expected.pop(key, None)
            return False
        times.pop(0)
        if not times:
            del self._expected[key]
        return True

    def __len__(self) -> int:
        return sum(len(times) for times in self._expected.values())


@dataclass(frozen=True)
class Foreign:
    """One change another program made, as ``judge`` found it."""

    added: bool
    family: Family
    address: str
    index: int
    prefixlen: int
    label: str = ""


@dataclass
class Window:
    """Unclaimed address changes since the last judgement, latest per address and interface."""

    latest: dict[tuple[Family, str, int], AddressEvent] = field(default_factory=dict)
    links: dict[int, LinkState] = field(default_factory=dict)

    def note(self, change: AddressEvent) -> None:
        self.latest[(change.family, change.address, change.index)] = change

    def judge(
        self,
        held: Mapping[tuple[Family, str], int],
        admin_up: Callable[[int], bool],
    ) -> list[Foreign]:
        """What other programs changed, judged against ``held`` (address -> index).

        ``held`` is where the stack holds each address once its queued work is
        done.  An address that left an interface that is down or gone was
        taken by the kernel (IPv6 addresses go with ``ip link set down``
        unless keep_addr_on_down; every address goes with its interface), not
        by another program.
        """
        found: list[Foreign] = []
        for (family, address, index), change in sorted(
            self.latest.items(), key=lambda item: (item[0][0], item[0][1], item[0][2])
        ):
            ours = held.get((family, address))
            if change.new and ours != index:
                found.append(Foreign(True, family, address, index, change.prefixlen, change.label))
            elif not change.new and ours == index and admin_up(index):
                found.append(Foreign(False, family, address, index, change.prefixlen))
        self.latest.clear()
        return found


class AddressWatcher:
    """The raw socket: calls ``arrived()`` from the event loop when something came.

    It only buffers what it reads: the stack parses it with ``take()`` in the
    worker's turn, after the work queued before it.  A mass failover echoes
    thousands of messages, and decoding them while the moves wait for their
    acknowledgements would slow the moves down.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, arrived: Callable[[], None]) -> None:
        self._loop = loop
        self._arrived = arrived
        self._buffered: list[bytes] = []
        self._overrun = False
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._sock.setblocking(False)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        self._sock.bind(
            (0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR | RTMGRP_IPV4_RULE)
        )
        loop.add_reader(self._sock.fileno(), self._readable)

    def _readable(self) -> None:
        if self._read():
            self._arrived()

    def _read(self) -> bool:
        """Buffer what is queued; True if it holds an address or rule change (or a loss).

        Link messages alone call for no judgement: a link failover then
        queues nothing before its moves.  They are parsed with the rest.
        """
        news = False
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as err:
                if err.errno == errno.ENOBUFS:
                    self._overrun = news = True  # changes were lost
                    continue
                break
            self._buffered.append(data)
            news = news or _judged(data)
        return news

    def take(self) -> list[Change]:
        """Everything that came, the socket drained first: the echoes of acknowledged work too."""
        self._read()
        changes: list[Change] = [Overrun()] if self._overrun else []
        for data in self._buffered:
            changes += parse(data)
        self._buffered, self._overrun = [], False
        return changes

    def close(self) -> None:
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
