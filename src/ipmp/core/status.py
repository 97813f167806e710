"""A read-only snapshot of the daemon's view, for ``ipmpstat`` and the control socket.

Plain JSON-ready data (dicts, lists, strings, numbers): the daemon sends it
over the control socket as it is, and ``ipmpstat`` renders it.  Values follow
illumos ipmpstat's vocabulary (facts §7), mapped onto the Solaris 10 model as
facts §7.4 suggests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ipmp.core.model import Nic
from ipmp.core.probing import ProbeInstance
from ipmp.core.types import FAMILIES

if TYPE_CHECKING:
    from ipmp.core.engine import Engine

SNAPSHOT_VERSION = 1


def _nic_state(engine: Engine, nic: Nic) -> str:
    """ok / failed / offline / unknown (NOTARGETS)."""
    if nic.offline:
        return "offline"
    if nic.failed or not nic.present:
        return "failed"
    insts = [
        inst
        for fam in FAMILIES
        if (inst := engine.probes.get((nic.name, fam))) is not None and inst.test_address
    ]
    if insts and not any(inst.targets for inst in insts):
        return "unknown"
    return "ok"


def _probe_state(engine: Engine, nic: Nic) -> str:
    """disabled (no test address) / failed / unknown (no targets) / ok."""
    insts = [
        inst
        for fam in FAMILIES
        if (inst := engine.probes.get((nic.name, fam))) is not None and inst.test_address
    ]
    if not insts:
        return "disabled"
    if nic.failed:
        return "failed"
    if not any(inst.targets for inst in insts):
        return "unknown"
    return "ok"


def _active(nic: Nic) -> bool:
    return nic.usable and not nic.inactive


def _flags(nic: Nic, nominee: bool) -> str:
    """ipmpstat -i FLAGS: i s m b M d h, '-' where unset."""
    has_v6 = "inet6" in nic.instances
    has_v4 = "inet" in nic.instances
    down = not any(li.up for li in nic.addresses())
    return "".join(
        (
            "i" if nic.inactive else "-",
            "s" if nic.standby else "-",
            "m" if nominee and has_v4 else "-",
            "b" if nominee and has_v4 else "-",
            "M" if nominee and has_v6 else "-",
            "d" if down else "-",
            "-",
        )
    )


def _target_mode(engine: Engine, inst: ProbeInstance) -> str:
    """routes / multicast, or static when ``TARGETS=`` names any of the targets in use."""
    configured = set(engine.config.targets)
    if configured and any(t.address in configured for t in inst.active_targets()):
        return "static"
    return "routes" if inst.targets_are_routers else "multicast"


def snapshot(engine: Engine, now: float | None = None) -> dict[str, Any]:
    """Everything ipmpstat shows: groups, interfaces, addresses, targets.

    ``now`` is the daemon's clock when the snapshot is taken (the clock of the
    probe records' ``time``), so that ``ipmpstat -p`` can count TIME from its
    own start; None when there is no clock (a snapshot of a virtual host).
    The shape is documented, field by field, in docs/status-schema.md.
    """
    table = engine.table
    groups: list[dict[str, Any]] = []
    interfaces: list[dict[str, Any]] = []
    addresses: list[dict[str, Any]] = []
    targets: list[dict[str, Any]] = []
    names = sorted({nic.group for nic in table.nics.values() if nic.group})
    for name in names:
        members = table.members(name)
        active = [m for m in members if _active(m)]
        usable = [m for m in members if m.usable]
        state_info = engine.groups.get(name)
        if (state_info is not None and state_info.failed) or not usable:
            state = "failed"
        elif len(usable) < len(members):
            state = "degraded"
        else:
            state = "ok"
        probing = any(_probe_state(engine, m) != "disabled" for m in members)
        groups.append(
            {
                "group": name,
                "groupname": name,
                "state": state,
                "fdt_ms": state_info.fdt_ms if probing and state_info is not None else None,
                "active": [m.name for m in active],
                "inactive": [m.name for m in members if m.usable and m.inactive],
                "unusable": [m.name for m in members if not m.usable],
            }
        )
    nominees = {
        name: next((m.name for m in table.members(name) if _active(m)), "") for name in names
    }
    for nic in table.ordered():
        if not nic.group and nic.name not in engine.tracking:
            continue
        interfaces.append(
            {
                "interface": nic.name,
                "active": _active(nic),
                "group": nic.group,
                "flags": _flags(nic, nominees.get(nic.group) == nic.name),
                "link": "up" if nic.present and nic.link_up else "down",
                "probe": _probe_state(engine, nic),
                "state": _nic_state(engine, nic),
                "present": nic.present,
                "index": nic.index,
            }
        )
        for fam in FAMILIES:
            inst = engine.probes.get((nic.name, fam))
            if inst is None or inst.test_address is None:
                continue
            targets.append(
                {
                    "interface": nic.name,
                    "family": fam,
                    "mode": _target_mode(engine, inst),
                    "testaddr": inst.test_address,
                    "targets": [t.address for t in inst.active_targets()],
                }
            )
        if not any(t["interface"] == nic.name for t in targets):
            targets.append(
                {
                    "interface": nic.name,
                    "family": "",
                    "mode": "disabled",
                    "testaddr": "",
                    "targets": [],
                }
            )
    for nic in table.ordered():
        if not nic.group:
            continue
        members = table.members(nic.group)
        # A member sends only the families it is plumbed for.
        outbound = {
            fam: [m.name for m in members if _active(m) and fam in m.instances] for fam in FAMILIES
        }
        for li in nic.addresses():
            if not li.is_data:
                continue
            up = li.up and nic.present
            addresses.append(
                {
                    "address": li.address,
                    "family": li.family,
                    "prefixlen": li.prefixlen,
                    "state": "up" if up else "down",
                    "group": nic.group,
                    "inbound": nic.name if up and nic.usable else "",
                    "outbound": outbound[li.family] if up else [],
                    "home": li.home,
                    "logical": nic.name if li.unit == 0 else f"{nic.name}:{li.unit}",
                }
            )
    return {
        "version": SNAPSHOT_VERSION,
        "now": now,
        "groups": groups,
        "interfaces": interfaces,
        "addresses": addresses,
        "targets": targets,
    }
