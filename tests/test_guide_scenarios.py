"""Every example and procedure of the Solaris 10 IPMP guide, replayed on the simulated host.

The guide is ../shared/spec/solaris10-ipmp-admin-guide.txt (chapters 30 and 31).
Each test boots a host (an example topology or an inline one), types the
guide's ``ifconfig`` commands, injects the guide's faults on the virtual clock
and compares what ``ipmp ifconfig`` prints with what the guide prints.

Comparing with the guide
------------------------
The guide's listings are wrapped at arbitrary places ("mtu 1500" on one line,
"index 2 inet ..." on the next; a flag list broken after a comma), whereas
ifconfig prints ``name: flags=... mtu N index N`` and then tab-indented
``inet ...`` / ``groupname ...`` lines.  So the comparison goes through
``squash``, which joins all whitespace into single spaces and drops the
whitespace after a comma (there is none inside a real flag list).  Only
whitespace is normalised: every other character must match.  The real layout
is checked separately and strictly by ``assert_layout`` on every status output.

Where the guide's printed output has an evident typo (a flags value whose bits
contradict the names printed next to it, ``netmask ffffffff00``, a broadcast
address of another subnet, every NIC at ``index 2``...), the expected text
carries the consistent value and a comment right there says what the guide
printed.  ``test_corrected_flags_agree_with_their_names`` checks every
corrected ``flags=HEX<NAMES>`` against the flag table (facts §8).

Where the engine disagrees with the guide itself, the test says what the guide
says and is marked ``xfail(strict=True)`` with the reason.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

import pytest

from ipmp.core.errors import IpmpError
from ipmp.core.flags import format_flags
from ipmp.core.hostname_files import load_hostname_file
from ipmp.core.model import HostTable
from ipmp.sim.examples import example_path
from ipmp.sim.host import SimAddress
from ipmp.sim.runner import VirtualRunner
from simtools import boot, boot_text, logged, settle, where

# ---------------------------------------------------------------------------
# Comparing outputs


def squash(text: str) -> str:
    """``text`` with line wrapping normalised away (see the module docstring).

    The guide wraps its listings wherever the page ended; ifconfig does not.
    Joining whitespace runs into one space makes the two comparable while
    every non-blank character still has to match.  A break inside a flag list
    leaves whitespace after a comma, which the real output never has, so that
    is dropped too.
    """
    return re.sub(r",\s+", ",", " ".join(text.split()))


def guide(*lines: str) -> str:
    """A listing from the guide, one string per printed line."""
    return "\n".join(lines)


_HEAD = re.compile(
    r"[a-z][a-z0-9_]*[0-9]+(:[0-9]+)?: flags=[0-9a-f]+(<[A-Za-z0-9,]+>)? mtu [0-9]+ index [0-9]+"
)
_ADDRESS = re.compile(r"\t(inet [0-9.]+ netmask [0-9a-f]+( broadcast [0-9.]+)?|inet6 \S+/[0-9]+)")
_EXTRA = re.compile(r"\t(groupname \S.*|ether [0-9a-f:]+)")


def assert_layout(output: str) -> None:
    """The real ifconfig layout: a head line, the address line, then groupname/ether."""
    lines = output.split("\n")
    assert lines and lines[0], "empty status output"
    expect = "head"
    for line in lines:
        if expect == "address":
            assert _ADDRESS.fullmatch(line), f"expected a tab-indented address line: {line!r}"
            expect = "any"
        elif _HEAD.fullmatch(line):
            expect = "address"
        else:
            assert expect == "any" and _EXTRA.fullmatch(line), f"unexpected line: {line!r}"
    assert expect == "any", "a status block without its address line"


def assert_status(output: str, expected: str) -> None:
    """``output`` is in ifconfig's layout and says what ``expected`` (a guide listing) says."""
    assert_layout(output)
    for hex_value, names in re.findall(r"flags=([0-9a-f]+)<([^>]*)>", squash(expected)):
        # A corrected listing must itself be consistent: bits and names agree.
        assert format_flags(int(hex_value, 16)) == f"{hex_value}<{names}>", expected
    assert squash(output) == squash(expected), (
        f"\n--- ipmp ifconfig printed:\n{output}\n--- the guide (typos corrected):\n{expected}"
    )


def ifconfig(runner: VirtualRunner, command: str, show_ether: bool = False) -> str:
    """Run ``ifconfig <command>``, split as a shell would (so ``group ""`` works)."""
    return runner.ifconfig(shlex.split(command), show_ether)


# ---------------------------------------------------------------------------
# Refusals leave everything as it was


@dataclass(frozen=True)
class State:
    """Everything a command could change: the daemon's table, the kernel, the output, the log."""

    table: HostTable
    kernel: tuple[SimAddress, ...]
    plumbed: tuple[tuple[str, tuple[str, ...]], ...]
    probing: tuple[tuple[str, str, str | None], ...]
    status: str
    logs: int


def state(runner: VirtualRunner) -> State:
    names = [spec.name for spec in runner.host.topology.nics]
    probes = runner.engine.probes
    return State(
        table=runner.engine.table.clone(),
        kernel=tuple(runner.host.addresses()),
        plumbed=tuple((name, tuple(runner.host.plumbed(name))) for name in names),
        probing=tuple(
            sorted((name, family, inst.test_address) for (name, family), inst in probes.items())
        ),
        status=ifconfig(runner, "-a"),
        logs=len(runner.logs),
    )


def refused(runner: VirtualRunner, command: str) -> str:
    """Run a command that must be refused; check the message and that nothing changed."""
    before = state(runner)
    with pytest.raises(IpmpError) as info:
        ifconfig(runner, command)
    message = str(info.value)
    assert "\n" not in message and message.startswith("ifconfig: "), message
    assert state(runner) == before, f"ifconfig {command} was refused but changed the state"
    return message


def failed(runner: VirtualRunner, name: str) -> bool:
    return runner.engine.table.nics[name].failed


def wait_failed(runner: VirtualRunner, name: str, timeout: float) -> float:
    at = runner.run_until_true(lambda: failed(runner, name), timeout)
    assert at is not None, f"{name} not failed within {timeout} s"
    return at


def wait_repaired(runner: VirtualRunner, name: str, timeout: float) -> float:
    at = runner.run_until_true(lambda: not failed(runner, name), timeout)
    assert at is not None, f"{name} not repaired within {timeout} s"
    return at


# ---------------------------------------------------------------------------
# Topologies (src/ipmp/sim/topology.py has the keys)

NET0 = """
[[link]]
name = "net0"
  [[link.neighbour]]
  name = "router1"
  role = "router"
  address = "192.168.85.1"
  address6 = "fe80::1"
  [[link.neighbour]]
  name = "router2"
  role = "router"
  address = "192.168.85.2"
  address6 = "fe80::2"
"""


def nic(
    name: str,
    mac: str,
    hostname: str | None = None,
    hostname6: str | None = None,
    link: str = "net0",
    extra: str = "",
) -> str:
    """One ``[[nic]]`` table; the hostname files are written as in the guide."""
    text = f'\n[[nic]]\nname = "{name}"\nmac = "{mac}"\nlink = "{link}"\n{extra}'
    if hostname is not None:
        text += f"hostname = '''\n{hostname}\n'''\n"
    if hostname6 is not None:
        text += f"hostname6 = '''\n{hostname6}\n'''\n"
    return text


def host(*parts: str, links: str = NET0) -> str:
    return '[host]\nname = "host1"\n' + links + "".join(parts)


# MAC addresses from the guide's listings: Examples 30-1/30-2 (hme0 ...19:fa,
# hme1 ...1b:fc), the IPv6 test address section and procedure step 6
# (hme0 ...17:fa), Example 31-6 (hme0 8:0:20:c1:8b:c3).
MAC_HME0 = "8:0:20:b9:19:fa"
MAC_HME1 = "8:0:20:b9:1b:fc"
MAC_HME0_PROCEDURE = "8:0:20:b9:17:fa"
MAC_HME0_31_6 = "8:0:20:c1:8b:c3"


def example_31_2(data: str, test: str, group: str) -> str:
    """A /etc/hostname.<if> line of Example 31-2."""
    return (
        f"{data} netmask + broadcast + group {group} up \\\n"
        f"    addif {test} deprecated -failover netmask + broadcast + up"
    )


def example_31_3(group: str) -> str:
    """The /etc/hostname6.<if> line of Example 31-3."""
    return f"-failover group {group} up"


# Interfaces already configured, but in no group: the starting point of "How
# to Configure an IPMP Group With Multiple Interfaces" ("Before You Begin: You
# need to have already configured the IPv4 addresses, and, if appropriate, the
# IPv6 addresses of all interfaces in the prospective IPMP group").
PLUMBED_NO_GROUP = host(
    nic("hme0", MAC_HME0_PROCEDURE, "192.168.85.19 netmask + broadcast + up", "up"),
    nic("hme1", MAC_HME1, "192.168.85.20 netmask + broadcast + up", "up"),
)


# ---------------------------------------------------------------------------
# Chapter 30: What Happens During Interface Failover (Examples 30-1, 30-2)

