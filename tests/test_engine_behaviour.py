"""Engine behaviour beyond detection: targets, groups, standby, FAILBACK=no,
missing NICs, VLANs, untracked interfaces (guide chapters 30 and 31)."""

from __future__ import annotations

from pathlib import Path

from ipmp.core.probing import TargetState
from ipmp.sim.examples import example_path
from ipmp.sim.runner import VirtualRunner
from simtools import RecordingHost, boot, boot_text, logged, settle, where

HOSTS_ONLY = """
[host]
name = "h"
[[link]]
name = "net0"
  [[link.neighbour]]
  name = "h1"
  role = "host"
  address = "192.168.85.101"
  [[link.neighbour]]
  name = "h2"
  role = "host"
  address = "192.168.85.102"
  [[link.neighbour]]
  name = "h3"
  role = "host"
  address = "192.168.85.103"
[[nic]]
name = "hme0"
mac = "8:0:20:0:0:1"
link = "net0"
hostname = '''
192.168.85.19 netmask + broadcast + group test up \\
    addif 192.168.85.21 deprecated -failover netmask + broadcast + up
'''
[[nic]]
name = "hme1"
mac = "8:0:20:0:0:2"
link = "net0"
hostname = '''
192.168.85.20 netmask + broadcast + group test up \\
    addif 192.168.85.22 deprecated -failover netmask + broadcast + up
'''
"""


def _targets(runner: object, nic: str, family: str = "inet") -> list[str]:
    inst = runner.engine.probes[(nic, family)]  # type: ignore[attr-defined]
    return [t.address for t in inst.targets]


def test_routers_are_targets_and_host_routes_come_first() -> None:
    runner = settle(boot("active-active"))
    assert _targets(runner, "hme0") == ["192.168.85.1", "192.168.85.2"]
    assert _targets(runner, "hme0", "inet6") == ["fe80::1", "fe80::2"]
    from ipmp.core.events import Route

    # guide: route add -host 192.168.85.137 192.168.85.137 -static
    runner.apply(
        lambda host, now: host.add_route(Route("inet", "192.168.85.137", 32, "192.168.85.137"), now)
    )
    assert _targets(runner, "hme0")[0] == "192.168.85.137"
    assert _targets(runner, "hme1")[0] == "192.168.85.137"


def test_hosts_found_by_all_hosts_probe_when_no_router() -> None:
    runner = settle(boot_text(HOSTS_ONLY))
    found = _targets(runner, "hme0")
    assert sorted(found) == ["192.168.85.101", "192.168.85.102", "192.168.85.103"]
    assert not runner.engine.probes[("hme0", "inet")].targets_are_routers


def test_all_targets_silent_is_a_group_failure_with_flush_and_rediscovery() -> None:
    runner = settle(boot_text(HOSTS_ONLY))
    for name in ("h1", "h2", "h3"):
        runner.host.set_neighbour(name, False, runner.now)
    failed = runner.run_until_true(lambda: runner.engine.groups["test"].failed, 30)
    assert failed is not None
    assert logged(runner, "All Interfaces in group test have failed")
    assert not logged(runner, "Successfully failed over")
    assert where(runner, "192.168.85.19") == "hme0"  # no failover
    assert where(runner, "192.168.85.20") == "hme1"
    # Host targets were flushed; discovery goes on with all-hosts probes.
    assert _targets(runner, "hme0") == [] and _targets(runner, "hme1") == []
    runner.host.set_neighbour("h2", True, runner.now)
    healed = runner.run_until_true(
        lambda: not any(runner.engine.table.nics[n].failed for n in ("hme0", "hme1")), 60
    )
    assert healed is not None
    assert _targets(runner, "hme0") == ["192.168.85.102"]
    assert logged(runner, "At least 1 interface")
    assert where(runner, "192.168.85.19") == "hme0"


def test_one_dead_target_is_retired_not_the_nic() -> None:
    runner = settle(boot("active-active"))
    runner.host.set_neighbour("router1", False, runner.now)
    runner.run_for(60)
    assert not runner.engine.table.nics["hme0"].failed
    inst = runner.engine.probes[("hme0", "inet")]
    states = {t.address: t.state for t in inst.targets}
    assert states["192.168.85.1"] is TargetState.DEAD
    assert states["192.168.85.2"] is TargetState.ACTIVE


