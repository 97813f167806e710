"""The engine playbook: events in, the exact actions out, in order.

Each case builds an engine by hand (no simulated host: every event is
written here, with its ``now``), feeds one more event or request, and
compares what comes back, line by line, with the case's table.  The cases
pin the ordering rules the stacks rely on:

* members first: a step's ``PrepareInterface`` comes before its addresses
  (``_members_first``: arp_ignore must be set before a member's addresses
  come up, or a sibling answers ARP for them meanwhile);
* a move is one ``MoveAddress`` (the stack adds on the new interface before
  it deletes from the old, so the address is never absent; the Linux stack
  batches consecutive moves the same way), followed at once by its
  ``AnnounceAddress`` from the new interface (guide: What Happens During
  Interface Failover; announcing before the move would teach the neighbours
  a MAC that does not hold the address yet);
* among moves, one entering unit 0 goes first and one leaving unit 0 last
  (``reconcile``: Linux never promotes a secondary address meanwhile);
* spreading routes (guide: Outbound Load Spreading) that only lose members
  change before the moves, so outbound traffic leaves a failed interface
  first; routes that gain or swap members change after the moves, once the
  new members hold the addresses their flows leave from;
* a group failure keeps the last routes; FAILBACK=no moves nothing back.

The table for a case is what the engine returns today: a change of order
must be a deliberate edit here, with its reason.
"""

from __future__ import annotations

import random
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from ipmp.core.actions import Action, SendProbe
from ipmp.core.engine import Engine
from ipmp.core.events import (
    AddressesFound,
    Event,
    LinkCameUp,
    LinkWentDown,
    NicAppeared,
    RoutesChanged,
)
from ipmp.core.hostname_files import load_hostname_file
from ipmp.core.mpathd_config import MpathdConfig
from tracetools import render_action

MACS = {"hme0": "8:0:20:0:0:1", "hme1": "8:0:20:0:0:2", "hme2": "8:0:20:0:0:3"}

# Link-based failure detection only (no test addresses): every failure and
# repair is one event, so each case is a few lines.
TWO_ADDRESSES = {
    "hme0": "192.168.85.19 netmask + broadcast + group test up "
    "addif 192.168.85.23 netmask + broadcast + up",
    "hme1": "192.168.85.20 netmask + broadcast + group test up",
}
ACTIVE_ACTIVE = {
    "hme0": "192.168.85.19 netmask + broadcast + group test up",
    "hme1": "192.168.85.20 netmask + broadcast + group test up",
}
ACTIVE_STANDBY = {
    "hme0": "192.168.85.19 netmask + broadcast + group test up",
    "hme1": "group test standby up",
}


def booted(files: dict[str, str], nics: tuple[str, ...] = (), **config: bool) -> Engine:
    """An engine that has seen its NICs appear (all with link up) and booted at time 0."""
    engine = Engine(MpathdConfig(**config), random.Random(1))  # type: ignore[arg-type]
    for index, name in enumerate(sorted(set(files) | set(nics)), start=2):
        engine.handle(NicAppeared(0.0, name, index, MACS[name], "ether", 1500, True))
    engine.handle(AddressesFound(0.0, (), ()))
    engine.handle(RoutesChanged(0.0, ()))
    engine.boot([load_hostname_file(text, f"hostname.{n}") for n, text in files.items()], 0.0)
    return engine


def lines(actions: list[Action]) -> list[str]:
    return [render_action(a) for a in actions if not isinstance(a, SendProbe)]


@dataclass(frozen=True)
class Case:
    """Build an engine, run ``before`` on it, then ``step``: it returns ``expected``."""

    name: str
    build: Callable[[], Engine]
    step: Callable[[Engine], list[Action]]
    expected: list[str]
    before: tuple[Event, ...] = field(default=())


def boot_step(files: dict[str, str]) -> Callable[[Engine], list[Action]]:
    def step(engine: Engine) -> list[Action]:
        for index, name in enumerate(sorted(files), start=2):
            engine.handle(NicAppeared(0.0, name, index, MACS[name], "ether", 1500, True))
        engine.handle(AddressesFound(0.0, (), ()))
        engine.handle(RoutesChanged(0.0, ()))
        return engine.boot(
            [load_hostname_file(text, f"hostname.{n}") for n, text in files.items()], 0.0
        )

    return step


def handle(event: Event) -> Callable[[Engine], list[Action]]:
    return lambda engine: engine.handle(event)


FAILED_OVER = [
    "Log 3 The link has gone down on hme0",
    "Log 3 NIC failure detected on hme0 of group test",
    "Log 3 Successfully failed over from NIC hme0 to NIC hme1",
]
FAILED_BACK = [
    "Log 3 The link has come up on hme0",
    "Log 3 NIC repair detected on hme0 of group test",
    "Log 3 Successfully failed back to NIC hme0",
]

