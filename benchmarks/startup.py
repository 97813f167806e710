"""Start-up: in.mpathd with N ``addif`` lines in one hostname file, until they are all up.

The topology is lab-active-active with N extra data addresses (those of
``mass_failover``): by default all IPv6, as ``addif ADDRESS/64 up`` lines in
hostname6.eth0, so that 1000 fit one file in the documentation networks;
with ``--inet6 M`` the other N - M are IPv4 ones (at most 755), as ``addif
ADDRESS netmask + broadcast + up`` lines in hostname.eth0.  Two figures:

* ``sim``: the engine and the simulated host, no root: the wall time of
  ``VirtualRunner.from_topology`` (hostname files parsed, the engine's boot,
  the simulator carrying out its actions), best and median of R runs.
* ``linux``: the daemon in a lab (root): from just before the process is
  started (``Lab.start_daemon``) until every address is on eth0 in the kernel
  (``ip -o addr show dev eth0``, polled every ``POLL`` s: the resolution) and
  until it answers on its control socket.

``python benchmarks/startup.py [--smoke] [--runs R] [--addresses N] [--inet6 M] [--sim-only]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from typing import Any

from common import Daemon, lab_from, machine, require_root, wait_for, write_result
from mass_failover import data_addresses, topology

from ipmp.sim.runner import VirtualRunner
from ipmp.sim.topology import parse_topology

POLL = 0.01


def sim_once(text: str, addresses: list[str]) -> float:
    """Seconds to boot the topology in the simulator; every address must be up in its kernel."""
    topo = parse_topology(text, "<startup>")
    start = time.perf_counter()
    runner = VirtualRunner.from_topology(topo)
    took = time.perf_counter() - start
    held = {a.address for a in runner.host.addresses() if a.ifname == "eth0" and a.up}
    missing = [a for a in addresses if a not in held]
    if missing:
        raise SystemExit(f"simulated eth0 lacks {len(missing)} addresses, e.g. {missing[0]}")
    return took


def sim(text: str, addresses: list[str], runs: int) -> dict[str, Any]:
    times = [sim_once(text, addresses) for _ in range(runs)]
    return {
        "runs_s": [round(t, 3) for t in times],
        "best_s": round(min(times), 3),
        "median_s": round(statistics.median(times), 3),
    }


def count_on(lab: Any, ifname: str, wanted: set[str]) -> int:
    out = lab.run(["ip", "-o", "addr", "show", "dev", ifname]).stdout
    held = {line.split()[3].split("/")[0] for line in out.splitlines() if len(line.split()) > 3}
    return len(wanted & held)


def linux_once(text: str, addresses: list[str], timeout: float) -> dict[str, Any]:
    wanted = set(addresses)
    with lab_from(text) as lab:
        daemon = Daemon(lab)
        seen: dict[str, float] = {}
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                now = time.monotonic()
                if "answers" not in seen and daemon.answers():
                    seen["answers"] = now - start
                if "all_addresses" not in seen and count_on(lab, "eth0", wanted) == len(wanted):
                    seen["all_addresses"] = time.monotonic() - start
                if len(seen) == 2:
                    return
                time.sleep(POLL)

        start = time.monotonic()
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            daemon.pid = lab.start_daemon()
            wait_for(lambda: len(seen) == 2, timeout, "all addresses up and the daemon answering")
        finally:
            done.set()
            watcher.join(timeout=5)
        return {
            "all_addresses_s": round(seen["all_addresses"], 3),
            "answers_s": round(seen["answers"], 3),
        }


def linux(text: str, addresses: list[str], runs: int, timeout: float) -> dict[str, Any]:
    results = [linux_once(text, addresses, timeout) for _ in range(runs)]
    up = [r["all_addresses_s"] for r in results]
    return {
        "runs": results,
        "all_addresses_best_s": min(up),
        "all_addresses_median_s": round(statistics.median(up), 3),
        "poll_s": POLL,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="20 addresses, 2 runs each")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--addresses", type=int, default=1000, help="data addresses in all")
    parser.add_argument(
        "--inet6", type=int, default=None, help="how many of them are IPv6 (default: all)"
    )
    parser.add_argument("--sim-only", action="store_true", help="no lab (no root needed)")
    args = parser.parse_args()
    if args.smoke:
        args.addresses, args.runs = 20, 2
    if args.inet6 is None:
        args.inet6 = args.addresses
    if args.inet6 > args.addresses or args.runs < 1:
        parser.error("expected --runs >= 1 and --inet6 <= --addresses")
    if not args.sim_only:
        require_root()
    addresses = data_addresses(args.addresses - args.inet6, args.inet6)
    text = topology(addresses)
    result: dict[str, Any] = {
        "benchmark": "startup",
        "mode": "smoke" if args.smoke else "full",
        "machine": machine(),
        "addresses": len(addresses),
        "inet6": args.inet6,
        "runs_each": args.runs,
        "sim": sim(text, addresses, args.runs),
    }
    if not args.sim_only:
        result["linux"] = linux(text, addresses, args.runs, timeout=120.0)
    result["goal_s"] = 1.0
    write_result("startup", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
