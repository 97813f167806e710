"""One ``in.mpathd`` per root: a lock taken before anything else.

A second daemon on the same root would adopt the first one's state and then
undo its work (delete a test address, move a data address) before noticing
the other.  ``main`` therefore takes an exclusive ``flock`` on
``<root>/run/ipmp/in.mpathd.lock`` before it opens a netlink socket, reads a
sysctl, a configuration or state file, or touches the control socket.  The
lock is held for the life of the process (the kernel drops it when the
process dies, SIGKILL included), so a stale file never blocks a start; the
holder's PID is written in the file for the refusal message.  The file is
never removed: removing a lock file races with a starting daemon that has
just opened it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
from pathlib import Path

from ipmp.core.errors import IpmpError
from ipmp.daemon.safedirs import make_dirs

LOCK_NAME = "in.mpathd.lock"
LOCK_MODE = 0o644


def lock_path(root: Path) -> Path:
    """Where the daemon for ``root`` holds its lock: ``<root>/run/ipmp/in.mpathd.lock``."""
    return root / "run" / "ipmp" / LOCK_NAME


def take_instance_lock(root: Path) -> int:
    """Lock ``root`` for this process; return the descriptor, to be kept open until exit.

    Raises:
        IpmpError: another process holds the lock (the message names its PID
            when the file says it), or the lock file cannot be opened.
    """
    path = lock_path(root)
    make_dirs(path.parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, LOCK_MODE)
    except OSError as exc:
        raise IpmpError(f"cannot open the lock file {path}: {exc.strerror or exc}") from None
    # Not a link (O_NOFOLLOW), and not a hard link or device either: the PID
    # is written into it, which must not land in a file of someone else's.
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_uid not in (0, os.geteuid()):
        os.close(fd)
        raise IpmpError(
            f"the lock file {path} is not a regular file of root's with one link: "
            "refusing to use it"
        )
    os.fchmod(fd, LOCK_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(fd)
        os.close(fd)
        pid = f" (pid {holder})" if holder else ""
        raise IpmpError(f"another in.mpathd{pid} is running on this root ({root})") from None
    except OSError as exc:
        os.close(fd)
        raise IpmpError(f"cannot lock {path}: {exc.strerror or exc}") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def _holder(fd: int) -> str:
    """The PID the holder wrote, or "" (it may not have written it yet)."""
    with contextlib.suppress(OSError):
        text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
        if text.isdigit():
            return text
    return ""
