"""The daemon's request handling, driven in-process (no socket): rollback and privileges."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemontools import inprocess_daemon  # noqa: F401 (the ``daemon`` fixture)
from ipmp.core.actions import Action, UnplumbInterface
from ipmp.core.errors import IpmpError
from ipmp.core.events import ActionFailed, Event
from ipmp.daemon.control import Peer, Request
from ipmp.daemon.daemon import Daemon

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "ipmp" / "examples"
ROOT = Peer(pid=1, uid=0, gid=0, privileged=True)
NOBODY = Peer(pid=2, uid=65534, gid=65534, privileged=False)


def request(d: Daemon, op: str, peer: Peer = ROOT, **args: object) -> object:
    return d.handle(Request(id=1, op=op, args=dict(args)), peer)


def test_a_failing_kernel_step_rolls_dr_detach_back(daemon: Daemon) -> None:
    assert daemon.sim is not None
    host = daemon.sim.host
    original = host.execute

    def refuse_unplumb(action: Action, now: float) -> list[Event]:
        if isinstance(action, UnplumbInterface):
            return [ActionFailed(now, action, "device busy")]
        return original(action, now)

    before = repr(daemon.engine.table)
    kernel = sorted(map(repr, host.addresses()))
    host.execute = refuse_unplumb  # type: ignore[method-assign]
    with pytest.raises(IpmpError, match="dr_detach hme1 failed: device busy; the previous"):
        request(daemon, "dr_detach", interface="hme1")
    host.execute = original  # type: ignore[method-assign]
    assert repr(daemon.engine.table) == before
    assert sorted(map(repr, host.addresses())) == kernel
    assert "hme1" not in daemon.engine.detached


def test_reads_are_open_and_changes_are_not(daemon: Daemon) -> None:
    assert "hme0: flags=" in request(daemon, "ifconfig", NOBODY, argv=["hme0"])["output"]  # type: ignore[index]
    assert request(daemon, "snapshot", NOBODY)["version"] == 1  # type: ignore[index]
    for op, args in (
        ("offline", {"interface": "hme0"}),
        ("ifconfig", {"argv": ["hme0", "down"]}),
        ("sim", {"command": ["link", "hme0", "down"]}),
        ("reload", {}),
    ):
        with pytest.raises(IpmpError, match=f"{op}: permission denied"):
            request(daemon, op, NOBODY, **args)


def test_malformed_arguments_are_refused_in_one_line(daemon: Daemon) -> None:
    for op, args, message in (
        ("ifconfig", {"argv": "hme0"}, "argv must be a list of at most 256 strings"),
        ("offline", {"interface": 3}, "interface must be an interface name"),
        ("sim", {"command": ["link", "hme0"]}, "expected 2 arguments"),
        ("sim", {"command": ["loss", "hme0", "200"]}, "percentage from 0 to 100"),
        ("nosuch", {}, "unknown operation 'nosuch'"),
    ):
        with pytest.raises(IpmpError, match=message):
            request(daemon, op, **args)


def _kernel_and_table(d: Daemon) -> tuple[str, list[str]]:
    assert d.sim is not None
    return repr(d.engine.table), sorted(map(repr, d.sim.host.addresses()))


@pytest.mark.parametrize(
    ("op", "args", "message"),
    [
        # A string is not a boolean: "false" used to force the detach.
        ("dr_detach", {"interface": "hme0", "force": "false"}, r"force must be true or false"),
        ("dr_detach", {"interface": "hme0", "force": 0}, r"force must be true or false"),
        ("offline", {"interface": "hme0", "forse": True}, r"unknown argument\(s\) 'forse'"),
        ("online", {"interface": "hme0", "x": 1}, r"online: unknown argument\(s\) 'x'"),
        ("snapshot", {"verbose": True}, r"expected no arguments"),
        ("offline", {}, r"missing argument 'interface'"),
        ("offline", {"interface": "hme0\nhme1"}, r"interface must be an interface name"),
        ("offline", {"interface": "a" * 16}, r"interface must be an interface name"),
        ("offline", {"interface": "../hme0"}, r"interface must be an interface name"),
        ("dr_attach", {"interface": ""}, r"interface must be an interface name"),
        ("ifconfig", {"argv": ["hme0\n", "down"]}, r"argv must be a list"),
        ("ifconfig", {"argv": ["hme0"], "show_ether": "yes"}, r"show_ether must be true or false"),
        ("sim", {"command": ["rtt", "192.168.85.1", "nan"]}, r"expected a finite number"),
        ("sim", {"command": ["rtt", "192.168.85.1", "inf"]}, r"expected a finite number"),
        ("sim", {"command": ["rtt", "192.168.85.1", "-5"]}, r"milliseconds from 0 to"),
        ("sim", {"command": ["loss", "hme0", "nan"]}, r"expected a finite number"),
    ],
)
def test_every_argument_is_checked_and_a_refusal_changes_nothing(
    daemon: Daemon, op: str, args: dict[str, object], message: str
) -> None:
    before = _kernel_and_table(daemon)
    with pytest.raises(IpmpError, match=message) as refused:
        request(daemon, op, **args)
    assert "\n" not in refused.value.message
    assert _kernel_and_table(daemon) == before
    assert "hme0" not in daemon.engine.detached


def test_modlist_is_a_read(daemon: Daemon) -> None:
    out = request(daemon, "ifconfig", NOBODY, argv=["hme0", "modlist"])
    assert "ip" in out["output"].split()  # type: ignore[index]
    with pytest.raises(IpmpError, match="ifconfig: permission denied"):
        request(daemon, "ifconfig", NOBODY, argv=["hme0", "modinsert", "vpnmod@2"])


def test_a_failover_is_saved_at_once_and_made_durable_later(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    import ipmp.daemon.daemon as daemon_module

    writes: list[bool] = []
    real_write = daemon_module.write_json

    def recording(path: Path, data: object, durable: bool = True) -> None:
        if path == daemon_module.state_path(daemon.root):  # not the simulator's world
            writes.append(durable)
        real_write(path, data, durable)

    monkeypatch.setattr(daemon_module, "write_json", recording)
    assert daemon.sim is not None and daemon._loop is not None
    daemon.sim.host.set_link("hme0", False, daemon._loop.time())
    daemon._fire()  # the kernel event: a failover, saved ahead of its moves
    assert writes and writes[-1] is False  # no fsync between the carrier loss and the move
    saved = json.loads(daemon_module.state_path(daemon.root).read_text())
    assert any(nic["name"] == "hme0" and nic["failed"] for nic in saved["nics"])
    timer = daemon._sync_timer
    assert timer is not None and timer.when() > daemon._loop.time()
    timer._run()  # STATE_SYNC_DELAY later
    assert writes[-1] is True and daemon._sync_timer is None
    # An administrator's change is durable at once.
    writes.clear()
    request(daemon, "ifconfig", argv=["hme1", "addif", "192.168.85.60", "up"])
    assert writes and all(writes)


def test_a_finished_probe_stream_is_forgotten_at_once(daemon: Daemon) -> None:
    """Nothing may pile up when streams come and go while no probe settles."""
    streams = [request(daemon, "probes", NOBODY) for _ in range(50)]
    assert len(daemon.subscribers) == 50
    for stream in streams:
        stream.finish()  # type: ignore[attr-defined]
    assert daemon.subscribers == []


HME1_EDITED = (
    "192.168.85.20 netmask + broadcast + group test up \\\n"
    "    addif 192.168.85.23 deprecated -failover netmask + broadcast + up\n"
    "removeif 192.168.85.99\n"
    "addif 192.168.85.30 netmask + broadcast + up\n"
)


def _units(d: Daemon, name: str) -> dict[int, str]:
    inst = d.engine.table.nics[name].instances["inet"]
    return {unit: li.address for unit, li in inst.units.items()}


def test_dr_attach_reads_the_hostname_file_as_it_is_now(daemon: Daemon, tmp_path: Path) -> None:
    # guide, Attaching NICs: "If an /etc/hostname.interface file already exists
    # when the interface is attached, then RCM automatically configures the
    # interface according to the contents of this file."  Edited between the
    # detach and the attach, it is read at the attach; a refused line gives
    # its one-line message and the rest applies.
    logs: list[str] = []
    daemon.driver.on_log = lambda now, log: logs.append(log.message)
    request(daemon, "dr_detach", interface="hme1")
    (tmp_path / "etc" / "hostname.hme1").write_text(HME1_EDITED, encoding="utf-8")
    request(daemon, "dr_attach", interface="hme1")
    assert "hostname.hme1 line 3: ifconfig: removeif 192.168.85.99: no such address on hme1" in logs
    assert sum("hostname.hme1" in line for line in logs) == 1
    # The data address waits on hme0 for hme1's repair, to come back on unit 0.
    assert _units(daemon, "hme1") == {0: "0.0.0.0", 1: "192.168.85.23", 2: "192.168.85.30"}
    found = daemon.engine.table.find_address("inet", "192.168.85.20")
    assert found is not None and found[0].name == "hme0"
    assert (found[1].home, found[1].home_unit) == ("hme1", 0)
    assert daemon.engine.probes[("hme1", "inet")].test_address == "192.168.85.23"
    assert daemon.sim is not None
    kernel = {(a.ifname, a.address) for a in daemon.sim.host.addresses()}
    assert {("hme1", "192.168.85.23"), ("hme1", "192.168.85.30")} <= kernel
    assert not any(address == "192.168.85.22" for _, address in kernel)


def test_an_attached_nic_whose_edited_file_does_not_parse_is_configured_as_at_boot(
    daemon: Daemon, tmp_path: Path
) -> None:
    logs: list[str] = []
    daemon.driver.on_log = lambda now, log: logs.append(log.message)
    booted = _units(daemon, "hme1")
    request(daemon, "dr_detach", interface="hme1")
    (tmp_path / "etc" / "hostname.hme1").write_text("192.168.85.20 netmaks +\n", encoding="utf-8")
    request(daemon, "dr_attach", interface="hme1")
    refusals = [line for line in logs if line.startswith("hostname.hme1")]
    assert len(refusals) == 1 and refusals[0].startswith('hostname.hme1 line 1: "netmaks"')
    # As at boot the file is skipped: hme1 gets hostname6.hme1 only, and its
    # IPv4 data address stays where it failed over to, nothing lost.
    hme1 = daemon.engine.table.nics["hme1"]
    assert hme1.present and set(hme1.instances) == {"inet6"}
    found = daemon.engine.table.find_address("inet", booted[0])
    assert found is not None and found[0].name == "hme0"
