"""Watching the main routing table for changes, without parsing every route event.

Every address the daemon adds or deletes makes the kernel announce routes of
the ``local`` table (and, for a new subnet, of ``main``).  A failover of 1000
addresses produced thousands of route events, each fully decoded by pyroute2
on the event loop the moves were waiting for.  The daemon only needs to know
*that* the main table changed, after which it dumps it once.  This socket
reads the route groups raw and looks at one byte of each message: the table.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import struct
from collections.abc import Callable

RTMGRP_IPV4_ROUTE = 0x40
RTMGRP_IPV6_ROUTE = 0x400
RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RT_TABLE_MAIN = 254
_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
_TABLE_OFFSET = _HEADER.size + 4  # struct rtmsg: family, dst_len, src_len, tos, table


def main_table_changed(data: bytes) -> bool:
    """Whether any route message in ``data`` (one datagram) concerns the main table."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _flags, _seq, _pid = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            break
        if (
            kind in (RTM_NEWROUTE, RTM_DELROUTE)
            and length > _TABLE_OFFSET  # the rtmsg is there
            and offset + _TABLE_OFFSET < len(data)
            and data[offset + _TABLE_OFFSET] == RT_TABLE_MAIN
        ):
            return True
        offset += (length + 3) & ~3
    return False


class RouteWatcher:
    """Calls ``changed`` (from the event loop) when the main table may have changed.

    Lost events (ENOBUFS) count as a change: the caller rereads the table.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, changed: Callable[[], None]) -> None:
        self._loop = loop
        self._changed = changed
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
        self._sock.setblocking(False)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self._sock.bind((0, RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE))
        loop.add_reader(self._sock.fileno(), self._readable)

    def _readable(self) -> None:
        changed = False
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as err:
                if err.errno == errno.ENOBUFS:
                    changed = True  # events were lost: whatever they said, reread
                    continue
                break
            changed = changed or main_table_changed(data)
        if changed:
            self._changed()

    def close(self) -> None:
        self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
