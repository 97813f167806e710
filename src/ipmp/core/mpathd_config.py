"""``/etc/default/mpathd``: the daemon's system-wide settings.

The guide ("How to Configure the /etc/default/mpathd File") documents three
keys::

    FAILURE_DETECTION_TIME=n        (ms; "The default is 10 seconds")
    FAILBACK=[yes | no]
    TRACK_INTERFACES_ONLY_WITH_GROUPS=[yes | no]

The file is read with the original's rules (Solaris ``defread`` and
in.mpathd's checks), so a file that worked on Solaris 10 means the same here:

* the first line beginning ``NAME=`` wins; the key is matched without regard
  to case; leading spaces (not tabs) are skipped; ``NAME = value`` (spaces
  around ``=``) does not match; the value is the rest of the line, quotes
  included; a line longer than 1023 characters ends the scan;
* FAILURE_DETECTION_TIME is read like ``strtol(value, NULL, 0)``; 0 or less
  gives the default with "Invalid failure detection time ...", 1..99 gives
  the minimum 100 with "Too small failure detection time ...";
* FAILBACK and TRACK_INTERFACES_ONLY_WITH_GROUPS accept anything that starts
  with "yes" or "no" (any case); anything else is reported and the value in
  force so far is kept.

One documented extension: ``TARGETS=`` lists explicit probe targets (IPv4
or IPv6 literals separated by blanks or commas), for links whose hosts do
not answer the all-hosts echo that target discovery relies on (guide:
"Configuring Target Systems"; Linux ignores broadcast echo by default).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final

from ipmp.core.actions import LOG_ERR, LOG_WARNING, Log
from ipmp.core.constants import FAILURE_DETECTION_TIME_MS, MIN_FAILURE_DETECTION_TIME_MS

DEFREAD_LINE_MAX: Final = 1023
"""``defread`` reads lines into a 1024-byte buffer; a longer line ends the scan."""

INT_MIN: Final = -(2**31)
INT_MAX: Final = 2**31 - 1


@dataclass(frozen=True)
class MpathdConfig:
    """The settings of ``/etc/default/mpathd``; the defaults are the shipped file's."""

    failure_detection_time_ms: int = FAILURE_DETECTION_TIME_MS
    failback: bool = True
    track_interfaces_only_with_groups: bool = True
    targets: tuple[str, ...] = ()


DEFAULT_MPATHD_CONFIG: Final = MpathdConfig()
"""The settings used when the file is missing or empty."""


@dataclass(frozen=True)
class ConfigParse:
    """The settings read from a file and the log lines reading it produced."""

    config: MpathdConfig
    messages: tuple[Log, ...]


DEFAULT_MPATHD_TEXT: Final = """\
#
# /etc/default/mpathd: settings for the IP multipathing daemon in.mpathd.
# After editing, make the daemon read it again with: pkill -HUP in.mpathd
#
# How long (in milliseconds) probing may take to notice that a NIC has
# failed.  Probes are sent about seven times in this period.  Values below
# 100 are raised to 100.
#
FAILURE_DETECTION_TIME=10000
#
# Whether addresses move back to a NIC once it is repaired.  With "no" the
# repaired NIC is marked INACTIVE and stays unused until it is needed.
#
FAILBACK=yes
#
# Whether only NICs that belong to an IPMP group are watched.  With "no"
# failures and repairs of every NIC are reported, but only grouped NICs
# fail over.
#
TRACK_INTERFACES_ONLY_WITH_GROUPS=yes
#
# Extension (not in Solaris): explicit probe targets, IPv4 or IPv6 addresses
# separated by blanks or commas.  Useful where neighbours do not answer the
# all-hosts echo used to discover targets.
#
#TARGETS=192.168.85.117 192.168.85.127 192.168.85.137
"""
"""The file as installed, with its comments; parsing it gives the defaults."""

_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(text: str) -> str:
    """Lower-case A-Z only, like the C library's ``strncasecmp`` in the C locale."""
    return text.translate(_ASCII_LOWER)


def _printable(text: str) -> str:
    """``text`` with characters that could break a log line escaped (``\\x0d``...)."""
    if text.isprintable():
        return text
    out: list[str] = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        elif ord(ch) <= 0xFF:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return "".join(out)


def c_strtol(text: str) -> int:
    """``strtol(text, NULL, 0)`` of a 32-bit C library.

    Leading white space, an optional sign, then ``0x`` hex, ``0`` octal or
    decimal digits; the first character that does not fit ends the number
    and no digits give 0.  Out-of-range values saturate at the 32-bit
    limits, as in the 32-bit Solaris 10 in.mpathd.
    """
    i, n = 0, len(text)
    while i < n and text[i] in " \t\n\v\f\r":
        i += 1
    negative = False
    if i < n and text[i] in "+-":
        negative = text[i] == "-"
        i += 1
    base = 10
    hexdigits = "0123456789abcdefABCDEF"
    if text[i : i + 2] in ("0x", "0X") and i + 2 < n and text[i + 2] in hexdigits:
        base = 16
        i += 2
    elif text[i : i + 1] == "0":
        base = 8
    digits = "0123456789abcdef"[:base]
    limit = -INT_MIN if negative else INT_MAX
    value = 0
    while i < n:
        digit = digits.find(text[i].lower()) if text[i].isascii() else -1
        if digit < 0:
            break
        value = min(value * base + digit, limit + 1)
        i += 1
    value = min(value, limit)
    return -value if negative else value


