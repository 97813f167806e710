"""Prometheus metrics for ``in.mpathd --metrics ADDR:PORT``.

Everything is read from the engine when a scrape arrives, inside the daemon's
event loop: no thread ever looks at the engine while it changes.  Only the RTT
histogram is fed as probes settle.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ipmp.core.errors import IpmpError
from ipmp.core.status import snapshot

if TYPE_CHECKING:
    from ipmp.core.engine import Engine

try:
    from prometheus_client import CollectorRegistry, Histogram, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
except ImportError:  # depends on the installation: see MISSING
    PROMETHEUS = False
else:
    PROMETHEUS = True

MISSING = (
    "--metrics needs the Python package prometheus_client, which is not installed: "
    "pip install 'ipmp[metrics]' (or: pipx inject ipmp prometheus_client)"
)
"""What to say when ``--metrics`` is asked for without the package it needs."""

RTT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
STATES = ("ok", "degraded", "failed", "offline", "unknown")
MAX_SCRAPERS = 16
"""Metrics connections served at once; more are closed at once."""
HEAD_DEADLINE = 5.0
"""Seconds a scraper has for its whole request head, and to take the answer."""
MAX_HEAD = 8192
"""Bytes of request line and headers read at most."""


def listen(host: str, port: int) -> list[socket.socket]:
    """Bind and listen on ``host:port`` now, one socket per address it names.

    ``main`` calls this before the daemon touches the kernel or its state, so
    that a port already in use stops the start with one line and no change.

    Raises:
        IpmpError: prometheus_client is missing, the name does not resolve, or
            an address cannot be bound (``--metrics 127.0.0.1:9105: Address
            already in use``).
    """
    if not PROMETHEUS:
        raise IpmpError(MISSING)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise IpmpError(f"--metrics {host}:{port}: {err.strerror}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(100)
            sock.setblocking(False)
    except OSError as err:
        for sock in sockets:
            sock.close()
        raise IpmpError(f"--metrics {host}:{port}: {err.strerror or err}") from None
    return sockets


class EngineMetrics:
    """A registry whose collector reads the engine, plus the RTT histogram."""

    def __init__(self, engine: Engine) -> None:
        if not PROMETHEUS:
            raise IpmpError(MISSING)
        self.engine = engine
        self.registry = CollectorRegistry()
        self.registry.register(_Collector(engine))
        self.rtt = Histogram(
            "ipmp_probe_rtt_seconds",
            "Round-trip time of answered probes",
            ["interface", "family", "target"],
            buckets=RTT_BUCKETS,
            registry=self.registry,
        )
        self._rtt_series: set[tuple[str, str, str]] = set()

    def observe(self, records: list[dict[str, Any]]) -> None:
        """Feed settled probe records (``Engine.drain_probe_records``)."""
        for record in records:
            if record["rtt_ms"] is not None:
                labels = (record["interface"], record["family"], record["target"])
                self._rtt_series.add(labels)
                self.rtt.labels(*labels).observe(record["rtt_ms"] / 1000.0)

    def exposition(self) -> bytes:
        """The scrape's text; a target no longer probed takes its RTT series with it."""
        current = {
            (name, family, target.address)
            for (name, family), inst in self.engine.probes.items()
            for target in inst.targets
        }
        for labels in self._rtt_series - current:
            self.rtt.remove(*labels)
        self._rtt_series &= current
        return bytes(generate_latest(self.registry))

    async def serve(self, sockets: Sequence[socket.socket]) -> list[asyncio.Server]:
        """A minimal HTTP/1.0 responder for GET /metrics on ``sockets`` (see ``listen``).

        Whoever can reach the port is a stranger: at most ``MAX_SCRAPERS``
        connections at once (more are closed at once, so 3,000 trickling
        clients cannot take the daemon's file descriptors), the whole request
        head within ``HEAD_DEADLINE`` seconds and ``MAX_HEAD`` bytes.
        """
        open_now: set[asyncio.StreamWriter] = set()

        async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if len(open_now) >= MAX_SCRAPERS:
                writer.transport.abort()
                return
            open_now.add(writer)
            try:
                request = await asyncio.wait_for(_read_head(reader), HEAD_DEADLINE)
                parts = request.decode("latin-1").split()
                if len(parts) >= 2 and parts[0] == "GET" and parts[1] in ("/", "/metrics"):
                    body = self.exposition()
                    head = "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                else:
                    body = b"not found\n"
                    head = "HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n"
                writer.write(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
                await asyncio.wait_for(writer.drain(), HEAD_DEADLINE)
            except (TimeoutError, ConnectionError, UnicodeDecodeError, ValueError):
                writer.transport.abort()
            finally:
                open_now.discard(writer)
                writer.close()

        return [await asyncio.start_server(respond, sock=sock, limit=MAX_HEAD) for sock in sockets]


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    """The request line; the header lines after it are read and dropped (at most MAX_HEAD)."""
    request = await reader.readline()
    taken = len(request)
    while True:
        line = await reader.readline()
        taken += len(line)
        if taken > MAX_HEAD:
            raise ValueError("request head too long")
        if line in (b"\r\n", b"\n", b""):
            return request


def is_loopback(host: str) -> bool:
    """True for an address only this host can reach (127.0.0.0/8, ::1, "localhost")."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Collector:
    """Reads the engine at each scrape (a prometheus_client custom collector)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        engine = self.engine
        sent = CounterMetricFamily(
            "ipmp_probes_sent", "Probes sent", labels=["interface", "family", "target"]
        )
        lost = CounterMetricFamily(
            "ipmp_probes_lost", "Probes lost", labels=["interface", "family", "target"]
        )
        for (name, family), inst in sorted(engine.probes.items()):
            for target in inst.targets:
                sent.add_metric([name, family, target.address], target.sent)
                lost.add_metric([name, family, target.address], target.lost)
        yield sent
        yield lost
        snap = snapshot(engine)
        iface = GaugeMetricFamily(
            "ipmp_interface_state",
            "1 for the interface's current state (ok, failed, offline, unknown)",
            labels=["interface", "group", "state"],
        )
        active = GaugeMetricFamily(
            "ipmp_interface_active", "1 if the interface carries data", labels=["interface"]
        )
        for row in snap["interfaces"]:
            for state in ("ok", "failed", "offline", "unknown"):
                iface.add_metric([row["interface"], row["group"], state], row["state"] == state)
            active.add_metric([row["interface"]], 1.0 if row["active"] else 0.0)
        yield iface
        yield active
        group = GaugeMetricFamily(
            "ipmp_group_state", "1 for the group's current state", labels=["group", "state"]
        )
        fdt = GaugeMetricFamily(
            "ipmp_group_fdt_seconds", "The group's failure detection time", labels=["group"]
        )
        for row in snap["groups"]:
            for state in ("ok", "degraded", "failed"):
                group.add_metric([row["group"], state], row["state"] == state)
            if row["fdt_ms"] is not None:
                fdt.add_metric([row["group"]], row["fdt_ms"] / 1000.0)
        yield group
        yield fdt
        for key, help_text in (
            ("failovers", "Failovers carried out"),
            ("failbacks", "Failbacks carried out"),
            ("group_failures", "Group failures declared"),
        ):
            counter = CounterMetricFamily(f"ipmp_{key}", help_text)
            counter.add_metric([], engine.counters[key])
            yield counter
