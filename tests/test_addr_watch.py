"""The address watcher's parsing and judgement, without a kernel (linux/addr_watch.py)."""

from __future__ import annotations

import ipaddress
import socket
import struct

from ipmp.core.types import Family
from ipmp.linux.addr_watch import (
    EXPECT_TTL,
    AddressEvent,
    Foreign,
    LinkState,
    OwnChanges,
    RuleEvent,
    Window,
    _judged,
    parse,
)


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("=HH", length, kind) + payload + b"\0" * (-length % 4)


def _message(kind: int, body: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def addr_message(new: bool, address: str, prefixlen: int, index: int, label: str = "") -> bytes:
    ip = ipaddress.ip_address(address)
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    body = struct.pack("=BBBBI", family, prefixlen, 0, 0, index)
    body += _attr(1, ip.packed)  # IFA_ADDRESS
    if ip.version == 4:
        body += _attr(2, ip.packed)  # IFA_LOCAL
    if label:
        body += _attr(3, label.encode() + b"\0")
    return _message(20 if new else 21, body)


def link_message(index: int, up: bool, gone: bool = False) -> bytes:
    return _message(17 if gone else 16, struct.pack("=BBHiII", 0, 0, 1, index, int(up), 0))


def rule_message(new: bool, source: str, table: int, priority: int) -> bytes:
    body = struct.pack("=BBBBBBBBI", socket.AF_INET, 0, 32, 0, 252, 0, 0, 1, 0)
    body += _attr(2, ipaddress.ip_address(source).packed)  # FRA_SRC
    body += _attr(6, struct.pack("=I", priority))  # FRA_PRIORITY
    body += _attr(15, struct.pack("=I", table))  # FRA_TABLE
    return _message(32 if new else 33, body)


def test_parse_reads_links_addresses_and_rules_in_order() -> None:
    data = (
        link_message(3, False)
        + addr_message(True, "192.0.2.19", 24, 3, "eth0:1")
        + addr_message(False, "2001:db8::1", 64, 4)
        + rule_message(False, "192.0.2.21", 10003, 100)
        + link_message(4, False, gone=True)
    )
    assert parse(data) == [
        LinkState(3, False),
        AddressEvent(True, "inet", 3, "192.0.2.19", 24, "eth0:1"),
        AddressEvent(False, "inet6", 4, "2001:db8::1", 64),
        RuleEvent(False, 100, 10003, "192.0.2.21"),
        LinkState(4, False, gone=True),
    ]


def test_parse_stops_at_a_truncated_message() -> None:
    whole = addr_message(True, "192.0.2.19", 24, 3)
    assert parse(whole + whole[:20]) == [AddressEvent(True, "inet", 3, "192.0.2.19", 24)]
    assert parse(b"\0" * 8) == []


def test_own_changes_are_claimed_once_and_forgotten_after_the_ttl() -> None:
    own = OwnChanges()
    echo = AddressEvent(True, "inet", 3, "192.0.2.19", 24)
    own.expect(True, "inet", "192.0.2.19", 3, 0.0)
    assert own.claim(echo, 0.1)
    assert not own.claim(echo, 0.2)  # a second echo is not ours
    own.expect(True, "inet", "192.0.2.19", 3, 1.0)
    assert not own.claim(echo, 1.0 + EXPECT_TTL + 0.1)
    assert len(own) == 0
    own.expect(False, "inet", "192.0.2.19", 3, 2.0)
    own.withdraw(False, "inet", "192.0.2.19", 3)  # refused: no echo will come
    assert not own.claim(AddressEvent(False, "inet", 3, "192.0.2.19", 24), 2.1)


def test_judge_against_what_the_stack_holds() -> None:
    window = Window()
    held: dict[tuple[Family, str], int] = {("inet", "192.0.2.19"): 4, ("inet", "192.0.2.21"): 3}
    window.note(AddressEvent(True, "inet", 3, "192.0.2.19", 24, "eth0"))  # a copy on 3
    window.note(AddressEvent(False, "inet", 3, "192.0.2.21", 32))  # ours, deleted
    window.note(AddressEvent(True, "inet", 3, "192.0.2.77", 24))  # someone else's
    window.note(AddressEvent(False, "inet", 4, "192.0.2.88", 24))  # never ours
    assert window.judge(held, lambda index: True) == [
        Foreign(True, "inet", "192.0.2.19", 3, 24, "eth0"),
        Foreign(False, "inet", "192.0.2.21", 3, 32),
        Foreign(True, "inet", "192.0.2.77", 3, 24),
    ]
    assert window.judge(held, lambda index: True) == []  # judged once


def test_judge_takes_the_latest_change_and_spares_a_down_link() -> None:
    window = Window()
    held: dict[tuple[Family, str], int] = {("inet6", "2001:db8::19"): 3}
    window.note(AddressEvent(False, "inet6", 3, "2001:db8::19", 64))
    window.note(AddressEvent(True, "inet6", 3, "2001:db8::19", 64))  # put back at once
    assert window.judge(held, lambda index: True) == []
    # IPv6 addresses leave with "ip link set down": the kernel's doing.
    window.note(AddressEvent(False, "inet6", 3, "2001:db8::19", 64))
    assert window.judge(held, lambda index: False) == []


def test_only_address_and_rule_messages_call_for_a_judgement() -> None:
    assert not _judged(link_message(3, False) + link_message(4, True))
    assert _judged(link_message(3, False) + addr_message(False, "192.0.2.19", 24, 3))
    assert _judged(rule_message(False, "192.0.2.21", 10003, 100))
