"""The Solaris ``ifconfig`` command line, parsed into typed operations.

The guide configures IPMP entirely through ``ifconfig`` (guide: "Configuring
IPMP Groups"), for example::

    ifconfig hme0 group testgroup1
    ifconfig hme0 addif 192.168.85.21 netmask + broadcast + -failover deprecated up
    ifconfig hme1 plumb 192.168.85.22 netmask + broadcast + deprecated -failover standby up
    ifconfig hme0 inet6 -failover
    ifconfig hme0 group ""
    ifconfig hme0 removeif 10.0.0.5

``parse_ifconfig`` takes the argument vector after the word ``ifconfig``
(already split the way a shell splits it) and returns an ``IfconfigCommand``
whose ``ops`` keep the order of the command line: as in Solaris, the
operations after ``addif`` apply to the new logical interface, so the caller
needs the order.  Nothing is resolved or applied here; host names are kept as
written and checked against the host table by the caller.

Every refusal is an ``IfconfigSyntaxError`` (an ``IpmpError``) whose message
is one line naming the offending token and what was expected.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from ipmp.core.constants import GROUP_NAME_MAX, IFNAME_MAX
from ipmp.core.errors import IpmpError
from ipmp.core.types import FAMILIES, Family

# ---------------------------------------------------------------------------
# Errors and quoting


class IfconfigSyntaxError(IpmpError):
    """An ifconfig argument vector was refused.

    The message is ``ifconfig: <detail>``; ``detail`` alone is kept so that
    callers such as the hostname-file loader can put their own prefix (file
    name and line number) in front of it.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(f"ifconfig: {detail}")
        self.detail = detail


QUOTE_LIMIT: Final = 48
"""Quoted tokens longer than this many characters are shortened with ``...``."""


def quote_token(token: str, limit: int = QUOTE_LIMIT) -> str:
    """Quote ``token`` for a one-line message: ``"hme0"``, ``"a\\tb"``, ``""``.

    Backslashes, double quotes and every character that is not printable
    (control characters, line and paragraph separators, lone surrogates...)
    are escaped, so the result never breaks a line.  Tokens longer than
    ``limit`` characters are cut and end in ``...`` after the closing quote.
    """
    shown = token if len(token) <= limit else token[:limit]
    out: list[str] = []
    for ch in shown:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            if code <= 0xFF:
                out.append(f"\\x{code:02x}")
            elif code <= 0xFFFF:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    tail = "..." if len(token) > limit else ""
    return '"' + "".join(out) + '"' + tail


def _fail(detail: str) -> IfconfigSyntaxError:
    return IfconfigSyntaxError(detail)


# ---------------------------------------------------------------------------
# Operations


FlagName: TypeAlias = Literal[
    "up",
    "deprecated",
    "failover",
    "standby",
    "private",
    "xmit",
    "local",
    "anycast",
    "preferred",
    "trailers",
    "arp",
]
"""The address and interface flags that ifconfig keywords turn on and off."""


@dataclass(frozen=True)
class Plumb:
    """``plumb``: open the interface for the command's family."""


@dataclass(frozen=True)
class Unplumb:
    """``unplumb``: close the interface for the command's family."""


@dataclass(frozen=True)
class SetAddress:
    """A bare address: set the address of the named (logical) interface.

    ``address`` is a normalised IPv4/IPv6 literal, or a host name kept as
    written (to be resolved by the caller); ``prefixlen`` comes from an
    ``address/len`` form, otherwise it is None.
    """

    address: str
    prefixlen: int | None


@dataclass(frozen=True)
class AddIf:
    """``addif ADDRESS``: create the next free logical interface with ``address``.

    The operations that follow on the same command line apply to the new
    logical interface (guide Example 31-2:
    ``addif 192.168.85.21 deprecated -failover netmask + broadcast + up``).
    """

    address: str
    prefixlen: int | None


@dataclass(frozen=True)
class RemoveIf:
    """``removeif ADDRESS``: remove the logical interface holding ``address``."""

    address: str


@dataclass(frozen=True)
class SetNetmask:
    """``netmask MASK``: ``prefixlen`` of the mask, or None for ``netmask +``.

    ``+`` asks for the default netmask of the address (guide: "Netmask and
    broadcast address set to the default value").
    """

    prefixlen: int | None


@dataclass(frozen=True)
class SetBroadcast:
    """``broadcast ADDRESS``: an IPv4 literal, or None for ``broadcast +`` (the default)."""

    address: str | None


