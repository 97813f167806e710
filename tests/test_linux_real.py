"""The guide's procedures on real Linux interfaces, in a namespace lab (root only).

Every test builds its own lab with a per-run prefix and removes it, also when
it fails.  CI runs as root with IPMP_REQUIRE_ROOT_TESTS=1: these must run there.
After each event the data addresses must answer ping from a target namespace
in time and the invariant must hold: every data address exactly once, on a
healthy interface when the group has one; test addresses where they were.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ipmp.client import ControlClient
from ipmp.core.errors import IpmpError
from ipmp.daemon.control import socket_path
from ipmp.lab.lab import Lab
from ipmp.sim.topology import parse_topology

pytestmark = pytest.mark.root

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "ipmp" / "examples"
TESTS = Path(__file__).resolve().parent

DATA = {"192.0.2.19": "eth0", "192.0.2.20": "eth1"}
TEST_ADDRESSES = {"192.0.2.21": "eth0", "192.0.2.22": "eth1"}


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll until ``predicate`` holds; return the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)
    return time.monotonic() - start


class RealHost:
    """A lab with in.mpathd running in its host namespace."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.pid = 0

    def start(self) -> RealHost:
        self.pid = self.lab.start_daemon()
        wait_for(self.answers, 20, "in.mpathd answers on its socket")
        return self

    def client(self) -> ControlClient:
        return ControlClient(socket_path(self.lab.root), timeout=5.0)

    def answers(self) -> bool:
        try:
            self.client().request("ping")
        except IpmpError:
            return False
        return True

    def snapshot(self) -> dict[str, Any]:
        result: dict[str, Any] = self.client().request("snapshot")
        return result

    def state(self, nic: str) -> str:
        rows = {row["interface"]: row for row in self.snapshot()["interfaces"]}
        return str(rows[nic]["state"])

    def probing(self) -> bool:
        """Every member probes in both families with targets, and is ok."""
        snap = self.snapshot()
        rows = snap["interfaces"]
        targets = [t for t in snap["targets"] if t["mode"] != "disabled"]
        return (
            all(r["state"] == "ok" and r["probe"] == "ok" for r in rows)
            and all(t["targets"] for t in targets)
            and {t["family"] for t in targets} == {"inet", "inet6"}
        )

    def log(self) -> str:
        return (self.lab.run_dir / "in.mpathd.log").read_text(errors="replace")

    def kernel(self) -> list[tuple[str, str, str, int]]:
        """(ifname, family, address, prefixlen) of every address in the host namespace."""
        out = self.lab.run(["ip", "-j", "addr"]).stdout
        return [
            (link["ifname"], info["family"], info["local"], int(info["prefixlen"]))
            for link in json.loads(out)
            for info in link.get("addr_info", [])
        ]

    def holder(self, address: str) -> str | None:
        holders = [name for name, _f, a, _p in self.kernel() if a == address]
        return holders[0] if len(holders) == 1 else None

    def answers_ping(self, address: str, neighbour: str = "router1") -> bool:
        result = self.lab.ping(address, netns=self.lab.neighbour_ns(neighbour), count=1, wait=0.5)
        return result.received == 1

    def check_invariant(self, where: dict[str, str]) -> None:
        """Each data address once, where expected; test addresses never moved."""
        kernel = self.kernel()
        counts = Counter(a for _n, _f, a, _p in kernel)
        on = {a: n for n, _f, a, _p in kernel}
        for address, nic in where.items():
            assert counts[address] == 1, (address, kernel)
            assert on[address] == nic, (address, on.get(address), nic)
        for address, nic in TEST_ADDRESSES.items():
            if address in on:
                assert on[address] == nic and counts[address] == 1, (address, kernel)

    def source_for(self, destination: str) -> tuple[str, str]:
        """The source an ordinary program gets: ``ip route get`` and an unbound UDP socket."""
        route = self.lab.run(["ip", "-j", "route", "get", destination]).stdout
        prefsrc = str(json.loads(route)[0].get("prefsrc", ""))
        code = (
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            f"s.connect(({destination!r}, 9)); print(s.getsockname()[0])"
        )
        udp = self.lab.run([sys.executable, "-c", code]).stdout.strip()
        return prefsrc, udp


