"""``ipmp lab``: real network namespaces built from a topology, faults, teardown.

The tests marked ``root`` build real namespaces (ip, nft, veth, bridges) and
skip when not run as root.  CI runs as root and must NOT skip them: there
``IPMP_REQUIRE_ROOT_TESTS=1`` turns a skipped root test into a failed run
(tests/conftest.py).  The checks of what topologies the lab accepts need no
root and always run.

Safety: every namespace carries a random per-run prefix and is removed by a
finalizer even when a test fails (then the finalizer checks that none is
left); addresses come only from 192.0.2.0/24 and fe80::/10; nothing in the
root namespace is touched; only processes the tests started are killed, by PID.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ipmp.cli.lab import main as lab_main
from ipmp.core.errors import IpmpError
from ipmp.lab import commands
from ipmp.lab.checks import check_topology
from ipmp.lab.lab import Lab, teardown
from ipmp.lab.state import STATE_NAME, read_state
from ipmp.sim.examples import example_path
from ipmp.sim.topology import load_topology, parse_topology

F = TypeVar("F", bound=Callable[..., Any])

IS_ROOT = os.geteuid() == 0


def root_test(function: F) -> F:
    """Mark a test ``root`` and skip it, with the reason, unless we are root."""
    skip = pytest.mark.skipif(
        not IS_ROOT, reason="needs root: builds network namespaces (CI runs it as root)"
    )
    marked: F = pytest.mark.root(skip(function))
    return marked


SOURCE = "192.0.2.50"
ROUTERS = ("192.0.2.1", "192.0.2.2")
HOST100 = "192.0.2.100"
ETH0_MAC = "08:00:20:b9:19:fa"
ETH1_MAC = "08:00:20:b9:1b:fc"


def _prefix() -> str:
    return f"iplab-{secrets.token_hex(3)}"


def _leftovers(prefix: str) -> list[str]:
    return [n for n in commands.list_netns() if n == prefix or n.startswith(prefix + "-")]


def wait_for(what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``check`` until it holds; fail naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def _flags(lab: Lab, ifname: str) -> list[str]:
    link = lab.host_link(ifname)
    assert link is not None, f"{ifname} missing in {lab.host_ns}"
    return list(link["flags"])


IOCTL_FLAGS = (
    "import fcntl, socket, struct, sys\n"
    "s = socket.socket()\n"
    "r = fcntl.ioctl(s, 0x8913, struct.pack('16sH14x', sys.argv[1].encode(), 0))\n"
    "print(struct.unpack('16sH14x', r)[1])\n"
)


def _ioctl_flags(lab: Lab, ifname: str) -> int:
    """SIOCGIFFLAGS inside the host namespace: the flags as ifconfig sees them."""
    result = lab.run([sys.executable, "-c", IOCTL_FLAGS, ifname])
    assert result.returncode == 0, result.stderr
    return int(result.stdout)


IFF_RUNNING = 0x40


def _answers(lab: Lab, destination: str, ifname: str = "eth0") -> bool:
    return lab.ping(destination, ifname=ifname, source=SOURCE, count=1, wait=0.5).received == 1


@pytest.fixture(scope="module")
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The active-active example lab, host NICs up, 192.0.2.50/24 on eth0."""
    if not IS_ROOT:
        pytest.skip("needs root: builds network namespaces (CI runs it as root)")
    prefix = _prefix()
    registry = tmp_path_factory.mktemp("lab-registry")

    def remove() -> None:
        teardown(prefix, registry=registry)
        assert _leftovers(prefix) == [], "namespaces left behind"

    request.addfinalizer(remove)
    built = Lab.up(
        load_topology(example_path("lab-active-active")),
        prefix=prefix,
        registry=registry,
        nics_up=True,
    )
    # Two NICs up on one link and no daemon: without arp_ignore the host's eth1
    # answers ARP for eth0's address (ARP flux, linux-peers 4.5) and replies
    # miss the pinger bound to eth0.  in.mpathd sets these itself.
    commands.write_sysctls(
        built.host_ns,
        {"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2"},
    )
    result = built.run(["ip", "addr", "add", f"{SOURCE}/24", "dev", "eth0"])
    assert result.returncode == 0, result.stderr
    yield built
    report = built.down(registry=registry)
    assert set(report.namespaces) == set(built.planned_namespaces())
    assert _leftovers(prefix) == []


