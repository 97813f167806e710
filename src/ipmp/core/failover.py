"""Moving data addresses between the members of a group (S10 failover/failback).

These functions change a ``HostTable`` in place; ``reconcile`` turns the
change into kernel actions.  They decide nothing about *when* to move: that
is the engine's business.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Literal

from ipmp.core.flags import IFF_NOFAILOVER
from ipmp.core.model import UNSPECIFIED, HostTable, LogicalInterface, Nic
from ipmp.core.types import FAMILIES, Family

FailoverKind = Literal["normal", "to_nonstandby", "to_any"]
"""FAILOVER_NORMAL (failure, offline), FAILOVER_TO_NONSTANDBY (emptying a
standby) and FAILOVER_TO_ANY (a NIC leaving its group)."""


Which = Callable[[LogicalInterface], bool]
"""A filter on the logical interfaces a move takes."""


def every(li: LogicalInterface) -> bool:
    """The filter that takes every data address."""
    return True


def data_families(nic: Nic, which: Which = every) -> set[Family]:
    """The families in which ``nic`` holds data addresses (those ``which`` accepts)."""
    return {li.family for li in nic.addresses() if li.is_data and which(li)}


def choose_destination(
    table: HostTable,
    src: Nic,
    kind: FailoverKind,
    families: Collection[Family] | None = None,
) -> Nic | None:
    """Pick the member that takes ``src``'s data addresses (S10 get_failover_dst).

    A running STANDBY or INACTIVE member is taken at once (guide: Standby
    Interfaces in an IPMP Group); otherwise the running member with the fewest
    UP data addresses.  Members lacking one of ``families`` (by default every
    family that has data to move) are skipped.  Only ``to_any`` may settle for
    a member that is not running.
    """
    needed = data_families(src) if families is None else set(families)
    best: Nic | None = None
    last_resort: Nic | None = None
    for member in table.members(src.group):
        if member is src or member.offline or not member.present:
            continue
        if any(fam not in member.instances for fam in needed):
            continue
        if not member.usable:
            if last_resort is None:
                last_resort = member
            continue
        if kind == "to_nonstandby":
            if member.standby:
                continue
        elif member.standby or member.inactive:
            return member
        if best is None or member.up_data_count() < best.up_data_count():
            best = member
    if best is not None:
        return best
    return last_resort if kind == "to_any" else None


def _in_family(family: Family, which: Which) -> Which:
    return lambda li: li.family == family and which(li)


def homed_at(name: str) -> Callable[[LogicalInterface], bool]:
    """A filter for ``move_addresses``: the addresses whose home is ``name``."""
    return lambda li: li.home == name


def _placeholder(nic: Nic, family: Family) -> LogicalInterface:
    # guide: "a dummy address 0.0.0.0 was created on hme0 ... so that hme0 can
    # still be accessed"; it is marked NOFAILOVER and down.
    return LogicalInterface(
        family=family,
        unit=0,
        address=UNSPECIFIED[family],
        prefixlen=0,
        flags=IFF_NOFAILOVER,
        home=nic.name,
        home_unit=0,
        placeholder=True,
    )


def move_addresses(src: Nic, dst: Nic, which: Callable[[LogicalInterface], bool]) -> int:
    """Move every data address of ``src`` that ``which`` accepts onto ``dst``; return how many.

    An address returning home takes back its original unit (replacing the
    0.0.0.0 placeholder on unit 0); elsewhere it becomes the lowest free
    logical unit (hme1:2).
    """
    moved = 0
    for family in FAMILIES:
        src_inst = src.instances.get(family)
        dst_inst = dst.instances.get(family)
        if src_inst is None or dst_inst is None:
            continue
        lowest = 1  # every unit below is taken: a mass move stays linear
        for unit in sorted(src_inst.units):
            li = src_inst.units[unit]
            if not li.is_data or not which(li):
                continue
            preferred: int | None = None
            if dst.name == li.home:
                preferred = li.home_unit
                current = dst_inst.units.get(preferred)
                if current is not None and current.placeholder:
                    del dst_inst.units[preferred]
            new_unit = dst_inst.free_unit(preferred, lowest)
            if new_unit != preferred:
                lowest = new_unit + 1
            del src_inst.units[unit]
            if unit == 0:
                src_inst.units[0] = _placeholder(src, family)
            li.unit = new_unit
            dst_inst.units[new_unit] = li
            moved += 1
    if moved:
        # guide: "When a failover occurs on this standby interface, the
        # INACTIVE flag is cleared."
        dst.inactive = False
    return moved


def choose_destinations(
    table: HostTable, src: Nic, kind: FailoverKind, which: Which = every
) -> dict[Family, Nic | None]:
    """Per family with data to move, the member that takes it (None: no member can).

    One member plumbed for every such family is preferred, as S10 chooses
    (facts §4.2).  Where none is, each family is placed on its own: S10 would
    move nothing at all when the only other member lacks one family (it skips
    such members), leaving the IPv4 addresses on a dead NIC because IPv6 has
    nowhere to go.  Here the families fail over independently (README: Where
    this differs).
    """
    needed = [fam for fam in FAMILIES if fam in data_families(src, which)]
    if not needed:
        return {}
    whole = choose_destination(table, src, kind, needed)
    if whole is not None and whole.usable:
        return dict.fromkeys(needed, whole)
    each = {fam: choose_destination(table, src, kind, (fam,)) for fam in needed}
    if whole is not None and not any(d is not None and d.usable for d in each.values()):
        # Only members that are not running: the one that takes every family
        # is the last resort (to_any), as when the families were not split.
        return dict.fromkeys(needed, whole)
    return each


@dataclass
class Failover:
    """What a failover did: where each family went, and which had nowhere to go."""

    moved: dict[Family, Nic] = field(default_factory=dict)
    stranded: list[Family] = field(default_factory=list)

    @property
    def destinations(self) -> list[Nic]:
        """The members that received addresses, each once, IPv4's first."""
        out: list[Nic] = []
        for nic in self.moved.values():
            if all(nic is not seen for seen in out):
                out.append(nic)
        return out


def fail_over(table: HostTable, src: Nic, kind: FailoverKind, which: Which = every) -> Failover:
    """Move the data addresses ``which`` accepts off ``src``, each family on its own.

    A family no member can take stays on ``src`` and is reported ``stranded``;
    nothing is moved (and nothing reported) when ``src`` holds no such address.
    """
    result = Failover()
    for family, dst in choose_destinations(table, src, kind, which).items():
        if dst is None:
            result.stranded.append(family)
        elif move_addresses(src, dst, _in_family(family, which)):
            result.moved[family] = dst
    return result


def fail_back(table: HostTable, nic: Nic) -> int:
    """Bring every data address whose home is ``nic`` back from the other members.

    Like S10's failback it pulls from every member, not only from the one that
    took over: addresses may have moved on since.  Returns how many moved.
    """
    moved = 0
    for member in table.members(nic.group):
        # An absent member's addresses exist only in the table: they come back
        # too (the kernel gets them as new addresses).
        if member is not nic:
            moved += move_addresses(member, nic, homed_at(nic.name))
    return moved


def pending_failback(table: HostTable, nic: Nic) -> bool:
    """True while some data address of ``nic`` is hosted elsewhere."""
    return any(host is not nic for host, _ in table.data_addresses_of(nic.name))
