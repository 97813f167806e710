"""One instance per root, restarts and reboots, on real interfaces (root only).

Same lab and helpers as tests/test_linux_real.py.
"""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from ipmp.lab.lab import Lab
from test_linux_real import RealHost, make_lab, started, topology_text, wait_for

pytestmark = pytest.mark.root
__all__ = ["make_lab"]  # the fixture, used by name


def acks(host: RealHost) -> dict[str, int]:
    """Answered probes so far per instance (``inet eth0``), from the statistics."""
    out: dict[str, int] = {}
    for line in host.client().request("stats")["lines"]:
        if line.startswith("Probe stats on ("):
            instance = line.split("(", 1)[1].split(")", 1)[0]
            out[instance] = int(line.split("acks received ")[1].split(",")[0])
    return out


def ipmpstat_i(host: RealHost) -> dict[str, list[str]]:
    argv = ["env", f"IPMP_ROOT={host.lab.root}", sys.executable, "-m", "ipmp.cli.ipmpstat", "-i"]
    result = host.lab.run(argv)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    return {row[0]: row for row in rows}


def rules(host: RealHost) -> list[str]:
    return sorted(host.lab.run(["ip", "rule", "show"]).stdout.splitlines())


def test_a_second_daemon_on_the_same_root_changes_nothing(
    make_lab: Callable[[str], Lab],
) -> None:
    host = started(make_lab, topology_text("lab-active-active"))
    before, rules_before = sorted(host.kernel()), rules(host)
    offset = len(host.log())
    root = host.lab.root
    argv = [sys.executable, "-m", "ipmp.daemon.main", "-d", "--root", str(root), "--linux"]
    second = host.lab.run(argv, timeout=30)
    assert sorted(host.kernel()) == before and rules(host) == rules_before
    assert second.returncode == 1
    assert second.stderr == (
        f"in.mpathd: another in.mpathd (pid {host.pid}) is running on this root ({root})\n"
    )
    # A few probe intervals on, the first daemon has seen nothing go wrong.
    start = acks(host)
    assert set(start) == {"inet eth0", "inet eth1", "inet6 eth0", "inet6 eth1"}
    wait_for(
        lambda: all(n >= start[k] + 5 for k, n in acks(host).items()),
        30,
        "five more answered probes on every instance",
    )
    assert sorted(host.kernel()) == before and rules(host) == rules_before
    rows = ipmpstat_i(host)
    for nic in ("eth0", "eth1"):
        # INTERFACE ACTIVE GROUP FLAGS LINK PROBE STATE
        assert rows[nic][1:2] == ["yes"] and rows[nic][4:] == ["up", "ok", "ok"], rows
    # No failure, no move, no adoption.  (A probe that cannot leave is logged
    # as "SendProbe failed" in this lab also without a second daemon: not a
    # failure of the NIC.)
    log = host.log()[offset:]
    suspicious = [
        line
        for line in log.splitlines()
        if ("fail" in line.lower() or "adopted" in line or "moving" in line)
        and "failure detection time" not in line
        and "SendProbe failed" not in line
    ]
    assert not suspicious, suspicious


def edit(root: Path, name: str, old: str, new: str) -> None:
    path = root / "etc" / name
    text = path.read_text()
    assert old in text, (name, text)
    path.write_text(text.replace(old, new))


def test_restart_and_reboot_with_an_edited_hostname_file(
    make_lab: Callable[[str], Lab],
) -> None:
    host = started(make_lab, topology_text("lab-active-active"))
    root = host.lab.root
    host.client().request("ifconfig", argv=["eth1", "addif", "192.0.2.60/24", "up"])
    wait_for(lambda: host.holder("192.0.2.60") == "eth1", 5, "the runtime address on eth1")

    def held() -> Counter[str]:
        return Counter(address for _n, _f, address, _p in host.kernel())

    # A restart (run/ intact) after an edit of eth0's file: eth0 as the file
    # reads now, eth1 as the dead daemon left it.
    host.lab.stop_processes()
    edit(root, "hostname.eth0", "192.0.2.19 ", "192.0.2.29 ")
    offset = len(host.log())
    host.start()
    assert held()["192.0.2.19"] == 0
    assert host.holder("192.0.2.29") == "eth0" and host.holder("192.0.2.21") == "eth0"
    assert host.holder("192.0.2.60") == "eth1" and host.holder("192.0.2.20") == "eth1"
    log = host.log()[offset:]
    assert "restarting: adopting the saved state" in log
    assert "hostname.eth0 changed since the state was saved" in log
    wait_for(host.probing, 30, "probing again after the restart")
    wait_for(lambda: host.answers_ping("192.0.2.29"), 5, "192.0.2.29 answers")

    # A reboot: run/ is a tmpfs and the kernel starts empty; the hostname
    # files are the truth (the runtime address is gone with the boot).
    host.lab.stop_processes()
    edit(root, "hostname.eth0", "192.0.2.29 ", "192.0.2.39 ")
    shutil.rmtree(root / "run")
    for nic in ("eth0", "eth1"):
        for step in (["link", "set", nic, "down"], ["addr", "flush", "dev", nic]):
            assert host.lab.run(["ip", *step]).returncode == 0
        assert host.lab.run(["ip", "link", "set", nic, "up"]).returncode == 0
    offset = len(host.log())
    host.start()
    log = host.log()[offset:]
    assert "restarting" not in log and "changed since" not in log
    wait_for(host.probing, 30, "probing after the reboot")
    counts = held()
    assert counts["192.0.2.29"] == 0 and counts["192.0.2.60"] == 0 and counts["192.0.2.19"] == 0
    host.check_invariant({"192.0.2.39": "eth0", "192.0.2.20": "eth1"})
    wait_for(lambda: host.answers_ping("192.0.2.39"), 5, "192.0.2.39 answers")
