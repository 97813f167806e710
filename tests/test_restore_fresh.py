"""``Engine.restore`` with NICs whose hostname files changed since the state was saved.

Such a NIC is configured from its files as they read now, as at boot; the
others keep the saved state.  One reconcile carries the result to the kernel,
so an address the file keeps is not touched, and the addresses of the old
configuration are removed, not adopted.
"""

from __future__ import annotations

import random

from ipmp.core.actions import Action, AddAddress, Log, MoveAddress, RemoveAddress, UpdateAddress
from ipmp.core.engine import Engine
from ipmp.core.hostname_files import HostnameFile, load_hostname_file
from ipmp.core.model import HostTable
from ipmp.core.persist import changed_nics, forget_nics, table_from_state, table_to_state
from ipmp.sim.runner import VirtualRunner
from simtools import boot, settle, topology, where

ADDRESS_ACTIONS = (AddAddress, RemoveAddress, MoveAddress, UpdateAddress)


def files(name: str, edits: dict[str, tuple[str, str]]) -> list[HostnameFile]:
    """The example's hostname files, with ``file name -> (old, new)`` replacements."""
    out = []
    for rel, text in topology(name).etc_files().items():
        base = rel.rsplit("/", 1)[-1]
        if not base.startswith(("hostname.", "hostname6.")):
            continue
        if base in edits:
            old, new = edits[base]
            assert old in text
            text = text.replace(old, new)
        out.append(load_hostname_file(text, base))
    return out


def restart(
    runner: VirtualRunner, hostname_files: list[HostnameFile], fresh: set[str]
) -> tuple[Engine, list[Action]]:
    """A new engine restored from the runner's table, over the runner's kernel."""
    saved = table_from_state(table_to_state(runner.engine.table))
    engine = Engine(runner.engine.config, random.Random(2))
    for event in runner.host.start(runner.now):
        engine.handle(event)
    actions = engine.restore(saved, hostname_files, runner.now, fresh=fresh)
    runner.engine = runner.driver.engine = engine
    # The files as they read now are also what a NIC attached later gets.
    runner.hostname_files = {(f.ifname, f.family): f for f in hostname_files}
    runner.execute(actions)
    return engine, actions


def moves(actions: list[Action]) -> list[tuple[str, str, str]]:
    out = []
    for a in actions:
        if isinstance(a, MoveAddress):
            out.append(("MoveAddress", a.to_if, a.address))
        elif isinstance(a, ADDRESS_ACTIONS):
            out.append((type(a).__name__, a.ifname, a.address))
    return out


def kernel(runner: VirtualRunner) -> dict[str, list[str]]:
    """Address -> the NICs holding it in the simulated kernel."""
    out: dict[str, list[str]] = {}
    for name, nic in runner.host.world()["nics"].items():
        for units in nic["families"].values():
            for address, *_ in units.values():
                out.setdefault(address, []).append(name)
    return out


EDIT = {"hostname.hme0": ("192.168.85.19 ", "192.168.85.29 ")}


def test_only_what_the_file_changed_reaches_the_kernel() -> None:
    runner = settle(boot("active-active"))
    _engine, actions = restart(runner, files("active-active", EDIT), {"hme0"})
    assert moves(actions) == [
        ("RemoveAddress", "hme0", "192.168.85.19"),
        ("AddAddress", "hme0", "192.168.85.29"),
    ]
    assert where(runner, "192.168.85.29") == "hme0"
    assert where(runner, "192.168.85.21") == "hme0:1"  # the test address, untouched
    assert not [a for a in actions if isinstance(a, Log) and "adopted" in a.message]


def test_a_file_changed_in_no_effect_changes_nothing() -> None:
    runner = settle(boot("active-active"))
    comment = {"hostname.hme0": ("group test up", "group test up # edited")}
    _engine, actions = restart(runner, files("active-active", comment), {"hme0"})
    assert moves(actions) == []


def test_runtime_changes_of_the_other_nics_are_kept() -> None:
    runner = settle(boot("active-active"))
    for nic, address in (("hme0", "192.168.85.61"), ("hme1", "192.168.85.60")):
        outcome = runner.engine.ifconfig([nic, "addif", address, "netmask", "+", "up"], runner.now)
        for action in outcome.actions:
            runner.host.execute(action, runner.now)
    engine, actions = restart(runner, files("active-active", EDIT), {"hme0"})
    assert ("RemoveAddress", "hme0", "192.168.85.61") in moves(actions)
    assert where(runner, "192.168.85.60") == "hme1:2"
    assert where(runner, "192.168.85.61") is None
    assert engine.table.nics["hme0"].group == "test"


def test_a_failed_nic_loses_its_old_addresses_everywhere() -> None:
    runner = settle(boot("active-active"))
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    runner.run_for(1)
    assert where(runner, "192.168.85.19") == "hme1:2"
    restart(runner, files("active-active", EDIT), {"hme0"})
    held = kernel(runner)
    assert "192.168.85.19" not in held
    assert held["192.168.85.29"] == ["hme1"] and held["192.168.85.20"] == ["hme1"]
    runner.apply(lambda host, now: host.set_link("hme0", True, now))
    assert runner.run_until_true(lambda: where(runner, "192.168.85.29") == "hme0", 60)


def test_a_missing_nic_is_configured_as_at_boot() -> None:
    runner = settle(boot("active-active"))
    runner.apply(lambda host, now: host.unplug("hme0", now))
    runner.run_for(1)
    _engine, actions = restart(runner, files("active-active", EDIT), {"hme0"})
    held = kernel(runner)
    assert "192.168.85.19" not in held and held["192.168.85.29"] == ["hme1"]
    assert any(
        isinstance(a, Log) and a.message.startswith("moving addresses from failed IPv4")
        for a in actions
    ), actions
    runner.apply(lambda host, now: host.plug("hme0", now))
    assert runner.run_until_true(lambda: where(runner, "192.168.85.29") == "hme0", 60)


def test_forget_nics_sends_guests_home_and_returns_the_old_addresses() -> None:
    runner = settle(boot("active-active"))
    runner.apply(lambda host, now: host.set_link("hme1", False, now))
    runner.run_for(1)
    table: HostTable = runner.engine.table.clone()
    assert where(runner, "192.168.85.20") == "hme0:2"  # hme1's address, hosted on hme0
    forgotten = forget_nics(table, ["hme0"])
    assert "hme0" not in table.nics
    assert {address for _family, address in forgotten} >= {"192.168.85.19", "192.168.85.21"}
    assert "192.168.85.20" not in {address for _family, address in forgotten}
    home = table.find_address("inet", "192.168.85.20")
    assert home is not None and (home[0].name, home[1].unit) == ("hme1", 0)


def test_changed_nics_names_added_removed_and_edited_files() -> None:
    recorded = {"hostname.hme0": "a", "hostname6.hme0": "b", "hostname.hme1": "c"}
    current = {"hostname.hme0": "a", "hostname6.hme0": "B", "hostname.qfe0": "d"}
    assert changed_nics(recorded, current) == {
        "hme0": ["hostname6.hme0"],
        "hme1": ["hostname.hme1"],
        "qfe0": ["hostname.qfe0"],
    }
