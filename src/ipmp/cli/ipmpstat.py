"""``ipmpstat``: display IPMP subsystem status (facts §7).

``ipmpstat [-n] [-o field[,...] [-P]] -a|-g|-i|-p|-t [--json]``

The status comes from in.mpathd: ``fetch()`` returns its snapshot
(:func:`ipmp.core.status.snapshot`) and ``probes()`` yields its probe records
for ``-p``.  Both are injected; the defaults below stand in for the daemon
client until it is wired and report that in.mpathd cannot be reached.

Exit status, as illumos ipmpstat's: 0 on success (also when ``-p`` is
stopped with Ctrl-C), 1 for everything else: a command line that is wrong by
itself (checked before in.mpathd is contacted), or status that cannot be
obtained or shown.  Unknown ``-o`` fields in human format are named in a
warning and left out, as libofmt does; in parsable format they are an error.
On a terminal the header is shown again at each screenful.
"""

from __future__ import annotations

import contextlib
import functools
import getopt
import os
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ipmp import version_line
from ipmp.core.errors import IpmpError
from ipmp.core.ipmpstat_format import (
    Mode,
    Resolver,
    probe_header,
    render_json,
    render_lines,
    render_probe,
    render_probe_json,
    select_fields,
    unknown_fields_warning,
)

if TYPE_CHECKING:
    from ipmp.client import ControlClient

PROG = "ipmpstat"

USAGE = """usage: ipmpstat [-n] [-o <field> [-P]] -a|-g|-i|-p|-t

  output modes:\t -a  display IPMP data address information
\t\t -g  display IPMP group information
\t\t -i  display IPMP-related IP interface information
\t\t -p  display IPMP probe information
\t\t -t  display IPMP target information

       options:\t -n  display IP addresses numerically
\t\t -o  display only the specified fields, in order
\t\t -P  display using parsable output mode"""

NO_DAEMON = "cannot contact in.mpathd(8) -- is IPMP in use?"

_MODE_LETTERS: dict[str, Mode] = {"-a": "a", "-g": "g", "-i": "i", "-p": "p", "-t": "t"}


