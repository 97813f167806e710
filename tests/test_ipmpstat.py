"""``ipmpstat`` output (facts §7): formatting from a snapshot and the command line.

The four examples of facts §7.3 (Oracle's docs) are rebuilt from hand-made
snapshots.  Oracle's listings are typed by hand: their column widths differ
from example to example (GROUP is 8 wide in ``-g`` and 11 in ``-i``, ADDRESS
16 and MODE 14) and match neither ipmpstat.c's field tables (GROUP 12,
ADDRESS 26, MODE 10, ...) nor each other.  The formatter uses ipmpstat.c's
widths and layout, so each example is checked twice: byte for byte against
the output ipmpstat.c's widths give, and cell for cell (every value, in every
row and column) against the doc's lines as printed.

The doc's examples also disagree with each other (facts §7.3): ``-g`` shows
field2 as ``fops0 fops3 (fops2) [fops1]`` while ``-i`` has fops1 INACTIVE and
fops2 failed; ``-g`` shows no FDT for acctg1 while ``-i`` has hme1 probing
(PROBE ``unknown``).  Each example therefore gets its own snapshot, consistent
in itself.  (The doc's ``-i`` FLAGS ``-i-----`` for INACTIVE fops1 is also odd,
``i`` being the first position; FLAGS come from the snapshot as they are.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import pytest
from jsonschema import validate

from ipmp.cli import ipmpstat as cli
from ipmp.core.errors import IpmpError
from ipmp.core.ipmpstat_format import (
    FIELDS,
    probe_header,
    render,
    render_json,
    render_probe,
    render_probe_json,
    select_fields,
    unknown_fields_warning,
)
from ipmp.core.status import snapshot
from simtools import boot, settle

SCHEMA = json.loads((resources.files("ipmp") / "schema" / "status.json").read_text())


def conforms(record: Any, kind: str) -> None:
    """Validate one record against the schema's definition ``kind``."""
    validate(record, {"$defs": SCHEMA["$defs"], "$ref": f"#/$defs/{kind}"})


# --- hand-built snapshots -------------------------------------------------------------------


def _group(
    name: str,
    state: str,
    fdt_ms: float | None,
    active: list[str],
    inactive: list[str] | None = None,
    unusable: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "group": name,
        "groupname": name,
        "state": state,
        "fdt_ms": fdt_ms,
        "active": active,
        "inactive": inactive or [],
        "unusable": unusable or [],
    }


def _nic(
    name: str, active: bool, group: str, flags: str, link: str, probe: str, state: str
) -> dict[str, Any]:
    return {
        "interface": name,
        "active": active,
        "group": group,
        "flags": flags,
        "link": link,
        "probe": probe,
        "state": state,
        "present": True,
        "index": 2,
    }


def _snapshot(**parts: list[dict[str, Any]]) -> dict[str, Any]:
    base: dict[str, Any] = {
        "version": 1,
        "now": 100.0,
        "groups": [],
        "interfaces": [],
        "addresses": [],
        "targets": [],
    }
    base.update(parts)
    return base


# -g: field2 has fops2 INACTIVE and fops1 unusable; acctg1 probes nowhere (no FDT).
GROUP_SITE = _snapshot(
    groups=[
        _group("itops0", "ok", 10000, ["subitops0", "subitops1"]),
        _group("acctg1", "failed", None, [], unusable=["hme0", "hme1"]),
        _group("field2", "degraded", 20000, ["fops0", "fops3"], ["fops2"], ["fops1"]),
    ],
    interfaces=[
        _nic("subitops0", True, "itops0", "--mb---", "up", "ok", "ok"),
        _nic("subitops1", True, "itops0", "-------", "up", "disabled", "ok"),
        _nic("hme0", False, "acctg1", "-------", "unknown", "disabled", "offline"),
        _nic("hme1", False, "acctg1", "-s-----", "down", "disabled", "failed"),
        _nic("fops0", True, "field2", "--mb---", "unknown", "ok", "ok"),
        _nic("fops1", False, "field2", "-------", "up", "failed", "failed"),
        _nic("fops2", False, "field2", "i------", "up", "ok", "ok"),
        _nic("fops3", True, "field2", "-------", "up", "ok", "ok"),
    ],
)

