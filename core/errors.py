"""The errors a user can see.

Every failure that is the user's to fix (bad input, a missing store, a
refused action) is a :class:`TierdeskError` with a message written for them.
The CLI prints it on stderr and exits 2; the console shows it in a dialog.
Anything else is a bug and is reported as one.
"""

from __future__ import annotations


class TierdeskError(Exception):
    """A failure with a message meant for the person at the keyboard."""

    title = "Error"
    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n{self.hint}"


class StoreError(TierdeskError):
    """The store is missing, unreadable, locked or from a newer tierdesk."""

    title = "Store"


class ConfigError(TierdeskError):
    """The config file is invalid; the message names the key and the line."""

    title = "Config"

    def __init__(self, message: str, *, problems: list[str] | None = None, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems = problems or [message]


class InputError(TierdeskError):
    """A file, a flag or an expression the user gave us cannot be used."""

    title = "Input"


class NotFound(TierdeskError):
    """A customer, campaign or other record the user named does not exist."""

    title = "Not found"


class PermissionDenied(TierdeskError):
    """The user's role does not allow this action."""

    title = "Not allowed"


class Conflict(TierdeskError):
    """The action does not fit the current state (e.g. approving a draft)."""

    title = "Not now"
