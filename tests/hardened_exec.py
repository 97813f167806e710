"""Run a command under the hardened unit's restrictions, by hand (no systemd as PID 1).

    unshare --mount --propagation private python3 hardened_exec.py \\
        --caps CAP_NET_ADMIN,CAP_NET_RAW --rw DIR ... --tunables-rw /proc/sys/net -- CMD ...

What systemd does for in.mpathd.service, with the same kernel mechanisms:

- ProtectSystem=strict: every mount is made read-only except /proc, /sys and /dev;
- ReadWritePaths= (and RuntimeDirectory=/StateDirectory=): each ``--rw`` path is
  bound onto itself and made writable again;
- ProtectKernelTunables=yes with ReadWritePaths=/proc/sys/net: /proc/sys is
  read-only, ``--tunables-rw`` paths under it are writable again;
- CapabilityBoundingSet= and NoNewPrivileges=: setpriv limits the bounding set
  (a root process then gets only those capabilities at exec), clears the
  inheritable set and sets no_new_privs.

RestrictAddressFamilies= and SystemCallFilter= are seccomp filters that
setpriv cannot set; they are checked by systemd-analyze only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

API_FILESYSTEMS = ("/proc", "/sys", "/dev")


def _mounts() -> list[str]:
    points = []
    with open("/proc/self/mountinfo", encoding="utf-8") as info:
        for line in info:
            point = line.split()[4].encode().decode("unicode_escape")
            points.append(point)
    return points


def _under(path: str, tops: tuple[str, ...]) -> bool:
    return any(path == top or path.startswith(top + "/") for top in tops)


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


def _writable_again(path: str) -> None:
    _mount("--bind", path, path)
    _mount("-o", "remount,bind,rw", path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--caps", required=True)
    parser.add_argument("--rw", action="append", default=[])
    parser.add_argument("--tunables-rw", action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    for path in args.rw:
        os.makedirs(path, exist_ok=True)
    # ProtectSystem=strict.
    for point in sorted(set(_mounts()), key=len):
        if not _under(point, API_FILESYSTEMS):
            _mount("-o", "remount,bind,ro", point)
    # ProtectKernelTunables=yes, then ReadWritePaths= below /proc/sys.
    _mount("--bind", "/proc/sys", "/proc/sys")
    _mount("-o", "remount,bind,ro", "/proc/sys")
    for path in args.tunables_rw:
        _writable_again(path)
    for path in args.rw:
        _writable_again(path)
    caps = ",".join("+" + cap.lower().removeprefix("cap_") for cap in args.caps.split(","))
    setpriv = [
        "setpriv",
        f"--bounding-set=-all,{caps}",
        "--inh-caps=-all",
        "--no-new-privs",
        "--",
    ]
    sys.stdout.flush()
    os.execvp("setpriv", setpriv + command)
    return 1  # pragma: no cover - execvp does not return


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