# -i (the six rows facts §7.3 keeps): fops1 INACTIVE, fops2 failed, hme1 probing.
INTERFACE_SITE = _snapshot(
    groups=[
        _group("itops0", "ok", 10000, ["subitops0", "subitops1"]),
        _group("acctg1", "failed", 10000, [], unusable=["hme0", "hme1"]),
        _group("field2", "degraded", 20000, [], ["fops1"], ["fops2"]),
    ],
    interfaces=[
        _nic("subitops0", True, "itops0", "--mb---", "up", "ok", "ok"),
        _nic("subitops1", True, "itops0", "-------", "up", "disabled", "ok"),
        _nic("hme0", False, "acctg1", "-------", "unknown", "disabled", "offline"),
        _nic("hme1", False, "acctg1", "is-----", "down", "unknown", "failed"),
        _nic("fops1", False, "field2", "-i-----", "up", "ok", "ok"),
        _nic("fops2", False, "field2", "-------", "up", "failed", "failed"),
    ],
)

ADDRESS_SITE = _snapshot(
    groups=GROUP_SITE["groups"],
    addresses=[
        {
            "address": "192.168.10.10",
            "family": "inet",
            "prefixlen": 24,
            "state": "up",
            "group": "itops0",
            "inbound": "subitops0",
            "outbound": ["subitops0", "subitops1"],
            "home": "subitops0",
            "logical": "subitops0:1",
        },
        {
            "address": "192.0.0.100",
            "family": "inet",
            "prefixlen": 24,
            "state": "up",
            "group": "acctg1",
            "inbound": "",
            "outbound": [],
            "home": "hme0",
            "logical": "hme0:1",
        },
        {
            "address": "128.0.0.102",
            "family": "inet",
            "prefixlen": 16,
            "state": "down",
            "group": "field2",
            "inbound": "",
            "outbound": [],
            "home": "fops0",
            "logical": "fops0:3",
        },
    ],
)

TARGET_SITE = _snapshot(
    targets=[
        {
            "interface": "subitops0",
            "family": "inet",
            "mode": "routes",
            "testaddr": "192.168.85.30",
            "targets": ["192.168.85.1", "192.168.85.3"],
        },
        {"interface": "subitops1", "family": "", "mode": "disabled", "testaddr": "", "targets": []},
        {
            "interface": "fops0",
            "family": "inet",
            "mode": "multicast",
            "testaddr": "128.9.0.200",
            "targets": ["128.0.0.1", "128.0.0.2"],
        },
    ],
)

# --- facts §7.3, as printed in the doc ------------------------------------------------------

DOC_G = """\
GROUP   GROUPNAME   STATE      FDT        INTERFACES
itops0  itops0      ok         10.00s     subitops0 subitops1
acctg1  acctg1      failed     --         [hme0 hme1]
field2  field2      degraded   20.00s     fops0 fops3 (fops2) [fops1]"""

DOC_I = """\
INTERFACE   ACTIVE   GROUP      FLAGS      LINK       PROBE      STATE
subitops0   yes      itops0     --mb---    up         ok         ok
subitops1   yes      itops0     -------    up         disabled   ok
hme0        no       acctg1     -------    unknown    disabled   offline
hme1        no       acctg1     is-----    down       unknown    failed
fops1       no       field2     -i-----    up         ok         ok
fops2       no       field2     -------    up         failed     failed"""

DOC_AN = """\
ADDRESS         STATE    GROUP      INBOUND     OUTBOUND
192.168.10.10   up       itops0     subitops0   subitops0 subitops1
192.0.0.100     up       acctg1     --          --
128.0.0.102     down     field2     --          --"""

DOC_NT = """\
INTERFACE   MODE          TESTADDR        TARGETS
subitops0   routes        192.168.85.30   192.168.85.1 192.168.85.3
subitops1   disabled      --              --
fops0       multicast     128.9.0.200     128.0.0.1 128.0.0.2"""

# --- the same data with ipmpstat.c's widths (-g 12 12 10 10, -i 12 8 12 10 10 10, ...) ------

WANT_G = """\
GROUP       GROUPNAME   STATE     FDT       INTERFACES
itops0      itops0      ok        10.00s    subitops0 subitops1
acctg1      acctg1      failed    --        [hme0 hme1]
field2      field2      degraded  20.00s    fops0 fops3 (fops2) [fops1]"""

WANT_I = """\
INTERFACE   ACTIVE  GROUP       FLAGS     LINK      PROBE     STATE
subitops0   yes     itops0      --mb---   up        ok        ok
subitops1   yes     itops0      -------   up        disabled  ok
hme0        no      acctg1      -------   unknown   disabled  offline
hme1        no      acctg1      is-----   down      unknown   failed
fops1       no      field2      -i-----   up        ok        ok
fops2       no      field2      -------   up        failed    failed"""

