"""A simulated Solaris host: the ``Stack`` the engine drives when no kernel is involved.

The host is a small deterministic network:

* a "kernel" table of interfaces, each plumbed or not per family, holding
  logical units (``hme0`` is unit 0, ``hme0:1`` unit 1) with their address,
  prefix length, broadcast address and UP / DEPRECATED state;
* cables (one per physical device: a VLAN interface rides on its device's
  cable) and switch ports that may lose a fraction of the probes or silently
  drop everything while the carrier stays up;
* neighbours on each IP link (routers and hosts, from the topology) that answer
  ICMP echo after their round-trip time, to unicast and to the all-hosts group.

Nothing here reads a clock or sleeps: every call takes ``now`` in virtual
seconds, replies are queued on a heap by arrival time, and ``take_due`` hands
them out.  All randomness (loss, jitter) comes from one ``random.Random(seed)``
owned by the host, so the same calls with the same seed replay exactly.

Faults are injected by tests and the demo through ``set_link``,
``set_port_loss``, ``set_port_drop``, ``set_neighbour``, ``unplug``, ``plug``
and the route methods; another program changing addresses behind the
daemon's back (a DHCP client, a network manager) through
``other_writer_add`` and ``other_writer_delete``.  The events they cause are
queued at ``now``.
"""

from __future__ import annotations

import contextlib
import heapq
import ipaddress
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, assert_never

from ipmp.core.actions import (
    Action,
    AddAddress,
    AnnounceAddress,
    Log,
    MoveAddress,
    PlumbInterface,
    PrepareInterface,
    ReadHostnameFiles,
    ReleaseInterface,
    RemoveAddress,
    SendProbe,
    SetLinkMtu,
    SpreadOutbound,
    UnplumbInterface,
    UpdateAddress,
)
from ipmp.core.constants import ICMP_ECHO_LENGTH, IFNAME_MAX
from ipmp.core.errors import IpmpError
from ipmp.core.events import (
    ActionCompleted,
    ActionFailed,
    AddressAddedElsewhere,
    AddressesFound,
    AddressRemovedElsewhere,
    Event,
    FoundAddress,
    LinkCameUp,
    LinkMtuChanged,
    LinkWentDown,
    NicAppeared,
    NicRemoved,
    ProbeReplyReceived,
    Route,
    RoutesChanged,
)
from ipmp.core.ifconfig_grammar import MTU_MIN
from ipmp.core.types import ALL_HOSTS, FAMILIES, Family
from ipmp.sim.topology import NeighbourSpec, NicSpec, Topology

UNSPECIFIED: dict[Family, str] = {"inet": "0.0.0.0", "inet6": "::"}
"""A unit holding this address is a placeholder (the dummy 0.0.0.0 that
failover leaves on unit 0) and may be taken over by a new address."""

_BITS: dict[Family, int] = {"inet": 32, "inet6": 128}

_CANON_CACHE_MAX = 4096


@dataclass(frozen=True)
class SimAddress:
    """One logical interface in the simulated kernel's address table."""

    ifname: str
    family: Family
    unit: int
    address: str
    prefixlen: int
    up: bool
    deprecated: bool

    @property
    def label(self) -> str:
        """The logical interface name: ``hme0`` for unit 0, ``hme0:1`` otherwise."""
        return _label(self.ifname, self.unit)


@dataclass
class _Entry:
    """A logical unit's state in the kernel table (mutable, private)."""

    address: str
    prefixlen: int
    broadcast: str
    up: bool
    deprecated: bool


@dataclass(eq=False)
class _Nic:
    """Kernel and hardware state of one interface of the topology.

    ``attached`` says the hardware (or, for a VLAN, the VLAN datalink) exists;
    a VLAN is in the kernel only while its device is attached too.  The cable
    and port fields of a VLAN interface describe only its own VLAN; its
    carrier is always its device's.  The epochs grow each time the interface
    leaves the kernel or its cable goes down, so that a reply in flight across
    such a moment is dropped even if all is well again when it arrives.
    """

    spec: NicSpec
    attached: bool
    cable_up: bool = True
    cable_epoch: int = 0
    presence_epoch: int = 0
    port_loss: float = 0.0
    port_drop: bool = False
    mtu: int = 0
    """The MTU set by ``ifconfig mtu`` (0: the hardware's, ``spec.mtu``)."""
    families: dict[Family, dict[int, _Entry]] = field(default_factory=dict)
    device: _Nic = field(init=False)
    """The NIC that owns the cable: the VLAN's device, else the NIC itself."""

    def __post_init__(self) -> None:
        self.device = self


@dataclass
class _Neighbour:
    """A neighbour of the topology and whether it is up now."""

    spec: NeighbourSpec
    link: str
    up: bool = True
    rtt_ms: float | None = None
    """A round-trip time set at run time, overriding the topology's."""


