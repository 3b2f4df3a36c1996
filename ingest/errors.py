"""Errors a user can fix. The CLI prints them as one line and exits 2, never with a traceback."""

from __future__ import annotations

EXIT_USER_ERROR = 2


class UserError(Exception):
    """Bad input or environment: the message names the file or entry and says what to fix.

    Messages must never contain secrets (the Encord private key, the external ID).
    """

    exit_code = EXIT_USER_ERROR


def first_line(error: BaseException) -> str:
    """An exception's first line, for one-line messages (its type name when it has no text)."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
