"""The simulated host's hardware and network, read from a TOML file.

A topology describes what an administrator cannot change with ``ifconfig``:
the host's NICs (with their MAC, media, MTU and STREAMS modules), the IP links
(broadcast domains) their cables go to, the routers and hosts on each link that
answer ICMP echo, and the static routes present at boot.  It may also carry the
``/etc`` files the daemon reads (``hostname.<if>``, ``hostname6.<if>``,
``default/mpathd``), so that one file describes a whole guide example.

VLANs follow the Solaris naming convention (guide: "bge1000 is VLAN 1 on
bge0"): an interface whose PPA is 1000 or more is VLAN ``PPA // 1000`` on the
device ``driver + str(PPA % 1000)``.  The device must itself be declared as a
``[[nic]]``: it owns the cable (and the switch port) that the VLAN rides on,
and the VLAN interface takes its MAC, media and MTU unless told otherwise.  A
VLAN interface's ``link`` names the VLAN's own IP link.

Every error is an ``IpmpError`` whose one line names the file, the key (as a
path such as ``nic[1].mac``) and what was expected.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ipmp.core.constants import IFNAME_MAX
from ipmp.core.errors import IpmpError
from ipmp.core.types import Family

Role = Literal["router", "host"]

LOOPBACK_INDEX = 1
"""lo0 always has interface index 1; NICs are numbered from 2 in file order."""

VLAN_PPA_BASE = 1000
"""Solaris VLAN PPA convention: PPA = VLAN id * 1000 + device PPA."""

MAX_VLAN_ID = 4094

_NIC_NAME = re.compile(r"^([a-z][a-z0-9_]*[a-z_])(0|[1-9][0-9]*)$")
_LINK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_HOST_NAME = re.compile(
    r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_MODULE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_MEDIA_NAME = re.compile(r"^[a-z][a-z0-9]*$")


@dataclass(frozen=True)
class NeighbourSpec:
    """A system on an IP link that answers ICMP echo: a router or a host.

    ``address`` / ``address6`` are "" when the neighbour does not speak that
    family; ``address6`` is always link-local, as in.mpathd only accepts
    IPv6 replies from link-local sources (mpathd-facts 1.7).
    """

    name: str
    role: Role
    address: str
    address6: str
    rtt_ms: float
    jitter_ms: float
    loss: float
    answers_multicast: bool
    default_route: bool

    def address_of(self, family: Family) -> str:
        """The neighbour's address in ``family`` ("" if it has none)."""
        return self.address if family == "inet" else self.address6


@dataclass(frozen=True)
class LinkSpec:
    """An IP link (one broadcast domain; each VLAN is its own link)."""

    name: str
    neighbours: tuple[NeighbourSpec, ...]


@dataclass(frozen=True)
class NicSpec:
    """A network interface of the host.

    For a VLAN interface ``device`` names the physical NIC that carries it and
    ``vlan`` is its VLAN id; for a physical NIC ``device`` is its own name and
    ``vlan`` is 0.  ``link`` is the IP link the interface reaches ("" for
    none: a cable into a port where nobody answers).  ``hostname`` and
    ``hostname6`` are the contents of its ``/etc`` files, None when absent.
    """

    name: str
    index: int
    mac: str
    media: str
    mtu: int
    link: str
    modules: tuple[str, ...]
    present: bool
    hostname: str | None
    hostname6: str | None
    device: str
    vlan: int

    @property
    def is_vlan(self) -> bool:
        """True for a VLAN interface (``bge1000``), False for a physical NIC."""
        return self.vlan != 0


@dataclass(frozen=True)
class RouteSpec:
    """A static route present at boot (``route add -host T T -static``)."""

    family: Family
    destination: str
    prefixlen: int
    gateway: str
    ifname: str


