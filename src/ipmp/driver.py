"""Carrying out the engine's actions on a stack: shared by the daemon and the runner.

``Driver.execute`` runs actions through the stack and feeds every outcome
event back into the engine until nothing is left; ``Driver.wake`` does what is
due at ``now`` (stack deliveries, then the engine's timers).  Nothing here
awaits or sleeps: the caller owns the clock (virtual or real).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ipmp.core.actions import Action, Log, ReadHostnameFiles, SendProbe
from ipmp.core.engine import Engine
from ipmp.core.events import ActionCompleted, ActionFailed, Event, HostnameFilesRead
from ipmp.core.hostname_files import HostnameFile
from ipmp.stack import Stack

LogSink = Callable[[float, Log], None]
Persist = Callable[[], None]
FileReader = Callable[[str], tuple[Sequence[HostnameFile], Sequence[str]]]
"""Reads the hostname files of one interface now: those that parsed, and why others did not."""


@dataclass
class Report:
    """The outcome of carrying out a batch of actions."""

    completed: list[Action] = field(default_factory=list)
    failed: list[ActionFailed] = field(default_factory=list)


def _no_log(now: float, log: Log) -> None:
    return None


class Driver:
    """Runs an engine against a stack.

    ``on_log`` receives every ``Log`` action with the time it happened.
    ``persist`` (if given) is called before kernel actions are carried out
    whenever a step produced any: the table is saved ahead of the change it
    asks for, so a crash in between is completed on restart, never lost.
    A ``persist`` that raises stops the batch before any of its actions.
    ``read_files`` answers ``ReadHostnameFiles``; without one the request
    fails and the engine keeps the files it read at boot.
    """

    def __init__(
        self,
        engine: Engine,
        stack: Stack,
        on_log: LogSink = _no_log,
        persist: Persist | None = None,
        read_files: FileReader | None = None,
    ) -> None:
        self.engine = engine
        self.stack = stack
        self.on_log = on_log
        self.persist = persist
        self.read_files = read_files

    def execute(self, actions: Sequence[Action], now: float) -> Report:
        """Carry out actions; feed their outcomes back until nothing is left.

        Returns which kernel steps completed and which failed (the engine was
        told of each), so that a request can be undone step by step.
        """
        report = Report()
        pending: deque[Action] = deque()
        self._queue(pending, actions, now)
        while pending:
            action = pending.popleft()
            if isinstance(action, ReadHostnameFiles):
                self._queue(pending, self.engine.handle(self._read(action, now)), now)
                continue
            for event in self.stack.execute(action, now):
                if isinstance(event, ActionFailed):
                    report.failed.append(event)
                elif isinstance(event, ActionCompleted):
                    report.completed.append(event.action)
                self._queue(pending, self.engine.handle(event), now)
        return report

    def _read(self, action: ReadHostnameFiles, now: float) -> Event:
        """The files of one interface, read at ``now`` (the daemon's part, not the stack's)."""
        if self.read_files is None:
            return ActionFailed(now, action, "no configuration files to read here")
        files, messages = self.read_files(action.ifname)
        return HostnameFilesRead(now, action.ifname, tuple(files), tuple(messages))

    def _queue(self, pending: deque[Action], actions: Sequence[Action], now: float) -> None:
        # Saved first: a persist that raises (a request whose state cannot be
        # saved is refused) leaves no kernel step done and no line logged.
        changes = any(not isinstance(a, (Log, SendProbe)) for a in actions)
        if changes and self.persist is not None:
            self.persist()
        for action in actions:
            if isinstance(action, Log):
                self.on_log(now, action)
            else:
                pending.append(action)

    def feed(self, events: Sequence[Event], now: float) -> None:
        """Hand events to the engine and carry out what it answers."""
        for event in events:
            self.execute(self.engine.handle(event), now)

    def next_time(self) -> float | None:
        """When ``wake`` has work next: the engine's deadline or a stack delivery."""
        times = [t for t in (self.engine.deadline(), self.stack.next_due()) if t is not None]
        return min(times) if times else None

    def wake(self, now: float) -> None:
        """Deliver what the stack has due, then run the engine's timers if due."""
        self.feed(self.stack.take_due(now), now)
        deadline = self.engine.deadline()
        if deadline is not None and deadline <= now:
            self.execute(self.engine.tick(now), now)
