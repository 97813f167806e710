"""Crash safety: SIGKILL in.mpathd at random moments of failovers and failbacks of 50 addresses.

One lab from lab-active-active with FAILURE_DETECTION_TIME=1000 and 50 extra
IPv4 data addresses on eth0 (``addif`` lines in hostname.eth0, as
benchmarks/mass_failover.py builds them), so 51 data addresses move with
eth0.  An ``ip monitor address`` in the host namespace timestamps every
address the daemon adds or deletes.

Calibration first (no kills): a few failover/failback cycles measure how long
a move takes.  A failover's window runs from the cable pull (``set_cable``
returned) to the last address event: it covers the link-down detection, the
state written ahead and the move itself.  A failback starts only once the
repair is detected (10 probes, about 1.4 s after the plug), so its window runs
from the first address event of the failback to the last.  Each window is the
largest seen in calibration.

Then each kill: the cable is pulled (failover, odd kills) or plugged back
(failback, even kills); if a repair after a violation left the cable the
other way, the opposite move is made first, without a kill, and checked
(``prepared`` in the kill's record).  After a delay drawn uniformly from
``[0, window]`` of that phase (seeded ``random.Random``, ``--seed``; for a
failback counted from the first address event the monitor sees), the daemon
is SIGKILLed by PID (the PID ``Lab.start_daemon`` returned, checked in /proc/PID/cmdline to be
``python -m ipmp.daemon.main --root <lab root>``: ``ip netns exec`` execs the
daemon, so it is the daemon itself).  Right after it is dead, one ``ip -j
addr`` records where the 51 moving addresses are (at the source, at the
destination, on both, nowhere) and the monitor gives how many of the move's
address events had happened.  The dead process is forgotten with
``lab.stop_processes()`` (it skips dead processes, reaps them and clears the
lab's records; the daemon is the only process this lab starts), the daemon
is started again with ``lab.start_daemon()`` (it adopts its saved state,
``<lab root>/run/ipmp/state.json``, and the kernel's), and the script
waits, with deadlines, until it has settled for the phase (failback: every
member ``ok``, probing, two acks per instance, ``invariant.settled``;
failover: eth0 ``failed``, eth1 ``ok`` and probing) and then for the
invariant (benchmarks/invariant.py, ``wait_invariant``, 5 x FDT).  The log
written since the restart is searched for tracebacks and internal errors.
When the restart held, the restarted daemon then makes the opposite move, not
killed (the follow-up: after a failover kill the cable is plugged back, after
a failback kill it is pulled), and the invariant must hold again: a restart
can leave the kernel right and the daemon's own record of it wrong, which
shows only at its next move.

A kill whose restart or follow-up does not hold the invariant is a
violation.  Its record keeps the kill moment, the addresses per interface,
the log tail, a summary of the state file at the kill and after the restart
(for the first violation the whole files), and where the restarted daemon
places each moving address against where the kernel has it; when an address
does not answer, the host's routes, rules and neighbours and router1's
neighbour entry and route for it.  Then the lab is brought back to a state
the next kill can start from: for the first 3 violations (none in the smoke)
the daemon is first given 25 s to heal alone (longer than its 20 s rescan);
then, if eth0's cable is out, it is plugged back and the failback must hold
the invariant; if that fails too the lab is rebuilt (``healed_by`` per
violation, ``lab_rebuilds`` in the JSON).

``python benchmarks/crash_safety.py [--smoke] [--kills N] [--seed S] [--addresses N]``
(full: 200 kills; ``--smoke``: 5 kills, one calibration cycle)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import Daemon, lab_from, machine, require_root, summary, write_result
from invariant import (
    Expected,
    acks_received,
    expected_from,
    host_addresses,
    settled,
    wait_invariant,
)
from mass_failover import data_addresses, topology

from ipmp.core.errors import IpmpError
from ipmp.daemon.daemon import state_path
from ipmp.lab.lab import Lab

FDT_MS = 1000
FDT = FDT_MS / 1000
SOURCE, SIBLING = "eth0", "eth1"
RESTART_S = 20.0  # deadline for the restarted daemon to answer on its socket
SETTLE_S = 10 * FDT + 10  # deadline for it to settle for the phase
INVARIANT_S = 5 * FDT  # then for the invariant to hold
HEAL_S = 25.0  # after a violation: how long the daemon is given to heal alone (> 20 s rescan)
SELF_HEAL_WAITS = 3  # ... for the first this many violations
MOVE_S = 10 * FDT + 10  # calibration: deadline for a move to complete
DEAD_S = 5.0  # deadline for a SIGKILLed process to be gone
ERROR_MARKERS = (
    "Traceback (most recent call last)",
    "internal error",
    "connection failed",
    "Exception in callback",
    "exception was never retrieved",
)
RESTORE_LINE = "restarting: adopting the saved state"
EVENT_RE = re.compile(r"^(Deleted )?\d+: (\S+)\s+inet6? ([0-9a-fA-F.:]+)/")


# --------------------------------------------------------------- small helpers


def log_errors(text: str) -> list[str]:
    """Lines of a daemon log that show a traceback or an internal error."""
    return [line for line in text.splitlines() if any(m in line for m in ERROR_MARKERS)]


def proc_alive(pid: int) -> bool:
    """Whether ``pid`` exists and is not a zombie."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    return text[text.rindex(")") + 2 :].split()[0] not in ("Z", "X")


