"""Spoofing: eth0 is silently cut off while forged replies answer every probe.

One lab per FAILURE_DETECTION_TIME from lab-active-active plus a neighbour
``spoofer`` (a host that does not answer the all-hosts ping, so the daemon
never adopts it as a target).  Each run starts benchmarks/spoofer.py in the
spoofer's namespace with one variant (``id``, ``seq`` or ``timestamp``: see
its docstring), then sets the fault: an nftables table ``ipmp_spoof`` of our
own in the switch namespace (the lab's tables are left alone):

* ``netdev`` ingress of eth0's switch port: every IPv4 and IPv6 frame from
  eth0 is dropped, after a copy is sent out of the spoofer's port (``dup``),
  so the targets never see a probe but the spoofer sees each one; ARP and
  IPv6 neighbour discovery pass, so the host keeps resolving its targets and
  keeps sending probes for the spoofer to read (the daemon only watches
  probes: to it, the interface is silently dropped);
* ``bridge`` forward: towards eth0's port every IPv4 and IPv6 frame is
  dropped (neighbour discovery apart) except the spoofer's echo replies,
  which are counted.

Each run starts from the steady state (eth0 repaired and every target of
eth0 with an RTT estimate again).  Measured from the moment the fault is
loaded: ``failed_ms``, until the daemon's snapshot shows eth0 ``failed``
(polled every 5 ms), for a control run without forgeries (``none``) and
every variant, at FDT 1000 and 100 ms; and, from the ``probes`` stream, when
the fifth consecutive lost probe of each family was sent (the rule cannot
fire earlier).  That the forgeries really reached the host
is checked three ways: the switch's counter of forged replies forwarded to
eth0, a packet socket on eth0 in the host namespace counting echo replies
from the spoofer's MAC (``spoofer.py count``), and the daemon's own counters
(``stats``: the ``ambiguous`` replies it read and refused, and the replies it
accepted as answers while no real reply could arrive).

``python benchmarks/spoofing.py [--smoke] [--runs N] [--fdt MS ...] [--variant V ...]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from common import (
    Daemon,
    example_text,
    lab_from,
    machine,
    require_root,
    summary,
    wait_for,
    write_result,
)
from false_failures import ProbeStream, outcomes, read_stats, wait_answering

from ipmp.core.constants import NUM_PROBE_FAILS
from ipmp.lab import commands
from ipmp.lab.lab import Lab, mac_text

HERE = Path(__file__).resolve().parent
SPOOFER = HERE / "spoofer.py"
TABLE = "ipmp_spoof"
VARIANTS = ("none", "id", "seq", "timestamp")
NIC = "eth0"
SPOOFER_NEIGHBOUR = """
  # Forges probe replies (benchmarks/spoofer.py); never a probe target.
  [[link.neighbour]]
  name = "spoofer"
  role = "host"
  address = "192.0.2.200"
  answers_multicast = false

