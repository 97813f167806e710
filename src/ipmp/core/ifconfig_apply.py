"""Carry out a parsed ``ifconfig`` command against the host table.

The command is applied to a copy of the table; any refusal raises
``IpmpError`` before the copy replaces anything, so a rejected command changes
no state.  Kernel actions are derived afterwards by ``reconcile``.
"""

from __future__ import annotations

import copy
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ipmp.core.actions import LOG_ERR, LOG_WARNING, Log
from ipmp.core.errors import IpmpError
from ipmp.core.failover import (
    fail_back,
    fail_over,
    pending_failback,
)
from ipmp.core.flags import (
    IFF_ANYCAST,
    IFF_DEPRECATED,
    IFF_NOARP,
    IFF_NOFAILOVER,
    IFF_NOLOCAL,
    IFF_NOTRAILERS,
    IFF_NOXMIT,
    IFF_PREFERRED,
    IFF_PRIVATE,
    IFF_UP,
)
from ipmp.core.ifconfig_format import format_modlist, logical_name
from ipmp.core.ifconfig_grammar import (
    AddIf,
    IfconfigCommand,
    ModInsert,
    ModList,
    ModRemove,
    Op,
    Plumb,
    RemoveIf,
    SetAddress,
    SetBroadcast,
    SetFlag,
    SetGroup,
    SetMtu,
    SetNetmask,
    Unplumb,
)
from ipmp.core.model import (
    UNSPECIFIED,
    HostTable,
    Instance,
    LogicalInterface,
    Nic,
    broadcast_of,
    classful_prefixlen,
    link_local_from_mac,
)
from ipmp.core.types import Family

_LOCAL_OPS = (
    Plumb,
    SetAddress,
    AddIf,
    RemoveIf,
    SetNetmask,
    SetBroadcast,
    SetFlag,
    SetMtu,
    ModList,
)
"""Ops that change only the target NIC (``SetFlag`` but standby: ``_touches_only_target``)."""

IPV6_MIN_MTU = 1280
"""The smallest link MTU IPv6 works on (RFC 8200, section 5)."""

# ifconfig keyword -> (bit, set when the keyword is given without "-")
_FLAG_BITS: dict[str, tuple[int, bool]] = {
    "up": (IFF_UP, True),
    "deprecated": (IFF_DEPRECATED, True),
    "failover": (IFF_NOFAILOVER, False),
    "private": (IFF_PRIVATE, True),
    "xmit": (IFF_NOXMIT, False),
    "local": (IFF_NOLOCAL, False),
    "anycast": (IFF_ANYCAST, True),
    "preferred": (IFF_PREFERRED, True),
    "trailers": (IFF_NOTRAILERS, False),
    "arp": (IFF_NOARP, False),
}


def _no_netmask(address: str) -> int | None:
    return None


def _no_host(name: str) -> str | None:
    return None


@dataclass
class ApplyContext:
    """What applying a command needs besides the table.

    ``netmask_for`` looks an address up in the netmasks database (None: use the
    classful default); ``resolve_host`` looks a host name up in the hosts file.
    ``reattach`` is set while a NIC that came back is configured from its
    hostname file: its data addresses already live on a sibling, so they are
    left there for failback instead of being created twice.  ``reserved``
    holds the units (NIC, family, unit) the file gave such addresses, kept
    free for their failback while the rest of the file is applied.
    """

    netmask_for: Callable[[str], int | None] = _no_netmask
    resolve_host: Callable[[str], str | None] = _no_host
    reattach: bool = False
    reserved: set[tuple[str, Family, int]] = field(default_factory=set)

    def free_unit(self, name: str, inst: Instance) -> int:
        """The lowest free logical unit of ``name``'s ``inst``, skipping reserved ones."""
        units = inst.units
        # Units 0..n-1 all taken (the usual case: a file of addif lines) make n
        # the first candidate; scanning from 1 each time made 1000 lines quadratic.
        unit = len(units) if units and max(units) == len(units) - 1 else 1
        unit = max(unit, 1)
        while unit in units or (name, inst.family, unit) in self.reserved:
            unit += 1
        return unit


@dataclass
class ApplyResult:
    """The new table, what ifconfig prints, log lines, and group changes to act on."""

    table: HostTable
    output: list[str] = field(default_factory=list)
    logs: list[Log] = field(default_factory=list)
    group_changes: list[tuple[str, str, str]] = field(default_factory=list)