def daemon_cmdline_problem(lab: Lab, pid: int) -> str | None:
    """None when ``pid`` is this lab's in.mpathd (python -m ipmp.daemon.main --root ROOT)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError as exc:
        return f"pid {pid}: cannot read its cmdline: {exc}"
    words = [a.decode(errors="replace") for a in argv if a]
    if "ipmp.daemon.main" not in words or str(lab.root) not in words:
        return f"pid {pid} is not this lab's in.mpathd: {' '.join(words)}"
    return None


def wait_until(predicate: Any, timeout: float, step: float = 0.05) -> float | None:
    """Seconds until ``predicate()`` held, or None if it did not within ``timeout``."""
    start = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - start
        except IpmpError:
            pass  # the daemon is busy or restarting: ask again
        if time.monotonic() - start > timeout:
            return None
        time.sleep(step)


def spread(lab: Lab, moving: list[str]) -> dict[str, int]:
    """Where the moving addresses are: on the source only, the sibling only, both, elsewhere."""
    where, _links = host_addresses(lab)
    counts = {SOURCE: 0, SIBLING: 0, "both": 0, "nowhere": 0, "other": 0}
    for address in moving:
        on = sorted(where.get(address, []))
        if on == [SOURCE]:
            counts[SOURCE] += 1
        elif on == [SIBLING]:
            counts[SIBLING] += 1
        elif on == sorted([SOURCE, SIBLING]):
            counts["both"] += 1
        elif not on:
            counts["nowhere"] += 1
        else:
            counts["other"] += 1
    return counts


def moment(counts: dict[str, int], destination: str, total: int) -> str:
    """The move as the kernel shows it: ``not started``, ``on both``, ``partial`` or ``done``.

    ``on both``: every address added at the destination, none deleted at the source yet.
    """
    source = SIBLING if destination == SOURCE else SOURCE
    if counts[source] == total:
        return "not started"
    if counts[destination] == total:
        return "done"
    if counts["both"] == total:
        return "on both"
    return "partial"


def failover_settled(daemon: Daemon, acks: int = 2) -> bool:
    """eth0 failed (cable out), eth1 ok and probing with ``acks`` replies per instance."""
    snap = daemon.snapshot()
    rows = {str(r["interface"]): r for r in snap["interfaces"]}
    src, sib = rows.get(SOURCE), rows.get(SIBLING)
    if src is None or sib is None or src["state"] != "failed":
        return False
    if sib["state"] != "ok" or sib["probe"] != "ok":
        return False
    counts = [n for key, n in acks_received(daemon).items() if key.endswith(f" {SIBLING}")]
    return bool(counts) and all(n >= acks for n in counts)


# --------------------------------------------------------------- address monitor


@dataclass(frozen=True)
class Event:
    t: float
    deleted: bool
    ifname: str
    address: str


class AddressMonitor:
    """``ip -o monitor address`` in the host namespace, timestamping watched addresses."""

    def __init__(self, lab: Lab, watched: set[str]) -> None:
        self.watched = watched
        self.events: list[Event] = []
        self.cond = threading.Condition()
        argv = ["ip", "-n", lab.host_ns, "-o", "monitor", "address"]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1
        )
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            now = time.monotonic()
            found = EVENT_RE.match(line.strip())
            if found is None or found[3] not in self.watched:
                continue
            with self.cond:
                self.events.append(Event(now, bool(found[1]), found[2], found[3]))
                self.cond.notify_all()

    def mark(self) -> int:
        with self.cond:
            return len(self.events)

    def since(self, index: int) -> list[Event]:
        with self.cond:
            return list(self.events[index:])

    def wait_first(self, index: int, timeout: float) -> float | None:
        """The time of the first event after ``index``, waiting up to ``timeout`` s."""
        with self.cond:
            if self.cond.wait_for(lambda: len(self.events) > index, timeout):
                return self.events[index].t
        return None

    def wait_count(self, index: int, count: int, timeout: float) -> bool:
        """Wait up to ``timeout`` s until ``count`` events have come after ``index``."""
        with self.cond:
            return self.cond.wait_for(lambda: len(self.events) >= index + count, timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


# --------------------------------------------------------------------- the run


@dataclass
class Bench:
    """One lab, its daemon and monitor; rebuilt only if the lab itself breaks."""

    text: str
    moving: list[str]
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    lab: Lab | None = None
    daemon: Daemon | None = None
    expected: Expected | None = None
    monitor: AddressMonitor | None = None
    log_offset: int = 0
    builds: int = 0

    def build(self) -> None:
        self.close()
        self.stack = contextlib.ExitStack()
        self.lab = self.stack.enter_context(lab_from(self.text))
        self.builds += 1
        self.monitor = AddressMonitor(self.lab, set(self.moving))
        self.stack.callback(self.monitor.stop)
        self.expected = expected_from(self.lab)
        self.daemon = Daemon(self.lab).start(RESTART_S)
        self.log_offset = 0
        if wait_until(lambda: settled(self.daemon_()), 60.0, 0.1) is None:
            raise RuntimeError(f"the fresh lab's daemon did not settle: {self.daemon_().states()}")
        violations, _ = wait_invariant(self.lab_(), self.daemon, self.expected, INVARIANT_S)
        if violations:
            raise RuntimeError(f"the fresh lab does not hold the invariant: {violations[:5]}")
        self.take_log()

    def close(self) -> None:
        self.stack.close()
        self.lab = self.daemon = self.monitor = None

    def lab_(self) -> Lab:
        assert self.lab is not None
        return self.lab

    def daemon_(self) -> Daemon:
        assert self.daemon is not None
        return self.daemon

    def monitor_(self) -> AddressMonitor:
        assert self.monitor is not None
        return self.monitor

    def expected_(self) -> Expected:
        assert self.expected is not None
        return self.expected

    def log_path(self) -> Path:
        return self.lab_().run_dir / "in.mpathd.log"

    def take_log(self) -> str:
        """The log written since the last call."""
        data = self.log_path().read_bytes()
        text = data[self.log_offset :].decode(errors="replace")
        self.log_offset = len(data)
        return text

    def log_tail(self, lines: int = 40) -> list[str]:
        return self.log_path().read_text(errors="replace").splitlines()[-lines:]

    def cable_out(self) -> bool:
        return not self.lab_().state.port(SOURCE).cable_up

    def phase_settled(self, phase: str) -> bool:
        daemon = self.daemon_()
        return failover_settled(daemon) if phase == "failover" else settled(daemon)


def calibrate(bench: Bench, cycles: int) -> dict[str, Any]:
    """Failover/failback cycles without kills: the move windows, from the monitor's events."""
    lab, monitor = bench.lab_(), bench.monitor_()
    wanted = set(bench.moving)
    runs: list[dict[str, Any]] = []
    for _ in range(cycles):
        run: dict[str, Any] = {}
        for phase, up, destination in (
            ("failover", False, SIBLING),
            ("failback", True, SOURCE),
        ):
            index = monitor.mark()
            lab.set_cable(SOURCE, up)
            anchor = time.monotonic()

            # One add and one delete per address; waiting on the monitor (not polling
            # the kernel) leaves its reader thread free to timestamp each event.
            if not monitor.wait_count(index, 2 * len(wanted), MOVE_S):
                raise RuntimeError(f"calibration: the {phase} did not complete in {MOVE_S} s")
            where, _ = host_addresses(lab)
            if not all(where.get(a, []) == [destination] for a in wanted):
                raise RuntimeError(f"calibration: after the {phase} the addresses are elsewhere")
            if wait_until(lambda p=phase: bench.phase_settled(p), SETTLE_S, 0.05) is None:
                raise RuntimeError(f"calibration: the daemon did not settle after the {phase}")
            events = monitor.since(index)
            if not events:
                raise RuntimeError(f"calibration: the monitor saw no event in the {phase}")
            first, last = events[0].t, events[-1].t
            run[phase] = {
                "first_event_ms": round((first - anchor) * 1000, 3),
                "last_event_ms": round((last - anchor) * 1000, 3),
                "move_ms": round((last - first) * 1000, 3),
                "events": len(events),
            }
        runs.append(run)
    return {
        "runs": runs,
        "window_ms": {
            # failover: from the pull to the last event; failback: from its first event.
            "failover": max(r["failover"]["last_event_ms"] for r in runs),
            "failback": max(r["failback"]["move_ms"] for r in runs),
        },
    }


