"""The hand-built rtnetlink address messages: layout and acknowledgements."""

from __future__ import annotations

import socket
import struct

from ipmp.linux.rtnl_batch import (
    IFA_ADDRESS,
    IFA_BROADCAST,
    IFA_CACHEINFO,
    IFA_F_NODAD,
    IFA_FLAGS,
    IFA_LABEL,
    IFA_LOCAL,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_REPLACE,
    NLM_F_REQUEST,
    NLMSG_ERROR,
    RTM_DELADDR,
    RTM_NEWADDR,
    AddressChange,
    acknowledgements,
    encode,
    encode_link_mtu,
    refusal_text,
)


def attributes(message: bytes) -> dict[int, bytes]:
    """The rtattrs after nlmsghdr (16 bytes) and ifaddrmsg (8 bytes)."""
    out: dict[int, bytes] = {}
    offset = 24
    while offset < len(message):
        length, kind = struct.unpack_from("=HH", message, offset)
        out[kind] = message[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    assert offset == len(message)
    return out


def test_ipv4_add_carries_label_broadcast_and_deprecation() -> None:
    change = AddressChange(
        True,
        "inet",
        7,
        "192.0.2.19",
        24,
        label="eth1:3",
        broadcast="192.0.2.255",
        deprecated=True,
    )
    message = encode(change, 42)
    length, kind, flags, seq, pid = struct.unpack_from("=IHHII", message)
    assert (length, kind, seq, pid) == (len(message), RTM_NEWADDR, 42, 0)
    assert flags == NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
    family, prefixlen, ifa_flags, scope, index = struct.unpack_from("=BBBBI", message, 16)
    assert (family, prefixlen, ifa_flags, scope, index) == (socket.AF_INET, 24, 0, 0, 7)
    attrs = attributes(message)
    assert attrs[IFA_LOCAL] == attrs[IFA_ADDRESS] == socket.inet_aton("192.0.2.19")
    assert attrs[IFA_LABEL] == b"eth1:3\0"
    assert attrs[IFA_BROADCAST] == socket.inet_aton("192.0.2.255")
    preferred, valid, _, _ = struct.unpack("=IIII", attrs[IFA_CACHEINFO])
    assert (preferred, valid) == (0, 0xFFFFFFFF)
    assert IFA_FLAGS not in attrs


def test_ipv6_add_skips_duplicate_address_detection() -> None:
    message = encode(AddressChange(True, "inet6", 3, "2001:db8::19", 64), 1)
    assert struct.unpack_from("=BBBBI", message, 16) == (socket.AF_INET6, 64, IFA_F_NODAD, 0, 3)
    attrs = attributes(message)
    assert attrs[IFA_ADDRESS] == socket.inet_pton(socket.AF_INET6, "2001:db8::19")
    assert struct.unpack("=I", attrs[IFA_FLAGS]) == (IFA_F_NODAD,)
    assert IFA_LABEL not in attrs and IFA_CACHEINFO not in attrs


def test_delete_names_only_the_address() -> None:
    message = encode(AddressChange(False, "inet", 2, "198.51.100.7", 24, label="x"), 9)
    _, kind, flags, seq, _ = struct.unpack_from("=IHHII", message)
    assert (kind, flags, seq) == (RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK, 9)
    assert set(attributes(message)) == {IFA_LOCAL, IFA_ADDRESS}


def test_acknowledgements_give_each_sequence_its_errno() -> None:
    def ack(seq: int, code: int) -> bytes:
        original = struct.pack("=IHHII", 16, RTM_NEWADDR, 0, seq, 0)
        header = struct.pack("=IHHII", 36, NLMSG_ERROR, 0, seq, 0)
        return header + struct.pack("=i", code) + original

    data = ack(5, 0) + ack(6, -17) + struct.pack("=IHHII", 16, 3, 0, 7, 0)  # NLMSG_DONE: skipped
    assert acknowledgements(data) == [(5, 0), (6, 17)]
    assert acknowledgements(b"\x01\x00") == []


def test_an_mtu_request_and_the_kernels_refusal_text() -> None:
    wire = encode_link_mtu(7, 1400, 3)
    length, kind, flags, seq, _ = struct.unpack_from("=IHHII", wire)
    assert (length, kind, flags, seq) == (len(wire), 19, 0x5, 3)
    assert struct.unpack_from("=BxHiII", wire, 16)[2] == 7
    assert struct.unpack_from("=HHI", wire, 32) == (8, 4, 1400)  # IFLA_MTU
    # NLMSG_ERROR with NLM_F_ACK_TLVS: errno, the request's header, NLMSGERR_ATTR_MSG.
    text = b"mtu less than device minimum\0"
    tlv = struct.pack("=HH", 4 + len(text), 1) + text + b"\0" * (-len(text) % 4)
    body = struct.pack("=i", -22) + wire[:16] + tlv
    error = struct.pack("=IHHII", 16 + len(body), 2, 0x200, 3, 0) + body
    assert refusal_text(error) == "mtu less than device minimum"
    assert refusal_text(error[:20]) == ""