# --------------------------------------------------------------------- build


@root_test
def test_up_creates_the_namespaces_and_the_nics_with_the_topology_macs(lab: Lab) -> None:
    existing = set(commands.list_netns())
    assert set(lab.planned_namespaces()) <= existing
    assert lab.planned_namespaces() == [
        f"{lab.prefix}-sw",
        f"{lab.prefix}-host",
        f"{lab.prefix}-n1",
        f"{lab.prefix}-n2",
        f"{lab.prefix}-n3",
    ]
    eth0, eth1 = lab.host_link("eth0"), lab.host_link("eth1")
    assert eth0 is not None and eth0["address"] == ETH0_MAC
    assert eth1 is not None and eth1["address"] == ETH1_MAC
    # The state file names everything, so down works from it alone.
    state = read_state(lab.run_dir / STATE_NAME)
    assert state.complete and state.namespaces == lab.planned_namespaces()
    # Neighbours: the topology's addresses, and nothing answers from the switch.
    shown = commands.ip(lab.neighbour_ns("router1"), "-j", "addr", "show", "dev", "eth0")
    addresses = {a["local"] for link in json.loads(shown.stdout) for a in link["addr_info"]}
    assert addresses == {"192.0.2.1", "fe80::1"}


@root_test
def test_each_router_and_the_host_answer_a_ping(lab: Lab) -> None:
    wait_for("router1 to answer", lambda: _answers(lab, ROUTERS[0]))
    for address in (*ROUTERS, HOST100):
        result = lab.ping(address, ifname="eth0", source=SOURCE, count=3, interval=0.05)
        assert (result.sent, result.received) == (3, 3), result
        assert result.responders == {address: 3}


@root_test
def test_the_routers_answer_on_their_link_local_addresses(lab: Lab) -> None:
    # The host's own link-local address must first finish DAD.
    wait_for(
        "fe80::1 to answer",
        lambda: lab.ping("fe80::1", ifname="eth0", count=1, wait=0.5).received == 1,
    )
    result = lab.ping("fe80::2", ifname="eth0", count=2, interval=0.05)
    assert result.responders == {"fe80::2": 2}


@root_test
def test_the_all_hosts_ping_is_answered_by_every_neighbour(lab: Lab) -> None:
    expected = {*ROUTERS, HOST100}
    seen: set[str] = set()

    def everyone() -> bool:
        result = lab.ping("224.0.0.1", ifname="eth0", source=SOURCE, count=2, wait=0.5)
        seen.update(result.responders)
        return expected <= seen

    wait_for(f"answers from {sorted(expected)} to 224.0.0.1 (seen {seen})", everyone)
    assert seen == expected, "only the neighbours answer: not the switch, not the host"


# -------------------------------------------------------------------- faults


@root_test
def test_cable_down_clears_running_and_lower_up_and_up_restores_them(lab: Lab) -> None:
    assert "LOWER_UP" in _flags(lab, "eth0")
    assert _ioctl_flags(lab, "eth0") & IFF_RUNNING
    lab.set_cable("eth0", False)
    try:
        wait_for("eth0 to lose carrier", lambda: "LOWER_UP" not in _flags(lab, "eth0"))
        assert "NO-CARRIER" in _flags(lab, "eth0")
        assert not _ioctl_flags(lab, "eth0") & IFF_RUNNING
        assert "UP" in _flags(lab, "eth0"), "the host's own admin state is untouched"
        assert read_state(lab.state.path).ports["eth0"].cable_up is False
    finally:
        lab.set_cable("eth0", True)
    wait_for("eth0 to regain carrier", lambda: "LOWER_UP" in _flags(lab, "eth0"))
    assert _ioctl_flags(lab, "eth0") & IFF_RUNNING
    wait_for("router1 to answer again", lambda: _answers(lab, ROUTERS[0]))


