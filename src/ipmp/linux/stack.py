"""The Linux stack: the engine's actions carried out on a real host.

Netlink through pyroute2's ``AsyncIPRoute`` inside the daemon's loop (never the
sync API: linux-peers §5.0).  The ``Stack`` protocol is synchronous, so address
changes are queued to one worker task that performs them in order and reports
each outcome as an event; link, address and route events arrive from a second
netlink socket.  Probes, gratuitous ARP and unsolicited NA use plain sockets
and go out at once.

How Solaris state maps onto Linux (DESIGN.md):

- a logical interface ``eth0:N`` is an IPv4 address labelled ``eth0:N``;
- DEPRECATED is ``preferred_lft 0``;
- a deprecated IPv4 test address is added as a /32 of scope host (so it is
  never the primary address of its subnet, gets no prefix route and is never
  picked as a source) with a policy rule sending its own traffic through a
  per-interface table: IPv4 source selection ignores the deprecated flag
  (linux-peers §5.2), this keeps test addresses out of ordinary traffic;
- moved IPv6 addresses are added with NODAD so they are usable at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import ipaddress
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import RTMGRP_LINK
from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_NODAD
from pyroute2.netlink.rtnl.ifinfmsg import IFF_LOOPBACK, IFF_LOWER_UP, IFF_RUNNING, IFF_UP

from ipmp.core.actions import (
    Action,
    AddAddress,
    AddRoute,
    AnnounceAddress,
    Log,
    MoveAddress,
    MoveRoute,
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
    PolicyRulesRepaired,
    ProbeReplyReceived,
    Route,
    RoutesChanged,
    SettingsChanged,
)
from ipmp.core.types import Family
from ipmp.linux import packets
from ipmp.linux.addr_watch import (
    AddressEvent,
    AddressWatcher,
    Change,
    LinkState,
    Overrun,
    OwnChanges,
    RuleEvent,
    Window,
)
from ipmp.linux.route_moves import (
    RouteName,
    add_route,
    fast_change,
    move_name,
    move_route,
    route_name,
    route_of,
)
from ipmp.linux.route_watch import RouteWatcher
from ipmp.linux.rtnl_batch import AddressBatcher, AddressChange, RouteChange, set_link_mtu

TEST_TABLE_BASE = 10000
"""Policy-routing table of interface index i: TEST_TABLE_BASE + i."""

TEST_RULE_PRIORITY = 100
ROUTE_SETTLE = 0.05
"""Seconds to let a burst of route events settle before reading the table again."""
CARRIER_GRACE = 2.0
"""Seconds an interface the daemon brings up for the first time may take to show its carrier."""
OPER_UP = ("UP", "UNKNOWN")
"""Operational states that carry traffic: the kernel's netif_oper_up() (linux-peers §5.3)."""
ANNOUNCE_SCHEDULE = (0.0, 0.25, 1.0, 2.0)
"""Seconds after a move at which the new interface announces the address."""
ANNOUNCE_CHUNK = 100
"""Moved addresses added per batch before they are announced."""

MEMBER_SYSCTLS = (
    ("ipv4", "arp_ignore", "1"),
    ("ipv4", "arp_announce", "2"),
    ("ipv4", "rp_filter", "2"),
    ("ipv4", "promote_secondaries", "1"),
    # A member that loses its carrier must stop carrying traffic at once, not
    # when in.mpathd has rewritten the spreading routes: with the default 0 the
    # kernel keeps choosing nexthops on a dead link (BENCHMARKS.md, mass failover).
    ("ipv4", "ignore_routes_with_linkdown", "1"),
    ("ipv6", "ignore_routes_with_linkdown", "1"),
    # Solaris keeps a NIC's addresses while it is down; Linux drops its IPv6
    # ones on "ip link set X down" unless told to keep them, and an IPv6 test
    # address would then be lost with the failure it should detect the repair of.
    ("ipv6", "keep_addr_on_down", "1"),
)
"""linux-peers §6.4: what a NIC sharing a subnet with its siblings needs."""

ICMP6_FILTER = 1
SO_BINDTODEVICE = getattr(socket, "SO_BINDTODEVICE", 25)
SO_TIMESTAMPNS = 35
"""Linux (asm-generic/socket.h): the kernel's receive time of each packet, as a timespec."""
_TIMESPEC = struct.Struct("@qq")
ETH_P_ARP = 0x0806
LINK_LOCAL_PREFIX = 10  # as Solaris prints it; Linux uses /64


@dataclass
class _Link:
    """One netdev: what the kernel says of it and what the engine was told."""

    name: str
    index: int
    mac: str
    running: bool
    """The link state as the engine knows it."""
    kind: str
    admin_up: bool = True
    working: bool = True
    """The kernel's own verdict: administratively up, with carrier, operstate UP or UNKNOWN."""
    mtu: int = 1500
    operstate: str = ""
    judged: bool = True
    """False while it has been down since we first saw it: not yet brought up, no verdict."""
    waiting: bool = False
    """Brought up for the first time and given CARRIER_GRACE to show its carrier."""


@dataclass
class _Configured:
    """How an address was put into the kernel, to take it out the same way."""

    ifname: str
    family: Family
    address: str
    prefixlen: int
    test_route: str = ""  # the subnet routed through the test table, if any


@dataclass(frozen=True)
class _Chore:
    """Stack housekeeping the worker does in its turn, after the work queued before it."""

    run: Callable[[], Awaitable[None]]


