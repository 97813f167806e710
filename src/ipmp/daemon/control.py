"""The in.mpathd control socket: newline-delimited JSON over a Unix stream socket.

One request per line, one reply per line (``docs/control-protocol.md`` is the
reference).  The server never trusts a client:

- every line is bounded (``MAX_REQUEST`` bytes); an oversized line gets an
  error reply and the connection is closed, nothing is buffered beyond it;
- a malformed line gets an error reply and the connection stays usable;
- every reply is written with a deadline, so a client that stops reading is
  dropped instead of stalling anything else (each connection is its own task,
  and the daemon's handler is a plain function that is never awaited on);
- silent connections are closed after ``idle_timeout``;
- the peer's credentials come from ``SO_PEERCRED``, never from the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import grp
import json
import os
import socket
import stat
import struct
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ipmp.core.errors import IpmpError
from ipmp.daemon.safedirs import make_dirs

PROTOCOL_VERSION = 1
MAX_REQUEST = 64 * 1024
SUBSCRIPTION_QUEUE = 1024
SOCKET_NAME = "mpathd.sock"
_SUN_PATH_MAX = 107  # sizeof(sockaddr_un.sun_path) - 1 on Linux
_PEERCRED = struct.Struct("3i")
_GID = struct.Struct("I")
_GETSOCKOPT_MAX = 1024
"""The largest option buffer CPython's socket.getsockopt accepts."""
SO_PEERGROUPS = getattr(socket, "SO_PEERGROUPS", 59)
_REQUEST_FIELDS = frozenset({"v", "id", "op", "args"})

Record = dict[str, Any]
Log = Callable[[str], None]


def socket_path(root: Path) -> Path:
    """Where the daemon for ``root`` listens: ``<root>/run/ipmp/mpathd.sock``."""
    return root / "run" / "ipmp" / SOCKET_NAME


def _stderr_log(message: str) -> None:
    print(f"in.mpathd: {message}", file=sys.stderr)


# ---------------------------------------------------------------------------
# Peers and privilege


@dataclass(frozen=True)
class Peer:
    """The process at the other end of a connection, as the kernel saw it at connect()."""

    pid: int
    uid: int
    gid: int
    privileged: bool
    groups: tuple[int, ...] = ()
    """The peer's supplementary groups (``SO_PEERGROUPS``)."""


GID_MAX = 0xFFFFFFFE
"""The largest gid (``(gid_t) -1`` means "none")."""


def resolve_group(group: str) -> int:
    """The gid of ``group``: a name from the group database, or a number as it is."""
    if group.isascii() and group.isdecimal():
        gid = int(group)
        if gid > GID_MAX:
            raise IpmpError(f"group {group}: not a gid (0 to {GID_MAX})")
        return gid
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        message = f"unknown group {group!r}: expected a group name or a numeric gid"
        raise IpmpError(message) from None


def is_privileged(uid: int, gids: Iterable[int], control_gid: int | None) -> bool:
    """May a peer change state?  Root always; otherwise a member of the control group.

    Membership is what the kernel says of the peer (its primary gid and its
    supplementary groups, from ``SO_PEERCRED`` and ``SO_PEERGROUPS``), never a
    name looked up in ``/etc/group``: a user added to the group counts once
    its processes carry it (a new login), and one removed keeps it in the
    processes that still carry it, as for file permissions.
    """
    if uid == 0:
        return True
    if control_gid is None or uid < 0:
        return False
    return control_gid in gids


def _peer_groups(sock: Any, pid: int) -> tuple[int, ...]:
    """The peer's supplementary groups: ``SO_PEERGROUPS``, else ``/proc/PID/status``.

    CPython's getsockopt takes at most 1024 bytes (256 groups); a peer with
    more gets ERANGE, and its groups are then read from its process (a pid
    could be reused in between, which is why the socket is asked first).
    """
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, SO_PEERGROUPS, _GETSOCKOPT_MAX)
    except OSError as exc:
        if exc.errno != errno.ERANGE or pid <= 0:
            return ()
        return _proc_groups(pid)
    count = len(raw) // _GID.size
    return tuple(struct.unpack(f"{count}I", raw[: count * _GID.size]))


