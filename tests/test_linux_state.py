"""Restarts and reboots, on real interfaces (root only).

Same lab and helpers as tests/test_linux_real.py.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from ipmp.lab.lab import Lab
from test_linux_real import make_lab, started, topology_text, wait_for

pytestmark = pytest.mark.root
__all__ = ["make_lab"]  # the fixture, used by name


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
