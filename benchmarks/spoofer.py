"""A probe-reply forger for the spoofing benchmark, run inside a lab namespace.

``python spoofer.py forge --variant none|id|seq|timestamp --host-mac MAC [--copies N]``
runs in the spoofer's neighbour namespace.  The switch mirrors the host
NIC's frames to it (see spoofing.py); for every in.mpathd unicast probe it
sees (ICMP or ICMPv6 echo request whose 32-bit kind word is 0x1234, the
PROBE_UNI of facts 1.7) it sends forged echo replies straight back to the
host NIC (Ethernet destination ``--host-mac``), from a raw packet socket so
that the IP source is the probed target's address ("right source").  Each
forgery is wrong in one way only:

* ``id``: the probe's sequence and timestamp, another ICMP id (the id xor 1,
  which is the sibling NIC's id when the interface indexes differ only in
  bit 0, xor 0x8000 and xor 0xffff);
* ``seq``: the probe's id and timestamp, a sequence number the daemon did
  not send to that target: half the sequence space away, the next one (not
  yet sent), 53 behind (just out of the 52-probe window), and an in-window
  one that was sent to another target, when the spoofer has seen one;
* ``timestamp``: the probe's id and sequence, a 32-bit timestamp the daemon
  never sent (the real one xor 0x5a5a5a5a);
* ``none``: nothing (the control: the same fault without forgeries).

Every forgery is sent ``--copies`` times.  On SIGTERM it prints one JSON
object: probes seen and replies forged, per family.

``python spoofer.py count --mac MAC --interface IF`` runs in the host
namespace and counts the echo replies that arrive on IF with Ethernet source
MAC (the spoofer's: it forges with its own MAC, so the switch's forwarding
table is not disturbed); on SIGTERM it prints ``{"arrived": {...}}``.
"""

from __future__ import annotations

import argparse
import json
import select
import signal
import socket
import struct
import sys
from collections import deque
from collections.abc import Iterator

from ipmp.linux.packets import checksum

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
PACKET_OUTGOING = 4
PROBE_UNI = 0x1234
WINDOW = 52


def mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def echo(kind: int, icmp_id: int, seq: int, rest: bytes) -> bytes:
    """An ICMP(v6) echo message with checksum 0 (the caller fills it in)."""
    return struct.pack("!BBHHH", kind, 0, 0, icmp_id & 0xFFFF, seq & 0xFFFF) + rest


def with_checksum(message: bytes, value: int) -> bytes:
    return message[:2] + struct.pack("!H", value) + message[4:]


def ipv4_frame(dst_mac: bytes, src_mac: bytes, src: bytes, dst: bytes, icmp: bytes) -> bytes:
    icmp = with_checksum(icmp, checksum(icmp))
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(icmp), 0, 0x4000, 64, 1, 0, src, dst)
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return dst_mac + src_mac + struct.pack("!H", ETH_P_IP) + header + icmp


def ipv6_frame(dst_mac: bytes, src_mac: bytes, src: bytes, dst: bytes, icmp: bytes) -> bytes:
    pseudo = src + dst + struct.pack("!I3xB", len(icmp), 58)
    icmp = with_checksum(icmp, checksum(pseudo + icmp))
    header = struct.pack("!IHBB16s16s", 6 << 28, len(icmp), 58, 255, src, dst)
    return dst_mac + src_mac + struct.pack("!H", ETH_P_IPV6) + header + icmp


class Probe:
    """One in.mpathd unicast probe read off the wire."""

    def __init__(self, family: str, src: bytes, dst: bytes, icmp: bytes) -> None:
        self.family = family
        self.src, self.dst = src, dst
        self.icmp_id, self.seq = struct.unpack("!HH", icmp[4:8])
        self.stamp, self.kind = struct.unpack("!II", icmp[8:16])


def parse_probe(frame: bytes, host_mac: bytes) -> Probe | None:
    """The probe in ``frame`` if it is an in.mpathd unicast echo request from the host."""
    if len(frame) < 14 or frame[6:12] != host_mac:
        return None
    (ethertype,) = struct.unpack("!H", frame[12:14])
    if ethertype == ETH_P_IP and len(frame) >= 34 and frame[23] == 1:
        ihl = (frame[14] & 0x0F) * 4
        icmp = frame[14 + ihl :]
        if len(icmp) >= 16 and icmp[0] == 8 and frame[30] < 224:
            return Probe("inet", frame[26:30], frame[30:34], icmp)
    if ethertype == ETH_P_IPV6 and len(frame) >= 54 and frame[20] == 58:
        icmp = frame[54:]
        if len(icmp) >= 16 and icmp[0] == 128 and frame[38] != 0xFF:
            return Probe("inet6", frame[22:38], frame[38:54], icmp)
    return None


