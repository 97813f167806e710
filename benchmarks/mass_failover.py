"""Mass failover: many data addresses on eth0, pull its cable, time until all answer on eth1.

The topology is lab-active-active with FAILURE_DETECTION_TIME=1000 and N
extra data addresses on eth0: IPv4 ones as ``addif ADDRESS netmask +
broadcast + up`` lines in hostname.eth0, IPv6 ones as ``addif ADDRESS/64 up``
lines in hostname6.eth0.  The IPv4 addresses come from the three IPv4
documentation networks, all on the group's one link: 192.0.2.0/24 (minus the
lab's own), then 198.51.100.0/24, then 203.0.113.0/24, so at most 755; the
IPv6 ones from 2001:db8::/64 (router1 gets 2001:db8::1/64).  The full run
uses 750 IPv4 and 250 IPv6 addresses: 1000.

router1 cycles ICMP and ICMPv6 echo requests over every address
(benchmarks/prober.py).  After the cable is pulled, an address is back when
the first reply arrives to a request sent after its first unanswered one
(``prober.summarise``); the figure of one run is when the last address is
back.  Its resolution is one probe cycle (every address is asked once per
cycle: ``probe_cycle_ms`` in the JSON), so each run also reports
``last_unanswered_ms``, when the last request that an address left
unanswered was sent: the true time lies between the two.

``python benchmarks/mass_failover.py [--smoke] [--runs R] [--addresses N] [--inet6 M]``
"""

from __future__ import annotations

import argparse
import ipaddress
import subprocess
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
from timeline import HostMonitor, bins, carrier_lost, first, last, ms, write_trace

RESERVED = {"192.0.2.1", "192.0.2.2", "192.0.2.19", "192.0.2.20", "192.0.2.21", "192.0.2.22"}
RESERVED |= {"192.0.2.100"}
NETWORKS = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
ROUTER6 = "2001:db8::1"
SEND_INTERVAL = 0.0001
LEAD = 1.0


def data_addresses(count: int, inet6: int = 0) -> list[str]:
    """``count`` IPv4 data addresses, then ``inet6`` IPv6 ones from 2001:db8::/64."""
    found: list[str] = []
    for network in NETWORKS:
        for host in ipaddress.IPv4Network(network).hosts():
            if str(host) not in RESERVED:
                found.append(str(host))
    if count > len(found):
        raise SystemExit(f"at most {len(found)} IPv4 addresses fit the documentation networks")
    base = ipaddress.IPv6Address("2001:db8::1000")
    return found[:count] + [str(base + i) for i in range(inet6)]


def topology(addresses: list[str]) -> str:
    text = example_text("lab-active-active", FAILURE_DETECTION_TIME="1000")
    old = "    addif 192.0.2.21 deprecated -failover netmask + broadcast + up\n"
    old6 = "hostname6 = '''\n-failover group test up\n"
    v4 = "".join(f"addif {a} netmask + broadcast + up\n" for a in addresses if ":" not in a)
    v6 = "".join(f"addif {a}/64 up\n" for a in addresses if ":" in a)
    if old not in text or old6 not in text:
        raise SystemExit("lab-active-active.toml changed: cannot add the addresses")
    return str(text).replace(old, old + v4, 1).replace(old6, old6 + v6, 1)


