"""in.mpathd as a real process on the simulated host, through its control socket."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ipmp
from daemontools import RunningDaemon, kernel_counts, wait_for
from ipmp.client import ControlClient
from ipmp.core.errors import IpmpError
from ipmp.daemon.control import socket_path

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "ipmp" / "examples"

MANY = 50


def many_addresses_topology(tmp: Path, fdt_ms: int = 1000) -> Path:
    """hme0 with MANY data addresses, hme1 plain; routers as targets; fast FDT."""
    extra = "".join(
        f" \\\n    addif 192.168.85.{100 + i} netmask + broadcast + up" for i in range(MANY)
    )
    text = f"""
[host]
name = "h"
[mpathd]
text = "FAILURE_DETECTION_TIME={fdt_ms}\\n"
[[link]]
name = "net0"
  [[link.neighbour]]
  name = "r1"
  role = "router"
  address = "192.168.85.1"
  [[link.neighbour]]
  name = "r2"
  role = "router"
  address = "192.168.85.2"
[[nic]]
name = "hme0"
mac = "8:0:20:0:0:1"
link = "net0"
hostname = '''192.168.85.19 netmask + broadcast + group test up \\
    addif 192.168.85.21 deprecated -failover netmask + broadcast + up{extra}'''
[[nic]]
name = "hme1"
mac = "8:0:20:0:0:2"
link = "net0"
hostname = '''192.168.85.20 netmask + broadcast + group test up \\
    addif 192.168.85.22 deprecated -failover netmask + broadcast + up'''
