"""Control-plane fuzz: seeded hostile requests to in.mpathd --sim, as root and as nobody.

in.mpathd runs on a simulated host (``--sim``, no network namespace; a
scratch root under a 0755 temporary directory) whose topology has two NICs
in group ``fz`` with data addresses only: no test address, so nothing probes
and nothing in the daemon changes unless a request changes it.  N requests
are drawn from a seeded generator, one kind at a time in turn:

* ``bad_json``: random bytes, truncated or broken JSON, empty lines;
* ``wrong_types``: the envelope (``v``, ``id``, ``op``, ``args``) with values of
  the wrong JSON type;
* ``unknown_keys``: extra request fields or unknown keys in ``args``;
* ``huge``: lines just under, at and over the 64 KiB request limit, and 1 MiB;
* ``control_chars``: control characters (NUL, ESC, DEL, a raw CR) in the op,
  in interface names and in argv words;
* ``unicode``: non-ASCII and lone surrogates (escaped), right-to-left marks,
  invalid UTF-8 bytes;
* ``deep``: nested arrays and objects, 50 to 30 000 levels, as the request or
  inside ``args``;
* ``versions``: ``v`` absent, 0, 2, "1", 1.5, true, null, -1, 2**64;
* ``ops``: every operation (and unknown ones) with random arguments: the keys
  it takes and others, values of every type, the host's interface names and
  others; argv/command words from ifconfig's and ``sim``'s vocabulary (with
  ``sim disk full|readonly|nofiles|ok``, so that some requests meet a disk
  that refuses the state).  60 % of them are well typed, so that they get past
  the argument checks into the permission check and the engine.

Each request goes on its own connection, as root (the benchmark's own uid;
under root it is privileged) or, when run as root, as uid 65534: a forked
child that dropped to ``nobody`` connects and hands the connected socket back
over SCM_RIGHTS (``SO_PEERCRED`` is taken at connect(), so the daemon sees
nobody), and the parent sends the request on it.  Around every request the
parent takes the daemon's snapshot (without its clock) and reads the
simulated kernel (run/ipmp/sim-world.json) and the state file; an accepted
root request is followed by a wait until both are still.

Counted: inputs tried (per kind and per sender), replies (accepted, refused),
daemon crashes (the process gone; it is then restarted), internal errors
(``internal error`` replies or log lines), requests left without a reply,
replies that are not one JSON line, state changes caused by a refused
request, and changes caused by any request from nobody.  Every one of these
but the first two must be 0.

``python benchmarks/control_fuzz.py [--smoke] [--requests N] [--seed S]``:
writes results/control_fuzz.json (10 000 requests; ``--smoke``: 300); no root needed
(without it there is no nobody sender, and the JSON says so).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from common import machine, write_result

from ipmp.client import ControlClient
from ipmp.core.errors import IpmpError
from ipmp.daemon.control import MAX_REQUEST, socket_path
from ipmp.daemon.daemon import sim_world_path, state_path

T = TypeVar("T")
NOBODY = 65534
REPLY_S = 5.0  # a reply must come within this
STREAM_S = 1.0  # how long a request naming "probes" is given (an open stream stays silent)
STILL_S = 0.3  # an accepted change is over when nothing moved for this long
START_S = 20.0
NICS = ("hme0", "hme1", "hme2")
TOPOLOGY = """\
[host]
name = "fuzz"
seed = 1

[mpathd]
text = '''
FAILURE_DETECTION_TIME=10000
FAILBACK=yes
TRACK_INTERFACES_ONLY_WITH_GROUPS=yes
'''

[[link]]
name = "net0"

  [[link.neighbour]]
  name = "router1"
  role = "router"
  address = "192.0.2.1"

[[nic]]
name = "hme0"
mac = "8:0:20:b9:19:fa"
link = "net0"
hostname = '''
192.0.2.19 netmask + broadcast + group fz up addif 192.0.2.29 netmask + broadcast + up
'''