@dataclass(frozen=True)
class Topology:
    """A whole simulated host: its name, NICs, links, routes and ``/etc`` files."""

    source: str
    name: str
    seed: int
    mpathd: str | None
    links: tuple[LinkSpec, ...]
    nics: tuple[NicSpec, ...]
    routes: tuple[RouteSpec, ...]

    def nic(self, name: str) -> NicSpec:
        """The NIC called ``name``; ``KeyError`` if there is none."""
        for nic in self.nics:
            if nic.name == name:
                return nic
        raise KeyError(name)

    def link(self, name: str) -> LinkSpec:
        """The link called ``name``; ``KeyError`` if there is none."""
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(name)

    def vlans_of(self, device: str) -> tuple[NicSpec, ...]:
        """The VLAN interfaces carried by ``device``, in file order."""
        return tuple(nic for nic in self.nics if nic.is_vlan and nic.device == device)

    def etc_files(self) -> dict[str, str]:
        """The ``/etc`` files this topology carries, by path relative to the root.

        Files are listed per NIC in file order (``hostname`` then ``hostname6``),
        then ``etc/default/mpathd``.  Absent NICs keep their files: that is how
        an interface missing at boot is noticed (guide: Detecting Physical
        Interface Repairs / missing at boot).
        """
        files: dict[str, str] = {}
        for nic in self.nics:
            if nic.hostname is not None:
                files[f"etc/hostname.{nic.name}"] = _as_file(nic.hostname)
            if nic.hostname6 is not None:
                files[f"etc/hostname6.{nic.name}"] = _as_file(nic.hostname6)
        if self.mpathd is not None:
            files["etc/default/mpathd"] = _as_file(self.mpathd)
        return files


def _as_file(text: str) -> str:
    # Solaris tools read these files line by line; an unterminated last line
    # is easy to produce in TOML and harmless to fix.
    return text if text == "" or text.endswith("\n") else text + "\n"


