"""Routes of the main table for the Linux stack: reading them, moving them, adding them.

A Linux route is bound to a device, so when a member fails its routes must
be moved explicitly (Solaris' kernel does it with the addresses).  A move is
one ``RTM_NEWROUTE`` with ``NLM_F_REPLACE``: the kernel swaps the route for
the same destination, metric and type of service in place (IPv4 and IPv6
alike, checked on this machine), so it is never absent.  Everything else the
kernel holds of the route (protocol, scope, type, preferred source, metrics)
is copied from the dumped route.  Only the main table is touched: the
daemon's per-NIC test tables (>= 10000) are never read here.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Mapping
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from ipmp.core.actions import AddRoute, MoveRoute
from ipmp.core.errors import IpmpError
from ipmp.core.events import Route
from ipmp.core.types import Family
from ipmp.linux.rtnl_batch import RouteChange

RT_TABLE_MAIN = 254
RTPROT_KERNEL = 2
RTPROT_RA = 9
RTNH_F_ONLINK = 4
_FAMILIES: tuple[tuple[int, Family], ...] = ((socket.AF_INET, "inet"), (socket.AF_INET6, "inet6"))


def family_number(family: Family) -> int:
    return socket.AF_INET if family == "inet" else socket.AF_INET6


def route_of(msg: Any, family: Family, by_index: Mapping[int, str]) -> Route | None:
    """A dumped main-table route as the engine sees it; None for another table."""
    if msg.get("table") not in (RT_TABLE_MAIN, None):
        return None
    dst = msg.get("dst") or ("0.0.0.0" if family == "inet" else "::")
    return Route(
        family,
        dst,
        msg["dst_len"],
        msg.get("gateway") or "",
        by_index.get(msg.get("oif") or 0, ""),
        msg.get("priority") or 0,
        # The kernel's own: an address's prefix route, a router advertisement's.
        automatic=msg.get("proto") in (RTPROT_KERNEL, RTPROT_RA),
    )


RouteName = tuple[Family, str, int, str, int, int]
"""A main-table route as a move names it: family, destination, prefix length, gateway,
metric, interface index."""


def route_name(msg: Any, family: Family) -> RouteName:
    dst = msg.get("dst") or ("0.0.0.0" if family == "inet" else "::")
    return (
        family,
        dst,
        msg["dst_len"],
        msg.get("gateway") or "",
        msg.get("priority") or 0,
        msg.get("oif") or 0,
    )


def move_name(action: MoveRoute, oif: int) -> RouteName:
    return (action.family, action.destination, action.prefixlen, action.gateway, action.metric, oif)


def fast_change(msg: Any, family: Family, oif: int) -> RouteChange | None:
    """The raw replace that rebinds a dumped route to ``oif``, if one message can say it all.

    None for a route with metrics (mtu, advmss...) or nexthops: those go
    through ``move_route``, which copies every attribute.
    """
    if msg.get("metrics") or msg.get("multipath") or msg.get("table") not in (RT_TABLE_MAIN, None):
        return None
    name = route_name(msg, family)
    return RouteChange(
        family,
        name[1],
        name[2],
        name[3],
        name[4],
        oif,
        RT_TABLE_MAIN,
        msg["proto"],
        msg["scope"],
        msg["type"],
        msg["tos"],
        prefsrc=msg.get("prefsrc") or "",
        pref=msg.get("pref") if family == "inet6" else None,
        flags=msg["flags"] & RTNH_F_ONLINK,
    )


def _matches(msg: Any, route: Route, family: Family, oif: int) -> bool:
    dst = msg.get("dst") or ("0.0.0.0" if family == "inet" else "::")
    return (
        msg.get("table") in (RT_TABLE_MAIN, None)
        and (msg.get("oif") or 0) == oif
        and dst == route.destination
        and msg["dst_len"] == route.prefixlen
        and (msg.get("gateway") or "") == route.gateway
        and (msg.get("priority") or 0) == route.metric
        and not msg.get("multipath")
    )


async def _find(ipr: Any, route: Route, oif: int) -> Any:
    async for msg in await ipr.route("dump", family=family_number(route.family)):
        if _matches(msg, route, route.family, oif):
            return msg
    return None


def _spec(msg: Any, family: Family, oif: int, onlink: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "family": family_number(family),
        "dst": msg.get("dst") or ("0.0.0.0" if family == "inet" else "::"),
        "dst_len": msg["dst_len"],
        "table": RT_TABLE_MAIN,
        "proto": msg["proto"],
        "scope": msg["scope"],
        "type": msg["type"],
        "tos": msg["tos"],
        "oif": oif,
    }
    for key in ("gateway", "priority", "prefsrc"):
        if msg.get(key):
            spec[key] = msg.get(key)
    metrics = msg.get("metrics")
    if metrics:
        spec["metrics"] = {
            name[len("RTAX_") :].lower(): value
            for name, value in metrics.get("attrs", [])
            if name.startswith("RTAX_")
        }
    if onlink:
        spec["flags"] = RTNH_F_ONLINK
    return spec


async def move_route(
    ipr: Any, action: MoveRoute, from_index: int, to_index: int, remembered: Any = None
) -> None:
    """Rebind a route from one member to another, in one replace.

    A route already on ``to_index`` counts as moved.  A gateway the new
    member has no prefix route for yet (a member holding only its test
    address) is still on the group's link: the route is then marked onlink.
    A route on neither member that the stack last saw on the old one
    (``remembered``, its dumped message) was flushed by the kernel with its
    link (``ip link set ens3 down`` deletes the device's routes): it is made
    again on the new member, as Solaris' kernel would have moved it.

    Raises:
        IpmpError: the route is on neither member, and not remembered.
        NetlinkError: the kernel refused the new route.
    """
    route = Route(
        action.family,
        action.destination,
        action.prefixlen,
        action.gateway,
        action.from_if,
        action.metric,
    )
    msg = await _find(ipr, route, from_index)
    if msg is None:
        if await _find(ipr, route, to_index) is not None:
            return
        msg = remembered
    if msg is None:
        raise IpmpError(
            f"route to {action.destination}/{action.prefixlen} via "
            f"{action.gateway or action.from_if}: not in the main table on {action.from_if}"
        )
    onlink = bool(msg["flags"] & RTNH_F_ONLINK)
    try:
        await ipr.route("replace", **_spec(msg, action.family, to_index, onlink))
    except NetlinkError as err:
        # "Nexthop has invalid gateway": the new member has no prefix route
        # for it, but the gateway is on the group's one link.
        if err.code not in (errno.ENETUNREACH, errno.EINVAL) or not action.gateway or onlink:
            raise
        await ipr.route("replace", **_spec(msg, action.family, to_index, True))
    # IPv6 may keep the old one as a sibling of the new (another device at
    # the same metric): delete it if it is still there.
    if action.family == "inet6" and await _find(ipr, route, from_index) is not None:
        try:
            await ipr.route("del", **_spec(msg, action.family, from_index, False))
        except NetlinkError as err:
            if err.code not in (errno.ESRCH, errno.ENOENT):
                raise


async def add_route(ipr: Any, action: AddRoute, index: int | None) -> None:
    """Install an ``/etc/defaultrouter`` route; one already there counts as added."""
    spec: dict[str, Any] = {
        "family": family_number(action.family),
        "dst": action.destination,
        "dst_len": action.prefixlen,
        "gateway": action.gateway,
        "table": RT_TABLE_MAIN,
    }
    if index is not None:
        spec["oif"] = index
    try:
        await ipr.route("add", **spec)
    except NetlinkError as err:
        if err.code != errno.EEXIST:
            raise