@dataclass(frozen=True)
class SetGroup:
    """``group NAME``: join IPMP group ``name``; ``""`` leaves the current group.

    Guide: "When you execute the ifconfig command's group parameter with a
    null string, the interface is removed from its current IPMP group."
    """

    name: str


@dataclass(frozen=True)
class SetFlag:
    """A flag keyword: ``up``/``down``, ``-failover``/``failover``, ``standby``...

    ``on`` tells whether the flag named ``name`` is set or cleared; ``down``
    is ``SetFlag("up", False)`` and ``-failover`` is ``SetFlag("failover",
    False)`` (the kernel's NOFAILOVER).
    """

    name: FlagName
    on: bool


@dataclass(frozen=True)
class SetMtu:
    """``mtu N``: set the interface MTU (68..65535)."""

    mtu: int


@dataclass(frozen=True)
class ModList:
    """``modlist``: list the STREAMS modules of the interface (guide: ``ifconfig hme0 modlist``)."""


@dataclass(frozen=True)
class ModInsert:
    """``modinsert NAME[@POS]``: push a STREAMS module (guide: ``ifconfig hme0 modinsert ip``)."""

    module: str
    position: int | None


@dataclass(frozen=True)
class ModRemove:
    """``modremove NAME[@POS]``: pop a STREAMS module."""

    module: str
    position: int | None


Op: TypeAlias = (
    Plumb
    | Unplumb
    | SetAddress
    | AddIf
    | RemoveIf
    | SetNetmask
    | SetBroadcast
    | SetGroup
    | SetFlag
    | SetMtu
    | ModList
    | ModInsert
    | ModRemove
)
"""One operation of an ifconfig command line."""

OP_CLASSES: Final = (
    Plumb,
    Unplumb,
    SetAddress,
    AddIf,
    RemoveIf,
    SetNetmask,
    SetBroadcast,
    SetGroup,
    SetFlag,
    SetMtu,
    ModList,
    ModInsert,
    ModRemove,
)
"""Every operation class, for ``isinstance`` checks and exhaustive tests."""


@dataclass(frozen=True)
class IfconfigCommand:
    """One parsed ``ifconfig`` command line.

    ``target`` is ``"hme0"`` or ``"hme0:1"`` (None with ``-a``);
    ``family`` is the ``inet``/``inet6`` token written right after the name
    (None when none was written); ``ops`` are in command-line order.  A
    command without ops prints status (guide: "You can check the status of
    an interface by issuing the ``ifconfig interface`` command").
    """

    target: str | None
    all_interfaces: bool
    family: Family | None
    ops: tuple[Op, ...]

    @property
    def prints_status(self) -> bool:
        """True when the command only shows status (no operations)."""
        return not self.ops

    @property
    def physical(self) -> str | None:
        """The physical interface name: ``hme0`` for ``hme0:1``; None with ``-a``."""
        if self.target is None:
            return None
        return split_interface_name(self.target)[0]

    @property
    def unit(self) -> int | None:
        """The logical unit written (``1`` for ``hme0:1``), None if none was written."""
        if self.target is None:
            return None
        return split_interface_name(self.target)[1]


# ---------------------------------------------------------------------------
# Keywords

_FLAG_KEYWORDS: Final[dict[str, tuple[FlagName, bool]]] = {
    "up": ("up", True),
    "down": ("up", False),
    "deprecated": ("deprecated", True),
    "-deprecated": ("deprecated", False),
    "failover": ("failover", True),
    "-failover": ("failover", False),
    "standby": ("standby", True),
    "-standby": ("standby", False),
    "private": ("private", True),
    "-private": ("private", False),
    "xmit": ("xmit", True),
    "-xmit": ("xmit", False),
    "local": ("local", True),
    "-local": ("local", False),
    "anycast": ("anycast", True),
    "-anycast": ("anycast", False),
    "preferred": ("preferred", True),
    "-preferred": ("preferred", False),
    "trailers": ("trailers", True),
    "-trailers": ("trailers", False),
    "arp": ("arp", True),
    "-arp": ("arp", False),
}

KEYWORDS: Final[tuple[str, ...]] = (
    "plumb",
    "unplumb",
    "addif",
    "removeif",
    "netmask",
    "broadcast",
    "group",
    "mtu",
    "modlist",
    "modinsert",
    "modremove",
    *_FLAG_KEYWORDS,
)
"""Every operation keyword, in the order error messages list them."""

_KEYWORD_SET: Final = frozenset(KEYWORDS)