WANT_AN = """\
ADDRESS                   STATE  GROUP       INBOUND     OUTBOUND
192.168.10.10             up     itops0      subitops0   subitops0 subitops1
192.0.0.100               up     acctg1      --          --
128.0.0.102               down   field2      --          --"""

WANT_NT = """\
INTERFACE   MODE      TESTADDR            TARGETS
subitops0   routes    192.168.85.30       192.168.85.1 192.168.85.3
subitops1   disabled  --                  --
fops0       multicast 128.9.0.200         128.0.0.1 128.0.0.2"""


def _cells(text: str) -> list[list[str]]:
    """Split each line at the columns where the header's words start."""
    lines = text.splitlines()
    header = lines[0]
    starts = [i for i, c in enumerate(header) if c != " " and (i == 0 or header[i - 1] == " ")]
    bounds = [*starts[1:], None]
    return [[line[a:b].strip() for a, b in zip(starts, bounds, strict=True)] for line in lines]


EXAMPLES = [
    pytest.param(GROUP_SITE, "g", DOC_G, WANT_G, id="ipmpstat -g"),
    pytest.param(INTERFACE_SITE, "i", DOC_I, WANT_I, id="ipmpstat -i"),
    pytest.param(ADDRESS_SITE, "a", DOC_AN, WANT_AN, id="ipmpstat -an"),
    pytest.param(TARGET_SITE, "t", DOC_NT, WANT_NT, id="ipmpstat -nt"),
]


@pytest.mark.parametrize(("site", "mode", "doc", "want"), EXAMPLES)
def test_doc_examples_byte_for_byte_with_ipmpstat_widths(
    site: dict[str, Any], mode: str, doc: str, want: str
) -> None:
    assert render(site, mode, numeric=True) == want


@pytest.mark.parametrize(("site", "mode", "doc", "want"), EXAMPLES)
def test_doc_examples_cell_for_cell(site: dict[str, Any], mode: str, doc: str, want: str) -> None:
    ours = render(site, mode, numeric=True)
    assert _cells(ours) == _cells(doc)
    # Only the padding differs: the doc's hand-typed widths against ipmpstat.c's.
    assert [line.split() for line in ours.splitlines()] == [
        line.split() for line in doc.splitlines()
    ]


def test_columns_start_where_the_widths_say() -> None:
    for mode, site in (("g", GROUP_SITE), ("i", INTERFACE_SITE), ("t", TARGET_SITE)):
        header = render(site, mode).splitlines()[0]
        column = 0
        for field in select_fields(mode, "all"):
            assert header[column:].startswith(field.name)
            column += field.width


def test_oracle_parsable_example() -> None:
    # Oracle docs 819-6990 ggyfb: ipmpstat -P -o groupname,fdt,interfaces (with -g).
    assert render(GROUP_SITE, "g", "groupname,fdt,interfaces", parsable=True) == (
        "itops0:10.00s:subitops0 subitops1\n"
        "acctg1::[hme0 hme1]\n"
        "field2:20.00s:fops0 fops3 (fops2) [fops1]"
    )


def test_group_interfaces_listing() -> None:
    site = _snapshot(
        groups=[
            _group("a", "degraded", None, ["net2", "net5"], ["net7"], ["net6"]),
            _group("b", "failed", None, [], ["net1"], ["net3", "net4"]),
            _group("c", "ok", None, [], ["net8"], []),
            _group("d", "failed", None, [], [], []),
        ]
    )
    assert render(site, "g", "interfaces", parsable=True).split("\n") == [
        "net2 net5 (net7) [net6]",
        "(net1) [net3 net4]",
        "(net8)",
        "",
    ]


# --- human layout: overflow and compression (ipmpstat.c ofmt_output) ------------------------


def test_long_value_pushes_the_line_then_columns_realign() -> None:
    site = _snapshot(groups=[_group("verylonggroupname", "ok", None, ["a"])])
    site["groups"][0]["groupname"] = "x"
    line = render(site, "g").splitlines()[1]
    # GROUP overflows by 6; GROUPNAME gives back its spare room; STATE is in place again.
    assert line == "verylonggroupname x     ok        --        a"
    header = render(site, "g").splitlines()[0]
    assert line.index("ok") == header.index("STATE")


