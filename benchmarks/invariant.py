"""The IPMP invariant, checked on a real lab: what must hold after any fault is repaired.

The reliability scripts (fault matrix, crash safety, soak) call ``check_invariant``
after (and, where it applies, during) each fault.  ``Expected`` is what the
administrator configured, derived from the lab's topology: the same
``hostname.<if>`` / ``hostname6.<if>`` texts that ``Lab.start_daemon`` writes under
the lab root (``write_etc``), parsed with ``ipmp.core.hostname_files``.  In those
files an address marked ``-failover`` is a test address; every other address is a
data address whose home is the file's interface; ``group NAME`` gives the group.
A hostname6 line that names no address configures the interface's link-local
address, which the kernel derives from the MAC (EUI-64): it is a test address
when marked ``-failover``; a link-local data address never moves, so it is not
listed.

The invariant, exactly (``check_invariant`` returns one line per violation, ``[]``
when it holds), from one ``ip -j addr`` of the host namespace, one daemon
snapshot and one ping per data address:

1. **Present exactly once.**  Every configured data address is on exactly one
   interface of the host namespace; when no interface of its group exists (a
   one-NIC group whose NIC was removed) it is on none: it cannot be anywhere.
2. **On an interface of its group.**  That interface is in the data address's
   home group.
3. **On a healthy interface when there is one.**  Healthy interfaces are, unless
   the caller gives its own set, those the daemon's snapshot shows present, with
   link ``up`` and state ``ok`` or ``unknown`` (no targets: not known to be
   failed).  If any interface of the group plumbed for the address's family (it
   has a hostname file of that family) is healthy, the data address must be on a
   healthy one.  (A group whose every such member has failed keeps its addresses
   where they are: each family fails over on its own.)
4. **Answering.**  Every data address on a healthy interface answers ICMP echo
   from the pinger neighbour (router1 by default): at least one of ``count``
   requests is answered, sent with ``ipmp.lab.ping`` from the neighbour's
   namespace.  An address on an unhealthy interface is not pinged: nothing can
   make it answer.  IPv6 data addresses need a global address on the pinger.
5. **Test addresses unmoved.**  A test address is never on another interface;
   when its own interface exists it is there.
6. **Nothing configured lost.**  The daemon answers on its control socket (not
   checked when the caller passes ``daemon=None``, e.g. while it is killed); its
   snapshot lists every configured interface in its configured group, every
   configured data address, and every test address of a present interface; the
   hostname files under the lab root are byte for byte what the topology wrote.

``wait_invariant`` polls ``check_invariant`` until it holds or a deadline passes.
This module is a library; it has no command line.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from common import Daemon

from ipmp.core.errors import IpmpError
from ipmp.core.hostname_files import load_hostname_file
from ipmp.core.ifconfig_grammar import AddIf, SetAddress, SetFlag, SetGroup
from ipmp.lab.lab import Lab

HEALTHY_STATES = frozenset({"ok", "unknown"})
"""Snapshot interface states that count as healthy (with link up and present)."""


@dataclass(frozen=True)
class Expected:
    """What the administrator configured, from the lab topology's hostname files."""

    data: dict[str, str]  # data address -> home interface (IPv4 and IPv6 global)
    test: dict[str, str]  # test address -> its interface (addresses marked -failover)
    groups: dict[str, str]  # interface -> group name
    files: dict[str, str] = field(default_factory=dict)  # "etc/hostname.eth0" -> its text
    plumbed: set[tuple[str, str]] = field(default_factory=set)  # (interface, "inet"/"inet6")

    def group_members(self, group: str) -> list[str]:
        """The interfaces configured in ``group``, sorted."""
        return sorted(name for name, g in self.groups.items() if g == group)


def eui64_link_local(mac: str) -> str:
    """The link-local address the kernel derives from ``mac`` (modified EUI-64)."""
    octets = [int(part, 16) for part in mac.split(":")]
    octets[0] ^= 0x02
    eui = [*octets[:3], 0xFF, 0xFE, *octets[3:]]
    suffix = int.from_bytes(bytes(eui), "big")
    return str(ipaddress.IPv6Address((0xFE80 << 112) | suffix))


def _literal(address: str, where: str) -> str:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        raise ValueError(f"{where}: {address!r} is not an address literal") from None


