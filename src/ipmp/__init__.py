"""ipmp: Solaris 10 IP network multipathing, rebuilt for Linux.

``ipmp.core`` is the pure engine (no I/O, no clock); ``ipmp.sim`` is the
embedded simulated Solaris host; ``ipmp.cli`` holds the command-line clients.
"""

# The one version source: pyproject reads it (setuptools dynamic version), the
# Debian package build reads the installed metadata, every --version prints it.
__version__ = "0.1.0"


def version_line(prog: str) -> str:
    """What ``PROG --version`` prints: the command, the project and its version."""
    return f"{prog} (ipmp) {__version__}"
