"""The Solaris ifconfig grammar: the guide's command lines, refusals, properties."""

from __future__ import annotations

import ipaddress
import re
import shlex
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipmp.core.errors import IpmpError
from ipmp.core.ifconfig_grammar import (
    KEYWORDS,
    OP_CLASSES,
    AddIf,
    IfconfigCommand,
    IfconfigSyntaxError,
    ModInsert,
    ModList,
    ModRemove,
    Op,
    Plumb,
    RemoveIf,
    SetAddress,
    SetBroadcast,
    SetFlag,
    SetGroup,
    SetMtu,
    SetNetmask,
    Unplumb,
    address_family,
    check_group_name,
    parse_address,
    parse_ifconfig,
    parse_netmask,
    quote_token,
    split_interface_name,
)

GUIDE = Path("/work/shared/spec/solaris10-ipmp-admin-guide.txt")


def cmd(line: str) -> IfconfigCommand:
    return parse_ifconfig(shlex.split(line))


def error_of(line: str | list[str]) -> str:
    argv = shlex.split(line) if isinstance(line, str) else line
    with pytest.raises(IpmpError) as info:
        parse_ifconfig(argv)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("ifconfig: ")
    return message


UP = SetFlag("up", True)
NOFAILOVER = SetFlag("failover", False)
DEPRECATED = SetFlag("deprecated", True)
STANDBY = SetFlag("standby", True)

# ---------------------------------------------------------------------------
# Every ifconfig command quoted in the guide


GUIDE_COMMANDS: list[tuple[str, IfconfigCommand]] = [
    ("hme0 modlist", IfconfigCommand("hme0", False, None, (ModList(),))),
    ("hme0 modinsert ip", IfconfigCommand("hme0", False, None, (ModInsert("ip", None),))),
    ("hme0 group testgroup1", IfconfigCommand("hme0", False, None, (SetGroup("testgroup1"),))),
    ("hme1 group testgroup1", IfconfigCommand("hme1", False, None, (SetGroup("testgroup1"),))),
    (
        "hme0 addif 192.168.85.21 netmask + broadcast + -failover deprecated up",
        IfconfigCommand(
            "hme0",
            False,
            None,
            (
                AddIf("192.168.85.21", None),
                SetNetmask(None),
                SetBroadcast(None),
                NOFAILOVER,
                DEPRECATED,
                UP,
            ),
        ),
    ),
    ("hme0:1", IfconfigCommand("hme0:1", False, None, ())),
    ("hme0 inet6 -failover", IfconfigCommand("hme0", False, "inet6", (NOFAILOVER,))),
    ("hme0 inet6", IfconfigCommand("hme0", False, "inet6", ())),
    (
        "hme1 plumb 192.168.85.22 netmask + broadcast + deprecated -failover standby up",
        IfconfigCommand(
            "hme1",
            False,
            None,
            (
                Plumb(),
                SetAddress("192.168.85.22", None),
                SetNetmask(None),
                SetBroadcast(None),
                DEPRECATED,
                NOFAILOVER,
                STANDBY,
                UP,
            ),
        ),
    ),
    (
        "hme1 plumb -failover standby up",
        IfconfigCommand("hme1", False, None, (Plumb(), NOFAILOVER, STANDBY, UP)),
    ),
    ("hme1", IfconfigCommand("hme1", False, None, ())),
    (
        # Example 31-4 (two lines joined by a backslash in the guide).
        "hme2 plumb 192.168.85.22 netmask + broadcast + deprecated -failover standby up",
        IfconfigCommand(
            "hme2",
            False,
            None,
            (
                Plumb(),
                SetAddress("192.168.85.22", None),
                SetNetmask(None),
                SetBroadcast(None),
                DEPRECATED,
                NOFAILOVER,
                STANDBY,
                UP,
            ),
        ),
    ),
    ("hme0 -standby", IfconfigCommand("hme0", False, None, (SetFlag("standby", False),))),
    ("hme0 group v4test", IfconfigCommand("hme0", False, None, (SetGroup("v4test"),))),
    ("hme0 -failover", IfconfigCommand("hme0", False, None, (NOFAILOVER,))),
    ("hme0 inet6 group v6test", IfconfigCommand("hme0", False, "inet6", (SetGroup("v6test"),))),
    ("hme0 group testgroup2", IfconfigCommand("hme0", False, None, (SetGroup("testgroup2"),))),
    ('hme0 group ""', IfconfigCommand("hme0", False, None, (SetGroup(""),))),
    ("hme0", IfconfigCommand("hme0", False, None, ())),
    ("hme0 group cs-link", IfconfigCommand("hme0", False, None, (SetGroup("cs-link"),))),
    ("hme0 removeif 10.0.0.5", IfconfigCommand("hme0", False, None, (RemoveIf("10.0.0.5"),))),
    ("hme0 removeif 10.0.0.6", IfconfigCommand("hme0", False, None, (RemoveIf("10.0.0.6"),))),
    ("hme1 inet plumb", IfconfigCommand("hme1", False, "inet", (Plumb(),))),
    (
        "hme1 inet 10.0.0.4 -failover up group one",
        IfconfigCommand(
            "hme1",
            False,
            "inet",
            (SetAddress("10.0.0.4", None), NOFAILOVER, UP, SetGroup("one")),
        ),
    ),
    (
        "hme1 addif 10.0.0.5 failover up",
        IfconfigCommand(
            "hme1", False, None, (AddIf("10.0.0.5", None), SetFlag("failover", True), UP)
        ),
    ),
    (
        "hme1 addif 10.0.0.6 failover up",
        IfconfigCommand(
            "hme1", False, None, (AddIf("10.0.0.6", None), SetFlag("failover", True), UP)
        ),
    ),
]


