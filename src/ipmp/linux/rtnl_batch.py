"""Address changes in batches over a plain rtnetlink socket (and a link's MTU).

A mass failover moves hundreds of addresses at once.  pyroute2 spends about
0.2 ms of Python per request building and parsing messages (measured in
BENCHMARKS.md, mass failover); encoding an RTM_NEWADDR or RTM_DELADDR by hand
costs a few microseconds, and the kernel takes a whole batch in one
``sendmsg``.  Every message asks for an acknowledgement, so each change still
gets its own result.

Message layouts: rtnetlink(7) and <linux/if_addr.h>.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import struct
from dataclasses import dataclass

from ipmp.core.types import Family

RTM_SETLINK = 19
RTM_NEWADDR = 20
RTM_DELADDR = 21
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_REPLACE = 0x100
NLM_F_CREATE = 0x400
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_LABEL = 3
IFA_BROADCAST = 4
IFA_CACHEINFO = 6
IFA_FLAGS = 8
IFA_F_NODAD = 0x02
IFLA_MTU = 4
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NLM_F_ACK_TLVS = 0x200
NLMSGERR_ATTR_MSG = 1
INFINITY_LIFE_TIME = 0xFFFFFFFF

CHUNK = 200
"""Messages per ``sendmsg``: their acknowledgements must fit the receive buffer."""

_HEADER = struct.Struct("=IHHII")
_IFADDRMSG = struct.Struct("=BBBBI")
_IFINFOMSG = struct.Struct("=BxHiII")


@dataclass(frozen=True)
class AddressChange:
    """One address to add (``add``) or delete on interface ``index``."""

    add: bool
    family: Family
    index: int
    address: str
    prefixlen: int
    label: str = ""
    broadcast: str = ""
    deprecated: bool = False
    scope: int = 0


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def encode(change: AddressChange, seq: int) -> bytes:
    """The RTM_NEWADDR / RTM_DELADDR message for ``change``, acknowledged, numbered ``seq``."""
    inet = change.family == "inet"
    packed = ipaddress.ip_address(change.address).packed
    flags = 0 if inet or not change.add else IFA_F_NODAD
    body = _IFADDRMSG.pack(
        socket.AF_INET if inet else socket.AF_INET6,
        change.prefixlen,
        flags,
        change.scope,
        change.index,
    )
    body += _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed)
    if change.add:
        if change.label:
            body += _attr(IFA_LABEL, change.label.encode() + b"\0")
        if change.broadcast:
            body += _attr(IFA_BROADCAST, ipaddress.ip_address(change.broadcast).packed)
        if change.deprecated:
            # Preferred lifetime 0, valid forever: what "ip addr ... preferred_lft 0" sends.
            body += _attr(IFA_CACHEINFO, struct.pack("=IIII", 0, INFINITY_LIFE_TIME, 0, 0))
        if flags:
            body += _attr(IFA_FLAGS, struct.pack("=I", flags))
    kind = RTM_NEWADDR if change.add else RTM_DELADDR
    request = NLM_F_REQUEST | NLM_F_ACK | ((NLM_F_CREATE | NLM_F_REPLACE) if change.add else 0)
    return _HEADER.pack(_HEADER.size + len(body), kind, request, seq, 0) + body


def acknowledgements(data: bytes) -> list[tuple[int, int]]:
    """``(seq, errno)`` of every NLMSG_ERROR message in ``data`` (errno 0: done)."""
    out: list[tuple[int, int]] = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, seq, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            break
        if kind == NLMSG_ERROR and length >= _HEADER.size + 4:
            (code,) = struct.unpack_from("=i", data, offset + _HEADER.size)
            out.append((seq, -code))
        offset += (length + 3) & ~3
    return out


def encode_link_mtu(index: int, mtu: int, seq: int) -> bytes:
    """The RTM_SETLINK message giving link ``index`` the MTU ``mtu``, acknowledged."""
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0)
    body += _attr(IFLA_MTU, struct.pack("=I", mtu))
    flags = NLM_F_REQUEST | NLM_F_ACK
    return _HEADER.pack(_HEADER.size + len(body), RTM_SETLINK, flags, seq, 0) + body


def refusal_text(data: bytes) -> str:
    """The kernel's extended-ack message in an NLMSG_ERROR (netlink(7)), if any."""
    if len(data) < _HEADER.size + 4 + _HEADER.size:
        return ""
    length, kind, flags, _seq, _pid = _HEADER.unpack_from(data, 0)
    if kind != NLMSG_ERROR or not flags & NLM_F_ACK_TLVS:
        return ""
    # The error code, then the request's header alone (NETLINK_CAP_ACK), then TLVs.
    offset = _HEADER.size + 4 + _HEADER.size
    while offset + 4 <= min(length, len(data)):
        size, attr = struct.unpack_from("=HH", data, offset)
        if size < 4:
            break
        if attr == NLMSGERR_ATTR_MSG:
            return data[offset + 4 : offset + size].split(b"\0", 1)[0].decode(errors="replace")
        offset += (size + 3) & ~3
    return ""


def set_link_mtu(index: int, mtu: int) -> tuple[int, str]:
    """Set link ``index``'s MTU and wait for the kernel: ``(errno, its message)``, 0 when done.

    Blocking on purpose (``ifconfig`` must answer whether the kernel took it):
    the kernel carries out RTM_SETLINK inside the ``send`` and queues its
    acknowledgement before ``send`` returns, so the wait costs microseconds.
    """
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.settimeout(1.0)
        sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        sock.bind((0, 0))
        sock.send(encode_link_mtu(index, mtu, 1))
        while True:
            data = sock.recv(65536)
            for seq, code in acknowledgements(data):
                if seq == 1:
                    return code, refusal_text(data) if code else ""


class AddressBatcher:
    """Sends address changes in batches and returns each one's errno (0 when done)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._sock.setblocking(False)
        # Acknowledgements without a copy of each request: small, so a chunk fits.
        self._sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._sock.bind((0, 0))
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    async def run(self, changes: list[AddressChange]) -> list[int]:
        """Apply ``changes`` in order; one errno per change."""
        loop = asyncio.get_running_loop()
        results: list[int] = []
        for start in range(0, len(changes), CHUNK):
            chunk = changes[start : start + CHUNK]
            first = self._seq + 1
            self._seq += len(chunk)
            wire = b"".join(encode(c, first + i) for i, c in enumerate(chunk))
            await loop.sock_sendall(self._sock, wire)
            pending = {first + i: errno.ETIMEDOUT for i in range(len(chunk))}
            waiting = set(pending)
            while waiting:
                data = await asyncio.wait_for(loop.sock_recv(self._sock, 1 << 20), 5.0)
                for seq, code in acknowledgements(data):
                    if seq in waiting:
                        pending[seq] = code
                        waiting.discard(seq)
            results += [pending[first + i] for i in range(len(chunk))]
        return results
