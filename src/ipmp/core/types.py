"""Small value types shared by every part of the engine."""

from __future__ import annotations

from typing import Literal, Protocol

from ipmp.core.constants import IFNAME_MAX

Family = Literal["inet", "inet6"]
"""An address family as ifconfig names it."""

FAMILIES: tuple[Family, Family] = ("inet", "inet6")


def valid_interface_name(name: object) -> bool:
    """A name the kernel could give a physical interface (dev_valid_name, plus no controls)."""
    return (
        isinstance(name, str)
        and 0 < len(name.encode("utf-8", "surrogatepass")) <= IFNAME_MAX
        and name not in (".", "..")
        and not any(c in "/:" or c.isspace() or not c.isprintable() for c in name)
    )


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
