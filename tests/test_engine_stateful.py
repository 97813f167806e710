"""Stateful property test of the engine on the simulated host (DESIGN.md: "The invariant
every reliability test checks").

A hypothesis ``RuleBasedStateMachine`` boots one of three topologies (the guide's
active-active and active-standby examples, and a three-NIC dual-stack group with a
standby that is not plumbed for IPv6), with FAILBACK yes or no and a short or the
default failure detection time, then applies random steps:

* faults on the simulated host: cable pulls and plugs, silent switch-port drops,
  partial probe loss, probe targets going down and up, NIC unplug and plug (DR);
* virtual time passing (0.1 to 30 s);
* administrator commands through ``ifconfig`` (standby / -standby, leaving, joining
  and changing the group, addif / removeif of data and test addresses, -failover /
  failover / up / down on the logical interfaces that exist), and ``if_mpadm -d`` /
  ``-r`` (offline, undo offline), including requests that must be refused: a refused
  request must leave the engine's table and the kernel exactly as they were;
* ``settle``: every fault healed, then at most 90 quiet seconds within which the group
  must have fully converged (guide: Detecting Physical Interface Repairs; FAILBACK).

After every step the invariants below are checked; each helper says in its docstring
which statement of the guide, the facts or DESIGN.md it enforces.  The machine keeps
its own model of what the administrator configured (every address with its UP,
DEPRECATED and NOFAILOVER flags, the NIC it belongs to and, for a test address, the
NIC it must stay on), updated only by accepted requests, so a lost, duplicated or
altered address is caught however the engine got there.

The engine bugs the machine found have deterministic regression tests at the end of
the file; see ``KNOWN_BUGS`` for how an open one is parked.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from ipaddress import ip_address
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ipmp.core.constants import IF_SCAN_INTERVAL, NUM_PROBE_FAILS
from ipmp.core.errors import IpmpError
from ipmp.core.failover import choose_destinations
from ipmp.core.ifconfig_grammar import AddIf, SetAddress
from ipmp.core.model import UNSPECIFIED, HostTable, LogicalInterface, Nic
from ipmp.core.probing import ProbeInstance
from ipmp.core.types import FAMILIES, Family
from ipmp.sim.host import SimHost
from ipmp.sim.runner import VirtualRunner
from ipmp.sim.topology import Topology, parse_topology
from simtools import boot, topology

# ---------------------------------------------------------------------------
# Topologies

THREE_NIC = """
[host]
name = "host3"
seed = 3

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
  [[link.neighbour]]
  name = "host137"
  role = "host"
  address = "192.168.85.137"

[[nic]]
name = "hme0"
mac = "8:0:20:0:0:1"
link = "net0"
hostname = '''
192.168.85.19 netmask + broadcast + group test up \\
    addif 192.168.85.23 netmask + broadcast + up \\
    addif 192.168.85.21 deprecated -failover netmask + broadcast + up
'''
hostname6 = '''
-failover group test up
addif 2001:db8::19/64 up
'''

[[nic]]
name = "hme1"
mac = "8:0:20:0:0:2"
link = "net0"
hostname = '''
192.168.85.20 netmask + broadcast + group test up \\
    addif 192.168.85.22 deprecated -failover netmask + broadcast + up
'''
hostname6 = '''
-failover group test up
'''

# A standby plumbed for IPv4 only: it cannot take hme0's IPv6 data address, so
# hme0's failover must pick hme1 (facts 4.2: members lacking a family are skipped).
[[nic]]
name = "hme2"
mac = "8:0:20:0:0:3"
link = "net0"
hostname = '''
192.168.85.32 netmask + broadcast + deprecated group test -failover standby up
'''
"""


def _three_nic() -> Topology:
    return parse_topology(THREE_NIC, "<three-nic>")


TOPOLOGIES: dict[str, Callable[[], Topology]] = {
    "active-active": lambda: topology("active-active"),
    "active-standby": lambda: topology("active-standby"),
    "three-nic": _three_nic,
}

POOL = ["192.168.85.40", "192.168.85.41", "192.168.85.42"]
"""Addresses the machine may add and remove (a small pool, so collisions happen)."""

KNOWN = [
    *POOL,
    "192.168.85.19",
    "192.168.85.20",
    "192.168.85.21",
    "192.168.85.22",
    "192.168.85.23",
    "192.168.85.32",
]

SETTLE_SECONDS = 90.0
"""Quiet time after healing within which everything must be back."""

SETTLE_EVERY = 6
"""Steps between two settles (settling is the costly step)."""

Key = tuple[Family, str]


# ---------------------------------------------------------------------------
# The administrator's configuration, as the machine models it


@dataclass(frozen=True)
class Configured:
    """What the administrator configured for one address.

    ``home`` is the NIC the address belongs to (Solaris: its original interface): a
    data address returns there on failback.  ``at`` is where a test address must
    stay: where it was configured, or where it sat when ``-failover`` made it one
    (facts 4.3: NOFAILOVER addresses are never moved back).
    """

    up: bool
    deprecated: bool
    nofailover: bool
    home: str
    at: str
    link_local: bool = False

    @property
    def is_data(self) -> bool:
        return not (self.nofailover or self.link_local)


def _real(li: LogicalInterface) -> bool:
    return not (li.placeholder or li.unspecified)


def _placed(table: HostTable) -> dict[Key, list[tuple[Nic, LogicalInterface]]]:
    """Every real address of the table with the NIC(s) holding it (absent NICs too)."""
    out: dict[Key, list[tuple[Nic, LogicalInterface]]] = {}
    for nic in table.ordered():
        for li in nic.addresses():
            if _real(li):
                out.setdefault((li.family, li.address), []).append((nic, li))
    return out


def _configured_from(table: HostTable) -> dict[Key, Configured]:
    return {
        key: Configured(li.up, li.deprecated, li.nofailover, li.home, nic.name, li.link_local)
        for key, [(nic, li)] in _placed(table).items()
    }


def _label(nic: Nic, li: LogicalInterface) -> str:
    return nic.name if li.unit == 0 else f"{nic.name}:{li.unit}"


def _data_families(nic: Nic) -> set[Family]:
    return {li.family for li in nic.addresses() if li.is_data}


def _probing(runner: VirtualRunner, nic: Nic) -> list[ProbeInstance]:
    """The NIC's probe instances that probe: a test address and targets."""
    out = []
    for family in FAMILIES:
        inst = runner.engine.probes.get((nic.name, family))
        if inst is not None and inst.test_address is not None and inst.targets:
            out.append(inst)
    return out


