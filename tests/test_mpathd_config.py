"""/etc/default/mpathd with the original rules (defread and in.mpathd's checks)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipmp.core.actions import LOG_ERR, LOG_WARNING, Log
from ipmp.core.mpathd_config import (
    DEFAULT_MPATHD_CONFIG,
    DEFAULT_MPATHD_TEXT,
    ConfigParse,
    MpathdConfig,
    c_strtol,
    check_mpathd,
    parse_mpathd,
)

FDT = "FAILURE_DETECTION_TIME"
TRACK = "TRACK_INTERFACES_ONLY_WITH_GROUPS"


def fdt_of(value: str) -> tuple[int, list[str]]:
    parsed = parse_mpathd(f"{FDT}={value}\n")
    return parsed.config.failure_detection_time_ms, [m.message for m in parsed.messages]


def test_defaults() -> None:
    assert MpathdConfig() == DEFAULT_MPATHD_CONFIG
    assert MpathdConfig(10000, True, True, ()) == DEFAULT_MPATHD_CONFIG
    assert parse_mpathd("") == ConfigParse(DEFAULT_MPATHD_CONFIG, ())
    assert parse_mpathd("# nothing here\nOTHER=1\n") == ConfigParse(DEFAULT_MPATHD_CONFIG, ())


def test_shipped_file_gives_the_defaults() -> None:
    assert parse_mpathd(DEFAULT_MPATHD_TEXT) == ConfigParse(DEFAULT_MPATHD_CONFIG, ())
    assert check_mpathd(DEFAULT_MPATHD_TEXT) == []
    for key in (f"{FDT}=10000", "FAILBACK=yes", f"{TRACK}=yes"):
        assert f"\n{key}\n" in DEFAULT_MPATHD_TEXT
    # the extension key is shipped commented out
    assert "\n#TARGETS=" in DEFAULT_MPATHD_TEXT


def test_guide_values() -> None:
    parsed = parse_mpathd(f"{FDT}=5000\nFAILBACK=no\n{TRACK}=no\n")
    assert parsed.config == MpathdConfig(5000, False, False, ())
    assert parsed.messages == ()


def test_first_match_wins() -> None:
    assert parse_mpathd(f"{FDT}=2000\n{FDT}=3000\n").config.failure_detection_time_ms == 2000
    assert parse_mpathd("FAILBACK=no\nFAILBACK=yes\n").config.failback is False
    # even an invalid first value wins over a valid later one
    parsed = parse_mpathd("FAILBACK=maybe\nFAILBACK=no\n")
    assert parsed.config.failback is True
    assert parsed.messages == (Log(LOG_ERR, "Invalid value for FAILBACK maybe"),)


def test_key_is_case_insensitive() -> None:
    assert parse_mpathd("failback=no\n").config.failback is False
    assert parse_mpathd("FailBack=no\n").config.failback is False
    assert parse_mpathd(f"{TRACK.lower()}=no\n").config.track_interfaces_only_with_groups is False
    assert parse_mpathd("failure_detection_time=700\n").config.failure_detection_time_ms == 700
    # only ASCII letters fold: the Kelvin sign is not a K
    assert parse_mpathd("FAILBAC\u212a=no\n").config.failback is True


def test_leading_spaces_but_not_tabs() -> None:
    assert parse_mpathd("   FAILBACK=no\n").config.failback is False
    assert parse_mpathd("\tFAILBACK=no\n").config.failback is True
    assert parse_mpathd(" \tFAILBACK=no\n").config.failback is True


def test_spaces_around_equals_do_not_match() -> None:
    assert parse_mpathd("FAILBACK = no\n").config.failback is True
    assert parse_mpathd("FAILBACK =no\n").config.failback is True
    assert parse_mpathd(f"{FDT} = 500\n").config.failure_detection_time_ms == 10000
    assert parse_mpathd("FAILBACK = no\n").messages == ()
    # "FAILBACK= no": the value " no" is invalid (first two characters " n")
    parsed = parse_mpathd("FAILBACK= no\n")
    assert parsed.config.failback is True
    assert parsed.messages == (Log(LOG_ERR, "Invalid value for FAILBACK  no"),)


def test_prefix_of_another_key_does_not_match() -> None:
    assert parse_mpathd("FAILBACKX=no\n").config.failback is True
    assert parse_mpathd("#FAILBACK=no\n").config.failback is True


def test_value_keeps_quotes() -> None:
    parsed = parse_mpathd('FAILBACK="no"\n')
    assert parsed.config.failback is True
    assert parsed.messages == (Log(LOG_ERR, 'Invalid value for FAILBACK "no"'),)
    assert fdt_of('"500"') == (
        10000,
        ['Invalid failure detection time "500", assuming default 10000'],
    )


def test_long_line_stops_the_scan() -> None:
    ok = "#" + "x" * 1022  # 1023 characters: still read
    assert parse_mpathd(f"{ok}\nFAILBACK=no\n").config.failback is False
    long = "#" + "x" * 1023  # 1024 characters: the scan stops here
    parsed = parse_mpathd(f"{FDT}=500\n{long}\nFAILBACK=no\n")
    assert parsed.config.failure_detection_time_ms == 500  # before the long line
    assert parsed.config.failback is True  # after it: not seen
    assert parsed.messages == (
        Log(
            LOG_WARNING,
            "Line 2 is longer than 1023 characters; it and the lines after it are ignored",
        ),
    )
    # a long line that begins with the key does not match either
    parsed = parse_mpathd("FAILBACK=no" + " " * 1100 + "\n")
    assert parsed.config.failback is True


def test_nul_ends_a_line() -> None:
    assert parse_mpathd(f"{FDT}=300\x00junk\n").messages == ()
    assert parse_mpathd(f"{FDT}=300\x00junk\n").config.failure_detection_time_ms == 300
    assert parse_mpathd("\x00FAILBACK=no\n").config.failback is True


@pytest.mark.parametrize(
    ("value", "fdt", "message"),
    [
        ("50", 100, "Too small failure detection time of 50, assuming minimum 100"),
        ("0x64", 100, None),
        ("0X3e8", 1000, None),
        ("010", 100, "Too small failure detection time of 010, assuming minimum 100"),
        ("0144", 100, None),
        ("12abc", 100, "Too small failure detection time of 12abc, assuming minimum 100"),
        ("1500ms", 1500, None),
        ("abc", 10000, "Invalid failure detection time abc, assuming default 10000"),
        ("-5", 10000, "Invalid failure detection time -5, assuming default 10000"),
        ("0", 10000, "Invalid failure detection time 0, assuming default 10000"),
        ("", 10000, "Invalid failure detection time , assuming default 10000"),
        ("  +200", 200, None),
        ("\t300", 300, None),
        ("99", 100, "Too small failure detection time of 99, assuming minimum 100"),
        ("100", 100, None),
        ("1", 100, "Too small failure detection time of 1, assuming minimum 100"),
        ("0x", 10000, "Invalid failure detection time 0x, assuming default 10000"),
        ("08", 10000, "Invalid failure detection time 08, assuming default 10000"),
        ("99999999999", 2**31 - 1, None),
        (
            "-99999999999",
            10000,
            "Invalid failure detection time -99999999999, assuming default 10000",
        ),
        ("10 000", 100, "Too small failure detection time of 10 000, assuming minimum 100"),
    ],
)
def test_failure_detection_time_strtol(value: str, fdt: int, message: str | None) -> None:
    assert fdt_of(value) == (fdt, [message] if message else [])


def test_fdt_messages_are_log_err() -> None:
    parsed = parse_mpathd(f"{FDT}=abc\n")
    assert parsed.messages == (
        Log(LOG_ERR, "Invalid failure detection time abc, assuming default 10000"),
    )


def test_c_strtol() -> None:
    assert c_strtol("0x1f") == 31
    assert c_strtol("-0x10") == -16
    assert c_strtol("017") == 15
    assert c_strtol("019") == 1
    assert c_strtol(" \v\f\r\n42") == 42
    assert c_strtol("+-1") == 0
    assert c_strtol("") == 0
    assert c_strtol("\u0663") == 0  # non-ASCII digits are not digits to the C library
    assert c_strtol("9" * 5000) == 2**31 - 1
    assert c_strtol("-" + "9" * 5000) == -(2**31)
    assert c_strtol("-2147483648") == -(2**31)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("yes", True),
        ("YES", True),
        ("Yes", True),
        ("yessir", True),
        ("yes please", True),
        ("no", False),
        ("NO", False),
        ("nope", False),
        ("No way", False),
        ("none", False),
    ],
)
def test_yes_no_prefix_forms(value: str, expected: bool) -> None:
    start = MpathdConfig(failback=not expected, track_interfaces_only_with_groups=not expected)
    parsed = parse_mpathd(f"FAILBACK={value}\n{TRACK}={value}\n", start)
    assert parsed.config.failback is expected
    assert parsed.config.track_interfaces_only_with_groups is expected
    assert parsed.messages == ()


@pytest.mark.parametrize("value", ["maybe", "ye", "y", "n", "", " yes", "true", "1", "oui"])
def test_invalid_yes_no_keeps_previous(value: str) -> None:
    for previous in (True, False):
        start = MpathdConfig(failback=previous, track_interfaces_only_with_groups=previous)
        parsed = parse_mpathd(f"FAILBACK={value}\n{TRACK}={value}\n", start)
        assert parsed.config.failback is previous
        assert parsed.config.track_interfaces_only_with_groups is previous
        assert parsed.messages == (
            Log(LOG_ERR, f"Invalid value for FAILBACK {value}"),
            Log(LOG_ERR, f"Invalid value for {TRACK} {value}"),
        )


def test_missing_key_takes_default_not_previous() -> None:
    # SIGHUP restarts the daemon: a key removed from the file goes back to its default
    start = MpathdConfig(3000, False, False, ("10.0.0.1",))
    assert parse_mpathd("", start).config == DEFAULT_MPATHD_CONFIG
    # but an invalid FDT keeps the value in force: a broken file reloaded by
    # SIGHUP must not lose what the administrator set (the original fell back
    # to the default; the reliability fault matrix caught it).
    parsed = parse_mpathd(f"{FDT}=junk\n", start)
    assert parsed.config.failure_detection_time_ms == 3000
    assert parsed.messages == (Log(LOG_ERR, "Invalid failure detection time junk, keeping 3000"),)


def test_targets_extension() -> None:
    parsed = parse_mpathd("TARGETS=192.168.85.117 192.168.85.127,192.168.85.137\n")
    assert parsed.config.targets == ("192.168.85.117", "192.168.85.127", "192.168.85.137")
    assert parsed.messages == ()
    # the guide's shell form, with quotes; IPv6; repeats dropped
    parsed = parse_mpathd('TARGETS="192.168.85.117  , FE80::1 192.168.85.117"\n')
    assert parsed.config.targets == ("192.168.85.117", "fe80::1")
    assert parse_mpathd("targets=10.0.0.1\n").config.targets == ("10.0.0.1",)
    assert parse_mpathd("TARGETS=\n").config.targets == ()


def test_targets_invalid_entries_skipped() -> None:
    bad = ["router1", "10.0.0", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "127.0.0.1", "::1"]
    bad += ["255.255.255.255", "fe80::1%eth0", "10.0.0.1/24"]
    parsed = parse_mpathd("TARGETS=10.0.0.9 " + " ".join(bad) + "\n")
    assert parsed.config.targets == ("10.0.0.9",)
    assert [m.message for m in parsed.messages] == [
        f"Invalid probe target {entry} in TARGETS, ignoring it" for entry in bad
    ]
    assert all(m.priority == LOG_ERR for m in parsed.messages)


def test_check_mpathd() -> None:
    text = f"{FDT}=abc\nFAILBACK=maybe\n{TRACK}=no\nTARGETS=x\n"
    assert check_mpathd(text) == [
        "Invalid failure detection time abc, assuming default 10000",
        "Invalid value for FAILBACK maybe",
        "Invalid probe target x in TARGETS, ignoring it",
    ]


def test_messages_cannot_break_lines() -> None:
    parsed = parse_mpathd("FAILBACK=a\rb\u2028c\x85\n")
    assert parsed.messages == (Log(LOG_ERR, "Invalid value for FAILBACK a\\x0db\\u2028c\\x85"),)
    # CRLF files: "yes\r" still starts with yes; FDT stops at the \r
    parsed = parse_mpathd("FAILBACK=no\r\nFAILURE_DETECTION_TIME=2000\r\n")
    assert parsed.config.failback is False
    assert parsed.config.failure_detection_time_ms == 2000


# ---------------------------------------------------------------------------
# Properties

_KEYS = st.sampled_from([FDT, "FAILBACK", TRACK, "TARGETS", "failback", " FAILBACK", "OTHER"])
_VALUES = st.one_of(
    st.sampled_from(["yes", "no", "0", "-1", "50", "0x64", "010", "abc", '"yes"', ""]),
    st.integers(-(2**40), 2**40).map(str),
    st.ip_addresses().map(str),
    st.text(max_size=30),
)
_LINES = st.one_of(
    st.builds(
        lambda k, sep, v: f"{k}{sep}{v}", _KEYS, st.sampled_from(["=", " = ", "= "]), _VALUES
    ),
    st.text(max_size=40),
)


def _check_config(parsed: ConfigParse) -> None:
    config = parsed.config
    assert config.failure_detection_time_ms >= 100
    assert config.failure_detection_time_ms <= 2**31 - 1
    assert isinstance(config.failback, bool)
    assert isinstance(config.track_interfaces_only_with_groups, bool)
    assert len(set(config.targets)) == len(config.targets)
    for target in config.targets:
        ip = ipaddress.ip_address(target)
        assert str(ip) == target
        assert not (ip.is_unspecified or ip.is_multicast or ip.is_loopback)
    for message in parsed.messages:
        assert message.priority in (LOG_ERR, LOG_WARNING)
        assert len(message.message.splitlines()) == 1


@settings(max_examples=300)
@given(st.lists(_LINES, max_size=10), st.booleans(), st.booleans())
def test_random_files_give_valid_configs(lines: list[str], fb: bool, track: bool) -> None:
    previous = MpathdConfig(failback=fb, track_interfaces_only_with_groups=track)
    _check_config(parse_mpathd("\n".join(lines), previous))


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_random_text_gives_valid_configs(text: str) -> None:
    parsed = parse_mpathd(text)
    _check_config(parsed)
    assert check_mpathd(text) == [m.message for m in parsed.messages]


@settings(max_examples=200)
@given(st.integers(min_value=100, max_value=2**31 - 1), st.sampled_from(["{}", "{:#x}", "0{:o}"]))
def test_valid_fdt_round_trip(value: int, form: str) -> None:
    assert fdt_of(form.format(value)) == (value, [])
