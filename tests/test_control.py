"""The control socket: framing, errors, privilege, slow clients, limits, fuzzing."""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import grp
import json
import os
import socket
import stat
import struct
import tempfile
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import SimpleNamespace, TracebackType
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipmp.client import ControlClient
from ipmp.core.errors import IpmpError
from ipmp.daemon.control import (
    MAX_REQUEST,
    ControlServer,
    Handler,
    Peer,
    Request,
    Subscription,
    is_privileged,
    parse_request,
    peer_of,
    resolve_group,
    socket_path,
)

T = TypeVar("T")
NOBODY = 65534


class ServerThread:
    """A ControlServer running in its own event loop on a background thread."""

    def __init__(self, path: Path, handler: Handler, **options: Any) -> None:
        self.logs: list[str] = []
        options.setdefault("log", self.logs.append)
        self.loop = asyncio.new_event_loop()
        self.server = ControlServer(path, handler, **options)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        try:
            self.run(self.server.start())
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.run(self.server.close())
        finally:
            self._stop()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return self.submit(coro).result(timeout)

    def call(self, fn: Any, *args: Any) -> Any:
        async def wrapper() -> Any:
            return fn(*args)

        return self.run(wrapper())

    def _stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class TestHandler:
    """The daemon's side for the tests: a few ops with known outcomes."""

    __test__ = False

    def __init__(self, streams: bool = True) -> None:
        self.streams = streams
        self.peers: list[Peer] = []
        self.subscriptions: list[Subscription] = []
        self.offers: list[bool] = []
        self.closed = 0

    def __call__(self, request: Request, peer: Peer) -> Any:
        self.peers.append(peer)
        op, args = request.op, request.args
        if op == "ping":
            return {"pong": True, "args": args}
        if op == "whoami":
            return {"pid": peer.pid, "uid": peer.uid, "gid": peer.gid, "priv": peer.privileged}
        if op == "fail":
            raise IpmpError("fail: refused on purpose")
        if op == "crash":
            raise RuntimeError("boom")
        if op == "badresult":
            return {1, 2}
        if self.streams and op == "probes":
            sub = Subscription(maxsize=int(args.get("maxsize", 1024)), on_close=self._closed)
            self.subscriptions.append(sub)
            for n in range(int(args.get("burst", 0))):
                self.offers.append(sub.offer({"n": n}))
            if args.get("end"):
                sub.close()
            return sub
        raise IpmpError(f"unknown operation {op!r}")

    def _closed(self) -> None:
        self.closed += 1


@contextmanager
def connection(path: Path, timeout: float = 5.0) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(path))
        yield sock
    finally:
        sock.close()


def read_line(sock: socket.socket) -> bytes:
    """One line, byte by byte (so nothing after it is consumed); b'' at EOF."""
    data = bytearray()
    while not data.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            break
        data += chunk
    return bytes(data)


def read_reply(sock: socket.socket) -> dict[str, Any]:
    line = read_line(sock)
    assert line.endswith(b"\n"), line
    reply = json.loads(line)
    assert isinstance(reply, dict)
    return reply


def at_eof(sock: socket.socket) -> bool:
    try:
        return sock.recv(65536) == b""
    except ConnectionResetError:
        return True


def ping_line(request_id: Any = 1) -> bytes:
    return json.dumps({"v": 1, "id": request_id, "op": "ping"}).encode() + b"\n"


def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return socket_path(tmp_path)


# -- round trip, files ------------------------------------------------------


