"""Each address family fails over on its own (issue 10, item 7), on the simulated host.

A dual-stack NIC whose only alternative is plumbed for one family: that
family's data addresses move, the other's stay and the daemon says so with the
guide's line (NICs That Were Missing at System Boot: "hme0 (couldn't move, no
alternative interface)").  Failback, FAILBACK=no, a one-family standby,
offline and DR detach follow; ``ipmpstat -a``/``-i`` must show it all right.
"""

from __future__ import annotations

import random

import pytest

from ipmp.core.actions import Log, RemoveAddress, UnplumbInterface
from ipmp.core.engine import Engine
from ipmp.core.errors import IpmpError
from ipmp.core.events import AddressesFound, FoundAddress
from ipmp.core.ipmpstat_format import render
from ipmp.core.persist import table_from_state, table_to_state
from ipmp.core.status import snapshot
from ipmp.sim.runner import VirtualRunner
from simtools import boot_text, logged, where

V4_DATA, V6_DATA = "192.168.85.19", "2001:db8::19"
STRANDED_V6 = (
    "moving addresses from failed IPv6 interfaces: hme0 (couldn't move, no alternative interface)"
)
STRANDED_V4 = (
    "moving addresses from failed IPv4 interfaces: hme0 (couldn't move, no alternative interface)"
)
FAILED_OVER = "Successfully failed over from NIC hme0 to NIC {}"

HEAD = """
[host]
name = "host1"
[mpathd]
text = "FAILURE_DETECTION_TIME=2000\\nFAILBACK={failback}\\n"
[[link]]
name = "net0"
  [[link.neighbour]]
  name = "router1"
  role = "router"
  address = "192.168.85.1"
  address6 = "fe80::1"
  [[link.neighbour]]
  name = "router2"
  role = "router"
  address = "192.168.85.2"
  address6 = "fe80::2"
"""

HME0 = """
[[nic]]
name = "hme0"
mac = "8:0:20:b9:19:fa"
link = "net0"
hostname = '''
192.168.85.19 netmask + broadcast + group test up \\
    addif 192.168.85.21 deprecated -failover netmask + broadcast + up
'''
hostname6 = '''
-failover group test up
addif 2001:db8::19/64 up
'''
"""

V4_ONLY = """
[[nic]]
name = "{name}"
mac = "{mac}"
link = "net0"
hostname = '''
{data}192.168.85.{test} deprecated -failover netmask + broadcast + {standby}group test up
'''
"""

V6_ONLY = """
[[nic]]
name = "{name}"
mac = "{mac}"
link = "net0"
hostname6 = '''
-failover group test up
addif 2001:db8::{data}/64 up
'''
"""


def v4_only(name: str = "hme1", standby: bool = False) -> str:
    # A standby holds only its test address (guide: How to Configure a Standby Interface).
    data = "" if standby else "192.168.85.20 netmask + broadcast + group test up \\\n    addif "
    return V4_ONLY.format(
        name=name,
        mac="8:0:20:b9:1b:fc",
        data=data,
        test=22,
        standby="standby " if standby else "",
    )


def v6_only(name: str = "hme1") -> str:
    return V6_ONLY.format(name=name, mac="8:0:20:b9:1c:fd", data=20)


def booted(*nics: str, failback: str = "yes") -> VirtualRunner:
    runner = boot_text(HEAD.format(failback=failback) + HME0 + "".join(nics))
    runner.run_for(45)
    return runner


def link(runner: VirtualRunner, name: str, up: bool) -> None:
    runner.apply(lambda h, now: h.set_link(name, up, now))


def rows(runner: VirtualRunner, mode: str) -> dict[str, list[str]]:
    """``ipmpstat -n<mode>`` rows by their first column (no column here is empty)."""
    out: dict[str, list[str]] = {}
    for line in render(snapshot(runner.engine), mode, numeric=True).splitlines()[1:]:
        fields = line.split()
        out[fields[0]] = fields[1:]
    return out


def test_ipv4_moves_and_ipv6_stays_with_the_guide_line() -> None:
    runner = booted(v4_only())
    assert runner.messages()[-1].startswith("NIC hme1 of group test is not plumbed for IPv6")
    link(runner, "hme0", False)
    assert where(runner, V4_DATA) == "hme1:2"
    assert where(runner, V6_DATA) == "hme0:1"
    assert runner.host.plumbed("hme1") == ("inet",)
    assert runner.host.ping(V4_DATA) == "hme1"
    assert runner.messages()[-3:] == [
        "NIC failure detected on hme0 of group test",
        FAILED_OVER.format("hme1"),
        STRANDED_V6,
    ]
    runner.run_for(60)  # three rescans: said once per failure, not every 20 s
    assert len(logged(runner, STRANDED_V6)) == 1
    # ipmpstat -a: the IPv4 address now comes in on hme1; the IPv6 one has no
    # working interface (hme1 sends no IPv6).
    addresses = rows(runner, "a")
    assert addresses[V4_DATA] == ["up", "test", "hme1", "hme1"]
    assert addresses[V6_DATA] == ["up", "test", "--", "--"]
    interfaces = rows(runner, "i")
    assert interfaces["hme0"][:1] + interfaces["hme0"][3:] == ["no", "down", "failed", "failed"]
    assert interfaces["hme1"][0] == "yes" and interfaces["hme1"][-1] == "ok"
    assert rows(runner, "g")["test"][1] == "degraded"


