"""A state file that cannot be written: the failover happens anyway, the failure is
logged once and retried, and an administrator's change that cannot be saved is refused.

In-process (no socket): ``write_json`` of the state file is made to fail with the
errno a read-only directory, a full disk or fd exhaustion give.
"""

from __future__ import annotations

import errno
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import ipmp.daemon.daemon as daemon_module
from daemontools import inprocess_daemon  # noqa: F401 (the ``daemon`` fixture)
from ipmp.core.errors import IpmpError
from ipmp.daemon.control import Peer, Request
from ipmp.daemon.daemon import Daemon, sim_world_path, state_path

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "ipmp" / "examples"
ROOT = Peer(pid=1, uid=0, gid=0, privileged=True)


class Disk:
    """Makes writes of one file fail with ``errno`` while ``broken``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *paths: Path) -> None:
        self.paths = paths
        self.broken: int | None = None
        self.attempts = 0
        real = daemon_module.write_json

        def write(target: Path, data: Any, durable: bool = True) -> None:
            if target in self.paths:
                self.attempts += 1
                if self.broken is not None:
                    raise OSError(self.broken, os.strerror(self.broken), str(target))
            real(target, data, durable)

        monkeypatch.setattr(daemon_module, "write_json", write)


@pytest.fixture
def logs(daemon: Daemon) -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    daemon.logger.addHandler(handler)
    yield records
    daemon.logger.removeHandler(handler)


def kernel(d: Daemon) -> dict[str, str]:
    """Simulated kernel: address -> NIC holding it."""
    assert d.sim is not None
    return {a.address: a.ifname for a in d.sim.host.addresses()}


def reported(d: Daemon) -> dict[str, str]:
    """What the daemon reports (its table): data address -> NIC holding it."""
    out = {}
    for nic in d.engine.table.nics.values():
        for li in nic.addresses():
            if not li.placeholder and not li.unspecified:
                out[li.address] = nic.name
    return out


def texts(records: list[logging.LogRecord], needle: str) -> list[str]:
    return [r.getMessage() for r in records if needle in r.getMessage()]


def request(d: Daemon, op: str, **args: object) -> Any:
    return d.handle(Request(id=1, op=op, args=dict(args)), ROOT)


def fire_timers(d: Daemon, until: Callable[[], bool], limit: int = 20) -> None:
    """Run the state retry timer (as the loop would) until ``until`` holds."""
    for _ in range(limit):
        if until():
            return
        timer = d._sync_timer
        assert timer is not None, "no retry is scheduled"
        timer._run()
    assert until()


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EMFILE])
def test_a_failover_happens_in_the_kernel_when_the_state_cannot_be_saved(
    daemon: Daemon, logs: list[logging.LogRecord], monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    path = state_path(daemon.root)
    disk = Disk(monkeypatch, path)
    disk.broken = code
    assert daemon.sim is not None and daemon._loop is not None
    daemon.sim.host.set_link("hme0", False, daemon._loop.time())
    daemon._fire()  # the carrier loss: a failover whose write-ahead fails
    assert kernel(daemon)["192.168.85.19"] == "hme1"
    assert reported(daemon)["192.168.85.19"] == "hme1"
    errors = [r for r in logs if r.levelno >= logging.ERROR and "cannot save" in r.getMessage()]
    assert len(errors) == 1, [r.getMessage() for r in logs]
    assert f"{path}: {os.strerror(code)}" in errors[0].getMessage()
    # Retried with the timer, not logged again while it keeps failing.
    for _ in range(3):
        assert daemon._sync_timer is not None
        daemon._sync_timer._run()
    assert len(texts(logs, "cannot save")) == 1
    saved = json.loads(path.read_text())
    assert not any(nic["failed"] for nic in saved["nics"])  # the old state, untouched
    disk.broken = None
    fire_timers(daemon, lambda: bool(texts(logs, "state saved again")))
    saved = json.loads(path.read_text())
    assert any(nic["name"] == "hme0" and nic["failed"] for nic in saved["nics"])
    assert len(texts(logs, "state saved again")) == 1


def _kernel_and_table(d: Daemon) -> tuple[str, dict[str, str], frozenset[str]]:
    return repr(d.engine.table), kernel(d), frozenset(d.engine.detached)


@pytest.mark.parametrize(
    ("op", "args", "typed"),
    [
        ("offline", {"interface": "hme0"}, "offline hme0"),
        ("dr_detach", {"interface": "hme1"}, "dr detach hme1"),
        (
            "ifconfig",
            {"argv": ["hme1", "addif", "192.168.85.60", "up"]},
            "ifconfig hme1 addif 192.168.85.60 up",
        ),
        ("ifconfig", {"argv": ["hme0", "-standby", "standby"]}, "ifconfig hme0 -standby standby"),
    ],
)
def test_a_request_whose_state_cannot_be_saved_is_refused_and_changes_nothing(
    daemon: Daemon,
    logs: list[logging.LogRecord],
    monkeypatch: pytest.MonkeyPatch,
    op: str,
    args: dict[str, object],
    typed: str,
) -> None:
    path = state_path(daemon.root)
    disk = Disk(monkeypatch, path)
    disk.broken = errno.ENOSPC
    before = _kernel_and_table(daemon)
    with pytest.raises(IpmpError) as refused:
        request(daemon, op, **args)
    assert refused.value.message == (
        f"{typed}: cannot save the state ({path}: No space left on device); nothing was changed"
    )
    assert _kernel_and_table(daemon) == before
    # With the disk back, the same request goes through.
    disk.broken = None
    request(daemon, op, **args)
    assert _kernel_and_table(daemon) != before


def test_online_after_a_refused_offline_is_refused_too_and_then_works(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = state_path(daemon.root)
    disk = Disk(monkeypatch, path)
    request(daemon, "offline", interface="hme0")
    disk.broken = errno.EROFS
    with pytest.raises(IpmpError, match=r"online hme0: cannot save the state .*Read-only"):
        request(daemon, "online", interface="hme0")
    assert daemon.engine.table.nics["hme0"].offline
    assert kernel(daemon)["192.168.85.19"] == "hme1"
    disk.broken = None
    request(daemon, "online", interface="hme0")
    assert not daemon.engine.table.nics["hme0"].offline


def test_the_simulated_kernel_is_saved_again_too(
    daemon: Daemon, logs: list[logging.LogRecord], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read-only run/ipmp: the simulated kernel's file cannot be written either.
    world = sim_world_path(daemon.root)
    disk = Disk(monkeypatch, state_path(daemon.root), world)
    disk.broken = errno.EROFS
    assert daemon.sim is not None and daemon._loop is not None
    daemon.sim.host.set_link("hme0", False, daemon._loop.time())
    daemon._fire()
    assert kernel(daemon)["192.168.85.19"] == "hme1"
    assert len(texts(logs, "simulated kernel: cannot save it")) == 1
    disk.broken = None
    fire_timers(daemon, lambda: bool(texts(logs, "simulated kernel saved again")))
    saved = json.loads(world.read_text())
    units = saved["nics"]["hme1"]["families"]["inet"].values()
    assert "192.168.85.19" in [unit[0] for unit in units]