def test_ping_round_trip_and_files(tmp_path: Path, sock_path: Path) -> None:
    handler = TestHandler()
    with ServerThread(sock_path, handler) as srv:
        assert stat.S_IMODE(os.stat(sock_path).st_mode) == 0o660
        assert stat.S_IMODE(os.stat(sock_path.parent).st_mode) == 0o755
        assert stat.S_IMODE(os.stat(tmp_path / "run").st_mode) == 0o755
        client = ControlClient(sock_path)
        assert client.request("ping", x=[1, "a"]) == {"pong": True, "args": {"x": [1, "a"]}}
        me = client.request("whoami")
        assert me == {"pid": os.getpid(), "uid": 0, "gid": os.getgid(), "priv": True}
        with connection(sock_path) as sock:  # several requests on one connection, ids echoed
            sock.sendall(ping_line("a") + ping_line(7) + ping_line(None))
            assert [read_reply(sock)["id"] for _ in range(3)] == ["a", 7, None]
            reply = json.loads(ping_line(9)[:-1])
            reply["args"] = {"k": "\u00e9\ud800"}
            sock.sendall(json.dumps(reply).encode() + b"\n")
            assert read_reply(sock) == {
                "v": 1,
                "id": 9,
                "ok": True,
                "result": {"pong": True, "args": {"k": "\u00e9\ud800"}},
            }
        assert srv.logs == []
    assert not sock_path.exists()


def test_client_ids_increment(sock_path: Path) -> None:
    seen: list[Any] = []

    def handler(request: Request, peer: Peer) -> Any:
        seen.append(request.id)
        return None

    with ServerThread(sock_path, handler):
        client = ControlClient(sock_path)
        for _ in range(3):
            assert client.request("anything") is None
    assert seen == [1, 2, 3]


def test_last_line_without_newline_is_answered(sock_path: Path) -> None:
    with ServerThread(sock_path, TestHandler()), connection(sock_path) as sock:
        sock.sendall(ping_line(3)[:-1])
        sock.shutdown(socket.SHUT_WR)
        assert read_reply(sock)["id"] == 3
        assert at_eof(sock)


# -- malformed requests -----------------------------------------------------

MALFORMED = [
    (b"{not json", None, "not valid JSON"),
    (b"\xff\xfe{}", None, "not valid UTF-8"),
    (b"", None, "empty request"),
    (b"   ", None, "empty request"),
    (b"[1, 2]", None, "must be a JSON object, not an array"),
    (b'"ping"', None, "must be a JSON object, not a string"),
    (b"null", None, "must be a JSON object, not null"),
    (b'{"v": 1, "id": 7}', 7, 'missing "op"'),
    (b'{"v": 1, "id": 7, "op": 5}', 7, '"op" must be a string'),
    (b'{"v": 2, "id": "x", "op": "ping"}', "x", "unsupported protocol version 2"),
    (b'{"v": "1", "op": "ping"}', None, "unsupported protocol version '1'"),
    (b'{"v": true, "op": "ping"}', None, "unsupported protocol version True"),
    (b'{"id": 4, "op": "ping"}', 4, 'missing protocol version "v"'),
    (b'{"v": 1, "id": 5, "op": "ping", "args": [1]}', 5, '"args" must be a JSON object'),
    (b'{"v": 1, "id": 5, "op": "ping", "args": null}', 5, '"args" must be a JSON object'),
    (b'{"v": 1, "id": 1.5, "op": "ping"}', None, "id must be an integer, a string or null"),
    (b'{"v": 1, "id": true, "op": "ping"}', None, "id must be an integer, a string or null"),
    (b'{"v": 1, "id": 6, "op": "ping", "arg": {}}', 6, "unknown request field(s) 'arg'"),
    (b'{"v": 1, "op": "ping", "args": {"x": NaN}}', None, "NaN is not JSON"),
    (b"[" * 50000, None, "nested too deeply"),
    (b'{"v": 1, "op": "ping", "args": {"x": ' + b"9" * 5000 + b"}}", None, "not valid JSON"),
]


@pytest.mark.parametrize(("line", "request_id", "message"), MALFORMED)
def test_malformed_line_gets_error_and_connection_stays(
    sock_path: Path, line: bytes, request_id: Any, message: str
) -> None:
    handler = TestHandler()
    with ServerThread(sock_path, handler), connection(sock_path) as sock:
        sock.sendall(line + b"\n")
        reply = read_reply(sock)
        assert reply["ok"] is False and reply["v"] == 1
        assert reply["id"] == request_id
        assert message in reply["error"], reply["error"]
        assert "\n" not in reply["error"]
        sock.sendall(ping_line(2))
        assert read_reply(sock) == {
            "v": 1,
            "id": 2,
            "ok": True,
            "result": {"pong": True, "args": {}},
        }
    assert len(handler.peers) == 1  # only the ping reached the handler


