"""Where in.mpathd keeps its crash state, what a restart and a reboot do with it,
and the one-instance rule, on the simulated host (in.mpathd --sim as a process).

A restart finds ``run/ipmp/`` as the dead daemon left it; a reboot finds it
empty (tmpfs on a real host), and then the hostname files are the truth.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemontools import RunningDaemon, kernel_counts, wait_for
from ipmp.core.errors import IpmpError
from ipmp.daemon.control import socket_path
from ipmp.daemon.daemon import sim_world_path, state_path

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "ipmp" / "examples"
TOPOLOGY = EXAMPLES / "active-active.toml"


@pytest.fixture
def daemons() -> Iterator[list[RunningDaemon]]:
    started: list[RunningDaemon] = []
    yield started
    for daemon in started:
        daemon.kill()


def start(root: Path, daemons: list[RunningDaemon]) -> RunningDaemon:
    daemon = RunningDaemon(root, TOPOLOGY).start()
    daemons.append(daemon)
    return daemon


def where(daemon: RunningDaemon) -> dict[str, str]:
    """Kernel address -> the NIC holding it (the simulated kernel)."""
    return {address: name for name, _f, _u, address, _up in daemon.kernel()}


def edit(root: Path, name: str, old: str, new: str) -> None:
    path = root / "etc" / name
    text = path.read_text()
    assert old in text, (name, text)
    path.write_text(text.replace(old, new))


def log_since(daemon: RunningDaemon, offset: int) -> str:
    return daemon.log()[offset:]


def addif(daemon: RunningDaemon, nic: str, address: str) -> None:
    daemon.request("ifconfig", argv=[nic, "addif", address, "netmask", "+", "up"])


def stopped_with_a_runtime_address(root: Path, daemons: list[RunningDaemon]) -> RunningDaemon:
    """A daemon that added 192.168.85.60 to hme1 at run time, then stopped (SIGTERM)."""
    daemon = start(root, daemons)
    addif(daemon, "hme1", "192.168.85.60")
    assert daemon.stop() == 0
    return daemon


def test_the_state_lives_in_run_and_a_restart_keeps_runtime_changes(
    tmp_path: Path, daemons: list[RunningDaemon]
) -> None:
    daemon = stopped_with_a_runtime_address(tmp_path, daemons)
    assert state_path(tmp_path) == tmp_path / "run" / "ipmp" / "state.json"
    assert state_path(tmp_path).is_file()
    assert not (tmp_path / "var" / "lib" / "ipmp").exists()
    offset = len(daemon.log())
    daemon.start()
    assert "restarting: adopting the saved state" in log_since(daemon, offset)
    assert where(daemon)["192.168.85.60"] == "hme1"
    assert "changed since the state was saved" not in daemon.log()


def test_after_a_reboot_the_hostname_files_are_the_truth(
    tmp_path: Path, daemons: list[RunningDaemon]
) -> None:
    daemon = stopped_with_a_runtime_address(tmp_path, daemons)
    edit(tmp_path, "hostname.hme0", "192.168.85.19 ", "192.168.85.29 ")
    shutil.rmtree(tmp_path / "run")  # a reboot: run/ is a tmpfs; the kernel starts empty
    offset = len(daemon.log())
    daemon.start()
    assert "restarting" not in log_since(daemon, offset)
    on = where(daemon)
    assert on["192.168.85.29"] == "hme0" and on["192.168.85.20"] == "hme1"
    assert "192.168.85.19" not in on and "192.168.85.60" not in on


def test_a_restart_reconfigures_only_the_nic_whose_file_changed(
    tmp_path: Path, daemons: list[RunningDaemon]
) -> None:
    daemon = start(tmp_path, daemons)
    addif(daemon, "hme0", "192.168.85.61")
    addif(daemon, "hme1", "192.168.85.60")
    daemon.kill()  # a crash: run/ipmp/ stays as it was
    edit(tmp_path, "hostname.hme0", "192.168.85.19 ", "192.168.85.29 ")
    offset = len(daemon.log())
    daemon.start()
    log = log_since(daemon, offset)
    assert "restarting: adopting the saved state" in log
    changed = [line for line in log.splitlines() if "changed since the state was saved" in line]
    assert len(changed) == 1 and "hostname.hme0" in changed[0], changed
    assert "hostname.hme1" not in log and "adopted" not in log
    on = where(daemon)
    counts = kernel_counts(daemon.kernel())
    # hme0 as its file reads now: the old address and the runtime addif are gone.
    assert on["192.168.85.29"] == "hme0" and on["192.168.85.21"] == "hme0"
    assert "192.168.85.19" not in on and "192.168.85.61" not in on
    # hme1 keeps the crash state, its runtime change included.
    assert on["192.168.85.60"] == "hme1" and on["192.168.85.20"] == "hme1"
    assert all(n == 1 for n in counts.values()), counts
    rows = {r["interface"]: r for r in daemon.snapshot()["interfaces"]}
    assert rows["hme0"]["group"] == "test" and rows["hme1"]["group"] == "test"
    # The next restart finds the file as it was applied: nothing is reconfigured.
    daemon.kill()
    offset = len(daemon.log())
    daemon.start()
    assert "changed since" not in log_since(daemon, offset)
    assert where(daemon)["192.168.85.29"] == "hme0"


@pytest.mark.parametrize(
    "damage",
    [b"\xff\xfe not text", b"192.168.85.19 netmaks + up\n"],
    ids=["not-utf8", "does-not-parse"],
)
def test_a_file_broken_since_the_state_was_saved_takes_nothing_away(
    tmp_path: Path, daemons: list[RunningDaemon], damage: bytes
) -> None:
    """An unusable file says nothing of what is wanted: its NIC keeps its running state."""
    daemon = start(tmp_path, daemons)
    addif(daemon, "hme0", "192.168.85.61")
    daemon.kill()
    (tmp_path / "etc" / "hostname.hme0").write_bytes(damage)
    offset = len(daemon.log())
    daemon.start()
    log = log_since(daemon, offset)
    assert "hostname.hme0 changed but cannot be used" in log, log
    on = where(daemon)
    for address in ("192.168.85.19", "192.168.85.21", "192.168.85.61"):
        assert on.get(address) == "hme0", (address, on)


@pytest.mark.slow
def test_a_restart_with_the_edited_file_of_a_failed_nic(
    tmp_path: Path, daemons: list[RunningDaemon]
) -> None:
    daemon = start(tmp_path, daemons)
    daemon.request("sim", command=["link", "hme0", "down"])
    wait_for(lambda: where(daemon).get("192.168.85.19") == "hme1", 5, "failover to hme1")
    daemon.kill()
    edit(tmp_path, "hostname.hme0", "192.168.85.19 ", "192.168.85.29 ")
    daemon.start()

    def settled() -> bool:
        on, counts = where(daemon), kernel_counts(daemon.kernel())
        return (
            "192.168.85.19" not in on
            and on.get("192.168.85.29") == "hme1"  # hme0's cable is still out
            and all(n == 1 for n in counts.values())
        )

    wait_for(settled, 5, "the old address gone, the new one failed over once")
    daemon.request("sim", command=["link", "hme0", "up"])
    wait_for(lambda: where(daemon).get("192.168.85.29") == "hme0", 60, "failback to hme0")


def test_a_state_from_an_earlier_boot_is_moved_aside(
    tmp_path: Path, daemons: list[RunningDaemon]
) -> None:
    # A root whose run/ is not a tmpfs outlives a reboot: the boot ID tells.
    daemon = stopped_with_a_runtime_address(tmp_path, daemons)
    for path in (state_path(tmp_path), sim_world_path(tmp_path)):
        data = json.loads(path.read_text())
        assert data["boot_id"]
        data["boot_id"] = "00000000-0000-0000-0000-000000000000"
        path.write_text(json.dumps(data))
    offset = len(daemon.log())
    daemon.start()
    log = log_since(daemon, offset)
    assert "restarting" not in log
    assert f"{state_path(tmp_path)}: written before this boot" in log
    assert "192.168.85.60" not in where(daemon)
    assert state_path(tmp_path).with_name("state.json.stale").is_file()


def legacy_state(root: Path, previous_version: bool) -> Path:
    """var/lib/ipmp/state.json, copied from the state in run/ (without the new fields)."""
    data = json.loads(state_path(root).read_text())
    if previous_version:
        del data["boot_id"], data["files"]
    legacy = root / "var" / "lib" / "ipmp" / "state.json"
    legacy.parent.mkdir(parents=True, exist_ok=True)
    legacy.write_text(json.dumps(data))
    return legacy


def test_a_legacy_state_of_this_boot_is_migrated_once(
    tmp_path: Path, daemons: list[RunningDaemon]
) -> None:
    daemon = stopped_with_a_runtime_address(tmp_path, daemons)
    # As the previous version left it: no boot ID, under var/lib; the kernel kept.
    legacy = legacy_state(tmp_path, previous_version=True)
    state_path(tmp_path).unlink()
    offset = len(daemon.log())
    daemon.start()
    log = log_since(daemon, offset)
    assert f"{legacy}: the state of the previous version, written during this boot" in log
    assert "restarting: adopting the saved state" in log
    assert where(daemon)["192.168.85.60"] == "hme1"
    assert not legacy.exists() and legacy.with_name("state.json.old").is_file()
    assert state_path(tmp_path).is_file()
    assert daemon.stop() == 0
    offset = len(daemon.log())
    daemon.start()
    assert str(legacy) not in log_since(daemon, offset)


def test_a_legacy_state_older_than_the_boot_is_moved_aside(
    tmp_path: Path, daemons: list[RunningDaemon]
) -> None:
    daemon = stopped_with_a_runtime_address(tmp_path, daemons)
    legacy = legacy_state(tmp_path, previous_version=False)
    os.utime(legacy, (1_000_000_000, 1_000_000_000))  # 2001: before this boot
    edit(tmp_path, "hostname.hme0", "192.168.85.19 ", "192.168.85.29 ")
    shutil.rmtree(tmp_path / "run")  # rebooted since
    offset = len(daemon.log())
    daemon.start()
    log = log_since(daemon, offset)
    assert f"{legacy}: written before this boot" in log and "restarting" not in log
    on = where(daemon)
    assert on["192.168.85.29"] == "hme0"
    assert "192.168.85.19" not in on and "192.168.85.60" not in on
    assert not legacy.exists() and legacy.with_name("state.json.old").is_file()


def second_start(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "ipmp.daemon.main", "-d", "--sim", str(TOPOLOGY)]
    return subprocess.run(
        [*argv, "--root", str(root), "--seed", "2", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_second_daemon_on_the_same_root_exits_before_touching_anything(
    tmp_path: Path, daemons: list[RunningDaemon]
) -> None:
    daemon = start(tmp_path, daemons)
    daemon.request("sim", command=["link", "hme0", "down"])
    assert daemon.proc is not None
    pid = daemon.proc.pid
    files = [state_path(tmp_path), sim_world_path(tmp_path)]
    before = [(p.read_bytes(), p.stat().st_mtime_ns) for p in files]
    sock = os.stat(socket_path(tmp_path))
    (tmp_path / "etc" / "default" / "mpathd").unlink()  # a second start would write it again
    result = second_start(tmp_path)
    assert result.returncode == 1
    assert result.stderr == (
        f"in.mpathd: another in.mpathd (pid {pid}) is running on this root ({tmp_path})\n"
    )
    assert [(p.read_bytes(), p.stat().st_mtime_ns) for p in files] == before
    assert not (tmp_path / "etc" / "default" / "mpathd").exists()
    assert os.stat(socket_path(tmp_path)).st_ino == sock.st_ino
    assert daemon.request("ping")["pid"] == pid
    assert where(daemon)["192.168.85.19"] == "hme1"


def test_a_metrics_port_in_use_fails_before_any_kernel_or_state_access(
    tmp_path: Path,
) -> None:
    pytest.importorskip("prometheus_client")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = second_start(tmp_path, "--metrics", f"127.0.0.1:{port}")
    assert result.returncode == 1
    assert result.stderr == f"in.mpathd: --metrics 127.0.0.1:{port}: Address already in use\n"
    assert not state_path(tmp_path).exists() and not sim_world_path(tmp_path).exists()
    assert not socket_path(tmp_path).exists() and not (tmp_path / "etc").exists()


def test_a_cable_pull_with_the_disk_full_fails_over_in_the_kernel(
    tmp_path: Path, daemons: list[RunningDaemon]
) -> None:
    daemon = start(tmp_path, daemons)
    daemon.request("sim", command=["disk", "full"])
    offset = len(daemon.log())
    daemon.request("sim", command=["link", "hme0", "down"])
    wait_for(lambda: where(daemon).get("192.168.85.19") == "hme1", 5, "failover in the kernel")
    rows = {r["interface"]: r for r in daemon.snapshot()["interfaces"]}
    assert rows["hme0"]["state"] == "failed"
    path = state_path(tmp_path)
    assert f"cannot save the state ({path}: No space left on device)" in log_since(daemon, offset)
    # A change cannot be saved: refused, nothing changed.
    with pytest.raises(
        IpmpError, match=r"ifconfig hme1 addif .*: cannot save the state .*; nothing"
    ):
        addif(daemon, "hme1", "192.168.85.60")
    assert "192.168.85.60" not in where(daemon)
    daemon.request("sim", command=["disk", "ok"])
    wait_for(lambda: "state saved again" in log_since(daemon, offset), 5, "saved again")
    assert log_since(daemon, offset).count("the interfaces are managed all the same") == 1
    assert any(n["name"] == "hme0" and n["failed"] for n in daemon.saved_state()["nics"])
