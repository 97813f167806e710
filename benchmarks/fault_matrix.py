"""Fault matrix: every fault against every configuration, on the real lab, checked by the invariant.

Configurations (columns), all at FAILURE_DETECTION_TIME=1000 so that a cell
takes seconds:

* ``active-active``: src/ipmp/examples/lab-active-active.toml (eth0 and eth1
  in group test, one data and one test address each);
* ``active-standby``: lab-active-standby.toml (eth1 is a standby with only
  its test address);
* ``failback-no``: active-active with FAILBACK=no;
* ``single-nic``: active-active without its second ``[[nic]]`` (a one-NIC group);
* ``dual-stack``: active-active plus one IPv6 global data address per NIC
  (``addif 2001:db8::19/64 up`` in hostname6.eth0, ``::20`` on eth1, numbered
  after the IPv4 data address); router1, the pinger, is given 2001:db8::1/64
  in its own namespace (the lab gives neighbours a link-local IPv6 address only).

Faults (rows), injected on eth0 (the NIC holding 192.0.2.19) unless said:

* ``carrier``: eth0's cable pulled at the switch (link-based detection);
* ``drop``: eth0's switch port silently drops every frame (probe-based);
* ``loss20``: 20 % loss at eth0's switch port for 6 x FDT (must not fail);
* ``target1``: router2 (a target of both families) goes silent;
* ``targets_all``: every neighbour goes silent (a group failure: no failover);
* ``nics_all``: every member's cable pulled (group failure);
* ``nic_delete``: eth0's veth removed; repaired by creating it again;
* ``nic_recreate``: eth0 deleted and created again at once (new ifindex);
* ``sigkill``: in.mpathd SIGKILLed, then started again;
* ``sighup_broken``: etc/default/mpathd replaced by a file whose every value is
  invalid, SIGHUP; the daemon must keep FDT and FAILBACK (checked with a
  cable pull) and log each bad key; the file is then restored, SIGHUP again;
* ``state_ro``: run/ipmp (state.json, the control socket, the lock) made
  read-only for in.mpathd (a read-only bind mount made with ``nsenter`` in the
  daemon's own mount namespace: ``ip netns exec`` gave it one, and mounts of
  the root namespace are private here, so they would not reach it; clients
  outside still see the directory as it was).  Then eth0's cable is pulled:
  the failover must happen in the kernel, the daemon must report what the
  kernel has and log a line naming state.json and the error (this failover's
  write is the first to fail); ``offline eth0`` must then be refused with one
  line and change nothing; once run/ipmp is writable again (the cable still
  pulled) the state must be saved with no new event (a retry), recording eth0
  failed and the data where the kernel has it; then the cable is plugged.  (The
  state is written ahead of kernel changes: in a one-NIC group, where nothing
  moves, no write is expected and none has to fail.)
* ``disk_full``: the same with a 64 KiB tmpfs, filled, mounted over run/ipmp in
  the daemon's mount namespace (the socket and the lock stay usable: the daemon
  holds them open and the clients reach them through the root namespace);
* ``fd_exhaustion``: in.mpathd restarted with ``--metrics 127.0.0.1:9105`` and
  limited to 1024 descriptors (prlimit: systemd's default); uid 65534
  (``conn_hog.py``) holds 3000 trickling connections to the metrics port and
  200 to the control socket; root's ``ipmpstat -g`` must answer, eth0's cable
  is pulled and the failover must happen as for ``carrier``;
* ``state_corrupt_<kind>``: in.mpathd stopped, state.json replaced by a bad one
  (``nonutf8``: the daemon's own state with a Latin-1 byte; ``deep``: 100 000
  nested arrays; ``dir``: a directory; ``fifo``: a FIFO; ``shape``: an object
  of this boot whose ``nics`` is not a list; ``othernics``: the daemon's own
  state with every NIC and address renamed, a state of another host), started
  again: it must answer within 20 s, move the file aside (the same inode under
  another name in run/ipmp) with exactly one log line naming state.json and
  the new name, boot from the hostname files, never remove a configured
  address from the kernel (polled every 30 ms during the start), and save a
  state naming only this host's NICs;
* ``second_daemon``: a second in.mpathd started on the same root: it must exit
  non-zero within 20 s with exactly one line naming the first one's PID, and
  the addresses, policy rules, routes (every table), nftables rules, the first
  daemon's groups, interfaces and addresses and its state file must be
  unchanged, the first daemon alive and its log free of errors.

Each cell: the configuration's lab is brought back to its baseline (every
member ok and probing with replies seen, every data address at home, the
invariant holds) or, when that cannot be reached (FAILBACK=no leaves addresses
where they are), a fresh lab is built: the JSON says which per cell
(``lab``: ``fresh`` or ``reused``).  Then the fault is injected; the script
polls (with a deadline) for the expected reaction of that cell (members
failed, addresses moved or not, targets dropped, ...), checks the invariant
(benchmarks/invariant.py) during the fault where it applies, repairs, polls
for the expected recovery (failback, or no failback with FAILBACK=no) and
checks the invariant again.  The expectation of every cell is written out in
``expect()`` and copied into the JSON.  A cell passes when every step held;
the invariant is polled for up to 2 s once the reaction is seen (a GARP may be
on its way): a cell where it held only on a later poll shows ``pass*`` and
lists the first violations under ``transient``.  Daemon log lines that look
like errors are copied per cell (``details.daemon_errors``), not judged.

``python benchmarks/fault_matrix.py [--smoke] [--cells FAULT:CONFIG,...]``: the full
matrix writes results/fault_matrix.json, ``--smoke`` (10 cells, every
configuration) results/fault_matrix-smoke.json; ``--cells`` only prints its JSON.
The table goes to stderr as well, with one progress line per cell.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from common import (
    Daemon,
    example_text,
    lab_from,
    machine,
    require_root,
    wait_for,
    write_result,
)
from invariant import (
    Expected,
    check_invariant,
    expected_from,
    host_addresses,
    settled,
)

from ipmp.core.errors import IpmpError
from ipmp.daemon.control import socket_path
from ipmp.daemon.daemon import state_path
from ipmp.daemon.statefile import boot_id
from ipmp.lab.commands import in_netns
from ipmp.lab.lab import Lab

FDT_MS = 1000
FDT = FDT_MS / 1000
PINGER = "router1"
PINGER6 = "2001:db8::1/64"
V6_PREFIX = "2001:db8::"
LOSS_PERCENT = 20.0
HOLD = 6 * FDT  # how long loss20 lasts
STAY_HOLD = 2 * FDT  # FAILBACK=no: how long addresses must stay put after the repair
REACT_S = 5 * FDT + 5  # deadline for the reaction to a fault
RECOVER_S = 10 * FDT + 8  # deadline for the recovery after the repair
SETTLE_S = 30.0  # deadline for a lab to reach its baseline
INVARIANT_S = 2.0  # how long the invariant may take to hold once the reaction is seen
START_S = 20.0  # deadline for a (re)started in.mpathd to answer on its socket
FULL_KIB = 64  # size of the tmpfs that plays a full disk
RETRY_S = 30.0  # deadline for the state to be saved again once run/ipmp is writable
HOG_TCP = 3000  # connections uid 65534 holds to the metrics port (the figure)
HOG_UNIX = 200  # ... and to the control socket
HOG_S = 120.0  # deadline for conn_hog.py to have opened them
DAEMON_NOFILE = 1024  # descriptor limit of in.mpathd in fd_exhaustion (systemd's soft default)
METRICS_PORT = 9105  # in the lab's host namespace: no other process there
CONN_HOG = Path(__file__).resolve().parent / "conn_hog.py"
BROKEN_MPATHD = (
    "# broken on purpose by benchmarks/fault_matrix.py\n"
    "FAILURE_DETECTION_TIME=fast\n"
    "FAILBACK=maybe\n"
    "TRACK_INTERFACES_ONLY_WITH_GROUPS=perhaps\n"
)
BROKEN_KEYS = {  # key -> how the daemon's log names it (lower case)
    "FAILURE_DETECTION_TIME": "failure detection time",
    "FAILBACK": "failback",
    "TRACK_INTERFACES_ONLY_WITH_GROUPS": "track_interfaces_only_with_groups",
}

DAEMON_ERROR = re.compile(r"failed:|error|traceback|exception", re.I)
NOT_ERRORS = ("SendProbe failed: Cannot assign requested address",)
"""Daemon log lines recorded per cell (not judged): error lines, except IPv6 probes
sent from a link-local address that is still tentative (DAD) after a NIC comes up."""

CORRUPT_KINDS = {
    "nonutf8": "non-UTF-8 byte",
    "deep": "deep nesting",
    "dir": "a directory",
    "fifo": "a FIFO",
    "shape": "wrong JSON shape",
    "othernics": "other NICs",
}
"""Kinds of bad state file (``state_corrupt_<kind>`` cells), written while in.mpathd is stopped."""

CONFIGS = ["active-active", "active-standby", "failback-no", "single-nic", "dual-stack"]
FAULTS = {
    "carrier": "carrier loss",
    "drop": "silent port drop",
    "loss20": "20% loss",
    "target1": "one target dead",
    "targets_all": "all targets dead",
    "nics_all": "all NICs dead",
    "nic_delete": "NIC deleted",
    "nic_recreate": "NIC re-created",
    "sigkill": "SIGKILL + restart",
    "sighup_broken": "SIGHUP, broken file",
    "state_ro": "state dir read-only",
    "disk_full": "state dir full",
    "fd_exhaustion": "nobody holds fds",
    **{f"state_corrupt_{kind}": f"state: {title}" for kind, title in CORRUPT_KINDS.items()},
    "second_daemon": "second in.mpathd",
}
SMOKE_CELLS = [
    ("carrier", "active-active"),
    ("drop", "active-standby"),
    ("carrier", "failback-no"),
    ("nics_all", "single-nic"),
    ("sigkill", "dual-stack"),
    ("nic_recreate", "active-active"),
    ("state_ro", "active-active"),
    ("disk_full", "dual-stack"),
    ("state_corrupt_fifo", "active-standby"),
    ("second_daemon", "failback-no"),
]


# --------------------------------------------------------------- configurations


def config_text(config: str) -> str:
    """The lab topology TOML of ``config``, derived from the shipped examples."""
    if config == "active-standby":
        return example_text("lab-active-standby", FAILURE_DETECTION_TIME=str(FDT_MS))
    if config == "failback-no":
        return example_text("lab-active-active", FAILURE_DETECTION_TIME=str(FDT_MS), FAILBACK="no")
    text = example_text("lab-active-active", FAILURE_DETECTION_TIME=str(FDT_MS))
    if config == "single-nic":
        head, first, *_rest = text.split("[[nic]]")
        return head + "[[nic]]" + first
    if config == "dual-stack":
        head, *nics = text.split("[[nic]]")
        out = [head]
        for nic in nics:
            v4 = re.search(r"hostname = '''\s*(\d+\.\d+\.\d+\.(\d+)) ", nic)
            if v4 is None:
                raise ValueError("dual-stack: a [[nic]] without an IPv4 data address")
            addif = f"addif {V6_PREFIX}{v4[2]}/64 up\n"
            nic, n = re.subn(r"(hostname6 = '''\n(?:.*\n)*?)'''", rf"\g<1>{addif}'''", nic)
            if n != 1:
                raise ValueError("dual-stack: a [[nic]] without a hostname6 file")
            out.append(nic)
        return "[[nic]]".join(out)
    if config != "active-active":
        raise ValueError(f"unknown configuration {config}")
    return text


def config_failback(config: str) -> bool:
    return config != "failback-no"


# ------------------------------------------------------------------ expectations


@dataclass
class Expect:
    """What one cell must show.  Addresses map to the interface they must be on."""

    failed: list[str]  # members that must reach state "failed" during the fault
    not_failed: list[str]  # members that must never show "failed" during the fault
    during: dict[str, str]  # data address -> where it must be once the daemon has reacted
    check_during: bool  # check the invariant during the fault
    during_why: str  # why (not)
    after: str  # "home" (all back), "stay" (no failback: as during the fault), "any"
    note: str


def expect(fault: str, config: str, expected: Expected) -> Expect:
    """The expected outcome of one cell, from the configuration's members and addresses."""
    members = sorted(expected.groups)
    others = [m for m in members if m != "eth0"]
    home = dict(expected.data)
    failback = config_failback(config)
    moved = {a: (others[0] if h == "eth0" and others else h) for a, h in home.items()}
    back = "home" if failback else "stay"
    if fault in ("carrier", "drop"):
        how = "its link goes down" if fault == "carrier" else "its probes are lost"
        if not others:
            note = f"eth0 fails ({how}); alone in its group, its address stays on it"
            return Expect(["eth0"], [], home, True, "no healthy member: no ping", "home", note)
        note = f"eth0 fails ({how}); its data moves to {others[0]}; " + (
            "failback after repair" if failback else "FAILBACK=no: the data stays moved"
        )
        return Expect(["eth0"], others, moved, True, "data on the healthy member", back, note)
    if fault == "loss20":
        note = "20% loss is below the failure threshold (5 lost probes in a row): no failure"
        return Expect([], members, home, True, "pinged with 5 requests", "home", note)
    if fault == "target1":
        note = "router2 is dropped from the target lists; no member fails, nothing moves"
        return Expect([], members, home, True, "pinged from router1", "home", note)
    if fault == "targets_all":
        note = "all targets silent: a group failure, no failover; repair when they answer"
        return Expect(members, [], home, True, "no healthy member: no ping", "home", note)
    if fault == "nics_all":
        after = "home" if failback else "any"
        note = "every cable pulled: every member fails, each address stays in the group" + (
            "" if failback else "; FAILBACK=no: where it ends depends on which repair is seen first"
        )
        return Expect(members, [], {}, True, "no healthy member: no ping", after, note)
    if fault == "nic_delete":
        if not others:
            note = "the only NIC is removed: its address cannot be anywhere, the daemon keeps it"
            return Expect(["eth0"], [], {}, True, "address absent, daemon holds it", "home", note)
        note = f"eth0 removed: its data moves to {others[0]}; it comes back when eth0 is made again"
        if not failback:
            note = f"eth0 removed: its data moves to {others[0]} and stays (FAILBACK=no)"
        return Expect(["eth0"], others, moved, True, "data on the healthy member", back, note)
    if fault == "nic_recreate":
        after = "home" if failback else "any"
        note = "eth0 deleted and made again at once: the daemon configures the new eth0" + (
            "" if failback else "; FAILBACK=no: the data may stay where the removal put it"
        )
        return Expect([], others, {}, False, "instantaneous fault", after, note)
    if fault == "sigkill":
        note = "while in.mpathd is dead the kernel keeps every address; the restart moves nothing"
        return Expect([], [], home, True, "kernel only (no daemon)", "home", note)
    if fault == "sighup_broken":
        note = "the broken file changes nothing: FDT stays 1000 ms" + (
            "" if not others else (" and FAILBACK stays " + ("yes" if failback else "no"))
        )
        after = "home" if failback or not others else "stay"
        why = "the cable test checks behaviour under the broken file"
        return Expect([], [], {}, False, why, after, note)
    if fault in ("state_ro", "disk_full"):
        base = expect("carrier", config, expected)
        how = "read-only" if fault == "state_ro" else f"full (a {FULL_KIB} KiB tmpfs, filled)"
        note = (
            f"run/ipmp made {how} for in.mpathd, eth0's cable pulled: {base.note}, in the kernel "
            "although the state cannot be written; the daemon reports what the kernel has and "
            "logs the failed write; `offline eth0` is then refused with one line and changes "
            "nothing; run/ipmp writable again (cable still pulled): the state is saved with no "
            "new event"
        )
        if not others:
            note += " (a one-NIC group: nothing moves, so nothing is written during the fault)"
        return replace(base, note=note)
    if fault == "fd_exhaustion":
        base = expect("carrier", config, expected)
        note = (
            f"uid 65534 holds {HOG_TCP} trickling connections to the metrics port and "
            f"{HOG_UNIX} to the control socket of an in.mpathd limited to {DAEMON_NOFILE} "
            f"descriptors; root's ipmpstat answers; eth0's cable pulled: {base.note}"
        )
        return replace(base, note=note)
    if fault.startswith("state_corrupt_"):
        kind = fault.removeprefix("state_corrupt_")
        note = (
            f"state.json is {CORRUPT_KINDS[kind]} while in.mpathd is stopped; it starts within "
            f"{START_S:g} s, moves the file aside with one log line naming it, boots from the "
            "hostname files, removes no address of the host, and the invariant holds"
        )
        return Expect([], members, home, False, "the fault is at start", "home", note)
    if fault == "second_daemon":
        note = (
            "a second in.mpathd on the same root exits non-zero with one line naming the first; "
            "addresses, rules, routes, the first daemon's states and its state file are unchanged"
        )
        return Expect([], members, home, True, "the first daemon keeps serving", "home", note)
    raise ValueError(f"unknown fault {fault}")


