"""The simulated Solaris host: a topology file and a ``Stack`` built from it.

``topology`` reads the TOML description of a host (NICs, IP links, neighbours,
routes, ``/etc`` files); ``host.SimHost`` turns it into a deterministic,
virtual-time network stack that the engine drives like a real kernel.
"""

from ipmp.sim.host import SimAddress, SimHost
from ipmp.sim.topology import (
    LinkSpec,
    NeighbourSpec,
    NicSpec,
    RouteSpec,
    Topology,
    load_topology,
    parse_topology,
    write_etc,
)

__all__ = [
    "LinkSpec",
    "NeighbourSpec",
    "NicSpec",
    "RouteSpec",
    "SimAddress",
    "SimHost",
    "Topology",
    "load_topology",
    "parse_topology",
    "write_etc",
]
