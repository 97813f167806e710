"""Roots and directories other users own: refused before anything is touched; files
created with O_EXCL | O_NOFOLLOW and explicit modes, whatever the umask.

The ownership tests need root (to make a directory of uid 65534, ``nobody``).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemontools import started_in_process
from ipmp.daemon.control import Peer, Request
from ipmp.daemon.daemon import sim_world_path, state_path
from ipmp.daemon.instance import lock_path
from ipmp.daemon.safedirs import check_root

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "ipmp" / "examples"
TOPOLOGY = EXAMPLES / "active-active.toml"
NOBODY = 65534
ROOT_PEER = Peer(pid=1, uid=0, gid=0, privileged=True)
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to chown to nobody")


def start(root: Path) -> subprocess.CompletedProcess[str]:
    """``in.mpathd --sim`` on ``root``, expected to refuse at once."""
    argv = [sys.executable, "-m", "ipmp.daemon.main", "-d", "--sim", str(TOPOLOGY)]
    return subprocess.run(
        [*argv, "--root", str(root), "--seed", "1"],
        capture_output=True,
        text=True,
        timeout=30,
    )


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@as_root
def test_a_root_made_by_nobody_is_refused_before_anything_is_touched(tmp_path: Path) -> None:
    root = tmp_path / "x"
    root.mkdir()
    os.chmod(root, 0o777)
    os.chown(root, NOBODY, NOBODY)
    result = start(root)
    assert result.returncode == 1
    assert result.stderr == (
        f"in.mpathd: {root}: owned by uid {NOBODY}, not by root: refusing to use this root\n"
    )
    assert tree(root) == []


@as_root
@pytest.mark.parametrize(
    ("where", "mode", "owner", "message"),
    [
        ("", 0o777, 0, "writable by group and others (mode 0777)"),
        ("", 0o775, 0, "writable by its group (mode 0775)"),
        ("run/ipmp", 0o1777, 0, "writable by group and others (mode 1777)"),
        ("run/ipmp", 0o755, NOBODY, f"owned by uid {NOBODY}, not by root"),
        ("run", 0o755, NOBODY, f"owned by uid {NOBODY}, not by root"),
        ("etc", 0o757, 0, "writable by others (mode 0757)"),
    ],
)
def test_a_directory_others_can_write_in_is_refused(
    tmp_path: Path, where: str, mode: int, owner: int, message: str
) -> None:
    root = tmp_path / "r"
    target = root / where
    target.mkdir(parents=True)
    os.chmod(target, mode)
    os.chown(target, owner, owner)
    before = tree(root)
    result = start(root)
    assert result.returncode == 1
    assert result.stderr == f"in.mpathd: {target}: {message}: refusing to use this root\n"
    assert tree(root) == before


@as_root
def test_an_ancestor_of_nobodys_is_refused_and_a_sticky_one_is_fine(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    (theirs / "root").mkdir()
    with pytest.raises(Exception, match=f"{theirs}: owned by uid {NOBODY}"):
        check_root(theirs / "root")
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # as /tmp
    (shared / "root").mkdir(mode=0o755)
    check_root(shared / "root")
    check_root(Path("/"))
    link = shared / "link"
    link.symlink_to(shared / "root")
    os.lchown(link, NOBODY, NOBODY)
    with pytest.raises(Exception, match=f"{link}: a symbolic link owned by uid {NOBODY}"):
        check_root(link)


@pytest.fixture
def umask000() -> Iterator[None]:
    old = os.umask(0)
    yield
    os.umask(old)


in_process = started_in_process


def test_modes_do_not_depend_on_the_umask(tmp_path: Path, umask000: None) -> None:
    from ipmp.daemon.instance import take_instance_lock

    root = tmp_path / "r"
    fd = take_instance_lock(root)
    try:
        d = in_process(root)
        d.handle(
            Request(1, "ifconfig", {"argv": ["hme1", "addif", "192.168.85.60", "up"]}), ROOT_PEER
        )
    finally:
        os.close(fd)
    for directory in (root, root / "run", root / "run" / "ipmp", root / "etc"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o755, directory
    assert stat.S_IMODE(state_path(root).stat().st_mode) == 0o600
    assert stat.S_IMODE(sim_world_path(root).stat().st_mode) == 0o600
    assert stat.S_IMODE(lock_path(root).stat().st_mode) == 0o644
    assert stat.S_IMODE((root / "etc" / "hostname.hme0").stat().st_mode) == 0o644
    check_root(root)


def test_planted_links_are_never_followed(tmp_path: Path) -> None:
    root = tmp_path / "r"
    precious = tmp_path / "precious"  # a root-owned file outside the root
    precious.write_text("do not touch\n")
    run = root / "run" / "ipmp"
    run.mkdir(parents=True, mode=0o755)
    (root / "etc").mkdir(mode=0o755)
    planted = [
        run / f".state.json.{os.getpid()}.tmp",
        run / f".sim-world.json.{os.getpid()}.tmp",
        run / "state.json",
        root / "etc" / "hostname6.hme1",
    ]
    for link in planted:
        link.symlink_to(precious)
    d = in_process(root)
    d.handle(Request(1, "ifconfig", {"argv": ["hme1", "addif", "192.168.85.60", "up"]}), ROOT_PEER)
    assert precious.read_text() == "do not touch\n"
    assert not state_path(root).is_symlink() and state_path(root).is_file()
    assert state_path(root).with_name("state.json.corrupt").is_symlink()
    assert (root / "etc" / "hostname6.hme1").is_symlink()  # the administrator's, left alone
    assert not any(p.name.endswith(".tmp") for p in run.iterdir())


def test_a_lock_file_that_is_a_hard_link_is_refused(tmp_path: Path) -> None:
    from ipmp.core.errors import IpmpError
    from ipmp.daemon.instance import take_instance_lock

    root = tmp_path / "r"
    (root / "run" / "ipmp").mkdir(parents=True)
    precious = tmp_path / "precious"
    precious.write_text("do not touch\n")
    os.link(precious, lock_path(root))
    with pytest.raises(IpmpError, match="not a regular file of root's with one link"):
        take_instance_lock(root)
    assert precious.read_text() == "do not touch\n"