def kill_daemon(bench: Bench) -> tuple[int, str | None]:
    """SIGKILL the daemon by PID after checking it is the daemon; ``(pid, problem)``."""
    pid = bench.daemon_().pid
    problem = daemon_cmdline_problem(bench.lab_(), pid)
    if problem is not None:
        return pid, problem
    os.kill(pid, signal.SIGKILL)
    return pid, None


def state_summary(text: str, moving: list[str]) -> dict[str, Any]:
    """Per NIC of a state file: whether it is failed and how many moving addresses it holds."""
    wanted = set(moving)
    out: dict[str, Any] = {}
    for nic in json.loads(text)["nics"]:
        held = [
            li["address"]
            for lis in nic["instances"].values()
            for li in lis
            if li["address"] in wanted and not li.get("placeholder")
        ]
        out[str(nic["name"])] = {"failed": bool(nic["failed"]), "moving_here": len(held)}
    return out


def daemon_vs_kernel(bench: Bench) -> dict[str, Any]:
    """Moving addresses the daemon places on one interface while the kernel has them elsewhere."""
    where, _ = host_addresses(bench.lab_())
    wanted = set(bench.moving)
    differ: dict[str, Any] = {}
    for row in bench.daemon_().snapshot()["addresses"]:
        address = str(row["address"])
        if address not in wanted:
            continue
        daemon_on = str(row["logical"]).split(":")[0]
        if where.get(address, []) != [daemon_on]:
            differ[address] = {"daemon": row["logical"], "kernel": where.get(address, [])}
    return {"count": len(differ), "first": dict(list(differ.items())[:5])}