def test_standby_takes_over_and_goes_back_to_inactive() -> None:
    runner = settle(boot("active-standby"))
    hme1 = runner.engine.table.nics["hme1"]
    assert hme1.standby and hme1.inactive
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    assert where(runner, "192.168.85.19") == "hme1:1"
    assert not runner.engine.table.nics["hme1"].inactive  # cleared on takeover
    runner.apply(lambda host, now: host.set_link("hme0", True, now))
    assert runner.run_until_true(lambda: not runner.engine.table.nics["hme0"].failed, 60)
    assert where(runner, "192.168.85.19") == "hme0"
    assert runner.engine.table.nics["hme1"].inactive


THREE = """
[host]
name = "h"
[[link]]
name = "net0"
  [[link.neighbour]]
  name = "r1"
  role = "router"
  address = "192.168.85.1"
  [[link.neighbour]]
  name = "r2"
  role = "router"
  address = "192.168.85.2"
[[nic]]
name = "hme0"
mac = "8:0:20:0:0:1"
link = "net0"
hostname = '''
192.168.85.19 netmask + broadcast + group test up \\
    addif 192.168.85.23 netmask + broadcast + up \\
    addif 192.168.85.21 deprecated -failover netmask + broadcast + up
'''
[[nic]]
name = "hme1"
mac = "8:0:20:0:0:2"
link = "net0"
hostname = '''
192.168.85.20 netmask + broadcast + group test up \\
    addif 192.168.85.24 netmask + broadcast + up \\
    addif 192.168.85.22 deprecated -failover netmask + broadcast + up
'''
[[nic]]
name = "hme2"
mac = "8:0:20:0:0:3"
link = "net0"
hostname = '''
192.168.85.30 netmask + broadcast + group test up \\
    addif 192.168.85.32 deprecated -failover netmask + broadcast + up
'''
"""


def test_failover_goes_to_the_member_with_fewest_data_addresses() -> None:
    runner = settle(boot_text(THREE))
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    # hme1 has two UP data addresses, hme2 one: hme2 takes over.
    assert where(runner, "192.168.85.19") == "hme2:2"
    assert where(runner, "192.168.85.23") == "hme2:3"
    assert logged(runner, "Successfully failed over from NIC hme0 to NIC hme2")


def test_failback_no_makes_the_repaired_nic_inactive_and_first_choice() -> None:
    runner = settle(boot_text(THREE, failback=False))
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    runner.apply(lambda host, now: host.set_link("hme0", True, now))
    assert runner.run_until_true(lambda: not runner.engine.table.nics["hme0"].failed, 60)
    hme0 = runner.engine.table.nics["hme0"]
    assert hme0.inactive
    assert where(runner, "192.168.85.19") == "hme2:2"  # no failback
    assert not logged(runner, "Successfully failed back")
    # guide: "If the ce1 interface fails, the addresses on ce1 are migrated back
    # to ce0, whose INACTIVE flag is then cleared" -- even though hme1 has fewer.
    runner.apply(lambda host, now: host.set_link("hme2", False, now))
    assert where(runner, "192.168.85.19") in {"hme0", "hme0:2", "hme0:3"}
    assert where(runner, "192.168.85.30") is not None
    assert where(runner, "192.168.85.30").startswith("hme0")  # type: ignore[union-attr]
    assert not runner.engine.table.nics["hme0"].inactive


def test_missing_nic_at_boot_is_hosted_elsewhere_and_recovers_when_plugged() -> None:
    runner = settle(boot("missing-at-boot"))
    assert logged(runner, "moving addresses from failed IPv4 interfaces: hme0 (moved to hme1)")
    assert where(runner, "192.168.85.19") == "hme1:2"
    assert runner.host.ping("192.168.85.19") == "hme1"
    runner.apply(lambda host, now: host.plug("hme0", now))
    done = runner.run_until_true(lambda: where(runner, "192.168.85.19") == "hme0", 60)
    assert done is not None
    assert runner.host.ping("192.168.85.19") == "hme0"
    assert where(runner, "192.168.85.21") == "hme0:1"  # its test address, from the file


