"""``ipmpstat`` output, rendered from a status snapshot (facts §7).

The daemon serves :func:`ipmp.core.status.snapshot`; this module turns it into
the text illumos ``ipmpstat`` prints, in its five modes:

* ``a`` addresses, ``g`` groups, ``i`` interfaces, ``t`` targets, from the
  snapshot (:func:`render`, :func:`render_json`);
* ``p`` probes, one line per probe record as they arrive
  (:func:`probe_header`, :func:`render_probe`, :func:`render_probe_json`).

Human format follows ipmpstat.c's ``ofmt_output()``: a field's width counts
its trailing separator, so a value is left-aligned and padded to the width; a
value too long for its column is followed by one space and pushes the rest of
the line right, and the spare room of the next columns is then taken back
("compressed") until the columns line up again; the last field is never
padded; an empty value shows as ``--``.  Parsable format (``-P``) has no
header, ``:`` between fields, nothing for an empty value, and, when more than
one field is shown, a ``\\`` before every ``:`` and ``\\`` inside a value.

Pure: no I/O.  Host names come from an injected ``resolve`` callable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ipmp.core.errors import IpmpError
from ipmp.core.status import SNAPSHOT_VERSION

Mode = Literal["a", "g", "i", "p", "t"]
"""An output mode, named by its ipmpstat option letter."""

MODES: tuple[Mode, ...] = ("a", "g", "i", "p", "t")

Resolver = Callable[[str], str | None]
"""Maps an IP address to a host name, or ``None`` to show the address."""

Row = dict[str, str]
"""One output line's values, keyed by upper-case field name; ``""`` is empty."""


@dataclass(frozen=True)
class Field:
    """One ipmpstat output column (ipmpstat.c field tables)."""

    name: str
    """The header, upper case; ``-o`` matches it case-insensitively."""
    width: int
    """Columns, counting the separator that follows the value."""
    hidden: bool = False
    """Shown only when asked for with ``-o`` (``-p``'s RTTAVG and RTTDEV)."""

    @property
    def key(self) -> str:
        """The field's name in ``--json`` output."""
        return self.name.lower()


FIELDS: dict[Mode, list[Field]] = {
    "a": [
        Field("ADDRESS", 26),
        Field("STATE", 7),
        Field("GROUP", 12),
        Field("INBOUND", 12),
        Field("OUTBOUND", 23),
    ],
    "g": [
        Field("GROUP", 12),
        Field("GROUPNAME", 12),
        Field("STATE", 10),
        Field("FDT", 10),
        Field("INTERFACES", 30),
    ],
    "i": [
        Field("INTERFACE", 12),
        Field("ACTIVE", 8),
        Field("GROUP", 12),
        Field("FLAGS", 10),
        Field("LINK", 10),
        Field("PROBE", 10),
        Field("STATE", 10),
    ],
    "p": [
        Field("TIME", 10),
        Field("INTERFACE", 12),
        Field("PROBE", 7),
        Field("NETRTT", 10),
        Field("RTT", 10),
        Field("RTTAVG", 10, hidden=True),
        Field("TARGET", 20),
        Field("RTTDEV", 10, hidden=True),
    ],
    "t": [
        Field("INTERFACE", 12),
        Field("MODE", 10),
        Field("TESTADDR", 20),
        Field("TARGETS", 38),
    ],
}
"""Every mode's fields, in ipmpstat's order."""


def _mode(mode: str) -> Mode:
    for known in MODES:
        if mode == known:
            return known
    raise IpmpError(f"ipmpstat: unknown output mode {mode!r}; expected one of a, g, i, p, t")


def _names(fields: str | Sequence[str]) -> list[str]:
    names = fields.split(",") if isinstance(fields, str) else list(fields)
    return [name.strip() for name in names if name.strip()]


def unknown_fields(mode: str, fields: str | Sequence[str] | None) -> list[str]:
    """The names in a ``-o`` list that ``mode`` has no field for, in order."""
    if fields is None:
        return []
    known = {field.name for field in FIELDS[_mode(mode)]}
    names = _names(fields)
    if len(names) == 1 and names[0].lower() == "all":
        return []
    return [name for name in names if name.upper() not in known]


