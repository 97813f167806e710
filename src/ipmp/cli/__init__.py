"""Command-line clients: ``ipmp`` (demo, ifconfig, ...)."""