def test_unplugged_nic_loses_nothing() -> None:
    runner = settle(boot("active-active"))
    runner.apply(lambda host, now: host.unplug("hme0", now))
    assert logged(runner, "inet hme0 has been removed from kernel")
    assert runner.host.ping("192.168.85.19") == "hme1"
    runner.apply(lambda host, now: host.plug("hme0", now))
    done = runner.run_until_true(lambda: runner.host.ping("192.168.85.19") == "hme0", 60)
    assert done is not None
    assert runner.host.ping("192.168.85.21") == "hme0"


def test_vlan_cable_pull_fails_every_vlan_on_the_device() -> None:
    runner = settle(boot("vlans"))
    runner.apply(lambda host, now: host.set_link("bge0", False, now))
    nics = runner.engine.table.nics
    assert nics["bge0"].failed and nics["bge1000"].failed
    assert not nics["bge1"].failed and not nics["bge1001"].failed
    assert where(runner, "192.168.85.19") == "bge1:2"
    assert where(runner, "192.168.86.19") == "bge1001:2"


def test_vlan_probing_is_per_vlan() -> None:
    runner = settle(boot("vlans"))
    for name in ("router1", "router2"):
        runner.host.set_neighbour(name, False, runner.now)
    runner.run_for(30)
    nics = runner.engine.table.nics
    # The untagged link lost its targets: a group failure there, VLAN 1 unaffected.
    assert runner.engine.groups["untagged"].failed
    assert not runner.engine.groups["vlan1"].failed
    assert not nics["bge1000"].failed and not nics["bge1001"].failed


def test_untracked_interfaces_are_watched_when_tracking_all() -> None:
    text = HOSTS_ONLY.replace(" group test", "").replace(
        "[[link.neighbour]]", "[[link.neighbour]]", 1
    )
    runner = settle(boot_text(text, track_interfaces_only_with_groups=False))
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    assert logged(runner, "NIC failure detected on hme0")
    assert where(runner, "192.168.85.19") == "hme0"  # nothing moves
    runner.apply(lambda host, now: host.set_link("hme0", True, now))
    assert runner.run_until_true(lambda: not runner.engine.table.nics["hme0"].failed, 60)
    assert logged(runner, "NIC repair detected on hme0")


def test_untracked_interfaces_are_ignored_by_default() -> None:
    text = HOSTS_ONLY.replace(" group test", "")
    runner = settle(boot_text(text))
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    assert not logged(runner, "NIC failure detected")
    assert runner.engine.probes == {}


def test_single_interface_group_detects_but_cannot_move() -> None:
    runner = settle(boot("single-interface"))
    assert runner.engine.probes[("hme0", "inet")].test_address == "192.168.85.19"
    runner.apply(lambda host, now: host.set_port_drop("hme0", True, now))
    assert runner.run_until_true(lambda: runner.engine.table.nics["hme0"].failed, 30)
    assert logged(runner, "NIC failure detected on hme0 of group v4test")
    assert where(runner, "192.168.85.19") == "hme0"


def test_dual_stack_ipv6_data_addresses_fail_over_too() -> None:
    runner = settle(boot("dual-stack"))
    v6 = [li.address for li in runner.engine.table.nics["hme0"].addresses("inet6") if li.is_data]
    assert v6
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    for address in v6:
        assert (where(runner, address) or "").startswith("hme1")
        assert runner.host.ping(address) == "hme1"


SPLIT_FAMILIES = """
[host]
name = "h"
[[link]]
name = "net0"
  [[link.neighbour]]
  name = "r4"
  role = "router"
  address = "192.168.85.1"
  [[link.neighbour]]
  name = "r6"
  role = "router"
  address6 = "fe80::1"
[[nic]]
name = "hme0"
mac = "8:0:20:0:0:1"
link = "net0"
hostname = '''192.168.85.19 netmask + broadcast + group test up \\
    addif 192.168.85.21 deprecated -failover up'''
hostname6 = "-failover group test up"
[[nic]]
name = "hme1"
mac = "8:0:20:0:0:2"
link = "net0"
hostname = '''192.168.85.20 netmask + broadcast + group test up \\
    addif 192.168.85.22 deprecated -failover up'''
hostname6 = "-failover group test up"
"""