[[nic]]
name = "hme1"
mac = "8:0:20:b9:1b:fc"
link = "net0"
hostname = '''
192.0.2.20 netmask + broadcast + group fz up
'''

[[nic]]
name = "hme2"
mac = "8:0:20:b9:1c:fd"
link = "net0"
hostname = '''
192.0.2.30 netmask + broadcast + up
'''
"""
OPERATIONS: dict[str, dict[str, str]] = {
    "ping": {},
    "snapshot": {},
    "ifconfig": {"argv": "strings", "show_ether": "boolean"},
    "offline": {"interface": "interface"},
    "online": {"interface": "interface"},
    "dr_detach": {"interface": "interface", "force": "boolean"},
    "dr_attach": {"interface": "interface"},
    "sim": {"command": "strings"},
    "probes": {},
    "reload": {},
    "stats": {},
}
"""The operations and their arguments, as docs/control-protocol.md documents them."""
KINDS = (
    "bad_json",
    "wrong_types",
    "unknown_keys",
    "huge",
    "control_chars",
    "unicode",
    "deep",
    "versions",
    "ops",
)
IFCONFIG_WORDS = (
    "hme0", "hme1", "hme2", "hme9", "group", "fz", "", "-", "up", "down", "addif", "removeif",
    "192.0.2.40", "198.51.100.7", "netmask", "+", "broadcast", "-failover", "failover",
    "standby", "-standby", "deprecated", "plumb", "unplumb", "modlist", "modinsert", "modremove",
    "ipmp", "arp", "mtu", "1500", "0", "-1", "inet6", "inet", "auto-revarp", "a",
)  # fmt: skip
SIM_WORDS = (
    "link", "loss", "drop", "target", "rtt", "unplug", "plug", "up", "down", "on", "off",
    "hme0", "hme1", "hme9", "192.0.2.1", "50", "100", "101", "nan", "inf", "-1", "1e9", "",
    "disk", "full", "readonly", "nofiles", "ok",
)  # fmt: skip
"""``sim`` words; ``disk full|readonly|nofiles|ok`` fails the state writes (a refusal must
then still change nothing)."""
ODD_TEXT = (
    "",
    " ",
    "\x00",
    "hme0\x00",
    "hme0\n",
    "hme0\r",
    "\x1b[2J",
    "hme\x7f0",
    "h/me",
    "hme0:1",
    "..",
    "a" * 16,
    "a" * 5000,
    "\u202ehme0",
    "h\u00e9me0",
    "\U0001f600",
    "\ud800",
    "\udfff",
    "hme0 ",
    "%s%n",
    "../../etc/passwd",
)


# ------------------------------------------------------------------ generator


class Gen:
    """Seeded hostile requests: ``make(kind)`` returns the raw line bytes (newline included)."""

    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def pick(self, items: Sequence[T]) -> T:
        return items[self.r.randrange(len(items))]

    def value(self, depth: int = 0) -> Any:
        """A random JSON value of any type."""
        choice = self.r.randrange(10 if depth < 3 else 7)
        if choice == 0:
            return None
        if choice == 1:
            return self.r.choice([True, False])
        if choice == 2:
            return self.pick([0, 1, -1, 2**31, 2**64, -(2**63), 7])
        if choice == 3:
            return self.pick([0.5, -0.0, 1e308, 1.0])
        if choice in (4, 5):
            return self.pick(ODD_TEXT + NICS)
        if choice == 6:
            return "".join(chr(self.r.randrange(1, 0x2FFF)) for _ in range(self.r.randrange(12)))
        if choice in (7, 8):
            return [self.value(depth + 1) for _ in range(self.r.randrange(4))]
        return {str(self.value(depth + 1)): self.value(depth + 1) for _ in range(3)}

    def words(self, vocabulary: tuple[str, ...], typed: bool = False) -> list[Any]:
        out: list[Any] = [self.pick(vocabulary) for _ in range(self.r.randrange(7))]
        if self.r.random() < 0.2 and out and not typed:
            out[self.r.randrange(len(out))] = self.value()
        return out

    def args_for(self, op: str, typed: bool = False) -> dict[str, Any]:
        """Arguments for ``op``; ``typed``: every one present with its documented type."""
        spec = OPERATIONS.get(op, {})
        args: dict[str, Any] = {}
        for name, kind in spec.items():
            if typed and kind == "interface":
                args[name] = self.pick((*NICS, "hme9", "lo"))
                continue
            if typed and kind == "boolean":
                args[name] = self.r.random() < 0.5
                continue
            if self.r.random() < 0.15 and not typed:
                continue  # a required one missing, sometimes
            if self.r.random() < 0.25 and not typed:
                args[name] = self.value()
            elif kind == "interface":
                args[name] = self.pick((*NICS, "hme9", "lo", "eth0", *ODD_TEXT[:6]))
            elif kind == "boolean":
                args[name] = self.pick([True, False, "false", 0, 1, None])
            elif op == "sim":
                args[name] = self.words(SIM_WORDS, typed)
            else:
                args[name] = self.words(IFCONFIG_WORDS, typed)
        if self.r.random() < 0.15 and not typed:
            args[str(self.pick((*ODD_TEXT[:8], "forced", "Force")))] = self.value()
        return args

    def envelope(self, op: Any = None, args: Any = None) -> dict[str, Any]:
        if op is None:
            op = self.pick(list(OPERATIONS))
        return {
            "v": 1,
            "id": self.r.randrange(1000),
            "op": op,
            "args": self.args_for(op) if args is None else args,
        }

    def make(self, kind: str) -> bytes:
        line = getattr(self, f"_{kind}")()
        data = line if isinstance(line, bytes) else json.dumps(line).encode()
        return data if data.endswith(b"\n") else data + b"\n"

    def _bad_json(self) -> bytes:
        good = json.dumps(self.envelope()).encode()
        choice = self.r.randrange(6)
        if choice == 0:
            return bytes(self.r.randrange(256) for _ in range(self.r.randrange(1, 200))).replace(
                b"\n", b" "
            )
        if choice == 1:
            return good[: self.r.randrange(len(good))]
        if choice == 2:
            i = self.r.randrange(len(good))
            return good[:i] + self.pick([b"}", b"{", b",", b'"', b"\\", b":", b"]"]) + good[i:]
        if choice == 3:
            return self.pick([b"", b"   ", b"\t", b"null", b"[]", b'"ping"', b"1", b"NaN"])
        if choice == 4:
            return good.replace(b"1", b"NaN", 1).replace(b"0", b"Infinity", 1)
        return good + b" trailing"

    def _wrong_types(self) -> dict[str, Any]:
        request = self.envelope()
        field = self.pick(["v", "id", "op", "args"])
        request[field] = self.pick([None, True, [], {}, 1.5, "x", [1, 2], {"a": 1}, 2**70, "1", -1])
        return request

    def _unknown_keys(self) -> dict[str, Any]:
        request = self.envelope()
        if self.r.random() < 0.5:
            request[str(self.pick(["ver", "uid", "user", "root", "Op", "", "__class__"]))] = 0
        else:
            args = dict(request["args"]) if isinstance(request["args"], dict) else {}
            args[str(self.pick(["force ", "Interface", "uid", "privileged", "", "\x00"]))] = True
            request["args"] = args
        return request

    def _huge(self) -> bytes:
        size = self.pick([MAX_REQUEST - 2, MAX_REQUEST - 1, MAX_REQUEST, MAX_REQUEST + 1, 1 << 20])
        head = b'{"v":1,"id":1,"op":"ifconfig","args":{"argv":["'
        tail = b'"]}}'
        return head + b"a" * max(0, size - len(head) - len(tail)) + tail

    def _control_chars(self) -> dict[str, Any]:
        bad = "".join(chr(self.r.choice([0, 1, 7, 8, 9, 11, 12, 13, 27, 127])) for _ in range(3))
        request = self.envelope()
        where = self.r.randrange(3)
        if where == 0:
            request["op"] = self.pick(list(OPERATIONS)) + bad
        elif where == 1:
            request["op"] = self.pick(["offline", "online", "dr_detach", "dr_attach"])
            request["args"] = {"interface": "hme0" + bad}
        else:
            request["op"] = self.pick(["ifconfig", "sim"])
            key = "argv" if request["op"] == "ifconfig" else "command"
            request["args"] = {key: ["hme0", "group", "fz" + bad]}
        return request

    def _unicode(self) -> bytes:
        choice = self.r.randrange(4)
        if choice == 0:
            return b'{"v":1,"id":1,"op":"offline","args":{"interface":"hme\xff0"}}'
        if choice == 1:
            return b'{"v":1,"id":1,"op":"ping\xc0\xaf"}'
        if choice == 2:
            text = self.pick(["\\ud800", "\\udfff", "\\u202e", "\\u0000", "\\uffff"])
            return ('{"v":1,"id":1,"op":"online","args":{"interface":"' + text + 'hme0"}}').encode()
        op = self.pick(["ping", "snapshot", "offline", "sim"])
        return json.dumps(
            {"v": 1, "id": "\u00e9\U0001f600", "op": op + self.pick(["\u00e9", "\u0131", ""])},
            ensure_ascii=self.r.random() < 0.5,
        ).encode()

    def _deep(self) -> bytes:
        depth = self.pick([50, 500, 1000, 5000, 30_000])
        if self.r.random() < 0.5:
            return b"[" * depth + b"]" * depth
        nested = b'{"a":' * depth + b"1" + b"}" * depth
        return b'{"v":1,"id":1,"op":"ifconfig","args":{"argv":' + nested + b"}}"

    def _versions(self) -> dict[str, Any]:
        request = self.envelope()
        version = self.pick(["absent", 0, 2, "1", 1.5, True, None, -1, 2**64, [1]])
        if version == "absent":
            del request["v"]
        else:
            request["v"] = version
        return request

    def _ops(self) -> dict[str, Any]:
        if self.r.random() < 0.6:
            # Well typed: past the argument checks, into the permission check and the engine.
            op = self.pick(list(OPERATIONS))
            return self.envelope(op, self.args_for(op, typed=True))
        op = self.pick([*OPERATIONS, "Ping", "shutdown", "exec", "", "snapshot "])
        return self.envelope(op)


# ------------------------------------------------------------------ the daemon


class SimDaemon:
    """``in.mpathd -d --sim TOPOLOGY --root ROOT`` for the fuzz."""

    def __init__(self, root: Path, topology: Path, src: str | None = None) -> None:
        self.src = src
        self.root = root
        self.topology = topology
        self.log_path = root.parent / "in.mpathd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "ipmp.daemon.main", "-d", "--sim", str(self.topology)]
        argv += ["--root", str(self.root), "--seed", "1"]
        env = dict(os.environ)
        if self.src is not None:
            env["PYTHONPATH"] = self.src
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env
            )
        deadline = time.monotonic() + START_S
        while not self.answers():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"in.mpathd --sim did not start: {self.log()[-500:]}")
            time.sleep(0.05)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def answers(self) -> bool:
        try:
            self.client().request("ping")
        except IpmpError:
            return False
        return True

    def client(self) -> ControlClient:
        return ControlClient(socket_path(self.root), timeout=REPLY_S)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def view(self) -> dict[str, Any]:
        """Snapshot (without its clock), the simulated kernel and the state file."""
        snap = self.client().request("snapshot")
        snap.pop("now", None)
        out: dict[str, Any] = {"snapshot": snap}
        for name, path in (("kernel", sim_world_path(self.root)), ("state", state_path(self.root))):
            try:
                out[name] = json.loads(path.read_bytes())
            except (OSError, ValueError) as exc:
                out[name] = f"unreadable: {exc}"
        return out

    def still_view(self) -> dict[str, Any]:
        """The view once it stops changing (an accepted change may still be under way)."""
        view = self.view()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            time.sleep(STILL_S)
            again = self.view()
            if again == view:
                return view
            view = again
        return view


# ------------------------------------------------------------------ senders


class NobodyConnector:
    """A forked child, uid 65534, that connects to the control socket on demand.

    It hands each connected socket to the parent over SCM_RIGHTS: the kernel
    recorded the child's credentials at connect(), so the daemon sees nobody.
    """

    def __init__(self, path: Path) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.pid = os.fork()
        if self.pid == 0:  # the child: never returns
            parent.close()
            try:
                os.setgroups([])
                os.setgid(NOBODY)
                os.setuid(NOBODY)
                while child.recv(1):
                    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                    try:
                        sock.connect(str(path))
                        socket.send_fds(child, [b"k"], [sock.fileno()])
                    except OSError as exc:
                        child.sendall(b"e" + str(exc.errno).encode())
                    finally:
                        sock.close()
            finally:
                os._exit(0)
        child.close()
        self.channel = parent

    def connect(self) -> socket.socket:
        self.channel.sendall(b"c")
        data, fds, _flags, _addr = socket.recv_fds(self.channel, 16, 1)
        if not fds:
            raise OSError(f"nobody could not connect: {data!r}")
        return socket.socket(fileno=fds[0])

    def close(self) -> None:
        self.channel.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def root_connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    return sock


def exchange(sock: socket.socket, line: bytes, wait: float) -> tuple[str, bytes]:
    """Send ``line``; return (outcome, reply line): reply, closed or timeout."""
    sock.settimeout(wait)
    with sock:
        with contextlib.suppress(OSError):
            # A huge line: the daemon may answer and close (or stop reading) before the end.
            sock.sendall(line)
        buffered = b""
        deadline = time.monotonic() + wait
        while b"\n" not in buffered:
            if time.monotonic() > deadline:
                return "timeout", buffered
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                return "timeout", buffered
            except ConnectionResetError:
                return "closed", buffered
            if not chunk:
                return "closed", buffered
            buffered += chunk
        return "reply", buffered.split(b"\n", 1)[0]


# ------------------------------------------------------------------ the run


def fuzz(requests: int, seed: int, workdir: Path, src: str | None = None) -> dict[str, Any]:
    root = workdir / "root"
    root.mkdir(mode=0o755)
    topology = workdir / "fuzz.toml"
    topology.write_text(TOPOLOGY, encoding="utf-8")
    daemon = SimDaemon(root, topology, src)
    daemon.start()
    as_root = os.geteuid() == 0
    nobody = NobodyConnector(socket_path(root)) if as_root else None
    gen = Gen(seed)
    counts: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    per_kind: dict[str, Counter[str]] = {k: Counter() for k in KINDS}
    findings: dict[str, list[dict[str, Any]]] = {
        "crashes": [],
        "internal_errors": [],
        "unanswered": [],
        "bad_replies": [],
        "refused_changed_state": [],
        "nobody_changed_state": [],
    }
    started = time.monotonic()
    try:
        before = daemon.still_view()
        for i in range(requests):
            kind = KINDS[i % len(KINDS)]
            sender = "nobody" if nobody is not None and gen.r.random() < 0.5 else "root"
            line = gen.make(kind)
            counts["inputs"] += 1
            per_kind[kind][sender] += 1
            sample = {"i": i, "kind": kind, "sender": sender, "line": line[:200].decode("latin-1")}
            try:
                sock = (
                    nobody.connect()
                    if sender == "nobody" and nobody
                    else root_connect(socket_path(root))
                )
            except OSError as exc:
                findings["unanswered"].append({**sample, "why": f"connect: {exc}"})
                continue
            streams = b'"probes"' in line  # may be a stream: silent here, nothing probes
            outcome, reply = exchange(sock, line, STREAM_S if streams else REPLY_S)
            if not daemon.alive():
                findings["crashes"].append({**sample, "log": daemon.log()[-800:]})
                daemon.start()
                before = daemon.still_view()
                continue
            accepted = False
            parsed: Any = None
            if outcome == "reply":
                try:
                    parsed = json.loads(reply)
                except ValueError:
                    parsed = None
                if not isinstance(parsed, dict) or "ok" not in parsed:
                    findings["bad_replies"].append(
                        {**sample, "reply": reply[:200].decode("latin-1")}
                    )
                else:
                    accepted = bool(parsed["ok"])
                    error = str(parsed.get("error", ""))
                    if not accepted:
                        reasons[f"{sender}: {re.sub(r'[0-9]+', 'N', error)[:60]}"] += 1
                    if "internal error" in error:
                        findings["internal_errors"].append({**sample, "error": error})
            elif not (outcome == "timeout" and streams):
                findings["unanswered"].append({**sample, "outcome": outcome})
            counts["accepted" if accepted else "refused"] += 1
            counts[f"{sender}_{'accepted' if accepted else 'refused'}"] += 1
            after = daemon.still_view() if accepted and sender == "root" else daemon.view()
            if after != before:
                where = "nobody_changed_state" if sender == "nobody" else "refused_changed_state"
                if sender == "nobody" or not accepted:
                    findings[where].append({**sample, "reply": reply[:200].decode("latin-1")})
                    after = daemon.still_view()
            before = after
        logged = [ln for ln in daemon.log().splitlines() if "internal error" in ln]
    finally:
        if nobody is not None:
            nobody.close()
        daemon.stop()
    result: dict[str, Any] = {
        "inputs": counts["inputs"],
        "accepted": counts["accepted"],
        "refused": counts["refused"],
        "by_sender": {
            s: {"accepted": counts[f"{s}_accepted"], "refused": counts[f"{s}_refused"]}
            for s in ("root", "nobody")
        },
        "by_kind": {k: dict(v) for k, v in per_kind.items()},
        "nobody_sender": nobody is not None,
        "refusals_top": dict(reasons.most_common(15)),
        "nobody_permission_denied": sum(
            n for r, n in reasons.items() if r.startswith("nobody") and "permission denied" in r
        ),
        "daemon_uid": os.geteuid(),
        "internal_error_log_lines": len(logged),
        "duration_s": round(time.monotonic() - started, 1),
    }
    for name, items in findings.items():
        result[name] = len(items)
        result[f"{name}_samples"] = items[:5]
    if not as_root:
        result["note"] = "not root: no nobody sender; the daemon's own uid is unprivileged"
    return result


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="ipmp-fuzz-") as tmp:
        os.chmod(tmp, 0o755)  # nobody must reach the socket below it
        yield Path(tmp)


MUST_BE_ZERO = (
    "crashes",
    "internal_errors",
    "internal_error_log_lines",
    "unanswered",
    "bad_replies",
    "refused_changed_state",
    "nobody_changed_state",
)


def main(argv: list[str] | None = None, run: Callable[..., dict[str, Any]] = fuzz) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="300 requests")
    parser.add_argument("--requests", type=int, help="how many (default 10000, smoke 300)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--daemon-src", help="run in.mpathd from this src/ directory (e.g. an older commit's)"
    )
    args = parser.parse_args(argv)
    requests = args.requests or (300 if args.smoke else 10_000)
    with workspace() as tmp:
        figures = run(requests, args.seed, tmp, args.daemon_src)
    result = {
        "benchmark": "control_fuzz",
        "mode": "smoke" if args.smoke else "full",
        "command": " ".join(["python", *sys.argv]),
        "machine": machine(),
        "seed": args.seed,
        "daemon_src": args.daemon_src or "this tree",
        **figures,
        "must_be_zero": {k: figures[k] for k in MUST_BE_ZERO},
        "passed": all(figures[k] == 0 for k in MUST_BE_ZERO),
    }
    write_result("control_fuzz", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
