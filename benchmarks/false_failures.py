"""False failures: FDT 100 ms, 5 % loss on every switch port, both CPU cores busy.

One lab from lab-active-active with FAILURE_DETECTION_TIME=100 (probe
interval 100/7 = 14 ms, both families probe: IPv4 to three targets, IPv6 to
two).  Once both members probe ``ok``, every switch port (eth0, eth1 and each
neighbour) gets ``lab.set_loss(name, 5)`` and one busy-loop process per CPU
starts in the root namespace (pure CPU, no networking; killed by PID).  For
``--duration`` seconds (full: 600, smoke: 30) the script records:

* the failures the daemon declared: its log lines ``NIC failure detected``
  and ``All Interfaces in group ... have failed`` written during the window
  (and the other lines that tell what the load did: FDT raised or improved,
  ``missed sending``, failed sends);
* probes sent, lost and acknowledged per interface and family, from the
  ``stats`` control request before and after (the SIGUSR1 counters);
* every settled probe from the ``probes`` stream (what ``ipmpstat -p``
  reads): the longest runs of consecutive lost probes, the probes first
  timed out and answered later (late replies), and the RTTs, which include
  the time the reply waited for the daemon to read it.

A probe exchange crosses two lossy ports (the host NIC's and the target's),
each losing 5 % of exchanges, so about 1 - 0.95**2 = 9.75 % of probes are
lost.  The daemon declares a NIC failed after 5 consecutive lost probes
(NUM_PROBE_FAILS) in *every* probing family at once (facts 1.4), so the
JSON also gives what pure chance predicts from the measured loss rates: the
expected number of 5-loss runs per instance, and of moments when both
families of a NIC are in one, which is a failure.

``python benchmarks/false_failures.py [--smoke] [--duration S] [--loss PERCENT]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from common import (
    Daemon,
    example_text,
    lab_from,
    machine,
    percentile,
    require_root,
    summary,
    wait_for,
    write_result,
)

from ipmp.core.constants import NUM_PROBE_FAILS
from ipmp.daemon.control import socket_path
from ipmp.lab.lab import Lab

FDT_MS = 100
STATS_RE = re.compile(
    r"Probe stats on \((\S+) (\S+)\): probes sent (\d+), acks received (\d+), "
    r"probes/acks lost (\d+), unacknowledged (\d+), ambiguous acks (\d+)"
)
MISSED_RE = re.compile(r"Missed sending total of (\d+) probes")
LOG_PATTERNS = {
    "nic_failure_detected": "NIC failure detected",
    "group_failed": "have failed",
    "failed_over": "Successfully failed over",
    "nic_repair_detected": "NIC repair detected",
    "fdt_raised": "Cannot meet requested failure detection time",
    "fdt_improved": "Improved failure detection time",
    "missed_sending": "missed sending",
    "send_failed": "SendProbe failed",
    "link_down": "The link has gone down",
}


# --------------------------------------------------------------------- load


class CpuLoad:
    """``count`` busy-loop processes in the root namespace, stopped by their PIDs."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.procs: list[subprocess.Popen[bytes]] = []
        self.started = 0.0
        self.cpu_s = 0.0
        self.wall_s = 0.0

    def start(self) -> None:
        self.started = time.monotonic()
        for _ in range(self.count):
            self.procs.append(subprocess.Popen([sys.executable, "-c", "while True:\n    pass"]))

    def stop(self) -> None:
        """Kill every busy loop (by PID), after reading how much CPU it got."""
        self.wall_s = time.monotonic() - self.started
        self.cpu_s = sum(cpu_seconds(p.pid) or 0.0 for p in self.procs)
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.procs = []


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of process ``pid`` (None if it is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ------------------------------------------------------------ probe stream


class ProbeStream:
    """Reads the daemon's ``probes`` stream in a thread (reconnecting if dropped)."""

    def __init__(self, lab: Lab) -> None:
        self.path = socket_path(lab.root)
        self.records: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._read_once()
            except OSError as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
                self._stop.wait(0.2)

    def _read_once(self) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(self.path))
            sock.settimeout(0.5)
            sock.sendall(b'{"v": 1, "id": 1, "op": "probes"}\n')
            self.connections += 1
            buffer = b""
            while not self._stop.is_set():
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                if not chunk:
                    self.errors.append("the daemon closed the probes stream")
                    return
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    reply = json.loads(line)
                    if "event" in reply:
                        self.records.append(reply["event"])
                    elif not reply.get("ok", False):
                        self.errors.append(str(reply.get("error")))


