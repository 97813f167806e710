"""Golden traces: what the engine asks for in a dozen seeded scenarios, pinned.

Each scenario runs the engine against the simulated host on virtual time and
records every list of actions the engine returns, in the order it returns
them: one action per line, with the virtual time.  Probes would drown the
rest (one every few hundred milliseconds per interface), so a ``SendProbe``
is only counted, per interface and family, in windows of ``PROBE_WINDOW``
seconds; a count line closes each window (or the stretch before a scenario
step), at the time it ends.

The stream is compared with ``tests/golden/<scenario>.trace``; a difference
fails with a unified diff.  After a deliberate change of behaviour, rewrite
the files and review them in the commit's diff::

    python3 -m pytest tests/test_golden_traces.py --update-golden

Nothing here depends on wall time, dict or set order of the host's process,
or the machine: the engine and the simulated host are seeded, and times are
printed to the millisecond.
"""

from __future__ import annotations

import difflib
import random
import shlex
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from ipmp.core.actions import Action, SendProbe
from ipmp.core.engine import Engine
from ipmp.core.hostname_files import load_hostname_file
from ipmp.core.mpathd_config import MpathdConfig, parse_mpathd
from ipmp.core.types import Family
from ipmp.sim.host import SimHost
from ipmp.sim.runner import VirtualRunner
from simtools import topology
from tracetools import render_action

GOLDEN = Path(__file__).parent / "golden"
SEED = 1
PROBE_WINDOW = 10.0
"""Seconds per probe-count window."""


