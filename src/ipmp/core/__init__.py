"""The pure IPMP engine.

Nothing in this package performs I/O, reads a clock, sleeps or draws random
numbers on its own: every input carries ``now`` (monotonic seconds) and the
engine answers with actions and its next deadline.  ``tests/test_purity.py``
enforces the import rule.
"""
