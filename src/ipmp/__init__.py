"""ipmp: Solaris 10 IP network multipathing, rebuilt for Linux.

``ipmp.core`` is the pure engine (no I/O, no clock); ``ipmp.sim`` is the
embedded simulated Solaris host; ``ipmp.cli`` holds the command-line clients.
"""

__version__ = "0.1.0"
