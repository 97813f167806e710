"""/etc/hostname.<if> and /etc/hostname6.<if> files: the guide's examples and the lexical rules."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipmp.core.errors import IpmpError
from ipmp.core.hostname_files import (
    HostnameFile,
    hostname_file_name,
    hostname_lines,
    load_hostname_file,
    parse_hostname_file,
    split_hostname_file_name,
)
from ipmp.core.ifconfig_grammar import (
    KEYWORDS,
    AddIf,
    IfconfigCommand,
    SetAddress,
    SetBroadcast,
    SetFlag,
    SetGroup,
    SetNetmask,
)

UP = SetFlag("up", True)
NOFAILOVER = SetFlag("failover", False)
FAILOVER = SetFlag("failover", True)
DEPRECATED = SetFlag("deprecated", True)
STANDBY = SetFlag("standby", True)


def load_error(text: str, filename: str = "hostname.hme0") -> str:
    with pytest.raises(IpmpError) as info:
        load_hostname_file(text, filename)
    message = str(info.value)
    assert "\n" not in message
    return message


# ---------------------------------------------------------------------------
# The guide's files

EXAMPLE_31_2 = """\
192.168.85.19 netmask + broadcast + group testgroup1 up \\
    addif 192.168.85.21 deprecated -failover netmask + broadcast + up