def test_overflow_carries_across_full_columns() -> None:
    site = _snapshot(
        groups=[_group("g" * 14, "s" * 11, 1234.0, ["a"])],
    )
    site["groups"][0]["groupname"] = "n" * 11
    line = render(site, "g").splitlines()[1]
    # Each overflowing value is followed by exactly one space.
    assert line == f"{'g' * 14} {'n' * 11} {'s' * 11} 1.23s a"


def test_value_exactly_as_wide_as_its_column_gets_one_space() -> None:
    site = _snapshot(groups=[_group("g" * 12, "ok", None, ["a"])])
    site["groups"][0]["groupname"] = "x"
    assert render(site, "g").splitlines()[1] == f"{'g' * 12} x          ok        --        a"


def test_empty_fields_show_dashes_and_last_field_is_not_padded() -> None:
    out = render(TARGET_SITE, "t", "testaddr,mode")
    assert out.splitlines() == [
        "TESTADDR            MODE",
        "192.168.85.30       routes",
        "--                  disabled",
        "128.9.0.200         multicast",
    ]
    assert not any(line.endswith(" ") for line in render(ADDRESS_SITE, "a").splitlines())


def test_single_field_human() -> None:
    assert render(GROUP_SITE, "g", "fdt") == "FDT\n10.00s\n--\n20.00s"


def test_no_rows() -> None:
    empty = _snapshot()
    assert render(empty, "g") == "GROUP       GROUPNAME   STATE     FDT       INTERFACES"
    assert render(empty, "g", "group", parsable=True) == ""
    assert json.loads(render_json(empty, "i")) == {"version": 1, "interfaces": []}


# --- -o field selection ---------------------------------------------------------------------


def test_fields_are_case_insensitive_in_order_and_may_repeat() -> None:
    assert render(GROUP_SITE, "g", "State,GROUP,state", parsable=True).splitlines()[0] == (
        "ok:itops0:ok"
    )
    assert [f.name for f in select_fields("i", ["link", "Active"])] == ["LINK", "ACTIVE"]


def test_all_selects_every_field_including_hidden_ones() -> None:
    assert [f.name for f in select_fields("p", "ALL")] == [f.name for f in FIELDS["p"]]
    assert [f.name for f in select_fields("p")] == [
        "TIME",
        "INTERFACE",
        "PROBE",
        "NETRTT",
        "RTT",
        "TARGET",
    ]
    for mode in "agit":
        assert select_fields(mode) == select_fields(mode, "all")


@pytest.mark.parametrize(
    ("mode", "fields", "parsable", "message"),
    [
        # libofmt's messages (ofmt_strerror), as illumos ipmpstat prints them.
        ("g", "xyz", False, "ipmpstat: no valid output fields"),
        ("g", "group,Bogus", True, "ipmpstat: unknown output field: `Bogus'"),
        ("g", "x,group,y", True, "ipmpstat: unknown output fields: `x' `y'"),
        ("a", "interface", False, "ipmpstat: no valid output fields"),
        ("g", None, True, "ipmpstat: output fields must be specified in parsable mode"),
        ("g", "all", True, "ipmpstat: output field `all' invalid in parsable mode"),
        ("g", ",", False, "ipmpstat: no valid output fields"),
        ("x", None, False, "ipmpstat: unknown output mode 'x'; expected one of a, g, i, p, t"),
    ],
)
def test_field_errors(mode: str, fields: str | None, parsable: bool, message: str) -> None:
    with pytest.raises(IpmpError) as info:
        render(GROUP_SITE, mode, fields, parsable=parsable)
    assert info.value.message == message


def test_human_mode_leaves_unknown_fields_out() -> None:
    assert render(GROUP_SITE, "g", "bogus,state,group,x") == render(GROUP_SITE, "g", "state,group")
    assert unknown_fields_warning("g", "bogus,state") == (
        "ipmpstat: ignoring unknown output field: `bogus'"
    )
    assert unknown_fields_warning("g", "a,state,b") == (
        "ipmpstat: ignoring unknown output fields: `a' `b'"
    )
    assert unknown_fields_warning("g", "state") is None
    assert unknown_fields_warning("g", "all") is None


def test_snapshot_errors() -> None:
    with pytest.raises(IpmpError, match="-p shows probe records"):
        render(GROUP_SITE, "p", "time")
    with pytest.raises(IpmpError, match=r"malformed status from in\.mpathd"):
        render({"groups": [{"group": "x"}]}, "g")
    with pytest.raises(IpmpError, match="status version 2; this ipmpstat reads version 1"):
        render({**GROUP_SITE, "version": 2}, "g")


# --- -P parsable ----------------------------------------------------------------------------