def unknown_fields_warning(mode: str, fields: str | Sequence[str] | None) -> str | None:
    """What human mode says of unknown ``-o`` names before it goes on without them."""
    bad = unknown_fields(mode, fields)
    if not bad:
        return None
    noun = "fields" if len(bad) > 1 else "field"
    return f"ipmpstat: ignoring unknown output {noun}:" + "".join(f" `{b}'" for b in bad)


def select_fields(
    mode: str, fields: str | Sequence[str] | None = None, parsable: bool = False
) -> list[Field]:
    """The fields to show: the defaults, ``-o all``, or a ``-o`` list.

    ``fields`` is the ``-o`` argument (``"state,group"``) or its names as a
    sequence; names are case-insensitive and may repeat.  ``all`` (the whole
    argument, as in illumos) selects every field, hidden ones included; it is
    refused with ``-P``, whose scripts must not see new fields appear.  As
    illumos' ofmt does, human mode leaves out names it does not know (see
    :func:`unknown_fields_warning`) and parsable mode refuses them; the
    messages are libofmt's.
    """
    table = FIELDS[_mode(mode)]
    if fields is None:
        if parsable:
            raise IpmpError("ipmpstat: output fields must be specified in parsable mode")
        return [field for field in table if not field.hidden]
    names = _names(fields)
    if len(names) == 1 and names[0].lower() == "all":
        if parsable:
            raise IpmpError("ipmpstat: output field `all' invalid in parsable mode")
        return list(table)
    bad = unknown_fields(mode, names)
    if bad and parsable:
        noun = "fields" if len(bad) > 1 else "field"
        raise IpmpError(f"ipmpstat: unknown output {noun}:" + "".join(f" `{b}'" for b in bad))
    by_name = {field.name: field for field in table}
    chosen = [by_name[name.upper()] for name in names if name.upper() in by_name]
    if not chosen:
        raise IpmpError("ipmpstat: no valid output fields")
    return chosen


def _namer(numeric: bool, resolve: Resolver | None) -> Callable[[str], str]:
    """How addresses are shown: as they are (``-n``) or as host names."""

    def name(address: str) -> str:
        if numeric or resolve is None or not address:
            return address
        return resolve(address) or address

    return name


def _group_interfaces(group: Mapping[str, Any]) -> str:
    """``net2 net5 (net7) [net6]``: active, then (INACTIVE), then [unusable]."""
    parts: list[str] = []
    if group["active"]:
        parts.append(" ".join(group["active"]))
    if group["inactive"]:
        parts.append("(" + " ".join(group["inactive"]) + ")")
    if group["unusable"]:
        parts.append("[" + " ".join(group["unusable"]) + "]")
    return " ".join(parts)


def _seconds(milliseconds: float | None) -> str:
    return "" if milliseconds is None else f"{milliseconds / 1000:.2f}s"


def _ms(milliseconds: float | None) -> str:
    return "" if milliseconds is None else f"{milliseconds:.2f}ms"


def _address_rows(snapshot: Mapping[str, Any], name: Callable[[str], str]) -> list[Row]:
    rows: list[Row] = []
    for addr in snapshot["addresses"]:
        inbound = str(addr["inbound"])
        # ipmpstat.c: no outbound interfaces for a down address or one with no
        # inbound interface ("there can't be any outbound traffic").
        up = addr["state"] == "up"
        outbound = " ".join(addr["outbound"]) if up and inbound else ""
        rows.append(
            {
                "ADDRESS": name(str(addr["address"])),
                "STATE": str(addr["state"]),
                "GROUP": str(addr["group"]),
                "INBOUND": inbound,
                "OUTBOUND": outbound,
            }
        )
    return rows


def _group_rows(snapshot: Mapping[str, Any]) -> list[Row]:
    return [
        {
            "GROUP": str(group["group"]),
            "GROUPNAME": str(group["groupname"]),
            "STATE": str(group["state"]),
            "FDT": _seconds(group["fdt_ms"]),
            "INTERFACES": _group_interfaces(group),
        }
        for group in snapshot["groups"]
    ]