# ---------------------------------------------------------------------------
# Names

_IFNAME_RE: Final = re.compile(r"([A-Za-z][A-Za-z0-9_.-]*)(?::([0-9]+))?")
_HOSTNAME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9.-]*")
_MODULE_RE: Final = re.compile(r"([A-Za-z0-9_.-]+)(?:@([0-9]+))?")
HOSTNAME_MAX: Final = 253
"""The longest host name accepted as an address (a DNS name)."""
LOGICAL_UNIT_MAX: Final = 9999
"""The highest logical unit number accepted in ``name:N``."""
FMNAMESZ: Final = 8
"""The longest STREAMS module name (``<sys/stream.h>`` FMNAMESZ)."""
MTU_MIN: Final = 68
MTU_MAX: Final = 65535


def split_interface_name(name: str) -> tuple[str, int | None]:
    """Check an interface name and split it: ``"hme0:1"`` -> ``("hme0", 1)``.

    The name is ``[A-Za-z][A-Za-z0-9_.-]*`` with an optional ``:N`` logical
    unit (decimal 0..9999, no leading zeros), at most IFNAME_MAX characters
    counting the unit.  The unit is None when none was written.
    """
    m = _IFNAME_RE.fullmatch(name)
    if m is None and name.endswith(":") and _IFNAME_RE.fullmatch(name[:-1]):
        raise _fail(
            f"{quote_token(name)}: expected a logical unit number after the colon, "
            f"with no space (such as {name}1)"
        )
    if m is None:
        raise _fail(
            f"{quote_token(name)}: not an interface name; expected a name such as hme0 or "
            "hme0:1 (a letter, then letters, digits, _ . or -, and an optional :unit)"
        )
    base, unit_text = m.group(1), m.group(2)
    unit: int | None = None
    if unit_text is not None:
        if len(unit_text) > 4 or int(unit_text) > LOGICAL_UNIT_MAX:
            raise _fail(
                f"{quote_token(name)}: logical unit {quote_token(unit_text)} is out of range; "
                f"expected 0..{LOGICAL_UNIT_MAX}"
            )
        if len(unit_text) > 1 and unit_text.startswith("0"):
            raise _fail(
                f"{quote_token(name)}: logical unit {quote_token(unit_text)} has a leading zero; "
                f"write {base}:{int(unit_text)}"
            )
        unit = int(unit_text)
    if len(name) > IFNAME_MAX:
        what = "with its logical unit" if unit_text is not None else "long"
        raise _fail(
            f"interface name {quote_token(name)} is {len(name)} characters {what}; "
            f"at most {IFNAME_MAX} are allowed (logical unit included)"
        )
    return base, unit


def check_group_name(name: str) -> str:
    """Check an IPMP group name and return it unchanged.

    At most GROUP_NAME_MAX bytes in UTF-8 and no control characters.  The
    empty name is valid (it means "no group").  Spaces are legal; the guide
    only advises against them ("Avoid using spaces in group names").
    """
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise _fail(
            f"group name {quote_token(name)} is not valid text (it cannot be encoded as UTF-8)"
        ) from None
    if size > GROUP_NAME_MAX:
        raise _fail(
            f"group name {quote_token(name)} is {size} bytes; at most {GROUP_NAME_MAX} are allowed"
        )
    for ch in name:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code < 0xA0:
            raise _fail(
                f"group name {quote_token(name)} contains the control character "
                f"{quote_token(ch)}; expected printable text"
            )
    return name


# ---------------------------------------------------------------------------
# Addresses and masks


