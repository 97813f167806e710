"""Other writers on real Linux interfaces (root only): ``ip addr`` and ``ip rule`` by hand.

Another program (an administrator's ``ip``, a DHCP client, systemd-networkd)
changes addresses and rules under the running daemon; it reconciles and logs
(README, "Other writers").  The labs are the ones of test_linux_real.py.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable

import pytest

from ipmp.cli.ipmpstat import main as ipmpstat
from ipmp.lab.lab import Lab
from test_linux_real import DATA, RealHost, make_lab, started, topology_text, wait_for

pytestmark = pytest.mark.root
__all__ = ["make_lab"]  # the fixture, shared with test_linux_real.py

NO_TEST = (
    "No test address configured on interface eth0; disabling probe-based failure detection on it"
)
TEST_NOW = (
    "Test address now configured on interface eth0; enabling probe-based failure detection on it"
)
LINK_LOCAL0 = "fe80::a00:20ff:feb9:19fa"  # eth0's, from its MAC 8:0:20:b9:19:fa


def ipmpstat_rows(host: RealHost, capsys: pytest.CaptureFixture[str], *argv: str) -> list[str]:
    """``ipmpstat -P -o ... argv`` lines, from the running daemon's snapshot."""
    capsys.readouterr()
    assert ipmpstat(["-P", *argv], fetch=host.snapshot) == 0
    return capsys.readouterr().out.splitlines()


def rules(host: RealHost) -> list[tuple[str, int]]:
    """(source, table) of every priority-100 IPv4 policy rule of the host."""
    out = json.loads(host.lab.run(["ip", "-j", "-4", "rule"]).stdout)
    return [
        (str(r.get("src")), int(r["table"]))
        for r in out
        if r.get("priority") == 100 and str(r.get("table", "")).isdigit()
    ]


def index_of(host: RealHost, name: str) -> int:
    return int(json.loads(host.lab.run(["ip", "-j", "link", "show", name]).stdout)[0]["ifindex"])