EXAMPLE_30_1 = guide(
    # guide: 9000843, the NOFAILOVER bit without its name; a data address is
    # 1000843, as hme1:2 in Example 30-2 shows.
    "hme0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4>",
    "      mtu 1500 index 2",
    # guide: netmask ffffffff00 (nine digits); a /24 is ffffff00.
    "      inet 192.168.85.19 netmask ffffff00 broadcast 192.168.85.255",
    "      groupname test",
    # guide: 9000843 lacks the DEPRECATED bit (0x40000) that its names list.
    "hme0:1: flags=9040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER>",
    "      mtu 1500",
    "      index 2 inet 192.168.85.21 netmask ffffff00 broadcast 192.168.85.255",
    # guide: 9000843 (as hme0); index 2, though hme1 is the second NIC (index 3).
    "hme1: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 3",
    # guide: a stray "8" before "inet".
    "      inet 192.168.85.20 netmask ffffff00 broadcast 192.168.85.255",
    "      groupname test",
    # guide: 9000843 (as hme0:1).
    "hme1:1: flags=9040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER>",
    "      mtu 1500",
    # guide: index 2.
    "      index 3 inet 192.168.85.22 netmask ffffff00 broadcast 192.168.85.255",
    "hme0: flags=a000841<UP,RUNNING,MULTICAST,IPv6,NOFAILOVER> mtu 1500 index 2",
    "      inet6 fe80::a00:20ff:feb9:19fa/10",
    "      groupname test",
    # guide: index 2.
    "hme1: flags=a000841<UP,RUNNING,MULTICAST,IPv6,NOFAILOVER> mtu 1500 index 3",
    "      inet6 fe80::a00:20ff:feb9:1bfc/10",
    "      groupname test",
)

EXAMPLE_30_2 = guide(
    "hme0: flags=19000842<BROADCAST,RUNNING,MULTICAST,IPv4,",
    "      NOFAILOVER,FAILED> mtu 0 index 2",
    "      inet 0.0.0.0 netmask 0",
    "      groupname test",
    "hme0:1: flags=19040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,",
    "      NOFAILOVER,FAILED> mtu 1500 index 2",
    # guide: netmask ffffffff00, broadcast 10.0.0.255 (not this subnet's).
    "      inet 192.168.85.21 netmask ffffff00 broadcast 192.168.85.255",
    # guide: 9000843 (NOFAILOVER bit, no name) and index 2, as in Example 30-1.
    "hme1: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 3",
    "      inet 192.168.85.20 netmask ffffff00 broadcast 192.168.85.255",
    "      groupname test",
    # guide: 9000843 (no DEPRECATED bit), as in Example 30-1.
    "hme1:1: flags=9040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,",
    "      NOFAILOVER> mtu 1500",
    # guide: index 2; broadcast 10.0.0.255.
    "      index 3 inet 192.168.85.22 netmask ffffff00 broadcast 192.168.85.255",
    # guide: index 6; a logical interface has its NIC's index (hme1: 3).
    "hme1:2: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 3",
    # guide: broadcast 192.168.18.255.
    "      inet 192.168.85.19 netmask ffffff00 broadcast 192.168.85.255",
    # guide: a000841, which lacks the FAILED bit (0x10000000) its names list.
    "hme0: flags=1a000841<UP,RUNNING,MULTICAST,IPv6,NOFAILOVER,FAILED> mtu 1500 index 2",
    "      inet6 fe80::a00:20ff:feb9:19fa/10",
    "      groupname test",
    # guide: index 2.
    "hme1: flags=a000841<UP,RUNNING,MULTICAST,IPv6,NOFAILOVER> mtu 1500 index 3",
    "      inet6 fe80::a00:20ff:feb9:1bfc/10",
    "      groupname test",
)


def test_example_30_1_configuration_before_a_failure() -> None:
    runner = settle(boot("active-active"))
    assert_status(ifconfig(runner, "-a"), EXAMPLE_30_1)
    assert runner.messages() == []


def test_example_30_2_hme0_failed_by_probes_with_the_link_up() -> None:
    runner = settle(boot("active-active"))
    start = runner.now
    runner.apply(lambda h, now: h.set_port_drop("hme0", True, now))
    # "If no replies are made in response to five consecutive probes, in.mpathd
    # considers the interface to have failed" within the 10 s default FDT.
    assert wait_failed(runner, "hme0", 30) - start <= 10.0
    assert runner.host.link_up("hme0")  # RUNNING stays: a probe failure
    assert_status(ifconfig(runner, "-a"), EXAMPLE_30_2)
    # "The address 192.168.85.19 then becomes accessible through hme1."
    assert runner.host.ping("192.168.85.19") == "hme1"
    assert runner.messages() == [
        "NIC failure detected on hme0 of group test",
        "Successfully failed over from NIC hme0 to NIC hme1",
    ]


def test_example_30_2_failback_restores_the_original_configuration() -> None:
    runner = settle(boot("active-active"))
    runner.apply(lambda h, now: h.set_port_drop("hme0", True, now))
    wait_failed(runner, "hme0", 30)
    runner.run_for(5)
    runner.apply(lambda h, now: h.set_port_drop("hme0", False, now))
    wait_repaired(runner, "hme0", 60)
    # "After failback, the original configuration is restored."
    assert_status(ifconfig(runner, "-a"), EXAMPLE_30_1)
    assert runner.host.ping("192.168.85.19") == "hme0"
    assert runner.messages()[-2:] == [
        "NIC repair detected on hme0 of group test",
        "Successfully failed back to NIC hme0",
    ]


def test_repair_takes_ten_probe_intervals() -> None:
    # The guide: "The minimum repair detection time is twice the failure
    # detection time, 20 seconds by default, because replies to 10 consecutive
    # probes must be received."  The reason is the rule; the figure is rounded:
    # with one probe every FDT/7 (facts §1.2: 10000 // 7 = 1428 ms) ten replies
    # take about ten intervals, 1.4 x FDT.  We follow the rule and the facts.
    runner = settle(boot("active-active"))
    runner.apply(lambda h, now: h.set_port_drop("hme0", True, now))
    wait_failed(runner, "hme0", 30)
    runner.run_for(5)
    start = runner.now
    runner.apply(lambda h, now: h.set_port_drop("hme0", False, now))
    took = wait_repaired(runner, "hme0", 60) - start
    interval = 10.0 / 7
    assert 9 * interval * 0.5 <= took <= 20.0


# ---------------------------------------------------------------------------
# IPv6 Test Addresses


def test_ipv6_link_local_test_address_output() -> None:
    runner = boot_text(host(nic("hme0", MAC_HME0_PROCEDURE, hostname6="-failover up")))
    # Printed exactly as in the guide: only whitespace may differ.
    assert_status(
        ifconfig(runner, "hme0 inet6"),
        guide(
            "hme0: flags=a000841<UP,RUNNING,MULTICAST,IPv6,NOFAILOVER> mtu 1500 index 2",
            "      inet6 fe80::a00:20ff:feb9:17fa/10",
        ),
    )
    assert ifconfig(runner, "hme0 inet6") == (
        "hme0: flags=a000841<UP,RUNNING,MULTICAST,IPv6,NOFAILOVER> mtu 1500 index 2\n"
        "\tinet6 fe80::a00:20ff:feb9:17fa/10"
    )


# ---------------------------------------------------------------------------
# How to Configure an IPMP Group With Multiple Interfaces (steps 2-6, 8)

PROCEDURE_STEP_4 = guide(
    # guide: 9000843 lacks the DEPRECATED bit that its names list.
    "hme0:1: flags=9040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER>",
    "mtu 1500 index 2",
    # guide: netmask ffffffff; "netmask +" on 192.168.85.21 gives ffffff00.
    "inet 192.168.85.21 netmask ffffff00 broadcast 192.168.85.255",
)

PROCEDURE_STEP_6 = guide(
    "hme0: flags=a000841<UP,RUNNING,MULTICAST,IPv6,NOFAILOVER> mtu 1500 index 2",
    "inet6 fe80::a00:20ff:feb9:17fa/10",
    # guide: "groupname test", but step 2 put hme0 in testgroup1.
    "groupname testgroup1",
)