def test_oversized_line_gets_error_then_close(sock_path: Path) -> None:
    with ServerThread(sock_path, TestHandler()) as srv:
        with connection(sock_path) as sock:
            exact = ping_line(1)[:-1]
            exact = exact[:-1] + b" " * (MAX_REQUEST - len(exact)) + b"}"
            assert len(exact) == MAX_REQUEST
            sock.sendall(exact + b"\n")
            assert read_reply(sock)["ok"] is True  # exactly 64 KiB is still allowed
            sock.sendall(b"x" * (MAX_REQUEST + 100) + b"\n" + ping_line(2))
            reply = read_reply(sock)
            assert reply["ok"] is False and reply["id"] is None
            assert "request too long (more than 65536 bytes)" in reply["error"]
            assert at_eof(sock)
        with connection(sock_path) as sock:  # no newline at all: still bounded
            with suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(b"y" * (4 * MAX_REQUEST))
            assert "too long" in read_reply(sock)["error"]
        assert ControlClient(sock_path).request("ping")["pong"] is True
        wait_until(lambda: srv.server.clients == 0)


# -- handler outcomes -------------------------------------------------------


def test_handler_errors_and_crashes_do_not_stop_the_server(sock_path: Path) -> None:
    with ServerThread(sock_path, TestHandler()) as srv:
        client = ControlClient(sock_path)
        with pytest.raises(IpmpError, match=r"^unknown operation 'frobnicate'$"):
            client.request("frobnicate")
        with pytest.raises(IpmpError, match=r"^fail: refused on purpose$"):
            client.request("fail")
        with pytest.raises(IpmpError, match=r"^internal error: RuntimeError$"):
            client.request("crash")
        with pytest.raises(IpmpError, match=r"^internal error: TypeError$"):
            client.request("badresult")
        assert client.request("ping") == {"pong": True, "args": {}}
        assert len(srv.logs) == 2
        assert "internal error in op 'crash': RuntimeError: boom" in srv.logs[0]
        assert "test_control.py" in srv.logs[0] and "\n" not in srv.logs[0]
        assert "TypeError" in srv.logs[1]


# -- privilege ----------------------------------------------------------------


def run_as_nobody(path: Path, line: bytes) -> dict[str, Any]:
    """Fork a child that drops to uid/gid 65534, sends ``line`` and returns the reply."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read_fd)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            with connection(path) as sock:
                sock.sendall(line)
                os.write(write_fd, read_line(sock))
            code = 0
        except BaseException as exc:
            os.write(write_fd, json.dumps({"child": repr(exc)}).encode())
        finally:
            os._exit(code)
    os.close(write_fd)
    data = b""
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, data
    reply = json.loads(data)
    assert isinstance(reply, dict)
    return reply


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory uid 65534 can traverse (pytest's tmp_path is 0700)."""
    with tempfile.TemporaryDirectory(prefix="ipmp-ctl-") as name:
        os.chmod(name, 0o755)
        yield Path(name)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change uid")
def test_unprivileged_peer_by_so_peercred(open_dir: Path) -> None:
    path = socket_path(open_dir)
    whoami = b'{"v": 1, "id": 1, "op": "whoami"}\n'
    with ServerThread(path, TestHandler(), mode=0o666):
        result = run_as_nobody(path, whoami)["result"]
        assert result["uid"] == NOBODY and result["gid"] == NOBODY
        assert result["pid"] > 0 and result["pid"] != os.getpid()
        assert result["priv"] is False
    try:
        group = grp.getgrgid(NOBODY).gr_name
    except KeyError:
        pytest.skip("no group with gid 65534")
    with ServerThread(path, TestHandler(), mode=0o660, group=group):
        assert os.stat(path).st_gid == NOBODY
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o660
        result = run_as_nobody(path, whoami)["result"]
        assert result["uid"] == NOBODY and result["priv"] is True
    # in.mpathd's 0666: the group would widen nothing, so the socket is not
    # chowned (the hardened unit allows no chown), yet the group is privileged.
    with ServerThread(path, TestHandler(), mode=0o666, group=group):
        assert os.stat(path).st_gid == os.getegid() != NOBODY
        result = run_as_nobody(path, whoami)["result"]
        assert result["uid"] == NOBODY and result["priv"] is True