def _interface_rows(snapshot: Mapping[str, Any]) -> list[Row]:
    return [
        {
            "INTERFACE": str(nic["interface"]),
            "ACTIVE": "yes" if nic["active"] else "no",
            "GROUP": str(nic["group"]),
            "FLAGS": str(nic["flags"]),
            "LINK": str(nic["link"]),
            "PROBE": str(nic["probe"]),
            "STATE": str(nic["state"]),
        }
        for nic in snapshot["interfaces"]
    ]


def _target_rows(snapshot: Mapping[str, Any], name: Callable[[str], str]) -> list[Row]:
    rows: list[Row] = []
    for targ in snapshot["targets"]:
        disabled = targ["mode"] == "disabled"
        rows.append(
            {
                "INTERFACE": str(targ["interface"]),
                "MODE": str(targ["mode"]),
                "TESTADDR": "" if disabled else name(str(targ["testaddr"])),
                "TARGETS": " ".join(name(str(t)) for t in targ["targets"]),
            }
        )
    return rows


def _rows(snapshot: Mapping[str, Any], mode: Mode, name: Callable[[str], str]) -> list[Row]:
    """The snapshot's rows for ``mode``; a malformed snapshot is one error line."""
    version = snapshot.get("version", SNAPSHOT_VERSION)
    if version != SNAPSHOT_VERSION:
        raise IpmpError(
            f"ipmpstat: in.mpathd sent status version {version}; "
            f"this ipmpstat reads version {SNAPSHOT_VERSION}"
        )
    try:
        if mode == "a":
            return _address_rows(snapshot, name)
        if mode == "g":
            return _group_rows(snapshot)
        if mode == "i":
            return _interface_rows(snapshot)
        if mode == "t":
            return _target_rows(snapshot, name)
    except (KeyError, TypeError, AttributeError) as exc:
        raise IpmpError(f"ipmpstat: malformed status from in.mpathd: {exc!r}") from None
    raise IpmpError("ipmpstat: -p shows probe records, not a snapshot; use render_probe()")