class _InFlight(NamedTuple):
    """What a reply needs at delivery to decide whether it still arrives."""

    nic: _Nic
    family: Family
    source: str
    presence_epoch: int
    cable_epoch: int


_Pending = tuple[float, int, Event, _InFlight | None]


class _Refused(Exception):
    """An action the host cannot carry out; caught in ``execute``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _label(ifname: str, unit: int) -> str:
    return ifname if unit == 0 else f"{ifname}:{unit}"


class SimHost:
    """A simulated Solaris host implementing the ``ipmp.stack.Stack`` protocol.

    Args:
        topology: the host's NICs, links, neighbours and boot-time routes.
        seed: seed of the host's random generator; the topology's seed if None.
    """

    def __init__(self, topology: Topology, seed: int | None = None) -> None:
        self._topology = topology
        self._rng = random.Random(topology.seed if seed is None else seed)
        self._nics: dict[str, _Nic] = {
            spec.name: _Nic(spec=spec, attached=spec.present) for spec in topology.nics
        }
        for nic in self._nics.values():
            nic.device = self._nics[nic.spec.device]
        self._neighbours: list[_Neighbour] = [
            _Neighbour(spec=n, link=link.name) for link in topology.links for n in link.neighbours
        ]
        # Lookup tables for the probe fast path: an hour of probing every
        # 14 ms is a quarter of a million probes per interface.
        self._unicast: dict[tuple[str, Family, str], _Neighbour] = {}
        self._multicast: dict[tuple[str, Family], list[_Neighbour]] = {}
        for neighbour in self._neighbours:
            for family in FAMILIES:
                address = neighbour.spec.address_of(family)
                if not address:
                    continue
                self._unicast[(neighbour.link, family, address)] = neighbour
                if neighbour.spec.answers_multicast:
                    self._multicast.setdefault((neighbour.link, family), []).append(neighbour)
        self._routes: list[Route] = self._boot_routes()
        self._queue: list[_Pending] = []
        self._order = 0
        self._canon: dict[tuple[str, Family], str | None] = {}
        self._announcements: list[tuple[float, str, str]] = []
        self._probes_sent: dict[tuple[str, Family], int] = {}
        self.spreading: dict[tuple[Family, str], tuple[str, ...]] = {}
        self._memberships: dict[str, set[str]] = {}
        """Outbound spreading: subnet -> the interfaces its flows leave by."""

    # ------------------------------------------------------------------ Stack

    @property
    def topology(self) -> Topology:
        """The topology the host was built from."""
        return self._topology

    def start(self, now: float) -> list[Event]:
        """Report the inventory: a ``NicAppeared`` per present NIC, then ``RoutesChanged``."""
        events: list[Event] = [self._appeared(nic, now) for nic in self._present_nics()]
        present = self._present_nics()
        events.append(
            AddressesFound(
                now,
                tuple(
                    (nic.spec.name, fam)
                    for nic in present
                    for fam in FAMILIES
                    if fam in nic.families
                ),
                tuple(
                    FoundAddress(
                        a.ifname,
                        a.family,
                        a.unit,
                        a.address,
                        a.prefixlen,
                        self._nics[a.ifname].families[a.family][a.unit].broadcast,
                        a.up,
                        a.deprecated,
                    )
                    for a in self.addresses()
                ),
            )
        )
        events.append(RoutesChanged(now, tuple(self._routes)))
        return events

    # ------------------------------------------------------------ persistence

    def world(self) -> dict[str, Any]:
        """The simulated world as JSON data: kernel tables, cables, ports, neighbours, routes.

        ``in.mpathd --sim`` saves it after every change so that a daemon killed
        and restarted finds the "kernel" as the crash left it, as a real one would.
        """
        return {
            "version": 1,
            "nics": {
                name: {
                    "attached": nic.attached,
                    "cable_up": nic.cable_up,
                    "port_loss": nic.port_loss,
                    "port_drop": nic.port_drop,
                    "mtu": nic.mtu,
                    "families": {
                        fam: {
                            str(unit): [e.address, e.prefixlen, e.broadcast, e.up, e.deprecated]
                            for unit, e in units.items()
                        }
                        for fam, units in nic.families.items()
                    },
                }
                for name, nic in self._nics.items()
            },
            "neighbours": {n.spec.name: [n.up, n.rtt_ms] for n in self._neighbours},
            "routes": [
                [r.family, r.destination, r.prefixlen, r.gateway, r.ifname] for r in self._routes
            ],
        }

    def restore_world(self, world: Any) -> None:
        """Load what ``world()`` saved for this same topology; IpmpError if it does not fit."""
        try:
            if world.get("version") != 1:
                raise ValueError("version")
            for name, saved in world["nics"].items():
                nic = self._nics[name]
                families: dict[Family, dict[int, _Entry]] = {}
                for fam, units in saved["families"].items():
                    if fam not in FAMILIES:
                        raise ValueError(fam)
                    family: Family = "inet" if fam == "inet" else "inet6"
                    families[family] = {
                        int(unit): _Entry(str(a), int(p), str(b), bool(u), bool(d))
                        for unit, (a, p, b, u, d) in units.items()
                    }
                nic.attached = bool(saved["attached"])
                nic.cable_up = bool(saved["cable_up"])
                nic.port_loss = float(saved["port_loss"])
                nic.port_drop = bool(saved["port_drop"])
                nic.mtu = int(saved.get("mtu", 0))
                nic.families = families
            by_name = {n.spec.name: n for n in self._neighbours}
            for name, (up, rtt) in world["neighbours"].items():
                by_name[name].up = bool(up)
                by_name[name].rtt_ms = None if rtt is None else float(rtt)
            self._routes = [Route(f, d, int(p), g, i) for f, d, p, g, i in world["routes"]]
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise IpmpError(f"simulated world state does not fit the topology: {err!r}") from None

    def execute(self, action: Action, now: float) -> list[Event]:
        """Carry out ``action``; return ``ActionCompleted`` or ``ActionFailed``.

        A failed action leaves the host exactly as it was.

        Raises:
            ValueError: ``action`` is a ``Log``; logging belongs to the daemon.
        """
        try:
            # Probes come first: they are nearly all the traffic.
            match action:
                case SendProbe():
                    self._send_probe(action, now)
                case Log() | ReadHostnameFiles():
                    raise ValueError(
                        f"{type(action).__name__} belongs to the daemon, not the stack"
                    )
                case PlumbInterface():
                    self._plumb(action)
                case UnplumbInterface():
                    self._unplumb(action)
                case SetLinkMtu():
                    self._set_mtu(action)
                case AddAddress():
                    self._add(action)
                case RemoveAddress():
                    self._remove(action)
                case UpdateAddress():
                    self._update(action)
                case MoveAddress():
                    self._move(action)
                case AnnounceAddress():
                    self._announce(action, now)
                case PrepareInterface() | ReleaseInterface():
                    self._present_nic(action.ifname)  # Solaris needs no extra settings
                case SpreadOutbound():
                    self.spreading[(action.family, action.subnet)] = action.ifnames
                case _:
                    assert_never(action)
        except _Refused as refused:
            failed: list[Event] = [ActionFailed(now, action, refused.reason)]
            if isinstance(action, SetLinkMtu) and action.ifname in self._nics:
                # The MTU it keeps: the engine shows the kernel's, not the one refused.
                nic = self._nics[action.ifname]
                failed.append(LinkMtuChanged(now, action.ifname, nic.mtu or nic.spec.mtu))
            return failed
        return [ActionCompleted(now, action)]

    def next_due(self) -> float | None:
        """The time of the earliest queued event, or None when nothing is queued."""
        return self._queue[0][0] if self._queue else None

    def take_due(self, now: float) -> list[Event]:
        """Return (and forget) every event due at or before ``now``, in time order.

        A probe reply is dropped here, as on a real wire, if since it was sent
        its interface left the kernel, its cable went down, its port started
        dropping, or its test address stopped being UP.
        """
        events: list[Event] = []
        queue = self._queue
        while queue and queue[0][0] <= now:
            _, _, event, flight = heapq.heappop(queue)
            if flight is None or self._arrives(flight):
                events.append(event)
        return events

    # ----------------------------------------------------------------- faults

    def set_link(self, name: str, up: bool, now: float) -> None:
        """Plug (``up``) or pull the cable of physical NIC ``name``.

        Every VLAN interface on the device follows its carrier (guide: "If the
        cable for bge0 is unplugged, then link-based failure detection will
        report both bge0 and bge1000 as having instantly failed").

        Raises:
            IpmpError: ``name`` is unknown or is a VLAN interface (it has no cable).
        """
        nic = self._nic(name)
        if nic.spec.is_vlan:
            raise IpmpError(
                f"{name}: VLAN {nic.spec.vlan} on {nic.spec.device} has no cable of its own; "
                f"set the link of {nic.spec.device}"
            )
        if nic.cable_up == up:
            return
        nic.cable_up = up
        if not up:
            nic.cable_epoch += 1
        for affected in [nic, *self._vlans_of(nic)]:
            if self._present(affected):
                event: Event = (
                    LinkCameUp(now, affected.spec.name)
                    if up
                    else LinkWentDown(now, affected.spec.name)
                )
                self._push(now, event)

    def set_port_loss(self, name: str, fraction: float, now: float) -> None:
        """Make the switch port of ``name`` lose ``fraction`` of the outgoing probes.

        On a physical NIC this affects all of its VLANs too; on a VLAN
        interface only that VLAN.  The carrier stays up.

        Raises:
            IpmpError: ``name`` is unknown or ``fraction`` is outside 0..1.
        """
        nic = self._nic(name)
        if not 0.0 <= fraction <= 1.0:
            raise IpmpError(f"{name}: port loss must be a fraction from 0 to 1, got {fraction!r}")
        nic.port_loss = fraction

    def set_port_drop(self, name: str, on: bool, now: float) -> None:
        """Make the switch port of ``name`` silently drop everything (carrier stays up).

        On a physical NIC this affects all of its VLANs too; on a VLAN
        interface only that VLAN.  Replies still in flight are dropped.

        Raises:
            IpmpError: ``name`` is unknown.
        """
        self._nic(name).port_drop = on

    def set_neighbour(self, address_or_name: str, up: bool, now: float) -> None:
        """Bring neighbours up or down, by name or by (IPv4 or IPv6) address.

        An address names every neighbour that has it, on any link.  Replies a
        neighbour already sent still arrive.

        Raises:
            IpmpError: no neighbour has that name or address.
        """
        for neighbour in self._neighbours_named(address_or_name):
            neighbour.up = up

    def set_neighbour_rtt(self, address_or_name: str, rtt_ms: float, now: float) -> None:
        """Change the round-trip time of neighbours, by name or address (congestion).

        Raises:
            IpmpError: no neighbour has that name or address, or ``rtt_ms`` < 0.
        """
        if rtt_ms < 0:
            raise IpmpError(f"{address_or_name}: rtt_ms must be at least 0, got {rtt_ms!r}")
        for neighbour in self._neighbours_named(address_or_name):
            neighbour.rtt_ms = rtt_ms

    def _neighbours_named(self, address_or_name: str) -> list[_Neighbour]:
        key = address_or_name
        with contextlib.suppress(ValueError):
            key = str(ipaddress.ip_address(address_or_name))
        matched = [
            n
            for n in self._neighbours
            if key in (n.spec.name, n.spec.address, n.spec.address6) and key != ""
        ]
        if not matched:
            raise IpmpError(f"{address_or_name}: no neighbour has this name or address")
        return matched

    def unplug(self, name: str, now: float) -> None:
        """Remove ``name`` from the kernel with all its addresses (DR detach).

        Unplugging a device removes its VLAN interfaces too (a ``NicRemoved``
        for each, VLANs first); routes through the removed interfaces go with
        them (``RoutesChanged``).

        Raises:
            IpmpError: ``name`` is unknown or not present.
        """
        nic = self._nic(name)
        if not self._present(nic):
            raise IpmpError(f"{name}: not present, cannot unplug")
        leaving = (
            [v for v in self._vlans_of(nic) if self._present(v)] if not nic.spec.is_vlan else []
        )
        leaving.append(nic)
        nic.attached = False
        gone: set[str] = set()
        for affected in leaving:
            affected.families.clear()
            affected.presence_epoch += 1
            gone.add(affected.spec.name)
            self._push(now, NicRemoved(now, affected.spec.name))
        routes = [r for r in self._routes if r.ifname not in gone]
        if routes != self._routes:
            self._routes = routes
            self._push(now, RoutesChanged(now, tuple(routes)))

    def plug(self, name: str, now: float) -> None:
        """Attach ``name`` again (DR attach): ``NicAppeared`` with nothing plumbed.

        Plugging a device brings back the VLAN interfaces it carried.  Routers
        on the interface's link that give a default route re-announce it, so
        an IPv6 default route through a router that had none is re-created
        through this interface.

        Raises:
            IpmpError: ``name`` is unknown or already present, or is a VLAN
                whose device is not present.
        """
        nic = self._nic(name)
        if self._present(nic):
            raise IpmpError(f"{name}: already present")
        if nic.device is not nic and not nic.device.attached:
            raise IpmpError(f"{name}: its device {nic.spec.device} is not present; plug it first")
        nic.attached = True
        arriving = [nic]
        if not nic.spec.is_vlan:
            arriving.extend(v for v in self._vlans_of(nic) if self._present(v))
        for affected in arriving:
            self._push(now, self._appeared(affected, now))
        added = False
        for affected in arriving:
            for route in self._router_v6_defaults(affected.spec):
                # Link-local gateways repeat across links (fe80::1 on net0 and
                # on vlan1): a route counts only if it leaves on the same link.
                if not any(
                    r.family == "inet6"
                    and r.prefixlen == 0
                    and r.gateway == route.gateway
                    and r.ifname in self._nics
                    and self._nics[r.ifname].spec.link == affected.spec.link
                    for r in self._routes
                ):
                    self._routes.append(route)
                    added = True
        if added:
            self._push(now, RoutesChanged(now, tuple(self._routes)))

    def set_routes(self, routes: Iterable[Route], now: float) -> None:
        """Replace the whole routing table; queues ``RoutesChanged``.

        Raises:
            IpmpError: a route has an address that is not of its family.
        """
        table = [self._checked_route(r) for r in routes]
        self._routes = table
        self._push(now, RoutesChanged(now, tuple(table)))

    def add_route(self, route: Route, now: float) -> None:
        """Add one route (``route add``); queues ``RoutesChanged``.

        Raises:
            IpmpError: the route is already in the table or is malformed.
        """
        route = self._checked_route(route)
        if route in self._routes:
            raise IpmpError(f"route to {route.destination}/{route.prefixlen}: already exists")
        self._routes.append(route)
        self._push(now, RoutesChanged(now, tuple(self._routes)))

    def remove_route(self, route: Route, now: float) -> None:
        """Remove one route (``route delete``); queues ``RoutesChanged``.

        Raises:
            IpmpError: the route is not in the table.
        """
        route = self._checked_route(route)
        if route not in self._routes:
            raise IpmpError(f"route to {route.destination}/{route.prefixlen}: not in table")
        self._routes.remove(route)
        self._push(now, RoutesChanged(now, tuple(self._routes)))

    # ---------------------------------------------------------- other writers

    def other_writer_add(
        self, name: str, family: Family, address: str, prefixlen: int, now: float
    ) -> int:
        """Another program adds ``address`` to ``name`` (``ip addr add``); returns its unit.

        An address the interface holds down is brought up where it is;
        anything else takes the lowest free unit.  Queues
        ``AddressAddedElsewhere``.

        Raises:
            IpmpError: the interface is absent or not plumbed for ``family``, the
                address is malformed, or the interface holds it up already.
        """
        try:
            table = self._table(name, family)
            canonical = self._checked_address(address, family, prefixlen, "")
        except _Refused as refused:
            raise IpmpError(refused.reason) from None
        unit = next((u for u, e in table.items() if e.address == canonical), None)
        if unit is not None and table[unit].up:
            raise IpmpError(f"{canonical}: already configured on {_label(name, unit)}")
        if unit is None:
            unit = 1
            while unit in table:
                unit += 1
            broadcast = ""
            if family == "inet":
                broadcast = str(
                    ipaddress.IPv4Interface(f"{canonical}/{prefixlen}").network.broadcast_address
                )
            table[unit] = _Entry(canonical, prefixlen, broadcast, True, False)
        else:
            table[unit].up = True
            prefixlen = table[unit].prefixlen
        self._push(now, AddressAddedElsewhere(now, name, family, canonical, prefixlen, unit))
        return unit

    def other_writer_delete(self, name: str, family: Family, address: str, now: float) -> None:
        """Another program deletes ``address`` from ``name`` (``ip addr del``).

        Queues ``AddressRemovedElsewhere``.

        Raises:
            IpmpError: the interface does not hold ``address`` up.
        """
        try:
            table = self._table(name, family)
        except _Refused as refused:
            raise IpmpError(refused.reason) from None
        canonical = self._canonical(address, family)
        unit = next((u for u, e in table.items() if e.address == canonical and e.up), None)
        if canonical is None or unit is None:
            raise IpmpError(f"{address}: not configured on {name}")
        entry = table.pop(unit)
        self._push(now, AddressRemovedElsewhere(now, name, family, canonical, entry.prefixlen))

    # ---------------------------------------------------------- multicast

    def join(self, address: str, group: str) -> None:
        """An application joins multicast ``group`` through local ``address``.

        As in the Solaris kernel the membership belongs to the address, so it
        follows the address when a failover moves it (guide: "Multicast
        memberships that are associated with 192.168.85.19 can still receive
        packets, but they now receive packets through hme1").

        Raises:
            IpmpError: ``address`` is not an UP address of this host.
        """
        if not any(a.address == address and a.up for a in self.addresses()):
            raise IpmpError(f"join {group}: {address} is not an UP address of this host")
        self._memberships.setdefault(address, set()).add(group)

    def multicast_receivers(self, group: str) -> set[str]:
        """The interfaces on which packets for ``group`` are received now."""
        return {
            a.ifname
            for a in self.addresses()
            if a.up and group in self._memberships.get(a.address, set())
        }

    # ---------------------------------------------------------------- queries

    def ping(self, address: str, family: Family | None = None) -> str | None:
        """The NIC that would answer a neighbour's echo request to ``address``.

        That is the first NIC (in index order) that is present, reaches an IP
        link, has its cable up and its port passing traffic, and holds
        ``address`` UP.  None if nobody would answer.

        Raises:
            IpmpError: ``address`` is not an IP address of ``family``.
        """
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            raise IpmpError(f"{address}: not an IP address") from None
        actual: Family = "inet" if parsed.version == 4 else "inet6"
        if family is not None and family != actual:
            raise IpmpError(f"{address}: not an {family} address")
        canonical = str(parsed)
        for nic in self._present_nics():
            if not nic.spec.link or not self._cable_up(nic) or self._dropping(nic):
                continue
            table = nic.families.get(actual)
            if table and any(e.up and e.address == canonical for e in table.values()):
                return nic.spec.name
        return None

    def addresses(self) -> list[SimAddress]:
        """The whole address table: by NIC index, IPv4 before IPv6, by unit."""
        out: list[SimAddress] = []
        for nic in self._present_nics():
            for family in FAMILIES:
                table = nic.families.get(family)
                if table is None:
                    continue
                for unit in sorted(table):
                    e = table[unit]
                    out.append(
                        SimAddress(
                            nic.spec.name, family, unit, e.address, e.prefixlen, e.up, e.deprecated
                        )
                    )
        return out

    def plumbed(self, name: str) -> tuple[Family, ...]:
        """The families ``name`` is plumbed for now (none when absent)."""
        nic = self._nic(name)
        return tuple(f for f in FAMILIES if f in nic.families)

    def is_present(self, name: str) -> bool:
        """True when ``name`` is in the kernel now."""
        return self._present(self._nic(name))

    def link_up(self, name: str) -> bool:
        """True when ``name``'s carrier is up (for a VLAN: its device's cable)."""
        return self._cable_up(self._nic(name))

    @property
    def routes(self) -> tuple[Route, ...]:
        """The routing table now."""
        return tuple(self._routes)

    @property
    def announcements(self) -> list[tuple[float, str, str]]:
        """Every ``AnnounceAddress`` carried out, as ``(now, ifname, address)``."""
        return list(self._announcements)

    @property
    def probes_sent(self) -> dict[tuple[str, Family], int]:
        """Probes that left the host, per ``(ifname, family)``."""
        return dict(self._probes_sent)

    # ---------------------------------------------------------- address table

    def _plumb(self, a: PlumbInterface) -> None:
        nic = self._present_nic(a.name)
        if a.family in nic.families:
            raise _Refused(f"{a.name}: already plumbed for {a.family}")
        nic.families[a.family] = {}

    def _set_mtu(self, a: SetLinkMtu) -> None:
        nic = self._present_nic(a.ifname)
        # The topology's MTU is what the hardware (a VLAN's device) carries at
        # most: like a driver's maximum SDU, it can be lowered, never raised.
        largest = min(nic.spec.mtu, nic.device.spec.mtu)
        if not MTU_MIN <= a.mtu <= largest:
            raise _Refused(
                f"{a.ifname}: mtu {a.mtu}: Invalid argument (expected {MTU_MIN}..{largest})"
            )
        nic.mtu = a.mtu

    def _unplumb(self, a: UnplumbInterface) -> None:
        nic = self._present_nic(a.name)
        if a.family not in nic.families:
            raise _Refused(f"{a.name}: not plumbed for {a.family}")
        del nic.families[a.family]

    def _add(self, a: AddAddress) -> None:
        table = self._table(a.ifname, a.family)
        address = self._checked_address(a.address, a.family, a.prefixlen, a.broadcast)
        self._check_unit_free(table, a.ifname, a.unit, address, a.family)
        table[a.unit] = _Entry(address, a.prefixlen, a.broadcast, a.up, a.deprecated)

    def _remove(self, a: RemoveAddress) -> None:
        table = self._table(a.ifname, a.family)
        self._check_holds(table, a.ifname, a.unit, a.address, a.family, a.prefixlen)
        del table[a.unit]

    def _update(self, a: UpdateAddress) -> None:
        table = self._table(a.ifname, a.family)
        # The update carries the address's new state, netmask included, so
        # the unit is identified by its address alone.
        entry = self._check_holds(table, a.ifname, a.unit, a.address, a.family)
        self._checked_address(a.address, a.family, a.prefixlen, "")
        entry.prefixlen = a.prefixlen
        entry.up = a.up
        entry.deprecated = a.deprecated

    def _move(self, a: MoveAddress) -> None:
        source = self._table(a.from_if, a.family)
        self._check_holds(source, a.from_if, a.from_unit, a.address, a.family)
        dest = self._table(a.to_if, a.family)
        address = self._checked_address(a.address, a.family, a.prefixlen, a.broadcast)
        if a.from_if != a.to_if or a.from_unit != a.to_unit:
            ignore = a.from_unit if a.from_if == a.to_if else None
            self._check_unit_free(dest, a.to_if, a.to_unit, address, a.family, ignore)
        # Every check is done: remove, then add, so the address is never on
        # two interfaces at once and a refused move changes nothing.
        del source[a.from_unit]
        dest[a.to_unit] = _Entry(address, a.prefixlen, a.broadcast, a.up, a.deprecated)

    def _announce(self, a: AnnounceAddress, now: float) -> None:
        self._present_nic(a.ifname)
        self._announcements.append((now, a.ifname, a.address))

    def _present_nic(self, name: str) -> _Nic:
        nic = self._nics.get(name)
        if nic is None:
            raise _Refused(f"{name}: no such interface")
        if not self._present(nic):
            raise _Refused(f"{name}: interface not present")
        return nic

    def _table(self, name: str, family: Family) -> dict[int, _Entry]:
        table = self._present_nic(name).families.get(family)
        if table is None:
            raise _Refused(f"{name}: not plumbed for {family}")
        return table

    def _checked_address(self, address: str, family: Family, prefixlen: int, broadcast: str) -> str:
        canonical = self._canonical(address, family)
        if canonical is None:
            raise _Refused(f"{address}: not an {family} address")
        if not 0 <= prefixlen <= _BITS[family]:
            raise _Refused(f"{address}/{prefixlen}: bad prefix length")
        if broadcast and (family == "inet6" or self._canonical(broadcast, "inet") is None):
            raise _Refused(f"{broadcast}: not a broadcast address for {family}")
        return canonical

    def _check_unit_free(
        self,
        table: dict[int, _Entry],
        ifname: str,
        unit: int,
        address: str,
        family: Family,
        ignore: int | None = None,
    ) -> None:
        label = _label(ifname, unit)
        if unit < 0:
            raise _Refused(f"{label}: bad logical unit")
        if len(label) > IFNAME_MAX:
            raise _Refused(f"{label}: logical interface name longer than {IFNAME_MAX} characters")
        current = table.get(unit)
        # A unit holding the unspecified address is the placeholder that a
        # failover leaves on unit 0: the returning address replaces it.
        if current is not None and unit != ignore and current.address != UNSPECIFIED[family]:
            raise _Refused(f"{label}: logical interface in use")
        if address != UNSPECIFIED[family]:
            for other, entry in table.items():
                if other not in (unit, ignore) and entry.address == address:
                    raise _Refused(f"{address}: already configured on {_label(ifname, other)}")

    def _check_holds(
        self,
        table: dict[int, _Entry],
        ifname: str,
        unit: int,
        address: str,
        family: Family,
        prefixlen: int | None = None,
    ) -> _Entry:
        """The entry of ``ifname:unit`` if it holds ``address`` (and ``prefixlen``, if given)."""
        label = _label(ifname, unit)
        entry = table.get(unit)
        if entry is None:
            raise _Refused(f"{label}: no such logical interface")
        if entry.address != self._canonical(address, family):
            raise _Refused(f"{label}: holds {entry.address}, not {address}")
        # Removal names the prefix too, as an RTM_DELADDR does on Linux.
        if prefixlen is not None and entry.prefixlen != prefixlen:
            raise _Refused(
                f"{label}: holds {entry.address}/{entry.prefixlen}, not {address}/{prefixlen}"
            )
        return entry

    def _canonical(self, address: str, family: Family) -> str | None:
        key = (address, family)
        try:
            return self._canon[key]
        except KeyError:
            pass
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            result = None
        else:
            result = str(parsed) if parsed.version == (4 if family == "inet" else 6) else None
        if len(self._canon) >= _CANON_CACHE_MAX:
            self._canon.clear()
        self._canon[key] = result
        return result

    # ----------------------------------------------------------------- probes

    def _send_probe(self, a: SendProbe, now: float) -> None:
        table = self._table(a.ifname, a.family)
        nic = self._nics[a.ifname]
        source = self._canonical(a.source, a.family)
        if source is None or not any(e.up and e.address == source for e in table.values()):
            raise _Refused(f"{a.source}: not an UP {a.family} address on {a.ifname}")
        target = self._canonical(a.target, a.family)
        if target is None:
            raise _Refused(f"{a.target}: not an {a.family} address")
        key = (a.ifname, a.family)
        self._probes_sent[key] = self._probes_sent.get(key, 0) + 1
        # The probe left the host; from here on, loss shows only as silence.
        if not self._cable_up(nic) or self._dropping(nic) or self._lost(self._port_loss(nic)):
            return
        link = nic.spec.link
        if target == ALL_HOSTS[a.family]:
            answering = self._multicast.get((link, a.family), [])
        else:
            one = self._unicast.get((link, a.family, target))
            answering = [one] if one is not None else []
        for neighbour in answering:
            spec = neighbour.spec
            if not neighbour.up or self._lost(spec.loss):
                continue
            delay = spec.rtt_ms if neighbour.rtt_ms is None else neighbour.rtt_ms
            if spec.jitter_ms > 0:
                delay += self._rng.uniform(-spec.jitter_ms, spec.jitter_ms)
            arrival = now + max(0.0, delay) / 1000.0
            reply = ProbeReplyReceived(
                now=arrival,
                ifname=a.ifname,
                family=a.family,
                source=spec.address_of(a.family),
                icmp_id=a.icmp_id,
                seq=a.seq,
                timestamp_ms=a.timestamp_ms,
                kind=a.kind,
                length=ICMP_ECHO_LENGTH,
                received_at=arrival,
            )
            flight = _InFlight(nic, a.family, source, nic.presence_epoch, self._cable_epoch(nic))
            self._push(arrival, reply, flight)

    def _arrives(self, flight: _InFlight) -> bool:
        nic = flight.nic
        if (
            not self._present(nic)
            or nic.presence_epoch != flight.presence_epoch
            or self._cable_epoch(nic) != flight.cable_epoch
            or not self._cable_up(nic)
            or self._dropping(nic)
        ):
            return False
        # The reply is addressed to the test address; with it gone (or down)
        # the kernel has no socket to hand it to.
        table = nic.families.get(flight.family)
        return table is not None and any(
            e.up and e.address == flight.source for e in table.values()
        )

    def _lost(self, fraction: float) -> bool:
        # Draw only when the outcome is uncertain, so that loss-free
        # neighbours do not shift the random sequence of the others.
        if fraction <= 0.0:
            return False
        if fraction >= 1.0:
            return True
        return self._rng.random() < fraction

    # ---------------------------------------------------------------- helpers

    def _push(self, when: float, event: Event, flight: _InFlight | None = None) -> None:
        self._order += 1
        heapq.heappush(self._queue, (when, self._order, event, flight))

    def _nic(self, name: str) -> _Nic:
        nic = self._nics.get(name)
        if nic is None:
            known = ", ".join(self._nics) or "none"
            raise IpmpError(f"{name}: no such interface in the topology (known: {known})")
        return nic

    def _vlans_of(self, nic: _Nic) -> list[_Nic]:
        return [self._nics[v.name] for v in self._topology.vlans_of(nic.spec.name)]

    def _present(self, nic: _Nic) -> bool:
        return nic.attached and nic.device.attached

    def _present_nics(self) -> list[_Nic]:
        return [nic for nic in self._nics.values() if self._present(nic)]

    def _cable_up(self, nic: _Nic) -> bool:
        return nic.device.cable_up

    def _cable_epoch(self, nic: _Nic) -> int:
        return nic.device.cable_epoch

    def _dropping(self, nic: _Nic) -> bool:
        return nic.port_drop or nic.device.port_drop

    def _port_loss(self, nic: _Nic) -> float:
        device = nic.device
        if device is nic:
            return nic.port_loss
        # The VLAN's own filter and the device's port lose independently.
        return 1.0 - (1.0 - nic.port_loss) * (1.0 - device.port_loss)

    def _appeared(self, nic: _Nic, now: float) -> NicAppeared:
        spec = nic.spec
        return NicAppeared(
            now=now,
            name=spec.name,
            index=spec.index,
            mac=spec.mac,
            media=spec.media,
            mtu=nic.mtu or spec.mtu,
            link_up=self._cable_up(nic),
            modules=spec.modules,
            device=spec.device,
            vlan=spec.vlan,
        )

    def _boot_routes(self) -> list[Route]:
        routes = [
            Route(r.family, r.destination, r.prefixlen, r.gateway, r.ifname)
            for r in self._topology.routes
        ]
        # Static host routes come first, as the guide says they are listed
        # before the default router (Configuring Target Systems).
        for link in self._topology.links:
            for n in link.neighbours:
                if n.default_route and n.address:
                    routes.append(Route("inet", UNSPECIFIED["inet"], 0, n.address, ""))
            for n in link.neighbours:
                if not (n.default_route and n.address6):
                    continue
                # An IPv6 route through a link-local gateway needs an outgoing
                # interface: the first present NIC on the router's link.
                ifname = next(
                    (
                        spec.name
                        for spec in self._topology.nics
                        if spec.link == link.name and self._present(self._nics[spec.name])
                    ),
                    "",
                )
                if ifname:
                    routes.append(Route("inet6", UNSPECIFIED["inet6"], 0, n.address6, ifname))
        return routes

    def _router_v6_defaults(self, spec: NicSpec) -> list[Route]:
        if not spec.link:
            return []
        return [
            Route("inet6", UNSPECIFIED["inet6"], 0, n.address6, spec.name)
            for n in self._topology.link(spec.link).neighbours
            if n.default_route and n.address6
        ]

    def _checked_route(self, route: Route) -> Route:
        destination = self._canonical(route.destination, route.family)
        gateway = self._canonical(route.gateway, route.family) if route.gateway else ""
        if destination is None or gateway is None:
            raise IpmpError(
                f"route to {route.destination} via {route.gateway or 'link'}: "
                f"not {route.family} addresses"
            )
        if not 0 <= route.prefixlen <= _BITS[route.family]:
            raise IpmpError(f"route to {route.destination}/{route.prefixlen}: bad prefix length")
        if route.ifname and route.ifname not in self._nics:
            raise IpmpError(f"route via {route.ifname}: no such interface")
        return Route(route.family, destination, route.prefixlen, gateway, route.ifname)