@root_test
def test_drop_silences_the_port_but_keeps_the_carrier(lab: Lab) -> None:
    wait_for("router1 to answer", lambda: _answers(lab, ROUTERS[0]))
    lab.set_drop("eth0", True)
    try:
        result = lab.ping(ROUTERS[0], ifname="eth0", source=SOURCE, count=3, wait=0.5)
        assert result.received == 0, result
        assert lab.ping(HOST100, ifname="eth0", source=SOURCE, count=1, wait=0.3).received == 0
        assert "LOWER_UP" in _flags(lab, "eth0")
        assert _ioctl_flags(lab, "eth0") & IFF_RUNNING
    finally:
        lab.set_drop("eth0", False)
    wait_for("router1 to answer after drop off", lambda: _answers(lab, ROUTERS[0]))


@root_test
def test_loss_50_loses_about_half_of_200_pings(lab: Lab) -> None:
    # Resolve ARP both ways first: the loss applies to every frame.
    wait_for("router1 to answer", lambda: _answers(lab, ROUTERS[0]))
    lab.set_loss("eth0", 50)
    try:
        result = lab.ping(
            ROUTERS[0], ifname="eth0", source=SOURCE, count=200, interval=0.004, wait=1.0
        )
    finally:
        lab.set_loss("eth0", 0)
    assert result.sent == 200
    # Binomial(200, 0.5): standard deviation ~7; 60..140 is over 5 of them.
    assert 60 <= result.received <= 140, result
    wait_for("router1 to answer after loss 0", lambda: _answers(lab, ROUTERS[0]))
    assert lab.ping(ROUTERS[0], ifname="eth0", source=SOURCE, count=20, interval=0.01).loss == 0


@root_test
def test_target_down_silences_one_router_only(lab: Lab) -> None:
    wait_for("router1 to answer", lambda: _answers(lab, ROUTERS[0]))
    lab.set_target("router1", False)
    try:
        assert lab.ping(ROUTERS[0], ifname="eth0", source=SOURCE, count=3, wait=0.5).received == 0
        assert _answers(lab, ROUTERS[1])
        multicast = lab.ping("224.0.0.1", ifname="eth0", source=SOURCE, count=2, wait=0.5)
        assert ROUTERS[0] not in multicast.responders
    finally:
        lab.set_target("router1", True)
    wait_for("router1 to answer again", lambda: _answers(lab, ROUTERS[0]))


@root_test
def test_delete_and_create_remove_and_remake_the_nic_with_the_same_mac(lab: Lab) -> None:
    port = lab.switch_port("eth1")
    lab.delete_nic("eth1")
    assert lab.host_link("eth1") is None
    assert not commands.link_exists(lab.switch_ns, port)
    with pytest.raises(IpmpError, match="not present"):
        lab.delete_nic("eth1")
    lab.create_nic("eth1")
    link = lab.host_link("eth1")
    assert link is not None and link["address"] == ETH1_MAC
    shown = commands.ip(lab.switch_ns, "-j", "link", "show", "dev", port)
    assert json.loads(shown.stdout)[0]["master"] == "br0"
    wait_for("eth1 to have carrier", lambda: "LOWER_UP" in _flags(lab, "eth1"))
    with pytest.raises(IpmpError, match="already present"):
        lab.create_nic("eth1")