@dataclass
class LinuxStack:
    """A ``Stack`` on the host's real interfaces (run it inside the daemon's loop)."""

    sysctl_root: Path = Path("/proc/sys/net")
    notify: Callable[[], None] | None = None
    _pending: list[Event] = field(default_factory=list)
    _links: dict[str, _Link] = field(default_factory=dict)
    _inventory: list[Event] = field(default_factory=list)
    _configured: dict[tuple[Family, str], _Configured] = field(default_factory=dict)
    _down: dict[tuple[Family, str], AddAddress] = field(default_factory=dict)
    _saved_sysctls: dict[str, list[tuple[Path, str]]] = field(default_factory=dict)
    _probe_sockets: dict[tuple[str, Family], tuple[str, socket.socket]] = field(
        default_factory=dict
    )
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _routes_pending: bool = False
    _routes_watch: RouteWatcher | None = None
    _arp_socket: socket.socket | None = None
    _na_socket: socket.socket | None = None
    _batcher: AddressBatcher | None = None
    _busy: bool = False
    _told_no_spreading: set[str] = field(default_factory=set)
    _arp_announce: dict[str, str] = field(default_factory=dict)
    # Other writers (addr_watch): own changes announced, the others judged.
    _watcher: AddressWatcher | None = None
    _own: OwnChanges = field(default_factory=OwnChanges)
    _window: Window = field(default_factory=Window)
    _admin: dict[int, bool] = field(default_factory=dict)
    _judge_queued: bool = False
    _sweep_queued: bool = False
    _rescan_addresses: bool = False
    _foreign_copies: dict[tuple[Family, str, int], int] = field(default_factory=dict)
    """Addresses another program put where the stack holds none: prefix length."""
    _route_msgs: dict[RouteName, Any] = field(default_factory=dict)

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Connect to netlink, read the inventory, start the worker and the reader."""
        self._loop = asyncio.get_running_loop()
        self._ipr = AsyncIPRoute()
        self._events = AsyncIPRoute()
        # Links through pyroute2; routes only as "the main table changed"
        # (route_watch), since every address change floods the route groups.
        await self._events.bind(RTMGRP_LINK)
        self._routes_watch = RouteWatcher(self._loop, self._main_table_changed)
        self._batcher = AddressBatcher()  # ready before the first failover needs it
        self._queue: asyncio.Queue[Action | _Chore] = asyncio.Queue()
        # Before the dumps: a change made meanwhile is seen, not lost between them.
        self._watcher = AddressWatcher(self._loop, self._queue_judge)
        now = self._loop.time()
        async for msg in await self._ipr.link("dump"):
            link = self._link_of(msg)
            if link is not None:
                self._links[link.name] = self._first_seen(link)
                self._admin[link.index] = link.admin_up
                self._inventory.append(self._appeared(link, now))
        self._inventory.append(await self._found_addresses(now))
        self._judge_configured()
        self._absorb(self._watcher.take())
        self._window.latest.clear()  # the dump says all that happened before it
        await self._sweep_rules(report=False)  # stale test rules of an earlier run
        self._inventory.append(RoutesChanged(now, await self._routes()))
        self._tasks = [
            asyncio.create_task(self._worker()),
            asyncio.create_task(self._reader()),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for _, sock in self._probe_sockets.values():
            self._loop.remove_reader(sock.fileno())
            sock.close()
        self._probe_sockets.clear()
        for announcer in (self._arp_socket, self._na_socket):
            if announcer is not None:
                announcer.close()
        if self._batcher is not None:
            self._batcher.close()
        self._ipr.close()
        self._events.close()
        if self._routes_watch is not None:
            self._routes_watch.close()
        if self._watcher is not None:
            self._watcher.close()

    # ------------------------------------------------------------ the Stack protocol

    def start(self, now: float) -> list[Event]:
        return list(self._inventory)

    def execute(self, action: Action, now: float) -> list[Event]:
        if isinstance(action, Log | ReadHostnameFiles):
            raise ValueError(f"{type(action).__name__} belongs to the daemon, not the stack")
        if isinstance(action, SendProbe):
            return [self._send_probe(action, now)]
        if isinstance(action, SetLinkMtu):
            return self._set_mtu(action, now)
        if isinstance(action, AnnounceAddress) and not self._busy and self._queue.empty():
            return [self._announce(action, now)]
        # In order by the worker: an announcement waits for the move before it,
        # or neighbours would learn a MAC that does not hold the address yet.
        self._queue.put_nowait(action)
        return []

    def next_due(self) -> float | None:
        return float("-inf") if self._pending else None

    def take_due(self, now: float) -> list[Event]:
        events, self._pending = self._pending, []
        return events

    def _set_mtu(self, action: SetLinkMtu, now: float) -> list[Event]:
        """At once, not through the worker: ifconfig answers whether the kernel took it.

        A refusal comes with the MTU the link keeps: status shows the kernel's.
        """
        link = self._links.get(action.ifname)
        if link is None:
            return [ActionFailed(now, action, f"{action.ifname}: no such interface")]
        try:
            code, text = set_link_mtu(link.index, action.mtu)
        except OSError as err:
            code, text = err.errno or errno.EIO, _describe(err)
        if code:
            why = os.strerror(code) + (f" ({text})" if text else "")
            return [
                ActionFailed(now, action, f"{action.ifname}: mtu {action.mtu}: {why}"),
                LinkMtuChanged(now, link.name, link.mtu),
            ]
        link.mtu = action.mtu  # its RTM_NEWLINK follows: no news for the engine then
        return [ActionCompleted(now, action)]

    def _report(self, event: Event) -> None:
        self._pending.append(event)
        if self.notify is not None:
            self.notify()

    # ------------------------------------------------------------ inventory

    def _link_of(self, msg: Any) -> _Link | None:
        """The kernel's facts about one link from an RTM_NEWLINK message (or a dump)."""
        name = msg.get("ifname")
        if not name or msg["flags"] & IFF_LOOPBACK:
            return None
        info = msg.get("linkinfo")
        kind = (info.get("kind") if info is not None else None) or "eth"
        mac = msg.get("address") or ""
        # Every way a link goes away clears one of these (linux-peers §5.3):
        # IFF_UP is the administrative state ("ip link set X down"); the
        # kernel sets IFF_RUNNING only when the operstate is UP or UNKNOWN, so
        # DOWN, LOWERLAYERDOWN (a veth whose peer is down, a macvlan whose
        # lower device is), DORMANT and NOTPRESENT clear it; IFF_LOWER_UP is
        # the carrier.  The operstate is read too: RUNNING is derived from it.
        # (``msg.get("state")`` is IFF_UP again, not the operstate.)
        flags = msg["flags"]
        admin_up = bool(flags & IFF_UP)
        operstate = str(msg.get("operstate") or "")
        working = (
            admin_up
            and bool(flags & IFF_RUNNING)
            and bool(flags & IFF_LOWER_UP)
            and operstate in (*OPER_UP, "")
        )
        mtu = int(msg.get("mtu") or 0)
        return _Link(
            name,
            msg["index"],
            _solaris_mac(mac),
            working,
            kind,
            admin_up,
            working,
            mtu,
            operstate,
        )

    def _appeared(self, link: _Link, now: float) -> NicAppeared:
        return NicAppeared(
            now=now,
            name=link.name,
            index=link.index,
            mac=link.mac,
            media="ether",
            mtu=link.mtu,
            link_up=link.running,
            # Linux has no STREAMS: the same "modules" above every driver.
            modules=("arp", "ip", link.kind),
            device=link.name,
            vlan=0,
        )

    async def _found_addresses(self, now: float) -> AddressesFound:
        by_index = {link.index: link.name for link in self._links.values()}
        test_routes = await self._test_routes()
        found: list[FoundAddress] = []
        plumbed: set[tuple[str, Family]] = set()
        units: dict[tuple[str, Family], int] = {}
        async for msg in await self._ipr.addr("dump"):
            name = by_index.get(msg["index"])
            if name is None:
                continue
            family: Family = "inet" if msg["family"] == socket.AF_INET else "inet6"
            address = msg.get("address")
            if address is None:
                continue
            address = str(ipaddress.ip_address(address))
            plumbed.add((name, family))
            prefixlen = int(msg["prefixlen"])
            link_local = _link_local(family, address)
            if link_local:
                unit, prefixlen = 0, LINK_LOCAL_PREFIX
            else:
                unit = self._unit_of(msg.get("label"), name, units, family)
            if family == "inet" and prefixlen == 32 and address in test_routes:
                subnet = test_routes[address]
                prefixlen = int(subnet.split("/")[1])
                self._configured[(family, address)] = _Configured(name, family, address, 32, subnet)
            else:
                self._configured[(family, address)] = _Configured(name, family, address, prefixlen)
            cache = msg.get("cacheinfo") or {}
            deprecated = cache.get("ifa_preferred", 1) == 0
            broadcast = msg.get("broadcast") or ""
            found.append(
                FoundAddress(name, family, unit, address, prefixlen, broadcast, True, deprecated)
            )
        return AddressesFound(now, tuple(sorted(plumbed)), tuple(found))

    @staticmethod
    def _unit_of(
        label: str | None, name: str, units: dict[tuple[str, Family], int], family: Family
    ) -> int:
        if family == "inet" and label and label.startswith(f"{name}:"):
            suffix = label.split(":", 1)[1]
            if suffix.isdigit():
                return int(suffix)
        if family == "inet" and label == name and (name, family) not in units:
            units[(name, family)] = 0
            return 0
        # IPv6 unit 0 is the link-local address (as on Solaris, where addif'd
        # IPv6 addresses start at :1): the others are numbered from 1, or a
        # data address and the link-local would both claim unit 0.
        first = 0 if family == "inet" else 1
        unit = max(units.get((name, family), first - 1) + 1, first)
        units[(name, family)] = unit
        return unit

    async def _test_routes(self) -> dict[str, str]:
        """Test addresses we configured earlier: address -> subnet routed for its probes."""
        out: dict[str, str] = {}
        async for msg in await self._ipr.route("dump", family=socket.AF_INET):
            table = msg.get("table") or 0
            src = msg.get("prefsrc")
            if table >= TEST_TABLE_BASE and src and msg.get("dst"):
                out[src] = f"{msg.get('dst')}/{msg['dst_len']}"
        return out

    async def _routes(self) -> tuple[Route, ...]:
        by_index = {link.index: link.name for link in self._links.values()}
        routes: list[Route] = []
        seen: dict[RouteName, Any] = {}
        for family, fam in ((socket.AF_INET, "inet"), (socket.AF_INET6, "inet6")):
            async for msg in await self._ipr.route("dump", family=family):
                route = route_of(msg, "inet" if fam == "inet" else "inet6", by_index)
                if route is not None:
                    routes.append(route)
                    if not route.automatic and route.ifname:
                        seen[route_name(msg, route.family)] = msg
        # Kept for the failover's route moves (``_move_all``): no dump then.
        self._route_msgs = seen
        return tuple(routes)

    # ------------------------------------------------------------ events from the kernel

    async def _reader(self) -> None:
        while True:
            try:
                async for msg in self._events.get():
                    self._kernel_event(msg)
            except asyncio.CancelledError:
                raise
            except Exception:  # e.g. ENOBUFS: events were lost
                # Whatever was missed, the kernel's current state says it.
                await self._resync()

    def _kernel_event(self, msg: Any) -> None:
        event = msg.get("event")
        if event == "RTM_NEWLINK":
            self._link_changed(msg)
        elif event == "RTM_DELLINK":
            name = msg.get("ifname")
            if name in self._links:
                self._link_gone(name)

    def _main_table_changed(self) -> None:
        if not self._routes_pending:
            # One dump after a burst says it all.
            self._routes_pending = True
            self._loop.call_later(ROUTE_SETTLE, self._reread_routes)

    def _link_gone(self, name: str) -> None:
        del self._links[name]
        self._forget(name)
        self._report(NicRemoved(self._loop.time(), name))

    def _reread_routes(self) -> None:
        self._tasks.append(asyncio.create_task(self._report_routes()))

    async def _report_routes(self) -> None:
        self._routes_pending = False
        self._report(RoutesChanged(self._loop.time(), await self._routes()))

    async def _resync(self) -> None:
        """Compare the kernel's links with ours after lost events."""
        seen: set[str] = set()
        async for msg in await self._ipr.link("dump"):
            link = self._link_of(msg)
            if link is not None:
                seen.add(link.name)
                self._link_changed(msg)
        for name in [n for n in self._links if n not in seen]:
            self._link_gone(name)
        await self._report_routes()

    def _link_changed(self, msg: Any) -> None:
        link = self._link_of(msg)
        if link is None:
            return
        now = self._loop.time()
        old = self._links.get(link.name)
        if old is None or old.index != link.index:
            self._links[link.name] = self._first_seen(link)
            self._report(self._appeared(link, now))
            return
        self._links[link.name] = link
        link.judged, link.waiting, link.running = old.judged, old.waiting, old.running
        if msg.get("family") == socket.AF_INET6:
            link.mtu = old.mtu  # IPv6's own MTU (a router may lower it), not the link's
        if link.mtu != old.mtu:
            self._report(LinkMtuChanged(now, link.name, link.mtu))  # ours or anyone's
        if link.admin_up and not old.admin_up:
            self._tasks.append(self._loop.create_task(self._restore_test_routes(link.name)))
        if not link.judged:
            if not link.admin_up:
                return  # still down since we first saw it: nothing to judge
            # Brought up for the first time (the daemon plumbs it): its carrier
            # may follow a moment later, which is no failure.
            link.judged = True
            if not link.working:
                link.waiting = True
                self._loop.call_later(CARRIER_GRACE, self._carrier_check, link.name)
            return
        if link.waiting:
            if link.working or link.admin_up:
                link.waiting = not link.working
                return  # the carrier came, or it may still come within the grace
            link.waiting = False  # taken down again before it ever worked
        if link.running and not link.working:
            link.running = False
            self._report(LinkWentDown(now, link.name))
        elif link.working and not link.running:
            link.running = True
            self._report(LinkCameUp(now, link.name))

    def _judge_configured(self) -> None:
        """A link down at start that holds addresses was configured, then taken down.

        (The daemon restarted while the administrator has it down, say): a
        failure now, not an interface waiting to be brought up the first time.
        """
        holders = {
            r.ifname for r in self._configured.values() if not _link_local(r.family, r.address)
        }
        for i, event in enumerate(self._inventory):
            if not isinstance(event, NicAppeared):
                continue
            link = self._links.get(event.name)
            if link is not None and not link.judged and link.name in holders:
                link.judged, link.running = True, False
                self._inventory[i] = dataclasses.replace(event, link_up=False)

    @staticmethod
    def _first_seen(link: _Link) -> _Link:
        """A link we did not know: one that is down counts as up until it is brought up.

        Like Solaris' initial link state: an interface nobody has brought up
        has no carrier to judge; once it is brought up (plumbed), it shows
        whether its cable works.
        """
        if not link.admin_up:
            link.judged, link.running = False, True
        return link

    def _carrier_check(self, name: str) -> None:
        link = self._links.get(name)
        if link is not None and link.waiting:
            link.waiting = False
            if link.running and not link.working:
                link.running = False
                self._report(LinkWentDown(self._loop.time(), name))

    def _forget(self, name: str) -> None:
        """The interface left the kernel with its addresses: drop what we knew of them."""
        for key, record in list(self._configured.items()):
            if record.ifname == name:
                del self._configured[key]
        for probe_key in [k for k in self._probe_sockets if k[0] == name]:
            _, sock = self._probe_sockets.pop(probe_key)
            self._loop.remove_reader(sock.fileno())
            sock.close()
        self._saved_sysctls.pop(name, None)
        self._arp_announce.pop(name, None)
        # The kernel drops the interface's routes, not the policy rules that
        # sent its test addresses to them.
        self._queue_sweep()

    # ------------------------------------------------------------ other writers

    def _queue_judge(self) -> None:
        if not self._judge_queued:
            self._judge_queued = True
            self._queue.put_nowait(_Chore(self._judge))

    def _absorb(self, changes: list[Change]) -> None:
        """Changes from the address watcher: claim our own, keep the rest for judgement."""
        now = self._loop.time()
        sweep = False
        for change in changes:
            if isinstance(change, LinkState):
                if change.gone:
                    self._admin.pop(change.index, None)
                else:
                    self._admin[change.index] = change.up
            elif isinstance(change, AddressEvent):
                if not change.new:
                    self._foreign_copies.pop((change.family, change.address, change.index), None)
                if self._own.claim(change, now):
                    # Our own change is the latest word on that address there.
                    self._window.latest.pop((change.family, change.address, change.index), None)
                else:
                    self._window.note(change)
            elif isinstance(change, RuleEvent):
                sweep = sweep or change.priority == TEST_RULE_PRIORITY
            elif isinstance(change, Overrun):
                self._rescan_addresses = sweep = True
        if sweep:
            self._queue_sweep()

    def _queue_sweep(self) -> None:
        if not self._sweep_queued:
            self._sweep_queued = True
            self._queue.put_nowait(_Chore(self._sweep_rules))

    def _held(self) -> dict[tuple[Family, str], int]:
        """Where the stack holds each address it put into the kernel: address -> index."""
        out: dict[tuple[Family, str], int] = {}
        for (family, address), record in self._configured.items():
            link = self._links.get(record.ifname)
            if link is not None:
                out[(family, _canonical(address))] = link.index
        return out

    async def _judge(self) -> None:
        """Report what other programs changed, once the work queued before is done.

        The worker runs this in its turn: every change the stack made before
        has been acknowledged, so its echo is already in the watcher's socket.
        """
        self._judge_queued = False
        if self._watcher is not None:
            self._absorb(self._watcher.take())
        if not self._window.latest and not self._rescan_addresses:
            return  # only our own echoes
        held = self._held()
        if self._rescan_addresses:
            self._rescan_addresses = False
            await self._note_kernel_addresses(held)
        by_index = {link.index: link.name for link in self._links.values()}
        now = self._loop.time()
        for foreign in self._window.judge(held, lambda index: self._admin.get(index, False)):
            ifname = by_index.get(foreign.index)
            if ifname is None:
                continue
            if foreign.added:
                self._foreign_copies[(foreign.family, foreign.address, foreign.index)] = (
                    foreign.prefixlen
                )
                unit = _unit_of_label(ifname, foreign.label) if foreign.family == "inet" else -1
                self._report(
                    AddressAddedElsewhere(
                        now, ifname, foreign.family, foreign.address, foreign.prefixlen, unit
                    )
                )
            else:
                record = self._configured.get((foreign.family, foreign.address))
                prefixlen = record.prefixlen if record is not None else foreign.prefixlen
                if record is not None:
                    # Gone from the kernel: a later move or removal must not
                    # delete it again (nor a copy someone puts back meanwhile),
                    # and its coming back is news.
                    del self._configured[(foreign.family, foreign.address)]
                    if record.test_route:
                        await self._drop_test_route(record, self._links[ifname].index)
                self._report(
                    AddressRemovedElsewhere(now, ifname, foreign.family, foreign.address, prefixlen)
                )

    async def _note_kernel_addresses(self, held: dict[tuple[Family, str], int]) -> None:
        """After lost events: every difference between the kernel and ``held`` is a change."""
        present: set[tuple[Family, str, int]] = set()
        async for msg in await self._ipr.addr("dump"):
            address = msg.get("address")
            if address is None:
                continue
            family: Family = "inet" if msg["family"] == socket.AF_INET else "inet6"
            key = (family, _canonical(address), int(msg["index"]))
            present.add(key)
            if held.get(key[:2]) != key[2]:
                self._window.note(
                    AddressEvent(
                        True, family, key[2], key[1], int(msg["prefixlen"]), msg.get("label") or ""
                    )
                )
        for (family, address), index in held.items():
            if (family, address, index) not in present:
                self._window.note(AddressEvent(False, family, index, address, 0))

    async def _drop_test_route(self, record: _Configured, index: int) -> None:
        """The policy rule and table route of a test address that left the kernel."""
        table = TEST_TABLE_BASE + index
        await self._test_rule("del", record.address, table)
        with contextlib.suppress(NetlinkError):
            await self._ipr.route("del", dst=record.test_route, oif=index, table=table)

    async def _sweep_rules(self, report: bool = True) -> None:
        """Exactly one policy rule per test address the stack holds, and no other.

        Rules of priority TEST_RULE_PRIORITY into a table from TEST_TABLE_BASE
        up are the daemon's: one left by an interface that went away (its
        table went with it, the rule does not), by an earlier run, or by a
        test address removed meanwhile is deleted; one that someone deleted is
        put back.
        """
        self._sweep_queued = False
        want: set[tuple[str, int]] = set()
        for record in self._configured.values():
            link = self._links.get(record.ifname)
            if record.test_route and link is not None:
                want.add((_canonical(record.address), TEST_TABLE_BASE + link.index))
        have: set[tuple[str, int]] = set()
        async for msg in await self._ipr.rule("dump", family=socket.AF_INET):
            table = int(msg.get("table") or 0)
            if msg.get("priority") == TEST_RULE_PRIORITY and table >= TEST_TABLE_BASE:
                src = msg.get("src")
                if src and msg["src_len"] == 32:
                    have.add((_canonical(src), table))
        removed = sorted(have - want)
        restored = sorted(want - have)
        for address, table in removed:
            await self._test_rule("del", address, table)
        for address, table in restored:
            await self._test_rule("add", address, table)
        if report and (removed or restored):
            self._report(
                PolicyRulesRepaired(
                    self._loop.time(),
                    tuple(f"from {a} lookup {t}" for a, t in restored),
                    tuple(f"from {a} lookup {t}" for a, t in removed),
                )
            )

    # ------------------------------------------------------------ kernel changes, in order

    async def _worker(self) -> None:
        held: Action | _Chore | None = None
        while True:
            self._busy = False
            action = held if held is not None else await self._queue.get()
            self._busy = True
            held = None
            if isinstance(action, _Chore):
                with contextlib.suppress(NetlinkError, OSError, IpmpError, ValueError):
                    await action.run()
                continue
            if isinstance(action, MoveAddress):
                # A failover queues its moves (each followed by its announcement)
                # together: carry the moves out as one batch, then announce.
                moves, announces, routes = [action], [], []
                chores: list[_Chore] = []
                while not self._queue.empty():
                    following = self._queue.get_nowait()
                    if isinstance(following, MoveAddress):
                        moves.append(following)
                    elif isinstance(following, AnnounceAddress):
                        announces.append(following)
                    elif isinstance(following, _Chore):
                        chores.append(following)  # after the batch: it judges its echoes
                    elif isinstance(following, MoveRoute):
                        routes.append(following)  # the routes follow in the same batch
                    else:
                        held = following
                        break
                for outcome in await self._move_all(moves, announces, routes):
                    self._report(outcome)
                for chore in chores:
                    self._queue.put_nowait(chore)
                continue
            now = self._loop.time()
            try:
                event = await self._carry_out(action)
            except (NetlinkError, OSError, IpmpError, ValueError) as err:
                event = ActionFailed(now, action, _describe(err))
            self._settle_arp_announce()
            self._report(event if event is not None else ActionCompleted(self._loop.time(), action))

    def _settle_arp_announce(self) -> None:
        """arp_announce 2 on members that hold an IPv4 address ARP may use, else 0.

        With 2 the kernel picks the ARP sender among the interface's own
        addresses of scope link or wider; a member holding only its scope-host
        test address (a standby, or one whose data addresses failed over) has
        none, and the kernel then borrows a sibling's data address: its ARP
        requests would point the neighbours at the wrong MAC for it.  With 0
        the sender is the packet's own source, the test address of the probe;
        nothing else leaves such a member (it carries no spreading route).
        """
        holders = {
            r.ifname for r in self._configured.values() if r.family == "inet" and not r.test_route
        }
        for ifname in self._saved_sysctls:
            want = "2" if ifname in holders else "0"
            if self._arp_announce.get(ifname) != want:
                path = self.sysctl_root / "ipv4" / "conf" / ifname / "arp_announce"
                with contextlib.suppress(OSError):
                    self._write_sysctl(path, want)
                    self._arp_announce[ifname] = want

    async def _move_all(
        self,
        moves: list[MoveAddress],
        announces: list[AnnounceAddress],
        routes: Sequence[MoveRoute] = (),
    ) -> list[Event]:
        """Move addresses: every add first (the address is never absent), then the deletes.

        The step's route moves go in the first batch, after its adds (see
        ``rtnl_batch``); a route the last dump did not show as it is named,
        or one the raw replace cannot say, is moved by ``move_route``.

        The kernel changes go out in batches (``rtnl_batch``); each move still
        gets its own outcome.  A move whose add fails leaves the address where
        it was.  An address is announced from its new interface as soon as
        its add is acknowledged: not before (neighbours would learn a MAC that
        does not hold it yet), and not after the whole batch (a thousand
        addresses take a while, and the event reader competes for the loop).
        """
        outcome: dict[int, str] = {}
        added: dict[int, _Configured | None] = {}
        batch: list[tuple[int, AddressChange]] = []
        olds = {i: self._configured.get((m.family, m.address)) for i, m in enumerate(moves)}
        pending = {(a.family, a.address): a for a in announces}
        for i, move in enumerate(moves):
            add = AddAddress(
                move.to_if,
                move.family,
                move.to_unit,
                move.address,
                move.prefixlen,
                move.broadcast,
                move.up,
                move.deprecated,
                False,
            )
            try:
                if not move.up or _link_local(move.family, move.address):
                    added[i] = await self._install(add)  # nothing to ask the kernel
                    continue
                change = AddressChange(
                    True,
                    move.family,
                    self._index(move.to_if),
                    move.address,
                    move.prefixlen,
                    label=_label(move.to_if, move.to_unit) if move.family == "inet" else "",
                    broadcast=move.broadcast if move.family == "inet" else "",
                    deprecated=move.deprecated,
                )
            except (NetlinkError, OSError, IpmpError, ValueError) as err:
                outcome[i] = _describe(err)
                continue
            self._down.pop((move.family, move.address), None)
            batch.append((i, change))
        fast: list[tuple[MoveRoute, RouteChange]] = []
        slow: list[MoveRoute] = []
        for route in routes:
            from_link, to_link = self._links.get(route.from_if), self._links.get(route.to_if)
            msg = (
                self._route_msgs.get(move_name(route, from_link.index))
                if from_link is not None
                else None
            )
            replace = (
                fast_change(msg, route.family, to_link.index)
                if msg is not None and to_link is not None
                else None
            )
            if replace is None:
                slow.append(route)
            else:
                fast.append((route, replace))
        route_events: list[Event] = []
        chunks = [batch[s : s + ANNOUNCE_CHUNK] for s in range(0, len(batch), ANNOUNCE_CHUNK)]
        for n, chunk in enumerate(chunks or [[]]):
            wire: list[AddressChange | RouteChange] = [c for _, c in chunk]
            wire += [r for _, r in fast] if n == 0 else []
            codes = await self._batch_raw(wire)
            done = fast if n == 0 else []
            for (route, replaced), code in zip(done, codes[len(chunk) :], strict=True):
                if code == 0:
                    self._route_msgs[move_name(route, replaced.oif)] = self._route_msgs.pop(
                        move_name(route, self._links[route.from_if].index), None
                    )
                    route_events.append(ActionCompleted(self._loop.time(), route))
                else:
                    slow.append(route)  # onlink needed, gone meanwhile...: the careful way
            for (i, _), code in zip(chunk, codes[: len(chunk)], strict=True):
                move = moves[i]
                if code not in (0, errno.EEXIST):
                    outcome[i] = f"netlink: {os.strerror(code)}"
                    continue
                key = (move.family, move.address)
                added[i] = self._configured[key] = _Configured(
                    move.to_if, move.family, move.address, move.prefixlen
                )
                if key in pending:
                    self._report(self._announce(pending.pop(key), self._loop.time()))
        deletes: list[tuple[int, AddressChange]] = []
        for i, new in added.items():
            move = moves[i]
            key = (move.family, move.address)
            old = olds[i]
            if new is not None:
                self._configured[key] = new
            elif self._configured.get(key) is old:
                self._configured.pop(key, None)
            if move.from_if != move.to_if and (old is None or old.ifname != move.from_if):
                # We lost track of the copy the engine moves away from (one of
                # two copies after a restart): it is where the engine says.
                old = _Configured(move.from_if, move.family, move.address, move.prefixlen)
            if old is None or old.ifname == move.to_if:
                continue
            link = self._links.get(old.ifname)
            if old.test_route or link is None or _link_local(old.family, old.address):
                try:
                    await self._delete(old)  # the rare cases, one by one
                except (NetlinkError, OSError, IpmpError, ValueError) as err:
                    outcome[i] = _describe(err)
                continue
            deletes.append(
                (i, AddressChange(False, old.family, link.index, old.address, old.prefixlen))
            )
        for (i, _), code in zip(deletes, await self._batch(deletes), strict=True):
            if code not in (0, errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV):
                outcome[i] = f"netlink: {os.strerror(code)}"
        self._settle_arp_announce()
        now = self._loop.time()
        events: list[Event] = [
            ActionFailed(now, move, outcome[i]) if i in outcome else ActionCompleted(now, move)
            for i, move in enumerate(moves)
        ]
        events += [self._announce(a, now) for a in pending.values()]
        for route in slow:
            try:
                await self._carry_out(route)
                route_events.append(ActionCompleted(self._loop.time(), route))
            except (NetlinkError, OSError, IpmpError, ValueError) as err:
                route_events.append(ActionFailed(self._loop.time(), route, _describe(err)))
        return events + route_events

    async def _batch(self, changes: list[tuple[int, AddressChange]]) -> list[int]:
        return await self._batch_raw([change for _, change in changes])

    async def _batch_raw(self, changes: list[AddressChange | RouteChange]) -> list[int]:
        if not changes:
            return []
        if self._batcher is None:
            self._batcher = AddressBatcher()
        now = self._loop.time()
        # The stack's own address changes are announced before they are made,
        # so their echoes are not taken for another program's (addr_watch).
        own = [
            (c.add, c.family, _canonical(c.address), c.index)
            if isinstance(c, AddressChange)
            else None
            for c in changes
        ]
        for key in own:
            if key is not None:
                self._own.expect(*key, now)
        codes = await self._batcher.run(changes)
        for key, code in zip(own, codes, strict=True):
            if code and key is not None:
                self._own.withdraw(*key)
        return codes

    def _already_as(self, action: UpdateAddress) -> bool:
        """Whether the kernel already holds the address as ``action`` asks: then the
        update (a remove and an add on Linux) would only take it away for a moment.

        A test address the kernel holds in the test form (an IPv4 /32 with its
        test table, an IPv6 link-local) needs nothing more for NOFAILOVER,
        which is in.mpathd's own flag; only a data address's form or a test
        address that is still in a data address's form is redone.
        """
        record = self._configured.get((action.family, action.address))
        if record is None or record.ifname != action.ifname or not action.up or not action.test:
            return False
        if action.family == "inet":
            return bool(record.test_route)
        return _link_local(action.family, action.address)

    async def _carry_out(self, action: Action) -> Event | None:
        if isinstance(action, AddAddress):
            await self._add(action)
        elif isinstance(action, RemoveAddress):
            key = (action.family, action.address)
            record = self._configured.get(key)
            if record is not None and record.ifname == action.ifname:
                await self._remove(action.family, action.address)
            else:
                # A second copy (a move a crash interrupted, or one another
                # program put there): only that copy goes; the one we know of
                # is the copy the engine keeps.
                down = self._down.get(key)
                if down is not None and down.ifname == action.ifname:
                    del self._down[key]
                await self._delete(
                    _Configured(action.ifname, action.family, action.address, action.prefixlen)
                )
        elif isinstance(action, UpdateAddress):
            if self._already_as(action):
                return None
            await self._remove(action.family, action.address)
            await self._add(
                AddAddress(
                    action.ifname,
                    action.family,
                    action.unit,
                    action.address,
                    action.prefixlen,
                    _broadcast(action.family, action.address, action.prefixlen),
                    action.up,
                    action.deprecated,
                    action.test,
                )
            )
        elif isinstance(action, PlumbInterface):
            await self._plumb(action)
        elif isinstance(action, UnplumbInterface):
            await self._unplumb(action)
        elif isinstance(action, SpreadOutbound):
            return await self._spread(action)
        elif isinstance(action, MoveRoute):
            from_index = self._index(action.from_if)
            remembered = self._route_msgs.get(move_name(action, from_index))
            await move_route(self._ipr, action, from_index, self._index(action.to_if), remembered)
        elif isinstance(action, AddRoute):
            await add_route(
                self._ipr, action, self._index(action.ifname) if action.ifname else None
            )
        elif isinstance(action, AnnounceAddress):
            return self._announce(action, self._loop.time())
        elif isinstance(action, PrepareInterface):
            return self._prepare(action.ifname)
        elif isinstance(action, ReleaseInterface):
            return self._release(action.ifname)
        return None

    def _index(self, name: str) -> int:
        link = self._links.get(name)
        if link is None:
            raise IpmpError(f"{name}: no such interface")
        return link.index

    async def _add(self, action: AddAddress) -> None:
        record = await self._install(action)
        if record is not None:
            self._configured[(action.family, action.address)] = record

    async def _install(self, action: AddAddress) -> _Configured | None:
        """Put one address into the kernel; return how, or None if it is down."""
        key = (action.family, action.address)
        if not action.up:
            self._down[key] = action  # Linux has no "down" address: kept aside
            return None
        self._down.pop(key, None)
        index = self._index(action.ifname)
        stray = self._foreign_copies.pop((action.family, _canonical(action.address), index), None)
        if stray is not None and not _link_local(action.family, action.address):
            # Adopting an address another program put here (a test address
            # added back by hand): in the form the stack gives it, not theirs.
            await self._delete(_Configured(action.ifname, action.family, action.address, stray))
        if _link_local(action.family, action.address):
            # The kernel made it when IPv6 came up on the interface.
            return _Configured(action.ifname, "inet6", action.address, 64)
        lifetime = {"preferred_lft": 0} if action.deprecated else {}
        if action.family == "inet":
            label = _label(action.ifname, action.unit)
            isolated = action.test and action.deprecated
            prefixlen = 32 if isolated else action.prefixlen
            # Scope host keeps it out of source selection even for routes
            # without a preferred source (the multipath spreading routes).
            scope = {"scope": 254} if isolated else {}
            await self._netlink_add(
                index=index,
                address=action.address,
                prefixlen=prefixlen,
                label=label,
                broadcast=action.broadcast or None,
                **lifetime,
                **scope,
            )
            record = _Configured(action.ifname, "inet", action.address, prefixlen)
            if isolated:
                record.test_route = await self._route_test_address(action, index)
        else:
            await self._netlink_add(
                index=index,
                address=action.address,
                prefixlen=action.prefixlen,
                flags=IFA_F_NODAD,
                **lifetime,
            )
            record = _Configured(action.ifname, "inet6", action.address, action.prefixlen)
        return record

    async def _netlink_add(self, **args: Any) -> None:
        args = {k: v for k, v in args.items() if v is not None}
        family: Family = "inet" if ":" not in args["address"] else "inet6"
        own = (True, family, _canonical(args["address"]), args["index"])
        self._own.expect(*own, self._loop.time())
        try:
            await self._ipr.addr("add", **args)
        except NetlinkError as err:
            self._own.withdraw(*own)
            if err.code != errno.EEXIST:
                raise

    async def _route_test_address(self, action: AddAddress, index: int) -> str:
        """Probes from a /32 test address find their subnet through their own table."""
        subnet = str(ipaddress.ip_interface(f"{action.address}/{action.prefixlen}").network)
        await self._test_route(index, subnet, action.address)
        await self._test_rule("add", action.address, TEST_TABLE_BASE + index)
        return subnet

    async def _test_route(self, index: int, subnet: str, address: str) -> None:
        """The route of a test address's own table: its subnet, on its interface."""
        with contextlib.suppress(NetlinkError):
            await self._ipr.route(
                "replace",
                dst=subnet,
                oif=index,
                table=TEST_TABLE_BASE + index,
                scope=253,
                prefsrc=address,
            )

    async def _restore_test_routes(self, name: str) -> None:
        """Taking a link down deleted every route through it, the test tables' too."""
        link = self._links.get(name)
        for record in list(self._configured.values()):
            if link is not None and record.ifname == name and record.test_route:
                await self._test_route(link.index, record.test_route, record.address)

    async def _test_rule(self, command: str, address: str, table: int) -> None:
        """The policy rule that sends a test address's own traffic to its table."""
        with contextlib.suppress(NetlinkError):
            await self._ipr.rule(
                command,
                src=address,
                src_len=32,
                table=table,
                priority=TEST_RULE_PRIORITY,
                family=socket.AF_INET,
            )

    async def _remove(self, family: Family, address: str) -> None:
        self._down.pop((family, address), None)
        record = self._configured.pop((family, address), None)
        if record is None:
            return
        await self._delete(record)

    async def _delete(self, record: _Configured) -> None:
        if _link_local(record.family, record.address):
            return
        link = self._links.get(record.ifname)
        if link is None:
            return  # the interface is gone, and its addresses with it
        own = (False, record.family, _canonical(record.address), link.index)
        self._own.expect(*own, self._loop.time())
        try:
            await self._ipr.addr(
                "del", index=link.index, address=record.address, prefixlen=record.prefixlen
            )
        except NetlinkError as err:
            self._own.withdraw(*own)
            if err.code not in (errno.EADDRNOTAVAIL, errno.ENOENT, errno.ENODEV):
                raise
        if record.test_route:
            table = TEST_TABLE_BASE + link.index
            await self._test_rule("del", record.address, table)
            with contextlib.suppress(NetlinkError):
                await self._ipr.route("del", dst=record.test_route, oif=link.index, table=table)

    async def _plumb(self, action: PlumbInterface) -> None:
        index = self._index(action.name)
        if action.family == "inet6":
            self._write_sysctl(
                self.sysctl_root / "ipv6" / "conf" / action.name / "disable_ipv6", "0"
            )
        link = self._links.get(action.name)
        if link is not None and link.judged and not link.admin_up:
            # Taken down after it was up ("ip link set X down"): plumbing does
            # not undo the administrator's decision; the link stays failed
            # until it is brought up again.
            return
        await self._ipr.link("set", index=index, state="up")

    async def _unplumb(self, action: UnplumbInterface) -> None:
        for key, record in list(self._configured.items()):
            if record.ifname == action.name and record.family == action.family:
                del self._configured[key]
                await self._delete(record)

    # ------------------------------------------------------------ outbound spreading

    async def _spread(self, action: SpreadOutbound) -> Event | None:
        """A per-flow multipath route for the subnet over the active interfaces.

        The route is installed as the subnet's two halves, which are more
        specific than the kernel's per-interface prefix routes and so win
        over them, while those stay as a fallback.  Flows are hashed on
        layer 4 (fib_multipath_hash_policy=1): a flow keeps its interface, so
        it is never reordered.
        """
        network = ipaddress.ip_network(action.subnet)
        halves = (
            list(network.subnets(prefixlen_diff=1))
            if network.prefixlen < network.max_prefixlen
            else [network]
        )
        family = socket.AF_INET if action.family == "inet" else socket.AF_INET6
        indexes = [self._links[n].index for n in action.ifnames if n in self._links]
        refused = action.family == "inet6" and len(indexes) > 1
        if refused:
            # Linux takes no multipath route of device-only IPv6 nexthops
            # (EINVAL, "Device only routes can not be added for IPv6 using the
            # multipath API"): the kernel's own prefix routes carry IPv6 then.
            indexes = []
        for half in halves:
            spec: dict[str, Any] = {"dst": str(half), "family": family, "table": 254}
            if not indexes:
                with contextlib.suppress(NetlinkError):
                    await self._ipr.route("del", **spec)
                continue
            if len(indexes) == 1:
                spec["oif"] = indexes[0]
            else:
                spec["multipath"] = [{"oif": index} for index in indexes]
            await self._ipr.route("replace", scope=253, **spec)
        if refused and action.subnet not in self._told_no_spreading:
            self._told_no_spreading.add(action.subnet)
            return ActionFailed(
                self._loop.time(),
                action,
                f"{action.subnet}: no outbound spreading for IPv6 on Linux (the kernel "
                "refuses device-only IPv6 multipath routes); its prefix routes are used",
            )
        changes: list[str] = []
        if len(indexes) > 1:
            version = "ipv4" if action.family == "inet" else "ipv6"
            path = self.sysctl_root / version / "fib_multipath_hash_policy"
            old = self._read_sysctl(path)
            if old is not None and old != "1":
                self._write_sysctl(path, "1")
                changes.append(f"net.{version}.fib_multipath_hash_policy=1 (was {old})")
        return SettingsChanged(self._loop.time(), ",".join(action.ifnames), tuple(changes))

    # ------------------------------------------------------------ member settings

    def _prepare(self, ifname: str) -> Event:
        changes: list[str] = []
        saved = self._saved_sysctls.setdefault(ifname, [])
        for family, key, value in MEMBER_SYSCTLS:
            path = self.sysctl_root / family / "conf" / ifname / key
            old = self._read_sysctl(path)
            if old is None or old == value:
                continue
            if not any(p == path for p, _ in saved):
                saved.append((path, old))
            self._write_sysctl(path, value)
            changes.append(f"{_sysctl_name(path)}={value} (was {old})")
        self._arp_announce[ifname] = "2"
        self._settle_arp_announce()
        return SettingsChanged(self._loop.time(), ifname, tuple(changes))

    def _release(self, ifname: str) -> Event:
        changes: list[str] = []
        self._arp_announce.pop(ifname, None)
        for path, old in self._saved_sysctls.pop(ifname, []):
            if self._read_sysctl(path) is not None:
                self._write_sysctl(path, old)
                changes.append(f"{_sysctl_name(path)}={old}")
        return SettingsChanged(self._loop.time(), ifname, tuple(changes), restored=True)

    @staticmethod
    def _read_sysctl(path: Path) -> str | None:
        try:
            return path.read_text().strip()
        except OSError:
            return None

    @staticmethod
    def _write_sysctl(path: Path, value: str) -> None:
        path.write_text(value)

    # ------------------------------------------------------------ probes

    def _send_probe(self, action: SendProbe, now: float) -> Event:
        try:
            sock = self._probe_socket(action.ifname, action.family, action.source)
            packet = packets.echo_request(
                action.family, action.icmp_id, action.seq, action.timestamp_ms, action.kind
            )
            if action.family == "inet":
                sock.sendto(packet, (action.target, 0))
            else:
                sock.sendto(packet, (action.target, 0, 0, self._index(action.ifname)))
        except (OSError, IpmpError) as err:
            return ActionFailed(now, action, _describe(err))
        return ActionCompleted(now, action)

    def _probe_socket(self, ifname: str, family: Family, source: str) -> socket.socket:
        key = (ifname, family)
        current = self._probe_sockets.get(key)
        if current is not None and current[0] == source:
            return current[1]
        if current is not None:
            self._loop.remove_reader(current[1].fileno())
            current[1].close()
        index = self._index(ifname)
        if family == "inet":
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(source))
        else:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, index)
            # Pass echo replies only (struct icmp6_filter: a set bit blocks a type).
            blocked = [0xFFFFFFFF] * 8
            blocked[packets.ICMP6_ECHO_REPLY >> 5] &= ~(1 << (packets.ICMP6_ECHO_REPLY & 31))
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, struct.pack("=8I", *blocked))
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_BINDTODEVICE, ifname.encode())
            sock.bind((source, 0) if family == "inet" else (source, 0, 0, index))
        except OSError:
            sock.close()
            raise
        # The kernel's receive time of each reply (ipmpstat -p's NETRTT): best
        # effort, a kernel that refuses it only leaves NETRTT empty.
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sock.setblocking(False)
        self._loop.add_reader(sock.fileno(), self._receive, ifname, family, sock)
        self._probe_sockets[key] = (source, sock)
        return sock

    def _receive(self, ifname: str, family: Family, sock: socket.socket) -> None:
        while True:
            try:
                data, ancillary, _, peer = sock.recvmsg(2048, socket.CMSG_SPACE(_TIMESPEC.size))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            reply = packets.parse_echo_reply(family, data, str(peer[0]).split("%")[0])
            if reply is None:
                continue
            now = self._loop.time()
            self._report(
                ProbeReplyReceived(
                    now,
                    ifname,
                    family,
                    reply.source,
                    reply.icmp_id,
                    reply.seq,
                    reply.timestamp_ms,
                    reply.kind,
                    reply.length,
                    _kernel_receive_time(ancillary, now),
                )
            )

    # ------------------------------------------------------------ announcements

    def _announce(self, action: AnnounceAddress, now: float) -> Event:
        link = self._links.get(action.ifname)
        if link is None:
            return ActionFailed(now, action, f"{action.ifname}: no such interface")
        record = self._configured.get((action.family, action.address))
        for delay in ANNOUNCE_SCHEDULE:
            if delay <= 0 and record is not None and record.ifname == link.name:
                # The address is there: the first one leaves now, not after
                # whatever the loop does next (a move's deletes would come first).
                self._announce_once(action, link)
            else:
                self._loop.call_later(delay, self._announce_once, action, link)
        return ActionCompleted(now, action)

    def _announce_once(self, action: AnnounceAddress, link: _Link) -> None:
        """One gratuitous ARP or unsolicited NA; a failure only loses one of the burst.

        Two sockets serve every interface and stay open: opening and binding a
        packet socket per frame costs tens of milliseconds (measured in
        BENCHMARKS.md), which a mass failover cannot afford.
        """
        record = self._configured.get((action.family, action.address))
        if record is None or record.ifname != link.name:
            # It moved on (a failback within the burst): a late announcement
            # from here would point the neighbours at the wrong interface.
            return
        with contextlib.suppress(OSError):
            if action.family == "inet":
                if self._arp_socket is None:
                    # Protocol 0: it sends, it never receives.
                    self._arp_socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
                self._arp_socket.sendto(
                    packets.gratuitous_arp(link.mac, action.address), (link.name, ETH_P_ARP)
                )
            else:
                if self._na_socket is None:
                    self._na_socket = socket.socket(
                        socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6
                    )
                    self._na_socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
                # The source (the moved address) and interface travel with the packet.
                info = ipaddress.IPv6Address(action.address).packed + struct.pack("@I", link.index)
                self._na_socket.sendmsg(
                    [packets.unsolicited_na(link.mac, action.address)],
                    [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, info)],
                    0,
                    ("ff02::1", 0, 0, link.index),
                )


