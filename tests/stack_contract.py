"""The stack contract: what the engine relies on, checked on any ``Stack``.

The same checks run against the simulated host (tests/test_stack_contract.py)
and against the Linux stack inside a lab namespace (tests/test_linux_real.py).
A ``Harness`` hides the one difference: the simulator answers on a virtual
clock, Linux on the real one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ipmp.core.actions import (
    AddAddress,
    MoveAddress,
    PlumbInterface,
    RemoveAddress,
    SendProbe,
)
from ipmp.core.constants import PROBE_UNI
from ipmp.core.events import (
    ActionCompleted,
    ActionFailed,
    AddressAddedElsewhere,
    AddressesFound,
    AddressRemovedElsewhere,
    Event,
    NicAppeared,
    ProbeReplyReceived,
    RoutesChanged,
)
from ipmp.stack import Stack


@dataclass
class Harness:
    """Drives a stack and collects what it reports, on its own kind of clock."""

    stack: Stack
    clock: Callable[[], float]
    advance: Callable[[float], Awaitable[None]]
    seen: list[Event] = field(default_factory=list)

    def now(self) -> float:
        return self.clock()

    async def collect(self, until: Callable[[list[Event]], bool], timeout: float) -> list[Event]:
        """Gather reported events until ``until(events)`` holds or ``timeout`` passes."""
        start = self.now()
        while True:
            self.seen += self.stack.take_due(self.now())
            if until(self.seen) or self.now() - start > timeout:
                return self.seen
            await self.advance(0.01)

    async def outcome(self, action: Any, timeout: float = 5.0) -> Event:
        """Carry out one action and wait for its ActionCompleted or ActionFailed."""
        self.seen += self.stack.execute(action, self.now())

        def done(events: list[Event]) -> bool:
            return any(
                isinstance(e, ActionCompleted | ActionFailed) and e.action == action for e in events
            )

        events = await self.collect(done, timeout)
        for event in events:
            if isinstance(event, ActionCompleted | ActionFailed) and event.action == action:
                self.seen.remove(event)
                return event
        raise AssertionError(f"no outcome for {action!r} within {timeout} s")


@dataclass(frozen=True)
class Setup:
    """What the contract needs to know of the host under test."""

    nic: str
    sibling: str
    mac: str
    address: str
    prefixlen: int
    test_address: str
    target: str
    target6: str


async def check_contract(
    h: Harness,
    setup: Setup,
    kernel: Callable[[], set[tuple[str, str]]],
    add_default_route: Callable[[], None],
) -> None:
    """Every check of the contract; ``kernel()`` lists (ifname, address) the stack holds."""
    inventory = h.stack.start(h.now())
    appeared = {e.name: e for e in inventory if isinstance(e, NicAppeared)}
    assert setup.nic in appeared and setup.sibling in appeared, appeared
    assert appeared[setup.nic].mac == setup.mac
    assert appeared[setup.nic].link_up
    assert any(isinstance(e, AddressesFound) for e in inventory)
    assert any(isinstance(e, RoutesChanged) for e in inventory)

    for name in (setup.nic, setup.sibling):
        assert isinstance(await h.outcome(PlumbInterface(name, "inet")), ActionCompleted)
    broadcast = "192.0.2.255"
    add = AddAddress(setup.nic, "inet", 0, setup.address, setup.prefixlen, broadcast, True, False)
    assert isinstance(await h.outcome(add), ActionCompleted)
    test = AddAddress(
        setup.nic, "inet", 1, setup.test_address, setup.prefixlen, broadcast, True, True, True
    )
    assert isinstance(await h.outcome(test), ActionCompleted)
    assert (setup.nic, setup.address) in kernel()
    assert (setup.nic, setup.test_address) in kernel()

    # A route change is reported with the whole table.
    add_default_route()

    def routed(events: list[Event]) -> bool:
        return any(
            isinstance(e, RoutesChanged) and any(r.gateway == setup.target for r in e.routes)
            for e in events
        )

    assert routed(await h.collect(routed, 5.0))

    # A probe from the test address comes back with everything it carried.
    probe = SendProbe(
        setup.nic, "inet", setup.test_address, setup.target, 0x4242, 7, 123456, PROBE_UNI
    )
    assert isinstance(await h.outcome(probe), ActionCompleted)

    def replied(events: list[Event]) -> bool:
        return any(isinstance(e, ProbeReplyReceived) and e.seq == 7 for e in events)

    events = await h.collect(replied, 5.0)
    reply = next(e for e in events if isinstance(e, ProbeReplyReceived) and e.seq == 7)
    assert (reply.ifname, reply.family, reply.source) == (setup.nic, "inet", setup.target)
    assert (reply.icmp_id, reply.timestamp_ms, reply.kind) == (0x4242, 123456, PROBE_UNI)
    assert reply.length >= 16

    # A move keeps the address and lands it on the sibling.
    move = MoveAddress(
        "inet",
        setup.address,
        setup.prefixlen,
        broadcast,
        setup.nic,
        0,
        setup.sibling,
        1,
        True,
        False,
    )
    assert isinstance(await h.outcome(move), ActionCompleted)
    assert (setup.sibling, setup.address) in kernel()
    assert (setup.nic, setup.address) not in kernel()
    back = MoveAddress(
        "inet",
        setup.address,
        setup.prefixlen,
        broadcast,
        setup.sibling,
        1,
        setup.nic,
        0,
        True,
        False,
    )
    assert isinstance(await h.outcome(back), ActionCompleted)
    assert (setup.nic, setup.address) in kernel()

    # Removing takes it away; adding to an interface that does not exist fails.
    remove = RemoveAddress(setup.nic, "inet", 1, setup.test_address, setup.prefixlen)
    assert isinstance(await h.outcome(remove), ActionCompleted)
    assert (setup.nic, setup.test_address) not in kernel()
    ghost = AddAddress("nosuch9", "inet", 0, "192.0.2.99", 24, broadcast, True, False)
    assert isinstance(await h.outcome(ghost), ActionFailed)


Writer = Callable[[str, str, str, int], None]
"""Another program changing addresses: ``writer("add" | "del", ifname, address, prefixlen)``."""


def _foreign(events: list[Event]) -> list[AddressAddedElsewhere | AddressRemovedElsewhere]:
    return [e for e in events if isinstance(e, AddressAddedElsewhere | AddressRemovedElsewhere)]


async def check_other_writers(
    h: Harness, setup: Setup, kernel: Callable[[], set[tuple[str, str]]], writer: Writer
) -> None:
    """Another program's address changes are reported; the stack's own never are.

    Runs after ``check_contract``: both interfaces are plumbed for IPv4 and
    ``setup.address`` is on unit 0 of ``setup.nic``.
    """
    broadcast = "192.0.2.255"
    h.seen.clear()

    # The stack's own changes, moves included, never look like another writer's.
    def move(src: str, src_unit: int, dst: str, dst_unit: int) -> MoveAddress:
        return MoveAddress(
            "inet", setup.address, setup.prefixlen, broadcast, src, src_unit, dst, dst_unit,
            True, False,
        )  # fmt: skip

    assert isinstance(await h.outcome(move(setup.nic, 0, setup.sibling, 1)), ActionCompleted)
    assert isinstance(await h.outcome(move(setup.sibling, 1, setup.nic, 0)), ActionCompleted)
    test = AddAddress(
        setup.nic, "inet", 1, setup.test_address, setup.prefixlen, broadcast, True, True, True
    )
    assert isinstance(await h.outcome(test), ActionCompleted)
    await h.collect(lambda events: bool(_foreign(events)), 1.0)
    assert not _foreign(h.seen), h.seen

    # Someone deletes the data address: reported, with where it was.
    writer("del", setup.nic, setup.address, setup.prefixlen)
    events = await h.collect(lambda events: bool(_foreign(events)), 5.0)
    assert [(type(e), e.ifname, e.family, e.address, e.prefixlen) for e in _foreign(events)] == [
        (AddressRemovedElsewhere, setup.nic, "inet", setup.address, setup.prefixlen)
    ], events
    h.seen.clear()
    add = AddAddress(setup.nic, "inet", 0, setup.address, setup.prefixlen, broadcast, True, False)
    assert isinstance(await h.outcome(add), ActionCompleted)

    # Someone puts a copy on the sibling: reported; removing it keeps the other.
    writer("add", setup.sibling, setup.address, setup.prefixlen)
    events = await h.collect(lambda events: bool(_foreign(events)), 5.0)
    added = _foreign(events)
    assert [(type(e), e.ifname, e.address) for e in added] == [
        (AddressAddedElsewhere, setup.sibling, setup.address)
    ], events
    h.seen.clear()
    copy = added[0]
    remove = RemoveAddress(setup.sibling, "inet", copy.unit, setup.address, copy.prefixlen)
    assert isinstance(await h.outcome(remove), ActionCompleted)
    assert (setup.nic, setup.address) in kernel()
    assert (setup.sibling, setup.address) not in kernel()

    # Someone deletes the test address: reported like any other.
    writer("del", setup.nic, setup.test_address, setup.prefixlen)
    events = await h.collect(lambda events: bool(_foreign(events)), 5.0)
    assert [(type(e), e.ifname, e.address) for e in _foreign(events)] == [
        (AddressRemovedElsewhere, setup.nic, setup.test_address)
    ], events
    h.seen.clear()

    # An address of its own on a member.
    writer("add", setup.sibling, "192.0.2.77", 24)
    events = await h.collect(lambda events: bool(_foreign(events)), 5.0)
    assert [(type(e), e.ifname, e.address, e.prefixlen) for e in _foreign(events)] == [
        (AddressAddedElsewhere, setup.sibling, "192.0.2.77", 24)
    ], events
    h.seen.clear()


def run_sim(coro: Callable[[Harness], Awaitable[None]], stack: Stack) -> None:
    """Run a contract coroutine against a simulated stack on a virtual clock."""
    clock = {"now": 0.0}

    async def advance(step: float) -> None:
        due = stack.next_due()
        clock["now"] = max(clock["now"] + step, due if due is not None else 0.0)

    harness = Harness(stack, lambda: clock["now"], advance)
    asyncio.run(coro(harness))
