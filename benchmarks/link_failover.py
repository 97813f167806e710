"""Link failover outage: pull eth0's cable, measure the largest gap in echo replies.

router1 sends an ICMP echo request to the data address 192.0.2.19 every
1 ms (benchmarks/prober.py); the outage of one run is the largest gap
between consecutive replies from 50 ms before the cable is pulled to the end
of the window.  In the daemon phase an off-link peer behind router1
(203.0.113.10, reached through ``default via 192.0.2.1`` added after the
daemon started, which the kernel binds to eth0) pings the same address at
the same time: its outage (``offlink_outage_ms``) needs the route to follow
the group too (issue 10; goal: at most the on-link outage + 2 ms, every run).
One prober process sends both streams, interleaved (every 0.5 ms, so each
address still gets one request per ms): one clock and one scheduler, so the
difference of the two outages is the path's, not the busy machine's.
Two phases, each in its own lab:

* ``daemon``: in.mpathd (lab-active-active, FAILURE_DETECTION_TIME=1000 so
  that failback after each re-plug is quick; link-based detection does not
  depend on it) moves the address.  Between runs the cable is re-plugged and
  the script waits for the failback and for both members probing ``ok``.
* ``floor``: no daemon; the addresses are configured by hand and
  benchmarks/floor_failover.py only waits for the carrier event (netlink),
  moves the address to eth1 and sends one gratuitous ARP.

``python benchmarks/link_failover.py [--smoke] [--runs N]``
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any

from common import (
    HERE,
    OFFLINK_PEER,
    Daemon,
    Prober,
    add_default_route,
    default_route_devices,
    example_text,
    holder,
    lab_from,
    largest_gap,
    machine,
    reply_times,
    require_root,
    summary,
    wait_for,
    with_offlink_peer,
    write_result,
)
from timeline import HostMonitor, address_added, bins, carrier_lost, first, ms, write_trace

from ipmp.lab.lab import Lab

ADDRESS = "192.0.2.19"
INTERVAL = 0.001
LEAD = 0.3
WINDOW = 1.5


def _outage(
    data: dict[str, Any], t0: float, index: int = 0
) -> tuple[float | None, float, float, int]:
    """The largest reply gap from 50 ms before ``t0`` (None if the replies never came back)."""
    times = reply_times(data, index)
    gap, start, end = largest_gap(times, t0 - 0.05)
    after = [t for t in times if t > t0]
    answered = bool(after) and after[-1] > end
    return (round(gap * 1000, 3) if answered else None), start, end, len(times)


def one_outage(lab: Lab, fault: Any, offlink: bool = False) -> dict[str, Any]:
    """Start the prober(s), pull eth0's cable (``fault``), return the outage in ms."""
    addresses = [ADDRESS]
    if offlink:
        addresses.append(f"{lab.neighbour_ns(OFFLINK_PEER)}@{ADDRESS}")
    interval = INTERVAL / len(addresses)
    prober = Prober(lab, "router1", addresses, interval, LEAD + WINDOW)
    try:
        time.sleep(LEAD)
        t0 = time.monotonic()
        lab.set_cable("eth0", False)
        pulled = time.monotonic()
        extra = fault() if fault else {}
        data = prober.result()
    finally:
        prober.stop()
    if offlink:
        peer_out, _, _, peer_replies = _outage(data, t0, 1)
        extra = {**extra, "offlink_outage_ms": peer_out, "offlink_replies": peer_replies}
    outage, start, end, replies = _outage(data, t0)
    return {
        "outage_ms": outage,
        "gap_start_after_pull_ms": round((start - t0) * 1000, 3),
        "pull_command_ms": round((pulled - t0) * 1000, 3),
        "t0": t0,
        "gap_start": start,
        "gap_end": end,
        "sent": len(data["sends"]) // len(addresses),
        "replies": replies,
        **extra,
    }