def stays(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """``predicate`` holds at every look for ``seconds`` (a bounded watch, not a sleep)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        assert predicate(), what
        time.sleep(0.1)


def test_a_test_address_deleted_by_hand_disables_probing(
    make_lab: Callable[[str], Lab], capsys: pytest.CaptureFixture[str]
) -> None:
    host = started(make_lab, topology_text("lab-active-active"))
    host.lab.run(["ip", "addr", "del", "192.0.2.21/32", "dev", "eth0"])
    wait_for(lambda: NO_TEST in host.log(), 5, "the guide's no-test-address line")
    assert "Test address 192.0.2.21/32 on eth0 was removed by another program" in host.log()
    # ipmpstat -t: eth0 probes with its IPv6 test address only.
    probing = [(t["interface"], t["family"]) for t in host.snapshot()["targets"]]
    assert ("eth0", "inet") not in probing and ("eth0", "inet6") in probing, probing
    assert ("192.0.2.21", 10000 + index_of(host, "eth0")) not in rules(host)
    # The IPv6 test address too: the NIC no longer probes at all.
    host.lab.run(["ip", "addr", "del", f"{LINK_LOCAL0}/64", "dev", "eth0"])
    wait_for(
        lambda: "eth0:disabled" in ipmpstat_rows(host, capsys, "-o", "interface,probe", "-i"),
        5,
        "ipmpstat -i shows probing disabled on eth0",
    )
    targets = ipmpstat_rows(host, capsys, "-o", "interface,mode,testaddr", "-t")
    assert "eth0:disabled:" in targets, targets
    # No false failure: the link is up and decides alone (FDT is 2 s).
    stays(lambda: host.state("eth0") == "ok", 6, "eth0 stays ok without test addresses")
    assert "NIC failure detected on eth0" not in host.log()
    host.check_invariant(DATA)
    # Added back by hand: probing resumes, the address in the daemon's form.
    host.lab.run(["ip", "addr", "add", "192.0.2.21/24", "dev", "eth0"])
    host.lab.run(["ip", "addr", "add", f"{LINK_LOCAL0}/64", "dev", "eth0"])
    wait_for(lambda: TEST_NOW in host.log(), 5, "the guide's test-address-now line")
    wait_for(host.probing, 20, "every interface probing")

    def eth0_probes() -> set[str]:
        return {t["family"] for t in host.snapshot()["targets"] if t["interface"] == "eth0"}

    wait_for(lambda: eth0_probes() == {"inet", "inet6"}, 10, "eth0 probes in both families")
    kernel = [k for k in host.kernel() if k[2] == "192.0.2.21"]
    assert kernel == [("eth0", "inet", "192.0.2.21", 32)], kernel
    assert rules(host).count(("192.0.2.21", 10000 + index_of(host, "eth0"))) == 1
    assert "NIC failure detected on eth0" not in host.log()


def test_a_data_address_added_on_the_failed_nic_stays_once_and_fails_back(
    make_lab: Callable[[str], Lab],
) -> None:
    host = started(make_lab, topology_text("lab-active-active"))
    host.lab.set_cable("eth0", False)
    wait_for(lambda: host.holder("192.0.2.19") == "eth1", 3, "failover to eth1")
    # What networkd or a DHCP client does to a NIC it manages.
    host.lab.run(["ip", "addr", "add", "192.0.2.19/24", "dev", "eth0"])
    wait_for(lambda: host.holder("192.0.2.19") == "eth1", 5, "one copy, on eth1")
    assert "removed the copy from eth0" in host.log()
    host.check_invariant({"192.0.2.19": "eth1", "192.0.2.20": "eth1"})
    wait_for(lambda: host.answers_ping("192.0.2.19"), 3, "192.0.2.19 answers on eth1")
    host.lab.set_cable("eth0", True)
    wait_for(lambda: host.holder("192.0.2.19") == "eth0", 15, "failback to eth0")
    wait_for(lambda: host.answers_ping("192.0.2.19"), 3, "192.0.2.19 answers on eth0")
    host.check_invariant(DATA)


def test_a_data_address_deleted_by_hand_is_restored(make_lab: Callable[[str], Lab]) -> None:
    host = started(make_lab, topology_text("lab-active-active"))
    host.lab.run(["ip", "addr", "del", "192.0.2.20/24", "dev", "eth1"])
    wait_for(lambda: host.holder("192.0.2.20") == "eth1", 5, "192.0.2.20 restored on eth1")
    assert "Address 192.0.2.20/24 on eth1 was removed by another program; restored" in host.log()
    wait_for(lambda: host.answers_ping("192.0.2.20"), 3, "192.0.2.20 answers")
    host.check_invariant(DATA)


def test_nic_cycles_and_deleted_rules_leave_one_rule_per_test_address(
    make_lab: Callable[[str], Lab],
) -> None:
    lab = make_lab(topology_text("lab-active-active"))
    # A rule a crashed earlier run left behind.
    lab.run(["ip", "rule", "add", "from", "192.0.2.99", "lookup", "10999", "priority", "100"])
    host = RealHost(lab).start()
    wait_for(host.probing, 30, "every interface probing")
    wait_for(lambda: ("192.0.2.99", 10999) not in rules(host), 5, "the stale rule is removed")
    for cycle in range(5):
        host.lab.delete_nic("eth0")
        wait_for(lambda: host.holder("192.0.2.19") == "eth1", 5, f"cycle {cycle}: on eth1")
        host.lab.create_nic("eth0")
        wait_for(lambda: host.holder("192.0.2.19") == "eth0", 20, f"cycle {cycle}: failback")

    def one_each() -> bool:
        return Counter(rules(host)) == Counter(
            {
                ("192.0.2.21", 10000 + index_of(host, "eth0")): 1,
                ("192.0.2.22", 10000 + index_of(host, "eth1")): 1,
            }
        )

    wait_for(one_each, 5, f"exactly one rule per test address: {rules(host)}")
    # Someone deletes one: it is put back.
    table = 10000 + index_of(host, "eth1")
    host.lab.run(
        ["ip", "rule", "del", "from", "192.0.2.22", "lookup", str(table), "priority", "100"]
    )
    wait_for(one_each, 5, f"the deleted rule is back: {rules(host)}")
    assert f"Policy rule from 192.0.2.22 lookup {table} was missing" in host.log()
    wait_for(host.probing, 20, "every interface probing")
    host.check_invariant(DATA)
