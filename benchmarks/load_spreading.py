"""Load spreading: TCP flows to distinct destinations through the two-NIC group.

lab-active-active with in.mpathd: once both members probe ``ok`` the daemon
spreads outbound traffic with multipath routes for the two halves of the
data subnet (192.0.2.0/25 and 192.0.2.128/25, nexthops eth0 and eth1) and
``fib_multipath_hash_policy=1`` (layer-4 hash); the script checks both
before measuring.  N destination addresses (half in each /25, none of the
topology's) are added to the neighbour host100, where one sink process
(benchmarks/tcpflows.py) listens on all of them.  A source in the host
namespace opens one TCP connection per destination (the kernel picks source
address and ephemeral port, so each run hashes different ports) and sends
as fast as it can on all of them for D seconds, then half-closes and waits
until every byte is delivered.

Per run it reports:

* bytes per NIC: the host's eth0/eth1 ``tx_bytes`` deltas over the run
  (``ip -j -s link``) and each NIC's share of the two;
* flows per NIC: for each flow, the NIC that ``ip route get DEST from SRC
  ipproto tcp sport S dport P`` picks (the kernel's hash of the flow's
  5-tuple), checked against what was measured: an nft set with a counter
  per (oifname, source port, destination) at postrouting in the host
  namespace, so a flow whose packets left by both NICs would show;
* reordering: deltas of the TCP counters ``nstat`` shows (read from
  /proc/net/netstat and /proc/net/snmp) in the sink's namespace
  (TcpExtTCPOFOQueue, TcpExtTCPOFOMerge, TcpExtTCPOFODrop) and in the host
  namespace (TcpExtTCPSACKReorder, TcpExtTCPTSReorder,
  TcpExtTCPRenoReorder, TcpRetransSegs), and per flow TCP_INFO
  ``rcv_ooopack`` at the receiver and ``reord_seen`` at the sender.

Three phases in one lab:

* ``spread``: the lab as ``ipmp lab`` builds it, R runs;
* ``one_nic``: a control, R runs (alternating with the ``spread`` ones)
  with every flow bound to eth0 (SO_BINDTODEVICE), so no flow can take two
  paths: the reordering the lab's veth link adds by itself;
* ``spread_rps``: R runs after RPS is switched on for every device of the
  switch and sink namespaces (``rps_cpus`` = all CPUs).  A veth hands each
  frame to the backlog of the CPU that sent it; a flow's segments are sent
  from either CPU (the sending process, or the softirq handling its ACKs),
  so two backlogs can deliver them out of order.  RPS picks the backlog
  CPU from the flow hash instead, as one queue of a real switch port keeps
  a flow's order.

Goals: each NIC carries 50 % +- 10 % of the bytes (a share in [40 %, 60 %]);
zero out-of-order segments within a flow.  An L4 hash splits the flow count
binomially, so the byte split is a property of the ports the kernel picked:
the per-flow mapping is in the JSON.

``python benchmarks/load_spreading.py [--smoke] [--flows N] [--duration S] [--runs R]``
(full: 32 flows, 10 s, R = 3; smoke: 8 flows, 2 s, R = 1)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from typing import Any

from common import (
    HERE,
    Daemon,
    example_text,
    lab_from,
    machine,
    require_root,
    wait_for,
    write_result,
)

from ipmp.lab.lab import Lab

NICS = ("eth0", "eth1")
SINK = "host100"
PORT = 5001
HALVES = ("192.0.2.0/25", "192.0.2.128/25")
LOWER_START = 64  # destinations 192.0.2.64.. and 192.0.2.192..: none of the topology's
UPPER_START = 192
RECEIVER_COUNTERS = ("TcpExtTCPOFOQueue", "TcpExtTCPOFOMerge", "TcpExtTCPOFODrop")
SENDER_COUNTERS = ("TcpExtTCPSACKReorder", "TcpExtTCPTSReorder", "TcpExtTCPRenoReorder")
OTHER_COUNTERS = ("TcpRetransSegs",)
COUNTERS = RECEIVER_COUNTERS + SENDER_COUNTERS + OTHER_COUNTERS
SHARE_GOAL = (0.40, 0.60)
TCPFLOWS = HERE / "tcpflows.py"
NFT_TABLE = "ipmpbench_flows"


def destinations(count: int) -> list[str]:
    """``count`` addresses, half in each /25 of 192.0.2.0/24."""
    lower = (count + 1) // 2
    upper = count - lower
    if lower > 32:
        raise SystemExit("at most 64 flows")
    return [f"192.0.2.{LOWER_START + k}" for k in range(lower)] + [
        f"192.0.2.{UPPER_START + k}" for k in range(upper)
    ]


def netns_run(netns: str, argv: list[str]) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", netns, *argv], capture_output=True, text=True, check=True
    ).stdout


def tcp_counters(netns: str) -> dict[str, int]:
    """The TcpExt and Tcp counters of a namespace, named as nstat names them."""
    text = netns_run(netns, ["cat", "/proc/net/netstat", "/proc/net/snmp"])
    out: dict[str, int] = {}
    lines = text.splitlines()
    for head, values in zip(lines[::2], lines[1::2], strict=False):
        prefix, _, names = head.partition(":")
        if prefix not in ("TcpExt", "Tcp") or not values.startswith(prefix + ":"):
            continue
        for name, value in zip(names.split(), values.partition(":")[2].split(), strict=True):
            out[prefix + name] = int(value)
    return out


def link_bytes(lab: Lab) -> dict[str, dict[str, int]]:
    links = json.loads(lab.run(["ip", "-j", "-s", "link"]).stdout)
    return {
        str(link["ifname"]): {
            "tx": int(link["stats64"]["tx"]["bytes"]),
            "rx": int(link["stats64"]["rx"]["bytes"]),
        }
        for link in links
        if link["ifname"] in NICS
    }


def spreading_routes(lab: Lab) -> dict[str, list[str]]:
    """Half subnet -> nexthop devices of its multipath route in the host's main table."""
    routes = json.loads(lab.run(["ip", "-j", "route", "show", "table", "main"]).stdout)
    return {
        str(r["dst"]): sorted(str(h["dev"]) for h in r.get("nexthops", []))
        for r in routes
        if str(r.get("dst")) in HALVES
    }