def expected_from(lab: Lab) -> Expected:
    """Data and test addresses and groups, from the hostname files the lab's topology carries."""
    data: dict[str, str] = {}
    test: dict[str, str] = {}
    groups: dict[str, str] = {}
    plumbed: set[tuple[str, str]] = set()
    files = {
        rel: text
        for rel, text in lab.topology.etc_files().items()
        if rel.rsplit("/", 1)[-1].startswith(("hostname.", "hostname6."))
    }
    macs = {nic.name: nic.mac for nic in lab.topology.nics}
    for rel, text in files.items():
        parsed = load_hostname_file(text, rel)
        ifname = parsed.ifname
        plumbed.add((ifname, parsed.family))
        for command in parsed.commands:
            # One logical interface at a time: the command's own unit, then each addif.
            logicals: list[dict[str, Any]] = [{"address": None, "failover": True, "unit0": True}]
            for op in command.ops:
                if isinstance(op, AddIf):
                    logicals.append({"address": op.address, "failover": True, "unit0": False})
                elif isinstance(op, SetAddress):
                    logicals[-1]["address"] = op.address
                elif isinstance(op, SetFlag) and op.name == "failover":
                    logicals[-1]["failover"] = op.on
                elif isinstance(op, SetGroup):
                    if op.name:
                        groups[ifname] = op.name
                    else:
                        groups.pop(ifname, None)
            for logical in logicals:
                address = logical["address"]
                if address is None:
                    if parsed.family == "inet6" and logical["unit0"] and not logical["failover"]:
                        test[eui64_link_local(macs[ifname])] = ifname
                    continue
                address = _literal(address, rel)
                if not logical["failover"]:
                    test[address] = ifname
                elif not ipaddress.ip_address(address).is_link_local:
                    data[address] = ifname
    return Expected(data=data, test=test, groups=groups, files=files, plumbed=plumbed)


def host_addresses(lab: Lab) -> tuple[dict[str, list[str]], set[str]]:
    """``(address -> interfaces holding it, interfaces that exist)`` from one ``ip -j addr``."""
    out = lab.run(["ip", "-j", "addr"], timeout=10).stdout
    where: dict[str, list[str]] = {}
    links: set[str] = set()
    for link in json.loads(out or "[]"):
        name = str(link["ifname"])
        if name == "lo":
            continue
        links.add(name)
        for info in link.get("addr_info", []):
            where.setdefault(str(info["local"]), []).append(name)
    return where, links


def healthy_from(snapshot: dict[str, Any]) -> set[str]:
    """Interfaces present, with link up and state ok/unknown in a daemon snapshot."""
    return {
        str(row["interface"])
        for row in snapshot["interfaces"]
        if row.get("present") and row.get("link") == "up" and row.get("state") in HEALTHY_STATES
    }


def _answers(lab: Lab, netns: str, address: str, count: int) -> str | None:
    """None when ``address`` answers at least one of ``count`` echo requests, else why not."""
    try:
        result = lab.ping(address, count=count, interval=0.05, wait=0.5, netns=netns)
    except (IpmpError, OSError, ValueError) as exc:
        return f"ping failed to run: {exc}"
    if result.received == 0:
        return f"no answer to {result.sent} echo requests"
    return None


