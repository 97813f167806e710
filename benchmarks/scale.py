"""Scale: in.mpathd's CPU and memory in steady state with 8, 32 and 128 NICs.

For each size N and FAILURE_DETECTION_TIME (FDT), the script generates a
topology of N NICs eth0..eth{N-1} in N/2 groups of two (``g0``, ``g1``...).
Each group has its own link (bridge) with two neighbours, and its own /29 from
the documentation networks (192.0.2.0/24 first, then 198.51.100.0/24, then
203.0.113.0/24; 32 groups per /24, so at most 192 NICs)::

    .1 .2   the two neighbours: the group's probe targets, found by the
            all-hosts probe (each link has exactly these two)
    .3 .4   the data addresses of the two members
    .5 .6   their test addresses (deprecated -failover)

IPv4 only (no hostname6 files): every NIC is one probe instance with two
targets.  The daemon is started as ``Lab.start_daemon`` does; the script
waits until every interface is ``ok``, probing ``ok`` with two targets and
has had a probe answered ("ready"), waits ``--settle`` seconds, then samples
the daemon's python process over the window (``--window``, 60 s):

* ``cpu_percent``: (utime + stime) delta from /proc/PID/stat over the wall
  time, in % of one core (also per second: ``cpu_percent_per_second``);
* ``rss_mb`` (VmRSS at the end), ``rss_start_mb`` and ``peak_rss_mb`` (VmHWM,
  the peak since the daemon started, start-up included), in MB (10^6 bytes);
* ``probes_per_s``: probes sent in the window (the control ``stats`` request,
  summed over the interfaces) per second, with the acks and losses;
* ``failures_in_window``: failure lines the daemon logged in the window (each
  one a false failure: no fault is injected), and the state at the end.

Each cell first boots the daemon directly at its FDT (``direct_boot``).  If
that never gets ready within ``--ready-timeout`` (the daemon cannot keep up
while it configures the NICs), the cell is measured in a second, fresh lab
booted at FDT 10 s and switched to the cell's FDT by rewriting
/etc/default/mpathd and the control ``reload`` request (SIGHUP's path); the
cell then says ``booted_at_fdt_ms: 10000``.  If even that does not get ready,
the window is sampled anyway and the cell says ``ready_before_window: false``.
``all_ok_at_end`` says whether the daemon still held every NIC ok at the
requested FDT after the window (it raises a group's FDT when it cannot send
its probes in time: "Cannot meet requested failure detection time").

``--profile window`` starts the daemon through this script
(``--profiled-daemon``), which turns cProfile on and off with SIGPROF (SIGUSR2
is the daemon's own: logged and ignored) so that only the window is profiled;
``--profile boot`` profiles from the daemon's start until it is ready (or the
wait gives up).  The top functions go to
results/scale-profile-MODE-SIZESxFDTS.json, whose CPU figures include the
profiler's overhead and are not the measurement.

``python benchmarks/scale.py [--smoke] [--sizes N ...] [--fdt MS ...] [--window S]
[--ready-timeout S] [--profile window|boot]``
"""

from __future__ import annotations

import argparse
import cProfile
import io
import ipaddress
import os
import pstats
import re
import runpy
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from common import HERE, Daemon, lab_from, machine, require_root, summary, wait_for, write_result

from ipmp.core.errors import IpmpError
from ipmp.lab.lab import Lab
from ipmp.sim.topology import write_etc