def spreading_ready(lab: Lab) -> bool:
    return spreading_routes(lab) == {half: list(NICS) for half in HALVES}


def flow_nic(lab: Lab, flow: dict[str, Any], device: str | None) -> str:
    """The NIC the kernel's route lookup picks for the flow's 5-tuple (and bound device)."""
    (src, sport), (dst, dport) = flow["local"], flow["remote"]
    argv = ["ip", "-j", "route", "get", dst, "from", src, "ipproto", "tcp"]
    argv += ["sport", str(sport), "dport", str(dport)]
    argv += ["oif", device] if device else []
    return str(json.loads(lab.run(argv).stdout)[0]["dev"])


def nft_start(lab: Lab) -> None:
    """Per-flow, per-NIC counters of the flows' outbound packets (postrouting, host)."""
    script = f"""
table ip {NFT_TABLE} {{
  set flows {{
    type ifname . inet_service . ipv4_addr
    flags dynamic
    size 4096
  }}
  chain post {{
    type filter hook postrouting priority 0; policy accept;
    tcp dport {PORT} add @flows {{ oifname . tcp sport . ip daddr counter }}
  }}
}}
"""
    subprocess.run(
        ["ip", "netns", "exec", lab.host_ns, "nft", "-f", "-"], input=script, text=True, check=True
    )


def nft_flows(lab: Lab) -> dict[tuple[int, str], dict[str, int]]:
    """(source port, destination) -> NIC -> bytes, from the nft set."""
    argv = ["nft", "-j", "list", "set", "ip", NFT_TABLE, "flows"]
    data = json.loads(lab.run(argv).stdout)
    out: dict[tuple[int, str], dict[str, int]] = {}
    for item in data["nftables"]:
        for elem in item.get("set", {}).get("elem", []):
            nic, sport, dst = elem["elem"]["val"]["concat"]
            per = out.setdefault((int(sport), str(dst)), {})
            per[str(nic)] = per.get(str(nic), 0) + int(elem["elem"]["counter"]["bytes"])
    return out