@pytest.mark.parametrize(("line", "expected"), GUIDE_COMMANDS)
def test_guide_commands(line: str, expected: IfconfigCommand) -> None:
    assert cmd(line) == expected


def _guide_ifconfig_lines() -> list[str]:
    """Every ``# ifconfig ...`` line of the guide, continuation lines joined."""
    lines = GUIDE.read_text(encoding="utf-8").splitlines()
    found: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if line.startswith("# ifconfig ") or line.startswith("ifconfig "):
            text = line.removeprefix("# ").removeprefix("ifconfig ")
            while text.rstrip().endswith("\\") and i + 1 < len(lines):
                i += 1
                text = text.rstrip()[:-1] + " " + lines[i].strip()
            found.append(" ".join(text.split()))
        i += 1
    return found


# Lines of the guide that are syntax templates or a misprint, and must be refused.
GUIDE_REFUSED = {
    "interface addif ip-address parameters -failover deprecated up",
    "interface plumb ip-address other-parameters deprecated -failover standby up",
    "hme0: 1",  # the guide's misprint of "ifconfig hme0:1"
    "moved-to-interface removeif moved-ip-address",
    "removed-from-NIC <parameters>",
    "interface modinsert module-name",  # module names are at most 8 characters
}


@pytest.mark.skipif(not GUIDE.exists(), reason="the guide is not available")
def test_every_guide_ifconfig_line() -> None:
    lines = _guide_ifconfig_lines()
    assert len(lines) >= 40
    accepted = 0
    for text in lines:
        argv = shlex.split(text)
        if text in GUIDE_REFUSED:
            with pytest.raises(IpmpError):
                parse_ifconfig(argv)
        else:
            parse_ifconfig(argv)
            accepted += 1
    assert accepted >= 35
    assert set(lines) >= GUIDE_REFUSED


# ---------------------------------------------------------------------------
# Forms


def test_all_interfaces() -> None:
    assert cmd("-a") == IfconfigCommand(None, True, None, ())
    assert cmd("-a inet6") == IfconfigCommand(None, True, "inet6", ())
    assert cmd("-a inet").family == "inet"
    assert "-a only prints" in error_of("-a up")
    assert '"plumb"' in error_of("-a inet6 plumb")


def test_status_and_properties() -> None:
    c = cmd("hme0:3 inet6")
    assert c.prints_status
    assert (c.physical, c.unit) == ("hme0", 3)
    assert cmd("hme0").unit is None
    assert cmd("-a").physical is None
    assert not cmd("hme0 up").prints_status