def prepare(bench: Bench, phase: str) -> float:
    """Bring the lab to the state ``phase`` starts from (the opposite move, not killed)."""
    start = time.monotonic()
    before = "failback" if phase == "failover" else "failover"
    bench.lab_().set_cable(SOURCE, before == "failback")
    if wait_until(lambda: bench.phase_settled(before), SETTLE_S, 0.05) is None:
        raise RuntimeError(f"preparing a {phase}: the {before} did not settle")
    found, _ = wait_invariant(bench.lab_(), bench.daemon, bench.expected_(), INVARIANT_S)
    if found:
        raise RuntimeError(f"preparing a {phase}: the invariant does not hold: {found[:3]}")
    bench.take_log()
    return round(time.monotonic() - start, 3)


def network_evidence(lab: Lab, address: str) -> dict[str, str]:
    """Routes, rules and neighbours of the host, and router1's entry for ``address``."""
    router1 = ["ip", "-n", lab.neighbour_ns("router1")]
    out = {
        "host_routes": lab.run(["ip", "-4", "route", "show"]).stdout,
        "host_rules": lab.run(["ip", "-4", "rule", "show"]).stdout,
        "host_neigh": lab.run(["ip", "-4", "neigh", "show"]).stdout,
    }
    for key, argv in (
        ("router1_neigh", [*router1, "-4", "neigh", "show", address]),
        ("router1_route", [*router1, "-4", "route", "get", address]),
    ):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
        out[key] = done.stdout + done.stderr
    return out