def test_dual_stack_failure_needs_both_families_to_agree() -> None:
    runner = settle(boot_text(SPLIT_FAMILIES))
    # facts §1.4: with IPv4 and IPv6 test addresses both must see 5 losses.
    runner.host.set_neighbour("r4", False, runner.now)
    runner.run_for(30)
    assert not runner.engine.table.nics["hme0"].failed
    assert not runner.engine.groups["test"].failed
    runner.apply(lambda host, now: host.set_port_drop("hme0", True, now))
    assert runner.run_until_true(lambda: runner.engine.table.nics["hme0"].failed, 30)
    assert where(runner, "192.168.85.19") == "hme1:2"


def test_slow_targets_raise_fdt_and_fast_ones_lower_it_again() -> None:
    runner = settle(boot("active-active", failure_detection_time_ms=1000))
    group = runner.engine.groups["test"]
    assert (group.fdt_ms, group.interval_ms) == (1000, 142)
    for name in ("router1", "router2", "host137"):
        runner.host.set_neighbour_rtt(name, 400.0, runner.now)
    raised = runner.run_until_true(lambda: group.fdt_ms > 1000, 30)
    assert raised is not None
    cannot = [r.message for r in runner.logs if r.message.startswith("Cannot meet")]
    assert cannot, "no FDT raise was logged"
    assert cannot[0].startswith("Cannot meet requested failure detection time of 1000 ms on (")
    assert f'new failure detection time for group "test" is {group.fdt_ms} ms' in cannot[-1]
    # Slow but answering targets are not failures.
    assert not runner.engine.table.nics["hme0"].failed
    for name in ("router1", "router2", "host137"):
        runner.host.set_neighbour_rtt(name, 0.5, runner.now)
    # Lowered only after MIN_SETTLING_TIME (60 s), halving towards the user's FDT.
    lowered = runner.run_until_true(lambda: group.fdt_ms == 1000, 600)
    assert lowered is not None
    improved = [r for r in runner.logs if r.message.startswith("Improved failure detection time")]
    assert improved
    assert improved[0].time - raised >= 60
    assert improved[-1].message.endswith('for group "test"')
    assert group.interval_ms == 142


def test_restore_of_a_consistent_kernel_changes_nothing() -> None:
    import random

    from ipmp.core.actions import AnnounceAddress, Log, SendProbe
    from ipmp.core.engine import Engine
    from ipmp.core.persist import table_from_state, table_to_state

    runner = settle(boot("active-standby"))
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    saved = table_from_state(table_to_state(runner.engine.table))
    engine = Engine(runner.engine.config, random.Random(2))
    for event in runner.host.start(runner.now):
        engine.handle(event)
    actions = engine.restore(saved, [], runner.now)
    kernel = [a for a in actions if not isinstance(a, Log | SendProbe | AnnounceAddress)]
    # No address changes: only the member settings and the spreading routes
    # (idempotent replaces) are asserted again after a restart.
    assert [type(a).__name__ for a in kernel] == [
        "PrepareInterface",
        "PrepareInterface",
        "SpreadOutbound",
    ]
    # The neighbours hear again where each data address is: a crash may have
    # lost the announcements of the last moves (found by crash_safety.py).
    told = {(a.ifname, a.address) for a in actions if isinstance(a, AnnounceAddress)}
    data = {
        (nic.name, li.address)
        for nic in engine.table.nics.values()
        for li in nic.addresses()
        if li.is_data and li.up
    }
    assert told == data and ("hme1", "192.168.85.19") in told
    assert runner.host.spreading == {("inet", "192.168.85.0/24"): ("hme1",)}
    assert engine.table.nics["hme0"].failed
    assert where(runner, "192.168.85.19") == "hme1:1"


def test_explicit_targets_from_mpathd_come_first() -> None:
    # An extension for Linux (README): TARGETS= in /etc/default/mpathd.
    runner = settle(boot_text(HOSTS_ONLY, targets=("192.168.85.102", "10.9.9.9")))
    # Off-subnet entries are ignored; the explicit target is a fixed (router-like) one.
    assert _targets(runner, "hme0") == ["192.168.85.102"]
    assert runner.engine.probes[("hme0", "inet")].targets_are_routers