def test_privilege_rule() -> None:
    assert is_privileged(0, (), None) and is_privileged(0, (99,), 500)
    assert not is_privileged(1000, (1000,), None)
    assert is_privileged(1001, (500,), 500)  # primary gid
    assert is_privileged(1000, (1000, 27, 500), 500)  # a supplementary group
    assert not is_privileged(1001, (1001, 27), 500)
    assert not is_privileged(-1, (500,), 500)  # credentials could not be read


def test_control_group_by_name_or_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(grp, "getgrnam", {"netadm": SimpleNamespace(gr_gid=500)}.__getitem__)
    assert resolve_group("netadm") == 500
    assert resolve_group("4242") == 4242  # numeric groups need no entry
    with pytest.raises(IpmpError, match="unknown group 'nosuch': expected a group name or"):
        resolve_group("nosuch")


def test_odd_numbers_are_not_gids() -> None:
    for text in ("²", "٣", str(2**32)):
        with pytest.raises(IpmpError, match="group"):
            resolve_group(text)


def test_a_peer_with_more_groups_than_getsockopt_takes_is_read_from_proc() -> None:
    """CPython's getsockopt takes 1024 bytes at most: ERANGE beyond 256 groups."""

    class ManyGroups:
        def getsockopt(self, level: int, option: int, size: int = 0) -> bytes:
            if option == socket.SO_PEERCRED:
                return struct.pack("3i", os.getpid(), 1000, 1000)
            raise OSError(errno.ERANGE, "Numerical result out of range")

    peer = peer_of(ManyGroups(), control_gid=None)
    assert set(peer.groups) == set(os.getgroups())


