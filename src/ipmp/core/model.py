"""The host's interface table as the daemon sees it.

One ``Nic`` per physical (or VLAN) interface; per address family an
``Instance`` (the interface plumbed for that family) holding logical
interfaces, ``hme0`` being unit 0 and ``hme0:1`` unit 1.  IPMP state that the
Linux kernel cannot hold (group, STANDBY, INACTIVE, FAILED, OFFLINE and the
per-address NOFAILOVER) lives here too, so ``ifconfig`` output is rendered from
this table alone.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ipmp.core.flags import (
    IFF_ADDRCONF,
    IFF_ANYCAST,
    IFF_BROADCAST,
    IFF_DEPRECATED,
    IFF_FAILED,
    IFF_INACTIVE,
    IFF_IPV4,
    IFF_IPV6,
    IFF_MULTICAST,
    IFF_NOARP,
    IFF_NOFAILOVER,
    IFF_NOLOCAL,
    IFF_NOTRAILERS,
    IFF_NOXMIT,
    IFF_OFFLINE,
    IFF_PREFERRED,
    IFF_PRIVATE,
    IFF_RUNNING,
    IFF_STANDBY,
    IFF_TEMPORARY,
    IFF_UP,
)
from ipmp.core.types import FAMILIES, Family

if TYPE_CHECKING:
    from ipmp.core.routes import DisplacedRoute

UNSPECIFIED: dict[Family, str] = {"inet": "0.0.0.0", "inet6": "::"}

ADDRESS_FLAGS = (
    IFF_UP
    | IFF_NOTRAILERS
    | IFF_NOARP
    | IFF_PRIVATE
    | IFF_NOXMIT
    | IFF_NOLOCAL
    | IFF_DEPRECATED
    | IFF_ADDRCONF
    | IFF_ANYCAST
    | IFF_NOFAILOVER
    | IFF_PREFERRED
    | IFF_TEMPORARY
)
"""Bits that belong to one address (UP, DEPRECATED, NOFAILOVER, ...), not the NIC."""


@dataclass
class LogicalInterface:
    """One address: ``hme0`` (unit 0) or ``hme0:N``.

    ``home`` and ``home_unit`` say where the address was configured (the
    "original interface" of Solaris): failover moves it elsewhere, failback
    returns it there.  ``placeholder`` marks the 0.0.0.0 entry a failover leaves
    on unit 0 (guide: What Happens During Interface Failover).
    """

    family: Family
    unit: int
    address: str
    prefixlen: int
    flags: int
    home: str
    home_unit: int
    broadcast: str = ""
    placeholder: bool = False

    @property
    def up(self) -> bool:
        return bool(self.flags & IFF_UP)

    @property
    def deprecated(self) -> bool:
        return bool(self.flags & IFF_DEPRECATED)

    @property
    def nofailover(self) -> bool:
        return bool(self.flags & IFF_NOFAILOVER)

    @property
    def unspecified(self) -> bool:
        return self.address == UNSPECIFIED[self.family]

    @property
    def link_local(self) -> bool:
        return is_link_local(self.family, self.address)

    @property
    def is_data(self) -> bool:
        """A data address: one that fails over (not NOFAILOVER, not 0.0.0.0, not link-local)."""
        return not (self.nofailover or self.unspecified or self.placeholder or self.link_local)

    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return _network(self.address, self.prefixlen)


@functools.lru_cache(maxsize=8192)
def _network(address: str, prefixlen: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    # Parsed once per address: the spreading asks for every data address's
    # subnet at each change, 1000 parses in a mass failover.
    return ipaddress.ip_interface(f"{address}/{prefixlen}").network


@dataclass
class Instance:
    """A NIC plumbed for one address family; ``units`` maps unit numbers to addresses."""

    family: Family
    units: dict[int, LogicalInterface] = field(default_factory=dict)

    def free_unit(self, preferred: int | None = None, lowest: int = 1) -> int:
        """The unit to use for a new logical interface: ``preferred`` if free, else the lowest.

        ``lowest`` lets a caller filling many units skip the ones it knows are taken.
        """
        if preferred is not None and preferred not in self.units:
            return preferred
        unit = lowest
        while unit in self.units:
            unit += 1
        return unit

    def clone(self) -> Instance:
        # A logical interface holds only immutable values: a shallow copy is whole.
        return Instance(self.family, {unit: copy.copy(li) for unit, li in self.units.items()})


@dataclass
class Nic:
    """A physical interface (or a VLAN interface, ``bge1000`` on device ``bge0``).

    ``present`` is false for an interface that is named in a hostname file or a
    group but has no hardware (missing at boot, unplugged, detached).
    """

    name: str
    index: int = 0
    mac: str = ""
    media: str = "ether"
    mtu: int = 1500
    modules: list[str] = field(default_factory=list)
    device: str = ""
    vlan: int = 0
    present: bool = True
    link_up: bool = True
    group: str = ""
    standby: bool = False
    inactive: bool = False
    failed: bool = False
    offline: bool = False
    instances: dict[Family, Instance] = field(default_factory=dict)

    def clone(self) -> Nic:
        """A deep copy (its lists and dicts are new)."""
        return replace(
            self,
            modules=list(self.modules),
            instances={family: inst.clone() for family, inst in self.instances.items()},
        )

    def nic_flags(self) -> int:
        """The flags that apply to every logical interface of the NIC."""
        flags = 0
        if self.link_up and self.present:
            flags |= IFF_RUNNING
        if self.failed:
            flags |= IFF_FAILED
        if self.standby:
            flags |= IFF_STANDBY
        if self.inactive:
            flags |= IFF_INACTIVE
        if self.offline:
            flags |= IFF_OFFLINE
        return flags

    def addresses(self, family: Family | None = None) -> list[LogicalInterface]:
        """Every logical interface of the NIC, IPv4 first, in unit order."""
        out: list[LogicalInterface] = []
        for fam in FAMILIES:
            if family not in (None, fam):
                continue
            inst = self.instances.get(fam)
            if inst is not None:
                out.extend(inst.units[u] for u in sorted(inst.units))
        return out

    def up_data_count(self) -> int:
        """UP data addresses hosted here (logint_upcount): the failover load measure."""
        return sum(1 for li in self.addresses() if li.up and li.is_data)

    def hosts_foreign(self) -> bool:
        """True when the NIC hosts a data address whose home is another NIC."""
        return any(li.is_data and li.home != self.name for li in self.addresses())

    @property
    def usable(self) -> bool:
        """Able to carry data now: present, link up, neither failed nor offline."""
        return self.present and self.link_up and not self.failed and not self.offline


def display_flags(nic: Nic, li: LogicalInterface) -> int:
    """The flags ``ifconfig`` shows for one logical interface."""
    flags = (li.flags & ADDRESS_FLAGS) | nic.nic_flags() | IFF_MULTICAST
    if li.family == "inet":
        flags |= IFF_IPV4
        if nic.media == "ether":
            flags |= IFF_BROADCAST
    else:
        flags |= IFF_IPV6
    return flags


@dataclass
class HostTable:
    """Every NIC the daemon knows, in index order when listed.

    ``saved_routes`` are the displaced routes of a saved state (see
    ``ipmp.core.routes``), for ``Engine.restore`` to take over.
    """

    nics: dict[str, Nic] = field(default_factory=dict)
    saved_routes: tuple[DisplacedRoute, ...] = ()

    def clone(self) -> HostTable:
        """A deep copy, written out: copy.deepcopy took tens of ms for 1000 addresses."""
        return HostTable({name: nic.clone() for name, nic in self.nics.items()})

    def ordered(self) -> list[Nic]:
        """NICs in ifconfig -a order: by index, absent ones last by name."""
        return sorted(self.nics.values(), key=lambda n: (not n.present, n.index, n.name))

    def members(self, group: str) -> list[Nic]:
        """The NICs of a named group, in index order."""
        if not group:
            return []
        return [nic for nic in self.ordered() if nic.group == group]

    def find_address(self, family: Family, address: str) -> tuple[Nic, LogicalInterface] | None:
        """Where ``address`` is configured, if anywhere (placeholders excluded)."""
        for nic in self.nics.values():
            inst = nic.instances.get(family)
            if inst is None:
                continue
            for li in inst.units.values():
                if li.address == address and not li.placeholder and not li.unspecified:
                    return nic, li
        return None

    def data_addresses_of(self, home: str) -> list[tuple[Nic, LogicalInterface]]:
        """Every data address whose home is ``home``, wherever it is now."""
        return [
            (nic, li)
            for nic in self.ordered()
            for li in nic.addresses()
            if li.home == home and li.is_data
        ]

    def local_addresses(self) -> set[str]:
        """Every UP address on the host (own addresses are never probe targets)."""
        return {
            li.address
            for nic in self.nics.values()
            for li in nic.addresses()
            if li.up and not li.unspecified
        }


def is_link_local(family: Family, address: str) -> bool:
    """True for an IPv6 link-local address (fe80::/10)."""
    return family == "inet6" and _ipv6_link_local(address)


@functools.lru_cache(maxsize=8192)
def _ipv6_link_local(address: str) -> bool:
    # Parsed once per address: every data-address test (``is_data``) asks,
    # several times per address and step, 1000 addresses at a start-up.
    return ipaddress.IPv6Address(address).is_link_local


def link_local_from_mac(mac: str) -> str:
    """The EUI-64 link-local address of a MAC.

    ``8:0:20:b9:19:fa`` gives ``fe80::a00:20ff:feb9:19fa``.
    """
    octets = [int(part, 16) for part in mac.split(":")]
    if len(octets) != 6:
        raise ValueError(f"not a 48-bit MAC address: {mac!r}")
    octets[0] ^= 0x02
    eui = [*octets[:3], 0xFF, 0xFE, *octets[3:]]
    words = [(eui[i] << 8) | eui[i + 1] for i in range(0, 8, 2)]
    return str(
        ipaddress.IPv6Address(
            (0xFE80 << 112) | sum(w << (16 * (3 - i)) for i, w in enumerate(words))
        )
    )


def classful_prefixlen(address: str) -> int:
    """The netmask Solaris gives an IPv4 address with no netmask database entry."""
    first = int(address.split(".")[0])
    if first < 128:
        return 8
    if first < 192:
        return 16
    return 24


def broadcast_of(address: str, prefixlen: int) -> str:
    """The directed broadcast address of ``address/prefixlen`` (IPv4)."""
    return str(ipaddress.IPv4Interface(f"{address}/{prefixlen}").network.broadcast_address)


def netmask_hex(prefixlen: int) -> str:
    """The netmask as ifconfig prints it: plain lowercase hex, ``0`` for none."""
    mask = (0xFFFFFFFF << (32 - prefixlen)) & 0xFFFFFFFF if prefixlen else 0
    return f"{mask:x}"