@root_test
def test_the_cli_applies_faults_runs_commands_and_shows_status(
    lab: Lab, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IPMP_LAB_DIR", str(Path(lab.run_dir).parent))
    # Without --prefix: the only lab recorded in this registry.
    assert lab_main(["exec", "sh", "-c", "exit 3"]) == 3
    assert lab_main(["exec", "--prefix", lab.prefix, "ip", "link", "show", "eth0"]) == 0
    assert lab_main(["fault", "drop", "eth1", "on", "--prefix", lab.prefix]) == 0
    try:
        assert lab_main(["status"]) == 0
        out = capsys.readouterr().out
        assert "eth1: switch port drops" in out and lab.prefix in out
    finally:
        assert lab_main(["fault", "drop", "eth1", "off"]) == 0
    assert lab_main(["fault", "cable", "eth9", "down"]) == 1
    assert lab_main(["fault", "loss", "eth0", "many"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "eth9" in err[0] and "expected" in err[1]
    assert read_state(lab.state.path).ports["eth1"].drop is False


@root_test
def test_start_daemon_runs_in_the_host_namespace_and_down_stops_it(tmp_path: Path) -> None:
    prefix = _prefix()
    try:
        lab = Lab.up(
            load_topology(example_path("lab-active-standby")), prefix=prefix, registry=tmp_path
        )
        pid = lab.start_daemon([])
        assert (lab.root / "etc" / "hostname.eth0").is_file()
        assert (lab.root / "etc" / "default" / "mpathd").is_file()
        host = os.stat(commands.NETNS_DIR / lab.host_ns).st_ino
        assert os.stat(f"/proc/{pid}/ns/net").st_ino == host
        assert [p.record.pid for p in lab.processes() if p.alive] == [pid]
        report = lab.down(registry=tmp_path)
        assert report.stopped == [f"in.mpathd (pid {pid})"]
        assert not Path(f"/proc/{pid}").exists()
    finally:
        teardown(prefix, registry=tmp_path)
        assert _leftovers(prefix) == []


@root_test
def test_stop_process_ends_one_recorded_process_and_forgets_it(lab: Lab) -> None:
    first = lab.start_process("sleeper1", ["sleep", "300"], "sleeper1.log")
    second = lab.start_process("sleeper2", ["sleep", "300"], "sleeper2.log")
    try:
        assert lab.stop_process(first, signal.SIGKILL) is True
        assert not _running(first)
        alive = {p.record.pid: p.alive for p in lab.processes()}
        assert first not in alive and alive[second] is True
        assert first not in [p.pid for p in read_state(lab.state.path).processes]
        with pytest.raises(IpmpError, match=f"pid {first}: not a process this lab started"):
            lab.stop_process(first)
    finally:
        lab.stop_process(second)
    assert not _running(second)


# ------------------------------------------------------------- after a crash

CRASHING_UP = """
import os, signal, sys
from pathlib import Path
from ipmp.lab.lab import Lab
from ipmp.sim.examples import example_path
from ipmp.sim.topology import load_topology

prefix, registry = sys.argv[1], Path(sys.argv[2])
lab = Lab.up(load_topology(example_path("lab-active-active")), prefix=prefix, registry=registry)
pid = lab.start_process("sleeper", ["sleep", "300"], "sleeper.log")
print(pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


@root_test
def test_down_after_a_crash_removes_recorded_and_stray_namespaces_and_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prefix = _prefix()
    registry = tmp_path / "registry"
    stray = f"{prefix}-stray"
    sleeper = 0
    try:
        crashed = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(CRASHING_UP), prefix, str(registry)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert crashed.returncode == -signal.SIGKILL, crashed.stderr
        sleeper = int(crashed.stdout.split()[0])
        assert Path(f"/proc/{sleeper}").exists(), "the recorded process outlived the crash"
        commands.run(["ip", "netns", "add", stray])  # made by nobody's record
        assert stray in _leftovers(prefix) and len(_leftovers(prefix)) == 6

        monkeypatch.setenv("IPMP_LAB_DIR", str(registry))
        assert lab_main(["down"]) == 0  # the only lab recorded
        out = capsys.readouterr().out
        assert f"stopped sleeper (pid {sleeper})" in out
        assert _leftovers(prefix) == []
        wait_for("the sleeper to be gone", lambda: not _running(sleeper), timeout=5)
        assert not (registry / prefix).exists()
        # down is idempotent: with the prefix there is simply nothing left.
        assert lab_main(["down", "--prefix", prefix]) == 0
        assert "nothing to remove" in capsys.readouterr().out
    finally:
        if sleeper and _running(sleeper) and _cmdline(sleeper).startswith("sleep"):
            os.kill(sleeper, signal.SIGKILL)
        teardown(prefix, registry=registry)
        assert _leftovers(prefix) == []


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


@root_test
def test_down_with_a_prefix_and_no_state_removes_the_namespaces(tmp_path: Path) -> None:
    prefix = _prefix()
    try:
        for suffix in ("host", "sw"):
            commands.run(["ip", "netns", "add", f"{prefix}-{suffix}"])
        report = teardown(prefix, registry=tmp_path)
        assert sorted(report.namespaces) == [f"{prefix}-host", f"{prefix}-sw"]
        assert _leftovers(prefix) == []
        assert teardown(prefix, registry=tmp_path).nothing
    finally:
        teardown(prefix, registry=tmp_path)


@root_test
def test_a_failed_up_removes_what_it_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = _prefix()

    def broken(self: Lab, plan: object) -> None:
        raise IpmpError("injected failure")

    monkeypatch.setattr(Lab, "_make_neighbour", broken)
    try:
        with pytest.raises(IpmpError, match="injected failure"):
            Lab.up(
                load_topology(example_path("lab-active-active")), prefix=prefix, registry=tmp_path
            )
        assert _leftovers(prefix) == []
        assert not (tmp_path / prefix).exists()
    finally:
        teardown(prefix, registry=tmp_path)
        assert _leftovers(prefix) == []


@root_test
def test_up_refuses_a_prefix_in_use(lab: Lab) -> None:
    with pytest.raises(IpmpError, match="in use"):
        Lab.up(
            load_topology(example_path("lab-active-active")),
            prefix=lab.prefix,
            registry=lab.run_dir.parent / "elsewhere",
        )
    assert set(lab.planned_namespaces()) <= set(commands.list_netns())


# ------------------------------------------------- what the lab accepts (no root)

BASE = """
[host]
name = "host1"
[[link]]
name = "net0"
  [[link.neighbour]]
  name = "router1"
  role = "router"
  address = "{router}"
  address6 = "fe80::1"
[[nic]]
name = "eth0"
mac = "2:0:0:0:0:1"
link = "net0"
hostname = '''
{hostname}
'''
"""


def _topology(router: str = "192.0.2.1", hostname: str = "192.0.2.10 up", extra: str = "") -> str:
    return BASE.format(router=router, hostname=hostname) + extra


def test_the_lab_examples_are_accepted() -> None:
    for name in ("lab-active-active", "lab-active-standby"):
        check_topology(load_topology(example_path(name)))


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (_topology(router="10.0.0.1"), ["link[0].neighbour[0].address", "10.0.0.1"]),
        (_topology(hostname="192.168.85.19 up"), ["nic[0].hostname", "192.168.85.19"]),
        (
            _topology(hostname="192.0.2.10 up addif 172.16.0.1 up"),
            ["nic[0].hostname", "172.16.0.1"],
        ),
        (
            _topology(hostname="192.0.2.10 broadcast 10.255.255.255 up"),
            ["10.255.255.255"],
        ),
        (_topology(hostname="myhost up"), ["host name", "literal"]),
        (
            _topology(extra='hostname6 = "addif 2001:db9::1/64 up"\n'),
            ["nic[0].hostname6", "2001:db9::1"],
        ),
        (
            _topology(extra='[[route]]\ndestination = "10.0.0.0"\nprefixlen = 8\n'),
            ["route[0].destination", "10.0.0.0/8"],
        ),
        (
            _topology(
                extra='[[route]]\ndestination = "0.0.0.0"\nprefixlen = 0\ngateway = "192.168.1.1"\n'
            ),
            ["route[0].gateway", "192.168.1.1"],
        ),
    ],
)
def test_addresses_outside_the_documentation_ranges_are_refused(
    text: str, words: list[str]
) -> None:
    with pytest.raises(IpmpError) as caught:
        check_topology(parse_topology(text, "t.toml"))
    message = caught.value.message
    assert message.startswith("t.toml: ") and "\n" not in message
    for word in words:
        assert word in message


def test_documentation_and_link_local_addresses_are_accepted() -> None:
    text = _topology(
        router="203.0.113.1",
        hostname="198.51.100.5 netmask + broadcast + up addif 192.0.2.7 -failover up",
        extra='hostname6 = "-failover up\\naddif 2001:db8::5/64 up\\naddif fe80::99/10 up"\n'
        '[[route]]\ndestination = "0.0.0.0"\nprefixlen = 0\ngateway = "203.0.113.1"\n',
    )
    check_topology(parse_topology(text, "t.toml"))


def test_vlans_are_simulator_only() -> None:
    text = _topology(
        extra='[[nic]]\nname = "eth1000"\nlink = "net0"\n',
    )
    with pytest.raises(IpmpError, match=r"nic\[1\].name: eth1000 is VLAN 1 on eth0.*802.1Q"):
        check_topology(parse_topology(text, "t.toml"))


def test_the_cli_refuses_to_run_without_root(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert lab_main(["status"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "must be run as root" in err