def _recovering(runner: VirtualRunner, nic: Nic) -> bool:
    """FAILED, link up, and not seen failing by probes at the last scan.

    facts 4.1 (invariant 2): a failed NIC is emptied only while ``failure_state``
    still reports the failure, and that is checked by the rescan (at least every
    20 s) and on routing-socket changes.  So after a group failure the members keep
    their addresses while their probes are answered again, and a member whose
    probes then fail again gives them up at the next scan: its current run of lost
    probes must have started before the last scan (less a detection time of slack
    for probes still in flight then).
    """
    probing = _probing(runner, nic)
    if not (nic.failed and nic.present and nic.link_up and probing):
        return False
    if not all(inst.loss_run() >= NUM_PROBE_FAILS for inst in probing):
        return True
    engine = runner.engine
    if engine.next_scan is None:
        return False
    group = engine.groups.get(nic.group)
    slack = group.fdt_ms / 1000.0 if group is not None else 0.0
    last_scan = engine.next_scan - IF_SCAN_INTERVAL
    return any(
        (began := inst.first_loss_time()) is not None and began > last_scan - slack
        for inst in probing
    )


def describe(runner: VirtualRunner) -> str:
    """The table, kernel and recent log, for assertion messages."""
    lines = [f"t={runner.now:.3f}"]
    for nic in runner.engine.table.ordered():
        state = [
            name
            for name, on in (
                ("absent", not nic.present),
                ("link-down", not nic.link_up),
                ("FAILED", nic.failed),
                ("STANDBY", nic.standby),
                ("INACTIVE", nic.inactive),
                ("OFFLINE", nic.offline),
            )
            if on
        ]
        lines.append(f"  {nic.name} group={nic.group!r} {' '.join(state)}")
        for li in nic.addresses():
            kind = "placeholder" if li.placeholder else ("data" if li.is_data else "test")
            flags = "".join((" UP" if li.up else " down", " DEPRECATED" if li.deprecated else ""))
            lines.append(
                f"    {_label(nic, li)} {li.family} {li.address} {kind}{flags} home={li.home}"
            )
    failed_groups = [name for name, g in runner.engine.groups.items() if g.failed]
    lines.append(f"  failed groups: {failed_groups}")
    lines.append(
        "  kernel: " + ", ".join(f"{a.label}={a.address}" for a in runner.host.addresses())
    )
    lines.append("  log:")
    lines += [f"    {r.time:9.3f} {r.message}" for r in runner.logs[-12:]]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Engine bugs the machine has found and that are still open
#
# Each has a short deterministic reproduction at the end of this file, marked
# ``xfail(strict=True)``.  While a bug is listed here the machine tolerates exactly
# the state it leaves behind, so that it goes on looking for other bugs.  When the
# engine is fixed its reproduction XPASSes, which fails the run: then drop the
# ``xfail`` mark and the name from this set, and the machine checks the full
# invariant again.  (The bugs it found and that were fixed have regression tests
# there too.)

STANDBY_OWN_DATA_LATE = "standby-own-data-late"
STANDBY_COVERS_STANDBY = "standby-covers-standby"

KNOWN_BUGS: frozenset[str] = frozenset()
"""Fixed in the engine; kept as names so a future regression can be parked here."""


# ---------------------------------------------------------------------------
# Invariants


def check_each_address_once(runner: VirtualRunner) -> None:
    """Invariant 1a: every address in the engine's table exists exactly once."""
    for (family, address), where in _placed(runner.engine.table).items():
        assert len(where) == 1, (
            f"{family} {address} is configured {len(where)} times: "
            f"{[_label(n, li) for n, li in where]}\n{describe(runner)}"
        )


def check_kernel_agrees(runner: VirtualRunner) -> None:
    """Invariant 1b: the kernel holds exactly the table's addresses, on present NICs.

    Same interface, unit, prefix, UP and DEPRECATED, each address once; placeholders
    and 0.0.0.0 live only in the table.  Plumbed families, link state and presence
    agree too.
    """
    host: SimHost = runner.host
    table = runner.engine.table
    ours = [
        (nic.name, li.family, li.unit, li.address, li.prefixlen, li.up, li.deprecated)
        for nic in table.nics.values()
        if nic.present
        for li in nic.addresses()
        if _real(li)
    ]
    kernel = [
        (a.ifname, a.family, a.unit, a.address, a.prefixlen, a.up, a.deprecated)
        for a in host.addresses()
        if a.address not in UNSPECIFIED.values()
    ]
    assert set(ours) == set(kernel), (
        f"table and kernel disagree: only in table {sorted(set(ours) - set(kernel))}, "
        f"only in kernel {sorted(set(kernel) - set(ours))}\n{describe(runner)}"
    )
    twice = [key for key, n in Counter((k[1], k[3]) for k in kernel).items() if n > 1]
    assert not twice, f"the kernel holds {twice} more than once\n{describe(runner)}"
    for spec in host.topology.nics:
        nic = table.nics.get(spec.name)
        if nic is None:
            continue
        assert nic.present == host.is_present(spec.name), (
            f"{spec.name}: engine thinks present={nic.present}, kernel says "
            f"{host.is_present(spec.name)}\n{describe(runner)}"
        )
        if nic.present:
            assert nic.link_up == host.link_up(spec.name), (
                f"{spec.name}: engine thinks link_up={nic.link_up}\n{describe(runner)}"
            )
            assert set(host.plumbed(spec.name)) == set(nic.instances), (
                f"{spec.name}: plumbed {host.plumbed(spec.name)} in the kernel, "
                f"{sorted(nic.instances)} in the table\n{describe(runner)}"
            )