def outcomes(records: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Per (interface, family): each probe once, by send time, with its first and final outcome.

    A probe whose timeout passed is reported lost; if its reply comes later it
    is reported again, answered: ``first_lost`` and ``acked`` are both true.
    """
    per: dict[tuple[str, str], dict[float, dict[str, Any]]] = {}
    for record in records:
        key = (str(record["interface"]), str(record["family"]))
        sent = float(record["time"])
        acked = record["rtt_ms"] is not None
        probe = per.setdefault(key, {}).get(sent)
        if probe is None:
            per[key][sent] = {
                "sent": sent,
                "first_lost": not acked,
                "acked": acked,
                "rtt_ms": record["rtt_ms"],
            }
        elif acked:
            probe["acked"], probe["rtt_ms"] = True, record["rtt_ms"]
    return {key: [probes[t] for t in sorted(probes)] for key, probes in per.items()}


def loss_runs(probes: list[dict[str, Any]], lost_key: str) -> list[tuple[float, float, int]]:
    """Runs of >= NUM_PROBE_FAILS lost probes: ``(time the 5th was sent, run end, length)``.

    ``lost_key`` "final" counts probes never answered; "first" also counts
    probes answered only after their timeout (what the daemon saw meanwhile).
    The run ends when the next answered probe was sent.
    """
    runs: list[tuple[float, float, int]] = []
    start = 0
    for i, probe in enumerate([*probes, None]):
        lost = probe is not None and (
            not probe["acked"] if lost_key == "final" else probe["first_lost"]
        )
        if lost:
            continue
        length = i - start
        if length >= NUM_PROBE_FAILS:
            end = probe["sent"] if probe is not None else probes[-1]["sent"]
            runs.append((probes[start + NUM_PROBE_FAILS - 1]["sent"], end, length))
        start = i + 1
    return runs


def joint_runs(runs: dict[tuple[str, str], list[tuple[float, float, int]]]) -> int:
    """Moments when both families of one NIC were in a >= 5-loss run: each is a failure."""
    count = 0
    nics = {nic for nic, _ in runs}
    for nic in nics:
        v4, v6 = runs.get((nic, "inet"), []), runs.get((nic, "inet6"), [])
        count += sum(1 for a in v4 for b in v6 if a[0] < b[1] and b[0] < a[1])
    return count


# ------------------------------------------------------------------- stats


def read_stats(daemon: Daemon) -> dict[str, Any]:
    lines = daemon.client().request("stats")["lines"]
    per: dict[str, dict[str, int]] = {}
    missed = 0
    for line in lines:
        if m := STATS_RE.search(line):
            family, nic = m.group(1), m.group(2)
            keys = ("sent", "acked", "lost", "unacked", "ambiguous")
            per[f"{nic} {family}"] = dict(zip(keys, map(int, m.groups()[2:]), strict=True))
        elif m := MISSED_RE.search(line):
            missed = int(m.group(1))
    return {"instances": per, "missed": missed}


def wait_answering(daemon: Daemon, timeout: float = 120.0) -> dict[str, Any]:
    """Wait until every probe instance gets most of its probes answered (1 s samples).

    At start-up a target may cache the wrong NIC's MAC for a test address (the
    sibling answers ARP for it before in.mpathd sets ``arp_ignore``), and that
    instance's replies then go to the other NIC until the target resolves the
    address again, up to about 45 s later.  The measurement starts from the
    steady state; what this wait saw is reported.
    """
    start = time.monotonic()
    prev = read_stats(daemon)["instances"]
    silent_first: list[str] | None = None
    while True:
        time.sleep(1.0)
        now = read_stats(daemon)["instances"]
        rates = {
            name: (now[name]["acked"] - prev.get(name, {}).get("acked", 0))
            / max(1, now[name]["sent"] - prev.get(name, {}).get("sent", 0))
            for name in now
        }
        if silent_first is None:
            silent_first = sorted(name for name, rate in rates.items() if rate < 0.5)
        if rates and all(rate >= 0.5 for rate in rates.values()):
            return {
                "seconds_until_all_answered": round(time.monotonic() - start, 1),
                "instances_unanswered_at_first_look": silent_first,
            }
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"not within {timeout} s: every probe instance answered: {rates}")
        prev = now


def stats_delta(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, int]]:
    delta: dict[str, dict[str, int]] = {}
    for name, now in after["instances"].items():
        then = before["instances"].get(name, {})
        delta[name] = {k: v - then.get(k, 0) for k, v in now.items() if k != "unacked"}
    return delta


def expected_by_chance(
    delta: dict[str, dict[str, int]], duration: float, k: int = NUM_PROBE_FAILS
) -> dict[str, Any]:
    """What independent losses at the measured rates predict over ``duration``.

    Runs of >= k losses among n probes with loss probability p: about
    n (1 - p) p^k.  A failure needs both families of a NIC in such a run at
    once: runs of one family start at rate r = n (1 - p) p^k / duration and
    the other family's last k probes are all lost with probability p'^k, so
    the expected count is about duration * (r4 p6^k + r6 p4^k) per NIC.
    """
    per_instance: dict[str, float] = {}
    rates: dict[str, tuple[float, float]] = {}
    for name, d in delta.items():
        n = d["sent"]
        p = d["lost"] / n if n else 0.0
        runs = n * (1 - p) * p**k
        per_instance[name] = round(runs, 4)
        rates[name] = (runs / duration if duration else 0.0, p**k)
    failures = 0.0
    for name, (rate, _) in rates.items():
        nic, family = name.split()
        other = f"{nic} {'inet6' if family == 'inet' else 'inet'}"
        if other in rates:
            failures += duration * rate * rates[other][1]
        else:
            failures += rate * duration  # one family decides alone
    return {
        "runs_of_5_losses_per_instance": per_instance,
        "failures": f"{failures:.3g}",
    }


# --------------------------------------------------------------------- run


def log_counts(lines: list[str]) -> dict[str, int]:
    return {key: sum(text in line for line in lines) for key, text in LOG_PATTERNS.items()}


def measure(duration: float, loss: float, busy: int) -> dict[str, Any]:
    text = example_text("lab-active-active", FAILURE_DETECTION_TIME=str(FDT_MS))
    with lab_from(text) as lab:
        daemon = Daemon(lab).start()
        wait_for(daemon.probing_ok, 60, "both members probing ok", 0.1)
        # Let the start-up settle (IPv6 link-local addresses leave DAD, replies
        # end the quiet period) so that the window starts from steady probing.
        time.sleep(2.0)
        startup = wait_answering(daemon)
        wait_for(daemon.probing_ok, 30, "both members probing ok after settling", 0.1)
        ports = [*lab.nics, *lab.neighbours]
        log_start = len(daemon.log().splitlines())
        before = read_stats(daemon)
        daemon_cpu0 = cpu_seconds(daemon.pid) or 0.0
        stream = ProbeStream(lab)
        stream.start()
        load = CpuLoad(busy)
        began = time.monotonic()
        try:
            for name in ports:
                lab.set_loss(name, loss)
            load.start()
            states_seen: dict[str, int] = {}
            polls = 0
            deadline = began + duration
            while time.monotonic() < deadline:
                # One look a second: the log is the record; this only shows
                # whether a state other than ok was visible from outside.
                for state in daemon.states().values():
                    states_seen[state] = states_seen.get(state, 0) + 1
                polls += 1
                time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
        finally:
            load.stop()
            window = time.monotonic() - began
            for name in ports:
                lab.set_loss(name, 0)
        after = read_stats(daemon)
        daemon_cpu = (cpu_seconds(daemon.pid) or 0.0) - daemon_cpu0
        stream.stop()
        final_states = daemon.states()
        lines = daemon.log().splitlines()[log_start:]
    delta = stats_delta(before, after)
    sent = sum(d["sent"] for d in delta.values())
    lost = sum(d["lost"] for d in delta.values())
    probes = outcomes(stream.records)
    final_runs = {key: loss_runs(p, "final") for key, p in probes.items()}
    first_runs = {key: loss_runs(p, "first") for key, p in probes.items()}
    rtts = [p["rtt_ms"] for ps in probes.values() for p in ps if p["acked"]]
    late = [p for ps in probes.values() for p in ps if p["first_lost"] and p["acked"]]
    counts = log_counts(lines)
    interesting = [
        line
        for line in lines
        if any(t in line for k, t in LOG_PATTERNS.items() if k not in ("send_failed",))
    ]
    return {
        "startup": startup,
        "window_s": round(window, 1),
        "failures_declared": counts["nic_failure_detected"] + counts["group_failed"],
        "log_counts": counts,
        "log_excerpt": interesting[:20],
        "states_seen_polled_1hz": states_seen,
        "final_states": final_states,
        "probes_sent": sent,
        "probes_lost": lost,
        "measured_loss_rate": round(lost / sent, 4) if sent else None,
        "per_instance": {
            name: {**d, "loss_rate": round(d["lost"] / d["sent"], 4) if d["sent"] else None}
            for name, d in sorted(delta.items())
        },
        "missed_sending": after["missed"] - before["missed"],
        "expected_by_chance": expected_by_chance(delta, window),
        "stream": {
            "records": len(stream.records),
            "probes": sum(len(p) for p in probes.values()),
            "connections": stream.connections,
            "errors": stream.errors[:5],
            "runs_of_5_lost_final": {f"{k[0]} {k[1]}": len(v) for k, v in final_runs.items()},
            # The longest of those runs (0: no run of 5 or more).
            "longest_run_final": {
                f"{k[0]} {k[1]}": max((r[2] for r in v), default=0) for k, v in final_runs.items()
            },
            "runs_of_5_lost_at_timeout": {f"{k[0]} {k[1]}": len(v) for k, v in first_runs.items()},
            "both_families_in_5_loss_run_final": joint_runs(final_runs),
            "both_families_in_5_loss_run_at_timeout": joint_runs(first_runs),
            "late_replies": len(late),
            "late_reply_rtt_ms": summary([p["rtt_ms"] for p in late]),
            "rtt_ms": summary(rtts),
            "rtt_ms_p999": round(percentile(rtts, 99.9), 3) if rtts else None,
            "rtt_over_interval": sum(r > FDT_MS / 7 for r in rtts),
        },
        "cpu": {
            "busy_loops": busy,
            "busy_loop_cores": round(load.cpu_s / load.wall_s, 2) if load.wall_s else None,
            "daemon_percent_of_core": round(100 * daemon_cpu / window, 1),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a 30 s window")
    parser.add_argument("--duration", type=float, default=None, help="seconds (full: 600)")
    parser.add_argument("--loss", type=float, default=5.0, help="percent per port (5)")
    args = parser.parse_args()
    require_root()
    duration = args.duration or (30.0 if args.smoke else 600.0)
    busy = os.cpu_count() or 1
    began = time.monotonic()
    measured = measure(duration, args.loss, busy)
    result = {
        "benchmark": "false_failures",
        "mode": "smoke" if args.smoke else "full",
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "fdt_ms": FDT_MS,
        "probe_interval_ms": FDT_MS // 7,
        "loss_percent_per_port": args.loss,
        "expected_exchange_loss": round(1 - (1 - args.loss / 100) ** 2, 4),
        "duration_s": duration,
        **measured,
        "goals": {"failures_declared": 0},
        "total_s": round(time.monotonic() - began, 1),
    }
    write_result("false_failures", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
