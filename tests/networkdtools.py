"""The real systemd-networkd beside in.mpathd, inside a lab's host namespace (root only).

networkd runs in the lab's host network namespace and in a mount namespace of
its own (``unshare -m``, private propagation), where

* ``/run`` is a fresh tmpfs, so ``/run/systemd`` (its state files,
  ``netif/links/<ifindex>``) is networkd's alone;
* ``/run/udev/data/n<ifindex>`` exists for every lab NIC, as udev leaves it on
  a real host once it has processed a link.  networkd 252 treats a writable
  ``/sys`` as "udev runs" and waits for that entry ("link pending udev
  initialization"); with it, it configures a link only after it has
  enumerated the addresses and routes already there, as on a real host.
  (With a read-only ``/sys``, its container mode, it configures each link
  before it has seen those, and so never drops foreign addresses at start:
  that would hide exactly what this test must see.)
* ``/etc/systemd/network`` and ``/etc/systemd/networkd.conf`` are the test's
  own files, bind-mounted over the machine's.

None of these mounts is seen outside networkd's mount namespace: the
machine's ``/etc/systemd``, ``/run`` and ``/sys`` are never written.  networkd
needs no D-Bus (it logs that it waits for the bus and goes on), runs as root
and drops to the ``systemd-network`` user (Debian's ``systemd`` package makes
it).  ``SYSTEMD_LOG_LEVEL=debug`` logs every address and route it touches to
``systemd-networkd.log`` in the lab's run dir.  The lab records the process, so
``lab.down`` ends it by PID even when a test fails; the mount namespace goes
with the process.
"""

from __future__ import annotations

import datetime
import pwd
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from ipmp.lab.lab import Lab

NETWORKD = Path("/lib/systemd/systemd-networkd")
NAME = "systemd-networkd"

# $1 is the configuration directory, $2 the lab NICs' interface indexes, the
# rest the command to exec, so that the PID the lab records is networkd's own
# (ip netns exec, env, unshare and sh all exec).
MOUNTS = """set -e
conf=$1; links=$2; shift 2
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/systemd /run/udev/data
for index in $links; do : > /run/udev/data/n$index; done
mount --bind "$conf/network" /etc/systemd/network
mount --bind "$conf/networkd.conf" /etc/systemd/networkd.conf
exec "$@"
"""


def missing() -> str:
    """Why networkd cannot run here ("" when it can)."""
    if not NETWORKD.exists():
        return f"{NETWORKD} is missing (Debian package systemd)"
    for mountpoint in (Path("/etc/systemd/network"), Path("/etc/systemd/networkd.conf")):
        if not mountpoint.exists():
            return f"{mountpoint} is missing: nothing to bind-mount the test's own over"
    if shutil.which("unshare") is None:
        return "unshare is missing (util-linux)"
    return ""


def version() -> str:
    """``systemd 252 (252.38-1~deb12u1)``: the first line of ``--version``."""
    out = subprocess.run([str(NETWORKD), "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0] if out else "unknown"


class Networkd:
    """One systemd-networkd with its own configuration, in a lab's host namespace."""

    def __init__(self, lab: Lab, networks: Mapping[str, str], conf: str) -> None:
        self.lab = lab
        self.conf_dir = lab.run_dir / "networkd"
        (self.conf_dir / "network").mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "networkd.conf").write_text(conf)
        for name, text in networks.items():
            (self.conf_dir / "network" / name).write_text(text)
        self.pid = 0

    @property
    def log_path(self) -> Path:
        return self.lab.run_dir / f"{NAME}.log"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> int:
        """Start networkd (debug log in the run dir); its PID."""
        argv = ["env", "SYSTEMD_LOG_LEVEL=debug", "unshare", "-m", "--propagation", "private"]
        links = [self.lab.host_link(name) for name in self.lab.nics]
        indexes = " ".join(str(link["ifindex"]) for link in links if link is not None)
        argv += ["sh", "-c", MOUNTS, "networkd-mounts", str(self.conf_dir), indexes, str(NETWORKD)]
        self.pid = self.lab.start_process(NAME, argv, f"{NAME}.log")
        return self.pid

    def kill(self) -> None:
        """SIGKILL networkd (a crash: no chance to tidy up) and wait until it is gone."""
        if self.pid:
            self.lab.stop_process(self.pid, signal.SIGKILL)
            self.pid = 0

    def link_state(self, ifname: str) -> dict[str, str]:
        """networkd's state file for ``ifname`` (``ADMIN_STATE``, ``OPER_STATE``...).

        Read through ``/proc/PID/root``: the file lives on networkd's private tmpfs.
        """
        link = self.lab.host_link(ifname)
        if link is None or not self.pid:
            return {}
        path = Path(f"/proc/{self.pid}/root/run/systemd/netif/links/{link['ifindex']}")
        try:
            text = path.read_text()
        except OSError:
            return {}
        pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
        return {key: value for key, value in pairs}

    def configured(self, *ifnames: str) -> bool:
        """networkd has finished configuring every one of ``ifnames``."""
        return all(self.link_state(n).get("ADMIN_STATE") == "configured" for n in ifnames)

    def user(self) -> str:
        """The user networkd runs as (``systemd-network`` once it dropped root)."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return ""
        uid = next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
        return pwd.getpwuid(int(uid)).pw_name


PROBE_ADDRESS = "203.0.113.254/32"
"""Added to and deleted from ``lo`` once, to see that the monitor has subscribed."""


class AddressEvents:
    """``ip -ts monitor address`` in the lab's host namespace, from before anyone writes.

    The kernel's own timestamps tell how long an address had two holders,
    however short: a sampling loop misses a copy that lives a few ms.
    """

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.path = lab.run_dir / "ip-monitor-address.log"
        self.pid = lab.start_process(
            "ip monitor", ["ip", "-ts", "monitor", "address"], self.path.name
        )
        # The monitor subscribes some time after it starts: wait for an event of our own.
        deadline = time.monotonic() + 10
        while PROBE_ADDRESS not in self.text():
            if time.monotonic() > deadline:
                raise AssertionError("ip monitor address shows no event after 10 s")
            for verb in ("add", "del"):
                lab.run(["ip", "addr", verb, PROBE_ADDRESS, "dev", "lo"])
            time.sleep(0.05)

    def text(self) -> str:
        return self.path.read_text(errors="replace") if self.path.exists() else ""

    def copies(self, address: str) -> list[tuple[str, float | None]]:
        """Each time ``address`` had two holders: (NIC added second, seconds; None if it lasts)."""
        holders: set[str] = set()
        since: tuple[str, datetime.datetime] | None = None
        found: list[tuple[str, float | None]] = []
        pattern = re.compile(
            rf"^\[(?P<ts>[^\]]+)\]\s*(?P<deleted>Deleted )?\d+: (?P<dev>\S+)\s+inet6? "
            rf"{re.escape(address)}/"
        )
        for line in self.text().splitlines():
            event = pattern.match(line)
            if event is None:
                continue
            stamp = datetime.datetime.fromisoformat(event["ts"].replace(",", "."))
            dev = event["dev"]
            if event["deleted"]:
                holders.discard(dev)
            else:
                holders.add(dev)
            if len(holders) > 1 and since is None:
                since = (dev, stamp)
            elif len(holders) <= 1 and since is not None:
                found.append((since[0], (stamp - since[1]).total_seconds()))
                since = None
        if since is not None:
            found.append((since[0], None))
        return found