def check_group_failure_is_real(runner: VirtualRunner) -> None:
    """Invariant 2c: a group is failed only while none of its members is usable.

    guide: "A group failure occurs when all interfaces in an IPMP group appear to
    fail at the same time"; the first repair ends it (facts 4.4), and a NIC joining
    a failed group is marked FAILED (facts 4.6).  Invariant 2 lets addresses sit
    still during a group failure, so a group failure must not outlive it.
    """
    engine = runner.engine
    for name, group in engine.groups.items():
        if not group.failed:
            continue
        usable = [m.name for m in engine.table.members(name) if m.usable]
        assert not usable, f"group {name} is failed but {usable} are usable\n{describe(runner)}"


def misplaced_data(runner: VirtualRunner) -> dict[str, str]:
    """Invariant 2: a data address sits on a usable interface whenever its group has one.

    Returns the NICs in breach, with a message.  A data address may sit on an
    unusable NIC (absent, link down, FAILED) only when no failover can take it: the
    NIC is in no group (guide: "Failover can only occur when you have configured more
    than one interface in the IPMP group"); the group has failed (guide: Group
    Failures, "does not perform failovers"); no other member is usable and plumbed for
    the address's family (each family fails over on its own: README, Where this
    differs); or the NIC is FAILED with its link
    up and its probes were not failing at the last scan (facts 4.1; ``_recovering``).
    Addresses on a healthy member other than their home (FAILBACK=no, a standby in
    use) are fine: only the hosting NIC's health counts.
    """
    engine = runner.engine
    table = engine.table
    out: dict[str, str] = {}
    for nic in table.ordered():
        data = [li for li in nic.addresses() if li.is_data]
        if not data or nic.usable or not nic.group:
            continue
        group = engine.groups.get(nic.group)
        if (group is not None and group.failed) or _recovering(runner, nic):
            continue
        for family in FAMILIES:
            stuck = [li.address for li in data if li.family == family]
            better = _could_host(table, nic, {family}) if stuck else []
            if better:
                out[nic.name] = (
                    f"{nic.name} is unusable but keeps data addresses {stuck} while "
                    f"{better} of group {nic.group} could host them"
                )
    return out


def check_moves_stay_in_group(runner: VirtualRunner) -> None:
    """Invariant 2b: a data address away from home is hosted by a member of its home's group.

    Failover happens only inside a group, and a NIC leaving its group takes its
    addresses back (guide: How to Remove an Interface From an IPMP Group, "The
    in.mpathd daemon tries to restore the original configuration of an interface that
    is removed from the group").
    """
    table = runner.engine.table
    for nic in table.ordered():
        for li in nic.addresses():
            if not li.is_data or li.home == nic.name:
                continue
            home = table.nics.get(li.home)
            assert home is not None and home.group and home.group == nic.group, (
                f"{li.address} of {li.home} (group {home.group if home else None!r}) is "
                f"hosted by {_label(nic, li)} of group {nic.group!r}\n{describe(runner)}"
            )


def check_test_addresses_stay(runner: VirtualRunner, model: dict[Key, Configured]) -> None:
    """Invariant 3: test addresses (NOFAILOVER) and link-locals never move.

    guide: "After an interface fails, the test addresses remain on the failed
    interface".  Each stays where the administrator configured it (the model's
    ``at``); one configured as a test address from the start also has that NIC as
    its home in the engine's bookkeeping.
    """
    for (family, address), where in _placed(runner.engine.table).items():
        nic, li = where[0]
        if li.is_data:
            continue
        wanted = model.get((family, address))
        assert wanted is not None, f"unexpected test address {address}\n{describe(runner)}"
        assert wanted.at == nic.name, (
            f"test address {address} was configured on {wanted.at} but sits on "
            f"{_label(nic, li)}\n{describe(runner)}"
        )
        if wanted.home == wanted.at:
            assert li.home == nic.name, (
                f"test address {address} sits on {_label(nic, li)} but its home is "
                f"{li.home}\n{describe(runner)}"
            )


def _could_host(table: HostTable, nic: Nic, families: set[Family] | None = None) -> list[str]:
    """Other usable members of ``nic``'s group plumbed for ``families`` (default: its data's)."""
    needed = _data_families(nic) if families is None else families
    return [
        m.name
        for m in table.members(nic.group)
        if m is not nic and m.usable and needed <= set(m.instances)
    ]


def _active_alternative(table: HostTable, nic: Nic) -> list[str]:
    """Usable non-standby members that could carry ``nic``'s data instead."""
    needed = _data_families(nic)
    return [
        m.name
        for m in table.members(nic.group)
        if m is not nic and m.usable and not m.standby and needed <= set(m.instances)
    ]


def check_offline_carries_nothing(runner: VirtualRunner) -> None:
    """Invariant 4c: an OFFLINE NIC carries no UP data address.

    facts 4.8: offlining fails the NIC's data addresses over, and is refused when no
    member can take them; if_mpadm then brings down what stays.  So data reaches an
    OFFLINE NIC only when nothing else in its group can carry it.
    """
    table = runner.engine.table
    for nic in table.ordered():
        if not nic.offline or not nic.present:
            continue
        group = runner.engine.groups.get(nic.group) if nic.group else None
        if group is not None and group.failed:
            continue
        busy = [
            li.address
            for li in nic.addresses()
            if li.is_data and li.up and (not nic.group or _could_host(table, nic, {li.family}))
        ]
        assert not busy, f"OFFLINE {nic.name} carries UP data {busy}\n{describe(runner)}"