class UsageError(Exception):
    """The command line is wrong by itself: exit 1.

    ``message`` is one line, or None to print only the usage text;
    ``show_usage`` adds the usage text after the message (as getopt errors do).
    """

    def __init__(self, message: str | None, show_usage: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.show_usage = show_usage or message is None


class VersionRequested(Exception):
    """``--version`` was given: print the version and exit 0, whatever else was asked."""


def _client() -> ControlClient:
    from ipmp.client import ControlClient
    from ipmp.daemon.control import socket_path
    from ipmp.rootfs import default_root

    return ControlClient(socket_path(default_root()))


def fetch_from_daemon() -> dict[str, Any]:
    """The snapshot from in.mpathd's control socket (under ``$IPMP_ROOT``, default /)."""
    try:
        snapshot: dict[str, Any] = _client().request("snapshot")
    except IpmpError as err:
        if "cannot contact" in err.message:
            raise IpmpError(NO_DAEMON) from None
        raise
    return snapshot


def probes_from_daemon() -> Iterator[dict[str, Any]]:
    """In.mpathd's probe records as they settle, until the daemon closes the stream."""
    try:
        yield from _client().stream("probes")
    except IpmpError as err:
        if "cannot contact" in err.message:
            raise IpmpError(NO_DAEMON) from None
        raise


def system_resolve(address: str) -> str | None:
    """The host name of ``address`` (short form, as NI_NOFQDN), or None."""
    try:
        host, _ = socket.getnameinfo((address, 0), socket.NI_NAMEREQD | socket.NI_NOFQDN)
    except (OSError, ValueError):
        return None
    return None if host == address else host


@dataclass(frozen=True)
class _Options:
    mode: Mode
    numeric: bool
    parsable: bool
    fields: str | None
    json: bool


def _parse(argv: Sequence[str]) -> _Options:
    if "--version" in argv:
        raise VersionRequested  # whatever else the line holds, as the docstring says
    try:
        pairs, operands = getopt.getopt(list(argv), "nPo:agipt", ["json", "version"])
    except getopt.GetoptError as err:
        if err.msg.startswith("option -") and "requires argument" in err.msg:
            raise UsageError(f"{PROG}: option requires an argument -- {err.opt}", True) from None
        raise UsageError(f"{PROG}: illegal option -- {err.opt}", True) from None
    if ("--version", "") in pairs:
        raise VersionRequested
    mode: Mode | None = None
    fields: str | None = None
    for flag, value in pairs:
        if flag in _MODE_LETTERS:
            if mode is not None:
                raise UsageError(f"{PROG}: only one output format may be specified")
            mode = _MODE_LETTERS[flag]
        elif flag == "-o":
            fields = value  # the last -o wins, as with getopt in ipmpstat.c
    if operands:
        raise UsageError(f"{PROG}: unexpected argument {operands[0]!r}", True)
    if mode is None:
        raise UsageError(None)
    flags = {flag for flag, _ in pairs}
    options = _Options(mode, "-n" in flags, "-P" in flags, fields, "--json" in flags)
    if options.json and options.parsable:
        raise UsageError(f"{PROG}: --json cannot be combined with -P")
    if options.json and options.fields is not None:
        raise UsageError(f"{PROG}: --json shows every field; it cannot be combined with -o")
    if not options.json:
        try:
            select_fields(options.mode, options.fields, options.parsable)
        except IpmpError as err:
            raise UsageError(err.message) from None
    return options


def _say(text: str) -> None:
    print(text, flush=True)


class Screen:
    """Prints lines, with the header again at each screenful on a terminal.

    As libofmt does: the header counts as a row, and it comes back whenever
    the rows printed fill the terminal's height.  Off a terminal it is
    printed once (scripts and pipes see one header).
    """

    def __init__(self, header: str | None, rows: int | None) -> None:
        self.header = header
        self.rows = rows
        self.printed = 0

    @classmethod
    def for_stdout(cls, header: str | None) -> Screen:
        rows: int | None = None
        if sys.stdout.isatty():
            with contextlib.suppress(OSError):
                rows = os.get_terminal_size(sys.stdout.fileno()).lines
            rows = rows if rows and rows > 1 else 24
        return cls(header, rows)

    def line(self, text: str) -> None:
        if self.header is not None and self.rows is not None and self.printed % self.rows == 0:
            _say(self.header)
            self.printed += 1
        _say(text)
        self.printed += 1

    def show_header(self) -> None:
        """Show the header now if nothing was shown yet (a table with no rows has one)."""
        if self.printed == 0 and self.header is not None:
            _say(self.header)
            self.printed += 1


def _probe_loop(
    options: _Options,
    snapshot: dict[str, Any],
    probes: Callable[[], Iterator[dict[str, Any]]],
    resolve: Resolver,
) -> None:
    """Print probe records until the stream ends (or Ctrl-C, handled by main)."""
    if not any(nic.get("probe") != "disabled" for nic in snapshot.get("interfaces", [])):
        raise IpmpError(f"{PROG}: probe-based failure detection is disabled")
    header = None if options.parsable or options.json else probe_header(options.fields)
    screen = Screen.for_stdout(header)
    screen.show_header()
    # TIME counts from ipmpstat's start, on in.mpathd's clock: the snapshot
    # taken at start says what that clock read then (negative TIME: a probe
    # sent before ipmpstat started).
    now = snapshot.get("now")
    start: float | None = float(now) if isinstance(now, int | float) else None
    for record in probes():
        if start is None:
            sent = record.get("time")
            start = float(sent) if isinstance(sent, int | float) else 0.0
        if options.json:
            _say(render_probe_json(record))
        else:
            screen.line(
                render_probe(
                    record,
                    start,
                    options.fields,
                    options.parsable,
                    options.numeric,
                    resolve,
                )
            )


def _error(err: IpmpError) -> None:
    message = err.message
    if not message.startswith(f"{PROG}:"):
        message = f"{PROG}: {message}"
    print(message, file=sys.stderr)


def main(
    argv: Sequence[str] | None = None,
    fetch: Callable[[], dict[str, Any]] | None = None,
    probes: Callable[[], Iterator[dict[str, Any]]] | None = None,
    *,
    resolve: Resolver | None = None,
) -> int:
    """Run ``ipmpstat``; returns the exit status.

    ``resolve`` names addresses when ``-n`` is not given; the default asks
    the system resolver (once per address).
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        options = _parse(arguments)
    except VersionRequested:
        print(version_line(PROG))
        return 0
    except UsageError as err:
        if err.message is not None:
            print(err.message, file=sys.stderr)
        if err.show_usage:
            print(USAGE, file=sys.stderr)
        return 1
    if not options.parsable and not options.json:
        warning = unknown_fields_warning(options.mode, options.fields)
        if warning is not None:
            print(warning, file=sys.stderr)
    fetch = fetch_from_daemon if fetch is None else fetch
    probes = probes_from_daemon if probes is None else probes
    namer: Resolver = functools.lru_cache(maxsize=None)(resolve or system_resolve)
    try:
        snapshot = fetch()
        if options.mode == "p":
            _probe_loop(options, snapshot, probes, namer)
        elif options.json:
            _say(render_json(snapshot, options.mode))
        else:
            header, lines = render_lines(
                snapshot,
                options.mode,
                options.fields,
                options.parsable,
                options.numeric,
                namer,
            )
            screen = Screen.for_stdout(header)
            screen.show_header()
            for line in lines:
                screen.line(line)
    except IpmpError as err:
        _error(err)
        return 1
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # The reader went away (ipmpstat -p | head): stop quietly, and keep
        # Python from complaining again when it flushes stdout at exit.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
