"""Routes follow the group: routes through a failed member move to a healthy one.

On Solaris the kernel moves the routes with the addresses of a failed
interface.  On Linux a route is bound to a device (``default via 198.51.100.1
dev ens3``): it stays on the failed NIC, and every off-link peer loses the
host for the whole failure.  ``RouteFollower`` keeps the main table in line
with the group: a route through a member that cannot carry traffic moves to a
usable member of the same group, and back to its home once the home works
again.  Like an address, a displaced route remembers its home; the homes are
part of the daemon's saved state so that a restart converges.

Nothing moves when the group has no usable member (a group failure), and the
routes the kernel keeps itself (an address's prefix route, a route learnt
from a router advertisement, the outbound-spreading routes inside a group's
data subnet) are never touched.

``parse_defaultrouter`` reads ``/etc/defaultrouter`` (one router per line,
an address or a name from ``/etc/inet/hosts``, ``#`` comments).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ipmp.core.actions import LOG_WARNING, Log, MoveRoute
from ipmp.core.errors import IpmpError
from ipmp.core.events import Route
from ipmp.core.model import HostTable, Nic
from ipmp.core.types import Family

STALE_REPORTS = 2
"""Reports that may still show a route where it was before a move the stack has done."""

RouteKey = tuple[Family, str, int, str, int]
"""What names a route apart from its device: family, destination, prefix length, gateway, metric."""


def route_key(route: Route) -> RouteKey:
    """The name of ``route`` without its device."""
    return (route.family, route.destination, route.prefixlen, route.gateway, route.metric)


@dataclass(frozen=True)
class DisplacedRoute:
    """A route living away from its home member (saved across restarts)."""

    family: Family
    destination: str
    prefixlen: int
    gateway: str
    metric: int
    at: str
    home: str


class RouteFollower:
    """The engine's view of the main table's routes, and where each belongs."""

    def __init__(self) -> None:
        self.view: list[Route] = []
        self.displaced: dict[tuple[RouteKey, str], str] = {}
        self.in_flight: list[MoveRoute] = []
        # Done, but no report has shown the route on its new member yet:
        # move -> reports that did not (at most STALE_REPORTS).
        self.unconfirmed: dict[MoveRoute, int] = {}
        self.refused: set[MoveRoute] = set()
        self.dirty = False

    # -------------------------------------------------------------- inputs

    def observe(self, routes: Sequence[Route]) -> None:
        """The stack reported the whole table.

        A report may predate a move still on its way, or one just done (the
        simulated host queues a report per move; a Linux dump may have begun
        before the move): such a route is taken to be where the move put it
        until a report shows it there, at most ``STALE_REPORTS`` times.
        """
        view = list(routes)
        present = {(route_key(r), r.ifname) for r in view}
        reported = set(present)
        for move in list(self.unconfirmed):
            key = _move_key(move)
            misses = self.unconfirmed[move] + 1
            if (key, move.to_if) in reported or (key, move.from_if) not in reported:
                del self.unconfirmed[move]  # seen where it went (or gone, or moved by others)
            elif misses > STALE_REPORTS:
                del self.unconfirmed[move]
            else:
                self.unconfirmed[move] = misses
        for move in [*self.unconfirmed, *self.in_flight]:  # oldest first
            key = _move_key(move)
            if (key, move.from_if) in present and (key, move.to_if) not in present:
                view = [
                    _moved(r, move.to_if) if (route_key(r), r.ifname) == (key, move.from_if) else r
                    for r in view
                ]
                present = {(route_key(r), r.ifname) for r in view}
        self.view = view
        # A route that is gone has no home to go back to.
        self.displaced = {k: home for k, home in self.displaced.items() if k in present}
        self.refused.clear()
        self.dirty = True

    def outcome(self, action: MoveRoute, ok: bool) -> None:
        """The stack carried out (or refused) a ``MoveRoute``."""
        if action in self.in_flight:
            self.in_flight.remove(action)
        if ok:
            self.unconfirmed[action] = 0
            return
        # Still where it was: put the view and the home back, and do not
        # ask again until the table changes.
        key = _move_key(action)
        home = self.displaced.pop((key, action.to_if), action.from_if)
        self.view = [
            _moved(r, action.from_if) if (route_key(r), r.ifname) == (key, action.to_if) else r
            for r in self.view
        ]
        if home != action.from_if:
            self.displaced[(key, action.from_if)] = home
        self.refused.add(action)

    # -------------------------------------------------------------- saved state

    def export(self) -> list[dict[str, Any]]:
        """The displaced routes as JSON data."""
        return [
            {
                "family": key[0],
                "destination": key[1],
                "prefixlen": key[2],
                "gateway": key[3],
                "metric": key[4],
                "at": at,
                "home": home,
            }
            for (key, at), home in sorted(self.displaced.items())
        ]

    def restore(self, saved: Iterable[DisplacedRoute]) -> None:
        """Take the homes of a saved state (a restart)."""
        for d in saved:
            key: RouteKey = (d.family, d.destination, d.prefixlen, d.gateway, d.metric)
            self.displaced[(key, d.at)] = d.home
        self.dirty = True

    # -------------------------------------------------------------- the plan

    def plan(self, table: HostTable) -> list[MoveRoute]:
        """The moves that put every route where the group wants it."""
        self.dirty = False
        actions: list[MoveRoute] = []
        view: list[Route] = []
        for route in self.view:
            target = self._place(table, route)
            if target is None or target == route.ifname:
                view.append(route)
                continue
            key = route_key(route)
            home = self.displaced.pop((key, route.ifname), route.ifname)
            move = MoveRoute(
                route.family,
                route.destination,
                route.prefixlen,
                route.gateway,
                route.metric,
                route.ifname,
                target,
            )
            if move in self.refused:
                if home != route.ifname:
                    self.displaced[(key, route.ifname)] = home
                view.append(route)
                continue
            if target != home:
                self.displaced[(key, target)] = home
            for older in [m for m in self.unconfirmed if _move_key(m) == key]:
                del self.unconfirmed[older]  # this move says where it goes now
            self.in_flight.append(move)
            actions.append(move)
            view.append(_moved(route, target))
        # No log line: Solaris' kernel moves routes silently too (and the
        # guide's failover messages stay exactly as it prints them); a move
        # the stack refuses is logged with its reason.
        self.view = view
        return actions

    def _place(self, table: HostTable, route: Route) -> str | None:
        """Where ``route`` belongs now; None if it is not ours to move."""
        at = table.nics.get(route.ifname) if route.ifname else None
        if at is None or not at.group or route.automatic or _in_data_subnet(table, at, route):
            return None
        key = route_key(route)
        home = table.nics.get(self.displaced.get((key, route.ifname), route.ifname))
        if home is None or home.group != at.group:
            # The home left the group (or the host): the route lives here now.
            self.displaced.pop((key, route.ifname), None)
            home = at
        if home.usable and route.family in home.instances:
            return home.name
        if at.usable:
            return at.name  # displaced already, onto a member that works
        return _healthy_member(table, home, route.family) or at.name


def _healthy_member(table: HostTable, home: Nic, family: Family) -> str | None:
    """A usable member of ``home``'s group for ``family``; None in a group failure.

    The member that took ``home``'s data addresses comes first (so the route
    and the source addresses it is used with leave together), then an
    active member, then any.
    """
    candidates = [
        m for m in table.members(home.group) if m is not home and m.usable and family in m.instances
    ]
    if not candidates:
        return None

    def rank(m: Nic) -> tuple[bool, bool]:
        took = any(li.home == home.name and li.is_data for li in m.addresses(family))
        return (not took, m.inactive)

    return min(candidates, key=rank).name


def _in_data_subnet(table: HostTable, nic: Nic, route: Route) -> bool:
    """A device route inside a data subnet of the group: the kernel's or the spreading's."""
    if route.gateway:
        return False
    try:
        network = ipaddress.ip_network(f"{route.destination}/{route.prefixlen}", strict=False)
    except ValueError:
        return False
    for member in table.members(nic.group):
        for li in member.addresses(route.family):
            if li.is_data and network.subnet_of(li.network()):  # type: ignore[arg-type]
                return True
    return False


def _moved(route: Route, ifname: str) -> Route:
    return replace(route, ifname=ifname)


def _move_key(move: MoveRoute) -> RouteKey:
    return (move.family, move.destination, move.prefixlen, move.gateway, move.metric)


def displaced_from_state(raw: Any) -> tuple[DisplacedRoute, ...]:
    """The ``routes`` list of a saved state; ``IpmpError`` names a bad entry."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise IpmpError("state: routes: expected a list")
    out: list[DisplacedRoute] = []
    for i, entry in enumerate(raw):
        where = f"routes[{i}]"
        if not isinstance(entry, dict):
            raise IpmpError(f"state: {where}: expected an object")
        family = entry.get("family")
        if family not in ("inet", "inet6"):
            raise IpmpError(f"state: {where}.family: expected inet or inet6, got {family!r}")
        values: dict[str, Any] = {}
        for name, kind in (
            ("destination", str),
            ("prefixlen", int),
            ("gateway", str),
            ("metric", int),
            ("at", str),
            ("home", str),
        ):
            value = entry.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                raise IpmpError(f"state: {where}.{name}: expected {kind.__name__}, got {value!r}")
            values[name] = value
        fam: Family = "inet" if family == "inet" else "inet6"
        out.append(DisplacedRoute(fam, **values))
    return tuple(out)