def test_configure_group_with_multiple_interfaces_steps_2_to_6() -> None:
    runner = boot_text(PLUMBED_NO_GROUP)
    runner.run_for(5)
    # Step 2: place each physical interface into the group.
    assert ifconfig(runner, "hme0 group testgroup1") == ""
    # "placing the IPv4 instance of an interface under a particular group
    # automatically places the IPv6 instance under the same group."
    assert ifconfig(runner, "hme0 inet6").endswith("\n\tgroupname testgroup1")
    # Step 5: "If you first place physical interfaces with IPv6 addresses into
    # an IPMP group, physical interfaces with IPv4 addresses are also
    # implicitly placed in the same IPMP group."
    assert ifconfig(runner, "hme1 inet6 group testgroup1") == ""
    assert ifconfig(runner, "hme1").endswith("\n\tgroupname testgroup1")
    # Step 3: an IPv4 test address on hme0.
    created = ifconfig(
        runner, "hme0 addif 192.168.85.21 netmask + broadcast + -failover deprecated up"
    )
    assert created == "Created new logical interface hme0:1"
    # Step 4.
    assert_status(ifconfig(runner, "hme0:1"), PROCEDURE_STEP_4)
    # Step 5: the link-local address becomes the IPv6 test address.
    assert ifconfig(runner, "hme0 inet6 -failover") == ""
    # Step 6.
    assert_status(ifconfig(runner, "hme0 inet6"), PROCEDURE_STEP_6)
    # Step 8: more interfaces, the same way.
    created = ifconfig(
        runner, "hme1 addif 192.168.85.22 netmask + broadcast + -failover deprecated up"
    )
    assert created == "Created new logical interface hme1:1"
    assert ifconfig(runner, "hme1 inet6 -failover") == ""
    runner.run_for(30)
    engine = runner.engine
    assert engine.probes[("hme0", "inet")].test_address == "192.168.85.21"
    assert engine.probes[("hme0", "inet6")].test_address == "fe80::a00:20ff:feb9:17fa"
    assert engine.probes[("hme1", "inet")].test_address == "192.168.85.22"
    # The group now works as Example 30-2 shows: a probe failure moves .19.
    runner.apply(lambda h, now: h.set_port_drop("hme0", True, now))
    wait_failed(runner, "hme0", 30)
    assert where(runner, "192.168.85.19") == "hme1:2"


NO_TEST = (
    "No test address configured on interface {}; disabling probe-based failure detection on it"
)
TEST_NOW = (
    "Test address now configured on interface {}; enabling probe-based failure detection on it"
)


def test_troubleshooting_no_test_address_then_test_address_configured() -> None:
    # hme0 comes up in testgroup1 (from its hostname file) without a test address.
    runner = boot_text(
        host(
            nic("hme0", MAC_HME0, "192.168.85.19 netmask + broadcast + group testgroup1 up"),
            nic("hme1", MAC_HME1, example_31_2("192.168.85.20", "192.168.85.22", "testgroup1")),
        )
    )
    runner.run_for(19.9)
    assert logged(runner, "No test address") == []  # not within the 20 s grace period
    runner.run_for(40)
    assert logged(runner, "No test address") == [20.0]  # once, and only for hme0
    assert logged(runner, NO_TEST.format("hme0")) == [20.0]
    out = ifconfig(runner, "hme0 addif 192.168.85.21 netmask + broadcast + -failover deprecated up")
    assert out == "Created new logical interface hme0:1"
    assert logged(runner, TEST_NOW.format("hme0")) == [runner.now]
    assert runner.engine.probes[("hme0", "inet")].test_address == "192.168.85.21"
    runner.run_for(60)
    assert len(logged(runner, "No test address")) == 1
    assert len(logged(runner, "Test address now configured")) == 1


def test_troubleshooting_messages_for_a_group_made_with_ifconfig() -> None:
    runner = boot_text(PLUMBED_NO_GROUP)
    runner.run_for(5)
    joined = runner.now
    ifconfig(runner, "hme0 group testgroup1")
    ifconfig(runner, "hme1 group testgroup1")
    runner.run_for(45)
    times = logged(runner, NO_TEST.format("hme0"))
    assert len(times) == 1 and joined + 20.0 <= times[0] <= joined + 40.0
    out = ifconfig(runner, "hme0 addif 192.168.85.21 netmask + broadcast + -failover deprecated up")
    assert out == "Created new logical interface hme0:1"
    assert logged(runner, TEST_NOW.format("hme0")) == [runner.now]


NOT_PLUMBED_V6 = (
    "NIC qfe0 of group testgroup1 is not plumbed for IPv6 and may affect failover capability"
)


def _dual_stack_group_with_ipv4_only_qfe0(first: str) -> str:
    return host(
        nic(
            first,
            MAC_HME0,
            example_31_2("192.168.85.19", "192.168.85.21", "testgroup1"),
            example_31_3("testgroup1"),
        ),
        nic("qfe0", MAC_HME1, example_31_2("192.168.85.20", "192.168.85.22", "testgroup1")),
    )


def test_troubleshooting_ipv4_only_member_of_a_dual_stack_group() -> None:
    runner = boot_text(_dual_stack_group_with_ipv4_only_qfe0("qfe1"))
    runner.run_for(100)
    assert runner.messages() == [NOT_PLUMBED_V6]  # once, not every 20 s
    assert logged(runner, NOT_PLUMBED_V6) == [20.0]
    ifconfig(runner, "qfe0 inet6 plumb -failover up")
    runner.run_for(20)
    assert runner.messages()[-1] == (
        "NIC qfe0 is now consistent with group testgroup1 and failover capability is restored"
    )


def test_troubleshooting_qfe0_in_a_group_with_hme0() -> None:
    # The guide's message names qfe0 in testgroup1, the group of hme0.
    runner = boot_text(_dual_stack_group_with_ipv4_only_qfe0("hme0"))
    runner.run_for(30)
    assert runner.messages() == [NOT_PLUMBED_V6]


# ---------------------------------------------------------------------------
# Examples 31-1 .. 31-3


def test_example_31_1_test_address_and_failover_option() -> None:
    runner = boot_text(
        host(
            nic("hme0", MAC_HME0, "192.168.85.19 netmask + broadcast + group testgroup1 up"),
            nic("hme1", MAC_HME1, example_31_2("192.168.85.20", "192.168.85.22", "testgroup1")),
        )
    )
    runner.run_for(5)
    out = ifconfig(runner, "hme0 addif 192.168.85.21 netmask + broadcast + -failover deprecated up")
    assert out == "Created new logical interface hme0:1"
    assert_status(ifconfig(runner, "hme0:1"), PROCEDURE_STEP_4)
    runner.run_for(30)
    assert runner.engine.probes[("hme0", "inet")].test_address == "192.168.85.21"
    # "To turn on the failover attribute of the address, you would use the
    # failover option without the dash": it is then a data address.
    assert ifconfig(runner, "hme0:1 failover") == ""
    assert_status(
        ifconfig(runner, "hme0:1"),
        guide(
            "hme0:1: flags=1040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4>",
            "mtu 1500 index 2",
            "inet 192.168.85.21 netmask ffffff00 broadcast 192.168.85.255",
        ),
    )
    assert runner.engine.probes[("hme0", "inet")].test_address is None
    runner.apply(lambda h, now: h.set_link("hme0", False, now))
    moved = where(runner, "192.168.85.21")
    assert moved is not None and moved.startswith("hme1:")
    # "All test IP addresses in an IPMP group must use the same network prefix."
    runner.apply(lambda h, now: h.set_link("hme0", True, now))
    ifconfig(runner, "hme0 addif 192.168.86.21 netmask + broadcast + -failover deprecated up")
    assert any("192.168.86.21" in m and "subnet" in m for m in runner.messages())


def test_examples_31_2_and_31_3_hostname_files_give_example_30_1() -> None:
    # The guide's files, literally (group testgroup1); Example 30-1 is the same
    # configuration with the group called "test".
    runner = settle(
        boot_text(
            host(
                nic(
                    "hme0",
                    MAC_HME0,
                    example_31_2("192.168.85.19", "192.168.85.21", "testgroup1"),
                    example_31_3("testgroup1"),
                ),
                nic(
                    "hme1",
                    MAC_HME1,
                    example_31_2("192.168.85.20", "192.168.85.22", "testgroup1"),
                    example_31_3("testgroup1"),
                ),
            )
        )
    )
    expected = EXAMPLE_30_1.replace("groupname test", "groupname testgroup1")
    assert_status(ifconfig(runner, "-a"), expected)
    assert runner.messages() == []


# ---------------------------------------------------------------------------
# How to Configure a Standby Interface for an IPMP Group; Example 31-4

STANDBY_HME1 = guide(
    "hme1: flags=69040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,",
    # guide: "STANDBY,INACTIVE mtu 1500", the closing ">" missing.
    "      STANDBY,INACTIVE> mtu 1500",
    # guide: index 4, netmask ffffffff, broadcast 19.16.85.255.  hme1 is the
    # second NIC here, index 3, as in Example 30-1.
    "      index 3 inet 192.168.85.22 netmask ffffff00 broadcast 192.168.85.255",
    "      groupname test",
)

# hme0 as in Examples 31-2/31-3 (group test); hme1 not plumbed yet.
STANDBY_HOST = host(
    nic(
        "hme0",
        MAC_HME0,
        example_31_2("192.168.85.19", "192.168.85.21", "test"),
        example_31_3("test"),
    ),
    nic("hme1", MAC_HME1),
)