"""
ND = "{ nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert }"
REFUSED = ("out of window probe seq", "Fake probe reply", "Duplicate probe reply")


def topology(fdt_ms: int) -> str:
    text = example_text("lab-active-active", FAILURE_DETECTION_TIME=str(fdt_ms))
    at = text.index("[[nic]]")
    return text[:at] + SPOOFER_NEIGHBOUR + text[at:]


def fault_script(host_port: str, spoofer_port: str) -> str:
    return f"""table netdev {TABLE} {{
  chain from_host {{
    type filter hook ingress device "{host_port}" priority -500; policy accept;
    ether type arp accept
    icmpv6 type {ND} accept
    ether type {{ ip, ip6 }} counter dup to "{spoofer_port}" drop
  }}
}}
table bridge {TABLE} {{
  chain to_host {{
    type filter hook forward priority -10; policy accept;
    oifname != "{host_port}" accept
    iifname "{spoofer_port}" icmp type echo-reply counter accept
    iifname "{spoofer_port}" icmpv6 type echo-reply counter accept
    icmpv6 type {ND} accept
    ether type {{ ip, ip6 }} counter drop
  }}
}}
"""


REMOVE = f"table netdev {TABLE} {{}}\ndelete table netdev {TABLE}\n" + (
    f"table bridge {TABLE} {{}}\ndelete table bridge {TABLE}\n"
)


def counters(lab: Lab) -> dict[str, int]:
    """Packets counted by our tables: mirrored, forged replies forwarded, dropped towards eth0."""
    found: dict[str, int] = {}
    for family, chain_names in (("netdev", ["mirrored"]), ("bridge", ["v4", "v6", "dropped"])):
        out = lab_nft(lab, ["-j", "list", "table", family, TABLE])
        rules = [i["rule"] for i in json.loads(out)["nftables"] if "rule" in i]
        packets = [
            next(e["counter"]["packets"] for e in r["expr"] if "counter" in e)
            for r in rules
            if any("counter" in e for e in r["expr"])
        ]
        names = [f"{family}_{n}" for n in chain_names]
        found.update(dict(zip(names, packets, strict=True)))
    return {
        "mirrored_to_spoofer": found["netdev_mirrored"],
        "forged_v4_forwarded_to_host": found["bridge_v4"],
        "forged_v6_forwarded_to_host": found["bridge_v6"],
        "other_ip_dropped_towards_host": found["bridge_dropped"],
    }


def lab_nft(lab: Lab, argv: list[str]) -> str:
    return commands.run(commands.in_netns(lab.switch_ns, ["nft", *argv])).stdout


class Helper:
    """spoofer.py in a namespace: started, waited for, stopped with SIGTERM, its JSON read."""

    def __init__(self, netns: str, argv: list[str]) -> None:
        cmd = ["ip", "netns", "exec", netns, sys.executable, str(SPOOFER), *argv]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != b"ready":
            self.kill()
            raise RuntimeError(f"spoofer.py {argv[0]} did not start: {line!r}")

    def result(self) -> dict[str, Any]:
        self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        if self.proc.returncode != 0:
            raise RuntimeError(f"spoofer.py failed: {err.decode(errors='replace')[-500:]}")
        data: dict[str, Any] = json.loads(out)
        return data

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def nic_stats(daemon: Daemon) -> dict[str, dict[str, int]]:
    return {k: v for k, v in read_stats(daemon)["instances"].items() if k.startswith(NIC + " ")}


def one_run(lab: Lab, daemon: Daemon, fdt: float, variant: str) -> dict[str, Any]:
    spoofer_ns = lab.neighbour_ns("spoofer")
    spoofer_mac = commands.run(
        commands.in_netns(spoofer_ns, ["cat", "/sys/class/net/eth0/address"])
    ).stdout.strip()
    host_mac = mac_text(lab.nics[NIC].spec.mac)
    script = fault_script(lab.switch_port(NIC), lab.switch_port("spoofer"))
    limit = 3 * fdt + 2.0
    log_start = len(daemon.log().splitlines())
    counter = Helper(lab.host_ns, ["count", "--mac", spoofer_mac, "--interface", NIC])
    spoofer: Helper | None = None
    stream = ProbeStream(lab)
    loaded = False
    try:
        spoofer = Helper(spoofer_ns, ["forge", "--variant", variant, "--host-mac", host_mac])
        stream.start()
        wait_for(lambda: stream.connections > 0, 5, "probes stream connected", 0.01)
        # A target whose smoothed RTT is 0 (replies within the millisecond of the
        # timestamps) gets the whole probe interval as its probe timeout.
        zero_crtt = sum(", crtt 0.000 ms" in line for line in target_lines(daemon))
        before = nic_stats(daemon)
        t0 = time.monotonic()
        commands.nft_load(lab.switch_ns, script)
        loaded = True
        setup_ms = (time.monotonic() - t0) * 1000
        try:
            failed: float | None = wait_for(
                lambda: daemon.states().get(NIC) == "failed", limit, "failed", 0.005
            )
        except TimeoutError:
            failed = None
        at_detection = nic_stats(daemon)
        stream.stop()
        switch = counters(lab)
        commands.nft_load(lab.switch_ns, REMOVE)
        loaded = False
        forged = spoofer.result()
        arrived = counter.result()
    finally:
        stream.stop()
        if loaded:
            commands.nft_load(lab.switch_ns, REMOVE)
        if spoofer is not None:
            spoofer.kill()
        counter.kill()
    fifth = fifth_lost(stream.records, t0)
    times = [t for t in fifth.values() if t is not None]
    last_fifth = max(times) if len(times) == 2 else None
    lines = daemon.log().splitlines()[log_start:]
    delta = {
        name: {k: v - before.get(name, {}).get(k, 0) for k, v in now.items()}
        for name, now in at_detection.items()
    }
    return {
        "variant": variant,
        "failed_ms": round(failed * 1000, 1) if failed is not None else None,
        "waited_s": None if failed is not None else limit,
        "fault_setup_ms": round(setup_ms, 1),
        "targets_with_crtt_0_at_fault": zero_crtt,
        "fifth_lost_probe_sent_ms": fifth,
        "failed_after_last_fifth_ms": (
            round(failed * 1000 - last_fifth, 1)
            if failed is not None and last_fifth is not None
            else None
        ),
        "probes_seen_by_spoofer": forged["probes_seen"],
        "forged_sent": forged["forged_sent"],
        "forged_arrived_at_host_nic": arrived["arrived"],
        "switch_counters": switch,
        "daemon_counters_during_fault": delta,
        "daemon_refused_log_lines": {text: sum(text in line for line in lines) for text in REFUSED},
        "failure_logged": sum("NIC failure detected on " + NIC in line for line in lines),
    }


def fifth_lost(records: list[dict[str, Any]], t0: float) -> dict[str, float | None]:
    """Per family of eth0: when (ms after the fault) its 5th consecutive lost probe was sent.

    The daemon cannot declare the failure before both families have lost 5
    probes in a row, so the later of the two is the earliest possible moment
    (plus that probe's timeout) and the rest of ``failed_ms`` is the daemon's
    own reaction time and our polling.
    """
    found: dict[str, float | None] = {}
    for (nic, family), probes in outcomes(records).items():
        if nic != NIC:
            continue
        run: list[float] = []
        for probe in probes:
            if probe["acked"]:
                run = []
            else:
                run.append(probe["sent"])
        found[family] = (
            round((run[NUM_PROBE_FAILS - 1] - t0) * 1000, 1)
            if len(run) >= NUM_PROBE_FAILS
            else None
        )
    return found


def repaired(daemon: Daemon) -> bool:
    return daemon.states().get(NIC) == "ok" and daemon.probing_ok("inet")


def target_lines(daemon: Daemon) -> list[str]:
    """The ``stats`` lines of eth0's targets."""
    return [
        line
        for line in daemon.client().request("stats")["lines"]
        if line.startswith("Target ") and f" {NIC}): " in line
    ]


def steady(daemon: Daemon) -> bool:
    """Every active target of eth0 has an RTT estimate again.

    A failure resets the estimates, and a probe to a target without one times
    out after a whole probe interval instead of its smoothed RTT, so the runs
    after the first would take up to one interval longer than the first.
    Each run starts from the steady state instead.
    """
    targets = target_lines(daemon)
    return bool(targets) and all(
        "rtt unknown" not in line for line in targets if "): active," in line
    )


def measure(fdt_ms: int, runs: int, variants: list[str]) -> dict[str, Any]:
    fdt = fdt_ms / 1000
    details: list[dict[str, Any]] = []
    with lab_from(topology(fdt_ms)) as lab:
        daemon = Daemon(lab).start()
        wait_for(daemon.probing_ok, 60 + 5 * fdt, "both members probing ok", 0.1)
        time.sleep(max(2.0, 4 * fdt / 7))  # replies end the start-up quiet period
        startup = wait_answering(daemon)
        wait_for(lambda: steady(daemon), 10 * fdt + 20, "RTT estimates", 0.05)
        targets = daemon.snapshot()["targets"]
        for _ in range(runs):
            for variant in variants:
                details.append(one_run(lab, daemon, fdt, variant))
                wait_for(lambda: repaired(daemon), 4 * fdt + 20, f"{NIC} repaired", 0.05)
                wait_for(lambda: steady(daemon), 10 * fdt + 20, "RTT estimates again", 0.05)
    per_variant: dict[str, Any] = {}
    for variant in variants:
        rows = [r for r in details if r["variant"] == variant]
        detected = [r["failed_ms"] for r in rows if r["failed_ms"] is not None]
        per_variant[variant] = {
            "runs": len(rows),
            "failed_ms": summary(detected),
            "not_detected": len(rows) - len(detected),
            "failed_within_fdt": sum(ms <= fdt_ms for ms in detected),
            "forged_arrived_at_host_nic": sum(
                sum(r["forged_arrived_at_host_nic"].values()) for r in rows
            ),
            "runs_with_no_forgery_arrived": sum(
                sum(r["forged_arrived_at_host_nic"].values()) == 0 for r in rows
            ),
        }
    return {
        "fdt_ms": fdt_ms,
        "startup": startup,
        "targets": targets,
        "variants": per_variant,
        "run_details": details,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="1 run per variant at FDT 1 s")
    parser.add_argument("--runs", type=int, default=None, help="runs per variant (full: 10)")
    parser.add_argument("--fdt", type=int, nargs="+", default=None, help="FDTs in ms")
    parser.add_argument("--variant", choices=VARIANTS, nargs="+", default=list(VARIANTS))
    args = parser.parse_args()
    require_root()
    runs = args.runs or (1 if args.smoke else 10)
    fdts = args.fdt or ([1000] if args.smoke else [1000, 100])
    began = time.monotonic()
    per_fdt = [measure(fdt, runs, args.variant) for fdt in fdts]
    result = {
        "benchmark": "spoofing",
        "mode": "smoke" if args.smoke else "full",
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "runs_per_variant": runs,
        "fdt": per_fdt,
        "goals": {"failed_ms_max": "FDT in every run, every variant"},
        "duration_s": round(time.monotonic() - began, 1),
    }
    write_result("spoofing", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
