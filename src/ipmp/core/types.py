"""Small value types shared by every part of the engine."""

from __future__ import annotations

from typing import Literal, Protocol

Family = Literal["inet", "inet6"]
"""An address family as ifconfig names it."""

FAMILIES: tuple[Family, Family] = ("inet", "inet6")

ALL_HOSTS: dict[Family, str] = {"inet": "224.0.0.1", "inet6": "ff02::1"}
"""The all-hosts multicast groups used for target discovery (guide: Probe-Based
Failure Detection)."""


class RandomSource(Protocol):
    """What the engine needs of a random generator; ``random.Random(seed)`` fits.

    The engine never creates one itself: the caller injects a seeded generator
    so that every run can be replayed.
    """

    def uniform(self, a: float, b: float) -> float: ...

    def random(self) -> float: ...
