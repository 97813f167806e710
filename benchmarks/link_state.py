"""Every way a link goes away: from the kernel's link event to the address on the sibling.

One lab (lab-active-active, FAILURE_DETECTION_TIME=1000 so that the failback
after each run is quick).  For each way eth0 can go away, ``--runs`` times:

* ``admin``: ``ip link set eth0 down`` (operstate DOWN, IFF_UP cleared);
* ``cable``: eth0's switch port (the veth peer) goes down (NO-CARRIER);
* ``dormant``: ``ip link set eth0 mode dormant`` and operstate DORMANT from
  user space (IFLA_OPERSTATE through pyroute2, as a supplicant sets it).

``ip -ts monitor link address`` runs in the host namespace during each run;
the figure is the time from its line for the link event (``state DOWN``,
``NO-CARRIER``, ``state DORMANT``) to its line for 192.0.2.19 added on eth1.
Both lines come from the same netlink socket of the same process, so their
delivery delay cancels (but a monitor descheduled between the two reads
stamps them together: on a loaded machine single runs read too short).
Also ``event_to_first_action_ms``: to the spreading route moved to eth1, the
daemon's first kernel change.  Between runs eth0 is brought back and the
script waits for the failback and for both members probing ``ok``.

Then the ``stack`` phase, in a lab of its own without a daemon:
link_event_probe.py makes the same faults from inside the host namespace and
times the Linux stack alone, from the kernel's RTM_NEWLINK to LinkWentDown
(and back to LinkCameUp).

``python benchmarks/link_state.py [--smoke] [--runs N] [--ways admin,cable,dormant]``
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from typing import Any

from common import (
    HERE,
    Daemon,
    example_text,
    holder,
    lab_from,
    machine,
    require_root,
    summary,
    wait_for,
    write_result,
)
from timeline import HostMonitor, address_added, first

from ipmp.lab.lab import Lab

ADDRESS = "192.0.2.19"
WAYS = ("admin", "cable", "dormant")
EVENT = {
    "admin": r"^\d+: eth0(@\S+)?: <.*state DOWN",
    "cable": r"^\d+: eth0(@\S+)?: <NO-CARRIER",
    "dormant": r"^\d+: eth0(@\S+)?: <.*state DORMANT",
}
"""The monitor's line for the link event of each way."""
SPREAD = r"^192\.0\.2\.(0/25|128/25) dev eth1 "
"""The spreading route (a half of the subnet) moved to eth1 alone."""


def set_way(lab: Lab, way: str, down: bool) -> None:
    """Take eth0 away (``down``) or bring it back, the way named."""
    if way == "admin":
        lab.set_admin("eth0", not down)
    elif way == "cable":
        lab.set_cable("eth0", not down)
    else:
        lab.set_dormant("eth0", down)


def one_run(lab: Lab, daemon: Daemon, way: str) -> dict[str, Any]:
    monitor = HostMonitor(lab, ("link", "address", "route"))
    try:
        t0 = time.monotonic()
        set_way(lab, way, True)
        # Watched in the monitor's output, not with "ip addr" every few ms: a
        # process started per poll would compete with the daemon for the CPU.
        added = re.compile(address_added("eth1", ADDRESS).lstrip("^"))
        seen = lambda: added.search(monitor.path.read_text(errors="replace")) is not None  # noqa: E731
        wait_for(seen, 5, f"{ADDRESS} added on eth1", 0.005)
    finally:
        lines = monitor.stop()
    event = first(lines, EVENT[way], t0 - 0.01)
    moved = first(lines, address_added("eth1", ADDRESS), t0 - 0.01)
    # The daemon's first kernel change: the spreading route without eth0.
    spread = first(lines, SPREAD, t0 - 0.01)
    failed = wait_for(lambda: daemon.states().get("eth0") == "failed", 5, "eth0 FAILED", 0.01)
    set_way(lab, way, False)
    wait_for(lambda: holder(lab, ADDRESS) == "eth0", 20, "failback to eth0", 0.05)
    wait_for(daemon.probing_ok, 20, "both members probing ok again", 0.05)
    return {
        "way": way,
        "event_to_move_ms": _between(event, moved),
        "event_to_first_action_ms": _between(event, spread),
        "command_to_event_ms": None if event is None else round((event - t0) * 1000, 3),
        "failed_seen_after_s": round(failed, 3),
    }


def stack_phase(runs: int, ways: list[str]) -> dict[str, Any]:
    """link_event_probe.py in a lab of its own, without a daemon."""
    with lab_from(example_text("lab-active-active")) as lab:
        argv = [
            "ip",
            "netns",
            "exec",
            lab.host_ns,
            sys.executable,
            str(HERE / "link_event_probe.py"),
        ]
        argv += ["eth0", lab.switch_ns, lab.switch_port("eth0"), str(runs), ",".join(ways)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60 + 2 * runs)
        if done.returncode != 0:
            raise RuntimeError(f"link_event_probe.py failed: {done.stderr.strip()[-500:]}")
        raw: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        way: {
            "to_link_went_down_ms": summary(times["down_ms"]),
            "to_link_came_up_ms": summary(times["up_ms"]),
            "lost": times["lost"],
        }
        for way, times in raw.items()
    }


def _between(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else round((end - start) * 1000, 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="2 runs per way")
    parser.add_argument("--runs", type=int, default=None, help="runs per way (full: 20)")
    parser.add_argument("--ways", default=",".join(WAYS), help="comma-separated: " + ",".join(WAYS))
    args = parser.parse_args()
    ways = [w for w in args.ways.split(",") if w]
    unknown = [w for w in ways if w not in WAYS]
    if unknown or not ways:
        print(f"--ways: expected some of {','.join(WAYS)}, got {args.ways!r}", file=sys.stderr)
        return 2
    require_root()
    runs = args.runs or (2 if args.smoke else 20)
    began = time.monotonic()
    per_way: dict[str, Any] = {}
    with lab_from(example_text("lab-active-active", FAILURE_DETECTION_TIME="1000")) as lab:
        daemon = Daemon(lab).start()
        wait_for(daemon.probing_ok, 30, "both members probing ok", 0.1)
        for way in ways:
            details = [one_run(lab, daemon, way) for _ in range(runs)]
            per_way[way] = {"runs": details}
            for key in ("event_to_first_action_ms", "event_to_move_ms"):
                values = [d[key] for d in details]
                measured = [x for x in values if x is not None]
                per_way[way][key] = summary(measured)
                per_way[way][key.replace("_ms", "_unmeasured")] = len(values) - len(measured)
        log = daemon.log()
    stack = stack_phase(runs, ways)
    result = {
        "benchmark": "link_state",
        "mode": "smoke" if args.smoke else "full",
        "machine": machine(),
        "runs_per_way": runs,
        "command": " ".join(["python", "benchmarks/link_state.py", *sys.argv[1:]]),
        "ways": per_way,
        "stack": stack,
        "log_counts": {
            "link_down": log.count("The link has gone down on eth0"),
            "nic_failure": log.count("NIC failure detected on eth0"),
        },
        "seconds": round(time.monotonic() - began, 1),
    }
    write_result("link_state", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