def one_run(
    lab: Any, addresses: list[str], timeout: float, trace: list[Any] | None = None
) -> dict[str, Any]:
    """Pull eth0's cable with the prober running; stop it 1 s after all moved.

    With ``trace`` the cable is plugged back before the prober stops, the
    failback is awaited, and the run's timeline is appended to ``trace``.
    The traced run is one more, not counted in the figures: ``ip monitor``
    printing a line per address change takes CPU from the daemon.
    """
    fault_at = time.monotonic() + LEAD
    prober = Prober(
        lab,
        "router1",
        addresses,
        SEND_INTERVAL,
        LEAD + 3 * timeout,
        fault_at - 0.05,
        trace is not None,
    )
    monitor = HostMonitor(lab) if trace is not None else None
    wanted = set(addresses)
    try:
        time.sleep(max(0.0, fault_at - time.monotonic()))
        t0 = time.monotonic()
        lab.set_cable("eth0", False)
        moved = wait_for(
            lambda: wanted <= set(addresses_on(lab).get("eth1", [])), timeout, "all on eth1", 0.05
        )
        time.sleep(1.0)
        if trace is not None:
            t1 = time.monotonic()
            lab.set_cable("eth0", True)
            wait_for(lambda: wanted <= set(addresses_on(lab).get("eth0", [])), timeout, "back", 0.2)
            time.sleep(0.5)
        prober.terminate()
        data = prober.result()
    finally:
        prober.stop()
        lines = monitor.stop() if monitor is not None else []
    back: list[tuple[float, str]] = []
    still_out: list[float] = []
    never: list[str] = []
    unbroken = 0
    for address, (lost_from, answer, _last, _gap, last_lost) in zip(
        addresses, data["per_address"], strict=True
    ):
        if lost_from is None:
            unbroken += 1  # no request lost: no outage to time
        elif answer is None:
            never.append(address)
        else:
            back.append((round((answer - t0) * 1000, 3), address))
            still_out.append(round((last_lost - t0) * 1000, 3))
    back.sort()
    if trace is not None:
        moved_to = r"^\d+: eth1\s+inet6? "
        back_on = r"^\d+: eth0\s+inet6? "
        end_ms = (time.monotonic() - t0) * 1000
        trace.append(
            {
                "title": f"Mass failover: {len(addresses)} data addresses on eth0, its cable "
                "pulled, then plugged back; router1 cycles echo requests over all of them",
                "bin_ms": 10.0,
                "bins": bins([t for _, t in data["replies"]], t0, -200.0, end_ms, 10.0),
                "events": [
                    [0.0, "cable pulled"],
                    [ms(first(lines, carrier_lost("eth0"), t0), t0), "eth0 carrier lost"],
                    [ms(first(lines, moved_to, t0), t0), "first address on eth1"],
                    [ms(last(lines, moved_to, t0, t1), t0), "last address on eth1"],
                    [round(back[-1][0], 1) if back and not never else None, "all answer again"],
                    [round((t1 - t0) * 1000, 1), "cable plugged"],
                    [ms(last(lines, back_on, t1), t0), "failback: last address on eth0"],
                ],
            }
        )
    n = len(addresses)
    span = (data["last_send"] or 0.0) - (data["first_send"] or 0.0)
    cycle = span / max(1, data["sent"] - 1) * n * 1000
    return {
        "all_back_ms": back[-1][0] if back and not never else None,
        # A lower bound: some address still did not answer a request sent then.
        "last_unanswered_ms": max(still_out) if still_out and not never else None,
        "median_back_ms": back[len(back) // 2][0] if back else None,
        "first_back_ms": back[0][0] if back else None,
        "all_moved_by_poll_ms": round(moved * 1000, 1),
        "not_back": len(never),
        "not_back_addresses": never[:20],
        "never_lost": unbroken,
        "slowest_ms": back[-10:][::-1],
        "probe_cycle_ms": round(cycle, 3),
        "sent": data["sent"],
        "replies": len(data["replies"]) if trace is not None else data["replies"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="1 run, 20 addresses")
    parser.add_argument("--runs", type=int, default=None, help="runs (full: 5)")
    parser.add_argument("--addresses", type=int, default=None, help="IPv4 addresses (full: 750)")
    parser.add_argument("--inet6", type=int, default=None, help="IPv6 addresses (full: 250)")
    args = parser.parse_args()
    require_root()
    runs = args.runs or (1 if args.smoke else 5)
    v4 = args.addresses if args.addresses is not None else (10 if args.smoke else 750)
    v6 = args.inet6 if args.inet6 is not None else (10 if args.smoke else 250)
    addresses = data_addresses(v4, v6)
    count = len(addresses)
    timeout = 30.0 + count * 0.05
    began = time.monotonic()
    results: list[dict[str, Any]] = []
    notes: list[str] = []
    traces: list[Any] = []
    with lab_from(topology(addresses)) as lab:
        router1 = lab.neighbour_ns("router1")
        lab_ip = ["ip", "-n", router1, "addr", "add", f"{ROUTER6}/64", "dev", "eth0", "nodad"]
        subprocess.run(lab_ip, check=True, capture_output=True)
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
            results.append(res)
            lab.set_cable("eth0", True)
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
        else:
            # One more run, not counted: the timeline (ip monitor costs CPU too).
            traced = one_run(lab, addresses, timeout, traces)
            notes.append(f"traced run (not counted): all back {traced['all_back_ms']} ms")
        notes.append(f"in.mpathd log lines: {len(daemon.log().splitlines())}")
    write_trace("mass_failover", args.smoke, traces)
    figures = [r["all_back_ms"] for r in results if r["all_back_ms"] is not None]
    result = {
        "benchmark": "mass_failover",
        "mode": "smoke" if args.smoke else "full",
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "runs": len(results),
        "addresses": count,
        "inet6_addresses": v6,
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