def check_standby_only_covers(runner: VirtualRunner, failback: bool) -> None:
    """Invariant 4: standby and INACTIVE interfaces carry data only while covering.

    guide: "The standby interface in an IPMP group is not used for data traffic
    unless some other interface in the group fails ... the standby interface is
    treated the same as other active interfaces until the failed interface is
    repaired", and "When the standby interface is not hosting any data address, the
    interface has the INACTIVE flag".  So:

    * a STANDBY NIC hosts no data address whose home is a usable active NIC (the
      engine moves them back at once on repair: no grace is needed);
    * a usable STANDBY NIC that holds no data address at all is INACTIVE (one that
      received only DOWN addresses in a failover may stay active for a while);
    * an INACTIVE NIC carries no UP data address; with FAILBACK=yes only a STANDBY
      NIC is ever INACTIVE (facts 4.3).

    A standby's own UP addresses are checked by ``standby_own_addresses``.
    """
    table = runner.engine.table
    for nic in table.ordered():
        if not nic.present:
            continue
        data = [li for li in nic.addresses() if li.is_data]
        if nic.standby:
            for li in data:
                home = table.nics.get(li.home)
                if li.home != nic.name and home is not None and not home.standby:
                    assert not home.usable, (
                        f"standby {_label(nic, li)} still hosts {li.address} although its "
                        f"home {li.home} is usable\n{describe(runner)}"
                    )
            if nic.usable and not data:
                assert nic.inactive, (
                    f"standby {nic.name} carries nothing but is not INACTIVE\n{describe(runner)}"
                )
        if nic.inactive:
            busy = [li.address for li in data if li.up]
            assert not busy, (
                f"INACTIVE {nic.name} carries UP data addresses {busy}\n{describe(runner)}"
            )
            if failback:
                assert nic.standby, (
                    f"{nic.name} is INACTIVE but not STANDBY with FAILBACK=yes\n{describe(runner)}"
                )


def standby_own_addresses(
    runner: VirtualRunner, known: frozenset[str] = KNOWN_BUGS
) -> dict[str, str]:
    """Invariant 4b: a standby's own UP addresses are carried by an active member if any.

    guide: "if you configure as standby an interface that already has data
    addresses, these addresses automatically fail over to another interface".  They
    may come back to a standby with a failed member's addresses, and must leave
    again for an active member as soon as there is one (facts 4.1, invariant 1).
    Returns the standbys in breach (any standby, not only the addresses' home).
    """
    table = runner.engine.table
    out: dict[str, str] = {}
    for nic in table.ordered():
        if not (nic.standby and nic.present):
            continue
        theirs = [
            li.address
            for li in nic.addresses()
            if li.is_data
            and li.up
            and (home := table.nics.get(li.home)) is not None
            and home.standby
            and (home.usable or STANDBY_COVERS_STANDBY not in known)
        ]
        others = _active_alternative(table, nic) if theirs else []
        if others:
            out[nic.name] = (
                f"standby {nic.name} carries standby-owned UP data addresses {theirs} "
                f"while {others} could"
            )
    return out


def check_nothing_lost(runner: VirtualRunner, model: dict[Key, Configured]) -> None:
    """Invariant 5: exactly the configured addresses exist, with the configured flags.

    The set changes only by an accepted addif/removeif; UP, DEPRECATED and
    NOFAILOVER change only by an accepted ifconfig; a data address keeps its home.
    """
    placed = _placed(runner.engine.table)
    missing = sorted(set(model) - set(placed))
    extra = sorted(set(placed) - set(model))
    assert not missing and not extra, (
        f"configured addresses lost: {missing}; never configured: {extra}\n{describe(runner)}"
    )
    for key, wanted in model.items():
        nic, li = placed[key][0]
        have = (li.up, li.deprecated, li.nofailover)
        assert have == (wanted.up, wanted.deprecated, wanted.nofailover), (
            f"{key[1]} on {_label(nic, li)}: (up, deprecated, nofailover) is {have}, "
            f"configured {(wanted.up, wanted.deprecated, wanted.nofailover)}\n{describe(runner)}"
        )
        if wanted.is_data:
            assert li.home == wanted.home, (
                f"data address {key[1]} belongs to {wanted.home} but the engine says "
                f"{li.home}\n{describe(runner)}"
            )


def convergence_problems(runner: VirtualRunner, failback: bool) -> list[str]:
    """What is not yet back after every fault was healed (empty: converged).

    guide: Detecting Physical Interface Repairs ("After failback, the original
    configuration is restored"); Standby Interfaces; FAILBACK.  Every NIC that is not
    OFFLINE is repaired and no group with such a NIC failed; no data address is on an
    OFFLINE NIC if another member could carry it; with FAILBACK=yes every data
    address is at home, except the addresses of a standby or an OFFLINE NIC, which
    stay with an active member; a standby hosts no address of another NIC (unless
    that one is OFFLINE) and is INACTIVE unless it carries data because no active
    member can; each UP address answers a ping from the NIC that holds it, and no
    DOWN address answers at all.
    """
    engine = runner.engine
    table = engine.table
    # A group left with OFFLINE members only cannot repair (they are not probed).
    problems = [
        f"group {name} failed"
        for name, g in engine.groups.items()
        if g.failed and any(not m.offline for m in table.members(name))
    ]
    for nic in table.ordered():
        if not (nic.present and nic.link_up):
            problems.append(f"{nic.name} not healed")
        if nic.failed and not nic.offline:
            problems.append(f"{nic.name} not repaired")
        if nic.standby and nic.group:
            covered = {li.home for li in nic.addresses() if li.is_data and li.home != nic.name}
            for name in sorted(covered):
                if not table.nics[name].offline:
                    problems.append(f"standby {nic.name} hosts an address of {name}")
            carrying = nic.hosts_foreign() or any(li.is_data and li.up for li in nic.addresses())
            if not nic.inactive and not carrying and not nic.offline:
                problems.append(f"standby {nic.name} carries nothing but is not INACTIVE")
    for (_family, address), [(nic, li)] in _placed(table).items():
        if li.is_data:
            home = table.nics[li.home]
            if nic.offline and _could_host(table, nic, {li.family}):
                problems.append(f"{address} is on offline {_label(nic, li)}")
            if failback and not home.standby and not home.offline and nic is not home:
                problems.append(f"{address} is on {_label(nic, li)}, not at home on {home.name}")
        answered = runner.host.ping(address)
        expected = nic.name if li.up else None
        if answered != expected:
            problems.append(
                f"ping {address} answered by {answered}, expected {expected} ({_label(nic, li)})"
            )
    problems += standby_own_addresses(runner).values()
    return problems