V6_SITE = _snapshot(
    groups=[_group("back\\slash", "ok", 10000, ["net0"])],
    targets=[
        {
            "interface": "net0",
            "family": "inet6",
            "mode": "multicast",
            "testaddr": "fe80::214:4fff:fe0e:1",
            "targets": ["fe80::1", "fe80::2"],
        }
    ],
)


def test_parsable_escapes_colon_and_backslash_with_several_fields() -> None:
    assert render(V6_SITE, "t", "testaddr,targets", parsable=True) == (
        "fe80\\:\\:214\\:4fff\\:fe0e\\:1:fe80\\:\\:1 fe80\\:\\:2"
    )
    assert render(V6_SITE, "g", "group,fdt", parsable=True) == "back\\\\slash:10.00s"


def test_parsable_single_field_is_not_escaped() -> None:
    assert render(V6_SITE, "t", "testaddr", parsable=True) == "fe80::214:4fff:fe0e:1"
    assert render(V6_SITE, "g", "group", parsable=True) == "back\\slash"


def test_parsable_empty_fields_print_nothing() -> None:
    assert render(TARGET_SITE, "t", "interface,testaddr,targets", parsable=True).splitlines() == [
        "subitops0:192.168.85.30:192.168.85.1 192.168.85.3",
        "subitops1::",
        "fops0:128.9.0.200:128.0.0.1 128.0.0.2",
    ]


# --- names: -n against an injected resolver -------------------------------------------------

NAMES = {
    "192.168.10.10": "itops0-data",
    "192.168.85.30": "subitops0-test",
    "192.168.85.1": "router1",
    "128.0.0.1": "field-gw",
}


def test_addresses_resolve_unless_numeric() -> None:
    resolved = render(ADDRESS_SITE, "a", "address", resolve=NAMES.get)
    assert resolved.splitlines()[1:] == ["itops0-data", "192.0.0.100", "128.0.0.102"]
    assert render(ADDRESS_SITE, "a", "address", numeric=True, resolve=NAMES.get) == (
        "ADDRESS\n192.168.10.10\n192.0.0.100\n128.0.0.102"
    )
    # Without a resolver nothing is resolved.
    assert render(ADDRESS_SITE, "a") == render(ADDRESS_SITE, "a", numeric=True)


def test_target_mode_resolves_testaddr_and_each_target() -> None:
    out = render(TARGET_SITE, "t", "testaddr,targets", parsable=True, resolve=NAMES.get)
    assert out.splitlines() == [
        "subitops0-test:router1 192.168.85.3",
        ":",
        "128.9.0.200:field-gw 128.0.0.2",
    ]


# --- --json ---------------------------------------------------------------------------------


def test_json_is_the_snapshots_own_typed_records() -> None:
    out = json.loads(render_json(GROUP_SITE, "g"))
    assert out == {"version": 1, "groups": GROUP_SITE["groups"]}
    assert out["groups"][1]["fdt_ms"] is None and out["groups"][0]["fdt_ms"] == 10000
    nics = json.loads(render_json(GROUP_SITE, "i"))["interfaces"]
    assert nics[0]["active"] is True and nics[0]["index"] == 2


@pytest.mark.parametrize("mode", ["a", "g", "i", "t"])
def test_json_of_every_mode_follows_the_schema(mode: str) -> None:
    site = {**GROUP_SITE, **{k: v for k, v in ADDRESS_SITE.items() if k == "addresses"}}
    site["targets"] = TARGET_SITE["targets"]
    out = json.loads(render_json(site, mode))
    section, kind = {
        "a": ("addresses", "address"),
        "g": ("groups", "group"),
        "i": ("interfaces", "interface"),
        "t": ("targets", "target"),
    }[mode]
    assert list(out) == ["version", section] and out[section]
    for record in out[section]:
        conforms(record, kind)
    assert render_json(site, mode) == render_json(site, mode)


def test_json_addresses_are_numeric_lists() -> None:
    out = json.loads(render_json(TARGET_SITE, "t"))["targets"]
    assert out[0]["targets"] == ["192.168.85.1", "192.168.85.3"]
    assert out[1]["mode"] == "disabled" and out[1]["targets"] == []


# --- -p probes ------------------------------------------------------------------------------

ACKED = {
    "time": 100.11,
    "interface": "net0",
    "family": "inet",
    "probe": 589,
    "target": "192.168.85.1",
    "rtt_ms": 0.76,
    "netrtt_ms": 0.52,
    "rttavg_ms": 0.76,
    "rttdev_ms": 0.19,
}
LOST = {
    **ACKED,
    "time": 101.5,
    "probe": 590,
    "rtt_ms": None,
    "netrtt_ms": None,
    "rttavg_ms": None,
    "rttdev_ms": None,
}