def check_invariant(
    lab: Lab,
    daemon: Daemon | None,
    expected: Expected,
    *,
    pinger: str = "router1",
    healthy: set[str] | None = None,
    ping: bool = True,
    count: int = 3,
) -> list[str]:
    """The violations of the invariant (see the module docstring); ``[]`` when it holds.

    ``daemon=None`` checks the kernel and the files only (``healthy`` is then
    needed for rules 3 and 4); ``healthy`` overrides the daemon's view of which
    interfaces are healthy;
    ``ping=False`` skips rule 4 (for callers that probe reachability themselves);
    ``count`` is the number of echo requests per data address.
    """
    violations: list[str] = []
    where, links = host_addresses(lab)
    snapshot: dict[str, Any] | None = None
    if daemon is not None:
        try:
            snapshot = daemon.snapshot()
        except IpmpError as err:
            violations.append(f"daemon: does not answer on its control socket: {err.message}")
    if healthy is None:
        healthy = healthy_from(snapshot) if snapshot is not None else set()

    to_ping: list[str] = []
    for address, home in sorted(expected.data.items()):
        holders = where.get(address, [])
        group = expected.groups.get(home)
        members = expected.group_members(group) if group else [home]
        if not any(m in links for m in members):
            if holders:
                violations.append(
                    f"{address}: on {', '.join(holders)} although no interface of its group exists"
                )
            continue
        if len(holders) != 1:
            found = ", ".join(holders) if holders else "nowhere"
            violations.append(f"{address}: data address on {len(holders)} interfaces ({found})")
            continue
        on = holders[0]
        if on not in members:
            violations.append(f"{address}: on {on}, outside its group {group} ({home}'s)")
            continue
        if on not in healthy:
            family = "inet" if ipaddress.ip_address(address).version == 4 else "inet6"
            good = [m for m in members if m in healthy and (m, family) in expected.plumbed]
            if good:
                violations.append(
                    f"{address}: on {on}, which is not healthy, while {', '.join(good)} is"
                )
            continue
        to_ping.append(address)

    for address, own in sorted(expected.test.items()):
        holders = where.get(address, [])
        others = [h for h in holders if h != own]
        if others:
            violations.append(f"{address}: test address of {own} moved to {', '.join(others)}")
        elif own in links and own not in holders:
            violations.append(f"{address}: test address missing from {own}")

    if snapshot is not None:
        rows = {str(r["interface"]): r for r in snapshot["interfaces"]}
        for ifname, group in sorted(expected.groups.items()):
            row = rows.get(ifname)
            if row is None:
                violations.append(f"{ifname}: the daemon no longer lists it (group {group})")
            elif row.get("group") != group:
                violations.append(f"{ifname}: in group {row.get('group')!r}, configured {group!r}")
        known = {str(a["address"]) for a in snapshot["addresses"]}
        for address in sorted(set(expected.data) - known):
            violations.append(f"{address}: the daemon has lost this data address")
        testaddrs = {str(t["testaddr"]) for t in snapshot["targets"]}
        for address, own in sorted(expected.test.items()):
            if own in links and address not in testaddrs:
                violations.append(
                    f"{address}: the daemon no longer probes from {own}'s test address"
                )

    for rel, text in sorted(expected.files.items()):
        path = lab.root / rel
        try:
            now = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            violations.append(f"{rel}: cannot be read: {exc}")
            continue
        if now != text:
            violations.append(f"{rel}: changed under the lab root")

    if ping and to_ping:
        netns = lab.neighbour_ns(pinger)
        with ThreadPoolExecutor(max_workers=min(8, len(to_ping))) as pool:
            answers = list(pool.map(lambda a: _answers(lab, netns, a, count), to_ping))
        for address, why in zip(to_ping, answers, strict=True):
            if why is not None:
                violations.append(f"{address}: {why} from {pinger} (on {where[address][0]})")
    return violations


def acks_received(daemon: Daemon) -> dict[str, int]:
    """``"inet eth0" -> acks received`` per probing instance, from the daemon's ``stats``."""
    lines = daemon.client().request("stats")["lines"]
    acks: dict[str, int] = {}
    for line in lines:
        found = re.match(r"Probe stats on \((\S+) (\S+)\): .*acks received (\d+)", str(line))
        if found:
            acks[f"{found[1]} {found[2]}"] = int(found[3])
    return acks


def settled(daemon: Daemon, families: tuple[str, ...] = ("inet", "inet6"), acks: int = 2) -> bool:
    """Every member ``ok`` and probing, targets known, and each instance acked ``acks`` probes.

    Until a probe is answered the 40 s start-up quiet period holds back probe-based
    failure detection (mpathd-facts 1.6), so faults injected before that would
    not be detected in time.
    """
    try:
        if not all(daemon.probing_ok(family) for family in families):
            return False
        counts = acks_received(daemon)
    except IpmpError:
        return False
    return bool(counts) and all(n >= acks for n in counts.values())


def wait_invariant(
    lab: Lab,
    daemon: Daemon | None,
    expected: Expected,
    timeout: float,
    *,
    step: float = 0.1,
    **kwargs: Any,
) -> tuple[list[str], float]:
    """Poll ``check_invariant`` until it holds or ``timeout`` s pass.

    Returns ``(violations of the last check, seconds waited)``: ``[]`` when it held.
    """
    start = time.monotonic()
    while True:
        violations = check_invariant(lab, daemon, expected, **kwargs)
        waited = time.monotonic() - start
        if not violations or waited > timeout:
            return violations, waited
        time.sleep(step)