def test_configure_standby_interface() -> None:
    runner = boot_text(STANDBY_HOST)
    runner.run_for(5)
    # Step 2 (IPv4).
    out = ifconfig(
        runner, "hme1 plumb 192.168.85.22 netmask + broadcast + deprecated -failover standby up"
    )
    assert out == ""
    # "You must have configured all interfaces as members of the IPMP group":
    # a freshly plumbed hme1 has no group yet.
    assert ifconfig(runner, "hme1 group test") == ""
    # Step 3.
    assert_status(ifconfig(runner, "hme1"), STANDBY_HME1)
    # Step 2 (IPv6).  The guide prints "ifconfig hme1 plumb -failover standby
    # up", leaving out the inet6 that step 5's /etc/hostname6.hme1 implies.
    assert ifconfig(runner, "hme1 inet6 plumb -failover standby up") == ""
    assert_status(
        ifconfig(runner, "hme1 inet6"),
        guide(
            "hme1: flags=6a000841<UP,RUNNING,MULTICAST,IPv6,NOFAILOVER,STANDBY,INACTIVE>",
            "      mtu 1500 index 3",
            "      inet6 fe80::a00:20ff:feb9:1bfc/10",
            "      groupname test",
        ),
    )
    runner.run_for(40)
    assert runner.engine.probes[("hme1", "inet")].test_address == "192.168.85.22"
    # Typed, or from the files of steps 4 and 5 at boot: the same configuration.
    booted = settle(boot("active-standby"))
    assert ifconfig(runner, "-a") == ifconfig(booted, "-a")
    # "When a failover occurs on this standby interface, the INACTIVE flag is cleared."
    runner.apply(lambda h, now: h.set_link("hme0", False, now))
    assert where(runner, "192.168.85.19") == "hme1:1"
    assert ifconfig(runner, "hme1").startswith(
        "hme1: flags=29040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,STANDBY>"
    )
    runner.apply(lambda h, now: h.set_link("hme0", True, now))
    wait_repaired(runner, "hme0", 60)
    assert where(runner, "192.168.85.19") == "hme0"
    assert_status(ifconfig(runner, "hme1"), STANDBY_HME1)


# hme0 and hme1 active in group test, hme2 not plumbed yet (it gets index 4).
THREE_FOR_31_4 = host(
    nic(
        "hme0",
        MAC_HME0,
        example_31_2("192.168.85.19", "192.168.85.21", "test"),
        example_31_3("test"),
    ),
    nic(
        "hme1",
        MAC_HME1,
        example_31_2("192.168.85.20", "192.168.85.23", "test"),
        example_31_3("test"),
    ),
    nic("hme2", "8:0:20:b9:1c:0"),
)


def test_example_31_4_standby_hme2_and_minus_standby() -> None:
    runner = boot_text(THREE_FOR_31_4)
    runner.run_for(5)
    out = ifconfig(
        runner, "hme2 plumb 192.168.85.22 netmask + broadcast + deprecated -failover standby up"
    )
    assert out == ""
    ifconfig(runner, "hme2 group test")
    assert_status(
        ifconfig(runner, "hme2"),
        guide(
            # The listing of "How to Configure a Standby Interface", step 3, for hme2.
            "hme2: flags=69040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER,",
            # guide: the closing ">" is missing.
            "      STANDBY,INACTIVE> mtu 1500",
            # guide: netmask ffffffff, broadcast 19.16.85.255.
            "      index 4 inet 192.168.85.22 netmask ffffff00 broadcast 192.168.85.255",
            "      groupname test",
        ),
    )
    # "IPMP does not permit you to add a data address to an interface that is
    # configured through the ifconfig command as standby."
    refused(runner, "hme2 addif 192.168.85.30 netmask + broadcast + up")
    # "You would remove the standby status of an interface by typing ifconfig
    # interface -standby."
    assert ifconfig(runner, "hme2 -standby") == ""
    assert_status(
        ifconfig(runner, "hme2"),
        guide(
            "hme2: flags=9040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER>",
            "      mtu 1500 index 4",
            "      inet 192.168.85.22 netmask ffffff00 broadcast 192.168.85.255",
            "      groupname test",
        ),
    )


def test_standby_on_an_interface_with_data_addresses_fails_them_over() -> None:
    # "if you configure as standby an interface that already has data
    # addresses, these addresses automatically fail over to another interface"
    runner = settle(boot("active-active"))
    assert ifconfig(runner, "hme1 standby") == ""
    assert where(runner, "192.168.85.20") == "hme0:2"
    assert runner.host.ping("192.168.85.20") == "hme0"
    assert where(runner, "192.168.85.22") == "hme1:1"  # the test address stays
    assert "INACTIVE" in ifconfig(runner, "hme1:1")
    # -standby: the address comes back and the configuration is the original.
    ifconfig(runner, "hme1 -standby")
    assert_status(ifconfig(runner, "-a"), EXAMPLE_30_1)


def test_standby_before_failover_is_refused() -> None:
    # "You must set the -failover option before you set the standby up option"
    # and "The interface is marked as a standby interface only after the
    # address is marked as a NOFAILOVER address": without -failover, "up"
    # brings a data address up on a standby interface, which "will fail".
    runner = boot_text(THREE_FOR_31_4)
    runner.run_for(5)
    ifconfig(runner, "hme2 plumb")
    ifconfig(runner, "hme2 group test")
    refused(runner, "hme2 192.168.85.22 netmask + broadcast + deprecated standby up")


# ---------------------------------------------------------------------------
# How to Configure a Single Interface IPMP Group; Example 31-6

SINGLE_HOST = host(nic("hme0", MAC_HME0_31_6, "192.168.85.19 netmask + broadcast + up", "up"))


def test_single_interface_group_ipv4() -> None:
    runner = boot_text(SINGLE_HOST)
    runner.run_for(5)
    assert ifconfig(runner, "hme0 group v4test") == ""
    # "After this step is performed, IPMP enables link-based failure detection."
    runner.apply(lambda h, now: h.set_link("hme0", False, now))
    runner.apply(lambda h, now: h.set_link("hme0", True, now))
    assert runner.messages() == [
        "The link has gone down on hme0",
        "NIC failure detected on hme0 of group v4test",
        "The link has come up on hme0",
        "NIC repair detected on hme0 of group v4test",
    ]
    assert ifconfig(runner, "hme0 -failover") == ""
    # The data address is also the test address: NOFAILOVER, never DEPRECATED
    # (facts §8: 9000843 "a singleton-group data address marked -failover").
    assert_status(
        ifconfig(runner, "hme0"),
        guide(
            "hme0: flags=9000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,NOFAILOVER> mtu 1500 index 2",
            "      inet 192.168.85.19 netmask ffffff00 broadcast 192.168.85.255",
            "      groupname v4test",
        ),
    )
    runner.run_for(30)
    assert runner.engine.probes[("hme0", "inet")].test_address == "192.168.85.19"
    runner.apply(lambda h, now: h.set_port_drop("hme0", True, now))
    wait_failed(runner, "hme0", 30)
    # "failover and failback cannot occur for an IPMP group with only one interface"
    assert runner.messages()[-1] == "NIC failure detected on hme0 of group v4test"
    assert where(runner, "192.168.85.19") == "hme0"


def test_single_interface_group_ipv6() -> None:
    runner = boot_text(SINGLE_HOST)
    runner.run_for(5)
    assert ifconfig(runner, "hme0 inet6 group v6test") == ""
    assert ifconfig(runner, "hme0 inet6 -failover") == ""
    assert_status(
        ifconfig(runner, "hme0 inet6"),
        guide(
            "hme0: flags=a000841<UP,RUNNING,MULTICAST,IPv6,NOFAILOVER> mtu 1500 index 2",
            "      inet6 fe80::a00:20ff:fec1:8bc3/10",
            "      groupname v6test",
        ),
    )
    runner.run_for(30)
    assert runner.engine.probes[("hme0", "inet6")].test_address == "fe80::a00:20ff:fec1:8bc3"
    runner.apply(lambda h, now: h.set_port_drop("hme0", True, now))
    wait_failed(runner, "hme0", 30)
    assert where(runner, "192.168.85.19") == "hme0"


def test_example_31_6_add_interface_to_group() -> None:
    # hme0 as left by the single-interface procedure (its data address doubles
    # as the test address, hence NOFAILOVER in the guide's listing).
    runner = boot_text(SINGLE_HOST)
    ifconfig(runner, "hme0 group v4test")
    ifconfig(runner, "hme0 -failover")
    runner.run_for(30)
    # The guide prints the status under the command; the command itself prints
    # nothing, and the status is "ifconfig hme0" (ether is shown to root).
    assert ifconfig(runner, "hme0 group testgroup2") == ""
    assert_status(
        ifconfig(runner, "hme0", show_ether=True),
        guide(
            # guide: "<UP ,BROADCAST,...": a stray space.
            "hme0: flags=9000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,NOFAILOVER> mtu 1500 index 2",
            # guide: netmask ff000000 broadcast 10.255.255.255, a 10/8 network's.
            "inet 192.168.85.19 netmask ffffff00 broadcast 192.168.85.255",
            "groupname testgroup2",
            "ether 8:0:20:c1:8b:c3",
        ),
    )
    assert runner.engine.table.members("v4test") == []
    runner.run_for(30)
    assert runner.engine.probes[("hme0", "inet")].test_address == "192.168.85.19"


# ---------------------------------------------------------------------------
# Examples 31-5, 31-7, 31-8: displaying, removing, moving