def traced_run(lab: Lab, daemon: Daemon) -> list[dict[str, Any]]:
    """One more pull (not counted in the figures), with the plug and failback, as timelines."""
    wait_for(daemon.probing_ok, 20, "both members probing ok", 0.05)
    prober = Prober(lab, "router1", [ADDRESS], INTERVAL, LEAD + 10.0)
    monitor = HostMonitor(lab)
    try:
        time.sleep(LEAD)
        t0 = time.monotonic()
        lab.set_cable("eth0", False)
        wait_for(lambda: holder(lab, ADDRESS) == "eth1", 5, "moved to eth1", 0.01)
        time.sleep(1.0)
        t1 = time.monotonic()
        lab.set_cable("eth0", True)
        wait_for(lambda: holder(lab, ADDRESS) == "eth0", 20, "failback to eth0", 0.01)
        time.sleep(0.3)
        prober.terminate()
        data = prober.result()
    finally:
        prober.stop()
        lines = monitor.stop()
    times = reply_times(data)
    _, _, back = largest_gap(times, t0 - 0.05)
    events = [
        [0.0, "cable pulled"],
        [ms(first(lines, carrier_lost("eth0"), t0), t0), "eth0 carrier lost"],
        [ms(first(lines, address_added("eth1", ADDRESS), t0), t0), "failover: on eth1"],
        [ms(back, t0), "answers again"],
    ]
    end_ms = (time.monotonic() - t0) * 1000
    title = "Link failover: eth0's cable pulled; router1 pings 192.0.2.19 every 1 ms"
    repair = [
        [round((t1 - t0) * 1000, 1), "cable plugged"],
        [ms(first(lines, address_added("eth0", ADDRESS), t1), t0), "failback: on eth0"],
    ]
    return [
        {
            "title": title + " (the first 60 ms)",
            "bin_ms": 1.0,
            "bins": bins(times, t0, -20.0, 40.0, 1.0),
            "events": events,
        },
        {
            "title": title + ", then plugged back",
            "bin_ms": 20.0,
            "bins": bins(times, t0, -200.0, end_ms, 20.0),
            "events": [*events[:1], *events[2:3], *repair],
        },
    ]


def daemon_phase(runs: int) -> tuple[list[dict[str, Any]], list[str], list[dict[str, Any]]]:
    notes: list[str] = []
    results: list[dict[str, Any]] = []
    text = with_offlink_peer(example_text("lab-active-active", FAILURE_DETECTION_TIME="1000"))
    with lab_from(text) as lab:
        daemon = Daemon(lab).start()
        wait_for(daemon.probing_ok, 30, "both members probing ok", 0.1)
        wait_for(lambda: holder(lab, ADDRESS) == "eth0", 10, f"{ADDRESS} on eth0", 0.1)
        add_default_route(lab, "eth0")  # after the start: the kernel binds it to eth0
        for _ in range(runs):
            res = one_outage(lab, None, offlink=True)
            res["moved_to"] = holder(lab, ADDRESS)
            res["route_moved_to"] = sorted(default_route_devices(lab))
            results.append(res)
            lab.set_cable("eth0", True)
            wait_for(lambda: holder(lab, ADDRESS) == "eth0", 20, "failback to eth0", 0.05)
            wait_for(lambda: default_route_devices(lab) == {"eth0"}, 20, "route home", 0.05)
            wait_for(daemon.probing_ok, 20, "both members probing ok again", 0.05)
            time.sleep(0.3)
        wait_for(lambda: holder(lab, ADDRESS) == "eth0", 20, "failback to eth0", 0.05)
        traces = traced_run(lab, daemon)
        flaps = daemon.log().count("disabling failback")
        if flaps:
            notes.append(f"in.mpathd logged link-flap damping {flaps} time(s)")
    return results, notes, traces