# ---------------------------------------------------------------------------
# ifconfig commands and what an accepted one changes in the model


def _logical(nic: str, unit: int) -> str:
    return nic if unit == 0 else f"{nic}:{unit}"


def commands(nics: list[str]) -> st.SearchStrategy[list[str]]:
    """NIC-level commands the guide uses, aimed at existing and missing NICs."""
    names = st.sampled_from([*nics, "hme9"])
    return st.one_of(
        st.tuples(names, st.sampled_from(["standby", "-standby"])).map(list),
        st.tuples(names, st.just("group"), st.sampled_from(["", "test", "test", "other"])).map(
            list
        ),
        st.builds(
            lambda n, a, extra: [n, "addif", a, *extra],
            names,
            st.sampled_from(POOL),
            st.sampled_from(
                [("up",), ("netmask", "+", "up"), (), ("deprecated", "-failover", "up")]
            ),
        ),
        st.builds(lambda n, a: [n, "removeif", a], names, st.sampled_from(KNOWN)),
    )


def flag_commands(table: HostTable) -> st.SearchStrategy[list[str]]:
    """Flag changes on the logical interfaces that exist now, and on some that do not."""
    labels = [
        _logical(nic.name, unit)
        for nic in table.ordered()
        if nic.present and "inet" in nic.instances
        for unit in sorted(nic.instances["inet"].units)
    ]
    return st.tuples(
        st.sampled_from([*labels, "hme0:7", "hme9"]),
        st.sampled_from(["-failover", "failover", "up", "down"]),
    ).map(list)


def _unit_of(table: HostTable, target: str) -> tuple[Nic, LogicalInterface] | None:
    name, _, unit = target.partition(":")
    nic = table.nics.get(name)
    inst = nic.instances.get("inet") if nic is not None else None
    if nic is None or inst is None:
        return None
    li = inst.units.get(int(unit) if unit else 0)
    return None if li is None else (nic, li)


def _file_lines(runner: VirtualRunner, nic: str) -> list[set[Key]]:
    """The addresses each line of the hostname files of ``nic`` names (literals only)."""
    out: list[set[Key]] = []
    for (name, family), file in runner.hostname_files.items():
        if name != nic:
            continue
        for command in file.commands:
            line: set[Key] = set()
            for op in command.ops:
                if isinstance(op, SetAddress | AddIf):
                    try:
                        line.add((family, str(ip_address(op.address))))
                    except ValueError:  # a host name: the topologies here have none
                        continue
            out.append(line)
    return out


def expect_after_attach(
    runner: VirtualRunner, nic: str, model: dict[Key, Configured]
) -> dict[Key, Configured]:
    """A NIC plugged back that has hostname files is configured from them as at boot.

    guide (Attaching NICs): "the interface receives the same configuration that
    it would have received after system boot".  What was typed on it is gone;
    its data addresses living on a sibling stay its own and fail back.  The new
    configuration is checked against the files, then becomes the model.
    """
    if not any(name == nic for name, _ in runner.hostname_files):
        return model
    lines = _file_lines(runner, nic)
    files = set().union(*lines)
    placed = _placed(runner.engine.table)
    waiting = {k for k, c in model.items() if c.is_data and c.home == nic and k in placed}
    # What belongs to the other NICs: data by its home, a test address by where it sits.
    others = {k for k, c in model.items() if (c.home if c.is_data else c.at) != nic}
    # A line naming an address another NIC holds is refused whole, as at boot.
    applied = set().union(*(line for line in lines if not line & others))
    own = {key for key, [(_, li)] in placed.items() if li.home == nic}
    for key in own:
        assert key in files or key in waiting or placed[key][0][1].link_local, (
            f"{key[1]} on {nic} is neither in its files nor one of its addresses\n"
            f"{describe(runner)}"
        )
    for key in applied:
        assert key in own, f"{key[1]} of {nic}'s files not configured\n{describe(runner)}"
    kept = {k: c for k, c in model.items() if k in others}
    for key in own - others:  # one in both: the invariants report the changed home
        holder, li = placed[key][0]
        kept[key] = Configured(li.up, li.deprecated, li.nofailover, nic, holder.name, li.link_local)
    return kept


def expect_after(
    argv: list[str], before: HostTable, model: dict[Key, Configured]
) -> dict[Key, Configured]:
    """The administrator's configuration after ``argv`` was accepted."""
    model = dict(model)
    verb = argv[1]
    if verb == "addif":
        words = argv[3:]
        model[("inet", argv[2])] = Configured(
            up="up" in words,
            deprecated="deprecated" in words,
            nofailover="-failover" in words,
            home=argv[0],
            at=argv[0],
        )
    elif verb == "removeif":
        model.pop(("inet", argv[2]), None)
    elif verb == "group":
        nic = before.nics[argv[0]]
        if nic.group and argv[2] != nic.group and nic.hosts_foreign():
            # Leaving a group hands the failed-over addresses it hosts to another
            # member, each family on its own; a family with none left is adopted
            # by the NIC (ifconfig_apply.leave_group).
            scratch = before.clone()
            plan = choose_destinations(
                scratch, scratch.nics[nic.name], "to_any", lambda li: li.home != nic.name
            )
            for li in nic.addresses():
                if li.is_data and li.home != nic.name and plan.get(li.family) is None:
                    key = (li.family, li.address)
                    model[key] = replace(model[key], home=nic.name, at=nic.name)
    elif verb in ("-failover", "failover", "up", "down"):
        found = _unit_of(before, argv[0])
        assert found is not None, f"ifconfig {argv} accepted for a missing logical interface"
        nic, li = found
        key = (li.family, li.address)
        if key in model:
            was = model[key]
            if verb in ("up", "down"):
                model[key] = replace(was, up=verb == "up")
            elif verb == "-failover":
                # A test address now, staying where it is (it keeps its original
                # interface, as in Solaris: failback never moves NOFAILOVER addresses).
                model[key] = replace(was, nofailover=True, at=nic.name)
            else:
                model[key] = replace(was, nofailover=False)
    return model


