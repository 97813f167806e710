"""``ipmp sim ...``: fault injection on the simulated host of a running daemon."""

from __future__ import annotations

import errno
import math
from collections.abc import Callable, Sequence

from ipmp.core.errors import IpmpError
from ipmp.core.types import Family
from ipmp.sim.host import SimHost

USAGE = (
    "ipmp sim link IF up|down | loss IF PERCENT | drop IF on|off | target ADDR up|down | "
    "rtt ADDR MS | unplug IF | plug IF | disk full|readonly|nofiles|ok | "
    "addr add|del IF ADDR[/LEN]"
)
DISK_FAULTS: dict[str, int | None] = {
    "full": errno.ENOSPC,
    "readonly": errno.EROFS,
    "nofiles": errno.EMFILE,
    "ok": None,
}
"""``sim disk``: the errno the daemon's state writes then fail with (None: they work)."""
MAX_SIM_RTT_MS = 60_000.0
"""A neighbour slower than a minute is as good as down: say so with `target ADDR down`."""


def _switch(word: str, on: str, off: str, what: str) -> bool:
    if word == on:
        return True
    if word == off:
        return False
    raise IpmpError(f"sim {what}: {word!r}: expected {on} or {off}")


def apply_sim_command(
    host: SimHost,
    command: Sequence[str],
    now: float,
    set_disk: Callable[[int | None], None] | None = None,
) -> None:
    """Apply one fault command; ``IpmpError`` (one line) if it is malformed.

    ``disk`` faults the simulated host's disk, where the daemon keeps its
    state, through ``set_disk`` (the simulated kernel is RAM: not on it).
    """
    if not command:
        raise IpmpError(f"sim: expected a command; usage: {USAGE}")
    verb, args = command[0], list(command[1:])
    if verb == "addr":
        _other_writer(host, args, now)
        return
    arity = {
        "link": 2,
        "loss": 2,
        "drop": 2,
        "target": 2,
        "rtt": 2,
        "unplug": 1,
        "plug": 1,
        "disk": 1,
    }
    if verb not in arity:
        raise IpmpError(f"sim: {verb!r}: unknown command; usage: {USAGE}")
    if len(args) != arity[verb]:
        raise IpmpError(f"sim {verb}: expected {arity[verb]} arguments; usage: {USAGE}")
    if verb == "link":
        host.set_link(args[0], _switch(args[1], "up", "down", verb), now)
    elif verb == "drop":
        host.set_port_drop(args[0], _switch(args[1], "on", "off", verb), now)
    elif verb == "target":
        host.set_neighbour(args[0], _switch(args[1], "up", "down", verb), now)
    elif verb in ("loss", "rtt"):
        try:
            value = float(args[1])
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise IpmpError(f"sim {verb}: {args[1]!r}: expected a finite number")
        if verb == "loss":
            if not 0 <= value <= 100:
                raise IpmpError(f"sim loss: {args[1]}: expected a percentage from 0 to 100")
            host.set_port_loss(args[0], value / 100.0, now)
        elif not 0 <= value <= MAX_SIM_RTT_MS:
            raise IpmpError(f"sim rtt: {args[1]}: expected milliseconds from 0 to {MAX_SIM_RTT_MS}")
        else:
            host.set_neighbour_rtt(args[0], value, now)
    elif verb == "disk":
        if args[0] not in DISK_FAULTS:
            raise IpmpError(f"sim disk: {args[0]!r}: expected full, readonly, nofiles or ok")
        if set_disk is None:
            raise IpmpError("sim disk: no daemon state to fault here")
        set_disk(DISK_FAULTS[args[0]])
    elif verb == "unplug":
        host.unplug(args[0], now)
    else:
        host.plug(args[0], now)


def _other_writer(host: SimHost, args: list[str], now: float) -> None:
    """``addr add IF ADDR/LEN`` or ``addr del IF ADDR``: another program's address change."""
    if len(args) != 3 or args[0] not in ("add", "del"):
        raise IpmpError(f"sim addr: expected add|del IF ADDR[/LEN]; usage: {USAGE}")
    op, name, spec = args
    address, _, length = spec.partition("/")
    family: Family = "inet6" if ":" in address else "inet"
    if op == "del":
        host.other_writer_delete(name, family, address, now)
        return
    if not length.isdigit():
        raise IpmpError(f"sim addr add: {spec!r}: expected ADDR/LEN, e.g. 192.0.2.50/24")
    host.other_writer_add(name, family, address, int(length), now)
