"""The stack port: the one seam between the engine and a kernel.

Two implementations exist: ``ipmp.sim.host.SimHost`` (the simulated Solaris
host) and the Linux stack.  The same contract tests run against both.

The daemon (or the virtual-time runner) owns the loop: it asks the stack for
its start-up inventory, carries out every action the engine returns through
``execute``, and feeds the outcome events and every event the stack reports
(``take_due``) back into the engine.
"""

from __future__ import annotations

from typing import Protocol

from ipmp.core.actions import Action
from ipmp.core.events import Event


class Stack(Protocol):
    """What the engine needs of a host's network stack."""

    def start(self, now: float) -> list[Event]:
        """Report the inventory: a ``NicAppeared`` per interface, then ``RoutesChanged``."""
        ...

    def execute(self, action: Action, now: float) -> list[Event]:
        """Carry out one action; return its outcome (and any event it caused at once).

        ``Log`` actions are not sent here: logging belongs to the daemon.
        """
        ...

    def next_due(self) -> float | None:
        """When the stack next has an event to report, or None if it only reacts."""
        ...

    def take_due(self, now: float) -> list[Event]:
        """Return (and forget) every event due at or before ``now``, in time order."""
        ...