def _probe_row(record: Mapping[str, Any], start_time: float, name: Callable[[str], str]) -> Row:
    """One probe record's values.

    As illumos measures them: NETRTT from the send to the kernel's receipt of
    the reply (its receive timestamp), RTT up to in.mpathd's handling of it,
    so RTT - NETRTT is the time the reply waited for the daemon.  A lost
    probe has neither (``--``); NETRTT is empty too when the stack could not
    tell when the kernel received the reply.
    """
    try:
        return {
            "TIME": f"{float(record['time']) - start_time:.2f}s",
            "INTERFACE": str(record["interface"]),
            "PROBE": str(int(record["probe"])),
            "NETRTT": _ms(record.get("netrtt_ms")),
            "RTT": _ms(record["rtt_ms"]),
            "RTTAVG": _ms(record.get("rttavg_ms")),
            "TARGET": name(str(record["target"])),
            "RTTDEV": _ms(record.get("rttdev_ms")),
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise IpmpError(f"ipmpstat: malformed probe record from in.mpathd: {exc!r}") from None


def _human_line(fields: Sequence[Field], values: Sequence[str]) -> str:
    """One line as ipmpstat.c's ofmt_output() lays it out (see module docstring)."""
    out: list[str] = []
    overflow = 0
    last = len(fields) - 1
    for index, (field, raw) in enumerate(zip(fields, values, strict=True)):
        value = raw or "--"
        if index == last:
            out.append(value)
            break
        width = field.width
        if len(value) + overflow >= width:
            overflow += len(value) - width + 1
            out.append(value + " ")
            continue
        if overflow > 0:
            compress = min(overflow, width - len(value))
            overflow -= compress
            width -= compress
        out.append(value.ljust(width))
    return "".join(out)


def _parsable_line(values: Sequence[str]) -> str:
    if len(values) == 1:
        return values[0]
    return ":".join(v.replace("\\", "\\\\").replace(":", "\\:") for v in values)


def _line(fields: Sequence[Field], row: Row, parsable: bool) -> str:
    values = [row[field.name] for field in fields]
    return _parsable_line(values) if parsable else _human_line(fields, values)


def _header(fields: Sequence[Field]) -> str:
    return _human_line(fields, [field.name for field in fields])


def render(
    snapshot: Mapping[str, Any],
    mode: str,
    fields: str | Sequence[str] | None = None,
    parsable: bool = False,
    numeric: bool = False,
    resolve: Resolver | None = None,
) -> str:
    """``ipmpstat -a|-g|-i|-t`` output for ``snapshot``, without a final newline.

    ``fields`` is ``-o``'s argument, ``parsable`` is ``-P``, ``numeric`` is
    ``-n``.  Without ``-n``, addresses are shown as ``resolve`` names them
    (when it returns a name); the default resolves nothing.  Human format
    starts with a header line (shown even when there are no rows); parsable
    format has none, so no rows give an empty string.
    """
    header, lines = render_lines(snapshot, mode, fields, parsable, numeric, resolve)
    if header is not None:
        lines.insert(0, header)
    return "\n".join(lines)


def render_lines(
    snapshot: Mapping[str, Any],
    mode: str,
    fields: str | Sequence[str] | None = None,
    parsable: bool = False,
    numeric: bool = False,
    resolve: Resolver | None = None,
) -> tuple[str | None, list[str]]:
    """The header (None in parsable format) and the lines of :func:`render`.

    Kept apart so that a terminal can be shown the header again at each
    screenful, as ipmpstat does.
    """
    chosen = select_fields(mode, fields, parsable)
    rows = _rows(snapshot, _mode(mode), _namer(numeric, resolve))
    lines = [_line(chosen, row, parsable) for row in rows]
    return (None if parsable else _header(chosen)), lines


SECTIONS: dict[Mode, str] = {"a": "addresses", "g": "groups", "i": "interfaces", "t": "targets"}
"""The snapshot section each table mode shows."""


def render_json(snapshot: Mapping[str, Any], mode: str) -> str:
    """``ipmpstat -a|-g|-i|-t --json``: the snapshot's own records for the mode.

    One schema for the socket and the command (src/ipmp/schema/status.json,
    docs/status-schema.md): ``{"version": 1, "<section>": [...]}`` with the
    records exactly as in.mpathd sent them, numbers as numbers, booleans as
    booleans, lists as lists.
    """
    _rows(snapshot, _mode(mode), _namer(True, None))  # checks its version and shape
    section = SECTIONS[_mode(mode)]
    return json.dumps({"version": snapshot["version"], section: list(snapshot[section])})


def probe_header(fields: str | Sequence[str] | None = None) -> str:
    """The header line of ``ipmpstat -p`` (human format only)."""
    return _header(select_fields("p", fields))


def render_probe(
    record: Mapping[str, Any],
    start_time: float,
    fields: str | Sequence[str] | None = None,
    parsable: bool = False,
    numeric: bool = False,
    resolve: Resolver | None = None,
) -> str:
    """One ``ipmpstat -p`` line for a probe record (no newline).

    ``record`` is shaped ``{"time", "interface", "family", "probe", "target",
    "rtt_ms", "rttavg_ms", "rttdev_ms"}`` (RTTs ``None`` when unknown or
    lost); TIME is ``record["time"] - start_time``, negative for probes sent
    before ipmpstat started.  See :func:`_probe_row` for NETRTT.
    """
    chosen = select_fields("p", fields, parsable)
    return _line(chosen, _probe_row(record, start_time, _namer(numeric, resolve)), parsable)


def render_probe_json(record: Mapping[str, Any]) -> str:
    """One probe record as a one-line JSON object (``ipmpstat -p --json``), as sent.

    Its ``time`` is in.mpathd's clock, the clock of the snapshot's ``now``.
    """
    _probe_row(record, 0.0, _namer(True, None))  # checks its shape
    return json.dumps(dict(record))