def run_as(uid: int, gid: int, groups: list[int], path: Path, line: bytes) -> dict[str, Any]:
    """Fork a child with these credentials that sends ``line`` and returns the reply."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            os.close(read_fd)
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            with connection(path) as sock:
                sock.sendall(line)
                os.write(write_fd, read_line(sock))
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, data
    reply = json.loads(data)
    assert isinstance(reply, dict)
    return reply


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change uid")
def test_the_control_group_is_the_peers_real_groups(open_dir: Path) -> None:
    """A supplementary group counts; a group the process does not carry does not."""
    path = socket_path(open_dir)
    whoami = b'{"v": 1, "id": 1, "op": "whoami"}\n'
    with ServerThread(path, TestHandler(), mode=0o666, group="4242"):
        assert run_as(NOBODY, NOBODY, [4242], path, whoami)["result"]["priv"] is True
        assert run_as(NOBODY, 4242, [], path, whoami)["result"]["priv"] is True
        assert run_as(NOBODY, NOBODY, [], path, whoami)["result"]["priv"] is False


class HeldConnections:
    """A child process as uid 65534 holding ``count`` connections until released."""

    def __init__(self, path: Path, count: int) -> None:
        self.replies: list[dict[str, Any]] = []
        results_r, results_w = os.pipe()
        release_r, self._release_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child
            try:
                os.close(results_r)
                os.close(self._release_w)
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                held = []
                for n in range(count):
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    sock.settimeout(5)
                    sock.connect(str(path))
                    # A refused connection is answered and closed at once: the
                    # ping may then meet a closed socket, the answer is read anyway.
                    with suppress(BrokenPipeError, ConnectionResetError):
                        sock.sendall(ping_line(n))
                    os.write(results_w, read_line(sock))
                    held.append(sock)
                os.close(results_w)
                os.read(release_r, 1)
            except BaseException as exc:
                os.write(results_w, json.dumps({"child": repr(exc)}).encode() + b"\n")
            finally:
                os._exit(0)
        os.close(results_w)
        os.close(release_r)
        with os.fdopen(results_r, "rb") as pipe:
            self.replies = [json.loads(line) for line in pipe.read().splitlines()]

    def release(self) -> None:
        os.close(self._release_w)
        os.waitpid(self.pid, 0)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change uid")
def test_one_user_cannot_take_every_connection(open_dir: Path) -> None:
    path = socket_path(open_dir)
    with ServerThread(path, TestHandler(), mode=0o666, max_per_uid=3) as srv:
        nobody = HeldConnections(path, 4)
        try:
            assert [r.get("ok") for r in nobody.replies] == [True, True, True, False], (
                nobody.replies
            )
            assert "too many connections from uid 65534 (at most 3)" in nobody.replies[3]["error"]
            wait_until(lambda: srv.server.clients == 3)
            assert ControlClient(path).request("ping")["pong"] is True  # root still gets in
        finally:
            nobody.release()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change uid")
def test_the_last_connections_are_kept_for_the_privileged(open_dir: Path) -> None:
    path = socket_path(open_dir)
    with ServerThread(path, TestHandler(), mode=0o666, max_clients=4, reserved=2) as srv:
        nobody = HeldConnections(path, 3)
        try:
            assert [r.get("ok") for r in nobody.replies] == [True, True, False], nobody.replies
            assert "at most 2 for unprivileged users" in nobody.replies[2]["error"]
            with connection(path) as first, connection(path) as second:
                for n, sock in enumerate((first, second)):
                    sock.sendall(ping_line(n))
                    assert read_reply(sock)["ok"] is True
                assert srv.server.clients == 4
        finally:
            nobody.release()


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to change uid")
def test_an_unprivileged_stream_that_carries_nothing_times_out(open_dir: Path) -> None:
    path = socket_path(open_dir)
    line = b'{"v": 1, "id": 7, "op": "probes"}\n'
    with ServerThread(path, TestHandler(), mode=0o666, idle_timeout=0.3) as srv:
        reply = run_as(NOBODY, NOBODY, [], path, line)
        assert reply["ok"] is False and reply["id"] == 7
        assert "idle timeout: no records for 0.3 s" in reply["error"]
        with connection(path) as root_stream:  # a privileged stream waits as long as it must
            root_stream.sendall(line)
            root_stream.settimeout(0.8)
            with pytest.raises(TimeoutError):
                root_stream.recv(1)
            assert srv.server.clients == 1


def test_unknown_group_refused_at_start(sock_path: Path) -> None:
    with pytest.raises(IpmpError, match="unknown group 'no-such-group-xyz'"):
        ServerThread(sock_path, TestHandler(), group="no-such-group-xyz").__enter__()
    assert not sock_path.exists()


# -- streaming and slow clients ---------------------------------------------


def test_stream_delivers_records_then_ends(sock_path: Path) -> None:
    handler = TestHandler()
    with ServerThread(sock_path, handler):
        records = list(ControlClient(sock_path).stream("probes", burst=3, end=True))
        assert records == [{"n": 0}, {"n": 1}, {"n": 2}]
        wait_until(lambda: handler.closed == 1)
        assert handler.subscriptions[0].offer({"late": 1}) is False


def test_stream_ends_when_client_disconnects(sock_path: Path) -> None:
    handler = TestHandler()
    with ServerThread(sock_path, handler) as srv:
        with connection(sock_path) as sock:
            sock.sendall(b'{"v": 1, "id": 1, "op": "probes"}\n')
            wait_until(lambda: len(handler.subscriptions) == 1)
            sub = handler.subscriptions[0]
            assert srv.call(sub.offer, {"n": 1}) is True
            assert read_reply(sock) == {"v": 1, "id": 1, "ok": True, "event": {"n": 1}}
            sock.sendall(b"anything sent on a stream is ignored\n")
        wait_until(lambda: handler.closed == 1)
        assert srv.call(sub.offer, {"n": 2}) is False
        assert srv.server.clients == 0


def test_overflowing_subscription_is_dropped_with_error(sock_path: Path) -> None:
    handler = TestHandler()
    with ServerThread(sock_path, handler) as srv:
        with pytest.raises(IpmpError, match="subscription dropped: the client fell 8 records"):
            list(ControlClient(sock_path).stream("probes", maxsize=8, burst=20))
        assert handler.offers == [True] * 8 + [False] * 12
        wait_until(lambda: handler.closed == 1)
        assert any("dropped a slow 'probes' subscriber" in line for line in srv.logs)


@pytest.mark.slow
def test_client_that_never_reads_is_dropped_without_stalling_others(sock_path: Path) -> None:
    handler = TestHandler()
    record = {"payload": "x" * 4096}

    async def pusher(sub: Subscription) -> int:
        """Offer records steadily, like the daemon does, until the server drops the client."""
        deadline = asyncio.get_running_loop().time() + 15.0
        sent = 0
        while asyncio.get_running_loop().time() < deadline:
            for _ in range(16):
                if not sub.offer(record):
                    return sent
                sent += 1
            await asyncio.sleep(0.005)
        return -1

    with ServerThread(sock_path, handler, write_timeout=1.5) as srv:
        client = ControlClient(sock_path, timeout=5.0)
        with connection(sock_path) as silent:
            silent.sendall(b'{"v": 1, "id": 1, "op": "probes", "args": {"maxsize": 1000000}}\n')
            wait_until(lambda: len(handler.subscriptions) == 1)
            started = time.monotonic()
            pushing = srv.submit(pusher(handler.subscriptions[0]))
            slowest = 0.0
            pings = 0
            while not pushing.done():
                begin = time.monotonic()
                assert client.request("ping")["pong"] is True
                slowest = max(slowest, time.monotonic() - begin)
                pings += 1
            sent = pushing.result()
            assert sent > 0, "the silent client was never dropped"
            assert time.monotonic() - started >= 1.0  # it was stalled, then dropped
            assert pings >= 5 and slowest < 0.5, (pings, slowest)
            wait_until(lambda: handler.closed == 1)
            assert handler.subscriptions[0].dropped is False  # the write deadline dropped it
            assert any("read nothing for 1.5 s" in line for line in srv.logs)
            silent.settimeout(5.0)
            while True:  # what was already in the socket buffer, then the end
                try:
                    if not silent.recv(1 << 20):
                        break
                except ConnectionResetError:
                    break
        wait_until(lambda: srv.server.clients == 0)


def test_close_ends_every_connection_and_stream(sock_path: Path) -> None:
    handler = TestHandler()
    srv = ServerThread(sock_path, handler).__enter__()
    try:
        with connection(sock_path) as idle, connection(sock_path) as streaming:
            streaming.sendall(b'{"v": 1, "id": 1, "op": "probes"}\n')
            idle.sendall(ping_line(1))
            assert read_reply(idle)["ok"] is True
            wait_until(lambda: len(handler.subscriptions) == 1)
            begin = time.monotonic()
            srv.run(srv.server.close())
            assert time.monotonic() - begin < 2.0
            assert at_eof(idle) and at_eof(streaming)
            assert handler.closed == 1 and srv.server.clients == 0
            assert not sock_path.exists()
    finally:
        srv.__exit__(None, None, None)  # closing twice is harmless


# -- limits -------------------------------------------------------------------


def test_max_clients(sock_path: Path) -> None:
    with (
        ServerThread(sock_path, TestHandler(), max_clients=2) as srv,
        connection(sock_path) as first,
        connection(sock_path) as second,
    ):
        for n, sock in enumerate((first, second)):
            sock.sendall(ping_line(n))
            assert read_reply(sock)["ok"] is True
        assert srv.server.clients == 2
        with connection(sock_path) as third:
            reply = read_reply(third)
            assert reply["ok"] is False and "too many clients (at most 2)" in reply["error"]
            assert at_eof(third)
        with pytest.raises(IpmpError, match="too many clients"):
            ControlClient(sock_path).request("ping")
        first.close()
        wait_until(lambda: srv.server.clients == 1)
        assert ControlClient(sock_path).request("ping")["pong"] is True
        second.sendall(ping_line(5))  # the held connection still works
        assert read_reply(second)["id"] == 5


def test_idle_connection_is_closed(sock_path: Path) -> None:
    with ServerThread(sock_path, TestHandler(), idle_timeout=0.3) as srv:
        with connection(sock_path) as idle:
            begin = time.monotonic()
            assert ControlClient(sock_path).request("ping")["pong"] is True
            reply = read_reply(idle)
            assert reply["ok"] is False and "idle timeout" in reply["error"]
            assert at_eof(idle)
            assert 0.2 < time.monotonic() - begin < 3.0
        wait_until(lambda: srv.server.clients == 0)


# -- the socket file ----------------------------------------------------------


def test_stale_socket_replaced_live_one_refused(sock_path: Path) -> None:
    sock_path.parent.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock_path))
    stale.close()  # the file stays; nothing answers on it
    assert stat.S_ISSOCK(os.lstat(sock_path).st_mode)
    with pytest.raises(IpmpError, match=r"cannot contact in.mpathd at .*daemon running\?"):
        ControlClient(sock_path).request("ping")
    with ServerThread(sock_path, TestHandler()):
        assert ControlClient(sock_path).request("ping")["pong"] is True
        with pytest.raises(IpmpError, match=r"another in\.mpathd is already running on"):
            ServerThread(sock_path, TestHandler()).__enter__()
        assert ControlClient(sock_path).request("ping")["pong"] is True
    assert not sock_path.exists()


def test_non_socket_file_is_not_replaced(sock_path: Path) -> None:
    sock_path.parent.mkdir(parents=True)
    sock_path.write_text("precious")
    with pytest.raises(IpmpError, match="exists and is not a socket"):
        ServerThread(sock_path, TestHandler()).__enter__()
    assert sock_path.read_text() == "precious"


# -- the client's own failures ------------------------------------------------


def test_client_without_daemon_and_timeout(tmp_path: Path) -> None:
    missing = socket_path(tmp_path)
    with pytest.raises(
        IpmpError, match=r"^cannot contact in.mpathd at .*: is the daemon running\?$"
    ):
        ControlClient(missing).request("ping")
    mute_path = tmp_path / "mute.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        mute.bind(str(mute_path))
        mute.listen(4)  # connects succeed, nobody ever answers
        begin = time.monotonic()
        with pytest.raises(IpmpError, match=r"no reply from in.mpathd at .* within 0.3 s"):
            ControlClient(mute_path, timeout=0.3).request("ping")
        assert time.monotonic() - begin < 3.0


# -- fuzzing ------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
REQUEST_SHAPED = st.fixed_dictionaries(
    {},
    optional={
        "v": st.sampled_from([1, 1, 1, 0, 2, "1", True, None]) | JSON_VALUES,
        "id": st.integers() | st.text(max_size=10) | st.none() | JSON_VALUES,
        "op": st.sampled_from(["ping", "fail", "crash", "badresult", "nope", ""]) | JSON_VALUES,
        "args": st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=4) | JSON_VALUES,
        "extra": JSON_VALUES,
    },
)
LINES = (
    st.binary(max_size=512).map(lambda data: data.replace(b"\n", b""))
    | JSON_VALUES.map(lambda value: json.dumps(value).encode())
    | REQUEST_SHAPED.map(lambda value: json.dumps(value).encode())
)


@pytest.mark.slow
def test_fuzzed_lines_each_get_exactly_one_reply(sock_path: Path) -> None:
    handler = TestHandler(streams=False)
    counter = iter(range(1_000_000))
    with ServerThread(sock_path, handler) as srv, connection(sock_path) as sock:

        @settings(
            max_examples=400,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(line=LINES)
        def check(line: bytes) -> None:
            sentinel = f"sentinel-{next(counter)}"
            sock.sendall(line + b"\n" + ping_line(sentinel))
            reply = read_reply(sock)
            assert reply["v"] == 1 and isinstance(reply["ok"], bool)
            assert set(reply) == {"v", "id", "ok", "result" if reply["ok"] else "error"}
            if not reply["ok"]:
                assert isinstance(reply["error"], str) and reply["error"]
            follow = read_reply(sock)
            assert follow["id"] == sentinel and follow["ok"] is True

        check()
        assert srv.server.clients == 1
        assert all("internal error" in line for line in srv.logs)


def test_parse_request_accepts_the_documented_shape() -> None:
    request = parse_request(b'{"v": 1, "id": "q", "op": "ifconfig", "args": {"argv": ["-a"]}}\n')
    assert request == Request(id="q", op="ifconfig", args={"argv": ["-a"]})
    assert parse_request(b'{"v": 1, "op": "ping"}') == Request(id=None, op="ping", args={})