def test_failback_brings_ipv4_home_and_ipv6_never_left() -> None:
    runner = booted(v4_only())
    link(runner, "hme0", False)
    link(runner, "hme0", True)
    assert runner.run_until_true(lambda: where(runner, V4_DATA) == "hme0", 30) is not None
    assert where(runner, V6_DATA) == "hme0:1"
    assert runner.messages()[-2:] == [
        "NIC repair detected on hme0 of group test",
        "Successfully failed back to NIC hme0",
    ]
    addresses = rows(runner, "a")
    assert addresses[V4_DATA] == ["up", "test", "hme0", "hme0", "hme1"]
    assert addresses[V6_DATA] == ["up", "test", "hme0", "hme0"]
    # The next failure says it again.
    link(runner, "hme0", False)
    assert len(logged(runner, STRANDED_V6)) == 2


def test_failback_no_leaves_ipv4_on_the_sibling_and_hme0_active_for_ipv6() -> None:
    runner = booted(v4_only(), failback="no")
    link(runner, "hme0", False)
    link(runner, "hme0", True)
    runner.run_for(30)
    assert "NIC repair detected on hme0 of group test" in runner.messages()
    assert (where(runner, V4_DATA), where(runner, V6_DATA)) == ("hme1:2", "hme0:1")
    # hme0 carries IPv6 data: it is active, not INACTIVE.
    hme0 = runner.engine.table.nics["hme0"]
    assert not hme0.inactive
    assert rows(runner, "i")["hme0"][0:1] == ["yes"]
    assert rows(runner, "i")["hme0"][2].startswith("-")
    assert rows(runner, "a")[V6_DATA] == ["up", "test", "hme0", "hme0"]


def test_reverse_the_alternative_has_ipv6_only() -> None:
    runner = booted(v6_only())
    link(runner, "hme0", False)
    assert where(runner, V6_DATA) == "hme1:2"
    assert where(runner, V4_DATA) == "hme0"
    assert runner.messages()[-2:] == [FAILED_OVER.format("hme1"), STRANDED_V4]
    link(runner, "hme0", True)
    assert runner.run_until_true(lambda: where(runner, V6_DATA) == "hme0:1", 30) is not None
    assert where(runner, V4_DATA) == "hme0"


def test_one_alternative_per_family_leaves_nothing_behind() -> None:
    runner = booted(v4_only("hme1"), v6_only("hme2"))
    link(runner, "hme0", False)
    assert (where(runner, V4_DATA), where(runner, V6_DATA)) == ("hme1:2", "hme2:2")
    assert runner.messages()[-2:] == [FAILED_OVER.format("hme1"), FAILED_OVER.format("hme2")]
    assert not logged(runner, "couldn't move")
    assert runner.engine.counters["failovers"] == 1  # one failover, two destinations


def test_a_standby_with_ipv4_only_takes_ipv4() -> None:
    runner = booted(v4_only(standby=True))
    assert rows(runner, "i")["hme1"][2].startswith("is")  # INACTIVE standby
    link(runner, "hme0", False)
    assert (where(runner, V4_DATA), where(runner, V6_DATA)) == ("hme1:1", "hme0:1")
    assert runner.messages()[-2:] == [FAILED_OVER.format("hme1"), STRANDED_V6]
    assert rows(runner, "i")["hme1"][2].startswith("-s")  # active while it covers
    link(runner, "hme0", True)
    assert runner.run_until_true(lambda: where(runner, V4_DATA) == "hme0", 30) is not None
    runner.run_for(1)
    assert rows(runner, "i")["hme1"][2].startswith("is")


def test_a_stranded_family_moves_once_a_member_is_plumbed_for_it() -> None:
    runner = booted(v4_only())
    link(runner, "hme0", False)
    assert where(runner, V6_DATA) == "hme0:1"
    runner.execute(
        runner.engine.ifconfig(["hme1", "inet6", "plumb", "-failover", "up"], runner.now).actions
    )
    assert where(runner, V6_DATA) == "hme1:1"
    assert runner.messages()[-1] == FAILED_OVER.format("hme1")
    link(runner, "hme0", True)
    assert runner.run_until_true(
        lambda: (where(runner, V4_DATA), where(runner, V6_DATA)) == ("hme0", "hme0:1"), 30
    )