def one_kill(
    bench: Bench, number: int, rng: random.Random, windows: dict[str, float], evidence: bool
) -> tuple[dict[str, Any], list[str]]:
    """Start a failover or failback, SIGKILL the daemon during it, restart, check.

    ``evidence``: keep the full state files (at the kill, after the restart) if it fails.
    """
    lab, monitor = bench.lab_(), bench.monitor_()
    phase = "failover" if number % 2 else "failback"
    destination = SOURCE if phase == "failback" else SIBLING
    delay = rng.uniform(0.0, windows[phase] / 1000)
    record: dict[str, Any] = {"kill": number, "phase": phase, "delay_ms": round(delay * 1000, 3)}
    if bench.cable_out() != (phase == "failback"):
        # A repair after a violation left the cable the other way: make the move
        # this kill starts from, without a kill, and check it.
        record["prepared"] = prepare(bench, phase)
    index = monitor.mark()
    lab.set_cable(SOURCE, phase == "failback")
    plugged = time.monotonic()
    if phase == "failover":
        anchor: float | None = plugged
    else:
        anchor = monitor.wait_first(index, SETTLE_S)
        if anchor is None:
            record["note"] = f"no address event within {SETTLE_S:g} s of the plug: killed then"
            anchor = time.monotonic()
        else:
            record["plug_to_first_event_ms"] = round((anchor - plugged) * 1000, 3)
    anchor_wall = time.time() - (time.monotonic() - anchor)
    time.sleep(max(0.0, anchor + delay - time.monotonic()))
    pid, problem = kill_daemon(bench)
    killed = time.monotonic()
    record["pid"] = pid
    record["killed"] = problem is None
    record["kill_after_anchor_ms"] = round((killed - anchor) * 1000, 3)
    violations: list[str] = []
    if problem is not None:
        violations.append(problem)
        record["violations"] = violations
        return record, violations
    state = state_path(lab.root)
    try:
        written = state.stat().st_mtime
        state_at_kill = state.read_text(encoding="utf-8")
    except OSError as exc:
        violations.append(f"state file: {exc}")
        written, state_at_kill = 0.0, ""
    record["state_written_after_anchor_ms"] = round((written - anchor_wall) * 1000, 1)
    if wait_until(lambda: not proc_alive(pid), DEAD_S, 0.002) is None:
        violations.append(f"pid {pid} still alive {DEAD_S:g} s after SIGKILL")
        record["violations"] = violations
        return record, violations
    counts = spread(lab, bench.moving)
    record["at_kill"] = counts
    record["moment"] = moment(counts, destination, len(bench.moving))
    events = monitor.since(index)
    record["events_before_kill"] = sum(e.t <= killed for e in events)

    forgotten = lab.stop_processes()
    if forgotten:  # stop_processes names only processes it had to stop: none should be alive
        violations.append(f"stop_processes stopped live processes: {forgotten}")
    restarted = time.monotonic()
    try:
        bench.daemon = Daemon(lab).start(RESTART_S)
    except (IpmpError, TimeoutError) as err:
        violations.append(f"restart failed: {err}")
        record["violations"] = violations
        record["log_tail"] = bench.log_tail()
        return record, violations
    record["restart_answers_s"] = round(time.monotonic() - restarted, 3)
    settle = wait_until(lambda: bench.phase_settled(phase), SETTLE_S, 0.05)
    if settle is None:
        with contextlib.suppress(IpmpError):
            violations.append(
                f"not settled for the {phase} within {SETTLE_S:g} s: {bench.daemon_().states()}"
            )
    else:
        record["settle_s"] = round(time.monotonic() - restarted, 3)
    found, waited = wait_invariant(lab, bench.daemon, bench.expected_(), INVARIANT_S)
    record["invariant_wait_s"] = round(waited, 3)
    violations += found
    log = bench.take_log()
    record["restored_from_state"] = RESTORE_LINE in log
    if not record["restored_from_state"]:
        violations.append("the restarted daemon did not log that it adopted its saved state")
    errors = log_errors(log)
    if errors:
        record["log_errors"] = errors[:10]
        violations += [f"log: {line}" for line in errors[:5]]
    if violations:
        record["violations"] = violations[:12]
        record["violation_count"] = len(violations)
        record["after"] = spread(lab, bench.moving)
        record["log_since_restart"] = [ln for ln in log.splitlines() if "SendProbe" not in ln][-20:]
        silent = [v.split(":")[0] for v in violations if "no answer" in v]
        if silent:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                record["network"] = network_evidence(lab, silent[0])
        with contextlib.suppress(IpmpError):
            record["daemon_vs_kernel"] = daemon_vs_kernel(bench)
        with contextlib.suppress(OSError, ValueError, KeyError):
            after = state.read_text(encoding="utf-8")
            record["state_at_kill"] = state_summary(state_at_kill, bench.moving)
            record["state_after_restart"] = state_summary(after, bench.moving)
            if evidence:
                record["state_file_at_kill"] = json.loads(state_at_kill)
                record["state_file_after_restart"] = json.loads(after)
    return record, violations