"""
    path = tmp / "many.toml"
    path.write_text(text)
    return path


DATA = {"192.168.85.19", "192.168.85.20"} | {f"192.168.85.{100 + i}" for i in range(MANY)}
TEST = {"192.168.85.21": "hme0", "192.168.85.22": "hme1"}


@pytest.fixture
def daemons(tmp_path: Path) -> Iterator[list[RunningDaemon]]:
    started: list[RunningDaemon] = []
    yield started
    for daemon in started:
        daemon.kill()


def test_failover_is_seen_through_the_socket(tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    daemon = RunningDaemon(tmp_path, EXAMPLES / "active-active.toml").start()
    daemons.append(daemon)
    daemon.request("sim", command=["link", "hme0", "down"])
    snap = daemon.snapshot()
    rows = {row["interface"]: row for row in snap["interfaces"]}
    assert rows["hme0"]["state"] == "failed" and rows["hme0"]["link"] == "down"
    assert rows["hme1"]["active"] is True
    where = {row["address"]: row["inbound"] for row in snap["addresses"]}
    assert where["192.168.85.19"] == "hme1"
    out = daemon.request("ifconfig", argv=["hme1:2"])["output"]
    assert "inet 192.168.85.19 netmask ffffff00" in out
    assert "NIC failure detected on hme0 of group test" in daemon.log()
    assert daemon.stop() == 0


@pytest.mark.slow
def test_sighup_applies_good_values_and_keeps_running_ones_on_bad(
    tmp_path: Path, daemons: list[RunningDaemon]
) -> None:
    daemon = RunningDaemon(tmp_path, EXAMPLES / "active-active.toml").start()
    daemons.append(daemon)
    mpathd = tmp_path / "etc" / "default" / "mpathd"
    mpathd.write_text("FAILURE_DETECTION_TIME=2000\nFAILBACK=no\n")
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: daemon.snapshot()["groups"][0]["fdt_ms"] == 2000, 5, "FDT 2000 applied")
    mpathd.write_text("FAILURE_DETECTION_TIME=abc\nFAILBACK=maybe\n")
    daemon.signal(signal.SIGHUP)
    wait_for(lambda: "Invalid value for FAILBACK maybe" in daemon.log(), 5, "bad value logged")
    assert "Invalid failure detection time abc, keeping 2000" in daemon.log()
    assert daemon.snapshot()["groups"][0]["fdt_ms"] == 2000
    # FAILBACK keeps the running "no": a repaired hme0 stays INACTIVE.
    daemon.request("sim", command=["link", "hme0", "down"])
    daemon.request("sim", command=["link", "hme0", "up"])
    wait_for(
        lambda: (
            {r["interface"]: r for r in daemon.snapshot()["interfaces"]}["hme0"]["state"] == "ok"
        ),
        60,
        "hme0 repaired",
    )
    assert {r["interface"]: r for r in daemon.snapshot()["interfaces"]}["hme0"]["flags"][0] == "i"


def test_sigterm_exits_quickly_leaving_addresses(
    tmp_path: Path, daemons: list[RunningDaemon]
) -> None:
    daemon = RunningDaemon(tmp_path, EXAMPLES / "active-active.toml").start()
    daemons.append(daemon)
    daemon.request("sim", command=["link", "hme0", "down"])
    before = sorted(daemon.kernel())
    assert daemon.proc is not None
    proc = daemon.proc
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=1.0)
    assert proc.returncode == 0
    assert sorted(daemon.kernel()) == before
    assert not socket_path(tmp_path).exists()


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [1, 2, 7, 25, MANY])
def test_sigkill_during_failover_then_restart_converges(
    tmp_path: Path, daemons: list[RunningDaemon], kill_after: int
) -> None:
    topology = many_addresses_topology(tmp_path)
    daemon = RunningDaemon(tmp_path, topology).start()
    daemons.append(daemon)
    daemon.stop()
    # Restart with a crash armed: it fires on the kill_after-th kernel action of
    # the failover the cable pull starts.
    daemon.start(extra_env={"IPMP_SIM_CRASH_AFTER": str(kill_after)})
    with contextlib.suppress(IpmpError):  # the daemon may die while answering
        daemon.request("sim", command=["link", "hme0", "down"])
    assert daemon.proc is not None
    daemon.proc.wait(timeout=10)
    assert daemon.proc.returncode == -signal.SIGKILL
    daemon.proc = None
    daemon.start()

    # Converged: every data address exactly once, on hme1 while hme0's cable is out.
    def converged() -> bool:
        kernel = daemon.kernel()
        counts = kernel_counts(kernel)
        on = {address: name for name, _f, _u, address, _up in kernel}
        return (
            all(counts[a] == 1 for a in DATA)
            and all(on[a] == "hme1" for a in DATA)
            and all(on.get(t) == nic for t, nic in TEST.items())
        )

    wait_for(converged, 10, "every data address once, on hme1")
    daemon.request("sim", command=["link", "hme0", "up"])

    def home() -> bool:
        kernel = daemon.kernel()
        counts = kernel_counts(kernel)
        on = {address: name for name, _f, _u, address, _up in kernel}
        expected = {a: ("hme1" if a == "192.168.85.20" else "hme0") for a in DATA}
        return all(counts[a] == 1 for a in DATA) and all(on[a] == expected[a] for a in DATA)

    wait_for(home, 30, "every data address back home after repair")


def as_nobody(argv: list[str]) -> tuple[int, str, str]:
    """Run ``ipmp ARGV`` in a forked child as uid/gid 65534; return (status, out, err)."""
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            sys.stdout = os.fdopen(1, "w", closefd=False)
            sys.stderr = os.fdopen(2, "w", closefd=False)
            from ipmp.cli.main import main

            code = main(argv)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    os.close(out_w)
    os.close(err_w)
    with os.fdopen(out_r) as out, os.fdopen(err_r) as err:
        stdout, stderr = out.read(), err.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), stdout, stderr


def test_unprivileged_client_may_read_but_not_change(daemons: list[RunningDaemon]) -> None:
    # A root every user can traverse (pytest's tmp_path is private to root).
    root = Path(tempfile.mkdtemp(prefix="ipmp-unpriv-", dir="/tmp"))
    os.chmod(root, 0o755)
    try:
        daemon = RunningDaemon(root, EXAMPLES / "active-active.toml").start()
        daemons.append(daemon)
        code, out, err = as_nobody(["--root", str(root), "ifconfig", "hme0"])
        assert code == 0, err
        assert out.startswith("hme0: flags=1000843<")
        code, out, err = as_nobody(["--root", str(root), "offline", "hme0"])
        assert code == 1
        assert "offline: permission denied" in err
        assert err.count("\n") == 1
        code, out, err = as_nobody(["--root", str(root), "ifconfig", "hme0", "down"])
        assert code == 1 and "permission denied" in err
        assert "UP" in daemon.request("ifconfig", argv=["hme0"])["output"].split(">")[0]
    finally:
        for daemon in daemons:
            daemon.kill()
        shutil.rmtree(root, ignore_errors=True)


def answered(daemon: RunningDaemon, instance: str) -> int:
    """Acks received so far by one probe instance, from the statistics dump."""
    for line in daemon.request("stats")["lines"]:
        if line.startswith(f"Probe stats on ({instance}):"):
            return int(line.split("acks received ")[1].split(",")[0])
    return 0


@pytest.mark.slow
def test_a_client_that_never_reads_cannot_stall_failover(
    tmp_path: Path, daemons: list[RunningDaemon]
) -> None:
    daemon = RunningDaemon(tmp_path, EXAMPLES / "active-active.toml").start()
    daemons.append(daemon)
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    silent.connect(str(socket_path(tmp_path)))
    silent.sendall(b'{"v": 1, "id": 1, "op": "probes", "args": {}}\n')  # then never reads
    idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    idle.connect(str(socket_path(tmp_path)))  # never writes either
    try:
        # Let hme0's first probes be answered: that ends the 40 s quiet period.
        wait_for(lambda: answered(daemon, "inet hme0") >= 2, 10, "hme0 probes answered")
        daemon.request("sim", command=["drop", "hme0", "on"])
        took = wait_for(
            lambda: (
                {r["interface"]: r for r in daemon.snapshot()["interfaces"]}["hme0"]["state"]
                == "failed"
            ),
            30,
            "hme0 failed by probes",
        )
        # FAILURE_DETECTION_TIME is 10 s in this example; the 40 s quiet period
        # ended with the first answered probes.
        assert took <= 10.5
    finally:
        silent.close()
        idle.close()


@pytest.mark.slow
def test_offline_online_and_dr_through_the_socket(
    tmp_path: Path, daemons: list[RunningDaemon]
) -> None:
    daemon = RunningDaemon(tmp_path, EXAMPLES / "active-active.toml").start()
    daemons.append(daemon)
    daemon.request("offline", interface="hme0")
    rows = {r["interface"]: r for r in daemon.snapshot()["interfaces"]}
    assert rows["hme0"]["state"] == "offline"
    with pytest.raises(IpmpError, match="Offline failed as there is no other functional"):
        daemon.request("offline", interface="hme1")
    daemon.request("online", interface="hme0")
    with pytest.raises(IpmpError, match="Interface not offlined"):
        daemon.request("online", interface="hme0")
    daemon.request("dr_detach", interface="hme1")
    where = {r["address"]: r["inbound"] for r in daemon.snapshot()["addresses"]}
    assert where["192.168.85.20"] == "hme0"
    assert "hme1" not in {name for name, *_ in daemon.kernel()}
    with pytest.raises(IpmpError, match="only functioning interfaces"):
        daemon.request("dr_detach", interface="hme0")
    daemon.request("dr_attach", interface="hme1")
    wait_for(
        lambda: (
            {r["address"]: r["inbound"] for r in daemon.snapshot()["addresses"]}["192.168.85.20"]
            == "hme1"
        ),
        40,
        "hme1's address back after attach",
    )


@pytest.mark.slow
def test_a_nic_that_appears_is_configured_from_its_file_as_edited(
    tmp_path: Path, daemons: list[RunningDaemon]
) -> None:
    # guide (Attaching NICs): the interface "receives the same configuration
    # that it would have received after system boot" -- from the file as it
    # reads when the NIC appears, edited after the daemon started.
    daemon = RunningDaemon(tmp_path, EXAMPLES / "missing-at-boot.toml").start()
    daemons.append(daemon)
    path = tmp_path / "etc" / "hostname.hme0"
    path.write_text(
        path.read_text(encoding="utf-8")
        + "removeif 192.168.85.99\naddif 192.168.85.40 netmask + broadcast + up\n",
        encoding="utf-8",
    )
    daemon.request("sim", command=["plug", "hme0"])
    kernel = {(name, address) for name, _f, _u, address, _up in daemon.kernel()}
    assert ("hme0", "192.168.85.40") in kernel and ("hme0", "192.168.85.21") in kernel
    refusal = "hostname.hme0 line 3: ifconfig: removeif 192.168.85.99: no such address on hme0"
    wait_for(lambda: refusal in daemon.log(), 5, "the refused line logged")
    wait_for(
        lambda: (
            {r["address"]: r["inbound"] for r in daemon.snapshot()["addresses"]}["192.168.85.19"]
            == "hme0"
        ),
        60,
        "hme0's address failed back",
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_metrics_sigusr1_and_systemd_notifications(
    tmp_path: Path, daemons: list[RunningDaemon]
) -> None:
    import urllib.request

    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = tmp_path / "notify.sock"
    notify.bind(str(notify_path))
    notify.settimeout(10)
    port = free_port()
    daemon = RunningDaemon(tmp_path, EXAMPLES / "active-active.toml")
    daemon.start(
        extra_env={"NOTIFY_SOCKET": str(notify_path)}, args=["--metrics", f"127.0.0.1:{port}"]
    )
    daemons.append(daemon)
    assert notify.recv(100) == b"READY=1"
    daemon.request("sim", command=["link", "hme0", "down"])
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "ipmp_failovers_total 1.0" in body
    assert 'ipmp_interface_state{group="test",interface="hme0",state="failed"} 1.0' in body
    assert 'ipmp_group_state{group="test",state="degraded"} 1.0' in body
    daemon.signal(signal.SIGUSR1)
    wait_for(lambda: "Probe stats on (inet hme1): probes sent" in daemon.log(), 5, "stats logged")
    assert "Target 192.168.85.1 on (inet hme1)" in daemon.log()
    assert daemon.stop() == 0
    assert notify.recv(100) == b"STOPPING=1"
    notify.close()


def test_stray_signals_do_not_end_the_daemon(tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    daemon = RunningDaemon(tmp_path, EXAMPLES / "active-active.toml").start()
    daemons.append(daemon)
    for number in (signal.SIGUSR2, signal.SIGALRM, signal.SIGQUIT):
        daemon.signal(number)
        name = signal.Signals(number).name
        line = f"ignoring {name}"
        wait_for(lambda line=line: line in daemon.log(), 5, f"{name} logged")  # type: ignore[misc]
    assert daemon.request("ping")["sim"] is True
    assert daemon.stop() == 0


def test_the_log_says_who_changed_what_and_when_the_daemon_ran(
    tmp_path: Path, daemons: list[RunningDaemon]
) -> None:
    daemon = RunningDaemon(tmp_path, EXAMPLES / "active-active.toml").start()
    daemons.append(daemon)
    assert daemon.proc is not None
    started = f"in.mpathd {ipmp.__version__} started (pid {daemon.proc.pid}, root {tmp_path})"
    assert started in (daemon.log())
    daemon.request("offline", interface="hme0")
    daemon.request("online", interface="hme0")
    daemon.request("ifconfig", argv=["hme1", "addif", "192.168.85.60", "up"])
    log = daemon.log()
    me = f"requested by uid {os.getuid()} (pid {os.getpid()})"
    assert f"offline hme0 {me}" in log and f"online hme0 {me}" in log
    assert f"ifconfig hme1 addif 192.168.85.60 up {me}" in log
    daemon.request("ifconfig", argv=["hme0"])  # a read: not logged
    assert "ifconfig hme0 requested" not in daemon.log()
    assert daemon.stop() == 0
    assert "stopping: every address stays where it is" in daemon.log()


def test_a_metrics_address_beyond_loopback_needs_asking(tmp_path: Path) -> None:
    port = free_port()
    topology = str(EXAMPLES / "active-active.toml")
    argv = ["-d", "--sim", topology, "--root", str(tmp_path), "--metrics", f"0.0.0.0:{port}"]
    done = subprocess.run(
        [sys.executable, "-m", "ipmp.daemon.main", *argv],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"in.mpathd: --metrics 0.0.0.0:{port}: not a loopback address; "
        "add --metrics-remote to serve metrics to other hosts\n"
    )
    assert list(tmp_path.iterdir()) == []  # nothing written before the refusal


@pytest.mark.slow
def test_ipmpstat_against_the_daemon(tmp_path: Path, daemons: list[RunningDaemon]) -> None:
    daemon = RunningDaemon(tmp_path, EXAMPLES / "active-standby.toml").start()
    daemons.append(daemon)
    daemon.request("sim", command=["link", "hme0", "down"])
    env = {**os.environ, "IPMP_ROOT": str(tmp_path)}

    def ipmpstat(*argv: str) -> str:
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from ipmp.cli.ipmpstat import main; raise SystemExit(main())",
                *argv,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=20,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert ipmpstat("-g").splitlines() == [
        "GROUP       GROUPNAME   STATE     FDT       INTERFACES",
        "test        test        degraded  10.00s    hme1 [hme0]",
    ]
    lines = ipmpstat("-i").splitlines()
    assert lines[0].split() == ["INTERFACE", "ACTIVE", "GROUP", "FLAGS", "LINK", "PROBE", "STATE"]
    assert lines[1].split() == ["hme0", "no", "test", "-------", "down", "failed", "failed"]
    assert lines[2].split() == ["hme1", "yes", "test", "-smbM--", "up", "ok", "ok"]
    assert ipmpstat("-an").splitlines()[1].split() == [
        "192.168.85.19",
        "up",
        "test",
        "hme1",
        "hme1",
    ]
    assert ipmpstat("-gP", "-o", "group,state").strip() == "test:degraded"
    rows = json.loads(ipmpstat("-i", "--json"))["interfaces"]
    assert [(r["interface"], r["state"]) for r in rows] == [("hme0", "failed"), ("hme1", "ok")]
    assert [r["active"] for r in rows] == [False, True]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    op=st.sampled_from(
        [
            "ping",
            "snapshot",
            "ifconfig",
            "offline",
            "online",
            "dr_detach",
            "dr_attach",
            "sim",
            "reload",
            "stats",
            "nosuch",
            "",
        ]
    ),
    args=st.dictionaries(
        st.sampled_from(["argv", "interface", "force", "command", "show_ether", "x"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.text(max_size=12),
            st.lists(
                st.sampled_from(
                    [
                        "hme0",
                        "hme1",
                        "-a",
                        "up",
                        "down",
                        "link",
                        "drop",
                        "on",
                        "group",
                        "",
                        "192.168.85.7",
                    ]
                ),
                max_size=4,
            ),
        ),
        max_size=3,
    ),
)
def test_fuzzed_requests_never_kill_the_daemon(
    fuzz_daemon: RunningDaemon, op: str, args: dict[str, object]
) -> None:
    try:
        fuzz_daemon.client().request(op, **args)
    except IpmpError as err:
        assert "\n" not in err.message
        assert "internal error" not in err.message
    assert fuzz_daemon.answers()


@pytest.fixture(scope="module")
def fuzz_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDaemon]:
    root = tmp_path_factory.mktemp("fuzz")
    daemon = RunningDaemon(root, EXAMPLES / "active-active.toml").start()
    yield daemon
    daemon.kill()


def test_the_simulator_without_a_root_gets_a_scratch_one(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "IPMP_ROOT"}
    env["TMPDIR"] = str(tmp_path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ipmp.daemon.main",
            "-d",
            "--sim",
            str(EXAMPLES / "active-active.toml"),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        first = proc.stderr.readline()
        scratch = Path(first.split("root is ", 1)[1].split(" ", 1)[0])
        assert scratch.parent == tmp_path and scratch.name.startswith("ipmp-sim-")

        def answers() -> bool:
            try:
                ControlClient(socket_path(scratch), timeout=2.0).request("ping")
            except IpmpError:
                return False
            return True

        # Answering, it has its signal handlers: SIGTERM then ends it cleanly.
        wait_for(answers, 20, "the daemon answers in its scratch root")
        assert (scratch / "etc").is_dir()
    finally:
        proc.terminate()
        proc.wait(10)
        assert proc.stderr is not None
        proc.stderr.close()
    assert not scratch.exists()  # a scratch root is the daemon's own: removed when it ends


def test_an_unknown_group_is_refused_before_anything_is_touched(tmp_path: Path) -> None:
    topology = str(EXAMPLES / "active-active.toml")
    argv = ["-d", "--sim", topology, "--root", str(tmp_path), "--group", "no-such-group-xyz"]
    done = subprocess.run(
        [sys.executable, "-m", "ipmp.daemon.main", *argv],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("in.mpathd: --group: unknown group 'no-such-group-xyz'")
    assert len(done.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []
