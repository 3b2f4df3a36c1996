"""Path globs for keys and folders: '*' and '?' stay within one path segment, '**' crosses
segments ('**/' also matches no folder at all), '[...]' is a character class."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from ingest.errors import UserError


def glob_regex(pattern: str) -> str:
    parts, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : end]
            negate = body.startswith("!")
            body = re.escape(body[1:] if negate else body).replace("\\-", "-")
            parts.append(f"[{'^' if negate else ''}{body}]")
            i = end + 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return "".join(parts)


def matcher(patterns: Iterable[str]) -> Callable[[str], bool] | None:
    """A predicate: does the whole string match any of `patterns`? None when there are none."""
    patterns = list(patterns)
    return _matches_any(patterns) if patterns else None


def glob_matcher(pattern: str) -> Callable[[str], bool]:
    """A predicate: does the whole string match `pattern`?"""
    return _matches_any([pattern])


def _matches_any(patterns: list[str]) -> Callable[[str], bool]:
    for pattern in patterns:
        try:
            re.compile(glob_regex(pattern))
        except re.error as error:
            raise UserError(
                f"glob {pattern!r} is not valid ({error.msg}): fix its [...] character class, "
                "or write [[] for a literal '['"
            ) from None
    compiled = re.compile("|".join(f"(?:{glob_regex(pattern)})" for pattern in patterns), re.DOTALL)
    return lambda text: compiled.fullmatch(text) is not None
