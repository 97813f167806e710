"""Events: facts that happened, fed to the engine with the time they happened.

Each event is a small frozen dataclass named as a past-tense fact.  Every
event carries ``now`` in monotonic seconds; the engine never reads a clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from ipmp.core.actions import Action
from ipmp.core.hostname_files import HostnameFile
from ipmp.core.types import Family


@dataclass(frozen=True)
class NicAppeared:
    """A physical (or VLAN) interface exists in the kernel: at start-up or hot-plugged.

    ``device`` is the hardware that carries it (``bge0`` for VLAN ``bge1000``),
    ``vlan`` its VLAN id (0 when untagged).  ``modules`` is its STREAMS module
    list, top first, as ``ifconfig modlist`` prints it.
    """

    now: float
    name: str
    index: int
    mac: str
    media: str
    mtu: int
    link_up: bool
    modules: tuple[str, ...] = ()
    device: str = ""
    vlan: int = 0


@dataclass(frozen=True)
class NicRemoved:
    """A physical interface vanished from the kernel (DR detach, unplug, deletion)."""

    now: float
    name: str


@dataclass(frozen=True)
class LinkWentDown:
    """The interface lost its link: RUNNING was cleared."""

    now: float
    name: str


@dataclass(frozen=True)
class LinkCameUp:
    """The interface regained its link: RUNNING was set."""

    now: float
    name: str


@dataclass(frozen=True)
class LinkMtuChanged:
    """The kernel's MTU of interface ``name`` is now ``mtu`` (set by us or by anyone)."""

    now: float
    name: str
    mtu: int


@dataclass(frozen=True)
class Route:
    """One route of the kernel's table, as target selection needs it.

    ``gateway`` is the next hop ("" for an on-link interface route); a host route
    has ``prefixlen`` 32 (IPv4) or 128 (IPv6).
    """

    family: Family
    destination: str
    prefixlen: int
    gateway: str
    ifname: str = ""


@dataclass(frozen=True)
class RoutesChanged:
    """The routing table changed; ``routes`` is the whole table now."""

    now: float
    routes: tuple[Route, ...]


@dataclass(frozen=True)
class ProbeReplyReceived:
    """An ICMP (v6) echo reply arrived on ``ifname`` for the daemon's probe socket.

    ``icmp_id``, ``seq``, ``timestamp_ms`` and ``kind`` are read from the reply's
    payload, exactly as sent; ``length`` is the ICMP message length in bytes.
    ``received_at`` is when the kernel took the reply off the wire, on the
    same clock as ``now`` (``now`` is when the daemon got to it), or None when
    the stack cannot tell: ipmpstat's NETRTT against its RTT.
    """

    now: float
    ifname: str
    family: Family
    source: str
    icmp_id: int
    seq: int
    timestamp_ms: int
    kind: int
    length: int = 16
    received_at: float | None = None


@dataclass(frozen=True)
class FoundAddress:
    """One address the kernel holds, as reported at start-up."""

    ifname: str
    family: Family
    unit: int
    address: str
    prefixlen: int
    broadcast: str
    up: bool
    deprecated: bool


@dataclass(frozen=True)
class AddressesFound:
    """The kernel's plumbed interfaces and addresses when the daemon starts.

    On a restart the daemon adopts them: what a crash left half-moved is
    completed, nothing is created twice.  ``plumbed`` is the kernel's view (on
    Linux: the families the NIC holds an address of, so every NIC with IPv6
    enabled is there for inet6 by its link-local); whether a NIC is plumbed
    for IPMP is the configuration's (hostname files, ``ifconfig plumb``).
    """

    now: float
    plumbed: tuple[tuple[str, Family], ...]
    addresses: tuple[FoundAddress, ...]


@dataclass(frozen=True)
class SettingsChanged:
    """The stack changed (or restored) kernel settings of ``ifname``.

    ``changes`` reads like ``net.ipv4.conf.eth0.arp_ignore=1 (was 0)``.
    """

    now: float
    ifname: str
    changes: tuple[str, ...]
    restored: bool = False


@dataclass(frozen=True)
class HostnameFilesRead:
    """The hostname files of ``ifname`` as they read at ``now`` (``ReadHostnameFiles``).

    ``files`` holds those that parsed (none: the interface has no file);
    ``messages`` says, one line each, why a file was skipped.
    """

    now: float
    ifname: str
    files: tuple[HostnameFile, ...]
    messages: tuple[str, ...] = ()


@dataclass(frozen=True)
class AddressAddedElsewhere:
    """Another program (``ip addr``, a DHCP client, a network manager) added an address.

    The daemon did not make this change: it is an address on ``ifname`` that
    the stack does not hold there, be it new or a copy of one held elsewhere.
    ``unit`` is the logical unit it took where the stack can tell (a Linux
    label ``eth0:2``, a simulated unit), else -1.
    """

    now: float
    ifname: str
    family: Family
    address: str
    prefixlen: int
    unit: int = -1


@dataclass(frozen=True)
class AddressRemovedElsewhere:
    """Another program deleted an address the daemon had put on ``ifname``."""

    now: float
    ifname: str
    family: Family
    address: str
    prefixlen: int


@dataclass(frozen=True)
class PolicyRulesRepaired:
    """The stack put back test-address policy rules someone deleted and removed stale ones.

    Each entry reads like ``from 192.0.2.21 lookup 10003``.
    """

    now: float
    restored: tuple[str, ...]
    removed: tuple[str, ...]


@dataclass(frozen=True)
class ActionFailed:
    """The stack could not carry out ``action``; ``reason`` says why."""

    now: float
    action: Action
    reason: str


@dataclass(frozen=True)
class ActionCompleted:
    """The stack carried out ``action``."""

    now: float
    action: Action


Event = (
    NicAppeared
    | NicRemoved
    | LinkWentDown
    | LinkCameUp
    | LinkMtuChanged
    | RoutesChanged
    | AddressesFound
    | ProbeReplyReceived
    | SettingsChanged
    | HostnameFilesRead
    | AddressAddedElsewhere
    | AddressRemovedElsewhere
    | PolicyRulesRepaired
    | ActionFailed
    | ActionCompleted
)