NETWORKS = ("192.0.2.0", "198.51.100.0", "203.0.113.0")
GROUPS_PER_NETWORK = 32
"""A /24 holds 32 /29s: one per group."""
MAX_NICS = 2 * GROUPS_PER_NETWORK * len(NETWORKS)
NETMASK = "255.255.255.248"
FALLBACK_BOOT_FDT_MS = 10000
TICKS = os.sysconf("SC_CLK_TCK")
FAILURE_LINES = ("NIC failure detected", "have failed", "The link has gone down")
LOG_KINDS = {
    "nic_failure": "NIC failure detected",
    "nic_repair": "NIC repair detected",
    "group_failure": "have failed",
    "missed_sending": "missed sending",
    "send_failed": "SendProbe failed",
    "fdt_raised": "Cannot meet requested failure detection time",
    "fdt_improved": "Improved failure detection time",
    "no_targets": "No probe targets found",
}
STATS_LINE = re.compile(
    r"Probe stats on \((\S+) (\S+)\): probes sent (\d+), acks received (\d+), "
    r"probes/acks lost (\d+)"
)
Counts = dict[str, tuple[int, int, int]]


def group_addresses(group: int) -> dict[str, str]:
    """The /29 of ``group`` and its six addresses (see the module docstring)."""
    base = ipaddress.IPv4Address(NETWORKS[group // GROUPS_PER_NETWORK])
    base += 8 * (group % GROUPS_PER_NETWORK)
    return {
        "network": f"{base}/29",
        "router_a": str(base + 1),
        "router_b": str(base + 2),
        "data0": str(base + 3),
        "data1": str(base + 4),
        "test0": str(base + 5),
        "test1": str(base + 6),
    }


def topology_text(nics: int, fdt_ms: int) -> str:
    """The TOML of ``nics`` NICs in groups of two, one link and two neighbours per group."""
    if nics < 2 or nics % 2 or nics > MAX_NICS:
        raise ValueError(f"NIC count must be even, from 2 to {MAX_NICS}: {nics}")
    out = [
        "# benchmarks/scale.py: generated",
        "[host]",
        'name = "scale"',
        "",
        "[mpathd]",
        'text = """',
        f"FAILURE_DETECTION_TIME={fdt_ms}",
        "FAILBACK=yes",
        "TRACK_INTERFACES_ONLY_WITH_GROUPS=yes",
        '"""',
        "",
    ]
    for group in range(nics // 2):
        addr = group_addresses(group)
        out += ["[[link]]", f'name = "net{group}"', ""]
        for side in ("a", "b"):
            out += [
                "  [[link.neighbour]]",
                f'  name = "r{group}{side}"',
                '  role = "router"',
                f'  address = "{addr[f"router_{side}"]}"',
                "",
            ]
    for index in range(nics):
        group, member = divmod(index, 2)
        addr = group_addresses(group)
        data, test = addr[f"data{member}"], addr[f"test{member}"]
        out += [
            "[[nic]]",
            f'name = "eth{index}"',
            f'mac = "2:0:0:0:{index >> 8:x}:{index & 0xFF:x}"',
            f'link = "net{group}"',
            "hostname = '''",
            f"{data} netmask {NETMASK} broadcast + group g{group} up \\",
            f"    addif {test} deprecated -failover netmask {NETMASK} broadcast + up",
            "'''",
            "",
        ]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- /proc


def python_pid(pid: int) -> int:
    """The python process behind ``pid`` (``ip netns exec`` execs it; else its one child)."""
    deadline = time.monotonic() + 10
    while True:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        if "python" in Path(argv[0].decode()).name:
            return pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if len(children) == 1:
            return python_pid(int(children[0]))
        if time.monotonic() > deadline:
            raise RuntimeError(f"pid {pid} ({argv[0]!r}) is not python and has no one child")
        time.sleep(0.05)


def cpu_split(pid: int) -> tuple[int, int]:
    """(utime, stime) of ``pid`` in clock ticks (fields 14 and 15 of /proc/PID/stat)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[11]), int(fields[12])


def cpu_ticks(pid: int) -> int:
    """utime + stime of ``pid`` in clock ticks."""
    return sum(cpu_split(pid))


def memory_mb(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of ``pid`` in MB (10^6 bytes; the kernel's "kB" are KiB)."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            found[key] = int(value.split()[0]) * 1024 / 1e6
    return found


# ---------------------------------------------------------------- the daemon


def probe_stats(daemon: Daemon) -> tuple[Counts, list[str]]:
    """Interface -> (probes sent, acks, lost) for inet, from the control ``stats`` request."""
    lines = [str(line) for line in daemon.client().request("stats")["lines"]]
    found: Counts = {}
    for line in lines:
        match = STATS_LINE.search(line)
        if match and match.group(1) == "inet":
            found[match.group(2)] = (int(match[3]), int(match[4]), int(match[5]))
    return found, lines


def readiness(daemon: Daemon, names: list[str], fdt_ms: int) -> dict[str, Any]:
    """Whether every NIC is ok, probing ok with two inet targets, every group at ``fdt_ms``."""
    snap = daemon.snapshot()
    rows = {str(r["interface"]): r for r in snap["interfaces"]}
    targets = {
        str(t["interface"]): list(t["targets"]) for t in snap["targets"] if t["family"] == "inet"
    }
    ok = [n for n in names if n in rows and rows[n]["state"] == "ok" and rows[n]["probe"] == "ok"]
    counts = [len(targets.get(n, [])) for n in names]
    fdts = sorted({int(g["fdt_ms"]) for g in snap["groups"] if g.get("fdt_ms") is not None})
    return {
        "interfaces": len(rows),
        "ok": len(ok),
        "two_targets": counts.count(2),
        "targets_min": min(counts),
        "targets_max": max(counts),
        "ready": len(ok) == counts.count(2) == len(names) == len(rows) and fdts == [fdt_ms],
        "states": sorted({f"{r['state']}/{r['probe']}" for r in rows.values()}),
        "group_fdt_ms": fdts,
    }


def source_state() -> dict[str, Any]:
    """The commit measured and the files under src/ that differ from it."""

    def git(*argv: str) -> str:
        return subprocess.run(
            ["git", *argv], cwd=HERE.parent, capture_output=True, text=True, check=False
        ).stdout.rstrip("\n")

    dirty = [line for line in git("status", "--porcelain", "--", "src").split("\n") if line]
    return {"commit": git("rev-parse", "HEAD"), "src_changes": [line[3:] for line in dirty]}


def log_counts(lines: list[str]) -> dict[str, int]:
    return {kind: sum(text in line for line in lines) for kind, text in LOG_KINDS.items()}


def profiled_daemon(out: str, from_start: bool, argv: list[str]) -> int:
    """Run in.mpathd (``argv``) here; SIGPROF starts cProfile, the next one writes ``out``.

    ``from_start``: the profiler runs from the start, and the first SIGPROF writes ``out``.
    """
    profiler = cProfile.Profile()
    running = False

    def toggle(signum: int, frame: Any) -> None:
        nonlocal running
        if not running:
            profiler.enable()
        else:
            profiler.disable()
            profiler.dump_stats(out)
        running = not running

    signal.signal(signal.SIGPROF, toggle)
    if from_start:
        toggle(signal.SIGPROF, None)
    sys.argv = ["in.mpathd", *argv]
    try:
        runpy.run_module("ipmp.daemon.main", run_name="__main__", alter_sys=True)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


def top_functions(path: Path, count: int = 30) -> list[str]:
    """The ``count`` functions with the most own time in a cProfile output file."""
    out = io.StringIO()
    pstats.Stats(str(path), stream=out).sort_stats("tottime").print_stats(count)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    head = [line.strip() for line in lines[:start] if "function calls" in line]
    return head + [line.rstrip() for line in lines[start : start + count + 1]]


class Run:
    """One lab, one daemon: start it, wait for ready, sample a window."""

    def __init__(self, lab: Lab, nics: int, fdt_ms: int, profile: str | None) -> None:
        self.lab = lab
        self.fdt_ms = fdt_ms
        self.names = [f"eth{i}" for i in range(nics)]
        self.profile_mode = profile
        self.profile = lab.run_dir / f"{profile}.prof" if profile else None
        self.daemon = Daemon(lab)
        if self.profile is None:
            self.daemon.pid = lab.start_daemon()
        else:
            write_etc(lab.topology, lab.root)
            argv = [sys.executable, str(HERE / "scale.py"), "--profiled-daemon", str(self.profile)]
            argv += [str(profile), "-d", "--root", str(lab.root), "--linux"]
            self.daemon.pid = lab.start_process("in.mpathd", argv, "in.mpathd.log")
        self.started = time.monotonic()
        wait_for(self.daemon.answers, 120, "in.mpathd answers on its socket", 0.1)
        self.pid = python_pid(self.daemon.pid)
        self.last: dict[str, Any] = {}
        self.log_path = lab.run_dir / "in.mpathd.log"

    def is_ready(self) -> bool:
        try:
            self.last = readiness(self.daemon, self.names, self.fdt_ms)
            if not self.last["ready"]:
                return False
            counts, _ = probe_stats(self.daemon)
        except IpmpError:
            return False  # busy: ask again
        return all(counts.get(n, (0, 0, 0))[1] > 0 for n in self.names)

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """Wait for ready; the time it took, or the last state seen, and the CPU meanwhile."""
        t0, ticks0 = time.monotonic(), cpu_ticks(self.pid)
        try:
            wait_for(self.is_ready, timeout, "every NIC ok with two targets", 0.5)
            ready = True
        except TimeoutError:
            ready = False
        elapsed = time.monotonic() - t0
        return {
            "ready": ready,
            "waited_s": round(elapsed, 2),
            "since_daemon_start_s": round(time.monotonic() - self.started, 2),
            "cpu_percent": round((cpu_ticks(self.pid) - ticks0) / TICKS / elapsed * 100, 1),
            "last": self.last,
        }

    def log_lines(self, offset: int = 0) -> list[str]:
        with open(self.log_path, "rb") as handle:
            handle.seek(offset)
            return handle.read().decode(errors="replace").splitlines()

    def reload(self, fdt_ms: int) -> None:
        """Rewrite FAILURE_DETECTION_TIME in /etc/default/mpathd and ask for a reload."""
        path = self.lab.root / "etc" / "default" / "mpathd"
        line = f"FAILURE_DETECTION_TIME={fdt_ms}"
        path.write_text(re.sub(r"(?m)^FAILURE_DETECTION_TIME=\d+$", line, path.read_text()))
        self.daemon.client().request("reload")
        self.fdt_ms = fdt_ms

    def window(self, seconds: float) -> dict[str, Any]:
        """Sample CPU, memory and probe counts over ``seconds``."""
        offset = self.log_path.stat().st_size
        before, _ = probe_stats(self.daemon)
        mem0 = memory_mb(self.pid)
        if self.profile_mode == "window":
            os.kill(self.pid, signal.SIGPROF)
        split0 = cpu_split(self.pid)
        start_ticks, start_wall = sum(split0), time.monotonic()
        per_second: list[float] = []
        ticks, wall = start_ticks, start_wall
        while wall - start_wall < seconds - 1e-6:
            time.sleep(max(0.0, min(1.0, start_wall + seconds - wall)))
            now_ticks, now_wall = cpu_ticks(self.pid), time.monotonic()
            per_second.append((now_ticks - ticks) / TICKS / (now_wall - wall) * 100)
            ticks, wall = now_ticks, now_wall
        split1 = cpu_split(self.pid)
        if self.profile_mode == "window":
            os.kill(self.pid, signal.SIGPROF)
        mem1 = memory_mb(self.pid)
        elapsed = wall - start_wall
        after, stats_lines = probe_stats(self.daemon)
        end = readiness(self.daemon, self.names, self.fdt_ms)
        window_log = self.log_lines(offset)
        zero = (0, 0, 0)

        def delta(k: int) -> Callable[[str], int]:
            return lambda n: after[n][k] - before.get(n, zero)[k]

        sent, acked, lost = delta(0), delta(1), delta(2)
        lossy = sorted((n for n in after if lost(n) > 0), key=lost, reverse=True)
        failures = [line for line in window_log if any(f in line for f in FAILURE_LINES)]
        result: dict[str, Any] = {
            "daemon_pid_is_wrapper": self.pid != self.daemon.pid,
            "window_s": round(elapsed, 2),
            "cpu_percent": round((ticks - start_ticks) / TICKS / elapsed * 100, 2),
            "cpu_user_percent": round((split1[0] - split0[0]) / TICKS / elapsed * 100, 2),
            "cpu_system_percent": round((split1[1] - split0[1]) / TICKS / elapsed * 100, 2),
            "cpu_percent_per_second": summary(per_second),
            "rss_mb": round(mem1["VmRSS"], 1),
            "rss_start_mb": round(mem0["VmRSS"], 1),
            "peak_rss_mb": round(mem1["VmHWM"], 1),
            "probes_sent": sum(map(sent, after)),
            "probes_per_s": round(sum(map(sent, after)) / elapsed, 1),
            "acks": sum(map(acked, after)),
            "lost": sum(map(lost, after)),
            "interfaces_answered_in_window": sum(acked(n) > 0 for n in self.names if n in after),
            "interfaces_with_loss": len(lossy),
            "loss_stats": [
                line for line in stats_lines for n in lossy[:5] if f" on (inet {n})" in line
            ],
            "failures_in_window": len(failures),
            "failure_lines": failures[:10],
            "window_log": log_counts(window_log),
            "end": end,
            "all_ok_at_end": bool(end["ready"]),
        }
        if self.profile_mode == "window":
            result["profile_top_tottime"] = self.profile_top()
        return result

    def profile_top(self) -> list[str]:
        """Wait for the daemon to write its profile; its top functions."""
        assert self.profile is not None
        wait_for(self.profile.exists, 60, "the daemon's cProfile output", 0.1)
        return top_functions(self.profile)


# ---------------------------------------------------------------- one cell


def one_lab(
    nics: int,
    fdt_ms: int,
    boot_fdt_ms: int,
    *,
    window: float,
    settle: float,
    ready_timeout: float,
    profile: str | None,
    measure_anyway: bool,
) -> dict[str, Any]:
    """Build a lab, boot the daemon at ``boot_fdt_ms`` (then reload to ``fdt_ms``), measure."""
    began = time.monotonic()
    out: dict[str, Any] = {"booted_at_fdt_ms": boot_fdt_ms}
    with lab_from(topology_text(nics, boot_fdt_ms)) as lab:
        out["lab_build_s"] = round(time.monotonic() - began, 2)
        run = Run(lab, nics, boot_fdt_ms, profile)
        out["daemon_answers_s"] = round(time.monotonic() - run.started, 2)
        boot = run.wait_ready(ready_timeout)
        out["boot"] = boot
        out["boot_log"] = log_counts(run.log_lines())
        if profile == "boot":
            os.kill(run.pid, signal.SIGPROF)
            out["boot_profile_top_tottime"] = run.profile_top()
        ready = bool(boot["ready"])
        if ready and boot_fdt_ms != fdt_ms:
            run.reload(fdt_ms)
            reload = run.wait_ready(ready_timeout)
            out["after_reload"] = reload
            ready = bool(reload["ready"])
        out["ready_before_window"] = ready
        if ready or measure_anyway:
            time.sleep(settle)
            out.update(run.window(window))
        t1 = time.monotonic()
    out["lab_down_s"] = round(time.monotonic() - t1, 2)
    return out


def measure(nics: int, fdt_ms: int, args: argparse.Namespace) -> dict[str, Any]:
    """One cell: direct boot at ``fdt_ms``; if it never gets ready, boot at 10 s and reload."""
    options = {
        "window": args.window,
        "settle": args.settle,
        "ready_timeout": args.ready_timeout,
        "profile": args.profile,
    }
    cell: dict[str, Any] = {"nics": nics, "groups": nics // 2, "fdt_ms": fdt_ms}
    last_resort = fdt_ms == FALLBACK_BOOT_FDT_MS
    direct = one_lab(nics, fdt_ms, fdt_ms, measure_anyway=last_resort, **options)
    if direct["ready_before_window"] or last_resort:
        cell.update(direct)
    else:
        cell["direct_boot"] = direct
        cell.update(one_lab(nics, fdt_ms, FALLBACK_BOOT_FDT_MS, measure_anyway=True, **options))
    cell["goal"] = goal(cell)
    return cell


def goal(cell: dict[str, Any]) -> dict[str, Any] | None:
    """The issue's goal for this cell, if it has one, and whether it was met."""
    if cell["nics"] == 128 and cell["fdt_ms"] == 1000:
        met = cell["cpu_percent"] <= 5 and cell["peak_rss_mb"] <= 100
        return {"text": "<= 5% of one core and <= 100 MB (peak RSS)", "met": met}
    if cell["nics"] == 32 and cell["fdt_ms"] == 100:
        return {"text": "<= 20% of one core", "met": cell["cpu_percent"] <= 20}
    return None


def main() -> int:
    if sys.argv[1:2] == ["--profiled-daemon"]:
        # PATH window|boot DAEMON-ARGS...
        return profiled_daemon(sys.argv[2], sys.argv[3] == "boot", sys.argv[4:])
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="8 NICs, FDT 1 s, 5 s window")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="NIC counts")
    parser.add_argument("--fdt", type=int, nargs="+", default=None, help="FDTs in ms")
    parser.add_argument("--window", type=float, default=None, help="seconds (full: 60)")
    parser.add_argument("--settle", type=float, default=None, help="seconds after ready")
    parser.add_argument("--ready-timeout", type=float, default=120.0, help="seconds")
    parser.add_argument("--profile", choices=("window", "boot"), help="cProfile the daemon")
    args = parser.parse_args()
    require_root()
    sizes = args.sizes or ([8] if args.smoke else [8, 32, 128])
    fdts = args.fdt or ([1000] if args.smoke else [1000, 100])
    args.window = args.window or (5.0 if args.smoke else 60.0)
    args.settle = args.settle if args.settle is not None else (1.0 if args.smoke else 5.0)
    for size in sizes:
        topology_text(size, 1000)  # refuse a bad size before building anything
    began = time.monotonic()
    cells: list[dict[str, Any]] = []
    for size in sizes:
        for fdt in fdts:
            cell = measure(size, fdt, args)
            cells.append(cell)
            print(
                f"{size} NICs, FDT {fdt} ms (booted at {cell['booted_at_fdt_ms']}): "
                f"{cell['cpu_percent']}% CPU, RSS {cell['rss_mb']} MB "
                f"(peak {cell['peak_rss_mb']}), {cell['probes_per_s']} probes/s, "
                f"ready before the window {cell['ready_before_window']}, "
                f"all ok at its end {cell['all_ok_at_end']}, "
                f"lab built in {cell['lab_build_s']} s",
                file=sys.stderr,
            )
    result = {
        "benchmark": "scale",
        "mode": "smoke" if args.smoke else "full",
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "source": source_state(),
        "profiled": args.profile,
        "window_s": args.window,
        "settle_s": args.settle,
        "ready_timeout_s": args.ready_timeout,
        "cells": cells,
        "goals": {
            "128 NICs, FDT 1000 ms": "<= 5% of one core and <= 100 MB",
            "32 NICs, FDT 100 ms": "<= 20% of one core",
        },
        "duration_s": round(time.monotonic() - began, 1),
    }
    name = "scale"
    cells_name = f"{'-'.join(map(str, sizes))}x{'-'.join(map(str, fdts))}"
    if args.profile:
        name += f"-profile-{args.profile}-{cells_name}"
    elif not args.smoke and (args.sizes or args.fdt):
        name += f"-{cells_name}"  # a partial run does not replace the full one
    write_result(name, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
