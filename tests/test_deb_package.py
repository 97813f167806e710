"""The Debian package: built from this repository, installed with dpkg -i, used, removed (root).

The test installs the package on the machine it runs on (as CI does) and
removes it again, also when a check fails; it refuses to touch a machine
where a package named ipmp is already installed.  ``IPMP_DEB`` names a
package built beforehand (``.ci/run`` builds it once); without it the test
builds one with ``packaging/build-deb.sh``.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import ipmp
from daemontools import wait_for
from ipmp.cli.if_mpadm import SOLARIS_MESSAGES
from ipmp.core.mpathd_config import check_mpathd

pytestmark = pytest.mark.root

REPO = Path(__file__).resolve().parent.parent
UNIT = Path("/lib/systemd/system/in.mpathd.service")
COMMANDS = {
    "in.mpathd": "/usr/sbin",
    "if_mpadm": "/usr/sbin",
    "ipmpstat": "/usr/bin",
    "ipmp": "/usr/bin",
}
PAGES = ("in.mpathd", "ipmpstat", "if_mpadm", "ipmp")
EXPOSURE_LIMIT = 3.0
# What a root shell on a fresh host has: nothing of this checkout's environment.
CLEAN_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "MANPAGER": "cat"}


def sh(
    *argv: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv),
        capture_output=True,
        text=True,
        env={**CLEAN_ENV, **(env or {})},
        timeout=300,
        check=check,
    )


def _installed() -> bool:
    done = sh("dpkg-query", "-W", "-f=${db:Status-Status}", "ipmp", check=False)
    return done.returncode == 0 and done.stdout.strip() not in ("", "not-installed")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("installs a Debian package: needs root")
    if shutil.which("dpkg-deb") is None or not Path("/usr/bin/python3").exists():
        pytest.skip("needs dpkg-deb and Debian's /usr/bin/python3")
    # Two runs on one machine must not install and remove under each other.
    lock = open("/run/lock/ipmp-deb-test.lock", "w")  # noqa: SIM115 - held for the module
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        if _installed():
            pytest.skip("a package named ipmp is installed here already: not touching it")
        given = os.environ.get("IPMP_DEB")
        if given:
            deb = Path(given)
        else:
            out = tmp_path_factory.mktemp("deb")
            built = sh(str(REPO / "packaging" / "build-deb.sh"), str(out), env=dict(os.environ))
            deb = Path(built.stdout.strip().splitlines()[-1])
        assert deb.name == f"ipmp_{ipmp.__version__}-1_all.deb"
        sh("dpkg", "-i", str(deb))
        try:
            yield deb
        finally:
            if _installed():
                sh("dpkg", "--purge", "ipmp", check=False)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        lock.close()


def test_commands_are_on_the_path_with_the_one_version(package: Path) -> None:
    for command, directory in COMMANDS.items():
        assert sh("sh", "-c", f"command -v {command}").stdout.strip() == f"{directory}/{command}"
        done = sh(command, "--version")
        assert done.stdout == f"{command} (ipmp) {ipmp.__version__}\n"
    # The commands run the bundled code isolated: this checkout's PYTHONPATH is ignored.
    where = sh(
        "/opt/ipmp/bin/python",
        "-I",
        "-c",
        "import ipmp; print(ipmp.__file__)",
        env={"PYTHONPATH": str(REPO / "src")},
    )
    assert where.stdout.startswith("/opt/ipmp/lib/python3.")
    assert os.path.realpath("/opt/ipmp/bin/python").startswith("/usr/bin/python3.")


def test_man_pages_are_installed_gzipped(package: Path) -> None:
    for page in PAGES:
        assert sh("man", "-w", page).stdout.strip() == f"/usr/share/man/man8/{page}.8.gz"
    text = sh("man", "in.mpathd").stdout
    assert "FAILURE_DETECTION_TIME" in text and "EXIT STATUS" in text


def test_the_default_file_is_a_clean_commented_conffile(package: Path) -> None:
    text = Path("/etc/default/mpathd").read_text()
    assert check_mpathd(text) == []
    assert "MPATHD_OPTIONS=" in text and text.count("\n#") > 10
    assert "/etc/default/mpathd" in sh("dpkg-query", "-W", "-f=${Conffiles}", "ipmp").stdout


def test_unit_verifies_and_rates_at_most_3_0(package: Path) -> None:
    assert UNIT.read_bytes() == (REPO / "contrib" / "systemd" / "in.mpathd.service").read_bytes()
    verify = sh("systemd-analyze", "verify", str(UNIT), check=False)
    assert (verify.returncode, verify.stdout, verify.stderr) == (0, "", "")
    # --threshold is in tenths in systemd 252: 30 means an exposure of 3.0.
    security = sh(
        "systemd-analyze", "security", "--offline=yes", "--threshold=30", str(UNIT), check=False
    )
    found = re.search(r"Overall exposure level for in\.mpathd\.service: (\d+\.\d)", security.stdout)
    assert found is not None, security.stdout + security.stderr
    assert float(found[1]) <= EXPOSURE_LIMIT
    assert security.returncode == 0


def test_installed_daemon_fails_over_on_the_simulated_host(package: Path, tmp_path: Path) -> None:
    env = {"IPMP_ROOT": str(tmp_path)}
    log = (tmp_path / "in.mpathd.log").open("wb")
    daemon = subprocess.Popen(
        [
            "in.mpathd",
            "-d",
            "--sim",
            "/usr/share/doc/ipmp/examples/active-active.toml",
            "--root",
            str(tmp_path),
        ],
        stdout=log,
        stderr=log,
        env={**CLEAN_ENV, **env},
    )
    log.close()
    try:
        wait_for(
            lambda: sh("ipmpstat", "-i", env=env, check=False).returncode == 0,
            30,
            "the installed in.mpathd answers ipmpstat",
        )

        def inbound() -> dict[str, str]:
            out = sh("ipmpstat", "-an", "-P", "-o", "ADDRESS,INBOUND", env=env).stdout
            return dict(line.split(":", 1) for line in out.splitlines())

        assert inbound()["192.168.85.19"] == "hme0"
        sh("ipmp", "sim", "link", "hme0", "down", env=env)
        wait_for(lambda: inbound()["192.168.85.19"] == "hme1", 10, "192.168.85.19 on hme1")
        refused = sh("if_mpadm", "-d", "hme1", env=env, check=False)
        assert (refused.returncode, refused.stderr.strip()) == (1, SOLARIS_MESSAGES[0])
        sh("ipmp", "sim", "link", "hme0", "up", env=env)
        wait_for(lambda: inbound()["192.168.85.19"] == "hme0", 60, "failback to hme0")
        assert sh("if_mpadm", "-d", "hme1", env=env).returncode == 0
        assert inbound()["192.168.85.20"] == "hme0"
        assert sh("if_mpadm", "-r", "hme1", env=env).returncode == 0
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=10)
    assert daemon.returncode == 0
    assert (
        "Successfully failed over from NIC hme0 to NIC hme1"
        in (tmp_path / "in.mpathd.log").read_text()
    )
    demo = sh("ipmp", "demo")
    assert "Successfully failed back to NIC hme0" in demo.stdout


def test_remove_leaves_only_the_conffile_and_purge_nothing(package: Path) -> None:
    sh("dpkg", "-r", "ipmp")
    for command, directory in COMMANDS.items():
        assert not os.path.lexists(f"{directory}/{command}")
    assert not Path("/opt/ipmp").exists()  # no compiled caches left behind either
    assert not UNIT.exists()
    assert not any(Path("/usr/share/man/man8").glob("if_mpadm.8*"))
    assert Path("/etc/default/mpathd").exists()  # dpkg -r keeps conffiles, as Debian does
    # What a stopped daemon leaves: its crash state in /run/ipmp (kept across
    # stops by the unit) and an older version's state in /var/lib/ipmp.
    made = [d for d in (Path("/run/ipmp"), Path("/var/lib/ipmp")) if not d.exists()]
    for directory in made:
        directory.mkdir(parents=True)
        (directory / "state.json").write_text("{}")
    sh("dpkg", "--purge", "ipmp")
    assert not Path("/etc/default/mpathd").exists()
    for directory in made:
        assert not directory.exists(), f"purge left {directory}"
    assert not _installed()
