"""The blocking client of in.mpathd's control socket, used by the command-line tools.

The protocol is in ``docs/control-protocol.md``: one JSON request per line, one
JSON reply per line.  Every failure reaches the caller as an ``IpmpError`` with
a one-line message the tools print as it is.
"""

from __future__ import annotations

import errno
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ipmp.core.errors import IpmpError

PROTOCOL_VERSION = 1
_CHUNK = 65536


class ControlClient:
    """Talks to the daemon listening on ``path``; one connection per call."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._next_id = 0

    def request(self, op: str, **args: Any) -> Any:
        """Send one request and return its ``result``; an error reply raises IpmpError."""
        request_id = self._new_id()
        deadline = time.monotonic() + self.timeout
        with self._connect() as sock:
            reader = _LineReader(sock, self.path)
            self._send(sock, reader, request_id, op, args)
            line = reader.readline(deadline, self.timeout)
        if line is None:
            raise IpmpError(f"in.mpathd at {self.path} closed the connection without replying")
        reply = self._decode(line)
        if reply.get("id") != request_id:
            raise IpmpError(
                f"protocol error: in.mpathd answered request {reply.get('id')!r}, "
                f"expected {request_id}"
            )
        if "result" not in reply:
            raise IpmpError(f"{op}: in.mpathd answered with a stream; read it with stream()")
        return reply["result"]

    def stream(self, op: str, **args: Any) -> Iterator[dict[str, Any]]:
        """Send a streaming request and yield every ``event`` until the daemon closes.

        Connecting and sending are bounded by the timeout; waiting for events
        is not (a stream may be quiet for a long time).
        """
        request_id = self._new_id()
        with self._connect() as sock:
            reader = _LineReader(sock, self.path)
            self._send(sock, reader, request_id, op, args)
            while True:
                line = reader.readline(None, self.timeout)
                if line is None:
                    return
                reply = self._decode(line)
                if "event" in reply:
                    event = reply["event"]
                    if not isinstance(event, dict):
                        raise IpmpError("protocol error: an event from in.mpathd is not an object")
                    yield event
                elif "result" in reply:
                    return  # the op answered once instead of streaming

    # -- internals ----------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise IpmpError(
                f"cannot contact in.mpathd at {self.path}: is the daemon running?"
            ) from None
        except TimeoutError:
            sock.close()
            raise IpmpError(
                f"cannot contact in.mpathd at {self.path}: no answer within {self.timeout:g} s"
            ) from None
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise IpmpError(
                    f"cannot contact in.mpathd at {self.path}: permission denied "
                    "(the socket is open to root and the daemon's control group)"
                ) from None
            raise IpmpError(
                f"cannot contact in.mpathd at {self.path}: {exc.strerror or exc}"
            ) from None
        return sock

    def _send(
        self,
        sock: socket.socket,
        reader: _LineReader,
        request_id: int,
        op: str,
        args: dict[str, Any],
    ) -> None:
        message = {"v": PROTOCOL_VERSION, "id": request_id, "op": op, "args": args}
        try:
            data = json.dumps(message, ensure_ascii=True, separators=(",", ":")).encode("ascii")
        except (TypeError, ValueError) as exc:
            raise IpmpError(f"{op}: arguments are not JSON: {exc}") from None
        try:
            sock.sendall(data + b"\n")
        except TimeoutError:
            raise IpmpError(
                f"in.mpathd at {self.path} took no request within {self.timeout:g} s"
            ) from None
        except OSError as exc:
            # The daemon may have refused the connection with an error line and
            # closed it before the request went out (too many clients, shutting
            # down): that line is the better message.
            try:
                line = reader.readline(time.monotonic() + 1.0, 1.0)
            except IpmpError:
                line = None
            if line:
                self._decode(line)
            raise IpmpError(
                f"lost the connection to in.mpathd at {self.path}: {exc.strerror or exc}"
            ) from None

    def _decode(self, line: bytes) -> dict[str, Any]:
        try:
            reply = json.loads(line)
        except ValueError:
            raise IpmpError(f"protocol error: in.mpathd at {self.path} sent invalid JSON") from None
        if not isinstance(reply, dict):
            raise IpmpError("protocol error: a reply from in.mpathd is not an object")
        if reply.get("v") != PROTOCOL_VERSION:
            raise IpmpError(
                f"in.mpathd speaks control protocol version {reply.get('v')!r}; "
                f"this client speaks version {PROTOCOL_VERSION}"
            )
        if reply.get("ok") is not True:
            message = reply.get("error")
            raise IpmpError(str(message) if message else "in.mpathd refused the request")
        return reply


class _LineReader:
    """Reads newline-terminated lines from a blocking socket under a deadline."""

    def __init__(self, sock: socket.socket, path: Path) -> None:
        self.sock = sock
        self.path = path
        self.buffer = bytearray()
        self.eof = False

    def readline(self, deadline: float | None, timeout: float) -> bytes | None:
        """The next line (without newline), or None at EOF; TimeoutError → IpmpError."""
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[:end])
                del self.buffer[: end + 1]
                return line
            if self.eof:
                if self.buffer:
                    line = bytes(self.buffer)
                    self.buffer.clear()
                    return line
                return None
            if deadline is None:
                self.sock.settimeout(None)
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self._timed_out(timeout)
                self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(_CHUNK)
            except TimeoutError:
                raise self._timed_out(timeout) from None
            except OSError as exc:
                raise IpmpError(
                    f"lost the connection to in.mpathd at {self.path}: {exc.strerror or exc}"
                ) from None
            if not chunk:
                self.eof = True
            self.buffer += chunk

    def _timed_out(self, timeout: float) -> IpmpError:
        return IpmpError(f"no reply from in.mpathd at {self.path} within {timeout:g} s")
