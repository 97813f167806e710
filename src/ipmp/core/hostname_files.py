"""Solaris ``/etc/hostname.<if>`` and ``/etc/hostname6.<if>`` files.

At boot each logical line of ``hostname.hme0`` is applied as
``ifconfig hme0 <line>`` and each line of ``hostname6.hme0`` as
``ifconfig hme0 inet6 <line>`` (guide, step 7 of "How to Configure an IPMP
Group With Multiple Interfaces": "For IPv4, add the following line to the
/etc/hostname.interface file ... For IPv6, add the following line to the
/etc/hostname6.interface file").  The guide's files look like::

    192.168.85.19 netmask + broadcast + group testgroup1 up \\
        addif 192.168.85.21 deprecated -failover netmask + broadcast + up

    -failover group testgroup1 up

    inet 10.0.0.4 -failover up group one
    addif 10.0.0.5 failover up

Lexical rules: ``#`` starts a comment to the end of the line (outside
quotes); a line ending in ``\\`` continues on the next one (Example 31-2);
blank lines are skipped; tokens are split on whitespace; double quotes group
a token, so ``group ""`` gives the empty group name (guide: "The quotation
marks indicate a null string").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ipmp.core.errors import IpmpError
from ipmp.core.ifconfig_grammar import (
    IfconfigCommand,
    IfconfigSyntaxError,
    parse_ifconfig,
    quote_token,
    split_interface_name,
)
from ipmp.core.types import FAMILIES, Family

_PREFIXES: dict[Family, str] = {"inet": "hostname.", "inet6": "hostname6."}
_SPECIAL = re.compile(r'["#\\\s]')
"""The characters that end a run of ordinary token characters."""


@dataclass(frozen=True)
class HostnameLine:
    """One logical line: its tokens and the physical lines it spans (1-based)."""

    first_line: int
    last_line: int
    tokens: tuple[str, ...]

    @property
    def where(self) -> str:
        """``line 3`` or, for a continued line, ``lines 3-4``."""
        if self.first_line == self.last_line:
            return f"line {self.first_line}"
        return f"lines {self.first_line}-{self.last_line}"


@dataclass(frozen=True)
class HostnameFile:
    """A validated hostname file.

    ``commands[i]`` is ``ifconfig ifname family <line i>``; its ``family`` is
    always the file's.  ``lines[i]`` is the physical line on which that
    command starts, so that errors met while applying it can name it.
    """

    ifname: str
    family: Family
    commands: tuple[IfconfigCommand, ...]
    lines: tuple[int, ...] = ()


class HostnameFileError(IpmpError):
    """A hostname file was refused; the message starts with the file name (and line)."""


def _basename(filename: str) -> str:
    return filename.rsplit("/", 1)[-1]


def hostname_file_name(ifname: str, family: Family) -> str:
    """``hostname.hme0`` for inet, ``hostname6.hme0`` for inet6.

    Raises ``IpmpError`` if ``ifname`` is not a valid interface name.
    """
    split_interface_name(ifname)
    return _PREFIXES[family] + ifname


def split_hostname_file_name(filename: str) -> tuple[str, Family]:
    """``"/etc/hostname6.hme0"`` -> ``("hme0", "inet6")``.

    Only the last path component is looked at.  Raises ``IpmpError`` for a
    name that is not ``hostname.<if>`` or ``hostname6.<if>`` with a valid
    interface name.
    """
    name = _basename(filename)
    for family in FAMILIES:
        prefix = _PREFIXES[family]
        if name.startswith(prefix) and len(name) > len(prefix):
            ifname = name[len(prefix) :]
            try:
                split_interface_name(ifname)
            except IfconfigSyntaxError as err:
                raise HostnameFileError(
                    f"hostname file {quote_token(name)}: {err.detail}"
                ) from None
            return ifname, family
    raise HostnameFileError(
        f"hostname file {quote_token(name)}: expected a name hostname.<interface> "
        "or hostname6.<interface>"
    )


def _continuation_points(raw: str) -> list[bool]:
    """For each position of ``raw``: does only blank space or a comment follow it?

    A backslash at ``i`` continues the line when ``points[i + 1]`` holds:
    only whitespace or a comment may follow it (trailing blanks after the
    backslash are a common copy-and-paste slip).  One pass from the right,
    so a line of a million backslashes costs no more than any other.
    """
    points = [False] * (len(raw) + 1)
    points[len(raw)] = True
    for k in range(len(raw) - 1, -1, -1):
        ch = raw[k]
        points[k] = ch == "#" or (ch.isspace() and points[k + 1])
    return points


def parse_hostname_file(text: str, filename: str) -> tuple[tuple[str, ...], ...]:
    """Split a hostname file into logical lines of tokens.

    Each returned tuple is to be applied as ``ifconfig <if> [inet6] <tokens>``.
    Raises ``IpmpError`` (one line, naming file and line number) for an
    unterminated quote or a continuation at the end of the file.
    """
    return tuple(line.tokens for line in hostname_lines(text, filename))


def hostname_lines(text: str, filename: str) -> tuple[HostnameLine, ...]:
    """Like ``parse_hostname_file`` but keeps the line numbers of each logical line."""
    name = _basename(filename)
    result: list[HostnameLine] = []
    tokens: list[str] = []
    current: list[str] | None = None  # the pieces of the token being built ([""] after "")
    first_line = 0
    continued = False
    physical = text.split("\n")
    if physical and physical[-1] == "":
        physical.pop()  # the final newline does not start another line
    for lineno, raw in enumerate(physical, start=1):
        if not continued:
            first_line = lineno
        continued = False
        points: list[bool] | None = None
        i = 0
        while i < len(raw):
            ch = raw[i]
            if ch == '"':
                end = raw.find('"', i + 1)
                if end < 0:
                    raise HostnameFileError(
                        f'{name} line {lineno}: unterminated quote; expected a closing " '
                        "on the same line"
                    )
                current = current if current is not None else []
                current.append(raw[i + 1 : end])
                i = end + 1
            elif ch == "#":
                break
            elif ch == "\\":
                if points is None:
                    points = _continuation_points(raw)
                if points[i + 1]:
                    continued = True
                    break
                current = current if current is not None else []
                current.append(ch)
                i += 1
            elif ch.isspace():
                if current is not None:
                    tokens.append("".join(current))
                    current = None
                i += 1
            else:
                # A run of ordinary characters at once: linear in the token's length.
                special = _SPECIAL.search(raw, i)
                end = special.start() if special is not None else len(raw)
                current = current if current is not None else []
                current.append(raw[i:end])
                i = end
        # A continuation joins lines as a blank would: the token ends here.
        if current is not None:
            tokens.append("".join(current))
            current = None
        if not continued:
            if tokens:
                result.append(HostnameLine(first_line, lineno, tuple(tokens)))
            tokens = []
    if continued:
        raise HostnameFileError(
            f"{name} line {len(physical)}: the line ends in \\ but no line follows; "
            "expected the rest of the command on a next line"
        )
    return tuple(result)


def load_hostname_file(text: str, filename: str) -> HostnameFile:
    """Parse and validate a hostname file; ``filename`` gives interface and family.

    ``hostname.hme0`` configures hme0 for inet, ``hostname6.hme0`` for inet6.
    A line may begin with the family keyword (guide: ``inet 10.0.0.4
    -failover up group one``) when it matches the file's family.  Every line
    must parse as ``ifconfig <if> <family> <tokens>``; otherwise the
    ``IpmpError`` reads ``hostname.hme0 line 3: "netmaks": unknown keyword; ...``.
    """
    ifname, family = split_hostname_file_name(filename)
    name = _basename(filename)
    commands: list[IfconfigCommand] = []
    starts: list[int] = []
    for line in hostname_lines(text, filename):
        tokens = line.tokens
        if tokens[0] in FAMILIES:
            if tokens[0] != family:
                other = hostname_file_name(ifname, "inet6" if family == "inet" else "inet")
                raise HostnameFileError(
                    f"{name} {line.where}: {quote_token(tokens[0])}: this file configures "
                    f"{family}; put {tokens[0]} lines in {other}"
                )
            tokens = tokens[1:]
        try:
            command = parse_ifconfig([ifname, family, *tokens])
        except IfconfigSyntaxError as err:
            raise HostnameFileError(f"{name} {line.where}: {err.detail}") from None
        commands.append(command)
        starts.append(line.first_line)
    return HostnameFile(ifname, family, tuple(commands), tuple(starts))
