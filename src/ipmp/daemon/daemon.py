"""``in.mpathd``: the engine run as a long-lived asyncio daemon.

The daemon is the only place with an event loop.  It keeps one timer, re-armed
to the earlier of the engine's deadline and the stack's next delivery after
every step, and carries out actions with no ``await`` in the middle of a
dispatch: every entry point (timer, control request, signal) runs to the end
synchronously, then re-arms the timer.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ipmp import __version__
from ipmp.core.actions import (
    LOG_ERR,
    LOG_INFO,
    LOG_NOTICE,
    LOG_WARNING,
    Action,
    AddAddress,
    Log,
    MoveAddress,
    PlumbInterface,
    RemoveAddress,
    SetLinkMtu,
    UnplumbInterface,
    UpdateAddress,
)
from ipmp.core.engine import Engine
from ipmp.core.errors import IpmpError
from ipmp.core.events import Event
from ipmp.core.flags import IFF_DEPRECATED, IFF_UP
from ipmp.core.hostname_files import HostnameFile
from ipmp.core.ifconfig_grammar import ModList, parse_ifconfig
from ipmp.core.model import HostTable, Instance, LogicalInterface
from ipmp.core.persist import changed_nics, saved_file_digests, table_from_state
from ipmp.core.status import snapshot
from ipmp.daemon import sdnotify
from ipmp.daemon.control import ControlServer, Peer, Request, Subscription, socket_path
from ipmp.daemon.logsink import emit, make_logger
from ipmp.daemon.main import IGNORED_SIGNALS
from ipmp.daemon.request_args import check_args
from ipmp.daemon.simcontrol import apply_sim_command
from ipmp.daemon.statefile import (
    boot_id,
    move_aside,
    read_json,
    read_this_boot,
    write_json,
    written_this_boot,
)
from ipmp.driver import Driver
from ipmp.rootfs import read_hostname_files, read_mpathd, read_root
from ipmp.sim.host import SimHost
from ipmp.sim.topology import Topology, load_topology, write_etc
from ipmp.stack import Stack

if TYPE_CHECKING:
    from ipmp.daemon.metrics import EngineMetrics
    from ipmp.linux.stack import LinuxStack


@dataclass(frozen=True)
class DaemonOptions:
    """How ``in.mpathd`` was started."""

    root: Path
    sim: Path | None = None
    foreground: bool = False
    debug: bool = False
    control_group: str | None = None
    seed: int | None = None
    metrics: tuple[str, int] | None = None
    metrics_listeners: tuple[socket.socket, ...] = ()
    """Sockets ``main`` bound for ``metrics`` before anything else (else bound at start)."""


def state_path(root: Path) -> Path:
    """Where the daemon keeps what the kernel cannot hold, for a restart.

    Under ``run/`` (a tmpfs on a real host): it describes this boot's kernel
    and must not outlive it; after a reboot the hostname files are the truth.
    """
    return root / "run" / "ipmp" / "state.json"


def legacy_state_path(root: Path) -> Path:
    """Where versions before the move to ``run/`` kept the state (migrated once)."""
    return root / "var" / "lib" / "ipmp" / "state.json"


def sim_world_path(root: Path) -> Path:
    """Where ``--sim`` keeps its simulated kernel (it plays the part of RAM)."""
    return root / "run" / "ipmp" / "sim-world.json"


ADDRESS_ACTIONS = (
    PlumbInterface,
    UnplumbInterface,
    AddAddress,
    RemoveAddress,
    UpdateAddress,
    MoveAddress,
    SetLinkMtu,
)
CRASH_AFTER_ENV = "IPMP_SIM_CRASH_AFTER"
"""Fault injection for crash tests: SIGKILL the daemon after this many kernel
actions on the simulated host (each one saved first, as a kernel would hold it)."""


class _SavedSimHost:
    """A SimHost that saves its world after every change, as a kernel keeps its state."""

    def __init__(self, host: SimHost, path: Path, boot: str) -> None:
        self.host = host
        self.path = path
        self.boot = boot
        crash = os.environ.get(CRASH_AFTER_ENV, "")
        self.crash_after = int(crash) if crash.isdigit() else None
        self.kernel_actions = 0
        self.unsaved: OSError | None = None
        self.log: Callable[[Log], None] = lambda log: None
        self.retry: Callable[[], None] = lambda: None
        """Asks for ``save`` to be called again later (the daemon's retry timer)."""

    def save(self) -> None:
        """Save the world; a failure is logged once (the kernel in memory goes on)."""
        # The boot ID: a world of an earlier boot is a kernel that is gone.
        try:
            write_json(self.path, {**self.host.world(), "boot_id": self.boot}, durable=False)
        except OSError as exc:
            if self.unsaved is None:
                self.log(
                    Log(
                        LOG_ERR,
                        f"simulated kernel: cannot save it ({self.path}: {exc.strerror or exc}): "
                        "a restart before it is saved again would find an older one",
                    )
                )
            self.unsaved = exc
            self.retry()
            return
        if self.unsaved is not None:
            self.unsaved = None
            self.log(Log(LOG_NOTICE, f"simulated kernel saved again in {self.path}"))

    def start(self, now: float) -> list[Event]:
        return self.host.start(now)

    def execute(self, action: Action, now: float) -> list[Event]:
        events = self.host.execute(action, now)
        if isinstance(action, ADDRESS_ACTIONS):
            self.save()
            self.kernel_actions += 1
            if self.crash_after is not None and self.kernel_actions >= self.crash_after:
                os.kill(os.getpid(), signal.SIGKILL)
        return events

    def next_due(self) -> float | None:
        return self.host.next_due()

    def take_due(self, now: float) -> list[Event]:
        return self.host.take_due(now)


STATE_SYNC_DELAY = 1.0
"""Seconds after a failover's quick save until the state is also fsynced."""
STATE_RETRY_MAX = 60.0
"""The longest wait between two attempts to save a state that could not be saved."""


class StateNotSaved(IpmpError):
    """The state could not be saved ahead of an administrator's request."""


MUTATIONS = {"offline", "online", "dr_detach", "dr_attach", "sim", "reload"}


def _describe_request(op: str, args: dict[str, Any]) -> str:
    """A change request as an administrator would type it, for the log."""
    if op == "ifconfig":
        return "ifconfig " + " ".join(args["argv"])
    if op == "sim":
        return "sim " + " ".join(args["command"])
    if op == "dr_detach":
        return f"dr detach {args['interface']}" + (" -f" if args.get("force") else "")
    if op == "dr_attach":
        return f"dr attach {args['interface']}"
    if op in ("offline", "online"):
        return f"{op} {args['interface']}"
    return op


class Daemon:
    """One engine, one stack, one timer, one control socket."""

    def __init__(self, options: DaemonOptions) -> None:
        self.options = options
        self.root = options.root
        self.logger = make_logger(options.foreground, options.debug)
        self.boot_id = boot_id()
        self.config = read_root(self.root) if options.sim is None else None
        self.sim: _SavedSimHost | None = None
        self.linux: LinuxStack | None = None
        if options.sim is not None:
            topology = load_topology(options.sim)
            write_etc(topology, self.root)  # what the administrator wrote wins
            self.config = read_root(self.root)
            host = self._sim_kernel(topology)
            self.sim = _SavedSimHost(host, sim_world_path(self.root), self.boot_id)
            stack: Stack = self.sim
        else:
            from ipmp.linux.stack import LinuxStack

            self.linux = LinuxStack()
            stack = self.linux
        assert self.config is not None
        seed = options.seed if options.seed is not None else os.getpid()
        self.engine = Engine(
            self.config.mpathd,
            random.Random(seed),
            icmp_id_base=os.getpid(),
            netmask_for=self.config.netmask_for,
            resolve_host=self.config.resolve_host,
        )
        self.driver = Driver(
            self.engine,
            stack,
            on_log=self._log,
            persist=self._persist,
            # A NIC attached at run time gets its files as they read now.
            read_files=self._read_hostname_files,
        )
        if self.sim is not None:
            self.sim.log = lambda log: self._log(0.0, log)
            self.sim.retry = self._schedule_retry
        self.subscribers: list[Subscription] = []
        self._timer: asyncio.TimerHandle | None = None
        self._poked = False
        self._event_step = False
        self._sync_timer: asyncio.TimerHandle | None = None
        self._strict_save = False
        """The next save is the write-ahead of a request: refuse it if it fails."""
        self._unsaved: str | None = None
        """Why the last save failed (None: the file holds the state)."""
        self._retry_delay = STATE_SYNC_DELAY
        self._saved: dict[str, Any] | None = None
        self._disk_fault: int | None = None
        """The state as last written."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self.server: ControlServer | None = None
        self.on_step: Callable[[], None] | None = None
        self.metrics: EngineMetrics | None = None
        self._legacy: Path | None = None
        self._rejected = False
        """A state of this boot was found and moved aside (corrupt or not of this host)."""
        self._source = state_path(self.root)
        """The state file adopted (run/ or the legacy one)."""

    def _sim_kernel(self, topology: Topology) -> SimHost:
        """The simulated host, with the kernel a previous daemon of this boot left."""
        path = sim_world_path(self.root)
        try:
            saved_world, stale = read_this_boot(path, self.boot_id)
        except IpmpError as err:
            saved_world, stale = None, err.message
        if stale is not None:
            emit(self.logger, Log(LOG_INFO, f"{stale}; the simulated kernel starts empty"))
        host = SimHost(topology)
        if saved_world is not None:
            try:
                host.restore_world(saved_world)
            except IpmpError as err:
                line = move_aside(path, ".corrupt", err.message)
                emit(self.logger, Log(LOG_ERR, f"{line}; the simulated kernel starts empty"))
                host = SimHost(topology)  # not a half-restored one
        return host

    # -- lifecycle -----------------------------------------------------------

    async def run(self) -> int:
        """Start, serve until SIGTERM/SIGINT, stop; return the exit status."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        for message in self.config.messages if self.config else []:
            self._log(loop.time(), message)
        if self.linux is not None:
            await self.linux.open()
            self.linux.notify = self._poke
        self._start_engine(loop.time())
        # Mode 0666: everyone may read (ipmpstat, ifconfig status); changes are
        # checked per request against the peer's credentials (SO_PEERCRED).
        self.server = ControlServer(
            socket_path(self.root),
            self.handle,
            group=self.options.control_group,
            mode=0o666,
            log=lambda text: self._log(loop.time(), Log(LOG_ERR, text)),
        )
        await self.server.start()
        metrics_servers: list[asyncio.Server] = []
        if self.options.metrics is not None:
            from ipmp.daemon.metrics import EngineMetrics, listen

            self.metrics = EngineMetrics(self.engine)
            listeners = self.options.metrics_listeners or tuple(listen(*self.options.metrics))
            metrics_servers = await self.metrics.serve(listeners)
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self._sighup)
        loop.add_signal_handler(signal.SIGUSR1, self._sigusr1)
        for number in IGNORED_SIGNALS:
            loop.add_signal_handler(number, self._ignored_signal, number)
        self._log(loop.time(), Log(LOG_NOTICE, self._started_line()))
        watchdog = sdnotify.watchdog_interval()
        ticker = asyncio.create_task(self._watchdog(watchdog)) if watchdog else None
        sdnotify.notify("READY=1")
        self._rearm()
        await self._stop.wait()
        sdnotify.notify("STOPPING=1")
        self._log(
            loop.time(),
            Log(LOG_NOTICE, "stopping: every address stays where it is"),
        )
        if ticker is not None:
            ticker.cancel()
        if self._timer is not None:
            self._timer.cancel()
        for sub in self.subscribers:
            sub.finish()
        await self.server.close()
        for metrics_server in metrics_servers:
            metrics_server.close()
        if self.linux is not None:
            await self.linux.close()
        self._persist()
        return 0

    def _started_line(self) -> str:
        body = (
            f"simulated host {self.options.sim}" if self.options.sim else "this host's interfaces"
        )
        return (
            f"in.mpathd {__version__} started (pid {os.getpid()}, root {self.root}): "
            f"watching {body}"
        )

    def _start_engine(self, now: float) -> None:
        """Inventory, then the saved state (a restart) or the hostname files (a boot)."""
        assert self.config is not None
        self.driver.feed(self.driver.stack.start(now), now)
        self._rejected = False
        table, fresh = self._crash_state(now)
        files = self.config.hostname_files
        if table is not None:
            fitted = self._fit_to_host(table, now)
            if fitted is None:
                table = None
            else:
                self._log(
                    now, Log(LOG_INFO, "restarting: adopting the saved state and the kernel's")
                )
                for nic, names in sorted(fresh.items()):
                    self._log(now, Log(LOG_INFO, _changed_line(nic, names, self.config.digests)))
                fresh_nics = set(fresh) | fitted
                self.driver.execute(self.engine.restore(table, files, now, fresh=fresh_nics), now)
        if table is None and self._rejected and self._kernel_holds_addresses():
            # A daemon of this boot configured this kernel, but its state
            # cannot be trusted: the hostname files, carried out over what
            # the kernel holds (an address a file keeps is not touched, one
            # none keeps goes), so that the table is what the kernel has.
            named = {file.ifname.partition(":")[0] for file in files}
            kernel = self._kernel_table(named)
            self.driver.execute(self.engine.restore(kernel, files, now, fresh=named), now)
        elif table is None:
            self.driver.execute(self.engine.boot(files, now), now)
            # A boot (not a restart, whose kernel still has them): /etc/defaultrouter.
            self.driver.execute(self.engine.default_routes(self.config.defaultrouters), now)
        self._persist()
        if self._legacy is not None:
            # Migrated: the state now lives in run/; the old file is never read again.
            self._retire_legacy(self._legacy, now)
            self._legacy = None

    def _crash_state(self, now: float) -> tuple[HostTable | None, dict[str, list[str]]]:
        """The saved table to adopt (None: boot from the hostname files), and which
        NICs' hostname files changed since it was saved (NIC -> file names).

        The state must be of this boot: one in run/ carries the boot ID; one
        the previous version left under var/lib is migrated if it was written
        since the boot and moved aside otherwise.
        """
        assert self.config is not None
        path, legacy = state_path(self.root), legacy_state_path(self.root)
        data: Any = None
        source = path
        try:
            data, stale = read_this_boot(path, self.boot_id)
            if stale is not None:
                self._log(now, Log(LOG_INFO, f"{stale}; starting from the hostname files"))
        except IpmpError as err:
            self._log(now, Log(LOG_ERR, f"{err.message}; starting from the hostname files"))
            stale = err.message
            self._rejected = True
        if legacy.is_file():
            if data is not None or stale is not None:
                self._log(now, Log(LOG_INFO, f"{legacy}: superseded by {path}"))
                self._retire_legacy(legacy, now)
            else:
                data, source = self._legacy_state(legacy, now), legacy
        if data is None:
            return None, {}
        try:
            table = table_from_state(data)
            recorded = saved_file_digests(data)
        except IpmpError as err:
            # Read, but of a shape no version of the daemon writes: kept aside.
            what = f"not a state in.mpathd can use ({err.message.removeprefix('state: ')})"
            line = move_aside(source, ".corrupt", what)
            self._log(now, Log(LOG_ERR, f"{line}; starting from the hostname files"))
            self._rejected = True
            self._legacy = None  # moved aside already, not migrated
            return None, {}
        self._source = source
        if recorded is None:
            # No digests (the previous version): a file written after the state changed.
            written = source.stat().st_mtime
            recorded = {
                name: digest
                for name, digest in self.config.digests.items()
                if _mtime(self.root / "etc" / name) <= written
            }
        return table, self._usable_changes(changed_nics(recorded, self.config.digests), now)

    def _usable_changes(self, changed: dict[str, list[str]], now: float) -> dict[str, list[str]]:
        """The changed NICs to configure afresh: not those with a file that cannot be used.

        A hostname file that no longer reads or parses says nothing of what the
        administrator wants now; configuring its NIC "afresh" from it would
        take every address off the NIC.  Such a NIC keeps its running state.
        """
        assert self.config is not None
        usable: dict[str, list[str]] = {}
        for nic, names in changed.items():
            bad = [name for name in names if name in self.config.unusable]
            if bad:
                self._log(
                    now,
                    Log(
                        LOG_ERR,
                        f"{', '.join(bad)} changed but cannot be used (see above): "
                        f"{nic} keeps its running configuration",
                    ),
                )
            else:
                usable[nic] = names
        return usable

    def _fit_to_host(self, table: HostTable, now: float) -> set[str] | None:
        """Check a saved table against this host; None if it does not describe it.

        The rule (README: Restarts, reboots, one instance): a saved NIC that
        is present with the MAC and interface index it was saved with is
        adopted; one present with another MAC or index is other hardware by
        that name and is configured from its hostname files (returned); one
        absent is kept, as missing, if it has a hostname file (guide: NICs
        That Were Missing at System Boot) and dropped otherwise (what the
        kernel holds of it is adopted where it is).  A state of which no NIC
        is adopted, or whose addresses on adopted NICs the kernel holds none
        of, describes another host or kernel: it is moved aside to
        ``state.json.mismatch`` and the daemon starts from the hostname files.
        """
        assert self.config is not None
        path = self._source
        hardware = self.engine.table.nics
        with_files = {file.ifname.partition(":")[0] for file in self.config.hostname_files}
        saved_names = sorted(table.nics)
        adopted: list[str] = []
        reconfigure: set[str] = set()
        lines: list[str] = []
        for name, nic in sorted(table.nics.items()):
            now_nic = hardware.get(name)
            if now_nic is None or not now_nic.present:
                if name not in with_files:
                    lines.append(
                        f"{path}: {name} is not on this host and has no hostname file: "
                        "its saved configuration is dropped"
                    )
                    _drop_nic(table, name)
                continue
            if (nic.mac and now_nic.mac and nic.mac != now_nic.mac) or (
                nic.index and now_nic.index and nic.index != now_nic.index
            ):
                lines.append(
                    f"{path}: {name} was MAC {nic.mac or '?'} index {nic.index} when the state "
                    f"was saved and is MAC {now_nic.mac or '?'} index {now_nic.index} now: "
                    f"{name} is configured from its hostname files"
                )
                reconfigure.add(name)
                continue
            adopted.append(name)
        why = ""
        if saved_names and not adopted:
            why = f"describes none of this host's interfaces ({', '.join(saved_names)})"
        else:
            wanted = {
                (li.family, li.address)
                for name in adopted
                for li in table.nics[name].addresses()
                if not (li.placeholder or li.unspecified)
            }
            found = self.engine.found.addresses if self.engine.found is not None else ()
            held = {(entry.family, entry.address) for entry in found}
            if wanted and not wanted & held:
                why = f"the kernel holds none of its {len(wanted)} addresses"
        if why:
            line = move_aside(path, ".mismatch", why)
            self._log(now, Log(LOG_ERR, f"{line}; starting from the hostname files"))
            self._rejected = True
            self._legacy = None  # moved aside already, not migrated
            return None
        for line in lines:
            self._log(now, Log(LOG_WARNING, line))
        return reconfigure

    def _kernel_holds_addresses(self) -> bool:
        found = self.engine.found
        return found is not None and bool(found.addresses)

    def _kernel_table(self, names: set[str]) -> HostTable:
        """The kernel's addresses on NICs ``names``, as a table to configure afresh."""
        table = HostTable()
        found = self.engine.found
        if found is None:
            return table
        for name in names:
            hardware = self.engine.table.nics.get(name)
            if hardware is not None:
                table.nics[name] = hardware.clone()
        for ifname, family in found.plumbed:
            if ifname in table.nics:
                table.nics[ifname].instances.setdefault(family, Instance(family))
        for entry in found.addresses:
            nic = table.nics.get(entry.ifname)
            if nic is None:
                continue
            flags = (IFF_UP if entry.up else 0) | (IFF_DEPRECATED if entry.deprecated else 0)
            inst = nic.instances.setdefault(entry.family, Instance(entry.family))
            unit = entry.unit
            if unit in inst.units:  # two addresses that claim one unit: keep both
                unit = inst.free_unit(None, 1)
            inst.units[unit] = LogicalInterface(
                entry.family,
                unit,
                entry.address,
                entry.prefixlen,
                flags,
                entry.ifname,
                unit,
                entry.broadcast,
            )
        return table

    def _legacy_state(self, legacy: Path, now: float) -> Any:
        """The state of the previous version, if it was written during this boot."""
        try:
            data = read_json(legacy)
        except IpmpError as err:
            self._log(now, Log(LOG_ERR, f"{err.message}; starting from the hostname files"))
            return None
        if written_this_boot(legacy):
            self._legacy = legacy
            self._log(
                now,
                Log(
                    LOG_INFO,
                    f"{legacy}: the state of the previous version, written during this boot: "
                    f"adopting it; it now lives in {state_path(self.root)}",
                ),
            )
            return data
        self._log(
            now,
            Log(LOG_INFO, f"{legacy}: written before this boot; starting from the hostname files"),
        )
        self._retire_legacy(legacy, now)
        return None

    def _retire_legacy(self, legacy: Path, now: float) -> None:
        aside = legacy.with_name(legacy.name + ".old")
        try:
            os.replace(legacy, aside)
        except OSError as exc:
            message = Log(LOG_ERR, f"{legacy}: cannot rename to {aside.name}: {exc.strerror}")
        else:
            message = Log(LOG_INFO, f"{legacy}: renamed to {aside.name}; it is not read again")
        self._log(now, message)

    async def _watchdog(self, interval: float) -> None:
        while True:
            sdnotify.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    # -- the one timer -------------------------------------------------------

    def _rearm(self) -> None:
        assert self._loop is not None
        due = self.driver.next_time()
        if self._timer is not None and due == self._timer.when():
            return  # already armed for it: spare the loop a cancel and a new handle
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if due is not None:
            self._timer = self._loop.call_at(due, self._on_timer)

    def _poke(self) -> None:
        """The stack has events to deliver: run them soon, from the loop."""
        if not self._poked and self._loop is not None:
            self._poked = True
            self._loop.call_soon(self._fire)

    def _on_timer(self) -> None:
        self._timer = None
        self._fire()

    def _fire(self) -> None:
        """Run what is due; a pending timer stays armed if it is still right."""
        assert self._loop is not None
        self._poked = False
        self._event_step = True
        try:
            self.driver.wake(self._loop.time())
        finally:
            self._event_step = False
        self._after_step()

    def _after_step(self) -> None:
        """After every dispatch: publish probes, then re-arm the timer."""
        # Nobody listening: the records wait in bounded rings, dropped when a
        # listener arrives (``probes``), so a probe costs no record then.
        records = (
            self.engine.drain_probe_records()
            if self.metrics is not None or self.subscribers
            else []
        )
        if self.metrics is not None and records:
            self.metrics.observe(records)
        if self.subscribers and records:
            alive = []
            for sub in self.subscribers:
                if all(sub.offer(record) for record in records):
                    alive.append(sub)
            self.subscribers = alive
        if self.on_step is not None:
            self.on_step()
        self._rearm()

    # -- signals -------------------------------------------------------------

    def _sighup(self) -> None:
        assert self._loop is not None
        self.reload(self._loop.time())
        self._after_step()

    def _read_hostname_files(self, ifname: str) -> tuple[list[HostnameFile], list[str]]:
        """A NIC attached at run time: its files as they read now (and their digests
        recorded, so that the next restart compares with what was applied last)."""
        digests = self.config.digests if self.config is not None else None
        return read_hostname_files(self.root, ifname, digests)

    def _unsubscribe(self, sub: Subscription) -> None:
        """A stream ended (the client left): forget it now, not at the next record."""
        if sub in self.subscribers:
            self.subscribers.remove(sub)

    def _ignored_signal(self, number: int) -> None:
        assert self._loop is not None
        name = signal.Signals(number).name
        self._log(
            self._loop.time(),
            Log(LOG_WARNING, f"ignoring {name}: send SIGTERM to stop in.mpathd"),
        )

    def _sigusr1(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for log in self.engine.stats():
            self._log(now, log)

    def reload(self, now: float) -> None:
        """SIGHUP: reread /etc/default/mpathd, keeping everything learned.

        Invalid values are logged and the running value is kept.
        """
        self._log(now, Log(LOG_INFO, "SIGHUP: rereading the config file"))
        config, messages = read_mpathd(self.root, previous=self.engine.config)
        for message in messages:
            self._log(now, message)
        self.driver.execute(self.engine.reload(config, now), now)

    # -- logging and state ---------------------------------------------------

    def _log(self, now: float, log: Log) -> None:
        emit(self.logger, log)

    def _persist(self) -> None:
        """Save the table ahead of the kernel changes a step asks for.

        A failover or failback (a timer or kernel event) is saved without
        fsync: the write-ahead has to survive the daemon being killed, which
        the page cache does, and two fsyncs put milliseconds of disk between
        the carrier loss and the move (strace of a cable pull: 4 ms).  A
        durable copy follows ``STATE_SYNC_DELAY`` later.  What the
        administrator asks for (control requests, SIGHUP, start, stop) is
        saved durably at once.

        The kernel never waits for the disk: a write that fails (read-only,
        full, out of descriptors) is logged once and retried with a backing
        off timer while the change goes ahead, except the first write of an
        administrator's request, which raises ``StateNotSaved`` so that the
        request is refused before any of its kernel steps.
        """
        if self._strict_save:
            self._strict_save = False
            try:
                self._save(durable=True)
            except OSError as exc:
                raise StateNotSaved(f"cannot save the state ({self._save_error(exc)})") from None
            return
        self._try_save(durable=not self._event_step)
        if self._event_step and self._sync_timer is None and self._loop is not None:
            self._sync_timer = self._loop.call_later(STATE_SYNC_DELAY, self._write_state)

    def _write_state(self) -> None:
        """Save the state durably now (also the sync and retry timer's callback)."""
        if self._sync_timer is not None:
            self._sync_timer.cancel()
            self._sync_timer = None
        if self.sim is not None and self.sim.unsaved is not None:
            self.sim.save()  # the simulated kernel could not be saved either
        self._try_save(durable=True)

    def _schedule_retry(self) -> None:
        """Try ``_write_state`` again later, backing off while it keeps failing."""
        if self._sync_timer is None and self._loop is not None:
            self._sync_timer = self._loop.call_later(self._retry_delay, self._write_state)
            self._retry_delay = min(self._retry_delay * 2, STATE_RETRY_MAX)

    def _set_disk_fault(self, code: int | None) -> None:
        """``sim disk``: make the state writes fail with ``code`` (None: repaired)."""
        self._disk_fault = code
        if code is None and self._unsaved is not None:
            self._write_state()  # at once, not at the next retry

    def _save(self, durable: bool) -> None:
        """Write the state file (OSError if it cannot be); note a recovery."""
        state = self._state()
        if self._disk_fault is not None:
            code = self._disk_fault
            raise OSError(code, os.strerror(code), str(state_path(self.root)))
        write_json(state_path(self.root), state, durable=durable)
        self._saved = state
        if self._unsaved is not None:
            self._unsaved = None
            self._retry_delay = STATE_SYNC_DELAY
            self._log(0.0, Log(LOG_NOTICE, f"state saved again in {state_path(self.root)}"))

    def _try_save(self, durable: bool) -> None:
        """``_save``; a failure is logged (once while it lasts) and retried later."""
        try:
            self._save(durable)
        except OSError as exc:
            reason = self._save_error(exc)
            if reason != self._unsaved:
                self._unsaved = reason
                self._log(
                    0.0,
                    Log(
                        LOG_ERR,
                        f"cannot save the state ({reason}): the interfaces are managed "
                        "all the same, the state is saved again as soon as it can be",
                    ),
                )
            self._schedule_retry()

    def _save_error(self, exc: OSError) -> str:
        """``/run/ipmp/state.json: No space left on device``."""
        return f"{exc.filename or state_path(self.root)}: {exc.strerror or exc}"

    def _state(self) -> dict[str, Any]:
        """The engine's table, the boot it describes, and the hostname files as applied."""
        assert self.config is not None
        return {
            **self.engine.export_state(),
            "boot_id": self.boot_id,
            "files": self.config.digests,
        }

    # -- control requests ----------------------------------------------------

    def handle(self, request: Request, peer: Peer) -> Any:
        """Serve one control request, synchronously (no await inside)."""
        assert self._loop is not None
        now = self._loop.time()
        args = check_args(request.op, request.args)
        mutates = self._mutates(request.op, args)
        if mutates:
            if not peer.privileged:
                raise IpmpError(
                    f"{request.op}: permission denied: changes need uid 0"
                    + (
                        f" or group {self.options.control_group}"
                        if self.options.control_group
                        else ""
                    )
                )
            # Who changed what: the answer an administrator looks for in the log.
            self._log(
                now,
                Log(
                    LOG_NOTICE,
                    f"{_describe_request(request.op, args)} "
                    f"requested by uid {peer.uid} (pid {peer.pid})",
                ),
            )
        try:
            if not mutates or request.op == "sim":
                # A simulated fault is no request to refuse: what it causes
                # (a failover) goes ahead whatever the disk says.
                return self._dispatch(request.op, args, now)
            return self._saved_change(request.op, args, now)
        finally:
            self._strict_save = False
            self._after_step()

    def _saved_change(self, op: str, args: dict[str, Any], now: float) -> Any:
        """An administrator's change, refused whole if its state cannot be saved first.

        The write-ahead of the request's first kernel step decides (or, for
        a change without one, a write at the end): a refusal comes before
        the kernel is touched, and the table is rolled back.
        """
        before = self.engine.checkpoint()
        config = self.engine.config
        self._strict_save = True
        try:
            result = self._dispatch(op, args, now)
            if self._strict_save and self._table_changed():
                self._persist()
        except StateNotSaved as err:
            self._strict_save = False
            if self.engine.config is not config:
                self.driver.execute(self.engine.reload(config, now), now)
            self.driver.execute(self.engine.rollback(before, [], now), now)
            refusal = f"{_describe_request(op, args)}: {err.message}; nothing was changed"
            self._log(now, Log(LOG_ERR, refusal))
            raise IpmpError(refusal) from None
        return result

    def _table_changed(self) -> bool:
        """Whether the table differs from what was last saved."""
        saved = self._saved
        exported = self.engine.export_state()
        return saved is None or any(saved.get(key) != value for key, value in exported.items())

    def _mutates(self, op: str, args: dict[str, Any]) -> bool:
        if op in MUTATIONS:
            return True
        if op == "ifconfig":
            # A status query, and `modlist` (which only lists), are reads.
            ops = parse_ifconfig(args["argv"]).ops
            return any(not isinstance(o, ModList) for o in ops)
        return False

    def _dispatch(self, op: str, args: dict[str, Any], now: float) -> Any:
        if op == "ping":
            return {"pid": os.getpid(), "sim": self.sim is not None}
        if op == "snapshot":
            return snapshot(self.engine, now)
        if op == "ifconfig":
            before = self.engine.checkpoint()
            outcome = self.engine.ifconfig(args["argv"], now, args.get("show_ether", False))
            report = self.driver.execute(outcome.actions, now)
            refused = [f for f in report.failed if isinstance(f.action, ADDRESS_ACTIONS)]
            if refused:
                # All or nothing, as for offline/online: a step the kernel
                # refused (an MTU it does not take) undoes the whole command.
                self.driver.execute(self.engine.rollback(before, report.completed, now), now)
                raise IpmpError(f"ifconfig: {refused[0].reason}; nothing was changed")
            return {"output": outcome.output}
        if op in ("offline", "online", "dr_detach", "dr_attach"):
            return self._admin(op, args["interface"], args.get("force", False), now)
        if op == "sim":
            return self._sim(args.get("command"), now)
        if op == "probes":
            if not self.subscribers and self.metrics is None:
                self.engine.drain_probe_records()  # what settled while nobody listened
            sub = Subscription(on_close=lambda: self._unsubscribe(sub))
            self.subscribers.append(sub)
            return sub
        if op == "reload":
            self.reload(now)
            return {}
        if op == "stats":
            return {"lines": [log.message for log in self.engine.stats()]}
        raise IpmpError(f"unknown operation {op!r}")

    def _admin(self, op: str, name: str, force: bool, now: float) -> Any:
        """offline/online/DR: all or nothing; a kernel step that fails is rolled back."""
        before = self.engine.checkpoint()
        if op == "offline":
            actions = self.engine.offline(name, now)
        elif op == "online":
            actions = self.engine.online(name, now)
        elif op == "dr_detach":
            actions = self.engine.dr_detach(name, force, now)
        else:
            actions = self.engine.dr_attach(name, now)
        report = self.driver.execute(actions, now)
        if report.failed:
            self.driver.execute(self.engine.rollback(before, report.completed, now), now)
            raise IpmpError(
                f"{op} {name} failed: {report.failed[0].reason}; "
                "the previous configuration is restored"
            )
        return {}

    def _sim(self, command: Any, now: float) -> Any:
        if self.sim is None:
            raise IpmpError("sim: this daemon drives real interfaces, not the simulator")
        apply_sim_command(self.sim.host, command, now, set_disk=self._set_disk_fault)
        self.sim.save()
        self.driver.feed(self.sim.host.take_due(now), now)
        return {}


def _drop_nic(table: HostTable, name: str) -> None:
    """Forget NIC ``name`` and the addresses homed on it, wherever they are.

    Only the table: the kernel's copies of them are then adopted by the NIC
    holding them, not removed.
    """
    for holder in table.nics.values():
        for inst in holder.instances.values():
            for unit, li in list(inst.units.items()):
                if li.home == name:
                    del inst.units[unit]
    del table.nics[name]


def _changed_line(nic: str, names: list[str], current: dict[str, str]) -> str:
    """``hostname.hme0 changed since the state was saved: hme0 is configured from it ...``."""
    shown = [name if name in current else f"{name} (removed)" for name in names]
    them, reads = ("it", "it reads") if len(names) == 1 else ("them", "they read")
    return (
        f"{', '.join(shown)} changed since the state was saved: "
        f"{nic} is configured from {them} as {reads} now"
    )


def _mtime(path: Path) -> float:
    """Modification time of ``path``; a file gone since it was read counts as just changed."""
    try:
        return path.stat().st_mtime
    except OSError:
        return float("inf")