# ------------------------------------------------------------------------ labs


class Bench:
    """One configuration's lab and daemon, reusable across that configuration's cells."""

    def __init__(self, config: str) -> None:
        self.config = config
        self.text = config_text(config)
        self.stack = contextlib.ExitStack()
        self.lab: Lab | None = None
        self.daemon: Daemon | None = None
        self.expected: Expected | None = None
        self.build_s = 0.0

    def open(self) -> None:
        self.close()
        began = time.monotonic()
        self.stack = contextlib.ExitStack()
        self.lab = self.stack.enter_context(lab_from(self.text))
        if self.config == "dual-stack":
            ns = self.lab.neighbour_ns(PINGER)
            cmd = ["ip", "-n", ns, "addr", "add", PINGER6, "dev", "eth0", "nodad"]
            subprocess_run(cmd)
        self.expected = expected_from(self.lab)
        self.daemon = Daemon(self.lab).start()
        self.build_s = time.monotonic() - began

    def close(self) -> None:
        self.stack.close()
        self.lab = self.daemon = self.expected = None

    def members(self) -> list[str]:
        assert self.expected is not None
        return sorted(self.expected.groups)

    def baseline_problems(self) -> list[str]:
        """Why the lab is not at its baseline ([] when it is)."""
        lab, daemon, expected = self.lab, self.daemon, self.expected
        assert lab is not None and daemon is not None and expected is not None
        problems: list[str] = []
        try:
            snap = daemon.snapshot()
        except IpmpError as err:
            return [f"daemon: {err.message}"]
        states = {str(r["interface"]): str(r["state"]) for r in snap["interfaces"]}
        for member in self.members():
            if states.get(member) != "ok":
                problems.append(f"{member}: {states.get(member)}")
        fdts = {g["fdt_ms"] for g in snap["groups"]}
        if fdts != {FDT_MS}:
            problems.append(f"group FDT {sorted(map(str, fdts))}")
        where, _links = host_addresses(lab)
        for address, home in expected.data.items():
            if where.get(address) != [home]:
                problems.append(f"{address}: on {where.get(address)}, home {home}")
        if problems:
            return problems
        if not settled(daemon):
            return ["probing has not settled (targets, replies)"]
        return check_invariant(lab, daemon, expected, pinger=PINGER)

    def ensure(self) -> str:
        """Bring the lab to its baseline; build a fresh one if needed.  "reused" or "fresh"."""
        if self.lab is not None:
            problems = self.wait_baseline(SETTLE_S)
            if not problems:
                return "reused"
        self.open()
        problems = self.wait_baseline(SETTLE_S)
        if problems:
            raise RuntimeError(f"{self.config}: a fresh lab never settled: {problems}")
        return "fresh"

    def wait_baseline(self, timeout: float) -> list[str]:
        start = time.monotonic()
        while True:
            problems = self.baseline_problems()
            if not problems:
                return []
            # FAILBACK=no keeps moved addresses moved for good: do not wait for them.
            stuck = all("home" in p for p in problems) and not config_failback(self.config)
            if stuck or time.monotonic() - start > timeout:
                return problems
            time.sleep(0.1)