def _above_driver(nic: Nic) -> list[str]:
    """The STREAMS modules pushed above the driver: what must match across a group.

    The driver itself may differ (guide: NICs of different speeds "of the same
    type" share a group, e.g. hme and qfe).
    """
    return nic.modules[:-1]


def _error(message: str) -> IpmpError:
    return IpmpError(f"ifconfig: {message}")


class _Widen(Exception):
    """A command applied to a table sharing its other NICs reached one of them."""


def _touches_only_target(command: IfconfigCommand) -> bool:
    """True when ``command``'s ops change nothing but its own NIC's addresses and settings.

    Group, standby, unplumb and module changes may move addresses between
    members; everything else stays on the target NIC (a reattached address
    that lives elsewhere is found while applying: ``_Widen``).
    """
    return all(
        isinstance(op, _LOCAL_OPS) and not (isinstance(op, SetFlag) and op.name == "standby")
        for op in command.ops
    )


def _sharing_copy(table: HostTable, name: str) -> HostTable:
    """A copy of ``table`` in which only NIC ``name`` and its unit maps are new.

    The other NICs and the logical interfaces are the originals: the applier
    copies a logical interface before it changes one (``_Applier.current``).
    A full clone per command made 1000 ``addif`` lines quadratic.
    """
    nics = dict(table.nics)
    nic = nics.get(name)
    if nic is not None:
        nics[name] = replace(
            nic,
            modules=list(nic.modules),
            instances={f: Instance(f, dict(i.units)) for f, i in nic.instances.items()},
        )
    return HostTable(nics)


