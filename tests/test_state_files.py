"""Bad state files: whatever is where run/ipmp/state.json belongs, a restart neither
crashes nor hangs nor applies it blindly.  An unreadable or inconsistent state is
moved aside with one line naming the file and what was wrong, and the daemon
starts from the hostname files (carried out over what the kernel holds).

In-process daemons on one root: a first one leaves a state and a simulated kernel
with a run-time address (192.168.85.60 on hme1), the test spoils the state, and a
second one starts (in a thread, so that a hang fails the test instead of blocking).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ipmp.daemon.daemon as daemon_module
from daemontools import started_in_process
from ipmp.core.actions import Log
from ipmp.daemon.control import Peer, Request
from ipmp.daemon.daemon import Daemon, sim_world_path, state_path

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "ipmp" / "examples"
ROOT = Peer(pid=1, uid=0, gid=0, privileged=True)
FROM_FILES = {
    "192.168.85.19": "hme0",
    "192.168.85.21": "hme0",
    "192.168.85.20": "hme1",
    "192.168.85.22": "hme1",
}


new_daemon = started_in_process


def first_run(root: Path, *addifs: tuple[str, str]) -> dict[str, Any]:
    """A daemon that added run-time addresses, then died; the state it left."""
    d = new_daemon(root)
    for nic, address in addifs or (("hme1", "192.168.85.60"),):
        d.handle(Request(1, "ifconfig", {"argv": [nic, "addif", address, "up"]}), ROOT)
    assert d._loop is not None
    d._loop.close()
    saved: dict[str, Any] = json.loads(state_path(root).read_text())
    return saved


class Logged:
    """Every line the daemon logs, with its priority."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lines: list[tuple[int, str]] = []
        real = daemon_module.emit

        def emit(logger: Any, log: Log) -> None:
            self.lines.append((log.priority, log.message))
            real(logger, log)

        monkeypatch.setattr(daemon_module, "emit", emit)

    def having(self, text: str) -> list[str]:
        return [line for _p, line in self.lines if text in line]


def restart(root: Path, timeout: float = 20.0) -> Daemon:
    """Start a daemon on ``root`` in a thread: a start that hangs fails the test."""
    out: list[Daemon | BaseException] = []

    def run() -> None:
        try:
            out.append(new_daemon(root))
        except BaseException as exc:  # reported below, in the test's thread
            out.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert out, f"the daemon did not start within {timeout} s (hung on the state file)"
    result = out[0]
    if isinstance(result, BaseException):
        raise AssertionError(f"the start failed: {result!r}") from result
    return result


def kernel(d: Daemon) -> dict[str, str]:
    assert d.sim is not None
    return {a.address: a.ifname for a in d.sim.host.addresses() if not a.address.startswith("fe80")}


def table(d: Daemon) -> dict[str, str]:
    out = {}
    for nic in d.engine.table.nics.values():
        for li in nic.addresses():
            if not (li.placeholder or li.unspecified or li.address.startswith("fe80")):
                out[li.address] = nic.name
    return out


def outside_file(root: Path) -> Path:
    """A root-owned file outside the root, with a valid state in it."""
    target = root.parent / f"{root.name}-outside.json"
    target.write_text(state_path(root).read_text())
    return target


def symlink_out(path: Path) -> None:
    target = outside_file(path.parent.parent.parent)
    path.unlink()
    path.symlink_to(target)


def deep(path: Path) -> None:
    path.write_text("[" * 100_000 + "]" * 100_000)


def spoil(field: str, value: Any) -> Callable[[Path], None]:
    """Set ``field`` of the first NIC's first IPv4 unit (or of the NIC) to ``value``."""

    def write(path: Path) -> None:
        data = json.loads(path.read_text())
        nic = data["nics"][0]
        if field in nic:
            nic[field] = value
        else:
            nic["instances"]["inet"][0][field] = value
        path.write_text(json.dumps(data))

    return write


BAD_FILES: dict[str, tuple[Callable[[Path], None], str]] = {
    "non-utf8": (
        lambda p: p.write_bytes(p.read_bytes().replace(b"hme0", b"hm\xff0", 1)),
        "not UTF-8 (byte 0xff at offset",
    ),
    "deep": (deep, "JSON nested too deeply"),
    "directory": (lambda p: (p.unlink(), p.mkdir()), "not a regular file but a directory"),
    "fifo": (lambda p: (p.unlink(), os.mkfifo(p)), "not a regular file but a FIFO"),
    "symlink": (symlink_out, "a symbolic link"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:300]), "not valid JSON"),
    "empty": (lambda p: p.write_bytes(b""), "not valid JSON"),
    "nan": (lambda p: p.write_text(p.read_text().replace('"mtu":1500', '"mtu":NaN', 1)), "NaN"),
    "list": (lambda p: p.write_text("[]"), "expected an object with version 1"),
    "mtu-string": (spoil("mtu", "1500"), "nics[0].mtu: expected int, got '1500'"),
    "prefixlen": (spoil("prefixlen", 99), "prefixlen: expected 0 to 32, got 99"),
    "home": (spoil("home", "qfe7"), ".home: 'qfe7' is no NIC of the state"),
    "modules": (spoil("modules", [{"a": 1}]), "modules: expected a list of strings"),
    "name": (spoil("name", "hme0\nx"), "name: not an interface name"),
    "instances": (spoil("instances", {"inet": {"0": 1}}), "bad family 'inet'"),
    "unit": (spoil("unit", -1), "unit: expected 0 to"),
}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_a_bad_state_file_is_moved_aside_and_the_files_are_the_truth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    first_run(tmp_path)
    path = state_path(tmp_path)
    make, what = BAD_FILES[kind]
    make(path)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.json"
    before = outside.read_bytes() if outside.exists() else None
    logged = Logged(monkeypatch)
    d = restart(tmp_path)
    lines = logged.having(str(path))
    assert len(lines) == 1, logged.lines
    assert what in lines[0] and "moved aside to state.json.corrupt" in lines[0], lines[0]
    assert "\n" not in lines[0]
    aside = path.with_name("state.json.corrupt")
    assert aside.is_symlink() if kind == "symlink" else aside.exists()
    # Booted from the hostname files over the kernel: the run-time address is
    # gone from both, nothing failed, and the table is what the kernel has.
    assert table(d) == FROM_FILES
    assert kernel(d) == FROM_FILES
    assert not logged.having("failed:"), logged.lines
    if before is not None:
        assert outside.read_bytes() == before  # the symlink's target, untouched
    # The next start finds a good state again.
    assert json.loads(path.read_text())["version"] == 1


