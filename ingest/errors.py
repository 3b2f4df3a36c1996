"""Errors a user can fix, and the exit codes of every command (one meaning each).

The CLI prints a `UserError` as one line and exits 2, never with a traceback.
"""

from __future__ import annotations

EXIT_EXACT = 0  # done, and the Dataset and Folder match the bucket
EXIT_DIFFERENCES = 1  # done, but the Dataset or Folder differs from the bucket
EXIT_USER_ERROR = 2  # something for the user to fix, said in one line
EXIT_INTERNAL = 3  # a bug: one line on the terminal, the traceback in a log file
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM


class UserError(Exception):
    """Bad input or environment: the message names the file or entry and says what to fix.

    Messages must never contain secrets (the Encord private key, the external ID).
    """

    exit_code = EXIT_USER_ERROR


def first_line(error: BaseException) -> str:
    """An exception's first line, for one-line messages (its type name when it has no text)."""
    text = str(error).strip() or type(error).__name__
    return text.splitlines()[0]
