"""Solaris ``ifconfig`` status output, rendered from the host table.

The layout follows ifconfig.c as the guide prints it::

    hme0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2
            inet 192.168.85.19 netmask ffffff00 broadcast 192.168.85.255
            groupname test
"""

from __future__ import annotations

from ipmp.core.flags import format_flags
from ipmp.core.model import (
    HostTable,
    LogicalInterface,
    Nic,
    display_flags,
    netmask_hex,
)
from ipmp.core.types import FAMILIES, Family


def logical_name(nic: Nic, unit: int) -> str:
    """``hme0`` for unit 0, ``hme0:N`` otherwise."""
    return nic.name if unit == 0 else f"{nic.name}:{unit}"


def format_logical(nic: Nic, li: LogicalInterface, show_ether: bool = False) -> str:
    """The status block of one logical interface (no trailing newline)."""
    flags = display_flags(nic, li)
    # guide Example 30-2: the 0.0.0.0 placeholder shows "mtu 0" and "netmask 0".
    mtu = 0 if li.placeholder else nic.mtu
    lines = [
        f"{logical_name(nic, li.unit)}: flags={format_flags(flags)} mtu {mtu} index {nic.index}"
    ]
    if li.family == "inet":
        line = f"\tinet {li.address} netmask {netmask_hex(li.prefixlen)}"
        if li.broadcast and not li.unspecified:
            line += f" broadcast {li.broadcast}"
        lines.append(line)
    else:
        lines.append(f"\tinet6 {li.address}/{li.prefixlen}")
    if li.unit == 0 and nic.group:
        lines.append(f"\tgroupname {nic.group}")
    if li.unit == 0 and show_ether and li.family == "inet" and nic.mac:
        lines.append(f"\tether {nic.mac}")
    return "\n".join(lines)


def format_interface(
    nic: Nic, family: Family, unit: int | None = None, show_ether: bool = False
) -> str:
    """``ifconfig hme0`` (unit 0 only, as Solaris prints) or ``ifconfig hme0:1``."""
    inst = nic.instances[family]
    wanted = 0 if unit is None else unit
    return format_logical(nic, inst.units[wanted], show_ether)


def format_all(table: HostTable, family: Family | None = None, show_ether: bool = False) -> str:
    """``ifconfig -a``: every IPv4 logical interface, then every IPv6 one."""
    blocks: list[str] = []
    for fam in FAMILIES:
        if family not in (None, fam):
            continue
        for nic in table.ordered():
            if not nic.present:
                continue
            blocks.extend(format_logical(nic, li, show_ether) for li in nic.addresses(fam))
    return "\n".join(blocks)


def format_modlist(nic: Nic) -> str:
    """``ifconfig hme0 modlist``: the STREAMS modules, top of the stream first."""
    return "\n".join(f"{pos:2d} {name}" for pos, name in enumerate(nic.modules))
