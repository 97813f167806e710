"""Routes follow the group on real interfaces (issue 10 item 1; root only).

The lab-offlink lab: ens3 and ens4 in one group, a router 198.51.100.1
(2001:db8:1::1) that is the default gateway, and a peer 203.0.113.10
(2001:db8:2::10) behind it.  A default route added by the administrator
lands on ens3; while ens3 has failed (cable pulled, or silently dropping)
it must be on ens4 and the peer must still reach the data address; after
the repair it is back on ens3.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from ipmp.lab.lab import Lab
from test_linux_real import RealHost, make_lab, wait_for

__all__ = ["make_lab"]  # the fixture, shared with test_linux_real

pytestmark = pytest.mark.root

OFFLINK = (
    Path(__file__).resolve().parent.parent / "src/ipmp/examples/lab-offlink.toml"
).read_text()
DATA = ("198.51.100.19", "2001:db8:1::19")
ROUTERS = {"inet": "198.51.100.1", "inet6": "2001:db8:1::1"}


def default_devices(host: RealHost, family: str) -> set[str]:
    """The devices the main table's default routes of ``family`` leave by."""
    flag = "-4" if family == "inet" else "-6"
    out = host.lab.run(["ip", "-j", flag, "route", "show", "default"]).stdout
    return {str(r.get("dev")) for r in json.loads(out or "[]") if r.get("gateway")}


def add_defaults(host: RealHost) -> None:
    for family, router in ROUTERS.items():
        flag = "-4" if family == "inet" else "-6"
        result = host.lab.run(["ip", flag, "route", "add", "default", "via", router])
        assert result.returncode == 0, result.stderr


def peer_reaches(host: RealHost, address: str) -> bool:
    return host.answers_ping(address, neighbour="peer")


def check_home(host: RealHost) -> None:
    for family in ROUTERS:
        wait_for(
            lambda f=family: default_devices(host, f) == {"ens3"}, 10, f"{family} default on ens3"
        )
    for address in DATA:
        wait_for(lambda a=address: peer_reaches(host, a), 10, f"peer reaches {address}")


def fault(host: RealHost, kind: str, on: bool) -> None:
    if kind == "cable":
        host.lab.set_cable("ens3", not on)
    elif kind == "admin":
        # ip link set ens3 down: the kernel deletes the routes bound to it.
        host.lab.set_admin("ens3", not on)
    else:
        host.lab.set_drop("ens3", on)


@pytest.mark.parametrize("kind", ["cable", "drop", "admin"])
@pytest.mark.parametrize("added", ["before", "after"])
def test_default_routes_follow_the_group(
    make_lab: Callable[[str], Lab], added: str, kind: str
) -> None:
    host = RealHost(make_lab(OFFLINK))
    host.lab.run(["ip", "link", "set", "ens3", "up"])
    host.lab.run(["ip", "link", "set", "ens4", "up"])
    if added == "before":
        # Before the daemon: the kernel needs an address of the router's
        # subnet to take the route, as after an administrator's ifconfig.
        host.lab.run(["ip", "addr", "add", "198.51.100.19/24", "dev", "ens3"])
        host.lab.run(["ip", "addr", "add", "2001:db8:1::19/64", "dev", "ens3", "nodad"])
        add_defaults(host)
    host.start()
    wait_for(host.probing, 30, "every interface probing with targets in both families")
    if added == "after":
        add_defaults(host)
    check_home(host)

    fault(host, kind, True)
    wait_for(lambda: host.holder("198.51.100.19") == "ens4", 15, "failover to ens4")
    for family in ROUTERS:
        wait_for(
            lambda f=family: default_devices(host, f) == {"ens4"}, 5, f"{family} default on ens4"
        )
    for address in DATA:
        assert peer_reaches(host, address), f"the off-link peer lost {address} during the failure"

    fault(host, kind, False)
    wait_for(lambda: host.holder("198.51.100.19") == "ens3", 30, "failback to ens3")
    check_home(host)
    assert "Successfully failed back to NIC ens3" in host.log()


def test_defaultrouter_is_installed_at_boot(make_lab: Callable[[str], Lab]) -> None:
    lab = make_lab(OFFLINK)
    etc = lab.root / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "inet").mkdir(exist_ok=True)
    (etc / "inet" / "hosts").write_text("198.51.100.1 gw\n")
    (etc / "defaultrouter").write_text("# the gateway\ngw\n2001:db8:1::1\nnot-a-router\n")
    host = RealHost(lab).start()
    wait_for(host.probing, 30, "every interface probing")
    check_home(host)
    assert "/etc/defaultrouter: line 4: 'not-a-router'" in host.log()
    host.lab.set_cable("ens3", False)
    for family in ROUTERS:
        wait_for(
            lambda f=family: default_devices(host, f) == {"ens4"}, 15, f"{family} default on ens4"
        )
    for address in DATA:
        assert peer_reaches(host, address)


def test_a_restart_during_the_failure_still_brings_the_routes_home(
    make_lab: Callable[[str], Lab],
) -> None:
    host = RealHost(make_lab(OFFLINK)).start()
    wait_for(host.probing, 30, "every interface probing with targets in both families")
    add_defaults(host)
    check_home(host)
    host.lab.set_cable("ens3", False)
    for family in ROUTERS:
        wait_for(lambda f=family: default_devices(host, f) == {"ens4"}, 5, f"{family} on ens4")
    os.kill(host.pid, signal.SIGKILL)
    wait_for(lambda: not host.answers(), 5, "the daemon is gone")
    host.lab.stop_processes()
    host.start()
    assert "restarting: adopting the saved state" in host.log()
    # Where the routes belong was saved: the new daemon moves them home.
    host.lab.set_cable("ens3", True)
    wait_for(lambda: host.holder("198.51.100.19") == "ens3", 30, "failback to ens3")
    check_home(host)