def subprocess_run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=30)


# ------------------------------------------------------------------------ cells


@dataclass
class Cell:
    """The record of one cell."""

    fault: str
    config: str
    result: str = "fail"
    lab: str = ""
    expect: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    transient: list[str] = field(default_factory=list)  # violations that cleared in time
    timings_ms: dict[str, float] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


class CellRun:
    """Runs one cell against a ready Bench, collecting violations and timings."""

    def __init__(self, bench: Bench, cell: Cell, exp: Expect) -> None:
        assert bench.lab is not None and bench.daemon is not None and bench.expected is not None
        self.bench = bench
        self.lab: Lab = bench.lab
        self.expected: Expected = bench.expected
        self.cell = cell
        self.exp = exp
        self.t0 = time.monotonic()

    @property
    def daemon(self) -> Daemon:
        assert self.bench.daemon is not None
        return self.bench.daemon

    def mark(self, name: str, since: float | None = None) -> None:
        base = self.t0 if since is None else since
        self.cell.timings_ms[name] = round((time.monotonic() - base) * 1000, 1)

    def fail(self, text: str) -> None:
        self.cell.violations.append(text)

    def states(self) -> dict[str, str]:
        try:
            return self.daemon.states()
        except IpmpError:
            return {}

    def where(self) -> dict[str, list[str]]:
        return host_addresses(self.lab)[0]

    def where_of(self, addresses: list[str]) -> dict[str, list[str]]:
        where = self.where()
        return {a: where.get(a, []) for a in addresses}

    def poll(self, what: str, check: Callable[[], list[str]], timeout: float) -> bool:
        """Poll ``check`` (its unmet conditions) until [] or ``timeout``; record a miss."""
        start = time.monotonic()
        while True:
            unmet = check()
            bad = self.unwanted_failures()
            if bad:
                self.fail(f"{what}: {', '.join(bad)} failed, which must not")
                return False
            if not unmet:
                return True
            if time.monotonic() - start > timeout:
                self.fail(f"{what}: not within {timeout:g} s: {'; '.join(unmet)}")
                return False
            time.sleep(0.02)

    def unwanted_failures(self) -> list[str]:
        if not self.watch_not_failed:
            return []
        states = self.states()
        return [m for m in self.exp.not_failed if states.get(m) == "failed"]

    watch_not_failed = False

    def reaction_unmet(self) -> list[str]:
        """The expected reaction: members failed, data addresses where expected."""
        unmet: list[str] = []
        states = self.states()
        for member in self.exp.failed:
            if states.get(member) != "failed":
                unmet.append(f"{member} is {states.get(member)}, expected failed")
        where = self.where()
        for address, on in self.exp.during.items():
            if where.get(address, []) != [on]:
                unmet.append(f"{address} on {where.get(address, [])}, expected {on}")
        return unmet

    def invariant(self, when: str, **kwargs: Any) -> None:
        """Poll the invariant for up to INVARIANT_S (a GARP may still be on its way).

        The time it took to hold and the first violations seen are recorded.
        """
        start = time.monotonic()
        daemon = kwargs.pop("daemon", self.daemon)
        first: list[str] = []
        while True:
            violations = check_invariant(self.lab, daemon, self.expected, pinger=PINGER, **kwargs)
            if violations and not first:
                first = violations
            if not violations or time.monotonic() - start > INVARIANT_S:
                break
            time.sleep(0.05)
        self.mark(f"invariant_{when}", start)
        if first:
            self.cell.details[f"invariant_{when}_first_violations"] = first
            if not violations:
                waited = self.cell.timings_ms[f"invariant_{when}"]
                self.cell.transient.append(f"{when} the fault, held after {waited:g} ms: {first}")
        for v in violations:
            self.fail(f"{when} the fault: {v}")

    def during(self, **kwargs: Any) -> None:
        """The invariant during the fault, where the cell's expectation says it applies."""
        if self.exp.check_during:
            self.invariant("during", **kwargs)

    def recovery_unmet(self, holders_at_repair: dict[str, list[str]]) -> list[str]:
        unmet: list[str] = []
        states = self.states()
        for member in self.bench.members():
            if states.get(member) != "ok":
                unmet.append(f"{member} is {states.get(member)}, expected ok")
        where = self.where()
        for address, home in self.expected.data.items():
            now = where.get(address, [])
            if self.exp.after == "home" and now != [home]:
                unmet.append(f"{address} on {now}, expected back on {home}")
            if self.exp.after == "stay" and now != holders_at_repair.get(address, []):
                unmet.append(
                    f"{address} on {now}, expected to stay on {holders_at_repair.get(address)}"
                )
        return unmet

    def recover(self, repaired_at: float, holders: dict[str, list[str]]) -> None:
        """Poll for the expected recovery, hold for FAILBACK=no, check the invariant."""
        ok = self.poll("recovery", lambda: self.recovery_unmet(holders), RECOVER_S)
        self.mark("recovery", repaired_at)
        if ok and self.exp.after == "stay":
            # Failback would happen as the repair is detected: watch that nothing moves.
            end = time.monotonic() + STAY_HOLD
            while time.monotonic() < end:
                unmet = self.recovery_unmet(holders)
                if unmet:
                    self.fail(f"after the repair (FAILBACK=no): {'; '.join(unmet)}")
                    break
                time.sleep(0.05)
        self.invariant("after")


