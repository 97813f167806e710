"""The in.mpathd daemon: the event loop, the control socket, state and signals."""