def follow_up(bench: Bench, killed: str) -> tuple[dict[str, Any], list[str]]:
    """The move after the restart, not killed: the restarted daemon must make it whole.

    A restart can leave the kernel right and the daemon's own bookkeeping
    wrong; that shows only when the daemon next moves the addresses.
    """
    lab, monitor = bench.lab_(), bench.monitor_()
    phase = "failback" if killed == "failover" else "failover"
    index = monitor.mark()
    start = time.monotonic()
    lab.set_cable(SOURCE, phase == "failback")
    out: dict[str, Any] = {"phase": phase}
    violations: list[str] = []
    if wait_until(lambda: bench.phase_settled(phase), SETTLE_S, 0.05) is None:
        violations.append(f"follow-up {phase}: not settled within {SETTLE_S:g} s")
    else:
        out["settle_s"] = round(time.monotonic() - start, 3)
    found, waited = wait_invariant(lab, bench.daemon, bench.expected_(), INVARIANT_S)
    out["invariant_wait_s"] = round(waited, 3)
    violations += [f"follow-up {phase}: {v}" for v in found]
    events = monitor.since(index)
    out["adds"] = sum(not e.deleted for e in events)
    out["deletes"] = sum(e.deleted for e in events)
    if violations:
        out["violations"] = violations[:12]
        out["violation_count"] = len(violations)
        out["at_end"] = spread(lab, bench.moving)
        with contextlib.suppress(IpmpError):
            out["daemon_vs_kernel"] = daemon_vs_kernel(bench)
        log = bench.log_path().read_text(errors="replace").splitlines()
        out["log_tail"] = [ln for ln in log if "SendProbe" not in ln][-12:]
    bench.take_log()
    return out, violations


