"""Helpers for tests that run the engine against the simulated host."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ipmp.core.actions import Action, SendProbe
from ipmp.core.events import Event
from ipmp.core.mpathd_config import MpathdConfig, parse_mpathd
from ipmp.sim.examples import example_path
from ipmp.sim.runner import VirtualRunner
from ipmp.sim.topology import Topology, load_topology, parse_topology


class RecordingHost:
    """Wraps a SimHost's execute to keep every SendProbe with its time."""

    def __init__(self, runner: VirtualRunner) -> None:
        self.sent: list[tuple[float, SendProbe]] = []
        host = runner.host
        original = host.execute

        def execute(action: Action, now: float) -> list[Event]:
            if isinstance(action, SendProbe):
                self.sent.append((now, action))
            return original(action, now)

        host.execute = execute  # type: ignore[method-assign]


def topology(name: str) -> Topology:
    return load_topology(example_path(name))


def boot(name: str | Topology, seed: int = 1, **config: Any) -> VirtualRunner:
    """Boot an example topology with mpathd settings overridden by keyword."""
    topo = topology(name) if isinstance(name, str) else name
    text = topo.etc_files().get("etc/default/mpathd")
    base = parse_mpathd(text).config if text is not None else MpathdConfig()
    return VirtualRunner.from_topology(topo, config=replace(base, **config), seed=seed)


def boot_text(text: str, seed: int = 1, **config: Any) -> VirtualRunner:
    return boot(parse_topology(text, "<test>"), seed=seed, **config)


def settle(runner: VirtualRunner, seconds: float = 45.0) -> VirtualRunner:
    runner.run_for(seconds)
    return runner


def where(runner: VirtualRunner, address: str) -> str | None:
    """The NIC (with unit) holding ``address`` in the engine's table."""
    for nic in runner.engine.table.nics.values():
        for li in nic.addresses():
            if li.address == address and not li.placeholder:
                return nic.name if li.unit == 0 else f"{nic.name}:{li.unit}"
    return None


def logged(runner: VirtualRunner, text: str) -> list[float]:
    """The times at which a message containing ``text`` was logged."""
    return [record.time for record in runner.logs if text in record.message]