# ------------------------------------------------------------------------ faults


def run_simple(
    run: CellRun,
    inject: Callable[[], None],
    repair: Callable[[], None],
    *,
    extra_reaction: Callable[[], list[str]] | None = None,
    hold: float = 0.0,
    during_kwargs: dict[str, Any] | None = None,
) -> None:
    """Inject, wait for the reaction (and ``hold`` s), check during, repair, recover."""
    run.watch_not_failed = True
    inject()
    run.mark("inject")
    start = time.monotonic()

    def reaction() -> list[str]:
        unmet = run.reaction_unmet()
        if extra_reaction is not None:
            unmet += extra_reaction()
        return unmet

    if run.poll("reaction", reaction, REACT_S):
        run.mark("reaction", start)
    if hold:
        end = start + hold
        while time.monotonic() < end and run.poll("hold", lambda: [], 0.0):
            time.sleep(0.05)
    run.during(**(during_kwargs or {}))
    run.poll("still during the fault", run.reaction_unmet, 0.0)
    run.watch_not_failed = False
    holders = run.where()
    repaired_at = time.monotonic()
    repair()
    run.recover(repaired_at, holders)


def fault_carrier(run: CellRun) -> None:
    run_simple(
        run, lambda: run.lab.set_cable("eth0", False), lambda: run.lab.set_cable("eth0", True)
    )


def fault_drop(run: CellRun) -> None:
    run_simple(run, lambda: run.lab.set_drop("eth0", True), lambda: run.lab.set_drop("eth0", False))


def fault_loss20(run: CellRun) -> None:
    run_simple(
        run,
        lambda: run.lab.set_loss("eth0", LOSS_PERCENT),
        lambda: run.lab.set_loss("eth0", 0.0),
        hold=HOLD,
        during_kwargs={"count": 5},
    )


def neighbour_addresses(lab: Lab, name: str) -> set[str]:
    spec = lab.neighbours[name].spec
    return {a for a in (spec.address, spec.address6) if a}


def fault_target1(run: CellRun) -> None:
    dead = neighbour_addresses(run.lab, "router2")

    def dropped() -> list[str]:
        try:
            rows = run.daemon.snapshot()["targets"]
        except IpmpError:
            return ["no snapshot"]
        return [
            f"{t['interface']} {t['family']} still probes {a}"
            for t in rows
            for a in t["targets"]
            if a in dead
        ]

    run_simple(
        run,
        lambda: run.lab.set_target("router2", False),
        lambda: run.lab.set_target("router2", True),
        extra_reaction=dropped,
    )


def fault_targets_all(run: CellRun) -> None:
    names = list(run.lab.neighbours)

    def silence(up: bool) -> None:
        for name in names:
            run.lab.set_target(name, up)

    def group_failed() -> list[str]:
        snap = run.daemon.snapshot()
        return [
            f"group {g['group']} is {g['state']}" for g in snap["groups"] if g["state"] != "failed"
        ]

    run_simple(run, lambda: silence(False), lambda: silence(True), extra_reaction=group_failed)


def fault_nics_all(run: CellRun) -> None:
    members = run.bench.members()

    def cables(up: bool) -> None:
        for member in members:
            run.lab.set_cable(member, up)

    def anywhere_in_group() -> list[str]:
        where = run.where()
        return [
            f"{a} on {where.get(a, [])}" for a in run.expected.data if len(where.get(a, [])) != 1
        ]

    run_simple(run, lambda: cables(False), lambda: cables(True), extra_reaction=anywhere_in_group)


def fault_nic_delete(run: CellRun) -> None:
    run_simple(run, lambda: run.lab.delete_nic("eth0"), lambda: run.lab.create_nic("eth0"))


def fault_nic_recreate(run: CellRun) -> None:
    before = {r["interface"]: r["index"] for r in run.daemon.snapshot()["interfaces"]}
    new_index: dict[str, int] = {}

    def recreate() -> None:
        run.lab.delete_nic("eth0")
        run.lab.create_nic("eth0")
        link = run.lab.host_link("eth0")
        if link is not None:
            new_index["eth0"] = int(link["ifindex"])

    def daemon_sees_new() -> list[str]:
        snap = run.daemon.snapshot()
        rows = {r["interface"]: r for r in snap["interfaces"]}
        row = rows.get("eth0")
        if row is None or row["index"] != new_index.get("eth0") or not row["present"]:
            return [f"daemon shows eth0 as {row}, the kernel's new index {new_index.get('eth0')}"]
        return []

    run.watch_not_failed = True
    repaired_at = time.monotonic()
    recreate()
    run.mark("inject")
    run.cell.details["ifindex"] = {"before": before.get("eth0"), "after": new_index.get("eth0")}
    start = time.monotonic()
    if run.poll("reaction", daemon_sees_new, REACT_S):
        run.mark("reaction", start)
    run.watch_not_failed = False
    run.recover(repaired_at, {})


def fault_sigkill(run: CellRun) -> None:
    lab = run.lab
    pid = run.daemon.pid
    os.kill(pid, signal.SIGKILL)
    run.mark("inject")
    start = time.monotonic()
    gone = False
    while time.monotonic() - start < REACT_S:
        if not any(p.alive and p.record.pid == pid for p in lab.processes()):
            gone = True
            break
        time.sleep(0.01)
    if not gone:
        run.fail(f"in.mpathd (pid {pid}) still runs after SIGKILL")
        return
    run.mark("reaction", start)
    # With no daemon, every link that is up counts: the kernel must keep everything.
    _where, links = host_addresses(lab)
    healthy = {name for name in links if (lab.host_link(name) or {}).get("operstate") == "UP"}
    run.poll("addresses in place without the daemon", run.reaction_unmet, 0.0)
    run.during(daemon=None, healthy=healthy)
    restarted = time.monotonic()
    try:
        run.bench.daemon = Daemon(lab).start()
    except (IpmpError, TimeoutError) as err:
        run.fail(f"restart: {err}")
        return
    run.mark("restart_answers", restarted)
    run.recover(restarted, {})