def write_etc(topology: Topology, root: Path, overwrite: bool = False) -> list[Path]:
    """Write the topology's ``/etc`` files under ``root``; return the paths written.

    A file that already exists is left alone unless ``overwrite`` is true:
    what the administrator wrote under the root wins over the topology.

    Raises:
        IpmpError: a file cannot be written.
    """
    from ipmp.daemon.safedirs import create_exclusive, ensure_dirs

    written: list[Path] = []
    for rel, text in topology.etc_files().items():
        path = root / rel
        try:
            ensure_dirs(path.parent)
            if overwrite and os.path.lexists(path):
                os.unlink(path)  # the name itself, never what a link there points to
            try:
                fd = create_exclusive(path, 0o644)
            except FileExistsError:
                continue  # the administrator's file (or link) stays
            try:
                os.write(fd, text.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as exc:
            raise IpmpError(f"{path}: cannot write: {exc.strerror or exc}") from exc
        written.append(path)
    return written


def load_topology(path: str | Path) -> Topology:
    """Read and check a topology file.

    Raises:
        IpmpError: the file cannot be read or does not describe a valid topology.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise IpmpError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise IpmpError(f"{source}: not UTF-8 text: {exc.reason}") from exc
    return parse_topology(text, source)


def parse_topology(text: str, source: str) -> Topology:
    """Parse topology TOML ``text``; ``source`` names it in error messages.

    Raises:
        IpmpError: the text is not TOML or does not describe a valid topology.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise IpmpError(f"{source}: invalid TOML: {_one_line(str(exc))}") from exc
    return _Parser(source).topology(data)


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _Table:
    """One TOML table being read: typed getters that name the key on error.

    Every key read is remembered so that ``finish`` can reject the rest as
    unknown: a misspelt key must not be silently ignored.
    """

    def __init__(self, source: str, path: str, data: Mapping[str, Any], allowed: tuple[str, ...]):
        self.source = source
        self.path = path
        self.data = data
        self.allowed = allowed
        for key in data:
            if key not in allowed:
                raise self.error(key, f"unknown key (expected one of: {', '.join(allowed)})")

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str, message: str) -> IpmpError:
        return IpmpError(f"{self.source}: {self.key(key)}: {message}")

    def expected(self, key: str, what: str, value: object) -> IpmpError:
        return self.error(key, f"expected {what}, got {_show(value)}")

    def has(self, key: str) -> bool:
        return key in self.data

    def string(self, key: str, default: str | None = None, what: str = "a string") -> str:
        if key not in self.data:
            if default is None:
                raise self.error(key, f"missing (expected {what})")
            return default
        value = self.data[key]
        if not isinstance(value, str):
            raise self.expected(key, what, value)
        return value

    def optional_text(self, key: str) -> str | None:
        if key not in self.data:
            return None
        value = self.data[key]
        if not isinstance(value, str) or "\0" in value:
            raise self.expected(key, "a string (the file's contents)", value)
        return value

    def integer(self, key: str, default: int, lo: int, hi: int, what: str) -> int:
        if key not in self.data:
            return default
        value = self.data[key]
        # bool is an int subclass in Python; `mtu = true` is a mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise self.expected(key, what, value)
        return value

    def number(self, key: str, default: float, lo: float, hi: float, what: str) -> float:
        if key not in self.data:
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.expected(key, what, value)
        number = float(value)
        if not lo <= number <= hi:
            raise self.expected(key, what, value)
        return number

    def boolean(self, key: str, default: bool) -> bool:
        if key not in self.data:
            return default
        value = self.data[key]
        if not isinstance(value, bool):
            raise self.expected(key, "true or false", value)
        return value

    def strings(self, key: str, what: str) -> list[str] | None:
        if key not in self.data:
            return None
        value = self.data[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.expected(key, what, value)
        return list(value)

    def subtable(self, key: str, allowed: tuple[str, ...]) -> _Table | None:
        if key not in self.data:
            return None
        value = self.data[key]
        if not isinstance(value, dict):
            raise self.expected(key, f"a table ([{self.key(key)}])", value)
        return _Table(self.source, self.key(key), value, allowed)

    def array(self, key: str, allowed: tuple[str, ...]) -> list[_Table]:
        if key not in self.data:
            return []
        value = self.data[key]
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.expected(key, f"an array of tables ([[{self.key(key)}]])", value)
        return [
            _Table(self.source, f"{self.key(key)}[{i}]", item, allowed)
            for i, item in enumerate(value)
        ]


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


_TOP_KEYS = ("host", "mpathd", "link", "nic", "route")
_HOST_KEYS = ("name", "seed")
_MPATHD_KEYS = ("text",)
_LINK_KEYS = ("name", "neighbour")
_NEIGHBOUR_KEYS = (
    "name",
    "role",
    "address",
    "address6",
    "rtt_ms",
    "jitter_ms",
    "loss",
    "answers_multicast",
    "default_route",
)
_NIC_KEYS = (
    "name",
    "mac",
    "media",
    "mtu",
    "link",
    "modules",
    "present",
    "hostname",
    "hostname6",
)
_ROUTE_KEYS = ("family", "destination", "prefixlen", "gateway", "ifname")


def split_ifname(name: str) -> tuple[str, int] | None:
    """Split a Solaris interface name into driver and PPA (``e1000g0`` -> ``e1000g``, 0)."""
    match = _NIC_NAME.match(name)
    if match is None:
        return None
    return match.group(1), int(match.group(2))


class _Parser:
    """Turns the decoded TOML into a checked ``Topology``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def topology(self, data: dict[str, Any]) -> Topology:
        top = _Table(self.source, "", data, _TOP_KEYS)
        host = top.subtable("host", _HOST_KEYS)
        if host is None:
            raise top.error("host", "missing (expected a [host] table with the host's name)")
        name = host.string("name", what="a host name such as host1")
        if not _HOST_NAME.match(name):
            raise host.expected("name", "a host name such as host1", name)
        seed = host.integer("seed", 1, -(2**63), 2**63 - 1, "an integer")

        mpathd_text: str | None = None
        mpathd = top.subtable("mpathd", _MPATHD_KEYS)
        if mpathd is not None:
            mpathd_text = mpathd.optional_text("text")
            if mpathd_text is None:
                raise mpathd.error("text", "missing (expected the file's contents)")

        links = self.links(top.array("link", _LINK_KEYS))
        nics = self.nics(top.array("nic", _NIC_KEYS), links)
        routes = self.routes(top.array("route", _ROUTE_KEYS), nics)
        return Topology(
            source=self.source,
            name=name,
            seed=seed,
            mpathd=mpathd_text,
            links=links,
            nics=nics,
            routes=routes,
        )

    def links(self, tables: list[_Table]) -> tuple[LinkSpec, ...]:
        links: list[LinkSpec] = []
        link_names: set[str] = set()
        neighbour_names: set[str] = set()
        for table in tables:
            name = table.string("name", what="a link name such as net0")
            if not _LINK_NAME.match(name):
                raise table.expected("name", "a link name such as net0", name)
            if name in link_names:
                raise table.error("name", f"duplicate link name {name!r}")
            link_names.add(name)
            neighbours: list[NeighbourSpec] = []
            seen: set[str] = set()
            for sub in table.array("neighbour", _NEIGHBOUR_KEYS):
                neighbour = self.neighbour(sub)
                if neighbour.name in neighbour_names:
                    raise sub.error("name", f"duplicate neighbour name {neighbour.name!r}")
                neighbour_names.add(neighbour.name)
                for key, address in (
                    ("address", neighbour.address),
                    ("address6", neighbour.address6),
                ):
                    if address and address in seen:
                        raise sub.error(key, f"duplicate address {address} on link {name!r}")
                    if address:
                        seen.add(address)
                neighbours.append(neighbour)
            links.append(LinkSpec(name=name, neighbours=tuple(neighbours)))
        return tuple(links)

    def neighbour(self, table: _Table) -> NeighbourSpec:
        name = table.string("name", what="a neighbour name such as router1")
        if not _LINK_NAME.match(name):
            raise table.expected("name", "a neighbour name such as router1", name)
        role_text = table.string("role", what='"router" or "host"')
        role: Role
        if role_text == "router":
            role = "router"
        elif role_text == "host":
            role = "host"
        else:
            raise table.expected("role", '"router" or "host"', role_text)
        address = ""
        if table.has("address"):
            address = _ipv4(table, "address", table.string("address"), unicast=True)
        address6 = ""
        if table.has("address6"):
            text = table.string("address6")
            what = "an IPv6 link-local address such as fe80::1"
            try:
                parsed6 = ipaddress.IPv6Address(text)
            except ValueError:
                raise table.expected("address6", what, text) from None
            if not parsed6.is_link_local:
                raise table.expected("address6", what, text)
            address6 = str(parsed6)
        if not address and not address6:
            raise table.error("address", "missing (expected address, address6 or both)")
        rtt_ms = table.number("rtt_ms", 0.5, 0.0, 3_600_000.0, "a round-trip time in ms (>= 0)")
        jitter_ms = table.number("jitter_ms", 0.0, 0.0, 3_600_000.0, "a jitter in ms (>= 0)")
        loss = table.number("loss", 0.0, 0.0, 1.0, "a fraction from 0 to 1")
        answers_multicast = table.boolean("answers_multicast", True)
        default_route = table.boolean("default_route", role == "router")
        if default_route and role != "router":
            raise table.error("default_route", "only a router can be a default route")
        return NeighbourSpec(
            name=name,
            role=role,
            address=address,
            address6=address6,
            rtt_ms=rtt_ms,
            jitter_ms=jitter_ms,
            loss=loss,
            answers_multicast=answers_multicast,
            default_route=default_route,
        )

    def nics(self, tables: list[_Table], links: tuple[LinkSpec, ...]) -> tuple[NicSpec, ...]:
        link_names = {link.name for link in links}
        what_name = f"an interface name such as hme0 (driver then PPA, at most {IFNAME_MAX} chars)"
        # First pass: names, so that a VLAN may be declared before its device.
        names: list[tuple[str, str, int]] = []
        by_name: dict[str, _Table] = {}
        for table in tables:
            name = table.string("name", what=what_name)
            parts = split_ifname(name)
            if parts is None or len(name) > IFNAME_MAX or name == "lo0":
                raise table.expected("name", what_name, name)
            if name in by_name:
                raise table.error("name", f"duplicate interface name {name!r}")
            by_name[name] = table
            names.append((name, *parts))

        placement: dict[str, tuple[int, str]] = {}
        for name, driver, ppa in names:
            table = by_name[name]
            vlan, device = 0, name
            if ppa >= VLAN_PPA_BASE:
                vlan, device = ppa // VLAN_PPA_BASE, f"{driver}{ppa % VLAN_PPA_BASE}"
                if vlan > MAX_VLAN_ID:
                    raise table.expected("name", f"a VLAN id of at most {MAX_VLAN_ID}", name)
                if device not in by_name:
                    raise table.error(
                        "name",
                        f"{name} is VLAN {vlan} on {device}, which is not declared as a [[nic]]",
                    )
            placement[name] = (vlan, device)

        nics: list[NicSpec] = []
        for position, (name, driver, _ppa) in enumerate(names):
            table = by_name[name]
            vlan, device = placement[name]

            def physical(key: str, table: _Table = table, device: str = device) -> _Table:
                # A VLAN rides on its device's hardware: unless the VLAN's own
                # table says otherwise, it has the device's MAC, media and MTU.
                return table if table.has(key) else by_name[device]

            media = _read_media(physical("media"))
            mac = _read_mac(physical("mac"), media)
            mtu = physical("mtu").integer("mtu", 1500, 68, 65535, "an MTU from 68 to 65535")
            link = table.string("link", "")
            if link and link not in link_names:
                known = ", ".join(sorted(link_names)) or "none declared"
                raise table.expected("link", f"the name of a [[link]] ({known})", link)
            modules_list = table.strings("modules", "a list of STREAMS module names, top first")
            if modules_list is None:
                modules: tuple[str, ...] = ("arp", "ip", driver)
            else:
                if not modules_list or not all(_MODULE_NAME.match(m) for m in modules_list):
                    raise table.expected(
                        "modules", "a list of STREAMS module names, top first", modules_list
                    )
                modules = tuple(modules_list)
            nics.append(
                NicSpec(
                    name=name,
                    index=LOOPBACK_INDEX + 1 + position,
                    mac=mac,
                    media=media,
                    mtu=mtu,
                    link=link,
                    modules=modules,
                    present=table.boolean("present", True),
                    hostname=table.optional_text("hostname"),
                    hostname6=table.optional_text("hostname6"),
                    device=device,
                    vlan=vlan,
                )
            )
        return tuple(nics)

    def routes(self, tables: list[_Table], nics: tuple[NicSpec, ...]) -> tuple[RouteSpec, ...]:
        nic_names = {nic.name for nic in nics}
        routes: list[RouteSpec] = []
        for table in tables:
            family_text = table.string("family", "inet")
            family: Family
            if family_text == "inet":
                family = "inet"
            elif family_text == "inet6":
                family = "inet6"
            else:
                raise table.expected("family", '"inet" or "inet6"', family_text)
            bits = 32 if family == "inet" else 128
            destination = _address(table, "destination", table.string("destination"), family)
            prefixlen = table.integer(
                "prefixlen", bits, 0, bits, f"a prefix length from 0 to {bits}"
            )
            try:
                network = ipaddress.ip_network(f"{destination}/{prefixlen}", strict=True)
            except ValueError:
                raise table.expected(
                    "destination", f"a network address for prefix length {prefixlen}", destination
                ) from None
            gateway = ""
            if table.has("gateway"):
                gateway = _address(table, "gateway", table.string("gateway"), family)
            ifname = table.string("ifname", "")
            if ifname and ifname not in nic_names:
                raise table.expected("ifname", "the name of a [[nic]]", ifname)
            if (
                family == "inet6"
                and gateway
                and ipaddress.IPv6Address(gateway).is_link_local
                and not ifname
            ):
                raise table.error("ifname", "missing (a link-local gateway needs an interface)")
            route = RouteSpec(
                family=family,
                destination=str(network.network_address),
                prefixlen=prefixlen,
                gateway=gateway,
                ifname=ifname,
            )
            if route in routes:
                raise table.error("destination", f"duplicate route to {destination}/{prefixlen}")
            routes.append(route)
        return tuple(routes)


def _read_media(table: _Table) -> str:
    media = table.string("media", "ether")
    if not _MEDIA_NAME.match(media):
        raise table.expected("media", "a media name such as ether", media)
    return media


def _read_mac(table: _Table, media: str) -> str:
    what = "a MAC address such as 8:0:20:b9:19:fa"
    text = table.string("mac", what=what)
    parts = text.split(":")
    if not 1 <= len(parts) <= 20 or not all(re.fullmatch(r"[0-9A-Fa-f]{1,2}", p) for p in parts):
        raise table.expected("mac", what, text)
    if media == "ether" and len(parts) != 6:
        raise table.expected("mac", "a 6-octet Ethernet address such as 8:0:20:b9:19:fa", text)
    # Solaris prints MACs in lowercase without leading zeros (8:0:20:b9:19:fa).
    return ":".join(f"{int(p, 16):x}" for p in parts)


def _ipv4(table: _Table, key: str, text: str, unicast: bool) -> str:
    what = "an IPv4 unicast address" if unicast else "an IPv4 address"
    try:
        parsed = ipaddress.IPv4Address(text)
    except ValueError:
        raise table.expected(key, what, text) from None
    if unicast and (
        parsed.is_multicast or parsed.is_unspecified or parsed.is_loopback or parsed.is_reserved
    ):
        raise table.expected(key, what, text)
    return str(parsed)


def _address(table: _Table, key: str, text: str, family: Family) -> str:
    if family == "inet":
        return _ipv4(table, key, text, unicast=False)
    try:
        return str(ipaddress.IPv6Address(text))
    except ValueError:
        raise table.expected(key, "an IPv6 address", text) from None