def test_every_flag_keyword() -> None:
    pairs = {
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
    for word, (name, on) in pairs.items():
        assert cmd(f"hme0 {word}").ops == (SetFlag(name, on),)  # type: ignore[arg-type]


def test_simple_ops() -> None:
    assert cmd("hme0 plumb").ops == (Plumb(),)
    assert cmd("hme0 inet6 unplumb") == IfconfigCommand("hme0", False, "inet6", (Unplumb(),))
    assert cmd("hme0 mtu 1500").ops == (SetMtu(1500),)
    assert cmd("hme0 mtu 68").ops == (SetMtu(68),)
    assert cmd("hme0 mtu 65535").ops == (SetMtu(65535),)
    assert cmd("hme0 modinsert ipf@2").ops == (ModInsert("ipf", 2),)
    assert cmd("hme0 modremove arp@0").ops == (ModRemove("arp", 0),)
    assert cmd("hme0 modremove arp").ops == (ModRemove("arp", None),)


def test_addresses() -> None:
    assert cmd("hme0 10.0.0.1/24 up").ops == (SetAddress("10.0.0.1", 24), UP)
    assert cmd("hme0 inet6 FE80::A00:20FF:FEB9:17FA/10").ops == (
        SetAddress("fe80::a00:20ff:feb9:17fa", 10),
    )
    assert cmd("hme0 inet6 addif 2001:db8::5/64 up").ops == (AddIf("2001:db8::5", 64), UP)
    # a host name is kept as written, to be resolved later
    assert cmd("hme0 myhost-a.example up").ops == (SetAddress("myhost-a.example", None), UP)
    assert cmd("hme0 plumb myhost").ops == (Plumb(), SetAddress("myhost", None))
    assert cmd("hme0 addif myhost").ops == (AddIf("myhost", None),)
    # a literal may appear after other operands, as in Solaris
    assert cmd("hme0 netmask + 10.0.0.1 up").ops == (
        SetNetmask(None),
        SetAddress("10.0.0.1", None),
        UP,
    )
    # without an explicit family either family is accepted (the caller checks)
    assert cmd("hme0 fe80::1").ops == (SetAddress("fe80::1", None),)


def test_netmask_forms() -> None:
    assert cmd("hme0 netmask 255.255.255.0").ops == (SetNetmask(24),)
    assert cmd("hme0 netmask 0xffffff00").ops == (SetNetmask(24),)
    assert cmd("hme0 netmask 0XFFFFFFF0").ops == (SetNetmask(28),)
    assert cmd("hme0 netmask ffffff00").ops == (SetNetmask(24),)
    assert cmd("hme0 netmask ffffffff").ops == (SetNetmask(32),)
    assert cmd("hme0 netmask 0.0.0.0").ops == (SetNetmask(0),)
    assert cmd("hme0 netmask +").ops == (SetNetmask(None),)
    assert parse_netmask("255.255.128.0") == 17
    for bad in ("255.0.255.0", "0xff00ff00", "00ffffff", "0x0000ffff"):
        assert "not contiguous" in error_of(["hme0", "netmask", bad])
    for bad in ("255.255.255", "256.0.0.0", "24", "/24", "fffff00", "0x1ffffffff", "abc"):
        assert "not a netmask" in error_of(["hme0", "netmask", bad])


def test_broadcast() -> None:
    assert cmd("hme0 broadcast 192.168.85.255").ops == (SetBroadcast("192.168.85.255"),)
    assert cmd("hme0 broadcast +").ops == (SetBroadcast(None),)
    msg = error_of("hme0 broadcast fe80::1")
    assert '"broadcast": expected an IPv4 broadcast address or + after it, got "fe80::1"' in msg
    assert "IPv6 has no broadcast" in error_of("hme0 inet6 broadcast +")


def test_group_names() -> None:
    assert cmd("hme0 group 'my group'").ops == (SetGroup("my group"),)
    assert cmd("hme0 group up").ops == (SetGroup("up"),)
    name31 = "g" * 31
    assert cmd(f"hme0 group {name31}").ops == (SetGroup(name31),)
    # 31 bytes is the limit in UTF-8 bytes, not characters
    assert check_group_name("é" * 15) == "é" * 15
    msg = error_of(["hme0", "group", "é" * 16])
    assert "is 32 bytes; at most 31 are allowed" in msg
    msg = error_of(["hme0", "group", "x" * 40])
    assert msg.startswith('ifconfig: group name "xxxx')
    assert "is 40 bytes; at most 31 are allowed" in msg
    msg = error_of(["hme0", "group", "a\nb"])
    assert 'group name "a\\x0ab" contains the control character' in msg
    assert "not valid text" in error_of(["hme0", "group", "a\udcff"])


def test_group_on_logical_interface_refused() -> None:
    # Guide: "you can use the group parameter with hme0, but not with hme0:1".
    msg = error_of("hme0:1 group test")
    assert '"group": cannot be used on the logical interface hme0:1' in msg
    assert "use the physical interface hme0" in msg


def test_interface_names() -> None:
    assert split_interface_name("hme0") == ("hme0", None)
    assert split_interface_name("hme0:0") == ("hme0", 0)
    assert split_interface_name("bond0.100:9999") == ("bond0.100", 9999)
    assert split_interface_name("e" * 15) == ("e" * 15, None)
    assert cmd("eth0_a-b.1").target == "eth0_a-b.1"
    msg = error_of(["e" * 16])
    assert f'interface name "{"e" * 16}" is 16 characters long; at most 15' in msg
    msg = error_of(["verylongname0:12"])
    assert '"verylongname0:12" is 16 characters with its logical unit; at most 15' in msg
    assert "out of range; expected 0..9999" in error_of(["hme0:10000"])
    assert "leading zero" in error_of(["hme0:01"])
    assert "not an interface name" in error_of(["0hme"])
    assert "not an interface name" in error_of(["hme 0"])
    assert "not an interface name" in error_of(["hme0:a"])
    # the guide's misprint "ifconfig hme0: 1"
    assert "expected a logical unit number after the colon" in error_of("hme0: 1")


def test_refusals_name_the_token() -> None:
    assert error_of([]) == "ifconfig: expected an interface name or -a"
    msg = error_of("hme0 10.0.0.1 netmaks 255.255.255.0")
    assert msg.startswith(
        'ifconfig: "netmaks": unknown keyword; expected one of: plumb, unplumb, addif, '
    )
    assert 'did you mean "netmask"?' in msg
    msg = error_of("hme0 up netmaks")
    assert msg.startswith(
        'ifconfig: "netmaks": unknown keyword; expected an address or one of: plumb, unplumb, '
        "addif, "
    )
    # a host name one slip from a keyword is taken for the misspelt keyword
    assert '"netmaks": unknown keyword' in error_of("hme0 netmaks 255.255.255.0")
    assert 'did you mean "plumb"' in error_of("hme0 plumd")
    # ... but not once an address was given
    assert "a host name is accepted only right after" in error_of("hme0 up somehost")
    assert error_of("hme0 addif") == 'ifconfig: "addif": expected an address after it'
    assert error_of("hme0 removeif") == 'ifconfig: "removeif": expected an address after it'
    assert 'not the keyword "up"' in error_of("hme0 addif up")
    assert error_of("hme0 netmask").startswith('ifconfig: "netmask": expected a netmask')
    assert error_of("hme0 broadcast").startswith('ifconfig: "broadcast": expected')
    assert error_of("hme0 group").startswith('ifconfig: "group": expected a group name')
    assert error_of("hme0 mtu").startswith('ifconfig: "mtu": expected an MTU 68..65535')
    assert error_of("hme0 modinsert").startswith('ifconfig: "modinsert": expected')
    assert error_of("hme0 modremove").startswith('ifconfig: "modremove": expected')
    assert 'got "67"' in error_of("hme0 mtu 67")
    assert 'got "65536"' in error_of("hme0 mtu 65536")
    assert 'got "1e3"' in error_of("hme0 mtu 1e3")
    assert 'got "verylongmod"' in error_of("hme0 modinsert verylongmod")
    assert 'got "ip@x"' in error_of("hme0 modinsert ip@x")
    assert "must come right after the interface name" in error_of("hme0 up inet6")
    assert "must come right after the interface name" in error_of("hme0 inet inet6")
    assert '"plumb": expected an interface name or -a' in error_of("plumb hme0")
    assert '"-x": unknown option' in error_of("-x")
    assert '"UP": unknown keyword' in error_of("hme0 10.0.0.1 UP")  # case-sensitive
    assert '"10.0.0.2": a second address' in error_of("hme0 10.0.0.1 10.0.0.2")
    assert "without /prefix" in error_of("hme0 removeif 10.0.0.5/24")


def test_address_refusals() -> None:
    assert "not a valid IPv4 address" in error_of("hme0 1.2.3")
    assert "not a valid IPv4 address" in error_of("hme0 addif 300.1.1.1")
    assert "not a valid IPv6 address" in error_of("hme0 fe80::g")
    assert "prefix length 0..32" in error_of("hme0 10.0.0.1/33")
    assert "prefix length 0..128" in error_of("hme0 addif fe80::1/129")
    assert "prefix length 0..32" in error_of("hme0 10.0.0.1/")
    assert "needs a literal" in error_of("hme0 myhost/24")
    assert "zone" in error_of("hme0 inet6 fe80::1%eth0")
    assert "not an address" in error_of("hme0 addif _x")


def test_family_mismatch_refused() -> None:
    msg = error_of("hme0 inet fe80::1")
    assert msg == (
        'ifconfig: "fe80::1": an IPv6 address, but the family is inet; '
        "write inet6 after the interface name"
    )
    assert '"10.0.0.5": an IPv4 address, but the family is inet6' in error_of(
        "hme0 inet6 addif 10.0.0.5 up"
    )
    assert "family is inet6" in error_of("hme0 inet6 removeif 10.0.0.5")
    assert "IPv6 netmask" in error_of("hme0 inet6 netmask 255.0.0.0")
    assert cmd("hme0 inet6 netmask +").ops == (SetNetmask(None),)


def test_parse_address_helper() -> None:
    assert parse_address("192.168.85.19") == ("192.168.85.19", None, "inet")
    assert parse_address("::FFFF:1.2.3.4/96") == ("::ffff:102:304", 96, "inet6")
    assert parse_address("host.example") == ("host.example", None, None)
    assert address_family("10.0.0.1") == "inet"
    assert address_family("fe80::1") == "inet6"
    assert address_family("host") is None
    with pytest.raises(IfconfigSyntaxError) as info:
        parse_address("1..2")
    assert info.value.detail.startswith('"1..2": not a valid IPv4 address')


def test_quote_token() -> None:
    assert quote_token("hme0") == '"hme0"'
    assert quote_token("") == '""'
    assert quote_token('a"b\\c') == '"a\\"b\\\\c"'
    assert quote_token("a\tb\r\n\u2028\x85") == '"a\\x09b\\x0d\\x0a\\u2028\\x85"'
    assert quote_token("\U000e0001") == '"\\U000e0001"'
    assert quote_token("x" * 100) == '"' + "x" * 48 + '"...'
    assert "\n" not in quote_token("\n" * 10)


def test_op_classes_complete() -> None:
    assert len(OP_CLASSES) == 13
    assert len(set(KEYWORDS)) == len(KEYWORDS)
    assert {"plumb", "addif", "removeif", "group", "-failover", "standby"} <= set(KEYWORDS)


# ---------------------------------------------------------------------------
# Properties

_JUNK = ["", "+", "-", "-a", "inet", "inet6", "@", '"', "\n", "hme0:1", "0x", "255.255.255.0"]
_TOKENS = st.one_of(
    st.sampled_from([*KEYWORDS, *_JUNK]),
    st.ip_addresses().map(str),
    st.builds(lambda a, p: f"{a}/{p}", st.ip_addresses().map(str), st.integers(-1, 200)),
    st.from_regex(r"[A-Za-z][A-Za-z0-9.-]{0,12}", fullmatch=True),
    st.text(max_size=40),
)
_NAMES = st.one_of(
    st.sampled_from(["hme0", "hme0:1", "-a", "qfe3:9999", "", "e" * 16, "plumb"]),
    st.text(max_size=20),
)


@pytest.mark.slow
@settings(max_examples=300)
@given(st.lists(_TOKENS, max_size=12), _NAMES)
def test_random_argv_only_ipmp_error(tokens: list[str], name: str) -> None:
    try:
        result = parse_ifconfig([name, *tokens])
    except IpmpError as err:
        message = str(err)
        assert "\n" not in message
        assert len(message.splitlines()) == 1
        assert message.startswith("ifconfig: ")
        return
    assert isinstance(result, IfconfigCommand)
    assert all(isinstance(op, OP_CLASSES) for op in result.ops)
    assert sum(isinstance(op, SetAddress) for op in result.ops) <= 1
    assert len(result.ops) <= len(tokens)


def _mask(prefixlen: int) -> str:
    return str(ipaddress.IPv4Network(f"0.0.0.0/{prefixlen}").netmask)


_V4 = st.ip_addresses(v=4).map(str)
_GROUP = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_categories=["Cc"]),
    max_size=15,
)
_MODULE = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
_POS = st.one_of(st.none(), st.integers(0, 999))


