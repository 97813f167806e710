"""The in.mpathd engine: failure and repair detection, failover and failback.

Sans-IO: ``handle(event)`` and ``tick(now)`` return actions; ``deadline()``
says when ``tick`` must run next.  ``ifconfig`` and ``boot`` are requests that
change the configuration and may be refused with ``IpmpError``.

Decisions follow the guide first, then the facts of the original daemon
(../shared/reference/mpathd-facts.md), section numbers cited as "facts §N".
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ipmp.core.actions import (
    LOG_DEBUG,
    LOG_ERR,
    LOG_INFO,
    LOG_WARNING,
    Action,
    AddRoute,
    AnnounceAddress,
    Log,
    MoveRoute,
    PrepareInterface,
    ReadHostnameFiles,
    ReleaseInterface,
    RemoveAddress,
    SendProbe,
    SpreadOutbound,
)
from ipmp.core.constants import (
    EXCEPTION_FACTOR,
    IF_SCAN_INTERVAL,
    LINK_UP_PERMIN,
    LOWER_FDT_TRIGGER,
    MAXDEFERREDRTT,
    MIN_PROBE_TARGETS,
    MIN_SETTLING_TIME,
    NEXT_FDT_MULTIPLE,
    NUM_PROBE_FAILS,
    NUM_PROBE_REPAIRS,
    PROBE_STATS_COUNT,
    TESTADDR_CONF_TIME,
)
from ipmp.core.due import DueIndex
from ipmp.core.errors import IpmpError
from ipmp.core.events import (
    ActionCompleted,
    ActionFailed,
    AddressAddedElsewhere,
    AddressesFound,
    AddressRemovedElsewhere,
    Event,
    FoundAddress,
    HostnameFilesRead,
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
from ipmp.core.failover import (
    Failover,
    choose_destinations,
    fail_back,
    fail_over,
    homed_at,
    move_addresses,
    pending_failback,
)
from ipmp.core.flags import IFF_DEPRECATED, IFF_NOFAILOVER, IFF_NOLOCAL, IFF_NOXMIT, IFF_UP
from ipmp.core.hostname_files import HostnameFile
from ipmp.core.ifconfig_apply import ApplyContext, apply_ifconfig
from ipmp.core.ifconfig_format import format_all, format_interface
from ipmp.core.ifconfig_grammar import IfconfigCommand, Plumb, SetGroup, parse_ifconfig
from ipmp.core.model import (
    HostTable,
    Instance,
    LogicalInterface,
    Nic,
    is_link_local,
    link_local_from_mac,
)
from ipmp.core.mpathd_config import MpathdConfig
from ipmp.core.persist import forget_nics, table_to_state
from ipmp.core.probing import ProbeInstance, Target, TargetState
from ipmp.core.reconcile import mtu_changes, reconcile, undo_actions
from ipmp.core.routes import RouteFollower, router_member
from ipmp.core.types import FAMILIES, Family, RandomSource

MINUTE = 60.0
NO_TEST_ADDRESS = (
    "No test address configured on interface {}; disabling probe-based failure detection on it"
)
TEST_ADDRESS_NOW = (
    "Test address now configured on interface {}; enabling probe-based failure detection on it"
)
COULDNT_MOVE = (
    "moving addresses from failed {} interfaces: {} (couldn't move, no alternative interface)"
)
"""A family's data addresses that no member can take.  S10's in.mpathd has no
message for it (its failover moves nothing then, facts §4.2); the closest
documented text is the boot scripts' line for a missing NIC, which the guide
quotes (NICs That Were Missing at System Boot; How to Replace a Physical
Interface That Has Failed: "hme1 (couldn't move, no alternative interface)";
facts §4.9, §5 Other), IPv4 or IPv6 naming the family."""

RESTORE_LIMIT = 3
"""Restores of one data address another program deleted, per minute, before giving up."""


@dataclass
class GroupState:
    """Per-group failure detection time, adapted to the targets' RTTs (facts §1.5)."""

    name: str
    fdt_ms: int
    interval_ms: int
    failed: bool = False

    @property
    def interval(self) -> float:
        return self.interval_ms / 1000.0


@dataclass
class Tracking:
    """What the daemon remembers about a NIC it tracks, beyond the table."""

    since: float
    no_test_logged: bool = False
    not_plumbed_logged: set[Family] = field(default_factory=set)
    link_ups: list[float] = field(default_factory=list)
    flap_logged: bool = False
    repair_not_before: float = 0.0
    failed_by_probes: bool = False
    subnet_warned: bool = False
    no_targets_logged: set[Family] = field(default_factory=set)
    stranded_logged: set[Family] = field(default_factory=set)


@dataclass(frozen=True)
class Checkpoint:
    """The engine's configuration at one moment, to return to if a request fails."""

    table: HostTable
    detached: frozenset[str]


@dataclass(frozen=True)
class IfconfigOutcome:
    """What an ifconfig request prints, and what it made the engine do."""

    output: str
    actions: list[Action]


def _members_first(actions: list[Action]) -> list[Action]:
    """The step's PrepareInterface actions first, the rest in their order.

    A member's kernel settings (on Linux arp_ignore above all) must be in
    place before its addresses come up: otherwise a sibling may answer ARP
    for them meanwhile, and a neighbour keeps the wrong MAC for a long time.
    """
    prepare = [a for a in actions if isinstance(a, PrepareInterface)]
    if not prepare:
        return actions
    return prepare + [a for a in actions if not isinstance(a, PrepareInterface)]


def _log(message: str, priority: int = LOG_ERR) -> Log:
    return Log(priority, message)


def _of_group(nic: Nic) -> str:
    return f"{nic.name} of group {nic.group}" if nic.group else nic.name


def _fam_label(family: Family) -> str:
    return "IPv4" if family == "inet" else "IPv6"


def _fam_labels(families: Iterable[Family]) -> str:
    return " and ".join(_fam_label(family) for family in families)


def _stranded(plan: dict[Family, Nic | None]) -> list[Family]:
    """The families of a failover plan that no member can take."""
    return [family for family, dst in plan.items() if dst is None]