def fault_sighup_broken(run: CellRun) -> None:
    lab, daemon = run.lab, run.daemon
    path = lab.root / "etc" / "default" / "mpathd"
    original = path.read_text(encoding="utf-8")
    log_mark = len(daemon.log())
    path.write_text(BROKEN_MPATHD, encoding="utf-8")
    try:
        os.kill(daemon.pid, signal.SIGHUP)
        run.mark("inject")
        start = time.monotonic()

        def logged() -> list[str]:
            text = daemon.log()[log_mark:]
            unmet = [] if "SIGHUP" in text else ["no SIGHUP line in the log"]
            unmet += [
                f"no log line names {key}"
                for key, words in BROKEN_KEYS.items()
                if words not in text.lower()
            ]
            return unmet

        if run.poll("reaction (log)", logged, REACT_S):
            run.mark("reaction", start)
        lines = [ln for ln in daemon.log()[log_mark:].splitlines() if ln.strip()]
        run.cell.details["log_after_broken_sighup"] = lines[-8:]
        fdts = {g["fdt_ms"] for g in daemon.snapshot()["groups"]}
        run.cell.details["fdt_ms_after_broken_sighup"] = sorted(fdts)
        if fdts != {FDT_MS}:
            run.fail(f"FDT changed by the broken file: {sorted(fdts)} ms, configured {FDT_MS}")
        others = [m for m in run.bench.members() if m != "eth0"]
        if others:
            cable_test(run, others[0], max(f or FDT_MS for f in fdts) / 1000)
        else:
            run.cell.details["cable_test"] = "not possible: no other member to fail over to"
    finally:
        path.write_text(original, encoding="utf-8")
    log_mark = len(daemon.log())
    restored = time.monotonic()
    os.kill(daemon.pid, signal.SIGHUP)
    run.poll(
        "restored file read",
        lambda: [] if "SIGHUP" in daemon.log()[log_mark:] else ["no SIGHUP line"],
        REACT_S,
    )
    holders = run.where()
    run.recover(restored, holders)
    after = daemon.log()[log_mark:]
    bad = [ln for ln in after.splitlines() if any(w in ln.lower() for w in BROKEN_KEYS.values())]
    if bad:
        run.fail(f"the restored file was complained about: {bad[:2]}")


def cable_test(run: CellRun, sibling: str, fdt: float) -> None:
    """Under the broken file: pull eth0, see the failover, plug, see FAILBACK as configured.

    ``fdt`` is the detection time in force (s): the repair needs 10 probes of FDT/7.
    """
    failback = config_failback(run.bench.config)
    repair_s = 1.5 * 10 * fdt / 7 + 5
    moving = [a for a, h in run.expected.data.items() if h == "eth0"]
    start = time.monotonic()
    run.lab.set_cable("eth0", False)

    def moved() -> list[str]:
        where = run.where()
        return [f"{a} on {where.get(a)}" for a in moving if where.get(a) != [sibling]]

    run.poll("cable test: failover", moved, REACT_S)
    run.lab.set_cable("eth0", True)
    plugged = time.monotonic()

    def repaired() -> list[str]:
        return [] if run.states().get("eth0") == "ok" else ["eth0 not repaired"]

    run.poll("cable test: repair", repaired, repair_s)
    repaired_ms = round((time.monotonic() - plugged) * 1000)
    if failback:
        run.poll("cable test: failback (FAILBACK=yes kept)", lambda: back(run, moving), repair_s)
    else:
        end = time.monotonic() + STAY_HOLD
        while time.monotonic() < end:
            if moved():
                run.fail(f"cable test: failed back although FAILBACK=no was kept: {moved()}")
                break
            time.sleep(0.05)
    run.mark("cable_test", start)
    run.cell.details["cable_test"] = (
        f"eth0 pulled, plugged after {round((plugged - start) * 1000)} ms, "
        f"repaired {repaired_ms} ms after; addresses then on {run.where_of(moving)}"
    )


def back(run: CellRun, addresses: list[str]) -> list[str]:
    where = run.where()
    return [f"{a} on {where.get(a)}" for a in addresses if where.get(a) != [run.expected.data[a]]]


# ------------------------------------------------------- state, descriptors, instances


def state_dir(lab: Lab) -> Path:
    """``run/ipmp`` under the lab root: state.json, the control socket and the lock."""
    return state_path(lab.root).parent