def _render(op: Op) -> list[str]:
    """The tokens that write ``op`` (the inverse of the parser, for the round trip)."""
    if isinstance(op, Plumb):
        return ["plumb"]
    if isinstance(op, Unplumb):
        return ["unplumb"]
    if isinstance(op, ModList):
        return ["modlist"]
    if isinstance(op, AddIf):
        return ["addif", op.address if op.prefixlen is None else f"{op.address}/{op.prefixlen}"]
    if isinstance(op, RemoveIf):
        return ["removeif", op.address]
    if isinstance(op, SetNetmask):
        return ["netmask", "+" if op.prefixlen is None else _mask(op.prefixlen)]
    if isinstance(op, SetBroadcast):
        return ["broadcast", op.address or "+"]
    if isinstance(op, SetGroup):
        return ["group", op.name]
    if isinstance(op, SetMtu):
        return ["mtu", str(op.mtu)]
    if isinstance(op, ModInsert | ModRemove):
        word = "modinsert" if isinstance(op, ModInsert) else "modremove"
        return [word, op.module if op.position is None else f"{op.module}@{op.position}"]
    if isinstance(op, SetFlag):
        words = {
            ("up", True): "up",
            ("up", False): "down",
            ("failover", False): "-failover",
            ("failover", True): "failover",
        }
        return [words.get((op.name, op.on), op.name if op.on else f"-{op.name}")]
    raise AssertionError(op)


