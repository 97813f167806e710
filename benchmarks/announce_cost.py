"""What one gratuitous ARP costs, the way in.mpathd sends it and the cheap way.

in.mpathd (``ipmp.linux.stack._announce_once``) opens an AF_PACKET socket
with protocol ETH_P_ARP for every frame, binds it to the interface, sends
and closes it, on its event loop.  A packet socket with a protocol
registers a packet handler; rebinding and closing it unregister that
handler, and the kernel waits for an RCU grace period (synchronize_net)
each time.  A socket opened with protocol 0 registers nothing, but its
close still waits; one socket kept open costs only the send.

This script times the three ways in a lab host namespace (eth0 of
lab-active-active, administratively up, no daemon):

``python benchmarks/announce_cost.py [--smoke] [--frames N]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from common import example_text, lab_from, machine, require_root, summary, write_result

INNER = r"""
import json, socket, sys, time
frames, ifname = int(sys.argv[1]), sys.argv[2]
frame = b"\xff" * 6 + b"\x08\x00\x20\xb9\x19\xfa" + b"\x08\x06" + bytes(28)
out = {}
for name, proto in (("eth_p_arp_per_frame", socket.htons(0x0806)), ("proto_0_per_frame", 0)):
    times = []
    for _ in range(frames):
        t = time.monotonic()
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, proto) as s:
            s.bind((ifname, 0))
            s.send(frame)
        times.append((time.monotonic() - t) * 1000)
    out[name] = times
with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as s:
    s.bind((ifname, 0))
    t = time.monotonic()
    for _ in range(frames):
        s.send(frame)
    out["one_socket_per_frame"] = [(time.monotonic() - t) * 1000 / frames]
print(json.dumps(out))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="10 frames each way")
    parser.add_argument("--frames", type=int, default=None, help="frames each way (full: 200)")
    args = parser.parse_args()
    require_root()
    frames = args.frames or (10 if args.smoke else 200)
    began = time.monotonic()
    with lab_from(example_text("lab-active-active")) as lab:
        lab.run(["ip", "link", "set", "eth0", "up"])
        argv = ["ip", "netns", "exec", lab.host_ns, sys.executable, "-c", INNER, str(frames)]
        out = subprocess.run([*argv, "eth0"], capture_output=True, text=True, check=True)
        data = json.loads(out.stdout)
    result = {
        "benchmark": "announce_cost",
        "mode": "smoke" if args.smoke else "full",
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "frames": frames,
        "ms_per_frame": {name: summary(values) for name, values in data.items()},
        "duration_s": round(time.monotonic() - began, 1),
    }
    write_result("announce_cost", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
