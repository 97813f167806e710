"""Mass failover: many data addresses on eth0, pull its cable, time until all answer on eth1.

The topology is lab-active-active with FAILURE_DETECTION_TIME=1000 and N
extra data addresses on eth0 (``addif ADDRESS netmask + broadcast + up``
lines in hostname.eth0).  The addresses come from the three IPv4
documentation networks, all on the group's one link: 192.0.2.0/24 (minus
the lab's own), then 198.51.100.0/24, then 203.0.113.0/24, so at most 755.
router1 (which has on-link routes to all three networks) cycles ICMP echo
requests over every address (benchmarks/prober.py); after the cable is
pulled, an address is back when the reply that ends its largest gap
arrives; the figure of one run is when the last address is back.

``python benchmarks/mass_failover.py [--smoke] [--runs R] [--addresses N]``
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import time
from typing import Any

from common import (
    Daemon,
    Prober,
    addresses_on,
    example_text,
    lab_from,
    machine,
    require_root,
    summary,
    wait_for,
    write_result,
)

RESERVED = {"192.0.2.1", "192.0.2.2", "192.0.2.19", "192.0.2.20", "192.0.2.21", "192.0.2.22"}
RESERVED |= {"192.0.2.100"}
NETWORKS = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
SEND_INTERVAL = 0.0002
LEAD = 1.0


def data_addresses(count: int) -> list[str]:
    found: list[str] = []
    for network in NETWORKS:
        for host in ipaddress.IPv4Network(network).hosts():
            if str(host) not in RESERVED:
                found.append(str(host))
    if count > len(found):
        raise SystemExit(f"at most {len(found)} addresses fit the documentation networks")
    return found[:count]


def topology(addresses: list[str]) -> str:
    text = example_text("lab-active-active", FAILURE_DETECTION_TIME="1000")
    old = "    addif 192.0.2.21 deprecated -failover netmask + broadcast + up\n"
    extra = "".join(f"addif {a} netmask + broadcast + up\n" for a in addresses)
    if old not in text:
        raise SystemExit("lab-active-active.toml changed: cannot add the addresses")
    return str(text).replace(old, old + extra, 1)


def one_run(lab: Any, addresses: list[str], timeout: float) -> dict[str, Any]:
    """Pull eth0's cable with the prober running; stop it 1 s after all moved."""
    fault_at = time.monotonic() + LEAD
    prober = Prober(lab, "router1", addresses, SEND_INTERVAL, LEAD + timeout, since=fault_at - 0.05)
    wanted = set(addresses)
    try:
        time.sleep(max(0.0, fault_at - time.monotonic()))
        t0 = time.monotonic()
        lab.set_cable("eth0", False)
        moved = wait_for(
            lambda: wanted <= set(addresses_on(lab).get("eth1", [])), timeout, "all on eth1", 0.05
        )
        time.sleep(1.0)
        prober.terminate()
        data = prober.result()
    finally:
        prober.stop()
    back: list[float] = []
    never = 0
    for _gap, end, last in data["per_address"]:
        if end is None or last is None or last <= end:
            never += 1  # no gap with replies after it: not back (or never gone)
            continue
        back.append((end - t0) * 1000)
    n = len(addresses)
    span = (data["last_send"] or 0.0) - (data["first_send"] or 0.0)
    cycle = span / max(1, data["sent"] - 1) * n * 1000
    return {
        "all_back_ms": round(max(back), 3) if back and not never else None,
        "median_back_ms": round(sorted(back)[len(back) // 2], 3) if back else None,
        "first_back_ms": round(min(back), 3) if back else None,
        "all_moved_by_poll_ms": round(moved * 1000, 1),
        "not_back": never,
        "probe_cycle_ms": round(cycle, 3),
        "sent": data["sent"],
        "replies": data["replies"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="1 run, 20 addresses")
    parser.add_argument("--runs", type=int, default=None, help="runs (full: 5)")
    parser.add_argument("--addresses", type=int, default=None, help="data addresses (full: 250)")
    args = parser.parse_args()
    require_root()
    runs = args.runs or (1 if args.smoke else 5)
    count = args.addresses or (20 if args.smoke else 250)
    addresses = data_addresses(count)
    # in.mpathd moves about 5 addresses a second here (see BENCHMARKS.md).
    timeout = 30.0 + count * 0.5
    began = time.monotonic()
    results: list[dict[str, Any]] = []
    notes: list[str] = []
    with lab_from(topology(addresses)) as lab:
        daemon = Daemon(lab).start(timeout)
        wait_for(daemon.probing_ok, 60, "both members probing ok", 0.1)
        wanted = set(addresses)
        wait_for(
            lambda: (
                wanted <= set(addresses_on(lab).get("eth0", []))
                and "192.0.2.20" in addresses_on(lab).get("eth1", [])
            ),
            timeout,
            "all configured",
            0.2,
        )
        wait_for(daemon.probing_ok, 60, "both members probing ok", 0.1)
        for number in range(runs):
            began_run = time.monotonic()
            res = one_run(lab, addresses, timeout)
            res["on_eth1_after"] = len(wanted & set(addresses_on(lab).get("eth1", [])))
            results.append(res)
            lab.set_cable("eth0", True)
            if number == runs - 1:
                break  # the failback is not measured: no need to wait for it
            try:
                wait_for(
                    lambda: wanted <= set(addresses_on(lab).get("eth0", [])),
                    timeout,
                    "failback",
                    0.5,
                )
            except TimeoutError:
                on_eth0 = len(wanted & set(addresses_on(lab).get("eth0", [])))
                notes.append(
                    f"run {number + 1}: failback incomplete after {timeout:.0f} s "
                    f"({on_eth0} of {count} addresses back on eth0); runs stopped"
                )
                break
            wait_for(daemon.probing_ok, 30, "both members probing ok again", 0.1)
            res["cycle_s"] = round(time.monotonic() - began_run, 1)
            time.sleep(0.5)
        notes.append(f"in.mpathd log lines: {len(daemon.log().splitlines())}")
    figures = [r["all_back_ms"] for r in results if r["all_back_ms"] is not None]
    result = {
        "benchmark": "mass_failover",
        "mode": "smoke" if args.smoke else "full",
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "runs": len(results),
        "addresses": count,
        "all_back_ms": summary(figures),
        "incomplete_runs": sum(r["all_back_ms"] is None for r in results),
        "goals": {"all_back_ms_max": 250, "addresses": 1000},
        "notes": notes,
        "run_details": results,
        "duration_s": round(time.monotonic() - began, 1),
    }
    write_result("mass_failover", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
