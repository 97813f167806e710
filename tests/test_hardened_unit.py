"""in.mpathd under the hardened unit's restrictions, applied by hand, fails over in a lab (root).

systemd-run needs systemd as PID 1, which CI lacks; tests/hardened_exec.py sets
up the same mount and capability restrictions with unshare, mount and setpriv,
taking the capabilities and paths from contrib/systemd/in.mpathd.service.
"""

from __future__ import annotations

import grp
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from daemontools import wait_for
from ipmp.lab.lab import DAEMON_NAME, Lab
from ipmp.sim.topology import write_etc
from test_linux_real import RealHost, make_lab, topology_text

pytestmark = pytest.mark.root
__all__ = ["make_lab"]  # the fixture, imported for the tests below

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "contrib" / "systemd" / "in.mpathd.service"
CAP_NET_ADMIN, CAP_NET_RAW = 12, 13
NOGROUP = 65534


def unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key, []).append(value)
    return settings


def start_hardened(lab: Lab) -> int:
    settings = unit_settings()
    # The restrictions hardened_exec.py reproduces must be the unit's.
    assert settings["ProtectSystem"] == ["strict"]
    assert settings["ProtectKernelTunables"] == ["yes"]
    assert settings["NoNewPrivileges"] == ["yes"]
    assert settings["RuntimeDirectory"] == ["ipmp"] and settings["StateDirectory"] == ["ipmp"]
    (caps,) = settings["CapabilityBoundingSet"]
    tunables = [p for p in settings["ReadWritePaths"] if p.startswith("/proc/sys/")]
    assert tunables == ["/proc/sys/net"]
    write_etc(lab.topology, lab.root)
    argv = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        sys.executable,
        str(Path(__file__).with_name("hardened_exec.py")),
        "--caps",
        ",".join(caps.split()),
        "--rw",
        str(lab.root / "run" / "ipmp"),
        "--rw",
        str(lab.root / "var" / "lib" / "ipmp"),
        *(f"--tunables-rw={path}" for path in tunables),
        "--",
        sys.executable,
        "-m",
        "ipmp.daemon.main",
        "-d",
        "--root",
        str(lab.root),
        "--linux",
        # An MPATHD_OPTIONS option: the daemon must start with it without CAP_CHOWN.
        "--group",
        grp.getgrgid(NOGROUP).gr_name,
    ]
    return lab.start_process(DAEMON_NAME, argv, f"{DAEMON_NAME}.log")


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.strip() for key, _, value in (line.partition(":") for line in lines)}


def _mount_options(pid: int) -> dict[str, str]:
    options = {}
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        options[fields[4]] = fields[5]
    return options


def test_failover_under_the_units_restrictions(make_lab: Callable[[str], Lab]) -> None:
    lab = make_lab(topology_text("lab-active-active"))
    host = RealHost(lab)
    host.pid = start_hardened(lab)
    wait_for(host.answers, 20, "the hardened in.mpathd answers on its socket")

    # The daemon really runs restricted: two capabilities, no new privileges,
    # a read-only system with /proc/sys/net and its own directories writable.
    status = _status(host.pid)
    wanted = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW)
    assert int(status["CapBnd"], 16) == wanted
    assert int(status["CapEff"], 16) == wanted
    assert status["NoNewPrivs"] == "1"
    mounts = _mount_options(host.pid)
    assert mounts["/"].split(",")[0] == "ro"
    assert mounts["/proc/sys"].split(",")[0] == "ro"
    assert mounts["/proc/sys/net"].split(",")[0] == "rw"
    assert mounts[str(lab.root / "run" / "ipmp")].split(",")[0] == "rw"

    wait_for(host.probing, 30, "every interface probing with targets in both families")
    # The member sysctls were written through the writable /proc/sys/net.
    assert "eth0: set net.ipv4.conf.eth0.arp_ignore=1" in host.log()
    lab.set_cable("eth0", False)
    wait_for(lambda: host.holder("192.0.2.19") == "eth1", 3, "192.0.2.19 moved to eth1")
    wait_for(lambda: host.answers_ping("192.0.2.19"), 3, "192.0.2.19 answers on eth1")
    lab.set_cable("eth0", True)
    wait_for(lambda: host.holder("192.0.2.19") == "eth0", 10, "failback to eth0")
    assert "Successfully failed over from NIC eth0 to NIC eth1" in host.log()
    for complaint in ("Permission denied", "Read-only file system", "Operation not permitted"):
        assert complaint not in host.log()