def snapshot(runner: VirtualRunner) -> tuple[str, str, str]:
    engine = runner.engine
    return repr(engine.table), repr(engine.groups), repr(runner.host.addresses())


# ---------------------------------------------------------------------------
# The machine


class IpmpMachine(RuleBasedStateMachine):
    """Random faults, time and ifconfig commands; the invariants after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.runner: VirtualRunner | None = None
        self.failback = True
        self.nics: list[str] = []
        self.neighbours: list[str] = []
        self.model: dict[Key, Configured] = {}
        self.steps = 0
        self.settled_at = 0
        self.breached_since: dict[str, float] = {}

    @property
    def r(self) -> VirtualRunner:
        assert self.runner is not None
        return self.runner

    @initialize(
        name=st.sampled_from(sorted(TOPOLOGIES)),
        failback=st.booleans(),
        fdt_ms=st.sampled_from([10000, 2000]),
        seed=st.integers(1, 10_000),
    )
    def boot(self, name: str, failback: bool, fdt_ms: int, seed: int) -> None:
        topo = TOPOLOGIES[name]()
        self.runner = boot(topo, seed=seed, failback=failback, failure_detection_time_ms=fdt_ms)
        self.failback = failback
        self.nics = [spec.name for spec in topo.nics]
        self.neighbours = [n.name for link in topo.links for n in link.neighbours]
        self.model = _configured_from(self.r.engine.table)
        self.r.run_for(1.0)

    # -- faults ---------------------------------------------------------------

    def _nic(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(self.nics), label="nic")

    @rule(data=st.data(), up=st.booleans())
    def link(self, data: st.DataObject, up: bool) -> None:
        nic = self._nic(data)
        self.r.apply(lambda host, now: host.set_link(nic, up, now))

    @rule(data=st.data(), on=st.booleans())
    def port_drop(self, data: st.DataObject, on: bool) -> None:
        nic = self._nic(data)
        self.r.apply(lambda host, now: host.set_port_drop(nic, on, now))

    @rule(data=st.data(), fraction=st.sampled_from([0.0, 0.1, 0.5, 1.0]))
    def port_loss(self, data: st.DataObject, fraction: float) -> None:
        nic = self._nic(data)
        self.r.apply(lambda host, now: host.set_port_loss(nic, fraction, now))

    @rule(data=st.data(), up=st.booleans())
    def target(self, data: st.DataObject, up: bool) -> None:
        name = data.draw(st.sampled_from(self.neighbours), label="neighbour")
        self.r.apply(lambda host, now: host.set_neighbour(name, up, now))

    @rule(data=st.data())
    def unplug_or_plug(self, data: st.DataObject) -> None:
        nic = self._nic(data)
        if self.r.host.is_present(nic):
            self.r.apply(lambda host, now: host.unplug(nic, now))
        else:
            self.r.apply(lambda host, now: host.plug(nic, now))
            self.model = expect_after_attach(self.r, nic, self.model)

    @rule(seconds=st.floats(0.1, 30.0))
    def wait(self, seconds: float) -> None:
        self.r.run_for(seconds)

    # -- the administrator ------------------------------------------------------

    @rule(data=st.data())
    def ifconfig(self, data: st.DataObject) -> None:
        self._ifconfig(data.draw(commands(self.nics), label="ifconfig"))

    @rule(data=st.data())
    def ifconfig_flag(self, data: st.DataObject) -> None:
        self._ifconfig(data.draw(flag_commands(self.r.engine.table), label="ifconfig"))

    def _ifconfig(self, argv: list[str]) -> None:
        before_table = self.r.engine.table.clone()
        before = snapshot(self.r)
        verb = argv[1] if argv[1] in ("addif", "removeif", "group") else " ".join(argv[1:])
        try:
            self.r.ifconfig(argv)
        except IpmpError as err:
            event(f"ifconfig {verb}: refused")
            assert "\n" not in err.message
            assert snapshot(self.r) == before, (
                f"refused ifconfig {argv} ({err.message}) changed the host\n{describe(self.r)}"
            )
            return
        event(f"ifconfig {verb}: accepted")
        self.model = expect_after(argv, before_table, self.model)

    @rule(data=st.data(), offline=st.booleans())
    def if_mpadm(self, data: st.DataObject, offline: bool) -> None:
        """``if_mpadm -d`` / ``-r``: offline a NIC, or undo it (facts 4.8)."""
        nic = data.draw(st.sampled_from([*self.nics, "hme9"]), label="nic")
        engine = self.r.engine
        before_table = engine.table.clone()
        before = snapshot(self.r)
        try:
            actions = (engine.offline if offline else engine.online)(nic, self.r.now)
        except IpmpError as err:
            assert snapshot(self.r) == before, (
                f"refused if_mpadm {nic} ({err.message}) changed the host\n{describe(self.r)}"
            )
            return
        event(f"if_mpadm {'-d' if offline else '-r'}: accepted")
        self.r.execute(actions)
        # if_mpadm -d brings down what stays on the NIC (its test addresses); -r brings
        # its test addresses up again.
        for li in before_table.nics[nic].addresses():
            key = (li.family, li.address)
            if key in self.model and not self.model[key].is_data:
                self.model[key] = replace(self.model[key], up=not offline)

    @precondition(lambda self: self.steps - self.settled_at >= SETTLE_EVERY)
    @rule()
    def settle(self) -> None:
        """Heal every fault; within SETTLE_SECONDS everything must be back."""
        self.settled_at = self.steps
        for nic in self.nics:
            if not self.r.host.is_present(nic):
                self.r.apply(lambda h, now, nic=nic: h.plug(nic, now))
                self.model = expect_after_attach(self.r, nic, self.model)
            self.r.apply(lambda h, now, nic=nic: h.set_link(nic, True, now))
            self.r.apply(lambda h, now, nic=nic: h.set_port_drop(nic, False, now))
            self.r.apply(lambda h, now, nic=nic: h.set_port_loss(nic, 0.0, now))
        for name in self.neighbours:
            self.r.apply(lambda h, now, name=name: h.set_neighbour(name, True, now))
        deadline = self.r.now + SETTLE_SECONDS
        while True:
            self.r.run_for(5.0)
            problems = convergence_problems(self.r, self.failback)
            if not problems or self.r.now >= deadline:
                break
        event(f"settle: converged within {SETTLE_SECONDS:.0f} s" if not problems else "settle: no")
        assert not problems, (
            f"not converged {SETTLE_SECONDS:.0f} s after healing: {problems}\n{describe(self.r)}"
        )

    # -- invariants ---------------------------------------------------------------

    @invariant()
    def invariants(self) -> None:
        if self.runner is None:
            return
        runner = self.runner
        self.steps += 1
        self.note_coverage()
        check_each_address_once(runner)
        check_kernel_agrees(runner)
        check_group_failure_is_real(runner)
        assert not (misplaced := misplaced_data(runner)), f"{misplaced}\n{describe(runner)}"
        self.within_a_scan(
            standby_own_addresses(runner), tolerate=STANDBY_OWN_DATA_LATE in KNOWN_BUGS
        )
        check_moves_stay_in_group(runner)
        check_test_addresses_stay(runner, self.model)
        check_standby_only_covers(runner, self.failback)
        check_offline_carries_nothing(runner)
        check_nothing_lost(runner, self.model)

    def note_coverage(self) -> None:
        """Statistics (pytest --hypothesis-show-statistics): were the states reached?"""
        engine = self.r.engine
        table = engine.table
        if any(g.failed for g in engine.groups.values()):
            event("state: group failure")
        for nic in table.nics.values():
            if nic.failed:
                event("state: a NIC failed")
            if nic.standby and nic.hosts_foreign():
                event("state: standby covering")
            if nic.inactive and not nic.standby:
                event("state: INACTIVE (FAILBACK=no)")
            if nic.offline:
                event("state: OFFLINE")
            if not nic.present:
                event("state: NIC absent")
            if nic.hosts_foreign() and not nic.standby:
                event("state: active NIC hosting another's address")

    def within_a_scan(self, breaches: dict[str, str], tolerate: bool) -> None:
        """Assert no breach; while a known bug is tolerated, none older than a scan."""
        now = self.r.now
        self.breached_since = {n: self.breached_since.get(n, now) for n in breaches}
        grace = IF_SCAN_INTERVAL if tolerate else 0.0
        for name, message in breaches.items():
            assert now - self.breached_since[name] <= grace, f"{message}\n{describe(self.r)}"


IpmpMachine.TestCase.settings = settings(
    # The same 400 programs on every run: a failure is reproducible everywhere.
    derandomize=True,
    database=None,
    max_examples=400,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# 400 programs of 50 steps: minutes of CPU, so out of the quick loop.
TestIpmpMachine = pytest.mark.slow(IpmpMachine.TestCase)


# ---------------------------------------------------------------------------
# Engine bugs the machine found: regression tests for the fixed ones, strict xfail
# reproductions for the open ones (see KNOWN_BUGS)


def _where(runner: VirtualRunner, address: str) -> str | None:
    found = _placed(runner.engine.table).get(("inet", address))
    return None if not found else _label(*found[0])


def _booted(name: str, **config: Any) -> VirtualRunner:
    """One of the machine's topologies, booted and settled for 30 s."""
    runner = boot(TOPOLOGIES[name](), **config)
    runner.run_for(30)
    return runner


