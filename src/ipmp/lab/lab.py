"""A real IPMP lab: network namespaces built from a simulator topology.

Layout for prefix ``P`` (default ``ipmp-`` and six random hex digits)::

    P-host   the IPMP host: one veth per [[nic]] (the topology's name and MAC),
             lo up, nothing else configured (the daemon does the rest)
    P-sw     the switch: one Linux bridge ``br<k>`` per [[link]]; the host NIC
             ``eth0`` (interface index i in the topology) is cabled to port
             ``h<i>``, neighbour number j to port ``n<j>``
    P-n<j>   neighbour j (routers and hosts, in file order, from 1): ``eth0``
             with its IPv4 address (/24) and its IPv6 link-local address

Faults act where they would on a real network:

* ``cable NAME down|up``: the switch port goes down, so the NIC (or the
  neighbour) loses carrier: IFF_RUNNING and IFF_LOWER_UP clear on the host.
* ``drop NAME on|off``: an nftables ``bridge`` rule in the switch drops every
  frame from and to the port; the carrier stays up.
* ``loss NAME PERCENT``: nftables ``numgen random`` drops at the port, in both
  directions, so that PERCENT % of request/reply exchanges are lost (each
  direction drops 1 - sqrt(1 - PERCENT/100) of the frames, ARP and ND
  included, as on a bad cable).
* ``target NAME down|up``: the neighbour goes silent (nftables drops all its
  IP and ARP traffic, in and out) and comes back.
* ``delete IF`` / ``create IF``: the host NIC's veth pair disappears (as a
  NIC removed by dynamic reconfiguration) or is made again with the same
  name, MAC, MTU and switch port; NICs with ``present = false`` are not
  created at ``up`` and can be created later.

Neighbours: routers get ``ip_forward`` (and IPv6 forwarding) in their own
namespace; every neighbour sets ``icmp_echo_ignore_broadcasts=0`` so that it
answers the all-hosts ping (224.0.0.1) in.mpathd uses to discover targets
(Linux ignores it by default); ``answers_multicast = false`` drops those
echo requests instead; ``loss`` drops that fraction of the echo requests it
receives.  ``rtt_ms`` and ``jitter_ms`` are ignored: ``tc netem`` is not
available on the lab kernel.  Each neighbour also has on-link routes to the
other documentation networks, so it can answer a host address from any of
them.  The topology's [[route]]s are checked but not installed: boot routes
are the host stack's business, not the lab's.

Every namespace is recorded in the state file before it is created (see
``ipmp.lab.state``), and ``teardown`` removes the recorded namespaces, any
other namespace named ``P`` or ``P-...``, the processes the lab started
(checked by PID and start time) and the run directory, so it also cleans up
after a crash and can be run any number of times.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ipmp.core.errors import IpmpError
from ipmp.lab import commands
from ipmp.lab.checks import ALLOWED_V4, ALLOWED_V6, check_topology
from ipmp.lab.ping import PingResult
from ipmp.lab.state import (
    STATE_NAME,
    LabState,
    ProcessRecord,
    check_prefix,
    find_lab,
    read_state,
    registry_dir,
    write_state,
)
from ipmp.sim.topology import NeighbourSpec, NicSpec, Topology, parse_topology, write_etc

NFT_TABLE = "ipmplab"
"""The name of every nftables table the lab makes (one per family and namespace)."""

NUMGEN_MOD = 1_000_000
"""Resolution of the random-loss rules: ``numgen random mod 1000000 < N``."""

DAEMON_NAME = "in.mpathd"
DAEMON_SETTLE = 1.0
"""Seconds ``start_daemon`` watches the new daemon for an immediate exit."""

NEIGHBOUR_IF = "eth0"


def new_prefix() -> str:
    """A fresh lab prefix: ``ipmp-`` and six random hex digits."""
    return f"ipmp-{secrets.token_hex(3)}"


def mac_text(mac: str) -> str:
    """A MAC as ``ip`` prints it: ``8:0:20:b9:19:fa`` -> ``08:00:20:b9:19:fa``."""
    return ":".join(f"{int(part, 16):02x}" for part in mac.split(":"))


@dataclass(frozen=True)
class NeighbourPlan:
    """Where one neighbour lives: its namespace, switch port and bridge."""

    spec: NeighbourSpec
    number: int
    link: str
    netns: str
    port: str
    bridge: str


@dataclass(frozen=True)
class NicPlan:
    """Where one host NIC is cabled: its switch port and bridge ("" for none)."""

    spec: NicSpec
    port: str
    bridge: str


@dataclass
class DownReport:
    """What ``teardown`` did, and what it had to leave alone."""

    prefix: str
    namespaces: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def nothing(self) -> bool:
        return not (self.namespaces or self.stopped or self.removed)


@dataclass
class ProcessStatus:
    record: ProcessRecord
    alive: bool


@dataclass
class LabStatus:
    """One lab as ``ipmp lab status`` shows it."""

    prefix: str
    run_dir: str
    topology: str
    complete: bool
    namespaces: dict[str, bool]
    nics: dict[str, bool]
    processes: list[ProcessStatus]
    faults: list[str]


class Lab:
    """A lab that exists (or existed): its topology, its names and its state.

    Build one with ``Lab.up``, reach an existing one with ``Lab.open``.
    """

    def __init__(self, topology: Topology, state: LabState) -> None:
        check_topology(topology)
        self.topology = topology
        self.state = state
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self.nics: dict[str, NicPlan] = {}
        self.neighbours: dict[str, NeighbourPlan] = {}
        bridges = {link.name: f"br{k}" for k, link in enumerate(topology.links)}
        for nic in topology.nics:
            self.nics[nic.name] = NicPlan(nic, f"h{nic.index}", bridges.get(nic.link, ""))
        number = 0
        for link in topology.links:
            for neighbour in link.neighbours:
                number += 1
                self.neighbours[neighbour.name] = NeighbourPlan(
                    spec=neighbour,
                    number=number,
                    link=link.name,
                    netns=f"{self.prefix}-n{number}",
                    port=f"n{number}",
                    bridge=bridges[link.name],
                )

    # ------------------------------------------------------------------ names

    @property
    def prefix(self) -> str:
        return self.state.prefix

    @property
    def run_dir(self) -> Path:
        return Path(self.state.run_dir)

    @property
    def root(self) -> Path:
        """The configuration root the daemon is started with (``etc/`` lives here)."""
        return self.run_dir / "root"

    @property
    def host_ns(self) -> str:
        return f"{self.prefix}-host"

    @property
    def switch_ns(self) -> str:
        return f"{self.prefix}-sw"

    def planned_namespaces(self) -> list[str]:
        """Every namespace the lab makes, switch first."""
        return [self.switch_ns, self.host_ns, *(n.netns for n in self.neighbours.values())]

    def neighbour_ns(self, name: str) -> str:
        """The namespace of neighbour ``name``."""
        return self._neighbour(name).netns

    def switch_port(self, name: str) -> str:
        """The switch-side interface of a host NIC or a neighbour."""
        if name in self.nics:
            return self.nics[name].port
        if name in self.neighbours:
            return self.neighbours[name].port
        raise IpmpError(f"{name}: no such NIC or neighbour in the lab; {self._names()}")

    def _names(self) -> str:
        nics = ", ".join(self.nics) or "none"
        neighbours = ", ".join(self.neighbours) or "none"
        return f"NICs: {nics}; neighbours: {neighbours}"

    def _nic(self, name: str) -> NicPlan:
        try:
            return self.nics[name]
        except KeyError:
            raise IpmpError(f"{name}: no such host NIC in the lab; {self._names()}") from None

    def _neighbour(self, name: str) -> NeighbourPlan:
        try:
            return self.neighbours[name]
        except KeyError:
            raise IpmpError(f"{name}: no such neighbour in the lab; {self._names()}") from None

    # ----------------------------------------------------------- construction

    @classmethod
    def up(
        cls,
        topology: Topology,
        *,
        prefix: str | None = None,
        run_dir: Path | None = None,
        registry: Path | None = None,
        nics_up: bool = False,
        topology_text: str | None = None,
    ) -> Lab:
        """Build the lab; on any failure remove whatever was made, then raise.

        ``nics_up`` also sets the host NICs administratively up (by default
        they are left down, unconfigured, as on a freshly booted host).
        ``topology_text`` is the TOML the topology was parsed from (recorded
        in the state file); by default it is read again from ``topology.source``.

        Raises:
            IpmpError: the topology is refused, the prefix is in use, or a
                command failed.
        """
        check_topology(topology)
        prefix = check_prefix(prefix or new_prefix())
        base = registry or registry_dir()
        entry = base / prefix
        if entry.exists() or entry.is_symlink():
            raise IpmpError(
                f"lab prefix {prefix} is in use ({entry} exists); "
                f"remove it with: ipmp lab down --prefix {prefix}"
            )
        taken = [n for n in commands.list_netns() if _owned(n, prefix)]
        if taken:
            raise IpmpError(
                f"lab prefix {prefix} is in use by namespace {taken[0]}; "
                f"remove it with: ipmp lab down --prefix {prefix}"
            )
        text = topology_text if topology_text is not None else _topology_text(topology)
        directory = (run_dir or entry).absolute()
        _prepare_run_dir(directory)
        state = LabState(
            prefix=prefix,
            run_dir=str(directory),
            topology_source=topology.source,
            topology_text=text,
            nics_up=nics_up,
        )
        try:
            if directory != entry.absolute():
                # A run dir elsewhere is found through the registry.
                entry.parent.mkdir(parents=True, exist_ok=True)
                entry.symlink_to(directory)
                state.registry_link = str(entry)
            write_state(state)
            lab = cls(topology, state)
            lab._build()
        except BaseException:
            # A half-built lab is worse than none: remove what the state names.
            with contextlib.suppress(Exception):
                teardown(prefix, registry=base, run_dir=directory)
            raise
        return lab

    @classmethod
    def open(cls, prefix: str | None = None, *, registry: Path | None = None) -> Lab:
        """The lab called ``prefix`` (or the only one recorded).

        Raises:
            IpmpError: no such lab, several labs and no prefix, or a bad state file.
        """
        name, directory = find_lab(prefix, registry)
        state = read_state(directory / STATE_NAME)
        if state.prefix != name:
            raise IpmpError(f"{directory / STATE_NAME}: records lab {state.prefix}, not {name}")
        topology = parse_topology(state.topology_text, state.topology_source)
        return cls(topology, state)

    def _build(self) -> None:
        for netns in self.planned_namespaces():
            self.state.namespaces.append(netns)
            write_state(self.state)  # recorded before it exists: down finds it after a crash
            commands.run(["ip", "netns", "add", netns])
        sw = self.switch_ns
        # The switch is layer 2 only: without IPv6 its bridges would answer ff02::1.
        commands.write_sysctls(
            sw, {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}
        )
        commands.ip(sw, "link", "set", "lo", "up")
        for k, _link in enumerate(self.topology.links):
            bridge = f"br{k}"
            # No snooping: 224.0.0.1 and ff02::1 must reach every port.
            commands.ip(sw, "link", "add", bridge, "type", "bridge", "mcast_snooping", "0")
            commands.ip(sw, "link", "set", bridge, "up")
        commands.ip(self.host_ns, "link", "set", "lo", "up")
        for plan in self.nics.values():
            if plan.spec.present:
                self._make_nic(plan)
        for neighbour in self.neighbours.values():
            self._make_neighbour(neighbour)
        self.state.complete = True
        write_state(self.state)

    def _make_nic(self, plan: NicPlan) -> None:
        nic = plan.spec
        sw = self.switch_ns
        mtu = str(nic.mtu)
        commands.ip(
            sw,
            "link", "add", plan.port, "mtu", mtu, "type", "veth",
            "peer", "name", nic.name, "address", mac_text(nic.mac), "mtu", mtu,
            "netns", self.host_ns,
        )  # fmt: skip
        if plan.bridge:
            commands.ip(sw, "link", "set", plan.port, "master", plan.bridge)
        if self.state.port(nic.name).cable_up:
            commands.ip(sw, "link", "set", plan.port, "up")
        if self.state.nics_up:
            commands.ip(self.host_ns, "link", "set", nic.name, "up")

    def _make_neighbour(self, plan: NeighbourPlan) -> None:
        spec = plan.spec
        sw, ns = self.switch_ns, plan.netns
        commands.ip(
            sw, "link", "add", plan.port, "type", "veth", "peer", "name", NEIGHBOUR_IF, "netns", ns
        )
        commands.ip(sw, "link", "set", plan.port, "master", plan.bridge)
        commands.ip(sw, "link", "set", plan.port, "up")
        commands.ip(ns, "link", "set", "lo", "up")
        conf6 = f"net.ipv6.conf.{NEIGHBOUR_IF}"
        sysctls = {
            # Linux ignores echo requests to 224.0.0.1 by default; in.mpathd
            # discovers its targets with exactly those (linux-peers 6.4).
            "net.ipv4.icmp_echo_ignore_broadcasts": "0",
            f"{conf6}.keep_addr_on_down": "1",
        }
        if spec.role == "router":
            sysctls["net.ipv4.ip_forward"] = "1"
            sysctls["net.ipv6.conf.all.forwarding"] = "1"
        if not spec.address6:
            sysctls[f"{conf6}.disable_ipv6"] = "1"
        commands.write_sysctls(ns, sysctls)
        if spec.address6:
            # Only the topology's link-local address, never an EUI-64 one.
            commands.ip(ns, "link", "set", NEIGHBOUR_IF, "addrgenmode", "none")
        if spec.address:
            commands.ip(ns, "addr", "add", f"{spec.address}/24", "dev", NEIGHBOUR_IF)
        if spec.address6:
            commands.ip(ns, "addr", "add", f"{spec.address6}/64", "dev", NEIGHBOUR_IF, "nodad")
        commands.ip(ns, "link", "set", NEIGHBOUR_IF, "up")
        if spec.address:
            own = ipaddress.IPv4Address(spec.address)
            for network in ALLOWED_V4:
                if own not in network:
                    commands.ip(ns, "route", "add", str(network), "dev", NEIGHBOUR_IF)
        if spec.address6:
            for network6 in ALLOWED_V6:
                commands.ip(ns, "-6", "route", "add", str(network6), "dev", NEIGHBOUR_IF)
        self._apply_neighbour_rules(plan)

    # ------------------------------------------------------------------ rules

    def _apply_switch_rules(self) -> None:
        rules: list[str] = []
        for name, port_state in sorted(self.state.ports.items()):
            if name not in self.nics and name not in self.neighbours:
                continue
            port = self.switch_port(name)
            for direction in ("iifname", "oifname"):
                if port_state.drop or port_state.loss >= 100:
                    rules.append(f'{direction} "{port}" drop')
                elif port_state.loss > 0:
                    rules.append(
                        f'{direction} "{port}" numgen random mod {NUMGEN_MOD} '
                        f"< {_per_direction(port_state.loss)} drop"
                    )
        script = _reset_script("bridge")
        if rules:
            script += _table("bridge", {"forward": ("accept", rules)})
        commands.nft_load(self.switch_ns, script)

    def _apply_neighbour_rules(self, plan: NeighbourPlan) -> None:
        spec = plan.spec
        down = spec.name in self.state.targets_down
        rules: list[str] = []
        if not spec.answers_multicast:
            rules.append("meta pkttype { broadcast, multicast } icmp type echo-request drop")
            rules.append("meta pkttype multicast icmpv6 type echo-request drop")
        if spec.loss >= 1.0:
            rules += ["icmp type echo-request drop", "icmpv6 type echo-request drop"]
        elif spec.loss > 0:
            threshold = round(spec.loss * NUMGEN_MOD)
            for proto in ("icmp", "icmpv6"):
                rules.append(
                    f"{proto} type echo-request numgen random mod {NUMGEN_MOD} < {threshold} drop"
                )
        script = _reset_script("inet") + _reset_script("arp")
        policy = "drop" if down else "accept"
        if rules or down:
            script += _table("inet", {"input": (policy, rules), "output": (policy, [])})
        if down:
            script += _table("arp", {"input": ("drop", []), "output": ("drop", [])})
        commands.nft_load(plan.netns, script)

    # ------------------------------------------------------------------ faults

    @contextlib.contextmanager
    def _change(self) -> Iterator[None]:
        """Hold the lab's lock, start from the state on disk, write it back after."""
        lock = self.run_dir / ".lock"
        with open(lock, "a", encoding="utf-8") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                if self.state.path.exists():
                    fresh = read_state(self.state.path)
                    self.state.ports = fresh.ports
                    self.state.targets_down = fresh.targets_down
                    self.state.processes = fresh.processes
                yield
                write_state(self.state)
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def set_cable(self, name: str, up: bool) -> None:
        """Plug (``up``) or pull the cable of a host NIC or a neighbour, at the switch."""
        port = self.switch_port(name)
        with self._change():
            self.state.port(name).cable_up = up
            if commands.link_exists(self.switch_ns, port):
                commands.ip(self.switch_ns, "link", "set", port, "up" if up else "down")

    def set_admin(self, name: str, up: bool) -> None:
        """``ip link set NAME up|down`` on host NIC ``name``: the administrative state."""
        self._nic(name)
        commands.ip(self.host_ns, "link", "set", name, "up" if up else "down")

    def set_dormant(self, name: str, on: bool) -> None:
        """Make host NIC ``name`` dormant (operstate DORMANT, carrier still up), or not.

        As an 802.1X supplicant does: link mode dormant and IFLA_OPERSTATE set
        from user space (iproute2 has no command for the operstate; pyroute2
        sends it).  Off: operstate UP, then link mode default again.
        """
        self._nic(name)
        if on:
            commands.ip(self.host_ns, "link", "set", name, "mode", "dormant")
        code = (
            "import sys; from pyroute2 import IPRoute; ipr = IPRoute(); "
            "ipr.link('set', index=ipr.link_lookup(ifname=sys.argv[1])[0], "
            "IFLA_OPERSTATE=sys.argv[2]); ipr.close()"
        )
        state = "DORMANT" if on else "UP"
        commands.run(commands.in_netns(self.host_ns, [sys.executable, "-c", code, name, state]))
        if not on:
            commands.ip(self.host_ns, "link", "set", name, "mode", "default")

    def set_drop(self, name: str, on: bool) -> None:
        """Make the switch port of ``name`` drop every frame silently (carrier stays up)."""
        self.switch_port(name)
        with self._change():
            self.state.port(name).drop = on
            self._apply_switch_rules()

    def set_loss(self, name: str, percent: float) -> None:
        """Lose ``percent`` % of the exchanges through the switch port of ``name`` (0 ends it)."""
        self.switch_port(name)
        if not (0.0 <= percent <= 100.0) or math.isnan(percent):
            raise IpmpError(f"{name}: loss must be a percentage from 0 to 100, got {percent!r}")
        with self._change():
            self.state.port(name).loss = percent
            self._apply_switch_rules()

    def set_target(self, name: str, up: bool) -> None:
        """Make neighbour ``name`` silent (``up`` false) or answer again."""
        plan = self._neighbour(name)
        with self._change():
            downs = [n for n in self.state.targets_down if n != name]
            self.state.targets_down = downs if up else [*downs, name]
            self._apply_neighbour_rules(plan)

    def delete_nic(self, name: str) -> None:
        """Remove host NIC ``name`` (its veth pair, switch port included).

        Raises:
            IpmpError: ``name`` is not a host NIC or is not present.
        """
        plan = self._nic(name)
        with self._change():
            if commands.link_exists(self.switch_ns, plan.port):
                commands.ip(self.switch_ns, "link", "del", plan.port)
            elif commands.link_exists(self.host_ns, name):
                commands.ip(self.host_ns, "link", "del", name)
            else:
                raise IpmpError(f"{name}: not present in {self.host_ns}")

    def create_nic(self, name: str) -> None:
        """Make host NIC ``name`` again: same name, MAC, MTU and switch port.

        The port keeps its faults (a pulled cable stays pulled).

        Raises:
            IpmpError: ``name`` is not a host NIC of the topology or already exists.
        """
        plan = self._nic(name)
        with self._change():
            if commands.link_exists(self.host_ns, name):
                raise IpmpError(f"{name}: already present in {self.host_ns}")
            if commands.link_exists(self.switch_ns, plan.port):
                commands.ip(self.switch_ns, "link", "del", plan.port)
            self._make_nic(plan)

    def fault(self, words: Sequence[str]) -> str:
        """Apply a fault given as words (``["cable", "eth0", "down"]``); return what was done.

        Raises:
            IpmpError: an unknown verb or bad arguments (one line, with usage).
        """
        verb, args = (words[0], list(words[1:])) if words else ("", [])
        try:
            if verb == "cable" and len(args) == 2 and args[1] in ("up", "down"):
                self.set_cable(args[0], args[1] == "up")
                return f"{args[0]}: cable {'plugged' if args[1] == 'up' else 'pulled'}"
            if verb == "drop" and len(args) == 2 and args[1] in ("on", "off"):
                self.set_drop(args[0], args[1] == "on")
                return f"{args[0]}: switch port {'drops' if args[1] == 'on' else 'forwards'}"
            if verb == "loss" and len(args) == 2:
                percent = float(args[1].rstrip("%"))
                self.set_loss(args[0], percent)
                return f"{args[0]}: {percent:g}% loss at the switch port"
            if verb == "target" and len(args) == 2 and args[1] in ("up", "down"):
                self.set_target(args[0], args[1] == "up")
                return f"{args[0]}: {'answering' if args[1] == 'up' else 'silent'}"
            if verb == "delete" and len(args) == 1:
                self.delete_nic(args[0])
                return f"{args[0]}: deleted"
            if verb == "create" and len(args) == 1:
                self.create_nic(args[0])
                return f"{args[0]}: created"
        except ValueError:
            pass
        raise IpmpError(f"ipmp lab fault {' '.join(words)}: expected {FAULT_USAGE}")

    # ------------------------------------------------------------ host access

    def exec(self, argv: Sequence[str]) -> int:
        """Run ``argv`` in the host namespace with our stdin/stdout; its exit status."""
        if not argv:
            raise IpmpError("ipmp lab exec: expected a command")
        # IPMP_ROOT points the clients (ipmpstat, ipmp ifconfig) at the lab's daemon.
        env = {**os.environ, "IPMP_ROOT": str(self.root)}
        try:
            return subprocess.run(
                commands.in_netns(self.host_ns, argv), check=False, env=env
            ).returncode
        except FileNotFoundError:
            raise IpmpError("ip: command not found (the lab needs iproute2)") from None

    def run(self, argv: Sequence[str], timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` in the host namespace and capture its output (no check)."""
        return commands.run(commands.in_netns(self.host_ns, argv), check=False, timeout=timeout)

    def host_link(self, ifname: str) -> dict[str, Any] | None:
        """``ip -j link show`` of a host interface, or None if it does not exist."""
        result = commands.ip(self.host_ns, "-j", "link", "show", "dev", ifname, check=False)
        if result.returncode != 0:
            return None
        links = json.loads(result.stdout)
        return dict(links[0]) if links else None

    def ping(
        self,
        destination: str,
        *,
        ifname: str | None = None,
        source: str | None = None,
        count: int = 3,
        interval: float = 0.2,
        wait: float = 1.0,
        netns: str | None = None,
    ) -> PingResult:
        """Ping from the host namespace (or ``netns``) with ``ipmp.lab.ping``.

        Raises:
            IpmpError: the pinger could not run (bad address, no such interface...).
        """
        argv = [sys.executable, "-m", "ipmp.lab.ping", "--json", "-c", str(count)]
        argv += ["-i", str(interval), "-W", str(wait)]
        if ifname:
            argv += ["-I", ifname]
        if source:
            argv += ["-S", source]
        argv.append(destination)
        timeout = count * interval + wait + 30.0
        result = commands.run(
            commands.in_netns(netns or self.host_ns, argv), check=False, timeout=timeout
        )
        if result.returncode not in (0, 1):
            raise IpmpError(" ".join(result.stderr.split()) or f"ping {destination} failed")
        data = json.loads(result.stdout)
        return PingResult(
            destination=str(data["destination"]),
            sent=int(data["sent"]),
            received=int(data["received"]),
            responders={str(k): int(v) for k, v in data["responders"].items()},
        )

    # -------------------------------------------------------------- processes

    def start_process(self, name: str, argv: Sequence[str], log_name: str) -> int:
        """Start ``argv`` in the host namespace, logging to the run dir; record and return its PID.

        ``down`` kills it (only it: the record holds its PID and start time).
        """
        log_path = self.run_dir / log_name
        with self._change():
            with open(log_path, "ab") as log:
                try:
                    child = subprocess.Popen(
                        commands.in_netns(self.host_ns, argv),
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        close_fds=True,
                    )
                except OSError as exc:
                    raise IpmpError(f"{name}: cannot start: {exc.strerror or exc}") from exc
            self._children[child.pid] = child
            start = _start_time(child.pid)
            record = ProcessRecord(
                name=name,
                pid=child.pid,
                start_time=start if start is not None else -1,
                argv=list(argv),
                log=str(log_path),
            )
            self.state.processes.append(record)
        return child.pid

    def start_daemon(self, extra_args: Sequence[str] = ()) -> int:
        """Write the topology's ``/etc`` files under the lab root and start in.mpathd.

        The daemon runs as ``python -m ipmp.daemon.main -d --root ROOT --linux``
        inside the host namespace, logging to ``in.mpathd.log`` in the run dir.

        Raises:
            IpmpError: a daemon is already running, or it exited at once (the
                message quotes the last line of its log).
        """
        for status in self.processes():
            if status.record.name == DAEMON_NAME and status.alive:
                raise IpmpError(f"{DAEMON_NAME} is already running as pid {status.record.pid}")
        write_etc(self.topology, self.root)
        argv = [sys.executable, "-m", "ipmp.daemon.main", "-d", "--root", str(self.root)]
        argv += ["--linux", *extra_args]
        pid = self.start_process(DAEMON_NAME, argv, f"{DAEMON_NAME}.log")
        child = self._children[pid]
        deadline = time.monotonic() + DAEMON_SETTLE
        while time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.05)
        if child.returncode is None:
            return pid
        with self._change():
            self.state.processes = [p for p in self.state.processes if p.pid != pid]
        log = self.run_dir / f"{DAEMON_NAME}.log"
        lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        last = lines[-1].strip() if lines else "no output"
        raise IpmpError(
            f"{DAEMON_NAME} exited at once with status {child.returncode}: {last} (log: {log})"
        )

    def processes(self) -> list[ProcessStatus]:
        """The recorded processes and whether each still runs."""
        return [ProcessStatus(r, _alive(r)) for r in self.state.processes]

    def stop_process(self, pid: int, sig: signal.Signals = signal.SIGTERM) -> bool:
        """Send ``sig`` to one process the lab started, wait until it is gone, forget it.

        Only a recorded process whose start time still matches gets the signal;
        one that does not stop within a few seconds is killed.  Returns whether
        the process was running.

        Raises:
            IpmpError: ``pid`` is not a process the lab started.
        """
        with self._change():
            records = [r for r in self.state.processes if r.pid == pid]
            if not records:
                raise IpmpError(f"pid {pid}: not a process this lab started")
            record = records[0]
            running = _alive(record)
            if running:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
                if not _wait_gone(record, 5.0):
                    _stop(record)
            self.state.processes = [r for r in self.state.processes if r.pid != pid]
        child = self._children.pop(pid, None)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                child.wait(timeout=1)
        return running

    def stop_processes(self) -> list[str]:
        """Stop every process the lab started; return ``name (pid N)`` for each."""
        with self._change():
            stopped = [_stop(record) for record in self.state.processes]
            self.state.processes = []
        for child in self._children.values():
            with contextlib.suppress(OSError):
                child.wait(timeout=0)
        self._children.clear()
        return [s for s in stopped if s]

    # ------------------------------------------------------------------ status

    def status(self) -> LabStatus:
        """What exists now, which processes run and which faults are set."""
        existing = set(commands.list_netns())
        namespaces = {n: n in existing for n in self.planned_namespaces()}
        nics = {
            name: namespaces[self.host_ns] and commands.link_exists(self.host_ns, name)
            for name in self.nics
        }
        faults: list[str] = []
        for name, port in sorted(self.state.ports.items()):
            if not port.cable_up:
                faults.append(f"{name}: cable pulled")
            if port.drop:
                faults.append(f"{name}: switch port drops")
            if port.loss > 0:
                faults.append(f"{name}: {port.loss:g}% loss")
        faults += [f"{name}: target silent" for name in self.state.targets_down]
        return LabStatus(
            prefix=self.prefix,
            run_dir=str(self.run_dir),
            topology=self.state.topology_source,
            complete=self.state.complete,
            namespaces=namespaces,
            nics=nics,
            processes=self.processes(),
            faults=faults,
        )

    def down(self, registry: Path | None = None) -> DownReport:
        """Remove the lab (see ``teardown``)."""
        for child in self._children.values():
            if child.poll() is None:
                with contextlib.suppress(OSError):
                    child.terminate()
        report = teardown(self.prefix, registry=registry, run_dir=self.run_dir)
        for child in self._children.values():
            with contextlib.suppress(subprocess.TimeoutExpired, OSError):
                child.wait(timeout=5)
        self._children.clear()
        return report


FAULT_USAGE = (
    "cable NAME up|down, drop NAME on|off, loss NAME PERCENT, target NEIGHBOUR up|down, "
    "delete NIC or create NIC"
)


# ---------------------------------------------------------------------------
# Teardown: works from the state file alone, or from the prefix alone.


def teardown(
    prefix: str, *, registry: Path | None = None, run_dir: Path | None = None
) -> DownReport:
    """Remove everything lab ``prefix`` made; safe to repeat, also after a crash.

    Stops the recorded processes (only if PID and start time still match),
    deletes the recorded namespaces and every namespace named ``prefix`` or
    ``prefix-...``, then removes the run directory and the registry entry.
    """
    check_prefix(prefix)
    base = registry or registry_dir()
    entry = base / prefix
    report = DownReport(prefix)
    directory = run_dir or (entry.resolve() if entry.is_symlink() else entry)
    state: LabState | None = None
    if (directory / STATE_NAME).exists():
        try:
            state = read_state(directory / STATE_NAME)
        except IpmpError as err:
            report.warnings.append(err.message)
        if state is not None and state.prefix != prefix:
            report.warnings.append(f"{directory}: records lab {state.prefix}; left alone")
            state = None
            directory = entry
    if state is not None:
        for record in state.processes:
            stopped = _stop(record)
            if stopped:
                report.stopped.append(stopped)
    recorded = state.namespaces if state is not None else []
    candidates = list(dict.fromkeys([*recorded, *commands.list_netns()]))
    for netns in candidates:
        if not _owned(netns, prefix) and netns not in recorded:
            continue
        if not commands.netns_exists(netns):
            continue
        left = commands.netns_pids(netns)
        if left:
            report.warnings.append(
                f"{netns}: processes the lab did not start still run there "
                f"(pids {' '.join(map(str, left))}); the namespace lives on until they exit"
            )
        result = commands.run(["ip", "netns", "del", netns], check=False)
        if result.returncode == 0:
            report.namespaces.append(netns)
        elif commands.netns_exists(netns):
            report.warnings.append(f"{netns}: {' '.join(result.stderr.split())}")
    ours = state is not None or directory == entry
    if ours and directory.is_dir() and not directory.is_symlink():
        shutil.rmtree(directory, ignore_errors=True)
        if not directory.exists():
            report.removed.append(str(directory))
        else:
            report.warnings.append(f"{directory}: could not be removed")
    if entry.is_symlink():
        entry.unlink()
        report.removed.append(str(entry))
    return report


def _owned(netns: str, prefix: str) -> bool:
    return netns == prefix or netns.startswith(prefix + "-")


# ---------------------------------------------------------------------------
# Helpers


def _prepare_run_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if any(directory.iterdir()):
            raise IpmpError(f"{directory}: the run directory must be new or empty")
    except OSError as exc:
        raise IpmpError(f"{directory}: cannot create: {exc.strerror or exc}") from exc


def _topology_text(topology: Topology) -> str:
    try:
        return Path(topology.source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise IpmpError(
            f"{topology.source}: cannot read the topology again to record it: {exc}"
        ) from exc


def _per_direction(percent: float) -> int:
    """``numgen`` threshold so that both directions together lose ``percent`` %."""
    each = 1.0 - math.sqrt(1.0 - percent / 100.0)
    return max(1, round(each * NUMGEN_MOD))


def _reset_script(family: str) -> str:
    # "add" then "delete" works whether or not the table exists: one transaction.
    return f"table {family} {NFT_TABLE} {{}}\ndelete table {family} {NFT_TABLE}\n"


def _table(family: str, chains: dict[str, tuple[str, list[str]]]) -> str:
    lines = [f"table {family} {NFT_TABLE} {{"]
    for hook, (policy, rules) in chains.items():
        lines.append(f"  chain {hook} {{")
        lines.append(f"    type filter hook {hook} priority 0; policy {policy};")
        lines += [f"    {rule}" for rule in rules]
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """``(state, start time)`` of process ``pid`` from /proc, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    # After "pid (comm) ": state is field 3, starttime field 22 of the whole line.
    return fields[0], int(fields[19])


def _start_time(pid: int) -> int | None:
    stat = _proc_stat(pid)
    return stat[1] if stat is not None else None


def _alive(record: ProcessRecord) -> bool:
    stat = _proc_stat(record.pid)
    if stat is None or stat[0] in ("Z", "X"):
        return False
    return record.start_time < 0 or stat[1] == record.start_time


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _wait_gone(record: ProcessRecord, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while True:
        _reap(record.pid)
        if not _alive(record):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)


def _stop(record: ProcessRecord) -> str:
    """Terminate (then kill) a recorded process if it is still the one we started."""
    if not _alive(record):
        _reap(record.pid)
        return ""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 2.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, sig)
        if _wait_gone(record, grace):
            break
    return f"{record.name} (pid {record.pid})"