def test_example_31_5_display_group_membership() -> None:
    runner = settle(
        boot_text(
            host(
                nic(
                    "hme0",
                    MAC_HME0,
                    example_31_2("192.168.85.19", "192.168.85.21", "testgroup1"),
                    example_31_3("testgroup1"),
                ),
                nic(
                    "hme1",
                    MAC_HME1,
                    example_31_2("192.168.85.20", "192.168.85.22", "testgroup1"),
                    example_31_3("testgroup1"),
                ),
            )
        )
    )
    assert_status(
        ifconfig(runner, "hme0"),
        guide(
            # guide: 9000843, the NOFAILOVER bit without its name.
            "hme0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500",
            # guide: netmask fffffff0.
            "index 2 inet 192.168.85.19 netmask ffffff00 broadcast 192.168.85.255",
            "groupname testgroup1",
        ),
    )
    assert_status(
        ifconfig(runner, "hme0 inet6"),
        guide(
            # guide: names without NOFAILOVER, though a000841 has its bit and
            # Example 31-3's file says -failover.
            "hme0: flags=a000841<UP,RUNNING,MULTICAST,IPv6,NOFAILOVER> mtu 1500 index 2",
            "inet6 fe80::a00:20ff:feb9:19fa/10",
            "groupname testgroup1",
        ),
    )


def test_example_31_7_remove_interface_from_group() -> None:
    runner = settle(boot("active-active"))
    assert ifconfig(runner, 'hme0 group ""') == ""
    assert_status(
        ifconfig(runner, "hme0"),
        guide(
            # guide: 9000843, the NOFAILOVER bit without its name.
            "hme0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500",
            # guide: netmask ffffffff.
            "index 2 inet 192.168.85.19 netmask ffffff00 broadcast 192.168.85.255",
        ),
    )
    assert_status(
        ifconfig(runner, "hme0 inet6"),
        guide(
            # guide: names without NOFAILOVER, though a000841 has its bit.
            "hme0: flags=a000841<UP,RUNNING,MULTICAST,IPv6,NOFAILOVER> mtu 1500 index 2",
            "inet6 fe80::a00:20ff:feb9:19fa/10",
        ),
    )
    # in.mpathd no longer watches hme0 (TRACK_INTERFACES_ONLY_WITH_GROUPS=yes).
    assert ("hme0", "inet") not in runner.engine.probes
    assert [m.name for m in runner.engine.table.members("test")] == ["hme1"]


def test_removing_a_failed_interface_restores_its_addresses() -> None:
    # "The in.mpathd daemon tries to restore the original configuration of an
    # interface that is removed from the group."
    runner = settle(boot("active-active"))
    runner.apply(lambda h, now: h.set_link("hme0", False, now))
    assert where(runner, "192.168.85.19") == "hme1:2"
    ifconfig(runner, 'hme0 group ""')
    assert where(runner, "192.168.85.19") == "hme0"
    runner.apply(lambda h, now: h.set_link("hme0", True, now))
    assert runner.host.ping("192.168.85.19") == "hme0"


THREE_IN_TEST = host(
    nic("hme0", MAC_HME0, example_31_2("192.168.85.19", "192.168.85.21", "test")),
    nic("hme1", MAC_HME1, example_31_2("192.168.85.20", "192.168.85.22", "test")),
    nic("hme2", "8:0:20:b9:1c:0", example_31_2("192.168.85.23", "192.168.85.24", "test")),
)


def test_removing_the_interface_that_hosts_failed_over_addresses() -> None:
    # "if hme0 failed previously, all addresses are failed over to hme1 ... The
    # removal of hme1 from the group causes the in.mpathd daemon to return all
    # the failover addresses to some other interface in the group."
    runner = settle(boot_text(THREE_IN_TEST))
    runner.apply(lambda h, now: h.set_link("hme0", False, now))
    assert where(runner, "192.168.85.19") == "hme1:2"
    ifconfig(runner, 'hme1 group ""')
    moved = where(runner, "192.168.85.19")
    assert moved is not None and moved.startswith("hme2:")
    assert runner.host.ping("192.168.85.19") == "hme2"
    assert where(runner, "192.168.85.20") == "hme1"  # hme1 keeps its own


def test_removing_the_last_working_interface_cannot_restore_access() -> None:
    # "If no other interfaces are functioning in the group, failover might not
    # restore all the network accesses."
    runner = settle(boot("active-active"))
    runner.apply(lambda h, now: h.set_link("hme0", False, now))
    ifconfig(runner, 'hme1 group ""')
    assert where(runner, "192.168.85.19") == "hme0"
    assert runner.host.ping("192.168.85.19") is None
    assert where(runner, "192.168.85.20") == "hme1"


def test_example_31_8_move_interface_to_another_group() -> None:
    # hme0 is the only member of "test" on its subnet: one group per subnet
    # allows the move (with hme1 left in "test", see the planning refusals).
    runner = settle(
        boot_text(
            host(
                nic(
                    "hme0",
                    MAC_HME0,
                    example_31_2("192.168.85.19", "192.168.85.21", "test"),
                    example_31_3("test"),
                )
            )
        )
    )
    assert ifconfig(runner, "hme0 group cs-link") == ""
    assert ifconfig(runner, "hme0").endswith("\n\tgroupname cs-link")
    assert ifconfig(runner, "hme0 inet6").endswith("\n\tgroupname cs-link")
    assert runner.engine.table.members("test") == []
    runner.run_for(30)
    assert runner.engine.probes[("hme0", "inet")].test_address == "192.168.85.21"
    runner.apply(lambda h, now: h.set_port_drop("hme0", True, now))
    wait_failed(runner, "hme0", 30)
    assert runner.messages()[-1] == "NIC failure detected on hme0 of group cs-link"


def test_example_31_8_in_a_two_member_group_as_the_guide_writes_it() -> None:
    # "This command removes the hme0 interface from IPMP group test and then
    # puts the interface in the group cs-link": hme1 stays in "test" on the
    # same subnet, which the one-group-per-subnet rule warns about.
    runner = settle(boot("active-active"))
    output = ifconfig(runner, "hme0 group cs-link")
    assert output == (
        "ifconfig: warning: group cs-link: subnet 192.168.85.0/24 of hme0 is also used by "
        "group test; configure only one IPMP group per subnet"
    )
    assert runner.messages()[-1] == output
    assert ifconfig(runner, "hme0").endswith("\n\tgroupname cs-link")
    assert ifconfig(runner, "hme1").endswith("\n\tgroupname test")
    assert [m.name for m in runner.engine.table.members("test")] == ["hme1"]
    assert [m.name for m in runner.engine.table.members("cs-link")] == ["hme0"]
    runner.run_for(30)
    # Each group probes on its own; hme0 alone in cs-link has nowhere to fail over to.
    runner.apply(lambda h, now: h.set_port_drop("hme0", True, now))
    wait_failed(runner, "hme0", 30)
    assert runner.messages()[-1] == "NIC failure detected on hme0 of group cs-link"
    assert where(runner, "192.168.85.19") == "hme0"
    assert not failed(runner, "hme1")


# ---------------------------------------------------------------------------
# Group failures; /etc/default/mpathd


def test_group_failure_moves_nothing_and_repairs() -> None:
    runner = settle(boot("active-active"))
    for name in ("router1", "router2", "host137"):
        runner.host.set_neighbour(name, False, runner.now)
    at = runner.run_until_true(lambda: runner.engine.groups["test"].failed, 30)
    assert at is not None
    assert runner.messages() == ["All Interfaces in group test have failed"]
    status = ifconfig(runner, "-a")
    assert_layout(status)
    heads = [line for line in status.split("\n") if not line.startswith("\t")]
    assert len(heads) == 6 and all("FAILED" in line for line in heads)
    # "The in.mpathd daemon does not perform failovers for a group failure."
    assert where(runner, "192.168.85.19") == "hme0"
    assert where(runner, "192.168.85.20") == "hme1"
    for name in ("router1", "router2", "host137"):
        runner.host.set_neighbour(name, True, runner.now)
    nics = runner.engine.table.nics
    done = runner.run_until_true(lambda: not (nics["hme0"].failed or nics["hme1"].failed), 60)
    assert done is not None
    assert "At least 1 interface (hme0) of group test has repaired" in runner.messages()
    assert not any("Successfully failed" in m for m in runner.messages())
    assert_status(ifconfig(runner, "-a"), EXAMPLE_30_1)


CE_GROUP = example_path("active-active").read_text(encoding="utf-8").replace("hme", "ce")


def test_failback_no_ce0_stays_inactive_until_ce1_fails() -> None:
    runner = settle(boot_text(CE_GROUP, failback=False))
    runner.apply(lambda h, now: h.set_link("ce0", False, now))
    assert where(runner, "192.168.85.19") == "ce1:2"
    runner.run_for(1)
    runner.apply(lambda h, now: h.set_link("ce0", True, now))
    wait_repaired(runner, "ce0", 60)
    # "traffic does not fail back from ce1 ... The ce0 interface retains its
    # INACTIVE status and is not used for traffic unless the ce1 interface fails."
    assert where(runner, "192.168.85.19") == "ce1:2"
    assert not any("failed back" in m for m in runner.messages())
    assert_status(
        ifconfig(runner, "ce0"),
        guide(
            "ce0: flags=49000842<BROADCAST,RUNNING,MULTICAST,IPv4,NOFAILOVER,INACTIVE>",
            "     mtu 0 index 2",
            "     inet 0.0.0.0 netmask 0",
            "     groupname test",
        ),
    )
    assert "INACTIVE" in ifconfig(runner, "ce0 inet6")
    runner.run_for(60)
    assert where(runner, "192.168.85.19") == "ce1:2"
    # "If the ce1 interface fails, the addresses on ce1 are migrated back to
    # ce0, whose INACTIVE flag is then cleared."
    runner.apply(lambda h, now: h.set_link("ce1", False, now))
    assert runner.messages()[-1] == "Successfully failed over from NIC ce1 to NIC ce0"
    assert where(runner, "192.168.85.19") == "ce0"
    assert where(runner, "192.168.85.20") == "ce0:2"
    assert_status(
        ifconfig(runner, "ce0"),
        guide(
            "ce0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2",
            "     inet 192.168.85.19 netmask ffffff00 broadcast 192.168.85.255",
            "     groupname test",
        ),
    )
    assert "INACTIVE" not in ifconfig(runner, "ce0 inet6")