def topology_text(name: str, **mpathd: str) -> str:
    text = (EXAMPLES / f"{name}.toml").read_text()
    for key, value in mpathd.items():
        lines = [
            f"{key}={value}" if line.startswith(f"{key}=") else line for line in text.splitlines()
        ]
        text = "\n".join(lines) + "\n"
    return text


@pytest.fixture
def make_lab(tmp_path: Path) -> Iterator[Callable[[str], Lab]]:
    if os.geteuid() != 0:
        pytest.skip("builds network namespaces: needs root")
    labs: list[Lab] = []

    def build(text: str) -> Lab:
        prefix = f"ipmpt{secrets.token_hex(3)}"
        lab = Lab.up(
            parse_topology(text, "<test>"),
            prefix=prefix,
            run_dir=tmp_path / prefix,
            registry=tmp_path / "registry",
            topology_text=text,
        )
        labs.append(lab)
        return lab

    yield build
    for lab in labs:
        lab.down(registry=tmp_path / "registry")
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert lab.prefix not in left, f"namespaces of {lab.prefix} left behind"


def started(make_lab: Callable[[str], Lab], text: str) -> RealHost:
    host = RealHost(make_lab(text)).start()
    wait_for(host.probing, 30, "every interface probing with targets in both families")
    return host


def test_link_failure_and_repair(make_lab: Callable[[str], Lab]) -> None:
    host = started(make_lab, topology_text("lab-active-active"))
    assert host.answers_ping("192.0.2.19")
    host.check_invariant(DATA)
    host.lab.set_cable("eth0", False)
    took = wait_for(lambda: host.holder("192.0.2.19") == "eth1", 2, "192.0.2.19 moved to eth1")
    assert took < 1.0
    wait_for(lambda: host.answers_ping("192.0.2.19"), 3, "192.0.2.19 answers on eth1")
    host.check_invariant({"192.0.2.19": "eth1", "192.0.2.20": "eth1"})
    assert "NIC failure detected on eth0 of group test" in host.log()
    host.lab.set_cable("eth0", True)
    # FDT 2 s: repair needs 10 answered probes, about 1.4 x FDT.
    wait_for(lambda: host.holder("192.0.2.19") == "eth0", 10, "failback to eth0")
    wait_for(lambda: host.answers_ping("192.0.2.19"), 3, "192.0.2.19 answers on eth0")
    host.check_invariant(DATA)


def test_silent_port_drop_is_found_by_probes(make_lab: Callable[[str], Lab]) -> None:
    host = started(make_lab, topology_text("lab-active-active"))
    host.lab.set_drop("eth0", True)
    link = host.lab.host_link("eth0")
    assert link is not None and "LOWER_UP" in link["flags"]  # the carrier stays up
    took = wait_for(lambda: host.state("eth0") == "failed", 5, "eth0 failed by probes")
    assert took <= 2.0 + 0.5  # FAILURE_DETECTION_TIME=2000
    wait_for(lambda: host.answers_ping("192.0.2.19"), 3, "192.0.2.19 answers on eth1")
    host.check_invariant({"192.0.2.19": "eth1", "192.0.2.20": "eth1"})
    host.lab.set_drop("eth0", False)
    wait_for(lambda: host.holder("192.0.2.19") == "eth0", 10, "failback to eth0")
    host.check_invariant(DATA)


def test_active_standby(make_lab: Callable[[str], Lab]) -> None:
    host = started(make_lab, topology_text("lab-active-standby"))
    rows = {r["interface"]: r for r in host.snapshot()["interfaces"]}
    assert rows["eth1"]["flags"].startswith("is")
    host.lab.set_cable("eth0", False)
    wait_for(lambda: host.holder("192.0.2.19") == "eth1", 2, "192.0.2.19 on the standby")
    wait_for(lambda: host.answers_ping("192.0.2.19"), 3, "192.0.2.19 answers on eth1")
    host.lab.set_cable("eth0", True)
    wait_for(lambda: host.holder("192.0.2.19") == "eth0", 10, "failback to eth0")
    wait_for(
        lambda: (
            {r["interface"]: r for r in host.snapshot()["interfaces"]}["eth1"]["flags"][0] == "i"
        ),
        5,
        "eth1 INACTIVE again",
    )