def test_probe_lines() -> None:
    assert probe_header() == "TIME      INTERFACE   PROBE  NETRTT    RTT       TARGET"
    assert (
        render_probe(ACKED, 100.0)
        == "0.11s     net0        589    0.52ms    0.76ms    192.168.85.1"
    )
    # A stack that cannot tell the kernel's receive time leaves NETRTT empty.
    assert (
        render_probe({**ACKED, "netrtt_ms": None}, 100.0, "netrtt,rtt")
        == ("NETRTT    RTT\n--        0.76ms".splitlines()[1])
    )
    assert (
        render_probe(LOST, 100.0) == "1.50s     net0        590    --        --        192.168.85.1"
    )
    # Probes sent before ipmpstat started have negative times.
    assert render_probe(ACKED, 101.0).startswith("-0.89s    net0")


def test_probe_hidden_fields_and_parsable() -> None:
    assert probe_header("all") == (
        "TIME      INTERFACE   PROBE  NETRTT    RTT       RTTAVG    TARGET              RTTDEV"
    )
    assert render_probe(ACKED, 100.0, "all") == (
        "0.11s     net0        589    0.52ms    0.76ms    0.76ms    192.168.85.1        0.19ms"
    )
    assert render_probe(LOST, 100.0, "probe,rtt,rttavg", parsable=True) == "590::"
    v6 = {**ACKED, "target": "fe80::1"}
    assert render_probe(v6, 100.0, "interface,target", parsable=True) == "net0:fe80\\:\\:1"


def test_probe_target_resolution() -> None:
    assert render_probe(ACKED, 100.0, "target", resolve=NAMES.get) == "router1"
    assert render_probe(ACKED, 100.0, "target", numeric=True, resolve=NAMES.get) == "192.168.85.1"


def test_probe_json_and_malformed_records() -> None:
    assert json.loads(render_probe_json(LOST)) == LOST
    conforms(json.loads(render_probe_json(ACKED)), "probe")
    with pytest.raises(IpmpError, match="malformed probe record"):
        render_probe({"time": 1.0}, 0.0)
    with pytest.raises(IpmpError, match="malformed probe record"):
        render_probe_json({"time": 1.0})
    with pytest.raises(IpmpError, match="output fields must be specified in parsable mode"):
        render_probe(ACKED, 0.0, parsable=True)


# --- a real snapshot from the simulator -----------------------------------------------------


def test_simulated_active_standby_with_hme0_cable_pulled() -> None:
    runner = settle(boot("active-standby"))
    runner.engine.drain_probe_records()
    runner.apply(lambda host, now: host.set_link("hme0", False, now))
    runner.run_for(20)
    site = snapshot(runner.engine)

    assert render(site, "g") == (
        "GROUP       GROUPNAME   STATE     FDT       INTERFACES\n"
        "test        test        degraded  10.00s    hme1 [hme0]"
    )
    assert render(site, "i") == (
        "INTERFACE   ACTIVE  GROUP       FLAGS     LINK      PROBE     STATE\n"
        "hme0        no      test        -------   down      failed    failed\n"
        "hme1        yes     test        -smbM--   up        ok        ok"
    )
    assert render(site, "a").splitlines()[1] == (
        "192.168.85.19             up     test        hme1        hme1"
    )
    targets = render(site, "t").splitlines()
    assert targets[1] == "hme0        routes    192.168.85.21       192.168.85.1 192.168.85.2"
    # A 24-character IPv6 test address overflows TESTADDR (20): one space, then TARGETS.
    assert targets[2] == "hme0        routes    fe80::a00:20ff:feb9:19fa fe80::1 fe80::2"

    validate(site, SCHEMA)  # the daemon's own snapshot follows the schema it documents
    records = runner.engine.drain_probe_records()
    assert records
    for record in records:
        conforms(record, "probe")
        assert record["netrtt_ms"] is not None and record["netrtt_ms"] <= record["rtt_ms"]
    lines = [render_probe(r, records[0]["time"]) for r in records]
    assert lines[0].startswith("0.00s     hme1        ")
    assert all(" hme1 " in line for line in lines)  # hme0 has no link: it sends nothing
    assert all(line.split()[3].endswith("ms") for line in lines)


# --- the command line -----------------------------------------------------------------------