NO_TARGETS = """
[host]
name = "h"
[[link]]
name = "net0"
  [[link.neighbour]]
  name = "quiet"
  role = "host"
  address = "192.168.85.101"
  answers_multicast = false
[[nic]]
name = "hme0"
mac = "8:0:20:0:0:1"
link = "net0"
hostname = '''
192.168.85.19 netmask + broadcast + group test up \\
    addif 192.168.85.21 deprecated -failover netmask + broadcast + up
'''
"""


def test_no_targets_is_said_loudly_and_the_return_too() -> None:
    runner = boot_text(NO_TARGETS)
    runner.run_for(45)
    assert logged(
        runner,
        "No probe targets found on (inet hme0); probe-based failure detection is not working",
    )
    from ipmp.core.events import Route

    runner.apply(
        lambda host, now: host.add_route(Route("inet", "0.0.0.0", 0, "192.168.85.101"), now)
    )
    runner.run_for(25)
    assert logged(runner, "Probe targets found on (inet hme0); probing resumes")


def test_multicast_memberships_follow_the_address() -> None:
    # guide: "Multicast memberships that are associated with 192.168.85.19 can
    # still receive packets, but they now receive packets through hme1."
    runner = settle(boot("active-active"))
    runner.host.join("192.168.85.19", "224.1.2.3")
    assert runner.host.multicast_receivers("224.1.2.3") == {"hme0"}
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    assert runner.host.multicast_receivers("224.1.2.3") == {"hme1"}
    runner.apply(lambda host, now: host.set_link("hme0", True, now))
    assert runner.run_until_true(lambda: where(runner, "192.168.85.19") == "hme0", 60)
    assert runner.host.multicast_receivers("224.1.2.3") == {"hme0"}


def test_member_settings_come_before_the_addresses_at_boot() -> None:
    # A member's arp_ignore must be set before its addresses come up, or a
    # sibling answers ARP for them meanwhile (found on the real lab).
    import random

    from ipmp.core.actions import AddAddress, PrepareInterface
    from ipmp.core.engine import Engine

    runner = boot("active-active")
    engine = Engine(runner.engine.config, random.Random(3))
    for event in runner.host.start(0.0):
        engine.handle(event)
    files = list(runner.engine.files.values())
    actions = engine.boot(files, 0.0)
    kinds = [a for a in actions if isinstance(a, PrepareInterface | AddAddress)]
    prepared = [a.ifname for a in kinds if isinstance(a, PrepareInterface)]
    assert sorted(prepared) == ["hme0", "hme1"]
    first_add = next(i for i, a in enumerate(kinds) if isinstance(a, AddAddress))
    assert all(isinstance(a, PrepareInterface) for a in kinds[:first_add])
    assert first_add == 2


def test_table_clone_is_equal_and_shares_nothing_mutable() -> None:
    import copy

    runner = settle(boot("dual-stack"))
    table = runner.engine.table
    clone = table.clone()
    assert clone == copy.deepcopy(table)
    for name, nic in table.nics.items():
        twin = clone.nics[name]
        assert twin is not nic and twin.modules is not nic.modules
        assert twin.instances is not nic.instances
        for family, inst in nic.instances.items():
            assert twin.instances[family] is not inst
            assert twin.instances[family].units is not inst.units
            for unit, li in inst.units.items():
                assert twin.instances[family].units[unit] is not li
    # A change to the clone leaves the original alone (the rollback relies on it).
    hme0 = clone.nics["hme0"]
    hme0.modules.append("x")
    next(iter(hme0.instances["inet"].units.values())).flags = 0
    assert table != clone
    assert "x" not in table.nics["hme0"].modules


def test_mass_move_fills_the_lowest_free_units_in_order() -> None:
    runner = settle(boot("active-active"))
    for number in range(40, 60):
        runner.ifconfig(["hme0", "addif", f"192.168.85.{number}", "up"])
    runner.ifconfig(["hme1", "addif", "192.168.85.70", "up"])  # hme1:2 is taken
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    units = sorted(runner.engine.table.nics["hme1"].instances["inet"].units)
    assert units == list(range(0, len(units)))  # no gap: each move took the lowest free unit
    assert where(runner, "192.168.85.19") == "hme1:3"  # hme0 unit 0 first, then its addifs
    assert where(runner, "192.168.85.40") == "hme1:4"


