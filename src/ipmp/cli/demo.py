"""``ipmp demo``: the guide's story told on the simulated host.

Everything printed is real output: ``ifconfig`` status rendered from the
engine's table and the daemon's log lines, on a virtual clock.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from typing import TextIO

from ipmp.core.actions import PRIORITY_NAMES
from ipmp.core.mpathd_config import MpathdConfig
from ipmp.sim.examples import example_path
from ipmp.sim.host import SimHost
from ipmp.sim.runner import LogRecord, VirtualRunner
from ipmp.sim.topology import load_topology


class Story:
    """Prints a chapter heading, commands with their output, and the log as it happens."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def heading(self, text: str) -> None:
        self.out.write(f"\n=== {text} ===\n\n")

    def say(self, text: str) -> None:
        self.out.write(f"{text}\n")

    def log(self, record: LogRecord) -> None:
        level = PRIORITY_NAMES.get(record.priority, str(record.priority))
        self.out.write(f"  [{record.time:9.3f}s] in.mpathd[daemon.{level}]: {record.message}\n")

    def ifconfig(self, runner: VirtualRunner, *argv: str) -> None:
        self.out.write(f"# ifconfig {' '.join(argv)}\n")
        text = runner.ifconfig(list(argv))
        if text:
            self.out.write(text + "\n")


def _boot(
    story: Story, name: str, config: Callable[[MpathdConfig], MpathdConfig] | None = None
) -> VirtualRunner:
    topology = load_topology(example_path(name))
    etc = topology.etc_files()
    for path in sorted(etc):
        if path.startswith("etc/hostname"):
            story.say(f"/{path}:")
            for line in etc[path].strip("\n").splitlines():
                story.say(f"    {line}")
    runner = VirtualRunner.from_topology(topology, on_log=story.log)
    if config is not None:
        runner.engine.reload(config(runner.engine.config), runner.now)
    return runner


def _wait(
    story: Story, runner: VirtualRunner, what: str, predicate: Callable[[], bool], timeout: float
) -> None:
    start = runner.now
    at = runner.run_until_true(predicate, timeout)
    if at is None:
        story.say(f"!! {what}: not within {timeout:.0f} s of virtual time")
        raise SystemExit(1)
    story.say(f"-- {what} after {at - start:.3f} s of virtual time")


def _failed(runner: VirtualRunner, name: str) -> Callable[[], bool]:
    return lambda: runner.engine.table.nics[name].failed


def _repaired(runner: VirtualRunner, name: str) -> Callable[[], bool]:
    return lambda: not runner.engine.table.nics[name].failed


def _set_neighbours(runner: VirtualRunner, names: tuple[str, ...], up: bool) -> None:
    for name in names:
        runner.host.set_neighbour(name, up, runner.now)
    runner.apply(lambda host, now: None)


def run_demo(out: TextIO = sys.stdout) -> int:
    """Tell the whole story; return the exit status."""
    story = Story(out)

    story.heading("Example 31-2: an active-active group with test addresses")
    runner = _boot(story, "active-active")
    runner.run_for(45.0)
    story.heading("Example 30-1: interface configuration before an interface failure")
    story.ifconfig(runner, "-a")

    story.heading("hme0's switch port silently drops every frame (the link stays up)")
    runner.apply(lambda host, now: host.set_port_drop("hme0", True, now))
    _wait(
        story,
        runner,
        "hme0 FAILED by probes (FAILURE_DETECTION_TIME 10 s)",
        _failed(runner, "hme0"),
        30.0,
    )
    story.say(f"-- 192.168.85.19 now answers on {runner.host.ping('192.168.85.19')}")
    story.heading("Example 30-2: interface configuration after an interface failure")
    story.ifconfig(runner, "-a")

    story.heading("The port forwards again: 10 answered probes repair hme0, addresses fail back")
    runner.apply(lambda host, now: host.set_port_drop("hme0", False, now))
    _wait(story, runner, "hme0 repaired", _repaired(runner, "hme0"), 60.0)
    story.say(f"-- 192.168.85.19 now answers on {runner.host.ping('192.168.85.19')}")
    story.ifconfig(runner, "hme0")
    story.ifconfig(runner, "hme1")

    story.heading("How to Configure a Standby Interface: hme1 is standby")
    runner = _boot(story, "active-standby")
    runner.run_for(45.0)
    story.ifconfig(runner, "hme1")
    story.heading("hme0's cable is pulled: link-based failure, the standby takes over")
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    story.ifconfig(runner, "-a")
    story.heading("hme0's cable is back: after 10 answered probes hme0 is repaired")
    runner.apply(lambda host, now: host.set_link("hme0", True, now))
    _wait(story, runner, "hme0 repaired", _repaired(runner, "hme0"), 60.0)
    story.ifconfig(runner, "hme1")

    story.heading("FAILBACK=no (the guide's ce0/ce1 example, here hme0/hme1)")
    runner = _boot(story, "active-active", lambda c: replace(c, failback=False))
    runner.run_for(45.0)
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    runner.run_for(1.0)
    runner.apply(lambda host, now: host.set_link("hme0", True, now))
    _wait(story, runner, "hme0 repaired", _repaired(runner, "hme0"), 60.0)
    story.say("hme0 stays INACTIVE; its address stays on hme1:")
    story.ifconfig(runner, "hme0")
    story.ifconfig(runner, "hme1:2")
    story.heading("hme1 fails: its addresses go to the INACTIVE hme0, which becomes active")
    runner.apply(lambda host, now: host.set_link("hme1", False, now))
    story.ifconfig(runner, "hme0")

    story.heading("Group failure: every probe target goes silent at once")
    runner = _boot(story, "active-active")
    runner.run_for(45.0)
    host: SimHost = runner.host
    neighbours = ("router1", "router2", "host137")
    _set_neighbours(runner, neighbours, False)
    _wait(story, runner, "group failure", lambda: runner.engine.groups["test"].failed, 30.0)
    story.say(
        "-- no failover: 192.168.85.19 is still on "
        f"{host.ping('192.168.85.19') or 'hme0 (unreachable)'}"
    )
    _set_neighbours(runner, neighbours, True)
    nics = runner.engine.table.nics
    _wait(
        story,
        runner,
        "both interfaces repaired",
        lambda: not (nics["hme0"].failed or nics["hme1"].failed),
        60.0,
    )
    story.ifconfig(runner, "-a", "inet")
    return 0