def _no_fetch() -> dict[str, Any]:
    raise AssertionError("a bad command line must be refused before in.mpathd is asked")


def _run(
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    site: dict[str, Any] | None = None,
    records: list[dict[str, Any]] | None = None,
    **kwargs: Any,
) -> tuple[int, str, str]:
    fetch = _no_fetch if site is None else (lambda: site)

    def probes() -> Iterator[dict[str, Any]]:
        yield from records or []

    code = cli.main(argv, fetch, probes, resolve=kwargs.get("resolve", lambda a: None))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "site", "want"),
    [
        (["-g"], GROUP_SITE, WANT_G),
        (["-i"], INTERFACE_SITE, WANT_I),
        (["-an"], ADDRESS_SITE, WANT_AN),
        (["-nt"], TARGET_SITE, WANT_NT),
        (["-n", "-t"], TARGET_SITE, WANT_NT),
        (["-gP", "-o", "group,fdt"], GROUP_SITE, "itops0:10.00s\nacctg1:\nfield2:20.00s"),
        (["-P", "-ogroupname,FDT", "-g"], GROUP_SITE, "itops0:10.00s\nacctg1:\nfield2:20.00s"),
        (["-o", "state", "-o", "group", "-g"], GROUP_SITE, "GROUP\nitops0\nacctg1\nfield2"),
    ],
)
def test_cli_modes(
    capsys: pytest.CaptureFixture[str], argv: list[str], site: dict[str, Any], want: str
) -> None:
    assert _run(capsys, argv, site) == (0, want + "\n", "")


def test_cli_resolves_names_unless_n(capsys: pytest.CaptureFixture[str]) -> None:
    asked: list[str] = []

    def resolve(address: str) -> str | None:
        asked.append(address)
        return NAMES.get(address)

    code, out, _ = _run(capsys, ["-t", "-o", "targets", "-P"], TARGET_SITE, resolve=resolve)
    assert (code, out) == (0, "router1 192.168.85.3\n\nfield-gw 128.0.0.2\n")
    assert sorted(set(asked)) == sorted(asked)  # asked once per address
    asked.clear()
    _run(capsys, ["-nt"], TARGET_SITE, resolve=resolve)
    assert asked == []


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, ["-i", "--json"], INTERFACE_SITE)
    assert code == 0
    rows = json.loads(out)["interfaces"]
    assert rows[3] == {
        "interface": "hme1",
        "active": False,
        "group": "acctg1",
        "flags": "is-----",
        "link": "down",
        "probe": "unknown",
        "state": "failed",
        "present": True,
        "index": 2,
    }


def test_cli_parsable_with_no_rows_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(capsys, ["-aP", "-o", "address"], _snapshot()) == (0, "", "")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-g", "-i"], "ipmpstat: only one output format may be specified\n"),
        (["-gi"], "ipmpstat: only one output format may be specified\n"),
        (["-g", "-g"], "ipmpstat: only one output format may be specified\n"),
        (["-P", "-g"], "ipmpstat: output fields must be specified in parsable mode\n"),
        (["-o", "xyz", "-g"], "ipmpstat: no valid output fields\n"),
        (["-P", "-o", "rttavg", "-t"], "ipmpstat: unknown output field: `rttavg'\n"),
        (["-P", "-o", "all", "-i"], "ipmpstat: output field `all' invalid in parsable mode\n"),
        (["-g", "--json", "-P", "-o", "group"], "ipmpstat: --json cannot be combined with -P\n"),
        (
            ["-g", "--json", "-o", "group"],
            "ipmpstat: --json shows every field; it cannot be combined with -o\n",
        ),
    ],
)
def test_cli_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    # illumos ipmpstat exits 1 for every usage error (usage(), die()).
    assert _run(capsys, argv) == (1, "", message)


def test_cli_unknown_fields_warn_and_go_on(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, ["-g", "-o", "group,bogus,state"], GROUP_SITE)
    assert code == 0
    assert err == "ipmpstat: ignoring unknown output field: `bogus'\n"
    assert out.splitlines()[0].split() == ["GROUP", "STATE"]