def _yes_no(value: str) -> bool | None:
    """Solaris 10's test: the first 3 characters are "yes" or the first 2 "no", any case."""
    lowered = _ascii_lower(value)
    if lowered[:3] == "yes":
        return True
    if lowered[:2] == "no":
        return False
    return None


class _DefaultFile:
    """The lines ``defread`` can see, and a lookup with its matching rules."""

    def __init__(self, text: str) -> None:
        self.lines: list[str] = []
        self.too_long_line: int | None = None
        for number, raw in enumerate(text.split("\n"), start=1):
            line = raw.split("\0", 1)[0]  # C strings end at NUL
            if len(line) > DEFREAD_LINE_MAX:
                self.too_long_line = number
                break
            self.lines.append(line)

    def read(self, key: str) -> str | None:
        """The value of the first line that begins ``KEY=`` (any case), or None."""
        prefix = _ascii_lower(key) + "="
        for line in self.lines:
            body = line.lstrip(" ")  # spaces only: a tab does not match
            if _ascii_lower(body[: len(prefix)]) == prefix:
                return body[len(prefix) :]
        return None


def _parse_targets(value: str, messages: list[Log]) -> tuple[str, ...]:
    """Read the TARGETS extension: literals separated by blanks or commas.

    A surrounding pair of quotes is removed, so the guide's shell form
    ``TARGETS="192.168.85.117 192.168.85.127"`` works.  Entries that are not
    usable unicast addresses are reported and skipped; repeats are dropped.
    """
    text = value.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        text = text[1:-1]
    targets: list[str] = []
    for entry in re.split(r"[\s,]+", text):
        if not entry:
            continue
        try:
            if "%" in entry:
                raise ValueError(entry)
            ip = ipaddress.ip_address(entry)
        except ValueError:
            ip = None
        if (
            ip is None
            or ip.is_unspecified
            or ip.is_multicast
            or ip.is_loopback
            or (ip.version == 4 and int(ip) == 0xFFFFFFFF)
        ):
            messages.append(
                Log(LOG_ERR, f"Invalid probe target {_printable(entry)} in TARGETS, ignoring it")
            )
            continue
        if str(ip) not in targets:
            targets.append(str(ip))
    return tuple(targets)


def parse_mpathd(text: str, previous: MpathdConfig = DEFAULT_MPATHD_CONFIG) -> ConfigParse:
    """Read ``/etc/default/mpathd`` text with the original's rules.

    A missing key takes its default.  A FAILURE_DETECTION_TIME below the
    minimum takes the minimum, as in.mpathd does.  An unusable
    FAILURE_DETECTION_TIME, FAILBACK or TRACK_INTERFACES_ONLY_WITH_GROUPS
    keeps its value from ``previous`` (the settings in force), so that
    ``pkill -HUP in.mpathd`` with a broken file changes none of them; at
    start ``previous`` holds the defaults, which is what the original
    assumes.  Messages are the original's format strings at LOG_ERR.
    """
    messages: list[Log] = []
    defaults = _DefaultFile(text)

    fdt = FAILURE_DETECTION_TIME_MS
    value = defaults.read("FAILURE_DETECTION_TIME")
    if value is not None:
        fdt = c_strtol(value)
        if fdt <= 0:
            fdt = previous.failure_detection_time_ms
            # The original's words when the value in force is the default.
            kept = "assuming default" if fdt == FAILURE_DETECTION_TIME_MS else "keeping"
            messages.append(
                Log(LOG_ERR, f"Invalid failure detection time {_printable(value)}, {kept} {fdt}")
            )
        elif fdt < MIN_FAILURE_DETECTION_TIME_MS:
            fdt = MIN_FAILURE_DETECTION_TIME_MS
            messages.append(
                Log(
                    LOG_ERR,
                    f"Too small failure detection time of {_printable(value)}, "
                    f"assuming minimum {fdt}",
                )
            )

    def yes_no(key: str, default: bool, kept: bool) -> bool:
        found = defaults.read(key)
        if found is None:
            return default
        answer = _yes_no(found)
        if answer is None:
            messages.append(Log(LOG_ERR, f"Invalid value for {key} {_printable(found)}"))
            return kept
        return answer

    failback = yes_no("FAILBACK", DEFAULT_MPATHD_CONFIG.failback, previous.failback)
    track = yes_no(
        "TRACK_INTERFACES_ONLY_WITH_GROUPS",
        DEFAULT_MPATHD_CONFIG.track_interfaces_only_with_groups,
        previous.track_interfaces_only_with_groups,
    )

    targets: tuple[str, ...] = ()
    value = defaults.read("TARGETS")
    if value is not None:
        targets = _parse_targets(value, messages)

    if defaults.too_long_line is not None:
        # Not a message of the original, which stops silently; without it
        # the settings below the long line would vanish unexplained.
        messages.append(
            Log(
                LOG_WARNING,
                f"Line {defaults.too_long_line} is longer than {DEFREAD_LINE_MAX} "
                "characters; it and the lines after it are ignored",
            )
        )

    config = MpathdConfig(
        failure_detection_time_ms=fdt,
        failback=failback,
        track_interfaces_only_with_groups=track,
        targets=targets,
    )
    return ConfigParse(config, tuple(messages))


def check_mpathd(text: str) -> list[str]:
    """The messages reading ``text`` would log; empty when the file is clean."""
    return [log.message for log in parse_mpathd(text).messages]
