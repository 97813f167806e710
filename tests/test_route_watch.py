"""The raw route-event filter: only a change of the main table triggers a reread."""

from __future__ import annotations

import struct

from ipmp.linux.route_watch import RT_TABLE_MAIN, RTM_DELROUTE, RTM_NEWROUTE, main_table_changed

RTM_NEWADDR = 20
RT_TABLE_LOCAL = 255


def _message(kind: int, table: int, attrs: bytes = b"") -> bytes:
    # struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
    body = struct.pack("=BBBBBBBBI", 2, 32, 0, 0, table, 2, 254, 2, 0) + attrs
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def test_local_table_routes_are_ignored() -> None:
    datagram = b"".join(_message(RTM_NEWROUTE, RT_TABLE_LOCAL) for _ in range(50))
    assert not main_table_changed(datagram)


def test_a_main_table_route_anywhere_in_the_datagram_counts() -> None:
    datagram = _message(RTM_NEWROUTE, RT_TABLE_LOCAL) * 3 + _message(RTM_DELROUTE, RT_TABLE_MAIN)
    assert main_table_changed(datagram)
    assert main_table_changed(_message(RTM_NEWROUTE, RT_TABLE_MAIN, b"\x08\x00\x0f\x00\xfe\0\0\0"))


def test_other_messages_and_truncated_data_are_ignored() -> None:
    assert not main_table_changed(_message(RTM_NEWADDR, RT_TABLE_MAIN))
    whole = _message(RTM_NEWROUTE, RT_TABLE_MAIN)
    assert not main_table_changed(whole[:18])  # the rtmsg is cut before its table byte
    assert not main_table_changed(b"")
    # A header claiming less than its own size ends the scan instead of looping.
    assert not main_table_changed(struct.pack("=IHHII", 4, RTM_NEWROUTE, 0, 0, 0) + whole)
