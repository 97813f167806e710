"""Running in.mpathd --sim as a real process for tests, and checking what it holds."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ipmp.client import ControlClient
from ipmp.core.errors import IpmpError
from ipmp.daemon.control import socket_path
from ipmp.daemon.daemon import Daemon, DaemonOptions, sim_world_path, state_path

ACTIVE_ACTIVE = Path(__file__).resolve().parent.parent / "src/ipmp/examples/active-active.toml"


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll ``predicate`` until it holds; return how long it took. Fails the test at timeout."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.01)


def started_in_process(root: Path, topology: Path = ACTIVE_ACTIVE) -> Daemon:
    """A daemon on ``root`` driving ``topology``, started on a loop of its own that does
    not run: a test calls ``handle``, ``_fire`` and the timers' callbacks itself."""
    loop = asyncio.new_event_loop()
    d = Daemon(DaemonOptions(root=root, sim=topology, foreground=True))
    d._loop = loop
    d._start_engine(loop.time())
    return d


@pytest.fixture(name="daemon")
def inprocess_daemon(tmp_path: Path) -> Iterator[Daemon]:
    """Fixture ``daemon``: ``started_in_process`` on the test's ``tmp_path``."""
    d = started_in_process(tmp_path)
    yield d
    assert d._loop is not None
    d._loop.close()


class RunningDaemon:
    """``in.mpathd -d --sim TOPOLOGY --root ROOT`` in a subprocess."""

    def __init__(self, root: Path, topology: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.topology = topology
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.logfile = root / "daemon.log"

    def start(
        self,
        extra_env: dict[str, str] | None = None,
        wait: bool = True,
        args: list[str] | None = None,
    ) -> RunningDaemon:
        env = {**os.environ, **self.env, **(extra_env or {})}
        log = self.logfile.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ipmp.daemon.main",
                "-d",
                "--sim",
                str(self.topology),
                "--root",
                str(self.root),
                "--seed",
                "1",
                *(args or []),
            ],
            stdout=log,
            stderr=log,
            env=env,
        )
        log.close()
        if wait:
            wait_for(self.answers, 20, "the daemon answers ping")
        return self

    def answers(self) -> bool:
        try:
            self.client(timeout=1.0).request("ping")
        except IpmpError:
            return False
        return True

    def client(self, timeout: float = 5.0) -> ControlClient:
        return ControlClient(socket_path(self.root), timeout=timeout)

    def request(self, op: str, **args: Any) -> Any:
        return self.client().request(op, **args)

    def snapshot(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("snapshot")
        return result

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 5.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
        self.proc = None

    def log(self) -> str:
        return self.logfile.read_text(errors="replace") if self.logfile.exists() else ""

    def kernel(self) -> list[tuple[str, str, int, str, bool]]:
        """The simulated kernel's addresses: (ifname, family, unit, address, up)."""
        world = json.loads(sim_world_path(self.root).read_text())
        out = []
        for name, nic in world["nics"].items():
            if not nic["attached"]:
                continue
            for family, units in nic["families"].items():
                for unit, (address, _p, _b, up, _d) in units.items():
                    out.append((name, family, int(unit), address, bool(up)))
        return out

    def saved_state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(state_path(self.root).read_text())
        return data


def kernel_counts(kernel: list[tuple[str, str, int, str, bool]]) -> Counter[str]:
    return Counter(address for _n, _f, _u, address, _up in kernel)