def heal(bench: Bench, wait_itself: float) -> str:
    """After a violation, bring the lab back to a state the next kill can start from.

    First ``wait_itself`` s for the daemon to fix things alone; then, if eth0's
    cable is out, plug it back and wait for the failback (a move the daemon
    makes whole); else, or if that does not hold the invariant, rebuild the
    lab.  Returns how it healed: ``itself``, ``failback`` or ``rebuild``.
    """

    def holds(for_phase: str, timeout: float) -> bool:
        try:
            if bench.daemon is None or not proc_alive(bench.daemon.pid):
                bench.lab_().stop_processes()
                bench.daemon = Daemon(bench.lab_()).start(RESTART_S)
            if wait_until(lambda: bench.phase_settled(for_phase), timeout, 0.1) is None:
                return False
            found, _ = wait_invariant(bench.lab_(), bench.daemon, bench.expected_(), timeout)
        except (IpmpError, OSError, TimeoutError, subprocess.SubprocessError):
            return False
        return not found

    now = "failover" if bench.cable_out() else "failback"
    if wait_itself > 0 and holds(now, wait_itself):
        bench.take_log()
        return "itself"
    if bench.cable_out():
        bench.lab_().set_cable(SOURCE, True)
        if holds("failback", SETTLE_S):
            bench.take_log()
            return "failback"
    bench.build()
    return "rebuild"


def compact(record: dict[str, Any], heavy: tuple[str, ...]) -> dict[str, Any]:
    """A kill's record without its evidence (that stays in ``violation_details``)."""
    out = {k: v for k, v in record.items() if k not in heavy}
    if "follow_up" in out:
        out["follow_up"] = {k: v for k, v in out["follow_up"].items() if k not in heavy}
        out["follow_up"].pop("at_end", None)
    return out


