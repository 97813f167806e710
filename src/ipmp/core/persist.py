"""The daemon's own state, as saved across restarts.

The kernel keeps addresses but not the IPMP facts about them: which interface
an address belongs to (its home), which addresses are test addresses, and the
group, STANDBY, INACTIVE, FAILED and OFFLINE flags.  ``table_to_state`` and
``table_from_state`` turn the host table into plain JSON data and back; the
daemon writes it atomically.  A state that does not validate raises
``IpmpError`` and is never half-applied.

Besides the table the daemon records, in the same file, the boot it was
written in (``boot_id``) and a digest of each hostname file as it was applied
(``files``): a restart configures a NIC whose file changed since from the file
as it reads now (``changed_nics``, ``forget_nics``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping
from typing import Any

from ipmp.core.constants import GROUP_NAME_MAX
from ipmp.core.errors import IpmpError
from ipmp.core.failover import homed_at, move_addresses
from ipmp.core.hostname_files import split_hostname_file_name
from ipmp.core.model import HostTable, Instance, LogicalInterface, Nic
from ipmp.core.types import FAMILIES, Family, valid_interface_name

STATE_VERSION = 1


def table_to_state(table: HostTable) -> dict[str, Any]:
    """The persistent part of the table (hardware facts come from the kernel)."""
    nics: list[dict[str, Any]] = []
    for nic in table.ordered():
        nics.append(
            {
                "name": nic.name,
                # The hardware the configuration was for (a restart checks it).
                "mac": nic.mac,
                "index": nic.index,
                "group": nic.group,
                "standby": nic.standby,
                "inactive": nic.inactive,
                "failed": nic.failed,
                "offline": nic.offline,
                "mtu": nic.mtu,
                "modules": list(nic.modules),
                "instances": {
                    fam: [
                        {
                            "unit": li.unit,
                            "address": li.address,
                            "prefixlen": li.prefixlen,
                            "broadcast": li.broadcast,
                            "flags": li.flags,
                            "home": li.home,
                            "home_unit": li.home_unit,
                            "placeholder": li.placeholder,
                        }
                        for li in nic.addresses(fam)
                    ]
                    for fam in FAMILIES
                    if fam in nic.instances
                },
            }
        )
    return {"version": STATE_VERSION, "nics": nics}


def _field(obj: dict[str, Any], key: str, kind: type, where: str) -> Any:
    value = obj.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise IpmpError(f"state: {where}.{key}: expected {kind.__name__}, got {_short(value)}")
    return value


def _number(obj: dict[str, Any], key: str, low: int, high: int, where: str) -> int:
    value: int = _field(obj, key, int, where)
    if not low <= value <= high:
        raise IpmpError(f"state: {where}.{key}: expected {low} to {high}, got {value}")
    return value


def _short(value: Any) -> str:
    """A value as the message shows it: its repr, cut short (a state can hold anything)."""
    text = repr(value) if isinstance(value, (str, int, float, bool)) or value is None else ""
    if not text:
        text = f"a JSON {'object' if isinstance(value, dict) else 'array'}"
    return text if len(text) <= 40 else text[:37] + "..."


MAX_UNIT = 1 << 16
"""No logical unit beyond this (Solaris allows 8192 per interface by default)."""
MAX_FLAGS = (1 << 64) - 1


def table_from_state(state: Any) -> HostTable:
    """Rebuild a table from saved state; raise ``IpmpError`` naming the bad field.

    Every field is checked for its type and range, and every ``home`` must
    name a NIC of the state, so that whatever a file holds gives a table
    the engine can work with or one clean error (never a ``KeyError``).
    """
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise IpmpError(f"state: expected an object with version {STATE_VERSION}")
    nics = state.get("nics")
    if not isinstance(nics, list):
        raise IpmpError("state: nics: expected a list")
    table = HostTable()
    homes: list[tuple[str, str]] = []
    for i, raw in enumerate(nics):
        where = f"nics[{i}]"
        if not isinstance(raw, dict):
            raise IpmpError(f"state: {where}: expected an object")
        name = _field(raw, "name", str, where)
        if not valid_interface_name(name) or name in table.nics:
            raise IpmpError(f"state: {where}.name: not an interface name or repeated: {name!r}")
        modules = _field(raw, "modules", list, where)
        if not all(isinstance(m, str) for m in modules):
            raise IpmpError(f"state: {where}.modules: expected a list of strings")
        group = _field(raw, "group", str, where)
        if len(group.encode("utf-8", "surrogatepass")) > GROUP_NAME_MAX:
            raise IpmpError(f"state: {where}.group: longer than {GROUP_NAME_MAX} bytes")
        nic = Nic(
            name,
            mac=_field(raw, "mac", str, where) if "mac" in raw else "",
            index=_number(raw, "index", 0, (1 << 31) - 1, where) if "index" in raw else 0,
            present=False,
            group=group,
            standby=_field(raw, "standby", bool, where),
            inactive=_field(raw, "inactive", bool, where),
            failed=_field(raw, "failed", bool, where),
            offline=_field(raw, "offline", bool, where),
            mtu=_number(raw, "mtu", 0, 1 << 20, where),
            modules=list(modules),
        )
        instances = _field(raw, "instances", dict, where)
        for fam, units in instances.items():
            if fam not in FAMILIES or not isinstance(units, list):
                raise IpmpError(f"state: {where}.instances: bad family {fam!r}")
            family: Family = "inet" if fam == "inet" else "inet6"
            inst = Instance(family)
            for j, unit in enumerate(units):
                uwhere = f"{where}.instances.{fam}[{j}]"
                if not isinstance(unit, dict):
                    raise IpmpError(f"state: {uwhere}: expected an object")
                li = LogicalInterface(
                    family=family,
                    unit=_number(unit, "unit", 0, MAX_UNIT, uwhere),
                    address=_field(unit, "address", str, uwhere),
                    prefixlen=_number(unit, "prefixlen", 0, 32 if fam == "inet" else 128, uwhere),
                    flags=_number(unit, "flags", 0, MAX_FLAGS, uwhere),
                    home=_field(unit, "home", str, uwhere),
                    home_unit=_number(unit, "home_unit", 0, MAX_UNIT, uwhere),
                    broadcast=_field(unit, "broadcast", str, uwhere),
                    placeholder=_field(unit, "placeholder", bool, uwhere),
                )
                try:
                    parsed = ipaddress.ip_address(li.address)
                    if li.broadcast:
                        ipaddress.IPv4Address(li.broadcast)
                except ValueError:
                    raise IpmpError(f"state: {uwhere}: not an address: {li.address!r}") from None
                if (parsed.version == 4) != (family == "inet") or li.unit in inst.units:
                    raise IpmpError(f"state: {uwhere}: address or unit does not fit")
                inst.units[li.unit] = li
                homes.append((uwhere, li.home))
            nic.instances[family] = inst
        table.nics[name] = nic
    for uwhere, home in homes:
        if home not in table.nics:
            raise IpmpError(f"state: {uwhere}.home: {home!r} is no NIC of the state")
    return table


def saved_file_digests(state: Any) -> dict[str, str] | None:
    """The hostname-file digests a state recorded (``files``), or None if it recorded none.

    A state of the previous version has no ``files``; a malformed one raises
    ``IpmpError`` naming the field.
    """
    if not isinstance(state, dict) or "files" not in state:
        return None
    files = state["files"]
    if not isinstance(files, dict) or not all(
        isinstance(name, str) and isinstance(digest, str) for name, digest in files.items()
    ):
        raise IpmpError("state: files: expected an object of file name -> digest")
    return dict(files)


def changed_nics(recorded: Mapping[str, str], current: Mapping[str, str]) -> dict[str, list[str]]:
    """NIC -> its hostname files that differ between two digest maps (file name -> digest).

    A file that appeared or disappeared counts as changed.  Names that are not
    hostname files are ignored.
    """
    changed: dict[str, list[str]] = {}
    for name in sorted(set(recorded) | set(current)):
        if recorded.get(name) == current.get(name):
            continue
        try:
            ifname, _family = split_hostname_file_name(name)
        except IpmpError:
            continue
        changed.setdefault(ifname.partition(":")[0], []).append(name)
    return changed


def forget_nics(
    table: HostTable, names: Collection[str]
) -> dict[tuple[Family, str], LogicalInterface]:
    """Drop the saved configuration of NICs ``names``, which are to be configured afresh.

    Addresses of other members that a forgotten NIC hosts go back to their
    homes first (those keep their saved configuration; the engine then puts
    them where they belong).  Every address homed on a forgotten NIC is
    dropped wherever it lives, a failed-over copy included, and returned
    keyed by (family, address): the kernel still holds them, and they must be
    removed from it, not adopted as someone else's.
    """
    forgotten: dict[tuple[Family, str], LogicalInterface] = {}
    for name in names:
        nic = table.nics.get(name)
        if nic is None:
            continue
        for home in sorted({li.home for li in nic.addresses() if li.is_data} - {name}):
            if home in table.nics and home not in names:
                move_addresses(nic, table.nics[home], homed_at(home))
        for holder in table.nics.values():
            for inst in holder.instances.values():
                for unit, li in list(inst.units.items()):
                    if li.home == name or holder is nic:
                        if not (li.placeholder or li.unspecified):
                            forgotten[(li.family, li.address)] = li
                        del inst.units[unit]
        del table.nics[name]
    return forgotten
