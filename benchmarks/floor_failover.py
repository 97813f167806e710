"""The floor of a link failover: the least any daemon could do, run in the lab host namespace.

``python floor_failover.py FROM TO ADDRESS/PREFIXLEN`` binds a netlink
socket to link events, prints ``ready``, waits until ``FROM`` loses its
carrier, then moves the address to ``TO`` (delete, add) and sends one
gratuitous ARP from ``TO`` (AF_PACKET), and prints a JSON object with the
monotonic times of the carrier event and of the ARP.  No daemon runs.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import sys
import time

from pyroute2 import IPRoute

IFF_LOWER_UP = 1 << 16
RTMGRP_LINK = 1
RTM_NEWLINK = 16


def garp(ifname: str, mac: bytes, address: str) -> None:
    ip = socket.inet_aton(address)
    frame = b"\xff" * 6 + mac + struct.pack("!H", 0x0806)
    frame += struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + b"\0" * 6 + ip
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((ifname, 0))
        sock.send(frame)


def wait_carrier_lost(index: int) -> float:
    """Print ``ready``, then block until link ``index`` reports no IFF_LOWER_UP."""
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as nl:
        nl.bind((0, RTMGRP_LINK))
        print("ready", flush=True)
        while True:
            data = nl.recv(65536)
            now = time.monotonic()
            offset = 0
            while offset + 16 <= len(data):
                length, kind = struct.unpack_from("=IH", data, offset)
                if kind == RTM_NEWLINK:
                    _f, _p, _t, ifindex, flags = struct.unpack_from("=BBHiI", data, offset + 16)
                    if ifindex == index and not flags & IFF_LOWER_UP:
                        return now
                offset += (length + 3) & ~3
                if length == 0:
                    break


def main(argv: list[str]) -> int:
    source, target, spec = argv
    address, prefixlen = spec.split("/")
    with IPRoute() as ipr:
        src_index = ipr.link_lookup(ifname=source)[0]
        dst_index = ipr.link_lookup(ifname=target)[0]
        mac = bytes.fromhex(ipr.get_links(dst_index)[0].get_attr("IFLA_ADDRESS").replace(":", ""))
        carrier_lost = wait_carrier_lost(src_index)
        # The address may already be gone with the link.
        with contextlib.suppress(Exception):
            ipr.addr("del", index=src_index, address=address, prefixlen=int(prefixlen))
        ipr.addr("add", index=dst_index, address=address, prefixlen=int(prefixlen))
        added = time.monotonic()
        garp(target, mac, address)
        sent = time.monotonic()
    print(json.dumps({"carrier_lost": carrier_lost, "added": added, "garp": sent}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
