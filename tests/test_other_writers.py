"""Other writers on the simulated host: addresses changed behind in.mpathd's back.

``ip addr``, a DHCP client or a network manager may delete or add addresses
on the group's interfaces.  The engine reconciles its table with each change
and says what it did (README, "Other writers"); all on virtual time.
"""

from __future__ import annotations

from collections import Counter

import pytest

from ipmp.core.errors import IpmpError
from ipmp.core.status import snapshot
from ipmp.daemon.simcontrol import apply_sim_command
from ipmp.sim.host import SimHost
from ipmp.sim.runner import VirtualRunner
from simtools import boot, logged, settle, where

NO_TEST = (
    "No test address configured on interface hme0; disabling probe-based failure detection on it"
)
TEST_NOW = (
    "Test address now configured on interface hme0; enabling probe-based failure detection on it"
)


def kernel_copies(runner: VirtualRunner, address: str) -> list[str]:
    """Every interface of the simulated kernel holding ``address`` up."""
    return [a.ifname for a in runner.host.addresses() if a.address == address and a.up]


def probe_state(runner: VirtualRunner, nic: str) -> tuple[str, str]:
    rows = {row["interface"]: row for row in snapshot(runner.engine)["interfaces"]}
    return str(rows[nic]["state"]), str(rows[nic]["probe"])


def test_a_deleted_test_address_disables_probing_instead_of_failing() -> None:
    runner = settle(boot("active-active"))
    runner.apply(lambda h, now: h.other_writer_delete("hme0", "inet", "192.168.85.21", now))
    assert logged(runner, "Test address 192.168.85.21/24 on hme0 was removed by another program")
    assert logged(runner, NO_TEST)
    # Probing of IPv4 stops; the link still works, so the NIC must not fail.
    assert runner.engine.probes[("hme0", "inet")].test_address is None
    runner.run_for(120)
    assert not logged(runner, "NIC failure detected on hme0")
    assert probe_state(runner, "hme0")[0] == "ok"
    assert where(runner, "192.168.85.19") == "hme0"
    # Added back: probing resumes with the guide's message.
    runner.apply(lambda h, now: h.other_writer_add("hme0", "inet", "192.168.85.21", 24, now))
    assert logged(runner, TEST_NOW)
    assert runner.engine.probes[("hme0", "inet")].test_address == "192.168.85.21"
    assert kernel_copies(runner, "192.168.85.21") == ["hme0"]
    runner.run_for(60)
    assert not logged(runner, "NIC failure detected on hme0")


def test_probing_disabled_on_both_families_shows_in_ipmpstat() -> None:
    runner = settle(boot("active-active"))
    link_local = runner.engine.probes[("hme0", "inet6")].test_address
    assert link_local is not None
    runner.apply(lambda h, now: h.other_writer_delete("hme0", "inet", "192.168.85.21", now))
    runner.apply(lambda h, now: h.other_writer_delete("hme0", "inet6", link_local, now))
    assert probe_state(runner, "hme0") == ("ok", "disabled")
    runner.run_for(60)
    assert probe_state(runner, "hme0") == ("ok", "disabled")


def test_a_probe_failed_nic_whose_test_address_goes_is_repaired_by_its_link() -> None:
    runner = settle(boot("active-active"))
    runner.apply(lambda h, now: h.set_port_drop("hme0", True, now))
    assert runner.run_until_true(lambda: probe_state(runner, "hme0")[0] == "failed", 30)
    runner.apply(lambda h, now: h.set_port_drop("hme0", False, now))
    link_local = runner.engine.probes[("hme0", "inet6")].test_address
    assert link_local is not None
    runner.apply(lambda h, now: h.other_writer_delete("hme0", "inet", "192.168.85.21", now))
    runner.apply(lambda h, now: h.other_writer_delete("hme0", "inet6", link_local, now))
    # Without a test address only the link can tell, and the link is up.
    assert probe_state(runner, "hme0")[0] == "ok"
    assert where(runner, "192.168.85.19") == "hme0"


