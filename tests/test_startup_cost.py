"""Start-up with many ``addif`` lines: work per file, not per line, and the same result.

BENCHMARKS.md (start-up): 1000 ``addif`` lines in one hostname file took
10 s to boot in the simulator, each line reconciling the whole table and each
command cloning it.
"""

from __future__ import annotations

from typing import Any

import pytest

import ipmp.core.engine as engine_module
from ipmp.core.ifconfig_apply import ApplyContext, apply_ifconfig
from ipmp.core.ifconfig_grammar import parse_ifconfig
from ipmp.core.model import HostTable, Instance
from ipmp.sim.examples import example_path
from simtools import boot_text

ADDIF = "".join(f"addif 192.168.85.{100 + i} netmask + broadcast + up\n" for i in range(120))


def many_lines_text(extra: str) -> str:
    """The active-active example with ``extra`` lines after hostname.hme0's own."""
    source = example_path("active-active").read_text(encoding="utf-8")
    old = "    addif 192.168.85.21 deprecated -failover netmask + broadcast + up\n"
    assert old in source
    return source.replace(old, old + extra, 1)


def test_boot_reconciles_once_per_file_not_per_line(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = engine_module.reconcile

    def counting(old: HostTable, new: HostTable) -> list[Any]:
        nonlocal calls
        calls += 1
        return real(old, new)

    monkeypatch.setattr(engine_module, "reconcile", counting)
    runner = boot_text(many_lines_text(ADDIF))
    assert calls <= 20  # four files; once per line: over 240
    up = {a.address for a in runner.host.addresses() if a.ifname == "hme0" and a.up}
    assert {f"192.168.85.{100 + i}" for i in range(120)} <= up


def test_a_refused_line_among_many_is_logged_and_the_next_applies() -> None:
    lines = ADDIF.splitlines(keepends=True)
    lines.insert(60, "addif nosuchhost up\n")
    runner = boot_text(many_lines_text("".join(lines)))
    refused = [m for m in runner.messages() if "unknown host" in m]
    assert len(refused) == 1 and "hostname.hme0 line 63" in refused[0], refused
    up = [a for a in runner.host.addresses() if a.ifname == "hme0" and a.family == "inet" and a.up]
    assert len(up) == 2 + 120


def test_a_command_leaves_the_table_it_was_given_alone() -> None:
    runner = boot_text(many_lines_text(ADDIF))
    table = runner.engine.table
    before = table.clone()
    for words in (
        ["hme0:5", "-failover", "deprecated"],
        ["hme0:7", "192.168.85.250", "down"],
        ["hme0", "addif", "192.168.85.251", "up"],
        ["hme0", "removeif", "192.168.85.101"],
    ):
        command = parse_ifconfig(words)
        result = apply_ifconfig(table, command, ApplyContext())
        assert table == before, words
        assert result.table != before, words
    # A changed entry is a copy; hme1 is shared, unchanged.
    changed = apply_ifconfig(table, parse_ifconfig(["hme0:5", "down"]), ApplyContext()).table
    assert not changed.nics["hme0"].instances["inet"].units[5].up
    assert table.nics["hme0"].instances["inet"].units[5].up


def test_free_unit_after_a_full_run_and_around_gaps_and_reservations() -> None:
    ctx = ApplyContext()
    inst = Instance("inet", {u: None for u in range(5)})  # type: ignore[misc]
    assert ctx.free_unit("hme0", inst) == 5
    ctx.reserved.add(("hme0", "inet", 5))
    assert ctx.free_unit("hme0", inst) == 6
    gap = Instance("inet", {0: None, 1: None, 3: None, 4: None})  # type: ignore[misc]
    assert ctx.free_unit("hme0", gap) == 2
    assert ctx.free_unit("hme0", Instance("inet", {})) == 1
    assert ctx.free_unit("hme0", Instance("inet", {0: None})) == 1  # type: ignore[misc]
