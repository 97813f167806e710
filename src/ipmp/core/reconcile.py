"""Turn a change of the host table into the kernel actions that carry it out.

The engine changes its table (ifconfig, failover, failback, boot) and then
compares the kernel-visible part of the old and new tables: one mechanism for
every change, so the stack always ends up holding exactly what the table says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ipmp.core.actions import (
    Action,
    AddAddress,
    AnnounceAddress,
    MoveAddress,
    PlumbInterface,
    RemoveAddress,
    SetLinkMtu,
    UnplumbInterface,
    UpdateAddress,
)
from ipmp.core.model import HostTable, is_link_local
from ipmp.core.types import Family


@dataclass(frozen=True)
class KernelAddress:
    """What the kernel holds of one address."""

    ifname: str
    unit: int
    prefixlen: int
    broadcast: str
    up: bool
    deprecated: bool
    test: bool = False


def kernel_addresses(table: HostTable) -> dict[tuple[Family, str], KernelAddress]:
    """Every real address on a present NIC, keyed by (family, address).

    Placeholders and 0.0.0.0 entries exist only in the table: the kernel has
    nothing for them.
    """
    out: dict[tuple[Family, str], KernelAddress] = {}
    for nic in table.nics.values():
        if not nic.present:
            continue
        for li in nic.addresses():
            if li.placeholder or li.unspecified:
                continue
            out[(li.family, li.address)] = KernelAddress(
                nic.name, li.unit, li.prefixlen, li.broadcast, li.up, li.deprecated, li.nofailover
            )
    return out


def plumbed(table: HostTable) -> set[tuple[str, Family]]:
    """The (NIC, family) pairs plumbed on present NICs."""
    return {(nic.name, fam) for nic in table.nics.values() if nic.present for fam in nic.instances}


def reconcile(old: HostTable, new: HostTable) -> list[Action]:
    """The actions that turn the kernel state of ``old`` into that of ``new``.

    Order: plumbs, removals, moves (each UP one announced from its new
    interface), additions, updates, unplumbs.  Among the moves, an address
    that becomes unit 0 of its new interface goes first and one that leaves
    unit 0 of its old interface goes last: a kernel (Linux) whose first
    address in a subnet is the primary then never has to promote a secondary
    and rebuild the routes of all the others once per moved address.
    """
    before, after = kernel_addresses(old), kernel_addresses(new)
    was_plumbed, now_plumbed = plumbed(old), plumbed(new)
    actions: list[Action] = [
        PlumbInterface(name, fam) for name, fam in sorted(now_plumbed - was_plumbed)
    ]
    moves: list[tuple[int, list[Action]]] = []
    adds: list[Action] = []
    updates: list[Action] = []
    for key, gone in before.items():
        if key not in after and (gone.ifname, key[0]) in now_plumbed:
            actions.append(RemoveAddress(gone.ifname, key[0], gone.unit, key[1], gone.prefixlen))
    for (family, address), new_addr in after.items():
        old_addr = before.get((family, address))
        if old_addr is None:
            adds.append(
                AddAddress(
                    new_addr.ifname,
                    family,
                    new_addr.unit,
                    address,
                    new_addr.prefixlen,
                    new_addr.broadcast,
                    new_addr.up,
                    new_addr.deprecated,
                    new_addr.test,
                )
            )
            if new_addr.up and not new_addr.test and not is_link_local(family, address):
                # A data address (re)created here, e.g. after its NIC vanished:
                # neighbours still hold the old MAC until told.
                adds.append(AnnounceAddress(new_addr.ifname, family, address))
        elif (old_addr.ifname, old_addr.unit) != (new_addr.ifname, new_addr.unit):
            rank = 0 if new_addr.unit == 0 else 2 if old_addr.unit == 0 else 1
            move: list[Action] = [
                MoveAddress(
                    family,
                    address,
                    new_addr.prefixlen,
                    new_addr.broadcast,
                    old_addr.ifname,
                    old_addr.unit,
                    new_addr.ifname,
                    new_addr.unit,
                    new_addr.up,
                    new_addr.deprecated,
                )
            ]
            if new_addr.up and old_addr.ifname != new_addr.ifname:
                move.append(AnnounceAddress(new_addr.ifname, family, address))
            moves.append((rank, move))
        elif old_addr != new_addr:
            updates.append(
                UpdateAddress(
                    new_addr.ifname,
                    family,
                    new_addr.unit,
                    address,
                    new_addr.prefixlen,
                    new_addr.up,
                    new_addr.deprecated,
                    new_addr.test,
                )
            )
    for _, move in sorted(moves, key=lambda ranked: ranked[0]):
        actions += move
    actions += adds + updates
    actions += [UnplumbInterface(name, fam) for name, fam in sorted(was_plumbed - now_plumbed)]
    return actions


def mtu_changes(old: HostTable, new: HostTable) -> list[Action]:
    """``ifconfig IF mtu N``: the present NICs whose MTU the change gives a new value."""
    return [
        SetLinkMtu(name, nic.mtu)
        for name, nic in sorted(new.nics.items())
        if nic.present and name in old.nics and old.nics[name].mtu != nic.mtu
    ]


def undo_actions(done: Sequence[Action], before: HostTable) -> list[Action]:
    """The kernel actions that take back ``done`` (newest first).

    ``before`` is the table as it was before ``done`` began: it says what an
    unplumbed interface held, so that undoing the unplumb restores it all.
    """
    kernel = kernel_addresses(before)
    undo: list[Action] = []
    for action in reversed(done):
        if isinstance(action, AddAddress):
            undo.append(
                RemoveAddress(
                    action.ifname, action.family, action.unit, action.address, action.prefixlen
                )
            )
        elif isinstance(action, RemoveAddress):
            old = kernel.get((action.family, action.address))
            if old is not None:
                undo.append(_add(action.family, action.address, old))
        elif isinstance(action, MoveAddress):
            undo.append(
                MoveAddress(
                    action.family,
                    action.address,
                    action.prefixlen,
                    action.broadcast,
                    action.to_if,
                    action.to_unit,
                    action.from_if,
                    action.from_unit,
                    action.up,
                    action.deprecated,
                )
            )
        elif isinstance(action, UpdateAddress):
            old = kernel.get((action.family, action.address))
            if old is not None:
                undo.append(
                    UpdateAddress(
                        action.ifname,
                        action.family,
                        action.unit,
                        action.address,
                        old.prefixlen,
                        old.up,
                        old.deprecated,
                        old.test,
                    )
                )
        elif isinstance(action, SetLinkMtu):
            nic = before.nics.get(action.ifname)
            if nic is not None:
                undo.append(SetLinkMtu(action.ifname, nic.mtu))
        elif isinstance(action, PlumbInterface):
            undo.append(UnplumbInterface(action.name, action.family))
        elif isinstance(action, UnplumbInterface):
            undo.append(PlumbInterface(action.name, action.family))
            undo.extend(
                _add(family, address, old)
                for (family, address), old in sorted(kernel.items())
                if family == action.family and old.ifname == action.name
            )
    return undo


def _add(family: Family, address: str, old: KernelAddress) -> AddAddress:
    return AddAddress(
        old.ifname,
        family,
        old.unit,
        address,
        old.prefixlen,
        old.broadcast,
        old.up,
        old.deprecated,
        old.test,
    )