@contextlib.contextmanager
def bench_of(text: str, moving: list[str]) -> Iterator[Bench]:
    bench = Bench(text, moving)
    try:
        yield bench
    finally:
        bench.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="5 kills, one calibration cycle")
    parser.add_argument("--kills", type=int, default=None, help="kills (full: 200)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill delays")
    parser.add_argument("--addresses", type=int, default=50, help="extra data addresses on eth0")
    args = parser.parse_args()
    require_root()
    kills = args.kills if args.kills is not None else (5 if args.smoke else 200)
    cycles = 1 if args.smoke else 3
    self_heal_waits = 0 if args.smoke else SELF_HEAL_WAITS
    rng = random.Random(args.seed)
    extra = data_addresses(args.addresses)
    moving = ["192.0.2.19", *extra]
    began = time.monotonic()
    records: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    notes: list[str] = []
    with bench_of(topology(extra), moving) as bench:
        bench.build()
        calibration = calibrate(bench, cycles)
        windows = calibration["window_ms"]
        for number in range(1, kills + 1):
            try:
                record, violations = one_kill(bench, number, rng, windows, evidence=not bad)
            except (
                RuntimeError,
                IpmpError,
                TimeoutError,
                OSError,
                subprocess.SubprocessError,
            ) as exc:
                # The lab could not be brought to where the kill starts: a broken lab.
                violations = [f"{type(exc).__name__}: {exc}"]
                record = {"kill": number, "phase": "failover" if number % 2 else "failback"}
                record.update(delay_ms=0.0, violations=violations, crashed=True)
            if not violations and record.get("killed"):
                try:
                    record["follow_up"], violations = follow_up(bench, record["phase"])
                except (IpmpError, TimeoutError, OSError, subprocess.SubprocessError) as exc:
                    violations = [f"follow-up: {type(exc).__name__}: {exc}"]
                    record["follow_up"] = {"violations": violations}
            if violations:
                # Only the first violations wait for the daemon to heal alone (it has
                # its 20 s rescan); the others go straight to the repair.
                healing = time.monotonic()
                waited = HEAL_S if len(bad) < self_heal_waits else 0.0
                record["healed_by"] = heal(bench, waited)
                record["heal_s"] = round(time.monotonic() - healing, 1)
                record["waited_for_self_heal_s"] = waited
                if record["healed_by"] == "rebuild":
                    notes.append(f"kill {number}: the lab was rebuilt after the violation")
                bad.append(record)
            records.append(record)
            print(
                f"kill {number:3}/{kills} {record['phase']:8} delay {record['delay_ms']:7.3f} ms "
                f"{record.get('moment', '?'):11} {record.get('at_kill', {})} "
                f"settle {record.get('settle_s', '-')} s "
                f"{'OK' if not violations else 'VIOLATION: ' + '; '.join(violations)[:300]}",
                file=sys.stderr,
                flush=True,
            )
        builds = bench.builds
    compact_keys = ("log_tail", "log_since_restart", "state_file_at_kill", "violations")
    compact_keys += ("state_file_after_restart", "log_errors", "daemon_vs_kernel", "network")
    by_phase: dict[str, Any] = {}
    for phase in ("failover", "failback"):
        mine = [r for r in records if r["phase"] == phase]
        moments = [r.get("moment", "unknown") for r in mine]
        by_phase[phase] = {
            "kills": len(mine),
            "moment_at_kill": {m: moments.count(m) for m in sorted(set(moments))},
            "violations": sum(bool(r.get("violations")) for r in mine),
            "follow_up_violations": sum(
                bool(r.get("follow_up", {}).get("violations")) for r in mine
            ),
            "violations_by_moment": {
                m: sum(bool(r.get("violations")) for r in mine if r.get("moment") == m)
                for m in sorted(set(moments))
            },
            "follow_up_violations_by_moment": {
                m: sum(
                    bool(r.get("follow_up", {}).get("violations"))
                    for r in mine
                    if r.get("moment") == m
                )
                for m in sorted(set(moments))
            },
            "delay_ms": summary([r["delay_ms"] for r in mine]),
            "settle_s": summary([r["settle_s"] for r in mine if "settle_s" in r]),
            "invariant_wait_s": summary(
                [r["invariant_wait_s"] for r in mine if "invariant_wait_s" in r]
            ),
        }
    result = {
        "benchmark": "crash_safety",
        "mode": "smoke" if args.smoke else "full",
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "seed": args.seed,
        "fdt_ms": FDT_MS,
        "moving_addresses": len(moving),
        "kills_requested": kills,
        "kills": sum(bool(r.get("killed")) for r in records),
        "restarts_invariant_held": sum(
            bool(r.get("killed")) and not r.get("violations") for r in records
        ),
        "follow_ups": sum("follow_up" in r for r in records),
        "follow_ups_held": sum(
            "follow_up" in r and not r["follow_up"].get("violations") for r in records
        ),
        "violations": len(bad),
        "violation_details": bad,
        "log_error_lines": sum(len(r.get("log_errors", [])) for r in records),
        "restored_from_state": sum(bool(r.get("restored_from_state")) for r in records),
        "calibration": calibration,
        "by_phase": by_phase,
        "lab_builds": builds,
        "lab_rebuilds": builds - 1,
        "deadlines_s": {"settle": SETTLE_S, "invariant": INVARIANT_S, "heal": HEAL_S},
        "goals": {"kills": 200, "violations": 0},
        "notes": notes,
        "kill_details": [compact(r, compact_keys) for r in records],
        "duration_s": round(time.monotonic() - began, 1),
    }
    write_result("crash_safety", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
