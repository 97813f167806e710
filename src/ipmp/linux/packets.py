"""Building and reading the few packets the daemon sends and receives itself.

Pure byte manipulation: ICMP echo (probes), ARP announcements (gratuitous
ARP) and IPv6 unsolicited neighbour advertisements.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
ICMP6_ECHO_REQUEST = 128
ICMP6_ECHO_REPLY = 129
ND_NEIGHBOR_ADVERT = 136


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(family: str, icmp_id: int, seq: int, timestamp_ms: int, kind: int) -> bytes:
    """A 16-byte echo request: header, 32-bit timestamp, 32-bit probe kind (facts §1.7).

    The ICMPv6 checksum is left 0: the kernel fills it in on raw ICMPv6 sockets.
    """
    kind_type = ICMP_ECHO_REQUEST if family == "inet" else ICMP6_ECHO_REQUEST
    body = struct.pack("!II", timestamp_ms & 0xFFFFFFFF, kind & 0xFFFFFFFF)
    header = struct.pack("!BBHHH", kind_type, 0, 0, icmp_id & 0xFFFF, seq & 0xFFFF)
    if family == "inet":
        header = struct.pack(
            "!BBHHH", kind_type, 0, checksum(header + body), icmp_id & 0xFFFF, seq & 0xFFFF
        )
    return header + body


@dataclass(frozen=True)
class EchoReply:
    """What a received echo reply carries."""

    source: str
    icmp_id: int
    seq: int
    timestamp_ms: int
    kind: int
    length: int


def parse_echo_reply(family: str, data: bytes, source: str) -> EchoReply | None:
    """Read an echo reply (IPv4: with its IP header, as raw sockets deliver it)."""
    if family == "inet":
        if len(data) < 20:
            return None
        header_len = (data[0] & 0x0F) * 4
        source = str(ipaddress.IPv4Address(data[12:16]))
        data = data[header_len:]
        wanted = ICMP_ECHO_REPLY
    else:
        wanted = ICMP6_ECHO_REPLY
    if len(data) < 8 or data[0] != wanted or data[1] != 0:
        return None
    icmp_id, seq = struct.unpack("!HH", data[4:8])
    stamp, kind = struct.unpack("!II", data[8:16]) if len(data) >= 16 else (0, 0)
    return EchoReply(source, icmp_id, seq, stamp, kind, len(data))


def mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def gratuitous_arp(mac: str, address: str) -> bytes:
    """An RFC 5227 ARP announcement in an Ethernet broadcast frame."""
    src = mac_bytes(mac)
    ip = ipaddress.IPv4Address(address).packed
    ether = b"\xff" * 6 + src + struct.pack("!H", 0x0806)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + src + ip + b"\0" * 6 + ip
    return ether + arp


def unsolicited_na(mac: str, address: str) -> bytes:
    """An unsolicited neighbour advertisement (override set) with the target's MAC."""
    flags = 0x20000000  # O: override
    target = ipaddress.IPv6Address(address).packed
    option = struct.pack("!BB", 2, 1) + mac_bytes(mac)
    return struct.pack("!BBHI", ND_NEIGHBOR_ADVERT, 0, 0, flags) + target + option
