"""Soak: random faults for a given time, the invariant after each, the daemon's RSS over time.

One lab from lab-active-active with FAILURE_DETECTION_TIME=1000, made
dual-stack: one IPv6 global data address per NIC (``addif 2001:db8::19/64 up``
in hostname6.eth0, ``2001:db8::20`` on eth1) besides the IPv4 ones; router1,
the pinger of the invariant, gets 2001:db8::1/64 in its own namespace.  One
in.mpathd runs for the whole soak.

Until ``--duration`` seconds have passed (full: 3600 by hand; ``--smoke``: 60),
the script draws (seeded ``random.Random``, ``--seed``) one fault at a time
from those of the fault matrix that make sense to repeat, with its subject:

* ``carrier``: a NIC's cable pulled, then plugged back;
* ``drop``: a NIC's switch port silently drops every frame, then forwards;
* ``loss20``: 20 % loss at a NIC's switch port, then none;
* ``target``: a neighbour (router1, router2 or host100) goes silent, then answers;
* ``nic_delete``: a NIC's veth removed, then created again (same name and MAC);
* ``sighup``: SIGHUP (the unchanged /etc/default/mpathd read again); no hold.

Each fault is held for a time drawn from ``[0.2, 5] x FDT`` (some end before
the daemon can detect them, most after), then repaired.  The script then
waits, with deadlines, until the daemon has settled (every member ``ok`` and
probing in both families, and two more probes acked per instance since the
repair) and for the invariant (benchmarks/invariant.py,
``wait_invariant``, 5 x FDT).  After each check it samples the daemon's RSS
(VmRSS in /proc/PID/status), checks that the daemon is still the process it
started (a dead daemon is counted, its log kept, and it is started again) and
searches the log written since the last check for tracebacks and internal
errors.

The JSON gives the faults injected (per kind), the checks and violations
(with details), RSS at the start (after the first settle), at the end, its
maximum, growth in MB and %, a least-squares slope in MB/h over the second
half of the samples, daemon restarts and log error lines.

``python benchmarks/soak.py [--smoke] [--duration S] [--seed S]``
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from common import Daemon, example_text, lab_from, machine, require_root, summary, write_result
from crash_safety import daemon_cmdline_problem, log_errors, proc_alive, wait_until
from invariant import Expected, acks_received, expected_from, settled, wait_invariant

from ipmp.core.errors import IpmpError
from ipmp.lab.lab import Lab

FDT_MS = 1000
FDT = FDT_MS / 1000
HOLD = (0.2 * FDT, 5 * FDT)
SETTLE_S = 10 * FDT + 15  # deadline for the daemon to settle after a repair
INVARIANT_S = 5 * FDT  # then for the invariant to hold
PINGER = "router1"
PINGER6 = "2001:db8::1/64"
V6 = {"eth0": "2001:db8::19", "eth1": "2001:db8::20"}
NICS = ("eth0", "eth1")
NEIGHBOURS = ("router1", "router2", "host100")
KINDS = ("carrier", "drop", "loss20", "target", "nic_delete", "sighup")


def soak_topology() -> str:
    """lab-active-active at FDT 1 s with one IPv6 global data address per NIC."""
    text = example_text("lab-active-active", FAILURE_DETECTION_TIME=str(FDT_MS))
    block = "hostname6 = '''\n-failover group test up\n"
    if text.count(block) != len(NICS):
        raise SystemExit("lab-active-active.toml changed: cannot add the IPv6 data addresses")
    head, *rest = text.split(block)
    for nic, part in zip(NICS, rest, strict=True):  # the [[nic]]s in file order
        head += block + f"addif {V6[nic]}/64 up\n" + part
    return head


def rss_kb(pid: int) -> int | None:
    """VmRSS of ``pid`` in kB, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def slope_mb_per_h(samples: list[tuple[float, int]]) -> float | None:
    """Least-squares slope of RSS (MB) over time (h) for the second half of the samples."""
    half = samples[len(samples) // 2 :]
    if len(half) < 3:
        return None
    xs = [t / 3600 for t, _ in half]
    ys = [kb / 1024 for _, kb in half]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    if den == 0:
        return None
    return round(sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den, 3)


def instances() -> list[str]:
    """The probing instances of the lab, as the daemon's ``stats`` names them."""
    return [f"{family} {nic}" for nic in NICS for family in ("inet", "inet6")]


def settled_since(daemon: Daemon, base: dict[str, int], acks: int = 2) -> bool:
    """Every member ``ok`` and probing, and every instance acked ``acks`` probes since ``base``.

    ``base`` is ``acks_received`` at the repair; an instance whose counter went
    down (its NIC was re-created) counts from zero.
    """
    try:
        if not (daemon.probing_ok("inet") and daemon.probing_ok("inet6")):
            return False
        counts = acks_received(daemon)
    except IpmpError:
        return False
    for key in instances():
        now, before = counts.get(key, 0), base.get(key, 0)
        if not (now >= before + acks or (now < before and now >= acks)):
            return False
    return True


class Soak:
    """The lab, its daemon and the bookkeeping of one soak."""

    def __init__(self, lab: Lab, rng: random.Random) -> None:
        self.lab = lab
        self.rng = rng
        self.expected: Expected = expected_from(lab)
        self.daemon = Daemon(lab)
        self.log_offset = 0
        self.restarts: list[dict[str, Any]] = []

    def start_daemon(self) -> None:
        self.daemon = Daemon(self.lab).start()
        problem = daemon_cmdline_problem(self.lab, self.daemon.pid)
        if problem is not None:
            raise RuntimeError(problem)

    def new_log(self) -> str:
        path = self.lab.run_dir / "in.mpathd.log"
        data = path.read_bytes()
        text = data[self.log_offset :].decode(errors="replace")
        self.log_offset = len(data)
        return text

    def fault(self, kind: str) -> tuple[str, Callable[[], None], Callable[[], None]]:
        """``(subject, inject, repair)`` for ``kind``, the subject drawn at random."""
        lab = self.lab
        if kind == "target":
            who = self.rng.choice(NEIGHBOURS)
            return who, lambda: lab.set_target(who, False), lambda: lab.set_target(who, True)
        if kind == "sighup":
            pid = self.daemon.pid
            return "in.mpathd", lambda: os.kill(pid, signal.SIGHUP), lambda: None
        nic = self.rng.choice(NICS)
        if kind == "carrier":
            return nic, lambda: lab.set_cable(nic, False), lambda: lab.set_cable(nic, True)
        if kind == "drop":
            return nic, lambda: lab.set_drop(nic, True), lambda: lab.set_drop(nic, False)
        if kind == "loss20":
            return nic, lambda: lab.set_loss(nic, 20.0), lambda: lab.set_loss(nic, 0.0)
        if kind == "nic_delete":
            return nic, lambda: lab.delete_nic(nic), lambda: lab.create_nic(nic)
        raise ValueError(kind)

    def one(self, number: int, elapsed: float) -> dict[str, Any]:
        """Inject one random fault, hold it, repair it, wait for settle and the invariant."""
        kind = self.rng.choice(KINDS)
        hold = 0.0 if kind == "sighup" else self.rng.uniform(*HOLD)
        subject, inject, repair = self.fault(kind)
        record: dict[str, Any] = {
            "fault": number,
            "at_s": round(elapsed, 1),
            "kind": kind,
            "subject": subject,
            "hold_s": round(hold, 3),
        }
        violations: list[str] = []
        pid = self.daemon.pid
        inject()
        time.sleep(hold)
        try:
            record["states_before_repair"] = self.daemon.states()
        except IpmpError as err:
            record["states_before_repair"] = f"no answer: {err.message}"
        repair()
        repaired = time.monotonic()
        try:
            base = acks_received(self.daemon)
        except IpmpError:
            base = {}
        if kind == "sighup":
            seen = wait_until(lambda: "SIGHUP" in self.lab_log_since(), SETTLE_S)
            if seen is None:
                violations.append("no SIGHUP line in the log after the signal")
        took = wait_until(lambda: settled_since(self.daemon, base), SETTLE_S, 0.05)
        if took is None:
            try:
                states = str(self.daemon.states())
            except IpmpError as err:
                states = f"no answer: {err.message}"
            violations.append(f"not settled within {SETTLE_S:g} s of the repair: {states}")
        else:
            record["settle_s"] = round(time.monotonic() - repaired, 3)
        found, waited = wait_invariant(
            self.lab, self.daemon, self.expected, INVARIANT_S, pinger=PINGER
        )
        record["invariant_wait_s"] = round(waited, 3)
        violations += found
        if not proc_alive(pid) or self.daemon.pid != pid:
            violations.append(f"in.mpathd (pid {pid}) died")
        else:
            record["rss_kb"] = rss_kb(pid)
        errors = log_errors(self.new_log())
        if errors:
            record["log_errors"] = errors[:10]
            violations += [f"log: {line}" for line in errors[:5]]
        if violations:
            record["violations"] = violations
            record["log_tail"] = self.daemon.log().splitlines()[-30:]
        return record

    def lab_log_since(self) -> str:
        path = self.lab.run_dir / "in.mpathd.log"
        return path.read_bytes()[self.log_offset :].decode(errors="replace")

    def revive(self, number: int) -> None:
        """The daemon died: keep its log tail, forget it, start it again."""
        self.restarts.append(
            {"after_fault": number, "log_tail": self.daemon.log().splitlines()[-30:]}
        )
        self.lab.stop_processes()
        self.start_daemon()
        self.new_log()
        wait_until(lambda: settled(self.daemon), 60.0, 0.1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="60 s")
    parser.add_argument("--duration", type=float, default=None, help="seconds (full: 3600)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault sequence")
    args = parser.parse_args()
    require_root()
    duration = args.duration if args.duration is not None else (60.0 if args.smoke else 3600.0)
    rng = random.Random(args.seed)
    began = time.monotonic()
    records: list[dict[str, Any]] = []
    samples: list[tuple[float, int]] = []
    with lab_from(soak_topology()) as lab:
        pinger = lab.neighbour_ns(PINGER)
        add6 = ["ip", "-n", pinger, "addr", "add", PINGER6, "dev", "eth0", "nodad"]
        subprocess.run(add6, check=True, capture_output=True)
        soak = Soak(lab, rng)
        soak.start_daemon()
        if wait_until(lambda: settled(soak.daemon), 60.0, 0.1) is None:
            raise SystemExit(f"the daemon did not settle: {soak.daemon.states()}")
        first, _ = wait_invariant(lab, soak.daemon, soak.expected, INVARIANT_S, pinger=PINGER)
        if first:
            raise SystemExit(f"the fresh lab does not hold the invariant: {first[:5]}")
        soak.new_log()
        start_pid = soak.daemon.pid
        rss0 = rss_kb(start_pid)
        if rss0 is None:
            raise SystemExit("the daemon is gone before the soak started")
        t0 = time.monotonic()
        samples.append((0.0, rss0))
        number = 0
        while time.monotonic() - t0 < duration:
            number += 1
            record = soak.one(number, time.monotonic() - t0)
            records.append(record)
            if record.get("rss_kb") is not None:
                samples.append((round(time.monotonic() - t0, 1), int(record["rss_kb"])))
            print(
                f"{record['at_s']:7.1f} s #{number:4} {record['kind']:10} {record['subject']:9} "
                f"hold {record['hold_s']:5.2f} s settle {record.get('settle_s', '-')} s "
                f"rss {record.get('rss_kb')} kB "
                f"{'OK' if not record.get('violations') else 'VIOLATION: '}"
                f"{'; '.join(record.get('violations', []))[:300]}",
                file=sys.stderr,
                flush=True,
            )
            if any("died" in v for v in record.get("violations", [])):
                soak.revive(number)
        soak_s = time.monotonic() - t0
    rss = [kb for _, kb in samples]
    bad = [r for r in records if r.get("violations")]
    kinds = {k: sum(r["kind"] == k for r in records) for k in KINDS}

    def failed_at_repair(r: dict[str, Any]) -> bool:
        states = r.get("states_before_repair")
        return isinstance(states, dict) and any(v != "ok" for v in states.values())

    detected = {k: sum(r["kind"] == k and failed_at_repair(r) for r in records) for k in KINDS}
    compact = [{k: v for k, v in r.items() if k != "log_tail"} for r in records]
    result = {
        "benchmark": "soak",
        "mode": "smoke" if args.smoke else "full",
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "seed": args.seed,
        "fdt_ms": FDT_MS,
        "requested_s": duration,
        "soak_s": round(soak_s, 1),
        "faults": len(records),
        "faults_by_kind": kinds,
        "member_not_ok_at_repair_by_kind": detected,
        "checks": len(records),
        "violations": len(bad),
        "violation_details": bad,
        "daemon_restarts": len(soak.restarts),
        "restart_details": soak.restarts,
        "log_error_lines": sum(len(r.get("log_errors", [])) for r in records),
        "rss": {
            "start_mb": round(rss[0] / 1024, 2),
            "end_mb": round(rss[-1] / 1024, 2),
            "max_mb": round(max(rss) / 1024, 2),
            "growth_mb": round((rss[-1] - rss[0]) / 1024, 2),
            "growth_pct": round((rss[-1] - rss[0]) / rss[0] * 100, 1),
            "slope_mb_per_h_second_half": slope_mb_per_h(samples),
            "samples": len(samples),
        },
        "rss_samples": samples,
        "settle_s": summary([r["settle_s"] for r in records if "settle_s" in r]),
        "invariant_wait_s": summary([r["invariant_wait_s"] for r in records]),
        "fault_details": compact,
        "duration_s": round(time.monotonic() - began, 1),
    }
    write_result("soak", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
