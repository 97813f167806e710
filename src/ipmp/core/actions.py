"""Actions: what the engine asks the stack (or the log) to do.

Each action is a small frozen dataclass named as an imperative.  The stack
reports the outcome of every kernel action back as an ``ActionCompleted`` or
``ActionFailed`` event.
"""

from __future__ import annotations

from dataclasses import dataclass

from ipmp.core.types import Family

# syslog priorities, as in <syslog.h>
LOG_ERR = 3
LOG_WARNING = 4
LOG_NOTICE = 5
LOG_INFO = 6
LOG_DEBUG = 7

PRIORITY_NAMES = {
    LOG_ERR: "err",
    LOG_WARNING: "warning",
    LOG_NOTICE: "notice",
    LOG_INFO: "info",
    LOG_DEBUG: "debug",
}


@dataclass(frozen=True)
class Log:
    """Write one line to the daemon's log at a syslog ``priority``."""

    priority: int
    message: str


@dataclass(frozen=True)
class PlumbInterface:
    """Open ``family`` on interface ``name`` (Solaris ``ifconfig NAME [inet6] plumb``)."""

    name: str
    family: Family


@dataclass(frozen=True)
class UnplumbInterface:
    """Close ``family`` on interface ``name``, removing all its addresses."""

    name: str
    family: Family


@dataclass(frozen=True)
class SetLinkMtu:
    """Give interface ``ifname`` the MTU ``mtu`` (Solaris ``ifconfig NAME mtu N``)."""

    ifname: str
    mtu: int


@dataclass(frozen=True)
class AddAddress:
    """Create logical interface ``ifname:unit`` holding ``address``.

    An address that is not ``up`` exists but does not answer or send;
    ``deprecated`` addresses are never chosen as a source by the stack.
    ``test`` marks a test address (NOFAILOVER): the stack keeps it out of
    ordinary traffic when it is also deprecated.
    """

    ifname: str
    family: Family
    unit: int
    address: str
    prefixlen: int
    broadcast: str
    up: bool
    deprecated: bool
    test: bool = False


@dataclass(frozen=True)
class RemoveAddress:
    """Remove logical interface ``ifname:unit`` and its ``address``."""

    ifname: str
    family: Family
    unit: int
    address: str
    prefixlen: int


@dataclass(frozen=True)
class UpdateAddress:
    """Change the state of an existing address (``up``/``down``, ``deprecated``)."""

    ifname: str
    family: Family
    unit: int
    address: str
    prefixlen: int
    up: bool
    deprecated: bool
    test: bool = False


@dataclass(frozen=True)
class MoveAddress:
    """Move a data address from ``from_if:from_unit`` to ``to_if:to_unit``.

    The stack removes it from the old interface and creates it on the new one,
    so that it is never absent for longer than the move takes.
    """

    family: Family
    address: str
    prefixlen: int
    broadcast: str
    from_if: str
    from_unit: int
    to_if: str
    to_unit: int
    up: bool
    deprecated: bool


@dataclass(frozen=True)
class AnnounceAddress:
    """Tell the neighbours that ``address`` now lives on ``ifname``.

    IPv4: gratuitous ARP; IPv6: unsolicited neighbour advertisement.
    """

    ifname: str
    family: Family
    address: str


@dataclass(frozen=True)
class PrepareInterface:
    """``ifname`` joined a group: give it the kernel settings a member needs.

    On Linux: arp_ignore=1, arp_announce=2, rp_filter=2, promote_secondaries=1
    (linux-peers §6.4), ignore_routes_with_linkdown=1 (IPv4 and IPv6) and
    IPv6 keep_addr_on_down=1,
    remembering the old values.
    """

    ifname: str


@dataclass(frozen=True)
class ReleaseInterface:
    """``ifname`` left IPMP: put back the settings ``PrepareInterface`` changed."""

    ifname: str


@dataclass(frozen=True)
class SpreadOutbound:
    """Send traffic for ``subnet`` out of ``ifnames``, one flow per interface.

    Outbound load spreading (guide: Outbound Load Spreading): the group's
    active interfaces that hold data addresses, in a per-flow multipath route
    so that no flow is reordered.  An empty ``ifnames`` withdraws the route.
    """

    family: Family
    subnet: str
    ifnames: tuple[str, ...]


@dataclass(frozen=True)
class SendProbe:
    """Send one ICMP (v6) echo request from ``source`` on ``ifname`` to ``target``.

    TTL / hop limit 1, bound to the interface; the payload carries ``seq``,
    ``timestamp_ms`` and ``kind`` (PROBE_UNI, PROBE_MULTI or PROBE_RTT).
    """

    ifname: str
    family: Family
    source: str
    target: str
    icmp_id: int
    seq: int
    timestamp_ms: int
    kind: int


@dataclass(frozen=True)
class ReadHostnameFiles:
    """Read ``/etc/hostname.<ifname>`` and ``/etc/hostname6.<ifname>`` as they are now.

    Asked when a NIC is attached at run time (DR attach, a NIC that appears):
    guide, Attaching NICs: "RCM automatically configures the interface
    according to the contents of this file".  Like ``Log`` it belongs to the
    daemon, not to the stack; the answer is a ``HostnameFilesRead`` event.
    """

    ifname: str


Action = (
    Log
    | PlumbInterface
    | UnplumbInterface
    | SetLinkMtu
    | AddAddress
    | RemoveAddress
    | UpdateAddress
    | MoveAddress
    | AnnounceAddress
    | PrepareInterface
    | ReleaseInterface
    | SpreadOutbound
    | SendProbe
    | ReadHostnameFiles
)

KernelAction = (
    PlumbInterface | UnplumbInterface | AddAddress | RemoveAddress | UpdateAddress | MoveAddress
)
"""The actions that change the stack's address table."""