def test_a_data_address_added_on_the_failed_nic_is_not_left_duplicated() -> None:
    runner = settle(boot("active-active"))
    runner.apply(lambda h, now: h.set_link("hme0", False, now))
    assert where(runner, "192.168.85.19") == "hme1:2"
    # networkd or a DHCP client configures the failed NIC again.
    runner.apply(lambda h, now: h.other_writer_add("hme0", "inet", "192.168.85.19", 24, now))
    assert kernel_copies(runner, "192.168.85.19") == ["hme1"]
    assert logged(runner, "removed the copy from hme0")
    assert logged(runner, "(hme0 is failed)")
    runner.apply(lambda h, now: h.set_link("hme0", True, now))
    assert runner.run_until_true(lambda: where(runner, "192.168.85.19") == "hme0", 60)
    assert kernel_copies(runner, "192.168.85.19") == ["hme0"]
    assert logged(runner, "Successfully failed back to NIC hme0")


def test_a_deleted_data_address_is_restored_where_it_lives() -> None:
    runner = settle(boot("active-active"))
    runner.apply(lambda h, now: h.other_writer_delete("hme1", "inet", "192.168.85.20", now))
    assert kernel_copies(runner, "192.168.85.20") == ["hme1"]
    assert logged(runner, "Address 192.168.85.20/24 on hme1 was removed by another program")
    assert any(t == runner.now for t, _ifname, a in runner.host.announcements if a.endswith(".20"))


def test_a_data_address_deleted_over_and_over_is_left_down_not_lost() -> None:
    runner = settle(boot("active-active"))
    for _ in range(3):
        runner.apply(lambda h, now: h.other_writer_delete("hme1", "inet", "192.168.85.20", now))
        runner.run_for(1)
    assert kernel_copies(runner, "192.168.85.20") == ["hme1"]
    runner.apply(lambda h, now: h.other_writer_delete("hme1", "inet", "192.168.85.20", now))
    assert kernel_copies(runner, "192.168.85.20") == []
    assert logged(runner, "leaving hme1 down (ifconfig hme1 up brings it back)")
    # Still in the configuration, down: nothing is silently lost.
    assert where(runner, "192.168.85.20") == "hme1"
    assert "UP" not in runner.ifconfig(["hme1"]).split("\n")[0]
    runner.ifconfig(["hme1", "up"])
    assert kernel_copies(runner, "192.168.85.20") == ["hme1"]


def test_a_foreign_address_on_a_member_is_left_alone_and_never_moved() -> None:
    runner = settle(boot("active-active"))
    runner.apply(lambda h, now: h.other_writer_add("hme0", "inet", "192.168.85.77", 24, now))
    assert logged(runner, "Address 192.168.85.77/24 on hme0 was added by another program")
    assert where(runner, "192.168.85.77") is None  # not adopted
    runner.apply(lambda h, now: h.set_link("hme0", False, now))
    assert where(runner, "192.168.85.19") == "hme1:2"
    # It is not in.mpathd's: it stays where its writer put it, once.
    assert kernel_copies(runner, "192.168.85.77") == ["hme0"]
    runner.apply(lambda h, now: h.set_link("hme0", True, now))
    assert runner.run_until_true(lambda: where(runner, "192.168.85.19") == "hme0", 60)
    assert Counter(kernel_copies(runner, "192.168.85.77")) == Counter(["hme0"])


def test_ipmp_sim_addr_commands() -> None:
    runner = settle(boot("active-active"))
    apply_sim_command(runner.host, ["addr", "del", "hme0", "192.168.85.21"], runner.now)
    runner.feed(runner.host.take_due(runner.now))
    assert logged(runner, NO_TEST)
    apply_sim_command(runner.host, ["addr", "add", "hme0", "192.168.85.21/24"], runner.now)
    runner.feed(runner.host.take_due(runner.now))
    assert logged(runner, TEST_NOW)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["addr", "add", "hme0", "192.168.85.50"], "expected ADDR/LEN"),
        (["addr", "del", "hme0", "192.168.85.50"], "192.168.85.50: not configured on hme0"),
        (["addr", "add", "hme0", "192.168.85.19/24"], "already configured on hme0"),
        (["addr", "add", "nosuch0", "192.168.85.50/24"], "nosuch0"),
        (["addr", "flush", "hme0", "x"], "expected add|del"),
    ],
)
def test_ipmp_sim_addr_refuses_bad_input(command: list[str], message: str) -> None:
    runner = settle(boot("active-active"), 5)
    before = runner.host.addresses()
    with pytest.raises(IpmpError, match=message):
        apply_sim_command(runner.host, command, runner.now)
    assert runner.host.addresses() == before
    assert isinstance(runner.host, SimHost)
