"""Every way a link goes away, and the kernel's MTU, on real interfaces (root only).

The lab's NICs are veth pairs into a bridge.  The ways a link goes away that
such a kernel can show (linux-peers §5.3):

* administrative down (``ip link set eth0 down``): IFF_UP cleared, operstate DOWN;
* carrier loss (the switch port, the veth peer, goes down): operstate DOWN
  here (LOWERLAYERDOWN when the peer is in the same namespace, and for a
  macvlan whose lower device goes down: the same cleared flags either way);
* dormant (``ip link set eth0 mode dormant`` and operstate DORMANT set from
  user space, as a supplicant does: iproute2 has no command for it, so
  pyroute2 sends IFLA_OPERSTATE): IFF_RUNNING cleared, carrier still up.

NOTPRESENT is set only by drivers of removable hardware (netif_device_detach):
a veth cannot show it.  It clears IFF_RUNNING like the others.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

import pytest

from ipmp.core.errors import IpmpError
from ipmp.lab.lab import Lab
from test_linux_real import DATA, RealHost, make_lab, started, topology_text, wait_for

pytestmark = pytest.mark.root

__all__ = ["make_lab"]  # the fixture, shared with test_linux_real

MOVED = {"192.0.2.19": "eth1", "192.0.2.20": "eth1"}


def set_way(host: RealHost, way: str, ifname: str, down: bool) -> None:
    """Take ``ifname`` away (``down``) or bring it back, the way named."""
    if way == "admin":
        host.lab.set_admin(ifname, not down)
    elif way == "cable":
        host.lab.set_cable(ifname, not down)
    else:
        host.lab.set_dormant(ifname, down)


# A veth whose peer went down is LOWERLAYERDOWN when the peer shares its
# namespace and DOWN when it lives in another one, as the lab's switch port does.
EXPECTED_OPERSTATE = {
    "admin": {"DOWN"},
    "cable": {"DOWN", "LOWERLAYERDOWN"},
    "dormant": {"DORMANT"},
}


def group_state(host: RealHost) -> str:
    return str(host.snapshot()["groups"][0]["state"])


def ipmpstat_g(host: RealHost) -> str:
    result = host.lab.run(
        ["env", f"IPMP_ROOT={host.lab.root}", sys.executable, "-m", "ipmp.cli.ipmpstat", "-g"]
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("way", ["admin", "cable", "dormant"])
def test_every_way_a_link_goes_away_fails_the_nic(make_lab: Callable[[str], Lab], way: str) -> None:
    host = started(make_lab, topology_text("lab-active-active"))
    set_way(host, way, "eth0", True)
    link = host.lab.host_link("eth0")
    assert link is not None and link["operstate"] in EXPECTED_OPERSTATE[way], link
    took = wait_for(lambda: host.holder("192.0.2.19") == "eth1", 2, "192.0.2.19 moved to eth1")
    assert took < 1.0
    wait_for(lambda: host.state("eth0") == "failed", 2, "eth0 FAILED")
    assert group_state(host) == "degraded"
    assert "degraded" in ipmpstat_g(host)
    wait_for(lambda: host.answers_ping("192.0.2.19"), 3, "192.0.2.19 answers on eth1")
    host.check_invariant(MOVED)
    assert "The link has gone down on eth0" in host.log()
    set_way(host, way, "eth0", False)
    wait_for(lambda: host.holder("192.0.2.19") == "eth0", 10, "failback to eth0")
    wait_for(lambda: host.state("eth0") == "ok", 10, "eth0 ok again")
    assert "The link has come up on eth0" in host.log()
    wait_for(lambda: host.answers_ping("192.0.2.19"), 3, "192.0.2.19 answers on eth0")
    host.check_invariant(DATA)
    # The repaired NIC probes again (its test route came back with the link).
    wait_for(host.probing, 15, "both members probing again")


def test_both_members_down_fails_the_group(make_lab: Callable[[str], Lab]) -> None:
    host = started(make_lab, topology_text("lab-active-active"))
    host.lab.set_admin("eth0", False)
    wait_for(lambda: group_state(host) == "degraded", 2, "group degraded")
    assert "The link has gone down on eth0" in host.log()  # not found by probes later
    host.lab.set_cable("eth1", False)
    wait_for(lambda: group_state(host) == "failed", 2, "group failed")
    assert "failed" in ipmpstat_g(host)
    assert "All Interfaces in group test have failed" in host.log()
    host.lab.set_admin("eth0", True)
    host.lab.set_cable("eth1", True)
    wait_for(lambda: group_state(host) == "ok", 15, "group ok again")
    wait_for(lambda: host.answers_ping("192.0.2.19"), 3, "192.0.2.19 answers")
    host.check_invariant(DATA)


def test_a_macvlan_whose_lower_device_loses_its_carrier_fails(
    make_lab: Callable[[str], Lab],
) -> None:
    host = started(make_lab, topology_text("lab-active-active"))
    host.lab.run(["ip", "link", "add", "link", "eth1", "name", "eth2", "type", "macvlan"])
    client = host.client()
    wait_for(lambda: known(host, "eth2"), 5, "eth2 seen by in.mpathd")
    client.request("ifconfig", argv=["eth2", "plumb", "192.0.2.23/24", "group", "test", "up"])
    client.request(
        "ifconfig", argv=["eth2", "addif", "192.0.2.24/24", "deprecated", "-failover", "up"]
    )
    wait_for(lambda: host.state("eth2") == "ok", 15, "eth2 ok in group test")
    host.lab.set_cable("eth1", False)
    link = host.lab.host_link("eth2")
    assert link is not None and link["operstate"] == "LOWERLAYERDOWN", link
    wait_for(lambda: host.holder("192.0.2.23") == "eth0", 2, "192.0.2.23 moved to eth0")
    assert host.state("eth2") == "failed"
    assert "The link has gone down on eth2" in host.log()
    host.lab.set_cable("eth1", True)
    wait_for(lambda: host.holder("192.0.2.23") == "eth2", 15, "192.0.2.23 back on eth2")


def known(host: RealHost, ifname: str) -> bool:
    """in.mpathd knows the interface (it need not be plumbed)."""
    try:
        host.client().request("ifconfig", argv=[ifname])
    except IpmpError as err:
        return "no such interface" not in err.message
    return True


def ifconfig_all(host: RealHost) -> str:
    return str(host.client().request("ifconfig", argv=["-a"])["output"])


def kernel_mtu(host: RealHost, ifname: str) -> int:
    link = host.lab.host_link(ifname)
    assert link is not None
    return int(link["mtu"])


def status_mtu(host: RealHost, ifname: str) -> int:
    first = str(host.client().request("ifconfig", argv=[ifname])["output"]).splitlines()[0]
    return int(first.split(" mtu ")[1].split()[0])


def test_ifconfig_mtu_sets_the_kernels_and_status_follows_the_kernel(
    make_lab: Callable[[str], Lab],
) -> None:
    host = started(make_lab, topology_text("lab-active-active"))
    assert status_mtu(host, "eth0") == kernel_mtu(host, "eth0") == 1500
    host.client().request("ifconfig", argv=["eth0", "mtu", "1400"])
    assert kernel_mtu(host, "eth0") == 1400
    assert status_mtu(host, "eth0") == 1400
    # Changed by someone else: followed from the link event.
    host.lab.run(["ip", "link", "set", "eth1", "mtu", "1300"])
    wait_for(lambda: status_mtu(host, "eth1") == 1300, 2, "eth1's new MTU shown")
    assert "eth1: flags=" in ifconfig_all(host) and " mtu 1300 " in ifconfig_all(host)
    # One the kernel refuses: a macvlan takes no more than its lower device.
    host.lab.run(["ip", "link", "add", "link", "eth1", "name", "eth2", "type", "macvlan"])
    wait_for(lambda: known(host, "eth2"), 5, "eth2 seen by in.mpathd")
    before = ifconfig_all(host)
    with pytest.raises(IpmpError) as refused:
        host.client().request("ifconfig", argv=["eth2", "plumb", "mtu", "9000"])
    message = refused.value.message
    assert "\n" not in message and message.startswith("ifconfig: eth2: mtu 9000: "), message
    assert kernel_mtu(host, "eth2") == 1300
    assert ifconfig_all(host) == before  # nothing changed, not even the plumb
    host.check_invariant(DATA)


def test_a_link_still_down_when_the_daemon_restarts_is_failed_at_once(
    make_lab: Callable[[str], Lab],
) -> None:
    host = started(make_lab, topology_text("lab-active-active"))
    host.lab.set_admin("eth0", False)
    wait_for(lambda: host.holder("192.0.2.19") == "eth1", 2, "192.0.2.19 moved to eth1")
    os.kill(host.pid, signal.SIGKILL)
    wait_for(lambda: not host.answers(), 5, "the daemon is gone")
    host.lab.stop_processes()
    host.start()
    # Down, and holding its test address: configured, then taken down. Not an
    # interface waiting to be brought up for the first time.
    assert host.state("eth0") == "failed"
    assert group_state(host) == "degraded"
    host.check_invariant(MOVED)
    host.lab.set_admin("eth0", True)
    wait_for(lambda: host.holder("192.0.2.19") == "eth0", 15, "failback after the restart")
    host.check_invariant(DATA)
