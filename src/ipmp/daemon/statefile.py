"""Atomic state files: write to a temporary file, fsync, rename, fsync the directory.

A reader therefore sees the old file or the new one, never a torn one, even
after SIGKILL or a power cut in the middle of a write.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

from ipmp.core.errors import IpmpError
from ipmp.daemon.safedirs import create_exclusive, ensure_dirs
from ipmp.rootfs import read_capped

STATE_FILE_MODE = 0o600


def write_json(path: Path, data: Any, durable: bool = True) -> None:
    """Replace ``path`` with ``data`` as JSON, atomically (and durably unless told not to).

    The temporary file is created with ``O_EXCL | O_NOFOLLOW``, mode 0600
    whatever the umask: a name planted there (a symbolic link to a file of
    root's) is removed, never written through; the rename then replaces
    ``path`` itself, a link there included, never its target.  A failed
    write leaves no temporary file.  Raises ``OSError``.
    """
    ensure_dirs(path.parent)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = create_exclusive(tmp, STATE_FILE_MODE)
    except FileExistsError:
        os.unlink(tmp)  # left by a dead process of this PID, or planted
        fd = create_exclusive(tmp, STATE_FILE_MODE)
    try:
        try:
            view = memoryview(text.encode())
            while view:
                view = view[os.write(fd, view) :]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


MAX_STATE_BYTES = 64 << 20
"""The largest state file read (64 MiB; 1000 NICs of 10 addresses take about 3 MiB)."""

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def move_aside(path: Path, suffix: str, what: str) -> str:
    """Rename ``path`` to ``<name><suffix>`` (kept for the administrator, never deleted).

    Returns the one line that says so: ``PATH: WHAT; moved aside to NAME``.
    """
    aside = path.with_name(path.name + suffix)
    try:
        os.replace(path, aside)
    except OSError as exc:
        return f"{path}: {what}; cannot move it aside to {aside.name}: {exc.strerror or exc}"
    return f"{path}: {what}; moved aside to {aside.name}"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None when there is no file.

    Never blocks and never reads without bound: the file is opened without
    following a symbolic link and without blocking, and must be a regular
    file of at most ``MAX_STATE_BYTES``.  A file that is none of that, not
    UTF-8, not JSON (a torn write, a NaN) or nested too deeply is moved aside
    to ``<name>.corrupt`` (kept for the administrator); either way
    ``IpmpError`` says in one line what was wrong.  A file that exists but
    cannot be read (permissions, out of descriptors) is left where it is.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise IpmpError(move_aside(path, ".corrupt", "a symbolic link")) from None
        raise IpmpError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        for test, kind in _KINDS:
            if test(mode):
                raise IpmpError(move_aside(path, ".corrupt", f"not a regular file but {kind}"))
        data = read_capped(fd, MAX_STATE_BYTES)
    except OSError as exc:
        raise IpmpError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_STATE_BYTES:
        raise IpmpError(move_aside(path, ".corrupt", f"larger than {MAX_STATE_BYTES} bytes"))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        what = f"not UTF-8 (byte 0x{data[err.start]:02x} at offset {err.start})"
        raise IpmpError(move_aside(path, ".corrupt", what)) from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise IpmpError(move_aside(path, ".corrupt", "JSON nested too deeply")) from None
    except ValueError as err:
        what = f"not valid JSON ({' '.join(str(err).split())})"
        raise IpmpError(move_aside(path, ".corrupt", what)) from None


BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")
PROC_STAT = Path("/proc/stat")


def boot_id() -> str:
    """This boot's random ID (Linux), or "" where it cannot be read."""
    try:
        return BOOT_ID_PATH.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


def boot_time() -> float | None:
    """When this host booted (``btime`` of /proc/stat, seconds since the epoch), if known."""
    try:
        text = PROC_STAT.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "btime" and value.strip().isdigit():
            return float(value.strip())
    return None


def written_this_boot(path: Path) -> bool:
    """Whether ``path`` was written after this host booted (True if the boot time is unknown)."""
    booted = boot_time()
    return booted is None or path.stat().st_mtime >= booted


def read_this_boot(path: Path, boot: str) -> tuple[Any | None, str | None]:
    """The JSON in ``path`` if it was written during this boot, else None and why.

    The daemon records the boot ID in what it writes; a file without one (or
    when the boot ID is unknown) is judged by its modification time against
    the boot time.  A file of an earlier boot is moved aside to
    ``<name>.stale``: what it describes died with that boot's kernel.  A file
    that is not valid JSON raises ``IpmpError`` (see ``read_json``).
    """
    data = read_json(path)
    if data is None:
        return None, None
    recorded = data.get("boot_id") if isinstance(data, dict) else None
    if isinstance(recorded, str) and recorded and boot:
        if recorded == boot:
            return data, None
        why = f"boot ID {recorded}, now {boot}"
    elif written_this_boot(path):
        return data, None
    else:
        why = "older than the boot"
    return None, move_aside(path, ".stale", f"written before this boot ({why})")