def _host_route_137(runner: object) -> None:
    from ipmp.core.events import Route

    # guide: route add -host 192.168.85.137 192.168.85.137 -static
    runner.apply(  # type: ignore[attr-defined]
        lambda host, now: host.add_route(Route("inet", "192.168.85.137", 32, "192.168.85.137"), now)
    )


def test_after_a_repair_every_target_is_probed_again_at_once() -> None:
    # facts §2: a target is dead when it is silent while the NIC is fine; while
    # the NIC is failed all are silent, and none may be retired then (a host
    # route target used to be left out for 60-90 s after the repair).
    runner = settle(boot("active-active"))
    _host_route_137(runner)
    runner.run_for(30)
    targets = ["192.168.85.137", "192.168.85.1", "192.168.85.2"]
    assert _targets(runner, "hme0") == targets
    recorder = RecordingHost(runner)
    runner.apply(lambda h, now: h.set_port_drop("hme0", True, now))
    assert runner.run_until_true(lambda: runner.engine.table.nics["hme0"].failed, 30)
    runner.run_for(20)
    runner.apply(lambda h, now: h.set_port_drop("hme0", False, now))
    repaired = runner.run_until_true(lambda: not runner.engine.table.nics["hme0"].failed, 60)
    assert repaired is not None
    inst = runner.engine.probes[("hme0", "inet")]
    assert {t.address: t.state for t in inst.targets} == dict.fromkeys(targets, TargetState.ACTIVE)
    runner.run_for(5)  # more than 3 probe intervals (FAILURE_DETECTION_TIME 10 s)
    probed = {
        probe.target
        for at, probe in recorder.sent
        if at >= repaired and probe.ifname == "hme0" and probe.family == "inet"
    }
    assert probed == set(targets)


def test_a_target_that_dies_while_the_nic_is_failed_does_not_stop_the_repair() -> None:
    # facts §1.4: a repair is 10 answers in a row across the targets, or from
    # the current target alone; the dead one is retired once the NIC works.
    runner = settle(boot("active-active"))
    runner.apply(lambda h, now: h.set_port_drop("hme0", True, now))
    assert runner.run_until_true(lambda: runner.engine.table.nics["hme0"].failed, 30)
    runner.host.set_neighbour("router1", False, runner.now)
    runner.run_for(20)
    runner.apply(lambda h, now: h.set_port_drop("hme0", False, now))
    assert runner.run_until_true(lambda: not runner.engine.table.nics["hme0"].failed, 60)
    runner.run_for(15)
    assert not runner.engine.table.nics["hme0"].failed
    inst = runner.engine.probes[("hme0", "inet")]
    states = {t.address: t.state for t in inst.targets}
    assert states == {"192.168.85.1": TargetState.DEAD, "192.168.85.2": TargetState.ACTIVE}


def test_runner_on_a_root_reads_an_edited_file_when_a_nic_appears(tmp_path: Path) -> None:
    # The virtual-time runner (and ``ipmp ifconfig --sim --root``) reads the
    # hostname files under its root when a NIC appears, as the daemon does.
    runner = VirtualRunner.from_root(example_path("missing-at-boot"), tmp_path)
    runner.run_for(45)
    path = tmp_path / "etc" / "hostname.hme0"
    path.write_text(
        path.read_text(encoding="utf-8") + "addif 192.168.85.40 netmask + broadcast + up\n",
        encoding="utf-8",
    )
    runner.apply(lambda host, now: host.plug("hme0", now))
    assert runner.run_until_true(lambda: not runner.engine.table.nics["hme0"].failed, 180)
    assert where(runner, "192.168.85.40") == "hme0:2"
    assert where(runner, "192.168.85.19") == "hme0"


def test_without_a_file_reader_an_attached_nic_gets_the_files_read_at_boot() -> None:
    runner = boot("missing-at-boot")
    runner.driver.read_files = None  # a driver built without one
    runner.run_for(45)
    runner.apply(lambda host, now: host.plug("hme0", now))
    assert (
        "hme0: hostname files not read (no configuration files to read here); using those of boot"
    ) in runner.messages()
    assert runner.run_until_true(lambda: not runner.engine.table.nics["hme0"].failed, 180)
    assert where(runner, "192.168.85.19") == "hme0"
    assert where(runner, "192.168.85.21") == "hme0:1"
