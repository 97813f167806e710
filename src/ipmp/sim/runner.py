"""Drive the engine against the simulated host on virtual time.

This is the synchronous twin of the daemon's loop: one timer (the earlier of
the engine's deadline and the host's next delivery), events fed in time
order, every action carried out at once.  It runs an hour of probing in well
under a second of wall time.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ipmp.core.actions import Action, Log
from ipmp.core.engine import Engine
from ipmp.core.events import Event
from ipmp.core.hostname_files import HostnameFile
from ipmp.core.mpathd_config import MpathdConfig
from ipmp.core.types import Family
from ipmp.driver import Driver
from ipmp.rootfs import read_hostname_files, read_root
from ipmp.sim.host import SimHost
from ipmp.sim.topology import Topology, load_topology, write_etc


@dataclass(frozen=True)
class LogRecord:
    """One line the daemon logged, with the virtual time it was logged at."""

    time: float
    priority: int
    message: str


class VirtualRunner:
    """An engine and a simulated host, run together on a virtual clock.

    A NIC attached at run time is configured from its hostname files as they
    read then: those under ``root`` when the runner has one, else
    ``hostname_files`` (the topology's, which a test may edit).
    """

    def __init__(
        self,
        host: SimHost,
        engine: Engine,
        now: float = 0.0,
        on_log: Callable[[LogRecord], None] | None = None,
        root: Path | None = None,
    ) -> None:
        self.host = host
        self.engine = engine
        self.now = now
        self.logs: list[LogRecord] = []
        self.on_log = on_log
        self.root = root
        self.hostname_files: dict[tuple[str, Family], HostnameFile] = {}
        self.driver = Driver(engine, host, on_log=self._logged, read_files=self._read_files)

    # -- building ------------------------------------------------------------

    @classmethod
    def from_topology(
        cls,
        topology: Topology,
        files: Sequence[HostnameFile] | None = None,
        config: MpathdConfig | None = None,
        seed: int = 1,
        on_log: Callable[[LogRecord], None] | None = None,
    ) -> VirtualRunner:
        """Boot a host from a topology: inventory first, then the hostname files.

        ``files`` default to the ones embedded in the topology.
        """
        if files is None or config is None:
            from ipmp.core.hostname_files import load_hostname_file
            from ipmp.core.mpathd_config import parse_mpathd

            etc = topology.etc_files()
            if files is None:
                files = [
                    load_hostname_file(text, path.rsplit("/", 1)[1])
                    for path, text in sorted(etc.items())
                    if path.startswith("etc/hostname")
                ]
            if config is None:
                text = etc.get("etc/default/mpathd")
                config = parse_mpathd(text).config if text is not None else MpathdConfig()
        engine = Engine(config, random.Random(seed), icmp_id_base=seed)
        runner = cls(SimHost(topology), engine, on_log=on_log)
        runner.boot(files)
        return runner

    @classmethod
    def from_root(
        cls,
        topology_path: Path,
        root: Path,
        seed: int = 1,
        on_log: Callable[[LogRecord], None] | None = None,
    ) -> VirtualRunner:
        """Boot from a topology file with the configuration files under ``root``.

        Files the topology embeds are written under ``root`` first unless one
        is there already: what the administrator wrote wins.
        """
        topology = load_topology(topology_path)
        write_etc(topology, root)
        cfg = read_root(root)
        engine = Engine(
            cfg.mpathd,
            random.Random(seed),
            icmp_id_base=seed,
            netmask_for=cfg.netmask_for,
            resolve_host=cfg.resolve_host,
        )
        runner = cls(SimHost(topology), engine, on_log=on_log, root=root)
        runner._record(list(cfg.messages))
        runner.boot(cfg.hostname_files)
        return runner

    def boot(self, files: Sequence[HostnameFile]) -> None:
        self.hostname_files = {(f.ifname, f.family): f for f in files}
        self.feed(self.host.start(self.now))
        self.execute(self.engine.boot(files, self.now))

    def _read_files(self, ifname: str) -> tuple[list[HostnameFile], list[str]]:
        if self.root is not None:
            return read_hostname_files(self.root, ifname)
        return [f for (name, _), f in sorted(self.hostname_files.items()) if name == ifname], []

    # -- the loop ------------------------------------------------------------

    def execute(self, actions: Sequence[Action]) -> None:
        """Carry out actions now; feed their outcomes back until nothing is left."""
        self.driver.execute(actions, self.now)

    def feed(self, events: Sequence[Event]) -> None:
        self.driver.feed(events, self.now)

    def step(self, limit: float) -> bool:
        """Advance to the next timer or delivery, if it is not after ``limit``."""
        due = self.driver.next_time()
        if due is None or due > limit:
            return False
        self.now = max(self.now, due)
        self.driver.wake(self.now)
        return True

    def run_until(self, until: float) -> None:
        """Run everything due up to ``until``; the clock ends there."""
        while self.step(until):
            pass
        self.now = max(self.now, until)

    def run_for(self, seconds: float) -> None:
        self.run_until(self.now + seconds)

    def run_until_true(self, predicate: Callable[[], bool], timeout: float) -> float | None:
        """Run until ``predicate()`` holds; return the time it did, or None at ``timeout``."""
        limit = self.now + timeout
        if predicate():
            return self.now
        while self.step(limit):
            if predicate():
                return self.now
        self.now = max(self.now, limit)
        return None

    # -- requests ------------------------------------------------------------

    def ifconfig(self, argv: Sequence[str], show_ether: bool = False) -> str:
        """Run an ifconfig command now; return what it prints."""
        outcome = self.engine.ifconfig(argv, self.now, show_ether)
        self.execute(outcome.actions)
        return outcome.output

    def apply(self, fault: Callable[[SimHost, float], None]) -> None:
        """Inject a fault (a call on the host) now and process what it causes."""
        fault(self.host, self.now)
        self.feed(self.host.take_due(self.now))

    # -- logging -------------------------------------------------------------

    def _logged(self, now: float, log: Log) -> None:
        record = LogRecord(now, log.priority, log.message)
        self.logs.append(record)
        if self.on_log is not None:
            self.on_log(record)

    def _record(self, logs: Sequence[Log]) -> None:
        for log in logs:
            self._logged(self.now, log)

    def messages(self) -> list[str]:
        return [record.message for record in self.logs]