class Engine:
    """The whole daemon logic, fed with events and asked for actions.

    ``rng`` is an injected, seeded random source (probe jitter); ``icmp_id_base``
    plays the part of the daemon's pid in the ICMP id of its probes.
    """

    def __init__(
        self,
        config: MpathdConfig | None = None,
        rng: RandomSource | None = None,
        icmp_id_base: int = 0,
        netmask_for: Callable[[str], int | None] | None = None,
        resolve_host: Callable[[str], str | None] | None = None,
    ) -> None:
        if rng is None:
            raise ValueError("the engine needs an injected random source")
        self.config = config or MpathdConfig()
        self.rng = rng
        self.icmp_id_base = icmp_id_base
        self.table = HostTable()
        self.groups: dict[str, GroupState] = {}
        self.probes: dict[tuple[str, Family], ProbeInstance] = {}
        self.tracking: dict[str, Tracking] = {}
        self.routes: tuple[Route, ...] = ()
        self.route_follower = RouteFollower()
        self.files: dict[tuple[str, Family], HostnameFile] = {}
        self.last_fdt_raise = float("-inf")
        self.next_scan: float | None = None
        self.found: AddressesFound | None = None
        self.detached: set[str] = set()
        self.prepared: set[str] = set()
        self.spread: dict[tuple[Family, str], tuple[str, ...]] = {}
        self.counters: dict[str, int] = {"failovers": 0, "failbacks": 0, "group_failures": 0}
        self.hardware_present: dict[str, bool] = {}
        # NICs attached at run time whose hostname files are being read
        # (``ReadHostnameFiles``), and the one being configured from them.
        self.booted = False
        self._awaiting_files: set[str] = set()
        self._configuring: str | None = None

        # Other writers: addresses set down because another program deleted
        # them (brought up again when it adds them back), and restore times.
        self.downed_elsewhere: set[tuple[str, Family, str]] = set()
        self.restored_at: dict[tuple[Family, str], list[float]] = {}
        self.foreign_logged: set[tuple[str, Family, str]] = set()
        self._now = float("-inf")
        # Timers, kept current instead of walked (see ``_file_timers``).
        self._probe_due: DueIndex[tuple[str, Family]] = DueIndex()
        self._muted_due: dict[tuple[str, Family], float] = {}
        self._repair_due: list[tuple[float, str]] = []
        self._timers_dirty: set[tuple[str, Family]] = set()
        self._probe_order: dict[tuple[str, Family], int] = {}
        self._all_timers_dirty = True
        self.apply_context = ApplyContext()
        if netmask_for is not None:
            self.apply_context.netmask_for = netmask_for
        if resolve_host is not None:
            self.apply_context.resolve_host = resolve_host

    # ======================================================================
    # public entry points
    # ======================================================================

    def handle(self, event: Event) -> list[Action]:
        """Feed one event; return what to do."""
        now = event.now
        self._now = max(self._now, now)
        actions: list[Action]
        if isinstance(event, ProbeReplyReceived):
            # The common event touches one probe timer (failure and repair
            # mark them all, see ``_failure`` and ``_repair``).
            self._timers_dirty.add((event.ifname, event.family))
            actions = self._probe_reply(event)
            self._arm_scan(now)
            return self._with_spreading(actions)
        if not isinstance(event, ActionCompleted | ActionFailed):
            self._all_timers_dirty = True  # outcomes of actions change no timer
        if isinstance(event, LinkWentDown):
            actions = self._link_down(event.name, now)
        elif isinstance(event, LinkCameUp):
            actions = self._link_up(event.name, now)
        elif isinstance(event, LinkMtuChanged):
            nic = self.table.nics.get(event.name)
            if nic is not None:
                nic.mtu = event.mtu  # status shows the kernel's MTU, whoever set it
            actions = []
        elif isinstance(event, NicAppeared):
            actions = self._nic_appeared(event)
        elif isinstance(event, NicRemoved):
            actions = self._nic_removed(event.name, now)
        elif isinstance(event, RoutesChanged):
            self.routes = event.routes
            self.route_follower.observe(event.routes)
            actions = self._sync(now)
        elif isinstance(event, AddressesFound):
            self.found = event
            actions = []
        elif isinstance(event, HostnameFilesRead):
            actions = self._files_read(event)
        elif isinstance(event, ActionFailed) and isinstance(event.action, ReadHostnameFiles):
            name = event.action.ifname
            actions = [
                _log(f"{name}: hostname files not read ({event.reason}); using those of boot")
            ]
            actions += self._files_ready(name, now)
        elif isinstance(event, SettingsChanged):
            verb = "restored" if event.restored else "set"
            actions = (
                [_log(f"{event.ifname}: {verb} {', '.join(event.changes)}", LOG_INFO)]
                if event.changes
                else []
            )
        elif isinstance(event, AddressRemovedElsewhere):
            actions = self._removed_elsewhere(event)
        elif isinstance(event, AddressAddedElsewhere):
            actions = self._added_elsewhere(event)
        elif isinstance(event, PolicyRulesRepaired):
            actions = [
                _log(
                    f"Policy rule {rule} was missing (deleted by another program); restored",
                    LOG_INFO,
                )
                for rule in event.restored
            ]
            actions += [
                _log(f"Stale policy rule {rule} removed", LOG_INFO) for rule in event.removed
            ]
        elif isinstance(event, ActionFailed):
            if isinstance(event.action, MoveRoute):
                self.route_follower.outcome(event.action, ok=False)
            # A probe that cannot leave is simply lost (and counted as such).
            level = LOG_DEBUG if isinstance(event.action, SendProbe) else LOG_INFO
            actions = [_log(f"{type(event.action).__name__} failed: {event.reason}", level)]
        elif isinstance(event, ActionCompleted):
            if isinstance(event.action, MoveRoute):
                self.route_follower.outcome(event.action, ok=True)
            actions = []
        else:  # pragma: no cover - the Event union is closed
            raise TypeError(f"unknown event {event!r}")
        self._arm_scan(now)
        return self._with_spreading(actions)

    def tick(self, now: float) -> list[Action]:
        """Run every timer due at ``now``: probes, timeouts, checks, the periodic scan."""
        self._now = max(self._now, now)
        self._file_timers()
        actions: list[Action] = []
        touched: set[str] = set()
        for key in self._due_probes(now):
            self._timers_dirty.add(key)
            inst = self.probes[key]
            nic = self.table.nics.get(inst.nic)
            if nic is None or inst.test_address is None:
                continue
            touched.add(nic.name)
            inst.expire(now)
            if self._can_send(nic):
                group = self._group_state(nic)
                actions += inst.realign(now, group.interval)
                actions += inst.send_due(now, group.interval, self.rng, inst.test_address)
        for due, name in self._repair_due:
            if due > now:
                break
            touched.add(name)  # a held-back repair may go ahead now
        actions += self._evaluate(now, touched)
        if self.next_scan is None or now >= self.next_scan:
            actions += self._scan(now)
            self.next_scan = now + IF_SCAN_INTERVAL
        return self._with_spreading(actions)

    def deadline(self) -> float | None:
        """When ``tick`` must run next (None: only events can change anything)."""
        self._file_timers()
        times: list[float] = []
        probe_due = self._probe_due.earliest()
        if probe_due is not None:
            times.append(probe_due)
        if self.next_scan is not None:
            times.append(self.next_scan)
        at = bisect.bisect_right(self._repair_due, (self._now, "\uffff"))
        if at < len(self._repair_due):
            times.append(self._repair_due[at][0])
        due = min(times) if times else None
        if self.check_timers:
            self._check_timers(due)
        return due

    check_timers = False
    """Test aid: check every ``deadline`` against a walk over all timers."""

    def _timer_of(self, key: tuple[str, Family]) -> tuple[float | None, bool]:
        """A probe instance's due time and whether its NIC can send now."""
        inst = self.probes.get(key)
        nic = self.table.nics.get(key[0]) if inst is not None else None
        if inst is None or nic is None:
            return None, False
        return inst.deadline(), self._can_send(nic)

    def _file_timers(self) -> None:
        """Bring the timer index up to date with the probe instances that changed.

        An instance's timer changes only when something happens to it: a reply
        to it or its own tick.  Everything else that can change a timer (links,
        configuration, failure, repair, the scan) marks them all.
        """
        if self._all_timers_dirty:
            self._all_timers_dirty = False
            self._probe_due.clear()
            self._muted_due.clear()
            keys: Iterable[tuple[str, Family]] = list(self.probes)
            # Due instances run in the order of ``self.probes`` (the jitter's
            # random draws follow it); only a full re-file can change it.
            self._probe_order = {key: number for number, key in enumerate(self.probes)}
            self._repair_due = sorted(
                (track.repair_not_before, name)
                for name, track in self.tracking.items()
                if track.repair_not_before > 0
            )
        else:
            keys = self._timers_dirty
        for key in keys:
            due, can_send = self._timer_of(key)
            inst = self.probes.get(key)
            self._probe_due.set(key, due if can_send else None)
            if due is not None and not can_send and inst is not None and inst.test_address:
                # A NIC that cannot send still times out its probes when a tick runs.
                self._muted_due[key] = due
            else:
                self._muted_due.pop(key, None)
        self._timers_dirty = set()

    def _due_probes(self, now: float) -> list[tuple[str, Family]]:
        """The probe instances due at ``now``, in the order of ``self.probes``."""
        keys = self._probe_due.take_due(now)
        keys += [key for key, due in self._muted_due.items() if due <= now]
        if self.check_timers:
            walked = {
                key
                for key, inst in self.probes.items()
                if (due := inst.deadline()) is not None
                and due <= now
                and inst.test_address is not None
                and inst.nic in self.table.nics
            }
            active = {key for key in keys if self.probes[key].test_address is not None}
            if walked != active:
                raise AssertionError(f"timer index has {active} due, the timers {walked}")
        if len(keys) > 1:
            keys.sort(key=self._probe_order.__getitem__)
        return keys

    def _check_timers(self, due: float | None) -> None:
        """Compare the indexed deadline with one computed by walking everything."""
        times: list[float] = []
        for key in self.probes:
            inst_due, can_send = self._timer_of(key)
            if inst_due is not None and can_send:
                times.append(inst_due)
        if self.next_scan is not None:
            times.append(self.next_scan)
        for track in self.tracking.values():
            if track.repair_not_before > self._now:
                times.append(track.repair_not_before)
        walked = min(times) if times else None
        if walked != due:
            raise AssertionError(f"timer index says {due}, the timers say {walked}")

    def ifconfig(
        self, argv: Sequence[str], now: float, show_ether: bool = False
    ) -> IfconfigOutcome:
        """Run one Solaris ``ifconfig`` command; raise ``IpmpError`` if refused."""
        command = parse_ifconfig(argv)
        if command.target is None:
            if command.ops:
                raise IpmpError("ifconfig: -a: only status can be shown for all interfaces")
            return IfconfigOutcome(format_all(self.table, command.family, show_ether), [])
        if not command.ops:
            return IfconfigOutcome(
                self.status(command.target, command.family or "inet", show_ether), []
            )
        outcome = self._apply(command, now, reattach=False)
        return IfconfigOutcome(outcome.output, self._with_spreading(outcome.actions))

    def status(self, target: str, family: Family = "inet", show_ether: bool = False) -> str:
        """``ifconfig hme0`` / ``ifconfig hme0:1`` status text."""
        name, _, unit = target.partition(":")
        nic = self.table.nics.get(name)
        if nic is None or not nic.present:
            raise IpmpError(f"ifconfig: {name}: no such interface")
        inst = nic.instances.get(family)
        if inst is None:
            raise IpmpError(f"ifconfig: {name}: interface is not plumbed for {family}")
        wanted = int(unit) if unit else 0
        if wanted not in inst.units:
            raise IpmpError(f"ifconfig: {target}: no such logical interface")
        return format_interface(nic, family, wanted, show_ether)

    def boot(self, files: Sequence[HostnameFile], now: float) -> list[Action]:
        """Apply the hostname files at start-up, as the Solaris boot scripts do.

        Files of interfaces that are present configure them; the data addresses
        of a missing interface are hosted on an alternative member (guide: NICs
        That Were Missing at System Boot).
        """
        self.files = {(f.ifname, f.family): f for f in files}
        self.booted = True
        actions: list[Action] = []
        missing: dict[Family, list[HostnameFile]] = {"inet": [], "inet6": []}
        ordered = sorted(files, key=lambda f: (FAMILIES.index(f.family), f.ifname))
        for file in ordered:
            nic = self.table.nics.get(file.ifname)
            if nic is not None and nic.present:
                actions += self._apply_file(file, now)
            else:
                missing[file.family].append(file)
        for family in FAMILIES:
            if missing[family]:
                parts = [self._host_missing(file, now, actions) for file in missing[family]]
                actions.append(_moving_line(family, parts))
        actions += self._sync(now) + self._enforce(now)
        self._arm_scan(now)
        return _members_first(actions)

    def restore(
        self,
        saved: HostTable,
        files: Sequence[HostnameFile],
        now: float,
        fresh: Collection[str] = (),
    ) -> list[Action]:
        """Take over after a restart: the saved table, merged with what the kernel holds.

        Hardware facts come from the inventory (``NicAppeared``); addresses the
        kernel holds (``AddressesFound``) are compared with the saved table and
        the difference is carried out: a move a crash interrupted is completed,
        an address found twice is kept once, an address the kernel lost is
        re-created, and one the saved state does not know is adopted.

        ``fresh`` names NICs whose hostname files changed since ``saved`` was
        written: their saved configuration is dropped and they are configured
        from the files as they read now, as at boot; the addresses of their old
        configuration are removed from the kernel, not adopted.
        """
        self.files = {(f.ifname, f.family): f for f in files}
        self.booted = True
        forgotten = forget_nics(saved, fresh)
        inventory = self.table
        for name, nic in saved.nics.items():
            hardware = inventory.nics.get(name)
            nic.present = hardware is not None and hardware.present
            if hardware is not None:
                nic.index, nic.mac, nic.media = hardware.index, hardware.mac, hardware.media
                nic.mtu = hardware.mtu  # the kernel's, whatever the saved table says
                nic.device, nic.vlan, nic.link_up = hardware.device, hardware.vlan, hardware.link_up
                nic.modules = nic.modules or list(hardware.modules)
        for name, hardware in inventory.nics.items():
            saved.nics.setdefault(name, hardware)
        kernel = HostTable()
        for name, hardware in inventory.nics.items():
            kernel.nics[name] = Nic(name, index=hardware.index, present=hardware.present)
        actions: list[Action] = []
        found = self.found.addresses if self.found is not None else ()
        plumbed = self.found.plumbed if self.found is not None else ()

        # Linux gives every NIC an IPv6 link-local address of its own; on a NIC
        # the saved configuration has not plumbed for inet6 it is the kernel's,
        # not ours: neither adopted (the NIC would become plumbed for inet6 and
        # take IPv6 data addresses) nor unplumbed (README: Where this differs).
        # A NIC configured afresh is plumbed for what its files say.
        def unplumbed(name: str, family: Family) -> bool:
            if name in fresh:
                return (name, family) not in self.files
            configured = saved.nics.get(name)
            return configured is not None and family not in configured.instances

        kernel_own = {
            (entry.ifname, entry.family)
            for entry in found
            if is_link_local(entry.family, entry.address) and unplumbed(entry.ifname, entry.family)
        }
        found = tuple(
            entry
            for entry in found
            if (entry.ifname, entry.family) not in kernel_own
            or not is_link_local(entry.family, entry.address)
        )
        for name, family in plumbed:
            if (name, family) in kernel_own and not any(
                (e.ifname, e.family) == (name, family) for e in found
            ):
                continue
            if name in kernel.nics:
                kernel.nics[name].instances[family] = Instance(family)
        holders: dict[tuple[Family, str], list[FoundAddress]] = {}
        for entry in found:
            holders.setdefault((entry.family, entry.address), []).append(entry)
        for (family, address), where in holders.items():
            home = saved.find_address(family, address)
            known = home[1] if home is not None else forgotten.get((family, address))
            keep = where[0]
            if home is not None:
                for candidate in where:
                    if (candidate.ifname, candidate.unit) == (home[0].name, home[1].unit):
                        keep = candidate
            for extra in where:
                if extra is not keep:
                    actions.append(
                        RemoveAddress(extra.ifname, family, extra.unit, address, extra.prefixlen)
                    )
            holder = kernel.nics.get(keep.ifname)
            if holder is None:
                continue
            inst = holder.instances.setdefault(family, Instance(family))
            flags = (IFF_UP if keep.up else 0) | (IFF_DEPRECATED if keep.deprecated else 0)
            if known is not None:
                # The kernel does not know which addresses are test addresses.
                flags |= known.flags & IFF_NOFAILOVER
            li = LogicalInterface(
                family,
                keep.unit,
                address,
                keep.prefixlen,
                flags,
                keep.ifname,
                keep.unit,
                keep.broadcast,
            )
            inst.units[keep.unit] = li
            if known is None:
                actions += self._adopt(saved, li)
        self.table = saved
        actions += self._configure_afresh(fresh, now)
        saved = self.table
        actions += reconcile(kernel, saved)
        # The announcements of the moves before the crash may never have gone
        # out (they are timers of the dead process): tell the neighbours again
        # where every data address is.
        told = {(a.ifname, a.family, a.address) for a in actions if isinstance(a, AnnounceAddress)}
        for nic in saved.ordered():
            if not nic.present:
                continue
            for li in nic.addresses():
                if li.is_data and li.up and (nic.name, li.family, li.address) not in told:
                    actions.append(AnnounceAddress(nic.name, li.family, li.address))
        self.route_follower.restore(saved.saved_routes)
        self.table = saved
        self.tracking.clear()
        self.probes.clear()
        actions += self._sync(now) + self._enforce(now)
        self._arm_scan(now)
        return _members_first(actions)

    def _adopt(self, table: HostTable, found: LogicalInterface) -> list[Action]:
        """A kernel address the saved state does not know becomes a data address of its NIC."""
        nic = table.nics.get(found.home)
        if nic is None:
            return []
        inst = nic.instances.setdefault(found.family, Instance(found.family))
        current = inst.units.get(found.unit)
        unit = found.unit if current is None or current.placeholder else inst.free_unit()
        adopted = LogicalInterface(
            found.family,
            unit,
            found.address,
            found.prefixlen,
            found.flags,
            nic.name,
            unit,
            found.broadcast,
        )
        inst.units[unit] = adopted
        return [_log(f"adopted {found.family} address {found.address} on {nic.name}", LOG_INFO)]

    def drain_probe_records(self) -> list[dict[str, Any]]:
        """Probes settled since the last call (answered or lost), for ``ipmpstat -p``."""
        records: list[dict[str, Any]] = []
        for inst in self.probes.values():
            while inst.settled:
                settled = inst.settled.popleft()
                probe, rtt, net = settled.probe, settled.rtt, settled.net_rtt
                target = probe.target
                records.append(
                    {
                        "time": probe.sent_at,
                        "interface": inst.nic,
                        "family": inst.family,
                        "probe": probe.seq,
                        "target": target.address,
                        "rtt_ms": None if rtt is None else rtt * 1000.0,
                        "netrtt_ms": None if net is None else net * 1000.0,
                        "rttavg_ms": None if target.avg < 0 else target.avg * 1000.0,
                        "rttdev_ms": None if target.avg < 0 else target.dev4 / 4 * 1000.0,
                    }
                )
        records.sort(key=lambda r: r["time"])
        return records

    def stats(self) -> list[Log]:
        """The SIGUSR1 statistics dump (facts §5), one line per instance and target."""
        missed = sum(inst.missed for inst in self.probes.values())
        logs = [_log(f"Missed sending total of {missed} probes")]
        for (name, family), inst in sorted(self.probes.items()):
            if inst.test_address is None:
                continue
            logs.append(
                _log(
                    f"Probe stats on ({family} {name}): probes sent {inst.sent}, acks received "
                    f"{inst.acked}, probes/acks lost {inst.lost}, unacknowledged "
                    f"{sum(1 for p in inst.ring if p.state.name == 'UNACKED')}, ambiguous "
                    f"acks {inst.ambiguous}"
                )
            )
            for target in inst.targets:
                rtt = f"{target.avg * 1000:.3f} ms" if target.avg >= 0 else "unknown"
                logs.append(
                    _log(
                        f"Target {target.address} on ({family} {name}): "
                        f"{target.state.name.lower()}, sent {target.sent}, "
                        f"acked {target.acked}, lost {target.lost}, rtt {rtt}, "
                        f"crtt {target.crtt * 1000:.3f} ms"
                    )
                )
        return logs

    def export_state(self) -> dict[str, Any]:
        """The table as JSON data for the state file (see ``ipmp.core.persist``)."""
        state = table_to_state(self.table)
        state["routes"] = self.route_follower.export()
        return state

    # ======================================================================
    # administration: offline/online (if_mpadm) and dynamic reconfiguration
    # ======================================================================

    def _member(self, name: str, what: str) -> Nic:
        nic = self.table.nics.get(name)
        if nic is None or (not nic.present and name not in self.detached):
            raise IpmpError(f"{what}: {name}: no such interface")
        return nic

    def offline(self, name: str, now: float) -> list[Action]:
        """``if_mpadm -d``: move the data addresses away and stop using the NIC (facts §4.8)."""
        nic = self._member(name, "offline")
        if not nic.group:
            raise IpmpError(f"offline: {name}: interface is not using IPMP")
        if nic.offline:
            raise IpmpError(f"offline: {name}: Interface already offlined")
        stranded = _stranded(choose_destinations(self.table, nic, "normal"))
        if stranded:
            # facts §4.8: offline fails when the addresses cannot all fail over;
            # with one family stranded it is refused too, since offline must keep
            # every address reachable (a failure cannot choose, an offline can).
            raise IpmpError(
                f"offline: {name}: Offline failed as there is no other functional interface "
                "available in the multipathing group for failing over the network access. "
                f"(no member can take its {_fam_labels(stranded)} data addresses)"
            )
        before = self.table.clone()
        fail_over(self.table, nic, "normal")
        nic.offline = True
        for li in nic.addresses():
            li.flags &= ~IFF_UP  # if_mpadm brings every logical interface down
        actions = reconcile(before, self.table)
        actions.append(_log(f"{name} has been offlined", LOG_INFO))
        return actions + self._sync(now)

    def online(self, name: str, now: float) -> list[Action]:
        """``if_mpadm -r``: undo an offline; failback ignores FAILBACK=no (facts §4.8)."""
        nic = self._member(name, "online")
        if not nic.offline or name in self.detached:
            raise IpmpError(f"online: {name}: Interface not offlined")
        before = self.table.clone()
        nic.offline = False
        for li in nic.addresses():
            if li.nofailover and not li.placeholder and not li.unspecified:
                li.flags |= IFF_UP  # if_mpadm -r brings the test addresses back up
        nic.failed = not (nic.present and nic.link_up)
        actions: list[Action] = []
        group = self.groups.get(nic.group)
        if nic.usable and group is not None and group.failed:
            # A working member is back: the group failure is over.
            group.failed = False
            actions.append(_log(f"At least 1 interface ({name}) of group {nic.group} has repaired"))
        if nic.standby:
            nic.inactive = not nic.failed and not nic.hosts_foreign()
        elif nic.usable:
            fail_back(self.table, nic)
        self.tracking.pop(name, None)  # restarts the test-address grace period
        actions += reconcile(before, self.table)
        actions.append(_log(f"{name} has been onlined", LOG_INFO))
        return actions + self._sync(now) + self._enforce(now)

    def dr_detach(self, name: str, force: bool, now: float) -> list[Action]:
        """Prepare a NIC for removal (guide: Detaching NICs).

        Refused for a NIC in no group, or one holding addresses no other member
        can take, unless ``force``.  Data addresses fail over; the NIC's test
        addresses are unconfigured and it is unplumbed.  Its configuration is
        kept, so reattaching restores it.  Nothing changes if a step fails.
        """
        nic = self._member(name, "dr detach")
        if name in self.detached:
            raise IpmpError(f"dr detach: {name}: already detached")
        if not nic.group and not force:
            raise IpmpError(
                f"dr detach: {name}: not in an IPMP group; connectivity cannot be "
                "preserved (use -f to detach anyway)"
            )
        plan = choose_destinations(self.table, nic, "normal") if nic.group else {}
        # Each family on its own, as a failure moves them (guide: "as if the NIC
        # being detached had failed"); one with nowhere to go refuses the detach.
        stranded = _stranded(plan)
        if stranded and not force:
            raise IpmpError(
                f"dr detach: {name}: holds the only functioning interfaces of group "
                f"{nic.group or '(none)'} for its {_fam_labels(stranded)} data addresses "
                "(use -f to detach anyway)"
            )
        before = self.table.clone()
        logs: list[Action] = []
        if nic.group:
            result = fail_over(self.table, nic, "normal")
            logs = [
                _log(COULDNT_MOVE.format(_fam_label(family), name)) for family in result.stranded
            ]
        nic.present = False
        nic.offline = True
        self.detached.add(name)
        actions = reconcile(before, self.table) + logs
        actions.append(_log(f"{name} has been detached", LOG_INFO))
        return actions + self._sync(now)

    def dr_attach(self, name: str, now: float) -> list[Action]:
        """Reattach a detached NIC: configure it from its hostname file, then fail back.

        The files are read as they are now (``ReadHostnameFiles``); the
        attach completes when they arrive (``HostnameFilesRead``).
        """
        nic = self.table.nics.get(name)
        if nic is None or name not in self.detached:
            raise IpmpError(f"dr attach: {name}: not detached")
        if not self.hardware_present.get(name, False):
            raise IpmpError(f"dr attach: {name}: no such interface in the kernel")
        self._awaiting_files.add(name)
        return [ReadHostnameFiles(name)]

    def _files_read(self, event: HostnameFilesRead) -> list[Action]:
        """The files of a NIC as they read now replace those read before."""
        for family in FAMILIES:
            self.files.pop((event.ifname, family), None)
        for file in event.files:
            if file.ifname == event.ifname:
                self.files[(file.ifname, file.family)] = file
        actions: list[Action] = [_log(message) for message in event.messages]
        return actions + self._files_ready(event.ifname, event.now)

    def _files_ready(self, name: str, now: float) -> list[Action]:
        """Finish the attach that asked for the files of ``name``."""
        if name not in self._awaiting_files:
            return []
        self._awaiting_files.discard(name)
        nic = self.table.nics.get(name)
        if nic is None or not self.hardware_present.get(name, False):
            return []  # gone again meanwhile
        if name in self.detached:
            return self._reattach(nic, now)
        return self._returned(nic, now)

    def _current_files(self, name: str) -> list[HostnameFile]:
        return [self.files[(name, fam)] for fam in FAMILIES if (name, fam) in self.files]

    def _reattach(self, nic: Nic, now: float) -> list[Action]:
        before = self.table.clone()
        self.detached.discard(nic.name)
        nic.present = True
        nic.offline = False
        files = self._current_files(nic.name)
        if files:
            actions = self._configure_from_files(nic, files, before, now)
        else:
            # No file: the recorded configuration (README: Where this differs
            # from Solaris 10), failed until it works if it has data to take back.
            for li in nic.addresses():
                if li.nofailover and not li.placeholder and not li.unspecified:
                    li.flags |= IFF_UP
            nic.failed = bool(nic.group)
            actions = reconcile(before, self.table)
        self.tracking.pop(nic.name, None)
        actions.append(_log(f"{nic.name} has been attached", LOG_INFO))
        actions += self._sync(now) + self._evaluate(now, {nic.name}) + self._enforce(now)
        return _members_first(actions)

    def _returned(self, nic: Nic, now: float) -> list[Action]:
        """A NIC that appeared after boot (hot-plugged, missing at boot, new) is configured.

        guide: "Thus, the interface receives the same configuration that it
        would have received after system boot."  Without a file it gets back
        what it had before it went away.
        """
        before = self.table.clone()
        nic.present = True
        files = self._current_files(nic.name)
        if files:
            actions = self._configure_from_files(nic, files, before, now)
        else:
            v6 = nic.instances.get("inet6")
            if v6 is not None and 0 in v6.units and v6.units[0].unspecified and nic.mac:
                # Configured while missing: the link-local address comes with the MAC.
                v6.units[0].address, v6.units[0].prefixlen = link_local_from_mac(nic.mac), 10
            actions = reconcile(before, self.table)
        self.tracking.pop(nic.name, None)  # tracked afresh, as a new NIC
        return actions + self._sync(now) + self._evaluate(now) + self._enforce(now)

    def _configure_from_files(
        self, nic: Nic, files: Sequence[HostnameFile], before: HostTable, now: float
    ) -> list[Action]:
        """Configure ``nic`` afresh from its files, exactly as boot would lay it out.

        Its data addresses that live on a sibling meanwhile stay there and
        keep the unit the file gives them, so that failback puts each one
        where boot would have (guide: "RCM fails back any data addresses, just
        as if the interface had been repaired").  Addresses of the file that
        live nowhere (``removeif`` of the failed-over copies) are created here.
        While the files are applied the NIC is neither evaluated nor failed
        back to: a repair half-way through would put addresses on other units.
        What was typed on it before is gone, as after a boot; its group stays
        until a line of the file changes it, as ``ifconfig group`` would.
        """
        was_failed = nic.failed
        # Addresses of other members it hosted when it went away stay with it.
        foreign = [li for li in nic.addresses() if li.is_data and li.home != nic.name]
        nic.instances = {}
        nic.standby = nic.inactive = nic.offline = False
        nic.failed = True
        actions = reconcile(before, self.table)
        self._configuring = nic.name
        try:
            for file in files:
                actions += self._apply_file(file, now)
            nic = self.table.nics[nic.name]  # each command applied to a copy of the table
            if foreign:
                actions += self._host_again(nic.name, foreign, now)
        finally:
            self._configuring = None
            self.apply_context.reserved.clear()
        group = self.groups.get(nic.group)
        group_failed = group is not None and group.failed
        # Only a member has addresses to take back once it works.
        nic.failed = bool(nic.group) and (
            was_failed or group_failed or pending_failback(self.table, nic)
        )
        return actions

    def _host_again(self, name: str, foreign: list[LogicalInterface], now: float) -> list[Action]:
        """Put back the other members' addresses ``name`` hosted, on units the file left free."""
        actions: list[Action] = []
        for family in sorted({li.family for li in foreign}):
            if family not in self.table.nics[name].instances:
                # Its files no longer plumb that family: plumbed to keep them.
                plumb = IfconfigCommand(name, False, family, (Plumb(),))
                actions += self._apply(plumb, now, reattach=True).actions
        before = self.table.clone()
        nic = self.table.nics[name]
        for li in foreign:
            inst = nic.instances[li.family]
            li.unit = self.apply_context.free_unit(name, inst)
            inst.units[li.unit] = li
        return actions + reconcile(before, self.table)

    def checkpoint(self) -> Checkpoint:
        """What ``rollback`` needs to undo an administrative request."""
        return Checkpoint(self.table.clone(), frozenset(self.detached))

    def rollback(self, saved: Checkpoint, done: Sequence[Action], now: float) -> list[Action]:
        """A kernel step of a request failed: take back the steps ``done`` and the state.

        The undo is derived from what the kernel actually did, not from the
        table, which assumed every step would succeed.
        """
        self.table = saved.table.clone()
        self.detached = set(saved.detached)
        return undo_actions(done, saved.table) + self._sync(now)

    def reload(self, config: MpathdConfig, now: float) -> list[Action]:
        """Apply a reread /etc/default/mpathd, keeping targets, RTTs and states."""
        old = self.config
        self.config = config
        if config.failure_detection_time_ms != old.failure_detection_time_ms:
            for group in self.groups.values():
                group.fdt_ms = config.failure_detection_time_ms
                group.interval_ms = config.failure_detection_time_ms // (NUM_PROBE_FAILS + 2)
        return self._sync(now) + self._enforce(now)

    # ======================================================================
    # configuration changes
    # ======================================================================

    def _apply(self, command: IfconfigCommand, now: float, reattach: bool) -> IfconfigOutcome:
        """Apply one ifconfig command (``IpmpError`` if refused); what it prints and does."""
        self.apply_context.reattach = reattach
        try:
            result = apply_ifconfig(self.table, command, self.apply_context)
        finally:
            self.apply_context.reattach = False
        before, self.table = self.table, result.table
        actions: list[Action] = list(result.logs)
        actions += self._carry_out(before, result.group_changes, now)
        return IfconfigOutcome("\n".join(result.output), actions)

    def _carry_out(
        self, before: HostTable, group_changes: Sequence[tuple[str, str, str]], now: float
    ) -> list[Action]:
        """The kernel actions and engine steps after the table changed from ``before``."""
        actions = mtu_changes(before, self.table) + reconcile(before, self.table)
        for name, _old, new in group_changes:
            self.tracking.pop(name, None)
            state = self.groups.get(new)
            nic = self.table.nics[name]
            if state is not None and state.failed and not nic.offline:
                nic.failed = True  # facts §4.6: joining a failed group
        actions += self._sync(now) + self._enforce(now) + self._evaluate(now)
        self._arm_scan(now)
        return actions

    def _apply_file(self, file: HostnameFile, now: float) -> list[Action]:
        """Apply a present NIC's file line by line, then carry the whole file out.

        Each line changes the table (a refused one changes nothing and is
        logged); the kernel actions and the engine's steps follow once, for
        the file's result: per line they cost a walk over every address, and
        1000 ``addif`` lines took seconds to start.
        """
        before = self.table
        actions: list[Action] = []
        changes: list[tuple[str, str, str]] = []

        def one(command: IfconfigCommand) -> None:
            self.apply_context.reattach = True
            try:
                result = apply_ifconfig(self.table, command, self.apply_context)
            finally:
                self.apply_context.reattach = False
            self.table = result.table
            actions.extend(result.logs)
            changes.extend(result.group_changes)

        _each_line(file, self.table.nics[file.ifname], one, actions)
        return actions + self._carry_out(before, changes, now)

    def _configure_afresh(self, names: Collection[str], now: float) -> list[Action]:
        """Configure NICs ``names`` from their hostname files, in the table only.

        As the boot scripts would (``boot``): a present NIC gets its files line
        by line, a missing one has its data addresses hosted on another member.
        Only log lines are returned: the caller's one reconcile carries the
        result to the kernel, so an address the file keeps is not touched.
        """
        chosen = [f for f in self.files.values() if f.ifname in names]
        actions: list[Action] = []
        missing: dict[Family, list[str]] = {"inet": [], "inet6": []}

        def one(command: IfconfigCommand) -> None:
            result = apply_ifconfig(self.table, command, self.apply_context)
            self.table = result.table
            actions.extend(result.logs)

        for file in sorted(chosen, key=lambda f: (FAMILIES.index(f.family), f.ifname)):
            nic = self.table.nics.get(file.ifname)
            if nic is None or not nic.present:
                scratch: list[Action] = []
                missing[file.family].append(self._host_missing(file, now, scratch))
                actions.extend(a for a in scratch if isinstance(a, Log))  # the rest: reconcile
                continue
            self.apply_context.reattach = True
            try:
                _each_line(file, nic, one, actions)
            finally:
                self.apply_context.reattach = False
        for family in FAMILIES:
            if missing[family]:
                actions.append(_moving_line(family, missing[family]))
        return actions

    def _host_missing(self, file: HostnameFile, now: float, actions: list[Action]) -> str:
        """Configure a missing NIC in the table only and host its data addresses elsewhere."""
        group = next(
            (op.name for cmd in file.commands for op in cmd.ops if isinstance(op, SetGroup)), ""
        )
        scratch = self.table.clone()
        template = next((m for m in scratch.members(group) if m.present), None)
        ghost = scratch.nics.get(file.ifname)
        if ghost is None:
            ghost = Nic(file.ifname)
            scratch.nics[file.ifname] = ghost
        ghost.present = True
        if template is not None:
            ghost.media, ghost.modules, ghost.vlan = (
                template.media,
                list(template.modules),
                template.vlan,
            )
        commands: list[IfconfigCommand] = [
            IfconfigCommand(file.ifname, False, file.family, (Plumb(),))
        ]
        commands += file.commands
        for command in commands:
            try:
                scratch = apply_ifconfig(scratch, command, self.apply_context).table
            except IpmpError as err:
                actions.append(_log(f"{_file_name(file)}: {err.message}"))
        configured = scratch.nics[file.ifname]
        before = self.table.clone()
        nic = self.table.nics.get(file.ifname)
        if nic is None:
            nic = Nic(file.ifname, present=False)
            self.table.nics[file.ifname] = nic
        nic.group = configured.group
        nic.failed = True
        inst = configured.instances.get(file.family)
        if inst is not None:
            nic.instances[file.family] = inst
        alternate = self._boot_alternate(nic, file.family)
        if alternate is None:
            return f" {file.ifname} (couldn't move, no alternative interface)"
        move_addresses(nic, alternate, lambda li: True)
        actions.extend(reconcile(before, self.table))
        return f" {file.ifname} (moved to {alternate.name})"

    def _boot_alternate(self, nic: Nic, family: Family) -> Nic | None:
        """The boot scripts' choice: the first STANDBY member, else the first plumbed one."""
        members = [
            m
            for m in self.table.members(nic.group)
            if m is not nic and m.present and family in m.instances
        ]
        for member in members:
            if member.standby:
                return member
        return members[0] if members else None

    # ======================================================================
    # tracking and probe instances
    # ======================================================================

    def _tracked(self, nic: Nic) -> bool:
        if nic.group:
            return True
        return (
            not self.config.track_interfaces_only_with_groups
            and nic.present
            and bool(nic.instances)
        )

    def _group_state(self, nic: Nic) -> GroupState:
        state = self.groups.get(nic.group)
        if state is None:
            fdt = self.config.failure_detection_time_ms
            state = GroupState(nic.group, fdt, fdt // (NUM_PROBE_FAILS + 2))
            self.groups[nic.group] = state
        return state

    def _can_send(self, nic: Nic) -> bool:
        return nic.present and nic.link_up and not nic.offline

    def _icmp_id(self, nic: Nic) -> int:
        return ((self.icmp_id_base & 0xFF) << 8) | (nic.index & 0xFF)

    def _probing(self, nic: Nic) -> list[ProbeInstance]:
        """The NIC's instances that can probe: a test address and at least one target."""
        out = []
        for family in FAMILIES:
            inst = self.probes.get((nic.name, family))
            if inst is not None and inst.test_address is not None and inst.targets:
                out.append(inst)
        return out

    def _has_test_address(self, nic: Nic) -> bool:
        return any(
            (inst := self.probes.get((nic.name, fam))) is not None and inst.test_address is not None
            for fam in FAMILIES
        )

    def _sync(self, now: float) -> list[Action]:
        """Bring tracking, probe instances and targets in line with the table."""
        self._all_timers_dirty = True
        actions: list[Action] = []
        for nic in self.table.ordered():
            tracked = self._tracked(nic)
            if not tracked:
                self.tracking.pop(nic.name, None)
                for family in FAMILIES:
                    self.probes.pop((nic.name, family), None)
                continue
            track = self.tracking.get(nic.name)
            if track is None:
                track = Tracking(since=now)
                self.tracking[nic.name] = track
                self._group_state(nic)
                if nic.present and not nic.link_up and not nic.failed and not nic.offline:
                    # The initial link state is "up": a NIC that is down when
                    # tracking starts goes through a normal up-to-down change.
                    actions.append(_log(f"The link has gone down on {nic.name}"))
                    actions += self._failure(nic, now, None)
            for family in FAMILIES:
                actions += self._sync_instance(nic, family, now)
        stale = [key for key in self.probes if key[0] not in self.table.nics]
        for key in stale:
            del self.probes[key]
        first, last = self._spreading()
        return first + actions + self._prepare_members() + last + self._follow_routes()

    def _with_spreading(self, actions: list[Action]) -> list[Action]:
        """Add the outbound-spreading changes (and route moves) a step may have caused.

        A step of probes and log lines changes no member's addresses, so it
        cannot change the spreading; skipping the walk over the host matters
        at 128 NICs, where a storm of failed sends made it most of the CPU.
        """
        if not actions or all(isinstance(a, SendProbe | Log) for a in actions):
            return actions + self._follow_routes() if self.route_follower.dirty else actions
        first, last = self._spreading()
        return _members_first(first + actions + last) + self._follow_routes()

    def _follow_routes(self) -> list[Action]:
        """Routes through members that cannot carry traffic move with the group.

        They go after the step's address moves, in the same step: a gateway
        is reachable from the new member once the data address (and its
        prefix route) is there.
        """
        return [*self.route_follower.plan(self.table)]

    def default_routes(self, routers: Sequence[tuple[Family, str]]) -> list[Action]:
        """``/etc/defaultrouter`` at boot: a default route through each router.

        Each goes on the member whose data subnet holds the router (the
        kernel chooses when none does); from there it follows the group.
        """
        return [
            AddRoute(
                family,
                "0.0.0.0" if family == "inet" else "::",
                0,
                router,
                router_member(self.table, family, router),
            )
            for family, router in routers
        ]

    def _spreading(self) -> tuple[list[Action], list[Action]]:
        """Multipath routes over each group's active members (guide: Outbound Load Spreading).

        Per data subnet of a group: the members that are usable, not INACTIVE
        and hold an UP data address.  A failed group keeps its last routes: no
        failover happens then either.

        Returns the changes to make before the step's other actions (routes
        that only lose members: outbound traffic leaves a failed interface
        before its addresses start moving) and those to make after them.
        """
        want: dict[tuple[Family, str], tuple[str, ...]] = {}
        for name in sorted({n.group for n in self.table.nics.values() if n.group}):
            state = self.groups.get(name)
            members = self.table.members(name)
            subnets = {
                (li.family, str(li.network()))
                for m in members
                for li in m.addresses()
                if li.is_data
            }
            if state is not None and state.failed:
                want.update({key: self.spread[key] for key in subnets if key in self.spread})
                continue
            active = [
                m
                for m in members
                if m.usable and not m.inactive and any(li.is_data and li.up for li in m.addresses())
            ]
            for key in subnets:
                # A member sends only the families it is plumbed for.
                want[key] = tuple(m.name for m in active if key[0] in m.instances)
        first: list[Action] = []
        last: list[Action] = []
        for key in sorted(set(want) | set(self.spread)):
            ifnames, before = want.get(key, ()), self.spread.get(key, ())
            if before != ifnames:
                shrinks = bool(ifnames) and set(ifnames) < set(before)
                (first if shrinks else last).append(SpreadOutbound(key[0], key[1], ifnames))
        self.spread = {key: value for key, value in want.items() if value}
        return first, last

    def _prepare_members(self) -> list[Action]:
        """Kernel settings for group members: set on joining, restored on leaving."""
        want = {
            name
            for name in self.tracking
            if (nic := self.table.nics.get(name)) is not None and nic.group and nic.present
        }
        actions: list[Action] = [PrepareInterface(name) for name in sorted(want - self.prepared)]
        for name in sorted(self.prepared - want):
            nic = self.table.nics.get(name)
            if nic is not None and nic.present:
                actions.append(ReleaseInterface(name))
        self.prepared = want
        return actions

    def _sync_instance(self, nic: Nic, family: Family, now: float) -> list[Action]:
        key = (nic.name, family)
        inst_cfg = nic.instances.get(family)
        if inst_cfg is None or not nic.present:
            self.probes.pop(key, None)
            return []
        inst = self.probes.get(key)
        if inst is None:
            inst = ProbeInstance(nic.name, family, self._icmp_id(nic), now)
            self.probes[key] = inst
        actions: list[Action] = []
        test = select_test_address(nic, family)
        address = test.address if test is not None else None
        if address != inst.test_address:
            inst.test_address = address
            inst.clear_history()
            inst.targets = []
            inst.targets_are_routers = False
            if test is not None:
                inst.test_network = str(test.network()) if family == "inet" else "fe80::/10"
                inst.start(now, self._group_state(nic).interval, self.rng)
                track = self.tracking.get(nic.name)
                if track is not None and track.no_test_logged:
                    track.no_test_logged = False
                    actions.append(_log(TEST_ADDRESS_NOW.format(nic.name)))
                actions += self._check_test_subnet(nic, test)
            else:
                inst.stop()
        if inst.test_address is not None:
            self._refresh_router_targets(nic, inst, now)
        return actions

    def _check_test_subnet(self, nic: Nic, test: LogicalInterface) -> list[Action]:
        """guide: "All test IP addresses in an IPMP group must use the same network prefix"."""
        if test.family != "inet" or not nic.group:
            return []
        for member in self.table.members(nic.group):
            if member is nic:
                continue
            other = select_test_address(member, "inet")
            if other is not None and other.network() != test.network():
                return [
                    _log(
                        f"Test address {test.address} of {nic.name} is not in subnet "
                        f"{other.network()} of the other test addresses of group {nic.group}; "
                        "the test addresses of a group must share one subnet",
                        LOG_WARNING,
                    )
                ]
        return []

    def _refresh_router_targets(self, nic: Nic, inst: ProbeInstance, now: float) -> None:
        """Targets from configuration and routes: host routes, then routers (facts §2)."""
        own = self.table.local_addresses()
        explicit = [a for a in self.config.targets if self._on_test_link(inst, a) and a not in own]
        host_routes: list[str] = []
        gateways: list[str] = []
        for route in self.routes:
            if route.family != inst.family or not route.gateway:
                continue
            if (
                route.ifname
                and route.ifname != nic.name
                and not self._same_group(route.ifname, nic)
            ):
                continue
            if not self._on_test_link(inst, route.gateway) or route.gateway in own:
                continue
            full = 32 if inst.family == "inet" else 128
            (host_routes if route.prefixlen == full else gateways).append(route.gateway)
        ordered: list[str] = []
        for address in explicit + host_routes + gateways:
            if address not in ordered:
                ordered.append(address)
        inst.set_router_targets(ordered, now)

    def _same_group(self, ifname: str, nic: Nic) -> bool:
        other = self.table.nics.get(ifname)
        return other is not None and bool(nic.group) and other.group == nic.group

    def _on_test_link(self, inst: ProbeInstance, address: str) -> bool:
        try:
            parsed = ipaddress.ip_address(address)
        except ValueError:
            return False
        if inst.family == "inet":
            return parsed.version == 4 and parsed in ipaddress.ip_network(inst.test_network)
        return parsed.version == 6 and parsed.is_link_local

    # ======================================================================
    # events
    # ======================================================================

    def _nic_appeared(self, event: NicAppeared) -> list[Action]:
        before = self.table.clone()
        nic = self.table.nics.get(event.name)
        new = nic is None
        if nic is None:
            nic = Nic(event.name, present=not self.booted)
            self.table.nics[event.name] = nic
        nic.index, nic.mac, nic.media, nic.mtu = event.index, event.mac, event.media, event.mtu
        nic.modules = list(event.modules) or nic.modules
        nic.device, nic.vlan, nic.link_up = event.device, event.vlan, event.link_up
        self.hardware_present[event.name] = True
        if self.booted and (new or not nic.present or event.name in self.detached):
            # guide: "RCM automatically configures the interface according to
            # the contents of this file": read as it is now, then configure.
            self._awaiting_files.add(event.name)
            return [ReadHostnameFiles(event.name)]
        nic.present = True
        actions = reconcile(before, self.table)
        actions += self._sync(event.now) + self._evaluate(event.now)
        return actions

    def _nic_removed(self, name: str, now: float) -> list[Action]:
        self.hardware_present[name] = False
        nic = self.table.nics.get(name)
        if nic is None or not nic.present:
            return []
        nic.present = False  # the kernel has already dropped its addresses
        actions: list[Action] = [
            _log(f"{family} {name} has been removed from kernel", LOG_INFO)
            for family in nic.instances
        ]
        if self._tracked(nic) and not nic.failed:
            actions += self._failure(nic, now, None)
        elif nic.group:
            actions += self._enforce(now)
        actions += self._sync(now)
        return actions

    def _link_down(self, name: str, now: float) -> list[Action]:
        nic = self.table.nics.get(name)
        if nic is None or not nic.link_up:
            return []
        nic.link_up = False
        if name not in self.tracking:
            return []
        actions: list[Action] = [_log(f"The link has gone down on {name}")]
        for family in FAMILIES:
            inst = self.probes.get((name, family))
            if inst is not None:
                inst.clear_history()
        if not nic.failed and not nic.offline:
            actions += self._failure(nic, now, None)
        elif nic.group:
            # Already failed (awaiting repair) and now without a link: whatever
            # it carries leaves at once, not at the next scan.
            actions += self._enforce(now)
        return actions

    def _link_up(self, name: str, now: float) -> list[Action]:
        nic = self.table.nics.get(name)
        if nic is None or nic.link_up:
            return []
        nic.link_up = True
        track = self.tracking.get(name)
        if track is None:
            return []
        actions: list[Action] = [_log(f"The link has come up on {name}")]
        for family in FAMILIES:
            inst = self.probes.get((name, family))
            if inst is not None and inst.test_address is not None:
                inst.start(now, self._group_state(nic).interval, self.rng)
        if not self._probing(nic) and len(track.link_ups) >= LINK_UP_PERMIN:
            oldest = track.link_ups[-LINK_UP_PERMIN]
            if now - oldest < MINUTE:
                # facts §3: link-only interfaces that flap are not repaired at once.
                track.repair_not_before = oldest + MINUTE
                if not track.flap_logged:
                    track.flap_logged = True
                    actions.append(
                        _log(
                            f"The link has come up on {name} more than {LINK_UP_PERMIN} times in "
                            "the last minute; disabling failback until it stabilizes"
                        )
                    )
        track.link_ups = [*track.link_ups, now][-LINK_UP_PERMIN:]
        actions += self._evaluate(now)
        return actions

    def _probe_reply(self, reply: ProbeReplyReceived) -> list[Action]:
        inst = self.probes.get((reply.ifname, reply.family))
        nic = self.table.nics.get(reply.ifname)
        if inst is None or nic is None or inst.test_address is None or not nic.link_up:
            return []
        group = self._group_state(nic)
        verdict = inst.receive(reply, PROBE_STATS_COUNT * group.interval)
        actions: list[Action] = list(verdict.logs)
        if verdict.new_host_target is not None:
            actions += self._offer_host_target(
                nic, reply.family, verdict.new_host_target, reply.now
            )
        if (
            verdict.rtt is not None
            and verdict.target is not None
            and not nic.failed
            and not group.failed
        ):
            actions += self._rtt_sample(nic, inst, verdict.target, verdict.rtt, reply.now)
        actions += self._evaluate(reply.now, {nic.name})
        return actions

    def _offer_host_target(
        self, nic: Nic, family: Family, address: str, now: float
    ) -> list[Action]:
        """An all-hosts reply names a target for this NIC, or every member of its group."""
        if address in ("0.0.0.0", "::"):
            return [_log(f"probe response from {address} on {nic.name}", LOG_INFO)]
        if address in self.table.local_addresses():
            return []
        receivers = self.table.members(nic.group) if nic.group else [nic]
        for member in receivers:
            inst = self.probes.get((member.name, family))
            if (
                inst is not None
                and inst.test_address is not None
                and self._on_test_link(inst, address)
            ):
                inst.add_host_target(address, now)
        return []

    # ======================================================================
    # RTT and adaptive failure detection time (facts §1.5)
    # ======================================================================

    def _rtt_sample(
        self, nic: Nic, inst: ProbeInstance, target: Target, sample: float, now: float
    ) -> list[Action]:
        group = self._group_state(nic)
        interval = group.interval
        if target.crtt_with(sample) > interval and len(target.deferred) < MAXDEFERREDRTT:
            target.deferred.append(sample)  # one suspicious sample may be a fluke
            return []
        if target.crtt_with(sample) > interval:
            for deferred in target.deferred:
                target.fold(deferred)
        target.deferred.clear()
        target.fold(sample)
        crtt = target.crtt
        user_fdt = self.config.failure_detection_time_ms
        if crtt > interval:
            active = inst.active_targets()
            others = [t for t in active if t is not target]
            if len(active) >= MIN_PROBE_TARGETS + 1 and all(
                t.crtt <= interval / EXCEPTION_FACTOR for t in others
            ):
                inst.retire_target(target, now, TargetState.SLOW)
                return []
            group.interval_ms = int(crtt * 1000) * NEXT_FDT_MULTIPLE
            group.fdt_ms = group.interval_ms * (NUM_PROBE_FAILS + 2)
            self.last_fdt_raise = now
            if not group.name:
                return []
            return [
                _log(
                    f"Cannot meet requested failure detection time of {user_fdt} ms on "
                    f"({inst.family} {nic.name}) new failure detection time for group "
                    f'"{group.name}" is {group.fdt_ms} ms'
                )
            ]
        if (
            crtt < interval / LOWER_FDT_TRIGGER
            and user_fdt < group.fdt_ms
            and now - self.last_fdt_raise > MIN_SETTLING_TIME
            and self._all_fast(nic, interval / LOWER_FDT_TRIGGER)
        ):
            group.fdt_ms = max(group.fdt_ms // NEXT_FDT_MULTIPLE, user_fdt)
            group.interval_ms = group.fdt_ms // (NUM_PROBE_FAILS + 2)
            if not group.name:
                return []
            return [
                _log(
                    f"Improved failure detection time {group.fdt_ms} ms on "
                    f'({inst.family} {nic.name}) for group "{group.name}"'
                )
            ]
        return []

    def _all_fast(self, nic: Nic, bound: float) -> bool:
        members = self.table.members(nic.group) if nic.group else [nic]
        for member in members:
            if member.failed:
                continue
            for inst in self._probing(member):
                if any(t.crtt > bound for t in inst.active_targets()):
                    return False
        return True

    # ======================================================================
    # failure and repair
    # ======================================================================

    def _evaluate(self, now: float, names: set[str] | None = None) -> list[Action]:
        """Check tracked NICs (``names``, or all) for failure or repair."""
        actions: list[Action] = []
        for name in list(self.tracking):
            if (names is not None and name not in names) or name == self._configuring:
                continue
            nic = self.table.nics.get(name)
            if nic is None or nic.offline:
                continue
            probing = self._probing(nic)
            if not nic.failed:
                # facts §2: a dead target is one silent while the NIC is fine;
                # while it is failed every target looks dead, and the first
                # replies of a repair would retire those not yet asked again.
                for inst in probing:
                    self._retire_dead_targets(inst, now)
                probing = self._probing(nic)
                # facts §1.4/§1.6: an instance out of its quiet period with 5
                # losses fails the NIC if the other family agrees (its own
                # quiet period only stops it from deciding alone).
                if (
                    nic.present
                    and nic.link_up
                    and probing
                    and all(inst.loss_run() >= NUM_PROBE_FAILS for inst in probing)
                    and any(not inst.in_quiet_period(now) for inst in probing)
                ):
                    first = [t for inst in probing if (t := inst.first_loss_time()) is not None]
                    tff = min(first) if first else now
                    self.tracking[name].failed_by_probes = True
                    actions += self._failure(nic, now, tff)
            elif self._repaired(nic, probing, now):
                actions += self._repair(nic, now)
        return actions

    def _retire_dead_targets(self, inst: ProbeInstance, now: float) -> None:
        """One target silent while others answer: a dead target, not a dead NIC."""
        if inst.loss_run() >= NUM_PROBE_FAILS:
            return
        for target in inst.active_targets():
            if inst.target_loss_run(target) >= NUM_PROBE_FAILS:
                inst.retire_target(target, now, TargetState.DEAD)

    def _repaired(self, nic: Nic, probing: list[ProbeInstance], now: float) -> bool:
        track = self.tracking.get(nic.name)
        if not nic.present or not nic.link_up or track is None:
            return False
        if now < track.repair_not_before:
            return False
        if probing:
            # facts §1.4: 10 answered in a row across the targets, or from the
            # current target alone (a target that died meanwhile is not
            # retired while the NIC is failed, see ``_evaluate``).
            return any(
                max(inst.ack_run(), inst.current_target_ack_run()) >= NUM_PROBE_REPAIRS
                for inst in probing
            )
        # After a probe failure, wait for targets to be found and to answer.
        return not (track.failed_by_probes and self._has_test_address(nic))

    def _healthy_other(self, nic: Nic, tff: float | None) -> bool:
        """Does another member show that the group works? (facts §3, §4.6)"""
        group = self.groups.get(nic.group)
        if group is not None and group.failed:
            return False
        for member in self.table.members(nic.group):
            if member is nic or not member.usable:
                continue
            if tff is None:
                return True
            probing = self._probing(member)
            if not probing:
                return True
            if any(i.last_ack_sent_at is not None and i.last_ack_sent_at > tff for i in probing):
                return True
        return False

    def _failure(self, nic: Nic, now: float, tff: float | None) -> list[Action]:
        """``nic`` failed: by link (``tff`` None) or by probes lost since ``tff``."""
        self._all_timers_dirty = True
        others = [m for m in self.table.members(nic.group) if m is not nic]
        if nic.group and others and not self._healthy_other(nic, tff):
            return self._group_failure(nic, now)
        before = self.table.clone()
        nic.failed = True
        nic.inactive = False
        for inst in self._probing(nic):
            inst.reset_rtts()
        actions: list[Action] = [_log(f"NIC failure detected on {_of_group(nic)}")]
        if nic.group:
            track = self.tracking.get(nic.name)
            if track is not None:
                track.stranded_logged.clear()  # a new failure says it again
            actions += self._failover_logs(nic, fail_over(self.table, nic, "normal"))
        actions += reconcile(before, self.table)
        # A standby that took over may have received its own addresses back:
        # they go on to an active member now, not at the next scan.
        actions += self._enforce(now)
        return actions

    def _failover_logs(self, nic: Nic, result: Failover) -> list[Action]:
        """A failover's lines: one per destination, and once per failure a stranded family.

        A family is stranded when no other member is plumbed for it and
        working; it stays on the failed NIC, and moves as soon as a member can
        take it (the invariants of ``_enforce``).  A NIC alone in its group has
        no alternative to speak of: nothing is said, as before.
        """
        actions: list[Action] = [
            _log(f"Successfully failed over from NIC {nic.name} to NIC {dst.name}")
            for dst in result.destinations
        ]
        if result.destinations:
            # One failover, however many members took its families.
            self.counters["failovers"] += 1
        track = self.tracking.get(nic.name)
        if track is None:
            return actions
        track.stranded_logged -= set(result.moved)
        alone = len(self.table.members(nic.group)) < 2
        for family in result.stranded:
            if family not in track.stranded_logged and not alone:
                track.stranded_logged.add(family)
                actions.append(_log(COULDNT_MOVE.format(_fam_label(family), nic.name)))
        return actions

    def _failed_back(self, name: str) -> Log:
        self.counters["failbacks"] += 1
        return _log(f"Successfully failed back to NIC {name}")

    def _group_failure(self, nic: Nic, now: float) -> list[Action]:
        group = self._group_state(nic)
        if group.failed:
            return []
        group.failed = True
        for member in self.table.members(nic.group):
            if member.offline:
                continue
            member.failed = True
            member.inactive = False
            track = self.tracking.get(member.name)
            if track is not None:
                track.failed_by_probes = track.failed_by_probes or member.link_up
            for family in FAMILIES:
                inst = self.probes.get((member.name, family))
                if inst is not None:
                    inst.reset_rtts()
                    inst.flush_host_targets()
        # guide: Group Failures -- no failover; targets are flushed and rediscovered.
        self.counters["group_failures"] += 1
        return [_log(f"All Interfaces in group {nic.group} have failed")]

    def _repair(self, nic: Nic, now: float) -> list[Action]:
        self._all_timers_dirty = True
        before = self.table.clone()
        actions: list[Action] = [_log(f"NIC repair detected on {_of_group(nic)}")]
        group = self.groups.get(nic.group)
        if nic.group and group is not None and group.failed:
            group.failed = False
            actions.append(
                _log(f"At least 1 interface ({nic.name}) of group {nic.group} has repaired")
            )
        nic.failed = False
        track = self.tracking[nic.name]
        track.failed_by_probes = False
        track.flap_logged = False
        track.repair_not_before = 0.0
        track.stranded_logged.clear()
        if nic.offline or not nic.group:
            pass
        elif nic.standby:
            nic.inactive = not nic.hosts_foreign()
        elif self.config.failback:
            if fail_back(self.table, nic):
                actions.append(self._failed_back(nic.name))
        elif nic.up_data_count() == 0:
            # guide: with FAILBACK=no "the INACTIVE flag is set for that interface".
            nic.inactive = True
        actions += reconcile(before, self.table)
        actions += self._enforce(now)
        return actions

    # ======================================================================
    # other writers: ip addr, DHCP clients, network managers
    # ======================================================================

    def _removed_elsewhere(self, event: AddressRemovedElsewhere) -> list[Action]:
        """Another program deleted an address in.mpathd put on ``event.ifname``.

        A data address is put back where the table has it (README, "Other
        writers"): the hostname files and ifconfig say it belongs to the
        group, and a network manager flushing a link is not an administrator
        removing it (that is ``ifconfig IF removeif ADDR``).  Deleted again
        and again, it is left down in the table instead of fought over.  A
        test address, or any other non-failover one, is left down: its
        probing stops with the guide's message instead of failing the NIC.
        """
        now = event.now
        nic = self.table.nics.get(event.ifname)
        li = _logical(nic, event.family, event.address) if nic is not None else None
        what = f"{event.address}/{event.prefixlen} on {event.ifname}"
        if nic is None or li is None or not nic.present or not li.up:
            return [
                _log(f"Address {what} was removed by another program (not in.mpathd's)", LOG_DEBUG)
            ]
        name = _unit_name(nic.name, li.unit)
        before = self.table.clone()
        if li.is_data:
            times = [
                t for t in self.restored_at.get((li.family, li.address), []) if now - t < MINUTE
            ]
            if len(times) < RESTORE_LIMIT:
                self.restored_at[(li.family, li.address)] = [*times, now]
                del before.nics[nic.name].instances[li.family].units[li.unit]
                return [
                    _log(
                        f"Address {what} was removed by another program; restored it on "
                        f"{name} (in.mpathd configured it: remove it with "
                        f"ifconfig {nic.name} removeif {li.address})",
                        LOG_WARNING,
                    ),
                    *reconcile(before, self.table),
                ]
            message = (
                f"Address {what} was removed by another program {len(times) + 1} times within "
                f"{int(MINUTE)} s; leaving {name} down (ifconfig {name} up brings it back)"
            )
        else:
            message = (
                f"Test address {what} was removed by another program; {name} is down until "
                f"the address is added back (or ifconfig {name} up)"
            )
        li.flags &= ~IFF_UP
        self.downed_elsewhere.add((nic.name, li.family, li.address))
        # The kernel holds it no more: the stack learns it as a down address.
        del before.nics[nic.name].instances[li.family].units[li.unit]
        actions: list[Action] = [_log(message, LOG_WARNING)]
        actions += reconcile(before, self.table) + self._sync(now)
        inst = self.probes.get((nic.name, li.family))
        track = self.tracking.get(nic.name)
        if li.nofailover and inst is not None and inst.test_address is None and track is not None:
            # No false FAILED that never repairs: probing stops, the link decides.
            track.no_test_logged = True
            actions.append(_log(NO_TEST_ADDRESS.format(nic.name)))
        return actions + self._evaluate(now, {nic.name})

    def _added_elsewhere(self, event: AddressAddedElsewhere) -> list[Action]:
        """Another program added an address on ``event.ifname``.

        A copy of an address in.mpathd keeps on another NIC (networkd or a
        DHCP client configuring a failed NIC again) is removed: the address
        stays once, where failover put it, and fails back from there.  An
        address in.mpathd left down because another program deleted it is
        brought up again.  Any other address is the other program's: it is
        left alone and never moved (README, "Other writers").
        """
        now = event.now
        what = f"{event.address}/{event.prefixlen} on {event.ifname}"
        nic = self.table.nics.get(event.ifname)
        found = self.table.find_address(event.family, event.address)
        if found is not None and found[0].name != event.ifname and found[0].present:
            holder, li = found
            if nic is None or not nic.present or not nic.instances:
                return [
                    _log(
                        f"Address {what} was added by another program, but in.mpathd keeps "
                        f"it on {holder.name}: duplicate address on an interface in.mpathd "
                        "does not manage",
                        LOG_WARNING,
                    )
                ]
            state = "failed" if nic.failed else "not where in.mpathd keeps it"
            return [
                _log(
                    f"Address {what} was added by another program while in.mpathd keeps it on "
                    f"{_unit_name(holder.name, li.unit)} ({event.ifname} is {state}); "
                    f"removed the copy from {event.ifname}",
                    LOG_WARNING,
                ),
                RemoveAddress(
                    event.ifname, event.family, event.unit, event.address, event.prefixlen
                ),
            ]
        key = (event.ifname, event.family, event.address)
        mine = _logical(nic, event.family, event.address) if nic is not None else None
        if nic is not None and mine is not None and key in self.downed_elsewhere:
            self.downed_elsewhere.discard(key)
            before = self.table.clone()
            mine.flags |= IFF_UP
            actions: list[Action] = [
                _log(
                    f"Address {what} was added back by another program; "
                    f"{_unit_name(nic.name, mine.unit)} is up again",
                    LOG_WARNING,
                )
            ]
            actions += reconcile(before, self.table) + self._sync(now)
            return actions + self._evaluate(now, {nic.name})
        if mine is not None and nic is not None and not mine.up:
            return [
                _log(
                    f"Address {what} was added by another program; in.mpathd has "
                    f"{_unit_name(nic.name, mine.unit)} down and leaves that copy alone",
                    LOG_WARNING,
                )
            ]
        if mine is not None or nic is None or not nic.instances or key in self.foreign_logged:
            return []
        self.foreign_logged.add(key)
        level = LOG_DEBUG if is_link_local(event.family, event.address) else LOG_INFO
        return [
            _log(
                f"Address {what} was added by another program; in.mpathd leaves it alone "
                "(it does not fail over: configure it with ifconfig for that)",
                level,
            )
        ]

    # ======================================================================
    # periodic work
    # ======================================================================

    def _arm_scan(self, now: float) -> None:
        if self.next_scan is None and self.tracking:
            self.next_scan = now + IF_SCAN_INTERVAL

    def _scan(self, now: float) -> list[Action]:
        """The 20-second rescan: messages, target ageing, and the invariants (facts §4.1)."""
        self._all_timers_dirty = True
        actions: list[Action] = []
        for inst in self.probes.values():
            inst.refresh_active(now)
        for name, track in self.tracking.items():
            nic = self.table.nics.get(name)
            if nic is None or not nic.present:
                continue
            if (
                not self._has_test_address(nic)
                and not track.no_test_logged
                and now - track.since >= TESTADDR_CONF_TIME
            ):
                track.no_test_logged = True
                actions.append(_log(NO_TEST_ADDRESS.format(name)))
            actions += self._check_plumbing(nic, track)
            actions += self._check_targets(nic, track, now)
        actions += self._enforce(now)
        return actions

    def _check_targets(self, nic: Nic, track: Tracking, now: float) -> list[Action]:
        """Say so loudly when a test address has found no target (facts §9, pitfall 2).

        Without targets probe-based detection silently does nothing; Linux
        hosts ignore all-hosts IPv4 echo by default, so this is common there.
        """
        actions: list[Action] = []
        for family in FAMILIES:
            inst = self.probes.get((nic.name, family))
            if inst is None or inst.test_address is None:
                continue
            where = f"({family} {nic.name})"
            if not inst.targets and family not in track.no_targets_logged:
                if now - track.since >= TESTADDR_CONF_TIME:
                    track.no_targets_logged.add(family)
                    actions.append(
                        _log(
                            f"No probe targets found on {where}; probe-based failure "
                            "detection is not working there: add a router or host routes "
                            "on the test subnet, or TARGETS= in /etc/default/mpathd"
                        )
                    )
            elif inst.targets and family in track.no_targets_logged:
                track.no_targets_logged.discard(family)
                actions.append(_log(f"Probe targets found on {where}; probing resumes"))
        return actions

    def _check_plumbing(self, nic: Nic, track: Tracking) -> list[Action]:
        """An IPv4-only member of a dual-stack group, or the reverse (facts §5)."""
        if not nic.group:
            return []
        actions: list[Action] = []
        members = [m for m in self.table.members(nic.group) if m.present]
        for family in FAMILIES:
            group_has = any(family in m.instances for m in members)
            lacking = group_has and family not in nic.instances
            if lacking and family not in track.not_plumbed_logged:
                track.not_plumbed_logged.add(family)
                actions.append(
                    _log(
                        f"NIC {nic.name} of group {nic.group} is not plumbed for "
                        f"{_fam_label(family)} and may affect failover capability"
                    )
                )
            elif not lacking and family in track.not_plumbed_logged:
                track.not_plumbed_logged.discard(family)
                actions.append(
                    _log(
                        f"NIC {nic.name} is now consistent with group {nic.group} "
                        "and failover capability is restored"
                    )
                )
        return actions

    def _enforce(self, now: float) -> list[Action]:
        """Re-establish the invariants; a half-done move completes here (facts §4.1)."""
        before = self.table.clone()
        actions: list[Action] = []
        for group_name in sorted({n.group for n in self.table.nics.values() if n.group}):
            state = self.groups.get(group_name)
            if state is not None and state.failed:
                continue
            for nic in self.table.members(group_name):
                if nic.name != self._configuring:
                    actions += self._enforce_nic(nic)
        for nic in self.table.ordered():
            if not nic.group and nic.standby:
                # In a group or not (``-failover`` can take a standby's last one).
                self._settle_inactive(nic)
        actions += reconcile(before, self.table)
        return actions

    def _still_failing(self, nic: Nic) -> bool:
        """Failed and still showing it (S10 failure_state), not merely awaiting repair.

        After a group failure a member whose probes answer again is on its way to
        repair: moving its addresses away meanwhile would only churn.
        """
        if nic.offline or not nic.present:
            return True
        if not nic.failed:
            return False
        if not nic.link_up:
            return True
        probing = self._probing(nic)
        return not probing or all(inst.loss_run() >= NUM_PROBE_FAILS for inst in probing)

    def _standby_home(self, li: LogicalInterface) -> bool:
        home = self.table.nics.get(li.home)
        return home is not None and home.standby

    def _settle_inactive(self, nic: Nic) -> None:
        """INACTIVE means "carries no data" (guide: Standby Interfaces)."""
        if not nic.present or nic.failed:
            return
        if any(li.is_data and li.up for li in nic.addresses()):
            nic.inactive = False
        elif nic.standby:
            nic.inactive = True

    def _enforce_nic(self, nic: Nic) -> list[Action]:
        actions: list[Action] = []
        if nic.standby and nic.present:
            # A standby carries data only while it covers for a member that is down.
            for li in [li for li in nic.addresses() if li.is_data and li.home != nic.name]:
                home = self.table.nics.get(li.home)
                if home is not None and home.usable and home.group == nic.group:
                    move_addresses(nic, home, homed_at(home.name))
            if any(li.is_data and self._standby_home(li) for li in nic.addresses()):
                # Addresses of a standby (its own, come back while it covered, or
                # another standby's) belong on an active member as soon as there
                # is one (FAILOVER_TO_NONSTANDBY).
                fail_over(self.table, nic, "to_nonstandby", self._standby_home)
        self._settle_inactive(nic)
        if self._still_failing(nic) and any(li.is_data for li in nic.addresses()):
            # A stranded family goes as soon as a member can take it.
            actions += self._failover_logs(nic, fail_over(self.table, nic, "normal"))
        # facts §4.4: a standby never fails back (its own addresses stay active
        # elsewhere); the others do when FAILBACK=yes.
        wants_back = nic.usable and not nic.inactive and not nic.standby and self.config.failback
        if wants_back and pending_failback(self.table, nic) and fail_back(self.table, nic):
            actions.append(self._failed_back(nic.name))
        return actions


def select_test_address(nic: Nic, family: Family) -> LogicalInterface | None:
    """The test address of one family (facts §8 test-address selection).

    Eligible: NOFAILOVER and UP, neither NOXMIT nor NOLOCAL, not 0.0.0.0; IPv6
    only link-local.  IPv4 prefers a DEPRECATED one; otherwise the last found.
    """
    inst: Instance | None = nic.instances.get(family)
    if inst is None:
        return None
    chosen: LogicalInterface | None = None
    for unit in sorted(inst.units):
        li = inst.units[unit]
        if not (li.nofailover and li.up) or li.unspecified or li.placeholder:
            continue
        if li.flags & (IFF_NOXMIT | IFF_NOLOCAL):
            continue
        if family == "inet6" and not li.link_local:
            continue
        if family == "inet6" or li.deprecated:
            return li
        chosen = li
    return chosen


def _each_line(
    file: HostnameFile,
    nic: Nic,
    apply: Callable[[IfconfigCommand], None],
    actions: list[Action],
) -> list[Action]:
    """Apply ``file`` to ``nic`` as the boot scripts do: plumb its family first if
    needed (a plumb that fails ends the file), then each line, a refused line
    logged with its number and the next one applied."""
    if file.family not in nic.instances:
        try:
            apply(IfconfigCommand(file.ifname, False, file.family, (Plumb(),)))
        except IpmpError as err:
            actions.append(_log(f"{_file_name(file)}: {err.message}"))
            return actions
    for number, command in enumerate(file.commands):
        try:
            apply(command)
        except IpmpError as err:
            # The boot scripts carry on with the next line (and interface).
            actions.append(_log(f"{_file_name(file)}{_line_of(file, number)}: {err.message}"))
    return actions


def _moving_line(family: Family, parts: Sequence[str]) -> Log:
    """The boot scripts' line for the data addresses of missing interfaces."""
    return _log(f"moving addresses from failed {_fam_label(family)} interfaces:" + "".join(parts))


def _logical(nic: Nic, family: Family, address: str) -> LogicalInterface | None:
    """The logical interface of ``nic`` holding ``address`` (placeholders excluded)."""
    inst = nic.instances.get(family)
    if inst is None:
        return None
    try:
        wanted = str(ipaddress.ip_address(address))
    except ValueError:
        return None
    for li in inst.units.values():
        if li.address == wanted and not li.placeholder and not li.unspecified:
            return li
    return None


def _unit_name(ifname: str, unit: int) -> str:
    """``hme0`` for unit 0, ``hme0:N`` otherwise."""
    return ifname if unit == 0 else f"{ifname}:{unit}"


def _line_of(file: HostnameFile, number: int) -> str:
    return f" line {file.lines[number]}" if number < len(file.lines) else ""


def _file_name(file: HostnameFile) -> str:
    prefix = "hostname" if file.family == "inet" else "hostname6"
    return f"{prefix}.{file.ifname}"