# ---------------------------------------------------------------- /etc/defaultrouter


@dataclass(frozen=True)
class DefaultRouters:
    """The routers of ``/etc/defaultrouter`` and the complaints about its bad lines."""

    routers: tuple[tuple[Family, str], ...]
    messages: tuple[Log, ...]


def parse_defaultrouter(
    text: str, resolve: Callable[[str], str | None], name: str = "/etc/defaultrouter"
) -> DefaultRouters:
    """One router per line, an address or a hosts-file name; ``#`` starts a comment.

    A bad line is reported (naming the file and the line) and skipped; the
    rest still applies.
    """
    routers: list[tuple[Family, str]] = []
    messages: list[Log] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) > 1:
            messages.append(
                Log(
                    LOG_WARNING,
                    f"{name}: line {number}: expected one router per line, got "
                    f"{' '.join(fields)!r}; skipped",
                )
            )
            continue
        word = fields[0]
        address = _address(word) or _address(resolve(word) or "")
        if address is None:
            messages.append(
                Log(
                    LOG_WARNING,
                    f"{name}: line {number}: {word!r} is neither an address nor a name in "
                    "/etc/inet/hosts; skipped",
                )
            )
            continue
        entry: tuple[Family, str] = (
            "inet" if ipaddress.ip_address(address).version == 4 else "inet6",
            address,
        )
        if entry not in routers:
            routers.append(entry)
    return DefaultRouters(tuple(routers), tuple(messages))


def _address(word: str) -> str | None:
    try:
        parsed = ipaddress.ip_address(word)
    except ValueError:
        return None
    if parsed.is_unspecified or parsed.is_multicast:
        return None
    return str(parsed)


def router_member(table: HostTable, family: Family, router: str) -> str:
    """The member whose data subnet holds ``router`` (a usable one first); "" if none."""
    ip = ipaddress.ip_address(router)
    holders = [
        nic
        for nic in table.ordered()
        if nic.present
        and any(
            li.is_data and not li.unspecified and ip in li.network() for li in nic.addresses(family)
        )
    ]
    usable = [nic for nic in holders if nic.usable]
    chosen = (usable or holders)[:1]
    return chosen[0].name if chosen else ""