def parse_address(token: str) -> tuple[str, int | None, Family | None]:
    """Parse an address operand: ``(address, prefixlen, family)``.

    * IPv4 dotted quad or IPv6 literal, optionally ``/len``: the address is
      returned in its normal text form (``FE80::1`` -> ``fe80::1``) with its
      family.
    * A host name ``[A-Za-z][A-Za-z0-9.-]*``: returned as written with family
      None, to be resolved by the caller; it cannot carry ``/len``.

    IPv6 zone suffixes (``%eth0``) are refused: ifconfig takes the interface
    from its own argument.
    """
    addr, slash, plen_text = token.partition("/")
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address
    if ":" in addr:
        if "%" in addr:
            raise _fail(
                f"{quote_token(token)}: an IPv6 zone (%...) is not accepted; "
                "the interface name already gives it"
            )
        try:
            ip = ipaddress.IPv6Address(addr)
        except ValueError:
            raise _fail(f"{quote_token(token)}: not a valid IPv6 address") from None
        family: Family = "inet6"
    elif addr[:1].isascii() and addr[:1].isdigit():
        try:
            ip = ipaddress.IPv4Address(addr)
        except ValueError:
            raise _fail(
                f"{quote_token(token)}: not a valid IPv4 address; expected a dotted quad "
                "such as 192.168.85.19"
            ) from None
        family = "inet"
    elif _HOSTNAME_RE.fullmatch(addr) and len(addr) <= HOSTNAME_MAX:
        if slash:
            raise _fail(
                f"{quote_token(token)}: a /prefix length needs a literal IPv4 or IPv6 address, "
                "not a host name"
            )
        return addr, None, None
    else:
        raise _fail(
            f"{quote_token(token)}: not an address; expected an IPv4 or IPv6 address or a host name"
        )
    prefixlen: int | None = None
    if slash:
        limit = 32 if family == "inet" else 128
        if re.fullmatch(r"[0-9]{1,3}", plen_text) is None or int(plen_text) > limit:
            raise _fail(f"{quote_token(token)}: expected a prefix length 0..{limit} after the /")
        prefixlen = int(plen_text)
    return str(ip), prefixlen, family