class Forger:
    """Turns each seen probe into forged replies of one variant."""

    def __init__(self, variant: str, host_mac: bytes, own_mac: bytes, copies: int) -> None:
        self.variant = variant
        self.host_mac, self.own_mac = host_mac, own_mac
        self.copies = copies
        # (family, id) -> recent (seq, target) pairs, for in-window wrong sequences.
        self.recent: dict[tuple[str, int], deque[tuple[int, bytes]]] = {}
        self.seen = {"inet": 0, "inet6": 0}
        self.forged = {"inet": 0, "inet6": 0}

    def wrong(self, probe: Probe) -> list[tuple[int, int, int]]:
        """``(id, seq, timestamp)`` of each forgery for ``probe``."""
        i, s, t = probe.icmp_id, probe.seq, probe.stamp
        if self.variant == "none":
            return []
        if self.variant == "id":
            return [(i ^ 1, s, t), (i ^ 0x8000, s, t), (i ^ 0xFFFF, s, t)]
        if self.variant == "timestamp":
            return [(i, s, t ^ 0x5A5A5A5A)]
        history = self.recent.setdefault((probe.family, i), deque(maxlen=WINDOW // 2))
        forged = [(i, s ^ 0x8000, t), (i, s + 1, t), (i, s - WINDOW - 1, t)]
        other = [seq for seq, target in history if target != probe.dst]
        # Never a sequence number that went to this target: that would be a right reply.
        mine = {seq for seq, target in history if target == probe.dst} | {s}
        if other and other[-1] not in mine:
            forged.append((i, other[-1], t))
        history.append((s, probe.dst))
        return [(a, b & 0xFFFF, c) for a, b, c in forged]

    def frames(self, probe: Probe) -> list[bytes]:
        self.seen[probe.family] += 1
        out: list[bytes] = []
        for icmp_id, seq, stamp in self.wrong(probe):
            rest = struct.pack("!II", stamp & 0xFFFFFFFF, probe.kind)
            if probe.family == "inet":
                frame = ipv4_frame(
                    self.host_mac, self.own_mac, probe.dst, probe.src, echo(0, icmp_id, seq, rest)
                )
            else:
                frame = ipv6_frame(
                    self.host_mac, self.own_mac, probe.dst, probe.src, echo(129, icmp_id, seq, rest)
                )
            out += [frame] * self.copies
        self.forged[probe.family] += len(out)
        return out


def own_mac(interface: str) -> str:
    with open(f"/sys/class/net/{interface}/address", encoding="ascii") as handle:
        return handle.read().strip()


def _incoming(interface: str) -> tuple[socket.socket, Iterator[bytes]]:
    """A packet socket on ``interface`` and the frames it receives until SIGTERM.

    Prints ``ready`` once listening; frames this namespace sent are skipped.
    """
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.bind((interface, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    stopping: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))

    def frames() -> Iterator[bytes]:
        print("ready", flush=True)
        while not stopping:
            try:
                readable, _, _ = select.select([sock], [], [], 0.1)
            except InterruptedError:
                continue
            if not readable:
                continue
            frame, address = sock.recvfrom(65536)
            if address[2] != PACKET_OUTGOING:
                yield frame

    return sock, frames()


def forge(args: argparse.Namespace) -> dict[str, object]:
    sock, frames = _incoming(args.interface)
    forger = Forger(
        args.variant, mac_bytes(args.host_mac), mac_bytes(own_mac(args.interface)), args.copies
    )
    for frame in frames:
        probe = parse_probe(frame, forger.host_mac)
        if probe is None or probe.kind != PROBE_UNI:
            continue
        for forged in forger.frames(probe):
            sock.send(forged)
    return {"variant": args.variant, "probes_seen": forger.seen, "forged_sent": forger.forged}


def count(args: argparse.Namespace) -> dict[str, object]:
    _, frames = _incoming(args.interface)
    mac = mac_bytes(args.mac)
    arrived = {"inet": 0, "inet6": 0}
    for frame in frames:
        if frame[6:12] != mac:
            continue
        (ethertype,) = struct.unpack("!H", frame[12:14])
        if ethertype == ETH_P_IP and frame[23] == 1:
            if frame[14 + (frame[14] & 0x0F) * 4] == 0:
                arrived["inet"] += 1
        elif ethertype == ETH_P_IPV6 and frame[20] == 58 and frame[54] == 129:
            arrived["inet6"] += 1
    return {"arrived": arrived}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    forge_parser = sub.add_parser("forge", help="answer mirrored probes with forgeries")
    forge_parser.add_argument(
        "--variant", choices=("none", "id", "seq", "timestamp"), required=True
    )
    forge_parser.add_argument("--host-mac", required=True)
    forge_parser.add_argument("--interface", default="eth0")
    forge_parser.add_argument("--copies", type=int, default=2)
    count_parser = sub.add_parser("count", help="count forged replies arriving on a NIC")
    count_parser.add_argument("--mac", required=True, help="the spoofer's MAC")
    count_parser.add_argument("--interface", required=True)
    args = parser.parse_args(argv)
    result = forge(args) if args.mode == "forge" else count(args)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
