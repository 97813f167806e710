"""The one error type the project raises for bad input or refused requests."""

from __future__ import annotations


class IpmpError(Exception):
    """A request or input was refused.

    The message is a single line that names what was wrong and what was
    expected; callers print it as it is and exit non-zero.  Raising it always
    means that no state was changed.
    """

    def __init__(self, message: str) -> None:
        if "\n" in message:
            raise ValueError("IpmpError messages are one line")
        super().__init__(message)

    @property
    def message(self) -> str:
        return str(self.args[0])