def test_a_member_without_data_addresses_arps_from_its_test_address(
    make_lab: Callable[[str], Lab],
) -> None:
    """No ARP flux: the standby, holding only its test address, never claims 192.0.2.19."""
    host = started(make_lab, topology_text("lab-active-standby"))
    router = host.lab.neighbour_ns("router1")

    def announce(ifname: str) -> str:
        return host.lab.run(["cat", f"/proc/sys/net/ipv4/conf/{ifname}/arp_announce"]).stdout

    def router_neighbours() -> dict[str, str]:
        out = subprocess.run(
            ["ip", "-n", router, "-j", "neigh", "show", "dev", "eth0"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return {str(n["dst"]): str(n.get("lladdr", "")) for n in json.loads(out)}

    assert (announce("eth0").strip(), announce("eth1").strip()) == ("2", "0")
    # Make the standby resolve router1 again: its ARP request must carry its
    # own test address (192.0.2.22), not the active member's data address.
    subprocess.run(["ip", "-n", router, "neigh", "flush", "dev", "eth0"], check=True)
    host.lab.run(["ip", "neigh", "flush", "dev", "eth1"])
    wait_for(lambda: "192.0.2.22" in router_neighbours(), 5, "router1 learns 192.0.2.22")
    assert router_neighbours().get("192.0.2.19") != "08:00:20:b9:1b:fc"
    # After a failover the roles swap.
    host.lab.set_cable("eth0", False)
    wait_for(lambda: host.holder("192.0.2.19") == "eth1", 2, "192.0.2.19 on the standby")
    wait_for(lambda: announce("eth1").strip() == "2", 2, "eth1 arp_announce 2")
    assert announce("eth0").strip() == "0"


def test_failback_no_keeps_addresses_on_the_sibling(make_lab: Callable[[str], Lab]) -> None:
    host = started(make_lab, topology_text("lab-active-active", FAILBACK="no"))
    host.lab.set_cable("eth0", False)
    wait_for(lambda: host.holder("192.0.2.19") == "eth1", 2, "failover")
    host.lab.set_cable("eth0", True)
    wait_for(lambda: host.state("eth0") == "ok", 10, "eth0 repaired")
    rows = {r["interface"]: r for r in host.snapshot()["interfaces"]}
    assert rows["eth0"]["flags"][0] == "i"  # INACTIVE
    assert host.holder("192.0.2.19") == "eth1"
    assert host.answers_ping("192.0.2.19")
    # eth1 fails: everything goes to the INACTIVE eth0, which becomes active.
    host.lab.set_cable("eth1", False)
    wait_for(lambda: host.holder("192.0.2.20") == "eth0", 2, "failover to eth0")
    host.check_invariant({"192.0.2.19": "eth0", "192.0.2.20": "eth0"})
    wait_for(lambda: host.answers_ping("192.0.2.20"), 3, "192.0.2.20 answers on eth0")


SINGLE = """
[host]
name = "single"
[mpathd]
text = "FAILURE_DETECTION_TIME=1000\\n"
[[link]]
name = "net0"
  [[link.neighbour]]
  name = "router1"
  role = "router"
  address = "192.0.2.1"
  [[link.neighbour]]
  name = "router2"
  role = "router"
  address = "192.0.2.2"
[[nic]]
name = "eth0"
mac = "8:0:20:b9:19:fa"
link = "net0"
hostname = "192.0.2.19 netmask + broadcast + group v4test -failover up"
"""


def test_single_interface_group(make_lab: Callable[[str], Lab]) -> None:
    host = RealHost(make_lab(SINGLE)).start()
    wait_for(lambda: host.snapshot()["targets"][0]["targets"] != [], 20, "targets found")
    assert host.snapshot()["targets"][0]["testaddr"] == "192.0.2.19"
    assert host.answers_ping("192.0.2.19")
    host.lab.set_drop("eth0", True)
    wait_for(lambda: host.state("eth0") == "failed", 5, "failure detected")
    assert "NIC failure detected on eth0 of group v4test" in host.log()
    assert host.holder("192.0.2.19") == "eth0"  # nowhere to go
    host.lab.set_drop("eth0", False)
    wait_for(lambda: host.state("eth0") == "ok", 10, "repaired")
    assert host.answers_ping("192.0.2.19")


def test_ipv6_link_local_test_addresses(make_lab: Callable[[str], Lab]) -> None:
    host = started(make_lab, topology_text("lab-active-active"))
    v6 = [t for t in host.snapshot()["targets"] if t["family"] == "inet6"]
    assert {t["interface"] for t in v6} == {"eth0", "eth1"}
    for row in v6:
        assert row["testaddr"].startswith("fe80::")
        assert set(row["targets"]) <= {"fe80::1", "fe80::2"} and row["targets"]


def test_nic_deleted_and_recreated(make_lab: Callable[[str], Lab]) -> None:
    host = started(make_lab, topology_text("lab-active-active"))
    host.lab.delete_nic("eth0")
    wait_for(lambda: host.holder("192.0.2.19") == "eth1", 3, "192.0.2.19 re-created on eth1")
    wait_for(lambda: host.answers_ping("192.0.2.19"), 3, "192.0.2.19 answers on eth1")
    assert "inet eth0 has been removed from kernel" in host.log()
    host.lab.create_nic("eth0")
    wait_for(lambda: host.holder("192.0.2.21") == "eth0", 5, "eth0's test address back")
    wait_for(lambda: host.holder("192.0.2.19") == "eth0", 15, "failback to the new eth0")
    wait_for(lambda: host.answers_ping("192.0.2.19"), 3, "192.0.2.19 answers on eth0")
    host.check_invariant(DATA)


def _kill_after_failover(host: RealHost) -> None:
    """Pull eth0's cable, wait for the failover, SIGKILL the daemon and forget it."""
    host.lab.set_cable("eth0", False)
    wait_for(lambda: host.holder("192.0.2.19") == "eth1", 2, "failover")
    os.kill(host.pid, signal.SIGKILL)
    wait_for(lambda: not host.answers(), 5, "the daemon is gone")
    host.lab.stop_processes()


def test_daemon_sigkill_and_restart(make_lab: Callable[[str], Lab]) -> None:
    host = started(make_lab, topology_text("lab-active-active"))
    _kill_after_failover(host)
    host.start()
    assert "restarting: adopting the saved state" in host.log()
    host.check_invariant({"192.0.2.19": "eth1", "192.0.2.20": "eth1"})
    host.lab.set_cable("eth0", True)
    wait_for(lambda: host.holder("192.0.2.19") == "eth0", 15, "failback after the restart")
    host.check_invariant(DATA)
    wait_for(lambda: host.answers_ping("192.0.2.19"), 3, "192.0.2.19 answers on eth0")


def test_restart_after_a_crash_in_the_middle_of_a_move(make_lab: Callable[[str], Lab]) -> None:
    # Killed between the add on eth1 and the delete on eth0 (the crash-safety
    # benchmark hit it 60 times in 200): the copy on the failed eth0 goes, the
    # one on eth1 stays.
    host = started(make_lab, topology_text("lab-active-active"))
    _kill_after_failover(host)
    host.lab.run(["ip", "addr", "add", "192.0.2.19/24", "dev", "eth0"])
    host.start()
    wait_for(lambda: host.holder("192.0.2.19") == "eth1", 5, "one copy, on eth1")
    host.check_invariant({"192.0.2.19": "eth1", "192.0.2.20": "eth1"})


def test_a_copy_removed_at_restart_does_not_confuse_the_next_move(
    make_lab: Callable[[str], Lab],
) -> None:
    # Killed in the middle of a failback (the crash-safety smoke): the saved
    # state says eth0, the kernel has the address on both.  After the restart
    # the next failover must still leave exactly one copy.
    host = started(make_lab, topology_text("lab-active-active"))
    os.kill(host.pid, signal.SIGKILL)
    wait_for(lambda: not host.answers(), 5, "the daemon is gone")
    host.lab.stop_processes()
    host.lab.run(["ip", "addr", "add", "192.0.2.19/24", "dev", "eth1"])
    host.start()
    wait_for(lambda: host.holder("192.0.2.19") == "eth0", 5, "one copy, on eth0")
    wait_for(host.probing, 30, "probing again")
    host.lab.set_cable("eth0", False)
    wait_for(lambda: host.holder("192.0.2.19") == "eth1", 3, "one copy, on eth1")
    host.check_invariant({"192.0.2.19": "eth1", "192.0.2.20": "eth1"})


def test_test_addresses_are_never_an_ordinary_source(make_lab: Callable[[str], Lab]) -> None:
    host = started(make_lab, topology_text("lab-active-active"))

    def check(state: str) -> None:
        for destination in ("192.0.2.100", "192.0.2.1"):
            prefsrc, udp = host.source_for(destination)
            assert prefsrc in DATA and udp in DATA, (state, destination, prefsrc, udp)

    check("before failover")
    host.lab.set_cable("eth0", False)
    wait_for(lambda: host.holder("192.0.2.19") == "eth1", 2, "failover")
    check("after failover")
    host.lab.set_cable("eth0", True)
    wait_for(lambda: host.holder("192.0.2.19") == "eth0", 10, "failback")
    check("after failback")


def test_outbound_flows_spread_over_the_active_interfaces(make_lab: Callable[[str], Lab]) -> None:
    host = started(make_lab, topology_text("lab-active-active"))

    def devices() -> set[str]:
        seen = set()
        for port in range(1000, 1032):
            out = host.lab.run(
                [
                    "ip",
                    "-j",
                    "route",
                    "get",
                    "192.0.2.100",
                    "ipproto",
                    "tcp",
                    "sport",
                    str(port),
                    "dport",
                    "80",
                ]
            ).stdout
            route = json.loads(out)[0]
            # Always a data address as the source, never a test address.
            assert route["prefsrc"] in DATA, route
            seen.add(route["dev"])
        return seen

    before = devices()
    assert before == {"eth0", "eth1"}
    host.lab.set_cable("eth0", False)
    wait_for(lambda: devices() == {"eth1"}, 3, "flows only on eth1")


def test_linux_stack_keeps_the_stack_contract(make_lab: Callable[[str], Lab]) -> None:
    lab = make_lab(topology_text("lab-active-active"))
    lab.run(["ip", "link", "set", "eth0", "up"])
    lab.run(["ip", "link", "set", "eth1", "up"])
    result = lab.run(
        [
            sys.executable,
            str(TESTS / "linux_contract_main.py"),
            "eth0",
            "eth1",
            "8:0:20:b9:19:fa",
            "192.0.2.10",
            "192.0.2.30",
            "192.0.2.1",
        ],
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "contract ok" in result.stdout


def test_member_sysctls_set_on_join_and_restored_on_leave(make_lab: Callable[[str], Lab]) -> None:
    host = started(make_lab, topology_text("lab-active-active"))

    def sysctl(name: str, family: str = "ipv4") -> str:
        return host.lab.run(["cat", f"/proc/sys/net/{family}/conf/eth1/{name}"]).stdout.strip()

    linkdown = "ignore_routes_with_linkdown"
    assert [sysctl(k) for k in ("arp_ignore", "arp_announce", "rp_filter")] == ["1", "2", "2"]
    assert [sysctl(linkdown), sysctl(linkdown, "ipv6")] == ["1", "1"]
    assert "eth1: set net.ipv4.conf.eth1.arp_ignore=1 (was 0)" in host.log()
    assert f"net.ipv6.conf.eth1.{linkdown}=1 (was 0)" in host.log()
    host.client().request("ifconfig", argv=["eth1", "group", ""])
    wait_for(lambda: sysctl("arp_ignore") == "0", 5, "arp_ignore restored")
    assert [sysctl(k) for k in ("arp_announce", "rp_filter")] == ["0", "0"]
    assert [sysctl(linkdown), sysctl(linkdown, "ipv6")] == ["0", "0"]
    assert "eth1: restored net.ipv4.conf.eth1.arp_ignore=0" in host.log()


MIXED_FAMILIES = """
[host]
name = "mixed"
[mpathd]
text = "FAILURE_DETECTION_TIME=2000\\nFAILBACK=yes\\nTRACK_INTERFACES_ONLY_WITH_GROUPS=yes\\n"
[[link]]
name = "net0"
  [[link.neighbour]]
  name = "router1"
  role = "router"
  address = "192.0.2.1"
  address6 = "fe80::1"
  [[link.neighbour]]
  name = "router2"
  role = "router"
  address = "192.0.2.2"
  address6 = "fe80::2"
[[nic]]
name = "eth0"
mac = "8:0:20:b9:19:fa"
link = "net0"
hostname = '''
192.0.2.19 netmask + broadcast + group test up \\
    addif 192.0.2.21 deprecated -failover netmask + broadcast + up
'''
hostname6 = '''
-failover group test up
addif 2001:db8::19/64 up
'''
[[nic]]
name = "eth1"
mac = "8:0:20:b9:1b:fc"
link = "net0"
hostname = '''
192.0.2.20 netmask + broadcast + group test up \\
    addif 192.0.2.22 deprecated -failover netmask + broadcast + up
'''
"""


def test_each_family_fails_over_on_its_own(make_lab: Callable[[str], Lab]) -> None:
    """eth1 has no /etc/hostname6.eth1: IPv4 moves to it, IPv6 stays on eth0 (issue 10.7).

    The kernel gives eth1 an IPv6 link-local address as it does every NIC;
    that does not make it plumbed for inet6 (README: Where this differs).
    """
    host = started(make_lab, MIXED_FAMILIES)
    v6 = "2001:db8::19"
    assert any(n == "eth1" and f == "inet6" for n, f, _a, _p in host.kernel())
    wait_for(
        lambda: "NIC eth1 of group test is not plumbed for IPv6" in host.log(),
        30,
        "the not-plumbed line for eth1",
    )
    assert host.answers_ping(v6)
    host.lab.set_cable("eth0", False)
    wait_for(lambda: host.holder("192.0.2.19") == "eth1", 2, "192.0.2.19 moved to eth1")
    wait_for(lambda: host.answers_ping("192.0.2.19"), 3, "192.0.2.19 answers on eth1")
    assert host.holder(v6) == "eth0"
    host.check_invariant({"192.0.2.19": "eth1", "192.0.2.20": "eth1", v6: "eth0"})
    stranded = (
        "moving addresses from failed IPv6 interfaces: eth0 "
        "(couldn't move, no alternative interface)"
    )
    log = host.log()
    assert "Successfully failed over from NIC eth0 to NIC eth1" in log
    assert log.count(stranded) == 1
    rows = {r["address"]: r for r in host.snapshot()["addresses"]}
    assert (rows["192.0.2.19"]["inbound"], rows[v6]["inbound"]) == ("eth1", "")
    host.lab.set_cable("eth0", True)
    wait_for(lambda: host.holder("192.0.2.19") == "eth0", 10, "failback to eth0")
    host.check_invariant({**DATA, v6: "eth0"})
    wait_for(lambda: host.answers_ping(v6), 5, f"{v6} answers on eth0")
    assert host.log().count(stranded) == 1


def test_restart_leaves_the_kernels_link_local_alone(make_lab: Callable[[str], Lab]) -> None:
    """After a SIGKILL and restart eth1 is still not plumbed for inet6: its
    kernel link-local address is neither adopted nor deleted."""
    host = started(make_lab, MIXED_FAMILIES)
    link_local = [a for n, f, a, _p in host.kernel() if (n, f) == ("eth1", "inet6")]
    assert link_local
    _kill_after_failover(host)
    host.start()
    assert "restarting: adopting the saved state" in host.log()
    assert "adopted inet6" not in host.log()
    assert [a for n, f, a, _p in host.kernel() if (n, f) == ("eth1", "inet6")] == link_local
    host.check_invariant({"192.0.2.19": "eth1", "192.0.2.20": "eth1", "2001:db8::19": "eth0"})
    rows = {r["interface"]: r for r in host.snapshot()["targets"]}
    assert rows["eth1"]["family"] == "inet"
    host.lab.set_cable("eth0", True)
    wait_for(lambda: host.holder("192.0.2.19") == "eth0", 15, "failback after the restart")
    host.check_invariant({**DATA, "2001:db8::19": "eth0"})


def test_probe_records_carry_the_kernels_receive_time(make_lab: Callable[[str], Lab]) -> None:
    """ipmpstat -p's NETRTT (kernel receipt, SO_TIMESTAMPNS) is measured apart from RTT."""
    host = started(make_lab, topology_text("lab-active-active"))
    answered = []
    for record in host.client().stream("probes"):
        if record["rtt_ms"] is not None:
            answered.append(record)
        if len(answered) >= 8:
            break
    for record in answered:
        assert record["netrtt_ms"] is not None, record
        assert 0 <= record["netrtt_ms"] <= record["rtt_ms"], record
