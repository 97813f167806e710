"""The ``ipmp`` command line: demo and ifconfig on the simulated host."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ipmp.cli.demo import run_demo
from ipmp.cli.main import main


def test_demo_tells_the_guides_story() -> None:
    out = io.StringIO()
    assert run_demo(out) == 0
    text = out.getvalue()
    for expected in (
        "hme0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2",
        "hme0: flags=19000842<BROADCAST,RUNNING,MULTICAST,IPv4,NOFAILOVER,FAILED> mtu 0 index 2",
        "hme1:2: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 3",
        "NIC failure detected on hme0 of group test",
        "Successfully failed over from NIC hme0 to NIC hme1",
        "Successfully failed back to NIC hme0",
        "69040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,STANDBY,INACTIVE>",
        "49000842<BROADCAST,RUNNING,MULTICAST,IPv4,NOFAILOVER,INACTIVE>",
        "All Interfaces in group test have failed",
        "At least 1 interface (hme0) of group test has repaired",
    ):
        assert expected in text, expected
    assert "!!" not in text


def test_ifconfig_prints_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ifconfig", "--sim", "active-standby", "hme1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("hme1: flags=69040843<")
    assert "\tgroupname test\n" in out


def test_ifconfig_all(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ifconfig", "--sim", "active-active", "-a"]) == 0
    out = capsys.readouterr().out
    assert out.count("groupname test") == 4  # hme0 and hme1, IPv4 and IPv6


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ifconfig", "hme0", "netmaks", "+"], '"netmaks": unknown keyword'),
        (["ifconfig", "--sim", "active-active", "hme0", "netmaks", "+"], '"netmaks"'),
        (
            ["ifconfig", "--sim", "active-standby", "hme1", "addif", "192.168.85.40", "up"],
            "standby interface hme1",
        ),
        (["ifconfig", "--sim", "nosuch", "-a"], "no example topology 'nosuch'"),
        (["ifconfig", "--settle", "soon", "-a"], "--settle 'soon': expected seconds"),
        (["ifconfig"], "expected an interface name or -a"),
        (["ifconfig", "--sim", "active-active", "hme9"], "hme9: no such interface"),
        (["ifconfig", "hme0:1", "group", "x"], "logical interface"),
        (["ifconfig", "-a"], "cannot contact in.mpathd"),
        (["offline"], "expected one interface name"),
        (["dr", "detach"], "usage: ipmp dr detach IF [-f]"),
        (["frobnicate"], "unknown command"),
    ],
)
def test_ifconfig_refusals_are_one_line(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IPMP_ROOT", str(tmp_path))  # no daemon runs there
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert message in captured.err
    assert captured.err.count("\n") == 1


@pytest.mark.parametrize("command", ["demo", "ifconfig", "offline", "online", "dr", "sim"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_every_subcommand_has_help(
    command: str, flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--help is help: it neither runs the demo nor asks in.mpathd about an interface '--help'."""
    assert main(["--root", str(tmp_path), command, flag]) == 0  # no daemon under tmp_path
    out, err = capsys.readouterr()
    assert out.startswith(f"usage: ipmp {command}") and err == ""
    assert "Example 30-1" not in out  # the demo did not run


def test_the_demo_takes_no_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "now"]) == 1
    assert capsys.readouterr().err == "ipmp demo: unexpected argument 'now'; usage: ipmp demo\n"