_FLAGS = st.builds(
    SetFlag,
    st.sampled_from(
        [
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
    ),
    st.booleans(),
)
_OPS = st.one_of(
    st.just(Plumb()),
    st.just(Unplumb()),
    st.just(ModList()),
    _FLAGS,
    st.builds(AddIf, _V4, st.one_of(st.none(), st.integers(0, 32))),
    st.builds(RemoveIf, _V4),
    st.builds(SetNetmask, st.one_of(st.none(), st.integers(0, 32))),
    st.builds(SetBroadcast, st.one_of(st.none(), _V4)),
    st.builds(SetGroup, _GROUP),
    st.builds(SetMtu, st.integers(68, 65535)),
    st.builds(ModInsert, _MODULE, _POS),
    st.builds(ModRemove, _MODULE, _POS),
)


@pytest.mark.slow
@settings(max_examples=300)
@given(
    st.one_of(st.none(), st.builds(SetAddress, _V4, st.one_of(st.none(), st.integers(0, 32)))),
    st.lists(_OPS, max_size=10),
    st.sampled_from([None, "inet"]),
)
def test_round_trip(first: SetAddress | None, ops: list[Op], family: str | None) -> None:
    expected: list[Op] = [first, *ops] if first is not None else list(ops)
    argv = ["bge0"] + ([family] if family else [])
    if first is not None:
        argv.append(
            first.address if first.prefixlen is None else f"{first.address}/{first.prefixlen}"
        )
    for op in ops:
        argv += _render(op)
    parsed = parse_ifconfig(argv)
    assert parsed.ops == tuple(expected)
    assert parsed.family == family
    assert parsed.target == "bge0"


@settings(max_examples=200)
@given(st.text(max_size=60))
def test_quote_token_is_one_line(text: str) -> None:
    quoted = quote_token(text)
    assert len(quoted.splitlines()) == 1
    assert re.fullmatch(r'".*"(\.\.\.)?', quoted, flags=re.S)