CASES = [
    Case(
        "boot: members first, each address announced after its add, spreading grows after",
        lambda: Engine(MpathdConfig(), random.Random(1)),
        boot_step(TWO_ADDRESSES),
        [
            "PrepareInterface ifname=hme0",
            "PrepareInterface ifname=hme1",
            "PlumbInterface name=hme0 family=inet",
            "AddAddress inet 192.168.85.19/24 hme0 up",
            "AnnounceAddress inet 192.168.85.19 hme0",
            "AddAddress inet 192.168.85.23/24 hme0:1 up",
            "AnnounceAddress inet 192.168.85.23 hme0",
            "SpreadOutbound inet 192.168.85.0/24 (hme0)",
            "PlumbInterface name=hme1 family=inet",
            "AddAddress inet 192.168.85.20/24 hme1 up",
            "AnnounceAddress inet 192.168.85.20 hme1",
            "SpreadOutbound inet 192.168.85.0/24 (hme0,hme1)",
        ],
    ),
    Case(
        "failover: the shrinking route first, unit 0 leaves last, each move announced",
        lambda: booted(TWO_ADDRESSES),
        handle(LinkWentDown(10.0, "hme0")),
        [
            "SpreadOutbound inet 192.168.85.0/24 (hme1)",
            *FAILED_OVER,
            "MoveAddress inet 192.168.85.23/24 hme0:1 -> hme1:2 up",
            "AnnounceAddress inet 192.168.85.23 hme1",
            "MoveAddress inet 192.168.85.19/24 hme0 -> hme1:1 up",
            "AnnounceAddress inet 192.168.85.19 hme1",
        ],
    ),
    Case(
        "failback: unit 0 returns first, each move announced, the growing route last",
        lambda: booted(TWO_ADDRESSES),
        handle(LinkCameUp(20.0, "hme0")),
        [
            *FAILED_BACK,
            "MoveAddress inet 192.168.85.19/24 hme1:1 -> hme0 up",
            "AnnounceAddress inet 192.168.85.19 hme0",
            "MoveAddress inet 192.168.85.23/24 hme1:2 -> hme0:1 up",
            "AnnounceAddress inet 192.168.85.23 hme0",
            "SpreadOutbound inet 192.168.85.0/24 (hme0,hme1)",
        ],
        before=(LinkWentDown(10.0, "hme0"),),
    ),
    Case(
        "FAILBACK=no: a repair moves nothing back and leaves the routes",
        lambda: booted(ACTIVE_ACTIVE, failback=False),
        handle(LinkCameUp(20.0, "hme0")),
        [
            "Log 3 The link has come up on hme0",
            "Log 3 NIC repair detected on hme0 of group test",
        ],
        before=(LinkWentDown(10.0, "hme0"),),
    ),
    Case(
        "standby takeover: the route swaps members, so it changes after the move",
        lambda: booted(ACTIVE_STANDBY),
        handle(LinkWentDown(10.0, "hme0")),
        [
            *FAILED_OVER,
            "MoveAddress inet 192.168.85.19/24 hme0 -> hme1:1 up",
            "AnnounceAddress inet 192.168.85.19 hme1",
            "SpreadOutbound inet 192.168.85.0/24 (hme1)",
        ],
    ),
    Case(
        "standby failback: the route swaps back after the move",
        lambda: booted(ACTIVE_STANDBY),
        handle(LinkCameUp(20.0, "hme0")),
        [
            *FAILED_BACK,
            "MoveAddress inet 192.168.85.19/24 hme1:1 -> hme0 up",
            "AnnounceAddress inet 192.168.85.19 hme0",
            "SpreadOutbound inet 192.168.85.0/24 (hme0)",
        ],
        before=(LinkWentDown(10.0, "hme0"),),
    ),
    Case(
        "group failure: nothing moves and the last routes stay",
        lambda: booted(ACTIVE_ACTIVE),
        handle(LinkWentDown(11.0, "hme1")),
        [
            "Log 3 The link has gone down on hme1",
            "Log 3 All Interfaces in group test have failed",
        ],
        before=(LinkWentDown(10.0, "hme0"),),
    ),
    Case(
        "group repair: the member back takes every address, the route swaps after",
        lambda: booted(ACTIVE_ACTIVE),
        handle(LinkCameUp(20.0, "hme0")),
        [
            *FAILED_BACK[:2],
            "Log 3 At least 1 interface (hme0) of group test has repaired",
            FAILED_BACK[2],
            "MoveAddress inet 192.168.85.19/24 hme1:1 -> hme0 up",
            "AnnounceAddress inet 192.168.85.19 hme0",
            "Log 3 Successfully failed over from NIC hme1 to NIC hme0",
            "MoveAddress inet 192.168.85.20/24 hme1 -> hme0:1 up",
            "AnnounceAddress inet 192.168.85.20 hme0",
            "SpreadOutbound inet 192.168.85.0/24 (hme0)",
        ],
        before=(LinkWentDown(10.0, "hme0"), LinkWentDown(11.0, "hme1")),
    ),
    Case(
        "a member joining by ifconfig: its settings before its addresses",
        lambda: booted(ACTIVE_ACTIVE, nics=("hme2",)),
        lambda engine: (
            engine.ifconfig(
                shlex.split("hme2 plumb 192.168.85.30 netmask + broadcast + group test up"), 30.0
            ).actions
        ),
        [
            "PrepareInterface ifname=hme2",
            "PlumbInterface name=hme2 family=inet",
            "AddAddress inet 192.168.85.30/24 hme2 up",
            "AnnounceAddress inet 192.168.85.30 hme2",
            "SpreadOutbound inet 192.168.85.0/24 (hme0,hme1,hme2)",
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_playbook(case: Case) -> None:
    engine = case.build()
    for event in case.before:
        engine.handle(event)
    assert lines(case.step(engine)) == case.expected
