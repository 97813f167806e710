"""Strict checking of each control operation's ``args`` (docs/control-protocol.md).

Every operation names the arguments it takes and their JSON types; anything
else is refused with one line before the daemon acts on it, so a misspelt key
or a string where a boolean belongs (``"force": "false"``) can never change
what a request does.  The checked arguments come back as plain Python values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from ipmp.core.errors import IpmpError
from ipmp.core.types import valid_interface_name
from ipmp.daemon.control import short_repr as _short

ArgKind = Literal["interface", "boolean", "strings"]

MAX_STRINGS = 256
"""At most this many words in an ``argv`` or ``command`` list."""
MAX_WORD = 1024
"""At most this many characters in one word of such a list."""


@dataclass(frozen=True)
class Arg:
    """One argument of an operation: its kind and whether it must be present."""

    kind: ArgKind
    required: bool = True


OPERATIONS: dict[str, dict[str, Arg]] = {
    "ping": {},
    "snapshot": {},
    "ifconfig": {"argv": Arg("strings"), "show_ether": Arg("boolean", required=False)},
    "offline": {"interface": Arg("interface")},
    "online": {"interface": Arg("interface")},
    "dr_detach": {"interface": Arg("interface"), "force": Arg("boolean", required=False)},
    "dr_attach": {"interface": Arg("interface")},
    "sim": {"command": Arg("strings")},
    "probes": {},
    "reload": {},
    "stats": {},
}
"""Every operation the daemon serves, with the arguments it accepts."""

_EXPECTED = {
    "interface": "an interface name (1-15 characters, no '/', ':', spaces or control characters)",
    "boolean": "true or false",
    "strings": (
        f"a list of at most {MAX_STRINGS} strings of at most {MAX_WORD} characters "
        "without control characters"
    ),
}


def check_args(op: str, args: dict[str, Any]) -> dict[str, Any]:
    """Return ``args`` checked against ``op``'s arguments; raise ``IpmpError`` naming the fault."""
    spec = OPERATIONS.get(op)
    if spec is None:
        raise IpmpError(f"unknown operation {_short(op)}")
    unknown = sorted(str(key) for key in args if key not in spec)
    if unknown:
        expected = ", ".join(spec) if spec else "no arguments"
        raise IpmpError(
            f"{op}: unknown argument(s) {', '.join(_short(k) for k in unknown[:5])}; "
            f"expected {expected}"
        )
    checked: dict[str, Any] = {}
    for name, arg in spec.items():
        if name not in args:
            if arg.required:
                raise IpmpError(f"{op}: missing argument {name!r}: expected {_EXPECTED[arg.kind]}")
            continue
        value = args[name]
        if not _valid(arg.kind, value):
            raise IpmpError(f"{op}: {name} must be {_EXPECTED[arg.kind]}, not {_short(value)}")
        checked[name] = list(value) if arg.kind == "strings" else value
    return checked


def _valid(kind: ArgKind, value: object) -> bool:
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "interface":
        return valid_interface_name(value)
    return (
        isinstance(value, list)
        and len(value) <= MAX_STRINGS
        and all(
            isinstance(word, str) and len(word) <= MAX_WORD and word.isprintable() for word in value
        )
    )