def test_a_state_of_another_host_is_moved_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_run(tmp_path)
    path = state_path(tmp_path)
    text = path.read_text().replace('"hme0"', '"qfe0"').replace('"hme1"', '"qfe1"')
    path.write_text(text)
    logged = Logged(monkeypatch)
    d = restart(tmp_path)
    lines = logged.having(str(path))
    assert len(lines) == 1, logged.lines
    assert "describes none of this host's interfaces (qfe0, qfe1)" in lines[0]
    assert "moved aside to state.json.mismatch" in lines[0]
    assert table(d) == kernel(d) == FROM_FILES
    assert "qfe0" not in d.engine.table.nics


def test_a_nic_with_another_mac_is_configured_from_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = first_run(tmp_path, ("hme0", "192.168.85.61"), ("hme1", "192.168.85.60"))
    for nic in saved["nics"]:
        if nic["name"] == "hme0":
            assert nic["mac"] == "8:0:20:b9:19:fa"
            nic["mac"] = "8:0:20:0:0:1"
    state_path(tmp_path).write_text(json.dumps(saved))
    logged = Logged(monkeypatch)
    d = restart(tmp_path)
    lines = logged.having("when the state was saved")
    assert len(lines) == 1 and "hme0 was MAC 8:0:20:0:0:1" in lines[0], logged.lines
    assert "hme0 is configured from its hostname files" in lines[0]
    # hme0 as its files say (its run-time address gone); hme1 keeps the saved state.
    assert table(d) == kernel(d) == {**FROM_FILES, "192.168.85.60": "hme1"}


def test_an_absent_nic_without_a_hostname_file_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = first_run(tmp_path)
    ghost = json.loads(json.dumps(saved["nics"][0]))
    ghost.update(name="qfe9", mac="8:0:20:0:0:9", index=99, instances={})
    saved["nics"].append(ghost)
    state_path(tmp_path).write_text(json.dumps(saved))
    logged = Logged(monkeypatch)
    d = restart(tmp_path)
    lines = logged.having("qfe9")
    assert lines == [
        f"{state_path(tmp_path)}: qfe9 is not on this host and has no hostname file: "
        "its saved configuration is dropped"
    ]
    assert "qfe9" not in d.engine.table.nics
    assert table(d) == kernel(d) == {**FROM_FILES, "192.168.85.60": "hme1"}


def test_a_state_whose_addresses_the_kernel_has_none_of_is_moved_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_run(tmp_path)
    sim_world_path(tmp_path).unlink()  # the kernel lost everything (the state did not)
    logged = Logged(monkeypatch)
    d = restart(tmp_path)
    lines = logged.having(str(state_path(tmp_path)))
    assert len(lines) == 1 and "the kernel holds none of its" in lines[0], logged.lines
    assert "moved aside to state.json.mismatch" in lines[0]
    assert table(d) == kernel(d) == FROM_FILES


def test_a_corrupt_simulated_kernel_starts_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first_run(tmp_path)
    sim_world_path(tmp_path).write_bytes(b"\xff\xfe")
    logged = Logged(monkeypatch)
    restart(tmp_path)
    lines = logged.having(str(sim_world_path(tmp_path)))
    assert len(lines) == 1 and "not UTF-8" in lines[0], logged.lines
    assert "the simulated kernel starts empty" in lines[0]


def test_an_absent_nic_with_a_hostname_file_is_kept_as_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = first_run(tmp_path)
    (tmp_path / "etc" / "hostname.qfe3").write_text("192.168.85.33 netmask + group test up\n")
    ghost = json.loads(json.dumps(saved["nics"][0]))
    ghost.update(name="qfe3", mac="8:0:20:0:0:3", index=77, instances={})
    saved["nics"].append(ghost)
    state_path(tmp_path).write_text(json.dumps(saved))
    logged = Logged(monkeypatch)
    d = restart(tmp_path)
    assert not logged.having("saved configuration is dropped"), logged.lines
    assert "qfe3" in d.engine.table.nics and not d.engine.table.nics["qfe3"].present
    assert kernel(d)["192.168.85.60"] == "hme1"