def test_cli_header_repeats_each_screenful_on_a_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    many = _snapshot(
        groups=[_group(f"g{n}", "ok", 10000, [f"e{n}"]) for n in range(10)],
    )
    out = _run(capsys, ["-g", "-o", "group"], many)[1]
    assert out.splitlines().count("GROUP") == 1  # not a terminal: one header
    monkeypatch.setattr(cli.Screen, "for_stdout", classmethod(lambda c, h: c(h, 4)))
    out = _run(capsys, ["-g", "-o", "group"], many)[1]
    lines = out.splitlines()
    # As libofmt: the header is a row of the screen, so 3 rows follow each one.
    assert lines[:9] == ["GROUP", "g0", "g1", "g2", "GROUP", "g3", "g4", "g5", "GROUP"]
    assert lines.count("GROUP") == 4 and len(lines) == 14
    out = _run(capsys, ["-g", "-P", "-o", "group"], many)[1]
    assert "GROUP" not in out  # parsable output never has one


def test_cli_no_mode_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, [])
    assert (code, out) == (1, "")
    assert err == cli.USAGE + "\n"
    assert err.startswith("usage: ipmpstat [-n] [-o <field> [-P]] -a|-g|-i|-p|-t\n\n")
    assert "\t\t -P  display using parsable output mode\n" in err
    assert _run(capsys, ["-n"])[2] == err


@pytest.mark.parametrize(
    ("argv", "first"),
    [
        (["-x"], "ipmpstat: illegal option -- x"),
        (["--verbose", "-g"], "ipmpstat: illegal option -- verbose"),
        (["-g", "-o"], "ipmpstat: option requires an argument -- o"),
        (["-g", "extra"], "ipmpstat: unexpected argument 'extra'"),
    ],
)
def test_cli_bad_options_show_usage(
    capsys: pytest.CaptureFixture[str], argv: list[str], first: str
) -> None:
    code, out, err = _run(capsys, argv)
    assert (code, out) == (1, "")
    assert err == first + "\n" + cli.USAGE + "\n"


def test_cli_without_daemon(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["-g"]) == 1
    assert capsys.readouterr() == ("", "ipmpstat: cannot contact in.mpathd(8) -- is IPMP in use?\n")
    assert cli.main(["-p"], fetch=lambda: INTERFACE_SITE) == 1
    assert capsys.readouterr().err == "ipmpstat: cannot contact in.mpathd(8) -- is IPMP in use?\n"


def test_cli_malformed_snapshot(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, ["-i"], {"interfaces": [{"interface": "x"}]})
    assert (code, out) == (1, "")
    assert err.startswith("ipmpstat: malformed status from in.mpathd: KeyError(")


def test_cli_probes(capsys: pytest.CaptureFixture[str]) -> None:
    # TIME counts from ipmpstat's start: the snapshot's `now` (100.0) on the
    # daemon's clock; a probe sent before that would be negative.
    code, out, err = _run(capsys, ["-p", "-n"], INTERFACE_SITE, [ACKED, LOST])
    assert (code, err) == (0, "")
    assert out == (
        "TIME      INTERFACE   PROBE  NETRTT    RTT       TARGET\n"
        "0.11s     net0        589    0.52ms    0.76ms    192.168.85.1\n"
        "1.50s     net0        590    --        --        192.168.85.1\n"
    )
    earlier = {**INTERFACE_SITE, "now": 100.5}
    assert _run(capsys, ["-p", "-n"], earlier, [ACKED])[1].splitlines()[1].startswith("-0.39s")


def test_cli_probes_parsable_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, ["-pP", "-o", "probe,rtt"], INTERFACE_SITE, [ACKED, LOST])
    assert (code, out) == (0, "589:0.76ms\n590:\n")
    code, out, _ = _run(capsys, ["-p", "--json"], INTERFACE_SITE, [ACKED, LOST])
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [ACKED, LOST]


def test_cli_probes_stop_on_ctrl_c(capsys: pytest.CaptureFixture[str]) -> None:
    def probes() -> Iterator[dict[str, Any]]:
        yield ACKED
        raise KeyboardInterrupt

    assert cli.main(["-p"], lambda: INTERFACE_SITE, probes, resolve=lambda a: None) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "TIME      INTERFACE   PROBE  NETRTT    RTT       TARGET",
        "0.11s     net0        589    0.52ms    0.76ms    192.168.85.1",
    ]


def test_cli_probes_need_probing(capsys: pytest.CaptureFixture[str]) -> None:
    site = _snapshot(interfaces=[_nic("net0", True, "g", "--mb---", "up", "disabled", "ok")])
    code, out, err = _run(capsys, ["-p"], site, [ACKED])
    assert (code, out, err) == (1, "", "ipmpstat: probe-based failure detection is disabled\n")


def test_version_whatever_else_is_asked(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version", "-z"], _no_fetch) == 0
    assert capsys.readouterr().out.startswith("ipmpstat (ipmp) ")