UNGROUPED_HME2 = (
    example_path("active-active").read_text(encoding="utf-8")
    + """
[[link]]
name = "net1"
  [[link.neighbour]]
  name = "router3"
  role = "router"
  address = "192.168.86.1"
"""
    + nic("hme2", "8:0:20:b9:1c:0", "192.168.86.19 netmask + broadcast + up", link="net1")
)


def test_track_interfaces_only_with_groups_no() -> None:
    runner = settle(boot_text(UNGROUPED_HME2, track_interfaces_only_with_groups=False))
    runner.apply(lambda h, now: h.set_link("hme2", False, now))
    # "when a failure or repair is detected on an interface that is not
    # configured into an IPMP group, no failover or failback occurs."
    assert runner.messages()[-2:] == [
        "The link has gone down on hme2",
        "NIC failure detected on hme2",
    ]
    assert_status(
        ifconfig(runner, "hme2"),
        guide(
            "hme2: flags=11000803<UP,BROADCAST,MULTICAST,IPv4,FAILED> mtu 1500 index 4",
            "      inet 192.168.86.19 netmask ffffff00 broadcast 192.168.86.255",
        ),
    )
    assert where(runner, "192.168.86.19") == "hme2"
    runner.apply(lambda h, now: h.set_link("hme2", True, now))
    assert runner.messages()[-1] == "NIC repair detected on hme2"
    assert where(runner, "192.168.86.19") == "hme2"
    assert not any("Successfully" in m for m in runner.messages())


def test_track_interfaces_only_with_groups_yes_ignores_ungrouped() -> None:
    runner = settle(boot_text(UNGROUPED_HME2))
    runner.apply(lambda h, now: h.set_link("hme2", False, now))
    assert runner.messages() == []
    assert ifconfig(runner, "hme2").startswith("hme2: flags=1000803<UP,BROADCAST,MULTICAST,IPv4>")


# ---------------------------------------------------------------------------
# NICs That Were Missing at System Boot; DR


def test_missing_at_boot_addresses_moved_and_recovered_when_plugged() -> None:
    runner = boot("missing-at-boot")
    assert runner.messages() == [
        "moving addresses from failed IPv4 interfaces: hme0 (moved to hme1)",
        "moving addresses from failed IPv6 interfaces: hme0 (moved to hme1)",
    ]
    runner.run_for(45)
    assert where(runner, "192.168.85.19") == "hme1:2"
    assert runner.host.ping("192.168.85.19") == "hme1"
    # "only data addresses that are explicitly specified in the missing
    # interface's /etc/hostname.interface file move": not its test address.
    assert "192.168.85.21" not in {a.address for a in runner.host.addresses()}
    status = ifconfig(runner, "-a")
    assert_layout(status)
    assert not re.search(r"^hme0", status, re.MULTILINE)
    # DR attach: "RCM configures the interface according to the contents of
    # the interface's /etc/hostname.interface file.  Finally, RCM fails back
    # any data addresses ... the final network configuration is identical to
    # the configuration that would have been made if the system had been
    # booted with the interface present."
    runner.apply(lambda h, now: h.plug("hme0", now))
    wait_repaired(runner, "hme0", 180)  # "takes up to three minutes"
    assert runner.messages()[-1] == "Successfully failed back to NIC hme0"
    assert_status(ifconfig(runner, "-a"), EXAMPLE_30_1)
    assert ifconfig(runner, "-a") == ifconfig(settle(boot("active-active")), "-a")


ALONE_AND_MISSING = host(
    nic(
        "hme0",
        MAC_HME0,
        example_31_2("192.168.85.19", "192.168.85.21", "test"),
        example_31_3("test"),
        extra="present = false\n",
    )
)


def test_missing_at_boot_with_no_alternative_interface() -> None:
    runner = boot_text(ALONE_AND_MISSING)
    # The guide prints this both with "couldn't move;" (chapter 30, wrapped)
    # and "couldn't move," (the recovery procedure, step 2); the boot scripts
    # print the comma (facts §4.9).
    assert runner.messages() == [
        f"moving addresses from failed {family} interfaces: "
        "hme0 (couldn't move, no alternative interface)"
        for family in ("IPv4", "IPv6")
    ]
    runner.run_for(45)
    assert ifconfig(runner, "-a") == ""
    assert runner.host.ping("192.168.85.19") is None
    runner.apply(lambda h, now: h.plug("hme0", now))
    wait_repaired(runner, "hme0", 180)
    assert runner.host.ping("192.168.85.19") == "hme0"
    expected = guide(
        "hme0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2",
        "      inet 192.168.85.19 netmask ffffff00 broadcast 192.168.85.255",
        "      groupname test",
        "hme0:1: flags=9040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER>",
        "      mtu 1500 index 2",
        "      inet 192.168.85.21 netmask ffffff00 broadcast 192.168.85.255",
        "hme0: flags=a000841<UP,RUNNING,MULTICAST,IPv6,NOFAILOVER> mtu 1500 index 2",
        "      inet6 fe80::a00:20ff:feb9:19fa/10",
        "      groupname test",
    )
    assert_status(ifconfig(runner, "-a"), expected)


NET10 = """
[[link]]
name = "net0"
  [[link.neighbour]]
  name = "router1"
  role = "router"
  address = "10.0.0.1"
"""

# The recovery procedure's example: hme1 was not installed at boot, and its
# file holds the guide's three lines (the guide calls it /etc/hostname.hme0,
# but step 5a reads the file of the moved-from interface, hme1, and step 6
# replays those lines on hme1).
HME1_FILE = (
    "inet 10.0.0.4 -failover up group one\naddif 10.0.0.5 failover up\naddif 10.0.0.6 failover up"
)


def _dr_host(hme1_present: bool) -> str:
    return host(
        nic(
            "hme0",
            MAC_HME0,
            "10.0.0.2 netmask + broadcast + group one up \\\n"
            "    addif 10.0.0.3 deprecated -failover netmask + broadcast + up",
        ),
        nic("hme1", MAC_HME1, HME1_FILE, extra="" if hme1_present else "present = false\n"),
        links=NET10,
    )


def test_recover_interface_not_present_at_boot_steps_5_and_6() -> None:
    runner = boot_text(_dr_host(hme1_present=False))
    # Step 2: the console message.
    assert runner.messages() == [
        "moving addresses from failed IPv4 interfaces: hme1 (moved to hme0)"
    ]
    runner.run_for(45)
    assert where(runner, "10.0.0.5") == "hme0:2"
    assert where(runner, "10.0.0.6") == "hme0:3"
    # Step 3: attach the physical interface.
    runner.apply(lambda h, now: h.plug("hme1", now))
    # Step 5b: unplumb each failover address from the moved-to interface.
    assert ifconfig(runner, "hme0 removeif 10.0.0.5") == ""
    assert ifconfig(runner, "hme0 removeif 10.0.0.6") == ""
    assert where(runner, "10.0.0.5") is None and where(runner, "10.0.0.6") is None
    # Step 6.  The simulator's attach is a DR attach, whose recovery is
    # automatic ("the following steps are not required for an interface that
    # is coming back as part of a DR operation"): hme1 is plumbed already, so
    # "inet plumb" is refused as on Solaris, and the rest is replayed as is.
    message = refused(runner, "hme1 inet plumb")
    assert "already plumbed" in message
    assert ifconfig(runner, "hme1 inet 10.0.0.4 -failover up group one") == ""
    assert (
        ifconfig(runner, "hme1 addif 10.0.0.5 failover up")
        == "Created new logical interface hme1:1"
    )
    assert (
        ifconfig(runner, "hme1 addif 10.0.0.6 failover up")
        == "Created new logical interface hme1:2"
    )
    wait_repaired(runner, "hme1", 180)
    runner.run_for(30)
    assert runner.host.ping("10.0.0.5") == "hme1"
    booted = settle(boot_text(_dr_host(hme1_present=True)))
    assert ifconfig(runner, "-a") == ifconfig(booted, "-a")
    assert_status(
        ifconfig(runner, "-a inet"),
        guide(
            "hme0: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 2",
            "      inet 10.0.0.2 netmask ff000000 broadcast 10.255.255.255",
            "      groupname one",
            "hme0:1: flags=9040843<UP,BROADCAST,RUNNING,MULTICAST,DEPRECATED,IPv4,NOFAILOVER>",
            "      mtu 1500 index 2",
            "      inet 10.0.0.3 netmask ff000000 broadcast 10.255.255.255",
            "hme1: flags=9000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4,NOFAILOVER> mtu 1500 index 3",
            "      inet 10.0.0.4 netmask ff000000 broadcast 10.255.255.255",
            "      groupname one",
            "hme1:1: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 3",
            "      inet 10.0.0.5 netmask ff000000 broadcast 10.255.255.255",
            "hme1:2: flags=1000843<UP,BROADCAST,RUNNING,MULTICAST,IPv4> mtu 1500 index 3",
            "      inet 10.0.0.6 netmask ff000000 broadcast 10.255.255.255",
        ),
    )


