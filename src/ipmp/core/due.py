"""The earliest of many timers, kept up to date one timer at a time.

The engine has one probe timer per interface and family.  Walking all of them
on every wake-up made the deadline cost grow with the number of NICs (at 128
NICs and FDT 1 s that walk was most of the daemon's CPU).  ``DueIndex`` is a
min-heap with lazy deletion: changing one key's time pushes one entry, and
entries whose key has since moved or gone are dropped when they reach the top.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)

_COMPACT_FACTOR = 4
"""Rebuild the heap once stale entries outnumber the live ones this many times."""


class DueIndex(Generic[K]):
    """Due times by key: the earliest in O(1) amortised, one update in O(log n)."""

    def __init__(self) -> None:
        self._due: dict[K, float] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._pushed = 0  # tie-breaker: keys need not be orderable

    def __len__(self) -> int:
        return len(self._due)

    def get(self, key: K) -> float | None:
        return self._due.get(key)

    def set(self, key: K, due: float | None) -> None:
        """Give ``key`` a due time, or none (it leaves the index)."""
        if due is None:
            self._due.pop(key, None)
            return
        if self._due.get(key) == due:
            return
        self._due[key] = due
        heapq.heappush(self._heap, (due, self._pushed, key))
        self._pushed += 1
        if len(self._heap) > _COMPACT_FACTOR * len(self._due) + 64:
            self._heap = [(d, i, k) for i, (k, d) in enumerate(self._due.items())]
            heapq.heapify(self._heap)
            self._pushed = len(self._heap)

    def clear(self) -> None:
        self._due.clear()
        self._heap.clear()

    def earliest(self) -> float | None:
        """The earliest due time of any key (None: the index is empty)."""
        heap = self._heap
        while heap:
            due, _, key = heap[0]
            if self._due.get(key) == due:
                return due
            heapq.heappop(heap)
        return None

    def take_due(self, now: float) -> list[K]:
        """Remove and return every key due at or before ``now``, earliest first."""
        taken: list[K] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, _, key = heapq.heappop(heap)
            if self._due.get(key) == due:
                del self._due[key]
                taken.append(key)
        return taken