def _proc_groups(pid: int) -> tuple[int, ...]:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Groups:"):
                    return tuple(int(g) for g in line.split()[1:] if g.isdecimal())
    except OSError:
        pass
    return ()


def peer_of(sock: Any, control_gid: int | None) -> Peer:
    """Read the peer's credentials from a connected Unix socket (anything with ``getsockopt``)."""
    try:
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
        pid, uid, gid = _PEERCRED.unpack(raw)
    except (OSError, AttributeError, struct.error):
        return Peer(pid=0, uid=-1, gid=-1, privileged=False)
    groups = _peer_groups(sock, pid)
    privileged = is_privileged(uid, (gid, *groups), control_gid)
    return Peer(pid=pid, uid=uid, gid=gid, privileged=privileged, groups=groups)


# ---------------------------------------------------------------------------
# Requests and replies


@dataclass(frozen=True)
class Request:
    """One parsed request line."""

    id: int | str | None
    op: str
    args: dict[str, Any]


class RequestError(Exception):
    """A request line was refused before reaching the handler."""

    def __init__(self, message: str, request_id: int | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.request_id = request_id


def short_repr(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for one-line error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_request(line: bytes) -> Request:
    """Parse one request line (without or with its newline); raise RequestError."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise RequestError("request is not valid UTF-8") from None
    if not text.strip():
        raise RequestError("empty request: expected a JSON object on one line")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise RequestError(f"request is not valid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise RequestError("request is not valid JSON: nested too deeply") from None
    except ValueError as exc:
        raise RequestError(f"request is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RequestError(f"request must be a JSON object, not {_json_type(data)}")
    request_id = data.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, int | str | None):
        raise RequestError(
            f"request id must be an integer, a string or null, not {short_repr(request_id)}"
        )
    unknown = sorted(str(key) for key in data if key not in _REQUEST_FIELDS)
    if unknown:
        raise RequestError(
            f"unknown request field(s) {', '.join(short_repr(k) for k in unknown[:5])}; "
            "expected v, id, op, args",
            request_id,
        )
    if "v" not in data:
        raise RequestError(
            f'missing protocol version "v" (this daemon speaks version {PROTOCOL_VERSION})',
            request_id,
        )
    version = data["v"]
    if isinstance(version, bool) or version != PROTOCOL_VERSION:
        raise RequestError(
            f"unsupported protocol version {short_repr(version)} "
            f"(this daemon speaks version {PROTOCOL_VERSION})",
            request_id,
        )
    op = data.get("op")
    if op is None:
        raise RequestError('missing "op": expected the operation name as a string', request_id)
    if not isinstance(op, str):
        raise RequestError(f'"op" must be a string, not {_json_type(op)}', request_id)
    args = data.get("args", {})
    if not isinstance(args, dict):
        raise RequestError(f'"args" must be a JSON object, not {_json_type(args)}', request_id)
    return Request(id=request_id, op=op, args=args)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _encode(reply: dict[str, Any]) -> bytes:
    text = json.dumps(reply, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.encode("ascii") + b"\n"


def error_reply(request_id: int | str | None, message: str) -> bytes:
    """The encoded error line for ``message`` (always one line)."""
    one_line = " ".join(message.splitlines()) or "error"
    return _encode({"v": PROTOCOL_VERSION, "id": request_id, "ok": False, "error": one_line})


def result_reply(request_id: int | str | None, result: Any) -> bytes:
    """The encoded success line; raises TypeError/ValueError if ``result`` is not JSON."""
    return _encode({"v": PROTOCOL_VERSION, "id": request_id, "ok": True, "result": result})


def event_reply(request_id: int | str | None, record: Record) -> bytes:
    """The encoded line carrying one streamed record."""
    return _encode({"v": PROTOCOL_VERSION, "id": request_id, "ok": True, "event": record})


# ---------------------------------------------------------------------------
# Streaming


class Subscription:
    """A stream of records from the daemon to one client.

    The daemon returns one from its handler and keeps it; it calls
    :meth:`offer` for every record (never blocks) and :meth:`close` to end the
    stream.  ``offer`` returns False once the subscription is gone: the client
    disconnected, was too slow (the queue filled up: it is dropped with an
    error line) or the stream was closed.  ``on_close`` runs exactly once, in
    the event loop, when the server has finished with the stream for any
    reason; the daemon uses it to unregister the subscription.
    """

    def __init__(
        self, maxsize: int = SUBSCRIPTION_QUEUE, on_close: Callable[[], None] | None = None
    ) -> None:
        if maxsize < 1:
            raise ValueError("a subscription queue holds at least one record")
        self.queue: asyncio.Queue[Record | None] = asyncio.Queue(maxsize)
        self.on_close = on_close
        self._dropped = False
        self._ended = False
        self._finished = False

    @property
    def active(self) -> bool:
        """True while records offered may still reach the client."""
        return not (self._dropped or self._ended or self._finished)

    @property
    def dropped(self) -> bool:
        """True once the queue overflowed (the client did not keep up)."""
        return self._dropped

    def offer(self, record: Record) -> bool:
        """Queue ``record`` without blocking; False if the subscription is gone."""
        if not self.active:
            return False
        try:
            self.queue.put_nowait(record)
        except asyncio.QueueFull:
            self._dropped = True
            return False
        return True

    def close(self) -> None:
        """End the stream: the client gets the records queued so far, then EOF."""
        if not self.active:
            return
        self._ended = True
        try:
            self.queue.put_nowait(None)
        except asyncio.QueueFull:
            self._dropped = True

    def finish(self) -> None:
        """Server side: the stream is over; run ``on_close`` once."""
        if self._finished:
            return
        self._finished = True
        if self.on_close is not None:
            self.on_close()


Handler = Callable[[Request, Peer], Any]


# ---------------------------------------------------------------------------
# The server


class _Drop(Exception):
    """The connection must be aborted (peer gone or not reading)."""


@dataclass(eq=False)
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    task: asyncio.Task[None] | None
    peer: Peer


class ControlServer:
    """Serve ``handler`` on a Unix stream socket at ``path``.

    ``handler(request, peer)`` is a synchronous function run inside the event
    loop (it must not block).  It returns a JSON-ready result, or a
    :class:`Subscription` for a streaming op, or raises ``IpmpError`` whose
    message becomes the error reply.  Any other exception becomes
    ``internal error: <type>`` and is logged; the server keeps serving.

    Nobody can lock the privileged out: of ``max_clients`` connections the
    last ``reserved`` are kept for privileged peers, and one unprivileged uid
    holds at most ``max_per_uid``.  An unprivileged stream that has carried
    nothing for ``idle_timeout`` is closed like a silent connection.
    """

    def __init__(
        self,
        path: Path,
        handler: Handler,
        *,
        group: str | None = None,
        mode: int = 0o660,
        max_clients: int = 64,
        max_per_uid: int = 8,
        reserved: int = 8,
        idle_timeout: float = 60.0,
        write_timeout: float = 5.0,
        log: Log = _stderr_log,
    ) -> None:
        self.path = Path(path)
        self.handler = handler
        self.group = group
        self.mode = mode
        self.max_clients = max_clients
        self.max_per_uid = max_per_uid
        self.reserved = min(reserved, max_clients)
        self.idle_timeout = idle_timeout
        self.write_timeout = write_timeout
        self.log = log
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._inode: tuple[int, int] | None = None
        self._closing = False
        self._gid: int | None = None

    @property
    def clients(self) -> int:
        """How many connections are open now."""
        return len(self._connections)

    # -- lifecycle ---------------------------------------------------------

    async def start(self) -> None:
        """Create the directory and the socket; refuse if a live daemon owns the path."""
        if self._server is not None:
            raise IpmpError(f"the control socket {self.path} is already being served")
        self._closing = False
        if len(os.fsencode(self.path)) > _SUN_PATH_MAX:
            raise IpmpError(
                f"control socket path {self.path} is too long "
                f"(a Unix socket path holds at most {_SUN_PATH_MAX} bytes)"
            )
        gid = self._gid = self._group_gid()
        make_dirs(self.path.parent)
        await self._remove_stale()
        try:
            server = await asyncio.start_unix_server(
                self._accept, path=str(self.path), limit=MAX_REQUEST
            )
        except OSError as exc:
            raise IpmpError(f"cannot listen on {self.path}: {exc.strerror or exc}") from None
        try:
            os.chmod(self.path, self.mode)
            if gid is not None and self.mode & 0o006 != 0o006:
                # The group only widens who may connect when others may not;
                # with 0666 (in.mpathd) it would change nothing, and the
                # hardened unit (no CAP_CHOWN, no chown(2)) could not do it.
                os.chown(self.path, -1, gid)
            info = os.stat(self.path)
        except OSError as exc:
            server.close()
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            raise IpmpError(
                f"cannot set the mode or group of {self.path}: {exc.strerror or exc}"
            ) from None
        self._inode = (info.st_dev, info.st_ino)
        self._server = server

    async def close(self) -> None:
        """Stop listening, drop every connection and remove the socket file."""
        self._closing = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        tasks: list[asyncio.Task[None]] = []
        for conn in list(self._connections):
            conn.writer.transport.abort()
            if conn.task is not None and conn.task is not asyncio.current_task():
                conn.task.cancel()
                tasks.append(conn.task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        if self._inode is not None:
            try:
                info = os.stat(self.path)
            except OSError:
                pass
            else:
                if (info.st_dev, info.st_ino) == self._inode:
                    with contextlib.suppress(OSError):
                        os.unlink(self.path)
            self._inode = None

    def _group_gid(self) -> int | None:
        if self.group is None:
            return None
        try:
            return resolve_group(self.group)
        except IpmpError as exc:
            raise IpmpError(f"{exc.message} (the control group of {self.path})") from None

    async def _remove_stale(self) -> None:
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(info.st_mode):
            raise IpmpError(f"{self.path} exists and is not a socket; refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.setblocking(False)
        try:
            loop = asyncio.get_running_loop()
            await asyncio.wait_for(loop.sock_connect(probe, str(self.path)), 2.0)
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            return
        except TimeoutError:
            pass  # something is listening but too busy to accept: it is alive
        except OSError as exc:
            raise IpmpError(f"cannot check {self.path}: {exc.strerror or exc}") from None
        finally:
            probe.close()
        raise IpmpError(f"another in.mpathd is already running on {self.path}")

    # -- connections -------------------------------------------------------

    def _refusal(self, peer: Peer) -> str | None:
        """Why a new connection from ``peer`` is not admitted, or None."""
        if self._closing:
            return "in.mpathd is shutting down"
        total = len(self._connections)
        if total >= self.max_clients:
            return f"too many clients (at most {self.max_clients}); try again later"
        if peer.privileged:
            return None
        if total >= self.max_clients - self.reserved:
            return (
                f"too many clients (at most {self.max_clients - self.reserved} "
                "for unprivileged users); try again later"
            )
        mine = sum(1 for conn in self._connections if conn.peer.uid == peer.uid)
        if mine >= self.max_per_uid:
            return (
                f"too many connections from uid {peer.uid} "
                f"(at most {self.max_per_uid}); try again later"
            )
        return None

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = peer_of(writer.get_extra_info("socket"), self._gid)
        conn = _Connection(reader, writer, asyncio.current_task(), peer)
        refusal = self._refusal(peer)
        if refusal is not None:
            writer.write(error_reply(None, refusal))
            await self._close(conn)
            return
        self._connections.add(conn)
        try:
            await self._serve(conn, peer)
        except _Drop:
            writer.transport.abort()
        except asyncio.CancelledError:
            writer.transport.abort()
            raise
        except Exception as exc:  # never let one connection take the server down
            self.log(f"control: connection failed: {_describe(exc)}")
            writer.transport.abort()
        finally:
            self._connections.discard(conn)
        await self._close(conn)

    async def _serve(self, conn: _Connection, peer: Peer) -> None:
        reader = conn.reader
        while True:
            try:
                line = await asyncio.wait_for(reader.readline(), self.idle_timeout)
            except TimeoutError:
                await self._send(conn, error_reply(None, "idle timeout: closing the connection"))
                return
            except (asyncio.LimitOverrunError, ValueError):
                await self._send(
                    conn,
                    error_reply(None, f"request too long (more than {MAX_REQUEST} bytes)"),
                )
                return
            except ConnectionError:
                raise _Drop() from None
            if not line:
                return  # EOF
            try:
                request = parse_request(line)
            except RequestError as exc:
                await self._send(conn, error_reply(exc.request_id, exc.message))
            else:
                subscription = await self._dispatch(conn, request, peer)
                if subscription is not None:
                    await self._stream(conn, request, subscription, peer.privileged)
                    return
            if not line.endswith(b"\n"):
                return  # the client half-closed after its last request

    async def _dispatch(
        self, conn: _Connection, request: Request, peer: Peer
    ) -> Subscription | None:
        try:
            result = self.handler(request, peer)
            if isinstance(result, Subscription):
                return result
            data = result_reply(request.id, result)
        except IpmpError as exc:
            data = error_reply(request.id, exc.message)
        except Exception as exc:
            self.log(f"control: internal error in op {short_repr(request.op)}: {_describe(exc)}")
            data = error_reply(request.id, f"internal error: {type(exc).__name__}")
        await self._send(conn, data)
        return None

    async def _stream(
        self, conn: _Connection, request: Request, sub: Subscription, privileged: bool
    ) -> None:
        eof = asyncio.create_task(_discard_until_eof(conn.reader))
        idle_limit = None if privileged else self.idle_timeout
        getter: asyncio.Task[Record | None] | None = None
        try:
            while True:
                if sub.dropped:
                    self.log(
                        f"control: dropped a slow {short_repr(request.op)} subscriber "
                        f"({sub.queue.maxsize} records queued)"
                    )
                    await self._send(
                        conn,
                        error_reply(
                            request.id,
                            f"subscription dropped: the client fell {sub.queue.maxsize} "
                            "records behind",
                        ),
                    )
                    return
                try:
                    record = sub.queue.get_nowait()
                except asyncio.QueueEmpty:
                    getter = asyncio.create_task(sub.queue.get())
                    done, _ = await asyncio.wait(
                        {getter, eof}, timeout=idle_limit, return_when=asyncio.FIRST_COMPLETED
                    )
                    if not done:
                        await self._send(
                            conn,
                            error_reply(
                                request.id,
                                f"idle timeout: no records for {self.idle_timeout:g} s; "
                                "closing the stream",
                            ),
                        )
                        return
                    if not getter.done():
                        return  # the client went away
                    record = getter.result()
                    getter = None
                if record is None:
                    return
                if sub.dropped:
                    continue
                try:
                    data = event_reply(request.id, record)
                except (TypeError, ValueError) as exc:
                    self.log(f"control: unencodable {short_repr(request.op)} record: {exc}")
                    continue
                await self._send(conn, data)
        finally:
            sub.finish()
            if getter is not None:
                getter.cancel()
            eof.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await eof

    async def _send(self, conn: _Connection, data: bytes) -> None:
        """Write one line; drop the connection if it is not taken within the deadline."""
        writer = conn.writer
        if writer.transport.is_closing():
            raise _Drop()
        writer.write(data)
        try:
            await asyncio.wait_for(writer.drain(), self.write_timeout)
        except TimeoutError:
            self.log(f"control: dropped a client that read nothing for {self.write_timeout:g} s")
            raise _Drop() from None
        except ConnectionError:
            raise _Drop() from None

    async def _close(self, conn: _Connection) -> None:
        writer = conn.writer
        if writer.transport.is_closing():
            writer.transport.abort()
            return
        writer.close()
        try:
            await asyncio.wait_for(writer.wait_closed(), self.write_timeout)
        except (TimeoutError, ConnectionError):
            writer.transport.abort()
        except asyncio.CancelledError:
            writer.transport.abort()
            raise


async def _discard_until_eof(reader: asyncio.StreamReader) -> None:
    """Swallow whatever a streaming client sends until it hangs up."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(MAX_REQUEST):
            pass


def _describe(exc: BaseException) -> str:
    """One line: the exception and where it was raised."""
    text = f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    if frames:
        last = frames[-1]
        text += f" (at {Path(last.filename).name}:{last.lineno} in {last.name})"
    return " ".join(text.splitlines())
