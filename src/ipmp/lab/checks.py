"""What a topology must satisfy before the lab builds it on a real kernel.

The simulator accepts any address; the lab puts addresses on real interfaces
of a shared machine, so it insists on the documentation ranges (RFC 5737 and
RFC 3849) plus IPv6 link-local, which never leaves the lab's own links:

* every neighbour ``address`` / ``address6``,
* every address written in a ``hostname`` / ``hostname6`` file (data and test
  addresses, ``addif`` / ``removeif`` arguments, ``broadcast`` addresses),
  read with the same parser the daemon uses,
* every ``[[route]]`` destination (the default route is allowed) and gateway.

It also refuses what this kernel cannot build: VLAN interfaces (PPA >= 1000;
the lab kernel has no 802.1Q, so VLANs stay simulator-only) and media other
than Ethernet (the NICs are veth pairs).  Host names in hostname files are
refused too: the lab resolves nothing, so it could not check where they point.

Every refusal is a one-line ``IpmpError`` naming the file and the key.
"""

from __future__ import annotations

import ipaddress

from ipmp.core.errors import IpmpError
from ipmp.core.hostname_files import hostname_file_name, load_hostname_file
from ipmp.core.ifconfig_grammar import AddIf, RemoveIf, SetAddress, SetBroadcast
from ipmp.core.types import Family
from ipmp.sim.topology import Topology

ALLOWED_V4 = (
    ipaddress.IPv4Network("192.0.2.0/24"),
    ipaddress.IPv4Network("198.51.100.0/24"),
    ipaddress.IPv4Network("203.0.113.0/24"),
)
"""RFC 5737 TEST-NET-1, -2 and -3: the only IPv4 networks the lab uses."""

ALLOWED_V6 = (ipaddress.IPv6Network("2001:db8::/32"),)
"""RFC 3849 documentation prefix: the only global IPv6 network the lab uses."""

LINK_LOCAL_V6 = ipaddress.IPv6Network("fe80::/10")

RANGES_TEXT = "192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32 or fe80::/10"


def address_allowed(address: str) -> bool:
    """Whether ``address`` (an IPv4 or IPv6 literal) lies in the lab's ranges."""
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv4Address):
        return any(parsed in net for net in ALLOWED_V4)
    return parsed in LINK_LOCAL_V6 or any(parsed in net for net in ALLOWED_V6)


def network_allowed(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    """Whether a route destination is the default route or lies inside the lab's ranges."""
    if network.prefixlen == 0:
        return True
    if isinstance(network, ipaddress.IPv4Network):
        return any(network.subnet_of(net) for net in ALLOWED_V4)
    return network.subnet_of(LINK_LOCAL_V6) or any(network.subnet_of(n) for n in ALLOWED_V6)


def _outside(where: str, address: str) -> IpmpError:
    return IpmpError(
        f"{where}: {address} is outside the lab's address ranges (expected {RANGES_TEXT})"
    )


def check_topology(topology: Topology) -> None:
    """Refuse a topology the lab must not or cannot build.

    Raises:
        IpmpError: one line naming the file, the key and what was expected.
    """
    source = topology.source
    names: dict[str, str] = {}
    for li, link in enumerate(topology.links):
        for ni, neighbour in enumerate(link.neighbours):
            key = f"{source}: link[{li}].neighbour[{ni}]"
            for field, address in (
                ("address", neighbour.address),
                ("address6", neighbour.address6),
                ("global6", neighbour.global6),
                *(
                    (f"offlink[{k}].{name}", value)
                    for k, peer in enumerate(neighbour.offlink)
                    for name, value in (("address", peer.address), ("address6", peer.address6))
                ),
            ):
                if address and not address_allowed(address):
                    raise _outside(f"{key}.{field}", address)
            names[neighbour.name] = f"link[{li}].neighbour[{ni}]"
            for k, peer in enumerate(neighbour.offlink):
                if peer.name in names:
                    raise IpmpError(
                        f"{key}.offlink[{k}].name: {peer.name} is also the name of "
                        f"{names[peer.name]}; names must differ"
                    )
                names[peer.name] = f"link[{li}].neighbour[{ni}].offlink[{k}]"
    for position, nic in enumerate(topology.nics):
        key = f"{source}: nic[{position}]"
        if nic.is_vlan:
            raise IpmpError(
                f"{key}.name: {nic.name} is VLAN {nic.vlan} on {nic.device}; the lab kernel "
                "has no 802.1Q support, so VLANs are simulator-only (ipmp sim)"
            )
        if nic.media != "ether":
            raise IpmpError(
                f"{key}.media: {nic.media!r}: the lab's NICs are veth pairs; expected ether"
            )
        if int(nic.mac.split(":")[0], 16) & 1:
            raise IpmpError(
                f"{key}.mac: {nic.mac} is a multicast address; expected a unicast Ethernet address"
            )
        if nic.name in names:
            raise IpmpError(
                f"{key}.name: {nic.name} is also the name of {names[nic.name]}; "
                "the lab's faults name NICs and neighbours alike, so names must differ"
            )
        files: tuple[tuple[Family, str | None], ...] = (
            ("inet", nic.hostname),
            ("inet6", nic.hostname6),
        )
        for family, text in files:
            if text is not None:
                _check_hostname_file(key, nic.name, family, text)
    for position, route in enumerate(topology.routes):
        key = f"{source}: route[{position}]"
        network = ipaddress.ip_network(f"{route.destination}/{route.prefixlen}")
        if not network_allowed(network):
            raise _outside(f"{key}.destination", f"{route.destination}/{route.prefixlen}")
        if route.gateway and not address_allowed(route.gateway):
            raise _outside(f"{key}.gateway", route.gateway)


def _check_hostname_file(key: str, ifname: str, family: Family, text: str) -> None:
    filename = hostname_file_name(ifname, family)
    field = "hostname" if family == "inet" else "hostname6"
    try:
        parsed = load_hostname_file(text, filename)
    except IpmpError as err:
        raise IpmpError(f"{key}.{field}: {err.message}") from None
    for command, line in zip(parsed.commands, parsed.lines, strict=True):
        where = f"{key}.{field} ({filename} line {line})"
        for op in command.ops:
            if not isinstance(op, SetAddress | AddIf | RemoveIf | SetBroadcast):
                continue
            address = op.address
            if address is None:  # broadcast +
                continue
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise IpmpError(
                    f"{where}: {address!r} is a host name; the lab needs literal addresses "
                    f"(from {RANGES_TEXT})"
                ) from None
            if not address_allowed(address):
                raise _outside(where, address)