def test_detach_and_reattach_with_hostname_files_restores_everything() -> None:
    # Reattaching NICs: "RCM automatically configures the interface according
    # to the contents of the existing /etc/hostname.interface file ... all of
    # its data addresses are failed back to the reattached interface".
    runner = settle(boot("active-active"))
    runner.apply(lambda h, now: h.unplug("hme0", now))
    assert runner.host.ping("192.168.85.19") == "hme1"
    runner.apply(lambda h, now: h.plug("hme0", now))
    wait_repaired(runner, "hme0", 180)
    assert_status(ifconfig(runner, "-a"), EXAMPLE_30_1)


def test_reattach_without_hostname_file_restores_what_was_typed() -> None:
    # The guide: without /etc/hostname.<if> "no configuration information is
    # available ... addresses that were previously failed over to another
    # interface are not failed back."  We differ on purpose: the daemon keeps
    # what the administrator typed, so nothing configured is lost when a NIC
    # is pulled and put back (README: Where this differs from Solaris 10).
    runner = boot_text(
        host(
            nic("hme0", MAC_HME0),
            nic("hme1", MAC_HME1, example_31_2("192.168.85.20", "192.168.85.22", "test")),
        )
    )
    ifconfig(
        runner,
        "hme0 plumb 192.168.85.19 netmask + broadcast + group test up "
        "addif 192.168.85.21 netmask + broadcast + -failover deprecated up",
    )
    runner.run_for(45)
    runner.apply(lambda h, now: h.unplug("hme0", now))
    assert where(runner, "192.168.85.19") == "hme1:2"
    runner.apply(lambda h, now: h.plug("hme0", now))
    runner.run_for(180)
    assert where(runner, "192.168.85.19") == "hme0"
    assert where(runner, "192.168.85.21") == "hme0:1"
    assert any("Successfully failed back to NIC hme0" in m for m in runner.messages())


def dr_detach(runner: VirtualRunner, name: str, force: bool = False) -> None:
    """``ipmp dr detach [-f] NAME`` (guide: Detaching NICs)."""
    runner.execute(runner.engine.dr_detach(name, force, runner.now))


def dr_attach(runner: VirtualRunner, name: str) -> None:
    """``ipmp dr attach NAME`` (guide: Reattaching NICs)."""
    runner.execute(runner.engine.dr_attach(name, runner.now))


def edit_file(runner: VirtualRunner, filename: str, text: str) -> None:
    """The administrator edits /etc/<filename> while the host runs."""
    file = load_hostname_file(text, filename)
    runner.hostname_files[(file.ifname, file.family)] = file


def test_dr_detach_then_attach_gives_exactly_the_boot_layout() -> None:
    # Reattaching NICs: "RCM treats the reattachment of a NIC that had been
    # previously detached identically as it would to the attachment of a new
    # NIC ... configures the interface according to the contents of the
    # existing /etc/hostname.interface file ... once the reattached interface
    # is functioning properly, all of its data addresses are failed back".
    runner = settle(boot("active-active"))
    booted = ifconfig(runner, "-a")
    dr_detach(runner, "hme0")
    assert where(runner, "192.168.85.19") == "hme1:2"
    assert not re.search(r"^hme0", ifconfig(runner, "-a"), re.MULTILINE)
    dr_attach(runner, "hme0")
    # Until it works hme0 is laid out as after a failover (Example 30-2): the
    # 0.0.0.0 placeholder on hme0, the test address on hme0:1.
    assert where(runner, "192.168.85.21") == "hme0:1"
    assert where(runner, "192.168.85.19") == "hme1:2"
    attached = len(runner.messages())
    wait_repaired(runner, "hme0", 180)
    assert ifconfig(runner, "-a") == booted
    assert_status(booted, EXAMPLE_30_1)
    assert runner.messages()[attached - 1 :] == [
        "hme0 has been attached",
        "NIC repair detected on hme0 of group test",
        "Successfully failed back to NIC hme0",
    ]


def test_groupless_nic_attached_after_a_forced_detach_is_not_failed() -> None:
    # Detaching NICs: "by default you cannot detach a NIC that is not in an
    # IPMP group ... you can override this behavior by using the -f option".
    runner = settle(boot_text(UNGROUPED_HME2))
    booted = ifconfig(runner, "hme2")
    with pytest.raises(IpmpError, match="not in an IPMP group"):
        dr_detach(runner, "hme2")
    dr_detach(runner, "hme2", force=True)
    assert runner.host.ping("192.168.86.19") is None
    dr_attach(runner, "hme2")
    runner.run_for(60)
    assert not failed(runner, "hme2")
    assert ifconfig(runner, "hme2") == booted
    assert "FAILED" not in booted
    assert runner.host.ping("192.168.86.19") == "hme2"


def test_attached_nic_gets_its_whole_file_after_removeif_of_the_failed_over_copies() -> None:
    # How to Recover a Physical Interface That Was Not Present at System Boot,
    # step 5 ("Unplumb the logical interfaces that were configured as part of
    # the failover process") done before the interface is attached: the
    # attach still gives hme1 every address of its file, "the final network
    # configuration is identical to the configuration that would have been
    # made if the system had been booted with the interface present".
    runner = settle(boot_text(_dr_host(hme1_present=False)))
    assert ifconfig(runner, "hme0 removeif 10.0.0.5") == ""
    assert ifconfig(runner, "hme0 removeif 10.0.0.6") == ""
    runner.apply(lambda h, now: h.plug("hme1", now))
    wait_repaired(runner, "hme1", 180)
    runner.run_for(30)
    assert runner.host.ping("10.0.0.5") == "hme1" and runner.host.ping("10.0.0.6") == "hme1"
    booted = settle(boot_text(_dr_host(hme1_present=True)))
    assert ifconfig(runner, "-a") == ifconfig(booted, "-a")


HME0_EDITED = (
    "192.168.85.19 netmask + broadcast + group test up \\\n"
    "    addif 192.168.85.23 deprecated -failover netmask + broadcast + up\n"
    "removeif 192.168.85.99\n"
    "addif 192.168.85.30 netmask + broadcast + up"
)


def _two_in_test(hme0_file: str) -> str:
    return host(
        nic("hme0", MAC_HME0, hme0_file, example_31_3("test")),
        nic(
            "hme1",
            MAC_HME1,
            example_31_2("192.168.85.20", "192.168.85.22", "test"),
            example_31_3("test"),
        ),
    )


def test_dr_attach_configures_from_the_hostname_file_as_it_reads_now() -> None:
    # Attaching NICs: "If an /etc/hostname.interface file already exists when
    # the interface is attached, then RCM automatically configures the
    # interface according to the contents of this file.  Thus, the interface
    # receives the same configuration that it would have received after
    # system boot" -- the file as it is at the attach, edited or not.  A line
    # that is refused is reported as at boot and the rest applies.
    runner = settle(boot_text(_two_in_test(example_31_2("192.168.85.19", "192.168.85.21", "test"))))
    dr_detach(runner, "hme0")
    edit_file(runner, "hostname.hme0", HME0_EDITED)
    dr_attach(runner, "hme0")
    refusal = "hostname.hme0 line 3: ifconfig: removeif 192.168.85.99: no such address on hme0"
    assert refusal in runner.messages()
    wait_repaired(runner, "hme0", 180)
    runner.run_for(30)
    assert where(runner, "192.168.85.19") == "hme0"
    assert where(runner, "192.168.85.23") == "hme0:1"
    assert where(runner, "192.168.85.30") == "hme0:2"
    assert where(runner, "192.168.85.21") is None
    booted = settle(boot_text(_two_in_test(HME0_EDITED)))
    assert refusal in booted.messages()
    assert ifconfig(runner, "-a") == ifconfig(booted, "-a")


def test_nic_missing_at_boot_gets_its_file_as_edited_before_it_appears() -> None:
    runner = settle(boot_text(_dr_host(hme1_present=False)))
    edited = HME1_FILE + "\naddif 10.0.0.7 failover up"
    edit_file(runner, "hostname.hme1", edited)
    runner.apply(lambda h, now: h.plug("hme1", now))
    wait_repaired(runner, "hme1", 180)
    runner.run_for(30)
    assert runner.host.ping("10.0.0.7") == "hme1"
    booted = settle(
        boot_text(
            _dr_host(hme1_present=True).replace(HME1_FILE, edited),
        )
    )
    assert ifconfig(runner, "-a") == ifconfig(booted, "-a")


