"""``ifconfig IF mtu N`` sets the kernel's MTU, and status shows the kernel's (simulated host)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemontools import inprocess_daemon  # noqa: F401 (the ``daemon`` fixture)
from ipmp.core.actions import SetLinkMtu
from ipmp.core.errors import IpmpError
from ipmp.core.events import LinkMtuChanged
from ipmp.core.reconcile import undo_actions
from ipmp.daemon.control import Request
from ipmp.daemon.daemon import Daemon
from simtools import boot, boot_text, settle, where
from test_daemon_inprocess import ROOT

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "ipmp" / "examples"


def first_line(text: str) -> str:
    return text.splitlines()[0]


def test_ifconfig_mtu_sets_the_kernels_mtu_and_status_shows_it() -> None:
    runner = settle(boot("active-active"), 5)
    runner.ifconfig(["hme0", "mtu", "1400"])
    assert runner.host._nics["hme0"].mtu == 1400
    assert first_line(runner.ifconfig(["hme0"])).endswith("mtu 1400 index 2")
    assert "mtu 1400" in runner.ifconfig(["hme0:1"])
    assert "hme1: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500" in runner.ifconfig(
        ["-a"]
    )


def test_the_engine_carries_an_mtu_change_out_as_one_action() -> None:
    runner = settle(boot("active-active"), 5)
    outcome = runner.engine.ifconfig(["hme0", "mtu", "1400"], runner.now)
    assert [a for a in outcome.actions if isinstance(a, SetLinkMtu)] == [SetLinkMtu("hme0", 1400)]
    same = runner.engine.ifconfig(["hme0", "mtu", "1400"], runner.now)
    assert not [a for a in same.actions if isinstance(a, SetLinkMtu)]


def test_an_mtu_set_by_someone_else_is_shown() -> None:
    runner = settle(boot("active-active"), 5)
    runner.feed([LinkMtuChanged(runner.now, "hme1", 1280)])
    assert first_line(runner.ifconfig(["hme1"])).endswith("mtu 1280 index 3")


def test_undoing_an_mtu_change_puts_the_old_mtu_back() -> None:
    runner = settle(boot("active-active"), 5)
    before = runner.engine.table.clone()
    assert undo_actions([SetLinkMtu("hme0", 1400)], before) == [SetLinkMtu("hme0", 1500)]


def test_ipv6_needs_at_least_1280() -> None:
    runner = settle(boot("dual-stack"), 5)
    nic = next(n for n in runner.engine.table.nics.values() if "inet6" in n.instances)
    with pytest.raises(IpmpError, match=f"{nic.name}: mtu 1200: expected at least 1280"):
        runner.ifconfig([nic.name, "mtu", "1200"])
    assert nic.mtu == 1500


def ifconfig(d: Daemon, *argv: str) -> str:
    reply = d.handle(Request(id=1, op="ifconfig", args={"argv": list(argv)}), ROOT)
    assert isinstance(reply, dict)
    return str(reply["output"])


def test_an_mtu_the_hardware_refuses_is_one_line_and_changes_nothing(daemon: Daemon) -> None:
    assert daemon.sim is not None
    before = repr(daemon.engine.table)
    # The hardware carries 1500 at most; the addif of the same command is undone too.
    with pytest.raises(IpmpError) as refused:
        ifconfig(daemon, "hme0", "addif", "192.168.85.50/24", "up", "mtu", "9000")
    message = refused.value.message
    assert "\n" not in message
    assert message.startswith("ifconfig: hme0: mtu 9000: Invalid argument (expected 68..1500)")
    assert repr(daemon.engine.table) == before
    assert daemon.sim.host._nics["hme0"].mtu == 0  # still the hardware's
    assert "192.168.85.50" not in repr(daemon.sim.host.addresses())
    assert first_line(ifconfig(daemon, "hme0")).endswith("mtu 1500 index 2")
    # An MTU it takes is set.
    ifconfig(daemon, "hme0", "mtu", "1492")
    assert daemon.sim.host._nics["hme0"].mtu == 1492
    assert first_line(ifconfig(daemon, "hme0")).endswith("mtu 1492 index 2")


def test_the_grammar_refuses_an_mtu_out_of_range(daemon: Daemon) -> None:
    with pytest.raises(IpmpError, match=r"expected an MTU 68\.\.65535"):
        ifconfig(daemon, "hme0", "mtu", "70000")


def test_an_mtu_refused_at_boot_leaves_the_kernels_shown() -> None:
    text = (EXAMPLES / "active-active.toml").read_text()
    text = text.replace("192.168.85.19 netmask +", "192.168.85.19 mtu 9000 netmask +")
    runner = settle(boot_text(text), 5)
    assert first_line(runner.ifconfig(["hme0"])).endswith("mtu 1500 index 2")
    assert any("hme0: mtu 9000: Invalid argument" in m for m in runner.messages())
    assert where(runner, "192.168.85.19") == "hme0"  # the rest of the line applied