"""


def test_example_31_2_continued_line() -> None:
    assert parse_hostname_file(EXAMPLE_31_2, "hostname.hme0") == (
        (
            "192.168.85.19",
            "netmask",
            "+",
            "broadcast",
            "+",
            "group",
            "testgroup1",
            "up",
            "addif",
            "192.168.85.21",
            "deprecated",
            "-failover",
            "netmask",
            "+",
            "broadcast",
            "+",
            "up",
        ),
    )
    loaded = load_hostname_file(EXAMPLE_31_2, "/etc/hostname.hme0")
    assert loaded == HostnameFile(
        "hme0",
        "inet",
        (
            IfconfigCommand(
                "hme0",
                False,
                "inet",
                (
                    SetAddress("192.168.85.19", None),
                    SetNetmask(None),
                    SetBroadcast(None),
                    SetGroup("testgroup1"),
                    UP,
                    AddIf("192.168.85.21", None),
                    DEPRECATED,
                    NOFAILOVER,
                    SetNetmask(None),
                    SetBroadcast(None),
                    UP,
                ),
            ),
        ),
        (1,),
    )


def test_example_31_3_ipv6() -> None:
    loaded = load_hostname_file("-failover group testgroup1 up\n", "hostname6.hme1")
    assert loaded.ifname == "hme1"
    assert loaded.family == "inet6"
    assert loaded.commands == (
        IfconfigCommand("hme1", False, "inet6", (NOFAILOVER, SetGroup("testgroup1"), UP)),
    )


def test_standby_files() -> None:
    v4 = load_hostname_file(
        "192.168.85.22 netmask + broadcast + deprecated group test -failover standby up\n",
        "hostname.hme1",
    )
    assert v4.commands[0].ops == (
        SetAddress("192.168.85.22", None),
        SetNetmask(None),
        SetBroadcast(None),
        DEPRECATED,
        SetGroup("test"),
        NOFAILOVER,
        STANDBY,
        UP,
    )
    v6 = load_hostname_file("-failover group test standby up\n", "hostname6.hme1")
    assert v6.commands[0].ops == (NOFAILOVER, SetGroup("test"), STANDBY, UP)


def test_recovery_example_with_inet_keyword() -> None:
    text = (
        "inet 10.0.0.4 -failover up group one\n"
        "addif 10.0.0.5 failover up\n"
        "addif 10.0.0.6 failover up\n"
    )
    loaded = load_hostname_file(text, "hostname.hme0")
    assert loaded.lines == (1, 2, 3)
    assert [c.family for c in loaded.commands] == ["inet", "inet", "inet"]
    assert loaded.commands[0].ops == (SetAddress("10.0.0.4", None), NOFAILOVER, UP, SetGroup("one"))
    assert loaded.commands[1].ops == (AddIf("10.0.0.5", None), FAILOVER, UP)
    assert loaded.commands[2].ops == (AddIf("10.0.0.6", None), FAILOVER, UP)


def test_inet6_keyword_in_hostname6_file() -> None:
    loaded = load_hostname_file("inet6 -failover up\n", "hostname6.hme0")
    assert loaded.commands[0].ops == (NOFAILOVER, UP)


def test_family_keyword_of_the_other_family_refused() -> None:
    msg = load_error("inet6 -failover up\n")
    assert msg == (
        'hostname.hme0 line 1: "inet6": this file configures inet; '
        "put inet6 lines in hostname6.hme0"
    )
    assert "put inet lines in hostname.hme0" in load_error("inet 10.0.0.1\n", "hostname6.hme0")


# ---------------------------------------------------------------------------
# Lexical rules


def test_comments_blank_lines_and_whitespace() -> None:
    text = (
        "# hme0: data address\n\n   \t\n"
        "10.0.0.4 up # the data address\n#addif 10.0.0.9\n  group one\n"
    )
    assert parse_hostname_file(text, "hostname.hme0") == (("10.0.0.4", "up"), ("group", "one"))
    lines = hostname_lines(text, "hostname.hme0")
    assert [(line.first_line, line.last_line) for line in lines] == [(4, 4), (6, 6)]
    assert load_hostname_file(text, "hostname.hme0").lines == (4, 6)


def test_empty_file() -> None:
    assert parse_hostname_file("", "hostname6.hme0") == ()
    assert load_hostname_file("", "hostname6.hme0") == HostnameFile("hme0", "inet6", (), ())
    assert load_hostname_file("# nothing\n\n", "hostname.hme0").commands == ()


def test_continuation() -> None:
    text = "10.0.0.4 \\\n  netmask + \\\n  up\naddif 10.0.0.5 up\n"
    lines = hostname_lines(text, "hostname.hme0")
    assert [line.tokens for line in lines] == [
        ("10.0.0.4", "netmask", "+", "up"),
        ("addif", "10.0.0.5", "up"),
    ]
    assert [line.where for line in lines] == ["lines 1-3", "line 4"]
    # the backslash ends the token, as a blank would
    assert parse_hostname_file("10.0.0.4\\\nup\n", "hostname.hme0") == (("10.0.0.4", "up"),)
    # blanks or a comment after the backslash still continue the line
    assert parse_hostname_file("10.0.0.4 \\  \t\nup\n", "hostname.hme0") == (("10.0.0.4", "up"),)
    assert parse_hostname_file("10.0.0.4 \\ # note\nup\n", "hostname.hme0") == (("10.0.0.4", "up"),)
    # a backslash inside a comment does not continue
    assert parse_hostname_file("# note \\\nup\n", "hostname.hme0") == (("up",),)
    # CRLF files
    assert parse_hostname_file("10.0.0.4 \\\r\nup\r\n", "hostname.hme0") == (("10.0.0.4", "up"),)


def test_continuation_at_end_of_file_refused() -> None:
    msg = load_error("10.0.0.4 up\naddif 10.0.0.5 \\\n")
    assert msg.startswith("hostname.hme0 line 2: the line ends in \\ but no line follows")
    assert load_error("up \\").startswith("hostname.hme0 line 1:")


def test_quotes() -> None:
    assert parse_hostname_file('group ""\n', "hostname.hme0") == (("group", ""),)
    assert parse_hostname_file('group "my group" up\n', "hostname.hme0") == (
        ("group", "my group", "up"),
    )
    assert parse_hostname_file('group "a#b"\n', "hostname.hme0") == (("group", "a#b"),)
    assert parse_hostname_file('group x"y z"w\n', "hostname.hme0") == (("group", "xy zw"),)
    loaded = load_hostname_file('10.0.0.4 up\ngroup ""\n', "hostname.hme0")
    assert loaded.commands[1].ops == (SetGroup(""),)


def test_unterminated_quote_refused() -> None:
    msg = load_error('10.0.0.4 up\n\ngroup "test up\n')
    assert msg == (
        'hostname.hme0 line 3: unterminated quote; expected a closing " on the same line'
    )
    with pytest.raises(IpmpError, match=r"^hostname6\.qfe0 line 1: unterminated quote"):
        parse_hostname_file('"', "/etc/hostname6.qfe0")


def test_grammar_errors_name_file_and_line() -> None:
    msg = load_error("# data\n10.0.0.4 up\n10.0.0.4 netmaks + up\n")
    assert msg.startswith(
        'hostname.hme0 line 3: "netmaks": unknown keyword; expected one of: plumb, unplumb, addif'
    )
    msg = load_error("10.0.0.4 netmask + \\\n  addif\n")
    assert msg == 'hostname.hme0 lines 1-2: "addif": expected an address after it'
    msg = load_error("fe80::1 up\n")
    assert msg.startswith(
        'hostname.hme0 line 1: "fe80::1": an IPv6 address, but the family is inet'
    )
    msg = load_error("10.0.0.1 up\n", "hostname6.hme0")
    assert '"10.0.0.1": an IPv4 address, but the family is inet6' in msg
    msg = load_error("group " + "x" * 40 + "\n")
    assert msg.startswith('hostname.hme0 line 1: group name "xxx')
    assert "is 40 bytes; at most 31 are allowed" in msg
    # group on a logical interface's file (guide: not with hme0:1)
    msg = load_error("group test\n", "hostname.hme0:1")
    assert msg.startswith('hostname.hme0:1 line 1: "group": cannot be used on the logical')


def test_file_names() -> None:
    assert hostname_file_name("hme0", "inet") == "hostname.hme0"
    assert hostname_file_name("hme0", "inet6") == "hostname6.hme0"
    assert hostname_file_name("hme0:1", "inet") == "hostname.hme0:1"
    assert split_hostname_file_name("/etc/hostname6.ce1") == ("ce1", "inet6")
    assert split_hostname_file_name("hostname.hme0:2") == ("hme0:2", "inet")
    with pytest.raises(IpmpError, match="not an interface name"):
        hostname_file_name("0bad", "inet")
    for bad in ("hostname.", "hostname6.", "hosts", "hostname7.hme0", "Hostname.hme0"):
        msg = load_error("up\n", bad)
        assert msg.startswith(f'hostname file "{bad}": expected a name hostname.<interface>')
    msg = load_error("up\n", "hostname.averyveryverylongname0")
    assert msg.startswith('hostname file "hostname.averyveryverylongname0": interface name')
    assert "at most 15" in msg


# ---------------------------------------------------------------------------
# Properties

_WORDS = st.one_of(
    st.sampled_from([*KEYWORDS, "inet", "inet6", "+", '""', '"', "#", "\\", "10.0.0.4", "fe80::1"]),
    st.text(max_size=12),
)
_LINES = st.lists(_WORDS, max_size=8).map(" ".join)


@pytest.mark.slow
@settings(max_examples=300)
@given(st.lists(_LINES, max_size=6), st.sampled_from(["hostname.hme0", "hostname6.qfe1"]))
def test_random_files_only_ipmp_error(lines: list[str], filename: str) -> None:
    text = "\n".join(lines)
    try:
        loaded = load_hostname_file(text, filename)
    except IpmpError as err:
        message = str(err)
        assert len(message.splitlines()) == 1
        assert re.match(re.escape(filename) + r" (line \d+|lines \d+-\d+): ", message)
        return
    assert len(loaded.commands) == len(loaded.lines)
    assert all(c.family == loaded.family and c.target == loaded.ifname for c in loaded.commands)
    assert list(loaded.lines) == sorted(loaded.lines)


@settings(max_examples=300)
@given(st.text(max_size=200), st.text(max_size=20))
def test_random_text_and_names_only_ipmp_error(text: str, filename: str) -> None:
    try:
        tokens = parse_hostname_file(text, "hostname.hme0")
    except IpmpError as err:
        assert len(str(err).splitlines()) == 1
    else:
        assert all(line for line in tokens)  # no empty logical lines
        assert all("\n" not in token for line in tokens for token in line)
    try:
        load_hostname_file(text, filename)
    except IpmpError as err:
        assert len(str(err).splitlines()) == 1


@settings(max_examples=200)
@given(
    st.lists(
        st.lists(
            st.text(
                st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters='"#\\'),
                min_size=1,
                max_size=8,
            ),
            min_size=1,
            max_size=5,
        ),
        max_size=5,
    )
)
def test_plain_tokens_survive(lines: list[list[str]]) -> None:
    text = "".join(" ".join(words) + "  # comment\n" for words in lines)
    assert parse_hostname_file(text, "hostname.hme0") == tuple(tuple(words) for words in lines)