class TraceRecorder:
    """Collects every action list the engine hands the runner's driver.

    The driver funnels each list the engine returns (from boot, a request,
    an event or a timer) through one method before carrying it out; wrapping
    it sees the lists whole and in the engine's own order.
    """

    def __init__(self, runner: VirtualRunner) -> None:
        self.lines: list[str] = []
        self.runner = runner
        self._since = 0.0
        self._probes: dict[tuple[str, Family], int] = {}
        driver = runner.driver
        original = driver._queue

        def queue(pending: object, actions: Sequence[Action], now: float) -> None:
            self.record(actions, now)
            original(pending, actions, now)  # type: ignore[arg-type]

        driver._queue = queue  # type: ignore[method-assign,assignment]

    def record(self, actions: Sequence[Action], now: float) -> None:
        for action in actions:
            self._advance(now)
            if isinstance(action, SendProbe):
                key = (action.ifname, action.family)
                self._probes[key] = self._probes.get(key, 0) + 1
                continue
            self.lines.append(f"{now:9.3f} {render_action(action)}")

    def note(self, text: str) -> None:
        """A line saying what the scenario did next (a fault, a request)."""
        now = self.runner.now
        self._advance(now)
        self._flush(now)
        self.lines.append(f"{now:9.3f} # {text}")

    def _advance(self, now: float) -> None:
        """Close the probe windows that ended by ``now``."""
        boundary = (self._since // PROBE_WINDOW + 1) * PROBE_WINDOW
        if now >= boundary:
            self._flush(boundary)
            self._since = now // PROBE_WINDOW * PROBE_WINDOW

    def _flush(self, end: float) -> None:
        """One line with the probes counted since the last one, at ``end``."""
        if self._probes:
            counts = ", ".join(f"{n}/{f} {c}" for (n, f), c in sorted(self._probes.items()))
            self.lines.append(f"{end:9.3f} probes in [{self._since:.3f}, {end:.3f}): {counts}")
            self._probes = {}
        self._since = end

    def text(self) -> str:
        self._advance(self.runner.now)
        self._flush(self.runner.now)
        return "\n".join(self.lines) + "\n"


# -- scenarios ------------------------------------------------------------------


class Scenario:
    """A booted runner with its recorder, and the steps a scenario takes."""

    def __init__(self, example: str, **config: Any) -> None:
        self.example = example
        self.config = config
        self.runner: VirtualRunner
        self.trace: TraceRecorder

    def start(self) -> None:
        # As ``simtools.boot``, with the recorder in place before the boot.
        topo = topology(self.example)
        etc = topo.etc_files()
        text = etc.get("etc/default/mpathd")
        base = parse_mpathd(text).config if text is not None else MpathdConfig()
        files = [
            load_hostname_file(content, path.rsplit("/", 1)[1])
            for path, content in sorted(etc.items())
            if path.startswith("etc/hostname")
        ]
        engine = Engine(replace(base, **self.config), random.Random(SEED), icmp_id_base=SEED)
        self.runner = VirtualRunner(SimHost(topo), engine)
        self.trace = TraceRecorder(self.runner)
        self.trace.note(f"boot {self.example}")
        self.runner.boot(files)

    def run(self, seconds: float) -> None:
        self.runner.run_for(seconds)

    def link(self, name: str, up: bool) -> None:
        self.trace.note(f"link {name} {'up' if up else 'down'}")
        self.runner.apply(lambda h, now: h.set_link(name, up, now))

    def port_drop(self, name: str, on: bool) -> None:
        self.trace.note(f"switch port of {name} {'drops' if on else 'forwards'}")
        self.runner.apply(lambda h, now: h.set_port_drop(name, on, now))

    def unplug(self, name: str) -> None:
        self.trace.note(f"unplug {name}")
        self.runner.apply(lambda h, now: h.unplug(name, now))

    def plug(self, name: str) -> None:
        self.trace.note(f"plug {name}")
        self.runner.apply(lambda h, now: h.plug(name, now))

    def request(self, text: str, call: Callable[[float], list[Action]]) -> None:
        self.trace.note(text)
        self.runner.execute(call(self.runner.now))

    def ifconfig(self, line: str) -> None:
        self.trace.note(f"ifconfig {line}")
        self.runner.ifconfig(shlex.split(line))


def boot_only(s: Scenario) -> None:
    s.run(60)


def link_failure_and_repair(s: Scenario) -> None:
    s.run(30)
    s.link("hme0", False)
    s.run(30)
    s.link("hme0", True)
    s.run(60)


def silent_port_drop(s: Scenario) -> None:
    # Probe-based detection: the link stays up, the switch port drops frames.
    s.run(30)
    s.port_drop("hme0", True)
    s.run(40)
    s.port_drop("hme0", False)
    s.run(60)


def group_failure(s: Scenario) -> None:
    s.run(30)
    s.link("hme0", False)
    s.run(5)
    s.link("hme1", False)
    s.run(30)
    s.link("hme1", True)
    s.run(40)
    s.link("hme0", True)
    s.run(40)


def per_family_failover(s: Scenario) -> None:
    # hme1 loses IPv6: hme0's IPv6 data address has nowhere to go.
    s.run(30)
    s.ifconfig("hme1 inet6 unplumb")
    s.run(10)
    s.link("hme0", False)
    s.run(30)
    s.link("hme0", True)
    s.run(60)


def offline_online(s: Scenario) -> None:
    s.run(30)
    s.request("if_mpadm -d hme0", lambda now: s.runner.engine.offline("hme0", now))
    s.run(30)
    s.request("if_mpadm -r hme0", lambda now: s.runner.engine.online("hme0", now))
    s.run(30)


def dr_detach_attach(s: Scenario) -> None:
    s.run(30)
    s.request("ipmp dr detach hme0", lambda now: s.runner.engine.dr_detach("hme0", False, now))
    s.run(20)
    s.request("ipmp dr attach hme0", lambda now: s.runner.engine.dr_attach("hme0", now))
    s.run(60)


def unplug_and_plug(s: Scenario) -> None:
    s.run(30)
    s.unplug("hme0")
    s.run(20)
    s.plug("hme0")
    s.run(90)


def missing_at_boot(s: Scenario) -> None:
    s.run(30)
    s.plug("hme0")
    s.run(90)


def ifconfig_changes(s: Scenario) -> None:
    s.run(30)
    s.ifconfig("hme1 addif 192.168.85.30 netmask + broadcast + up")
    s.run(10)
    s.ifconfig("hme1 removeif 192.168.85.30")
    s.run(10)
    s.ifconfig("hme1 standby")
    s.run(20)
    s.ifconfig("hme1 -standby")
    s.run(20)
    s.ifconfig("hme1 group ''")
    s.run(20)
    s.ifconfig("hme1 group test")
    s.run(40)


SCENARIOS: dict[str, tuple[str, dict[str, Any], Callable[[Scenario], None]]] = {
    "boot-active-active": ("active-active", {}, boot_only),
    "boot-active-standby": ("active-standby", {}, boot_only),
    "link-failure-repair": ("active-active", {}, link_failure_and_repair),
    "silent-port-drop": ("active-active", {}, silent_port_drop),
    "standby-takeover": ("active-standby", {}, link_failure_and_repair),
    "failback-no": ("active-active", {"failback": False}, link_failure_and_repair),
    "group-failure": ("active-active", {}, group_failure),
    "dual-stack-per-family": ("dual-stack", {}, per_family_failover),
    "offline-online": ("active-active", {}, offline_online),
    "dr-detach-attach": ("active-active", {}, dr_detach_attach),
    "unplug-plug": ("active-active", {}, unplug_and_plug),
    "missing-at-boot": ("missing-at-boot", {}, missing_at_boot),
    "ifconfig-changes": ("active-active", {}, ifconfig_changes),
}


def trace_of(name: str) -> str:
    """Run one scenario from boot; return its trace text."""
    example, config, steps = SCENARIOS[name]
    scenario = Scenario(example, **config)
    scenario.start()
    steps(scenario)
    return scenario.trace.text()


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_golden_trace(name: str, request: pytest.FixtureRequest) -> None:
    got = trace_of(name)
    path = GOLDEN / f"{name}.trace"
    if request.config.getoption("--update-golden"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(got)
        return
    if not path.exists():
        pytest.fail(f"{path} is missing: run pytest {__file__} --update-golden and review it")
    want = path.read_text()
    if got != want:
        diff = "".join(
            difflib.unified_diff(
                want.splitlines(keepends=True),
                got.splitlines(keepends=True),
                fromfile=f"golden/{name}.trace",
                tofile="this run",
            )
        )
        pytest.fail(
            f"the engine's actions changed in scenario {name!r}; if on purpose, run "
            f"`python3 -m pytest tests/test_golden_traces.py --update-golden` and review "
            f"the diff:\n{diff}",
            pytrace=False,
        )


def test_a_trace_is_the_same_twice() -> None:
    # Determinism within one process: no state leaks between runs.
    assert trace_of("link-failure-repair") == trace_of("link-failure-repair")


def test_every_golden_file_has_a_scenario() -> None:
    stale = sorted(p.stem for p in GOLDEN.glob("*.trace") if p.stem not in SCENARIOS)
    assert not stale, f"golden files without a scenario: {stale}"
