"""Stage 1, scan: the bucket's objects under the configured prefixes, in key order.

Three listing sources yield the same `ListedObject` records (`ingest.listing.sources` picks
one): the fast lister (`ingest.listing.fast`), boto3's paginator (`ingest.listing.paginator`),
and an S3 Inventory report (`ingest.listing.inventory`). The two live listers share
`fan_out`: units of work (a prefix to list, or a page a discovery already listed) start in
threads up to `workers` at a time and are read back in unit order. Sorted prefixes that
don't cover one another span disjoint, ordered key ranges, so the output is in key order
whatever the timing. Each unit's pages wait in a `PageSpool`, which spills to disk: listings
run ahead at full speed while memory stays flat.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import NamedTuple, TypeVar

from ingest.errors import UserError
from ingest.listing.s3_errors import s3_errors
from ingest.listing.spool import PageSpool, in_background


class ListedObject(NamedTuple):
    """One object as every listing source reports it (ETag without its quotes)."""

    key: str
    size: int
    etag: str
    last_modified: datetime | None = None


Page = Sequence[ListedObject]
Lister = Callable[[str], Iterable[Page]]
Unit = TypeVar("Unit")
_LOOKAHEAD = 4


def normalise_prefixes(prefixes: Iterable[str]) -> list[str]:
    """Sorted, without duplicates or prefixes another one already covers (so no key twice)."""
    kept: list[str] = []
    for prefix in sorted(set(prefixes)):
        if not kept or not prefix.startswith(kept[-1]):
            kept.append(prefix)
    return kept


def fan_out(
    units: Iterable[Unit], start: Callable[[Unit], Iterable[Page]], workers: int
) -> Iterator[ListedObject]:
    """The objects of every unit, unit after unit; up to `workers` units listed at once.

    `start(unit)` begins listing in the background and returns its `PageSpool`, or returns
    pages already listed. A listing that has finished frees its worker at once, even if its
    pages are still waiting for the consumer; up to `_LOOKAHEAD` times `workers` units are
    started ahead. Spools are closed here when done with, so a consumer that stops early
    stops the threads too."""
    upcoming = iter(units)
    window: deque[Iterable[Page]] = deque()

    def fill() -> None:
        while len(window) < _LOOKAHEAD * workers:
            listing = sum(isinstance(s, PageSpool) and not s.finished for s in window)
            if listing >= workers:
                return
            try:
                unit = next(upcoming)
            except StopIteration:
                return
            window.append(start(unit))

    try:
        fill()
        while window:
            for page in window[0]:
                yield from page
                fill()
            window.popleft()
            fill()
    finally:
        for pending in window:
            if isinstance(pending, PageSpool):
                pending.close()


def scan(lister: Lister, prefixes: Iterable[str], workers: int = 16) -> Iterator[ListedObject]:
    """Every object under `prefixes`, in key order: each prefix's pages from `lister`.

    One prefix is listed in the consumer's own thread: a listing thread would only add
    hand-overs (this lister parses in the thread that calls it)."""
    chosen = normalise_prefixes(prefixes)
    if len(chosen) == 1 or workers == 1:
        return (obj for prefix in chosen for page in lister(prefix) for obj in page)
    return fan_out(
        chosen, lambda prefix: in_background(iter(lister(prefix)), f"scan:{prefix}"), workers
    )


def listing_errors(where: str) -> AbstractContextManager[None]:
    """boto3's listing errors, as the fix the user needs (shared by both live listers)."""
    return s3_errors("listing", where)


def nothing_under(where: str) -> UserError:
    return UserError(
        f"{where} holds no objects: upload data first, or fix the prefix (settings `prefixes` or --prefix)"
    )