def in_daemon_mounts(run: CellRun, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in in.mpathd's mount namespace.

    ``ip netns exec`` gives the daemon a mount namespace of its own, and the
    root namespace's mounts are private here: a mount made outside would not
    reach the daemon, so it is made inside, where only the daemon sees it.
    """
    cmd = ["nsenter", "-t", str(run.daemon.pid), "-m", *argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)


def daemon_mounts(run: CellRun, directory: Path) -> list[str]:
    """The mount points at ``directory`` in in.mpathd's mount namespace."""
    with contextlib.suppress(OSError):
        text = Path(f"/proc/{run.daemon.pid}/mountinfo").read_text(encoding="utf-8")
        return [ln for ln in text.splitlines() if ln.split()[4] == str(directory)]
    return []


def new_log(daemon: Daemon, mark: int) -> list[str]:
    return [ln for ln in daemon.log()[mark:].splitlines() if ln.strip()]


def reported_unmet(run: CellRun) -> list[str]:
    """Where the daemon's snapshot says each data address is, against the kernel."""
    try:
        rows = run.daemon.snapshot()["addresses"]
    except IpmpError as err:
        return [f"daemon: {err.message}"]
    reported = {str(r["address"]): str(r["logical"]).partition(":")[0] for r in rows}
    where = run.where()
    return [
        f"{a}: the daemon reports it on {reported.get(a)}, the kernel has it on {where.get(a)}"
        for a in run.expected.data
        if where.get(a, []) != [reported.get(a)]
    ]


def saved_placement(path: Path) -> tuple[dict[str, bool], dict[str, str]] | None:
    """``(NIC -> failed, data address -> NIC)`` as state.json records them, None if unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        failed = {str(n["name"]): bool(n["failed"]) for n in data["nics"]}
        placed = {
            str(li["address"]): str(n["name"])
            for n in data["nics"]
            for instances in n["instances"].values()
            for li in instances
            if li.get("address")
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return failed, placed


def refused_unchanged(run: CellRun, op: str, **args: Any) -> None:
    """Ask for ``op`` as root: it must be refused with one line and change nothing."""
    where_before, states_before = run.where(), run.states()
    try:
        answer = run.daemon.client().request(op, **args)
    except IpmpError as err:
        message = err.message
        run.cell.details[f"{op}_refusal"] = message
        if "internal error" in message or "\n" in message:
            run.fail(f"{op}: refused as {message!r}, expected one line naming the cause")
    else:
        run.fail(f"{op}: accepted ({answer}) although the change cannot be saved")
    time.sleep(0.2)  # a change carried out after the reply would show by now
    if run.where() != where_before:
        run.fail(f"{op}: the kernel changed: {where_before} -> {run.where()}")
    if run.states() != states_before:
        run.fail(f"{op}: the daemon's states changed: {states_before} -> {run.states()}")


def state_write_fault(
    run: CellRun, block: Callable[[], None], unblock: Callable[[], None], why: str
) -> None:
    """state_ro and disk_full: the state cannot be written while eth0's cable is pulled."""
    # A fresh daemon (it adopts the saved state): earlier cells' cable pulls on a
    # reused lab would otherwise count as link flaps and disable failback.
    restart_daemon(run)
    lab, daemon = run.lab, run.daemon
    path = state_path(lab.root)
    mark = len(daemon.log())
    run.watch_not_failed = True
    blocked = False
    try:
        block()
        blocked = True
        run.cell.details["daemon_mounts"] = daemon_mounts(run, state_dir(lab))
        run.mark("inject")
        # The failover is the first write that fails: its failure must be logged.
        lab.set_cable("eth0", False)
        start = time.monotonic()
        if run.poll("reaction", run.reaction_unmet, REACT_S):
            run.mark("reaction", start)
        run.poll("the daemon reports what the kernel has", lambda: reported_unmet(run), INVARIANT_S)
        run.during()

        def logged() -> list[str]:
            lines = [ln for ln in new_log(daemon, mark) if "state.json" in ln and why in ln]
            return [] if lines else [f"no log line names state.json and {why!r}"]

        # The state is written ahead of kernel changes: a failure that moves
        # nothing (a one-NIC group) writes nothing, so there is no failure to log.
        moves = any(on != run.expected.data[a] for a, on in run.exp.during.items())
        if not moves:
            run.cell.details["write_failure_logged"] = "no write expected: nothing moved"
        elif run.poll("failed state write logged", logged, REACT_S):
            lines = [ln for ln in new_log(daemon, mark) if "state.json" in ln and why in ln]
            run.cell.details["write_failure_logged"] = lines[:3]
        # An administrator's change now (eth0 failed: offline it) cannot be saved first.
        refused_unchanged(run, "offline", interface="eth0")
        run.cell.details["log_during_fault"] = new_log(daemon, mark)[:12]
        run.watch_not_failed = False
        unblock()
        blocked = False
        unblocked = time.monotonic()
        want_failed = run.exp.failed if moves else []

        def saved() -> list[str]:
            placement = saved_placement(path)
            if placement is None:
                return [f"{path.name} unreadable"]
            failed, placed = placement
            unmet = [f"saved {m} failed={failed.get(m)}" for m in want_failed if not failed.get(m)]
            unmet += [
                f"saved {a} on {placed.get(a)}, the kernel has it on {on}"
                for a, on in run.exp.during.items()
                if placed.get(a) != on
            ]
            return unmet

        if run.poll("state saved again once writable (no new event)", saved, RETRY_S):
            run.mark("saved_again", unblocked)
    finally:
        if blocked:
            unblock()
        holders = run.where()
        repaired_at = time.monotonic()
        lab.set_cable("eth0", True)
    run.recover(repaired_at, holders)


def fault_state_ro(run: CellRun) -> None:
    directory = str(state_dir(run.lab))

    def block() -> None:
        done = in_daemon_mounts(run, ["mount", "--bind", "-o", "ro", directory, directory])
        if done.returncode != 0:
            raise RuntimeError(f"read-only bind mount: {done.stderr.strip()}")

    def unblock() -> None:
        done = in_daemon_mounts(run, ["umount", directory])
        if done.returncode != 0:
            raise RuntimeError(f"umount of the read-only bind mount: {done.stderr.strip()}")

    state_write_fault(run, block, unblock, os.strerror(errno.EROFS))


def fault_disk_full(run: CellRun) -> None:
    directory = state_dir(run.lab)

    def block() -> None:
        # The directory as the daemon sees it (its pid is known once the cell restarted it).
        seen = Path(f"/proc/{run.daemon.pid}/root") / directory.relative_to("/")
        options = f"size={FULL_KIB}k,mode=0755"
        done = in_daemon_mounts(
            run, ["mount", "-t", "tmpfs", "-o", options, "ipmp-full", str(directory)]
        )
        if done.returncode != 0:
            raise RuntimeError(f"tmpfs mount: {done.stderr.strip()}")
        # The state file as it was, then a file filling every remaining block.
        with contextlib.suppress(OSError):
            (seen / "state.json").write_bytes(state_path(run.lab.root).read_bytes())
        with open(seen / "fill", "wb", buffering=0) as fill, contextlib.suppress(OSError):
            while True:
                fill.write(b"\0" * 4096)
        run.cell.details["tmpfs_left_bytes"] = os.statvfs(seen).f_bavail * os.statvfs(seen).f_frsize

    def unblock() -> None:
        done = in_daemon_mounts(run, ["umount", str(directory)])
        if done.returncode != 0:
            # A descriptor the daemon keeps open there: a finding; still undo the fault.
            run.fail(f"umount of the full tmpfs: {done.stderr.strip()}")
            in_daemon_mounts(run, ["umount", "-l", str(directory)])

    state_write_fault(run, block, unblock, os.strerror(errno.ENOSPC))


def stop_daemon(run: CellRun) -> None:
    """SIGTERM in.mpathd and wait until it is gone."""
    pid = run.daemon.pid
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + START_S
    while any(p.alive and p.record.pid == pid for p in run.lab.processes()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"in.mpathd (pid {pid}) still runs {START_S:g} s after SIGTERM")
        time.sleep(0.02)


def restart_daemon(run: CellRun, extra_args: tuple[str, ...] = ()) -> None:
    """Stop in.mpathd and start it again on the same lab (it adopts its saved state)."""
    stop_daemon(run)
    run.bench.daemon = Daemon(run.lab).start(START_S, extra_args=extra_args)
    wait_for(lambda: not run.bench.baseline_problems(), SETTLE_S, "settled after the restart")


def ipmpstat_answers(lab: Lab) -> str | None:
    """None when root's ``ipmpstat -g`` answers (exit 0) within 10 s, else why not."""
    argv = ["env", f"IPMP_ROOT={lab.root}", sys.executable, "-m", "ipmp.cli.ipmpstat", "-g"]
    try:
        done = lab.run(argv, timeout=10)
    except subprocess.TimeoutExpired:
        return "ipmpstat -g did not answer within 10 s"
    if done.returncode != 0:
        return (
            f"ipmpstat -g: status {done.returncode}: {(done.stderr or done.stdout).strip()[:200]}"
        )
    return None


@contextlib.contextmanager
def traversable(path: Path) -> Iterator[None]:
    """Let others traverse every directory down to ``path`` (a 0700 temporary dir above it)."""
    changed: list[tuple[Path, int]] = []
    try:
        for directory in [path, *path.parents]:
            mode = directory.stat().st_mode & 0o7777
            if not mode & 0o001:
                os.chmod(directory, mode | 0o001)
                changed.append((directory, mode))
        yield
    finally:
        for directory, mode in changed:
            os.chmod(directory, mode)


def fault_fd_exhaustion(run: CellRun) -> None:
    lab = run.lab
    restart_daemon(run, ("--metrics", f"127.0.0.1:{METRICS_PORT}"))
    pid = run.daemon.pid
    # What systemd gives a service by default; the lab's shell gives 20 000.
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (DAEMON_NOFILE, DAEMON_NOFILE))
    argv = [sys.executable, str(CONN_HOG), "--tcp", f"127.0.0.1:{METRICS_PORT}"]
    argv += ["--tcp-count", str(HOG_TCP), "--unix", str(socket_path(lab.root))]
    argv += ["--unix-count", str(HOG_UNIX)]
    with traversable(state_dir(lab)):
        hog = subprocess.Popen(
            in_netns(lab.host_ns, argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            fd_exhaustion_with(run, hog, pid)
        finally:
            hog.kill()
            hog.wait(timeout=10)


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def fd_exhaustion_with(run: CellRun, hog: subprocess.Popen[str], pid: int) -> None:
    assert hog.stdout is not None
    readable, _, _ = select.select([hog.stdout], [], [], HOG_S)
    line = hog.stdout.readline() if readable else ""
    if not line:
        err = hog.stderr.read() if hog.poll() is not None and hog.stderr else ""
        raise RuntimeError(f"conn_hog.py reported nothing within {HOG_S:g} s: {err.strip()[:300]}")
    report = json.loads(line)
    run.cell.details["hog"] = report
    if report.get("uid") != 65534:
        run.fail(f"conn_hog.py ran as uid {report.get('uid')}, not 65534")
    run.cell.details["daemon_fds_held"] = open_fds(pid)
    why = ipmpstat_answers(run.lab)
    if why:
        run.fail(f"while nobody holds its descriptors: {why}")
    run.mark("inject")
    run.watch_not_failed = True
    run.lab.set_cable("eth0", False)
    start = time.monotonic()
    if run.poll("reaction", run.reaction_unmet, REACT_S):
        run.mark("reaction", start)
    run.during()
    why = ipmpstat_answers(run.lab)
    if why:
        run.fail(f"after the failover: {why}")
    run.cell.details["daemon_fds_after_failover"] = open_fds(pid)
    run.watch_not_failed = False
    holders = run.where()
    repaired_at = time.monotonic()
    run.lab.set_cable("eth0", True)
    run.recover(repaired_at, holders)
    if not any(p.alive and p.record.pid == pid for p in run.lab.processes()):
        run.fail(f"in.mpathd (pid {pid}) died")


def write_corrupt(kind: str, path: Path, saved: bytes, boot: str) -> None:
    """Put a bad state file of ``kind`` at ``path`` (``saved``: the daemon's last state)."""
    if kind == "nonutf8":
        path.write_bytes(saved[:-1] + b',"note":"caf\xe9"}')
    elif kind == "deep":
        path.write_bytes(
            b'{"boot_id":"' + boot.encode() + b'","x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        )
    elif kind == "dir":
        path.mkdir()
        (path / "state.json").write_bytes(saved)
    elif kind == "fifo":
        os.mkfifo(path, 0o600)
    elif kind == "shape":
        path.write_text(
            json.dumps({"boot_id": boot, "version": 1, "nics": {"eth0": []}, "files": []})
        )
    elif kind == "othernics":
        # The host's own state with every NIC and address renamed: a state of another host.
        text = saved.decode("utf-8")
        text = re.sub(r'"eth(\d+)"', r'"ipmpq\1"', text)
        text = text.replace('"192.0.2.', '"198.51.100.').replace('"2001:db8::', '"2001:db8:99::')
        path.write_text(text, encoding="utf-8")
    else:
        raise ValueError(f"unknown kind of bad state {kind}")


def kernel_gaps(run: CellRun, stop: threading.Event, gaps: list[str]) -> None:
    """Until ``stop``: every configured address seen missing from the kernel, and for how long."""
    wanted = {**run.expected.data, **run.expected.test}
    missing: dict[str, float] = {}
    while not stop.is_set():
        try:
            where = run.where()
        except (OSError, ValueError, subprocess.SubprocessError):
            continue
        now = time.monotonic()
        for address in sorted(wanted):
            if not where.get(address):
                missing.setdefault(address, now)
            elif address in missing:
                began = missing.pop(address)
                gaps.append(
                    f"{address} missing from the kernel at +{began - run.t0:.2f} s "
                    f"for {(now - began) * 1000:.0f} ms"
                )
        time.sleep(0.03)
    gaps += [f"{a} missing from the kernel since +{t - run.t0:.2f} s" for a, t in missing.items()]


def fault_state_corrupt(run: CellRun, kind: str) -> None:
    lab = run.lab
    path = state_path(lab.root)
    stop_daemon(run)
    run.mark("stopped")
    saved = path.read_bytes()
    boot = boot_id()
    for old in state_dir(lab).iterdir():  # earlier cells' moved-aside files: start clean
        if old.name.startswith("state.json."):
            shutil.rmtree(old) if old.is_dir() and not old.is_symlink() else old.unlink()
    path.unlink()
    write_corrupt(kind, path, saved, boot)
    bad = path.lstat()
    mark = len(run.daemon.log())
    stop = threading.Event()
    gaps: list[str] = []
    watcher = threading.Thread(target=kernel_gaps, args=(run, stop, gaps), daemon=True)
    watcher.start()
    run.mark("inject")
    started = time.monotonic()
    try:
        try:
            run.bench.daemon = Daemon(lab).start(START_S)
        except (IpmpError, TimeoutError) as err:
            run.fail(
                f"in.mpathd did not start with a bad state file ({CORRUPT_KINDS[kind]}): {err}"
            )
            run.cell.details["log_tail"] = run.daemon.log()[-3000:].splitlines()[-15:]
            run.bench.close()  # a hung daemon: the next cell gets a fresh lab
            return
        run.mark("reaction", started)
        run.watch_not_failed = True
        run.recover(started, {})
    finally:
        stop.set()
        watcher.join(timeout=10)
    if gaps:
        run.fail(f"addresses removed while starting: {'; '.join(gaps[:4])}")
    same = (bad.st_dev, bad.st_ino)
    aside = [e for e in state_dir(lab).iterdir() if (e.lstat().st_dev, e.lstat().st_ino) == same]
    names = [e.name for e in aside if e.name != path.name]
    run.cell.details["moved_aside_to"] = names
    lines = new_log(run.daemon, mark)
    if not names:
        run.fail(f"the bad {path.name} was not moved aside (still {'there' if aside else 'gone'})")
    else:
        naming = [ln for ln in lines if names[0] in ln]
        run.cell.details["aside_log_lines"] = naming[:4]
        if len(naming) != 1 or "state.json" not in naming[0]:
            run.fail(f"expected one log line naming state.json and {names[0]}, found {len(naming)}")
    placement = saved_placement(path)
    if placement is None or not path.is_file():
        run.fail(f"{path.name} is not a readable state file after the start")
    elif set(placement[0]) - set(run.expected.groups) - set(lab.nics):
        run.fail(f"the new {path.name} still names other NICs: {sorted(placement[0])}")
    run.cell.details["log_after_start"] = lines[:12]


def corrupt_runner(kind: str) -> Callable[[CellRun], None]:
    def runner(run: CellRun) -> None:
        fault_state_corrupt(run, kind)

    return runner


def kernel_view(lab: Lab) -> dict[str, Any]:
    """Addresses, policy rules, routes (every table) and nftables rules of the host namespace."""
    view: dict[str, Any] = {}
    where, _links = host_addresses(lab)
    view["addresses"] = {a: sorted(on) for a, on in where.items()}
    for name, argv in {
        "rules4": ["ip", "-4", "rule"],
        "rules6": ["ip", "-6", "rule"],
        "routes4": ["ip", "-4", "route", "show", "table", "all"],
        "routes6": ["ip", "-6", "route", "show", "table", "all"],
        "nft": ["nft", "list", "ruleset"],
    }.items():
        view[name] = lab.run(argv, timeout=10).stdout
    return view


def daemon_view(daemon: Daemon) -> dict[str, Any]:
    snap = daemon.snapshot()
    return {k: snap[k] for k in ("groups", "interfaces", "addresses")}


def fault_second_daemon(run: CellRun) -> None:
    lab, daemon = run.lab, run.daemon
    path = state_path(lab.root)
    mark = len(daemon.log())
    kernel_before, daemon_before = kernel_view(lab), daemon_view(daemon)
    state_before = path.read_bytes()
    run.watch_not_failed = True
    run.mark("inject")
    started = time.monotonic()
    argv = [sys.executable, "-m", "ipmp.daemon.main", "-d", "--root", str(lab.root), "--linux"]
    second = subprocess.Popen(
        in_netns(lab.host_ns, argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        out, _ = second.communicate(timeout=START_S)
    except subprocess.TimeoutExpired:
        second.kill()
        out, _ = second.communicate()
        run.fail(f"the second in.mpathd still ran after {START_S:g} s")
    run.mark("reaction", started)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    run.cell.details["second_exit"] = second.returncode
    run.cell.details["second_output"] = lines[:5]
    if second.returncode == 0:
        run.fail("the second in.mpathd exited 0")
    if len(lines) != 1 or str(daemon.pid) not in lines[0]:
        run.fail(
            f"expected one line naming the first in.mpathd (pid {daemon.pid}), got {lines[:3]}"
        )
    run.during()
    kernel_after, daemon_after = kernel_view(lab), daemon_view(daemon)
    for key in kernel_before:
        if kernel_before[key] != kernel_after[key]:
            run.fail(
                f"the kernel's {key} changed: {kernel_before[key]!r:.200} -> "
                f"{kernel_after[key]!r:.200}"
            )
    if daemon_before != daemon_after:
        run.fail("the first daemon's groups, interfaces or addresses changed")
    if path.read_bytes() != state_before:
        run.fail(f"{path.name} changed")
    if not any(p.alive and p.record.pid == daemon.pid for p in lab.processes()):
        run.fail(f"the first in.mpathd (pid {daemon.pid}) is gone")
    errors = [ln for ln in new_log(daemon, mark) if DAEMON_ERROR.search(ln)]
    if errors:
        run.fail(f"the first daemon logged failures: {errors[:2]}")
    run.watch_not_failed = False
    run.recover(started, {})


FAULT_RUNNERS: dict[str, Callable[[CellRun], None]] = {
    "carrier": fault_carrier,
    "drop": fault_drop,
    "loss20": fault_loss20,
    "target1": fault_target1,
    "targets_all": fault_targets_all,
    "nics_all": fault_nics_all,
    "nic_delete": fault_nic_delete,
    "nic_recreate": fault_nic_recreate,
    "sigkill": fault_sigkill,
    "sighup_broken": fault_sighup_broken,
    "state_ro": fault_state_ro,
    "disk_full": fault_disk_full,
    "fd_exhaustion": fault_fd_exhaustion,
    **{f"state_corrupt_{kind}": corrupt_runner(kind) for kind in CORRUPT_KINDS},
    "second_daemon": fault_second_daemon,
}


def run_cell(bench: Bench, fault: str) -> Cell:
    cell = Cell(fault, bench.config)
    began = time.monotonic()
    log_mark = 0
    try:
        cell.lab = bench.ensure()
        assert bench.daemon is not None
        log_mark = len(bench.daemon.log())
        if cell.lab == "fresh":
            cell.timings_ms["lab_build"] = round(bench.build_s * 1000, 1)
        assert bench.expected is not None
        exp = expect(fault, bench.config, bench.expected)
        cell.expect = asdict(exp)
        run = CellRun(bench, cell, exp)
        FAULT_RUNNERS[fault](run)
    except Exception as exc:  # a crashed cell is a failed cell, with its reason
        cell.violations.append(f"{type(exc).__name__}: {exc}")
        bench.close()  # never reuse a lab in an unknown state
    cell.result = "pass" if not cell.violations else "fail"
    cell.timings_ms["cell"] = round((time.monotonic() - began) * 1000, 1)
    if bench.daemon is not None:
        with contextlib.suppress(OSError):
            log = bench.daemon.log()
            if cell.violations:
                cell.details["log_tail"] = log.splitlines()[-15:]
            errors = [
                ln
                for ln in log[log_mark:].splitlines()
                if DAEMON_ERROR.search(ln) and not any(n in ln for n in NOT_ERRORS)
            ]
            if errors:
                cell.details["daemon_errors"] = errors[:10]
    return cell


# ------------------------------------------------------------------------ table


def table(cells: list[Cell], faults: list[str], configs: list[str]) -> str:
    """Faults as rows, configurations as columns: pass / FAIL / blank (not run)."""
    by = {(c.fault, c.config): c for c in cells}
    width0 = max(len(FAULTS[f]) for f in faults)
    widths = [max(len(c), 4) for c in configs]
    lines = [
        " | ".join([" " * width0, *(c.ljust(w) for c, w in zip(configs, widths, strict=True))]),
        "-+-".join(["-" * width0, *("-" * w for w in widths)]),
    ]
    for fault in faults:
        row = [FAULTS[fault].ljust(width0)]
        for config, w in zip(configs, widths, strict=True):
            cell = by.get((fault, config))
            text = "" if cell is None else ("pass" if cell.result == "pass" else "FAIL")
            if cell is not None and cell.result == "pass" and cell.transient:
                text = "pass*"
            row.append(text.ljust(w))
        lines.append(" | ".join(row).rstrip())
    if any(c.transient and c.result == "pass" for c in cells):
        lines.append(
            f"pass*: the invariant was violated at first and held within {INVARIANT_S:g} s "
            "(see the cell's transient list)"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def benches() -> Iterator[dict[str, Bench]]:
    made: dict[str, Bench] = {}
    try:
        yield made
    finally:
        for bench in made.values():
            bench.close()


def parse_cells(text: str) -> list[tuple[str, str]]:
    cells: list[tuple[str, str]] = []
    for item in text.split(","):
        fault, _, config = item.strip().partition(":")
        if fault not in FAULTS or config not in CONFIGS:
            raise SystemExit(
                f"--cells: {item!r}: expected FAULT:CONFIG with FAULT in "
                f"{', '.join(FAULTS)} and CONFIG in {', '.join(CONFIGS)}"
            )
        cells.append((fault, config))
    return cells


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--smoke", action="store_true", help="10 cells covering every configuration"
    )
    parser.add_argument(
        "--cells", help=f"FAULT:CONFIG,... (default: all {len(FAULTS) * len(CONFIGS)})"
    )
    args = parser.parse_args()
    require_root()
    if args.cells:
        chosen = parse_cells(args.cells)
    elif args.smoke:
        chosen = list(SMOKE_CELLS)
    else:
        chosen = [(f, c) for c in CONFIGS for f in FAULTS]
    began = time.monotonic()
    cells: list[Cell] = []
    with benches() as made:
        for config in CONFIGS:
            for fault in FAULTS:
                if (fault, config) not in chosen:
                    continue
                bench = made.setdefault(config, Bench(config))
                cell = run_cell(bench, fault)
                cells.append(cell)
                print(
                    f"{FAULTS[fault]:>20} x {config:<15} {cell.result:4} "
                    f"{cell.timings_ms.get('cell', 0) / 1000:5.1f} s {cell.lab:6} "
                    f"{'; '.join(cell.violations)[:300]}",
                    file=sys.stderr,
                    flush=True,
                )
            if config in made:
                made.pop(config).close()
    faults = [f for f in FAULTS if any(c.fault == f for c in cells)]
    configs = [c for c in CONFIGS if any(x.config == c for x in cells)]
    text = table(cells, faults, configs)
    print(text, file=sys.stderr)
    result = {
        "benchmark": "fault_matrix",
        "mode": "smoke" if args.smoke else ("cells" if args.cells else "full"),
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "fdt_ms": FDT_MS,
        "lab_reuse": "one lab per configuration, reused while it returns to its baseline; "
        "a fresh lab otherwise (per cell: lab = fresh / reused)",
        "table": text,
        "faults": {f: FAULTS[f] for f in faults},
        "configs": configs,
        "cells": [asdict(c) for c in cells],
        "passed": sum(c.result == "pass" for c in cells),
        "failed": sum(c.result == "fail" for c in cells),
        "duration_s": round(time.monotonic() - began, 1),
    }
    if result["mode"] == "cells":
        print(json.dumps(result, sort_keys=True))  # a hand-picked subset: not a result file
    else:
        write_result("fault_matrix", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
