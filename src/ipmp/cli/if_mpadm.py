"""``if_mpadm``: take an IPMP interface offline and back (Solaris if_mpadm(1M), facts §4.8).

``if_mpadm -d IF`` asks in.mpathd to move IF's data addresses to another member
of its group and to stop using IF (its addresses are brought down);
``if_mpadm -r IF`` undoes that: the test addresses come back up and the data
addresses fail back, also with ``FAILBACK=no``.  The work is done by the same
client call as ``ipmp offline|online``; this is only Solaris's command line and
Solaris's messages around it.

Exit status: 0 when done; 1 when in.mpathd refused (its reason is printed) or
could not be reached; 2 for a wrong command line (nothing is asked of the daemon).
"""

from __future__ import annotations

import getopt
import sys
from collections.abc import Sequence

from ipmp import version_line
from ipmp.cli.main import set_offline
from ipmp.core.errors import IpmpError
from ipmp.rootfs import default_root

PROG = "if_mpadm"
USAGE = "Usage : if_mpadm [-d | -r] <interface_name>"
NO_DAEMON = "Cannot establish communication with in.mpathd."

# The S10 if_mpadm messages (facts §4.8) that in.mpathd's refusals carry; the
# command prints them as Solaris did, without the operation and interface.
SOLARIS_MESSAGES = (
    "Offline failed as there is no other functional interface available in the "
    "multipathing group for failing over the network access.",
    "Interface already offlined",
    "Interface not offlined",
)


def _message(err: IpmpError, verb: str, name: str) -> str:
    if err.message.startswith("cannot contact in.mpathd"):
        return NO_DAEMON
    reason = err.message.removeprefix(f"{verb}: {name}: ")
    for solaris in SOLARIS_MESSAGES:
        # The daemon may say more after the Solaris text (which family could
        # not move); if_mpadm prints what Solaris printed.
        if reason.startswith(solaris):
            return solaris
    return f"{PROG}: {err.message}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``if_mpadm``; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        pairs, operands = getopt.getopt(arguments, "d:r:", ["version"])
    except getopt.GetoptError:
        print(USAGE, file=sys.stderr)
        return 2
    if ("--version", "") in pairs:
        print(version_line(PROG))
        return 0
    if len(pairs) != 1 or operands or not pairs[0][1]:
        print(USAGE, file=sys.stderr)
        return 2
    flag, name = pairs[0]
    offline = flag == "-d"
    try:
        set_offline(default_root(), name, offline)
    except IpmpError as err:
        print(_message(err, "offline" if offline else "online", name), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
