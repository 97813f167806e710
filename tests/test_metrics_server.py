"""The metrics port is open to strangers: it must cap them and never wait on them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

import ipmp.daemon.metrics as metrics
from ipmp.daemon.daemon import Daemon, DaemonOptions
from ipmp.daemon.metrics import EngineMetrics, is_loopback, listen

EXAMPLES = Path(__file__).resolve().parent.parent / "src" / "ipmp" / "examples"


async def _closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server ended the connection (closed or reset) without an answer."""
    try:
        return await asyncio.wait_for(reader.read(), 3) == b""
    except ConnectionResetError:
        return True


async def _scrape(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")
    body = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return body


def test_trickling_scrapers_are_capped_and_cut_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "MAX_SCRAPERS", 4)
    daemon = Daemon(DaemonOptions(root=tmp_path, sim=EXAMPLES / "active-active.toml"))

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        daemon._loop = loop
        daemon._start_engine(loop.time())
        monkeypatch.setattr(metrics, "HEAD_DEADLINE", 60.0)
        (server,) = await EngineMetrics(daemon.engine).serve(listen("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
        for _, writer in held:
            writer.write(b"GET /metr")  # and never more: a trickler
        await asyncio.sleep(0)  # let the server take them
        # Past the cap a connection is closed at once, while the four still wait.
        for _ in range(2):
            reader, _ = await asyncio.open_connection("127.0.0.1", port)
            assert await _closed(reader)
        for reader, _ in held:
            assert not reader.at_eof()
        for _, writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
        # Whoever sends no whole head within HEAD_DEADLINE is cut off.
        monkeypatch.setattr(metrics, "HEAD_DEADLINE", 0.2)
        (server,) = await EngineMetrics(daemon.engine).serve(listen("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.0\r\n")
        assert await _closed(reader)
        assert b"ipmp_failovers_total" in await _scrape(port)
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())


def test_a_head_without_end_is_refused_when_too_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = Daemon(DaemonOptions(root=tmp_path, sim=EXAMPLES / "active-active.toml"))

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        daemon._loop = loop
        daemon._start_engine(loop.time())
        (server,) = await EngineMetrics(daemon.engine).serve(listen("127.0.0.1", 0))
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /metrics HTTP/1.0\r\n" + b"X-Pad: y\r\n" * 2000)
        assert await _closed(reader)  # no answer, cut off
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("127.8.9.1") and is_loopback("::1")
    assert is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.0.2.1")
    assert not is_loopback("example")


def test_metrics_without_prometheus_client_say_what_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['prometheus_client'] = None\n"
        "from ipmp.daemon.main import main\n"
        f"raise SystemExit(main(['-d', '--sim', {str(EXAMPLES / 'active-active.toml')!r}, "
        f"'--root', {str(tmp_path)!r}, '--metrics', '127.0.0.1:9']))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr == f"in.mpathd: {metrics.MISSING}\n"
    assert "pip install 'ipmp[metrics]'" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_retired_target_takes_its_rtt_series_with_it(tmp_path: Path) -> None:
    daemon = Daemon(DaemonOptions(root=tmp_path, sim=EXAMPLES / "active-active.toml"))
    loop = asyncio.new_event_loop()
    try:
        daemon._loop = loop
        daemon._start_engine(loop.time())
        exporter = EngineMetrics(daemon.engine)
        inst = next(i for i in daemon.engine.probes.values() if i.targets)
        real = inst.targets[0].address
        record = {"interface": inst.nic, "family": inst.family, "rtt_ms": 0.5}
        exporter.observe([{**record, "target": real}, {**record, "target": "192.0.2.99"}])
        text = exporter.exposition().decode()
        assert f'target="{real}"' in text
        assert 'target="192.0.2.99"' not in text  # not a target (any more): no series
    finally:
        loop.close()
