"""The four installed commands: one version, and if_mpadm over the daemon's socket."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

import ipmp
from daemontools import RunningDaemon
from ipmp.cli.if_mpadm import NO_DAEMON, USAGE

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "src" / "ipmp" / "examples"

# What each console script runs, as `python -m MODULE` (the scripts' own modules).
COMMANDS = {
    "in.mpathd": "ipmp.daemon.main",
    "ipmpstat": "ipmp.cli.ipmpstat",
    "ipmp": "ipmp.cli.main",
    "if_mpadm": "ipmp.cli.if_mpadm",
}


def run(module: str, *args: str, root: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if root is not None:
        env["IPMP_ROOT"] = str(root)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_pyproject_takes_the_version_from_the_package() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "ipmp.__version__"}
    scripts = project["project"]["scripts"]
    assert {name: target.split(":")[0] for name, target in scripts.items()} == COMMANDS


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_prints_the_one_version(command: str) -> None:
    done = run(COMMANDS[command], "--version")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"{command} (ipmp) {ipmp.__version__}\n"


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[RunningDaemon]:
    running = RunningDaemon(tmp_path, EXAMPLES / "active-active.toml").start()
    yield running
    running.kill()


def _states(daemon: RunningDaemon) -> dict[str, str]:
    return {row["interface"]: row["state"] for row in daemon.snapshot()["interfaces"]}


def test_if_mpadm_offlines_and_undoes_with_solaris_messages(daemon: RunningDaemon) -> None:
    root = daemon.root
    done = run("ipmp.cli.if_mpadm", "-d", "hme0", root=root)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert _states(daemon)["hme0"] == "offline"
    where = {row["address"]: row["inbound"] for row in daemon.snapshot()["addresses"]}
    assert where["192.168.85.19"] == "hme1"

    again = run("ipmp.cli.if_mpadm", "-d", "hme0", root=root)
    assert (again.returncode, again.stderr) == (1, "Interface already offlined\n")
    last = run("ipmp.cli.if_mpadm", "-d", "hme1", root=root)
    assert last.returncode == 1
    assert last.stderr == (
        "Offline failed as there is no other functional interface available in the "
        "multipathing group for failing over the network access.\n"
    )
    assert _states(daemon)["hme1"] == "ok"

    undo = run("ipmp.cli.if_mpadm", "-r", "hme0", root=root)
    assert (undo.returncode, undo.stderr) == (0, "")
    assert _states(daemon)["hme0"] != "offline"
    twice = run("ipmp.cli.if_mpadm", "-r", "hme0", root=root)
    assert (twice.returncode, twice.stderr) == (1, "Interface not offlined\n")
    unknown = run("ipmp.cli.if_mpadm", "-d", "hme9", root=root)
    assert (unknown.returncode, unknown.stderr) == (
        1,
        "if_mpadm: offline: hme9: no such interface\n",
    )


@pytest.mark.parametrize(
    "argv",
    [[], ["hme0"], ["-d"], ["-x", "hme0"], ["-d", "hme0", "-r", "hme0"], ["-d", "hme0", "extra"]],
)
def test_if_mpadm_usage_asks_nothing_of_the_daemon(argv: list[str], tmp_path: Path) -> None:
    # No daemon at tmp_path: a usage error must be found before contacting one.
    done = run("ipmp.cli.if_mpadm", *argv, root=tmp_path)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", USAGE + "\n")


def test_if_mpadm_without_a_daemon(tmp_path: Path) -> None:
    done = run("ipmp.cli.if_mpadm", "-d", "hme0", root=tmp_path)
    assert (done.returncode, done.stderr) == (1, NO_DAEMON + "\n")