def test_offline_is_refused_while_a_family_cannot_move() -> None:
    runner = booted(v4_only())
    before = runner.engine.table.clone()
    with pytest.raises(IpmpError) as refused:
        runner.engine.offline("hme0", runner.now)
    assert "Offline failed as there is no other functional interface" in refused.value.message
    assert "IPv6" in refused.value.message
    assert runner.engine.table == before
    # hme1's own (IPv4) addresses can all go to hme0.
    runner.execute(runner.engine.offline("hme1", runner.now))
    assert where(runner, "192.168.85.20") == "hme0:2"


def test_offline_with_one_alternative_per_family() -> None:
    runner = booted(v4_only("hme1"), v6_only("hme2"))
    runner.execute(runner.engine.offline("hme0", runner.now))
    assert (where(runner, V4_DATA), where(runner, V6_DATA)) == ("hme1:2", "hme2:2")
    runner.execute(runner.engine.online("hme0", runner.now))
    assert (where(runner, V4_DATA), where(runner, V6_DATA)) == ("hme0", "hme0:1")


def test_dr_detach_per_family() -> None:
    runner = booted(v4_only())
    with pytest.raises(IpmpError, match="for its IPv6 data addresses"):
        runner.engine.dr_detach("hme0", False, runner.now)
    assert where(runner, V4_DATA) == "hme0"
    runner.execute(runner.engine.dr_detach("hme0", True, runner.now))
    assert where(runner, V4_DATA) == "hme1:2"
    assert STRANDED_V6 in runner.messages()
    assert ("hme1", V4_DATA) in [(a.ifname, a.address) for a in runner.host.addresses()]
    assert runner.host.ping(V4_DATA) == "hme1"


def test_restart_does_not_plumb_inet6_from_the_kernels_own_link_local() -> None:
    """Linux gives every NIC a link-local address: after a restart that must not
    make hme1 plumbed for inet6 (adopted, or unplumbed and the address deleted)."""
    runner = booted(v4_only())
    link(runner, "hme0", False)
    saved = table_from_state(table_to_state(runner.engine.table))
    engine = Engine(runner.engine.config, random.Random(2))
    kernel_own = FoundAddress("hme1", "inet6", 0, "fe80::a00:20ff:feb9:1bfc", 10, "", True, False)
    for event in runner.host.start(runner.now):
        if isinstance(event, AddressesFound):
            event = AddressesFound(
                event.now,
                (*event.plumbed, ("hme1", "inet6")),
                (*event.addresses, kernel_own),
            )
        engine.handle(event)
    actions = engine.restore(saved, [], runner.now)
    assert sorted(engine.table.nics["hme1"].instances) == ["inet"]
    assert not [a for a in actions if isinstance(a, Log) and "adopted" in a.message]
    assert not [a for a in actions if isinstance(a, RemoveAddress) and a.ifname == "hme1"]
    assert not [a for a in actions if isinstance(a, UnplumbInterface) and a.name == "hme1"]
    assert engine.table.nics["hme0"].failed
    assert [li.address for li in engine.table.nics["hme0"].addresses() if li.is_data] == [V6_DATA]


def test_outbound_spreading_uses_only_members_plumbed_for_the_family() -> None:
    runner = booted(v4_only())
    spread = runner.host.spreading
    assert spread[("inet", "192.168.85.0/24")] == ("hme0", "hme1")
    assert spread[("inet6", "2001:db8::/64")] == ("hme0",)
    link(runner, "hme0", False)
    # Nobody sends IPv6 now: hme1 is not plumbed for it.
    assert runner.host.spreading.get(("inet6", "2001:db8::/64"), ()) == ()
    assert runner.host.spreading[("inet", "192.168.85.0/24")] == ("hme1",)


def test_a_running_member_is_not_passed_over_for_a_failed_one_that_takes_both() -> None:
    """to_any: a failed member plumbed for both families is only the last resort."""
    from ipmp.core.failover import choose_destinations
    from ipmp.core.model import HostTable, Instance, LogicalInterface, Nic

    def nic(name: str, families: tuple[str, ...], failed: bool = False) -> Nic:
        member = Nic(name, group="g", failed=failed)
        for family in families:
            member.instances[family] = Instance(family)  # type: ignore[index,arg-type]
        return member

    src = nic("hme0", ("inet", "inet6"), failed=True)
    src.instances["inet"].units[0] = LogicalInterface("inet", 0, "192.0.2.19", 24, 0x1, "hme0", 0)
    src.instances["inet6"].units[1] = LogicalInterface(
        "inet6", 1, "2001:db8::19", 64, 0x1, "hme0", 1
    )
    v4_only = nic("hme1", ("inet",))
    both_failed = nic("hme2", ("inet", "inet6"), failed=True)
    table = HostTable({n.name: n for n in (src, v4_only, both_failed)})
    chosen = choose_destinations(table, src, "to_any")
    assert {fam: dst.name if dst else None for fam, dst in chosen.items()} == {
        "inet": "hme1",
        "inet6": "hme2",
    }
