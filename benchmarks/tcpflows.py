"""TCP bulk flows for the benchmarks: a sink and a source, run inside lab namespaces.

``python tcpflows.py sink --port P [--flows N] [--timeout S] ADDRESS...``
listens on ``ADDRESS:P`` for every address (one process, a selector over
all the sockets), prints ``ready`` once listening, reads every accepted
connection to its end and closes it.  When ``N`` connections have ended
(or after ``--timeout``) it prints one JSON object: per connection the
peer's address and port, the local address, the bytes received and, from
TCP_INFO just before the close, ``rcv_ooopack`` (out-of-order packets this
socket received) and ``total_retrans``.

``python tcpflows.py source --port P --duration S ADDRESS...`` opens one
connection per address (the kernel chooses source address and port), sends
as fast as it can on all of them for ``S`` seconds, then shuts each down for
writing and waits for the sink to close it, so that every byte sent was
delivered.  It prints one JSON object: per flow its local and remote
address and port, the bytes sent and, from TCP_INFO after the sink's close,
``reord_seen`` (reordering events the sender detected), ``total_retrans``,
``bytes_retrans`` and ``dsack_dups``.  ``--device NIC[,NIC...]`` binds flow
k to the k-th NIC of the list, cycling (SO_BINDTODEVICE): for controls
without the multipath hash.

Neither imports ipmp: they start fast inside ``ip netns exec``.
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import struct
import sys
import time
from typing import Any

CHUNK = 256 * 1024
TCP_INFO_LEN = 256
# Offsets in struct tcp_info (linux/tcp.h) of the fields reported.
TCP_INFO_FIELDS: dict[str, tuple[int, str]] = {
    "total_retrans": (100, "I"),
    "bytes_retrans": (208, "Q"),
    "dsack_dups": (216, "I"),
    "reord_seen": (220, "I"),
    "rcv_ooopack": (224, "I"),
}


def tcp_info(sock: socket.socket, names: tuple[str, ...]) -> dict[str, int | None]:
    """The named TCP_INFO fields of ``sock`` (None where this kernel's struct is too short)."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, TCP_INFO_LEN)
    out: dict[str, int | None] = {}
    for name in names:
        offset, fmt = TCP_INFO_FIELDS[name]
        size = struct.calcsize(fmt)
        out[name] = (
            int(struct.unpack_from(f"={fmt}", raw, offset)[0])
            if len(raw) >= offset + size
            else None
        )
    return out


def sink(addresses: list[str], port: int, flows: int, timeout: float) -> dict[str, Any]:
    sel = selectors.DefaultSelector()
    listeners: list[socket.socket] = []
    for address in addresses:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address, port))
        listener.listen(64)
        listener.setblocking(False)
        sel.register(listener, selectors.EVENT_READ, None)
        listeners.append(listener)
    print("ready", flush=True)
    buf = bytearray(CHUNK)
    counts: dict[socket.socket, list[Any]] = {}
    done: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(done) < flows and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=0.5):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if key.data is None:  # a listener
                conn, peer = sock.accept()
                conn.setblocking(False)
                counts[conn] = [peer, conn.getsockname(), 0]
                sel.register(conn, selectors.EVENT_READ, "conn")
                continue
            try:
                n = sock.recv_into(buf)
            except BlockingIOError:
                continue
            if n:
                counts[sock][2] += n
                continue
            peer, local, total = counts.pop(sock)
            info = tcp_info(sock, ("rcv_ooopack", "total_retrans"))
            sel.unregister(sock)
            sock.close()
            done.append({"peer": list(peer), "local": list(local), "bytes": total, **info})
    unfinished = [
        {"peer": list(peer), "local": list(local), "bytes": total}
        for peer, local, total in counts.values()
    ]
    for sock in [*counts, *listeners]:
        sock.close()
    return {"flows": done, "unfinished": unfinished}


def source(
    addresses: list[str], port: int, duration: float, timeout: float, devices: list[str]
) -> dict[str, Any]:
    socks: list[socket.socket] = []
    names: dict[socket.socket, tuple[list[Any], list[Any]]] = {}
    for k, address in enumerate(addresses):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if devices:
            device = devices[k % len(devices)]
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
        sock.settimeout(10)
        sock.connect((address, port))
        sock.setblocking(False)
        socks.append(sock)
        names[sock] = (list(sock.getsockname()), list(sock.getpeername()))
    sent = dict.fromkeys(socks, 0)
    payload = memoryview(b"\x5a" * CHUNK)
    sel = selectors.DefaultSelector()
    for sock in socks:
        sel.register(sock, selectors.EVENT_WRITE)
    began = time.monotonic()
    deadline = began + duration
    while (now := time.monotonic()) < deadline:
        for key, _ in sel.select(timeout=deadline - now):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            try:
                sent[sock] += sock.send(payload)
            except BlockingIOError:
                continue
    sending_s = time.monotonic() - began
    # Half-close and wait for each sink to close: every byte sent was delivered.
    for sock in socks:
        sel.modify(sock, selectors.EVENT_READ)
        sock.shutdown(socket.SHUT_WR)
    open_socks = set(socks)
    infos: dict[socket.socket, dict[str, int | None]] = {}
    end = time.monotonic() + timeout
    while open_socks and time.monotonic() < end:
        for key, _ in sel.select(timeout=0.5):
            sock = key.fileobj
            assert isinstance(sock, socket.socket)
            if sock.recv(4096) == b"":
                infos[sock] = tcp_info(
                    sock, ("reord_seen", "total_retrans", "bytes_retrans", "dsack_dups")
                )
                sel.unregister(sock)
                open_socks.discard(sock)
    flows: list[dict[str, Any]] = []
    for sock in socks:
        flows.append(
            {
                "local": names[sock][0],
                "remote": names[sock][1],
                "bytes": sent[sock],
                "closed_by_sink": sock in infos,
                **infos.get(sock, {}),
            }
        )
        sock.close()
    return {"sending_s": round(sending_s, 3), "flows": flows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=("sink", "source"))
    parser.add_argument("addresses", nargs="+")
    parser.add_argument("--port", type=int, default=5001)
    parser.add_argument("--flows", type=int, default=0, help="sink: connections to wait for")
    parser.add_argument("--duration", type=float, default=2.0, help="source: seconds of sending")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument(
        "--device", default="", help="source: NIC[,NIC...]: bind flow k to the k-th (cycling)"
    )
    args = parser.parse_args()
    if args.role == "sink":
        flows = args.flows or len(args.addresses)
        result = sink(args.addresses, args.port, flows, args.timeout)
    else:
        devices = [d for d in args.device.split(",") if d]
        result = source(args.addresses, args.port, args.duration, args.timeout, devices)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