def enable_rps(lab: Lab) -> list[str]:
    """Steer every veth's receive work in the switch and sink namespaces by flow hash (RPS)."""
    mask = format((1 << (os.cpu_count() or 1)) - 1, "x")
    script = f"for f in /sys/class/net/*/queues/rx-*/rps_cpus; do echo {mask} > $f; done; "
    script += "grep -H . /sys/class/net/*/queues/rx-*/rps_cpus"
    done: list[str] = []
    for netns in (lab.switch_ns, lab.neighbour_ns(SINK)):
        for line in netns_run(netns, ["sh", "-c", script]).splitlines():
            path, _, value = line.partition(":")
            done.append(f"{netns.rsplit('-', 1)[-1]}:{path.split('/')[4]}={value}")
    return done


def one_run(
    lab: Lab, dests: list[str], duration: float, devices: tuple[str, ...] = ()
) -> dict[str, Any]:
    """One run of len(dests) flows; ``devices``: bind flow k to devices[k % n] (a control)."""
    sink_ns = lab.neighbour_ns(SINK)
    timeout = duration + 60
    sink_argv = ["ip", "netns", "exec", sink_ns, sys.executable, str(TCPFLOWS), "sink"]
    sink_argv += ["--port", str(PORT), "--flows", str(len(dests)), "--timeout", str(timeout)]
    lab.run(["nft", "flush", "set", "ip", NFT_TABLE, "flows"])
    sink = subprocess.Popen(
        [*sink_argv, *dests], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert sink.stdout is not None
        if sink.stdout.readline().strip() != "ready":
            raise RuntimeError(f"sink did not start: {sink.communicate(timeout=5)[1]}")
        links0 = link_bytes(lab)
        host0, sink0 = tcp_counters(lab.host_ns), tcp_counters(sink_ns)
        src_argv = [sys.executable, str(TCPFLOWS), "source", "--port", str(PORT)]
        src_argv += ["--duration", str(duration), "--timeout", "30"]
        src_argv += ["--device", ",".join(devices)] if devices else []
        began = time.monotonic()
        done = lab.run([*src_argv, *dests], timeout=timeout)
        wall = time.monotonic() - began
        if done.returncode != 0:
            raise RuntimeError(f"source failed: {done.stderr.strip()[-2000:]}")
        sent = json.loads(done.stdout)
        out, err = sink.communicate(timeout=30)
        if sink.returncode != 0:
            raise RuntimeError(f"sink failed: {err.strip()[-2000:]}")
        received = json.loads(out)
    finally:
        if sink.poll() is None:
            sink.kill()
            sink.wait()
    links1 = link_bytes(lab)
    host1, sink1 = tcp_counters(lab.host_ns), tcp_counters(sink_ns)
    seen = nft_flows(lab)

    # Keyed by the whole 4-tuple: the kernel reuses a source port towards other destinations.
    by_tuple = {(*f["peer"], *f["local"]): f for f in received["flows"]}
    flows: list[dict[str, Any]] = []
    for k, f in enumerate(sent["flows"]):
        got = by_tuple.get((*f["local"], *f["remote"]), {})
        measured = seen.get((int(f["local"][1]), str(f["remote"][0])), {})
        flows.append(
            {
                "src": f["local"][0],
                "sport": f["local"][1],
                "dst": f["remote"][0],
                "nic": flow_nic(lab, f, devices[k % len(devices)] if devices else None),
                "nic_bytes_measured": measured,
                "bytes_sent": f["bytes"],
                "bytes_received": got.get("bytes"),
                "rcv_ooopack": got.get("rcv_ooopack"),
                "reord_seen": f.get("reord_seen"),
                "total_retrans": f.get("total_retrans"),
                "bytes_retrans": f.get("bytes_retrans"),
            }
        )
    tx = {nic: links1[nic]["tx"] - links0[nic]["tx"] for nic in NICS}
    rx = {nic: links1[nic]["rx"] - links0[nic]["rx"] for nic in NICS}
    tx_total = sum(tx.values())
    payload = sum(f["bytes_sent"] for f in flows)
    payload_per_nic = {nic: sum(f["bytes_sent"] for f in flows if f["nic"] == nic) for nic in NICS}
    share = {nic: round(tx[nic] / tx_total, 4) if tx_total else None for nic in NICS}
    return {
        "devices": list(devices),
        "flows": len(flows),
        "flows_completed": sum(f["bytes_received"] == f["bytes_sent"] for f in flows),
        "sending_s": sent["sending_s"],
        "wall_s": round(wall, 3),
        "tx_bytes": tx,
        "tx_share": share,
        "rx_bytes": rx,
        "flows_per_nic": {nic: sum(f["nic"] == nic for f in flows) for nic in NICS},
        "flows_on_both_nics": sum(len(f["nic_bytes_measured"]) > 1 for f in flows),
        "flows_route_get_matches_measured": sum(
            list(f["nic_bytes_measured"]) == [f["nic"]] for f in flows
        ),
        "flow_payload_bytes": payload,
        "payload_per_nic_by_route": payload_per_nic,
        "payload_share_by_route": {
            nic: round(payload_per_nic[nic] / payload, 4) if payload else None for nic in NICS
        },
        "tx_over_payload": round(tx_total / payload, 4) if payload else None,
        "goodput_mbit_s": round(payload * 8 / sent["sending_s"] / 1e6, 1),
        "receiver_counters": {k: sink1.get(k, 0) - sink0.get(k, 0) for k in COUNTERS},
        "sender_counters": {k: host1.get(k, 0) - host0.get(k, 0) for k in COUNTERS},
        "counters_present": {
            "receiver": all(k in sink1 for k in COUNTERS),
            "sender": all(k in host1 for k in COUNTERS),
        },
        "unfinished_at_sink": received["unfinished"],
        "per_flow": flows,
    }


def reordered(run: dict[str, Any]) -> int:
    """Out-of-order evidence of one run: counters plus per-flow TCP_INFO."""
    recv, send = run["receiver_counters"], run["sender_counters"]
    total = sum(recv[k] for k in RECEIVER_COUNTERS) + sum(send[k] for k in SENDER_COUNTERS)
    total += sum((f["rcv_ooopack"] or 0) + (f["reord_seen"] or 0) for f in run["per_flow"])
    return total


def phase_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one phase's runs, without the per-flow detail."""

    def total(key: str, name: str) -> int:
        return sum(int(r[key][name]) for r in runs)

    tx = {nic: sum(r["tx_bytes"][nic] for r in runs) for nic in NICS}
    tx_total = sum(tx.values())
    return {
        "runs": len(runs),
        "tx_bytes": tx,
        "tx_share": {nic: round(tx[nic] / tx_total, 4) if tx_total else None for nic in NICS},
        "tx_share_per_run": [r["tx_share"] for r in runs],
        "flows_per_nic_per_run": [r["flows_per_nic"] for r in runs],
        "flows_on_both_nics": sum(r["flows_on_both_nics"] for r in runs),
        "goodput_mbit_s_per_run": [r["goodput_mbit_s"] for r in runs],
        "receiver_counters": {k: total("receiver_counters", k) for k in RECEIVER_COUNTERS},
        "sender_counters": {k: total("sender_counters", k) for k in SENDER_COUNTERS},
        "retrans_segs": total("sender_counters", "TcpRetransSegs"),
        "rcv_ooopack": sum(f["rcv_ooopack"] or 0 for r in runs for f in r["per_flow"]),
        "reord_seen": sum(f["reord_seen"] or 0 for r in runs for f in r["per_flow"]),
        "flows_with_ooo": sum(
            bool(f["rcv_ooopack"] or f["reord_seen"]) for r in runs for f in r["per_flow"]
        ),
        "out_of_order_per_run": [reordered(r) for r in runs],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="8 flows, 2 s, R = 1")
    parser.add_argument("--flows", type=int, default=None, help="flows (full: 32)")
    parser.add_argument("--duration", type=float, default=None, help="seconds (full: 10)")
    parser.add_argument("--runs", type=int, default=None, help="R, runs per phase (full: 3)")
    args = parser.parse_args()
    require_root()
    count = args.flows or (8 if args.smoke else 32)
    duration = args.duration or (2.0 if args.smoke else 10.0)
    runs = args.runs or (1 if args.smoke else 3)
    dests = destinations(count)
    began = time.monotonic()
    notes: list[str] = []
    phases: dict[str, list[dict[str, Any]]] = {"spread": [], "one_nic": [], "spread_rps": []}
    with lab_from(example_text("lab-active-active")) as lab:
        daemon = Daemon(lab).start()
        wait_for(daemon.probing_ok, 30, "both members probing ok", 0.1)
        wait_for(lambda: spreading_ready(lab), 10, "multipath spreading routes", 0.1)
        policy = lab.run(["sysctl", "-n", "net.ipv4.fib_multipath_hash_policy"]).stdout.strip()
        if policy != "1":
            raise RuntimeError(f"fib_multipath_hash_policy is {policy}, not 1")
        sink_ns = lab.neighbour_ns(SINK)
        for dest in dests:
            subprocess.run(
                ["ip", "-n", sink_ns, "addr", "add", f"{dest}/24", "dev", "eth0"], check=True
            )
        routes = spreading_routes(lab)
        nft_start(lab)
        rps: list[str] = []
        plan: list[tuple[str, tuple[str, ...]]] = [("spread", ()), ("one_nic", NICS[:1])] * runs
        plan += [("spread_rps", ())] * runs
        for name, devices in plan:
            if name == "spread_rps" and not rps:
                rps = enable_rps(lab)
            if not spreading_ready(lab):
                raise RuntimeError(f"spreading routes changed: {spreading_routes(lab)}")
            run = one_run(lab, dests, duration, devices)
            run["daemon_states_after"] = daemon.states()
            run["spreading_routes_after"] = spreading_routes(lab)
            phases[name].append(run)
        tuples = [
            {(f["src"], f["sport"], f["dst"]) for f in r["per_flow"]}
            for p in phases.values()
            for r in p
        ]
        reused = sum(len(a & b) for i, a in enumerate(tuples) for b in tuples[i + 1 :])
        if reused:
            notes.append(f"{reused} flow 5-tuple(s) repeated between runs")
        log = daemon.log()
        for line in ("NIC failure detected", "Missed sending"):
            if line in log:
                notes.append(f"in.mpathd logged '{line}' {log.count(line)} time(s)")
    spread_runs = phases["spread"] + phases["spread_rps"]
    low, high = SHARE_GOAL
    summaries = {name: phase_summary(p) for name, p in phases.items()}
    tx_all = {nic: sum(r["tx_bytes"][nic] for r in spread_runs) for nic in NICS}
    tx_total = sum(tx_all.values())
    result = {
        "benchmark": "load_spreading",
        "mode": "smoke" if args.smoke else "full",
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "flows": count,
        "duration_s_per_run": duration,
        "runs_per_phase": runs,
        "destinations": dests,
        "spreading_routes": routes,
        "fib_multipath_hash_policy": int(policy),
        "rps": rps,
        "spread_tx_bytes": tx_all,
        "spread_tx_share": {
            nic: round(tx_all[nic] / tx_total, 4) if tx_total else None for nic in NICS
        },
        "spread_flows_per_nic": {
            nic: sum(r["flows_per_nic"][nic] for r in spread_runs) for nic in NICS
        },
        "phases": summaries,
        "goals": {
            "nic_share_range": list(SHARE_GOAL),
            "share_met_runs": sum(
                all(low <= r["tx_share"][nic] <= high for nic in NICS) for r in spread_runs
            ),
            "spread_runs": len(spread_runs),
            # If every flow carries the same bytes and the hash is a fair coin per flow.
            "binomial_p_share_met": round(
                sum(math.comb(count, k) for k in range(count + 1) if low <= k / count <= high)
                / 2**count,
                4,
            ),
            "reordering_zero_runs": {
                name: sum(n == 0 for n in s["out_of_order_per_run"])
                for name, s in summaries.items()
            },
        },
        "notes": notes,
        "run_details": phases,
        "duration_s": round(time.monotonic() - began, 1),
    }
    write_result("load_spreading", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
