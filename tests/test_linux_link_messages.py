"""How the Linux stack reads link messages: every way a link goes away, and its MTU.

No netlink here: RTM_NEWLINK messages as pyroute2 parses them (a mapping with
``flags``, ``operstate``, ``mtu``...) are fed to the stack with a fake loop
whose clock and timers the test drives.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from ipmp.core.events import LinkCameUp, LinkMtuChanged, LinkWentDown, NicAppeared
from ipmp.linux.stack import CARRIER_GRACE, LinuxStack

IFF_UP, IFF_RUNNING, IFF_LOWER_UP = 0x1, 0x40, 0x10000


class FakeLoop:
    def __init__(self) -> None:
        self.now = 100.0
        self.timers: list[tuple[float, Callable[..., None], tuple[Any, ...]]] = []
        self.tasks: list[str] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Callable[..., None], *args: Any) -> None:
        self.timers.append((self.now + delay, callback, args))

    def create_task(self, coroutine: Coroutine[Any, Any, None]) -> None:
        self.tasks.append(coroutine.__qualname__)
        coroutine.close()  # what it would do needs netlink: only that it was asked for

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [t for t in self.timers if t[0] <= self.now]
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _, callback, args in due:
            callback(*args)


def message(
    admin: bool = True,
    carrier: bool = True,
    operstate: str = "UP",
    mtu: int = 1500,
    index: int = 2,
) -> dict[str, Any]:
    flags = 0x1002 | (IFF_UP if admin else 0)
    if admin and carrier:
        flags |= IFF_LOWER_UP
    if admin and carrier and operstate in ("UP", "UNKNOWN"):
        flags |= IFF_RUNNING
    return {
        "ifname": "eth0",
        "index": index,
        "flags": flags,
        "operstate": operstate,
        "address": "08:00:20:b9:19:fa",
        "mtu": mtu,
    }


def stack_with(first: dict[str, Any]) -> tuple[LinuxStack, FakeLoop]:
    stack = LinuxStack()
    loop = FakeLoop()
    stack._loop = loop  # type: ignore[assignment]
    stack._link_changed(first)
    appeared = stack.take_due(loop.now)
    assert [type(e) for e in appeared] == [NicAppeared]
    return stack, loop


def feed(stack: LinuxStack, loop: FakeLoop, msg: dict[str, Any]) -> list[type]:
    stack._link_changed(msg)
    return [type(e) for e in stack.take_due(loop.now)]


@pytest.mark.parametrize(
    "down",
    [
        message(admin=False, operstate="DOWN"),
        message(carrier=False, operstate="DOWN"),
        message(carrier=False, operstate="LOWERLAYERDOWN"),
        message(operstate="DORMANT"),
        message(carrier=False, operstate="NOTPRESENT"),
    ],
    ids=["admin-down", "carrier-down", "lowerlayerdown", "dormant", "notpresent"],
)
def test_every_way_a_working_link_goes_away_is_reported_at_once(down: dict[str, Any]) -> None:
    stack, loop = stack_with(message())
    assert feed(stack, loop, down) == [LinkWentDown]
    assert feed(stack, loop, down) == []  # once
    assert feed(stack, loop, message()) == [LinkCameUp]
    # Taking a link down deletes the routes through it: the test tables' come back.
    assert loop.tasks == (["LinuxStack._restore_test_routes"] if not down["flags"] & 1 else [])


def test_coming_back_needs_admin_up_carrier_and_operstate_up() -> None:
    stack, loop = stack_with(message())
    assert feed(stack, loop, message(admin=False, operstate="DOWN")) == [LinkWentDown]
    assert feed(stack, loop, message(carrier=False, operstate="DOWN")) == []
    assert feed(stack, loop, message(operstate="DORMANT")) == []
    assert feed(stack, loop, message(operstate="UNKNOWN")) == [LinkCameUp]
    # Brought back up by hand, it gets no grace: it was judged already.
    assert feed(stack, loop, message(admin=False, operstate="DOWN")) == [LinkWentDown]
    assert feed(stack, loop, message(carrier=False, operstate="DOWN")) == []
    loop.advance(CARRIER_GRACE + 1)
    assert stack.take_due(loop.now) == []


def test_a_link_down_before_we_saw_it_counts_as_up_until_brought_up() -> None:
    stack, loop = stack_with(message(admin=False, operstate="DOWN"))
    assert stack._links["eth0"].running
    # The daemon plumbs it: up, the carrier a moment later.  No failure.
    assert feed(stack, loop, message(carrier=False, operstate="DOWN")) == []
    loop.advance(CARRIER_GRACE / 2)
    assert feed(stack, loop, message()) == []
    loop.advance(CARRIER_GRACE)
    assert stack.take_due(loop.now) == []
    # From then on it is judged like any other.
    assert feed(stack, loop, message(admin=False, operstate="DOWN")) == [LinkWentDown]


def test_a_carrier_that_never_comes_after_the_first_up_is_a_failure() -> None:
    stack, loop = stack_with(message(admin=False, operstate="DOWN"))
    assert feed(stack, loop, message(carrier=False, operstate="DOWN")) == []
    loop.advance(CARRIER_GRACE)
    assert [type(e) for e in stack.take_due(loop.now)] == [LinkWentDown]
    assert feed(stack, loop, message()) == [LinkCameUp]


def test_taken_down_again_within_the_grace_is_a_failure() -> None:
    stack, loop = stack_with(message(admin=False, operstate="DOWN"))
    assert feed(stack, loop, message(carrier=False, operstate="DOWN")) == []
    assert feed(stack, loop, message(admin=False, operstate="DOWN")) == [LinkWentDown]
    loop.advance(CARRIER_GRACE)
    assert stack.take_due(loop.now) == []


def test_the_inventory_reads_the_kernels_mtu() -> None:
    stack, loop = stack_with(message())
    assert stack._appeared(stack._links["eth0"], loop.now).mtu == 1500
    other = LinuxStack()
    other._loop = loop  # type: ignore[assignment]
    other._link_changed(message(mtu=9000))
    (appeared,) = other.take_due(loop.now)
    assert isinstance(appeared, NicAppeared) and appeared.mtu == 9000


def test_an_mtu_changed_by_someone_else_is_reported() -> None:
    stack, loop = stack_with(message())
    stack._link_changed(message(mtu=1400))
    events = stack.take_due(loop.now)
    assert events == [LinkMtuChanged(loop.now, "eth0", 1400)]
    assert feed(stack, loop, message(mtu=1400, carrier=False, operstate="DOWN")) == [LinkWentDown]


def test_an_ipv6_link_message_does_not_change_the_links_mtu() -> None:
    stack, loop = stack_with(message())
    # RTM_NEWLINK of family AF_INET6 carries IPv6's MTU (a router may lower it).
    assert feed(stack, loop, {**message(mtu=1280), "family": socket.AF_INET6}) == []
    assert stack._links["eth0"].mtu == 1500


def test_ipv6_units_leave_unit_0_to_the_link_local() -> None:
    """A global IPv6 address found in the kernel is unit 1 and up: unit 0 is the
    link-local's (as Solaris numbers them), so the two never claim one unit."""
    from ipmp.core.types import Family
    from ipmp.linux.stack import LinuxStack

    units: dict[tuple[str, Family], int] = {}
    assert LinuxStack._unit_of(None, "eth0", units, "inet6") == 1
    assert LinuxStack._unit_of(None, "eth0", units, "inet6") == 2
    assert LinuxStack._unit_of("eth0", "eth0", units, "inet") == 0
    assert LinuxStack._unit_of("eth0:3", "eth0", units, "inet") == 3