def _kernel_receive_time(ancillary: list[tuple[int, int, bytes]], now: float) -> float | None:
    """The SO_TIMESTAMPNS receive time in ``ancillary``, moved onto the loop's clock.

    The kernel stamps packets with the wall clock; ``now`` is the monotonic
    clock of the daemon's loop: the stamp's age on the wall clock is its age
    on the loop's clock too (a wall-clock step between the two reads aside).
    """
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            age = time.time() - (int(seconds) + int(nanoseconds) / 1e9)
            return now - max(0.0, age)
    return None


def _label(ifname: str, unit: int) -> str:
    """The kernel label of logical interface ``unit`` of ``ifname`` (eth0, eth0:1...)."""
    label = ifname if unit == 0 else f"{ifname}:{unit}"
    if len(label) > 15:
        raise IpmpError(f"{label}: logical interface names are at most 15 characters")
    return label


def _canonical(address: str) -> str:
    """The address as the kernel's messages spell it (``2001:db8::1``, not ``2001:0db8::1``)."""
    return str(ipaddress.ip_address(address))


def _unit_of_label(ifname: str, label: str) -> int:
    """The logical unit an IPv4 label names (``eth0:2`` is 2, ``eth0`` 0); -1 when it names none."""
    if label == ifname:
        return 0
    prefix, _, suffix = label.partition(":")
    return int(suffix) if prefix == ifname and suffix.isdigit() else -1


def _link_local(family: Family, address: str) -> bool:
    return family == "inet6" and ipaddress.IPv6Address(address).is_link_local


def _sysctl_name(path: Path) -> str:
    """``.../ipv6/conf/eth0/key`` as sysctl(8) names it: ``net.ipv6.conf.eth0.key``."""
    return ".".join(("net", *path.parts[-4:]))


def _solaris_mac(mac: str) -> str:
    """``08:00:20:b9:19:fa`` as Solaris prints it: ``8:0:20:b9:19:fa``."""
    if not mac:
        return ""
    return ":".join(format(int(part, 16), "x") for part in mac.split(":"))


def _broadcast(family: Family, address: str, prefixlen: int) -> str:
    if family != "inet":
        return ""
    return str(ipaddress.IPv4Interface(f"{address}/{prefixlen}").network.broadcast_address)


def _describe(err: BaseException) -> str:
    if isinstance(err, IpmpError):
        return err.message
    if isinstance(err, NetlinkError):
        return f"netlink: {err.args[1] if len(err.args) > 1 else err}"
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return f"{type(err).__name__}: {err}"