def test_new_nic_with_a_file_written_after_boot_is_configured_when_it_appears() -> None:
    # Attaching NICs: a NIC attached after boot whose hostname file exists by
    # then is configured from it, even though no file named it at boot.
    runner = settle(
        boot_text(
            _two_in_test(example_31_2("192.168.85.19", "192.168.85.21", "test"))
            + nic("hme2", "8:0:20:b9:1c:0", extra="present = false\n")
        )
    )
    assert "hme2" not in runner.engine.table.nics
    edit_file(runner, "hostname.hme2", example_31_2("192.168.85.25", "192.168.85.26", "test"))
    runner.apply(lambda h, now: h.plug("hme2", now))
    runner.run_for(30)
    assert [m.name for m in runner.engine.table.members("test")] == ["hme0", "hme1", "hme2"]
    assert where(runner, "192.168.85.25") == "hme2"
    assert runner.engine.probes[("hme2", "inet")].test_address == "192.168.85.26"
    assert runner.host.ping("192.168.85.25") == "hme2"
    assert not failed(runner, "hme2")


# ---------------------------------------------------------------------------
# VLANs


def test_vlan_cable_pull_fails_the_device_and_its_vlans_at_once() -> None:
    # "If the cable for bge0 is unplugged, then link-based failure detection
    # will report both bge0 and bge1000 as having instantly failed."
    runner = settle(boot("vlans"))
    runner.apply(lambda h, now: h.set_link("bge0", False, now))
    messages = runner.messages()
    assert "NIC failure detected on bge0 of group untagged" in messages
    assert "NIC failure detected on bge1000 of group vlan1" in messages
    assert logged(runner, "NIC failure detected") == [runner.now, runner.now]
    status = ifconfig(runner, "-a")
    assert_layout(status)
    for name in ("bge0", "bge0:1", "bge1000", "bge1000:1"):
        head = next(line for line in status.split("\n") if line.startswith(f"{name}: "))
        assert "FAILED" in head and "RUNNING" not in head
    assert where(runner, "192.168.85.19") == "bge1:2"
    assert where(runner, "192.168.86.19") == "bge1001:2"
    assert not failed(runner, "bge1") and not failed(runner, "bge1001")


def test_vlan_probing_is_per_vlan_link() -> None:
    # "Probe-based failure detection is performed per VLAN-link ... bge1000
    # has its own probe targets on its own VLAN."  The simulator's switch port
    # filters either the whole cable or one VLAN, so the VLAN's side is shown:
    # targets unreachable on VLAN 1 through bge0 fail bge1000 only.
    runner = settle(boot("vlans"))
    runner.apply(lambda h, now: h.set_port_drop("bge1000", True, now))
    wait_failed(runner, "bge1000", 30)
    runner.run_for(15)
    assert runner.messages() == [
        "NIC failure detected on bge1000 of group vlan1",
        "Successfully failed over from NIC bge1000 to NIC bge1001",
    ]
    assert not failed(runner, "bge0")
    assert where(runner, "192.168.85.19") == "bge0"
    # And every target of the untagged link silent: the untagged group fails,
    # VLAN 1 (through the same cables) does not.
    runner = settle(boot("vlans"))
    for name in ("router1", "router2"):
        runner.host.set_neighbour(name, False, runner.now)
    runner.run_for(30)
    assert failed(runner, "bge0") and failed(runner, "bge1")
    assert not failed(runner, "bge1000") and not failed(runner, "bge1001")


VLANS_WITH_VLAN_2 = (
    example_path("vlans").read_text(encoding="utf-8")
    + """
[[link]]
name = "vlan2"
  [[link.neighbour]]
  name = "vlan2-router1"
  role = "router"
  address = "192.168.87.1"
"""
    + nic("bge2", "0:14:4f:2a:10:2")
    + nic("bge2002", "0:14:4f:2a:10:2", "192.168.87.19 netmask + broadcast + up", link="vlan2")
)


def test_vlans_of_different_links_cannot_share_a_group() -> None:
    # Caution: "errors such as mixing VLANs that belong to different links
    # into an IPMP group can easily occur, for example, bge1000 and bge2000."
    runner = settle(boot_text(VLANS_WITH_VLAN_2))
    message = refused(runner, "bge2002 group vlan1")
    assert "VLAN" in message


# ---------------------------------------------------------------------------
# How to Plan for an IPMP Group: the rules, as refusals

PLANNING_HOST = host(
    nic("hme0", MAC_HME0, example_31_2("192.168.85.19", "192.168.85.21", "test")),
    # SPARC default: every interface shares one MAC address.
    nic("hme1", MAC_HME0, "192.168.85.20 netmask + broadcast + up"),
    nic("ba0", "0:20:48:1:2:3", "192.168.85.24 netmask + broadcast + up", extra='media = "atm"\n'),
    nic(
        "hme2",
        "8:0:20:b9:1c:0",
        "192.168.85.25 netmask + broadcast + up",
        extra='modules = ["arp", "ip", "ipf", "hme"]\n',
    ),
    nic("ce0", "0:3:ba:1:2:3", "192.168.85.26 netmask + broadcast + up"),
)


def test_planning_group_only_on_physical_interfaces() -> None:
    # "you can use the group parameter with hme0, but not with hme0:1."
    runner = settle(boot_text(PLANNING_HOST))
    message = refused(runner, "hme0:1 group test")
    assert "hme0:1" in message and "logical" in message


def test_planning_unique_mac_addresses() -> None:
    runner = settle(boot_text(PLANNING_HOST))
    message = refused(runner, "hme1 group test")
    assert "MAC" in message


def test_planning_same_media_type() -> None:
    # "you cannot place an ATM interface in the same group as an Ethernet interface."
    runner = settle(boot_text(PLANNING_HOST))
    message = refused(runner, "ba0 group test")
    assert "media" in message


def test_planning_one_group_per_subnet_is_a_warning() -> None:
    # "you must configure only one IPMP group per subnet", yet the guide's
    # own Example 31-8 moves hme0 out of a two-member group: a warning,
    # printed and logged, not a refusal (the other rules stay refusals).
    runner = settle(boot_text(PLANNING_HOST))
    warning = (
        "ifconfig: warning: group other: subnet 192.168.85.0/24 of ce0 is also used by "
        "group test; configure only one IPMP group per subnet"
    )
    assert ifconfig(runner, "ce0 group other") == warning
    assert runner.messages()[-1] == warning
    assert [m.name for m in runner.engine.table.members("other")] == ["ce0"]


def test_planning_streams_modules_modlist_and_modinsert() -> None:
    runner = settle(boot_text(PLANNING_HOST))
    # Step 4a, printed exactly as in the guide.
    assert ifconfig(runner, "hme0 modlist") == " 0 arp\n 1 ip\n 2 hme"
    assert ifconfig(runner, "hme2 modlist") == " 0 arp\n 1 ip\n 2 ipf\n 3 hme"
    # "All interfaces in the same group must have the same STREAMS modules
    # configured in the same order."
    message = refused(runner, "hme2 group test")
    assert "STREAMS" in message
    # Step 4b: "Push the modules of an interface in the standard order for the
    # IPMP group": ifconfig interface modinsert module-name.
    assert ifconfig(runner, "hme0 modinsert ipf") == ""
    assert ifconfig(runner, "hme0 modlist") == " 0 arp\n 1 ip\n 2 ipf\n 3 hme"
    assert ifconfig(runner, "hme2 group test") == ""
    assert [m.name for m in runner.engine.table.members("test")] == ["hme0", "hme2"]


def test_planning_nics_of_different_speeds_of_one_type_share_a_group() -> None:
    # "You can place interfaces from NICs of different speeds within the same
    # IPMP group, as long as the NICs are of the same type ... interfaces of
    # 100-megabit Ethernet NICs and the interfaces of one gigabit Ethernet NICs
    # in the same group."  hme is 100 Mbit/s Ethernet, ce gigabit Ethernet.
    runner = settle(boot_text(PLANNING_HOST))
    assert ifconfig(runner, "ce0 group test") == ""


@pytest.mark.parametrize(
    "command",
    [
        "hme0 frobnicate",
        "hme0 addif 192.168.85.20 up",  # on hme1 already
        "hme0 removeif 192.168.85.99",
        "hme0 removeif 192.168.85.19",  # hme0's own address: unplumb it instead
        "hme9 group test",
        "hme0 inet6 addif 192.168.85.30",
        "hme0 inet plumb",
        "hme0 netmask",
        "-a group test",
        "hme0 down addif 192.168.85.20",  # refused part way: even "down" is undone
        "hme1 standby addif 192.168.85.31 up",
        "hme0 modremove hme",
    ],
)
def test_bad_commands_leave_the_state_unchanged(command: str) -> None:
    runner = settle(boot_text(PLANNING_HOST))
    refused(runner, command)


# ---------------------------------------------------------------------------
# The corrected listings themselves


def test_corrected_flags_agree_with_their_names() -> None:
    """Every flags=HEX<NAMES> expected here has exactly the bits its names say (facts §8)."""
    listings = [
        EXAMPLE_30_1,
        EXAMPLE_30_2,
        PROCEDURE_STEP_4,
        PROCEDURE_STEP_6,
        STANDBY_HME1,
    ]
    found = 0
    for listing in listings:
        for hex_value, names in re.findall(r"flags=([0-9a-f]+)<([^>]*)>", squash(listing)):
            assert format_flags(int(hex_value, 16)) == f"{hex_value}<{names}>"
            found += 1
    assert found == 16