def test_an_update_to_the_form_the_kernel_holds_is_not_a_remove_and_an_add() -> None:
    """A restart from the hostname files over a running kernel asks for its test
    addresses as they are: removing and adding them made them vanish for ~40 ms
    (the fault matrix's bad-state cells)."""
    from ipmp.core.actions import UpdateAddress
    from ipmp.linux.stack import LinuxStack, _Configured

    stack = LinuxStack()
    stack._configured[("inet", "192.0.2.22")] = _Configured(
        "eth1", "inet", "192.0.2.22", 32, test_route="192.0.2.0/24"
    )
    stack._configured[("inet", "192.0.2.20")] = _Configured("eth1", "inet", "192.0.2.20", 24)
    test = UpdateAddress("eth1", "inet", 1, "192.0.2.22", 24, True, True, test=True)
    assert stack._already_as(test)
    # A data address asked to become a test address, another NIC, or down: redone.
    assert not stack._already_as(
        UpdateAddress("eth1", "inet", 0, "192.0.2.20", 24, True, True, test=True)
    )
    assert not stack._already_as(
        UpdateAddress("eth0", "inet", 1, "192.0.2.22", 24, True, True, test=True)
    )
    assert not stack._already_as(
        UpdateAddress("eth1", "inet", 1, "192.0.2.22", 24, False, True, test=True)
    )