def address_family(address: str) -> Family | None:
    """The family of an address literal, or None if it is not a literal."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    return "inet" if ip.version == 4 else "inet6"


def parse_netmask(token: str) -> int | None:
    """Parse a ``netmask`` operand into a prefix length; ``+`` gives None.

    Accepted: dotted ``255.255.255.0``, hex ``0xffffff00`` and bare hex
    ``ffffff00`` (the form ifconfig prints, guide: ``netmask ffffff00``).
    The mask must be contiguous.
    """
    if token == "+":
        return None
    value: int | None = None
    if re.fullmatch(r"0[xX][0-9A-Fa-f]{1,8}", token):
        value = int(token[2:], 16)
    elif re.fullmatch(r"[0-9A-Fa-f]{8}", token):
        value = int(token, 16)
    elif re.fullmatch(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}", token):
        try:
            value = int(ipaddress.IPv4Address(token))
        except ValueError:
            value = None
    if value is None:
        raise _fail(
            f"{quote_token(token)}: not a netmask; expected +, a dotted quad such as "
            "255.255.255.0 or hex such as 0xffffff00"
        )
    host_bits = ~value & 0xFFFFFFFF
    if host_bits & (host_bits + 1):
        raise _fail(
            f"{quote_token(token)}: the netmask is not contiguous; expected leading one "
            "bits followed only by zero bits"
        )
    return 32 - host_bits.bit_length()


# ---------------------------------------------------------------------------
# The parser


def _is_hostname(token: str) -> bool:
    return _HOSTNAME_RE.fullmatch(token) is not None and len(token) <= HOSTNAME_MAX


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by one insertion, deletion, substitution or swap."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    if len(a) < len(b):
        return a[i:] == b[i + 1 :]
    if a[i + 1 :] == b[i + 1 :]:
        return True
    return i + 1 < len(a) and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2 :] == b[i + 2 :]


def _misspelt_keyword(token: str) -> str | None:
    """The keyword (5 letters or more) that ``token`` is one typing slip away from."""
    for keyword in KEYWORDS:
        if len(keyword) >= 5 and _one_edit_apart(token, keyword):
            return keyword
    return None


def _looks_literal(token: str) -> bool:
    """Whether ``token`` can only be meant as an address literal."""
    head = token[:1]
    return ":" in token or (head.isascii() and head.isdigit() and ("." in token or "/" in token))


def _unknown(token: str, address_allowed: bool, hostname_here: bool) -> IfconfigSyntaxError:
    expected = "an address or one of" if address_allowed else "one of"
    detail = f"{quote_token(token)}: unknown keyword; expected {expected}: {', '.join(KEYWORDS)}"
    close = difflib.get_close_matches(token, KEYWORDS, n=1, cutoff=0.75)
    if close:
        detail += f'; did you mean "{close[0]}"?'
    elif address_allowed and not hostname_here and _is_hostname(token):
        detail += "; a host name is accepted only right after the interface name or plumb"
    return _fail(detail)


def _check_family(token: str, family: Family | None, addr_family: Family | None) -> None:
    """Refuse a literal of the other family when the family was written explicitly."""
    if family is None or addr_family is None or family == addr_family:
        return
    if family == "inet":
        raise _fail(
            f"{quote_token(token)}: an IPv6 address, but the family is inet; "
            "write inet6 after the interface name"
        )
    raise _fail(
        f"{quote_token(token)}: an IPv4 address, but the family is inet6; "
        "write inet (or nothing) after the interface name"
    )


class _OpsParser:
    """Walks the operands after ``NAME [inet|inet6]``."""

    def __init__(self, tokens: Sequence[str], target: str, family: Family | None) -> None:
        self.tokens = tokens
        self.target = target
        self.family = family
        self.pos = 0
        self.ops: list[Op] = []
        self.address_token: str | None = None

    def _argument(self, keyword: str, what: str) -> str:
        if self.pos >= len(self.tokens):
            raise _fail(f"{quote_token(keyword)}: expected {what} after it")
        arg = self.tokens[self.pos]
        self.pos += 1
        return arg

    def _address_argument(self, keyword: str) -> tuple[str, int | None, Family | None, str]:
        arg = self._argument(keyword, "an address")
        if arg in _KEYWORD_SET or arg in FAMILIES:
            raise _fail(
                f"{quote_token(keyword)}: expected an address after it, "
                f"not the keyword {quote_token(arg)}"
            )
        if arg == "":
            raise _fail(f'{quote_token(keyword)}: expected an address after it, got ""')
        address, prefixlen, addr_family = parse_address(arg)
        _check_family(arg, self.family, addr_family)
        return address, prefixlen, addr_family, arg

    def parse(self) -> tuple[Op, ...]:
        while self.pos < len(self.tokens):
            token = self.tokens[self.pos]
            self.pos += 1
            self.ops.append(self._one(token))
        return tuple(self.ops)

    def _one(self, token: str) -> Op:
        if token == "plumb":
            return Plumb()
        if token == "unplumb":
            return Unplumb()
        if token == "modlist":
            return ModList()
        flag = _FLAG_KEYWORDS.get(token)
        if flag is not None:
            return SetFlag(flag[0], flag[1])
        if token == "addif":
            address, prefixlen, _fam, _arg = self._address_argument(token)
            return AddIf(address, prefixlen)
        if token == "removeif":
            address, prefixlen, _fam, arg = self._address_argument(token)
            if prefixlen is not None:
                raise _fail(
                    f"{quote_token(arg)}: removeif takes the address alone, without /prefix"
                )
            return RemoveIf(address)
        if token == "netmask":
            return self._netmask(token)
        if token == "broadcast":
            return self._broadcast(token)
        if token == "group":
            return self._group(token)
        if token == "mtu":
            return self._mtu(token)
        if token in ("modinsert", "modremove"):
            return self._module(token)
        if token in FAMILIES:
            raise _fail(
                f"{quote_token(token)}: the address family must come right after the "
                "interface name, and only once"
            )
        return self._bare_address(token)

    def _netmask(self, keyword: str) -> SetNetmask:
        arg = self._argument(keyword, "a netmask (+, 255.255.255.0 or 0xffffff00)")
        if self.family == "inet6" and arg != "+":
            raise _fail(
                f"{quote_token(keyword)}: an IPv6 netmask is given as address/prefixlen, "
                "not with netmask"
            )
        return SetNetmask(parse_netmask(arg))

    def _broadcast(self, keyword: str) -> SetBroadcast:
        arg = self._argument(keyword, "an IPv4 broadcast address or +")
        if self.family == "inet6":
            raise _fail(f"{quote_token(keyword)}: IPv6 has no broadcast address")
        if arg == "+":
            return SetBroadcast(None)
        try:
            ip = ipaddress.IPv4Address(arg)
        except ValueError:
            raise _fail(
                f"{quote_token(keyword)}: expected an IPv4 broadcast address or + after it, "
                f"got {quote_token(arg)}"
            ) from None
        return SetBroadcast(str(ip))

    def _group(self, keyword: str) -> SetGroup:
        name = self._argument(keyword, 'a group name (or "" to leave the group)')
        # Guide: "You cannot use the group parameter of the ifconfig command
        # with logical interfaces ... with hme0, but not with hme0:1."
        physical, unit = split_interface_name(self.target)
        if unit is not None:
            raise _fail(
                f"{quote_token(keyword)}: cannot be used on the logical interface "
                f"{self.target}; use the physical interface {physical}"
            )
        return SetGroup(check_group_name(name))

    def _mtu(self, keyword: str) -> SetMtu:
        arg = self._argument(keyword, f"an MTU {MTU_MIN}..{MTU_MAX}")
        if re.fullmatch(r"[0-9]{1,6}", arg) is None or not MTU_MIN <= int(arg) <= MTU_MAX:
            raise _fail(
                f"{quote_token(keyword)}: expected an MTU {MTU_MIN}..{MTU_MAX} after it, "
                f"got {quote_token(arg)}"
            )
        return SetMtu(int(arg))

    def _module(self, keyword: str) -> ModInsert | ModRemove:
        arg = self._argument(keyword, "a STREAMS module name[@position]")
        m = _MODULE_RE.fullmatch(arg)
        if m is None or len(m.group(1)) > FMNAMESZ or len(m.group(2) or "") > 3:
            raise _fail(
                f"{quote_token(keyword)}: expected module-name[@position] after it "
                f"(a name of at most {FMNAMESZ} characters, a position 0..999), "
                f"got {quote_token(arg)}"
            )
        module = m.group(1)
        position = int(m.group(2)) if m.group(2) is not None else None
        if keyword == "modinsert":
            return ModInsert(module, position)
        return ModRemove(module, position)

    def _bare_address(self, token: str) -> SetAddress:
        # The address slot is right after the name (and family), or after a
        # leading plumb, as in the guide's
        # "ifconfig hme1 plumb 192.168.85.22 netmask + ...".  A literal is
        # accepted anywhere (Solaris sets the address wherever it appears);
        # a host name only in the slot, so that a misspelt keyword later on
        # is reported instead of being taken for a host.
        in_slot = all(isinstance(op, Plumb) for op in self.ops)
        if _looks_literal(token):
            if self.address_token is not None:
                hint = ""
                if address_family(self.address_token) is None:
                    hint = (
                        f" (the first, {quote_token(self.address_token)}, was taken as a "
                        "host name; if it is a misspelt keyword, expected one of: "
                        f"{', '.join(KEYWORDS)})"
                    )
                raise _fail(
                    f"{quote_token(token)}: a second address; only one address may be "
                    f"set (point-to-point destinations are not supported){hint}"
                )
        elif not (in_slot and _is_hostname(token.partition("/")[0])):
            raise _unknown(token, address_allowed=self.address_token is None, hostname_here=in_slot)
        else:
            # A host name one slip away from a keyword ("netmaks", "plumd")
            # is far more likely a typo than a host; a real host of that
            # name can still be given by its address literal.
            keyword = _misspelt_keyword(token)
            if keyword is not None:
                raise _fail(
                    f"{quote_token(token)}: unknown keyword; expected an address or one of: "
                    f'{", ".join(KEYWORDS)}; did you mean "{keyword}"? (a host name this close '
                    "to a keyword is refused; give its address instead)"
                )
        address, prefixlen, addr_family = parse_address(token)
        _check_family(token, self.family, addr_family)
        self.address_token = token
        return SetAddress(address, prefixlen)


def parse_ifconfig(argv: Sequence[str]) -> IfconfigCommand:
    """Parse an ifconfig argument vector (without the word ``ifconfig``).

    Forms::

        -a [inet|inet6]                  print every interface
        NAME [inet|inet6]                print NAME
        NAME [inet|inet6] OPERAND...     change NAME (operands in order)

    Keywords are case-sensitive, as in Solaris.  ``inet``/``inet6`` is
    accepted only right after the name or ``-a``.  Raises
    ``IfconfigSyntaxError`` (an ``IpmpError``) with a one-line message that
    names the offending token and what was expected.
    """
    args = list(argv)
    if not args:
        raise _fail("expected an interface name or -a")
    first = args[0]
    target: str | None
    if first == "-a":
        target = None
    else:
        if first in _KEYWORD_SET or first in FAMILIES:
            raise _fail(
                f"{quote_token(first)}: expected an interface name or -a before any keyword"
            )
        if first.startswith("-"):
            raise _fail(f"{quote_token(first)}: unknown option; expected an interface name or -a")
        split_interface_name(first)
        target = first
    pos = 1
    family: Family | None = None
    if pos < len(args) and args[pos] in FAMILIES:
        family = "inet" if args[pos] == "inet" else "inet6"
        pos += 1
    rest = args[pos:]
    if target is None:
        if rest:
            raise _fail(
                f"{quote_token(rest[0])}: -a only prints the status of every interface; "
                "name an interface to change it"
            )
        return IfconfigCommand(None, True, family, ())
    ops = _OpsParser(rest, target, family).parse()
    return IfconfigCommand(target, False, family, ops)