@pytest.mark.parametrize("failback", [True, False])
def test_standby_gives_back_its_own_addresses_after_covering(failback: bool) -> None:
    runner = _booted("active-active", failback=failback)
    # guide: configuring as standby an interface with data addresses fails them over.
    runner.ifconfig(["hme0", "standby"])
    assert _where(runner, "192.168.85.19") == "hme1:2"
    runner.apply(lambda host, now: host.set_link("hme1", False, now))
    # The standby covers for hme1, and its own address comes back with hme1's.
    assert _where(runner, "192.168.85.20") == "hme0:2"
    assert _where(runner, "192.168.85.19") == "hme0"
    # Commands that add no data address are still accepted meanwhile.
    runner.ifconfig(["hme0", "addif", "192.168.85.40", "deprecated", "-failover", "up"])
    runner.ifconfig(["hme0", "removeif", "192.168.85.40"])
    runner.apply(lambda host, now: host.set_link("hme1", True, now))
    runner.run_for(60)
    assert not runner.engine.table.nics["hme1"].failed
    assert _where(runner, "192.168.85.20") == "hme1"
    # hme1 is back: the standby carries nothing again, hme0's address is on hme1.
    assert (_where(runner, "192.168.85.19") or "").startswith("hme1")
    assert runner.host.ping("192.168.85.19") == "hme1"
    assert runner.engine.table.nics["hme0"].inactive


def test_failed_nic_losing_its_link_again_fails_over_at_once() -> None:
    runner = _booted("active-active")
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    runner.apply(lambda host, now: host.set_link("hme0", True, now))
    runner.run_for(3)  # FAILED, its probes answered again: on its way to repair
    assert runner.engine.table.nics["hme0"].failed
    runner.ifconfig(["hme0", "addif", "192.168.85.40", "up"])
    assert _where(runner, "192.168.85.40") == "hme0:2"
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    # hme1 is healthy: the address does not wait for the next scan on a dead link.
    assert runner.host.ping("192.168.85.40") == "hme1"


def test_inactive_interface_given_a_data_address_becomes_active() -> None:
    runner = _booted("active-active", failback=False)
    runner.apply(lambda host, now: host.set_link("hme1", False, now))
    runner.apply(lambda host, now: host.set_link("hme1", True, now))
    runner.run_for(60)
    assert runner.engine.table.nics["hme1"].inactive  # guide: FAILBACK=no
    runner.ifconfig(["hme1", "addif", "192.168.85.42", "up"])
    assert runner.host.ping("192.168.85.42") == "hme1"
    assert not runner.engine.table.nics["hme1"].inactive