class _Applier:
    def __init__(
        self, table: HostTable, command: IfconfigCommand, ctx: ApplyContext, sharing: bool = False
    ) -> None:
        assert command.target is not None
        self.original = table
        self.sharing = sharing
        self.written: set[tuple[Family, int]] = set()
        name = command.target.partition(":")[0]
        self.table = _sharing_copy(table, name) if sharing else table.clone()
        self.command = command
        self.ctx = ctx
        self.result = ApplyResult(self.table)
        assert command.target is not None
        name, _, unit_text = command.target.partition(":")
        self.nic_name = name
        self.unit = int(unit_text) if unit_text else 0
        self.target_unit = self.unit
        self.family: Family = command.family or "inet"
        # Keywords that follow an address left where it failed over to (reattach)
        # land on this throwaway entry instead.
        self.detached = LogicalInterface(self.family, -1, UNSPECIFIED[self.family], 0, 0, name, -1)
        self.standby_set = False
        self.standby_cleared = False
        self.up_at_standby: set[tuple[Family, str]] = set()

    def up_before(self) -> set[tuple[Family, str]]:
        """The NIC's own UP data addresses before the command."""
        before = self.original.nics.get(self.nic_name)
        return {
            (li.family, li.address)
            for li in (before.addresses() if before is not None else [])
            if li.is_data and li.up and li.home == self.nic_name
        }

    # -- lookups -------------------------------------------------------------

    @property
    def nic(self) -> Nic:
        nic = self.table.nics.get(self.nic_name)
        if nic is None or not nic.present:
            raise _error(f"{self.nic_name}: no such interface")
        return nic

    def instance(self) -> Instance:
        inst = self.nic.instances.get(self.family)
        if inst is None:
            raise _error(f"{self.nic_name}: interface is not plumbed for {self.family}")
        return inst

    def current(self) -> LogicalInterface:
        if self.unit == -1:
            return self.detached
        inst = self.instance()
        li = inst.units.get(self.unit)
        if li is None:
            raise _error(f"{logical_name(self.nic, self.unit)}: no such logical interface")
        if self.sharing and (self.family, self.unit) not in self.written:
            # The original table's entry: changed only on a copy.
            li = copy.copy(li)
            inst.units[self.unit] = li
            self.written.add((self.family, self.unit))
        return li

    # -- addresses -----------------------------------------------------------

    def resolve(self, token: str, prefixlen: int | None) -> tuple[str, int | None]:
        try:
            parsed = ipaddress.ip_address(token)
        except ValueError:
            found = self.ctx.resolve_host(token)
            if found is None:
                raise _error(
                    f"{token!r}: unknown host; expected an address or a name in the hosts file"
                ) from None
            parsed = ipaddress.ip_address(found)
        family: Family = "inet" if parsed.version == 4 else "inet6"
        if family != self.family:
            keyword = "inet6" if family == "inet6" else "inet"
            raise _error(
                f"{token!r}: an {'IPv6' if family == 'inet6' else 'IPv4'} address "
                f"needs the {keyword} keyword"
            )
        return str(parsed), prefixlen

    def default_prefixlen(self, address: str) -> int:
        if self.family == "inet6":
            return 10 if ipaddress.IPv6Address(address).is_link_local else 64
        found = self.ctx.netmask_for(address)
        return found if found is not None else classful_prefixlen(address)

    def check_unique(self, address: str, li: LogicalInterface | None) -> None:
        where = self.table.find_address(self.family, address)
        if where is not None and where[1] is not li:
            host, other = where
            raise _error(f"{address}: already configured on {logical_name(host, other.unit)}")

    def set_address(self, li: LogicalInterface, address: str, prefixlen: int | None) -> None:
        if li.placeholder:
            raise _error(
                f"{logical_name(self.nic, li.unit)}: its address has failed over to another "
                "interface; set the address there or wait for failback"
            )
        self.check_unique(address, li)
        li.address = address
        li.prefixlen = prefixlen if prefixlen is not None else self.default_prefixlen(address)
        li.broadcast = broadcast_of(address, li.prefixlen) if self.family == "inet" else ""

    def new_logical(self, unit: int, address: str) -> LogicalInterface:
        return LogicalInterface(
            family=self.family,
            unit=unit,
            address=address,
            prefixlen=0,
            flags=0,
            home=self.nic_name,
            home_unit=unit,
        )

    # -- operations ----------------------------------------------------------

    def run(self) -> ApplyResult:
        for op in self.command.ops:
            self.apply(op)
        self.finish()
        return self.result

    def apply(self, op: Op) -> None:
        if isinstance(op, Plumb):
            self.plumb()
        elif isinstance(op, Unplumb):
            self.unplumb()
        elif isinstance(op, SetAddress):
            address, prefixlen = self.resolve(op.address, op.prefixlen)
            li = self.current()
            elsewhere = self.reattached_elsewhere(address)
            if elsewhere is not None:
                if li.unit == 0 and li.unspecified:
                    li.placeholder, li.flags = True, IFF_NOFAILOVER
                elif li.unspecified and li.unit > 0:
                    del self.instance().units[li.unit]
                if li.unit >= 0:
                    self.reserve(elsewhere, li.unit)
                self.unit = -1
                return
            self.set_address(li, address, prefixlen)
        elif isinstance(op, AddIf):
            self.addif(op)
        elif isinstance(op, RemoveIf):
            self.removeif(op)
        elif isinstance(op, SetNetmask):
            if self.family != "inet":
                raise _error("netmask: applies to inet; give IPv6 prefixes as address/len")
            li = self.current()
            li.prefixlen = (
                op.prefixlen if op.prefixlen is not None else self.default_prefixlen(li.address)
            )
            if not li.unspecified:
                li.broadcast = broadcast_of(li.address, li.prefixlen)
        elif isinstance(op, SetBroadcast):
            if self.family != "inet":
                raise _error("broadcast: IPv6 has no broadcast address")
            li = self.current()
            if op.address is None:
                if not li.unspecified:
                    li.broadcast = broadcast_of(li.address, li.prefixlen)
            else:
                li.broadcast = str(ipaddress.IPv4Address(op.address))
        elif isinstance(op, SetGroup):
            self.set_group(op.name)
        elif isinstance(op, SetFlag):
            self.set_flag(op.name, op.on)
        elif isinstance(op, SetMtu):
            if op.mtu < IPV6_MIN_MTU and "inet6" in self.nic.instances:
                # RFC 8200 section 5; Linux would silently drop the NIC's IPv6.
                raise _error(
                    f"{self.nic_name}: mtu {op.mtu}: expected at least {IPV6_MIN_MTU} "
                    "on an interface plumbed for inet6"
                )
            self.nic.mtu = op.mtu
        elif isinstance(op, ModList):
            self.result.output.append(format_modlist(self.nic))
        elif isinstance(op, ModInsert):
            self.modinsert(op.module, op.position)
        elif isinstance(op, ModRemove):
            self.modremove(op.module, op.position)
        else:  # pragma: no cover - the grammar yields no other op
            raise _error(f"unsupported operation {op!r}")

    def reattached_elsewhere(self, address: str) -> LogicalInterface | None:
        """While reattaching, a data address already living elsewhere stays there."""
        if not self.ctx.reattach:
            return None
        where = self.table.find_address(self.family, address)
        if where is None or where[1].home != self.nic_name:
            return None
        if self.sharing:
            raise _Widen  # reserve() changes the entry where it lives
        return where[1]

    def reserve(self, elsewhere: LogicalInterface, unit: int) -> None:
        """The file puts ``elsewhere`` on ``unit``: failback brings it there."""
        elsewhere.home_unit = unit
        self.ctx.reserved.add((self.nic_name, self.family, unit))

    def free_unit(self, inst: Instance) -> int:
        return self.ctx.free_unit(self.nic_name, inst)

    def plumb(self) -> None:
        nic = self.nic
        if self.unit != 0:
            inst = self.instance()
            if self.unit in inst.units:
                raise _error(f"{logical_name(nic, self.unit)}: already exists")
            inst.units[self.unit] = self.new_logical(self.unit, UNSPECIFIED[self.family])
            return
        if self.family in nic.instances:
            raise _error(f"{self.nic_name}: already plumbed for {self.family}")
        inst = Instance(self.family)
        unit0 = self.new_logical(0, UNSPECIFIED[self.family])
        if self.family == "inet6" and nic.mac:
            # The kernel gives every IPv6 interface its link-local address on
            # plumb (a NIC missing at boot gets it when it appears).
            unit0.address = link_local_from_mac(nic.mac)
            unit0.prefixlen = 10
        inst.units[0] = unit0
        nic.instances[self.family] = inst

    def unplumb(self) -> None:
        nic = self.nic
        inst = self.instance()
        if self.unit != 0:
            li = self.current()
            if li.is_data and li.home != nic.name:
                raise _error(
                    f"{logical_name(nic, self.unit)}: hosts a failed-over address of {li.home}"
                )
            del inst.units[self.unit]
            return
        foreign = [li for li in inst.units.values() if li.is_data and li.home != nic.name]
        if foreign:
            raise _error(
                f"{self.nic_name}: hosts failed-over addresses of {foreign[0].home}; "
                'remove it from its group (group "") before unplumbing'
            )
        # Own addresses that failed over elsewhere stay where they are: they are
        # adopted by their current interface, so nothing configured is lost.
        for host, li in self.table.data_addresses_of(nic.name):
            if host is not nic and li.family == self.family:
                li.home, li.home_unit = host.name, li.unit
        del nic.instances[self.family]
        if not nic.instances and nic.group:
            old = nic.group
            self.leave_group(nic)
            self.result.group_changes.append((nic.name, old, ""))

    def addif(self, op: AddIf) -> None:
        if self.nic.offline:
            # facts §4.8: IP allows no new logical interfaces on an offlined NIC.
            raise _error(
                f"addif: {self.nic_name} is offline; bring it back (ipmp online "
                f"{self.nic_name}) before adding logical interfaces"
            )
        address, prefixlen = self.resolve(op.address, op.prefixlen)
        inst = self.instance()
        elsewhere = self.reattached_elsewhere(address)
        if elsewhere is not None:
            self.reserve(elsewhere, self.free_unit(inst))
            self.unit = -1
            return
        unit = self.free_unit(inst)
        li = self.new_logical(unit, UNSPECIFIED[self.family])
        self.set_address(li, address, prefixlen)
        inst.units[unit] = li
        self.unit = unit
        self.result.output.append(f"Created new logical interface {logical_name(self.nic, unit)}")

    def removeif(self, op: RemoveIf) -> None:
        address, _ = self.resolve(op.address, None)
        inst = self.instance()
        for unit, li in inst.units.items():
            if li.address == address and not li.placeholder:
                if unit == 0:
                    raise _error(
                        f"removeif {address}: it is the address of {self.nic_name} itself; "
                        "use unplumb"
                    )
                del inst.units[unit]
                return
        raise _error(f"removeif {address}: no such address on {self.nic_name}")

    def set_flag(self, name: str, on: bool) -> None:
        if name == "standby":
            nic = self.nic
            if on and not nic.standby:
                nic.standby = True
                self.standby_set = True
                # Data addresses already up fail over; any brought up later in
                # this command are refused (guide: set -failover before standby).
                self.up_at_standby = {
                    (li.family, li.address)
                    for li in nic.addresses()
                    if li.is_data and li.up and li.home == nic.name
                }
            elif not on and nic.standby:
                nic.standby = False
                nic.inactive = False
                self.standby_cleared = True
            return
        bit, set_when_on = _FLAG_BITS[name]
        li = self.current()
        if li.placeholder:
            if self.ctx.reattach:
                return  # the address of this unit still lives elsewhere
            raise _error(f"{logical_name(self.nic, li.unit)}: is a failover placeholder")
        if on == set_when_on:
            li.flags |= bit
        else:
            li.flags &= ~bit

    # -- groups --------------------------------------------------------------

    def set_group(self, name: str) -> None:
        nic = self.nic
        if nic.offline and name != nic.group:
            raise _error(
                f"group: {nic.name} is offline; bring it back (ipmp online {nic.name}) "
                "before changing its group"
            )
        if self.target_unit != 0:
            # guide: "You cannot use the group parameter of the ifconfig command
            # with logical interfaces."
            raise _error(
                f"group: {logical_name(nic, self.target_unit)} is a logical interface; "
                "groups apply to physical interfaces only"
            )
        if name == nic.group:
            return
        if name:
            self.check_planning_rules(nic, name)
        old = nic.group
        if old:
            self.leave_group(nic)
        nic.group = name
        self.result.group_changes.append((nic.name, old, name))

    def leave_group(self, nic: Nic) -> None:
        """Restore addresses that failed over from or to ``nic`` before it leaves.

        guide: How to Remove an Interface From an IPMP Group.
        """
        if nic.hosts_foreign():
            # S10 fails everything over with FAILOVER_TO_ANY; only what is not
            # the NIC's own goes, since its own addresses stay with it.
            # Each family on its own (see choose_destinations).
            fail_over(self.table, nic, "to_any", lambda li: li.home != nic.name)
            for li in nic.addresses():
                if li.is_data and li.home != nic.name:
                    # Nobody left to take them: the NIC adopts them, nothing is lost.
                    li.home, li.home_unit = nic.name, li.unit
        if pending_failback(self.table, nic):
            fail_back(self.table, nic)
        nic.group = ""
        nic.failed = False
        # INACTIVE means "carries no data".
        nic.inactive = nic.standby and not any(li.is_data and li.up for li in nic.addresses())

    def check_planning_rules(self, nic: Nic, group: str) -> None:
        """The guide's planning rules (How to Plan for an IPMP Group).

        Media, MAC, VLAN and STREAMS modules are refused; a subnet another
        group uses is warned about (printed and logged) and allowed.
        """
        members = [m for m in self.table.members(group) if m is not nic and m.present]
        for member in members:
            if member.media != nic.media:
                raise _error(
                    f"group {group}: {nic.name} is {nic.media} but {member.name} is "
                    f"{member.media}; "
                    "all interfaces of a group must have the same media type"
                )
            if nic.mac and member.mac.lower() == nic.mac.lower():
                raise _error(
                    f"group {group}: {nic.name} has the same MAC address {nic.mac} as "
                    f"{member.name}; "
                    "every interface of a group needs a unique MAC address"
                )
            if member.vlan != nic.vlan:
                raise _error(
                    f"group {group}: {nic.name} is on VLAN {nic.vlan} but {member.name} is on VLAN "
                    f"{member.vlan}; a group's interfaces must be on one IP link"
                )
            if _above_driver(member) != _above_driver(nic):
                raise _error(
                    f"group {group}: {nic.name} has STREAMS modules {' '.join(nic.modules)} but "
                    f"{member.name} has {' '.join(member.modules)}; push the same modules in the "
                    "same order (modinsert/modremove) first"
                )
        mine = {
            li.network()
            for li in nic.addresses()
            if not li.unspecified and not li.link_local and not li.placeholder
        }
        for other in self.table.ordered():
            if other is nic or not other.group or other.group == group:
                continue
            for li in other.addresses():
                if li.unspecified or li.link_local or li.placeholder:
                    continue
                if li.network() in mine:
                    # A warning, not a refusal: the guide's own Example 31-8
                    # moves hme0 out of a two-member group into "cs-link".
                    message = (
                        f"ifconfig: warning: group {group}: subnet {li.network()} of "
                        f"{nic.name} is also used by group {other.group}; configure only "
                        "one IPMP group per subnet"
                    )
                    self.result.output.append(message)
                    self.result.logs.append(Log(LOG_WARNING, message))
                    return

    # -- STREAMS modules -----------------------------------------------------

    def modinsert(self, module: str, position: int | None) -> None:
        nic = self.nic
        top = len(nic.modules) - 1  # the driver is always at the bottom
        pos = top if position is None else position
        if pos < 0 or pos > top:
            raise _error(f"modinsert {module}@{pos}: position must be 0..{top} (above the driver)")
        nic.modules.insert(pos, module)
        self.warn_modules(nic)

    def modremove(self, module: str, position: int | None) -> None:
        nic = self.nic
        candidates = [
            i
            for i, m in enumerate(nic.modules)
            if m == module and (position is None or i == position)
        ]
        if not candidates:
            where = f"@{position}" if position is not None else ""
            raise _error(f"modremove {module}{where}: no such module on {nic.name}")
        if candidates[0] == len(nic.modules) - 1:
            raise _error(f"modremove {module}: the driver cannot be removed")
        del nic.modules[candidates[0]]
        self.warn_modules(nic)

    def warn_modules(self, nic: Nic) -> None:
        for member in self.table.members(nic.group):
            if member is not nic and member.present and _above_driver(member) != _above_driver(nic):
                self.result.logs.append(
                    Log(
                        LOG_ERR,
                        f"STREAMS modules of {nic.name} ({' '.join(nic.modules)}) differ from "
                        f"{member.name} ({' '.join(member.modules)}) in group {nic.group}; "
                        "failover may misbehave until they match",
                    )
                )
                return

    # -- end of command ------------------------------------------------------

    def finish(self) -> None:
        nic = self.table.nics.get(self.nic_name)
        if nic is None or not nic.present:
            return
        if not (nic.standby or self.standby_set or self.standby_cleared):
            return  # the rest concerns standby interfaces (and walks every address)
        own_up_data = [li for li in nic.addresses() if li.is_data and li.up and li.home == nic.name]
        # Only addresses this command made UP data addresses count: an own
        # address a failover brought back while the standby covers is fine.
        allowed = self.up_before() | self.up_at_standby
        added = [li for li in own_up_data if (li.family, li.address) not in allowed]
        if nic.standby and added:
            # guide: "IPMP does not permit you to add a data address to an
            # interface that is configured through the ifconfig command as standby."
            raise _error(
                f"{nic.name}: {added[0].address} would be a data address on standby "
                f"interface {nic.name}; mark it -failover deprecated, or clear standby first"
            )
        if self.standby_set:
            # guide: "if you configure as standby an interface that already has
            # data addresses, these addresses automatically fail over".
            movable = own_up_data or (nic.hosts_foreign() and not self.covering(nic))
            stranded = fail_over(self.table, nic, "to_nonstandby").stranded if movable else []
            if stranded:
                raise _error(
                    f"{nic.name}: cannot become standby: no other active interface in "
                    f"group {nic.group or '(none)'} can take its "
                    f"{' and '.join('IPv4' if f == 'inet' else 'IPv6' for f in stranded)} "
                    "data addresses"
                )
            nic.inactive = not nic.failed and not nic.hosts_foreign()
        if self.standby_cleared and nic.usable and pending_failback(self.table, nic):
            fail_back(self.table, nic)

    def covering(self, nic: Nic) -> bool:
        """True when every foreign address on ``nic`` belongs to a member that is down."""
        for li in nic.addresses():
            if li.is_data and li.home != nic.name:
                home = self.table.nics.get(li.home)
                if home is not None and home.usable:
                    return False
        return True


def apply_ifconfig(table: HostTable, command: IfconfigCommand, ctx: ApplyContext) -> ApplyResult:
    """Apply ``command`` to a copy of ``table``; raise ``IpmpError`` on any refusal.

    Status requests (no ops) are not handled here: the caller formats them.
    """
    if command.target is None:
        raise _error(
            "-a: only status can be shown for all interfaces; name an interface to change it"
        )
    if _touches_only_target(command):
        try:
            return _Applier(table, command, ctx, sharing=True).run()
        except _Widen:
            pass  # nothing of ``table`` or ``ctx`` changed yet: again on a full copy
    return _Applier(table, command, ctx).run()