def floor_phase(runs: int) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    with lab_from(example_text("lab-active-active")) as lab:
        for key, value in (("arp_ignore", "1"), ("arp_announce", "2")):
            for conf in ("all", "eth0", "eth1"):
                lab.run(["sysctl", "-qw", f"net.ipv4.conf.{conf}.{key}={value}"])
        lab.run(["ip", "addr", "add", f"{ADDRESS}/24", "dev", "eth0"])
        lab.run(["ip", "addr", "add", "192.0.2.20/24", "dev", "eth1"])
        for nic in ("eth0", "eth1"):
            lab.run(["ip", "link", "set", nic, "up"])
        router = lab.neighbour_ns("router1")
        wait_for(
            lambda: lab.ping(ADDRESS, netns=router, count=1, wait=0.3).received == 1,
            15,
            f"{ADDRESS} answers",
            0.1,
        )
        for _ in range(runs):
            argv = ["ip", "netns", "exec", lab.host_ns, sys.executable]
            argv += [str(HERE / "floor_failover.py"), "eth0", "eth1", f"{ADDRESS}/24"]
            floor = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
            try:
                assert floor.stdout is not None
                if floor.stdout.readline().strip() != "ready":
                    raise RuntimeError("floor_failover.py did not start")

                def finish(floor: subprocess.Popen[str] = floor) -> dict[str, Any]:
                    assert floor.stdout is not None
                    line = floor.stdout.readline()
                    floor.wait(timeout=10)
                    return {"floor_script": line.strip()}

                res = one_outage(lab, finish)
            finally:
                if floor.poll() is None:
                    floor.kill()
                    floor.wait()
            results.append(res)
            # Put everything back by hand.
            lab.set_cable("eth0", True)
            lab.run(["ip", "addr", "del", f"{ADDRESS}/24", "dev", "eth1"])
            wait_for(
                lambda: "LOWER_UP" in (lab.host_link("eth0") or {}).get("flags", []),
                10,
                "eth0 carrier",
            )
            lab.run(["ip", "addr", "add", f"{ADDRESS}/24", "dev", "eth0"])
            subprocess.run(["ip", "netns", "exec", router, "ip", "neigh", "flush", "dev", "eth0"])
            wait_for(
                lambda: lab.ping(ADDRESS, netns=router, count=1, wait=0.3).received == 1,
                15,
                f"{ADDRESS} answers on eth0 again",
                0.1,
            )
            time.sleep(0.3)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="3 runs per phase")
    parser.add_argument("--runs", type=int, default=None, help="runs per phase (full: 30)")
    args = parser.parse_args()
    require_root()
    runs = args.runs or (3 if args.smoke else 30)
    began = time.monotonic()
    daemon_runs, notes, traces = daemon_phase(runs)
    write_trace("link_failover", args.smoke, traces)
    floor_runs = floor_phase(runs)
    outages = [r["outage_ms"] for r in daemon_runs if r["outage_ms"] is not None]
    floors = [r["outage_ms"] for r in floor_runs if r["outage_ms"] is not None]
    offlink = [r["offlink_outage_ms"] for r in daemon_runs if r["offlink_outage_ms"] is not None]
    extra = [
        r["offlink_outage_ms"] - r["outage_ms"]
        for r in daemon_runs
        if r["offlink_outage_ms"] is not None and r["outage_ms"] is not None
    ]
    result = {
        "benchmark": "link_failover",
        "mode": "smoke" if args.smoke else "full",
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "runs": runs,
        "probe_interval_ms": INTERVAL * 1000,
        "outage_ms": summary(outages),
        "floor_ms": summary(floors),
        "offlink_outage_ms": summary(offlink),
        "offlink_minus_onlink_ms": summary(extra),
        "offlink_within_onlink_plus_2ms": sum(x <= 2.0 for x in extra),
        "unanswered_runs": sum(r["outage_ms"] is None for r in daemon_runs),
        "offlink_unanswered_runs": sum(r["offlink_outage_ms"] is None for r in daemon_runs),
        "goals": {
            "p99_ms_max": 10,
            "median_max_floor_multiple": 2,
            "offlink_max": "on-link outage + 2 ms, every run",
        },
        "notes": notes,
        "daemon_runs": daemon_runs,
        "floor_runs": floor_runs,
        "duration_s": round(time.monotonic() - began, 1),
    }
    write_result("link_failover", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
