"""Directories and files the daemon, running as root, can trust.

``in.mpathd`` writes its lock, state, simulated kernel and socket under a root
(``--root``, default ``/``).  If another user could rename a directory on the
way there or plant a name in it, a write of root's would go where that user
points (a symbolic link to ``/etc/shadow``).  So, before it touches anything,
the daemon refuses a root whose path is not safe (``check_root``); it creates
directories with mode 0755 and files with ``O_EXCL | O_NOFOLLOW`` and explicit
modes, whatever the umask.

The rule, for the daemon's effective uid (0 as a service):

- every directory on the way to the root and the root itself is owned by root
  or by the daemon's uid, and is writable by group or others only if it has
  the sticky bit (as ``/tmp``: nobody else can rename or remove what is in it);
- a symbolic link on the way is owned by root or the daemon's uid;
- ``run/``, ``etc/`` and ``var/`` under the root follow the same rule, and the
  directories the daemon creates files in (``run/ipmp``, ``etc/default``,
  ``etc/inet``, ``var/lib/ipmp``) must not be writable by group or others
  at all, sticky or not.

Directories that do not exist yet are fine: the daemon creates them, 0755.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ipmp.core.errors import IpmpError

DIR_MODE = 0o755
INTERMEDIATE = ("run", "etc", "var", "var/lib")
"""Under the root: may be shared like /tmp (sticky) but must be owned by root."""
PRIVATE = ("run/ipmp", "etc/default", "etc/inet", "var/lib/ipmp")
"""Under the root: the daemon creates files here; nobody else may write in them."""


def _trusted(uid: int) -> bool:
    return uid in (0, os.geteuid())


def _stat(path: Path, follow: bool) -> os.stat_result | None:
    """``stat`` or ``lstat`` of ``path``; None if it does not exist."""
    try:
        return os.stat(path, follow_symlinks=follow)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise IpmpError(f"{path}: cannot check it: {exc.strerror or exc}") from None


def _check_dir(path: Path, private: bool) -> None:
    info = _stat(path, follow=True)
    if info is None:
        return
    if not stat.S_ISDIR(info.st_mode):
        raise IpmpError(f"{path}: not a directory: refusing to use this root")
    mode = stat.S_IMODE(info.st_mode)
    if not _trusted(info.st_uid):
        raise IpmpError(
            f"{path}: owned by uid {info.st_uid}, not by root: refusing to use this root"
        )
    shared = mode & (stat.S_IWGRP | stat.S_IWOTH)
    if shared and (private or not mode & stat.S_ISVTX):
        who = (
            "group and others"
            if mode & 0o022 == 0o022
            else ("its group" if mode & stat.S_IWGRP else "others")
        )
        raise IpmpError(f"{path}: writable by {who} (mode {mode:04o}): refusing to use this root")


def check_root(root: Path) -> None:
    """Refuse (``IpmpError``, one line) a root that another user could redirect.

    Checks the path as given and as resolved, every ancestor included, then
    the directories under it that the daemon writes in (see the module's rule).
    """
    given = Path(os.path.abspath(root))
    chain = [given, *given.parents]
    for part in chain:
        link = _stat(part, follow=False)
        if link is not None and stat.S_ISLNK(link.st_mode) and not _trusted(link.st_uid):
            raise IpmpError(
                f"{part}: a symbolic link owned by uid {link.st_uid}, not by root: "
                "refusing to use this root"
            )
    resolved = Path(os.path.realpath(given))
    seen: set[Path] = set()
    for part in [*chain, resolved, *resolved.parents]:
        if part not in seen:
            seen.add(part)
            _check_dir(part, private=False)
    for name in INTERMEDIATE:
        _check_dir(resolved / name, private=False)
    for name in PRIVATE:
        _check_dir(resolved / name, private=True)


def ensure_dirs(directory: Path) -> None:
    """Create ``directory`` and its missing parents, mode 0755 whatever the umask.

    Raises ``OSError``.  The mode is set through a descriptor opened without
    following a link, so a name swapped in meanwhile is not chmod'ed.
    """
    missing: list[Path] = []
    current = directory
    while not os.path.lexists(current):
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for path in reversed(missing):
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            continue
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fchmod(fd, DIR_MODE)
        finally:
            os.close(fd)


def make_dirs(directory: Path) -> None:
    """``ensure_dirs``, with ``IpmpError`` (one line naming the directory) on failure."""
    try:
        ensure_dirs(directory)
    except OSError as exc:
        raise IpmpError(
            f"cannot create {exc.filename or directory}: {exc.strerror or exc}"
        ) from None


def create_exclusive(path: Path, mode: int) -> int:
    """A new file at ``path`` opened for writing, ``mode`` whatever the umask.

    ``O_CREAT | O_EXCL | O_NOFOLLOW``: an existing name (a planted file or
    symbolic link) is never opened, let alone followed.  Raises ``OSError``
    (``FileExistsError`` if the name is taken).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)
    except OSError:
        os.close(fd)
        raise
    return fd