def test_standby_given_back_a_data_address_becomes_active() -> None:
    runner = _booted("active-standby")
    runner.execute(runner.engine.offline("hme0", runner.now))
    assert _where(runner, "192.168.85.19") == "hme1:1"  # the standby covers
    runner.ifconfig(["hme1:1", "-failover"])  # a test address now: the standby idles
    assert runner.engine.table.nics["hme1"].inactive
    runner.ifconfig(["hme1:1", "failover"])  # a data address again, UP, on hme1
    assert runner.host.ping("192.168.85.19") == "hme1"
    assert not runner.engine.table.nics["hme1"].inactive


def test_nic_leaving_its_group_takes_back_its_addresses_from_an_absent_member() -> None:
    runner = _booted("active-active")
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    assert _where(runner, "192.168.85.19") == "hme1:2"
    runner.apply(lambda host, now: host.unplug("hme1", now))  # a group failure
    # guide: "The in.mpathd daemon tries to restore the original configuration of an
    # interface that is removed from the group."
    runner.ifconfig(["hme0", "group", ""])
    runner.apply(lambda host, now: host.set_link("hme0", True, now))
    runner.apply(lambda host, now: host.plug("hme1", now))
    runner.run_for(90)
    assert _where(runner, "192.168.85.19") == "hme0"
    assert runner.host.ping("192.168.85.19") == "hme0"


def test_standby_leaving_its_group_with_its_addresses_is_not_inactive() -> None:
    runner = _booted("active-active")
    runner.ifconfig(["hme0", "standby"])
    runner.apply(lambda host, now: host.set_link("hme1", False, now))
    assert _where(runner, "192.168.85.19") == "hme0"  # back with hme1's, covering
    runner.ifconfig(["hme0", "group", ""])
    assert runner.host.ping("192.168.85.19") == "hme0"
    assert not runner.engine.table.nics["hme0"].inactive  # INACTIVE: carries no data


def test_offline_nic_cannot_change_group_or_get_new_addresses() -> None:
    runner = _booted("active-active")
    runner.execute(runner.engine.offline("hme1", runner.now))
    assert _where(runner, "192.168.85.20") == "hme0:2"
    before = snapshot(runner)
    # Leaving would take its addresses back onto the offlined NIC, and once out of
    # the group nothing would repair it; facts 4.8: IP allows no new logical
    # interfaces on an offlined NIC.
    for argv in (["hme1", "group", ""], ["hme1", "addif", "192.168.85.40", "up"]):
        with pytest.raises(IpmpError):
            runner.ifconfig(argv)
    assert snapshot(runner) == before


def test_online_in_a_failed_group_ends_the_group_failure() -> None:
    runner = _booted("active-active")
    runner.execute(runner.engine.offline("hme1", runner.now))
    runner.apply(lambda host, now: host.unplug("hme0", now))  # the last active member
    assert runner.engine.groups["test"].failed
    runner.execute(runner.engine.online("hme1", runner.now))
    runner.run_for(60)
    # hme1 works: the group has not failed, and hme1 carries the group's addresses.
    assert not runner.engine.groups["test"].failed
    assert runner.host.ping("192.168.85.20") == "hme1"
    assert runner.host.ping("192.168.85.19") == "hme1"


def test_covering_standby_does_not_fail_back_to_itself() -> None:
    runner = _booted("three-nic")
    # Give the standby hme2 an address of its own, which it hands to an active member.
    runner.ifconfig(["hme2", "-standby"])
    runner.ifconfig(["hme2", "addif", "192.168.85.40", "up"])
    runner.ifconfig(["hme2", "standby"])
    assert _where(runner, "192.168.85.40") == "hme1:2"
    runner.execute(runner.engine.offline("hme1", runner.now))
    assert _where(runner, "192.168.85.20") == "hme2:1"  # the standby covers for hme1
    runner.run_for(60)
    # guide: the standby is "not used for data traffic unless some other interface
    # in the group fails": its own address belongs on the active hme0 (facts 4.4: a
    # standby never fails back).
    assert runner.host.ping("192.168.85.40") == "hme0"
    assert "Successfully failed back to NIC hme2" not in runner.messages()


def test_standby_hands_its_own_address_on_at_once_after_a_failover() -> None:
    runner = _booted("three-nic")
    runner.ifconfig(["hme2", "-standby"])
    runner.ifconfig(["hme2", "addif", "192.168.85.40", "up"])
    runner.ifconfig(["hme2", "standby"])
    assert _where(runner, "192.168.85.40") == "hme1:2"
    runner.apply(lambda host, now: host.set_link("hme1", False, now))
    assert _where(runner, "192.168.85.20") == "hme2:1"  # the standby covers for hme1
    # hme0 is active and working: hme2's own address goes there, not back to hme2.
    assert (_where(runner, "192.168.85.40") or "").startswith("hme0")


def test_standby_does_not_cover_for_another_standby() -> None:
    runner = _booted("three-nic")
    runner.execute(runner.engine.offline("hme1", runner.now))
    assert _where(runner, "192.168.85.20") == "hme2:1"  # the standby covers for hme1
    runner.ifconfig(["hme1", "standby"])
    runner.run_for(45)
    # hme1's address belongs to a standby now: it goes to the active hme0 (guide: a
    # standby's data addresses "automatically fail over to another interface").
    assert runner.host.ping("192.168.85.20") == "hme0"


def test_groupless_standby_whose_last_data_address_becomes_a_test_address_is_inactive() -> None:
    runner = _booted("active-active")
    runner.ifconfig(["hme0", "standby"])
    runner.run_for(30)
    runner.ifconfig(["hme1", "group", ""])  # hme0's address comes home: no active member left
    runner.ifconfig(["hme0", "group", ""])
    assert not runner.engine.table.nics["hme0"].inactive  # it carries 192.168.85.19
    runner.ifconfig(["hme0", "-failover"])  # ... which is now a test address
    # guide: Standby Interfaces -- a standby that carries no data is INACTIVE.
    assert runner.engine.table.nics["hme0"].inactive
